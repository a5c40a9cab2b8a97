"""Writing the synthetic register to disk (povdyn.synth.write_demo).

Households are generated and written chunk by chunk (``CHUNK`` households at a time), so
memory stays bounded whatever the size: csv files are appended, parquet gets one part
file per chunk. Rows are sorted by household id and period inside each chunk and chunks
follow id order, floats are integers of VND written without decimals: the same
arguments give the same bytes.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..geo import is_post_merger
from .simulate import (QUARTERS, DemoSummary, YEARS, _standard_period, _add, _calibration_counts, _calibration_table,
               _check_args, _chunks, _geography, _table, _identifiers, _rows, _simulate_chunk,
               _support_frame, _truth, _truth_counts, adoption_frame, risk_truth_frame)

# list style: Vietnamese headers as offices write them (mapped back by povdyn.schema)
LIST_HEADERS = {
    "household_id": "Mã hộ",
    "period": "Kỳ",
    "status": "Phân loại hộ",
    "province": "Tỉnh",
    "district": "Huyện",
    "commune": "Xã",
    "area": "Khu vực",
    "household_size": "Số nhân khẩu",
    "income_pc_month": "Thu nhập bình quân",
    "ethnic_minority": "Dân tộc thiểu số",
    "meritorious": "Người có công",
    "head_name": "Họ tên chủ hộ",
    "id_card": "Số CCCD",
    "phone": "Số điện thoại",
    "address": "Địa chỉ",
    "removal_reason": "Lý do ra khỏi danh sách",
}
SUPPORT_HEADERS = {
    "household_id": "Mã hộ",
    "program": "Chương trình",
    "start_period": "Kỳ bắt đầu",
    "end_period": "Kỳ kết thúc",
    "amount_vnd": "Số tiền hỗ trợ",
}
ADOPTION_HEADERS = {"province": "Tỉnh", "district": "Huyện", "commune": "Xã", "program": "Chương trình",
                    "adoption_year": "Năm áp dụng"}
STATUS_VI = {"poor": "Hộ nghèo", "near_poor": "Hộ cận nghèo"}
AREA_VI = {"urban": "Thành thị", "rural": "Nông thôn"}
REASON_VI = {"death": "Chết", "migration": "Chuyển đi", "merger": "Nhập hộ", "split": "Tách hộ"}


def _vn_number(x: pd.Series) -> pd.Series:
    """1500000 -> "1.500.000" (Vietnamese thousands separator)."""
    out = pd.Series([f"{int(v):,}".replace(",", ".") if pd.notna(v) else "" for v in x], index=x.index, dtype=object)
    return out


def to_lists(panel: pd.DataFrame, frequency: str) -> pd.DataFrame:
    """The list-style view of canonical rows: poor / near-poor rows and removal rows, with
    Vietnamese headers and values."""
    listed = panel.status.isin(["poor", "near_poor"])
    # a removal is written only for a household on the list before (rows are sorted by
    # household and period, and a removal row is a household's last row)
    same_hh = panel.household_id.eq(panel.household_id.shift())
    was_listed = listed.shift(fill_value=False) & same_hh
    keep = listed | (panel.removal_reason.notna() & was_listed)
    df = panel.loc[keep, list(LIST_HEADERS)].copy()
    df["status"] = df.status.map(STATUS_VI).fillna("")
    df["area"] = df.area.map(AREA_VI)
    df["income_pc_month"] = _vn_number(df.income_pc_month)
    for col in ("ethnic_minority", "meritorious"):
        df[col] = np.where(df[col], "Có", "Không")
    df["removal_reason"] = df.removal_reason.map(REASON_VI).fillna("")
    headers = dict(LIST_HEADERS)
    if frequency == "year":
        headers["period"] = "Năm"
    return df.rename(columns=headers)


def _support_vi(support: pd.DataFrame) -> pd.DataFrame:
    df = support.copy()
    df["amount_vnd"] = _vn_number(df.amount_vnd)
    return df.rename(columns=SUPPORT_HEADERS)


def _integer_vnd(table, column):
    """VND amounts are whole numbers: write them as integers ("1500000", not "1.5e6")."""
    i = table.schema.get_field_index(column)
    return table.set_column(i, column, table[column].cast(pa.int64()))


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def _csv_bytes(df: pd.DataFrame, header: bool) -> bytes:
    return df.to_csv(index=False, header=header, float_format="%.0f", lineterminator="\n").encode("utf-8")


def write_demo(out_dir, households: int = 60_000, seed: int = 2025, style: str = "full",
               fmt: str = "csv", frequency: str = "quarter", progress: bool = True,
               all_communes: bool = False) -> DemoSummary:
    """Write a synthetic register to `out_dir` with ``truth.json`` beside it.

    style="full": every household in every snapshot, canonical English headers;
    fmt="csv" -> register.csv (+ support.csv); fmt="parquet" -> register/ (a parquet
    dataset, one part per chunk of 1M households: bounded memory at national scale) and
    support.parquet; fmt="xlsx" -> one workbook per province.
    style="lists": the list-based register offices keep — only poor / near-poor rows per
    review plus removal rows with a reason, Vietnamese headers and values ("Hộ nghèo",
    "1.500.000"); csv (one file) or xlsx: the official list template, one workbook per
    commune per year under danh_sach/<province>/ (title block with merged cells, STT
    column, no period column — the year is in the title, the quarter in the sheet name —
    and a signature footer). Beside the lists goes the household totals table
    (tong_so_ho.csv / .xlsx: Tỉnh, Xã, Năm, Tổng số hộ): the households with a status at
    each annual review in the full panel of the same seed, per commune.
    Beside the programme roll goes the commune adoption register (adoption_frame: the
    year each commune adopted each programme, blank = never; communes by their
    pre-reform names and districts, as households are first recorded): adoption.csv
    (province, province_2025, district, commune, program, adoption_year; adoption.parquet
    with fmt="parquet"), or ap_dung_mo_hinh.csv with Vietnamese headers (Tỉnh, Huyện, Xã,
    Chương trình, Năm áp dụng) in the list style.
    Files an earlier write_demo left in `out_dir` (register*, support*, danh_sach*,
    ho_tro.csv, tong_so_ho*, adoption*, ap_dung_mo_hinh.csv, truth.json) are removed first, so a folder never holds two
    demos. Deterministic: same arguments, same bytes.
    all_communes: every old commune, so every one of the 3,321 2025 communes has
    households at every period (``simulate._geography``; at least ~111,000 households),
    for the all-communes report run."""
    _check_args(households, frequency)
    if style not in ("full", "lists"):
        raise ValueError(f"style must be 'full' or 'lists', not {style!r}")
    if fmt not in ("csv", "xlsx", "parquet"):
        raise ValueError(f"fmt must be 'csv', 'xlsx' or 'parquet', not {fmt!r}")
    if style == "lists" and fmt == "parquet":
        raise ValueError("the list style is what offices exchange: csv or xlsx, not parquet")
    t_start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _remove_previous_outputs(out)
    geo = _geography(households, seed, all_communes)
    summary = DemoSummary(out_dir=out, households=households, style=style, fmt=fmt, frequency=frequency)
    tcounts, ccounts = {}, {}
    supports, risks = [], []
    chunks = list(_chunks(households))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=households, unit="hh", desc="synthetic register", leave=False)
    names = {"full": "register", "lists": "danh_sach_ho_ngheo_can_ngheo"}
    csv_path = out / f"{names[style]}.csv"
    csv_tmp = csv_path.with_name(csv_path.name + ".tmp")
    per_province = {}  # xlsx: province -> list of frames (small registers only)
    totals = {}  # lists: (province as written, commune, year) -> households at the review
    if fmt == "parquet":
        reg_dir = out / "register"
        reg_dir.mkdir(exist_ok=True)
    fh = open(csv_tmp, "wb") if fmt == "csv" else None
    csv_writer = None
    try:
        for c, start, n in chunks:
            sim = _simulate_chunk(c, start + 1, n, households, seed, geo)
            rows = _rows(sim, geo, frequency)
            ident = _identifiers(sim, geo, seed, c)
            table = _table(sim, rows, ident, geo, frequency)
            supports.append(_support_frame(sim, frequency))
            _add(tcounts, _truth_counts(sim))
            _add(ccounts, _calibration_counts(sim, geo))
            risks.append(risk_truth_frame(sim, frequency))
            del sim, rows, ident
            if style == "lists":
                _add_totals(totals, table, frequency)
            if fmt == "parquet":  # Arrow all the way: no Python objects per row
                summary.rows += table.num_rows
                part = reg_dir / f"part-{c:05d}.parquet"
                _atomic(part, lambda p, t=table: pq.write_table(t, p, compression="zstd"))
                summary.files.append(part)
                del table
                if bar is not None:
                    bar.update(n)
                continue
            if fmt == "csv" and style == "full":  # Arrow's csv writer: ~10x pandas
                summary.rows += table.num_rows
                table = _integer_vnd(table, "income_pc_month")
                if csv_writer is None:
                    csv_writer = pacsv.CSVWriter(fh, table.schema)
                csv_writer.write_table(table)
                del table
                if bar is not None:
                    bar.update(n)
                continue
            frame = table.to_pandas()
            del table
            body = frame if style == "full" else to_lists(frame, frequency)
            summary.rows += len(body)
            if fmt == "csv":
                fh.write(_csv_bytes(body, header=(c == 0)))
            else:
                key = frame["province_2025"]
                for prov, g in body.groupby(key.loc[body.index], sort=True):
                    per_province.setdefault(prov, []).append(g)
            del frame, body
            if bar is not None:
                bar.update(n)
    finally:
        if csv_writer is not None:
            csv_writer.close()
        if fh is not None:
            fh.close()
        if bar is not None:
            bar.close()
    if fmt == "csv":
        os.replace(csv_tmp, csv_path)
        summary.files.append(csv_path)
    elif fmt == "xlsx" and style == "lists":
        # 2025 province -> every commune as recorded, listed households or not, with the
        # eras it is recorded in: its pre-reform name before 2025Q3, its 2025 name after
        communes = {}
        for c, (name, i) in enumerate(zip(geo.commune_name, geo.commune_province)):
            eras = communes.setdefault(geo.provinces.province_2025.iloc[i], {})
            eras.setdefault(name, set()).add("pre")
            first = geo.piece_start[c]
            for piece in geo.piece_name[first:first + geo.piece_count[c]]:
                eras.setdefault(piece, set()).add("post")
        summary.files.extend(_write_list_templates(out, per_province, communes, frequency))
    elif fmt == "xlsx":
        periods = list(YEARS) if frequency == "year" else [_standard_period(q) for q in QUARTERS]
        summary.files.extend(_write_xlsx(out, per_province, style, frequency, periods))
    if style == "lists":
        summary.files.append(_write_totals(out, totals, fmt))
    support = pd.concat(supports, ignore_index=True)
    summary.support_rows = len(support)
    sup_name = "support" if style == "full" else "ho_tro"
    if fmt == "parquet":
        path = out / f"{sup_name}.parquet"
        _atomic(path, lambda p: support.to_parquet(p, index=False, engine="pyarrow"))
    else:  # csv beside csv and beside workbooks (programme rolls are usually csv)
        path = out / f"{sup_name}.csv"
        body = support if style == "full" else _support_vi(support)
        _atomic(path, lambda p: p.write_bytes(_csv_bytes(body, header=True)))
    summary.files.append(path)
    summary.files.append(_write_adoption(out, adoption_frame(geo), style, fmt))
    truth = _truth(tcounts, households, seed, frequency, _calibration_table(ccounts))
    tpath = out / "truth.json"
    _atomic(tpath, lambda p: p.write_text(json.dumps(truth, ensure_ascii=False, indent=2, sort_keys=True) + "\n",
                                          encoding="utf-8"))
    summary.files.append(tpath)
    rpath = out / "truth_risk.parquet"  # the relapse / entry oracle (issue 12), never ingested
    risk = pa.Table.from_pandas(pd.concat(risks, ignore_index=True), preserve_index=False)
    _atomic(rpath, lambda p: pq.write_table(risk, p, compression="zstd"))
    summary.files.append(rpath)
    summary.seconds = time.perf_counter() - t_start
    return summary


# names write_demo owns: an earlier demo of another style or format in the same folder
# would otherwise be ingested twice
_OWN_OUTPUTS = ("register.csv", "support.csv", "support.parquet", "truth.json", "truth_risk.parquet", "ho_tro.csv",
                "danh_sach_ho_ngheo_can_ngheo.csv", "register_*.xlsx", "danh_sach_*.xlsx",
                "register/part-*.parquet", "tong_so_ho.csv", "tong_so_ho.xlsx",
                "danh_sach/*/*.xlsx", "adoption.csv", "adoption.parquet", "ap_dung_mo_hinh.csv")


def _remove_previous_outputs(out: Path) -> None:
    for pattern in _OWN_OUTPUTS:
        for f in out.glob(pattern):
            if f.is_file():
                f.unlink()
    lists = out / "danh_sach"
    if lists.is_dir():
        for folder in sorted(lists.iterdir(), reverse=True):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        if not any(lists.iterdir()):
            lists.rmdir()


# ------------------------------------------------ commune adoption register (issue 14 §3)
def _write_adoption(out: Path, adoption: pd.DataFrame, style: str, fmt: str) -> Path:
    """The commune adoption register as offices would hand it over. The province is the
    pre-reform one (the communes are pre-reform units); the full style adds
    province_2025 like its register."""
    if style == "lists":
        path = out / "ap_dung_mo_hinh.csv"
        body = adoption[list(ADOPTION_HEADERS)].rename(columns=ADOPTION_HEADERS)
    else:
        path = out / ("adoption.parquet" if fmt == "parquet" else "adoption.csv")
        body = adoption[["province", "province_2025", "district", "commune", "program", "adoption_year"]]
    if path.suffix == ".parquet":
        _atomic(path, lambda p: body.to_parquet(p, index=False, engine="pyarrow"))
    else:
        _atomic(path, lambda p: p.write_bytes(_csv_bytes(body, header=True)))
    return path


# ----------------------------------------------------------- household totals (issue 10 §2)
TOTALS_HEADERS = ["Tỉnh", "Xã", "Năm", "Tổng số hộ"]


def _add_totals(acc: dict, table, frequency: str) -> None:
    """Count, in one chunk of the full panel, the households with a status at each annual
    review (Q4 on a quarterly register) per (province as written, commune, year)."""
    import pyarrow.compute as pc

    period = table["period"]
    if frequency == "quarter":
        at_review = pc.ends_with(period, "Q4")
        year = pc.cast(pc.utf8_slice_codeunits(period, 0, 4), pa.int64())
    else:
        at_review = pc.is_valid(period)
        year = period
    keep = pc.and_(at_review, pc.is_valid(table["status"]))
    part = pa.table({"province": table["province"], "commune": table["commune"], "year": year})
    counts = part.filter(keep).group_by(["province", "commune", "year"]).aggregate([([], "count_all")])
    for prov, comm, yr, n in zip(*(counts[c].to_pylist() for c in
                                   ("province", "commune", "year", "count_all"))):
        acc[(prov, comm, yr)] = acc.get((prov, comm, yr), 0) + n


def _write_totals(out: Path, totals: dict, fmt: str) -> Path:
    rows = [[prov, comm, year, n] for (prov, comm, year), n in sorted(totals.items())]
    frame = pd.DataFrame(rows, columns=TOTALS_HEADERS)
    if fmt == "xlsx":
        from openpyxl import Workbook

        path = out / "tong_so_ho.xlsx"
        wb = Workbook(write_only=True)
        ws = wb.create_sheet("Tổng số hộ")
        ws.append(TOTALS_HEADERS)
        for row in rows:
            ws.append(row)

        def save(p, wb=wb):
            wb.save(p)
            _fix_zip_times(p)

        _atomic(path, save)
        return path
    path = out / "tong_so_ho.csv"
    _atomic(path, lambda p: p.write_bytes(_csv_bytes(frame, header=True)))
    return path


# ------------------------------------------------------ official list templates (issue 10 §4)
_TEMPLATE_COLUMNS = ["Mã hộ", "Họ tên chủ hộ", "Số CCCD", "Số điện thoại", "Địa chỉ",
                     "Phân loại hộ", "Tỉnh", "Huyện", "Xã", "Khu vực", "Số nhân khẩu",
                     "Thu nhập bình quân", "Dân tộc thiểu số", "Người có công",
                     "Lý do ra khỏi danh sách"]


def _safe_name(text: str) -> str:
    return str(text).replace(" ", "_").replace("/", "-")


def _write_list_templates(out: Path, per_province: dict, communes: dict,
                          frequency: str) -> list:
    """danh_sach/<province>/<commune>_<year>.xlsx, as a commune's office signs them: one
    workbook per commune per year (a sheet per quarter on a quarterly register, named
    "Quý n-YYYY"; one sheet "Danh sách" on an annual one), every commune and year written
    even when nobody is listed (header and footer only)."""
    period_col = "Năm" if frequency == "year" else "Kỳ"
    files = []
    empty = pd.DataFrame(columns=_TEMPLATE_COLUMNS + [period_col])
    for prov in sorted(communes):
        df = pd.concat(per_province[prov], ignore_index=False).sort_index() \
            if prov in per_province else empty
        folder = out / "danh_sach" / _safe_name(prov)
        folder.mkdir(parents=True, exist_ok=True)
        by_commune = dict(tuple(df.groupby("Xã", sort=True))) if len(df) else {}
        for commune in sorted(communes[prov]):
            rows = by_commune.get(commune, df.iloc[0:0])
            eras = communes[prov][commune]
            for year in YEARS:
                if frequency == "year":
                    if ("post" if is_post_merger(year) else "pre") not in eras:
                        continue
                    sheets = [("Danh sách", rows[rows[period_col] == year])]
                else:
                    sheets = [(f"Quý {q}-{year}", rows[rows[period_col] == f"{year}Q{q}"])
                              for q in (1, 2, 3, 4) if f"{year}Q{q}" in _QUARTER_LABELS
                              and ("post" if is_post_merger(f"{year}Q{q}") else "pre") in eras]
                    if not sheets:
                        continue
                path = folder / f"{_safe_name(commune)}_{year}.xlsx"
                _atomic(path, lambda p, c=commune, y=year, sh=sheets, pv=prov:
                        _save_template(p, pv, c, y, sh))
                files.append(path)
    return files


_QUARTER_LABELS = {_standard_period(q) for q in QUARTERS}


def _save_template(path: Path, province: str, commune: str, year: int, sheets: list) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    wb = Workbook()
    wb.remove(wb.active)
    width = 1 + len(_TEMPLATE_COLUMNS)
    bold = Font(bold=True)
    for name, rows in sheets:
        ws = wb.create_sheet(name)
        ws.append([f"ỦY BAN NHÂN DÂN {commune.upper()}"] + [None] * 6
                  + ["CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"])
        ws.append([f"TỈNH {province.upper()}"] + [None] * 6 + ["Độc lập - Tự do - Hạnh phúc"])
        ws.append([])
        ws.append([f"DANH SÁCH HỘ NGHÈO, HỘ CẬN NGHÈO NĂM {year}"])
        ws.append([f"(Kèm theo Quyết định số 125/QĐ-UBND ngày 15/12/{year} của Ủy ban "
                   f"nhân dân {commune})"])
        ws.append([])
        for r in (1, 2):  # the issuing office (left) and the national motto (right)
            ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=6)
            ws.merge_cells(start_row=r, start_column=8, end_row=r, end_column=width)
        for r in (4, 5):  # the list's title across the whole table
            ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=width)
        ws.cell(4, 1).font = bold
        ws.cell(4, 1).alignment = Alignment(horizontal="center")
        ws.append(["STT"] + _TEMPLATE_COLUMNS)
        for i, row in enumerate(rows[_TEMPLATE_COLUMNS].itertuples(index=False), 1):
            ws.append([i] + [_cell(v) for v in row])
        ws.append([])
        ws.append([None] * 9 + [f"{commune}, ngày 15 tháng 12 năm {year}"])
        ws.append([None, "Người lập biểu"] + [None] * 7 + ["TM. ỦY BAN NHÂN DÂN"])
        ws.append([None, "(Ký, ghi rõ họ tên)"] + [None] * 7 + ["CHỦ TỊCH"])
        ws.append([])
        ws.append([])
        ws.append([None, "Lò Thị Mai"] + [None] * 7 + ["Hoàng Văn Thắng"])
    wb.save(path)
    _fix_zip_times(path)


def _sheet_name(period) -> str:
    return str(period)[:31]


def _write_xlsx(out: Path, per_province: dict, style: str, frequency: str, periods: list) -> list:
    """One workbook per (2025) province, one sheet per review period (every period of
    the run, with just the header row when a province has no listed household then)."""
    from openpyxl import Workbook

    period_col = "period" if style == "full" else ("Năm" if frequency == "year" else "Kỳ")
    files = []
    for prov in sorted(per_province):
        df = pd.concat(per_province[prov], ignore_index=False).sort_index()
        wb = Workbook(write_only=True)
        for per in periods:
            ws = wb.create_sheet(_sheet_name(per))
            g = df[df[period_col] == per]
            ws.append(list(g.columns))
            for row in g.itertuples(index=False):
                ws.append([_cell(v) for v in row])
        safe = prov.replace(" ", "_").replace("/", "-")
        prefix = "register" if style == "full" else "danh_sach"
        path = out / f"{prefix}_{safe}.xlsx"

        def save(p, wb=wb):
            wb.save(p)
            _fix_zip_times(p)

        _atomic(path, save)
        files.append(path)
    return files


def _cell(v):
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, str):  # openpyxl writes "=..." as a formula
        from ..schema import spreadsheet_safe

        return spreadsheet_safe(v)
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def _fix_zip_times(path: Path) -> None:
    """openpyxl stamps the workbook with the current time; rewrite the zip with fixed
    timestamps and core properties so the same data gives the same bytes."""
    import re
    import zipfile

    with zipfile.ZipFile(path) as z:
        items = [(i.filename, z.read(i.filename)) for i in z.infolist()]
    tmp = path.with_name(path.name + ".z")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in items:
            if name == "docProps/core.xml":
                data = re.sub(rb"<dcterms:(created|modified)([^>]*)>[^<]*</dcterms:\1>",
                              rb"<dcterms:\1\2>2025-01-01T00:00:00Z</dcterms:\1>", data)
            info = zipfile.ZipInfo(name, date_time=(2025, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    os.replace(tmp, path)
