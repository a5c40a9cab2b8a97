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
               "dựa trên ô bị ẩn hiện \"—\". Quy tắc áp dụng cho mọi quan hệ tổng – thành phần trên "
               "trang: số kỳ này, số kỳ trước và cột \"so với cùng kỳ năm trước\" (kỳ này − kỳ trước = "
               "mức thay đổi, nên số kỳ trước cũng là một ô được bảo vệ), phần còn lại mà một tổng để lộ "
               "(số hộ chưa thoát nghèo = số hộ nghèo kỳ trước − số thoát nghèo), và bảng mục tiêu (giá "
               "trị kỳ gốc và kế hoạch để lộ số kỳ gốc; số của một nhóm hộ để lộ phần còn lại của địa "
               "phương)."),
        "en": ("Cells with fewer than {min_cell} households are hidden (\"<{min_cell}\"). Where a "
               "table also prints a total, a further cell is hidden (\"x\") so that no small cell can "
               "be worked out by subtraction, from a printed share or from the labels' ranges "
               "(secondary suppression, methods.md \"Disclosure control\"). Rates built on a hidden "
               "cell show \"—\". The rule covers every total and its parts on the page: this period's "
               "counts, earlier periods' counts and the \"vs same period last year\" column (this "
               "period − last year = change, so last year's count is a protected cell too), the rest a "
               "total leaves unprinted (households still poor = poor last period − exits), and the "
               "targets table (a base value and its plan give the base count back; a group's count "
               "gives back the rest of its unit)."),
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
    # the same paragraph when no exit cohort with complete follow-up is left for an
    # out-of-time test (RiskModel.test_period is None): no AUC is quoted
    "paragraph_unvalidated": {
        "vi": ("Trong {exits} hộ thoát nghèo ở kỳ rà soát {when}, {high} hộ có nguy cơ cao (≥ {hi}) nghèo "
               "lại trong {within} kỳ rà soát tới. Mô hình ({method}) chưa được kiểm định trên nhóm thoát "
               "nghèo mà mô hình chưa thấy (dữ liệu chưa có nhóm nào đủ thời gian theo dõi), nên chưa đo được "
               "điểm số đáng tin đến đâu. {limits}"),
        "en": ("Of {exits} households that exited poverty at the {when} review, {high} are at high risk "
               "(>= {hi}) of being poor again within {within} reviews. The model ({method}) has not been "
               "validated out of time (no exit cohort with complete follow-up is left beyond those it "
               "learned from), so how far the score can be trusted is not measured. {limits}"),
    },
    "communes_not_listed": {
        "vi": "{n} xã, phường có dưới {smallest} hộ thoát nghèo không được liệt kê (số quá nhỏ để công bố).",
        "en": "{n} communes with fewer than {smallest} exiting households are not listed (too few to publish).",
    },
    # which register kind the score learned from (RiskModel.register), and how weak it is
    "register_full": {
        "vi": "Điểm nguy cơ học từ sổ hộ đầy đủ (mọi hộ ở mọi kỳ rà soát, có thu nhập cả khi hộ không nghèo).",
        "en": "The score learned from a full register (every household at every review, with its income also when not poor).",
    },
    "register_lists": {
        "vi": ("Điểm nguy cơ học từ danh sách hộ nghèo, cận nghèo: hộ thoát nghèo ra khỏi danh sách thì không có "
               "thu nhập ở kỳ thoát, nên điểm này yếu (AUC {auc}; 0,5 là đoán ngẫu nhiên). Chỉ dùng làm gợi ý "
               "để thăm hỏi, không dùng để xếp hạng hộ."),
        "en": ("The score learned from poor and near-poor lists: a household that leaves the lists has no income "
               "recorded at its exit review, so this score is weak (AUC {auc}; 0.5 is a coin toss). Use it only "
               "as a hint for visits, not to rank households."),
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
        "vi": ("Thực hiện = giá trị của chỉ tiêu ở kỳ báo cáo; kỳ gốc mặc định là cùng kỳ năm trước. "
               "Tỷ lệ và số hộ tái nghèo tính trên nhóm hộ thoát nghèo đã được theo dõi đủ {within} kỳ."),
        "en": ("Actual = the indicator at the report period; the base is the same period last year "
               "unless the target names one. Relapse rate and count are those of the exits followed "
               "for {within} periods."),
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

# each office's own targets (povdyn.targets.targets_table)
LABELS.update({
    "target_poor_rate": {"vi": "Tỷ lệ hộ nghèo (%)", "en": "Poor rate (%)"},
    "target_near_poor_rate": {"vi": "Tỷ lệ hộ cận nghèo (%)", "en": "Near-poor rate (%)"},
    "target_relapse_rate": {"vi": "Tỷ lệ tái nghèo (% hộ thoát nghèo)", "en": "Relapse rate (% of exits)"},
    "target_poor_households": {"vi": "Số hộ nghèo", "en": "Poor households"},
    "target_near_poor_households": {"vi": "Số hộ cận nghèo", "en": "Near-poor households"},
    "target_relapses": {"vi": "Số hộ tái nghèo", "en": "Relapsed households"},
    "households_unit": {"vi": "hộ", "en": "households"},
    "points_per_year": {"vi": "điểm %/năm", "en": "points/year"},
    "percent_per_year": {"vi": "%/năm", "en": "%/year"},
    "since": {"vi": "từ", "en": "from"},
    "base_value": {"vi": "Kỳ gốc", "en": "Base"},
    "planned": {"vi": "Kế hoạch kỳ này", "en": "Planned now"},
    "target_source": {"vi": "Mục tiêu của", "en": "Target set by"},
    "origin_national_default": {"vi": "Chương trình MTQG (mặc định toàn quốc)",
                                "en": "National Target Program (national default)"},
    "origin_national": {"vi": "Toàn quốc:", "en": "National:"},
    "origin_province": {"vi": "Tỉnh/thành phố", "en": "Province"},
    "origin_commune": {"vi": "Xã/phường", "en": "Commune"},
    "row": {"vi": "dòng", "en": "row"},
    # entries by where the household was the period before (suppressed_counts)
    "from_near_poor": {"vi": "Từ hộ cận nghèo", "en": "From near-poor"},
    "from_non_poor": {"vi": "Từ hộ không nghèo", "en": "From not poor"},
    "from_unobserved": {"vi": "Chưa có trong danh sách kỳ trước", "en": "Not on the previous register"},
})

TEXTS.update({
    "targets_local": {
        "vi": ("Mỗi chỉ tiêu lấy mục tiêu của chính địa phương nếu có (xã/phường, rồi tỉnh/thành phố), "
               "nếu không thì của cấp trên; cột cuối ghi mục tiêu lấy từ đâu. Kế hoạch kỳ này = giá trị "
               "kỳ gốc cộng mức thay đổi kế hoạch theo số năm đã qua (hoặc mức trần); đạt khi thực hiện "
               "không vượt kế hoạch. Không đánh giá khi chỉ tiêu dựa trên dưới {min_cell} hộ."),
        "en": ("Each indicator takes the office's own target where it set one (commune, then province), "
               "else the level above's; the last column says where it comes from. Planned now = the base "
               "value plus the planned change for the years since (or the ceiling); on track when the "
               "actual does not exceed the plan. No verdict rests on fewer than {min_cell} households."),
    },
})

# commune pages and the commune table of a province page (povdyn.communes)
LABELS.update({
    "commune_2025": {"vi": "Xã, phường", "en": "Commune"},
    "communes_link": {"vi": "Các xã, phường", "en": "Communes"},
    "communes_index_title": {"vi": "Trang xã, phường", "en": "Commune pages"},
    "province_page": {"vi": "Trang của tỉnh", "en": "Province page"},
    "commune_report_title": {"vi": "Báo cáo biến động hộ nghèo cấp xã", "en": "Commune poverty dynamics report"},
    "commune_hidden": {
        "vi": ("Trang này không công bố {names}: các số này dựa trên dưới {m} hộ, hoặc được ẩn để không "
               "ai suy ra được một số dưới {m} hộ bằng phép trừ từ số liệu của tỉnh và của các xã khác."),
        "en": ("This page does not publish {names}: these figures rest on fewer than {m} households, or are "
               "hidden so that no count below {m} can be worked out by subtraction from the province's and "
               "the other communes' figures."),
    },
    "commune_nothing_shown": {
        "vi": "Xã, phường này có dưới {m} hộ trong một số nhóm nên không có chỉ tiêu nào công bố được ở kỳ này.",
        "en": "This commune is too small for any headline figure to be published at this period.",
    },
    "commune_table_note": {
        "vi": ("{n} xã, phường của tỉnh, xếp theo tỷ lệ hộ nghèo (cao trước), rồi tỷ lệ thoát nghèo và tái "
               "nghèo; khoảng tin cậy Wilson 95%. Số dưới {m} hộ hiện \"<{m}\", số được ẩn để bảo vệ số nhỏ "
               "hiện \"x\"; các xã không công bố được tỷ lệ đứng cuối, theo tên. Tên xã dẫn tới trang của xã."),
        "en": ("The province's {n} communes, ranked by poor rate (highest first), then exit and relapse rates; "
               "Wilson 95% intervals. Counts below {m} show \"<{m}\", counts hidden to protect a small one \"x\"; "
               "communes whose rates cannot be shown come last, by name. Each name links to the commune's page."),
    },
    "commune_trend_hidden": {
        "vi": "Xu hướng không vẽ được: mỗi kỳ có dưới {m} hộ nghèo, cận nghèo hoặc thoát nghèo.",
        "en": "No trend can be drawn: every period has fewer than {m} poor, near-poor or exiting households.",
    },
    "commune_flows_hidden": {
        "vi": "Chuyển dịch không công bố được: các luồng của xã đều dưới {m} hộ hoặc phải ẩn để bảo vệ số nhỏ.",
        "en": "Flows cannot be published: the commune's flows are below {m} households or hidden to protect one.",
    },
    "commune_rates_need_totals": {
        "vi": ("Sổ hộ nghèo, cận nghèo dạng danh sách không cho biết tổng số hộ dân cư của xã theo đơn vị sau "
               "sắp xếp, nên trang này công bố số hộ nhưng chưa tính được tỷ lệ của xã."),
        "en": ("A list register does not give the commune's total number of households in its 2025 boundaries, "
               "so this page publishes counts but cannot compute the commune's rates."),
    },
    "commune_total_not_covered": {
        "vi": ("Bảng tổng số hộ dân cư không đủ để tính tổng số hộ của xã theo đơn vị sau sắp xếp ở kỳ này "
               "(thiếu dòng của một xã cũ, tên xã cũ không khớp danh mục, hoặc xã cũ bị chia cho nhiều xã mới "
               "mà không có số hộ của từng phần), nên trang này công bố số hộ nhưng chưa tính được tỷ lệ "
               "của xã."),
        "en": ("The household totals do not give this commune's total in its 2025 boundaries at this review "
               "(an old commune's row is missing, an old name is not in the official list, or an old commune "
               "was split between new ones and the pieces' household counts are not known), so this page "
               "publishes counts but cannot compute the commune's rates."),
    },
    "commune_methods": {
        "vi": ("Xã, phường theo đơn vị hành chính sau sắp xếp (từ 1/7/2025). Số liệu trước tháng 7/2025 được "
               "quy về xã mới theo bảng chuyển đổi chính thức (gói vietnamadminunits); hộ có mặt sau cải cách "
               "giữ xã mới của chính hộ, nên chuỗi số liệu không bị đứt. Bảo mật: số dưới {m} hộ bị ẩn, và "
               "thêm các số khác của xã hoặc của các xã cùng tỉnh khi cần, để không số nhỏ nào suy ra được bằng "
               "phép trừ giữa trang xã, bảng xã và trang tỉnh (ẩn bổ sung, như tau-argus / sdcMicro)."),
        "en": ("Communes are the units after the reform (from 1 July 2025). Rows before July 2025 are placed in "
               "their new commune through the official crosswalk (vietnamadminunits); a household seen after "
               "the reform keeps its own new commune, so the series has no break. Confidentiality: counts below "
               "{m} are hidden, and further counts of the commune or of other communes of the province where "
               "needed, so that no small count can be worked out by subtraction between the commune pages, the "
               "commune table and the province page (complementary suppression, as tau-argus / sdcMicro do)."),
    },
})
SECTIONS.update({
    "communes": {"vi": "Các xã, phường", "en": "Communes"},
})

# ---------------------------------------------------------------- programmes (povdyn.programs)
# the programme table's columns (programs.REPORT_COLUMNS is this dictionary)
PROGRAMME_COLUMNS = {
    "name": {"vi": "Mô hình", "en": "Model"},
    "estimate": {"vi": "Tác động (điểm %)", "en": "Effect (points)"},
    "ci": {"vi": "KTC 95%", "en": "95% CI"},
    "p_adjusted": {"vi": "p hiệu chỉnh (Holm)", "en": "Holm-adjusted p"},
    "naive": {"vi": "So sánh thô (điểm %)", "en": "Naive difference (points)"},
    "n_treated": {"vi": "Hộ được hỗ trợ", "en": "Supported households"},
    "n_control": {"vi": "Hộ so sánh", "en": "Comparison households"},
    "verdict": {"vi": "Đánh giá", "en": "Verdict"},
    "cost": {"vi": "Chi phí / 1 hộ thoát nghèo bền vững thêm (triệu đồng)",
             "en": "Cost per additional sustained exit (million VND)"},
    "reason": {"vi": "Lý do", "en": "Reason"},
    "p_romano_wolf": {"vi": "p hiệu chỉnh (Romano–Wolf)", "en": "Romano–Wolf p"},
    "n_trimmed_treated": {"vi": "Hộ được hỗ trợ bị loại do không có hộ so sánh tương đồng",
                          "en": "Supported households left out (no comparable households)"},
    "e_value": {"vi": "Độ vững trước yếu tố chưa quan sát (E-value)",
                "en": "Robustness to unmeasured factors (E-value)"},
}
TEXTS.update({
    "programs_inference": {
        "vi": ("Sai số chuẩn tính theo cụm xã, vì xã là nơi quyết định áp dụng mô hình. Hộ được hỗ trợ "
               "không có hộ so sánh tương đồng bị loại khỏi ước lượng và được đếm trong bảng; tác động là "
               "tác động trên các hộ được hỗ trợ còn lại. Giá trị p đã hiệu chỉnh cho việc đánh giá nhiều "
               "mô hình cùng lúc (Holm; Romano–Wolf bên cạnh). E-value cho biết một yếu tố chưa quan sát "
               "phải mạnh đến mức nào mới xoá được kết luận."),
        "en": ("Standard errors are clustered by commune, because communes decide to adopt a model. "
               "Supported households without comparable unsupported ones are left out of the estimate "
               "and counted in the table; the effect is that on the remaining supported households. "
               "p-values are adjusted for evaluating several models at once (Holm; Romano–Wolf beside "
               "it). The E-value says how strong an unmeasured factor would have to be to overturn the "
               "verdict."),
    },
    # a p-value in free text ({op} "<" or "=", {num} already in the reader's notation)
    "p_value": {"vi": "p {op} {num}", "en": "p {op} {num}"},
    "p_value_adjusted": {"vi": "p ({adjustment}) {op} {num}", "en": "{adjustment} p {op} {num}"},
    "p_below": {"vi": "<0,001", "en": "<0.001"},
    # E-value in words ({e}, {e_ci} already formatted; {direction}: English only)
    "e_value_head": {
        "vi": ("Để xoá bỏ tác động này, một yếu tố chưa quan sát được phải làm khả năng được hỗ trợ "
               "và khả năng thoát nghèo bền vững cùng tăng gấp {e} lần"),
        "en": ("To {direction} this effect, an unmeasured factor would have to multiply both the chance "
               "of support and the chance of a sustained exit by {e}"),
    },
    "e_value_already_not_significant": {
        "vi": "; tác động hiện đã chưa khác 0 về mặt thống kê",
        "en": "; the effect is already not statistically different from zero",
    },
    "e_value_to_not_significant": {
        "vi": " (gấp {e_ci} lần để tác động không còn ý nghĩa thống kê)",
        "en": " ({e_ci} to make it no longer significant)",
    },
    "e_value_direction_positive": {"vi": "", "en": "explain away"},
    "e_value_direction_negative": {"vi": "", "en": "explain away (the negative)"},
    # the joint pre-trend test of a commune event study
    "pretrend_cohort_adoption": {
        "vi": "nhóm xã theo năm xã áp dụng mô hình",
        "en": "communes grouped by the year they adopted the model",
    },
    "pretrend_cohort_first_support": {
        "vi": "nhóm xã theo năm hộ đầu tiên được hỗ trợ (phụ thuộc vào tình trạng nghèo, dễ bác bỏ sai)",
        "en": ("communes grouped by their first supported household's year (depends on poverty; "
               "prone to false rejections)"),
    },
    "pretrend_untestable": {
        "vi": "Kiểm định xu hướng trước: không đủ kỳ trước khi áp dụng để kiểm định ({cohort}).",
        "en": "Pre-trend test: not enough periods before adoption to test ({cohort}).",
    },
    "pretrend_rejected": {
        "vi": "bác bỏ giả định xu hướng song song — đọc tác động thận trọng",
        "en": "parallel pre-trends rejected — read the effects with caution",
    },
    "pretrend_not_rejected": {
        "vi": "không bác bỏ giả định xu hướng song song",
        "en": "parallel pre-trends not rejected",
    },
    "pretrend_cells": {"vi": "chung, {dof} ô trước khi áp dụng", "en": "{dof} placebo cells"},
    "pretrend_cell": {"vi": "chung, {dof} ô trước khi áp dụng", "en": "{dof} placebo cell"},
    "pretrend_result": {
        "vi": "Kiểm định xu hướng trước ({cells}): {p}, {verdict} ({cohort}).",
        "en": "Joint pre-trend test ({cells}): {p}, {verdict} ({cohort}).",
    },
    # a model's verdict and its reason ({pp}: "+3,1 điểm % (KTC 95% ...), p (Holm) = ...")
    "verdict_effect": {
        "vi": "{estimate} điểm % (KTC 95% {low} đến {high}), {p}",
        "en": "{estimate} points (95% CI {low} to {high}), {p}",
    },
    "verdict_insufficient": {
        "vi": "ít hơn {min_treated} hộ nghèo được hỗ trợ hoặc hộ so sánh ({n_treated} hộ được hỗ trợ)",
        "en": "fewer than {min_treated} supported or comparable poor households ({n_treated} supported)",
    },
    "verdict_fading": {
        "vi": ("các đợt trước {early} điểm %, đợt {cohort} {recent} điểm %; mức giảm có ý nghĩa, {p}; "
               "chung {pp}"),
        "en": "earlier cohorts {early} points, cohort {cohort} {recent} points; drop significant, {p}; overall {pp}",
    },
    "verdict_effective": {"vi": "thoát nghèo bền vững {pp}", "en": "sustained exit {pp}"},
    "verdict_lower": {
        "vi": "tỷ lệ thoát nghèo bền vững của hộ được hỗ trợ thấp hơn: {pp}",
        "en": "sustained exit lower among supported households: {pp}",
    },
    "verdict_not_distinguishable": {
        "vi": "tác động chưa khác 0 sau hiệu chỉnh Holm: {pp}",
        "en": "effect not distinguishable from zero after Holm adjustment: {pp}",
    },
})
