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
