"""Ingest: raw register exports -> validated, pseudonymised parquet. Nothing is lost.

`ingest(raw_dir, out_dir)` (CLI: `povdyn ingest RAW_DIR --out OUT_DIR`) reads every
csv / xlsx (every sheet) / parquet file under RAW_DIR, recursively, and writes

* `OUT/panel.parquet`    the household-period panel (canonical columns, schema.py)
* `OUT/support.parquet`  programme rolls (household_id, program, start_period, ...)
* `OUT/quarantine.csv`   every rejected row: source_file, sheet, row, reason, values
* `OUT/ingest_summary.json` the counts below, per file and in total.

Rules (issue 3 §5):

* A table is a register or a programme roll by its headers (schema.file_kind). Title
  rows above the header are skipped: the header is the row, among the first 30, with
  the most recognised column names. A list sheet without a period column takes its
  period from the sheet name when that reads as one ("2024", "2025Q3", "Quý 3/2025").
* Bad rows go to the quarantine with a reason naming the column; the rest load.
  For every table, rows in = rows loaded + rows quarantined + exact duplicates dropped
  (blank lines are counted apart). Row numbers are those a spreadsheet shows (header
  = its own row number, e.g. row 1); for parquet inputs, the 1-based record number.
* Duplicates of a household and period: an exact duplicate (every value equal) is
  dropped and counted; otherwise every copy is quarantined, the reason naming the
  columns that differ and where the other copies are. Rows whose period frequency
  differs from most of the register (a year among quarters) are quarantined too.
* `province` keeps the unit as recorded, in its canonical spelling ("Tỉnh Hà Giang",
  "ha giang" -> "Hà Giang"); `province_2025` is the province in force since July 2025
  (povdyn.geo, exact: provinces merged whole). An unknown province name sends the row
  to quarantine.
* A file that cannot be read (corrupt, wrong format, not a register) is reported by
  name; the others still load, and the summary is not ok (the CLI exits 1).
* Direct identifiers never reach OUT: household ids become keyed pseudonyms
  (privacy.pseudonymise; the same ones in the support rolls), names / ID-card numbers /
  phones / addresses are dropped, and columns the schema does not know are not copied
  (they could hold anything). The quarantine carries the same pseudonyms, never raw ids.
* Writes are atomic (temp file + os.replace) and deterministic: sorted rows, no
  timestamps, so the same input gives the same bytes.
* List-based registers (poor / near-poor rows only) are written as they are: reading
  absence as "not poor" is load_panel's job (absent_means="non_poor").
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import re
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from . import schema
from .errors import PovdynError, SchemaError
from .periods import frequency_and_index, parse_period
from .privacy import IDENTIFIER_COLUMNS, load_key, pseudonymise

TABLE_SUFFIXES = {".csv", ".tsv", ".xlsx", ".xlsm", ".xls", ".parquet"}
HEADER_SEARCH_ROWS = 30
BATCH_ROWS = 250_000  # rows checked at once (memory vs per-call overhead)
CHUNK_ROWS = 250_000  # rows of one large table turned into Python objects at once
QUARANTINE_LEAD = ["source_file", "sheet", "row", "reason"]
_PROVENANCE = ["_file", "_sheet", "_row"]


# ---------------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------------
@dataclass
class TableReport:
    """What happened to one csv file, workbook sheet or parquet file."""
    source_file: str
    sheet: str | None = None
    kind: str | None = None
    rows_in: int = 0
    loaded: int = 0
    quarantined: int = 0
    duplicates_dropped: int = 0
    blank_rows: int = 0
    header_row: int | None = None
    ignored_columns: list[str] = field(default_factory=list)
    error: str | None = None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class IngestSummary:
    """Result of ingest(). `ok` is False when a file could not be read or recognised,
    or when the row balance does not hold. str() gives the human summary."""
    raw_dir: Path
    out_dir: Path
    tables: list[TableReport]
    errors: list[str]
    ignored_files: list[str]
    panel_rows: int
    support_rows: int
    households: int
    periods: list
    frequency: str | None
    seconds: float = 0.0

    def _totals(self, kind: str) -> dict:
        rows = [t for t in self.tables if t.kind == kind]
        return {k: sum(getattr(t, k) for t in rows)
                for k in ("rows_in", "loaded", "quarantined", "duplicates_dropped", "blank_rows")}

    @property
    def register(self) -> dict:
        return self._totals("register")

    @property
    def support(self) -> dict:
        return self._totals("support")

    @property
    def rows_in(self) -> int:
        return self.register["rows_in"] + self.support["rows_in"]

    @property
    def rows_quarantined(self) -> int:
        return self.register["quarantined"] + self.support["quarantined"]

    @property
    def balanced(self) -> bool:
        """rows in = loaded + quarantined + exact duplicates dropped, for every table."""
        return all(t.rows_in == t.loaded + t.quarantined + t.duplicates_dropped
                   for t in self.tables)

    @property
    def ok(self) -> bool:
        return not self.errors and self.balanced

    @property
    def rows_per_second(self) -> float:
        return self.rows_in / self.seconds if self.seconds else float("nan")

    def as_dict(self) -> dict:
        """JSON-ready and deterministic (no timings, paths relative to raw_dir)."""
        return {
            "ok": self.ok,
            "balanced": self.balanced,
            "rule": "rows_in = loaded + quarantined + duplicates_dropped (per table); "
                    "blank rows are not counted in rows_in",
            "register": self.register,
            "support": self.support,
            "panel_rows": self.panel_rows,
            "support_rows": self.support_rows,
            "households": self.households,
            "frequency": self.frequency,
            "periods": [str(p) for p in self.periods],
            "errors": self.errors,
            "ignored_files": self.ignored_files,
            "tables": [t.as_dict() for t in self.tables],
        }

    def __str__(self) -> str:
        r, s = self.register, self.support
        lines = [
            f"povdyn ingest: {self.raw_dir} -> {self.out_dir}",
            f"  tables loaded: {sum(t.kind == 'register' for t in self.tables)} register, "
            f"{sum(t.kind == 'support' for t in self.tables)} programme roll"
            + (f"; {sum(t.error is not None for t in self.tables)} not loaded (see ERROR below)"
               if any(t.error for t in self.tables) else ""),
            f"  register rows in {r['rows_in']:,} = loaded {r['loaded']:,} + quarantined "
            f"{r['quarantined']:,} + exact duplicates dropped {r['duplicates_dropped']:,}"
            + ("" if self.balanced else "   <-- DOES NOT BALANCE (a bug: please report)"),
            f"  programme rows in {s['rows_in']:,} = loaded {s['loaded']:,} + quarantined "
            f"{s['quarantined']:,} + exact duplicates dropped {s['duplicates_dropped']:,}",
            f"  panel: {self.panel_rows:,} rows, {self.households:,} households, "
            f"{len(self.periods)} {self.frequency or ''} periods"
            + (f" ({self.periods[0]}–{self.periods[-1]})" if self.periods else ""),
        ]
        blank = r["blank_rows"] + s["blank_rows"]
        if blank:
            lines.append(f"  blank rows skipped: {blank:,}")
        if self.rows_quarantined:
            lines.append(f"  quarantined rows with reasons: {self.out_dir / 'quarantine.csv'}")
        if self.seconds:
            lines.append(f"  {self.seconds:.1f} s ({self.rows_per_second:,.0f} rows/s)")
        for name in self.ignored_files:
            lines.append(f"  ignored (not a table): {name}")
        for message in self.errors:
            lines.append(f"  ERROR {message}")
        lines.append("  OK" if self.ok else "  NOT OK: fix or remove the files above and re-run")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------
# Reading raw tables
# ---------------------------------------------------------------------------------
@dataclass
class RawTable:
    """One table as read: positional columns c0..cN of raw cells, the header names,
    the spreadsheet row number of each data row, and rows that could not be split."""
    source_file: str
    sheet: str | None
    header: list
    data: pd.DataFrame
    rows: np.ndarray
    header_row: int | None
    malformed: list[tuple[int, str]] = field(default_factory=list)
    mark_columns: frozenset = frozenset()  # columns whose non-blank cells are all "x" marks


class UnreadableFile(PovdynError):
    """A file that cannot be read at all."""


def _header_score(cells) -> int:
    names = [schema.canonical_header(c) for c in cells if not schema.is_blank(c)]
    names = [n for n in names if n and not n.startswith("_")]
    score = len(set(names))
    return score + 100 if "household_id" in names else score


def _find_header(rows: list[list]) -> int | None:
    """Index of the header row among the first rows (None: no row has 2+ known names)."""
    best, best_score = None, 1
    for i, cells in enumerate(rows[:HEADER_SEARCH_ROWS]):
        score = _header_score(cells)
        if score > best_score:
            best, best_score = i, score
    return best


def _header_rows(rows: list[list], h: int) -> tuple[list, int]:
    """(header, number of header rows). A second header row under the first (merged
    group headings such as "Thiếu hụt" over "Việc làm", "Nguồn nước"...) is merged in
    when it has two or more known names and nothing under the household-id column."""
    header = list(rows[h])
    if h + 1 >= len(rows):
        return header, 1
    below = list(rows[h + 1])
    known_below = [c for c in below if not schema.is_blank(c) and schema.canonical_header(c)]
    names = [schema.canonical_header(c) if not schema.is_blank(c) else None for c in header]
    id_pos = names.index("household_id") if "household_id" in names else None
    id_blank = id_pos is None or id_pos >= len(below) or schema.is_blank(below[id_pos])
    if len(known_below) < 2 or not id_blank:
        return header, 1
    width = max(len(header), len(below))
    header += [None] * (width - len(header))
    below += [None] * (width - len(below))
    merged = [b if not schema.is_blank(b) and schema.canonical_header(b) else a
              for a, b in zip(header, below)]
    return merged, 2


def _detect_encoding(path: Path) -> str:
    with open(path, "rb") as handle:
        head = handle.read(1 << 20)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if b"\x00" in head[:4096]:
        raise UnreadableFile("binary content, not a text csv")
    cut = head.rfind(b"\n")
    sample = head if cut < 0 or len(head) < (1 << 20) else head[:cut]
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        return "cp1258"  # Vietnamese Windows exports


def _read_csv(path: Path, rel: str) -> list[RawTable]:
    encoding = _detect_encoding(path)
    with open(path, encoding=encoding, newline="") as handle:
        head_text = "".join(line for _, line in zip(range(HEADER_SEARCH_ROWS), handle))
    best = None  # (score, delimiter, header index, rows)
    for delimiter in (",", ";", "\t", "|"):
        rows = list(csv.reader(io.StringIO(head_text), delimiter=delimiter))
        h = _find_header(rows)
        if h is not None:
            score = _header_score(rows[h])
            if best is None or score > best[0]:
                best = (score, delimiter, h, rows)
    if best is None:
        raise UnreadableFile("no header row with register or programme-roll column names "
                             "(e.g. Mã hộ, Năm, Phân loại hộ, Tỉnh) in the first "
                             f"{HEADER_SEARCH_ROWS} lines")
    _, delimiter, h, rows = best
    header, n_header = _header_rows(rows, h)
    first_data = h + n_header  # 0-based line index of the first data line
    names = [f"c{i}" for i in range(len(header))]
    malformed: list[tuple[int, str]] = []
    fast_ok, fast_error = True, None

    def invalid(_row):
        nonlocal fast_ok
        fast_ok = False
        return "skip"

    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(
                skip_rows=first_data, column_names=names,
                encoding="utf8" if encoding.startswith("utf-8") else encoding,
                block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, ignore_empty_lines=False,
                                              invalid_row_handler=invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names}, strings_can_be_null=False,
                quoted_strings_can_be_null=False),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        fast_ok, fast_error = False, exc
    if fast_ok:
        rows_no = np.arange(table.num_rows, dtype="int64") + first_data + 1
        return [RawTable(rel, None, header, table, rows_no, h + 1, malformed)]
    # slow, exact path: malformed lines or quoted newlines; csv.reader tracks line numbers
    records, rows_no = [], []
    try:
        with open(path, encoding=encoding, newline="") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            start = 1
            for record in reader:
                line = start
                start = reader.line_num + 1
                if line <= first_data:
                    continue
                if not record or all(not c.strip() for c in record):
                    record = [""] * len(header)
                if len(record) != len(header):
                    malformed.append((line, f"row has {len(record)} fields, the header has "
                                            f"{len(header)}: check separators and quotes"))
                    continue
                records.append(record)
                rows_no.append(line)
    except (csv.Error, UnicodeDecodeError) as exc:
        detail = f"; pyarrow said: {fast_error}" if fast_error else ""
        raise UnreadableFile(f"cannot parse as csv ({exc}{detail})")
    data = pd.DataFrame(records, columns=names, dtype=object) if records else \
        pd.DataFrame({n: pd.Series(dtype=object) for n in names})
    return [RawTable(rel, None, header, data, np.asarray(rows_no, dtype="int64"), h + 1,
                     malformed)]


def _read_excel(path: Path, rel: str) -> list[RawTable]:
    if path.suffix.lower() == ".xls":
        raise UnreadableFile("old Excel format (.xls): open it in Excel or LibreOffice and "
                             "save as .xlsx")
    try:
        sheets = pd.read_excel(path, sheet_name=None, header=None, dtype=object,
                               engine="openpyxl")
    except Exception as exc:  # zip/xml errors from a corrupt or mislabelled file
        raise UnreadableFile(f"not a readable Excel workbook ({type(exc).__name__}: {exc})")
    tables = []
    for sheet, frame in sheets.items():
        if frame.empty:
            continue
        head_rows = frame.head(HEADER_SEARCH_ROWS).values.tolist()
        h = _find_header(head_rows)
        if h is None:
            data = frame.dropna(how="all")
            tables.append(RawTable(rel, str(sheet), [], data, np.arange(len(data)) + 1, None))
            continue
        header, n_header = _header_rows(head_rows, h)
        header = [None if schema.is_blank(c) else str(c).strip() for c in header]
        data = frame.iloc[h + n_header:].copy()
        data.columns = [f"c{i}" for i in range(data.shape[1])]
        rows_no = np.arange(h + n_header + 1, h + n_header + 1 + len(data), dtype="int64")
        tables.append(RawTable(rel, str(sheet), header, data, rows_no, h + 1))
    return tables


def _read_parquet(path: Path, rel: str, raw_dir: Path) -> list[RawTable]:
    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise UnreadableFile(f"not a readable parquet file ({type(exc).__name__}: {exc})")
    # hive partitions (province=Hà Giang/period=2024/part-0.parquet) become columns
    for part in path.relative_to(raw_dir).parent.parts:
        if "=" in part:
            key, value = part.split("=", 1)
            if key not in table.column_names:
                table = table.append_column(key, pa.array([value] * table.num_rows, pa.string()))
    header = list(table.column_names)
    table = table.rename_columns([f"c{i}" for i in range(table.num_columns)])
    return [RawTable(rel, None, header, table, np.arange(1, table.num_rows + 1, dtype="int64"),
                     None)]


def _mark_columns(data) -> frozenset:
    """Columns (of a whole table) whose non-blank cells are all marks such as "x": in
    those, a blank cell means "no". Decided per table, before it is cut into pieces, so
    that the answer never depends on how the table was split or batched."""
    marks = []
    for name in (data.column_names if isinstance(data, pa.Table) else data.columns):
        column = data[name]
        if isinstance(data, pa.Table):
            if not pa.types.is_string(column.type):
                continue
            uniques = pc.unique(pc.utf8_trim_whitespace(column)).to_pylist()
        else:
            if column.dtype != object:
                continue
            uniques = pd.unique(column)
        if len(uniques) > 20:  # marks plus blank spellings are a handful of values
            continue
        non_blank = [u for u in uniques if not schema.is_blank(u)]
        if non_blank and len(non_blank) <= len(schema._MARKS) and all(
                isinstance(u, str) and u.strip() in schema._MARKS for u in non_blank):
            marks.append(name)
    return frozenset(marks)


def chunks(raw: RawTable, rows: int | None = None):
    """A table in pieces of at most `rows` rows, as pandas frames. Tables read by
    pyarrow stay compact Arrow data until their turn, which bounds the memory that
    Python string objects take (a 1M-row export is checked 250k rows at a time)."""
    rows = rows or CHUNK_ROWS
    raw = dataclasses.replace(raw, mark_columns=_mark_columns(raw.data))
    if not isinstance(raw.data, pa.Table):
        yield raw
        return
    n = raw.data.num_rows
    for start in range(0, max(n, 1), rows):
        yield dataclasses.replace(raw, data=raw.data.slice(start, rows).to_pandas(),
                                  rows=raw.rows[start:start + rows],
                                  malformed=raw.malformed if start == 0 else [])


def read_tables(path: Path, raw_dir: Path) -> list[RawTable]:
    """Every table in one file (a csv, each sheet of a workbook, a parquet file)."""
    rel = path.relative_to(raw_dir).as_posix()
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm", ".xls"):
        return _read_excel(path, rel)
    if suffix == ".parquet":
        return _read_parquet(path, rel, raw_dir)
    return _read_csv(path, rel)


def list_inputs(raw_dir: Path) -> tuple[list[Path], list[str]]:
    """(table files sorted by path, other files ignored). Hidden files, Excel lock files
    (~$...), README and json files are skipped without comment."""
    tables, ignored = [], []
    for path in sorted(raw_dir.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(raw_dir)
        if any(p.startswith(".") for p in rel.parts) or path.name.startswith("~$"):
            continue
        if path.name == "truth_risk.parquet":  # the demo's planted relapse oracle, not data
            continue
        if path.suffix.lower() in TABLE_SUFFIXES:
            tables.append(path)
        elif path.suffix.lower() not in (".md", ".json") and path.name != ".gitkeep":
            ignored.append(rel.as_posix())
    return tables, ignored


# ---------------------------------------------------------------------------------
# Checking one table
# ---------------------------------------------------------------------------------
def _raw_text(value) -> str:
    """A raw cell as text for the quarantine file."""
    if schema.is_blank(value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (pd.Timestamp,)) or hasattr(value, "strftime"):
        try:
            return value.strftime("%d/%m/%Y")
        except ValueError:
            return str(value)
    return str(value)


def _combine_quarter(canon: pd.DataFrame) -> pd.DataFrame:
    """A separate 'Quý' column next to 'Năm' -> period 'YYYYQn' text."""
    if "_quarter" not in canon.columns:
        return canon
    quarter = canon.pop("_quarter")
    if "period" in canon.columns:
        q = quarter.map(lambda v: "" if schema.is_blank(v) else
                        re.sub(r"^(quy|q)\s*", "", schema.fold(_raw_text(v))))
        year = canon["period"].map(_raw_text)
        canon["period"] = np.where(q != "", "Quý " + q + "/" + year, canon["period"])
    return canon


def _blank_rows(data: pd.DataFrame) -> np.ndarray:
    blank = np.ones(len(data), dtype=bool)
    for col in data.columns:
        series = data[col]
        if series.dtype == object:
            blank &= series.isna().to_numpy() | (series.astype(str).str.strip() == "").to_numpy()
        else:
            blank &= series.isna().to_numpy()
        if not blank.any():
            break
    return blank


def _load_programs() -> dict[str, str] | None:
    """Folded programme code / Vietnamese name / English name -> code, from
    lib/povdyn/data/programs.csv when it exists (None: accept any programme text)."""
    path = Path(__file__).parent / "data" / "programs.csv"
    if not path.exists():
        return None
    table = pd.read_csv(path, dtype=str)
    lookup = {}
    for _, row in table.iterrows():
        for col in ("code", "name_vi", "name_en"):
            if col in row and isinstance(row[col], str):
                lookup[schema.fold(row[col])] = row["code"]
    return lookup


def _provinces(names: pd.Series) -> tuple[dict, dict, set]:
    """Over the distinct recorded names (povdyn.geo: old or new names, any diacritics or
    prefix): ({name: canonical spelling of the recorded unit}, {name: 2025 province},
    {unknown names}). "Tỉnh Hà Giang" -> "Hà Giang" (recorded) and "Tuyên Quang" (2025)."""
    from .geo import old_province, province_2025

    uniques = pd.Series(pd.unique(names.dropna()), dtype=object)
    if uniques.empty:
        return {}, {}, set()
    new = province_2025(uniques, errors="coerce")
    old = old_province(uniques, errors="coerce")
    to_2025 = {name: n for name, n in zip(uniques, new) if not pd.isna(n)}
    spelled = {name: (o if not pd.isna(o) else n)
               for name, o, n in zip(uniques, old, new) if not pd.isna(n)}
    unknown = {name for name in uniques if name not in to_2025}
    return spelled, to_2025, unknown


@dataclass
class _Prepared:
    """One table with canonical column names (raw values) and provenance columns,
    ready to be checked together with other tables of the same shape."""
    report: TableReport
    canon: pd.DataFrame | None = None
    malformed: pd.DataFrame | None = None


def prepare_table(raw: RawTable) -> _Prepared:
    """Map headers, recognise the kind of table, drop blank rows, add provenance
    (_file, _sheet, _row). Identifier columns are dropped here, before any check."""
    report = TableReport(source_file=raw.source_file, sheet=raw.sheet,
                         header_row=raw.header_row)
    headers_found = [str(c) for c in raw.header if c is not None][:12]
    try:
        mapping = schema.map_headers(c for c in raw.header if c is not None)
    except SchemaError as exc:
        report.error = str(exc)
        return _Prepared(report)
    position = {}
    for i, name in enumerate(raw.header):
        if name in mapping and mapping[name] not in position.values():
            position[f"c{i}"] = mapping[name]
    report.ignored_columns = [str(c) for c in raw.header
                              if c is not None and not schema.is_blank(c) and c not in mapping]
    kind = schema.file_kind(position.values())
    blank = _blank_rows(raw.data)
    report.blank_rows = int(blank.sum())
    data, rows_no = raw.data.loc[~blank], raw.rows[~blank]
    if kind is None:
        if len(data) or raw.malformed:
            report.error = ("not a register or programme roll: need Mã hộ plus Năm/Kỳ or "
                            "Phân loại hộ (register) or Chương trình (programme roll); "
                            f"headers found: {headers_found}")
        return _Prepared(report)
    keep = {c: name for c, name in position.items() if name not in IDENTIFIER_COLUMNS}
    canon = data[list(keep)].rename(columns=keep)
    for c, name in keep.items():  # "x"-marked yes/no columns: blank means "no"
        if c in raw.mark_columns and (name in schema.BOOL_COLUMNS or name.startswith("dep_")):
            values = canon[name]
            blank = values.isna() | (values.astype(str).str.strip() == "")
            canon[name] = values.where(~blank, "Không")
    canon = _combine_quarter(canon)
    if kind == "register" and "period" not in canon.columns and raw.sheet is not None:
        sheet_period = schema.period_value(raw.sheet)
        if sheet_period is not schema._INVALID and sheet_period is not None:
            canon["period"] = sheet_period  # list sheets named after their review
    required = schema.REQUIRED_PANEL_COLUMNS if kind == "register" else \
        schema.REQUIRED_SUPPORT_COLUMNS
    missing = [c for c in required if c not in canon.columns]
    if missing:
        report.error = f"{kind} without column(s) {missing}; headers found: {headers_found}"
        return _Prepared(report)
    report.kind = kind
    report.rows_in = len(canon) + len(raw.malformed)
    canon = canon.reset_index(drop=True)
    canon["_file"] = raw.source_file
    canon["_sheet"] = raw.sheet or ""
    canon["_row"] = rows_no
    malformed = None
    if raw.malformed:
        malformed = pd.DataFrame({"source_file": raw.source_file, "sheet": raw.sheet or "",
                                  "row": [r for r, _ in raw.malformed],
                                  "reason": [m for _, m in raw.malformed]})
    return _Prepared(report, canon, malformed)


def check_batch(canon: pd.DataFrame, kind: str, key: bytes,
                programs) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check the rows of one or more prepared tables of the same shape: (good rows in
    canonical dtypes with pseudonymous ids and provenance, quarantine rows)."""
    canon = canon.reset_index(drop=True)
    checked_cols = [c for c in canon.columns if c not in _PROVENANCE]
    good, rejected = schema.check_rows(canon[checked_cols], kind=kind, programs=programs)
    if kind == "register" and len(good):
        spelled, to_2025, unknown = _provinces(good["province"])
        if unknown:
            bad = good["province"].isin(list(unknown)).to_numpy()
            extra = canon.loc[good.index[bad], checked_cols].copy()
            extra["reason"] = ("province: " + good.loc[bad, "province"].map(repr)
                               + " is not a known province (63 pre-2025 or 34 current names)")
            rejected = pd.concat([rejected, extra])
            good = good.loc[~bad]
        good = good.drop(columns=["province_2025"], errors="ignore")  # recomputed, exact
        recorded = good["province"]
        good["province"] = recorded.map(spelled).astype(object)
        pos = list(good.columns).index("province") + 1
        good.insert(pos, "province_2025", recorded.map(to_2025).astype(object))

    # quarantine rows: raw text of the known, non-identifying columns; pseudonymous ids
    where = canon.loc[rejected.index, _PROVENANCE]
    quarantine = pd.DataFrame({"source_file": where["_file"], "sheet": where["_sheet"],
                               "row": where["_row"], "reason": rejected["reason"]},
                              index=rejected.index)
    for col in checked_cols:
        values = rejected[col].map(_raw_text)
        if col == "household_id":
            cleaned = values.str.strip()
            values = pseudonymise(cleaned.where(cleaned != "", None), key).fillna("")
        quarantine[col] = values

    good = good.copy()
    good["household_id"] = pseudonymise(good["household_id"], key)
    for col in _PROVENANCE:
        good[col] = canon.loc[good.index, col].to_numpy()
    return good.reset_index(drop=True), quarantine.reset_index(drop=True)


# ---------------------------------------------------------------------------------
# Checks across tables
# ---------------------------------------------------------------------------------
def _as_quarantine(rows: pd.DataFrame, reason: pd.Series | str) -> pd.DataFrame:
    out = pd.DataFrame({"source_file": rows["_file"], "sheet": rows["_sheet"],
                        "row": rows["_row"], "reason": reason})
    for col in rows.columns:
        if col not in _PROVENANCE and col != "province_2025":
            out[col] = rows[col].map(_raw_text)
    return out


def _period_frequency(panel: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, str | None]:
    """Quarantine rows whose period frequency is not that of most rows."""
    if panel.empty:
        return panel, panel.iloc[0:0], None
    codes, uniques = pd.factorize(panel["period"])
    is_quarter = np.array([parse_period(u)[0] == "quarter" for u in uniques], dtype=bool)[codes]
    main = "quarter" if is_quarter.sum() * 2 > len(panel) else "year"
    odd = is_quarter if main == "year" else ~is_quarter
    if not odd.any():
        return panel, panel.iloc[0:0], main
    other = "a quarter" if main == "year" else "a year"
    reason = (f"period: {other} in a register whose other rows are "
              f"{'annual' if main == 'year' else 'quarterly'}: "
              + panel.loc[odd, "period"].astype(str))
    return panel.loc[~odd], _as_quarantine(panel.loc[odd], reason), main


def _duplicates(frame: pd.DataFrame, key: list[str], conflicts: bool):
    """(kept, quarantine rows, dropped provenance) for duplicated keys.

    Exact duplicates (same values in every data column) keep their first copy in file /
    sheet / row order; if `conflicts`, copies of a key that still differ are all
    quarantined with a reason naming the columns that differ and the other copies."""
    data_cols = [c for c in frame.columns if c not in _PROVENANCE]
    frame = frame.sort_values(_PROVENANCE, kind="stable")
    exact = frame.duplicated(data_cols, keep="first")
    dropped = frame.loc[exact, _PROVENANCE]
    frame = frame.loc[~exact]
    if not conflicts:
        return frame, frame.iloc[0:0], dropped
    clash = frame.duplicated(key, keep=False)
    if not clash.any():
        return frame, frame.iloc[0:0], dropped
    clashing = frame.loc[clash]
    reasons = {}
    for _, group in clashing.groupby(key, sort=False, dropna=False):
        differ = [c for c in data_cols if c not in key and c != "province_2025"
                  and group[c].astype(str).nunique(dropna=False) > 1]
        for idx, row in group.iterrows():
            others = group.drop(index=idx)
            where = ", ".join(f"{f}{'[' + s + ']' if s else ''} row {r}" for f, s, r in
                              zip(others["_file"], others["_sheet"], others["_row"]))
            detail = "; ".join(f"{c} {_raw_text(row[c])!r} vs "
                               f"{', '.join(repr(_raw_text(v)) for v in others[c])}"
                               for c in differ[:4])
            reasons[idx] = (f"household_id+period: the same household and period appear "
                            f"again with different values ({detail}) at {where}")
    reason = pd.Series(reasons).reindex(clashing.index)
    return frame.loc[~clash], _as_quarantine(clashing, reason), dropped


# ---------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------
def _atomic_write_bytes(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        if path.is_dir():  # an older run wrote a dataset folder here
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(df, preserve_index=False)
    _atomic_write_bytes(path, lambda tmp: pq.write_table(
        table, tmp, compression="zstd", write_statistics=True))


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    _atomic_write_bytes(path, lambda tmp: df.to_csv(tmp, index=False, encoding="utf-8-sig",
                                                    lineterminator="\n"))


def _write_json(data: dict, path: Path) -> None:
    text = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False, default=str) + "\n"
    _atomic_write_bytes(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


def _finish_panel(panel: pd.DataFrame) -> pd.DataFrame:
    if panel.empty:
        return _empty(schema.REQUIRED_PANEL_COLUMNS + ["province_2025"])
    panel = panel.drop(columns=_PROVENANCE)
    panel = schema.canonical_dtypes(panel)
    _, index = frequency_and_index(panel["period"])
    panel = panel.assign(_order=index).sort_values(["household_id", "_order"], kind="stable")
    panel = panel.drop(columns="_order")
    return panel[schema.column_order(panel.columns)].reset_index(drop=True)


def _finish_support(support: pd.DataFrame) -> pd.DataFrame:
    if support.empty:
        frame = _empty(schema.SUPPORT_COLUMNS)
        frame["amount_vnd"] = frame["amount_vnd"].astype("float64")
        return frame
    support = schema.canonical_dtypes(support.drop(columns=_PROVENANCE))
    order = [c for c in schema.SUPPORT_COLUMNS if c in support.columns]
    sort_key = support[order].astype(str)
    support = support.iloc[np.lexsort([sort_key[c].to_numpy() for c in reversed(order)])]
    return support[schema.column_order(support.columns, "support")].reset_index(drop=True)


# ---------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------
def ingest(raw_dir, out_dir, progress: bool = True) -> IngestSummary:
    """Validate raw registers and programme rolls, quarantine bad rows, pseudonymise,
    and write panel.parquet, support.parquet, quarantine.csv and ingest_summary.json
    to out_dir (module docstring for the rules). Returns the IngestSummary."""
    from tqdm.auto import tqdm

    started = time.perf_counter()
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    if not raw_dir.is_dir():
        raise PovdynError(f"raw folder {raw_dir} does not exist: run `povdyn demo` or copy "
                          "the register exports there")
    out_dir.mkdir(parents=True, exist_ok=True)
    key = load_key()
    programs = _load_programs()
    files, ignored = list_inputs(raw_dir)
    errors: list[str] = []
    if not files:
        errors.append(f"no csv, xlsx or parquet files in {raw_dir}: run `povdyn demo` or copy "
                      "the register exports there")

    reports: list[TableReport] = []
    goods = {"register": [], "support": []}
    quarantines: list[pd.DataFrame] = []
    # Tables with the same kind and columns (e.g. the sheets of list workbooks) are
    # checked together: per-table overhead would dominate hundreds of small sheets.
    pending: dict[tuple, list[pd.DataFrame]] = {}
    seen: dict[tuple, TableReport] = {}
    pending_rows: dict[tuple, int] = {}

    def flush(batch_key):
        frames = pending.pop(batch_key, [])
        pending_rows.pop(batch_key, None)
        if frames:
            good, quarantine = check_batch(pd.concat(frames, ignore_index=True),
                                           batch_key[0], key, programs)
            goods[batch_key[0]].append(good)
            quarantines.append(quarantine)

    for path in tqdm(files, desc="ingest", unit="file", disable=not progress):
        rel = path.relative_to(raw_dir).as_posix()
        try:
            tables = read_tables(path, raw_dir)
        except UnreadableFile as exc:
            errors.append(f"{rel}: cannot read: {exc}")
            reports.append(TableReport(source_file=rel, error=str(exc)))
            continue
        except (OSError, ValueError, pa.ArrowException) as exc:
            errors.append(f"{rel}: cannot read: {type(exc).__name__}: {exc}")
            reports.append(TableReport(source_file=rel, error=f"{type(exc).__name__}: {exc}"))
            continue
        for raw in (piece for table in tables for piece in chunks(table)):
            prepared = prepare_table(raw)
            table_key = (raw.source_file, raw.sheet)
            if table_key in seen:  # a further piece of a table already reported
                first = seen[table_key]
                if first.error:
                    continue
                first.rows_in += prepared.report.rows_in
                first.blank_rows += prepared.report.blank_rows
            else:
                seen[table_key] = prepared.report
                reports.append(prepared.report)
                if prepared.report.error:
                    where = rel + (f" [sheet {raw.sheet}]" if raw.sheet else "")
                    errors.append(f"{where}: {prepared.report.error}")
            if prepared.report.error:
                continue
            if prepared.malformed is not None:
                quarantines.append(prepared.malformed)
            batch_key = (prepared.report.kind, tuple(prepared.canon.columns))
            pending.setdefault(batch_key, []).append(prepared.canon)
            pending_rows[batch_key] = pending_rows.get(batch_key, 0) + len(prepared.canon)
            if pending_rows[batch_key] >= BATCH_ROWS:
                flush(batch_key)
    for batch_key in sorted(pending, key=str):
        flush(batch_key)

    panel = pd.concat(goods["register"], ignore_index=True) if goods["register"] else \
        pd.DataFrame(columns=schema.REQUIRED_PANEL_COLUMNS + _PROVENANCE)
    support = pd.concat(goods["support"], ignore_index=True) if goods["support"] else \
        pd.DataFrame(columns=schema.REQUIRED_SUPPORT_COLUMNS + _PROVENANCE)
    panel, odd_periods, frequency = _period_frequency(panel)
    panel, panel_clash, panel_dropped = _duplicates(panel, ["household_id", "period"], True)
    support, _, support_dropped = _duplicates(support, schema.SUPPORT_COLUMNS, False)
    quarantines += [odd_periods, panel_clash]

    # per-table accounting from provenance
    def count(*frames: pd.DataFrame, file_col="_file", sheet_col="_sheet") -> Counter:
        counter: Counter = Counter()
        for frame in frames:
            if len(frame):
                counter.update(zip(frame[file_col], frame[sheet_col]))
        return counter

    loaded = count(panel, support)
    dropped = count(panel_dropped, support_dropped)
    quarantined = count(*quarantines, file_col="source_file", sheet_col="sheet")
    for report in reports:
        if report.kind is None:
            continue
        k = (report.source_file, report.sheet or "")
        report.loaded = loaded[k]
        report.duplicates_dropped = dropped[k]
        report.quarantined = quarantined[k]

    panel_out = _finish_panel(panel)
    support_out = _finish_support(support)
    quarantine = pd.concat([q for q in quarantines if len(q)], ignore_index=True) \
        if any(len(q) for q in quarantines) else _empty(QUARANTINE_LEAD)
    value_cols = schema.column_order([c for c in quarantine.columns if c not in QUARANTINE_LEAD])
    quarantine = quarantine[QUARANTINE_LEAD + value_cols].fillna("")
    quarantine["row"] = quarantine["row"].astype("int64") if len(quarantine) else quarantine["row"]
    quarantine = quarantine.sort_values(["source_file", "sheet", "row"], kind="stable")

    periods = []
    if len(panel_out):
        freq, index = frequency_and_index(panel_out["period"])
        periods = [p for _, p in sorted({(i, p) for i, p in zip(index, panel_out["period"])})]
    summary = IngestSummary(
        raw_dir=raw_dir, out_dir=out_dir, tables=reports, errors=errors,
        ignored_files=ignored, panel_rows=len(panel_out), support_rows=len(support_out),
        households=int(panel_out["household_id"].nunique()) if len(panel_out) else 0,
        periods=periods, frequency=frequency if len(panel_out) else None,
    )
    _write_parquet(panel_out, out_dir / "panel.parquet")
    _write_parquet(support_out, out_dir / "support.parquet")
    _write_csv(quarantine, out_dir / "quarantine.csv")
    _write_json(summary.as_dict(), out_dir / "ingest_summary.json")
    summary.seconds = time.perf_counter() - started
    return summary
