"""An automated differencing attacker for published tables (issue 13 §3; methods.md,
Disclosure control). Test utility, not part of the library: it plays the outsider who
reads a page and tries to work out the hidden counts.

Given the published cells of a page (a number, or None where the page shows "<10", "x"
or "—"), the relations the page implies (a total and its parts: rows, columns, group
splits, flows, communes against their province) and the printed shares (share, its
numerator cell, its denominator cell), it

1. takes every relation with exactly one unknown cell and computes it (total − parts,
   or parts from the total), again and again while that finds something;
2. takes every printed share: share × denominator gives a hidden numerator, numerator
   / share a hidden denominator, whenever the rounding of the printed share leaves one
   integer possible;
3. solves all relations together (linear algebra): an unknown that is the same in every
   solution is recovered;
4. reads every printed change ("vs same period last year"): a count's change gives
   this year − last year = change (a relation with a known constant), and a rate's
   change in points gives last year's rate (rate − change), a share like the others
   but twice as coarse (two printed roundings).

``attack`` returns every recovered hidden cell with its value; ``small_recovered``
keeps those below the threshold — the disclosure the suppression must prevent.
"""
from __future__ import annotations

from typing import Hashable, Iterable, Mapping

import numpy as np
import pandas as pd

HIDDEN_MARKS = {"—", "x"}


def _unknown(value) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return True  # "<10", "x", "—"
    return bool(pd.isna(value))


def published_cells(df: pd.DataFrame, count_cols, table: Hashable = None) -> dict:
    """{(table, row, column): number or None} from a rendered table ("<10", "x" -> None)."""
    out = {}
    for col in count_cols:
        for row, v in zip(df.index, df[col]):
            out[(table, row, col)] = None if _unknown(v) else float(v)
    return out


def _as_relations(relations):
    out = []
    for r in relations:
        total, parts = (r.total, r.parts) if hasattr(r, "total") else (r[0], r[1])
        out.append((total, tuple(parts)))
    return out


def attack(published: Mapping, relations: Iterable, shares: Iterable = (),
           share_decimals: int = 1, changes: Iterable = (), rate_changes: Iterable = ()) -> dict:
    """Recovered hidden cells {key: value}. ``shares``: (printed share as a proportion
    or None if hidden, numerator key, denominator key); printed as a percentage with
    ``share_decimals`` decimals. ``changes``: (printed change of a count or None, this
    period's cell, the earlier period's cell). ``rate_changes``: (printed change in
    points or None, printed rate now as a proportion or None, the earlier period's
    numerator cell, its denominator cell)."""
    published = dict(published)
    rels = _as_relations(relations)
    for i, (change, now, then) in enumerate(changes):  # now = then + change
        if not _unknown(change):
            published[("_change", i)] = float(change)
            rels.append((now, (then, ("_change", i))))
    known = {k: v for k, v in published.items() if not _unknown(v)}
    unknown = {k for k, v in published.items() if _unknown(v)}
    half = 0.5 * 10.0 ** (-share_decimals) / 100
    shares = [(s, n, d, half) for s, n, d in shares if not _unknown(s)]
    shares += [(rate - change / 100, n, d, 2 * half) for change, rate, n, d in rate_changes
               if not _unknown(change) and not _unknown(rate)]
    recovered: dict = {}

    def learn(key, value):
        known[key] = value
        unknown.discard(key)
        recovered[key] = value

    progress = True
    while progress:
        progress = False
        for total, parts in rels:  # 1. total - parts
            cells = (total,) + parts
            missing = [c for c in cells if c in unknown]
            if len(missing) != 1:
                continue
            m = missing[0]
            if m == total:
                learn(m, sum(known[p] for p in parts))
            else:
                learn(m, known[total] - sum(known[p] for p in parts if p != m))
            progress = True
        for share, num, den, half_width in shares:  # 2. share x total, count / share
            if num in unknown and den in known:
                if known[den] * 2 * half_width < 1:  # one integer fits the rounding
                    learn(num, round(share * known[den]))
                    progress = True
            elif den in unknown and num in known and share > 0:
                low, high = known[num] / (share + half_width), known[num] / max(share - half_width, 1e-12)
                candidates = [d for d in range(int(np.ceil(low)), int(np.floor(high)) + 1)]
                if len(candidates) == 1:
                    learn(den, candidates[0])
                    progress = True
        if not progress and unknown:  # 3. all relations together
            found = _joint(known, unknown, rels)
            for key, value in found.items():
                learn(key, value)
                progress = True
    return {k: v for k, v in recovered.items() if not (isinstance(k, tuple) and k[:1] == ("_change",))}


def _joint(known: dict, unknown: set, rels) -> dict:
    from scipy.linalg import null_space

    cells = sorted(unknown, key=str)
    position = {c: j for j, c in enumerate(cells)}
    rows, rhs = [], []
    for total, parts in rels:
        row = np.zeros(len(cells))
        b = 0.0
        touched = False
        for sign, cell in [(-1.0, total)] + [(1.0, p) for p in parts]:
            if cell in position:
                row[position[cell]] += sign
                touched = True
            else:
                b -= sign * known[cell]
        if touched:
            rows.append(row)
            rhs.append(b)
    if not rows:
        return {}
    a = np.array(rows)
    solution = np.linalg.lstsq(a, np.array(rhs), rcond=None)[0]
    basis = null_space(a)
    free = np.abs(basis).max(axis=1) > 1e-9 if basis.size else np.zeros(len(cells), bool)
    return {c: float(np.round(solution[j], 6)) for j, c in enumerate(cells) if not free[j]}


def small_recovered(published: Mapping, truth: Mapping, relations: Iterable, shares: Iterable = (),
                    min_cell: int = 10, share_decimals: int = 1, changes: Iterable = (),
                    rate_changes: Iterable = ()) -> dict:
    """Recovered hidden cells whose true count is below ``min_cell`` (and the attack's
    value agrees with the truth): the disclosures."""
    found = attack(published, relations, shares, share_decimals, changes, rate_changes)
    return {k: v for k, v in found.items()
            if truth[k] < min_cell and abs(v - truth[k]) < 0.5}


def bounds_attack(published: Mapping, marks: Mapping, relations: Iterable, min_cell: int = 10) -> dict:
    """Hidden cells pinned to one integer by the relations and what the labels say
    ("<10": 0..min_cell-1; "x": at least min_cell; every count >= 0): the least and
    greatest value of each hidden cell are two linear programmes. Slow (two LPs per
    cell): for small tables."""
    from scipy.optimize import linprog

    hidden = [k for k, v in published.items() if _unknown(v)]
    position = {c: j for j, c in enumerate(hidden)}
    rows, rhs = [], []
    for total, parts in _as_relations(relations):
        row = np.zeros(len(hidden))
        b = 0.0
        for sign, cell in [(-1.0, total)] + [(1.0, p) for p in parts]:
            if cell in position:
                row[position[cell]] += sign
            else:
                b -= sign * published[cell]
        if row.any():
            rows.append(row)
            rhs.append(b)
    if not rows:
        return {}
    bounds = [(0, min_cell - 1) if str(marks.get(c, "")).startswith("<") else
              (min_cell, None) if marks.get(c) == "x" else (0, None) for c in hidden]
    pinned = {}
    for cell in hidden:
        objective = np.zeros(len(hidden))
        objective[position[cell]] = 1.0
        low = linprog(objective, A_eq=np.array(rows), b_eq=np.array(rhs), bounds=bounds, method="highs")
        high = linprog(-objective, A_eq=np.array(rows), b_eq=np.array(rhs), bounds=bounds, method="highs")
        if low.status == 0 and high.status == 0 and np.floor(-high.fun + 1e-6) - np.ceil(low.fun - 1e-6) < 1:
            pinned[cell] = float(np.round(low.fun))
    return pinned
