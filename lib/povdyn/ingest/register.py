"""The checks across all rows, in DuckDB with a memory limit: period frequency, exact
duplicates, conflicts, register kind counts, the 2025 commune, and panel.parquet and
quarantine.csv streamed out sorted (issue 11 §1); rows wait in parquet spill parts."""
from __future__ import annotations

import functools
import math
import shutil
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .. import schema
from ..periods import parse_period
from .checking import QUARANTINE_LEAD, _CARRIED, _IDENT, _PROVENANCE, _ident_sql, _raw_text
from . import by_period, household_ranges, households
from .ahead import made_ahead
from .kinds import decide_kinds
from .writing import _atomic_write_bytes, _empty, _finish_panel, _write_csv, _write_parquet


_STAGE_CLOCK = [0.0, 0.0]  # wall clock and this process's CPU time at the stage's start
STAGE_PEAK_MB = [0.0]  # the largest stage peak _log_stage printed (VmHWM is reset by it)


def _log_stage(label: str, start: bool = False) -> None:
    """With POVDYN_INGEST_TIMING=1, print each stage's seconds to stderr (where the time
    of a large ingest goes; benchmarks/bench_ingest.py --national), and this process's
    peak resident memory during the stage (its workers' are their own): the high-water
    mark is reset at each stage's start where Linux allows (/proc/self/clear_refs), so
    the stage that sets the whole run's peak is named; last, the CPU seconds of this
    process's threads (DuckDB's, pyarrow's) during the stage."""
    import os
    import sys
    import time

    now, cpu = time.perf_counter(), time.process_time()
    if os.environ.get("POVDYN_INGEST_TIMING"):
        if not start:
            peak, rss = _memory_mb()
            STAGE_PEAK_MB[0] = max(STAGE_PEAK_MB[0], peak)
            print(f"ingest stage: {label}: {now - _STAGE_CLOCK[0]:.1f} s, peak {peak:.0f} MB "
                  f"(resident after: {rss:.0f} MB), {cpu - _STAGE_CLOCK[1]:.1f} CPU-s",
                  file=sys.stderr, flush=True)
        try:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")  # VmHWM := VmRSS
        except OSError:
            pass
    _STAGE_CLOCK[:] = [now, cpu]


def _memory_mb() -> tuple[float, float]:
    """This process's VmHWM and VmRSS in MB (nan where /proc does not give them)."""
    found = {}
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(("VmHWM:", "VmRSS:")):
                    found[line[:5]] = int(line.split()[1]) / 1024
    except OSError:
        pass
    return found.get("VmHWM", float("nan")), found.get("VmRSS", float("nan"))


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


INGEST_MEMORY = "1GB"  # DuckDB's share (POVDYN_INGEST_MEMORY); it spills to disk beyond this
# Beyond it (issue 11 §1): freed memory the allocators keep. DuckDB's own allocator keeps
# what its queries free until its memory limit is set again, which malloc_trim does not
# return (_release_freed_memory sets it: 237 MB before the 3M demo's sort); glibc's
# arenas keep theirs until malloc_trim (515 MB after the 3M demo's panel write).
PEAK_MEMORY = "1000MiB"  # (POVDYN_INGEST_PEAK) what this process may hold in the steps
# after the read (issue 11 §1: at most 2 GB at any size, default settings, and flat
# between sizes): DuckDB's limit for each step is INGEST_MEMORY, or less when what the
# process already holds outside DuckDB, plus that step's own memory beside DuckDB's
# buffers, leaves less (_fit_memory). Chosen so that the panel's sort, its text carried
# as ENUM codes (_sort_enums), is no higher than the read. Measured on 4 Dec (stop 35),
# the 10M benchmark register's sort: 12.3-13.5 s in one range under 396-544 MiB at
# 950-1100MiB (process peaks 895-1,059 MB), 12.9 s under 206 MiB at 760MiB; as text
# under 791 MiB at 1350MiB (the value before) 17.1 s. The bench at 1000MiB: 10M tree
# peak 1,003 MB against 928 MB at 1M (1.08x: flat). The 27M register's sort: 64 ranges
# under 230 MiB, 303.9 s, process peak 997 MB, against 310.0 s in 128 ranges under
# 637 MiB as text at 1350MiB the day before.
# Earlier: what the process held before the sort grew with the register until two causes
# were fixed (memory DuckDB's allocator only caches was counted as held; support rows
# held as pandas objects).
MIN_INGEST_MEMORY = "128MiB"  # DuckDB's limit is never fitted below this (it then spills
# more, and a range's sort that runs out is sorted again as two halves)


def _release_freed_memory(con=None, limit: int | None = None) -> None:
    """Give memory freed by earlier steps back to the OS: DuckDB's (its allocator keeps
    what its queries free until its memory limit is set: on the 3M national demo 237 MB
    before the panel's sort that malloc_trim did not return; `con`'s limit is set again,
    to `limit` bytes or, rounded as DuckDB reports it, its value), pyarrow's pool's
    unused pages, then glibc's (malloc_trim; after panel.parquet's write on the 3M demo,
    515 MB). malloc_trim is a no-op where the C library has none."""
    import ctypes

    if con is not None:
        limit = _memory_limit_bytes(con) if limit is None else limit
        con.execute(f"SET memory_limit = '{limit // 1024}KiB'")
    pa.default_memory_pool().release_unused()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (AttributeError, OSError):
        pass


def _fit_memory(con, beside: int, ceiling: int | None = None) -> int:
    """Set DuckDB's memory limit for the next step so that this process stays under
    PEAK_MEMORY: what it holds now outside DuckDB's buffers (resident memory, after
    freed memory is given back, less DuckDB's own), plus `beside` bytes the step holds
    outside DuckDB's buffers, plus the limit. Never above `ceiling` (default: the
    configured limit, POVDYN_INGEST_MEMORY or INGEST_MEMORY) nor below MIN_INGEST_MEMORY.
    Returns the limit in bytes."""
    import os

    size = household_ranges.memory_bytes
    configured = size(os.environ.get("POVDYN_INGEST_MEMORY") or INGEST_MEMORY)
    ceiling = configured if ceiling is None else min(ceiling, configured)
    _release_freed_memory(con, ceiling)
    _, resident_mb = _memory_mb()
    limit = ceiling
    if resident_mb == resident_mb:  # not nan: /proc gives it
        in_duckdb = con.execute("SELECT coalesce(sum(memory_usage_bytes), 0) "
                                "FROM duckdb_memory()").fetchall()[0][0]
        outside = max(0, int(resident_mb * 2**20) - int(in_duckdb))
        peak = size(os.environ.get("POVDYN_INGEST_PEAK") or PEAK_MEMORY)
        limit = max(size(MIN_INGEST_MEMORY), min(ceiling, peak - outside - beside))
    con.execute(f"SET memory_limit = '{limit // 1024}KiB'")
    return limit


WRITE_BATCH_ROWS = 1 << 14  # rows per DuckDB batch read while writing panel.parquet's
# period files (whose row groups are by_period.PERIOD_ROW_GROUP_ROWS) and quarantine.csv:
# with 1M the Arrow batches in flight took some 300 MB beside DuckDB's own memory; on the
# 600k-household demo (one sort of 3M rows under 1 GB) the sort's peak beside DuckDB's
# buffers was 460 MB with 256k-row batches, 390 MB with 64k, 270 MB with 16k
_DERIVED = ["_order", "_is_quarter"]  # period index and frequency, for sorting and checks


STEP_BESIDE_DUCKDB = 200 << 20  # the same for the steps that group or count (repeated
# keys, register kind, 2025 communes) and quarantine.csv's sort
SORT_BESIDE_DUCKDB = 320 << 20  # bytes panel.parquet's write holds outside DuckDB's
# buffers while a range sorts: the Arrow batches in flight (one made ahead, one written,
# the period files' pending row groups) and DuckDB's memory outside its buffer manager
# (270 MB measured with WRITE_BATCH_ROWS's 16k rows, and a margin)


CUT_FLUSH_ROWS = 8192  # rows of one household range a cut write holds before writing them
CUT_HELD_ROWS = 1 << 18  # ... and of all its ranges together: the 27M csv's 64 ranges hold
# 4,096 rows each (one 512 MB byte range's worker job: +315-363 MB at 8,192 rows, +172 MB
# at 4,096, the same CPU; its spill parts 5% larger, in 3.7 row groups instead of 2)


class _Spill:
    """Checked register rows and quarantine rows as parquet parts in a scratch folder:
    memory holds one batch at a time, DuckDB does the work across batches."""

    KINDS = ("register", "quarantine", "support", "totals", "adoption", "quarantine_run")

    def __init__(self, root: Path, cut_ranges: int = 0):
        self.root = root
        # > 1: register parts are written one per household range (household_ranges),
        # as the range workers do (parallel.py)
        self.cut_ranges = cut_ranges
        self.parts = {kind: [] for kind in self.KINDS}
        self.part_files: dict[Path, list[str]] = {}  # part -> source files of its rows
        self.period_quarantine: dict[str, Path] = {}  # label -> its run-level rows' part
        for name in self.parts:
            (root / name).mkdir(parents=True, exist_ok=True)

    def part_path(self, kind: str) -> Path:
        """A new part's path (written by the caller, then add_part)."""
        return self.root / kind / f"part-{len(self.parts[kind]):06d}-{uuid.uuid4().hex[:8]}.parquet"

    def add_part(self, kind: str, path: Path, files: list[str]) -> None:
        self.parts[kind].append(path)
        self.part_files[path] = sorted(files)

    def _write(self, kind: str, frame: pd.DataFrame) -> None:
        file_col = "source_file" if kind.startswith("quarantine") else "_file"
        if kind == "register" and self.cut_ranges > 1:
            cuts = household_ranges.intervals(self.cut_ranges)
            which = household_ranges.index_of(frame["household_id"].to_numpy(), cuts)
            pieces = [(frame.loc[which == i], household_ranges.part_suffix(*cuts[i]))
                      for i in np.unique(which)]
        else:
            pieces = [(frame, "")]
        for piece, suffix in pieces:
            path = self.root / kind / f"part-{len(self.parts[kind]):06d}{suffix}.parquet"
            pq.write_table(pa.Table.from_pandas(piece, preserve_index=False), path)
            self.parts[kind].append(path)
            self.part_files[path] = sorted(set(piece[file_col]))

    def write_register_rows(self, con, relation, **options) -> list[Path]:
        """Write a DuckDB relation of checked register rows (parquet `options` as
        write_parquet takes them): one part, or one per household range holding rows
        when cut_ranges > 1 (DuckDB's partitioned write, in the same pass). Returns the
        parts, not yet added (add_part); nothing is left behind when the write fails."""
        path = self.part_path("register")
        if self.cut_ranges <= 1:
            try:
                relation.write_parquet(str(path), **options)
            except BaseException:
                path.unlink(missing_ok=True)
                raise
            return [path]
        cuts = household_ranges.intervals(self.cut_ranges)
        folder = path.with_suffix(".cut")
        # every range's rows wait in memory until they are a row group (CUT_FLUSH_ROWS,
        # fewer when many ranges would hold more than CUT_HELD_ROWS): a worker's byte
        # range (~1.6M rows) would otherwise be held whole before the first flush
        flush_rows = max(1024, min(CUT_FLUSH_ROWS, CUT_HELD_ROWS // len(cuts)))
        con.execute(f"SET partitioned_write_flush_threshold = {flush_rows}")
        con.execute(f"SET partitioned_write_max_open_files = {len(cuts)}")
        try:
            relation.query("_rows", f"SELECT *, {household_ranges.index_sql('household_id', cuts)}"
                           " AS _range FROM _rows").write_parquet(
                str(folder), partition_by=["_range"], **options)
            made = []
            for i, (lo, hi) in enumerate(cuts):
                files = sorted((folder / f"_range={i}").glob("*.parquet"))
                for j, file in enumerate(files):
                    target = path.with_name(f"{path.stem}-{i:03d}{'' if j == 0 else f'-{j}'}"
                                            f"{household_ranges.part_suffix(lo, hi)}.parquet")
                    file.rename(target)
                    made.append(target)
            return made
        finally:
            con.execute("RESET partitioned_write_flush_threshold")
            con.execute("RESET partitioned_write_max_open_files")
            shutil.rmtree(folder, ignore_errors=True)

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

    def add_period_quarantine(self, label: str, frame: pd.DataFrame) -> None:
        """A period's run-level quarantine rows (odd frequency, conflicts): cached with
        the period (by_period), read again while the period is not worked on."""
        before = len(self.parts["quarantine_run"])
        self.add_quarantine(frame, run_level=True)
        if len(self.parts["quarantine_run"]) > before:
            self.period_quarantine[label] = self.parts["quarantine_run"][-1]

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


def _duckdb(scratch: Path, memory: str | None = None, threads: int | None = None):
    import duckdb

    from ..config import settings

    import os

    con = duckdb.connect(config={"memory_limit": memory or os.environ.get(
                                     "POVDYN_INGEST_MEMORY") or INGEST_MEMORY,
                                 "threads": threads or max(1, settings().duckdb_threads),
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
    kind: tuple = (None, {}, {}, [])
    write: object = None  # callable(panel_dir) writing panel.parquet's period files
    unplaced: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["province", "district", "commune", "reason", "candidates"]))
    period_results: dict = field(default_factory=dict)  # label -> by_period.PeriodResult
    period_quarantine: dict = field(default_factory=dict)  # label -> this run's run-level rows
    file_periods: dict = field(default_factory=dict)  # file -> {label: rows}
    rewrite: set = field(default_factory=set)  # the period files this run writes
    patched: set = field(default_factory=set)  # the period files patched (by_period)
    patch: object = None  # their households' new own 2025 commune (by_period.own_patch)
    views: dict = field(default_factory=dict)  # view -> its SQL over the view before it
    parts: tuple = ((), (), frozenset())  # the register's new parts, cached parts, whole ones


COMMUNE_2025_COLUMNS = ["commune_2025", "commune_code", "commune_2025_basis"]


def _communes_2025(con, columns: list[str], views: dict,
                   meanwhile=lambda: None) -> tuple[dict, dict]:
    """The one place where ingest adds the 2025 commune (issue 13 §1): the distinct
    (province, district, commune, period) names of the checked rows are mapped in
    pandas through the official crosswalk (povdyn.geo.commune_names_2025) and joined
    back in DuckDB (view firsts_2025); a household's rows before July 2025 then take
    the commune it was first recorded in after it, inside each household-range part
    (_own_commune_2025_sql; geo.panel_commune_2025 is the same rule in pandas).
    Returns the names that could not be placed (rows kept with "? name") and whether
    any row is recorded in a new commune (else no household has one of its own).

    The names are mapped in a thread while `meanwhile()` (the register kind's queries)
    runs in this one: the mapping is Python holding the GIL, DuckDB's query threads run
    without it, so the two overlap on two cores (the 1M benchmark: ~0.4 CPU-s of
    mapping beside ~0.7 CPU-s of the kind's window)."""
    import threading

    names = con.execute("SELECT DISTINCT province, district, commune, _order, period "
                        "FROM firsts_groups ORDER BY ALL").df()
    mapping: dict = {}

    def map_names():
        try:
            mapping["result"] = _map_names_2025(names)
        except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread below
            mapping["error"] = exc

    thread = threading.Thread(target=map_names, name="povdyn-communes-2025", daemon=True)
    thread.start()
    try:
        meanwhile()
    finally:
        thread.join()
    if "error" in mapping:
        raise mapping["error"]
    mapped, unplaced_by_order, after_by_order = mapping["result"]
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
    # only the names' own mapping here (a join with a small table); a household's own
    # new commune is taken inside each household range (_own_commune_2025_sql): a join
    # of every row with a table of every household spilled 28 GB on the national
    # register (133M rows x 27M households)
    old = [c for c in COMMUNE_2025_COLUMNS if c in columns]
    exclude = f" EXCLUDE ({', '.join(old)})" if old else ""
    views["firsts_2025"] = f"""
        SELECT f.*{exclude}, m.commune_2025 AS _name_commune_2025,
               m.commune_code AS _name_commune_code,
               m.commune_2025_basis AS _name_commune_2025_basis,
               coalesce(m.is_post_merger, false) AS _name_is_post_merger
        FROM {{firsts}} f {join}"""
    con.execute("CREATE OR REPLACE TEMP VIEW firsts_2025 AS "
                + views["firsts_2025"].format(firsts="firsts"))
    return unplaced_by_order, after_by_order


def _firsts_groups(con, columns: list[str], yes_no: list[str]) -> None:
    """Temp table firsts_groups: the loaded rows (view firsts) counted by file, sheet,
    period and, with a commune column, the (province, district, commune) names, with the
    missing values of each yes/no column (_null_0, _null_1, ... in `yes_no`'s order)
    and the rows (_rows). One pass gives the rows loaded per table and period, the
    periods' indexes and the names _communes_2025 maps: the national register's 135M
    rows were read three times for them."""
    names = ""
    if "commune" in columns:
        district = "district" if "district" in columns else "CAST(NULL AS VARCHAR) AS district"
        names = f", province, {district}, commune"
    nulls = "".join(f", count(*) - count({_ident_sql(c)}) AS _null_{i}"
                    for i, c in enumerate(yes_no))
    con.execute("CREATE OR REPLACE TEMP TABLE firsts_groups AS SELECT _file, _sheet, period, "
                f"_order{names}{nulls}, count(*) AS _rows FROM firsts GROUP BY ALL")


def _map_names_2025(names: pd.DataFrame) -> tuple[pd.DataFrame, dict, dict]:
    """_communes_2025's mapping of the distinct names (pandas, no DuckDB): (the mapped
    names, unplaced names by period index, whether a period has a row recorded in a new
    commune)."""
    from ..geo import commune_names_2025

    names["district"] = names["district"].astype(object).where(names["district"].notna(), None)
    # mapped period by period: what a period's names could not place is kept with that
    # period (by_period: an incremental run maps only the periods it works on)
    pieces, unplaced_by_order, after_by_order = [], {}, {}
    for order, group in names.groupby("_order", sort=True):
        piece = commune_names_2025(group)
        pieces.append(piece)
        unplaced_by_order[int(order)] = _unplaced_records(piece.attrs.get("unmatched", []))
        after_by_order[int(order)] = bool((piece["is_post_merger"].eq(True) & (
            piece["commune_2025_basis"] == "recorded")).any())
    mapped = pd.concat(pieces, ignore_index=True) if pieces else commune_names_2025(names)
    return mapped, unplaced_by_order, after_by_order


UNPLACED_COLUMNS = ["province", "district", "commune", "reason", "candidates"]


def _unplaced_records(unmatched: list) -> list:
    frame = pd.DataFrame(unmatched, columns=UNPLACED_COLUMNS)
    frame["candidates"] = frame["candidates"].map(lambda c: "; ".join(c or []))
    frame = frame.astype(object).where(frame.notna(), None)
    return frame.to_dict("records")


def _unplaced_frame(records: list) -> pd.DataFrame:
    """The names the 2025 map could not place, over every period: each once, sorted (a
    full and an incremental run list them alike)."""
    frame = pd.DataFrame(records, columns=UNPLACED_COLUMNS)
    if not len(frame):
        return frame
    frame = frame.drop_duplicates()
    return frame.sort_values(UNPLACED_COLUMNS, key=lambda c: c.fillna("").astype(str),
                             kind="stable").reset_index(drop=True)


NAME_2025_COLUMNS = ["_name_commune_2025", "_name_commune_code", "_name_commune_2025_basis",
                     "_name_is_post_merger"]  # the names' own mapping, per row (firsts_2025)


def _own_commune_2025_sql(table: str, any_recorded_after: bool = True) -> str:
    """SELECT over `table` (rows of firsts_2025 holding all rows of their households)
    with the 2025 commune columns in place of the names' mapping: a household's rows
    before July 2025 take the commune it was first recorded in after it (basis
    'household'), as geo.panel_commune_2025 does in pandas; rows without a household id
    keep their names' mapping (they belong to no household). Without any row recorded in
    a new commune (`any_recorded_after` False) no household has a commune of its own and
    the join is left out.

    Each household's first recorded new commune is grouped from its post-merger rows
    alone and joined to its rows: a window over every row of `table` (all its columns
    partitioned by household) took twice the CPU (the 3M demo's first sort range, 1.85M
    rows: 4.1 vs 1.9 CPU-s before the sort; 6.3 vs 5.5 with it; same rows out). `table`
    holds whole households of one sort range (or the whole register when it is sorted in
    one piece), so the grouped households stay few."""
    if not any_recorded_after:
        return (f"SELECT * EXCLUDE ({', '.join(NAME_2025_COLUMNS)}), "
                "_name_commune_2025 AS commune_2025, _name_commune_code AS commune_code, "
                f"_name_commune_2025_basis AS commune_2025_basis FROM {table}")
    own = ("r.household_id IS NOT NULL AND NOT r._name_is_post_merger "
           "AND o._own_code IS NOT NULL")
    return f"""
        SELECT r.* EXCLUDE ({', '.join(NAME_2025_COLUMNS)}),
               CASE WHEN {own} THEN o._own_commune ELSE r._name_commune_2025 END
                 AS commune_2025,
               CASE WHEN {own} THEN o._own_code ELSE r._name_commune_code END
                 AS commune_code,
               CASE WHEN {own} THEN 'household' ELSE r._name_commune_2025_basis END
                 AS commune_2025_basis
        FROM {table} r LEFT JOIN (
          SELECT household_id, arg_min(_name_commune_2025, _order) AS _own_commune,
                 arg_min(_name_commune_code, _order) AS _own_code
          FROM {table} WHERE _name_is_post_merger AND _name_commune_2025_basis = 'recorded'
          GROUP BY household_id) o ON r.household_id = o.household_id"""


def _union_view(con, view: str, new_parts: list[Path], cached_parts: list[Path],
                file_col: str, whole: set[Path] = frozenset(), interval=None,
                shape: str | None = None) -> bool:
    """Create `view` over this run's parts and, from the cache, the rows of unchanged
    files (temp table keep_files): cached parts in `whole` hold no other rows and are
    read as they are, the others filtered row by row. With an `interval` of household
    ranges (household_ranges), only its households' rows: the parts cut inside it are
    read whole, parts overlapping it filtered, the others not read; `shape` (a table
    without rows) then gives every column of the whole view, with its type. False when
    there is nothing to read."""
    new_parts = list(new_parts) + [p for p in cached_parts if p in whole]
    cached_parts = [p for p in cached_parts if p not in whole]
    pieces = []
    for name, parts, where in ((f"{view}_new", new_parts, []), (f"{view}_old", cached_parts, [
            f"{_ident_sql(file_col)} IN (SELECT f FROM keep_files)"])):
        groups = [(name, parts, where)]
        if interval is not None:
            lo, hi = interval
            inside, overlapping = [], []
            for part in parts:
                p_lo, p_hi = household_ranges.interval_of_part(part)
                if lo <= p_lo and p_hi <= hi:
                    inside.append(part)
                elif p_lo < hi and lo < p_hi:
                    overlapping.append(part)
            groups = [(name, inside, where), (f"{name}_cut", overlapping, where + [
                household_ranges.within_sql("household_id", lo, hi)])]
        for piece, paths, conditions in groups:
            if not paths:
                continue
            con.read_parquet([str(p) for p in paths], union_by_name=not _one_schema(paths)
                             ).create_view(piece, replace=True)
            pieces.append(f"SELECT * FROM {_ident_sql(piece)}"
                          + (" WHERE " + " AND ".join(conditions) if conditions else ""))
    if not pieces:
        return False
    if shape is not None:
        pieces.insert(0, f"SELECT * FROM {_ident_sql(shape)}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW {_ident_sql(view)} AS "
                + " UNION ALL BY NAME ".join(pieces))
    return True


def _one_schema(paths) -> bool:
    """All the parquet parts have one schema (column names and types, in order). Their
    view then reads them without union_by_name, which reads every part's footer again
    each time a query binds the view: ~3 CPU-s for the 4,400 parts of the 27M register
    (84 byte ranges x 64 household ranges), and each step's queries bind it anew. A
    part's schema is read once (its footer), kept by path, size and mtime."""
    first = None
    for path in paths:
        try:
            stat = Path(path).stat()
        except OSError:  # not one file (a glob): DuckDB unions whatever it finds
            return False
        key = _part_schema(str(path), stat.st_size, stat.st_mtime_ns)
        if first is None:
            first = key
        elif key != first:
            return False
    return True


@functools.lru_cache(maxsize=1 << 16)
def _part_schema(path: str, size: int, mtime_ns: int) -> str:
    return pq.read_schema(path).remove_metadata().to_string()


KEY_BYTES_PER_ROW = 48  # DuckDB memory per row when grouping by (household_id, period):
# measured about 24 bytes (2M rows needed 48 MB; its aggregate does not spill enough to
# stay under the limit), doubled for longer codes; the limit's half is left for the rest


def _memory_limit_bytes(con) -> int:
    """DuckDB's memory limit in bytes, as it reports it ("953.6 MiB")."""
    return household_ranges.memory_bytes(
        con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])


def _key_buckets(con, rows: int) -> int:
    """How many slices (by a hash of the key) a grouping over `rows` rows needs to stay
    within half of DuckDB's memory limit: at 133M rows (the national register) one
    GROUP BY household_id, period ran out of a 1 GB limit."""
    budget = max(1, _memory_limit_bytes(con) // 2)
    return max(1, -(-rows * KEY_BYTES_PER_ROW // budget))


def _repeated_keys(con, rows: int, quarterly: bool,
                   result: "_RegisterResult | None" = None) -> None:
    """Temp table `repeated`: the (household_id, period) keys held by more than one row
    of the main frequency. A key's copies share its hash, so each slice of the hash
    range is grouped on its own: memory stays within the limit at any register size.
    When the parts are cut by household range, the slices are household ranges, each
    reading its own parts only (one scan in all, not one per slice)."""
    buckets = _key_buckets(con, rows)
    con.execute("CREATE OR REPLACE TEMP TABLE repeated AS SELECT household_id, period "
                "FROM reg LIMIT 0")
    frequency = f"{'' if quarterly else 'NOT '}_is_quarter"

    def repeated_sql(view: str, where: str) -> str:
        # the keys' 64-bit hashes are grouped first (a fixed-width key: 3.8-4.2 CPU-s on
        # the 3M demo's 14.8M rows, not 6.6-6.8 for the two texts), then only the rows
        # of a hash seen twice are grouped by their keys: exact whatever the hashes
        key = "hash(household_id, period)"
        return (f"INSERT INTO repeated SELECT household_id, period FROM {view} WHERE {where} "
                f"AND {key} IN (SELECT {key} FROM {view} WHERE {where} GROUP BY ALL "
                "HAVING count(*) > 1) GROUP BY ALL HAVING count(*) > 1")

    cuts = _cut_intervals(result, buckets, rows) if buckets > 1 and result else None
    for interval in cuts or ():
        if _range_views(con, result, interval, upto="reg"):
            con.execute(repeated_sql("range_reg", frequency))
    for bucket in range(buckets if cuts is None else 0):
        # integers written into the SQL (not parameters): DuckDB then pushes the slice
        # filter into the scan, 5x faster
        con.execute(repeated_sql("reg", f"{frequency} AND hash(household_id, period) % "
                                        f"{int(buckets)} = {int(bucket)}"))


def _distinct_households(con, view: str, rows: int) -> int:
    """count(DISTINCT household_id) over `view`, summed over slices of the hash range
    (a household falls in one slice), within the memory limit at any size."""
    buckets = _key_buckets(con, rows)
    return sum(con.execute(f"SELECT count(DISTINCT household_id) FROM {_ident_sql(view)} "
                           f"WHERE hash(household_id) % {int(buckets)} = {int(bucket)}"
                           ).fetchall()[0][0] for bucket in range(buckets))


def _register_stage(con, spill: _Spill, cached: dict | None = None,
                    plan_: "by_period.Plan | None" = None) -> _RegisterResult:
    """Across the checked register rows, in DuckDB: the period frequency (rows of the
    other frequency quarantined), exact duplicates dropped (first copy in file / sheet /
    row order kept), conflicting copies of a household and period quarantined, the
    register kind counted, and panel.parquet's period files streamed out sorted by
    household (by_period). Same rules as _period_frequency and _duplicates, which check
    the small tables. With `plan_` (an incremental run) only the rows of the plan's work
    periods are read and checked; the other periods' results are the last run's
    (by_period's docstring). Raises by_period.FullRunNeeded when the plan cannot give
    a full run's result, by_period.WorkExtended when it needs more periods."""
    result = _RegisterResult()
    fresh: dict[str, by_period.PeriodResult] = {}
    if plan_ is not None and not plan_.work:  # nothing added, changed or removed
        return _assemble(con, result, fresh, plan_, None, None)
    has_rows = _union_view(con, "reg_parts", spill.parts["register"],
                           (cached or {}).get("register", []), "_file",
                           (cached or {}).get("whole", frozenset()))
    counts = []
    if has_rows:
        # engine parts hold every row of their file, flagged ones with their raw cells
        # (_engine_check_register): those were re-checked into parts of their own
        extra = [c for c in _view_columns(con, "reg_parts")
                 if c == "_bad" or c.startswith("_raw_")]
        exclude = f" EXCLUDE ({', '.join(_ident_sql(c) for c in extra)})" if extra else ""
        conditions = ["NOT coalesce(_bad, false)"] if "_bad" in extra else []
        if plan_ is not None:
            con.execute("CREATE OR REPLACE TEMP TABLE work_periods (p VARCHAR)")
            con.executemany("INSERT INTO work_periods VALUES (?)", [[p] for p in plan_.work])
            conditions.append("period IN (SELECT p FROM work_periods)")
        result.views["reg"] = (f"SELECT *{exclude} FROM {{reg_parts}}"
                               + (" WHERE " + " AND ".join(conditions) if conditions else ""))
        result.parts = (spill.parts["register"], (cached or {}).get("register", []),
                        (cached or {}).get("whole", frozenset()))
        con.execute("CREATE OR REPLACE TEMP VIEW reg AS "
                    + result.views["reg"].format(reg_parts="reg_parts"))
        # every column of the register with its type, for views over some parts only
        con.execute("CREATE OR REPLACE TEMP TABLE reg_shape AS SELECT * FROM reg_parts LIMIT 0")
        # rows per file and period: the frequency, and (kept in the cache) which
        # periods each file's rows touch
        counts = con.execute("SELECT _file, period, _is_quarter, count(*) FROM reg "
                             "GROUP BY ALL ORDER BY ALL").fetchall()
    if not counts:
        if plan_ is not None:
            raise by_period.FullRunNeeded("no rows in the periods to work on")
        result.write = lambda panel_dir: _write_empty_panel(panel_dir)
        return result
    _log_stage("register views, rows per file and period")
    columns = _view_columns(con, "reg")
    if plan_ is None:
        n = sum(c[3] for c in counts)
        quarterly = sum(c[3] for c in counts if c[2]) * 2 > n
        for f, p, _, rows in counts:
            result.file_periods.setdefault(f, {})[p] = int(rows)
    else:
        quarterly = plan_.frequency == "quarter"
        result.file_periods = plan_.file_periods
        if by_period.register_columns(columns) != plan_.columns:
            raise by_period.FullRunNeeded("the work periods' files lack some columns")
        n = sum(c[3] for c in counts)
    result.frequency = "quarter" if quarterly else "year"
    for f, p, is_quarter, _ in counts:
        fresh.setdefault(p, by_period.PeriodResult())
    quarantine: dict[str, list] = {}
    if any(c[2] != quarterly for c in counts):
        odd = con.execute("SELECT * FROM reg WHERE _is_quarter <> ?", [quarterly]).df()
        other = "a quarter" if not quarterly else "a year"
        reason = (f"period: {other} in a register whose other rows are "
                  f"{'quarterly' if quarterly else 'annual'}: " + odd["period"].astype(str))
        odd_q = _as_quarantine(odd, reason)
        for label, piece in odd_q.groupby(odd["period"].astype(str).to_numpy(), sort=True):
            quarantine.setdefault(label, []).append(piece)
    data_cols = [c for c in columns if c not in _PROVENANCE and c not in _DERIVED]
    partition = ", ".join(_ident_sql(c) for c in data_cols)
    # Copies of a household and period are rare: find their keys with one narrow
    # aggregate, rank and compare only their rows, and read every other row straight
    # from the spill (views, not copies of the register)
    _fit_memory(con, STEP_BESIDE_DUCKDB)
    _repeated_keys(con, n, quarterly, result)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE ranked AS SELECT *, row_number() OVER (PARTITION BY "
        f"{partition} ORDER BY _file, _sheet, _row) AS _copy FROM reg "
        "SEMI JOIN repeated USING (household_id, period) WHERE _is_quarter = ?", [quarterly])
    for f, s, p, rows in con.execute("SELECT _file, _sheet, period, count(*) FROM ranked "
                                     "WHERE _copy > 1 GROUP BY ALL ORDER BY ALL").fetchall():
        fresh[p].dropped.append([f, s, int(rows)])
    con.execute("CREATE OR REPLACE TEMP TABLE repeated_firsts AS SELECT * EXCLUDE (_copy), "
                "count(*) OVER (PARTITION BY household_id, period) AS _n FROM ranked "
                "WHERE _copy = 1")
    con.execute("DROP TABLE ranked")
    _log_stage("frequency, repeated household-periods, exact copies")
    # {within}: the rows of one household range only (_period_writer)
    result.views["firsts"] = (
        "SELECT * FROM {reg} ANTI JOIN repeated USING (household_id, period) "
        f"WHERE {'' if quarterly else 'NOT '}_is_quarter "
        "UNION ALL BY NAME SELECT * EXCLUDE (_n) FROM repeated_firsts WHERE _n = 1 "
        "AND {within}")
    con.execute("CREATE OR REPLACE TEMP VIEW firsts AS "
                + result.views["firsts"].format(reg="reg", within="true"))
    clash = con.execute("SELECT * EXCLUDE (_n) FROM repeated_firsts WHERE _n > 1").df()
    if len(clash):
        labels = clash["period"].astype(str).to_numpy()
        clash = clash.drop(columns=_DERIVED)
        clash["period"] = schema._period_dtype(clash["period"].map(
            lambda v: int(v) if not quarterly else v))
        _, clash_q, _ = _duplicates(clash, ["household_id", "period"], True)
        by_label = pd.Series(labels, index=clash.index)
        for label, piece in clash_q.groupby(by_label.reindex(clash_q.index).to_numpy(),
                                            sort=True):
            quarantine.setdefault(label, []).append(piece)
    result.period_quarantine = {label: pd.concat(frames) for label, frames in
                                quarantine.items()}
    # the rows loaded per table and period, the yes/no columns' missing values (each
    # period file's schema: bool, or nullable boolean), the periods' indexes and the
    # commune names (_communes_2025) from one pass over the loaded rows: firsts_groups
    yes_no = [c for c in columns if _is_yes_no(c)]
    _firsts_groups(con, columns, yes_no)
    per_table = con.execute(
        "SELECT _file, _sheet, period"
        + "".join(f", sum(_null_{i})" for i in range(len(yes_no)))
        + ", sum(_rows) FROM firsts_groups GROUP BY ALL ORDER BY ALL").fetchall()
    for f, s, p, *missing, rows in per_table:
        entry = fresh[p]
        entry.loaded.append([f, s, int(rows)])
        for c, m in zip(yes_no, missing):
            entry.nulls[c] = entry.nulls.get(c, 0) + int(m)
    loaded_orders = con.execute("SELECT DISTINCT _order, period FROM firsts_groups").fetchall()
    label_of_order = {int(o): p for o, p in loaded_orders}
    _log_stage("conflicts, rows loaded per file and period")
    # the previous review's status is a window over each household's rows: computed in
    # slices of the hash range (a household falls in one), counts summed; in an
    # incremental run each household's last row before the work periods comes from
    # their files (prior_rows) and is counted in no period
    rows_sql = ("SELECT household_id, _order, period, province_2025, _file, _sheet, status, "
                "_exit, false AS _prior FROM firsts")
    if plan_ is not None:
        by_period.previous_rows(con, plan_)
        rows_sql += (" UNION ALL SELECT household_id, _order, NULL, NULL, NULL, NULL, status, "
                     "false, true FROM prior_rows")
    # the source's label is made per group, not per row
    kind_query = f"""
        SELECT period, province,
               _file || CASE WHEN _sheet <> '' THEN ' [sheet ' || _sheet || ']' ELSE '' END
                 AS source, what, sum(n) AS n FROM (
        SELECT period, province, _file, _sheet, what, count(*) AS n FROM (
          SELECT period, _prior, province_2025 AS province, _file, _sheet,
                 CASE WHEN status = 'poor' THEN 'poor'
                      WHEN status = 'near_poor' THEN 'near_poor'
                      WHEN status = 'non_poor' AND (_exit OR coalesce(lag(status) OVER w
                           IN ('poor', 'near_poor'), false)) THEN 'exit_marks'
                      WHEN status = 'non_poor' THEN 'non_poor'
                      ELSE 'removals' END AS what
          FROM ({{rows}}) WHERE {{where}}
          WINDOW w AS (PARTITION BY household_id ORDER BY _order))
        WHERE NOT _prior GROUP BY ALL) GROUP BY ALL"""

    def count_kinds():
        _fit_memory(con, STEP_BESIDE_DUCKDB)
        buckets = _key_buckets(con, n)
        cuts = _cut_intervals(result, buckets, n) if buckets > 1 else None
        if cuts is None:
            queries = (kind_query.format(rows=rows_sql, where=f"hash(household_id) % "
                                         f"{int(buckets)} = {int(b)}") for b in range(buckets))
        else:  # household ranges, each reading its own parts (and prior rows)
            queries = (kind_query.format(
                rows=rows_sql.replace("FROM firsts", "FROM range_firsts"),
                where=household_ranges.within_sql("household_id", *interval))
                for interval in cuts if _range_views(con, result, interval, upto="firsts"))
        for query in queries:
            for p, province, source, what, rows in con.execute(query).fetchall():
                fresh[p].cells.append([province, source, what, int(rows)])
        _log_stage("register kind counts")

    with_communes = "commune" in columns
    if with_communes:
        _fit_memory(con, STEP_BESIDE_DUCKDB)  # the distinct names' query
        # the kind is counted while the names are mapped (_communes_2025)
        unplaced, after = _communes_2025(con, columns, result.views, meanwhile=count_kinds)
        for order, records in unplaced.items():
            fresh[label_of_order[order]].unplaced = records
        for order, flag in after.items():
            fresh[label_of_order[order]].recorded_after = flag
        columns = [c for c in columns if c not in COMMUNE_2025_COLUMNS] + COMMUNE_2025_COLUMNS
    else:
        count_kinds()
    _log_stage("2025 communes")
    return _assemble(con, result, fresh, plan_, columns, label_of_order)


def _write_empty_panel(panel_dir: Path) -> None:
    """panel.parquet/ of a register without a loaded row: the canonical empty panel."""
    from .writing import _prepare_panel_dir

    _prepare_panel_dir(panel_dir)
    for path in panel_dir.glob("period-*.parquet"):
        path.unlink()
    _write_parquet(_finish_panel(pd.DataFrame(columns=schema.REQUIRED_PANEL_COLUMNS + _CARRIED)),
                   panel_dir / by_period.EMPTY_FILE)


def _assemble(con, result: _RegisterResult, fresh: dict, plan_, columns, label_of_order):
    """The run's results from this run's periods (`fresh`) and, in an incremental run,
    the last run's for the others; the write step (only the periods whose rows changed:
    all in a full run)."""
    previous = plan_.previous["periods"] if plan_ is not None else {}
    if plan_ is not None:
        result.frequency = plan_.frequency
        result.file_periods = plan_.file_periods
    quarterly = result.frequency == "quarter"
    current = {p for counts in result.file_periods.values() for p, n in counts.items() if n}
    merged = {}
    for label in sorted(current):
        if label in fresh:
            merged[label] = fresh[label]
        elif label in previous:
            merged[label] = by_period.PeriodResult(**previous[label])
        else:  # a period no file had last time must be among the work periods
            raise by_period.FullRunNeeded(f"period {label} has no result")
    result.period_results = merged
    for label, entry in merged.items():
        result.loaded.update({(f, s): n for f, s, n in entry.loaded})
        result.dropped.update({(f, s): n for f, s, n in entry.dropped})
    main = sorted((p for p, e in merged.items() if e.loaded
                   and by_period.is_quarter_label(p) == quarterly), key=by_period.order_of)
    result.periods = [p if quarterly else int(p) for p in main]
    result.rows = sum(n for e in merged.values() for _, _, n in e.loaded)
    cells = pd.DataFrame([c for e in merged.values() for c in e.cells],
                         columns=["province", "source", "what", "n"])
    if len(cells):
        cells = (cells.groupby(["province", "source", "what"], dropna=False, sort=True)["n"]
                 .sum().reset_index())
    result.kind = decide_kinds(cells)
    result.unplaced = _unplaced_frame([r for e in merged.values() for r in e.unplaced])
    any_recorded_after = any(e.recorded_after for e in merged.values())
    if plan_ is not None and columns is None:  # nothing to work on: all carried
        result.households = int(plan_.previous["households"])
        result.write = lambda panel_dir: None
        return result
    touched_main = {p for p in (plan_.touched if plan_ is not None else current)
                    if by_period.is_quarter_label(p) == quarterly}
    rewrite = {p for p in touched_main if p in main}
    table = None  # the households table (households.py), loaded before any file changes
    if plan_ is not None:
        table = households.load_or_build(plan_.cache_dir, plan_.outputs)
        _log_stage("households table")
        if "commune" in columns:
            found = by_period.own_commune_changes(con, plan_, table)
            outside = [p for p in found if p not in plan_.work]
            if outside:
                result.patch = by_period.own_patch(con)
                if result.patch is None:
                    raise by_period.WorkExtended(set(found))
                result.patched = set(outside)
            rewrite |= set(found) - result.patched
        _log_stage("own 2025 communes changed")
    result.rewrite = rewrite
    result.write = _period_writer(con, result, merged, columns, rewrite, set(main),
                                  label_of_order, any_recorded_after, quarterly,
                                  full=plan_ is None, table=table, changed=touched_main)
    return result


def _count_households(con, result: _RegisterResult, panel_dir: Path, table, changed: set,
                      current: set, full: bool) -> None:
    """result.households after the period files are written: from the households table
    (made from the files in a full run; in an incremental one the loaded table with the
    `changed` periods' households read again from their new files), saved beside the
    manifest; without a table, count(DISTINCT household_id) over the period files."""
    cache_dir = panel_dir.parent / ".ingest-cache"
    _release_freed_memory(con)  # the sort's, before the table is made beside what stays
    outputs = {label: panel_dir / by_period.period_file(label) for label in sorted(current)}
    if full or table is None:
        table = households.build(outputs)
    else:
        for label in sorted(changed):
            path = outputs.get(label)
            ids = households.ids_of_file(path) if path is not None else None
            if (path is not None and ids is None) or not table.set_period(
                    label, ids, by_period.signature(path) if path is not None else None):
                table = households.build(outputs)
                break
        if table is not None:
            table.files = {label: by_period.signature(path) for label, path in outputs.items()}
    if table is None:
        households.forget(cache_dir)
        if outputs:
            con.read_parquet([str(p) for p in outputs.values()]).create_view(
                "households_files", replace=True)
            result.households = _distinct_households(con, "households_files", result.rows)
        else:
            result.households = 0
    else:
        result.households = table.count
        table.save(cache_dir)
    _log_stage("households")


def _period_writer(con, result, merged, columns, rewrite, keep, label_of_order,
                   any_recorded_after, quarterly, full, table=None, changed=frozenset()):
    """The write step: panel.parquet/period-<label>.parquet for the periods in
    `rewrite`, each sorted by household (by_period.write_periods); period files not in
    `keep` are removed."""
    with_communes = "commune" in columns
    out_cols = schema.column_order([c for c in columns if not c.startswith("_")])
    stored = [c for c in out_cols if not (with_communes and c in COMMUNE_2025_COLUMNS)]
    select = ", ".join(
        _ident_sql(c) if c != "period" or quarterly else "CAST(period AS BIGINT) AS period"
        for c in stored + (NAME_2025_COLUMNS if with_communes else []))
    rewrite_orders = sorted(by_period.order_of(p) for p in rewrite)
    # a household's own 2025 commune (_own_commune_2025_sql) is needed only when a
    # pre-merger period is written (post-merger rows keep their names' mapping), over
    # every row of the work periods (they hold every post-merger period then)
    own_commune = with_communes and any_recorded_after and any(
        not by_period.is_post_merger(p) for p in rewrite)
    loaded, part_rows = "firsts", "{part}"
    if with_communes:
        loaded = "firsts_2025"
        part_rows = f"({_own_commune_2025_sql('{part}', own_commune)})"
    in_rewrite = f"_order IN ({', '.join(map(str, rewrite_orders)) or 'NULL'})"
    rows_where = "" if full or own_commune else f" WHERE {in_rewrite}"
    out_where = f" WHERE {in_rewrite}" if own_commune and not full else ""
    sort_rows = sum(n for p in rewrite for _, _, n in merged[p].loaded) if not own_commune \
        else result.rows if full else con.execute(
            f"SELECT count(*) FROM {loaded}").fetchall()[0][0]

    def write(panel_dir: Path) -> None:
        from .writing import _prepare_panel_dir

        _prepare_panel_dir(panel_dir)
        schemas = {p: _panel_schema(out_cols, merged[p].nulls, quarterly) for p in rewrite}
        columns_sql = ", ".join(_ident_sql(c) for c in out_cols)
        rows_query = f"SELECT {select}, _order FROM {loaded}{rows_where}"
        enums = _sort_enums(con, rows_query, out_cols, with_communes) if rewrite else {}
        # the ranges are counted for the limit what the process holds leaves (_fit_memory)
        sort_limit = _fit_memory(con, SORT_BESIDE_DUCKDB)
        ranges = _household_ranges(con, sort_rows, out_cols, own_commune, set(enums)) \
            if rewrite else 0
        folder = panel_dir.parent / f".panel-parts-{uuid.uuid4().hex}"
        # sorted from the cut parts through the views, a range needs more of DuckDB's
        # memory than from a scratch part (CUT_SORT_SPARE)
        cuts = _cut_intervals(result, ranges * CUT_SORT_SPARE, sort_rows) if ranges > 1 \
            else None
        if ranges <= 1:
            con.execute(f"CREATE OR REPLACE TEMP VIEW panel_rows AS {rows_query}")
            queries = [(None, part_rows.replace("{part}", "panel_rows"))] if rewrite else []
        elif cuts is not None:
            # the register parts are cut by household range (the range workers'): each
            # range reads its own parts through the same views as the whole register
            queries = [(interval, part_rows.replace("{part}", "panel_range_rows"))
                       for interval in cuts]
        else:
            # more rows than one sort holds within the memory limit: the rows go to
            # scratch parts unsorted, one per range of household_id; each part then gets
            # its households' own 2025 commune and is sorted alone, in period and
            # household order (DuckDB's lone sort does not spill without bound: 24M wide
            # rows did not sort in 256 MB; the national register has 133M)
            parts = _household_range_parts(con, rows_query, ranges, sort_rows, folder)
            _log_stage("panel rows with their names' 2025 commune (unsorted parts)")
            queries = [(part, part_rows.replace("{part}", "panel_part")) for part in parts]

        splits = []  # household ranges cut in two after running out of memory

        def range_batches(interval, sqls):
            """A household range's sorted rows; one whose sort runs out of memory (before
            any of its rows came out: a sort gives none before it is done) is sorted
            again as two halves (DuckDB does not spill the window and sort of the cut
            parts' rows within the limit the scratch parts' rows kept). The limit stays
            the one the ranges were counted for: fitted again per range (lowered when what
            the process held had grown), a range of the 27M register ran out of 156 MiB
            after its first rows had come out, which nothing can sort again."""
            import duckdb

            lo, hi = interval
            # glibc's, not DuckDB's: what DuckDB's allocator keeps from the last range
            # this one's sort reuses (given back before each, the 3M demo's 8 ranges
            # took 72-75 CPU-s, not 60-62)
            _release_freed_memory()
            if not _range_views(con, result, interval, loaded, rows_where, select):
                return
            try:
                reader, first = _first_sorted_batch(lambda sql: _sorted_reader(con, sql),
                                                    sqls)
            except StopIteration:
                return
            except (duckdb.OutOfMemoryException, OSError) as exc:
                if hi - lo < 2 or "Out of Memory" not in str(exc):
                    raise
                splits.append(interval)
                yield from range_batches((lo, (lo + hi) // 2), sqls)
                yield from range_batches(((lo + hi) // 2, hi), sqls)
                return
            yield first
            yield from reader

        def sorted_batches():
            for part, rows_sql in queries:
                sqls = _sort_sql(out_cols, f"{rows_sql}{out_where}", enums)
                if isinstance(part, tuple):
                    yield from range_batches(part, sqls)
                    continue
                try:
                    reader, first = _first_sorted_batch(
                        (lambda sql: _sorted_reader(con, sql)) if part is None else
                        (lambda sql, part=part: con.read_parquet(str(part)).query(
                            "panel_part", sql).to_arrow_reader(WRITE_BATCH_ROWS)), sqls)
                except StopIteration:
                    continue
                yield first
                yield from reader

        labels = {o: p for o, p in label_of_order.items() if p in rewrite}
        try:
            # one sort of every row (not household ranges): a period's last row group
            # is written as soon as the next period's rows come
            batches = made_ahead(sorted_batches(), name="povdyn-panel-batches")
            written = by_period.write_periods(panel_dir, batches, schemas, labels, keep,
                                              one_sort=ranges <= 1)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        sorted_files = len(written)
        if result.patched:  # households with a new own 2025 commune: two files at a time
            # (pyarrow reads, compresses and writes without the GIL)
            from concurrent.futures import ThreadPoolExecutor

            _release_freed_memory(con, sort_limit)  # the sort's: at 27M, 1.5 GB was resident

            with ThreadPoolExecutor(max_workers=2) as pool:
                done = {label: pool.submit(
                    by_period.patch_period, panel_dir / by_period.period_file(label),
                    result.patch, _panel_schema(out_cols, merged[label].nulls, quarterly))
                    for label in sorted(result.patched)}
                written.update({label: future.result() for label, future in done.items()})
        if result.patched:
            _log_stage(f"panel.parquet: {len(result.patched)} earlier period file(s) patched "
                       f"({result.patch.num_rows} households with a new own 2025 commune)")
        for label, entry in merged.items():  # kept in the manifest: the next run checks
            # that the files are still those (by_period.plan)
            entry.output = written[label] if label in written else \
                by_period.signature(panel_dir / by_period.period_file(label)) \
                if label in keep else None
        _log_stage(f"panel.parquet: {sorted_files} period file(s) sorted and written "
                   f"({len(queries)} household range{'s' if len(queries) != 1 else ''}"
                   f"{', read from the cut parts' if cuts is not None else ''}"
                   f"{f', {len(splits)} cut in two for memory' if splits else ''}; DuckDB's "
                   f"limit {sort_limit >> 20} MiB)")
        _count_households(con, result, panel_dir, table, changed, keep, full)

    return write


def _is_yes_no(column: str) -> bool:
    """A yes/no column of the panel (bool, or nullable boolean when a value is missing)."""
    return column in schema.BOOL_COLUMNS or column.startswith("dep_")


SORT_TEXT_BYTES = 40  # a text cell in DuckDB's sort: a 16-byte string header and its text
SORT_WIDTH_PER_MEMORY = 6  # bytes of rows (_sort_row_bytes) DuckDB sorts alone, spilling,
# per byte of its memory limit. Measured on the benchmark register's panel (bench_ingest.py,
# 26 columns, 477 bytes a row by _sort_row_bytes), streamed out of parquet parts: 2M rows
# sorted in 128 MB (7.5 bytes a byte), 3M did not (11); 6M sorted in 256 MB (11), 24M did
# not (45). With each household's own 2025 commune (a window over its rows) about half:
# 1M rows in 128 MB (3.7), not 2M (7.5); SORT_WIDTH_PER_MEMORY / 2 then.
# In the whole ingest (the sort over the loaded rows and their names' 2025 commune): 10M
# benchmark rows (4.8) and, with an added quarter, 12.5M (6.0) under 1 GB, parent peak
# 1.58 GB; 2M under 256 MB (3.7, test_ingest_memory's benchmark test).
# Rows whose text is sorted as ENUM codes (_sort_enums) count 2 bytes a coded cell: the
# 10M register's rows are 97 bytes so (477 as text), and sorted in one range under
# 206 MiB (4.5) at PEAK_MEMORY 760MiB.


def _sort_row_bytes(columns: list[str], coded: set = frozenset()) -> int:
    """A panel row's bytes in DuckDB's sort, by the columns' types (_panel_schema): text
    SORT_TEXT_BYTES (the period too), text sorted as an ENUM code (`coded`, _sort_enums) 2,
    numbers 8, yes/no 1, and the period index (_order) 8."""
    numbers = {"household_size", "income_pc_month", "weight"}  # period: counted as text
    return 8 + sum(1 if _is_yes_no(c) else 8 if c in numbers else 2 if c in coded
                   else SORT_TEXT_BYTES for c in columns)


def _household_ranges(con, rows: int, columns: list[str], window: bool,
                      coded: set = frozenset()) -> int:
    """How many ranges of household_id panel.parquet is sorted in: one sort of every row
    when DuckDB sorts them within its memory limit (SORT_WIDTH_PER_MEMORY; half as many
    rows with the `window` giving each household its own 2025 commune), else ranges of
    about equal rows, each sorted alone."""
    return max(1, math.ceil(rows / _sort_fits(con, columns, window, coded)))


def _sort_fits(con, columns: list[str], window: bool, coded: set = frozenset()) -> int:
    """Rows of panel.parquet DuckDB sorts alone within its current memory limit
    (_household_ranges)."""
    per_memory = SORT_WIDTH_PER_MEMORY / (2 if window else 1)
    return max(1, int(_memory_limit_bytes(con) * per_memory)
               // _sort_row_bytes(columns, coded))


SORT_ENUM_VALUES = 1 << 16  # a text column with more distinct values is sorted as text


def _sort_enums(con, rows_query: str, columns: list[str], with_communes: bool) -> dict:
    """ENUM types for panel.parquet's sort, {column: type}: each text column but
    household_id (a sort key) whose distinct values are at most SORT_ENUM_VALUES is cast
    to an ENUM of them before the sort and back to text after it (_sort_sql), so that
    DuckDB's sort carries a 1-2 byte code in place of a 16-byte string header and its
    text. The values are those of the register's rows (view reg: every row the sort can
    take, and more) and, for the 2025 commune columns, of the names' mapping (names_2025,
    and the basis 'household'). Measured on the 10M benchmark register's panel, sorted
    alone under 793 MiB: 12.2 s as text, 6.6 s with the codes (and 7.5 s under 300 MiB)."""
    described = {row[0]: row[1] for row in con.execute(f"DESCRIBE {rows_query}").fetchall()}
    named = set(COMMUNE_2025_COLUMNS) if with_communes else set()
    text = [c for c in columns if c != "household_id"
            and described.get(f"_name_{c}" if c in named else c) == "VARCHAR"]
    in_reg = [c for c in text if c not in named]
    if in_reg:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE sort_text AS SELECT "
            f"{', '.join(_ident_sql(c) for c in in_reg)} FROM reg GROUP BY GROUPING SETS "
            f"({', '.join('(' + _ident_sql(c) + ')' for c in in_reg)})")
    enums = {}
    for i, column in enumerate(text):
        name = _ident_sql(column)
        values = (f"SELECT DISTINCT {name} AS v FROM names_2025"
                  + (" UNION SELECT 'household'" if column == "commune_2025_basis" else "")
                  if column in named else f"SELECT DISTINCT {name} AS v FROM sort_text")
        values = f"SELECT v FROM ({values}) WHERE v IS NOT NULL"
        count = con.execute(f"SELECT count(*) FROM ({values})").fetchall()[0][0]
        if not 0 < count <= SORT_ENUM_VALUES:
            continue
        enums[column] = f"sort_enum_{i}"
        con.execute(f"DROP TYPE IF EXISTS {enums[column]}")
        con.execute(f"CREATE TYPE {enums[column]} AS ENUM ({values})")
    con.execute("DROP TABLE IF EXISTS sort_text")
    return enums


def _sort_sql(columns: list[str], rows_sql: str, enums: dict) -> list[str]:
    """The queries giving panel.parquet's rows of `rows_sql` sorted by period and
    household: with the text columns of `enums` sorted as ENUM codes and given back as
    text (a SELECT keeps the order of the sorted rows it reads: DuckDB's order
    preservation), then the same sort with them as text, which _first_sorted_batch falls
    back on when a value is not in its ENUM (no row is ever read from the first)."""
    names = [_ident_sql(c) for c in columns]
    plain = (f"SELECT {', '.join(names)}, _order FROM {rows_sql} "
             "ORDER BY _order, household_id")
    if not enums:
        return [plain]
    coded = ", ".join(f"CAST({n} AS {enums[c]}) AS {n}" if c in enums else n
                      for c, n in zip(columns, names))
    back = ", ".join(f"CAST({n} AS VARCHAR) AS {n}" if c in enums else n
                     for c, n in zip(columns, names))
    return [f"SELECT {back}, _order FROM (SELECT {coded}, _order FROM {rows_sql} "
            "ORDER BY _order, household_id)", plain]


def _first_sorted_batch(reader_of, sqls: list[str]):
    """(reader, its first batch) of the first of `sqls` whose sort runs (_sort_sql): a
    sort gives no row before it is done, so a value missing from an ENUM fails it before
    any row came out. StopIteration: no rows."""
    import duckdb

    for i, sql in enumerate(sqls):
        try:
            reader = reader_of(sql)
            return reader, reader.read_next_batch()
        except duckdb.ConversionException:
            if i == len(sqls) - 1:
                raise
    raise StopIteration


CUT_SORT_SPARE = 2  # household ranges sorted from the cut parts per range _household_ranges
# asks: on the 3M demo 750k rows a range ran out of 180 MB read through the views over the
# cut parts (1M did not from a scratch part); 375k sorted (the national register: 64
# ranges of 2.1M rows under 1 GB). At 27M under 615-620 MiB (stop 33) 64 ranges, one per cut
# (2.1M rows each, none ran out), were no faster than 128: 332.8 s against 321.1 s


def _sorted_reader(con, sql: str):
    """The batches of a sorting query (its sort runs when the first is read)."""
    return con.sql(sql).to_arrow_reader(WRITE_BATCH_ROWS)


def _cut_intervals(result: _RegisterResult, ranges: int, rows: int) -> list | None:
    """The household intervals (household_ranges) panel.parquet is sorted in when the
    register parts are cut by household range: the smallest power of two >= `ranges`
    (on the workers' cut, a power of two too: a part is read by one range, or its rows
    split between two when the cut is coarser). None when the
    rows not cut would be read too often (each range reads them again, filtered): more
    than `rows` in all."""
    import pyarrow.parquet as pq

    new, cached, whole = result.parts
    uncut = [p for p in list(new) + list(cached)
             if household_ranges.interval_of_part(p) == (0, household_ranges.UNITS)]
    if sum(pq.ParquetFile(p).metadata.num_rows for p in uncut) * ranges > rows:
        return None
    count = 1  # a power of two: whole ranges of a power-of-two cut, or halves of them
    while count < ranges:
        count *= 2
    return household_ranges.intervals(count)


def _range_views(con, result: _RegisterResult, interval, loaded: str = "firsts",
                 rows_where: str = "", select: str = "*", upto: str = "panel") -> bool:
    """Views range_reg, range_firsts (`upto` "reg", "firsts": no further) and
    panel_range_rows: the rows of the households in `interval` only, through the same
    views as the whole register over the parts holding them; panel_range_rows are the
    rows panel.parquet takes (as `loaded`, firsts or firsts_2025, gives them). False
    when no part holds any."""
    new, cached, whole = result.parts
    if not _union_view(con, "range_parts", new, cached, "_file", whole, interval=interval,
                       shape="reg_shape"):
        return False
    within = household_ranges.within_sql("household_id", *interval)
    con.execute("CREATE OR REPLACE TEMP VIEW range_reg AS "
                + result.views["reg"].format(reg_parts="range_parts"))
    if upto == "reg":
        return True
    con.execute("CREATE OR REPLACE TEMP VIEW range_firsts AS "
                + result.views["firsts"].format(reg="range_reg", within=within))
    if upto == "firsts":
        return True
    source = "range_firsts"
    if loaded == "firsts_2025":
        con.execute("CREATE OR REPLACE TEMP VIEW range_firsts_2025 AS "
                    + result.views["firsts_2025"].format(firsts="range_firsts"))
        source = "range_firsts_2025"
    con.execute(f"CREATE OR REPLACE TEMP VIEW panel_range_rows AS "
                f"SELECT {select}, _order FROM {source}{rows_where}")
    return True


def _case_search(column_sql: str, bounds: list, lo: int, hi: int) -> tuple[str, list]:
    """SQL (and its parameters) giving the index i in [lo, hi] of the range of `column_sql`
    among sorted `bounds` (range i: bounds[i-1] <= value < bounds[i]), by binary search:
    log2(ranges) comparisons per row."""
    if lo == hi:
        return str(int(lo)), []
    mid = (lo + hi + 1) // 2
    left, left_params = _case_search(column_sql, bounds, lo, mid - 1)
    right, right_params = _case_search(column_sql, bounds, mid, hi)
    return (f"CASE WHEN {column_sql} < ? THEN {left} ELSE {right} END",
            [bounds[mid - 1]] + left_params + right_params)


def _household_range_parts(con, query: str, ranges: int, rows: int,
                           folder: Path) -> list[Path]:
    """Write the rows of `query` to parquet parts, one per range of household_id (about
    `ranges` of them, of about equal rows: bounds from a sample of the `rows` loaded
    rows); returned in household order (a household's rows are all in one part; NULL ids,
    sorted last, in the last part)."""
    sample = sorted({v for (v,) in con.execute(
        "SELECT household_id FROM firsts WHERE household_id IS NOT NULL "
        f"USING SAMPLE reservoir({int(ranges * 64)} ROWS) REPEATABLE (11)").fetchall()})
    bounds = sorted({sample[len(sample) * i // ranges] for i in range(1, ranges)}) if sample \
        else []
    which, params = _case_search("household_id", bounds, 0, len(bounds))
    which = f"CASE WHEN household_id IS NULL THEN {len(bounds)} ELSE {which} END"
    per_range = max(2048, rows // max(1, ranges) // 8)  # rows a range holds before a flush
    con.execute(f"SET partitioned_write_flush_threshold = {int(per_range)}")
    con.execute(f"SET partitioned_write_max_open_files = {int(len(bounds) + 1)}")
    con.sql(f"SELECT *, {which} AS _range FROM ({query})", params=params).write_parquet(
        str(folder), partition_by=["_range"])
    con.execute("RESET partitioned_write_flush_threshold")
    con.execute("RESET partitioned_write_max_open_files")
    return [folder / f"_range={i}" / "*.parquet" for i in range(len(bounds) + 1)
            if (folder / f"_range={i}").exists()]


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
        elif _is_yes_no(col):
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
                       (cached or {}).get("quarantine", []), "source_file",
                       (cached or {}).get("whole", frozenset())):
        _write_csv(_empty(QUARANTINE_LEAD), path)
        return Counter()
    _fit_memory(con, STEP_BESIDE_DUCKDB)
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
    counts = _count_by_table(con, "SELECT source_file, sheet, count(*) FROM q GROUP BY ALL")
    _log_stage("quarantine.csv")
    return counts


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
