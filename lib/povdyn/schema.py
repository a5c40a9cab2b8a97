"""The register schema: canonical columns, Vietnamese header aliases, value parsing.

Canonical household-period panel (architecture.md, methods.md "The register panel"):
one row per household per review period; `household_id`, `period`, `status` and
`province` are required, every other column is optional. `status` may be NA only on a
removal row (one with `removal_reason` set). Support records: `household_id`,
`program`, `start_period`, `end_period`, `amount_vnd`.

Raw exports from the offices arrive with Vietnamese headers and values written the way
Vietnamese spreadsheets write them. This module turns them into canonical names and
dtypes, one column at a time and vectorised (a Python call per *distinct* value, never
per row), and says for every bad cell which column is wrong and why.

Rules for reading values (all tolerant of case, diacritics, đ/Đ and extra spaces):

* Headers: `fold()` the header (strip accents, lower case, punctuation -> space, text in
  parentheses dropped, e.g. "Thu nhập bình quân (đồng/người/tháng)"), then look it up in
  `HEADER_ALIASES`. One-word aliases ("Năm", "Tỉnh", "Xã", "Kỳ") must match the whole
  header; longer aliases also match as a prefix ("Số nhân khẩu trong hộ"), the longest
  alias winning. Unknown headers are not loaded (ingest lists them in its summary).
* Numbers (`parse_number`): "1500000", "1.500.000", "1.500.000 đ", "1,500,000 VND",
  "1.500.000,5", "1,5 triệu", "2 triệu", "1,5tr", "500 nghìn". Rule for the ambiguous
  separators: a "." or "," followed by groups of exactly three digits, with one to three
  digits before the first one, is a thousands separator ("1.500" = 1500, "1,500" = 1500,
  because VND amounts have no fractional part); any other single "." or "," is the
  decimal mark ("1.5" = 1.5, "1,5" = 1.5, "2.25" = 2.25, "1523456.78" = 1523456.78).
  When both appear, the last one is the decimal mark ("1.500.000,50"). After a unit word
  (triệu/tr = 1e6, nghìn/ngàn/k = 1e3, tỷ = 1e9) a lone separator is always the decimal
  mark ("1,250 triệu" = 1,250,000). Currency words (đ, đồng, VND, VNĐ) are ignored.
* Dates (`parse_date`): dd/mm/yyyy (also d/m/yyyy, dd-mm-yyyy, dd.mm.yyyy), ISO
  yyyy-mm-dd, and real date cells from Excel. Day first, always.
* Periods: whatever `povdyn.periods.parse_period` reads (2024, "2025Q3"), after
  rewriting Vietnamese quarter labels ("Quý 3/2025", "Quý III năm 2025", "Q3/2025") and
  "Năm 2024" into those forms. Support rolls also take a date, turned into its quarter
  ("15/08/2023" -> "2023Q3").
* Booleans: Có/Không, x (marked) / blank, 1/0, True/False, yes/no. In a column whose
  non-blank values are all marks ("x", "✓"), a blank cell means False; otherwise a
  blank cell is unknown (NA).
* Removal reasons: Chết/Tử vong/Qua đời -> death, Chuyển đi/Di cư/Chuyển khẩu ->
  migration, Tách hộ -> split, Nhập hộ/Gộp hộ -> merger. A "reason" that is really an
  exit ("Thoát nghèo", "Thoát cận nghèo") is not a removal: the row stays in the panel
  as a non-poor row (methods.md: removals are attrition, exits are not).
* A removal row's status is set to NA (the canonical removal row carries no status).
"""
from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from .errors import PeriodError, PovdynError, SchemaError
from .periods import frequency_and_index, label, parse_period

# ---------------------------------------------------------------------------------
# Canonical columns
# ---------------------------------------------------------------------------------
STATUSES = ("poor", "near_poor", "non_poor")
REMOVAL_REASONS = ("death", "migration", "merger", "split")
AREAS = ("urban", "rural")

DEPRIVATION_COLUMNS = [
    "dep_employment", "dep_dependants", "dep_nutrition", "dep_health_insurance",
    "dep_adult_education", "dep_child_school", "dep_housing_quality", "dep_housing_area",
    "dep_water", "dep_latrine", "dep_telecom", "dep_info_devices",
]
# 2027-2030 standard: dep_info_devices replaced by dep_digital_services, plus dep_waste
DEPRIVATION_COLUMNS_2027 = ["dep_digital_services", "dep_waste"]

REQUIRED_PANEL_COLUMNS = ["household_id", "period", "status", "province"]
PANEL_COLUMNS = [
    "household_id", "period", "status", "province", "province_2025", "region", "district",
    "commune", "commune_2025", "commune_code", "commune_2025_basis",
    "area", "ethnic_minority", "meritorious", "household_size", "income_pc_month",
    *DEPRIVATION_COLUMNS, *DEPRIVATION_COLUMNS_2027, "weight", "removal_reason",
]
REQUIRED_SUPPORT_COLUMNS = ["household_id", "program", "start_period"]
REQUIRED_TOTALS_COLUMNS = ["province", "period", "households_total"]
TOTALS_COLUMNS = ["province", "province_2025", "commune", "period", "households"]
# commune programme adoption register (issue 14 §3): Tỉnh, Xã, Chương trình, Năm áp dụng
REQUIRED_ADOPTION_COLUMNS = ["province", "commune", "program", "adoption_year"]
ADOPTION_COLUMNS = ["province", "province_2025", "district", "commune", "program", "adoption_year"]
ADOPTION_YEARS = (1990, 2100)  # a year outside this range is a typo, not an adoption date
SUPPORT_COLUMNS = ["household_id", "program", "start_period", "end_period", "amount_vnd"]
# Direct identifiers: recognised so that ingest can drop them (privacy.IDENTIFIER_COLUMNS)
IDENTIFIER_HEADERS = ["head_name", "id_card", "phone", "address"]

TEXT_COLUMNS = ["province", "province_2025", "region", "district", "commune"]
BOOL_COLUMNS = ["ethnic_minority", "meritorious"]  # + every dep_* column

# canonical name -> aliases (written as people write them; folded when the table is built)
_ALIASES: dict[str, list[str]] = {
    "household_id": ["Mã hộ", "Mã hộ gia đình", "Mã số hộ", "Mã HGĐ", "Household ID", "HH ID"],
    "period": ["Năm", "Kỳ", "Kỳ rà soát", "Năm rà soát", "Kỳ báo cáo", "Period", "Year"],
    "_quarter": ["Quý"],  # a separate quarter column, combined with Năm into "YYYYQn"
    "_row_number": ["STT", "Số TT", "Số thứ tự", "TT"],  # list templates' running number
    # household totals table (denominators, issue 10 §2): Tỉnh, Xã, Năm/Kỳ, Tổng số hộ
    "households_total": ["Tổng số hộ", "Tổng số hộ dân cư", "Tổng số hộ gia đình",
                         "Tổng số hộ dân", "Số hộ dân cư", "Total households", "Households total"],
    # adoption register: the year the commune adopted the programme (blank: never)
    "adoption_year": ["Năm áp dụng", "Năm áp dụng mô hình", "Năm triển khai", "Năm xã áp dụng",
                      "Adoption year"],
    "status": ["Phân loại hộ", "Phân loại", "Tình trạng", "Tình trạng hộ", "Xếp loại hộ",
               "Kết quả rà soát", "Status"],
    "province": ["Tỉnh", "Tỉnh/Thành phố", "Tỉnh/TP", "Tỉnh thành", "Tên tỉnh", "Province"],
    "province_2025": ["Tỉnh 2025", "Tỉnh mới", "Province 2025"],
    "region": ["Vùng", "Vùng kinh tế - xã hội", "Region"],
    "district": ["Huyện", "Quận/Huyện", "Quận huyện", "Huyện/Quận", "Quận/Huyện/Thị xã",
                 "District"],  # pre-2025 registers: tells same-named communes apart
    "commune": ["Xã", "Phường", "Xã/Phường", "Xã/Phường/Thị trấn", "Phường/Xã", "Commune", "Ward"],
    "area": ["Khu vực", "Thành thị/Nông thôn", "Area", "Urban/Rural"],
    "ethnic_minority": ["Dân tộc thiểu số", "Hộ DTTS", "DTTS", "Ethnic minority"],
    "meritorious": ["Người có công", "Hộ người có công", "Hộ có công", "Meritorious"],
    "household_size": ["Số nhân khẩu", "Số khẩu", "Số thành viên", "Nhân khẩu", "Household size"],
    "income_pc_month": ["Thu nhập bình quân", "Thu nhập bình quân đầu người", "Thu nhập",
                        "Income pc month", "Income per capita"],
    "weight": ["Trọng số", "Weight"],
    "removal_reason": ["Lý do ra khỏi danh sách", "Lý do", "Lý do đưa ra khỏi danh sách",
                       "Removal reason"],
    "head_name": ["Họ tên chủ hộ", "Họ và tên chủ hộ", "Tên chủ hộ", "Chủ hộ", "Họ tên",
                  "Họ và tên", "Head name"],
    "id_card": ["Số CCCD", "CCCD", "CMND", "Số CMND", "Số CCCD/CMND", "Số CMND/CCCD",
                "Căn cước công dân", "Số định danh", "Số định danh cá nhân", "ID card"],
    "phone": ["Số điện thoại", "Điện thoại", "SĐT", "Phone"],
    "address": ["Địa chỉ", "Address"],
    "program": ["Chương trình", "Mô hình", "Chương trình hỗ trợ", "Mô hình giảm nghèo",
                "Hình thức hỗ trợ", "Program", "Programme"],
    "start_period": ["Kỳ bắt đầu", "Ngày bắt đầu", "Bắt đầu", "Start period", "Start date"],
    "end_period": ["Kỳ kết thúc", "Ngày kết thúc", "Kết thúc", "End period", "End date"],
    "amount_vnd": ["Số tiền", "Số tiền hỗ trợ", "Kinh phí", "Amount VND", "Amount"],
    # the 12 deprivation indicators as Vietnamese lists name them
    "dep_employment": ["Việc làm", "Thiếu hụt việc làm"],
    "dep_dependants": ["Người phụ thuộc", "Người phụ thuộc trong hộ"],
    "dep_nutrition": ["Dinh dưỡng"],
    "dep_health_insurance": ["Bảo hiểm y tế"],
    "dep_adult_education": ["Trình độ giáo dục của người lớn", "Giáo dục người lớn"],
    "dep_child_school": ["Tình trạng đi học của trẻ em", "Trẻ em đi học"],
    "dep_housing_quality": ["Chất lượng nhà ở"],
    "dep_housing_area": ["Diện tích nhà ở bình quân đầu người", "Diện tích nhà ở"],
    "dep_water": ["Nguồn nước sinh hoạt", "Nguồn nước"],
    "dep_latrine": ["Nhà tiêu hợp vệ sinh", "Nhà tiêu"],
    "dep_telecom": ["Sử dụng dịch vụ viễn thông", "Dịch vụ viễn thông"],
    "dep_info_devices": ["Phương tiện phục vụ tiếp cận thông tin", "Tài sản phục vụ tiếp cận thông tin"],
    "dep_digital_services": ["Sử dụng dịch vụ số", "Dịch vụ số"],
    "dep_waste": ["Thu gom rác thải", "Xử lý rác thải"],
}


from .text import fold_key as fold  # noqa: E402 - the one name-folding helper (povdyn.text)

PROGRAMS_CSV = Path(__file__).parent / "data" / "programs.csv"  # the support programmes


def program_table() -> pd.DataFrame:
    """The support programmes povdyn knows (code, name_vi, name_en), from the shipped
    lib/povdyn/data/programs.csv: the one reader of it, for ingest's programme codes
    and the reports' names. A missing table is an error, not "any programme text":
    that silent fallback, with a wrong path, loaded programme names as written."""
    if not PROGRAMS_CSV.exists():
        raise PovdynError(f"the programme table {PROGRAMS_CSV} is missing: reinstall povdyn "
                          "(it ships in lib/povdyn/data)")
    return pd.read_csv(PROGRAMS_CSV, dtype=str)


def _build_alias_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for canonical, aliases in _ALIASES.items():
        for name in [canonical, *aliases]:
            key = fold(name)
            if key in table and table[key] != canonical:
                raise AssertionError(f"alias {name!r} used twice")  # a bug in this table
            table[key] = canonical
    return table


HEADER_ALIASES: dict[str, str] = _build_alias_table()
_PREFIX_ALIASES = sorted((k for k in HEADER_ALIASES if " " in k), key=len, reverse=True)


def canonical_header(header) -> str | None:
    """Canonical column name of one raw header, or None when it is not recognised."""
    if header is None or (isinstance(header, float) and np.isnan(header)):
        return None
    if not isinstance(header, str):
        return _canonical_header(str(header))
    return _canonical_header(header)


@lru_cache(maxsize=65536)
def _canonical_header(header: str) -> str | None:
    raw = re.sub(r"\(.*?\)", " ", str(header))  # units in parentheses
    key = fold(raw) or fold(header)
    if not key:
        return None
    if key in HEADER_ALIASES:
        return HEADER_ALIASES[key]
    if key.startswith("dep "):  # dep_* indicators pass through under their own names
        return "dep_" + key[4:].replace(" ", "_")
    for prefix in ("thieu hut ", "thieu "):  # "Thiếu hụt: nguồn nước"
        if key.startswith(prefix) and key[len(prefix):] in HEADER_ALIASES:
            hit = HEADER_ALIASES[key[len(prefix):]]
            if hit.startswith("dep_"):
                return hit
    for alias in _PREFIX_ALIASES:
        if key.startswith(alias + " "):
            hit = HEADER_ALIASES[alias]
            if hit == "households_total" and "ngheo" in key:
                return None  # "Tổng số hộ nghèo" counts poor households, not all of them
            return hit
    return None


def map_headers(columns: Iterable) -> dict:
    """{raw header: canonical name} for every recognised header (unrecognised ones are
    left out). Raises SchemaError when two headers mean the same column."""
    mapping: dict = {}
    seen: dict[str, object] = {}
    for col in columns:
        name = canonical_header(col)
        if name is None:
            continue
        if name in seen:
            raise SchemaError(
                f"columns {seen[name]!r} and {col!r} both mean {name!r}; "
                "rename or delete one of them"
            )
        seen[name] = col
        mapping[col] = name
    return mapping


def file_kind(canonical_columns: Iterable[str]) -> str | None:
    """'register', 'support', 'totals', 'adoption' or None, recognised from the
    (canonical) headers. A totals table (Tỉnh, Xã, Năm, Tổng số hộ) and an adoption
    register (Tỉnh, Xã, Chương trình, Năm áp dụng) have no household id."""
    cols = set(canonical_columns)
    if "household_id" in cols and "program" in cols:
        return "support"
    if "household_id" in cols and ({"period", "status"} & cols):
        return "register"
    if "household_id" not in cols and "households_total" in cols and "province" in cols:
        return "totals"
    if "household_id" not in cols and {"adoption_year", "program"} <= cols:
        return "adoption"
    return None


# ---------------------------------------------------------------------------------
# Value parsing: each parser returns (values, invalid_mask); blanks are NA, not invalid
# ---------------------------------------------------------------------------------
_INVALID = object()
_BLANK_WORDS = {"", "-", "--", "nan", "none", "null", "na", "n a", "nat"}


_BLANK_SYMBOLS = {"", "-", "--", "—", "–", "…", "..."}


def is_blank(value) -> bool:
    """None, NaN, empty or a placeholder ("-", "—", "NA", "null"). A cell of symbols or
    letters from other scripts ("✓", "٣") is never blank: folding would erase it."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float) and np.isnan(value):
        return True
    if isinstance(value, str):
        s = value.strip()
        if len(s) > 4:
            return False
        return s in _BLANK_SYMBOLS or (s.isascii() and fold(s) in _BLANK_WORDS)
    return False


_UNICODE_DIGIT = re.compile(r"\d")  # str patterns: every script's decimal digits


def clean_text(value: str) -> str:
    """NFC form with every decimal digit as ASCII ("٣" -> "3"): the spelling parsers read.
    Windows-1258 exports and some Mac software write tones as combining marks (NFD)."""
    text = unicodedata.normalize("NFC", value)
    if text.isascii():
        return text
    return _UNICODE_DIGIT.sub(lambda m: str(unicodedata.decimal(m.group(), m.group())), text)


def _map_uniques(series: pd.Series, func: Callable) -> tuple[np.ndarray, np.ndarray]:
    """Apply func to each distinct value (fast on registers: few distinct statuses,
    provinces, periods...). func returns a value, None (blank) or _INVALID."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    results = [func(u) for u in uniques]
    invalid_u = np.array([r is _INVALID for r in results] + [False], dtype=bool)
    values_u = np.empty(len(results) + 1, dtype=object)
    values_u[:-1] = [None if r is _INVALID else r for r in results]
    values_u[-1] = func(None) if func(None) is not _INVALID else None
    return values_u[codes], invalid_u[codes]


def _lookup(table: dict[str, str], prefixes: bool = False) -> Callable:
    prefix_keys = sorted((k for k in table if " " in k), key=len, reverse=True)

    def parse(value):
        if is_blank(value):
            return None
        key = fold(value)
        if key in table:
            return table[key]
        if prefixes:
            for p in prefix_keys:
                if key.startswith(p + " "):
                    return table[p]
        return _INVALID

    return parse


def _fold_table(spec: dict[str, list[str]]) -> dict[str, str]:
    return {fold(alias): canonical for canonical, aliases in spec.items()
            for alias in [canonical, *aliases]}


_STATUS_TABLE = _fold_table({
    "poor": ["Hộ nghèo", "Nghèo", "Poor"],
    "near_poor": ["Hộ cận nghèo", "Cận nghèo", "Near poor", "Near-poor", "Nearpoor"],
    "non_poor": ["Không nghèo", "Hộ không nghèo", "Thoát nghèo", "Hộ thoát nghèo",
                 "Thoát cận nghèo", "Hộ thoát cận nghèo", "Hộ có mức sống trung bình",
                 "Mức sống trung bình", "Non poor", "Non-poor", "Not poor", "Nonpoor"],
})
_AREA_TABLE = _fold_table({
    "urban": ["Thành thị", "Đô thị", "Urban"],
    "rural": ["Nông thôn", "Rural"],
})
_EXIT = "__exit__"  # a "removal reason" that is really an exit
_REMOVAL_TABLE = _fold_table({
    "death": ["Chết", "Tử vong", "Qua đời", "Chủ hộ chết", "Chủ hộ qua đời", "Death", "Died"],
    "migration": ["Chuyển đi", "Di cư", "Chuyển khẩu", "Chuyển đi nơi khác", "Chuyển hộ khẩu",
                  "Migration", "Moved"],
    "split": ["Tách hộ", "Split"],
    "merger": ["Nhập hộ", "Gộp hộ", "Sáp nhập hộ", "Merger", "Merge", "Merged"],
    _EXIT: ["Thoát nghèo", "Thoát cận nghèo", "Thoát nghèo bền vững", "Exit"],
})
_TRUE = {"co", "x", "1", "true", "yes", "y", "dung", "v", "t"}
_FALSE = {"khong", "0", "false", "no", "n", "sai", "f"}
_MARKS = {"x", "v", "✓", "✔", "☑", "✅"}  # "marked" = yes


def _is_mark(value) -> bool:
    return isinstance(value, str) and value.strip().lower() in _MARKS


def parse_status(series: pd.Series):
    """Statuses -> 'poor' / 'near_poor' / 'non_poor' (Vietnamese or English)."""
    return _map_uniques(series, _lookup(_STATUS_TABLE))


def parse_area(series: pd.Series):
    """Khu vực: Thành thị/Nông thôn (or urban/rural) -> 'urban' / 'rural'."""
    return _map_uniques(series, _lookup(_AREA_TABLE))


def parse_removal_reason(series: pd.Series):
    """Lý do ra khỏi danh sách -> death/migration/split/merger; exits -> the _EXIT marker."""
    return _map_uniques(series, _lookup(_REMOVAL_TABLE, prefixes=True))


def _bool_value(value):
    if is_blank(value):
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return bool(value) if value in (0, 1) else _INVALID
    s = str(value).strip()
    if _is_mark(s):
        return True
    key = fold(s)
    if key in _TRUE:
        return True
    if key in _FALSE:
        return False
    return _INVALID


def parse_bool(series: pd.Series):
    """Yes/no cells -> True/False/None (see the module docstring for the blank rule)."""
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.to_numpy(dtype=object), np.zeros(len(series), dtype=bool)
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    results = [_bool_value(u) for u in uniques]
    non_blank = [u for u, r in zip(uniques, results) if r is not None]
    marks_only = bool(non_blank) and all(_is_mark(u) for u in non_blank)
    blank_value = False if marks_only else None  # x-marked columns: blank means "no"
    table = np.array([blank_value if r is None else (None if r is _INVALID else r)
                      for r in results] + [blank_value], dtype=object)
    invalid = np.array([r is _INVALID for r in results] + [False], dtype=bool)
    return table[codes], invalid[codes]


_NUM_UNITS = {"trieu": 1e6, "tr": 1e6, "nghin": 1e3, "ngan": 1e3, "k": 1e3, "ty": 1e9}
_NUM_CURRENCY = re.compile(r"(vnd|vnđ|dong|đồng|đ|d)\.?$")
_GROUPED_DOT = re.compile(r"^[+-]?\d{1,3}(\.\d{3})+(,\d+)?$")
_GROUPED_COMMA = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
_PLAIN = re.compile(r"^[+-]?(\d+([.,]\d+)?|[.,]\d+)$")


def parse_number_text(value) -> float | None | object:
    """One Vietnamese-written number -> float (None if blank, _INVALID if unreadable)."""
    if is_blank(value):
        return None
    if isinstance(value, (bool, np.bool_)):
        return _INVALID
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    s = clean_text(str(value)).replace("\u00a0", " ").strip().lower()
    s = s.replace("đồng", "").replace("vnđ", "").replace("vnd", "").replace("đ", "")
    s = s.replace(" ", "")
    s = s.rstrip(".") if not re.search(r"\d\.$", s) else s
    multiplier = 1.0
    m = re.match(r"^(.*?\d)(trieu|triệu|tr|nghin|nghìn|ngan|ngàn|k|ty|tỷ)\.?$", s)
    if m:
        s = m.group(1)
        multiplier = _NUM_UNITS[fold(m.group(2))]
    if not s:
        return _INVALID
    if multiplier == 1.0 and _GROUPED_DOT.match(s):
        s = s.replace(".", "").replace(",", ".")
    elif multiplier == 1.0 and _GROUPED_COMMA.match(s):
        s = s.replace(",", "")
    elif _PLAIN.match(s):
        s = s.replace(",", ".")
    elif "." in s and "," in s:  # both: the last one is the decimal mark
        if s.rfind(",") > s.rfind("."):
            s = s.replace(".", "").replace(",", ".")
        else:
            s = s.replace(",", "")
        if not _PLAIN.match(s):
            return _INVALID
    else:
        return _INVALID
    try:
        return float(s) * multiplier
    except ValueError:
        return _INVALID


# Formats handled at C speed by pyarrow (RE2); everything else goes through
# parse_number_text once per distinct value.
_ARROW_INT = r"^[+-]?\d+$"
_ARROW_DECIMAL = r"^[+-]?\d+\.\d+$"
_ARROW_GROUPED_DOT = r"^[+-]?\d{1,3}(\.\d{3})+$"
_ARROW_GROUPED_COMMA = r"^[+-]?\d{1,3}(,\d{3})+$"


def _arrow_numbers(text: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(values, handled) for an all-string column: plain integers, plain decimals and
    "1.500.000" / "1,500,000" groups are converted by pyarrow; `handled` marks them."""
    import pyarrow as pa

    numbers, handled = arrow_number_fast_path(
        pa.array(text.to_numpy(dtype=object), type=pa.string()))
    return numbers.to_numpy(zero_copy_only=False), handled.to_numpy(zero_copy_only=False)


def arrow_number_fast_path(arr):
    """(float64 values, handled) Arrow arrays for an Arrow string array: the formats
    parse_number converts at C speed (plain integers and decimals, "1.500.000" and
    "1,500,000" groups, whitespace trimmed); the rest (handled False) must go through
    parse_number_text. The one definition of that split, for pandas and engine paths."""
    import pyarrow as pa
    import pyarrow.compute as pc

    # The shapes are tried in turn, each regex only over the cells no shape before it
    # took (the regexes are the cost): plain integers ("5824000"), then dotted groups
    # ("1.523.000", which also holds "1.500", never a decimal), then plain decimals and
    # comma groups. No cell has two of these shapes.
    arr = pc.utf8_trim_whitespace(arr)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    handled = pc.fill_null(pc.match_substring_regex(arr, _ARROW_INT), False)
    cleaned = arr
    rest = pc.invert(handled)
    if pc.any(rest).as_py():
        others = arr.filter(rest)
        is_dot = pc.fill_null(pc.match_substring_regex(others, _ARROW_GROUPED_DOT), False)
        cleaned_others = pc.if_else(is_dot, pc.replace_substring(others, ".", ""), others)
        taken = is_dot
        left = pc.invert(is_dot)
        if pc.any(left).as_py():
            last = others.filter(left)
            is_dec = pc.match_substring_regex(last, _ARROW_DECIMAL)
            is_comma = pc.match_substring_regex(last, _ARROW_GROUPED_COMMA)
            cleaned_last = pc.if_else(is_comma, pc.replace_substring(last, ",", ""), last)
            cleaned_others = pc.replace_with_mask(cleaned_others, left, cleaned_last)
            taken = pc.replace_with_mask(taken, left,
                                         pc.fill_null(pc.or_(is_dec, is_comma), False))
        cleaned = pc.replace_with_mask(arr, rest, cleaned_others)
        handled = pc.replace_with_mask(handled, rest, taken)
    numbers = pc.cast(pc.if_else(handled, cleaned, pa.scalar("0")), pa.float64())
    return numbers, handled


def parse_number(series: pd.Series):
    """Numbers written as Vietnamese exports write them -> float64 (NaN for blank).

    Plain integers, plain decimals and dotted/comma thousands go through pyarrow at C
    speed; only the rest ("1.500.000 đ", "1,5 triệu") is parsed per distinct value."""
    n = len(series)
    if pd.api.types.is_bool_dtype(series.dtype):
        return np.full(n, np.nan), np.ones(n, dtype=bool)
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.to_numpy(dtype="float64", na_value=np.nan), np.zeros(n, dtype=bool)
    out = np.full(n, np.nan)
    invalid = np.zeros(n, dtype=bool)
    text = series.astype("object")
    handled = np.zeros(n, dtype=bool)
    if pd.api.types.infer_dtype(text, skipna=False) == "string":
        values, handled = _arrow_numbers(text)
        out[handled] = values[handled]
    rest = ~handled
    if rest.any():
        values, bad = _map_uniques(text[rest], parse_number_text)
        out[rest] = np.array([np.nan if v is None else v for v in values], dtype="float64")
        invalid[rest] = bad
    return out, invalid


_DATE_FORMATS = ("%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%Y-%m-%d", "%Y/%m/%d",
                 "%d/%m/%Y %H:%M:%S", "%Y-%m-%d %H:%M:%S")


def parse_date_value(value):
    """One date (dd/mm/yyyy, day first) -> pandas Timestamp, None or _INVALID."""
    if is_blank(value):
        return None
    if isinstance(value, (datetime, date, pd.Timestamp, np.datetime64)):
        return pd.Timestamp(value)
    s = str(value).strip()
    for fmt in _DATE_FORMATS:
        try:
            return pd.Timestamp(datetime.strptime(s, fmt))
        except ValueError:
            continue
    return _INVALID


def parse_date(series: pd.Series):
    """Dates written day-first (dd/mm/yyyy) -> datetime64 (NaT for blank)."""
    values, invalid = _map_uniques(series, parse_date_value)
    return pd.to_datetime(pd.Series(values, dtype=object)).to_numpy(), invalid


def date_to_quarter(ts) -> str:
    """A date -> its quarter label, '15/08/2023' -> '2023Q3'."""
    ts = pd.Timestamp(ts)
    return f"{ts.year}Q{(ts.month - 1) // 3 + 1}"


_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4}
_VN_QUARTER = re.compile(r"^(?:quy|q)\s*([1-4]|iv|i{1,3})\s*(?:nam\s*)?(\d{4})$")
_VN_QUARTER_YEAR_FIRST = re.compile(r"^(\d{4})\s*(?:quy|q)\s*([1-4]|iv|i{1,3})$")
_VN_YEAR = re.compile(r"^nam\s*(\d{4})$")


def period_value(value):
    """One period cell -> canonical label (int year or 'YYYYQn'), None or _INVALID.
    Vietnamese forms are rewritten, then povdyn.periods.parse_period reads them."""
    if is_blank(value):
        return None
    if isinstance(value, (bool, np.bool_)):
        return _INVALID
    candidate = value
    if isinstance(value, str):
        value = candidate = clean_text(value)
        key = fold(value)
        m = _VN_QUARTER.match(key)
        if m:
            q = m.group(1)
            candidate = f"{m.group(2)}Q{_ROMAN.get(q, q)}"
        elif (m := _VN_QUARTER_YEAR_FIRST.match(key)):
            q = m.group(2)
            candidate = f"{m.group(1)}Q{_ROMAN.get(q, q)}"
        elif (m := _VN_YEAR.match(key)):
            candidate = m.group(1)
    try:
        freq, index = parse_period(candidate)
    except PeriodError:
        return _INVALID
    year = index if freq == "year" else index // 4
    if not 1990 <= year <= 2100:
        return _INVALID
    return label(freq, index)


def parse_period_column(series: pd.Series):
    """Period cells -> canonical labels (object array of int years / 'YYYYQn')."""
    return _map_uniques(series, period_value)


def _support_period_value(value):
    """Support roll start/end: a period label, or a date -> its quarter."""
    result = period_value(value)
    if result is not _INVALID:
        return result
    when = parse_date_value(value)
    if when is None or when is _INVALID:
        return _INVALID
    return date_to_quarter(when)


def _household_ids(series: pd.Series):
    """Household ids as stripped strings (Excel's 12345.0 -> '12345')."""
    if pd.api.types.infer_dtype(series, skipna=False) == "string":  # the usual case, vectorised
        import pyarrow as pa
        import pyarrow.compute as pc

        stripped = pc.utf8_trim_whitespace(pa.array(series.to_numpy(dtype=object), type=pa.string()))
        values = stripped.to_numpy(zero_copy_only=False).astype(object)
        blank = pc.less_equal(pc.utf8_length(stripped), 4).to_numpy(zero_copy_only=False)
        if blank.any():
            blank[blank] = [is_blank(v) for v in values[blank]]
        values[blank] = None
        return values, np.zeros(len(series), dtype=bool)

    def one(value):
        if is_blank(value):
            return None
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            return str(int(value))
        if isinstance(value, (bool, np.bool_)):
            return _INVALID
        return str(value).strip()
    return _map_uniques(series, one)


def _text(series: pd.Series):
    def one(value):
        if is_blank(value):
            return None
        # NFC: Windows-1258 exports write tones as combining marks ("Lai Cha\u0302u")
        return re.sub(r"\s+", " ", unicodedata.normalize("NFC", str(value))).strip()
    return _map_uniques(series, one)


# ---------------------------------------------------------------------------------
# Row-level checking
# ---------------------------------------------------------------------------------
def _show(value) -> str:
    text = "" if is_blank(value) else str(value)
    return repr(text[:40] + ("…" if len(text) > 40 else ""))


def _bool_array(values: np.ndarray, index=None) -> pd.Series:
    """bool when complete, pandas 'boolean' (nullable) when some values are missing."""
    missing = pd.isna(values)
    if missing.any():
        return pd.Series(values, index=index, dtype=object).astype("boolean")
    return pd.Series(values.astype(bool), index=index)


def check_rows(df: pd.DataFrame, kind: str = "register",
               programs: dict[str, str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check every row of a header-mapped frame (canonical column names, raw values).

    Returns (good, rejected): `good` holds the rows that pass, in canonical dtypes, with
    the input index; `rejected` holds the others with their raw values and a `reason`
    naming each bad column ("status: 'Nghèo lắm' is not a known status; ..."). One bad
    row never rejects the rest. kind = 'register' or 'support'. `programs` maps folded
    programme names/codes to codes (support rolls only; None = accept any text).
    Identifier columns (head_name, id_card, phone, address) are passed through unchecked.
    """
    if kind not in ("register", "support", "totals", "adoption"):
        raise ValueError("kind must be 'register', 'support', 'totals' or 'adoption'")
    n = len(df)
    # (rows, "column: what is wrong", raw cells to quote or None)
    problems: list[tuple[np.ndarray, str, pd.Series | None]] = []
    out: dict[str, object] = {}

    def flag(mask, message, raw=None):
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            problems.append((mask, message, raw))

    required = {"register": REQUIRED_PANEL_COLUMNS, "support": REQUIRED_SUPPORT_COLUMNS,
                "totals": REQUIRED_TOTALS_COLUMNS, "adoption": REQUIRED_ADOPTION_COLUMNS}[kind]
    missing = [col for col in required if col not in df.columns]
    if missing:
        raise SchemaError(f"required column(s) {missing} missing")
    if kind == "totals":
        _check_totals(df, out, flag)
        return _good_and_rejected(df, out, problems)
    if kind == "adoption":
        _check_adoption(df, out, flag, programs)
        return _good_and_rejected(df, out, problems)

    ids, bad = _household_ids(df["household_id"])
    flag(bad, "household_id: unreadable id (a yes/no value)")  # never quote raw ids
    flag(pd.isna(ids) & ~bad, "household_id: blank (every row needs Mã hộ)")
    out["household_id"] = ids

    if kind == "register":
        periods, bad = parse_period_column(df["period"])
        flag(bad, "period: not a year (2024) or quarter (2025Q3, Quý 3/2025)", df["period"])
        flag(pd.isna(periods) & ~bad, "period: blank")
        out["period"] = periods

        reasons = None
        if "removal_reason" in df.columns:
            reasons, bad = parse_removal_reason(df["removal_reason"])
            flag(bad, "removal_reason: not death/migration/split/merger "
                      "(Chết, Chuyển đi, Tách hộ, Nhập hộ)", df["removal_reason"])
        statuses, bad = parse_status(df["status"])
        flag(bad, "status: not a known status (Hộ nghèo, Hộ cận nghèo, Không nghèo)", df["status"])
        if reasons is not None:
            exit_reason = reasons == _EXIT
            statuses = np.where(exit_reason & pd.isna(statuses), "non_poor", statuses)
            reasons = np.where(exit_reason, None, reasons)
            removal = ~pd.isna(reasons)
            statuses = np.where(removal, None, statuses)  # a removal row carries no status
        else:
            removal = np.zeros(n, dtype=bool)
        flag(pd.isna(statuses) & ~bad & ~removal,
             "status: blank (needed unless the row has a removal reason)")
        out["status"] = statuses
        if reasons is not None:
            out["removal_reason"] = reasons

        provinces, _ = _text(df["province"])
        flag(pd.isna(provinces), "province: blank")
        out["province"] = provinces
        for col in ("province_2025", "region", "district", "commune"):
            if col in df.columns:
                out[col] = _text(df[col])[0]
        if "area" in df.columns:
            values, bad = parse_area(df["area"])
            flag(bad, "area: not Thành thị/Nông thôn (urban/rural)", df["area"])
            out["area"] = values
        bool_cols = [c for c in df.columns if c in BOOL_COLUMNS or str(c).startswith("dep_")]
        for col in bool_cols:
            values, bad = parse_bool(df[col])
            flag(bad, f"{col}: not yes/no (Có/Không, x, 1/0)", df[col])
            out[col] = values
        if "household_size" in df.columns:
            values, bad = parse_number(df["household_size"])
            flag(bad, "household_size: not a number", df["household_size"])
            ok = ~bad & ~np.isnan(values)
            flag(ok & ((values < 1) | (values > 100) | (np.mod(values, 1) != 0)),
                 "household_size: must be a whole number from 1 to 100", df["household_size"])
            out["household_size"] = values
        for col, positive in (("income_pc_month", False), ("weight", True)):
            if col in df.columns:
                values, bad = parse_number(df[col])
                flag(bad, f"{col}: not a number (e.g. 1.500.000 or 1,5 triệu)", df[col])
                ok = ~bad & ~np.isnan(values)
                flag(ok & ((values <= 0) if positive else (values < 0)),
                     f"{col}: must be {'positive' if positive else 'zero or more'}", df[col])
                out[col] = values
    else:
        out["program"] = _check_programs(df["program"], flag, programs)
        for col in ("start_period", "end_period"):
            if col in df.columns:
                values, bad = _map_uniques(df[col], _support_period_value)
                flag(bad, f"{col}: not a period or a date (dd/mm/yyyy)", df[col])
                if col == "start_period":
                    flag(pd.isna(values) & ~bad, "start_period: blank")
                out[col] = values
        if "start_period" in out and "end_period" in out:
            flag(_ends_before_start(out["start_period"], out["end_period"]),
                 "end_period: before start_period")
        if "amount_vnd" in df.columns:
            values, bad = parse_number(df["amount_vnd"])
            flag(bad, "amount_vnd: not a number (e.g. 1.500.000 đ or 1,5 triệu)", df["amount_vnd"])
            flag(~bad & (values < 0), "amount_vnd: must be zero or more", df["amount_vnd"])
            out["amount_vnd"] = values

    return _good_and_rejected(df, out, problems)


def _check_totals(df: pd.DataFrame, out: dict, flag: Callable) -> None:
    """Household totals (Tỉnh, Xã, Năm/Kỳ, Tổng số hộ): province and period required,
    commune blank for a province-level total, households a whole number of at least 1."""
    provinces, _ = _text(df["province"])
    flag(pd.isna(provinces), "province: blank")
    out["province"] = provinces
    if "commune" in df.columns:
        out["commune"] = _text(df["commune"])[0]
    periods, bad = parse_period_column(df["period"])
    flag(bad, "period: not a year (2024) or quarter (2025Q3, Quý 3/2025)", df["period"])
    flag(pd.isna(periods) & ~bad, "period: blank")
    out["period"] = periods
    raw = df["households_total"]
    values, bad = parse_number(raw)
    flag(bad, "households_total: not a number", raw)
    flag(~bad & np.isnan(values), "households_total: blank")
    ok = ~bad & ~np.isnan(values)
    flag(ok & ((values < 1) | (np.mod(values, 1) != 0)),
         "households_total: must be a whole number of households, at least 1", raw)
    out["households_total"] = values


def _check_programs(raw: pd.Series, flag: Callable, programs: dict[str, str] | None) -> np.ndarray:
    """Programme codes (folded names mapped by `programs`; None = any text); unknown and
    blank flagged."""
    if programs is None:
        values, _ = _text(raw)
        flag(pd.isna(values), "program: blank")
        return values
    values, bad = _map_uniques(raw, _lookup(programs))
    flag(bad, f"program: unknown programme (known codes: {', '.join(sorted(set(programs.values())))})", raw)
    flag(pd.isna(values) & ~bad, "program: blank")
    return values


def _check_adoption(df: pd.DataFrame, out: dict, flag: Callable, programs) -> None:
    """Commune adoption register (Tỉnh, [Huyện,] Xã, Chương trình, Năm áp dụng): province,
    commune and a known programme required; the year a whole number in ADOPTION_YEARS,
    blank meaning the commune never adopted the programme."""
    provinces, _ = _text(df["province"])
    flag(pd.isna(provinces), "province: blank")
    out["province"] = provinces
    communes, _ = _text(df["commune"])
    flag(pd.isna(communes), "commune: blank")
    if "district" in df.columns:  # pre-2025 registers: tells same-named communes apart
        out["district"] = _text(df["district"])[0]
    out["commune"] = communes
    out["program"] = _check_programs(df["program"], flag, programs)
    raw = df["adoption_year"]
    values, bad = parse_number(raw)
    flag(bad, "adoption_year: not a year (blank = never adopted)", raw)
    ok = ~bad & ~np.isnan(values)
    low, high = ADOPTION_YEARS
    flag(ok & ((values < low) | (values > high) | (np.mod(values, 1) != 0)),
         f"adoption_year: must be a whole year from {low} to {high} (blank = never adopted)", raw)
    out["adoption_year"] = values


def _good_and_rejected(df: pd.DataFrame, out: dict, problems: list):
    n = len(df)
    rejected_mask = np.zeros(n, dtype=bool)
    for mask, _, _ in problems:
        rejected_mask |= mask
    good_rows = ~rejected_mask
    good = pd.DataFrame(index=df.index[good_rows])
    for col, values in out.items():
        good[col] = np.asarray(values, dtype=object)[good_rows]
    for col in IDENTIFIER_HEADERS:
        if col in df.columns:
            good[col] = df[col].to_numpy()[good_rows]
    good = canonical_dtypes(good)

    rejected = df.loc[rejected_mask].copy()
    reason = pd.Series("", index=rejected.index, dtype=object)
    for mask, message, raw in problems:
        idx = df.index[mask]
        column, what = message.split(":", 1)
        if raw is not None:  # quote the cell: "status: 'Nghèo lắm' not a known status"
            part = column + ": " + raw.loc[idx].map(_show).astype(str) + what
        else:
            part = pd.Series(message, index=idx)
        before = reason.loc[idx]
        reason.loc[idx] = np.where(before == "", part, before + "; " + part)
    rejected["reason"] = reason
    return good, rejected


def _ends_before_start(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """True where both periods are set and the end comes before the start (compared as
    periods when both have the same frequency, else by calendar year)."""
    def positions(values):
        codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
        parsed = [parse_period(u) for u in uniques]
        freq = np.array([f == "quarter" for f, _ in parsed] + [False])[codes]
        index = np.array([i for _, i in parsed] + [0], dtype="int64")[codes]
        year = np.where(freq, index // 4, index)
        return codes >= 0, freq, index, year

    has_s, q_s, i_s, y_s = positions(start)
    has_e, q_e, i_e, y_e = positions(end)
    earlier = np.where(q_s == q_e, i_e < i_s, y_e < y_s)
    return has_s & has_e & earlier


def _period_dtype(values: pd.Series) -> pd.Series:
    """Int64 years when every label is a year, else strings (quarters, or a mix)."""
    non_null = values.dropna()
    if len(non_null) and all(isinstance(v, (int, np.integer)) for v in pd.unique(non_null)):
        return values.astype("int64") if not values.isna().any() else values.astype("Int64")
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    labels = np.array([str(u) for u in uniques] + [None], dtype=object)
    return pd.Series(labels[codes], index=values.index, dtype=object)


def canonical_dtypes(df: pd.DataFrame) -> pd.DataFrame:
    """Canonical dtypes for checked values: strings as object, bools as bool (boolean
    when some are NA), household_size Int64, money and weights float64, periods int64
    years or 'YYYYQn' strings."""
    df = df.copy()
    for col in df.columns:
        if col in ("period", "start_period", "end_period"):
            df[col] = _period_dtype(df[col])
        elif col in BOOL_COLUMNS or str(col).startswith("dep_"):
            if df[col].dtype == bool or (df[col].dtype == "boolean" and df[col].isna().any()):
                continue  # already canonical
            df[col] = _bool_array(df[col].to_numpy(dtype=object), index=df.index)
        elif col in ("household_size", "households_total", "adoption_year"):
            df[col] = pd.to_numeric(df[col]).astype("Int64")
        elif col in ("income_pc_month", "weight", "amount_vnd"):
            df[col] = pd.to_numeric(df[col]).astype("float64")
        else:
            values = df[col].astype(object)
            missing = values.isna()
            df[col] = values.where(~missing, None) if missing.any() else values
    return df


def column_order(columns: Iterable[str], kind: str = "register") -> list[str]:
    """Canonical column order: known columns first (their order), then dep_* alphabetically,
    then anything else in the order given."""
    cols = list(columns)
    known = PANEL_COLUMNS if kind == "register" else SUPPORT_COLUMNS
    first = [c for c in known if c in cols]
    deps = sorted(c for c in cols if c.startswith("dep_") and c not in first)
    rest = [c for c in cols if c not in first and c not in deps]
    return first + deps + rest


# ---------------------------------------------------------------------------------
# Spreadsheets povdyn writes: no formula injection
# ---------------------------------------------------------------------------------
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_PLAIN_NUMBER = re.compile(r"^[+-]?\d[\d.,]*$")


def spreadsheet_safe(value):
    """A text cell as Excel or LibreOffice may open it: text starting with = + - @ (or a
    tab, a carriage return, or their full-width forms) gets a leading apostrophe, so
    "=HYPERLINK(...)" or "=cmd|' /C calc'!A0" shows as text instead of running. Plain
    numbers ("-5", "+84") and non-text values pass unchanged."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) \
            and not _PLAIN_NUMBER.match(value):
        return "'" + value
    return value


def neutralise_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of `df` with every text cell passed through spreadsheet_safe: use it on
    every csv/xlsx written for people to open (quarantine.csv, headline tables)."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object:
            out[col] = out[col].map(spreadsheet_safe)
    return out


# ---------------------------------------------------------------------------------
# pandera schemas (final guard on canonical frames)
# ---------------------------------------------------------------------------------
def _is_bool_column(s: pd.Series) -> bool:
    return pd.api.types.is_bool_dtype(s.dtype)


def _periods_ok(s: pd.Series) -> bool:
    try:
        frequency_and_index(s.dropna())
    except PeriodError:
        return False
    return True


def _status_only_missing_on_removals(df: pd.DataFrame) -> pd.Series:
    if "removal_reason" in df.columns:
        return df["status"].notna() | df["removal_reason"].notna()
    return df["status"].notna()


@lru_cache(maxsize=None)
def _pandera_schemas() -> dict:
    """PANEL_SCHEMA and SUPPORT_SCHEMA, built on first use: importing pandera (which
    imports pyspark and typeguard when they are installed) costs ~0.4 CPU-s, paid by
    every ingest worker process although none of them validates a frame."""
    import pandera.pandas as pa

    panel = pa.DataFrameSchema(
        columns={
            "household_id": pa.Column(object, pa.Check(
                lambda s: pd.api.types.infer_dtype(s, skipna=False) == "string",
                error="household ids are strings"), nullable=False),
            "period": pa.Column(None, pa.Check(_periods_ok, error="one frequency of periods"),
                                nullable=False),
            "status": pa.Column(object, pa.Check.isin(STATUSES), nullable=True),
            "province": pa.Column(object, nullable=False),
            "province_2025": pa.Column(object, nullable=True, required=False),
            "region": pa.Column(object, nullable=True, required=False),
            "district": pa.Column(object, nullable=True, required=False),
            "commune": pa.Column(object, nullable=True, required=False),
            "commune_2025": pa.Column(object, nullable=True, required=False),
            "commune_code": pa.Column(object, nullable=True, required=False),
            "commune_2025_basis": pa.Column(object, nullable=True, required=False),
            "area": pa.Column(object, pa.Check.isin(AREAS), nullable=True, required=False),
            "ethnic_minority": pa.Column(None, pa.Check(_is_bool_column), nullable=True, required=False),
            "meritorious": pa.Column(None, pa.Check(_is_bool_column), nullable=True, required=False),
            "household_size": pa.Column("Int64", pa.Check.in_range(1, 100), nullable=True, required=False),
            "income_pc_month": pa.Column(float, pa.Check.ge(0), nullable=True, required=False),
            "weight": pa.Column(float, pa.Check.gt(0), nullable=True, required=False),
            "removal_reason": pa.Column(object, pa.Check.isin(REMOVAL_REASONS), nullable=True,
                                        required=False),
            r"^dep_\w+$": pa.Column(None, pa.Check(_is_bool_column), nullable=True, regex=True,
                                    required=False),
        },
        checks=[pa.Check(_status_only_missing_on_removals,
                         error="status may be NA only on a removal row")],
        unique=["household_id", "period"],
        strict=False,
        coerce=False,
        name="household-period panel",
    )

    support = pa.DataFrameSchema(
        columns={
            "household_id": pa.Column(object, nullable=False),
            "program": pa.Column(object, nullable=False),
            "start_period": pa.Column(None, nullable=False),
            "end_period": pa.Column(None, nullable=True, required=False),
            "amount_vnd": pa.Column(float, pa.Check.ge(0), nullable=True, required=False),
        },
        strict=False,
        coerce=False,
        name="support records",
    )
    return {"PANEL_SCHEMA": panel, "SUPPORT_SCHEMA": support}


def __getattr__(name: str):
    if name in ("PANEL_SCHEMA", "SUPPORT_SCHEMA"):
        return _pandera_schemas()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _pandera_errors() -> tuple:
    import pandera.errors

    return pandera.errors.SchemaError, pandera.errors.SchemaErrors


# ---------------------------------------------------------------------------------
# validate_panel / validate_support
# ---------------------------------------------------------------------------------
def _where(source) -> str:
    return f"{source}: " if source else ""


def _rename_to_canonical(df: pd.DataFrame, source) -> pd.DataFrame:
    try:
        mapping = map_headers(df.columns)
    except SchemaError as exc:
        raise SchemaError(f"{_where(source)}{exc}") from None
    mapping = {raw: canon for raw, canon in mapping.items() if raw != canon}
    return df.rename(columns=mapping) if mapping else df


def _raise_rejected(rejected: pd.DataFrame, df: pd.DataFrame, source, what: str):
    positions = df.index.get_indexer(rejected.index[:5])
    lines = []
    for pos, (label_, reason) in zip(positions, rejected["reason"].head(5).items()):
        where = f"row {pos + 2}" if isinstance(df.index, pd.RangeIndex) else \
            f"row {pos + 2} (index {label_!r})"
        lines.append(f"  {where}: {reason}")
    more = f"\n  ... and {len(rejected) - 5} more rows" if len(rejected) > 5 else ""
    raise SchemaError(
        f"{_where(source)}{len(rejected)} {what} row(s) do not fit the schema "
        f"(row numbers as a spreadsheet shows them, header = row 1):\n"
        + "\n".join(lines) + more
        + "\nFix these cells, or run `povdyn ingest` to quarantine bad rows instead."
    )


def validate_panel(df: pd.DataFrame, source=None) -> pd.DataFrame:
    """Check a household-period panel and return it with canonical names and dtypes.

    Vietnamese headers are mapped (HEADER_ALIASES), values parsed (module docstring),
    and every rule of the canonical panel is checked: required columns, statuses,
    periods of one frequency, status NA only on removal rows, one row per household and
    period. Columns the schema does not know (e.g. `period_index`) pass through.
    Raises SchemaError naming `source` (a file name or description), the row number
    (as a spreadsheet shows it, header = row 1) and the column.
    """
    if not isinstance(df, pd.DataFrame):
        raise SchemaError(f"{_where(source)}expected a pandas DataFrame, got {type(df).__name__}")
    df = _rename_to_canonical(df, source)
    missing = [c for c in REQUIRED_PANEL_COLUMNS if c not in df.columns]
    if missing:
        raise SchemaError(
            f"{_where(source)}missing required column(s) {missing}; found {list(df.columns)[:20]}. "
            "Needed: household_id (Mã hộ), period (Năm/Kỳ), status (Phân loại hộ), province (Tỉnh)."
        )
    known = [c for c in df.columns if c in PANEL_COLUMNS or str(c).startswith("dep_")
             or c in IDENTIFIER_HEADERS]
    extras = [c for c in df.columns if c not in known]
    good, rejected = check_rows(df[known], kind="register")
    if len(rejected):
        _raise_rejected(rejected, df, source, "panel")
    try:
        frequency_and_index(good["period"])
    except PeriodError as exc:
        raise SchemaError(f"{_where(source)}column period: {exc}") from None
    dup = good.duplicated(["household_id", "period"], keep=False)
    if dup.any():
        positions = df.index.get_indexer(good.index[dup])[:6]
        first = good.loc[dup, ["household_id", "period"]].head(3).to_dict("records")
        raise SchemaError(
            f"{_where(source)}{int(dup.sum())} rows repeat a household and period "
            f"(columns household_id, period), e.g. rows {[int(p) + 2 for p in positions]}: {first}. "
            "Keep one row per household per period."
        )
    for col in extras:
        good[col] = df[col].to_numpy()
    good = good[column_order(good.columns)].reset_index(drop=True)
    try:
        _pandera_schemas()["PANEL_SCHEMA"].validate(good)
    except _pandera_errors() as exc:  # a bug guard
        raise SchemaError(f"{_where(source)}{exc}") from None
    return good


def validate_support(df: pd.DataFrame, source=None,
                     programs: dict[str, str] | None = None) -> pd.DataFrame:
    """Check support records (household_id, program, start_period[, end_period,
    amount_vnd]) and return them with canonical names and dtypes; SchemaError otherwise."""
    df = _rename_to_canonical(df, source)
    missing = [c for c in REQUIRED_SUPPORT_COLUMNS if c not in df.columns]
    if missing:
        raise SchemaError(
            f"{_where(source)}missing required column(s) {missing}; found {list(df.columns)[:20]}. "
            "Needed: household_id (Mã hộ), program (Chương trình), start_period (Kỳ bắt đầu)."
        )
    known = [c for c in df.columns if c in SUPPORT_COLUMNS or c in IDENTIFIER_HEADERS]
    good, rejected = check_rows(df[known], kind="support", programs=programs)
    if len(rejected):
        _raise_rejected(rejected, df, source, "support")
    good = good[column_order(good.columns, "support")].reset_index(drop=True)
    try:
        _pandera_schemas()["SUPPORT_SCHEMA"].validate(good)
    except _pandera_errors() as exc:
        raise SchemaError(f"{_where(source)}{exc}") from None
    return good
