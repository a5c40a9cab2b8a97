"""povdyn.geo: province names, 63 -> 34 crosswalk, commune crosswalk, reporting geography."""
import pandas as pd
import pytest

from povdyn import geo
from povdyn.errors import SchemaError


@pytest.mark.parametrize("name, expected", [
    ("TP. Hồ Chí Minh", "Hồ Chí Minh"),
    ("thanh pho ho chi minh", "Hồ Chí Minh"),
    ("Thành phố Hồ Chí Minh", "Hồ Chí Minh"),
    ("TP.HCM", "Hồ Chí Minh"),
    ("Tỉnh Hà Giang", "Tuyên Quang"),
    ("ha giang", "Tuyên Quang"),
    ("HÀ  GIANG ", "Tuyên Quang"),
    ("Tỉnh Bình Dương", "Hồ Chí Minh"),
    ("Bà Rịa – Vũng Tàu", "Hồ Chí Minh"),
    ("ba ria vung tau", "Hồ Chí Minh"),
    ("Thừa Thiên Huế", "Huế"),
    ("Huế", "Huế"),
    ("Hoà Bình", "Phú Thọ"),   # old-style tone placement
    ("Hòa Bình", "Phú Thọ"),
    ("Dak Lak", "Đắk Lắk"),
    ("Tỉnh Đắk Nông", "Lâm Đồng"),
    ("Quảng Nam", "Đà Nẵng"),   # starts like the prefix "Quận" but is not one
    ("Tuyên Quang", "Tuyên Quang"),
    ("Cao Bằng", "Cao Bằng"),
])
def test_province_names_any_spelling(name, expected):
    assert geo.province_2025([name]).tolist() == [expected]


def test_crosswalk_shape_and_every_old_name():
    assert len(geo.old_provinces()) == 63
    assert len(geo.new_provinces()) == 34
    mapped = geo.province_2025(geo.old_provinces())
    assert set(mapped) == set(geo.new_provinces())
    # every new name maps to itself
    assert geo.province_2025(geo.new_provinces()).tolist() == geo.new_provinces()


def test_normalise_name_prefixes():
    assert geo.normalise_name("Xã Tân Phú") == geo.normalise_name("tan phu")
    assert geo.normalise_name("Phường Bến Nghé") == "bennghe"
    assert geo.normalise_name("Thị trấn Đắk Mil") == "dakmil"
    assert geo.normalise_name("Quận 11") == "11"
    assert geo.normalise_name("Huyện Cần Giờ") == "cangio"
    assert geo.normalise_name("Tp Cần Thơ") == "cantho"


def test_unknown_names_listed_never_dropped():
    with pytest.raises(SchemaError) as err:
        geo.province_2025(["Hà Nội", "Hà Gang", "Atlantis", None])
    assert "Hà Gang" in str(err.value) and "Atlantis" in str(err.value)
    out = geo.province_2025(pd.Series(["Hà Nội", "Hà Gang", None]), errors="coerce")
    assert out.iloc[0] == "Hà Nội" and out.isna().iloc[1:].all()
    assert out.attrs["unknown"] == ["Hà Gang"]


def test_region_of():
    regions = geo.region_of(["Lai Châu", "Huế", "Long An"]).tolist()
    assert regions == ["Northern Midlands and Mountains", "North Central and Central Coast",
                       "Mekong River Delta"]


def test_is_post_merger():
    assert not geo.is_post_merger("2025Q2")
    assert geo.is_post_merger("2025Q3")
    assert geo.is_post_merger(2025)
    assert not geo.is_post_merger(2024)


def test_province_level_counts_conserved():
    table = pd.DataFrame({
        "period": [2024] * 4,
        "province": ["Hà Giang", "Tuyên Quang", "tỉnh Bình Dương", "TP. Hồ Chí Minh"],
        "poor": [10, 5, 2, 3],
        "households": [100, 50, 40, 60],
        "province_2025": ["stale"] * 4,   # recomputed, not a grouping key
    })
    out = geo.apply_crosswalk(table, ["poor", "households"], level="province")
    assert out["poor"].sum() == table["poor"].sum()
    assert out["households"].sum() == table["households"].sum()
    got = out.set_index("province_2025")["poor"].to_dict()
    assert got == {"Tuyên Quang": 15, "Hồ Chí Minh": 5}


def _crosswalk():
    return pd.DataFrame({
        "old_commune": ["Xã A", "Xã A", "Xã B", "Thị trấn C", "Xã C"],
        "old_province": ["Hà Giang", "Hà Giang", "Tuyên Quang", "Tuyên Quang", "Tuyên Quang"],
        "new_commune": ["Xã A1", "Xã A2", "Xã A2", "Xã C1", "Xã C2"],
        "new_province": ["Tuyên Quang"] * 5,
        "weight": ["0.6", "0.4", "1", "1", "1"],
    })


def test_commune_split_60_40_and_totals(tmp_path):
    path = tmp_path / "cw.csv"
    _crosswalk().to_csv(path, index=False)
    cw = geo.load_commune_crosswalk(path)
    table = pd.DataFrame({
        "period": [2024, 2024, 2024],
        "province": ["Hà Giang", "tỉnh Tuyên Quang", "Tuyên Quang"],
        "commune": ["xa a", "Xã B", "Thị trấn C"],
        "households": [100.0, 30.0, 7.0],
    })
    out = geo.apply_crosswalk(table, "households", cw, level="commune")
    got = out.set_index("commune_2025")["households"].to_dict()
    # A splits 60 / 40; B goes whole to A2; C (the town, by its exact prefixed name) to C1
    assert got == pytest.approx({"Xã A1": 60.0, "Xã A2": 70.0, "Xã C1": 7.0})
    assert out["households"].sum() == pytest.approx(table["households"].sum())


def test_commune_unknown_and_ambiguous_reported():
    cw = geo.load_commune_crosswalk(_crosswalk())
    table = pd.DataFrame({"province": ["Tuyên Quang", "Tuyên Quang", "Hà Giang"],
                          "commune": ["C", "Xã Z", "Xã A"], "n": [1, 2, 3]})
    with pytest.raises(SchemaError) as err:
        geo.apply_crosswalk(table, "n", cw, level="commune")
    text = str(err.value)
    assert "'C' (Tuyên Quang): matches 2 old communes" in text   # Thị trấn C vs Xã C
    assert "'Xã Z' (Tuyên Quang) is not in the crosswalk" in text
    assert "Xã A" not in text


def test_crosswalk_validation_lists_problems():
    bad = _crosswalk()
    bad.loc[1, "weight"] = "0.3"          # A sums to 0.9
    bad.loc[2, "old_province"] = "Tuyen Kwang"
    bad.loc[3, "new_province"] = "Hà Nội"  # Tuyên Quang did not merge into Hà Nội
    with pytest.raises(SchemaError) as err:
        geo.load_commune_crosswalk(bad)
    text = str(err.value)
    assert "row 4: unknown old_province 'Tuyen Kwang'" in text
    assert "row 5: Tuyên Quang merged into Tuyên Quang, not Hà Nội" in text
    fixed = _crosswalk()
    fixed.loc[1, "weight"] = "0.3"
    with pytest.raises(SchemaError, match="sum to 0.9"):
        geo.load_commune_crosswalk(fixed)


def test_to_geography_both_ways():
    df = pd.DataFrame({
        "household_id": ["h1", "h1", "h1", "h2", "h3"],
        "period": ["2025Q1", "2025Q2", "2025Q3", "2025Q3", "2025Q4"],
        "province": ["Hà Giang", "ha giang", "Tuyên Quang", "Cao Bằng", "Tuyên Quang"],
    })
    new = geo.to_geography(df, "2025")
    assert new["province_2025"].tolist() == ["Tuyên Quang"] * 3 + ["Cao Bằng", "Tuyên Quang"]
    old = geo.to_geography(df, "pre2025")
    # h1 in 2025Q3 recovered from its earlier rows (Hà Giang, not the old Tuyên Quang);
    # h2 in unmerged Cao Bằng; h3 first seen after the merger in a merged province: NA
    assert old["province_pre2025"].tolist()[:4] == ["Hà Giang"] * 3 + ["Cao Bằng"]
    assert pd.isna(old["province_pre2025"].iloc[4])
    assert old.attrs["unresolved_pre2025"] == 1


# ------------------------------------------------ the official 2025 commune crosswalk
# Expectations come from the data of the package that ships the reform map
# (vietnamadminunits: its unit database, its old -> new mapping and its own converter),
# never typed by hand.

import json  # noqa: E402
import sqlite3  # noqa: E402

import numpy as np  # noqa: E402


@pytest.fixture(scope="module")
def package_data():
    data = geo._package_data_dir()
    with sqlite3.connect(data / "dataset.db") as conn:
        legacy = pd.read_sql("SELECT * FROM admin_units_legacy", conn)
        current = pd.read_sql("SELECT * FROM admin_units", conn)
    mapping = json.loads((data / "converter_2025.json").read_text(encoding="utf-8"))
    return legacy, current, mapping


@pytest.fixture(scope="module")
def old_units():
    cw = geo.commune_crosswalk_2025()
    units = cw.drop_duplicates(["old_province", "old_district", "old_commune"])
    return cw, units[["old_province", "old_district", "old_commune"]].set_axis(
        ["province", "district", "commune"], axis=1).reset_index(drop=True)


def test_coverage_every_old_and_new_unit(package_data):
    legacy, current, _ = package_data
    cw = geo.commune_crosswalk_2025()
    # 10,035 communes/wards/towns + 5 island districts without communes; 3,321 new units
    assert len(legacy) == 10_040 and len(current) == 3_321
    assert cw["old_commune_code"].nunique() == legacy["wardCode"].nunique()
    assert set(cw["commune_code"]) == set(current["wardCode"])
    assert len(geo.communes_2025()) == 3_321
    assert set(cw["province_2025"]) == set(geo.new_provinces())
    assert cw.groupby(["old_province", "old_district", "old_commune"])["weight"].sum().round(12).eq(1).all()


def test_every_old_unit_goes_where_the_package_says(package_data, old_units):
    """Whole map: each of the 10,040 old units, given with its district, is placed in
    exactly the new units the package's mapping lists (merges: many old -> one new;
    splits: one old -> several new, weights summing to 1)."""
    legacy, current, mapping = package_data
    new_code = {(p, k): c for p, k, c in zip(current["provinceKey"], current["wardKey"], current["wardCode"])}
    expected = {}
    for new_prov, wards in mapping["DICT_PROVINCE_WARD_NO_DIVIDED"].items():
        for ward, olds in wards.items():
            for old_key in olds:
                expected[old_key] = {new_code[(new_prov, ward)]}
    for new_prov, splits in mapping["DICT_PROVINCE_WARD_DIVIDED"].items():
        for old_key, parts in splits.items():
            expected[old_key] = {new_code[(new_prov, p["newWardKey"])] for p in parts}
    legacy = legacy.assign(old_key=legacy["provinceKey"] + "_" + legacy["districtKey"] + "_"
                           + legacy["wardKey"].fillna(""))
    df = pd.DataFrame({"province": legacy["province"], "district": legacy["district"],
                       "commune": legacy["ward"].fillna(legacy["district"])})
    df.index = pd.RangeIndex(100, 100 + len(legacy))
    out = geo.commune_2025(df)
    assert out.attrs["unmatched"] == []
    assert set(out.index) == set(df.index)  # index kept, nothing dropped
    got = out.groupby(level=0)["commune_code"].agg(set)
    want = pd.Series([expected[k] for k in legacy["old_key"]], index=df.index)
    assert (got.loc[df.index] == want).all()
    assert out.groupby(level=0)["weight"].sum().round(12).eq(1).all()
    splits = out[out.groupby(level=0)["commune_code"].transform("size") > 1]
    assert splits.index.nunique() == sum(len(v) for v in mapping["DICT_PROVINCE_WARD_DIVIDED"].values())
    assert (splits["weight_basis"] == "equal").all()
    merged = out.groupby("commune_code").size()
    assert (merged > 1).sum() > 2_000  # most new units merge several old ones


def test_main_successor_agrees_with_the_package_converter(old_units):
    """The package's own converter (no street, so offline) picks the main successor of a
    split; ours flags the same piece."""
    from vietnamadminunits import convert_address

    cw, units = old_units
    main = cw[cw["main_successor"]].set_index(["old_province", "old_district", "old_commune"])
    is_split = cw.groupby(["old_province", "old_district", "old_commune"])["split"].first()
    sample = pd.concat([units[is_split.loc[list(map(tuple, units.to_numpy()))].to_numpy()]
                        .sample(60, random_state=1), units.sample(60, random_state=2)])
    for p, d, c in sample.itertuples(index=False):
        converted = convert_address(f"{c}, {d}, {p}")
        assert converted.ward_code == main.loc[(p, d, c), "commune_code"], (p, d, c)


def test_published_example_ward_15_district_11():
    """The package's README example: '..., p15, tan binh, hcm' and 'Phường 15, Quận 11,
    TP. Hồ Chí Minh' convert as its converter does."""
    from vietnamadminunits import convert_address

    df = pd.DataFrame({"province": ["TP. Hồ Chí Minh", "hcm"], "district": ["Quận 11", "tan binh"],
                       "commune": ["Phường 15", "p15"]})
    out = geo.commune_2025(df)
    main = geo.commune_crosswalk_2025().query("main_successor").set_index("old_commune_code")
    assert out.loc[0, "commune_2025"] == "Phường Phú Thọ"     # Quận 11: merged whole
    assert convert_address("Phường 15, Quận 11, Hồ Chí Minh").ward_code == out.loc[0, "commune_code"]
    # Phường 15, Tân Bình was split: both pieces, the package's default among them
    tan_binh = out.loc[1]
    assert len(tan_binh) >= 2 and tan_binh["weight"].sum() == pytest.approx(1)
    assert convert_address("p15, tan binh, hcm").ward_code in set(tan_binh["commune_code"])
    assert convert_address("p15, tan binh, hcm").ward_code in set(main["commune_code"])


def _variants(name: str) -> list[str]:
    """Spellings people use: no diacritics, other case, abbreviated or no prefix."""
    kind, _ = geo.unit_key(name)
    bare = name.split(" ", 1)[1] if kind and " " in name else name
    if kind == "thitran" and name.lower().startswith("thị trấn"):
        bare = name[len("Thị trấn "):]
    short = {"phuong": "P.", "xa": "X.", "thitran": "TT."}.get(kind)
    out = [geo.fold(name), name.upper(), bare]
    if short:
        out += [f"{short} {bare}", f"{short}{bare}" if bare[:1].isdigit() else f"{short} {geo.fold(bare)}"]
    if bare.isdigit():
        out += [f"Phường 0{bare}", f"phuong {bare}", f"P{bare}"]
    return out


def test_spelling_variants_match_with_or_without_district(old_units):
    cw, units = old_units
    rng = np.random.default_rng(0)
    numbered = units[units["commune"].str.fullmatch(r"Phường \d+")]
    pick = pd.concat([numbered.iloc[rng.choice(len(numbered), 40, replace=False)],
                      units.iloc[rng.choice(len(units), 200, replace=False)]])
    rows = []
    for p, d, c in pick.itertuples(index=False):
        for v in _variants(c):
            rows.append((p, d, c, v, geo.fold(d)))
    df = pd.DataFrame(rows, columns=["true_p", "true_d", "true_c", "commune", "district"])
    df["province"] = df["true_p"].map(geo.fold)
    out = geo.commune_2025(df)
    want = cw.groupby(["old_province", "old_district", "old_commune"])["commune_code"].agg(frozenset)
    got = out.groupby(level=0)["commune_code"].agg(lambda s: frozenset(s.dropna()))
    expected = pd.Series([want[t] for t in zip(df["true_p"], df["true_d"], df["true_c"])], index=df.index)
    wrong = df[got != expected]
    # a bare name may be ambiguous inside a district only when the district has two
    # units of that name with different prefixes (Xã X and Thị trấn X): then it is
    # reported, never placed wrongly
    placed = out.groupby(level=0)["match"].first() != "ambiguous"
    assert (got[placed] == expected[placed]).all(), wrong.head()
    assert placed.mean() > 0.97
    # without the district: placed wherever the name is unique in its province
    no_district = geo.commune_2025(df.drop(columns="district").assign(period="2024Q4"))
    got = no_district.groupby(level=0)["commune_code"].agg(lambda s: frozenset(s.dropna()))
    placed = no_district.groupby(level=0)["match"].first() == "province"
    assert placed.mean() > 0.7  # numbered wards (Phường 12) need their district
    assert (got[placed] == expected[placed]).all()


def test_same_name_in_two_districts_is_ambiguous_without_district(old_units):
    cw, units = old_units
    counts = units.groupby(["province", "commune"])["district"].nunique()
    twice = counts[counts >= 2].index[:30]
    df = pd.DataFrame(list(twice), columns=["province", "commune"])
    out = geo.commune_2025(df.assign(period="2023Q4"))
    assert (out["match"] == "ambiguous").all()
    assert out["commune_2025"].str.startswith("? ").all() and out["commune_code"].isna().all()
    listed = {(u["province"], u["commune"]): u["candidates"] for u in out.attrs["unmatched"]}
    for p, c in twice:
        districts = units.loc[(units["province"] == p) & (units["commune"] == c), "district"]
        assert {f"{c}, {d}" for d in districts} <= set(listed[(p, c)])
    # with the district each is placed
    with_district = units.merge(df, on=["province", "commune"])
    assert (geo.commune_2025(with_district)["match"] == "district").all()


def test_unmatched_names_listed_with_closest_candidates(old_units):
    _, units = old_units
    real = units[units["commune"].str.len() > 12].sample(10, random_state=3)
    typo = real.assign(commune=real["commune"].str[:-2] + real["commune"].str[-1:])  # drop a letter
    df = pd.concat([typo, pd.DataFrame({"province": ["Hà Nội"], "district": [None],
                                        "commune": ["Xã Không Có Thật"]})], ignore_index=True)
    df.index = df.index + 500
    out = geo.commune_2025(df)
    assert len(out) == len(df) and list(out.index) == list(df.index)   # kept, in order
    assert (out["match"] == "unmatched").all()
    assert (out["commune_2025"] == "? " + df["commune"]).all()
    assert out["province_2025"].notna().all()
    by_name = {u["commune"]: u for u in out.attrs["unmatched"]}
    for (_, t), (_, r) in zip(typo.iterrows(), real.iterrows()):
        assert f"{r['commune']}, {r['district']}" in by_name[t["commune"]]["candidates"]
    report = geo.unmatched_report(out)
    assert "Xã Không Có Thật" in report and "11 commune name(s)" in report
    with pytest.raises(SchemaError, match="cannot be placed"):
        geo.commune_2025(df, errors="raise")


def test_2025_names_map_to_themselves():
    new = geo.communes_2025()
    df = pd.DataFrame({"province": new["province_2025"], "commune": new["commune_2025"],
                       "period": "2025Q4"})
    out = geo.commune_2025(df)
    assert (out["match"] == "2025").all() and len(out) == len(new)
    assert (out["commune_code"].to_numpy() == new["commune_code"].to_numpy()).all()
    assert (out["weight"] == 1).all()
    # without diacritics: placed on itself, or ambiguous where two units of a province
    # differ only by a tone mark (Xã Văn Lang / Xã Văn Lăng) — never on the wrong one
    folded = geo.commune_2025(df.assign(commune=df["commune"].map(geo.fold)))
    placed = folded["match"] != "ambiguous"
    assert (folded.loc[placed, "commune_code"] == new.loc[placed, "commune_code"]).all()
    twins = new.assign(f=new["commune_2025"].map(geo.fold)).duplicated(["province_2025", "f"], keep=False)
    assert (~placed == twins).all()


def test_split_weights_from_household_counts(old_units):
    cw, _ = old_units
    split = cw[cw["pieces"] == 3].iloc[:3]
    counts = pd.DataFrame({"old_commune_code": split["old_commune_code"],
                           "commune_code": split["commune_code"], "households": [30, 10, 0]})
    df = pd.DataFrame({"province": split["old_province"].iloc[:1], "district": split["old_district"].iloc[:1],
                       "commune": split["old_commune"].iloc[:1]})
    equal = geo.commune_2025(df)
    assert equal["weight"].tolist() == pytest.approx([1 / 3] * 3)
    assert (equal["weight_basis"] == "equal").all()
    weighted = geo.commune_2025(df, household_counts=counts)
    assert weighted.set_index("commune_code")["weight"].loc[split["commune_code"]].tolist() == \
        pytest.approx([0.75, 0.25, 0.0])
    assert (weighted["weight_basis"] == "households").all()


# --------------------------------- the synthetic register crosses the reform on real names

GEO_COLS = ["household_id", "period", "province", "district", "commune"]


@pytest.fixture(scope="module")
def synth_geo(demo_register):
    return demo_register.panel[GEO_COLS]


def test_synthetic_register_uses_real_old_and_new_names(synth_geo):
    out = geo.commune_2025(synth_geo)
    assert out.attrs["unmatched"] == []
    post = synth_geo["period"] >= "2025Q3"
    match = out.groupby(level=0)["match"].first()
    assert (match[post[post].index] == "2025").all()            # 2025 names after July 2025
    assert (match[post[~post].index] == "district").all()       # old names with districts before
    assert synth_geo.loc[post, "district"].isna().all()
    cw = geo.commune_crosswalk_2025()
    used = out.loc[~post.reindex(out.index).to_numpy()]
    pieces = used.groupby("old_commune_code")["commune_code"].nunique()
    assert (pieces > 1).sum() >= 10                             # real splits
    olds = cw[cw["old_commune_code"].isin(used["old_commune_code"])].groupby("commune_code")[
        "old_commune_code"].nunique()
    assert (olds > 1).sum() >= 10                               # real merges


def test_synthetic_households_move_as_the_official_map_says(synth_geo):
    """Each household seen on both sides of July 2025 is, after it, in one of the 2025
    units its old commune went to (the generator follows the package's map)."""
    before, after = geo._first_last(synth_geo, "household_id", "period")
    both = before.merge(after, on="household_id", suffixes=("_old", "_new"))
    old = geo.commune_2025(both.rename(columns={"province_old": "province", "district_old": "district",
                                                "commune_old": "commune", "period_old": "period"}))
    new = geo.commune_2025(both.rename(columns={"province_new": "province", "district_new": "district",
                                                "commune_new": "commune", "period_new": "period"}))
    allowed = old.groupby("household_id")["commune_code"].agg(set)
    got = new.set_index("household_id")["commune_code"]
    assert len(got) > 2_000
    assert all(got[h] in allowed[h] for h in got.index)


def test_split_weights_recover_the_planted_household_shares(synth_geo):
    """The generator sends a split commune's households to its main successor with
    SPLIT_MAIN_SHARES : 1 odds; household counts across the reform find that share."""
    from povdyn.synth.simulate import SPLIT_MAIN_SHARES

    counts = geo.split_household_counts(synth_geo)
    cw = geo.commune_crosswalk_2025()
    two = cw[(cw["pieces"] == 2)][["old_commune_code", "commune_code", "main_successor"]]
    counts = counts.merge(two, on=["old_commune_code", "commune_code"])
    main_share = counts.loc[counts["main_successor"], "households"].sum() / counts["households"].sum()
    assert counts["households"].sum() > 300
    assert main_share == pytest.approx(SPLIT_MAIN_SHARES / (SPLIT_MAIN_SHARES + 1), abs=0.06)


def test_link_runs_commune_series_across_the_reform(synth_geo):
    linked = geo.link_commune_2025(synth_geo)
    assert linked.index.nunique() == len(synth_geo)             # every row, none dropped
    assert linked.groupby(level=0)["weight"].sum().round(12).eq(1).all()
    before, after = geo._first_last(synth_geo, "household_id", "period")
    seen_after = set(after["household_id"])
    pre = linked["period"] < "2025Q3"
    own = linked[pre & linked["household_id"].isin(seen_after)]
    assert (own["match"] == "household").all() and (own["weight"] == 1).all()
    first_new = geo.commune_2025(after).set_index("household_id")["commune_code"]
    assert (own["commune_code"].to_numpy() == own["household_id"].map(first_new).to_numpy()).all()
    never = linked[pre & ~linked["household_id"].isin(seen_after)]
    assert len(never) and (never["match"] == "district").all()
    assert set(never["weight_basis"]) <= {"whole", "households", "equal"}


def test_panel_commune_2025_one_row_per_register_row(demo_register):
    panel = demo_register.panel
    out = geo.panel_commune_2025(panel)
    assert out.index.equals(panel.index) and out["commune_code"].notna().all()
    post = (panel["period"] >= "2025Q3").to_numpy()
    assert (out.loc[post, "commune_2025_basis"] == "recorded").all()
    assert (out.loc[post, "commune_2025"] == panel.loc[post, "commune"]).all()
    _, after = geo._first_last(panel[GEO_COLS], "household_id", "period")
    own = geo.commune_2025(after).set_index("household_id")["commune_code"]
    seen = panel["household_id"].isin(own.index).to_numpy()
    linked = ~post & seen
    assert (out.loc[linked, "commune_2025_basis"] == "household").all()
    assert (out.loc[linked, "commune_code"] == panel.loc[linked, "household_id"].map(own)).all()
    rest = out[~post & ~seen]
    assert set(rest["commune_2025_basis"]) == {"crosswalk", "main successor"}
    cw = geo.commune_crosswalk_2025()
    mapped = geo.commune_2025(panel.loc[rest.index, GEO_COLS])
    whole = rest["commune_2025_basis"] == "crosswalk"
    assert (mapped.loc[whole[whole].index, "weight"] == 1).all()
    split = mapped.loc[whole[~whole].index]
    mains = set(cw.loc[cw["main_successor"] & cw["split"], "commune_code"])
    assert rest.loc[~whole, "commune_code"].isin(mains).all()
    assert (split.groupby(level=0)["commune_code"].agg(set).apply(len) > 1).all()
