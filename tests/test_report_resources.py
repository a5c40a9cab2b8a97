"""What a report run gives each page's kernel (issue 15 §4): DuckDB threads shared out
among the workers that really run at once, so a lone page gets every core."""
from __future__ import annotations

import os

import nbformat
import pytest

from povdyn.report import _worker_init, duckdb_threads_per_worker, run_report
from test_report import write_small_register


def _usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


@pytest.mark.parametrize("workers, pages, cores, threads", [
    (1, 1, 2, 2),    # one page, one worker: every core
    (2, 1, 2, 2),    # `--regions national` with the default 2 workers: one runs, it gets both
    (2, 35, 2, 1),   # the batch on 2 cores: one each
    (4, 35, 2, 1),   # more workers than cores: never 0
    (3, 3, 8, 2),
    (2, 5, 1, 1),
])
def test_threads_per_worker_share_the_cores_among_running_workers(workers, pages, cores, threads):
    assert duckdb_threads_per_worker(workers, pages, cores=cores) == threads


def test_worker_init_keeps_the_threads_the_run_set(monkeypatch):
    for name in ("MPLBACKEND", "PYDEVD_DISABLE_FILE_VALIDATION", "TQDM_DISABLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("POVDYN_DUCKDB_THREADS", "2")
    _worker_init()
    assert os.environ["POVDYN_DUCKDB_THREADS"] == "2"
    monkeypatch.delenv("POVDYN_DUCKDB_THREADS")
    _worker_init()  # nothing set: one thread, as for parallel pages
    assert os.environ["POVDYN_DUCKDB_THREADS"] == "1"


PROBE = "from povdyn.engine import connect\n" \
        "print('THREADS', connect().raw_sql(\"SELECT current_setting('threads')\").fetchone()[0])"


def test_a_lone_page_runs_its_engine_on_every_core(tmp_path, monkeypatch):
    """End to end through the workers and their kernel: a report of one region with the
    default 2 workers; the page's DuckDB connection has as many threads as the machine
    has usable cores (it had 1 whatever the machine)."""
    monkeypatch.setenv("POVDYN_DUCKDB_THREADS", "1")  # the parent's own setting is not the page's
    data = write_small_register(tmp_path / "processed", households=200, tiny=False)
    template = tmp_path / "probe.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(PROBE)]), template)
    run = run_report(regions="national", workers=2, out_dir=tmp_path / "reports", data_dir=data,
                     notebook=template, progress=False)
    assert run.status == "complete", run
    nb = nbformat.read(run.out_dir / "notebooks" / "national.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for cell in nb.cells if "THREADS" in cell.source
                      for o in cell.outputs if o.get("output_type") == "stream")
    assert printed.split() == ["THREADS", str(_usable_cores())]
