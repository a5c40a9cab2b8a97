"""Writing outputs atomically (temp file + os.replace) and the small tables' final form."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .. import schema
from ..periods import frequency_and_index
from .checking import _CARRIED


def _atomic_write_bytes(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        if path.is_dir():  # an older run wrote a dataset folder here
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _prepare_panel_dir(panel_dir: Path) -> None:
    """panel.parquet as a folder of period files (ingest.by_period); an older run's
    single file there is removed."""
    if panel_dir.is_file():
        panel_dir.unlink()
    panel_dir.mkdir(parents=True, exist_ok=True)


def _write_parquet(df: pd.DataFrame | pa.Table, path: Path, metadata: dict | None = None) -> None:
    table = df if isinstance(df, pa.Table) else pa.Table.from_pandas(df, preserve_index=False)
    if metadata:
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}),
             **{k.encode(): str(v).encode() for k, v in metadata.items()}})
    _atomic_write_bytes(path, lambda tmp: pq.write_table(
        table, tmp, compression="zstd", write_statistics=True))


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    """A csv for people to open in Excel: formula-like cells neutralised (schema.
    spreadsheet_safe), BOM so Excel reads UTF-8."""
    safe = schema.neutralise_formulas(df)
    _atomic_write_bytes(path, lambda tmp: safe.to_csv(tmp, index=False, encoding="utf-8-sig",
                                                      lineterminator="\n"))


def _write_json(data: dict, path: Path) -> None:
    text = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False, default=str) + "\n"
    _atomic_write_bytes(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


def _finish_panel(panel: pd.DataFrame) -> pd.DataFrame:
    if panel.empty:
        return _empty(schema.REQUIRED_PANEL_COLUMNS + ["province_2025"])
    panel = panel.drop(columns=_CARRIED)
    panel = schema.canonical_dtypes(panel)
    _, index = frequency_and_index(panel["period"])
    panel = panel.assign(_order=index).sort_values(["household_id", "_order"], kind="stable")
    panel = panel.drop(columns="_order")
    return panel[schema.column_order(panel.columns)].reset_index(drop=True)


def _finish_totals(totals: pd.DataFrame) -> pd.DataFrame:
    """totals.parquet: province (as written), province_2025, commune (null for a province
    total), period (the panel's type), households (int64), sorted; then each commune
    row's 2025 commune (``totals_communes_2025``; its unplaced names in
    ``attrs["unplaced"]``)."""
    if "commune" not in totals.columns:
        totals = totals.assign(commune=None)
    out = pd.DataFrame({
        "province": totals["province"].astype(object),
        "province_2025": totals["province_2025"].astype(object),
        "commune": totals["commune"].astype(object).where(totals["commune"].notna(), None),
        "period": schema._period_dtype(totals["period"].astype(object)),
        "households": totals["households_total"].astype("int64"),
    })
    order = np.lexsort([out["period"].astype(str).to_numpy(),
                        out["commune"].fillna("").to_numpy(dtype=str),
                        out["province"].to_numpy(dtype=str),
                        out["province_2025"].to_numpy(dtype=str)])
    out = out.iloc[order].reset_index(drop=True)
    mapped, unplaced = totals_communes_2025(out)
    out = pd.concat([out, mapped], axis=1)
    out.attrs["unplaced"] = unplaced.to_dict("records")  # plain records: attrs survive concat
    return out


#: what totals_communes_2025 adds to totals.parquet
TOTALS_2025_COLUMNS = ["commune_2025", "commune_code", "old_commune_code", "commune_2025_basis"]


def totals_communes_2025(totals: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The 2025 commune of each commune row of the household totals, mapped as ingest
    maps the register (``povdyn.geo.commune_2025``: a 2025 name maps to itself, a
    pre-reform name through the official crosswalk; the row's period says which).
    Returns (columns ``TOTALS_2025_COLUMNS`` aligned with ``totals``' rows, the names
    that could not be placed).

    ``commune_2025_basis``: "recorded" (a 2025 name), "crosswalk" (an old commune that
    went whole into one 2025 commune), "split" (an old commune split between several:
    ``commune_2025`` and ``commune_code`` stay empty, ``old_commune_code`` says which),
    "ambiguous" / "unmatched" (``commune_2025`` = "? name", listed in the second frame
    and in communes_unplaced.csv). A split commune's total is never divided by weights:
    the crosswalk has no household counts of the pieces, and methods.md does not let a
    rate rest on a weighted denominator unsaid, so the 2025 communes that received a
    piece have no total at that review (``povdyn.stocks.commune_totals``). A province
    row (no commune) gets empty columns."""
    from ..geo import UNKNOWN_COMMUNE_PREFIX, commune_2025

    out = pd.DataFrame({c: pd.Series([None] * len(totals), dtype=object, index=totals.index)
                        for c in TOTALS_2025_COLUMNS})
    unplaced = pd.DataFrame(columns=["province", "district", "commune", "reason", "candidates"])
    rows = totals[totals["commune"].notna()]
    if not len(rows):
        return out, unplaced
    names = rows[["province", "commune", "period"]].copy()
    names["period"] = names["period"].astype(object)
    mapped = commune_2025(names)
    pieces = mapped.groupby(level=0).size()
    first = mapped[~mapped.index.duplicated(keep="first")]
    split = pieces.reindex(first.index) > 1
    basis = first["match"].map({"2025": "recorded", "ambiguous": "ambiguous",
                                "unmatched": "unmatched"}).fillna("crosswalk")
    basis = basis.where(~split, "split")
    placed = basis.isin(["recorded", "crosswalk"])
    out.loc[first.index, "commune_2025"] = first["commune_2025"].where(
        placed | first["commune_2025"].astype(str).str.startswith(UNKNOWN_COMMUNE_PREFIX), None)
    out.loc[first.index, "commune_code"] = first["commune_code"].where(placed, None)
    out.loc[first.index, "old_commune_code"] = first["old_commune_code"]
    out.loc[first.index, "commune_2025_basis"] = basis
    problems = mapped.attrs.get("unmatched", [])
    if problems:
        unplaced = pd.DataFrame(problems).reindex(columns=unplaced.columns)
        unplaced["candidates"] = unplaced["candidates"].map(lambda c: "; ".join(c or []))
    for col in TOTALS_2025_COLUMNS:
        out[col] = out[col].astype(object).where(out[col].notna(), None)
    return out, unplaced


def _finish_adoption(adoption: pd.DataFrame) -> pd.DataFrame:
    """adoption.parquet: province (as written), province_2025, district (null when not
    given), commune, program, adoption_year (Int64, <NA> = never), sorted."""
    out = pd.DataFrame({col: adoption[col].astype(object).where(adoption[col].notna(), None)
                        for col in schema.ADOPTION_COLUMNS[:-1]})
    out["adoption_year"] = adoption["adoption_year"].astype("Int64")
    order = np.lexsort([out[c].fillna("").to_numpy(dtype=str)
                        for c in ("program", "commune", "district", "province", "province_2025")])
    return out.iloc[order].reset_index(drop=True)


def _finish_support(support: pd.DataFrame) -> pd.DataFrame:
    if support.empty:
        frame = _empty(schema.SUPPORT_COLUMNS)
        frame["amount_vnd"] = frame["amount_vnd"].astype("float64")
        return frame
    support = schema.canonical_dtypes(support.drop(columns=_CARRIED))
    order = [c for c in schema.SUPPORT_COLUMNS if c in support.columns]
    # by the columns' text, stable: Arrow's sort of the UTF-8 bytes is the order of the
    # code points Python compares (np.lexsort over the object arrays took 29 s for the
    # 27M demo's 1.76M support rows)
    sort_key = pa.table({c: pa.array(support[c].astype(str).to_numpy(dtype=object),
                                     pa.string()) for c in order})
    support = support.iloc[pc.sort_indices(
        sort_key, sort_keys=[(c, "ascending") for c in order]).to_numpy()]
    return support[schema.column_order(support.columns, "support")].reset_index(drop=True)
