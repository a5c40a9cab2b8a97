"""OUT/.ingest-cache: checked rows of unchanged files reused by the next run (issue 11 §2)."""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import uuid
from pathlib import Path

from . import household_ranges
from .writing import _write_json


CACHE_VERSION = 2  # 2: per-period results of the checks across rows (by_period)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 24):
            digest.update(block)
    return digest.hexdigest()


def _stat_signature(path: Path) -> list[int]:
    """A file's size, modification and change times (ns) and inode. A file whose
    signature is the one recorded beside its sha256 by the last run is not read again to
    be hashed (git's rule for its index: every write moves the change time, which cannot
    be set back by hand; hashing the national register's 42 GB took about a minute of
    each incremental run)."""
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _cache_fingerprint(key: bytes, programs) -> str:
    """What cached checks depend on besides the file itself: the key (pseudonyms), the
    programme table, the code that checks (this package, schema, geo...) and the DuckDB
    version (its hash() gives the identifier hash): any change in them and every file is
    read again."""
    import duckdb

    digest = hashlib.sha256(f"povdyn ingest cache {CACHE_VERSION}".encode())
    digest.update(hmac.digest(key, b"povdyn ingest cache", hashlib.sha256))
    digest.update(json.dumps(programs, sort_keys=True).encode())
    digest.update(duckdb.__version__.encode())
    here = Path(__file__).resolve().parent
    sources = sorted(here.glob("*.py")) + [here.parent / name for name in (
        "schema.py", "geo.py", "periods.py", "privacy.py")]
    for path in sources:
        if path.exists():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


class _Cache:
    """OUT/.ingest-cache: each raw file's checked rows (register, programme, totals and
    quarantine parts) from earlier runs, keyed by its path and content hash (sha256), so
    that a re-run reads only new or changed files (issue 11 §2), and (manifest "run")
    the per-period results of the checks across rows, so that those run only on the
    periods the new, changed or removed files touch (by_period: the same bytes as a
    full re-ingest); a removed file's rows simply are not read."""

    KINDS = ("register", "quarantine", "support", "totals", "adoption")

    def __init__(self, out_dir: Path, fingerprint: str):
        self.dir = out_dir / ".ingest-cache"
        self.fingerprint = fingerprint
        self.manifest: dict = {}
        path = self.dir / "manifest.json"
        if path.exists():
            try:
                manifest = json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                manifest = {}
            if manifest.get("fingerprint") == fingerprint:
                self.manifest = manifest

    def knows(self, rel: str) -> bool:
        """An earlier run cached a file at this path (its hash decides if it is reused)."""
        return rel in self.manifest.get("files", {})

    def recorded_sha256(self, rel: str, signature: list[int]) -> str | None:
        """The sha256 the last run recorded for this file if its _stat_signature is
        still the one recorded with it (the file was not written since), else None."""
        entry = self.manifest.get("files", {}).get(rel) or {}
        return entry.get("sha256") if entry.get("stat") == signature else None

    def entry(self, rel: str, sha: str) -> dict | None:
        entry = self.manifest.get("files", {}).get(rel)
        return entry if entry and entry.get("sha256") == sha else None

    def parts(self, kind: str, keep: set[str]) -> list[Path]:
        return [self.dir / name for name, files in
                sorted(self.manifest.get("parts", {}).get(kind, {}).items())
                if keep & set(files) and (self.dir / name).exists()]

    def whole_parts(self, keep: set[str]) -> set[Path]:
        """The cached parts (of every kind) holding rows of files in `keep` only: read
        whole, without a filter on each row's file name that every step over the cached
        rows would otherwise evaluate (135M rows on the national register)."""
        return {self.dir / name for kind in self.manifest.get("parts", {}).values()
                for name, files in kind.items() if set(files) <= keep}

    def part_files(self, part: Path) -> list[str]:
        """The files whose rows a cached part holds."""
        for kind in self.manifest.get("parts", {}).values():
            if part.name in kind:
                return list(kind[part.name])
        return []

    def save(self, files: dict, spill: "_Spill", keep: set[str], run: dict | None = None) -> None:
        """Keep the parts still holding rows of current files, add this run's parts;
        `run`: the checks across register rows per period (ingest.by_period), whose
        run-level quarantine rows of this run are moved here too."""
        self.dir.mkdir(parents=True, exist_ok=True)
        parts = {}
        for kind in self.KINDS:
            kept = {name: names for name, names in
                    self.manifest.get("parts", {}).get(kind, {}).items() if keep & set(names)}
            for path in spill.parts[kind]:
                # never an earlier part's name; its household range kept in it
                name = f"{kind}-{uuid.uuid4().hex}{household_ranges.suffix_of_part(path)}.parquet"
                os.replace(path, self.dir / name)
                kept[name] = spill.part_files[path]
            parts[kind] = kept
        used = {name for kind in parts.values() for name in kind}
        if run is not None:
            periods = {}
            for label, entry in run["periods"].items():
                if label in spill.period_quarantine:
                    name = f"periodq-{uuid.uuid4().hex}.parquet"
                    os.replace(spill.period_quarantine[label], self.dir / name)
                    entry.quarantine = name
                elif label not in spill.period_quarantine and entry.quarantine and \
                        not (self.dir / entry.quarantine).exists():
                    entry.quarantine = None
                periods[label] = entry.as_dict()
                if entry.quarantine:
                    used.add(entry.quarantine)
            run = {**run, "periods": periods}
        manifest = {"version": CACHE_VERSION, "fingerprint": self.fingerprint,
                    "files": files, "parts": parts, "run": run}
        _write_json(manifest, self.dir / "manifest.json")
        for stale in self.dir.glob("*.parquet"):
            if stale.name not in used:
                stale.unlink()
