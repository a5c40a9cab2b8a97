"""One large csv register checked on every core (issue 11 §1): the file is cut into byte
ranges at line ends, each range is read and checked by engine_checks' one pass in a
worker process of its own, and the parent adopts the workers' spill parts; the checks
across rows (register.py) then run once over all of them, as for any file.

Every output stays the same bytes as the one pass over the whole file (tests compare
them), because a range is only ever a run of whole csv records:

* The parent reads the file once, in order, counting line ends: a range starts after a
  line end and knows how many lines come before it, so its rows get the row numbers the
  whole file gives them (the file's data start at `skip_records` records; the header's
  lines must be one record each).
* A worker checks that its range held exactly one csv record per line (records ==
  line ends, plus an unterminated last line). A quoted field holding a line end, or a
  lone carriage return, breaks that equality somewhere, and then no range is kept: the
  file is read again the exact way (_LazyCsv.rescan), like any one pass that cannot
  finish.
* The signature footer is looked for in the last range only, which is never shorter
  than the rows the footer search looks at (FOOTER_SEARCH_ROWS).
* Which yes/no columns are "x"-marked (blank means "no") is guessed by the parent from
  the first rows, given to every worker, and compared at the end with what all ranges
  saw together (engine_checks: the whole-file rule); a wrong guess sends the file back
  to the exact reading.
* A worker writes its checked rows already cut by household range (household_ranges:
  fixed intervals of the pseudonyms, one part per range and household range), so the
  steps across a household's rows read one household range's parts at a time.
* Coded cells are parsed by the same functions in every worker (a value depends on the
  cell alone), ids are pseudonymised with the same key, rows flagged by a worker go
  through check_batch there (its verdict does not depend on the batch), and every step
  after this one sorts by file, sheet and row or by household and period.

Workers are plain processes (_WorkerPool: one started, the others forked from it once it
has imported what a job needs), one DuckDB connection each with one thread and
WORKER_MEMORY, spilling into the run's scratch folder. Files smaller than
PARALLEL_MIN_BYTES, or a machine with one core, keep the one pass in the parent."""
from __future__ import annotations

import csv
import io
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .reading import FOOTER_SEARCH_ROWS, RawTable, _LazyCsv
from .summary import TableReport

PARALLEL_MIN_BYTES = 96 << 20  # smaller csv files: one pass in the parent. Measured again
# with the cheaper worker start (s19, lock held, load ~10): 47 MB one pass 2.8-3.3 s vs
# ranges 3.5 s; 95 MB 4.7-5.2 s vs 4.6-5.6 s: even about here, so the threshold stays
RANGE_BYTES = 512 << 20  # the largest range; a file gets at least 4 ranges per worker (so
MIN_RANGE_BYTES = 32 << 20  # that a slow one evens out), none smaller than this
WORKER_MEMORY = "256MB"  # DuckDB's share in each worker (POVDYN_INGEST_WORKER_MEMORY); a
# worker streams its rows to parquet, and held the same ~520 MB at 128 MB as at 512 MB
# (before its csv reading was paced, _ByteRange.batches: ~400 MB now on the 10M bench)
_SCAN_BYTES = 1 << 24  # the parent reads the file in blocks of this size to cut it
DROP_READ_BYTES = 1 << 25  # a worker drops the pages of its range from the page cache
# after each this many bytes it has read (_ByteRange._drop_read)
READ_AHEAD_BLOCKS = 3  # csv blocks a worker's pyarrow reader may read beyond the batches
# taken from it (_ByteRange.batches); its own background reader queues up to 32
STALL_SECONDS = 0.2  # a block more is read when a batch has been waited for this long
# and not come (never seen: a safety net, _ByteRange.batches)
WORKER_COMMAND = ["-m", "povdyn.ingest._range_worker"]  # after the interpreter


def ingest_workers() -> int:
    """Worker processes for one large csv (POVDYN_INGEST_WORKERS, default: the cores
    this process may use)."""
    env = os.environ.get("POVDYN_INGEST_WORKERS")
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class _Range:
    index: int
    start: int  # byte offsets [start, end) in the file
    end: int
    first_row: int  # row number (as a spreadsheet shows it) of the range's first line
    lines: int  # line ends in the range (records, if each record is one line)
    last: bool


def _data_start(path: Path, skip_records: int, delimiter: str, encoding: str = "utf-8"):
    """The byte offset after the first `skip_records` lines, or None when those lines
    are not exactly `skip_records` csv records (a quoted line end in the title or header:
    then the file is read in one pass)."""
    offset, lines = 0, 0
    with open(path, "rb") as handle:
        head = b""
        while lines < skip_records:
            block = handle.read(1 << 16)
            if not block:
                return None
            head += block
            while lines < skip_records:
                found = head.find(b"\n", offset)
                if found < 0:
                    break
                offset, lines = found + 1, lines + 1
    text = head[:offset]
    # one record a line: no lone carriage return, no quoted field open at a line end
    if b"\r" in text.replace(b"\r\n", b"") or any(
            line.count(b'"') % 2 for line in text.split(b"\n")):
        return None
    try:
        records = list(csv.reader(io.StringIO(text.decode(encoding, errors="replace"),
                                              newline=""), delimiter=delimiter))
    except csv.Error:
        return None
    return offset if len(records) == skip_records else None


def _read_exactly(handle, n: int) -> bytes:
    """The next `n` bytes of an unbuffered file (fewer at its end)."""
    chunks = []
    while n > 0 and (chunk := handle.read(n)):
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _cut(path: Path, start: int, first_row: int, target: int, digest=None):
    """The file from `start` on, cut into ranges of about `target` bytes at line ends,
    read once in order (the workers then read their range from the page cache). The
    last range is never shorter than FOOTER_SEARCH_ROWS lines: the ranges before it are
    merged into it as needed. Yields each _Range (index 0) once the lines after it show
    that it cannot be part of the last one. `digest` (a hashlib object) is fed the
    whole file on the way."""
    from collections import deque

    size = path.stat().st_size
    held: deque = deque()  # ranges cut, whose lines after them are still too few

    def merged(first: _Range, second: _Range) -> _Range:
        return _Range(0, first.start, second.end, first.first_row, first.lines + second.lines,
                      second.last)

    range_start, lines, lines_before, position = start, 0, 0, start
    # one buffer, read into again and again: a new 16 MB bytes object per block cost the
    # kernel's zeroing of fresh pages; line ends are counted by numpy (~4x bytes.count)
    buffer = bytearray(_SCAN_BYTES)
    view = memoryview(buffer)
    octets = np.frombuffer(buffer, dtype=np.uint8)
    is_newline = np.empty(_SCAN_BYTES, dtype=bool)
    with open(path, "rb", buffering=0) as handle:
        head = _read_exactly(handle, start)
        if digest is not None:
            digest.update(head)
        while n := handle.readinto(buffer):
            if digest is not None:
                digest.update(view[:n])
            np.equal(octets[:n], 10, out=is_newline[:n])
            cut = buffer.rfind(b"\n", 0, n) if position + n - range_start >= target else -1
            if cut >= 0 and position + cut + 1 < size:
                lines += int(np.count_nonzero(is_newline[:cut + 1]))
                held.append(_Range(0, range_start, position + cut + 1,
                                   first_row + lines_before, lines, False))
                lines_before += lines
                range_start = position + cut + 1
                lines = int(np.count_nonzero(is_newline[cut + 1:n]))
                while len(held) > 1 and sum(r.lines for r in list(held)[1:]) > FOOTER_SEARCH_ROWS:
                    yield held.popleft()
            else:
                lines += int(np.count_nonzero(is_newline[:n]))
            position += n
    last = _Range(0, range_start, size, first_row + lines_before, lines, True)
    while held and last.lines <= FOOTER_SEARCH_ROWS:
        last = merged(held.pop(), last)
    yield from held
    yield last


class _ByteRange(io.RawIOBase):
    """The bytes [start, end) of a file, as a file of their own (what pyarrow reads),
    checked to be UTF-8 as they are read, a block at a time (_assert_utf8), so that
    pyarrow need not check every cell (check_utf8=False in _open_range): per cell that
    cost ~1.4 CPU-s per GB of csv, ~35% of pyarrow's parse, and per block ~0.55. Text
    that is UTF-8 as a whole is UTF-8 cell by cell: cells are cut at ASCII bytes (the
    delimiter, quotes, line ends), which never occur inside a UTF-8 character. A block
    is checked up to its last line end; the bytes after it wait for the next block.
    A byte that is not UTF-8 raises UnicodeDecodeError, as pyarrow's own check raised
    ArrowInvalid: the one pass stops and the file is read again the exact way."""

    def __init__(self, path: Path, start: int, end: int, paced: bool = False):
        super().__init__()
        self._handle = open(path, "rb", buffering=0)
        self._handle.seek(start)
        self._left = end - start
        self._offset = start  # the file offset of the next byte read
        self._waiting = b""  # bytes after the last line end read: checked with the next block
        self._dropped = start  # the page cache holds none of [start, _dropped) any more
        # pacing (`paced`: from the start, for pyarrow's first reads, until the batches
        # end): blocks read, batches taken, a batch waited for (open_csv waits for one)
        self._pace = threading.Condition()
        self._paced, self._reads, self._taken, self._wanted = paced, 0, 0, True

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self._wait_for_pace()
        size = self._left if size is None or size < 0 else min(size, self._left)
        data = self._handle.read(size) if size > 0 else b""
        self._left -= len(data)
        self._check(data, last=not data or self._left <= 0)
        self._offset += len(data)
        if self._offset - self._dropped >= DROP_READ_BYTES or self._left <= 0:
            self._drop_read()
        return data

    def batches(self, reader):
        """The record batches of `reader` (pyarrow's csv reader over this range, made
        `paced`), with its reading paced to them: pyarrow's background thread reads the
        next blocks (read) only while fewer than READ_AHEAD_BLOCKS are read and not yet
        taken as batches. Unpaced, it queues up to 32 blocks while the worker checks
        one: ~240 MB more in each worker (128 MB of csv blocks and what they are parsed
        to; one 240 MB range's job: +242 MB unpaced, +113-131 MB paced, the same CPU).
        pyarrow makes a batch from at most two blocks (a longer line is an error), so
        a batch always comes; should one wait for more, it gets one more block each
        STALL_SECONDS it is waited for, so the reading never stops."""
        try:
            while True:
                with self._pace:
                    self._wanted = True
                    self._pace.notify_all()
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    return
                with self._pace:
                    self._wanted = False
                    self._taken += 1
                    self._pace.notify_all()
                yield batch
        finally:  # whatever pyarrow still reads, it reads unpaced
            with self._pace:
                self._paced = False
                self._pace.notify_all()

    def _wait_for_pace(self) -> None:
        with self._pace:
            stalled = None
            while self._paced and self._reads - self._taken >= READ_AHEAD_BLOCKS:
                if not self._wanted:
                    stalled = None
                elif stalled is None:
                    stalled = time.monotonic()
                elif time.monotonic() - stalled >= STALL_SECONDS:
                    break
                self._pace.wait(STALL_SECONDS / 4)
            self._reads += 1

    def _drop_read(self) -> None:
        """Tell the kernel that the bytes read so far are not needed again (each byte
        of a range is read once): their pages leave the page cache at once. Pages
        read twice (the parent's cut, then here) are otherwise kept as the most used
        ones, and on the 27M csv they crowded out the ranges the parent had just cut
        for the workers, which then read about half their bytes from the disk again,
        and the spill parts, which the steps after the read then read from the disk
        (875 s -> 748 s on the same day)."""
        if self._offset > self._dropped and hasattr(os, "posix_fadvise"):
            try:
                os.posix_fadvise(self._handle.fileno(), self._dropped,
                                 self._offset - self._dropped, os.POSIX_FADV_DONTNEED)
            except OSError:  # advice only: a file system that refuses it changes nothing
                pass
        self._dropped = self._offset

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        memoryview(buffer)[:len(data)] = data
        return len(data)

    def _check(self, data: bytes, last: bool) -> None:
        if last:
            waiting, self._waiting = self._waiting + data, b""
            _assert_utf8(waiting, self._offset + len(data) - len(waiting))
            return
        cut = data.rfind(b"\n")
        if cut < 0:  # no line end in this block (a very long line): all of it waits
            self._waiting += data
            return
        first = data.find(b"\n")
        waiting, self._waiting = self._waiting + data[:first + 1], data[cut + 1:]
        _assert_utf8(waiting, self._offset + first + 1 - len(waiting))
        _assert_utf8(memoryview(data)[first + 1:cut + 1], self._offset + first + 1)

    def close(self) -> None:
        self._handle.close()
        super().close()


def _assert_utf8(data, offset: int) -> None:
    """Raise UnicodeDecodeError unless `data` (bytes from the file offset `offset`) is
    UTF-8, checked by Arrow's validator over the whole block at once (zero-copy)."""
    import pyarrow as pa

    if not len(data):
        return
    offsets = pa.py_buffer(np.array([0, len(data)], dtype=np.int64))
    text = pa.Array.from_buffers(pa.large_string(), 1, [None, offsets, pa.py_buffer(data)])
    try:
        text.validate(full=True)
    except pa.ArrowInvalid:
        bytes(data).decode("utf-8")  # raises with the position of the first bad byte
        raise UnicodeDecodeError("utf-8", bytes(data[:1]), 0, 1,
                                 f"not UTF-8 text near byte {offset:,} of the file")


@dataclass(frozen=True)
class _Job:
    """What a worker needs to check one range (pickled to it)."""
    range: _Range
    path: Path
    source_file: str
    header: list
    header_row: int
    names: list
    delimiter: str
    marks: frozenset
    key: bytes
    programs: object
    scratch: Path
    block_bytes: int
    lookup_uniques: int
    cut_ranges: int = 0  # the household ranges the range's rows are cut into


def _open_range(job: _Job):
    import pyarrow as pa
    import pyarrow.csv as pacsv

    byte_range = _ByteRange(job.path, job.range.start, job.range.end, paced=True)
    return byte_range.batches(pacsv.open_csv(
        byte_range,
        read_options=pacsv.ReadOptions(column_names=job.names, block_size=job.block_bytes,
                                       encoding="utf8"),
        parse_options=pacsv.ParseOptions(delimiter=job.delimiter, ignore_empty_lines=False,
                                          invalid_row_handler=lambda _row: "error"),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in job.names}, strings_can_be_null=False,
            quoted_strings_can_be_null=False, check_utf8=False)))  # _ByteRange checks


def _ends_unterminated(path: Path, rng: _Range) -> bool:
    """The range (the file's end) has a last line without a line end."""
    if rng.end == rng.start:
        return False
    with open(path, "rb") as handle:
        handle.seek(rng.end - 1)
        return handle.read(1) != b"\n"


def _check_range(job: _Job) -> dict:
    """In a worker: engine_checks' one pass over one range, into a spill of its own.
    Returns the range's counts, what it saw of the yes/no columns and its parts, or
    {"failed": why} when the pass could not finish or a record spanned lines."""
    from . import engine_checks
    from .register import _Spill, _duckdb

    engine_checks.LOOKUP_UNIQUES = job.lookup_uniques  # the parent's settings (tests)
    root = job.scratch / f"range-{job.range.index:05d}"
    root.mkdir(parents=True, exist_ok=True)
    spill = _Spill(root, cut_ranges=job.cut_ranges)
    lazy = _LazyCsv(lambda: _open_range(job), job.names, None)
    lazy.hold_back = job.range.last
    lazy.marks = set(job.marks)
    raw = RawTable(job.source_file, None, job.header, lazy, None, job.header_row,
                   first_row=job.range.first_row)
    con = _duckdb(root, memory=os.environ.get("POVDYN_INGEST_WORKER_MEMORY") or WORKER_MEMORY,
                  threads=1)
    try:
        report = engine_checks._engine_check_register(raw, con, spill, job.key, job.programs)
    finally:
        con.close()
    if report is None:
        return {"failed": "the one pass over a range could not finish"}
    records = report.rows_in + report.blank_rows + report.footer_rows
    lines = job.range.lines + (1 if job.range.last and _ends_unterminated(job.path, job.range)
                               else 0)
    if records != lines:
        return {"failed": f"{records} csv records on {lines} lines (a quoted line end)"}
    return {"report": report.as_dict(), "marks_seen": lazy.marks_seen or {},
            "parts": {kind: [(str(p), spill.part_files[p]) for p in paths]
                      for kind, paths in spill.parts.items()}}


def _first_marks(raw: RawTable) -> frozenset:
    """The yes/no columns whose non-blank cells in the first block are all marks: the
    guess the one pass makes from its first rows (engine_checks), for every range."""
    from .engine_checks import _Lookup, _RECORDED_ONLY
    from .reading import _column_names, _is_bool_column
    from ..privacy import IDENTIFIER_COLUMNS

    position, _ = _column_names(raw.header)
    first = next(iter(raw.data.open_stream()), None)
    if first is None:
        return frozenset()
    marks = set()
    for c, name in position.items():
        if name in IDENTIFIER_COLUMNS or name in _RECORDED_ONLY or not _is_bool_column(name):
            continue
        lookup = _Lookup(name, None)
        lookup.take(first.column(c))
        if lookup.marks_only:
            marks.add(c)
    return frozenset(marks)


class _Worker:
    """One worker as the parent sees it: the pipe its jobs go into (`stdin`), the one its
    answers come from (`stdout`), and its process when the parent started it itself."""

    def __init__(self, stdin, stdout, process=None):
        self.stdin, self.stdout, self.process = stdin, stdout, process

    def exit_code(self):
        return self.process.wait() if self.process is not None else None


class _WorkerPool:
    """`n` worker processes, each fed one pickled _Job at a time through a pipe and
    answering on another, by one thread of the parent each. Plain processes rather than
    multiprocessing: spawn would import the caller's main script again in every worker
    (breaking a script without an `if __name__ == "__main__"` guard), and forking the
    parent would copy its DuckDB threads.

    One process is started (`python -m povdyn.ingest._range_worker`); once it has
    imported what a job needs, and before any thread but jemalloc's runs in it, it forks
    the others (serve_workers): pandas, pyarrow and DuckDB are imported once, not once
    per worker (~0.55 CPU-s each, which the parent's own start competes with on a small
    machine). Where there is no fork (not POSIX), each worker is started on its own."""

    def __init__(self, n: int):
        import subprocess
        import sys

        package_root = str(Path(__file__).resolve().parents[2])  # povdyn's own lib folder
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([package_root] + [
            p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        # a worker does no linear algebra: without OpenBLAS's thread (numpy's import
        # starts one) the started process has no thread but jemalloc's when it forks
        env["OPENBLAS_NUM_THREADS"] = "1"
        command = [sys.executable] + WORKER_COMMAND
        self.size = n
        if os.name != "posix":
            self.workers = []
            for _ in range(n):
                process = subprocess.Popen(command, stdin=subprocess.PIPE,
                                           stdout=subprocess.PIPE, env=env)
                self.workers.append(_Worker(process.stdin, process.stdout, process))
            return
        # the other workers' pipes: (jobs: read end, answers: write end) go to the
        # started process, which hands each pair to a worker it forks
        pairs, ours = [], []
        for _ in range(n - 1):
            jobs_read, jobs_write = os.pipe()
            answers_read, answers_write = os.pipe()
            pairs.append((jobs_read, answers_write))
            ours.append((jobs_write, answers_read))
        try:
            first = subprocess.Popen(command + [f"{r},{w}" for r, w in pairs],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                     pass_fds=[fd for pair in pairs for fd in pair])
        except BaseException:
            for fd in (fd for pair in ours for fd in pair):
                os.close(fd)
            raise
        finally:
            for fd in (fd for pair in pairs for fd in pair):
                os.close(fd)
        self.workers = [_Worker(first.stdin, first.stdout, first)] + [
            _Worker(os.fdopen(w, "wb"), os.fdopen(r, "rb")) for w, r in ours]

    @property
    def processes(self) -> list:
        """The processes the parent started itself (one on POSIX)."""
        return [w.process for w in self.workers if w.process is not None]

    @staticmethod
    def _ask(worker: _Worker, job: "_Job"):
        import pickle

        payload = pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            worker.stdin.write(len(payload).to_bytes(8, "little") + payload)
            worker.stdin.flush()
        except BrokenPipeError:
            pass  # the worker is gone: said below, where its answer is missing
        size = worker.stdout.read(8)
        if len(size) < 8:
            code = worker.exit_code()
            raise RuntimeError("an ingest worker stopped"
                               + (f" (exit code {code})" if code is not None else ""))
        status, value = pickle.loads(worker.stdout.read(int.from_bytes(size, "little")))
        if status != "ok":
            raise RuntimeError(f"an ingest worker failed on a csv range:\n{value}")
        return value

    def run(self, jobs) -> dict[int, dict]:
        """{range index: result} for every job of the iterable `jobs` (consumed as the
        workers take them, at most two waiting per worker); stops taking new ones after
        a range failed. A worker's exception is raised here."""
        import queue
        import threading

        waiting: queue.Queue = queue.Queue(maxsize=2 * len(self.workers))
        results: dict[int, dict] = {}
        errors: list[BaseException] = []
        stop = threading.Event()

        def serve(worker):
            while True:
                job = waiting.get()
                if job is None:
                    return
                if stop.is_set():
                    continue
                try:
                    results[job.range.index] = result = self._ask(worker, job)
                except BaseException as exc:  # noqa: BLE001 - raised in the parent below
                    errors.append(exc)
                    stop.set()
                    continue
                if "failed" in result:
                    stop.set()

        threads = [threading.Thread(target=serve, args=(w,), daemon=True,
                                    name="povdyn-ingest-range") for w in self.workers]
        for thread in threads:
            thread.start()
        try:
            for job in jobs:
                if stop.is_set():
                    break
                waiting.put(job)
        finally:
            for _ in threads:
                waiting.put(None)
            for thread in threads:
                thread.join()
        if errors:
            raise errors[0]
        return results

    def close(self) -> None:
        """Close every worker's jobs pipe (each then ends) and wait for the started
        process, which waits for the workers it forked."""
        for worker in self.workers:
            try:
                worker.stdin.close()
            except OSError:
                pass
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except Exception:  # noqa: BLE001 - a worker that hangs is stopped
                process.kill()
                process.wait()
        for worker in self.workers:
            worker.stdout.close()


def serve_workers(pairs: list[tuple[int, int]]) -> None:
    """The started worker process (python -m povdyn.ingest._range_worker R,W ...): fork
    one worker per pipe pair (jobs read end R, answers write end W), serve its own
    stdin and stdout, and when they end wait for the forked ones. Forking needs a
    process without threads (a thread another library started would be missing in the
    child, its locks possibly held) but those in FORK_SAFE_THREADS; with one, the
    workers are started afresh instead."""
    import subprocess
    import sys

    from . import engine_checks, register  # noqa: F401 - imported once, before the fork
    import duckdb  # noqa: F401
    import pyarrow.compute  # noqa: F401
    import pyarrow.csv  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    children, started = [], []
    can_fork = hasattr(os, "fork") and not _foreign_threads()
    for jobs, answers in pairs:
        if can_fork:
            pid = os.fork()
            if pid == 0:  # the forked worker: only its own pipes stay open
                try:
                    for other in pairs:
                        for fd in other:
                            if fd not in (jobs, answers):
                                os.close(fd)
                    null = os.open(os.devnull, os.O_RDONLY)
                    os.dup2(null, 0)  # the first worker's jobs are not this one's
                    os.close(null)
                    serve_worker(os.fdopen(jobs, "rb"), os.fdopen(answers, "wb"))
                finally:
                    os._exit(1)  # never back into this loop (serve_worker ends the process)
            children.append(pid)
        else:
            started.append(subprocess.Popen([sys.executable] + WORKER_COMMAND,
                                            stdin=jobs, stdout=answers))
    for fd in (fd for pair in pairs for fd in pair):
        os.close(fd)

    def wait_for_the_others():
        for pid in children:
            os.waitpid(pid, 0)
        for process in started:
            process.wait()

    serve_worker(after=wait_for_the_others)


FORK_SAFE_THREADS = {"jemalloc_bg_thd"}  # threads whose library takes care of a fork
# (jemalloc's purging thread, which pyarrow's import starts: pthread_atfork handlers)


def _foreign_threads() -> list[str]:
    """The names of this process's threads other than the main one and those in
    FORK_SAFE_THREADS (Linux: /proc); ["unknown"] where they cannot be listed."""
    try:
        tasks = sorted(os.listdir("/proc/self/task"), key=int)
        names = [Path(f"/proc/self/task/{t}/comm").read_text().strip()
                 for t in tasks if int(t) != os.getpid()]
    except (OSError, ValueError):
        return ["unknown"]
    return [n for n in names if n not in FORK_SAFE_THREADS]


def serve_worker(source=None, answers=None, after=None) -> None:
    """A worker's loop: a job in from `source` (default stdin), its result out to
    `answers` (default stdout), until `source` ends; then `after()`, and the process
    ends. Stray prints of libraries go to stderr, not into the answers."""
    import pickle
    import sys
    import traceback

    source = source if source is not None else sys.stdin.buffer
    if answers is None:
        answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    while True:
        size = source.read(8)
        if len(size) < 8:
            # nothing left open (each job closed its DuckDB and files, every answer is
            # flushed): skip the interpreter's teardown of pandas, pyarrow and DuckDB,
            # which the parent waits for before the steps across all rows (0.5 s)
            answers.close()
            if after is not None:
                after()
            sys.stderr.flush()
            os._exit(0)
        job = pickle.loads(source.read(int.from_bytes(size, "little")))
        try:
            answer = ("ok", _check_range(job))
        except BaseException:  # noqa: BLE001 - reported to the parent, which raises it
            answer = ("error", traceback.format_exc())
        payload = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        answers.write(len(payload).to_bytes(8, "little") + payload)
        answers.flush()


class RangeChecker:
    """Large csv registers of one ingest run checked in byte ranges (module docstring);
    the worker processes start with the first such file and serve every later one."""

    def __init__(self, workers: int | None = None):
        self.workers = workers or ingest_workers()
        self._pool: _WorkerPool | None = None
        self.sha256: dict[Path, str] = {}  # file -> content hash, of files cut whole

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def check(self, raw: RawTable, spill, key: bytes, programs) -> TableReport | None | bool:
        """Check a one-pass csv register (_LazyCsv) in byte ranges. Returns its report;
        None when the one pass cannot finish (the caller reads the file again the exact
        way, as after engine_checks' one pass); False when the file is not one to cut
        (small, one core, a quoted line end above the data): the caller then makes the
        one pass itself."""
        if self._pool is None and _worth_cutting(raw, self.workers):
            self._pool = _WorkerPool(self.workers)
        if self._pool is None or not _worth_cutting(raw, self.workers):
            return False
        return _check_in_ranges(raw, spill, key, programs, self._pool, self.sha256)


def _worth_cutting(raw: RawTable, workers: int) -> bool:
    from . import engine_checks

    lazy: _LazyCsv = raw.data
    return not (workers < 2 or lazy.path is None or not engine_checks.ENGINE_CHECKS
                or lazy.path.stat().st_size < PARALLEL_MIN_BYTES)


def _parent_memory() -> str:
    """The DuckDB memory limit the steps after the read run under (register.INGEST_MEMORY)."""
    from .register import INGEST_MEMORY

    return os.environ.get("POVDYN_INGEST_MEMORY") or INGEST_MEMORY


def _check_in_ranges(raw: RawTable, spill, key: bytes, programs, pool: _WorkerPool,
                     hashes: dict):
    import hashlib

    from . import engine_checks, household_ranges, reading

    lazy: _LazyCsv = raw.data
    start = _data_start(lazy.path, lazy.skip_records, lazy.delimiter)
    if start is None:
        return False

    marks = _first_marks(raw)
    scratch = spill.root / f"ranges-{os.getpid()}-{id(raw):x}"
    scratch.mkdir(parents=True, exist_ok=True)
    base = dict(path=lazy.path, source_file=raw.source_file, header=list(raw.header),
                header_row=raw.header_row, names=list(lazy.names), delimiter=lazy.delimiter,
                marks=marks, key=key, programs=programs, scratch=scratch,
                block_bytes=reading.CSV_BLOCK_BYTES, lookup_uniques=engine_checks.LOOKUP_UNIQUES,
                cut_ranges=household_ranges.cut_ranges_for(
                    lazy.path.stat().st_size, _parent_memory()))

    digest = hashlib.sha256()

    def jobs():
        size = lazy.path.stat().st_size
        target = min(RANGE_BYTES, max(MIN_RANGE_BYTES, size // (4 * pool.size)))
        for i, rng in enumerate(_cut(lazy.path, start, raw.first_row, target, digest)):
            yield _Job(range=_Range(i, rng.start, rng.end, rng.first_row, rng.lines, rng.last),
                       **base)
        hashes[lazy.path] = digest.hexdigest()  # every byte was read

    # the parent waits while the workers check: it builds the 2025 commune index that
    # the register stage needs next (pure Python: ~0.5 CPU-s with its tables in s19, was
    # ~1.1) meanwhile
    import threading

    from ..geo import _commune_index

    warm = threading.Thread(target=_commune_index, daemon=True, name="povdyn-geo-index")
    warm.start()
    try:
        results = pool.run(jobs())
    finally:
        warm.join()
    failed = next((r["failed"] for r in results.values() if "failed" in r), None)
    if failed is None and sorted(results) != list(range(len(results))):
        raise RuntimeError("a csv range has no result")  # never expected: not silently
    if failed is None:  # the yes/no columns as the whole file has them
        seen: dict[str, list] = {}
        for r in results.values():
            for c, (non_blank, all_marks) in r["marks_seen"].items():
                seen.setdefault(c, []).append((non_blank, all_marks))
        whole = {c for c, states in seen.items()
                 if any(n for n, _ in states) and all(a for _, a in states)}
        if whole != set(marks) & set(seen):
            failed = "the first rows' guess of the x-marked columns"
    if failed is not None:
        shutil.rmtree(scratch, ignore_errors=True)
        return None
    report = None
    for i in sorted(results):
        part = TableReport(**results[i]["report"])
        for kind, paths in results[i]["parts"].items():
            for path, files in paths:
                spill.add_part(kind, Path(path), files)
        if report is None:
            report = part
        else:
            report.rows_in += part.rows_in
            report.blank_rows += part.blank_rows
            report.footer_rows += part.footer_rows
    return report
