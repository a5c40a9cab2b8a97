"""Checking one table in pandas: headers mapped, blank rows dropped, provenance added,
identifiers hashed then dropped, every cell checked by schema.check_rows, ids
pseudonymised. The reference path: the engine path (engine_checks) must give its bytes."""
from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import schema
from ..errors import PovdynError, SchemaError
from ..privacy import IDENTIFIER_COLUMNS, pseudonymise
from .reading import RawTable, _column_names, title_period
from .summary import TableReport


BATCH_ROWS = 250_000  # rows checked at once (memory vs per-call overhead)
QUARANTINE_LEAD = ["source_file", "sheet", "row", "reason"]
# provenance and per-row facts carried beside the checked values, never written to the
# panel: _exit marks a row whose "reason" was an exit ("Thoát nghèo"), not a removal
_PROVENANCE = ["_file", "_sheet", "_row", "_exit"]
# a 64-bit hash of the row's direct identifiers (name, ID card, phone, address), taken
# before they are dropped: two rows that differ only there are a conflict, not a copy.
# Kept in memory only, never written.
_IDENT = "_ident"
_CARRIED = _PROVENANCE + [_IDENT]


def _raw_text(value) -> str:
    """A raw cell as text for the quarantine file."""
    if schema.is_blank(value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (pd.Timestamp,)) or hasattr(value, "strftime"):
        try:
            return value.strftime("%d/%m/%Y")
        except ValueError:
            return str(value)
    return str(value)


def _combine_quarter(canon: pd.DataFrame) -> pd.DataFrame:
    """A separate 'Quý' column next to 'Năm' -> period 'YYYYQn' text."""
    if "_quarter" not in canon.columns:
        return canon
    quarter = canon.pop("_quarter")
    if "period" in canon.columns:
        q = quarter.map(lambda v: "" if schema.is_blank(v) else
                        re.sub(r"^(quy|q)\s*", "", schema.fold(_raw_text(v))))
        year = canon["period"].map(_raw_text)
        canon["period"] = np.where(q != "", "Quý " + q + "/" + year, canon["period"])
    return canon


def _blank_rows(data: pd.DataFrame) -> np.ndarray:
    blank = np.ones(len(data), dtype=bool)
    for col in data.columns:
        series = data[col]
        if series.dtype == object:
            blank &= series.isna().to_numpy() | (series.astype(str).str.strip() == "").to_numpy()
        else:
            blank &= series.isna().to_numpy()
        if not blank.any():
            break
    return blank


_DATA = Path(__file__).resolve().parents[1] / "data"  # lib/povdyn/data: the NFC class file


def _load_programs() -> dict[str, str]:
    """Folded programme code / Vietnamese name / English name -> code, from the shipped
    programme table (schema.program_table: an error when it is missing)."""
    table = schema.program_table()
    lookup = {}
    for _, row in table.iterrows():
        for col in ("code", "name_vi", "name_en"):
            if col in row and isinstance(row[col], str):
                lookup[schema.fold(row[col])] = row["code"]
    return lookup


def _provinces(names: pd.Series) -> tuple[dict, dict, set]:
    """Over the distinct recorded names (povdyn.geo: old or new names, any diacritics or
    prefix): ({name: canonical spelling of the recorded unit}, {name: 2025 province},
    {unknown names}). "Tỉnh Hà Giang" -> "Hà Giang" (recorded) and "Tuyên Quang" (2025)."""
    from ..geo import old_province, province_2025

    uniques = pd.Series(pd.unique(names.dropna()), dtype=object)
    if uniques.empty:
        return {}, {}, set()
    new = province_2025(uniques, errors="coerce")
    old = old_province(uniques, errors="coerce")
    to_2025 = {name: n for name, n in zip(uniques, new) if not pd.isna(n)}
    spelled = {name: (o if not pd.isna(o) else n)
               for name, o, n in zip(uniques, old, new) if not pd.isna(n)}
    unknown = {name for name in uniques if name not in to_2025}
    return spelled, to_2025, unknown


REPEAT_SAMPLE = 1024  # cells of a block whose distinct count decides how it is checked


def _normalised_identifier(cells: pa.Array) -> pa.Array:
    """An identifier cell as compared for duplicates: NFC (in Arrow: several times
    faster than DuckDB's nfc_normalize on Vietnamese names), trimmed. Only cells that
    can change are normalised (_MAYBE_NOT_NFC): a name typed on a Vietnamese keyboard is
    NFC already, and finding that out costs a quarter of normalising it.

    That check is the cost (a regex over a large character class), so it looks only at
    cells that are not ASCII (ASCII is NFC; ID-card and phone numbers skip it all), and,
    in a block whose first REPEAT_SAMPLE cells are at most half distinct (a register
    sorted by household repeats its name and address in each review period), once per
    distinct cell. A block of mostly distinct cells (an export of one period) is checked
    cell by cell: dictionary-encoding it would cost more than it saves."""
    if isinstance(cells, pa.ChunkedArray):
        cells = cells.combine_chunks()
    if not pc.any(pc.invert(pc.string_is_ascii(cells))).as_py():
        return pc.utf8_trim_whitespace(cells)
    sample = cells.slice(0, REPEAT_SAMPLE)
    if len(cells) > REPEAT_SAMPLE and 2 * pc.count_distinct(sample).as_py() <= len(sample):
        encoded = pc.dictionary_encode(cells)
        return _nfc_trimmed(encoded.dictionary).take(encoded.indices)
    return _nfc_trimmed(cells)


def _nfc_trimmed(cells: pa.Array) -> pa.Array:
    """Each cell NFC-normalised (those that can change: _MAYBE_NOT_NFC, looked for in
    the non-ASCII cells only) and trimmed."""
    non_ascii = pc.invert(pc.string_is_ascii(cells))
    everyone = pc.all(non_ascii).as_py()
    candidates = cells if everyone else cells.filter(non_ascii)
    maybe = pc.match_substring_regex(candidates, _maybe_not_nfc())
    if pc.any(maybe).as_py():
        candidates = pc.replace_with_mask(
            candidates, maybe, pc.utf8_normalize(candidates.filter(maybe), "NFC"))
        cells = candidates if everyone else pc.replace_with_mask(cells, non_ascii, candidates)
    return pc.utf8_trim_whitespace(cells)


@functools.cache
def _maybe_not_nfc() -> str:
    """An RE2 character class of every character whose presence can make a text differ
    from its NFC form (_maybe_not_nfc_computed). Read from lib/povdyn/data when the
    package ships it for this Python's Unicode tables: computing it costs ~0.4 CPU-s,
    which every ingest worker paid on its first range (on the 1M bench, 5% of the
    run). A test checks that the file equals the computation."""
    path = _DATA / f"maybe_not_nfc-{unicodedata.unidata_version}.txt"
    try:
        return path.read_text(encoding="ascii").strip()
    except OSError:
        return _maybe_not_nfc_computed()


def _maybe_not_nfc_computed() -> str:
    """An RE2 character class of every character whose presence can make a text differ
    from its NFC form: combining marks, characters NFC replaces, characters that compose
    with the one before them (the second of a canonical pair, Hangul vowels and final
    consonants), and characters Python's Unicode tables do not know. A text with none of
    them is NFC (the Unicode quick check answers YES for it)."""
    planes = [cp for cp in range(0x30000) if not 0xD800 <= cp <= 0xDFFF]
    planes += list(range(0xE0000, 0xE1000))
    second = set()
    for cp in planes:
        decomposition = unicodedata.decomposition(chr(cp))
        if decomposition and not decomposition.startswith("<"):
            parts = decomposition.split()
            if len(parts) == 2:
                second.add(int(parts[1], 16))
    odd = {cp for cp in planes
           if unicodedata.combining(chr(cp)) or unicodedata.category(chr(cp)) == "Cn"
           or cp in second or not unicodedata.is_normalized("NFC", chr(cp))}
    odd |= set(range(0x1161, 0x1176)) | set(range(0x11A8, 0x11C3))  # Hangul V and T jamo
    ranges: list[list[int]] = []
    for cp in sorted(odd):
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    ranges.append([0x30000, 0x10FFFF])  # beyond the planes looked at: normalise
    return "[" + "".join(f"\\x{{{a:x}}}" if a == b else f"\\x{{{a:x}}}-\\x{{{b:x}}}"
                         for a, b in ranges) + "]"


def _identifier_hash_sql(columns: list[str]) -> str:
    """The SQL of the identifier hash over normalised cells (_normalised_identifier):
    one definition for both paths, so that a copy read from a workbook equals one read
    from a csv."""
    if not columns:
        return "0::UBIGINT"
    return f"hash({', '.join(_ident_sql(c) for c in columns)})"


def _identifier_hash(cells: pd.DataFrame) -> np.ndarray:
    """uint64 per row over the identifier cells as written (NFC, trimmed; blank = ""):
    DuckDB's hash() of the normalised cells, the same function the engine path uses
    (a Python call per cell costs seconds per million rows)."""
    import duckdb

    parts = {}
    for i, col in enumerate(cells.columns):
        values = cells[col].to_numpy(dtype=object)
        try:
            arr = pa.array(values, type=pa.string(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # numbers or dates from a workbook
            arr = pa.array([None if schema.is_blank(v) else str(v) for v in values],
                           type=pa.string())
        parts[f"_id{i}"] = _normalised_identifier(arr).fill_null("")
    con = duckdb.connect()
    try:
        con.register("_ids", pa.table(parts))
        hashed = con.execute(f"SELECT {_identifier_hash_sql(list(parts))} "
                             "FROM _ids").fetchnumpy()
    finally:
        con.close()
    return next(iter(hashed.values())).astype("uint64")


def _table_period(raw: RawTable) -> tuple[object, str | None, str]:
    """(period, where it came from, reason when there is none) for a table without a
    period column: the title above the header ("... NĂM 2025") or the sheet name
    ("2024", "Quý 3-2025"). When both give one, a quarter inside the other's year is the
    more precise; two that disagree are no period at all (rows quarantined)."""
    from_title = title_period(raw.title)
    from_sheet = None
    if raw.sheet is not None:
        value = schema.period_value(raw.sheet)
        if value is not schema._INVALID and value is not None:
            from_sheet = value
    if from_title is None and from_sheet is None:
        return None, None, ("period: no period column, and neither the title above the header "
                            "nor the sheet name gives a year or quarter")
    if from_sheet is None:
        return from_title[0], f"title: {from_title[1]!r}", ""
    if from_title is None or from_title[0] == from_sheet:
        return from_sheet, f"sheet name: {raw.sheet!r}", ""
    t, sh = from_title[0], from_sheet

    def year_of(v):
        return v if isinstance(v, int) else int(str(v)[:4])

    if isinstance(t, int) and not isinstance(sh, int) and year_of(sh) == t:
        return sh, f"sheet name: {raw.sheet!r} (in the title's year {t})", ""
    if isinstance(sh, int) and not isinstance(t, int) and year_of(t) == sh:
        return t, f"title: {from_title[1]!r} (in the sheet name's year {sh})", ""
    return None, None, (f"period: the title says {t} ({from_title[1]!r}) but the sheet name "
                        f"says {sh} ({raw.sheet!r})")


@dataclass
class _Prepared:
    """One table with canonical column names (raw values) and provenance columns,
    ready to be checked together with other tables of the same shape."""
    report: TableReport
    canon: pd.DataFrame | None = None
    malformed: pd.DataFrame | None = None


def prepare_table(raw: RawTable) -> _Prepared:
    """Map headers, recognise the kind of table, drop blank rows, add provenance
    (_file, _sheet, _row). Identifier columns are dropped here, before any check."""
    report = TableReport(source_file=raw.source_file, sheet=raw.sheet,
                         header_row=raw.header_row, footer_rows=raw.footer_rows)
    headers_found = [str(c) for c in raw.header if c is not None][:12]
    try:
        position, report.ignored_columns = _column_names(raw.header)
    except SchemaError as exc:
        report.error = str(exc)
        return _Prepared(report)
    kind = schema.file_kind(position.values())
    blank = _blank_rows(raw.data)
    report.blank_rows = int(blank.sum()) + raw.footer_blank_rows
    data, rows_no = raw.data.loc[~blank], raw.rows[~blank]
    if kind is None:
        if len(data) or raw.malformed:
            report.error = ("not a register, programme roll, household totals table or "
                            "commune adoption register: need Mã hộ plus Năm/Kỳ or Phân loại hộ "
                            "(register), Chương trình (programme roll), Tỉnh and Tổng số hộ "
                            "(totals), or Chương trình and Năm áp dụng without Mã hộ "
                            "(adoption); "
                            f"headers found: {headers_found}")
        return _Prepared(report)
    keep = {c: name for c, name in position.items() if name not in IDENTIFIER_COLUMNS}
    ident_cols = [c for c, name in position.items() if name in IDENTIFIER_COLUMNS]
    canon = data[list(keep)].rename(columns=keep)
    canon[_IDENT] = _identifier_hash(data[ident_cols]) if ident_cols else np.uint64(0)
    for c, name in keep.items():  # "x"-marked yes/no columns: blank means "no"
        if c in raw.mark_columns and (name in schema.BOOL_COLUMNS or name.startswith("dep_")):
            values = canon[name]
            blank = values.isna() | (values.astype(str).str.strip() == "")
            canon[name] = values.where(~blank, "Không")
    canon = _combine_quarter(canon)
    if "period" in canon.columns:
        report.period_source = "column"
    elif kind in ("register", "totals"):
        period, report.period_source, missing_reason = _table_period(raw)
        canon["period"] = period
        canon["_period_missing"] = missing_reason
    required = {"register": schema.REQUIRED_PANEL_COLUMNS,
                "support": schema.REQUIRED_SUPPORT_COLUMNS,
                "totals": schema.REQUIRED_TOTALS_COLUMNS,
                "adoption": schema.REQUIRED_ADOPTION_COLUMNS}[kind]
    missing = [c for c in required if c not in canon.columns]
    if missing:
        report.error = f"{kind} without column(s) {missing}; headers found: {headers_found}"
        return _Prepared(report)
    report.kind = kind
    report.rows_in = len(canon) + len(raw.malformed)
    canon = canon.reset_index(drop=True)
    canon["_file"] = raw.source_file
    canon["_sheet"] = raw.sheet or ""
    canon["_row"] = rows_no
    canon["_exit"] = False
    if kind == "register" and "removal_reason" in canon.columns:
        reasons, _ = schema.parse_removal_reason(canon["removal_reason"])
        canon["_exit"] = reasons == schema._EXIT
    malformed = None
    if raw.malformed:
        malformed = pd.DataFrame({"source_file": raw.source_file, "sheet": raw.sheet or "",
                                  "row": [r for r, _ in raw.malformed],
                                  "reason": [m for _, m in raw.malformed]})
    return _Prepared(report, canon, malformed)


def check_batch(canon: pd.DataFrame, kind: str, key: bytes,
                programs) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check the rows of one or more prepared tables of the same shape: (good rows in
    canonical dtypes with pseudonymous ids and provenance, quarantine rows)."""
    canon = canon.reset_index(drop=True)
    checked_cols = [c for c in canon.columns if not c.startswith("_")]
    good, rejected = schema.check_rows(canon[checked_cols], kind=kind, programs=programs)
    if "_period_missing" in canon.columns and len(rejected):  # say why there is no period
        why = canon.loc[rejected.index, "_period_missing"]
        rejected["reason"] = [r.replace("period: blank", w) if w else r
                              for r, w in zip(rejected["reason"], why)]
    if kind in ("register", "totals", "adoption") and len(good):
        spelled, to_2025, unknown = _provinces(good["province"])
        if unknown:
            bad = good["province"].isin(list(unknown)).to_numpy()
            extra = canon.loc[good.index[bad], checked_cols].copy()
            extra["reason"] = ("province: " + good.loc[bad, "province"].map(repr)
                               + " is not a known province (63 pre-2025 or 34 current names)")
            rejected = pd.concat([rejected, extra])
            good = good.loc[~bad]
        good = good.drop(columns=["province_2025"], errors="ignore")  # recomputed, exact
        recorded = good["province"]
        good["province"] = recorded.map(spelled).astype(object)
        pos = list(good.columns).index("province") + 1
        good.insert(pos, "province_2025", recorded.map(to_2025).astype(object))

    # quarantine rows: raw text of the known, non-identifying columns; pseudonymous ids
    where = canon.loc[rejected.index, _PROVENANCE]
    quarantine = pd.DataFrame({"source_file": where["_file"], "sheet": where["_sheet"],
                               "row": where["_row"], "reason": rejected["reason"]},
                              index=rejected.index)
    for col in checked_cols:
        values = rejected[col].map(_raw_text)
        if col == "household_id":
            cleaned = values.str.strip()
            values = pseudonymise(cleaned.where(cleaned != "", None), key).fillna("")
        quarantine[col] = values

    good = good.copy()
    if "household_id" in good.columns:
        good["household_id"] = pseudonymise(good["household_id"], key)
    for col in _CARRIED:
        good[col] = canon.loc[good.index, col].to_numpy()
    return good.reset_index(drop=True), quarantine.reset_index(drop=True)


_SAFE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def _ident_sql(name: str) -> str:
    """A column name in SQL. Only povdyn's own canonical names reach SQL (dep_* names are
    folded to [a-z0-9_]); anything else is refused rather than pasted."""
    if not _SAFE_NAME.match(name):
        raise PovdynError(f"internal: unexpected column name {name!r}")
    return f'"{name}"'
