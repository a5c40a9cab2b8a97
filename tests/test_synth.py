"""The synthetic national register (issue 3 §4): calibration against domain.md's national
figures, regional ordering and relapse share (flows counted here with plain pandas, not
povdyn.dynamics), determinism, removal rows, selection into support on observables, the
planted truth (the null programme's realised ATT is zero, the effective one's is large),
and the list / xlsx / parquet outputs."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from povdyn import synth
from povdyn.standards import INDICATORS_2022

N = 20_000


@pytest.fixture(scope="module")
def reg():
    return synth.generate(households=N, seed=3, frequency="quarter")


def q4(panel):
    """Annual reviews: Q4 rows with a status, period -> year."""
    d = panel[panel.period.str.endswith("Q4") & panel.status.notna()].copy()
    d["year"] = d.period.str[:4].astype(int)
    return d


def shares(panel, by=None):
    d = q4(panel)
    keys = ["year"] + ([by] if by else [])
    return d.groupby(keys).status.value_counts(normalize=True).unstack(fill_value=0)


def test_national_calibration(reg):
    s = shares(reg.panel)
    # targets (domain.md): poor 4.03, 2.93, 1.93, ~1.3 %; near-poor 3.49, 2.78, 2.13, ~2.2-2.5 %
    # tolerances cover sampling noise at 20,000 households (SE of 4% is ~0.14 points)
    poor = {2022: (3.4, 4.7), 2023: (2.4, 3.5), 2024: (1.5, 2.4), 2025: (0.9, 1.8)}
    near = {2022: (2.9, 4.1), 2023: (2.2, 3.4), 2024: (1.6, 2.7), 2025: (1.6, 2.9)}
    for y, (lo, hi) in poor.items():
        assert lo <= 100 * s.loc[y, "poor"] <= hi, (y, s.loc[y, "poor"])
    for y, (lo, hi) in near.items():
        assert lo <= 100 * s.loc[y, "near_poor"] <= hi, (y, s.loc[y, "near_poor"])
    assert (np.diff(s.loc[2022:2025, "poor"].to_numpy()) < 0).all()
    # 2021 is the 2016–2021 standard: far fewer poor than under the 2022 line
    assert s.loc[2021, "poor"] < s.loc[2022, "poor"]


def test_regional_ordering_and_ethnic_gap(reg):
    s = shares(reg.panel, by="region")["poor"].unstack("region")
    p = s.loc[[2022, 2023]].mean()  # two reviews pooled for stability
    assert p["Northern Midlands and Mountains"] >= 0.10  # low teens or above
    assert p["Southeast"] < 0.01
    order = ["Northern Midlands and Mountains", "Central Highlands", "North Central and Central Coast",
             "Mekong River Delta", "Red River Delta", "Southeast"]
    assert list(p[order].sort_values(ascending=False).index) == order
    e = shares(reg.panel, by="ethnic_minority")["poor"].unstack("ethnic_minority")
    assert (e[True] > 4 * e[False]).loc[2022:2025].all()
    d = q4(reg.panel)
    rural = d[d.area == "rural"].groupby("year").status.apply(lambda x: (x == "poor").mean())
    urban = d[d.area == "urban"].groupby("year").status.apply(lambda x: (x == "poor").mean())
    assert (rural > urban).all()


def test_relapse_share_of_exits(reg):
    d = q4(reg.panel)
    wide = d.pivot(index="household_id", columns="year", values="status")
    exits = relapsed = 0
    for t in (2023, 2024):  # exits under one standard (2022 -> 2023, 2023 -> 2024)
        ex = (wide[t - 1] == "poor") & wide[t].notna() & (wide[t] != "poor") & wide[t + 1].notna()
        exits += ex.sum()
        relapsed += (ex & (wide[t + 1] == "poor")).sum()
    assert exits > 200
    assert 0.02 <= relapsed / exits <= 0.10, (relapsed, exits)


def test_determinism():
    a = synth.generate(households=2_000, seed=11)
    b = synth.generate(households=2_000, seed=11)
    c = synth.generate(households=2_000, seed=12)
    pd.testing.assert_frame_equal(a.panel, b.panel)
    pd.testing.assert_frame_equal(a.support, b.support)
    assert a.truth == b.truth
    assert not a.panel["income_pc_month"].equals(c.panel["income_pc_month"])


def test_same_bytes_on_disk(tmp_path):
    digests = []
    for run in ("a", "b"):
        synth.write_demo(tmp_path / run, households=1_500, seed=5, progress=False)
        digests.append({f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted((tmp_path / run).iterdir())})
    assert digests[0] == digests[1]
    assert set(digests[0]) == {"register.csv", "support.csv", "adoption.csv", "truth.json", "truth_risk.parquet"}


def test_demo_writes_the_commune_adoption_register(tmp_path):
    """Issue 14 §3: the adoption register the demo writes (English headers in the full
    style, Vietnamese in the lists) is generate()'s planted adoption register of the
    same seed: never-adopters blank, a row per commune and programme."""
    truth = synth.generate(households=800, seed=4).adoption
    synth.write_demo(tmp_path / "full", households=800, seed=4, progress=False)
    synth.write_demo(tmp_path / "lists", households=800, seed=4, style="lists", progress=False)
    full = pd.read_csv(tmp_path / "full" / "adoption.csv", dtype={"adoption_year": "Int64"})
    assert list(full.columns) == ["province", "province_2025", "district", "commune", "program", "adoption_year"]
    pd.testing.assert_frame_equal(full, truth[list(full.columns)], check_dtype=False)
    lists = pd.read_csv(tmp_path / "lists" / "ap_dung_mo_hinh.csv", dtype=str, keep_default_na=False)
    assert list(lists.columns) == ["Tỉnh", "Huyện", "Xã", "Chương trình", "Năm áp dụng"]
    expected = truth["adoption_year"].astype(str).replace("<NA>", "").tolist()
    assert lists["Năm áp dụng"].tolist() == expected and lists["Xã"].tolist() == truth["commune"].tolist()
    assert (lists["Năm áp dụng"] == "").any() and set(lists["Năm áp dụng"]) - {""} <= {"2022", "2023", "2024"}


def test_panel_columns_and_geography(reg):
    p = reg.panel
    needed = ["household_id", "period", "status", "province", "province_2025", "region", "district", "commune", "area",
              "ethnic_minority", "meritorious", "household_size", "income_pc_month", *INDICATORS_2022,
              "removal_reason", "head_name", "id_card", "phone", "address"]
    assert list(p.columns) == needed
    assert p.household_id.str.fullmatch(r"HH\d{8}").all()
    assert p.id_card.str.fullmatch(r"\d{12}").all() and p.phone.str.fullmatch(r"0\d{9}").all()
    assert p.commune.str.match(r"^(Xã|Phường|Thị trấn|Đặc khu|Huyện) ").all()  # real names (test_geo)
    assert p.district.isna().eq(p.period >= "2025Q3").all()  # no district level after July 2025
    assert set(p.area) == {"urban", "rural"}
    assert p.province_2025.nunique() == 34 and p.region.notna().all()
    prov = pd.read_csv("lib/povdyn/data/provinces_2025.csv", dtype=str)
    before = p[p.period < "2025Q3"]
    after = p[p.period >= "2025Q3"]
    assert set(before.province) <= set(prov.old_province) and before.province.nunique() > 34
    assert set(after.province) <= set(prov.province_2025)
    # the old name maps to the 2025 province on every row
    m = dict(zip(prov.old_province, prov.province_2025))
    assert (before.province.map(m) == before.province_2025).all()
    # ethnic minorities concentrate in the mountains and highlands
    em = p.groupby("region").ethnic_minority.mean()
    assert em["Northern Midlands and Mountains"] > 0.4 and em["Red River Delta"] < 0.05
    # periods: 2021Q4 .. 2025Q4
    assert sorted(p.period.unique())[0] == "2021Q4" and sorted(p.period.unique())[-1] == "2025Q4"
    assert len(p.period.unique()) == 17


def test_removal_rows_well_formed(reg):
    p = reg.panel
    rem = p[p.removal_reason.notna()]
    assert rem.status.isna().all() and p[p.status.isna()].removal_reason.notna().all()
    assert set(rem.removal_reason) == {"death", "migration", "merger", "split"}
    assert rem.household_id.is_unique
    last = p.groupby("household_id").tail(1)
    assert set(rem.index) <= set(last.index)  # no rows after a removal
    # about 1-2% of households a year (4 years of removals)
    assert 0.03 <= rem.household_id.nunique() / N <= 0.09
    # splits create new households that appear later (ids beyond the original range)
    new = p[p.household_id.str[2:].astype(int) > N]
    assert new.household_id.nunique() >= 2 * (rem.removal_reason == "split").sum() * 0.5
    assert (new.groupby("household_id").period.min() > "2021Q4").all()
    # a household's first row is never its removal (quarterly and annual)
    annual = synth.generate(households=5_000, seed=3, frequency="year").panel
    for panel in (p, annual):
        first = panel.groupby("household_id").head(1)
        assert first.status.notna().all()
        assert panel.groupby("household_id").removal_reason.count().max() == 1


def test_quarterly_snapshots_move_between_reviews(reg):
    p = reg.panel[reg.panel.status.notna()].sort_values(["household_id", "period"])
    prev = p.groupby("household_id").status.shift()
    changed = p.status.ne(prev) & prev.notna()
    q = p.period.str[-1]
    # changes at the Q4 reviews dominate, ad-hoc updates happen in Q1-Q3 too
    by_q = changed.groupby(q).sum()
    assert by_q["4"] > by_q[["2", "3"]].sum() > 0
    annual = synth.generate(households=2_000, seed=11, frequency="year").panel
    quarterly = synth.generate(households=2_000, seed=11).panel
    assert set(annual.period) == {2021, 2022, 2023, 2024, 2025}
    # the annual reviews are the Q4 snapshots
    a = annual[annual.status.notna()].reset_index(drop=True)
    qq = quarterly[quarterly.period.str.endswith("Q4") & quarterly.status.notna()].reset_index(drop=True)
    assert (a.status == qq.status).all() and (a.household_id == qq.household_id).all()


def test_support_selected_on_observables(reg):
    sup = reg.support
    assert list(sup.columns) == ["household_id", "program", "start_period", "end_period", "amount_vnd"]
    codes = set(pd.read_csv("lib/povdyn/data/programs.csv").code)
    assert len(codes) >= 6 and set(sup.program) == codes
    assert (sup.end_period >= sup.start_period).all()
    starts = sup.start_period.str[:4].astype(int)
    assert set(starts) >= {2022, 2023, 2024}  # staggered
    d = q4(reg.panel).set_index(["household_id", "year"])
    base = d.loc[pd.MultiIndex.from_arrays([sup.household_id, starts - 1])]
    assert base.status.isin(["poor", "near_poor"]).all()  # selected from the lists
    # compare with everyone eligible (poor/near-poor) at the same baseline reviews
    pool = d[d.status.isin(["poor", "near_poor"]) & d.index.get_level_values("year").isin([2021, 2022, 2023])]
    pool = pool[~pool.index.get_level_values("household_id").isin(sup.household_id)]
    assert np.log(base.income_pc_month).mean() < np.log(pool.income_pc_month).mean() - 0.05
    assert base.ethnic_minority.mean() > pool.ethnic_minority.mean()
    # oyster farming only on the coast; each programme adopted in several years
    coastal = synth._COASTAL | set()
    oy = d.loc[pd.MultiIndex.from_arrays([sup.household_id, starts - 1])][sup.program.to_numpy() == "oyster_farming"]
    assert oy.province.isin(coastal).all()


def test_truth_and_counterfactual_att(reg, tmp_path):
    t = reg.truth
    progs = t["programs"]
    assert {"effective", "null", "fading", "moderate"} <= {p["kind"] for p in progs.values()}
    assert progs["garment_outsourcing"]["kind"] == "null"
    assert abs(progs["garment_outsourcing"]["att_sustained_exit"]["k2"]) < 1e-12
    assert progs["vocational_training"]["att_sustained_exit"]["k2"] > 0.15
    assert progs["vocational_training"]["n_treated"] >= 50
    oy = progs["oyster_farming"]["att_by_cohort"]
    assert oy["2022"]["k1"] > oy["2023"]["k1"] > oy["2024"]["k1"] == 0
    # the truth's "with support" outcome is what the register shows for those households
    d = q4(reg.panel)
    wide = d.pivot(index="household_id", columns="year", values="status")
    sup = reg.support[reg.support.program == "vocational_training"]
    for cohort in ("2022", "2023"):
        s = int(cohort)
        ids = sup[sup.start_period.str[:4] == cohort].household_id
        w = wide.reindex(ids)
        ok = (w[s - 1] == "poor") & w[s].notna() & w[s + 1].notna()
        sustained = ((w.loc[ok, s] != "poor") & (w.loc[ok, s + 1] != "poor")).mean()
        entry = progs["vocational_training"]["att_by_cohort"][cohort]
        assert ok.sum() == entry["n_k2"]
        assert sustained == pytest.approx(entry["sustained_exit_treated_k2"])
    # truth goes beside the data, never into it
    summary = synth.write_demo(tmp_path, households=2_000, seed=1, progress=False)
    truth = json.loads((tmp_path / "truth.json").read_text(encoding="utf-8"))
    assert "outcome_definition" in truth and "in_words" in truth and "calibration" in truth
    cols = pd.read_csv(tmp_path / "register.csv", nrows=5).columns
    assert not any(k in c for c in cols for k in ("effect", "truth", "treated", "program", "counterfactual"))
    assert "truth.json" in str(summary)


def test_lists_style_csv(tmp_path):
    synth.write_demo(tmp_path, households=3_000, seed=2, style="lists", progress=False)
    df = pd.read_csv(tmp_path / "danh_sach_ho_ngheo_can_ngheo.csv", dtype=str, keep_default_na=False)
    for h in ("Mã hộ", "Kỳ", "Phân loại hộ", "Tỉnh", "Xã", "Khu vực", "Số nhân khẩu", "Thu nhập bình quân",
              "Dân tộc thiểu số", "Họ tên chủ hộ", "Số CCCD", "Số điện thoại", "Địa chỉ",
              "Lý do ra khỏi danh sách"):
        assert h in df.columns
    assert set(df["Phân loại hộ"]) == {"Hộ nghèo", "Hộ cận nghèo", ""}
    removal = df["Phân loại hộ"] == ""
    assert (df.loc[removal, "Lý do ra khỏi danh sách"] != "").all()
    assert set(df.loc[removal, "Lý do ra khỏi danh sách"]) <= {"Chết", "Chuyển đi", "Nhập hộ", "Tách hộ"}
    assert df["Thu nhập bình quân"].str.fullmatch(r"\d{1,3}(\.\d{3})+").all()
    assert set(df["Khu vực"]) == {"Thành thị", "Nông thôn"} and set(df["Dân tộc thiểu số"]) == {"Có", "Không"}
    # the same households and periods as the full panel's poor / near-poor rows
    full = synth.generate(households=3_000, seed=2).panel
    listed = full[full.status.isin(["poor", "near_poor"])]
    assert (~removal).sum() == len(listed)
    sup = pd.read_csv(tmp_path / "ho_tro.csv", dtype=str)
    assert list(sup.columns) == ["Mã hộ", "Chương trình", "Kỳ bắt đầu", "Kỳ kết thúc", "Số tiền hỗ trợ"]


def test_lists_style_xlsx_official_templates(tmp_path):
    """--style lists --format xlsx: one workbook per commune per review, as offices keep them
    (issue 10 §4): a title block naming the year above the header, an STT column, and a
    signature footer below the data; every register row is in exactly one workbook."""
    from openpyxl import load_workbook

    summary = synth.write_demo(tmp_path, households=400, seed=4, style="lists", fmt="xlsx",
                               frequency="year", progress=False)
    books = sorted((tmp_path / "danh_sach").glob("*/*.xlsx"))
    assert books and books == sorted(f for f in summary.files if "danh_sach" in f.parts)
    total = 0
    for b in books:
        year = b.stem.rsplit("_", 1)[1]
        ws = load_workbook(b, read_only=True).worksheets[0]
        rows = list(ws.iter_rows(values_only=True))
        header = next(i for i, r in enumerate(rows) if r[0] == "STT")
        title = " ".join(str(c) for r in rows[:header] for c in r if c)
        assert f"NĂM {year}" in title and "DANH SÁCH HỘ NGHÈO" in title
        assert "Mã hộ" in rows[header]
        data = [r for r in rows[header + 1:] if isinstance(r[0], int)]
        assert [r[0] for r in data] == list(range(1, len(data) + 1))  # STT numbering
        assert any("Người lập biểu" in str(c) for r in rows[header + 1:] for c in r if c)
        total += len(data)
    assert total == summary.rows


def test_parquet_chunks(tmp_path, monkeypatch):
    # a small chunk size exercises the chunked path used at national scale
    monkeypatch.setattr(synth.simulate, "CHUNK", 1_000)
    summary = synth.write_demo(tmp_path, households=2_500, seed=9, fmt="parquet", frequency="year", progress=False)
    parts = sorted((tmp_path / "register").glob("part-*.parquet"))
    assert len(parts) == 3
    df = pd.read_parquet(tmp_path / "register")
    assert len(df) == summary.rows
    assert df.household_id.is_unique is False and not df.duplicated(["household_id", "period"]).any()
    assert df.household_id.str[2:].astype(int).le(2_500).sum() > 0
    assert set(df.period) == {2021, 2022, 2023, 2024, 2025}
    assert (tmp_path / "support.parquet").exists() and (tmp_path / "truth.json").exists()


def test_fixture_is_fast():
    import time

    t = time.perf_counter()
    synth.generate(households=4_000, seed=7, frequency="quarter")
    assert time.perf_counter() - t < 5


def test_statuses_are_the_dated_standard_applied_to_the_recorded_values(reg):
    """Every status in the register is povdyn.classify of that row's recorded income,
    area and deprivations under the standard in force in its period (2021Q4: 2016–2021)."""
    from povdyn import classify

    p = reg.panel[reg.panel.status.notna()]
    again = classify(p)
    assert (again == p.status).all()
    # and the 2022Q1 lists are the 2021 review's data re-read under the new standard
    q1 = p[p.period == "2022Q1"].status.value_counts(normalize=True)
    q4 = p[p.period == "2021Q4"].status.value_counts(normalize=True)
    assert q1["poor"] > 1.5 * q4["poor"]


def test_rewriting_a_folder_replaces_the_previous_demo(tmp_path):
    synth.write_demo(tmp_path, households=500, seed=1, progress=False)
    synth.write_demo(tmp_path, households=500, seed=1, fmt="parquet", frequency="year", progress=False)
    assert not (tmp_path / "register.csv").exists() and not (tmp_path / "support.csv").exists()
    assert (tmp_path / "support.parquet").exists()
    (tmp_path / "notes.txt").write_text("mine")
    synth.write_demo(tmp_path, households=500, seed=1, style="lists", progress=False)
    assert not list((tmp_path / "register").glob("*.parquet"))
    assert not (tmp_path / "adoption.parquet").exists() and (tmp_path / "ap_dung_mo_hinh.csv").exists()
    assert (tmp_path / "notes.txt").exists()  # files it does not own are left alone
