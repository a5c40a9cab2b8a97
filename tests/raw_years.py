"""Raw office files a year at a time, for the incremental-ingest tests
(test_ingest_quarters, test_ingest_national): a small annual demo register split by
review, and one raw csv written into a raw folder."""
from __future__ import annotations

from pathlib import Path

import pandas as pd


def demo_register_by_year(folder: Path, households: int, seed: int) -> dict[str, pd.DataFrame]:
    """A small annual demo register (2021-2025, with 2025 communes recorded after the
    mergers) as one raw frame per year, every cell as the office's text."""
    from povdyn.synth import write_demo

    write_demo(folder, households=households, seed=seed, fmt="csv", frequency="year",
               progress=False)
    frame = pd.read_csv(folder / "register.csv", dtype=str, keep_default_na=False)
    return {year: rows.reset_index(drop=True) for year, rows in frame.groupby("period")}


def write_raw(raw: Path, name: str, frame: pd.DataFrame) -> None:
    """One raw csv file `name` in the raw folder `raw` (made if missing)."""
    raw.mkdir(parents=True, exist_ok=True)
    frame.to_csv(raw / name, index=False)
