"""The households table: for each household of the register, the set of main-frequency
periods it has rows in (issue 11 §2: the added year at 27M households without scanning
every other period's file).

Kept in OUT/.ingest-cache/households.npz beside the manifest: household pseudonyms as
unsigned 64-bit numbers (an ingest pseudonym is "h_" + 16 lowercase hex digits,
privacy.pseudonymise, so the number is the pseudonym itself and sorts as the text does),
sorted, each with a bitmask of the period labels it appears in (bit i: ``labels[i]``;
the smallest unsigned type with a bit for every label),
and the signature (size, mtime, inode) of every period file it was made from.

* A full run makes it from the period files it has just written (one column read per
  file) and takes the register's household count from it: the count of distinct
  household ids over the whole register (rows without a household id are in no
  household), as ``count(DISTINCT household_id)`` gave.
* An incremental run loads it when its recorded files are exactly the period files the
  run starts from (else it is remade from those files: a stale table is never used),
  asks it which untouched period files hold given households (by_period's own 2025
  commune), and after writing clears each rewritten period's bit, sets it again for the
  households of the period's new file, drops households left with no period (a removed
  file's households found nowhere else) and saves it with the new signatures.

When a household id is not of the pseudonym's shape (not written by ingest) or there are
more than 64 periods, there is no table and the callers count with SQL as before.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..privacy import PSEUDONYM_HEX_CHARS, PSEUDONYM_PREFIX

TABLE_FILE = "households.npz"
MAX_PERIODS = 64  # bits of the mask
SEARCH_CHUNK = 1 << 20  # ids looked up at a time (set_period)
ID_BATCH_ROWS = 1 << 18  # ids read from a period file at a time (ids_as_numbers holds
# some 48 bytes per id of a batch while it turns the text into numbers)

_ID_BYTES = len(PSEUDONYM_PREFIX) + PSEUDONYM_HEX_CHARS
_HEX_VALUE = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEX_VALUE[_c] = _i


def ids_as_numbers(array: pa.Array) -> np.ndarray | None:
    """The non-null household ids of a string array as uint64 (their hex digits), in
    the array's order; None when one is not an ingest pseudonym."""
    if PSEUDONYM_HEX_CHARS != 16:
        return None
    if isinstance(array, pa.ChunkedArray):
        pieces = [ids_as_numbers(chunk) for chunk in array.chunks]
        if any(p is None for p in pieces):
            return None
        return np.concatenate(pieces) if pieces else np.empty(0, dtype=np.uint64)
    if array.null_count:
        array = array.drop_null()
    if not len(array):
        return np.empty(0, dtype=np.uint64)
    if pa.types.is_large_string(array.type):
        array = array.cast(pa.string())
    if not pa.types.is_string(array.type):
        return None
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32,
                            count=len(array) + 1, offset=array.offset * 4)
    if not (np.diff(offsets) == _ID_BYTES).all():
        return None
    data = np.frombuffer(array.buffers()[2], dtype=np.uint8)[
        offsets[0]:offsets[-1]].reshape(len(array), _ID_BYTES)
    if not (data[:, :len(PSEUDONYM_PREFIX)] == np.frombuffer(
            PSEUDONYM_PREFIX.encode(), dtype=np.uint8)).all():
        return None
    digits = _HEX_VALUE[data[:, len(PSEUDONYM_PREFIX):]]
    if (digits == 255).any():
        return None
    # two hex digits a byte, the 8 bytes read as one big-endian number
    packed = np.ascontiguousarray((digits[:, 0::2] << 4) | digits[:, 1::2])
    return packed.view(">u8").reshape(-1).astype(np.uint64)


def ids_of_file(path: Path) -> np.ndarray | None:
    """A period file's household ids as sorted unique uint64 (a period file holds one
    row per household, sorted; sorted again in case), None if one is not a pseudonym."""
    source = pq.ParquetFile(path, pre_buffer=False)
    # filled in place, not pieces joined at the end: the 27M register's largest period
    # holds 216 MB of ids, and pieces plus their join held it twice
    ids = np.empty(source.metadata.num_rows, dtype=np.uint64)
    filled = 0
    for batch in source.iter_batches(columns=["household_id"], batch_size=ID_BATCH_ROWS,
                                     use_threads=False):
        numbers = ids_as_numbers(batch.column(0))
        if numbers is None:
            return None
        ids[filled:filled + len(numbers)] = numbers
        filled += len(numbers)
    ids = ids[:filled]  # null ids are in no household
    if len(ids) > 1 and not _increasing(ids):
        ids = np.unique(ids)
    return ids


def _increasing(ids: np.ndarray) -> bool:
    """Whether sorted ids are strictly increasing, checked a chunk at a time (a
    comparison of the whole array would hold a second array as long)."""
    ends = (min(start + SEARCH_CHUNK, len(ids) - 1) for start in range(0, len(ids) - 1,
                                                                    SEARCH_CHUNK))
    return all(bool((ids[end - min(SEARCH_CHUNK, end) + 1:end + 1]
                     > ids[end - min(SEARCH_CHUNK, end):end]).all()) for end in ends)


class HouseholdPeriods:
    """Sorted household numbers with their periods' bitmask (module docstring)."""

    def __init__(self, ids: np.ndarray, masks: np.ndarray, labels: list[str],
                 files: dict):
        self.ids, self.masks, self.labels, self.files = ids, masks, list(labels), dict(files)

    @classmethod
    def empty(cls) -> "HouseholdPeriods":
        return cls(np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.uint8), [], {})

    @property
    def count(self) -> int:
        """Households with a row in at least one period."""
        return int(len(self.ids))

    def _bit(self, label: str):
        """The mask bit of `label` (a new label takes the next bit; the masks widen to
        the smallest unsigned type holding every bit), None beyond MAX_PERIODS."""
        if label not in self.labels:
            if len(self.labels) >= MAX_PERIODS:
                return None
            self.labels.append(label)
            bits = next(b for b in (8, 16, 32, 64) if b >= len(self.labels))
            if self.masks.dtype.itemsize * 8 < bits:
                self.masks = self.masks.astype(f"uint{bits}")
        return self.masks.dtype.type(1 << self.labels.index(label))

    def set_period(self, label: str, ids: np.ndarray | None, signature) -> bool:
        """Make `label`'s households exactly `ids` (sorted unique uint64; None or empty:
        the period is gone). False when the table cannot hold it (the caller drops it)."""
        bit = self._bit(label)
        if bit is None:
            return False
        self.masks &= ~bit
        if ids is not None and len(ids) and not len(self.ids):
            self.ids, self.masks = ids, np.full(len(ids), bit, dtype=self.masks.dtype)
        elif ids is not None and len(ids):
            # looked up a chunk at a time: positions of every id at once took 8 bytes an
            # id beside the table (the households stage's 4 GB peak at 27M households)
            new, at = [], []
            for start in range(0, len(ids), SEARCH_CHUNK):
                chunk = ids[start:start + SEARCH_CHUNK]
                where = np.searchsorted(self.ids, chunk)
                found = where < len(self.ids)
                found[found] = self.ids[where[found]] == chunk[found]
                self.masks[where[found]] |= bit
                if not found.all():
                    new.append(chunk[~found])
                    at.append(where[~found])
            if new:
                at = np.concatenate(at)
                self.ids = np.insert(self.ids, at, np.concatenate(new))
                self.masks = np.insert(self.masks, at, bit)
        keep = self.masks != 0
        if not keep.all():
            self.ids, self.masks = self.ids[keep], self.masks[keep]
        if signature is None:
            self.files.pop(label, None)
        else:
            self.files[label] = list(signature)
        return True

    def periods_of(self, ids: np.ndarray) -> set[str]:
        """The period labels holding a row of any of `ids` (uint64)."""
        where = np.searchsorted(self.ids, ids)
        inside = where < len(self.ids)
        where = where[inside]
        where = where[self.ids[where] == ids[inside]]
        mask = int(np.bitwise_or.reduce(self.masks[where])) if len(where) else 0
        return {label for i, label in enumerate(self.labels) if mask >> i & 1}

    def save(self, cache_dir: Path) -> None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        path = cache_dir / TABLE_FILE
        tmp = cache_dir / f".{TABLE_FILE}.{os.getpid()}.tmp"
        try:
            with open(tmp, "wb") as handle:
                np.savez(handle, ids=self.ids, masks=self.masks,
                         about=np.array(json.dumps({"labels": self.labels,
                                                    "files": self.files})))
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()


def forget(cache_dir: Path) -> None:
    """Remove the table (a run that cannot keep it up to date)."""
    (cache_dir / TABLE_FILE).unlink(missing_ok=True)


def load(cache_dir: Path, outputs: dict) -> HouseholdPeriods | None:
    """The saved table if it was made from exactly the period files `outputs` (label ->
    path) as they are now, else None."""
    path = cache_dir / TABLE_FILE
    if not path.is_file():
        return None
    from .by_period import signature

    try:
        with np.load(path) as saved:
            about = json.loads(str(saved["about"]))
            current = {label: signature(p) for label, p in outputs.items()}
            if about["files"] != current:
                return None
            return HouseholdPeriods(saved["ids"], saved["masks"], about["labels"],
                                    about["files"])
    except (OSError, ValueError, KeyError):
        return None


def build(outputs: dict) -> HouseholdPeriods | None:
    """The table of the period files `outputs` (label -> path); None when an id is not a
    pseudonym or there are too many periods. The files (each sorted by household) are
    merged as sorted streams, ID_BATCH_ROWS ids of each at a time, into the table's
    arrays grown in place: memory holds the table and a batch per file. Inserting one
    period after another held a period's ids and a second copy of the table beside it
    (some 650 MB at 27M households); a file not sorted after all is built that way."""
    from .by_period import order_of, signature

    if len(outputs) > MAX_PERIODS:
        return None
    labels = sorted(outputs, key=order_of)
    try:
        ids, masks = _merge_sorted_files([outputs[label] for label in labels])
    except _NotPseudonym:
        return None
    except _NotSorted:
        return _build_period_by_period(outputs, labels)
    return HouseholdPeriods(ids, masks, labels,
                            {label: list(signature(outputs[label])) for label in labels})


class _NotSorted(Exception):
    """A period file whose household ids do not increase row by row."""


class _NotPseudonym(Exception):
    """A household id that ingest did not write (no table then)."""


def _sorted_id_batches(path: Path):
    """A period file's non-null household ids as uint64 batches, in increasing order
    across batches (_NotSorted otherwise; _NotPseudonym when one is not a pseudonym)."""
    last = None
    # pre_buffer=False: pyarrow's default reads the whole column of every row group
    # ahead (a 4M-household period file's 50 MB of ids; at 27M some 400 MB a file, and
    # the merge reads every file at once); off, a row group's at a time
    for batch in pq.ParquetFile(path, pre_buffer=False).iter_batches(
            columns=["household_id"], batch_size=ID_BATCH_ROWS, use_threads=False):
        numbers = ids_as_numbers(batch.column(0))
        if numbers is None:
            raise _NotPseudonym(path)
        if not len(numbers):
            continue
        if (last is not None and numbers[0] <= last) or not _increasing(numbers):
            raise _NotSorted(path)
        last = numbers[-1]
        yield numbers


def _merge_sorted_files(paths: list[Path]):
    """(ids, masks): the distinct ids of the files, sorted, each with bit i set when
    paths[i] holds it. A round takes from every file's batch the ids up to the smallest
    of the batches' last ids (nothing later can come before them), so each round
    finishes at least one batch."""
    from .ahead import made_ahead

    bits = next(b for b in (8, 16, 32, 64) if b >= max(len(paths), 1))
    mask_type = np.dtype(f"uint{bits}")
    # each file's ids are read, decompressed and turned into numbers by a thread of its
    # own (pyarrow and numpy's array work run without Python's lock) while this one
    # merges: memory holds two batches more per file
    streams = [made_ahead(_sorted_id_batches(path), depth=2, name="povdyn-id-batches")
               for path in paths]
    pending = [next(stream, None) for stream in streams]
    # the union is at least the largest file's households; grown in place beyond it
    capacity = max([pq.ParquetFile(p).metadata.num_rows for p in paths] + [1])
    ids, masks, filled = np.empty(capacity, np.uint64), np.empty(capacity, mask_type), 0
    while True:
        live = [i for i, batch in enumerate(pending) if batch is not None]
        if not live:
            break
        bound = min(pending[i][-1] for i in live)
        taken_ids, taken_masks = [], []
        for i in live:
            batch = pending[i]
            upto = int(np.searchsorted(batch, bound, side="right"))
            taken_ids.append(batch[:upto])
            taken_masks.append(np.full(upto, 1 << i, dtype=mask_type))
            pending[i] = batch[upto:] if upto < len(batch) else next(streams[i], None)
        round_ids = np.concatenate(taken_ids)
        order = np.argsort(round_ids, kind="stable")
        round_ids, round_masks = round_ids[order], np.concatenate(taken_masks)[order]
        starts = np.flatnonzero(np.r_[True, round_ids[1:] != round_ids[:-1]])
        if filled + len(starts) > capacity:
            # realloc: a large block grows where it is (mremap), not beside a copy
            capacity = max(filled + len(starts), capacity + capacity // 4)
            ids.resize(capacity, refcheck=False)
            masks.resize(capacity, refcheck=False)
        ids[filled:filled + len(starts)] = round_ids[starts]
        masks[filled:filled + len(starts)] = np.bitwise_or.reduceat(round_masks, starts)
        filled += len(starts)
    ids.resize(filled, refcheck=False)
    masks.resize(filled, refcheck=False)
    return ids, masks


def _build_period_by_period(outputs: dict, labels: list[str]) -> HouseholdPeriods | None:
    """The table made by inserting one period's ids after another (files not sorted)."""
    from .by_period import signature

    table = HouseholdPeriods.empty()
    for label in labels:
        ids = ids_of_file(outputs[label])
        if ids is None or not table.set_period(label, ids, signature(outputs[label])):
            return None
    return table


def load_or_build(cache_dir: Path, outputs: dict) -> HouseholdPeriods | None:
    return load(cache_dir, outputs) or build(outputs)
