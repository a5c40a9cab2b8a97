"""Which engine runs the heavy metrics: DuckDB (default) or Spark, both through Ibis.

architecture.md, "One definition, two engines": every flow metric is one Ibis
expression. It runs on an embedded DuckDB (in-process, no server) by default and,
unchanged, on a Spark session when ``engine="spark"``. Only small aggregated results
come back to pandas.

* ``connect("duckdb")``: a DuckDB connection with ``threads`` and ``memory_limit``
  from ``povdyn.settings()`` (env POVDYN_DUCKDB_THREADS / POVDYN_DUCKDB_MEMORY) and the
  progress bar off (it would print into notebooks and reports).
* ``connect("spark")``: the Ibis pyspark backend on ``spark_session()``. Locally that is
  ``local[2]``; a user points it at a cluster with the usual SPARK_MASTER / spark-submit
  settings. Parquet is read as temporary views, never copied into tables.
"""
from __future__ import annotations

import atexit
import contextlib
import contextvars
import os
import shutil
import tempfile
import time

import duckdb
import ibis

from .config import settings
from .errors import PovdynError

ENGINES = ("duckdb", "spark")

# One DuckDB connection per (threads, memory[, name]) setting: connecting is cheap, but a
# long-lived connection keeps parquet views and memtables registered in one place.
_DUCKDB: dict[tuple, object] = {}
_SPARK: dict[str, object] = {}


def engine_name(engine=None) -> str:
    """The engine to use: the argument, else settings().engine; checked."""
    name = str(engine or settings().engine).strip().lower()
    if name not in ENGINES:
        raise PovdynError(f"unknown engine {engine!r}: use one of {list(ENGINES)} "
                          "(or set POVDYN_ENGINE)")
    return name


_LIMITS: contextvars.ContextVar = contextvars.ContextVar("povdyn_duckdb_limits", default=None)


@contextlib.contextmanager
def duckdb_limits(threads: int, memory: str, connection: str | None = None):
    """Inside the block, in this thread only, connect() gives a DuckDB connection with
    these threads and memory limit instead of settings()'s: e.g. the index headline a
    report run computes in its parent beside the pages, which must not take the cores
    and memory the pages' kernels were given. ``connection``: a name for a connection of
    its own -- threads that query at the same time need one each (DuckDB refuses a call
    on a connection busy with another thread's)."""
    token = _LIMITS.set((int(threads), str(memory)) + ((str(connection),) if connection else ()))
    try:
        yield
    finally:
        _LIMITS.reset(token)


SPILL_ROOT_ENV = "POVDYN_SPILL_ROOT"
SPILL_PREFIX = "povdyn_duckdb_"


def spill_folder() -> str:
    """A folder of this process's own where DuckDB spills: in $POVDYN_SPILL_ROOT when set,
    else in the system temp dir (never the working directory, never shared), named
    ``povdyn_duckdb_<pid>_<random>`` and removed when the process exits.

    Processes that end without running atexit -- report kernels are killed at shutdown,
    report workers leave through os._exit -- would leave theirs behind (~40 empty folders
    an hour in /tmp): a report run therefore sets POVDYN_SPILL_ROOT to a folder of its own
    that it removes at the end, and each new folder in the temp dir first removes the
    empty ones of processes that no longer exist."""
    root = os.environ.get(SPILL_ROOT_ENV) or None
    if root:
        os.makedirs(root, mode=0o700, exist_ok=True)
    else:
        _remove_dead_spill_folders(tempfile.gettempdir())
    spill = tempfile.mkdtemp(prefix=f"{SPILL_PREFIX}{os.getpid()}_", dir=root)
    atexit.register(shutil.rmtree, spill, ignore_errors=True)
    return spill


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


# DuckDB's own files in a spill folder: duckdb_temp_<pid>_<n>_owner (left after a spill)
# and duckdb_temp_<pid>_<n>_storage_*.tmp (the spilled blocks)
STALE_SPILL_SECONDS = 3600


def _remove_dead_spill_folders(folder: str) -> None:
    """Spill folders whose process is gone: an empty one at once; one holding only
    DuckDB's temp files once nothing in it changed for an hour. A process in another pid
    namespace sharing this temp dir may look gone while it runs: an empty folder DuckDB
    simply makes again, and an hour-old spill there is the one risk left."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    now = time.time()
    for entry in entries:
        pid, sep, _ = entry.name[len(SPILL_PREFIX):].partition("_")
        if not (entry.name.startswith(SPILL_PREFIX) and sep and pid.isdigit()):
            continue
        if int(pid) == os.getpid() or _process_exists(int(pid)):
            continue
        try:
            inside = list(os.scandir(entry.path))
            if inside:
                if not all(f.name.startswith("duckdb_temp_") and f.is_file(follow_symlinks=False)
                           for f in inside):
                    continue
                newest = max([entry.stat(follow_symlinks=False).st_mtime]
                             + [f.stat(follow_symlinks=False).st_mtime for f in inside])
                if now - newest < STALE_SPILL_SECONDS:
                    continue
                for f in inside:
                    os.unlink(f.path)
            os.rmdir(entry.path)
        except OSError:  # not ours, or changed meanwhile: left as it is
            continue


def connect(engine=None):
    """An Ibis backend: DuckDB (default, from settings().engine) or Spark."""
    name = engine_name(engine)
    if name == "spark":
        session = spark_session()
        key = id(session)
        con = _SPARK.get("con")
        if con is None or _SPARK.get("session") != key:
            con = ibis.pyspark.connect(session)
            _SPARK.update(con=con, session=key)
        return con
    s = settings()
    key = _LIMITS.get() or (s.duckdb_threads, s.duckdb_memory)
    threads, memory = key[:2]
    con = _DUCKDB.get(key)
    if con is None:
        # passed as a setting, not pasted into SQL
        con = ibis.duckdb.connect(threads=threads, memory_limit=memory, temp_directory=spill_folder())
        try:
            con.raw_sql("SET enable_progress_bar = false")
        except duckdb.InvalidInputException:
            # Inside a Jupyter kernel DuckDB refuses the setting (it wants ipywidgets);
            # there the bar is already off, which is all we need.
            pass
        con.compile = CompiledSQL(con)
        _DUCKDB[key] = con
    return con


class CompiledSQL:
    """The DuckDB backend's ``compile``, remembering the SQL of each expression shape.

    A report worker renders page after page of the same kind: each page's metrics are
    the same Ibis expressions over other tables (the page's cached rows, its household
    pivot, small in-memory tables), and compiling them (Ibis rewrites, then sqlglot) was
    about 1.3 s of every page. Here the tables are replaced by numbered placeholders;
    the SQL of that shape is compiled once, and each call substitutes its own table
    names. Everything else in the expression (columns, literals, periods, limit) is part
    of the shape, so the SQL is exactly what ``compile`` gives (tested). The original
    is used when scalar ``params`` or pretty printing are asked, or when table names
    would not substitute safely."""

    MAX_SHAPES = 512

    def __init__(self, con):
        self._compile = con.compile  # the backend's own (a bound method)
        self._con = con
        self._shapes: dict = {}
        self.hits = self.misses = 0

    def __call__(self, expr, /, *, limit=None, params=None, pretty: bool = False, **kwargs):
        import ibis.expr.operations as ops

        if params or pretty or kwargs:
            return self._compile(expr, limit=limit, params=params, pretty=pretty, **kwargs)
        op = expr.op()
        tables = op.find((ops.DatabaseTable, ops.InMemoryTable))
        names = [t.name for t in tables]
        if len(set(names)) != len(names) or any('"' in n or "__povdyn_table_" in n for n in names):
            return self._compile(expr, limit=limit)
        stand_ins = {t: ops.DatabaseTable(
            name=f"__povdyn_table_{i}__", schema=t.schema, source=self._con,
            namespace=t.namespace if isinstance(t, ops.DatabaseTable) else ops.Namespace())
            for i, t in enumerate(tables)}
        key = (op.replace(stand_ins), limit)
        sql = self._shapes.get(key)
        if sql is None:
            self.misses += 1
            sql = self._compile(key[0].to_expr(), limit=limit)
            if len(self._shapes) >= self.MAX_SHAPES:
                self._shapes.pop(next(iter(self._shapes)))
            self._shapes[key] = sql
        else:
            self.hits += 1
        for i, name in enumerate(names):
            sql = sql.replace(f'"__povdyn_table_{i}__"', f'"{name}"')
        return sql


def backend_name(con) -> str:
    """"duckdb" or "spark" for an Ibis backend."""
    return "spark" if con.name == "pyspark" else con.name


def spark_session():
    """A SparkSession: ``local[2]`` (or $SPARK_MASTER), UI off, quiet logs, few shuffle
    partitions (small local data), warehouse/metastore in a temp dir so that no
    ``spark-warehouse`` or ``derby.log`` is left in the working directory."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    master = os.environ.get("SPARK_MASTER", "local[2]")
    scratch = tempfile.mkdtemp(prefix="povdyn_spark_")
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)  # no litter left behind
    builder = (
        SparkSession.builder.appName("povdyn")
        .master(master)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.warehouse.dir", os.path.join(scratch, "warehouse"))
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={scratch}")
        .config("spark.local.dir", scratch)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
    )
    if master.startswith("local"):
        builder = builder.config("spark.sql.shuffle.partitions", "4").config(
            "spark.default.parallelism", "2")
        builder = builder.config("spark.driver.memory", os.environ.get("SPARK_DRIVER_MEMORY", "2g"))
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session
