"""Flow metrics against hand-computed panels and against the slow per-household reference
(tests/reference_dynamics.py) on random panels (hypothesis): every count must match."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import povdyn
from povdyn import dynamics as dyn
from povdyn.errors import PeriodError, SchemaError
from povdyn.intervals import proportion_interval, ratio_variance, wilson_interval
from povdyn.panel import load_panel
from povdyn.periods import label, parse_period

import reference_dynamics as ref

STATUSES = ["poor", "near_poor", "non_poor"]


# ============================================================================ helpers
def make_panel(rows, freq="year"):
    """rows: (household, period, status|None, province[, removal_reason[, weight]])."""
    out = []
    for r in rows:
        h, p, s, prov = r[:4]
        out.append({"household_id": h, "period": p, "status": s, "province": prov,
                    "area": "rural" if h < "m" else "urban",
                    "removal_reason": r[4] if len(r) > 4 else None,
                    "weight": float(r[5]) if len(r) > 5 else 1.0})
    return pd.DataFrame(out)


def as_dict(df: pd.DataFrame, by, period_col, columns) -> dict:
    """Engine output -> {(by..., period_index): {column: value}}."""
    out = {}
    for rec in df.to_dict("records"):
        key = tuple(rec[b] for b in by) + (parse_period(rec[period_col])[1],)
        out[key] = {c: rec[c] for c in columns}
    return out


def assert_counts(engine: dict, reference: dict, columns, approx=False):
    assert set(engine) == set(reference), (sorted(engine), sorted(reference))
    for key, counts in engine.items():
        for c in columns:
            want = reference[key].get(c, 0.0)
            got = counts[c]
            if approx:
                assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9), (key, c, got, want)
            else:
                assert got == want, (key, c, got, want)


@st.composite
def random_panels(draw, quarterly=None, max_households=8, lists=False):
    """Small panels with gaps, removals, every status, a province that can change and a
    whole period possibly missing from the panel."""
    quarterly = draw(st.booleans()) if quarterly is None else quarterly
    n = draw(st.integers(2, 9 if quarterly else 6))
    start = 2020 * 4 + draw(st.integers(0, 3)) if quarterly else 2019
    periods = list(range(start, start + n))
    if n > 3 and draw(st.booleans()):  # no list at all in one middle period
        periods.pop(draw(st.integers(1, n - 2)))
    rows = []
    for i in range(draw(st.integers(1, max_households))):
        h = f"{'ahm'[i % 3]}{i:02d}"
        k = len(periods)
        seen = draw(st.lists(st.booleans(), min_size=k, max_size=k))
        status = draw(st.lists(st.sampled_from(STATUSES), min_size=k, max_size=k))
        prov = draw(st.lists(st.sampled_from(["A", "B"]), min_size=k, max_size=k))
        weight = draw(st.lists(st.sampled_from([1.0, 2.0, 4.5]), min_size=k, max_size=k))
        removal = draw(st.one_of(st.none(), st.integers(1, k - 1)))
        for j, p in enumerate(periods):
            lab = label("quarter" if quarterly else "year", p)
            if removal is not None and j == removal:
                rows.append((h, lab, None, prov[j], draw(st.sampled_from(
                    ["death", "migration", "split", "merger"])), weight[j]))
                break
            if seen[j] or (j == 0):
                rows.append((h, lab, status[j], prov[j], None, weight[j]))
    return make_panel(rows)


# ============================================================================ hand-made
def hand_panel():
    """a: poor 2020, near 2021, non 2022, poor 2023          (exit, exit->non, relapse)
       b: poor 2020, poor 2021, (gap 2022), non 2023          (no transition across gap)
       c: near 2020, poor 2021, removed 2022                  (entry new, removal)
       d: non 2021, poor 2022, near 2023                      (entry from non, exit)
       e: poor 2020, removed 2021                              (removal, not exit)"""
    return make_panel([
        ("a", 2020, "poor", "A"), ("a", 2021, "near_poor", "A"), ("a", 2022, "non_poor", "A"),
        ("a", 2023, "poor", "A"),
        ("b", 2020, "poor", "A"), ("b", 2021, "poor", "B"), ("b", 2023, "non_poor", "B"),
        ("c", 2020, "near_poor", "B"), ("c", 2021, "poor", "B"), ("c", 2022, None, "B", "death"),
        ("d", 2021, "non_poor", "A"), ("d", 2022, "poor", "A"), ("d", 2023, "near_poor", "A"),
        ("e", 2020, "poor", "A"), ("e", 2021, None, "A", "migration"),
    ])


def test_exit_rates_by_hand():
    out = povdyn.exit_rates(hand_panel())
    assert list(out.columns[:10]) == ["period", "at_risk", "exits", "to_near_poor",
                                      "to_non_poor", "rate", "ci_low", "ci_high", "removed"][:10]
    got = out.set_index("period")
    # 2021: poor in 2020 = a, b, e; e removed (attrition); a exits to near-poor
    assert got.loc[2021, ["at_risk", "exits", "to_near_poor", "to_non_poor", "removed"]].tolist() \
        == [2, 1, 1, 0, 1]
    # 2022: poor in 2021 = b (gap in 2022: not at risk), c (removed)
    assert got.loc[2022, ["at_risk", "exits", "removed"]].tolist() == [0, 0, 1]
    # 2023: poor in 2022 = d -> near-poor. b's 2021 poor -> 2023 non-poor is NOT a transition
    assert got.loc[2023, ["at_risk", "exits", "to_near_poor", "to_non_poor"]].tolist() == [1, 1, 1, 0]
    assert got.loc[2021, "rate"] == 0.5
    lo, hi = wilson_interval(1, 2)
    assert got.loc[2021, "ci_low"] == pytest.approx(float(lo))
    assert got.loc[2021, "ci_high"] == pytest.approx(float(hi))


def test_exit_rates_by_province_read_at_origin():
    panel = load_panel(hand_panel())
    povdyn.exit_rates(panel)  # a pivot without groups first: replaced, not reused
    out = povdyn.exit_rates(panel, by="province").set_index(["province", "period"])
    # b is in A in 2020 and B in 2021: its 2020->2021 stay-poor counts in A (origin)
    assert out.loc[("A", 2021), "at_risk"] == 2
    assert ("B", 2021) not in out.index  # c was near-poor in 2020: not at risk of exit


def test_near_poor_exits_and_falls():
    out = povdyn.exit_rates(hand_panel(), from_status="near_poor").set_index("period")
    # near-poor 2020: c -> poor 2021 (a fall, not an exit); near-poor 2021: a -> non 2022
    assert out.loc[2021, ["at_risk", "exits", "falls"]].tolist() == [1, 0, 1]
    assert out.loc[2022, ["at_risk", "exits", "to_non_poor", "falls"]].tolist() == [1, 1, 1, 0]
    assert out["to_near_poor"].isna().all()


def test_entries_by_hand():
    out = povdyn.entries(hand_panel()).set_index("period")
    # 2020 is the first period: no entries (left-censored)
    assert 2020 not in out.index
    assert out.loc[2021, ["entries", "relapsed", "new_poor", "from_near_poor"]].tolist() == [1, 0, 1, 1]
    assert out.loc[2022, ["entries", "new_poor", "from_non_poor"]].tolist() == [1, 1, 1]
    # 2023: a poor again (poor in 2020) -> relapse
    assert out.loc[2023, ["entries", "relapsed", "new_poor"]].tolist() == [1, 1, 0]


def test_relapse_by_hand():
    out = povdyn.relapse_rates(hand_panel(), within=2).set_index("exit_period")
    # exit 2021 (a): followed 2022, 2023, poor in 2023 -> relapsed
    assert out.loc[2021, ["exits", "followed", "relapsed", "not_followed"]].tolist() == [1, 1, 1, 0]
    # exit 2023 (d): panel ends -> not followed
    assert out.loc[2023, ["exits", "followed", "not_followed"]].tolist() == [1, 0, 1]
    assert math.isnan(out.loc[2023, "rate"])
    one = povdyn.relapse_rates(hand_panel(), within=1).set_index("exit_period")
    assert one.loc[2021, ["followed", "relapsed", "sustained"]].tolist() == [1, 0, 1]
    sus = dyn.sustained_exits(hand_panel(), within=2).set_index("exit_period")
    assert sus.loc[2021, ["followed", "sustained", "rate"]].tolist() == [1, 0, 0.0]


def test_transition_matrix_by_hand():
    tm = povdyn.transition_matrix(hand_panel())
    assert len(tm) == 9
    got = tm.set_index(["from_status", "to_status"])["count"]
    # pairs: a 20->21 p->n, 21->22 n->non, 22->23 non->p; b 20->21 p->p; c 20->21 n->p;
    #        d 21->22 non->p, 22->23 p->n.  (b 2021->2023 skipped: gap; removals excluded)
    assert got[("poor", "near_poor")] == 2
    assert got[("poor", "poor")] == 1
    assert got[("near_poor", "non_poor")] == 1
    assert got[("near_poor", "poor")] == 1
    assert got[("non_poor", "poor")] == 2
    assert got.sum() == 7
    shares = tm.set_index(["from_status", "to_status"])["share"]
    assert shares[("poor", "near_poor")] == pytest.approx(2 / 3)
    table = dyn.matrix_table(tm)
    assert table.loc["poor", ("total", "count")] == 3
    assert table.loc["poor", ("near_poor", "share")] == pytest.approx(2 / 3)


def test_churn_and_confirmed_exits():
    df = make_panel([
        ("a", 2020, "poor", "A"), ("a", 2021, "near_poor", "A"), ("a", 2022, "poor", "A"),
        ("b", 2020, "poor", "A"), ("b", 2021, "non_poor", "A"), ("b", 2022, "non_poor", "A"),
        ("c", 2020, "poor", "A"), ("c", 2021, "poor", "A"), ("c", 2022, "poor", "A"),
    ])
    ch = dyn.churn(df).set_index("exit_period")
    assert ch.loc[2021, ["exits", "followed", "churned", "rate"]].tolist() == [2, 2, 1, 0.5]
    conf = dyn.confirmed_exit_rates(df, periods_out=2).set_index("period")
    assert conf.loc[2021, ["at_risk", "exits", "confirmed_exits", "returned"]].tolist() == [3, 2, 1, 1]
    # 2022: needs 2023, which the panel does not have -> censored
    assert conf.loc[2022, ["at_risk", "not_followed"]].tolist() == [0, 1]  # c only


def test_quarterly_gap_breaks_transition():
    df = make_panel([("a", "2024Q1", "poor", "A"), ("a", "2024Q3", "non_poor", "A"),
                     ("b", "2024Q2", "poor", "A"), ("b", "2024Q3", "non_poor", "A")])
    out = povdyn.exit_rates(df).set_index("period")
    assert out.loc["2024Q3", ["at_risk", "exits"]].tolist() == [1, 1]
    assert out.loc["2024Q2", "at_risk"] == 0  # a poor in Q1, not observed in Q2
    assert povdyn.transition_matrix(df)["count"].sum() == 1


def test_weighted_rates_are_sums_of_weights():
    df = make_panel([("a", 2020, "poor", "A", None, 5), ("a", 2021, "non_poor", "A", None, 5),
                     ("b", 2020, "poor", "A", None, 1), ("b", 2021, "poor", "A", None, 1),
                     ("c", 2020, "poor", "A", None, 2), ("c", 2021, "poor", "A", None, 2)])
    out = povdyn.exit_rates(df, weight="weight").iloc[0]
    assert out["at_risk"] == 8.0 and out["exits"] == 5.0 and out["n_at_risk"] == 3
    assert out["rate"] == pytest.approx(5 / 8)
    # linearised variance, households as clusters: sum (w y - p w)^2 * G/(G-1) / (sum w)^2
    p = 5 / 8
    v = 3 / 2 * ((5 - p * 5) ** 2 + (0 - p) ** 2 + (0 - 2 * p) ** 2) / 64
    n_eff = p * (1 - p) / v
    lo, hi = wilson_interval(p * n_eff, n_eff)
    assert out["ci_low"] == pytest.approx(float(lo)) and out["ci_high"] == pytest.approx(float(hi))


def test_pooled_rates_cluster_by_household():
    # household a exits twice (2021, 2023): pooled over periods it is one cluster
    df = make_panel([("a", 2020, "poor", "A"), ("a", 2021, "non_poor", "A"),
                     ("a", 2022, "poor", "A"), ("a", 2023, "non_poor", "A"),
                     ("b", 2020, "poor", "A"), ("b", 2021, "poor", "A"),
                     ("b", 2022, "poor", "A"), ("b", 2023, "poor", "A")])
    out = povdyn.exit_rates(df, pool_periods=True).iloc[0]
    assert "period" not in out.index
    assert (out["at_risk"], out["exits"]) == (5, 2)
    # clusters: a: Y=2, N=2; b: Y=0, N=3
    v = ratio_variance(2, 5, 4, 4, 4 + 9, 2)
    assert v == pytest.approx(2 * ((2 - 0.4 * 2) ** 2 + (0 - 0.4 * 3) ** 2) / 25)
    rate, lo, hi = proportion_interval(2, 5, 4, 4, 13, 2)
    assert out["ci_low"] == pytest.approx(float(lo)) and out["ci_high"] == pytest.approx(float(hi))


# ============================================================================ intervals
def test_wilson_matches_hand_and_statsmodels():
    from statsmodels.stats.proportion import proportion_confint

    # by hand: x=1, n=2 -> centre (0.5 + z^2/4)/(1 + z^2/2) = 0.5, half width
    z = 1.959963984540054
    half = z / (1 + z * z / 2) * math.sqrt(0.25 / 2 + z * z / 16)
    lo, hi = wilson_interval(1, 2)
    assert float(lo) == pytest.approx(0.5 - half) and float(hi) == pytest.approx(0.5 + half)
    x = np.array([0, 1, 5, 17, 40, 3])
    n = np.array([10, 1, 20, 30, 40, 1000])
    lo, hi = wilson_interval(x, n)
    ref_lo, ref_hi = proportion_confint(x, n, alpha=0.05, method="wilson")
    np.testing.assert_allclose(lo, ref_lo, atol=1e-12)
    np.testing.assert_allclose(hi, ref_hi, atol=1e-12)
    assert np.isnan(wilson_interval(0, 0)[0])


def test_clustered_interval_reduces_to_wilson_for_independent_units():
    # 40 households, one trial each, 10 successes: n_eff = n - 1 (CR1 factor)
    x, n = 10, 40
    rate, lo, hi = proportion_interval(x, n, x, x, n, n)
    wl, wh = wilson_interval(x / n * (n - 1), n - 1)
    assert rate == 0.25 and float(lo) == pytest.approx(float(wl)) and float(hi) == pytest.approx(float(wh))
    # p = 0: variance 0 -> Kish effective n (= n for equal weights) -> plain Wilson
    rate, lo, hi = proportion_interval(0, 20, 0, 0, 20, 20)
    assert float(hi) == pytest.approx(float(wilson_interval(0, 20)[1]))
    # a cluster design effect widens the interval: 10 households of 4 identical events
    rate, lo_c, hi_c = proportion_interval(12, 40, 3 * 16, 3 * 16, 10 * 16, 10)
    wl, wh = wilson_interval(12, 40)
    assert hi_c - lo_c > wh - wl


# ============================================================================ vs reference
METRICS = ["exits", "near_poor_exits", "entries", "relapse", "confirmed", "transitions"]


def check_metric(metric, panel, hist, by, within=2, weight=None):
    """One engine metric on ``panel`` against the reference on ``hist``, plus invariants."""
    approx = weight is not None
    if metric == "exits":
        cols = ["at_risk", "exits", "to_near_poor", "to_non_poor", "removed"]
        got = as_dict(dyn.exit_rates(panel, by=by, weight=weight), by, "period", cols + ["rate"])
        assert_counts(got, ref.exit_counts(hist, by, "poor", weight), cols, approx)
        for row in got.values():
            assert row["exits"] <= row["at_risk"] + 1e-9
            assert math.isclose(row["to_near_poor"] + row["to_non_poor"], row["exits"])
    elif metric == "near_poor_exits":
        cols = ["at_risk", "exits", "to_non_poor", "falls", "removed"]
        out = dyn.exit_rates(panel, by=by, from_status="near_poor", weight=weight)
        assert_counts(as_dict(out, by, "period", cols),
                      ref.exit_counts(hist, by, "near_poor", weight), cols, approx)
    elif metric == "entries":
        cols = ["entries", "relapsed", "new_poor", "from_near_poor", "from_non_poor",
                "from_unobserved"]
        got = as_dict(dyn.entries(panel, by=by, weight=weight), by, "period", cols)
        assert_counts(got, ref.entry_counts(hist, by, weight), cols, approx)
        for row in got.values():
            assert math.isclose(row["entries"], row["relapsed"] + row["new_poor"])
    elif metric == "relapse":
        cols = ["exits", "followed", "relapsed", "not_followed", "sustained"]
        out = dyn.relapse_rates(panel, within=within, by=by, weight=weight)
        assert_counts(as_dict(out, by, "exit_period", cols),
                      ref.relapse_counts(hist, within, by, weight), cols, approx)
    elif metric == "confirmed":
        cols = ["at_risk", "exits", "confirmed_exits", "returned", "not_followed"]
        out = dyn.confirmed_exit_rates(panel, by=by, weight=weight)
        assert_counts(as_dict(out, by, "period", cols), ref.confirmed_counts(hist, 2, by, weight),
                      cols, approx)
    else:
        tm = dyn.transition_matrix(panel, by=by, weight=weight)
        got = {tuple(r[b] for b in by) + (r["from_status"], r["to_status"]): r["count"]
               for r in tm.to_dict("records") if r["count"] != 0}
        want = ref.transition_counts(hist, by, weight)
        assert got.keys() == want.keys()
        for k in got:
            assert math.isclose(got[k], want[k]), k


BYS = st.sampled_from([[], ["province"], ["province", "area"]])


@settings(max_examples=45, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(df=random_panels(), by=BYS, within=st.integers(1, 3), metric=st.sampled_from(METRICS))
def test_counts_equal_reference(df, by, within, metric):
    check_metric(metric, load_panel(df), ref.build(df), by, within)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(df=random_panels(quarterly=False), by=st.sampled_from([[], ["province"]]),
       metric=st.sampled_from(METRICS))
def test_weighted_counts_equal_reference(df, by, metric):
    check_metric(metric, load_panel(df), ref.build(df), by, 2, weight="weight")


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(df=random_panels(quarterly=True), metric=st.sampled_from(METRICS))
@pytest.mark.filterwarnings("ignore:frequency='year'")
def test_annual_view_equals_reference(df, metric):
    check_metric(metric, load_panel(df, frequency="year"), ref.build(df, frequency="year"),
                 ["province"])


def _list_based(full: pd.DataFrame) -> pd.DataFrame:
    """The list-based register of a full panel: only poor and near-poor rows (and removal
    rows) are listed."""
    keep = full["status"].isin(["poor", "near_poor"]) | full["removal_reason"].notna()
    return full[keep].reset_index(drop=True)


@st.composite
def full_panels_with_lists(draw):
    """Full panels whose list-based version carries the same information: each household
    is observed every period from its first listed (poor/near-poor) period until removal
    or the end, and its non-poor rows repeat the province of its latest listed row."""
    quarterly = draw(st.booleans())
    n = draw(st.integers(2, 6))
    start = 2021 * 4 if quarterly else 2019
    freq = "quarter" if quarterly else "year"
    rows = []
    for i in range(draw(st.integers(1, 8))):
        h = f"{'ahm'[i % 3]}{i:02d}"
        first = draw(st.integers(0, n - 1))
        removal = draw(st.one_of(st.none(), st.integers(first + 1, n)))
        end = n if removal is None else removal
        prov = "A"
        for j in range(first, min(end, n)):
            s = draw(st.sampled_from(STATUSES)) if j > first else draw(
                st.sampled_from(["poor", "near_poor"]))
            if s != "non_poor":
                prov = draw(st.sampled_from(["A", "B"]))
            rows.append((h, label(freq, start + j), s, prov))
        if removal is not None and removal < n:
            rows.append((h, label(freq, start + removal), None, prov, "death"))
    # the panel's periods must all appear in the lists too: one always-poor household
    rows += [("zz", label(freq, start + j), "poor", "A") for j in range(n)]
    return make_panel(rows)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(full=full_panels_with_lists(), by=st.sampled_from([[], ["province"]]),
       metric=st.sampled_from(["exits", "entries", "relapse", "transitions"]))
def test_list_based_agrees_with_full_panel(full, by, metric):
    lists = load_panel(_list_based(full), absent_means="non_poor")
    whole = load_panel(full)
    run = {"exits": dyn.exit_rates, "entries": dyn.entries, "relapse": dyn.relapse_rates,
           "transitions": dyn.transition_matrix}[metric]
    pd.testing.assert_frame_equal(run(lists, by=by), run(whole, by=by))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(df=random_panels(), metric=st.sampled_from(METRICS))
def test_list_expansion_equals_reference(df, metric):
    """absent_means="non_poor" on any panel (gaps, removals) equals the reference's
    loop-based expansion."""
    check_metric(metric, load_panel(df, absent_means="non_poor"),
                 ref.build(df, absent_means="non_poor"), ["province"])


# ============================================================================ bad input
def test_unknown_status_is_an_error():
    df = hand_panel()
    df.loc[2, "status"] = "rich"
    with pytest.raises(SchemaError, match="status"):
        povdyn.exit_rates(df)


def test_duplicate_household_period_is_an_error():
    df = pd.concat([hand_panel(), hand_panel().iloc[[0]]], ignore_index=True)
    with pytest.raises(SchemaError, match="household"):
        povdyn.entries(df)


def test_missing_by_column_lists_available_columns():
    with pytest.raises(SchemaError, match=r"no column 'district'.*province"):
        povdyn.exit_rates(hand_panel(), by=["province", "district"])
    with pytest.raises(SchemaError, match="no column 'size'"):
        povdyn.exit_rates(hand_panel(), weight="size")


def test_mixed_frequencies_is_an_error():
    df = make_panel([("a", 2020, "poor", "A"), ("a", "2021Q1", "poor", "A")])
    df["period"] = df["period"].astype(object)
    with pytest.raises((SchemaError, PeriodError), match="annual and quarterly"):
        povdyn.exit_rates(df)


def test_bad_arguments():
    with pytest.raises(SchemaError, match="from_status"):
        povdyn.exit_rates(hand_panel(), from_status="non_poor")
    with pytest.raises(SchemaError, match="within"):
        povdyn.relapse_rates(hand_panel(), within=0)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(df=random_panels(), metric=st.sampled_from(METRICS))
def test_unpacked_layout_equals_reference(df, metric):
    """Panels longer than 20 periods use one aggregate per period instead of packed
    codes: force that layout on small panels and check it against the reference too."""
    from unittest import mock

    with mock.patch.object(dyn._History, "MAX_BITS", 2):
        check_metric(metric, load_panel(df), ref.build(df), ["province"], 2, weight="weight")


@pytest.mark.filterwarnings("ignore:frequency='year'")
def test_relapse_matches_planted_truth(demo_register):
    """The synthetic register's calibration counts exits followed to the next annual
    review and relapses among them, straight from its simulation (povdyn.synth): the
    annual view of its quarterly panel must give exactly those counts."""
    truth = demo_register.truth["calibration"]["relapse_share_of_exits"]
    panel = load_panel(demo_register.panel, frequency="year")
    got = dyn.relapse_rates(panel, within=1).set_index("exit_period")
    assert truth  # the planted counts exist
    for year, want in truth.items():
        assert got.loc[int(year), "followed"] == want["exits_followed"], year
        assert got.loc[int(year), "relapsed"] == want["relapsed"], year
