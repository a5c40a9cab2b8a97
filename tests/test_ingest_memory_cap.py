"""Issue 11 §1: peak memory at most 2 GB at any size. Two mechanisms that held it up at
the national register (27M households, 135M rows; 4.0 GB peak on 2 Dec):

* the households table was built with a few arrays as long as a period's households
  beside it (2.3 GB above what was resident at 27M households);
* DuckDB's limit for panel.parquet's sort was 1 GB whatever the process already held,
  and what it held grew with the register (1.0-1.7 GB resident before the sort at 27M).
"""
from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from povdyn.ingest import households as households_module



def _period_files(folder: Path, periods: int, households: int, seed: int) -> tuple[dict, dict]:
    """Period files of random households (sorted pseudonyms, "h_" + 16 hex digits, as
    ingest writes them), each holding about 80% of `households`; (label -> path, label ->
    set of the ids as numbers)."""
    rng = np.random.default_rng(seed)
    everyone = np.unique(rng.integers(0, 2**64 - 1, households, dtype=np.uint64))
    outputs, truth = {}, {}
    for year in range(2021, 2021 + periods):
        ids = everyone[rng.random(len(everyone)) < 0.8]
        path = folder / f"period-{year}.parquet"
        pq.write_table(pa.table({"household_id": [f"h_{int(i):016x}" for i in ids]}), path,
                       row_group_size=1 << 14)
        outputs[str(year)], truth[str(year)] = path, set(ids.tolist())
    return outputs, truth


def test_the_households_table_is_built_beside_one_period_at_a_time(tmp_path, monkeypatch):
    """The table (8 bytes of id and a mask byte per household) is built holding at most
    one period file's ids (8 bytes each) and one copy of the table for the insert beside
    it, plus the work on SEARCH_CHUNK ids at a time: before, a period's ids were held twice while
    read and every id's position (8 bytes more) while looked up. The table's answers
    are the planted sets'."""
    households = 120_000
    outputs, truth = _period_files(tmp_path, 5, households, seed=3)
    chunk = 4096  # ids looked up, and read from a file, at a time
    monkeypatch.setattr(households_module, "SEARCH_CHUNK", chunk, raising=False)
    monkeypatch.setattr(households_module, "ID_BATCH_ROWS", chunk, raising=False)
    tracemalloc.start()
    try:
        table = households_module.build(outputs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    everyone = set().union(*truth.values())
    assert table.count == len(everyone)
    assert table.ids.tolist() == sorted(everyone)
    for i, label in enumerate(table.labels):
        held = table.ids[(table.masks >> i & 1).astype(bool)]
        assert set(held.tolist()) == truth[label]
    size = table.ids.nbytes + table.masks.nbytes
    largest = 8 * max(len(ids) for ids in truth.values())
    # the insert's own bookkeeping (a bool per household, the new ids' positions) and
    # a chunk's lookups and text-to-number work: 2 bytes per household and 128 per
    # chunk id are ample
    assert peak <= 2 * size + largest + 2 * households + 128 * chunk, (peak, size, largest)
