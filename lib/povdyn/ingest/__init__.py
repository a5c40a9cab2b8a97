"""Ingest: raw register exports -> validated, pseudonymised parquet. Nothing is lost.

`ingest(raw_dir, out_dir)` (CLI: `povdyn ingest RAW_DIR --out OUT_DIR`) reads every
csv / xlsx (every sheet) / parquet file under RAW_DIR, recursively, and writes

* `OUT/panel.parquet/`   the household-period panel (canonical columns, schema.py): a
                         folder of one parquet file per period (`period-2024.parquet`,
                         `period-2024Q3.parquet`), each sorted by household, and
                         `_povdyn.json` with the register kind ("lists" / "full"); pandas,
                         DuckDB, Spark and `povdyn.load_panel` read the folder (by_period)
* `OUT/support.parquet`  programme rolls (household_id, program, start_period, ...)
* `OUT/totals.parquet`   household totals per commune and review, when a totals table
                         (Tỉnh, Xã, Năm/Kỳ, Tổng số hộ) is among the inputs: province,
                         province_2025, commune (null: province total), period (the panel's
                         type; a year's total is its Q4 on a quarterly panel), households,
                         and each commune row's 2025 commune (commune_2025, commune_code,
                         old_commune_code, commune_2025_basis: writing.totals_communes_2025;
                         names it cannot place go to communes_unplaced.csv)
* `OUT/adoption.parquet` the commune programme adoption register, when one (Tỉnh, Xã,
                         Chương trình, Năm áp dụng) is among the inputs: province,
                         province_2025, district (null when not given), commune, program,
                         adoption_year (<NA>: never); the
                         event-study cohort (povdyn.programs.find_adoption)
* `OUT/quarantine.csv`   every rejected row: source_file, sheet, row, reason, values
* `OUT/ingest_summary.json` the counts below, per file and in total, and the register kind
                         (`register_kind`, `register_kind_by_province`, their counts).

Rules (issue 3 §5):

* A table is a register or a programme roll by its headers (schema.file_kind). Title
  rows above the header are skipped: the header is the row, among the first 30, with
  the most recognised column names. A list sheet without a period column takes its
  period from the title above the header ("DANH SÁCH ... NĂM 2025") or the sheet name
  ("2024", "2025Q3", "Quý 3/2025"); the summary says which (`period_source`), and rows
  with no period anywhere are quarantined with that reason. An `STT` column is ignored.
* The signature footer of official lists ("Người lập biểu", "(Ký, ghi rõ họ tên)", "Chủ
  tịch UBND xã", the date line, signers' names) is not data: from the first such row
  below the last data row to the end, rows are skipped and counted as `footer_rows`,
  like blank rows (cut_footer).
* Bad rows go to the quarantine with a reason naming the column; the rest load.
  For every table, rows in = rows loaded + rows quarantined + exact duplicates dropped
  (blank lines are counted apart). Row numbers are those a spreadsheet shows (header
  = its own row number, e.g. row 1); for parquet inputs, the 1-based record number.
* Duplicates of a household and period: an exact duplicate (every value equal) is
  dropped and counted; otherwise every copy is quarantined, the reason naming the
  columns that differ and where the other copies are. Rows whose period frequency
  differs from most of the register (a year among quarters) are quarantined too.
* `province` keeps the unit as recorded, in its canonical spelling ("Tỉnh Hà Giang",
  "ha giang" -> "Hà Giang"); `province_2025` is the province in force since July 2025
  (povdyn.geo, exact: provinces merged whole). An unknown province name sends the row
  to quarantine.
* A file that cannot be read (corrupt, wrong format, not a register) is reported by
  name; the others still load, and the summary is not ok (the CLI exits 1).
* Direct identifiers never reach OUT: household ids become keyed pseudonyms
  (privacy.pseudonymise; the same ones in the support rolls), names / ID-card numbers /
  phones / addresses are dropped, and columns the schema does not know are not copied
  (they could hold anything). The quarantine carries the same pseudonyms, never raw ids.
* Writes are atomic (temp file + os.replace) and deterministic: sorted rows, fixed row
  groups, no timestamps, so the same input gives the same bytes. While ingest runs, and
  after it fails, ingest_summary.json says "ok": false and why.
* Memory does not grow with the register (issue 11 §1): a csv is streamed in 4 MB
  blocks. A csv register is read once and checked in DuckDB as it streams
  (engine_checks): coded cells (period, status, province, commune, yes/no, household
  size...) are parsed once per distinct value by check_rows' own parsers as they first
  appear, ids pseudonymised with HMAC-SHA256 written in SQL, numbers read by Arrow;
  the last rows are held back until the end, where the signature footer is cut from
  them; rows any check could reject are flagged and only they go through check_batch,
  which words the reasons. That one pass guesses UTF-8 from the file's head and which
  yes/no columns are "x"-marked from the first rows: when a later byte, a malformed
  line, a column with too many distinct cells or the rest of the file says otherwise,
  the file is read again the exact way (a scan pass first: rows, footer, distinct
  cells; the encoding decided on the whole file). A csv register of PARALLEL_MIN_BYTES
  or more is cut at line ends into byte ranges that worker processes check with that
  same pass, one per core (parallel.py: POVDYN_INGEST_WORKERS; one process is started
  and forks the others once it has imported pandas, pyarrow and DuckDB); a file the
  ranges cannot read exactly (a quoted line end...) is read again the exact way. The
  workers run only while the file is read (each DuckDB within WORKER_MEMORY), the
  steps across all rows after them: the two never hold memory at once. A worker drops
  the csv pages it has read from the page cache (each byte is read once), so that a
  csv larger than memory does not push out the ranges not yet read nor the spill parts
  the later steps read, and lets pyarrow read only a few csv blocks ahead of its
  checks (pyarrow's own read-ahead of 32 blocks held ~240 MB more per worker). Other
  tables (workbooks, parquet, programme rolls, totals, csv files with malformed lines
  or other encodings) are checked in pandas in pieces of CHUNK_ROWS rows. Checked rows
  wait in parquet parts in a scratch folder beside the outputs. The steps across all
  rows (period frequency, exact duplicates, conflicts, register kind, sorting, writing
  panel.parquet and quarantine.csv) run in DuckDB with a memory limit (INGEST_MEMORY,
  POVDYN_INGEST_MEMORY; spilling to disk) and stream out in record batches. DuckDB's
  own spilling is not enough at every size (one GROUP BY household_id, period over the
  national register's 133M rows ran out of 1 GB; a lone sort of 24M rows ran out of
  256 MB), so memory is bounded by cutting the work: groupings and windows by
  household run in slices sized from the limit (register._key_buckets). The range
  workers write their rows already cut by household range (household_ranges: fixed
  intervals of the hex pseudonyms, named in each part's file), and then each slice is
  a household range reading only its own parts; otherwise each slice is a part of the
  hash range, scanning every row. panel.parquet's period files are one sort (by
  period, then household) of every loaded row when DuckDB sorts that many within its
  limit (register._household_ranges, from a measured sort of the register's row width:
  10M benchmark rows under the default 1 GB), else sorted in ranges of household_id:
  straight from the workers' cut parts, range by range (register._range_views), or,
  when most rows are not cut, through one unsorted parquet part per range written
  first (register._household_range_parts); a household's own 2025 commune is grouped
  from its post-merger rows within that range and joined to its rows (not a window
  over every column, twice the CPU; not a join of every row with every household of
  the register, which spilled 28 GB at national scale). The sorted batches are written
  by pyarrow (zstd) while DuckDB makes the next one in a thread (ahead.made_ahead):
  the same bytes, the two cores overlapped; by_period.write_periods cuts the stream
  into the period files, and when the panel is one sort compresses two files' row
  groups at once and writes a period's last row group as soon as the next period's
  rows come. The 2025 names are mapped (Python) while DuckDB counts the register kind.
  An incremental run checks across rows only the periods its new, changed or removed
  files touch and rewrites only those files (by_period). No SQL is built from paths or
  user text: files and values are passed through DuckDB's API and parameters, and only
  povdyn's own canonical column names reach SQL (_ident_sql).
* Key: privacy.load_key. A missing key file while OUT holds earlier data is an error
  (a new key would unlink every household from earlier quarters); `--new-key` starts
  afresh on purpose. An empty or short key is an error.
* Spreadsheet safety: text cells starting with = + - @ in quarantine.csv get a leading
  apostrophe (schema.spreadsheet_safe), so Excel shows them instead of running them.
* List-based registers (poor / near-poor rows only) are written as they are: reading
  absence as "not poor" is load_panel's job (absent_means="non_poor"), which it does when
  the recorded register kind is "lists" (register_kinds / classify_kind for the rule).

Modules: reading (raw tables), checking (one table in pandas, the reference),
engine_checks (a csv register in DuckDB), parallel (a large csv in byte ranges on
worker processes), register (checks across all rows, spill,
panel.parquet and quarantine.csv), by_period (panel.parquet's period files and the
incremental run: an added quarter rewrites only the periods it can change), households
(each household's periods, kept between runs: the household count and which period files
hold a household, without scanning them), splice (a period file's 2025 commune columns
replaced without rewriting its other columns), kinds (lists or full panel), writing,
cache (incremental runs), summary, run (the command).
"""
from __future__ import annotations

from .checking import check_batch, prepare_table
from .kinds import (FULL_PANEL_MIN_NON_POOR_SHARE, KIND_COUNTS, LIST_MIN_ROWS, classify_kind,
                    decide_kinds, register_kinds)
from .reading import RawTable, UnreadableFile, chunks, cut_footer, list_inputs, read_tables, \
    title_period
from .run import ingest
from .summary import IngestSummary, TableReport

__all__ = ["FULL_PANEL_MIN_NON_POOR_SHARE", "KIND_COUNTS", "LIST_MIN_ROWS", "IngestSummary",
           "RawTable", "TableReport", "UnreadableFile", "check_batch", "chunks",
           "classify_kind", "cut_footer", "decide_kinds", "ingest", "list_inputs",
           "prepare_table", "read_tables", "register_kinds", "title_period"]
