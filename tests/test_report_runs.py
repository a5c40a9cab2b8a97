"""Report runs that cannot lie (issue 15 §5), each found "as a new user would" and
reproduced here through the `povdyn report` command in its own process:

* Ctrl-C (SIGINT to the process group) stops the batch at once: no new page starts, the
  workers and kernels exit, the page in progress is not logged as a failure and its
  previous good page stays; manifest and index say "interrupted";
* a second run into the same --out fails at once (lock);
* SIGKILL of the parent takes the workers and kernels with it;
* `povdyn report` runs from any directory on a non-editable install (the notebook is
  package data), and leaves no povdyn-ipc-* folder in the temp directory;
* "Quý 3/2025" is a period; an empty panel is a clear error; file modes are uniform;
* `make lab` passes --allow-root when run as root.

The batch tests use a small template notebook whose page waits $POVDYN_TEST_PAGE_SECONDS
seconds and records its kernel's pid and its worker's pid (the kernel's parent), so
the tests can see which pages started and which processes are still alive.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from povdyn.report import RunLock, resolve_period
from test_report import write_small_register

ROOT = Path(__file__).resolve().parents[1]
REGIONS = ["national", "Hà Nội", "Cao Bằng", "Lạng Sơn"]


def _slow_template(path: Path) -> Path:
    """A report template with the runner's parameters; its page records who ran it and
    then waits $POVDYN_TEST_PAGE_SECONDS before printing its region."""
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('region = "national"\nperiod = "2025Q4"\nstandard = "national"\n'
                                       'within = 2\nengine = "duckdb"\ndata_dir = None\nlang = "vi"')
    params.metadata["tags"] = ["parameters"]
    record = nbformat.v4.new_code_cell(
        "import os, time, json, pathlib\n"
        "marks = pathlib.Path(os.environ['POVDYN_TEST_MARKS'])\n"
        "(marks / f'{region}.json').write_text(json.dumps({'kernel': os.getpid(), 'worker': os.getppid(),"
        " 'time': time.time(), 'register': globals().get('register'), 'engine': engine,"
        " 'default_engine': os.environ.get('POVDYN_ENGINE')}))\n"
        "time.sleep(float(os.environ.get('POVDYN_TEST_PAGE_SECONDS', '0')))")
    body = nbformat.v4.new_code_cell("print('page of', region)")
    nb.cells = [nbformat.v4.new_markdown_cell("# Test page"), params, record, body]
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    data = write_small_register(base / "processed", households=400, seed=3, tiny=False)
    return base, data, _slow_template(base / "slow.ipynb")


def _cli(args: list[str], env: dict, **kw) -> subprocess.Popen:
    """`povdyn report ...` as a user starts it: its own process (group leader, as a shell
    makes it), this checkout's library."""
    full = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "lib"), os.environ.get("PYTHONPATH", "")]),
            **env}
    return subprocess.Popen([sys.executable, "-m", "povdyn.cli", "-q", "report", *args], env=full,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **kw)


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_for(predicate, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def _batch_args(data: Path, out: Path, template: Path) -> list[str]:
    return ["--notebook", str(template), "--regions", ",".join(REGIONS), "--workers", "2",
            "--data-dir", str(data), "--out", str(out)]


def test_ctrl_c_stops_the_batch_and_says_so_and_a_second_run_is_refused(setup, tmp_path):
    base, data, template = setup
    out, marks = tmp_path / "reports", tmp_path / "marks"
    marks.mkdir()
    short_tmp = Path(tempfile.mkdtemp(prefix="pvt-", dir="/tmp"))  # short enough for sockets inside
    env = {"POVDYN_TEST_MARKS": str(marks), "POVDYN_TEST_PAGE_SECONDS": "0", "TMPDIR": str(short_tmp)}
    first = _cli(_batch_args(data, out, template) + ["--register", "lists", "--engine", "duckdb"], env)
    assert first.wait(timeout=300) == 0, first.stderr.read()
    # every page got the register and engine parameters, and its kernel the default engine
    for mark in marks.iterdir():
        params = json.loads(mark.read_text())
        assert (params["register"], params["engine"], params["default_engine"]) == ("lists", "duckdb", "duckdb")
    assert not list(short_tmp.glob("povdyn-ipc-*")), "ipc folders left in the temp directory"
    run_dir = out / "2025Q4"
    good = {p.name: p.read_bytes() for p in run_dir.glob("*.html") if p.name != "index.html"}
    assert len(good) == 4
    for mark in marks.iterdir():
        mark.unlink()

    slow = _cli(_batch_args(data, out, template), {**env, "POVDYN_TEST_PAGE_SECONDS": "120"})
    assert _wait_for(lambda: len(list(marks.iterdir())) == 2, 120), "two pages never started"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "running"
    assert "Đang chạy" in (run_dir / "index.html").read_text(encoding="utf-8")

    # a second run into the same folder is refused at once, naming the reason
    started = time.monotonic()
    second = _cli(_batch_args(data, out, template), env)
    assert second.wait(timeout=60) == 2
    assert "already writing into" in second.stderr.read()
    assert time.monotonic() - started < 30

    in_progress = {m.stem: json.loads(m.read_text()) for m in marks.iterdir()}
    os.killpg(slow.pid, signal.SIGINT)  # Ctrl-C in the terminal
    started = time.monotonic()
    code = slow.wait(timeout=60)
    stopped_after = time.monotonic() - started
    stderr = slow.stderr.read()
    assert code == 130, stderr
    assert stopped_after < 15, f"took {stopped_after:.1f} s to stop"
    assert "AssertionError" not in stderr and "Traceback" not in stderr, stderr
    for pids in in_progress.values():
        assert _wait_for(lambda: not _alive(pids["kernel"]) and not _alive(pids["worker"]), 10), pids
    time.sleep(3)
    assert {m.stem for m in marks.iterdir()} == set(in_progress), "a new page started after Ctrl-C"

    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    states = {r["region"]: r["state"] for r in manifest["regions"]}
    assert set(states.values()) == {"not_rendered"}, states
    index = (run_dir / "index.html").read_text(encoding="utf-8")
    assert "bị dừng giữa chừng" in index and "0/4" in index and "4/4" not in index
    assert 'href="national.html"' not in index, "the index must not present last run's pages as this run's"
    assert not (run_dir / "headline.csv").exists()
    assert not list(run_dir.glob("logs/*.log")), "the interrupted pages were logged as failures"
    for name, content in good.items():  # previous good pages kept, untouched
        assert (run_dir / name).read_bytes() == content
    assert not [p for p in run_dir.rglob(".*") if p.name != ".povdyn-report.lock"], "partial files left"
    with RunLock(out):  # the lock was released
        pass
    assert not list(short_tmp.glob("povdyn-ipc-*")), "ipc folders left after the interrupt"
    short_tmp.rmdir()


def test_killed_parent_takes_workers_and_kernels_with_it(setup, tmp_path):
    base, data, template = setup
    out, marks = tmp_path / "reports", tmp_path / "marks"
    marks.mkdir()
    env = {"POVDYN_TEST_MARKS": str(marks), "POVDYN_TEST_PAGE_SECONDS": "8"}
    run = _cli(_batch_args(data, out, template), env)
    assert _wait_for(lambda: len(list(marks.iterdir())) == 2, 120), "two pages never started"
    in_progress = {m.stem: json.loads(m.read_text()) for m in marks.iterdir()}
    run.kill()  # SIGKILL to the parent only
    run.wait(timeout=30)
    for pids in in_progress.values():
        assert _wait_for(lambda: not _alive(pids["worker"]) and not _alive(pids["kernel"]), 10), pids
    time.sleep(10)  # longer than a page: an orphaned worker would have written one by now
    pages = [p.name for p in (out / "2025Q4").glob("*.html") if p.name != "index.html"]
    assert pages == [], f"an orphaned worker wrote {pages}"
    assert {m.stem for m in marks.iterdir()} == set(in_progress), "a new page started after the kill"
    with RunLock(out):  # the dead run's lock went with it
        pass


def test_report_from_another_directory_on_a_non_editable_install(setup, tmp_path):
    """Built as a wheel would be (setuptools build_py), run from an unrelated directory
    with POVDYN_ROOT pointing elsewhere: the notebook comes from the package. A deep
    TMPDIR (too long for a Unix socket path) still works, and keeps no povdyn-ipc-*."""
    base, data, _ = setup
    build = tmp_path / "build"
    subprocess.run([sys.executable, "-c", "import setuptools; setuptools.setup()", "-q", "build",
                    "--build-base", str(build)], cwd=ROOT, check=True, capture_output=True)
    shipped = build / "lib" / "povdyn" / "notebooks" / "quarterly_report.ipynb"
    assert shipped.is_file() and not shipped.is_symlink()
    assert shipped.read_bytes() == (ROOT / "notebooks" / "quarterly_report.ipynb").read_bytes()
    elsewhere, tmp = tmp_path / "elsewhere", tmp_path / "tmp"
    elsewhere.mkdir()
    tmp.mkdir()
    # the user's own repository: its commit must not be recorded as povdyn's
    subprocess.run(["git", "init", "-q", str(elsewhere)], check=True)
    subprocess.run(["git", "-c", "user.name=u", "-c", "user.email=u@example.org", "commit", "-q",
                    "--allow-empty", "-m", "theirs"], cwd=elsewhere, check=True)
    env = {**os.environ, "PYTHONPATH": str(build / "lib"), "POVDYN_ROOT": str(elsewhere), "TMPDIR": str(tmp)}
    done = subprocess.run([sys.executable, "-m", "povdyn.cli", "-q", "report", "--regions", "Hà Nội",
                           "--workers", "1", "--data-dir", str(data), "--out", "reports"],
                          cwd=elsewhere, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads((elsewhere / "reports" / "2025Q4" / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["template"]["path"].startswith(str(build / "lib"))
    assert manifest["git_commit"] is None  # an installed package has no commit to record
    assert (elsewhere / "reports" / "2025Q4" / "ha-noi.html").exists()
    assert not list(tmp.glob("povdyn-ipc-*")), "ipc folders left in the temp directory"


def test_vietnamese_period_is_accepted_as_ingest_accepts_it(setup):
    _, data, _ = setup
    assert resolve_period(data, "Quý 4/2025") == "2025Q4"
    assert resolve_period(data, "Quý IV năm 2025") == "2025Q4"
    assert resolve_period(data, "2025 q3") == "2025Q3"
    with pytest.raises(Exception, match="cannot read period"):
        resolve_period(data, "quý năm")
    with pytest.raises(Exception, match="available"):
        resolve_period(data, "Quý 1/2030")


def test_empty_panel_is_a_clear_error(tmp_path, capsys):
    from povdyn.cli import main

    data = write_small_register(tmp_path / "processed", households=50, seed=1, tiny=False)
    empty = pd.read_parquet(data / "panel.parquet").iloc[:0]
    empty.to_parquet(data / "panel.parquet", index=False)
    assert main(["-q", "report", "--data-dir", str(data), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "has no rows" in err and "no period and no region" in err


def test_make_lab_allows_root_only_as_root(tmp_path):
    """The recipe as make runs it, with stand-in `jupyter` and `id` (nothing installed)."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "jupyter").write_text('#!/bin/sh\necho "jupyter $*"\n')
    stamp = tmp_path / "stamp"
    stamp.touch()
    for uid, expect_flag in (("0", True), ("1000", False)):
        (fake / "id").write_text(f'#!/bin/sh\necho {uid}\n')
        for f in fake.iterdir():
            f.chmod(0o755)
        done = subprocess.run(["make", "-s", "-C", str(ROOT), "lab", f"BIN={fake}", f"STAMP={stamp}"],
                              env={**os.environ, "PATH": f"{fake}:{os.environ['PATH']}"},
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("jupyter lab"), done.stdout
        assert ("--allow-root" in done.stdout) is expect_flag, (uid, done.stdout)
