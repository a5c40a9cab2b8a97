"""Standard changes: reclassify under another standard, and split flows across a change.

methods.md, "Traps": policy changes move the line (2021 → 2022, 2026 → 2027); an "exit"
caused by a new standard or a reclassification is not an exit caused by income. This
module measures that part.

* ``reclassify(data, standard=...)``: the same households (same incomes and
  deprivations) classified under another standard — e.g. the 2027–2030 lines and
  indicators, or Ho Chi Minh City's local standard — against their status under the
  base standard; a table of old × new status counts says how many move by the rule
  alone.
* ``decompose_flows(panel, t_from, t_to)``: moves between two periods split into
  "moved by the new line" and "moved by their own circumstances".
* ``standard_changed(periods)``: flags consecutive period pairs whose standard differs.
* ``local_vs_national(data, local="hcmc")``: the city's standard beside the national one.

Engine first: every household is classified by ``povdyn.standards.with_status`` (the
rule as an Ibis expression) on the data's engine -- the register's DuckDB or Spark for a
Panel, povdyn's DuckDB for a pandas frame (an Ibis memtable) -- and the old × new counts
and the moves by cause are counted there, so only those tables (a few rows) leave it.
The per-household rows (``Reclassification.statuses``, ``FlowDecomposition.households``)
are pulled only when a caller reads them.

Stated assumptions when classifying 2022–2025 registers under the 2027–2030 standard
(``STAND_INS``), because the registers do not record the two new indicators:

* ``dep_digital_services`` (use of digital services / internet) is stood in for by
  ``dep_info_devices`` (no device to reach information): a household without such a
  device is taken not to use digital services, and one with a device to use them;
* ``dep_waste`` (household waste handling) is taken as *not deprived* for everyone, so
  deprivation counts — and the number of poor — under 2027–2030 are lower bounds in
  that respect.

Incomes are used as recorded; ``income_factor`` (e.g. 1.1) uprates them when comparing
with a later standard's lines at later prices.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from . import standards
from .errors import SchemaError, StandardError
from .periods import parse_period

STATUSES = ["poor", "near_poor", "non_poor"]

#: missing indicator -> the column that stands in for it (None: taken as not deprived)
STAND_INS = {"dep_digital_services": "dep_info_devices", "dep_waste": None}

MOVED_BY = {
    "new_line": "the standard alone moved the household (same incomes and deprivations "
                "under the new standard already give the new status)",
    "circumstances": "the household's own income/deprivations changed under a fixed "
                     "standard (the rule change alone would not have moved it)",
    "both": "the new standard moved it, and its circumstances moved it again",
}


def _standard_ids() -> set:
    return set(standards.list_standards()["standard_id"])


def _first_period(standard_id: str) -> str:
    t = standards.list_standards()
    return str(t.loc[t.standard_id == standard_id, "first_period"].iloc[0])


def reviewed_at(*periods):
    """The households reviewed at these periods -- their rows there with a recorded
    status -- as an Ibis predicate for ``reclassify(rows=...)``: a reclassification at
    a review then classifies those rows in the engine and pulls none of them."""
    indices = sorted({parse_period(p)[1] for p in periods})

    def where(table):
        return table.period_index.isin(indices) & table.status.notnull()
    return where


# ------------------------------------------------------------------- rows on an engine

@dataclass
class _Source:
    """Rows on their engine: an Ibis ``table`` (with int ``period_index``), ``run``
    (executes an expression there), ``labels`` ({value of the period column: period
    label}; None when the values are the labels) and, for a pandas input, the
    ``frame`` itself (row ``_row`` of the table is ``frame.iloc[_row]``)."""

    table: object
    run: object
    labels: dict | None = None
    frame: pd.DataFrame | None = None

    def where(self, predicate) -> "_Source":
        return _Source(self.table.filter(predicate), self.run, self.labels, self.frame)

    def periods(self, table) -> dict:
        """{value: label} of the periods present in ``table`` (a few rows leave the engine)."""
        values = self.run(table.select("period").distinct())["period"].dropna().tolist()
        return {v: (v if self.labels is None else self.labels[v]) for v in values}


def _source(data, stand_in_columns=()) -> _Source:
    """A Panel or path (on its own engine), or a pandas frame: the columns the measures
    read, typed by ``standards._typed_for_engine`` (the period as a code, ``labels``
    mapping it back), as an Ibis memtable on povdyn's DuckDB."""
    if isinstance(data, _Source):
        return data
    if not isinstance(data, pd.DataFrame):
        from .panel import as_panel

        panel = as_panel(data)
        return _Source(panel.table, panel.execute)
    import ibis

    from .engine import connect

    missing = [c for c in ("period", "area", "income_pc_month") if c not in data.columns]
    if missing:
        raise StandardError(f"classify needs columns {missing} (have {list(data.columns)[:20]})")
    codes, uniques = pd.factorize(data["period"], use_na_sentinel=True)
    indicators = [c for c in data.columns if c.startswith("dep_") or c in stand_in_columns]
    frame = standards._typed_for_engine(data, codes, indicators)
    index_of = np.array([parse_period(u)[1] for u in uniques] + [0], dtype="int64")
    frame["period_index"] = pd.arrays.IntegerArray(index_of[codes], codes < 0)  # code -1: missing
    for col in ("household_id", "status", "removal_reason", "province", "province_2025"):
        if col in data.columns:
            values = data[col]
            if values.dtype == object or isinstance(values.dtype, pd.CategoricalDtype):
                values = values.astype("string")
            frame[col] = values.to_numpy()
    return _Source(ibis.memtable(frame), connect("duckdb").execute,
                   labels=dict(enumerate(uniques)), frame=data)


def _with_status_under(table, labels: dict, standard: str, period=None, stand_ins=None,
                       income_factor: float = 1.0, name: str = "status"):
    """``table`` with column ``name``: each row's status under ``standard`` (an id or a
    scope) at ``period`` (None: each row's own period, ``labels`` {value: label} being
    the periods present; an id without a period: its first period), by
    ``standards.with_status``. Indicators the standard needs but the table lacks get
    their stand-ins (``STAND_INS``) for this classification only; ``income_factor``
    uprates incomes for it only. Returns (table, assumptions, standard ids used)."""
    import ibis

    if period is None and standard in _standard_ids():
        period = _first_period(standard)
    used = sorted({standards.standard_for(p, standard).standard_id
                   for p in ([period] if period is not None else labels.values())})
    needed = sorted({c for sid in used for c in standards.indicators(sid)})
    notes, added = [], {}
    stand_ins = STAND_INS if stand_ins is None else stand_ins
    for col in [c for c in needed if c not in table.columns]:
        if col not in stand_ins:
            raise StandardError(
                f"indicator {col!r} of the new standard is not in the data and has no "
                f"stand-in: pass stand_ins={{{col!r}: 'a column' or None}}")
        source = stand_ins[col]
        if source is None:
            added[col] = ibis.literal(False)
            notes.append(f"{col} not recorded: taken as not deprived for every household")
        else:
            if source not in table.columns:
                raise StandardError(f"stand-in column {source!r} for {col!r} is not in the data")
            added[col] = table[source]
            notes.append(f"{col} not recorded: stood in for by {source}")
    work = table.mutate(**added) if added else table
    if income_factor != 1.0:
        income = work.income_pc_month
        income = income.cast("float64") if income.type().is_numeric() else income.try_cast("float64")
        work = work.mutate(_recorded_income=work.income_pc_month, income_pc_month=income * income_factor)
        notes.append(f"incomes multiplied by {income_factor:g} before comparing with the lines")
    if period is not None:
        work = standards.with_status(work, standard, at=period, name=name)
    else:
        work = standards.with_status(work, standard, periods=labels, name=name)
    if income_factor != 1.0:
        work = work.mutate(income_pc_month=work._recorded_income).drop("_recorded_income")
    return (work.drop(*added) if added else work), notes, used


def _as_objects(values) -> pd.Series:
    """Statuses pulled from an engine as Python objects, None where missing."""
    values = pd.Series(values).astype(object)
    return values.where(values.notna(), None)


# ------------------------------------------------------------------- reclassification

def status_table(old: pd.Series, new: pd.Series, old_name: str = "old", new_name: str = "new") -> pd.DataFrame:
    """Counts of old status (rows) × new status (columns), with totals."""
    pairs = pd.DataFrame({"old": list(old), "new": list(new)})
    counts = pairs.groupby(["old", "new"], dropna=False).size().rename("households").reset_index()
    return _crosstab(counts, old_name, new_name)


def _crosstab(counts: pd.DataFrame, old_name: str, new_name: str) -> pd.DataFrame:
    """``status_table`` from counts (columns old, new, households); pairs with a
    missing status are left out."""
    cells = counts.groupby(["old", "new"])["households"].sum()  # NaN keys dropped
    table = pd.DataFrame([[int(cells.get((o, n), 0)) for n in STATUSES] for o in STATUSES],
                         index=STATUSES, columns=STATUSES)
    table["total"] = table.sum(axis=1)
    table.loc["total"] = table.sum(axis=0)
    table.index.name, table.columns.name = old_name, new_name
    return table.astype(int)


def _summary(counts: pd.DataFrame) -> dict:
    """The reclassification summary from old × new counts (missing statuses included);
    a missing status differs from every status, as pandas compares them."""
    o, n, k = counts["old"], counts["new"], counts["households"].to_numpy()

    def total(mask) -> int:
        return int(k[mask.to_numpy(dtype=bool)].sum())

    return dict(
        households=int(k.sum()), changed=total(o != n),
        poor_old=total(o == "poor"), poor_new=total(n == "poor"),
        near_poor_old=total(o == "near_poor"), near_poor_new=total(n == "near_poor"),
        into_poverty=total((o != "poor") & (n == "poor")),
        out_of_poverty=total((o == "poor") & (n != "poor")),
    )


@dataclass
class Reclassification:
    """Statuses of the same rows under two standards.

    ``table``: old × new counts with totals. ``summary``: households, changed,
    poor_old, poor_new, near_poor_old, near_poor_new, into_poverty (not poor -> poor),
    out_of_poverty (poor -> not poor). ``assumptions``: stand-ins and uprating used.
    ``standards``: ids used. ``statuses``: per row (household_id, period when present)
    old_status, new_status, changed -- pulled from the engine when first read (on a
    register that is one row per household: read it for a small selection only).
    """

    table: pd.DataFrame
    summary: dict
    assumptions: list = field(default_factory=list)
    standards: dict = field(default_factory=dict)
    per_row: object = field(default=None, repr=False, compare=False)

    @cached_property
    def statuses(self) -> pd.DataFrame:
        return self.per_row()


def reclassify(data, standard: str = "national_2027_2030", period=None,
               base_standard: str = "national", old: str = "classify", stand_ins=None,
               income_factor: float = 1.0, rows=None) -> Reclassification:
    """Classify the same households under another standard and count who changes status
    (methods.md, "Traps": a new standard moves households whose income did not change).

    ``data``: a Panel (or path), or a pandas frame with ``period``, ``area``,
    ``income_pc_month`` and the indicator columns. ``rows``: an Ibis predicate choosing
    the rows, e.g. ``reviewed_at("2025Q4")`` (the table has an int ``period_index``).
    ``standard``: a standard id of povdyn.standards (e.g. "national_2027_2030",
    "hcmc_2025": applied at its first period unless ``period`` is given) or a scope
    ("national", "hcmc": the standard in force at ``period``, or at each row's own
    period when ``period`` is None). The old status is, with ``old="classify"``, the
    rows classified under ``base_standard`` at their own period (so only the rule
    differs), or with ``old="recorded"`` the register's ``status`` (rows without one
    are left out). Indicators the new standard needs but the data lacks get the
    stand-ins of ``STAND_INS`` (stated in ``result.assumptions``). Removal rows
    (``removal_reason`` set) are left out. Both classifications and the old × new
    counts run in the engine (``standards.with_status``); only the counts leave it.
    """
    if old not in ("classify", "recorded"):
        raise ValueError(f"old={old!r}: use 'classify' or 'recorded'")
    src = _source(data, [c for c in (STAND_INS if stand_ins is None else stand_ins).values() if c])
    if rows is not None:
        src = src.where(rows(src.table))
    table = src.table
    if "removal_reason" in table.columns:
        table = table.filter(table.removal_reason.isnull())
    if old == "recorded":
        if "status" not in table.columns:
            raise SchemaError("old='recorded' needs a status column")
        table = table.filter(table.status.notnull())
    labels = src.periods(table)
    if old == "recorded":
        table, old_notes, old_used = table.mutate(old_status=table.status.cast("string")), [], ["recorded"]
    else:
        table, old_notes, old_used = _with_status_under(table, labels, base_standard, name="old_status")
    table, new_notes, new_used = _with_status_under(table, labels, standard, period, stand_ins,
                                                    income_factor, name="new_status")
    pulled = src.run(table.group_by(["old_status", "new_status"]).aggregate(households=table.count()))
    counts = pd.DataFrame({"old": _as_objects(pulled["old_status"]), "new": _as_objects(pulled["new_status"]),
                           "households": pulled["households"].astype("int64")})

    def per_row() -> pd.DataFrame:
        if src.frame is not None:  # the caller's own rows, in their order
            got = src.run(table.select("_row", "old_status", "new_status").order_by("_row"))
            keys = [c for c in ("household_id", "period") if c in src.frame.columns]
            out = src.frame.iloc[got["_row"].to_numpy()][keys].reset_index(drop=True)
        else:
            keys = [c for c in ("household_id", "period") if c in table.columns]
            got = src.run(table.order_by([*keys[:1], "period_index"])
                          .select(*keys, "old_status", "new_status"))
            out = got[keys].reset_index(drop=True)
        out["old_status"] = _as_objects(got["old_status"]).to_numpy()
        out["new_status"] = _as_objects(got["new_status"]).to_numpy()
        out["changed"] = out["old_status"] != out["new_status"]
        return out

    return Reclassification(
        table=_crosstab(counts, "old_status", "new_status"), summary=_summary(counts),
        assumptions=old_notes + new_notes, standards={"old": old_used, "new": new_used},
        per_row=per_row,
    )


def local_vs_national(data, local: str = "hcmc", province: str | None = None,
                      period=None) -> Reclassification:
    """The same households under the national standard (old_status) and a local one
    (new_status), e.g. Ho Chi Minh City's (2021–2025: poor < 36M VND/person/year; its
    2025 review: poor ≤ 46M): ``reclassify`` with ``standard=local``, each row at its
    own period (methods.md, "Traps": who is poor depends on the standard, not only on
    the household; removal rows are left out, as removals are attrition). ``data``: a Panel (or path) or a pandas frame. ``province``: keep only
    that province's rows (any spelling, old or new name -> its 2025 province);
    ``period``: keep only that period. The rows are chosen and classified in the
    engine. The local standard must cover the periods (else StandardError)."""
    src = _source(data)
    if period is not None:
        src = src.where(src.table.period_index == parse_period(period)[1])
    if province is not None:
        from .geo import province_2025

        target = province_2025([province]).iloc[0]
        if "province_2025" in src.table.columns:
            src = src.where(src.table.province_2025 == target)
        else:  # the old names present (a few dozen) mapped here
            names = src.run(src.table.select("province").distinct())["province"].dropna().tolist()
            keep = [n for n, m in zip(names, province_2025(names, errors="coerce")) if m == target]
            src = src.where(src.table.province.isin(keep))
    result = reclassify(src, standard=local, period=None, base_standard="national")
    if result.summary["households"] == 0:
        raise SchemaError(f"no rows for province={province!r}, period={period!r}")
    return result


# ------------------------------------------------------------------- flows across change

def _rule(period, standard: str) -> tuple:
    """What classification depends on: lines per area, bound, deprivation rule, indicators.
    Two standard ids with the same rule (2022–2025 renewed for 2026) are no change."""
    s = standards.standard_for(period, standard)
    return (sorted(s.poor_income_max.items()), sorted(s.near_poor_income_max.items()),
            s.poor_bound, s.min_deprivations_below_line, s.min_deprivations_in_band,
            tuple(sorted(s.indicators)))


def standard_changed(periods, standard: str = "national") -> pd.DataFrame:
    """For each period (sorted, distinct), whether its standard differs from the
    previous period's (methods.md, "Traps": flag periods where the standard changed):
    columns period, previous_period, standard_id, standard_changed.
    Uses povdyn.standards.changes_between, and counts a change only when the rule
    itself differs (lines, deprivation rule or indicators): the 2022–2025 standard kept
    for 2026 (Decree 351/2025) is not a change. A period no standard covers gets
    standard_id None and standard_changed NA."""
    uniques = sorted(pd.unique(pd.Series(list(periods)).dropna()), key=lambda p: parse_period(p)[1])
    rows, prev = [], None
    for p in uniques:
        try:
            sid = standards.standard_for(p, standard).standard_id
        except StandardError:
            sid = None
        if prev is None:
            changed = False
        elif sid is None or rows[-1]["standard_id"] is None:
            changed = pd.NA
        else:
            changed = bool(standards.changes_between(prev, p, standard)) and \
                _rule(prev, standard) != _rule(p, standard)
        rows.append(dict(period=p, previous_period=prev, standard_id=sid, standard_changed=changed))
        prev = p
    return pd.DataFrame(rows, columns=["period", "previous_period", "standard_id", "standard_changed"])


@dataclass
class FlowDecomposition:
    """Moves between ``t_from`` and ``t_to`` split by cause.

    ``table``: per (status_from, status_to) move: households, new_line, circumstances,
    both. ``summary``: households, moved, exits from poverty split the same way, moves
    by cause, recorded_differs. ``standard_changed``: whether the two periods fall under
    different standards. ``households``: one row per household observed at both
    periods: status_from, status_to (recorded), rule_from (t_from data under t_from's
    standard), counterfactual (t_from data under t_to's standard), moved, moved_by in
    {"stayed", "new_line", "circumstances", "both"}, recorded_differs (the register's
    status at t_from is not what its own rule gives — a review decision or data issue)
    -- pulled from the engine when first read (on a register, one row per household).
    """

    table: pd.DataFrame
    summary: dict
    standard_changed: bool
    standards: tuple
    assumptions: list = field(default_factory=list)
    per_household: object = field(default=None, repr=False, compare=False)

    @cached_property
    def households(self) -> pd.DataFrame:
        return self.per_household()


def _differs(a, b):
    """a != b as pandas compares statuses: a missing one differs from everything."""
    return (a.isnull() | b.isnull() | (a != b)).fill_null(True)


def decompose_flows(panel, t_from, t_to, standard: str = "national", stand_ins=None) -> FlowDecomposition:
    """Split status moves between ``t_from`` and ``t_to`` into "moved by the new line"
    and "moved by their own circumstances" (methods.md, Traps: an exit caused by a new
    standard is not an exit caused by income).

    For each household with a recorded status at both periods:
    counterfactual = its t_from incomes and deprivations classified under the standard
    of ``t_to``; rule_from = the same under the standard of ``t_from``. A household
    that moved (recorded status_from != status_to) moved

    * by the **new line** when counterfactual != rule_from and counterfactual ==
      status_to (the new standard alone gives its new status);
    * by its **own circumstances** when counterfactual == rule_from (the rule change
      does not move it: what changed is its income or deprivations);
    * by **both** when the new standard moved it and it then moved again.

    When the two periods share a standard every move is "circumstances". ``panel``: a
    Panel (or path) or a pandas frame. The classifications, the pairing of the two
    periods and the counts by move and cause run in the engine
    (``standards.with_status``); only the table of moves leaves it.
    """
    import ibis

    _, i_from = parse_period(t_from)
    _, i_to = parse_period(t_to)
    src = _source(panel, [c for c in (STAND_INS if stand_ins is None else stand_ins).values() if c])
    observed = src.table.filter(src.table.period_index.isin([i_from, i_to]) & src.table.status.notnull())
    present = src.run(observed.group_by(["period", "period_index"]).aggregate(n=observed.count()))
    if not {i_from, i_to} <= set(present["period_index"].astype(int)):
        raise SchemaError(f"no households observed at {t_from!r} or {t_to!r}")
    label_of = {int(i): (v if src.labels is None else src.labels[v])
                for v, i in zip(present["period"], present["period_index"])}
    value_from = [v for v, i in zip(present["period"], present["period_index"]) if int(i) == i_from]
    a = observed.filter(observed.period_index == i_from)
    b = observed.filter(observed.period_index == i_to)
    label_to = label_of[i_to]
    a, _, (sid_from, *_) = _with_status_under(a, {v: label_of[i_from] for v in value_from}, standard,
                                              name="rule_from")
    a, notes, (sid_to, *_) = _with_status_under(a, {}, standard, period=label_to, stand_ins=stand_ins,
                                                name="counterfactual")
    pairs = a.select("household_id", status_from=a.status.cast("string"), rule_from="rule_from",
                     counterfactual="counterfactual").inner_join(
        b.select("household_id", status_to=b.status.cast("string")), "household_id")
    moved = pairs.status_from != pairs.status_to
    pairs = pairs.mutate(
        moved=moved,
        moved_by=ibis.cases((~moved, "stayed"),
                            (~_differs(pairs.counterfactual, pairs.rule_from), "circumstances"),
                            (~_differs(pairs.counterfactual, pairs.status_to), "new_line"),
                            else_="both"),
        recorded_differs=_differs(pairs.status_from, pairs.rule_from))
    # one query: a row per move and cause, and one for all who stayed (their statuses
    # blanked), each with its households and recorded_differs
    blank = ibis.null("string")
    grouped = pairs.mutate(status_from=ibis.ifelse(pairs.moved, pairs.status_from, blank),
                           status_to=ibis.ifelse(pairs.moved, pairs.status_to, blank))
    counts = src.run(grouped.group_by(["status_from", "status_to", "moved_by"]).aggregate(
        n=grouped.count(), recorded_differs=grouped.recorded_differs.cast("int64").sum()))
    overall = counts[["n", "recorded_differs"]].astype("int64").sum()
    counts = counts[counts["moved_by"] != "stayed"]
    table = (counts.set_index(["status_from", "status_to", "moved_by"])["n"].astype("int64")
             .unstack(fill_value=0).reindex(columns=["new_line", "circumstances", "both"], fill_value=0)
             .sort_index())
    table.insert(0, "households", table.sum(axis=1))
    table.columns.name = None
    table = table.reset_index()
    exits = table[table["status_from"] == "poor"]
    summary = dict(
        households=int(overall["n"]), moved=int(table["households"].sum()),
        exits=int(exits["households"].sum()),
        exits_by_new_line=int(exits["new_line"].sum()),
        exits_by_circumstances=int(exits["circumstances"].sum()),
        exits_by_both=int(exits["both"].sum()),
        moved_by_new_line=int(table["new_line"].sum()),
        moved_by_circumstances=int(table["circumstances"].sum()),
        moved_by_both=int(table["both"].sum()),
        recorded_differs=int(overall["recorded_differs"]),
    )

    def per_household() -> pd.DataFrame:
        columns = ["household_id", "status_from", "status_to", "rule_from", "counterfactual", "moved",
                   "moved_by", "recorded_differs"]
        out = src.run(pairs.select(*columns).order_by("household_id")).reset_index(drop=True)
        for col in ("status_from", "status_to", "rule_from", "counterfactual", "moved_by"):
            out[col] = _as_objects(out[col]).to_numpy()
        return out.astype({"moved": bool, "recorded_differs": bool})

    return FlowDecomposition(table=table, summary=summary,
                             standard_changed=_rule(t_from, standard) != _rule(label_to, standard),
                             standards=(sid_from, sid_to), assumptions=notes,
                             per_household=per_household)
