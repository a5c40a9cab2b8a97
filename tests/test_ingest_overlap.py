"""The steps after the read, overlapped on two cores (issue 11 §1: the 1M csv within 1.5x
of pandas): period files compressed two at a time, a period's last row group written as
soon as its rows are all in, the 2025 names mapped while the register kind is counted,
and the commune index built cheaper. Each keeps the outputs' bytes."""
from __future__ import annotations

import hashlib
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from povdyn.ingest import by_period

ROW_GROUP = 1000  # small row groups: many writes per file


def _sorted_stream(periods: int = 4, rows: int = 2_500, seed: int = 3):
    """Rows sorted by period index, then household, as panel.parquet's one sort gives
    them (column _order last), with each period's schema and label."""
    rng = np.random.default_rng(seed)
    pieces, schemas, labels = [], {}, {}
    schema = pa.schema([pa.field("household_id", pa.string()),
                        pa.field("income_pc_month", pa.float64())])
    for order in range(periods):
        ids = np.sort(np.array([f"h_{v:016x}" for v in rng.integers(0, 2**63, rows)]))
        pieces.append(pa.table({"household_id": ids,
                                "income_pc_month": rng.normal(3e6, 1e6, rows),
                                "_order": np.full(rows, order, dtype=np.int64)}))
        labels[order] = f"{2020 + order}"
        schemas[labels[order]] = schema
    return pa.concat_tables(pieces), schemas, labels


def _digests(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.glob("period-*.parquet"))}


class _Watch:
    """Records each row group write (file, thread, rows) and the most writes running at
    once; each write is slowed down so that writes that can overlap do."""

    def __init__(self, monkeypatch, pause: float = 0.01):
        self.lock = threading.Lock()
        self.running = self.most = 0
        self.writes: list[tuple[str, int, int]] = []  # file, thread, first row's value
        original = pq.ParquetWriter.write_table
        watch = self

        def write_table(writer, table, row_group_size=None):
            with watch.lock:
                watch.running += 1
                watch.most = max(watch.most, watch.running)
                watch.writes.append((str(writer.where), threading.get_ident(),
                                     table.num_rows))
            try:
                time.sleep(pause)
                return original(writer, table, row_group_size=row_group_size)
            finally:
                with watch.lock:
                    watch.running -= 1

        monkeypatch.setattr(pq.ParquetWriter, "write_table", write_table)


def _write(folder, stream, schemas, labels, **one_sort):
    """write_periods of the stream (one_sort given only when asked: the old code has none)."""
    by_period.write_periods(folder, stream.to_batches(max_chunksize=700), schemas, labels,
                            set(labels.values()), **one_sort)


def test_period_files_are_compressed_two_at_a_time_each_in_order(tmp_path, monkeypatch):
    """When panel.parquet is one sort, row groups of different period files are written
    by WRITE_THREADS threads at once (zstd releases the GIL), never more; each file's
    row groups in their order, so the files are the bytes one writer at a time gives
    (WRITE_THREADS = 1)."""
    monkeypatch.setattr(by_period, "PERIOD_ROW_GROUP_ROWS", ROW_GROUP)
    stream, schemas, labels = _sorted_stream()
    one_sort = {"one_sort": True} if "one_sort" in by_period.write_periods.__code__.co_varnames \
        else {}  # (the old code, without it, is measured as it is)

    monkeypatch.setattr(by_period, "WRITE_THREADS", 1, raising=False)
    _write(tmp_path / "one", stream, schemas, labels, **one_sort)
    monkeypatch.setattr(by_period, "WRITE_THREADS", 2, raising=False)
    watch = _Watch(monkeypatch)
    _write(tmp_path / "two", stream, schemas, labels, **one_sort)

    assert _digests(tmp_path / "two") == _digests(tmp_path / "one")
    assert len(_digests(tmp_path / "two")) == 4
    assert watch.most == 2  # two files compressed at once, never three
    # not the caller's thread, and each file's row groups from one thread
    threads_of = {}
    for where, thread, _ in watch.writes:
        threads_of.setdefault(Path(where).name, set()).add(thread)
    assert all(len(t) == 1 for t in threads_of.values())
    assert threading.get_ident() not in set().union(*threads_of.values())
    for label in labels.values():  # rows in order, in row groups of ROW_GROUP
        file = pq.ParquetFile(tmp_path / "two" / by_period.period_file(label))
        assert [file.metadata.row_group(i).num_rows for i in range(file.num_row_groups)] == \
            [ROW_GROUP, ROW_GROUP, 500]
        ids = file.read().column("household_id").to_pylist()
        assert ids == sorted(ids)


def test_household_ranges_keep_one_write_at_a_time_in_the_caller(tmp_path, monkeypatch):
    """Without one sort (household ranges: the memory-bound case, whose memory beside
    DuckDB's buffers SORT_BESIDE_DUCKDB was measured with one writer), row groups are
    written one at a time, in the caller's thread."""
    monkeypatch.setattr(by_period, "PERIOD_ROW_GROUP_ROWS", ROW_GROUP)
    monkeypatch.setattr(by_period, "WRITE_THREADS", 2)
    stream, schemas, labels = _sorted_stream()
    watch = _Watch(monkeypatch)
    _write(tmp_path / "ranges", stream, schemas, labels, one_sort=False)
    assert watch.most == 1
    assert {thread for _, thread, _ in watch.writes} == {threading.get_ident()}


def test_a_failed_period_write_is_raised_and_leaves_no_file(tmp_path, monkeypatch):
    """A write that fails in a writing thread is raised in the caller, and no period
    file nor temp file is left behind."""
    monkeypatch.setattr(by_period, "PERIOD_ROW_GROUP_ROWS", ROW_GROUP)
    stream, schemas, labels = _sorted_stream()
    original = pq.ParquetWriter.write_table
    calls = []

    def failing(writer, table, row_group_size=None):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full (planted)")
        return original(writer, table, row_group_size=row_group_size)

    monkeypatch.setattr(pq.ParquetWriter, "write_table", failing)
    with pytest.raises(OSError, match="planted"):  # in a writing thread
        _write(tmp_path / "out", stream, schemas, labels, one_sort=True)
    assert list((tmp_path / "out").iterdir()) == []


def test_one_sort_writes_a_periods_last_row_group_when_the_next_period_begins(
        tmp_path, monkeypatch):
    """With one sort of every row (one_sort), a period's last, short row group is written
    as soon as the next period's rows come, not with every period's at the end; the
    bytes are the same. Batches not sorted by period are refused."""
    monkeypatch.setattr(by_period, "PERIOD_ROW_GROUP_ROWS", ROW_GROUP)
    monkeypatch.setattr(by_period, "WRITE_THREADS", 1)  # writes in the order handed over
    stream, schemas, labels = _sorted_stream()
    keep = set(labels.values())
    watch = _Watch(monkeypatch, pause=0)
    orders = {}
    for one_sort in (False, True):
        watch.writes.clear()
        by_period.write_periods(tmp_path / str(one_sort), stream.to_batches(max_chunksize=700),
                                schemas, labels, keep, one_sort=one_sort)
        # (period label, rows) of each row group, in the order written
        orders[one_sort] = [(Path(w).name.split(".")[1].removeprefix("period-"), rows)
                            for w, _, rows in watch.writes]
    assert _digests(tmp_path / "True") == _digests(tmp_path / "False")
    periods = list(labels.values())
    assert orders[False] == [(p, ROW_GROUP) for p in periods for _ in range(2)] + \
        [(p, 500) for p in periods]
    assert orders[True] == [(p, rows) for p in periods for rows in (ROW_GROUP, ROW_GROUP, 500)]

    shuffled = pa.concat_tables([stream.slice(2_500), stream.slice(0, 2_500)])
    with pytest.raises(ValueError, match="not sorted by period"):
        by_period.write_periods(tmp_path / "bad", shuffled.to_batches(max_chunksize=700),
                                schemas, labels, keep, one_sort=True)


def test_the_2025_names_are_mapped_while_the_register_kind_is_counted(tmp_path, monkeypatch):
    """The names' mapping (Python) runs in a thread while DuckDB counts the register kind
    (register._communes_2025's `meanwhile`): the kind's count starts only once the
    mapping has begun here, which a mapping run after the kind never lets happen. The
    outputs are those of an ingest without the hooks."""
    from povdyn import geo
    from povdyn.ingest import ingest, register
    from povdyn.synth import write_demo

    raw = tmp_path / "raw"
    write_demo(raw, households=150, seed=4, fmt="csv", frequency="year", progress=False)
    plain = ingest(raw, tmp_path / "plain", progress=False)

    mapping = threading.Event()
    seen = []
    map_names, key_buckets = geo.commune_names_2025, register._key_buckets

    def mapped(*args, **kwargs):
        mapping.set()
        return map_names(*args, **kwargs)

    def buckets(con, rows):
        # the kind's buckets (not _repeated_keys'): asked for by the kind's own step
        if sys._getframe(1).f_code.co_name in ("count_kinds", "_register_stage"):
            seen.append(mapping.wait(timeout=5))
        return key_buckets(con, rows)

    monkeypatch.setattr(geo, "commune_names_2025", mapped)
    monkeypatch.setattr(register, "_key_buckets", buckets)
    hooked = ingest(raw, tmp_path / "hooked", progress=False)
    assert seen == [True]
    assert hooked.ok and plain.ok
    for name in ("quarantine.csv", "ingest_summary.json"):
        assert (tmp_path / "hooked" / name).read_bytes() == \
            (tmp_path / "plain" / name).read_bytes()
    assert _digests(tmp_path / "hooked" / "panel.parquet") == \
        _digests(tmp_path / "plain" / "panel.parquet")


def test_a_failure_while_mapping_the_2025_names_fails_the_ingest(tmp_path, monkeypatch):
    """An error in the mapping thread is raised by ingest, not lost with the thread."""
    from povdyn import geo
    from povdyn.ingest import ingest
    from povdyn.synth import write_demo

    raw = tmp_path / "raw"
    write_demo(raw, households=60, seed=4, fmt="csv", frequency="year", progress=False)

    def broken(*args, **kwargs):
        raise RuntimeError("crosswalk unreadable (planted)")

    monkeypatch.setattr(geo, "commune_names_2025", broken)
    with pytest.raises(RuntimeError, match="planted"):
        ingest(raw, tmp_path / "out", progress=False)


def test_the_commune_tables_name_parts_are_those_of_each_name():
    """geo._parts_of (once per distinct name) gives _unit_parts of every name, missing
    ones included, in order."""
    from povdyn import geo

    names = pd.Series(["Xã Tân Phú", None, "Phường 12", "Xã Tân Phú", float("nan"),
                       "P. 12", "Thị trấn Sa Pa", "Phường 12"], dtype=object)
    assert geo._parts_of(names) == [geo._unit_parts(n) for n in names]


def test_the_commune_index_has_the_keys_of_each_match_tier():
    """_commune_index's keys are _tier_key's (province, then the tier's parts), each
    listing its units in table order, as the lookups (_lookup) build them."""
    from povdyn import geo

    old, new = geo._commune_tables()
    old_index, new_index, _ = geo._commune_index()
    units = old.drop_duplicates("old_key")
    expected: dict = {tier: {} for tier in geo._OLD_DISTRICT_TIERS + geo._OLD_PROVINCE_TIERS}
    for row in units.itertuples(index=False):
        parts = {"da": row.district_accented, "df": row.district_key, "k": row.commune_kind,
                 "a": row.commune_accented, "f": row.commune_key}
        for tier, index in expected.items():
            index.setdefault(geo._tier_key(row.old_province, tier, parts), []).append(
                row.old_key)
    assert old_index == expected
    assert all(list(old_index[t]) == list(expected[t]) for t in expected)
    expected_new: dict = {tier: {} for tier in geo._NEW_TIERS}
    for row in new.itertuples(index=False):
        parts = {"k": row.commune_kind, "a": row.commune_accented, "f": row.commune_key}
        for tier, index in expected_new.items():
            index.setdefault(geo._tier_key(row.province_2025, tier, parts), []).append(
                row.commune_code)
    assert new_index == expected_new
