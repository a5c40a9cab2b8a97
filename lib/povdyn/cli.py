"""The `povdyn` command: demo data, ingest, report. Each subcommand is a thin wrapper
around one library function, so everything the CLI does can also be done in a notebook.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import settings


def _demo(args) -> int:
    from .synth import write_demo

    summary = write_demo(
        out_dir=Path(args.out),
        households=args.households,
        seed=args.seed,
        style=args.style,
        fmt=args.format,
        frequency=args.frequency,
        progress=not args.quiet,
        all_communes=args.all_communes,
    )
    print(summary)
    # the example local targets (a few provinces and communes of the demo) go beside the
    # data folder, not in it: ingest reads every table under it. Never over an office's file.
    from .targets import LOCAL_TARGETS_NAME, write_example_targets

    targets_csv = Path(args.out).resolve().parent / LOCAL_TARGETS_NAME
    if not targets_csv.exists():
        write_example_targets(targets_csv)
        print(f"example targets file: {targets_csv} (povdyn.targets; the report reads it)")
    return 0


def _ingest(args) -> int:
    from .ingest import ingest

    summary = ingest(Path(args.raw_dir), Path(args.out), progress=not args.quiet,
                     new_key=args.new_key)
    print(summary)
    return 0 if summary.ok else 1


def _report(args) -> int:
    from .report import ReportInterrupted, run_report

    try:
        run = run_report(
            period=args.period,
            regions=args.regions,
            workers=args.workers,
            out_dir=Path(args.out),
            data_dir=Path(args.data_dir),
            lang=args.lang,
            engine=args.engine,
            spark_master=args.spark_master,
            register=args.register,
            notebook=args.notebook,
            progress=not args.quiet,
            level=args.level,
            targets=args.targets,
        )
    except ReportInterrupted as stop:
        print(stop.run, file=sys.stderr)
        print("interrupted: the manifest and index say so; run the command again to finish",
              file=sys.stderr)
        return 130
    print(run)
    return 0 if not run.failed else 1


def _watchlist(args) -> int:
    from .panel import load_panel
    from .risk import watchlist, write_watchlist

    data = Path(args.data_dir)
    panel = load_panel(data / "panel.parquet" if (data / "panel.parquet").exists() else data)
    scores, model = watchlist(panel, as_of=args.as_of, province=args.province, within=args.within,
                              kind=args.kind, method=args.method, lang=args.lang)
    path = write_watchlist(scores, args.out, model=model, lang=args.lang, province=args.province)
    for note in model.notes:
        print(f"povdyn: warning: {note}", file=sys.stderr)
    counts = scores["risk_band"].value_counts().reindex(["high", "medium", "low"], fill_value=0)
    print(f"watchlist -> {path}: {len(scores)} households in {scores['commune'].nunique()} communes "
          f"(high {counts['high']}, medium {counts['medium']}, low {counts['low']}); {model.summary()}")
    return 0


def _relink(args) -> int:
    from .risk import relink

    res = relink(args.raw_file, args.watchlist, args.out, processed_dir=args.data_dir)
    print(f"relinked -> {args.out}: {res['matched']} of {res['households']} households matched to a "
          f"local code ({res['unmatched']} not on {args.raw_file})")
    return 0


INGEST_ENVIRONMENT = """\
environment (memory and speed):
  POVDYN_INGEST_PEAK=1000MiB   what the steps after the read may hold in all; DuckDB's
                               limit for each step is fitted under it (never above
                               POVDYN_INGEST_MEMORY). The panel's sort carries its
                               text as ENUM codes: the 10M register sorts in one
                               range (13 s), the 27M national register in 64 ranges
                               under 230 MiB (304 s) (README, Speed)
  POVDYN_INGEST_MEMORY=1GB     DuckDB's limit at most; it spills to disk beyond it
  POVDYN_INGEST_WORKERS=N      processes reading one large csv (default: the cores)
  POVDYN_SPILL_ROOT=DIR        where DuckDB spills (default: the system temp folder)
  POVDYN_INGEST_TIMING=1       print each stage's time and peak memory
"""


class _DefaultsAndRawEpilog(argparse.ArgumentDefaultsHelpFormatter,
                            argparse.RawDescriptionHelpFormatter):
    """Defaults shown after each option; the epilog's table kept as written."""


def build_parser() -> argparse.ArgumentParser:
    cfg = settings()
    parser = argparse.ArgumentParser(
        prog="povdyn",
        description=(
            "Household poverty dynamics for Vietnam's poverty-reduction offices: "
            "exits (thoát nghèo), relapse (tái nghèo), newly poor (phát sinh) and "
            "which support models work. Typical flow: povdyn demo -> povdyn ingest -> "
            "povdyn report."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="write a synthetic national register with planted programme effects",
        description="Write a realistic synthetic register (34 provinces, quarterly "
        "snapshots 2021Q4-2025Q4, support programmes with known effects; the truth "
        "goes to a separate file beside the data).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    demo.add_argument("--households", type=int, default=60_000, help="number of households")
    demo.add_argument("--seed", type=int, default=2025, help="random seed (same seed, same bytes)")
    demo.add_argument("--out", default=str(cfg.raw_dir), help="output folder")
    demo.add_argument("--style", choices=["full", "lists"], default="full",
                      help="full panel, or poor/near-poor lists with Vietnamese headers as offices keep them")
    demo.add_argument("--format", choices=["csv", "xlsx", "parquet"], default="csv",
                      help="file format (xlsx: full style, one workbook per province and a "
                      "sheet per review; lists style, the official list template, one "
                      "workbook per commune per year); lists also get the household totals "
                      "table tong_so_ho")
    demo.add_argument("--frequency", choices=["quarter", "year"], default="quarter",
                      help="quarterly snapshots or annual reviews only")
    demo.add_argument("--all-communes", action="store_true",
                      help="every old commune, so that all 3,321 communes and wards of 2025 have "
                      "households (the demo otherwise samples communes; needs --households of "
                      "about 111,000 or more, e.g. 400000)")
    demo.set_defaults(func=_demo)

    ing = sub.add_parser(
        "ingest",
        help="validate raw registers, quarantine bad rows, pseudonymise, write parquet",
        description="Read every csv/xlsx in RAW_DIR, map Vietnamese headers, validate, "
        "write OUT/panel.parquet, OUT/support.parquet and OUT/quarantine.csv.",
        formatter_class=_DefaultsAndRawEpilog,
        epilog=INGEST_ENVIRONMENT,
    )
    ing.add_argument("raw_dir", nargs="?", default=str(cfg.raw_dir), help="folder of raw exports")
    ing.add_argument("--out", default=str(cfg.processed_dir), help="output folder")
    ing.add_argument("--new-key", action="store_true",
                     help="start afresh with a new pseudonymisation key although OUT holds "
                     "earlier data (every pseudonym changes: later quarters will not link to "
                     "earlier ones); without it a missing key file is an error")
    ing.set_defaults(func=_ingest)

    rep = sub.add_parser(
        "report",
        help="render the quarterly report (nation + provinces) as self-contained HTML",
        description="Run the report notebook for the nation and each province in parallel, "
        "isolate failures, write HTML pages, an index and a manifest under OUT/<period>/.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    rep.add_argument("--period", default="latest", help="e.g. 2025Q3; 'latest' = last period in the data")
    rep.add_argument("--regions", default="all", help="'all', 'national', or a comma-separated list of provinces")
    rep.add_argument("--level", choices=["province", "commune"], default="province",
                     help="'province': the nation and provinces; 'commune': one page per 2025 commune of "
                          "each province in --regions, under <period>/<province>/")
    rep.add_argument("--workers", type=int, default=2, help="parallel worker processes")
    rep.add_argument("--out", default=str(cfg.reports_dir), help="output folder")
    rep.add_argument("--data-dir", default=str(cfg.processed_dir), help="processed data folder")
    rep.add_argument("--lang", choices=["vi", "en"], default="vi", help="report language")
    rep.add_argument("--engine", choices=["duckdb", "spark"], default=cfg.engine,
                     help="engine every page runs on (env POVDYN_ENGINE); the manifest records "
                     "the engine each page really used")
    rep.add_argument("--spark-master", default=None,
                     help="Spark master URL with --engine spark, e.g. spark://host:7077 "
                     "(default: $SPARK_MASTER, else local[2])")
    rep.add_argument("--register", choices=["lists", "full"], default=None,
                     help="override the register kind ingest recorded: 'lists' = households "
                     "absent from a list are not poor; 'full' = every household is listed")
    rep.add_argument("--notebook", default=None,
                     help="report template notebook (default: the one shipped with povdyn)")
    rep.add_argument("--targets", default=None, metavar="PATH",
                     help="the office's targets csv (povdyn.targets), given to every page (province "
                     "and commune) and recorded in the manifest; checked before any page starts "
                     "(default: targets.csv in or beside --data-dir, else the national targets)")
    rep.set_defaults(func=_report)

    wl = sub.add_parser(
        "watchlist",
        help="relapse early-warning list for commune officers (xlsx, one sheet per commune)",
        description="Fit the relapse (or entry) risk model on the processed register and write "
        "the households of one province that exited at AS_OF, with risk band and reasons, one "
        "sheet per commune. Pseudonyms only; use `povdyn relink` at the office to add local codes. "
        "A score guides outreach; it never takes anyone off support.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    wl.add_argument("--as-of", required=True, help="annual review, e.g. 2025Q4 or 2025")
    wl.add_argument("--province", required=True, help="province (2025 name)")
    wl.add_argument("--out", required=True, help="output .xlsx")
    wl.add_argument("--within", type=int, default=1,
                    help="annual reviews ahead (2 needs two exit cohorts with complete 2-review "
                    "follow-up and enough relapses to validate)")
    wl.add_argument("--kind", choices=["relapse", "entry"], default="relapse",
                    help="relapse: this review's exits; entry: near-poor households")
    wl.add_argument("--method", choices=["auto", "gbm", "logit"], default="auto")
    wl.add_argument("--data-dir", default=str(cfg.processed_dir), help="processed data folder")
    wl.add_argument("--lang", choices=["vi", "en"], default="vi")
    wl.set_defaults(func=_watchlist)

    rl = sub.add_parser(
        "relink",
        help="add the office's own household codes to a watchlist (at the office, with its key)",
        description="Pseudonymise the codes of the office's raw list with the office's key and "
        "add them to the watchlist rows they match. The output must be outside the processed folder.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    rl.add_argument("raw_file", help="the office's raw list (csv or xlsx) with Mã hộ")
    rl.add_argument("--watchlist", required=True, help="watchlist .xlsx from `povdyn watchlist`")
    rl.add_argument("--out", required=True, help="output .xlsx (not in the processed folder)")
    rl.add_argument("--data-dir", default=str(cfg.processed_dir), help="processed data folder (refused as output)")
    rl.set_defaults(func=_relink)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # povdyn errors carry file/row/column; show them plainly
        from .errors import PovdynError

        if isinstance(exc, PovdynError):
            print(f"povdyn: error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
