"""Ingest throughput (rows/s) on a register csv of >= 1M rows written here.

    .venv/bin/python benchmarks/bench_ingest.py [--rows 1000000] [--keep]

Writes a realistic raw export (Vietnamese headers, "1.523.000"-style incomes, x marks,
direct identifiers, 0.1% broken rows, a few exact duplicates) to a temp folder, then
times `povdyn.ingest.ingest` on it in a fresh process (best of --repeat runs: wall and
CPU seconds, peak memory) and checks the row balance. On a shared machine the CPU
figure (rows per CPU second) is the stabler one.
When povdyn.synth.write_demo exists, it also times ingest of the synthetic demo
register in the "lists" and "full" styles. Not part of `make test`.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

PROVINCES = ["Hà Giang", "Điện Biên", "Lai Châu", "Hà Nội", "Nghệ An", "Đắk Lắk",
             "Cà Mau", "An Giang", "Thanh Hóa", "Bình Dương"]
DEPS = ["dep_employment", "dep_dependants", "dep_nutrition", "dep_health_insurance",
        "dep_adult_education", "dep_child_school", "dep_housing_quality", "dep_housing_area",
        "dep_water", "dep_latrine", "dep_telecom", "dep_info_devices"]


def write_register_csv(path: Path, rows: int, seed: int = 1) -> int:
    """A quarterly register export with `rows` rows (households x 4 quarters)."""
    rng = np.random.default_rng(seed)
    households = rows // 4
    hh = np.tile(np.arange(households), 4)
    quarter = np.repeat(np.arange(4), households)
    n = len(hh)
    income = (rng.lognormal(14.6, 0.5, n) // 1000 * 1000).astype("int64")
    income_text = pd.Series(income).map("{:,}".format).str.replace(",", ".", regex=False)
    status = np.where(income < 1_500_000, "Hộ nghèo",
                      np.where(income < 2_250_000, "Hộ cận nghèo", "Không nghèo"))
    frame = pd.DataFrame({
        "STT": np.arange(1, n + 1),
        "Mã hộ": pd.Series(hh).map("HH{:08d}".format),
        "Họ tên chủ hộ": pd.Series(hh % 997).map("Nguyễn Văn {}".format),
        "Số CCCD": pd.Series(hh).map("0012{:08d}".format),
        "Số điện thoại": pd.Series(hh).map("09{:08d}".format),
        "Địa chỉ": pd.Series(hh % 500).map("Thôn {}".format),
        "Kỳ": np.array(["2024Q1", "2024Q2", "2024Q3", "2024Q4"])[quarter],
        "Phân loại hộ": status,
        "Tỉnh": np.array(PROVINCES)[hh % len(PROVINCES)],
        "Xã": pd.Series(hh % 300).map("Xã {}".format),
        "Khu vực": np.where(hh % 3 == 0, "Thành thị", "Nông thôn"),
        "Số nhân khẩu": rng.integers(1, 9, n),
        "Thu nhập bình quân": income_text,
        "Dân tộc thiểu số": np.where(hh % 5 == 0, "x", ""),
    })
    for dep in DEPS:
        frame[dep] = (rng.random(n) < 0.15).astype(int)
    bad = rng.choice(n, size=n // 1000, replace=False)
    frame.loc[bad[: len(bad) // 2], "Phân loại hộ"] = "Nghèo lắm"
    frame.loc[bad[len(bad) // 2:], "Thu nhập bình quân"] = "khoảng 1 triệu"
    dups = frame.iloc[:100]
    frame = pd.concat([frame, dups], ignore_index=True)
    frame.to_csv(path, index=False)
    return len(frame)


_CHILD = """
import json, sys, time
from pathlib import Path
from povdyn.ingest import ingest


def peak_mb():
    # VmHWM: this process's own peak (ru_maxrss would carry the parent's over exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


start, cpu_start = time.perf_counter(), time.process_time()
summary = ingest(Path(sys.argv[1]), Path(sys.argv[2]), progress=False)
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "rows_in": summary.rows_in, "balanced": summary.balanced,
                  "ok": summary.ok, "register": summary.register, "support": summary.support,
                  "peak_rss_mb": peak_mb()}))
"""


def time_ingest(raw: Path, out: Path, repeat: int) -> dict:
    """Ingest in a fresh process (so peak memory is ingest's own); best of `repeat`."""
    best = None
    for _ in range(repeat):
        if out.exists():
            shutil.rmtree(out)
        done = subprocess.run([sys.executable, "-c", _CHILD, str(raw), str(out)], check=True,
                              capture_output=True, text=True)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        if best is None or result["seconds"] < best["seconds"]:
            best = result
    assert best["balanced"], "rows do not balance"
    reg, sup = best["register"], best["support"]
    return {"rows_in": best["rows_in"], "seconds": round(best["seconds"], 2),
            "rows_per_second": round(best["rows_in"] / best["seconds"]),
            "cpu_seconds": round(best["cpu_seconds"], 2),
            "rows_per_cpu_second": round(best["rows_in"] / best["cpu_seconds"]),
            "peak_rss_mb": round(best["peak_rss_mb"]),
            "loaded": reg["loaded"] + sup["loaded"],
            "quarantined": reg["quarantined"] + sup["quarantined"],
            "duplicates_dropped": reg["duplicates_dropped"] + sup["duplicates_dropped"],
            "ok": best["ok"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--xlsx-rows", type=int, default=50_000,
                        help="rows of the workbook benchmark (two sheets); 0 to skip")
    parser.add_argument("--demo-households", type=int, default=60_000)
    parser.add_argument("--keep", action="store_true", help="keep the temp folder")
    args = parser.parse_args()
    os.environ.setdefault("POVDYN_PSEUDONYM_KEY", "benchmark-key-not-secret")
    tmp = Path(tempfile.mkdtemp(prefix="bench_ingest_"))
    results = {}
    try:
        raw = tmp / "raw"
        raw.mkdir()
        start = time.perf_counter()
        written = write_register_csv(raw / "register.csv", args.rows)
        size_mb = (raw / "register.csv").stat().st_size / 1e6
        print(f"wrote {written:,} rows ({size_mb:.0f} MB) in {time.perf_counter() - start:.1f} s")
        results["csv"] = time_ingest(raw, tmp / "out", args.repeat) | {"file_mb": round(size_mb)}
        print("csv:", results["csv"])
        if args.xlsx_rows:
            xraw = tmp / "xlsx"
            xraw.mkdir()
            write_register_csv(tmp / "x.csv", args.xlsx_rows)
            frame = pd.read_csv(tmp / "x.csv", dtype=str, keep_default_na=False)
            half = len(frame) // 2
            with pd.ExcelWriter(xraw / "register.xlsx", engine="openpyxl") as writer:
                frame.iloc[:half].to_excel(writer, sheet_name="2024 đợt 1", index=False)
                frame.iloc[half:].to_excel(writer, sheet_name="2024 đợt 2", index=False)
            results["xlsx"] = time_ingest(xraw, tmp / "out_xlsx", args.repeat)
            print("xlsx:", results["xlsx"])
        try:
            from povdyn.synth import write_demo
        except ImportError:
            write_demo = None
        if write_demo is not None:
            for style in ("lists", "full"):
                demo = tmp / f"demo_{style}"
                write_demo(demo, households=args.demo_households, seed=2025, style=style,
                           fmt="csv", progress=False)
                results[f"demo_{style}"] = time_ingest(demo, tmp / f"out_{style}", args.repeat)
                print(f"demo {style}:", results[f"demo_{style}"])
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
