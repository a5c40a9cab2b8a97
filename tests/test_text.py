"""povdyn.text: the one name-folding helper, with the spellings offices write."""
from povdyn import geo, schema
from povdyn.text import fold, fold_key


def test_fold_removes_case_diacritics_and_extra_spaces():
    assert fold("  Thành phố  Hồ Chí Minh ") == "thanh pho ho chi minh"
    assert fold("ĐIỆN BIÊN") == fold("Điện Biên") == "dien bien"
    assert fold("TP. Huế") == "tp. hue"  # punctuation kept for place names


def test_fold_key_also_drops_punctuation_and_compatibility_forms():
    assert fold_key("Mã  Hộ") == "ma ho"
    assert fold_key("Số_CCCD") == "so cccd"
    assert fold_key("Ｔỉnh") == "tinh"  # a full-width letter (NFKD)


def test_geo_and_schema_use_the_one_helper():
    assert geo.fold is fold
    assert schema.fold is fold_key
