"""The two register kinds of the same households (issue 10): a full panel, and the
poor / near-poor lists with household totals that offices keep. Built from one
synthetic full panel by the rules the demo's list writer follows
(povdyn.synth.writers.to_lists), so any difference between reports on the two is the
register kind's, not the data's."""
from __future__ import annotations

import pandas as pd

from povdyn import periods as _periods

# what a list carries (povdyn.synth.writers.LIST_HEADERS) plus the 2025 province ingest adds
LIST_COLUMNS = ["household_id", "period", "status", "province", "province_2025", "commune", "area",
                "household_size", "income_pc_month", "ethnic_minority", "meritorious", "removal_reason"]


def as_lists(full: pd.DataFrame) -> pd.DataFrame:
    """Poor and near-poor rows, and a removal row only for a household listed in its
    previous row -- a household removed while off the lists is not on any list."""
    df = full.sort_values(["household_id", "period"], key=_sort_key).reset_index(drop=True)
    listed = df["status"].isin(["poor", "near_poor"])
    same = df["household_id"].eq(df["household_id"].shift())
    was_listed = listed.shift(fill_value=False) & same
    keep = listed | (df["removal_reason"].notna() & was_listed)
    return df.loc[keep, [c for c in LIST_COLUMNS if c in df.columns]].reset_index(drop=True)


def household_totals(full: pd.DataFrame) -> pd.DataFrame:
    """Households with a status per commune at each annual review (Q4 on a quarterly
    panel; the period given as the year, as offices write it)."""
    freq, index = _periods.frequency_and_index(full["period"])
    review = (index % 4 == 3) if freq == "quarter" else pd.Series(True, index=full.index).to_numpy()
    rows = full[review & full["status"].notna().to_numpy()].copy()
    rows["year"] = (index[review & full["status"].notna().to_numpy()] // (4 if freq == "quarter" else 1))
    tot = (rows.groupby(["province", "province_2025", "commune", "year"], as_index=False)
           .size().rename(columns={"size": "households", "year": "period"}))
    return tot[["province", "province_2025", "commune", "period", "households"]]


def _sort_key(col):
    if col.name == "period":
        return col.map(lambda p: _periods.parse_period(p)[1])
    return col
