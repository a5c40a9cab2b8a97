"""The 2025 administrative map: 63 -> 34 provinces, commune crosswalks, name matching.

From 1 July 2025 Vietnam has 34 provinces (63 before), no district level, and 3,321
communes (10,035 before). Provinces merged *whole*, so the province crosswalk
(``lib/povdyn/data/provinces_2025.csv``: old_code, old_province, province_2025, region)
is exact. Communes were split, so a commune crosswalk carries household-count weights.

Name matching (``normalise_name``) ignores diacritics (đ = d), case, spaces,
punctuation and the administrative prefixes Tỉnh, Thành phố, TP., TP, Tp, Xã, Phường,
Thị trấn, Quận, Huyện — so "TP. Hồ Chí Minh", "thanh pho ho chi minh" and "Hồ Chí Minh"
are one unit. Unknown names are always reported (``SchemaError`` listing every one, or
NA plus ``result.attrs["unknown"]`` with ``errors="coerce"``), never silently dropped.

Public functions:

* ``normalise_name(s)`` -> matching key
* ``province_2025(names, errors="raise")`` -> Series of 2025 province names
* ``old_province(names, errors="raise")`` -> Series of canonical pre-2025 names
* ``region_of(names)``, ``old_provinces()``, ``new_provinces()``
* ``is_post_merger(period)`` -> True for periods recorded with the 34 new names
* ``load_commune_crosswalk(path)``, ``apply_crosswalk(table, count_cols, crosswalk, level)``
* ``to_geography(df, geography="2025"|"pre2025")``
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import SchemaError
from .periods import parse_period

PROVINCES_CSV = Path(__file__).parent / "data" / "provinces_2025.csv"

# Administrative prefixes, as they read after folding (no diacritics, lower case).
# Longest first so "thanh pho" wins over nothing and "thi tran" is taken whole.
_PREFIXES = ("thanh pho", "thi tran", "thi xa", "tinh", "phuong", "quan", "huyen", "xa", "tp")
_PREFIX_RE = re.compile(r"^(?:" + "|".join(p.replace(" ", r"\s+") for p in _PREFIXES)
                        + r")(?:[\s.,:;\-]+|$)")
_TP_GLUED = re.compile(r"^tp\.?(?=[a-z])")  # "TP.HCM", "tp.hue": TP glued to the name
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")

# Common short forms and English spellings (keys are already normalised).
_ALIASES = {
    "hcm": "Hồ Chí Minh",
    "tphcm": "Hồ Chí Minh",
    "hcmc": "Hồ Chí Minh",
    "hochiminhcity": "Hồ Chí Minh",
    "saigon": "Hồ Chí Minh",
    "hanoicity": "Hà Nội",
    "hn": "Hà Nội",
    "brvt": "Bà Rịa - Vũng Tàu",
    "thuathienhue": "Thừa Thiên Huế",
}

# First calendar quarter recorded with the 34 new provinces (mergers took effect on
# 1 July 2025). Annual reviews run Sep–Dec, so the 2025 annual review uses new names.
FIRST_NEW_QUARTER = "2025Q3"
FIRST_NEW_YEAR = 2025


from .text import fold  # noqa: E402 - the one name-folding helper (povdyn.text)


def normalise_name(s) -> str:
    """Matching key of a Vietnamese place name.

    Diacritic-insensitive (đ = d), case-, space- and punctuation-insensitive, and
    without a leading administrative prefix (Tỉnh, Thành phố, TP., TP, Tp, Xã, Phường,
    Thị trấn, Quận, Huyện). "TP. Hồ Chí Minh" -> "hochiminh"; "Tỉnh Hà Giang" ->
    "hagiang". A prefix alone ("Quận 11") keeps what follows it ("11").
    """
    s = fold(s).strip(" .,-")
    s = _TP_GLUED.sub("", s)
    stripped = _PREFIX_RE.sub("", s, count=1)
    if _NOT_ALNUM.sub("", stripped):  # never strip a name down to nothing
        s = stripped
    return _NOT_ALNUM.sub("", s)


@lru_cache(maxsize=1)
def _table() -> pd.DataFrame:
    table = pd.read_csv(PROVINCES_CSV, dtype=str)
    for col in table.columns:
        table[col] = table[col].map(lambda v: unicodedata.normalize("NFC", v.strip()))
    return table


@lru_cache(maxsize=1)
def _lookups() -> tuple[dict, dict]:
    """(key -> 2025 province, key -> canonical old province name).

    A new name that is also an old name ("Tuyên Quang") maps to the same 2025 province
    either way (a merged province keeps the name of one of its parts), so keys never
    conflict for the 2025 lookup; the old-name lookup is only exact for old names.
    """
    table = _table()
    to_new: dict[str, str] = {}
    to_old: dict[str, str] = {}
    for old, new in zip(table["old_province"], table["province_2025"]):
        to_new[normalise_name(old)] = new
        to_old[normalise_name(old)] = old
    for new in table["province_2025"].unique():
        key = normalise_name(new)
        if to_new.setdefault(key, new) != new:  # pragma: no cover - data sanity
            raise SchemaError(f"{PROVINCES_CSV}: {new!r} is also an old province that "
                              f"merged into {to_new[key]!r}")
    for alias, target in _ALIASES.items():
        to_new[alias] = to_new[normalise_name(target)]
        if normalise_name(target) in to_old:
            to_old[alias] = to_old[normalise_name(target)]
    return to_new, to_old


def old_provinces() -> list[str]:
    """The 63 provinces in force before 1 July 2025 (GSO code order)."""
    return list(_table()["old_province"])


def new_provinces() -> list[str]:
    """The 34 provinces in force since 1 July 2025 (order of first appearance)."""
    return list(dict.fromkeys(_table()["province_2025"]))


def _map_names(names, lookup: dict, what: str, errors: str) -> pd.Series:
    if errors not in ("raise", "coerce"):
        raise ValueError(f"errors={errors!r}: use 'raise' or 'coerce'")
    series = names if isinstance(names, pd.Series) else pd.Series(list(names), dtype=object)
    uniques = pd.unique(series.dropna())
    mapping, unknown = {}, []
    for name in uniques:
        target = lookup.get(normalise_name(name))
        if target is None:
            unknown.append(name)
        else:
            mapping[name] = target
    if unknown and errors == "raise":
        listed = ", ".join(repr(u) for u in unknown[:50])
        more = f" (and {len(unknown) - 50} more)" if len(unknown) > 50 else ""
        raise SchemaError(
            f"{len(unknown)} unknown {what} name(s): {listed}{more}. Fix the spelling in "
            f"the source file, or add the unit to {PROVINCES_CSV.name}."
        )
    out = series.map(mapping).astype(object)
    out = out.where(out.notna(), pd.NA)
    out.attrs["unknown"] = list(unknown)
    return out


def province_2025(names, errors: str = "raise") -> pd.Series:
    """The 2025 province (one of 34, with correct diacritics) of each old or new name.

    Accepts any spelling variant handled by ``normalise_name`` and the usual short forms
    (HCM, TP.HCM, Sài Gòn). Missing values stay NA. Unknown names: ``errors="raise"``
    raises ``SchemaError`` listing every unknown name; ``errors="coerce"`` returns NA
    for them and lists them in ``result.attrs["unknown"]`` so the caller can report or
    quarantine them.
    """
    to_new, _ = _lookups()
    return _map_names(names, to_new, "province", errors)


def old_province(names, errors: str = "raise") -> pd.Series:
    """Canonical pre-2025 province name of each old-name spelling (63 names)."""
    _, to_old = _lookups()
    return _map_names(names, to_old, "pre-2025 province", errors)


def region_of(names, errors: str = "raise") -> pd.Series:
    """Socio-economic region (GSO's six regions, as in provinces_2025.csv) of each name.

    An old province name gets its own region. A 2025 province takes the region of the
    old province whose name it kept (Huế: that of Thừa Thiên Huế). Some 2025 provinces
    join provinces from two regions (e.g. Tây Ninh + Long An, Gia Lai + Bình Định);
    report by old provinces when the region must be exact.
    """
    table = _table()
    by_old = dict(zip(table["old_province"].map(normalise_name), table["region"]))
    series = names if isinstance(names, pd.Series) else pd.Series(list(names), dtype=object)
    keys = {}
    for name in pd.unique(series.dropna()):
        key = normalise_name(name)
        key = normalise_name(_ALIASES[key]) if key in _ALIASES else key
        if key == normalise_name("Huế"):
            key = normalise_name("Thừa Thiên Huế")
        keys[name] = by_old.get(key)
    unknown = [n for n, r in keys.items() if r is None]
    if unknown and errors == "raise":
        raise SchemaError(f"{len(unknown)} unknown province name(s): "
                          + ", ".join(repr(u) for u in unknown))
    out = series.map({n: r for n, r in keys.items() if r is not None}).astype(object)
    out = out.where(out.notna(), pd.NA)
    out.attrs["unknown"] = unknown
    return out


def is_post_merger(period) -> bool:
    """True when a period's register records the 34 new provinces.

    Quarterly: from 2025Q3 (mergers took effect 1 July 2025). Annual: from 2025 (the
    annual review runs 1 Sep – 14 Dec, after the mergers).
    """
    freq, index = parse_period(period)
    if freq == "quarter":
        return index >= parse_period(FIRST_NEW_QUARTER)[1]
    return index >= FIRST_NEW_YEAR


# ---------------------------------------------------------------- commune crosswalk

CROSSWALK_COLUMNS = ["old_commune", "old_province", "new_commune", "new_province", "weight"]


def _commune_key(commune) -> str:
    """Exact-ish key: folded, prefix kept ("xa tan phu" differs from "thi tran tan phu")."""
    return _NOT_ALNUM.sub("", fold(commune))


def load_commune_crosswalk(path, tolerance: float = 1e-6) -> pd.DataFrame:
    """Read and validate a commune crosswalk (csv path or DataFrame).

    Format: one row per (old commune, new commune) piece, columns old_commune,
    old_province, new_commune, new_province, weight, where weight is the share of the
    old commune's households that went to the new commune; optional old_district to
    tell apart same-named communes of one province. Checks: columns present; weights
    in [0, 1] and summing to 1 (± tolerance) per old unit; provinces known; the new
    province is the one the old province merged into (provinces merged whole). Every
    problem is listed with its csv row number (header = row 1).

    Returns the table with canonical province names and matching keys
    (``_key_exact``, ``_key_loose``) added.
    """
    source = f"{path}" if not isinstance(path, pd.DataFrame) else "commune crosswalk"
    table = path.copy() if isinstance(path, pd.DataFrame) else pd.read_csv(path, dtype=str)
    missing = [c for c in CROSSWALK_COLUMNS if c not in table.columns]
    if missing:
        raise SchemaError(f"{source}: missing column(s) {missing}; a commune crosswalk "
                          f"needs {CROSSWALK_COLUMNS} (optional old_district)")
    table = table.reset_index(drop=True)
    rows = pd.Series(np.arange(len(table)) + 2, index=table.index)  # csv row numbers
    problems: list[str] = []
    weight = pd.to_numeric(table["weight"], errors="coerce")
    bad = weight.isna() | (weight < 0) | (weight > 1 + tolerance)
    for i in table.index[bad]:
        problems.append(f"row {rows[i]}: weight {table.at[i, 'weight']!r} is not a share in [0, 1]")
    table["weight"] = weight
    old_prov = old_province(table["old_province"], errors="coerce")
    new_prov = province_2025(table["new_province"], errors="coerce")
    for col, mapped in (("old_province", old_prov), ("new_province", new_prov)):
        for i in table.index[mapped.isna()]:
            problems.append(f"row {rows[i]}: unknown {col} {table.at[i, col]!r}")
    merged_into = province_2025(old_prov.dropna())
    wrong = merged_into.ne(new_prov.loc[merged_into.index]) & new_prov.loc[merged_into.index].notna()
    for i in merged_into.index[wrong]:
        problems.append(f"row {rows[i]}: {table.at[i, 'old_province']} merged into "
                        f"{merged_into[i]}, not {table.at[i, 'new_province']}")
    for col in ("old_commune", "new_commune"):
        blank = table[col].isna() | (table[col].astype(str).str.strip() == "")
        for i in table.index[blank]:
            problems.append(f"row {rows[i]}: empty {col}")
    table["old_province"] = old_prov
    table["new_province"] = new_prov
    district = (table["old_district"].fillna("").map(_commune_key)
                if "old_district" in table.columns else pd.Series("", index=table.index))
    table["_key_exact"] = (table["old_province"].astype(str) + "|" + district + "|"
                           + table["old_commune"].map(_commune_key))
    table["_key_loose"] = (table["old_province"].astype(str) + "|" + district + "|"
                           + table["old_commune"].map(normalise_name))
    if not problems:
        sums = table.groupby("_key_exact")["weight"].sum()
        off = sums[(sums - 1).abs() > tolerance]
        for key, total in off.items():
            first = rows[table.index[table["_key_exact"] == key][0]]
            problems.append(f"row {first}: weights of old commune "
                            f"{key.split('|')[-1]!r} ({key.split('|')[0]}) sum to {total:.6g}, not 1")
    if problems:
        raise SchemaError(f"{source}: {len(problems)} problem(s):\n  " + "\n  ".join(problems[:100]))
    return table


def apply_crosswalk(table: pd.DataFrame, count_cols, crosswalk=None,
                    level: str = "province", province_col: str = "province",
                    commune_col: str = "commune", district_col: str | None = None) -> pd.DataFrame:
    """Re-express counts by old units as counts by 2025 units; totals are conserved.

    ``table`` holds counts (``count_cols``) by old units (``province_col``, and
    ``commune_col`` at commune level) plus any other grouping columns (period, status,
    ...), which are kept. Province level is exact (provinces merged whole): counts are
    summed into ``province_2025``. Commune level allocates each old commune's counts to
    its new communes by the crosswalk weights (household shares), so results can be
    fractional; output columns ``province_2025`` and ``commune_2025``. Only counts can be
    allocated: recompute rates from the allocated numerators and denominators.

    Unknown provinces, old communes missing from the crosswalk, and names that match
    two crosswalk units (same name after removing prefixes/diacritics) raise
    ``SchemaError`` listing every one of them.
    """
    count_cols = [count_cols] if isinstance(count_cols, str) else list(count_cols)
    missing = [c for c in count_cols + [province_col] if c not in table.columns]
    if level == "commune" and commune_col not in table.columns:
        missing.append(commune_col)
    if missing:
        raise SchemaError(f"apply_crosswalk: table has no column(s) {missing}")
    # other columns are grouping keys; old-unit columns and any existing new-unit
    # columns (recomputed here) are not
    keep = [c for c in table.columns
            if c not in count_cols + [province_col, commune_col, district_col or "",
                                      "province_2025", "commune_2025"]]
    if level == "province":
        out = table.copy()
        out["province_2025"] = province_2025(out[province_col])
        out = out.drop(columns=[province_col])
        groups = keep + ["province_2025"]
        return out.groupby(groups, dropna=False, sort=True)[count_cols].sum().reset_index()
    if level != "commune":
        raise ValueError(f"level={level!r}: use 'province' or 'commune'")
    if crosswalk is None:
        raise SchemaError("apply_crosswalk(level='commune') needs a commune crosswalk "
                          "(load_commune_crosswalk(path))")
    if "_key_exact" not in crosswalk.columns:
        crosswalk = load_commune_crosswalk(crosswalk)
    prov = old_province(table[province_col])
    district = (table[district_col].fillna("").map(_commune_key) if district_col
                else pd.Series("", index=table.index))
    exact = prov.astype(str) + "|" + district + "|" + table[commune_col].map(_commune_key)
    loose = prov.astype(str) + "|" + district + "|" + table[commune_col].map(normalise_name)
    exact_units = crosswalk.groupby("_key_exact")["_key_loose"].first()
    loose_units = crosswalk.drop_duplicates("_key_exact").groupby("_key_loose")["_key_exact"].agg(list)
    resolved, unknown, ambiguous = {}, [], []
    for e, lo, name, p in zip(exact, loose, table[commune_col], prov):
        if e in resolved or (name, p) in unknown:
            continue
        if e in exact_units.index:
            resolved[e] = e
        elif lo in loose_units.index and len(loose_units[lo]) == 1:
            resolved[e] = loose_units[lo][0]
        elif lo in loose_units.index:
            ambiguous.append(f"{name!r} ({p}): matches {len(loose_units[lo])} old communes")
            unknown.append((name, p))
        else:
            unknown.append((name, p))
    problems = [f"{n!r} ({p}) is not in the crosswalk" for n, p in unknown
                if not any(a.startswith(repr(n)) for a in ambiguous)] + ambiguous
    if problems:
        raise SchemaError(f"apply_crosswalk: {len(problems)} commune(s) cannot be placed: "
                          + "; ".join(problems[:100]) + ". Add them to the crosswalk, or give "
                          "the old district (district_col) to tell same-named communes apart.")
    work = table[keep + count_cols].copy()
    work["_key_exact"] = exact.map(resolved).to_numpy()
    pieces = crosswalk[["_key_exact", "new_province", "new_commune", "weight"]]
    merged = work.merge(pieces, on="_key_exact", how="left", validate="many_to_many")
    for col in count_cols:
        merged[col] = merged[col] * merged["weight"]
    merged = merged.rename(columns={"new_province": "province_2025", "new_commune": "commune_2025"})
    groups = keep + ["province_2025", "commune_2025"]
    return merged.groupby(groups, dropna=False, sort=True)[count_cols].sum().reset_index()


# ------------------------------------------------------------------- reporting column

def to_geography(df: pd.DataFrame, geography: str = "2025", province_col: str = "province",
                 period_col: str = "period", id_col: str = "household_id") -> pd.DataFrame:
    """Copy of ``df`` with a province column for reporting in the chosen geography.

    ``geography="2025"`` adds ``province_2025`` (the 34 provinces; exact for every row,
    old or new name). ``geography="pre2025"`` adds ``province_pre2025`` (the 63 old
    provinces): rows recorded before the mergers (``is_post_merger`` False) keep their
    own (canonical) name; rows recorded after take, per household, the old province of
    its latest earlier pre-merger row; failing that, the 2025 province's only old part
    when it was not merged (e.g. Cao Bằng); otherwise NA (a household first seen after
    July 2025 in a merged province) — ``result.attrs["unresolved_pre2025"]`` counts those
    rows so a report can say so. Either way a time series crosses July 2025 without a
    break.
    """
    if geography not in ("2025", "pre2025"):
        raise ValueError(f"geography={geography!r}: use '2025' or 'pre2025'")
    if province_col not in df.columns:
        raise SchemaError(f"to_geography: no column {province_col!r}")
    out = df.copy()
    if geography == "2025":
        out["province_2025"] = province_2025(out[province_col]).to_numpy()
        return out
    periods = pd.unique(out[period_col])
    post = out[period_col].map({p: is_post_merger(p) for p in periods}).astype(bool).to_numpy()
    old = pd.Series(pd.NA, index=out.index, dtype=object)
    if (~post).any():
        old[~post] = old_province(out.loc[~post, province_col]).to_numpy()
    if post.any():
        freq_index = out[period_col].map({p: parse_period(p)[1] for p in periods})
        if id_col in out.columns:
            earlier = pd.DataFrame({"id": out[id_col], "t": freq_index, "old": old})[~post]
            earlier = earlier.dropna(subset=["old"]).sort_values("t")
            last_old = earlier.groupby("id")["old"].last()
            old[post] = out.loc[post, id_col].map(last_old).to_numpy()
        table = _table()
        parts = table.groupby("province_2025")["old_province"].agg(list)
        single = {new: olds[0] for new, olds in parts.items() if len(olds) == 1}
        new_names = province_2025(out.loc[post, province_col])
        fallback = new_names.map(single)
        filled = old[post].where(old[post].notna(), fallback.to_numpy())
        old[post] = filled.to_numpy()
    out["province_pre2025"] = old.to_numpy()
    out.attrs["unresolved_pre2025"] = int(out["province_pre2025"].isna().sum()
                                          - out[province_col].isna().sum())
    return out
