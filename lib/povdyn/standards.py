"""Dated poverty standards (chuẩn nghèo) as data, and the classification they imply.

The standards live in ``lib/povdyn/data/standards.csv`` — one row per standard and area,
with the periods it covers, its income lines (VND per person per MONTH) and its
deprivation rule. There are no if-chains per year here: a new standard is a new row.

The rule every row encodes (income "at the line counts as below": ``<=``, except where
the row's ``poor_bound`` is ``lt``, i.e. a strict "below", as in Ho Chi Minh City's
2021–2025 "poor < 36M VND/person/year"):

* ``below``  = income <= poor_income_max                       (the poverty line)
* ``band``   = not below and income <= near_poor_income_max    (the near-poor band)
* ``poor``   = (below and deprivations >= min_deprivations_below_line)
               or (band and deprivations >= min_deprivations_in_band)
* ``near_poor`` = (below or band) and not poor;  ``non_poor`` otherwise.

What that means per standard:

* **national_2016_2021** (Decision 59/2015/QĐ-TTg; also the 2021 review): rural line
  700,000, urban 900,000; near-poor upper bound 1,000,000 rural / 1,300,000 urban.
  Poor = income <= line, or income <= upper bound with >= 3 of the 10 deprivations.
  Near-poor = income <= upper bound with < 3 deprivations (and above the line).
  The 10 indicators of 2016 are not recorded in the 2022 registers; we stand in for them
  with the 10 of the 12 current indicators that match them (access to health services
  -> ``dep_nutrition``; health insurance -> ``dep_health_insurance``; adult education and
  child school attendance; housing quality and area; clean water; hygienic latrine;
  telecommunication use; information-access assets -> ``dep_info_devices``). The two
  employment-dimension indicators of 2022 (``dep_employment``, ``dep_dependants``) are
  left out.
* **national_2022_2025** (Decree 07/2021/NĐ-CP): 1,500,000 rural / 2,000,000 urban.
  Poor = income <= line and >= 3 of 12 deprivations; near-poor = income <= line and < 3.
* **national_2026**: the same (Decree 351/2025/NĐ-CP keeps it for 2026).
* **national_2027_2030** (Decree 351/2025/NĐ-CP): 2,200,000 rural / 2,800,000 urban, same
  >= 3 rule; ``dep_info_devices`` replaced by ``dep_digital_services``, ``dep_waste`` added.
* **hcmc_2021_2025** (Ho Chi Minh City local standard): poor = income < 36M VND/person/
  year (3,000,000/month, strict); near-poor = 36M–46M/year (<= 3,833,333/month). Income
  only, as the domain brief gives it (the city's own deprivation criteria are not
  encoded). Covers 2021Q1–2025Q3.
* **hcmc_2025** (the city's 2025 review): poor <= 46M/year, near-poor 46M–54M/year
  (<= 4,500,000/month). Covers 2025Q4 (the 2025 review) only; later periods are an error
  until the data file gets a row for them.
* **Hanoi** used the national standard in 2022–2025: ``standard="hanoi"`` = national.

Periods: an integer year means that year's annual review, held in Q4, so ``2021`` is
classified like ``2021Q4`` (the 2016–2021 standard) and ``2022`` like ``2022Q4``.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from . import periods as _periods
from .errors import StandardError

DATA_FILE = Path(__file__).parent / "data" / "standards.csv"

STATUSES = ("poor", "near_poor", "non_poor")

#: 2022–2025 (and 2026) standard: dimension -> indicator columns (Decree 07/2021).
DIMENSIONS = {
    "employment": ["dep_employment", "dep_dependants"],
    "health": ["dep_nutrition", "dep_health_insurance"],
    "education": ["dep_adult_education", "dep_child_school"],
    "housing": ["dep_housing_quality", "dep_housing_area"],
    "water_sanitation": ["dep_water", "dep_latrine"],
    "information": ["dep_telecom", "dep_info_devices"],
}
#: 2027–2030 standard (Decree 351/2025): digital services replace information devices,
#: household waste handling joins water and sanitation.
DIMENSIONS_2027 = {
    "employment": ["dep_employment", "dep_dependants"],
    "health": ["dep_nutrition", "dep_health_insurance"],
    "education": ["dep_adult_education", "dep_child_school"],
    "housing": ["dep_housing_quality", "dep_housing_area"],
    "water_sanitation": ["dep_water", "dep_latrine", "dep_waste"],
    "information": ["dep_telecom", "dep_digital_services"],
}
#: The 12 indicator columns of the canonical panel (2022–2025 standard).
INDICATORS_2022 = [c for cols in DIMENSIONS.values() for c in cols]
INDICATORS_2027 = [c for cols in DIMENSIONS_2027.values() for c in cols]

# names a user may pass as `standard` -> scope in the data file
_SCOPES = {
    "national": "national", "vietnam": "national", "hanoi": "national", "ha noi": "national",
    "hà nội": "national", "hcmc": "hcmc", "ho chi minh": "hcmc", "hồ chí minh": "hcmc",
    "ho chi minh city": "hcmc", "tp. hồ chí minh": "hcmc", "tphcm": "hcmc",
}
_NEVER = 10**6  # "no deprivation count qualifies" (blank min_deprivations_in_band)


@dataclass(frozen=True)
class Standard:
    """One dated standard: its id, coverage, lines per area and deprivation rule."""

    standard_id: str
    scope: str
    first_period: str
    last_period: str
    poor_income_max: dict  # area -> VND/person/month
    near_poor_income_max: dict
    poor_bound: str  # "le" (income at the line is poor) or "lt" (strictly below)
    min_deprivations_below_line: int
    min_deprivations_in_band: int | None
    indicators: tuple
    source: str


@lru_cache(maxsize=1)
def _table() -> pd.DataFrame:
    t = pd.read_csv(DATA_FILE, dtype={"first_period": str, "last_period": str}, encoding="utf-8")
    t["first_index"] = [_quarter_index(p) for p in t.first_period]
    t["last_index"] = [_quarter_index(p) for p in t.last_period]
    t["min_deprivations_in_band"] = t["min_deprivations_in_band"].fillna(_NEVER).astype(int)
    t["lt"] = t["poor_bound"].eq("lt")
    bad = set(t.poor_bound) - {"le", "lt"}
    if bad:
        raise StandardError(f"{DATA_FILE}: poor_bound must be 'le' or 'lt', found {sorted(bad)}")
    return t


def _quarter_index(period) -> int:
    """Quarter index of a period; an annual review year Y is its Q4 (Y*4+3)."""
    freq, idx = _periods.parse_period(period)
    return idx * 4 + 3 if freq == "year" else idx


def _scope(standard: str) -> str:
    key = str(standard).strip().lower()
    if key in _SCOPES:
        return _SCOPES[key]
    if key in set(_table().standard_id):
        return key
    raise StandardError(
        f"unknown standard {standard!r}: use 'national', 'hanoi', 'hcmc' or one of "
        f"{sorted(set(_table().standard_id))}"
    )


def _rows_for_scope(standard: str) -> pd.DataFrame:
    t = _table()
    key = _scope(standard)
    rows = t[t.standard_id == key] if key in set(t.standard_id) else t[t.scope == key]
    return rows


def list_standards() -> pd.DataFrame:
    """The data file as a table (one row per standard and area)."""
    return _table().drop(columns=["first_index", "last_index", "lt"]).copy()


def _make(rows: pd.DataFrame) -> Standard:
    r = rows.iloc[0]
    band = int(r.min_deprivations_in_band)
    return Standard(
        standard_id=r.standard_id, scope=r.scope, first_period=r.first_period,
        last_period=r.last_period,
        poor_income_max=dict(zip(rows.area, rows.poor_income_max.astype(float))),
        near_poor_income_max=dict(zip(rows.area, rows.near_poor_income_max.astype(float))),
        poor_bound=r.poor_bound, min_deprivations_below_line=int(r.min_deprivations_below_line),
        min_deprivations_in_band=None if band >= _NEVER else band,
        indicators=tuple(str(r.indicators).split(";")), source=r.source,
    )


def _standard_id_for_index(qindex: int, standard: str) -> str | None:
    rows = _rows_for_scope(standard)
    hit = rows[(rows.first_index <= qindex) & (rows.last_index >= qindex)]
    return None if hit.empty else hit.standard_id.iloc[0]


def standard_for(period, standard: str = "national") -> Standard:
    """The standard that applies to `period` (int year = that year's Q4 review, or
    "YYYYQn") under `standard` ('national', 'hanoi' (= national), 'hcmc', or an id).
    Raises StandardError when no standard covers the period."""
    sid = _standard_id_for_index(_quarter_index(period), standard)
    if sid is None:
        rows = _rows_for_scope(standard)
        raise StandardError(
            f"no {standard!r} poverty standard covers period {period!r} "
            f"(covered: {rows.first_period.min()}–{rows.last_period.max()} in "
            f"lib/povdyn/data/standards.csv); add a row for it or pick another standard"
        )
    t = _table()
    return _make(t[t.standard_id == sid])


def indicators(standard_id: str) -> list[str]:
    """Deprivation indicator columns of a standard (by id, e.g. 'national_2027_2030')."""
    t = _table()
    rows = t[t.standard_id == standard_id]
    if rows.empty:
        raise StandardError(f"unknown standard id {standard_id!r}: see povdyn.standards.list_standards()")
    return str(rows.indicators.iloc[0]).split(";")


def changes_between(period_a, period_b, standard: str = "national") -> bool:
    """True when the classification rule at `period_b` differs from the one at `period_a`
    (lines, deprivation rule or indicator set; e.g. 2021Q4 -> 2022Q1, 2026Q4 -> 2027Q1):
    statuses across that pair are not comparable (methods.md "Traps": a new line is not
    an income change). 2025 -> 2026 is False: Decree 351/2025 keeps the same standard."""
    a, b = standard_for(period_a, standard), standard_for(period_b, standard)
    rule = ("poor_income_max", "near_poor_income_max", "poor_bound", "min_deprivations_below_line",
            "min_deprivations_in_band", "indicators")
    return any(getattr(a, f) != getattr(b, f) for f in rule)


def with_status(table, standard: str = "national", deprivations=None, periods=None, at=None,
                name: str = "status"):
    """``table`` (Ibis) with a column ``name``: each row's status under the dated standard
    ("poor" / "near_poor" / "non_poor", NULL when it cannot be classified). The
    classification of povdyn on an engine: ``povdyn.standard_change`` runs it on the
    register's engine (DuckDB or Spark), or on a pandas frame as an Ibis memtable, so
    only counts leave the engine (methods.md, "Traps": a new standard moves the line,
    so a status is always the status under a dated standard). ``classify`` is the same
    rule vectorised in numpy for frames already in pandas; the property test in
    tests/test_standards_engine.py holds both to a row-by-row reading of the rule.

    Per row: the period picks the standard (``periods``: the distinct values of the
    ``period`` column that occur, as a list, or a dict {value in the column: period
    label}; an int year is that year's Q4 review); ``at``: classify every row as if at
    that period instead. The area ("urban"/"rural", any case, surrounding white space
    ignored) picks the lines; ``income_pc_month`` (VND/person/month) is compared with
    them (module docstring: below = income <= line, or < for a strict ``lt`` line;
    band = above the line, <= the near-poor bound); the deprivation count is the number
    of ``deprivations`` columns (default: the standard's own indicators) that are true
    (a missing value counts as not deprived). poor = (below and count >=
    min_deprivations_below_line) or (band and count >= min_deprivations_in_band);
    near_poor = below or band, not poor; non_poor otherwise. NULL where the income is
    missing, NaN or unreadable, the period is missing (or not in ``periods``), or the
    area is not urban/rural. Raises StandardError for a period no standard covers, and
    for deprivation columns the rule needs that the table lacks.
    """
    import functools
    import operator

    import ibis

    missing = [c for c in ("area", "income_pc_month") + (() if at is not None else ("period",))
               if c not in table.columns]
    if missing:
        raise StandardError(f"classify needs columns {missing} (have {list(table.columns)[:20]})")
    if at is not None:
        sids = [_standard_for_label(at, standard)]
        standard_code = ibis.literal(0)
    else:
        if periods is None:
            raise StandardError("with_status needs the periods present (periods=[...]) or at=...")
        labels = periods if isinstance(periods, dict) else {p: p for p in periods}
        values_of: dict = {}
        for value, period_label in labels.items():
            values_of.setdefault(_standard_for_label(period_label, standard), []).append(value)
        sids = list(values_of)
        standard_code = ibis.cases(*[(table.period.isin(values_of[sid]), k) for k, sid in enumerate(sids)],
                                   else_=ibis.null("int64")) if sids else ibis.null("int64")
    number = (table.income_pc_month.cast("float64") if table.income_pc_month.type().is_numeric()
              else table.income_pc_month.try_cast("float64"))
    step = table.mutate(_std=standard_code, _area=table.area.cast("string").strip().lower(),
                        _income=ibis.ifelse(number.isnan(), ibis.null("float64"), number))

    t = _table()
    rule = {"_line": [], "_bound": [], "_strict": [], "_need_below": [], "_need_band": []}
    counts = []
    for k, sid in enumerate(sids):
        rows = t[t.standard_id == sid].set_index("area")
        cols = list(deprivations) if deprivations is not None else str(rows.indicators.iloc[0]).split(";")
        absent = [c for c in cols if c not in table.columns]
        if absent and (rows.min_deprivations_below_line.max() > 0 or rows.min_deprivations_in_band.min() < _NEVER):
            raise StandardError(
                f"standard {sid} counts deprivation columns {absent} that are not in the data; "
                "pass deprivations=[...] naming the indicator columns you have")
        present = [_deprived(step[c]) for c in cols if c in table.columns]
        counts.append((step._std == k, functools.reduce(operator.add, present) if present else ibis.literal(0)))
        for area in ("urban", "rural"):
            here = (step._std == k) & (step._area == area)
            rule["_line"].append((here, float(rows.at[area, "poor_income_max"])))
            rule["_bound"].append((here, float(rows.at[area, "near_poor_income_max"])))
            rule["_strict"].append((here, bool(rows.at[area, "lt"])))
            rule["_need_below"].append((here, int(rows.at[area, "min_deprivations_below_line"])))
            if int(rows.at[area, "min_deprivations_in_band"]) < _NEVER:  # else no band count qualifies
                rule["_need_band"].append((here, int(rows.at[area, "min_deprivations_in_band"])))
    types = {"_line": "float64", "_bound": "float64", "_strict": "boolean", "_need_below": "int64",
             "_need_band": "int64", "_count": "int64"}
    rule["_count"] = counts

    def per_row(column):
        pairs = rule[column]
        return ibis.cases(*pairs, else_=ibis.null(types[column])) if pairs else ibis.null(types[column])

    step = step.mutate(**{column: per_row(column) for column in rule})
    below = ibis.ifelse(step._strict, step._income < step._line, step._income <= step._line)
    step = step.mutate(_below=below, _band=~below & (step._income <= step._bound))
    poor = ((step._below & (step._count >= step._need_below)).fill_null(False)
            | (step._band & (step._count >= step._need_band)).fill_null(False))
    near = (step._below | step._band) & ~poor
    status = ibis.cases((step._income.isnull() | step._line.isnull(), ibis.null("string")),
                        (poor, "poor"), (near, "near_poor"), else_="non_poor")
    internal = ["_std", "_area", "_income", *rule, "_below", "_band"]
    return step.mutate(**{name: status}).drop(*internal)


def _standard_for_label(period, standard: str) -> str:
    sid = _standard_id_for_index(_quarter_index(period), standard)
    if sid is None:
        standard_for(period, standard)  # raises with the message
    return sid


def _deprived(column):
    """1 when the indicator value is true (bool) or non-zero (a number), 0 when false,
    zero, NaN or missing: a missing indicator value counts as not deprived."""
    import ibis

    if column.type().is_boolean():
        flag = column
    elif column.type().is_floating():
        flag = ibis.ifelse(column.isnan(), False, column != 0)
    elif column.type().is_numeric():
        flag = column != 0
    else:  # text: a non-empty value is true, as Python's bool() of it
        flag = column.cast("string").length() > 0
    return flag.fill_null(False).cast("int64")


def classify(df: pd.DataFrame, deprivations=None, standard: str = "national") -> pd.Series:
    """Status ("poor" / "near_poor" / "non_poor") of each row under the dated standard.

    Uses `period`, `area` ("urban"/"rural") and `income_pc_month` (VND/person/month),
    and counts the deprivation columns: `deprivations` (list of boolean columns) or, by
    default, the standard's own indicators (a missing indicator value counts as not
    deprived). Rows with missing income or period, or an area other than urban/rural
    (the lines differ by area), get NA. Raises StandardError for a period no standard
    covers.

    The rule is the module docstring's, the same as the engine-side ``with_status``
    (methods.md, "Traps": a status is the status under a dated standard). This is its
    direct vectorised form for the frames callers hold in pandas (one pass per distinct
    standard and area; on 10k-1M rows 4-6x faster than the trip through DuckDB of
    ``classify_on_engine``); tests/test_standards_engine.py holds both to a row-by-row
    reading of the rule on random rows with every edge case.
    """
    missing = [c for c in ("period", "area", "income_pc_month") if c not in df.columns]
    if missing:
        raise StandardError(f"classify needs columns {missing} (have {list(df.columns)[:20]})")
    n = len(df)
    codes, uniques = pd.factorize(df["period"], use_na_sentinel=True)
    t = _table()
    # period -> row of the rural/urban standard
    sid_of_unique = []
    for u in uniques:
        sid = _standard_id_for_index(_quarter_index(u), standard)
        if sid is None:
            standard_for(u, standard)  # raises with the message
        sid_of_unique.append(sid)
    sid_codes, sids = pd.factorize(np.asarray(sid_of_unique, dtype=object))
    row_sid = np.where(codes >= 0, sid_codes[np.maximum(codes, 0)] if len(sid_codes) else -1, -1)

    area_codes, area_uniques = pd.factorize(df["area"], use_na_sentinel=True)
    area_norm = np.array([str(a).strip().lower() for a in area_uniques] + [""], dtype=object)
    area = area_norm[area_codes]  # sentinel -1 picks the trailing ""
    is_urban = area == "urban"
    bad_area = ~(is_urban | (area == "rural"))
    income = pd.to_numeric(df["income_pc_month"], errors="coerce").to_numpy(dtype="float64")

    poor_max = np.full(n, np.nan)
    near_max = np.full(n, np.nan)
    lt = np.zeros(n, bool)
    need_below = np.zeros(n, np.int64)
    need_band = np.full(n, _NEVER, np.int64)
    depcount = np.zeros(n, np.int64)
    for k, sid in enumerate(sids):
        rows = t[t.standard_id == sid].set_index("area")
        here = row_sid == k
        for a, mask_area in (("urban", is_urban), ("rural", ~is_urban)):
            m = here & mask_area
            poor_max[m] = rows.loc[a, "poor_income_max"]
            near_max[m] = rows.loc[a, "near_poor_income_max"]
            lt[m] = rows.loc[a, "lt"]
            need_below[m] = rows.loc[a, "min_deprivations_below_line"]
            need_band[m] = rows.loc[a, "min_deprivations_in_band"]
        cols = list(deprivations) if deprivations is not None else str(rows.indicators.iloc[0]).split(";")
        absent = [c for c in cols if c not in df.columns]
        if absent and (rows.min_deprivations_below_line.max() > 0 or rows.min_deprivations_in_band.min() < _NEVER):
            raise StandardError(
                f"standard {sid} counts deprivation columns {absent} that are not in the data; "
                "pass deprivations=[...] naming the indicator columns you have"
            )
        cols = [c for c in cols if c in df.columns]
        if cols and here.any():
            counts = _count_true(df, cols)
            depcount[here] = counts[here]
    if bad_area.any() and (row_sid >= 0).any():
        # urban and rural lines differ: an unknown area cannot be classified
        income = np.where(bad_area, np.nan, income)
    below = np.where(lt, income < poor_max, income <= poor_max)
    band = ~below & (income <= near_max)
    poor = (below & (depcount >= need_below)) | (band & (depcount >= need_band))
    near = (below | band) & ~poor
    code = np.where(poor, 0, np.where(near, 1, 2))
    code[np.isnan(income) | (row_sid < 0)] = 3
    labels = np.array(["poor", "near_poor", "non_poor", None], dtype=object)
    return pd.Series(labels[code], index=df.index, name="status", dtype=object)


def classify_on_engine(df: pd.DataFrame, deprivations=None, standard: str = "national") -> pd.Series:
    """``classify`` computed by the engine-side definition ``with_status`` (the frame's
    columns, typed by ``_typed_for_engine``, as an Ibis memtable on povdyn's DuckDB
    connection): the same statuses, for the property test that holds the two paths
    to one rule (tests/test_standards_engine.py)."""
    import ibis

    from .engine import connect

    missing = [c for c in ("period", "area", "income_pc_month") if c not in df.columns]
    if missing:
        raise StandardError(f"classify needs columns {missing} (have {list(df.columns)[:20]})")
    codes, uniques = pd.factorize(df["period"], use_na_sentinel=True)
    for u in uniques:  # an uncovered period is an error before any row is read
        _standard_for_label(u, standard)
    frame = _typed_for_engine(df, codes, deprivations)
    if frame.empty:
        return pd.Series([None] * 0, index=df.index, name="status", dtype=object)
    table = ibis.memtable(frame)
    expr = with_status(table, standard, deprivations,
                       periods={k: u for k, u in enumerate(uniques)}).select("_row", "status")
    out = connect("duckdb").execute(expr.order_by("_row"))
    status = out["status"].astype(object).to_numpy()
    return pd.Series(np.where(pd.isna(status), None, status), index=df.index, name="status", dtype=object)


def _typed_for_engine(df: pd.DataFrame, period_codes, deprivations=None) -> pd.DataFrame:
    """The columns ``with_status`` reads, typed so Arrow can hold them: the period
    as its factorize code (NULL when missing), area as text, income as a number (an
    unreadable value -> NaN), indicator columns of mixed Python values as booleans.
    ``deprivations``: the indicator columns to carry (default: every ``dep_*`` column)."""
    frame = pd.DataFrame({"_row": np.arange(len(df), dtype=np.int64),
                          "period": pd.array(np.where(period_codes >= 0, period_codes, 0), dtype="Int64"),
                          "area": df["area"].astype("string").to_numpy(),
                          "income_pc_month": pd.to_numeric(df["income_pc_month"], errors="coerce")
                          .astype("float64").to_numpy()})
    frame.loc[period_codes < 0, "period"] = pd.NA
    for col in df.columns:
        if col.startswith("dep_") if deprivations is None else col in deprivations:
            values = df[col]
            if values.dtype == object:
                values = values.map(lambda v: pd.NA if pd.isna(v) else bool(v)).astype("boolean")
            frame[col] = values.to_numpy()
    return frame


def _count_true(df: pd.DataFrame, cols) -> np.ndarray:
    """Row-wise number of True values in `cols` (NA -> not deprived)."""
    total = np.zeros(len(df), np.int64)
    for c in cols:
        col = df[c]
        if col.dtype == bool:
            total += col.to_numpy()
        elif col.dtype == object:  # Python values, as bool() of each (fillna would downcast)
            total += np.fromiter((False if pd.isna(v) else bool(v) for v in col), bool, len(col))
        else:  # numbers, nullable booleans: NA/NaN is not deprived, any non-zero value is
            total += col.to_numpy(dtype="float64", na_value=0.0) != 0
    return total
