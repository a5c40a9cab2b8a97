"""Poverty standards as data (issue 3 §3): classification at, just below and just above
every line, per area and period; the deprivation-count rule at 2 and 3; Ho Chi Minh
City's local standard vs the national one; uncovered periods are errors.

Expected statuses are written by hand from the legal texts (domain.md), not taken from
the code."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from povdyn import standards
from povdyn.errors import StandardError

I22 = standards.INDICATORS_2022
I27 = standards.INDICATORS_2027


def frame(period, area, income, n_deprived, indicators=I22):
    """One household per row; the first n_deprived indicators are True."""
    rows = []
    for p, a, inc, k in zip(period, area, income, n_deprived):
        row = {"period": p, "area": a, "income_pc_month": inc}
        for j, col in enumerate(indicators):
            row[col] = j < k
        rows.append(row)
    return pd.DataFrame(rows)


# (period, area, line) for the "poor = income <= line AND >= 3 deprivations" standards
LINES = [
    ("2022Q1", "rural", 1_500_000), ("2022Q1", "urban", 2_000_000),
    (2023, "rural", 1_500_000), ("2025Q4", "urban", 2_000_000),
    ("2026Q2", "rural", 1_500_000), (2026, "urban", 2_000_000),
]
LINES_2027 = [("2027Q1", "rural", 2_200_000), (2030, "urban", 2_800_000)]


@pytest.mark.parametrize("period,area,line", LINES)
def test_2022_standard_at_and_around_the_line(period, area, line):
    inc = [line - 1, line, line + 1, line - 1, line, line + 1]
    dep = [3, 3, 3, 2, 2, 2]
    got = standards.classify(frame([period] * 6, [area] * 6, inc, dep)).tolist()
    assert got == ["poor", "poor", "non_poor", "near_poor", "near_poor", "non_poor"]


@pytest.mark.parametrize("period,area,line", LINES_2027)
def test_2027_standard_uses_its_own_indicators(period, area, line):
    inc = [line, line + 1, line, line]
    # 3 deprivations among the 2027 indicators (employment, dependants, nutrition)
    df = frame([period] * 4, [area] * 4, inc, [3, 3, 2, 0], indicators=I27)
    df.loc[3, "dep_waste"] = True
    df.loc[3, "dep_digital_services"] = True
    df.loc[3, "dep_water"] = True  # 3 deprivations that include the two new indicators
    assert standards.classify(df).tolist() == ["poor", "non_poor", "near_poor", "poor"]
    # without the new indicator columns the default set cannot be counted
    with pytest.raises(StandardError, match="dep_digital_services"):
        standards.classify(frame([period], [area], [line], [3]))


def test_2027_line_is_higher_than_2026():
    # 2,100,000 rural with 3 deprivations: not poor in 2026, poor in 2027
    df = frame(["2026Q4", "2027Q1"], ["rural", "rural"], [2_100_000] * 2, [3, 3], indicators=I27)
    df["dep_info_devices"] = False
    assert standards.classify(df, deprivations=["dep_employment", "dep_dependants", "dep_nutrition"]).tolist() == \
        ["non_poor", "poor"]


@pytest.mark.parametrize("period", ["2021Q4", 2021, "2016Q1", 2018])
def test_2016_2021_standard(period):
    # rural: line 700,000; near-poor upper bound 1,000,000. Urban 900,000 / 1,300,000.
    cases = [
        ("rural", 699_999, 0, "poor"), ("rural", 700_000, 0, "poor"), ("rural", 700_001, 0, "near_poor"),
        ("rural", 700_001, 3, "poor"), ("rural", 700_001, 2, "near_poor"),
        ("rural", 1_000_000, 3, "poor"), ("rural", 1_000_000, 2, "near_poor"),
        ("rural", 1_000_001, 3, "non_poor"), ("rural", 1_000_001, 0, "non_poor"),
        ("urban", 900_000, 0, "poor"), ("urban", 900_001, 2, "near_poor"), ("urban", 900_001, 3, "poor"),
        ("urban", 1_300_000, 3, "poor"), ("urban", 1_300_000, 0, "near_poor"), ("urban", 1_300_001, 5, "non_poor"),
    ]
    # the 2016 standard counts 10 indicators: the employment pair is not among them
    ten = [c for c in I22 if c not in ("dep_employment", "dep_dependants")]
    df = frame([period] * len(cases), [c[0] for c in cases], [c[1] for c in cases], [c[2] for c in cases],
               indicators=ten)
    df["dep_employment"] = True
    df["dep_dependants"] = True
    assert standards.classify(df).tolist() == [c[3] for c in cases]


def test_2021q4_vs_2022q1_same_household():
    # 1,200,000 rural with 4 deprivations: near-poor band in 2021 -> poor (>=3 deps);
    # 2022: below 1.5M and >=3 deps -> poor. With 2 deps: near-poor in both.
    # 800,000 rural with 0 deprivations: near-poor in 2021 (above 700k), near-poor in 2022.
    # 650,000 with 0 deprivations: poor in 2021 (income alone), near-poor in 2022.
    df = frame(["2021Q4", "2022Q1"] * 3, ["rural"] * 6,
               [1_200_000, 1_200_000, 800_000, 800_000, 650_000, 650_000], [4, 4, 0, 0, 0, 0])
    assert standards.classify(df).tolist() == ["non_poor", "poor", "near_poor", "near_poor", "poor", "near_poor"]
    assert standards.changes_between("2021Q4", "2022Q1")
    assert standards.changes_between(2021, 2022)
    assert not standards.changes_between("2022Q1", "2025Q4")
    assert not standards.changes_between("2025Q4", "2026Q1")  # 2026 keeps the same lines
    assert standards.standard_for("2026Q1").standard_id == "national_2026"
    assert standards.changes_between("2026Q4", "2027Q1")


def test_deprivation_rule_at_two_and_three():
    df = frame(["2024Q2"] * 4, ["rural"] * 4, [1_000_000] * 4, [0, 2, 3, 12])
    assert standards.classify(df).tolist() == ["near_poor", "near_poor", "poor", "poor"]
    # a missing indicator value counts as not deprived
    df2 = frame(["2024Q2"], ["rural"], [1_000_000], [3])
    df2["dep_employment"] = pd.array([pd.NA], dtype="boolean")
    assert standards.classify(df2).tolist() == ["near_poor"]


def test_explicit_deprivation_columns():
    df = frame(["2023Q4"] * 2, ["urban"] * 2, [1_900_000] * 2, [0, 0])
    df["a"], df["b"], df["c"] = [True, True], [True, True], [True, False]
    assert standards.classify(df, deprivations=["a", "b", "c"]).tolist() == ["poor", "near_poor"]


def test_hcmc_local_vs_national():
    # 3,000,000/month = 36M/year: HCMC 2021–2025 poor is "< 36M", so exactly 36M is near-poor.
    # 2,500,000 urban, 0 deprivations: HCMC poor (< 36M), national non-poor (> 2M).
    # 1,800,000 urban with 3 deprivations: poor under both.
    # 3,900,000 = 46.8M/year: above HCMC's 46M near-poor bound -> non-poor.
    inc = [2_500_000, 2_999_999, 3_000_000, 3_833_333, 3_900_000, 1_800_000]
    dep = [0, 0, 0, 0, 0, 3]
    df = frame(["2024Q3"] * 6, ["urban"] * 6, inc, dep)
    assert standards.classify(df, standard="hcmc").tolist() == \
        ["poor", "poor", "near_poor", "near_poor", "non_poor", "poor"]
    assert standards.classify(df, standard="national").tolist() == \
        ["non_poor", "non_poor", "non_poor", "non_poor", "non_poor", "poor"]
    assert standards.classify(df, standard="hanoi").tolist() == standards.classify(df).tolist()
    # the 2025 review: poor <= 46M/year (3,833,333.33/month), near-poor up to 54M (4,500,000)
    inc25 = [3_833_333, 3_833_334, 4_500_000, 4_500_001]
    df25 = frame(["2025Q4"] * 4, ["rural"] * 4, inc25, [0] * 4)
    assert standards.classify(df25, standard="hcmc").tolist() == ["poor", "near_poor", "near_poor", "non_poor"]
    assert standards.changes_between("2025Q3", "2025Q4", standard="hcmc")


def test_uncovered_period_is_an_error_naming_it():
    with pytest.raises(StandardError, match="2031Q1") as e:
        standards.classify(frame(["2024Q1", "2031Q1"], ["rural"] * 2, [1e6] * 2, [0, 0]))
    assert "national" in str(e.value)
    with pytest.raises(StandardError, match="2015"):
        standards.standard_for(2015)
    with pytest.raises(StandardError, match="hcmc"):
        standards.classify(frame(["2026Q1"], ["urban"], [1e6], [0]), standard="hcmc")
    with pytest.raises(StandardError):
        standards.classify(frame(["2024Q1"], ["rural"], [1e6], [0]), standard="atlantis")


def test_index_alignment_missing_values_and_dtype():
    df = frame(["2023Q4"] * 3, ["rural", "urban", "rural"], [1e6, np.nan, 3e6], [3, 3, 0])
    df.index = [10, 5, 7]
    out = standards.classify(df)
    assert list(out.index) == [10, 5, 7]
    assert out.loc[10] == "poor" and pd.isna(out.loc[5]) and out.loc[7] == "non_poor"


def test_metadata():
    assert standards.indicators("national_2022_2025") == I22
    assert len(I22) == 12 and len(set(I22)) == 12
    assert "dep_info_devices" not in standards.indicators("national_2027_2030")
    assert {"dep_digital_services", "dep_waste"} <= set(standards.indicators("national_2027_2030"))
    assert len(standards.indicators("national_2016_2021")) == 10
    assert set(standards.DIMENSIONS) == set(standards.DIMENSIONS_2027)
    assert all(len(v) == 2 for v in standards.DIMENSIONS.values())
    st = standards.standard_for("2023Q2")
    assert st.poor_income_max == {"rural": 1_500_000, "urban": 2_000_000}
    assert st.min_deprivations_below_line == 3
    t = standards.list_standards()
    assert {"national_2016_2021", "national_2022_2025", "national_2026", "national_2027_2030",
            "hcmc_2021_2025", "hcmc_2025"} <= set(t.standard_id)


def test_vectorised_speed():
    """1M rows classify in well under a few seconds (10M scale is ~10x this)."""
    import time

    rng = np.random.default_rng(0)
    n = 1_000_000
    df = pd.DataFrame({"period": rng.choice(["2021Q4", "2022Q4", "2023Q4"], n),
                       "area": rng.choice(["urban", "rural"], n),
                       "income_pc_month": rng.lognormal(14.5, 0.6, n)})
    for c in I22:
        df[c] = rng.random(n) < 0.2
    t = time.perf_counter()
    out = standards.classify(df)
    assert time.perf_counter() - t < 5
    # independent check with plain pandas for the 2022 standard rows
    m = df.period == "2023Q4"
    line = np.where(df.area == "urban", 2e6, 1.5e6)
    dep = df[I22].sum(axis=1)
    exp = np.where(df.income_pc_month <= line, np.where(dep >= 3, "poor", "near_poor"), "non_poor")
    assert (out[m].to_numpy() == exp[m.to_numpy()]).all()
