"""What a report page computes once (issue 15 §4, the 60,000-household demo batch in
under a minute): a metric asked for again in another spelling of the same arguments is
not run again (a page's headline asked ``exit_rates(panel)`` and its removals
``exit_rates(panel, by=None, from_status="poor")``: two engine queries for one table)."""
from __future__ import annotations

import pandas as pd

import povdyn
from povdyn.panel import Panel


def _small_panel() -> pd.DataFrame:
    rows = []
    for h in range(30):
        statuses = ["poor", "poor" if h % 3 else "near_poor", "non_poor" if h % 2 else "poor"]
        for year, status in zip((2022, 2023, 2024), statuses):
            rows.append(dict(household_id=f"H{h:03d}", period=year, status=status, province="Tỉnh A",
                             area="urban" if h % 2 else "rural"))
    return pd.DataFrame(rows)


def test_a_metric_asked_again_in_another_spelling_is_not_run_again(monkeypatch):
    panel = povdyn.load_panel(_small_panel())
    queries = []
    plain = Panel.execute

    def counted(self, expr, *args, **kwargs):
        queries.append(expr)
        return plain(self, expr, *args, **kwargs)

    monkeypatch.setattr(Panel, "execute", counted)
    first = povdyn.exit_rates(panel)
    asked = len(queries)
    assert asked > 0
    for same in (dict(by=None, from_status="poor"), dict(by=[]), dict(from_status="poor", weight=None)):
        again = povdyn.exit_rates(panel, **same)
        pd.testing.assert_frame_equal(again, first)
    assert len(queries) == asked  # nothing asked of the engine
    grouped = povdyn.exit_rates(panel, by="area")
    asked = len(queries)
    pd.testing.assert_frame_equal(povdyn.exit_rates(panel, by=["area"]), grouped)
    assert len(queries) == asked
    other = povdyn.exit_rates(panel, from_status="near_poor")  # other arguments: computed
    assert len(queries) > asked and not other.equals(first)
