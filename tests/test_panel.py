"""load_panel: sources, in-engine validation, list-based expansion, annual view.
Every expected table here is written out by hand from the rules in povdyn.panel."""
from __future__ import annotations

import warnings

import pandas as pd
import pytest

import povdyn
from povdyn.errors import PeriodError, SchemaError
from povdyn.panel import Panel, load_panel


def frame(rows, cols=("household_id", "period", "status", "province", "removal_reason")):
    width = max(len(r) for r in rows)
    rows = [tuple(r) + (None,) * (width - len(r)) for r in rows]
    df = pd.DataFrame(rows, columns=list(cols[:width]))
    if "province" not in df.columns:
        df["province"] = "Sơn La"
    df["province"] = df["province"].fillna("Sơn La")
    return df


def quarterly():
    return frame([
        ("a", "2024Q1", "poor"), ("a", "2024Q2", "near_poor"), ("a", "2024Q4", "poor"),
        ("b", "2024Q1", "poor"), ("b", "2024Q2", None, "Sơn La", "death"),
        ("c", "2024Q1", "near_poor"), ("c", "2024Q3", "poor"),
        ("c", "2025Q1", "near_poor"), ("c", "2025Q2", "near_poor"),
    ])


def rows_of(panel: Panel):
    df = panel.to_pandas()
    return [(r.household_id, r.period, r.status, r.removal_reason)
            for r in df.itertuples()]


def test_periods_and_index():
    p = load_panel(quarterly())
    assert p.frequency == "quarter"
    assert p.periods == ["2024Q1", "2024Q2", "2024Q3", "2024Q4", "2025Q1", "2025Q2"]
    assert p.period_indices == [2024 * 4 + i for i in range(6)]
    df = p.to_pandas()
    assert (df["period_index"] == df["period"].map(lambda s: int(s[:4]) * 4 + int(s[5]) - 1)).all()
    assert len(p) == 9
    assert povdyn.load_panel is load_panel


def test_list_based_expansion_by_hand():
    p = load_panel(quarterly(), absent_means="non_poor")
    got = rows_of(p)
    assert got == [
        ("a", "2024Q1", "poor", None), ("a", "2024Q2", "near_poor", None),
        ("a", "2024Q3", "non_poor", None), ("a", "2024Q4", "poor", None),
        ("a", "2025Q1", "non_poor", None), ("a", "2025Q2", "non_poor", None),
        # b: removal in Q2 -> nothing added from then on
        ("b", "2024Q1", "poor", None), ("b", "2024Q2", None, "death"),
        ("c", "2024Q1", "near_poor", None), ("c", "2024Q2", "non_poor", None),
        ("c", "2024Q3", "poor", None), ("c", "2024Q4", "non_poor", None),
        ("c", "2025Q1", "near_poor", None), ("c", "2025Q2", "near_poor", None),
    ]


def test_added_rows_carry_latest_listed_row():
    df = frame([("a", 2020, "poor", "Hà Giang"), ("a", 2022, "poor", "Tuyên Quang"),
                ("z", 2020, "poor", "X"), ("z", 2021, "poor", "X"), ("z", 2022, "poor", "X"),
                ("z", 2023, "poor", "X")])
    got = load_panel(df, absent_means="non_poor").to_pandas().query("household_id == 'a'")
    assert got[["period", "status", "province"]].values.tolist() == [
        [2020, "poor", "Hà Giang"], [2021, "non_poor", "Hà Giang"],
        [2022, "poor", "Tuyên Quang"], [2023, "non_poor", "Tuyên Quang"]]


def test_annual_view_by_hand():
    with pytest.warns(UserWarning, match=r"no Q4 snapshot for \[2025\].*Q2"):
        p = load_panel(quarterly(), frequency="year")
    assert p.frequency == "year" and p.periods == [2024, 2025]
    # 2024 read at Q4 (a), b's removal in 2024Q2 kept as its 2024 row, c absent in 2024Q4;
    # 2025 is partial: read at Q2
    assert rows_of(p) == [("a", 2024, "poor", None), ("b", 2024, None, "death"),
                          ("c", 2025, "near_poor", None)]
    with pytest.raises(PeriodError, match="annual"):
        load_panel(frame([("a", 2024, "poor")]), frequency="quarter")


def test_sources_agree(tmp_path):
    df = quarterly()
    file = tmp_path / "panel.parquet"
    df.to_parquet(file, index=False)
    folder = tmp_path / "dataset"
    folder.mkdir()
    df.iloc[:4].to_parquet(folder / "part-0.parquet", index=False)
    df.iloc[4:].to_parquet(folder / "part-1.parquet", index=False)
    csv = tmp_path / "panel.csv"
    df.to_csv(csv, index=False)
    want = rows_of(load_panel(df))
    for source in (file, str(file), folder, csv):
        assert rows_of(load_panel(source)) == want, source
    p = load_panel(file)
    assert load_panel(p) is p
    assert rows_of(load_panel(p.table)) == want
    # a Panel re-read with other options
    assert len(rows_of(load_panel(p, absent_means="non_poor"))) == 14


def test_vietnamese_headers_through_schema(tmp_path):
    df = pd.DataFrame({"Mã hộ": ["a", "a"], "Năm": [2023, 2024],
                       "Phân loại hộ": ["Hộ nghèo", "Hộ cận nghèo"], "Tỉnh": ["Lào Cai"] * 2})
    p = load_panel(df)
    assert rows_of(p) == [("a", 2023, "poor", None), ("a", 2024, "near_poor", None)]


@pytest.mark.parametrize("bad, message", [
    ([("a", 2024, "rich")], "unknown value"),
    ([("a", 2024, "poor"), ("a", 2024, "near_poor")], "more than one row|repeat"),
    ([("a", 2024, "poor"), ("b", "2024Q1", "poor")], "annual and quarterly"),
    ([("a", 2024, None)], "status"),
])
def test_bad_parquet_is_caught_in_engine(tmp_path, bad, message):
    df = frame(bad)
    df["period"] = df["period"].astype(str)
    path = tmp_path / "bad.parquet"
    df.to_parquet(path, index=False)
    with pytest.raises((SchemaError, PeriodError), match=message) as err:
        load_panel(path, check_duplicates=True)
    assert "household_id" in str(err.value)
    # without the load-time scan, the metrics' own pass refuses the same panel
    with pytest.raises((SchemaError, PeriodError), match=message) as err:
        povdyn.exit_rates(load_panel(path) if "more than one" not in message else path)
    assert "household_id" in str(err.value)


def test_bad_dataframe_is_caught_by_schema():
    with pytest.raises(SchemaError, match="status"):
        load_panel(frame([("a", 2024, "rich")]))
    with pytest.raises(SchemaError, match="repeat|more than one"):
        load_panel(frame([("a", 2024, "poor"), ("a", 2024, "poor")]))


def test_missing_columns_and_paths(tmp_path):
    with pytest.raises(SchemaError, match="no such file"):
        load_panel(tmp_path / "nothing.parquet")
    path = tmp_path / "x.parquet"
    pd.DataFrame({"household_id": ["a"], "period": [2024]}).to_parquet(path)
    with pytest.raises(SchemaError, match=r"missing required column.*status"):
        load_panel(path)
    with pytest.raises(SchemaError, match="absent_means"):
        load_panel(frame([("a", 2024, "poor")]), absent_means="poor")


def test_metrics_accept_paths(tmp_path):
    path = tmp_path / "panel.parquet"
    quarterly().to_parquet(path, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        out = povdyn.exit_rates(path)
    assert out.set_index("period").loc["2024Q2", "at_risk"] == 1


def test_cached_view_holds_the_same_rows_on_the_panels_own_engine():
    """Panel.cached (a report page's rows held by the engine): a list register built from
    a DataFrame -- an Ibis memtable, which Table.cache() alone would cache on Ibis'
    default connection -- gives the same rows and flows from the cache, the cache lives
    on the Panel's connection, and it is released with the Panel."""
    import gc

    from povdyn import dynamics

    p = load_panel(quarterly(), absent_means="non_poor")
    c = p.cached()
    assert rows_of(c) == rows_of(p)
    pd.testing.assert_frame_equal(dynamics.exit_rates(c), dynamics.exit_rates(p))
    name = c.table.op().name

    def temp_tables():
        return {r[0] for r in p.con.raw_sql("SELECT table_name FROM duckdb_tables()").fetchall()}

    assert name in temp_tables()
    del c
    gc.collect()
    assert name not in temp_tables()
