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

The official 2025 commune map (issue 13 §1; data of the ``vietnamadminunits`` package,
pinned, read offline): 10,040 pre-reform units -> 3,321 communes, wards and special
zones; 471 old communes were split.

* ``commune_crosswalk_2025()``, ``communes_2025()``: the map and the new units (GSO codes)
* ``commune_2025(df, household_counts=None)``: the contract function (province, district,
  commune -> province_2025, commune_2025, commune_code, weight; splits give several rows)
* ``unmatched_report(result)``: the listing of names that could not be placed
* ``split_household_counts(panel)``, ``link_commune_2025(panel)``: household-count weights
  of splits, and commune series across July 2025 by each household's own link
* ``panel_commune_2025(panel)`` / ``commune_names_2025(distinct)``: one 2025 commune per
  register row (ingest)
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


# ------------------------------------------------------- the official 2025 commune map
#
# Source: the ``vietnamadminunits`` package (PyPI, MIT licence, pinned in pyproject.toml),
# read offline from its data files (never its geocoding converter, which goes online):
# ``dataset.db`` lists the 10,040 pre-reform units (10,035 communes, wards and towns plus
# five island districts that had no commune level) and the 3,321 units in force since
# 1 July 2025, with GSO codes and the new units' areas; ``converter_2025.json`` maps
# every old unit to its new unit(s). The package's author built them from GSO's
# administrative-unit register (danhmuchanhchinh.gso.gov.vn) and the official merger map
# (sapnhap.bando.com.vn). 471 old communes were split between 2 to 5 new ones; the
# package gives no household or population counts for the pieces, only which piece is
# the "main" successor and the new units' areas (not the pieces' areas).

COMMUNE_MAP_PACKAGE = "vietnamadminunits"
# columns commune_2025 adds (the first four are the contract; old_commune_code is the
# GSO code of the pre-reform unit a row was placed in, NA for 2025 names and unknowns)
OUTPUT_COLUMNS = ("province_2025", "commune_2025", "commune_code", "weight", "match",
                  "weight_basis", "old_commune_code")
UNKNOWN_COMMUNE_PREFIX = "? "  # commune_2025 of an unmatched name: "? " + the name as given

# Administrative-unit prefixes of communes and districts as they read after folding, with
# the kind they stand for; abbreviations count only before a dot, a digit or a space.
_UNIT_PREFIXES = (
    ("thi tran", "thitran"), ("thitran", "thitran"), ("tt", "thitran"),
    ("dac khu", "dackhu"), ("phuong", "phuong"), ("p", "phuong"), ("f", "phuong"),
    ("xa", "xa"), ("x", "xa"),
    ("thanh pho", "thanhpho"), ("thi xa", "thixa"), ("quan", "quan"), ("huyen", "huyen"),
    ("tp", "thanhpho"), ("tx", "thixa"), ("q", "quan"), ("h", "huyen"),
)
_UNIT_PREFIX_RE = re.compile(
    r"^(?P<prefix>" + "|".join(
        re.escape(p).replace(r"\ ", r"\s*") for p, _ in
        sorted(_UNIT_PREFIXES, key=lambda pk: -len(pk[0]))) + r")(?:[\s.,:;\-]+|(?=\d))")
_UNIT_KIND = {p.replace(" ", ""): k for p, k in _UNIT_PREFIXES}
_LEADING_ZEROS = re.compile(r"(?<![0-9])0+(?=[0-9])")
_NOT_WORD = re.compile(r"[\W_]+")
# a prefix is one only when written as one: "Xá Lượng" and "Quan Sơn" are names
_PREFIX_SPELLINGS = {
    "thịtrấn", "thitran", "tt", "đặckhu", "dackhu", "phường", "phuong", "p", "f", "xã", "xa",
    "x", "thànhphố", "thanhpho", "thịxã", "thixa", "quận", "quan", "huyện", "huyen", "tp",
    "tx", "q", "h"}


def _unit_parts(name) -> tuple[str, str, str]:
    """(kind, folded key, accented key) of a commune or district name (see unit_key)."""
    if name is None or (not isinstance(name, str) and pd.isna(name)):
        return "", "", ""
    spaced = " ".join(unicodedata.normalize("NFC", str(name)).lower().split()).strip(" .,-")
    folded = fold(spaced)
    if len(folded) != len(spaced):  # a character without a precomposed form: fold both
        spaced = folded
    match = _UNIT_PREFIX_RE.match(folded)
    kind = ""
    if (match and _NOT_ALNUM.sub("", folded[match.end():])
            and _NOT_WORD.sub("", spaced[:match.end()]) in _PREFIX_SPELLINGS):
        kind = _UNIT_KIND[_NOT_ALNUM.sub("", match.group("prefix"))]
        folded, spaced = folded[match.end():], spaced[match.end():]
    key = _LEADING_ZEROS.sub("", _NOT_ALNUM.sub("", folded))
    accented = _LEADING_ZEROS.sub("", _NOT_WORD.sub("", spaced))
    return kind, key, accented


def unit_key(name) -> tuple[str, str]:
    """(kind, key) of a commune or district name, for matching.

    ``kind`` is the administrative prefix ("xa", "phuong", "thitran", "dackhu", "quan",
    "huyen", "thixa", "thanhpho") or "" when the name has none; ``key`` is the rest,
    folded (no diacritics, đ = d), without spaces or punctuation, numbers without leading
    zeros. "P. 12", "Phường 12", "phuong 12", "P12" and "Phường 012" all give
    ("phuong", "12"); "Quận 1", "Q.1" and "Q1" give ("quan", "1"); "Xã Tân Phú" gives
    ("xa", "tanphu"). A name that is only a prefix word keeps it as its key. Matching
    tries the name with its diacritics first: a few districts hold two communes that
    differ only by a tone mark (Phường Sa Pa and Phường Sa Pả).
    """
    kind, key, _ = _unit_parts(name)
    return kind, key


def _package_data_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec(COMMUNE_MAP_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SchemaError(f"the commune crosswalk needs the {COMMUNE_MAP_PACKAGE!r} package "
                          "(pinned in pyproject.toml): pip install -e .")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def commune_map_version() -> str:
    """Version of the installed ``vietnamadminunits`` package the crosswalk comes from."""
    from importlib.metadata import version

    return version(COMMUNE_MAP_PACKAGE)


@lru_cache(maxsize=1)
def _commune_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(old units, new units) from the package, with our province names and match keys."""
    import json
    import sqlite3

    data = _package_data_dir()
    with sqlite3.connect(f"file:{data / 'dataset.db'}?mode=ro", uri=True) as conn:
        old = pd.read_sql("SELECT provinceCode, provinceKey, district, districtKey, ward, "
                          "wardKey, wardCode FROM admin_units_legacy", conn)
        new = pd.read_sql("SELECT provinceKey, ward, wardKey, wardCode, wardType, wardAreaKm2 "
                          "FROM admin_units", conn)
    convert = json.loads((data / "converter_2025.json").read_text(encoding="utf-8"))
    table = _table()
    by_code = dict(zip(table["old_code"], table["old_province"]))
    old["old_province"] = old["provinceCode"].map(by_code)
    if old["old_province"].isna().any():  # pragma: no cover - data sanity
        raise SchemaError(f"{COMMUNE_MAP_PACKAGE}: unknown province codes "
                          f"{sorted(old.loc[old['old_province'].isna(), 'provinceCode'].unique())}")
    old["province_2025"] = province_2025(old["old_province"]).to_numpy()
    # island districts without communes (Côn Đảo, Lý Sơn, ...) stand as their own unit
    island = old["ward"].isna()
    old["old_commune"] = old["ward"].where(~island, old["district"])
    old["old_key"] = (old["provinceKey"] + "_" + old["districtKey"] + "_"
                      + old["wardKey"].fillna(""))
    new_key_to_province = {}
    for new_prov, old_prov_keys in convert["DICT_PROVINCE"].items():
        new_key_to_province[new_prov] = province_2025(
            old.loc[old["provinceKey"].isin(old_prov_keys), "old_province"].iloc[:1]).iloc[0]
    new["province_2025"] = new["provinceKey"].map(new_key_to_province)
    new = new.rename(columns={"ward": "commune_2025", "wardCode": "commune_code",
                              "wardAreaKm2": "area_km2"})
    code_of = {(p, k): c for p, k, c in zip(new["provinceKey"], new["wardKey"], new["commune_code"])}

    pieces = []
    for new_prov, wards in convert["DICT_PROVINCE_WARD_NO_DIVIDED"].items():
        for new_ward, old_keys in wards.items():
            for old_key in old_keys:
                pieces.append((old_key, code_of[(new_prov, new_ward)], False))
    for new_prov, splits in convert["DICT_PROVINCE_WARD_DIVIDED"].items():
        for old_key, parts in splits.items():
            for part in parts:
                pieces.append((old_key, code_of[(new_prov, part["newWardKey"])],
                               bool(part["isDefaultNewWard"])))
    links = pd.DataFrame(pieces, columns=["old_key", "commune_code", "main_successor"])
    links["pieces"] = links.groupby("old_key")["commune_code"].transform("size")
    links["main_successor"] |= links["pieces"] == 1
    old = old.merge(links, on="old_key", how="left", validate="one_to_many")
    if old["commune_code"].isna().any():  # pragma: no cover - data sanity
        raise SchemaError(f"{COMMUNE_MAP_PACKAGE}: old units without a new unit: "
                          f"{old.loc[old['commune_code'].isna(), 'old_key'].tolist()[:10]}")
    old = old.merge(new[["commune_code", "commune_2025"]], on="commune_code", how="left")
    old = old.rename(columns={"district": "old_district", "wardCode": "old_commune_code"})
    old["split"] = old["pieces"] > 1
    district_parts = _parts_of(old["old_district"])
    commune_parts = _parts_of(old["old_commune"])
    old["district_key"] = [k for _, k, _ in district_parts]
    old["district_accented"] = [a for _, _, a in district_parts]
    old["commune_kind"] = [k for k, _, _ in commune_parts]
    old["commune_key"] = [k for _, k, _ in commune_parts]
    old["commune_accented"] = [a for _, _, a in commune_parts]
    new_parts = _parts_of(new["commune_2025"])
    new["commune_kind"] = [k for k, _, _ in new_parts]
    new["commune_key"] = [k for _, k, _ in new_parts]
    new["commune_accented"] = [a for _, _, a in new_parts]
    old_cols = ["old_province", "old_district", "old_commune", "old_commune_code", "old_key",
                "province_2025", "commune_2025", "commune_code", "pieces", "split",
                "main_successor", "district_key", "district_accented", "commune_kind",
                "commune_key", "commune_accented"]
    new_cols = ["province_2025", "commune_2025", "commune_code", "wardType", "area_km2",
                "commune_kind", "commune_key", "commune_accented"]
    return (old[old_cols].reset_index(drop=True),
            new[new_cols].rename(columns={"wardType": "kind"}).reset_index(drop=True))


def _parts_of(names: pd.Series) -> list:
    """_unit_parts of each name, worked out once per distinct name (the 10,040 old units
    name ~700 districts: part of every ingest's start-up)."""
    codes, uniques = pd.factorize(names)
    parts = [_unit_parts(u) for u in uniques] + [_unit_parts(None)]  # code -1: missing
    return [parts[c] for c in codes]


def commune_crosswalk_2025() -> pd.DataFrame:
    """The official old-commune -> 2025-commune crosswalk, one row per piece.

    Columns: old_province (our 63 names), old_district, old_commune, old_commune_code
    (GSO), province_2025, commune_2025, commune_code (GSO code of the 2025 unit, a
    5-digit string), pieces (how many new units the old one went to), split,
    main_successor (the package's choice of the piece that took the old unit's seat
    and most of its people), weight (equal shares 1/pieces: the package has no household
    counts of the pieces; see ``commune_2025`` for weights from a register).
    10,040 old units (incl. 5 island districts), 3,321 new ones.
    """
    old, _ = _commune_tables()
    out = old.drop(columns=["old_key", "district_key", "district_accented", "commune_kind",
                            "commune_key", "commune_accented"]).copy()
    out["weight"] = 1.0 / out["pieces"]
    return out


def communes_2025() -> pd.DataFrame:
    """The 3,321 communes, wards and special zones in force since 1 July 2025:
    province_2025, commune_2025, commune_code, kind (Xã / Phường / Đặc khu), area_km2."""
    _, new = _commune_tables()
    return new.drop(columns=["commune_kind", "commune_key", "commune_accented"]).copy()


# Match tiers, strictest first; the first tier with any hit decides (one hit: placed;
# several: ambiguous). d = district, k = kind (prefix), a = accented key, f = folded key.
_OLD_DISTRICT_TIERS = (("da", "k", "a"), ("df", "k", "f"), ("da", "a"), ("df", "f"))
_OLD_PROVINCE_TIERS = (("k", "a"), ("k", "f"), ("a",), ("f",))
_NEW_TIERS = (("k", "a"), ("k", "f"), ("a",), ("f",))


def _tier_key(province, tier, parts):
    return (province,) + tuple(parts[t] for t in tier)


@lru_cache(maxsize=1)
def _commune_index():
    """Lookup dicts over the package's units, one per match tier."""
    old, new = _commune_tables()
    units = old.drop_duplicates("old_key")
    # keys built as _tier_key builds them, with the tiers' parts picked by position
    # (93k keys: a generator per key was most of the index's start-up cost)
    old_index: dict = {tier: {} for tier in _OLD_DISTRICT_TIERS + _OLD_PROVINCE_TIERS}
    old_picks = [(index, [("da", "df", "k", "a", "f").index(t) for t in tier])
                 for tier, index in old_index.items()]
    for row in zip(units["old_province"], units["district_accented"], units["district_key"],
                   units["commune_kind"], units["commune_accented"], units["commune_key"],
                   units["old_key"]):
        for index, picks in old_picks:
            index.setdefault((row[0],) + tuple([row[1 + i] for i in picks]), []).append(row[6])
    new_index: dict = {tier: {} for tier in _NEW_TIERS}
    new_picks = [(index, [("k", "a", "f").index(t) for t in tier])
                 for tier, index in new_index.items()]
    for row in zip(new["province_2025"], new["commune_kind"], new["commune_accented"],
                   new["commune_key"], new["commune_code"]):
        for index, picks in new_picks:
            index.setdefault((row[0],) + tuple([row[1 + i] for i in picks]), []).append(row[4])
    # each old unit's pieces in table order, as groupby("old_key", sort=False) gave them
    # (one pass over the columns: a frame per group cost ~0.5 CPU-s in every ingest)
    pieces: dict = {}
    for key, *piece in zip(old["old_key"], old["province_2025"], old["commune_code"],
                           old["old_commune_code"]):
        if not _blank_na(key):  # groupby leaves out a missing key
            pieces.setdefault(key, []).append(tuple(piece))
    return old_index, new_index, pieces


def _blank_na(value) -> bool:
    return value is None or (not isinstance(value, str) and pd.isna(value))


def _blank(value) -> bool:
    return value is None or (not isinstance(value, str) and pd.isna(value)) or not str(value).strip()


def _closest(province: str | None, province_new: str | None, commune, limit: int = 3) -> list[str]:
    """Closest unit names (old ones with their district, then new ones) to a name."""
    import difflib

    old, new = _commune_tables()
    _, key = unit_key(commune)
    names: dict[str, list[str]] = {}
    if province is not None:
        units = old[old["old_province"] == province].drop_duplicates("old_key")
        for k, c, d in zip(units["commune_key"], units["old_commune"], units["old_district"]):
            names.setdefault(k, []).append(f"{c}, {d}")
    if province_new is not None:
        units = new[new["province_2025"] == province_new]
        for k, c in zip(units["commune_key"], units["commune_2025"]):
            names.setdefault(k, []).append(f"{c} (2025)")
    close = difflib.get_close_matches(key, sorted(names), n=limit, cutoff=0.6)
    return [label for k in close for label in names[k]]


def _lookup(index: dict, tiers, province, parts) -> list:
    for tier in tiers:
        if "k" in tier and not parts["k"]:
            continue
        if "a" in tier and parts["ascii"]:
            continue  # typed without diacritics: "thanh an" may be Thanh An or Thạnh An
        hits = index[tier].get(_tier_key(province, tier, parts))
        if hits:
            return hits
    return []


def _name_readings(commune) -> list[dict]:
    """The name read with its prefix, then (when it has one) as a whole: "xa luong"
    typed without diacritics may be Xã Lượng or Xá Lượng."""
    kind, key, accented = _unit_parts(commune)
    typed_ascii = str(commune).isascii()
    readings = [{"k": kind, "f": key, "a": accented, "ascii": typed_ascii}]
    if kind:
        whole = fold(commune)
        spaced = unicodedata.normalize("NFC", str(commune)).lower()
        readings.append({"k": "", "f": _LEADING_ZEROS.sub("", _NOT_ALNUM.sub("", whole)),
                         "a": _LEADING_ZEROS.sub("", _NOT_WORD.sub("", spaced)),
                         "ascii": typed_ascii})
    return readings


@lru_cache(maxsize=1 << 16)  # ingest maps the same names once per period (pure: the index is fixed)
def _resolve_old(province, district, commune) -> tuple[list, str]:
    """(old unit keys, "district" | "province") of a pre-reform name."""
    old_index, _, _ = _commune_index()
    readings = _name_readings(commune)
    if not _blank(district):
        _, dkey, daccented = _unit_parts(district)
        if str(district).isascii():
            daccented = None  # never matches: the district tiers fall back to folded keys
        for parts in readings:
            hits = _lookup(old_index, _OLD_DISTRICT_TIERS, province,
                           dict(parts, df=dkey, da=daccented))
            if hits:
                return hits, "district"
    for parts in readings:
        hits = _lookup(old_index, _OLD_PROVINCE_TIERS, province, parts)
        if hits:
            return hits, "province"
    return [], "province"


@lru_cache(maxsize=1 << 16)
def _resolve_new(province_new, commune) -> list:
    _, new_index, _ = _commune_index()
    for parts in _name_readings(commune):
        hits = _lookup(new_index, _NEW_TIERS, province_new, parts)
        if hits:
            return hits
    return []


def commune_2025(df: pd.DataFrame, household_counts: pd.DataFrame | None = None,
                 province_col: str = "province", district_col: str = "district",
                 commune_col: str = "commune", period_col: str | None = "period",
                 errors: str = "report") -> pd.DataFrame:
    """Each row's 2025 commune through the official crosswalk (domain.md: communes were
    split and need weights; unknown units are reported, never dropped).

    ``df`` has pre-reform ``province``, ``district``, ``commune`` names (any spelling:
    "P. 12", "Phường 12", "phuong 12"; the district may be missing). The result has the
    input's rows, index kept, plus ``province_2025``, ``commune_2025``, ``commune_code``
    (GSO code of the 2025 unit), ``weight``, ``match``, ``weight_basis`` and
    ``old_commune_code`` (GSO code of the old unit, for old names). An old
    commune split between several new ones gives several rows whose weights sum to 1.

    Weights of a split (``weight_basis``): "equal" shares by default, because the
    package that ships the crosswalk (``vietnamadminunits``) has no household counts of
    the pieces; "households" when ``household_counts`` (columns ``old_commune_code``,
    ``commune_code``, ``households``: households seen in the old commune before July
    2025 and in a piece after it, from ``split_household_counts``) has households of
    that old commune; "whole" for a commune that was not split. For a household seen
    after July 2025 its own recorded 2025 commune is better than any weight: use these
    weights only for households never seen after the reform.

    ``match`` says how a row was placed: "2025" (a name in force since July 2025,
    mapped to itself), "district" (old name found in its district), "province" (old
    name unique within its province; no district given, or one that did not match),
    "ambiguous" or "unmatched". Names are tried as old names when the row has a district
    or a pre-reform ``period`` (``is_post_merger`` false), else first as 2025 names.
    Each tier tries the name with its diacritics, then without, then without its prefix.
    An ambiguous or unmatched name gets ``commune_2025`` = "? " + the name as given,
    ``commune_code`` NA and weight 1 — an explicit unknown, never dropped;
    ``result.attrs["unmatched"]`` lists each such name once (dicts with the three names,
    ``reason`` and ``candidates``: the units it could be, or the closest names, with
    their districts) and ``unmatched_report(result)`` prints that listing.
    ``errors="raise"`` raises ``SchemaError`` with the listing instead.
    """
    if errors not in ("report", "raise"):
        raise ValueError(f"errors={errors!r}: use 'report' or 'raise'")
    missing = [c for c in (province_col, commune_col) if c not in df.columns]
    if missing:
        raise SchemaError(f"commune_2025: no column(s) {missing} (need {province_col!r}, "
                          f"{commune_col!r}, optional {district_col!r})")
    has_period = period_col is not None and period_col in df.columns
    keys = pd.DataFrame({
        "p": df[province_col].astype(object),
        "d": df[district_col].astype(object) if district_col in df.columns else None,
        "c": df[commune_col].astype(object)}, index=df.index)
    if has_period:
        post = {p: is_post_merger(p) for p in pd.unique(df[period_col].dropna())}
        keys["e"] = df[period_col].map(post).map({True: "post", False: "pre"}).fillna("")
    else:
        keys["e"] = ""
    keys = keys.astype(object).where(keys.notna(), None)
    codes = keys.groupby(list(keys.columns), dropna=False, sort=False).ngroup().to_numpy()
    distinct = [tuple(None if _blank_na(v) else v for v in t)
                for t in keys.drop_duplicates().itertuples(index=False)]
    first = pd.Series([t[0] for t in distinct], dtype=object)
    # Thừa Thiên Huế became the centrally-run "Thành phố Huế" on 1 January 2025 and kept
    # its borders in July: for commune matching, Huế's old units are Thừa Thiên Huế's
    old_names = old_province(first, errors="coerce").tolist()
    old_names = [o if not pd.isna(o) or pd.isna(n) or n != "Huế" else "Thừa Thiên Huế"
                 for o, n in zip(old_names, province_2025(first, errors="coerce"))]
    new_names = province_2025(first, errors="coerce").tolist()
    old_units, _ = _commune_tables()
    _, _, pieces = _commune_index()
    share = _household_shares(household_counts)

    # one list entry per output piece: (tuple number, province_2025, code, weight, match, basis, name)
    placed: list[tuple] = []
    problems: list[dict] = []
    for i, (prov, dist, comm, era) in enumerate(distinct):
        old_p = None if pd.isna(old_names[i]) else old_names[i]
        new_p = None if pd.isna(new_names[i]) else new_names[i]
        if new_p is None or _blank(comm):
            verdict = ("unmatched", "unknown province" if new_p is None else "no commune name")
        else:
            verdict = _place_one(old_p, new_p, dist, comm, era, pieces)
        if verdict[0] == "new":
            placed.append((i, new_p, verdict[1], 1.0, "2025", "whole", None, None))
            continue
        if verdict[0] == "old":
            units = pieces[verdict[1]]
            weights, basis = _split_weights(units, share)
            placed.extend((i, p, code, w, verdict[2], basis, None, old_code)
                          for (p, code, old_code), w in zip(units, weights))
            continue
        if verdict[0] == "ambiguous":
            reason = "ambiguous"
            units = old_units[old_units["old_key"].isin(verdict[1])].drop_duplicates("old_key")
            candidates = [f"{c}, {d}" for c, d in zip(units["old_commune"], units["old_district"])]
            candidates += [f"{c} (2025)" for c in communes_2025().set_index("commune_code")
                           .loc[verdict[2], "commune_2025"]]
        else:
            reason = verdict[1]
            candidates = (_closest(old_p, new_p, comm)
                          if new_p is not None and not _blank(comm) else [])
        problems.append({province_col: prov, district_col: dist, commune_col: comm,
                         "reason": reason, "candidates": candidates})
        placed.append((i, new_p, None, 1.0, verdict[0], "whole",
                       UNKNOWN_COMMUNE_PREFIX + str(comm), None))
    if problems and errors == "raise":
        raise SchemaError(_unmatched_message(problems, province_col, district_col, commune_col))
    mapping = pd.DataFrame(placed, columns=["_tuple", "province_2025", "commune_code", "weight",
                                            "match", "weight_basis", "commune_2025",
                                            "old_commune_code"])
    names = dict(zip(old_units["commune_code"], old_units["commune_2025"]))
    names.update(zip(communes_2025()["commune_code"], communes_2025()["commune_2025"]))
    mapping["commune_2025"] = mapping["commune_2025"].where(
        mapping["commune_code"].isna(), mapping["commune_code"].map(names))
    # rows in input order, the pieces of a split next to each other
    counts = np.bincount(mapping["_tuple"].to_numpy(), minlength=len(distinct))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    row_of = np.repeat(np.arange(len(df)), counts[codes])
    piece_of = (np.repeat(starts[codes], counts[codes])
                + np.arange(len(row_of)) - np.repeat(np.cumsum(counts[codes]) - counts[codes],
                                                     counts[codes]))
    out = df.iloc[row_of].copy()
    for col in OUTPUT_COLUMNS:
        values = mapping[col].to_numpy()[piece_of]
        out[col] = values if col == "weight" else pd.array(values, dtype=object)
    # a list of plain dicts (a DataFrame in attrs breaks pandas' concat and repr)
    out.attrs["unmatched"] = problems
    return out


def _place_one(old_p, new_p, dist, comm, era, pieces) -> tuple:
    """Verdict for one distinct name: ("new", code) | ("old", old_key, how) |
    ("ambiguous", old_keys, codes) | ("unmatched", "unmatched")."""
    as_new = era == "post" or (era == "" and _blank(dist))
    new_hits = _resolve_new(new_p, comm) if as_new else []
    old_hits, how = [], None
    if len(new_hits) > 1:  # e.g. Xã Văn Lang and Xã Văn Lăng written without diacritics
        return "ambiguous", [], new_hits
    if old_p is not None and (len(new_hits) != 1 or era == ""):
        old_hits, how = _resolve_old(old_p, dist, comm)
    if len(new_hits) == 1:
        successors = [[code for _, code, _ in pieces[k]] for k in old_hits]
        if any(s != new_hits for s in successors):
            # no period, no district: also a pre-reform name that went elsewhere
            return "ambiguous", old_hits, new_hits
        return "new", new_hits[0]
    if len(old_hits) == 1:
        return "old", old_hits[0], how
    if old_hits or new_hits:
        return "ambiguous", old_hits, new_hits
    if not as_new:  # a 2025 name recorded with a district or a pre-reform period
        new_hits = _resolve_new(new_p, comm)
        if len(new_hits) == 1:
            return "new", new_hits[0]
        if new_hits:
            return "ambiguous", [], new_hits
    return "unmatched", "unmatched"


def _split_weights(units: list, share: dict) -> tuple[np.ndarray, str]:
    """Weights of the pieces of one old commune: whole, household shares or equal."""
    if len(units) == 1:
        return np.ones(1), "whole"
    counts = np.array([share.get((old_code, code), 0.0) for _, code, old_code in units])
    if counts.sum() > 0:
        return counts / counts.sum(), "households"
    return np.full(len(units), 1.0 / len(units)), "equal"


def _household_shares(counts: pd.DataFrame | None) -> dict:
    if counts is None or len(counts) == 0:
        return {}
    need = ["old_commune_code", "commune_code", "households"]
    missing = [c for c in need if c not in counts.columns]
    if missing:
        raise SchemaError(f"commune_2025: household_counts needs columns {need}, "
                          f"missing {missing}")
    grouped = counts.groupby(["old_commune_code", "commune_code"])["households"].sum()
    return {k: float(v) for k, v in grouped.items() if v > 0}


def unmatched_report(result: pd.DataFrame) -> str:
    """The listing of names ``commune_2025`` could not place ("" when all were placed)."""
    problems = result.attrs.get("unmatched", [])
    if not problems:
        return ""
    cols = [c for c in problems[0] if c not in ("reason", "candidates")]
    return _unmatched_message(problems, *cols)


def _unmatched_message(problems, province_col, district_col, commune_col) -> str:
    lines = []
    for p in problems[:100]:
        where = ", ".join(str(p[c]) for c in (commune_col, district_col, province_col)
                          if not _blank(p[c]))
        hint = f"; closest: {'; '.join(p['candidates'])}" if p["candidates"] else ""
        lines.append(f"{where}: {p['reason']}{hint}")
    more = f"\n  ... and {len(problems) - 100} more" if len(problems) > 100 else ""
    return (f"{len(problems)} commune name(s) cannot be placed in the 2025 map "
            f"({COMMUNE_MAP_PACKAGE} {commune_map_version()}):\n  " + "\n  ".join(lines) + more
            + "\nFix the spelling in the source file, or give the district to tell "
              "same-named communes apart.")


# ------------------------------------------- households' own link across July 2025

def _first_last(df: pd.DataFrame, id_col: str, period_col: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(last pre-reform row, first post-reform row) of each household."""
    periods = pd.unique(df[period_col].dropna())
    post_of = {p: is_post_merger(p) for p in periods}
    rank_of = {p: parse_period(p)[1] for p in periods}
    post = df[period_col].map(post_of).fillna(False).astype(bool)
    rank = df[period_col].map(rank_of)
    before = df[~post].assign(_rank=rank[~post]).sort_values("_rank", kind="stable")
    after = df[post].assign(_rank=rank[post]).sort_values("_rank", kind="stable")
    return (before.groupby(id_col, sort=False).tail(1).drop(columns="_rank"),
            after.groupby(id_col, sort=False).head(1).drop(columns="_rank"))


def split_household_counts(df: pd.DataFrame, id_col: str = "household_id",
                           period_col: str = "period", **names) -> pd.DataFrame:
    """Households of each split old commune found in each of its 2025 pieces.

    From a register with rows before and after July 2025 (columns household id,
    period, province, district, commune): each household's last pre-reform commune and
    its first post-reform commune. Returns ``old_commune_code``, ``commune_code``,
    ``households`` for old communes that were split, the household-count weights that
    ``commune_2025(..., household_counts=)`` uses for households never seen after the
    reform. ``names`` passes province_col / district_col / commune_col on.
    """
    before, after = _first_last(df, id_col, period_col)
    both = set(before[id_col]) & set(after[id_col])
    before = before[before[id_col].isin(both)]
    after = after[after[id_col].isin(both)]
    old = commune_2025(before, period_col=period_col, **names)
    old = old[old["weight_basis"] != "whole"].drop_duplicates(id_col)[[id_col, "old_commune_code"]]
    new = commune_2025(after, period_col=period_col, **names)
    new = new[new["match"] == "2025"][[id_col, "commune_code"]]
    pairs = old.merge(new, on=id_col, how="inner")
    pieces = commune_crosswalk_2025()[["old_commune_code", "commune_code"]]
    pairs = pairs.merge(pieces, on=["old_commune_code", "commune_code"], how="inner")
    return (pairs.groupby(["old_commune_code", "commune_code"]).size()
            .rename("households").reset_index())


def link_commune_2025(df: pd.DataFrame, id_col: str = "household_id",
                      period_col: str = "period", **names) -> pd.DataFrame:
    """Every row of a register with its 2025 commune, for commune time series that run
    across July 2025 without a break (domain.md: communes were split and need weights).

    Rows recorded after the reform keep their own 2025 commune. A household seen after
    the reform takes, on its earlier rows, the commune where it was first recorded
    after it (``match`` "household", weight 1): its own link beats any weight. Only
    households never seen after the reform go through the crosswalk, a split commune's
    pieces weighted by the households of that old commune that were seen on both sides
    (``split_household_counts``), else equally. Returns ``commune_2025(df)``'s columns;
    a household's rows can be several (one per piece, weights summing to 1).
    """
    work = df.assign(_row=np.arange(len(df)))
    mapped = commune_2025(work, household_counts=split_household_counts(df, id_col, period_col, **names),
                          period_col=period_col, **names)
    _, first_after = _first_last(df, id_col, period_col)
    own = commune_2025(first_after, period_col=period_col, **names)
    own = own[own["commune_code"].notna()].drop_duplicates(id_col).set_index(id_col)
    post_of = {p: is_post_merger(p) for p in pd.unique(df[period_col].dropna())}
    is_pre = ~mapped[period_col].map(post_of).fillna(False).astype(bool)
    linked = (is_pre & mapped[id_col].isin(own.index)).to_numpy()
    first_piece = ~mapped["_row"].duplicated(keep="first").to_numpy()
    keep = ~linked | first_piece  # a linked row: one row, at the household's own commune
    mapped = mapped[keep].copy()
    rows = linked[keep]
    ids = mapped.loc[rows, id_col]
    for col in ("province_2025", "commune_2025", "commune_code"):
        mapped.loc[rows, col] = ids.map(own[col]).to_numpy()
    mapped.loc[rows, "weight"] = 1.0
    mapped.loc[rows, "match"] = "household"
    mapped.loc[rows, "weight_basis"] = "whole"
    return mapped.drop(columns="_row")


PANEL_BASIS = {
    "2025": "recorded",          # a 2025 name, recorded after the reform
    "household": "household",    # the household's own commune after the reform
    "whole": "crosswalk",        # an old commune that went whole to one 2025 commune
    "split": "main successor",   # split, household never seen after: flagged
}


def panel_commune_2025(df: pd.DataFrame, id_col: str = "household_id",
                       period_col: str = "period", **names) -> pd.DataFrame:
    """One 2025 commune per register row (the panel keeps one row per household and
    period), for ingest: columns ``commune_2025``, ``commune_code`` and
    ``commune_2025_basis``, aligned with ``df``'s index.

    Basis, best first: "recorded" (a row after July 2025 names its 2025 commune);
    "household" (an earlier row of a household seen after the reform takes the commune
    it was first recorded in then); "crosswalk" (an old commune that went whole into
    one 2025 commune); "main successor" (an old commune split between several, for a
    household never seen after the reform: the piece the official map names as its
    main successor — flagged, because a weighted allocation needs
    ``link_commune_2025``'s several rows); "ambiguous" / "unmatched" (the explicit
    unknown "? name", listed in ``result.attrs["unmatched"]``; a household seen after
    the reform is placed by its own link even then). Works on the distinct
    (province, district, commune, era) names and on one row per household, so its cost
    follows the number of communes and households, not of rows.
    """
    province_col = names.get("province_col", "province")
    district_col = names.get("district_col", "district")
    commune_col = names.get("commune_col", "commune")
    cols = [c for c in (province_col, district_col, commune_col) if c in df.columns]
    periods = pd.unique(df[period_col].dropna())
    post_of = {p: is_post_merger(p) for p in periods}
    era = df[period_col].map(post_of).fillna(False).astype(bool)
    keys = df[cols].assign(**{period_col: np.where(era, FIRST_NEW_QUARTER, "2025Q2")})
    distinct = keys.drop_duplicates().reset_index(drop=True)
    table = commune_names_2025(distinct, period_col=period_col, **names)
    out = keys.reset_index(drop=True).merge(table, on=cols + [period_col], how="left",
                                            validate="many_to_one")
    out.index = df.index
    out = out[["commune_2025", "commune_code", "commune_2025_basis"]]
    if id_col in df.columns:  # the household's own link across the reform
        recorded = out["commune_2025_basis"].eq("recorded") & era
        first = (pd.DataFrame({"id": df[id_col], "rank": df[period_col].map(
                    {p: parse_period(p)[1] for p in periods}), "code": out["commune_code"],
                    "name": out["commune_2025"]})[recorded.to_numpy()]
                 .sort_values("rank", kind="stable").drop_duplicates("id"))
        own = first.set_index("id")
        # (also for an ambiguous or misspelt old name: the household's own link places it)
        linked = ~era & df[id_col].isin(own.index)
        ids = df.loc[linked, id_col]
        out.loc[linked, "commune_2025"] = ids.map(own["name"]).to_numpy()
        out.loc[linked, "commune_code"] = ids.map(own["code"]).to_numpy()
        out.loc[linked, "commune_2025_basis"] = "household"
    out.attrs["unmatched"] = table.attrs.get("unmatched", [])
    return out


def commune_names_2025(distinct: pd.DataFrame, period_col: str = "period", **names) -> pd.DataFrame:
    """``distinct`` (province, district, commune, period rows, each once) with
    ``commune_2025``, ``commune_code`` and ``commune_2025_basis`` — "recorded" (a 2025
    name), "crosswalk" (went whole), "main successor" (split; the official main
    piece), "ambiguous" / "unmatched" (the explicit unknown "? name") — and
    ``is_post_merger``. The name part of ``panel_commune_2025``, for engines that join
    it back and add the household link themselves (ingest)."""
    province_col = names.get("province_col", "province")
    district_col = names.get("district_col", "district")
    commune_col = names.get("commune_col", "commune")
    distinct = distinct.reset_index(drop=True)
    mapped = commune_2025(distinct, period_col=period_col, **names)
    main = set(commune_crosswalk_2025().query("main_successor")["commune_code"].astype(str)
               + "|" + commune_crosswalk_2025().query("main_successor")["old_commune_code"].astype(str))
    is_split = mapped["weight_basis"] != "whole"
    keep = ~is_split | (mapped["commune_code"].astype(str) + "|"
                        + mapped["old_commune_code"].astype(str)).isin(main)
    mapped = mapped[keep]
    basis = mapped["match"].map({"2025": "recorded", "ambiguous": "ambiguous",
                                 "unmatched": "unmatched"}).fillna(pd.Series(
        np.where(mapped["weight_basis"] == "whole", "crosswalk", "main successor"),
        index=mapped.index))
    table = distinct.loc[mapped.index].assign(commune_2025=mapped["commune_2025"].to_numpy(),
                                              commune_code=mapped["commune_code"].to_numpy(),
                                              commune_2025_basis=basis.to_numpy())
    post = {p: is_post_merger(p) for p in pd.unique(table[period_col].dropna())}
    table["is_post_merger"] = table[period_col].map(post).fillna(False).astype(bool)
    table.attrs["unmatched"] = mapped.attrs.get("unmatched", [])
    return table
