"""The full report batch: nation + 34 provinces on the demo register, 2 workers.

    flock /tmp/povdyn-heavy.lock .venv/bin/python benchmarks/bench_report.py \
        [--data-dir DIR] [--workers 2] [--regions all] [--engine duckdb]

Without --data-dir it writes the synthetic demo register (60,000 households, quarterly
2021Q4-2025Q4) and ingests it in a temp folder first (not timed). Then it times
`povdyn.report.run_report(period="latest", regions=..., workers=...)` end to end (pages,
index, manifest) and prints wall seconds, the slowest pages and the mean page time,
plus the machine's load average (the figure is only meaningful on an idle machine).
Writes the numbers to <out>/bench_report.json. Not part of `make test`.

At scale (issue 15 §4), each with the peak memory of the whole process tree (parent,
workers, kernels), sampled every 0.5 s:

* ``--scale national-27m``: the national page of a 27M-household annual register (5
  reviews, ~133M rows; target < 10 min and < 6 GB on 2 cores);
* ``--scale batch-2.7m``: nation + 34 provinces on 2.7M households x 5 reviews (target
  < 15 min).

Their registers are written once by DuckDB SQL (benchmarks/bench_dynamics.py
``write_panel(page=True)``: status, removals, gaps, province, area, ethnic minority;
no deprivation indicators, support records or incomes, so those sections say they have
no data) under benchmarks/.cache/report/ (~2.5 GB at 27M: delete it afterwards).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


CACHE = Path(__file__).resolve().parent / ".cache" / "report"
# --scale: households, regions, target seconds (issue 15 §4)
SCALES = {"national-27m": (27_000_000, "national", 600.0),
          "batch-2.7m": (2_700_000, "all", 900.0)}


class _PeakMemory:
    """Peak resident memory of this process and all its descendants (workers, kernels),
    sampled every 0.5 s in a thread."""

    def __init__(self):
        import threading

        import psutil

        self.peak, self._stop = 0, threading.Event()
        me = psutil.Process()

        def sample():
            while not self._stop.wait(0.5):
                try:
                    rss = me.memory_info().rss + sum(c.memory_info().rss
                                                     for c in me.children(recursive=True))
                except psutil.Error:
                    continue
                self.peak = max(self.peak, rss)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak / 1e9


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="processed folder with panel.parquet (default: fresh demo)")
    parser.add_argument("--households", type=int, default=60_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--regions", default="all")
    parser.add_argument("--out", help="reports folder (default: a temp folder)")
    parser.add_argument("--engine", default="duckdb", choices=["duckdb", "spark"])
    parser.add_argument("--target", type=float, default=60.0, help="seconds the batch should stay under")
    parser.add_argument("--scale", choices=sorted(SCALES),
                        help="the national page at 27M households or the batch at 2.7M (docstring)")
    args = parser.parse_args(argv)
    if args.scale:
        households, regions, target = SCALES[args.scale]
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_dynamics import write_panel

        t = time.perf_counter()
        args.data_dir = str(write_panel(households, CACHE / args.scale, page=True))
        print(f"register of {households:,} households x 5 reviews ready in "
              f"{time.perf_counter() - t:.0f} s (not timed): {args.data_dir}", flush=True)
        args.regions, args.target = regions, target

    from povdyn.report import run_report

    tmp = Path(tempfile.mkdtemp(prefix="povdyn-bench-report-"))
    data_dir = Path(args.data_dir) if args.data_dir else None
    if data_dir is None:
        from povdyn.ingest import ingest
        from povdyn.synth import write_demo

        t = time.perf_counter()
        write_demo(tmp / "raw", households=args.households, seed=2025, progress=False)
        summary = ingest(tmp / "raw", tmp / "processed", progress=False)
        assert summary.ok, str(summary)
        data_dir = tmp / "processed"
        print(f"demo register written and ingested in {time.perf_counter() - t:.1f} s (not timed)")
    out = Path(args.out) if args.out else tmp / "reports"

    load_before = os.getloadavg()
    peak = _PeakMemory()
    t = time.perf_counter()
    run = run_report(period="latest", regions=args.regions, workers=args.workers, out_dir=out,
                     data_dir=data_dir, engine=args.engine, progress=True)
    seconds = time.perf_counter() - t
    peak_gb = peak.stop()
    load_after = os.getloadavg()
    print(run)
    pages = sorted(run.results, key=lambda r: -r["seconds"])
    result = {
        "seconds_total": round(seconds, 1),
        "target_seconds": args.target,
        "within_target": seconds < args.target,
        "status": run.status,
        "engine": args.engine,
        "pages_seconds_sum": round(sum(r["seconds"] for r in run.results), 1),
        "pages": len(run.pages),
        "failed": run.failed,
        "workers": args.workers,
        "scale": args.scale,
        "peak_memory_gb": round(peak_gb, 2),
        "mean_page_seconds": round(statistics.mean(r["seconds"] for r in run.results), 1),
        "slowest": [(r["region"], r["seconds"]) for r in pages[:5]],
        "load_average_before": load_before,
        "load_average_after": load_after,
        "cpus": os.cpu_count(),
    }
    (run.out_dir / "bench_report.json").write_text(json.dumps(result, ensure_ascii=False, indent=2))
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0 if not run.failed else 1


if __name__ == "__main__":
    raise SystemExit(main())
