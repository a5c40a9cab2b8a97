"""The pandas spells povdyn computed before spells moved into the engine (issue 15 §4),
kept as a reference: ``povdyn.survival`` builds its runs with window functions in
DuckDB/Spark now, and tests/test_survival.py checks that they are identical to these,
row for row, on the demo register. Vectorised numpy over the rows of every household
sorted by period (no SQL), so it is an independent implementation of methods.md's
spell rules."""
from __future__ import annotations

import numpy as np
import pandas as pd

from povdyn.periods import label


def runs(frame: pd.DataFrame, by: list[str], freq: str) -> pd.DataFrame:
    """Maximal runs of consecutive observed periods of one household in the same state
    (poor vs not poor), with how each run starts and ends. Vectorised (no per-household
    Python loop) so it scales to national panels."""
    cols = ["household_id", "period_index", "status", *by]
    if "removal_reason" in frame.columns:
        cols.append("removal_reason")
    f = frame[list(dict.fromkeys(cols))].sort_values(
        ["household_id", "period_index"], kind="mergesort"
    ).reset_index(drop=True)
    n = len(f)
    hh = f["household_id"].to_numpy()
    t = f["period_index"].to_numpy(dtype="int64")
    status = f["status"].to_numpy(dtype=object)
    observed = f["status"].notna().to_numpy()
    poor = (f["status"] == "poor").to_numpy(dtype=bool)
    removal = (
        f["removal_reason"].notna().to_numpy() if "removal_reason" in f.columns else np.zeros(n, bool)
    )

    # link[i]: row i-1 is the same household, the period just before, and observed
    link = np.zeros(n, dtype=bool)
    if n > 1:
        link[1:] = (hh[1:] == hh[:-1]) & (t[1:] - t[:-1] == 1) & observed[:-1]
    prev_poor = np.zeros(n, dtype=bool)
    prev_poor[1:] = poor[:-1]
    continues = link & observed & (poor == prev_poor)
    starts = np.flatnonzero(observed & ~continues)
    # the run of a start row ends just before the next start row or unobserved row
    breaks = np.flatnonzero(~(observed & continues))  # rows that do not continue a run
    pos = np.searchsorted(breaks, starts, side="right")
    ends = np.where(pos < len(breaks), breaks[np.minimum(pos, len(breaks) - 1)] - 1, n - 1)

    nxt = ends + 1
    has_next = nxt < n
    nxt_c = np.minimum(nxt, n - 1)
    next_same = has_next & (hh[nxt_c] == hh[ends])
    next_consecutive = next_same & (t[nxt_c] - t[ends] == 1)
    event = next_consecutive & observed[nxt_c]
    panel_last = t.max() if n else 0
    reason = np.full(len(starts), None, dtype=object)
    reason[~event & ~next_same & (t[ends] == panel_last)] = "end_of_panel"
    reason[~event & ~next_same & (t[ends] != panel_last)] = "not_observed"
    reason[~event & next_same & ~next_consecutive] = "gap"
    removed = ~event & next_consecutive & removal[nxt_c]
    reason[removed] = "removed"
    reason[~event & next_consecutive & ~removal[nxt_c]] = "missing_status"

    runs = pd.DataFrame(
        {
            "household_id": hh[starts],
            "start_index": t[starts],
            "last_index": t[ends],
            "poor": poor[starts],
            "start_status": status[starts],
            "known_start": link[starts],
            "event": event.astype("int64"),
            "end_status": np.where(event, status[nxt_c], None),
            "censor_reason": reason,
            "removal_reason": np.where(
                removed, f["removal_reason"].to_numpy(dtype=object)[nxt_c] if removal.any() else None, None
            ),
        }
    )
    for c in by:
        runs[c] = f[c].to_numpy()[starts]
    runs["duration"] = runs["last_index"] - runs["start_index"] + runs["event"]
    labels = {int(i): label(freq, int(i)) for i in np.unique(t)}
    runs["start_period"] = runs["start_index"].map(labels)
    runs["last_period_in_state"] = runs["last_index"].map(labels)
    return runs


def spells(frame: pd.DataFrame, by: list[str], freq: str, poor_state: bool) -> pd.DataFrame:
    """Exit spells (``poor_state=False``) or poverty spells of a pandas panel (with
    ``period_index``), in povdyn.survival's column layout."""
    r = runs(frame, by, freq)
    sel = r[r["poor"] == poor_state]
    if not poor_state:
        sel = sel[sel["known_start"]]
    out = sel.assign(left_censored=~sel["known_start"].to_numpy(dtype=bool)).reset_index(drop=True)
    out["spell_number"] = out.groupby("household_id").cumcount() + 1
    cols = ["household_id", "spell_number", *by, "start_period", "start_status",
            "last_period_in_state", "duration", "event", "end_status", "censor_reason",
            "removal_reason", "left_censored", "start_index"]
    return out[list(dict.fromkeys(cols))]
