"""Issue 11 §2: an added quarter rewrites only what it can change (ingest.by_period).

panel.parquet is a folder of one file per period; an incremental run reads only new or
changed files, checks across rows only the periods they touch (and the periods after
them, for the register kind's lag), rewrites only the touched periods' files, and gives
the bytes of a full re-ingest. Each test compares with a full ingest of the same raw
folder and checks which period files were written (inode and modification time)."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

import povdyn.ingest as ingest_module
from povdyn.ingest import by_period, ingest
from povdyn.panel import load_panel
from raw_years import demo_register_by_year, write_raw


@pytest.fixture(scope="module")
def demo_years(tmp_path_factory) -> dict[str, pd.DataFrame]:
    return demo_register_by_year(tmp_path_factory.mktemp("demo"), households=300, seed=7)



def _hashes(out: Path) -> dict:
    return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(out).parts)}


def _stamps(out: Path) -> dict:
    """period file -> (inode, mtime): a rewritten file gets a new inode (atomic replace)."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in (out / "panel.parquet").glob("period-*.parquet")}


def _full(raw: Path, tmp_path: Path) -> Path:
    out = tmp_path / f"full-{len(list(tmp_path.glob('full-*')))}"
    assert ingest(raw, out, progress=False).balanced
    return out


def _spy_reads(monkeypatch) -> list:
    read = []
    real = ingest_module.run.read_tables
    monkeypatch.setattr(ingest_module.run, "read_tables",
                        lambda path, root: read.append(path.name) or real(path, root))
    return read


def test_an_added_year_reads_and_writes_only_itself(demo_years, tmp_path, monkeypatch):
    raw, out = tmp_path / "raw", tmp_path / "out"
    for year, rows in demo_years.items():
        write_raw(raw, f"y{year}.csv", rows)
    first = ingest(raw, out, progress=False)
    assert first.ok, str(first)
    assert sorted(p.name for p in (out / "panel.parquet").iterdir()) == [
        "_povdyn.json"] + [f"period-{y}.parquet" for y in sorted(demo_years)]
    before = _stamps(out)
    # the next review: 2025's households again, some poorer, and 20 new ones
    added = demo_years["2025"].assign(period="2026")
    biggest = added["province"].value_counts().index[0]  # (small provinces keep their kind)
    added.loc[added.index[added["province"] == biggest][:5], "status"] = "poor"
    new = added.iloc[:20].assign(household_id=[f"NEW{i:04d}" for i in range(20)])
    # (exported without two of the register's columns: null there, as in a full run)
    write_raw(raw, "y2026.csv", pd.concat([added, new]).drop(columns=["meritorious",
                                                                   "removal_reason"]))
    read = _spy_reads(monkeypatch)
    again = ingest(raw, out, progress=False)
    assert read == ["y2026.csv"] and again.balanced
    after = _stamps(out)
    assert {k: v for k, v in after.items() if k != "period-2026.parquet"} == before
    assert _hashes(out) == _hashes(_full(raw, tmp_path))
    assert again.households == first.households + 20
    assert load_panel(out).register == "full"  # the folder, its recorded kind
    counts = pd.read_parquet(out / "panel.parquet", columns=["period"])["period"].value_counts()
    y2026 = next(t for t in again.tables if t.source_file == "y2026.csv")
    assert counts[2026] == y2026.loaded and y2026.rows_in == len(added) + 20
    assert pd.read_parquet(out / "panel.parquet" / "period-2026.parquet")[
        "meritorious"].isna().all()

    # nothing new: nothing read, nothing written, the same bytes
    read.clear()
    hashes = _hashes(out)
    assert ingest(raw, out, progress=False).errors == again.errors
    assert read == [] and _stamps(out) == after and _hashes(out) == hashes


def test_copies_and_conflicts_across_old_and_new_files(demo_years, tmp_path, monkeypatch):
    """A new file repeating a 2023 row exactly (dropped) and one 2024 row with another
    status (both copies quarantined): the old periods' files are rewritten, the others
    not, and counts and quarantine are those of a full ingest."""
    raw, out = tmp_path / "raw", tmp_path / "out"
    for year, rows in demo_years.items():
        write_raw(raw, f"y{year}.csv", rows)
    assert ingest(raw, out, progress=False).ok
    before = _stamps(out)
    copy = demo_years["2023"].iloc[[3]]
    clash = demo_years["2024"].iloc[[5]].assign(
        status=lambda f: f["status"].map(lambda s: "poor" if s != "poor" else "non_poor"))
    write_raw(raw, "z_late.csv", pd.concat([copy, clash]))  # after y2023.csv: its copy drops
    read = _spy_reads(monkeypatch)
    again = ingest(raw, out, progress=False)
    assert read == ["z_late.csv"]
    late = next(t for t in again.tables if t.source_file == "z_late.csv")
    y2024 = next(t for t in again.tables if t.source_file == "y2024.csv")
    assert (late.rows_in, late.duplicates_dropped, late.quarantined) == (2, 1, 1)
    assert y2024.quarantined == 1 and again.balanced
    after = _stamps(out)
    changed = {k for k in after if after[k] != before.get(k)}
    assert changed == {"period-2023.parquet", "period-2024.parquet"}
    assert _hashes(out) == _hashes(_full(raw, tmp_path))


def test_a_late_correction_then_a_removed_file(demo_years, tmp_path, monkeypatch):
    """New households for 2023 arrive late; then the 2022 file is taken away: its rows
    leave the panel (and the households seen only there leave the count)."""
    raw, out = tmp_path / "raw", tmp_path / "out"
    for year, rows in demo_years.items():
        write_raw(raw, f"y{year}.csv", rows)
    assert ingest(raw, out, progress=False).ok
    before = _stamps(out)
    late = demo_years["2023"].iloc[:15].assign(
        household_id=[f"LATE{i:03d}" for i in range(15)])
    write_raw(raw, "y2023_late.csv", late)
    again = ingest(raw, out, progress=False)
    after = _stamps(out)
    # 2023's file rewritten; 2024 and 2025 are worked on for the register kind's lag
    # (rows unchanged: their files stay)
    assert {k for k in after if after[k] != before[k]} == {"period-2023.parquet"}
    assert _hashes(out) == _hashes(_full(raw, tmp_path))

    (raw / "y2022.csv").unlink()
    read = _spy_reads(monkeypatch)
    third = ingest(raw, out, progress=False)
    assert read == [] and third.ok
    assert not (out / "panel.parquet" / "period-2022.parquet").exists()
    assert 2022 not in set(pd.read_parquet(out / "panel.parquet", columns=["period"])["period"])
    assert _stamps(out)["period-2021.parquet"] == after["period-2021.parquet"]
    assert _hashes(out) == _hashes(_full(raw, tmp_path))


def test_a_period_inserted_before_the_last_changes_the_kind_after_it(
        demo_years, tmp_path):
    """2023 arrives after 2024 and 2025: a household's 2024 row then follows its 2023
    row, not its 2022 one, so the register kind's counts of 2024 change (exit marks:
    non-poor after a listed row). Those must be the full ingest's counts."""
    raw, out = tmp_path / "raw", tmp_path / "out"
    years = dict(demo_years)
    # planted: households poor in 2022 and 2024 are non-poor in 2023, so that their
    # 2024 row's previous status changes from poor (2022) to non-poor (2023) and the
    # 2024 non-poor rows after 2022's poor ones become exit marks only without 2023
    y2022, y2023, y2024 = (years[y].set_index("household_id") for y in ("2022", "2023", "2024"))
    planted = y2022.index[:12].intersection(y2023.index).intersection(y2024.index)
    y2022.loc[planted, "status"] = "poor"
    y2023.loc[planted, "status"] = "non_poor"
    y2024.loc[planted, "status"] = "non_poor"
    years.update({y: f.reset_index() for y, f in (("2022", y2022), ("2023", y2023),
                                                   ("2024", y2024))})
    for year, rows in years.items():
        if year != "2023":
            write_raw(raw, f"y{year}.csv", rows)
    without = ingest(raw, out, progress=False)
    before = _stamps(out)
    write_raw(raw, "y2023.csv", years["2023"])
    again = ingest(raw, out, progress=False)
    full = _full(raw, tmp_path)
    assert _hashes(out) == _hashes(full)
    saved = json.loads((out / "ingest_summary.json").read_text(encoding="utf-8"))
    assert saved["register_kind_counts"] == json.loads(
        (full / "ingest_summary.json").read_text(encoding="utf-8"))["register_kind_counts"]
    # without 2023 the planted 2024 rows were exits (after 2022's poor row); with it
    # they are not, and 2023's own non-poor rows after a poor one are
    province_counts = [c["exit_marks"] for c in without.register_kind_counts.values()]
    assert sum(province_counts) >= len(planted)
    after = _stamps(out)
    assert {k for k in after if after.get(k) != before.get(k)} == {"period-2023.parquet"}
    assert again.balanced


def test_a_first_post_merger_year_rewrites_the_years_before_it(demo_years, tmp_path,
                                                               monkeypatch):
    """A household's rows before July 2025 take the commune it is first recorded in
    after the mergers: when 2025 arrives, its earlier years' files change too (patched:
    only those households' rows, no new sort); when 2025 goes again, they go back to
    their names' own mapping (worked on from their rows)."""
    raw, out = tmp_path / "raw", tmp_path / "out"
    for year, rows in demo_years.items():
        if year != "2025":
            write_raw(raw, f"y{year}.csv", rows)
    assert ingest(raw, out, progress=False).ok
    earlier = pd.read_parquet(out / "panel.parquet" / "period-2024.parquet")
    assert "household" not in set(earlier["commune_2025_basis"])
    patched = []
    real = by_period.patch_period
    monkeypatch.setattr(by_period, "patch_period",
                        lambda path, *rest: patched.append(path.name) or real(path, *rest))
    write_raw(raw, "y2025.csv", demo_years["2025"])
    assert ingest(raw, out, progress=False).ok
    assert sorted(patched) == [f"period-{y}.parquet" for y in ("2021", "2022", "2023", "2024")]
    assert _hashes(out) == _hashes(_full(raw, tmp_path))
    later = pd.read_parquet(out / "panel.parquet" / "period-2024.parquet")
    assert "household" in set(later["commune_2025_basis"])

    (raw / "y2025.csv").unlink()
    patched.clear()
    assert ingest(raw, out, progress=False).ok
    assert patched == [] and _hashes(out) == _hashes(_full(raw, tmp_path))
    again = pd.read_parquet(out / "panel.parquet" / "period-2024.parquet")
    assert again.equals(earlier)


def test_a_failed_run_is_not_ok_and_the_next_one_starts_over(demo_years, tmp_path,
                                                              monkeypatch):
    raw, out = tmp_path / "raw", tmp_path / "out"
    for year, rows in demo_years.items():
        if year != "2025":
            write_raw(raw, f"y{year}.csv", rows)
    assert ingest(raw, out, progress=False).ok
    write_raw(raw, "y2025.csv", demo_years["2025"])

    def broken(*args, **kwargs):
        raise OSError("disk full (planted)")

    with monkeypatch.context() as patch:  # the period files are written, then it stops
        patch.setattr(by_period, "write_kind", broken)
        with pytest.raises(OSError, match="planted"):
            ingest(raw, out, progress=False)
    saved = json.loads((out / "ingest_summary.json").read_text(encoding="utf-8"))
    assert saved["ok"] is False and "planted" in saved["errors"][0]
    assert ingest(raw, out, progress=False).ok  # files differ from the manifest: full run
    assert _hashes(out) == _hashes(_full(raw, tmp_path))


def test_an_older_single_file_panel_is_replaced(demo_years, tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "out"
    write_raw(raw, "y2021.csv", demo_years["2021"])
    out.mkdir()
    demo_years["2021"].to_parquet(out / "panel.parquet")
    assert ingest(raw, out, progress=False).ok
    assert (out / "panel.parquet").is_dir()
    assert _hashes(out) == _hashes(_full(raw, tmp_path))
    shutil.rmtree(out)


def test_office_lists_with_totals_add_a_year_as_a_full_run_would(tmp_path, monkeypatch):
    """What offices keep -- poor / near-poor lists per review plus household totals --
    added a year at a time: the new list is the only file read, the register stays
    "lists", and every output is the bytes of a full ingest of all the files. A
    pre-merger year leaves the earlier period files as they are; the first post-merger
    year (2025) may patch them (households' own 2025 commune), still as a full run."""
    from povdyn.synth import generate
    from povdyn.synth.writers import to_lists

    reg = generate(households=1500, seed=11, frequency="year")
    lists = to_lists(reg.panel, "year")
    totals = (reg.panel.groupby(["province", "commune", "period"]).size()
              .rename("Tổng số hộ").reset_index()
              .rename(columns={"province": "Tỉnh", "commune": "Xã", "period": "Năm"}))
    raw, out = tmp_path / "raw", tmp_path / "out"
    write_raw(raw, "tong_so_ho.csv", totals)
    years = sorted(lists["Năm"].unique())
    for year in years[:-2]:
        write_raw(raw, f"ds_{year}.csv", lists[lists["Năm"] == year])
    first = ingest(raw, out, progress=False)
    assert first.ok and first.balanced, str(first)
    assert load_panel(out).register == "lists"
    read = _spy_reads(monkeypatch)
    for year in years[-2:]:
        before = _stamps(out)
        write_raw(raw, f"ds_{year}.csv", lists[lists["Năm"] == year])
        read.clear()
        again = ingest(raw, out, progress=False)
        assert read == [f"ds_{year}.csv"] and again.ok and again.balanced
        after = _stamps(out)
        assert f"period-{year}.parquet" in after
        if str(year) < "2025":
            assert {k: v for k, v in after.items() if k in before} == before
        assert load_panel(out).register == "lists"
        assert _hashes(out) == _hashes(_full(raw, tmp_path))
