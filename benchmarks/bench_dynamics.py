"""Flow metrics at national scale: DuckDB vs a plain-pandas baseline, and Spark local.

    .venv/bin/python benchmarks/bench_dynamics.py [--sizes 10M,135M] [--no-spark]

Data (written once, cached under benchmarks/.cache/, git-ignored): annual review panels
of H households x 5 reviews (2021-2025) as a parquet dataset with one folder per review
(hive partition period=YYYY, like one export per annual review): 2M households (10M
household-periods) and 27M households (~135M, the national register). Written by DuckDB
SQL straight to parquet (seconds, bounded memory) -- povdyn.synth.write_demo writes every
canonical column with a full behavioural model and is far slower at 27M households; for a
timing benchmark the flows only need realistic shares: ~5% poor / 4% near-poor with
persistence (80% keep their household-level class each year; the others redraw,
low-income households mostly between poor and near-poor), 3% of household-periods
missing (gaps), 1% of households removed (a removal row, nothing after), 34 provinces.

Each measurement runs in a fresh subprocess; the parent samples the RSS of the child and
all its descendants (the Spark JVM too) with psutil every 0.1 s and keeps the peak.

* duckdb: load_panel(folder) + exit_rates + relapse_rates(within=2) + entries, all by
  province (plus exits alone, for a like-for-like ratio).
* pandas: read the same parquet, sort, groupby/shift with the consecutive-period check,
  exit counts by province and period -- the straightforward way.
* spark: the same three metrics on local[2] at 10M.
Checks that pandas and DuckDB give identical exit counts. Prints one table.
The machine (2 cores) is shared with other engineers' jobs: the load average at start
and end is printed; treat the times as upper bounds.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache" / "dynamics"
SIZES = {"1M": 200_000, "10M": 2_000_000, "135M": 27_000_000}
YEARS = (2021, 2022, 2023, 2024, 2025)


# ============================================================================ data
def write_panel(households: int, out: Path, page: bool = False) -> Path:
    """Write the synthetic annual panel (module docstring) as parquet, once.

    ``page=True`` (benchmarks/bench_report.py, the national page at scale): ``out`` is a
    processed folder with one ``panel.parquet`` file (not partitioned) that also has the
    columns a report page groups by -- province_2025 (= province), commune and
    commune_2025 (40 per province), area (30% urban) and ethnic_minority (15%), all fixed
    per household, and household_size and income_pc_month (lower for the poor), which
    the early warning reads."""
    done = out / "_SUCCESS"
    if done.exists():
        return out
    import duckdb
    import pandas as pd

    provinces = pd.read_csv(Path(__file__).resolve().parents[1] / "lib" / "povdyn" / "data" /
                            "provinces_2025.csv")["province_2025"].drop_duplicates().tolist()
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        import shutil
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    con = duckdb.connect(config={"threads": 2, "memory_limit": "3GB"})
    con.execute("SET enable_progress_bar = false")
    con.execute("CREATE TEMP TABLE prov AS SELECT * FROM (SELECT unnest($1) AS name, "
                "generate_subscripts($1, 1) - 1 AS k)", [provinces])
    # u(h, salt): a deterministic uniform draw per household (and period)
    u = "(hash(h * 7919 + {salt}) % 1000000) / 1000000.0"
    page_columns = ("prov.name AS province_2025, "
                    "'Xã ' || CAST(h % 40 AS VARCHAR) AS commune, "
                    "'Xã ' || CAST(h % 40 AS VARCHAR) AS commune_2025, "
                    # income per person per month (VND) around the 2022-25 poverty line
                    # (1.5M rural), lower for poorer statuses: the early-warning model's input
                    "CAST(round(1500000 * (CASE WHEN r_keep < 0.8 AND r_class < 0.05 THEN 0.7 "
                    "WHEN r_class < 0.09 THEN 1.05 ELSE 2.5 END) * (0.8 + 0.4 * r_new)) AS DOUBLE) "
                    "AS income_pc_month, CAST(1 + h % 6 AS INT) AS household_size, "
                    "CASE WHEN r_class * 7 % 1 < 0.3 THEN 'urban' ELSE 'rural' END AS area, "
                    "r_class * 13 % 1 < 0.15 AS ethnic_minority," if page else "")
    target = tmp / "panel.parquet" if page else tmp
    partition = "" if page else "PARTITION_BY (period),"
    sql = f"""
    COPY (
      WITH hh AS (
        SELECT range AS h,
               {u.format(salt=1)} AS r_class,
               CASE WHEN {u.format(salt=2)} < 0.01
                    THEN 2022 + CAST(floor({u.format(salt=3)} * 4) AS INT) END AS removed_in,
               CAST(range % {len(provinces)} AS INT) AS k
        FROM range({households})
      ), hp AS (
        SELECT hh.*, y.period,
               (hash(h * 31 + y.period) % 1000000) / 1000000.0 AS r_keep,
               (hash(h * 37 + y.period * 3) % 1000000) / 1000000.0 AS r_new,
               (hash(h * 41 + y.period * 5) % 1000000) / 1000000.0 AS r_gap
        FROM hh CROSS JOIN (SELECT unnest({list(YEARS)}) AS period) y
        WHERE removed_in IS NULL OR y.period <= removed_in
      )
      SELECT 'HH' || lpad(CAST(h AS VARCHAR), 9, '0') AS household_id,
             CASE WHEN period = removed_in THEN NULL
                  WHEN r_keep < 0.8 THEN CASE WHEN r_class < 0.05 THEN 'poor'
                                              WHEN r_class < 0.09 THEN 'near_poor'
                                              ELSE 'non_poor' END
                  WHEN r_class < 0.09 THEN CASE WHEN r_new < 0.35 THEN 'poor'
                                                WHEN r_new < 0.70 THEN 'near_poor'
                                                ELSE 'non_poor' END
                  ELSE CASE WHEN r_new < 0.01 THEN 'poor' WHEN r_new < 0.03 THEN 'near_poor'
                            ELSE 'non_poor' END END AS status,
             prov.name AS province,
             CASE WHEN period = removed_in
                  THEN (['death', 'migration', 'split', 'merger'])[1 + CAST(h % 4 AS INT)] END
               AS removal_reason,
             CAST(1 + h % 6 AS DOUBLE) AS weight,
             {page_columns}
             period
      FROM hp JOIN prov ON hp.k = prov.k
      WHERE period = removed_in OR r_gap >= 0.03 OR period = 2021
    ) TO '{target}' (FORMAT parquet, {partition} ROW_GROUP_SIZE 1000000)
    """
    con.execute(sql)
    con.close()
    if out.exists():
        import shutil
        shutil.rmtree(out)
    tmp.rename(out)
    done.touch()
    return out


# ============================================================================ runs (child)
def run_duckdb(path: str, exits_only: bool = False) -> dict:
    import povdyn
    from povdyn import dynamics as dyn

    t0 = time.perf_counter()
    panel = povdyn.load_panel(path)
    t_load = time.perf_counter() - t0
    exits = dyn.exit_rates(panel, by="province")
    t_exits = time.perf_counter() - t0
    out = {"load_s": t_load, "exits_s": t_exits,
           "at_risk": int(exits["at_risk"].sum()), "exits": int(exits["exits"].sum()),
           "to_near_poor": int(exits["to_near_poor"].sum()),
           "to_non_poor": int(exits["to_non_poor"].sum()), "removed": int(exits["removed"].sum()),
           "rows": len(panel)}
    if not exits_only:
        relapse = dyn.relapse_rates(panel, within=2, by="province")
        entry = dyn.entries(panel, by="province")
        out.update(relapse_exits=int(relapse["exits"].sum()),
                   relapsed=int(relapse["relapsed"].sum()), entries=int(entry["entries"].sum()))
    out["seconds"] = time.perf_counter() - t0
    return out


def run_spark(path: str) -> dict:
    from povdyn import dynamics as dyn
    from povdyn.engine import spark_session
    from povdyn.panel import load_panel

    spark_session()  # JVM start-up is not part of the metric time
    t0 = time.perf_counter()
    panel = load_panel(path, engine="spark")
    exits = dyn.exit_rates(panel, by="province")
    relapse = dyn.relapse_rates(panel, within=2, by="province")
    entry = dyn.entries(panel, by="province")
    return {"seconds": time.perf_counter() - t0, "at_risk": int(exits["at_risk"].sum()),
            "exits": int(exits["exits"].sum()), "relapsed": int(relapse["relapsed"].sum()),
            "entries": int(entry["entries"].sum())}


# The same three metrics written by hand in DuckDB SQL (issue 15 §4: povdyn must stay
# within 2x of this): one pass of window functions over each household's rows (LAG /
# LEAD with the consecutive-period checks, first poor period), materialised once, then
# one aggregation per metric -- what someone fluent in SQL would write for these
# definitions (methods.md "Flow metrics"; removal rows are attrition, a gap breaks a
# transition). Same thread and memory settings as povdyn's connection.
HAND_SQL = """
WITH rows AS MATERIALIZED (
  SELECT household_id, CAST(period AS BIGINT) AS t, status, province,
         removal_reason IS NOT NULL AS removed,
         LAG(CAST(period AS BIGINT)) OVER h AS t_prev, LAG(status) OVER h AS s_prev,
         LAG(province) OVER h AS province_prev,
         LEAD(CAST(period AS BIGINT)) OVER h AS t_next1, LEAD(status) OVER h AS s_next1,
         LEAD(CAST(period AS BIGINT), 2) OVER h AS t_next2, LEAD(status, 2) OVER h AS s_next2,
         MIN(CASE WHEN status = 'poor' THEN CAST(period AS BIGINT) END)
           OVER (PARTITION BY household_id) AS first_poor
  FROM read_parquet('{glob}', hive_partitioning = true)
  WINDOW h AS (PARTITION BY household_id ORDER BY CAST(period AS BIGINT))
), exits AS (
  SELECT province_prev AS province, t,
         COUNT(*) FILTER (WHERE status IS NOT NULL) AS at_risk,
         COUNT(*) FILTER (WHERE status IN ('near_poor', 'non_poor')) AS exits,
         COUNT(*) FILTER (WHERE status = 'near_poor') AS to_near_poor,
         COUNT(*) FILTER (WHERE status = 'non_poor') AS to_non_poor,
         COUNT(*) FILTER (WHERE removed) AS removed
  FROM rows WHERE t_prev = t - 1 AND s_prev = 'poor' GROUP BY ALL
), relapse AS (
  SELECT province, t, COUNT(*) AS exits,
         COUNT(*) FILTER (WHERE followed) AS followed,
         COUNT(*) FILTER (WHERE followed AND (s_next1 = 'poor' OR s_next2 = 'poor')) AS relapsed
  FROM (SELECT *, t_next1 = t + 1 AND s_next1 IS NOT NULL
                  AND t_next2 = t + 2 AND s_next2 IS NOT NULL AS followed
        FROM rows WHERE t_prev = t - 1 AND s_prev = 'poor' AND status IN ('near_poor', 'non_poor'))
  GROUP BY ALL
), entries AS (
  SELECT province, t, COUNT(*) AS entries, COUNT(*) FILTER (WHERE first_poor < t) AS relapsed
  FROM rows
  WHERE status = 'poor' AND t > {first}
    AND NOT (t_prev IS NOT DISTINCT FROM t - 1 AND s_prev IS NOT DISTINCT FROM 'poor')
  GROUP BY ALL
)
SELECT (SELECT SUM(at_risk) FROM exits), (SELECT SUM(exits) FROM exits),
       (SELECT SUM(to_near_poor) FROM exits), (SELECT SUM(to_non_poor) FROM exits),
       (SELECT SUM(removed) FROM exits),
       (SELECT SUM(exits) FROM relapse), (SELECT SUM(relapsed) FROM relapse),
       (SELECT SUM(entries) FROM entries),
       (SELECT COUNT(*) FROM exits) + (SELECT COUNT(*) FROM relapse) + (SELECT COUNT(*) FROM entries)
"""


def run_sql(path: str) -> dict:
    """exits + relapse (within 2) + entries by province and period in hand-written
    DuckDB SQL (HAND_SQL), on a connection with povdyn's settings."""
    import duckdb

    t0 = time.perf_counter()
    con = duckdb.connect(config={"threads": int(os.environ.get("POVDYN_DUCKDB_THREADS", "2")),
                                 "memory_limit": os.environ.get("POVDYN_DUCKDB_MEMORY", "3GB")})
    con.execute("SET enable_progress_bar = false")
    glob = str(Path(path) / "**" / "*.parquet")
    row = con.execute(HAND_SQL.format(glob=glob, first=min(YEARS))).fetchone()
    keys = ["at_risk", "exits", "to_near_poor", "to_non_poor", "removed", "relapse_exits",
            "relapsed", "entries", "cells"]
    out = {k: int(v) for k, v in zip(keys, row)}
    out["seconds"] = time.perf_counter() - t0
    return out


# Whole processes, imports included (issue 15 §4: exit rates by province on ~10M rows,
# povdyn at least 5x faster than plain pandas doing the same, with less memory).
PROCESS_POVDYN = """
import sys, povdyn
exits = povdyn.exit_rates(povdyn.load_panel(sys.argv[1]), by="province")
print(int(exits["at_risk"].sum()), int(exits["exits"].sum()))
"""
PROCESS_PANDAS = """
import sys
import pandas as pd
df = pd.read_parquet(sys.argv[1], columns=["household_id", "period", "status", "province"])
df["period"] = df["period"].astype("int64")
prev = df.assign(period=df["period"] + 1).rename(
    columns={"status": "status_prev", "province": "province_prev"})
m = df.merge(prev, on=["household_id", "period"])
m = m[(m["status_prev"] == "poor") & m["status"].notna()]
m["exit"] = m["status"].isin(["near_poor", "non_poor"])
t = m.groupby(["province_prev", "period"])["exit"].agg(at_risk="size", exits="sum")
t["rate"] = t["exits"] / t["at_risk"]
print(int(t["at_risk"].sum()), int(t["exits"].sum()))
"""


def run_pandas(path: str) -> dict:
    """The straightforward pandas way to the same exit rates (by province, period t):
    poor at t-1, observed at t (previous row of the household AND period = t-1)."""
    import pandas as pd

    t0 = time.perf_counter()
    df = pd.read_parquet(path, columns=["household_id", "period", "status", "province",
                                        "removal_reason"])
    df["period"] = df["period"].astype("int64")
    df = df.sort_values(["household_id", "period"], kind="stable").reset_index(drop=True)
    g = df.groupby("household_id", sort=False)
    prev_period = g["period"].shift(1)
    prev_status = g["status"].shift(1)
    prev_province = g["province"].shift(1)
    consecutive = prev_period == df["period"] - 1
    origin = consecutive & (prev_status == "poor")
    removed = origin & df["removal_reason"].notna()
    at_risk = origin & df["status"].notna()
    flows = pd.DataFrame({
        "province": prev_province[origin | removed], "period": df["period"][origin | removed],
        "at_risk": at_risk[origin | removed],
        "exits": (at_risk & df["status"].isin(["near_poor", "non_poor"]))[origin | removed],
        "to_near_poor": (at_risk & (df["status"] == "near_poor"))[origin | removed],
        "to_non_poor": (at_risk & (df["status"] == "non_poor"))[origin | removed],
        "removed": removed[origin | removed],
    })
    table = flows.groupby(["province", "period"]).sum()
    table["rate"] = table["exits"] / table["at_risk"]
    return {"seconds": time.perf_counter() - t0, "at_risk": int(table["at_risk"].sum()),
            "exits": int(table["exits"].sum()), "to_near_poor": int(table["to_near_poor"].sum()),
            "to_non_poor": int(table["to_non_poor"].sum()), "removed": int(table["removed"].sum())}


# ============================================================================ measuring (parent)
def measure(kind: str, path: Path, timeout: float = 1800) -> dict:
    """Run one measurement in a fresh process; peak RSS of it and its descendants."""
    import psutil

    if kind in ("process_povdyn", "process_pandas"):
        code = PROCESS_POVDYN if kind == "process_povdyn" else PROCESS_PANDAS
        cmd = [sys.executable, "-c", code, str(path)]
    else:
        cmd = [sys.executable, __file__, "--child", kind, str(path)]
    # DuckDB gets 3 GB (it spills beyond): the process as a whole must stay under 4 GB
    env = dict(os.environ, POVDYN_DUCKDB_THREADS="2", POVDYN_DUCKDB_MEMORY="3GB",
               PYTHONWARNINGS="ignore")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    ps = psutil.Process(proc.pid)
    peak = 0
    start = time.time()
    while proc.poll() is None:
        try:
            rss = ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(recursive=True))
            peak = max(peak, rss)
        except psutil.Error:
            pass
        if time.time() - start > timeout:
            proc.kill()
            return {"error": "timeout"}
        time.sleep(0.1)
    out, err = proc.communicate()
    if proc.returncode != 0:
        return {"error": err.strip().splitlines()[-1] if err.strip() else f"exit {proc.returncode}"}
    if kind.startswith("process_"):  # the whole process is the measurement
        at_risk, exits = map(int, out.split())
        result = {"seconds": time.time() - start, "at_risk": at_risk, "exits": exits}
    else:
        result = json.loads(out.strip().splitlines()[-1])
    result["peak_rss_gb"] = peak / 1e9
    result["wall_s"] = time.time() - start
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10M,135M")
    ap.add_argument("--no-spark", action="store_true")
    ap.add_argument("--duckdb-only", action="store_true", help="skip pandas and Spark")
    ap.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        kind, path = args.child
        run = {"duckdb": run_duckdb, "duckdb_exits": lambda p: run_duckdb(p, exits_only=True),
               "pandas": run_pandas, "spark": run_spark, "sql": run_sql}[kind]
        print(json.dumps(run(path)))
        return 0

    print(f"load average at start: {os.getloadavg()} (2 cores, shared)")
    rows = []
    results = {}
    for size in args.sizes.split(","):
        t = time.time()
        path = write_panel(SIZES[size], CACHE / f"panel_{size}")
        print(f"[{size}] data ready in {time.time() - t:.0f} s: {path}", flush=True)
        plan = [("sql", "exits+relapse+entries"), ("duckdb", "exits+relapse+entries")]
        if size in ("1M", "10M"):
            plan.append(("duckdb_exits", "exits only"))
            if not args.duckdb_only:
                plan += [("pandas", "exits only"), ("process_povdyn", "exits, whole process"),
                         ("process_pandas", "exits, whole process")]
            if not (args.no_spark or args.duckdb_only):
                plan.append(("spark", "exits+relapse+entries"))
        for kind, what in plan:
            r = measure(kind, path)
            results[(size, kind)] = r
            print(f"[{size}] {kind}: {r}", flush=True)
            rows.append((size, kind, what, r))

    print("\nFlow metrics by province (5 annual reviews); seconds = load_panel + metrics, "
          "in a fresh process")
    print(f"{'rows':>6} {'engine':<13} {'metrics':<24} {'seconds':>8} {'peak RSS GB':>11}")
    for size, kind, what, r in rows:
        if "error" in r:
            print(f"{size:>6} {kind:<13} {what:<24} {'failed: ' + r['error']}")
        else:
            print(f"{size:>6} {kind:<13} {what:<24} {r['seconds']:8.1f} {r['peak_rss_gb']:11.2f}")
    small = "10M" if ("10M", "pandas") in results else "1M"
    d, p = results.get((small, "duckdb_exits")), results.get((small, "pandas"))
    if d and p and "error" not in d and "error" not in p:
        keys = ["at_risk", "exits", "to_near_poor", "to_non_poor", "removed"]
        same = all(d[k] == p[k] for k in keys)
        print(f"\n10M exits: pandas / DuckDB time = {p['seconds'] / d['seconds']:.1f}x, "
              f"memory = {p['peak_rss_gb'] / d['peak_rss_gb']:.1f}x; totals "
              f"{'IDENTICAL' if same else 'DIFFER'}: " + ", ".join(f"{k}={d[k]:,}" for k in keys))
        full = results.get(("10M", "duckdb"))
        if full and "error" not in full:
            print(f"10M: pandas (exits only) / DuckDB (exits+relapse+entries) = "
                  f"{p['seconds'] / full['seconds']:.1f}x")
    for size in args.sizes.split(","):
        sql, dk = results.get((size, "sql")), results.get((size, "duckdb"))
        if sql and dk and "error" not in sql and "error" not in dk:
            keys = ["at_risk", "exits", "to_near_poor", "to_non_poor", "removed"]
            same = all(sql[k] == dk[k] for k in keys) and (sql["relapse_exits"], sql["relapsed"],
                                                            sql["entries"]) == (
                dk["relapse_exits"], dk["relapsed"], dk["entries"])
            print(f"{size}: povdyn (load_panel + exits + relapse + entries) / hand-written DuckDB "
                  f"SQL = {dk['seconds']:.1f} s / {sql['seconds']:.1f} s = "
                  f"{dk['seconds'] / sql['seconds']:.2f}x (target <= 2); peak {dk['peak_rss_gb']:.2f} vs "
                  f"{sql['peak_rss_gb']:.2f} GB; totals {'IDENTICAL' if same else 'DIFFER'}")
        pp, pd_ = results.get((size, "process_povdyn")), results.get((size, "process_pandas"))
        if pp and pd_ and "error" not in pp and "error" not in pd_:
            same = (pp["at_risk"], pp["exits"]) == (pd_["at_risk"], pd_["exits"])
            print(f"{size}: whole process (python -c, imports included), exit rates by province: "
                  f"pandas / povdyn = {pd_['seconds']:.1f} s / {pp['seconds']:.1f} s = "
                  f"{pd_['seconds'] / pp['seconds']:.1f}x (target >= 5); peak memory pandas "
                  f"{pd_['peak_rss_gb']:.2f} GB vs povdyn {pp['peak_rss_gb']:.2f} GB; counts "
                  f"{'IDENTICAL' if same else 'DIFFER'}")
    big = results.get(("135M", "duckdb"))
    if big and "error" not in big:
        print(f"135M ({big['rows']:,} rows): {big['seconds']:.1f} s (target < 60), peak "
              f"{big['peak_rss_gb']:.2f} GB (target < 4)")
    print(f"load average at end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent / "lib"))
    sys.exit(main())
