"""Flow metrics: exits, entries (relapse vs newly poor), relapse within k, transitions.

Every metric follows methods.md, "Flow metrics", and is defined once, here. Each is one
Ibis expression run by the panel's engine (DuckDB by default, Spark with
``engine="spark"``); only the small aggregated table comes back, as pandas.

How the engine sees a panel: one *history row per household* (a pivot of its rows by
period): the code of its status in every period of the panel (1 poor, 2 near-poor,
3 non-poor, 0 removal row, NULL not observed) and its grouping columns and weight in
every period. A transition into period t exists only when the panel has period t-1 and
the household has a status there -- so a gap in a household's record (seen in 2021 and
2023) gives no 2021->2022 or 2022->2023 transition, by construction (no LAG over rows).
One grouped aggregation over the panel, then cheap column arithmetic. On DuckDB the
pivot is kept (a temporary table) while the Panel lives and reused by every metric with
the same ``by``/``weight``; so load a Panel once and call several metrics on it.

Conventions used by every metric (the docstrings repeat them where they matter):

* ``period`` is the destination period t of a transition (``exit_period`` for relapse).
* Grouping columns (``by``) are read where the population at risk is defined: at t-1 for
  exit rates and the transition matrix (where the household was poor / near-poor), at t
  for entries (where it became poor) and at the exit period for relapse cohorts.
  The same for ``weight``.
* Removal rows are attrition, never exits: a household with the origin status at t-1
  whose removal row is at t is counted in ``removed`` and not in ``at_risk``.
* With ``weight`` (e.g. household_size for person-level rates) the count columns are sums
  of weights, and ``n_<column>`` columns keep the unweighted household counts (for
  small-cell rules). Intervals are in povdyn.intervals: Wilson for plain proportions;
  weighted rates and rates pooled over periods (``pool_periods=True``, where a household
  can contribute several events) use the household-clustered linearised variance.
"""
from __future__ import annotations

import functools
import inspect
import itertools
import os
import weakref
from functools import reduce

import ibis
import numpy as np
import pandas as pd

from .errors import SchemaError
from .intervals import proportion_interval
from .panel import Panel, as_list, as_panel
from .periods import label

POOR, NEAR_POOR, NON_POOR, REMOVED = 1, 2, 3, 0
CODE = {"poor": POOR, "near_poor": NEAR_POOR, "non_poor": NON_POOR}
NAME = {v: k for k, v in CODE.items()}
OBSERVED = (POOR, NEAR_POOR, NON_POOR)


# =========================================================================== input


def _panel(panel, engine=None) -> Panel:
    """A Panel from a Panel, a DataFrame, an Ibis table or a path (povdyn.panel.as_panel)."""
    return as_panel(panel, engine)


def _remembered(metric):
    """A public metric whose result is remembered by its Panel (``Panel.remembered``):
    computed once per panel view and arguments. Same signature and docstring. The key is
    the arguments as the metric reads them (defaults filled in, ``by`` as a list): a
    page's headline asks ``exit_rates(panel)`` and its removals ``exit_rates(panel,
    by=None, from_status="poor")``, the same table, which was computed twice."""
    signature = inspect.signature(metric)

    def result_key(*args, **kwargs) -> tuple:
        """The key of this metric's result for these arguments (without the panel)."""
        bound = signature.bind(None, *args, **kwargs)
        bound.apply_defaults()
        arguments = {k: v for k, v in bound.arguments.items() if k not in ("panel", "engine")}
        if "by" in arguments:
            arguments["by"] = as_list(arguments["by"])
        return (metric.__name__, repr(sorted(arguments.items())))

    @functools.wraps(metric)
    def wrapper(panel, *args, engine: str | None = None, **kwargs):
        panel = _panel(panel, engine)
        return panel.remembered(result_key(*args, **kwargs), lambda: metric(panel, *args, **kwargs))
    wrapper.result_key = result_key
    return wrapper


def _check_columns(panel: Panel, by: list[str], weight: str | None):
    reserved = {"household_id", "period", "period_index", "status", "removal_reason"}
    for col in by:
        if col not in panel.columns:
            available = [c for c in panel.columns if c not in reserved]
            raise SchemaError(f"by: the panel has no column {col!r}; available columns: "
                              f"{available}")
        if col in reserved:
            raise SchemaError(f"by: {col!r} cannot be a grouping column (it defines the flows); "
                              "every table is already per period")
    if weight is not None and weight not in panel.columns:
        raise SchemaError(f"weight: the panel has no column {weight!r}; available columns: "
                          f"{[c for c in panel.columns if c not in reserved]}")


class _History:
    """The one-row-per-household pivot of a panel (module docstring), and its view
    "relative to a destination period t": the pivot cross-joined with the list of
    destination periods (column ``_t``, and ``_pos`` = its position t - first period),
    where ``code(-1)`` is the status at t-1, ``code(0)`` at t, ``code(j)`` at t+j. One
    scan of the pivot serves every period, on DuckDB and on Spark alike.

    Layout: period p sits at position s = p - first period. When the panel spans at most
    20 periods, the status codes of all periods are packed in one BIGINT (3 bits per
    period: code + 1, 0 = no row) -- one SUM instead of one aggregate per period, which
    makes the pivot ~40% cheaper; grouping codes likewise when they fit in 62 bits.
    Otherwise (and for weights) one FILTERed MAX per period. A household with two rows
    in a period is detected exactly from ``_present`` = SUM(1 << s): its number of set
    bits is smaller than the row count iff two rows share a period.

    Reading a packed value at t + j is one shift by (``_pos`` + j) x bits -- a small
    expression whatever the number of periods. (A CASE over every destination period
    per read made each metric's expression grow with periods x reads, and compiling
    those, not running them, was most of a report page's time.) Unpacked columns are
    read with that CASE."""

    MAX_BITS = 62

    def __init__(self, panel: Panel, by: list[str], weight: str | None):
        self.panel, self.by, self.weight = panel, by, weight
        self.periods = list(panel.period_indices)
        self.first = min(self.periods) if self.periods else 0
        span = (max(self.periods) - self.first + 1) if self.periods else 1
        self.packed = 3 * span <= self.MAX_BITS
        t = panel.table
        key = (tuple(by), weight)
        cached = panel._histories.get(key)
        if cached is None:
            # grouping values become small int codes (a join with their distinct values):
            # the pivot then carries ints, not strings -- decoded in the small result
            dictionaries = {}
            for b in by:
                values = [v for v in panel.execute(t.select(b).distinct())[b].tolist()
                          if not pd.isna(v)]
                dictionaries[b] = values
                if values:
                    d = ibis.memtable(pd.DataFrame({"_v": pd.Series(values, dtype=object),
                                                    "_k": np.arange(len(values), dtype="int32")}))
                    d = d.mutate(_v=d._v.cast(t[b].type()))
                    t = t.left_join(d, t[b] == d._v).drop("_v").rename({f"_key_{b}": "_k"})
                else:
                    t = t.mutate(**{f"_key_{b}": ibis.null("int32")})
            # the status code once per row, then plain aggregates over it
            t = t.mutate(_code=ibis.cases(
                (t.removal_reason.notnull(), REMOVED),
                (t.status == "poor", POOR),
                (t.status == "near_poor", NEAR_POOR),
                (t.status == "non_poor", NON_POOR),
            ).cast("int8"), _s=(t.period_index - self.first).cast("int64"))
            code = t._code
            aggs = {"_first_poor": t.period_index.min(where=code == POOR),
                    "_first_near": t.period_index.min(where=code == NEAR_POOR),
                    "_rows": t.count(),
                    "_present": (ibis.literal(1, "int64") << t._s).sum()}
            if self.packed:
                aggs["_codes"] = ((code.cast("int64") + 1) << (t._s * 3)).sum()
            for b in by:
                bits = self.key_bits(dictionaries[b], span)
                if bits:
                    k = t[f"_key_{b}"].cast("int64").fill_null(-1) + 1
                    aggs[f"_keys_{b}"] = (k << (t._s * bits)).sum()
            for p in self.periods:
                here = t.period_index == p
                if not self.packed:
                    aggs[self.c(p)] = code.max(where=here)
                for b in by:
                    if not self.key_bits(dictionaries[b], span):
                        aggs[self.g(b, p)] = t[f"_key_{b}"].max(where=here)
                if weight:
                    aggs[self.w(p)] = t[weight].cast("float64").max(where=here)
            table = _materialise(panel, t.group_by("household_id").aggregate(**aggs))
            # the rows are checked once, whatever the grouping: the views of one page's
            # rows (one per grouping, pagedata.PageData.panel_for) share their results
            checked = (panel.table.op(), "no household with two rows in a period")
            if checked not in panel._results:
                self._check_duplicates(table)
                panel._results[checked] = True
            cached = panel._histories[key] = (table, dictionaries)
        self.history, self.dictionaries = cached
        self.span = span
        # destination periods: those whose previous period is in the panel
        self.destinations = [p for p in self.periods if p - 1 in self.periods]
        self.use()

    def key_bits(self, values, span) -> int:
        """Bits per period for a packed grouping code (0: not packed)."""
        bits = max(1, len(values).bit_length())
        return bits if bits * span <= self.MAX_BITS else 0

    def use(self, ever: str | None = None):
        """Set ``table``: the pivot x destination periods, restricted to households that
        were ever ``ever`` ("poor" / "near_poor") when a metric only concerns them (a
        national register has ~10x fewer ever-poor households than households)."""
        if not self.destinations:
            self.table = None
            return self
        hist = self.history
        if ever == "poor":
            hist = hist.filter(hist._first_poor.notnull())
        elif ever == "near_poor":
            hist = hist.filter(hist._first_near.notnull())
        # per destination t: its position, and the position of t + j for each offset j
        # a metric reads (NULL outside the panel), so that a read is one shift
        columns = {"_t": self.destinations, "_pos": [t - self.first for t in self.destinations]}
        for j in self.offsets:
            columns[self._at_name(j)] = [t - self.first + j if 0 <= t - self.first + j < self.span
                                         else None for t in self.destinations]
        dest = ibis.memtable(pd.DataFrame(columns).astype(
            {c: "Int64" for c in columns if c not in ("_t", "_pos")}),
            schema=ibis.schema({c: "int64" for c in columns}))
        self.table = hist.cross_join(dest)
        return self

    def decode(self, df: pd.DataFrame) -> pd.DataFrame:
        """Grouping codes in a (small) result back to the panel's values."""
        for b in self.by:
            values = self.dictionaries[b]
            df[b] = [values[int(k)] if not pd.isna(k) else None for k in df[b]]
        return df

    @staticmethod
    def _field(column, bits: int, position: int):
        """The ``bits``-wide field at ``position`` of a packed column, NULL when 0, minus 1."""
        return ((column >> (position * bits)) & ((1 << bits) - 1)).nullif(0) - 1

    def _check_duplicates(self, history):
        """A household with more rows than periods present has two rows in a period."""
        present = reduce(lambda a, b: a + b, [
            (history._present >> (p - self.first)) & 1 for p in self.periods])
        bad = self.panel.execute(history.filter(history._rows > present)
                                 .select("household_id").limit(3))["household_id"].tolist()
        if bad:
            t = self.panel.table
            rows = self.panel.execute(
                t.filter(t.household_id.isin(bad)).group_by(["household_id", "period"])
                .aggregate(rows=ibis._.count()).filter(ibis._.rows > 1).limit(3))
            raise SchemaError(
                "some households have more than one row in a period (columns household_id, "
                f"period), e.g. {rows.to_dict('records')}. Keep one row per household per period.")

    @staticmethod
    def c(p):
        return f"c_{p}"

    @staticmethod
    def g(b, p):
        return f"g_{p}_{b}"

    @staticmethod
    def w(p):
        return f"w_{p}"

    @property
    def t(self):
        """The destination period t of each row."""
        return self.table._t

    def _at(self, offset: int, value, null_type):
        """``value(p)`` at p = t + offset (NULL where the panel has no such p)."""
        branches = [(self.table._t == t, value(t + offset))
                    for t in self.destinations if t + offset in self.periods]
        if not branches:
            return ibis.null(null_type)
        return ibis.cases(*branches, else_=ibis.null(null_type))

    @property
    def offsets(self) -> range:
        """Offsets j of the periods t + j a metric can read (t - 1 up to the last period)."""
        return range(-1, self.span)

    @staticmethod
    def _at_name(offset: int) -> str:
        return f"_at_{'m' if offset < 0 else 'p'}{abs(offset)}"

    def _packed_at(self, column, bits: int, offset: int, null_type):
        """The ``bits``-wide field of period t + offset in a packed column, minus 1 (NULL
        when the field is 0 -- no row there -- or t + offset is outside the panel, where
        the position column is NULL)."""
        if offset not in self.offsets:
            return ibis.null(null_type)
        shift = (self.table[self._at_name(offset)] * bits).cast("int32")
        return (((column >> shift) & ((1 << bits) - 1)).nullif(0) - 1).cast(null_type)

    def _code_in(self, p):
        if self.packed:
            return self._field(self.table._codes, 3, p - self.first).cast("int8")
        return self.table[self.c(p)]

    def _key_in(self, b, p):
        bits = self.key_bits(self.dictionaries[b], self.span)
        if bits:
            return self._field(self.table[f"_keys_{b}"], bits, p - self.first).cast("int32")
        return self.table[self.g(b, p)].cast("int32")

    def code(self, offset: int):
        """Status code at t + offset: 1 poor, 2 near-poor, 3 non-poor, 0 removal row,
        NULL not observed (or no such period in the panel)."""
        if self.packed:
            return self._packed_at(self.table._codes, 3, offset, "int8")
        return self._at(offset, self._code_in, "int8")

    def is_(self, offset: int, *codes):
        """Boolean: status code at t + offset is one of ``codes`` (False when NULL)."""
        return self.code(offset).isin(list(codes)).fill_null(False)

    def observed(self, offset: int):
        return self.is_(offset, *OBSERVED)

    def keys_at(self, offset: int) -> dict:
        """Grouping columns and weight read at t + offset, under their plain names."""
        out = {}
        for b in self.by:
            bits = self.key_bits(self.dictionaries[b], self.span)
            out[b] = (self._packed_at(self.table[f"_keys_{b}"], bits, offset, "int32") if bits
                      else self._at(offset, lambda p, b=b: self._key_in(b, p), "int32"))
        out["_w"] = (self._at(offset, lambda p: self.table[self.w(p)], "float64").fill_null(0.0)
                     if self.weight else ibis.literal(1.0))
        return out


_HISTORY_NAMES = itertools.count()


def _materialise(panel: Panel, expr):
    """On DuckDB the household pivot is computed once per (by, weight) and kept as a
    temporary table while the Panel lives (every metric reuses it; the previous one is
    dropped, so at most one pivot is held). On Spark the expression is used as is (a
    temporary view of a cached DataFrame would pin executor memory; Spark reuses the
    shuffle within a query)."""
    if panel.engine != "duckdb":
        return expr
    for old, _ in list(panel._histories.values()):
        panel.con.drop_table(old.get_name(), force=True)
    panel._histories.clear()
    name = f"povdyn_history_{os.getpid()}_{next(_HISTORY_NAMES)}"
    table = panel.con.create_table(name, expr, temp=True)
    weakref.finalize(panel, _drop_quietly, panel.con, name)
    return table


def _drop_quietly(con, name):
    try:
        con.drop_table(name, force=True)
    except Exception:  # the connection may be gone at interpreter exit
        pass


def _flag(cond):
    return ibis.ifelse(cond, 1, 0).cast("int64")


# =========================================================================== summaries
def _summarise(h: "_History", events, keys: list[str], counts: list[str], rates: dict,
               weighted: bool, pooled: bool) -> pd.DataFrame:
    """Aggregate 0/1 event columns to counts (or sums of weights) per ``keys`` and add the
    sums that povdyn.intervals needs for each rate in ``rates`` = {rate: (num, den)}.

    Not weighted and not pooled: one event per household per cell, plain Wilson.
    Otherwise households are clusters: sums over households of Y_h, N_h and their
    squares and cross-products (the rows of ``events`` of one household in one cell are
    first added up)."""
    e = events
    if not weighted and not pooled:
        aggs = {c: e[c].sum() for c in counts}
        return h.decode(h.panel.execute(e.group_by(keys).aggregate(**aggs)))
    # per household within cell
    per_hh = {c: (e[c] * e._w).sum() for c in counts}
    per_hh.update({f"n_{c}": e[c].sum() for c in counts})
    hh = e.group_by(["household_id", *keys]).aggregate(**per_hh)
    aggs = {c: hh[c].sum() for c in counts}
    aggs.update({f"n_{c}": hh[f"n_{c}"].sum() for c in counts})
    for rate, (num, den) in rates.items():
        aggs[f"_{rate}_yy"] = (hh[num] * hh[num]).sum()
        aggs[f"_{rate}_yn"] = (hh[num] * hh[den]).sum()
        aggs[f"_{rate}_nn"] = (hh[den] * hh[den]).sum()
        aggs[f"_{rate}_g"] = _flag(hh[den] > 0).sum()
    return h.decode(h.panel.execute(hh.group_by(keys).aggregate(**aggs) if keys
                                    else hh.aggregate(**aggs)))


def _add_rate(df: pd.DataFrame, name: str, num: str, den: str, clustered: bool,
              ci: bool = True) -> pd.DataFrame:
    if clustered:
        rate, low, high = proportion_interval(
            df[num], df[den], df[f"_{name}_yy"], df[f"_{name}_yn"], df[f"_{name}_nn"],
            df[f"_{name}_g"])
    else:
        rate, low, high = proportion_interval(df[num], df[den])
    df[name] = rate
    if ci:
        prefix = "" if name == "rate" else f"{name}_"
        df[f"{prefix}ci_low"], df[f"{prefix}ci_high"] = low, high
    return df


def _finish(df: pd.DataFrame, panel: Panel, by: list[str], period_col: str | None,
            columns: list[str], weighted: bool, counts: list[str]) -> pd.DataFrame:
    """Period labels, column order, integer counts, sorted rows."""
    if period_col is not None:
        df[period_col] = [label(panel.frequency, int(i)) for i in df["period_index"]]
    extra = [f"n_{c}" for c in counts] if weighted else []
    for c in counts + extra:
        if (c in df.columns and not weighted) or (c in extra and c in df.columns):
            df[c] = df[c].fillna(0).astype("int64")
    order = [*by, *([period_col] if period_col else []), *columns, *extra]
    sort = [*by, *(["period_index"] if period_col else [])]
    if sort and len(df):
        df = df.sort_values(sort, kind="stable")
    return df[[c for c in order if c in df.columns]].reset_index(drop=True)


def _empty(by, period_col, columns) -> pd.DataFrame:
    return pd.DataFrame(columns=[*by, *([period_col] if period_col else []), *columns])


def _prepare(panel, by, weight, engine):
    panel = _panel(panel, engine)
    by = as_list(by)
    _check_columns(panel, by, weight)
    return panel, by, _History(panel, by, weight)


# =========================================================================== exits
@_remembered
def exit_rates(panel, by=None, from_status: str = "poor", weight: str | None = None,
               engine: str | None = None, pool_periods: bool = False) -> pd.DataFrame:
    """Exit rates per destination period t (methods.md, "Flow metrics").

    ``from_status="poor"``: at risk = poor at t-1 and observed (with a status) at t;
    exits = not poor at t, split into ``to_near_poor`` and ``to_non_poor``.
    ``from_status="near_poor"``: at risk = near-poor at t-1 and observed at t; exits =
    non-poor at t (``to_non_poor``); ``to_near_poor`` is NA (it is not an exit
    destination), and near-poor -> poor is reported as ``falls``.
    t-1 is the previous period of the panel's frequency, never just the previous row.
    ``removed`` = households with ``from_status`` at t-1 whose removal row is at t:
    attrition, in neither ``at_risk`` nor ``exits``.

    Returns [*by, period, at_risk, exits, to_near_poor, to_non_poor, rate, ci_low,
    ci_high, removed] (+ ``falls`` for near-poor; + n_* unweighted counts with
    ``weight``). ``by`` and ``weight`` are read at t-1. ``pool_periods=True`` pools all
    periods into one rate per group (no ``period`` column) with household-clustered
    intervals (a household can exit several times)."""
    if from_status not in ("poor", "near_poor"):
        raise SchemaError(f"from_status={from_status!r}: use 'poor' or 'near_poor'")
    panel, by, h = _prepare(panel, by, weight, engine)
    origin = CODE[from_status]
    h.use(from_status)
    columns = ["at_risk", "exits", "to_near_poor", "to_non_poor", "rate", "ci_low", "ci_high",
               "removed"] + (["falls"] if from_status == "near_poor" else [])
    period_col = None if pool_periods else "period"
    if h.table is None:
        return _empty(by, period_col, columns)
    was = h.is_(-1, origin)
    events = h.table.filter(was).select(
        "household_id", period_index=h.t, **h.keys_at(-1),
        at_risk=_flag(h.observed(0)),
        to_poor=_flag(h.is_(0, POOR)),
        to_near_poor=_flag(h.is_(0, NEAR_POOR)),
        to_non_poor=_flag(h.is_(0, NON_POOR)),
        removed=_flag(h.is_(0, REMOVED)),
    )
    exits = events.to_non_poor if from_status == "near_poor" else \
        events.to_near_poor + events.to_non_poor
    events = events.mutate(exits=exits)
    counts = ["at_risk", "exits", "to_near_poor", "to_non_poor", "removed", "to_poor"]
    keys = [*by] if pool_periods else ["period_index", *by]
    clustered = bool(weight) or pool_periods
    df = _summarise(h, events, keys, counts, {"rate": ("exits", "at_risk")},
                    weighted=bool(weight), pooled=clustered)
    df = _add_rate(df, "rate", "exits", "at_risk", clustered)
    if from_status == "near_poor":
        df["falls"] = df["to_poor"]
        if weight:
            df["n_falls"] = df["n_to_poor"]
        df["to_near_poor"] = pd.NA
        counts = [c for c in counts if c != "to_near_poor"]
    return _finish(df, panel, by, period_col, columns, bool(weight),
                   [c for c in counts if c != "to_poor"] + (["falls"] if from_status == "near_poor" else []))


# =========================================================================== entries
@_remembered
def entries(panel, by=None, weight: str | None = None, engine: str | None = None) -> pd.DataFrame:
    """Entries into poverty per period t (methods.md, "Flow metrics").

    entry = poor at t and not poor at t-1 -- near-poor or non-poor at t-1, or not observed
    at t-1 (absent, e.g. a household that joins the register poor). An entry is
    ``relapsed`` (tái nghèo) when the household was poor in ANY earlier period of the
    panel, otherwise ``new_poor`` (phát sinh).
    Left censoring: the panel's first period has no entries (nobody can be observed
    entering), and neither has a period whose previous period is missing from the whole
    panel (no list that year: unknown, not "not observed"). "Newly poor" means "not poor
    earlier in this panel": a household poor before the panel began is counted new.

    Returns [*by, period, entries, relapsed, new_poor, from_near_poor, from_non_poor,
    from_unobserved]; ``by`` and ``weight`` read at t."""
    panel, by, h = _prepare(panel, by, weight, engine)
    counts = ["entries", "relapsed", "new_poor", "from_near_poor", "from_non_poor",
              "from_unobserved"]
    h.use("poor")
    if h.table is None:
        return _empty(by, "period", counts)
    entry = h.is_(0, POOR) & ~h.is_(-1, POOR)
    # poor in an earlier period <=> first poor period before t (poor at t, so first <= t)
    poor_before = (h.table._first_poor < h.t).fill_null(False)
    events = h.table.filter(entry).select(
        "household_id", period_index=h.t, **h.keys_at(0),
        entries=_flag(ibis.literal(True)),
        relapsed=_flag(poor_before),
        new_poor=_flag(~poor_before),
        from_near_poor=_flag(h.is_(-1, NEAR_POOR)),
        from_non_poor=_flag(h.is_(-1, NON_POOR)),
        from_unobserved=_flag(~h.observed(-1)),
    )
    df = _summarise(h, events, ["period_index", *by], counts, {},
                    weighted=bool(weight), pooled=bool(weight))
    return _finish(df, panel, by, "period", counts, bool(weight), counts)


# =========================================================================== relapse
@_remembered
def relapse_rates(panel, within: int = 2, by=None, weight: str | None = None,
                  engine: str | None = None, pool_periods: bool = False) -> pd.DataFrame:
    """Relapse within k = ``within`` periods after an exit (methods.md, "Flow metrics").

    Cohort = exits from poverty at t (poor at t-1, near-poor or non-poor at t, consecutive).
    followed = observed (with a status) in every period t+1..t+k; relapsed = followed and
    poor in any of them; rate = relapsed / followed. Exits whose follow-up is incomplete
    (removed, a gap, or the panel ends before t+k) are ``not_followed``: reported, not
    dropped silently (censored follow-up is survival's job). ``sustained`` = followed and
    not poor through t+k (the complement: sustained exit, thoát nghèo bền vững).

    Returns [*by, exit_period, exits, followed, relapsed, not_followed, sustained, rate,
    ci_low, ci_high]; ``by`` and ``weight`` read at the exit period t."""
    if int(within) < 1:
        raise SchemaError(f"within={within!r}: the follow-up must be at least 1 period")
    within = int(within)
    panel, by, h = _prepare(panel, by, weight, engine)
    columns = ["exits", "followed", "relapsed", "not_followed", "sustained", "rate", "ci_low",
               "ci_high"]
    period_col = None if pool_periods else "exit_period"
    h.use("poor")
    if h.table is None:
        return _empty(by, period_col, columns)
    exited = h.is_(-1, POOR) & h.is_(0, NEAR_POOR, NON_POOR)
    later = range(1, within + 1)
    followed = reduce(lambda a, b: a & b, [h.observed(j) for j in later])
    poor_again = reduce(lambda a, b: a | b, [h.is_(j, POOR) for j in later])
    events = h.table.filter(exited).select(
        "household_id", period_index=h.t, **h.keys_at(0),
        exits=_flag(ibis.literal(True)), followed=_flag(followed),
        relapsed=_flag(followed & poor_again),
    )
    counts = ["exits", "followed", "relapsed"]
    keys = [*by] if pool_periods else ["period_index", *by]
    clustered = bool(weight) or pool_periods
    df = _summarise(h, events, keys, counts, {"rate": ("relapsed", "followed")},
                    weighted=bool(weight), pooled=clustered)
    df = _add_rate(df, "rate", "relapsed", "followed", clustered)
    df["not_followed"] = df["exits"] - df["followed"]
    df["sustained"] = df["followed"] - df["relapsed"]
    if weight:
        df["n_not_followed"] = df["n_exits"] - df["n_followed"]
        df["n_sustained"] = df["n_followed"] - df["n_relapsed"]
    counts = counts + ["not_followed", "sustained"]
    return _finish(df, panel, by, period_col, columns, bool(weight), counts)


def sustained_exits(panel, within: int = 2, by=None, weight: str | None = None,
                    engine: str | None = None) -> pd.DataFrame:
    """Sustained exit (methods.md): exit at t and not poor through t+k, among exits
    followed through t+k -- the complement of ``relapse_rates``.

    Returns [*by, exit_period, exits, followed, sustained, rate, ci_low, ci_high] with
    rate = sustained / followed and its own Wilson (or clustered) interval."""
    df = relapse_rates(panel, within=within, by=by, weight=weight, engine=engine)
    if not len(df):
        return df.drop(columns=["relapsed", "not_followed"])
    df["rate"] = 1 - df["rate"]
    df["ci_low"], df["ci_high"] = 1 - df["ci_high"], 1 - df["ci_low"]
    keep = [*as_list(by), "exit_period", "exits", "followed", "sustained", "rate", "ci_low",
            "ci_high"] + [c for c in df.columns if c.startswith("n_")]
    return df[keep]


def churn(panel, by=None, weight: str | None = None, engine: str | None = None) -> pd.DataFrame:
    """Churn (methods.md, "Traps"): an exit at t followed by re-entry at t+1 -- relapse
    within one period, often measurement noise around the line.

    Returns [*by, exit_period, exits, followed, churned, rate, ci_low, ci_high]:
    followed = observed at t+1, churned = poor at t+1, rate = churned / followed."""
    df = relapse_rates(panel, within=1, by=by, weight=weight, engine=engine)
    df = df.rename(columns={"relapsed": "churned", "n_relapsed": "n_churned"})
    return df.drop(columns=[c for c in ("sustained", "n_sustained", "not_followed",
                                        "n_not_followed") if c in df.columns])


@_remembered
def confirmed_exit_rates(panel, by=None, periods_out: int = 2, weight: str | None = None,
                         engine: str | None = None) -> pd.DataFrame:
    """Exit rate that requires ``periods_out`` consecutive periods out of poverty
    (methods.md, "Traps": report churn and a version needing two periods out).

    Per destination period t: at_risk = poor at t-1 and observed in every period
    t..t+periods_out-1; exits = not poor at t (among them); confirmed_exits = not poor in
    every period t..t+periods_out-1; returned = exits - confirmed_exits; rate =
    confirmed_exits / at_risk. ``not_followed`` = poor at t-1, observed at t but not in
    every later period needed (censored; not in at_risk). ``by``/``weight`` read at t-1."""
    periods_out = int(periods_out)
    if periods_out < 1:
        raise SchemaError("periods_out must be at least 1")
    panel, by, h = _prepare(panel, by, weight, engine)
    columns = ["at_risk", "exits", "confirmed_exits", "returned", "rate", "ci_low", "ci_high",
               "not_followed"]
    h.use("poor")
    if h.table is None:
        return _empty(by, "period", columns)
    span = range(0, periods_out)
    was = h.is_(-1, POOR)
    followed = reduce(lambda a, b: a & b, [h.observed(j) for j in span])
    out = reduce(lambda a, b: a & b, [h.is_(j, NEAR_POOR, NON_POOR) for j in span])
    events = h.table.filter(was).select(
        "household_id", period_index=h.t, **h.keys_at(-1),
        at_risk=_flag(followed),
        exits=_flag(followed & h.is_(0, NEAR_POOR, NON_POOR)),
        confirmed_exits=_flag(followed & out),
        not_followed=_flag(h.observed(0) & ~followed),
    )
    counts = ["at_risk", "exits", "confirmed_exits", "not_followed"]
    df = _summarise(h, events, ["period_index", *by], counts,
                    {"rate": ("confirmed_exits", "at_risk")}, weighted=bool(weight),
                    pooled=bool(weight))
    df = _add_rate(df, "rate", "confirmed_exits", "at_risk", bool(weight))
    df["returned"] = df["exits"] - df["confirmed_exits"]
    if weight:
        df["n_returned"] = df["n_exits"] - df["n_confirmed_exits"]
    return _finish(df, panel, by, "period", columns, bool(weight), counts + ["returned"])


# =========================================================================== transitions
@_remembered
def transition_matrix(panel, by=None, weight: str | None = None, engine: str | None = None,
                      per_period: bool = False) -> pd.DataFrame:
    """Transition matrix (methods.md, "Flow metrics"): status at t-1 -> status at t over
    consecutive pairs (both periods observed with a status), pooled over all periods
    (``per_period=True``: one matrix per destination period t).

    Long form: [*by, (period,) from_status, to_status, count, share], all 9 status pairs
    present (count 0 when none), share = count / row total (row-normalised within the
    group and from_status; NaN for an empty row). Removals are not a destination here
    (see exit_rates' ``removed``). ``by``/``weight`` read at t-1. See ``matrix_table``
    for the square view with counts beside shares."""
    panel, by, h = _prepare(panel, by, weight, engine)
    period_col = "period" if per_period else None
    columns = ["from_status", "to_status", "count", "share"]
    if h.table is None:
        return _empty(by, period_col, columns)
    pair = h.observed(-1) & h.observed(0)
    events = h.table.filter(pair).select(
        "household_id", period_index=h.t, **h.keys_at(-1),
        from_code=h.code(-1), to_code=h.code(0),
    )
    keys = [*(["period_index"] if per_period else []), *by, "from_code", "to_code"]
    value = events._w.sum() if weight else events.count()
    agg = h.decode(panel.execute(events.group_by(keys).aggregate(count=value)))
    # all 9 pairs in every group that appears
    groups = agg[keys[:-2]].drop_duplicates() if keys[:-2] else pd.DataFrame(index=[0])
    pairs = pd.DataFrame([(a, b) for a in OBSERVED for b in OBSERVED],
                         columns=["from_code", "to_code"])
    full = groups.merge(pairs, how="cross").merge(agg, on=keys, how="left")
    full["count"] = full["count"].fillna(0)
    if not weight:
        full["count"] = full["count"].astype("int64")
    row_total = full.groupby(keys[:-1], dropna=False)["count"].transform("sum")
    full["share"] = np.where(row_total > 0, full["count"] / row_total.where(row_total > 0), np.nan)
    full["from_status"] = full["from_code"].astype(int).map(NAME)
    full["to_status"] = full["to_code"].astype(int).map(NAME)
    full = full.sort_values(keys, kind="stable")
    if per_period:
        full["period"] = [label(panel.frequency, int(i)) for i in full["period_index"]]
    return full[[*by, *([period_col] if per_period else []), *columns]].reset_index(drop=True)


def matrix_table(transitions: pd.DataFrame) -> pd.DataFrame:
    """Pivot ``transition_matrix`` output to a square table: one row per (group,) status
    at t-1, columns (status at t, "count") and (status at t, "share") side by side, plus
    the row total. Statuses in the order poor, near_poor, non_poor."""
    keys = [c for c in transitions.columns
            if c not in ("from_status", "to_status", "count", "share")]
    wide = transitions.pivot(index=[*keys, "from_status"], columns="to_status",
                             values=["count", "share"])
    wide = wide.swaplevel(0, 1, axis=1)
    order = list(CODE)
    wide = wide.reindex(columns=pd.MultiIndex.from_product([order, ["count", "share"]]))
    wide[("total", "count")] = wide.xs("count", axis=1, level=1).sum(axis=1)
    for col in [c for c in wide.columns if c[1] == "count"]:
        if (wide[col] % 1 == 0).all():  # unweighted counts stay integers
            wide[col] = wide[col].astype("int64")
    rows = wide.index.get_level_values("from_status").map({s: i for i, s in enumerate(order)})
    positions = np.lexsort([rows] + [wide.index.get_level_values(k).astype(str) for k in keys][::-1]) \
        if keys else np.argsort(rows, kind="stable")
    return wide.iloc[positions]
