"""Vietnamese / English labels for everything a reviewer reads (plots, tables, report).

`label(key, lang)` returns the text for a key; unknown keys come back unchanged, so a
missing entry shows up as a raw key in a page rather than as an error. Vietnamese is the
default language, with full diacritics (NFC).
"""
from __future__ import annotations

import unicodedata

LANGS = ("vi", "en")

LABELS: dict[str, dict[str, str]] = {
    # statuses
    "poor": {"vi": "Nghèo", "en": "Poor"},
    "near_poor": {"vi": "Cận nghèo", "en": "Near-poor"},
    "non_poor": {"vi": "Không nghèo", "en": "Not poor"},
    "removed": {"vi": "Ra khỏi danh sách", "en": "Removed"},
    # geography and groups
    "national": {"vi": "Toàn quốc", "en": "National"},
    "province": {"vi": "Tỉnh, thành phố", "en": "Province"},
    "province_2025": {"vi": "Tỉnh, thành phố", "en": "Province"},
    "region": {"vi": "Vùng", "en": "Region"},
    "area": {"vi": "Khu vực", "en": "Area"},
    "urban": {"vi": "Thành thị", "en": "Urban"},
    "rural": {"vi": "Nông thôn", "en": "Rural"},
    "ethnic_minority": {"vi": "Dân tộc thiểu số", "en": "Ethnic minority"},
    "em_yes": {"vi": "Hộ DTTS", "en": "Ethnic minority"},
    "em_no": {"vi": "Hộ không DTTS", "en": "Not ethnic minority"},
    "group": {"vi": "Nhóm", "en": "Group"},
    # periods
    "period": {"vi": "Kỳ", "en": "Period"},
    "exit_period": {"vi": "Kỳ thoát nghèo", "en": "Exit period"},
    "year": {"vi": "Năm", "en": "Year"},
    "quarter": {"vi": "quý", "en": "quarters"},
    "time_quarter": {"vi": "Số quý sau khi thoát nghèo", "en": "Quarters after exit"},
    "time_year": {"vi": "Số năm sau khi thoát nghèo", "en": "Years after exit"},
    # metrics
    "households": {"vi": "Số hộ", "en": "Households"},
    "poor_households": {"vi": "Hộ nghèo", "en": "Poor households"},
    "near_poor_households": {"vi": "Hộ cận nghèo", "en": "Near-poor households"},
    "poor_rate": {"vi": "Tỷ lệ hộ nghèo", "en": "Poor rate"},
    "near_poor_rate": {"vi": "Tỷ lệ hộ cận nghèo", "en": "Near-poor rate"},
    "exit_rate": {"vi": "Tỷ lệ thoát nghèo", "en": "Exit rate from poverty"},
    "exits": {"vi": "Hộ thoát nghèo", "en": "Exits from poverty"},
    "to_near_poor": {"vi": "Thoát nghèo thành cận nghèo", "en": "Exits to near-poor"},
    "to_non_poor": {"vi": "Thoát nghèo lên trên cận nghèo", "en": "Exits above near-poor"},
    "near_poor_exit_rate": {"vi": "Tỷ lệ thoát cận nghèo", "en": "Exit rate from near-poverty"},
    "near_poor_exits": {"vi": "Hộ thoát cận nghèo", "en": "Exits from near-poverty"},
    "relapse_rate": {"vi": "Tỷ lệ tái nghèo", "en": "Relapse rate"},
    "relapses": {"vi": "Hộ tái nghèo", "en": "Relapses into poverty"},
    "new_poor": {"vi": "Hộ nghèo phát sinh", "en": "Newly poor households"},
    "entries": {"vi": "Hộ rơi vào nghèo", "en": "Entries into poverty"},
    "removals": {"vi": "Hộ ra khỏi danh sách (chết, chuyển đi, nhập/tách hộ)",
                 "en": "Removals (death, migration, merger/split)"},
    "survival": {"vi": "Tỷ lệ chưa tái nghèo", "en": "Share not poor again"},
    "rate": {"vi": "Tỷ lệ", "en": "Rate"},
    "share": {"vi": "Tỷ trọng", "en": "Share"},
    "ci95": {"vi": "Khoảng tin cậy 95%", "en": "95% interval"},
    "numerator": {"vi": "Số hộ", "en": "Households"},
    "denominator": {"vi": "Trên tổng số hộ", "en": "Out of"},
    "indicator": {"vi": "Chỉ tiêu", "en": "Indicator"},
    "value": {"vi": "Giá trị", "en": "Value"},
    "vs_previous": {"vi": "So với kỳ trước", "en": "vs previous period"},
    "vs_last_year": {"vi": "So với cùng kỳ năm trước", "en": "vs same period last year"},
    "from_status": {"vi": "Tình trạng kỳ trước", "en": "Status in previous period"},
    "to_status": {"vi": "Tình trạng kỳ này", "en": "Status in this period"},
    "percent": {"vi": "phần trăm", "en": "percent"},
    "points": {"vi": "điểm %", "en": "points"},
    # targets
    "target": {"vi": "Mục tiêu", "en": "Target"},
    "actual": {"vi": "Thực hiện", "en": "Actual"},
    "projection": {"vi": "Dự báo", "en": "Projection"},
    "on_track": {"vi": "Đạt", "en": "On track"},
    "off_track": {"vi": "Chưa đạt", "en": "Off track"},
    "not_assessable": {"vi": "Chưa đánh giá được", "en": "Not assessable"},
    "poor_rate_reduction": {"vi": "Giảm tỷ lệ hộ nghèo (điểm %/năm)",
                            "en": "Poor-rate reduction (points/year)"},
    "near_poor_rate_reduction": {"vi": "Giảm tỷ lệ hộ cận nghèo (điểm %/năm)",
                                 "en": "Near-poor-rate reduction (points/year)"},
    "em_poor_rate_reduction": {"vi": "Giảm tỷ lệ hộ nghèo DTTS (điểm %/năm)",
                               "en": "Ethnic-minority poor-rate reduction (points/year)"},
    "relapse_ceiling": {"vi": "Tỷ lệ tái nghèo tối đa (%)", "en": "Relapse ceiling (%)"},
    # report
    "report_title": {"vi": "Báo cáo động thái giảm nghèo", "en": "Poverty dynamics report"},
    "index_title": {"vi": "Báo cáo động thái giảm nghèo theo quý", "en": "Quarterly poverty dynamics report"},
    "pending": {"vi": "Đang cập nhật", "en": "Pending"},
    "failed": {"vi": "Lỗi khi tạo báo cáo", "en": "Report failed"},
    "log": {"vi": "Nhật ký lỗi", "en": "Log"},
    "page": {"vi": "Trang báo cáo", "en": "Report page"},
    "contents": {"vi": "Mục lục", "en": "Contents"},
    "generated": {"vi": "Thời điểm tạo", "en": "Generated"},
    "data_fingerprint": {"vi": "Dấu vân tay dữ liệu", "en": "Data fingerprint"},
    "version": {"vi": "Phiên bản povdyn", "en": "povdyn version"},
    "suppression_note": {
        "vi": ("Ô có dưới {min_cell} hộ được ẩn (\"<{min_cell}\"). Nơi bảng cũng in tổng số, một ô "
               "khác được ẩn thêm (\"x\") để không ai suy ra được ô nhỏ bằng phép trừ, từ tỷ lệ đã in "
               "hay từ khoảng giá trị của nhãn (ẩn bổ sung, methods.md \"Disclosure control\"). Tỷ lệ "
               "dựa trên ô bị ẩn hiện \"—\"."),
        "en": ("Cells with fewer than {min_cell} households are hidden (\"<{min_cell}\"). Where a "
               "table also prints a total, a further cell is hidden (\"x\") so that no small cell can "
               "be worked out by subtraction, from a printed share or from the labels' ranges "
               "(secondary suppression, methods.md \"Disclosure control\"). Rates built on a hidden "
               "cell show \"—\"."),
    },
}


# the report runner's index page and run status (povdyn.report); {fields} filled by it
LABELS.update({
    "index_headline": {"vi": "Các chỉ tiêu chính theo địa phương", "en": "Headline figures by region"},
    "index_download": {"vi": "Tải bảng (CSV)", "en": "Download the table (CSV)"},
    "index_pages": {"vi": "Trang báo cáo", "en": "Report pages"},
    "index_region": {"vi": "Địa phương", "en": "Region"},
    "index_seconds": {"vi": "Thời gian chạy (giây)", "en": "Run time (s)"},
    "run_complete": {"vi": "{ok}/{total} trang báo cáo đã tạo.", "en": "{ok}/{total} pages rendered."},
    "run_running": {"vi": "Đang chạy: {done}/{total} trang đã xong. Trang này chưa phải kết quả cuối cùng.",
                    "en": "Running: {done}/{total} pages done. This is not the final result yet."},
    "run_failed": {"vi": "Lần chạy chưa hoàn tất: {ok}/{total} trang đã tạo, {failed} trang lỗi.",
                   "en": "Incomplete run: {ok}/{total} pages rendered, {failed} failed."},
    "run_interrupted": {"vi": "Lần chạy bị dừng giữa chừng: chỉ {ok}/{total} trang được tạo trong lần chạy này.",
                        "en": "Run interrupted: only {ok}/{total} pages were rendered in this run."},
    "not_rendered": {"vi": "Chưa tạo trong lần chạy này", "en": "Not rendered in this run"},
    "waiting": {"vi": "Đang chờ", "en": "Waiting"},
})

# relapse early warning (povdyn.risk): what an officer reads -- reason code -> text, band
# names, the watchlist's headers and the limits of a score
REASON_TEXT = {
    "income_gap": {"vi": "Thu nhập chỉ vừa vượt chuẩn nghèo",
                   "en": "Income only just above the poverty line"},
    "income_change": {"vi": "Thu nhập vừa tăng đột ngột, có thể chưa bền vững",
                      "en": "Income rose sharply this year and may not last"},
    "dep_health_insurance": {"vi": "Chưa có bảo hiểm y tế", "en": "No health insurance"},
    "housing": {"vi": "Nhà ở chưa kiên cố hoặc chật hẹp",
                "en": "Poor-quality or cramped housing"},
    "dep_dependants": {"vi": "Nhiều người phụ thuộc (trẻ em, người già, ốm đau)",
                       "en": "Many dependants (children, elderly, sick)"},
    "other_deprivations": {"vi": "Còn thiếu hụt dịch vụ xã hội cơ bản khác",
                           "en": "Other basic services still lacking"},
    "household_size": {"vi": "Hộ đông người", "en": "Large household"},
    "area": {"vi": "Sống ở nông thôn", "en": "Lives in a rural area"},
    "region": {"vi": "Vùng hay gặp thiên tai, rủi ro", "en": "Region exposed to shocks"},
    "commune": {"vi": "Xã có nhiều hộ mới rơi vào nghèo",
                "en": "Many households in the commune fell into poverty"},
    "support": {"vi": "Chưa được hỗ trợ sinh kế hiệu quả",
                "en": "No effective livelihood support yet"},
    "to_near_poor": {"vi": "Mới thoát nghèo nhưng vẫn là hộ cận nghèo",
                     "en": "Just exited but still near-poor"},
    "poor_history": {"vi": "Đã nghèo nhiều năm trước đó", "en": "Poor for several earlier years"},
    "meritorious": {"vi": "Hộ có công với cách mạng", "en": "Meritorious household"},
    "ethnic_minority": {"vi": "Hộ dân tộc thiểu số", "en": "Ethnic-minority household"},
}
BAND_TEXT = {"high": {"vi": "Cao", "en": "High"}, "medium": {"vi": "Trung bình", "en": "Medium"},
             "low": {"vi": "Thấp", "en": "Low"}}

WATCHLIST_HEADERS = {
    "household_id": {"vi": "Mã hộ (bí danh)", "en": "Household (pseudonym)"},
    "commune": {"vi": "Xã/phường", "en": "Commune"},
    "risk_band": {"vi": "Mức nguy cơ", "en": "Risk band"},
    "risk_pct": {"vi": "Nguy cơ (%)", "en": "Risk (%)"},
    "reason_1": {"vi": "Lý do 1", "en": "Reason 1"},
    "reason_2": {"vi": "Lý do 2", "en": "Reason 2"},
    "reason_3": {"vi": "Lý do 3", "en": "Reason 3"},
    "local_code": {"vi": "Mã hộ tại địa phương", "en": "Local household code"},
}

LIMITS_TEXT = {
    "vi": ("Điểm nguy cơ chỉ để ưu tiên thăm hỏi, tư vấn và hỗ trợ sớm. Không dùng điểm này để "
           "đưa bất kỳ hộ nào ra khỏi danh sách hỗ trợ hay từ chối hỗ trợ. Điểm là xác suất ước "
           "tính từ dữ liệu rà soát, có sai số; cán bộ xã cần kiểm tra thực tế."),
    "en": ("The score only prioritises visits, advice and early support. It must never be used "
           "to take a household off support or refuse support. It is an estimated probability "
           "from review data and can be wrong; commune officers check on the ground."),
}

# the early warning's other texts (povdyn.risk: watchlist notes, calibration plot, band
# table, the report paragraph); {placeholders} are filled with str.format
EARLY_WARNING_TEXT = {
    "notes_sheet": {"vi": "Ghi chú", "en": "Notes"},
    "province_line": {"vi": "Tỉnh/thành: {province}", "en": "Province: {province}"},
    "bands_line": {"vi": "Mức nguy cơ: Cao khi nguy cơ ≥ {hi}; Trung bình khi {lo} – {hi}; Thấp khi dưới {lo}.",
                   "en": "Bands: High when risk >= {hi}; Medium {lo}-{hi}; Low below {lo}."},
    "axis_predicted": {"vi": "Nguy cơ dự báo", "en": "Predicted risk"},
    "axis_observed": {"vi": "Tỷ lệ thực tế nghèo lại", "en": "Observed share poor again"},
    "col_province": {"vi": "Tỉnh, thành phố", "en": "Province"},
    "col_commune": {"vi": "Xã, phường", "en": "Commune"},
    "col_exits": {"vi": "Hộ thoát nghèo", "en": "Households that exited"},
    "col_band": {"vi": "Nguy cơ: {band}", "en": "Risk: {band}"},
    "too_few": {"vi": ("Chưa đủ dữ liệu để dự báo tái nghèo: cần ít nhất {min_events} hộ tái nghèo (và "
                       "{min_events} hộ không tái nghèo) trong các nhóm thoát nghèo đã được theo dõi đủ kỳ."),
                "en": ("Not enough data to forecast relapse: at least {min_events} relapses (and "
                       "{min_events} households without) are needed among exits with complete follow-up.")},
    "paragraph": {
        "vi": ("Trong {exits} hộ thoát nghèo ở kỳ rà soát {when}, {high} hộ có nguy cơ cao (≥ {hi}) nghèo "
               "lại trong {within} kỳ rà soát tới. Mô hình ({method}) được kiểm định trên nhóm thoát "
               "nghèo {test_period} mà mô hình chưa thấy: AUC {auc}, sai số hiệu chuẩn (ECE) {ece}. {limits}"),
        "en": ("Of {exits} households that exited poverty at the {when} review, {high} are at high risk "
               "(>= {hi}) of being poor again within {within} reviews. The model ({method}) was validated "
               "on the {test_period} exits it had not seen: AUC {auc}, calibration error (ECE) {ece}. {limits}"),
    },
    "communes_not_listed": {
        "vi": "{n} xã, phường có dưới {smallest} hộ thoát nghèo không được liệt kê (số quá nhỏ để công bố).",
        "en": "{n} communes with fewer than {smallest} exiting households are not listed (too few to publish).",
    },
}


def label(key: str, lang: str = "vi") -> str:
    """The label of `key` in `lang` ("vi" or "en"); the key itself when unknown."""
    if lang not in LANGS:
        raise ValueError(f"lang={lang!r}: use 'vi' or 'en'")
    entry = LABELS.get(key)
    if entry is None:
        return key
    return unicodedata.normalize("NFC", entry[lang])


def labels(keys, lang: str = "vi") -> list[str]:
    """Labels of several keys."""
    return [label(k, lang) for k in keys]


def status_label(status: str, lang: str = "vi") -> str:
    """Label of a register status ("poor" -> "Nghèo")."""
    return label(str(status), lang)


def group_label(by: str, value, lang: str = "vi") -> str:
    """Display name of a group value (urban/rural, ethnic minority yes/no); a blank (not
    recorded) value is its own group ("<by>_unknown")."""
    if value is None or (not isinstance(value, str) and value != value) or str(value) == "<NA>":
        return label(f"{by}_unknown", lang)
    if by == "ethnic_minority":
        return label("em_yes" if bool(value) else "em_no", lang)
    return label(str(value), lang)


def region_label(region: str, lang: str = "vi") -> str:
    """Display name of a report region: "national" -> "Toàn quốc"; provinces as named."""
    return label("national", lang) if region == "national" else str(region)


# Section headings and short texts of the report page (vi / en)
SECTIONS: dict[str, dict[str, str]] = {
    "headline": {"vi": "Các chỉ tiêu chính", "en": "Headline figures"},
    "targets": {"vi": "Tiến độ so với mục tiêu", "en": "Progress against targets"},
    "projection": {"vi": "Dự báo đến năm 2025 và 2030", "en": "Projection to 2025 and 2030"},
    "trends": {"vi": "Xu hướng", "en": "Trends"},
    "flows": {"vi": "Chuyển dịch giữa các nhóm", "en": "Flows between statuses"},
    "survival": {"vi": "Thoát nghèo bền vững", "en": "Sustained exit"},
    "provinces": {"vi": "So sánh giữa các tỉnh, thành phố", "en": "Provinces compared"},
    "groups": {"vi": "Thành thị, nông thôn và hộ dân tộc thiểu số", "en": "Urban, rural and ethnic-minority households"},
    "programs": {"vi": "Mô hình giảm nghèo hiệu quả", "en": "Poverty-reduction models that work"},
    "early_warning": {"vi": "Cảnh báo sớm tái nghèo", "en": "Relapse early warning"},
    "deprivation": {"vi": "Thiếu hụt đa chiều", "en": "Multidimensional deprivations"},
    "methods": {"vi": "Ghi chú phương pháp", "en": "Notes on methods"},
}

TEXTS: dict[str, dict[str, str]] = {
    "intro": {
        "vi": ("Báo cáo tóm tắt biến động hộ nghèo, hộ cận nghèo của **{region}** tại kỳ **{period}**: "
               "số hộ và tỷ lệ, số hộ thoát nghèo, tái nghèo, phát sinh mới, so sánh với kỳ trước và "
               "cùng kỳ năm trước, tiến độ so với mục tiêu và dự báo."),
        "en": ("This report summarises the dynamics of poor and near-poor households in **{region}** "
               "at **{period}**: counts and rates, exits, relapses, newly poor households, changes "
               "against the previous period and the same period last year, progress against targets "
               "and a projection."),
    },
    "headline": {
        "vi": ("Tỷ lệ kèm khoảng tin cậy 95% và số hộ (tử số, mẫu số). Hộ ra khỏi danh sách (chết, "
               "chuyển đi, nhập/tách hộ) không được tính là thoát nghèo."),
        "en": ("Rates with their 95% interval and the counts they rest on. Households removed from "
               "the register (death, migration, merger/split) are not counted as exits."),
    },
    "targets": {
        "vi": ("Thực hiện = mức giảm tỷ lệ (điểm %) so với cùng kỳ năm trước; tỷ lệ tái nghèo tính "
               "trên nhóm hộ thoát nghèo đã được theo dõi đủ {within} kỳ."),
        "en": ("Actual = fall in the rate (points) since the same period last year; the relapse rate "
               "is that of the exits followed for {within} periods."),
    },
    "projection": {
        "vi": ("Dự báo theo chuỗi Markov với ma trận chuyển dịch hằng năm ước lượng từ dữ liệu (các hộ "
               "hiện có trong danh sách); khoảng tin cậy 95% bằng bootstrap tham số."),
        "en": ("Markov-chain projection with the annual transition matrix estimated from the register "
               "(households on the register now); 95% intervals by a parametric bootstrap."),
    },
    "flows": {
        "vi": "Mỗi hàng: các hộ ở một nhóm kỳ trước được phân bổ thế nào ở kỳ này (tỷ trọng và số hộ).",
        "en": "Each row: where the households of one status in the previous period are now (share and count).",
    },
    "survival": {
        "vi": "Tỷ lệ hộ đã thoát nghèo chưa quay lại nghèo, theo thời gian kể từ khi thoát (Kaplan–Meier, khoảng tin cậy 95%).",
        "en": "Share of exited households not poor again, by time since exit (Kaplan–Meier, 95% band).",
    },
    "provinces": {
        "vi": "Các tỉnh, thành phố xếp theo tỷ lệ, kèm khoảng tin cậy 95%; đường đứt nét là mức toàn quốc.",
        "en": "Provinces ranked by rate with 95% intervals; the dashed line is the national level.",
    },
    "programs": {
        "vi": ("Tác động của từng mô hình lên khả năng thoát nghèo bền vững (ATT, điểm %), đã hiệu chỉnh "
               "kiểm định bội (Holm)."),
        "en": ("Effect of each model on sustained exit (ATT, percentage points), adjusted for multiple "
               "testing (Holm)."),
    },
    "deprivation": {
        "vi": "Đóng góp của từng chiều thiếu hụt vào nghèo đa chiều tại kỳ báo cáo.",
        "en": "Contribution of each dimension to multidimensional poverty at the report period.",
    },
    "standard_changed": {
        "vi": ("Chuẩn nghèo ({standard}) thay đổi ở kỳ {periods}: số hộ thoát nghèo, tái nghèo và phát sinh "
               "ở các kỳ này gồm cả thay đổi do áp dụng chuẩn mới, không chỉ do thu nhập thay đổi."),
        "en": ("The poverty standard ({standard}) changed at {periods}: exits, relapses and newly poor "
               "households in those periods include moves caused by the new standard, not only by income."),
    },
    "relapse_rate_row": {
        "vi": "{name} (trong {within} kỳ sau khi thoát, nhóm thoát nghèo kỳ {cohort})",
        "en": "{name} (within {within} periods, exits of {cohort})",
    },
    "rates_need_totals": {
        "vi": ("**Danh sách hộ nghèo, hộ cận nghèo không cho biết tổng số hộ dân cư**, nên trang này "
               "chỉ trình bày số hộ và các luồng chuyển dịch. Để có tỷ lệ hộ nghèo, hộ cận nghèo, tiến độ "
               "so với mục tiêu và dự báo, hãy đặt bảng tổng số hộ dân cư theo xã của mỗi kỳ rà soát "
               "(cột Tỉnh, Xã, Năm, Tổng số hộ) cạnh danh sách trong data/raw/ rồi chạy lại "
               "`povdyn ingest`."),
        "en": ("**Poor and near-poor lists do not tell how many households live in the area**, so this "
               "page shows counts and flows only. Rates, progress against targets and the projection "
               "need the household totals per commune of each review (columns Tỉnh, Xã, Năm, Tổng số "
               "hộ) beside the lists in data/raw/; then run `povdyn ingest` again."),
    },
    "lists_methods": {
        "vi": ("Dữ liệu là danh sách hộ nghèo, hộ cận nghèo (không phải toàn bộ hộ dân cư): hộ có trong "
               "danh sách trước đó mà vắng mặt ở kỳ sau được coi là không nghèo, trừ khi có lý do ra khỏi "
               "danh sách. Tỷ lệ tính trên tổng số hộ dân cư của kỳ rà soát hằng năm, nên giữa hai kỳ rà "
               "soát (các quý không có tổng số hộ) và theo nhóm (thành thị/nông thôn, dân tộc thiểu số) "
               "không có tỷ lệ; bảng chuyển dịch chỉ có các hàng hộ nghèo và hộ cận nghèo kỳ trước. Danh sách không ghi nhận hộ ra khỏi địa bàn khi đang không nghèo: hộ đó "
               "vẫn được tính là không nghèo đến kỳ cuối, nên số hộ được theo dõi đủ sau khi thoát nghèo "
               "và đường thoát nghèo bền vững có thể lệch rất ít so với sổ đầy đủ. Danh sách không có các "
               "chỉ số thiếu hụt: mục thiếu hụt đa chiều không tính được và mô hình giảm nghèo được đánh "
               "giá không điều chỉnh theo số thiếu hụt."),
        "en": ("The data are poor and near-poor lists (not every household): a household listed before "
               "and absent later counts as not poor unless a removal reason says it left. Rates use the "
               "household totals of the annual review, so there are no rates between reviews (quarters "
               "without totals) or by group (urban/rural, ethnic minority), and the flows table has the "
               "rows of poor and near-poor households only. Lists do not record a "
               "household leaving while not poor: it counts as not poor to the last period, so the "
               "exits followed up and the sustained-exit curve can differ very slightly from a full "
               "register. Lists carry no deprivation indicators: the multidimensional section cannot "
               "be computed and the models are assessed without adjusting for deprivations."),
    },
    "deprivation_needs_indicators": {
        "vi": "Dữ liệu không có các chỉ số thiếu hụt (dep_*), nên mục này không tính được.",
        "en": "The data carry no deprivation indicators (dep_*), so this section cannot be computed.",
    },
    "not_national": {
        "vi": "Mục này chỉ có trên trang toàn quốc.",
        "en": "This section is shown on the national page only.",
    },
    "methods": {
        "vi": ("Định nghĩa theo tài liệu phương pháp của dự án: thoát nghèo = nghèo kỳ trước, không nghèo kỳ "
               "này (cả hai kỳ đều có quan sát); tái nghèo = quay lại nghèo sau khi đã từng nghèo; hộ nghèo "
               "phát sinh = nghèo lần đầu. Khoảng tin cậy Wilson 95%. Mã hộ là mã giả danh và không bao giờ "
               "được in ra. {suppression}"),
        "en": ("Definitions follow the project's methods: an exit = poor in the previous period and not "
               "poor now (observed in both); a relapse = poor again after having been poor before; newly "
               "poor = poor for the first time. Wilson 95% intervals. Household keys are pseudonymous and "
               "never printed. {suppression}"),
    },
}


def section(key: str, lang: str = "vi") -> str:
    """Heading of a report section."""
    return unicodedata.normalize("NFC", SECTIONS[key][lang])


def text(key: str, lang: str = "vi", **fields) -> str:
    """A short explanatory text of the report, with {fields} filled in."""
    return unicodedata.normalize("NFC", TEXTS[key][lang].format(**fields))

LABELS.update({
    "title_projection": {"vi": "Dự báo tỷ lệ hộ nghèo, cận nghèo (chuỗi Markov)",
                         "en": "Projected poor and near-poor rates (Markov chain)"},
    "title_survival": {"vi": "Thoát nghèo bền vững: tỷ lệ hộ chưa tái nghèo",
                       "en": "Sustained exit: share of exited households not poor again"},
    "title_flows": {"vi": "Chuyển dịch giữa các nhóm so với kỳ trước",
                    "en": "Flows between statuses since the previous period"},
    "no_province_large_enough": {"vi": "Không tỉnh nào đủ {m} hộ để hiển thị.",
                                 "en": "No province has the {m} households needed to show it."},
    "not_shown_small": {"vi": "Không hiển thị (dưới {m} hộ): ", "en": "Not shown (fewer than {m} households): "},
    "total": {"vi": "Tổng", "en": "Total"},
    "place": {"vi": "Địa phương", "en": "Region"},
    "md_poor": {"vi": "Hộ nghèo đa chiều", "en": "Multidimensionally poor"},
    "three_or_more": {"vi": "Thiếu hụt từ 3 chỉ số trở lên", "en": "Three or more deprivations"},
    "income_near_line": {"vi": "Thu nhập không quá 1,2 lần chuẩn nghèo",
                         "en": "Income at most 1.2 × the poverty line"},
    "fragile_exits": {"vi": "Thoát nghèo chưa bền vững", "en": "Fragile exits"},
    "af_H": {"vi": "Tỷ lệ nghèo đa chiều H (%)", "en": "Headcount ratio H (%)"},
    "af_A": {"vi": "Mức độ thiếu hụt bình quân A (%)", "en": "Average intensity A (%)"},
    "af_M0": {"vi": "Chỉ số nghèo đa chiều M0 (%)", "en": "Adjusted headcount M0 (%)"},
    "af_H_se": {"vi": "Sai số chuẩn của H (điểm %)", "en": "Standard error of H (points)"},
    "af_M0_se": {"vi": "Sai số chuẩn của M0 (điểm %)", "en": "Standard error of M0 (points)"},
    "at_risk_near_poor": {"vi": "Hộ cận nghèo kỳ trước (mẫu số)",
                          "en": "At risk (near-poor in previous period)"},
    "falls": {"vi": "Cận nghèo thành nghèo", "en": "Near-poor to poor"},
    "ethnic_minority_unknown": {"vi": "Chưa ghi nhận DTTS", "en": "Ethnic minority not recorded"},
    "area_unknown": {"vi": "Chưa ghi nhận khu vực", "en": "Area not recorded"},
    "quarterly_flows_note": {
        "vi": ("Các luồng (thoát nghèo, tái nghèo, phát sinh, ra khỏi danh sách) theo quý chỉ so với cùng "
               "quý năm trước: quý có kỳ rà soát hằng năm (quý IV) không so sánh được với một quý chỉ có "
               "cập nhật đột xuất, nên cột \"So với kỳ trước\" để trống cho các luồng."),
        "en": ("Quarterly flows (exits, relapses, newly poor, removals) are compared with the same quarter "
               "a year earlier only: the quarter of the annual review (Q4) is not comparable with a quarter "
               "of ad-hoc updates, so \"vs previous period\" is left blank for flows."),
    },
    "needs_totals": {"vi": "Cần tổng số hộ dân cư", "en": "Needs household totals"},
    "no_target": {"vi": "Chưa đặt mục tiêu", "en": "No target set"},
    "assessment": {"vi": "Đánh giá", "en": "Assessment"},
    "at_risk": {"vi": "Hộ nghèo kỳ trước (mẫu số)", "en": "At risk (poor in previous period)"},
    "followed": {"vi": "Hộ được theo dõi đủ", "en": "Followed"},
    "relapsed": {"vi": "Hộ tái nghèo", "en": "Relapsed"},
})

#: Display names of the indicators (Decree 07/2021 and Decree 351/2025 wording).
INDICATOR_LABELS = {
    "dep_employment": {"vi": "Việc làm", "en": "Employment"},
    "dep_dependants": {"vi": "Người phụ thuộc trong hộ", "en": "Dependants"},
    "dep_nutrition": {"vi": "Dinh dưỡng", "en": "Nutrition"},
    "dep_health_insurance": {"vi": "Bảo hiểm y tế", "en": "Health insurance"},
    "dep_adult_education": {"vi": "Trình độ giáo dục của người lớn", "en": "Adult education"},
    "dep_child_school": {"vi": "Tình trạng đi học của trẻ em", "en": "Child school attendance"},
    "dep_housing_quality": {"vi": "Chất lượng nhà ở", "en": "Housing quality"},
    "dep_housing_area": {"vi": "Diện tích nhà ở bình quân đầu người", "en": "Housing area per person"},
    "dep_water": {"vi": "Nguồn nước sinh hoạt", "en": "Drinking water"},
    "dep_latrine": {"vi": "Nhà tiêu hợp vệ sinh", "en": "Hygienic latrine"},
    "dep_telecom": {"vi": "Sử dụng dịch vụ viễn thông", "en": "Telecommunication use"},
    "dep_info_devices": {"vi": "Phương tiện tiếp cận thông tin", "en": "Information devices"},
    "dep_digital_services": {"vi": "Sử dụng dịch vụ số, Internet", "en": "Digital services / internet"},
    "dep_waste": {"vi": "Thu gom, xử lý rác thải sinh hoạt", "en": "Household waste handling"},
}
DIMENSION_LABELS = {
    "employment": {"vi": "Việc làm", "en": "Employment"},
    "health": {"vi": "Y tế", "en": "Health"},
    "education": {"vi": "Giáo dục", "en": "Education"},
    "housing": {"vi": "Nhà ở", "en": "Housing"},
    "water_sanitation": {"vi": "Nước sinh hoạt và vệ sinh", "en": "Water and sanitation"},
    "information": {"vi": "Tiếp cận thông tin", "en": "Information"},
}
GROUP_LABELS = {
    "exited": {"vi": "Hộ thoát nghèo", "en": "Exited poverty"},
    "relapsed": {"vi": "Hộ tái nghèo", "en": "Relapsed into poverty"},
    "stayed_poor": {"vi": "Hộ vẫn nghèo", "en": "Still poor"},
    "new_poor": {"vi": "Hộ nghèo phát sinh", "en": "Newly poor"},
}
