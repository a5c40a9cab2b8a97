"""One place for paths and settings. Environment variables override the defaults.

| setting            | env var                 | default                    |
|--------------------|-------------------------|----------------------------|
| project_root       | POVDYN_ROOT             | the checkout (or cwd)      |
| raw_dir            | POVDYN_RAW_DIR          | <root>/data/raw            |
| processed_dir      | POVDYN_DATA_DIR         | <root>/data/processed      |
| reports_dir        | POVDYN_REPORTS_DIR      | <root>/reports             |
| engine             | POVDYN_ENGINE           | duckdb                     |
| duckdb_threads     | POVDYN_DUCKDB_THREADS   | 2                          |
| duckdb_memory      | POVDYN_DUCKDB_MEMORY    | 4GB                        |
| report_memory      | POVDYN_REPORT_MEMORY    | 3GB (DuckDB, a report run) |
| min_cell           | POVDYN_MIN_CELL         | 10 (small-cell suppression)|
| key_file           | POVDYN_KEY_FILE         | <root>/.povdyn_key         |
| pseudonym_key      | POVDYN_PSEUDONYM_KEY    | read from key_file         |
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def _find_root() -> Path:
    env = os.environ.get("POVDYN_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").exists() and (parent / "lib" / "povdyn").exists():
            return parent
    return Path.cwd()


@dataclass(frozen=True)
class Settings:
    project_root: Path
    raw_dir: Path
    processed_dir: Path
    reports_dir: Path
    engine: str
    duckdb_threads: int
    duckdb_memory: str
    # DuckDB memory of a whole `povdyn report` run, shared by its running workers' kernels
    # (report.duckdb_memory_per_worker); the rest of a 6 GB budget is their pandas/Python
    report_memory: str
    min_cell: int
    key_file: Path


def settings() -> Settings:
    """Current settings (read fresh each call so tests and notebooks can set env vars)."""
    root = _find_root()
    env = os.environ.get
    return Settings(
        project_root=root,
        raw_dir=Path(env("POVDYN_RAW_DIR", root / "data" / "raw")),
        processed_dir=Path(env("POVDYN_DATA_DIR", root / "data" / "processed")),
        reports_dir=Path(env("POVDYN_REPORTS_DIR", root / "reports")),
        engine=env("POVDYN_ENGINE", "duckdb"),
        duckdb_threads=int(env("POVDYN_DUCKDB_THREADS", "2")),
        duckdb_memory=env("POVDYN_DUCKDB_MEMORY", "4GB"),
        report_memory=env("POVDYN_REPORT_MEMORY", "3GB"),
        min_cell=int(env("POVDYN_MIN_CELL", "10")),
        key_file=Path(env("POVDYN_KEY_FILE", root / ".povdyn_key")),
    )
