"""Checking a csv register in DuckDB (issue 11 §1): the per-row work of check_rows as one
query over the csv's Arrow record batches; only flagged rows go back through check_batch."""
from __future__ import annotations

import hashlib
from collections import Counter

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import schema
from ..errors import SchemaError
from ..periods import parse_period
from ..privacy import IDENTIFIER_COLUMNS, PSEUDONYM_HEX_CHARS, PSEUDONYM_PREFIX
from .checking import (BATCH_ROWS, _IDENT, _ident_sql, _identifier_hash_sql,
                       _normalised_identifier, _provinces, check_batch)
from .reading import RawTable, _CsvStream, _column_names, _is_bool_column, cut_footer
from .summary import TableReport


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
_NUMBERS = {"income_pc_month": "v < 0", "weight": "v <= 0"}  # _NUMBER_COLUMNS: range rule
_RECORDED_ONLY = {"province_2025"}  # recomputed from province (check_batch)


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
