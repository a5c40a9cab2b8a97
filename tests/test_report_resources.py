"""What a report run gives each page's kernel (issue 15 §4): DuckDB threads and memory
shared out among the workers that really run at once, so a lone page gets every core,
and no kernel's DuckDB grows to 80% of the machine (its default)."""
from __future__ import annotations

import os

import nbformat
import pytest

from povdyn.errors import PovdynError
from povdyn.report import _worker_init, duckdb_memory_per_worker, duckdb_threads_per_worker, run_report
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


@pytest.mark.parametrize("workers, pages, budget, limit", [
    (1, 1, "3GB", "2861MiB"),     # 3e9 bytes
    (2, 35, "3GB", "1430MiB"),
    (2, 1, "4GiB", "4096MiB"),    # a lone page has the whole budget
    (2, 35, "300MB", "256MiB"),   # never below 256 MiB
    (3, 3, "1500 mb", "476MiB"),
])
def test_memory_per_worker_shares_the_run_budget(workers, pages, budget, limit):
    assert duckdb_memory_per_worker(workers, pages, budget=budget) == limit


def test_memory_budget_spelt_wrong_is_an_error():
    with pytest.raises(PovdynError, match="3GB"):
        duckdb_memory_per_worker(1, 1, budget="three gigabytes")


PROBE = ("from povdyn.engine import connect\n"
         "cursor = connect().raw_sql(\"SELECT current_setting('threads'), current_setting('memory_limit')\")\n"
         "print('THREADS', *cursor.fetchall()[0], sep='|')")


def test_a_lone_page_runs_its_engine_on_every_core_within_the_run_budget(tmp_path, monkeypatch):
    """End to end through the workers and their kernel: a report of one region with the
    default 2 workers; the page's DuckDB connection has as many threads as the machine
    has usable cores (it had 1 whatever the machine) and the run's whole memory budget
    (it had POVDYN_DUCKDB_MEMORY, whatever the run)."""
    import duckdb

    monkeypatch.setenv("POVDYN_DUCKDB_THREADS", "1")  # the parent's own settings are not the page's
    monkeypatch.setenv("POVDYN_DUCKDB_MEMORY", "4GB")
    monkeypatch.setenv("POVDYN_REPORT_MEMORY", "1GB")  # 10**9 bytes = 953 MiB
    data = write_small_register(tmp_path / "processed", households=200, tiny=False)
    template = tmp_path / "probe.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(PROBE)]), template)
    run = run_report(regions="national", workers=2, out_dir=tmp_path / "reports", data_dir=data,
                     notebook=template, progress=False)
    assert run.status == "complete", run
    nb = nbformat.read(run.out_dir / "notebooks" / "national.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for cell in nb.cells if "THREADS" in cell.source
                      for o in cell.outputs if o.get("output_type") == "stream")
    shown = duckdb.connect(config={"memory_limit": "953MiB"}).execute(
        "SELECT current_setting('memory_limit')").fetchone()[0]
    assert printed.strip().split("|") == ["THREADS", str(_usable_cores()), shown]


def test_one_exporter_per_worker_gives_each_page_its_own_title_and_footer():
    """Pages exported one after another by the worker's one exporter equal pages from a
    fresh exporter: nothing of one page (title, language, footer) stays in the next."""
    from povdyn import report

    cell = nbformat.v4.new_code_cell("x", outputs=[nbformat.v4.new_output(
        "display_data", data={"text/html": "<h2>Tỷ lệ thoát nghèo</h2><p>12,5%</p>"})])
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("## Mục A"), cell])
    first = report.export_html(nb, title="Trang Một", lang="vi", footer="chân-một")
    second = report.export_html(nb, title="Page Two", lang="en", footer="footer-two")
    report._EXPORTER.clear()
    fresh = report.export_html(nb, title="Page Two", lang="en", footer="footer-two")
    assert second == fresh
    assert "Page Two" in second and "footer-two" in second and "Trang Một" not in second
    assert "chân-một" in first and 'lang="vi"' in first and 'lang="en"' in second


def test_a_batch_shares_cores_and_memory_with_the_index_headline(tmp_path, monkeypatch):
    """Two pages on 2 workers: each kernel has cores // 2 threads and a third of the
    budget (the third third is the index headline's, computed in the parent beside them),
    as many BLAS threads unless the caller set them, and the heap alive before the page
    is frozen (report._reset_code)."""
    import duckdb

    monkeypatch.setenv("POVDYN_REPORT_MEMORY", "3000MiB")
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)  # unset: the run shares them out
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # set by the caller: kept
    data = write_small_register(tmp_path / "processed", households=200, tiny=True)
    template = tmp_path / "probe.ipynb"
    frozen = "import gc\nprint('FROZEN', gc.get_freeze_count() > 0)"  # a page's collections skip the warm heap
    blas = ("import os\nfrom povdyn.report import BLAS_THREAD_VARIABLES as names\n"
            "print('BLAS', *(os.environ.get(n) for n in names[:2]))")
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(PROBE),
                                                   nbformat.v4.new_code_cell(frozen),
                                                   nbformat.v4.new_code_cell(blas)]), template)
    from test_report import TINY_PROVINCE

    run = run_report(regions=["national", TINY_PROVINCE], workers=2, out_dir=tmp_path / "reports",
                     data_dir=data, notebook=template, progress=False)
    assert run.status == "complete", run
    shown = duckdb.connect(config={"memory_limit": "1000MiB"}).execute(
        "SELECT current_setting('memory_limit')").fetchone()[0]
    for book in (run.out_dir / "notebooks").glob("*.ipynb"):
        nb = nbformat.read(book, as_version=4)
        printed = "".join(o.get("text", "") for cell in nb.cells if "THREADS" in cell.source
                          for o in cell.outputs if o.get("output_type") == "stream")
        assert printed.strip().split("|") == ["THREADS", str(max(1, _usable_cores() // 2)), shown]
        assert "FROZEN True" in "".join(o.get("text", "") for cell in nb.cells for o in cell.outputs)
        assert f"BLAS {max(1, _usable_cores() // 2)} 3" in "".join(o.get("text", "") for cell in nb.cells
                                                                for o in cell.outputs)


def test_duckdb_limits_hold_in_their_block_and_thread_only(monkeypatch):
    import threading

    from povdyn import engine
    from povdyn.engine import connect, duckdb_limits

    monkeypatch.setenv("POVDYN_DUCKDB_THREADS", "1")
    monkeypatch.setenv("POVDYN_DUCKDB_MEMORY", "1GB")

    def limits():  # (raw_sql gives the connection itself: read to the end, never closed)
        return tuple(connect().raw_sql("SELECT current_setting('threads'), "
                                       "current_setting('memory_limit')").fetchall()[0])

    outside = limits()
    seen = {}
    with duckdb_limits(threads=2, memory="700MiB"):
        inside = limits()
        # another thread keeps the settings (a DuckDB connection is not for sharing
        # across threads, so the limits in force there are read, not a connection used)
        other = threading.Thread(target=lambda: seen.update(other=engine._LIMITS.get()))
        other.start()
        other.join()
    assert inside == (2, "700.0 MiB")
    assert outside == (1, "953.6 MiB") and limits() == outside and seen["other"] is None


def test_report_worker_validates_notebooks_without_building_the_iri_grammar(tmp_path):
    """A report worker keeps jsonschema from importing rfc3987_syntax (an Earley parser
    built at import, 1.8 s a worker) and still reads, validates and writes notebooks."""
    import subprocess
    import sys

    book = tmp_path / "page.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), book)
    code = ("import sys; from povdyn.report import _skip_iri_grammar; _skip_iri_grammar(); "
            "import nbformat, jsonschema._format; "
            f"nb = nbformat.read({str(book)!r}, as_version=4); nbformat.validate(nb); nbformat.writes(nb); "
            "print('LOADED' if sys.modules.get('rfc3987_syntax') else 'SKIPPED')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "SKIPPED"


def test_a_report_worker_renders_and_exports_a_page_without_importing_pandas(tmp_path):
    """A report worker only drives its kernel and exports pages: it must not pay for
    importing pandas (and povdyn.periods, which imports it) before its first page --
    0.4-0.5 s of CPU in each worker, on the batch's two cores."""
    import subprocess
    import sys

    template = tmp_path / "t.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("region = 'x'", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("print(region)")]), template)
    job = dict(region="y", slug="y", out_dir=str(tmp_path), template=str(template), parameters={"region": "y"},
               title="t", lang="vi", footer="", engine=None, cwd=str(tmp_path), reuse_kernel=True, group=None)
    code = ("import sys; from povdyn import report; report._skip_iri_grammar(); "
            f"result = report.execute_region({job!r}); report._shutdown_kernel(); "
            "print(result['ok'], result['error'], 'pandas' in sys.modules, 'povdyn.periods' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split() == ["True", "None", "False", "False"], out.stdout + out.stderr
    assert (tmp_path / "y.html").exists()


def test_a_warmed_worker_renders_its_first_page_in_the_kernel_it_launched(tmp_path):
    """_warm_worker launches the worker's kernel before any job and runs the warm-up code
    in it; the first page then runs in that same kernel (the warm-up's imports and
    names are there before %reset clears the names, and the page's cells run). The
    kernel keeps no input history (no history.sqlite written cell by cell)."""
    from povdyn import report

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("region = 'x'", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("import os, sys; print('PID', os.getpid(), 'WARM' if 'fractions' in sys.modules "
                                  "else 'COLD', type(get_ipython().history_manager.db).__name__)")])
    source = tmp_path / "t.ipynb"
    nbformat.write(nb, source)
    try:
        report._warm_worker(dict(cwd=str(tmp_path), reuse_kernel=True, code="import fractions"))
        launched = report._KERNEL["km"].provisioner.process.pid
        out = report.execute_in_worker_kernel(source, tmp_path / "out.ipynb", {"region": "y"})
        printed = nbformat.read(out, as_version=4).cells[-1].outputs[0]["text"].split()
    finally:
        report._shutdown_kernel()
    assert printed == ["PID", str(launched), "WARM", "DummyDB"]


def test_parent_steps_running_at_once_query_on_connections_of_their_own():
    """The run-wide tables and the early-warning fit run at the same time in the parent:
    each names its connection (duckdb_limits(connection=...)), so neither finds the other's
    busy (DuckDB refuses a call on a connection busy with another thread's)."""
    import threading

    from povdyn.engine import connect, duckdb_limits

    with duckdb_limits(threads=1, memory="500MiB", connection="povdyn-run-tables"):
        tables = connect()
    with duckdb_limits(threads=1, memory="500MiB", connection="povdyn-risk-model"):
        fit = connect()
    with duckdb_limits(threads=1, memory="500MiB"):
        plain = connect()
    assert len({id(tables), id(fit), id(plain)}) == 3
    with duckdb_limits(threads=1, memory="500MiB", connection="povdyn-run-tables"):
        assert connect() is tables

    started, errors = threading.Barrier(2), []

    def query(name):
        try:
            with duckdb_limits(threads=1, memory="500MiB", connection=name):
                con = connect()
                started.wait()
                con.raw_sql("SELECT sum(range % 7) FROM range(30000000)").fetchall()
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    steps = [threading.Thread(target=query, args=(n,)) for n in ("povdyn-run-tables", "povdyn-risk-model")]
    for step in steps:
        step.start()
    for step in steps:
        step.join()
    assert errors == []
