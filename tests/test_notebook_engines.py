"""Every analysts' notebook honours its ``engine`` parameter and never pulls the whole
register into pandas (issue 15 §2; architecture.md: "only the rows a fitter needs
(spells, baseline households of a programme) are ever pulled into pandas -- never the
whole register").

How it is checked. Each notebook runs here, in this process, as papermill runs it: its
parameters cell, then papermill's injected parameters (``parameterize_notebook``), then
every other code cell in order. One process, so one Spark session serves every Spark
run of the module (a papermill kernel per notebook would start a JVM per notebook).
While a notebook runs, every way rows leave the engine or the files is counted:

* the Ibis backends' ``execute`` and ``to_pyarrow`` on DuckDB and on Spark (the rows of
  each result, and which engine gave them);
* the parquet and csv readers of pandas and pyarrow (``pd.read_parquet``,
  ``pq.read_table``, ``pq.ParquetFile.read``, ``pd.read_csv``): the rows read, and
  whether the file read is a file of the panel itself.

The register is a quarterly demo of 17 reviews. The row budget: no single pull is more
than a quarter of the register's rows (the rows of its annual reviews -- more than any
cell of these notebooks needs), and no notebook reads the panel's files with pandas or
pyarrow. ``pd.read_parquet`` of the panel breaks both (it reads every row); so does a
metric handed the whole register as one pandas frame.

On Spark (``engine="spark"``): every pull comes from Spark (none from DuckDB, no panel
file read), and the numbers the notebook shows are DuckDB's. Run for 03 and 04, which
read the register through povdyn.programs / povdyn.deprivation themselves; 01 and 02 read
it only through ``tables.page_data`` and the metrics of the report pages, whose Spark
numbers test_pages and test_report_spark compare with DuckDB's (each Spark notebook
costs 10-50 s of CI: 01 alone took 23-51 s on this demo).
"""
from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

from test_report import write_small_register

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
# the analysts' notebooks, and the commune page (05_relapse_warning belongs to #12's
# tests; quarterly_report is the report page, tested by test_report*)
ANALYSTS = ["01_exit_rates", "02_relapse", "03_model_effectiveness", "04_deprivations"]
PAGES = ANALYSTS + ["commune_report"]
ON_SPARK = ["03_model_effectiveness", "04_deprivations"]  # module docstring
# the share of the register's rows no single pull may exceed (module docstring)
ROW_BUDGET_SHARE = 0.25
HOUSEHOLDS = 8_000  # enough treated households for the programme evaluation to estimate


@dataclass
class Pulls:
    """Rows that left the engine or the files while a notebook ran."""

    engine_rows: dict = field(default_factory=lambda: {"duckdb": [], "spark": []})
    file_reads: list = field(default_factory=list)  # (path, rows)
    depth: int = 0

    def largest(self) -> int:
        return max([*self.engine_rows["duckdb"], *self.engine_rows["spark"], *(r for _, r in self.file_reads)],
                   default=0)


def _rows_of(result) -> int:
    if hasattr(result, "num_rows"):
        return int(result.num_rows)
    if isinstance(result, (pd.DataFrame, pd.Series)):
        return len(result)
    return 1  # a scalar


@contextlib.contextmanager
def counting_pulls():
    """Count every result of the engines and every file read (module docstring) while
    the block runs; yields the Pulls. Nested calls (an execute that calls to_pyarrow)
    count once."""
    import ibis.backends.duckdb as duckdb_backend
    import ibis.backends.pyspark as spark_backend
    import pyarrow.parquet as pq

    pulls = Pulls()
    originals = []

    def patch(owner, name, record):
        original = getattr(owner, name)

        def counted(*args, **kwargs):
            pulls.depth += 1
            try:
                result = original(*args, **kwargs)
            finally:
                pulls.depth -= 1
            if pulls.depth == 0:
                record(args, result)
            return result

        originals.append((owner, name, original))
        setattr(owner, name, counted)

    def from_engine(engine):
        return lambda args, result: pulls.engine_rows[engine].append(_rows_of(result))

    def from_file(args, result):
        source = args[0] if args else None
        if isinstance(source, pq.ParquetFile):
            source = getattr(source, "_povdyn_path", None)
        pulls.file_reads.append((str(source), _rows_of(result)))

    for owner, engine in ((duckdb_backend.Backend, "duckdb"), (spark_backend.Backend, "spark")):
        patch(owner, "execute", from_engine(engine))
        patch(owner, "to_pyarrow", from_engine(engine))
    patch(pd, "read_parquet", from_file)
    patch(pd, "read_csv", from_file)
    patch(pq, "read_table", from_file)
    patch(pq.ParquetFile, "read", from_file)
    try:
        yield pulls
    finally:
        for owner, name, original in reversed(originals):
            setattr(owner, name, original)


def run_here(notebook: Path, parameters: dict) -> dict:
    """Run a notebook's code cells in this process as papermill would (its parameters
    cell, the injected parameters, the rest); returns the namespace it leaves."""
    import matplotlib.pyplot as plt
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    nb = parameterize_notebook(load_notebook_node(str(notebook)), parameters)
    namespace: dict = {"__name__": "__main__"}
    try:
        for cell in nb.cells:
            if cell.cell_type == "code":
                with contextlib.redirect_stdout(io.StringIO()):
                    exec(compile(cell.source, str(notebook), "exec"), namespace)  # noqa: S102
    finally:
        plt.close("all")
    return namespace


@pytest.fixture(scope="module")
def register(tmp_path_factory):
    """A quarterly demo register (17 reviews) with its support records, the 2025
    communes and the commune adoption register; (data folder, rows of the panel)."""
    import matplotlib

    matplotlib.use("Agg")
    from povdyn.synth import generate

    data = write_small_register(tmp_path_factory.mktemp("engines"), households=HOUSEHOLDS, seed=5,
                                tiny=False, communes=True)
    generate(households=HOUSEHOLDS, seed=5, frequency="quarter").adoption.to_parquet(
        data / "adoption.parquet", index=False)
    rows = pd.read_parquet(data / "panel.parquet", columns=["household_id"]).shape[0]
    return data, rows


def _parameters(name: str, data: Path, engine: str) -> dict:
    params = dict(data_dir=str(data), period="2025Q4", lang="vi", engine=engine)
    if name == "commune_report":  # the commune with the most rows
        rows = pd.read_parquet(data / "panel.parquet", columns=["province_2025", "commune_2025"])
        province, commune = rows.value_counts().index[0]
        params.update(region=province, commune=commune, period="latest")
    return params


def _run(name: str, data: Path, engine: str):
    params = _parameters(name, data, engine)
    with counting_pulls() as pulls:
        namespace = run_here(NOTEBOOKS / f"{name}.ipynb", params)
    return namespace, pulls


@pytest.fixture(scope="module")
def on_duckdb(register):
    data, _ = register
    return {name: _run(name, data, "duckdb") for name in PAGES}


@pytest.fixture(scope="module")
def on_spark(register, spark_session):
    data, _ = register
    return {name: _run(name, data, "spark") for name in ON_SPARK}


def _panel_file_reads(pulls: Pulls, data: Path) -> list:
    panel = str((data / "panel.parquet").resolve())
    return [(path, rows) for path, rows in pulls.file_reads
            if path and str(Path(path).resolve()).startswith(panel)]


@pytest.mark.parametrize("name", PAGES)
def test_no_cell_pulls_the_register(register, on_duckdb, name):
    data, rows = register
    _, pulls = on_duckdb[name]
    assert not _panel_file_reads(pulls, data), f"{name} read the panel's files itself: {pulls.file_reads}"
    budget = ROW_BUDGET_SHARE * rows
    assert pulls.largest() <= budget, (
        f"{name} pulled {pulls.largest():,} rows at once (register: {rows:,} rows, budget {budget:,.0f}); "
        f"engine pulls {sorted(pulls.engine_rows['duckdb'])[-5:]}, file reads {pulls.file_reads}")
    assert pulls.engine_rows["duckdb"], f"{name} ran no query on its engine"


def _headline(name: str, ns: dict) -> dict[str, pd.DataFrame]:
    """The numbers each notebook shows, as tables to compare across engines."""
    if name == "03_model_effectiveness":
        ev = ns["evaluation"]
        out = {"models": ev.table[["program", "estimate", "se", "p_adjusted", "n_treated", "n_control", "naive"]],
               "cohorts": ev.cohorts}
        out.update({f"event study {code}": r.event_time for code, r in ev.event_study.items()})
        return out
    if name == "04_deprivations":
        s = ns["summary"]
        return {"af": s["af"], "persistent": s["persistent"].reset_index(), "fragile": s["fragile"],
                "reclassified": pd.DataFrame([ns["reclass"].summary]), "flows": ns["flows"].table}
    raise KeyError(name)


def test_the_programme_evaluation_estimates_on_this_register(on_duckdb):
    """The comparison below is only worth something if models get estimates and event
    studies: the demo is large enough for them."""
    ev = on_duckdb["03_model_effectiveness"][0]["evaluation"]
    assert ev.table["estimate"].notna().sum() >= 2
    assert ev.event_study


@pytest.mark.spark
@pytest.mark.parametrize("name", ON_SPARK)
def test_on_spark_the_notebook_runs_on_spark_with_duckdbs_numbers(register, on_duckdb, on_spark, name):
    data, _ = register
    ns, pulls = on_spark[name]
    assert pulls.engine_rows["spark"], f"{name} with engine='spark' ran no Spark query"
    assert not pulls.engine_rows["duckdb"], f"{name} with engine='spark' still ran DuckDB queries"
    assert not _panel_file_reads(pulls, data), f"{name} read the panel's files itself"
    spark, duck = _headline(name, ns), _headline(name, on_duckdb[name][0])
    assert spark.keys() == duck.keys()
    for key in duck:
        pd.testing.assert_frame_equal(spark[key].reset_index(drop=True), duck[key].reset_index(drop=True),
                                      check_dtype=False, check_exact=False, rtol=1e-7, obj=f"{name}: {key}")


# ------------------------------------------------------------------ the library beneath
@pytest.fixture(scope="module")
def panel_with_gaps(register, tmp_path_factory):
    """The demo register with communes left blank: on 40 households' first annual
    review (their first recorded commune is a later one) and on every row of 25
    households (no commune: no commune rate counts them)."""
    data, _ = register
    frame = pd.read_parquet(data / "panel.parquet")
    ids = frame["household_id"].drop_duplicates().to_numpy()
    q4 = frame["period"].astype(str).str.endswith("Q4")
    first_review = frame[q4].groupby("household_id")["period"].transform("min") == frame.loc[q4, "period"]
    blank_first = frame.index.isin(first_review[first_review].index) & frame["household_id"].isin(ids[:40])
    frame.loc[blank_first | frame["household_id"].isin(ids[40:65]), "commune"] = None
    out = tmp_path_factory.mktemp("gaps")
    frame.to_parquet(out / "panel.parquet", index=False)
    return out / "panel.parquet"


def test_engine_side_evaluation_equals_the_whole_register_in_pandas(register, panel_with_gaps):
    """programs.evaluate_programs on a Panel pulls only the annual reviews of households
    ever poor or supported and computes the commune poverty rates in the engine; every
    number (models, cohorts, multiple testing, event studies) is what the whole register
    in pandas gives, blank communes included."""
    import povdyn
    from povdyn import programs

    data, _ = register
    support = pd.read_parquet(data / "support.parquet")
    adoption = programs.find_adoption(data)
    panel = povdyn.load_panel(panel_with_gaps)
    kwargs = dict(within=2, period="2025Q4", adoption=adoption, n_boot=99, programs=["credit", "livestock"])
    with counting_pulls() as pulls:
        engine = programs.evaluate_programs(panel, support, **kwargs)
    whole = programs.evaluate_programs(panel.to_pandas(), support, **kwargs)
    assert pulls.largest() <= ROW_BUDGET_SHARE * len(panel)
    pd.testing.assert_frame_equal(engine.table, whole.table)
    pd.testing.assert_frame_equal(engine.cohorts, whole.cohorts)
    pd.testing.assert_frame_equal(engine.multiple_testing, whole.multiple_testing)
    assert engine.event_study.keys() == whole.event_study.keys() and engine.event_study
    for code in whole.event_study:
        pd.testing.assert_frame_equal(engine.event_study[code].event_time, whole.event_study[code].event_time)
        assert engine.event_study[code].pretrend == whole.event_study[code].pretrend


def test_commune_rates_leave_out_households_without_a_commune(panel_with_gaps):
    """The engine's commune-year panel: a household counts in its first recorded commune
    (a blank first review does not make a "None" commune) and a household never given
    one counts nowhere -- the same rows as the pandas computation on the whole frame."""
    import povdyn
    from povdyn import programs

    panel = povdyn.load_panel(panel_with_gaps)
    rates = programs.commune_poverty_rates(panel, until="2025Q4")
    ann = programs.annual_reviews(panel.to_pandas(), until="2025Q4")
    by_pandas = programs._prepare(ann).commune_year
    assert not rates["commune_key"].str.contains("None|nan").any()
    with_commune = ann.groupby("household_id")["commune"].transform(lambda c: c.notna().any())
    assert rates["households"].sum() == with_commune.sum() < len(ann)
    pd.testing.assert_frame_equal(rates, by_pandas[rates.columns.tolist()], check_dtype=False)


def test_a_province_s_evaluation_uses_its_own_support_records(register):
    """On a province (Panel.region, or region= on the whole Panel) the support records
    of other provinces' households are left out, as on a pandas frame of the province."""
    import povdyn
    from povdyn import programs

    data, _ = register
    support = pd.read_parquet(data / "support.parquet")
    panel = povdyn.load_panel(data / "panel.parquet")
    province = panel.to_pandas(columns=["province_2025"])["province_2025"].value_counts().index[0]
    kwargs = dict(within=2, period="2025Q4", event_study=False, n_boot=99)
    view = programs.evaluate_programs(panel.region(province), support, **kwargs).table
    named = programs.evaluate_programs(panel, support, region=province, **kwargs).table
    frame = programs.evaluate_programs(panel.to_pandas(), support, region=province, **kwargs).table
    pd.testing.assert_frame_equal(view, frame)
    pd.testing.assert_frame_equal(named, frame)
    assert frame["n_treated_records"].sum() < programs._support_years(support).groupby("program")[
        "household_id"].nunique().sum()


def test_deprivation_cells_read_from_a_panel_what_the_whole_frame_gives(register):
    """04's cells on a Panel -- fragile exits' relapse, the flows across the 2021 -> 2022
    change, the trajectory groups behind the persistent deprivations -- give what they
    give on the whole register in pandas, each pulling at most three reviews' rows
    (the exits' later reviews: only households poor before; earlier poor rows: only
    households poor now)."""
    import povdyn
    from povdyn import deprivation, standard_change

    data, _ = register
    panel = povdyn.load_panel(data / "panel.parquet")
    whole = panel.to_pandas()
    review_rows = whole.groupby("period").size().max()
    with counting_pulls() as pulls:
        fragile = deprivation.fragile_exit_outcomes(panel, "2025Q2", within=2)
        flows = standard_change.decompose_flows(panel, "2021Q4", "2022Q1")
        groups = deprivation.trajectory_groups(panel, "2025Q4")
    assert pulls.largest() <= 3 * review_rows
    pd.testing.assert_frame_equal(fragile, deprivation.fragile_exit_outcomes(whole, "2025Q2", within=2))
    pd.testing.assert_frame_equal(flows.table, standard_change.decompose_flows(whole, "2021Q4", "2022Q1").table)
    by_whole = deprivation.trajectory_groups(whole, "2025Q4")
    assert fragile["exits"].sum() > 0 and set(by_whole["group"]) == {"exited", "stayed_poor", "relapsed", "new_poor"}
    columns = ["household_id", "group", "prev_status"]
    pd.testing.assert_frame_equal(groups[columns].sort_values("household_id", ignore_index=True),
                                  by_whole[columns].sort_values("household_id", ignore_index=True))
