"""Relapse early warning against the planted oracle (issue 12 §3), and its speed.

    .venv/bin/python benchmarks/bench_risk.py                       # 600k households, 1M-row timing
    .venv/bin/python benchmarks/bench_risk.py --households 300000 --fit-rows 200000
    .venv/bin/python benchmarks/bench_risk.py --quality-only --calibrations none,temporal
    .venv/bin/python benchmarks/bench_risk.py --quality-only --calibrations none --no-logit \
        --kinds relapse1,entry1 --oracle-knows   # where the gap to the oracle lives

Quality: a synthetic register (annual reviews) is written to parquet and loaded; for
relapse within 1 and 2 reviews and entry within 1 the model is fitted with method="auto"
(out-of-time validation: train on the earlier complete cohorts, test on the latest) and
its test-cohort scores are compared with the TRUE probabilities (truth_risk) of the same
households. Targets: AUC within 0.03 of the oracle's, calibration slope 0.9-1.1,
ECE <= 0.015, top-decile capture >= 90% of the oracle's, calibration gap between groups
(ethnic minority, area, region) <= 0.02. Also with and without ethnic minority as a
feature, and boosting under each calibration of ``--calibrations``
(povdyn.risk.CALIBRATIONS).

Sampling noise is printed beside each target: the calibration slope's 95% bootstrap
interval and the slope the TRUE probabilities get on the same households
(``oracle_slope``); the top-decile capture of the model and of the ceiling (below) as
shares of the oracle's, each with a bootstrap interval (``top10_ratio``,
``ceiling_top10_ratio``): when the ceiling's own share is below 0.9, the 90% target is
above what the register reveals; and the group gap with its interval beside the
oracle's own, and the same gap measured against the TRUE probabilities instead of the
outcomes (``gap_vs_truth_ci``: the spread between groups of mean score - mean true
probability, free of the outcomes' noise). ``--oracle-knows``: the ceiling again with each of what the oracle knows
and the register does not added to its features (the true income behind the recorded
one, the commune's hardship exposure, support in force the next year;
``oracle_knowledge``), one at a time and together -- where the rest of the gap lives.
``--truth-checks``: beside the truth at the review, the truth of stops up to 15 (next
year's growth and later support taken as known; ``known_*``: before/after) and the truth
redrawn with other random numbers (``redrawn_oracle_auc``: its Monte Carlo error).

Speed: the relapse cohort file is resampled to --fit-rows rows (1M by default) and the
chosen scorer is fitted and scores every row (with reasons for the high band). Beside
it, the engine-side cohort extraction is timed against a plain-pandas baseline (pivot of
the annual statuses) on the same register, with equal counts checked. Run it under
``flock /tmp/povdyn-heavy.lock``.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import povdyn  # noqa: E402
from povdyn import synth  # noqa: E402
from povdyn.risk import (_Design, _Hazard, _add_support, _support_table, calibration_gap,  # noqa: E402
                         cohort_frame, entry_risk, relapse_risk, score_metrics, top_decile_capture,
                         validation_metrics)

IDENT = ["head_name", "id_card", "phone", "address"]


def quality(panel, reg, kind, within, method="auto", use_ethnicity=True, calibration="none",
            hidden: pd.DataFrame | None = None, variants: pd.DataFrame | None = None) -> dict:
    fit = relapse_risk if kind == "relapse" else entry_risk
    t = time.perf_counter()
    m = fit(panel, within=within, support=reg.support, method=method, use_ethnicity=use_ethnicity,
            calibration=calibration)
    seconds = time.perf_counter() - t
    if m.test_scores is None:  # too few events to validate at this size
        print(f"{kind} within {within} {method}: not validated: {m.notes}", flush=True)
        return None
    truth = reg.truth_risk[reg.truth_risk.kind == kind]
    test = m.test_scores.merge(truth, on=["household_id", "period"], validate="one_to_one")
    if variants is not None:
        test = test.merge(variants[variants.kind == kind].drop(columns="kind"), on=["household_id", "period"],
                          validate="one_to_one")
    model = score_metrics(test.event, test.risk)
    oracle = score_metrics(test.event, test[f"p_within_{within}"])
    gaps = calibration_gap(validation_metrics(test)).set_index("group").calibration_gap
    # the oracle's own spread between groups: sampling noise of the test cohort alone
    # (groups of a few hundred exits) puts a floor under the model's
    oracle_gaps = calibration_gap(validation_metrics(test.assign(risk=test[f"p_within_{within}"])))
    # the ceiling depends on the features and cohorts, not on the scorer: once per kind and k
    key = (kind, within, use_ethnicity)
    if key not in _CEILINGS and not SKIP_CEILING:
        _CEILINGS[key] = ceiling(m, reg, kind, within, test, hidden)
    elif SKIP_CEILING:  # --no-ceiling: its columns NaN
        _CEILINGS[key] = {"with_history": np.nan, "without_history": np.nan, "out_of_time": np.nan,
                          "scores": np.full(len(test), np.nan)}
    ceil = _CEILINGS[key]
    print(group_table(test, f"p_within_{within}").round(4).to_string(index=False), flush=True)
    model_gap, model_lo, model_hi = group_gap_interval(test, "risk")
    oracle_gap, oracle_lo, oracle_hi = group_gap_interval(test, f"p_within_{within}")
    # the same gap against the planted truth: judgeable where the outcome-based one is
    # not (the oracle's own outcome-based gap is as large as the target at 1.2M households)
    truth_gap, truth_lo, truth_hi = group_gap_interval(test, "risk", against=f"p_within_{within}")
    # sampling noise of the test cohort: the model's slope with its bootstrap interval,
    # and the slope the TRUE probabilities get on the same households
    slope_lo, slope_hi = slope_interval(test.event, test.risk)
    # top-decile capture of the model and of the ceiling regressor, each as a share of the
    # oracle's on the same households, with bootstrap intervals of the ratios
    y = test.event.to_numpy(float)
    truth_p = test[f"p_within_{within}"].to_numpy(float)
    top_ratio, top_lo, top_hi = capture_ratio_interval(y, test.risk.to_numpy(float), truth_p)
    ceil_ratio, ceil_lo, ceil_hi = ((np.nan,) * 3 if SKIP_CEILING
                                    else capture_ratio_interval(y, ceil["scores"], truth_p))
    return {
        "kind": kind, "within": within, "ethnicity": use_ethnicity, "method": m.method,
        "calibration": calibration if m.method == "gbm" else "-",
        "test": m.test_period, "n": model["n"], "events": model["events"],
        "auc": model["auc"], "oracle_auc": oracle["auc"], "auc_gap": oracle["auc"] - model["auc"],
        "slope": model["calibration_slope"], "intercept": model["calibration_intercept"], "ece": model["ece"],
        "oracle_ece": oracle["ece"],
        "oracle_slope": oracle["calibration_slope"], "slope_ci": f"[{slope_lo:.2f}, {slope_hi:.2f}]",
        "top10": model["top_decile_capture"], "oracle_top10": oracle["top_decile_capture"],
        "top10_ratio": top_ratio, "top10_ratio_ci": f"[{top_lo:.2f}, {top_hi:.2f}]",
        "ceiling_top10_ratio": ceil_ratio, "ceiling_top10_ratio_ci": f"[{ceil_lo:.2f}, {ceil_hi:.2f}]",
        "gap_ethnic": gaps.get("ethnic_minority", np.nan), "gap_area": gaps.get("area", np.nan),
        "gap_region": gaps.get("region", np.nan), "oracle_max_gap": oracle_gaps.calibration_gap.max(),
        "gap_ci": f"{model_gap:.3f} [{model_lo:.3f}, {model_hi:.3f}]",
        "oracle_gap_ci": f"{oracle_gap:.3f} [{oracle_lo:.3f}, {oracle_hi:.3f}]",
        "gap_vs_truth": truth_gap, "gap_vs_truth_ci": f"{truth_gap:.3f} [{truth_lo:.3f}, {truth_hi:.3f}]",
        "ceiling_auc": ceil["with_history"], "ceiling_auc_no_history": ceil["without_history"],
        "ceiling_auc_out_of_time": ceil["out_of_time"],
        **{f"ceiling_auc_with_{name}": ceil[f"with_{name}"] for name in HIDDEN if f"with_{name}" in ceil},
        **{f"ceiling_top10_ratio_with_{name}": ceil[f"top10_with_{name}"] / oracle["top_decile_capture"]
           for name in HIDDEN if f"with_{name}" in ceil},
        **(truth_checks(test, within) if variants is not None else {}),
        "seconds": seconds,
    }


_CEILINGS: dict = {}
SKIP_CEILING = False  # --no-ceiling
HISTORY = ("prev_dep_employment", "prev_dep_nutrition", "prev_status=poor", "prev_status=near_poor",
           "prev2_status=poor", "prev2_status=near_poor", "income_gap_2_back")
# what the generating process knows at the review and the register does not
# (``oracle_knowledge``), added to the ceiling's features one at a time and together
HIDDEN = {"true income": ["true_gap"], "commune exposure": ["commune_exposure"],
          "support ahead": ["support_ahead"],
          "all three": ["true_gap", "commune_exposure", "support_ahead"]}


def truth_checks(test: pd.DataFrame, within: int) -> dict:
    """Against the truth of stops up to 15 (``known_*``, ``truth_variants``): its AUC, the
    model's gap to it, top-decile ratio and group gap vs it; and the truth at the review
    redrawn (other random numbers for its futures): its AUC (``redrawn_oracle_auc``; the
    difference to ``oracle_auc`` is the Monte Carlo error) and the mean absolute
    difference of the two probabilities."""
    y = test.event.to_numpy(float)
    known = test[f"known_{within}"].to_numpy(float)
    redrawn = test[f"redrawn_{within}"].to_numpy(float)
    known_auc = score_metrics(y, known)["auc"]
    gap, _, _ = group_gap_interval(test, "risk", draws=1, against=f"known_{within}")
    return {"known_oracle_auc": known_auc, "known_auc_gap": known_auc - score_metrics(y, test.risk)["auc"],
            "known_oracle_mean": known.mean(),
            "known_top10_ratio": top_decile_capture(y, test.risk.to_numpy(float)) / top_decile_capture(y, known),
            "known_gap_vs_truth": gap, "oracle_mean": test[f"p_within_{within}"].mean(), "observed": y.mean(),
            "redrawn_oracle_auc": score_metrics(y, redrawn)["auc"] if np.isfinite(redrawn).all() else np.nan,
            "redrawn_mean_abs_diff": float(np.abs(redrawn - test[f"p_within_{within}"].to_numpy(float)).mean())}


def ceiling(m, reg, kind, within, test, hidden: pd.DataFrame | None = None) -> dict:
    """The best AUC a model of the register's information can reach: a boosting
    regression of the oracle's own log-odds on the model's features (no outcome noise to
    learn from), cross-fitted by household: five folds of households over every cohort
    of this kind that the oracle covers (the test cohort's included -- it learns no
    outcome, only what the features say about the true probability), each test
    household scored by the fold that did not see it; AUC against the realised outcomes.
    ``out_of_time``: the same regression learned from the earlier cohorts only (no row of
    the test cohort), the ceiling of a model fitted before the test cohort's review: at
    1,200,000 households (seed 2025, relapse within 1) 0.775 against 0.788 cross-fitted --
    the test cohort's own truth teaches what earlier cohorts cannot (risk.py, "out of time").
    With and without the history features (``HISTORY``: statuses one and two reviews
    back, income two back, hardship marks at t-1). ``scores``: the test-cohort scores
    with history (for its top-decile capture). ``hidden`` (``oracle_knowledge``): also
    the ceiling with each of what the oracle knows and the register does not
    (``HIDDEN``) added to the features: ``with_<name>`` AUC and ``top10_<name>``
    capture."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.metrics import roc_auc_score

    from povdyn.risk import _household_fold

    truth = reg.truth_risk[reg.truth_risk.kind == kind]
    col = f"p_within_{within}"
    rows = m._frame.merge(truth, on=["household_id", "period"])
    rows = rows[rows[col].notna()].reset_index(drop=True)
    if hidden is not None:
        rows = rows.merge(hidden, on=["household_id", "period"], how="left", validate="one_to_one")
    design = _Design(kind, True).fit(rows)
    p = rows[col].clip(1e-5, 1 - 1e-5).to_numpy()
    target = np.log(p / (1 - p))
    fold = _household_fold(rows["household_id"].to_numpy(), 5)
    is_test = (rows["period"] == m.test_period).to_numpy()
    order = test.set_index("household_id").index
    y = rows.loc[is_test].set_index("household_id").loc[order, "event"].to_numpy(float)
    base = design.matrix(rows)
    variants = {"with_history": base, "without_history": base.drop(columns=[c for c in HISTORY if c in base])}
    for name, cols in (HIDDEN.items() if hidden is not None else ()):
        variants[f"with_{name}"] = base.assign(**{c: rows[c].to_numpy(float) for c in cols})
    out = {}
    for name, X in variants.items():
        scores = np.empty(len(rows))
        for k in range(5):
            fit = HistGradientBoostingRegressor(max_iter=400, learning_rate=0.08, max_leaf_nodes=31,
                                                min_samples_leaf=40, random_state=0)
            fit.fit(X[fold != k], target[fold != k])
            scores[fold == k] = fit.predict(X[fold == k])
        s = pd.Series(scores[is_test], index=rows.loc[is_test, "household_id"]).loc[order].to_numpy()
        out[name] = float(roc_auc_score(y, s))
        out[f"top10_{name}"] = top_decile_capture(y, s)
        if name == "with_history":
            out["scores"] = s
    # the same regression out of time: learned from the earlier cohorts only (what a model
    # trained before the test cohort's review could know even with the truth as its label)
    earlier = (rows["period"] < m.test_period).to_numpy()
    learnable = [c for c in base.columns if base.loc[earlier, c].notna().any()]
    if earlier.sum() >= 500:
        fit = HistGradientBoostingRegressor(max_iter=400, learning_rate=0.08, max_leaf_nodes=31,
                                            min_samples_leaf=40, random_state=0)
        fit.fit(base.loc[earlier, learnable], target[earlier])
        s = pd.Series(fit.predict(base.loc[is_test, learnable]),
                      index=rows.loc[is_test, "household_id"]).loc[order].to_numpy()
        out["out_of_time"] = float(roc_auc_score(y, s))
    else:
        out["out_of_time"] = np.nan
    return out


def oracle_knowledge(households: int, seed: int) -> pd.DataFrame:
    """What the generating process knows at each annual review t (2022-2024) and the
    register does not (povdyn.synth.simulate, ``_risk_truth``), per household and review:
    ``true_gap`` -- the household's true log income level at t (no measurement noise, no
    hardship drop of year t) minus the log poverty line of t; ``commune_exposure`` -- its
    commune's planted hardship shock (HARDSHIP "sd_commune"); ``support_ahead`` -- the
    planted income effect of support in force at t+1 (the truth of stops up to 15 took
    the office's later decisions as realised; the truth at the review integrates over
    them). The same chunks as ``synth.generate`` (same seed) are
    simulated again; nothing of this enters the register."""
    from povdyn.risk import _line
    from povdyn.synth import simulate as S

    geo = S._geography(households, seed)
    shock = np.random.default_rng(np.random.SeedSequence([seed, 10**9 + 12])).normal(
        0, S.HARDSHIP["sd_commune"], len(geo.commune_name))
    growth = np.cumsum(S.CALIBRATION["growth"])
    catch_up = S.CALIBRATION["ethnic_catch_up"] * np.arange(len(S.YEARS))
    parts = []
    for c, start, n in S._chunks(households):
        sim = S._simulate_chunk(c, start + 1, n, households, seed, geo)
        state = sim["risk_state"]
        ids = S._hh_ids(sim["hh_number"]).to_pandas().to_numpy()
        for t in range(S.YEARS.index(2022), len(S.YEARS) - 1):
            level = (state["base"] + state["permanent"][:, t] + growth[t] + sim["eth"] * catch_up[t]
                     + state["effect"][:, t])
            line = _line(np.full(len(level), S.YEARS[t]), sim["urban"])
            parts.append(pd.DataFrame({"household_id": ids, "period": S.YEARS[t],
                                       "true_gap": level - np.log(line),
                                       "commune_exposure": shock[sim["comm"]],
                                       "support_ahead": state["effect"][:, t + 1]}))
    return pd.concat(parts, ignore_index=True)


def truth_variants(households: int, seed: int, redrawn: bool = True) -> pd.DataFrame:
    """Two other truths of the same register, per household, review and kind (the same
    chunks as ``synth.generate``, simulated again): ``known_1``/``known_2`` -- the truth
    of stops up to 15, which took next year's growth (the register's path) and support
    starting after the review as known (``known_future``); ``redrawn_1``/``redrawn_2`` --
    the truth at the review with other random numbers for its 1,000 futures (its Monte
    Carlo error; NaN unless ``redrawn``)."""
    from povdyn.synth import simulate as S

    geo = S._geography(households, seed)
    keys = ["household_id", "period", "kind"]
    parts = []
    for c, start, n in S._chunks(households):
        sim = S._simulate_chunk(c, start + 1, n, households, seed, geo)
        known = S.risk_truth_frame(sim, "year", known_future=True)
        part = known.rename(columns={"p_within_1": "known_1", "p_within_2": "known_2"})
        if redrawn:
            again = S.risk_truth_frame(sim, "year", draw_seed=S.RISK_DRAW_SEED + 1)
            part = part.merge(again.rename(columns={"p_within_1": "redrawn_1", "p_within_2": "redrawn_2"}),
                              on=keys, validate="one_to_one")
        else:
            part = part.assign(redrawn_1=np.nan, redrawn_2=np.nan)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def group_table(test: pd.DataFrame, truth: str) -> pd.DataFrame:
    """Where a group gap lives: per group of the test cohort (ethnic minority, area,
    region) its households, events, observed rate, mean score and mean TRUE probability,
    and the score's error against each (``err_observed`` is what ``calibration_gap``
    spreads; ``err_truth`` the same without the outcomes' noise)."""
    rows = []
    for col in ("ethnic_minority", "area", "region"):
        if col not in test.columns:
            continue
        for value, g in test.groupby(col, sort=True):
            rows.append({"group": col, "value": str(value), "n": len(g), "events": int(g.event.sum()),
                         "observed": g.event.mean(), "risk": g.risk.mean(), "truth": g[truth].mean()})
    out = pd.DataFrame(rows)
    out["err_observed"] = out.risk - out.observed
    out["err_truth"] = out.risk - out.truth
    return out


def slope_interval(y, p, draws: int = 200, seed: int = 0) -> tuple[float, float]:
    """95% bootstrap interval of the calibration slope (test rows resampled)."""
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(y, float)
    p = np.clip(np.asarray(p, float), 1e-6, 1 - 1e-6)
    lp = np.log(p / (1 - p))[:, None]
    rng = np.random.default_rng(seed)
    slopes = []
    for _ in range(draws):
        i = rng.integers(0, len(y), len(y))
        if 0 < y[i].sum() < len(i):
            slopes.append(LogisticRegression(C=1e6).fit(lp[i], y[i]).coef_[0, 0])
    return float(np.quantile(slopes, 0.025)), float(np.quantile(slopes, 0.975))


def capture_ratio_interval(y, score, oracle, draws: int = 200, seed: int = 0) -> tuple[float, float, float]:
    """Top-decile capture of ``score`` divided by the oracle's on the same households,
    and a 95% bootstrap interval of that ratio (households resampled, both captures
    recomputed on each draw)."""
    y = np.asarray(y, float)
    score, oracle = np.asarray(score, float), np.asarray(oracle, float)
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(draws):
        i = rng.integers(0, len(y), len(y))
        caught = top_decile_capture(y[i], oracle[i])
        boot.append(top_decile_capture(y[i], score[i]) / caught if caught > 0 else np.nan)
    return (top_decile_capture(y, score) / top_decile_capture(y, oracle),
            float(np.nanquantile(boot, 0.025)), float(np.nanquantile(boot, 0.975)))


def group_gap_interval(test, score, draws: int = 200, seed: int = 0,
                       against: str = "event") -> tuple[float, float, float]:
    """The largest calibration gap between groups (ethnic minority, area, region: the
    spread of mean score - observed rate) and its 95% bootstrap interval (test rows
    resampled with replacement; one row per household in a cohort). ``against`` a
    column of the TRUE probabilities instead of the outcomes: the spread of mean score -
    mean true probability, the gap with the outcomes' sampling noise taken out (the
    truth's own gap is then 0; its interval is the noise of which households the cohort
    holds)."""
    cols = [c for c in ("ethnic_minority", "area", "region") if c in test.columns]
    codes = [pd.factorize(test[c])[0] for c in cols]
    err = test[score].to_numpy(float) - test[against].to_numpy(float)

    def gap(idx):
        worst = 0.0
        for code in codes:
            k = code.max() + 1
            n = np.bincount(code[idx], minlength=k)
            mean = np.bincount(code[idx], weights=err[idx], minlength=k)[n > 0] / n[n > 0]
            worst = max(worst, float(mean.max() - mean.min()))
        return worst

    rng = np.random.default_rng(seed)
    boot = [gap(rng.integers(0, len(err), len(err))) for _ in range(draws)]
    return gap(np.arange(len(err))), float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))


def pandas_cohorts(df: pd.DataFrame, within: int) -> pd.Series:
    """Plain-pandas baseline: relapse cohort counts per exit review from a pivot of the
    annual statuses (the register as one pandas frame -- what povdyn avoids)."""
    wide = df.pivot(index="household_id", columns="period", values="status")
    years = sorted(wide.columns)
    out = {}
    for y in years:
        if y - 1 not in wide or y + within > years[-1]:
            continue
        exited = (wide[y - 1] == "poor") & wide[y].isin(["near_poor", "non_poor"])
        followed = exited & np.all([wide[y + j].notna() for j in range(1, within + 1)], axis=0)
        event = followed & np.any([wide[y + j] == "poor" for j in range(1, within + 1)], axis=0)
        out[y] = (int(exited.sum()), int(followed.sum()), int(event.sum()))
    return pd.Series(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--households", type=int, default=600_000)
    ap.add_argument("--fit-rows", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=2025)
    ap.add_argument("--speed-only", action="store_true", help="skip the quality table")
    ap.add_argument("--calibrations", default="none,platt,temporal",
                    help="gbm calibrations to compare (povdyn.risk.CALIBRATIONS), comma-separated")
    ap.add_argument("--quality-only", action="store_true", help="only the table of gbm and logit (skip the run without ethnic minority, the cohort-file and 1M-row timings)")
    ap.add_argument("--oracle-knows", action="store_true",
                    help="also the ceiling with what the oracle knows and the register does not "
                         "(true income, commune exposure, support ahead; simulated again)")
    ap.add_argument("--no-logit", action="store_true", help="boosting only (skip the logit beside it)")
    ap.add_argument("--truth-checks", nargs="?", const="known,redrawn", default="",
                    help="also against the truth of stops up to 15 (known: growth and later support known) "
                         "and the truth redrawn (redrawn: its Monte Carlo error); simulated again")
    ap.add_argument("--kinds", default="relapse1,relapse2,entry1,entry2",
                    help="which kinds and horizons, e.g. relapse1,entry1")
    ap.add_argument("--no-ceiling", action="store_true", help="skip the ceiling regressions (faster)")
    ap.add_argument("--speed-methods", default="gbm,logit", help="scorers to time on --fit-rows rows")
    args = ap.parse_args(argv)
    global SKIP_CEILING
    SKIP_CEILING = args.no_ceiling
    print(f"load: {os.getloadavg()[0]:.1f} (1-min average, {os.cpu_count()} cores)")
    t = time.perf_counter()
    # the speed run does not need the truth (its costliest part)
    reg = synth.generate(households=args.households, seed=args.seed, frequency="year",
                         risk_truth=not args.speed_only)
    print(f"register: {args.households:,} households, {len(reg.panel):,} rows, "
          f"{0 if reg.truth_risk is None else len(reg.truth_risk):,} oracle rows in {time.perf_counter() - t:.1f} s")
    with tempfile.TemporaryDirectory(prefix="risk-bench-") as tmp:
        path = Path(tmp) / "panel.parquet"
        frame = reg.panel.drop(columns=IDENT)
        frame.to_parquet(path, index=False)
        panel = povdyn.load_panel(path)

        rows = []
        calibrations = args.calibrations.split(",")
        hidden = None
        if args.oracle_knows and not args.speed_only:
            t = time.perf_counter()
            hidden = oracle_knowledge(args.households, args.seed)
            print(f"what the oracle knows: simulated again in {time.perf_counter() - t:.1f} s", flush=True)
        variants = None
        if args.truth_checks and not args.speed_only:
            t = time.perf_counter()
            variants = truth_variants(args.households, args.seed, redrawn="redrawn" in args.truth_checks)
            print(f"truth variants: simulated again in {time.perf_counter() - t:.1f} s", flush=True)
        combos = [(k[:-1], int(k[-1])) for k in args.kinds.split(",")]
        for kind, within in [] if args.speed_only else combos:
            # within 2 validates on the first complete cohort after the 2021->2022 change
            # of standard: no earlier cohort to recalibrate on out of time
            runs = [("gbm", c) for c in calibrations if not (c == "temporal" and within > 1)]
            runs += [] if args.no_logit else [("logit", "none")]
            for method, calibration in runs:
                row = quality(panel, reg, kind, within, method, calibration=calibration, hidden=hidden,
                              variants=variants)
                if row is None:
                    continue
                rows.append(row)
                print(pd.DataFrame(rows[-1:]).round(4).to_string(index=False),
                      f"load {os.getloadavg()[0]:.1f}", flush=True)  # each row as it comes
        if not args.speed_only and not args.quality_only:
            rows.append(quality(panel, reg, "relapse", 1, "gbm", use_ethnicity=False))
        q = pd.DataFrame(rows) if rows else pd.DataFrame(columns=["auc_gap", "slope", "ece", "top10_ratio",
                                                                   "gap_ethnic", "gap_area", "gap_region",
                                                                   "gap_vs_truth"])
        q["ok_auc"] = q.auc_gap <= 0.03
        q["ok_slope"] = q.slope.between(0.9, 1.1)
        q["ok_ece"] = q.ece <= 0.015
        q["ok_top10"] = q.top10_ratio >= 0.9
        q["ok_groups"] = q[["gap_ethnic", "gap_area", "gap_region"]].max(axis=1) <= 0.02
        q["ok_groups_vs_truth"] = q.gap_vs_truth <= 0.02
        with pd.option_context("display.width", 250, "display.max_columns", 40):
            print("\nquality against the oracle (out of time, latest complete cohort):")
            print(q.round(4).to_string(index=False))

        if args.quality_only:
            return 0
        # engine-side cohort file vs plain pandas
        t = time.perf_counter()
        f, info = cohort_frame(panel, "relapse", 2)
        engine_s = time.perf_counter() - t
        t = time.perf_counter()
        base = pandas_cohorts(frame[["household_id", "period", "status"]], 2)
        pandas_s = time.perf_counter() - t
        mine = f.groupby("period").agg(exits=("event", "size"), followed=("followed", "sum"),
                                       events=("event", "sum"))
        same = all(tuple(int(x) for x in mine.loc[y]) == base[y] for y in base.index)
        print(f"\ncohort file (relapse, within 2): engine {engine_s:.1f} s, pandas pivot "
              f"{pandas_s:.1f} s (ratio {pandas_s / engine_s:.2f}); counts equal: {same}")

        # speed at fit_rows exited households
        f = _add_support(f, _support_table(reg.support, panel, info))
        f = f[f.followed].reset_index(drop=True)
        rng = np.random.default_rng(0)
        big = f.iloc[rng.integers(0, len(f), args.fit_rows)].reset_index(drop=True)
        big["household_id"] = [f"b{i}" for i in range(len(big))]
        for method in args.speed_methods.split(","):
            t = time.perf_counter()
            design = _Design("relapse", True).fit(big)
            X = design.matrix(big)
            fitted = _Hazard(method, big.assign(step=1), X, within=1)
            fit_s = time.perf_counter() - t
            t = time.perf_counter()
            risk = fitted.predict(X)
            score_s = time.perf_counter() - t
            print(f"{method}: fit {fit_s:.1f} s + score {score_s:.1f} s on {len(big):,} exited households "
                  f"= {fit_s + score_s:.1f} s (target < 120 s); mean risk {risk.mean():.4f}; "
                  f"load {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
