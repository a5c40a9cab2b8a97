"""Commune rates on list registers (issues 10 and 13 §2): household totals kept under the
names the office wrote (old communes before July 2025, 2025 communes after) give the
2025 communes their rates.

Planted truth: `povdyn demo` counts the totals from the full panel of the same seed, so
the lists' commune rates must equal the full panel's wherever a total covers the
commune; where one does not (a split old commune, a name that cannot be placed) the rate
is unknown, never a rate over the listed households."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from povdyn import communes
from povdyn.pagedata import page_data
from povdyn.stocks import status_shares

REVIEW = "2025Q4"   # the annual review the pages report on (2025 names)
EARLY = "2021Q4"    # a pre-reform review (old names)
MISSPELT = "Xã Chưa Từng Có Tên Này"


@pytest.fixture(scope="module")
def kinds(tmp_path_factory):
    """Lists + totals and the full panel of the same households through `povdyn demo`
    -> `povdyn ingest`. One pre-reform totals row is renamed to a name no crosswalk
    knows (its count kept, so the province's total is unchanged)."""
    from povdyn.cli import main as cli

    root = tmp_path_factory.mktemp("ctotals")
    for style in ("lists", "full"):
        assert cli(["-q", "demo", "--households", "3000", "--seed", "31", "--style", style,
                    "--out", str(root / f"raw_{style}")]) == 0
    raw_totals = root / "raw_lists" / "tong_so_ho.csv"
    totals = pd.read_csv(raw_totals)
    early = totals.index[totals["Năm"] == int(EARLY[:4])]
    renamed = _coverable_row(totals, early)
    original = totals.loc[renamed, ["Tỉnh", "Xã"]].tolist()
    totals.loc[renamed, "Xã"] = MISSPELT
    totals.to_csv(raw_totals, index=False)
    for style in ("lists", "full"):
        assert cli(["-q", "ingest", str(root / f"raw_{style}"), "--out", str(root / style)]) == 0
    return {"root": root, "renamed": original,
            "lists": page_data(root / "lists").panel, "full": page_data(root / "full").panel}


def _coverable_row(totals: pd.DataFrame, rows) -> int:
    """A pre-reform totals row of an old commune that went whole into its 2025 commune
    (so its 2025 commune would have a total but for the rename)."""
    from povdyn import geo

    names = totals.loc[rows, ["Tỉnh", "Xã"]].rename(columns={"Tỉnh": "province", "Xã": "commune"})
    mapped = geo.commune_2025(names.assign(period=EARLY))
    whole = mapped[(mapped["weight_basis"] == "whole") & mapped["commune_code"].notna()
                   & ~mapped.index.duplicated(keep=False)]
    given = set(whole["old_commune_code"])
    xwalk = geo.commune_crosswalk_2025()
    made_of = xwalk.groupby("commune_code")["old_commune_code"].agg(set)
    covered = whole[[made_of[code] <= given for code in whole["commune_code"]]]
    return int(covered.index[0])


def _by_commune(panel) -> pd.DataFrame:
    return status_shares(panel, by=["province_2025", "commune_2025"])


def test_ingest_maps_totals_to_2025_communes_and_lists_unplaced_names(kinds):
    totals = pd.read_parquet(kinds["root"] / "lists" / "totals.parquet")
    assert {"commune_2025", "commune_code", "old_commune_code", "commune_2025_basis"} <= set(totals.columns)
    communes_rows = totals[totals["commune"].notna()]
    after = communes_rows["period"].astype(str) >= "2025Q3"
    # 2025 names map to themselves; old names through the crosswalk (or are flagged)
    assert (communes_rows.loc[after, "commune_2025_basis"] == "recorded").all()
    assert (communes_rows.loc[after, "commune_2025"] == communes_rows.loc[after, "commune"]).all()
    assert set(communes_rows.loc[~after, "commune_2025_basis"]) <= {"crosswalk", "split", "ambiguous",
                                                                     "unmatched"}
    assert (communes_rows.loc[~after, "commune_2025_basis"] == "split").any()
    # a split old commune is not given to any 2025 commune (no weighted total)
    split = communes_rows["commune_2025_basis"] == "split"
    assert communes_rows.loc[split, "commune_code"].isna().all()
    assert communes_rows.loc[split, "old_commune_code"].notna().all()
    # nothing dropped: every row of the raw table is in totals.parquet
    raw = pd.read_csv(kinds["root"] / "raw_lists" / "tong_so_ho.csv")
    assert len(totals) == len(raw) and totals["households"].sum() == raw["Tổng số hộ"].sum()
    unplaced = pd.read_csv(kinds["root"] / "lists" / "communes_unplaced.csv")
    row = unplaced[unplaced["commune"] == MISSPELT]
    assert len(row) == 1 and row["table"].iloc[0] == "household totals"
    assert row["reason"].iloc[0] == "unmatched"


def test_commune_rates_on_lists_equal_the_full_panel_where_a_total_covers_the_commune(kinds):
    lists, full = _by_commune(kinds["lists"]), _by_commune(kinds["full"])
    keys = ["province_2025", "commune_2025", "period"]
    both = lists.merge(full, on=keys, suffixes=("_l", "_f"))
    at_review = both[both["period"] == REVIEW]
    # at the annual review every commune has its own 2025 total: all rates known and equal
    assert len(at_review) == (full["period"] == REVIEW).sum() > 50
    assert at_review["households_l"].notna().all()
    for col in ("households", "poor", "near_poor", "poor_rate", "poor_ci_low", "poor_ci_high",
                "near_poor_rate", "near_poor_ci_low", "near_poor_ci_high"):
        np.testing.assert_allclose(at_review[f"{col}_l"].astype(float), at_review[f"{col}_f"].astype(float),
                                   rtol=1e-12, err_msg=col)
    # before the reform: where old names cover a commune, the same numbers; elsewhere NaN
    reviews = both[both["period"].astype(str).str.endswith("Q4") & (both["period"] != REVIEW)]
    known = reviews[reviews["households_l"].notna()]
    assert len(known) > 0
    for col in ("households", "poor_rate", "poor_ci_low", "poor_ci_high", "near_poor_rate"):
        np.testing.assert_allclose(known[f"{col}_l"].astype(float), known[f"{col}_f"].astype(float),
                                   rtol=1e-12, err_msg=col)
    unknown = reviews[reviews["households_l"].isna()]
    assert unknown["poor_rate_l"].isna().all() and unknown["poor_ci_low_l"].isna().all()


def test_a_split_or_unplaced_old_commune_leaves_its_2025_communes_without_a_rate(kinds):
    from povdyn import geo

    totals = pd.read_parquet(kinds["root"] / "lists" / "totals.parquet")
    early = totals[totals["period"].astype(str) == EARLY]
    split_olds = set(early.loc[early["commune_2025_basis"] == "split", "old_commune_code"])
    xwalk = geo.commune_crosswalk_2025()
    receiving = set(map(tuple, xwalk.loc[xwalk["old_commune_code"].isin(split_olds),
                                         ["province_2025", "commune_2025"]].to_numpy()))
    province, old_name = kinds["renamed"]
    renamed_to = tuple(geo.commune_2025(pd.DataFrame({"province": [province], "commune": [old_name],
                                                      "period": [EARLY]}))[["province_2025", "commune_2025"]]
                       .iloc[0])
    lists = _by_commune(kinds["lists"])
    at = lists[lists["period"] == EARLY].set_index(["province_2025", "commune_2025"])
    assert receiving & set(at.index)
    assert at.loc[sorted(receiving & set(at.index)), "poor_rate"].isna().all()
    # the renamed old commune's 2025 commune has households (full panel) but no total:
    # no rate (a row with NaN, or none when it lists no household either)
    full = _by_commune(kinds["full"])
    assert renamed_to in set(full.loc[full["period"] == EARLY].set_index(["province_2025", "commune_2025"]).index)
    assert renamed_to not in at.index or np.isnan(at.loc[[renamed_to], "households"]).all()
    # the province's own total is unchanged by the rename: its rate is the full panel's
    prov_l = status_shares(kinds["lists"], by="province_2025")
    prov_f = status_shares(kinds["full"], by="province_2025")
    p2025 = geo.province_2025(pd.Series([province])).iloc[0]
    pick = [(t["province_2025"] == p2025) & (t["period"] == EARLY) for t in (prov_l, prov_f)]
    assert prov_l.loc[pick[0], "poor_rate"].iloc[0] == pytest.approx(prov_f.loc[pick[1], "poor_rate"].iloc[0])


def _title_text(page, monkeypatch) -> str:
    """What the commune page's title cell displays (English)."""
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *objs, **_: shown.extend(objs))
    communes.title(page, "en")
    return "\n".join(getattr(o, "data", str(o)) for o in shown)


def test_commune_page_on_lists_shows_the_full_panels_rates(kinds, monkeypatch):
    root = kinds["root"]
    full = pd.read_parquet(root / "full" / "panel.parquet", columns=["province_2025", "commune_2025"])
    province = full.groupby("province_2025")["commune_2025"].nunique().idxmax()
    on_lists = communes.province_communes(root / "lists", province, REVIEW)
    on_full = communes.province_communes(root / "full", province, REVIEW)
    assert on_lists.communes == on_full.communes
    key = ("status_shares", repr(None))
    cols = ["commune_2025", "households", "poor_rate", "poor_ci_low", "poor_ci_high",
            "near_poor_rate", "near_poor_ci_low", "near_poor_ci_high"]
    a = communes._at(on_lists.metrics[key], REVIEW)[cols].set_index("commune_2025").sort_index()
    b = communes._at(on_full.metrics[key], REVIEW)[cols].set_index("commune_2025").sort_index()
    pd.testing.assert_frame_equal(a, b, check_dtype=False)
    # the published table (same joint suppression) is the same on both kinds
    pd.testing.assert_frame_equal(communes.commune_table_values(on_lists),
                                  communes.commune_table_values(on_full), check_dtype=False)
    page = communes.commune_page(root / "lists", province, on_lists.communes[0], REVIEW)
    shown = _title_text(page, monkeypatch)
    assert page.commune in shown and "cannot compute the commune's rates" not in shown


def test_commune_page_says_why_a_commune_has_no_rate_at_a_review_its_totals_do_not_cover(kinds, monkeypatch):
    root = kinds["root"]
    lists = _by_commune(kinds["lists"])
    uncovered = lists[(lists["period"] == EARLY) & lists["households"].isna()]
    province, commune = uncovered[["province_2025", "commune_2025"]].iloc[0]
    page = communes.commune_page(root / "lists", province, commune, EARLY)
    shown = _title_text(page, monkeypatch)
    assert "do not give this commune's total in its 2025 boundaries" in shown
    assert communes.headline_table(page, "en").iloc[:, 3].isin(["—", ""]).all()
