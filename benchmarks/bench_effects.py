"""Monte Carlo check of the effect estimators (issue 6): bias, RMSE and 95% CI coverage.

Part 1 — estimator simulation (povdyn.effects.estimate_effect): selection on two
covariates, heterogeneous effect tau(x) = 1 + x1 so that ATT != ATE; continuous outcome;
n = 2,000 per replication; truth = the population ATT / ATE (computed once on 2 million
draws). Every method x estimand, R replications (default 200).

Part 2 — register-level evaluation (povdyn.programs.evaluate_programs) on povdyn.synth
registers (planted programme effects, potential outcomes with common random numbers):
truth = the realised sample ATT on sustained exit within 2 reviews (truth.json); AIPW,
controls="unsupported"; default 50 registers of 40,000 households (time-bound on 2
shared cores). Also the share of each verdict per model (null declared effective? fading
flagged?).

Part 3 — staggered adoption (povdyn.staggered): Callaway–Sant'Anna event-time effects,
placebos and overall ATT against the planted dynamic effects of tests/test_staggered.py,
beside the static TWFE coefficient (the biased comparison).

Part 4 — staggered adoption with covariates (DR / reg / IPW DiD), coverage of ATT(g,t),
event-time effects, placebos and of the uniform band. Part 5 — matching options (k,
bias correction, Abadie–Imbens 2016 SE).

Run:  .venv/bin/python benchmarks/bench_effects.py [--reps 200] [--register-reps 50] [--staggered-reps 200]
          [--covariate-reps 200] [--matching-reps 200]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from povdyn.effects import estimate_effect

ROOT = Path(__file__).resolve().parents[1]


def draw(n, rng):
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    e = 1 / (1 + np.exp(-(-0.7 + 0.9 * x1 - 0.6 * x2)))
    d = rng.binomial(1, e)
    y0 = 1 + 2 * x1 - x2 + rng.normal(size=n)
    tau = 1 + x1
    return pd.DataFrame({"x1": x1, "x2": x2, "d": d, "y": y0 + d * tau}), tau


def population_truth(rng):
    df, tau = draw(2_000_000, rng)
    return {"ATT": float(tau[df.d == 1].mean()), "ATE": float(tau.mean())}


def summarise(rows):
    out = []
    for key, g in pd.DataFrame(rows).groupby(["method", "estimand"], sort=False):
        err = g.estimate - g.truth
        out.append(dict(method=key[0], estimand=key[1], reps=len(g), truth=g.truth.mean(),
                        bias=err.mean(), rmse=np.sqrt((err ** 2).mean()), mean_se=g.se.mean(),
                        sd_estimate=g.estimate.std(),
                        coverage=(np.mean((g.ci_low <= g.truth) & (g.truth <= g.ci_high))
                                  if g.ci_low.notna().all() else np.nan)))
    return pd.DataFrame(out)


def part1(reps, n, seed):
    rng = np.random.default_rng(seed)
    truth = population_truth(rng)
    rows = []
    for r in range(reps):
        df, _ = draw(n, rng)
        for method in ("ipw", "aipw", "ols", "matching"):
            for estimand in ("ATT", "ATE"):
                res = estimate_effect(df, "d", "y", ["x1", "x2"], method=method, estimand=estimand, trim=None)
                rows.append(dict(method=method, estimand=estimand, estimate=res.estimate, se=res.se,
                                 ci_low=res.ci_low, ci_high=res.ci_high, truth=truth[estimand]))
    return summarise(rows)


def part2(reps, seed, n_households):
    """Register-level: povdyn.synth registers (helper A's generator, planted programme
    effects, truth = realised sample ATT with common random numbers)."""
    from povdyn.programs import evaluate_programs
    from povdyn.synth import generate

    rows, verdicts, kinds = [], [], {}
    for r in range(reps):
        reg = generate(households=n_households, seed=seed + r, frequency="quarter")
        ev = evaluate_programs(reg.panel, reg.support, within=2, event_study=False)
        t = ev.table.set_index("program")
        for m, spec in reg.truth["programs"].items():
            kinds[m] = spec["kind"]
            truth = spec["att_sustained_exit"]["k2"]
            if np.isfinite(t.loc[m, "estimate"]) and truth is not None:
                rows.append(dict(method=f"register AIPW: {m}", estimand="ATT", estimate=t.loc[m, "estimate"],
                                 se=t.loc[m, "se"], ci_low=t.loc[m, "ci_low"], ci_high=t.loc[m, "ci_high"],
                                 truth=truth))
                rows.append(dict(method=f"naive: {m}", estimand="ATT", estimate=t.loc[m, "naive"],
                                 se=np.nan, ci_low=np.nan, ci_high=np.nan, truth=truth))
        verdicts.append({m: t.loc[m, "verdict"] for m in t.index})
    v = pd.DataFrame(verdicts)
    rates = {}
    for m, kind in kinds.items():
        shares = v[m].value_counts(normalize=True).round(3).to_dict()
        rates[f"{m} ({kind})"] = shares
    return summarise(rows), rates


def part3(reps, seed):
    """Staggered adoption: CS event-time effects and overall ATT vs the static TWFE
    coefficient on the simulated panel of tests/test_staggered.py (dynamic effects that
    differ by cohort)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from test_staggered import COHORTS, PERIODS, effect, simulate

    def population_truth(e):
        """Cohort-probability weighted truth over the cohorts observed at event time e
        (the population estimand; sample cohort sizes vary between replications)."""
        gs = [g for g in (3, 5, 7) if 1 <= g + e <= max(PERIODS) and g - 1 >= 1]
        return float(np.average([effect(g, e) for g in gs], weights=[COHORTS[g] for g in gs]))

    from povdyn.staggered import group_time_att, twfe_event_study

    rows = []
    for r in range(reps):
        df, g_units = simulate(n_units=400, seed=seed + r)
        cs = group_time_att(df, "unit", "period", "first_treated", "y")
        ev = cs.event_time.set_index("event_time")
        for e in (-2, -1, 0, 2, 4):
            truth = population_truth(e) if e >= 0 else 0.0
            rows.append(dict(method=f"CS event time {e:+d}", estimand="ATT(e)", estimate=ev.loc[e, "att"],
                             se=ev.loc[e, "se"], ci_low=ev.loc[e, "ci_low"], ci_high=ev.loc[e, "ci_high"],
                             truth=truth))
        overall = np.average([np.mean([effect(g, t - g) for t in PERIODS if t >= g]) for g in (3, 5, 7)],
                             weights=[COHORTS[g] for g in (3, 5, 7)])
        o = cs.overall
        rows.append(dict(method="CS overall (cohort-weighted)", estimand="ATT", estimate=o["att"], se=o["se"],
                         ci_low=o["ci_low"], ci_high=o["ci_high"], truth=overall))
        tw = twfe_event_study(df, "unit", "period", "first_treated", "y").static
        rows.append(dict(method="TWFE static (biased comparison)", estimand="ATT", estimate=tw["coef"],
                         se=tw["se"], ci_low=tw["coef"] - 1.96 * tw["se"], ci_high=tw["coef"] + 1.96 * tw["se"],
                         truth=overall))
    return summarise(rows)


def part4(reps, seed):
    """Staggered adoption with covariates (issue 14 §2): DR-DiD (Sant'Anna–Zhao) group-time
    effects on panels where adoption and trends both depend on x (tests/test_staggered.py
    simulate_with_covariates, 600 units x 6 periods). Truth = population ATT(g, t) =
    1 + 0.5 e + 0.5 E[x1 | G = g] (E from 2 million draws). Target coverage 93-97%."""
    sys.path.insert(0, str(ROOT / "tests"))
    from test_staggered import assign_cohort, simulate_with_covariates

    from povdyn.staggered import group_time_att

    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=2_000_000), rng.binomial(1, 0.4, 2_000_000)
    g_pop = assign_cohort(x1, x2, rng.uniform(size=len(x1)))
    mean_x1 = {g: float(x1[g_pop == g].mean()) for g in (3, 4, 5)}
    share = {g: float(np.mean(g_pop == g)) for g in (3, 4, 5)}
    rows = []
    for r in range(reps):
        df, _ = simulate_with_covariates(seed=seed + r)
        for method in ("dr", "reg", "ipw"):
            res = group_time_att(df, "id", "period", "first_treated", "y", covariates=["x1", "x2"],
                                 est_method=method, cluster="commune" if method == "dr" else None,
                                 n_boot=499 if method == "dr" else 0, seed=r)
            gt = res.att_gt
            for _, c in gt[gt.post].iterrows():
                truth = 1 + 0.5 * (c.period - c.cohort) + 0.5 * mean_x1[int(c.cohort)]
                rows.append(dict(method=f"{method} ATT(g,t) all post cells", estimand="ATT(g,t)", estimate=c.att,
                                 se=c.se, ci_low=c.ci_low, ci_high=c.ci_high, truth=truth))
            for _, c in gt[gt.pre].iterrows():
                rows.append(dict(method=f"{method} placebo cells", estimand="0", estimate=c.att, se=c.se,
                                 ci_low=c.ci_low, ci_high=c.ci_high, truth=0.0))
            ev = res.event_time.set_index("event_time")
            for e in (0, 1, 2):
                gs = [g for g in (3, 4, 5) if g + e <= 6]
                w = np.array([share[g] for g in gs])
                truth = float(np.dot(w / w.sum(), [1 + 0.5 * e + 0.5 * mean_x1[g] for g in gs]))
                rows.append(dict(method=f"{method} event time {e}", estimand="ATT(e)", estimate=ev.loc[e, "att"],
                                 se=ev.loc[e, "se"], ci_low=ev.loc[e, "ci_low"], ci_high=ev.loc[e, "ci_high"],
                                 truth=truth))
            if method == "dr":
                post_e = ev[ev.index >= -3]
                truths = []
                for e in post_e.index:
                    if e < 0:
                        truths.append(0.0)
                        continue
                    gs = [g for g in (3, 4, 5) if g + e <= 6]
                    w = np.array([share[g] for g in gs])
                    truths.append(float(np.dot(w / w.sum(), [1 + 0.5 * e + 0.5 * mean_x1[g] for g in gs])))
                inside = bool(np.all((post_e.cb_low <= truths) & (np.array(truths) <= post_e.cb_high)))
                rows.append(dict(method="dr uniform band covers the whole event study", estimand="band",
                                 estimate=float(inside), se=np.nan, ci_low=0.5, ci_high=1.5, truth=1.0))
    return summarise(rows)


def part5(reps, seed):
    """Matching (issue 14 §1): k = 1 and k = 4 neighbours, bias correction, with the
    Abadie–Imbens (2016) estimated-score correction, on the Part 1 design (n = 2,000)."""
    rng = np.random.default_rng(seed)
    truth = population_truth(rng)
    rows = []
    for r in range(reps):
        df, _ = draw(2000, rng)
        for estimand in ("ATT", "ATE"):
            for label, kw in (("matching k=1", {}), ("matching k=1, known-score SE", dict(ps_adjustment=False)),
                              ("matching k=4", dict(n_neighbors=4)),
                              ("matching k=4 bias-corrected", dict(n_neighbors=4, bias_correction=True))):
                res = estimate_effect(df, "d", "y", ["x1", "x2"], method="matching", estimand=estimand, trim=None,
                                      **kw)
                rows.append(dict(method=label, estimand=estimand, estimate=res.estimate, se=res.se,
                                 ci_low=res.ci_low, ci_high=res.ci_high, truth=truth[estimand]))
    return summarise(rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--register-reps", type=int, default=50)
    ap.add_argument("--households", type=int, default=40000)
    ap.add_argument("--staggered-reps", type=int, default=200)
    ap.add_argument("--covariate-reps", type=int, default=200)
    ap.add_argument("--matching-reps", type=int, default=200)
    ap.add_argument("--seed", type=int, default=20251125)
    a = ap.parse_args(argv)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 20)
    fmt = {"truth": "{:.4f}", "bias": "{:+.4f}", "rmse": "{:.4f}", "mean_se": "{:.4f}", "sd_estimate": "{:.4f}",
           "coverage": "{:.3f}"}
    if a.reps:
        t0 = time.time()
        tab = part1(a.reps, a.n, a.seed)
        print(f"\nPart 1: estimator simulation, {a.reps} replications of n = {a.n} ({time.time() - t0:.0f} s)")
        print(tab.to_string(index=False, formatters={k: v.format for k, v in fmt.items()}))
    if a.staggered_reps:
        t0 = time.time()
        tab = part3(a.staggered_reps, a.seed)
        print(f"\nPart 3: staggered adoption, {a.staggered_reps} simulated panels of 400 units x 10 periods "
              f"({time.time() - t0:.0f} s)")
        print(tab.to_string(index=False, formatters={k: v.format for k, v in fmt.items()}))
    if a.covariate_reps:
        t0 = time.time()
        tab = part4(a.covariate_reps, a.seed)
        print(f"\nPart 4: staggered adoption with covariates, {a.covariate_reps} panels of 600 units x 6 periods "
              f"({time.time() - t0:.0f} s)")
        print(tab.to_string(index=False, formatters={k: v.format for k, v in fmt.items()}))
    if a.matching_reps:
        t0 = time.time()
        tab = part5(a.matching_reps, a.seed)
        print(f"\nPart 5: matching options, {a.matching_reps} replications of n = 2,000 ({time.time() - t0:.0f} s)")
        print(tab.to_string(index=False, formatters={k: v.format for k, v in fmt.items()}))
    if a.register_reps:
        t0 = time.time()
        tab, rates = part2(a.register_reps, a.seed, a.households)
        print(f"\nPart 2: register-level evaluation, {a.register_reps} simulated registers of "
              f"{a.households:,} households ({time.time() - t0:.0f} s)")
        print(tab.to_string(index=False, formatters={k: v.format for k, v in fmt.items()}))
        print("  verdict shares per model:")
        for k, v in rates.items():
            print(f"  {k}: {v}")


if __name__ == "__main__":
    main()
