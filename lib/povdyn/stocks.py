"""Stock measures: households by status at a period, and the poor / near-poor rates.

methods.md, "The register panel" and "All rates come with counts": the **poor rate** at a
period t is the number of poor households at t over the number of all households of the
area at t; the same for near-poor. Counted in the engine (one grouped aggregation);
only the small table comes back.

Which households make the denominator depends on the register kind (``Panel.register``,
methods.md "Many real registers list only poor and near-poor households"):

* **full** panel: the households on the register with a status at t (removal rows have
  no status and are not counted);
* **lists**: a list holds only poor and near-poor households, so the denominator is the
  **household total** of the area at that review (``Panel.totals``, "tổng số hộ dân cư"
  of the annual review), and not-poor households = total - poor - near-poor. Where no
  total covers a cell (a quarter between reviews, a province without a total, a group
  such as urban/rural that totals are not kept for) the rate is unknown: ``households``
  and the rates are NaN, never a rate over the listed households. A total smaller than
  the households listed in its area is an error (it cannot be the area's total).

Totals are kept per commune or per province; a province's total at a review is its
province-level row when there is one, else the sum of its communes' rows. A national
(or grouped) total exists at t only when every province with listed households at t has
a total at t.

**Commune totals** (``commune_totals``; rates grouped by ``commune_2025``). Offices
write their communes' totals under the names in force at the review: old communes
before July 2025, 2025 communes after. Ingest maps each row to its 2025 commune as it
maps the register (``ingest.writing.totals_communes_2025``). A 2025 commune's total at
a review is its own row when one names it; else the sum of its old communes' rows, and
only when a row exists for every old commune the official crosswalk puts (wholly) into
it. An old commune split between several 2025 communes has no household count per
piece, and methods.md does not let a rate rest on a weighted split total unsaid: the
2025 communes that received a piece get no total at that review (rate NaN, as where no
total exists), never a total divided by equal weights. An old name that could not be
placed (listed in communes_unplaced.csv) covers no commune, so the communes it might
belong to lack one of their old communes and stay NaN too. Before July 2025 the register
counts a household in the 2025 commune it was recorded in after the reform; where one
that moved leaves a summed old-name total below the commune's listed households, that
commune has no rate at that review (not an error: the total may well be right).

**Interval** (``stock_interval``, the same function for both register kinds, so the two
reports agree wherever their counts agree): the households at a review are a census of
the area, not a sample, so the rate has no sampling error. What a reviewer compares
(two years, two provinces, a target) is the underlying propensity of a household to be
poor, of which this year's count is one realisation: each household poor with
probability p, independently. Its 95% interval is the Wilson score interval with the
census count as n -- methods.md's "Wilson for a single proportion" -- which is narrow
for a province of 100,000 households and honest for a commune of 300. It is not widened
by a finite-population correction (that would give a zero-width interval for a census)
and not clustered (each household is counted once in a stock).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import SchemaError
from .intervals import wilson_interval
from .panel import Panel, as_list, as_panel  # noqa: F401 (as_panel: the metrics' one adapter)
from .periods import label

STATUSES = ("poor", "near_poor", "non_poor")
# the columns household totals are kept by (totals.parquet)
TOTAL_LEVELS = ("province_2025", "province", "commune")
COLUMNS = ["households", *STATUSES, "poor_rate", "poor_ci_low", "poor_ci_high",
           "near_poor_rate", "near_poor_ci_low", "near_poor_ci_high"]


def stock_interval(count, households):
    """95% interval of a stock rate count / households (module docstring: Wilson score
    interval with the census count as n). Arrays in, (low, high) out; NaN where the
    number of households is unknown or 0."""
    n = np.asarray(households, dtype=float)
    low, high = wilson_interval(np.asarray(count, dtype=float), np.nan_to_num(n, nan=0.0))
    return np.where(np.isfinite(n), low, np.nan), np.where(np.isfinite(n), high, np.nan)


def has_rates(panel) -> bool:
    """Whether stock rates can be published: always on a full panel; on lists only with
    household totals."""
    panel = as_panel(panel)
    return panel.register == "full" or panel.totals is not None


def _unit(panel: Panel) -> str:
    """The province column that links listed households to their totals."""
    for col in ("province_2025", "province"):
        if col in panel.columns and (panel.totals is None or col in panel.totals.columns):
            return col
    raise SchemaError("household totals need a province column in the panel "
                      "(province_2025 or province)")


def _totals_by_unit(panel: Panel, unit: str) -> pd.DataFrame:
    """[unit, period_index, households]: each province's total at each review -- its
    province-level row(s), else the sum of its communes."""
    tot = panel.execute(panel.totals)
    tot = tot[tot[unit].notna()]
    level = tot["commune"].isna()
    # a province given by its own rows for a review does not add its communes again
    has_own = tot[level].groupby([unit, "period_index"]).size()
    own_key = pd.MultiIndex.from_frame(tot[[unit, "period_index"]])
    use = level | ~own_key.isin(has_own.index)
    return (tot[use].groupby([unit, "period_index"], as_index=False)["households"].sum())


COMMUNE = "commune_2025"


def commune_totals(panel: Panel, unit: str) -> pd.DataFrame:
    """[unit, commune_2025, period_index, households]: each 2025 commune's household
    total at each review where its rows cover it (module docstring, "Commune totals");
    a commune and review missing here has no total. Empty when the totals carry no 2025
    commune (written by an ingest before the mapping)."""
    from .geo import commune_crosswalk_2025

    columns = [unit, COMMUNE, "period_index", "households"]
    tot = panel.execute(panel.totals)
    if "commune_code" not in tot.columns:
        return pd.DataFrame(columns=columns)
    tot = tot[tot[unit].notna() & tot["commune"].notna()].copy()
    basis = tot["commune_2025_basis"].astype(object)
    own = tot[basis == "recorded"]
    named = own.groupby([unit, "commune_code", "period_index"], as_index=False).agg(
        **{COMMUNE: (COMMUNE, "first"), "households": ("households", "sum")})
    # the old communes each 2025 commune is made of (a split one is in several)
    parts = commune_crosswalk_2025()[["commune_code", "old_commune_code"]].astype(str)
    needed = parts.groupby("commune_code")["old_commune_code"].agg(frozenset)
    whole = tot[basis == "crosswalk"]
    summed = whole.groupby([unit, "commune_code", "period_index"], as_index=False).agg(
        **{COMMUNE: (COMMUNE, "first"), "households": ("households", "sum")})
    whole_codes = (whole.assign(old_commune_code=whole["old_commune_code"].astype(str))
                   .groupby([unit, "commune_code", "period_index"])["old_commune_code"].agg(frozenset))
    # a split old commune is needed but never whole: its 2025 communes stay uncovered
    covered = [needed.get(str(code), frozenset()) <= whole_codes.get((u, code, i), frozenset())
               for u, code, i in zip(summed[unit], summed["commune_code"], summed["period_index"])]
    summed = summed[np.array(covered, dtype=bool)]
    # a commune named at a review is taken from its own row, not from old names
    own_keys = pd.MultiIndex.from_frame(named[[unit, "commune_code", "period_index"]])
    summed = summed[~pd.MultiIndex.from_frame(summed[[unit, "commune_code", "period_index"]])
                    .isin(own_keys)]
    out = pd.concat([named, summed], ignore_index=True)[columns]
    out["households"] = out["households"].astype("float64")
    out["period_index"] = out["period_index"].astype("int64")
    return out


def status_shares(panel, by=None, engine=None) -> pd.DataFrame:
    """Households by status at each period and the poor / near-poor rates (module
    docstring), computed in the engine.

    Returns [*by, period, households, poor, near_poor, non_poor, poor_rate, poor_ci_low,
    poor_ci_high, near_poor_rate, near_poor_ci_low, near_poor_ci_high]; rates are
    fractions. ``by``: grouping columns read at t. On a list register ``households``
    and ``non_poor`` come from the totals and are NaN where none covers the cell;
    ``attrs["denominator"]`` says "register" or "totals".
    The result is remembered by the Panel (``Panel.remembered``): a page asks for the
    same shares in several sections."""
    panel = as_panel(panel, engine)
    return panel.remembered(status_shares_key(by), lambda: _status_shares(panel, by))


def status_shares_key(by=None) -> tuple:
    """The key ``status_shares`` remembers its result under: ``by`` as a list, so that
    "area" and ["area"] (a page asks both) are one result."""
    return ("status_shares", repr(as_list(by)))


def _status_shares(panel, by=None, engine=None) -> pd.DataFrame:
    """The computation behind ``status_shares``."""
    panel = as_panel(panel, engine)
    by = as_list(by)
    for col in by:
        if col not in panel.columns:
            raise SchemaError(f"by: the panel has no column {col!r}")
    lists = panel.register == "lists"
    unit = _unit(panel) if lists and panel.totals is not None else None
    keys = list(dict.fromkeys([*by, *([unit] if unit else []), "period_index"]))
    t = panel.table.filter(panel.table.status.notnull())
    counted = panel.execute(t.group_by(keys).aggregate(
        **{s: (t.status == s).cast("int64").sum() for s in STATUSES}))
    for s in STATUSES:
        counted[s] = counted[s].astype("int64")
    if not lists:
        counted["households"] = counted[list(STATUSES)].sum(axis=1).astype("float64")
    elif unit is not None and set(by) <= {unit}:
        counted = _with_totals(panel, counted, unit, by)
    elif unit is not None and COMMUNE in by and set(by) <= {unit, COMMUNE}:
        counted = _with_totals(panel, counted, unit, by, commune_totals(panel, unit))
    else:
        counted["households"] = np.nan  # no totals for this grouping: rates unknown
    if lists:
        counted["non_poor"] = counted["households"] - counted["poor"] - counted["near_poor"]
    out = counted.groupby([*by, "period_index"], as_index=False, dropna=False).agg(
        **{c: (c, "sum") for c in ("poor", "near_poor")},
        non_poor=("non_poor", lambda v: v.sum(min_count=len(v))),
        households=("households", lambda v: v.sum(min_count=len(v))))
    for s in ("poor", "near_poor"):
        n = out["households"].to_numpy(dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"{s}_rate"] = np.where(n > 0, out[s] / n, np.nan)
        out[f"{s}_ci_low"], out[f"{s}_ci_high"] = stock_interval(out[s], n)
    out = out.sort_values([*by, "period_index"], kind="stable")
    out.insert(len(by), "period", [label(panel.frequency, int(i)) for i in out["period_index"]])
    out = out[[*by, "period", *COLUMNS]].reset_index(drop=True)
    out.attrs["denominator"] = "totals" if lists else "register"
    return out


def _with_totals(panel: Panel, counted: pd.DataFrame, unit: str, by: list[str],
                 tot: pd.DataFrame | None = None) -> pd.DataFrame:
    """Listed counts per (unit, period) -- or per (unit, commune, period) with ``tot``
    from ``commune_totals`` -- joined with the area's total; every review with a total
    keeps its areas even when none of their households is listed. A period where some
    province with listed households has no total gets NaN households."""
    keys = [unit, "period_index"]
    if tot is None:
        tot = _totals_by_unit(panel, unit)
    else:
        keys = [unit, COMMUNE, "period_index"]
        # only the communes of the panel's view (a province page's panel holds one province)
        tot = tot[tot[unit].isin(counted[unit].dropna().unique())]
    tot = tot[tot["period_index"].isin(panel.period_indices)]
    merged = counted.merge(tot, on=keys, how="outer")
    for s in ("poor", "near_poor", "non_poor"):
        merged[s] = merged[s].fillna(0).astype("int64")
    merged["households"] = merged["households"].astype("float64")
    listed = merged["poor"] + merged["near_poor"]
    below = merged["households"].notna() & (merged["households"] < listed)
    if COMMUNE in keys and below.any():
        # before July 2025 a household is counted in the 2025 commune it was recorded in
        # after the reform, its old commune's total in the crosswalk's: one that moved
        # between them can leave a summed total below the listed count. No rate there
        # (the two counts do not describe the same households); a 2025 row stays an error.
        from .geo import is_post_merger

        pre = ~merged["period_index"].map(lambda i: is_post_merger(label(panel.frequency, int(i))))
        merged.loc[below & pre, "households"] = np.nan
        below &= ~pre
    bad = merged[below]
    if len(bad):
        r = bad.iloc[0]
        raise SchemaError(
            f"household totals: {r[COMMUNE] + ', ' if COMMUNE in keys else ''}{r[unit]} at {label(panel.frequency, int(r['period_index']))} "
            f"has a total of {int(r['households'])} households but {int(listed.loc[r.name])} "
            "poor and near-poor households are listed there; a total counts every household "
            "of the area, so it cannot be smaller")
    if COMMUNE in keys and unit not in by:
        # a 2025 commune name used in several provinces: the rows grouped under it mix
        # communes whose totals are not all known (one may list no household at t)
        shared = merged.groupby(COMMUNE)[unit].transform("nunique") > 1
        merged.loc[shared, "households"] = np.nan
    if not by:
        # a total for the whole area exists only if every listed province has one
        complete = merged.groupby("period_index")["households"].transform(lambda v: v.notna().all())
        merged.loc[~complete, "households"] = np.nan
    return merged


def removals_from_lists(panel, by=None, engine=None) -> pd.DataFrame:
    """Households taken off the poor and near-poor lists at t for death, migration,
    merger or split: poor or near-poor at t-1 with their removal row at t (methods.md:
    attrition, never exits). The same on a full panel and on lists, which record a
    removal only for a listed household. Columns [*by, period, removals]; ``by`` read
    at t-1."""
    from .dynamics import exit_rates

    panel = as_panel(panel, engine)
    by = as_list(by)
    parts = [exit_rates(panel, by=by or None, from_status=s)[[*by, "period", "removed"]]
             for s in ("poor", "near_poor")]
    both = pd.concat(parts, ignore_index=True)
    if not len(both):
        return pd.DataFrame(columns=[*by, "period", "removals"])
    out = both.groupby([*by, "period"], as_index=False, sort=False)["removed"].sum()
    return out.rename(columns={"removed": "removals"})
