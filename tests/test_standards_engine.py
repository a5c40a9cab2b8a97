"""``standards.classify`` (vectorised in numpy) and the engine-side ``standards.with_status``
are one rule: random rows (hypothesis) classified by ``classify`` and by ``with_status`` (the
pandas frame as an Ibis memtable on DuckDB, ``classify_on_engine``) agree with a row-by-row reading of the
rule (written here from the module docstring and the dated lines of the data file), for
every edge case: missing and NaN incomes, numbers written as text, incomes exactly at a
line or bound and one VND either side, area spelling and case, unknown and missing
areas, missing periods, periods at the first and last quarter of each standard and
annual reviews, indicator values that are missing / NaN / 0-1 numbers. The same rows as
an Ibis table on DuckDB give the same statuses, and an uncovered period is an error.
"""
from __future__ import annotations

import math

import ibis
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from povdyn import standards
from povdyn.engine import connect
from povdyn.errors import StandardError
from povdyn.periods import label, parse_period

ALL_INDICATORS = sorted(set(standards.INDICATORS_2022) | set(standards.INDICATORS_2027))
# each standard's first and last quarter, and annual reviews, per scope
PERIODS = {
    "national": ["2016Q1", "2021Q4", 2021, "2022Q1", 2022, "2025Q4", 2025, "2026Q1", 2026,
                 "2026Q4", "2027Q1", 2027, "2030Q4"],
    "hcmc": ["2021Q1", 2021, "2025Q3", "2025Q4", 2024],
}
PERIODS["hanoi"] = PERIODS["national"]
AREAS = ["urban", "rural", " Urban ", "RURAL", "Rural\t", "\nurban", "town", "", None]


def _lines() -> list[float]:
    table = standards.list_standards()
    return sorted(set(table.poor_income_max.astype(float)) | set(table.near_poor_income_max.astype(float)))


def _income():
    at_lines = st.sampled_from(_lines()).flatmap(
        lambda line: st.sampled_from([line, line - 1, line + 1, math.floor(line), math.ceil(line)]))
    return st.one_of(at_lines, st.floats(0, 6e6, allow_nan=False), st.just(float("nan")), st.none(),
                     at_lines.map(lambda v: str(int(v))), st.just("unknown"))


def _indicator():
    return st.sampled_from([True, False, None, 1, 0, float("nan")])


@st.composite
def households(draw, scope):
    n = draw(st.integers(1, 25))
    rows = []
    for _ in range(n):
        row = {"period": draw(st.sampled_from(PERIODS[scope] + [None])),
               "area": draw(st.sampled_from(AREAS)), "income_pc_month": draw(_income())}
        row.update({c: draw(_indicator()) for c in ALL_INDICATORS})
        rows.append(row)
    return pd.DataFrame(rows)


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def reference_status(row: dict, standard: str):
    """The rule of povdyn.standards, one household at a time."""
    if _is_missing(row["period"]):
        return None
    rule = standards.standard_for(row["period"], standard)
    area = None if _is_missing(row["area"]) else str(row["area"]).strip().lower()
    income = pd.to_numeric(pd.Series([row["income_pc_month"]], dtype=object), errors="coerce").iloc[0]
    if area not in ("urban", "rural") or _is_missing(income):
        return None
    line, bound = rule.poor_income_max[area], rule.near_poor_income_max[area]
    below = income < line if rule.poor_bound == "lt" else income <= line
    band = not below and income <= bound
    count = sum(1 for c in rule.indicators if not _is_missing(row[c]) and bool(row[c]))
    poor = (below and count >= rule.min_deprivations_below_line) or (
        band and rule.min_deprivations_in_band is not None and count >= rule.min_deprivations_in_band)
    if poor:
        return "poor"
    return "near_poor" if below or band else "non_poor"


@pytest.mark.parametrize("standard", ["national", "hcmc", "hanoi"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_classify_follows_the_rule_row_by_row(standard, data):
    df = data.draw(households(standard.replace("hanoi", "national")))
    want = [reference_status(row, standard) for row in df.to_dict("records")]
    for path in (standards.classify, standards.classify_on_engine):
        got = path(df, standard=standard)
        assert list(got.index) == list(df.index)
        assert got.tolist() == want, path.__name__


def _register_period(value):
    """A period as the register stores it: the canonical text label ("2021", "2025Q3"),
    or None. pandas turns a column of years with a missing one into floats (2021.0), which
    the register never holds as text."""
    if _is_missing(value):
        return None
    return str(label(*parse_period(value)))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(df=households("national"))
# hypothesis found it: years and a missing period make a float column (2021.0, NaN)
@example(df=pd.DataFrame({"period": [2021, None], "area": ["urban", "rural"], "income_pc_month": [1.0, 2.0],
                          **{c: [None, None] for c in ALL_INDICATORS}}))
def test_an_engine_table_gets_the_statuses_of_the_pandas_frame(df):
    """The register's own column types (text periods, text areas, float incomes,
    boolean indicators with NULLs) on DuckDB: with_status == classify."""
    typed = df.assign(period=df["period"].map(_register_period),
                      income_pc_month=pd.to_numeric(df["income_pc_month"], errors="coerce"),
                      area=df["area"].astype("string"),
                      **{c: df[c].map(lambda v: None if _is_missing(v) else bool(v)).astype("boolean")
                         for c in ALL_INDICATORS})
    typed["_order"] = range(len(typed))
    table = ibis.memtable(typed)
    periods = sorted({p for p in typed["period"] if p is not None})
    on_engine = connect("duckdb").execute(standards.with_status(table, periods=periods).order_by("_order"))
    got = [None if pd.isna(s) else s for s in on_engine["status"]]
    assert got == standards.classify(typed).tolist()
    assert got == [reference_status(row, "national") for row in df.to_dict("records")]


def test_every_line_is_met_by_the_random_incomes():
    """The strategy above reaches every line and bound of the data file exactly."""
    assert len(_lines()) >= 8 and all(float(v) in _lines() for v in (700_000, 1_500_000, 3_000_000, 4_500_000))


def test_an_uncovered_period_is_an_error_on_the_engine_too():
    table = ibis.memtable(pd.DataFrame({"period": ["2031Q1"], "area": ["rural"], "income_pc_month": [1.0]}))
    with pytest.raises(StandardError, match="2031Q1"):
        standards.with_status(table, periods=["2031Q1"], deprivations=[])
    with pytest.raises(StandardError, match="2026Q1"):
        standards.classify(pd.DataFrame({"period": ["2026Q1"], "area": ["urban"], "income_pc_month": [1.0]}),
                           standard="hcmc")
    with pytest.raises(StandardError, match="2026Q1"):
        standards.classify_on_engine(pd.DataFrame({"period": ["2026Q1"], "area": ["urban"],
                                                   "income_pc_month": [1.0]}), standard="hcmc")
