"""Profile report pages in a warm kernel, cell by cell and function by function (#15 §4).

    .venv/bin/python benchmarks/profile_report_page.py --data-dir DIR \
        [--warm "Hà Nội"] [--regions "Nghệ An,national"] [--out /tmp/pagespeed3-prof] [--top 25]

Computes the run-wide tables and the early-warning model once, as `povdyn report`'s parent
does (timed, and the fit's and tables' own profiles written), starts one report kernel as
a worker does, renders the --warm page in it unprofiled (imports, held register, handed
tables), then each of --regions with every code cell run under IPython's ``%%prun``.
Prints each profiled page's seconds per cell (nbclient's timings) and the functions with
the most own and cumulative time over the page; the .prof files stay in --out (one per
cell: ``snakeviz`` or ``pstats`` read them). One kernel, one thread: run it on a quiet
machine for numbers to quote (it is ~15 CPU-s on the 60k demo).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import pstats
import time
from datetime import datetime
from pathlib import Path


def _stamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _profiled(template, folder: Path, slug: str):
    """The template with every code cell after the parameters run under %%prun."""
    import copy

    nb = copy.deepcopy(template)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and "parameters" not in cell.metadata.get("tags", []):
            cell.source = f"%%prun -q -D {folder / f'{slug}-{i:02d}.prof'}\n{cell.source}"
    return nb


def _cell_seconds(nb) -> list[tuple[int, float, str]]:
    out = []
    for i, cell in enumerate(nb.cells):
        timing = cell.get("metadata", {}).get("execution", {})
        if cell.cell_type != "code" or "shell.execute_reply" not in timing:
            continue
        lines = [line for line in cell.source.splitlines() if line and not line.startswith(("#", "%%"))]
        out.append((i, _stamp(timing["shell.execute_reply"]) - _stamp(timing["iopub.execute_input"]),
                    (lines[0] if lines else "")[:60]))
    return out


def _top(stats_files: list[Path], sort: str, n: int) -> str:
    stats = pstats.Stats(*map(str, stats_files), stream=io.StringIO())
    stats.sort_stats(sort).print_stats(n)
    return stats.stream.getvalue()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--warm", default="Hà Nội")
    parser.add_argument("--regions", default="Nghệ An,national")
    parser.add_argument("--out", default="/tmp/pagespeed3-prof")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--period", default="latest")
    args = parser.parse_args(argv)
    os.environ.setdefault("POVDYN_DUCKDB_THREADS", "1")
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")

    import cProfile

    from papermill.iorw import load_notebook_node

    from povdyn import report

    data_dir = Path(args.data_dir)
    out = Path(args.out)
    run_dir = out / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.prof"):
        old.unlink()
    period = report.resolve_period(data_dir, args.period)
    regions = report.resolve_regions(data_dir, "all")

    for name, step in (("run-tables", lambda: report.write_run_tables(
                           data_dir, run_dir / report.RUN_TABLES_DIR, regions=regions, period=period)),
                       ("risk-model", lambda: report.fit_risk_model(
                           data_dir, run_dir / report.RISK_MODEL_FILE, score_at=((str(period), "vi"),)))):
        profile = cProfile.Profile()
        started, cpu = time.perf_counter(), time.process_time()
        profile.runcall(step)
        print(f"parent {name}: {time.perf_counter() - started:.2f} s wall, {time.process_time() - cpu:.2f} CPU-s")
        profile.dump_stats(str(out / f"parent-{name}.prof"))
        print(_top([out / f"parent-{name}.prof"], "cumulative", args.top))

    template = load_notebook_node(str(report.template_notebook()))

    def parameters(region):
        return dict(region=region, period=str(period), data_dir=str(data_dir), lang="vi",
                    run_tables=str(run_dir / report.RUN_TABLES_DIR),
                    risk_model=str(run_dir / report.RISK_MODEL_FILE))

    cwd = report.template_notebook().parent
    started = time.perf_counter()
    report.execute_in_worker_kernel(template, out / "warm.ipynb", parameters(args.warm), cwd=cwd,
                                    freeze_heap=True)
    print(f"warm page {args.warm}: {time.perf_counter() - started:.2f} s (kernel start included)")
    summary = {}
    for region in [r.strip() for r in args.regions.split(",") if r.strip()]:
        slug = report.slugify(region)
        started = time.perf_counter()
        report.execute_in_worker_kernel(_profiled(template, out, slug), out / f"{slug}.ipynb",
                                        parameters(region), cwd=cwd, freeze_heap=True)
        seconds = time.perf_counter() - started
        cells = _cell_seconds(report._KERNEL["executed"])
        summary[region] = {"seconds": round(seconds, 2), "cells": {f"{i:02d} {name}": round(s, 3)
                                                                   for i, s, name in cells}}
        print(f"\n=== {region}: {seconds:.2f} s (profiled: cProfile adds overhead)")
        for i, s, name in cells:
            print(f"{s:7.3f} s  {i:02d} {name}")
        files = sorted(out.glob(f"{slug}-*.prof"))
        print(_top(files, "tottime", args.top))
        print(_top(files, "cumulative", args.top))
    report._shutdown_kernel()
    (out / "profile.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2))
    print(f"load average: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
