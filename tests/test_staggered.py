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
