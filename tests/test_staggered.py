"""Callaway–Sant'Anna group-time effects on a simulated staggered panel with planted
heterogeneous, dynamic effects: CS recovers the truth, pre-period placebos are ~0, and
TWFE (the biased comparison) misses it."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from povdyn.errors import EstimationError
from povdyn.staggered import TWFE_LABEL, group_time_att, twfe_event_study

PERIODS = range(1, 11)
COHORTS = {3: 0.25, 5: 0.25, 7: 0.25, 0: 0.25}  # 0 = never treated


def effect(g, e):
    """Planted dynamic effect: grows with time since adoption, larger for early cohorts."""
    return 0.0 if e < 0 else (e + 1) * {3: 1.0, 5: 0.5, 7: 0.25}[g]


def simulate(n_units=800, seed=0):
    rng = np.random.default_rng(seed)
    g = rng.choice(list(COHORTS), size=n_units, p=list(COHORTS.values()))
    commune = rng.integers(0, 120, n_units)
    alpha = rng.normal(size=n_units) + 0.5 * (g == 3)  # levels differ by cohort: fine for DiD
    gamma = {t: 0.3 * t + np.sin(t) for t in PERIODS}
    rows = []
    for i in range(n_units):
        for t in PERIODS:
            e = t - g[i] if g[i] else -99
            y = alpha[i] + gamma[t] + (effect(g[i], e) if g[i] else 0) + rng.normal(scale=1.0)
            rows.append((f"u{i}", t, g[i], y, commune[i]))
    return pd.DataFrame(rows, columns=["unit", "period", "first_treated", "y", "commune"]), g


def true_event_effect(g_units, e):
    """Cohort-size weighted truth over the cohorts observed at event time e."""
    gs = [g for g in (3, 5, 7) if 1 <= g + e <= max(PERIODS) and g - 1 >= 1]
    sizes = np.array([np.sum(g_units == g) for g in gs], float)
    return float(np.dot(sizes / sizes.sum(), [effect(g, e) for g in gs]))


@pytest.fixture(scope="module")
def panel():
    return simulate()


def test_cs_recovers_dynamic_heterogeneous_effects(panel):
    df, g_units = panel
    res = group_time_att(df, "unit", "period", "first_treated", "y", cluster="commune")
    ev = res.event_time.set_index("event_time")
    hits = 0
    for e in range(0, 6):
        truth = true_event_effect(g_units, e)
        assert abs(ev.loc[e, "att"] - truth) < 3.5 * ev.loc[e, "se"], (e, ev.loc[e, "att"], truth)
        hits += ev.loc[e, "ci_low"] <= truth <= ev.loc[e, "ci_high"]
    assert hits >= 5
    # group-time cells against their planted value
    gt = res.att_gt[~res.att_gt.pre]
    z = (gt.att - [effect(g, e) for g, e in zip(gt.cohort, gt.event_time)]) / gt.se
    assert (np.abs(z) < 3.5).all() and np.mean(np.abs(z) < 1.96) > 0.75
    # cohort aggregation: planted average over each cohort's post periods
    for _, row in res.by_cohort.iterrows():
        g = int(row.cohort)
        truth = np.mean([effect(g, t - g) for t in PERIODS if t >= g])
        assert abs(row.att - truth) < 3.5 * row.se


def test_pre_period_placebos_are_zero(panel):
    df, _ = panel
    res = group_time_att(df, "unit", "period", "first_treated", "y")
    pre = res.event_time[res.event_time.placebo]
    assert len(pre) >= 4
    assert (np.abs(pre.att) < 3.5 * pre.se).all()
    assert res.pretrend["p_value"] > 0.001


def test_twfe_is_biased_where_cs_is_not(panel):
    df, g_units = panel
    cs = group_time_att(df, "unit", "period", "first_treated", "y")
    tw = twfe_event_study(df, "unit", "period", "first_treated", "y", window=(-4, 5))
    assert "biased" in tw.label and tw.label == TWFE_LABEL
    truth_overall = np.average(
        [np.mean([effect(g, t - g) for t in PERIODS if t >= g]) for g in (3, 5, 7)],
        weights=[np.sum(g_units == g) for g in (3, 5, 7)])
    assert abs(cs.overall["att"] - truth_overall) < 3.5 * cs.overall["se"]
    # the static TWFE coefficient is far from the planted overall effect
    assert abs(tw.static["coef"] - truth_overall) > 8 * tw.static["se"]


def test_universal_base_and_never_control(panel):
    df, g_units = panel
    res = group_time_att(df, "unit", "period", "first_treated", "y", control="never",
                         base_period="universal")
    ev = res.event_time.set_index("event_time")
    assert -1 not in ev.index  # reference period
    assert abs(ev.loc[2, "att"] - true_event_effect(g_units, 2)) < 3.5 * ev.loc[2, "se"]


def test_hand_computed_2x2():
    """Two units per group, two periods: ATT = difference of mean changes."""
    df = pd.DataFrame({
        "unit": ["a", "a", "b", "b", "c", "c", "d", "d"],
        "period": [1, 2] * 4,
        "g": [2, 2, 2, 2, 0, 0, 0, 0],
        "y": [1.0, 4.0, 2.0, 6.0, 1.0, 2.0, 3.0, 3.0],
    })
    res = group_time_att(df, "unit", "period", "g", "y")
    assert res.att_gt.att.iloc[0] == pytest.approx((3 + 4) / 2 - (1 + 0) / 2)


def test_errors():
    df = pd.DataFrame({"unit": ["a", "a"], "period": [1, 1], "g": [0, 0], "y": [1.0, 2.0]})
    with pytest.raises(EstimationError, match="duplicate"):
        group_time_att(df, "unit", "period", "g", "y")


# --------------------------------------------------------------------------- covariates (issue 14 §2)
def assign_cohort(x1, x2, u):
    """Adoption period 3, 4, 5 or never (0), more likely early for high x1."""
    cut = 1 / (1 + np.exp(-(2.0 * x1 - 0.5 * x2)))
    return np.where(u < 0.3 * cut + 0.05, 3, np.where(u < 0.55 * cut + 0.1, 4, np.where(u < 0.75, 5, 0)))


def simulate_with_covariates(n_units=600, seed=1, periods=range(1, 7)):
    """Adoption depends on x1, x2 and the outcome's trend depends on them too, so
    parallel trends hold only conditionally on x. Planted effect 1 + 0.5 e + 0.5 x1."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n_units)
    x2 = rng.binomial(1, 0.4, n_units)
    g = assign_cohort(x1, x2, rng.uniform(size=n_units))
    commune = rng.integers(0, 60, n_units)
    alpha = rng.normal(size=n_units) + x1
    rows, truth = [], {}
    for i in range(n_units):
        for t in periods:
            e = t - g[i]
            eff = (1 + 0.5 * e + 0.5 * x1[i]) if g[i] and e >= 0 else 0.0
            if eff:
                truth.setdefault((g[i], t), []).append(eff)
            y = alpha[i] + 0.3 * t + (0.8 * x1[i] - 0.3 * x2[i]) * t + eff + rng.normal()
            rows.append((i + 1, t, g[i], y, x1[i], x2[i], commune[i]))
    df = pd.DataFrame(rows, columns=["id", "period", "first_treated", "y", "x1", "x2", "commune"])
    return df, {k: float(np.mean(v)) for k, v in truth.items()}


@pytest.fixture(scope="module")
def covariate_panel():
    return simulate_with_covariates()


@pytest.mark.parametrize("est_method", ["dr", "ipw", "reg"])
def test_parity_with_csdid_with_covariates(covariate_panel, est_method):
    """Every ATT(g,t), its analytic SE and the four aggregations (simple, group,
    dynamic, calendar) with their SEs equal the csdid package (the Python port of R
    `did`) with xformla = y ~ x1 + x2, not-yet-treated comparisons, varying base
    period. Clustered SEs differ only by our G/(G-1) small-sample factor."""
    import warnings

    csdid = pytest.importorskip("csdid.att_gt")
    df, _ = covariate_panel
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = csdid.ATTgt(yname="y", tname="period", idname="id", gname="first_treated", data=df,
                          control_group="notyettreated", xformla="y ~ x1 + x2").fit(
            est_method=est_method, base_period="varying", bstrap=False)
        r = ref.results
        ref_gt = pd.DataFrame({"cohort": r["group"], "period": r["year"], "att_ref": r["att"], "se_ref": r["se"]})
        ours = group_time_att(df, "id", "period", "first_treated", "y", covariates=["x1", "x2"],
                              est_method=est_method)
        both = ours.att_gt.merge(ref_gt, on=["cohort", "period"], how="outer", validate="one_to_one")
        assert len(both) == len(ours.att_gt) == len(ref_gt) == 15
        assert np.allclose(both.att, both.att_ref, atol=1e-10)
        assert np.allclose(both.se, both.se_ref, rtol=1e-9)
        for kind in ("simple", "group", "dynamic", "calendar"):
            ref.aggte(typec=kind, bstrap=False)
            assert ours.aggregates[kind]["att"] == pytest.approx(ref.atte["overall_att"], abs=1e-10), kind
            assert ours.aggregates[kind]["se"] == pytest.approx(ref.atte["overall_se"], rel=1e-9), kind
        ref.aggte(typec="dynamic", bstrap=False)
        assert np.allclose(ours.event_time.att, ref.atte["att_egt"], atol=1e-10)
        assert np.allclose(ours.event_time.se, ref.atte["se_egt"], rtol=1e-9)
        ref.aggte(typec="calendar", bstrap=False)
        assert np.allclose(ours.calendar.att, ref.atte["att_egt"], atol=1e-10)
        if est_method == "dr":
            clustered = csdid.ATTgt(yname="y", tname="period", idname="id", gname="first_treated", data=df,
                                    control_group="notyettreated", xformla="y ~ x1 + x2",
                                    clustervar="commune").fit(est_method="dr", bstrap=False)
            ours_c = group_time_att(df, "id", "period", "first_treated", "y", covariates=["x1", "x2"],
                                    cluster="commune")
            G = df.commune.nunique()
            assert np.allclose(ours_c.att_gt.se * np.sqrt((G - 1) / G), clustered.results["se"], rtol=1e-9)


def test_covariates_recover_planted_effects_where_unconditional_fails(covariate_panel):
    """Adoption and trends both depend on x: the unconditional DiD is biased, DR-DiD
    with the covariates recovers the planted ATT(g,t) (default est_method with
    covariates is 'dr')."""
    df, truth = covariate_panel
    dr = group_time_att(df, "id", "period", "first_treated", "y", covariates=["x1", "x2"])
    plain = group_time_att(df, "id", "period", "first_treated", "y")
    assert dr.est_method == "dr" and plain.est_method == "unconditional"
    post = dr.att_gt[dr.att_gt.post].set_index(["cohort", "period"])
    z = np.array([(post.loc[k, "att"] - v) / post.loc[k, "se"] for k, v in truth.items()])
    assert np.mean(np.abs(z) < 1.96) >= 0.8 and np.abs(z).max() < 4
    pre_plain = plain.att_gt[plain.att_gt.pre]
    assert plain.pretrend["p_value"] < 0.01 < dr.pretrend["p_value"]  # x-driven trends show up as pre-trends
    assert pre_plain.att.abs().mean() > 2 * dr.att_gt[dr.att_gt.pre].att.abs().mean()


def test_anticipation_and_uniform_band():
    """A planted anticipation effect one period before adoption biases the no-anticipation
    estimates (it sits in the base period); anticipation=1 compares with g - 2 and
    recovers the planted effects. The multiplier-bootstrap band is wider than the
    pointwise intervals and covers the planted event-study path."""
    rng = np.random.default_rng(3)
    n, periods = 900, range(1, 9)
    g = rng.choice([4, 6, 0], n)
    rows = []
    for i in range(n):
        a_i = rng.normal()
        for t in periods:
            e = t - g[i] if g[i] else -99
            eff = 0.6 if e == -1 else (1.0 + 0.3 * e if e >= 0 else 0.0)
            rows.append((i, t, g[i], a_i + 0.2 * t + eff + rng.normal()))
    df = pd.DataFrame(rows, columns=["id", "period", "g", "y"])
    naive = group_time_att(df, "id", "period", "g", "y")
    ant = group_time_att(df, "id", "period", "g", "y", anticipation=1, n_boot=999, seed=1)
    ev_n, ev_a = naive.event_time.set_index("event_time"), ant.event_time.set_index("event_time")
    assert abs(ev_n.loc[0, "att"] - 1.0) > 0.4  # anticipation in the base period
    for e in range(0, 3):
        assert abs(ev_a.loc[e, "att"] - (1.0 + 0.3 * e)) < 3 * ev_a.loc[e, "se"]
    assert abs(ev_a.loc[-1, "att"] - 0.6) < 3 * ev_a.loc[-1, "se"] and not ev_a.loc[-1, "placebo"]
    assert ant.uniform_critical_value > 1.96
    assert ((ev_a.cb_high - ev_a.cb_low) > (ev_a.ci_high - ev_a.ci_low)).all()
    planted = {e: (0.6 if e == -1 else (1.0 + 0.3 * e if e >= 0 else 0.0)) for e in ev_a.index}
    assert all(ev_a.loc[e, "cb_low"] <= v <= ev_a.loc[e, "cb_high"] for e, v in planted.items())
