"""Ingest: raw register exports -> validated, pseudonymised parquet. Nothing is lost.

`ingest(raw_dir, out_dir)` (CLI: `povdyn ingest RAW_DIR --out OUT_DIR`) reads every
csv / xlsx (every sheet) / parquet file under RAW_DIR, recursively, and writes

* `OUT/panel.parquet`    the household-period panel (canonical columns, schema.py), with
                         key-value metadata `povdyn.register_kind` ("lists" / "full")
* `OUT/support.parquet`  programme rolls (household_id, program, start_period, ...)
* `OUT/totals.parquet`   household totals per commune and review, when a totals table
                         (Tỉnh, Xã, Năm/Kỳ, Tổng số hộ) is among the inputs: province,
                         province_2025, commune (null: province total), period (the panel's
                         type; a year's total is its Q4 on a quarterly panel), households
* `OUT/adoption.parquet` the commune programme adoption register, when one (Tỉnh, Xã,
                         Chương trình, Năm áp dụng) is among the inputs: province,
                         province_2025, district (null when not given), commune, program,
                         adoption_year (<NA>: never); the
                         event-study cohort (povdyn.programs.find_adoption)
* `OUT/quarantine.csv`   every rejected row: source_file, sheet, row, reason, values
* `OUT/ingest_summary.json` the counts below, per file and in total, and the register kind
                         (`register_kind`, `register_kind_by_province`, their counts).

Rules (issue 3 §5):

* A table is a register or a programme roll by its headers (schema.file_kind). Title
  rows above the header are skipped: the header is the row, among the first 30, with
  the most recognised column names. A list sheet without a period column takes its
  period from the title above the header ("DANH SÁCH ... NĂM 2025") or the sheet name
  ("2024", "2025Q3", "Quý 3/2025"); the summary says which (`period_source`), and rows
  with no period anywhere are quarantined with that reason. An `STT` column is ignored.
* The signature footer of official lists ("Người lập biểu", "(Ký, ghi rõ họ tên)", "Chủ
  tịch UBND xã", the date line, signers' names) is not data: from the first such row
  below the last data row to the end, rows are skipped and counted as `footer_rows`,
  like blank rows (cut_footer).
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
* Writes are atomic (temp file + os.replace) and deterministic: sorted rows, fixed row
  groups, no timestamps, so the same input gives the same bytes. While ingest runs, and
  after it fails, ingest_summary.json says "ok": false and why.
* Memory does not grow with the register (issue 11 §1): a csv is streamed in 16 MB
  blocks (a scan pass for the row count, footer and mark columns, then pieces of
  CHUNK_ROWS rows); each piece is checked in pandas and its good rows are spilled to
  parquet in a scratch folder beside the outputs. The steps across all rows (period
  frequency, exact duplicates, conflicts, register kind, sorting, writing panel.parquet
  and quarantine.csv) run in DuckDB with a memory limit (INGEST_MEMORY, spilling to
  disk) and stream out in record batches. Programme rolls and totals tables are small
  and stay in pandas. No SQL is built from paths or user text: files are passed through
  DuckDB's API, and only povdyn's own canonical column names reach SQL (_ident_sql).
* Key: privacy.load_key. A missing key file while OUT holds earlier data is an error
  (a new key would unlink every household from earlier quarters); `--new-key` starts
  afresh on purpose. An empty or short key is an error.
* Spreadsheet safety: text cells starting with = + - @ in quarantine.csv get a leading
  apostrophe (schema.spreadsheet_safe), so Excel shows them instead of running them.
* List-based registers (poor / near-poor rows only) are written as they are: reading
  absence as "not poor" is load_panel's job (absent_means="non_poor"), which it does when
  the recorded register kind is "lists" (register_kinds / classify_kind for the rule).
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import hmac
import io
import json
import os
import re
import shutil
import tempfile
import time
import unicodedata
import uuid
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
from .privacy import (IDENTIFIER_COLUMNS, PSEUDONYM_HEX_CHARS, PSEUDONYM_PREFIX, load_key,
                      pseudonymise)

TABLE_SUFFIXES = {".csv", ".tsv", ".xlsx", ".xlsm", ".xls", ".parquet"}
HEADER_SEARCH_ROWS = 30
EXCEL_ENGINE = "calamine"  # python-calamine (Rust): about 5x openpyxl on list workbooks
BATCH_ROWS = 250_000  # rows checked at once (memory vs per-call overhead)
CHUNK_ROWS = 250_000  # rows of one large table turned into Python objects at once
QUARANTINE_LEAD = ["source_file", "sheet", "row", "reason"]
# provenance and per-row facts carried beside the checked values, never written to the
# panel: _exit marks a row whose "reason" was an exit ("Thoát nghèo"), not a removal
_PROVENANCE = ["_file", "_sheet", "_row", "_exit"]
# a 64-bit hash of the row's direct identifiers (name, ID card, phone, address), taken
# before they are dropped: two rows that differ only there are a conflict, not a copy.
# Kept in memory only, never written.
_IDENT = "_ident"
_CARRIED = _PROVENANCE + [_IDENT]


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
    footer_rows: int = 0
    header_row: int | None = None
    period_source: str | None = None
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
    register_kind: str | None = None
    register_kind_by_province: dict = field(default_factory=dict)
    register_kind_counts: dict = field(default_factory=dict)
    totals_rows: int = 0
    adoption_rows: int = 0
    file_hashes: dict = field(default_factory=dict)
    reused_files: list = field(default_factory=list)
    seconds: float = 0.0

    def _totals(self, kind: str) -> dict:
        rows = [t for t in self.tables if t.kind == kind]
        return {k: sum(getattr(t, k) for t in rows)
                for k in ("rows_in", "loaded", "quarantined", "duplicates_dropped", "blank_rows",
                          "footer_rows")}

    @property
    def register(self) -> dict:
        return self._totals("register")

    @property
    def support(self) -> dict:
        return self._totals("support")

    @property
    def totals(self) -> dict:
        return self._totals("totals")

    @property
    def adoption(self) -> dict:
        return self._totals("adoption")

    @property
    def rows_in(self) -> int:
        return sum(t.rows_in for t in self.tables if t.kind)

    @property
    def rows_quarantined(self) -> int:
        return sum(t.quarantined for t in self.tables if t.kind)

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
                    "blank rows and signature-footer rows are not data and not in rows_in",
            "register_kind": self.register_kind,
            "register_kind_by_province": self.register_kind_by_province,
            "register_kind_counts": self.register_kind_counts,
            "register": self.register,
            "support": self.support,
            "totals": self.totals,
            "adoption": self.adoption,
            "panel_rows": self.panel_rows,
            "support_rows": self.support_rows,
            "totals_rows": self.totals_rows,
            "adoption_rows": self.adoption_rows,
            "households": self.households,
            "frequency": self.frequency,
            "periods": [str(p) for p in self.periods],
            "errors": self.errors,
            "ignored_files": self.ignored_files,
            "file_sha256": self.file_hashes,
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
            f"  household totals rows in {self.totals['rows_in']:,} = loaded "
            f"{self.totals['loaded']:,} + quarantined {self.totals['quarantined']:,} + exact "
            f"duplicates dropped {self.totals['duplicates_dropped']:,}",
            f"  commune adoption rows in {self.adoption['rows_in']:,} = loaded "
            f"{self.adoption['loaded']:,} + quarantined {self.adoption['quarantined']:,} + exact "
            f"duplicates dropped {self.adoption['duplicates_dropped']:,}",
            f"  panel: {self.panel_rows:,} rows, {self.households:,} households, "
            f"{len(self.periods)} {self.frequency or ''} periods"
            + (f" ({self.periods[0]}–{self.periods[-1]})" if self.periods else ""),
        ]
        if self.register_kind or self.register_kind_by_province:
            kind_words = {"lists": "lists (poor/near-poor lists: absent means not poor)",
                          "full": "full panel (every household at every review)"}
            lines.append(f"  register kind: {kind_words.get(self.register_kind, 'NOT DECIDED')}")
        if not self.totals_rows and self.register_kind == "lists":
            lines.append("  no household totals table (Tổng số hộ): reports show counts and "
                         "flows, not rates")
        blank = sum(t.blank_rows for t in self.tables if t.kind)
        if blank:
            lines.append(f"  blank rows skipped: {blank:,}")
        footer = sum(t.footer_rows for t in self.tables if t.kind)
        if footer:
            lines.append(f"  signature-footer rows skipped (not data): {footer:,}")
        sources = Counter((t.period_source or "").split(":")[0] for t in self.tables
                          if t.kind in ("register", "totals") and t.period_source != "column")
        if sources:
            lines.append("  period taken from " + ", ".join(
                f"{k or 'nowhere (rows quarantined)'}: {v} table(s)"
                for k, v in sorted(sources.items())) + " (per table in ingest_summary.json)")
        if self.rows_quarantined:
            lines.append(f"  quarantined rows with reasons: {self.out_dir / 'quarantine.csv'}")
        if self.reused_files:
            lines.append(f"  unchanged since the last run (checked rows reused): "
                         f"{len(self.reused_files)} file(s); read: "
                         f"{len(self.file_hashes) - len(self.reused_files)} new or changed")
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
    title: list[str] = field(default_factory=list)  # text of the rows above the header
    footer_rows: int = 0  # signature footer rows cut from the end (not data)
    footer_blank_rows: int = 0  # blank lines inside that footer
    first_row: int = 1  # row number of the first data row (streamed csv: rows is None)


CSV_BLOCK_BYTES = 1 << 24
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
        self.uniques = uniques  # column -> set of trimmed values, or None (too many)
        # column -> Counter of raw cells (every cell, or for number columns the cells
        # the Arrow fast path does not read), or None (more than LOOKUP_UNIQUES): what
        # the engine path parses in Python, once per distinct value
        self.lookups = lookups or {}
        self.limit = num_rows

    @classmethod
    def scan(cls, open_stream, names: list[str], mark_candidates: list[str],
             lookups: dict | None = None) -> "_CsvStream":
        num_rows, tail, uniques = 0, [], {n: set() for n in mark_candidates}
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
                values = pc.unique(pc.utf8_trim_whitespace(batch.column(name))).to_pylist()
                seen.update(values)
                if len(seen) > MARK_UNIQUES:
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


def _read_csv(path: Path, rel: str) -> list[RawTable]:
    # Python's csv refuses fields over 131,072 characters by default; pyarrow has no such
    # limit, and a long note must not stop the file (it is an ignored column, or the row
    # is checked like any other)
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))
    encoding = _detect_encoding(path)
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

    def open_stream():
        return pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(
                skip_rows=first_data, column_names=names,
                encoding="utf8" if encoding.startswith("utf-8") else encoding,
                block_size=CSV_BLOCK_BYTES),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, ignore_empty_lines=False,
                                              invalid_row_handler=invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names}, strings_can_be_null=False,
                quoted_strings_can_be_null=False),
        )

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
    if isinstance(data, _CsvStream):
        columns = [name for name, seen in data.uniques.items() if seen is not None]
    else:
        columns = data.column_names if isinstance(data, pa.Table) else data.columns
    for name in columns:
        if isinstance(data, _CsvStream):
            uniques = list(data.uniques[name])
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


def _normalised_identifier(cells: pa.Array) -> pa.Array:
    """An identifier cell as compared for duplicates: NFC (in Arrow: several times
    faster than DuckDB's nfc_normalize on Vietnamese names), trimmed."""
    return pc.utf8_trim_whitespace(pc.utf8_normalize(cells, "NFC"))


def _identifier_hash_sql(columns: list[str]) -> str:
    """The SQL of the identifier hash over normalised cells (_normalised_identifier):
    one definition for both paths, so that a copy read from a workbook equals one read
    from a csv."""
    if not columns:
        return "0::UBIGINT"
    return f"hash({', '.join(_ident_sql(c) for c in columns)})"


def _identifier_hash(cells: pd.DataFrame) -> np.ndarray:
    """uint64 per row over the identifier cells as written (NFC, trimmed; blank = ""):
    DuckDB's hash() of the normalised cells, the same function the engine path uses
    (a Python call per cell costs seconds per million rows)."""
    import duckdb

    parts = {}
    for i, col in enumerate(cells.columns):
        values = cells[col].to_numpy(dtype=object)
        try:
            arr = pa.array(values, type=pa.string(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # numbers or dates from a workbook
            arr = pa.array([None if schema.is_blank(v) else str(v) for v in values],
                           type=pa.string())
        parts[f"_id{i}"] = _normalised_identifier(arr).fill_null("")
    con = duckdb.connect()
    try:
        con.register("_ids", pa.table(parts))
        hashed = con.execute(f"SELECT {_identifier_hash_sql(list(parts))} "
                             "FROM _ids").fetchnumpy()
    finally:
        con.close()
    return next(iter(hashed.values())).astype("uint64")


def _table_period(raw: RawTable) -> tuple[object, str | None, str]:
    """(period, where it came from, reason when there is none) for a table without a
    period column: the title above the header ("... NĂM 2025") or the sheet name
    ("2024", "Quý 3-2025"). When both give one, a quarter inside the other's year is the
    more precise; two that disagree are no period at all (rows quarantined)."""
    from_title = title_period(raw.title)
    from_sheet = None
    if raw.sheet is not None:
        value = schema.period_value(raw.sheet)
        if value is not schema._INVALID and value is not None:
            from_sheet = value
    if from_title is None and from_sheet is None:
        return None, None, ("period: no period column, and neither the title above the header "
                            "nor the sheet name gives a year or quarter")
    if from_sheet is None:
        return from_title[0], f"title: {from_title[1]!r}", ""
    if from_title is None or from_title[0] == from_sheet:
        return from_sheet, f"sheet name: {raw.sheet!r}", ""
    t, sh = from_title[0], from_sheet

    def year_of(v):
        return v if isinstance(v, int) else int(str(v)[:4])

    if isinstance(t, int) and not isinstance(sh, int) and year_of(sh) == t:
        return sh, f"sheet name: {raw.sheet!r} (in the title's year {t})", ""
    if isinstance(sh, int) and not isinstance(t, int) and year_of(t) == sh:
        return t, f"title: {from_title[1]!r} (in the sheet name's year {sh})", ""
    return None, None, (f"period: the title says {t} ({from_title[1]!r}) but the sheet name "
                        f"says {sh} ({raw.sheet!r})")


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
                         header_row=raw.header_row, footer_rows=raw.footer_rows)
    headers_found = [str(c) for c in raw.header if c is not None][:12]
    try:
        position, report.ignored_columns = _column_names(raw.header)
    except SchemaError as exc:
        report.error = str(exc)
        return _Prepared(report)
    kind = schema.file_kind(position.values())
    blank = _blank_rows(raw.data)
    report.blank_rows = int(blank.sum()) + raw.footer_blank_rows
    data, rows_no = raw.data.loc[~blank], raw.rows[~blank]
    if kind is None:
        if len(data) or raw.malformed:
            report.error = ("not a register, programme roll, household totals table or "
                            "commune adoption register: need Mã hộ plus Năm/Kỳ or Phân loại hộ "
                            "(register), Chương trình (programme roll), Tỉnh and Tổng số hộ "
                            "(totals), or Chương trình and Năm áp dụng without Mã hộ "
                            "(adoption); "
                            f"headers found: {headers_found}")
        return _Prepared(report)
    keep = {c: name for c, name in position.items() if name not in IDENTIFIER_COLUMNS}
    ident_cols = [c for c, name in position.items() if name in IDENTIFIER_COLUMNS]
    canon = data[list(keep)].rename(columns=keep)
    canon[_IDENT] = _identifier_hash(data[ident_cols]) if ident_cols else np.uint64(0)
    for c, name in keep.items():  # "x"-marked yes/no columns: blank means "no"
        if c in raw.mark_columns and (name in schema.BOOL_COLUMNS or name.startswith("dep_")):
            values = canon[name]
            blank = values.isna() | (values.astype(str).str.strip() == "")
            canon[name] = values.where(~blank, "Không")
    canon = _combine_quarter(canon)
    if "period" in canon.columns:
        report.period_source = "column"
    elif kind in ("register", "totals"):
        period, report.period_source, missing_reason = _table_period(raw)
        canon["period"] = period
        canon["_period_missing"] = missing_reason
    required = {"register": schema.REQUIRED_PANEL_COLUMNS,
                "support": schema.REQUIRED_SUPPORT_COLUMNS,
                "totals": schema.REQUIRED_TOTALS_COLUMNS,
                "adoption": schema.REQUIRED_ADOPTION_COLUMNS}[kind]
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
    canon["_exit"] = False
    if kind == "register" and "removal_reason" in canon.columns:
        reasons, _ = schema.parse_removal_reason(canon["removal_reason"])
        canon["_exit"] = reasons == schema._EXIT
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
    checked_cols = [c for c in canon.columns if not c.startswith("_")]
    good, rejected = schema.check_rows(canon[checked_cols], kind=kind, programs=programs)
    if "_period_missing" in canon.columns and len(rejected):  # say why there is no period
        why = canon.loc[rejected.index, "_period_missing"]
        rejected["reason"] = [r.replace("period: blank", w) if w else r
                              for r, w in zip(rejected["reason"], why)]
    if kind in ("register", "totals", "adoption") and len(good):
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
    if "household_id" in good.columns:
        good["household_id"] = pseudonymise(good["household_id"], key)
    for col in _CARRIED:
        good[col] = canon.loc[good.index, col].to_numpy()
    return good.reset_index(drop=True), quarantine.reset_index(drop=True)


# ---------------------------------------------------------------------------------
# Checking a csv register in the engine (issue 11 §1)
# ---------------------------------------------------------------------------------
# The per-row work of check_rows, as one DuckDB query over the csv's Arrow record
# batches: coded columns (periods, statuses, provinces, communes, yes/no, household
# size...) are parsed in Python once per DISTINCT cell by the very functions check_rows
# uses (the scan pass collects the distinct cells) and joined back; high-cardinality
# columns use vectorised expressions (ids trimmed in Arrow and pseudonymised with HMAC-
# SHA256 written in SQL, numbers by schema.arrow_number_fast_path); a `_bad` flag marks
# every row check_rows could reject. Those rows only (few) go through check_batch,
# which formats their reasons and has the last word; the rest are written to the spill
# as they come. Same outputs as the pandas path, byte for byte (tested).
ENGINE_CHECKS = True  # False: every table takes the pandas path (tests compare the two)
ENGINE_FETCH_ROWS = 1 << 17  # rows per record batch handed from DuckDB back to Python
_CODED = {"period", "status", "removal_reason", "province", "region", "district", "commune",
          "area", "household_size"}  # parsed once per distinct cell
_NUMBERS = {"income_pc_month": "v < 0", "weight": "v <= 0"}  # fast path + distinct rest
_RECORDED_ONLY = {"province_2025"}  # recomputed from province (check_batch)


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
        elif name in _NUMBERS:
            out[c] = "numbers"
    return out


def _hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """HMAC's inner and outer padded keys (RFC 2104, SHA-256 block of 64 bytes), so that
    SQL can compute privacy.pseudonymise's HMAC-SHA256 as sha256(opad || sha256(ipad || m))."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def _coded_lookup(name: str, cells: list, mark: bool) -> pa.Table:
    """raw cell -> parsed value(s) and `bad` (check_rows would flag the row), computed
    by check_rows' own parsers over the distinct cells."""
    raw = pd.Series(cells, dtype=object)
    out = {"raw": pa.array(cells, type=pa.string())}
    if name == "period":
        values, bad = schema.parse_period_column(raw)
        parsed = [None if v is None else parse_period(v) for v in values]
        out["v"] = pa.array([None if v is None else str(v) for v in values], pa.string())
        out["o"] = pa.array([None if p is None else p[1] for p in parsed], pa.int64())
        out["q"] = pa.array([None if p is None else p[0] == "quarter" for p in parsed], pa.bool_())
        bad = bad | pd.isna(values)
    elif name in ("status", "removal_reason", "area"):
        parse = {"status": schema.parse_status, "removal_reason": schema.parse_removal_reason,
                 "area": schema.parse_area}[name]
        values, bad = parse(raw)
        out["v"] = pa.array(list(values), pa.string())
    elif name == "province":
        values, _ = schema._text(raw)
        spelled, to_2025, unknown = _provinces(pd.Series(values, dtype=object))
        out["v"] = pa.array([spelled.get(v) for v in values], pa.string())
        out["p2025"] = pa.array([to_2025.get(v) for v in values], pa.string())
        bad = pd.isna(values) | np.array([v in unknown for v in values], dtype=bool)
    elif name in ("region", "district", "commune"):
        values, _ = schema._text(raw)
        out["v"] = pa.array(list(values), pa.string())
        bad = np.zeros(len(cells), dtype=bool)
    elif name == "household_size":
        values, bad = schema.parse_number(raw)
        ok = ~bad & ~np.isnan(values)
        bad = bad | (ok & ((values < 1) | (values > 100) | (np.mod(values, 1) != 0)))
        out["v"] = pa.array(np.where(ok, values, 0).astype("int64"), pa.int64(),
                            mask=~ok)
    elif _is_bool_column(name):  # schema.parse_bool; in a marks-only column blank = "no"
        results = [schema._bool_value(v) for v in raw]
        bad = np.array([r is schema._INVALID for r in results], dtype=bool)
        out["v"] = pa.array([None if r is schema._INVALID else (False if r is None and mark
                                                                 else r)
                             for r in results], pa.bool_())
    else:  # _NUMBERS: the cells the Arrow fast path does not read
        values, bad = schema.parse_number(raw)
        ok = ~bad & ~np.isnan(values)
        out["v"] = pa.array(values, pa.float64(), mask=~ok)
    out["bad"] = pa.array(np.asarray(bad, dtype=bool))
    return pa.table(out)


def _data_cells(stream: _CsvStream) -> dict[str, list]:
    """{column: distinct cells of the data rows} for the coded columns: the scan's
    counts less the cells of the signature footer cut below the data (cut_footer)."""
    cut = stream.limit - (stream.num_rows - stream.tail.num_rows)  # first footer row in tail
    footer = stream.tail.slice(max(cut, 0))
    out = {}
    for c, counts in stream.lookups.items():
        counts = Counter(counts)
        if footer.num_rows and c in footer.column_names:
            counts.subtract(Counter(footer.column(c).to_pylist()))
        out[c] = [v for v, n in counts.items() if n > 0]
    return out


def _marks_only(cells: list) -> bool:
    """schema.parse_bool's test: every non-blank cell is a mark."""
    non_blank = [v for v in cells if schema._bool_value(v) is not None]
    return bool(non_blank) and all(schema._is_mark(v) for v in non_blank)


def _engine_eligible(raw: RawTable) -> bool:
    if not ENGINE_CHECKS or not isinstance(raw.data, _CsvStream):
        return False
    try:
        position, _ = _column_names(raw.header)
    except SchemaError:
        return False
    names = set(position.values())
    return (schema.file_kind(names) == "register" and "period" in names
            and "_quarter" not in names
            and all(v is not None for v in raw.data.lookups.values()))


def _engine_check_register(raw: RawTable, con, spill: "_Spill", key: bytes,
                           programs) -> TableReport:
    """Check a streamed csv register in DuckDB (see the section comment); returns its
    report (rows_in, blank and footer rows; loaded and quarantined come later, from
    the spill, as for every table)."""
    raw = cut_footer(raw)
    stream: _CsvStream = raw.data
    cells = _data_cells(stream)
    report = TableReport(source_file=raw.source_file, sheet=raw.sheet,
                         header_row=raw.header_row, footer_rows=raw.footer_rows,
                         kind="register", period_source="column")
    position, report.ignored_columns = _column_names(raw.header)
    keep = {c: name for c, name in position.items() if name not in IDENTIFIER_COLUMNS}
    # yes/no columns whose non-blank cells are all marks ("x", "✓"): blank means "no"
    # (schema.parse_bool's rule, over the whole table's data rows)
    marks = {c for c, name in keep.items() if _is_bool_column(name) and c in cells
             and _marks_only(cells[c])}
    ident_cols = [c for c, name in position.items() if name in IDENTIFIER_COLUMNS]
    hid = next(c for c, name in keep.items() if name == "household_id")
    numbers = [c for c, name in keep.items() if name in _NUMBERS]
    all_cols = [f"c{i}" for i in range(len(raw.header))]
    counts = {"rows": 0, "blank": 0}

    def batches():
        start = 0
        for batch in stream.batches():
            n = batch.num_rows
            arrays = {c: batch.column(c) for c in keep}
            arrays["_hid"] = pc.utf8_trim_whitespace(batch.column(hid))
            # a blank line: every cell empty or spaces (_blank_rows); only a row without
            # a household id can be one, so the other cells are looked at only there
            blank = pc.equal(pc.utf8_length(arrays["_hid"]), 0)
            if pc.any(blank).as_py():
                for c in all_cols:
                    if c != hid:
                        cells = pc.if_else(blank, batch.column(c), "")
                        empty = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(cells)), 0)
                        blank = pc.and_(blank, empty)
            for c in numbers:
                arrays[f"_n_{c}"], arrays[f"_f_{c}"] = schema.arrow_number_fast_path(
                    batch.column(c))
            for i, c in enumerate(ident_cols):  # normalised as _identifier_hash does
                arrays[f"_id{i}"] = _normalised_identifier(batch.column(c))
            arrays["_row"] = pa.array(np.arange(start, start + n, dtype="int64")
                                      + raw.first_row)
            start += n
            out = pa.RecordBatch.from_pydict(arrays)
            n_blank = pc.sum(blank).as_py() or 0
            if n_blank:
                counts["blank"] += n_blank
                out = out.filter(pc.invert(blank))
            counts["rows"] += out.num_rows
            yield out

    pieces = batches()
    first = next(pieces, None)
    if first is None:  # a header and nothing else
        report.blank_rows = raw.footer_blank_rows
        return report

    def every_batch():
        yield first
        yield from pieces

    # coded columns: parsed once per distinct cell, joined back
    joins, lookups = [], []
    alias = {}
    for c, name in keep.items():
        if c not in cells or name in _RECORDED_ONLY:
            continue
        view = f"_lk_{c}"
        con.register(view, _coded_lookup(name, sorted(stream.lookups[c]), c in marks))
        lookups.append(view)
        alias[name] = _ident_sql(f"l_{c}")
        joins.append(f"LEFT JOIN {_ident_sql(view)} {alias[name]} "
                     f"ON s.{_ident_sql(c)} = {alias[name]}.raw")

    def bad(name):  # a cell the lookup does not know (never expected) is checked in Python
        return f"coalesce({alias[name]}.bad, true)"

    # household id: blank, or short without a digit (a placeholder such as "NA", "-"?)
    terms = ["(s._hid = '' OR (length(s._hid) <= 4 AND NOT regexp_matches(s._hid, '[0-9]')))",
             bad("period"), bad("status"), bad("province")]
    select = [f"$prefix || left(sha256($opad || unhex(sha256($ipad || encode(s._hid)))), "
              f"$hex_chars) AS household_id",
              f"{alias['period']}.v AS period", f"{alias['period']}.o AS _order",
              f"{alias['period']}.q AS _is_quarter"]
    st = alias["status"]
    if "removal_reason" in alias:  # check_rows: exits are non-poor rows, removals no status
        rr = alias["removal_reason"]
        exit_ = f"coalesce({rr}.v = $exit, false)"
        removal = f"coalesce({rr}.v <> $exit, false)"
        status = (f"CASE WHEN {removal} THEN NULL WHEN {exit_} AND {st}.v IS NULL "
                  f"THEN 'non_poor' ELSE {st}.v END")
        terms.append(bad("removal_reason"))
        select.append(f"CASE WHEN {exit_} THEN NULL ELSE {rr}.v END AS removal_reason")
    else:
        exit_, removal, status = "false", "false", f"{st}.v"
    terms.append(f"(({status}) IS NULL AND NOT {bad('status')} AND NOT {removal})")
    select += [f"{status} AS status", f"{exit_} AS _exit",
               f"{alias['province']}.v AS province",
               f"{alias['province']}.p2025 AS province_2025"]
    for c, name in keep.items():
        if name in ("household_id", "period", "status", "removal_reason", "province"):
            continue
        if name in _NUMBERS:
            fast, number = _ident_sql(f"_f_{c}"), _ident_sql(f"_n_{c}")
            value = f"(CASE WHEN s.{fast} THEN s.{number} ELSE {alias[name]}.v END)"
            select.append(f"{value} AS {_ident_sql(name)}")
            terms.append(f"(NOT s.{fast} AND {bad(name)})")
            terms.append(f"coalesce({_NUMBERS[name].replace('v', value)}, false)")
        elif name in alias:
            select.append(f"{alias[name]}.v AS {_ident_sql(name)}")
            terms.append(bad(name))
    ident = _identifier_hash_sql([f"_id{i}" for i in range(len(ident_cols))])
    select += ["$file AS _file", "'' AS _sheet", "s._row AS _row", f"{ident} AS {_IDENT}"]
    raw_cols = [_ident_sql(f"_raw_{c}") for c in keep]
    sql = (f"SELECT * EXCLUDE ({', '.join(raw_cols)}), "
           + ", ".join(f"CASE WHEN _bad THEN {r} END AS {r}" for r in raw_cols)
           + f" FROM (SELECT {', '.join(select)}, ({' OR '.join(terms)}) AS _bad, "
           + ", ".join(f"s.{_ident_sql(c)} AS {r}" for c, r in zip(keep, raw_cols))
           + f" FROM _src s {' '.join(joins)})")
    params = {"file": raw.source_file, "exit": schema._EXIT, "prefix": PSEUDONYM_PREFIX,
              "hex_chars": PSEUDONYM_HEX_CHARS}
    params["ipad"], params["opad"] = _hmac_pads(key)
    params = {k: v for k, v in params.items() if f"${k}" in sql}  # DuckDB refuses unused ones
    con.register("_src", pa.RecordBatchReader.from_batches(first.schema, every_batch()))
    path = spill.part_path("register")
    try:
        # every row to the spill part, written by DuckDB's parallel parquet writer; the
        # register stage reads only the rows not flagged (_register_view)
        con.sql(sql, params=params).write_parquet(str(path), compression="lz4")
        spill.add_part("register", path, [raw.source_file])
        flagged = con.read_parquet(str(path)).filter("_bad").to_arrow_reader(BATCH_ROWS)
        _engine_recheck(flagged, keep, marks, spill, key, programs)
        del flagged  # done: the connection takes new work
    finally:
        con.unregister("_src")
        for view in lookups:
            con.unregister(view)
    report.rows_in = counts["rows"]
    report.blank_rows = counts["blank"] + raw.footer_blank_rows
    return report


def _engine_recheck(reader, keep: dict, marks, spill: "_Spill", key: bytes, programs) -> None:
    """The rows the engine flagged `_bad`, put back into the shape prepare_table gives
    (raw cells under canonical names, provenance) and checked by check_batch, BATCH_ROWS
    at a time: its verdict and reasons are the ones kept (good rows go to a new part)."""
    raw_cols = {f"_raw_{c}": name for c, name in keep.items()}
    for batch in reader:
        if not batch.num_rows:
            continue
        frame = batch.select(list(raw_cols)).to_pandas().rename(columns=raw_cols)
        for c, name in keep.items():  # prepare_table: "x"-marked columns, blank = "Không"
            if c in marks and _is_bool_column(name):
                cells = frame[name]
                frame[name] = cells.where(cells.str.strip() != "", "Không")
        for col in (_IDENT, "_file", "_sheet", "_row", "_exit"):
            frame[col] = batch.column(col).to_numpy(zero_copy_only=False)
        good, quarantine = check_batch(frame, "register", key, programs)
        spill.add_register(good)
        spill.add_quarantine(quarantine)


# ---------------------------------------------------------------------------------
# Checks across tables
# ---------------------------------------------------------------------------------
def _as_quarantine(rows: pd.DataFrame, reason: pd.Series | str) -> pd.DataFrame:
    out = pd.DataFrame({"source_file": rows["_file"], "sheet": rows["_sheet"],
                        "row": rows["_row"], "reason": reason})
    for col in rows.columns:
        if col not in _CARRIED and col not in _DERIVED and col != "province_2025":
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


def _duplicates(frame: pd.DataFrame, key: list[str], conflicts: bool,
                what: str = "the same household and period", identifiers: bool = True):
    """(kept, quarantine rows, dropped provenance) for duplicated keys.

    Exact duplicates (same values in every data column) keep their first copy in file /
    sheet / row order; if `conflicts`, copies of a key that still differ are all
    quarantined with a reason naming the columns that differ and the other copies."""
    # canonical order: a reason must not depend on the column order of the files
    data_cols = schema.column_order([c for c in frame.columns if c not in _PROVENANCE
                                     and (identifiers or c != _IDENT)])
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
            detail = "; ".join(
                "identifiers (name, ID card, phone or address) differ" if c == _IDENT else
                f"{c} {_raw_text(row[c])!r} vs {', '.join(repr(_raw_text(v)) for v in others[c])}"
                for c in differ[:4])
            reasons[idx] = (f"{'+'.join(key)}: {what} appear "
                            f"again with different values ({detail}) at {where}")
    reason = pd.Series(reasons).reindex(clashing.index)
    return frame.loc[~clash], _as_quarantine(clashing, reason), dropped


# ---------------------------------------------------------------------------------
# The register on disk: bounded memory at any size (issue 11 §1)
# ---------------------------------------------------------------------------------
INGEST_MEMORY = "1GB"  # DuckDB's share; it spills to disk beyond this
WRITE_BATCH_ROWS = 1 << 20  # rows per parquet row group of panel.parquet
_DERIVED = ["_order", "_is_quarter"]  # period index and frequency, for sorting and checks
_SAFE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def _ident_sql(name: str) -> str:
    """A column name in SQL. Only povdyn's own canonical names reach SQL (dep_* names are
    folded to [a-z0-9_]); anything else is refused rather than pasted."""
    if not _SAFE_NAME.match(name):
        raise PovdynError(f"internal: unexpected column name {name!r}")
    return f'"{name}"'


class _Spill:
    """Checked register rows and quarantine rows as parquet parts in a scratch folder:
    memory holds one batch at a time, DuckDB does the work across batches."""

    KINDS = ("register", "quarantine", "support", "totals", "adoption", "quarantine_run")

    def __init__(self, root: Path):
        self.root = root
        self.parts = {kind: [] for kind in self.KINDS}
        self.part_files: dict[Path, list[str]] = {}  # part -> source files of its rows
        for name in self.parts:
            (root / name).mkdir(parents=True, exist_ok=True)

    def part_path(self, kind: str) -> Path:
        """A new part's path (written by the caller, then add_part)."""
        return self.root / kind / f"part-{len(self.parts[kind]):06d}-{uuid.uuid4().hex[:8]}.parquet"

    def add_part(self, kind: str, path: Path, files: list[str]) -> None:
        self.parts[kind].append(path)
        self.part_files[path] = sorted(files)

    def _write(self, kind: str, frame: pd.DataFrame) -> None:
        path = self.root / kind / f"part-{len(self.parts[kind]):06d}.parquet"
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
        self.parts[kind].append(path)
        file_col = "source_file" if kind.startswith("quarantine") else "_file"
        self.part_files[path] = sorted(set(frame[file_col]))

    def add_small(self, kind: str, good: pd.DataFrame) -> None:
        """Checked rows of a programme roll or totals table (kept for the cache)."""
        if len(good):
            self._write(kind, good)

    def add_register(self, good: pd.DataFrame) -> None:
        if good.empty:
            return
        frame = good.copy()
        codes, uniques = pd.factorize(frame["period"])
        parsed = [parse_period(u) for u in uniques]
        frame["period"] = np.array([str(u) for u in uniques], dtype=object)[codes]
        frame["_order"] = np.array([i for _, i in parsed], dtype="int64")[codes]
        frame["_is_quarter"] = np.array([f == "quarter" for f, _ in parsed], dtype=bool)[codes]
        frame[_IDENT] = frame[_IDENT].astype("uint64")
        frame["_exit"] = frame["_exit"].astype(bool)
        self._write("register", frame)

    def add_quarantine(self, frame: pd.DataFrame, run_level: bool = False) -> None:
        """Rejected rows. Those found by checks across the whole run (odd periods,
        conflicts) are run_level: recomputed every run, never cached with a file."""
        if frame is None or frame.empty:
            return
        out = pd.DataFrame(index=frame.index)
        for col in frame.columns:
            if col == "row":
                out[col] = frame[col].astype("int64")
            else:
                out[col] = frame[col].map(lambda v: "" if schema.is_blank(v) and not
                                          isinstance(v, str) else str(v)).astype(object)
        self._write("quarantine_run" if run_level else "quarantine", out)


def _duckdb(scratch: Path):
    import duckdb

    from .config import settings

    con = duckdb.connect(config={"memory_limit": INGEST_MEMORY,
                                 "threads": max(1, settings().duckdb_threads),
                                 "temp_directory": str(scratch / "duckdb"),
                                 "preserve_insertion_order": True})
    try:
        con.execute("SET enable_progress_bar = false")
    except duckdb.InvalidInputException:  # refused inside Jupyter kernels, where it is off
        pass
    return con


def _view_columns(con, view: str) -> list[str]:
    result = con.execute(f"SELECT * FROM {_ident_sql(view)} LIMIT 0")
    names = [d[0] for d in result.description]
    result.fetchall()  # finish the result: DuckDB refuses new work on a pending one
    return names


def _count_by_table(con, sql: str, params=()) -> Counter:
    return Counter({(f, s): int(n) for f, s, n in con.execute(sql, params).fetchall()})


@dataclass
class _RegisterResult:
    frequency: str | None = None
    rows: int = 0
    households: int = 0
    periods: list = field(default_factory=list)
    loaded: Counter = field(default_factory=Counter)
    dropped: Counter = field(default_factory=Counter)
    quarantine: list = field(default_factory=list)  # small pandas frames (odd periods, clashes)
    kind: tuple = (None, {}, {}, [])
    write: object = None  # callable(path, metadata) writing panel.parquet
    unplaced: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["province", "district", "commune", "reason", "candidates"]))


COMMUNE_2025_COLUMNS = ["commune_2025", "commune_code", "commune_2025_basis"]


def _communes_2025(con, columns: list[str]) -> pd.DataFrame:
    """The one place where ingest adds the 2025 commune (issue 13 §1): the distinct
    (province, district, commune, period) names of the checked rows are mapped in
    pandas through the official crosswalk (povdyn.geo.commune_names_2025) and joined
    back in DuckDB; a household's rows before July 2025 then take the commune it was
    first recorded in after it (geo.panel_commune_2025 is the same rule in pandas).
    Returns the names that could not be placed (rows kept with "? name")."""
    from .geo import commune_names_2025

    district = "district" if "district" in columns else "CAST(NULL AS VARCHAR) AS district"
    names = con.execute(f"SELECT DISTINCT province, {district}, commune, _order, period "
                        "FROM firsts ORDER BY ALL").df()
    names["district"] = names["district"].astype(object).where(names["district"].notna(), None)
    mapped = commune_names_2025(names)
    con.register("_names_2025_frame", mapped[[
        "province", "district", "commune", "_order", "commune_2025", "commune_code",
        "commune_2025_basis", "is_post_merger"]])
    con.execute("CREATE OR REPLACE TEMP TABLE names_2025 AS SELECT * FROM _names_2025_frame")
    con.unregister("_names_2025_frame")
    same_district = ("f.district IS NOT DISTINCT FROM m.district" if "district" in columns
                     else "m.district IS NULL")
    join = (f"LEFT JOIN names_2025 m ON f.province IS NOT DISTINCT FROM m.province "
            f"AND {same_district} AND f.commune IS NOT DISTINCT FROM m.commune "
            "AND f._order = m._order")
    # a household's own new commune: where it was first recorded after the reform
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE own_2025 AS
        SELECT household_id, arg_min(m.commune_2025, f._order) AS own_c,
               arg_min(m.commune_code, f._order) AS own_k
        FROM firsts f {join}
        WHERE coalesce(m.is_post_merger, false) AND m.commune_2025_basis = 'recorded'
        GROUP BY household_id""")
    old = [c for c in COMMUNE_2025_COLUMNS if c in columns]
    exclude = f" EXCLUDE ({', '.join(old)})" if old else ""
    own = "NOT coalesce(m.is_post_merger, false) AND o.own_k IS NOT NULL"
    con.execute(f"""
        CREATE OR REPLACE TEMP VIEW firsts_2025 AS
        SELECT f.*{exclude},
               CASE WHEN {own} THEN o.own_c ELSE m.commune_2025 END AS commune_2025,
               CASE WHEN {own} THEN o.own_k ELSE m.commune_code END AS commune_code,
               CASE WHEN {own} THEN 'household' ELSE m.commune_2025_basis END
                 AS commune_2025_basis
        FROM firsts f {join} LEFT JOIN own_2025 o USING (household_id)""")
    unplaced = pd.DataFrame(mapped.attrs.get("unmatched", []),
                            columns=["province", "district", "commune", "reason", "candidates"])
    unplaced["candidates"] = unplaced["candidates"].map(lambda c: "; ".join(c or []))
    return unplaced


CACHE_VERSION = 1


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 24):
            digest.update(block)
    return digest.hexdigest()


def _cache_fingerprint(key: bytes, programs) -> str:
    """What cached checks depend on besides the file itself: the key (pseudonyms), the
    programme table, and the code that checks (ingest, schema, geo): any change in them
    and every file is read again."""
    digest = hashlib.sha256(f"povdyn ingest cache {CACHE_VERSION}".encode())
    digest.update(hmac.digest(key, b"povdyn ingest cache", hashlib.sha256))
    digest.update(json.dumps(programs, sort_keys=True).encode())
    here = Path(__file__).parent
    for name in ("ingest.py", "schema.py", "geo.py", "periods.py", "privacy.py"):
        if (here / name).exists():
            digest.update((here / name).read_bytes())
    return digest.hexdigest()


class _Cache:
    """OUT/.ingest-cache: each raw file's checked rows (register, programme, totals and
    quarantine parts) from earlier runs, keyed by its path and content hash (sha256), so
    that a re-run reads only new or changed files (issue 11 §2). The checks across files
    (frequency, duplicates, conflicts, kind) always run on all rows, so the outputs are
    the same bytes as a full re-ingest; a removed file's rows simply are not read."""

    KINDS = ("register", "quarantine", "support", "totals", "adoption")

    def __init__(self, out_dir: Path, fingerprint: str):
        self.dir = out_dir / ".ingest-cache"
        self.fingerprint = fingerprint
        self.manifest: dict = {}
        path = self.dir / "manifest.json"
        if path.exists():
            try:
                manifest = json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                manifest = {}
            if manifest.get("fingerprint") == fingerprint:
                self.manifest = manifest

    def entry(self, rel: str, sha: str) -> dict | None:
        entry = self.manifest.get("files", {}).get(rel)
        return entry if entry and entry.get("sha256") == sha else None

    def parts(self, kind: str, keep: set[str]) -> list[Path]:
        return [self.dir / name for name, files in
                sorted(self.manifest.get("parts", {}).get(kind, {}).items())
                if keep & set(files) and (self.dir / name).exists()]

    def save(self, files: dict, spill: "_Spill", keep: set[str]) -> None:
        """Keep the parts still holding rows of current files, add this run's parts."""
        self.dir.mkdir(parents=True, exist_ok=True)
        parts = {}
        for kind in self.KINDS:
            kept = {name: names for name, names in
                    self.manifest.get("parts", {}).get(kind, {}).items() if keep & set(names)}
            for path in spill.parts[kind]:
                name = f"{kind}-{uuid.uuid4().hex}.parquet"  # never an earlier part's name
                os.replace(path, self.dir / name)
                kept[name] = spill.part_files[path]
            parts[kind] = kept
        manifest = {"version": CACHE_VERSION, "fingerprint": self.fingerprint,
                    "files": files, "parts": parts}
        _write_json(manifest, self.dir / "manifest.json")
        used = {name for kind in parts.values() for name in kind}
        for stale in self.dir.glob("*.parquet"):
            if stale.name not in used:
                stale.unlink()


def _union_view(con, view: str, new_parts: list[Path], cached_parts: list[Path],
                file_col: str) -> bool:
    """Create `view` over this run's parts and, from the cache, the rows of unchanged
    files (temp table keep_files); False when there is nothing to read."""
    pieces = []
    if new_parts:
        con.read_parquet([str(p) for p in new_parts],
                         union_by_name=True).create_view(f"{view}_new", replace=True)
        pieces.append(f"SELECT * FROM {_ident_sql(view + '_new')}")
    if cached_parts:
        con.read_parquet([str(p) for p in cached_parts],
                         union_by_name=True).create_view(f"{view}_old", replace=True)
        pieces.append(f"SELECT * FROM {_ident_sql(view + '_old')} "
                      f"WHERE {_ident_sql(file_col)} IN (SELECT f FROM keep_files)")
    if not pieces:
        return False
    con.execute(f"CREATE OR REPLACE TEMP VIEW {_ident_sql(view)} AS "
                + " UNION ALL BY NAME ".join(pieces))
    return True


def _register_stage(con, spill: _Spill, cached: dict | None = None) -> _RegisterResult:
    """Across all checked register rows, in DuckDB: the period frequency (rows of the
    other frequency quarantined), exact duplicates dropped (first copy in file / sheet /
    row order kept), conflicting copies of a household and period quarantined, the
    register kind counted, and panel.parquet streamed out sorted by household and period.
    Same rules as _period_frequency and _duplicates, which check the small tables."""
    result = _RegisterResult()
    has_rows = _union_view(con, "reg_parts", spill.parts["register"],
                           (cached or {}).get("register", []), "_file")
    if has_rows:
        # engine parts hold every row of their file, flagged ones with their raw cells
        # (_engine_check_register): those were re-checked into parts of their own
        extra = [c for c in _view_columns(con, "reg_parts")
                 if c == "_bad" or c.startswith("_raw_")]
        exclude = f" EXCLUDE ({', '.join(_ident_sql(c) for c in extra)})" if extra else ""
        flagged = " WHERE NOT coalesce(_bad, false)" if "_bad" in extra else ""
        con.execute(f"CREATE OR REPLACE TEMP VIEW reg AS SELECT *{exclude} FROM reg_parts"
                    + flagged)
        has_rows = con.execute("SELECT count(*) FROM reg").fetchall()[0][0] > 0
    if not has_rows:
        result.write = lambda path, metadata: _write_parquet(
            _finish_panel(pd.DataFrame(columns=schema.REQUIRED_PANEL_COLUMNS + _CARRIED)),
            path, metadata)
        return result
    columns = _view_columns(con, "reg")
    n, n_quarter = con.execute("SELECT count(*), count(*) FILTER (WHERE _is_quarter) "
                               "FROM reg").fetchall()[0]
    quarterly = n_quarter * 2 > n
    result.frequency = "quarter" if quarterly else "year"
    if n_quarter not in (0, n):
        odd = con.execute("SELECT * FROM reg WHERE _is_quarter <> ?", [quarterly]).df()
        other = "a quarter" if not quarterly else "a year"
        reason = (f"period: {other} in a register whose other rows are "
                  f"{'quarterly' if quarterly else 'annual'}: " + odd["period"].astype(str))
        result.quarantine.append(_as_quarantine(odd, reason))
    data_cols = [c for c in columns if c not in _PROVENANCE and c not in _DERIVED]
    partition = ", ".join(_ident_sql(c) for c in data_cols)
    # Copies of a household and period are rare: find their keys with one narrow
    # aggregate, rank and compare only their rows, and read every other row straight
    # from the spill (views, not copies of the register)
    con.execute("CREATE OR REPLACE TEMP TABLE repeated AS SELECT household_id, period "
                "FROM reg WHERE _is_quarter = ? GROUP BY ALL HAVING count(*) > 1", [quarterly])
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE ranked AS SELECT *, row_number() OVER (PARTITION BY "
        f"{partition} ORDER BY _file, _sheet, _row) AS _copy FROM reg "
        "SEMI JOIN repeated USING (household_id, period) WHERE _is_quarter = ?", [quarterly])
    result.dropped = _count_by_table(
        con, "SELECT _file, _sheet, count(*) FROM ranked WHERE _copy > 1 GROUP BY ALL")
    con.execute("CREATE OR REPLACE TEMP TABLE repeated_firsts AS SELECT * EXCLUDE (_copy), "
                "count(*) OVER (PARTITION BY household_id, period) AS _n FROM ranked "
                "WHERE _copy = 1")
    con.execute("DROP TABLE ranked")
    con.execute("CREATE OR REPLACE TEMP VIEW firsts AS "
                "SELECT * FROM reg ANTI JOIN repeated USING (household_id, period) "
                f"WHERE {'' if quarterly else 'NOT '}_is_quarter "
                "UNION ALL BY NAME SELECT * EXCLUDE (_n) FROM repeated_firsts WHERE _n = 1")
    clash = con.execute("SELECT * EXCLUDE (_n) FROM repeated_firsts WHERE _n > 1").df()
    if len(clash):
        clash = clash.drop(columns=_DERIVED)
        clash["period"] = schema._period_dtype(clash["period"].map(
            lambda v: int(v) if not quarterly else v))
        _, clash_q, _ = _duplicates(clash, ["household_id", "period"], True)
        result.quarantine.append(clash_q)
    result.loaded = _count_by_table(
        con, "SELECT _file, _sheet, count(*) FROM firsts GROUP BY ALL")
    result.rows, result.households = con.execute(
        "SELECT count(*), count(DISTINCT household_id) FROM firsts").fetchall()[0]
    periods = con.execute("SELECT DISTINCT _order, period FROM firsts "
                          "ORDER BY _order").fetchall()
    result.periods = [p if quarterly else int(p) for _, p in periods]
    cells = con.execute("""
        SELECT province, source, what, count(*) AS n FROM (
          SELECT province_2025 AS province,
                 _file || CASE WHEN _sheet <> '' THEN ' [sheet ' || _sheet || ']' ELSE '' END
                   AS source,
                 CASE WHEN status = 'poor' THEN 'poor'
                      WHEN status = 'near_poor' THEN 'near_poor'
                      WHEN status = 'non_poor' AND (_exit OR coalesce(lag(status) OVER w
                           IN ('poor', 'near_poor'), false)) THEN 'exit_marks'
                      WHEN status = 'non_poor' THEN 'non_poor'
                      ELSE 'removals' END AS what
          FROM firsts
          WINDOW w AS (PARTITION BY household_id ORDER BY _order))
        GROUP BY ALL""").df()
    result.kind = decide_kinds(cells)
    loaded = "firsts"
    if "commune" in columns:
        result.unplaced = _communes_2025(con, columns)
        columns = [c for c in columns if c not in COMMUNE_2025_COLUMNS] + COMMUNE_2025_COLUMNS
        loaded = "firsts_2025"
    out_cols = schema.column_order([c for c in columns if not c.startswith("_")])
    nulls = dict(zip(out_cols, con.execute(
        "SELECT " + ", ".join(f"count(*) - count({_ident_sql(c)})" for c in out_cols)
        + f" FROM {loaded}").fetchall()[0]))
    target = _panel_schema(out_cols, nulls, quarterly)
    select = ", ".join(
        _ident_sql(c) if c != "period" or quarterly else "CAST(period AS BIGINT) AS period"
        for c in out_cols)

    def write(path: Path, metadata: dict) -> None:
        schema_md = target.with_metadata({**(target.metadata or {}),
                                          **{k.encode(): str(v).encode()
                                             for k, v in metadata.items()}})

        def stream(tmp):
            reader = con.sql(f"SELECT {select} FROM {loaded} "
                             "ORDER BY household_id, _order").to_arrow_reader(WRITE_BATCH_ROWS)
            with pq.ParquetWriter(tmp, schema_md, compression="zstd",
                                  write_statistics=True) as writer:
                for table in _fixed_size_tables(reader, WRITE_BATCH_ROWS):
                    writer.write_table(table.cast(schema_md), row_group_size=WRITE_BATCH_ROWS)

        _atomic_write_bytes(path, stream)

    result.write = write
    return result


def _fixed_size_tables(reader, rows: int):
    """Tables of exactly `rows` rows (the last one shorter) from a stream of record
    batches of any size: row groups, and so the file's bytes, must not depend on how
    DuckDB's threads happened to cut its output."""
    pending, count = [], 0
    for batch in reader:
        pending.append(batch)
        count += batch.num_rows
        while count >= rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, rows)
            rest = table.slice(rows)
            pending, count = rest.to_batches(), rest.num_rows
    if count:
        yield pa.Table.from_batches(pending)


def _panel_schema(columns: list[str], nulls: dict, quarterly: bool) -> pa.Schema:
    """The Arrow schema (with pandas metadata) _finish_panel's canonical dtypes give:
    strings, bool (nullable 'boolean' when a value is missing), Int64 household size,
    float64 money and weights, int64 years or 'YYYYQn' text."""
    dtypes = {}
    for col in columns:
        if col == "period":
            dtypes[col] = "object" if quarterly else "int64"
        elif col in schema.BOOL_COLUMNS or col.startswith("dep_"):
            dtypes[col] = "boolean" if nulls.get(col) else "bool"
        elif col in ("household_size",):
            dtypes[col] = "Int64"
        elif col in ("income_pc_month", "weight"):
            dtypes[col] = "float64"
        else:
            dtypes[col] = "object"
    empty = pd.DataFrame({c: pd.Series(["x"] if t == "object" else [], dtype=t).iloc[0:0]
                          for c, t in dtypes.items()})
    fields = [pa.field(c, pa.string() if t == "object" else
                       pa.bool_() if t in ("bool", "boolean") else
                       pa.int64() if t in ("int64", "Int64") else pa.float64())
              for c, t in dtypes.items()]
    return pa.Table.from_pandas(empty, schema=pa.schema(fields), preserve_index=False).schema


def _write_quarantine_csv(con, spill: _Spill, path: Path, cached: dict | None = None) -> Counter:
    """quarantine.csv from the spilled pieces, sorted by file, sheet and row, streamed;
    returns the count per (file, sheet)."""
    if not _union_view(con, "q", spill.parts["quarantine"] + spill.parts["quarantine_run"],
                       (cached or {}).get("quarantine", []), "source_file"):
        _write_csv(_empty(QUARANTINE_LEAD), path)
        return Counter()
    cols = _view_columns(con, "q")
    value_cols = schema.column_order([c for c in cols if c not in QUARANTINE_LEAD])
    select = ", ".join(
        ["source_file", "sheet", "row", "reason"]
        + [f"coalesce({_ident_sql(c)}, '') AS {_ident_sql(c)}" for c in value_cols])

    def stream(tmp):
        reader = con.sql(f"SELECT {select} FROM q ORDER BY source_file, sheet, row, "
                         "reason").to_arrow_reader(WRITE_BATCH_ROWS)
        with open(tmp, "w", encoding="utf-8-sig", newline="") as handle:
            first = True
            for batch in reader:
                frame = schema.neutralise_formulas(batch.to_pandas())
                frame.to_csv(handle, index=False, header=first, lineterminator="\n")
                first = False
            if first:
                pd.DataFrame(columns=QUARANTINE_LEAD + value_cols).to_csv(
                    handle, index=False, lineterminator="\n")

    _atomic_write_bytes(path, stream)
    return _count_by_table(con, "SELECT source_file, sheet, count(*) FROM q GROUP BY ALL")


# ---------------------------------------------------------------------------------
# Register kind: lists or full panel (issue 10 §1)
# ---------------------------------------------------------------------------------
KIND_COUNTS = ("poor", "near_poor", "exit_marks", "non_poor", "removals")
FULL_PANEL_MIN_NON_POOR_SHARE = 0.2  # non-poor rows (not exits) among rows with a status
LIST_MIN_ROWS = 20  # rows with a status before a source with no non-poor row reads as a list


def classify_kind(counts: dict) -> str:
    """'lists', 'full' or 'unclear' from a source's or province's row counts.

    A list register (poor and near-poor lists plus removals) has no non-poor row, except
    rows that mark an exit: a non-poor row of a household listed at its previous row, or
    one whose reason is an exit ("Thoát nghèo"). A full panel has every household at every
    review, so non-poor households that are not exits are a large share of its rows (at
    least FULL_PANEL_MIN_NON_POOR_SHARE). In between is unclear."""
    with_status = counts["poor"] + counts["near_poor"] + counts["exit_marks"] + counts["non_poor"]
    if counts["non_poor"] == 0:
        return "lists"
    if counts["non_poor"] >= FULL_PANEL_MIN_NON_POOR_SHARE * with_status:
        return "full"
    return "unclear"


def _describe_counts(c: dict) -> str:
    return (f"{c['poor']:,} poor, {c['near_poor']:,} near-poor, {c['non_poor']:,} non-poor, "
            f"{c['exit_marks']:,} exit rows, {c['removals']:,} removals")


def register_kinds(panel: pd.DataFrame) -> tuple[str | None, dict, dict, list[str]]:
    """(overall kind, {2025 province: kind}, {2025 province: counts}, errors).

    Decided per province (2025 names) from its rows pooled over sources (classify_kind),
    then checked source by source (file / sheet): in a full province, a source with
    LIST_MIN_ROWS or more rows with a status and not one non-poor row is a list mixed into
    a full panel; an unclear province is an error too. The panel takes one kind, so
    provinces of different kinds are an error (ingest them into separate folders)."""
    if panel.empty:
        return None, {}, {}, []
    _, order = frequency_and_index(panel["period"])
    status = panel["status"]
    frame = pd.DataFrame({
        "hh": panel["household_id"].to_numpy(), "order": order,
        "province": panel["province_2025"].to_numpy(),
        "source": (panel["_file"] + np.where(panel["_sheet"] != "",
                                             " [sheet " + panel["_sheet"] + "]", "")).to_numpy(),
        "status": status.to_numpy(), "exit": panel["_exit"].to_numpy(dtype=bool)})
    frame = frame.sort_values(["hh", "order"], kind="stable")
    listed = frame["status"].isin(["poor", "near_poor"])
    prev_listed = listed.shift(fill_value=False) & frame["hh"].eq(frame["hh"].shift())
    non_poor = frame["status"] == "non_poor"
    frame["what"] = np.select(
        [frame["status"] == "poor", frame["status"] == "near_poor",
         non_poor & (prev_listed | frame["exit"]), non_poor],
        ["poor", "near_poor", "exit_marks", "non_poor"], "removals")
    cells = frame.groupby(["province", "source", "what"]).size().rename("n").reset_index()
    return decide_kinds(cells)


def decide_kinds(cells: pd.DataFrame) -> tuple[str | None, dict, dict, list[str]]:
    """register_kinds' decision from row counts: `cells` has columns province, source,
    what (one of KIND_COUNTS) and n."""
    if cells.empty:
        return None, {}, {}, []
    cells = cells.pivot_table(index=["province", "source"], columns="what", values="n",
                              aggfunc="sum", fill_value=0)
    cells = cells.reindex(columns=list(KIND_COUNTS), fill_value=0)
    by_province, counts, errors, small_lists = {}, {}, [], []
    for province, block in cells.groupby(level="province", sort=True):
        total = {k: int(v) for k, v in block.sum().items()}
        counts[province] = total
        kind = classify_kind(total)
        sources = {src: {k: int(v) for k, v in row.items()}
                   for (_, src), row in block.iterrows()}
        listing = "; ".join(f"{src}: {_describe_counts(c)}" for src, c in list(sources.items())[:6])
        more = f"; and {len(sources) - 6} more sources" if len(sources) > 6 else ""
        if kind == "unclear":
            errors.append(
                f"province {province}: cannot tell whether this is a list register or a full "
                f"panel ({_describe_counts(total)}): a list has no non-poor rows except exits, "
                f"a full panel has non-poor households as at least "
                f"{FULL_PANEL_MIN_NON_POOR_SHARE:.0%} of its rows. Sources: {listing}{more}")
            continue
        if kind == "full":
            lists = {src: c for src, c in sources.items() if classify_kind(c) == "lists"
                     and c["poor"] + c["near_poor"] + c["exit_marks"] >= LIST_MIN_ROWS}
            if lists:
                fulls = {src: c for src, c in sources.items() if src not in lists}
                errors.append(
                    f"province {province}: list files mixed with a full panel: lists (no "
                    f"non-poor household) in "
                    + "; ".join(f"{s}: {_describe_counts(c)}" for s, c in list(lists.items())[:6])
                    + " — full panel in "
                    + "; ".join(f"{s}: {_describe_counts(c)}" for s, c in list(fulls.items())[:6])
                    + ". Ingest lists and full panels into separate folders.")
                continue
        if kind == "lists" and sum(total[k] for k in ("poor", "near_poor", "exit_marks")) \
                < LIST_MIN_ROWS:
            small_lists.append(province)  # a handful of households all poor: too few to tell
            continue
        by_province[province] = kind
    for province in small_lists:
        others = set(by_province.values())
        by_province[province] = others.pop() if len(others) == 1 else "lists"
    kinds = set(by_province.values())
    overall = kinds.pop() if len(kinds) == 1 and not errors else None
    if len(set(by_province.values())) > 1:
        groups = {k: sorted(p for p, v in by_province.items() if v == k) for k in ("lists", "full")}
        errors.append("provinces differ in register kind (one panel is read with one rule): "
                      f"lists in {', '.join(groups['lists'])}; full panel in "
                      f"{', '.join(groups['full'])}. Ingest them into separate folders.")
    return overall, by_province, counts, errors


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


def _write_parquet(df: pd.DataFrame, path: Path, metadata: dict | None = None) -> None:
    table = pa.Table.from_pandas(df, preserve_index=False)
    if metadata:
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}),
             **{k.encode(): str(v).encode() for k, v in metadata.items()}})
    _atomic_write_bytes(path, lambda tmp: pq.write_table(
        table, tmp, compression="zstd", write_statistics=True))


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    """A csv for people to open in Excel: formula-like cells neutralised (schema.
    spreadsheet_safe), BOM so Excel reads UTF-8."""
    safe = schema.neutralise_formulas(df)
    _atomic_write_bytes(path, lambda tmp: safe.to_csv(tmp, index=False, encoding="utf-8-sig",
                                                      lineterminator="\n"))


def _write_json(data: dict, path: Path) -> None:
    text = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False, default=str) + "\n"
    _atomic_write_bytes(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


def _finish_panel(panel: pd.DataFrame) -> pd.DataFrame:
    if panel.empty:
        return _empty(schema.REQUIRED_PANEL_COLUMNS + ["province_2025"])
    panel = panel.drop(columns=_CARRIED)
    panel = schema.canonical_dtypes(panel)
    _, index = frequency_and_index(panel["period"])
    panel = panel.assign(_order=index).sort_values(["household_id", "_order"], kind="stable")
    panel = panel.drop(columns="_order")
    return panel[schema.column_order(panel.columns)].reset_index(drop=True)


def _totals_periods(totals: pd.DataFrame, frequency: str | None):
    """(rows whose period fits the register, quarantine rows). A total counted at a year's
    review is that year on an annual register and its Q4 on a quarterly one; a total for a
    quarter other than Q4 cannot stand for an annual review."""
    if totals.empty:
        return totals, totals.iloc[0:0]
    labels = totals["period"].astype(object)
    is_year = np.array([isinstance(v, (int, np.integer)) for v in labels])
    if frequency is None:
        frequency = "year" if is_year.all() else "quarter"
    if frequency == "quarter":
        converted = [f"{v}Q4" if y else v for v, y in zip(labels, is_year)]
        bad = np.zeros(len(totals), dtype=bool)
    else:
        q4 = np.array([not y and str(v).endswith("Q4") for v, y in zip(labels, is_year)])
        converted = [int(str(v)[:4]) if q else v for v, q in zip(labels, q4)]
        bad = ~is_year & ~q4
    totals = totals.assign(period=pd.Series(converted, index=totals.index, dtype=object))
    if not bad.any():
        return totals, totals.iloc[0:0]
    reason = ("period: a total for " + totals.loc[bad, "period"].astype(str)
              + " on an annual register: totals count households at the annual review (Q4)")
    return totals.loc[~bad], _as_quarantine(totals.loc[bad], reason)


def _finish_totals(totals: pd.DataFrame) -> pd.DataFrame:
    """totals.parquet: province (as written), province_2025, commune (null for a province
    total), period (the panel's type), households (int64), sorted."""
    if "commune" not in totals.columns:
        totals = totals.assign(commune=None)
    out = pd.DataFrame({
        "province": totals["province"].astype(object),
        "province_2025": totals["province_2025"].astype(object),
        "commune": totals["commune"].astype(object).where(totals["commune"].notna(), None),
        "period": schema._period_dtype(totals["period"].astype(object)),
        "households": totals["households_total"].astype("int64"),
    })
    order = np.lexsort([out["period"].astype(str).to_numpy(),
                        out["commune"].fillna("").to_numpy(dtype=str),
                        out["province"].to_numpy(dtype=str),
                        out["province_2025"].to_numpy(dtype=str)])
    return out.iloc[order].reset_index(drop=True)


def _finish_adoption(adoption: pd.DataFrame) -> pd.DataFrame:
    """adoption.parquet: province (as written), province_2025, district (null when not
    given), commune, program, adoption_year (Int64, <NA> = never), sorted."""
    out = pd.DataFrame({col: adoption[col].astype(object).where(adoption[col].notna(), None)
                        for col in schema.ADOPTION_COLUMNS[:-1]})
    out["adoption_year"] = adoption["adoption_year"].astype("Int64")
    order = np.lexsort([out[c].fillna("").to_numpy(dtype=str)
                        for c in ("program", "commune", "district", "province", "province_2025")])
    return out.iloc[order].reset_index(drop=True)


def _finish_support(support: pd.DataFrame) -> pd.DataFrame:
    if support.empty:
        frame = _empty(schema.SUPPORT_COLUMNS)
        frame["amount_vnd"] = frame["amount_vnd"].astype("float64")
        return frame
    support = schema.canonical_dtypes(support.drop(columns=_CARRIED))
    order = [c for c in schema.SUPPORT_COLUMNS if c in support.columns]
    sort_key = support[order].astype(str)
    support = support.iloc[np.lexsort([sort_key[c].to_numpy() for c in reversed(order)])]
    return support[schema.column_order(support.columns, "support")].reset_index(drop=True)


# ---------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------
def _write_failed_summary(raw_dir: Path, out_dir: Path, message: str, state: str) -> None:
    """Mark out_dir's outputs as not ok before a run and after a failed one: earlier
    outputs must never stay behind looking like a good result of this run."""
    _write_json({"ok": False, "state": state, "raw_dir": str(raw_dir), "errors": [message]},
                out_dir / "ingest_summary.json")


def ingest(raw_dir, out_dir, progress: bool = True, new_key: bool = False) -> IngestSummary:
    """Validate raw registers, programme rolls and household totals, quarantine bad
    rows, pseudonymise, and write panel.parquet, support.parquet, totals.parquet,
    quarantine.csv and ingest_summary.json to out_dir (module docstring for the rules).
    Returns the IngestSummary.

    While it runs, and if it fails with an exception, ingest_summary.json says
    "ok": false and why. `new_key`: create a new pseudonymisation key although out_dir
    holds earlier data (privacy.load_key; all pseudonyms change)."""
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    if not raw_dir.is_dir():
        message = (f"raw folder {raw_dir} does not exist: run `povdyn demo` or copy the "
                   "register exports there")
        if out_dir.is_dir():
            _write_failed_summary(raw_dir, out_dir, message, "failed")
        raise PovdynError(message)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_failed_summary(raw_dir, out_dir, "ingest started and has not finished (still "
                          "running, or stopped before writing its results)", "running")
    try:
        return _ingest(raw_dir, out_dir, progress, new_key)
    except BaseException as exc:
        _write_failed_summary(raw_dir, out_dir, f"ingest failed: {type(exc).__name__}: {exc}",
                              "failed")
        raise


def _ingest(raw_dir: Path, out_dir: Path, progress: bool, new_key: bool) -> IngestSummary:
    started = time.perf_counter()
    key = load_key(processed_dir=out_dir, new_key=new_key)
    # scratch space beside the outputs (same disk): spilled batches and DuckDB's temp
    scratch = Path(tempfile.mkdtemp(prefix=".ingest-", dir=out_dir))
    try:
        con = _duckdb(scratch)
        try:
            return _ingest_with(raw_dir, out_dir, progress, key, _Spill(scratch), con, started)
        finally:
            con.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _ingest_with(raw_dir: Path, out_dir: Path, progress: bool, key: bytes, spill: _Spill,
                 con, started: float) -> IngestSummary:
    from tqdm.auto import tqdm

    programs = _load_programs()
    files, ignored = list_inputs(raw_dir)
    errors: list[str] = []
    if not files:
        errors.append(f"no csv, xlsx or parquet files in {raw_dir}: run `povdyn demo` or copy "
                      "the register exports there")

    reports: list[TableReport] = []
    goods = {"support": [], "totals": [], "adoption": []}  # small tables stay in memory
    cache = _Cache(out_dir, _cache_fingerprint(key, programs))
    entries: dict[str, dict] = {}  # this run's files: sha256, table reports, errors
    spans: list[tuple[str, int, int]] = []  # file, its first report and first error
    reused: list[str] = []
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
            if batch_key[0] == "register":
                spill.add_register(good)
            else:
                goods[batch_key[0]].append(good)
                spill.add_small(batch_key[0], good)
            spill.add_quarantine(quarantine)

    for path in tqdm(files, desc="ingest", unit="file", disable=not progress):
        rel = path.relative_to(raw_dir).as_posix()
        sha = _file_sha256(path)
        spans.append((rel, len(reports), len(errors)))
        earlier = cache.entry(rel, sha)
        if earlier is not None:  # unchanged since a run whose checked rows are cached
            reports += [TableReport(**{**t, "loaded": 0, "quarantined": 0,
                                       "duplicates_dropped": 0}) for t in earlier["reports"]]
            errors += earlier["errors"]
            entries[rel] = earlier
            reused.append(rel)
            continue
        entries[rel] = {"sha256": sha}
        try:
            tables = read_tables(path, raw_dir)
        except UnreadableFile as exc:
            errors.append(f"{rel}: cannot read: {exc}")
            reports.append(TableReport(source_file=rel, error=str(exc)))
            continue
        except Exception as exc:  # noqa: BLE001 - whatever breaks one file must not stop the others
            errors.append(f"{rel}: cannot read: {type(exc).__name__}: {exc}")
            reports.append(TableReport(source_file=rel, error=f"{type(exc).__name__}: {exc}"))
            continue
        in_engine = [_engine_eligible(t) for t in tables]
        for table, engine in zip(tables, in_engine):  # csv registers: checked in DuckDB
            if engine:
                reports.append(_engine_check_register(table, con, spill, key, programs))
        for raw in (piece for table, engine in zip(tables, in_engine) if not engine
                    for piece in chunks(table)):
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
            spill.add_quarantine(prepared.malformed)
            batch_key = (prepared.report.kind, tuple(prepared.canon.columns))
            pending.setdefault(batch_key, []).append(prepared.canon)
            pending_rows[batch_key] = pending_rows.get(batch_key, 0) + len(prepared.canon)
            if pending_rows[batch_key] >= BATCH_ROWS:
                flush(batch_key)
        del tables
    for batch_key in sorted(pending, key=str):
        flush(batch_key)
    # the reports and errors each file produced (for the cache)
    for i, (rel, first_report, first_error) in enumerate(spans):
        end_report, end_error = spans[i + 1][1:] if i + 1 < len(spans) else \
            (len(reports), len(errors))
        if "reports" not in entries[rel]:
            entries[rel]["reports"] = reports[first_report:end_report]
            entries[rel]["errors"] = errors[first_error:end_error]

    keep = set(reused)  # cached rows still current: those of unchanged files
    con.execute("CREATE OR REPLACE TEMP TABLE keep_files (f VARCHAR)")
    if keep:
        con.executemany("INSERT INTO keep_files VALUES (?)", [[f] for f in sorted(keep)])
    cached = {kind: cache.parts(kind, keep) for kind in _Cache.KINDS}
    for kind in goods:
        for part in cached[kind]:
            frame = pd.read_parquet(part)
            goods[kind].append(frame[frame["_file"].isin(keep)])
    register = _register_stage(con, spill, cached)
    frequency = register.frequency
    for frame in register.quarantine:
        spill.add_quarantine(frame, run_level=True)
    support = pd.concat(goods["support"], ignore_index=True) if goods["support"] else \
        pd.DataFrame(columns=schema.REQUIRED_SUPPORT_COLUMNS + _CARRIED)
    support, _, support_dropped = _duplicates(support, schema.SUPPORT_COLUMNS, False,
                                              identifiers=False)
    totals = pd.concat(goods["totals"], ignore_index=True) if goods["totals"] else None
    totals_dropped = None
    if totals is not None:
        if "commune" not in totals.columns:
            totals["commune"] = None
        totals, odd_totals = _totals_periods(totals, frequency if register.rows else None)
        totals, totals_clash, totals_dropped = _duplicates(
            totals, ["province", "commune", "period"], True,
            what="the same province, commune and period")
        spill.add_quarantine(odd_totals, run_level=True)
        spill.add_quarantine(totals_clash, run_level=True)
    adoption = pd.concat(goods["adoption"], ignore_index=True) if goods["adoption"] else None
    adoption_dropped = None
    if adoption is not None:
        if "district" not in adoption.columns:
            adoption["district"] = None
        adoption, adoption_clash, adoption_dropped = _duplicates(
            adoption, ["province", "district", "commune", "program"], True,
            what="the same commune and programme")
        spill.add_quarantine(adoption_clash, run_level=True)
    register_kind, kind_by_province, kind_counts, kind_errors = register.kind
    errors += kind_errors

    # per-table accounting from provenance
    def count(*frames: pd.DataFrame) -> Counter:
        counter: Counter = Counter()
        for frame in frames:
            if frame is not None and len(frame):
                counter.update(zip(frame["_file"], frame["_sheet"]))
        return counter

    loaded = register.loaded + count(support, totals, adoption)
    dropped = register.dropped + count(support_dropped, totals_dropped, adoption_dropped)
    quarantined = _write_quarantine_csv(con, spill, out_dir / "quarantine.csv", cached)
    for report in reports:
        if report.kind is None:
            continue
        k = (report.source_file, report.sheet or "")
        report.loaded = loaded[k]
        report.duplicates_dropped = dropped[k]
        report.quarantined = quarantined[k]

    support_out = _finish_support(support)
    register_tables = [t for t in reports if t.kind == "register"]
    if files and not register.rows:
        if not register_tables:
            errors.append("no register among the inputs (a table with Mã hộ, Năm/Kỳ and Phân "
                          "loại hộ): nothing to report on")
        elif not sum(t.rows_in for t in register_tables):
            names = ", ".join(t.source_file + (f" [{t.sheet}]" if t.sheet else "")
                              for t in register_tables[:5])
            errors.append(f"no data rows: the register table(s) have a header but no rows "
                          f"({names}{', ...' if len(register_tables) > 5 else ''})")
        else:
            errors.append("no data rows loaded: every register row was quarantined (see "
                          "quarantine.csv for the reasons)")
    summary = IngestSummary(
        raw_dir=raw_dir, out_dir=out_dir, tables=reports, errors=errors,
        ignored_files=ignored, panel_rows=register.rows, support_rows=len(support_out),
        households=register.households, periods=register.periods,
        frequency=frequency if register.rows else None,
        register_kind=register_kind, register_kind_by_province=kind_by_province,
        register_kind_counts=kind_counts,
        totals_rows=0 if totals is None else len(totals),
        adoption_rows=0 if adoption is None else len(adoption),
        file_hashes={rel: e["sha256"] for rel, e in entries.items()},
    )
    register.write(out_dir / "panel.parquet", {"povdyn.register_kind": register_kind or ""})
    if totals is not None:
        _write_parquet(_finish_totals(totals), out_dir / "totals.parquet")
    elif (out_dir / "totals.parquet").exists():  # an earlier run's totals, not this data's
        (out_dir / "totals.parquet").unlink()
    if adoption is not None:
        _write_parquet(_finish_adoption(adoption), out_dir / "adoption.parquet")
    elif (out_dir / "adoption.parquet").exists():  # an earlier run's register, not this data's
        (out_dir / "adoption.parquet").unlink()
    _write_parquet(support_out, out_dir / "support.parquet")
    if len(register.unplaced):  # names the 2025 map could not place (rows kept, "? name")
        _write_csv(register.unplaced, out_dir / "communes_unplaced.csv")
    elif (out_dir / "communes_unplaced.csv").exists():  # an earlier run's listing
        (out_dir / "communes_unplaced.csv").unlink()
    _write_json(summary.as_dict(), out_dir / "ingest_summary.json")
    cache.save({rel: {"sha256": e["sha256"],
                      "reports": [t.as_dict() if isinstance(t, TableReport) else t
                                  for t in e["reports"]],
                      "errors": list(e["errors"])} for rel, e in entries.items()},
               spill, set(entries))
    summary.reused_files = reused
    summary.seconds = time.perf_counter() - started
    return summary
