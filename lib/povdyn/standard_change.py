"""Standard changes: reclassify under another standard, and split flows across a change.

methods.md, "Traps": policy changes move the line (2021 → 2022, 2026 → 2027); an "exit"
caused by a new standard or a reclassification is not an exit caused by income. This
module measures that part.

* ``reclassify(df, standard=...)``: the same households (same incomes and
  deprivations) classified under another standard — e.g. the 2027–2030 lines and
  indicators, or Ho Chi Minh City's local standard — against their status under the
  base standard; a table of old × new status counts says how many move by the rule
  alone.
* ``decompose_flows(panel, t_from, t_to)``: moves between two periods split into
  "moved by the new line" and "moved by their own circumstances".
* ``standard_changed(periods)``: flags consecutive period pairs whose standard differs.
* ``local_vs_national(df, local="hcmc")``: the city's standard beside the national one.

All classification goes through ``povdyn.standards.classify`` (one definition).

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

import numpy as np
import pandas as pd

from . import standards
from .deprivation import _rows_from
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


def _with_stand_ins(df: pd.DataFrame, indicators, stand_ins) -> tuple[pd.DataFrame, list[str]]:
    """Copy of df with missing indicator columns filled by their stand-ins, and the
    assumptions made (sentences). A missing indicator without a stand-in is an error."""
    missing = [c for c in indicators if c not in df.columns]
    if not missing:
        return df, []
    stand_ins = STAND_INS if stand_ins is None else stand_ins
    out, notes = df.copy(), []
    for col in missing:
        if col not in stand_ins:
            raise StandardError(
                f"indicator {col!r} of the new standard is not in the data and has no "
                f"stand-in: pass stand_ins={{{col!r}: 'a column' or None}}")
        source = stand_ins[col]
        if source is None:
            out[col] = False
            notes.append(f"{col} not recorded: taken as not deprived for every household")
        else:
            if source not in df.columns:
                raise StandardError(f"stand-in column {source!r} for {col!r} is not in the data")
            out[col] = df[source]
            notes.append(f"{col} not recorded: stood in for by {source}")
    return out, notes


def _classify_under(df: pd.DataFrame, standard: str, period=None, stand_ins=None,
                    income_factor: float = 1.0) -> tuple[pd.Series, list[str], list[str]]:
    """Statuses of df's rows under `standard` (an id or a scope) at `period` (None: each
    row's own period; an id without a period: its first period). Returns (statuses,
    assumptions, standard ids used)."""
    work = df
    if period is None and standard in _standard_ids():
        period = _first_period(standard)
    if period is not None:
        work = work.assign(period=[period] * len(work))
    used = sorted({standards.standard_for(p, standard).standard_id for p in pd.unique(work["period"])})
    needed = sorted({c for sid in used for c in standards.indicators(sid)})
    work, notes = _with_stand_ins(work, needed, stand_ins)
    if income_factor != 1.0:
        work = work.assign(income_pc_month=pd.to_numeric(work["income_pc_month"]) * income_factor)
        notes.append(f"incomes multiplied by {income_factor:g} before comparing with the lines")
    status = standards.classify(work, standard=standard)
    return status.astype(object).where(status.notna(), None), notes, used


def status_table(old: pd.Series, new: pd.Series, old_name: str = "old", new_name: str = "new") -> pd.DataFrame:
    """Counts of old status (rows) × new status (columns), with totals."""
    pairs = pd.DataFrame({"old": list(old), "new": list(new)}).dropna()
    table = (pairs.groupby(["old", "new"]).size().unstack(fill_value=0)
             .reindex(index=STATUSES, columns=STATUSES, fill_value=0))
    table["total"] = table.sum(axis=1)
    table.loc["total"] = table.sum(axis=0)
    table.index.name, table.columns.name = old_name, new_name
    return table.astype(int)


@dataclass
class Reclassification:
    """Statuses of the same rows under two standards.

    ``statuses``: per row (household_id, period when present) old_status, new_status,
    changed. ``table``: old × new counts with totals. ``summary``: households, changed,
    poor_old, poor_new, into_poverty (not poor -> poor), out_of_poverty (poor -> not
    poor). ``assumptions``: stand-ins and uprating used. ``standards``: ids used.
    """

    statuses: pd.DataFrame
    table: pd.DataFrame
    summary: dict
    assumptions: list = field(default_factory=list)
    standards: dict = field(default_factory=dict)


def reclassify(df: pd.DataFrame, standard: str = "national_2027_2030", period=None,
               base_standard: str = "national", old: str = "classify", stand_ins=None,
               income_factor: float = 1.0) -> Reclassification:
    """Classify the same households under another standard and count who changes status.

    ``standard``: a standard id of povdyn.standards (e.g. "national_2027_2030",
    "hcmc_2025": applied at its first period unless ``period`` is given) or a scope
    ("national", "hcmc": the standard in force at ``period``, or at each row's own
    period when ``period`` is None). The old status is, with ``old="classify"``, the
    rows classified under ``base_standard`` at their own period (so only the rule
    differs), or with ``old="recorded"`` the register's ``status``. Indicators the
    new standard needs but the data lacks get the stand-ins of ``STAND_INS`` (stated in
    ``result.assumptions``). Removal rows (``removal_reason`` set) are left out.
    """
    if old not in ("classify", "recorded"):
        raise ValueError(f"old={old!r}: use 'classify' or 'recorded'")
    rows = df
    if "removal_reason" in rows.columns:
        rows = rows[rows["removal_reason"].isna()]
    if old == "recorded" and "status" in rows.columns:
        rows = rows[rows["status"].notna()]
    if old == "recorded":
        if "status" not in rows.columns:
            raise SchemaError("old='recorded' needs a status column")
        old_status, old_notes, old_used = rows["status"].astype(object), [], ["recorded"]
    else:
        old_status, old_notes, old_used = _classify_under(rows, base_standard)
    new_status, new_notes, new_used = _classify_under(rows, standard, period, stand_ins,
                                                      income_factor)
    keys = [c for c in ("household_id", "period") if c in rows.columns]
    statuses = rows[keys].copy()
    statuses["old_status"] = old_status.to_numpy()
    statuses["new_status"] = new_status.to_numpy()
    statuses["changed"] = statuses["old_status"] != statuses["new_status"]
    statuses = statuses.reset_index(drop=True)
    o, n = statuses["old_status"], statuses["new_status"]
    summary = dict(
        households=len(statuses), changed=int(statuses["changed"].sum()),
        poor_old=int((o == "poor").sum()), poor_new=int((n == "poor").sum()),
        near_poor_old=int((o == "near_poor").sum()), near_poor_new=int((n == "near_poor").sum()),
        into_poverty=int(((o != "poor") & (n == "poor")).sum()),
        out_of_poverty=int(((o == "poor") & (n != "poor")).sum()),
    )
    return Reclassification(
        statuses=statuses, table=status_table(o, n, "old_status", "new_status"),
        summary=summary, assumptions=old_notes + new_notes,
        standards={"old": old_used, "new": new_used},
    )


def local_vs_national(df: pd.DataFrame, local: str = "hcmc", province: str | None = None,
                      period=None) -> Reclassification:
    """The same households under the national standard (old_status) and a local one
    (new_status), e.g. Ho Chi Minh City's (2021–2025: poor < 36M VND/person/year; its
    2025 review: poor ≤ 46M). ``province``: keep only that province's rows (any
    spelling, old or new name -> its 2025 province); ``period``: keep only that period.
    The local standard must cover the periods (else StandardError)."""
    rows = df
    if period is not None:
        _, idx = parse_period(period)
        rows = rows[[parse_period(p)[1] == idx for p in rows["period"]]]
    if province is not None:
        from .geo import province_2025
        target = province_2025([province]).iloc[0]
        col = rows["province_2025"] if "province_2025" in rows.columns else \
            province_2025(rows["province"], errors="coerce")
        rows = rows[col.to_numpy() == target]
    if rows.empty:
        raise SchemaError(f"no rows for province={province!r}, period={period!r}")
    return reclassify(rows, standard=local, period=None, base_standard="national")


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
    previous period's: columns period, previous_period, standard_id, standard_changed.
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

    ``households``: one row per household observed (not removed) at both periods:
    status_from, status_to (recorded), rule_from (t_from data under t_from's standard),
    counterfactual (t_from data under t_to's standard), moved, moved_by in
    {"stayed", "new_line", "circumstances", "both"}, recorded_differs (the register's
    status at t_from is not what its own rule gives — a review decision or data issue).
    ``table``: per (status_from, status_to) move: households, new_line, circumstances,
    both. ``summary``: exits from poverty split the same way. ``standard_changed``:
    whether the two periods fall under different standards.
    """

    households: pd.DataFrame
    table: pd.DataFrame
    summary: dict
    standard_changed: bool
    standards: tuple
    assumptions: list = field(default_factory=list)


def decompose_flows(panel, t_from, t_to, standard: str = "national", stand_ins=None) -> FlowDecomposition:
    """Split status moves between ``t_from`` and ``t_to`` into "moved by the new line"
    and "moved by their own circumstances" (methods.md, Traps).

    For each household observed at both periods (removal rows excluded):
    counterfactual = its t_from incomes and deprivations classified under the standard
    of ``t_to``; rule_from = the same under the standard of ``t_from``. A household
    that moved (recorded status_from != status_to) moved

    * by the **new line** when counterfactual != rule_from and counterfactual ==
      status_to (the new standard alone gives its new status);
    * by its **own circumstances** when counterfactual == rule_from (the rule change
      does not move it: what changed is its income or deprivations);
    * by **both** when the new standard moved it and it then moved again.

    When the two periods share a standard every move is "circumstances". From a Panel
    only the rows of the two periods leave the engine.
    """
    _, i_from = parse_period(t_from)
    _, i_to = parse_period(t_to)
    df = _rows_from(panel, lambda table: table.period_index.isin([i_from, i_to]))
    a = df[(df["period_index"] == i_from) & df["status"].notna()]
    b = df[(df["period_index"] == i_to) & df["status"].notna()]
    if a.empty or b.empty:
        raise SchemaError(f"no households observed at {t_from!r} or {t_to!r}")
    a = a[a["household_id"].isin(set(b["household_id"]))].sort_values("household_id")
    b = b.set_index("household_id").loc[a["household_id"]]
    rule_from, _, (sid_from, *_) = _classify_under(a, standard)
    label_to = b["period"].iloc[0]
    counterfactual, notes, (sid_to, *_) = _classify_under(a, standard, period=label_to,
                                                          stand_ins=stand_ins)
    out = pd.DataFrame({
        "household_id": a["household_id"].to_numpy(),
        "status_from": a["status"].astype(object).to_numpy(),
        "status_to": b["status"].astype(object).to_numpy(),
        "rule_from": rule_from.to_numpy(),
        "counterfactual": counterfactual.to_numpy(),
    })
    out["moved"] = out["status_from"] != out["status_to"]
    rule_moved = out["counterfactual"] != out["rule_from"]
    out["moved_by"] = np.select(
        [~out["moved"], ~rule_moved, out["counterfactual"] == out["status_to"]],
        ["stayed", "circumstances", "new_line"], default="both")
    out["recorded_differs"] = out["status_from"] != out["rule_from"]
    moves = out[out["moved"]]
    table = (pd.crosstab([moves["status_from"], moves["status_to"]], moves["moved_by"])
             .reindex(columns=["new_line", "circumstances", "both"], fill_value=0))
    table.insert(0, "households", table.sum(axis=1))
    table.columns.name = None
    table = table.reset_index()
    exits = moves[moves["status_from"] == "poor"]
    summary = dict(
        households=len(out), moved=len(moves), exits=len(exits),
        exits_by_new_line=int((exits["moved_by"] == "new_line").sum()),
        exits_by_circumstances=int((exits["moved_by"] == "circumstances").sum()),
        exits_by_both=int((exits["moved_by"] == "both").sum()),
        moved_by_new_line=int((moves["moved_by"] == "new_line").sum()),
        moved_by_circumstances=int((moves["moved_by"] == "circumstances").sum()),
        moved_by_both=int((moves["moved_by"] == "both").sum()),
        recorded_differs=int(out["recorded_differs"].sum()),
    )
    return FlowDecomposition(households=out, table=table, summary=summary,
                             standard_changed=_rule(t_from, standard) != _rule(label_to, standard),
                             standards=(sid_from, sid_to),
                             assumptions=notes)
