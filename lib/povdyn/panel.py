"""Load a household-period panel once, validated, as an Ibis table on DuckDB or Spark.

methods.md, "The register panel": one row per household per review period; periods have
one frequency (int year, or "YYYYQn"); "consecutive" means the next period of that
frequency, so every row gets an int ``period_index`` in which consecutive periods differ
by exactly 1 (povdyn.periods: 2025Q3 -> 2025*4+2). Removal rows (status NA,
``removal_reason`` set) are attrition, never exits.

``load_panel(source, absent_means="missing", frequency=None, engine=None)``

* ``source``: a parquet file or a folder of parquet files (a dataset, hive partitions
  allowed), a csv file, a pandas DataFrame, an Ibis table, or a Panel. Parquet is read
  as a view by the engine, never copied into pandas; csv and DataFrames go through
  ``povdyn.schema.validate_panel`` (header aliases, value parsing, every schema rule).
  For parquet and Ibis input the same rules are checked inside the engine: required
  columns, status values, status NA only on a removal row, removal reasons, one
  frequency of periods, one row per household and period. Each error names the
  problem and an example household/period.
* ``absent_means="non_poor"`` (list-based registers that list only poor and near-poor
  households): from a household's first appearance up to the panel's last period, a
  period in which it is absent from the list is a ``non_poor`` row, unless a removal
  row says it left (no rows are added from the removal period on). Only periods present
  in the panel are filled: a period with no list at all is no information. Added rows
  carry the other columns (province, weight, ...) of the household's latest listed row
  before them. Done as an engine-side expansion (households x periods), so it scales.
* ``frequency="year"`` on a quarterly panel: the annual view of the same data. Each year
  is represented by its last snapshot in the panel (Q4; for a year whose Q4 is not in the
  panel yet -- the current year -- the latest quarter there is, with a warning). A
  household without a row in that snapshot is not observed that year, except that a
  removal row anywhere in the year is kept as that year's removal (attrition is never
  lost). Periods become int years. ``frequency="quarter"`` on an annual panel is an
  error.

**Register kind** (issue 10, owners.md contract). A register is either a ``"full"``
panel (every household in every period) or ``"lists"`` (only the poor and near-poor
lists of each review, plus removals): ``"lists"`` means ``absent_means="non_poor"``.
Ingest records the kind in ``panel.parquet/_povdyn.json`` (the panel is a folder of
one file per period, ingest.by_period) and in ``ingest_summary.json`` beside it
(``"register_kind"``); ``load_panel`` reads it (that file, else a parquet file's
key-value metadata ``povdyn.register_kind``, else the summary; a source with none is a
full panel) unless ``register="lists"|"full"`` overrides it.
``Panel.register`` says which kind is in force.

**Household totals.** A poverty *rate* needs the number of all households, which a list
does not contain. ``totals.parquet`` beside the panel (columns ``province``,
``province_2025``, ``commune`` (null for a province total), ``period``, ``households``,
and from ingest each commune row's ``commune_2025``, ``commune_code``,
``old_commune_code`` and ``commune_2025_basis``: ingest.writing.totals_communes_2025)
is attached as ``Panel.totals`` (an Ibis table on the panel's engine), or pass
``totals=`` (a path or DataFrame). ``povdyn.stocks.status_shares`` uses it as the
denominator of list registers.
"""
from __future__ import annotations

import itertools
import json
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import ibis
import pandas as pd

from .engine import backend_name, connect, engine_name
from .errors import PeriodError, SchemaError
from .periods import frequency_and_index, label, parse_period

STATUSES = ("poor", "near_poor", "non_poor")
REMOVAL_REASONS = ("death", "migration", "merger", "split")
REQUIRED = ("household_id", "period", "status")
ABSENT_MEANS = ("missing", "non_poor")
REGISTERS = ("full", "lists")
# the register kind's reading of an absent household (module docstring)
ABSENT_MEANS_OF = {"full": "missing", "lists": "non_poor"}
REGISTER_KIND_KEY = b"povdyn.register_kind"
PANEL_KIND_FILE = "_povdyn.json"  # ingest's panel.parquet/ folder: its register kind
TOTALS_FILE = "totals.parquet"
SUMMARY_FILE = "ingest_summary.json"
_names = itertools.count()


def as_list(by) -> list[str]:
    """A grouping argument as a list of column names: None is [], a name is [name]
    (so that "area" and ["area"] are one grouping, and one remembered result)."""
    if by is None:
        return []
    if isinstance(by, str):
        return [by]
    return list(by)


@dataclass
class Panel:
    """A validated household-period panel held as an Ibis table.

    ``table`` has the canonical columns plus int ``period_index`` (consecutive periods
    differ by 1) and always a ``removal_reason`` column. ``periods`` are the canonical
    labels present (sorted), ``period_indices`` their indices. ``con`` is the Ibis
    backend that executes it; ``engine`` its name ("duckdb" or "spark")."""

    table: object
    con: object
    frequency: str
    absent_means: str
    periods: list
    period_indices: list
    source: object = field(default=None, repr=False)
    requested_frequency: str | None = None
    # "full" or "lists" (module docstring); lists <=> absent_means == "non_poor"
    register: str = "full"
    # household totals per (province, commune, period) as an Ibis table, or None
    totals: object = field(default=None, repr=False)
    # the region this view is restricted to (Panel.region), None = the whole register
    region_name: str | None = None
    # the metrics' household pivot, cached per (by, weight) (povdyn.dynamics._History)
    _histories: dict = field(default_factory=dict, repr=False)
    # metric results already computed (Panel.remembered); shared by the views of the
    # same rows (pagedata.PageData.panel_for); a view of other rows starts its own, so
    # that no result keeps another view's (cached) table alive
    _results: dict = field(default_factory=dict, repr=False)

    @property
    def engine(self) -> str:
        return backend_name(self.con)

    @property
    def columns(self) -> list[str]:
        return list(self.table.columns)

    def execute(self, expr) -> pd.DataFrame:
        """Run an Ibis expression built on this panel's table on its engine."""
        return self.con.execute(expr)

    def to_pandas(self, columns=None, where=None) -> pd.DataFrame:
        """Rows of the panel as a canonical pandas DataFrame (plus ``period_index``),
        sorted by household and period -- only ``columns`` (default all) and only the
        rows where ``where`` holds: an Ibis boolean expression on ``self.table``, or a
        callable taking the table and returning one (e.g. households ever poor, for the
        survival fitters). Fitters pull only what they need; the register as a whole
        is never meant to become pandas."""
        t = self.table
        if where is not None:
            t = t.filter(where(t) if callable(where) else where)
        if columns is not None:
            keep = list(dict.fromkeys([*columns, "household_id", "period_index"]))
            missing = [c for c in keep if c not in t.columns]
            if missing:
                raise SchemaError(f"to_pandas: the panel has no column(s) {missing}; "
                                  f"available: {list(t.columns)}")
            t = t.select(*keep)
        df = self.execute(t.order_by(["household_id", "period_index"]))
        return df.reset_index(drop=True)

    def remembered(self, key, compute):
        """``compute()`` once per result: a metric asked again with the same arguments
        (``key``) on the same rows -- a report page reads the same exit rates for its
        headline, removals and targets -- is not run again. Keyed by the view's rows
        (its Ibis expression), totals, register kind and frequency as well, so views
        with other rows never share a result. A copy is returned each time."""
        full = self._result_key(key)
        if full not in self._results:
            self._results[full] = compute()
        return self._results[full].copy()

    def remember(self, key, result) -> None:
        """Hand this view a result computed elsewhere, under the key ``remembered`` uses:
        a report page's slice of the run-wide tables (povdyn.pagedata.run_wide_tables),
        which are the same numbers computed once for every province."""
        self._results[self._result_key(key)] = result

    def _result_key(self, key) -> tuple:
        return (self.table.op(), None if self.totals is None else self.totals.op(),
                self.register, self.frequency, key)

    def region(self, name) -> "Panel":
        """The view of one report region: ``"national"`` (or None) is the whole register;
        any other name selects the households whose 2025 province (``province_2025``,
        else ``province``) is ``name`` -- diacritics, case and prefixes such as "Tỉnh"
        ignored (povdyn.geo.normalise_name). An unknown name is an error listing the
        known ones. The household totals are restricted the same way."""
        if name in (None, "national", "all"):
            return self
        from .geo import normalise_name

        col = "province_2025" if "province_2025" in self.columns else "province"
        if col not in self.columns:
            raise SchemaError(f"region {name!r}: the panel has no province column")
        # remembered: a report kernel selects ~17 provinces from one held register
        known = [v for v in self.remembered(("region_names", col), lambda: self.execute(
                 self.table.select(col).distinct()))[col].tolist() if not pd.isna(v)]
        match = [v for v in known if normalise_name(v) == normalise_name(name)]
        if not match:
            raise SchemaError(f"region {name!r} matches no {col} in the panel; known: "
                              f"{', '.join(sorted(map(str, known)))}")
        table = self.table.filter(self.table[col].isin(match))
        totals = self.totals
        if totals is not None:
            tcol = col if col in totals.columns else "province"
            totals = totals.filter(totals[tcol].isin(match))
        return replace(self, table=table, totals=totals, region_name=match[0],
                       _histories={}, _results={})

    def cached(self) -> "Panel":
        """This view with its rows held by the engine while the returned Panel lives:
        a temporary table on DuckDB, a cached DataFrame on Spark (Ibis ``Table.cache``;
        released when the Panel is garbage-collected). For a report page, which runs some
        thirty queries over one region: each then reads the region's rows from memory,
        not the parquet file through the region filter, the period parsing and (lists)
        the expansion of absent households -- and each compiles from one table name
        instead of that whole chain. Numbers do not change: the rows are the same."""
        # Table.cache() would pick the backend from the expression, which for a table
        # built on a DataFrame (an Ibis memtable) is Ibis' default connection, not
        # this Panel's; the backend's own cache handler (what Table.cache() calls) is
        # told which one. The household totals are a small in-memory table already.
        return replace(self, table=self.con._cached_table(self.table), _histories={},
                       _results={})

    def __len__(self) -> int:
        return int(self.execute(self.table.count()))


# --------------------------------------------------------------------------- loading
def load_panel(source, absent_means: str | None = None, frequency: str | None = None,
               engine: str | None = None, check_duplicates: bool = False,
               register: str | None = None, totals=None) -> Panel:
    """Read and validate a register panel (module docstring); returns a ``Panel``.

    Duplicate household-periods: pandas/csv input is fully checked by the schema. For
    parquet and Ibis input the check rides on the metrics' one pass: the household pivot
    every metric builds counts each household's rows, and a household with two rows in
    a period stops the metric with an example (nothing is counted silently). A separate
    full scan at load costs as much as a metric at national scale (a group-by over
    every household-period); ``check_duplicates=True`` runs it here anyway.

    ``engine`` None means: the Panel's own engine when ``source`` is a Panel or an Ibis
    table, else ``povdyn.settings().engine`` (DuckDB by default).

    ``register`` None means the recorded kind (module docstring; a Panel keeps its own);
    ``"lists"`` / ``"full"`` override it. ``absent_means`` is the older spelling of the
    same choice ("non_poor" = lists, "missing" = full); giving both in contradiction is
    an error. ``totals``: a path or DataFrame of household totals; None = the
    ``totals.parquet`` beside a parquet panel, if there is one; False = none. ``source``
    may be ingest's output folder (its ``panel.parquet`` is read)."""
    if register is not None and register not in REGISTERS:
        raise SchemaError(f"register={register!r}: use 'full' (every household in every "
                          "period) or 'lists' (poor and near-poor lists plus removals)")
    if absent_means is not None and absent_means not in ABSENT_MEANS:
        raise SchemaError(f"absent_means={absent_means!r}: use 'missing' (a full panel: "
                          "absence is unknown) or 'non_poor' (a list-based register)")
    if register is not None and absent_means is not None and ABSENT_MEANS_OF[register] != absent_means:
        raise SchemaError(f"register={register!r} reads absence as "
                          f"{ABSENT_MEANS_OF[register]!r}, not absent_means={absent_means!r}")
    if register is None and absent_means is not None:
        register = "lists" if absent_means == "non_poor" else "full"
    if frequency not in (None, "year", "quarter"):
        raise PeriodError(f"frequency={frequency!r}: use None (as recorded), 'year' or 'quarter'")

    if isinstance(source, (str, Path)) and (Path(source) / "panel.parquet").exists():
        # an ingest output folder holds support, totals and adoption tables beside the
        # panel: read its panel (and the totals and register kind recorded with it)
        source = Path(source) / "panel.parquet"
    if isinstance(source, Panel):
        register = register or source.register
        same_engine = engine is None or engine_name(engine) == source.engine
        same_reading = (register == source.register and totals is None
                        and frequency in (None, source.frequency, source.requested_frequency))
        if same_engine and same_reading:
            return source
        if source.source is None:
            raise SchemaError("this Panel was built from an Ibis table; it cannot be re-read "
                              "on another engine or with other options: load the source again")
        again = load_panel(source.source, frequency=frequency,
                           engine=engine or (source.engine if same_engine else None),
                           check_duplicates=check_duplicates, register=register,
                           totals=totals if totals is not None else _totals_frame(source))
        return again.region(source.region_name)

    if isinstance(source, ibis.Table):
        try:
            con = source._find_backend()
        except Exception:  # an unbound memtable
            con = connect(engine)
        table, where, origin = source, "Ibis table", None
    else:
        con = connect(engine)
        table, where, origin = _read(source, con)
    register = register or recorded_register(source)
    panel = _build(table, con, where, ABSENT_MEANS_OF[register], frequency, origin,
                   check_duplicates and not isinstance(source, pd.DataFrame))
    panel.register = register
    if totals is None:
        totals = _totals_beside(source)
    if totals is not None and totals is not False:
        panel.totals = _read_totals(totals, con, panel)
    return panel


def as_panel(source, engine: str | None = None) -> Panel:
    """The one adapter every public metric uses: a Panel as it is (its register kind,
    totals, region and frequency kept; re-read only to move it to another ``engine``),
    or a DataFrame, an Ibis table or a path read by ``load_panel`` (which finds the
    recorded register kind and the totals beside a file)."""
    if isinstance(source, Panel):
        return source if engine is None else load_panel(source, engine=engine)
    if isinstance(source, (pd.DataFrame, ibis.Table, str, Path)):
        return load_panel(source, engine=engine)
    raise SchemaError(f"expected a Panel, a pandas DataFrame, an Ibis table or a path, "
                      f"got {type(source).__name__}")


# --------------------------------------------------------------------------- register kind
def _parquet_files(path: Path) -> list[Path]:
    return sorted(path.rglob("*.parquet")) if path.is_dir() else [path]


def recorded_register(source) -> str:
    """The register kind ingest recorded for ``source`` (module docstring): the
    parquet key-value metadata ``povdyn.register_kind``, else ``register_kind`` of
    ``ingest_summary.json`` beside the file; ``"full"`` when nothing is recorded (a
    DataFrame, an Ibis table, a csv)."""
    if not isinstance(source, (str, Path)):
        return "full"
    path = Path(source)
    if path.is_dir() and (path / PANEL_KIND_FILE).is_file():  # ingest's period files
        kind = json.loads((path / PANEL_KIND_FILE).read_text(encoding="utf-8")).get(
            "register_kind")
        if kind:
            return _checked_kind(kind, path / PANEL_KIND_FILE)
    if path.suffix.lower() == ".parquet" or path.is_dir():
        import pyarrow.parquet as pq

        for f in _parquet_files(path)[:1]:
            meta = pq.read_schema(f).metadata or {}
            kind = meta.get(REGISTER_KIND_KEY)
            if kind is not None:
                return _checked_kind(kind.decode(), f)
    for summary in _beside(path, SUMMARY_FILE):
        kind = json.loads(summary.read_text(encoding="utf-8")).get("register_kind")
        if kind is not None:
            return _checked_kind(kind, summary)
    return "full"


def _beside(path: Path, name: str) -> list[Path]:
    """The file `name` beside a panel: in its folder (a file's, or a folder of parquet
    files given as the data folder), or beside ingest's panel.parquet/ folder."""
    places = [path, path.parent] if path.is_dir() else [path.parent]
    if path.is_dir() and path.suffix.lower() != ".parquet":
        places = [path]
    return [place / name for place in places if (place / name).is_file()][:1]


def _checked_kind(kind: str, where) -> str:
    if kind not in REGISTERS:
        raise SchemaError(f"{where}: register kind {kind!r} is neither 'full' nor 'lists' "
                          "(mixed kinds must be resolved at ingest)")
    return kind


# --------------------------------------------------------------------------- household totals
TOTALS_COLUMNS = ("province", "province_2025", "commune", "period", "households")


def _totals_beside(source):
    if not isinstance(source, (str, Path)):
        return None
    found = _beside(Path(source), TOTALS_FILE)
    return found[0] if found else None


def _totals_frame(panel: Panel):
    """The totals of a Panel as pandas (to re-read them with the panel), or None."""
    if panel.totals is None:
        return None
    return panel.execute(panel.totals)


def _read_totals(totals, con, panel: Panel):
    """The totals as an Ibis table on ``con`` with canonical columns and ``period``
    of the panel's type; checked (columns, periods of the panel's frequency, counts)."""
    df = pd.read_parquet(totals) if isinstance(totals, (str, Path)) else pd.DataFrame(totals)
    where = str(totals) if isinstance(totals, (str, Path)) else "totals"
    missing = [c for c in ("period", "households") if c not in df.columns]
    if missing or not ({"province", "province_2025"} & set(df.columns)):
        raise SchemaError(f"{where}: household totals need columns period, households and "
                          f"province or province_2025; found {list(df.columns)}")
    df = df.copy()
    for c in ("province", "province_2025", "commune"):
        if c not in df.columns:
            df[c] = None
        df[c] = df[c].astype(object).where(df[c].notna(), None)
    df["households"] = pd.to_numeric(df["households"], errors="coerce")
    if df["households"].isna().any() or (df["households"] < 0).any():
        raise SchemaError(f"{where}: column households must be a whole number >= 0 on every row")
    df["households"] = df["households"].astype("int64")
    # a total given for a year is that year's annual review: Q4 on a quarterly panel; on
    # an annual panel (or the annual view of a quarterly one) a Q4 total is that year's
    # review and totals of other quarters describe no review, so they do not apply
    index, keep = [], []
    for v in df["period"]:
        freq, i = parse_period(v)
        if freq == "year" and panel.frequency == "quarter":
            i = i * 4 + 3
        elif freq == "quarter" and panel.frequency == "year":
            keep.append(i % 4 == 3)
            index.append(int(i // 4))
            continue
        keep.append(True)
        index.append(int(i))
    if len(df) and not any(keep):
        raise SchemaError(f"{where}: no annual-review (Q4) total for an annual panel; "
                          f"found only {sorted(set(map(str, df['period'])))[:5]}")
    df["period_index"] = pd.Series(index, dtype="int64", index=df.index)
    df = df[pd.Series(keep, index=df.index)].copy()
    index = df["period_index"].tolist()
    df["period"] = [label(panel.frequency, i) for i in index]
    if panel.frequency == "year":
        df["period"] = df["period"].astype("int64")
    # the 2025 commune of each commune row, when ingest mapped it (stocks.commune_totals)
    mapped = [c for c in ("commune_2025", "commune_code", "old_commune_code", "commune_2025_basis")
              if c in df.columns]
    df = df[["province", "province_2025", "commune", "period", "period_index", "households", *mapped]]
    for c in mapped:
        df[c] = df[c].astype(object).where(df[c].notna(), None).astype("string")
    return ibis.memtable(df)  # small: one row per commune and review


def _read(source, con):
    """Ibis table for a path or DataFrame, the name used in messages, and what to keep
    for re-reading on another engine."""
    if isinstance(source, pd.DataFrame):
        return _from_pandas(source, "DataFrame"), "DataFrame", source
    path = Path(source)
    if not path.exists():
        raise SchemaError(f"{path}: no such file or folder (give a parquet file, a folder of "
                          "parquet files, or a csv file)")
    suffix = path.suffix.lower()
    if path.is_dir() or suffix == ".parquet":
        if path.is_dir() and not any(path.rglob("*.parquet")):
            raise SchemaError(f"{path}: folder has no .parquet files")
        name = f"povdyn_panel_{next(_names)}"
        if backend_name(con) == "duckdb":
            pattern = str(path / "**" / "*.parquet") if path.is_dir() else str(path)
            table = con.read_parquet(pattern, table_name=name, hive_partitioning=path.is_dir(),
                                     union_by_name=True)
        else:
            table = con.read_parquet(str(path), table_name=name)
        return table, str(path), str(path)
    if suffix == ".csv":
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""],
                         encoding="utf-8-sig")
        return _from_pandas(df, str(path)), str(path), str(path)
    raise SchemaError(f"{path}: cannot read a panel from a {suffix or 'file without suffix'} "
                      "(use .parquet, a folder of parquet, or .csv)")


def _from_pandas(df: pd.DataFrame, where: str):
    """A DataFrame validated by povdyn.schema.validate_panel, as an Ibis memtable."""
    from .schema import validate_panel

    if len(df) == 0:
        raise SchemaError(f"{where}: the panel has no rows (columns {list(df.columns)[:12]}); "
                          "ingest the registers first (povdyn ingest) or check the filter used")
    good = validate_panel(df.drop(columns=["period_index"], errors="ignore"), source=where)
    if "removal_reason" not in good.columns:
        good["removal_reason"] = pd.Series([None] * len(good), dtype=object)
    # nullable extension dtypes (Int64, boolean) -> plain numpy/object for the engines
    for col in good.columns:
        if isinstance(good[col].dtype, pd.api.extensions.ExtensionDtype):
            if good[col].isna().any():
                good[col] = good[col].astype(object).where(good[col].notna(), None)
            else:
                good[col] = good[col].to_numpy(dtype=good[col].dtype.numpy_dtype)
    return ibis.memtable(good)


def _build(table, con, where, absent_means, frequency, origin, check_duplicates=True) -> Panel:
    table, values = _check_in_engine(table, con, where)
    table, freq, index_of = _with_period_index(table, con, where, values, check_duplicates)
    indices = sorted(set(index_of.values()))
    if absent_means == "non_poor":  # adds rows only in periods the panel has
        table = _expand_lists(table, indices, freq)
    if frequency == "year" and freq == "quarter":
        table = _annual_view(table, indices)
        freq = "year"
        indices = sorted({i // 4 for i in indices})
    elif frequency == "quarter" and freq == "year":
        raise PeriodError(f"{where}: the panel is annual; it cannot be read quarterly")
    return Panel(table=table, con=con, frequency=freq, absent_means=absent_means,
                 periods=[label(freq, i) for i in indices], period_indices=indices,
                 source=origin, requested_frequency=frequency)


# --------------------------------------------------------------------------- checks
def _example(con, table, cond, cols=("household_id", "period")) -> list[dict]:
    rows = con.execute(table.filter(cond).select(*cols).limit(3))
    return rows.to_dict("records")


def _check_in_engine(table, con, where):
    """The schema rules, checked by the engine: one small summary query (distinct
    status x removal reason x period with counts) and one duplicate check. Examples of
    offending rows are fetched only when something is wrong."""
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        raise SchemaError(f"{where}: missing required column(s) {missing}; found "
                          f"{list(table.columns)[:20]}. Needed: household_id, period, status.")
    if "removal_reason" not in table.columns:
        table = table.mutate(removal_reason=ibis.null(str))
    table = table.mutate(household_id=table.household_id.cast(str),
                         status=table.status.cast(str), removal_reason=table.removal_reason.cast(str))
    summary = con.execute(table.group_by(["status", "removal_reason", "period"])
                          .aggregate(n=ibis._.count()))
    if summary.empty:
        raise SchemaError(f"{where}: the panel has no rows; ingest the registers first "
                          "(povdyn ingest) or check the filter used")
    bad = sorted({str(s) for s in summary["status"].dropna() if s not in STATUSES})
    if bad:
        ex = _example(con, table, table.status.isin(bad))
        raise SchemaError(f"{where}: column status has unknown value(s) {bad[:5]}, e.g. {ex}; "
                          f"allowed: {list(STATUSES)} (empty only on a removal row)")
    bad = sorted({str(s) for s in summary["removal_reason"].dropna() if s not in REMOVAL_REASONS})
    if bad:
        ex = _example(con, table, table.removal_reason.isin(bad))
        raise SchemaError(f"{where}: column removal_reason has unknown value(s) {bad[:5]}, "
                          f"e.g. {ex}; allowed: {list(REMOVAL_REASONS)}")
    if (summary["status"].isna() & summary["removal_reason"].isna()).any():
        ex = _example(con, table, table.status.isnull() & table.removal_reason.isnull())
        raise SchemaError(f"{where}: column status is empty on a row that is not a removal "
                          f"row (no removal_reason), e.g. {ex}; give a status or a removal reason")
    return table, list(pd.unique(summary["period"]))


def _with_period_index(table, con, where, values, check_duplicates=True):
    """Add int ``period_index``; rewrite ``period`` in canonical form; reject mixed
    frequencies and duplicate household-periods. ``values``: the distinct periods."""
    if any(pd.isna(v) for v in values):
        ex = _example(con, table, table.period.isnull(), ("household_id", "period"))
        raise SchemaError(f"{where}: column period is empty on some rows, e.g. {ex}")
    try:
        freq, idx = frequency_and_index(values)
    except PeriodError as exc:
        parsed = {v: parse_period(v)[0] for v in values}
        quarters = [v for v, f in parsed.items() if f == "quarter"]
        ex = _example(con, table, table.period.cast(str).isin([str(v) for v in quarters]))
        raise SchemaError(f"{where}: column period: {exc}. Quarterly rows e.g. {ex}") from None
    index_of = {v: int(i) for v, i in zip(values, idx)}
    if table.period.type().is_integer():
        table = table.mutate(period_index=table.period.cast("int64"), period=table.period.cast("int64"))
    else:
        text = table.period.cast(str)
        index = ibis.cases(*[(text == str(v), i) for v, i in index_of.items()])
        canon = ibis.cases(*[(text == str(v), label(freq, i)) for v, i in index_of.items()])
        if freq == "year":
            table = table.mutate(period_index=index.cast("int64"), period=index.cast("int64"))
        else:
            table = table.mutate(period_index=index.cast("int64"), period=canon)
    if not check_duplicates:
        return table, freq, index_of
    dup = (table.group_by(["household_id", "period_index"]).aggregate(n=ibis._.count())
           .filter(ibis._.n > 1))
    rows = con.execute(dup.limit(3))
    if len(rows):
        ex = [{"household_id": r.household_id, "period": label(freq, int(r.period_index)),
               "rows": int(r.n)} for r in rows.itertuples()]
        raise SchemaError(f"{where}: some households have more than one row in a period "
                          f"(columns household_id, period), e.g. {ex}. Keep one row per "
                          "household per period.")
    return table, freq, index_of


# --------------------------------------------------------------------------- list-based
def _expand_lists(table, period_indices: list[int], freq: str):
    """absent_means="non_poor": add a non_poor row for every panel period in which a
    listed household is absent, from its first appearance until its removal (exclusive)
    or the panel's last period. Added rows copy the other columns of the household's
    latest listed row before them."""
    last = max(period_indices)
    periods = ibis.memtable({"_p": period_indices})
    bounds = table.group_by("household_id").aggregate(
        _first=table.period_index.min(),
        _removed_at=table.period_index.min(where=table.removal_reason.notnull()),
    )
    grid = bounds.cross_join(periods).filter(
        ibis._._p >= ibis._._first, ibis._._p <= ibis.coalesce(ibis._._removed_at - 1, last))
    grid = grid.select("household_id", period_index=ibis._._p)
    absent = grid.anti_join(table, ["household_id", "period_index"])
    # the latest listed period before each absent period: a running max over the
    # household's listed and absent periods in order
    stacked = ibis.union(
        table.select("household_id", "period_index", _listed=table.period_index),
        absent.mutate(_listed=ibis.null("int64")),
    )
    running = ibis.cumulative_window(group_by="household_id", order_by="period_index")
    stacked = stacked.mutate(_source=stacked._listed.max().over(running))
    gaps = stacked.filter(stacked._listed.isnull()).select(
        _h="household_id", _pi="period_index", _source="_source")
    filled = gaps.join(table, [gaps._h == table.household_id, gaps._source == table.period_index])
    period_label = (filled._pi if freq == "year"
                    else ibis.cases(*[(filled._pi == i, label(freq, i)) for i in period_indices]))
    replace = {"period": period_label.cast(table.period.type()), "period_index": filled._pi,
               "status": ibis.literal("non_poor"), "removal_reason": ibis.null(str)}
    filled = filled.select(*[replace.get(c, filled[c]).name(c) for c in table.columns])
    return ibis.union(table, filled)


# --------------------------------------------------------------------------- annual view
def _annual_view(table, period_indices: list[int]):
    """frequency="year": each year's last quarterly snapshot (module docstring)."""
    by_year: dict[int, int] = {}
    for i in period_indices:
        by_year[i // 4] = max(by_year.get(i // 4, i), i)
    partial = {y: f"Q{i % 4 + 1}" for y, i in by_year.items() if i % 4 != 3}
    if partial:
        warnings.warn(f"frequency='year': no Q4 snapshot for {sorted(partial)}; those years "
                      f"are read at their latest quarter {partial} (a partial year)",
                      stacklevel=3)
    snapshot = table.period_index.isin(sorted(by_year.values()))
    kept = table.filter(snapshot | table.removal_reason.notnull())
    year = (kept.period_index // 4).cast("int64")
    return kept.mutate(period=year, period_index=year)
