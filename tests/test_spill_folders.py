"""DuckDB spill folders leave nothing behind (found by the integrator while cleaning up,
stop 14): every process that connects gets a spill folder of its own in the temp
directory (engine.connect), removed at exit -- but report kernels are killed at shutdown
and report workers leave through os._exit, so their atexit never ran and ~40 empty
`povdyn_duckdb_*` folders an hour of work piled up in /tmp.

* A report run gives its kernels and workers a spill root inside the run's own temp
  folder, which the run removes when it ends: a batch leaves no spill folder.
* A folder left by a process that no longer exists (killed, crashed) is removed by the
  next connect: an empty one at once, one holding only DuckDB's temp files when they are
  an hour old; anything else, and a live process's folder, is never touched.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat

from test_report import write_small_register

ROOT = Path(__file__).resolve().parents[1]


def _template(path: Path) -> Path:
    """A page that connects to DuckDB, as every real page does."""
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('region = "national"\nperiod = "2025Q4"\nstandard = "national"\n'
                                       'within = 2\nengine = "duckdb"\ndata_dir = None\nlang = "vi"')
    params.metadata["tags"] = ["parameters"]
    body = nbformat.v4.new_code_cell("from povdyn.engine import connect\n"
                                     "con = connect('duckdb')\n"
                                     "print(con.con.execute(\"SELECT current_setting('temp_directory')\").fetchone()[0])")
    nb.cells = [params, body]
    nbformat.write(nb, path)
    return path


def _env(tmpdir: Path) -> dict:
    return {**os.environ, "TMPDIR": str(tmpdir),
            "PYTHONPATH": os.pathsep.join([str(ROOT / "lib"), os.environ.get("PYTHONPATH", "")])}


def _spill_folders(tmpdir: Path) -> list[str]:
    return sorted(p.name for p in tmpdir.rglob("povdyn_duckdb_*"))


def test_a_report_batch_leaves_no_spill_folder(tmp_path):
    data = write_small_register(tmp_path / "processed", households=200, seed=5, tiny=True)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    args = ["--notebook", str(_template(tmp_path / "page.ipynb")), "--regions", "national,Hà Nội",
            "--workers", "2", "--data-dir", str(data), "--out", str(tmp_path / "out")]
    done = subprocess.run([sys.executable, "-m", "povdyn.cli", "-q", "report", *args], env=_env(tmpdir),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    pages = list((tmp_path / "out").rglob("*.html"))
    assert len(pages) >= 2, pages
    assert _spill_folders(tmpdir) == []


def test_a_dead_process_s_empty_spill_folder_goes_at_the_next_connect(tmp_path):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    # a process that has ended: its pid is free
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(gone.stdout)
    dead_empty = tmpdir / f"povdyn_duckdb_{dead_pid}_abc123"
    dead_other = tmpdir / f"povdyn_duckdb_{dead_pid}_def456"
    dead_old_spill = tmpdir / f"povdyn_duckdb_{dead_pid}_jkl012"
    dead_new_spill = tmpdir / f"povdyn_duckdb_{dead_pid}_mno345"
    live = tmpdir / f"povdyn_duckdb_{os.getpid()}_ghi789"  # this test's own process: alive
    for folder in (dead_empty, dead_other, dead_old_spill, dead_new_spill, live):
        folder.mkdir()
    (dead_other / "notes.txt").write_bytes(b"x")  # not DuckDB's: not ours to judge
    two_hours_ago = time.time() - 7200
    for folder in (dead_old_spill, dead_new_spill):
        for name in (f"duckdb_temp_{dead_pid}_0_owner", f"duckdb_temp_{dead_pid}_0_storage_S32K-0.tmp"):
            (folder / name).write_bytes(b"")
    for path in [*dead_old_spill.iterdir(), dead_old_spill]:
        os.utime(path, (two_hours_ago, two_hours_ago))
    code = ("from povdyn.engine import connect\n"
            "con = connect('duckdb')\n"
            "print(con.con.execute(\"SELECT current_setting('temp_directory')\").fetchone()[0])\n")
    done = subprocess.run([sys.executable, "-c", code], env=_env(tmpdir), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    own = Path(done.stdout.strip())
    assert own.name.startswith("povdyn_duckdb_")
    assert not dead_empty.exists() and not dead_old_spill.exists()
    assert dead_other.exists() and dead_new_spill.exists() and live.exists()
    assert not own.exists()  # removed at its own (normal) exit
