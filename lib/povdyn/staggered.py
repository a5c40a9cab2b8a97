"""Staggered adoption: group-time effects (Callaway & Sant'Anna 2021) and event studies.

methods.md, "Model (programme) effectiveness": a model is adopted in different
communes in different years, so a single two-way fixed-effects (TWFE) regression mixes
already-treated units into the controls and is biased when effects vary by cohort or
grow over time. We therefore estimate

* ATT(g, t): the average effect in period t on units first treated in period g
  ("cohort" g), by an unconditional 2x2 difference in differences of outcome *means*:
  change from the base period to t among cohort g, minus the same change among
  comparison units. Comparison units are the **not-yet-treated** (never treated, or
  first treated after max(t, base), cohort g itself excluded; the ``did`` R package's
  rule) or, with ``control="never"``, the never treated only.
* Base period: ``"varying"`` (default, as in ``did``): post periods (t >= g) compare
  with g - 1; pre periods compare t with t - 1, so each pre-period estimate is a
  placebo "effect" of a one-period change that should be ~0 under parallel trends.
  ``"universal"``: every period compares with g - 1 (event time -1 is the reference
  and is not estimated).
* Aggregation to event time e = t - g: cohort-size weights w_g = N_g / sum N_g' over
  the cohorts observed at that e. The standard errors include the estimation of these
  weights (Callaway & Sant'Anna 2021, eq. (3.x) influence functions).
* Group (cohort) aggregation: the average of ATT(g, t) over the cohort's post periods
  (equal weights); overall = cohort-size weighted average of those.

Standard errors: analytic influence functions summed at the unit level (each unit
is one row of the influence matrix), or within ``cluster`` (e.g. commune) when given:
SE = sqrt(G/(G-1) * sum_c (sum_{i in c} psi_i)^2) / N. A joint Wald test that all
pre-period placebo ATT(g, t) are zero is reported as ``pretrend``.

:func:`twfe_event_study` is the TWFE regression with event-time dummies, kept only
as the **biased comparison** (it is labelled so in every output).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from .errors import EstimationError

TWFE_LABEL = "TWFE event study (biased comparison: uses already-treated units as controls)"


@dataclass
class StaggeredResult:
    """Output of :func:`group_time_att`.

    att_gt: [cohort, period, event_time, base_period, att, se, ci_low, ci_high,
             n_treated, n_control, pre]
    event_time: [event_time, att, se, ci_low, ci_high, n_cohorts, n_treated, placebo]
    by_cohort: [cohort, att, se, ci_low, ci_high, n_units, n_periods]
    overall: dict(att, se, ci_low, ci_high, p_value)
    pretrend: dict(chi2, df, p_value) joint test of all pre-period ATT(g, t) = 0
    """

    att_gt: pd.DataFrame
    event_time: pd.DataFrame
    by_cohort: pd.DataFrame
    overall: dict
    pretrend: dict
    control: str
    base_period: str
    influence: np.ndarray = field(repr=False, default=None)


def _se(psi: np.ndarray, cluster_codes: np.ndarray | None) -> float:
    n = len(psi)
    if cluster_codes is None:
        return float(np.sqrt(np.sum(psi ** 2)) / n)
    sums = np.bincount(cluster_codes, weights=psi)
    G = len(sums)
    return float(np.sqrt(G / max(G - 1, 1) * np.sum(sums ** 2)) / n)


def _cov(Psi: np.ndarray, cluster_codes: np.ndarray | None) -> np.ndarray:
    n = Psi.shape[0]
    if cluster_codes is None:
        return Psi.T @ Psi / n ** 2
    S = np.zeros((cluster_codes.max() + 1, Psi.shape[1]))
    np.add.at(S, cluster_codes, Psi)
    G = S.shape[0]
    return G / max(G - 1, 1) * S.T @ S / n ** 2


def group_time_att(
    df: pd.DataFrame,
    unit: str,
    time: str,
    cohort: str,
    outcome: str,
    control: str = "notyet",
    base_period: str = "varying",
    cluster: str | None = None,
    weight: str | None = None,
    min_units: int = 2,
    alpha: float = 0.05,
) -> StaggeredResult:
    """Callaway–Sant'Anna group-time ATT(g, t), unconditional (no covariates).

    df: long panel, one row per unit and period. ``time``: integer period index
    (consecutive periods differ by 1). ``cohort``: first treated period of the unit,
    NaN / 0 / inf for never treated (constant within unit). ``control``: "notyet" or
    "never". ``base_period``: "varying" or "universal" (module docstring).
    ``cluster``: optional column constant within unit (e.g. commune) for clustered SEs.
    ``weight``: optional unit weight (constant within unit), e.g. households in a commune.
    Cells with fewer than ``min_units`` treated or comparison units are skipped.
    """
    if control not in ("notyet", "never"):
        raise EstimationError("control must be 'notyet' or 'never'")
    if base_period not in ("varying", "universal"):
        raise EstimationError("base_period must be 'varying' or 'universal'")
    for c in [unit, time, cohort, outcome] + [x for x in (cluster, weight) if x]:
        if c not in df.columns:
            raise EstimationError(f"column {c!r} not in the panel")
    if df.duplicated([unit, time]).any():
        raise EstimationError(f"the panel has duplicate ({unit}, {time}) rows; one row per unit and period")
    if df[outcome].isna().any():
        raise EstimationError(f"outcome {outcome!r} has missing values; drop those rows first")

    per_unit = df.groupby(unit, sort=True)
    first = per_unit[[cohort] + [x for x in (cluster, weight) if x]].first()
    if (per_unit[cohort].nunique(dropna=False) > 1).any():
        raise EstimationError(f"column {cohort!r} must be constant within each {unit}")
    G = first[cohort].astype(float).replace([0, np.inf], np.nan).to_numpy()
    never = np.isnan(G)
    units = first.index
    N = len(units)
    wunit = first[weight].astype(float).to_numpy() if weight else np.ones(N)
    codes = pd.factorize(first[cluster])[0] if cluster else None
    Y = df.pivot(index=unit, columns=time, values=outcome).reindex(units)
    times = np.array(sorted(Y.columns))
    Yv = Y.to_numpy(dtype=float)
    col = {t: j for j, t in enumerate(times)}
    cohorts = np.array(sorted(set(G[~never]) & set(times)))
    if len(cohorts) == 0:
        raise EstimationError("no treated cohort starts inside the panel's periods")
    if control == "never" and not never.any():
        raise EstimationError("control='never' but there are no never-treated units")

    rows, psis = [], []
    for g in cohorts:
        for t in times:
            if t == times[0] and t < g and base_period == "varying":
                continue
            if t >= g or base_period == "universal":
                base = g - 1
            else:
                base = t - 1
            if base not in col or t == base:
                continue
            y1, y0 = Yv[:, col[t]], Yv[:, col[base]]
            ok = ~np.isnan(y1) & ~np.isnan(y0)
            treated = ok & (G == g)
            if control == "never":
                comp = ok & never
            else:
                comp = ok & (never | (G > max(t, base))) & (G != g)
            nt, nc = int(treated.sum()), int(comp.sum())
            if nt < min_units or nc < min_units:
                continue
            dy = y1 - y0
            wt, wc = wunit * treated, wunit * comp
            mt = np.sum(wt * np.nan_to_num(dy)) / wt.sum()
            mc = np.sum(wc * np.nan_to_num(dy)) / wc.sum()
            att = mt - mc
            # influence function on the unit scale (att_hat - att ~ mean psi)
            psi = np.zeros(N)
            pt, pc = wt.sum() / N, wc.sum() / N
            psi[treated] = wt[treated] * (dy[treated] - mt) / pt
            psi[comp] -= wc[comp] * (dy[comp] - mc) / pc
            rows.append(dict(cohort=g, period=t, event_time=t - g, base_period=base, att=att,
                             n_treated=nt, n_control=nc, pre=bool(t < g)))
            psis.append(psi)
    if not rows:
        raise EstimationError("no (cohort, period) cell has enough treated and comparison units")
    att_gt = pd.DataFrame(rows)
    Psi = np.column_stack(psis)
    z = stats.norm.ppf(1 - alpha / 2)
    att_gt["se"] = [_se(Psi[:, j], codes) for j in range(Psi.shape[1])]
    att_gt["ci_low"] = att_gt.att - z * att_gt.se
    att_gt["ci_high"] = att_gt.att + z * att_gt.se

    # cohort shares pi_g (weighted) and their influence functions
    pi = {g: float(np.sum(wunit * (G == g)) / N) for g in cohorts}
    ind = {g: wunit * (G == g) - pi[g] for g in cohorts}

    def aggregate(mask, weights_by="cohort"):
        """Weighted combination of ATT(g,t) cells in mask with cohort-share weights,
        returning (estimate, influence)."""
        idx = np.flatnonzero(mask)
        gs = att_gt.cohort.to_numpy()[idx]
        p = np.array([pi[g] for g in gs])
        S = p.sum()
        w = p / S
        est = float(np.dot(w, att_gt.att.to_numpy()[idx]))
        psi = Psi[:, idx] @ w
        # weight estimation: d w_j = (ind_j - w_j * sum_k ind_k) / S
        sum_ind = np.sum([ind[g] for g in gs], axis=0)
        for j, g in enumerate(gs):
            psi = psi + att_gt.att.to_numpy()[idx][j] * (ind[g] - w[j] * sum_ind) / S
        return est, psi

    ev_rows = []
    for e in sorted(att_gt.event_time.unique()):
        mask = (att_gt.event_time == e).to_numpy()
        est, psi = aggregate(mask)
        se = _se(psi, codes)
        ev_rows.append(dict(event_time=int(e), att=est, se=se, ci_low=est - z * se, ci_high=est + z * se,
                            n_cohorts=int(mask.sum()), n_treated=int(att_gt.n_treated[mask].sum()),
                            placebo=bool(e < 0)))
    event_time = pd.DataFrame(ev_rows)

    coh_rows, coh_psi = [], []
    for g in cohorts:
        mask = ((att_gt.cohort == g) & ~att_gt.pre).to_numpy()
        if not mask.any():
            continue
        est = float(att_gt.att[mask].mean())
        psi = Psi[:, mask].mean(axis=1)
        se = _se(psi, codes)
        coh_rows.append(dict(cohort=g, att=est, se=se, ci_low=est - z * se, ci_high=est + z * se,
                             n_units=int(np.sum(G == g)), n_periods=int(mask.sum())))
        coh_psi.append(psi)
    by_cohort = pd.DataFrame(coh_rows)
    if len(coh_rows):
        gs = by_cohort.cohort.to_numpy()
        p = np.array([pi[g] for g in gs]); S = p.sum(); w = p / S
        est = float(np.dot(w, by_cohort.att))
        psi = np.column_stack(coh_psi) @ w
        sum_ind = np.sum([ind[g] for g in gs], axis=0)
        for j, g in enumerate(gs):
            psi = psi + by_cohort.att.iloc[j] * (ind[g] - w[j] * sum_ind) / S
        se = _se(psi, codes)
        overall = dict(att=est, se=se, ci_low=est - z * se, ci_high=est + z * se,
                       p_value=float(2 * stats.norm.sf(abs(est / se))) if se > 0 else float("nan"))
    else:
        overall = dict(att=np.nan, se=np.nan, ci_low=np.nan, ci_high=np.nan, p_value=np.nan)

    pre = att_gt.pre.to_numpy()
    if pre.any():
        a = att_gt.att.to_numpy()[pre]
        V = _cov(Psi[:, pre], codes)
        chi2 = float(a @ np.linalg.pinv(V) @ a)
        dof = int(np.linalg.matrix_rank(V))
        pretrend = dict(chi2=chi2, df=dof, p_value=float(stats.chi2.sf(chi2, dof)) if dof else np.nan)
    else:
        pretrend = dict(chi2=np.nan, df=0, p_value=np.nan)
    return StaggeredResult(att_gt=att_gt, event_time=event_time, by_cohort=by_cohort, overall=overall,
                           pretrend=pretrend, control=control, base_period=base_period, influence=Psi)


# --------------------------------------------------------------------------- TWFE
@dataclass
class TwfeResult:
    """TWFE event study — shown only as the biased comparison (see TWFE_LABEL).
    event_time: [event_time, coef, se, ci_low, ci_high]; static: dict(coef, se) of the
    single post-treatment dummy regression."""

    event_time: pd.DataFrame
    static: dict
    label: str = TWFE_LABEL


def _demean_two_way(M: np.ndarray, u: np.ndarray, t: np.ndarray, tol=1e-10, max_iter=500):
    """Remove unit and time means by alternating projections (works for unbalanced panels)."""
    M = M.astype(float).copy()
    nu, nt = u.max() + 1, t.max() + 1
    cu, ct = np.bincount(u, minlength=nu)[:, None], np.bincount(t, minlength=nt)[:, None]
    for _ in range(max_iter):
        su = np.zeros((nu, M.shape[1])); np.add.at(su, u, M)
        M -= (su / cu)[u]
        st = np.zeros((nt, M.shape[1])); np.add.at(st, t, M)
        mt = (st / ct)[t]
        M -= mt
        if np.max(np.abs(mt)) < tol:
            break
    return M


def _ols_cluster(y, X, cl):
    XtX_inv = np.linalg.pinv(X.T @ X)
    b = XtX_inv @ X.T @ y
    r = y - X @ b
    S = np.zeros((cl.max() + 1, X.shape[1])); np.add.at(S, cl, X * r[:, None])
    G = S.shape[0]
    V = G / max(G - 1, 1) * XtX_inv @ (S.T @ S) @ XtX_inv
    return b, np.sqrt(np.diag(V))


def twfe_event_study(
    df: pd.DataFrame,
    unit: str,
    time: str,
    cohort: str,
    outcome: str,
    window: tuple[int, int] = (-4, 4),
    cluster: str | None = None,
    alpha: float = 0.05,
) -> TwfeResult:
    """Two-way fixed-effects regression y_it = a_i + b_t + sum_e d_e 1[t - g_i = e] + u_it,
    e in the window (endpoints binned, e = -1 the reference), SEs clustered by unit (or
    ``cluster``). Also the static version with one post-treatment dummy. This is the
    **biased comparison**: with staggered adoption and heterogeneous/dynamic effects it
    uses already-treated units as controls (Goodman-Bacon 2021; Sun & Abraham 2021)."""
    d = df[[unit, time, cohort, outcome] + ([cluster] if cluster else [])].dropna(subset=[outcome])
    u = pd.factorize(d[unit])[0]
    tt = pd.factorize(d[time], sort=True)[0]
    cl = pd.factorize(d[cluster])[0] if cluster else u
    g = d[cohort].astype(float).replace([0, np.inf], np.nan).to_numpy()
    e = d[time].to_numpy(dtype=float) - g
    lo, hi = window
    eb = np.clip(e, lo, hi)
    events = [k for k in range(lo, hi + 1) if k != -1]
    D = np.column_stack([(eb == k) & ~np.isnan(e) for k in events]).astype(float)
    post = ((e >= 0) & ~np.isnan(e)).astype(float)[:, None]
    y = d[outcome].to_numpy(dtype=float)[:, None]
    z = stats.norm.ppf(1 - alpha / 2)
    Mt = _demean_two_way(np.hstack([y, D, post]), u, tt)
    yt, Dt, Pt = Mt[:, 0], Mt[:, 1:-1], Mt[:, -1:]
    keep = np.abs(Dt).sum(0) > 1e-12
    b, se = _ols_cluster(yt, Dt[:, keep], cl)
    ev = pd.DataFrame({"event_time": np.array(events)[keep], "coef": b, "se": se})
    ev["ci_low"], ev["ci_high"] = ev.coef - z * ev.se, ev.coef + z * ev.se
    ev = pd.concat([ev, pd.DataFrame([dict(event_time=-1, coef=0.0, se=0.0, ci_low=0.0, ci_high=0.0)])])
    ev = ev.sort_values("event_time").reset_index(drop=True)
    bs, ses = _ols_cluster(yt, Pt, cl)
    return TwfeResult(event_time=ev, static=dict(coef=float(bs[0]), se=float(ses[0])))
