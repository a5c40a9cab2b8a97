"""povdyn report: tables of the page (hand-computed), the batch runner end to end
(pages, index, manifest, isolated failure, exit status), offline pages, no code or
tracebacks, small-cell suppression of a planted tiny group, immutable template."""
from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bs4 import BeautifulSoup

from povdyn import tables
from povdyn.report import external_urls, run_report, slugify

TINY_PROVINCE = "Tỉnh Thử Nghiệm"
TINY_HOUSEHOLDS = 6
BOGUS = "Tỉnh Không Tồn Tại"


# --------------------------------------------------------------------------- data
def write_small_register(out: Path, households: int = 1500, seed: int = 11, tiny: bool = True,
                         communes: bool = False) -> Path:
    """A small synthetic register written as processed parquet (identifiers dropped,
    ids pseudonymised) plus, when `tiny`, a planted province of 6 households; with
    `communes`, the 2025 commune of every row as ingest adds it (geo.panel_commune_2025)."""
    from povdyn.privacy import drop_identifiers, pseudonymise
    from povdyn.synth import generate

    reg = generate(households=households, seed=seed, frequency="quarter")
    panel = drop_identifiers(reg.panel)
    if communes:
        from povdyn.geo import panel_commune_2025

        panel = panel.join(panel_commune_2025(panel))
    if tiny:
        first = panel[panel["household_id"].isin(panel["household_id"].drop_duplicates().iloc[:TINY_HOUSEHOLDS])]
        planted = first.copy()
        planted["household_id"] = "TINY" + planted["household_id"].astype(str)
        planted["province"] = TINY_PROVINCE
        planted["province_2025"] = TINY_PROVINCE
        panel = pd.concat([panel, planted], ignore_index=True)
    panel["household_id"] = pseudonymise(panel["household_id"], "test-key")
    support = reg.support.copy()
    support["household_id"] = pseudonymise(support["household_id"], "test-key")
    out.mkdir(parents=True, exist_ok=True)
    panel.to_parquet(out / "panel.parquet", index=False)
    support.to_parquet(out / "support.parquet", index=False)
    return out


_SHARED: dict = {}


def shared_report_run(tmp_path_factory):
    """One report run per test session (national, the tiny province, a bogus province),
    shared by this module and test_browser: rendering pages is the slow part."""
    if "run" not in _SHARED:
        data = write_small_register(tmp_path_factory.mktemp("processed"))
        out = tmp_path_factory.mktemp("reports")
        template = Path(__file__).resolve().parents[1] / "notebooks" / "quarterly_report.ipynb"
        before = hashlib.sha256(template.read_bytes()).hexdigest()
        run = run_report(period="latest", regions=["national", TINY_PROVINCE, BOGUS], workers=2,
                         out_dir=out, data_dir=data, lang="vi", progress=False)
        _SHARED.update(run=(run, template, before), data=data)
    return _SHARED["run"], _SHARED["data"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return shared_report_run(tmp_path_factory)[0]


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    return shared_report_run(tmp_path_factory)[1]


# --------------------------------------------------------------------------- unit
def test_slugs_are_ascii_and_readable():
    assert slugify("Hà Nội") == "ha-noi"
    assert slugify("Thành phố Hồ Chí Minh") == "thanh-pho-ho-chi-minh"
    assert slugify("Đắk Lắk") == "dak-lak"
    assert slugify("national") == "national"


def test_external_url_detector():
    assert external_urls('<script src="https://cdn.example.org/require.js"></script>')
    assert external_urls("<style>@import url(http://fonts.example.org/x.css);</style>")
    assert not external_urls("<p>file:///tmp/a.html and data:image/png;base64,AAAA</p>")


def _hand_panel() -> pd.DataFrame:
    """100 households, 2024Q4..2025Q4; statuses constant until 2025Q3, then at 2025Q4:
    of 40 poor, 12 -> near-poor, 10 -> not poor, 18 stay; of 30 near-poor, 15 -> not
    poor; of 30 never-poor, 10 -> poor (newly poor, no relapse)."""
    periods = ["2024Q4", "2025Q1", "2025Q2", "2025Q3", "2025Q4"]
    rows = []
    for i in range(100):
        if i < 40:
            before = "poor"
            after = "near_poor" if i < 12 else ("non_poor" if i < 22 else "poor")
        elif i < 70:
            before = "near_poor"
            after = "non_poor" if i < 55 else "near_poor"
        else:
            before = "non_poor"
            after = "poor" if i < 80 else "non_poor"
        for p in periods:
            rows.append(dict(household_id=f"h{i:03d}", period=p, status=after if p == "2025Q4" else before,
                             province="Tỉnh A", province_2025="Tỉnh A", area="rural", ethnic_minority=False))
    return pd.DataFrame(rows)


def test_headline_values_match_hand_counts():
    v = tables.headline_values(_hand_panel(), "2025Q4").set_index("key")
    assert v.loc["poor_rate", ["numerator", "denominator"]].tolist() == [28, 100]
    assert v.loc["poor_rate", "rate"] == pytest.approx(0.28)
    assert v.loc["poor_rate", "prev_rate"] == pytest.approx(0.40)
    assert v.loc["near_poor_rate", "numerator"] == 27
    assert v.loc["exit_rate", ["numerator", "denominator"]].tolist() == [22, 40]
    assert v.loc["to_near_poor", "numerator"] == 12 and v.loc["to_non_poor", "numerator"] == 10
    assert v.loc["near_poor_exit_rate", ["numerator", "denominator"]].tolist() == [15, 30]
    assert v.loc["new_poor", "numerator"] == 10 and v.loc["relapses", "numerator"] == 0
    # Wilson interval of 28/100 (independent formula, z = 1.96)
    z, p, n = 1.959963984540054, 0.28, 100
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert v.loc["poor_rate", "ci_low"] == pytest.approx(centre - half)


def test_headline_table_formats_and_suppresses():
    t = tables.headline(_hand_panel(), "2025Q4", lang="vi", min_cell=10)
    row = dict(zip(t.iloc[:, 0], t.itertuples(index=False)))
    poor = row["Tỷ lệ hộ nghèo"]
    assert poor[1] == "28" and poor[2] == "100" and poor[3] == "28,00"
    assert poor[5] == "−12,00\u00a0điểm\u00a0%"
    relapses = row["Hộ tái nghèo"]
    assert relapses[1] == "<10"  # 0 relapses is a small cell too
    en = tables.headline(_hand_panel(), "2025Q4", lang="en")
    assert "Exit rate from poverty" in set(en.iloc[:, 0])


def test_small_numbers_hidden_in_text():
    text = "ít hơn 50 hộ (8 hộ được hỗ trợ) tại 2025Q4, 1.234 hộ, 2,5%, khác 0, p = 1.38e-10"
    assert tables.hide_small_numbers(text, 10) == (
        "ít hơn 50 hộ (<10 hộ được hỗ trợ) tại 2025Q4, 1.234 hộ, 2,5%, khác 0, p = 1.38e-10")
    assert tables.hide_small_numbers("only 3 households", 10) == "only <10 households"
    masked = tables.mask_small(pd.DataFrame({"n_treated": [5, 10, 120]}), ["n_treated"], 10)
    assert masked["n_treated"].isna().tolist() == [True, False, False]


def test_unknown_region_is_an_error_naming_the_known_ones():
    with pytest.raises(Exception, match="Tỉnh A"):
        tables.select_region(_hand_panel(), "Tỉnh B")
    assert len(tables.select_region(_hand_panel(), "tinh a")) == 500  # diacritics/case ignored


# --------------------------------------------------------------------------- end to end
def _cells(page: str) -> list[str]:
    soup = BeautifulSoup(page, "html.parser")
    return [td.get_text(strip=True) for td in soup.find_all("td")]


def test_run_writes_pages_index_manifest_and_isolates_the_failure(report):
    run, _, _ = report
    assert run.failed == [BOGUS]
    assert set(run.pages) == {"national", TINY_PROVINCE}
    out = run.out_dir
    assert (out / "national.html").exists() and (out / "tinh-thu-nghiem.html").exists()
    assert (out / "notebooks" / "national.ipynb").exists()
    assert not (out / "tinh-khong-ton-tai.html").exists()
    log = (out / "logs" / "tinh-khong-ton-tai.log").read_text()
    assert "matches no province_2025" in log
    index = run.index_path.read_text(encoding="utf-8")
    assert 'href="national.html"' in index and 'href="tinh-thu-nghiem.html"' in index
    assert 'href="logs/tinh-khong-ton-tai.log"' in index
    assert "Toàn quốc" in index and TINY_PROVINCE in index
    manifest = json.loads(run.manifest_path.read_text())
    assert manifest["period"] == run.period
    assert len(manifest["data"]["sha256"]) == 64 and "panel.parquet" in manifest["data"]["files"]
    assert manifest["packages"]["papermill"] and manifest["packages"]["pandas"]
    assert {r["region"]: r["ok"] for r in manifest["regions"]} == {"national": True, TINY_PROVINCE: True,
                                                                    BOGUS: False}
    assert all(r["seconds"] > 0 for r in manifest["regions"])
    assert "FAILED" in str(run) and BOGUS in str(run)


def test_manifest_and_index_say_the_run_failed_and_which_engine_ran(report):
    """A run with a failed page is "failed", not "complete", in the manifest and on the
    index; the engine of each page is the one its data ran on, read back from the page."""
    run, _, _ = report
    manifest = json.loads(run.manifest_path.read_text())
    assert manifest["status"] == run.status == "failed"
    assert manifest["finished_utc"] and manifest["started_utc"] <= manifest["finished_utc"]
    engines = {r["region"]: r["engine"] for r in manifest["regions"]}
    assert engines["national"] == engines[TINY_PROVINCE] == "duckdb" and engines[BOGUS] is None
    assert manifest["engines_used"] == ["duckdb"] and manifest["parameters"]["engine"] == "duckdb"
    executed = json.loads((run.out_dir / "notebooks" / "national.ipynb").read_text())
    probe = [c for c in executed["cells"] if "povdyn-engine-probe" in c["metadata"].get("tags", [])]
    assert len(probe) == 1 and '"engines": ["duckdb"]' in "".join(probe[0]["outputs"][0]["text"])
    index = BeautifulSoup(run.index_path.read_text(encoding="utf-8"), "html.parser")
    status = index.find(class_="run-status")
    assert status["data-status"] == "failed" and "incomplete" in status["class"]
    assert "2/3" in status.get_text() and "1 trang lỗi" in status.get_text()


def test_pages_and_data_files_get_the_same_file_mode(report, small_data):
    """Every file of the run has the mode any file the user writes gets (0o666 minus the
    umask), as the parquet files beside them do; mkstemp's 0o600 made pages private."""
    run, _, _ = report
    mask = os.umask(0o022)
    os.umask(mask)
    expected = 0o666 & ~mask
    files = [p for p in run.out_dir.rglob("*") if p.is_file()]
    assert len(files) >= 8
    modes = {p.relative_to(run.out_dir).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in files}
    assert set(modes.values()) == {expected}, modes
    assert stat.S_IMODE((small_data / "panel.parquet").stat().st_mode) == expected


def test_cli_exit_status_says_a_region_failed(report, small_data, tmp_path):
    from povdyn.cli import main

    # the same bogus region through the command: exit status 1
    code = main(["-q", "report", "--regions", BOGUS, "--workers", "1", "--out", str(tmp_path),
                 "--data-dir", str(small_data)])
    assert code == 1


def test_pages_are_offline_and_show_no_code_tracebacks_or_ids(report, small_data):
    run, _, _ = report
    ids = pd.read_parquet(small_data / "panel.parquet", columns=["household_id"])["household_id"].unique()
    for path in [run.index_path, *run.pages.values()]:
        page = path.read_text(encoding="utf-8")
        assert external_urls(page) == [], path
        assert "<script" not in page.lower()
        assert "Traceback" not in page and "Error" not in page
        assert "import povdyn" not in page and "tables.show(" not in page
        assert "jp-InputArea-editor" not in page and "In&nbsp;[" not in page
        assert not any(i in page for i in ids[:2000]), "a pseudonymous id was printed"
        assert "Mục lục" in page or path == run.index_path


def test_national_page_has_every_section_and_figures(report):
    run, _, _ = report
    page = run.pages["national"].read_text(encoding="utf-8")
    for heading in ["Các chỉ tiêu chính", "Tiến độ so với mục tiêu", "Dự báo đến năm 2025 và 2030",
                    "Xu hướng", "Chuyển dịch giữa các nhóm", "Thoát nghèo bền vững",
                    "So sánh giữa các tỉnh, thành phố", "Thành thị, nông thôn và hộ dân tộc thiểu số",
                    "Mô hình giảm nghèo hiệu quả", "Thiếu hụt đa chiều", "Ghi chú phương pháp"]:
        assert heading in page, heading
    assert page.count("data:image/png;base64,") >= 6
    assert "Dấu vân tay dữ liệu" in page


def test_tiny_group_counts_never_appear(report):
    """The planted province has 6 households: no table cell of its page or of the index
    may show a count below 10 (every pure integer in a table must be >= 10)."""
    run, _, _ = report
    for path in [run.index_path, run.pages[TINY_PROVINCE], run.pages["national"]]:
        page = path.read_text(encoding="utf-8")
        for cell in _cells(page):
            if re.fullmatch(r"[+−-]?\d{1,3}([.,]\d{3})*", cell):
                value = int(re.sub(r"[^\d]", "", cell))
                assert value >= 10, f"{path.name}: small count {cell!r} shown"
            # nor inside a text, e.g. a verdict's reason "(5 hộ được hỗ trợ)"
            assert not re.search(r"(?<![\w.,])\d(?![\w.,])\s*hộ", cell), f"{path.name}: {cell!r}"
    download = pd.read_csv(run.out_dir / "headline.csv", encoding="utf-8-sig", dtype=str)
    tiny = download[download.iloc[:, 0] == TINY_PROVINCE].iloc[0]
    assert tiny.iloc[1] == "<10" and tiny.iloc[2] == "<10", "the download must be suppressed too"
    assert 'href="headline.csv"' in run.index_path.read_text(encoding="utf-8")
    tiny_page = run.pages[TINY_PROVINCE].read_text(encoding="utf-8")
    assert "&lt;10" in tiny_page
    index_rows = BeautifulSoup(run.index_path.read_text(encoding="utf-8"), "html.parser").find_all("tr")
    tiny_row = [r for r in index_rows if TINY_PROVINCE in r.get_text()][0]
    cells = [td.get_text(strip=True) for td in tiny_row.find_all("td")]
    assert cells[1] == "<10" and cells[2] == "<10"  # households and poor households


def test_rerun_does_not_modify_the_template_notebook(report, small_data, tmp_path):
    run, template, before = report
    assert hashlib.sha256(template.read_bytes()).hexdigest() == before
    nb = json.loads(template.read_text())
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in nb["cells"] if c["cell_type"] == "code"), "template must be committed stripped"


def test_region_names_resolve_to_the_spelling_in_the_data(small_data):
    from povdyn.report import resolve_regions

    assert resolve_regions(small_data, "toàn quốc, tinh thu nghiem ,TỈNH THỬ NGHIỆM, Bogus") == [
        "national", TINY_PROVINCE, "Bogus"]
    everything = resolve_regions(small_data, "all")
    assert everything[0] == "national" and TINY_PROVINCE in everything and len(everything) == 36
