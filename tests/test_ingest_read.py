"""Issue 11 §1: the per-row read and check of a csv register made cheaper, with the same
bytes. Each speedup is checked against an independent reference (the standard library's
HMAC, the pandas path check_rows) and shown to be really taken."""
from __future__ import annotations

import hashlib
import hmac
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings as hyp_settings, strategies as st

import povdyn.ingest as ingest_module
from povdyn.ingest import ingest
from povdyn.privacy import Pseudonymiser, pseudonymise

sys.path.insert(0, str(Path(__file__).parent))
from test_ingest import _hashes, _messy_register_lines  # noqa: E402 - shared nasty file


def _reference_pseudonym(key: bytes, text: str) -> str:
    """RFC 2104 HMAC-SHA256 as the standard library computes it: the scheme the key
    files of earlier runs were used with."""
    return "h_" + hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()[:16]


@hyp_settings(max_examples=200, deadline=None)
@given(key=st.binary(min_size=1, max_size=150),
       ids=st.lists(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=20),
                    min_size=1, max_size=30))
def test_pseudonyms_are_the_standard_hmac_of_each_id(key, ids):
    """Padded keys computed once (keys shorter and longer than SHA-256's 64-byte block),
    an Arrow column with repeats and nulls: every pseudonym equals hmac.new's, so no
    earlier run's ids change."""
    pseudonym = Pseudonymiser(key)
    expected = [_reference_pseudonym(key, t) for t in ids]
    assert [pseudonym(t) for t in ids] == expected
    cells = pa.array(ids + [None] + ids[::-1], pa.string())
    assert pseudonym.arrow(cells).to_pylist() == expected + [None] + expected[::-1]
    # (pandas' factorize takes "" and "\0" for one string: its ids never hold NUL)
    clean = [t for t in ids if "\0" not in t]
    assert pseudonymise(clean, key).tolist() == [_reference_pseudonym(key, t) for t in clean]


def test_a_string_key_is_its_utf8_bytes():
    key = "khoá bí mật của tỉnh, 16+ bytes"
    assert Pseudonymiser(key)("HH0001") == _reference_pseudonym(key.encode("utf-8"), "HH0001")


def test_csv_register_hashes_each_household_id_once_per_block(tmp_path, monkeypatch):
    """The engine path makes a household's pseudonym once per csv block, not once per
    row: a register sorted by household holds its review periods next to each other
    (here 4 quarters, 3 households to a block). The outputs keep the pandas path's
    bytes."""
    raw = tmp_path / "raw"
    raw.mkdir()
    lines = ["Mã hộ,Kỳ,Phân loại hộ,Tỉnh,Thu nhập bình quân"] + [
        f"HH{h:04d},2024Q{q},Hộ nghèo,Hà Giang," + f"{1_000_000 + 1000 * h:,}".replace(",", ".")
        for h in range(60) for q in range(1, 5)]
    (raw / "register.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    made = []
    hmacs = Pseudonymiser._pseudonyms
    monkeypatch.setattr(Pseudonymiser, "_pseudonyms", lambda self, messages: (
        made.extend(m.decode("utf-8") for m in messages), hmacs(self, messages))[1])
    monkeypatch.setattr(ingest_module.reading, "CSV_BLOCK_BYTES", 500)  # ~12 rows a block
    fast = ingest(raw, tmp_path / "engine", progress=False)
    assert fast.panel_rows == 240 and fast.tables[0].quarantined == 0, fast.errors
    # each id hashed once, or twice when its four rows straddle two blocks
    assert set(made) == {f"HH{h:04d}" for h in range(60)} and len(made) < 60 * 2
    monkeypatch.setattr(ingest_module.engine_checks, "ENGINE_CHECKS", False)
    ingest(raw, tmp_path / "pandas", progress=False)
    assert _hashes(tmp_path / "engine") == _hashes(tmp_path / "pandas")


def test_nasty_csv_cells_keep_the_pandas_bytes_in_small_blocks(tmp_path, monkeypatch):
    """The file of nasty cells (placeholder, blank and padded ids, exact copies, a
    footer), read in many small blocks: every output keeps the pandas path's bytes."""
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "register.csv").write_text("\n".join(_messy_register_lines()) + "\n",
                                      encoding="utf-8")
    monkeypatch.setattr(ingest_module.reading, "CSV_BLOCK_BYTES", 3000)
    fast = ingest(raw, tmp_path / "engine", progress=False)
    monkeypatch.setattr(ingest_module.engine_checks, "ENGINE_CHECKS", False)
    reference = ingest(raw, tmp_path / "pandas", progress=False)
    assert fast.balanced and reference.balanced and fast.panel_rows > 200
    assert fast.tables[0].quarantined > 50
    assert _hashes(tmp_path / "engine") == _hashes(tmp_path / "pandas")


def test_identifiers_nfc_checked_once_per_distinct_cell_when_a_block_repeats(monkeypatch):
    """The NFC check (a regex over a large character class, the cost) looks at each
    distinct non-ASCII identifier cell once in a block that repeats them (a register
    sorted by household), at each non-ASCII cell in a block of distinct ones, and at
    none in an ASCII column. The result is every cell NFC-normalised and trimmed."""
    import unicodedata

    import pyarrow.compute as pc

    from povdyn.ingest import checking

    pattern = checking._maybe_not_nfc()
    looked_at = []
    regex = pc.match_substring_regex
    monkeypatch.setattr(pc, "match_substring_regex", lambda cells, p, **k: (
        looked_at.extend(cells.to_pylist()) if p == pattern else None) or regex(cells, p, **k))
    monkeypatch.setattr(checking, "REPEAT_SAMPLE", 4)

    def reference(cells):
        return [None if c is None else unicodedata.normalize("NFC", c).strip() for c in cells]

    nfd = unicodedata.normalize("NFD", "Nguyễn Thị Ánh")
    repeating = ["Nguyễn Văn An", nfd, "Nguyễn Văn An", nfd, None, nfd + " ",
                 " 001200000001", "Trần Bình", nfd]  # 2 distinct in the first 4
    out = checking._normalised_identifier(pa.array(repeating, pa.string()))
    assert sorted(looked_at) == sorted(["Nguyễn Văn An", nfd, nfd + " ", "Trần Bình"])
    assert out.to_pylist() == reference(repeating)
    looked_at.clear()
    distinct = ["Nguyễn Văn An", nfd, " 0012", "Trần Bình ", None, nfd + " "]
    out = checking._normalised_identifier(pa.array(distinct, pa.string()))
    assert sorted(looked_at) == sorted(["Nguyễn Văn An", nfd, "Trần Bình ", nfd + " "])
    assert out.to_pylist() == reference(distinct)
    looked_at.clear()
    ascii_only = checking._normalised_identifier(pa.array(["0012 ", "0913"], pa.string()))
    assert looked_at == [] and ascii_only.to_pylist() == ["0012", "0913"]


@hyp_settings(max_examples=200, deadline=None)
@given(cells=st.lists(st.sampled_from(["Nguyễn", "Nguye\u0302\u0303n", " Ánh ", "A\u0301",
                                       "0912 ", "", "  ", "\u1100\u1161", "x"]) | st.none(),
                      max_size=30),
       sample=st.integers(min_value=1, max_value=8))
def test_identifiers_are_nfc_and_trimmed_on_either_path(cells, sample):
    """Whichever way a block is checked (per distinct cell or cell by cell), every cell
    comes out as unicodedata's NFC of it, trimmed; nulls stay null."""
    import unicodedata

    from povdyn.ingest import checking

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(checking, "REPEAT_SAMPLE", sample)
        out = checking._normalised_identifier(pa.array(cells, pa.string()))
    assert out.to_pylist() == [None if c is None else unicodedata.normalize("NFC", c).strip()
                               for c in cells]


_NUMBER_SHAPES = [r"[+-]?[0-9]+", r"[+-]?[0-9]+\.[0-9]+", r"[+-]?[0-9]{1,3}(\.[0-9]{3})+",
                  r"[+-]?[0-9]{1,3}(,[0-9]{3})+"]  # what the Arrow fast path promises


@hyp_settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="0123456789.,+- đ٣", max_size=12) | st.none(), max_size=40))
def test_number_fast_path_takes_its_shapes_with_the_slow_paths_values(cells):
    """Plain integers and decimals, "1.523.000" and "1,500,000" groups (trimmed) are
    read in Arrow, each shape's regex over the cells the shapes before it left; their
    values are parse_number_text's (the per-cell path every other cell takes)."""
    import math
    import re

    from povdyn import schema

    numbers, handled = schema.arrow_number_fast_path(pa.array(cells, pa.string()))
    for cell, value, took in zip(cells, numbers.to_pylist(), handled.to_pylist()):
        shaped = cell is not None and any(re.fullmatch(shape, cell.strip(), re.ASCII)
                                          for shape in _NUMBER_SHAPES)
        assert took == shaped, cell
        if took:
            assert math.isclose(value, schema.parse_number_text(cell), rel_tol=1e-15), cell


def test_number_fast_path_regexes_only_look_at_cells_still_untaken(monkeypatch):
    """An income column of plain integers (the national demo) or dotted groups (an
    office export) pays for one or two regexes per cell, not five."""
    import pyarrow.compute as pc

    from povdyn import schema

    seen: dict[str, int] = {}
    regex = pc.match_substring_regex
    monkeypatch.setattr(pc, "match_substring_regex", lambda cells, p, **k: (
        seen.__setitem__(p, seen.get(p, 0) + len(cells)), regex(cells, p, **k))[1])
    integers = ["5824000"] * 90 + ["1.523.000"] * 8 + ["1,5 triệu", "12,000"]
    numbers, handled = schema.arrow_number_fast_path(pa.array(integers, pa.string()))
    assert sum(seen.values()) == 100 + 10 + 2 + 2
    assert handled.to_pylist() == [True] * 98 + [False, True] and numbers[-1].as_py() == 12000
    seen.clear()
    dotted = ["1.523.000"] * 95 + ["750.5", "1.500", "2000", "x", "1,500,000"]
    numbers, handled = schema.arrow_number_fast_path(pa.array(dotted, pa.string()))
    assert sum(seen.values()) == 100 + 99 + 3 + 3
    assert numbers.to_pylist()[95:97] == [750.5, 1500.0] and handled.to_pylist()[-2:] == [
        False, True]


def test_a_clean_register_sends_no_row_back_to_pandas(tmp_path, monkeypatch):
    """The engine flags a row for check_batch (pandas, slow) only when a cell could be
    rejected: on a clean register (dotted and plain incomes read by the fast path, x
    marks, known provinces) no row goes back; one bad income sends exactly its row."""
    def line(h, q):
        dotted = f"{1_000_000 + 1000 * h:,}".replace(",", ".")
        return ",".join([f"HH{h:04d}", f"2024Q{q}", "Hộ nghèo" if h % 3 else "Không nghèo",
                         "Hà Giang", dotted if h % 2 else str(2_000_000 + h),
                         "x" if h % 2 else "", "Thoát nghèo" if q == 4 and h % 7 == 0 else ""])

    lines = ["Mã hộ,Kỳ,Phân loại hộ,Tỉnh,Thu nhập bình quân,Dân tộc thiểu số,Lý do"] + [
        line(h, q) for q in range(1, 5) for h in range(50)]
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "register.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    rechecked = []
    check = ingest_module.engine_checks.check_batch
    monkeypatch.setattr(ingest_module.engine_checks, "check_batch", lambda frame, *a: (
        rechecked.append(len(frame)), check(frame, *a))[1])
    clean = ingest(raw, tmp_path / "clean", progress=False)
    assert clean.panel_rows == 200 and clean.tables[0].quarantined == 0, clean.errors
    assert rechecked == []
    lines[8] = lines[8].replace("1.007.000", "khoảng 1 triệu")
    (raw / "register.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    one_bad = ingest(raw, tmp_path / "one_bad", progress=False)
    assert sum(rechecked) == 1 and one_bad.tables[0].quarantined == 1


def test_each_reason_to_flag_a_row_keeps_its_raw_cells_for_the_recheck(tmp_path, monkeypatch):
    """The engine's query flags a row for check_batch on any of its terms, and the raw
    cells of flagged rows come from a side file of "suspect" rows (not from DuckDB): one
    row trips each term alone (blank status, placeholder id, negative income, zero
    weight, an unknown status, an unknown province) among rows that look close but load (an exit or a
    removal without status, a short id with a digit, zero income, blank numbers). Each
    flagged row is quarantined with check_batch's reason, and every output keeps the
    pandas path's bytes, read in one block and in blocks of a few rows."""
    header = "Mã hộ,Kỳ,Phân loại hộ,Lý do,Tỉnh,Thu nhập bình quân,Trọng số"
    loads = [f"HH{h:03d},2024Q1,Hộ nghèo,,Hà Giang,{1_000_000 + h},1" for h in range(30)] + [
        "HH900,2024Q1,,Thoát nghèo,Hà Giang,2500000,1",  # an exit: non-poor, not flagged
        "HH901,2024Q1,,Chết,Hà Giang,,1",  # a removal needs no status
        "H1,2024Q1,Hộ nghèo,,Hà Giang,1000000,1",  # short, with a digit: an id
        "HH902,2024Q1,Hộ cận nghèo,,Hà Giang,0,1",  # no income is not a negative one
        "HH903,2024Q1,Hộ nghèo,,Hà Giang,,",  # blank numbers are no values
    ]
    flagged = {
        "HH950,2024Q1,,,Hà Giang,1000000,1": "status",
        "NA,2024Q1,Hộ nghèo,,Hà Giang,1000000,1": "household_id",
        "HH951,2024Q1,Hộ nghèo,,Hà Giang,-5,1": "income_pc_month",
        "HH952,2024Q1,Hộ nghèo,,Hà Giang,1000000,0": "weight",
        "HH953,2024Q1,Nghèo lắm,,Hà Giang,1000000,1": "status",
        "HH954,2024Q1,Hộ nghèo,,Atlantis,1000000,1": "province",
    }
    lines = [header] + loads[:15] + list(flagged) + loads[15:]
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "register.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setattr(ingest_module.engine_checks, "ENGINE_CHECKS", False)
    reference = ingest(raw, tmp_path / "pandas", progress=False)
    monkeypatch.setattr(ingest_module.engine_checks, "ENGINE_CHECKS", True)
    rechecked = []
    check = ingest_module.engine_checks.check_batch
    monkeypatch.setattr(ingest_module.engine_checks, "check_batch", lambda frame, *a: (
        rechecked.extend(frame["_row"]), check(frame, *a))[1])
    one_block = ingest(raw, tmp_path / "one_block", progress=False)
    monkeypatch.setattr(ingest_module.reading, "CSV_BLOCK_BYTES", 200)  # ~5 rows a block
    small_blocks = ingest(raw, tmp_path / "small_blocks", progress=False)
    for summary in (reference, one_block, small_blocks):
        assert summary.ok and summary.panel_rows == len(loads), summary.errors
        assert summary.tables[0].quarantined == len(flagged)
    # the flagged rows (data rows 16-21: lines 17-22) and no other went back, each run
    first = 1 + 15 + 1
    assert sorted(rechecked) == sorted(list(range(first, first + len(flagged))) * 2)
    reasons = pd.read_csv(tmp_path / "one_block" / "quarantine.csv", dtype=str,
                          encoding="utf-8-sig").set_index("row")["reason"]
    assert [reasons[str(first + i)].split(":")[0] for i in range(len(flagged))] == list(
        flagged.values())
    assert _hashes(tmp_path / "one_block") == _hashes(tmp_path / "pandas")
    assert _hashes(tmp_path / "small_blocks") == _hashes(tmp_path / "pandas")


def test_the_shipped_nfc_class_is_the_one_this_python_computes():
    """_maybe_not_nfc reads lib/povdyn/data/maybe_not_nfc-<Unicode version>.txt (ingest
    workers skip ~0.4 CPU-s each). It must exist for this Python's Unicode tables, or
    every worker pays the computation again, and equal what the tables give."""
    import unicodedata

    from povdyn.ingest import checking

    shipped = checking._DATA / f"maybe_not_nfc-{unicodedata.unidata_version}.txt"
    assert shipped.exists(), f"regenerate {shipped.name} from _maybe_not_nfc_computed()"
    assert shipped.read_text(encoding="ascii").strip() == checking._maybe_not_nfc_computed()
    assert checking._maybe_not_nfc() == checking._maybe_not_nfc_computed()
