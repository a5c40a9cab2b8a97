"""A deliberately slow, obviously-correct reference for the flow metrics.

Plain Python loops over households and periods, written straight from methods.md
("The register panel", "Flow metrics", "Traps") and the conventions in povdyn.dynamics'
docstring, without Ibis, SQL, pivots or vectorisation. Tests compare every count of
povdyn.dynamics with these on random panels. Only povdyn.periods.parse_period is shared
(period labels -> index, consecutive periods differ by 1).

A "history" is {household_id: {period_index: Record}}; Record.status is None on a
removal row (Record.removed True).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import pandas as pd

from povdyn.periods import parse_period

NOT_POOR = ("near_poor", "non_poor")


@dataclass
class Record:
    status: str | None
    removed: bool
    attrs: dict = field(default_factory=dict)


@dataclass
class History:
    households: dict  # household_id -> {period_index: Record}
    periods: list  # sorted period indices present in the panel
    frequency: str


def _is_missing(v) -> bool:
    try:
        return v is None or bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def build(df: pd.DataFrame, absent_means="missing", frequency=None) -> History:
    """Households' records from a canonical DataFrame, then the list expansion and the
    annual view exactly as povdyn.panel's docstring states them, in loops."""
    households: dict = defaultdict(dict)
    freq = None
    for row in df.to_dict("records"):
        f, index = parse_period(row["period"])
        freq = f
        reason = row.get("removal_reason")
        removed = not _is_missing(reason)
        status = None if removed or _is_missing(row["status"]) else row["status"]
        attrs = {k: v for k, v in row.items()
                 if k not in ("household_id", "period", "status", "removal_reason")}
        households[row["household_id"]][index] = Record(status, removed, attrs)
    periods = sorted({p for recs in households.values() for p in recs})

    if absent_means == "non_poor":
        last = periods[-1]
        for recs in households.values():
            first = min(recs)
            removal = [p for p, r in recs.items() if r.removed]
            end = removal[0] - 1 if removal else last
            for p in periods:
                if first <= p <= end and p not in recs:
                    before = max(q for q in recs if q < p and q in listed_of(recs))
                    recs[p] = Record("non_poor", False, dict(recs[before].attrs))
                    recs[p].attrs["_filled"] = True
        for recs in households.values():
            for r in recs.values():
                r.attrs.pop("_filled", None)

    if frequency == "year" and freq == "quarter":
        snapshot = {}
        for p in periods:
            snapshot[p // 4] = max(snapshot.get(p // 4, p), p)
        annual = {}
        for h, recs in households.items():
            out = {}
            for p, r in recs.items():
                if p == snapshot[p // 4] or r.removed:
                    out[p // 4] = r
            if out:
                annual[h] = out
        households = annual
        periods = sorted({p for recs in households.values() for p in recs})
        freq = "year"
    return History(dict(households), periods, freq)


def listed_of(recs):
    """Periods of a household's original (listed) records -- filled rows are added in
    period order, and a filled row copies the latest *listed* row before it."""
    return [q for q, r in recs.items() if not r.attrs.get("_filled")]


def _key(rec: Record, by):
    return tuple(rec.attrs.get(b) for b in by)


def _weight(rec: Record, weight):
    return 1.0 if weight is None else float(rec.attrs.get(weight) or 0.0)


def _observed(recs, p) -> bool:
    return p in recs and recs[p].status is not None


def _status(recs, p):
    return recs[p].status if p in recs else None


def exit_counts(hist: History, by=(), from_status="poor", weight=None) -> dict:
    """{(by..., t): counts} for exit_rates (rows where a household had from_status at t-1)."""
    out: dict = {}
    P = set(hist.periods)
    for recs in hist.households.values():
        for t in hist.periods:
            if t - 1 not in P or _status(recs, t - 1) != from_status:
                continue
            origin = recs[t - 1]
            c = out.setdefault(_key(origin, by) + (t,), defaultdict(float))
            w = _weight(origin, weight)
            c["_rows"] += 1
            if t not in recs:
                continue
            if recs[t].removed:
                c["removed"] += w
                continue
            c["at_risk"] += w
            c["n_at_risk"] += 1
            dest = recs[t].status
            if from_status == "poor":
                if dest in NOT_POOR:
                    c["exits"] += w
                    c["n_exits"] += 1
                c["to_near_poor"] += w * (dest == "near_poor")
                c["to_non_poor"] += w * (dest == "non_poor")
            else:
                if dest == "non_poor":
                    c["exits"] += w
                    c["n_exits"] += 1
                c["to_non_poor"] += w * (dest == "non_poor")
                c["falls"] += w * (dest == "poor")
    return out


def entry_counts(hist: History, by=(), weight=None) -> dict:
    """{(by..., t): counts} for entries (rows only where an entry happened)."""
    out: dict = {}
    P = set(hist.periods)
    for recs in hist.households.values():
        for t in hist.periods:
            if t - 1 not in P:  # first period, or no list in t-1: left-censored
                continue
            if _status(recs, t) != "poor" or _status(recs, t - 1) == "poor":
                continue
            c = out.setdefault(_key(recs[t], by) + (t,), defaultdict(float))
            w = _weight(recs[t], weight)
            c["entries"] += w
            poor_before = any(_status(recs, p) == "poor" for p in recs if p < t)
            c["relapsed" if poor_before else "new_poor"] += w
            before = _status(recs, t - 1)
            if before == "near_poor":
                c["from_near_poor"] += w
            elif before == "non_poor":
                c["from_non_poor"] += w
            else:
                c["from_unobserved"] += w
    return out


def relapse_counts(hist: History, within=2, by=(), weight=None) -> dict:
    """{(by..., exit period t): counts} for relapse_rates (rows where an exit happened)."""
    out: dict = {}
    P = set(hist.periods)
    for recs in hist.households.values():
        for t in hist.periods:
            if t - 1 not in P:
                continue
            if not (_status(recs, t - 1) == "poor" and _status(recs, t) in NOT_POOR):
                continue
            c = out.setdefault(_key(recs[t], by) + (t,), defaultdict(float))
            w = _weight(recs[t], weight)
            c["exits"] += w
            later = [t + j for j in range(1, within + 1)]
            if all(p in P and _observed(recs, p) for p in later):
                c["followed"] += w
                if any(_status(recs, p) == "poor" for p in later):
                    c["relapsed"] += w
                else:
                    c["sustained"] += w
            else:
                c["not_followed"] += w
    return out


def confirmed_counts(hist: History, periods_out=2, by=(), weight=None) -> dict:
    """{(by..., t): counts} for confirmed_exit_rates (rows where poor at t-1)."""
    out: dict = {}
    P = set(hist.periods)
    for recs in hist.households.values():
        for t in hist.periods:
            if t - 1 not in P or _status(recs, t - 1) != "poor":
                continue
            c = out.setdefault(_key(recs[t - 1], by) + (t,), defaultdict(float))
            w = _weight(recs[t - 1], weight)
            span = [t + j for j in range(periods_out)]
            if all(p in P and _observed(recs, p) for p in span):
                c["at_risk"] += w
                if _status(recs, t) in NOT_POOR:
                    c["exits"] += w
                    if all(_status(recs, p) in NOT_POOR for p in span):
                        c["confirmed_exits"] += w
                    else:
                        c["returned"] += w
            elif _observed(recs, t):
                c["not_followed"] += w
    return out


def transition_counts(hist: History, by=(), weight=None) -> dict:
    """{(by..., from_status, to_status): count} over consecutive observed pairs."""
    out: dict = defaultdict(float)
    P = set(hist.periods)
    for recs in hist.households.values():
        for t in hist.periods:
            if t - 1 in P and _observed(recs, t - 1) and _observed(recs, t):
                key = _key(recs[t - 1], by) + (recs[t - 1].status, recs[t].status)
                out[key] += _weight(recs[t - 1], weight)
    return dict(out)
