"""Personal data (Decree 13/2023/NĐ-CP): pseudonymous keys in, small cells out.

* `pseudonymise` replaces raw household ids by keyed HMAC-SHA256 pseudonyms. The same
  key gives the same pseudonym, so next quarter's ingest links the same households;
  without the key nobody can go back from a pseudonym to the register's id (a plain hash
  of "HH00012345" could be reversed by hashing every possible id).
* `drop_identifiers` removes the direct identifiers (names, ID-card numbers, phones,
  street addresses) before anything is written to data/processed.
* `suppress_small_cells` hides counts below `min_cell` (default 10) in every table a
  reviewer sees, and the rates and intervals that rest on such a count.
* Where a table publishes a total and its parts, cell-by-cell hiding is undone by
  subtraction: `povdyn.suppression` (`suppress_table`, `suppress_page`) adds the
  complementary (secondary) suppression methods.md asks for.
"""
from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from .config import settings
from .errors import PovdynError

IDENTIFIER_COLUMNS = ["head_name", "id_card", "phone", "address"]
PSEUDONYM_PREFIX = "h_"
PSEUDONYM_HEX_CHARS = 16  # 64 bits: collisions improbable below ~10^9 households
SUPPRESSED_RATE = "—"


def _key_bytes(key: bytes | str) -> bytes:
    if isinstance(key, str):
        key = key.encode("utf-8")
    if not key:
        raise ValueError("the pseudonymisation key is empty")
    return key


MIN_KEY_BYTES = 16


class KeyFileError(PovdynError):
    """The pseudonymisation key is missing where it is needed, empty or too short."""


def _package_in_checkout() -> bool:
    """True when povdyn runs from a source checkout (pyproject.toml + lib/povdyn above)."""
    here = Path(__file__).resolve()
    return any((p / "pyproject.toml").exists() and (p / "lib" / "povdyn").is_dir()
               for p in here.parents)


def key_path() -> Path:
    """Where the key file lives: $POVDYN_KEY_FILE; else, when povdyn runs from a checkout
    (or POVDYN_ROOT is set), settings().key_file (<root>/.povdyn_key, git-ignored); else
    (an installed package) the user's config folder, $XDG_CONFIG_HOME/povdyn/pseudonym.key
    (~/.config/povdyn/pseudonym.key) — never a path relative to the current directory,
    so running from another folder cannot silently create a second key."""
    env = os.environ.get("POVDYN_KEY_FILE")
    if env:
        return Path(env).expanduser().resolve()
    if os.environ.get("POVDYN_ROOT") or _package_in_checkout():
        return Path(settings().key_file).resolve()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "povdyn" / "pseudonym.key"


def _checked(key: str, where: str) -> bytes:
    raw = key.encode("utf-8")
    if not raw:
        raise KeyFileError(f"{where} is empty. Restore the key from your backup: pseudonyms "
                           "made with any other key do not link to earlier quarters.")
    if len(raw) < MIN_KEY_BYTES:
        raise KeyFileError(f"{where} is shorter than {MIN_KEY_BYTES} bytes ({len(raw)}): too "
                           "short to keep pseudonyms secret. Restore the real key from your "
                           "backup (povdyn writes 64 hex characters).")
    return raw


def load_key(processed_dir=None, new_key: bool = False) -> bytes:
    """The pseudonymisation key: env POVDYN_PSEUDONYM_KEY, else the key file (key_path()),
    created on first use with a random 256-bit key readable by its owner only.

    Keep the file: a new key gives new pseudonyms, and the next ingest would no longer
    link to earlier ones. So when `processed_dir` already holds ingested data
    (panel.parquet) and the key file is missing, this is an error (KeyFileError) unless
    `new_key` says to start afresh (`povdyn ingest --new-key`). An empty key or one
    shorter than MIN_KEY_BYTES is always an error."""
    env = os.environ.get("POVDYN_PSEUDONYM_KEY")
    if env:
        return _checked(env.strip(), "the key in POVDYN_PSEUDONYM_KEY")
    path = key_path()
    if path.exists():
        if new_key:
            raise KeyFileError(f"--new-key: a key already exists at {path} and would be "
                               "replaced. Move it away yourself first if you really mean "
                               "to start new pseudonyms.")
        return _checked(path.read_text(encoding="utf-8").strip(), f"the key file {path}")
    earlier = Path(processed_dir) / "panel.parquet" if processed_dir is not None else None
    if earlier is not None and earlier.exists() and not new_key:
        raise KeyFileError(
            f"the pseudonymisation key file {path} is missing, but {earlier.parent} holds "
            f"data ingested earlier with a key. A new key gives every household a new "
            f"pseudonym: this quarter's rows would not link to any earlier household. "
            f"Restore the key file from your backup (or set POVDYN_KEY_FILE to where it "
            f"is). To start afresh on purpose — all pseudonyms change and earlier processed "
            f"data is replaced — run `povdyn ingest --new-key`.")
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    # create with 0600 from the start (no window where others could read it)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
    os.chmod(path, 0o600)
    return key.encode("utf-8")


class Pseudonymiser:
    """The keyed pseudonym of one household id: "h_" + the first 16 hex characters of
    HMAC-SHA256(key, id as UTF-8) (RFC 2104; the one scheme of every path, pandas and
    engine: `pseudonymise`, ingest's csv workers).

    `arrow` pseudonymises an Arrow column once per distinct cell, not once per row: the
    cells are dictionary-encoded and only the distinct ones hashed, in one tight loop
    (OpenSSL's SHA-256 through hashlib; the Python around each call is the cost, ~1 us
    an id, where DuckDB's sha256 in SQL cost ~1.6 us a row). A register sorted by
    household holds each one 4-5 times in a csv block, so this hashes a fifth of the
    rows; an export of one review period holds each once, and costs about what SQL did.
    No memo across blocks: when most ids are new (one period per file, or per range of
    a large file) looking them up and remembering them cost more than it saved."""

    def __init__(self, key: bytes | str):
        key = _key_bytes(key)
        if len(key) > 64:  # RFC 2104: a key longer than the block is hashed first
            key = hashlib.sha256(key).digest()
        key = key.ljust(64, b"\0")
        # SHA-256 with the padded key's block already absorbed (its block is 64 bytes,
        # so both pads are one whole block): each id then costs a copy of these states
        # and one compression each, not hashing the pad again (~1.3 -> ~0.9 us an id)
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def __call__(self, text: str) -> str:
        """The pseudonym of one id (text, hashed as given)."""
        return self._hmacs([text])[0]

    def _hmacs(self, texts: list) -> list:
        """The pseudonyms of `texts` (str), as a list."""
        return self._pseudonyms([t.encode("utf-8") for t in texts]).to_pylist()

    def _pseudonyms(self, messages: list):
        """The pseudonyms of `messages` (UTF-8 bytes), as an Arrow string array:
        H(opad || H(ipad || m)), H = SHA-256 (RFC 2104), cut to PSEUDONYM_HEX_CHARS hex
        characters. The digests are joined and hex-encoded at once and the array built
        from that buffer: one Python string less per id than hexdigest() (~0.2 us)."""
        import pyarrow as pa

        n, size = len(messages), (PSEUDONYM_HEX_CHARS + 1) // 2
        inner_state, outer_state = self._inner.copy, self._outer.copy
        digests = []
        keep = digests.append
        for m in messages:
            inner = inner_state()
            inner.update(m)
            outer = outer_state()
            outer.update(inner.digest())
            keep(outer.digest()[:size])
        joined = b"".join(digests)
        hexed = np.frombuffer(joined.hex().encode("ascii"), dtype=np.uint8)
        prefix = np.frombuffer(PSEUDONYM_PREFIX.encode("utf-8"), dtype=np.uint8)
        width = len(prefix) + PSEUDONYM_HEX_CHARS
        data = np.empty((n, width), dtype=np.uint8)
        data[:, :len(prefix)] = prefix
        data[:, len(prefix):] = hexed.reshape(n, 2 * size)[:, :PSEUDONYM_HEX_CHARS]
        offsets = np.arange(0, width * (n + 1), width, dtype=np.int64)
        made = pa.Array.from_buffers(pa.large_string(), n,
                                     [None, pa.py_buffer(offsets), pa.py_buffer(data)])
        return made.cast(pa.string())

    def arrow(self, cells):
        """Pseudonyms of an Arrow string array, cell by cell (nulls stay null); each
        distinct cell is hashed once."""
        import pyarrow as pa
        import pyarrow.compute as pc

        encoded = pc.dictionary_encode(cells)
        if isinstance(encoded, pa.ChunkedArray):
            encoded = encoded.combine_chunks()
        distinct = encoded.dictionary.cast(pa.binary()).to_pylist()  # UTF-8 bytes
        return self._pseudonyms(distinct).take(encoded.indices)


def pseudonymise(ids: pd.Series, key: bytes | str | None = None) -> pd.Series:
    """Keyed pseudonyms of household ids: "h_" + the first 16 hex characters of
    HMAC-SHA256(key, id) (Pseudonymiser). Missing ids stay missing. key=None uses
    load_key().

    Ids are hashed as given (after str()); clean them first (ingest strips spaces)."""
    pseudonym = Pseudonymiser(load_key() if key is None else key)
    ids = pd.Series(ids)
    codes, uniques = pd.factorize(ids, use_na_sentinel=True)
    hashed = pseudonym._hmacs([str(u) for u in uniques])
    table = np.array(hashed + [None], dtype=object)
    return pd.Series(table[codes], index=ids.index, name=ids.name, dtype=object)


def drop_identifiers(df: pd.DataFrame) -> pd.DataFrame:
    """The frame without the direct identifier columns (IDENTIFIER_COLUMNS)."""
    return df.drop(columns=[c for c in IDENTIFIER_COLUMNS if c in df.columns])


def suppress_small_cells(
    df: pd.DataFrame,
    count_cols: Iterable[str],
    rate_cols: Iterable[str] = (),
    min_cell: int | None = None,
    rate_basis: Mapping[str, str | tuple[str, ...]] | None = None,
) -> pd.DataFrame:
    """A copy of a published table with small cells hidden.

    * Each count in `count_cols` below `min_cell` (default settings().min_cell = 10)
      becomes the text "<10" (f"<{min_cell}"). Zero is a small cell too.
    * Each rate or interval column in `rate_cols` becomes "—" on rows where a count it
      is built on was suppressed. `rate_basis` says which count(s) govern which rate,
      e.g. {"rate": "at_risk", "ci_low": "at_risk", "ci_high": "at_risk"}; a value may
      also be a tuple of counts, e.g. {"rate": ("at_risk", "exits")}, hiding the rate
      when any of them is small. Without an entry, a rate is governed by the FIRST
      column of `count_cols`, so put the denominator first (exit tables:
      count_cols=["at_risk", "exits", ...]). Governing by the denominator only is the
      default because a rate over a large group does not single anyone out; note that
      rate x denominator then gives back a suppressed numerator, so tables that must
      hide small numerators too pass both counts in rate_basis.
    * Missing counts stay missing; other columns are untouched.

    Suppressed columns become object dtype (numbers and "<10" strings).
    """
    count_cols = list(count_cols)
    rate_cols = list(rate_cols)
    if min_cell is None:
        min_cell = settings().min_cell
    missing = [c for c in count_cols + rate_cols if c not in df.columns]
    if missing:
        raise KeyError(f"suppress_small_cells: columns {missing} not in the table "
                       f"(has {list(df.columns)})")
    basis = {rate: ((counts,) if isinstance(counts, str) else tuple(counts))
             for rate, counts in (rate_basis or {}).items()}
    for rate, counts in basis.items():
        for count in counts:
            if count not in df.columns:
                raise KeyError(f"suppress_small_cells: rate_basis {rate!r} -> {count!r}, "
                               "which is not a column")
    for col in rate_cols:
        if col not in basis and not count_cols:
            raise ValueError(f"suppress_small_cells: rate {col!r} needs a count to rest on "
                             "(count_cols or rate_basis)")

    def is_small(col: str) -> pd.Series:
        values = pd.to_numeric(df[col], errors="coerce")
        return values.notna() & (values < min_cell)

    out = df.copy()
    for col in count_cols:
        out[col] = df[col].astype(object).where(~is_small(col), f"<{min_cell}")
    for col in rate_cols:
        hide = pd.Series(False, index=df.index)
        for count in basis.get(col, (count_cols[0],) if count_cols else ()):
            hide |= is_small(count)
        out[col] = df[col].astype(object).where(~hide, SUPPRESSED_RATE)
    return out
