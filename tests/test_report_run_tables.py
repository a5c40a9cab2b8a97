"""The run-wide tables of a report run (issue 15 §4, the demo batch in under a minute):
the metric tables every province page computed for itself are computed once for the
whole register, grouped by province, and each page reads its rows. A page's published
numbers must be the ones it computes on its own region: headline, groups and the
communes' metrics are compared here, through the files the parent writes and the pages
read (povdyn.report.write_run_tables / handed_run_tables)."""
from __future__ import annotations

import pandas as pd
import pytest

from povdyn import pagedata
from povdyn.panel import Panel
from povdyn.report import handed_run_tables, write_run_tables

PERIOD = "2025Q4"


@pytest.fixture(scope="module")
def register_dir(tmp_path_factory, demo_register):
    folder = tmp_path_factory.mktemp("run-tables")
    frame = demo_register.panel.assign(commune_2025=demo_register.panel["commune"])
    frame.to_parquet(folder / "panel.parquet", index=False)
    return folder


@pytest.fixture(scope="module")
def run_folders(register_dir, tmp_path_factory):
    """The run-wide tables' folders of two runs: without a period, and at PERIOD (also
    the projection's annual transitions)."""
    folders = {}
    for name, period in (("plain", None), ("with-period", PERIOD)):
        out = tmp_path_factory.mktemp(f"ipc-{name}") / "run-tables"
        outcome = write_run_tables(register_dir, out, within=2, engine="duckdb", period=period)
        assert "tables" in outcome, outcome
        folders[name] = out
    return folders


@pytest.fixture(scope="module")
def handed(register_dir, run_folders):
    return handed_run_tables(run_folders["plain"], register_dir, timeout=5)


@pytest.fixture(scope="module")
def handed_with_period(register_dir, run_folders):
    """The run-wide tables of a run at PERIOD: also the projection's annual transitions."""
    return handed_run_tables(run_folders["with-period"], register_dir, timeout=5)


def _provinces(register_dir, n=3):
    counts = pd.read_parquet(register_dir / "panel.parquet", columns=["province_2025"]).value_counts()
    return [name for (name,), _ in counts.iloc[[0, len(counts) // 2, -1]].items()][:n]


def _own_and_neighbours_page(register_dir, tables):
    """The first province's page computing its own numbers, and the same page handed
    `tables` with its rows and the second province's swapped."""
    first, second = _provinces(register_dir, 2)
    own = pagedata.page_data(register_dir, first)
    col = pagedata.region_column(own.panel.columns)
    other_name = pagedata.page_data(register_dir, second).panel.region_name
    swapped = [(name, kwargs, by, table.assign(**{col: table[col].replace(
        {other_name: own.panel.region_name, own.panel.region_name: other_name})}))
        for name, kwargs, by, table in tables]
    return own, pagedata.page_data(register_dir, first, run_tables=swapped)


def test_a_province_page_publishes_the_same_numbers_from_the_run_wide_tables(register_dir, handed, monkeypatch):
    from povdyn import communes

    asked = []
    plain = Panel.execute
    for region in _provinces(register_dir):
        own = pagedata.page_data(register_dir, region)
        seeded = pagedata.page_data(register_dir, region, run_tables=handed)
        assert pagedata.seed_page(pagedata.page_data(register_dir, region), handed) == len(handed)

        def counted(self, expr, *args, **kwargs):
            asked.append(expr)
            return plain(self, expr, *args, **kwargs)

        # the page's own numbers, then the same from its slices (no flow query asked)
        expected = dict(headline=pagedata.headline_values(own, PERIOD),
                        area=pagedata.group_rates(own, PERIOD, "area"),
                        minority=pagedata.group_rates(own, PERIOD, "ethnic_minority"),
                        communes=communes._grouped_metrics(own, within=2))
        monkeypatch.setattr(Panel, "execute", counted)
        got = dict(headline=pagedata.headline_values(seeded, PERIOD),
                   area=pagedata.group_rates(seeded, PERIOD, "area"),
                   minority=pagedata.group_rates(seeded, PERIOD, "ethnic_minority"),
                   communes=communes._grouped_metrics(seeded, within=2))
        monkeypatch.setattr(Panel, "execute", plain)
        for name in ("headline", "area", "minority"):
            pd.testing.assert_frame_equal(got[name], expected[name], check_exact=True, obj=f"{region} {name}")
        assert got["communes"].keys() == expected["communes"].keys()
        for key, table in expected["communes"].items():
            pd.testing.assert_frame_equal(got["communes"][key], table, check_exact=True, obj=f"{region} {key}")
            assert got["communes"][key].attrs == table.attrs
        assert pagedata.status_shares(seeded).attrs == pagedata.status_shares(own).attrs
    assert asked == []


def test_a_slice_of_another_province_would_be_caught(register_dir, handed):
    """The comparison above can fail: a page handed its neighbour's rows publishes
    other numbers."""
    own, wrong = _own_and_neighbours_page(register_dir, handed)
    assert not pagedata.headline_values(wrong, PERIOD).equals(pagedata.headline_values(own, PERIOD))


def test_households_in_two_provinces_leave_the_pages_to_compute_their_own(register_dir, tmp_path):
    frame = pd.read_parquet(register_dir / "panel.parquet")
    moved = frame["household_id"] == frame["household_id"].iloc[0]
    provinces = frame["province_2025"].unique()
    frame.loc[moved & (frame["period"] == frame.loc[moved, "period"].max()), "province_2025"] = (
        provinces[1] if frame.loc[moved, "province_2025"].iloc[0] == provinces[0] else provinces[0])
    frame.to_parquet(tmp_path / "panel.parquet", index=False)
    outcome = write_run_tables(tmp_path, tmp_path / "run-tables", engine="duckdb")
    assert "more than one province_2025" in outcome["skipped"]
    assert handed_run_tables(tmp_path / "run-tables", tmp_path, timeout=5) == []


def test_a_household_without_a_province_in_some_rows_leaves_the_pages_to_compute_their_own(register_dir,
                                                                                          tmp_path):
    frame = pd.read_parquet(register_dir / "panel.parquet")
    first = frame["household_id"] == frame["household_id"].iloc[0]
    frame.loc[first & (frame["period"] == frame.loc[first, "period"].min()), "province_2025"] = None
    frame.to_parquet(tmp_path / "panel.parquet", index=False)
    outcome = write_run_tables(tmp_path, tmp_path / "run-tables", engine="duckdb")
    assert "1 households are recorded in more than one province_2025 (or in one and none)" == outcome["skipped"]


def test_a_failed_computation_fails_the_pages_naming_it(tmp_path):
    from povdyn.errors import PovdynError

    (tmp_path / "panel.parquet").write_bytes(b"not a parquet file")
    outcome = write_run_tables(tmp_path, tmp_path / "run-tables", engine="duckdb")
    assert "error" in outcome
    with pytest.raises(PovdynError, match="run-wide tables of this run could not be computed"):
        handed_run_tables(tmp_path / "run-tables", tmp_path, timeout=5)


def test_the_index_headline_from_the_run_tables_panel_is_the_same(register_dir, tmp_path):
    """The parent's index headline reads the province results the run-wide tables left
    on their Panel; its table is the one computed afresh from the register."""
    from povdyn.tables import regions_overview

    keep = {}
    write_run_tables(register_dir, tmp_path / "run-tables", engine="duckdb", keep=keep)
    regions = ["national", *_provinces(register_dir)]
    fresh = regions_overview(register_dir / "panel.parquet", PERIOD, regions)
    reused = regions_overview(pagedata.PageData(panel=keep["panel"]), PERIOD, regions)
    pd.testing.assert_frame_equal(reused, fresh, check_exact=True)


def test_a_run_of_some_provinces_computes_theirs_only_and_the_same_numbers(register_dir, tmp_path):
    chosen = _provinces(register_dir, 2)
    keep = {}
    outcome = write_run_tables(register_dir, tmp_path / "run-tables", engine="duckdb", keep=keep,
                               regions=["national", *chosen])
    handed = handed_run_tables(tmp_path / "run-tables", register_dir, timeout=5)
    col = pagedata.region_column(keep["panel"].columns)
    assert "tables" in outcome and {v for *_, t in handed for v in t[col].unique()} == set(chosen)
    for region in chosen:
        own = pagedata.page_data(register_dir, region)
        seeded = pagedata.page_data(register_dir, region, run_tables=handed)
        pd.testing.assert_frame_equal(pagedata.headline_values(seeded, PERIOD),
                                      pagedata.headline_values(own, PERIOD), check_exact=True)
    # the index headline's national row still counts every province
    from povdyn.tables import regions_overview

    regions = ["national", *chosen]
    pd.testing.assert_frame_equal(regions_overview(pagedata.PageData(panel=keep["panel"]), PERIOD, regions),
                                  regions_overview(register_dir / "panel.parquet", PERIOD, regions),
                                  check_exact=True)


@pytest.fixture(scope="module")
def data_template(tmp_path_factory):
    """The report template cut down to its parameters and the cell that reads the page's
    data (where a province page receives its rows of the run-wide tables)."""
    import nbformat

    from povdyn import report

    nb = nbformat.read(report.template_notebook(), as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    data = [c for c in nb.cells if "run_tables_handle(run_tables" in c.source]
    assert len(params) == 1 and len(data) == 1, "the template lost its parameters or data cell"
    nb.cells = [params[0], data[0]]
    path = tmp_path_factory.mktemp("template") / "data.ipynb"
    nbformat.write(nb, path)
    return path


def test_a_failed_computation_fails_the_run_and_its_province_pages(register_dir, data_template, tmp_path,
                                                                  monkeypatch):
    import json

    from povdyn.errors import PovdynError
    from povdyn.report import run_report

    def broken(*args, **kwargs):
        raise RuntimeError("planted failure of the run-wide tables")

    monkeypatch.setattr(pagedata, "run_wide_tables", broken)  # the parent's computation only
    with pytest.raises(PovdynError, match="planted failure of the run-wide tables"):
        run_report(period="latest", regions=["national", *_provinces(register_dir, 1)], workers=1,
                   out_dir=tmp_path, data_dir=register_dir, notebook=data_template, progress=False)
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["status"] == "failed"
    assert manifest["run_tables"]["outcome"] == "error"
    pages = {p.name for p in run_dir.glob("*.html")}
    assert not pages - {"index.html", "national.html"}  # no province page looks fine


def test_a_list_register_leaves_the_pages_to_compute_their_own(register_dir, tmp_path):
    """On lists the stock denominators are the household totals, joined per province:
    a grouping by province would not be the page's own computation."""
    outcome = write_run_tables(register_dir, tmp_path / "run-tables", engine="duckdb", register="lists")
    assert "lists register" in outcome["skipped"]
    assert handed_run_tables(tmp_path / "run-tables", register_dir, timeout=5) == []


def test_the_projection_reads_its_annual_transitions_from_the_run_wide_tables(register_dir, handed_with_period,
                                                                              monkeypatch):
    """With the report period, the run-wide tables hold the projection's annual
    transitions by province: a province page's projection (counts, start, shares and
    bootstrap intervals) is the one it computes on its own, and no transition query is
    asked. A page whose annual snapshots hold other years than the whole register's
    computes its own (its key differs)."""
    from povdyn import targets

    assert any(name == "annual_transitions" for name, *_ in handed_with_period)
    asked = []
    plain = Panel.execute

    def counted(self, expr, *args, **kwargs):
        asked.append(expr)
        return plain(self, expr, *args, **kwargs)

    for region in _provinces(register_dir):
        own = pagedata.page_data(register_dir, region)
        seeded = pagedata.page_data(register_dir, region, run_tables=handed_with_period)
        expected = targets.projection(own, PERIOD, n_boot=200)
        monkeypatch.setattr(Panel, "execute", counted)
        got = targets.projection(seeded, PERIOD, n_boot=200)
        monkeypatch.setattr(Panel, "execute", plain)
        pd.testing.assert_frame_equal(got, expected, check_exact=True, obj=region)
        assert (got.attrs["counts"] == expected.attrs["counts"]).all()
    assert asked == []
    # the slice is keyed by the years the snapshots hold: another year set misses it
    region = _provinces(register_dir)[0]
    seeded = pagedata.page_data(register_dir, region, run_tables=handed_with_period)
    years = targets.annual_snapshots(seeded.panel, PERIOD).period_indices
    other = targets.annual_transitions_key(PERIOD, years[1:])
    assert other != targets.annual_transitions_key(PERIOD, years)


def test_a_neighbours_annual_transitions_would_change_the_projection(register_dir, handed_with_period):
    """The comparison above can fail: a page handed its neighbour's annual transitions
    projects other shares, or finds counts that do not fit its own stocks."""
    from povdyn import targets
    from povdyn.errors import EstimationError

    own, wrong = _own_and_neighbours_page(
        register_dir, [t for t in handed_with_period if t[0] == "annual_transitions"])
    try:
        counts = targets.annual_transition_counts(wrong, PERIOD)[0]
    except EstimationError as exc:  # the neighbour's moves do not fit this page's stocks
        assert "inconsistent counts" in str(exc)
        return
    assert not (counts == targets.annual_transition_counts(own, PERIOD)[0]).all()


def test_the_national_page_reads_its_provinces_from_the_run_wide_tables_when_it_needs_them(register_dir, handed,
                                                                                          monkeypatch):
    """The national page keeps the run-wide tables (a deferred handle, read only when its
    provinces section needs them: waiting at its start would idle its worker) and its
    by-province rates are the ones it computes itself, with no query asked; the same
    tables with two provinces' rows swapped would be caught."""
    asked = []
    plain = Panel.execute

    def counted(self, expr, *args, **kwargs):
        asked.append(expr)
        return plain(self, expr, *args, **kwargs)

    opened = []

    def handle():
        opened.append(True)
        return handed

    own = pagedata.page_data(register_dir, "national")
    seeded = pagedata.page_data(register_dir, "national", run_tables=handle)
    assert opened == []  # not at the start of the page
    expected = pagedata.province_rates(own, PERIOD)
    monkeypatch.setattr(Panel, "execute", counted)
    got = pagedata.province_rates(seeded, PERIOD)
    monkeypatch.setattr(Panel, "execute", plain)
    assert opened == [True] and asked == []
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    col = pagedata.region_column(own.panel.columns)
    first, second = expected[col].iloc[0], expected[col].iloc[-1]
    swapped = [(name, kwargs, by, table.assign(**{col: table[col].replace({first: second, second: first})}))
               for name, kwargs, by, table in handed]
    wrong = pagedata.province_rates(pagedata.page_data(register_dir, "national", run_tables=swapped), PERIOD)
    assert not wrong.equals(expected)


def test_a_process_reads_a_runs_tables_once_and_each_run_its_own(register_dir, run_folders, monkeypatch):
    """A report kernel renders many pages of one run: the run-wide tables are unpickled
    for its first page only; another run's folder (another report) is read afresh."""
    import pickle

    from povdyn import report

    monkeypatch.setattr(report, "_HANDED_TABLES", {})
    loads = []
    plain_loads = pickle.loads
    monkeypatch.setattr(pickle, "loads", lambda data: loads.append(1) or plain_loads(data))
    first = handed_run_tables(run_folders["plain"], register_dir, timeout=5)
    read = len(loads)
    assert read == len(first)
    again = handed_run_tables(run_folders["plain"], register_dir, timeout=5)
    assert len(loads) == read  # not read again
    assert [t[:3] for t in again] == [t[:3] for t in first]
    other = handed_run_tables(run_folders["with-period"], register_dir, timeout=5)
    assert len(loads) > read
    assert [t[0] for t in other] == ["annual_transitions", *[t[0] for t in first]]
    back = handed_run_tables(run_folders["plain"], register_dir, timeout=5)
    assert [t[0] for t in back] == [t[0] for t in first]


def test_a_province_page_reads_its_survival_table_from_the_run_wide_tables(register_dir, handed, monkeypatch):
    """The survival section's Kaplan-Meier table (its interval choice and attrs too) is
    the page's own, computed once for every province: no spell is computed on the page."""
    from povdyn import survival

    for region in _provinces(register_dir):
        expected = survival.survival_after_exit(pagedata.page_data(register_dir, region).panel)
        seeded = pagedata.page_data(register_dir, region, run_tables=handed)
        monkeypatch.setattr(survival, "_runs", lambda *a, **k: pytest.fail("spells computed on the page"))
        got = survival.survival_after_exit(seeded.panel)
        monkeypatch.undo()
        pd.testing.assert_frame_equal(got, expected, check_exact=True, obj=region)
        assert got.attrs == expected.attrs and got.attrs["spells"] > 0
    own, wrong = _own_and_neighbours_page(register_dir, handed)  # the comparison can fail
    assert not survival.survival_after_exit(wrong.panel).equals(survival.survival_after_exit(own.panel))
