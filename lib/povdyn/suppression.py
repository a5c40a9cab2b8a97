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

5. **Bounds**: the labels tell the reader that a "<10" cell lies in 0–9 and an "x"
   cell is at least 10. A shown total 18 over two "<10" cells makes both 9. The range
   each hidden cell can take is narrowed relation by relation (interval propagation);
   when one integer is left for a small cell, one more cell of its relations is hidden
   (as in step 3) and the loop goes on.
6. **Prune**: the greedy steps can leave a complementary cell that later ones made
   redundant; each is shown again (largest first) when the table stays safe without it.

What this protects and what it does not: no hidden count can be computed exactly from
the published counts, totals and shares, by subtraction, by solving the relations
together, or by the bounds the labels give. It does not give tau-argus's wider
interval ("protection level") guarantee: a hidden small count can be narrowed to a
range of a few values. Cells hidden only to protect others are shown as
``SUPPRESSED_SECONDARY`` ("x"), so that the page can say they are not small themselves.

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
    solution, i.e. iff the unit vector e_j lies in A's row space: the j-th diagonal
    element of the row-space projector (the squared row norms of an orthonormal basis
    of that space, from a pivoted QR of A transposed) is 1.

    Before the linear algebra the system is peeled: an equation holding a cell that no other
    equation holds (and at least one more cell) constrains nothing else -- whatever the
    others are, that cell can make it hold -- so it is set aside, and that cell is
    determined exactly when all the other cells of its equation are (decided last, in
    reverse order). What is left is solved by blocks of linked cells, and is usually
    small: a commune table's column of hidden counts against its total peels away
    whole."""
    hidden = list(hidden)
    if not hidden:
        return set()
    position = {cell: j for j, cell in enumerate(hidden)}
    rows = []
    for rel in relations:
        entries: dict = {}
        for sign, cell in [(-1.0, rel.total)] + [(1.0, p) for p in rel.parts]:
            j = position.get(cell)
            if j is not None:
                entries[j] = entries.get(j, 0.0) + sign
        entries = {j: v for j, v in entries.items() if v != 0.0}
        if entries:
            rows.append(entries)
    if not rows:
        return set()
    # peel: equations with a cell of their own (and another cell) are set aside
    holders: dict = {}
    for i, entries in enumerate(rows):
        for j in entries:
            holders.setdefault(j, set()).add(i)
    alive = [True] * len(rows)
    peeled = []  # (equation, its own cell), in peeling order
    queue = [j for j, h in holders.items() if len(h) == 1]
    while queue:
        j = queue.pop()
        h = holders.get(j, ())
        if len(h) != 1:
            continue
        i = next(iter(h))
        if len(rows[i]) < 2 or not alive[i]:
            continue
        alive[i] = False
        peeled.append((i, j))
        for other in rows[i]:
            holders[other].discard(i)
            if len(holders[other]) == 1:
                queue.append(other)
    determined = _determined_core([rows[i] for i in range(len(rows)) if alive[i]],
                                  tolerance)
    for i, j in reversed(peeled):
        if all(other in determined for other in rows[i] if other != j):
            determined.add(j)
    return {hidden[j] for j in determined}


def _linked_groups(items, cells_of) -> list[list]:
    """``items`` grouped so that two items sharing a cell (directly, or through other
    items) are in one group (union-find over the cells); groups and their members keep
    the order of first appearance."""
    parent: dict = {}

    def find(c):
        root = c
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(c, c) != root:
            parent[c], c = root, parent[c]
        return root

    items = list(items)
    for item in items:
        cells = cells_of(item)
        root = find(cells[0])
        for c in cells[1:]:
            other = find(c)
            if other != root:
                parent[other] = root
    groups: dict = {}
    for item in items:
        groups.setdefault(find(cells_of(item)[0]), []).append(item)
    return list(groups.values())


def _determined_core(rows: list, tolerance: float) -> set:
    """Positions determined by the equations ``rows`` ({position: coefficient}), solved
    by blocks of linked cells (``determined_cells``)."""
    from scipy.linalg import qr

    if not rows:
        return set()
    out = set()
    # blocks: hidden cells linked through the relations
    for members in _linked_groups(range(len(rows)), lambda i: list(rows[i])):
        cols = sorted({j for i in members for j in rows[i]})
        local = {j: k for k, j in enumerate(cols)}
        a = np.zeros((len(members), len(cols)))
        for r, i in enumerate(members):
            for j, v in rows[i].items():
                a[r, local[j]] = v
        # an orthonormal basis of A's row space: rank-revealing (pivoted) QR of A^T,
        # 2-3x faster than an SVD on these +-1 systems and as reliable for the rank
        q, r, _ = qr(a.T, mode="economic", pivoting=True)
        diagonal = np.abs(np.diag(r))
        rank = int((diagonal > max(a.shape) * np.finfo(float).eps * (diagonal.max() if diagonal.size else 0.0)).sum())
        in_row_space = (q[:, :rank] ** 2).sum(axis=1) > 1 - tolerance
        out.update(cols[k] for k in np.flatnonzero(in_row_space))
    return out


def pinned_cells(values: Mapping, status: Mapping, relations: Sequence[Relation],
                 min_cell: int, rounds: int = 50) -> set:
    """Primary cells that the published cells, the relations and what the labels say
    pin to one integer: a primary cell ("<10") lies in 0..min_cell-1, a secondary one
    ("x") is at least min_cell, an unpublished one at least 0. E.g. a shown total 18 of
    two hidden parts marked "<10" makes both 9.

    Interval propagation: each relation narrows the range of each of its unknown cells
    (a part lies between the total's least value minus the others' greatest, and the
    total's greatest minus the others' least; a total between the sums of its parts'
    bounds), repeated until nothing narrows. The ranges are always valid, so a pinned
    cell is truly pinned; a linear programme could narrow further in rare linked cases
    (tests/differencing_attack.py checks that on small tables). ``values`` and
    ``status``: Series or dicts keyed by cell."""
    low: dict = {}
    high: dict = {}
    keys = values.index if isinstance(values, pd.Series) else values.keys()
    for cell in keys:
        mark = status.get(cell, "")
        v = values[cell]
        if mark == PRIMARY:
            low[cell], high[cell] = 0.0, float(min_cell - 1)
        elif mark == SECONDARY:
            low[cell], high[cell] = float(min_cell), np.inf
        elif v != v:  # not published
            low[cell], high[cell] = 0.0, np.inf
        else:
            low[cell] = high[cell] = float(v)
    open_relations = [r for r in relations if any(low[c] != high[c] for c in r.cells)]
    for _ in range(rounds):
        changed = False
        for rel in open_relations:
            parts_low = sum(low[p] for p in rel.parts)
            finite_high = [high[p] for p in rel.parts if high[p] != np.inf]
            unbounded = len(rel.parts) - len(finite_high)  # parts with no upper bound
            finite_sum = sum(finite_high)
            parts_high = np.inf if unbounded else finite_sum
            total = rel.total
            candidates = [(total, parts_low, parts_high)]
            for part in rel.parts:
                others_low = parts_low - low[part]
                mine_unbounded = high[part] == np.inf
                others_high = (np.inf if unbounded - mine_unbounded > 0
                               else finite_sum - (0.0 if mine_unbounded else high[part]))
                candidates.append((part, low[total] - others_high, high[total] - others_low))
            for cell, new_low, new_high in candidates:
                if low[cell] == high[cell]:
                    continue
                if new_low > low[cell] + 1e-9:
                    low[cell] = np.ceil(new_low - 1e-9)
                    changed = True
                if new_high < high[cell] - 1e-9:
                    high[cell] = np.floor(new_high + 1e-9)
                    changed = True
        if not changed:
            break
    marks = status.items() if isinstance(status, (dict, pd.Series)) else status
    return {c for c, m in marks if m == PRIMARY and high[c] - low[c] < 1}


def linked_suppression(values: Mapping | pd.Series, relations: Iterable,
                       min_cell: int | None = None, hidden: Iterable = (),
                       interval_check: bool = True, shown: Iterable = ()) -> pd.Series:
    """Status of each cell: "" (shown), "primary" (a count below ``min_cell``, or listed
    in ``hidden``) or "secondary" (hidden so that no primary cell can be worked out).

    ``values``: count of each cell (Series or mapping, keyed by any hashable cell key;
    missing values are cells that are not published). ``relations``: ``Relation`` or
    (total, parts) pairs. See the module docstring for the rule (methods.md,
    Disclosure control). ``interval_check`` (default on) also closes the cases where
    the labels' bounds pin a hidden small count (``pinned_cells``). ``shown``: cells
    that stay shown whatever happens (a total printed on another table of the page),
    never chosen as complements.

    Independent blocks are solved one by one, with the same result as all at once: a
    shown cell that can never be hidden (in ``shown`` and not small) is a constant, so
    relations link only the cells that may be hidden, and a block of cells no relation
    links to another (e.g. the communes of one province, against its published total)
    decides its cells alone. Cells and statuses are plain dicts inside (a pandas
    lookup per cell made a 300-commune table take 46 s)."""
    values = pd.Series(values, dtype=float) if not isinstance(values, pd.Series) else values.astype(float)
    min_cell = settings().min_cell if min_cell is None else min_cell
    relations = _relations(relations)
    index = values.index
    val = dict(zip(index, values.to_numpy(dtype=float)))
    for rel in relations:
        missing = [c for c in rel.cells if c not in val]
        if missing:
            raise KeyError(f"linked_suppression: relation {rel} names cells {missing[:5]} "
                           "that have no value")
    status = {c: (PRIMARY if v == v and v < min_cell else "") for c, v in val.items()}
    for cell in hidden:
        status[cell] = PRIMARY
    unpublished = {c for c, v in val.items() if v != v}
    fixed = set(shown)
    constant = {c for c in fixed if status.get(c) == "" and c not in unpublished}
    # blocks of cells that may be hidden, linked by relations; a relation of constants
    # only constrains nothing that could be hidden
    def variable(rel):
        return [c for c in rel.cells if c not in constant]

    live = [rel for rel in relations if variable(rel)]
    for block_relations in _linked_groups(live, variable):
        _solve_block(val, status, block_relations, min_cell, unpublished, fixed, interval_check)
    return pd.Series([status[c] for c in index], index=index, dtype=object)


def _solve_block(val: dict, status: dict, relations: list, min_cell: int, unpublished: set,
                 fixed: set, interval_check: bool) -> None:
    """Steps 2-6 of the module docstring on one block of linked cells (``status`` is
    updated in place)."""
    cells = list(dict.fromkeys(c for rel in relations for c in rel.cells))
    of_cell: dict = {}
    totals = set()
    for k, rel in enumerate(relations):
        totals.add(rel.total)
        for cell in rel.cells:
            of_cell.setdefault(cell, []).append(k)
    hidden_set = {c for c in cells if status[c] != ""} | (unpublished & set(cells))
    block_unpublished = unpublished & set(cells)
    block_values = {c: val[c] for c in cells}
    block_status = {c: status[c] for c in cells}

    def hidden_in(rel: Relation) -> int:
        """Unknown cells of a relation (hidden or not published)."""
        return sum(c in hidden_set for c in rel.cells)

    def leaks_alone(rel: Relation) -> bool:
        """Exactly one unknown, and it is a hidden count: subtraction gives it back."""
        unknown = [c for c in rel.cells if c in hidden_set]
        return len(unknown) == 1 and unknown[0] not in block_unpublished

    def best_candidate(rel: Relation):
        candidates = [c for c in rel.cells if c not in hidden_set and c not in fixed]
        if not candidates:
            return None

        def cost(cell):
            new_singles = sum(1 for k in of_cell.get(cell, ()) if relations[k] is not rel
                              and hidden_in(relations[k]) == 0)
            return (new_singles, cell in totals, val[cell])
        return min(candidates, key=cost)

    def hide(cell):
        block_status[cell] = SECONDARY
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
        hidden_now = [c for c in cells if c in hidden_set and c not in block_unpublished]
        leaks = determined_cells(hidden_now + sorted(block_unpublished, key=str), relations)
        leaks -= block_unpublished
        if not leaks and interval_check:
            leaks = pinned_cells(block_values, block_status, relations, min_cell)
        if not leaks:
            _prune(block_values, block_status, relations, min_cell, block_unpublished, interval_check, cells)
            status.update(block_status)
            return
        # step 3: one more cell in a relation of the smallest leaking cell
        progressed = False
        touched: set = set()
        for cell in sorted(leaks, key=lambda c: val[c]):
            mine = [k for k in of_cell.get(cell, ()) if k not in touched]
            options = [(best_candidate(relations[k]), k) for k in mine]
            options = [(o, k) for o, k in options if o is not None]
            if not options:
                continue
            chosen, _ = min(options, key=lambda ok: (ok[0] in totals, val[ok[0]]))
            hide(chosen)
            touched.update(of_cell.get(chosen, ()))
            progressed = True
            break  # one new cell can free several leaking cells: check again
        if not progressed:  # pragma: no cover - every relation fully hidden already
            status.update(block_status)
            return


def _safe(values, status, relations, min_cell, unpublished, interval_check, cells) -> bool:
    """No primary cell comes back: no relation leaves one hidden count alone, none is
    determined by all relations together, none is pinned by the labels' bounds."""
    hidden = {c for c in cells if status[c]} | unpublished
    for rel in relations:
        unknown = [c for c in rel.cells if c in hidden]
        if len(unknown) == 1 and unknown[0] not in unpublished:
            return False
    order = [c for c in cells if c in hidden and c not in unpublished]
    if (determined_cells(order + sorted(unpublished, key=str), relations) - unpublished):
        return False
    return not (interval_check and pinned_cells(values, status, relations, min_cell))


def _prune(values, status, relations, min_cell, unpublished, interval_check, cells) -> None:
    """Show again every complementary cell that is not needed (largest first): the
    greedy steps can hide a cell that a later one made redundant (in place)."""
    for cell in sorted((c for c in cells if status[c] == SECONDARY), key=lambda c: -values[c]):
        status[cell] = ""
        if not _safe(values, status, relations, min_cell, unpublished, interval_check, cells):
            status[cell] = SECONDARY


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
            if count in hidden_rows:
                hide |= hidden_rows[count]
            else:  # a count the table does not print (e.g. last period's denominator)
                values = pd.to_numeric(df[count], errors="coerce")
                hide |= (values.notna() & (values < min_cell)).to_numpy()
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


# ------------------------------------------------------------------ a whole page

@dataclass
class PageTable:
    """One table of a page, numeric, before suppression: its count and rate columns,
    which rates rest on which counts, and its own total rows / total columns (see
    ``table_relations``)."""

    frame: pd.DataFrame
    count_cols: Sequence[str]
    rate_cols: Sequence[str] = ()
    rate_basis: Mapping | None = None
    row_totals: Mapping | None = None
    col_totals: Mapping | None = None
    relations: Sequence = ()


def suppress_page(tables: Mapping[Hashable, PageTable], relations: Iterable = (),
                  min_cell: int | None = None) -> dict:
    """Every table of one page suppressed together, so that no hidden count comes back
    from any table or any combination of them (module docstring).

    ``tables``: {name: PageTable}. ``relations``: links between tables, as (total cell,
    [part cells]) with cells written (table name, row label, column) — e.g. a province
    page's headline poor households = the sum of its commune table's poor column, the
    headline households = urban + rural of the group table, or the same count printed
    in two tables (a relation with one part: the two cells are equal). Returns {name:
    rendered table} as ``render`` makes them; ``result[name].attrs["status"]`` holds
    the cell statuses of that table."""
    values = pd.concat([table_cells(t.frame, list(t.count_cols), name) for name, t in tables.items()])
    rels: list[Relation] = []
    for name, t in tables.items():
        rels += table_relations(t.frame, list(t.count_cols), name, t.row_totals, t.col_totals,
                                t.relations)
    rels += _relations(relations)
    status = linked_suppression(values, rels, min_cell=min_cell)
    out = {}
    for name, t in tables.items():
        rendered = render(t.frame, status, list(t.count_cols), list(t.rate_cols), t.rate_basis,
                          table=name, min_cell=min_cell)
        rendered.attrs["status"] = {k[1:]: v for k, v in status.items() if k[0] == name}
        out[name] = rendered
    return out


def suppress_breakdowns(table: pd.DataFrame, count_cols: Sequence[str], breakdowns: Sequence[Sequence],
                        rate_cols: Sequence[str] = (), rate_basis: Mapping | None = None,
                        min_cell: int | None = None) -> pd.DataFrame:
    """A group table whose rows split one population in several ways (urban / rural,
    ethnic minority / not): each breakdown (a list of row labels) adds up to a total
    that the page prints elsewhere (the headline), so that total is taken as shown and
    each breakdown is protected against it. Returns the rendered rows (as ``render``)."""
    frame = table.copy()
    relations = []
    for b, rows in enumerate(breakdowns):
        total = f"_total_{b}"
        frame.loc[total] = np.nan
        for col in count_cols:
            frame.loc[total, col] = pd.to_numeric(table.loc[list(rows), col], errors="coerce").sum()
        relations += table_relations(frame, list(count_cols), row_totals={total: list(rows)})
    totals = [(None, f"_total_{b}", col) for b in range(len(breakdowns)) for col in count_cols]
    status = linked_suppression(table_cells(frame, list(count_cols)), relations, min_cell=min_cell,
                                shown=totals)
    out = render(frame, status, list(count_cols), list(rate_cols), rate_basis, min_cell=min_cell)
    return out.loc[table.index]
