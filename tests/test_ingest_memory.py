"""Issue 11 §1: the checks across all rows stay within DuckDB's memory limit at any size.

The national register (133M rows) ran out of a 1 GB limit in one GROUP BY household_id,
period (the duplicate-key step). Reproduced at small scale with the limit scaled down:
2M rows need about 48 MB in that one GROUP BY, so a 32 MB limit fails the same way."""
from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pandas as pd
import pytest

import povdyn.ingest as ingest_module
from povdyn.ingest import ingest

from test_ingest import _make_raw  # noqa: E402  (same small raw folder: duplicates, conflicts)

HOUSEHOLDS = 500_000
REVIEWS = 4
PLANTED_COPIES = 37  # household-periods given a second row


def _register_parquet(path: Path) -> None:
    """HOUSEHOLDS x REVIEWS quarterly rows plus PLANTED_COPIES repeated keys (the first
    PLANTED_COPIES households again at 2024Q2) and 5 annual rows (another frequency)."""
    con = duckdb.connect()
    con.execute(f"""
        COPY (
          SELECT 'HH' || lpad((i % {HOUSEHOLDS})::VARCHAR, 9, '0') AS household_id,
                 '2024Q' || (i // {HOUSEHOLDS} + 1)::VARCHAR AS period, true AS _is_quarter
          FROM range({HOUSEHOLDS * REVIEWS}) t(i)
          UNION ALL
          SELECT 'HH' || lpad(i::VARCHAR, 9, '0'), '2024Q2', true FROM range({PLANTED_COPIES}) t(i)
          UNION ALL
          SELECT 'HH' || lpad(i::VARCHAR, 9, '0'), '2024', false FROM range(5) t(i)
        ) TO '{path}' (FORMAT parquet)""")  # noqa: S608 (test-made path under tmp_path)
    con.close()


def test_key_checks_stay_within_a_small_memory_limit(tmp_path):
    """2M rows under a 32 MB limit (the national register's 133M rows under 1 GB, scaled):
    the repeated keys and the household count are the planted ones. One GROUP BY over all
    rows (the code before this test) runs out of memory here."""
    from povdyn.ingest.register import _distinct_households, _duckdb, _repeated_keys

    source = tmp_path / "reg.parquet"
    _register_parquet(source)
    con = _duckdb(tmp_path, memory="32MB", threads=2)
    con.read_parquet(str(source)).create_view("reg")
    rows = HOUSEHOLDS * REVIEWS + PLANTED_COPIES + 5
    _repeated_keys(con, rows, quarterly=True)
    repeated = sorted(con.execute("SELECT household_id, period FROM repeated").fetchall())
    assert repeated == [(f"HH{i:09d}", "2024Q2") for i in range(PLANTED_COPIES)]
    assert _distinct_households(con, "reg", rows) == HOUSEHOLDS
    con.close()


def _hashes(out: Path) -> dict:
    # (panel.parquet is a folder of period files: each file's hash, by its path)
    return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(out).parts)}


def test_outputs_do_not_depend_on_how_many_key_slices(tmp_path, monkeypatch):
    """The key checks cut into many slices of the hash range, and panel.parquet sorted in
    many ranges of household_id, give the same bytes as one pass: exact copies,
    conflicts, households and the panel."""
    monkeypatch.setattr(ingest_module.run, "_load_programs", lambda: None)
    raw = _make_raw(tmp_path)
    ingest(raw, tmp_path / "one", progress=False)
    asked = []
    # 7 slices of a register of a dozen rows: most are empty, some hold one key's copies
    monkeypatch.setattr(ingest_module.register, "_key_buckets",
                        lambda con, rows: asked.append(rows) or 7)
    # and panel.parquet sorted in ranges of household_id of about 2 rows each
    monkeypatch.setattr(ingest_module.register, "_household_ranges",
                        lambda con, rows, columns, window, coded=frozenset(): max(1, rows // 2))
    summary = ingest(raw, tmp_path / "sliced", progress=False)
    assert summary.balanced and asked
    assert _hashes(tmp_path / "one") == _hashes(tmp_path / "sliced")


@pytest.mark.benchmark
def test_two_million_rows_under_a_quarter_of_the_memory_give_the_same_bytes(tmp_path,
                                                                           monkeypatch):
    """The whole ingest of a 2M-row csv export under a 256 MB DuckDB limit (before this
    test: out of memory sorting panel.parquet while the 2025-commune joins held theirs;
    at 160 MB also in the key counts) gives the bytes of the run under the default 1 GB.
    About 90 s on 2 cores."""
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    from bench_ingest import write_register_csv

    monkeypatch.setattr(ingest_module.run, "_load_programs", lambda: None)
    raw = tmp_path / "raw"
    raw.mkdir()
    write_register_csv(raw / "register.csv", 2_000_000)
    ingest(raw, tmp_path / "default", progress=False)
    monkeypatch.setenv("POVDYN_INGEST_MEMORY", "256MB")
    summary = ingest(raw, tmp_path / "small", progress=False)
    assert summary.ok and summary.balanced
    assert _hashes(tmp_path / "default") == _hashes(tmp_path / "small")


def test_panel_sorted_in_many_household_ranges_gives_the_bytes_of_one_sort(tmp_path,
                                                                         monkeypatch):
    """panel.parquet written in one sort of every row and through scratch parts of ~40
    household ranges are the same bytes, on a demo register whose households have rows
    before and after the July 2025 commune reform: each household's own 2025 commune is a
    window over its rows, so a range bound that split a household, or parts read out of
    order, would change the panel."""
    from povdyn.synth import write_demo

    monkeypatch.setattr(ingest_module.run, "_load_programs", lambda: None)
    write_demo(tmp_path / "raw", households=300, seed=5, progress=False)
    one = ingest(tmp_path / "raw", tmp_path / "one", progress=False)
    cuts = []
    real_parts = ingest_module.register._household_range_parts

    def parts(*args, **kwargs):
        made = real_parts(*args, **kwargs)
        cuts.append(len(made))
        return made

    monkeypatch.setattr(ingest_module.register, "_household_range_parts", parts)
    monkeypatch.setattr(ingest_module.register, "_household_ranges",
                        lambda con, rows, columns, window, coded=frozenset(): 40)
    many = ingest(tmp_path / "raw", tmp_path / "many", progress=False)
    assert one.ok and many.ok and one.panel_rows == many.panel_rows > 4000
    assert cuts and cuts[0] > 30  # the scratch parts were really used
    basis = pd.read_parquet(tmp_path / "one" / "panel.parquet",
                            columns=["commune_2025_basis"])["commune_2025_basis"]
    assert (basis == "household").sum() > 1000  # the window did its work
    assert _hashes(tmp_path / "one") == _hashes(tmp_path / "many")


def test_stage_times_name_the_stage_that_sets_the_peak_memory(tmp_path, monkeypatch, capfd):
    """With POVDYN_INGEST_TIMING=1 every stage line gives the process's peak resident
    memory during that stage alone (the high-water mark reset at each stage's start),
    so the stage that sets a run's peak is named: a planted 300 MB held only while the
    households are counted shows in that stage's line and in no later stage's."""
    import re

    import numpy as np

    from povdyn.ingest import households

    monkeypatch.setattr(ingest_module.run, "_load_programs", lambda: None)
    monkeypatch.setenv("POVDYN_INGEST_TIMING", "1")
    real_build = households.build

    def build_holding_memory(outputs):
        held = np.ones(300 * 2**20 // 8)  # written, so resident
        table = real_build(outputs)
        del held
        return table

    monkeypatch.setattr(households, "build", build_holding_memory)
    summary = ingest(_make_raw(tmp_path), tmp_path / "out", progress=False)
    assert summary.balanced
    lines = re.findall(r"ingest stage: (.+): [0-9.]+ s, peak ([0-9]+) MB \(resident after: "
                       r"([0-9]+) MB\)", capfd.readouterr().err)
    stages = [name for name, _, _ in lines]
    assert "households" in stages and len(stages) > 5
    peak = {name: int(p) for name, p, _ in lines}
    after = stages[stages.index("households") + 1:]
    assert after and peak["households"] > 300 + max(peak[s] for s in after) - 50
    # the planted 300 MB above where the stage started (what the stage before left:
    # the stage gives DuckDB's freed memory back first, so that level, not the run's
    # highest, is its floor)
    before = int(lines[stages.index("households") - 1][2])
    assert peak["households"] > before + 250, lines
    assert ingest_module.register.STAGE_PEAK_MB[0] >= peak["households"] - 1  # printed: rounded


def test_parts_of_one_schema_are_read_without_union_by_name_and_mixed_parts_still_union(
        tmp_path):
    """_union_view reads parts that share one schema as they are (union_by_name re-reads
    every footer at each bind: ~3 CPU-s a query over the 27M register's 4,400 parts) and
    parts whose columns differ by name, with the missing columns NULL."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from povdyn.ingest.register import _duckdb, _one_schema, _union_view

    def part(name, table):
        path = tmp_path / f"{name}.parquet"
        pq.write_table(table, path)
        return path

    a = part("a", pa.table({"household_id": ["h1", "h2"], "period": ["2024", "2024"]}))
    b = part("b", pa.table({"household_id": ["h3"], "period": ["2025"]}))
    # another column order and one more column: only union_by_name reads it right
    c = part("c", pa.table({"period": ["2025"], "household_id": ["h4"], "area": ["urban"]}))
    assert _one_schema([a, b]) and not _one_schema([a, b, c])
    assert not _one_schema([a, tmp_path / "*.parquet"])  # a glob: union by name
    con = _duckdb(tmp_path)
    assert _union_view(con, "same", [a, b], [], "_file")
    assert con.execute("SELECT * FROM same ORDER BY ALL").fetchall() == [
        ("h1", "2024"), ("h2", "2024"), ("h3", "2025")]
    assert _union_view(con, "mixed", [a, b, c], [], "_file")
    assert con.execute("SELECT household_id, period, area FROM mixed ORDER BY ALL").fetchall() \
        == [("h1", "2024", None), ("h2", "2024", None), ("h3", "2025", None),
            ("h4", "2025", "urban")]
    con.close()
