"""Survival out of poverty and in poverty, and hazard models of duration dependence.

methods.md, "Survival and hazard":

* **Spells.** A spell *out of* poverty starts at every exit (poor at t−1, not poor at t,
  t−1 and t consecutive periods of the panel's frequency). Its duration is the number of
  periods from the exit until the household is poor again (``event=1``, a relapse), or
  until the last consecutive period in which it is still observed not poor (``event=0``,
  censored: end of panel, removal from the register, a gap in its record, a missing
  status). A household that exits twice contributes two spells; ``household_id`` is kept
  so that inference can cluster by household. A spell *in* poverty starts when a
  household is poor at t; its duration runs to the first period it is observed not poor
  (``event=1``, an exit). When the household's status at t−1 is unknown (t is the first
  period of the panel, or of its record, or follows a gap) the start is unknown: the
  spell is flagged ``left_censored`` and its duration counts from the first observed
  poor period (a residual duration). Report survival in poverty with and without them.
* **Durations** count periods since the start, so ``duration = d`` with ``event = 1``
  means the transition was seen d periods after the start, and ``duration = c`` with
  ``event = 0`` means the household was seen still in the state c periods after the
  start and not after that. An exit never followed (not observed at t+1) is a spell of
  duration 0, censored: it is kept in the spell table (it says how many exits were not
  followed) but enters no risk set.
* Removals (death, migration, merger, split) are attrition: they censor, never end a
  spell with an event.
* **Where spells are built.** By the panel's engine (DuckDB or Spark), with window
  functions over each household's rows in period order (``_runs``); only the spells come
  back to pandas, for the Kaplan–Meier, Aalen–Johansen and hazard fitters. A pandas
  DataFrame is handed to DuckDB for the same query, so every input meets one definition.
* **Kaplan–Meier** S(d) = Π_{j≤d} (1 − events_j / at_risk_j) with Greenwood variance
  Var S = S² Σ events_j / (at_risk_j (at_risk_j − events_j)). The 95% interval uses the
  log(−log) transform ("exponential Greenwood", as lifelines' KaplanMeierFitter and R's
  ``survfit(conf.type="log-log")``): θ = log(−log S), se_θ = sqrt(Σ…)/|log S|,
  interval exp(−exp(θ ± 1.96 se_θ)); it stays inside [0, 1]. Where S = 1 the interval is
  [1, 1]; where S = 0 it is undefined (NaN).
* **Clustering.** Spells of the same household are not independent (the same
  household exits, relapses and exits again). Greenwood treats spells as independent and
  so understates the uncertainty when many households contribute several spells; the
  default of ``survival_after_exit`` (``ci="auto"``) is therefore the household-clustered
  analytic interval (``ci="cluster"``: infinitesimal-jackknife variance summed within
  households, equal to Greenwood when every household has one spell) wherever a
  household has repeated spells. ``ci="cluster_bootstrap"`` resamples whole households.
* **Competing events.** Removal from the register (death, migration, merger, split)
  ends a spell out of poverty without a relapse being possible afterwards. Kaplan–Meier
  censors removals (relapse risk "if nobody left"); ``relapse_or_removal`` gives the
  Aalen–Johansen cumulative incidence of relapse and of removal, which add up with the
  share still out of poverty and in the register to 1.
* **Proportional hazards.** ``proportional_hazards_test`` is the scaled-Schoenfeld test
  of Grambsch & Therneau (R ``cox.zph`` before survival 3.0); a covariate that fails it
  can be a stratum (``hazard_model(..., strata=)``).
* **Hazard models** (``hazard_model``) work on any DataFrame with one row per spell (or
  unit): Cox proportional hazards with Efron ties (statsmodels ``PHReg``), or a
  discrete-time hazard GLM (complementary log-log or logit link) on a person-period file
  with a baseline of duration dummies, a linear term or a B-spline, standard errors
  cluster-robust by household/unit. Duration dependence read from these models mixes true
  dependence with unobserved heterogeneity (methods.md, "Traps"): do not over-read it.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import ibis
import numpy as np
import pandas as pd
from scipy import stats

from .errors import EstimationError, SchemaError
from .panel import as_list
from .periods import frequency_and_index, label

STATUSES = ("poor", "near_poor", "non_poor")
KINDS = ("relapse", "exit")
_Z95 = float(stats.norm.ppf(0.975))


# --------------------------------------------------------------------------- input


def _load(source, frequency=None, absent_means=None):
    """A Panel from povdyn.load_panel (the recorded register kind unless
    ``absent_means`` says otherwise)."""
    from .panel import load_panel

    return load_panel(source, absent_means=absent_means, frequency=frequency)


def _ever_poor(table):
    """Rows of households poor in some period: the only ones with spells."""
    return table.household_id.isin(table.filter(table.status == "poor").household_id)


def panel_frame(panel, by=None, frequency=None, absent_means=None) -> tuple[pd.DataFrame, str]:
    """The panel as a pandas DataFrame with an int ``period_index`` column, and its
    frequency ("year" or "quarter").

    Accepts a povdyn Panel (anything with ``.to_pandas()``), a pandas DataFrame with the
    canonical columns (household_id, period, status, optional removal_reason), or a path
    (read with ``povdyn.load_panel``). A DataFrame is used as given (a full panel) unless
    ``frequency`` ("year": each year's last quarterly snapshot) or
    ``absent_means="non_poor"`` (list-based register) is asked for; then it, like a path,
    goes through ``povdyn.load_panel`` (which needs its validation columns, e.g. province)."""
    by = as_list(by)
    freq = None
    if isinstance(panel, (str, os.PathLike)) or frequency is not None or absent_means is not None:
        panel = _load(panel, frequency=frequency, absent_means=absent_means)
    if not isinstance(panel, pd.DataFrame):
        if not hasattr(panel, "to_pandas"):
            raise SchemaError(
                f"survival: expected a Panel, a pandas DataFrame or a path, got {type(panel).__name__}"
            )
        freq = getattr(panel, "frequency", None)
        if hasattr(panel, "table"):  # an engine-side Panel: only the spells' households
            cols = [c for c in ("household_id", "period", "status", "removal_reason", *by)
                    if c in panel.columns]
            panel = panel.to_pandas(columns=cols, where=_ever_poor)
        else:
            panel = panel.to_pandas()
    needed = ["household_id", "period", "status", *by]
    missing = [c for c in needed if c not in panel.columns]
    if missing:
        raise SchemaError(
            f"panel has no column(s) {missing}; present: {list(panel.columns)}. "
            "Use the canonical names (household_id, period, status) or povdyn.load_panel."
        )
    frame = panel.copy()
    if "period_index" not in frame.columns or freq is None:
        freq_found, index = frequency_and_index(frame["period"])
        freq = freq or freq_found
        if "period_index" not in frame.columns:
            frame["period_index"] = index
    status = frame["status"].astype(object).where(frame["status"].notna(), None)
    bad = ~status.isin(STATUSES) & status.notna()
    if bad.any():
        rows = list(frame.index[bad][:5])
        values = sorted(map(str, pd.unique(status[bad])))[:5]
        raise SchemaError(
            f"column 'status': unknown value(s) {values} at row(s) {rows}; "
            f"allowed: {list(STATUSES)} (or empty on a removal row)"
        )
    frame["status"] = status
    dup = frame.duplicated(["household_id", "period_index"], keep=False)
    if dup.any():
        first = frame.loc[dup, ["household_id", "period"]].iloc[0]
        raise SchemaError(
            f"{int(dup.sum())} rows repeat a household-period, e.g. household "
            f"{first['household_id']!r} in {first['period']!r}; keep one row per household per period"
        )
    return frame, freq


# --------------------------------------------------------------------------- spells
def _spell_source(panel, by: list[str], frequency=None, absent_means=None):
    """(Ibis table of the rows spells are made of, its backend, frequency).

    An engine-side Panel (or a path, read by ``povdyn.load_panel``) stays in its engine:
    only the households poor in some period -- the only ones with spells -- and the
    columns spells need. A DataFrame (or anything with ``to_pandas``) is checked by
    ``panel_frame`` and handed to DuckDB as an in-memory table, so that every input goes
    through the one definition of spells, ``_runs``."""
    if isinstance(panel, (str, os.PathLike)) or frequency is not None or absent_means is not None:
        panel = _load(panel, frequency=frequency, absent_means=absent_means)
    if hasattr(panel, "table") and hasattr(panel, "con"):
        missing = [c for c in ("household_id", "period_index", "status", *by) if c not in panel.columns]
        if missing:
            raise SchemaError(f"panel has no column(s) {missing}; present: {list(panel.columns)}. "
                              "Use the canonical names (household_id, period, status) or povdyn.load_panel.")
        t = panel.table
        t = t.filter(_ever_poor(t))
        removal = t.removal_reason if "removal_reason" in t.columns else ibis.null(str)
        t = t.select("household_id", "period_index", *by, status=t.status.cast(str),
                     removal_reason=removal.cast(str))
        return t, panel.con, panel.frequency
    from .engine import connect

    frame, freq = panel_frame(panel, by)
    if "removal_reason" not in frame.columns:
        frame = frame.assign(removal_reason=None)
    keep = list(dict.fromkeys(["household_id", "period_index", "status", *by, "removal_reason"]))
    frame = frame[keep].astype({"household_id": str, "period_index": "int64"})
    for c in ("status", "removal_reason"):
        frame[c] = frame[c].astype(object).where(frame[c].notna(), None)
    t = ibis.memtable(frame)
    t = t.mutate(status=t.status.cast(str), removal_reason=t.removal_reason.cast(str))
    return t, connect("duckdb"), freq


def _runs(table, con, by: list[str], freq: str, poor=None) -> pd.DataFrame:
    """Maximal runs of consecutive observed periods of one household in the same state
    (poor vs not poor), with how each run starts and ends (module docstring), computed
    by the engine with window functions over each household's rows in period order;
    only the runs come back (``poor=True`` / ``False``: only runs in / out of poverty).

    A row *continues* a run when the household's previous row is the period just before,
    observed, and in the same state; every other observed row starts a run, and an
    unobserved row (removal, missing status) belongs to none. A run ends at its last
    row; the row after it (if any) says how: the next period observed (in the other
    state) is an event, otherwise the run is censored at the end of the panel, a
    removal, a gap, a missing status, or the household's last row (not observed)."""
    t = table
    w = ibis.window(group_by="household_id", order_by="period_index")
    t = t.mutate(_obs=t.status.notnull(), _poor=(t.status == "poor").fill_null(False))
    t = t.mutate(_prev_t=t.period_index.lag().over(w), _prev_obs=t._obs.lag().over(w),
                 _prev_poor=t._poor.lag().over(w),
                 _next_t=t.period_index.lead().over(w), _next_status=t.status.lead().over(w),
                 _next_reason=t.removal_reason.lead().over(w))
    link = ((t._prev_t == t.period_index - 1) & t._prev_obs).fill_null(False)
    continues = link & t._obs & (t._poor == t._prev_poor).fill_null(False)
    t = t.mutate(_link=link, _break=~continues)
    t = t.mutate(_next_break=t._break.lead().over(w))
    running = ibis.cumulative_window(group_by="household_id", order_by="period_index")
    t = t.mutate(_run=t._break.cast("int64").sum().over(running))
    starts = t.filter(t._obs & t._break)
    if poor is not None:
        starts = starts.filter(starts._poor == poor)
    starts = starts.select("household_id", "_run", *by, start_index=starts.period_index,
                           poor=starts._poor, start_status=starts.status, known_start=starts._link)
    ends = t.filter(t._obs & t._next_break.fill_null(True))
    ends = ends.select(_h=ends.household_id, _r=ends._run, last_index=ends.period_index,
                       _next_t=ends._next_t, _next_status=ends._next_status,
                       _next_reason=ends._next_reason)
    runs = starts.join(ends, [starts.household_id == ends._h, starts._run == ends._r])
    panel_last = con.execute(table.period_index.max())
    next_same = runs._next_t.notnull()
    next_consecutive = next_same & (runs._next_t == runs.last_index + 1)
    event = next_consecutive & runs._next_status.notnull()
    removed = next_consecutive & runs._next_reason.notnull() & ~event
    reason = ibis.cases(
        (event, ibis.null(str)),
        (~next_same & (runs.last_index == int(panel_last if pd.notna(panel_last) else 0)), "end_of_panel"),
        (~next_same, "not_observed"),
        (~next_consecutive, "gap"),
        (removed, "removed"),
        else_="missing_status")
    runs = runs.select(
        "household_id", "start_index", "last_index", "poor", "start_status", "known_start",
        event=event.cast("int64"),
        end_status=ibis.ifelse(event, runs._next_status, ibis.null(str)),
        censor_reason=reason,
        removal_reason=ibis.ifelse(removed, runs._next_reason, ibis.null(str)),
        **{c: runs[c] for c in by})
    out = con.execute(runs.order_by(["household_id", "start_index"])).reset_index(drop=True)
    for c in ("start_status", "end_status", "censor_reason", "removal_reason"):
        out[c] = out[c].astype(object).where(out[c].notna(), None)
    out["poor"] = out["poor"].astype(bool)
    out["known_start"] = out["known_start"].astype(bool)
    out["event"] = out["event"].astype("int64")
    out["duration"] = out["last_index"] - out["start_index"] + out["event"]
    labels = {int(i): label(freq, int(i)) for i in pd.unique(pd.concat([out["start_index"], out["last_index"]]))}
    out["start_period"] = out["start_index"].map(labels)
    out["last_period_in_state"] = out["last_index"].map(labels)
    return out


def _spells(panel, by, frequency, absent_means, poor_state: bool):
    """(spell table, frequency) of exit spells (``poor_state=False``) or poverty spells."""
    by = as_list(by)
    table, con, freq = _spell_source(panel, by, frequency, absent_means)
    return _spell_table(_runs(table, con, by, freq, poor=poor_state), by, poor_state), freq


def _spell_table(runs: pd.DataFrame, by: list[str], poor_state: bool) -> pd.DataFrame:
    sel = runs[runs["poor"] == poor_state]
    if not poor_state:
        sel = sel[sel["known_start"]]  # a spell out of poverty starts at an observed exit
    out = sel.assign(left_censored=~sel["known_start"].to_numpy(dtype=bool)).reset_index(drop=True)
    out["spell_number"] = out.groupby("household_id").cumcount() + 1
    cols = [
        "household_id", "spell_number", *by, "start_period", "start_status",
        "last_period_in_state", "duration", "event", "end_status", "censor_reason",
        "removal_reason", "left_censored", "start_index",
    ]
    return out[list(dict.fromkeys(cols))]


def exit_spells(panel, by=None, frequency=None, absent_means=None) -> pd.DataFrame:
    """Spells out of poverty, one row per exit (methods.md, "Survival and hazard").

    An exit at t (poor at t−1, near-poor or non-poor at t, consecutive periods) starts a
    spell. ``duration`` = periods from t until the household is poor again (``event=1``,
    a relapse; ``end_status="poor"``) or until its last consecutive period still observed
    not poor (``event=0``; ``censor_reason`` one of end_of_panel, removed (with
    ``removal_reason``), gap, missing_status, not_observed). ``start_status`` is the exit
    destination (near_poor / non_poor). Moving between near-poor and non-poor does not end
    the spell. ``by`` columns are taken at the exit period. Columns: household_id,
    spell_number, *by, start_period, start_status, last_period_in_state, duration, event,
    end_status, censor_reason, removal_reason, left_censored (always False here),
    start_index. ``frequency`` / ``absent_means``: as in ``survival_after_exit``.
    """
    return _spells(panel, by, frequency, absent_means, poor_state=False)[0]


def poverty_spells(panel, by=None, frequency=None, absent_means=None) -> pd.DataFrame:
    """Spells in poverty, one row per run of consecutive poor periods (methods.md,
    "Survival and hazard").

    A spell starts at the first poor period of a run. ``duration`` = periods until the
    household is first observed not poor (``event=1``, an exit; ``end_status`` near_poor
    or non_poor), or until its last consecutive poor period (``event=0``, censored as in
    ``exit_spells``). ``left_censored=True`` when the status one period before the start is
    unknown (first period of the panel, first row of the household, or after a gap): the
    start is not observed and the duration is a residual one. Same columns as
    ``exit_spells``.
    """
    return _spells(panel, by, frequency, absent_means, poor_state=True)[0]


# --------------------------------------------------------------------------- Kaplan–Meier
def _km_counts(times_code: np.ndarray, event: np.ndarray, weights: np.ndarray, m: int):
    """At-risk, events and censored at each of m ordered distinct times (weighted)."""
    events = np.bincount(times_code, weights=weights * event, minlength=m)
    leaving = np.bincount(times_code, weights=weights, minlength=m)
    at_risk = leaving[::-1].cumsum()[::-1]
    return at_risk, events, leaving - events


def _km_survival(at_risk, events):
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(at_risk > 0, 1.0 - events / np.where(at_risk > 0, at_risk, 1.0), 1.0)
    return np.cumprod(factor)


def _km_cluster_variance(code, event, at_risk, events, cluster) -> np.ndarray:
    """Cluster-robust variance of log S(t) at each distinct time: the influence of spell i
    on log S(t) is -sum_{t_j <= t} (dN_i(t_j) - Y_i(t_j) d_j / n_j) / (n_j - d_j) (dN: its
    event at t_j, Y: at risk at t_j); the influences are summed within clusters
    (households) and Var log S(t) = sum_c (sum_{i in c} IF_i(t))^2. With one spell per
    cluster the diagonal terms are Greenwood's d_j / (n_j (n_j - d_j)).

    Computed per cluster with cumulative sums: a spell with time index k contributes
    -c_j Y-terms for every j <= k and its event term at k, where
    c_j = 1 / (n_j - d_j) and h_j = d_j / n_j."""
    m = len(at_risk)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(at_risk > events, 1.0 / (at_risk - events), 0.0)
        h = np.where(at_risk > 0, events / np.where(at_risk > 0, at_risk, 1), 0.0)
    # influence of one spell at its own time index k on log S(t) for t >= ... is a
    # step function of t; summed within a cluster it is sum over the cluster's spells.
    # Build, per cluster, the increments at each time index and cumulate over time.
    groups, gcode = np.unique(cluster, return_inverse=True)
    G = len(groups)
    # increments: event term -c_k at t_k (if event); at-risk terms +c_j h_j for j <= k
    inc = np.zeros((G, m))
    np.add.at(inc, (gcode, code), -event * c[code])
    # number of the cluster's spells at risk at j = those with code >= j (suffix count)
    count = np.zeros((G, m))
    np.add.at(count, (gcode, code), 1.0)
    at_risk_g = count[:, ::-1].cumsum(axis=1)[:, ::-1]
    inc += at_risk_g * (c * h)[None, :]
    infl = np.cumsum(inc, axis=1)  # G x m: cluster influence on log S(t)
    return (infl ** 2).sum(axis=0)


def kaplan_meier(duration, event, ci="greenwood", cluster=None, n_boot=200, seed=0) -> pd.DataFrame:
    """Kaplan–Meier survival with Greenwood variance and a log(−log) 95% interval
    (methods.md, "Survival and hazard"; formulas in the module docstring).

    One row per distinct observed time (event or censoring, including 0): time, at_risk
    (spells with duration ≥ time), events, censored, survival, se, ci_low, ci_high.
    ``ci="cluster_bootstrap"`` resamples the ``cluster`` labels (e.g. household ids) with
    replacement ``n_boot`` times: percentile interval and bootstrap SD as ``se``.
    ``ci="cluster"``: analytic household-clustered variance (:func:`_km_cluster_variance`,
    the infinitesimal jackknife summed within clusters, as R ``survfit(..., id=,
    robust=TRUE)``), same log(−log) interval as Greenwood.
    """
    d = np.asarray(duration, dtype=float)
    e = np.asarray(event, dtype=float)
    if len(d) == 0:
        return pd.DataFrame(columns=["time", "at_risk", "events", "censored", "survival", "se", "ci_low", "ci_high"])
    if np.isnan(d).any() or (d < 0).any():
        raise EstimationError("duration: missing or negative values; durations must be ≥ 0")
    if not np.isin(e, (0.0, 1.0)).all():
        raise EstimationError("event: values must be 0 (censored) or 1 (event)")
    times, code = np.unique(d, return_inverse=True)
    if np.all(times == np.round(times)):
        times = times.astype("int64")  # whole periods
    m = len(times)
    at_risk, events, censored = _km_counts(code, e, np.ones_like(d), m)
    surv = _km_survival(at_risk, events)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(at_risk > events, events / (at_risk * (at_risk - events)), np.where(events > 0, np.inf, 0.0))
        greenwood = np.cumsum(term)
        se = surv * np.sqrt(greenwood)
        log_s = np.log(surv)
        theta = np.log(-log_s)
        se_theta = np.sqrt(greenwood) / np.abs(log_s)
        ci_low = np.exp(-np.exp(theta + _Z95 * se_theta))
        ci_high = np.exp(-np.exp(theta - _Z95 * se_theta))
    one = surv >= 1.0
    ci_low[one], ci_high[one], se[one] = 1.0, 1.0, 0.0
    zero = surv <= 0.0
    ci_low[zero], ci_high[zero], se[zero] = np.nan, np.nan, np.nan

    if ci == "cluster":
        if cluster is None:
            raise EstimationError("ci='cluster' needs cluster labels (e.g. household_id)")
        var = _km_cluster_variance(code, e, at_risk, events, np.asarray(cluster).astype(str))
        with np.errstate(divide="ignore", invalid="ignore"):
            se = surv * np.sqrt(var)
            se_theta = np.sqrt(var) / np.abs(np.log(surv))
            theta = np.log(-np.log(surv))
            ci_low = np.exp(-np.exp(theta + _Z95 * se_theta))
            ci_high = np.exp(-np.exp(theta - _Z95 * se_theta))
        ci_low[one], ci_high[one], se[one] = 1.0, 1.0, 0.0
        ci_low[zero], ci_high[zero], se[zero] = np.nan, np.nan, np.nan
    elif ci == "cluster_bootstrap":
        if cluster is None:
            raise EstimationError("ci='cluster_bootstrap' needs cluster labels (e.g. household_id)")
        groups, gcode = np.unique(np.asarray(cluster).astype(str), return_inverse=True)
        rng = np.random.default_rng(seed)
        reps = np.empty((n_boot, m))
        for b in range(n_boot):
            draws = np.bincount(rng.integers(0, len(groups), len(groups)), minlength=len(groups))
            a, ev, _ = _km_counts(code, e, draws[gcode].astype(float), m)
            reps[b] = _km_survival(a, ev)
        se = reps.std(axis=0, ddof=1)
        ci_low, ci_high = np.quantile(reps, 0.025, axis=0), np.quantile(reps, 0.975, axis=0)
    elif ci != "greenwood":
        raise EstimationError(f"ci={ci!r}: use 'greenwood', 'cluster' or 'cluster_bootstrap'")

    return pd.DataFrame(
        {
            "time": times,
            "at_risk": at_risk.astype("int64"),
            "events": events.astype("int64"),
            "censored": censored.astype("int64"),
            "survival": surv,
            "se": se,
            "ci_low": ci_low,
            "ci_high": ci_high,
        }
    )


def survival_after_exit(
    panel,
    by=None,
    kind: str = "relapse",
    include_left_censored: bool = True,
    ci: str = "auto",
    n_boot: int = 200,
    seed: int = 0,
    frequency: str | None = None,
    absent_means: str | None = None,
) -> pd.DataFrame:
    """Kaplan–Meier survival after exit from poverty, or in poverty (methods.md,
    "Survival and hazard").

    ``kind="relapse"`` (default): every exit spell (``exit_spells``) counts; survival(d) is
    the share of exits still not poor d periods after the exit. ``kind="exit"``: spells in
    poverty (``poverty_spells``); survival(d) is the share still poor d periods after
    entering. Left-censored poverty spells (already poor when first observed: unknown
    start) are included by default; report the table with and without them
    (``include_left_censored=False``). ``by``: grouping columns, taken at the spell start.

    Returns a DataFrame [*by, kind, time, at_risk, events, censored, survival, se,
    ci_low, ci_high]; ``time`` is in periods of the panel's frequency (also in
    ``.attrs["time_unit"]``). Intervals: Greenwood variance, log(−log) transform (as
    lifelines / R ``conf.type="log-log"``).

    Intervals: a household that exits twice contributes two spells, which are not
    independent. ``ci="auto"`` (default) uses the household-clustered analytic interval
    (``ci="cluster"``) when some household has more than one spell, Greenwood
    otherwise (methods.md: cluster by household); ``out.attrs["ci"]`` says which.
    ``ci="cluster_bootstrap"`` resamples households (``n_boot`` replicates, percentile
    interval, seed ``seed``).
    """
    if kind not in KINDS:
        raise EstimationError(f"kind={kind!r}: use 'relapse' (time to poverty after exit) or 'exit' (time to exit after entering)")
    by = as_list(by)
    settings = (kind, include_left_censored, ci, n_boot, seed)
    if not by and frequency is None and absent_means is None and hasattr(panel, "remembered"):
        # a report page asks once; a report run may have handed the page its province's
        # table, computed with every other province's (survival_after_exit_by_region)
        return panel.remembered(survival_key(*settings), lambda: _survival_table(
            *_spells(panel, [], None, None, poor_state=(kind == "exit")), [], *settings))
    spells, freq = _spells(panel, by, frequency, absent_means, poor_state=(kind == "exit"))
    return _survival_table(spells, freq, by, *settings)


def survival_key(kind: str = "relapse", include_left_censored: bool = True, ci: str = "auto",
                 n_boot: int = 200, seed: int = 0) -> tuple:
    """The key a Panel remembers ``survival_after_exit(panel, ...)`` (no grouping) under."""
    return ("survival_after_exit", kind, bool(include_left_censored), str(ci), int(n_boot), int(seed))


def survival_after_exit_by_region(panel, column: str, kind: str = "relapse", include_left_censored: bool = True,
                                  ci: str = "auto", n_boot: int = 200, seed: int = 0) -> pd.DataFrame:
    """``survival_after_exit(panel.region(value), ...)`` for every value of ``column``,
    from one pass over the whole register (issue 15 §4: a report run computes it once
    for every province page): the spells of all households, grouped by ``column`` at
    the spell start, and each value's Kaplan-Meier table as its own page computes it --
    with that value's interval choice (``ci="auto"`` looks at its own households) and
    attrs, which are kept in ``out.attrs["regions"][value]``. Equal to the pages' own
    tables only when no household is recorded in two values of ``column`` (or in one
    and none): ``povdyn.pagedata.run_wide_tables`` checks that first. Returns
    [column, kind, time, at_risk, ...] (rows of values without a spell are absent)."""
    settings = (kind, include_left_censored, ci, n_boot, seed)
    spells, freq = _spells(panel, [column], None, None, poor_state=(kind == "exit"))
    parts, attrs = [], {}
    for value, own in spells.groupby(column, sort=True):
        table = _survival_table(own.drop(columns=column).reset_index(drop=True), freq, [], *settings)
        attrs[value] = dict(table.attrs)
        parts.append(table.assign(**{column: value}))
    cols = [column, "kind", "time", "at_risk", "events", "censored", "survival", "se", "ci_low", "ci_high"]
    out = pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)
    out.attrs["regions"] = attrs
    return out


def _survival_table(spells: pd.DataFrame, freq: str, by: list, kind: str, include_left_censored: bool, ci: str,
                    n_boot: int, seed: int) -> pd.DataFrame:
    """The Kaplan-Meier tables of ``survival_after_exit`` from its spells."""
    if not include_left_censored:
        spells = spells[~spells["left_censored"]]
    if ci == "auto":
        ci = "cluster" if spells["household_id"].duplicated().any() else "greenwood"
    parts = []
    groups = spells.groupby(by, dropna=False, sort=True) if by else [((), spells)]
    for key, g in groups:
        table = kaplan_meier(
            g["duration"], g["event"], ci=ci, cluster=g["household_id"], n_boot=n_boot, seed=seed
        )
        key = key if isinstance(key, tuple) else (key,)
        for position, (c, v) in enumerate(zip(by, key)):
            table.insert(position, c, v)
        table.insert(len(by), "kind", kind)
        parts.append(table)
    cols = [*by, "kind", "time", "at_risk", "events", "censored", "survival", "se", "ci_low", "ci_high"]
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)
    out = out[cols]
    out.attrs["time_unit"] = freq
    out.attrs["ci"] = ci
    out.attrs["spells"] = len(spells)
    out.attrs["households"] = int(spells["household_id"].nunique())
    return out


# --------------------------------------------------------------------------- competing risks
def cumulative_incidence(duration, cause, alpha: float = 0.05) -> pd.DataFrame:
    """Aalen–Johansen cumulative incidence functions for competing events (methods.md,
    "Traps": attrition is censoring or a competing event).

    ``cause``: per spell, 0 (or None/NaN) = censored, else the label of the event that
    ended it (e.g. "relapse", "removal"). With S the Kaplan–Meier survival from *any*
    event, n_j at risk and d_kj events of cause k at time t_j:
    CIF_k(t) = sum_{t_j <= t} S(t_{j-1}) d_kj / n_j. Unlike 1 - KM with the other causes
    censored, the CIFs of all causes add up to 1 - S, so removals are not counted as
    households that would later have relapsed. Variance: the delta-method (Greenwood-type)
    formula of Collett (2015, sec. 12.2; SAS PROC LIFETEST; lifelines'
    AalenJohansenFitter), interval on the log(−log) scale.

    Returns a long DataFrame [cause, time, at_risk, events, cif, se, ci_low, ci_high]
    over every distinct time (ties handled exactly, no jitter)."""
    d = np.asarray(duration, float)
    raw = pd.Series(np.asarray(cause, dtype=object))
    censored = raw.isna() | raw.isin([0, "0", False, ""])
    labels = sorted({str(v) for v in raw[~censored]})
    if not labels:
        raise EstimationError("cause: no events (every spell is censored)")
    if np.isnan(d).any() or (d < 0).any():
        raise EstimationError("duration: missing or negative values; durations must be ≥ 0")
    times, code = np.unique(d, return_inverse=True)
    if np.all(times == np.round(times)):
        times = times.astype("int64")
    m = len(times)
    any_event = (~censored).to_numpy(float)
    at_risk, d_all, _ = _km_counts(code, any_event, np.ones_like(d), m)
    surv = _km_survival(at_risk, d_all)
    lag = np.r_[1.0, surv[:-1]]
    z = stats.norm.ppf(1 - alpha / 2)
    out = []
    for k in labels:
        is_k = (raw.astype(str) == k).to_numpy() & ~censored.to_numpy()
        d_k = np.bincount(code, weights=is_k.astype(float), minlength=m)
        with np.errstate(divide="ignore", invalid="ignore"):
            jump = np.where(at_risk > 0, lag * d_k / np.where(at_risk > 0, at_risk, 1), 0.0)
        F = np.cumsum(jump)
        # variance (Collett): sum_{j<=t} (F(t)-F(t_j))^2 d_j/(n_j(n_j-d_j))
        #   + S(t_{j-1})^2 d_kj (n_j - d_kj)/n_j^3 - 2 (F(t)-F(t_j)) S(t_{j-1}) d_kj/n_j^2
        with np.errstate(divide="ignore", invalid="ignore"):
            a = np.where(at_risk > d_all, d_all / (at_risk * (at_risk - d_all)), 0.0)
            b = np.where(at_risk > 0, lag ** 2 * d_k * (at_risk - d_k) / at_risk ** 3, 0.0)
            c = np.where(at_risk > 0, lag * d_k / at_risk ** 2, 0.0)
        # expand (F_t - F_j)^2 a_j and (F_t - F_j) c_j with cumulative sums
        A0, A1, A2 = np.cumsum(a), np.cumsum(a * F), np.cumsum(a * F ** 2)
        C0, C1 = np.cumsum(c), np.cumsum(c * F)
        var = F ** 2 * A0 - 2 * F * A1 + A2 + np.cumsum(b) - 2 * (F * C0 - C1)
        var = np.maximum(var, 0.0)
        se = np.sqrt(var)
        with np.errstate(divide="ignore", invalid="ignore"):
            theta = np.log(-np.log(F))
            se_theta = se / (F * np.abs(np.log(F)))
            one, two = np.exp(-np.exp(theta + z * se_theta)), np.exp(-np.exp(theta - z * se_theta))
        lo, hi = np.fmin(one, two), np.fmax(one, two)
        lo[F <= 0], hi[F <= 0] = 0.0, 0.0
        out.append(pd.DataFrame({"cause": k, "time": times, "at_risk": at_risk.astype("int64"),
                                 "events": d_k.astype("int64"), "cif": F, "se": se, "ci_low": lo, "ci_high": hi}))
    return pd.concat(out, ignore_index=True)


def relapse_or_removal(panel, by=None, frequency=None, absent_means=None) -> pd.DataFrame:
    """Cumulative incidence after an exit from poverty of the two competing fates:
    **relapse** (poor again) and **removal** from the register (death, migration, merger,
    split), by Aalen–Johansen (:func:`cumulative_incidence`) on the exit spells
    (:func:`exit_spells`). A relapse counts at its spell duration; a removal at the
    period it is recorded (one period after the last one observed out of poverty); other
    ends (end of panel, gaps, missing status) censor. Kaplan–Meier with removals
    censored (``survival_after_exit``) answers "relapse if nobody left the register";
    this answers "what share relapsed, what share left, by d periods after exit".

    Returns [*by, cause, time, at_risk, events, cif, se, ci_low, ci_high] with
    ``attrs["time_unit"]``."""
    by = as_list(by)
    spells, freq = _spells(panel, by, frequency, absent_means, poor_state=False)
    removed = spells["censor_reason"].eq("removed").to_numpy()
    spells = spells.assign(
        _time=np.where(removed, spells["duration"] + 1, spells["duration"]),
        _cause=np.where(spells["event"].eq(1), "relapse", np.where(removed, "removal", None)))
    parts = []
    groups = spells.groupby(by, dropna=False, sort=True) if by else [((), spells)]
    for key, g in groups:
        if g["_cause"].isna().all():
            continue
        t = cumulative_incidence(g["_time"], g["_cause"])
        key = key if isinstance(key, tuple) else (key,)
        for position, (c, v) in enumerate(zip(by, key)):
            t.insert(position, c, v)
        parts.append(t)
    cols = [*by, "cause", "time", "at_risk", "events", "cif", "se", "ci_low", "ci_high"]
    out = pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)
    out.attrs["time_unit"] = freq
    return out


# --------------------------------------------------------------------------- hazard models
@dataclass
class HazardResult:
    """A fitted hazard model.

    params, bse: pandas Series indexed by covariate (baseline terms excluded);
    summary: DataFrame [coef, se, z, p, ci_low, ci_high, exp_coef, exp_ci_low, exp_ci_high]
    by covariate (exp_coef is a hazard ratio for cox and cloglog, an odds ratio for
    logit); kind; n (units = rows of the input used); events; n_person_periods (discrete
    time only); cov_type ("naive" or "cluster:<column>"); baseline (Series of baseline
    terms, discrete time only); n_clusters (clusters behind a cluster-robust SE);
    dropped_times (periods without any event, left out of a dummies baseline);
    raw (the statsmodels results object)."""

    kind: str
    params: pd.Series
    bse: pd.Series
    summary: pd.DataFrame
    n: int
    events: int
    cov_type: str
    n_person_periods: int | None = None
    baseline: pd.Series | None = None
    dropped_times: list = field(default_factory=list)
    n_clusters: int | None = None
    raw: object = None

    def __repr__(self) -> str:
        head = f"HazardResult(kind={self.kind!r}, n={self.n}, events={self.events}, cov_type={self.cov_type!r})"
        return head + "\n" + self.summary.round(4).to_string()


def _summary(params: pd.Series, bse: pd.Series) -> pd.DataFrame:
    z = params / bse
    out = pd.DataFrame(
        {
            "coef": params,
            "se": bse,
            "z": z,
            "p": 2 * stats.norm.sf(np.abs(z)),
            "ci_low": params - _Z95 * bse,
            "ci_high": params + _Z95 * bse,
        }
    )
    out["exp_coef"] = np.exp(out["coef"])
    out["exp_ci_low"] = np.exp(out["ci_low"])
    out["exp_ci_high"] = np.exp(out["ci_high"])
    return out


def _check_clusters(codes: np.ndarray, name: str) -> int:
    n_clusters = int(codes.max()) + 1
    if n_clusters < 30:
        warnings.warn(
            f"cluster={name!r} has only {n_clusters} clusters: cluster-robust standard errors "
            "are unreliable with fewer than about 30; cluster on a finer unit (e.g. household_id)",
            stacklevel=3,
        )
    return n_clusters


def _design(df: pd.DataFrame, covariates: Sequence[str]) -> pd.DataFrame:
    """Numeric design matrix: bools -> 0/1, text/categorical -> dummies (first level dropped)."""
    missing = [c for c in covariates if c not in df.columns]
    if missing:
        raise EstimationError(f"covariate(s) {missing} not in the data; columns: {list(df.columns)}")
    parts = []
    for c in covariates:
        s = df[c]
        if s.isna().any():
            raise EstimationError(
                f"covariate {c!r} has {int(s.isna().sum())} missing value(s) (e.g. row {s.index[s.isna()][0]!r}); "
                "drop or impute them first"
            )
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            parts.append(s.astype(float).rename(c))
        else:
            parts.append(pd.get_dummies(s.astype("category"), prefix=c, drop_first=True, dtype=float))
    X = pd.concat(parts, axis=1) if parts else pd.DataFrame(index=df.index)
    constant = [c for c in X.columns if X[c].nunique() < 2]
    if constant:
        raise EstimationError(f"covariate(s) {constant} take a single value: nothing to estimate; drop them")
    return X


def _check_duration_event(df, duration, event, integer=False):
    for c in (duration, event):
        if c not in df.columns:
            raise EstimationError(f"column {c!r} not in the data; columns: {list(df.columns)}")
    d = pd.to_numeric(df[duration], errors="coerce")
    if d.isna().any() or (d < 0).any():
        raise EstimationError(f"column {duration!r}: durations must be numbers ≥ 0 (found missing or negative)")
    if integer and not np.allclose(d, np.round(d)):
        raise EstimationError(
            f"column {duration!r}: a discrete-time hazard needs whole numbers of periods; "
            "round or group the durations, or use kind='cox'"
        )
    e = pd.to_numeric(df[event].astype(float) if df[event].dtype == bool else df[event], errors="coerce")
    if not e.isin([0, 1]).all():
        raise EstimationError(f"column {event!r}: events must be 0 (censored) or 1 (event)")
    return d.to_numpy(float), e.to_numpy(float)


def _cox_score_residuals(time, status, X, beta, ties="efron") -> np.ndarray:
    """Score residuals of a Cox model (one row per unit; they sum to the score, zero at
    the MLE), Efron or Breslow ties (Therneau & Grambsch 2000, sec. 3.7 and 4.6).

    At an event time with d tied events, the Efron likelihood takes d sub-steps j = 0..d−1
    in which the tied units keep weight (1 − j/d) in the risk set. A unit's residual is its
    event term x_i − mean_j x̄_j minus its share of every sub-step's hazard increment
    r_i (x_i − x̄_j) / S0_j while at risk. Breslow: all sub-steps use the full risk set."""
    time = np.asarray(time, float)
    status = np.asarray(status, float)
    r = np.exp(X @ beta)
    p = X.shape[1]
    event_times = np.unique(time[status == 1])
    K = len(event_times)
    # risk-set sums at each event time: units with time >= tau_k (suffix sums over sorted time)
    order = np.argsort(time, kind="mergesort")
    ts, rs, xs = time[order], r[order], X[order]
    suffix_r = np.concatenate([np.cumsum(rs[::-1])[::-1], [0.0]])
    suffix_rx = np.concatenate([np.cumsum((rs[:, None] * xs)[::-1], axis=0)[::-1], np.zeros((1, p))])
    first = np.searchsorted(ts, event_times, side="left")
    S0, S1 = suffix_r[first], suffix_rx[first]
    k_of = np.searchsorted(event_times, time)  # index of tau == time for events
    dead = status == 1
    kd = k_of[dead]
    S0D = np.bincount(kd, weights=r[dead], minlength=K)
    S1D = np.stack([np.bincount(kd, weights=r[dead] * X[dead, c], minlength=K) for c in range(p)], axis=1)
    D = np.bincount(kd, minlength=K)
    A = np.zeros(K)          # sum_j 1/S0_j                (units at risk, not dying at tau_k)
    B = np.zeros((K, p))     # sum_j xbar_j/S0_j
    Ad = np.zeros(K)         # sum_j (1-f_j)/S0_j          (units dying at tau_k)
    Bd = np.zeros((K, p))
    mean_xbar = np.zeros((K, p))
    for k in range(K):
        f = np.arange(D[k]) / D[k] if ties == "efron" else np.zeros(D[k])
        s0 = S0[k] - f * S0D[k]
        xbar = (S1[k][None, :] - f[:, None] * S1D[k][None, :]) / s0[:, None]
        A[k], B[k] = (1 / s0).sum(), (xbar / s0[:, None]).sum(axis=0)
        Ad[k], Bd[k] = ((1 - f) / s0).sum(), ((1 - f)[:, None] * xbar / s0[:, None]).sum(axis=0)
        mean_xbar[k] = xbar.mean(axis=0)
    cumA = np.concatenate([[0.0], np.cumsum(A)])
    cumB = np.concatenate([np.zeros((1, p)), np.cumsum(B, axis=0)])
    n_before = np.searchsorted(event_times, time, side="right")  # event times <= own time
    a = cumA[n_before]
    b = cumB[n_before]
    # units that die at their own event time: that step uses the (1 - f_j) weights
    a[dead] += Ad[kd] - A[kd]
    b[dead] += Bd[kd] - B[kd]
    resid = -r[:, None] * (X * a[:, None] - b)
    resid[dead] += X[dead] - mean_xbar[kd]
    return resid


def _schoenfeld_efron(time, status, X, beta):
    """Schoenfeld residuals of the events (Efron ties): for an event at t with d tied
    events, x_i minus the average over the Efron sub-steps j = 0..d-1 of the risk-set
    mean of x, where the tied units keep weight (1 - j/d). Returns (rows of the events,
    residuals) in the order of ``np.flatnonzero(status == 1)``."""
    time = np.asarray(time, float)
    status = np.asarray(status, float)
    r = np.exp(X @ beta)
    dead = np.flatnonzero(status == 1)
    out = np.zeros((len(dead), X.shape[1]))
    for t in np.unique(time[dead]):
        at_risk = time >= t
        tied = (time == t) & (status == 1)
        k = int(tied.sum())
        s0, s1 = r[at_risk].sum(), (r[at_risk, None] * X[at_risk]).sum(0)
        s0d, s1d = r[tied].sum(), (r[tied, None] * X[tied]).sum(0)
        f = np.arange(k) / k
        xbar = ((s1[None, :] - f[:, None] * s1d[None, :]) / (s0 - f * s0d)[:, None]).mean(0)
        idx = np.searchsorted(dead, np.flatnonzero(tied))
        out[idx] = X[tied] - xbar
    return dead, out


PH_TRANSFORMS = ("km", "rank", "identity", "log")


def proportional_hazards_test(df: pd.DataFrame, duration: str, event: str, covariates: Sequence[str],
                              transform: str = "km", strata: str | None = None) -> pd.DataFrame:
    """Test of the proportional-hazards assumption of a Cox model from scaled Schoenfeld
    residuals (Grambsch & Therneau 1994, Biometrika 81:515; the approximation of R
    ``cox.zph`` before survival 3.0, and of lifelines' ``proportional_hazard_test``).

    With s_k the Schoenfeld residual of the k-th event (Efron ties), V the covariance of
    the coefficients, d the number of events and g_k a transform of the event time
    ("km": 1 - Kaplan–Meier, R's default; "rank": average rank of the event times;
    "identity"; "log"), u = sum_k (g_k - mean g) s_k and
    per covariate j: chi2_j = d (V u)_j^2 / (V_jj sum_k (g_k - mean g)^2), 1 df;
    global: chi2 = d u' V u / sum_k (g_k - mean g)^2, p df.
    A small p says the covariate's effect changes with time since the start of the
    spell: stratify on it (``hazard_model(..., strata=)``) or model the interaction.
    With ``strata`` the model is stratified and residuals use within-stratum risk sets.

    Returns a DataFrame [covariate, chi2, df, p] with a last row "GLOBAL"."""
    if transform not in PH_TRANSFORMS:
        raise EstimationError(f"transform must be one of {PH_TRANSFORMS}")
    covariates = as_list(covariates)
    fit = hazard_model(df, duration, event, covariates, kind="cox", strata=strata)
    d_, e_ = _check_duration_event(df, duration, event)
    d_, e_ = np.asarray(d_, float), np.asarray(e_, float)
    X = _design(df, covariates).to_numpy(float)
    beta = fit.params.to_numpy()
    V = np.asarray(fit.raw.cov_params())
    if strata is None:
        dead, resid = _schoenfeld_efron(d_, e_, X, beta)
    else:
        codes = pd.factorize(df[strata].astype(str))[0]
        dead_all = np.flatnonzero(e_ == 1)
        resid = np.zeros((len(dead_all), X.shape[1]))
        for c in np.unique(codes):
            rows = np.flatnonzero(codes == c)
            dd, rr = _schoenfeld_efron(d_[rows], e_[rows], X[rows], beta)
            resid[np.searchsorted(dead_all, rows[dd])] = rr
        dead = dead_all
    times = d_[dead]
    if transform == "km":
        km = kaplan_meier(d_, e_).set_index("time")["survival"]
        g = 1 - km.reindex(times).to_numpy()
    elif transform == "rank":
        g = stats.rankdata(times)
    elif transform == "log":
        g = np.log(times)
    else:
        g = times
    gc = g - g.mean()
    n_events = len(dead)
    u = gc @ resid
    Vu = V @ u
    denom = np.sum(gc ** 2)
    chi2 = n_events * Vu ** 2 / (np.diag(V) * denom)
    glob = float(n_events * u @ V @ u / denom)
    out = pd.DataFrame({"covariate": fit.params.index, "chi2": chi2, "df": 1,
                        "p": stats.chi2.sf(chi2, 1)})
    out.loc[len(out)] = ["GLOBAL", glob, len(beta), float(stats.chi2.sf(glob, len(beta)))]
    out.attrs["transform"] = transform
    return out


def person_period(df: pd.DataFrame, duration: str, event: str, id_col: str | None = None, time_col: str = "time") -> pd.DataFrame:
    """Expand one row per unit (spell) into one row per unit per period at risk
    (methods.md, "Survival and hazard": discrete-time hazard on a person-period file).

    A unit with duration d gets rows time = 1..d; the ``event`` column becomes the
    per-period outcome: 1 on the last row when the unit's event is 1, else 0. Units with
    duration 0 contribute no rows. Every other column is copied. The unit is identified by
    ``id_col`` when given, else by a new column ``unit`` (0..n−1 in input order).
    """
    d, e = _check_duration_event(df, duration, event, integer=True)
    d = np.round(d).astype("int64")
    base = df.reset_index(drop=True)
    if id_col is None:
        id_col = "unit"
        base = base.assign(unit=np.arange(len(base)))
    elif id_col not in base.columns:
        raise EstimationError(f"id_col {id_col!r} not in the data")
    rows = np.repeat(np.arange(len(base)), d)
    offsets = np.repeat(np.cumsum(d) - d, d)
    t = np.arange(len(rows)) - offsets + 1
    out = base.drop(columns=[duration]).iloc[rows].reset_index(drop=True)
    out.insert(list(out.columns).index(id_col) + 1, time_col, t)
    out[event] = ((t == d[rows]) & (e[rows] == 1)).astype("int64")
    return out


def _baseline_design(t: np.ndarray, events: np.ndarray, baseline: str, spline_df: int):
    """Baseline hazard terms for the discrete-time model, and rows to keep.

    dummies: one indicator per period with at least one event, no intercept. Person-periods
    at periods with no event are dropped: with their own dummy the MLE of that dummy is −∞
    and those rows then contribute nothing to the likelihood or the covariate score, so
    dropping them gives exactly that limit without a non-converging fit.
    linear: intercept + time. spline: intercept + cubic B-spline of time (patsy ``bs``)."""
    keep = np.ones(len(t), dtype=bool)
    dropped: list = []
    if baseline == "dummies":
        event_times = np.unique(t[events == 1])
        keep = np.isin(t, event_times)
        dropped = sorted(set(np.unique(t).tolist()) - set(event_times.tolist()))
        B = pd.DataFrame({f"time={int(k)}": (t[keep] == k).astype(float) for k in event_times})
    elif baseline == "linear":
        B = pd.DataFrame({"const": np.ones(len(t)), "time": t.astype(float)})
    elif baseline == "spline":
        import patsy

        S = patsy.dmatrix(f"bs(x, df={int(spline_df)}) - 1", {"x": t.astype(float)}, return_type="dataframe")
        S.columns = [f"time_bs{i + 1}" for i in range(S.shape[1])]
        B = pd.concat([pd.DataFrame({"const": np.ones(len(t))}), S.reset_index(drop=True)], axis=1)
    else:
        raise EstimationError(f"baseline={baseline!r}: use 'dummies', 'linear' or 'spline'")
    return B, keep, dropped


def hazard_model(
    df: pd.DataFrame,
    duration: str,
    event: str,
    covariates: Sequence[str],
    kind: str = "cox",
    cluster: str | None = None,
    ties: str = "efron",
    baseline: str = "dummies",
    spline_df: int = 4,
    strata: str | None = None,
) -> HazardResult:
    """Fit a hazard model on any DataFrame with one row per unit (e.g. a spell table from
    ``exit_spells``) (methods.md, "Survival and hazard").

    kind="cox": Cox proportional hazards, partial likelihood with Efron ties (``ties``
    may be "breslow"), statsmodels ``PHReg``. Model-based SE; with ``cluster`` (a column
    name, e.g. household_id) the robust sandwich SE summed within clusters (Lin & Wei),
    without small-sample correction (as R ``coxph(cluster=)`` / lifelines).

    kind="cloglog" / "logit": discrete-time hazard. The data are expanded with
    ``person_period`` (one row per unit per period at risk, outcome 1 in the period of the
    event) and a binomial GLM is fitted with a complementary log-log (grouped-time
    proportional hazards: exp(coef) is a hazard ratio, comparable with Cox) or logit link
    (exp(coef) an odds ratio), baseline ``baseline`` = "dummies" (one per period with an
    event), "linear" or "spline" (cubic B-spline, ``spline_df`` degrees of freedom).
    Standard errors are always cluster-robust (statsmodels ``cov_type="cluster"``, with its
    default small-sample correction), by ``cluster`` when given, else by unit (row of
    ``df``), since a unit's person-periods are not independent observations.

    ``strata`` (cox only): a column whose levels get their own baseline hazard (a
    stratified Cox model: risk sets are formed within strata; the coefficients are
    common). Use it for a covariate that fails the proportional-hazards check
    (:func:`proportional_hazards_test`).

    Categorical covariates are expanded to dummies (first level = reference); missing
    covariate values are an error.
    """
    covariates = as_list(covariates)
    if kind not in ("cox", "cloglog", "logit"):
        raise EstimationError(f"kind={kind!r}: use 'cox', 'cloglog' or 'logit'")
    if cluster is not None and cluster not in df.columns:
        raise EstimationError(f"cluster column {cluster!r} not in the data; columns: {list(df.columns)}")
    d, e = _check_duration_event(df, duration, event, integer=(kind != "cox"))
    X = _design(df, covariates)

    if kind == "cox":
        from statsmodels.duration.hazard_regression import PHReg

        if e.sum() == 0:
            raise EstimationError(f"column {event!r}: no events, a Cox model cannot be fitted")
        exog = X.to_numpy(float)
        n_clusters = None
        if strata is not None and strata not in df.columns:
            raise EstimationError(f"strata column {strata!r} not in the data")
        strata_codes = pd.factorize(df[strata].astype(str))[0] if strata is not None else None
        res = PHReg(d, exog, status=e, ties=ties, strata=strata_codes).fit()
        cov = np.asarray(res.cov_params())
        if cluster is not None:
            # statsmodels' own robust covariance uses Breslow-type score residuals even
            # under Efron ties; ours follow the ties rule of the fit (as R and lifelines).
            resid = np.zeros_like(exog)
            for code in (np.unique(strata_codes) if strata_codes is not None else [None]):
                rows = np.ones(len(d), bool) if code is None else strata_codes == code
                resid[rows] = _cox_score_residuals(np.asarray(d)[rows], np.asarray(e)[rows], exog[rows],
                                                   np.asarray(res.params), ties)
            codes = pd.factorize(df[cluster].astype(str))[0]
            n_clusters = _check_clusters(codes, cluster)
            summed = np.zeros((codes.max() + 1, exog.shape[1]))
            np.add.at(summed, codes, resid)
            cov = cov @ (summed.T @ summed) @ cov
        params = pd.Series(np.asarray(res.params), index=X.columns, name="coef")
        bse = pd.Series(np.sqrt(np.diag(cov)), index=X.columns, name="se")
        return HazardResult(
            kind="cox", params=params, bse=bse, summary=_summary(params, bse), n=len(df),
            events=int(e.sum()), cov_type="naive" if cluster is None else f"cluster:{cluster}",
            n_clusters=n_clusters, raw=res,
        )

    # the two modules the fit needs, not statsmodels.api (which also imports its time
    # series, graphics, formula and datasets packages: ~0.4 s of CPU in each report kernel)
    from statsmodels.genmod import families
    from statsmodels.genmod.generalized_linear_model import GLM

    work = X.assign(_d=d.round().astype("int64"), _e=e.astype("int64"))
    work["_cluster"] = df[cluster].astype(str).to_numpy() if cluster is not None else np.arange(len(df)).astype(str)
    pp = person_period(work, "_d", "_e", id_col=None, time_col="_time")
    t = pp["_time"].to_numpy()
    y = pp["_e"].to_numpy(float)
    if y.sum() == 0:
        raise EstimationError(f"column {event!r}: no events within the durations, nothing to fit")
    B, keep, dropped = _baseline_design(t, y, baseline, spline_df)
    design = pd.concat([B.reset_index(drop=True), pp.loc[keep, list(X.columns)].reset_index(drop=True)], axis=1)
    link = families.links.CLogLog() if kind == "cloglog" else families.links.Logit()
    family = families.Binomial(link=link)  # a fresh family/link per model
    groups = pd.factorize(pp.loc[keep, "_cluster"])[0]
    n_clusters = _check_clusters(groups, cluster or "unit")
    # every baseline spans a constant (dummies sum to one), so skip statsmodels' SVD-based
    # constant detection; QR least squares in IRLS is several times faster than the default
    model = GLM(y[keep], design, family=family, hasconst=True)
    res = model.fit(cov_type="cluster", cov_kwds={"groups": groups}, wls_method="qr")
    params = res.params[list(X.columns)].rename("coef")
    bse = res.bse[list(X.columns)].rename("se")
    return HazardResult(
        kind=kind, params=params, bse=bse, summary=_summary(params, bse), n=len(df), events=int(e.sum()),
        cov_type=f"cluster:{cluster or 'unit'}", n_person_periods=int(keep.sum()),
        baseline=res.params[list(B.columns)], dropped_times=dropped, n_clusters=n_clusters, raw=res,
    )
