"""Household ranges fixed before the read (issue 11 §1): the checked register rows of a
large csv are written by the range workers (parallel.py) already cut by household, so
that the steps across a household's rows (its own 2025 commune, the sort of
panel.parquet) read one range's parts at a time instead of cutting all rows again.

A range is an interval of household_id as text. Pseudonyms are "h_" and lowercase hex
(privacy.Pseudonymiser: keyed HMAC output), so intervals of their first four hex digits
(UNITS of them) hold about equal numbers of households by construction, and no sample
of the rows is needed to place the bounds. The rule is a plain text comparison, so any
other id (never made by ingest) still falls in exactly one range, only not evenly; a
NULL id falls in the last range.

A part's interval is written into its file name (`part_suffix`), so the register stage
and the ingest cache know which parts hold which households without opening them; a part
without one (rows of the one pass in the parent, or of the pandas path) holds any."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

PREFIX = "h_"
UNITS = 1 << 16  # intervals are of the first four hex digits after PREFIX
CUT_RANGES = None  # ranges a worker cuts its rows into (None: cut_ranges_for the file)
MAX_CUT_RANGES = 64
CSV_BYTES_PER_MEMORY = 0.75  # csv bytes a household range holds per byte of the parent's
# DuckDB memory limit: as many ranges as the panel's sort reads from the cut parts under
# 1 GB (register._household_ranges with CUT_SORT_SPARE: the 3M national demo's 4.7 GB in
# 8, the 27M one's 42 GB in 64), so that each sort range reads only its own parts. A
# coarser cut makes each sort range read its parts' rows again and filter them: on the 3M
# demo sorted in 32 ranges, parts cut in 4 took 54.8 s (91 CPU-s), cut in 32 40.0 s (65),
# the steps over all parts no slower with the 8x as many parts. A file that needs no cut
# is not cut (each part is a file DuckDB opens: 512 small parts made a 3M-row ingest
# 1.7x slower than 8 whole ones)
_SUFFIX = re.compile(r"\.hr([0-9a-f]{5})-([0-9a-f]{5})$")


def cut_ranges_for(csv_bytes: int, memory: str) -> int:
    """How many household ranges a csv file of `csv_bytes` is cut into when the steps
    after the read run under DuckDB's `memory` limit ("1GB"): a power of two (so that
    coarser ranges group whole ones), 0 when one range holds it all."""
    if CUT_RANGES is not None:
        return CUT_RANGES
    need = csv_bytes / (CSV_BYTES_PER_MEMORY * memory_bytes(memory))
    count = 1
    while count < need and count < MAX_CUT_RANGES:
        count *= 2
    return count if count > 1 else 0


def memory_bytes(text: str) -> int:
    """A DuckDB memory setting ("1GB", "256MB", "953.6 MiB") in bytes."""
    found = re.fullmatch(r"\s*([0-9.]+)\s*([KMGT]i?B|B|bytes)?\s*", text, re.IGNORECASE)
    if not found:
        raise ValueError(f"not a memory size: {text!r}")
    unit = (found.group(2) or "B").upper()
    scale = {"B": 1, "BYTES": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
             "KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30, "TIB": 1 << 40}[unit]
    return int(float(found.group(1)) * scale)


def bound(unit: int) -> str:
    """The smallest id of the interval starting at `unit`."""
    return f"{PREFIX}{unit:04x}"


def intervals(n: int) -> list[tuple[int, int]]:
    """`n` intervals [lo, hi) of units covering them all, of about equal width."""
    cuts = [UNITS * i // n for i in range(n + 1)]
    return [(lo, hi) for lo, hi in zip(cuts, cuts[1:]) if hi > lo]


def part_suffix(lo: int, hi: int) -> str:
    """What a part's file name holds before ".parquet" when it holds interval [lo, hi)."""
    return f".hr{lo:05x}-{hi:05x}"


def suffix_of_part(path: Path | str) -> str:
    """The part_suffix in a part's file name ("" when it has none)."""
    found = _SUFFIX.search(Path(path).name.removesuffix(".parquet"))
    return found.group(0) if found else ""


def interval_of_part(path: Path | str) -> tuple[int, int]:
    """The interval of household ids a part's rows are in (the whole range when its
    name says nothing)."""
    found = _SUFFIX.search(Path(path).name.removesuffix(".parquet"))
    return (int(found.group(1), 16), int(found.group(2), 16)) if found else (0, UNITS)


def index_sql(column: str, cuts: list[tuple[int, int]]) -> str:
    """SQL giving the index of the interval of `cuts` (sorted, covering all units) that
    `column` is in, by binary search over the bounds (a NULL id: the last)."""
    bounds = [bound(lo) for lo, _ in cuts[1:]]

    def search(lo: int, hi: int) -> str:
        if lo == hi:
            return str(lo)
        mid = (lo + hi + 1) // 2
        return (f"CASE WHEN {column} < '{bounds[mid - 1]}' THEN {search(lo, mid - 1)} "
                f"ELSE {search(mid, hi)} END")

    return f"CASE WHEN {column} IS NULL THEN {len(cuts) - 1} ELSE {search(0, len(bounds))} END"


def within_sql(column: str, lo: int, hi: int) -> str:
    """SQL true for the rows whose `column` is in [lo, hi) (NULL ids: in the last)."""
    terms = []
    if lo > 0:
        terms.append(f"{column} >= '{bound(lo)}'")
    if hi < UNITS:
        terms.append(f"{column} < '{bound(hi)}'")
    if not terms:
        return "true"
    where = " AND ".join(terms)
    return f"({column} IS NULL OR {where})" if hi >= UNITS else f"({where})"


def index_of(ids, cuts: list[tuple[int, int]]) -> np.ndarray:
    """index_sql in numpy, for an array of ids (str or None)."""
    bounds = np.array([bound(lo) for lo, _ in cuts[1:]], dtype=str)
    ids = np.asarray(ids, dtype=object)
    missing = np.array([v is None or v != v for v in ids], dtype=bool)
    out = np.full(len(ids), len(cuts) - 1, dtype=np.int64)
    if (~missing).any():
        out[~missing] = np.searchsorted(bounds, ids[~missing].astype(str), side="right")
    return out
