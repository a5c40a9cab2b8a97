"""Multidimensional poverty: Alkire–Foster measures and the deprivations that persist.

Vietnam's standard is multidimensional (income plus 12 deprivation indicators in 6
dimensions, Decree 07/2021; 13 in 2027–2030). This module answers two questions:

* How deprived are households, and in what? ``alkire_foster`` computes the
  Alkire–Foster (2011) family: headcount ratio H, intensity A, adjusted headcount
  M0 = H × A, censored headcounts and each indicator's contribution to M0.
* Which deprivations remain when households leave poverty? ``persistent_deprivations``
  and ``fragile_exits`` (methods.md, "Traps": an exit on income alone, with the
  deprivations still there, is fragile).

``deprivation_summary`` bundles these for the quarterly report.

Alkire–Foster, as implemented (Alkire & Foster 2011, J. Public Econ. 95(7–8)):

* deprivation score c_i = Σ_j w_j g_ij, with g_ij = 1 when household i is deprived in
  indicator j and weights w_j summing to 1;
* household i is multidimensionally poor when c_i ≥ k (the AF convention: a score
  exactly at the cut-off counts as poor; compared with a 1e-9 tolerance so that
  4 × 1/12 reaches k = 1/3);
* H = share poor; A = mean score among the poor; M0 = mean censored score
  (c_i if poor, else 0) = H × A;
* censored headcount h_j = share poor and deprived in j; contribution of j to M0 =
  w_j h_j / M0 × 100 (the contributions add up to 100%).

An optional survey/household weight column makes every share a weighted mean.
Standard errors are analytical (linearisation of each ratio mean, with the
n/(n − 1) small-sample factor): households are iid by default, or clustered by
``cluster=`` (e.g. commune) — sums of linearised residuals within clusters,
G/(G − 1) factor.

Where it is computed. Every measure here is a sum over households, and the engine
computes it (architecture.md: the register never becomes one pandas frame): given a
Panel, the sums are Ibis expressions run by its engine (DuckDB, or Spark), and only
one row per group (an area, a province, a trajectory group) leaves it -- at national
scale a review has tens of millions of rows. A pandas frame goes through the same
expressions (an Ibis memtable on DuckDB): one definition of each measure.
``trajectory_groups`` and ``fragile_exits`` return households, so they pull the
grouped households' rows; ``panel_frame`` pulls a region's rows for a caller that asks
for them (povdyn.standard_change classifies in the engine instead).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import standards
from .errors import SchemaError
# display names live with every other vi/en text in povdyn.labels
from .labels import DIMENSION_LABELS, GROUP_LABELS, INDICATOR_LABELS  # noqa: F401
from .panel import as_list
from .periods import frequency_and_index, parse_period

_TOL = 1e-9

def indicator_label(indicator: str, lang: str = "vi") -> str:
    """Display name of an indicator column (the column name when unknown)."""
    return INDICATOR_LABELS.get(indicator, {}).get(lang, indicator)


def dimension_of(indicator: str) -> str | None:
    """Dimension of an indicator per povdyn.standards (2022 and 2027 lists)."""
    for dims in (standards.DIMENSIONS, standards.DIMENSIONS_2027):
        for dim, cols in dims.items():
            if indicator in cols:
                return dim
    return None


def default_weights(indicators) -> dict[str, float]:
    """Nested equal weights: equal across the dimensions the indicators cover, equal
    across indicators within a dimension (povdyn.standards.DIMENSIONS; the 2027 list
    for dep_digital_services / dep_waste). With the 12 indicators: 1/6 per dimension,
    1/12 per indicator. Indicators outside every dimension are an error (pass weights)."""
    indicators = list(indicators)
    dims = {c: dimension_of(c) for c in indicators}
    unknown = [c for c, d in dims.items() if d is None]
    if unknown:
        raise SchemaError(f"indicators {unknown} belong to no dimension of "
                          "povdyn.standards.DIMENSIONS: pass weights={indicator: weight}")
    per_dim = pd.Series(dims).value_counts()
    return {c: 1.0 / len(per_dim) / per_dim[dims[c]] for c in indicators}


@dataclass
class AFResult:
    """Alkire–Foster result.

    * ``table``: one row per group (or one row ``overall`` when ``by`` is None) with
      n (households used), n_poor, H, H_se, A, A_se, M0, M0_se, k, n_excluded (rows
      dropped because an indicator was missing);
    * ``indicators``: one row per group and indicator with dimension, weight,
      uncensored_headcount, censored_headcount, contribution_pct (sums to 100 per group
      when M0 > 0);
    * ``overall``: the figures for all rows together (a dict); ``r["H"]``,
      ``r["M0"]``, ``r["A"]``, ``r["H_se"]``, ``r["n"]`` ... read from it, and
      ``r["contribution"]`` / ``r["censored_headcount"]`` give dicts by indicator.
    """

    table: pd.DataFrame
    indicators: pd.DataFrame
    overall: dict
    weights: dict
    k: float
    by: list = field(default_factory=list)

    def __getitem__(self, key):
        return self.overall[key]

    def keys(self):
        return self.overall.keys()

    def __repr__(self):
        o = self.overall
        return (f"AFResult(k={self.k:.4g}, n={o['n']}, H={o['H']:.4f}, A={o['A']:.4f}, "
                f"M0={o['M0']:.4f}, groups={len(self.table)})")


def _check_inputs(df, indicators, weights, k, weight, by, cluster):
    indicators = list(indicators)
    if not indicators:
        raise SchemaError("alkire_foster: give at least one indicator column")
    needed = indicators + list(by) + [c for c in (weight, cluster) if c]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise SchemaError(f"alkire_foster: column(s) {missing} not in the data "
                          f"(have {list(df.columns)[:30]}); check the indicator names")
    if not (0 < k <= 1):
        raise ValueError(f"alkire_foster: k={k!r} must be in (0, 1]")
    if weights is None:
        weights = default_weights(indicators)
    weights = {c: float(w) for c, w in dict(weights).items()}
    extra = [c for c in weights if c not in indicators]
    absent = [c for c in indicators if c not in weights]
    if extra or absent:
        raise SchemaError(f"alkire_foster: weights must name exactly the indicators "
                          f"(no weight for {absent}; weight for unused {extra})")
    if any(w < 0 for w in weights.values()):
        raise ValueError("alkire_foster: weights must be non-negative")
    total = sum(weights.values())
    if abs(total - 1) > 1e-6:
        raise ValueError(f"alkire_foster: weights sum to {total:.6g}, they must sum to 1")
    return indicators, weights


# ------------------------------------------------------------- the engine beneath
# Every measure below is a sum over households: the engine (DuckDB, or Spark for a
# Spark Panel) computes the sums, and only one row per group leaves it. A pandas
# frame goes through the same expressions (as an Ibis memtable on DuckDB), so each
# measure has one definition.

@dataclass
class _Rows:
    """Rows chosen on an engine: an Ibis ``table`` and ``run``, which executes an
    expression on that table's engine."""

    table: object
    run: object

    @property
    def columns(self) -> list[str]:
        return list(self.table.columns)


def _on_engine(data, rows=None) -> _Rows:
    """The rows of a Panel, a path, an Ibis table, a pandas frame (an Ibis memtable on
    povdyn's DuckDB connection) or ``_Rows``, with the function that runs an expression
    on their engine. ``rows``: an Ibis predicate on the table choosing the rows used."""
    import ibis

    if isinstance(data, _Rows):
        out = data
    elif isinstance(data, pd.DataFrame):
        from .engine import connect

        out = _Rows(ibis.memtable(data), connect("duckdb").execute)
    elif isinstance(data, ibis.expr.types.Table):
        out = _Rows(data, lambda expr: expr.execute())  # the table's own backend
    else:
        from .panel import as_panel

        panel = as_panel(data)
        out = _Rows(panel.table, panel.execute)
    if rows is not None:
        out = _Rows(out.table.filter(rows(out.table)), out.run)
    return out


def _deprived(column):
    """1.0 deprived, 0.0 not, NULL when not recorded -- of a boolean or 0/1 column."""
    if column.type().is_boolean():
        return column.cast("float64")
    return (column != 0).cast("float64")


def _as_number(column):
    """A weight or income column as float64 (an unreadable text value -> NULL, NaN -> NULL)."""
    import ibis

    number = column.cast("float64") if column.type().is_numeric() else column.try_cast("float64")
    return ibis.ifelse(number.isnan(), ibis.null("float64"), number)


def _af_sums(table, indicators, wvec, k, by, weight, cluster):
    """The sums the Alkire–Foster figures of each group (``by``) are computed from, as an
    Ibis expression (one row per group; a group is every row with its keys, missing keys
    included). Over the complete rows (every indicator, and the weight, recorded) with
    weight w, poor = 1 if the score Σ_j w_j g_j ≥ k (1e-9 tolerance), censored = score if
    poor: count n, n_poor, n_rows; T = Σw, P = Σw·poor, M = Σw·censored; U_j = Σw·g_j,
    C_j = Σw·g_j·poor; and, for the standard errors, over the units (households, or
    clusters when ``cluster`` is given) of unit sums a = Σw, b = Σw·poor, c = Σw·censored:
    units, Saa, Sab, Sac, Sbb, Sbc, Scc (Σ of the products). The clustered unit sums are
    in a second expression (None without ``cluster``)."""
    import functools
    import operator

    import ibis

    g = [_deprived(table[c]) for c in indicators]
    complete = functools.reduce(operator.and_, [table[c].notnull() for c in indicators])
    if weight:
        w = _as_number(table[weight])
        complete = complete & w.notnull()
    else:
        w = ibis.literal(1.0)
    score = functools.reduce(operator.add, [float(wj) * gj.fill_null(0.0) for wj, gj in zip(wvec, g)])
    used = ibis.ifelse(complete, 1.0, 0.0)
    a = ibis.ifelse(complete, w, 0.0)
    poor = ibis.ifelse(complete & (score >= k - _TOL), 1.0, 0.0)
    rows = table.mutate(_a=a, _b=a * poor, _c=a * poor * score, _used=used, _poor=poor,
                        **{f"_g{j}": a * gj.fill_null(0.0) for j, gj in enumerate(g)},
                        **({"_cluster": table[cluster]} if cluster else {}))
    sums = dict(n=rows._used.sum(), n_poor=rows._poor.sum(), n_rows=rows.count(),
                T=rows._a.sum(), P=rows._b.sum(), M=rows._c.sum())
    for j in range(len(indicators)):
        sums[f"U{j}"] = rows[f"_g{j}"].sum()
        sums[f"C{j}"] = (rows[f"_g{j}"] * rows._poor).sum()

    def moments(units):
        return dict(units=units.count(), Saa=(units._a * units._a).sum(), Sab=(units._a * units._b).sum(),
                    Sac=(units._a * units._c).sum(), Sbb=(units._b * units._b).sum(),
                    Sbc=(units._b * units._c).sum(), Scc=(units._c * units._c).sum())

    if cluster is None:  # each household its own unit: one pass
        # (an incomplete row adds 0 to every moment: a = b = c = 0; it is not a unit)
        units_of = moments(rows)
        units_of["units"] = rows._used.sum()
        sums.update(units_of)
        clustered = None
    else:
        # the unit sums of each cluster (clusters of complete rows; a row without a
        # cluster is in no cluster sum, as in a pandas groupby)
        kept = rows.filter((rows._used == 1.0) & rows._cluster.notnull())
        unit = kept.group_by([*by, "_cluster"]).aggregate(_a=kept._a.sum(), _b=kept._b.sum(), _c=kept._c.sum())
        clustered = unit.group_by(by).aggregate(**moments(unit)) if by else unit.aggregate(**moments(unit))
    per_group = rows.group_by(by).aggregate(**sums) if by else rows.aggregate(**sums)
    return per_group, clustered


def _af_figures(s, wvec, k) -> tuple[dict, np.ndarray, np.ndarray]:
    """The Alkire–Foster figures of one group from its sums (``_af_sums``): H = P/T,
    M0 = M/T, A = M0/H; the uncensored and censored headcounts U_j/T and C_j/T; the
    linearised standard errors sqrt(G/(G − 1) Σ_units z²) with, for the mean of y
    (H: y = poor; M0: y = censored), z = (unit Σw·y − mean × unit Σw)/T, and for
    A = M/P, z = (unit Σw·censored − A × unit Σw·poor)/P -- Σ z² expanded in the unit
    moments. NaN where a figure is undefined (no household; fewer than 2 units; A and
    its error when no one is poor)."""
    J = len(wvec)
    n = int(s["n"])
    nan = float("nan")
    if n == 0:
        return (dict(n=0, n_poor=0, H=nan, H_se=nan, A=nan, A_se=nan, M0=nan, M0_se=nan),
                np.full(J, nan), np.full(J, nan))
    T, P, M = float(s["T"]), float(s["P"]), float(s["M"])
    H, M0 = P / T, M / T
    A = M0 / H if H > 0 else nan
    units = int(s["units"]) if not pd.isna(s["units"]) else 0

    def se(square_sum, scale):
        if n < 2 or units < 2 or scale <= 0:
            return nan
        return float(np.sqrt(units / (units - 1) * max(square_sum, 0.0) / scale ** 2))

    Saa, Sab, Sac, Sbb, Sbc, Scc = (float(s[c]) if not pd.isna(s[c]) else 0.0
                                    for c in ("Saa", "Sab", "Sac", "Sbb", "Sbc", "Scc"))
    H_se = se(Sbb - 2 * H * Sab + H * H * Saa, T)
    M0_se = se(Scc - 2 * M0 * Sac + M0 * M0 * Saa, T)
    A_se = se(Scc - 2 * A * Sbc + A * A * Sbb, P) if H > 0 else nan
    uncensored = np.array([float(s[f"U{j}"]) for j in range(J)]) / T
    censored = np.array([float(s[f"C{j}"]) for j in range(J)]) / T
    figures = dict(n=n, n_poor=int(s["n_poor"]), H=H, H_se=H_se, A=A, A_se=A_se, M0=M0, M0_se=M0_se)
    return figures, uncensored, censored


def _af_group_sums(data, indicators, wvec, k, by, weight, cluster) -> pd.DataFrame:
    """``_af_sums`` run on the data's engine: one pandas row per group (sorted by the
    keys, missing keys last) and, with ``by``, a last row of everyone (key NaN)."""
    rows = _on_engine(data)
    run = rows.run
    per_group, clustered = _af_sums(rows.table, indicators, wvec, k, by, weight, cluster)
    sums = run(per_group)
    if clustered is not None:
        moments = run(clustered)
        sums = (sums.merge(moments, on=by, how="left") if by
                else pd.concat([sums, moments], axis=1))
    if by:
        sums = sums.sort_values(by, na_position="last", kind="stable").reset_index(drop=True)
    return sums


def alkire_foster(df, indicators, weights=None, k: float = 1 / 3, by=None,
                  weight: str | None = None, cluster: str | None = None) -> AFResult:
    """Alkire–Foster headcount ratio H, intensity A and adjusted headcount M0 = H × A.

    Definitions in the module docstring (poor when the weighted deprivation score is
    ≥ k). ``df``: a Panel (or path), an Ibis table or a pandas DataFrame -- the sums are
    computed by the engine, one row per group leaves it. ``indicators``: boolean (or 0/1)
    deprivation columns. ``weights``: indicator -> weight summing to 1 (default
    ``default_weights``: equal across dimensions, equal within). ``by``: grouping
    column(s). ``weight``: optional household/survey weight column. ``cluster``:
    optional column for clustered standard errors. Rows with a missing indicator value
    are left out and counted (``n_excluded``). Returns an ``AFResult`` (``r.table``,
    ``r.indicators``, ``r["H"]`` for overall figures).
    """
    by = as_list(by)
    indicators, weights = _check_inputs(df, indicators, weights, k, weight, by, cluster)
    wvec = np.array([weights[c] for c in indicators])
    groups = _af_group_sums(df, indicators, wvec, k, by, weight, cluster)
    if by and cluster is None:
        # every sum adds up across groups when each household is its own unit
        everyone = groups.drop(columns=by).sum().to_frame().T
    elif by:
        everyone = _af_group_sums(df, indicators, wvec, k, [], weight, cluster)
    else:
        everyone = groups

    def block(s):
        figures, unc, cen = _af_figures(s, wvec, k)
        figures["k"] = k
        figures["n_excluded"] = int(s["n_rows"]) - int(s["n"])
        contrib = 100 * wvec * cen / figures["M0"] if figures["M0"] and figures["M0"] > 0 \
            else np.full(len(wvec), np.nan)
        ind = pd.DataFrame({
            "indicator": indicators, "dimension": [dimension_of(c) for c in indicators],
            "weight": wvec, "uncensored_headcount": unc, "censored_headcount": cen,
            "contribution_pct": contrib,
        })
        return figures, ind

    overall, overall_ind = block(everyone.iloc[0])
    overall["censored_headcount"] = dict(zip(indicators, overall_ind["censored_headcount"]))
    overall["contribution"] = dict(zip(indicators, overall_ind["contribution_pct"]))

    if by:
        rows, ind_rows = [], []
        for _, s in groups.iterrows():
            key = {c: (None if pd.isna(s[c]) else s[c]) for c in by}
            figures, ind = block(s)
            rows.append({**key, **figures})
            ind_rows.append(ind.assign(**key)[by + list(ind.columns)])
        table = pd.DataFrame(rows)
        ind_table = pd.concat(ind_rows, ignore_index=True)
    else:
        table = pd.DataFrame([{"group": "overall",
                               **{c: v for c, v in overall.items()
                                  if c not in ("censored_headcount", "contribution")}}])
        ind_table = overall_ind
    return AFResult(table=table, indicators=ind_table, overall=overall, weights=weights,
                    k=k, by=by)


# ------------------------------------------------------------- persistent deprivations

_COLUMNS = ["household_id", "period", "period_index", "status", "area", "income_pc_month",
            "province", "province_2025", "region", "ethnic_minority", "weight"]


def _frame(panel, extra=(), province_2025: str | None = None, rows=None) -> pd.DataFrame:
    """Canonical pandas panel (with int ``period_index``) from a Panel, DataFrame or path.
    For a Panel only the needed columns (and, given ``province_2025``, only that
    province's rows; given ``rows``, an Ibis predicate on the table, only those rows)
    leave the engine."""
    if isinstance(panel, pd.DataFrame):
        df = panel
    else:
        from .panel import as_panel
        panel = as_panel(panel)
        cols = [c for c in panel.columns
                if c in _COLUMNS or c.startswith("dep_") or c in extra]
        table = panel.table
        if province_2025 is not None and "province_2025" in panel.columns:
            table = table.filter(table.province_2025 == province_2025)
        if rows is not None:
            table = table.filter(rows(table))
        df = panel.execute(table.select(cols))
    missing = [c for c in ("household_id", "period", "status") if c not in df.columns]
    if missing:
        raise SchemaError(f"the panel has no column(s) {missing}")
    if "period_index" not in df.columns:
        df = df.copy()
        _, df["period_index"] = frequency_and_index(df["period"])
    return df


def panel_frame(panel, region=None, rows=None) -> pd.DataFrame:
    """The columns this module uses, as a pandas DataFrame with ``period_index``, for
    one region (None / "national": everyone; a province in any spelling -> its 2025
    province; or a socio-economic region name). ``panel``: a Panel, DataFrame or path;
    ``rows``: for a Panel, an Ibis predicate choosing the rows that leave the engine
    (e.g. ``standard_change.reviewed_at(period)``)."""
    return _select_region(_frame(panel, province_2025=_province_or_none(region), rows=rows), region)


def _province_or_none(region) -> str | None:
    """The 2025 province a region argument names, or None (national / a region name)."""
    if region in (None, "national", "all"):
        return None
    from .geo import province_2025
    mapped = province_2025([region], errors="coerce")
    return None if mapped.isna().iloc[0] else mapped.iloc[0]


def _columns_of(panel) -> pd.DataFrame:
    """An empty frame with the columns of a panel (Panel, path or DataFrame): what
    ``_indicators_in`` needs when no row was selected, without pulling any."""
    if isinstance(panel, pd.DataFrame):
        return panel.iloc[:0]
    from .panel import as_panel

    return pd.DataFrame(columns=as_panel(panel).columns)


def _indicators_in(df, indicators=None) -> list[str]:
    if indicators is not None:
        missing = [c for c in indicators if c not in df.columns]
        if missing:
            raise SchemaError(f"indicator column(s) {missing} not in the panel")
        return list(indicators)
    found = [c for c in standards.INDICATORS_2022 + ["dep_digital_services", "dep_waste"]
             if c in df.columns]
    if not found:
        raise SchemaError("the panel has no deprivation columns (dep_*)")
    return found


def _panel_rows(panel, region=None) -> _Rows:
    """The rows of a panel (Panel, path, pandas frame or ``_Rows``) with int
    ``period_index``, in one region (``_select_region``'s rules), on the panel's engine:
    a region is a filter there, not a pull."""
    if isinstance(panel, pd.DataFrame):
        return _on_engine(_select_region(_frame(panel), region))
    rows = _on_engine(panel)
    missing = [c for c in ("household_id", "period", "status", "period_index") if c not in rows.columns]
    if missing:
        raise SchemaError(f"the panel has no column(s) {missing}")
    if region in (None, "national", "all"):
        return rows
    import ibis

    from .geo import normalise_name, province_2025

    table, target = rows.table, _province_or_none(region)
    if target is not None:
        if "province_2025" in rows.columns:
            return _Rows(table.filter(table.province_2025 == target), rows.run)
        names = rows.run(table.select("province").distinct())["province"].dropna().tolist()
        keep = [n for n, m in zip(names, province_2025(names, errors="coerce")) if m == target]
    elif "region" in rows.columns:  # a socio-economic region name
        names = rows.run(table.select("region").distinct())["region"].dropna().tolist()
        keep = [n for n in names if normalise_name(n) == normalise_name(region)]
    else:
        province_2025([region])  # raises: an unknown name, listed
        keep = []
    column = "province" if target is not None else "region"
    return _Rows(table.filter(table[column].isin(keep) if keep else ibis.literal(False)), rows.run)


def _periods_present(rows: _Rows) -> list:
    return sorted(rows.run(rows.table.select("period").distinct())["period"].dropna(), key=str)


def _trajectory(rows: _Rows, period, lookback: int):
    """The rows at ``period`` t with a status, of the households in a trajectory group,
    with columns ``group`` and ``prev_status`` -- an Ibis expression (definitions in
    ``trajectory_groups``)."""
    import ibis

    _, t = parse_period(period)
    past = t - lookback
    table = rows.table
    idx = table.period_index
    now = table.filter((idx == t) & table.status.notnull())
    before = table.filter(idx == past).select(_before_id=table.household_id, prev_status=table.status)
    earlier = (table.filter((idx < past) & (table.status == "poor"))
               .select(_earlier_id=table.household_id).distinct())
    joined = (now.left_join(before, now.household_id == before._before_id)
              .left_join(earlier, now.household_id == earlier._earlier_id))
    was_poor = (joined.prev_status == "poor").fill_null(False)
    is_poor = (joined.status == "poor").fill_null(False)
    poor_earlier = joined._earlier_id.notnull()
    group = ibis.cases((was_poor & ~is_poor, "exited"), (was_poor & is_poor, "stayed_poor"),
                       (~was_poor & is_poor & poor_earlier, "relapsed"),
                       (~was_poor & is_poor & ~poor_earlier, "new_poor"), else_=ibis.null("string"))
    out = joined.mutate(group=group)
    return out.filter(out.group.notnull()).drop("_before_id", "_earlier_id")


def _require_period(rows: _Rows, period) -> None:
    _, t = parse_period(period)
    if not rows.run(rows.table.filter(rows.table.period_index == t).count()):
        raise SchemaError(f"period {period!r} is not in the panel")


def _deprivation_count(table, indicators):
    """Number of indicators a row is deprived in (a missing value: not deprived)."""
    import functools
    import operator

    return functools.reduce(operator.add, [_deprived(table[c]).fill_null(0.0) for c in indicators])


def trajectory_groups(panel, period, lookback: int = 1) -> pd.DataFrame:
    """Households at ``period`` t grouped by how they got there (methods.md flows).

    Compares status at t with status at t − ``lookback`` periods (consecutive in the
    panel's frequency, povdyn.periods):

    * ``exited``: poor at t − lookback, observed not poor at t;
    * ``stayed_poor``: poor at both;
    * ``relapsed``: poor at t, not poor (or not observed) at t − lookback, and poor in
      some period before that (an entry that is a relapse, methods.md);
    * ``new_poor``: poor at t, not poor or unobserved at t − lookback, never poor before.

    Returns the rows at t of those households (the columns this module uses) with a
    ``group`` column and ``prev_status``, sorted by household. Removal rows (status NA)
    are never in a group. The groups are formed in the engine: only these households'
    rows leave it (the measures over the groups, ``persistent_deprivations``, leave it
    as one row per group).
    """
    rows = _panel_rows(panel)
    _require_period(rows, period)
    groups = _trajectory(rows, period, lookback)
    keep = [c for c in groups.columns if c in _COLUMNS or c.startswith("dep_")] + ["prev_status", "group"]
    out = rows.run(groups.select(keep).order_by("household_id"))
    out["prev_status"] = out["prev_status"].astype(object).where(out["prev_status"].notna(), np.nan)
    return out.reset_index(drop=True)


def _income_near_line(table, period, factor: float, standard: str):
    """Per row, as an Ibis expression: income at or below ``factor`` × the poverty line
    of its area at ``period`` (an unrecorded income or area: False); None when income or
    area is not a column or no standard covers the period."""
    import ibis

    if not {"income_pc_month", "area"} <= set(table.columns):
        return None
    try:
        lines = standards.standard_for(period, standard).poor_income_max
    except Exception:  # noqa: BLE001 - no standard for this period: no income row
        return None
    line = ibis.cases(*[(table.area == area, float(value)) for area, value in lines.items()],
                      else_=ibis.null("float64"))
    return (_as_number(table.income_pc_month) <= factor * line).fill_null(False)


_GROUPS = ["exited", "relapsed", "stayed_poor", "new_poor"]


def persistent_deprivations(panel, period, lookback: int = 1, indicators=None,
                            weight: str | None = None, near_line: float = 1.2,
                            standard: str = "national") -> pd.DataFrame:
    """Share of households deprived in each indicator at ``period``, by trajectory group.

    Groups (``trajectory_groups``): exited, relapsed, stayed_poor, new_poor. A high share
    among *exited* households names a deprivation that persists after exit (health
    insurance, housing ... in the source material). Long table: group, indicator,
    households, deprived, share (weighted by ``weight`` when given), plus one row per
    group with indicator ``n_deprivations_mean`` (mean count) and ``three_or_more``
    (share with ≥ 3 deprivations), and — when income and area are recorded —
    ``income_near_line``: share whose income is at most ``near_line`` (1.2) × the
    poverty line of ``standard`` at ``period`` (income is the other gap the source
    material names: an exit just above the line is one shock from relapse). A missing
    indicator counts as not deprived; a missing weight as 0. Sums in the engine, one
    row per group pulled.
    """
    import ibis

    rows = _panel_rows(panel)
    _require_period(rows, period)
    indicators = _indicators_in(rows, indicators)
    groups = _trajectory(rows, period, lookback)
    w = _as_number(groups[weight]).fill_null(0.0) if weight else ibis.literal(1.0)
    count = _deprivation_count(groups, indicators)
    three = ibis.ifelse(count >= 3, 1.0, 0.0)
    sums = dict(households=groups.count(), total=w.sum() if weight else groups.count(),
                count_w=(w * count).sum(),
                three=three.sum(), three_w=(w * three).sum())
    for j, c in enumerate(indicators):
        deprived = _deprived(groups[c]).fill_null(0.0)
        sums[f"d{j}"], sums[f"s{j}"] = deprived.sum(), (w * deprived).sum()
    near = _income_near_line(groups, period, near_line, standard)
    if near is not None:
        near = ibis.ifelse(near, 1.0, 0.0)
        sums.update(near=near.sum(), near_w=(w * near).sum())
    by_group = rows.run(groups.group_by("group").aggregate(**sums)).set_index("group")

    def share(value, total):
        return float(value / total) if total > 0 else float("nan")

    out = []
    for grp in _GROUPS:
        s = by_group.loc[grp] if grp in by_group.index else None
        n = int(s["households"]) if s is not None else 0
        total = float(s["total"]) if s is not None else 0.0

        def get(key):
            return float(s[key]) if s is not None else 0.0
        for j, c in enumerate(indicators):
            out.append(dict(group=grp, indicator=c, households=n, deprived=int(get(f"d{j}")),
                            share=share(get(f"s{j}"), total)))
        out.append(dict(group=grp, indicator="n_deprivations_mean", households=n, deprived=np.nan,
                        share=share(get("count_w"), total)))
        out.append(dict(group=grp, indicator="three_or_more", households=n, deprived=int(get("three")),
                        share=share(get("three_w"), total)))
        if near is not None:
            out.append(dict(group=grp, indicator="income_near_line", households=n,
                            deprived=int(get("near")), share=share(get("near_w"), total)))
    result = pd.DataFrame(out)
    result.attrs.update(period=period, lookback=lookback)
    return result


def fragile_exits(panel, period, threshold: int = 3, lookback: int = 1,
                  indicators=None) -> pd.DataFrame:
    """Exits from poverty at ``period`` flagged as fragile.

    An exit (poor at t − lookback, not poor at t) is *fragile* when the household still
    has ≥ ``threshold`` deprivations at t (default 3, the number that makes an
    income-poor household poor under Decree 07/2021): it left on income alone, and one
    income shock puts it back. Returns one row per exit: household_id, period,
    prev_status, status (near_poor / non_poor), n_deprivations, fragile, deprivations
    (the indicator names, ';'-joined) and, when present, province_2025, area,
    ethnic_minority, income_pc_month. Only the exits' rows leave the engine; the counts
    alone are ``_exit_counts``.
    """
    rows = _panel_rows(panel)
    _require_period(rows, period)
    indicators = _indicators_in(rows, indicators)
    groups = _trajectory(rows, period, lookback)
    exits = rows.run(groups.filter(groups.group == "exited").order_by("household_id"))
    g = pd.DataFrame({c: exits[c].astype("boolean").fillna(False).to_numpy(dtype=bool) for c in indicators},
                     index=exits.index)
    exits["n_deprivations"] = g.sum(axis=1).astype(int)
    exits["fragile"] = exits["n_deprivations"] >= threshold
    names = np.array(indicators)
    exits["deprivations"] = [";".join(names[r]) for r in g.to_numpy()]
    keep = ["household_id", "period", "prev_status", "status", "n_deprivations", "fragile",
            "deprivations"] + [c for c in ("province_2025", "province", "area", "ethnic_minority",
                                           "income_pc_month", "weight") if c in exits.columns]
    out = exits[keep].reset_index(drop=True)
    out.attrs.update(threshold=threshold, period=period)
    return out


def _fragile_flag(groups, indicators, threshold: int):
    """Whether an exit is fragile (``fragile_exits``), as an Ibis expression."""
    return _deprivation_count(groups, indicators) >= threshold


def _exit_counts(rows: _Rows, period, threshold: int, lookback: int, indicators) -> tuple[int, int]:
    """(exits, fragile exits) at ``period`` (``fragile_exits``), counted in the engine."""
    import ibis

    groups = _trajectory(rows, period, lookback)
    exits = groups.filter(groups.group == "exited")
    fragile = ibis.ifelse(_fragile_flag(exits, indicators, threshold), 1, 0)
    counts = rows.run(exits.aggregate(exits=exits.count(), fragile=fragile.sum()))
    exits_n, fragile_n = counts["exits"].iloc[0], counts["fragile"].iloc[0]
    return int(exits_n), 0 if pd.isna(fragile_n) else int(fragile_n)


def fragile_exit_outcomes(panel, exit_period, within: int = 2, threshold: int = 3) -> pd.DataFrame:
    """Relapse within ``within`` periods of the exits at ``exit_period``, fragile vs not.

    Exits and the fragile flag as in ``fragile_exits``; relapse as in methods.md
    ("Relapse within k"): followed = observed (not removed) in every period t+1..t+k,
    relapsed = followed and poor in any of them, rate = relapsed / followed (Wilson 95%
    interval). One row per fragile (True/False): exits, followed, relapsed, rate,
    ci_low, ci_high. Checks the claim that exits on income alone do not last. Counted
    in the engine: two rows leave it.
    """
    import ibis

    from .intervals import wilson_interval

    _, t = parse_period(exit_period)
    rows = _panel_rows(panel)
    _require_period(rows, exit_period)
    indicators = _indicators_in(rows)
    groups = _trajectory(rows, exit_period, 1)
    exits = groups.filter(groups.group == "exited")
    exits = exits.select(_exit_id=exits.household_id, fragile=_fragile_flag(exits, indicators, threshold))
    table = rows.table
    later = table.filter(table.period_index.between(t + 1, t + within) & table.status.notnull())
    later = later.group_by("household_id").aggregate(
        seen=later.period_index.nunique(), poor=ibis.ifelse(later.status == "poor", 1, 0).sum())
    joined = exits.left_join(later, exits._exit_id == later.household_id)
    followed = (joined.seen == within).fill_null(False)
    relapsed = followed & (joined.poor > 0).fill_null(False)
    counts = rows.run(joined.group_by("fragile").aggregate(
        exits=joined.count(), followed=ibis.ifelse(followed, 1, 0).sum(),
        relapsed=ibis.ifelse(relapsed, 1, 0).sum())).set_index("fragile")
    out_rows = []
    for flag in (True, False):
        got = counts.loc[flag] if flag in counts.index else None
        exits_n, followed_n, relapsed_n = ((int(got["exits"]), int(got["followed"]), int(got["relapsed"]))
                                           if got is not None else (0, 0, 0))
        low, high = (float(v) for v in wilson_interval(relapsed_n, followed_n))
        out_rows.append(dict(fragile=flag, exits=exits_n, followed=followed_n, relapsed=relapsed_n,
                             rate=relapsed_n / followed_n if followed_n else np.nan,
                             ci_low=low, ci_high=high))
    out = pd.DataFrame(out_rows)
    out.attrs.update(exit_period=exit_period, within=within, threshold=threshold)
    return out


# ------------------------------------------------------------------------- report

def _select_region(df: pd.DataFrame, region) -> pd.DataFrame:
    if region in (None, "national", "all"):
        return df
    from .geo import normalise_name, province_2025
    try:
        target = province_2025([region]).iloc[0]
        col = "province_2025" if "province_2025" in df.columns else None
        if col is None:
            return df[province_2025(df["province"], errors="coerce") == target]
        return df[df[col] == target]
    except SchemaError:
        if "region" in df.columns:
            key = normalise_name(region)
            keys = {r: normalise_name(r) for r in pd.unique(df["region"].dropna())}
            return df[df["region"].map(keys) == key]
        raise


def deprivation_summary(panel, period, region=None, lang: str = "vi", k: float = 1 / 3,
                        lookback: int = 1, threshold: int = 3) -> dict[str, pd.DataFrame]:
    """Tables for the report's deprivations section at ``period`` (stable contract).

    ``region``: None / "national" (everyone), a province (any old or new spelling ->
    its 2025 province) or a socio-economic region name. Returns a dict:

    * ``"af"``: one row per area (urban/rural) and ``Tổng``/``Total`` with households,
      multidimensionally poor households, H, A, M0 (in %, so H = 12.3 means 12.3%), and
      the standard errors of H and M0 (points), under their labels in ``lang``
      (labels ``af_H`` ... ``af_M0_se``); ``attrs["k"]`` holds the cut-off;
    * ``"contributions"``: per indicator (display name): censored headcount (%) and
      contribution to M0 (%), sorted by contribution — input of
      ``povdyn.plots.deprivation.contributions``;
    * ``"persistent"``: share (%) deprived per indicator (rows) for exited / relapsed /
      still-poor / newly poor households (columns, display names), with a households row;
    * ``"fragile"``: exits at ``period``, how many fragile (≥ ``threshold``
      deprivations remaining), and the share.

    Counts are raw (suppress small cells with povdyn.privacy before publishing). AF
    uses the 12 indicators of the panel with nested equal weights and k (1/3 by
    default: deprived in a third of the weighted indicators). Every figure is a sum the
    engine computes (``alkire_foster``, ``persistent_deprivations``): a few rows per
    group leave it, never a period's households.
    """
    from .labels import label

    rows = _panel_rows(panel, region)
    _, t = parse_period(period)
    now = _Rows(rows.table.filter((rows.table.period_index == t) & rows.table.status.notnull()), rows.run)
    if not rows.run(now.table.count()):
        raise SchemaError(f"deprivation_summary: no households at period {period!r} "
                          f"in region {region!r} (periods present: "
                          f"{_periods_present(rows)[-4:]} ...)")
    indicators = _indicators_in(rows)
    weight = None
    if "weight" in now.columns:
        weight = "weight" if rows.run(_as_number(now.table.weight).notnull().sum()) else None
    by = "area" if "area" in now.columns else None
    af = alkire_foster(now, indicators, k=k, by=by, weight=weight)
    total_label = label("total", lang)
    af_table = af.table.copy()
    if by:
        af_table[by] = af_table[by].map(lambda a: label(a, lang) if isinstance(a, str) else a)
        overall = {by: total_label, **{c: af.overall[c] for c in af_table.columns if c != by}}
        af_table = pd.concat([af_table, pd.DataFrame([overall])], ignore_index=True)
        af_table = af_table.rename(columns={by: label(by, lang)})
    else:
        af_table = af_table.drop(columns="group")
        af_table.insert(0, label("group", lang), total_label)
    for c in ("H", "A", "M0", "H_se", "A_se", "M0_se"):
        af_table[c] = 100 * af_table[c]
    poor_md = label("md_poor", lang)
    af_table = af_table.drop(columns=["n_excluded", "A_se", "k"])
    af_table = af_table.rename(columns={"n": label("households", lang), "n_poor": poor_md,
                                        **{c: label(f"af_{c}", lang) for c in ("H", "A", "M0", "H_se", "M0_se")}})
    af_table.attrs["k"] = k

    overall_ind = pd.DataFrame({
        "indicator": list(af.overall["contribution"]),
        "censored_headcount": [100 * v for v in af.overall["censored_headcount"].values()],
        "contribution_pct": list(af.overall["contribution"].values()),
    })
    overall_ind["dimension"] = overall_ind["indicator"].map(dimension_of)
    overall_ind["label"] = overall_ind["indicator"].map(lambda c: indicator_label(c, lang))
    overall_ind = overall_ind.sort_values("contribution_pct", ascending=False,
                                          na_position="last").reset_index(drop=True)

    persistent = persistent_deprivations(rows, period, lookback, indicators, weight=weight)
    wide = persistent.pivot(index="indicator", columns="group", values="share")
    wide = wide.reindex([c for c in indicators + ["three_or_more", "income_near_line"]
                         if c in wide.index])
    wide = 100 * wide
    counts = persistent.drop_duplicates("group").set_index("group")["households"]
    wide.loc["households"] = counts
    order = [g for g in ["exited", "relapsed", "stayed_poor", "new_poor"] if g in wide.columns]
    wide = wide[order]
    row_names = {c: indicator_label(c, lang) for c in indicators}
    row_names["three_or_more"] = label("three_or_more", lang)
    row_names["income_near_line"] = label("income_near_line", lang)
    row_names["households"] = label("households", lang)
    wide = wide.rename(index=row_names, columns={g: GROUP_LABELS[g][lang] for g in order})
    wide.index.name = label("indicator", lang)
    wide.columns.name = None

    n_exits, n_fragile = _exit_counts(rows, period, threshold, lookback, indicators)
    fragile_table = pd.DataFrame([{
        label("exits", lang): n_exits,
        label("fragile_exits", lang): n_fragile,
        label("share", lang) + " (%)": 100 * n_fragile / n_exits if n_exits else float("nan"),
    }])
    return {"af": af_table, "contributions": overall_ind, "persistent": wide,
            "fragile": fragile_table}


def af_table_by(data, indicators, by: str = "province_2025", weights=None,
                k: float = 1 / 3, min_cell: int | None = None, period=None) -> pd.DataFrame:
    """Alkire–Foster H, A and M0 (in percent) per group, sorted by M0, ready to publish:
    groups with fewer than ``min_cell`` households, or fewer than ``min_cell``
    multidimensionally poor households, show "<10" and their rates "—" (a rate times a
    published count would give the small count back). ``data``: a Panel (or path) or a
    pandas frame; given ``period``, its rows at that period with a status (the
    households reviewed then). The sums are the engine's (``alkire_foster``)."""
    from .privacy import suppress_small_cells

    if period is not None:
        rows = _panel_rows(data)
        _, t = parse_period(period)
        data = _Rows(rows.table.filter((rows.table.period_index == t) & rows.table.status.notnull()), rows.run)
    table = alkire_foster(data, indicators, weights=weights, k=k, by=by).table
    table = table[[by, "n", "n_poor", "H", "A", "M0"]].sort_values("M0", ascending=False)
    table[["H", "A", "M0"]] = (100 * table[["H", "A", "M0"]]).round(2)
    small = ("n", "n_poor")
    return suppress_small_cells(table.reset_index(drop=True), count_cols=list(small),
                                rate_cols=["H", "A", "M0"], min_cell=min_cell,
                                rate_basis={"H": small, "A": small, "M0": small})
