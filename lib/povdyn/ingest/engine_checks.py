"""Checking a csv register in DuckDB (issue 11 §1): the per-row work of check_rows as one
query over the csv's Arrow record batches; only flagged rows go back through check_batch."""
from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import schema
from ..errors import SchemaError
from ..periods import parse_period
from ..privacy import IDENTIFIER_COLUMNS, Pseudonymiser
from .checking import (BATCH_ROWS, _IDENT, _ident_sql, _identifier_hash_sql,
                       _normalised_identifier, _provinces, check_batch)
from .reading import (FOOTER_SEARCH_ROWS, LOOKUP_UNIQUES, RawTable, _CsvStream, _LazyCsv,
                      _column_names, _engine_register_header, _is_bool_column,
                      _lookup_columns, cut_footer)
from .ahead import made_ahead
from .summary import TableReport


# The per-row work of check_rows, as one DuckDB query over the csv's Arrow record
# batches, read from the file in one pass: coded columns (periods, statuses, provinces,
# communes, yes/no, household size...) are parsed in Python once per DISTINCT cell by
# the very functions check_rows uses (_Lookup: new cells parsed as they first appear)
# and looked up per batch in Arrow; high-cardinality
# columns use vectorised expressions (ids trimmed in Arrow and pseudonymised once per
# distinct id, privacy.Pseudonymiser; numbers by schema.arrow_number_fast_path); a `_bad` flag marks
# every row check_rows could reject. Those rows only (few) go through check_batch,
# which formats their reasons and has the last word; the rest are written to the spill
# as they come. Same outputs as the pandas path, byte for byte (tested).
ENGINE_CHECKS = True  # False: every table takes the pandas path (tests compare the two)
SPILL_ROW_GROUP_ROWS = 30_720  # rows per row group of a spill part: DuckDB holds a row group
# while writing it (its default 122,880 cost an ingest worker ~90 MB more)
ENGINE_FETCH_ROWS = 1 << 17  # rows per record batch handed from DuckDB back to Python
SUSPECT_WRITE_ROWS = 1 << 16  # suspect rows' raw cells held before they go to their file
_NUMBERS = {"income_pc_month": "v < 0", "weight": "v <= 0"}  # _NUMBER_COLUMNS: range rule
_RECORDED_ONLY = {"province_2025"}  # recomputed from province (check_batch)


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
    if not ENGINE_CHECKS:
        return False
    if isinstance(raw.data, _LazyCsv):
        return True  # the header was checked when it was read (_engine_register_header)
    if not isinstance(raw.data, _CsvStream) or not _engine_register_header(raw.header):
        return False
    return all(v is not None for v in raw.data.lookups.values())


class _OnePassFailed(Exception):
    """The one-pass reading of a csv (_LazyCsv) cannot finish: read it the exact way."""


class _Lookup:
    """The parsed values of one coded column, filled as new distinct cells come (each
    parsed once, by _coded_lookup, i.e. check_rows' own parsers), and looked up per
    batch in Arrow. For a yes/no column it also follows whether every non-blank cell
    seen so far is a mark (schema.parse_bool's "x"-marked rule)."""

    def __init__(self, name: str, limit: int | None):
        self.name, self.limit = name, limit
        self.pieces: list[pa.Table] = []
        self.columns: dict[str, pa.Array] = {}
        self.keys = pa.array([], pa.string())
        self.size = 0
        self.non_blank = False  # yes/no columns: a non-blank cell seen
        self.all_marks = True  # ... and all of those were marks
        self._add([])  # the columns, empty

    def _add(self, cells: list) -> None:
        self.pieces.append(_coded_lookup(self.name, cells, False))
        table = pa.concat_tables(self.pieces).combine_chunks()
        self.pieces = [table]
        self.columns = {n: table.column(n).chunk(0) if table.column(n).num_chunks == 1
                        else table.column(n).combine_chunks() for n in table.column_names}
        self.keys = self.columns.pop("raw")
        self.size = table.num_rows
        if self.limit is not None and self.size > self.limit:
            raise _OnePassFailed(f"more than {self.limit:,} distinct cells in a "
                                 f"{self.name} column")
        if _is_bool_column(self.name):
            for cell in cells:
                if schema._bool_value(cell) is not None:
                    self.non_blank = True
                    self.all_marks = self.all_marks and schema._is_mark(cell)

    @property
    def marks_only(self) -> bool:
        return self.non_blank and self.all_marks

    def take(self, column: pa.Array) -> dict[str, pa.Array]:
        """The parsed columns (v, bad, ...) for each cell of `column`."""
        index = pc.index_in(column, value_set=self.keys)
        if index.null_count > column.null_count:
            new = pc.unique(column.filter(pc.and_(pc.is_null(index), pc.is_valid(column))))
            self._add(new.to_pylist())
            index = pc.index_in(column, value_set=self.keys)
        return {name: values.take(index) for name, values in self.columns.items()}


def _held_back(raw: RawTable, state: dict):
    """The data batches of a one-pass csv (_LazyCsv): the last FOOTER_SEARCH_ROWS rows
    are held back until the end, where the signature footer is cut from them
    (cut_footer on those rows); state gets footer_rows and footer_blank_rows."""
    lazy: _LazyCsv = raw.data
    if not lazy.hold_back:  # a byte range before the last (parallel.py): no footer here
        state["footer_rows"], state["footer_blank_rows"] = 0, 0
        yield from lazy.open_stream()
        return
    pending, held, passed = [], 0, 0
    for batch in lazy.open_stream():
        pending.append(batch)
        held += batch.num_rows
        while len(pending) > 1 and held - pending[0].num_rows >= FOOTER_SEARCH_ROWS:
            first = pending.pop(0)
            held -= first.num_rows
            passed += first.num_rows
            yield first
    empty = lazy.empty_batch
    tail = pa.Table.from_batches(pending, schema=empty.schema)
    stream = _CsvStream(None, passed + tail.num_rows,
                        tail.slice(max(0, tail.num_rows - FOOTER_SEARCH_ROWS)), {})
    cut = cut_footer(dataclasses.replace(raw, data=stream))
    state["footer_rows"], state["footer_blank_rows"] = cut.footer_rows, cut.footer_blank_rows
    yield from tail.slice(0, max(0, stream.limit - passed)).to_batches()


def _engine_check_register(raw: RawTable, con, spill: "_Spill", key: bytes,
                           programs) -> TableReport | None:
    """Check a csv register in DuckDB (see the section comment); returns its report
    (rows_in, blank and footer rows; loaded and quarantined come later, from the spill,
    as for every table). A _LazyCsv is read in one pass: the footer is found in the
    rows held back at the end, the coded columns' lookups grow as cells come, and a
    guess is made from the first rows about which yes/no columns are "x"-marked (blank
    means "no" there). None when that pass cannot finish or a guess was wrong: nothing
    of the file is kept, and the caller reads it again (_LazyCsv.rescan). A scanned
    _CsvStream (what rescan gives) knows its footer and marks and always finishes."""
    one_pass = isinstance(raw.data, _LazyCsv)
    state = {"footer_rows": raw.footer_rows, "footer_blank_rows": raw.footer_blank_rows}
    if one_pass:
        source = _held_back(raw, state)
        known_marks = raw.data.marks  # decided for the whole file (parallel.py), or None
    else:
        raw = cut_footer(raw)
        state = {"footer_rows": raw.footer_rows, "footer_blank_rows": raw.footer_blank_rows}
        cells = _data_cells(raw.data)
        source = raw.data.batches()
    position, ignored_columns = _column_names(raw.header)
    keep = {c: name for c, name in position.items() if name not in IDENTIFIER_COLUMNS}
    coded = {c: how for c, how in _lookup_columns(raw.header).items()
             if c in keep and keep[c] not in _RECORDED_ONLY}
    if not one_pass:
        # yes/no columns whose non-blank cells are all marks ("x", "✓"): blank means "no"
        # (schema.parse_bool's rule, over the whole table's data rows)
        known_marks = {c for c in coded if _is_bool_column(keep[c]) and c in cells
                       and _marks_only(cells[c])}
    lookups = {c: _Lookup(keep[c], LOOKUP_UNIQUES if one_pass else None) for c in coded}
    guess: dict[str, bool] = {}  # yes/no column -> read as "x"-marked
    ident_cols = [c for c, name in position.items() if name in IDENTIFIER_COLUMNS]
    hid = next(c for c, name in keep.items() if name == "household_id")
    status_col = next((c for c, name in keep.items() if name == "status"), None)
    numbers = [c for c, name in keep.items() if name in _NUMBERS]
    all_cols = [f"c{i}" for i in range(len(raw.header))]
    counts = {"rows": 0, "blank": 0}
    failure: list[BaseException] = []
    pseudonym = Pseudonymiser(key)

    # The raw cells of the rows the query flags `_bad` (check_batch re-checks them) are
    # not carried through DuckDB: a raw column per kept column, null in all but a few
    # rows, cost ~1 s CPU per million rows to scan and write. Every row that COULD be
    # flagged ("suspect": a superset of the query's terms, computed here in Arrow) has
    # its raw cells kept in a file of their own; the query's flagged rows are joined to
    # them by row number afterwards (and all must be found there).
    suspects = _SuspectCells(spill.part_path("register").with_suffix(".suspect.parquet"),
                             [f"_raw_{c}" for c in keep])

    def batches():
        start = 0
        try:
            for batch in made_ahead(source, depth=2, name="povdyn-csv-read-ahead"):
                n = batch.num_rows
                arrays = {}
                arrays["_hid"] = pc.utf8_trim_whitespace(batch.column(hid))
                # the pseudonym of every id, flagged rows' too (check_batch makes
                # theirs again), once per distinct id of the block: SHA-256 in SQL per
                # row cost ~1.6 s CPU per million rows
                arrays["_pid"] = pseudonym.arrow(arrays["_hid"])
                # a blank line: every cell empty or spaces (_blank_rows); only a row
                # without a household id can be one, so the other cells are looked at
                # only there
                blank = pc.equal(pc.utf8_length(arrays["_hid"]), 0)
                if pc.any(blank).as_py():
                    for c in all_cols:
                        if c != hid:
                            cells = pc.if_else(blank, batch.column(c), "")
                            empty = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(cells)), 0)
                            blank = pc.and_(blank, empty)
                fast = {}
                # "a cell check_rows would reject" over every coded column, ORed here
                # (one column for DuckDB instead of one per column; an unknown cell
                # counts as bad, as coalesce(bad, true) did in SQL)
                any_bad = None
                for c in numbers:
                    arrays[f"_n_{c}"], fast[c] = schema.arrow_number_fast_path(batch.column(c))
                    arrays[f"_f_{c}"] = fast[c]
                for c, how in coded.items():
                    column = batch.column(c)
                    if how == "numbers":  # the cells the Arrow fast path does not read
                        column = pc.if_else(fast[c], pa.scalar(None, pa.string()), column)
                    parsed = lookups[c].take(column)
                    if _is_bool_column(keep[c]):
                        if c not in guess:  # from the first rows (checked at the end)
                            guess[c] = (lookups[c].marks_only if known_marks is None
                                        else c in known_marks)
                        value = parsed["v"]
                        arrays[f"_v_{c}"] = pc.fill_null(value, False) if guess[c] else value
                    else:
                        arrays[f"_v_{c}"] = parsed["v"]
                    cell_bad = pc.fill_null(parsed["bad"], True)
                    if how == "numbers":  # the fast path's cells are good
                        cell_bad = pc.and_(pc.invert(fast[c]), cell_bad)
                    any_bad = cell_bad if any_bad is None else pc.or_(any_bad, cell_bad)
                    if c == status_col:  # also read alone (a blank status)
                        arrays[f"_bad_{c}"] = parsed["bad"]
                    for extra in ("o", "q", "p2025"):
                        if extra in parsed:
                            arrays[f"_{extra}_{c}"] = parsed[extra]
                arrays["_any_bad"] = (any_bad if any_bad is not None
                                      else pa.array(np.zeros(n, dtype=bool)))
                for i, c in enumerate(ident_cols):  # normalised as _identifier_hash does
                    arrays[f"_id{i}"] = _normalised_identifier(batch.column(c))
                arrays["_row"] = pa.array(np.arange(start, start + n, dtype="int64")
                                          + raw.first_row)
                start += n
                suspect = _suspect_rows(arrays, status_col, numbers, fast)
                out = pa.RecordBatch.from_pydict(arrays)
                n_blank = pc.sum(blank).as_py() or 0
                if n_blank:
                    counts["blank"] += n_blank
                    out = out.filter(pc.invert(blank))
                    suspect = pc.and_(suspect, pc.invert(blank))
                suspects.add([batch.column(c) for c in keep], arrays["_row"], suspect)
                counts["rows"] += out.num_rows
                yield out
        except (pa.ArrowInvalid, UnicodeDecodeError, _OnePassFailed) as exc:
            if not one_pass:
                raise
            failure.append(exc)
            raise _OnePassFailed(str(exc)) from exc

    pieces = batches()
    try:  # the suspects' file goes, whatever happens
        try:
            first = next(pieces, None)
        except _OnePassFailed:
            return None
        report = TableReport(source_file=raw.source_file, sheet=raw.sheet,
                             header_row=raw.header_row, kind="register", period_source="column",
                             ignored_columns=ignored_columns)
        if first is None:  # a header and nothing else
            report.footer_rows = state["footer_rows"]
            report.blank_rows = state["footer_blank_rows"]
            return report

        def every_batch():
            yield first
            yield from pieces

        def v(c, field="v"):
            return f"s.{_ident_sql(f'_{field}_{c}')}"

        col = {name: c for c, name in keep.items()}

        def bad(name):  # a cell the lookup does not know (never expected): checked in Python
            return f"coalesce({v(col[name], 'bad')}, true)"

        # household id: blank, or short without a digit (a placeholder such as "NA",
        # "-"?); a coded cell check_rows would reject (every coded column's bad(), ORed
        # in Arrow). _suspect_rows loosens each term: keep the two in step
        terms = ["(s._hid = '' OR (length(s._hid) <= 4 "
                 "AND NOT regexp_matches(s._hid, '[0-9]')))", "s._any_bad"]
        select = ["s._pid AS household_id",
                  f"{v(col['period'])} AS period", f"{v(col['period'], 'o')} AS _order",
                  f"{v(col['period'], 'q')} AS _is_quarter"]
        st = v(col["status"])
        if "removal_reason" in col:  # check_rows: exits are non-poor, removals no status
            rr = v(col["removal_reason"])
            exit_ = f"coalesce({rr} = $exit, false)"
            removal = f"coalesce({rr} <> $exit, false)"
            status = (f"CASE WHEN {removal} THEN NULL WHEN {exit_} AND {st} IS NULL "
                      f"THEN 'non_poor' ELSE {st} END")
            select.append(f"CASE WHEN {exit_} THEN NULL ELSE {rr} END AS removal_reason")
        else:
            exit_, removal, status = "false", "false", st
        terms.append(f"(({status}) IS NULL AND NOT {bad('status')} AND NOT {removal})")
        select += [f"{status} AS status", f"{exit_} AS _exit",
                   f"{v(col['province'])} AS province",
                   f"{v(col['province'], 'p2025')} AS province_2025"]
        for c, name in keep.items():
            if name in ("household_id", "period", "status", "removal_reason", "province"):
                continue
            if name in _NUMBERS:
                fast, number = _ident_sql(f"_f_{c}"), _ident_sql(f"_n_{c}")
                value = f"(CASE WHEN s.{fast} THEN s.{number} ELSE {v(c)} END)"
                select.append(f"{value} AS {_ident_sql(name)}")
                terms.append(f"coalesce({_NUMBERS[name].replace('v', value)}, false)")
            elif c in coded:
                select.append(f"{v(c)} AS {_ident_sql(name)}")
        ident = _identifier_hash_sql([f"_id{i}" for i in range(len(ident_cols))])
        select += ["$file AS _file", "'' AS _sheet", "s._row AS _row", f"{ident} AS {_IDENT}"]
        sql = f"SELECT {', '.join(select)}, ({' OR '.join(terms)}) AS _bad FROM _src s"
        params = {"file": raw.source_file, "exit": schema._EXIT}
        # DuckDB refuses unused parameters
        params = {k: v for k, v in params.items() if f"${k}" in sql}
        con.register("_src", pa.RecordBatchReader.from_batches(first.schema, every_batch()))
        try:
            # every row to the spill part (one per household range in a range worker:
            # _Spill.cut_ranges), written by DuckDB's parallel parquet writer; the
            # register stage reads only the rows not flagged (_register_view)
            try:
                paths = spill.write_register_rows(con, con.sql(sql, params=params),
                                                  compression="lz4",
                                                  row_group_size=SPILL_ROW_GROUP_ROWS)
            except Exception:
                if failure:  # the one pass could not finish: nothing of it is kept
                    return None
                raise
            marks = {c for c in guess if guess[c]}
            if one_pass and known_marks is not None:  # a byte range: the caller compares
                raw.data.marks_seen = {c: (lookups[c].non_blank, lookups[c].all_marks)
                                       for c in coded if _is_bool_column(keep[c])}
            elif one_pass and any(guess[c] != lookups[c].marks_only for c in guess):
                for path in paths:  # the first rows told another story than the file
                    path.unlink(missing_ok=True)
                return None
            for path in paths:
                spill.add_part("register", path, [raw.source_file])
            _engine_recheck(suspects.flagged(con, paths), keep, marks, spill, key, programs)
        finally:
            con.unregister("_src")
        report.rows_in = counts["rows"]
        report.footer_rows = state["footer_rows"]
        report.blank_rows = counts["blank"] + state["footer_blank_rows"]
        return report
    finally:
        suspects.discard()


def _suspect_rows(arrays: dict, status_col, numbers: list, fast: dict) -> pa.Array:
    """Rows the query's `_bad` could flag: every term of it, loosened so that it is
    cheap in Arrow and never misses (the query decides; _SuspectCells checks that every
    flagged row was kept): a coded cell check_rows would reject; a household id of at
    most 4 characters (blank, or a placeholder without a digit); no status (before the
    exit and removal rules, which only ever give one back or excuse a row); a number
    <= 0, read by the fast path or the lookup as the query does (the range rules:
    income < 0, weight <= 0; a blank number is no value, and breaks no range rule)."""
    suspect = pc.or_(arrays["_any_bad"], pc.less_equal(pc.utf8_length(arrays["_hid"]), 4))
    if status_col is not None:
        suspect = pc.or_(suspect, pc.is_null(arrays[f"_v_{status_col}"]))
    for c in numbers:
        value = pc.if_else(pc.fill_null(fast[c], False), arrays[f"_n_{c}"],
                           arrays[f"_v_{c}"])
        suspect = pc.or_(suspect, pc.fill_null(pc.less_equal(value, 0), False))
    return pc.fill_null(suspect, True)


class _SuspectCells:
    """The raw cells (as `_raw_c<i>` columns) and row number of every suspect row of
    one csv pass (_suspect_rows), written to `path` SUSPECT_WRITE_ROWS at a time
    (memory holds a few; a file of nothing but suspects still streams)."""

    def __init__(self, path, names: list[str]):
        self.path, self.names = path, names
        self.schema = pa.schema([pa.field(n, pa.string()) for n in names]
                                + [pa.field("_row", pa.int64())])
        self.held: list[pa.RecordBatch] = []
        self.held_rows = 0
        self.rows = 0
        self.writer = None

    def add(self, cells: list, rows: pa.Array, suspect: pa.Array) -> None:
        if not pc.any(suspect).as_py():
            return
        batch = pa.RecordBatch.from_arrays(list(cells) + [rows], schema=self.schema)
        kept = batch.filter(suspect)
        self.held.append(kept)
        self.held_rows += kept.num_rows
        if self.held_rows >= SUSPECT_WRITE_ROWS:
            self._flush()

    def _flush(self) -> None:
        import pyarrow.parquet as pq

        if not self.held:
            return
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, self.schema, compression="lz4")
        self.writer.write_table(pa.Table.from_batches(self.held, schema=self.schema))
        self.rows += self.held_rows
        self.held, self.held_rows = [], 0

    def flagged(self, con, parts: list):
        """The rows the query flagged in `parts` (its spill parts) with their raw cells,
        in row order, as _engine_recheck reads them; raises if a flagged row was not
        kept as a suspect (never expected: _suspect_rows would have a hole)."""
        self._flush()
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if not parts:  # no row written (a range of blank lines, cut by household)
            return
        flagged = con.sql("SELECT count(*) FROM read_parquet($part) WHERE _bad",
                          params={"part": [str(p) for p in parts]}).fetchall()[0][0]
        if not flagged:
            return
        if not self.rows:
            raise RuntimeError(f"internal: {flagged} flagged rows, none kept as suspect")
        raw_cols = ", ".join(f"r.{_ident_sql(n)}" for n in self.names)
        provenance = ", ".join(f"p.{_ident_sql(c)}" for c in (_IDENT, "_file", "_sheet",
                                                             "_row", "_exit"))
        reader = con.sql(f"SELECT {raw_cols}, {provenance} FROM read_parquet($part) p "
                         "JOIN read_parquet($suspects) r ON p._row = r._row "
                         "WHERE p._bad ORDER BY p._row",
                         params={"part": [str(p) for p in parts],
                                 "suspects": str(self.path)}
                         ).to_arrow_reader(BATCH_ROWS)
        found = 0
        for batch in reader:
            found += batch.num_rows
            yield batch
        if found != flagged:
            raise RuntimeError(f"internal: {flagged} flagged rows, {found} of them kept "
                               "as suspect")

    def discard(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        self.path.unlink(missing_ok=True)


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
