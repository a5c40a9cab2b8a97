"""Where the CPU of the csv read-and-check goes (issue 11 §1), per million rows.

    PYTHONPATH=lib .venv/bin/python benchmarks/profile_ingest_read.py FILE.csv [--rows N]
        [--variants ...] [--components]

Runs what one ingest worker runs (parallel._check_range) over the first N data rows of a
csv register, in this process, and measures CPU seconds (process_time: every thread) of:

* `parse`: pyarrow's csv reader alone over the range;
* `prepare`: the Python/Arrow side of engine_checks (lookups, number fast path,
  identifier normalisation, blank lines...), without DuckDB; each step timed inside;
* `full`: the worker's whole check (prepare + DuckDB query + spill part write + re-check);
* `no_hmac`: the same, the household id's pseudonym replaced by the trimmed id (its cost);
* `no_write`: the same, the spill part holding only the flagged rows (the parquet write's
  cost);
* `no_raw`: the same, the raw cells of flagged rows left out of the query (their cost);
* `explain`: the same, DuckDB's EXPLAIN ANALYZE of the query (operator timings);
* `copy=OPTIONS`: the same, the spill part written by COPY with these parquet options;
* `compression=CODEC`: the same, the spill part written with another codec;
* `drop_raw`: the same, the spill part without the flagged rows' raw cells (their
  columns' cost in the write; the re-check then finds none);
* `cut`: the parent's pass over the file (line ends counted, sha256).

`--cut-ranges N` has the worker cut its rows into N household ranges, as the range
workers do (parallel.py, household_ranges.CUT_RANGES).

The variants change only this measurement, never the library. A diagnosis tool, not a
test: it prints numbers, it asserts nothing."""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


CUT_RANGES = 0  # household ranges a worker cuts its rows into (--cut-ranges)


def _job(path: Path, rows: int, scratch: Path):
    from povdyn.ingest import engine_checks, parallel, reading
    from povdyn.ingest.reading import read_tables

    raw = read_tables(path, path.parent)[0]
    lazy = raw.data
    start = parallel._data_start(lazy.path, lazy.skip_records, lazy.delimiter)
    with open(path, "rb") as handle:
        handle.seek(start)
        end, lines = start, 0
        while lines < rows:
            block = handle.read(1 << 24)
            if not block:
                break
            need = rows - lines
            found = block.count(b"\n")
            if found <= need:
                end, lines = end + len(block), lines + found
            else:
                cut = -1
                for _ in range(need):
                    cut = block.index(b"\n", cut + 1)
                end, lines = end + cut + 1, rows
    last = end >= path.stat().st_size
    rng = parallel._Range(0, start, end, raw.first_row, lines, last)
    return raw, parallel._Job(
        range=rng, path=path, source_file=raw.source_file, header=list(raw.header),
        header_row=raw.header_row, names=list(lazy.names), delimiter=lazy.delimiter,
        marks=parallel._first_marks(raw), key=b"k" * 32, programs=None, scratch=scratch,
        block_bytes=reading.CSV_BLOCK_BYTES, lookup_uniques=engine_checks.LOOKUP_UNIQUES,
        **({"cut_ranges": CUT_RANGES} if CUT_RANGES else {}))


class _Connection:
    """A DuckDB connection whose register query is changed for one variant."""

    def __init__(self, con, variant: str):
        self._con, self._variant = con, variant

    def __getattr__(self, name):
        return getattr(self._con, name)

    def read_parquet(self, path):
        if self._variant != "drop_raw":
            return self._con.read_parquet(path)

        class _NoneFlagged:  # drop_raw: the part has no raw cells to re-check
            def filter(self, *a):
                return self

            def select(self, *a):
                return self

            def to_arrow_reader(self, *a):
                return iter(())
        return _NoneFlagged()

    def sql(self, query, params=None):
        relation = self._con.sql(query, params=params)
        if "AS household_id" in query and self._variant == "no_write":
            class _FlaggedOnly:
                def write_parquet(self, path, **options):
                    # every row computed and handed to Arrow (a filter in DuckDB would
                    # be pushed below the projections), only the flagged ones written
                    import pyarrow.parquet as pq

                    kept = [b.filter(b.column("_bad")) for b in relation.to_arrow_reader(1 << 17)]
                    pq.write_table(pa.Table.from_batches(kept), path)
            return _FlaggedOnly()
        if "AS household_id" in query and self._variant == "no_raw":
            import re

            query = re.sub(r"s\.\"c\d+\" AS (\"_raw_c\d+\")", r"NULL::VARCHAR AS \1", query)
        if "AS household_id" in query and self._variant == "explain":
            con = self._con

            class _Explained:
                def write_parquet(self, path, **options):
                    row_group = options.get("row_group_size", 30_720)
                    plan = con.sql(f"EXPLAIN ANALYZE COPY ({query}) TO '{path}' (FORMAT "
                                   f"parquet, COMPRESSION lz4, ROW_GROUP_SIZE {row_group})",
                                   params=params).fetchall()
                    print(plan[0][1])
            return _Explained()
        if "AS household_id" in query and self._variant.startswith("copy="):
            con, extra = self._con, self._variant.split("=", 1)[1]

            class _Copied:
                def write_parquet(self, path, **options):
                    row_group = options.get("row_group_size", 30_720)
                    con.execute(f"COPY ({query}) TO '{path}' (FORMAT parquet, ROW_GROUP_SIZE "
                                f"{row_group}, {extra})", params)
            return _Copied()
        if "AS household_id" in query and self._variant == "drop_raw":
            import re

            raws = sorted(set(re.findall(r'"_raw_c\d+"', query)))
            return self._con.sql(f"SELECT * EXCLUDE ({', '.join(raws)}) FROM ({query})",
                                 params=params)
        if "AS household_id" in query and self._variant.startswith("compression="):
            codec = self._variant.split("=", 1)[1]

            class _Codec:
                def write_parquet(self, path, **options):
                    relation.write_parquet(path, **{**options, "compression": codec})
            return _Codec()
        return relation


def run_variant(variant: str, path: Path, rows: int) -> dict:
    from povdyn.ingest import engine_checks, parallel, register

    scratch = Path(tempfile.mkdtemp(prefix="ingestread-prof-"))
    try:
        raw, job = _job(path, rows, scratch)
        if variant == "parse":
            before, wall = _cpu(), time.perf_counter()
            n = sum(b.num_rows for b in parallel._open_range(job))
            return {"rows": n, "cpu": _cpu() - before, "wall": time.perf_counter() - wall}
        if variant == "cut":
            import hashlib

            before, wall = _cpu(), time.perf_counter()
            digest = hashlib.sha256()
            ranges = list(parallel._cut(path, job.range.start, 2, 64 << 20, digest))
            return {"rows": sum(r.lines for r in ranges), "cpu": _cpu() - before,
                    "wall": time.perf_counter() - wall}
        steps: dict[str, float] = {}

        def timed(label, function):
            def wrapper(*args, **kwargs):
                t = time.thread_time()
                try:
                    return function(*args, **kwargs)
                finally:
                    steps[label] = steps.get(label, 0.0) + time.thread_time() - t
            return wrapper

        patches = [
            (getattr(engine_checks, "Pseudonymiser", None), "arrow", "pseudonyms"),
            (engine_checks.schema, "arrow_number_fast_path", "numbers (fast path)"),
            (engine_checks, "_normalised_identifier", "identifiers NFC+trim"),
            (engine_checks._Lookup, "take", "coded lookups"),
        ]
        saved = []
        for owner, name, label in patches:
            if owner is None or not hasattr(owner, name):  # older code (before/after runs)
                continue
            saved.append((owner, name, getattr(owner, name)))
            setattr(owner, name, timed(label, getattr(owner, name)))
        if variant == "no_hmac":  # the trimmed id stands in for its pseudonym
            engine_checks.Pseudonymiser.arrow = lambda self, cells: cells
        saved_recheck = engine_checks._engine_recheck
        engine_checks._engine_recheck = timed("re-check flagged rows", saved_recheck)
        saved_duckdb = register._duckdb
        if variant == "prepare":
            class _Drain:
                """Consumes the batches in Python: no DuckDB query at all."""

                def __init__(self, *a, **k):
                    self.source = None

                def register(self, name, reader):
                    self.source = reader

                def unregister(self, name):
                    pass

                def close(self):
                    pass

                def sql(self, query, params=None):
                    source = self

                    class _Relation:
                        def write_parquet(self, path, **options):
                            t = time.thread_time()
                            for _ in source.source:
                                pass
                            steps["drain (batches made)"] = time.thread_time() - t
                            raise RuntimeError("drained")
                    return _Relation()

            register._duckdb = lambda *a, **k: _Drain()
        else:
            register._duckdb = lambda *a, **k: _Connection(saved_duckdb(*a, **k), variant)
        before, wall = _cpu(), time.perf_counter()
        try:
            result = parallel._check_range(job)
        except RuntimeError as exc:
            if "drained" not in str(exc):
                raise
            result = {"drained": True}
        cpu, wall = _cpu() - before, time.perf_counter() - wall
        register._duckdb = saved_duckdb
        engine_checks._engine_recheck = saved_recheck
        for owner, name, function in saved:
            setattr(owner, name, function)
        if "failed" in result:
            raise RuntimeError(result["failed"])
        size = sum(f.stat().st_size for f in scratch.rglob("*.parquet"))
        return {"rows": job.range.lines, "cpu": cpu, "wall": wall, "steps": steps,
                "spill_mb": size / 1e6}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def components(path: Path, blocks: int = 40) -> None:
    """CPU seconds per million rows of the per-row pieces, each alone over the same csv
    blocks, one thread, best of 3 (less noisy on a shared machine than whole passes):
    what the code on PYTHONPATH does for identifiers, numbers and pseudonyms, and
    DuckDB's per-row HMAC in SQL (what the engine path did before efc96f1)."""
    import itertools

    import duckdb
    import pyarrow.csv as pacsv

    from povdyn import schema
    from povdyn.ingest import checking
    from povdyn.ingest.reading import _column_names

    reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 22),
                            convert_options=pacsv.ConvertOptions(strings_can_be_null=False))
    batches = [b for b in itertools.islice(reader, blocks)]
    header = batches[0].schema.names
    position, _ = _column_names(header)
    by_name = {name: int(c[1:]) for c, name in position.items()}
    rows = sum(b.num_rows for b in batches)

    def column(name):
        return [b.column(by_name[name]).cast(pa.string()) for b in batches]

    def best(work, *columns):
        times = []
        for _ in range(3):
            start = time.thread_time()
            for arrays in zip(*columns):
                for array in arrays:
                    work(array)
            times.append(time.thread_time() - start)
        return min(times) / rows * 1e6

    idents = [column(n) for n in ("head_name", "id_card", "phone", "address") if n in by_name]
    print(f"identifiers NFC+trim ({len(idents)} columns): "
          f"{best(checking._normalised_identifier, *idents):.3f} s/M")
    income = best(schema.arrow_number_fast_path, column("income_pc_month"))
    print(f"income fast path: {income:.3f} s/M")
    ids = [pc.utf8_trim_whitespace(a) for a in column("household_id")]
    try:
        from povdyn.privacy import Pseudonymiser

        times = []
        for _ in range(3):
            pseudonym = Pseudonymiser(b"k" * 32)
            start = time.thread_time()
            for array in ids:
                pseudonym.arrow(array)
            times.append(time.thread_time() - start)
        print(f"pseudonyms (Pseudonymiser.arrow): {min(times) / rows * 1e6:.3f} s/M")
    except ImportError:
        pass
    key = b"k" * 32
    pads = [bytes(b ^ x for b in key.ljust(64, b"\0")) for x in (0x36, 0x5C)]
    con = duckdb.connect(config={"threads": 1})
    con.register("t", pa.table({"_hid": pa.chunked_array(ids)}))

    def sql(expression, params=None):
        times = []
        for _ in range(3):
            start = time.process_time()
            con.execute(f"SELECT count(DISTINCT x) FROM (SELECT {expression} AS x FROM t)",
                        params).fetchall()
            times.append(time.process_time() - start)
        return min(times) / rows * 1e6
    hmac_sql = sql("'h_' || left(sha256($opad || unhex(sha256($ipad || encode(_hid)))), 16)",
                   {"ipad": pads[0], "opad": pads[1]}) - sql("_hid")
    print(f"pseudonyms (HMAC in DuckDB SQL, per row): {hmac_sql:.3f} s/M")
    print(f"({rows:,} rows in {len(batches)} blocks)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", type=Path)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--variants", nargs="*",
                        default=["parse", "prepare", "full", "no_hmac", "no_write", "cut"])
    parser.add_argument("--components", action="store_true",
                        help="time the per-row pieces alone instead (best of 3)")
    parser.add_argument("--cut-ranges", type=int, default=0,
                        help="cut the worker's rows into this many household ranges, as "
                             "the range workers do (parallel.py; 0: one part)")
    args = parser.parse_args()
    global CUT_RANGES
    CUT_RANGES = args.cut_ranges
    print(f"load: {os.getloadavg()}", flush=True)
    if args.components:
        components(args.csv)
        print(f"load: {os.getloadavg()}", flush=True)
        return
    for variant in args.variants:
        out = run_variant(variant, args.csv, args.rows)
        per_m = 1e6 / max(out["rows"], 1)
        line = (f"{variant:9s} rows {out['rows']:>10,}  cpu {out['cpu']:7.2f} s "
                f"({out['cpu'] * per_m:6.2f} s/M)  wall {out['wall']:7.2f} s")
        if "spill_mb" in out:
            line += f"  spill {out['spill_mb']:.0f} MB"
        print(line, flush=True)
        for label, seconds in sorted(out.get("steps", {}).items(), key=lambda kv: -kv[1]):
            print(f"    {label:28s} {seconds:7.2f} s ({seconds * per_m:6.2f} s/M)", flush=True)
    print(f"load: {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()  # the povdyn on PYTHONPATH: this tree's lib, or an older one to compare
