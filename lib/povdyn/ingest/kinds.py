"""Register kind: lists (poor / near-poor lists, absent = not poor) or a full panel
(issue 10 §1), decided per province from row counts."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..periods import frequency_and_index


KIND_COUNTS = ("poor", "near_poor", "exit_marks", "non_poor", "removals")
FULL_PANEL_MIN_NON_POOR_SHARE = 0.2  # non-poor rows (not exits) among rows with a status
LIST_MIN_ROWS = 20  # rows with a status before a source with no non-poor row reads as a list


def classify_kind(counts: dict) -> str:
    """'lists', 'full' or 'unclear' from a source's or province's row counts.

    A list register (poor and near-poor lists plus removals) has no non-poor row, except
    rows that mark an exit: a non-poor row of a household listed at its previous row, or
    one whose reason is an exit ("Thoát nghèo"). A full panel has every household at every
    review, so non-poor households that are not exits are a large share of its rows (at
    least FULL_PANEL_MIN_NON_POOR_SHARE). In between is unclear."""
    with_status = counts["poor"] + counts["near_poor"] + counts["exit_marks"] + counts["non_poor"]
    if counts["non_poor"] == 0:
        return "lists"
    if counts["non_poor"] >= FULL_PANEL_MIN_NON_POOR_SHARE * with_status:
        return "full"
    return "unclear"


def _describe_counts(c: dict) -> str:
    return (f"{c['poor']:,} poor, {c['near_poor']:,} near-poor, {c['non_poor']:,} non-poor, "
            f"{c['exit_marks']:,} exit rows, {c['removals']:,} removals")


def register_kinds(panel: pd.DataFrame) -> tuple[str | None, dict, dict, list[str]]:
    """(overall kind, {2025 province: kind}, {2025 province: counts}, errors).

    Decided per province (2025 names) from its rows pooled over sources (classify_kind),
    then checked source by source (file / sheet): in a full province, a source with
    LIST_MIN_ROWS or more rows with a status and not one non-poor row is a list mixed into
    a full panel; an unclear province is an error too. The panel takes one kind, so
    provinces of different kinds are an error (ingest them into separate folders)."""
    if panel.empty:
        return None, {}, {}, []
    _, order = frequency_and_index(panel["period"])
    status = panel["status"]
    frame = pd.DataFrame({
        "hh": panel["household_id"].to_numpy(), "order": order,
        "province": panel["province_2025"].to_numpy(),
        "source": (panel["_file"] + np.where(panel["_sheet"] != "",
                                             " [sheet " + panel["_sheet"] + "]", "")).to_numpy(),
        "status": status.to_numpy(), "exit": panel["_exit"].to_numpy(dtype=bool)})
    frame = frame.sort_values(["hh", "order"], kind="stable")
    listed = frame["status"].isin(["poor", "near_poor"])
    prev_listed = listed.shift(fill_value=False) & frame["hh"].eq(frame["hh"].shift())
    non_poor = frame["status"] == "non_poor"
    frame["what"] = np.select(
        [frame["status"] == "poor", frame["status"] == "near_poor",
         non_poor & (prev_listed | frame["exit"]), non_poor],
        ["poor", "near_poor", "exit_marks", "non_poor"], "removals")
    cells = frame.groupby(["province", "source", "what"]).size().rename("n").reset_index()
    return decide_kinds(cells)


def decide_kinds(cells: pd.DataFrame) -> tuple[str | None, dict, dict, list[str]]:
    """register_kinds' decision from row counts: `cells` has columns province, source,
    what (one of KIND_COUNTS) and n."""
    if cells.empty:
        return None, {}, {}, []
    cells = cells.pivot_table(index=["province", "source"], columns="what", values="n",
                              aggfunc="sum", fill_value=0)
    cells = cells.reindex(columns=list(KIND_COUNTS), fill_value=0)
    by_province, counts, errors, small_lists = {}, {}, [], []
    for province, block in cells.groupby(level="province", sort=True):
        total = {k: int(v) for k, v in block.sum().items()}
        counts[province] = total
        kind = classify_kind(total)
        sources = {src: {k: int(v) for k, v in row.items()}
                   for (_, src), row in block.iterrows()}
        listing = "; ".join(f"{src}: {_describe_counts(c)}" for src, c in list(sources.items())[:6])
        more = f"; and {len(sources) - 6} more sources" if len(sources) > 6 else ""
        if kind == "unclear":
            errors.append(
                f"province {province}: cannot tell whether this is a list register or a full "
                f"panel ({_describe_counts(total)}): a list has no non-poor rows except exits, "
                f"a full panel has non-poor households as at least "
                f"{FULL_PANEL_MIN_NON_POOR_SHARE:.0%} of its rows. Sources: {listing}{more}")
            continue
        if kind == "full":
            lists = {src: c for src, c in sources.items() if classify_kind(c) == "lists"
                     and c["poor"] + c["near_poor"] + c["exit_marks"] >= LIST_MIN_ROWS}
            if lists:
                fulls = {src: c for src, c in sources.items() if src not in lists}
                errors.append(
                    f"province {province}: list files mixed with a full panel: lists (no "
                    f"non-poor household) in "
                    + "; ".join(f"{s}: {_describe_counts(c)}" for s, c in list(lists.items())[:6])
                    + " — full panel in "
                    + "; ".join(f"{s}: {_describe_counts(c)}" for s, c in list(fulls.items())[:6])
                    + ". Ingest lists and full panels into separate folders.")
                continue
        if kind == "lists" and sum(total[k] for k in ("poor", "near_poor", "exit_marks")) \
                < LIST_MIN_ROWS:
            small_lists.append(province)  # a handful of households all poor: too few to tell
            continue
        by_province[province] = kind
    for province in small_lists:
        others = set(by_province.values())
        by_province[province] = others.pop() if len(others) == 1 else "lists"
    kinds = set(by_province.values())
    overall = kinds.pop() if len(kinds) == 1 and not errors else None
    if len(set(by_province.values())) > 1:
        groups = {k: sorted(p for p, v in by_province.items() if v == k) for k in ("lists", "full")}
        errors.append("provinces differ in register kind (one panel is read with one rule): "
                      f"lists in {', '.join(groups['lists'])}; full panel in "
                      f"{', '.join(groups['full'])}. Ingest them into separate folders.")
    return overall, by_province, counts, errors
