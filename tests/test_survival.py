"""Survival and hazard (methods.md, "Survival and hazard").

Truth comes from: hand-made panels whose spell tables and Kaplan–Meier values are worked
out by hand below; the Rossi recidivism data shipped in lifelines with the published Cox
estimates (Fox & Weisberg, R coxph, Efron ties); lifelines' KaplanMeierFitter and
CoxPHFitter; statsmodels GLMs fitted directly on an independently built person-period
file; a hand-written cluster sandwich; and a planted-truth discrete-time simulation.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.datasets import load_rossi

from povdyn.errors import EstimationError, SchemaError
from povdyn.survival import (
    _cox_score_residuals,
    exit_spells,
    hazard_model,
    kaplan_meier,
    person_period,
    poverty_spells,
    survival_after_exit,
)

ROSSI_COVARIATES = ["fin", "age", "race", "wexp", "mar", "paro", "prio"]
Z = 1.959963984540054


# --------------------------------------------------------------------------- hand panel
def hand_panel() -> pd.DataFrame:
    """Annual panel 2019–2024 (the panel's last period is 2024).

    H1 exits 2020, relapses 2022, exits again 2023 (two exit spells);
    H2 exits 2020, then a gap (no 2022 row) censors the spell; poor in 2023 right after
    the gap (left-censored poverty spell), exits 2024 (never followed); H3 first seen 2020, exits 2021, removed (death)
    2022; H4 non-poor, enters poverty 2020, exits 2023; H5 exits 2020, relapses 2021,
    exits 2022; H6 poor throughout; H7 exits 2020 and is never seen again."""
    P, N, NP = "poor", "near_poor", "non_poor"
    hist = {
        "H1": {2019: P, 2020: NP, 2021: NP, 2022: P, 2023: N, 2024: N},
        "H2": {2019: P, 2020: N, 2021: N, 2023: P, 2024: NP},
        "H3": {2020: P, 2021: NP, 2022: None},
        "H4": {2019: NP, 2020: P, 2021: P, 2022: P, 2023: NP, 2024: NP},
        "H5": {2019: P, 2020: NP, 2021: P, 2022: NP, 2023: NP, 2024: NP},
        "H6": {y: P for y in range(2019, 2025)},
        "H7": {2019: P, 2020: NP},
    }
    rows = []
    for hh, h in hist.items():
        for year, status in h.items():
            rows.append(
                {
                    "household_id": hh,
                    "period": year,
                    "status": status,
                    "removal_reason": "death" if (hh == "H3" and year == 2022) else None,
                    "area": "urban" if hh in ("H1", "H2", "H3") else "rural",
                }
            )
    # shuffle rows: spells must not depend on row order
    return pd.DataFrame(rows).sample(frac=1.0, random_state=3).reset_index(drop=True)


EXPECTED_EXIT_SPELLS = [
    # household, start, start_status, duration, event, censor_reason
    ("H1", 2020, "non_poor", 2, 1, None),
    ("H1", 2023, "near_poor", 1, 0, "end_of_panel"),
    ("H2", 2020, "near_poor", 1, 0, "gap"),
    ("H2", 2024, "non_poor", 0, 0, "end_of_panel"),
    ("H3", 2021, "non_poor", 0, 0, "removed"),
    ("H4", 2023, "non_poor", 1, 0, "end_of_panel"),
    ("H5", 2020, "non_poor", 1, 1, None),
    ("H5", 2022, "non_poor", 2, 0, "end_of_panel"),
    ("H7", 2020, "non_poor", 0, 0, "not_observed"),
]

EXPECTED_POVERTY_SPELLS = [
    # household, start, duration, event, left_censored, end_status
    ("H1", 2019, 1, 1, True, "non_poor"),
    ("H1", 2022, 1, 1, False, "near_poor"),
    ("H2", 2019, 1, 1, True, "near_poor"),
    ("H2", 2023, 1, 1, True, "non_poor"),  # poor right after a gap: start unknown
    ("H3", 2020, 1, 1, True, "non_poor"),  # first row of the household
    ("H4", 2020, 3, 1, False, "non_poor"),
    ("H5", 2019, 1, 1, True, "non_poor"),
    ("H5", 2021, 1, 1, False, "non_poor"),
    ("H6", 2019, 5, 0, True, None),
    ("H7", 2019, 1, 1, True, "non_poor"),
]


def test_exit_spells_hand_panel():
    spells = exit_spells(hand_panel())
    got = [
        (r.household_id, r.start_period, r.start_status, r.duration, r.event, r.censor_reason)
        for r in spells.itertuples()
    ]
    assert got == EXPECTED_EXIT_SPELLS
    assert spells.loc[spells.household_id == "H3", "removal_reason"].tolist() == ["death"]
    assert spells.loc[spells.household_id == "H1", "spell_number"].tolist() == [1, 2]
    assert not spells["left_censored"].any()
    # the relapse is seen in 2022, two periods after the 2020 exit
    h1 = spells.iloc[0]
    assert h1.last_period_in_state == 2021 and h1.end_status == "poor"


def test_poverty_spells_hand_panel():
    spells = poverty_spells(hand_panel())
    got = [
        (r.household_id, r.start_period, r.duration, r.event, r.left_censored, r.end_status)
        for r in spells.itertuples()
    ]
    assert got == EXPECTED_POVERTY_SPELLS


def test_survival_after_exit_hand_km():
    # exit spells (duration, event): (2,1) (1,0) (1,0) (0,0) (0,0) (1,0) (1,1) (2,0) (0,0)
    # t=0: at risk 9, 0 events, 3 censored, S=1
    # t=1: at risk 6, 1 event, 3 censored, S=5/6, Greenwood sum 1/(6*5)
    # t=2: at risk 2, 1 event, 1 censored, S=5/12, Greenwood sum 1/30 + 1/(2*1)
    # H1 has two spells: the default interval is household-clustered; Greenwood on request
    assert survival_after_exit(hand_panel()).attrs["ci"] == "cluster"
    km = survival_after_exit(hand_panel(), ci="greenwood")
    assert list(km.columns) == ["kind", "time", "at_risk", "events", "censored", "survival", "se", "ci_low", "ci_high"]
    assert km["time"].tolist() == [0, 1, 2]
    assert km["at_risk"].tolist() == [9, 6, 2]
    assert km["events"].tolist() == [0, 1, 1]
    assert km["censored"].tolist() == [3, 3, 1]
    np.testing.assert_allclose(km["survival"], [1.0, 5 / 6, 5 / 12], rtol=1e-12)
    g1, g2 = 1 / 30, 1 / 30 + 1 / 2
    np.testing.assert_allclose(km["se"], [0.0, 5 / 6 * math.sqrt(g1), 5 / 12 * math.sqrt(g2)], rtol=1e-12)
    for s, g, lo, hi in [(5 / 6, g1, km.ci_low[1], km.ci_high[1]), (5 / 12, g2, km.ci_low[2], km.ci_high[2])]:
        theta, se_t = math.log(-math.log(s)), math.sqrt(g) / abs(math.log(s))
        assert lo == pytest.approx(math.exp(-math.exp(theta + Z * se_t)), rel=1e-9)
        assert hi == pytest.approx(math.exp(-math.exp(theta - Z * se_t)), rel=1e-9)
    assert (km.ci_low[0], km.ci_high[0]) == (1.0, 1.0)
    assert km.attrs["time_unit"] == "year"
    assert (km.attrs["spells"], km.attrs["households"]) == (9, 6)  # H6 never exits


def test_survival_in_poverty_with_and_without_left_censored():
    with_lc = survival_after_exit(hand_panel(), kind="exit")
    # all 10 spells: t1 n=10, 8 exits -> 1/5; t3 n=2, 1 exit -> 1/10; t5 n=1 censored
    assert with_lc["time"].tolist() == [1, 3, 5]
    assert with_lc["at_risk"].tolist() == [10, 2, 1]
    assert with_lc["censored"].tolist() == [0, 0, 1]
    np.testing.assert_allclose(with_lc["survival"], [1 / 5, 1 / 10, 1 / 10])
    known = survival_after_exit(hand_panel(), kind="exit", include_left_censored=False)
    # known starts: (1,1) (3,1) (1,1): t1 n=3, 2 exits -> 1/3; t3 n=1, 1 exit -> 0
    assert known["at_risk"].tolist() == [3, 1]
    np.testing.assert_allclose(known["survival"], [1 / 3, 0.0])
    assert known["ci_low"].isna().iloc[-1]  # S = 0: log(-log) interval undefined


def test_survival_by_group_uses_value_at_spell_start():
    km = survival_after_exit(hand_panel(), by="area")
    urban = km[km.area == "urban"]  # H1 (2,1) (1,0); H2 (1,0) (0,0); H3 (0,0)
    assert urban["at_risk"].tolist() == [5, 3, 1]
    np.testing.assert_allclose(urban["survival"], [1, 1, 0])
    rural = km[km.area == "rural"]  # H4 (1,0); H5 (1,1) (2,0); H7 (0,0)
    assert rural["at_risk"].tolist() == [4, 3, 1]
    np.testing.assert_allclose(rural["survival"], [1, 2 / 3, 2 / 3])
    assert list(km.columns[:2]) == ["area", "kind"]


def test_quarterly_periods_cross_year_boundary_and_gap():
    df = pd.DataFrame(
        {
            "household_id": ["A"] * 4 + ["B"] * 4,
            "period": ["2024Q3", "2024Q4", "2025Q1", "2025Q2", "2024Q3", "2024Q4", "2025Q2", "2025Q3"],
            "status": ["poor", "poor", "non_poor", "poor", "poor", "near_poor", "near_poor", "near_poor"],
        }
    )
    spells = exit_spells(df)
    a = spells[spells.household_id == "A"].iloc[0]
    assert (a.start_period, a.duration, a.event) == ("2025Q1", 1, 1)
    b = spells[spells.household_id == "B"].iloc[0]  # 2025Q1 missing: censored at the gap
    assert (b.start_period, b.duration, b.event, b.censor_reason) == ("2024Q4", 0, 0, "gap")


def test_accepts_panel_object_and_path(tmp_path):
    df = hand_panel()

    class FakePanel:  # what povdyn.panel.Panel offers: .frequency and .to_pandas()
        frequency = "year"

        def to_pandas(self):
            return df.assign(period_index=df["period"].astype("int64"))

    expected = survival_after_exit(df)
    pd.testing.assert_frame_equal(survival_after_exit(FakePanel()), expected)
    path = tmp_path / "panel.parquet"
    df.assign(province="Hà Giang").to_parquet(path)  # read through povdyn.load_panel
    pd.testing.assert_frame_equal(survival_after_exit(str(path)), expected)


def test_list_based_register_and_annual_view():
    # list-based register (only poor / near-poor listed): L1 poor 2020, unlisted 2021-22,
    # poor 2023; L2 poor 2020, removed 2021; L3 near-poor 2020, poor 2021, unlisted after;
    # L4 poor every year (keeps every list period present).
    rows = [("L1", 2020, "poor", None), ("L1", 2023, "poor", None), ("L2", 2020, "poor", None),
            ("L2", 2021, None, "death"), ("L3", 2020, "near_poor", None), ("L3", 2021, "poor", None)]
    rows += [("L4", y, "poor", None) for y in range(2020, 2025)]
    lists = pd.DataFrame(rows, columns=["household_id", "period", "status", "removal_reason"]).assign(province="Lào Cai")
    as_lists = exit_spells(lists, absent_means="non_poor")
    got = [(r.household_id, r.start_period, r.duration, r.event, r.censor_reason) for r in as_lists.itertuples()]
    # L1: out 2021, 2022, poor again 2023 -> relapse after 2; unlisted 2024 -> exit never
    # followed; L3: out 2022-2024 -> censored at 2; L2's removal is attrition, not an exit
    assert got == [("L1", 2021, 2, 1, None), ("L1", 2024, 0, 0, "end_of_panel"), ("L3", 2022, 2, 0, "end_of_panel")]
    assert exit_spells(lists).empty  # read as a full panel, absence is unknown: no exit seen

    # quarterly panel read annually (each year's Q4 snapshot)
    q = [f"{y}Q{k}" for y in (2023, 2024) for k in (1, 2, 3, 4)]
    hist = {"Q1": ["poor"] * 4 + ["non_poor"] * 3 + ["poor"], "Q3": ["poor"] * 4 + ["non_poor"] * 4}
    quarterly = pd.DataFrame(
        [(h, p, s) for h, sts in hist.items() for p, s in zip(q, sts)], columns=["household_id", "period", "status"]
    ).assign(province="Lào Cai")
    by_quarter = exit_spells(quarterly)
    assert [(r.household_id, r.start_period, r.duration, r.event) for r in by_quarter.itertuples()] == [
        ("Q1", "2024Q1", 3, 1), ("Q3", "2024Q1", 3, 0)]
    by_year = exit_spells(quarterly, frequency="year")  # Q1 is poor at both Q4s: no annual exit
    assert [(r.household_id, r.start_period, r.duration, r.event) for r in by_year.itertuples()] == [("Q3", 2024, 0, 0)]
    km = survival_after_exit(quarterly, frequency="year")
    assert km.attrs["time_unit"] == "year" and km["at_risk"].tolist() == [1]


def test_bad_panels_raise_clear_errors():
    df = hand_panel()
    with pytest.raises(SchemaError, match="status.*'rich'"):
        exit_spells(df.assign(status=df["status"].where(df.index != 0, "rich")))
    with pytest.raises(SchemaError, match="repeat a household-period"):
        exit_spells(pd.concat([df, df.iloc[[0]]]))
    with pytest.raises(SchemaError, match="commune"):
        survival_after_exit(df, by="commune")
    with pytest.raises(EstimationError, match="kind"):
        survival_after_exit(df, kind="death")


def test_cluster_bootstrap_interval_brackets_estimate():
    df = hand_panel()
    big = pd.concat([df.assign(household_id=df.household_id + f"_{i}") for i in range(30)], ignore_index=True)
    g = survival_after_exit(big)
    b = survival_after_exit(big, ci="cluster_bootstrap", n_boot=300, seed=1)
    pd.testing.assert_series_equal(g["survival"], b["survival"])
    at1 = b[b.time == 1].iloc[0]
    assert at1.ci_low < at1.survival < at1.ci_high
    # 8 spells from 6 households per copy: households with two spells make the
    # household bootstrap SE differ from Greenwood, but of the same order
    assert 0.5 < at1.se / g[g.time == 1].se.iloc[0] < 2.0


def random_panel(n_households=300, seed=5) -> pd.DataFrame:
    """Markov-chain statuses over 2016-2025 with late entry, early exit from the register,
    random gaps and removal rows."""
    rng = np.random.default_rng(seed)
    states = np.array(["poor", "near_poor", "non_poor"])
    move = np.array([[0.6, 0.25, 0.15], [0.2, 0.5, 0.3], [0.1, 0.2, 0.7]])
    rows = []
    for h in range(n_households):
        first, last = sorted(rng.integers(2016, 2026, size=2))
        state = rng.integers(0, 3)
        for year in range(first, last + 1):
            if rng.uniform() > 0.12:  # about one row in eight missing: gaps
                rows.append((f"R{h:04d}", year, states[state], None))
            state = rng.choice(3, p=move[state])
        if last < 2025 and rng.uniform() < 0.3:
            rows.append((f"R{h:04d}", last + 1, None, "migration"))
    return pd.DataFrame(rows, columns=["household_id", "period", "status", "removal_reason"])


def reference_spells(df: pd.DataFrame, poor_spells: bool) -> list[tuple]:
    """Deliberately slow: walk each household's periods one by one."""
    out = []
    for hh, g in df.groupby("household_id"):
        status = {int(p): s for p, s in zip(g["period"], g["status"]) if s is not None}
        for t in sorted(status):
            before = status.get(t - 1)
            if poor_spells:
                starts = status[t] == "poor" and before != "poor"
            else:
                starts = status[t] != "poor" and before == "poor"
            if not starts:
                continue
            d, event = 0, 0
            while True:
                nxt = status.get(t + d + 1)
                if nxt is None:
                    break
                d += 1
                if (nxt == "poor") != poor_spells:
                    event = 1
                    break
            out.append((hh, t, d, event, poor_spells and before is None))
    return sorted(out)


@pytest.mark.parametrize("seed", [5, 6])
def test_spells_match_slow_reference_on_random_panels(seed):
    df = random_panel(seed=seed)
    for poor, fn in ((False, exit_spells), (True, poverty_spells)):
        spells = fn(df.sample(frac=1.0, random_state=seed))
        got = sorted(
            (r.household_id, r.start_period, r.duration, r.event, bool(r.left_censored)) for r in spells.itertuples()
        )
        assert got == reference_spells(df, poor)


def test_survival_at_one_period_is_one_minus_relapse_share():
    # independent pandas: exits at t (poor t-1, not poor t) observed at t+1; relapse = poor at t+1
    df = random_panel(n_households=600, seed=9)
    obs = df[df["status"].notna()]
    prev = obs.assign(period=obs["period"] + 1)[["household_id", "period", "status"]]
    nxt = obs.assign(period=obs["period"] - 1)[["household_id", "period", "status"]]
    pairs = obs.merge(prev, on=["household_id", "period"], suffixes=("", "_prev"))
    exits = pairs[(pairs["status_prev"] == "poor") & (pairs["status"] != "poor")]
    followed = exits.merge(nxt, on=["household_id", "period"], suffixes=("", "_next"))
    share = (followed["status_next"] == "poor").mean()
    km = survival_after_exit(df)
    row = km[km["time"] == 1].iloc[0]
    assert row["at_risk"] == len(followed)
    assert row["events"] == int((followed["status_next"] == "poor").sum())
    assert row["survival"] == pytest.approx(1 - share, rel=1e-12)
    assert km[km["time"] == 0]["at_risk"].iloc[0] == len(exits)


def test_household_bootstrap_agrees_with_greenwood_for_independent_spells():
    # one spell per household: Greenwood is the right variance, so the household
    # bootstrap SE should agree with it up to Monte Carlo error (400 replicates)
    rng = np.random.default_rng(4)
    n = 2000
    duration = rng.geometric(0.25, size=n)
    censor = rng.integers(1, 9, size=n)
    event = (duration <= censor).astype(int)
    time = np.minimum(duration, censor)
    g = kaplan_meier(time, event)
    b = kaplan_meier(time, event, ci="cluster_bootstrap", cluster=np.arange(n), n_boot=400, seed=2)
    early = g["time"] <= 5
    np.testing.assert_allclose(b.loc[early, "se"], g.loc[early, "se"], rtol=0.15)
    assert (b.loc[early, "ci_low"] < g.loc[early, "survival"]).all()
    assert (b.loc[early, "ci_high"] > g.loc[early, "survival"]).all()


# --------------------------------------------------------------------------- Kaplan–Meier
def test_kaplan_meier_six_observations_with_ties():
    # durations 1 2 2 3 3 4, events 1 1 0 1 1 0
    # t1: n6 d1 -> 5/6; t2: n5 d1 c1 -> 2/3; t3: n3 d2 -> 2/9; t4: n1 c1 -> 2/9
    km = kaplan_meier([1, 2, 2, 3, 3, 4], [1, 1, 0, 1, 1, 0])
    assert km["at_risk"].tolist() == [6, 5, 3, 1]
    assert km["events"].tolist() == [1, 1, 2, 0]
    assert km["censored"].tolist() == [0, 1, 0, 1]
    np.testing.assert_allclose(km["survival"], [5 / 6, 2 / 3, 2 / 9, 2 / 9])
    greenwood = np.array([1 / 30, 1 / 12, 3 / 4, 3 / 4])
    np.testing.assert_allclose(km["se"], km["survival"] * np.sqrt(greenwood))
    kmf = KaplanMeierFitter().fit([1, 2, 2, 3, 3, 4], [1, 1, 0, 1, 1, 0])
    ci = kmf.confidence_interval_.loc[km["time"]]
    np.testing.assert_allclose(km["ci_low"], ci.iloc[:, 0], rtol=1e-10)
    np.testing.assert_allclose(km["ci_high"], ci.iloc[:, 1], rtol=1e-10)


def test_kaplan_meier_matches_lifelines_on_rossi():
    rossi = load_rossi()
    km = kaplan_meier(rossi["week"], rossi["arrest"])
    kmf = KaplanMeierFitter().fit(rossi["week"], rossi["arrest"])
    np.testing.assert_allclose(km["survival"], kmf.survival_function_.loc[km["time"]].iloc[:, 0], rtol=1e-12)
    ci = kmf.confidence_interval_.loc[km["time"]]
    np.testing.assert_allclose(km["ci_low"], ci.iloc[:, 0], rtol=1e-10)
    np.testing.assert_allclose(km["ci_high"], ci.iloc[:, 1], rtol=1e-10)
    assert km["survival"].iloc[-1] == pytest.approx(1 - 114 / 432)  # nobody censored before week 52


# --------------------------------------------------------------------------- Cox
PUBLISHED_COEF = {"fin": -0.3794, "age": -0.0574, "race": 0.3139, "wexp": -0.1498, "mar": -0.4337, "paro": -0.0849, "prio": 0.0915}
PUBLISHED_SE = {"fin": 0.1914, "age": 0.0220, "race": 0.3080, "wexp": 0.2121, "mar": 0.3819, "paro": 0.1958, "prio": 0.0286}


def test_cox_matches_published_rossi_and_lifelines():
    rossi = load_rossi()
    res = hazard_model(rossi, "week", "arrest", ROSSI_COVARIATES, kind="cox")
    for c in ROSSI_COVARIATES:
        assert res.params[c] == pytest.approx(PUBLISHED_COEF[c], abs=6e-4), c
        assert res.bse[c] == pytest.approx(PUBLISHED_SE[c], abs=6e-4), c
    cph = CoxPHFitter().fit(rossi, "week", "arrest")
    np.testing.assert_allclose(res.params[ROSSI_COVARIATES], cph.params_[ROSSI_COVARIATES], atol=1e-6)
    np.testing.assert_allclose(res.bse[ROSSI_COVARIATES], cph.standard_errors_[ROSSI_COVARIATES], atol=1e-6)
    assert (res.n, res.events, res.kind) == (432, 114, "cox")
    s = res.summary
    assert list(s.columns) == ["coef", "se", "z", "p", "ci_low", "ci_high", "exp_coef", "exp_ci_low", "exp_ci_high"]
    assert s.loc["prio", "exp_coef"] == pytest.approx(math.exp(PUBLISHED_COEF["prio"]), abs=1e-3)
    assert s.loc["fin", "p"] == pytest.approx(cph.summary.loc["fin", "p"], rel=1e-4)


def test_cox_cluster_robust_matches_lifelines_without_ties():
    # lifelines' score residuals ignore ties, so compare on untied (jittered) times
    rossi = load_rossi()
    rng = np.random.default_rng(1)
    rossi["week"] = rossi["week"] + rng.uniform(-0.4, 0.4, len(rossi))
    rossi["grp"] = np.arange(len(rossi)) % 50
    res = hazard_model(rossi, "week", "arrest", ROSSI_COVARIATES, kind="cox", cluster="grp")
    cph = CoxPHFitter().fit(rossi, "week", "arrest", cluster_col="grp")
    np.testing.assert_allclose(res.bse[ROSSI_COVARIATES], cph.standard_errors_[ROSSI_COVARIATES], rtol=1e-6)
    assert res.cov_type == "cluster:grp"


def test_cox_score_residuals_with_ties():
    from statsmodels.duration.hazard_regression import PHReg

    rossi = load_rossi()
    X = rossi[ROSSI_COVARIATES].to_numpy(float)
    t, e = rossi["week"].to_numpy(float), rossi["arrest"].to_numpy(float)
    beta = np.linspace(-0.1, 0.1, X.shape[1])  # any beta, not only the MLE
    # Breslow: unit by unit equal to statsmodels' score residuals
    breslow = PHReg(t, X, status=e, ties="breslow")
    np.testing.assert_allclose(_cox_score_residuals(t, e, X, beta, "breslow"), breslow.score_residuals(beta), atol=1e-10)
    # Efron: they add up to the gradient of the Efron partial likelihood
    efron = PHReg(t, X, status=e, ties="efron")
    np.testing.assert_allclose(_cox_score_residuals(t, e, X, beta, "efron").sum(axis=0), efron.score(beta), rtol=1e-9)


# --------------------------------------------------------------------------- discrete time
def _rossi_person_weeks(rossi: pd.DataFrame) -> pd.DataFrame:
    """Person-week file built row by row (independent of person_period)."""
    ids, weeks, ys = [], [], []
    for i, (week, arrest) in enumerate(zip(rossi["week"], rossi["arrest"])):
        for w in range(1, int(week) + 1):
            ids.append(i)
            weeks.append(w)
            ys.append(int(w == week and arrest == 1))
    out = pd.DataFrame({"id": ids, "week": weeks, "y": ys})
    return out.join(rossi[ROSSI_COVARIATES].reset_index(drop=True), on="id")


@pytest.fixture(scope="module")
def rossi_cloglog_direct():
    """povdyn's weekly cloglog fit on Rossi, and a statsmodels GLM fitted directly on a
    person-week file built above. Weeks 29, 41 and 51 have no arrest: with their own
    dummy the MLE of that dummy is -inf and their person-weeks add nothing, so the direct
    fit leaves those person-weeks out (test_event_free_periods_are_the_limit checks that
    this equals the full-dummy fit)."""
    rossi = load_rossi()
    pw = _rossi_person_weeks(rossi)
    pw = pw[~pw["week"].isin([29, 41, 51])].reset_index(drop=True)
    X = pd.concat([pd.get_dummies(pw["week"], prefix="w", dtype=float), pw[ROSSI_COVARIATES].astype(float)], axis=1)
    family = sm.families.Binomial(link=sm.families.links.CLogLog())
    direct = sm.GLM(pw["y"], X, family=family).fit(cov_type="cluster", cov_kwds={"groups": pw["id"]})
    ours = hazard_model(rossi, "week", "arrest", ROSSI_COVARIATES, kind="cloglog")
    return rossi, pw, direct, ours


def test_person_period_expansion():
    df = pd.DataFrame({"d": [2, 0, 3], "e": [1, 1, 0], "x": [10, 20, 30]})
    pp = person_period(df, "d", "e")
    assert pp["unit"].tolist() == [0, 0, 2, 2, 2]
    assert pp["time"].tolist() == [1, 2, 1, 2, 3]
    assert pp["e"].tolist() == [0, 1, 0, 0, 0]
    assert pp["x"].tolist() == [10, 10, 30, 30, 30]
    with_id = person_period(df.assign(hh=["a", "b", "c"]), "d", "e", id_col="hh", time_col="t")
    assert with_id["hh"].tolist() == ["a", "a", "c", "c", "c"] and with_id["t"].tolist() == [1, 2, 1, 2, 3]
    rossi = load_rossi()
    assert len(person_period(rossi, "week", "arrest")) == rossi["week"].sum()
    with pytest.raises(EstimationError, match="whole numbers"):
        person_period(df.assign(d=[1.5, 0, 3]), "d", "e")


def test_cloglog_equals_direct_glm_on_rossi(rossi_cloglog_direct):
    rossi, pw, direct, res = rossi_cloglog_direct
    np.testing.assert_allclose(res.params[ROSSI_COVARIATES], direct.params[ROSSI_COVARIATES], atol=1e-8)
    np.testing.assert_allclose(res.bse[ROSSI_COVARIATES], direct.bse[ROSSI_COVARIATES], rtol=1e-6)
    np.testing.assert_allclose(res.baseline.to_numpy(), direct.params.iloc[:49].to_numpy(), atol=1e-6)
    assert res.dropped_times == [29, 41, 51]
    # 19,809 person-weeks minus those at weeks 29, 41, 51 (everyone still at risk then)
    weeks = rossi["week"]
    assert res.n_person_periods == len(pw) == weeks.sum() - sum(int((weeks >= w).sum()) for w in (29, 41, 51))
    assert (res.n, res.events, res.cov_type) == (432, 114, "cluster:unit")


def test_event_free_periods_are_the_limit():
    # a period without events: a full set of period dummies (direct statsmodels fit, that
    # dummy diverging) gives the same covariate estimates as dropping that period's rows
    df = simulate_discrete(400, [0.5, -0.7], [0.10, 0.15, 0.12, 0.10], seed=3)
    df.loc[df["duration"] == 3, "event"] = 0  # no event in period 3
    pp = person_period(df, "duration", "event")
    X = pd.concat([pd.get_dummies(pp["time"], prefix="t", dtype=float), pp[["x1", "x2"]]], axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the period-3 dummy runs off to -inf
        full = sm.GLM(pp["event"], X, family=sm.families.Binomial(link=sm.families.links.CLogLog())).fit()
    res = hazard_model(df, "duration", "event", ["x1", "x2"], kind="cloglog")
    assert res.dropped_times == [3]
    assert full.params["t_3"] < -15
    np.testing.assert_allclose(res.params, full.params[["x1", "x2"]], atol=1e-6)


def test_cloglog_close_to_cox_on_rossi(rossi_cloglog_direct):
    # weekly grouped-time PH model vs continuous-time Cox (Efron): same coefficients up
    # to the grouping approximation; tolerance 0.005 (< 3% of any SE)
    rossi, _, _, cll = rossi_cloglog_direct
    cox = hazard_model(rossi, "week", "arrest", ROSSI_COVARIATES, kind="cox")
    np.testing.assert_allclose(cll.params, cox.params, atol=5e-3)
    for baseline in ("linear", "spline"):
        other = hazard_model(rossi, "week", "arrest", ROSSI_COVARIATES, kind="cloglog", baseline=baseline)
        np.testing.assert_allclose(other.params, cox.params, atol=0.02)


def _sandwich_cluster_se(y, X, beta, groups, link_kind):
    """Cluster-robust SE of a binomial GLM written out: bread = observed information
    (as statsmodels' GLM sandwich), meat = sum over clusters of summed scores,
    statsmodels' small-sample factor G/(G-1) (N-1)/(N-K)."""
    eta = X @ beta
    if link_kind == "cloglog":
        # l = y log(1 - exp(-u)) - (1 - y) u with u = exp(eta)
        u = np.exp(eta)
        em1 = np.expm1(u)
        d1 = y * u / em1 - (1 - y) * u
        d2 = y * (u / em1 - u**2 * np.exp(u) / em1**2) - (1 - y) * u
    else:
        mu = 1 / (1 + np.exp(-eta))
        d1 = y - mu
        d2 = -mu * (1 - mu)
    score = d1[:, None] * X
    info = (X * (-d2)[:, None]).T @ X
    codes = pd.factorize(groups)[0]
    summed = np.zeros((codes.max() + 1, X.shape[1]))
    np.add.at(summed, codes, score)
    G, N, K = summed.shape[0], X.shape[0], X.shape[1]
    bread = np.linalg.inv(info)
    cov = bread @ (summed.T @ summed) @ bread * (G / (G - 1)) * ((N - 1) / (N - K))
    return np.sqrt(np.diag(cov))


def simulate_discrete(n, beta, base_hazard, seed, link_kind="cloglog"):
    """Durations from a known discrete-time hazard h(t|x) = F(alpha_t + x beta),
    with random right-censoring; households of 3 spells share a cluster id."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.binomial(1, 0.4, size=n)
    X = np.column_stack([x1, x2])
    alpha = np.log(-np.log(1 - np.asarray(base_hazard))) if link_kind == "cloglog" else np.log(np.asarray(base_hazard) / (1 - np.asarray(base_hazard)))
    T = len(base_hazard)
    censor = rng.integers(1, T + 1, size=n)  # last period observed
    duration = np.full(n, 0)
    event = np.zeros(n, dtype=int)
    alive = np.ones(n, dtype=bool)
    for t in range(1, T + 1):
        eta = alpha[t - 1] + X @ np.asarray(beta)
        h = 1 - np.exp(-np.exp(eta)) if link_kind == "cloglog" else 1 / (1 + np.exp(-eta))
        at_risk = alive & (censor >= t)
        happens = at_risk & (rng.uniform(size=n) < h)
        duration[at_risk] = t
        event[happens] = 1
        alive &= ~happens
    return pd.DataFrame({"duration": duration, "event": event, "x1": x1, "x2": x2, "household": np.arange(n) // 3})


@pytest.mark.parametrize("link_kind", ["cloglog", "logit"])
def test_discrete_hazard_recovers_planted_coefficients(link_kind):
    beta = {"x1": 0.5, "x2": -0.7}
    df = simulate_discrete(3000, list(beta.values()), [0.10, 0.15, 0.12, 0.10, 0.08, 0.08], seed=11, link_kind=link_kind)
    res = hazard_model(df, "duration", "event", ["x1", "x2"], kind=link_kind, cluster="household")
    for c, b in beta.items():
        assert abs(res.params[c] - b) < 2 * res.bse[c], (c, res.params[c], res.bse[c])
    assert res.cov_type == "cluster:household"
    # cluster-robust SEs equal the sandwich written out by hand on the person-period file
    pp = person_period(df, "duration", "event")
    D = pd.get_dummies(pp["time"], prefix="t", dtype=float)
    X = np.column_stack([D.to_numpy(), pp[["x1", "x2"]].to_numpy(float)])
    full_beta = np.concatenate([res.baseline.to_numpy(), res.params.to_numpy()])
    se = _sandwich_cluster_se(pp["event"].to_numpy(float), X, full_beta, pp["household"].to_numpy(), link_kind)
    np.testing.assert_allclose(res.bse.to_numpy(), se[-2:], rtol=1e-6)


def test_hazard_model_errors():
    df = pd.DataFrame({"d": [1, 2, 3, 4], "e": [1, 0, 1, 1], "x": [1.0, None, 2.0, 3.0], "k": [1, 1, 1, 1]})
    with pytest.raises(EstimationError, match="'x' has 1 missing"):
        hazard_model(df, "d", "e", ["x"])
    with pytest.raises(EstimationError, match="single value"):
        hazard_model(df, "d", "e", ["k"])
    with pytest.raises(EstimationError, match="not in the data"):
        hazard_model(df, "d", "e", ["nope"])
    with pytest.raises(EstimationError, match="0 .censored. or 1"):
        hazard_model(df.assign(e=[2, 0, 1, 1], x=1.0), "d", "e", ["k"])
    with pytest.raises(EstimationError, match="kind"):
        hazard_model(df, "d", "e", ["x"], kind="weibull")
    rossi = load_rossi()
    with pytest.warns(UserWarning, match="only 2 clusters"):
        hazard_model(rossi, "week", "arrest", ["fin", "prio"], kind="cox", cluster="race")


# --------------------------------------------------------------------------- synthetic register
def test_demo_register_survival_one_review_after_exit(demo_register):
    """Annual reading of the quarterly synthetic register: S(1) = 1 - share of followed
    exits that are poor at the next review, computed with pandas from the Q4 snapshots,
    and equal to the counts the generator planted (truth.calibration)."""
    panel = demo_register.panel
    q4 = panel[panel["period"].astype(str).str.endswith("Q4") & panel["status"].notna()]
    q4 = q4.assign(year=q4["period"].str[:4].astype(int))[["household_id", "year", "status"]]
    prev = q4.assign(year=q4["year"] + 1)
    nxt = q4.assign(year=q4["year"] - 1)
    pairs = q4.merge(prev, on=["household_id", "year"], suffixes=("", "_prev"))
    exits = pairs[(pairs["status_prev"] == "poor") & (pairs["status"] != "poor")]
    followed = exits.merge(nxt, on=["household_id", "year"], suffixes=("", "_next"))
    relapsed = int((followed["status_next"] == "poor").sum())

    km = survival_after_exit(panel, frequency="year")
    row = km[km["time"] == 1].iloc[0]
    assert (row["at_risk"], row["events"]) == (len(followed), relapsed)
    assert row["survival"] == pytest.approx(1 - relapsed / len(followed), rel=1e-12)

    planted = demo_register.truth["calibration"]["relapse_share_of_exits"].values()
    assert row["at_risk"] == sum(v["exits_followed"] for v in planted)
    assert row["events"] == sum(v["relapsed"] for v in planted)


# --------------------------------------------------------------------------- issue 14 §5
def _competing_sample(n=400, seed=0):
    rng = np.random.default_rng(seed)
    t1, t2, c = rng.exponential(3, n), rng.exponential(5, n), rng.exponential(6, n)
    T = np.minimum.reduce([t1, t2, c])
    cause = np.where(T == t1, 1, np.where(T == t2, 2, 0))
    return T, cause


def test_aalen_johansen_matches_lifelines():
    """Cumulative incidence, its variance and its interval equal lifelines'
    AalenJohansenFitter on continuous times (no ties, so lifelines does not jitter)."""
    import warnings

    from lifelines import AalenJohansenFitter

    from povdyn.survival import cumulative_incidence

    T, cause = _competing_sample()
    ours = cumulative_incidence(T, np.where(cause == 0, None, cause.astype(str)))
    for k in (1, 2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            aj = AalenJohansenFitter(calculate_variance=True).fit(T, cause, event_of_interest=k)
        o = ours[ours.cause == str(k)]
        ref = aj.cumulative_density_.iloc[1:, 0].to_numpy()  # lifelines adds time 0
        assert np.allclose(o.cif.to_numpy(), ref, atol=1e-12)
        var = aj.variance_.to_numpy()[1:]
        ok = np.isfinite(var)
        assert np.allclose(o.se.to_numpy()[ok] ** 2, var[ok], rtol=1e-10, atol=1e-15)
        ci = np.sort(aj.confidence_interval_.to_numpy()[1:], axis=1)
        ok = np.isfinite(ci).all(axis=1) & (o.cif.to_numpy() > 0)
        assert np.allclose(o[["ci_low", "ci_high"]].to_numpy()[ok], ci[ok], atol=1e-10)


def test_cumulative_incidence_with_ties_adds_up_and_reduces_to_km():
    """With tied discrete times (no jitter): the causes' incidences add up to 1 - KM of
    any event; with a single cause the incidence is exactly 1 - Kaplan–Meier."""
    from povdyn.survival import cumulative_incidence, kaplan_meier

    T, cause = _competing_sample(600, seed=3)
    T = np.ceil(T)
    labels = np.where(cause == 0, None, np.where(cause == 1, "relapse", "removal"))
    ci = cumulative_incidence(T, labels)
    total = ci.groupby("time")["cif"].sum()
    km_any = kaplan_meier(T, (cause > 0).astype(int)).set_index("time")["survival"]
    assert np.allclose(total.to_numpy(), 1 - km_any.reindex(total.index).to_numpy(), atol=1e-12)
    single = cumulative_incidence(T, np.where(cause == 1, "relapse", None))
    km_1 = kaplan_meier(T, (cause == 1).astype(int)).set_index("time")["survival"]
    assert np.allclose(single.cif.to_numpy(), 1 - km_1.reindex(single.time).to_numpy(), atol=1e-12)
    # with competing removals, 1 - KM (removals censored) overstates relapse
    km_censor = kaplan_meier(T, (cause == 1).astype(int)).set_index("time")["survival"]
    rel = ci[ci.cause == "relapse"].set_index("time")["cif"]
    assert (rel.to_numpy() <= 1 - km_censor.reindex(rel.index).to_numpy() + 1e-12).all()
    assert rel.iloc[-1] < 1 - km_censor.iloc[-1] - 0.02


def test_relapse_or_removal_on_a_hand_panel():
    """Four exits in 2022: A relapses in 2023, B is removed (migration) in 2023, C stays out
    to 2024 (censored), D relapses in 2024. At time 1 the risk set is 4: relapse
    incidence 1/4, removal 1/4; at time 2 the risk set is C and D: S(1) = 1/2, D relapses:
    relapse incidence 1/4 + 1/2 * 1/2 = 1/2."""
    from povdyn.survival import relapse_or_removal

    rows = []
    for hh, path in {"A": ["poor", "non_poor", "poor", "poor"], "B": ["poor", "near_poor", None, None],
                     "C": ["poor", "non_poor", "non_poor", "non_poor"], "D": ["poor", "non_poor", "non_poor", "poor"]}.items():
        for year, st in zip(range(2021, 2025), path):
            if st is None and hh == "B" and year == 2023:
                rows.append((hh, year, None, "migration"))
            elif st is not None:
                rows.append((hh, year, st, None))
    panel = pd.DataFrame(rows, columns=["household_id", "period", "status", "removal_reason"])
    out = relapse_or_removal(panel).set_index(["cause", "time"])
    assert out.loc[("relapse", 1), "cif"] == pytest.approx(0.25)
    assert out.loc[("removal", 1), "cif"] == pytest.approx(0.25)
    assert out.loc[("relapse", 2), "cif"] == pytest.approx(0.5)
    assert out.loc[("removal", 2), "cif"] == pytest.approx(0.25)


def test_proportional_hazards_test_matches_lifelines_on_rossi():
    """Scaled-Schoenfeld test (Grambsch–Therneau, old R cox.zph) equals lifelines'
    proportional_hazard_test on the Rossi recidivism data for the km, identity and log
    time transforms (Efron ties). Age and work experience violate PH (p < 0.01 / 0.05)."""
    from lifelines import CoxPHFitter
    from lifelines.datasets import load_rossi
    from lifelines.statistics import proportional_hazard_test

    from povdyn.survival import proportional_hazards_test

    rossi = load_rossi()
    cov = ["fin", "age", "race", "wexp", "mar", "paro", "prio"]
    cph = CoxPHFitter().fit(rossi, "week", "arrest")
    for transform in ("km", "identity", "log"):
        ref = proportional_hazard_test(cph, rossi, time_transform=transform).summary["test_statistic"]
        ours = proportional_hazards_test(rossi, "week", "arrest", cov, transform=transform).set_index("covariate")
        assert np.allclose(ours.loc[cov, "chi2"].to_numpy(), ref.loc[cov].to_numpy(), rtol=1e-6)
    km = proportional_hazards_test(rossi, "week", "arrest", cov).set_index("covariate")
    assert km.loc["age", "p"] < 0.01 and km.loc["wexp", "p"] < 0.05 and km.loc["fin", "p"] > 0.5
    assert km.loc["GLOBAL", "df"] == 7


def test_stratified_cox_matches_lifelines():
    """A stratified Cox model (wexp, which fails the PH test, as strata) equals lifelines'
    CoxPHFitter(strata=...) coefficients and SEs."""
    from lifelines import CoxPHFitter
    from lifelines.datasets import load_rossi

    from povdyn.survival import hazard_model

    rossi = load_rossi()
    cov = ["fin", "age", "race", "mar", "paro", "prio"]
    ref = CoxPHFitter().fit(rossi, "week", "arrest", strata=["wexp"])
    ours = hazard_model(rossi, "week", "arrest", cov, strata="wexp")
    assert np.allclose(ours.params.loc[cov].to_numpy(), ref.params_.loc[cov].to_numpy(), atol=1e-7)
    assert np.allclose(ours.bse.loc[cov].to_numpy(), ref.standard_errors_.loc[cov].to_numpy(), rtol=1e-6)
    plain = hazard_model(rossi, "week", "arrest", cov + ["wexp"])
    assert not np.allclose(plain.params.loc[cov].to_numpy(), ours.params.loc[cov].to_numpy(), atol=1e-3)


def test_km_household_clustered_interval():
    """The clustered (infinitesimal jackknife) variance equals Greenwood with one spell
    per household; duplicating every spell inside its household leaves the clustered SE
    unchanged while Greenwood (treating the copies as independent) shrinks by sqrt(2);
    the household bootstrap agrees with the analytic clustered SE."""
    from povdyn.survival import kaplan_meier

    rng = np.random.default_rng(0)
    n = 500
    d, e = rng.integers(1, 8, n), rng.binomial(1, 0.6, n)
    hh = np.arange(n).astype(str)
    greenwood = kaplan_meier(d, e)
    clustered = kaplan_meier(d, e, ci="cluster", cluster=hh)
    assert np.allclose(greenwood.se, clustered.se, rtol=1e-10)
    dd, ee, hh2 = np.r_[d, d], np.r_[e, e], np.r_[hh, hh]
    dup = kaplan_meier(dd, ee, ci="cluster", cluster=hh2)
    assert np.allclose(dup.se, clustered.se, rtol=1e-10)
    assert np.allclose(kaplan_meier(dd, ee).se * np.sqrt(2), greenwood.se, rtol=1e-2)
    boot = kaplan_meier(dd, ee, ci="cluster_bootstrap", cluster=hh2, n_boot=400)
    assert np.allclose(boot.se, dup.se, rtol=0.15)


def test_survival_after_exit_clusters_by_household_when_spells_repeat(demo_register):
    from povdyn.survival import exit_spells, survival_after_exit

    spells = exit_spells(demo_register.panel)
    out = survival_after_exit(demo_register.panel)
    repeats = spells["household_id"].duplicated().any()
    assert out.attrs["ci"] == ("cluster" if repeats else "greenwood")


def test_engine_spells_equal_the_pandas_spells_on_the_demo(demo_register):
    """Spells are built by the engine (window functions) and only the spells come back
    (issue 15 §4): on the demo register with gaps -- a province view and the annual view
    of a list register, too, where absent households become non-poor rows in the engine --
    they are identical, row for row, to the pandas spells of tests/reference_spells.py
    computed from the whole panel in pandas."""
    import reference_spells

    from povdyn.panel import load_panel

    df = demo_register.panel
    # 5% of rows dropped: gaps in households' records, which end spells as censored
    full = load_panel(df.drop(df.sample(frac=0.05, random_state=1).index))
    province = df["province_2025"].value_counts().index[0]
    lists = load_panel(df[df["status"].isin(["poor", "near_poor"]) | df["removal_reason"].notna()],
                       register="lists", frequency="year")
    compared = []
    for panel, by in ((full, ["area"]), (full.region(province), []), (lists, [])):
        rows = panel.to_pandas()
        for poor, fn in ((False, exit_spells), (True, poverty_spells)):
            got = fn(panel, by=by or None)
            want = reference_spells.spells(rows, by, panel.frequency, poor)
            pd.testing.assert_frame_equal(got.reset_index(drop=True), want, check_dtype=False)
            compared.append(len(got))
    assert min(compared) > 0 and sum(compared) > 500, compared
