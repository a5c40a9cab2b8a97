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
"""
from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass, field
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
_names = itertools.count()


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
    # the metrics' household pivot, cached per (by, weight) (povdyn.dynamics._History)
    _histories: dict = field(default_factory=dict, repr=False)

    @property
    def engine(self) -> str:
        return backend_name(self.con)

    @property
    def columns(self) -> list[str]:
        return list(self.table.columns)

    def execute(self, expr) -> pd.DataFrame:
        """Run an Ibis expression built on this panel's table on its engine."""
        return self.con.execute(expr)

    def to_pandas(self) -> pd.DataFrame:
        """The panel as a canonical pandas DataFrame (plus ``period_index``), sorted by
        household and period. Meant for small panels: metrics never need it."""
        df = self.execute(self.table.order_by(["household_id", "period_index"]))
        return df.reset_index(drop=True)

    def __len__(self) -> int:
        return int(self.execute(self.table.count()))


# --------------------------------------------------------------------------- loading
def load_panel(source, absent_means: str = "missing", frequency: str | None = None,
               engine: str | None = None, check_duplicates: bool = False) -> Panel:
    """Read and validate a register panel (module docstring); returns a ``Panel``.

    Duplicate household-periods: pandas/csv input is fully checked by the schema. For
    parquet and Ibis input the check rides on the metrics' one pass: the household pivot
    every metric builds counts each household's rows, and a household with two rows in
    a period stops the metric with an example (nothing is counted silently). A separate
    full scan at load costs as much as a metric at national scale (a group-by over
    every household-period); ``check_duplicates=True`` runs it here anyway.

    ``engine`` None means: the Panel's own engine when ``source`` is a Panel or an Ibis
    table, else ``povdyn.settings().engine`` (DuckDB by default)."""
    if absent_means not in ABSENT_MEANS:
        raise SchemaError(f"absent_means={absent_means!r}: use 'missing' (a full panel: "
                          "absence is unknown) or 'non_poor' (a list-based register)")
    if frequency not in (None, "year", "quarter"):
        raise PeriodError(f"frequency={frequency!r}: use None (as recorded), 'year' or 'quarter'")

    if isinstance(source, Panel):
        same_engine = engine is None or engine_name(engine) == source.engine
        same_reading = (absent_means == source.absent_means
                        and frequency in (None, source.frequency, source.requested_frequency))
        if same_engine and same_reading:
            return source
        if source.source is None:
            raise SchemaError("this Panel was built from an Ibis table; it cannot be re-read "
                              "on another engine or with other options: load the source again")
        return load_panel(source.source, absent_means=absent_means, frequency=frequency,
                          engine=engine or (source.engine if same_engine else None),
                          check_duplicates=check_duplicates)

    if isinstance(source, ibis.Table):
        try:
            con = source._find_backend()
        except Exception:  # an unbound memtable
            con = connect(engine)
        table, where, origin = source, "Ibis table", None
    else:
        con = connect(engine)
        table, where, origin = _read(source, con)
    return _build(table, con, where, absent_means, frequency, origin,
                  check_duplicates and not isinstance(source, pd.DataFrame))


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
