"""Secondary (complementary) suppression: small counts that subtraction cannot bring back.

methods.md, Disclosure control: counts below the threshold (default 10) are hidden
(primary), and "wherever a table publishes a total and its parts (splits, groups, flows,
communes within a province), hide enough further cells that no hidden count can be
recovered by subtraction or from a printed share; prefer hiding the smallest cells."

Hiding a small cell alone is not enough: "exits 25, of which to near-poor 16" gives the
hidden exits to non-poor (9) back, and "urban 36, total 45" gives the rural cell. A table
is described as cells (any hashable key, e.g. (table, row, column)) with counts, and
*relations*: a total cell and the cells that add up to it (rows, columns, group splits,
flows, communes against their province, across tables of one page). Then:

1. **Primary**: every count below ``min_cell`` (zero included) is hidden.
2. **Complementary, relation by relation** (the 1-D rule of tau-argus and sdcMicro): a
   relation with exactly one hidden cell gives it back by subtraction, so one more cell
   of that relation is hidden — the one that starts the fewest new such problems in
   its other relations (ideally a cell whose other relations already hide one: the
   corner of a hidden rectangle, the "hypercube" idea for 2-D tables), then a part
   before a total, then the smallest count.
3. **Joint check**: step 2 alone can leave a cell that a combination of several
   relations determines (2-D and linked tables). The hidden cells solve a linear
   system (relations, with shown cells as constants); a hidden cell is determined
   exactly when it is constant over the system's null space. For every determined
   cell one more cell of one of its relations is hidden (step 2's order), and steps
   2–3 repeat until no hidden cell is determined. The loop ends: each round hides a
   cell.
4. **Rates and shares**: a rate, share or interval built on a hidden count is hidden
   (rate × denominator would give the count back, and count / rate the denominator).

What this protects and what it does not: no hidden count can be computed exactly from
the published counts, totals and shares by any sequence of additions and subtractions
(exact linear disclosure). It does not give tau-argus's interval ("protection level")
guarantee: with the knowledge that a hidden cell marked "<10" lies in 0–9, a hidden
pair can sometimes be narrowed to a short range. Cells hidden only to protect others
are shown as ``SUPPRESSED_SECONDARY`` ("x"), so that the page can say they are not
small themselves.

Functions:

* ``linked_suppression(values, relations, min_cell)`` -> status of every cell
  ("", "primary", "secondary"); the core, for any set of linked tables.
* ``table_cells(df, count_cols, table)``, ``table_relations(...)`` describe a wide
  table (rows x count columns) with total rows and total columns.
* ``suppress_table(df, count_cols, rate_cols, row_totals=, col_totals=, ...)``: one
  table in, the published table out ("<10", "x", "—"), like
  ``privacy.suppress_small_cells`` but safe against subtraction.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from .config import settings

PRIMARY = "primary"
SECONDARY = "secondary"
SUPPRESSED_SECONDARY = "x"  # a count hidden so that a small one cannot be worked out
SUPPRESSED_RATE = "—"


@dataclass(frozen=True)
class Relation:
    """``total`` = sum of ``parts`` (cell keys)."""

    total: Hashable
    parts: tuple

    @property
    def cells(self) -> tuple:
        return (self.total,) + tuple(self.parts)


def _relations(relations: Iterable) -> list[Relation]:
    out = []
    for r in relations:
        out.append(r if isinstance(r, Relation) else Relation(r[0], tuple(r[1])))
    return out


def determined_cells(hidden: Sequence[Hashable], relations: Sequence[Relation],
                     tolerance: float = 1e-9) -> set:
    """Hidden cells whose value follows exactly from the relations and the shown cells.

    Each relation is one linear equation; shown cells are constants. Over the hidden
    cells the equations are ``A x = b``; x_j is determined iff it is the same in every
    solution, i.e. row j of a basis of A's null space is zero."""
    from scipy.linalg import null_space

    hidden = list(hidden)
    position = {cell: j for j, cell in enumerate(hidden)}
    rows = []
    for rel in relations:
        row = np.zeros(len(hidden))
        touched = False
        for sign, cell in [(-1.0, rel.total)] + [(1.0, p) for p in rel.parts]:
            if cell in position:
                row[position[cell]] += sign
                touched = True
        if touched:
            rows.append(row)
    if not hidden:
        return set()
    if not rows:
        return set()
    basis = null_space(np.array(rows))
    free = np.abs(basis).max(axis=1) > tolerance if basis.size else np.zeros(len(hidden), bool)
    return {cell for cell, is_free in zip(hidden, free) if not is_free}


def linked_suppression(values: Mapping | pd.Series, relations: Iterable,
                       min_cell: int | None = None, hidden: Iterable = ()) -> pd.Series:
    """Status of each cell: "" (shown), "primary" (a count below ``min_cell``, or listed
    in ``hidden``) or "secondary" (hidden so that no primary cell can be worked out).

    ``values``: count of each cell (Series or mapping, keyed by any hashable cell key;
    missing values are cells that are not published). ``relations``: ``Relation`` or
    (total, parts) pairs. See the module docstring for the rule (methods.md,
    Disclosure control)."""
    values = pd.Series(values, dtype=float) if not isinstance(values, pd.Series) else values.astype(float)
    min_cell = settings().min_cell if min_cell is None else min_cell
    relations = _relations(relations)
    known = set(values.index)
    for rel in relations:
        missing = [c for c in rel.cells if c not in known]
        if missing:
            raise KeyError(f"linked_suppression: relation {rel} names cells {missing[:5]} "
                           "that have no value")
    status = pd.Series("", index=values.index, dtype=object)
    status[values.notna() & (values < min_cell)] = PRIMARY
    for cell in hidden:
        status[cell] = PRIMARY
    unpublished = set(values.index[values.isna()])
    of_cell: dict = {}
    totals = set()
    for k, rel in enumerate(relations):
        totals.add(rel.total)
        for cell in rel.cells:
            of_cell.setdefault(cell, []).append(k)
    hidden_set = set(status.index[status != ""]) | unpublished

    def hidden_in(rel: Relation) -> int:
        """Unknown cells of a relation (hidden or not published)."""
        return sum(c in hidden_set for c in rel.cells)

    def leaks_alone(rel: Relation) -> bool:
        """Exactly one unknown, and it is a hidden count: subtraction gives it back."""
        unknown = [c for c in rel.cells if c in hidden_set]
        return len(unknown) == 1 and unknown[0] not in unpublished

    def best_candidate(rel: Relation):
        shown = [c for c in rel.cells if c not in hidden_set]
        if not shown:
            return None

        def cost(cell):
            new_singles = sum(1 for k in of_cell.get(cell, ()) if relations[k] is not rel
                              and hidden_in(relations[k]) == 0)
            return (new_singles, cell in totals, values[cell])
        return min(shown, key=cost)

    def hide(cell):
        status[cell] = SECONDARY
        hidden_set.add(cell)

    while True:
        changed = True
        while changed:  # step 2: no relation with exactly one hidden cell
            changed = False
            for rel in relations:
                if leaks_alone(rel):
                    cell = best_candidate(rel)
                    if cell is not None:
                        hide(cell)
                        changed = True
        hidden_now = [c for c in status.index if c in hidden_set and c not in unpublished]
        leaks = determined_cells(hidden_now + sorted(unpublished, key=str), relations)
        leaks -= unpublished
        if not leaks:
            return status
        # step 3: one more cell in a relation of each determined cell, smallest first
        progressed = False
        for cell in sorted(leaks, key=lambda c: values[c]):
            if cell not in leaks:
                continue
            options = [best_candidate(relations[k]) for k in of_cell.get(cell, ())]
            options = [o for o in options if o is not None]
            if not options:
                continue
            hide(min(options, key=lambda c: (c in totals, values[c])))
            progressed = True
            break
        if not progressed:  # pragma: no cover - every relation fully hidden already
            return status


# ------------------------------------------------------------------ wide tables

def table_cells(df: pd.DataFrame, count_cols: Sequence[str], table: Hashable = None) -> pd.Series:
    """Counts of a wide table as cells keyed (table, row label, column)."""
    keys, vals = [], []
    for col in count_cols:
        numeric = pd.to_numeric(df[col], errors="coerce")
        for row, v in zip(df.index, numeric):
            keys.append((table, row, col))
            vals.append(v)
    return pd.Series(vals, index=pd.Index(keys, tupleize_cols=False), dtype=float)


def table_relations(df: pd.DataFrame, count_cols: Sequence[str], table: Hashable = None,
                    row_totals: Mapping | None = None, col_totals: Mapping | None = None,
                    relations: Iterable = ()) -> list[Relation]:
    """Relations of a wide table.

    ``row_totals``: {total row label: [part row labels]} — in every count column the
    total row's cell is the sum of the parts' cells (a total row, a group split, exits
    = exits to near-poor + exits to non-poor). ``col_totals``: {total column: [part
    columns]} — on every row. ``relations``: further ((row, col), [(row, col), ...])
    pairs inside the table."""
    out = []
    for total, parts in (row_totals or {}).items():
        for col in count_cols:
            out.append(Relation((table, total, col), tuple((table, p, col) for p in parts)))
    for total, parts in (col_totals or {}).items():
        for row in df.index:
            out.append(Relation((table, row, total), tuple((table, row, p) for p in parts)))
    for total, parts in relations:
        out.append(Relation((table,) + tuple(total), tuple((table,) + tuple(p) for p in parts)))
    return out


def render(df: pd.DataFrame, status: pd.Series, count_cols: Sequence[str],
           rate_cols: Sequence[str] = (), rate_basis: Mapping | None = None,
           table: Hashable = None, min_cell: int | None = None) -> pd.DataFrame:
    """The published table: primary cells "<10", secondary "x", and every rate column
    "—" on rows where a count it rests on is hidden (``rate_basis``: {rate column:
    count column or tuple of them}; without an entry, every count column of the row).
    ``result.attrs["suppressed"]`` counts primary and secondary cells."""
    min_cell = settings().min_cell if min_cell is None else min_cell
    out = df.copy()
    hidden_rows: dict = {}
    for col in count_cols:
        marks = [status.get((table, row, col), "") for row in df.index]
        shown = df[col].astype(object)
        out[col] = [f"<{min_cell}" if m == PRIMARY else SUPPRESSED_SECONDARY if m == SECONDARY
                    else v for m, v in zip(marks, shown)]
        hidden_rows[col] = np.array([m != "" for m in marks])
    for col in rate_cols:
        basis = (rate_basis or {}).get(col, tuple(count_cols))
        basis = (basis,) if isinstance(basis, str) else tuple(basis)
        hide = np.zeros(len(df), bool)
        for count in basis:
            hide |= hidden_rows[count]
        out[col] = df[col].astype(object).where(~hide, SUPPRESSED_RATE)
    marks = [status.get((table, row, col), "") for col in count_cols for row in df.index]
    out.attrs["suppressed"] = {PRIMARY: marks.count(PRIMARY), SECONDARY: marks.count(SECONDARY)}
    return out


def suppress_table(df: pd.DataFrame, count_cols: Sequence[str], rate_cols: Sequence[str] = (),
                   *, row_totals: Mapping | None = None, col_totals: Mapping | None = None,
                   relations: Iterable = (), rate_basis: Mapping | None = None,
                   min_cell: int | None = None) -> pd.DataFrame:
    """One published table with primary and complementary suppression (module docstring).

    ``df``: rows (index labels name them in ``row_totals``) by count columns, plus rate
    columns. ``row_totals`` / ``col_totals`` / ``relations`` say which cells are totals
    of which (``table_relations``). Returns a copy with hidden counts as "<10"
    (primary) or "x" (secondary) and rates on hidden counts as "—"; counts become
    object dtype. Example: headline rows "exits" (25), "exits_near_poor" (16),
    "exits_non_poor" (9) with ``row_totals={"exits": ["exits_near_poor",
    "exits_non_poor"]}``: 9 -> "<10" and 16 -> "x", so 25 − 16 no longer gives 9."""
    count_cols = list(count_cols)
    values = table_cells(df, count_cols)
    rels = table_relations(df, count_cols, row_totals=row_totals, col_totals=col_totals,
                           relations=relations)
    status = linked_suppression(values, rels, min_cell=min_cell)
    return render(df, status, count_cols, rate_cols, rate_basis, min_cell=min_cell)
