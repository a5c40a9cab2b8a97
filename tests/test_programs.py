"""Register-level programme evaluation (povdyn.programs) on registers with planted
programme effects: our own small simulator (potential outcomes drawn with common random
numbers, so the realised sample ATT is known exactly) and, when present, helper A's
synthetic register (povdyn.synth) with its truth.json."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from povdyn.programs import VERDICT_VI, annual_reviews, build_analysis_file, evaluate_programs, holm

YEARS = list(range(2019, 2026))
# logit shift of the yearly exit (and minus the fall) probability, by programme and cohort
EFFECTS = {
    "vocational_training": {2021: 1.0, 2022: 1.0, 2023: 1.0},
    "garment_outsourcing": {2021: 0.0, 2022: 0.0, 2023: 0.0},
    "oyster_farming": {2021: 1.4, 2022: 0.7, 2023: 0.0},
    "swiftlet_feathers": {2021: 0.5, 2022: 0.5, 2023: 0.5},
}
ASSIGN = {"vocational_training": -1.2, "garment_outsourcing": -1.2, "oyster_farming": -0.6,
          "swiftlet_feathers": -6.5}
PROVINCES = {"Cà Mau": "Đồng bằng sông Cửu Long", "An Giang": "Đồng bằng sông Cửu Long",
             "Lai Châu": "Trung du và miền núi phía Bắc", "Điện Biên": "Trung du và miền núi phía Bắc"}


def _expit(x):
    return 1 / (1 + np.exp(-x))


def _income(z, noise, poor):
    return 1.3e6 * np.exp(0.25 * z + noise) * np.where(poor, 0.8, 1.3)


def simulate_register(n=12000, seed=0, within=2):
    """Quarterly panel (Q2 rows are noise; the annual review is Q4), support records and
    the realised sample ATT on sustained exit within `within` reviews per programme."""
    rng = np.random.default_rng(seed)
    prov_names = list(PROVINCES)
    prov = rng.choice(prov_names, n)
    commune = np.array([f"{p[:3]}-{c}" for p, c in zip(prov, rng.integers(0, 15, n))])
    z = rng.normal(size=n)  # income potential (observed through income)
    eth = rng.binomial(1, 0.35, n)
    size = rng.integers(1, 8, n)
    urban = rng.binomial(1, 0.25, n)
    T = len(YEARS)
    U = rng.uniform(size=(n, T))  # common random numbers for both potential paths
    poor = np.zeros((n, T), bool)
    poor[:, 0] = U[:, 0] < _expit(0.2 - 1.0 * z + 0.8 * eth)

    def step(prev, t, shift):
        p_exit = _expit(-1.0 + 0.8 * z - 0.5 * eth - 0.1 * size + shift)
        p_fall = _expit(-2.2 - 0.8 * z + 0.5 * eth - shift)
        return np.where(prev, U[:, t] >= p_exit, U[:, t] < p_fall)

    # income seen at each review (tracks status; its log is a noisy proxy of z)
    noise = 0.15 * rng.normal(size=(n, T))
    # each commune adopts each programme in a year (staggered) or never
    communes = np.unique(commune)
    adopt = {m: dict(zip(communes, rng.choice([2021, 2022, 2023, 0], len(communes)))) for m in EFFECTS}
    program = np.full(n, None, object)
    start = np.zeros(n, int)
    shift = np.zeros((n, T))
    for t in range(1, T):
        year = YEARS[t]
        if year in (2021, 2022, 2023):
            free = (program == None) & poor[:, t - 1]  # noqa: E711
            # selection on what the office sees at the last review: income, ethnicity, area
            log_inc = np.log(_income(z, noise[:, t - 1], poor[:, t - 1]))
            for m, a in ASSIGN.items():
                there = np.array([0 < adopt[m][c] <= year for c in commune])
                where = free & there & (prov != "Lai Châu") if m == "oyster_farming" else free & there
                lin = a + 2.5 * (log_inc - np.log(1.3e6)) - 0.4 * eth + 0.2 * urban
                pick = where & (rng.uniform(size=n) < _expit(lin))
                program[pick], start[pick] = m, year
                shift[pick, t:] = EFFECTS[m][year]
                free &= ~pick
        poor[:, t] = step(poor[:, t - 1], t, shift[:, t])
    # counterfactual paths without support for the supported households
    poor0 = poor.copy()
    for t in range(1, T):
        treated_from = (program != None) & (start <= YEARS[t])  # noqa: E711
        alt = step(poor0[:, t - 1], t, np.zeros(n))
        poor0[:, t] = np.where(treated_from, alt, poor[:, t])
    # income and deprivations that track status (what an analyst sees at baseline)
    income = _income(z[:, None], noise, poor)
    deps = np.where(poor, rng.integers(3, 7, (n, T)), rng.integers(0, 3, (n, T)))
    rows = []
    removed_at = np.where(rng.uniform(size=n) < 0.03, rng.integers(2, T, n), 99)
    for t, year in enumerate(YEARS):
        alive = removed_at > t
        status = np.where(poor[:, t], "poor", np.where(rng.uniform(size=n) < 0.5, "near_poor", "non_poor"))
        for q, st in (("Q2", rng.choice(["poor", "near_poor", "non_poor"], n)), ("Q4", status)):
            df = pd.DataFrame({
                "household_id": [f"h{i:05d}" for i in range(n)], "period": f"{year}{q}", "status": st,
                "province": prov, "province_2025": prov, "region": [PROVINCES[p] for p in prov],
                "commune": commune, "area": np.where(urban == 1, "urban", "rural"),
                "ethnic_minority": eth.astype(bool), "household_size": size,
                "income_pc_month": income[:, t], "dep_employment": deps[:, t] >= 1,
                "dep_water": deps[:, t] >= 3, "dep_latrine": deps[:, t] >= 5,
            })
            rows.append(df[alive])
            gone = removed_at == t
            if q == "Q4" and gone.any():
                rows.append(df[gone].assign(status=pd.NA, removal_reason="migration"))
    panel = pd.concat(rows, ignore_index=True)
    sup_idx = np.flatnonzero(program != None)  # noqa: E711
    support = pd.DataFrame({
        "household_id": [f"h{i:05d}" for i in sup_idx], "program": program[sup_idx],
        "start_period": [f"{s}Q2" for s in start[sup_idx]], "end_period": [f"{s + 1}Q4" for s in start[sup_idx]],
        "amount_vnd": 5e6,
    })
    # realised sample ATT over the treated who are poor at t0 = s-1 and observed through t0+k
    truth = {}
    for m in EFFECTS:
        diffs, by_cohort = [], {}
        for i in np.flatnonzero(program == m):
            t0 = YEARS.index(start[i]) - 1
            if not poor[i, t0] or removed_at[i] <= t0 + within:
                continue
            y1 = not poor[i, t0 + 1:t0 + within + 1].any()
            y0 = not poor0[i, t0 + 1:t0 + within + 1].any()
            diffs.append(y1 - y0)
            by_cohort.setdefault(start[i], []).append(y1 - y0)
        truth[m] = dict(att=float(np.mean(diffs)) if diffs else np.nan, n=len(diffs),
                        cohorts={s: float(np.mean(v)) for s, v in by_cohort.items()})
    return panel, support, truth


@pytest.fixture(scope="module")
def simulated():
    panel, support, truth = simulate_register()
    ev = evaluate_programs(panel, support, within=2)
    return panel, support, truth, ev


def test_holm_matches_hand_computation():
    # p = (0.01, 0.04, 0.03, 0.20): sorted 0.01*4=0.04, 0.03*3=0.09, 0.04*2=0.08->0.09, 0.20*1->0.20
    assert np.allclose(holm([0.01, 0.04, 0.03, 0.20]), [0.04, 0.09, 0.09, 0.20])
    assert np.isnan(holm([np.nan, 0.5])[0])


def test_annual_review_is_q4_and_removals_are_not_exits(simulated):
    panel, support, _, _ = simulated
    ann = annual_reviews(panel)
    assert set(ann.year) == set(YEARS)
    q4 = panel[panel.period.str.endswith("Q4") & panel.status.notna()]
    assert len(ann) == len(q4)
    af, counts = build_analysis_file(ann, support.assign(start_year=support.start_period.str[:4].astype(int)),
                                     "vocational_training", within=2)
    assert counts["censored_treated"] + counts["censored_controls"] > 0  # removals are censored
    assert set(af.columns) >= {"treated", "sustained_exit", "log_income", "deprivations", "cohort"}


def test_estimates_recover_planted_truth(simulated):
    _, _, truth, ev = simulated
    t = ev.table.set_index("program")
    for m in ("vocational_training", "garment_outsourcing", "oyster_farming"):
        est, tr = t.loc[m, "estimate"], truth[m]["att"]
        inside = t.loc[m, "ci_low"] <= tr <= t.loc[m, "ci_high"]
        assert inside or abs(est - tr) <= 0.1 * abs(tr), (m, est, tr)
    # the naive comparison is shown and is biased by selection on income potential
    assert (t["naive"] - t["estimate"]).abs().loc["vocational_training"] > 0.02


def test_verdicts(simulated):
    _, _, _, ev = simulated
    t = ev.table.set_index("program")
    assert t.loc["vocational_training", "verdict"] == "effective"
    assert t.loc["garment_outsourcing", "verdict"] != "effective"
    assert t.loc["oyster_farming", "verdict"] == "fading"
    assert t.loc["swiftlet_feathers", "verdict"] == "insufficient_data"
    assert set(t.verdict_vi) <= set(VERDICT_VI.values())
    assert (t.p_adjusted >= t.p_value).all() or t.p_value.isna().any()
    assert t.loc["vocational_training", "cost_per_sustained_exit"] > 5e6  # 5M per household / ATT < 1
    assert t.loc["vocational_training", "reason"] and t.loc["vocational_training", "reason_vi"]
    # secondary output: exit hazard ratio (cloglog, povdyn.hazard_model)
    assert t.loc["vocational_training", "exit_hazard_ci_low"] > 1
    assert t.loc["garment_outsourcing", "exit_hazard_ci_low"] < 1 < t.loc["garment_outsourcing", "exit_hazard_ci_high"]


def test_cohorts_and_event_study(simulated):
    _, _, truth, ev = simulated
    oy = ev.cohorts[ev.cohorts.program == "oyster_farming"].set_index("cohort")
    assert oy.loc[2021, "estimate"] > oy.loc[2023, "estimate"]
    for s, tr in truth["oyster_farming"]["cohorts"].items():
        if s in oy.index:
            assert abs(oy.loc[s, "estimate"] - tr) < 3.5 * oy.loc[s, "se"]
    es = ev.event_study["vocational_training"]
    assert {"event_time", "att", "se", "placebo"} <= set(es.event_time.columns)
    assert "biased" in ev.twfe["vocational_training"].label
    assert set(ev.balance["vocational_training"].columns) >= {"smd_before", "smd_after"}


def test_figures_have_labels_in_both_languages(simulated):
    import matplotlib.pyplot as plt

    from povdyn.plots import effects as figures

    _, _, _, ev = simulated
    fig = figures.forest(ev.table, lang="vi")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Tác động lên thoát nghèo bền vững (điểm %)"
    texts = [t.get_text() for t in ax.texts]
    assert any("Hiệu quả" in t for t in texts) and any("Chưa đủ dữ liệu" in t for t in texts)
    fig_en = figures.forest(ev.table, lang="en")
    assert "sustained exit" in fig_en.axes[0].get_xlabel()
    es = figures.event_study(ev.event_study["vocational_training"], ev.twfe["vocational_training"], lang="en")
    assert any("biased" in t.get_text() for t in es.axes[0].get_legend().get_texts())
    af = ev.analysis_files["vocational_training"]
    from povdyn.effects import estimate_effect
    ov = figures.overlap(estimate_effect(af, "treated", "sustained_exit", ["log_income", "household_size"]))
    assert ov.axes[0].get_xlabel().startswith("Điểm xu hướng")
    plt.close("all")


# --------------------------------------------------------------------------- helper A's synth
@pytest.fixture(scope="module")
def synth_eval():
    """povdyn.synth register large enough for power (60,000 households; ~10 s), with
    the realised sample ATTs it planted (truth.json)."""
    from povdyn.synth import generate

    reg = generate(households=60_000, seed=20, frequency="quarter")
    return reg.truth, evaluate_programs(reg.panel, reg.support, within=2, period="2025Q4")


@pytest.fixture(scope="module")
def synth_eval_adoption():
    """A smaller povdyn.synth register evaluated with its commune adoption register."""
    from povdyn.synth import generate

    reg = generate(households=20_000, seed=5, frequency="quarter")
    return reg, evaluate_programs(reg.panel, reg.support, within=2, period="2025Q4", adoption=reg.adoption,
                                  by_cohort=False)


def test_synth_register_recovers_planted_truth(synth_eval):
    truth, ev = synth_eval
    t = ev.table.set_index("program")
    for code, spec in truth["programs"].items():
        att = spec["att_sustained_exit"]["k2"]
        est = t.loc[code, "estimate"]
        inside = t.loc[code, "ci_low"] <= att <= t.loc[code, "ci_high"]
        assert inside or abs(est - att) <= 0.1 * abs(att), (code, est, att)
        # same supported households as the truth (poor at t0, followed through t0+2)
        assert t.loc[code, "n_treated"] == spec["n_treated"]


def test_synth_register_verdicts(synth_eval):
    truth, ev = synth_eval
    t = ev.table.set_index("program")
    kinds = {code: spec["kind"] for code, spec in truth["programs"].items()}
    for code, kind in kinds.items():
        if kind == "null":
            assert t.loc[code, "verdict"] != "effective"
        if kind == "fading":
            assert t.loc[code, "verdict"] == "fading"
        if kind == "effective":
            assert t.loc[code, "verdict"] == "effective"
    assert set(ev.event_study) == set(kinds)


def test_small_demo_register_runs(demo_register):
    ev = evaluate_programs(demo_register.panel, demo_register.support, within=2)
    assert set(ev.table.verdict) <= set(VERDICT_VI)
    assert len(ev.table) == ev.table.program.nunique() >= 1


def test_cohort_table_handles_no_cohort_estimates():
    """A small region has no cohort estimates: the reader table is empty, not an error."""
    from types import SimpleNamespace

    from povdyn.programs import cohort_table

    empty = SimpleNamespace(cohorts=pd.DataFrame(columns=["program", "cohort", "estimate"]))
    assert cohort_table(empty).empty
    one = SimpleNamespace(cohorts=pd.DataFrame({
        "program": ["credit"], "cohort": [2023], "estimate": [0.123], "ci_low": [0.05],
        "ci_high": [0.2], "naive": [0.3], "n_treated": [120], "n_control": [900]}))
    row = cohort_table(one, lang="en").iloc[0]
    assert row["estimate"] == 12.3 and row["program"].startswith("Preferential credit")


# --------------------------------------------------------------------------- issue 14 §3
def _clustered_family(rng, G=100, per=8, m=6, rho=0.7, shift=None):
    """m estimates (means of m correlated outcomes) from G clusters of `per` units, with a
    cluster effect; returns estimates, cluster-robust SEs, cluster sums of the influence
    functions and n."""
    n = G * per
    cov = rho * np.ones((m, m)) + (1 - rho) * np.eye(m)
    u = rng.multivariate_normal(np.zeros(m), cov, size=G)  # cluster effects, correlated across outcomes
    e = rng.multivariate_normal(np.zeros(m), cov, size=n)
    y = np.repeat(u, per, axis=0) + e + (0 if shift is None else shift)
    est = y.mean(0)
    psi = y - est
    S = psi.reshape(G, per, m).sum(1)
    se = np.sqrt(G / (G - 1) * (S ** 2).sum(0)) / n
    return est, se, S, np.full(m, n)


def _holm_rejects(p, alpha=0.05):
    """Holm's step-down rule (statsmodels' multipletests calls gc.collect() on every call,
    0.2 s each inside a test session, so the simulation loops use this; the test below
    checks it against multipletests)."""
    order = np.argsort(p)
    reject = np.zeros(len(p), bool)
    for j, i in enumerate(order):
        if p[i] > alpha / (len(p) - j):
            break
        reject[i] = True
    return reject


def test_romano_wolf_controls_familywise_error_and_beats_holm():
    """Null simulation: six correlated estimates, all true effects zero, 400 families: the
    share of families with any Romano–Wolf rejection at 5% is at most 5% within
    simulation error (2 SE). Under alternatives (three real effects) Romano–Wolf rejects
    at least as many true hypotheses as Holm, on average."""
    from scipy import stats
    from statsmodels.stats.multitest import multipletests

    from povdyn.programs import romano_wolf

    check = np.random.default_rng(1).uniform(0, 0.06, (20, 6))
    for p in check:
        assert np.array_equal(_holm_rejects(p), multipletests(p, method="holm")[0])

    rng = np.random.default_rng(2026)
    reps = 400
    any_rw = any_holm = 0
    for r in range(reps):
        est, se, S, n = _clustered_family(rng)
        p = 2 * stats.norm.sf(np.abs(est / se))
        any_rw += (romano_wolf(est, se, S, n, n_boot=299, seed=r) < 0.05).any()
        any_holm += _holm_rejects(p).any()
    fwer = any_rw / reps
    assert fwer <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / reps), fwer
    assert any_holm <= any_rw + 2 * np.sqrt(reps * 0.05)  # Holm is the conservative one
    power_rw = power_holm = 0
    shift = np.array([0.25, 0.25, 0.25, 0, 0, 0])  # about 2.7 SE
    for r in range(150):
        est, se, S, n = _clustered_family(rng, shift=shift)
        p = 2 * stats.norm.sf(np.abs(est / se))
        power_rw += (romano_wolf(est, se, S, n, n_boot=299, seed=r)[:3] < 0.05).sum()
        power_holm += _holm_rejects(p)[:3].sum()
    assert power_rw >= power_holm, (power_rw, power_holm)
    assert power_rw > 0


def test_holm_is_statsmodels():
    from statsmodels.stats.multitest import multipletests

    p = np.array([0.001, 0.2, 0.013, 0.04, 0.5])
    assert np.allclose(holm(p), multipletests(p, method="holm")[1])


def test_inference_is_clustered_by_commune(simulated):
    """Issue 14 §3: programmes are adopted by communes, so the programme table's SEs are
    clustered by commune: the same estimate_effect call with cluster='commune' on the
    analysis file reproduces them, and the table says which cluster was used. The
    family of tests (models x outcomes) carries Holm and Romano–Wolf p-values."""
    from povdyn.effects import estimate_effect
    from povdyn.programs import _usable

    _, _, _, ev = simulated
    t = ev.table.set_index("program")
    assert t.loc["vocational_training", "cluster"] == "commune"
    af = ev.analysis_files["vocational_training"].assign(
        cohort_cat=lambda d: d["cohort"].astype(str))
    covs = _usable(af, ["log_income", "household_size", "ethnic_minority", "urban", "deprivations",
                        "poor_before", "region", "cohort_cat"])
    by_commune = estimate_effect(af, "treated", "sustained_exit", covs, cluster="commune")
    by_household = estimate_effect(af, "treated", "sustained_exit", covs, cluster="household_id")
    assert t.loc["vocational_training", "se"] == pytest.approx(by_commune.se, rel=1e-9)
    assert by_commune.se != pytest.approx(by_household.se, rel=1e-3)
    mt = ev.multiple_testing
    assert set(mt.outcome) == {"sustained_exit", "exit_next"}
    assert (mt.p_romano_wolf >= 1 / 1000).all() and (mt.p_holm >= mt.p_value).all()
    assert t.loc["vocational_training", "p_romano_wolf"] < 0.05
    assert t.loc["garment_outsourcing", "p_romano_wolf"] > 0.05
    assert (t["n_trimmed_treated"] >= 0).all()


def test_event_study_cohort_is_the_commune_adoption_date(synth_eval_adoption):
    """Issue 14 §3: with the synthetic register's commune adoption register, every
    commune's event-study cohort is its adoption year (not the first support, which
    depends on poverty), and no support starts before the commune adopted."""
    from povdyn.programs import _prepare, annual_reviews, commune_event_panel

    reg, ev = synth_eval_adoption
    ad = reg.adoption
    assert {"province_2025", "commune", "program", "adoption_year"} <= set(ad.columns)
    code = "vocational_training"
    cp = commune_event_panel(_prepare(annual_reviews(reg.panel)), reg.support, code, adoption=ad)
    assert (cp["cohort_source"] == "commune adoption date").all()
    a = ad[ad.program == code].dropna(subset=["adoption_year"])
    key = a.commune + ", " + a.province_2025
    expected = a.assign(k=key).groupby("k")["adoption_year"].min()
    got = cp.drop_duplicates("commune").set_index("commune")["first_year"]
    common = got.index.intersection(expected.index)
    assert len(common) > 20
    assert (got[common] == expected[common]).all()
    assert (got.drop(expected.index, errors="ignore") == 0).all()
    # households are supported only once their commune has adopted
    place = reg.panel.drop_duplicates("household_id").set_index("household_id")
    sup = reg.support[reg.support.program == code].join(place[["commune", "province_2025"]], on="household_id")
    start = sup.start_period.str[:4].astype(int)
    adopted = (sup.commune + ", " + sup.province_2025).map(expected)
    assert (start >= adopted).all()
    assert ev.event_study[code].pretrend["df"] >= 1


# --------------------------------------------------------------------------- issue 14 §6
def test_e_value_matches_vanderweele_ding_example():
    """VanderWeele & Ding (2017, Ann Intern Med 167:268), worked example: an observed
    risk ratio of 3.9 with 95% CI 1.8 to 8.7 has E-value 7.26 and 3.0 for the lower
    limit; a protective RR uses its inverse."""
    from povdyn.effects import e_value, e_values_for_difference

    assert e_value(3.9) == pytest.approx(7.26, abs=0.01)
    assert e_value(1.8) == pytest.approx(3.0, abs=0.01)
    assert e_value(1 / 3.9) == pytest.approx(e_value(3.9))
    # a difference in probabilities: treated 0.39 with, 0.10 without -> RR 3.9
    point, lower = e_values_for_difference(0.39, 0.29, 0.1733, 0.35)
    assert point == pytest.approx(7.26, abs=0.01)
    assert lower == pytest.approx(e_value(0.39 / (0.39 - 0.1733)))
    assert e_values_for_difference(0.39, 0.05, -0.01, 0.11)[1] == 1.0


def test_p_values_in_free_text_use_vietnamese_decimals(simulated):
    """Issue 14 §6: the Vietnamese reasons read "p Holm = 0.000509" (decimal point, six
    digits). Now "p (Holm) < 0,001" or three decimals with a decimal comma."""
    from povdyn.programs import format_p, report_table

    assert format_p(0.000509, "vi", "Holm") == "p (Holm) < 0,001"
    assert format_p(0.0497, "vi", "Holm") == "p (Holm) = 0,050"
    assert format_p(0.35, "en", "Holm") == "Holm p = 0.35"
    _, _, _, ev = simulated
    import re
    for text in ev.table["reason_vi"].dropna():
        assert "p Holm" not in text
        assert not re.search(r"\d\.\d", text), text  # no decimal point in Vietnamese text
    t = report_table(ev, "vi")
    voc = t[t["Mô hình"] == ev.table.set_index("program").loc["vocational_training", "program_vi"]].iloc[0]
    assert "gấp" in voc["Độ vững trước yếu tố chưa quan sát (E-value)"]
    assert "Romano–Wolf" in " ".join(t.columns)
    en = report_table(ev, "en")
    assert en["Robustness to unmeasured factors (E-value)"].str.contains("unmeasured factor").any()
    left_out = en["Supported households left out (no comparable households)"]
    assert all(v == "<10" or int(v) >= 10 for v in left_out)  # small cells hidden, zero too


def test_demo_ingest_path_uses_the_adoption_register_as_cohort(tmp_path):
    """Issue 14 §3 on the `make report` path: povdyn demo -> povdyn ingest -> the
    processed folder holds adoption.parquet, notebook 03's find_adoption picks it, and the
    event study's cohorts are the planted adoption years (generate(), same seed), on the
    same commune panel as the in-memory register."""
    from povdyn.ingest import ingest
    from povdyn.programs import _prepare, commune_event_panel, find_adoption
    from povdyn.synth import generate, write_demo

    write_demo(tmp_path / "raw", households=20_000, seed=5, frequency="year", progress=False)
    assert ingest(tmp_path / "raw", tmp_path / "out", progress=False).ok
    out = tmp_path / "out"
    panel, support = pd.read_parquet(out / "panel.parquet"), pd.read_parquet(out / "support.parquet")
    adoption = find_adoption(out)  # the processed folder alone: what ingest wrote
    assert adoption is not None and (out / "adoption.parquet").exists()
    code = "vocational_training"
    ev = evaluate_programs(panel, support, within=2, adoption=adoption, by_cohort=False, programs=[code],
                           n_boot=99)
    assert ev.event_study_cohort[code] == "commune adoption date"
    assert np.isfinite(ev.event_study[code].pretrend["p_value"])
    reg = generate(households=20_000, seed=5, frequency="year")
    ingested = commune_event_panel(_prepare(annual_reviews(panel)), support, code, adoption=adoption)
    planted = commune_event_panel(_prepare(annual_reviews(reg.panel)), reg.support, code, adoption=reg.adoption)
    both = ingested.merge(planted, on=["commune", "year"], suffixes=("", "_planted"), validate="1:1")
    assert len(both) == len(ingested) == len(planted)
    assert (both["first_year"] == both["first_year_planted"]).all() and (both["first_year"] > 0).sum() > 50
    assert np.allclose(both["poor_rate"], both["poor_rate_planted"])


def test_pretrend_result_is_stated_beside_the_figure(synth_eval_adoption):
    """The event study's joint pre-trend test is printed in words with the cohort
    definition (commune adoption date), Vietnamese decimals included."""
    from povdyn.programs import pretrend_text

    _, ev = synth_eval_adoption
    code = "vocational_training"
    assert ev.event_study_cohort[code] == "commune adoption date"
    vi = pretrend_text(ev.event_study[code], ev.event_study_cohort[code], "vi")
    en = pretrend_text(ev.event_study[code], ev.event_study_cohort[code], "en")
    assert "năm xã áp dụng" in vi and "adopted" in en
    p = ev.event_study[code].pretrend["p_value"]
    assert ("không bác bỏ" in vi) == (p >= 0.05)
