"""`povdyn report --engine spark --spark-master URL` (issue 15 §2): the national page
rendered on a Spark standalone cluster started on localhost (a master and one worker,
from the scripts that ship inside pyspark; stopped afterwards) shows the same headline
numbers as the DuckDB page of the same data, and the manifest records the engine and
master the page really ran on, read back from the executed notebook.

One Spark page, not two: a page on local Spark (the default master) runs the same code
with another master URL, and each Spark page costs 1.5-3 minutes of CI on 2 cores.
The DuckDB reference is the shared report run of test_report (same small register).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from povdyn.report import run_report
from test_report import shared_report_run

pytestmark = pytest.mark.spark


def _headline(page: Path) -> list[list[str]]:
    """The rows of the page's first table (the headline figures), as displayed."""
    table = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser").find("table", class_="povdyn-table")
    assert table is not None, f"no headline table in {page}"
    return [[c.get_text(strip=True) for c in row.find_all(["th", "td"])] for row in table.find_all("tr")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def duckdb_national(tmp_path_factory):
    (run, _, _), data = shared_report_run(tmp_path_factory)
    return run.pages["national"], data


@pytest.fixture
def spark_cluster(tmp_path, monkeypatch):
    """A standalone master and one worker (1 core, 1 GB) on 127.0.0.1, started with
    pyspark's sbin/spark-daemon.sh (pip's pyspark ships it, not start-master.sh), logs,
    pids and work dirs in tmp_path; stopped afterwards. Its spark-defaults.conf sets 4
    shuffle partitions, as an administrator would for small data (200 by default)."""
    import pyspark

    home = Path(pyspark.__file__).parent
    daemon = home / "sbin" / "spark-daemon.sh"
    assert daemon.exists(), daemon
    port = _free_port()
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "spark-defaults.conf").write_text("spark.sql.shuffle.partitions 4\n")
    env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOG_DIR": str(tmp_path / "logs"),
           "SPARK_PID_DIR": str(tmp_path / "pids"), "SPARK_WORKER_DIR": str(tmp_path / "work"),
           "SPARK_IDENT_STRING": f"povdyn-test-{os.getpid()}", "SPARK_LOCAL_IP": "127.0.0.1",
           "SPARK_CONF_DIR": str(conf),
           "PYSPARK_PYTHON": sys.executable}
    env.pop("SPARK_NO_DAEMONIZE", None)  # the daemons must detach, or `start` never returns
    master_url = f"spark://127.0.0.1:{port}"
    master = ["org.apache.spark.deploy.master.Master", "1", "--host", "127.0.0.1", "--port", str(port),
              "--webui-port", str(_free_port())]
    worker = ["org.apache.spark.deploy.worker.Worker", "1", "--host", "127.0.0.1", "--cores", "1",
              "--memory", "1g", "--webui-port", str(_free_port()), master_url]
    started = []
    try:
        for args in (master, worker):
            subprocess.run(["bash", str(daemon), "start", *args], env=env, check=True, capture_output=True,
                           timeout=120)
            started.append(args[:2])
            if args is master:
                _wait_for_log(tmp_path / "logs", "Master", "I have been elected leader")
        _wait_for_log(tmp_path / "logs", "Master", "Registering worker")
        for name in ("SPARK_LOCAL_IP", "PYSPARK_PYTHON", "SPARK_CONF_DIR"):
            monkeypatch.setenv(name, env[name])
        yield master_url
    finally:
        for args in reversed(started):
            subprocess.run(["bash", str(daemon), "stop", *args], env=env, capture_output=True, timeout=120)
        pids = list((tmp_path / "pids").glob("*.pid"))
        assert not pids, f"cluster not stopped: {pids}"


def _wait_for_log(folder: Path, role: str, text: str, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for log in folder.glob(f"*{role}*.out"):
            if text in log.read_text(errors="replace"):
                return
        time.sleep(0.5)
    logs = "\n".join(p.read_text(errors="replace")[-2000:] for p in folder.glob("*.out"))
    raise AssertionError(f"Spark {role}: {text!r} not seen in {timeout} s\n{logs}")


def test_page_on_a_standalone_spark_cluster_shows_the_duckdb_numbers(duckdb_national, spark_cluster,
                                                                     tmp_path):
    reference, data = duckdb_national
    run = run_report(period="latest", regions="national", workers=1, out_dir=tmp_path / "reports",
                     data_dir=data, engine="spark", spark_master=spark_cluster, progress=False)
    assert run.status == "complete", str(run)
    manifest = json.loads(run.manifest_path.read_text())
    region = manifest["regions"][0]
    assert region["engine"] == "spark" and manifest["engines_used"] == ["spark"]
    assert region["spark_master"] == manifest["parameters"]["spark_master"] == spark_cluster
    spark_rows, duckdb_rows = _headline(run.pages["national"]), _headline(reference)
    assert len(duckdb_rows) >= 8  # the headline table: rates, counts, flows
    assert spark_rows == duckdb_rows
