"""Reading raw tables: csv (streamed in blocks: a register in one pass by the engine
path, _LazyCsv; otherwise, or when that pass cannot finish, a scan first and the
encoding decided on the whole file), every sheet of a workbook (python-calamine),
parquet; the header row and title above it, the signature footer below the data,
"x"-marked columns, and the pieces pandas checks."""
from __future__ import annotations

import csv
import dataclasses
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .. import schema
from ..errors import PovdynError, SchemaError


TABLE_SUFFIXES = {".csv", ".tsv", ".xlsx", ".xlsm", ".xls", ".parquet"}
HEADER_SEARCH_ROWS = 30
EXCEL_ENGINE = "calamine"  # python-calamine (Rust): about 5x openpyxl on list workbooks
CHUNK_ROWS = 250_000  # rows of one large table turned into Python objects at once


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
    title: list[str] = field(default_factory=list)  # text of the rows above the header
    footer_rows: int = 0  # signature footer rows cut from the end (not data)
    footer_blank_rows: int = 0  # blank lines inside that footer
    first_row: int = 1  # row number of the first data row (streamed csv: rows is None)


CSV_BLOCK_BYTES = 1 << 22  # csv bytes parsed at once: with 16 MB blocks an ingest worker held
# ~790 MB (the blocks and their checked columns in flight), with 4 MB ~520 MB
MARK_UNIQUES = 20  # more distinct values than this: not a mark column
LOOKUP_UNIQUES = 200_000  # more distinct cells in a coded column: the file takes the pandas path


class _CsvStream:
    """A csv read twice in blocks, never whole: scan() counts rows, keeps the last
    FOOTER_SEARCH_ROWS rows and the few distinct values of short-valued columns;
    batches() reads it again, up to `limit` rows (the footer cut)."""

    def __init__(self, open_stream, num_rows: int, tail: pa.Table, uniques: dict,
                 lookups: dict | None = None):
        self.open_stream = open_stream
        self.num_rows = num_rows
        self.tail = tail
        # column -> Counter of trimmed values (footer rows included: _mark_columns takes
        # them out), or None (too many)
        self.uniques = uniques
        # column -> Counter of raw cells (every cell, or for number columns the cells
        # the Arrow fast path does not read), or None (more than LOOKUP_UNIQUES): what
        # the engine path parses in Python, once per distinct value
        self.lookups = lookups or {}
        self.limit = num_rows

    @classmethod
    def scan(cls, open_stream, names: list[str], mark_candidates: list[str],
             lookups: dict | None = None) -> "_CsvStream":
        num_rows, tail, uniques = 0, [], {n: Counter() for n in mark_candidates}
        lookups = lookups or {}
        seen_lookups = {n: Counter() for n in lookups}
        kept = 0
        for batch in open_stream():
            for name, how in lookups.items():
                seen = seen_lookups[name]
                if seen is None:
                    continue
                column = batch.column(name)
                if how == "numbers":
                    column = column.filter(pc.invert(schema.arrow_number_fast_path(column)[1]))
                counts = pc.value_counts(column)
                seen.update(dict(zip(counts.field("values").to_pylist(),
                                     counts.field("counts").to_pylist())))
                if len(seen) > LOOKUP_UNIQUES:
                    seen_lookups[name] = None
            num_rows += batch.num_rows
            tail.append(batch)
            kept += batch.num_rows
            while len(tail) > 1 and kept - tail[0].num_rows >= FOOTER_SEARCH_ROWS:
                kept -= tail.pop(0).num_rows
            for name in mark_candidates:
                seen = uniques[name]
                if seen is None:
                    continue
                counts = pc.value_counts(pc.utf8_trim_whitespace(batch.column(name)))
                seen.update(dict(zip(counts.field("values").to_pylist(),
                                     counts.field("counts").to_pylist())))
                # the footer's cells come out later (at most FOOTER_SEARCH_ROWS of them)
                if len(seen) > MARK_UNIQUES + FOOTER_SEARCH_ROWS:
                    uniques[name] = None
        schema_ = pa.schema([pa.field(n, pa.string()) for n in names])
        table = pa.Table.from_batches(tail, schema=schema_) if tail else schema_.empty_table()
        return cls(open_stream, num_rows, table.slice(max(0, table.num_rows - FOOTER_SEARCH_ROWS)),
                   uniques, seen_lookups)

    def batches(self):
        left = self.limit
        for batch in self.open_stream():
            if left <= 0:
                break
            yield batch.slice(0, left) if batch.num_rows > left else batch
            left -= batch.num_rows


class _LazyCsv:
    """A csv register read in ONE pass by the engine path (engine_checks): nothing is
    scanned ahead, the signature footer is found in the rows held back at the end, and
    the encoding was guessed from the head (UTF-8). If that pass cannot finish (a
    malformed line or a byte that is not UTF-8, more distinct cells than a lookup takes,
    a guess about "x"-marked columns that the whole file contradicts), `rescan()` reads
    the file the exact way: the encoding decided on the whole file, a scan, then the
    engine path with what the scan found, or the pandas path."""

    def __init__(self, open_stream, names: list[str], rescan, path: Path | None = None,
                 delimiter: str = ",", skip_records: int = 0):
        self.open_stream = open_stream
        self.names = names
        self.rescan = rescan  # () -> list[RawTable], read as _read_csv(lazy=False) does
        # where the data starts, for reading byte ranges of the file in parallel
        # (parallel.py): the file, its delimiter, the csv records above the data
        self.path, self.delimiter, self.skip_records = path, delimiter, skip_records
        # a byte range's reading (parallel.py): the last range alone holds back rows to
        # find the footer; "x"-marked columns are decided for the whole file (marks) and
        # each range says what it saw (marks_seen: column -> (non-blank seen, all marks))
        self.hold_back = True
        self.marks: set | None = None
        self.marks_seen: dict | None = None

    @property
    def empty_batch(self) -> pa.RecordBatch:
        schema_ = pa.schema([pa.field(n, pa.string()) for n in self.names])
        return pa.RecordBatch.from_pylist([], schema=schema_)


def _engine_register_header(header: list) -> bool:
    """A header the engine path checks: a register with every required column and a
    period column of its own (a separate quarter column, or a period from the title or
    sheet name, takes the pandas path)."""
    try:
        position, _ = _column_names(header)
    except SchemaError:
        return False
    names = set(position.values())
    return (schema.file_kind(names) == "register" and "_quarter" not in names
            and set(schema.REQUIRED_PANEL_COLUMNS) <= names)


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


def _is_bool_header(header) -> bool:
    name = None if header is None or schema.is_blank(header) else schema.canonical_header(header)
    return name is not None and (name in schema.BOOL_COLUMNS or name.startswith("dep_"))


def _title_lines(rows: list[list]) -> list[str]:
    """The non-blank text of each row above the header (merged title cells keep their
    text in the first cell, so joining a row's cells gives the title line)."""
    lines = []
    for cells in rows:
        text = " ".join(str(c).strip() for c in cells if not schema.is_blank(c))
        if text:
            lines.append(text)
    return lines


_TITLE_QUARTER = re.compile(r"\bquy\s*([1-4]|iv|i{1,3})\s*(?:nam\s*)?(\d{4})\b")
_TITLE_YEAR = re.compile(r"\bnam\s*(\d{4})\b")
_DATE_LINE = re.compile(r"\bngay\b.*\bthang\b.*\bnam\b")


def title_period(lines: list[str]) -> tuple[object, str] | None:
    """(period, title line) read from the title above a list's header: "DANH SÁCH HỘ
    NGHÈO, HỘ CẬN NGHÈO NĂM 2025" -> 2025, "... QUÝ III NĂM 2025" -> "2025Q3". Lines
    naming the list ("danh sách") are read first; a date line ("..., ngày 15 tháng 12
    năm 2025", when the list was signed) never gives the period."""
    ordered = sorted(lines, key=lambda line: "danh sach" not in schema.fold(line))
    for line in ordered:
        key = schema.fold(line)
        if _DATE_LINE.search(key):
            continue
        m = _TITLE_QUARTER.search(key)
        candidate = f"quy {m.group(1)} nam {m.group(2)}" if m else None
        if candidate is None and (m := _TITLE_YEAR.search(key)):
            candidate = f"nam {m.group(1)}"
        if candidate is not None:
            value = schema.period_value(candidate)
            if value is not schema._INVALID and value is not None:
                return value, line
    return None


# Signature footers of official lists: "Người lập biểu", "(Ký, ghi rõ họ tên)",
# "TM. ỦY BAN NHÂN DÂN / CHỦ TỊCH", "Hà Giang, ngày 15 tháng 12 năm 2025", "Tổng cộng"
_FOOTER = re.compile(
    r"\b(nguoi lap|lap bieu|chu tich|ubnd|uy ban nhan dan|ky ten|ky ghi ro|ghi ro ho ten|"
    r"ky va ghi|ky dong dau|dong dau|xac nhan|thu truong|can bo|ke toan|truong ban|"
    r"tong cong|cong hoa xa hoi|doc lap tu do)\b|^(tm|kt)\b|" + _DATE_LINE.pattern)
FOOTER_SEARCH_ROWS = 200
_DATA_MARKERS = ("status", "removal_reason", "program", "households_total")


def _is_footer_text(value) -> bool:
    return isinstance(value, str) and bool(_FOOTER.search(schema.fold(value)))


def cut_footer(raw: RawTable) -> RawTable:
    """The table without its signature footer. The footer starts at the first row, after
    the last data row, that holds signature-block text (_FOOTER); everything from there
    to the end is not data (signers' names, dates, blank lines). A data row is one with
    a status, removal reason, programme or household total that is not itself footer
    text, so a footer is only ever cut below the last such row."""
    markers = {i for i, c in enumerate(raw.header)
               if c is not None and schema.canonical_header(c) in _DATA_MARKERS}
    data = raw.data
    n = data.num_rows if isinstance(data, (pa.Table, _CsvStream)) else len(data)
    if n == 0 or not markers:
        return raw
    first = max(0, n - FOOTER_SEARCH_ROWS)
    if isinstance(data, _CsvStream):
        tail = [list(r.values()) for r in data.tail.to_pylist()]
        first = n - len(tail)
    elif isinstance(data, pa.Table):
        tail = [list(r.values()) for r in data.slice(first).to_pylist()]
    else:
        tail = data.iloc[first:].values.tolist()
    last_data = -1
    for i, cells in enumerate(tail):
        if any(j < len(cells) and not schema.is_blank(cells[j]) and not _is_footer_text(cells[j])
               for j in markers):
            last_data = i
    start = next((i for i in range(last_data + 1, len(tail))
                  if any(_is_footer_text(c) for c in tail[i])), None)
    if start is None:
        return raw
    block = tail[start:]
    blank = sum(all(schema.is_blank(c) for c in cells) for cells in block)
    cut = first + start
    if isinstance(data, _CsvStream):
        data.limit = cut
        return dataclasses.replace(raw, footer_rows=len(block) - blank, footer_blank_rows=blank)
    kept = data.slice(0, cut) if isinstance(data, pa.Table) else data.iloc[:cut]
    return dataclasses.replace(raw, data=kept, rows=raw.rows[:cut],
                               footer_rows=len(block) - blank, footer_blank_rows=blank)


ENCODING_BLOCK = 1 << 24


def _head_encoding(path: Path) -> str | None:
    """The encoding by BOM, or 'utf-8' when the first megabyte is valid UTF-8 (cut at a
    line end); None when the whole file must decide (_detect_encoding). A guess for the
    one-pass engine path only: pyarrow checks every later byte as it parses, and any
    invalid one sends the file back to the exact reading (_LazyCsv.rescan)."""
    with open(path, "rb") as handle:
        head = handle.read(ENCODING_BLOCK >> 4)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in head:
        return None
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    cut = head.rfind(b"\n") + 1 if len(head) == ENCODING_BLOCK >> 4 else len(head)
    try:
        head[:cut].decode("utf-8")
    except UnicodeDecodeError:
        return None
    return "utf-8"


def _detect_encoding(path: Path) -> str:
    """'utf-16', 'utf-8-sig' (by BOM), 'utf-8' or 'cp1258', from the WHOLE file.

    A file with no valid non-ASCII UTF-8 at all and some bytes that are not UTF-8 is a
    Vietnamese Windows export (cp1258). A UTF-8 file with a few invalid bytes stays
    UTF-8: only the rows holding them are quarantined (naming line and byte), whatever
    their position in the file."""
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if b"\x00" in head:
        raise UnreadableFile("binary content, not a text csv")
    valid_non_ascii, invalid = False, False
    with open(path, "rb") as handle:
        rest = b""
        while True:
            block = handle.read(ENCODING_BLOCK)
            data = rest + block
            if block:  # decode whole lines only: a character may straddle two blocks
                cut = data.rfind(b"\n") + 1
                if cut == 0:
                    rest = data
                    continue
                data, rest = data[:cut], data[cut:]
            if not data.isascii():
                try:
                    data.decode("utf-8")
                    valid_non_ascii = True
                except UnicodeDecodeError:
                    invalid = True
                    for line in data.split(b"\n"):
                        if line.isascii():
                            continue
                        try:
                            line.decode("utf-8")
                            valid_non_ascii = True
                        except UnicodeDecodeError:
                            pass
            if valid_non_ascii and invalid or not block:
                break
    return "cp1258" if invalid and not valid_non_ascii else "utf-8"


def _undecodable(record: list[str]) -> str | None:
    """The first byte that was not valid text in a record read with surrogateescape."""
    for cell in record:
        for ch in cell:
            if "\udc80" <= ch <= "\udcff":
                return f"0x{ord(ch) - 0xdc00:02x}"
    return None


def _read_csv(path: Path, rel: str, lazy: bool = True) -> list[RawTable]:
    """The table of a csv. lazy: a register the engine path checks comes back unread
    (_LazyCsv: one pass, encoding guessed from the head); otherwise the file is scanned
    first (_CsvStream), or read whole by the exact path when pyarrow cannot parse it."""
    # Python's csv refuses fields over 131,072 characters by default; pyarrow has no such
    # limit, and a long note must not stop the file (it is an ignored column, or the row
    # is checked like any other)
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))
    guessed = _head_encoding(path) if lazy else None
    encoding = guessed or _detect_encoding(path)
    with open(path, encoding=encoding, errors="surrogateescape", newline="") as handle:
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
    title = _title_lines(rows[:h])
    header, n_header = _header_rows(rows, h)
    first_data = h + n_header  # 0-based line index of the first data line
    names = [f"c{i}" for i in range(len(header))]
    malformed: list[tuple[int, str]] = []
    fast_ok, fast_error = True, None

    def invalid(_row):
        nonlocal fast_ok
        fast_ok = False
        return "skip"

    def open_stream(on_invalid=invalid):
        return pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(
                skip_rows=first_data, column_names=names,
                encoding="utf8" if encoding.startswith("utf-8") else encoding,
                block_size=CSV_BLOCK_BYTES),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, ignore_empty_lines=False,
                                              invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names}, strings_can_be_null=False,
                quoted_strings_can_be_null=False),
        )

    if lazy and encoding.startswith("utf-8") and _engine_register_header(header):
        # one pass: a malformed line stops it (pyarrow raises) and the file is read again
        stream = _LazyCsv(lambda: open_stream(lambda _row: "error"), names,
                          lambda: _read_csv(path, rel, lazy=False), path=path,
                          delimiter=delimiter, skip_records=first_data)
        return [RawTable(rel, None, header, stream, None, h + 1, malformed, title=title,
                         first_row=first_data + 1)]
    if guessed == "utf-8" and _detect_encoding(path) != "utf-8":
        return _read_csv(path, rel, lazy=False)  # the head was not the whole story

    # first pass, streamed (memory holds one block): row count, the last rows (footer),
    # the distinct values of short-valued columns (mark columns); any malformed line or
    # bad byte sends the whole file to the exact path below instead
    try:
        # only yes/no columns can be "x"-marked columns (prepare_table)
        mark_candidates = [n for n, h in zip(names, header) if _is_bool_header(h)]
        stream = _CsvStream.scan(open_stream, names, mark_candidates, _lookup_columns(header))
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        fast_ok, fast_error = False, exc
    if fast_ok:
        return [RawTable(rel, None, header, stream, None, h + 1, malformed, title=title,
                         first_row=first_data + 1)]
    # slow, exact path: malformed lines or quoted newlines; csv.reader tracks line numbers
    records, rows_no = [], []
    try:
        with open(path, encoding=encoding, errors="surrogateescape", newline="") as handle:
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
                bad_byte = _undecodable(record)
                if bad_byte:
                    lines = f"line {line}" if reader.line_num == line else \
                        f"lines {line}-{reader.line_num}"
                    malformed.append((line, f"{lines}: byte {bad_byte} is not valid {encoding} "
                                            "text (the rest of the file is): fix that "
                                            "character in the export"))
                    continue
                records.append(record)
                rows_no.append(line)
    except (csv.Error, UnicodeDecodeError) as exc:
        detail = f"; pyarrow said: {fast_error}" if fast_error else ""
        raise UnreadableFile(f"cannot parse as csv ({exc}{detail})")
    data = pd.DataFrame(records, columns=names, dtype=object) if records else \
        pd.DataFrame({n: pd.Series(dtype=object) for n in names})
    return [RawTable(rel, None, header, data, np.asarray(rows_no, dtype="int64"), h + 1,
                     malformed, title=title)]


def _read_excel(path: Path, rel: str) -> list[RawTable]:
    if path.suffix.lower() == ".xls":
        raise UnreadableFile("old Excel format (.xls): open it in Excel or LibreOffice and "
                             "save as .xlsx")
    try:
        sheets = pd.read_excel(path, sheet_name=None, header=None, dtype=object,
                               engine=EXCEL_ENGINE)
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
        tables.append(RawTable(rel, str(sheet), header, data, rows_no, h + 1,
                               title=_title_lines(head_rows[:h])))
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
    footer = None
    if isinstance(data, _CsvStream):
        columns = [name for name, seen in data.uniques.items() if seen is not None]
        footer = data.tail.slice(max(0, data.limit - (data.num_rows - data.tail.num_rows)))
    else:
        columns = data.column_names if isinstance(data, pa.Table) else data.columns
    for name in columns:
        if isinstance(data, _CsvStream):  # the data rows' values: the footer's taken out
            counts = Counter(data.uniques[name])
            if footer is not None and footer.num_rows:
                counts.subtract(Counter(pc.utf8_trim_whitespace(footer.column(name)).to_pylist()))
            uniques = [v for v, n in counts.items() if n > 0]
        elif isinstance(data, pa.Table):
            column = data[name]
            if not pa.types.is_string(column.type):
                continue
            uniques = pc.unique(pc.utf8_trim_whitespace(column)).to_pylist()
        else:
            column = data[name]
            if column.dtype != object:
                continue
            uniques = pd.unique(column)
        if len(uniques) > 20:  # marks plus blank spellings are a handful of values
            continue
        non_blank = [u for u in uniques if not schema.is_blank(u)]
        if non_blank and len(non_blank) <= 2 * len(schema._MARKS) and all(
                schema._is_mark(u) for u in non_blank):
            marks.append(name)
    return frozenset(marks)


def chunks(raw: RawTable, rows: int | None = None):
    """A table in pieces of at most `rows` rows, as pandas frames. Tables read by
    pyarrow stay compact Arrow data until their turn, which bounds the memory that
    Python string objects take (a 1M-row export is checked 250k rows at a time)."""
    rows = rows or CHUNK_ROWS
    raw = cut_footer(raw)
    raw = dataclasses.replace(raw, mark_columns=_mark_columns(raw.data))
    if isinstance(raw.data, _CsvStream):
        yield from _stream_chunks(raw, rows)
        return
    if not isinstance(raw.data, pa.Table):
        yield raw
        return
    n = raw.data.num_rows
    for start in range(0, max(n, 1), rows):
        first = start == 0  # counts that belong to the whole table go with its first piece
        yield dataclasses.replace(raw, data=raw.data.slice(start, rows).to_pandas(),
                                  rows=raw.rows[start:start + rows],
                                  malformed=raw.malformed if first else [],
                                  footer_rows=raw.footer_rows if first else 0,
                                  footer_blank_rows=raw.footer_blank_rows if first else 0)


def _stream_chunks(raw: RawTable, rows: int):
    """Pieces of `rows` rows of a streamed csv, read block by block (see chunks)."""
    stream: _CsvStream = raw.data
    pending, pending_rows, start = [], 0, 0

    def piece(table: pa.Table, first: bool):
        nonlocal start
        numbers = np.arange(start, start + table.num_rows, dtype="int64") + raw.first_row
        start += table.num_rows
        return dataclasses.replace(raw, data=table.to_pandas(), rows=numbers,
                                   malformed=raw.malformed if first else [],
                                   footer_rows=raw.footer_rows if first else 0,
                                   footer_blank_rows=raw.footer_blank_rows if first else 0)

    first = True
    for batch in stream.batches():
        pending.append(batch)
        pending_rows += batch.num_rows
        while pending_rows >= rows:
            table = pa.Table.from_batches(pending)
            yield piece(table.slice(0, rows), first)
            first = False
            rest = table.slice(rows)
            pending, pending_rows = ([rest] if rest.num_rows else []), rest.num_rows
            pending = [b for t in pending for b in t.to_batches()]
    if pending_rows or first:
        table = pa.Table.from_batches(pending) if pending else stream.tail.slice(0, 0)
        yield piece(table, first)


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


def _column_names(header: list) -> tuple[dict[str, str], list[str]]:
    """({positional name "c3": canonical name}, headers not recognised) for a table's
    header; the first of two headers meaning the same column wins, STT is left out.
    Raises SchemaError when two headers mean the same column (schema.map_headers)."""
    mapping = schema.map_headers(c for c in header if c is not None)
    position = {}
    for i, name in enumerate(header):
        if name in mapping and mapping[name] not in position.values():
            position[f"c{i}"] = mapping[name]
    ignored = [str(c) for c in header
               if c is not None and not schema.is_blank(c) and c not in mapping]
    return {c: name for c, name in position.items() if name != "_row_number"}, ignored


_CODED = {"period", "status", "removal_reason", "province", "region", "district", "commune",
          "area", "household_size"}  # parsed once per distinct cell
_NUMBER_COLUMNS = ("income_pc_month", "weight")  # fast path + distinct rest


def _is_bool_column(name: str) -> bool:
    return name in schema.BOOL_COLUMNS or name.startswith("dep_")


def _lookup_columns(header: list) -> dict[str, str]:
    """{positional column: "values" | "numbers"} whose distinct cells the csv scan
    collects for the engine path (nothing when the header cannot be mapped)."""
    try:
        position, _ = _column_names(header)
    except SchemaError:
        return {}
    out = {}
    for c, name in position.items():
        if name in _CODED or _is_bool_column(name):
            out[c] = "values"
        elif name in _NUMBER_COLUMNS:
            out[c] = "numbers"
    return out
