"""Start-up cost of an ingest (issue 11 §1: the 1M csv within 1.5x of pandas): what every
range worker process pays before and after its ranges."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

LIB = str(Path(__file__).resolve().parents[1] / "lib")


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([LIB] + [p for p in env.get("PYTHONPATH", "").split(
        os.pathsep) if p])
    return env


def test_a_range_worker_imports_no_pandera():
    """A worker imports what it checks with (parallel, engine_checks, register); pandera
    (which pulls in pyspark and typeguard when installed, ~0.4 CPU-s per process) is
    only for validate_panel / validate_support, which no worker calls."""
    code = ("import sys, povdyn.ingest._range_worker, povdyn.ingest.engine_checks, "
            "povdyn.ingest.register; print(sorted(m for m in ('pandera', 'pyspark', "
            "'typeguard') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_pandera_schemas_are_still_there_when_asked_for():
    from povdyn import schema

    assert schema.PANEL_SCHEMA.name == "household-period panel"
    assert schema.SUPPORT_SCHEMA is schema._pandera_schemas()["SUPPORT_SCHEMA"]


def test_a_range_worker_ends_without_the_interpreters_teardown():
    """When the parent closes its stdin, a worker exits at once (os._exit, code 0): the
    parent waits for its workers before the steps across all rows, and the teardown of
    pandas, pyarrow and DuckDB cost ~0.5 s there. Nothing of a job is left open by then
    (each closes its DuckDB and files, every answer is flushed), which is why skipping
    the teardown is safe; an atexit hook stands for that teardown here."""
    code = ("import atexit, sys; atexit.register(lambda: sys.stderr.write('teardown ran')); "
            "from povdyn.ingest.parallel import serve_worker; serve_worker()")
    done = subprocess.run([sys.executable, "-c", code], env=_env(), input=b"",
                          capture_output=True, timeout=120)
    assert done.returncode == 0
    assert b"teardown ran" not in done.stderr
    assert done.stdout == b""  # no stray bytes where the parent reads answers


def test_ingest_help_names_the_memory_settings_with_their_defaults(capsys):
    """`povdyn ingest --help` lists the environment settings a national run needs (the
    memory cap, DuckDB's limit, workers, spill folder, stage timing) with the defaults
    the code uses, so that the help cannot drift from them."""
    import pytest

    from povdyn import cli
    from povdyn.ingest import register

    with pytest.raises(SystemExit):
        cli.main(["ingest", "--help"])
    text = capsys.readouterr().out
    assert f"POVDYN_INGEST_PEAK={register.PEAK_MEMORY}" in text
    assert f"POVDYN_INGEST_MEMORY={register.INGEST_MEMORY}" in text
    for name in ("POVDYN_INGEST_WORKERS", "POVDYN_SPILL_ROOT", "POVDYN_INGEST_TIMING"):
        assert name in text
