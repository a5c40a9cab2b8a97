"""Time and peak memory of the synthetic register generator (povdyn.synth.write_demo).

Runs each case in a fresh child process and reads its peak resident memory from
resource.getrusage(RUSAGE_CHILDREN).ru_maxrss, so cases do not pollute each other.

    .venv/bin/python benchmarks/bench_synth.py                      # demo default + 2.7M scale run
    .venv/bin/python benchmarks/bench_synth.py --scale 27000000     # national scale (27M x 5 reviews)
    .venv/bin/python benchmarks/bench_synth.py --skip-demo --scale 1000000

Cases:
* demo: write_demo(households=60_000, frequency="quarter", fmt="csv") — the `make report` default.
* scale: write_demo(households=N, frequency="year", fmt="parquet") — chunks of 1M households,
  one parquet part per chunk, bounded memory.
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, sys, time
from pathlib import Path
from povdyn.synth import write_demo
args = json.loads(sys.argv[1])
t = time.perf_counter()
s = write_demo(progress=False, **args)
size = sum(f.stat().st_size for f in Path(args["out_dir"]).rglob("*") if f.is_file())
print(json.dumps({"rows": s.rows, "households": s.households, "support_rows": s.support_rows,
                  "files": len(s.files), "seconds": time.perf_counter() - t, "bytes_on_disk": size}))
"""


def run_case(name: str, **kwargs) -> dict:
    out = Path(tempfile.mkdtemp(prefix=f"bench_synth_{name}_"))
    kwargs["out_dir"] = str(out)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", CHILD, json.dumps(kwargs)], capture_output=True, text=True)
    wall = time.perf_counter() - t
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    shutil.rmtree(out, ignore_errors=True)
    if res.returncode != 0:
        raise SystemExit(f"{name} failed:\n{res.stderr[-3000:]}")
    info = json.loads(res.stdout.strip().splitlines()[-1])
    info.update(case=name, wall_seconds=wall,
                peak_rss_mb=peak_kb / 1024 if peak_kb > before else float("nan"),
                args={k: v for k, v in kwargs.items() if k != "out_dir"})
    return info


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=int, default=2_700_000, help="households for the scale run (0 = skip)")
    ap.add_argument("--skip-demo", action="store_true")
    ap.add_argument("--json", help="write results to this file")
    args = ap.parse_args(argv)
    results = []
    # each case in its own child: ru_maxrss of RUSAGE_CHILDREN is the max over children,
    # so run the bigger case last (its peak is then the one reported)
    if not args.skip_demo:
        results.append(run_case("demo", households=60_000, seed=2025, frequency="quarter", fmt="csv"))
        print(_line(results[-1]), flush=True)
    if args.scale:
        results.append(run_case("scale", households=args.scale, seed=2025, frequency="year", fmt="parquet"))
        print(_line(results[-1]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


def _line(r: dict) -> str:
    return (f"{r['case']:>6}: {r['households']:>12,} households -> {r['rows']:>13,} rows, "
            f"{r['seconds']:8.1f} s ({r['rows'] / r['seconds']:,.0f} rows/s), peak RSS {r['peak_rss_mb']:,.0f} MB, "
            f"{r['bytes_on_disk'] / 1e6:,.0f} MB on disk  {r['args']}")


if __name__ == "__main__":
    sys.exit(main())
