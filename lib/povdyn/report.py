"""`povdyn report`: run the quarterly report notebook for the nation and each province,
in parallel, and publish self-contained HTML pages, an index and a manifest.

For one run (period P) it writes, under ``out_dir/P/``:

* ``notebooks/<slug>.ipynb`` — the executed notebook of each region (the template
  notebook itself is only read, never edited);
* ``<slug>.html`` — the page a reviewer reads: code, prompts, warnings and tracebacks
  hidden, figures embedded as PNG, exported with povdyn's offline nbconvert template
  (no script, stylesheet or font is fetched from the internet);
* ``index.html`` — links to every page, with the headline table of every region (small
  cells suppressed) and, for a failed region, a link to its log (``logs/<slug>.log``);
* ``manifest.json`` — parameters, input data fingerprint, package versions, git commit
  and timings, so any page can be reproduced.

Regions run in separate worker processes; each starts its own kernel on the current
interpreter over IPC sockets (no TCP ports, so parallel kernels never collide on
"Address already in use"), with DuckDB limited to one thread and a non-interactive
matplotlib backend (inline, never a GUI). A failing region is recorded and does not stop the others.
The early-warning section's model (one fit over the whole register, the same for every
page) is fitted once per run in the parent, beside the first pages, and handed to every
page (pickled into the run's private temporary folder; ``fit_risk_model``,
``handed_risk_model``); a fit that fails stops the run and fails its pages, naming why.
Every file is written atomically (temporary file + rename), with the mode any file the
user writes gets (0o666 minus the umask).

A run cannot lie about itself:

* ``manifest.json`` and ``index.html`` are written when the run starts, with
  ``"status": "running"``, and as pages finish (every ``PUBLISH_EVERY_SECONDS`` and
  after a failed page); at the end the status is ``"complete"``
  (every page rendered), ``"failed"`` (a page failed, or the run itself stopped on an
  error) or ``"interrupted"`` (Ctrl-C / SIGTERM). The index shows an incomplete run as such.
* Only one run at a time writes into an output folder (an ``fcntl.flock`` lock file,
  ``OUT/.povdyn-report.lock``, released when the run ends): a second run fails at once.
* Ctrl-C (SIGINT to the process group) or SIGTERM stops the batch: no new page starts,
  the workers and their kernels are stopped, the page in progress is neither logged as a
  failure nor is its previous good page deleted. Workers ignore SIGINT themselves; a
  watcher thread in each ends it (and its kernel) when the parent stops the batch or dies
  (SIGKILL included), so a killed parent leaves no worker writing pages behind it.
* The engine a page's data really ran on is read back from the executed notebook (a
  probe cell the runner appends, hidden from the page) into the manifest.
"""
from __future__ import annotations

import fcntl
import functools
import hashlib
import html
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import unicodedata
import uuid
import weakref
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from .config import settings
from .errors import PeriodError, PovdynError
from .labels import label

if TYPE_CHECKING:
    import pandas as pd

# pandas (and povdyn.periods, which imports it) are imported where they are used: a
# report worker imports this module to render and export pages and needs neither
# (0.4-0.5 s of CPU in each worker, before its first page)

TEMPLATES_DIR = Path(__file__).parent / "templates"
TEMPLATE_NAME = "povdyn"
REPORT_NOTEBOOK = "quarterly_report.ipynb"
KEY_PACKAGES = ["povdyn", "pandas", "numpy", "duckdb", "ibis-framework", "pyarrow",
                "statsmodels", "scipy", "matplotlib", "papermill", "nbconvert",
                "nbclient", "ipykernel", "jupyter-client"]
EXTERNAL_URL = re.compile(r"https?://", re.IGNORECASE)


# --------------------------------------------------------------------------- small helpers
def slugify(name: str) -> str:
    """ASCII file name of a region: "Hà Nội" -> "ha-noi", "Thành phố Hồ Chí Minh" ->
    "thanh-pho-ho-chi-minh". Display names keep their diacritics; only files use slugs."""
    text = str(name).replace("đ", "d").replace("Đ", "D")
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = re.sub(r"[^a-zA-Z0-9]+", "-", text).strip("-").lower()
    return text or "region"


def _umask() -> int:
    """The process's umask, read without changing it where Linux allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: Path, data: str | bytes, make_folder: bool = True) -> None:
    """Write a file via a temporary file in the same folder and a rename, so a reader
    never sees half a file. The file gets the mode of any file the user creates
    (0o666 minus the umask, e.g. 0o644): mkstemp's private 0o600 would make pages
    unreadable to the web server or colleague next to the parquet files ingest wrote.
    make_folder=False: a missing folder is FileNotFoundError (it is not made again)."""
    path = Path(path)
    if make_folder:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


LOCK_NAME = ".povdyn-report.lock"


class ReportLocked(PovdynError):
    """Another `povdyn report` is writing into the same output folder."""


class RunLock:
    """An exclusive lock on an output folder for the length of a run: ``fcntl.flock`` on
    ``folder/.povdyn-report.lock`` (non-blocking, so a second run fails at once instead
    of both writing pages, index and manifest over each other). The kernel releases the
    lock when the file is closed or the process dies, so a crashed run never leaves a
    stale lock behind. The file holds the owner's pid and start time for the message."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / LOCK_NAME
        self._fd: int | None = None

    def __enter__(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 500).decode("utf-8", "replace").strip() or "unknown process"
            os.close(fd)
            raise ReportLocked(
                f"another `povdyn report` is already writing into {self.path.parent} ({holder}); "
                "wait until it finishes, or pass another --out") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}, started {datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S} UTC\n"
                 .encode())
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def data_fingerprint(data_dir: Path) -> dict:
    """SHA-256 of each parquet file in data_dir (and in a folder of them such as
    ingest's panel.parquet/ of period files, named "panel.parquet/period-2024.parquet")
    and one combined digest over (file name, file digest) pairs in name order."""
    data_dir = Path(data_dir)
    files = {}
    found = []
    for path in sorted(data_dir.glob("*.parquet")):
        found += sorted(p for p in path.iterdir() if p.is_file()
                        and not p.name.startswith((".", "_"))) if path.is_dir() else [path]
    for path in found:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        files[path.relative_to(data_dir).as_posix()] = digest.hexdigest()
    combined = hashlib.sha256()
    for name, digest in files.items():
        combined.update(f"{name}\0{digest}\n".encode())
    return {"sha256": combined.hexdigest(), "files": files}


def package_versions() -> dict:
    """Installed versions of the packages a page depends on."""
    out = {"python": sys.version.split()[0]}
    for name in KEY_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit(root: Path | None = None) -> str | None:
    """The commit of the povdyn checkout this code runs from (with "+dirty" when tracked
    files changed), or None for an installed package: never the commit of whatever
    repository the user happens to run the command in."""
    if root is None:
        root = Path(__file__).resolve().parents[2]
        if not ((root / "lib" / "povdyn").is_dir() and (root / ".git").exists()):
            return None
    root = Path(root)
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def external_urls(page: str) -> list[str]:
    """Every http:// or https:// occurrence in a page (with some context). A published
    page must have none: no script, stylesheet, font or image may be fetched."""
    return [page[max(0, m.start() - 40): m.end() + 40] for m in EXTERNAL_URL.finditer(page)]


def panel_path(data_dir: Path) -> Path:
    """The processed panel (data_dir/panel.parquet), with an error saying what to run."""
    path = Path(data_dir) / "panel.parquet"
    if not path.exists():
        raise PovdynError(f"{path} not found: run `povdyn ingest` (or `make ingest`) first, "
                          "or pass --data-dir to the folder holding panel.parquet")
    return path


def _panel_value_counts(data_dir: Path, column: str) -> pd.Series:
    """Rows of the processed panel per value of `column` (nulls left out), counted by
    DuckDB: the parent of a report run never holds a column of the register (at 27M
    households, one string column in pandas is gigabytes beside the pages' kernels). An
    empty panel is an error saying so (a report of nothing would otherwise fail later
    with an IndexError or render empty pages)."""
    import pandas as pd

    import duckdb

    path = panel_path(data_dir)
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")
        rows = con.execute(f'SELECT "{column}", count(*) FROM read_parquet(?) GROUP BY ALL',
                           [str(path)]).fetchall()
    finally:
        con.close()
    if not rows:
        raise PovdynError(f"{path} has no rows, so there is no period and no region to report: "
                          "check the raw files and `povdyn ingest`'s summary (quarantine.csv)")
    return pd.Series({value: n for value, n in rows if value is not None}, dtype="int64")


def parse_requested_period(period):
    """A period as a user types it, read as ingest reads period cells: "2025Q3",
    "Quý 3/2025", "Quý III năm 2025", "Q3/2025", 2024, "Năm 2024" -> canonical label."""
    from .schema import period_value

    value = period_value(period)
    if value is None or not isinstance(value, (int, str)):
        raise PeriodError(f"cannot read period {period!r}: use 'latest', a quarter "
                          "(2025Q3, 'Quý 3/2025') or a year (2024)")
    return value


def resolve_period(data_dir: Path, period="latest"):
    """The report period in canonical form; "latest" = the last period in the panel.
    A period not in the data is an error listing the available ones."""
    from . import periods as _periods

    values = _panel_value_counts(data_dir, "period").index
    available = sorted({_periods.parse_period(p) for p in values}, key=lambda x: x[1])
    if not available:
        raise PovdynError(f"{panel_path(data_dir)} has no period values: nothing to report")
    labels_ = [_periods.label(f, i) for f, i in available]
    if period in (None, "latest"):
        return labels_[-1]
    wanted = _periods.parse_period(parse_requested_period(period))
    if wanted not in available:
        raise PeriodError(f"period {period!r} is not in {data_dir}/panel.parquet; "
                          f"available: {labels_[0]} .. {labels_[-1]}")
    return _periods.label(*wanted)


def resolve_regions(data_dir: Path, regions="all") -> list[str]:
    """"all" -> ["national", every province_2025 in the data (sorted)]; "national";
    a comma-separated string or a list of province names (spelled as in the data, or
    without diacritics: "ha noi" -> "Hà Nội"; a name that matches nothing is kept and
    fails in its own page, isolated from the others)."""
    provinces = list(_panel_value_counts(data_dir, "province_2025").index)
    if regions is None or regions == "all":
        names = sorted(provinces)
        return ["national", *names]
    if isinstance(regions, str):
        regions = [r.strip() for r in regions.split(",")]
    known = {slugify(p): p for p in provinces}
    out = []
    for r in regions:
        r = unicodedata.normalize("NFC", str(r).strip())
        if r.lower() in ("national", "toàn quốc", "toan quoc"):
            r = "national"
        else:  # "ha noi" / "HÀ NỘI" -> the name as written in the data ("Hà Nội")
            r = known.get(slugify(r), r)
        if r and r not in out:
            out.append(r)
    if not out:
        raise PovdynError("no region given: use 'all', 'national' or a comma-separated list")
    return out


PACKAGE_NOTEBOOKS = Path(__file__).parent / "notebooks"


def template_notebook() -> Path:
    """The report template shipped inside the package (package data), so `povdyn report`
    works from any directory and from a non-editable install. In the checkout it is a
    symlink to notebooks/quarterly_report.ipynb, the copy an analyst opens and edits."""
    return PACKAGE_NOTEBOOKS / REPORT_NOTEBOOK


# --------------------------------------------------------------------------- kernel
# The kernel imports duckdb before ipykernel: DuckDB 2 decides at import whether it runs
# inside Jupyter, and there refuses `SET enable_progress_bar = false` unless ipywidgets is
# installed ("required package 'ipywidgets' is missing"). Imported first, it behaves as in
# a script, so povdyn.engine.connect works unchanged in report kernels. No input history:
# a report kernel's cells are the template's, and IPython's history thread wrote each
# one to the shared history.sqlite while the next waited on its lock (0.1 s a page).
KERNEL_ARGV = [sys.executable, "-c",
               "import duckdb; from ipykernel import kernelapp; kernelapp.launch_new_instance()",
               "-f", "{connection_file}", "--HistoryManager.enabled=False"]


IPC_DIR_ENV = "POVDYN_IPC_DIR"
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
# Every kernel manager alive in this process, so a worker told to stop (SIGTERM, or its
# parent died) can kill its kernels at once, without the asyncio shutdown path.
_LIVE_MANAGERS: "weakref.WeakSet" = weakref.WeakSet()


def _kernel_manager_class():
    """A KernelManager that runs ipykernel on this interpreter (sys.executable), so a
    fresh clone needs no kernelspec, and talks over IPC sockets in a private folder
    instead of TCP ports (parallel papermill runs otherwise sometimes die with ZMQ
    "Address already in use"). The folder (sockets and connection file) lives under
    $POVDYN_IPC_DIR when set (the run's own folder, removed by the parent at the end),
    else the temp dir, and is removed when the kernel shuts down."""
    from jupyter_client.kernelspec import KernelSpec
    from jupyter_client.manager import KernelManager

    class LocalIPCKernelManager(KernelManager):
        def __init__(self, **kwargs):
            socket_dir = _socket_dir()
            kwargs.setdefault("transport", "ipc")
            kwargs.setdefault("ip", os.path.join(socket_dir, "s"))
            kwargs.setdefault("connection_file", os.path.join(socket_dir, "kernel.json"))
            super().__init__(**kwargs)
            self._socket_dir = socket_dir
            self._kernel_spec = KernelSpec(argv=KERNEL_ARGV,
                display_name="povdyn (this interpreter)", language="python", env={},
            )
            _LIVE_MANAGERS.add(self)

        # jupyter_client 8 shuts down through the async method (the sync cleanup_resources
        # is never called then), so the folder is removed here
        async def _async_cleanup_resources(self, restart: bool = False) -> None:
            await super()._async_cleanup_resources(restart=restart)
            if not restart:
                shutil.rmtree(self._socket_dir, ignore_errors=True)

        def kill_now(self) -> None:
            """SIGKILL the kernel's whole process group (a kernel is started as a session
            leader, so this also ends what it started, e.g. a Spark JVM) and remove its
            folder; safe to call from a signal handler."""
            process = getattr(self.provisioner, "process", None) if self.provisioner else None
            if process is not None and process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            shutil.rmtree(self._socket_dir, ignore_errors=True)

    return LocalIPCKernelManager


# A Unix socket path holds at most 107 bytes; ZMQ adds "-<port>" to `ip`.
_MAX_SOCKET_DIR = 90


def _socket_dir() -> str:
    """A new private folder for one kernel's sockets: inside the run's folder
    ($POVDYN_IPC_DIR) when set, else in the temp dir; in /tmp when those paths are too
    long for a socket (a deep TMPDIR fails with ZMQ "File name too long")."""
    run_dir = os.environ.get(IPC_DIR_ENV)
    if run_dir and os.path.isdir(run_dir) and len(run_dir) + 12 <= _MAX_SOCKET_DIR:
        return tempfile.mkdtemp(prefix="k", dir=run_dir)
    parent = tempfile.gettempdir()
    if len(parent) + 20 > _MAX_SOCKET_DIR and os.path.isdir("/tmp"):
        parent = "/tmp"
    return tempfile.mkdtemp(prefix="povdyn-ipc-", dir=parent)


def _kill_kernels_now() -> None:
    for km in list(_LIVE_MANAGERS):
        try:
            km.kill_now()
        except Exception:  # noqa: BLE001 - best effort while stopping
            pass


def duckdb_threads_per_worker(workers: int, pages: int, cores: int | None = None) -> int:
    """DuckDB threads for each report worker's kernel: the machine's usable cores shared
    among the workers that really run at once, max(1, cores // min(workers, pages)). A
    lone page (``--regions national``) gets every core; two workers on two cores get one
    each, so parallel pages do not fight over the cores."""
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, int(cores or 1) // max(1, min(int(workers), int(pages))))


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?i?B)?\s*$", re.I)
_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def duckdb_memory_per_worker(workers: int, pages: int, budget: str | None = None) -> str:
    """DuckDB ``memory_limit`` for each report worker's kernel: the run's budget
    (``budget``, default settings().report_memory, env POVDYN_REPORT_MEMORY, "3GB")
    split among the workers that really run at once, at least 256 MB each (run_report
    counts the index headline it computes beside the pages as one more worker). Beyond it
    DuckDB spills to its temp directory (in the system temp dir: TMPDIR) instead of
    growing; without a limit it may take 80% of the machine's memory per kernel. The
    default leaves room, within 6 GB for the whole run at 27M households, for each
    page's pandas results and the processes themselves."""
    text = budget or settings().report_memory
    found = _SIZE.match(str(text))
    if not found:
        raise PovdynError(f"memory {text!r}: write it as DuckDB does, e.g. 3GB or 1500MB")
    total = float(found.group(1)) * _UNITS[(found.group(2) or "").upper()]
    share = int(total // max(1, min(int(workers), int(pages))))
    return f"{max(share // 2**20, 256)}MiB"


def _worker_init() -> None:
    """Environment every kernel inherits: DuckDB threads as the run set them
    (run_report passes duckdb_threads_per_worker in the workers' environment; one thread
    when nothing set them), a non-interactive matplotlib backend (the inline one: plain
    "Agg" would stop figures from reaching the notebook's outputs), no progress bars."""
    os.environ.setdefault("POVDYN_DUCKDB_THREADS", "1")
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    os.environ["TQDM_DISABLE"] = "1"


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _is_kernel_start_failure(exc: BaseException) -> bool:
    text = f"{type(exc).__name__}: {exc}"
    return any(s in text for s in ("Address already in use", "Kernel died before replying",
                                   "Kernel didn't respond", "ZMQError", "kernel_info"))


def execute_notebook(notebook, output, parameters: dict | None = None, timeout: int = 900, cwd=None) -> Path:
    """Execute a notebook (a path or a NotebookNode) with papermill on this interpreter's
    kernel (IPC transport, DuckDB threads as _worker_init leaves them, inline figures), retrying once if the kernel
    fails to start.
    Writes the executed notebook to `output` and returns its path; a failing cell
    raises papermill's PapermillExecutionError (the output notebook is still written)."""
    _worker_init()
    import papermill as pm

    for attempt in (1, 2):
        try:
            pm.execute_notebook(
                notebook if not isinstance(notebook, (str, Path)) else str(notebook), str(output),
                parameters=parameters or {},
                kernel_manager_class=_kernel_manager_class(), kernel_name="python3", language="python",
                progress_bar=False, log_output=False, cwd=str(cwd or Path(notebook).parent),
                execution_timeout=timeout, start_timeout=120,
            )
            return Path(output)
        except Exception as exc:
            if not (_is_kernel_start_failure(exc) and attempt == 1):
                raise
    return Path(output)


_KERNEL: dict = {}


def _shutdown_kernel() -> None:
    kc = _KERNEL.pop("kc", None)
    if kc is not None:
        try:
            kc.stop_channels()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
    km = _KERNEL.pop("km", None)
    if km is not None:
        try:
            km.shutdown_kernel(now=True)
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


def _launch_worker_kernel(cwd):
    """Start this worker's kernel process without waiting for it to answer: a worker
    launches it before its first job, so that the kernel boots (ipykernel, DuckDB) while
    the worker imports what it renders and exports pages with."""
    km = _KERNEL.get("km")
    if km is not None and km.is_alive():
        return km
    _shutdown_kernel()
    km = _kernel_manager_class()(kernel_name="python3")
    km.start_kernel(cwd=str(cwd))
    _KERNEL["km"] = km
    return km


def _worker_kernel(cwd):
    """This worker's kernel, started once and reused for every page it renders (saves
    the kernel start and the imports, several seconds a page); restarted if it died."""
    km = _KERNEL.get("km")
    if km is not None and km.is_alive() and "kc" in _KERNEL:
        return km
    km = _launch_worker_kernel(cwd)
    # one client for the kernel's life: jupyter_client's wait_for_ready ends by waiting
    # 0.2 s for IOPub to fall silent, so a new client per page (ours and nbclient's)
    # cost 0.4 s of every commune page
    kc = km.client()
    kc.start_channels()
    _KERNEL["kc"] = kc
    try:
        kc.wait_for_ready(timeout=120)
    except BaseException:
        _shutdown_kernel()
        raise
    if not _KERNEL.get("finalizer"):
        from multiprocessing import util

        # ProcessPoolExecutor workers leave through os._exit: atexit would not run
        _KERNEL["finalizer"] = util.Finalize(None, _shutdown_kernel, exitpriority=10)
    return km


# freeze_heap: a full collection every this many pages (the others scan only new
# objects): commune pages are many and small; a province page leaves more behind (its
# commune aggregates, kept in a per-process cache) and a worker renders a few dozen
FULL_COLLECTION_EVERY = 50
PROVINCE_FULL_COLLECTION_EVERY = 10


def _reset_code(freeze_heap: bool, full_collection_every: int = FULL_COLLECTION_EVERY) -> str:
    """What the kernel runs before each page: figures closed and `%reset -f` (every
    name of the previous page gone). `%reset -f` ends with a full garbage collection,
    0.2-0.4 s with a warm heap (imports, a province's aggregates) on commune pages and
    0.3-1.1 s on the demo's province pages; with freeze_heap the objects alive after it
    are frozen (gc.freeze), so the next page's collections (this one, and the automatic
    ones while the page runs) scan only what that page made, and every
    `full_collection_every` pages the heap is thawed and collected whole (a province's
    aggregates dropped from the cache are freed)."""
    code = "import matplotlib.pyplot as _plt; _plt.close('all'); del _plt\n"
    if freeze_heap:
        _KERNEL["pages"] = _KERNEL.get("pages", 0) + 1
        if _KERNEL["pages"] % full_collection_every == 0:
            code += "import gc as _gc; _gc.unfreeze(); del _gc\n"
    code += "%reset -f\n"
    if freeze_heap:
        code += "import gc as _gc; _gc.freeze(); del _gc\n"
    return code


def execute_in_worker_kernel(notebook, output, parameters: dict | None = None, timeout: int = 900,
                             cwd=None, freeze_heap: bool = False,
                             full_collection_every: int = FULL_COLLECTION_EVERY) -> Path:
    """Like execute_notebook (`notebook` a path or a NotebookNode read with papermill's
    load_notebook_node), but in this process's reusable kernel: the namespace is
    reset before each notebook (%reset -f), parameters are injected as papermill does
    (a cell tagged "injected-parameters"), the executed notebook is written to `output`
    even when a cell fails (then nbclient's CellExecutionError is raised). After a
    timeout or any kernel trouble the kernel is shut down, so the next page starts clean.
    freeze_heap, full_collection_every: see _reset_code (report workers freeze)."""
    _worker_init()
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    if isinstance(notebook, (str, Path)):
        cwd = Path(cwd or Path(notebook).parent)
        nb = load_notebook_node(str(notebook))  # as papermill reads it (every cell gets metadata.tags)
    else:
        cwd = Path(cwd or Path.cwd())
        nb = nbformat.from_dict(notebook)
    nb = parameterize_notebook(nb, parameters or {}, kernel_name="python3", language="python")
    km = _worker_kernel(cwd)
    kc = _KERNEL["kc"]
    try:
        kc.execute_interactive(_reset_code(freeze_heap, full_collection_every), store_history=False, timeout=60)
    except BaseException:
        _shutdown_kernel()
        raise
    client = NotebookClient(nb, km=km, kernel_name="python3", timeout=timeout, allow_errors=False,
                            resources={"metadata": {"path": str(cwd)}})
    client.kc = kc  # the worker's client, ready: nbclient then neither makes nor stops one
    try:
        client.execute()
    except CellExecutionError:
        raise
    except BaseException:
        _shutdown_kernel()
        raise
    finally:
        atomic_write(Path(output), nbformat.writes(nb))
        _KERNEL["executed"] = nb  # what execute_region exports, without reading the file back
    return Path(output)


PROBE_TAG = "povdyn-engine-probe"
PROBE_MARK = "POVDYN_PAGE_ENGINE "


def page_engines(namespace: dict) -> dict:
    """Which engine the page's data actually ran on, read from a kernel namespace: the
    `engine` of every povdyn Panel in it (directly, or as the `.panel` of a page-data
    object) and the backend of every Ibis table; with Spark, the master it ran on.
    Returns {"engines": sorted names, "spark_master": str | None}."""
    from .panel import Panel

    engines = set()
    for value in list(namespace.values()):
        for candidate in (value, getattr(value, "panel", None) if not isinstance(value, type) else None):
            if isinstance(candidate, Panel):
                engines.add(candidate.engine)
        if "ibis" in sys.modules:
            import ibis.expr.types as ir

            if isinstance(value, ir.Table):
                try:
                    from .engine import backend_name

                    engines.add(backend_name(value._find_backend()))
                except Exception:  # noqa: BLE001 - an unbound table has no engine
                    pass
    master = None
    if "spark" in engines:
        from pyspark.sql import SparkSession

        session = SparkSession.getActiveSession()
        master = session.sparkContext.master if session is not None else None
    return {"engines": sorted(engines), "spark_master": master}


def _probe_cell():
    """The cell the runner appends to every page (tagged remove_cell, so it never shows
    on the page): it prints which engine the page's data ran on, read back by
    execute_region into the manifest. Part of the executed notebook, not of the template."""
    import nbformat

    cell = nbformat.v4.new_code_cell(
        "# added by `povdyn report` (not in the template): the engine this page ran on\n"
        "import json as _json, povdyn.report as _report\n"
        f"print({PROBE_MARK!r} + _json.dumps(_report.page_engines(globals())))\n"
        "del _json, _report")
    cell.metadata["tags"] = ["remove_cell", PROBE_TAG]
    return cell


def _read_probe(nb) -> dict | None:
    for cell in nb.cells:
        if PROBE_TAG in cell.get("metadata", {}).get("tags", []):
            for output in cell.get("outputs", []):
                text = output.get("text", "")
                if output.get("output_type") == "stream" and PROBE_MARK in text:
                    return json.loads(text.split(PROBE_MARK, 1)[1].strip())
    return None


def execute_region(job: dict) -> dict:
    """Run the report notebook for one region and export its page (runs in a worker).

    Returns a result dict: region, slug, ok, seconds, notebook, html, log, error, engine
    (the engine the page's data ran on, read back from the executed notebook) and
    spark_master. A page that ran on another engine than job["engine"] fails."""
    _worker_init()
    import nbformat
    from papermill.iorw import load_notebook_node

    started = time.perf_counter()
    out_dir = Path(job["out_dir"])
    slug = job["slug"]
    nb_path = out_dir / "notebooks" / f"{slug}.ipynb"
    html_path = out_dir / f"{slug}.html"
    log_path = out_dir / "logs" / f"{slug}.log"
    nb_path.parent.mkdir(parents=True, exist_ok=True)
    result = dict(region=job["region"], slug=slug, ok=False, notebook=str(nb_path.relative_to(out_dir)),
                  html=None, log=None, error=None, engine=None, spark_master=None)
    tmp_nb = nb_path.with_name(f".{nb_path.stem}.{uuid.uuid4().hex[:8]}.ipynb")
    error = None
    reuse = job.get("reuse_kernel", True)
    _KERNEL.pop("executed", None)
    try:
        template = load_notebook_node(str(job["template"]))
        template.cells.append(_probe_cell())
        (execute_in_worker_kernel if reuse else execute_notebook)(
            template, tmp_nb, job["parameters"], timeout=job.get("timeout", 900),
            cwd=job.get("cwd") or str(Path(job["template"]).parent),
            **(dict(freeze_heap=True, full_collection_every=FULL_COLLECTION_EVERY if job.get("group") is not None
                    else PROVINCE_FULL_COLLECTION_EVERY) if reuse else {}))
    except KeyboardInterrupt:
        raise  # Ctrl-C stops the batch; it is not a failure of this region
    except BaseException as exc:  # noqa: BLE001 - every failure is isolated and logged
        error = exc
    try:
        if tmp_nb.exists():
            os.replace(tmp_nb, nb_path)
        if error is None:
            # the executed notebook as the kernel left it (the file just written from it)
            nb = _KERNEL.pop("executed", None) or nbformat.read(nb_path, as_version=4)
            used = _read_probe(nb) or {}
            engines = used.get("engines") or []
            result.update(engine=engines[0] if len(engines) == 1 else (engines or None),
                          spark_master=used.get("spark_master"))
            wanted = job.get("engine")
            if wanted and engines and engines != [wanted]:
                raise PovdynError(f"engine={wanted!r} was asked, but the page's data ran on "
                                  f"{', '.join(engines)}")
            page = export_html(nb, title=job["title"], lang=job["lang"], footer=job["footer"])
            atomic_write(html_path, link_existing_pages(page, html_path.parent))
            result.update(ok=True, html=str(html_path.relative_to(out_dir)))
            if log_path.exists():
                log_path.unlink()
    except BaseException as exc:  # noqa: BLE001
        error = exc
    if error is not None:
        if html_path.exists():  # never leave last run's page looking current
            html_path.unlink()
        text = _ANSI.sub("", f"{type(error).__name__}: {error}\n\n" + "".join(
            traceback.format_exception(type(error), error, error.__traceback__)))
        atomic_write(log_path, text)
        summary = (f"{error.ename}: {error.evalue}" if getattr(error, "ename", None)
                   else f"{type(error).__name__}: {error}")
        result.update(ok=False, log=str(log_path.relative_to(out_dir)),
                      error=_ANSI.sub("", summary).strip()[:2000])
    result["seconds"] = round(time.perf_counter() - started, 2)
    return result


# --------------------------------------------------------------------------- worker processes
def _stop_watcher(stop, parent_pid: int) -> None:
    """Start the thread that ends this worker when the batch stops (the parent sets
    `stop`) or the parent dies, however it dies (SIGKILL included: then os.getppid()
    changes): it kills the worker's kernels at once and leaves without writing anything,
    so the page in progress is neither logged as a failure nor replaces (or deletes) its
    previous good page. A thread, not a signal handler: the main thread may sit in a
    C call (ZMQ poll) for a long time, and Python runs signal handlers only there."""
    def watch():
        while not stop.wait(0.2):
            if os.getppid() != parent_pid:
                break
        _kill_kernels_now()
        os._exit(143)

    threading.Thread(target=watch, name="povdyn-stop-watcher", daemon=True).start()


def _skip_iri_grammar() -> None:
    """Keep jsonschema from importing rfc3987_syntax in this process: nbformat imports
    jsonschema, whose optional checker of the "iri" string format builds an Earley
    parser of RFC 3987 at import -- 1.8 s of CPU in each report worker, before its first
    page. Notebook validation never checks that format (the nbformat schemas have no
    "iri" field), so nothing a worker does changes. Only report workers call this (a
    process of ours): elsewhere jsonschema keeps the checker."""
    sys.modules.setdefault("rfc3987_syntax", None)


# What a worker's kernel imports while the worker waits for its first page's cells:
# the report template's own imports (the cost is the same, paid before the page
# instead of in its first cell, beside the worker's imports)
KERNEL_WARMUP = ("import povdyn, povdyn.tables, povdyn.targets, povdyn.report, povdyn.plots.dynamics, "
                 "povdyn.plots.effects, povdyn.plots.deprivation")


def _warm_worker(warm: dict | None) -> None:
    """Before its first job: launch the worker's kernel, import the page-rendering
    modules here meanwhile, then let the kernel import the template's modules without
    waiting for them (the first page's first request queues behind them)."""
    if not warm or not warm.get("reuse_kernel", True):
        return
    try:
        _launch_worker_kernel(warm["cwd"])
        import nbformat  # noqa: F401
        from nbclient import NotebookClient  # noqa: F401
        from papermill.iorw import load_notebook_node  # noqa: F401

        _exporter()
        _worker_kernel(warm["cwd"])
        if warm.get("code"):
            _KERNEL["kc"].execute(warm["code"], silent=True, store_history=False)
    except Exception:  # noqa: BLE001 - the first page starts its own kernel and reports
        _shutdown_kernel()  # what goes wrong there, with its usual retry and log


def _worker_main(inbox, outbox, stop, parent_pid: int, env: dict, warm: dict | None = None) -> None:
    """A report worker: renders the jobs the parent sends one at a time (None = stop)
    in one reused kernel, launched and warmed before the first job (``warm``: the jobs'
    cwd, reuse_kernel and the code to import, see _warm_worker). Ctrl-C is the parent's
    to handle, so SIGINT is ignored here."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _stop_watcher(stop, parent_pid)
    _skip_iri_grammar()
    _worker_init()
    os.environ.update(env)
    try:
        _warm_worker(warm)
        while True:
            job = inbox.get()
            if job is None:
                break
            outbox.put(("done", job["slug"], execute_region(job)))
    finally:
        _shutdown_kernel()


def _next_job(pending: deque, slots: dict, wid: int):
    """The next job for worker `wid`. Jobs of one group (the commune pages of a
    province) share what their kernel computed once (povdyn.communes caches the
    province's aggregates per process), so a worker stays on its group while it has
    jobs; a free worker then takes the group with the most jobs that no other worker
    is on (or, when every group is taken, the largest one). Jobs without a group
    keep the given order."""
    if not pending:
        return None
    if pending[0].get("group") is None:
        return pending.popleft()
    mine = slots.get(wid, {}).get("group")
    counts: dict = {}
    for job in pending:
        counts[job["group"]] = counts.get(job["group"], 0) + 1
    if mine not in counts:
        taken = {slot.get("group") for w, slot in slots.items() if w != wid and slot.get("job") is not None}
        free = [g for g in counts if g not in taken]
        mine = max(free or counts, key=lambda g: counts[g])
    for i, job in enumerate(pending):
        if job["group"] == mine:
            del pending[i]
            return job
    return pending.popleft()  # pragma: no cover - the group was counted above


class _Interrupted(Exception):
    """The batch was stopped by SIGINT/SIGTERM."""


def _dead_worker_result(job: dict, exitcode, run_dir: Path) -> dict:
    text = f"the worker rendering this page died (exit code {exitcode}), e.g. killed or out of memory"
    log = Path(job["out_dir"]) / "logs" / f"{job['slug']}.log"
    atomic_write(log, text + "\n")
    return dict(region=job["region"], slug=job["slug"], ok=False, notebook=None, html=None,
                log=str(log.relative_to(run_dir)), error=text, seconds=0.0, engine=None, spark_master=None)


def _run_jobs(jobs: list[dict], workers: int, env: dict, run_dir: Path, on_result) -> None:
    """Render `jobs` on `workers` spawned processes, handing each worker one job at a time
    (so a stop never finds queued pages to drain) and calling on_result(result) as pages
    finish. A worker that dies fails its page only, and a new worker takes over. SIGINT or
    SIGTERM raises _Interrupted after every worker (and so every kernel) is stopped."""
    ctx = get_context("spawn")
    outbox = ctx.Queue()
    stop = ctx.Event()
    pending = deque(jobs)
    slots: dict[int, dict] = {}
    done: set[str] = set()
    first = jobs[0] if jobs else {}
    warm = dict(cwd=first.get("cwd") or str(Path(first.get("template", ".")).parent),
                reuse_kernel=first.get("reuse_kernel", True), code=KERNEL_WARMUP) if jobs else None

    def start(wid: int) -> None:
        inbox = ctx.Queue()
        process = ctx.Process(target=_worker_main, args=(inbox, outbox, stop, os.getpid(), env, warm),
                              name=f"povdyn-report-worker-{wid}")
        process.start()
        slots[wid] = dict(process=process, inbox=inbox, job=None)

    def feed(wid: int) -> None:
        job = _next_job(pending, slots, wid)
        slots[wid]["job"] = job
        if job is not None:
            slots[wid]["group"] = job.get("group")
        slots[wid]["inbox"].put(job)

    def on_signal(signum, frame):
        raise _Interrupted(signal.Signals(signum).name)

    in_main = threading.current_thread() is threading.main_thread()
    previous = {}
    if in_main:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, on_signal)
    try:
        for wid in range(workers):
            start(wid)
            feed(wid)
        while len(done) < len(jobs):
            try:
                _, slug, res = outbox.get(timeout=0.5)
            except queue.Empty:
                for wid, slot in list(slots.items()):
                    job = slot["job"]
                    if job is not None and not slot["process"].is_alive():
                        done.add(job["slug"])
                        on_result(_dead_worker_result(job, slot["process"].exitcode, run_dir))
                        start(wid)
                        feed(wid)
                continue
            wid = next((w for w, slot in slots.items() if slot["job"] and slot["job"]["slug"] == slug), None)
            if slug in done:
                continue
            done.add(slug)
            on_result(res)
            if wid is not None:
                feed(wid)
    except KeyboardInterrupt as exc:  # SIGINT before our handler was installed
        raise _Interrupted("SIGINT") from exc
    finally:
        if in_main:  # a second Ctrl-C must not cut the clean-up short
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        if any(slot["job"] is not None for slot in slots.values()):
            stop.set()  # workers still holding a job kill their kernels and leave at once
        for slot in slots.values():
            slot["process"].join(timeout=10)
            if slot["process"].is_alive():
                slot["process"].kill()
                slot["process"].join(timeout=5)
            slot["inbox"].cancel_join_thread()
        outbox.cancel_join_thread()
        if in_main:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


# --------------------------------------------------------------------------- HTML
def _css() -> str:
    return (TEMPLATES_DIR / TEMPLATE_NAME / "static" / "povdyn.css").read_text(encoding="utf-8")


_HEADING = re.compile(r'<h([23]) id="([^"]+)">(.*?)(?:<a class="anchor-link"[^>]*>.*?</a>)?</h\1>', re.S)


def table_of_contents(page: str, lang: str = "vi") -> str:
    """A <nav> listing the page's h2/h3 headings (ids made by nbconvert)."""
    items = []
    for level, anchor, text in _HEADING.findall(page):
        text = re.sub(r"<[^>]+>", "", text).strip()
        items.append(f'<li class="level-{level}"><a href="#{anchor}">{text}</a></li>')
    if not items:
        return ""
    return (f'<nav class="toc" aria-label="{html.escape(label("contents", lang))}">'
            f'<h2>{html.escape(label("contents", lang))}</h2><ol>' + "".join(items) + "</ol></nav>")


_EXPORTER: dict = {}


def _exporter():
    """One nbconvert exporter per process: a worker exports every page it renders with
    the same template, and building the exporter (loading and compiling the Jinja
    templates) cost about as much as the export itself. Everything that differs
    between pages goes in through ``resources``."""
    if "html" not in _EXPORTER:
        from nbconvert import HTMLExporter
        from nbconvert.preprocessors import TagRemovePreprocessor

        # optimistic_validation: the notebook is validated once, after the last
        # preprocessor, instead of after each of the dozen (each a whole-notebook
        # schema check: ~0.1 s of a worker's CPU per page, for nothing -- every output
        # was validated as nbclient received it, and an invalid result still fails)
        exporter = _page_exporter_class()(
            template_name=TEMPLATE_NAME,
            extra_template_basedirs=[str(TEMPLATES_DIR)],
            exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True,
            optimistic_validation=True,
        )
        remover = TagRemovePreprocessor(remove_cell_tags={"parameters", "injected-parameters", "remove_cell"},
                                        remove_all_outputs_tags={"remove_output"})
        exporter.register_preprocessor(remover, enabled=True)
        _EXPORTER["html"] = exporter
    return _EXPORTER["html"]


# what nbconvert's HTMLExporter adds to a page after rendering its template (nbconvert 7):
# alt text on an <img> without one (it also makes cell inputs and outputs inside a
# ".jp-Notebook" element focusable: the povdyn template has none)
NO_ALT_TEXT = "No description has been provided for this image"
_IMG_WITHOUT_ALT = re.compile(r"<img\b(?![^>]*\salt=)([^>]*?)(/?)>", re.I)
# a character reference (&#7897;, &#xE9;, &eacute;) as the template's filters write some
# text, e.g. headings' anchors
_CHARACTER_REFERENCE = re.compile(r"&(#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);")


def _literal_non_ascii(page: str) -> str:
    """Character references of non-ASCII characters written as the characters themselves
    (the page is UTF-8): what BeautifulSoup's re-serialisation did, so a heading reads
    "Các chỉ tiêu chính" in the file, not "C&#225;c ch&#7881; ..." (a search in the file
    or a text tool finds it). ASCII references (&amp; &lt; &quot;) stay: they escape markup."""
    import html

    def literal(match):
        text = html.unescape(match.group(0))
        return text if len(text) == 1 and ord(text) > 127 else match.group(0)
    return _CHARACTER_REFERENCE.sub(literal, page)


def _page_exporter_class():
    """nbconvert's HTMLExporter without its last step's BeautifulSoup round trip: it
    parses and re-serialises the whole rendered page (~400 kB with a province page's
    figures) only to add alt text to images -- 60% of a page's export, ~0.09 s of a
    worker's CPU per page (issue 15 §4). The alt text is added here on the rendered
    text (``tests/test_report_export.py`` compares the pages element by element)."""
    from nbconvert import HTMLExporter
    from nbconvert.exporters.templateexporter import TemplateExporter

    class PageExporter(HTMLExporter):
        def from_notebook_node(self, nb, resources=None, **kw):
            from nbconvert.filters.highlight import Highlight2HTML
            from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter

            langinfo = nb.metadata.get("language_info", {})
            lexer = langinfo.get("pygments_lexer", langinfo.get("name", None))
            self.register_filter("highlight_code", self.filters.get(
                "highlight_code", Highlight2HTML(pygments_lexer=lexer, parent=self)))
            resources = self._init_resources(resources)
            self.register_filter("filter_data_type", WidgetsDataTypeFilter(
                notebook_metadata=self._nb_metadata, parent=self, resources=resources))
            page, resources = TemplateExporter.from_notebook_node(self, nb, resources, **kw)
            page = _IMG_WITHOUT_ALT.sub(lambda m: f'<img{m.group(1)} alt="{NO_ALT_TEXT}"{m.group(2)}>', page)
            page = _literal_non_ascii(page)
            return page, resources

    return PageExporter


def export_html(nb, title: str, lang: str = "vi", footer: str = "") -> str:
    """The reviewer's page of an executed notebook: povdyn offline template, inputs and
    prompts excluded, stderr/tracebacks dropped, a table of contents, the footer.
    Raises PovdynError if the page would load anything over http(s)."""
    resources = {"povdyn": {"lang": lang, "title": title, "css": _css(), "footer": footer}}
    page, _ = _exporter().from_notebook_node(nb, resources=resources)
    page = page.replace("<!--POVDYN-TOC-->", table_of_contents(page, lang), 1)
    found = external_urls(page)
    if found:
        raise PovdynError(f"the page '{title}' would load {len(found)} external resource(s), "
                          f"e.g. {found[0]!r}; remove the link or embed the resource")
    return page


def footer_html(fingerprint: str, generated: str, lang: str = "vi") -> str:
    from . import __version__

    return (f"{html.escape(label('data_fingerprint', lang))}: <code>{fingerprint[:16]}</code> · "
            f"{html.escape(label('generated', lang))}: {generated} · "
            f"{html.escape(label('version', lang))}: {__version__}")


# --------------------------------------------------------------------------- run
RUN_STATUSES = ("running", "complete", "failed", "interrupted")


@dataclass
class ReportRun:
    """Outcome of run_report. `status`: "complete" (every page rendered), "failed" (a
    page failed) or "interrupted"; `failed`: regions whose page could not be made;
    `not_rendered`: regions an interrupted run never finished; `pages`: {region: html
    path}; `index_path`, `manifest_path`; `results`: one dict per finished region (ok,
    seconds, log, error, engine)."""

    period: str
    out_dir: Path
    index_path: Path
    manifest_path: Path
    status: str = "complete"
    pages: dict = field(default_factory=dict)
    failed: list = field(default_factory=list)
    not_rendered: list = field(default_factory=list)
    results: list = field(default_factory=list)
    seconds: float = 0.0

    def __str__(self) -> str:
        lines = [f"povdyn report {self.period} ({self.status}): {len(self.pages)} page(s) in "
                 f"{self.seconds:.1f} s, {len(self.failed)} failed"
                 + (f", {len(self.not_rendered)} not rendered" if self.not_rendered else ""),
                 f"  index:    {self.index_path}", f"  manifest: {self.manifest_path}"]
        for r in self.results:
            if not r["ok"]:
                lines.append(f"  FAILED {r['region']}: {r['error'].splitlines()[0] if r['error'] else ''}"
                             f" (log: {self.out_dir / r['log']})")
        return "\n".join(lines)


class ReportInterrupted(KeyboardInterrupt):
    """run_report was stopped by Ctrl-C or SIGTERM; `.run` is the ReportRun written
    (status "interrupted") before the interrupt is passed on."""

    def __init__(self, run: ReportRun):
        super().__init__(f"povdyn report {run.period} interrupted")
        self.run = run


HEADLINE_CSV = "headline.csv"


def _headline_for_index(data_dir: Path, period, regions: list[str], lang: str,
                        run_dir: Path | None = None, table=None) -> tuple[str, str | None]:
    """The index's headline table (HTML, small cells suppressed) or a pending note. The
    same suppressed table is written as run_dir/headline.csv (the download offered on
    the index; UTF-8 with BOM so spreadsheet programs show the diacritics). `table`: the
    result of _IndexHeadline when it was computed beside the pages."""
    try:
        from .tables import regions_overview, to_html

        if table is None:
            table = regions_overview(Path(data_dir) / "panel.parquet", period, regions, lang=lang)
        if run_dir is not None:
            atomic_write(Path(run_dir) / HEADLINE_CSV, table.to_csv(index=False).encode("utf-8-sig"))
        return to_html(table), None
    except Exception as exc:  # noqa: BLE001 - the index is still useful without it
        return _pending_html(lang), f"{type(exc).__name__}: {exc}"


class _IndexHeadline(threading.Thread):
    """The index's headline table, computed in the parent while the workers render the
    pages (the parent only waits for results; done afterwards it added 3-5 s to every
    batch). Only the table is made here; the files are written after the batch, and
    not at all when the run is interrupted."""

    def __init__(self, data_dir: Path, period, regions: list[str], lang: str, memory: str = "1GB",
                 after: threading.Thread | None = None, run_tables: "_RunTables | None" = None):
        super().__init__(name="povdyn-index-headline", daemon=True)
        self.after = after  # the early-warning fit: run one after the other, in one share
        # the run-wide tables' Panel: its results by province are the headline's
        self.run_tables = run_tables
        self.args = (Path(data_dir) / "panel.parquet", period, regions)
        self.lang = lang
        self.memory = memory  # DuckDB's, here: one thread and a worker's share of the budget
        self.table = None
        self.error: BaseException | None = None

    def run(self) -> None:
        if self.after is not None:
            self.after.join()
        try:
            from .engine import duckdb_limits
            from .tables import regions_overview

            source = self.args[0]
            if self.run_tables is not None:
                self.run_tables.join()
                if "panel" in self.run_tables.kept:
                    from .pagedata import PageData

                    source = PageData(panel=self.run_tables.kept.pop("panel"))
            with duckdb_limits(threads=1, memory=self.memory):
                self.table = regions_overview(source, *self.args[1:], lang=self.lang)
        except BaseException as exc:  # noqa: BLE001 - reported in the manifest
            self.error = exc

    def result(self, data_dir: Path, period, regions: list[str], lang: str, run_dir: Path):
        self.join()
        if self.error is not None:
            return _pending_html(lang), f"{type(self.error).__name__}: {self.error}"
        return _headline_for_index(data_dir, period, regions, lang, run_dir, table=self.table)


# The report's early-warning section (the template's call to risk.early_warning_section):
# relapse within one review, method "auto", fitted on the whole register.
EARLY_WARNING_WITHIN = 1
EARLY_WARNING_METHOD = "auto"
RISK_MODEL_FILE = "early-warning-model.pickle"
RISK_MODEL_PARAMETER = "risk_model"  # the template's parameter that receives its path


def _panel_key(data_dir) -> list:
    """The register a model was fitted on: the panel file's resolved path and mtime."""
    source = panel_path(data_dir).resolve()
    return [str(source), source.stat().st_mtime_ns]


def fit_risk_model(data_dir, out: Path, engine: str | None = None, spark_master: str | None = None,
                   score_at: tuple = ()) -> dict:
    """Fit the early-warning model of the register in data_dir exactly as a page's section
    would (``risk.relapse_risk`` on ``load_panel(panel.parquet)`` on the run's engine,
    relapse within EARLY_WARNING_WITHIN, method EARLY_WARNING_METHOD) and write the
    outcome, pickled, atomically to `out` for handed_risk_model: {"panel": _panel_key,
    "within", "model", "scores"}, or "too_few" (EstimationError's message: the section
    says there are too few events) or "error" (any other failure: the pages fail, naming
    it). ``score_at``: (period, lang) pairs whose scores every page reads (the whole
    cohort, each page keeps its region's rows): computed here once, not on every page.
    DuckDB connections made here use the limits the caller set (engine.duckdb_limits).
    Returns the outcome written."""
    import pickle

    from .errors import EstimationError
    from .panel import load_panel
    from .risk import relapse_risk

    outcome: dict = {"panel": _panel_key(data_dir), "within": EARLY_WARNING_WITHIN}
    previous_master = os.environ.get("SPARK_MASTER")
    try:
        if spark_master:
            os.environ["SPARK_MASTER"] = spark_master
        panel = load_panel(panel_path(data_dir), engine=engine)
        model = relapse_risk(panel, within=EARLY_WARNING_WITHIN, method=EARLY_WARNING_METHOD)
        outcome["scores"] = {_score_key(as_of, lang): model.scores(as_of=as_of, lang=lang)
                             for as_of, lang in score_at}
        outcome["model"] = model
    except EstimationError as exc:
        outcome["too_few"] = str(exc)
    except Exception as exc:  # noqa: BLE001 - handed to the pages, which fail naming it
        outcome["error"] = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    finally:
        if spark_master:
            if previous_master is None:
                os.environ.pop("SPARK_MASTER", None)
            else:
                os.environ["SPARK_MASTER"] = previous_master
    try:
        # into the run's temporary folder only: after a run that ended before its fit did
        # (every page failed early, Ctrl-C) the folder is gone and must stay gone
        atomic_write(Path(out), pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL), make_folder=False)
    except FileNotFoundError:
        pass
    return outcome


def _await_run_file(path: Path, run_dir: Path, what: str, timeout: float) -> bool:
    """Wait until the parent of a report run has written `path` (pages start while it
    computes). False when the run is over (`run_dir` is gone: an executed page run again
    by hand); PovdynError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if not run_dir.is_dir():
            return False
        if time.monotonic() > deadline:
            raise PovdynError(f"{what} ({path}) was not ready after {timeout:.0f} s")
        time.sleep(0.05)
    return True


def _checked_outcome(outcome: dict, what: str, data_dir) -> dict:
    """A run-level outcome the parent handed to a page, refused when the parent's
    computation failed or it belongs to another register than data_dir's, so that no
    page shows numbers it could not compute."""
    if "error" in outcome:
        raise PovdynError(f"{what} could not be computed: {outcome['error']}")
    if outcome["panel"] != _panel_key(data_dir):
        raise PovdynError(f"{what} was computed on {outcome['panel'][0]} as it was then, "
                          f"not on {panel_path(data_dir)} now")
    return outcome


def handed_risk_model(path, data_dir, timeout: float = 900.0):
    """The early-warning model `povdyn report` fitted once for the run (fit_risk_model),
    for a page's ``risk.early_warning_section(model=...)``; waits until the parent has
    written it (the pages start while it is being fitted). None when `path` is None or
    its run is over (the run's folder is gone: an executed page run again by hand), and
    when the fit found too few events: the section then fits here and says so. Raises
    PovdynError when the run's fit failed, or when the model belongs to another register
    than data_dir's, so that no page shows a section it could not compute."""
    import pickle

    if path is None:
        return None
    path = Path(path)
    what = "the early-warning model of this run"
    if not _await_run_file(path, path.parent, what, timeout):
        return None
    with open(path, "rb") as handle:
        outcome = _checked_outcome(pickle.load(handle), what, data_dir)
    model = outcome.get("model")
    if model is not None and outcome.get("scores"):
        _score_once(model, outcome["scores"])
    return model


def _score_key(as_of, lang: str, reasons: int = 3) -> tuple:
    return (str(as_of), lang, int(reasons))


def _score_once(model, scored: dict) -> None:
    """Let `model.scores` return the tables fit_risk_model computed for the same
    arguments (a copy: the section filters it), and score as usual otherwise."""
    score = model.scores

    def scores(as_of=None, lang: str = "vi", reasons: int = 3):
        found = scored.get(_score_key(as_of, lang, reasons))
        return found.copy() if found is not None else score(as_of=as_of, lang=lang, reasons=reasons)

    model.scores = scores


# The run-wide tables (pagedata.run_wide_tables): computed once for the run in the
# parent, handed to the province pages through the template's parameter `run_tables`.
RUN_TABLES_DIR = "run-tables"
RUN_TABLES_INDEX = "index.json"
RUN_TABLES_PARAMETER = "run_tables"


def write_run_tables(data_dir, out: Path, within: int = 2, engine: str | None = None,
                     register: str | None = None, keep: dict | None = None, regions=None,
                     period=None) -> dict:
    """Compute the run-wide tables of the register in data_dir
    (``pagedata.run_wide_tables`` on ``load_panel(panel.parquet)`` with the run's engine
    and register kind) and write them into the folder `out` as one pickle each (not
    parquet: it turns an all-missing column's pd.NA into None and drops ``attrs``, and
    the pages must read exactly what they would compute), then ``index.json``
    (atomically, last: a page that sees it finds every file):
    {"panel": _panel_key, "within", "tables": [{"file", "name", "kwargs", "by"}]}, or
    "skipped" (why the slices would not be the pages' own numbers: the pages compute
    their own) or "error" (any failure: the run and its province pages fail naming it).
    DuckDB connections made here use the limits the caller set (engine.duckdb_limits).
    ``keep``: a dict that receives the Panel the tables were computed on ("panel"), whose
    remembered results the index headline reuses. ``regions``: the run's regions (only
    their provinces are computed; None: all). ``period``: the report period (the
    projection's annual transitions are computed for it). Returns the outcome written."""
    import pickle

    from .pagedata import run_wide_tables
    from .panel import load_panel

    out = Path(out)
    outcome: dict = {"panel": _panel_key(data_dir), "within": int(within)}
    try:
        panel = load_panel(panel_path(data_dir), engine=engine, register=register)
        tables, skipped = run_wide_tables(panel, within=within, regions=regions, period=period)
        if keep is not None:
            keep["panel"] = panel
        if skipped:
            outcome["skipped"] = skipped
        else:
            out.mkdir(exist_ok=True)
            entries = []
            for number, (name, kwargs, by, table) in enumerate(tables):
                file = f"{number:02d}-{name}.pickle"
                (out / file).write_bytes(pickle.dumps(table, protocol=pickle.HIGHEST_PROTOCOL))
                entries.append({"file": file, "name": name, "kwargs": kwargs, "by": by})
            outcome["tables"] = entries
    except FileNotFoundError as exc:
        if not out.parent.is_dir():  # the run ended first (its temporary folder is gone)
            return {"error": "the run ended before its tables were written"}
        outcome = {**outcome, "error": f"{type(exc).__name__}: {exc}"}
    except Exception as exc:  # noqa: BLE001 - handed to the pages, which fail naming it
        outcome.pop("tables", None)
        outcome["error"] = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    try:
        out.mkdir(exist_ok=True)
        atomic_write(out / RUN_TABLES_INDEX, json.dumps(outcome, ensure_ascii=False), make_folder=False)
    except FileNotFoundError:
        pass
    return outcome


def run_tables_handle(path, data_dir, timeout: float = 900.0):
    """handed_run_tables, deferred: a callable that waits for and reads the run-wide
    tables when a page first needs them (None when `path` is None). A province page
    needs them at once; the national page only for its provinces section, well after
    the run-wide step is done -- waiting at its start would idle its worker."""
    if path is None:
        return None
    return functools.partial(handed_run_tables, path, data_dir, timeout)


def handed_run_tables(path, data_dir, timeout: float = 900.0):
    """The run-wide tables `povdyn report` computed once for the run (write_run_tables),
    for ``pagedata.page_data(run_tables=...)``: a list of (metric, kwargs, grouping,
    table). Waits until the parent has written them. None when `path` is None or its run
    is over (an executed page run again by hand), and [] when they were skipped: the
    page then computes its own. Raises PovdynError when the run's computation failed or
    the tables belong to another register than data_dir's, so that no page shows
    numbers it could not compute."""
    import pickle

    if path is None:
        return None
    folder = Path(path)
    index = folder / RUN_TABLES_INDEX
    what = "the run-wide tables of this run"
    if not _await_run_file(index, folder.parent, what, timeout):
        return None
    outcome = _checked_outcome(json.loads(index.read_text(encoding="utf-8")), what, data_dir)
    # read once per process: a report kernel renders ~17 pages of the same run, and each
    # unpickled every table of every province (3 MB on the demo) to keep its own rows.
    # The pages only read them (seed_page copies their rows; remembered results are
    # returned as copies)
    key = (str(folder.resolve()), index.stat().st_mtime_ns)
    if key not in _HANDED_TABLES:
        _HANDED_TABLES.clear()
        _HANDED_TABLES[key] = [(e["name"], e["kwargs"], e["by"], pickle.loads((folder / e["file"]).read_bytes()))
                               for e in outcome.get("tables", [])]
    return list(_HANDED_TABLES[key])


_HANDED_TABLES: dict = {}


class _ParentStep(threading.Thread):
    """One run-level computation in the parent, beside the pages (which wait for its
    file only when they need it), with DuckDB limited to one thread and `memory`.
    Subclasses give `compute()`; its outcome dict (or {"error": ...}) and seconds are
    kept for the manifest, and an exception never escapes the thread."""

    after: "threading.Thread | None" = None

    def __init__(self, name: str, memory: str):
        super().__init__(name=name, daemon=True)
        self.memory = memory
        self.outcome: dict = {}
        self.seconds: float | None = None

    def compute(self) -> dict:
        raise NotImplementedError

    def run(self) -> None:
        from .engine import duckdb_limits

        if self.after is not None:
            self.after.join()
        started = time.perf_counter()
        try:
            # a connection of its own: the run-wide tables and the fit run at the same time
            with duckdb_limits(threads=1, memory=self.memory, connection=self.name):
                self.outcome = self.compute()
        except BaseException as exc:  # noqa: BLE001 - the outcome could not even be written
            self.outcome = {"error": f"{type(exc).__name__}: {exc}"}
        self.seconds = round(time.perf_counter() - started, 2)

    @property
    def error(self) -> str | None:
        return self.outcome.get("error")


class _RunTables(_ParentStep):
    """write_run_tables in the parent, while the workers start their kernels and the
    national page renders (the province pages wait for it when they load their data),
    with DuckDB limited to one thread and `memory`."""

    def __init__(self, data_dir: Path, out: Path, within: int, engine: str, register: str | None, memory: str,
                 regions: list[str], period=None):
        super().__init__("povdyn-run-tables", memory)
        self.args = (data_dir, out, within, engine, register)
        self.regions = regions
        self.period = period
        self.kept: dict = {}  # the whole-register Panel, for the index headline

    def compute(self) -> dict:
        return write_run_tables(*self.args, keep=self.kept, regions=self.regions, period=self.period)

    def record(self) -> dict:
        """The manifest's note of the run-wide tables."""
        kind = next((k for k in ("tables", "skipped", "error") if k in self.outcome), None)
        return {"computed": "once for the run, in the parent", "seconds": self.seconds, "outcome": kind,
                "tables": len(self.outcome.get("tables", [])),
                "detail": self.outcome.get("skipped") or self.outcome.get("error")}


def _template_takes(template: Path, parameter: str) -> bool:
    """Whether the notebook's parameters cell defines `parameter` (a custom template
    without the early-warning section gets no model fitted for it)."""
    nb = json.loads(Path(template).read_text(encoding="utf-8"))
    pattern = re.compile(rf"^{re.escape(parameter)}\s*=", re.M)
    return any("parameters" in cell.get("metadata", {}).get("tags", [])
               and pattern.search("".join(cell.get("source", ""))) for cell in nb.get("cells", []))


def _fit_record(fit: "_RiskModelFit") -> dict:
    """The manifest's note of the run's early-warning fit."""
    outcome = fit.outcome
    kind = next((k for k in ("model", "too_few", "error") if k in outcome), None)
    return {"fitted": "once for the run, in the parent", "seconds": fit.seconds, "outcome": kind,
            "detail": outcome.get("too_few") or outcome.get("error")}


class _RiskModelFit(_ParentStep):
    """fit_risk_model in the parent, beside the first pages (which wait for it only when
    they reach their early-warning section), with DuckDB limited to one thread and
    `memory` (the share the index headline, computed after it in the same slot, gets)."""

    def __init__(self, data_dir: Path, out: Path, engine: str, spark_master: str | None, memory: str,
                 score_at: tuple = (), after: threading.Thread | None = None):
        super().__init__("povdyn-risk-model", memory)
        self.after = after  # a step to wait for first (run_report starts the fit at once)
        self.args = (data_dir, out, engine, spark_master, score_at)

    def compute(self) -> dict:
        return fit_risk_model(*self.args)


def _pending_html(lang: str) -> str:
    return f'<p class="pending">{html.escape(label("pending", lang))}</p>'


def _utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def run_report(
    period="latest",
    regions="all",
    workers: int = 2,
    out_dir=None,
    data_dir=None,
    lang: str = "vi",
    progress: bool = True,
    notebook=None,
    standard: str = "national",
    within: int = 2,
    engine: str | None = None,
    spark_master: str | None = None,
    register: str | None = None,
    timeout: int = 900,
    reuse_kernels: bool = True,
    level: str = "province",
    targets=None,
) -> ReportRun:
    """Render the report for `regions` at `period` (see the module docstring).

    period: "latest" or a period as ingest reads it ("2025Q3", "Quý 3/2025", 2024);
    regions: "all", "national", a comma-separated string or a list; workers: parallel
    processes; out_dir: default settings().reports_dir; data_dir: default
    settings().processed_dir; lang: "vi" or "en"; notebook: template (default the report
    notebook shipped in the package); engine: "duckdb" or "spark" (default
    settings().engine), given to every page as its `engine` parameter and as the default
    engine of its kernel; spark_master: the Spark master URL (e.g. "spark://host:7077";
    default $SPARK_MASTER or local[2]); register: "lists" or "full" overrides the register
    kind ingest recorded (the pages' `register` parameter); reuse_kernels: each worker
    keeps one kernel for all its pages (namespace reset between pages) instead of
    papermill's kernel per page. level: "province" (the nation and provinces, as
    above) or "commune": one page per 2025 commune of each province in `regions`
    ("all" = every province) from the commune notebook, written to
    ``<period>/<province>/<commune>.html``, with ``communes.html`` (provinces ->
    communes), ``<province>/index.html`` per province and ``communes.json`` (the
    manifest of the commune pages) beside the province run's index and manifest; the
    pages of a province are handed to the same worker where possible, so its kernel
    computes the province's commune aggregates once (povdyn.communes). At the end the
    province pages and the index already in the folder link to the new commune pages.
    targets: the office's targets file (povdyn.targets), given to every page as its
    ``targets_file``; default the targets.csv found in or beside data_dir
    (``targets.local_targets_file``), else the national targets only. The file is read
    and checked before any page starts (PovdynError naming file, row and column) and
    recorded in the manifest with its sha256.

    Returns a ReportRun (``.failed`` lists the regions that failed; each has a log under
    out_dir/<period>/logs/). Raises ReportLocked when another run writes into out_dir,
    and ReportInterrupted (a KeyboardInterrupt) after writing an "interrupted" manifest
    and index when stopped by Ctrl-C or SIGTERM."""
    from .engine import engine_name

    started = time.perf_counter()
    cfg = settings()
    data_dir = Path(data_dir or cfg.processed_dir).resolve()
    out_root = Path(out_dir or cfg.reports_dir).resolve()
    if level not in LEVELS:
        raise PovdynError(f"level={level!r}: use one of {', '.join(LEVELS)}")
    communes_level = level == "commune"
    template = Path(notebook or (COMMUNE_NOTEBOOK_PATH if communes_level else template_notebook())).resolve()
    if not template.exists():
        raise PovdynError(f"report notebook {template} not found")
    if lang not in ("vi", "en"):
        raise PovdynError(f"lang={lang!r}: use 'vi' or 'en'")
    engine = engine_name(engine)
    if register not in (None, "lists", "full"):
        raise PovdynError(f"register={register!r}: use 'lists' or 'full'")
    targets_path = _checked_targets(targets, data_dir)
    period = resolve_period(data_dir, period)
    region_list = resolve_regions(data_dir, regions)
    if communes_level:
        provinces = [r for r in region_list if r != "national"]
        if not provinces:
            raise PovdynError("--level commune needs provinces: 'all' or a list of province names")
        pages = commune_pages(data_dir, provinces)
        empty = [p for p in provinces if not any(q == p for q, _ in pages)]
        if empty:
            raise PovdynError(f"no commune of {', '.join(empty)} has a household on the register "
                              f"(a province spelt as in the data? is {COMMUNE_COLUMN} in "
                              f"{data_dir}/panel.parquet? if not, run `povdyn ingest` again)")
        region_list = [f"{p}/{c}" for p, c in pages]
    manifest_name, index_name = (("communes.json", "communes.html") if communes_level
                                 else ("manifest.json", "index.html"))

    with RunLock(out_root):
        run_dir = out_root / str(period)
        (run_dir / "notebooks").mkdir(parents=True, exist_ok=True)
        fingerprint = data_fingerprint(data_dir)
        generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        footer = footer_html(fingerprint["sha256"], generated, lang)
        template_hash = hashlib.sha256(template.read_bytes()).hexdigest()

        jobs, slugs = [], set()
        for region in region_list:
            if communes_level:
                province, commune = region.split("/", 1)
                slug = f"{slugify(province)}/{slugify(commune)}"
                title = f"{label('commune_report_title', lang)} — {commune} ({province}) — {period}"
                params = dict(region=province, commune=commune, period=str(period), within=int(within),
                              engine=engine, data_dir=str(data_dir), lang=lang)
            else:
                province = None
                slug = slugify(region)
                title = (f"{label('report_title', lang)} — "
                         f"{label('national', lang) if region == 'national' else region} — {period}")
                params = dict(region=region, period=str(period), standard=standard, within=int(within),
                              engine=engine, data_dir=str(data_dir), lang=lang)
            while slug in slugs:
                slug += "-x"
            slugs.add(slug)
            if register is not None:
                params["register"] = register
            if targets_path is not None:
                params["targets_file"] = str(targets_path)
            jobs.append(dict(region=region, slug=slug, out_dir=str(run_dir), template=str(template),
                             parameters=params, title=title, lang=lang, footer=footer, engine=engine,
                             cwd=str(template.parent), timeout=timeout, reuse_kernel=reuse_kernels,
                             group=province))
        workers = max(1, min(int(workers), len(jobs)))
        slug_of = {j["region"]: j["slug"] for j in jobs}
        if not communes_level:
            jobs = _largest_first(data_dir, jobs)
        state = dict(status="running", results={}, headline_error=None, early_warning_fit=None, run_tables=None,
                     started_utc=_utc_now(),
                     finished_utc=None, published=0.0)

        def publish(headline: str | None = None) -> tuple[Path, Path]:
            """Write the manifest and the index as they stand (at the start, as pages
            finish, at the end), so neither ever describes another run than this one."""
            seconds = round(time.perf_counter() - started, 2)
            results = [state["results"].get(r) for r in region_list]
            engines = sorted({e for r in results if r for e in
                              ([r["engine"]] if isinstance(r.get("engine"), str) else (r.get("engine") or []))})
            manifest = {
                "status": state["status"],
                "period": str(period),
                "level": level,
                "parameters": dict(regions=region_list, workers=workers, reuse_kernels=reuse_kernels,
                                   lang=lang, standard=standard, within=int(within), engine=engine,
                                   spark_master=spark_master, register=register, min_cell=cfg.min_cell,
                                   data_dir=str(data_dir), out_dir=str(out_root),
                                   targets_file=None if targets_path is None else str(targets_path),
                                   targets_sha256=None if targets_path is None else
                                   hashlib.sha256(targets_path.read_bytes()).hexdigest()),
                "engines_used": engines,
                "template": {"path": str(template), "sha256": template_hash},
                "data": fingerprint,
                "packages": versions,
                "git_commit": commit,
                "generated_utc": generated,
                "started_utc": state["started_utc"],
                "finished_utc": state["finished_utc"],
                "seconds_total": seconds,
                "index_headline_error": state["headline_error"],
                "early_warning_fit": state["early_warning_fit"],
                "run_tables": state["run_tables"],
                "regions": [_manifest_region(region, slug_of[region], r) for region, r in
                            zip(region_list, results)],
            }
            manifest_path = run_dir / manifest_name
            atomic_write(manifest_path, json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
            index_path = run_dir / index_name
            rows = [r or dict(region=region, ok=False, state="waiting" if state["status"] == "running"
                              else "not_rendered", seconds=0.0)
                    for region, r in zip(region_list, results)]
            if communes_level:
                atomic_write(index_path, link_existing_pages(
                    render_commune_index(period, rows, footer, lang, status=state["status"]), run_dir))
            else:
                atomic_write(index_path, link_existing_pages(
                    render_index(period, rows, headline or _pending_html(lang), footer, lang,
                                 status=state["status"], download=(run_dir / HEADLINE_CSV).exists()),
                    run_dir))
            return index_path, manifest_path

        commit, versions = git_commit(), package_versions()
        if not communes_level:
            # the previous run's download belongs to another run (maybe other data)
            (run_dir / HEADLINE_CSV).unlink(missing_ok=True)
        publish()

        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(jobs), desc=f"report {period}", unit="page")

        risk_fit: _RiskModelFit | None = None
        run_tables: _RunTables | None = None

        def on_result(res: dict) -> None:
            state["results"][res["region"]] = res
            if bar is not None:
                bar.update(1)
                if not res["ok"]:
                    bar.write(f"failed: {res['region']} (log: {run_dir / res['log']})")
            # the index and manifest list every page: rewriting them after each of 3,321
            # commune pages cost the parent ~0.1 s a page, taken from the workers' cores
            if not res["ok"] or time.perf_counter() - state["published"] >= PUBLISH_EVERY_SECONDS:
                publish()
                state["published"] = time.perf_counter()
            if run_tables is not None and run_tables.error:
                # the province pages read their numbers from them: the run stops here
                state["run_tables"] = run_tables.record()
                raise PovdynError(f"the run-wide tables could not be computed for this run, so no "
                                  f"province page can show its numbers: {run_tables.error}")
            if risk_fit is not None and risk_fit.error:
                # every page needs the model: the run stops here (its pages fail naming it)
                state["early_warning_fit"] = _fit_record(risk_fit)
                raise PovdynError(f"the early-warning model could not be fitted for this run, so no page "
                                  f"can show its section: {risk_fit.error}")

        ipc_dir = tempfile.mkdtemp(prefix="povdyn-ipc-run-")
        # the index headline is computed beside the pages, except for a lone page: that
        # one has every core and the run's memory, and the headline (another pass over
        # the same register here) would only compete with it; it then comes after
        headline_beside = not communes_level and len(jobs) > 1
        tables_beside = (headline_beside and engine == "duckdb"
                         and _template_takes(template, RUN_TABLES_PARAMETER))
        fit_beside = headline_beside and _template_takes(template, RISK_MODEL_PARAMETER)
        # what the DuckDB memory budget is split among: the workers, the index headline
        # and, while both run at once, the run-wide tables beside the early-warning fit
        sharing = workers + int(headline_beside) + int(tables_beside and fit_beside)
        threads = str(duckdb_threads_per_worker(workers, len(jobs)))
        from .engine import SPILL_ROOT_ENV

        # the kernels' and workers' DuckDB spill folders go inside the run's folder, removed
        # below: kernels are killed at shutdown, so their own clean-up at exit never runs
        env = {"POVDYN_ENGINE": engine, IPC_DIR_ENV: ipc_dir, SPILL_ROOT_ENV: os.path.join(ipc_dir, "spill"),
               "POVDYN_DUCKDB_THREADS": threads,
               "POVDYN_DUCKDB_MEMORY": duckdb_memory_per_worker(sharing, sharing)}
        # the kernels' BLAS and OpenMP pools (numpy, the model fits) get the same share as
        # DuckDB unless the caller chose (make sets 1): a pool per kernel as large as the
        # machine spins its threads against the other kernels' on a small one
        env.update({name: os.environ.get(name, threads) for name in BLAS_THREAD_VARIABLES})
        if spark_master:
            env["SPARK_MASTER"] = spark_master
        interrupted = False
        # the early-warning model: fitted once for the run, here, beside the first pages
        # (a fit per worker kernel cost 5.7 s of each worker on the demo), then the index
        # headline in the same share of the budget; a lone page fits its own, as it has
        # every core and the run's memory
        # the metric tables every province page slices (pagedata.run_wide_tables): once
        # for the run, here, while the kernels start and the national page renders.
        # The fit starts beside them, not after: every page waits for the model at its
        # early-warning section, and with the fit after the tables both workers sat
        # waiting for it while only the fit ran (5-9 s on the demo batch)
        if tables_beside:
            tables_dir = Path(ipc_dir) / RUN_TABLES_DIR
            # the national page reads the by-province tables for its provinces section
            # when they cover every province (a run of some provinces computes theirs only)
            every_province = set(resolve_regions(data_dir, "all")) <= set(region_list)
            for job in jobs:
                if job["region"] != "national" or every_province:
                    job["parameters"][RUN_TABLES_PARAMETER] = str(tables_dir)
            run_tables = _RunTables(data_dir, tables_dir, int(within), engine, register,
                                    memory=env["POVDYN_DUCKDB_MEMORY"], regions=region_list, period=period)
            run_tables.start()
        if fit_beside:
            model_path = Path(ipc_dir) / RISK_MODEL_FILE
            for job in jobs:
                job["parameters"][RISK_MODEL_PARAMETER] = str(model_path)
            risk_fit = _RiskModelFit(data_dir, model_path, engine, spark_master, memory=env["POVDYN_DUCKDB_MEMORY"],
                                     score_at=((str(period), lang),))
            risk_fit.start()
        index_headline = (_IndexHeadline(data_dir, period, region_list, lang, memory=env["POVDYN_DUCKDB_MEMORY"],
                                         after=risk_fit or run_tables, run_tables=run_tables)
                          if headline_beside else None)
        if index_headline is not None:
            index_headline.start()
        try:
            _run_jobs(jobs, workers, env, run_dir, on_result)
        except _Interrupted:
            interrupted = True
        except BaseException:
            state.update(status="failed", finished_utc=_utc_now())
            publish()
            raise
        finally:
            if bar is not None:
                bar.close()
            shutil.rmtree(ipc_dir, ignore_errors=True)
            _remove_partial_files(run_dir)

        results = [state["results"][r] for r in region_list if r in state["results"]]
        headline = None
        if interrupted:
            state["status"] = "interrupted"
        else:
            # the template must be unchanged by the run (reports are immutable outputs)
            if hashlib.sha256(template.read_bytes()).hexdigest() != template_hash:
                state.update(status="failed", finished_utc=_utc_now())
                publish()
                raise PovdynError(f"the template notebook {template} changed during the run")
            if index_headline is not None:
                headline, state["headline_error"] = index_headline.result(data_dir, period, region_list,
                                                                          lang, run_dir)
            if run_tables is not None:
                run_tables.join()
                state["run_tables"] = run_tables.record()
            if risk_fit is not None:
                risk_fit.join()
                state["early_warning_fit"] = _fit_record(risk_fit)
            elif not communes_level:  # a lone page's run: the headline now has the machine
                from .engine import duckdb_limits

                with duckdb_limits(threads=duckdb_threads_per_worker(1, 1), memory=duckdb_memory_per_worker(1, 1)):
                    headline, state["headline_error"] = _headline_for_index(data_dir, period, region_list, lang,
                                                                            run_dir)
            state["status"] = "complete" if all(r["ok"] for r in results) else "failed"
        state["finished_utc"] = _utc_now()
        index_path, manifest_path = publish(headline)
        if communes_level:
            _write_province_indexes(run_dir, period, region_list, state["results"], footer, lang,
                                    state["status"])
        relink_pages(run_dir)
        run = ReportRun(
            period=str(period), out_dir=run_dir, index_path=index_path, manifest_path=manifest_path,
            status=state["status"], pages={r["region"]: run_dir / r["html"] for r in results if r["ok"]},
            failed=[r["region"] for r in results if not r["ok"]],
            not_rendered=[r for r in region_list if r not in state["results"]],
            results=results, seconds=round(time.perf_counter() - started, 2),
        )
    if interrupted:
        raise ReportInterrupted(run)
    return run


def _checked_targets(targets, data_dir: Path) -> Path | None:
    """The targets file every page of a run reads (run_report's `targets`, else the one
    in or beside data_dir, else None), read and checked once before any page starts."""
    from .targets import local_targets_file, read_targets

    if targets is not None:
        path = Path(targets).expanduser().resolve()
        if not path.is_file():
            raise PovdynError(f"targets file {path} not found (--targets: a csv with columns level, province, "
                              "district, commune, indicator, kind, value, group, base_period, source)")
    else:
        path = local_targets_file(data_dir)
        if path is None:
            return None
        path = path.resolve()
    read_targets(path)  # a PovdynError names the file, row and column
    return path


LEVELS = ("province", "commune")
# while pages are rendered, the index and manifest are rewritten at most this often
# (and after a failed page); always at the start and the end
PUBLISH_EVERY_SECONDS = 2.0
COMMUNE_NOTEBOOK = "commune_report.ipynb"
COMMUNE_NOTEBOOK_PATH = PACKAGE_NOTEBOOKS / COMMUNE_NOTEBOOK
COMMUNE_COLUMN = "commune_2025"


def commune_pages(data_dir: Path, provinces: list[str]) -> list[tuple[str, str]]:
    """(province, commune) of every 2025 commune with a household on the register in
    each of `provinces` (names as resolve_regions gives them), provinces in the given
    order, communes sorted; one DuckDB scan of two columns, never the register in
    pandas."""
    import duckdb

    path = panel_path(data_dir)
    con = duckdb.connect()
    try:
        columns = {r[0] for r in con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()}
        if COMMUNE_COLUMN not in columns:
            return []
        found = con.execute(
            f"SELECT DISTINCT province_2025, {COMMUNE_COLUMN} FROM read_parquet(?) "
            f"WHERE {COMMUNE_COLUMN} IS NOT NULL AND province_2025 IS NOT NULL", [str(path)]).fetchall()
    finally:
        con.close()
    by_province: dict = {}
    for province, commune in found:
        by_province.setdefault(province, []).append(commune)
    return [(p, c) for p in provinces for c in sorted(by_province.get(p, []))]


_PAGE_LINK = re.compile(r'<(?:span|a) class="povdyn-page-link(?P<hide> povdyn-hidden-link)?" '
                        r'data-povdyn-href="(?P<href>[^"]+)"(?: href="[^"]*")?>(?P<text>.*?)</(?:span|a)>', re.S)


def link_existing_pages(page: str, base: Path) -> str:
    """Turn the page-link markers a page or index carries (``<span class="povdyn-page-link"
    data-povdyn-href="...">``: a commune name in a province's commune table, a province's
    communes on the index) into links when the target page exists under `base`, and
    back into plain text when it does not (a run of the other level may come first or
    later). Hidden markers (``povdyn-hidden-link``) show only as links."""
    base = Path(base)

    def sub(m):
        href, hide, text = m.group("href"), m.group("hide") or "", m.group("text")
        target = (base / href.split("#", 1)[0]).resolve()
        if target.is_file():
            return f'<a class="povdyn-page-link{hide}" data-povdyn-href="{href}" href="{href}">{text}</a>'
        return f'<span class="povdyn-page-link{hide}" data-povdyn-href="{href}">{text}</span>'

    return _PAGE_LINK.sub(sub, page)


def relink_pages(run_dir: Path) -> None:
    """Re-link the pages already in a run folder (province pages, the indexes) to the
    pages that exist now; files are rewritten (atomically) only when a link changed."""
    run_dir = Path(run_dir)
    for path in sorted(run_dir.glob("*.html")) + sorted(run_dir.glob("*/index.html")):
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            continue
        if "povdyn-page-link" not in text:
            continue
        new = link_existing_pages(text, path.parent)
        if new != text:
            atomic_write(path, new)


def render_commune_index(period, results: list[dict], footer: str, lang: str = "vi",
                         status: str = "complete", prefix: str = "") -> str:
    """The index of a commune run: for each province, a link to its page (when it
    exists) and its communes, each linking to its page (or its log when it failed).
    `results` as run_report keeps them (region "province/commune"); `prefix`: the path
    from the index's folder to the run folder ("../" for a province's own index)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
                             autoescape=jinja2.select_autoescape(["html", "j2"]))
    tpl = env.get_template("communes_index.html.j2")
    groups: dict = {}
    for r in results:
        province, commune = r["region"].split("/", 1)
        state = r.get("state") or ("ok" if r["ok"] else "failed")
        groups.setdefault(province, []).append(dict(
            name=commune, ok=r["ok"], state=state, href=prefix + r["html"] if r.get("html") else None,
            log_href=prefix + r["log"] if r.get("log") else None, seconds=float(r.get("seconds") or 0.0)))
    provinces = [dict(name=p, slug=slugify(p), page_href=f"{prefix}{slugify(p)}.html",
                      index_href=f"{prefix}{slugify(p)}/index.html", communes=rows)
                 for p, rows in groups.items()]
    counts = dict(ok=sum(r["ok"] for r in results), total=len(results),
                  failed=sum((r.get("state") or ("ok" if r["ok"] else "failed")) == "failed" for r in results),
                  done=sum((r.get("state") or ("ok" if r["ok"] else "failed")) in ("ok", "failed")
                           for r in results))
    return tpl.render(
        lang=lang, title=f"{label('communes_index_title', lang)} — {period}", status=status,
        subtitle=label(f"run_{status}", lang).format(**counts), provinces=provinces,
        province_page_text=label("province_page", lang), commune_heading=label("commune_2025", lang),
        page_heading=label("page", lang), seconds_heading=label("index_seconds", lang),
        link_text=label("page", lang), failed_text=label("failed", lang), log_text=label("log", lang),
        not_rendered_text=label("not_rendered", lang), waiting_text=label("waiting", lang),
        suppression_note=label("suppression_note", lang).format(min_cell=settings().min_cell),
        back_href=f"{prefix}index.html", back_text=label("index_title", lang),
        css=_markup(_css()), footer=_markup(footer))


def _write_province_indexes(run_dir: Path, period, region_list: list[str], results: dict, footer: str,
                            lang: str, status: str) -> None:
    """<province>/index.html: the commune index of one province (linked from the run's
    index and from communes.html)."""
    groups: dict = {}
    for region in region_list:
        r = results.get(region)
        row = dict(r) if r else dict(region=region, ok=False, state="not_rendered", seconds=0.0)
        row["region"] = region
        groups.setdefault(region.split("/", 1)[0], []).append(row)
    for province, rows in groups.items():
        folder = run_dir / slugify(province)
        page = render_commune_index(period, rows, footer, lang, status=status, prefix="../")
        atomic_write(folder / "index.html", link_existing_pages(page, folder))


def _largest_first(data_dir: Path, jobs: list[dict]) -> list[dict]:
    """The order pages are handed to workers: the nation, then provinces by number of
    rows, largest first, so the batch does not end waiting on one big page that started
    last (the index keeps the order the user asked for)."""
    sizes = _panel_value_counts(data_dir, "province_2025")
    total = int(sizes.sum())
    return sorted(jobs, key=lambda j: -(total + 1 if j["region"] == "national"
                                        else int(sizes.get(j["region"], 0))))


def _manifest_region(region: str, slug: str, result: dict | None) -> dict:
    if result is None:
        return dict(region=region, slug=slug, ok=False, state="not_rendered")
    out = {k: result.get(k) for k in ("region", "slug", "ok", "seconds", "notebook", "html", "log",
                                       "error", "engine", "spark_master")}
    out["state"] = "ok" if result["ok"] else "failed"
    return out


def _remove_partial_files(run_dir: Path) -> None:
    """Temporary files a stopped worker left half-written (atomic writes in progress)."""
    for pattern in (".*.tmp", "notebooks/.*.ipynb", "notebooks/.*.tmp", "logs/.*.tmp",
                    # commune pages: one folder per province
                    "*/.*.tmp", "notebooks/*/.*.ipynb", "notebooks/*/.*.tmp", "logs/*/.*.tmp"):
        for path in run_dir.glob(pattern):
            path.unlink(missing_ok=True)


def render_index(period, results: list[dict], headline_html: str, footer: str, lang: str = "vi",
                 status: str = "complete", download: bool | None = None) -> str:
    """The index page: the run's status, the headline table of every region and links to
    every page (failed regions link to their log; regions an incomplete run did not
    render are listed without a link). Rendered from templates/site_index.html.j2."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
                             autoescape=jinja2.select_autoescape(["html", "j2"]))
    tpl = env.get_template("site_index.html.j2")
    rows = []
    for r in results:
        state = r.get("state") or ("ok" if r["ok"] else "failed")
        rows.append(dict(name=label("national", lang) if r["region"] == "national" else r["region"],
                         ok=r["ok"], state=state, href=r.get("html"), log_href=r.get("log"),
                         link_text=label("page", lang), seconds=float(r.get("seconds") or 0.0),
                         communes_href=None if r["region"] == "national" else f"{slugify(r['region'])}/index.html"))
    counts = dict(ok=sum(r["ok"] for r in rows), total=len(rows),
                  failed=sum(r["state"] == "failed" for r in rows),
                  done=sum(r["state"] in ("ok", "failed") for r in rows))
    page = tpl.render(
        lang=lang,
        title=f"{label('index_title', lang)} — {period}",
        status=status,
        subtitle=label(f"run_{status}", lang).format(**counts),
        headline_heading=label("index_headline", lang),
        headline_table=_markup(headline_html),
        suppression_note=label("suppression_note", lang).format(min_cell=settings().min_cell),
        download_text=label("index_download", lang),
        download_href=HEADLINE_CSV if (status in ("complete", "failed") if download is None else download)
        else None,
        pages_heading=label("index_pages", lang),
        region_heading=label("index_region", lang),
        page_heading=label("page", lang),
        seconds_heading=label("index_seconds", lang),
        failed_text=label("failed", lang), log_text=label("log", lang),
        not_rendered_text=label("not_rendered", lang), waiting_text=label("waiting", lang),
        rows=rows, css=_markup(_css()), footer=_markup(footer), communes_text=label("communes_link", lang),
    )
    return page


def _markup(text: str):
    from markupsafe import Markup

    return Markup(text)
