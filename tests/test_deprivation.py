"""povdyn.deprivation: Alkire–Foster on hand-computed cases, persistent deprivations."""
import numpy as np
import pandas as pd
import pytest

from povdyn import deprivation as dp
from povdyn import standards
from povdyn.errors import SchemaError

IND12 = standards.INDICATORS_2022


def _four():
    # 4 households x 4 indicators, equal custom weights 1/4, hand-computed below
    return pd.DataFrame({
        "a": [1, 1, 1, 0], "b": [1, 0, 1, 0], "c": [0, 0, 1, 0], "d": [0, 0, 1, 0],
        "grp": ["x", "x", "y", "y"],
    }).astype({c: bool for c in "abcd"})


W4 = {"a": 0.25, "b": 0.25, "c": 0.25, "d": 0.25}


def test_hand_case_k_at_boundary_counts_as_poor():
    # scores: h1 .5, h2 .25, h3 1, h4 0. k = .5: h1 (exactly at k) and h3 are poor
    r = dp.alkire_foster(_four(), list("abcd"), weights=W4, k=0.5)
    assert r["H"] == pytest.approx(0.5)
    assert r["A"] == pytest.approx(0.75)
    assert r["M0"] == pytest.approx(0.375)
    assert r["M0"] == pytest.approx(r["H"] * r["A"])
    assert r["n"] == 4 and r["n_poor"] == 2
    assert r["censored_headcount"] == pytest.approx({"a": 0.5, "b": 0.5, "c": 0.25, "d": 0.25})
    assert r["contribution"] == pytest.approx({"a": 100 / 3, "b": 100 / 3, "c": 50 / 3, "d": 50 / 3})
    assert sum(r["contribution"].values()) == pytest.approx(100)
    uncensored = r.indicators.set_index("indicator")["uncensored_headcount"]
    assert uncensored["a"] == pytest.approx(0.75)
    # just above the boundary: h1 is no longer poor
    r2 = dp.alkire_foster(_four(), list("abcd"), weights=W4, k=0.51)
    assert r2["H"] == pytest.approx(0.25) and r2["A"] == pytest.approx(1.0)


def test_by_group_and_iid_standard_error():
    r = dp.alkire_foster(_four(), list("abcd"), weights=W4, k=0.5, by="grp")
    t = r.table.set_index("grp")
    assert t.loc["x", "H"] == pytest.approx(0.5) and t.loc["y", "H"] == pytest.approx(0.5)
    assert t.loc["x", "M0"] == pytest.approx(0.25) and t.loc["y", "M0"] == pytest.approx(0.5)
    ind = r.indicators.groupby("grp")["contribution_pct"].sum()
    assert ind.to_numpy() == pytest.approx([100, 100])
    # iid SE of a proportion with the n/(n-1) factor: sqrt(H(1-H)/(n-1))
    assert r["H_se"] == pytest.approx(np.sqrt(0.5 * 0.5 / 3))


def test_default_weights_nested_equal_and_float_boundary():
    w = dp.default_weights(IND12)
    assert all(v == pytest.approx(1 / 12) for v in w.values())
    assert sum(w.values()) == pytest.approx(1)
    sub = dp.default_weights(["dep_water", "dep_latrine", "dep_telecom"])
    assert sub == pytest.approx({"dep_water": 0.25, "dep_latrine": 0.25, "dep_telecom": 0.5})
    rows = np.zeros((3, 12), bool)
    rows[0, :4] = True    # 4 of 12 = 1/3 exactly (float sum of 1/12s): poor at k = 1/3
    rows[1, [0, 2, 4]] = True  # 3 of 12 = 1/4: not poor
    df = pd.DataFrame(rows, columns=IND12)
    r = dp.alkire_foster(df, IND12)
    assert r["n_poor"] == 1 and r["H"] == pytest.approx(1 / 3)
    assert r["A"] == pytest.approx(1 / 3)


def test_custom_weights_change_who_is_poor():
    df = pd.DataFrame({"a": [True, False], "b": [False, True], "c": [False, False]})
    r = dp.alkire_foster(df, ["a", "b", "c"], weights={"a": 0.5, "b": 0.25, "c": 0.25}, k=0.5)
    assert r["H"] == pytest.approx(0.5)          # only the household deprived in a
    r_eq = dp.alkire_foster(df, ["a", "b", "c"], weights={"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}, k=0.5)
    assert r_eq["H"] == 0


def test_all_and_no_deprivations():
    none = pd.DataFrame(np.zeros((5, 12), bool), columns=IND12)
    r = dp.alkire_foster(none, IND12)
    assert r["H"] == 0 and r["M0"] == 0 and np.isnan(r["A"])
    assert all(np.isnan(v) for v in r["contribution"].values())
    full = pd.DataFrame(np.ones((5, 12), bool), columns=IND12)
    r = dp.alkire_foster(full, IND12, k=1.0)
    assert r["H"] == 1 and r["A"] == pytest.approx(1) and r["M0"] == pytest.approx(1)
    assert list(r["contribution"].values()) == pytest.approx([100 / 12] * 12)


def test_household_weights_equal_duplicated_rows():
    df = _four()
    w = df.assign(wt=[2.0, 1.0, 1.0, 3.0])
    dup = pd.concat([df.iloc[[0, 0, 1, 2, 3, 3, 3]]], ignore_index=True)
    r_w = dp.alkire_foster(w, list("abcd"), weights=W4, k=0.5, weight="wt")
    r_d = dp.alkire_foster(dup, list("abcd"), weights=W4, k=0.5)
    for key in ("H", "A", "M0"):
        assert r_w[key] == pytest.approx(r_d[key])


def test_errors_are_clear():
    df = _four()
    with pytest.raises(SchemaError, match="dep_missing"):
        dp.alkire_foster(df, ["a", "dep_missing"], weights={"a": .5, "dep_missing": .5})
    with pytest.raises(ValueError, match="sum to 0.9"):
        dp.alkire_foster(df, list("abcd"), weights={"a": .3, "b": .2, "c": .2, "d": .2})
    with pytest.raises(ValueError, match="k="):
        dp.alkire_foster(df, list("abcd"), weights=W4, k=0)
    with pytest.raises(SchemaError, match="no dimension"):
        dp.alkire_foster(df, list("abcd"))


def test_missing_indicator_values_excluded_and_counted():
    df = _four().astype(object)
    df.loc[3, "a"] = None
    r = dp.alkire_foster(df, list("abcd"), weights=W4, k=0.5)
    assert r["n"] == 3 and r["n_excluded"] == 1 and r["H"] == pytest.approx(2 / 3)


def _panel():
    rows = [
        # hh, period, status, number of deprivations at that row
        ("A", "2024Q1", "poor", 4), ("A", "2024Q2", "poor", 4), ("A", "2024Q3", "near_poor", 3),
        ("B", "2024Q2", "poor", 3), ("B", "2024Q3", "non_poor", 1),
        ("C", "2024Q1", "poor", 3), ("C", "2024Q2", "non_poor", 0), ("C", "2024Q3", "poor", 5),
        ("D", "2024Q2", "poor", 3), ("D", "2024Q3", "poor", 3),
        ("E", "2024Q2", "non_poor", 0), ("E", "2024Q3", "poor", 6),
        ("F", "2024Q1", "poor", 3), ("F", "2024Q3", "poor", 4),
        ("G", "2024Q2", "near_poor", 1), ("G", "2024Q3", "near_poor", 1),
        ("H", "2024Q2", "poor", 3), ("H", "2024Q3", None, 0),
    ]
    records = []
    for hh, period, status, n in rows:
        deps = {c: i < n for i, c in enumerate(IND12)}
        records.append({"household_id": hh, "period": period, "status": status,
                        "area": "rural", **deps})
    return pd.DataFrame(records)


def test_trajectory_groups_by_hand():
    groups = dp.trajectory_groups(_panel(), "2024Q3").set_index("household_id")["group"]
    assert groups.to_dict() == {"A": "exited", "B": "exited", "C": "relapsed",
                                "D": "stayed_poor", "E": "new_poor", "F": "relapsed"}


def test_persistent_and_fragile():
    pers = dp.persistent_deprivations(_panel(), "2024Q3").set_index(["group", "indicator"])
    # exited A (3 deps: first three indicators) and B (1 dep: the first)
    assert pers.loc[("exited", IND12[0]), "share"] == pytest.approx(1.0)
    assert pers.loc[("exited", IND12[1]), "share"] == pytest.approx(0.5)
    assert pers.loc[("exited", IND12[3]), "share"] == pytest.approx(0.0)
    assert pers.loc[("exited", "three_or_more"), "deprived"] == 1
    assert pers.loc[("relapsed", "n_deprivations_mean"), "share"] == pytest.approx(4.5)
    fr = dp.fragile_exits(_panel(), "2024Q3").set_index("household_id")
    assert fr["fragile"].to_dict() == {"A": True, "B": False}
    assert fr.loc["A", "deprivations"] == ";".join(IND12[:3])


def test_deprivation_summary_tables():
    out = dp.deprivation_summary(_panel(), "2024Q3", lang="en")
    assert set(out) == {"af", "contributions", "persistent", "fragile"}
    assert out["contributions"]["contribution_pct"].sum() == pytest.approx(100)
    assert out["fragile"].iloc[0].tolist()[:2] == [2, 1]
    assert out["persistent"].loc["Households", "Exited poverty"] == 2
    vi = dp.deprivation_summary(_panel(), "2024Q3")
    assert "Bảo hiểm y tế" in set(vi["contributions"]["label"])


def test_plots_draw(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    from povdyn.plots import deprivation as plots
    from povdyn import standard_change as sc

    out = dp.deprivation_summary(_panel(), "2024Q3")
    fig = plots.contributions(out)
    bars = fig.axes[0].patches
    assert sum(b.get_width() for b in bars) == pytest.approx(100)
    fig.savefig(tmp_path / "c.png")
    fig2 = plots.persistent(out["persistent"], lang="en")
    assert len(fig2.axes[0].patches) == 13 * 4   # 12 indicators + "3 or more", 4 groups
    r = sc.reclassify(_panel().query("period == '2024Q3' and status.notna()").assign(income_pc_month=1e6),
                      standard="national_2027_2030")
    fig3 = plots.reclassification(r.table)
    fig3.savefig(tmp_path / "r.png")


def test_fragile_exit_outcomes_by_hand():
    # exits at 2024Q2: A (4 deps, fragile) relapses in Q3; B (1 dep) stays out; C (2 deps)
    # is removed in Q3 (not followed)
    rows = []
    for hh, seq in {"A": [("poor", 4), ("non_poor", 4), ("poor", 4)],
                    "B": [("poor", 3), ("near_poor", 1), ("non_poor", 1)],
                    "C": [("poor", 3), ("non_poor", 2), (None, 2)]}.items():
        for period, (status, n) in zip(["2024Q1", "2024Q2", "2024Q3"], seq):
            rows.append({"household_id": hh, "period": period, "status": status,
                         **{c: i < n for i, c in enumerate(IND12)}})
    out = dp.fragile_exit_outcomes(pd.DataFrame(rows), "2024Q2", within=1).set_index("fragile")
    assert out.loc[True, ["exits", "followed", "relapsed"]].tolist() == [1, 1, 1]
    assert out.loc[False, ["exits", "followed", "relapsed"]].tolist() == [2, 1, 0]
    assert out.loc[False, "rate"] == 0


def test_summary_same_from_panel_and_dataframe(demo_register, tmp_path):
    import povdyn

    df = demo_register.panel
    path = tmp_path / "panel.parquet"
    df.to_parquet(path)
    panel = povdyn.load_panel(path)
    for region in (None, "Tỉnh Yên Bái"):   # an old name selects its 2025 province (Lào Cai)
        a = dp.deprivation_summary(panel, "2025Q4", region=region)
        b = dp.deprivation_summary(df, "2025Q4", region=region)
        for key in a:
            pd.testing.assert_frame_equal(a[key].reset_index(drop=True),
                                          b[key].reset_index(drop=True), check_dtype=False)
    lao_cai = dp.panel_frame(df, "Yên Bái")
    assert set(lao_cai["province_2025"]) == {"Lào Cai"}
    # the AF headcount of the whole register equals a direct count (independent check)
    now = df[(df.period == "2025Q4") & df.status.notna()]
    score = now[IND12].sum(axis=1) / 12
    r = dp.alkire_foster(now, IND12)
    assert r["H"] == pytest.approx((score >= 4 / 12 - 1e-12).mean())
    assert r["M0"] == pytest.approx(score.where(score >= 4 / 12 - 1e-12, 0).mean())


def test_standard_errors_match_statsmodels():
    # Independent reference: the SE of a (weighted) mean is the SE of the constant in a
    # regression on a constant — iid (OLS), weighted (WLS, HC1) and clustered by commune.
    import statsmodels.api as sm

    rng = np.random.default_rng(3)
    n = 400
    df = pd.DataFrame(rng.random((n, 12)) < 0.25, columns=IND12)
    df["commune"] = rng.integers(0, 40, n)
    df["wt"] = rng.uniform(0.5, 3, n)
    r = dp.alkire_foster(df, IND12)
    score = df[IND12].sum(axis=1).to_numpy() / 12
    poor = (score >= 1 / 3 - 1e-12).astype(float)
    censored = np.where(poor == 1, score, 0.0)
    const = np.ones((n, 1))
    assert r["H_se"] == pytest.approx(sm.OLS(poor, const).fit().bse[0], rel=1e-9)
    assert r["M0_se"] == pytest.approx(sm.OLS(censored, const).fit().bse[0], rel=1e-9)
    rw = dp.alkire_foster(df, IND12, weight="wt")
    wls = sm.WLS(poor, const, weights=df["wt"]).fit(cov_type="HC1")
    assert rw["H"] == pytest.approx(wls.params[0])
    assert rw["H_se"] == pytest.approx(wls.bse[0], rel=1e-9)
    rc = dp.alkire_foster(df, IND12, cluster="commune")
    clustered = sm.OLS(censored, const).fit(cov_type="cluster", cov_kwds={"groups": df["commune"]})
    assert rc["M0_se"] == pytest.approx(clustered.bse[0], rel=1e-9)


def test_income_near_line_row():
    panel = _panel()
    panel["income_pc_month"] = 5_000_000.0
    panel.loc[(panel.household_id == "A") & (panel.period == "2024Q3"), "income_pc_month"] = 1_790_000.0
    panel.loc[(panel.household_id == "B") & (panel.period == "2024Q3"), "income_pc_month"] = 1_810_000.0
    pers = dp.persistent_deprivations(panel, "2024Q3").set_index(["group", "indicator"])
    # rural line 1.5M in 2024: 1.2 x line = 1.8M -> A is near the line, B is not
    assert pers.loc[("exited", "income_near_line"), "deprived"] == 1
    assert pers.loc[("exited", "income_near_line"), "share"] == pytest.approx(0.5)


def test_summary_unknown_period_or_region_is_clear():
    with pytest.raises(SchemaError, match="no households at period '2030Q1'"):
        dp.deprivation_summary(_panel(), "2030Q1")
    with pytest.raises(SchemaError, match="unknown"):
        dp.deprivation_summary(_panel(), "2024Q3", region="Atlantis")


def test_af_table_by_suppresses_small_groups():
    """A group of 3 households never shows its count or its rates."""
    import pandas as pd

    from povdyn.deprivation import af_table_by

    big = pd.DataFrame({"g": ["big"] * 40, "d1": [True] * 20 + [False] * 20, "d2": [True] * 40})
    tiny = pd.DataFrame({"g": ["tiny"] * 3, "d1": [True] * 3, "d2": [True] * 3})
    out = af_table_by(pd.concat([big, tiny]), ["d1", "d2"], by="g", weights={"d1": 0.5, "d2": 0.5}, k=1.0).set_index("g")
    assert out.loc["tiny", "n"] == "<10" and out.loc["tiny", "M0"] == "—"
    assert out.loc["big", "n"] == 40 and out.loc["big", "H"] == 50.0
