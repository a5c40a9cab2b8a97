"""povdyn.standard_change: reclassification and flow decomposition, checked by hand."""
import pandas as pd
import pytest

from povdyn import standard_change as sc
from povdyn import standards

IND12 = standards.INDICATORS_2022


def _row(hh, period, area, income, deps=(), status=None):
    row = {"household_id": hh, "period": period, "area": area, "income_pc_month": float(income),
           "status": status, **{c: c in deps for c in IND12}}
    return row


def _n(k):
    """k deprivations among indicators also counted by the 2016 standard."""
    return ["dep_nutrition", "dep_health_insurance", "dep_water", "dep_latrine", "dep_telecom"][:k]


def _households_2025():
    # 2022–2025 lines: rural 1.5M, urban 2.0M; 2027–2030: rural 2.2M, urban 2.8M; poor
    # needs >= 3 deprivations in both. Expected old -> new status in the comment.
    rows = [
        _row("h1", "2025Q4", "rural", 1_400_000, _n(2) + ["dep_info_devices"]),  # poor -> poor
        _row("h2", "2025Q4", "rural", 1_400_000, _n(2)),   # near -> near
        _row("h3", "2025Q4", "rural", 1_800_000, _n(4)),   # non -> poor
        _row("h4", "2025Q4", "rural", 1_800_000, _n(1)),   # non -> near
        _row("h5", "2025Q4", "urban", 2_500_000, _n(3)),   # non -> poor
        _row("h6", "2025Q4", "urban", 3_000_000, _n(5)),   # non -> non
        _row("h7", "2025Q4", "urban", 1_900_000, []),      # near -> near
        _row("h8", "2025Q4", "rural", 2_200_000, []),      # non -> near (at the line = below)
    ]
    return pd.DataFrame(rows)


def test_reclassify_2027_by_hand():
    r = sc.reclassify(_households_2025(), standard="national_2027_2030")
    got = dict(zip(r.statuses["household_id"], zip(r.statuses["old_status"], r.statuses["new_status"])))
    assert got == {
        "h1": ("poor", "poor"), "h2": ("near_poor", "near_poor"), "h3": ("non_poor", "poor"),
        "h4": ("non_poor", "near_poor"), "h5": ("non_poor", "poor"), "h6": ("non_poor", "non_poor"),
        "h7": ("near_poor", "near_poor"), "h8": ("non_poor", "near_poor"),
    }
    assert r.summary["changed"] == 4
    assert r.summary["into_poverty"] == 2 and r.summary["out_of_poverty"] == 0
    assert r.table.loc["non_poor", "poor"] == 2
    assert r.table.loc["total", "total"] == 8
    assert r.standards["new"] == ["national_2027_2030"]
    assert any("dep_digital_services" in a and "dep_info_devices" in a for a in r.assumptions)
    assert any("dep_waste" in a and "not deprived" in a for a in r.assumptions)


def test_reclassify_stand_in_assumption_matters():
    # h1's third deprivation is the information device; without the stand-in it has 2
    r = sc.reclassify(_households_2025(), standard="national_2027_2030",
                      stand_ins={"dep_digital_services": None, "dep_waste": None})
    h1 = r.statuses.set_index("household_id").loc["h1"]
    assert (h1["old_status"], h1["new_status"]) == ("poor", "near_poor")
    # recorded digital-services column used when present
    df = _households_2025().assign(dep_digital_services=False, dep_waste=False)
    df.loc[df.household_id == "h2", "dep_waste"] = True
    r2 = sc.reclassify(df, standard="national_2027_2030")
    h2 = r2.statuses.set_index("household_id").loc["h2"]
    assert h2["new_status"] == "poor"      # 2 + waste = 3 deprivations
    assert r2.assumptions == []


def test_reclassify_income_factor():
    # uprating incomes by 20%: h3 (1.8M -> 2.16M) stays under 2.2M, h8 (2.2M -> 2.64M) does not
    r = sc.reclassify(_households_2025(), standard="national_2027_2030", income_factor=1.2)
    new = r.statuses.set_index("household_id")["new_status"]
    assert new["h3"] == "poor" and new["h8"] == "non_poor"


def test_local_vs_national_hcmc():
    # HCMC 2021–2025 (to 2025Q3): poor < 3.0M/month, strictly; near-poor <= 3.833M; income only
    rows = pd.DataFrame([
        _row("a", "2025Q3", "urban", 1_900_000, _n(3)),  # national poor, city poor
        _row("b", "2025Q3", "urban", 1_900_000, []),     # national near, city poor
        _row("c", "2025Q3", "urban", 3_000_000, []),     # national non, city near (strict <)
        _row("d", "2025Q3", "urban", 3_500_000, _n(4)),  # national non, city near
        _row("e", "2025Q3", "urban", 4_000_000, []),     # non, non
    ]).assign(province=["TP. Hồ Chí Minh", "Bình Dương", "hcm", "Hồ Chí Minh", "Hồ Chí Minh"])
    extra = pd.DataFrame([_row("z", "2025Q3", "urban", 1_000_000, _n(3))]).assign(province="Hà Nội")
    r = sc.local_vs_national(pd.concat([rows, extra]), local="hcmc", province="Thành phố Hồ Chí Minh")
    got = dict(zip(r.statuses["household_id"], zip(r.statuses["old_status"], r.statuses["new_status"])))
    assert got == {"a": ("poor", "poor"), "b": ("near_poor", "poor"), "c": ("non_poor", "near_poor"),
                   "d": ("non_poor", "near_poor"), "e": ("non_poor", "non_poor")}
    assert r.summary["poor_old"] == 1 and r.summary["poor_new"] == 2


def _panel_2021_2022():
    # 2016–2021 rural: poor <= 700k; near-poor <= 1.0M with < 3 of the 10 old indicators
    # (>= 3 -> poor). 2022: poor <= 1.5M and >= 3 of 12; near-poor <= 1.5M and < 3.
    emp = ["dep_employment", "dep_dependants", "dep_water"]  # only dep_water counts in 2016
    rows = [
        _row("h1", "2021Q4", "rural", 1_200_000, _n(3), "non_poor"),
        _row("h1", "2022Q4", "rural", 1_200_000, _n(3), "poor"),       # new line
        _row("h2", "2021Q4", "rural", 600_000, [], "poor"),
        _row("h2", "2022Q4", "rural", 600_000, [], "near_poor"),        # exit by new line
        _row("h3", "2021Q4", "rural", 600_000, [], "poor"),
        _row("h3", "2022Q4", "rural", 3_000_000, [], "non_poor"),       # exit: both
        _row("h4", "2021Q4", "rural", 2_000_000, [], "non_poor"),
        _row("h4", "2022Q4", "rural", 1_000_000, _n(4), "poor"),        # circumstances
        _row("h5", "2021Q4", "rural", 2_000_000, [], "non_poor"),
        _row("h5", "2022Q4", "rural", 2_000_000, [], "non_poor"),       # stayed
        _row("h6", "2021Q4", "rural", 500_000, [], "poor"),             # not seen in 2022Q4
        _row("h7", "2021Q4", "rural", 800_000, emp, "near_poor"),
        _row("h7", "2022Q4", "rural", 800_000, emp, "poor"),            # new line
    ]
    return pd.DataFrame(rows)


def test_decompose_flows_by_hand():
    d = sc.decompose_flows(_panel_2021_2022(), "2021Q4", "2022Q4")
    moved_by = d.households.set_index("household_id")["moved_by"].to_dict()
    assert moved_by == {"h1": "new_line", "h2": "new_line", "h3": "both", "h4": "circumstances",
                        "h5": "stayed", "h7": "new_line"}
    assert d.standard_changed and d.standards == ("national_2016_2021", "national_2022_2025")
    assert d.summary["exits"] == 2
    assert d.summary["exits_by_new_line"] == 1 and d.summary["exits_by_both"] == 1
    assert d.summary["recorded_differs"] == 0
    t = d.table.set_index(["status_from", "status_to"])
    assert t.loc[("non_poor", "poor"), "households"] == 2
    assert t.loc[("non_poor", "poor"), "new_line"] == 1
    assert t.loc[("non_poor", "poor"), "circumstances"] == 1


def test_decompose_flows_same_standard_is_all_circumstances():
    panel = _panel_2021_2022()
    panel["period"] = panel["period"].map({"2021Q4": "2023Q4", "2022Q4": "2024Q4"})
    d = sc.decompose_flows(panel, "2023Q4", "2024Q4")
    assert not d.standard_changed
    assert set(d.households.loc[d.households.moved, "moved_by"]) == {"circumstances"}


def test_standard_changed_flags():
    flags = sc.standard_changed(["2022Q1", "2021Q3", "2021Q4", "2022Q2"])
    assert flags["period"].tolist() == ["2021Q3", "2021Q4", "2022Q1", "2022Q2"]
    assert flags["standard_changed"].tolist() == [False, False, True, False]
    years = sc.standard_changed([2025, 2026, 2027])
    # 2026 keeps the 2022–2025 rule (Decree 351/2025): only 2027 is a change
    assert years["standard_changed"].tolist() == [False, False, True]
    assert years["standard_id"].tolist() == ["national_2022_2025", "national_2026", "national_2027_2030"]


# ------------------------------------------------------------------ on a Panel (the engine)
def _as_panel(df, province="Hà Nội"):
    import povdyn

    return povdyn.load_panel(df.assign(province=df["province"] if "province" in df else province))


def test_reclassify_a_panel_in_the_engine_by_hand():
    # the households of test_reclassify_2027_by_hand, reviewed at 2025Q4, plus a household
    # removed at that review (no status): the reviewed ones are classified in the engine
    reviewed = _households_2025().assign(status="non_poor")
    removed = pd.DataFrame([_row("r1", "2025Q4", "rural", 100_000, _n(4))]).assign(removal_reason="death")
    panel = _as_panel(pd.concat([reviewed, removed], ignore_index=True))
    r = sc.reclassify(panel, standard="national_2027_2030", rows=sc.reviewed_at("2025Q4"))
    assert r.summary == dict(households=8, changed=4, poor_old=1, poor_new=3, near_poor_old=2,
                             near_poor_new=4, into_poverty=2, out_of_poverty=0)
    assert r.table.loc["non_poor", "poor"] == 2 and r.table.loc["non_poor", "near_poor"] == 2
    assert r.table.loc["total", "total"] == 8
    got = dict(zip(r.statuses["household_id"], zip(r.statuses["old_status"], r.statuses["new_status"])))
    assert got["h3"] == ("non_poor", "poor") and got["h8"] == ("non_poor", "near_poor") and "r1" not in got
    assert any("dep_waste" in a for a in r.assumptions) and r.standards["new"] == ["national_2027_2030"]
    # the recorded statuses as the old ones: all "non_poor" here
    recorded = sc.reclassify(panel, standard="national_2027_2030", old="recorded")
    assert recorded.table.loc["non_poor", "total"] == 8 and recorded.summary["poor_new"] == 3


def test_local_vs_national_on_a_panel_leaves_removals_out():
    # test_local_vs_national_hcmc's households on a Panel, with an HCMC household removed at
    # 2025Q3 (migration) that would be poor under both standards if it were counted
    rows = pd.DataFrame([
        _row("a", "2025Q3", "urban", 1_900_000, _n(3), "poor"),
        _row("b", "2025Q3", "urban", 1_900_000, [], "near_poor"),
        _row("c", "2025Q3", "urban", 3_000_000, [], "non_poor"),
        _row("d", "2025Q3", "urban", 3_500_000, _n(4), "non_poor"),
        _row("e", "2025Q3", "urban", 4_000_000, [], "non_poor"),
        _row("r", "2025Q3", "urban", 1_000_000, _n(3)),
        _row("z", "2025Q3", "urban", 1_000_000, _n(3), "poor"),
    ]).assign(province=["TP. Hồ Chí Minh", "Bình Dương", "hcm", "Hồ Chí Minh", "Hồ Chí Minh",
                        "Hồ Chí Minh", "Hà Nội"],
              removal_reason=[None] * 5 + ["migration", None])
    want = {"a": ("poor", "poor"), "b": ("near_poor", "poor"), "c": ("non_poor", "near_poor"),
            "d": ("non_poor", "near_poor"), "e": ("non_poor", "non_poor")}
    for data in (_as_panel(rows), rows):
        r = sc.local_vs_national(data, local="hcmc", province="Thành phố Hồ Chí Minh", period="2025Q3")
        got = dict(zip(r.statuses["household_id"], zip(r.statuses["old_status"], r.statuses["new_status"])))
        assert got == want
        assert r.summary["households"] == 5 and r.summary["poor_old"] == 1 and r.summary["poor_new"] == 2


def test_decompose_flows_on_a_panel_by_hand():
    d = sc.decompose_flows(_as_panel(_panel_2021_2022()), "2021Q4", "2022Q4")
    assert d.households.set_index("household_id")["moved_by"].to_dict() == {
        "h1": "new_line", "h2": "new_line", "h3": "both", "h4": "circumstances", "h5": "stayed",
        "h7": "new_line"}
    assert d.summary == dict(households=6, moved=5, exits=2, exits_by_new_line=1, exits_by_circumstances=0,
                             exits_by_both=1, moved_by_new_line=3, moved_by_circumstances=1, moved_by_both=1,
                             recorded_differs=0)
    pd.testing.assert_frame_equal(d.table, sc.decompose_flows(_panel_2021_2022(), "2021Q4", "2022Q4").table)
