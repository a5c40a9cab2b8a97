"""What a report page computes once (issue 15 §4, the 60,000-household demo batch in
under a minute): a metric asked for again in another spelling of the same arguments is
not run again (a page's headline asked ``exit_rates(panel)`` and its removals
``exit_rates(panel, by=None, from_status="poor")``: two engine queries for one table)."""
from __future__ import annotations

import os

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


def _assert_same_numbers(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for section in a:
        x, y = a[section], b[section]
        if isinstance(x, dict):
            assert x.keys() == y.keys(), section
            for k in x:
                pd.testing.assert_frame_equal(x[k], y[k], obj=f"{section}[{k}]")
        elif isinstance(x, pd.DataFrame):
            pd.testing.assert_frame_equal(x, y, obj=section)
        else:
            assert x is None and y is None, section


def test_pages_read_from_the_held_register_publish_the_numbers_read_from_its_file(demo_register, tmp_path,
                                                                                  monkeypatch):
    """A report kernel holds a small register's rows once and selects each page's
    region from them (pagedata.HELD_REGISTER_MAX_ROWS) instead of reading the file for
    every page: every number of a province page and of the national page is the same;
    a file rewritten since is read again, not served from the rows held."""
    from povdyn import pagedata

    path = tmp_path / "panel.parquet"
    demo_register.panel.to_parquet(path, index=False)
    province = demo_register.panel["province_2025"].value_counts().index[1]
    period = "2025Q4"

    def numbers(region):
        return pagedata.page_numbers(pagedata.page_data(tmp_path, region), period, n_boot=50)

    monkeypatch.setattr(pagedata, "_HELD", {})
    monkeypatch.setattr(pagedata, "HELD_REGISTER_MAX_ROWS", 0)  # read from the file for each page
    from_file = {region: numbers(region) for region in (province, "national")}
    assert not pagedata._HELD
    monkeypatch.setattr(pagedata, "HELD_REGISTER_MAX_ROWS", 2_000_000)
    held = {region: numbers(region) for region in (province, "national")}
    assert len(pagedata._HELD) == 1
    for region in held:
        _assert_same_numbers(held[region], from_file[region])

    # the file rewritten (every household of the province poor at the period): read again
    frame = demo_register.panel.copy()
    frame.loc[(frame["province_2025"] == province) & (frame["period"] == period), "status"] = "poor"
    frame.to_parquet(path, index=False)
    shares = pagedata.status_shares_at(pagedata.page_data(tmp_path, province), period)
    assert shares.loc[0, "poor_rate"] == 1.0


def test_a_held_register_from_ingest_s_folder_of_period_files(demo_register, tmp_path, monkeypatch):
    """Ingest writes panel.parquet as a folder of period files: a kernel holds it too
    (found when the per-period layout and the held register met: the row count was read
    from the folder as if it were one file), and a period file rewritten since (an
    incremental ingest replaces only some) is read again."""
    from povdyn import pagedata

    folder = tmp_path / "panel.parquet"
    folder.mkdir()
    panel = demo_register.panel
    for period, rows in panel.groupby("period"):
        rows.to_parquet(folder / f"period-{period}.parquet", index=False)
    province = panel["province_2025"].value_counts().index[1]
    period = "2025Q4"
    monkeypatch.setattr(pagedata, "_HELD", {})
    shares = pagedata.status_shares_at(pagedata.page_data(tmp_path, province), period)
    assert len(pagedata._HELD) == 1
    assert 0 < shares.loc[0, "poor_rate"] < 1
    rows = panel[panel["period"] == period].copy()
    rows.loc[rows["province_2025"] == province, "status"] = "poor"
    rows.to_parquet(folder / f"period-{period}.parquet.tmp", index=False)
    os.replace(folder / f"period-{period}.parquet.tmp", folder / f"period-{period}.parquet")
    shares = pagedata.status_shares_at(pagedata.page_data(tmp_path, province), period)
    assert shares.loc[0, "poor_rate"] == 1.0


def test_a_kernel_lists_the_held_register_s_provinces_once(demo_register, tmp_path, monkeypatch):
    """Each province page selects its region from the rows a report kernel holds: the
    province names it matches against are listed once per held register, not queried
    again on every page; an unknown name is still an error naming the known ones."""
    import pytest

    from povdyn import pagedata
    from povdyn.errors import SchemaError

    demo_register.panel.to_parquet(tmp_path / "panel.parquet", index=False)
    first, second = demo_register.panel["province_2025"].value_counts().index[:2]
    monkeypatch.setattr(pagedata, "_HELD", {})
    pagedata.page_data(tmp_path, first)
    asked = []
    plain = Panel.execute
    monkeypatch.setattr(Panel, "execute", lambda self, expr, *a, **k: asked.append(expr) or plain(self, expr, *a, **k))
    page = pagedata.page_data(tmp_path, second)
    assert asked == [] and page.panel.region_name == second
    with pytest.raises(SchemaError, match=str(first)):
        pagedata.page_data(tmp_path, "Atlantis")


def test_the_held_register_is_kept_in_province_order(demo_register, tmp_path, monkeypatch):
    """The rows a kernel holds are stored province by province (then by period and
    household, as ingest writes them), so that selecting one province reads only its
    few row groups (0.13 -> 0.03 CPU-s a page on the demo)."""
    from povdyn import pagedata

    demo_register.panel.to_parquet(tmp_path / "panel.parquet", index=False)
    monkeypatch.setattr(pagedata, "_HELD", {})
    pagedata.page_data(tmp_path, "national")
    (held,) = pagedata._HELD.values()
    stored = held.execute(held.table.select("province_2025", "period_index", "household_id"))
    assert len(stored) == len(demo_register.panel)
    assert list(stored.itertuples(index=False)) == sorted(stored.itertuples(index=False))
