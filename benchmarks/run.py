"""`make bench`: run every benchmarks/bench_*.py (flow metrics first), one after another.

Each benchmark runs in its own process with its default arguments and prints its own
table; a failing benchmark is reported and the others still run. Exit status 1 when any
failed. Pass names to run a subset: `python benchmarks/run.py dynamics ingest`.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIRST = ["bench_dynamics.py"]


def benchmarks(names: list[str]) -> list[Path]:
    found = sorted(HERE.glob("bench_*.py"), key=lambda p: (p.name not in FIRST, p.name))
    if names:
        found = [p for p in found if p.stem.removeprefix("bench_") in names or p.stem in names]
    return found


def main(argv: list[str]) -> int:
    failed = []
    for path in benchmarks(argv):
        print(f"\n===== {path.name} =====", flush=True)
        start = time.time()
        code = subprocess.call([sys.executable, str(path)], cwd=HERE.parent)
        print(f"===== {path.name}: {'ok' if code == 0 else f'FAILED (exit {code})'} "
              f"in {time.time() - start:.0f} s =====", flush=True)
        if code != 0:
            failed.append(path.name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
