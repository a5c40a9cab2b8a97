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


def _bool_matrix(frame: pd.DataFrame) -> np.ndarray:
    """n × J boolean matrix of deprivation columns; a missing value -> not deprived."""
    out = np.zeros(frame.shape, bool)
    for j, c in enumerate(frame.columns):
        out[:, j] = frame[c].astype("boolean").fillna(False).to_numpy(dtype=bool)
    return out


def _se_mean(y, w, cluster):
    """Linearised SE of the weighted mean Σwy/Σw (iid or clustered)."""
    if len(y) < 2:
        return float("nan")
    total = w.sum()
    mean = (w * y).sum() / total
    z = w * (y - mean) / total
    if cluster is None:
        n = len(z)
        return float(np.sqrt(n / (n - 1) * (z ** 2).sum()))
    sums = pd.Series(z).groupby(cluster).sum().to_numpy()
    g = len(sums)
    return float(np.sqrt(g / (g - 1) * (sums ** 2).sum())) if g > 1 else float("nan")


def _se_ratio(num, den, w, cluster):
    """Linearised SE of Σw·num / Σw·den."""
    d = (w * den).sum()
    if d <= 0 or len(num) < 2:
        return float("nan")
    ratio = (w * num).sum() / d
    z = w * (num - ratio * den) / d
    if cluster is None:
        n = len(z)
        return float(np.sqrt(n / (n - 1) * (z ** 2).sum()))
    sums = pd.Series(z).groupby(cluster).sum().to_numpy()
    g = len(sums)
    return float(np.sqrt(g / (g - 1) * (sums ** 2).sum())) if g > 1 else float("nan")


def _af_block(g: np.ndarray, w: np.ndarray, wvec: np.ndarray, k: float, cluster):
    """Figures for one group: g = n × J deprivation matrix (0/1), w = household weights."""
    n = len(g)
    if n == 0:
        nan = float("nan")
        return dict(n=0, n_poor=0, H=nan, H_se=nan, A=nan, A_se=nan, M0=nan, M0_se=nan), \
            np.full(g.shape[1], nan), np.full(g.shape[1], nan)
    score = g @ wvec
    poor = score >= k - _TOL
    censored = np.where(poor, score, 0.0)
    total = w.sum()
    H = float((w * poor).sum() / total)
    M0 = float((w * censored).sum() / total)
    A = M0 / H if H > 0 else float("nan")
    uncensored = (w[:, None] * g).sum(axis=0) / total
    censored_h = (w[:, None] * g * poor[:, None]).sum(axis=0) / total
    figures = dict(
        n=int(n), n_poor=int(poor.sum()), H=H, H_se=_se_mean(poor.astype(float), w, cluster),
        A=A, A_se=_se_ratio(censored, poor.astype(float), w, cluster) if H > 0 else float("nan"),
        M0=M0, M0_se=_se_mean(censored, w, cluster),
    )
    return figures, uncensored, censored_h


def alkire_foster(df: pd.DataFrame, indicators, weights=None, k: float = 1 / 3, by=None,
                  weight: str | None = None, cluster: str | None = None) -> AFResult:
    """Alkire–Foster headcount ratio H, intensity A and adjusted headcount M0 = H × A.

    Definitions in the module docstring (poor when the weighted deprivation score is
    ≥ k). ``indicators``: boolean (or 0/1) deprivation columns. ``weights``: indicator ->
    weight summing to 1 (default ``default_weights``: equal across dimensions, equal
    within). ``by``: grouping column(s). ``weight``: optional household/survey weight
    column. ``cluster``: optional column for clustered standard errors. Rows with a
    missing indicator value are left out and counted (``n_excluded``). Returns an
    ``AFResult`` (``r.table``, ``r.indicators``, ``r["H"]`` for overall figures).
    """
    by = as_list(by)
    indicators, weights = _check_inputs(df, indicators, weights, k, weight, by, cluster)
    wvec = np.array([weights[c] for c in indicators])
    raw = df[indicators]
    complete = raw.notna().all(axis=1).to_numpy()
    g_all = _bool_matrix(raw).astype(float)
    if weight:
        hw_all = pd.to_numeric(df[weight], errors="coerce").to_numpy(dtype=float)
        complete &= ~np.isnan(hw_all)
    else:
        hw_all = np.ones(len(df))
    cl_all = df[cluster].to_numpy() if cluster else None

    def block(mask):
        m = mask & complete
        figures, unc, cen = _af_block(g_all[m], hw_all[m], wvec, k,
                                      None if cl_all is None else cl_all[m])
        figures["k"] = k
        figures["n_excluded"] = int((mask & ~complete).sum())
        contrib = 100 * wvec * cen / figures["M0"] if figures["M0"] and figures["M0"] > 0 \
            else np.full(len(wvec), np.nan)
        ind = pd.DataFrame({
            "indicator": indicators, "dimension": [dimension_of(c) for c in indicators],
            "weight": wvec, "uncensored_headcount": unc, "censored_headcount": cen,
            "contribution_pct": contrib,
        })
        return figures, ind

    everyone = np.ones(len(df), bool)
    overall, overall_ind = block(everyone)
    overall["censored_headcount"] = dict(zip(indicators, overall_ind["censored_headcount"]))
    overall["contribution"] = dict(zip(indicators, overall_ind["contribution_pct"]))

    rows, ind_rows = [], []
    if by:
        keys = df[by].astype(object).where(df[by].notna(), None)
        for key, idx in keys.groupby(by, dropna=False, sort=True).indices.items():
            key = key if isinstance(key, tuple) else (key,)
            mask = np.zeros(len(df), bool)
            mask[idx] = True
            figures, ind = block(mask)
            rows.append({**dict(zip(by, key)), **figures})
            ind_rows.append(ind.assign(**dict(zip(by, key)))[by + list(ind.columns)])
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
    ``rows``: for a Panel, an Ibis predicate choosing the rows that leave the engine."""
    return _select_region(_frame(panel, province_2025=_province_or_none(region), rows=rows), region)


def _summary_rows(period, lookback: int):
    """The rows ``deprivation_summary`` reads, as an Ibis predicate: every row at the
    period t (the Alkire–Foster table, the trajectory groups and their deprivations),
    the rows at t − lookback (the previous status of each group) and, of the households
    poor at t, their poor rows before that (whether an entry is a relapse: asked of no
    one else) -- not the other periods' rows, which a national register has many
    millions of."""
    _, t = parse_period(period)
    past = t - lookback

    def where(table):
        idx = table.period_index
        poor_now = table.filter((idx == t) & (table.status == "poor")).household_id
        return ((idx == t) | (idx == past)
                | ((idx < past) & (table.status == "poor") & table.household_id.isin(poor_now)))
    return where


def rows_at(*periods):
    """The rows at these periods, as an Ibis predicate for ``panel_frame(rows=...)``:
    a cell that reads one review (the Alkire–Foster table by province, a
    reclassification at ``period``) pulls only that review's rows from the engine."""
    indices = sorted({parse_period(p)[1] for p in periods})

    def where(table):
        return table.period_index.isin(indices)
    return where


def _rows_from(panel, rows) -> pd.DataFrame:
    """``_frame`` of a Panel or path with only ``rows`` (an Ibis predicate) pulled; a
    pandas frame as it is (its rows are already in memory)."""
    return _frame(panel, rows=None if isinstance(panel, pd.DataFrame) else rows)


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


def trajectory_groups(panel, period, lookback: int = 1) -> pd.DataFrame:
    """Households at ``period`` t grouped by how they got there (methods.md flows).

    Compares status at t with status at t − ``lookback`` periods (consecutive in the
    panel's frequency, povdyn.periods):

    * ``exited``: poor at t − lookback, observed not poor at t;
    * ``stayed_poor``: poor at both;
    * ``relapsed``: poor at t, not poor (or not observed) at t − lookback, and poor in
      some period before that (an entry that is a relapse, methods.md);
    * ``new_poor``: poor at t, not poor or unobserved at t − lookback, never poor before.

    Returns the rows at t of those households with a ``group`` column and
    ``prev_status``. Removal rows (status NA) are never in a group. From a Panel only
    the rows this needs leave the engine (``_summary_rows``).
    """
    df = _rows_from(panel, _summary_rows(period, lookback))
    _, t = parse_period(period)
    past = t - lookback
    now = df[df["period_index"] == t]
    if now.empty:
        raise SchemaError(f"period {period!r} is not in the panel")
    prev = df.loc[df["period_index"] == past].set_index("household_id")["status"]
    ever_poor_before = set(df.loc[(df["period_index"] < past) & (df["status"] == "poor"),
                                  "household_id"])
    now = now[now["status"].notna()].copy()
    now["prev_status"] = now["household_id"].map(prev).astype(object)
    was_poor = now["prev_status"].eq("poor")
    is_poor = now["status"].eq("poor")
    earlier = now["household_id"].isin(ever_poor_before)
    group = np.select(
        [was_poor & ~is_poor, was_poor & is_poor, ~was_poor & is_poor & earlier,
         ~was_poor & is_poor & ~earlier],
        ["exited", "stayed_poor", "relapsed", "new_poor"], default="")
    now["group"] = group
    return now[now["group"] != ""].reset_index(drop=True)


def _income_near_line(rows: pd.DataFrame, period, factor: float, standard: str) -> np.ndarray | None:
    """Per row: income at or below ``factor`` × the poverty line of its area at ``period``
    (None when income or area is not recorded or no standard covers the period)."""
    if not {"income_pc_month", "area"} <= set(rows.columns):
        return None
    try:
        lines = standards.standard_for(period, standard).poor_income_max
    except Exception:  # noqa: BLE001 - no standard for this period: no income row
        return None
    line = rows["area"].map(lines).to_numpy(dtype=float)
    income = pd.to_numeric(rows["income_pc_month"], errors="coerce").to_numpy(dtype=float)
    return income <= factor * line


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
    material names: an exit just above the line is one shock from relapse).
    """
    rows = trajectory_groups(panel, period, lookback)
    indicators = _indicators_in(rows if not rows.empty else _columns_of(panel), indicators)
    out = []
    for grp in ["exited", "relapsed", "stayed_poor", "new_poor"]:
        sub = rows[rows["group"] == grp]
        w = (pd.to_numeric(sub[weight], errors="coerce").fillna(0).to_numpy()
             if weight else np.ones(len(sub)))
        g = _bool_matrix(sub[indicators])
        total = w.sum()
        for j, c in enumerate(indicators):
            deprived = int(g[:, j].sum())
            share = float((w * g[:, j]).sum() / total) if total > 0 else float("nan")
            out.append(dict(group=grp, indicator=c, households=len(sub),
                            deprived=deprived, share=share))
        count = g.sum(axis=1)
        out.append(dict(group=grp, indicator="n_deprivations_mean", households=len(sub),
                        deprived=np.nan,
                        share=float((w * count).sum() / total) if total > 0 else np.nan))
        out.append(dict(group=grp, indicator="three_or_more", households=len(sub),
                        deprived=int((count >= 3).sum()),
                        share=float((w * (count >= 3)).sum() / total) if total > 0 else np.nan))
        near = _income_near_line(sub, period, near_line, standard)
        if near is not None:
            out.append(dict(group=grp, indicator="income_near_line", households=len(sub),
                            deprived=int(near.sum()),
                            share=float((w * near).sum() / total) if total > 0 else np.nan))
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
    ethnic_minority, income_pc_month.
    """
    rows = trajectory_groups(panel, period, lookback)
    exits = rows[rows["group"] == "exited"].copy()
    indicators = _indicators_in(rows if not rows.empty else _columns_of(panel), indicators)
    g = pd.DataFrame(_bool_matrix(exits[indicators]), index=exits.index, columns=indicators)
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


def fragile_exit_outcomes(panel, exit_period, within: int = 2, threshold: int = 3) -> pd.DataFrame:
    """Relapse within ``within`` periods of the exits at ``exit_period``, fragile vs not.

    Exits and the fragile flag as in ``fragile_exits``; relapse as in methods.md
    ("Relapse within k"): followed = observed (not removed) in every period t+1..t+k,
    relapsed = followed and poor in any of them, rate = relapsed / followed (Wilson 95%
    interval). One row per fragile (True/False): exits, followed, relapsed, rate,
    ci_low, ci_high. Checks the claim that exits on income alone do not last.
    """
    from .intervals import wilson_interval

    _, t = parse_period(exit_period)

    def rows(table):  # from a Panel: the reviews before and at the exit, and the `within`
        idx = table.period_index  # after it of the households poor before (the exits among them)
        poor_before = table.filter((idx == t - 1) & (table.status == "poor")).household_id
        return idx.between(t - 1, t) | (idx.between(t + 1, t + within) & table.household_id.isin(poor_before))
    df = _rows_from(panel, rows)
    exits = fragile_exits(df, exit_period, threshold)
    later = df[(df["period_index"] > t) & (df["period_index"] <= t + within)
               & df["household_id"].isin(set(exits["household_id"]))]
    seen = later[later["status"].notna()].groupby("household_id")["period_index"].nunique()
    poor = later[later["status"] == "poor"].groupby("household_id").size()
    exits["followed"] = exits["household_id"].map(seen).fillna(0).eq(within)
    exits["relapsed"] = exits["followed"] & exits["household_id"].map(poor).fillna(0).gt(0)
    rows = []
    for flag in (True, False):
        sub = exits[exits["fragile"] == flag]
        followed, relapsed = int(sub["followed"].sum()), int(sub["relapsed"].sum())
        low, high = (float(v) for v in wilson_interval(relapsed, followed))
        rows.append(dict(fragile=flag, exits=len(sub), followed=followed, relapsed=relapsed,
                         rate=relapsed / followed if followed else np.nan,
                         ci_low=low, ci_high=high))
    out = pd.DataFrame(rows)
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
    default: deprived in a third of the weighted indicators).
    """
    from .labels import label

    df = panel_frame(panel, region, rows=_summary_rows(period, lookback))
    _, t = parse_period(period)
    now = df[(df["period_index"] == t) & df["status"].notna()]
    if now.empty:
        raise SchemaError(f"deprivation_summary: no households at period {period!r} "
                          f"in region {region!r} (periods present: "
                          f"{sorted(pd.unique(df['period']), key=str)[-4:]} ...)")
    indicators = _indicators_in(df)
    weight = "weight" if "weight" in now.columns and now["weight"].notna().any() else None
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

    persistent = persistent_deprivations(df, period, lookback, indicators, weight=weight)
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

    fragile = fragile_exits(df, period, threshold, lookback, indicators)
    n_exits = len(fragile)
    n_fragile = int(fragile["fragile"].sum())
    fragile_table = pd.DataFrame([{
        label("exits", lang): n_exits,
        label("fragile_exits", lang): n_fragile,
        label("share", lang) + " (%)": 100 * n_fragile / n_exits if n_exits else float("nan"),
    }])
    return {"af": af_table, "contributions": overall_ind, "persistent": wide,
            "fragile": fragile_table}


def af_table_by(df: pd.DataFrame, indicators, by: str = "province_2025", weights=None,
                k: float = 1 / 3, min_cell: int | None = None) -> pd.DataFrame:
    """Alkire–Foster H, A and M0 (in percent) per group, sorted by M0, ready to publish:
    groups with fewer than ``min_cell`` households, or fewer than ``min_cell``
    multidimensionally poor households, show "<10" and their rates "—" (a rate times a
    published count would give the small count back)."""
    from .privacy import suppress_small_cells

    table = alkire_foster(df, indicators, weights=weights, k=k, by=by).table
    table = table[[by, "n", "n_poor", "H", "A", "M0"]].sort_values("M0", ascending=False)
    table[["H", "A", "M0"]] = (100 * table[["H", "A", "M0"]]).round(2)
    small = ("n", "n_poor")
    return suppress_small_cells(table.reset_index(drop=True), count_cols=list(small),
                                rate_cols=["H", "A", "M0"], min_cell=min_cell,
                                rate_basis={"H": small, "A": small, "M0": small})
