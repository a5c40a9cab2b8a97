"""Issue 11 §1: peak memory at most 2 GB at any size. Two mechanisms that held it up at
the national register (27M households, 135M rows; 4.0 GB peak on 2 Dec):

* the households table was built with a few arrays as long as a period's households
  beside it (2.3 GB above what was resident at 27M households);
* DuckDB's limit for panel.parquet's sort was 1 GB whatever the process already held,
  and what it held grew with the register (1.0-1.7 GB resident before the sort at 27M).
"""
from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import povdyn.ingest as ingest_module
from povdyn.ingest import households as households_module
from povdyn.ingest import ingest

from test_ingest_memory import _hashes  # noqa: E402  (sha256 of every output file)


def _period_files(folder: Path, periods: int, households: int, seed: int) -> tuple[dict, dict]:
    """Period files of random households (sorted pseudonyms, "h_" + 16 hex digits, as
    ingest writes them), each holding about 80% of `households`; (label -> path, label ->
    set of the ids as numbers)."""
    rng = np.random.default_rng(seed)
    everyone = np.unique(rng.integers(0, 2**64 - 1, households, dtype=np.uint64))
    outputs, truth = {}, {}
    for year in range(2021, 2021 + periods):
        ids = everyone[rng.random(len(everyone)) < 0.8]
        path = folder / f"period-{year}.parquet"
        pq.write_table(pa.table({"household_id": [f"h_{int(i):016x}" for i in ids]}), path,
                       row_group_size=1 << 14)
        outputs[str(year)], truth[str(year)] = path, set(ids.tolist())
    return outputs, truth


def test_the_households_table_is_built_holding_little_beside_itself(tmp_path, monkeypatch):
    """The table (8 bytes of id and a mask byte per household) is built from the period
    files merged as sorted streams into arrays grown in place: at most a quarter more
    than the table, plus a batch of ids per file and a round's work on them. Inserting
    one period after another (s20) held a period's ids (8 bytes each) and a second copy
    of the table beside it, some 2.7 times the table here. The table's answers are the
    planted sets'."""
    households, periods = 120_000, 5
    outputs, truth = _period_files(tmp_path, periods, households, seed=3)
    chunk = 1024  # ids read from a file, and looked up, at a time
    monkeypatch.setattr(households_module, "SEARCH_CHUNK", chunk, raising=False)
    monkeypatch.setattr(households_module, "ID_BATCH_ROWS", chunk, raising=False)
    tracemalloc.start()
    try:
        table = households_module.build(outputs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    everyone = set().union(*truth.values())
    assert table.count == len(everyone)
    assert table.ids.tolist() == sorted(everyone)
    for i, label in enumerate(table.labels):
        held = table.ids[(table.masks >> i & 1).astype(bool)]
        assert set(held.tolist()) == truth[label]
    size = table.ids.nbytes + table.masks.nbytes
    # a round's work (the ids taken, their order, masks, starts) is some 50 bytes an id
    # of a batch per file: 128 is ample
    assert peak <= 1.25 * size + 128 * periods * chunk, (peak, size)


def test_the_households_table_of_unsorted_or_foreign_ids(tmp_path):
    """A period file not sorted by household still gives the right table (built period
    by period); an id that is not an ingest pseudonym gives no table (SQL counts)."""
    outputs, truth = _period_files(tmp_path, 3, 5_000, seed=4)
    shuffled = pq.read_table(outputs["2022"]).to_pandas().sample(frac=1, random_state=1)
    pq.write_table(pa.Table.from_pandas(shuffled, preserve_index=False), outputs["2022"])
    table = households_module.build(outputs)
    assert table.ids.tolist() == sorted(set().union(*truth.values()))
    for i, label in enumerate(table.labels):
        assert set(table.ids[(table.masks >> i & 1).astype(bool)].tolist()) == truth[label]
    pq.write_table(pa.table({"household_id": ["h_0000000000000001", "HH-0002"]}),
                   outputs["2023"])
    assert households_module.build(outputs) is None


def test_the_sort_runs_under_the_limit_what_the_process_holds_leaves(tmp_path, monkeypatch):
    """panel.parquet's sort gets DuckDB's configured limit only while what the process
    holds beside it leaves room under PEAK_MEMORY: with 1.2 GB reported resident (of
    1.8 GB) the sort runs under a limit fitted to the rest, in more household ranges, and
    the outputs are the bytes of the run under the default 1 GB. Before, the sort ran
    under 1 GB whatever was resident."""
    from povdyn.synth import write_demo

    from povdyn.ingest import register

    monkeypatch.setattr(ingest_module.run, "_load_programs", lambda: None)
    monkeypatch.delenv("POVDYN_INGEST_MEMORY", raising=False)
    monkeypatch.setenv("POVDYN_INGEST_PEAK", "1800MiB")  # the fit, not the default's value
    write_demo(tmp_path / "raw", households=300, seed=5, progress=False)
    sorts = []
    real_ranges = register._household_ranges

    def ranges(con, rows, columns, window, coded=frozenset()):
        made = real_ranges(con, rows, columns, window, coded)
        sorts.append((register._memory_limit_bytes(con), made))
        return made

    monkeypatch.setattr(register, "_household_ranges", ranges)
    # rows sorted per byte of the limit scaled down, so that this small panel takes
    # ranges under 1 GB, as the national register does, and enough of them that their
    # number follows the limit: with the text sorted as ENUM codes (rows about a fifth
    # as wide) the value before, 5e-4, gave 3 and 7 ranges, short of 3 x 3 by rounding
    monkeypatch.setattr(register, "SORT_WIDTH_PER_MEMORY", 1.25e-4)
    # what the process holds is reported, not read: a test worker that ran other tests
    # first held 1.1 GB, and the "free" run's limit was fitted to 379 MB (a flake)
    real_memory = register._memory_mb
    resident_mb = 300
    monkeypatch.setattr(register, "_memory_mb",
                        lambda: (real_memory()[0], float(resident_mb)))
    free = ingest(tmp_path / "raw", tmp_path / "free", progress=False)
    (limit_free, ranges_free), = sorts
    assert limit_free > 900 * 2**20  # the default 1 GB (DuckDB reports 953.6 MiB)
    assert ranges_free > 1

    resident_mb = 1200
    sorts.clear()
    held = ingest(tmp_path / "raw", tmp_path / "held", progress=False)
    (limit_held, ranges_held), = sorts
    # what the process holds, the sort's memory beside DuckDB's buffers and the limit
    # add up to PEAK_MEMORY (DuckDB's own buffers, in the resident memory, are not taken
    # off twice: a few MB here)
    room = 1800 * 2**20 - resident_mb * 2**20
    assert room - getattr(register, "SORT_BESIDE_DUCKDB", 0) <= limit_held \
        <= room - getattr(register, "SORT_BESIDE_DUCKDB", 0) + 64 * 2**20, (limit_held, room)
    assert ranges_held >= ranges_free * (limit_free // limit_held) > ranges_free
    assert free.ok and held.ok and free.panel_rows == held.panel_rows > 4000
    assert _hashes(tmp_path / "free") == _hashes(tmp_path / "held")


def test_memory_duckdb_only_caches_is_not_counted_as_held(tmp_path, monkeypatch):
    """DuckDB's allocator keeps what its queries free until its memory limit is set
    again (malloc_trim does not return it): before the panel's sort on the 3M national
    demo, 237 MB of the 652 MB resident. _fit_memory gives that back before it reads
    what the process holds, so the step's limit is not cut by memory no one holds. Here
    a grouping over 5M rows leaves its freed memory with DuckDB; the limit fitted after
    it is the room PEAK_MEMORY leaves above what the process held before the query.
    Before, it was cut by the cached memory (to about room - 400 MB)."""
    from povdyn.ingest import register

    monkeypatch.setenv("POVDYN_INGEST_MEMORY", "4GB")  # the room, not the ceiling, binds
    con = register._duckdb(tmp_path, memory="2GB", threads=2)
    con.execute("SET memory_limit = '2GB'")  # DuckDB's cache given back: the baseline
    register._release_freed_memory()
    held_mb = register._memory_mb()[1]
    room = 600 << 20
    monkeypatch.setenv("POVDYN_INGEST_PEAK", f"{int(held_mb * 2**20) + room}B")
    con.execute("CREATE TEMP TABLE t AS SELECT i, md5(i::VARCHAR) AS s FROM range(5000000) r(i)")
    con.execute("SELECT i % 999983 AS k, count(*), min(s) FROM t GROUP BY k").fetchall()
    con.execute("DROP TABLE t")
    cached_mb = register._memory_mb()[1] - held_mb
    assert cached_mb > 150, cached_mb  # the query's freed memory is still resident
    limit = register._fit_memory(con, beside=0)
    assert limit > room - (80 << 20), (limit >> 20, cached_mb)
    con.close()


def _arrow_bytes() -> int:
    """Bytes allocated by every Arrow pool this pyarrow has (ingest switches the default
    pool while it runs: run._ingest)."""
    pools = [pa.system_memory_pool()]
    for make in (getattr(pa, "jemalloc_memory_pool", None),
                 getattr(pa, "mimalloc_memory_pool", None)):
        try:
            pools.append(make())
        except (TypeError, NotImplementedError, pa.ArrowException):
            pass
    return sum(pool.bytes_allocated() for pool in pools)


def _demo_with_support_rows(raw: Path, n: int):
    """A 300-household demo whose support.csv holds `n` rows (its own rows repeated, each
    with a household of its own); returns them."""
    import pandas as pd

    from povdyn.synth import write_demo

    write_demo(raw, households=300, seed=5, progress=False)
    seed_rows = pd.read_csv(raw / "support.csv", dtype=str)
    support = seed_rows.iloc[np.arange(n) % len(seed_rows)].reset_index(drop=True)
    support["household_id"] = [f"HX{i:08d}" for i in range(n)]
    support.to_csv(raw / "support.csv", index=False)
    return support


def test_support_rows_are_not_held_as_python_objects_through_the_panel_sort(tmp_path,
                                                                            monkeypatch):
    """support.parquet's rows are kept as Arrow, not pandas, while the register's steps
    run: at 27M households support.csv holds 1.76M rows, and as pandas objects they kept
    ~440 MB resident through the panel's sort, which cut DuckDB's limit (the 3M demo
    with that support.csv: 852 MB held before the sort, 478 MB with them as Arrow). Here
    200k support rows: the Python objects alive when the sort starts (tracemalloc; Arrow's
    buffers are not Python's) stay far below what those rows take as pandas (~60 MB), and
    support.parquet holds every row."""
    from povdyn.ingest import by_period

    monkeypatch.setattr(ingest_module.run, "_load_programs", lambda: None)
    raw = tmp_path / "raw"
    n = 200_000
    _demo_with_support_rows(raw, n)
    at_sort = []
    real_write = by_period.write_periods

    def write_periods(*args, **kwargs):
        at_sort.append(tracemalloc.get_traced_memory()[0])
        return real_write(*args, **kwargs)

    monkeypatch.setattr(by_period, "write_periods", write_periods)
    tracemalloc.start()
    try:
        summary = ingest(raw, tmp_path / "out", progress=False)
    finally:
        tracemalloc.stop()
    assert summary.balanced and summary.support_rows == n
    assert pq.ParquetFile(tmp_path / "out" / "support.parquet").metadata.num_rows == n
    assert at_sort and at_sort[0] < 25 * 2**20, at_sort[0] >> 20


def test_support_totals_and_adoption_are_written_and_let_go_before_the_panel_sort(
        tmp_path, monkeypatch):
    """support.parquet, totals.parquet and adoption.parquet are written before the
    panel's sort and not held through it: the sort's DuckDB limit is what the process
    does not hold (register._fit_memory), and on the 27M register the support rows as
    Arrow (68 MB allocated by Arrow's pool) and the adoption frames (two copies as
    pandas objects) kept ~100 MB of it (the limit 506 MiB, 615 once let go). Here 200k
    support rows: when the sort starts support.parquet and adoption.parquet are written,
    in full (the demo has no totals), Arrow's pool holds far less than those rows, and
    no adoption row is alive."""
    import gc

    import pandas as pd

    from povdyn.ingest import by_period

    monkeypatch.setattr(ingest_module.run, "_load_programs", lambda: None)
    raw, out = tmp_path / "raw", tmp_path / "out"
    n = 200_000
    support = _demo_with_support_rows(raw, n)
    adoption_rows = len(pd.read_csv(raw / "adoption.csv", dtype=str))
    at_sort = {}
    real_write = by_period.write_periods

    def adoption_frames():
        return [o for o in gc.get_objects() if isinstance(o, pd.DataFrame)
                and "adoption_year" in o.columns and len(o) > 0]

    # frames other tests left in this process (a cache, under xdist) are not this run's:
    # held here so that their ids stay theirs
    earlier = adoption_frames()

    def write_periods(*args, **kwargs):
        gc.collect()
        at_sort["arrow_mb"] = (_arrow_bytes() - arrow_before) / 2**20
        at_sort["adoption_frames"] = sum(
            not any(o is e for e in earlier) for o in adoption_frames())
        at_sort["rows"] = {name: pq.ParquetFile(out / name).metadata.num_rows
                           for name in ("support.parquet", "adoption.parquet")
                           if (out / name).exists()}
        return real_write(*args, **kwargs)

    monkeypatch.setattr(by_period, "write_periods", write_periods)
    held = pa.table({c: support[c] for c in support.columns}).nbytes / 2**20
    gc.collect()
    arrow_before = _arrow_bytes()  # other tests' tables (a cache, under xdist)
    summary = ingest(raw, out, progress=False)
    assert summary.balanced and summary.support_rows == n
    assert at_sort["rows"] == {"support.parquet": n, "adoption.parquet": adoption_rows}
    assert at_sort["adoption_frames"] == 0
    assert at_sort["arrow_mb"] < held / 4, (at_sort["arrow_mb"], held)


def test_arrow_buffers_come_from_the_c_library_while_ingest_runs(tmp_path, monkeypatch):
    """While ingest runs, its process's Arrow buffers come from the C library's allocator
    (the system pool), whose freed memory malloc_trim returns before each step's DuckDB
    limit is fitted: pyarrow's default pool (mimalloc) kept 39-53 MB of freed pages
    resident through the panel's sort (10M and 27M rows), memory the sort's limit lacked.
    Checked: the pool while the panel is written, and the caller's pool afterwards, also
    after a failed run."""
    from povdyn.ingest import by_period
    from povdyn.synth import write_demo

    monkeypatch.setattr(ingest_module.run, "_load_programs", lambda: None)
    raw = tmp_path / "raw"
    write_demo(raw, households=300, seed=5, progress=False)
    caller = pa.default_memory_pool()
    seen = {}
    real_write = by_period.write_periods

    def write_periods(*args, **kwargs):
        seen["pool"] = pa.default_memory_pool().backend_name
        return real_write(*args, **kwargs)

    monkeypatch.setattr(by_period, "write_periods", write_periods)
    summary = ingest(raw, tmp_path / "out", progress=False)
    assert summary.balanced
    assert seen["pool"] == "system"
    assert pa.default_memory_pool().backend_name == caller.backend_name

    def broken(*args, **kwargs):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(by_period, "write_periods", broken)
    with pytest.raises(RuntimeError, match="the disk is full"):
        ingest(raw, tmp_path / "out2", progress=False)
    assert pa.default_memory_pool().backend_name == caller.backend_name


def test_the_range_workers_are_gone_before_the_last_batches_are_checked(tmp_path,
                                                                       monkeypatch):
    """The range workers' processes are closed before the batches still pending at the
    end of the read (here support.csv's rows) are checked: on the 27M register its 1.76M
    support rows took the ingest process to 1,083 MB while both workers were still alive
    beside it. Here the register is cut into byte ranges (two workers) and no worker pool
    is open while a support batch is checked."""
    from povdyn.ingest import parallel

    monkeypatch.setattr(ingest_module.run, "_load_programs", lambda: None)
    raw = tmp_path / "raw"
    _demo_with_support_rows(raw, 5000)
    monkeypatch.setattr(parallel, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(parallel, "RANGE_BYTES", 50_000)
    monkeypatch.setenv("POVDYN_INGEST_WORKERS", "2")
    open_pools = []
    started = []
    real_init, real_close = parallel._WorkerPool.__init__, parallel._WorkerPool.close

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        open_pools.append(self)
        started.append(self)

    def close(self, *args, **kwargs):
        if self in open_pools:
            open_pools.remove(self)
        return real_close(self, *args, **kwargs)

    monkeypatch.setattr(parallel._WorkerPool, "__init__", init)
    monkeypatch.setattr(parallel._WorkerPool, "close", close)
    pools_at_support = []
    real_check = ingest_module.run.check_batch

    def check_batch(frame, kind, *args, **kwargs):
        if kind == "support":
            pools_at_support.append(len(open_pools))
        return real_check(frame, kind, *args, **kwargs)

    monkeypatch.setattr(ingest_module.run, "check_batch", check_batch)
    summary = ingest(raw, tmp_path / "out", progress=False)
    assert summary.balanced and summary.support_rows == 5000
    assert started, "the register was not cut into byte ranges: the test checks nothing"
    assert pools_at_support and all(n == 0 for n in pools_at_support), pools_at_support
