"""Page-content defects found when the report was tried as a new user would (issue 15
§5), each reproduced here on a synthetic register before its fix."""
from __future__ import annotations

import pandas as pd
import pytest

from povdyn import tables, targets
from povdyn.errors import SchemaError
from povdyn.panel import load_panel


@pytest.fixture(scope="module")
def register():
    from povdyn.synth import generate

    return generate(households=1_500, seed=3, frequency="quarter").panel


def test_a_blank_ethnic_minority_cell_does_not_fail_the_page(register):
    """One blank ethnic_minority cell (ingest accepts it) must not sink targets or the
    group table: the blank is its own group, counted as neither."""
    df = register.copy()
    df["ethnic_minority"] = df["ethnic_minority"].astype("boolean")
    blank = df.index[(df["period"] == "2025Q4") & df["status"].notna()][:3]
    df.loc[blank, "ethnic_minority"] = pd.NA
    data = tables.PageData(panel=load_panel(df))
    progress = targets.progress_values(data, "2025Q4").set_index("indicator")
    known = df[(df["period"] == "2025Q4") & df["status"].notna() & df["ethnic_minority"].fillna(False)]
    # the ethnic-minority rate counts exactly the households marked ethnic minority
    shares = tables.status_shares(data, by="ethnic_minority")
    em_now = shares[(shares["period"] == "2025Q4") & shares["ethnic_minority"].eq(True)]
    assert int(em_now["households"].iloc[0]) == len(known)
    assert "em_poor_rate_reduction" in progress.index
    shown = tables.group_table(data, "2025Q4", lang="en")
    assert "Ethnic minority not recorded" in set(shown.iloc[:, 0])


def test_no_raw_column_names_in_the_deprivation_tables(register):
    from povdyn import deprivation

    summary = deprivation.deprivation_summary(load_panel(register), "2025Q4", lang="vi")
    for table in tables.deprivation_tables(summary, lang="vi"):
        for raw in ("H_se", "M0_se", "H", "A", "M0", "n", "n_poor"):
            assert raw not in table.columns, f"raw column {raw!r} on the page"


def test_near_poor_exit_table_says_near_poor_at_risk(register):
    data = tables.PageData(panel=load_panel(register))
    shown = tables.suppressed_rates(tables.metric("exit_rates", data, from_status="near_poor"), lang="vi")
    header = [c for c in shown.columns if "mẫu số" in c]
    assert header == ["Hộ cận nghèo kỳ trước (mẫu số)"]
    shown = tables.suppressed_rates(tables.metric("exit_rates", data), lang="en")
    assert "At risk (poor in previous period)" in shown.columns


def test_quarterly_flows_are_compared_with_the_same_quarter_only(register):
    """On quarterly data the annual-review quarter (Q4) set against an ad-hoc quarter
    (Q3) gave "+30 points" exit rates: flows are compared with the same quarter a year
    earlier, and the page says why not with the previous quarter."""
    data = tables.PageData(panel=load_panel(register))
    values = tables.headline_values(data, "2025Q4").set_index("key")
    shown = tables.headline(data, "2025Q4", lang="en", min_cell=1).set_index("Indicator")
    prev = shown["vs previous period"]
    flow_rows = ["Exit rate from poverty", "Exit rate from near-poverty", "Relapses into poverty",
                 "Newly poor households"]
    assert all(prev[r] == "" for r in flow_rows)
    assert prev["Poor rate"] != ""  # a stock may be compared with the previous quarter
    assert shown["vs same period last year"]["Exit rate from poverty"] != ""
    assert "same quarter" in shown.attrs["note"]
    # the like-quarter change is the one computed from the two periods' own rates
    change = 100 * (values.loc["exit_rate", "rate"] - values.loc["exit_rate", "year_rate"])
    text = shown["vs same period last year"]["Exit rate from poverty"]
    assert text.replace("\u00a0points", "").replace("+", "").replace("−", "-").replace("\u00a0", "") \
        == f"{change:.2f}".lstrip("+")


def test_an_empty_panel_is_a_clear_error(register, tmp_path):
    empty = register.iloc[:0]
    with pytest.raises(SchemaError, match="no rows"):
        load_panel(empty)
    path = tmp_path / "panel.parquet"
    empty.to_parquet(path)
    with pytest.raises(SchemaError, match="no rows"):
        load_panel(path)


def test_programmes_and_deprivation_sections_render_on_the_demo(tmp_path):
    """Both optional sections produce their tables and figures on the demo register
    (not the "being updated" note): a crash in them fails here and fails the page."""
    from test_report import write_small_register

    data_dir = write_small_register(tmp_path / "processed", households=12_000, seed=5, tiny=False)
    data = tables.page_data(data_dir, "national")
    shown = tables.programmes_section(data, data_dir, "2025Q4", within=2, lang="vi")
    assert len(shown["table"]) >= 5  # one row per programme of povdyn/data/programs.csv in the demo
    assert shown["figure"] is not None
    evaluated = shown["evaluation"].table
    assert evaluated["estimate"].notna().any()  # at least one model is estimated, not just noted
    dep = tables.deprivation_section(data, "2025Q4", lang="vi")
    assert len(dep["tables"]) == 2 and dep["figure"] is not None


def test_only_not_enough_data_shows_the_pending_note(capsys):
    from povdyn.errors import NotEnoughDataError

    def short():
        raise NotEnoughDataError("no support records")

    assert tables.optional_section(short, "Mô hình", "vi") is None
    assert "not enough data" in capsys.readouterr().err

    def broken():
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        tables.optional_section(broken, "Mô hình", "vi")


def test_without_support_records_the_programmes_section_is_pending(tmp_path, register):
    from povdyn.errors import NotEnoughDataError

    data = tables.PageData(panel=load_panel(register))
    with pytest.raises(NotEnoughDataError):
        tables.programmes_section(data, tmp_path, "2025Q4")


@pytest.mark.spark
def test_a_page_on_spark_publishes_the_duckdb_numbers(spark_session, tmp_path):
    """engine="spark" runs the page's numbers on Spark: headline, targets, trends,
    flows, provinces and groups equal those on DuckDB (lists with totals, the harder
    case: the totals join runs on the engine too)."""
    from povdyn.cli import main as cli

    assert cli(["-q", "demo", "--households", "1500", "--seed", "4", "--style", "lists",
                "--out", str(tmp_path / "raw")]) == 0
    assert cli(["-q", "ingest", str(tmp_path / "raw"), "--out", str(tmp_path / "processed")]) == 0
    duck = tables.page_data(tmp_path / "processed", engine="duckdb")
    spark = tables.page_data(tmp_path / "processed", engine="spark")
    assert (duck.panel.engine, spark.panel.engine) == ("duckdb", "spark")
    assert spark.register == "lists" and spark.rates_known
    a = tables.page_numbers(duck, "2025Q4", n_boot=50)
    b = tables.page_numbers(spark, "2025Q4", n_boot=50)
    for key in ("headline", "targets", "projection", "trend_shares", "trend_exits", "relapse", "flows",
                "provinces"):
        pd.testing.assert_frame_equal(a[key].reset_index(drop=True), b[key].reset_index(drop=True),
                                      check_dtype=False, obj=key)
    for by in a["groups"]:
        pd.testing.assert_frame_equal(a["groups"][by], b["groups"][by], check_dtype=False, obj=by)


@pytest.mark.parametrize("with_totals", [True, False])
def test_the_report_page_renders_from_lists(tmp_path, with_totals):
    """`povdyn demo --style lists` -> `povdyn ingest` -> the report notebook: the page
    renders without an error; with the totals it prints rates, without them it says
    that rates need the household totals and prints none."""
    import json
    from pathlib import Path

    from povdyn.cli import main as cli
    from povdyn.labels import text
    from povdyn.report import execute_notebook

    assert cli(["-q", "demo", "--households", "3000", "--seed", "8", "--style", "lists",
                "--out", str(tmp_path / "raw")]) == 0
    if not with_totals:
        (tmp_path / "raw" / "tong_so_ho.csv").unlink()
    assert cli(["-q", "ingest", str(tmp_path / "raw"), "--out", str(tmp_path / "processed")]) == 0
    notebook = Path(__file__).resolve().parents[1] / "notebooks" / "quarterly_report.ipynb"
    out = tmp_path / "page.ipynb"
    execute_notebook(notebook, out, dict(data_dir=str(tmp_path / "processed"), period="2025Q4", lang="en"))
    page = json.loads(out.read_text(encoding="utf-8"))
    outputs = [o for c in page["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert not any(o.get("output_type") == "error" for o in outputs)
    shown = json.dumps(outputs, ensure_ascii=False)
    needs = text("rates_need_totals", "en")[:60]
    assert (needs in shown) is (not with_totals)
    assert "The data are poor and near-poor lists" in shown  # the methods note for lists


def test_the_standard_parameter_flags_the_change_of_standard(register):
    """`standard` is honoured: the page names the period where that standard changed --
    the national one from the 2016-21 to the 2022-25 standard at 2022Q1 (Decree
    07/2021), not the 2025 -> 2026 continuation (domain.md)."""
    data = tables.PageData(panel=load_panel(register))
    assert tables.standard_change_note(data, "national", "en") == ["2022Q1"]


def test_national_shares_at_an_annual_period_given_as_text():
    """Found running the national page on an annual register (issue 15 §4, 27M
    households x 5 reviews): the page's `period` parameter is text ("2025") while an
    annual register's periods are ints, and the provinces cell's lookup of the national
    poor rate by label failed with KeyError: '2025'."""
    rows = [(f"h{i}", year, "poor" if (i + year) % 4 == 0 else "non_poor", "Lào Cai")
            for i in range(40) for year in (2024, 2025)]
    panel = load_panel(pd.DataFrame(rows, columns=["household_id", "period", "status", "province"]))
    data = tables.PageData(panel=panel)
    row = tables.status_shares_at(data, "2025")
    assert len(row) == 1 and row["period"].iloc[0] == 2025
    poor_2025 = sum(1 for _, year, status, _ in rows if year == 2025 and status == "poor")
    assert row["poor"].iloc[0] == poor_2025 and row["households"].iloc[0] == 40
