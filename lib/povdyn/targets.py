"""Plan versus actual, and where the current dynamics lead (2025, 2030).

Targets (``data/targets.csv``; columns scope, indicator, value, unit, source) hold the
national defaults from the National Target Program (domain.md): poor rate −1 point a
year (the lower end of "−1 to −1.5"), ethnic-minority poor rate −3 points a year, and the
written relapse target "100% of exited households do not relapse" as a relapse ceiling of
0% of exits. A row whose scope is a province name overrides the national value for that
province; an empty value means "no target".

**Progress** (``progress_table``): the actual annual change is the status share at the
report period minus the share at the same period a year earlier (``povdyn.stocks``
shares, in percentage points; on lists over the household totals), with a 95% interval from the two Wilson standard errors combined as
if independent (households are in both years, which makes the true interval narrower:
the stated one is conservative). A reduction target is met when the fall is at least
the target. The relapse ceiling compares ``relapse_rates`` (within k) of the latest fully
followed exit cohort.

**Projection** (``project`` / ``projection``): a Markov chain on the three statuses with
the annual transition matrix estimated at the same quarter of two consecutive years: the
poor and near-poor rows from the households observed at both, the not-poor row as a
stock-flow row (``annual_transition_counts``) that a list register with household
totals gives exactly as a full panel does. Share at
year y = start share · P^(y − year of the report period). Uncertainty: parametric
(multinomial) bootstrap of the transition counts — each row of counts is redrawn as
Multinomial(n_i, p̂_i), the start distribution as Multinomial(N, start share), and the
2.5% / 97.5% percentiles of the projected shares form the interval.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from . import periods as _periods
from .config import settings
from .errors import EstimationError, PovdynError
from .labels import label

STATES = ("poor", "near_poor", "non_poor")
TARGETS_FILE = Path(__file__).parent / "data" / "targets.csv"
INDICATORS = ("poor_rate_reduction", "near_poor_rate_reduction", "em_poor_rate_reduction", "relapse_ceiling")


def _panel_of(data):
    """The Panel behind a page's data (``povdyn.pagedata.PageData``: its un-grouped view,
    whose household pivot the page's other metrics share) or anything
    ``povdyn.stocks.as_panel`` reads."""
    from .stocks import as_panel

    if hasattr(data, "panel_for"):
        return data.panel_for(None)
    return as_panel(data)


def _year_before(period):
    """The same period a year earlier (4 quarters or 1 year)."""
    freq, _ = _periods.parse_period(period)
    return _periods.shift(period, -4 if freq == "quarter" else -1)


# --------------------------------------------------------------------------- targets
def load_targets(path=None) -> pd.DataFrame:
    """The targets table (scope, indicator, value, unit, source); value is float (NaN =
    no target). Unknown indicators are an error naming the row."""
    path = Path(path or TARGETS_FILE)
    t = pd.read_csv(path, dtype={"scope": str, "indicator": str, "unit": str, "source": str})
    for col in ("scope", "indicator", "value"):
        if col not in t.columns:
            raise PovdynError(f"{path}: column {col!r} missing (need scope, indicator, value)")
    bad = ~t["indicator"].isin(INDICATORS)
    if bad.any():
        row = int(np.flatnonzero(bad)[0]) + 2
        raise PovdynError(f"{path}, row {row}: unknown indicator {t.loc[bad, 'indicator'].iloc[0]!r}; "
                          f"use one of {list(INDICATORS)}")
    t["value"] = pd.to_numeric(t["value"], errors="coerce")
    return t


def targets_for(region: str = "national", path=None) -> dict[str, float]:
    """{indicator: value} for a region: national defaults, overridden by rows whose
    scope is the region's name (case and diacritics as written in the file)."""
    t = load_targets(path)
    out = {ind: np.nan for ind in INDICATORS}
    for scope in ("national", region):
        rows = t[t["scope"].str.strip() == scope]
        for r in rows.itertuples(index=False):
            out[r.indicator] = r.value
    return out


# --------------------------------------------------------------------------- progress
def _change(shares_now, shares_then, col):
    """Fall in a share (points) between two periods with a conservative 95% interval."""
    p1, n1 = float(shares_now[col]), float(shares_now["n"])
    p0, n0 = float(shares_then[col]), float(shares_then["n"])
    fall = (p0 - p1) * 100
    se = np.sqrt(p0 * (1 - p0) / n0 + p1 * (1 - p1) / n1) * 100
    return fall, fall - 1.96 * se, fall + 1.96 * se


def progress_values(df, period, region: str = "national", within: int = 2,
                    targets_path=None, min_cell: int | None = None) -> pd.DataFrame:
    """Numeric plan-vs-actual rows: indicator, target, actual, ci_low, ci_high,
    numerator/denominator counts behind the actual, status ("on_track", "off_track",
    "not_assessable", "needs_totals" (a list register without the household totals a
    rate needs) or "no_target"). `df`: PageData, Panel, DataFrame or path.

    The ethnic-minority rate is read from the stock shares grouped by
    ``ethnic_minority`` (a blank cell is its own group, never counted as either): on a
    list register totals are not kept by ethnicity, so that rate -- and its target --
    needs totals."""
    from .dynamics import relapse_rates
    from .stocks import status_shares

    min_cell = settings().min_cell if min_cell is None else min_cell
    panel = _panel_of(df)
    tg = targets_for(region, targets_path)
    period = _periods.canonical([period])[0]
    before = _year_before(period)
    key = lambda p: _periods.parse_period(p)[1]  # noqa: E731
    rows = []

    def share_rows(shares):
        s = shares.assign(n=shares["households"]).set_index(shares["period"].map(key))
        return s.loc[key(period)] if key(period) in s.index else None, \
            s.loc[key(before)] if key(before) in s.index else None

    overall = status_shares(panel)
    groups = [("poor_rate_reduction", overall, "poor_rate", "poor"),
              ("near_poor_rate_reduction", overall, "near_poor_rate", "near_poor")]
    if "ethnic_minority" in panel.columns:
        by_em = status_shares(panel, by="ethnic_minority")
        em = by_em[by_em["ethnic_minority"].map(lambda v: (not pd.isna(v)) and bool(v))]
        groups.append(("em_poor_rate_reduction", em.drop(columns="ethnic_minority"), "poor_rate", "poor"))
    for ind, shares, col, count_col in groups:
        now, then = share_rows(shares)
        row = dict(indicator=ind, target=tg.get(ind, np.nan), actual=np.nan, ci_low=np.nan, ci_high=np.nan,
                   numerator=np.nan, denominator=np.nan, rates_known=True)
        if now is not None and then is not None:
            if not (np.isfinite(now["n"]) and np.isfinite(then["n"])):
                row["rates_known"] = False
            else:
                row.update(numerator=min(now[count_col], then[count_col]), denominator=min(now["n"], then["n"]))
                row["actual"], row["ci_low"], row["ci_high"] = _change(now, then, col)
        rows.append(row)
    rel = relapse_rates(panel, within=within)
    row = dict(indicator="relapse_ceiling", target=tg.get("relapse_ceiling", np.nan), actual=np.nan,
               ci_low=np.nan, ci_high=np.nan, numerator=np.nan, denominator=np.nan, rates_known=True)
    cohort = _periods.shift(period, -within)
    r = rel[rel["exit_period"].map(key) == key(cohort)]
    if len(r):
        r = r.iloc[0]
        row.update(actual=100 * r["rate"], ci_low=100 * r["ci_low"], ci_high=100 * r["ci_high"],
                   numerator=r["relapsed"], denominator=r["followed"])
    rows.append(row)
    out = pd.DataFrame(rows)

    def status(r):
        if not np.isfinite(r.target):
            return "no_target"
        if not r.rates_known:
            return "needs_totals"
        # a verdict on a suppressed figure would reveal it (e.g. "0 relapses")
        if not np.isfinite(r.actual) or not (r.denominator >= min_cell) or not (r.numerator >= min_cell):
            return "not_assessable"
        if r.indicator == "relapse_ceiling":
            return "on_track" if r.actual <= r.target else "off_track"
        return "on_track" if r.actual >= r.target else "off_track"

    out["status"] = [status(r) for r in out.itertuples(index=False)]
    return out.drop(columns="rates_known")


def progress_table(df: pd.DataFrame, period, region: str = "national", within: int = 2, lang: str = "vi",
                   targets_path=None, min_cell: int | None = None) -> pd.DataFrame:
    """Plan vs actual for reviewers (labels in `lang`, small cells suppressed: an actual
    resting on fewer than min_cell households shows "—")."""
    from .formatting import fmt_count, fmt_decimal
    from .privacy import suppress_small_cells

    v = progress_values(df, period, region, within, targets_path, min_cell)
    sup = suppress_small_cells(v, count_cols=["denominator", "numerator"], rate_cols=["actual", "ci_low", "ci_high"],
                               min_cell=min_cell,
                               rate_basis={c: ("denominator", "numerator") for c in ("actual", "ci_low", "ci_high")})
    def num(x):
        if isinstance(x, str):
            return x
        return "" if not np.isfinite(x) else fmt_decimal(x, lang)

    status_text = {"on_track": label("on_track", lang), "off_track": label("off_track", lang),
                   "not_assessable": label("not_assessable", lang),
                   "needs_totals": label("needs_totals", lang),
                   "no_target": label("no_target", lang)}
    return pd.DataFrame({
        label("indicator", lang): [label(i, lang) for i in sup["indicator"]],
        label("target", lang): [num(x) for x in v["target"]],
        label("actual", lang): [num(x) for x in sup["actual"]],
        label("ci95", lang): [("—" if isinstance(a, str) else ("" if not np.isfinite(a) else f"{num(a)} – {num(b)}"))
                              for a, b in zip(sup["ci_low"], sup["ci_high"])],
        label("households", lang): [fmt_count(x, lang) for x in sup["denominator"]],
        label("assessment", lang): [status_text[s] for s in v["status"]],
    })


# --------------------------------------------------------------------------- projection
def project(matrix, start, years: int) -> np.ndarray:
    """Distribution after `years` steps of a Markov chain: start · P^years.
    matrix: 3x3 row-stochastic (rows/cols in STATES order); start: shares (sum 1)."""
    P = np.asarray(matrix, dtype=float)
    x = np.asarray(start, dtype=float)
    if P.shape != (len(x), len(x)):
        raise EstimationError(f"transition matrix shape {P.shape} does not match {len(x)} states")
    if not np.allclose(P.sum(axis=1), 1):
        raise EstimationError("transition matrix rows must sum to 1")
    if years < 0:
        raise EstimationError(f"cannot project {years} years back")
    return x @ np.linalg.matrix_power(P, int(years))


def row_shares(counts) -> np.ndarray:
    """Row-normalised transition counts; a state never seen at the start stays put."""
    C = np.asarray(counts, dtype=float)
    n = C.sum(axis=1, keepdims=True)
    P = np.where(n > 0, C / np.where(n > 0, n, 1), np.eye(len(C)))
    return P


def bootstrap_projection(counts, start_counts, horizons, n_boot: int = 1000, seed: int = 0,
                         level: float = 0.95) -> pd.DataFrame:
    """Projected shares with a parametric bootstrap interval (module docstring).

    counts: 3x3 annual transition counts (from STATES to STATES); start_counts:
    households by status at the start; horizons: years ahead (ints). Returns a
    DataFrame [years, status, share, ci_low, ci_high]."""
    C = np.asarray(counts, dtype=float)
    s = np.asarray(start_counts, dtype=float)
    P = row_shares(C)
    start = s / s.sum()
    rng = np.random.default_rng(seed)
    n_rows = C.sum(axis=1).astype(int)
    draws = {h: np.empty((n_boot, len(s))) for h in horizons}
    for b in range(n_boot):
        Cb = np.vstack([rng.multinomial(n_rows[i], P[i]) if n_rows[i] > 0 else np.eye(len(s))[i]
                        for i in range(len(s))])
        Pb = row_shares(Cb)
        sb = rng.multinomial(int(s.sum()), start) / s.sum()
        for h in horizons:
            draws[h][b] = project(Pb, sb, h)
    a = (1 - level) / 2
    rows = []
    for h in horizons:
        point = project(P, start, h)
        lo, hi = np.quantile(draws[h], [a, 1 - a], axis=0)
        for i, st in enumerate(STATES):
            rows.append(dict(years=h, status=st, share=point[i], ci_low=lo[i], ci_high=hi[i]))
    return pd.DataFrame(rows)


def annual_transition_counts(df, period) -> tuple[np.ndarray, np.ndarray]:
    """(3x3 counts from status a year before to status at `period`, start counts at
    `period`) for the projection (module docstring), computed in the engine on the
    snapshots of the report period's quarter (annual steps).

    Rows poor and near-poor: households with that status a year before and a status at
    `period` (povdyn.transition_matrix on the annual snapshots). Row not poor: a
    stock-flow row, the same on both register kinds -- households poor (near-poor) at
    `period` that were neither poor nor near-poor a year before (not poor, or not yet on
    the register) against the not-poor households a year before (households - poor -
    near-poor of ``povdyn.stocks.status_shares``, so on lists the household totals);
    the rest stay not poor. Start counts: poor, near-poor and not-poor households at
    `period`. A list register without totals for both reviews has no not-poor stock:
    an EstimationError says the totals are needed."""
    from . import dynamics
    from .panel import load_panel
    from .stocks import status_shares

    panel = _panel_of(df)
    freq, idx = _periods.parse_period(period)
    target = idx // 4 if freq == "quarter" else idx
    t = panel.table
    if freq == "quarter":
        t = t.filter((t.period_index % 4) == idx % 4)
        t = t.mutate(period=(t.period_index // 4).cast("int64")).drop("period_index")
    t = t.filter(t.period <= target) if freq == "quarter" else t.filter(t.period_index <= target)
    annual = load_panel(t, register="full")  # already read as its kind: absence is known
    tm = dynamics.transition_matrix(annual, per_period=True)
    long = transition_counts_long(tm)
    long = long[long["period"].map(lambda p: _periods.parse_period(p)[1]) == target]
    C = np.zeros((3, 3))
    for r in long.itertuples(index=False):
        if r.from_status in ("poor", "near_poor") and r.to_status in STATES:
            C[STATES.index(r.from_status), STATES.index(r.to_status)] += r.count
    shares = status_shares(panel)
    shares = shares.set_index(shares["period"].map(lambda p: _periods.parse_period(p)[1]))
    key_now, key_then = idx, _periods.parse_period(_year_before(period))[1]
    if key_now not in shares.index or key_then not in shares.index:
        raise EstimationError(f"no households at {period} or a year before: cannot project")
    now, then = shares.loc[key_now], shares.loc[key_then]
    if not (np.isfinite(now["households"]) and np.isfinite(then["households"])):
        raise EstimationError("the projection needs the number of not-poor households, which a "
                              "list register only has with the household totals of both reviews")
    for j, st in enumerate(("poor", "near_poor")):
        C[2, j] = now[st] - C[0, j] - C[1, j]
    C[2, 2] = then["non_poor"] - C[2, 0] - C[2, 1]
    if C.sum() == 0:
        raise EstimationError(f"no household is observed both a year before and at {period}: "
                              "cannot estimate an annual transition matrix")
    if (C < 0).any():
        raise EstimationError(f"inconsistent counts for the projection at {period}: {C.tolist()}")
    start = np.array([now["poor"], now["near_poor"], now["non_poor"]], dtype=float)
    return C, start


def transition_counts_long(tm) -> pd.DataFrame:
    """Adapt povdyn.transition_matrix output to long form [*, from_status, to_status, count]."""
    obj = tm
    for attr in ("counts", "table"):
        if not isinstance(obj, pd.DataFrame) and hasattr(obj, attr):
            obj = getattr(obj, attr)
    if isinstance(obj, tuple):
        obj = obj[0]
    df = obj.reset_index() if isinstance(obj, pd.DataFrame) and not isinstance(obj.index, pd.RangeIndex) else obj
    cols = {c.lower(): c for c in df.columns}
    from_c = next((cols[c] for c in ("from_status", "from", "status_from", "prev_status") if c in cols), None)
    to_c = next((cols[c] for c in ("to_status", "to", "status_to", "status") if c in cols), None)
    n_c = next((cols[c] for c in ("count", "n", "households", "transitions") if c in cols), None)
    if from_c and to_c and n_c:
        return df.rename(columns={from_c: "from_status", to_c: "to_status", n_c: "count"})
    if from_c and all(s in df.columns for s in STATES):  # wide: one column per destination
        keep = [c for c in df.columns if c not in STATES]
        return df.melt(id_vars=keep, value_vars=list(STATES), var_name="to_status",
                       value_name="count").rename(columns={from_c: "from_status"})
    raise EstimationError(f"cannot read transition_matrix output with columns {list(df.columns)}")


def projection(df, period, years=(2025, 2030), n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Projected poor / near-poor / not-poor shares at the end of each year in `years`
    (start = the report period) with bootstrap intervals: [year, years, status, share,
    ci_low, ci_high]. Years before the report period's year are left out."""
    C, start = annual_transition_counts(df, period)
    y0 = _periods.year_of(period)
    horizons = [y - y0 for y in years if y >= y0]
    out = bootstrap_projection(C, start, horizons, n_boot=n_boot, seed=seed)
    out.insert(0, "year", out["years"] + y0)
    out.attrs["counts"] = C
    out.attrs["start"] = start
    return out


def projection_table(df: pd.DataFrame, period, years=(2025, 2030), lang: str = "vi", n_boot: int = 1000,
                     min_cell: int | None = None, proj: pd.DataFrame | None = None) -> pd.DataFrame:
    """Projected poor and near-poor shares for reviewers (percent, 95% interval). The
    projection rests on the whole transition table; when any of its rows has fewer
    than min_cell households the table says it cannot be shown. `proj`: an existing
    projection(df, period, years) to reuse."""
    from .formatting import fmt_pct

    min_cell = settings().min_cell if min_cell is None else min_cell
    p = projection(df, period, years, n_boot=n_boot) if proj is None else proj
    C = p.attrs["counts"]
    small = (C.sum(axis=1) < min_cell).any()
    rows = []
    for year, g in p.groupby("year"):
        g = g.set_index("status")
        row = {label("year", lang): int(year)}
        for st, key in (("poor", "poor_rate"), ("near_poor", "near_poor_rate")):
            if small:
                row[label(key, lang) + " (%)"] = "—"
                row[label("ci95", lang) + (" " if st == "near_poor" else "")] = "—"
            else:
                row[label(key, lang) + " (%)"] = fmt_pct(g.loc[st, "share"], lang)
                row[label("ci95", lang) + (" " if st == "near_poor" else "")] = (
                    f"{fmt_pct(g.loc[st, 'ci_low'], lang)} – {fmt_pct(g.loc[st, 'ci_high'], lang)}")
        rows.append(row)
    return pd.DataFrame(rows)
