"""panel.parquet as one file per period, and the incremental run that rewrites only the
periods an added, changed or removed file can change (issue 11 §2: one added quarter of
the 27M-household register in minutes, not a full re-run).

Design
------
Output. ``OUT/panel.parquet`` is a folder: one file per period of the register,
``period-<label>.parquet`` (``period-2024.parquet``, ``period-2024Q3.parquet``), each
sorted by household_id, in row groups of PERIOD_ROW_GROUP_ROWS rows, its yes/no columns
``bool`` or nullable ``boolean`` by that period's own rows; ``_povdyn.json`` beside them
records the register kind (file names starting with ``_`` or ``.`` are skipped by
pyarrow, pandas, Spark and DuckDB's ``*.parquet`` glob). A file holds only what its
period's rows and the household's own 2025 commune decide, so a full ingest and an
incremental one write the same bytes, and an untouched period's file is left as it is
(not rewritten: same inode and mtime). A register with no loaded row writes
``part-empty.parquet`` (the canonical empty panel).

Incremental run (``plan``; the last run's manifest in OUT/.ingest-cache holds, per
period, the small results of the checks across rows: rows loaded, exact copies dropped
per table, yes/no nulls, register kind counts, the run-level quarantine rows, names the
2025 map could not place, and the signature of the period's file; per file, its rows per
period and its columns). The touched periods T are those of the rows of new and changed
files and of the earlier rows of changed and removed files. The checks across rows
are per household-period (exact copies, conflicts) or need the previous row of a
household (register kind), so they are run on the rows of the work periods W only:
T's labels of the other frequency (quarantined whole) and every period of the main
frequency from T's first on (the kind's lag), the rows read from this run's parts and
the cached parts of files with rows there, filtered by period. The previous row of a
household's first row in W is read from the files of the periods before W (newest
first, only for households not found yet). The households count comes from the
households table (households.py: each household's set of periods, kept beside the
manifest): the rewritten periods' households are read again from their new files, a
household left in no period is dropped. A household's own 2025 commune (its first
commune recorded after the mergers) can change only for households with post-merger
rows in T: where it does, the pre-merger periods holding their rows (the households
table says which) are rewritten too: those in W from their rows, those before W by
patching their file (patch_period: the changed households' rows get the new commune,
read and written row group by row group, no sort; when a household loses its own
commune they are added to T and W extended instead). Periods are written with the
same sort and the same row groups as in a full run.

A full run is made instead when there is no usable manifest, when the period files are
not those the manifest recorded (a failed or interrupted run, or a hand edit), when
the register's frequency or its set of columns changes, or when panel.parquet is still
an older single file. The summary's counts are the cached ones plus W's.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..geo import is_post_merger
from ..periods import parse_period

PERIOD_ROW_GROUP_ROWS = 1 << 17  # rows per row group of a period file (the demux in
# write_periods holds at most one such group per period being written)
KIND_FILE = "_povdyn.json"
EMPTY_FILE = "part-empty.parquet"


def period_file(label: str) -> str:
    """The name of a period's file inside panel.parquet/."""
    return f"period-{label}.parquet"


def label_of_file(name: str) -> str | None:
    if name.startswith("period-") and name.endswith(".parquet"):
        return name[len("period-"):-len(".parquet")]
    return None


def signature(path: Path) -> list[int] | None:
    """Size, modification time (ns) and inode of a period file (None: no file)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def order_of(label: str) -> int:
    return int(parse_period(label)[1])


def is_quarter_label(label: str) -> bool:
    return parse_period(label)[0] == "quarter"


class FullRunNeeded(Exception):
    """The incremental run cannot give a full run's bytes: make a full run."""


class WorkExtended(Exception):
    """Periods outside the work periods must be rewritten (a household's own 2025
    commune changed): plan again with them among the touched periods."""

    def __init__(self, periods: set):
        super().__init__(f"also rewrite {sorted(periods)}")
        self.periods = set(periods)


@dataclass
class Plan:
    """What an incremental run takes from the last one and which periods it works on."""
    previous: dict  # the last run's manifest "run" block
    frequency: str
    touched: set  # T: labels whose rows changed
    work: list  # W: labels whose rows are checked across rows this run
    outputs: dict  # label -> Path of the period file as the last run left it
    file_periods: dict  # every current file -> {label: rows}
    file_columns: dict  # every current file -> its register columns
    columns: list  # the union over the current files
    panel_dir: Path | None = None  # OUT/panel.parquet

    @property
    def cache_dir(self) -> Path:
        """OUT/.ingest-cache, where the households table is kept (households.py)."""
        return self.panel_dir.parent / ".ingest-cache"

    @property
    def main_work(self) -> list[str]:
        return [p for p in self.work if is_quarter_label(p) == (self.frequency == "quarter")]

    def prior(self) -> list[str]:
        """The main-frequency periods before W with a file, newest first."""
        first = min((order_of(p) for p in self.main_work), default=None)
        return sorted((p for p in self.outputs if first is not None and order_of(p) < first
                       and is_quarter_label(p) == (self.frequency == "quarter")),
                      key=order_of, reverse=True)


def register_columns(names) -> list[str]:
    """A part's register columns without the engine check's flag and raw cells."""
    return sorted(c for c in names if c != "_bad" and not c.startswith("_raw_"))


def plan(con, new_counts: dict, new_columns: dict, manifest: dict, keep: set,
         panel_dir: Path) -> Plan:
    """The incremental plan; FullRunNeeded (with the reason) when a full run is needed
    (module docstring). `new_counts`:
    file -> {label: rows} of this run's register parts; `new_columns`: file -> columns;
    `keep`: the files reused from the cache."""
    previous = manifest.get("run")
    if not previous or not panel_dir.is_dir():
        raise FullRunNeeded("no earlier per-period run to build on")
    recorded = {label: entry for label, entry in previous["periods"].items()
                if entry.get("output")}
    present = {label_of_file(p.name) for p in panel_dir.glob("period-*.parquet")}
    if present != set(recorded) or (panel_dir / EMPTY_FILE).exists():
        raise FullRunNeeded("the period files are not those the last run wrote")
    outputs = {}
    for label, entry in recorded.items():
        path = panel_dir / period_file(label)
        if signature(path) != entry["output"]:
            raise FullRunNeeded(f"{path.name} changed since the last run")
        outputs[label] = path
    files = manifest.get("files", {})
    file_periods = {f: dict(files[f].get("periods", {})) for f in keep}
    file_columns = {f: list(files[f].get("columns", [])) for f in keep}
    if any("periods" not in files[f] for f in keep):
        raise FullRunNeeded("the cache does not say which periods a file holds")
    file_periods.update(new_counts)
    file_columns.update(new_columns)
    columns = sorted(set().union(*file_columns.values())) if file_columns else []
    if columns != previous.get("columns"):
        raise FullRunNeeded("the register's columns changed")
    total = sum(n for counts in file_periods.values() for n in counts.values())
    quarter = sum(n for counts in file_periods.values() for p, n in counts.items()
                  if is_quarter_label(p))
    if not total:
        raise FullRunNeeded("no register rows")
    frequency = "quarter" if quarter * 2 > total else "year"
    if frequency != previous.get("frequency"):
        raise FullRunNeeded("the register's frequency changed")
    touched = {p for f, counts in new_counts.items() for p in counts}
    for f, entry in files.items():
        if f not in keep:  # changed or removed since the last run
            touched |= set(entry.get("periods", {}))
    return Plan(previous=previous, frequency=frequency, touched=touched,
                work=work_periods(touched, file_periods, frequency), outputs=outputs,
                file_periods=file_periods, file_columns=file_columns, columns=columns,
                panel_dir=panel_dir)


def work_periods(touched: set, file_periods: dict, frequency: str) -> list[str]:
    """W: the touched labels of the other frequency, and every current main-frequency
    period from the first touched one on (a household's next row takes its register
    kind from the row before it)."""
    quarterly = frequency == "quarter"
    current = {p for counts in file_periods.values() for p, n in counts.items() if n}
    main_touched = [order_of(p) for p in touched if is_quarter_label(p) == quarterly]
    odd = {p for p in touched if is_quarter_label(p) != quarterly}
    later = {p for p in current if is_quarter_label(p) == quarterly and main_touched
             and order_of(p) >= min(main_touched)}
    return sorted(odd | later | {p for p in touched if is_quarter_label(p) == quarterly},
                  key=lambda p: (is_quarter_label(p) != quarterly, order_of(p), p))


def previous_rows(con, plan_: Plan) -> None:
    """Temp table prior_rows (household_id, _order, status): for each household with a
    row in W's main periods, its last row before W, from the period files (newest
    first; each file is read only for the households not found in a later one)."""
    con.execute("CREATE OR REPLACE TEMP TABLE prior_need AS SELECT DISTINCT household_id "
                "FROM firsts WHERE household_id IS NOT NULL")
    con.execute("CREATE OR REPLACE TEMP TABLE prior_rows (household_id VARCHAR, "
                "_order BIGINT, status VARCHAR)")
    for label in plan_.prior():
        if not con.execute("SELECT count(*) FROM prior_need").fetchall()[0][0]:
            break
        con.read_parquet(str(plan_.outputs[label])).create_view("prior_file", replace=True)
        con.execute(f"INSERT INTO prior_rows SELECT household_id, {order_of(label)}, status "
                    "FROM prior_file SEMI JOIN prior_need USING (household_id)")
        con.execute("DELETE FROM prior_need WHERE household_id IN "
                    f"(SELECT household_id FROM prior_rows WHERE _order = {order_of(label)})")


def own_commune_changes(con, plan_: Plan, table=None) -> list[str]:
    """The pre-merger periods not in T that hold rows of households whose own 2025
    commune (their first commune recorded after the mergers) this run changes: those
    with post-merger rows in T, old or new, compared before and after. `table`: the
    households table (households.py) of the files as the last run left them, which
    says where those households have rows without reading the pre-merger files."""
    quarterly = plan_.frequency == "quarter"
    touched_post = [p for p in plan_.touched
                    if is_quarter_label(p) == quarterly and is_post_merger(p)]
    pre_outside = [p for p in plan_.outputs if is_quarter_label(p) == quarterly
                   and not is_post_merger(p) and p not in plan_.touched]
    if not touched_post or not pre_outside:
        return []
    # (a pre-merger period in T puts every later period, so every post-merger one, in W)
    post_out = [p for p in plan_.outputs if is_quarter_label(p) == quarterly
                and is_post_merger(p)]
    outside = [p for p in post_out if p not in plan_.work]

    def from_files(labels):
        return " UNION ALL ".join(
            f"SELECT household_id, {order_of(p)} AS _order, commune_2025 AS c, "
            f"commune_code AS k, commune_2025_basis = 'recorded' AS r "
            f"FROM read_parquet(${i + 1})" for i, p in enumerate(labels))

    orders = ", ".join(str(order_of(p)) for p in touched_post)
    old_sql = from_files(post_out)
    parameters = [str(plan_.outputs[p]) for p in post_out]
    con.execute(
        "CREATE OR REPLACE TEMP TABLE own_affected AS SELECT DISTINCT household_id FROM "
        "firsts_2025 WHERE household_id IS NOT NULL AND _name_is_post_merger AND "
        f"_name_commune_2025_basis = 'recorded' AND _order IN ({orders})")
    touched_files = [str(plan_.outputs[p]) for p in touched_post if p in plan_.outputs]
    if touched_files:
        con.read_parquet(touched_files).create_view("own_touched_files", replace=True)
        con.execute("INSERT INTO own_affected SELECT DISTINCT household_id FROM "
                    "own_touched_files WHERE commune_2025_basis = 'recorded' "
                    "EXCEPT SELECT household_id FROM own_affected")
    if not con.execute("SELECT count(*) FROM own_affected").fetchall()[0][0]:
        return []  # no household recorded in a new commune in T, before or after
    if old_sql:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE own_old AS SELECT household_id, "
            f"arg_min(struct_pack(c := c, k := k), _order) FILTER (WHERE r) AS own "
            f"FROM ({old_sql}) SEMI JOIN own_affected USING (household_id) GROUP BY ALL",
            parameters)
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE own_old (household_id VARCHAR, "
                    "own STRUCT(c VARCHAR, k VARCHAR))")
    new_parts = [f"SELECT household_id, _order, _name_commune_2025 AS c, "
                 f"_name_commune_code AS k, _name_commune_2025_basis = 'recorded' AS r "
                 f"FROM firsts_2025 WHERE _name_is_post_merger"]
    outside_sql = from_files(outside)
    if outside_sql:
        new_parts.append(outside_sql)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE own_new AS SELECT household_id, "
        "arg_min(struct_pack(c := c, k := k), _order) FILTER (WHERE r) AS own, "
        # as register._own_commune_2025_sql takes them (each its own arg_min)
        "arg_min(c, _order) FILTER (WHERE r) AS own_commune, "
        "arg_min(k, _order) FILTER (WHERE r) AS own_code "
        f"FROM ({' UNION ALL '.join(new_parts)}) SEMI JOIN own_affected USING (household_id) "
        "GROUP BY ALL", [str(plan_.outputs[p]) for p in outside])
    con.execute(
        "CREATE OR REPLACE TEMP TABLE own_changed AS SELECT household_id FROM own_affected "
        "LEFT JOIN own_old o USING (household_id) LEFT JOIN own_new n USING (household_id) "
        "WHERE o.own IS DISTINCT FROM n.own")
    if not con.execute("SELECT count(*) FROM own_changed").fetchall()[0][0]:
        return []
    if table is not None:
        from .households import ids_as_numbers

        ids = ids_as_numbers(con.sql("SELECT household_id FROM own_changed")
                             .to_arrow_table().column(0))
        if ids is not None:
            ids.sort()
            holding = table.periods_of(ids)
            return [label for label in pre_outside if label in holding]
    found = []
    for label in pre_outside:
        con.read_parquet(str(plan_.outputs[label])).create_view("own_pre_file", replace=True)
        if con.execute("SELECT count(*) FROM own_pre_file SEMI JOIN own_changed "
                       "USING (household_id)").fetchall()[0][0]:
            found.append(label)
    return found


def own_patch(con) -> pa.Table | None:
    """After own_commune_changes: the changed households' new own 2025 commune
    (household_id, commune_2025, commune_code; sorted), to patch into the rows of the
    pre-merger period files outside W (patch_period); None when a household loses its
    own commune (its rows then need their names' mapping: the periods are worked on)."""
    lost = con.execute("SELECT count(*) FROM own_changed LEFT JOIN own_new USING "
                       "(household_id) WHERE own_code IS NULL").fetchall()[0][0]
    if lost:
        return None
    return con.sql("SELECT household_id, own_commune AS commune_2025, own_code AS "
                   "commune_code FROM own_changed JOIN own_new USING (household_id) "
                   "ORDER BY household_id").to_arrow_table()


PATCHED_COLUMNS = ["commune_2025", "commune_code", "commune_2025_basis"]


def patch_period(path: Path, patch: pa.Table, schema: pa.Schema) -> list[int]:
    """Rewrite a pre-merger period file with the rows of the households in `patch` taking
    their new own 2025 commune (basis 'household', as a full run's sort gives them),
    the bytes of a full run. Only the three 2025 commune columns are read, patched row
    group by row group and written (pyarrow, the same settings and row groups as
    write_periods); every other column chunk is copied as it is (splice.py). A file
    splice.py cannot put together is read and written whole (_patch_whole). Returns the
    new file's signature."""
    from .splice import CannotSplice, splice_columns

    source = pq.ParquetFile(path)
    names = [n for n in PATCHED_COLUMNS if n in schema.names]
    if len(names) != len(PATCHED_COLUMNS) or any(
            source.metadata.row_group(g).num_rows > PERIOD_ROW_GROUP_ROWS
            for g in range(source.num_row_groups)):
        return _patch_whole(path, patch, schema)
    ids = np.asarray(patch.column("household_id").to_pylist(), dtype=object)
    columns_schema = pa.schema([schema.field(n) for n in names])
    replacement = path.with_name(f".{path.name}.{os.getpid()}.columns.tmp")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with pq.ParquetWriter(replacement, columns_schema, compression="zstd",
                              write_statistics=True) as out:
            for group in range(source.num_row_groups):
                table = _patched(source.read_row_group(group, columns=["household_id"] + names),
                                 patch, ids)
                out.write_table(table.select(names).cast(columns_schema),
                                row_group_size=PERIOD_ROW_GROUP_ROWS)
        try:
            splice_columns(path, replacement, tmp, names)
        except CannotSplice:
            return _patch_whole(path, patch, schema)
        os.replace(tmp, path)
    finally:
        for leftover in (replacement, tmp):
            if leftover.exists():
                leftover.unlink()
    return signature(path)


def _patched(table: pa.Table, patch: pa.Table, ids: np.ndarray) -> pa.Table:
    """A row group's rows (sorted by household) with the 2025 commune of the households
    in `patch` (sorted by household; `ids` its household ids as an array) replaced."""
    import pyarrow.compute as pc

    # both sorted by household: each row group looks up only the patch's slice within
    # its own household range (pseudonyms are ASCII hex: numpy's order is DuckDB's)
    bounds = pc.min_max(table.column("household_id")).as_py()
    low = int(np.searchsorted(ids, bounds["min"], side="left")) \
        if bounds["min"] is not None else 0
    high = int(np.searchsorted(ids, bounds["max"], side="right")) \
        if bounds["max"] is not None else 0
    if high <= low:
        return table
    part = patch.slice(low, high - low)
    where = pc.index_in(table.column("household_id"), value_set=part.column("household_id"))
    hit = pc.is_valid(where)
    for name in ("commune_2025", "commune_code"):
        new = pc.take(part.column(name), where)
        table = table.set_column(table.schema.get_field_index(name), name,
                                 pc.if_else(hit, new, table.column(name)))
    basis = table.schema.get_field_index("commune_2025_basis")
    return table.set_column(basis, "commune_2025_basis", pc.if_else(
        hit, pa.scalar("household"), table.column(basis)))


def _patch_whole(path: Path, patch: pa.Table, schema: pa.Schema) -> list[int]:
    """patch_period by reading and writing every column, row group by row group in the
    file's order (no sort)."""
    ids = np.asarray(patch.column("household_id").to_pylist(), dtype=object)
    source = pq.ParquetFile(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with pq.ParquetWriter(tmp, schema, compression="zstd", write_statistics=True) as out:
            for group in range(source.num_row_groups):
                table = _patched(source.read_row_group(group), patch, ids)
                out.write_table(table.cast(schema), row_group_size=PERIOD_ROW_GROUP_ROWS)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return signature(path)


WRITE_THREADS = 2  # period files compressed at once (write_periods) when panel.parquet is
# one sort: zstd runs without the GIL, so a second file's row groups are compressed while
# the first's are; each file's row groups in order, so the bytes are those of one writer
# at a time. Measured (bench_ingest, lock held, 2 runs each): 1M panel stage 1.1-1.2 ->
# 0.9 s; 10M 13.1-14.5 -> 11.3-13.9 s, its peak 1,469-1,478 -> 1,576-1,580 MB: the
# second writer holds ~100 MB more beside DuckDB's buffers than SORT_BESIDE_DUCKDB
# counts, which one sort (not bound by the limit) leaves room for. Household ranges (a
# register too large for one sort, the memory-bound case: 27M) keep one write at a time
# in the caller, as SORT_BESIDE_DUCKDB was measured


class _FileWrites:
    """Row groups written to their period files, `threads` at most at once: one thread
    per file (its row groups stay in order), the caller blocked while `threads` row
    groups are being written (memory: that many row groups beside the caller's pending
    rows); with one, each is written in the caller's thread. The first error of a write
    is raised in the caller."""

    def __init__(self, threads: int):
        import threading

        self._inline = threads <= 1  # one at a time: written in the caller's thread
        self._slots = threading.BoundedSemaphore(max(1, threads))
        self._queues: dict = {}
        self._threads: list = []
        self._errors: list[BaseException] = []

    def _serve(self, jobs) -> None:
        while (job := jobs.get()) is not None:
            handle, table, rows = job
            try:
                if not self._errors:
                    handle.write_table(table, row_group_size=rows)
            except BaseException as exc:  # noqa: BLE001 - raised in the caller (check)
                self._errors.append(exc)
            finally:
                self._slots.release()

    def check(self) -> None:
        if self._errors:
            raise self._errors[0]

    def write(self, key, handle, table: pa.Table, rows: int) -> None:
        import queue
        import threading

        self.check()
        if self._inline:
            handle.write_table(table, row_group_size=rows)
            return
        if key not in self._queues:
            self._queues[key] = jobs = queue.SimpleQueue()
            thread = threading.Thread(target=self._serve, args=(jobs,), daemon=True,
                                      name="povdyn-period-write")
            thread.start()
            self._threads.append(thread)
        self._slots.acquire()
        self._queues[key].put((handle, table, rows))

    def close(self, raise_error: bool = True) -> None:
        """Wait for every write; raise the first error (unless `raise_error` is False)."""
        for jobs in self._queues.values():
            jobs.put(None)
        for thread in self._threads:
            thread.join()
        self._queues, self._threads = {}, []
        if raise_error:
            self.check()


def write_periods(panel_dir: Path, batches, schemas: dict, labels_of_order: dict,
                  keep_labels: set, one_sort: bool = False) -> dict:
    """Write the sorted record batches (column _order last; each query's rows sorted by
    _order, household_id) into one file per period, row groups of PERIOD_ROW_GROUP_ROWS
    rows whatever the batches' sizes; each file replaces its period's atomically at the
    end. Period files whose label is not in `keep_labels` are removed. Returns
    {label: signature} of the files written. With `one_sort`, row groups of different
    files are compressed in WRITE_THREADS threads (_FileWrites) while the batches are
    cut; otherwise one at a time, in the caller's thread.
    `one_sort`: the batches are one query's (not household ranges one after another),
    so a period's rows are all in once the next period's begin: its last row group is
    written then, beside the next period's, not with every other period's at the end
    (the same row groups; a period seen again after that is an error)."""
    panel_dir.mkdir(parents=True, exist_ok=True)
    pending: dict[int, list] = {}
    counts: dict[int, int] = {}
    writers: dict[int, tuple] = {}
    writes = _FileWrites(WRITE_THREADS if one_sort else 1)
    finished: set[int] = set()  # one_sort: periods whose last row group is written

    def writer(order):
        if order not in writers:
            label = labels_of_order[order]
            tmp = panel_dir / f".{period_file(label)}.{os.getpid()}.tmp"
            writers[order] = (pq.ParquetWriter(tmp, schemas[label], compression="zstd",
                                               write_statistics=True), tmp, label)
        return writers[order][0]

    def flush(order, final=False):
        while counts.get(order, 0) >= PERIOD_ROW_GROUP_ROWS or (final and counts.get(order)):
            table = pa.Table.from_batches(pending[order])
            size = min(PERIOD_ROW_GROUP_ROWS, table.num_rows)
            # one chunk: pyarrow cuts data pages at its chunks' boundaries, so the bytes
            # would depend on how the sorted stream was cut into batches (the household
            # ranges: the 3M demo's period files differed under 1 GB and 256 MB)
            part = table.slice(0, size).combine_chunks()
            label = labels_of_order[order]
            writes.write(order, writer(order), part.cast(schemas[label]),
                         PERIOD_ROW_GROUP_ROWS)
            rest = table.slice(size)
            pending[order], counts[order] = rest.to_batches(), rest.num_rows

    written = {}
    try:
        try:
            for batch in batches:
                if not batch.num_rows:
                    continue
                orders = batch.column(batch.num_columns - 1).to_numpy(zero_copy_only=False)
                data = pa.RecordBatch.from_arrays(batch.columns[:-1],
                                                  names=batch.schema.names[:-1])
                cuts = np.flatnonzero(np.diff(orders)) + 1
                for start, end in zip(np.r_[0, cuts], np.r_[cuts, len(orders)]):
                    order = int(orders[start])
                    if one_sort and order not in pending:  # the periods before are whole
                        if any(o > order for o in pending):
                            raise ValueError("write_periods(one_sort=True): the batches are "
                                             "not sorted by period")
                        for done in sorted(set(pending) - finished):
                            flush(done, final=True)
                            finished.add(done)
                    elif order in finished:
                        raise ValueError("write_periods(one_sort=True): the batches are not "
                                         "sorted by period")
                    pending.setdefault(order, []).append(data.slice(start, end - start))
                    counts[order] = counts.get(order, 0) + int(end - start)
                    flush(order)
            for order in sorted(pending):
                flush(order, final=True)
        except BaseException:
            writes.close(raise_error=False)  # no thread left writing into a file removed below
            raise
        writes.close()
        for order, (handle, tmp, label) in writers.items():
            handle.close()
        for order, (handle, tmp, label) in writers.items():
            os.replace(tmp, panel_dir / period_file(label))
            written[label] = signature(panel_dir / period_file(label))
    finally:
        for handle, tmp, _ in writers.values():
            if tmp.exists():
                handle.close()
                tmp.unlink()
    for path in panel_dir.glob("period-*.parquet"):
        if label_of_file(path.name) not in keep_labels:
            path.unlink()
    if keep_labels and (panel_dir / EMPTY_FILE).exists():
        (panel_dir / EMPTY_FILE).unlink()
    return written


def write_kind(panel_dir: Path, register_kind: str | None) -> None:
    """panel.parquet/_povdyn.json: the register kind (panel.recorded_register)."""
    from .writing import _write_json

    _write_json({"register_kind": register_kind or ""}, panel_dir / KIND_FILE)


def read_kind(panel_dir: Path) -> str | None:
    path = Path(panel_dir) / KIND_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8")).get("register_kind") or None


@dataclass
class PeriodResult:
    """One period's share of the checks across rows, kept in the manifest."""
    loaded: list = field(default_factory=list)  # [file, sheet, rows]
    dropped: list = field(default_factory=list)  # [file, sheet, rows]
    nulls: dict = field(default_factory=dict)  # yes/no column -> missing values
    cells: list = field(default_factory=list)  # [province, source, what, rows]
    unplaced: list = field(default_factory=list)  # records of names not placed
    recorded_after: bool = False  # a row recorded in a new (2025) commune
    quarantine: str | None = None  # cached part name of its run-level quarantine rows
    output: list | None = None  # its file's signature

    def as_dict(self) -> dict:
        return dict(self.__dict__)
