"""Ingest end to end on small hand-written raw files: nothing lost, every rejection has a
reason naming the column, no identifier reaches the output, pseudonyms are stable,
re-running gives identical bytes. Expected counts are worked out by hand below."""
from __future__ import annotations

import csv
import functools
import hashlib
import hmac
import io
import json
import os
import tempfile
import unicodedata
from pathlib import Path

import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings as hyp_settings, strategies as st

import povdyn.ingest as ingest_module  # settings are patched in its modules (.run, .reading...)
from povdyn.cli import main as cli_main
from povdyn.ingest import ingest
from povdyn.panel import recorded_register

KEY = "test-key-not-secret"  # conftest sets POVDYN_PSEUDONYM_KEY to this

# Direct identifiers planted in the raw files: none may appear in any output
NAMES = ["Nguyễn Văn An", "Trần Thị Bình", "Lê Văn Cường", "Phạm Thị Dung", "Hoàng Văn Em",
         "Vũ Thị Phương", "Đỗ Văn Giang", "Bùi Thị Hoa", "Ngô Văn Ích"]
ID_CARDS = [f"0012345678{i:02d}" for i in range(9)]
PHONES = [f"09123456{i:02d}" for i in range(9)]
ADDRESSES = [f"Số {i} đường Lê Lợi, thôn Nà Sán" for i in range(9)]

# raw register csv: a title row and a blank row above the header (header = row 3)
REGISTER_CSV = """BÁO CÁO DANH SÁCH HỘ NGHÈO, HỘ CẬN NGHÈO NĂM 2024
,,,,,,,,,,,
Mã hộ,Họ tên chủ hộ,Số CCCD,Số điện thoại,Địa chỉ,Kỳ,Phân loại hộ,Tỉnh,Thu nhập bình quân,Dân tộc thiểu số,Lý do,Ghi chú
HH00000001,{n0},{c0},{p0},"{a0}",2024Q1,Hộ nghèo,Hà Giang,"1.200.000",x,,
HH00000001,{n0},{c0},{p0},"{a0}",2024Q2,Hộ cận nghèo,Hà Giang,"1,6 triệu",x,,
HH00000002,{n1},{c1},{p1},"{a1}",2024Q1,Nghèo lắm,Hà Giang,1000000,,,
HH00000003,{n2},{c2},{p2},"{a2}",2024Q1,Hộ nghèo,Atlantis,1000000,,,
HH00000004,{n3},{c3},{p3},"{a3}",2024Q2,,Hà Nội,1000000,,Chết,
HH00000005,{n4},{c4},{p4},"{a4}",2024Q1,Hộ nghèo,Hà Nội,abc,,,
HH00000006,{n5},{c5},{p5},"{a5}",2024Q1,Hộ nghèo,Hà Nội,1000000,,,

HH00000006,{n5},{c5},{p5},"{a5}",2024Q1,Hộ nghèo,Hà Nội,1000000,,,
HH00000007,{n6},{c6},{p6},"{a6}",2024Q1,Hộ nghèo,Hà Nội,1000000,,,
HH00000007,{n6},{c6},{p6},"{a6}",2024Q1,Cận nghèo,Hà Nội,1000000,,,
,{n7},{c7},{p7},"{a7}",2024Q1,Hộ nghèo,Hà Nội,1000000,,,
""".format(**{f"n{i}": NAMES[i] for i in range(9)}, **{f"c{i}": ID_CARDS[i] for i in range(9)},
           **{f"p{i}": PHONES[i] for i in range(9)}, **{f"a{i}": ADDRESSES[i] for i in range(9)})
# by hand, csv rows (spreadsheet numbering):
#   4 HH1 2024Q1 ok | 5 HH1 2024Q2 ok | 6 HH2 bad status | 7 HH3 unknown province
#   8 HH4 removal (death) ok | 9 HH5 bad income | 10 HH6 ok | 11 blank | 12 HH6 exact dup
#   13/14 HH7 same period, conflicting status -> both quarantined | 15 no id
#   -> rows in 11, loaded 4, quarantined 6, duplicates 1, blank 1


def _write_workbook(path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Quý 3-2024"   # list sheet: the period comes from the sheet name
    ws.append(["Mã hộ", "Họ và tên chủ hộ", "Phân loại hộ", "Tỉnh", "Số nhân khẩu", "Khu vực"])
    ws.append(["HH00000001", NAMES[0], "Hộ nghèo", "Hà Giang", 4, "Nông thôn"])   # row 2 ok
    ws.append(["HH00000008", NAMES[8], "Cận nghèo", "Cao Bằng", 0, "Nông thôn"])  # row 3 size 0
    ws.append(["HH00000009", NAMES[8], "Cận nghèo", "Cao Bằng", 3, "Miền núi"])   # row 4 area
    support = wb.create_sheet("Hỗ trợ")
    support.append(["Mã hộ", "Họ tên chủ hộ", "Chương trình", "Ngày bắt đầu", "Kỳ kết thúc", "Số tiền"])
    support.append(["HH00000001", NAMES[0], "Tín dụng ưu đãi", "15/08/2023", "2024Q4", "50.000.000 đ"])
    support.append(["HH00000005", NAMES[4], "Nuôi hàu", "32/13/2023", "", "1,5 triệu"])   # bad date
    support.append(["HH00000001", NAMES[0], "Tín dụng ưu đãi", "15/08/2023", "2024Q4", "50.000.000 đ"])  # dup
    wb.save(path)


def _make_raw(root: Path) -> Path:
    raw = root / "raw"
    (raw / "2024").mkdir(parents=True)
    (raw / "2024" / "register.csv").write_text(REGISTER_CSV, encoding="utf-8")
    _write_workbook(raw / "book.xlsx")
    (raw / "broken.xlsx").write_bytes(b"PK\x03\x04 this is not really a workbook")
    (raw / "README.md").write_text("notes", encoding="utf-8")
    return raw


@pytest.fixture(autouse=True)
def _free_text_programmes(monkeypatch):
    """Programme names are free text here (the shipped programs.csv is tested apart:
    test_support_programmes_spelled_as_offices_write_them_load_as_codes)."""
    monkeypatch.setattr(ingest_module.run, "_load_programs", lambda: None)


@pytest.fixture()
def ingested(tmp_path):
    raw = _make_raw(tmp_path)
    out = tmp_path / "out"
    summary = ingest(raw, out, progress=False)
    return raw, out, summary


def _pseudo(raw_id: str, key: str = KEY) -> str:
    return "h_" + hmac.new(key.encode(), raw_id.encode(), hashlib.sha256).hexdigest()[:16]


def _hashes(out: Path) -> dict:
    """The outputs' hashes (the hidden .ingest-cache is ingest's own working data)."""
    # (panel.parquet is a folder of period files: each file's hash, by its path)
    return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(out).parts)}


def test_counts_balance_and_match_the_hand_count(ingested):
    _, out, summary = ingested
    tables = {(t.source_file, t.sheet): t for t in summary.tables}
    csv_table = tables[("2024/register.csv", None)]
    assert (csv_table.rows_in, csv_table.loaded, csv_table.quarantined,
            csv_table.duplicates_dropped, csv_table.blank_rows) == (11, 4, 6, 1, 1)
    assert csv_table.header_row == 3
    sheet = tables[("book.xlsx", "Quý 3-2024")]
    assert (sheet.kind, sheet.rows_in, sheet.loaded, sheet.quarantined) == ("register", 3, 1, 2)
    roll = tables[("book.xlsx", "Hỗ trợ")]
    assert (roll.kind, roll.rows_in, roll.loaded, roll.quarantined, roll.duplicates_dropped) == \
        ("support", 3, 1, 1, 1)
    assert summary.balanced
    for t in summary.tables:
        assert t.rows_in == t.loaded + t.quarantined + t.duplicates_dropped
    assert summary.register == {"rows_in": 14, "loaded": 5, "quarantined": 8,
                                "duplicates_dropped": 1, "blank_rows": 1, "footer_rows": 0}
    assert "rows in 14 = loaded 5 + quarantined 8 + exact duplicates dropped 1" in str(summary)
    panel = pd.read_parquet(out / "panel.parquet")
    assert len(panel) == 5 and summary.panel_rows == 5
    quarantine = pd.read_csv(out / "quarantine.csv", dtype=str, keep_default_na=False)
    assert len(quarantine) == 8 + 1
    saved = json.loads((out / "ingest_summary.json").read_text(encoding="utf-8"))
    assert saved["register"]["rows_in"] == 14 and saved["balanced"] is True


def test_unreadable_file_reported_by_name_others_still_load(ingested, tmp_path):
    raw, out, summary = ingested
    assert not summary.ok
    assert any(e.startswith("broken.xlsx") for e in summary.errors)
    assert "broken.xlsx" in str(summary) and "NOT OK" in str(summary)
    assert summary.panel_rows == 5
    assert cli_main(["-q", "ingest", str(raw), "--out", str(tmp_path / "cli")]) == 1
    (raw / "broken.xlsx").unlink()
    assert cli_main(["-q", "ingest", str(raw), "--out", str(tmp_path / "cli")]) == 0


def test_quarantine_names_file_row_sheet_and_column(ingested):
    _, out, _ = ingested
    q = pd.read_csv(out / "quarantine.csv", dtype=str, keep_default_na=False)
    assert list(q.columns[:4]) == ["source_file", "sheet", "row", "reason"]
    by_place = {(r.source_file, r.sheet, int(r.row)): r.reason for r in q.itertuples()}
    csv_file = "2024/register.csv"
    expected = {
        (csv_file, "", 6): "status: 'Nghèo lắm'",
        (csv_file, "", 7): "province: 'Atlantis'",
        (csv_file, "", 9): "income_pc_month: 'abc'",
        (csv_file, "", 13): "household_id+period",
        (csv_file, "", 14): "household_id+period",
        (csv_file, "", 15): "household_id: blank",
        ("book.xlsx", "Quý 3-2024", 3): "household_size: '0'",
        ("book.xlsx", "Quý 3-2024", 4): "area: 'Miền núi'",
        ("book.xlsx", "Hỗ trợ", 3): "start_period: '32/13/2023'",
    }
    assert set(by_place) == set(expected)
    for place, start in expected.items():
        assert by_place[place].startswith(start), (place, by_place[place])
    # the conflicting pair points at each other and names the differing column
    assert "status" in by_place[(csv_file, "", 13)] and "row 14" in by_place[(csv_file, "", 13)]
    # raw values kept for the office to fix
    assert q.loc[q["row"] == "9", "income_pc_month"].item() == "abc"


def test_no_identifier_reaches_the_output(ingested):
    _, out, _ = ingested
    texts = []
    for name in ("panel.parquet", "support.parquet"):
        frame = pd.read_parquet(out / name)
        assert not {"head_name", "id_card", "phone", "address"} & set(frame.columns)
        texts += [str(c) for c in frame.columns]
        texts += [str(v) for col in frame.columns for v in frame[col].tolist()]
    texts.append((out / "quarantine.csv").read_text(encoding="utf-8-sig"))
    texts.append((out / "ingest_summary.json").read_text(encoding="utf-8"))
    blob = "\n".join(texts)
    for secret in NAMES + ID_CARDS + PHONES + ADDRESSES + ["Nà Sán", "Lê Lợi"]:
        assert secret not in blob, secret
    for i in range(1, 10):
        assert f"HH0000000{i}" not in blob
    written = sorted((out / "panel.parquet").glob("*.parquet")) + [out / "support.parquet"]
    for raw_bytes in (path.read_bytes() for path in written):
        for secret in NAMES[:3] + ID_CARDS[:3] + ["HH00000001"]:
            assert secret.encode() not in raw_bytes


def test_pseudonyms_keyed_stable_and_shared_with_support(ingested, tmp_path, monkeypatch):
    raw, out, _ = ingested
    panel = pd.read_parquet(out / "panel.parquet")
    support = pd.read_parquet(out / "support.parquet")
    hh1 = _pseudo("HH00000001")
    assert set(panel["household_id"]) == {hh1, _pseudo("HH00000004"), _pseudo("HH00000006")}
    assert support["household_id"].tolist() == [hh1]
    assert panel.loc[panel["household_id"] == hh1, "period"].tolist() == ["2024Q1", "2024Q2", "2024Q3"]
    monkeypatch.setenv("POVDYN_PSEUDONYM_KEY", "another key, 16+ bytes")
    other = ingest(raw, tmp_path / "other", progress=False)
    assert other.panel_rows == 5
    other_ids = set(pd.read_parquet(tmp_path / "other" / "panel.parquet")["household_id"])
    assert other_ids == {_pseudo(f"HH0000000{i}", "another key, 16+ bytes") for i in (1, 4, 6)}
    assert not other_ids & set(panel["household_id"])


def test_canonical_values_and_province_2025(ingested):
    _, out, _ = ingested
    panel = pd.read_parquet(out / "panel.parquet")
    hh1 = panel[panel["household_id"] == _pseudo("HH00000001")]   # rows in period order
    assert hh1["status"].tolist() == ["poor", "near_poor", "poor"]
    assert set(hh1["province"]) == {"Hà Giang"} and set(hh1["province_2025"]) == {"Tuyên Quang"}
    assert hh1["income_pc_month"].tolist()[:2] == [1_200_000.0, 1_600_000.0]
    assert hh1["ethnic_minority"].tolist()[:2] == [True, True]
    removal = panel[panel["removal_reason"].notna()]
    assert removal["removal_reason"].tolist() == ["death"] and removal["status"].isna().all()
    assert panel.loc[panel["period"] == "2024Q3", "household_size"].tolist() == [4]
    support = pd.read_parquet(out / "support.parquet")
    assert support[["program", "start_period", "end_period", "amount_vnd"]].values.tolist() == \
        [["Tín dụng ưu đãi", "2023Q3", "2024Q4", 50_000_000.0]]


def test_rerun_gives_identical_bytes(ingested):
    raw, out, _ = ingested
    before = _hashes(out)
    assert {name.split("/")[0] for name in before} == {
        "panel.parquet", "support.parquet", "quarantine.csv", "ingest_summary.json"}
    ingest(raw, out, progress=False)
    assert _hashes(out) == before
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def _cp1258(text: str) -> bytes:
    """Windows-1258 bytes: precomposed letters where the code page has them (â, ơ, đ),
    tone marks as combining characters (how Vietnamese Windows software writes it)."""
    out = b""
    for ch in unicodedata.normalize("NFC", text):
        base, *marks = unicodedata.normalize("NFD", ch)
        options = [ch] + [unicodedata.normalize("NFC", base + m) + "".join(x for x in marks if x != m)
                          for m in marks] + [base + "".join(marks)]
        for option in options:
            try:
                out += option.encode("cp1258")
                break
            except UnicodeEncodeError:
                continue
        else:
            raise ValueError(ch)
    return out


def test_malformed_csv_lines_and_other_encodings(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    # a Windows-1258 export separated by semicolons, one line with a stray separator
    text = ("Mã hộ;Năm;Tình trạng;Tỉnh\n"
            "A1;2023;Nghèo;Điện Biên\n"
            "A2;2023;Cận nghèo;Điện Biên;oops\n"
            "A3;2023;Không nghèo;Điện Biên\n")
    (raw / "lai_chau.csv").write_bytes(_cp1258(text))
    summary = ingest(raw, tmp_path / "out", progress=False)
    assert summary.ok and summary.balanced
    assert summary.register == {"rows_in": 3, "loaded": 2, "quarantined": 1,
                                "duplicates_dropped": 0, "blank_rows": 0, "footer_rows": 0}
    q = pd.read_csv(tmp_path / "out" / "quarantine.csv", dtype=str)
    assert q["row"].tolist() == ["3"] and "5 fields" in q["reason"].item()
    panel = pd.read_parquet(tmp_path / "out" / "panel.parquet")
    assert panel["period"].tolist() == [2023, 2023] and panel["period"].dtype == "int64"
    assert set(panel["status"]) == {"poor", "non_poor"}
    assert set(panel["province"]) == {"Điện Biên"}  # NFC again


def test_parquet_dataset_with_partition_folders(tmp_path):
    raw = tmp_path / "raw"
    for year, statuses in ((2023, ["poor", "near_poor"]), (2024, ["non_poor", "poor"])):
        folder = raw / "panel" / f"period={year}"
        folder.mkdir(parents=True)
        table = pa.table({"household_id": ["X1", "X2"], "status": statuses,
                          "province": ["Điện Biên", "Hà Giang"],
                          "province_2025": ["stale", "stale"],      # recomputed by ingest
                          "ethnic_minority": [True, False], "dep_water": [False, True],
                          "household_size": [5, 3], "income_pc_month": [900_000.0, 1.4e6],
                          "head_name": ["Nguyễn Văn An", "Trần Thị Bình"]})
        pq.write_table(table, folder / "part-0.parquet")
    summary = ingest(raw, tmp_path / "out", progress=False)
    assert summary.ok and summary.panel_rows == 4 and summary.frequency == "year"
    panel = pd.read_parquet(tmp_path / "out" / "panel.parquet")
    x2 = panel[panel["household_id"] == _pseudo("X2")]
    assert x2["period"].tolist() == [2023, 2024] and x2["status"].tolist() == ["near_poor", "poor"]
    assert set(x2["province_2025"]) == {"Tuyên Quang"}
    assert x2["ethnic_minority"].tolist() == [False, False] and x2["dep_water"].tolist() == [True, True]
    assert x2["household_size"].tolist() == [3, 3] and x2["income_pc_month"].tolist() == [1.4e6, 1.4e6]
    assert "head_name" not in panel.columns


def test_empty_raw_folder_is_not_ok(tmp_path):
    (tmp_path / "raw").mkdir()
    summary = ingest(tmp_path / "raw", tmp_path / "out", progress=False)
    assert not summary.ok and "no csv" in summary.errors[0]


def test_unrecognised_table_is_an_error_not_a_silent_skip(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "prices.csv").write_text("item,price\nrice,12000\n", encoding="utf-8")
    (raw / "ok.csv").write_text("household_id,period,status,province\nA,2024,poor,Hà Nội\n",
                                encoding="utf-8")
    summary = ingest(raw, tmp_path / "out", progress=False)
    assert not summary.ok and any("prices.csv" in e for e in summary.errors)
    assert summary.panel_rows == 1


def test_known_programme_codes_when_the_programme_table_exists(tmp_path, monkeypatch):
    from povdyn.schema import fold

    monkeypatch.setattr(ingest_module.run, "_load_programs",
                        lambda: {"credit": "credit", fold("Tín dụng ưu đãi"): "credit"})
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "roll.csv").write_text("Mã hộ,Chương trình,Kỳ bắt đầu\nA,Tín dụng ưu đãi,2023Q1\n"
                                  "B,credit,2023Q2\nC,Phép thuật,2023Q2\n", encoding="utf-8")
    summary = ingest(raw, tmp_path / "out", progress=False)
    support = pd.read_parquet(tmp_path / "out" / "support.parquet")
    assert support["program"].tolist() == ["credit", "credit"]
    assert summary.support["quarantined"] == 1
    q = pd.read_csv(tmp_path / "out" / "quarantine.csv", dtype=str)
    assert q["reason"].item().startswith("program: 'Phép thuật'")


# --- property: broken rows mixed with good ones ------------------------------------
GOOD_STATUS = ["Hộ nghèo", "Hộ cận nghèo", "Không nghèo", "nghèo", "can ngheo"]
STATUS_CODE = {"Hộ nghèo": "poor", "nghèo": "poor", "Hộ cận nghèo": "near_poor",
               "can ngheo": "near_poor", "Không nghèo": "non_poor"}
GOOD_PERIODS = ["2024Q1", "2024Q2", "Quý 3/2024", "2024-Q4"]
GOOD_PROVINCES = ["Hà Giang", "Hà Nội", "Lai Châu", "Cà Mau"]
GOOD_INCOME = ["1.500.000", "1,5 triệu", "2000000", "", "700.000 đ"]
letters = st.text(alphabet="bcdfghjqvwz", min_size=2, max_size=6)


@st.composite
def broken_registers(draw):
    """Rows with a known fate: ('loaded'), ('duplicate') or ('quarantine', column)."""
    kinds = ["good", "good", "good", "removal", "bad_status", "bad_period", "bad_number",
             "missing_id", "bad_province", "exact_dup", "conflict_dup"]
    rows, fates, originals = [], [], []
    n = draw(st.integers(1, 30))
    for i in range(n):
        kind = draw(st.sampled_from(kinds))
        if kind in ("exact_dup", "conflict_dup") and not originals:
            kind = "good"
        row = {"id": f"HH{i:05d}", "period": draw(st.sampled_from(GOOD_PERIODS)),
               "status": draw(st.sampled_from(GOOD_STATUS)),
               "province": draw(st.sampled_from(GOOD_PROVINCES)),
               "income": draw(st.sampled_from(GOOD_INCOME)), "reason": "", "name": NAMES[i % 9]}
        fate = ("loaded",)
        if kind == "removal":
            row.update(status="", reason=draw(st.sampled_from(["Chết", "Chuyển đi", "Tách hộ"])))
        elif kind == "bad_status":
            row["status"] = "zz" + draw(letters)
            fate = ("quarantine", "status")
        elif kind == "bad_period":
            row["period"] = draw(st.sampled_from(["2024Q5", "20x4", "Quý 7/2024"])) + draw(letters)
            fate = ("quarantine", "period")
        elif kind == "bad_number":
            row["income"] = draw(st.sampled_from(["1..5", "12.34.5", "zz"])) + draw(letters)
            fate = ("quarantine", "income_pc_month")
        elif kind == "missing_id":
            row["id"] = draw(st.sampled_from(["", "  ", "-"]))
            fate = ("quarantine", "household_id")
        elif kind == "bad_province":
            row["province"] = "Xứ " + draw(letters)
            fate = ("quarantine", "province")
        elif kind in ("exact_dup", "conflict_dup"):
            target = draw(st.sampled_from(originals))
            row = dict(rows[target])
            if kind == "exact_dup":
                fate = ("duplicate",)
            else:
                code = STATUS_CODE[rows[target]["status"]]
                row["status"] = draw(st.sampled_from([s for s in GOOD_STATUS if STATUS_CODE[s] != code]))
                earlier = [j for j in range(len(rows)) if rows[j]["id"] == row["id"]  # same values once read
                           and STATUS_CODE[rows[j]["status"]] == STATUS_CODE[row["status"]]]
                fate = ("duplicate",) if earlier else ("quarantine", "household_id+period")
                fates[target] = ("quarantine", "household_id+period")
                for j in range(len(rows)):   # an exact copy of the target stays a duplicate
                    if rows[j]["id"] == row["id"] and fates[j][0] == "loaded":
                        fates[j] = ("quarantine", "household_id+period")
        if kind == "good":
            originals.append(len(rows))
        rows.append(row)
        fates.append(fate)
    # an official signature footer below the data (or none): skipped, counted apart
    footer = draw(st.lists(st.sampled_from(FOOTER_LINES), max_size=6))
    return rows, fates, footer


# footer lines as (column, text); None = a blank line
FOOTER_LINES = [None, (0, "Người lập biểu"), (3, "TM. ỦY BAN NHÂN DÂN"), (3, "CHỦ TỊCH"),
                (1, "(Ký, ghi rõ họ tên)"), (4, "Nà Sán, ngày 15 tháng 12 năm 2025"),
                (0, "Lò Thị Mai"), (2, "Hoàng Văn Thắng")]


@hyp_settings(max_examples=40, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(broken_registers())
def test_property_nothing_lost_every_rejection_has_a_reason(case):
    rows, fates, footer = case
    # the footer starts at its first signature line: names or blanks above it are data
    # (blank lines are skipped as blank, a lone name is a row with no id, quarantined)
    first_sig = next((i for i, f in enumerate(footer) if f is not None
                      and f[1] not in ("Lò Thị Mai", "Hoàng Văn Thắng")), len(footer))
    above, block = footer[:first_sig], footer[first_sig:]
    extra_quarantined = sum(f is not None for f in above)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw"
        raw.mkdir()
        with open(raw / "list.csv", "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["Mã hộ", "Họ tên chủ hộ", "Kỳ", "Phân loại hộ", "Tỉnh",
                             "Thu nhập bình quân", "Lý do ra khỏi danh sách"])
            for r in rows:
                writer.writerow([r["id"], r["name"], r["period"], r["status"], r["province"],
                                 r["income"], r["reason"]])
            for line in footer:
                cells = [""] * 7
                if line is not None:
                    cells[line[0]] = line[1]
                writer.writerow(cells)
        summary = ingest(raw, Path(tmp) / "out", progress=False)
        q = pd.read_csv(Path(tmp) / "out" / "quarantine.csv", dtype=str, keep_default_na=False)
        panel = pd.read_parquet(Path(tmp) / "out" / "panel.parquet")

    n = len(rows) + extra_quarantined
    reg = summary.register
    assert reg["rows_in"] == n
    assert reg["loaded"] + reg["quarantined"] + reg["duplicates_dropped"] == n
    assert reg["footer_rows"] == sum(f is not None for f in block)
    assert reg["blank_rows"] == len(footer) - sum(f is not None for f in footer)
    assert reg["loaded"] == sum(f[0] == "loaded" for f in fates) == len(panel)
    assert reg["duplicates_dropped"] == sum(f[0] == "duplicate" for f in fates)
    assert len(q) == reg["quarantined"] == \
        sum(f[0] == "quarantine" for f in fates) + extra_quarantined
    assert (q["reason"].str.len() > 0).all()
    reasons = {int(r.row): r.reason for r in q.itertuples()}
    for i, fate in enumerate(fates):
        if fate[0] == "quarantine":
            assert (fate[1] + ":") in reasons[i + 2], (fate, reasons[i + 2])
    assert not any(name in " ".join(q.to_numpy().ravel()) for name in NAMES)


def test_a_year_among_quarters_is_quarantined(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "q.csv").write_text("Mã hộ,Kỳ,Phân loại hộ,Tỉnh\nA,2024Q1,Nghèo,Hà Nội\n"
                               "B,2024Q2,Nghèo,Hà Nội\nC,2024,Nghèo,Hà Nội\n", encoding="utf-8")
    summary = ingest(raw, tmp_path / "out", progress=False)
    assert summary.ok and summary.frequency == "quarter" and summary.panel_rows == 2
    q = pd.read_csv(tmp_path / "out" / "quarantine.csv", dtype=str)
    assert q["row"].tolist() == ["4"] and q["reason"].item().startswith("period: a year")


def test_province_spellings_map_to_2025_provinces(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "p.csv").write_text(
        "Mã hộ,Năm,Phân loại hộ,Tỉnh\nA,2024,Nghèo,Tỉnh Hà Giang\nB,2024,Nghèo,TP. Hồ Chí Minh\n"
        "C,2024,Nghèo,binh duong\nD,2024,Nghèo,Tỉnh Mộng Mơ\n", encoding="utf-8")
    summary = ingest(raw, tmp_path / "out", progress=False)
    panel = pd.read_parquet(tmp_path / "out" / "panel.parquet").set_index("household_id")
    assert panel.loc[_pseudo("A"), "province_2025"] == "Tuyên Quang"
    assert panel.loc[_pseudo("B"), "province_2025"] == "Hồ Chí Minh"
    assert panel.loc[_pseudo("C"), "province_2025"] == "Hồ Chí Minh"   # Bình Dương merged in
    assert panel.loc[_pseudo("A"), "province"] == "Hà Giang"      # the unit as recorded,
    assert panel.loc[_pseudo("C"), "province"] == "Bình Dương"    # canonical spelling
    q = pd.read_csv(tmp_path / "out" / "quarantine.csv", dtype=str)
    assert q["reason"].item().startswith("province: 'Tỉnh Mộng Mơ'") and summary.balanced


def test_two_row_header_with_title_rows_in_a_workbook(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "DS 2024"
    ws.append(["UBND XÃ NẬM CHÀ - DANH SÁCH HỘ NGHÈO NĂM 2024"])                  # row 1
    ws.append([])                                                                   # row 2
    ws.append(["STT", "Mã hộ", "Năm", "Phân loại hộ", "Tỉnh", "Thiếu hụt", None])  # row 3
    ws.append([None, None, None, None, None, "Nguồn nước", "Nhà tiêu hợp vệ sinh"])  # row 4
    ws.append([1, "N1", 2024, "Hộ nghèo", "Lai Châu", "x", None])                  # row 5
    ws.append([2, "N2", 2024, "Cận nghèo", "Lai Châu", None, "x"])                 # row 6
    ws.append([3, "N3", 2024, "Giàu", "Lai Châu", None, None])                     # row 7
    wb.save(raw / "nam_cha.xlsx")
    summary = ingest(raw, tmp_path / "out", progress=False)
    assert summary.ok and summary.register["rows_in"] == 3 and summary.panel_rows == 2
    panel = pd.read_parquet(tmp_path / "out" / "panel.parquet").set_index("household_id")
    assert panel.loc[_pseudo("N1"), ["dep_water", "dep_latrine"]].tolist() == [True, False]
    assert panel.loc[_pseudo("N2"), ["dep_water", "dep_latrine"]].tolist() == [False, True]
    q = pd.read_csv(tmp_path / "out" / "quarantine.csv", dtype=str)
    assert q["row"].tolist() == ["7"] and q["sheet"].tolist() == ["DS 2024"]


def test_synthetic_lists_register_is_the_full_register_restricted(tmp_path):
    """The demo writes one synthetic register twice: a full panel (English headers) and
    the office-style lists (Vietnamese headers and number formats, poor/near-poor and
    removal rows only). Ingested, the lists must equal the full panel's poor, near-poor
    and removal rows, value for value, with the same pseudonyms."""
    from povdyn.synth import write_demo

    outs = {}
    for style in ("full", "lists"):
        write_demo(tmp_path / style, households=400, seed=11, style=style, fmt="csv",
                   progress=False)
        summary = ingest(tmp_path / style, tmp_path / f"out_{style}", progress=False)
        assert summary.ok and summary.balanced and summary.rows_quarantined == 0
        outs[style] = tmp_path / f"out_{style}"
    full = pd.read_parquet(outs["full"] / "panel.parquet")
    lists = pd.read_parquet(outs["lists"] / "panel.parquet")
    # a removal is on the list only when the household was listed the period before
    on_list = full["status"].isin(["poor", "near_poor"])
    listed_before = on_list.groupby(full["household_id"]).shift(fill_value=False)
    listed = full[on_list | (full["removal_reason"].notna() & listed_before)]
    listed = listed[lists.columns].reset_index(drop=True)
    assert len(lists) > 50
    # the 2025 commune is derived from the household's own rows after July 2025, which
    # a list register holds only while the household is listed: compared apart (test_geo)
    derived = ["commune_2025", "commune_code", "commune_2025_basis"]
    pd.testing.assert_frame_equal(lists.drop(columns=derived), listed.drop(columns=derived))
    same = (lists["commune_2025_basis"] == listed["commune_2025_basis"]).to_numpy()
    assert (lists.loc[same, "commune_code"] == listed.loc[same, "commune_code"]).all()
    pd.testing.assert_frame_equal(pd.read_parquet(outs["full"] / "support.parquet"),
                                  pd.read_parquet(outs["lists"] / "support.parquet"))
    raw_lists = pd.read_csv(next((tmp_path / "lists").glob("danh_sach*.csv")), dtype=str)
    names = set(raw_lists["Họ tên chủ hộ"].dropna()) | set(raw_lists["Mã hộ"])
    blob = " ".join(str(v) for col in lists.columns for v in lists[col])
    assert not [n for n in names if n in blob]


def test_results_do_not_depend_on_how_tables_are_cut(tmp_path, monkeypatch):
    """Large tables are checked in pieces and same-shape tables in batches: the output
    must be byte-identical whatever the piece and batch sizes."""
    raw = _make_raw(tmp_path)
    ingest(raw, tmp_path / "whole", progress=False)
    monkeypatch.setattr(ingest_module.reading, "CHUNK_ROWS", 2)
    monkeypatch.setattr(ingest_module.run, "BATCH_ROWS", 3)
    monkeypatch.setattr(ingest_module.engine_checks, "BATCH_ROWS", 3)
    summary = ingest(raw, tmp_path / "pieces", progress=False)
    assert summary.balanced
    whole, pieces = _hashes(tmp_path / "whole"), _hashes(tmp_path / "pieces")
    assert whole == pieces


# --- issue 10: official list templates, register kind, household totals ---------------
def _official_list(path: Path, title: str | None, rows: list[list], sheet: str = "Danh sách",
                   footer: bool = True) -> None:
    """A commune's list as offices sign it: merged title block, STT column, footer."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = sheet
    ws.append(["ỦY BAN NHÂN DÂN XÃ NÀ SÁN", None, None, None, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"])
    ws.append(["TỈNH HÀ GIANG", None, None, None, "Độc lập - Tự do - Hạnh phúc"])
    ws.append([])
    ws.append([title] if title else [])
    ws.append(["(Kèm theo Quyết định số 12/QĐ-UBND ngày 15/12/2025)"])
    for r in (1, 2):
        ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=4)
    ws.merge_cells(start_row=4, start_column=1, end_row=4, end_column=7)
    ws.append(["STT", "Mã hộ", "Họ tên chủ hộ", "Phân loại hộ", "Tỉnh", "Xã", "Lý do"])
    for i, row in enumerate(rows, 1):
        ws.append([i, *row])
    if footer:
        ws.append([])
        ws.append([None, None, None, None, "Nà Sán, ngày 15 tháng 12 năm 2025"])
        ws.append([None, "Người lập biểu", None, None, "TM. ỦY BAN NHÂN DÂN"])
        ws.append([None, "(Ký, ghi rõ họ tên)", None, None, "CHỦ TỊCH"])
        ws.append([])
        ws.append([None, "Lò Thị Mai", None, None, "Hoàng Văn Thắng"])
    wb.save(path)


def test_official_template_title_stt_and_footer(tmp_path):
    """Title rows with merged cells, an STT column and a signature footer: the footer is
    skipped and counted apart (never quarantined), the year comes from the title, and a
    bad row just above the footer is still quarantined."""
    raw = tmp_path / "raw"
    raw.mkdir()
    _official_list(raw / "na_san_2025.xlsx", "DANH SÁCH HỘ NGHÈO, HỘ CẬN NGHÈO NĂM 2025", [
        ["T1", NAMES[0], "Hộ nghèo", "Hà Giang", "Xã Nà Sán", None],
        ["T2", NAMES[1], "Hộ cận nghèo", "Hà Giang", "Xã Nà Sán", None],
        ["T3", NAMES[2], None, "Hà Giang", "Xã Nà Sán", "Chết"],        # removal row
        ["T4", NAMES[3], "Nghèo lắm", "Hà Giang", "Xã Nà Sán", None],   # bad status
    ])
    summary = ingest(raw, tmp_path / "out", progress=False)
    assert summary.ok, str(summary)
    (table,) = summary.tables
    assert (table.rows_in, table.loaded, table.quarantined) == (4, 3, 1)
    # footer: date line, "Người lập biểu", "(Ký, ghi rõ họ tên)", signers' names; one blank
    # line above it and one inside it
    assert table.footer_rows == 4 and table.blank_rows == 2
    assert table.header_row == 6
    assert table.period_source == "title: 'DANH SÁCH HỘ NGHÈO, HỘ CẬN NGHÈO NĂM 2025'"
    assert "signature-footer rows skipped (not data): 4" in str(summary)
    panel = pd.read_parquet(tmp_path / "out" / "panel.parquet")
    assert set(panel["period"]) == {2025} and "Lò Thị Mai" not in panel.to_string()
    q = pd.read_csv(tmp_path / "out" / "quarantine.csv", dtype=str, keep_default_na=False)
    assert q["row"].tolist() == ["10"] and q["reason"].str.startswith("status:").all()


def test_template_period_from_sheet_title_or_nowhere(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    row = [["S1", NAMES[0], "Hộ nghèo", "Hà Giang", "Xã Nà Sán", None]]
    # quarter in the sheet name inside the title's year: the quarter wins
    _official_list(raw / "a.xlsx", "DANH SÁCH HỘ NGHÈO NĂM 2025", row, sheet="Quý 3-2025")
    # no title year: the sheet name alone
    _official_list(raw / "b.xlsx", "DANH SÁCH HỘ NGHÈO", [["S2", *row[0][1:]]],
                   sheet="Quý 4-2024")
    # title and sheet disagree: no period, quarantined with the reason
    _official_list(raw / "c.xlsx", "DANH SÁCH HỘ NGHÈO NĂM 2025", [["S3", *row[0][1:]]],
                   sheet="2023")
    # nothing anywhere
    _official_list(raw / "d.xlsx", "DANH SÁCH HỘ NGHÈO", [["S4", *row[0][1:]]], sheet="DS")
    summary = ingest(raw, tmp_path / "out", progress=False)
    tables = {t.source_file: t for t in summary.tables}
    assert tables["a.xlsx"].period_source.startswith("sheet name: 'Quý 3-2025' (in the title")
    assert tables["b.xlsx"].period_source == "sheet name: 'Quý 4-2024'"
    assert tables["c.xlsx"].period_source is None and tables["d.xlsx"].period_source is None
    assert summary.balanced
    panel = pd.read_parquet(tmp_path / "out" / "panel.parquet")
    assert sorted(panel["period"]) == ["2024Q4", "2025Q3"]
    q = pd.read_csv(tmp_path / "out" / "quarantine.csv", dtype=str, keep_default_na=False)
    reasons = dict(zip(q["source_file"], q["reason"]))
    assert "the title says 2025" in reasons["c.xlsx"] and "sheet name says 2023" in reasons["c.xlsx"]
    assert "no period column, and neither the title" in reasons["d.xlsx"]


def _full_rows(n_households: int, province: str, poor_every: int = 10) -> list[str]:
    lines = []
    for i in range(n_households):
        for year in (2023, 2024):
            status = "Hộ nghèo" if i % poor_every == 0 else "Không nghèo"
            lines.append(f"{province[:2]}{i},{year},{status},{province}")
    return lines


def test_register_kind_lists_full_and_recorded(tmp_path):
    from povdyn.synth import write_demo

    kinds = {}
    for style in ("full", "lists"):
        write_demo(tmp_path / style, households=300, seed=5, style=style, fmt="csv",
                   frequency="year", progress=False)
        summary = ingest(tmp_path / style, tmp_path / f"out_{style}", progress=False)
        assert summary.ok, str(summary)
        saved = json.loads((tmp_path / f"out_{style}" / "ingest_summary.json").read_text())
        recorded = json.loads((tmp_path / f"out_{style}" / "panel.parquet" / "_povdyn.json")
                              .read_text(encoding="utf-8"))
        assert recorded["register_kind"] == saved["register_kind"]
        assert recorded_register(tmp_path / f"out_{style}" / "panel.parquet") == \
            saved["register_kind"]
        assert set(saved["register_kind_by_province"].values()) == {saved["register_kind"]}
        kinds[style] = saved["register_kind"]
    assert kinds == {"full": "full", "lists": "lists"}


def test_exit_rows_keep_a_list_a_list(tmp_path):
    """A list may mark exits with a non-poor row ("Thoát nghèo"): still a list."""
    raw = tmp_path / "raw"
    raw.mkdir()
    lines = ["Mã hộ,Năm,Phân loại hộ,Tỉnh"]
    for i in range(30):
        lines += [f"L{i},2023,Hộ nghèo,Hà Giang", f"L{i},2024,Thoát nghèo,Hà Giang"]
    (raw / "lists.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = ingest(raw, tmp_path / "out", progress=False)
    assert summary.ok and summary.register_kind == "lists"
    assert summary.register_kind_counts["Tuyên Quang"]["exit_marks"] == 30


def test_mixed_and_unclear_register_kinds_are_errors_saying_what_was_seen(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    header = "Mã hộ,Năm,Phân loại hộ,Tỉnh"
    # Hà Giang: a full panel file and a list file -> mixed within one province
    (raw / "ha_giang_full.csv").write_text(
        "\n".join([header, *_full_rows(40, "Hà Giang")]) + "\n", encoding="utf-8")
    (raw / "ha_giang_lists.csv").write_text(
        "\n".join([header, *[f"X{i},2024,Hộ cận nghèo,Hà Giang" for i in range(25)]]) + "\n",
        encoding="utf-8")
    # Cao Bằng: mostly listed households with a few non-poor -> unclear
    lines = [f"C{i},2024,Hộ nghèo,Cao Bằng" for i in range(95)]
    lines += [f"D{i},2024,Không nghèo,Cao Bằng" for i in range(5)]
    (raw / "cao_bang.csv").write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    summary = ingest(raw, tmp_path / "out", progress=False)
    assert not summary.ok and summary.register_kind is None
    text = " ".join(summary.errors)
    assert "province Tuyên Quang: list files mixed with a full panel" in text
    assert "ha_giang_lists.csv: 0 poor, 25 near-poor, 0 non-poor" in text
    assert "ha_giang_full.csv: 8 poor" in text
    assert "province Cao Bằng: cannot tell" in text and "95 poor" in text and "5 non-poor" in text
    saved = json.loads((tmp_path / "out" / "ingest_summary.json").read_text())
    assert saved["ok"] is False and saved["register_kind"] is None
    assert summary.balanced  # the rows themselves are all accounted for


TOTALS_CSV = """Tỉnh,Xã,Năm,Tổng số hộ
Hà Giang,Xã Nà Sán,2024,1.250
Hà Giang,Xã Nà Sán,2024,1.250
Hà Giang,Xã Tân Lập,2024,abc
Atlantis,Xã Tân Lập,2024,300
Hà Giang,Xã Bản Ngò,2024,400
Hà Giang,Xã Bản Ngò,2024,410
Hà Giang,,2024,"12,500"

Hà Giang,Xã Nà Sán,2023,0
Hà Giang,Xã Nà Sán,,900
"""


def test_household_totals_validated_quarantined_and_written(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "tong_so_ho.csv").write_text(TOTALS_CSV, encoding="utf-8")
    lines = ["Mã hộ,Kỳ,Phân loại hộ,Tỉnh,Xã"] + \
        [f"H{i},2024Q{q},Hộ nghèo,Hà Giang,Xã Nà Sán" for i in range(3) for q in (3, 4)]
    (raw / "lists.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = ingest(raw, tmp_path / "out", progress=False)
    assert summary.ok, str(summary)
    (t,) = [t for t in summary.tables if t.kind == "totals"]
    # by hand: rows 2 ok, 3 exact dup, 4 bad number, 5 unknown province, 6/7 conflict,
    # 8 province total ok, 9 blank, 10 zero households, 11 no period
    assert (t.rows_in, t.loaded, t.quarantined, t.duplicates_dropped, t.blank_rows) == \
        (9, 2, 6, 1, 1)
    totals = pd.read_parquet(tmp_path / "out" / "totals.parquet")
    assert list(totals.columns) == ["province", "province_2025", "commune", "period", "households",
                                    "commune_2025", "commune_code", "old_commune_code",
                                    "commune_2025_basis"]
    # a commune row gets its 2025 commune as the register's rows of that commune do
    panel = pd.read_parquet(tmp_path / "out" / "panel.parquet")
    commune_row = totals[totals["commune"].notna()].iloc[0]
    # (Nà Sán is not a commune of Hà Giang: both are the explicit unknown, and listed)
    assert commune_row["commune_2025"] == panel["commune_2025"].iloc[0] == "? Xã Nà Sán"
    assert commune_row["commune_2025_basis"] == "unmatched" and commune_row["commune_code"] is None
    unplaced = pd.read_csv(tmp_path / "out" / "communes_unplaced.csv")
    assert sorted(unplaced.loc[unplaced["commune"] == "Xã Nà Sán", "table"]) == ["household totals", "register"]
    assert totals.loc[totals["commune"].isna(), ["commune_2025", "commune_2025_basis"]].isna().all().all()
    totals = totals.iloc[:, :5]
    assert totals.to_dict("records") == [
        {"province": "Hà Giang", "province_2025": "Tuyên Quang", "commune": None,
         "period": "2024Q4", "households": 12500},   # a year's total = its Q4 review
        {"province": "Hà Giang", "province_2025": "Tuyên Quang", "commune": "Xã Nà Sán",
         "period": "2024Q4", "households": 1250}]
    assert totals["households"].dtype == "int64"
    q = pd.read_csv(tmp_path / "out" / "quarantine.csv", dtype=str, keep_default_na=False)
    q = q[q["source_file"] == "tong_so_ho.csv"].set_index("row")["reason"]
    assert q["4"].startswith("households_total: 'abc' not a number")
    assert "not a known province" in q["5"]
    assert "different values" in q["6"] and "row 7" in q["6"] and "row 6" in q["7"]
    assert "whole number of households" in q["10"] and q["11"].startswith("period: blank")


def test_demo_lists_totals_are_the_full_panel_at_each_review(tmp_path):
    """Planted truth: the totals the demo writes beside the lists equal the households
    with a status at each annual review of the full panel of the same seed."""
    from povdyn.synth import write_demo

    for style in ("full", "lists"):
        write_demo(tmp_path / style, households=600, seed=3, style=style, fmt="csv",
                   progress=False)
    assert not (tmp_path / "full" / "tong_so_ho.csv").exists()
    summary = ingest(tmp_path / "lists", tmp_path / "out", progress=False)
    assert summary.ok and summary.totals["quarantined"] == 0, str(summary)
    totals = pd.read_parquet(tmp_path / "out" / "totals.parquet")
    full = pd.read_csv(tmp_path / "full" / "register.csv", dtype=str)
    review = full[full["period"].str.endswith("Q4") & full["status"].notna()]
    expected = review.groupby(["province", "commune", "period"]).size()
    got = totals.set_index(["province", "commune", "period"])["households"]
    assert got.sort_index().to_dict() == expected.sort_index().to_dict()
    assert got.sum() > 600 * 3  # every household at each of 5 reviews, less entries/removals


ADOPTION_CSV = """Tỉnh,Huyện,Xã,Chương trình,Năm áp dụng
Hà Giang,Huyện Vị Xuyên,Xã Nà Sán,credit,2023
Hà Giang,Huyện Vị Xuyên,Xã Nà Sán,credit,2023
Hà Giang,Huyện Vị Xuyên,Xã Tân Lập,Phép thuật,2023
Atlantis,Huyện Vị Xuyên,Xã Tân Lập,credit,2023
Hà Giang,Huyện Vị Xuyên,,credit,2022
Hà Giang,Huyện Vị Xuyên,Xã Bản Ngò,credit,năm ngoái
Hà Giang,Huyện Vị Xuyên,Xã Bản Ngò,housing,20233
Hà Giang,Huyện Vị Xuyên,Xã Bản Ngò,vocational_training,

Hà Giang,Huyện Đồng Văn,Xã Lũng Cú,Tín dụng ưu đãi,2022
Hà Giang,Huyện Đồng Văn,Xã Lũng Cú,credit,2024
Tỉnh Hà Giang,Huyện Mèo Vạc,Xã Lũng Cú,Tín dụng ưu đãi,2024
"""


def test_adoption_register_validated_quarantined_and_written(tmp_path, monkeypatch):
    """Issue 14 §3: the commune adoption register is its own kind of table; bad rows go
    to the quarantine with file, row, column and reason, the rest load, rows balance."""
    from povdyn.programs import find_adoption
    from povdyn.schema import fold

    monkeypatch.setattr(ingest_module.run, "_load_programs", lambda: {
        "credit": "credit", fold("Tín dụng ưu đãi"): "credit", "housing": "housing",
        fold("vocational_training"): "vocational_training"})
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "ap_dung_mo_hinh.csv").write_text(ADOPTION_CSV, encoding="utf-8")
    _good_csv(raw / "lists.csv")
    out = tmp_path / "out"
    summary = ingest(raw, out, progress=False)
    assert summary.ok, str(summary)
    (t,) = [t for t in summary.tables if t.kind == "adoption"]
    # by hand: rows 2 ok, 3 exact dup, 4 unknown programme, 5 unknown province, 6 no commune,
    # 7 not a year, 8 year out of range, 9 blank year = never (ok), 10 blank line,
    # 11/12 the same commune and programme with two years, 13 a same-named commune of
    # another district (ok)
    assert (t.rows_in, t.loaded, t.quarantined, t.duplicates_dropped, t.blank_rows) == \
        (11, 3, 7, 1, 1)
    assert summary.adoption["rows_in"] == 11 and summary.adoption_rows == 3
    assert "commune adoption rows in 11 = loaded 3 + quarantined 7" in str(summary)
    adoption = pd.read_parquet(out / "adoption.parquet")
    assert list(adoption.columns) == ["province", "province_2025", "district", "commune", "program",
                                      "adoption_year"]
    assert adoption.astype(object).where(adoption.notna(), None).to_dict("records") == [
        {"province": "Hà Giang", "province_2025": "Tuyên Quang", "district": "Huyện Mèo Vạc",
         "commune": "Xã Lũng Cú", "program": "credit", "adoption_year": 2024},
        {"province": "Hà Giang", "province_2025": "Tuyên Quang", "district": "Huyện Vị Xuyên",
         "commune": "Xã Bản Ngò", "program": "vocational_training", "adoption_year": None},
        {"province": "Hà Giang", "province_2025": "Tuyên Quang", "district": "Huyện Vị Xuyên",
         "commune": "Xã Nà Sán", "program": "credit", "adoption_year": 2023}]
    assert str(adoption["adoption_year"].dtype) == "Int64"
    q = pd.read_csv(out / "quarantine.csv", dtype=str, keep_default_na=False)
    q = q[q["source_file"] == "ap_dung_mo_hinh.csv"].set_index("row")["reason"]
    assert sorted(q.index, key=int) == ["4", "5", "6", "7", "8", "11", "12"]
    assert q["4"].startswith("program: 'Phép thuật' unknown programme")
    assert "not a known province" in q["5"]
    assert q["6"] == "commune: blank"
    assert q["7"].startswith("adoption_year: 'năm ngoái' not a year")
    assert q["8"].startswith("adoption_year: '20233' must be a whole year")
    assert "different values" in q["11"] and "row 12" in q["11"] and "row 11" in q["12"]
    # the event study finds it in the processed folder, keyed on the 2025 province
    found = find_adoption(out, raw)
    assert found is not None and set(found["province_2025"]) == {"Tuyên Quang"}
    # a later run without the register leaves no stale adoption.parquet behind
    (raw / "ap_dung_mo_hinh.csv").unlink()
    assert ingest(raw, out, progress=False).ok and not (out / "adoption.parquet").exists()


def test_demo_adoption_register_ingests_to_the_planted_one(tmp_path):
    """Planted truth: demo -> ingest gives generate()'s adoption register of the same
    seed (the columns the event study joins on), from English (full) and Vietnamese
    (lists) headers alike; an unchanged re-run reuses the cache and gives the same bytes."""
    from povdyn.synth import generate, write_demo

    truth = generate(households=600, seed=3, frequency="year").adoption
    cols = ["province_2025", "district", "commune", "program", "adoption_year"]
    expected = truth[cols].sort_values(cols[:-1]).reset_index(drop=True)
    for style in ("full", "lists"):
        write_demo(tmp_path / style, households=600, seed=3, style=style, frequency="year",
                   progress=False)
        out = tmp_path / f"out_{style}"
        summary = ingest(tmp_path / style, out, progress=False)
        assert summary.ok and summary.adoption["quarantined"] == 0, str(summary)
        assert summary.adoption_rows == len(truth)
        got = pd.read_parquet(out / "adoption.parquet")[cols]
        pd.testing.assert_frame_equal(got.sort_values(cols[:-1]).reset_index(drop=True), expected,
                                      check_dtype=False)
        before = (out / "adoption.parquet").read_bytes()
        again = ingest(tmp_path / style, out, progress=False)
        assert again.reused_files and (out / "adoption.parquet").read_bytes() == before
        assert again.adoption == summary.adoption


def test_demo_list_templates_ingest_like_the_csv_lists(tmp_path, monkeypatch):
    """The office templates (xlsx, one workbook per commune per year) hold exactly the
    csv lists of the same seed: same panel, same totals, nothing quarantined, every
    footer skipped. One review year keeps the number of workbooks small."""
    from povdyn.synth import write_demo, writers

    monkeypatch.setattr(writers, "YEARS", (2025,))
    for fmt in ("csv", "xlsx"):
        write_demo(tmp_path / fmt, households=400, seed=9, style="lists", fmt=fmt,
                   frequency="year", progress=False)
    books = sorted((tmp_path / "xlsx" / "danh_sach").rglob("*_2025.xlsx"))
    assert len(books) >= 100 and all(b.name.endswith("_2025.xlsx") for b in books)
    outs = {}
    for fmt in ("csv", "xlsx"):
        summary = ingest(tmp_path / fmt, tmp_path / f"out_{fmt}", progress=False)
        assert summary.ok and summary.rows_quarantined == 0, str(summary)
        outs[fmt] = summary
    assert outs["xlsx"].register["footer_rows"] == 4 * len(books)
    assert {t.period_source for t in outs["xlsx"].tables if t.kind == "register"} == \
        {"title: 'DANH SÁCH HỘ NGHÈO, HỘ CẬN NGHÈO NĂM 2025'"}
    csv_panel = pd.read_parquet(tmp_path / "out_csv" / "panel.parquet")
    xlsx_panel = pd.read_parquet(tmp_path / "out_xlsx" / "panel.parquet")
    pd.testing.assert_frame_equal(xlsx_panel, csv_panel[csv_panel["period"] == 2025]
                                  .reset_index(drop=True))
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "out_xlsx" / "totals.parquet"),
                                  pd.read_parquet(tmp_path / "out_csv" / "totals.parquet"))
    # re-running the writer gives the same bytes
    before = {b: hashlib.sha256(b.read_bytes()).hexdigest() for b in books[:5]}
    write_demo(tmp_path / "xlsx", households=400, seed=9, style="lists", fmt="xlsx",
               frequency="year", progress=False)
    assert {b: hashlib.sha256(b.read_bytes()).hexdigest() for b in books[:5]} == before


# --- issue 11 §3: faults found when tried as a new user would ---------------------------
def _good_csv(path: Path, ids=("G1", "G2"), extra_header="", extra_cells=("",) * 2) -> None:
    lines = ["Mã hộ,Năm,Phân loại hộ,Tỉnh" + extra_header]
    lines += [f"{i},2024,Hộ nghèo,Hà Giang" + extra for i, extra in zip(ids, extra_cells)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_fault_long_csv_field_fails_only_that_row_or_file(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    long_note = "x" * 200_000
    _good_csv(raw / "long.csv", ids=("L1", "L2"), extra_header=",Ghi chú",
              extra_cells=(f',"{long_note}"', ",ok"))
    _good_csv(raw / "other.csv")
    summary = ingest(raw, tmp_path / "out", progress=False)
    assert summary.balanced and summary.register["rows_in"] == 4
    panel = pd.read_parquet(tmp_path / "out" / "panel.parquet")
    assert len(panel) + summary.rows_quarantined == 4
    assert _pseudo("G1") in set(panel["household_id"])  # the other file still loads


def test_fault_a_failed_run_never_leaves_ok_outputs(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    raw.mkdir()
    _good_csv(raw / "a.csv")
    out = tmp_path / "out"
    assert ingest(raw, out, progress=False).ok
    assert json.loads((out / "ingest_summary.json").read_text())["ok"] is True

    def boom(*args, **kwargs):
        raise MemoryError("planted failure while writing the panel")

    monkeypatch.setattr(ingest_module.run, "_finish_support", boom)
    with pytest.raises(MemoryError):
        ingest(raw, out, progress=False)
    saved = json.loads((out / "ingest_summary.json").read_text())
    assert saved["ok"] is False
    assert "planted failure while writing the panel" in " ".join(saved["errors"])


@pytest.mark.parametrize("mark", ["✓", "✔", "☑", "x", "X"])
def test_fault_tick_marks_read_as_true(mark):
    from povdyn import schema

    values, bad = schema.parse_bool(pd.Series([mark, "", mark]))
    assert values.tolist() == [True, False, True] and not bad.any()
    values, bad = schema.parse_bool(pd.Series([mark, "Không"]))
    assert values.tolist() == [True, False] and not bad.any()


def test_fault_other_digit_scripts_parsed_not_blank():
    from povdyn import schema

    values, bad = schema.parse_number(pd.Series(["٣", "३", "1٢"]))
    assert values.tolist() == [3.0, 3.0, 12.0] and not bad.any()
    periods, bad = schema.parse_period_column(pd.Series(["٢٠٢٤"]))
    assert periods.tolist() == [2024] and not bad.any()
    # a symbol that is no digit is quarantined, never silently blank
    values, bad = schema.parse_number(pd.Series(["★"]))
    assert bad.tolist() == [True]


def test_fault_nfd_and_cp1258_text_is_normalised_before_parsing(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for name, encode in (("nfd.csv", lambda t: unicodedata.normalize("NFD", t).encode("utf-8")),
                         ("cp1258.csv", _cp1258), ("nfc.csv", lambda t: t.encode("utf-8"))):
        text = ("Mã hộ,Năm,Phân loại hộ,Tỉnh,Thu nhập bình quân\n"
                f"{name},2024,Hộ nghèo,Hà Giang,\"1,5 triệu\"\n")
        (raw / name).write_bytes(encode(text))
    summary = ingest(raw, tmp_path / "out", progress=False)
    assert summary.ok and summary.rows_quarantined == 0, str(summary)
    panel = pd.read_parquet(tmp_path / "out" / "panel.parquet")
    assert panel["income_pc_month"].tolist() == [1_500_000.0] * 3


def test_fault_invalid_byte_late_in_a_large_file_quarantines_that_row(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    lines = ["Mã hộ,Năm,Phân loại hộ,Tỉnh,Ghi chú"]
    lines += [f"B{i},2024,Hộ nghèo,Hà Giang,ghi chú số {i} " + "·" * 40 for i in range(30_000)]
    body = ("\n".join(lines) + "\n").encode("utf-8")
    assert len(body) > 2 << 20  # the bad byte is well past the first megabyte
    bad_line = 25_000
    cut = body.split(b"\n")
    cut[bad_line - 1] = cut[bad_line - 1].replace(b"ghi", b"gh\xff", 1)
    (raw / "big.csv").write_bytes(b"\n".join(cut))
    summary = ingest(raw, tmp_path / "out", progress=False)
    assert summary.ok and summary.balanced, str(summary)
    (table,) = summary.tables
    assert (table.rows_in, table.loaded, table.quarantined) == (30_000, 29_999, 1)
    q = pd.read_csv(tmp_path / "out" / "quarantine.csv", dtype=str, keep_default_na=False)
    assert q["row"].tolist() == [str(bad_line)]
    assert "line 25000" in q["reason"].item() and "0xff" in q["reason"].item()


def test_fault_formulas_neutralised_in_quarantine_csv(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    text = ("Mã hộ,Năm,Phân loại hộ,Tỉnh,Thu nhập bình quân\n"
            "F1,2024,=cmd|' /C calc'!A0,Hà Giang,1000\n"
            "F2,2024,Hộ nghèo,\"=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",1000\n"
            "F3,2024,@SUM(A1),Hà Giang,1000\n"
            "F4,2024,+1+1,Hà Giang,-5\n"
            "F5,2024,Hộ nghèo,Hà Giang,-1+2\n")
    (raw / "f.csv").write_text(text, encoding="utf-8")
    ingest(raw, tmp_path / "out", progress=False)
    with open(tmp_path / "out" / "quarantine.csv", encoding="utf-8-sig", newline="") as handle:
        cells = [c for row in csv.reader(handle) for c in row]
    assert len(cells) > 5 * 4
    assert not [c for c in cells if c[:1] in ("=", "+", "@") or
                (c[:1] == "-" and not c[1:].replace(".", "").isdigit())]
    assert "'=cmd|' /C calc'!A0" in cells


def test_fault_header_only_register_is_a_no_data_rows_error(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "empty.csv").write_text("Mã hộ,Năm,Phân loại hộ,Tỉnh\n", encoding="utf-8")
    summary = ingest(raw, tmp_path / "out", progress=False)
    assert not summary.ok
    assert any("no data rows" in e for e in summary.errors), summary.errors
    assert cli_main(["-q", "ingest", str(raw), "--out", str(tmp_path / "out2")]) == 1


def _key_env(monkeypatch, key_file: Path):
    monkeypatch.delenv("POVDYN_PSEUDONYM_KEY", raising=False)
    monkeypatch.setenv("POVDYN_KEY_FILE", str(key_file))


def test_fault_missing_key_with_processed_data_is_an_error(tmp_path, monkeypatch):
    from povdyn.errors import PovdynError

    raw = tmp_path / "raw"
    raw.mkdir()
    _good_csv(raw / "a.csv")
    key_file = tmp_path / "keys" / "povdyn.key"
    _key_env(monkeypatch, key_file)
    out = tmp_path / "out"
    assert ingest(raw, out, progress=False).ok          # first run creates the key
    first = pd.read_parquet(out / "panel.parquet")
    key_file.unlink()                                   # lost key, data still there
    with pytest.raises(PovdynError, match="new-key") as err:
        ingest(raw, out, progress=False)
    assert "would not link" in str(err.value) and str(key_file) in str(err.value)
    assert not key_file.exists()
    assert json.loads((out / "ingest_summary.json").read_text())["ok"] is False
    assert cli_main(["-q", "ingest", str(raw), "--out", str(out)]) == 2
    # starting afresh is explicit
    assert cli_main(["-q", "ingest", str(raw), "--out", str(out), "--new-key"]) == 0
    again = pd.read_parquet(out / "panel.parquet")
    assert key_file.exists() and set(again["household_id"]).isdisjoint(first["household_id"])


@pytest.mark.parametrize("content", ["", "\n", "short-key"])
def test_fault_empty_or_short_key_is_a_clear_error(tmp_path, monkeypatch, content):
    from povdyn.errors import PovdynError

    raw = tmp_path / "raw"
    raw.mkdir()
    _good_csv(raw / "a.csv")
    key_file = tmp_path / "povdyn.key"
    key_file.write_text(content)
    _key_env(monkeypatch, key_file)
    with pytest.raises(PovdynError, match="empty|shorter than 16"):
        ingest(raw, tmp_path / "out", progress=False)


def test_fault_key_location_does_not_depend_on_cwd(tmp_path, monkeypatch):
    """Installed without a checkout (no pyproject above the package), the key lives in
    the user's config folder, wherever the command is run from."""
    from povdyn import privacy

    monkeypatch.delenv("POVDYN_KEY_FILE", raising=False)
    monkeypatch.delenv("POVDYN_ROOT", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setattr(privacy, "_package_in_checkout", lambda: False)
    places = set()
    for cwd in (tmp_path / "a", tmp_path / "b"):
        cwd.mkdir()
        monkeypatch.chdir(cwd)
        places.add(privacy.key_path())
    assert places == {tmp_path / "config" / "povdyn" / "pseudonym.key"}


def test_fault_rows_differing_only_in_identifiers_are_a_conflict(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    text = ("Mã hộ,Họ tên chủ hộ,Số CCCD,Năm,Phân loại hộ,Tỉnh\n"
            f"D1,{NAMES[0]},{ID_CARDS[0]},2024,Hộ nghèo,Hà Giang\n"
            f"D1,{NAMES[1]},{ID_CARDS[1]},2024,Hộ nghèo,Hà Giang\n"   # another family, same code
            f"D2,{NAMES[2]},{ID_CARDS[2]},2024,Hộ nghèo,Hà Giang\n"
            f"D2,{NAMES[2]},{ID_CARDS[2]},2024,Hộ nghèo,Hà Giang\n")  # a true exact duplicate
    (raw / "d.csv").write_text(text, encoding="utf-8")
    summary = ingest(raw, tmp_path / "out", progress=False)
    (t,) = summary.tables
    assert (t.loaded, t.quarantined, t.duplicates_dropped) == (1, 2, 1)
    q = pd.read_csv(tmp_path / "out" / "quarantine.csv", dtype=str, keep_default_na=False)
    assert q["row"].tolist() == ["2", "3"]
    assert q["reason"].str.contains("identifiers").all()
    blob = q.to_string()
    assert not any(x in blob for x in NAMES[:3] + ID_CARDS[:3])


def test_fault_tmpdir_with_a_quote_and_one_spill_dir_per_process(tmp_path):
    """No SQL is built by pasting paths: a TMPDIR holding ' must not break DuckDB, and
    each process spills into a folder of its own."""
    import subprocess
    import sys

    tmpdir = tmp_path / "it's here"
    tmpdir.mkdir()
    code = ("from povdyn.engine import connect\n"
            "con = connect('duckdb')\n"
            "print(con.con.execute(\"SELECT current_setting('temp_directory')\").fetchone()[0])\n")
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    spills = []
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        spills.append(done.stdout.strip())
    assert spills[0] != spills[1]
    assert all(s.startswith(str(tmpdir)) for s in spills)


BAD_FILES = {
    "random.csv": st.binary(min_size=0, max_size=400),
    "junk.xlsx": st.binary(min_size=0, max_size=200).map(lambda b: b"PK\x03\x04" + b),
    "text.csv": st.text(min_size=0, max_size=300).map(lambda t: t.encode("utf-8", "replace")),
    "half.csv": st.lists(st.text(alphabet="ab,;\"\n\r\t0123456789Qý", max_size=30), max_size=8)
    .map(lambda rows: ("Mã hộ,Năm,Phân loại hộ,Tỉnh\n" + "\n".join(rows)).encode("utf-8")),
}


@hyp_settings(max_examples=25, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.fixed_dictionaries({}, optional=BAD_FILES))
def test_property_a_bad_file_never_stops_the_others(bad_files):
    """Whatever lands beside it, the good register loads in full and every table that
    was read balances its rows."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw"
        raw.mkdir()
        _good_csv(raw / "good.csv", ids=("P1", "P2"))
        for name, content in bad_files.items():
            (raw / name).write_bytes(content)
        summary = ingest(raw, Path(tmp) / "out", progress=False)
        panel = pd.read_parquet(Path(tmp) / "out" / "panel.parquet")
        saved = json.loads((Path(tmp) / "out" / "ingest_summary.json").read_text())
    assert {_pseudo("P1"), _pseudo("P2")} <= set(panel["household_id"])
    assert summary.balanced and saved["ok"] == summary.ok
    good = [t for t in summary.tables if t.source_file == "good.csv"]
    assert good[0].loaded == 2


def test_streamed_csv_gives_the_same_result_in_tiny_blocks(tmp_path, monkeypatch):
    """A csv is read in blocks, twice (scan, then pieces): outputs must not depend on the
    block size, also with marks, a footer and duplicates spread over many blocks."""
    raw = tmp_path / "raw"
    raw.mkdir()
    lines = ["Mã hộ,Năm,Phân loại hộ,Tỉnh,Dân tộc thiểu số,Họ tên chủ hộ"]
    for i in range(300):  # rows 250-279 repeat rows 0-29 exactly, 280-299 change the name
        j = i % 250
        lines.append(f"S{j},2024,{'Hộ nghèo' if j % 3 else 'Hộ cận nghèo'},Hà Giang,"
                     f"{'x' if j % 4 == 0 else ''},{NAMES[j % 9] if i < 280 else NAMES[j % 9 + 1 if j % 9 < 8 else 0]}")
    lines += [",,,,,", ",,,,Hà Giang ngày 15 tháng 12 năm 2024,", ",Người lập biểu,,,CHỦ TỊCH,",
              ",,,,,", ",Lò Thị Mai,,,Hoàng Văn Thắng,"]
    (raw / "s.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    whole = ingest(raw, tmp_path / "whole", progress=False)
    monkeypatch.setattr(ingest_module.reading, "CSV_BLOCK_BYTES", 300)
    monkeypatch.setattr(ingest_module.reading, "CHUNK_ROWS", 7)
    monkeypatch.setattr(ingest_module.register, "WRITE_BATCH_ROWS", 1 << 20)
    pieces = ingest(raw, tmp_path / "pieces", progress=False)
    assert whole.tables[0].footer_rows == pieces.tables[0].footer_rows == 3
    assert whole.balanced and pieces.balanced
    assert whole.tables[0].duplicates_dropped > 0 and whole.tables[0].quarantined > 0
    assert _hashes(tmp_path / "whole") == _hashes(tmp_path / "pieces")
    panel = pd.read_parquet(tmp_path / "whole" / "panel.parquet")
    assert set(panel["ethnic_minority"]) == {True, False}  # x-marked column: blank = no


# --- issue 11 §2: incremental quarters -----------------------------------------------
def _quarter_csv(path: Path, quarter: str, rows: list[tuple[str, str]]) -> None:
    lines = ["Mã hộ,Kỳ,Phân loại hộ,Tỉnh,Họ tên chủ hộ"]
    lines += [f"{hh},{quarter},{status},Hà Giang,{NAMES[int(hh[1:]) % 9]}" for hh, status in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_incremental_reads_only_new_or_changed_files_and_equals_a_full_ingest(
        tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    raw.mkdir()
    _quarter_csv(raw / "q1.csv", "2024Q1", [(f"H{i}", "Hộ nghèo") for i in range(30)])
    _quarter_csv(raw / "q2.csv", "2024Q2", [(f"H{i}", "Hộ cận nghèo") for i in range(30)])
    (raw / "ho_tro.csv").write_text("Mã hộ,Chương trình,Kỳ bắt đầu\nH1,Tín dụng,2024Q1\n",
                                    encoding="utf-8")
    out = tmp_path / "out"
    first = ingest(raw, out, progress=False)
    assert first.ok and not first.reused_files
    assert set(first.file_hashes) == {"q1.csv", "q2.csv", "ho_tro.csv"}

    # a new quarter arrives: one exact copy of a q1 row (another file), one row that
    # clashes with q2 (same household and period, other status)
    _quarter_csv(raw / "q3.csv", "2024Q3", [(f"H{i}", "Hộ nghèo") for i in range(30)])
    with open(raw / "q3.csv", "a", encoding="utf-8") as handle:
        handle.write(f"H0,2024Q1,Hộ nghèo,Hà Giang,{NAMES[0]}\n")
        handle.write(f"H1,2024Q2,Hộ nghèo,Hà Giang,{NAMES[1]}\n")
    read = []
    real_read = ingest_module.run.read_tables
    monkeypatch.setattr(ingest_module.run, "read_tables",
                        lambda path, root: read.append(path.name) or real_read(path, root))
    again = ingest(raw, out, progress=False)
    assert read == ["q3.csv"] and sorted(again.reused_files) == ["ho_tro.csv", "q1.csv", "q2.csv"]
    assert "unchanged since the last run" in str(again)
    full = ingest(raw, tmp_path / "full", progress=False)
    assert _hashes(out) == _hashes(tmp_path / "full")
    q3 = next(t for t in again.tables if t.source_file == "q3.csv")
    q2 = next(t for t in again.tables if t.source_file == "q2.csv")
    assert (q3.duplicates_dropped, q3.quarantined, q2.quarantined) == (1, 1, 1)
    assert again.balanced and full.balanced

    # a changed file is read again; a removed file's rows leave the panel
    _quarter_csv(raw / "q1.csv", "2024Q1", [(f"H{i}", "Hộ nghèo") for i in range(20)])
    (raw / "q2.csv").unlink()
    read.clear()
    third = ingest(raw, out, progress=False)
    assert read == ["q1.csv"] and sorted(third.reused_files) == ["ho_tro.csv", "q3.csv"]
    fresh = ingest(raw, tmp_path / "fresh", progress=False)
    assert _hashes(out) == _hashes(tmp_path / "fresh")
    panel = pd.read_parquet(out / "panel.parquet")
    # q1 (20) + q3's quarter (30) + q3's 2024Q2 row, which no longer clashes with q2
    assert panel["period"].value_counts().to_dict() == {"2024Q3": 30, "2024Q1": 20, "2024Q2": 1}


def test_incremental_rehashes_only_files_written_since_the_last_run(tmp_path, monkeypatch):
    """A file not written since the last run keeps the sha256 recorded then: it is not
    read again to be hashed (the national register's 42 GB took about a minute of each
    added quarter). A file written since is hashed and read again, even with its size and
    modification time put back as they were."""
    raw = tmp_path / "raw"
    raw.mkdir()
    _quarter_csv(raw / "q1.csv", "2024Q1", [(f"H{i}", "Hộ nghèo") for i in range(30)])
    _quarter_csv(raw / "q2.csv", "2024Q2", [(f"H{i}", "Hộ cận nghèo") for i in range(30)])
    out = tmp_path / "out"
    first = ingest(raw, out, progress=False)
    hashed, read = [], []
    real_hash, real_read = ingest_module.run._file_sha256, ingest_module.run.read_tables
    monkeypatch.setattr(ingest_module.run, "_file_sha256",
                        lambda path: hashed.append(path.name) or real_hash(path))
    monkeypatch.setattr(ingest_module.run, "read_tables",
                        lambda path, root: read.append(path.name) or real_read(path, root))
    again = ingest(raw, out, progress=False)
    assert hashed == [] and read == [] and sorted(again.reused_files) == ["q1.csv", "q2.csv"]
    assert again.file_hashes == first.file_hashes

    # q1 rewritten in place: household H7 becomes X7 (same size), modification time put back
    path = raw / "q1.csv"
    before = path.stat()
    path.write_text(path.read_text(encoding="utf-8").replace("\nH7,", "\nX7,", 1),
                    encoding="utf-8")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    third = ingest(raw, out, progress=False)
    assert hashed == ["q1.csv"] and read == ["q1.csv"] and third.reused_files == ["q2.csv"]
    assert third.file_hashes["q1.csv"] != first.file_hashes["q1.csv"]
    panel = pd.read_parquet(out / "panel.parquet")
    assert set(panel.loc[panel["period"] == "2024Q1", "household_id"]) == \
        {_pseudo(f"H{i}") for i in range(30) if i != 7} | {_pseudo("X7")}
    fresh = ingest(raw, tmp_path / "fresh", progress=False)
    assert _hashes(out) == _hashes(tmp_path / "fresh")


def test_incremental_with_a_cached_part_shared_by_two_files(tmp_path):
    """Two workbooks with the same columns are checked together into one cached part;
    when one of them changes, the other's rows come from that shared part (filtered by
    file) and the result is still the bytes of a full ingest. The parts of unchanged
    files alone are read whole."""
    raw = tmp_path / "raw"
    raw.mkdir()

    def workbook(path: Path, quarter: str, ids: range, status: str) -> None:
        pd.DataFrame({"Mã hộ": [f"W{i}" for i in ids], "Kỳ": quarter, "Phân loại hộ": status,
                      "Tỉnh": "Hà Giang"}).to_excel(path, index=False)

    workbook(raw / "a.xlsx", "2024Q1", range(20), "Hộ nghèo")
    workbook(raw / "b.xlsx", "2024Q2", range(20), "Hộ cận nghèo")
    out = tmp_path / "out"
    assert ingest(raw, out, progress=False).ok
    manifest = json.loads((out / ".ingest-cache" / "manifest.json").read_text(encoding="utf-8"))
    assert ["a.xlsx", "b.xlsx"] in manifest["parts"]["register"].values()  # one shared part
    workbook(raw / "b.xlsx", "2024Q2", range(10, 30), "Hộ cận nghèo")
    again = ingest(raw, out, progress=False)
    assert again.reused_files == ["a.xlsx"]
    fresh = ingest(raw, tmp_path / "fresh", progress=False)
    assert _hashes(out) == _hashes(tmp_path / "fresh")
    panel = pd.read_parquet(out / "panel.parquet")
    assert panel["period"].value_counts().to_dict() == {"2024Q1": 20, "2024Q2": 20}


def test_incremental_cache_is_dropped_when_the_key_changes(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    raw.mkdir()
    _good_csv(raw / "a.csv")
    out = tmp_path / "out"
    ingest(raw, out, progress=False)
    monkeypatch.setenv("POVDYN_PSEUDONYM_KEY", "another key, 16+ bytes")
    again = ingest(raw, out, progress=False)
    assert not again.reused_files
    assert set(pd.read_parquet(out / "panel.parquet")["household_id"]) == \
        {_pseudo("G1", "another key, 16+ bytes"), _pseudo("G2", "another key, 16+ bytes")}


# --- issue 11 §1: csv registers checked in the engine --------------------------------
def _messy_register_lines() -> list[str]:
    """A csv register with every kind of cell check_rows reads: Vietnamese and English
    spellings, exits and removals, NFD text, ✓ marks in an x-marked column, other digit
    scripts, every number format; one bad cell in every fifth row (each column in turn),
    placeholder and short ids, exact copies, copies differing only in dropped
    identifiers, formula-like text, blank lines and a signature footer."""
    header = ("STT,Mã hộ,Kỳ,Phân loại hộ,Lý do,Tỉnh,Huyện,Xã,Khu vực,Dân tộc thiểu số,"
              "Người có công,Số nhân khẩu,Thu nhập bình quân,Trọng số,Việc làm,Họ tên chủ hộ,"
              "Số CCCD,Ghi chú")
    nfd = functools.partial(unicodedata.normalize, "NFD")
    good = {  # column position -> spellings that load
        1: ["H{}", " H{} ", "h-{}", "{}"],
        2: ["2024Q1", "Quý 2/2024", "Q3/2024", "Quý IV năm 2024", "quý ٣/2024"],
        3: ["Hộ nghèo", "hộ cận nghèo", "Không nghèo", "Near-poor", "POOR", nfd("Hộ nghèo")],
        4: ["", "", "", "", "Chết", "Thoát nghèo", "chuyen di", "Tách hộ"],
        5: ["Hà Giang", "tỉnh Lai Châu", nfd("Điện Biên"), "ha giang", "Cà Mau"],
        6: ["Huyện Thới Bình", "", "Quận 3"],
        7: ["Xã Thới Bình", "Phường 12", nfd("Xã Tân Lập"), "", "Xã A"],
        8: ["Thành thị", "nông thôn", "", "urban", "Rural"],
        9: ["x", "", "✓", "", "☑", "", "X", ""],
        10: ["Có", "Không", "", "1", "0", "yes", "No"],
        11: ["4", "٣", "2", "", "5", "10"],
        12: ["1.500.000", "1,5 triệu", nfd("1,5 triệu"), "2000000", "", "1.500.000 đ", "0",
             "750.5"],
        13: ["1", "", "1,5", "2", "1.25"],
        14: ["Có", "Không", "", "x", "0"],
        17: ["=HYPERLINK(\"http://x\")", "+84 912", "@cmd", "ghi chú", "", "-"],
    }
    bad = {1: ["", "NA", "-"], 2: ["", "2024Q5", "năm ngoái"], 3: ["", "Nghèo lắm"],
           4: ["mất tích"], 5: ["Atlantis", ""], 8: ["trên núi"], 9: ["có lẽ"],
           10: ["có lẽ"], 11: ["0", "101", "2.5", "năm"], 12: ["-5", "khoảng 1 triệu"],
           13: ["0", "-1", "abc"], 14: ["?"]}
    lines = [header]
    bad_columns = sorted(bad)
    for i in range(600):
        cells = [str(i + 1)] + [""] * 17
        for col, spellings in good.items():
            cells[col] = spellings[(i // (col + 1)) % len(spellings)]
        cells[1] = cells[1].format(i % 150)
        cells[15], cells[16] = NAMES[i % 9], f"0012{i % 150:08d}"
        if i % 5 == 0:
            col = bad_columns[(i // 5) % len(bad_columns)]
            cells[col] = bad[col][(i // (5 * len(bad_columns))) % len(bad[col])]
        lines.append(",".join(f'"{c}"' if "," in c or '"' in c else c for c in cells))
        if i % 50 == 1:
            lines.append(lines[-1])  # an exact copy
            lines.append(lines[-1].replace(NAMES[i % 9], NAMES[(i + 1) % 9]))  # ids differ
        if i % 90 == 0:
            lines.append(",," + "," * 15)  # a blank line
    lines += [",,,,,,,,,,,,,,,,,", ",Người lập biểu,,,,,,,,,,,,,,,,",
              ",,,,,,,,,Lò Thị Mai,,,,,,,,"]
    return lines


def test_engine_checks_give_the_pandas_path_bytes(tmp_path, monkeypatch):
    """Checking a csv register in DuckDB (coded cells parsed once per distinct value,
    HMAC in SQL, only flagged rows through check_batch) must not change one byte of any
    output against check_rows in pandas, the reference, on a file with every kind of
    cell; and the engine path must really have been taken."""
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "register.csv").write_text("\n".join(_messy_register_lines()) + "\n",
                                      encoding="utf-8")
    calls = []
    engine = ingest_module.run._engine_check_register
    monkeypatch.setattr(ingest_module.run, "_engine_check_register",
                        lambda *a, **k: calls.append(1) or engine(*a, **k))
    fast = ingest(raw, tmp_path / "engine", progress=False)
    assert calls, "the csv register did not take the engine path"
    monkeypatch.setattr(ingest_module.engine_checks, "ENGINE_CHECKS", False)
    reference = ingest(raw, tmp_path / "pandas", progress=False)
    assert len(calls) == 1
    table = fast.tables[0]
    assert table.quarantined > 50 and table.loaded > 50 and table.duplicates_dropped > 0
    assert table.blank_rows > 0 and table.footer_rows > 0
    assert fast.balanced and reference.balanced
    assert _hashes(tmp_path / "engine") == _hashes(tmp_path / "pandas")
    quarantine = (tmp_path / "engine" / "quarantine.csv").read_text(encoding="utf-8-sig")
    assert "identifiers (name, ID card, phone or address) differ" in quarantine
    assert "'=HYPERLINK" not in quarantine  # the note column is not a register column


# --- issue 11 §1: one pass over a csv register, and the way back when it cannot finish --
@pytest.mark.parametrize("case", ["one_pass", "mark_column_later", "mark_guess_contradicted",
                                  "many_distinct_communes", "malformed_line_late",
                                  "cp1258_after_an_ascii_head"])
def test_one_pass_csv_or_its_exact_rereading_gives_the_pandas_path_bytes(
        tmp_path, monkeypatch, case):
    """A csv register is read once (the footer found in rows held back at the end,
    lookups grown as cells come, "x"-marked columns guessed from the first rows). When
    that pass cannot finish, or the whole file contradicts its guess, the file is read
    again the exact way. Either way every output equals the pandas path's, byte for
    byte; and the one pass is really taken when nothing stops it."""
    english = case == "cp1258_after_an_ascii_head"
    lines = ["household_id,period,status,province,commune,ethnic_minority,meritorious"
             if english else "Mã hộ,Năm,Phân loại hộ,Tỉnh,Xã,Dân tộc thiểu số,Người có công"]
    for i in range(600):
        ethnic = "x" if i % 3 == 0 and (case != "mark_column_later" or i >= 400) else ""
        merit = "Có" if case == "mark_guess_contradicted" and i == 500 else \
            ("x" if i % 4 == 0 else "")
        commune = f"Xã {i % 40}" if case == "many_distinct_communes" else \
            ("Xa Na San" if english else "Xã Nà Sán")
        status = "poor" if english and i < 300 else "Hộ nghèo"  # ASCII only in the head
        province = "Ha Giang" if english else "Hà Giang"
        lines.append(f"H{i % 450},{2023 + i // 450},{status},{province},{commune},{ethnic},"
                     f"{merit}")
    if case == "malformed_line_late":
        lines.insert(480, "H7,2024,Hộ nghèo")  # too few fields
    text = "\n".join(lines) + "\n"
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "register.csv").write_bytes(_cp1258(text) if english else text.encode("utf-8"))
    monkeypatch.setattr(ingest_module.reading, "CSV_BLOCK_BYTES", 300)  # many batches
    monkeypatch.setattr(ingest_module.reading, "ENCODING_BLOCK", 4096)  # a 256-byte head
    if case == "many_distinct_communes":
        monkeypatch.setattr(ingest_module.engine_checks, "LOOKUP_UNIQUES", 10)
    exact_reads = []
    read_csv = ingest_module.reading._read_csv
    monkeypatch.setattr(ingest_module.reading, "_read_csv", lambda path, rel, lazy=True: (
        exact_reads.append(rel) if not lazy else None) or read_csv(path, rel, lazy))
    fast = ingest(raw, tmp_path / "engine", progress=False)
    assert exact_reads == ([] if case == "one_pass" else ["register.csv"])
    monkeypatch.setattr(ingest_module.engine_checks, "ENGINE_CHECKS", False)
    reference = ingest(raw, tmp_path / "pandas", progress=False)
    assert fast.balanced and reference.balanced and fast.panel_rows > 500
    assert _hashes(tmp_path / "engine") == _hashes(tmp_path / "pandas")
    panel = pd.read_parquet(tmp_path / "engine" / "panel.parquet")
    assert set(panel["ethnic_minority"]) == {True, False}  # marks: blank means "no"


@hyp_settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=12)
                | st.lists(st.sampled_from(["Nguyễn", "Văn", "ệ", "e\u0302\u0323", "\u1100",
                                            "\u1161", "\u212b", "A\u030a", " ", "x"]), max_size=6)
                .map("".join), min_size=1, max_size=8))
def test_identifiers_normalised_only_where_nfc_changes_them(cells):
    """Identifier cells are NFC-normalised only when they hold a character that can
    change under NFC (a quick check): the result must equal normalising every cell."""
    import pyarrow.compute as pc

    from povdyn.ingest.checking import _normalised_identifier

    arr = pa.array(cells, pa.string())
    every = pc.utf8_trim_whitespace(pc.utf8_normalize(arr, "NFC")).to_pylist()
    assert _normalised_identifier(arr).to_pylist() == every
    assert every == [unicodedata.normalize("NFC", c).strip() for c in cells] or any(
        c != c.strip() for c in cells)  # Arrow and Python may differ on odd white space


@pytest.mark.parametrize("header,missing", [("Mã hộ,Năm,Phân loại hộ", "province"),
                                            ("Mã hộ,Năm,Tỉnh", "status")])
def test_csv_register_without_a_required_column_names_it(tmp_path, header, missing):
    """A csv register without its province (or status) column used to stop the whole
    ingest with KeyError in the engine path; it must be that file's named error."""
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "r.csv").write_text(header + "\nA1,2024,Hộ nghèo\n", encoding="utf-8")
    _good_csv(raw / "ok.csv")
    summary = ingest(raw, tmp_path / "out", progress=False)
    assert not summary.ok and summary.panel_rows == 2  # the other file still loads
    assert any("r.csv" in e and missing in e for e in summary.errors)


# --- issue 11 §1: a large csv register checked in byte ranges on every core -----------
def _ranged_register(prefix: str, change=None) -> str:
    """The messy register with this file's own household ids (a prefix before ids with a
    digit: placeholders stay placeholders), an x-marked column that is marks-only over
    the whole file, and `change(row index, cells)` applied to its data rows."""
    rows = list(csv.reader(_messy_register_lines()))
    for i, cells in enumerate(rows[1:-3]):
        if any(ch.isdigit() for ch in cells[1]):
            cells[1] = prefix + cells[1]
        if cells[9] == "có lẽ":  # the one non-mark of the x-marked column
            cells[9] = ""
        if change is not None:
            change(i, cells)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def test_byte_ranges_on_worker_processes_give_the_pandas_path_bytes(tmp_path, monkeypatch):
    """A large csv register is cut at line ends into byte ranges, each checked by the one
    pass in a worker process of its own (row numbers from the lines before it, the footer
    in the last range, the x-marked columns decided for the whole file). Every output
    equals the pandas path's, byte for byte. A file the ranges cannot read exactly (a
    quoted line end, a late cell contradicting the first rows' x-mark guess, a malformed
    line in a later range) is read again the exact way, with the same bytes."""
    def quoted_line_end(i, cells):
        if i == 450:
            cells[17] = "ghi chú\ndòng hai"

    def mark_contradicted(i, cells):
        if i == 520:
            cells[9] = "Có"

    raw = tmp_path / "raw"
    raw.mkdir()
    files = {"a_ranges.csv": _ranged_register("A"),
             "b_quoted_line_end.csv": _ranged_register("B", quoted_line_end),
             "c_mark_contradicted.csv": _ranged_register("C", mark_contradicted),
             "d_malformed_late.csv": "\n".join(
                 (lines := _ranged_register("D").split("\n"))[:500] + ["D7,2024Q1"]
                 + lines[500:])}
    for name, text in files.items():
        (raw / name).write_text(text, encoding="utf-8")
    # a byte that is not UTF-8 in a later range: pyarrow no longer checks each cell
    # there (_ByteRange checks the bytes), and the file must still go to the exact way
    # (in the note column, which no check reads: only the byte check can see it)
    def marked_note(i, cells):
        if i == 250:  # a range before the last (whose held-back rows Python reads)
            cells[17] = "BAD-BYTE"

    (raw / "e_bad_byte_late.csv").write_bytes(
        _ranged_register("E", marked_note).encode("utf-8").replace(b"BAD-BYTE", b"gh\xffi"))
    files["e_bad_byte_late.csv"] = None
    monkeypatch.setattr(ingest_module.parallel, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(ingest_module.parallel, "RANGE_BYTES", 12_000)  # ~5 ranges a file
    monkeypatch.setattr(ingest_module.parallel, "_SCAN_BYTES", 1000)
    monkeypatch.setattr(ingest_module.reading, "CSV_BLOCK_BYTES", 2000)  # given to workers
    monkeypatch.setenv("POVDYN_INGEST_WORKERS", "2")
    checked = {}
    check = ingest_module.parallel._check_in_ranges
    monkeypatch.setattr(ingest_module.parallel, "_check_in_ranges", lambda raw_, *a: (
        checked.__setitem__(raw_.source_file, check(raw_, *a)) or checked[raw_.source_file]))
    exact_reads = []
    read_csv = ingest_module.reading._read_csv
    monkeypatch.setattr(ingest_module.reading, "_read_csv", lambda path, rel, lazy=True: (
        exact_reads.append(rel) if not lazy else None) or read_csv(path, rel, lazy))
    ranged = ingest(raw, tmp_path / "ranges", progress=False)
    assert sorted(checked) == sorted(files)
    assert checked["a_ranges.csv"].rows_in > 600 and checked["a_ranges.csv"].footer_rows == 2
    assert {f for f, report in checked.items() if report is None} == set(exact_reads) == {
        "b_quoted_line_end.csv", "c_mark_contradicted.csv", "d_malformed_late.csv",
        "e_bad_byte_late.csv"}
    monkeypatch.setattr(ingest_module.engine_checks, "ENGINE_CHECKS", False)
    reference = ingest(raw, tmp_path / "pandas", progress=False)
    assert ranged.balanced and reference.balanced and ranged.panel_rows > 1000
    assert _hashes(tmp_path / "ranges") == _hashes(tmp_path / "pandas")
    quarantine = pd.read_csv(tmp_path / "ranges" / "quarantine.csv", dtype=str)
    assert set(quarantine["source_file"]) == set(files)
    assert (quarantine["row"].astype(int) > 500).any()  # row numbers of the later ranges


def test_byte_ranges_cut_at_line_ends_and_keep_the_footer_whole(tmp_path, monkeypatch):
    """The ranges cover the data exactly once, start after a line end, number their
    first row from the lines before them, and the last one is long enough for the
    footer search."""
    from povdyn.ingest.parallel import _cut, _data_start

    monkeypatch.setattr(ingest_module.parallel, "_SCAN_BYTES", 97)
    lines = ["TITLE", "Mã hộ,Năm", "\"a\nb\",c"] + [f"H{i},{2020 + i % 5}" for i in range(700)]
    path = tmp_path / "r.csv"
    path.write_bytes("\n".join(lines).encode("utf-8"))  # no line end after the last line
    assert _data_start(path, 2, ",") == len("TITLE\nMã hộ,Năm\n".encode("utf-8"))
    assert _data_start(path, 3, ",") is None  # the third record spans two lines
    start = _data_start(path, 2, ",")
    ranges = list(_cut(path, start, 3, 500))
    assert ranges[0].start == start and ranges[-1].end == path.stat().st_size
    assert all(a.end == b.start for a, b in zip(ranges, ranges[1:]))
    data = path.read_bytes()
    assert all(data[r.start - 1:r.start] == b"\n" for r in ranges)
    assert [r.first_row for r in ranges] == [3 + sum(r.lines for r in ranges[:i])
                                              for i in range(len(ranges))]
    assert sum(r.lines for r in ranges) == data[start:].count(b"\n")
    assert ranges[-1].last and not any(r.last for r in ranges[:-1])
    assert ranges[-1].lines > ingest_module.reading.FOOTER_SEARCH_ROWS and len(ranges) > 5


@pytest.mark.parametrize("read_size", [1, 2, 5, 64, 1 << 20])
def test_a_byte_range_checks_utf8_across_its_reads(tmp_path, read_size):
    """_ByteRange checks the bytes it hands to pyarrow (which then skips its check of
    each cell): a character cut between two reads is whole UTF-8, a bad byte anywhere,
    or a character cut off at the end of the range, is refused."""
    from povdyn.ingest.parallel import _ByteRange

    text = "".join(f"H{i},Hà Nội,Lò Thị Mai {i} ✓\n" for i in range(40)).encode("utf-8")

    def read_all(data: bytes, start: int = 0, end: int | None = None) -> bytes:
        path = tmp_path / "r.csv"
        path.write_bytes(data)
        reader = _ByteRange(path, start, len(data) if end is None else end)
        chunks = []
        while chunk := reader.read(read_size):
            chunks.append(chunk)
        reader.close()
        return b"".join(chunks)

    assert read_all(text) == text
    start, end = text.index(b"\n") + 1, text.index(b"\n", 500) + 1
    assert read_all(text, start, end) == text[start:end]
    no_end = text.rstrip(b"\n")
    assert read_all(no_end) == no_end
    bad = text[:300] + b"\xff" + text[300:]
    with pytest.raises(UnicodeDecodeError):
        read_all(bad)
    cut_off = text.index("ộ".encode("utf-8")) + 1  # inside the character
    with pytest.raises(UnicodeDecodeError):
        read_all(text, 0, cut_off)
    with pytest.raises(UnicodeDecodeError):
        read_all(text[:cut_off])



def test_a_byte_range_drops_what_it_has_read_from_the_page_cache(tmp_path, monkeypatch):
    """Each byte of a range is read once, so the worker tells the kernel to drop the
    pages it has read (else pages read twice, by the parent's cut and the worker, stay
    as the most used and push out the ranges cut for the workers, which on the 27M csv
    then read half their bytes from the disk again). Every byte of the range, and none
    outside it, is advised away; an OS that refuses the advice changes nothing."""
    import os

    from povdyn.ingest import parallel

    data = b"".join(b"H%05d,Ha Noi,2024\n" % i for i in range(4000))
    path = tmp_path / "r.csv"
    path.write_bytes(data)
    start, end = data.index(b"\n", 1000) + 1, data.index(b"\n", 50_000) + 1
    advised = []
    monkeypatch.setattr(os, "posix_fadvise",
                        lambda fd, offset, length, advice: advised.append((offset, length, advice)),
                        raising=False)
    monkeypatch.setattr(os, "POSIX_FADV_DONTNEED", 4, raising=False)
    monkeypatch.setattr(parallel, "DROP_READ_BYTES", 10_000)
    reader = parallel._ByteRange(path, start, end)
    got = b"".join(iter(lambda: reader.read(4096), b""))
    reader.close()
    assert got == data[start:end]
    assert len(advised) > 1 and {a for _, _, a in advised} == {4}
    covered = [(o, o + n) for o, n, _ in advised]
    assert covered[0][0] == start and covered[-1][1] == end
    assert all(a[1] == b[0] for a, b in zip(covered, covered[1:]))  # no gap, no overlap

    def refuse(*_args):
        raise OSError("not supported")

    monkeypatch.setattr(os, "posix_fadvise", refuse)
    reader = parallel._ByteRange(path, start, end)
    assert b"".join(iter(lambda: reader.read(4096), b"")) == data[start:end]
    reader.close()

def test_a_byte_range_paces_pyarrows_reading_to_the_batches_taken(tmp_path, monkeypatch):
    """pyarrow's csv reader queues up to 32 blocks ahead in a thread of its own: in an
    ingest worker ~240 MB while it checks one block. A paced range lets it read only
    READ_AHEAD_BLOCKS blocks beyond the batches taken. Every row is read once; a batch
    that needs more blocks than the lead allows still comes (one block more each
    STALL_SECONDS: here a line across two blocks, with a lead of one), and a reader
    left early does not hang."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from povdyn.ingest import parallel

    block = 1 << 16
    rows = [b"H%06d,Ha Noi,%s\n" % (i, b"x" * (200 if i != 2000 else block * 3 // 4))
            for i in range(6000)]
    data = b"".join(rows)
    path = tmp_path / "r.csv"
    path.write_bytes(data)
    monkeypatch.setattr(parallel, "STALL_SECONDS", 0.02)

    def open_paced(paced=True):
        byte_range = parallel._ByteRange(path, 0, len(data), paced=paced)
        reader = pacsv.open_csv(
            byte_range, read_options=pacsv.ReadOptions(column_names=["id", "p", "t"],
                                                       block_size=block),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in ["id", "p", "t"]}))
        return byte_range, byte_range.batches(reader)

    def ahead_while_taking(paced):
        byte_range, batches = open_paced(paced)
        ahead, ids = [], []
        for batch in batches:
            time.sleep(0.002)  # the worker's checks: pyarrow's thread may run ahead
            ahead.append(byte_range._reads - byte_range._taken)
            ids += batch.column(0).to_pylist()
        byte_range.close()
        return ahead, ids

    import time

    ahead, ids = ahead_while_taking(paced=True)
    assert ids == [f"H{i:06d}" for i in range(6000)]
    assert max(ahead) <= parallel.READ_AHEAD_BLOCKS
    unpaced, unpaced_ids = ahead_while_taking(paced=False)
    assert unpaced_ids == ids and max(unpaced) > parallel.READ_AHEAD_BLOCKS + 1
    monkeypatch.setattr(parallel, "READ_AHEAD_BLOCKS", 1)  # the long line needs two
    started = time.monotonic()
    assert ahead_while_taking(paced=True)[1] == ids
    assert time.monotonic() - started < 60 * parallel.STALL_SECONDS

    byte_range, batches = open_paced()
    next(batches)
    batches.close()  # the caller stops early: pyarrow's thread must not wait for it
    started = time.monotonic()
    byte_range.read(block)
    assert time.monotonic() - started < 0.01
    byte_range.close()


def test_footer_text_under_an_x_marked_column_does_not_unmark_it(tmp_path, monkeypatch):
    """Found when comparing the byte ranges with the pandas path: a signer's name in the
    footer, under an "x"-marked column, made the streamed csv's pandas path decide that
    the column was not x-marked, so its blanks became unknown when the file was checked
    together with another file of the same columns (the footer is not data: workbooks
    and the engine path already left it out)."""
    header = "Mã hộ,Năm,Phân loại hộ,Tỉnh,Dân tộc thiểu số"
    marked = [header] + [f"H{i},2024,Hộ nghèo,Hà Giang,{'x' if i % 2 else ''}"
                         for i in range(40)] + [",Người lập biểu,,,", ",,,,Lò Thị Mai"]
    spelled = [header] + [f"G{i},2024,Hộ nghèo,Hà Giang,{'Có' if i % 2 else ''}"
                          for i in range(10)]
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "marked.csv").write_text("\n".join(marked) + "\n", encoding="utf-8")
    (raw / "spelled.csv").write_text("\n".join(spelled) + "\n", encoding="utf-8")
    monkeypatch.setattr(ingest_module.engine_checks, "ENGINE_CHECKS", False)
    summary = ingest(raw, tmp_path / "out", progress=False)
    assert summary.tables[0].footer_rows == 2
    panel = pd.read_parquet(tmp_path / "out" / "panel.parquet")
    marked_rows = panel[panel["household_id"].isin({_pseudo(f"H{i}") for i in range(40)})]
    assert marked_rows["ethnic_minority"].value_counts(dropna=False).to_dict() == {
        True: 20, False: 20}


@pytest.mark.parametrize("depth", [1, 2])
def test_items_made_ahead_keep_order_errors_and_stop_early(depth):
    """csv blocks (engine_checks), panel.parquet's sorted batches (register) and the
    households' id batches are made in a thread while the caller works on the previous
    one (ahead.made_ahead): the order must be the producer's, an error in the thread
    must reach the caller after the items before it (not end a file short, and with its
    own type: the one pass tells a bad byte from other failures by it), and a caller
    that stops midway must stop the thread rather than hang on it."""
    import threading

    from povdyn.ingest.ahead import made_ahead

    made_in = []

    def numbers(n):
        for i in range(n):
            made_in.append(threading.current_thread().name)
            yield i

    assert list(made_ahead(numbers(50), depth=depth, name="panel-batches")) == list(range(50))
    assert set(made_in) == {"panel-batches"}  # made in the thread, not the caller's

    def broken():
        yield 1
        yield 2
        raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad byte")

    got = []
    with pytest.raises(UnicodeDecodeError, match="bad byte"):
        for item in made_ahead(broken(), depth=depth):
            got.append(item)
    assert got == [1, 2]

    before = threading.active_count()
    endless = made_ahead(iter(int, 1), depth=depth)  # 0, 0, 0, ... forever
    assert next(endless) == 0
    endless.close()  # the caller stopped: the thread must end
    assert threading.active_count() == before


def test_support_programmes_spelled_as_offices_write_them_load_as_codes(tmp_path, monkeypatch):
    """Found when timing the ingest workers: since ingest became a package, the shipped
    programme table (lib/povdyn/data/programs.csv) was looked for beside the ingest
    modules, never found, and every programme text was accepted as it was written. A
    support list naming its programmes in Vietnamese then loaded "Đào tạo nghề" instead
    of vocational_training (the effectiveness notebook groups by code), and a
    programme nobody runs was not quarantined. The real table here (this module's other
    tests take programme names as free text)."""
    from povdyn.ingest.checking import _load_programs

    monkeypatch.setattr(ingest_module.run, "_load_programs", _load_programs)
    programs = _load_programs()
    assert programs is not None and "vocational_training" in programs.values()
    raw = tmp_path / "raw"
    raw.mkdir()
    _good_csv(raw / "lists.csv")
    (raw / "ho_tro.csv").write_text(
        "Mã hộ,Chương trình,Kỳ bắt đầu\n"
        "H1,Đào tạo nghề,2023\n"
        "H2,Hỗ trợ nhà ở,2023\n"
        "H3,credit,2024\n"
        "H4,Oyster farming model,2024\n"
        "H5,Phép thuật,2024\n", encoding="utf-8")
    out = tmp_path / "out"
    summary = ingest(raw, out, progress=False)
    assert summary.ok and summary.balanced, str(summary)
    support = pd.read_parquet(out / "support.parquet")
    assert sorted(support["program"]) == ["credit", "housing", "oyster_farming",
                                          "vocational_training"]
    q = pd.read_csv(out / "quarantine.csv", dtype=str, keep_default_na=False)
    q = q[q["source_file"] == "ho_tro.csv"]
    assert q["row"].tolist() == ["6"] and "unknown programme" in q["reason"].item()


def test_a_missing_programme_table_is_an_error_not_any_programme_text(tmp_path, monkeypatch):
    """The silent "accept any programme text" when programs.csv was not found is what hid
    the wrong path above: a missing shipped table now stops with a clear error."""
    from povdyn import schema
    from povdyn.errors import PovdynError
    from povdyn.ingest import checking

    monkeypatch.setattr(schema, "PROGRAMS_CSV", tmp_path / "programs.csv")
    with pytest.raises(PovdynError, match="programme table .* is missing"):
        checking._load_programs()
