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


def test_the_rows_are_checked_for_duplicates_once_whatever_the_grouping(monkeypatch, tmp_path):
    """Each grouping of a page (none, area, ethnic minority, commune) builds its own
    household pivot; the check that no household has two rows in a period runs on the
    first only. A duplicate is still found, whichever grouping comes first."""
    import dataclasses

    import pytest

    from povdyn import dynamics
    from povdyn.errors import SchemaError

    checks = []
    plain = dynamics._History._check_duplicates
    monkeypatch.setattr(dynamics._History, "_check_duplicates",
                        lambda self, history: checks.append(self.by) or plain(self, history))
    panel = povdyn.load_panel(_small_panel())
    for by in (None, "area", "province"):
        povdyn.exit_rates(dataclasses.replace(panel, _histories={}), by=by)
    assert checks == [[]]
    rows = _small_panel()
    pd.concat([rows, rows.iloc[:1]], ignore_index=True).to_parquet(tmp_path / "panel.parquet")
    twice = povdyn.load_panel(tmp_path / "panel.parquet")  # parquet: checked by the metrics' pass
    with pytest.raises(SchemaError, match="more than one row"):
        povdyn.exit_rates(twice, by="area")
