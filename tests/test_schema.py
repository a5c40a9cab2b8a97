"""Register schema: header aliases, value parsing, validate_panel, check_rows.

Expected values are written by hand from the rules in issue 3 §2 and schema.py's
docstring, never copied from the code's output."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from povdyn import schema
from povdyn.errors import SchemaError


# --- headers ----------------------------------------------------------------------
@pytest.mark.parametrize("header, expected", [
    ("Mã hộ", "household_id"),
    ("Ma ho", "household_id"),            # without diacritics
    ("  MÃ  HỘ ", "household_id"),        # case and spacing
    ("mã_hộ", "household_id"),
    ("Mã hộ gia đình", "household_id"),
    ("Năm", "period"),
    ("Nam", "period"),
    ("Kỳ", "period"),
    ("KY", "period"),
    ("Phân loại hộ", "status"),
    ("Phan loai ho", "status"),
    ("Tình trạng", "status"),
    ("Tỉnh", "province"),
    ("Tinh", "province"),
    ("Tỉnh/Thành phố", "province"),
    ("Xã", "commune"),
    ("Phường", "commune"),
    ("Phuong", "commune"),
    ("Khu vực", "area"),
    ("Số nhân khẩu", "household_size"),
    ("So nhan khau", "household_size"),
    ("Số nhân khẩu trong hộ", "household_size"),   # longer header, prefix match
    ("Thu nhập bình quân", "income_pc_month"),
    ("Thu nhập bình quân (đồng/người/tháng)", "income_pc_month"),  # units in brackets
    ("Dân tộc thiểu số", "ethnic_minority"),
    ("Dan toc thieu so", "ethnic_minority"),
    ("Người có công", "meritorious"),
    ("Lý do ra khỏi danh sách", "removal_reason"),
    ("Lý do", "removal_reason"),
    ("Họ tên chủ hộ", "head_name"),
    ("Số CCCD", "id_card"),
    ("CMND", "id_card"),
    ("Số điện thoại", "phone"),
    ("Địa chỉ", "address"),
    ("Dia chi", "address"),
    ("Chương trình", "program"),
    ("Mô hình", "program"),
    ("Kỳ bắt đầu", "start_period"),
    ("Ngày bắt đầu", "start_period"),
    ("Kỳ kết thúc", "end_period"),
    ("Số tiền", "amount_vnd"),
    ("household_id", "household_id"),      # English canonical names map to themselves
    ("income_pc_month", "income_pc_month"),
    ("removal_reason", "removal_reason"),
    ("dep_water", "dep_water"),            # dep_* pass through
    ("dep_digital_services", "dep_digital_services"),
    ("dep_something_new", "dep_something_new"),
    ("Nguồn nước", "dep_water"),
    ("Thiếu hụt: nhà tiêu", "dep_latrine"),
])
def test_header_aliases(header, expected):
    assert schema.canonical_header(header) == expected


@pytest.mark.parametrize("header", ["Ghi chú", "Năm sinh chủ hộ", "Ký tên", "", None,
                                    "Tỉnh lộ số", "Xã hội"])
def test_unknown_headers_are_not_guessed(header):
    # one-word aliases (Năm, Tỉnh, Xã, Kỳ) must match the whole header
    assert schema.canonical_header(header) is None


def test_two_headers_with_one_meaning_is_an_error():
    with pytest.raises(SchemaError, match="period"):
        schema.map_headers(["Mã hộ", "Năm", "Kỳ"])


def test_file_kind_by_headers():
    assert schema.file_kind(["household_id", "period", "status", "province"]) == "register"
    assert schema.file_kind(["household_id", "program", "start_period"]) == "support"
    assert schema.file_kind(["province", "income_pc_month"]) is None
    assert schema.file_kind(["province", "commune", "period", "households_total"]) == "totals"
    adoption = [schema.canonical_header(h) for h in ("Tỉnh", "Huyện", "Xã", "Chương trình", "Năm áp dụng")]
    assert schema.file_kind(adoption) == "adoption"
    assert schema.file_kind(["household_id"] + adoption) == "support"  # a roll with a year column stays a roll


@pytest.mark.parametrize("header, expected", [
    ("STT", "_row_number"), ("Số TT", "_row_number"),          # list templates' running number
    ("Tổng số hộ", "households_total"), ("TONG SO HO", "households_total"),
    ("Tổng số hộ dân cư", "households_total"), ("Tổng số hộ (hộ)", "households_total"),
    ("Tổng số hộ nghèo", None), ("Tổng số hộ cận nghèo", None),  # counts of the poor, not totals
])
def test_list_template_and_totals_headers(header, expected):
    assert schema.canonical_header(header) == expected


def test_totals_rows_checked_with_reasons():
    df = pd.DataFrame({"province": ["Hà Giang", "", "Hà Giang", "Hà Giang", "Hà Giang"],
                       "commune": ["Xã A", "Xã B", None, "Xã C", "Xã D"],
                       "period": ["2024", "2024", "Năm 2024", "2024", "20x4"],
                       "households_total": ["1.234", "50", "12.000", "12,5", "7"]})
    good, rejected = schema.check_rows(df, kind="totals")
    assert good.index.tolist() == [0, 2]
    assert good["households_total"].tolist() == [1234, 12000]
    assert good["period"].tolist() == [2024, 2024]
    reasons = rejected["reason"].to_dict()
    assert reasons[1].startswith("province: blank")
    assert "households_total" in reasons[3] and "whole number" in reasons[3]
    assert reasons[4].startswith("period: '20x4'")


# --- values -------------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("1500000", 1_500_000),
    ("1.500.000", 1_500_000),
    ("1.500.000 đ", 1_500_000),
    ("1.500.000đ", 1_500_000),
    ("1.500.000 VNĐ", 1_500_000),
    ("1.500.000 đồng", 1_500_000),
    ("1,500,000", 1_500_000),
    ("1,500,000 VND", 1_500_000),
    ("1,5 triệu", 1_500_000),
    ("1,5 trieu", 1_500_000),
    ("1.5 triệu", 1_500_000),
    ("2 triệu", 2_000_000),
    ("1,5tr", 1_500_000),
    ("2,25 triệu", 2_250_000),
    ("500 nghìn", 500_000),
    ("500k", 500_000),
    ("1.500", 1_500),          # one separator + exactly three digits = thousands
    ("1,500", 1_500),
    ("1.5", 1.5),              # otherwise the decimal mark
    ("1,5", 1.5),
    ("2.25", 2.25),
    ("1523456.78", 1_523_456.78),   # how pandas writes floats to csv
    ("1234.567", 1_234.567),        # four digits before: not a thousands group
    ("1.500.000,50", 1_500_000.5),  # both: the last one is decimal
    ("1,500,000.50", 1_500_000.5),
    (" 700000 ", 700_000),
    ("-5", -5),
    (1_500_000, 1_500_000),         # Excel number cells
    (1.5e6, 1_500_000),
])
def test_number_parsing(text, expected):
    values, invalid = schema.parse_number(pd.Series([text], dtype=object))
    assert not invalid[0]
    assert values[0] == pytest.approx(expected)


@pytest.mark.parametrize("text", ["abc", "1..5", "12.34.5", "1.50.000", "triệu", "1,5 cái", "--5"])
def test_unreadable_numbers_are_flagged(text):
    values, invalid = schema.parse_number(pd.Series([text], dtype=object))
    assert invalid[0] and np.isnan(values[0])


@pytest.mark.parametrize("text", [None, "", "  ", "-", np.nan, "NaN"])
def test_blank_numbers_are_missing_not_invalid(text):
    values, invalid = schema.parse_number(pd.Series([text], dtype=object))
    assert not invalid[0] and np.isnan(values[0])


def test_number_column_mixing_fast_and_formatted_values():
    s = pd.Series(["1500000", "1.500.000 đ", "2,5 triệu", None, "x", "1.5"], dtype=object)
    values, invalid = schema.parse_number(s)
    assert list(invalid) == [False, False, False, False, True, False]
    np.testing.assert_allclose(values[[0, 1, 2, 5]], [1.5e6, 1.5e6, 2.5e6, 1.5])


@pytest.mark.parametrize("text, expected", [
    ("Hộ nghèo", "poor"), ("Nghèo", "poor"), ("HỘ NGHÈO", "poor"), ("ho ngheo", "poor"),
    ("nghèo ", "poor"), ("poor", "poor"),
    ("Hộ cận nghèo", "near_poor"), ("Cận nghèo", "near_poor"), ("can ngheo", "near_poor"),
    ("near_poor", "near_poor"), ("near-poor", "near_poor"),
    ("Không nghèo", "non_poor"), ("Thoát nghèo", "non_poor"),
    ("Hộ có mức sống trung bình", "non_poor"), ("khong ngheo", "non_poor"),
    ("non_poor", "non_poor"), ("Non-poor", "non_poor"),
])
def test_status_mapping(text, expected):
    values, invalid = schema.parse_status(pd.Series([text]))
    assert not invalid[0] and values[0] == expected


@pytest.mark.parametrize("text", ["Nghèo lắm", "giàu", "P", "1"])
def test_unknown_status_is_flagged(text):
    _, invalid = schema.parse_status(pd.Series([text]))
    assert invalid[0]


@pytest.mark.parametrize("text, expected", [
    ("Thành thị", "urban"), ("thanh thi", "urban"), ("Nông thôn", "rural"),
    ("NONG THON", "rural"), ("rural", "rural"),
])
def test_area_mapping(text, expected):
    assert schema.parse_area(pd.Series([text]))[0][0] == expected


@pytest.mark.parametrize("text, expected", [
    ("Chết", "death"), ("Tử vong", "death"), ("tu vong", "death"), ("Chuyển đi", "migration"),
    ("Di cư", "migration"), ("Chuyển đi nơi khác", "migration"), ("Tách hộ", "split"),
    ("Nhập hộ", "merger"), ("Gộp hộ", "merger"), ("death", "death"),
])
def test_removal_reason_mapping(text, expected):
    values, invalid = schema.parse_removal_reason(pd.Series([text]))
    assert not invalid[0] and values[0] == expected


@pytest.mark.parametrize("text, expected", [
    ("Có", True), ("co", True), ("x", True), ("X", True), ("1", True), (1, True),
    ("True", True), (True, True), ("Không", False), ("0", False), (0, False), ("False", False),
])
def test_boolean_cells(text, expected):
    values, invalid = schema.parse_bool(pd.Series([text, "Có", "Không"], dtype=object))
    assert not invalid[0] and values[0] is expected


def test_mark_columns_read_blank_as_false_other_columns_as_unknown():
    marks, _ = schema.parse_bool(pd.Series(["x", "", None, "x"], dtype=object))
    assert list(marks) == [True, False, False, True]
    words, _ = schema.parse_bool(pd.Series(["Có", "", "Không"], dtype=object))
    assert words[0] is True and words[1] is None and words[2] is False


@pytest.mark.parametrize("text, expected", [
    ("15/08/2023", pd.Timestamp(2023, 8, 15)),
    ("1/7/2025", pd.Timestamp(2025, 7, 1)),
    ("05/04/2024", pd.Timestamp(2024, 4, 5)),     # day first, never April 5th as May 4th
    ("31-12-2024", pd.Timestamp(2024, 12, 31)),
    ("2024-03-02", pd.Timestamp(2024, 3, 2)),
    (pd.Timestamp(2022, 1, 9), pd.Timestamp(2022, 1, 9)),   # a real Excel date cell
])
def test_dates_day_first(text, expected):
    values, invalid = schema.parse_date(pd.Series([text], dtype=object))
    assert not invalid[0] and pd.Timestamp(values[0]) == expected


@pytest.mark.parametrize("text", ["32/01/2024", "15/13/2023", "hôm qua"])
def test_bad_dates_flagged(text):
    assert schema.parse_date(pd.Series([text], dtype=object))[1][0]


@pytest.mark.parametrize("when, quarter", [
    ("01/01/2024", "2024Q1"), ("31/03/2024", "2024Q1"), ("01/04/2024", "2024Q2"),
    ("15/08/2023", "2023Q3"), ("31/12/2025", "2025Q4"),
])
def test_date_to_quarter(when, quarter):
    assert schema.date_to_quarter(schema.parse_date_value(when)) == quarter


@pytest.mark.parametrize("text, expected", [
    (2024, 2024), ("2024", 2024), (2024.0, 2024), ("2025Q3", "2025Q3"), ("2025-Q3", "2025Q3"),
    ("Quý 3/2025", "2025Q3"), ("Quý III/2025", "2025Q3"), ("quy 4 nam 2024", "2024Q4"),
    ("Q1/2023", "2023Q1"), ("Năm 2022", 2022),
])
def test_period_values(text, expected):
    assert schema.period_value(text) == expected


@pytest.mark.parametrize("text", ["2024Q5", "20x4", "Quý 5/2024", "1850", True])
def test_bad_periods_flagged(text):
    assert schema.period_value(text) is schema._INVALID


# --- validate_panel ------------------------------------------------------------------
def _vietnamese_panel():
    return pd.DataFrame({
        "Mã hộ": ["HH1", "HH1", "HH2", "HH2"],
        "Kỳ": ["2024Q4", "2025Q1", "2024Q4", "Quý 1/2025"],
        "Phân loại hộ": ["Hộ nghèo", "Cận nghèo", "Không nghèo", None],
        "Tỉnh": ["Hà Giang", "Hà Giang", "Hà Nội", "Hà Nội"],
        "Khu vực": ["Nông thôn", "Nông thôn", "Thành thị", "Thành thị"],
        "Số nhân khẩu": ["4", "4", "2", "2"],
        "Thu nhập bình quân": ["1.200.000", "1,6 triệu", "3.000.000 đ", None],
        "Dân tộc thiểu số": ["Có", "Có", "Không", "Không"],
        "Lý do ra khỏi danh sách": [None, None, None, "Chuyển đi"],
        "dep_water": ["x", "", "", ""],
    })


def test_validate_panel_maps_headers_values_and_dtypes():
    out = schema.validate_panel(_vietnamese_panel(), source="demo.csv")
    assert list(out.columns[:4]) == ["household_id", "period", "status", "province"]
    assert out["status"].tolist()[:3] == ["poor", "near_poor", "non_poor"]
    assert pd.isna(out["status"].iloc[3]) and out["removal_reason"].iloc[3] == "migration"
    assert out["period"].tolist() == ["2024Q4", "2025Q1", "2024Q4", "2025Q1"]
    assert out["area"].tolist() == ["rural", "rural", "urban", "urban"]
    assert out["income_pc_month"].iloc[:3].tolist() == [1.2e6, 1.6e6, 3.0e6]
    assert out["household_size"].dtype == "Int64"
    assert out["ethnic_minority"].dtype == bool and out["ethnic_minority"].tolist() == [True, True, False, False]
    assert out["dep_water"].tolist() == [True, False, False, False]


def test_validate_panel_keeps_int_years_and_extra_columns():
    df = pd.DataFrame({"household_id": ["a", "b"], "period": [2023, 2024],
                       "status": ["poor", "non_poor"], "province": ["Hà Nội"] * 2,
                       "period_index": [2023, 2024]})
    out = schema.validate_panel(df)
    assert out["period"].dtype == "int64" and out["period"].tolist() == [2023, 2024]
    assert out["period_index"].tolist() == [2023, 2024]


def test_validate_panel_error_names_file_row_and_column():
    df = _vietnamese_panel()
    df.loc[2, "Phân loại hộ"] = "Nghèo lắm"
    with pytest.raises(SchemaError) as err:
        schema.validate_panel(df, source="ha_giang_2025.xlsx")
    message = str(err.value)
    assert "ha_giang_2025.xlsx" in message
    assert "row 4" in message          # data row 3 = spreadsheet row 4 (header is row 1)
    assert "status" in message and "Nghèo lắm" in message


@pytest.mark.parametrize("drop", ["Mã hộ", "Kỳ", "Phân loại hộ", "Tỉnh"])
def test_validate_panel_requires_the_four_columns(drop):
    with pytest.raises(SchemaError, match="missing required column"):
        schema.validate_panel(_vietnamese_panel().drop(columns=drop), source="x.csv")


def test_status_missing_only_on_removal_rows():
    df = _vietnamese_panel()
    df.loc[3, "Lý do ra khỏi danh sách"] = None
    with pytest.raises(SchemaError, match="status: blank"):
        schema.validate_panel(df)


def test_duplicate_household_period_rejected():
    df = _vietnamese_panel()
    df.loc[1, "Kỳ"] = "2024Q4"
    with pytest.raises(SchemaError, match="repeat a household and period"):
        schema.validate_panel(df, source="x.csv")


def test_mixed_frequencies_rejected():
    df = _vietnamese_panel()
    df.loc[1, "Kỳ"] = "2025"
    with pytest.raises(SchemaError, match="period"):
        schema.validate_panel(df, source="x.csv")


def test_a_removal_row_carries_no_status():
    df = pd.DataFrame({"household_id": ["a"], "period": [2024], "status": ["Hộ nghèo"],
                       "province": ["Hà Nội"], "removal_reason": ["Tử vong"]})
    out = schema.validate_panel(df)
    assert pd.isna(out["status"].iloc[0]) and out["removal_reason"].iloc[0] == "death"


def test_check_rows_one_bad_row_never_rejects_the_rest():
    df = pd.DataFrame({
        "household_id": ["a", "b", "", "d", "e"],
        "period": ["2024", "2024", "2024", "20x4", "2024"],
        "status": ["Hộ nghèo", "giàu", "Nghèo", "Nghèo", "Cận nghèo"],
        "province": ["Hà Nội"] * 5,
        "income_pc_month": ["1.000.000", "1", "2", "3", "abc"],
    })
    good, rejected = schema.check_rows(df)
    assert good["household_id"].tolist() == ["a"]
    assert set(rejected.index) == {1, 2, 3, 4}
    reasons = rejected["reason"]
    assert reasons[1].startswith("status: 'giàu'")
    assert reasons[2].startswith("household_id: blank")
    assert reasons[3].startswith("period: '20x4'")
    assert reasons[4].startswith("income_pc_month: 'abc'")
    assert rejected.loc[1, "status"] == "giàu"   # raw values kept


def test_support_rows_dates_become_quarters():
    df = pd.DataFrame({"Mã hộ": ["a", "b", "c"], "Chương trình": ["credit", "housing", "x"],
                       "Ngày bắt đầu": ["15/08/2023", "2024Q1", "31/02/2024"],
                       "Số tiền": ["50.000.000 đ", "1,5 triệu", "0"]})
    good, rejected = schema.check_rows(df.rename(columns=schema.map_headers(df.columns)),
                                       kind="support")
    assert good["start_period"].tolist() == ["2023Q3", "2024Q1"]
    assert good["amount_vnd"].tolist() == [50_000_000.0, 1_500_000.0]
    assert rejected["reason"].iloc[0].startswith("start_period: '31/02/2024'")


def test_pandera_schema_is_the_final_guard():
    df = pd.DataFrame({"household_id": ["a"], "period": [2024], "status": ["rich"],
                       "province": ["Hà Nội"]})
    with pytest.raises(Exception):
        schema.PANEL_SCHEMA.validate(df)


def test_values_stay_on_their_rows_when_earlier_rows_are_rejected():
    # rows 0 and 2 are bad; every column of the good rows must keep its own values
    n = 8
    df = pd.DataFrame({
        "household_id": [f"h{i}" for i in range(n)],
        "period": ["2024"] * n,
        "status": ["bad", "poor", "bad", "near_poor", "non_poor", "poor", "poor", "poor"],
        "province": [f"P{i}" for i in range(n)],
        "ethnic_minority": ["Có", "Có", "Không", "Không", "Có", "Không", "Có", "Không"],
        "dep_water": ["1", "0", "1", "1", "0", "1", "0", "1"],
        "household_size": [str(i + 1) for i in range(n)],
        "income_pc_month": [str(1000 * (i + 1)) for i in range(n)],
        "area": ["Thành thị", "Nông thôn"] * 4,
    })
    good, _ = schema.check_rows(df)
    assert good.index.tolist() == [1, 3, 4, 5, 6, 7]
    for i in good.index:
        row = good.loc[i]
        assert row["household_id"] == f"h{i}" and row["province"] == f"P{i}"
        assert row["ethnic_minority"] == (df.loc[i, "ethnic_minority"] == "Có")
        assert row["dep_water"] == (df.loc[i, "dep_water"] == "1")
        assert row["household_size"] == i + 1 and row["income_pc_month"] == 1000 * (i + 1)
        assert row["area"] == ("urban" if i % 2 == 0 else "rural")


def test_support_end_before_start_rejected():
    df = pd.DataFrame({"household_id": ["a", "b", "c"], "program": ["credit"] * 3,
                       "start_period": ["2023Q3", "2023", "15/08/2023"],
                       "end_period": ["2023Q2", "2024Q1", "2023"]})
    good, rejected = schema.check_rows(df, kind="support")
    assert good["household_id"].tolist() == ["b", "c"]
    assert rejected["reason"].tolist() == ["end_period: before start_period"]
