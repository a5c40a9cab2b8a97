"""The register never becomes one pandas frame -- not on a page (project brief, "Engine
first"). What leaves the engine scales with a table's groups, not with the register.

The row counter is test_notebook_engines' (every result of DuckDB or Spark and every
parquet/csv read while a block runs). The register is a small quarterly demo; a review
of it has some 3,000 households, so a measure that pulls a period's rows to compute
sums in pandas breaks a budget of a few rows per group by a factor of ten or more (the
test checks that margin holds on this demo, so it stays able to fail).

* The deprivation measures (Alkire–Foster H, A, M0, contributions and censored
  headcounts; the persistent deprivations of each trajectory group; fragile exits and
  their relapse) pull at most ``ROWS_PER_GROUP`` rows per row of the table they return.
* Notebook 04, cell by cell: every cell (set-up,
  Alkire–Foster, persistence, fragile exits and the standard-change section) pulls at
  most ``CELL_BUDGET`` rows at once (the province table has 34 rows).
* The standard-change measures (``standard_change.reclassify`` / ``local_vs_national`` /
  ``decompose_flows`` on a Panel) classify each household in the engine and pull at
  most ``ROWS_PER_GROUP`` rows per row of the status table or flow decomposition they
  return.
"""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pandas as pd
import pytest

from test_notebook_engines import NOTEBOOKS, counting_pulls
from test_report import write_small_register

HOUSEHOLDS = 3_000
ROWS_PER_GROUP = 4
CELL_BUDGET = 4 * 34  # a few rows per 2025 province


@pytest.fixture(scope="module")
def register(tmp_path_factory):
    """A quarterly demo register (2021Q4-2025Q4) with support records and 2025 communes;
    (data folder, Panel, rows of its largest review)."""
    import matplotlib

    matplotlib.use("Agg")
    import povdyn

    data = write_small_register(tmp_path_factory.mktemp("scale"), households=HOUSEHOLDS, seed=7,
                                tiny=False, communes=True)
    panel = povdyn.load_panel(data / "panel.parquet")
    review_rows = int(panel.execute(panel.table.group_by("period_index").aggregate(n=panel.table.count()).n.max()))
    return data, panel, review_rows


def test_the_budgets_can_fail_on_this_register(register):
    """A pull of one review's rows is at least ten times every budget below."""
    _, _, review_rows = register
    assert review_rows >= 10 * CELL_BUDGET


def test_deprivation_summary_pulls_a_few_rows_per_group(register):
    from povdyn import deprivation

    _, panel, _ = register
    with counting_pulls() as pulls:
        summary = deprivation.deprivation_summary(panel, "2025Q4", lang="en")
    groups = len(summary["af"]) + len(summary["persistent"].columns)
    assert pulls.largest() <= ROWS_PER_GROUP * groups, (
        f"pulled {pulls.largest():,} rows at once for {groups} groups: {pulls.engine_rows}")
    assert summary["fragile"].iloc[0, 0] > 0  # the demo has exits: the counts were computed


@pytest.mark.parametrize("measure", ["af_by_province", "persistent", "fragile_outcomes", "alkire_foster"])
def test_each_deprivation_measure_pulls_its_groups_only(register, measure):
    from povdyn import deprivation, standards

    _, panel, _ = register
    indicators = [c for c in standards.INDICATORS_2022 if c in panel.columns]
    calls = {
        "af_by_province": lambda: deprivation.af_table_by(panel, indicators, by="province_2025", period="2025Q4"),
        "persistent": lambda: deprivation.persistent_deprivations(panel, "2025Q4"),
        "fragile_outcomes": lambda: deprivation.fragile_exit_outcomes(panel, "2025Q2", within=2),
        "alkire_foster": lambda: deprivation.alkire_foster(panel, indicators, by="province_2025").indicators,
    }
    with counting_pulls() as pulls:
        out = calls[measure]()
    groups = len(out) if measure != "alkire_foster" else len(out) // len(indicators)
    assert groups > 1
    assert pulls.largest() <= ROWS_PER_GROUP * groups, (
        f"{measure}: pulled {pulls.largest():,} rows at once for {groups} groups: {pulls.engine_rows}")


def _cells_with_pulls(notebook: Path, parameters: dict) -> list[tuple[str, int]]:
    """Run a notebook's code cells here as papermill would (test_notebook_engines.run_here)
    and return, per code cell, (its source, the largest single pull while it ran)."""
    import matplotlib.pyplot as plt
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    nb = parameterize_notebook(load_notebook_node(str(notebook)), parameters)
    namespace: dict = {"__name__": "__main__"}
    out = []
    try:
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            with counting_pulls() as pulls, contextlib.redirect_stdout(io.StringIO()):
                exec(compile(cell.source, str(notebook), "exec"), namespace)  # noqa: S102
            out.append((cell.source, pulls.largest()))
    finally:
        plt.close("all")
    return out


def test_notebook_04_cells_pull_a_few_rows_per_province(register):
    """Every cell of 04, the standard-change section included (its status tables and
    flow decompositions are a few rows each)."""
    data, _, _ = register
    cells = _cells_with_pulls(NOTEBOOKS / "04_deprivations.ipynb",
                              dict(data_dir=str(data), period="2025Q4", lang="vi", engine="duckdb"))
    changes = [i for i, (source, _) in enumerate(cells) if "standard_change." in source]
    assert len(cells[:changes[0]]) >= 5  # set-up, summary, province table, persistence, fragile exits
    assert len(changes) >= 3  # change flags, flows across a change, reclassification (+ HCMC)
    over = [(source.splitlines()[0], rows) for source, rows in cells if rows > CELL_BUDGET]
    assert not over, f"cells over {CELL_BUDGET} rows at once: {over}"


# ------------------------------------------------------------------ standard changes
def _standard_change_calls(panel):
    """The three standard-change measures of notebook 04, on a Panel, at the demo's
    last review and across its 2021Q4 -> 2022Q1 standard change."""
    from povdyn import standard_change

    return {
        "reclassify": lambda: standard_change.reclassify(
            panel, standard="national_2027_2030", rows=standard_change.reviewed_at("2025Q4")),
        "local_vs_national": lambda: standard_change.local_vs_national(
            panel, local="hcmc", province="Hồ Chí Minh", period="2025Q4"),
        "decompose_flows": lambda: standard_change.decompose_flows(panel, "2021Q4", "2022Q1"),
    }


@pytest.mark.parametrize("measure", ["reclassify", "local_vs_national", "decompose_flows"])
def test_standard_change_measures_pull_their_tables_only(register, measure):
    """Each measure counts its old x new statuses (or its moves by cause) in the engine:
    a few rows per row of the table it returns leave it, never a review's households."""
    _, panel, review_rows = register
    with counting_pulls() as pulls:
        result = _standard_change_calls(panel)[measure]()
    assert result.summary["households"] >= review_rows / 40  # the counts were computed
    budget = ROWS_PER_GROUP * len(result.table)
    assert review_rows >= 10 * budget
    assert pulls.largest() <= budget, (
        f"{measure}: pulled {pulls.largest():,} rows at once for a table of {len(result.table)}: "
        f"{pulls.engine_rows} {pulls.file_reads}")


# ------------------------------------------------------------------ support records
def _support_file_reads(pulls, data: Path) -> list:
    support = str((data / "support.parquet").resolve())
    return [(path, rows) for path, rows in pulls.file_reads
            if path and str(Path(path).resolve()).startswith(support)]


def _largest_province(panel) -> str:
    t = panel.table
    counts = panel.execute(t.group_by("province_2025").aggregate(n=t.count()))
    return counts.sort_values("n", ascending=False)["province_2025"].iloc[0]


def test_a_province_s_support_records_are_selected_in_the_engine(register):
    """programs.support_records gives a province's view exactly the records of its
    households -- the rows pandas would keep from the whole file -- in one pull of that
    size, without reading the file in pandas; the whole register keeps every record."""
    from povdyn import programs

    data, panel, _ = register
    whole = pd.read_parquet(data / "support.parquet")
    province = _largest_province(panel)
    view = panel.region(province)
    ids = set(view.execute(view.table.select("household_id").distinct())["household_id"])
    expected = whole[whole["household_id"].isin(ids)]
    assert 0 < len(expected) < len(whole) / 4
    with counting_pulls() as pulls:
        records = programs.support_records(data / "support.parquet", view)
    assert not _support_file_reads(pulls, data)
    assert pulls.largest() == len(expected)
    key = list(programs.SUPPORT_COLUMNS)
    pd.testing.assert_frame_equal(records.sort_values(key, ignore_index=True),
                                  expected[key].sort_values(key, ignore_index=True), check_dtype=False)
    assert len(programs.support_records(data / "support.parquet", panel)) == len(whole)


@pytest.mark.parametrize("where", ["03_model_effectiveness", "report programmes section"])
def test_a_province_page_never_reads_the_support_file_whole(register, where):
    """Notebook 03 and the report's programme section on a province read the support
    records through the engine (test above), not the whole file with pandas/pyarrow."""
    import matplotlib.pyplot as plt

    from povdyn import tables
    from povdyn.errors import NotEnoughDataError
    from test_notebook_engines import run_here

    data, panel, _ = register
    province = _largest_province(panel)
    with counting_pulls() as pulls:
        if where == "03_model_effectiveness":
            run_here(NOTEBOOKS / f"{where}.ipynb", dict(data_dir=str(data), region=province, period="2025Q4",
                                                         lang="vi", engine="duckdb"))
        else:
            page = tables.page_data(data, province, engine="duckdb")
            with contextlib.suppress(NotEnoughDataError), contextlib.redirect_stdout(io.StringIO()):
                tables.programmes_section(page, data, "2025Q4")
            plt.close("all")
    assert pulls.engine_rows["duckdb"]
    assert not _support_file_reads(pulls, data), f"{where} read support.parquet itself: {pulls.file_reads}"


# ------------------------------------------------------------------ on Spark
@pytest.mark.spark
def test_on_spark_the_measures_are_spark_sums_with_duckdbs_numbers(register, spark_session):
    """On a Spark Panel the deprivation measures and a province's support records are
    computed by Spark (no DuckDB query, no file read in pandas), pull as few rows as on
    DuckDB, and give DuckDB's numbers."""
    import povdyn
    from povdyn import deprivation, programs, standards

    data, duck, _ = register
    spark = povdyn.load_panel(data / "panel.parquet", engine="spark")
    indicators = [c for c in standards.INDICATORS_2022 if c in duck.columns]
    province = _largest_province(duck)

    def measures(panel):
        return {
            "summary": deprivation.deprivation_summary(panel, "2025Q4", lang="en"),
            "by province": deprivation.af_table_by(panel, indicators, by="province_2025", period="2025Q4"),
            "fragile outcomes": deprivation.fragile_exit_outcomes(panel, "2025Q2", within=2),
            "support": programs.support_records(data / "support.parquet", panel.region(province))
            .sort_values(list(programs.SUPPORT_COLUMNS), ignore_index=True),
        }

    on_duckdb = measures(duck)
    with counting_pulls() as pulls:
        on_spark = measures(spark)
    assert pulls.engine_rows["spark"] and not pulls.engine_rows["duckdb"]
    assert not pulls.file_reads
    assert pulls.largest() <= max(CELL_BUDGET, len(on_duckdb["support"]))
    for key, expected in on_duckdb.items():
        got = on_spark[key]
        pairs = got.items() if isinstance(got, dict) else [(key, got)]
        for name, frame in pairs:
            want = expected[name] if isinstance(expected, dict) else expected
            pd.testing.assert_frame_equal(frame.reset_index(drop=True), want.reset_index(drop=True),
                                          check_dtype=False, check_exact=False, rtol=1e-9, obj=f"{key}: {name}")
