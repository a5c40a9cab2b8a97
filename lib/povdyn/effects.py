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
* ``se="influence"`` for matching: Abadie & Imbens (2006, Econometrica 74(1), Thm 7)
  variance for 1-nearest-neighbour matching with replacement, conditional-variance
  terms estimated by matching within the same treatment arm; it treats the propensity
  score as known (Abadie & Imbens 2016 show this is conservative for the ATE; for the
  ATT it can go either way).
* ``se="bootstrap"``: non-parametric bootstrap of whole rows (or of clusters), the
  propensity score refitted in every replicate; SE = standard deviation of the
  replicates, normal-approximation interval. (For matching the bootstrap is known to be
  inconsistent, Abadie & Imbens 2008; prefer the analytic SE there.)

Outcome models: a binary (0/1) outcome gets a logit outcome model, a continuous one
OLS; ``outcome_model="linear"`` forces a linear (probability) model.

Balance: "before" = raw means on the full sample; "after" = the trimmed sample weighted
as the estimator weights it — IPW weights (ATT: controls e/(1-e); ATE: 1/e and 1/(1-e))
for ipw and aipw, and also shown for ols (regression adjustment does not reweight),
match counts for matching. SMD denominators are the unweighted pooled SD.

Trimming: ``trim=(lo, hi)`` drops every unit (treated or control) whose estimated
propensity score lies outside [lo, hi] before estimating; the number dropped per group
is reported in ``.overlap``. The estimand is then the ATT/ATE on the trimmed sample.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .errors import EstimationError

METHODS = ("ipw", "aipw", "ols", "matching")
ESTIMANDS = ("ATT", "ATE")


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
            f"dropped {self.overlap.n_trimmed_treated} treated, {self.overlap.n_trimmed_control} control",
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


def _fit_logit(y: np.ndarray, X: np.ndarray, what: str) -> np.ndarray:
    """Maximum-likelihood logit coefficients by Newton–Raphson with step halving.

    Written out (rather than statsmodels GLM/IRLS) because it only solves p x p systems:
    the SVD-based least squares inside IRLS is ~30x slower on a loaded multi-threaded
    BLAS. tests/test_effects.py checks it against statsmodels' Logit on LaLonde data.
    Raises EstimationError on collinear columns, or on perfect / quasi-complete
    separation (coefficients diverge: no convergence, or a fitted probability of 0 or 1
    with a huge coefficient on standardised covariates)."""
    n, k = X.shape
    XtX = X.T @ X
    eig = np.linalg.eigvalsh(XtX)
    if eig.min() <= 1e-10 * max(eig.max(), 1.0):
        raise EstimationError(
            f"{what}: the covariates are collinear (the design matrix is rank deficient); drop redundant ones")
    beta = np.zeros(k)
    ybar = float(np.mean(y))
    if 0 < ybar < 1:
        beta[0] = np.log(ybar / (1 - ybar))  # column 0 is the intercept

    def loglik(b):
        eta = X @ b
        return float(np.sum(y * eta - np.logaddexp(0, eta)))

    ll = loglik(beta)
    converged = False
    for _ in range(100):
        p = _expit(X @ beta)
        W = p * (1 - p)
        H = (X * W[:, None]).T @ X
        g = X.T @ (y - p)
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


def _smd(x, d, w_t=None, w_c=None):
    """Standardised mean difference; the denominator is always the unweighted pooled SD
    sqrt((var_t + var_c)/2) so before/after are on the same scale."""
    xt, xc = x[d == 1], x[d == 0]
    pooled = np.sqrt((xt.var(ddof=1) + xc.var(ddof=1)) / 2)
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


def _match(e, d, y, estimand):
    """1-NN propensity-score matching with replacement. Returns (effect, counts K for each
    unit = times used as a match, imputed potential outcomes y0hat, y1hat)."""
    n = len(e)
    idx_t, idx_c = np.flatnonzero(d == 1), np.flatnonzero(d == 0)

    def nearest(src, pool):
        order = pool[np.argsort(e[pool], kind="stable")]
        ps = e[order]
        pos = np.searchsorted(ps, e[src])
        lo = np.clip(pos - 1, 0, len(ps) - 1)
        hi = np.clip(pos, 0, len(ps) - 1)
        pick = np.where(np.abs(e[src] - ps[lo]) <= np.abs(ps[hi] - e[src]), lo, hi)
        return order[pick]

    K = np.zeros(n)
    y0hat, y1hat = y.astype(float).copy(), y.astype(float).copy()
    m_t = nearest(idx_t, idx_c)  # control match of each treated
    np.add.at(K, m_t, 1)
    y0hat[idx_t] = y[m_t]
    if estimand == "ATE":
        m_c = nearest(idx_c, idx_t)
        np.add.at(K, m_c, 1)
        y1hat[idx_c] = y[m_c]
        effect = float(np.mean(y1hat - y0hat))
    else:
        effect = float(np.mean(y[idx_t] - y[m_t]))
    return effect, K, y0hat, y1hat, m_t


def _matching_se(e, d, y, estimand, effect, K, y0hat, y1hat):
    """Abadie–Imbens (2006) variance with M = 1; sigma^2(X_i) from the nearest neighbour
    in the same arm: sigma2_i = (y_i - y_j)^2 / 2."""
    sigma2 = np.zeros(len(y))
    for arm in (0, 1):
        idx = np.flatnonzero(d == arm)
        if len(idx) < 2:
            continue
        order = idx[np.argsort(e[idx], kind="stable")]
        ys = y[order].astype(float)
        es = e[order]
        # nearest same-arm neighbour among the two adjacent in score order
        prev_d = np.r_[np.inf, np.diff(es)]
        next_d = np.r_[np.diff(es), np.inf]
        nb = np.where(prev_d <= next_d, np.r_[ys[:1], ys[:-1]], np.r_[ys[1:], ys[-1:]])
        sigma2[order] = (ys - nb) ** 2 / 2
    if estimand == "ATT":
        n1 = d.sum()
        term1 = np.sum(d * (y - y0hat - effect) ** 2)
        term2 = np.sum((1 - d) * K * (K - 1) * sigma2)
        return float(np.sqrt((term1 + term2) / n1 ** 2))
    n = len(y)
    term1 = np.sum((y1hat - y0hat - effect) ** 2)
    term2 = np.sum((K ** 2 + K) * sigma2)
    return float(np.sqrt((term1 + term2) / n ** 2))


# --------------------------------------------------------------------------- public
def estimate_effect(
    df: pd.DataFrame,
    treatment: str,
    outcome: str,
    covariates: Sequence[str],
    method: str = "aipw",
    estimand: str = "ATT",
    trim: tuple[float, float] | None = (0.01, 0.99),
    se: str = "influence",
    n_boot: int = 500,
    seed: int | None = 0,
    cluster: str | None = None,
    outcome_model: str = "auto",
    alpha: float = 0.05,
) -> EffectResult:
    """Effect of ``treatment`` (0/1) on ``outcome`` adjusting for ``covariates``.

    Parameters
    ----------
    df : plain pandas DataFrame, one row per unit.
    treatment : 0/1 (or bool) column. outcome : numeric column (0/1 -> binary outcome).
    covariates : column names; bools become 0/1, text/category columns become dummies.
    method : "aipw" (doubly robust, default), "ipw" (normalised weights), "ols"
        (regression adjustment: outcome model by arm, averaged over the target
        population), "matching" (1-NN on the propensity score, with replacement).
    estimand : "ATT" (effect on the treated, default) or "ATE".
    trim : (lo, hi) drops units with propensity score outside [lo, hi]; None keeps all.
    se : "influence" (sandwich / influence function; Abadie–Imbens for matching) or
        "bootstrap" (``n_boot`` row or cluster resamples, ``seed``).
    cluster : optional column; SEs are clustered on it.
    outcome_model : "auto" (logit for a 0/1 outcome, OLS otherwise) or "linear".

    Returns an :class:`EffectResult`. Raises :class:`povdyn.errors.EstimationError` for a
    treatment that is not 0/1, missing values, constant or collinear covariates, perfect
    separation in the propensity model, or no overlap.
    """
    method, estimand = method.lower(), estimand.upper()
    if method not in METHODS:
        raise EstimationError(f"method {method!r} unknown; use one of {METHODS}")
    if estimand not in ESTIMANDS:
        raise EstimationError(f"estimand {estimand!r} unknown; use one of {ESTIMANDS}")
    if se not in ("influence", "bootstrap"):
        raise EstimationError(f"se {se!r} unknown; use 'influence' or 'bootstrap'")
    covariates = list(covariates)
    cols = [treatment, outcome, *covariates] + ([cluster] if cluster else [])
    _check_inputs(df, treatment, outcome, covariates)
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

    # propensity on the full sample -> overlap diagnostics and trimming
    beta = _fit_logit(d_all, Xs_all, "propensity score model")
    e_all = _expit(Xs_all @ beta)
    if e_all[d_all == 1].min() > e_all[d_all == 0].max() or e_all[d_all == 0].min() > e_all[d_all == 1].max():
        raise EstimationError(
            "perfect separation: the propensity scores of treated and control units do not "
            "overlap at all; the groups are not comparable on these covariates")
    if trim is not None:
        lo, hi = trim
        keep = (e_all >= lo) & (e_all <= hi)
        rule = f"drop units with propensity score outside [{lo:g}, {hi:g}] (both groups)"
    else:
        keep = np.ones(len(e_all), bool)
        rule = "no trimming"
    overlap = Overlap(
        scores=pd.DataFrame({"treated": d_all, "pscore": e_all, "trimmed": ~keep}),
        rule=rule,
        n_trimmed_treated=int(np.sum(~keep & (d_all == 1))),
        n_trimmed_control=int(np.sum(~keep & (d_all == 0))),
        bounds=tuple(trim) if trim is not None else None,
    )
    d, y = d_all[keep], y_all[keep]
    if d.sum() < 2 or (1 - d).sum() < 2:
        raise EstimationError(
            f"no overlap: after the trimming rule ({rule}) only {int(d.sum())} treated and "
            f"{int((1 - d).sum())} control units remain; the groups are not comparable")
    X = X_all.loc[keep].reset_index(drop=True)
    Xs = _standardise(X)
    clus = data[cluster].to_numpy()[keep] if cluster else None

    naive = float(y_all[d_all == 1].mean() - y_all[d_all == 0].mean())
    naive_se = float(np.sqrt(y_all[d_all == 1].var(ddof=1) / d_all.sum()
                             + y_all[d_all == 0].var(ddof=1) / (1 - d_all).sum()))

    def point(d_, y_, Xs_, beta_=None):
        """effect and everything needed for SE / balance on one sample."""
        P = _Problem(y_, d_, Xs_, Xs_, logit_outcome)
        if method == "matching":
            beta_ = beta_ if beta_ is not None else _fit_logit(d_, Xs_, "propensity score model")
            e_ = _expit(Xs_ @ beta_)
            eff, K, y0h, y1h, m_t = _match(e_, d_, y_, estimand)
            return eff, dict(P=P, e=e_, K=K, y0h=y0h, y1h=y1h)
        theta, lay, c, e_ = _solve(P, method, estimand, beta_)
        return float(c @ theta), dict(P=P, e=e_, theta=theta, lay=lay, c=c)

    # nothing trimmed: the full-sample propensity fit is the fit on this sample
    effect, info = point(d, y, Xs, beta if keep.all() else None)
    e = info["e"]
    psi = None
    if se == "influence":
        if method == "matching":
            if cluster:
                raise EstimationError("matching with cluster-robust SE: use se='bootstrap'")
            se_val = _matching_se(e, d, y, estimand, effect, info["K"], info["y0h"], info["y1h"])
            se_desc = "Abadie–Imbens (2006) analytic, propensity score treated as known"
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
                reps.append(point(d[ix], y[ix], Xb)[0])
            except EstimationError:
                continue  # a replicate without both groups / with separation
        if len(reps) < 0.9 * n_boot:
            raise EstimationError(f"bootstrap failed in {n_boot - len(reps)} of {n_boot} replicates")
        se_val = float(np.std(reps, ddof=1))
        se_desc = f"bootstrap ({len(reps)} replicates of {'clusters' if clus is not None else 'rows'})"

    z = stats.norm.ppf(1 - alpha / 2)
    p_value = float(2 * stats.norm.sf(abs(effect / se_val))) if se_val > 0 else float("nan")

    # balance: "before" = raw full sample (before trimming and weighting); "after" = the
    # trimmed sample weighted as the estimator weights it (IPW weights for ipw/aipw/ols,
    # match counts for matching)
    if method == "matching":
        w_t = np.ones(int(d.sum())) if estimand == "ATT" else (1 + info["K"][d == 1])
        w_c = info["K"][d == 0] if estimand == "ATT" else (1 + info["K"][d == 0])
        if estimand == "ATE":
            w_t = w_t.astype(float)
    elif estimand == "ATT":
        w_t, w_c = None, (e / (1 - e))[d == 0]
    else:
        w_t, w_c = (1 / e)[d == 1], (1 / (1 - e))[d == 0]
    rows = []
    for col in X.columns:
        x = X[col].to_numpy()
        mt, mc, s0 = _smd(X_all[col].to_numpy(), d_all)
        mta, mca, s1 = _smd(x, d, w_t, w_c)
        rows.append(dict(covariate=col, mean_treated=mt, mean_control=mc, smd_before=s0,
                         mean_treated_adj=mta, mean_control_adj=mca, smd_after=s1))
    balance = pd.DataFrame(rows)

    return EffectResult(
        estimate=effect, se=se_val, ci_low=effect - z * se_val, ci_high=effect + z * se_val,
        p_value=p_value, n_treated=int(d.sum()), n_control=int((1 - d).sum()),
        method=method, estimand=estimand, se_method=se_desc, outcome_model=outcome_desc,
        balance=balance, overlap=overlap, naive=naive, naive_se=naive_se, influence=psi,
    )
