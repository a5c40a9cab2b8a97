"""The full report batch: nation + 34 provinces on the demo register, 2 workers; with
--level commune, the commune pages of the demo's largest province (issue 13 §2).

    flock /tmp/povdyn-heavy.lock .venv/bin/python benchmarks/bench_report.py \
        [--data-dir DIR] [--workers 2] [--regions all] [--engine duckdb]

Without --data-dir it writes the synthetic demo register (60,000 households, quarterly
2021Q4-2025Q4) and ingests it in a temp folder first (not timed). Then it times
`povdyn.report.run_report(period="latest", regions=..., workers=...)` end to end (pages,
index, manifest) and prints wall seconds, the slowest pages and the mean page time,
plus the machine's load average (the figure is only meaningful on an idle machine).
Writes the numbers to <out>/bench_report.json. Not part of `make test`.

``--level commune`` (default --households 200000, so that the largest demo province has
about 100 communes; --regions "largest" picks it): times `run_report(level="commune")`
for that province's communes on --workers, prints the wall time against the 5-minute
target, the page times (first page per worker, which computes the province's
aggregates, and the others), a profile of one page's parts in this process (aggregates,
headline, targets, trend, flows, nbconvert export) and the aggregates against a
plain-pandas baseline (the same per-commune counts by groupby on the pulled rows), and
an extrapolation to all 3,321 communes, labelled as such. ``--all-communes`` renders
all 3,321 communes of a register that has every one of them (``write_demo(all_communes=
True)``, default 400,000 households: ~120 a commune, written once to
benchmarks/.cache/report/all-communes-<households>/ and reused; target < 60 min on 2
workers) and prints pages, failed, wall time, median page, peak memory of the process
tree and the load (slow: run it under the heavy lock, with /tmp/povdyn-quiet).

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
    sampled every 0.5 s in a thread; also the peaks of this process alone and of the
    kernels alone, and when the peak happened (to set against the page's cell times);
    ``max_load``: the highest 1-minute load average seen."""

    def __init__(self):
        import threading

        import psutil

        self.peak, self.parent_peak, self.kernel_peak, self.peak_at = 0, 0, 0, None
        self.max_load, self._stop = 0.0, threading.Event()
        # CPU seconds (user + system) of each process seen, as last sampled (a process
        # that ends between two samples loses at most 0.5 s), and of the parent's threads
        self.cpu: dict[int, tuple[str, float]] = {}
        self.thread_cpu: dict[str, float] = {}
        me = psutil.Process()
        self._me = me

        def sample():
            while not self._stop.wait(0.5):
                self.max_load = max(self.max_load, os.getloadavg()[0])
                self._sample_threads()
                try:
                    parent = me.memory_info().rss
                    kernels = others = 0
                    for child in me.children(recursive=True):
                        try:
                            rss = child.memory_info().rss
                            kernel = "ipykernel" in " ".join(child.cmdline())
                            times = child.cpu_times()
                            self.cpu[child.pid] = ("kernel" if kernel else "worker", times.user + times.system)
                        except psutil.Error:
                            continue
                        kernels, others = (kernels + rss, others) if kernel else (kernels, others + rss)
                except psutil.Error:
                    continue
                total = parent + kernels + others
                if total > self.peak:
                    self.peak, self.peak_at = total, time.time()
                self.parent_peak = max(self.parent_peak, parent)
                self.kernel_peak = max(self.kernel_peak, kernels)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()

    def _sample_threads(self) -> None:
        import threading

        names = {t.native_id: t.name for t in threading.enumerate()}
        try:
            for t in self._me.threads():
                name = names.get(t.id, "other")
                if name.startswith("povdyn-"):  # the run-wide tables, the fit, the index headline
                    self.thread_cpu[name] = t.user_time + t.system_time
        except Exception:  # noqa: BLE001 - a sample missed
            pass

    def cpu_by_process(self) -> dict:
        """CPU seconds of the run by process: the parent (and its named threads), each
        worker and each kernel (largest first)."""
        times = self._me.cpu_times()
        out = {"parent": round(times.user + times.system, 1),
               "parent_threads": {k: round(v, 1) for k, v in sorted(self.thread_cpu.items())}}
        for kind in ("worker", "kernel"):
            out[f"{kind}s"] = sorted((round(cpu, 1) for k, cpu in self.cpu.values() if k == kind), reverse=True)
        return out

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak / 1e9


def _cell_times(notebook: Path, peak_at: float | None) -> list[str]:
    """Seconds of each code cell of an executed page (nbclient's timing metadata), the
    cell running when the memory peaked marked."""
    from datetime import datetime

    import nbformat

    def stamp(text):
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

    lines = []
    for cell in nbformat.read(notebook, as_version=4).cells:
        timing = cell.get("metadata", {}).get("execution", {})
        if cell.cell_type != "code" or "shell.execute_reply" not in timing:
            continue
        start, end = stamp(timing["iopub.execute_input"]), stamp(timing["shell.execute_reply"])
        mark = "  <- memory peak" if peak_at is not None and start <= peak_at <= end + 0.5 else ""
        first = next((line for line in cell.source.splitlines() if line and not line.startswith("#")), "")
        lines.append(f"{end - start:8.1f} s  {first[:70]}{mark}")
    return lines


def _page_timeline(run_dir: Path, started: float) -> dict:
    """From the executed pages' cell timings (nbclient metadata): when the first cell of
    any page ran after the run started (workers and kernels starting), the province
    pages' median and max seconds from first to last cell, and each section's median
    seconds over the province pages (cells named by their first line)."""
    from datetime import datetime

    import nbformat

    def stamp(text):
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

    first_cell, spans, cells = [], [], {}
    for book in sorted((run_dir / "notebooks").glob("*.ipynb")):
        timed = [c for c in nbformat.read(book, as_version=4).cells if c.cell_type == "code"
                 and "shell.execute_reply" in c.get("metadata", {}).get("execution", {})]
        if not timed:
            continue
        begin = stamp(timed[0].metadata["execution"]["iopub.execute_input"])
        end = stamp(timed[-1].metadata["execution"]["shell.execute_reply"])
        first_cell.append(begin - started)
        if book.stem == "national":
            continue
        spans.append(end - begin)
        for i, cell in enumerate(timed):
            timing = cell.metadata["execution"]
            name = next((line for line in cell.source.splitlines() if line and not line.startswith("#")), "")
            name = "parameters" if "injected-parameters" in cell.metadata.get("tags", []) else name[:48]
            cells.setdefault((i, name), []).append(stamp(timing["shell.execute_reply"])
                                                   - stamp(timing["iopub.execute_input"]))
    return {"first_cell_after_s": round(min(first_cell), 1) if first_cell else None,
            "province_page_cells_median_s": round(statistics.median(spans), 2) if spans else None,
            "province_page_cells_max_s": round(max(spans), 2) if spans else None,
            "province_cell_median_s": {f"{i:02d} {name}": round(statistics.median(v), 2)
                                       for (i, name), v in sorted(cells.items())}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="processed folder with panel.parquet (default: fresh demo)")
    parser.add_argument("--households", type=int, default=60_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--regions", default="all")
    parser.add_argument("--out", help="reports folder (default: a temp folder)")
    parser.add_argument("--engine", default="duckdb", choices=["duckdb", "spark"])
    parser.add_argument("--target", type=float, default=60.0, help="seconds the batch should stay under")
    parser.add_argument("--level", default="province", choices=["province", "commune"])
    parser.add_argument("--all-communes", action="store_true", help="--level commune: every commune")
    parser.add_argument("--scale", choices=sorted(SCALES),
                        help="the national page at 27M households or the batch at 2.7M (docstring)")
    args = parser.parse_args(argv)
    if args.level == "commune":
        return commune_main(args)
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
    t, wall_started = time.perf_counter(), time.time()
    cpu_before = os.times()
    run = run_report(period="latest", regions=args.regions, workers=args.workers, out_dir=out,
                     data_dir=data_dir, engine=args.engine, progress=True)
    seconds = time.perf_counter() - t
    cpu_after = os.times()
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
    result.update(parent_peak_memory_gb=round(peak.parent_peak / 1e9, 2),
                  kernels_peak_memory_gb=round(peak.kernel_peak / 1e9, 2))
    # CPU seconds of the whole run: this process and every process it waited for (the
    # workers, and through them their kernels); against 2 x wall on 2 cores
    result["cpu_seconds"] = round(sum(cpu_after[:4]) - sum(cpu_before[:4]), 1)
    # the same by process (sampled every 0.5 s; the parent's includes its imports before the run)
    result["cpu_seconds_by_process"] = peak.cpu_by_process()
    manifest = json.loads(run.manifest_path.read_text(encoding="utf-8"))
    result["run_wide_tables_s"] = (manifest.get("run_tables") or {}).get("seconds")
    result["early_warning_fit_s"] = (manifest.get("early_warning_fit") or {}).get("seconds")
    national_result = next((r for r in run.results if r["region"] == "national"), None)
    result["national_page_s"] = national_result["seconds"] if national_result else None
    provinces = [r["seconds"] for r in run.results if r["region"] != "national"]
    if provinces:
        result.update(province_page_median_s=round(statistics.median(provinces), 2),
                      province_page_max_s=round(max(provinces), 2))
    result.update(_page_timeline(run.out_dir, wall_started))
    (run.out_dir / "bench_report.json").write_text(json.dumps(result, ensure_ascii=False, indent=2))
    print(json.dumps(result, ensure_ascii=False, indent=2))
    national = run.out_dir / "notebooks" / "national.ipynb"
    if args.scale and national.exists():
        print("national page, seconds per cell:")
        print("\n".join(_cell_times(national, peak.peak_at)))
    if not any(tmp.iterdir()):  # nothing written there (--data-dir and --out given)
        tmp.rmdir()
    return 0 if not run.failed else 1


# ----------------------------------------------------------------------------- commune pages
COMMUNES_2025 = 3321  # communes and wards after the reform (povdyn.geo.communes_2025)


# --all-communes: households of the register with every 2025 commune (write_demo
# all_communes=True): ~120 per commune, 6.8M rows over 17 quarters -- the order of the real
# national poor / near-poor lists (about 1.2M households at a review, a few hundred per
# commune), which is what commune pages read
ALL_COMMUNES_HOUSEHOLDS = 400_000


def _demo_data(args, tmp: Path) -> Path:
    if args.data_dir:
        return Path(args.data_dir)
    from povdyn.ingest import ingest
    from povdyn.synth import write_demo

    default = ALL_COMMUNES_HOUSEHOLDS if args.all_communes else 200_000
    households = args.households if args.households != 60_000 else default
    # the all-communes register is kept (written once, reused by later runs: delete
    # benchmarks/.cache/report/all-communes-* afterwards)
    base = CACHE / f"all-communes-{households}" if args.all_communes else tmp
    if args.all_communes and not (base / "targets.csv").exists():
        from povdyn.targets import write_example_targets

        # the example office targets beside the data, as `povdyn demo` writes them: the
        # pages read them (found beside the processed folder)
        write_example_targets(base / "targets.csv")
    if (base / "processed" / "panel.parquet").exists():
        print(f"register reused: {base / 'processed'}")
        return base / "processed"
    t = time.perf_counter()
    write_demo(base / "raw", households=households, seed=2025, progress=False,
               fmt="parquet" if args.all_communes else "csv", all_communes=args.all_communes)
    summary = ingest(base / "raw", base / "processed", progress=False)
    assert summary.ok, str(summary)
    print(f"demo register ({households:,} households{', every 2025 commune' if args.all_communes else ''}) "
          f"written and ingested in {time.perf_counter() - t:.1f} s (not timed)")
    return base / "processed"


def _page_profile(data_dir: Path, province: str, period: str, n: int = 5) -> dict:
    """One commune page's parts, timed in this process (no kernel): the province's
    aggregates (once), then per page its data, headline, targets, trend and flows
    figures, and the nbconvert export of an executed page."""
    import matplotlib

    matplotlib.use("Agg")
    from IPython import display as ipd

    from povdyn import communes
    from povdyn.targets import local_targets_file

    shown = ipd.display
    ipd.display = lambda *a, **k: None  # figures and tables are built, not shown
    try:
        t = time.perf_counter()
        pc = communes.province_communes(data_dir, province, period)
        out = {"aggregates_s": round(time.perf_counter() - t, 2), "aggregates_parts_s": pc.seconds}
        parts: dict = {}
        targets_file = local_targets_file(data_dir)
        for name in pc.communes[:n]:
            t = time.perf_counter()
            page = communes.commune_page(data_dir, province, name, period)
            parts.setdefault("page_data", []).append(time.perf_counter() - t)
            for key, run in (("headline", lambda: communes.headline_table(page)),
                             ("targets", lambda: communes.targets_table(page, targets_file=targets_file)),
                             ("trend", lambda: communes.show_trend(page)),
                             ("flows", lambda: communes.show_flows(page))):
                t = time.perf_counter()
                run()
                parts.setdefault(key, []).append(time.perf_counter() - t)
        out["page_parts_mean_s"] = {k: round(statistics.mean(v), 3) for k, v in parts.items()}
    finally:
        ipd.display = shown
    return out


def _export_seconds(run_dir: Path, n: int = 3) -> float:
    """Mean seconds of the reviewer's-page export of executed commune notebooks."""
    import nbformat

    from povdyn.report import export_html

    books = sorted((run_dir / "notebooks").rglob("*.ipynb"))[:n]
    times = []
    for book in books:
        nb = nbformat.read(book, as_version=4)
        t = time.perf_counter()
        export_html(nb, title="bench", lang="vi", footer="")
        times.append(time.perf_counter() - t)
    return round(statistics.mean(times), 3) if times else float("nan")


def _pandas_baseline(data_dir: Path, province: str, period: str) -> float:
    """Plain pandas: the province's rows pulled, then per commune the households by
    status at the period and the exits from poor into it (a part of what the engine
    aggregates compute), for a ratio printed beside them."""
    import pandas as pd

    t = time.perf_counter()
    rows = pd.read_parquet(data_dir / "panel.parquet", columns=["household_id", "period", "status", "province_2025",
                                                                "commune_2025"],
                           filters=[("province_2025", "==", province)])
    periods = sorted(rows["period"].unique())
    before = periods[periods.index(period) - 1]
    now = rows[rows["period"] == period]
    now.groupby(["commune_2025", "status"]).size()
    prev = rows[(rows["period"] == before) & (rows["status"] == "poor")][["household_id"]]
    moved = prev.merge(now, on="household_id")
    moved.groupby("commune_2025")["status"].apply(lambda s: (s != "poor").sum())
    return time.perf_counter() - t


def commune_main(args) -> int:
    import pandas as pd

    from povdyn.report import run_report

    tmp = Path(tempfile.mkdtemp(prefix="povdyn-bench-communes-"))
    data_dir = _demo_data(args, tmp)
    out = Path(args.out) if args.out else tmp / "reports"
    places = pd.read_parquet(data_dir / "panel.parquet", columns=["province_2025", "commune_2025"]).drop_duplicates()
    per_province = places.dropna().groupby("province_2025")["commune_2025"].nunique().sort_values()
    province = per_province.index[-1] if args.regions in ("all", "largest") else args.regions
    regions = "all" if args.all_communes else province
    n_pages = int(per_province.sum() if args.all_communes else per_province[province])
    print(f"{n_pages} commune pages ({'all provinces' if args.all_communes else province}), "
          f"{args.workers} workers")

    load_before = os.getloadavg()
    peak = _PeakMemory()
    t = time.perf_counter()
    run = run_report(period="latest", regions=regions, workers=args.workers, out_dir=out, data_dir=data_dir,
                     engine=args.engine, progress=True, level="commune")
    seconds = time.perf_counter() - t
    peak_gb = peak.stop()
    load_after = os.getloadavg()
    print(run)
    times_all = sorted(r["seconds"] for r in run.results)
    print(f"MEASURED: {len(run.pages)} commune pages, {len(run.failed)} failed, wall {seconds / 60:.1f} min "
          f"(target {'60 min' if args.all_communes else '5 min'}), median page {statistics.median(times_all):.2f} s, "
          f"peak memory {peak_gb:.2f} GB, load {load_before[0]:.1f} before / max {peak.max_load:.1f} / "
          f"{load_after[0]:.1f} after, {args.workers} workers", flush=True)
    times = sorted(r["seconds"] for r in run.results)
    warm = times[:-args.workers] if len(times) > args.workers else times  # the slowest: first per worker
    period = run.period
    profile = _page_profile(data_dir, province, period)
    profile["export_s"] = _export_seconds(run.out_dir)
    pandas_s = _pandas_baseline(data_dir, province, period)
    per_page = statistics.mean(warm)
    aggregates = profile["aggregates_s"]
    n_provinces = int(len(per_province))
    extrapolated = (COMMUNES_2025 * per_page + n_provinces * aggregates) / args.workers
    target = 3600.0 if args.all_communes else 300.0
    result = {
        "level": "commune",
        "all_communes": bool(args.all_communes),
        "pages": len(run.pages),
        "failed": run.failed,
        "status": run.status,
        "seconds_total": round(seconds, 1),
        "target_seconds": target,
        "within_target": seconds < target and not run.failed,
        "peak_memory_gb": round(peak_gb, 2),
        "max_load_average": round(peak.max_load, 2),
        "workers": args.workers,
        "page_seconds_median": round(statistics.median(times), 2),
        "page_seconds_mean_without_first_per_worker": round(per_page, 2),
        "page_seconds_first_per_worker": times[-args.workers:],
        "profile_in_process": profile,
        "aggregates_vs_plain_pandas": {"engine_aggregates_s": aggregates, "pandas_part_s": round(pandas_s, 2),
                                       "ratio": round(aggregates / pandas_s, 2) if pandas_s else None},
        "EXTRAPOLATED_all_3321_communes_minutes": round(extrapolated / 60, 1),
        "extrapolation_basis": (f"({COMMUNES_2025} pages x {per_page:.2f} s + {n_provinces} provinces x "
                                f"{aggregates:.1f} s aggregates) / {args.workers} workers; not measured"),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "cpus": os.cpu_count(),
    }
    (run.out_dir / "bench_report_communes.json").write_text(json.dumps(result, ensure_ascii=False, indent=2))
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0 if not run.failed else 1


if __name__ == "__main__":
    raise SystemExit(main())
