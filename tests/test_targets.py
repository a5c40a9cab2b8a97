"""povdyn.targets: targets file, plan vs actual, Markov projection and its bootstrap.

Checks against hand computations and planted truths only."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from povdyn import targets
from povdyn.errors import PovdynError

P_KNOWN = np.array([[0.5, 0.3, 0.2],
                    [0.1, 0.6, 0.3],
                    [0.0, 0.1, 0.9]])
START_KNOWN = np.array([0.2, 0.3, 0.5])


def test_projection_of_a_known_matrix_matches_hand_computation():
    # by hand: one step  (.2,.3,.5) P = (.13, .29, .58)
    #          two steps (.13,.29,.58) P = (.094, .271, .635)
    assert targets.project(P_KNOWN, START_KNOWN, 0) == pytest.approx(START_KNOWN)
    assert targets.project(P_KNOWN, START_KNOWN, 1) == pytest.approx([0.13, 0.29, 0.58])
    assert targets.project(P_KNOWN, START_KNOWN, 2) == pytest.approx([0.094, 0.271, 0.635])


def test_projection_rejects_bad_matrices():
    with pytest.raises(Exception, match="sum to 1"):
        targets.project(P_KNOWN * 2, START_KNOWN, 1)
    with pytest.raises(Exception, match="back"):
        targets.project(P_KNOWN, START_KNOWN, -1)


def test_bootstrap_point_estimate_is_the_projection_of_the_row_shares():
    counts = np.array([[50, 30, 20], [10, 60, 30], [0, 10, 90]])
    out = targets.bootstrap_projection(counts, [200, 300, 500], [2], n_boot=50, seed=1)
    point = out.set_index("status")["share"]
    assert point.to_numpy() == pytest.approx([0.094, 0.271, 0.635])
    assert (out["ci_low"] <= out["share"]).all() and (out["share"] <= out["ci_high"]).all()


def test_bootstrap_interval_covers_the_planted_truth():
    """Planted simulation: transition counts and the start distribution are drawn from a
    known chain; the 95% bootstrap interval of the 5-year poor share must cover the true
    5-year poor share in about 95% of replications (accept 85-100% over 120 runs)."""
    rng = np.random.default_rng(2025)
    P = np.array([[0.70, 0.20, 0.10], [0.05, 0.75, 0.20], [0.01, 0.03, 0.96]])
    start = np.array([0.06, 0.08, 0.86])
    truth = targets.project(P, start, 5)[0]
    rows_n = np.array([300, 400, 4300])
    covered = 0
    reps = 120
    for r in range(reps):
        counts = np.vstack([rng.multinomial(rows_n[i], P[i]) for i in range(3)])
        start_counts = rng.multinomial(5000, start)
        out = targets.bootstrap_projection(counts, start_counts, [5], n_boot=200, seed=r)
        poor = out[out["status"] == "poor"].iloc[0]
        covered += poor["ci_low"] <= truth <= poor["ci_high"]
    assert 0.85 <= covered / reps <= 1.0


def test_national_defaults_come_from_the_programme():
    t = targets.targets_for("national")
    assert t["poor_rate_reduction"] == 1.0
    assert t["em_poor_rate_reduction"] == 3.0
    assert t["relapse_ceiling"] == 0.0
    assert np.isnan(t["near_poor_rate_reduction"])


def test_province_overrides_national(tmp_path):
    path = tmp_path / "targets.csv"
    path.write_text(
        "scope,indicator,value,unit,source\n"
        "national,poor_rate_reduction,1.0,points_per_year,x\n"
        "national,relapse_ceiling,0,percent_of_exits,x\n"
        "Khánh Hòa,poor_rate_reduction,0.15,points_per_year,x\n"
        "Khánh Hòa,near_poor_rate_reduction,0.2,points_per_year,x\n",
        encoding="utf-8")
    kh = targets.targets_for("Khánh Hòa", path)
    assert kh["poor_rate_reduction"] == 0.15 and kh["near_poor_rate_reduction"] == 0.2
    assert kh["relapse_ceiling"] == 0
    assert targets.targets_for("Hà Nội", path)["poor_rate_reduction"] == 1.0


def test_unknown_indicator_names_the_row(tmp_path):
    path = tmp_path / "targets.csv"
    path.write_text("scope,indicator,value\nnational,poor_rate_reduction,1\nnational,poverty_gone,5\n")
    with pytest.raises(PovdynError, match="row 3.*poverty_gone"):
        targets.load_targets(path)


def _panel(statuses: dict[str, list], periods: list, **cols) -> pd.DataFrame:
    rows = []
    for hh, seq in statuses.items():
        for p, s in zip(periods, seq):
            if s is None:
                continue
            rows.append(dict(household_id=hh, period=p, status=s, province="Tỉnh A", province_2025="Tỉnh A",
                             area="rural", ethnic_minority=cols.get("em", {}).get(hh, False)))
    return pd.DataFrame(rows)


def test_annual_transition_counts_use_same_quarter_a_year_apart():
    periods = ["2024Q3", "2024Q4", "2025Q1", "2025Q2", "2025Q3", "2025Q4"]
    # 2024Q4 -> 2025Q4: a poor->near_poor, b poor->poor, c near_poor->non_poor,
    # d non_poor->non_poor; quarters between ignored. e is not on the 2024Q4 register and
    # poor in 2025Q4: the stock-flow not-poor row counts it as a move into poverty from
    # outside the lists, against the one not-poor household of 2024Q4 (d)
    statuses = {
        "a": ["poor", "poor", "non_poor", "poor", "poor", "near_poor"],
        "b": ["poor", "poor", "poor", "poor", "poor", "poor"],
        "c": ["near_poor", "near_poor", "poor", "poor", "near_poor", "non_poor"],
        "d": ["non_poor"] * 6,
        "e": ["poor", None, "poor", "poor", "poor", "poor"],
    }
    df = _panel(statuses, periods)
    C, start = targets.annual_transition_counts(df, "2025Q4")
    expected = np.zeros((3, 3))
    expected[0, 1] = 1  # a
    expected[0, 0] = 1  # b
    expected[1, 2] = 1  # c
    expected[2, 0] = 1  # e, from outside the lists
    expected[2, 2] = 1 - 1  # d stays, less e's move from the not-poor stock of 1
    assert C.tolist() == expected.tolist()
    assert start.tolist() == [2, 1, 2]  # at 2025Q4: b, e poor; a near-poor; c, d not poor


def test_progress_against_a_planted_fall_in_the_poor_rate():
    """200 households; poor rate 20% in 2024Q4 and 17% in 2025Q4: a fall of 3 points
    (target 1 point -> on track); ethnic-minority households: 30% -> 29% (target 3 ->
    off track)."""
    periods = ["2024Q4", "2025Q1", "2025Q2", "2025Q3", "2025Q4"]
    statuses, em = {}, {}
    for i in range(200):
        minority = i < 100
        em[f"h{i}"] = minority
        if minority:
            before, after = ("poor" if i < 30 else "non_poor"), ("poor" if i < 29 else "non_poor")
        else:
            before, after = ("poor" if i < 110 else "non_poor"), ("poor" if i < 105 else "non_poor")
        statuses[f"h{i}"] = [before, before, before, before, after]
    df = _panel(statuses, periods, em=em)
    v = targets.progress_values(df, "2025Q4", min_cell=10).set_index("indicator")
    assert v.loc["poor_rate_reduction", "actual"] == pytest.approx(20.0 - 17.0)
    assert v.loc["poor_rate_reduction", "status"] == "on_track"
    assert v.loc["em_poor_rate_reduction", "actual"] == pytest.approx(30.0 - 29.0)
    assert v.loc["em_poor_rate_reduction", "status"] == "off_track"
    assert v.loc["near_poor_rate_reduction", "status"] == "no_target"
    lo, hi = v.loc["poor_rate_reduction", ["ci_low", "ci_high"]]
    assert lo < 3.0 < hi
