"""The ingest command: read every file, check it (engine or pandas path), run the checks
across tables, write the outputs, mark a failed run as not ok."""
from __future__ import annotations

import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow as pa

from .. import schema
from ..errors import PovdynError
from ..privacy import load_key
from .cache import _Cache, _cache_fingerprint, _file_sha256, _stat_signature
from .checking import BATCH_ROWS, _CARRIED, _load_programs, check_batch, prepare_table
from .engine_checks import _engine_check_register, _engine_eligible
from .parallel import RangeChecker
from .reading import UnreadableFile, _LazyCsv, chunks, list_inputs, read_tables
from . import by_period
from .register import (_Spill, _duckdb, _duplicates, _log_stage, _register_stage,
                       _release_freed_memory,
                       _totals_periods, _view_columns, _write_quarantine_csv)
from .summary import IngestSummary, TableReport
from .writing import (_finish_adoption, _finish_support, _finish_totals, _write_csv, _write_json,
                      _write_parquet)


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
    # this process's Arrow buffers from the C library's allocator, whose freed memory
    # malloc_trim gives back before each step's DuckDB limit is fitted
    # (register._release_freed_memory): pyarrow's default pool (mimalloc) kept 31-53 MB
    # of freed pages resident through the panel's sort at 1M-27M rows (the 27M sort's
    # limit 614 -> 637 MiB, 320.0 -> 310.0 s). The range workers (other processes) keep
    # pyarrow's default.
    arrow_pool = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        con = _duckdb(scratch)
        ranges = RangeChecker()  # large csv files: byte ranges on every core
        try:
            return _ingest_with(raw_dir, out_dir, progress, key, _Spill(scratch), con, started,
                                ranges)
        finally:
            ranges.close()
            con.close()
    finally:
        pa.set_memory_pool(arrow_pool)
        shutil.rmtree(scratch, ignore_errors=True)


def _file_columns(spill: _Spill, cache: _Cache, keep: set) -> dict:
    """file -> its register columns (by_period.register_columns of the parts holding its
    rows): this run's parts, and for reused files what the manifest recorded (else
    their cached parts' schemas)."""
    import pyarrow.parquet as pq

    columns: dict[str, set] = {}
    recorded = cache.manifest.get("files", {})
    unknown = {f for f in keep if "columns" not in recorded.get(f, {})}
    parts = list(spill.parts["register"]) + [
        p for p in cache.parts("register", unknown)] if unknown else list(spill.parts["register"])
    for part in parts:
        names = by_period.register_columns(pq.read_schema(part).names)
        files = spill.part_files.get(part) or cache.part_files(part)
        for f in files:
            if f in keep and f not in unknown:
                continue
            columns.setdefault(f, set()).update(names)
    for f in keep - unknown:
        columns[f] = set(recorded[f]["columns"])
    return {f: sorted(c) for f, c in columns.items()}


def _new_file_periods(con, spill: _Spill) -> dict:
    """file -> {period label: rows} of this run's register parts (flagged rows left out,
    as in the register view)."""
    if not spill.parts["register"]:
        return {}
    con.read_parquet([str(p) for p in spill.parts["register"]],
                     union_by_name=True).create_view("new_reg_parts", replace=True)
    where = " WHERE NOT coalesce(_bad, false)" if "_bad" in _view_columns(
        con, "new_reg_parts") else ""
    counts: dict[str, dict] = {}
    for f, p, n in con.execute(f"SELECT _file, period, count(*) FROM new_reg_parts{where} "
                               "GROUP BY ALL ORDER BY ALL").fetchall():
        counts.setdefault(f, {})[p] = int(n)
    return counts


def _column_donors(plan: "by_period.Plan", cache: _Cache, keep: set, in_work: set) -> list:
    """One cached part for each register column the work periods' files lack (a new
    file with fewer columns than the register): its rows are outside the work periods
    and filtered out, but the column, with its type, is in the register view as in a
    full run (where it is null for that file's rows)."""
    read = set(in_work) | {f for f in plan.file_columns if f not in keep}  # + this run's
    have = set().union(set(), *(set(plan.file_columns[f]) for f in read))
    donors = []
    for column in sorted(set(plan.columns) - have):
        for f in sorted(plan.file_columns):
            if column in plan.file_columns[f] and f not in in_work:
                found = [p for p in cache.parts("register", {f}) if p not in donors]
                if found:
                    donors.append(found[0])
                    have |= set(plan.file_columns[f])
                    break
    return donors


def _register_with_plan(con, spill: _Spill, cache: _Cache, keep: set, cached: dict,
                        file_columns: dict, panel_dir):
    """The checks across register rows: incremental (by_period.plan) when the last run
    left what it needs, else over every row. Returns (result, plan or None)."""
    plan = None
    try:
        if cache.manifest.get("run"):
            new_files = {f: c for f, c in file_columns.items() if f not in keep}
            plan = by_period.plan(con, _new_file_periods(con, spill), new_files,
                                  cache.manifest, keep, panel_dir)
        while plan is not None:
            _log_stage(f"incremental: touched periods {sorted(plan.touched)}, work periods "
                       f"{plan.work}")
            in_work = {f for f in keep if set(plan.file_periods.get(f, {})) & set(plan.work)}
            parts = cache.parts("register", in_work) + _column_donors(plan, cache, keep,
                                                                      in_work)
            try:
                return _register_stage(con, spill, {**cached, "register": parts}, plan), plan
            except by_period.WorkExtended as more:
                plan.touched |= more.periods
                plan.work = by_period.work_periods(plan.touched, plan.file_periods,
                                                   plan.frequency)
    except by_period.FullRunNeeded as reason:
        _log_stage(f"full run: {reason}")
    return _register_stage(con, spill, cached), None


def _one_pass(tables: list, reports: list, con, spill, key: bytes, programs,
              ranges: RangeChecker) -> list:
    """Check the one-pass csv registers (_LazyCsv) in the engine, appending their
    reports; returns the tables still to check: the others, and those read again the
    exact way because their one pass could not finish (engine_checks)."""
    rest = []
    for table in tables:
        if not isinstance(table.data, _LazyCsv):
            rest.append(table)
            continue
        report = None
        if _engine_eligible(table):
            # a large file in byte ranges on every core; False: not one to cut
            report = ranges.check(table, spill, key, programs)
            if report is False:
                report = _engine_check_register(table, con, spill, key, programs)
        if report is None:
            rest += table.data.rescan()
        else:
            reports.append(report)
    return rest


def _ingest_with(raw_dir: Path, out_dir: Path, progress: bool, key: bytes, spill: _Spill,
                 con, started: float, ranges: RangeChecker) -> IngestSummary:
    from tqdm.auto import tqdm

    _log_stage("start", start=True)
    programs = _load_programs()
    files, ignored = list_inputs(raw_dir)
    errors: list[str] = []
    if not files:
        errors.append(f"no csv, xlsx or parquet files in {raw_dir}: run `povdyn demo` or copy "
                      "the register exports there")

    reports: list[TableReport] = []
    goods = {"support": [], "totals": [], "adoption": []}  # checked rows of the other tables
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
        # a file the cache has never seen is hashed after it is read: a large csv's
        # hash is then taken by the pass that cuts it into ranges (no extra read)
        # (one not written since the last run keeps the hash recorded then)
        signature = _stat_signature(path)  # before reading: a write meanwhile moves it
        sha = (cache.recorded_sha256(rel, signature) or _file_sha256(path)) \
            if cache.knows(rel) else None
        spans.append((rel, len(reports), len(errors)))
        earlier = cache.entry(rel, sha) if sha is not None else None
        if earlier is not None:  # unchanged since a run whose checked rows are cached
            reports += [TableReport(**{**t, "loaded": 0, "quarantined": 0,
                                       "duplicates_dropped": 0}) for t in earlier["reports"]]
            errors += earlier["errors"]
            entries[rel] = {**earlier, "stat": signature}
            reused.append(rel)
            continue
        entries[rel] = {"sha256": sha, "stat": signature}
        try:
            tables = read_tables(path, raw_dir)
            if any(isinstance(t.data, _LazyCsv) for t in tables):  # csv registers: one pass
                tables = _one_pass(tables, reports, con, spill, key, programs, ranges)
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
        _log_stage(f"{rel}: read and checked")
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
        raw = prepared = None  # the last piece's rows: not held through the later steps
    # the workers' memory is free before the last batches are checked (the 27M register's
    # 1.76M support rows took this process to 1,083 MB while both workers were still
    # alive; closed first, 1,021 MB alone) and before the steps across all rows
    ranges.close()
    for batch_key in sorted(pending, key=str):
        flush(batch_key)
    _release_freed_memory()  # what those checks freed (the C library keeps it until trimmed)
    for rel, entry in entries.items():
        if entry["sha256"] is None:
            entry["sha256"] = ranges.sha256.pop(raw_dir / rel, None) or \
                _file_sha256(raw_dir / rel)
    _log_stage("content hashes")
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
    cached["whole"] = cache.whole_parts(keep)
    for kind in goods:
        for part in cached[kind]:
            frame = pd.read_parquet(part)
            goods[kind].append(frame[frame["_file"].isin(keep)])
    support_out, support_loaded, support_dropped = _support_table(goods.pop("support"))
    file_columns = _file_columns(spill, cache, keep)
    register, plan = _register_with_plan(con, spill, cache, keep, cached, file_columns,
                                         out_dir / "panel.parquet")
    frequency = register.frequency
    period_parts = {}  # label -> the cached part of its run-level quarantine rows
    for label, frame in register.period_quarantine.items():
        spill.add_period_quarantine(label, frame)
    for label, entry in register.period_results.items():
        if label not in register.period_quarantine and entry.quarantine and plan is not None:
            period_parts[label] = cache.dir / entry.quarantine
    cached["quarantine"] = cached["quarantine"] + sorted(period_parts.values())
    cached["whole"] = set(cached["whole"]) | set(period_parts.values())
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

    loaded = register.loaded + support_loaded + _count_by_file(totals, adoption)
    dropped = register.dropped + support_dropped + _count_by_file(totals_dropped,
                                                                   adoption_dropped)
    quarantined = _write_quarantine_csv(con, spill, out_dir / "quarantine.csv", cached)
    for report in reports:
        if report.kind is None:
            continue
        k = (report.source_file, report.sheet or "")
        report.loaded = loaded[k]
        report.duplicates_dropped = dropped[k]
        report.quarantined = quarantined[k]

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
    # support, totals and adoption are written and let go before the panel's sort, whose
    # DuckDB limit is what the process does not hold (register._fit_memory): held through
    # it, the 27M register's (support's 1.76M rows as Arrow, two copies of adoption's
    # rows as pandas) kept ~100 MB of it (stop 33: 548 -> 444 MB resident when the
    # sort's limit was fitted, 506 -> 615 MiB; the sort 368.5 -> 321.1 s)
    side_rows = {"support_rows": support_out.num_rows,
                 "totals_rows": 0 if totals is None else len(totals),
                 "adoption_rows": 0 if adoption is None else len(adoption)}
    unplaced = _write_side_tables(out_dir, register.unplaced, support_out, totals, adoption)
    del support_out, totals, adoption, totals_dropped, adoption_dropped
    goods.clear()
    _log_stage("support, totals, adoption written")
    # the period files first: the household count is taken from them (households.py)
    register.write(out_dir / "panel.parquet")
    summary = IngestSummary(
        raw_dir=raw_dir, out_dir=out_dir, tables=reports, errors=errors,
        ignored_files=ignored, panel_rows=register.rows,
        households=register.households, periods=register.periods,
        frequency=frequency if register.rows else None,
        register_kind=register_kind, register_kind_by_province=kind_by_province,
        register_kind_counts=kind_counts, **side_rows,
        file_hashes={rel: e["sha256"] for rel, e in entries.items()},
    )
    by_period.write_kind(out_dir / "panel.parquet", register_kind)
    if len(unplaced):  # names the 2025 map could not place (rows kept, "? name")
        _write_csv(unplaced, out_dir / "communes_unplaced.csv")
    elif (out_dir / "communes_unplaced.csv").exists():  # an earlier run's listing
        (out_dir / "communes_unplaced.csv").unlink()
    _write_json(summary.as_dict(), out_dir / "ingest_summary.json")
    cache.save({rel: {"sha256": e["sha256"], "stat": e["stat"],
                      "reports": [t.as_dict() if isinstance(t, TableReport) else t
                                  for t in e["reports"]],
                      "errors": list(e["errors"]),
                      "periods": register.file_periods.get(rel, {}),
                      "columns": file_columns.get(rel, [])} for rel, e in entries.items()},
               spill, set(entries),
               run={"frequency": frequency, "households": register.households,
                    "columns": sorted(set().union(*file_columns.values()))
                    if file_columns else [],
                    "periods": register.period_results})
    _log_stage("cache saved")
    summary.reused_files = reused
    summary.seconds = time.perf_counter() - started
    return summary


def _write_side_tables(out_dir: Path, register_unplaced: pd.DataFrame, support: pa.Table,
                       totals: pd.DataFrame | None, adoption: pd.DataFrame | None
                       ) -> pd.DataFrame:
    """support.parquet, totals.parquet and adoption.parquet (an earlier run's totals or
    adoption removed when this data has none); returns the 2025 names not placed, the
    register's and the totals' (communes_unplaced.csv)."""
    unplaced = register_unplaced.assign(table="register")
    if totals is not None:
        totals_out = _finish_totals(totals)
        unplaced = pd.concat([unplaced, pd.DataFrame(
            totals_out.attrs.pop("unplaced"), columns=list(register_unplaced.columns)
        ).assign(table="household totals")], ignore_index=True)
        _write_parquet(totals_out, out_dir / "totals.parquet")
    elif (out_dir / "totals.parquet").exists():  # an earlier run's totals, not this data's
        (out_dir / "totals.parquet").unlink()
    if adoption is not None:
        _write_parquet(_finish_adoption(adoption), out_dir / "adoption.parquet")
    elif (out_dir / "adoption.parquet").exists():  # an earlier run's register, not this data's
        (out_dir / "adoption.parquet").unlink()
    _write_parquet(support, out_dir / "support.parquet")
    return unplaced


def _count_by_file(*frames: pd.DataFrame | None) -> Counter:
    """Rows per (file, sheet) of the frames (per-table accounting from provenance)."""
    counter: Counter = Counter()
    for frame in frames:
        if frame is not None and len(frame):
            counter.update(zip(frame["_file"], frame["_sheet"]))
    return counter


def _support_table(frames: list[pd.DataFrame]):
    """support.parquet's table from the checked support rows (exact copies dropped,
    _finish_support), with the rows loaded and dropped per (file, sheet). Made before
    the register's steps and held as Arrow, not pandas: at 27M households support.csv
    holds 1.76M rows, and as pandas objects they kept ~440 MB resident through the
    panel's sort (the 3M demo with that support.csv: 852 MB held before its sort
    instead of 410, so DuckDB's limit was cut to 633 MiB and the sort took 16 ranges)."""
    support = pd.concat(frames, ignore_index=True) if frames else \
        pd.DataFrame(columns=schema.REQUIRED_SUPPORT_COLUMNS + _CARRIED)
    frames.clear()
    support, _, dropped = _duplicates(support, schema.SUPPORT_COLUMNS, False,
                                      identifiers=False)
    loaded, dropped = _count_by_file(support), _count_by_file(dropped)
    table = pa.Table.from_pandas(_finish_support(support), preserve_index=False)
    return table, loaded, dropped
