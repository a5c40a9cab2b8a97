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
* Covariates (conditional parallel trends): with ``covariates=[...]`` each 2x2 cell
  is estimated with the units' baseline covariates by the doubly robust DiD of
  Sant'Anna & Zhao (2020) (``est_method="dr"``, the default then), or by IPW or
  outcome regression (:func:`did_panel_2x2`). Checked against the ``csdid`` package (the
  Python port of R ``did``) to machine precision: every ATT(g, t), SE and aggregate.
* Anticipation (``anticipation=a``): units may react a periods before adoption, so
  cells from g - a on compare with g - a - 1 and comparisons must be untreated until
  max(t, base) + a.
* Aggregation to event time e = t - g: cohort-size weights w_g = N_g / sum N_g' over
  the cohorts observed at that e. The standard errors include the estimation of these
  weights (Callaway & Sant'Anna 2021, eq. (3.x) influence functions).
* Group (cohort) aggregation: the average of ATT(g, t) over the cohort's post periods
  (equal weights); overall = cohort-size weighted average of those. Calendar-time
  aggregation: for each period t, the cohort-size weighted average of ATT(g, t) over
  the cohorts already treated (g <= t); overall = their mean. ``aggregates`` holds the
  four overall summaries of R ``did``'s ``aggte`` (simple, group, dynamic, calendar).
* Uniform bands (``n_boot``): a multiplier bootstrap of the event-study influence
  functions (Rademacher weights by unit or cluster) gives the critical value of a
  simultaneous band over all event times (Callaway & Sant'Anna 2021, sec. 4.1).

Standard errors: analytic influence functions summed at the unit level (each unit
is one row of the influence matrix), or within ``cluster`` (e.g. commune) when given:
SE = sqrt(G/(G-1) * sum_c (sum_{i in c} psi_i)^2) / N. R ``did`` and ``csdid`` omit the
G/(G-1) factor, so with few clusters our clustered SEs are slightly larger (by
sqrt(G/(G-1)): 0.8% with 60 communes). A joint Wald test that all pre-period placebo
ATT(g, t) are zero is reported as ``pretrend``.

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
             n_treated, n_control, pre, post]
    event_time: [event_time, att, se, ci_low, ci_high, n_cohorts, n_treated, placebo]
        plus, with ``n_boot``, the uniform (simultaneous) band cb_low / cb_high
    by_cohort: [cohort, att, se, ci_low, ci_high, n_units, n_periods]
    calendar: [period, att, se, ci_low, ci_high, n_cohorts]
    overall: dict(att, se, ci_low, ci_high, p_value) — cohort ("group") aggregation
    aggregates: {"simple" | "group" | "dynamic" | "calendar": dict(att, se)} overall
        summaries as in the ``did`` R package's ``aggte``
    pretrend: dict(chi2, df, p_value) joint test of all pre-period ATT(g, t) = 0
    uniform_critical_value: the bootstrap critical value of the event-study band (or NaN)
    """

    att_gt: pd.DataFrame
    event_time: pd.DataFrame
    by_cohort: pd.DataFrame
    overall: dict
    pretrend: dict
    control: str
    base_period: str
    influence: np.ndarray = field(repr=False, default=None)
    calendar: pd.DataFrame | None = None
    aggregates: dict = field(default_factory=dict)
    est_method: str = "unconditional"
    covariates: tuple = ()
    anticipation: int = 0
    uniform_critical_value: float = float("nan")
    cluster_correction: str = ""


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


EST_METHODS = ("dr", "ipw", "reg")
PS_TRIM = 0.995  # comparison units with a propensity score above this get no weight (as DRDID/did)


def did_panel_2x2(dy, D, X, w, method: str = "dr", trim_level: float = PS_TRIM):
    """ATT of one 2x2 panel difference in differences with covariates, and its
    influence function (Sant'Anna & Zhao 2020, J Econometrics 219:101; the estimators of
    the R packages DRDID / did). ``dy``: change in the outcome from the base period;
    ``D``: 1 treated cohort, 0 comparison; ``X``: design with an intercept column (the
    covariates at baseline); ``w``: unit weights (normalised to mean 1 here).

    * "reg" — outcome regression: ATT = mean over treated of dy - m(X), m the weighted
      least-squares fit of dy on X among comparison units (Heckman, Ichimura & Todd 1997).
    * "ipw" — normalised (Hajek) inverse probability weighting (Abadie 2005): treated
      minus comparison units weighted by e(X) / (1 - e(X)), e a logit of D on X.
    * "dr" — doubly robust (Sant'Anna & Zhao 2020, the "traditional" locally efficient
      DR-DiD): the IPW contrast of dy - m(X); consistent if either model is right.
    Comparison units with e(X) >= ``trim_level`` are given no weight (dr / ipw).
    The influence function includes the estimation of e and m; the ATT's variance is
    mean(inf^2) / n. Raises EstimationError if a model cannot be fitted."""
    from .effects import _expit, _fit_logit

    n = len(D)
    D = D.astype(float)
    w = w / w.mean()
    if method not in EST_METHODS:
        raise EstimationError(f"est_method must be one of {EST_METHODS}")
    if method in ("dr", "ipw"):
        beta = _fit_logit(D, X, "propensity score of the cohort vs its comparison units", weights=w)
        ps = np.minimum(_expit(X @ beta), 1 - 1e-6)
        keep = np.where(D == 1, True, ps < trim_level)
        info = (X * (w * ps * (1 - ps))[:, None]).T @ X
        alr_ps = ((w * (D - ps))[:, None] * X) @ np.linalg.inv(info) * n
        w_t = keep * w * D
        w_c = keep * w * ps * (1 - D) / (1 - ps)
    if method in ("dr", "reg"):
        ctrl = D == 0
        XtWX = (X[ctrl] * w[ctrl, None]).T @ X[ctrl]
        if np.linalg.matrix_rank(XtWX) < X.shape[1]:
            raise EstimationError("outcome regression: covariates collinear among comparison units")
        coef = np.linalg.solve(XtWX, (X[ctrl] * w[ctrl, None]).T @ dy[ctrl])
        m = X @ coef
        bread = np.linalg.inv((X * (w * (1 - D))[:, None]).T @ X / n)
        alr_ols = ((w * (1 - D) * (dy - m))[:, None] * X) @ bread
    if method == "reg":
        w_t = w * D
        eta_t = np.mean(w_t * dy) / np.mean(w_t)
        eta_c = np.mean(w_t * m) / np.mean(w_t)
        inf_t = (w_t * dy - w_t * eta_t) / np.mean(w_t)
        inf_c = (w_t * m - w_t * eta_c + alr_ols @ np.mean(w_t[:, None] * X, axis=0)) / np.mean(w_t)
    elif method == "ipw":
        eta_t = np.mean(w_t * dy) / np.mean(w_t)
        eta_c = np.mean(w_c * dy) / np.mean(w_c)
        inf_t = (w_t * dy - w_t * eta_t) / np.mean(w_t)
        m2 = np.mean((w_c * (dy - eta_c))[:, None] * X, axis=0)
        inf_c = (w_c * dy - w_c * eta_c + alr_ps @ m2) / np.mean(w_c)
    else:
        r = dy - m
        eta_t = np.mean(w_t * r) / np.mean(w_t)
        eta_c = np.mean(w_c * r) / np.mean(w_c)
        inf_t = (w_t * r - w_t * eta_t - alr_ols @ np.mean(w_t[:, None] * X, axis=0)) / np.mean(w_t)
        m2 = np.mean((w_c * (r - eta_c))[:, None] * X, axis=0)
        inf_c = (w_c * r - w_c * eta_c + alr_ps @ m2
                 - alr_ols @ np.mean(w_c[:, None] * X, axis=0)) / np.mean(w_c)
    return float(eta_t - eta_c), inf_t - inf_c


def _multiplier_band(Psi: np.ndarray, codes: np.ndarray | None, alpha: float, n_boot: int, seed: int):
    """Multiplier bootstrap (Callaway & Sant'Anna 2021, Algorithm 1; Rademacher weights
    per unit, or per cluster) of the columns of the unit-level influence matrix Psi:
    bootstrap SEs from the interquartile range and the (1 - alpha) quantile of the
    largest |t| over the columns, the critical value of a uniform (simultaneous) band."""
    N = Psi.shape[0]
    S = Psi if codes is None else np.zeros((codes.max() + 1, Psi.shape[1]))
    if codes is not None:
        np.add.at(S, codes, Psi)
    rng = np.random.default_rng(seed)
    V = rng.choice(np.array([-1.0, 1.0]), size=(n_boot, S.shape[0]))
    dev = V @ S / N
    q75, q25 = np.quantile(dev, 0.75, axis=0), np.quantile(dev, 0.25, axis=0)
    se_b = (q75 - q25) / (stats.norm.ppf(0.75) - stats.norm.ppf(0.25))
    ok = se_b > 0
    t_max = np.max(np.abs(dev[:, ok] / se_b[ok]), axis=1)
    return se_b, float(np.quantile(t_max, 1 - alpha))


def _unit_design(df, unit, time, covariates):
    """Baseline design (intercept + covariates) per unit: each unit's values in its
    first observed period (as the ``did`` R package does for panels), bools as 0/1,
    text as dummies."""
    from .effects import _design

    first = df.sort_values(time, kind="stable").groupby(unit, sort=True)[list(covariates)].first()
    if first.isna().any().any():
        bad = first.columns[first.isna().any()].tolist()
        raise EstimationError(f"covariate(s) {bad} have missing values in the units' first period")
    X = _design(first, covariates)
    return first.index, np.column_stack([np.ones(len(X)), X.to_numpy(float)])


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
    covariates: list[str] | None = None,
    est_method: str | None = None,
    anticipation: int = 0,
    n_boot: int = 0,
    seed: int = 0,
) -> StaggeredResult:
    """Callaway–Sant'Anna group-time ATT(g, t), unconditional or with covariates.

    df: long panel, one row per unit and period. ``time``: integer period index
    (consecutive periods differ by 1). ``cohort``: first treated period of the unit,
    NaN / 0 / inf for never treated (constant within unit). ``control``: "notyet" or
    "never". ``base_period``: "varying" or "universal" (module docstring).
    ``cluster``: optional column constant within unit (e.g. commune) for clustered SEs.
    ``weight``: optional unit weight (constant within unit), e.g. households in a commune.
    Cells with fewer than ``min_units`` treated or comparison units are skipped.

    ``covariates``: baseline covariates (each unit's first-period values) for
    *conditional* parallel trends; each 2x2 cell is then estimated by
    :func:`did_panel_2x2` with ``est_method`` "dr" (default with covariates, Sant'Anna &
    Zhao 2020 doubly robust), "ipw" or "reg". ``anticipation``: number of periods
    before adoption in which units may already react; post cells then compare with
    period g - anticipation - 1, comparison units must be untreated until
    max(t, base) + anticipation, and only cells with t < g - anticipation are placebos.
    ``n_boot`` > 0: multiplier bootstrap (resampling clusters when ``cluster`` is given)
    for a uniform confidence band over the event-study coefficients (columns cb_low,
    cb_high of ``event_time``).

    Standard errors are clustered with the small-sample factor G/(G-1); the ``did`` R
    package and ``csdid`` use none, so their clustered SEs are ours x sqrt((G-1)/G).
    Unclustered SEs agree exactly.
    """
    if control not in ("notyet", "never"):
        raise EstimationError("control must be 'notyet' or 'never'")
    if base_period not in ("varying", "universal"):
        raise EstimationError("base_period must be 'varying' or 'universal'")
    covariates = list(covariates or [])
    if est_method is None:
        est_method = "dr" if covariates else "unconditional"
    elif est_method not in EST_METHODS:
        raise EstimationError(f"est_method must be one of {EST_METHODS}")
    anticipation = int(anticipation)
    if anticipation < 0:
        raise EstimationError("anticipation must be 0 or a positive number of periods")
    for c in [unit, time, cohort, outcome] + [x for x in (cluster, weight) if x] + covariates:
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
    if covariates:
        ids, X_units = _unit_design(df, unit, time, covariates)
        X_units = X_units[pd.Index(ids).get_indexer(units)]
    else:
        X_units = np.ones((N, 1))
    method = est_method if covariates else "reg"  # intercept only: all three are the plain DiD
    Y = df.pivot(index=unit, columns=time, values=outcome).reindex(units)
    times = np.array(sorted(Y.columns))
    Yv = Y.to_numpy(dtype=float)
    col = {t: j for j, t in enumerate(times)}
    cohorts = np.array(sorted(set(G[~never]) & set(times)))
    if len(cohorts) == 0:
        raise EstimationError("no treated cohort starts inside the panel's periods")
    if control == "never" and not never.any():
        raise EstimationError("control='never' but there are no never-treated units")

    a = anticipation
    rows, psis, skipped = [], [], 0
    for g in cohorts:
        for t in times:
            if t == times[0] and t < g - a and base_period == "varying":
                continue
            if t >= g - a or base_period == "universal":
                base = g - a - 1
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
                comp = ok & (never | (G > max(t, base) + a)) & (G != g)
            nt, nc = int(treated.sum()), int(comp.sum())
            if nt < min_units or nc < min_units:
                continue
            cell = treated | comp
            dy = (y1 - y0)[cell]
            try:
                att, inf = did_panel_2x2(dy, treated[cell].astype(float), X_units[cell], wunit[cell], method)
            except (EstimationError, np.linalg.LinAlgError):
                skipped += 1  # a covariate separates or is constant in this cell
                continue
            # unit-level influence function: att_hat - att ~ mean over all N units of psi
            psi = np.zeros(N)
            psi[cell] = inf * N / cell.sum()
            rows.append(dict(cohort=g, period=t, event_time=t - g, base_period=base, att=att,
                             n_treated=nt, n_control=nc, pre=bool(t < g - a), post=bool(t >= g)))
            psis.append(psi)
    if not rows:
        raise EstimationError("no (cohort, period) cell has enough treated and comparison units")
    att_gt = pd.DataFrame(rows)
    Psi = np.column_stack(psis)
    z = stats.norm.ppf(1 - alpha / 2)
    att_gt["se"] = [_se(Psi[:, j], codes) for j in range(Psi.shape[1])]
    att_gt["ci_low"] = att_gt.att - z * att_gt.se
    att_gt["ci_high"] = att_gt.att + z * att_gt.se
    att_values = att_gt.att.to_numpy()
    cell_cohort = att_gt.cohort.to_numpy()

    # cohort shares pi_g (weighted) and their influence functions
    pi = {g: float(np.sum(wunit * (G == g)) / N) for g in cohorts}
    ind = {g: wunit * (G == g) - pi[g] for g in cohorts}

    def aggregate(mask, estimate_weights=True):
        """Cohort-share weighted combination of the ATT(g,t) cells in mask and its
        influence function, including the estimation of the weights (the ``wif`` term
        of Callaway & Sant'Anna 2021) unless ``estimate_weights`` is False."""
        idx = np.flatnonzero(mask)
        gs = cell_cohort[idx]
        p = np.array([pi[g] for g in gs])
        S = p.sum()
        w = p / S
        est = float(np.dot(w, att_values[idx]))
        psi = Psi[:, idx] @ w
        if estimate_weights:
            sum_ind = np.sum([ind[g] for g in gs], axis=0)
            for j, g in enumerate(gs):
                psi = psi + att_values[idx][j] * (ind[g] - w[j] * sum_ind) / S
        return est, psi

    def row(est, psi):
        se = _se(psi, codes)
        return dict(att=est, se=se, ci_low=est - z * se, ci_high=est + z * se,
                    p_value=float(2 * stats.norm.sf(abs(est / se))) if se > 0 else float("nan"))

    ev_rows, ev_psi = [], []
    for e in sorted(att_gt.event_time.unique()):
        mask = (att_gt.event_time == e).to_numpy()
        est, psi = aggregate(mask)
        r = row(est, psi)
        ev_rows.append(dict(event_time=int(e), att=est, se=r["se"], ci_low=r["ci_low"], ci_high=r["ci_high"],
                            n_cohorts=int(mask.sum()), n_treated=int(att_gt.n_treated[mask].sum()),
                            placebo=bool(e < -a)))
        ev_psi.append(psi)
    event_time = pd.DataFrame(ev_rows)
    crit = float("nan")
    if n_boot and len(ev_psi):
        se_b, crit = _multiplier_band(np.column_stack(ev_psi), codes, alpha, int(n_boot), seed)
        event_time["se_bootstrap"] = se_b
        event_time["cb_low"] = event_time.att - crit * se_b
        event_time["cb_high"] = event_time.att + crit * se_b

    coh_rows, coh_psi = [], []
    post = att_gt.post.to_numpy()
    for g in cohorts:
        mask = (cell_cohort == g) & post
        if not mask.any():
            continue
        est = float(att_values[mask].mean())
        psi = Psi[:, mask].mean(axis=1)
        se = _se(psi, codes)
        coh_rows.append(dict(cohort=g, att=est, se=se, ci_low=est - z * se, ci_high=est + z * se,
                             n_units=int(np.sum(G == g)), n_periods=int(mask.sum())))
        coh_psi.append(psi)
    by_cohort = pd.DataFrame(coh_rows)
    aggregates = {}
    if len(coh_rows):
        gs = by_cohort.cohort.to_numpy()
        p = np.array([pi[g] for g in gs]); S = p.sum(); w = p / S
        est = float(np.dot(w, by_cohort.att))
        psi = np.column_stack(coh_psi) @ w
        sum_ind = np.sum([ind[g] for g in gs], axis=0)
        for j, g in enumerate(gs):
            psi = psi + by_cohort.att.iloc[j] * (ind[g] - w[j] * sum_ind) / S
        overall = row(est, psi)
        aggregates["group"] = overall
        aggregates["simple"] = row(*aggregate(post))
        dyn = [k for k, r in enumerate(ev_rows) if r["event_time"] >= 0]
        if dyn:
            aggregates["dynamic"] = row(float(np.mean([ev_rows[k]["att"] for k in dyn])),
                                        np.column_stack([ev_psi[k] for k in dyn]).mean(axis=1))
    else:
        overall = dict(att=np.nan, se=np.nan, ci_low=np.nan, ci_high=np.nan, p_value=np.nan)

    cal_rows, cal_psi = [], []
    periods = att_gt.period.to_numpy()
    for t in sorted(set(periods[post])):
        mask = post & (periods == t)
        est, psi = aggregate(mask)
        cal_rows.append(dict(period=t, **{k: v for k, v in row(est, psi).items() if k != "p_value"},
                             n_cohorts=int(mask.sum())))
        cal_psi.append(psi)
    calendar = pd.DataFrame(cal_rows, columns=["period", "att", "se", "ci_low", "ci_high", "n_cohorts"])
    if cal_rows:
        aggregates["calendar"] = row(float(calendar.att.mean()), np.column_stack(cal_psi).mean(axis=1))

    pre = att_gt.pre.to_numpy()
    if pre.any():
        a_pre = att_values[pre]
        V = _cov(Psi[:, pre], codes)
        chi2 = float(a_pre @ np.linalg.pinv(V) @ a_pre)
        dof = int(np.linalg.matrix_rank(V))
        pretrend = dict(chi2=chi2, df=dof, p_value=float(stats.chi2.sf(chi2, dof)) if dof else np.nan)
    else:
        pretrend = dict(chi2=np.nan, df=0, p_value=np.nan)
    return StaggeredResult(att_gt=att_gt, event_time=event_time, by_cohort=by_cohort, overall=overall,
                           pretrend=pretrend, control=control, base_period=base_period, influence=Psi,
                           calendar=calendar, aggregates=aggregates, est_method=est_method,
                           covariates=tuple(covariates), anticipation=a, uniform_critical_value=crit,
                           cluster_correction="G/(G-1)" if cluster else "")


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
