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


def _cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _gone(pid: int, seconds: float = 10) -> bool:
    import time

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":  # ended, not yet waited for by its parent
            return True
        time.sleep(0.05)
    return False


def test_the_range_workers_are_forked_from_one_started_process():
    """One worker process is started; it imports pandas, pyarrow and DuckDB and forks the
    others (each given its own pair of pipes on the command line), so the imports are
    paid once (~0.55 CPU-s a worker). Closing the pool ends them all."""
    import pytest

    from povdyn.ingest.parallel import _WorkerPool

    if not Path("/proc/self/task").exists():
        pytest.skip("reads /proc (Linux)")
    pool = _WorkerPool(3)
    try:
        (started,) = pool.processes
        assert len(pool.workers) == 3
        import time

        end = time.monotonic() + 60
        while len(forked := _children(started.pid)) < 2 and time.monotonic() < end:
            time.sleep(0.05)
        assert len(forked) == 2
        # a forked worker runs the started one's command (its pipes' numbers on it): no
        # interpreter of its own was started
        assert all(_cmdline(pid) == _cmdline(started.pid) for pid in forked)
        assert _cmdline(started.pid)[1:3] == ["-m", "povdyn.ingest._range_worker"]
        assert len(_cmdline(started.pid)) == 5  # two pipe pairs
    finally:
        pool.close()
    assert started.returncode == 0
    assert all(_gone(pid) for pid in forked)


def test_a_forked_worker_that_dies_is_an_error_not_a_hang():
    """The parent reads a forked worker's answers from a pipe, not from a process it
    waits for: when that worker is gone, asking it is an error at once."""
    import signal

    import pytest

    from povdyn.ingest.parallel import _WorkerPool

    if not Path("/proc/self/task").exists():
        pytest.skip("reads /proc (Linux)")
    pool = _WorkerPool(2)
    try:
        (started,) = pool.processes
        import time

        end = time.monotonic() + 60
        while not (forked := _children(started.pid)) and time.monotonic() < end:
            time.sleep(0.05)
        (pid,) = forked
        os.kill(pid, signal.SIGKILL)
        raised = []

        def ask():
            try:
                _WorkerPool._ask(pool.workers[1], {"any": "job"})
            except BaseException as exc:  # noqa: BLE001 - looked at below
                raised.append(exc)

        import threading

        asking = threading.Thread(target=ask, daemon=True)
        asking.start()
        asking.join(timeout=30)  # a pipe end left open elsewhere would wait for ever
        assert not asking.is_alive(), "asking a dead worker hangs"
        assert len(raised) == 1 and isinstance(raised[0], RuntimeError)
        assert "an ingest worker stopped" in str(raised[0])
    finally:
        pool.close()
    assert started.returncode == 0  # the started one waited for the killed one


def test_a_worker_process_with_a_foreign_thread_starts_the_others_afresh():
    """Forking a process with a thread some library started could leave that library's
    locks held in the child: then the started worker starts the others as processes of
    their own (no pipe pair on their command line) instead of forking them."""
    import pytest
    import time

    if not Path("/proc/self/task").exists():
        pytest.skip("reads /proc (Linux)")
    jobs_read, jobs_write = os.pipe()
    answers_read, answers_write = os.pipe()
    code = ("import threading, time; threading.Thread(target=time.sleep, args=(600,), "
            "daemon=True).start(); from povdyn.ingest.parallel import serve_workers; "
            f"serve_workers([({jobs_read}, {answers_write})])")
    started = subprocess.Popen([sys.executable, "-c", code], env=_env(), stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, pass_fds=[jobs_read, answers_write])
    os.close(jobs_read)
    os.close(answers_write)
    try:
        end = time.monotonic() + 60
        while not (others := _children(started.pid)) and time.monotonic() < end:
            time.sleep(0.05)
        (other,) = others
        # between its fork and its exec a started process still shows the command of
        # the one that starts it: wait for the exec (a forked worker never makes one)
        while _cmdline(other)[1:2] == ["-c"] and time.monotonic() < end:
            time.sleep(0.05)
        assert _cmdline(other)[1:] == ["-m", "povdyn.ingest._range_worker"]
    finally:
        os.close(jobs_write)
        started.stdin.close()
        assert started.wait(timeout=60) == 0
        assert os.read(answers_read, 1) == b""  # no stray bytes; the other one ended too
        os.close(answers_read)
        started.stdout.close()
