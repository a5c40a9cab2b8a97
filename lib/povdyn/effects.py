"""Effect of a binary treatment on an outcome under selection on observables.

methods.md, "Model (programme) effectiveness": the estimand is stated (ATT by default,
ATE on request); the propensity score is a logit (maximum likelihood by Newton–Raphson,
checked against statsmodels' Logit in the tests); estimators are
inverse probability weighting (IPW), doubly robust augmented IPW (AIPW), regression
adjustment ("ols") and propensity-score nearest-neighbour matching; every result carries
a balance table (standardised mean differences before/after weighting or matching,
target |SMD| < 0.1), overlap diagnostics with the trimming rule stated, and the naive
difference in means beside the adjusted estimate.

Standard errors
---------------
* ``se="influence"`` (default) for ipw / aipw / ols: the estimator is written as a stack
  of estimating equations (propensity logit score, outcome-model score(s), mean
  equations) and the standard error is the sandwich variance of that stack, i.e. the
  empirical variance of the estimator's influence function *including* the estimation
  of the propensity score and of the outcome model. With ``cluster=`` the influence
  function is summed within clusters first (cluster-robust).
* ``se="influence"`` for matching: Abadie & Imbens (2006, Econometrica 74(1), Thm 7;
  Abadie, Drukker, Herr & Imbens 2004 for M > 1 and ties) variance of matching with
  replacement on the propensity score, conditional-variance terms estimated from
  same-arm neighbours (ties included), minus the Abadie & Imbens (2016) correction for
  the *estimated* logit score (plain score matching; with a caliper, exact cells or bias
  correction the score is treated as known and ``se_method`` says so).
* ``se="bootstrap"``: non-parametric bootstrap of whole rows (or of clusters), the
  propensity score refitted in every replicate; SE = standard deviation of the
  replicates, normal-approximation interval. (For matching the bootstrap is known to be
  inconsistent, Abadie & Imbens 2008; prefer the analytic SE there.)

Outcome models: a binary (0/1) outcome gets a logit outcome model, a continuous one
OLS; ``outcome_model="linear"`` forces a linear (probability) model.

Balance: "before" = raw means on the full sample; "after" = the trimmed sample weighted
as the estimator weights it — IPW weights (ATT: controls e/(1-e); ATE: 1/e and 1/(1-e))
for ipw and aipw, and also shown for ols (regression adjustment does not reweight),
match counts for matching. SMD denominators, before and after, are the unweighted
pooled SD of the full sample before trimming, so the two columns are on one scale.

Trimming: ``trim=(lo, hi)`` drops every unit (treated or control) whose estimated
propensity score lies outside [lo, hi] before estimating; ``trim="crump"`` takes the
Crump et al. (2009) optimal bounds. The number dropped per group is reported in
``.overlap`` and the treated dropped (trimming plus unmatched) in ``.n_dropped_treated``,
in ``summary()`` and in ``str(result)``: the estimand is then the ATT/ATE on the trimmed
sample, not on every treated unit. Overlap weights (``estimand="ATO"``) avoid trimming.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .errors import EstimationError

METHODS = ("ipw", "aipw", "ols", "matching")
ESTIMANDS = ("ATT", "ATE", "ATO")


# --------------------------------------------------------------------------- results
@dataclass
class Overlap:
    """Propensity-score overlap diagnostics.

    scores: DataFrame [treated, pscore, trimmed] one row per input unit;
    rule: the trimming rule in words; n_trimmed_treated / n_trimmed_control: units
    dropped by it; by_group: quantiles of the score by group."""

    scores: pd.DataFrame
    rule: str
    n_trimmed_treated: int
    n_trimmed_control: int
    bounds: tuple[float, float] | None = None

    @property
    def by_group(self) -> pd.DataFrame:
        q = self.scores.groupby("treated")["pscore"].describe(percentiles=[0.01, 0.05, 0.5, 0.95, 0.99])
        q.index = q.index.map({1: "treated", 0: "control"})
        return q


@dataclass
class EffectResult:
    """Result of :func:`estimate_effect`. ``estimate`` is the adjusted effect, ``naive``
    the raw difference in means (treated minus control) for comparison."""

    estimate: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    n_treated: int
    n_control: int
    method: str
    estimand: str
    se_method: str
    outcome_model: str
    balance: pd.DataFrame
    overlap: Overlap
    naive: float
    naive_se: float
    influence: np.ndarray | None = field(default=None, repr=False)
    n_unmatched_treated: int = 0
    n_unmatched_control: int = 0
    matching: dict | None = None
    treated_mean: float = float("nan")  # mean outcome of the treated units analysed

    @property
    def n_dropped_treated(self) -> int:
        """Treated units left out of the estimate (trimming, plus no match within the
        caliper / exact cells): the estimate is the effect on the treated that remain."""
        return self.overlap.n_trimmed_treated + self.n_unmatched_treated

    def summary(self) -> pd.DataFrame:
        """One-row DataFrame with the estimate, its interval and the naive comparison."""
        return pd.DataFrame([{
            "method": self.method, "estimand": self.estimand,
            "estimate": self.estimate, "se": self.se,
            "ci_low": self.ci_low, "ci_high": self.ci_high, "p_value": self.p_value,
            "naive": self.naive, "n_treated": self.n_treated, "n_control": self.n_control,
            "max_abs_smd_before": float(self.balance["smd_before"].abs().max()),
            "max_abs_smd_after": float(self.balance["smd_after"].abs().max()),
            "n_trimmed": self.overlap.n_trimmed_treated + self.overlap.n_trimmed_control,
            "n_trimmed_treated": self.overlap.n_trimmed_treated,
            "n_trimmed_control": self.overlap.n_trimmed_control,
            "n_unmatched_treated": self.n_unmatched_treated,
            "n_dropped_treated": self.n_dropped_treated,
            "se_method": self.se_method,
        }])

    def __str__(self) -> str:
        b = self.balance
        worst = b["smd_after"].abs().max()
        lines = [
            f"{self.estimand} by {self.method} (outcome model: {self.outcome_model}; SE: {self.se_method})",
            f"  estimate {self.estimate:,.4g}  (SE {self.se:,.3g}; 95% CI {self.ci_low:,.4g} to {self.ci_high:,.4g}; p = {self.p_value:.3g})",
            f"  naive difference in means {self.naive:,.4g} (SE {self.naive_se:,.3g})",
            f"  n treated {self.n_treated:,}, n control {self.n_control:,}; trimming: {self.overlap.rule} "
            f"dropped {self.overlap.n_trimmed_treated} treated, {self.overlap.n_trimmed_control} control"
            + (f"; no match within caliper/exact cells: {self.n_unmatched_treated} treated, "
               f"{self.n_unmatched_control} control" if self.n_unmatched_treated + self.n_unmatched_control else ""),
            f"  balance: max |SMD| {b['smd_before'].abs().max():.3f} before, {worst:.3f} after "
            f"({'meets' if worst < 0.1 else 'misses'} the 0.1 target)",
        ]
        return "\n".join(lines)

    __repr__ = __str__


# --------------------------------------------------------------------------- helpers
def _expit(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -700, 700)))


def _design(df: pd.DataFrame, covariates: Sequence[str]) -> pd.DataFrame:
    """Numeric design columns: bools -> 0/1, text/categories -> dummies (first level dropped)."""
    parts = []
    for c in covariates:
        s = df[c]
        if pd.api.types.is_bool_dtype(s):
            parts.append(s.astype(float).rename(c))
        elif pd.api.types.is_numeric_dtype(s):
            parts.append(s.astype(float).rename(c))
        else:
            d = pd.get_dummies(s.astype("category"), prefix=c, drop_first=True, dtype=float)
            parts.append(d)
    return pd.concat(parts, axis=1) if parts else pd.DataFrame(index=df.index)


def _check_inputs(df, treatment, outcome, covariates):
    missing_cols = [c for c in [treatment, outcome, *covariates] if c not in df.columns]
    if missing_cols:
        raise EstimationError(f"columns {missing_cols} not in the data (have {list(df.columns)[:30]})")
    for c in [treatment, outcome, *covariates]:
        na = df[c].isna()
        if na.any():
            rows = list(df.index[na][:5])
            raise EstimationError(
                f"column {c!r} has {int(na.sum())} missing values (first rows {rows}); "
                "drop or impute them before estimating")
    t = df[treatment]
    values = set(pd.unique(t.astype(float) if pd.api.types.is_bool_dtype(t) else t))
    if not values <= {0, 1} or len(values) < 2:
        raise EstimationError(
            f"treatment {treatment!r} must be 0/1 (or bool) with both groups present; found values "
            f"{sorted(values, key=str)[:10]}")
    if not pd.api.types.is_numeric_dtype(df[outcome]) and not pd.api.types.is_bool_dtype(df[outcome]):
        raise EstimationError(f"outcome {outcome!r} must be numeric or 0/1, got dtype {df[outcome].dtype}")


def _standardise(X: pd.DataFrame) -> np.ndarray:
    """Intercept + z-scored columns (fitted values are unchanged; IRLS is better conditioned)."""
    sd = X.std(ddof=0)
    constant = sd.index[(sd == 0) | sd.isna()].tolist()
    if constant:
        raise EstimationError(
            f"covariate(s) {constant} are constant in the estimation sample; remove them "
            "(a constant column cannot be balanced or used in the propensity model)")
    Z = ((X - X.mean()) / sd).to_numpy()
    return np.column_stack([np.ones(len(X)), Z])


def _fit_logit(y: np.ndarray, X: np.ndarray, what: str, weights: np.ndarray | None = None) -> np.ndarray:
    """Maximum-likelihood logit coefficients by Newton–Raphson with step halving.

    Written out (rather than statsmodels GLM/IRLS) because it only solves p x p systems:
    the SVD-based least squares inside IRLS is ~30x slower on a loaded multi-threaded
    BLAS. tests/test_effects.py checks it against statsmodels' Logit on LaLonde data.
    Raises EstimationError on collinear columns, or on perfect / quasi-complete
    separation (coefficients diverge: no convergence, or a fitted probability of 0 or 1
    with a huge coefficient on standardised covariates)."""
    n, k = X.shape
    w = np.ones(n) if weights is None else np.asarray(weights, float)
    XtX = (X * w[:, None]).T @ X
    eig = np.linalg.eigvalsh(XtX)
    if eig.min() <= 1e-10 * max(eig.max(), 1.0):
        raise EstimationError(
            f"{what}: the covariates are collinear (the design matrix is rank deficient); drop redundant ones")
    beta = np.zeros(k)
    ybar = float(np.average(y, weights=w))
    if 0 < ybar < 1:
        beta[0] = np.log(ybar / (1 - ybar))  # column 0 is the intercept

    def loglik(b):
        eta = X @ b
        return float(np.sum(w * (y * eta - np.logaddexp(0, eta))))

    ll = loglik(beta)
    converged = False
    for _ in range(100):
        p = _expit(X @ beta)
        W = w * p * (1 - p)
        H = (X * W[:, None]).T @ X
        g = X.T @ (w * (y - p))
        try:
            step = np.linalg.solve(H + 1e-12 * np.eye(k), g)
        except np.linalg.LinAlgError:
            break
        t = 1.0
        while True:
            cand = beta + t * step
            ll_new = loglik(cand)
            if ll_new >= ll - 1e-12 or t < 1e-8:
                break
            t /= 2
        beta, ll_old, ll = cand, ll, ll_new
        if np.max(np.abs(t * step)) < 1e-9 or abs(ll - ll_old) < 1e-12 * (1 + abs(ll)):
            converged = True
            break
    p = _expit(X @ beta)
    extreme = np.mean((p < 1e-9) | (p > 1 - 1e-9))
    if not converged or not np.all(np.isfinite(beta)) or (np.max(np.abs(beta[1:]), initial=0) > 25 and extreme > 0):
        raise EstimationError(
            f"{what}: perfect (or quasi-) separation — some covariate combination predicts "
            "the 0/1 variable exactly, so the logit does not converge; drop or coarsen that "
            "covariate, or restrict to comparable units")
    return beta


def _fit_outcome(y, X, binary_logit: bool, what: str) -> np.ndarray:
    if binary_logit:
        return _fit_logit(y, X, what)
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    return coef


def _pooled_sd(x, d):
    """Unweighted pooled SD sqrt((var_t + var_c) / 2) of x across the two arms."""
    return float(np.sqrt((x[d == 1].var(ddof=1) + x[d == 0].var(ddof=1)) / 2))


def _smd(x, d, w_t=None, w_c=None, scale=None):
    """Standardised mean difference (weighted means). The denominator is ``scale`` when
    given, else the unweighted pooled SD of this sample: "after" passes the SD of the
    full sample before trimming and weighting, so before/after are on the same scale."""
    xt, xc = x[d == 1], x[d == 0]
    pooled = _pooled_sd(x, d) if scale is None else scale
    mt = np.average(xt, weights=w_t) if w_t is not None else xt.mean()
    mc = np.average(xc, weights=w_c) if w_c is not None else xc.mean()
    smd = (mt - mc) / pooled if pooled > 0 else 0.0
    return mt, mc, smd


# --------------------------------------------------------------------------- core
class _Problem:
    """Arrays for one estimation (after trimming)."""

    def __init__(self, y, d, Xp, Xo, binary_logit):
        self.y, self.d, self.Xp, self.Xo = y, d, Xp, Xo
        self.binary_logit = binary_logit
        self.kp, self.ko = Xp.shape[1], Xo.shape[1]

    def m(self, X, g):
        eta = X @ g
        return _expit(eta) if self.binary_logit else eta


def _layout(method, estimand, kp, ko):
    """Names and sizes of the parameter blocks in the stacked estimating equations."""
    blocks = [("beta", kp)]
    if method in ("ols", "aipw"):
        blocks.append(("g0", ko))
        if estimand == "ATE":
            blocks.append(("g1", ko))
    if method == "ipw":
        blocks += [("mu1", 1), ("mu0", 1)]
    elif method == "ols":
        blocks += [("mu1", 1), ("mu0", 1)]
    elif method == "aipw":
        if estimand == "ATT":
            blocks += [("mu1", 1), ("a0", 1), ("nu0", 1)]
        else:
            blocks += [("a1", 1), ("nu1", 1), ("a0", 1), ("nu0", 1)]
    pos, out = 0, {}
    for name, size in blocks:
        out[name] = slice(pos, pos + size)
        pos += size
    return out, pos


def _moments(theta, P: _Problem, method, estimand, lay):
    """n x p matrix of estimating functions g_i(theta); the estimator solves mean g = 0."""
    y, d = P.y, P.d
    beta = theta[lay["beta"]]
    e = _expit(P.Xp @ beta)
    cols = [P.Xp * (d - e)[:, None]]
    if "g0" in lay:
        g0 = theta[lay["g0"]]
        m0 = P.m(P.Xo, g0)
        cols.append(P.Xo * ((1 - d) * (y - m0))[:, None])
    if "g1" in lay:
        g1 = theta[lay["g1"]]
        m1 = P.m(P.Xo, g1)
        cols.append(P.Xo * (d * (y - m1))[:, None])
    t = {k: theta[v][0] for k, v in lay.items() if v.stop - v.start == 1}
    if method == "ipw":
        if estimand == "ATT":
            w0 = (1 - d) * e / (1 - e)
            cols += [(d * (y - t["mu1"]))[:, None], (w0 * (y - t["mu0"]))[:, None]]
        elif estimand == "ATO":
            cols += [(d * (1 - e) * (y - t["mu1"]))[:, None], ((1 - d) * e * (y - t["mu0"]))[:, None]]
        else:
            cols += [(d / e * (y - t["mu1"]))[:, None], ((1 - d) / (1 - e) * (y - t["mu0"]))[:, None]]
    elif method == "ols":
        if estimand == "ATT":
            cols += [(d * (y - t["mu1"]))[:, None], (d * (m0 - t["mu0"]))[:, None]]
        else:
            cols += [(m1 - t["mu1"])[:, None], (m0 - t["mu0"])[:, None]]
    elif method == "aipw":
        if estimand == "ATT":
            w0 = (1 - d) * e / (1 - e)
            cols += [(d * (y - t["mu1"]))[:, None], (d * (m0 - t["a0"]))[:, None],
                     (w0 * (y - m0 - t["nu0"]))[:, None]]
        else:
            w1, w0 = d / e, (1 - d) / (1 - e)
            cols += [(m1 - t["a1"])[:, None], (w1 * (y - m1 - t["nu1"]))[:, None],
                     (m0 - t["a0"])[:, None], (w0 * (y - m0 - t["nu0"]))[:, None]]
    return np.column_stack(cols)


def _solve(P: _Problem, method, estimand, beta=None):
    """Point estimates of all blocks (closed form given the fitted nuisance models);
    ``beta``: propensity coefficients already fitted on exactly this sample."""
    lay, p = _layout(method, estimand, P.kp, P.ko)
    theta = np.zeros(p)
    y, d = P.y, P.d
    theta[lay["beta"]] = beta if beta is not None else _fit_logit(d, P.Xp, "propensity score model")
    e = _expit(P.Xp @ theta[lay["beta"]])
    if "g0" in lay:
        theta[lay["g0"]] = _fit_outcome(y[d == 0], P.Xo[d == 0], P.binary_logit, "outcome model (controls)")
        m0 = P.m(P.Xo, theta[lay["g0"]])
    if "g1" in lay:
        theta[lay["g1"]] = _fit_outcome(y[d == 1], P.Xo[d == 1], P.binary_logit, "outcome model (treated)")
        m1 = P.m(P.Xo, theta[lay["g1"]])

    def put(name, value):
        theta[lay[name]] = value

    if method == "ipw":
        if estimand == "ATT":
            w0 = (1 - d) * e / (1 - e)
            put("mu1", y[d == 1].mean()); put("mu0", np.sum(w0 * y) / np.sum(w0))
        elif estimand == "ATO":
            w1, w0 = d * (1 - e), (1 - d) * e
            put("mu1", np.sum(w1 * y) / np.sum(w1)); put("mu0", np.sum(w0 * y) / np.sum(w0))
        else:
            w1, w0 = d / e, (1 - d) / (1 - e)
            put("mu1", np.sum(w1 * y) / np.sum(w1)); put("mu0", np.sum(w0 * y) / np.sum(w0))
    elif method == "ols":
        if estimand == "ATT":
            put("mu1", y[d == 1].mean()); put("mu0", m0[d == 1].mean())
        else:
            put("mu1", m1.mean()); put("mu0", m0.mean())
    elif method == "aipw":
        w0 = (1 - d) * e / (1 - e) if estimand == "ATT" else (1 - d) / (1 - e)
        if estimand == "ATT":
            put("mu1", y[d == 1].mean()); put("a0", m0[d == 1].mean())
        else:
            w1 = d / e
            put("a1", m1.mean()); put("nu1", np.sum(w1 * (y - m1)) / np.sum(w1)); put("a0", m0.mean())
        put("nu0", np.sum(w0 * (y - m0)) / np.sum(w0))
    # contrast vector: effect = c @ theta
    c = np.zeros(p)
    if method in ("ipw", "ols"):
        c[lay["mu1"]] = 1; c[lay["mu0"]] = -1
    elif estimand == "ATT":
        c[lay["mu1"]] = 1; c[lay["a0"]] = -1; c[lay["nu0"]] = -1
    else:
        c[lay["a1"]] = 1; c[lay["nu1"]] = 1; c[lay["a0"]] = -1; c[lay["nu0"]] = -1
    return theta, lay, c, e


def _influence(P: _Problem, method, estimand, theta, lay, c):
    """Influence function of effect = c @ theta: -c' A^{-1} g_i, A = d mean(g)/d theta
    (numerical central differences; the equations are smooth)."""
    n = len(P.y)
    g = _moments(theta, P, method, estimand, lay)
    p = len(theta)
    A = np.empty((p, p))
    for j in range(p):
        h = 1e-6 * max(1.0, abs(theta[j]))
        tp, tm = theta.copy(), theta.copy()
        tp[j] += h; tm[j] -= h
        A[:, j] = (_moments(tp, P, method, estimand, lay).mean(0) - _moments(tm, P, method, estimand, lay).mean(0)) / (2 * h)
    try:
        row = np.linalg.solve(A.T, c)  # c' A^{-1}
    except np.linalg.LinAlgError as exc:
        raise EstimationError("the estimating equations are singular (collinear covariates?)") from exc
    return -(g @ row)  # per-unit influence (effect_hat - effect ~ mean of this)


def _se_from_influence(psi, cluster=None):
    n = len(psi)
    if cluster is None:
        return float(np.sqrt(np.sum(psi ** 2)) / n)
    sums = pd.Series(psi).groupby(np.asarray(cluster)).sum().to_numpy()
    G = len(sums)
    adj = G / (G - 1) if G > 1 else 1.0
    return float(np.sqrt(adj * np.sum(sums ** 2)) / n)


# --------------------------------------------------------------------------- matching
_TIE_TOL = 1e-10  # scores closer than this are ties (robust to last-digit noise in the logit fit)


def _neighbour_ranges(q, ps, m, self_pos=None, radius=None):
    """Nearest neighbours of query scores ``q`` in the sorted pool scores ``ps``.

    Returns (a, b, nearest): pool positions [a, b) hold the ``m`` nearest neighbours *and
    every unit tied with the m-th* (Abadie & Imbens 2006, J_M(i); Stata ``teffects
    nnmatch``), so the result does not depend on row order; ``nearest`` is the distance to
    the closest neighbour. ``self_pos``: the query's own position in the pool (same-arm
    matching; the unit itself is inside [a, b) and must be discounted by the caller).
    ``radius``: a caliper; neighbours farther than it are not used."""
    L = len(ps)
    if self_pos is None:
        pos = np.searchsorted(ps, q)
        lo, hi = pos - 1, pos
    else:
        lo, hi = self_pos - 1, self_pos + 1
    dm = np.zeros(len(q))
    nearest = None
    for _ in range(m):
        dl = np.where(lo >= 0, q - ps[np.clip(lo, 0, L - 1)], np.inf)
        dh = np.where(hi < L, ps[np.clip(hi, 0, L - 1)] - q, np.inf)
        take_lo = dl <= dh
        dm = np.where(take_lo, dl, dh)
        if nearest is None:
            nearest = dm.copy()
        lo = np.where(take_lo, lo - 1, lo)
        hi = np.where(take_lo, hi, hi + 1)
    if radius is not None:
        dm = np.minimum(dm, radius)
    a = np.searchsorted(ps, q - dm - _TIE_TOL, side="left")
    b = np.searchsorted(ps, q + dm + _TIE_TOL, side="right")
    return a, b, nearest


@dataclass
class _Matched:
    """One direction of matching (sources matched to the opposite arm).

    src: source unit indices; ok: source has at least one match; order: pool unit indices
    in score order (grouped by exact-matching cell); a, b: each source's matches are
    order[a:b], each with weight 1 / (b - a)."""

    src: np.ndarray
    ok: np.ndarray
    order: np.ndarray
    a: np.ndarray
    b: np.ndarray

    def mean_of(self, v):
        """Average of v over each source's matches (NaN for an unmatched source)."""
        cs = np.r_[0.0, np.cumsum(v[self.order])]
        cnt = (self.b - self.a).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.ok, (cs[self.b] - cs[self.a]) / cnt, np.nan)

    def usage(self, n, power=1):
        """K_M(j) = sum over sources i using j of 1/#J(i) (power=2: K'_M, squared weights)."""
        w = np.where(self.ok, 1.0 / np.maximum(self.b - self.a, 1), 0.0) ** power
        diff = np.zeros(len(self.order) + 1)
        np.add.at(diff, self.a, w)
        np.add.at(diff, self.b, -w)
        out = np.zeros(n)
        out[self.order] = np.cumsum(diff)[:-1]
        return out


def _match_direction(e, src, pool, m, caliper=None, cells=None) -> _Matched:
    """Match every unit in ``src`` to its ``m`` nearest (ties included) in ``pool`` on the
    score ``e``, within exact-matching ``cells`` (integer codes) when given."""
    if cells is None:
        cells = np.zeros(len(e), np.int64)
    order = pool[np.lexsort((e[pool], cells[pool]))]
    pc, ps = cells[order], e[order]
    a = np.zeros(len(src), np.int64)
    b = np.zeros(len(src), np.int64)
    ok = np.zeros(len(src), bool)
    bounds = np.searchsorted(pc, np.unique(cells[src]), side="left"), np.searchsorted(pc, np.unique(cells[src]), side="right")
    for cell, lo_c, hi_c in zip(np.unique(cells[src]), *bounds):
        which = np.flatnonzero(cells[src] == cell)
        if hi_c == lo_c:
            continue  # no opposite-arm unit in this exact cell
        aa, bb, nearest = _neighbour_ranges(e[src[which]], ps[lo_c:hi_c], m, radius=caliper)
        a[which], b[which] = aa + lo_c, bb + lo_c
        ok[which] = (bb > aa) & (nearest <= (np.inf if caliper is None else caliper))
    return _Matched(src, ok, order, a, b)


def _local_sums(e, query, pool, values, neighbours):
    """For each unit in ``query``: the sum of ``values`` (n x q) over its ``neighbours``
    nearest units of ``pool`` on the score (ties included; a query unit that is itself in
    the pool is excluded from its own set) and the number of those units."""
    order = pool[np.argsort(e[pool], kind="stable")]
    ps = e[order]
    rank = np.full(len(e), -1)
    rank[order] = np.arange(len(order))
    qpos = rank[query]
    inside = qpos >= 0
    cs = np.vstack([np.zeros(values.shape[1]), np.cumsum(values[order], axis=0)])
    sums = np.zeros((len(query), values.shape[1]))
    count = np.zeros(len(query))
    for mask, self_pos in ((inside, qpos[inside]), (~inside, None)):
        if not mask.any():
            continue
        avail = len(order) - (1 if self_pos is not None else 0)
        if avail < 1:
            continue
        a, b, _ = _neighbour_ranges(e[query[mask]], ps, min(neighbours, avail), self_pos=self_pos)
        s = cs[b] - cs[a]
        c = (b - a).astype(float)
        if self_pos is not None:
            s = s - values[query[mask]]
            c = c - 1
        sums[mask], count[mask] = s, c
    return sums, count


def _wls(y, X, w):
    """Weighted least squares coefficients (minimum-norm if rank deficient)."""
    sw = np.sqrt(w)
    coef, *_ = np.linalg.lstsq(X * sw[:, None], y * sw, rcond=None)
    return coef


@dataclass
class _MatchFit:
    effect: float
    keep: np.ndarray  # units in the estimation (unmatched ones dropped)
    y0hat: np.ndarray
    y1hat: np.ndarray
    K: np.ndarray  # times used as a match, 1/#J(i)-weighted
    K2: np.ndarray  # sum of squared weights (K'_M)
    to_c: _Matched
    to_t: _Matched


def _match(e, d, y, estimand, n_neighbors=1, caliper=None, cells=None, bias_X=None) -> _MatchFit:
    """Propensity-score nearest-neighbour matching with replacement (Abadie & Imbens 2006):
    each unit is matched to its ``n_neighbors`` nearest units of the other arm on the
    score, *all units tied with the last of them included with equal weight*; within
    exact-matching ``cells``; ``caliper`` drops matches farther than it on the score and
    units left without any match. ``bias_X``: regressors for the Abadie & Imbens (2011)
    bias correction (linear regression of the outcome on them in the matched arm,
    weighted by how often each unit is used as a match)."""
    n = len(e)
    idx_t, idx_c = np.flatnonzero(d == 1), np.flatnonzero(d == 0)
    to_c = _match_direction(e, idx_t, idx_c, n_neighbors, caliper, cells)
    to_t = _match_direction(e, idx_c, idx_t, n_neighbors, caliper, cells)
    keep = np.ones(n, bool)
    keep[idx_t[~to_c.ok]] = False
    if estimand == "ATE":
        keep[idx_c[~to_t.ok]] = False
    K_c, K2_c = to_c.usage(n), to_c.usage(n, 2)
    K_t, K2_t = to_t.usage(n), to_t.usage(n, 2)
    y = y.astype(float)
    mu0 = mu1 = np.zeros(n)
    if bias_X is not None:
        used_c, used_t = idx_c[K_c[idx_c] > 0], idx_t[K_t[idx_t] > 0]
        mu0 = bias_X @ _wls(y[used_c], bias_X[used_c], K_c[used_c])
        mu1 = bias_X @ _wls(y[used_t], bias_X[used_t], K_t[used_t])
    y0hat, y1hat = y.copy(), y.copy()
    y0hat[idx_t] = mu0[idx_t] + to_c.mean_of(y - mu0)
    y1hat[idx_c] = mu1[idx_c] + to_t.mean_of(y - mu1)
    if estimand == "ATT":
        sel = keep & (d == 1)
        effect = float(np.mean(y[sel] - y0hat[sel]))
        K, K2 = K_c, K2_c
    else:
        effect = float(np.mean((y1hat - y0hat)[keep]))
        K, K2 = K_c + K_t, K2_c + K2_t
    return _MatchFit(effect, keep, y0hat, y1hat, K, K2, to_c, to_t)


def _matching_variance(fit: _MatchFit, e, d, y, estimand, neighbours=2) -> float:
    """Abadie & Imbens (2006, Thm 7; Abadie, Drukker, Herr & Imbens 2004 for M > 1 and
    ties) variance of the population ATT / ATE. The conditional variance sigma^2(X_i) is
    estimated from the ``neighbours`` nearest units of the same arm (ties included):
    sigma2_i = J/(J+1) (Y_i - mean of their Y)^2.

    ATT: [sum_treated (Y_i - Y0hat_i - tau)^2 + sum_controls (K_i^2 - K'_i) sigma2_i] / N1^2
    ATE: [sum_i (Y1hat_i - Y0hat_i - tau)^2 + sum_i (K_i^2 + 2 K_i - K'_i) sigma2_i] / N^2
    with K_i = sum_j 1[i in J(j)] / #J(j) and K'_i the same with squared weights."""
    keep = fit.keep
    units = np.flatnonzero(keep)
    sigma2 = np.zeros(len(y))
    for arm in (0, 1):  # neighbours from the unit's own arm
        arm_units = units[d[units] == arm]
        if len(arm_units) < 2:
            continue
        s, c = _local_sums(e, arm_units, arm_units, y.astype(float)[:, None], neighbours)
        sigma2[arm_units] = c / (c + 1) * (y[arm_units] - s[:, 0] / c) ** 2
    tau = fit.effect
    K, K2 = fit.K, fit.K2
    if estimand == "ATT":
        t = keep & (d == 1)
        c = keep & (d == 0)
        n1 = t.sum()
        v = (np.sum((y[t] - fit.y0hat[t] - tau) ** 2) + np.sum((K[c] ** 2 - K2[c]) * sigma2[c])) / n1 ** 2
    else:
        nk = keep.sum()
        v = (np.sum(((fit.y1hat - fit.y0hat)[keep] - tau) ** 2)
             + np.sum((K[keep] ** 2 + 2 * K[keep] - K2[keep]) * sigma2[keep])) / nk ** 2
    return float(v)


def _ps_estimation_adjustment(fit: _MatchFit, e, d, y, Xp, estimand, neighbours=2) -> float:
    """Abadie & Imbens (2016, Econometrica 84(2), Thms 1-2) correction for matching on an
    *estimated* logit propensity score: the amount to subtract from the Abadie–Imbens
    (2006) variance. With f = e(1-e), I^{-1} = (sum_i f_i X_i X_i')^{-1} the covariance of
    the logit coefficients, and cov_w(X, Y | e_i) estimated from the ``neighbours``
    nearest units of arm w:

    ATE: c' I^{-1} c,  c = (1/N) sum_i f_i [cov_1(X,Y|e_i)/e_i + cov_0(X,Y|e_i)/(1-e_i)]
    ATT: c_t' I^{-1} c_t - g' I^{-1} g,
         c_t = (1/N1) sum_i f_i [cov_1(X,Y|e_i) + e_i/(1-e_i) cov_0(X,Y|e_i)],
         g = (1/N1) sum_i f_i X_i (Y1hat_i - Y0hat_i - tau)   (all units, both arms imputed).
    For the ATE the correction is never negative (estimating the score helps); for the
    ATT it can go either way."""
    n, k = Xp.shape
    f = e * (1 - e)
    info = (Xp * f[:, None]).T @ Xp
    V = np.linalg.pinv(info)
    yv = y.astype(float)
    vals = np.column_stack([Xp, yv, Xp * yv[:, None]])
    everyone = np.arange(n)
    cov = {}
    for arm in (0, 1):
        pool = np.flatnonzero(d == arm)
        s, c = _local_sums(e, everyone, pool, vals, neighbours)
        sx, sy, sxy = s[:, :k], s[:, k:k + 1], s[:, k + 1:]
        cc = c[:, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            cv = np.where(cc > 1, (sxy - sx * sy / cc) / (cc - 1), 0.0)
        cov[arm] = cv
    if estimand == "ATE":
        cvec = (f[:, None] * (cov[1] / e[:, None] + cov[0] / (1 - e)[:, None])).sum(0) / n
        return float(cvec @ V @ cvec)
    n1 = d.sum()
    ct = (f[:, None] * (cov[1] + (e / (1 - e))[:, None] * cov[0])).sum(0) / n1
    g = (f * (fit.y1hat - fit.y0hat - fit.effect)) @ Xp / n1
    return float(ct @ V @ ct - g @ V @ g)


# --------------------------------------------------------------------------- sensitivity
def e_value(rr: float) -> float:
    """E-value of a risk ratio (VanderWeele & Ding 2017, Ann Intern Med 167:268): the
    minimum strength of association, on the risk-ratio scale, that an unmeasured
    confounder would need with both the treatment and the outcome (conditional on the
    measured covariates) to fully explain away the observed risk ratio:
    E = RR + sqrt(RR (RR - 1)) for RR >= 1, and the same of 1/RR for RR < 1.
    For a confidence limit pass the limit closest to 1 (E = 1 if the interval holds 1)."""
    rr = float(rr)
    if not np.isfinite(rr) or rr <= 0:
        return float("nan")
    if rr < 1:
        rr = 1 / rr
    return float(rr + np.sqrt(rr * (rr - 1)))


def e_values_for_difference(treated_mean: float, effect: float, ci_low: float, ci_high: float) -> tuple[float, float]:
    """E-values of an ATT on a 0/1 outcome given as a difference in probabilities. The
    risk ratio among the treated is RR = p1 / (p1 - ATT), p1 the treated units' mean
    outcome and p1 - ATT their estimated mean without treatment; the interval limits map
    through the same function (p1 held fixed). Returns (E-value of the estimate, E-value
    of the confidence limit closest to no effect; 1 when the interval includes 0)."""
    p1 = float(treated_mean)

    def rr(att):
        p0 = p1 - att
        return p1 / p0 if p0 > 0 and p1 > 0 else float("nan")

    point = e_value(rr(effect))
    if ci_low <= 0 <= ci_high:
        return point, 1.0
    nearer = ci_low if effect > 0 else ci_high
    return point, e_value(rr(nearer))


# --------------------------------------------------------------------------- trimming
def crump_threshold(pscore) -> float:
    """Crump, Hotz, Imbens & Mitnik (2009, Biometrika 96(1):187) optimal trimming
    threshold alpha: keeping units with alpha <= e(X) <= 1 - alpha minimises the
    asymptotic variance bound of the (trimmed) average effect under homoskedasticity.
    With g = 1 / (e (1 - e)): alpha = 0 if max g <= 2 mean g; otherwise
    alpha = 1/2 - sqrt(1/4 - 1/gamma), where gamma solves gamma = 2 E[g | g <= gamma].
    The rule is derived for the ATE; for an ATT it is a conservative choice (it also
    trims controls that are very unlike the treated)."""
    e = np.asarray(pscore, float)
    g = 1.0 / (e * (1 - e))
    if g.max() <= 2 * g.mean():
        return 0.0
    gs = np.sort(g)
    running_mean = np.cumsum(gs) / np.arange(1, len(gs) + 1)
    # h(k) = gs[k] - 2 * mean(gs[:k+1]) is negative at k = 0 and positive at the top
    k = int(np.argmax(gs >= 2 * running_mean))
    gamma = 2 * running_mean[max(k - 1, 0)]
    return float(0.5 - np.sqrt(max(0.25 - 1.0 / gamma, 0.0)))


# --------------------------------------------------------------------------- public
def estimate_effect(
    df: pd.DataFrame,
    treatment: str,
    outcome: str,
    covariates: Sequence[str],
    method: str = "aipw",
    estimand: str = "ATT",
    trim: tuple[float, float] | str | None = (0.01, 0.99),
    se: str = "influence",
    n_boot: int = 500,
    seed: int | None = 0,
    cluster: str | None = None,
    outcome_model: str = "auto",
    alpha: float = 0.05,
    n_neighbors: int = 1,
    caliper: float | None = None,
    exact: Sequence[str] | None = None,
    bias_correction: bool = False,
    ps_adjustment: bool = True,
    variance_neighbors: int = 2,
) -> EffectResult:
    """Effect of ``treatment`` (0/1) on ``outcome`` adjusting for ``covariates``.

    Parameters
    ----------
    df : plain pandas DataFrame, one row per unit.
    treatment : 0/1 (or bool) column. outcome : numeric column (0/1 -> binary outcome).
    covariates : column names; bools become 0/1, text/category columns become dummies.
    method : "aipw" (doubly robust, default), "ipw" (normalised weights), "ols"
        (regression adjustment: outcome model by arm, averaged over the target
        population), "matching" (nearest neighbours on the propensity score, with
        replacement, ties averaged).
    estimand : "ATT" (effect on the treated, default), "ATE", or "ATO" (ipw only: the
        effect in the overlap population with overlap weights, treated 1 - e and controls
        e; Li, Morgan & Zaslavsky 2018, JASA 113:390 — the logit score balances every
        covariate of the score model exactly).
    trim : (lo, hi) drops units with propensity score outside [lo, hi]; "crump" uses the
        Crump et al. (2009) optimal rule [alpha, 1 - alpha] (:func:`crump_threshold`);
        None keeps all. Trimming drops *treated* units too: their number is in
        ``.overlap.n_trimmed_treated`` and in every summary, and the estimand is then the
        effect on the trimmed population.
    se : "influence" (sandwich / influence function; Abadie–Imbens for matching) or
        "bootstrap" (``n_boot`` row or cluster resamples, ``seed``).
    cluster : optional column; SEs are clustered on it.
    outcome_model : "auto" (logit for a 0/1 outcome, OLS otherwise) or "linear".

    Matching options (``method="matching"``):
    n_neighbors : M, the number of matches per unit; every unit tied with the M-th is
        also used, all with equal weight (Abadie & Imbens 2006; Stata ``teffects``), so the
        estimate does not depend on row order.
    caliper : maximum |difference in propensity score| for a match; units left without
        any match are dropped (counted in ``.n_unmatched_treated`` / ``_control``).
    exact : columns on which matches must agree exactly (e.g. province, cohort).
    bias_correction : Abadie & Imbens (2011, JBES 29:1) bias-corrected matching: each
        imputed outcome is adjusted by mu(X_i) - mu(X_j), mu a linear regression of the
        outcome on the covariates in the matched arm, weighted by match use.
    ps_adjustment : apply the Abadie & Imbens (2016, Econometrica 84:781) correction for
        the estimation of the propensity score to the analytic SE (plain matching on the
        score, i.e. no caliper, exact cells or bias correction; otherwise the score is
        treated as known and ``se_method`` says so).
    variance_neighbors : same-arm neighbours used for the conditional variances (Stata's
        default 2).

    When 1-NN fails the balance target (|SMD| < 0.1): matching one control per treated
    unit on the score balances covariates only on average over many matches, and reuses
    the few controls that resemble the treated. When the two groups differ a lot and the
    comparable controls are few (LaLonde NSW treated vs CPS controls,
    tests/test_effects.py), 1-NN leaves max |SMD| = 0.21 (nodegree) after matching and 5-NN
    0.19, while IPW and AIPW reach 0.09. Remedies: more neighbours, a caliper, exact
    matching on the worst covariate, bias correction (which removes the remaining
    imbalance's effect by regression), or a weighting estimator. The balance table and
    ``str(result)`` always say whether the target is met.

    Returns an :class:`EffectResult`. Raises :class:`povdyn.errors.EstimationError` for a
    treatment that is not 0/1, missing values, constant or collinear covariates, perfect
    separation in the propensity model, or no overlap.
    """
    method, estimand = method.lower(), estimand.upper()
    if method not in METHODS:
        raise EstimationError(f"method {method!r} unknown; use one of {METHODS}")
    if estimand not in ESTIMANDS:
        raise EstimationError(f"estimand {estimand!r} unknown; use one of {ESTIMANDS}")
    if estimand == "ATO" and method != "ipw":
        raise EstimationError("estimand 'ATO' (overlap weights) is available with method='ipw'")
    if se not in ("influence", "bootstrap"):
        raise EstimationError(f"se {se!r} unknown; use 'influence' or 'bootstrap'")
    if int(n_neighbors) < 1:
        raise EstimationError("n_neighbors must be at least 1")
    covariates = list(covariates)
    exact = list(exact or [])
    cols = list(dict.fromkeys([treatment, outcome, *covariates, *exact] + ([cluster] if cluster else [])))
    _check_inputs(df, treatment, outcome, covariates + [c for c in exact if c not in covariates])
    data = df[cols].reset_index(drop=True)
    d_all = data[treatment].astype(int).to_numpy()
    y_all = data[outcome].astype(float).to_numpy()
    X_all = _design(data, covariates)
    Xs_all = _standardise(X_all)
    binary = bool(np.isin(y_all, [0.0, 1.0]).all())
    if outcome_model not in ("auto", "linear"):
        raise EstimationError("outcome_model must be 'auto' or 'linear'")
    logit_outcome = binary and outcome_model == "auto"
    outcome_desc = "logit" if logit_outcome else ("linear probability" if binary else "OLS")
    cells_all = (data[exact].astype(str).agg("\x1f".join, axis=1).factorize()[0] if exact else None)

    # propensity on the full sample -> overlap diagnostics and trimming
    beta = _fit_logit(d_all, Xs_all, "propensity score model")
    e_all = _expit(Xs_all @ beta)
    if e_all[d_all == 1].min() > e_all[d_all == 0].max() or e_all[d_all == 0].min() > e_all[d_all == 1].max():
        raise EstimationError(
            "perfect separation: the propensity scores of treated and control units do not "
            "overlap at all; the groups are not comparable on these covariates")
    if isinstance(trim, str):
        if trim != "crump":
            raise EstimationError("trim must be (lo, hi), 'crump' or None")
        a_c = crump_threshold(e_all)
        trim_bounds = (a_c, 1 - a_c)
        rule = (f"Crump et al. (2009) optimal trimming: drop units with propensity score outside "
                f"[{a_c:.3f}, {1 - a_c:.3f}] (both groups)")
    elif trim is not None:
        trim_bounds = tuple(trim)
        rule = f"drop units with propensity score outside [{trim_bounds[0]:g}, {trim_bounds[1]:g}] (both groups)"
    else:
        trim_bounds, rule = None, "no trimming"
    if trim_bounds is not None:
        keep = (e_all >= trim_bounds[0]) & (e_all <= trim_bounds[1])
    else:
        keep = np.ones(len(e_all), bool)
    overlap = Overlap(
        scores=pd.DataFrame({"treated": d_all, "pscore": e_all, "trimmed": ~keep}),
        rule=rule,
        n_trimmed_treated=int(np.sum(~keep & (d_all == 1))),
        n_trimmed_control=int(np.sum(~keep & (d_all == 0))),
        bounds=trim_bounds,
    )
    d, y = d_all[keep], y_all[keep]
    if d.sum() < 2 or (1 - d).sum() < 2:
        raise EstimationError(
            f"no overlap: after the trimming rule ({rule}) only {int(d.sum())} treated and "
            f"{int((1 - d).sum())} control units remain; the groups are not comparable")
    X = X_all.loc[keep].reset_index(drop=True)
    Xs = _standardise(X)
    clus = data[cluster].to_numpy()[keep] if cluster else None
    cells = cells_all[keep] if cells_all is not None else None

    naive = float(y_all[d_all == 1].mean() - y_all[d_all == 0].mean())
    naive_se = float(np.sqrt(y_all[d_all == 1].var(ddof=1) / d_all.sum()
                             + y_all[d_all == 0].var(ddof=1) / (1 - d_all).sum()))

    def point(d_, y_, Xs_, beta_=None, cells_=None):
        """effect and everything needed for SE / balance on one sample."""
        P = _Problem(y_, d_, Xs_, Xs_, logit_outcome)
        if method == "matching":
            beta_ = beta_ if beta_ is not None else _fit_logit(d_, Xs_, "propensity score model")
            e_ = _expit(Xs_ @ beta_)
            fit = _match(e_, d_, y_, estimand, n_neighbors=int(n_neighbors), caliper=caliper,
                         cells=cells_, bias_X=Xs_ if bias_correction else None)
            if (fit.keep & (d_ == 1)).sum() < 1 or (estimand == "ATE" and (fit.keep & (d_ == 0)).sum() < 1):
                raise EstimationError("matching: no unit has a match within the caliper / exact cells")
            return fit.effect, dict(P=P, e=e_, fit=fit)
        theta, lay, c, e_ = _solve(P, method, estimand, beta_)
        return float(c @ theta), dict(P=P, e=e_, theta=theta, lay=lay, c=c)

    # nothing trimmed: the full-sample propensity fit is the fit on this sample
    effect, info = point(d, y, Xs, beta if keep.all() else None, cells)
    e = info["e"]
    psi = None
    matched = info.get("fit")
    n_unmatched_t = int(((~matched.keep) & (d == 1)).sum()) if matched else 0
    n_unmatched_c = int(((~matched.keep) & (d == 0)).sum()) if matched else 0
    if se == "influence":
        if method == "matching":
            if cluster:
                raise EstimationError("matching with cluster-robust SE: use se='bootstrap'")
            var = _matching_variance(matched, e, d, y, estimand, int(variance_neighbors))
            plain = caliper is None and not exact and not bias_correction
            se_desc = f"Abadie–Imbens (2006) analytic, M = {int(n_neighbors)}, ties averaged"
            if ps_adjustment and plain:
                adj = _ps_estimation_adjustment(matched, e, d, y, Xs, estimand, int(variance_neighbors))
                if var - adj > 0:
                    var -= adj
                    se_desc += ", Abadie–Imbens (2016) correction for the estimated propensity score"
                else:
                    se_desc += (", propensity score treated as known (the Abadie–Imbens 2016 "
                                "correction exceeded the variance in this sample)")
            else:
                se_desc += ", propensity score treated as known"
            se_val = float(np.sqrt(var))
        else:
            psi = _influence(info["P"], method, estimand, info["theta"], info["lay"], info["c"])
            se_val = _se_from_influence(psi, clus)
            se_desc = "influence function (sandwich incl. propensity/outcome model estimation)" + (
                f", clustered by {cluster}" if cluster else "")
    else:
        rng = np.random.default_rng(seed)
        reps = []
        groups = None
        if clus is not None:
            groups = pd.Series(np.arange(len(d))).groupby(clus).indices
            keys = list(groups)
        for _ in range(n_boot):
            if groups is None:
                ix = rng.integers(0, len(d), len(d))
            else:
                pick = rng.integers(0, len(keys), len(keys))
                ix = np.concatenate([groups[keys[k]] for k in pick])
            try:
                Xb = _standardise(X.iloc[ix].reset_index(drop=True))
                reps.append(point(d[ix], y[ix], Xb, None, cells[ix] if cells is not None else None)[0])
            except EstimationError:
                continue  # a replicate without both groups / with separation
        if len(reps) < 0.9 * n_boot:
            raise EstimationError(f"bootstrap failed in {n_boot - len(reps)} of {n_boot} replicates")
        se_val = float(np.std(reps, ddof=1))
        se_desc = f"bootstrap ({len(reps)} replicates of {'clusters' if clus is not None else 'rows'})"

    z = stats.norm.ppf(1 - alpha / 2)
    p_value = float(2 * stats.norm.sf(abs(effect / se_val))) if se_val > 0 else float("nan")

    # balance: "before" = raw full sample (before trimming and weighting); "after" = the
    # analysed sample weighted as the estimator weights it (IPW weights for ipw/aipw/ols,
    # overlap weights for ATO, match counts for matching); both on the SD scale of "before"
    in_sample = np.ones(len(d), bool)
    if method == "matching":
        in_sample = matched.keep
        K = matched.K
        if estimand == "ATT":
            w_t, w_c = np.ones(int((in_sample & (d == 1)).sum())), K[in_sample & (d == 0)]
        else:
            w_t, w_c = 1 + K[in_sample & (d == 1)], 1 + K[in_sample & (d == 0)]
    elif estimand == "ATT":
        w_t, w_c = None, (e / (1 - e))[d == 0]
    elif estimand == "ATO":
        w_t, w_c = (1 - e)[d == 1], e[d == 0]
    else:
        w_t, w_c = (1 / e)[d == 1], (1 / (1 - e))[d == 0]
    rows = []
    for col in X.columns:
        x_before = X_all[col].to_numpy()
        mt, mc, s0 = _smd(x_before, d_all)
        scale = _pooled_sd(x_before, d_all)
        mta, mca, s1 = _smd(X[col].to_numpy()[in_sample], d[in_sample], w_t, w_c, scale=scale)
        rows.append(dict(covariate=col, mean_treated=mt, mean_control=mc, smd_before=s0,
                         mean_treated_adj=mta, mean_control_adj=mca, smd_after=s1))
    balance = pd.DataFrame(rows)

    n_t = int((in_sample & (d == 1)).sum())
    n_c = int((in_sample & (d == 0)).sum())
    return EffectResult(
        estimate=effect, se=se_val, ci_low=effect - z * se_val, ci_high=effect + z * se_val,
        p_value=p_value, n_treated=n_t, n_control=n_c,
        method=method, estimand=estimand, se_method=se_desc, outcome_model=outcome_desc,
        balance=balance, overlap=overlap, naive=naive, naive_se=naive_se, influence=psi,
        n_unmatched_treated=n_unmatched_t, n_unmatched_control=n_unmatched_c,
        treated_mean=float(y[in_sample & (d == 1)].mean()),
        matching=(dict(n_neighbors=int(n_neighbors), caliper=caliper, exact=exact,
                       bias_correction=bool(bias_correction)) if method == "matching" else None),
    )
