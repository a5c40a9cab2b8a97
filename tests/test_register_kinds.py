"""Issue 10 §3, the proof: a report from the poor / near-poor lists plus household totals
publishes the same numbers as the report from the full panel of the same households.

One synthetic register (planted truth: the full panel) is written twice by ``povdyn
demo`` -- as the lists plus household totals offices keep, and as the full panel -- and
each goes through ``povdyn ingest`` to the pages. For the national page and two province pages every
number the page publishes (povdyn.tables.page_numbers: headline, targets, projection,
trends, flows, relapse, survival, provinces, groups, programmes, deprivation) is
compared. The differences allowed are exactly those the page's methods note lists for
lists (labels.TEXTS["lists_methods"]), each checked for what it is:

* no stock rate where no household total exists (quarters between reviews, groups such
  as urban/rural) -- the counts are still equal;
* the flows row of not-poor households is unknown on lists;
* a household removed while off the lists is not seen to leave: relapse follow-up,
  survival and the programme outcome equal those of the full panel in which exactly
  those removals are invisible (``as_lists_see_it``), and nothing else changes;
* no deprivation indicators on lists: that section is not computed there, and the
  programme models adjust without it (also compared on ``as_lists_see_it``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from povdyn import periods as _periods
from povdyn.panel import load_panel
from povdyn.tables import PageData, page_data, page_numbers
from povdyn.synth.writers import LIST_HEADERS

# what a list carries, plus the 2025 province ingest adds
LIST_COLUMNS = [*LIST_HEADERS, "province_2025"]

PERIOD = "2025Q4"


def as_lists_see_it(full: pd.DataFrame) -> pd.DataFrame:
    """The full panel with the removals a list cannot see made invisible: a household
    removed while not on the lists (its previous row not poor / near-poor) stays not
    poor, with the columns of its previous row, through the last period; and only the
    columns a list carries."""
    key = lambda c: c.map(lambda p: _periods.parse_period(p)[1]) if c.name == "period" else c  # noqa: E731
    df = full.sort_values(["household_id", "period"], key=key).reset_index(drop=True)
    prev_listed = (df["status"].shift().isin(["poor", "near_poor"])
                   & df["household_id"].eq(df["household_id"].shift()))
    unseen = df["removal_reason"].notna() & ~prev_listed & df["household_id"].eq(df["household_id"].shift())
    periods = sorted(pd.unique(df["period"]), key=lambda p: _periods.parse_period(p)[1])
    added = []
    for i in np.flatnonzero(unseen.to_numpy()):
        before = df.iloc[i - 1]
        start = periods.index(df.iloc[i]["period"])
        for p in periods[start:]:
            added.append({**before.to_dict(), "period": p, "status": "non_poor", "removal_reason": None})
    kept = df[~unseen & ~(df["removal_reason"].notna() & ~df["household_id"].eq(df["household_id"].shift()))]
    out = pd.concat([kept, pd.DataFrame(added)], ignore_index=True)
    out.attrs["unseen"] = int(unseen.sum())
    return out[[c for c in LIST_COLUMNS if c in out.columns]]


@pytest.fixture(scope="module")
def kinds(tmp_path_factory):
    """The same synthetic households (same seed) as offices' lists + household totals
    and as a full panel, each through `povdyn demo` -> `povdyn ingest`, read as the
    pages read them (recorded register kind, totals beside the panel)."""
    from povdyn.cli import main as cli

    root = tmp_path_factory.mktemp("kinds")
    for style in ("lists", "full"):
        assert cli(["-q", "demo", "--households", "6000", "--seed", "31", "--style", style,
                    "--out", str(root / f"raw_{style}")]) == 0
        assert cli(["-q", "ingest", str(root / f"raw_{style}"), "--out", str(root / style)]) == 0
    full = page_data(root / "full").panel
    lists = page_data(root / "lists").panel
    assert (full.register, lists.register) == ("full", "lists") and lists.totals is not None
    full_rows = pd.read_parquet(root / "full" / "panel.parquet")
    seen = as_lists_see_it(full_rows)
    assert seen.attrs["unseen"] > 0  # the case the methods note names does occur here
    last = full_rows[full_rows["period"] == PERIOD]
    provinces = (last.groupby("province_2025")["status"].apply(lambda s: s.isin(["poor", "near_poor"]).sum())
                 .sort_values(ascending=False).index[:2].tolist())
    return dict(full=full, lists=lists, seen=load_panel(seen),
                support=pd.read_parquet(root / "lists" / "support.parquet"),
                provinces=provinces, root=root)


def same(a: pd.DataFrame, b: pd.DataFrame, what: str):
    """Equal tables: same columns and rows, numbers equal to 1e-9 (relative), NaN = NaN."""
    a, b = a.reset_index(drop=True), b.reset_index(drop=True)
    assert list(a.columns) == list(b.columns), what
    assert len(a) == len(b), f"{what}: {len(a)} vs {len(b)} rows"
    for c in a.columns:
        x, y = a[c], b[c]
        if pd.api.types.is_numeric_dtype(x) and pd.api.types.is_numeric_dtype(y) \
                and not pd.api.types.is_bool_dtype(x):
            np.testing.assert_allclose(x.astype(float), y.astype(float), rtol=1e-9, atol=1e-12,
                                       err_msg=f"{what}, column {c}")
        else:
            assert [None if pd.isna(v) else v for v in x] == [None if pd.isna(v) else v for v in y], \
                f"{what}, column {c}"


def numbers(panel, region, support=None):
    data = PageData(panel=panel.region(region), region=region)
    return page_numbers(data, PERIOD, within=2, support=support, n_boot=100)


@pytest.mark.parametrize("which", ["national", 0, 1])
def test_lists_with_totals_publish_the_full_panel_numbers(kinds, which):
    region = which if which == "national" else kinds["provinces"][which]
    support = kinds["support"] if region == "national" else None
    F = numbers(kinds["full"], region)
    L = numbers(kinds["lists"], region, support)
    S = numbers(kinds["seen"], region, support)

    # headline: equal, except the relapse row (follow-up: as lists see it) and the
    # previous quarter's stock rates (no totals between reviews; counts still equal)
    hf, hl, hs = (x["headline"].set_index("key") for x in (F, L, S))
    stock = ["poor_rate", "near_poor_rate"]
    flows_rows = [k for k in hf.index if k not in stock + ["relapse_rate"]]
    same(hl.loc[flows_rows], hf.loc[flows_rows], f"{region} headline flows")
    same(hl.loc[["relapse_rate"]], hs.loc[["relapse_rate"]], f"{region} headline relapse")
    for pre in ("", "year_"):
        cols = [f"{pre}{c}" for c in ("numerator", "denominator", "rate", "ci_low", "ci_high")]
        same(hl.loc[stock, cols], hf.loc[stock, cols], f"{region} headline stock {pre}")
        assert hl.loc[stock, f"{pre}rate"].notna().all()  # totals at both reviews
    assert hl.loc[stock, "prev_rate"].isna().all()  # 2025Q3: no review, no total
    same(hl.loc[stock, ["prev_numerator"]], hf.loc[stock, ["prev_numerator"]], f"{region} prev counts")

    # targets: rate targets equal; ethnic minorities need totals kept by ethnicity
    tf, tl, ts = (x["targets"].set_index("indicator") for x in (F, L, S))
    rate_rows = ["poor_rate_reduction", "near_poor_rate_reduction"]
    same(tl.loc[rate_rows], tf.loc[rate_rows], f"{region} targets")
    same(tl.loc[["relapse_ceiling"]], ts.loc[["relapse_ceiling"]], f"{region} relapse target")
    assert tl.loc["em_poor_rate_reduction", "status"] in ("needs_totals", "no_target")

    same(L["projection"], F["projection"], f"{region} projection")
    same(L["trend_exits"], F["trend_exits"], f"{region} exit-rate trend")
    same(L["relapse"], S["relapse"], f"{region} relapse")
    same(L["survival"], S["survival"], f"{region} survival")

    # stock trend: every review equal; between reviews the counts only
    sf, sl = F["trend_shares"], L["trend_shares"]
    review = sf["period"].str.endswith("Q4")
    same(sl[review], sf[review], f"{region} shares at reviews")
    same(sl.loc[~review, ["period", "poor", "near_poor"]], sf.loc[~review, ["period", "poor", "near_poor"]],
         f"{region} counts between reviews")
    assert sl.loc[~review, "poor_rate"].isna().all()

    # flows: poor and near-poor rows exact; the not-poor row unknown on lists
    ff, fl = F["flows"], L["flows"]
    known = ff["from_status"] != "non_poor"
    same(fl[known].astype({"count": "int64"}), ff[known], f"{region} flows")
    assert fl.loc[~known, "count"].isna().all()

    # groups: exit rates and counts equal; no stock rate without totals by group
    for by, gf in F["groups"].items():
        gl = L["groups"][by]
        exit_cols = [by, "poor", "near_poor", "at_risk", "exits", "exit_rate", "exit_ci_low", "exit_ci_high"]
        same(gl[exit_cols], gf[exit_cols], f"{region} groups {by}")
        assert gl["poor_rate"].isna().all()

    if region == "national":
        same(L["provinces"], F["provinces"], "provinces")
        same(L["programmes"], S["programmes"], "programmes")
        assert F["deprivation"] is not None and L["deprivation"] is None


def test_lists_without_totals_print_no_rate(kinds):
    """Without the totals a list page has counts and flows, and no stock rate at all."""
    lists = load_panel(kinds["root"] / "lists" / "panel.parquet", totals=False)
    assert lists.register == "lists" and lists.totals is None
    L = numbers(lists, "national")
    assert L["trend_shares"]["poor_rate"].isna().all()
    assert L["trend_shares"]["poor"].sum() > 0
    h = L["headline"].set_index("key")
    assert h.loc[["poor_rate", "near_poor_rate"], ["rate", "prev_rate", "year_rate"]].isna().all().all()
    assert h.loc["exit_rate", "rate"] > 0
    assert L["projection"] is None
    assert L["targets"].set_index("indicator").loc["poor_rate_reduction", "status"] == "needs_totals"


def test_recorded_register_kind_and_totals_beside_the_panel(tmp_path, kinds):
    """load_panel reads the kind ingest recorded in panel.parquet/, else
    ingest_summary.json, and
    attaches totals.parquet found beside the panel; register= overrides."""
    import json
    import shutil

    src = kinds["root"] / "lists"
    # ingest's panel.parquet is a folder of period files; the kind is in its _povdyn.json
    assert json.loads((src / "panel.parquet" / "_povdyn.json").read_text())["register_kind"] == "lists"
    p = load_panel(src / "panel.parquet")
    assert p.register == "lists" and p.absent_means == "non_poor" and p.totals is not None
    assert load_panel(src / "panel.parquet", register="full").register == "full"
    with pytest.raises(Exception, match="register="):
        load_panel(src / "panel.parquet", register="full", absent_means="non_poor")

    # no metadata: the summary beside the file decides; nothing recorded means full
    rows = pd.read_parquet(src / "panel.parquet")
    (tmp_path / "b").mkdir()
    rows.to_parquet(tmp_path / "b" / "panel.parquet")
    assert load_panel(tmp_path / "b" / "panel.parquet").register == "full"
    shutil.copy(src / "ingest_summary.json", tmp_path / "b" / "ingest_summary.json")
    assert json.loads((tmp_path / "b" / "ingest_summary.json").read_text())["register_kind"] == "lists"
    p = load_panel(tmp_path / "b" / "panel.parquet")
    assert p.register == "lists" and p.totals is None


def test_annual_view_of_quarterly_lists_keeps_the_review_totals():
    """Found when the relapse early warning (which works on annual reviews) read the
    demo lists: load_panel(frequency="year") on a quarterly list register refused its
    "YYYYQ4" household totals. The annual view takes each year's Q4 snapshot, so a Q4
    total is that year's review total; totals of other quarters describe no review."""
    from povdyn.stocks import status_shares

    rows = []
    for q, statuses in {"2024Q4": ["poor", "poor", "near_poor"], "2025Q2": ["poor", "near_poor"],
                        "2025Q4": ["poor", "near_poor", "near_poor"]}.items():
        rows += [{"household_id": f"H{i}", "period": q, "status": s, "province": "Điện Biên"}
                 for i, s in enumerate(statuses)]
    panel = pd.DataFrame(rows)
    totals = pd.DataFrame({"province": ["Điện Biên"] * 3, "period": ["2024Q4", "2025Q2", "2025Q4"],
                           "households": [40, 45, 50]})
    quarterly = status_shares(load_panel(panel, register="lists", totals=totals))
    annual = status_shares(load_panel(panel, register="lists", totals=totals, frequency="year"))
    assert list(annual["period"]) == [2024, 2025]
    assert list(annual["households"]) == [40, 50]  # the Q2 total is no review's total
    q4 = quarterly[quarterly["period"].isin(["2024Q4", "2025Q4"])].reset_index(drop=True)
    for col in ("poor", "near_poor", "poor_rate", "poor_ci_low", "near_poor_rate"):
        assert np.allclose(annual[col].to_numpy(float), q4[col].to_numpy(float)), col
