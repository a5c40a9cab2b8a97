"""Secondary suppression of commune tables (issue 13 §3): time, against cell-only masking.

    .venv/bin/python benchmarks/bench_suppression.py [--communes 300] [--national]

Tables like a province page's commune table: one row per commune (households, poor,
near-poor, exits = exits to near-poor + exits to non-poor; counts drawn so that most
communes are small, as after the 2025 reform) and a total row, the province's published
figures. ``povdyn.suppression.suppress_table`` with the total row and the exit split as
relations, then the attacker of ``tests/differencing_attack.py`` (total − parts, joint
solve) over the published table: it must recover no hidden count.

Baseline: cell-only masking in plain pandas (every count below 10 -> NaN), the step
secondary suppression adds to -- the ratio says what protection against differencing
costs. ``--national``: 3,321 communes in 34 provinces with province total rows (printed
on the province pages, so passed as shown cells) and a national total row: the
provinces are independent blocks and are solved one by one.

Measured against the previous algorithm (povdyn at ba1bb11), same tables, same cell
statuses, the machine shared (load 4-5, no lock): the 300-commune table 11.4 s -> 2.4 s;
the 3,321-commune national table had not finished after 240 s and now takes 1.2 s (the
34 provinces are independent blocks). The load average is printed with each run.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))


def commune_table(n: int, seed: int = 0, prefix: str = "c") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    hh = rng.integers(40, 3000, n)
    poor = rng.binomial(hh, rng.uniform(0.002, 0.06, n))
    near = rng.binomial(hh, rng.uniform(0.005, 0.05, n))
    exits = rng.binomial(poor + 5, 0.3)
    to_near = rng.binomial(exits, 0.6)
    return pd.DataFrame({"households": hh, "poor": poor, "near_poor": near, "exits": exits,
                         "to_near_poor": to_near, "to_non_poor": exits - to_near},
                        index=[f"{prefix}{i:04d}" for i in range(n)])


def with_total(df: pd.DataFrame, name: str = "total") -> pd.DataFrame:
    out = df.copy()
    out.loc[name] = df.sum()
    return out


def cell_only(df: pd.DataFrame, min_cell: int = 10) -> pd.DataFrame:
    return df.where(df >= min_cell)


def timed(fn, repeat: int = 1):
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return out, best


def one_province(n: int) -> None:
    from differencing_attack import published_cells, small_recovered

    from povdyn.suppression import table_cells, table_relations, suppress_table

    df = with_total(commune_table(n))
    cols = list(df.columns)
    row_totals = {"total": [i for i in df.index if i != "total"]}
    col_totals = {"exits": ["to_near_poor", "to_non_poor"]}
    shown, seconds = timed(lambda: suppress_table(df, cols, row_totals=row_totals, col_totals=col_totals,
                                                  min_cell=10))
    _, base = timed(lambda: cell_only(df), repeat=5)
    relations = table_relations(df, cols, row_totals=row_totals, col_totals=col_totals)
    truth = table_cells(df, cols).to_dict()
    leaks = small_recovered(published_cells(shown, cols), truth, relations)
    print(f"{n} communes, one province: suppress_table {seconds:.2f} s "
          f"(primary {shown.attrs['suppressed']['primary']}, secondary {shown.attrs['suppressed']['secondary']}); "
          f"cell-only pandas {base * 1000:.2f} ms; ratio {seconds / base:,.0f}x; "
          f"small counts recovered by the attacker: {len(leaks)}")


def national(n_provinces: int = 34, communes: int = 3321) -> None:
    from povdyn.suppression import Relation, linked_suppression, table_cells, table_relations

    sizes = np.full(n_provinces, communes // n_provinces)
    sizes[: communes - sizes.sum()] += 1
    frames = [commune_table(int(k), seed=p, prefix=f"p{p:02d}c") for p, k in enumerate(sizes)]
    cols = list(frames[0].columns)
    values, relations, shown = [], [], []
    province_totals = {}
    for p, f in enumerate(frames):
        t = with_total(f, f"p{p:02d}")
        values.append(table_cells(t, cols, table=p))
        relations += table_relations(t, cols, table=p, row_totals={f"p{p:02d}": list(f.index)},
                                     col_totals={"exits": ["to_near_poor", "to_non_poor"]})
        shown += [(p, f"p{p:02d}", c) for c in cols]
        province_totals[p] = t.loc[f"p{p:02d}"]
    nat = pd.DataFrame(province_totals).T.sum()
    values.append(pd.Series({("nat", "total", c): float(nat[c]) for c in cols}))
    relations += [Relation(("nat", "total", c), tuple((p, f"p{p:02d}", c) for p in range(n_provinces)))
                  for c in cols]
    cells = pd.concat(values)
    status, seconds = timed(lambda: linked_suppression(cells, relations, min_cell=10, shown=shown))
    whole = pd.concat(frames)
    _, base = timed(lambda: cell_only(whole), repeat=5)
    print(f"{communes} communes in {n_provinces} provinces: linked_suppression {seconds:.2f} s "
          f"(primary {(status == 'primary').sum()}, secondary {(status == 'secondary').sum()}); "
          f"cell-only pandas {base * 1000:.2f} ms; ratio {seconds / base:,.0f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--communes", type=int, default=300)
    ap.add_argument("--national", action="store_true", help="also the 3,321-commune national table")
    args = ap.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    one_province(args.communes)
    if args.national:
        national()
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
