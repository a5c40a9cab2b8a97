"""Issue 11 at national scale, on small registers: the households table that replaces
the scans of every other period file in an incremental run (ingest.households), checked
against a full ingest of the same raw folder."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from povdyn.ingest import households as households_module
from povdyn.ingest import ingest
from povdyn.privacy import pseudonymise
from raw_years import demo_register_by_year, write_raw


@pytest.fixture(scope="module")
def demo_years(tmp_path_factory) -> dict[str, pd.DataFrame]:
    return demo_register_by_year(tmp_path_factory.mktemp("demo"), households=200, seed=5)



def _distinct_households(out: Path) -> int:
    frame = pd.read_parquet(out / "panel.parquet", columns=["household_id"])
    return frame["household_id"].dropna().nunique()


def test_pseudonyms_as_numbers_keep_their_order_and_refuse_other_ids():
    ids = pseudonymise(pd.Series([f"HH{i:05d}" for i in range(500)]), key=b"k" * 32)
    numbers = households_module.ids_as_numbers(pa.array(ids.tolist()))
    assert numbers is not None and len(np.unique(numbers)) == 500
    # the numbers are the hex digits: same order as the text, and the text comes back
    order = np.argsort(ids.to_numpy().astype(str), kind="stable")
    assert (np.argsort(numbers, kind="stable") == order).all()
    assert [f"h_{n:016x}" for n in numbers[:20]] == ids.tolist()[:20]
    # nulls are in no household; any other shape has no table
    assert len(households_module.ids_as_numbers(pa.array([ids[0], None]))) == 1
    for other in (["HH00001"], [ids[0].upper()], [ids[0][:-1] + "g"], [ids[0] + "0"]):
        assert households_module.ids_as_numbers(pa.array(other)) is None


def test_households_follow_an_added_and_a_removed_file_and_a_stale_table_is_not_used(
        demo_years, tmp_path):
    """A late file with 2024 rows of 30 households found nowhere else, then removed: the
    count follows both (its households are dropped from the table with their last
    period); a table left from an earlier run is recognised as stale and remade."""
    raw, out = tmp_path / "raw", tmp_path / "out"
    for year, rows in demo_years.items():
        write_raw(raw, f"y{year}.csv", rows)
    first = ingest(raw, out, progress=False)
    assert first.ok and first.households == _distinct_households(out)
    table_path = out / ".ingest-cache" / households_module.TABLE_FILE
    assert table_path.is_file()

    extra = demo_years["2024"].iloc[:30].assign(
        household_id=[f"ONLY{i:04d}" for i in range(30)])
    write_raw(raw, "z_extra.csv", extra)
    again = ingest(raw, out, progress=False)
    assert again.ok and again.reused_files
    assert again.households == first.households + 30 == _distinct_households(out)
    with_extra = tmp_path / "with_extra.npz"
    shutil.copy(table_path, with_extra)

    (raw / "z_extra.csv").unlink()
    removed = ingest(raw, out, progress=False)
    assert removed.households == first.households == _distinct_households(out)

    # the table of the run with the extra households put back by hand, then 5 new
    # households in 2022: the table describes another 2024 file, so it is remade
    shutil.copy(with_extra, table_path)
    write_raw(raw, "z_new.csv", demo_years["2022"].iloc[:5].assign(
        household_id=[f"NEW{i:04d}" for i in range(5)]))
    stale = ingest(raw, out, progress=False)
    assert stale.households == first.households + 5 == _distinct_households(out)
    full = ingest(raw, tmp_path / "full", progress=False)
    assert full.households == stale.households


@pytest.mark.parametrize("splice_works", [True, False])
def test_a_first_post_merger_year_finds_the_patched_periods_from_the_table(
        demo_years, tmp_path, monkeypatch, splice_works):
    """The pre-merger files to patch are those the households table says hold the
    households whose own 2025 commune changed: the same files as scanning them, and the
    same bytes as a full ingest, whether the patch replaces only the 2025 commune
    columns' chunks (splice.py) or, when the file cannot be spliced, rewrites it whole."""
    from povdyn.ingest import by_period, splice

    whole = []
    real_whole = by_period._patch_whole
    monkeypatch.setattr(by_period, "_patch_whole",
                        lambda *a: whole.append(a[0].name) or real_whole(*a))
    if not splice_works:
        def refuse(*a):
            raise splice.CannotSplice("refused by the test")

        monkeypatch.setattr(splice, "splice_columns", refuse)

    raw, out = tmp_path / "raw", tmp_path / "out"
    for year in ("2021", "2022", "2023", "2024"):
        write_raw(raw, f"y{year}.csv", demo_years[year])
    assert ingest(raw, out, progress=False).ok
    write_raw(raw, "y2025.csv", demo_years["2025"])
    found = []
    real = by_period.own_commune_changes

    def both_ways(con, plan_, table=None):
        scanned = real(con, plan_, None)
        assert table is not None, "no households table in an incremental run"
        from_table = real(con, plan_, table)
        found.append((scanned, from_table))
        return from_table

    monkeypatch.setattr(by_period, "own_commune_changes", both_ways)
    again = ingest(raw, out, progress=False)
    assert len(found) == 1 and found[0][0], "nothing to patch: the test shows nothing"
    assert found[0][1] == found[0][0]
    assert sorted(whole) == ([] if splice_works else sorted(
        by_period.period_file(p) for p in found[0][0]))
    full = tmp_path / "full"
    assert ingest(raw, full, progress=False).households == again.households
    for path in sorted((full / "panel.parquet").glob("period-*.parquet")):
        assert path.read_bytes() == (out / "panel.parquet" / path.name).read_bytes()


def test_spliced_columns_give_the_bytes_of_a_wholewrite_raw(tmp_path):
    """A parquet file with two of its columns replaced (one with nulls, one dictionary
    encoded, one plain) from a file of those columns only: the bytes pyarrow writes
    for the whole new table, and a footer that does not encode back is refused."""
    import pyarrow.parquet as pq

    from povdyn.ingest import splice

    rng = np.random.default_rng(3)
    n = 300_000
    table = pa.table({"household_id": [f"h_{i:016x}" for i in range(n)],
                      "size": rng.integers(1, 9, n),
                      "commune": [f"Xã {i % 77}" for i in range(n)],
                      "income": rng.random(n),
                      "basis": [None if i % 5 == 0 else "recorded" for i in range(n)]})
    new = table.set_column(2, "commune", pa.array([f"Phường {i % 13}" for i in range(n)]))
    new = new.set_column(4, "basis", pa.array(["household"] * n))
    settings = dict(compression="zstd", write_statistics=True, row_group_size=1 << 17)
    pq.write_table(table, tmp_path / "old.parquet", **settings)
    pq.write_table(new, tmp_path / "whole.parquet", **settings)
    pq.write_table(new.select(["commune", "basis"]), tmp_path / "columns.parquet", **settings)
    splice.splice_columns(tmp_path / "old.parquet", tmp_path / "columns.parquet",
                          tmp_path / "spliced.parquet", ["commune", "basis"])
    assert (tmp_path / "spliced.parquet").read_bytes() == \
        (tmp_path / "whole.parquet").read_bytes()
    assert pq.read_table(tmp_path / "spliced.parquet").equals(new)
    # a footer whose bytes would not come back (a field written in the long form)
    raw = bytearray((tmp_path / "old.parquet").read_bytes())
    size = int.from_bytes(raw[-8:-4], "little")
    footer = raw[-8 - size:-8]
    assert footer[0] == 0x15  # field 1 (version), i32, short form
    long_form = bytearray([0x05, 0x02]) + footer[1:]  # the same field, long form
    raw[-8 - size:] = long_form + len(long_form).to_bytes(4, "little") + b"PAR1"
    (tmp_path / "odd.parquet").write_bytes(raw)
    assert pq.read_table(tmp_path / "odd.parquet").equals(table)  # a valid file
    with pytest.raises(splice.CannotSplice):
        splice.splice_columns(tmp_path / "odd.parquet", tmp_path / "columns.parquet",
                              tmp_path / "never.parquet", ["commune", "basis"])


def test_the_households_table_widens_past_eight_periods_and_drops_emptied_households():
    """Quarterly registers have more periods than a byte has bits: the masks widen and
    every answer stays that of the sets themselves (random sets, 20 periods)."""
    rng = np.random.default_rng(11)
    table = households_module.HouseholdPeriods.empty()
    truth = {}
    for step in range(40):
        label = f"{2020 + step % 20 // 4}Q{step % 4 + 1}"
        ids = np.unique(rng.integers(0, 2**63, 30, dtype=np.uint64) if step % 7 else
                        rng.choice(np.array(sorted(set().union(*truth.values())) or [1],
                                            dtype=np.uint64), 10))
        if step % 9 == 8:
            ids = None  # the period's files removed
        assert table.set_period(label, ids, [step])
        truth[label] = set() if ids is None else set(ids.tolist())
        everyone = set().union(*truth.values())
        assert table.count == len(everyone)
        probe = np.array(sorted(rng.choice(np.array(sorted(everyone), dtype=np.uint64), 3)),
                         dtype=np.uint64)
        assert table.periods_of(probe) == {p for p, s in truth.items()
                                           if s & set(probe.tolist())}
    assert table.masks.dtype == np.uint32


def test_without_a_households_table_the_count_comes_from_the_period_files(
        demo_years, tmp_path, monkeypatch):
    """Ids that are not ingest pseudonyms (here: the table refuses every id) leave no
    table: a full and an incremental run count distinct households over the period
    files, the same counts as with the table."""
    raw, out = tmp_path / "raw", tmp_path / "out"
    for year in ("2021", "2022", "2023"):
        write_raw(raw, f"y{year}.csv", demo_years[year])
    with_table = ingest(raw, tmp_path / "with_table", progress=False).households
    monkeypatch.setattr(households_module, "ids_as_numbers", lambda array: None)
    assert ingest(raw, out, progress=False).households == with_table
    assert not (out / ".ingest-cache" / households_module.TABLE_FILE).exists()
    write_raw(raw, "y2024.csv", demo_years["2024"].assign(
        household_id=lambda f: "X" + f["household_id"]))  # households new in 2024
    again = ingest(raw, out, progress=False)
    assert again.reused_files and again.households == _distinct_households(out) \
        == with_table + demo_years["2024"]["household_id"].nunique()


# --- issue 11 §1: rows cut by household range in the range workers ---------------------
def _one_register_with_copies_far_apart(demo_years, raw: Path) -> dict:
    """Every year in one csv, and at its end (another byte range, so another worker):
    exact copies of 7 rows from its start and a conflicting copy of 3 more (another
    income). Returns the planted copies' ids."""
    frame = pd.concat([demo_years[y] for y in sorted(demo_years)], ignore_index=True)
    income = next(c for c in frame.columns if "income" in c.lower() or "thu" in c.lower())
    exact = frame.iloc[:7]
    clash = frame.iloc[7:10].assign(**{income: "123456"})
    write_raw(raw, "register.csv", pd.concat([frame, exact, clash], ignore_index=True))
    return {"exact": exact, "clash": clash}


def _register_parts(monkeypatch) -> list:
    """The list the register parts each later run hands to the register stage are
    appended to: (path, its rows' household ids)."""
    import povdyn.ingest as ingest_module

    seen = []
    stage = ingest_module.run._register_stage

    def recording(con, spill, *args, **kwargs):
        for part in spill.parts["register"]:
            seen.append((Path(part), pd.read_parquet(part, columns=["household_id"])))
        return stage(con, spill, *args, **kwargs)

    monkeypatch.setattr(ingest_module.run, "_register_stage", recording)
    return seen


def _cut_in_workers(monkeypatch, cut_ranges: int | None) -> list:
    """Large-file settings for a small csv (byte ranges of ~20 kB on 2 workers, rows cut
    into `cut_ranges` household ranges; None: as many as cut_ranges_for gives); returns
    _register_parts' list."""
    import povdyn.ingest as ingest_module

    monkeypatch.setattr(ingest_module.parallel, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(ingest_module.parallel, "RANGE_BYTES", 20_000)
    monkeypatch.setattr(ingest_module.parallel, "MIN_RANGE_BYTES", 20_000)
    monkeypatch.setattr(ingest_module.parallel, "_SCAN_BYTES", 1000)
    monkeypatch.setattr(ingest_module.household_ranges, "CUT_RANGES", cut_ranges)
    monkeypatch.setenv("POVDYN_INGEST_WORKERS", "2")
    return _register_parts(monkeypatch)


def test_cut_ranges_are_a_power_of_two_from_the_size_and_the_memory_limit():
    """A csv is cut into the smallest power of two of household ranges that each hold at
    most CSV_BYTES_PER_MEMORY bytes of it per byte of the memory limit (none when one
    range holds it), at most MAX_CUT_RANGES; the ranges of a coarser cut are whole ranges
    of a finer one, so a range of the sort reads whole parts or halves of them."""
    from povdyn.ingest import household_ranges as hr

    per_range = hr.CSV_BYTES_PER_MEMORY * 10**9
    assert hr.cut_ranges_for(0, "1GB") == hr.cut_ranges_for(int(per_range), "1GB") == 0
    assert hr.cut_ranges_for(int(per_range) + 1, "1GB") == 2
    for need, count in [(2.5, 4), (4, 4), (4.01, 8), (5.5, 8), (33, 64), (10**4, 64)]:
        assert hr.cut_ranges_for(int(per_range * need), "1GB") == count, need
        # the same bytes under a quarter of the memory need four times the ranges
        assert hr.cut_ranges_for(int(per_range * need / 4), "250MB") == count, need
    assert hr.memory_bytes("953.6 MiB") == int(953.6 * 2**20)
    for n in (2, 4, 8, 64):
        cuts = hr.intervals(n)
        assert len(cuts) == n and cuts[0][0] == 0 and cuts[-1][1] == hr.UNITS
        assert all(hi == lo for (_, hi), (lo, _) in zip(cuts, cuts[1:]))
        assert {b for c in hr.intervals(2 * n) for b in c} >= {b for c in cuts for b in c}


def test_range_workers_cut_their_rows_by_household_and_keep_the_bytes(
        demo_years, tmp_path, monkeypatch):
    """The range workers cut a csv into the power of two of household ranges its size and
    the memory limit ask for (cut_ranges_for: 5.5 ranges' worth -> 8), one part per range
    and byte range (fixed intervals of the pseudonyms, named in the part): every part's
    ids lie in its interval, every range holds exactly the rows of its households that
    the one pass over the whole file checked (none lost, none twice), and the outputs are
    the bytes of that one pass, with the exact copies and the conflict of a key whose
    rows were checked by two workers."""
    from test_ingest import _hashes

    from povdyn.ingest import household_ranges

    raw = tmp_path / "raw"
    _one_register_with_copies_far_apart(demo_years, raw)
    whole = _register_parts(monkeypatch)
    one = ingest(raw, tmp_path / "one", progress=False)
    assert [household_ranges.interval_of_part(p) for p, _ in whole] == [
        (0, household_ranges.UNITS)]  # one part, not cut
    size = (raw / "register.csv").stat().st_size
    monkeypatch.setattr(household_ranges, "CSV_BYTES_PER_MEMORY", size / (5.5 * 10**9))
    monkeypatch.delenv("POVDYN_INGEST_MEMORY", raising=False)  # the default 1GB
    seen = _cut_in_workers(monkeypatch, None)
    cut = ingest(raw, tmp_path / "cut", progress=False)
    assert one.ok and cut.ok
    cuts = household_ranges.intervals(8)
    assert {household_ranges.interval_of_part(p) for p, _ in seen} == set(cuts)
    sources = {p.parent.parent.name for p, _ in seen}
    assert len(sources) > 3  # several byte ranges (workers' blocks)
    for part, rows in seen:
        lo, hi = household_ranges.interval_of_part(part)
        ids = rows["household_id"].dropna()
        assert len(ids) and ids.str.match(r"h_[0-9a-f]{16}$").all()
        assert (ids >= household_ranges.bound(lo)).all() if lo else True, part
        assert (ids < household_ranges.bound(hi)).all() if hi < household_ranges.UNITS \
            else True, part
    # each range's rows are the one pass's rows of its households, as many times each
    checked = whole[0][1]["household_id"]
    which = household_ranges.index_of(checked.to_numpy(), cuts)
    for i, interval in enumerate(cuts):
        in_parts = pd.concat([rows for p, rows in seen
                              if household_ranges.interval_of_part(p) == interval])
        assert sorted(in_parts["household_id"].dropna()) == sorted(
            checked[which == i].dropna()), interval
    assert cut.tables[0].duplicates_dropped == one.tables[0].duplicates_dropped == 7
    quarantine = pd.read_csv(tmp_path / "cut" / "quarantine.csv", dtype=str)
    assert quarantine["reason"].str.contains("different values").sum() == 6  # 3 keys x 2
    assert _hashes(tmp_path / "cut") == _hashes(tmp_path / "one")


def test_panel_sorted_from_the_cut_parts_range_by_range_keeps_the_bytes(
        demo_years, tmp_path, monkeypatch):
    """The steps across a household's rows done range by range straight from the
    workers' cut parts (repeated keys and exact copies, the register kind's previous
    review, panel.parquet's sort with each household's own 2025 commune, taken over
    its rows) give the bytes of one pass over every row, with keys whose copies two
    workers checked; a part holding rows of another range than its name says (a planted
    wrong cut) changes the panel, so the test sees a misrouted part."""
    from test_ingest import _hashes

    import povdyn.ingest as ingest_module

    raw = tmp_path / "raw"
    _one_register_with_copies_far_apart(demo_years, raw)
    one = ingest(raw, tmp_path / "one", progress=False)
    _cut_in_workers(monkeypatch, 8)
    read_cut = []
    real_views = ingest_module.register._range_views
    monkeypatch.setattr(ingest_module.register, "_range_views", lambda *a, **k: (
        read_cut.append((k.get("upto", "panel"), a[2])) or real_views(*a, **k)))
    monkeypatch.setattr(ingest_module.register, "_household_ranges",
                        lambda con, rows, columns, window, coded=frozenset(): 3)
    monkeypatch.setattr(ingest_module.register, "_key_buckets", lambda con, rows: 2)
    cut = ingest(raw, tmp_path / "cut", progress=False)
    assert one.ok and cut.ok and one.panel_rows == cut.panel_rows > 900
    # 3 ranges asked for the sort: 8 (CUT_SORT_SPARE 2, a power of two), each of the 8
    # cut intervals read alone; 2 for the key checks and the kind
    assert [len([i for u, i in read_cut if u == upto]) for upto in ("reg", "firsts", "panel")
            ] == [2, 2, 8]
    # a range whose sort runs out of memory is sorted again in halves: same bytes
    import duckdb

    real_reader, tries = ingest_module.register._sorted_reader, []

    def short_of_memory(con, sql):
        tries.append(sql)
        if len(tries) == 1:
            raise duckdb.OutOfMemoryException("Out of Memory Error: planted")
        return real_reader(con, sql)

    monkeypatch.setattr(ingest_module.register, "_sorted_reader", short_of_memory)
    read_cut.clear()
    halves = ingest(raw, tmp_path / "halves", progress=False)
    assert halves.ok and [i for u, i in read_cut if u == "panel"][:3] == [
        (0, 8192), (0, 4096), (4096, 8192)]  # halves of a cut part: read filtered
    assert _hashes(tmp_path / "halves") == _hashes(tmp_path / "one")
    monkeypatch.setattr(ingest_module.register, "_sorted_reader", real_reader)

    basis = pd.read_parquet(tmp_path / "one" / "panel.parquet", columns=["commune_2025_basis"])
    assert (basis["commune_2025_basis"] == "household").sum() > 50  # the own commune is taken
    assert _hashes(tmp_path / "cut") == _hashes(tmp_path / "one")

    # planted: the first cut part of the third interval (the second range's) renamed as
    # one of the first (the first range's)
    stage = ingest_module.run._register_stage

    def misrouted(con, spill, *args, **kwargs):
        from povdyn.ingest import household_ranges

        cuts = household_ranges.intervals(8)
        for i, part in enumerate(spill.parts["register"]):
            if household_ranges.interval_of_part(part) == cuts[2]:
                wrong = part.with_name(part.name.replace(
                    household_ranges.part_suffix(*cuts[2]),
                    household_ranges.part_suffix(*cuts[0])))
                part.rename(wrong)
                spill.parts["register"][i] = wrong
                spill.part_files[wrong] = spill.part_files.pop(part)
                break
        return stage(con, spill, *args, **kwargs)

    monkeypatch.setattr(ingest_module.run, "_register_stage", misrouted)
    wrong = ingest(raw, tmp_path / "wrong", progress=False)
    differ = {k for k, v in _hashes(tmp_path / "wrong").items()
              if _hashes(tmp_path / "one").get(k) != v}
    assert wrong.ok and differ and all(k.startswith("panel.parquet/period-") for k in differ)


def test_the_sort_carries_text_as_enum_codes_and_writes_the_same_bytes(
        demo_years, tmp_path, monkeypatch):
    """panel.parquet's sort casts its text columns to ENUMs of their values and back to
    text (_sort_enums, _sort_sql): the bytes are those of the sort of the text itself,
    with one sort of every row and with household ranges read from the cut parts. A value
    missing from its ENUM (planted) fails that sort before any row came out, and its rows
    are sorted again as text: the same bytes again."""
    from povdyn.ingest import register
    from test_ingest import _hashes

    raw = tmp_path / "raw"
    _one_register_with_copies_far_apart(demo_years, raw)
    sqls, real_reader, real_enums = [], register._sorted_reader, register._sort_enums
    monkeypatch.setattr(register, "_sorted_reader",
                        lambda con, sql: sqls.append(sql) or real_reader(con, sql))
    coded_columns = []
    monkeypatch.setattr(register, "_sort_enums", lambda *a, **k: coded_columns.append(
        real_enums(*a, **k)) or coded_columns[-1])
    coded = ingest(raw, tmp_path / "coded", progress=False)
    assert coded.ok and len(sqls) == 1 and "sort_enum_" in sqls[0]
    assert {"status", "province", "commune", "commune_2025", "commune_code",
            "commune_2025_basis"} <= set(coded_columns[0])
    assert "household_id" not in coded_columns[0]  # a sort key: sorted as text

    monkeypatch.setattr(register, "_sort_enums", lambda *a, **k: {})
    sqls.clear()
    text = ingest(raw, tmp_path / "text", progress=False)
    assert text.ok and len(sqls) == 1 and "sort_enum_" not in sqls[0]
    assert _hashes(tmp_path / "coded") == _hashes(tmp_path / "text")

    _cut_in_workers(monkeypatch, 8)
    monkeypatch.setattr(register, "_household_ranges",
                        lambda con, rows, columns, window, coded=frozenset(): 3)
    monkeypatch.setattr(register, "_sort_enums", real_enums)
    sqls.clear()
    ranged = ingest(raw, tmp_path / "ranged", progress=False)
    assert ranged.ok and len(sqls) == 8 and all("sort_enum_" in s for s in sqls)
    assert _hashes(tmp_path / "ranged") == _hashes(tmp_path / "text")

    def short(con, *args, **kwargs):  # planted: the status ENUM lacks 'near_poor'
        enums = real_enums(con, *args, **kwargs)
        con.execute(f"DROP TYPE {enums['status']}")
        con.execute(f"CREATE TYPE {enums['status']} AS ENUM ('poor')")
        return enums

    monkeypatch.setattr(register, "_sort_enums", short)
    sqls.clear()
    fallen = ingest(raw, tmp_path / "fallen", progress=False)
    assert fallen.ok and len(sqls) == 16  # each range: the coded sort, then the text one
    assert ["sort_enum_" in s for s in sqls] == [True, False] * 8
    assert _hashes(tmp_path / "fallen") == _hashes(tmp_path / "text")


def test_period_files_do_not_depend_on_how_the_sorted_stream_is_cut(tmp_path):
    """write_periods gets the same sorted rows in batches cut anywhere (household ranges
    of any number, DuckDB's batch sizes): the period files are the same bytes. pyarrow
    cuts data pages at its input chunks' boundaries, so a row group written from many
    chunks differed (the 3M demo's files under 1 GB and 256 MB)."""
    import hashlib

    from povdyn.ingest import by_period

    rng = np.random.default_rng(7)
    n = 150_000
    ids = np.sort(np.array([f"h_{v:016x}" for v in rng.integers(0, 2**63, n)]))
    table = pa.table({"household_id": ids, "income_pc_month": rng.normal(3e6, 1e6, n),
                      "_order": np.full(n, 2024, dtype=np.int64)})
    schema = pa.schema([pa.field("household_id", pa.string()),
                        pa.field("income_pc_month", pa.float64())])
    digests = set()
    for cut in (n, 1000, 77_777):
        folder = tmp_path / f"cut-{cut}"
        by_period.write_periods(folder, table.to_batches(max_chunksize=cut),
                                {"2024": schema}, {2024: "2024"}, {"2024"})
        digests.add(hashlib.sha256((folder / by_period.period_file("2024")).read_bytes())
                    .hexdigest())
    assert len(digests) == 1
