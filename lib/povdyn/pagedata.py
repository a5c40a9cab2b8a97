"""Page data: the numbers a report page publishes, from the engine-side Panel.

The page layer in three parts (architecture.md, "present" and "pages"):

* ``povdyn.pagedata`` (here): which panel a page reads (``page_data``: register kind,
  household totals, region), the metric results it needs, cached per page
  (``metric``), and the numeric tables behind each section -- headline figures, groups,
  provinces, flows, ``page_numbers`` (every published number, used to prove that list
  and full registers publish the same report). Numbers only: no labels, no formatting.
* ``povdyn.formatting``: numbers to Vietnamese / English text (pure functions).
* ``povdyn.display``: showing tables, headings and notes in a notebook.
* ``povdyn.tables``: the tables a reviewer reads (labelled, suppressed, formatted) and
  the page sections; it re-exports the three modules above for the notebooks.

Nothing here defines a metric: flows come from ``povdyn.dynamics``, stock shares from
``povdyn.stocks`` (methods.md), targets and projections from ``povdyn.targets``.

Units, said once: metrics return rates and their intervals as **fractions** (0.0403),
with canonical English column names (``rate``, ``ci_low``, ``poor_rate`` ...); percent
and points appear only in formatted text (``povdyn.formatting``) and in the two
presentation-ready summaries whose labelled columns say so (``targets.progress_values``
changes in points, ``deprivation.deprivation_summary`` H, A, M0 in percent).
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from . import periods as _periods
from .config import settings
from .errors import PovdynError
from .intervals import wilson_interval

def _norm(text) -> str:
    from .geo import normalise_name

    return normalise_name(unicodedata.normalize("NFC", str(text)))


@dataclass
class PageData:
    """The data of one report page: the region's engine-side ``Panel`` (register kind,
    household totals and region restriction included; nothing is pulled into pandas
    here) and a cache of metric results."""

    panel: object
    region: str = "national"
    cache: dict = field(default_factory=dict, repr=False)
    panels: dict = field(default_factory=dict, repr=False)
    # the national page's run-wide tables, read when its provinces section needs them
    # (seed_national): a callable (povdyn.report.run_tables_handle) or the tables
    pending_tables: object = field(default=None, repr=False)

    @property
    def register(self) -> str:
        return self.panel.register

    @property
    def rates_known(self) -> bool:
        """Stock rates can be published (a full panel, or lists with household totals)."""
        from .stocks import has_rates

        return has_rates(self.panel)

    def panel_for(self, by) -> object:
        """The Panel to run a metric grouped by `by` on: one view of the same table per
        grouping, so that each keeps its own engine-side household pivot (povdyn.dynamics
        caches one pivot per Panel) and a page switching between groupings never
        rebuilds or drops one another uses."""
        import dataclasses

        key = repr(by)
        if key not in self.panels:
            self.panels[key] = dataclasses.replace(self.panel, _histories={})
        return self.panels[key]

    def __len__(self) -> int:
        return len(self.panel)


def page_data(data_dir=None, region: str = "national", register: str | None = None,
              engine: str | None = None, run_tables=None) -> PageData:
    """The processed panel of a page (data_dir/panel.parquet; default
    settings().processed_dir) as an engine-side Panel restricted to `region`
    (``Panel.region``: diacritics and case ignored, unknown names listed). `register`:
    None = the kind ingest recorded, or "lists" / "full"; the household totals beside
    the panel come with it (povdyn.panel). `run_tables`: the run-wide tables of a
    report run (``run_wide_tables``), or a callable returning them
    (``povdyn.report.run_tables_handle``), whose rows of the region the page's metrics
    then read (``seed_page``); the national page keeps them for its provinces section
    (``seed_national``), read only then."""
    from .panel import load_panel

    path = Path(data_dir or settings().processed_dir)
    if path.is_dir() and (path / "panel.parquet").exists():
        path = path / "panel.parquet"
    if not path.exists():
        raise PovdynError(f"{path} not found: run `povdyn ingest` first or set data_dir")
    panel, held = _register_panel(path, register, engine)
    if not panel.periods:
        raise PovdynError(f"{path}: the panel has no rows; run `povdyn ingest` on the registers "
                          "in data/raw/ (see data/raw/README.md)")
    region = "national" if region in (None, "national", "all") else region
    if held and region == "national":
        panel = replace(panel, _histories={}, _results={})  # the rows held, this page's own results
    else:
        panel = panel.region(region)
        if region != "national" or len(panel) <= PAGE_CACHE_MAX_ROWS:
            panel = panel.cached()
    data = PageData(panel=panel, region=region)
    if region == "national":
        data.pending_tables = run_tables
    elif run_tables:
        seed_page(data, run_tables() if callable(run_tables) else run_tables)
    return data


# A page's rows are held in the engine (Panel.cached) up to this many: a province, or a
# national register of a few million households. The 27M-household national register
# (~133M rows) stays a scan of its parquet file: held whole it would take more memory
# than the page's 6 GB budget, and its metrics each read it once through their cached
# household pivot anyway.
PAGE_CACHE_MAX_ROWS = 20_000_000

# A register of at most this many rows (the 60,000-household demo: ~1M) is held whole by
# the engine of the process that renders pages (a report kernel renders ~17 of them),
# and each page's rows are selected from it: selecting a province from the parquet file
# read the whole file again for every page (it is sorted by household, so no row group
# can be skipped) -- 0.33 s of CPU a page against 0.17 s from the rows held, after ~1 s
# once to hold them (measured on the demo). Larger registers are read from their file
# for each page as before: held whole they would take the memory the pages need.
HELD_REGISTER_MAX_ROWS = 2_000_000
_HELD: dict = {}


def _register_panel(path: Path, register: str | None, engine: str | None):
    """(Panel of the register at `path`, whether its rows are held by the engine):
    load_panel's Panel, with its rows held (``Panel.cached``) and kept for the next page
    of this process when the register has at most HELD_REGISTER_MAX_ROWS rows and runs
    on DuckDB. Kept per file version (path, and each parquet file's size, modification
    time and inode), register kind and
    connection: a rewritten file, another kind or engine is loaded afresh, and only the
    latest register is held."""
    from .engine import connect, engine_name
    from .panel import load_panel

    if engine_name(engine) != "duckdb":
        return load_panel(path, register=register, engine=engine), False
    import pyarrow.parquet as pq

    from .panel import _parquet_files

    # a file, or ingest's panel.parquet/ folder of period files (an incremental ingest
    # replaces only some of them)
    files = _parquet_files(path) if path.suffix == ".parquet" else []
    versions = tuple((f.name, st.st_size, st.st_mtime_ns, st.st_ino) for f, st in ((f, f.stat()) for f in files))
    key = (str(path.resolve()), versions, register, id(connect(engine)))
    if key in _HELD:
        return _HELD[key], True
    panel = load_panel(path, register=register, engine=engine)
    if (not files or sum(pq.ParquetFile(f).metadata.num_rows for f in files) > HELD_REGISTER_MAX_ROWS
            or len(panel) > HELD_REGISTER_MAX_ROWS):  # a list register's rows: absent households too
        return panel, False
    _HELD.clear()
    _HELD[key] = panel.cached()
    return _HELD[key], True


def _data(data) -> PageData:
    """PageData as it is; a Panel, DataFrame or path as national PageData."""
    if isinstance(data, PageData):
        return data
    from .stocks import as_panel

    return PageData(panel=as_panel(data))


def select_region(df: pd.DataFrame, region: str = "national") -> pd.DataFrame:
    """Rows of a pandas panel for one report region (as ``Panel.region``, for frames)."""
    if region in (None, "national", "all"):
        return df
    col = "province_2025" if "province_2025" in df.columns else "province"
    names = pd.Series(pd.unique(df[col].dropna()))
    wanted = _norm(region)
    match = names[names.map(_norm) == wanted]
    if match.empty:
        raise PovdynError(f"region {region!r} matches no {col} in the panel; "
                          f"known: {', '.join(sorted(map(str, names)))}")
    return df[df[col].isin(set(match))]


def same_period_last_year(period):
    """The period one year before (4 quarters, or 1 year)."""
    freq, _ = _periods.parse_period(period)
    return _periods.shift(period, -4 if freq == "quarter" else -1)


def _pkey(p):
    return _periods.parse_period(p)[1]


def _at(table: pd.DataFrame, period, col="period") -> pd.DataFrame:
    if table is None or table.empty:
        return table
    key = _pkey(period)
    return table[table[col].map(_pkey) == key]


def status_shares(data, by=None) -> pd.DataFrame:
    """povdyn.stocks.status_shares of the page's panel (cached per page): households by
    status and the poor / near-poor rates with their intervals; on lists the
    denominators are the household totals (NaN where none is known)."""
    from .stocks import status_shares as shares

    data = _data(data)
    key = ("status_shares", repr(by))
    if key not in data.cache:
        data.cache[key] = shares(data.panel, by=by)
    return data.cache[key].copy()


def status_shares_at(data, period, by=None) -> pd.DataFrame:
    """The rows of ``status_shares`` at `period`, matched as a period (an annual
    register's periods are the ints 2021...; a page's `period` parameter is text such as
    "2025" or "2025Q4", so a lookup by label would miss them)."""
    return _at(status_shares(data, by=by), period).reset_index(drop=True)


def removals(data, by=None) -> pd.DataFrame:
    """Households taken off the poor and near-poor lists at each period for death,
    migration, merger or split (povdyn.stocks.removals_from_lists)."""
    from .stocks import removals_from_lists

    data = _data(data)
    key = ("removals", repr(by))
    if key not in data.cache:
        data.cache[key] = removals_from_lists(data.panel_for(by), by=by)
    return data.cache[key].copy()


def _dyn():
    from . import dynamics

    return dynamics


def metric(name: str, data, **kwargs) -> pd.DataFrame:
    """povdyn.dynamics.<name>(panel, **kwargs), computed once per page data and
    arguments (a page asks for the same exit rates for its headline, trend and groups).
    `data`: a PageData (cached in it), or a Panel / DataFrame / path."""
    data = _data(data)
    key = (name, tuple(sorted((k, repr(v)) for k, v in kwargs.items())))
    if key not in data.cache:
        data.cache[key] = getattr(_dyn(), name)(data.panel_for(kwargs.get("by")), **kwargs)
    return data.cache[key].copy()


def headline_values(df: pd.DataFrame, period, within: int = 2) -> pd.DataFrame:
    """Numeric headline figures at `period`, the previous period and the same period a
    year earlier. One row per indicator: key, kind ("rate" or "count"), and for each of
    "", "prev_", "year_": numerator, denominator, rate, ci_low, ci_high (fractions).

    Indicators: poor_rate, near_poor_rate (status shares); exit_rate, to_near_poor,
    to_non_poor (exit_rates from poor); near_poor_exit_rate (exit_rates from near-poor);
    relapses, new_poor (entries); removals; relapse_rate (relapse_rates of the exit
    cohort `within` periods before, the latest fully followed one)."""
    df = _data(df)
    period = _periods.canonical([period])[0]
    periods = {"": period, "prev_": _periods.shift(period, -1), "year_": same_period_last_year(period)}
    shares = status_shares(df)
    ex = metric("exit_rates", df)
    ex_np = metric("exit_rates", df, from_status="near_poor")
    en = metric("entries", df)
    rel = metric("relapse_rates", df, within=within)
    rem = removals(df)

    def pick(table, p, col="period"):
        row = _at(table, p, col)
        return None if row is None or row.empty else row.iloc[0]

    rows = {k: {"key": k} for k in ["poor_rate", "near_poor_rate", "exit_rate", "to_near_poor", "to_non_poor",
                                    "near_poor_exit_rate", "relapses", "new_poor", "removals", "relapse_rate"]}
    for prefix, p in periods.items():
        def put(key, num, den, rate=np.nan, lo=np.nan, hi=np.nan):
            rows[key].update({f"{prefix}numerator": num, f"{prefix}denominator": den, f"{prefix}rate": rate,
                              f"{prefix}ci_low": lo, f"{prefix}ci_high": hi})

        s = pick(shares, p)
        for st in ("poor", "near_poor"):
            if s is None:
                put(f"{st}_rate", np.nan, np.nan)
            else:
                put(f"{st}_rate", s[st], s["households"], s[f"{st}_rate"], s[f"{st}_ci_low"], s[f"{st}_ci_high"])
        e = pick(ex, p)
        if e is None:
            for k in ("exit_rate", "to_near_poor", "to_non_poor"):
                put(k, np.nan, np.nan)
        else:
            put("exit_rate", e["exits"], e["at_risk"], e["rate"], e["ci_low"], e["ci_high"])
            for k in ("to_near_poor", "to_non_poor"):
                lo, hi = wilson_interval(e[k], e["at_risk"])
                put(k, e[k], e["at_risk"], e[k] / e["at_risk"] if e["at_risk"] else np.nan, float(lo), float(hi))
        e = pick(ex_np, p)
        put("near_poor_exit_rate", *((e["exits"], e["at_risk"], e["rate"], e["ci_low"], e["ci_high"])
                                     if e is not None else (np.nan, np.nan)))
        n = pick(en, p)
        # entries() lists only periods with entries: a period on the register with a
        # period before it and no row there had none
        observed = s is not None and pick(shares, _periods.shift(p, -1)) is not None
        zero = 0 if observed else np.nan
        put("relapses", n["relapsed"] if n is not None else zero, np.nan)
        put("new_poor", n["new_poor"] if n is not None else zero, np.nan)
        r = pick(rem, p)
        put("removals", r["removals"] if r is not None else 0, np.nan)
        cohort = _periods.shift(p, -within)
        r = pick(rel, cohort, "exit_period")
        put("relapse_rate", *((r["relapsed"], r["followed"], r["rate"], r["ci_low"], r["ci_high"])
                              if r is not None else (np.nan, np.nan)))
    out = pd.DataFrame(list(rows.values()))
    out["kind"] = np.where(out["key"].isin(["relapses", "new_poor", "removals"]), "count", "rate")
    out.attrs.update(period=period, previous=periods["prev_"], last_year=periods["year_"], within=within)
    return out


def group_rates(df: pd.DataFrame, period, by: str, min_cell: int | None = None) -> pd.DataFrame:
    """Poor rate and exit rate at `period` by one grouping column (area,
    ethnic_minority): numeric, with a `suppressed` flag on groups whose denominators or
    numerators are below min_cell (plots leave them out; tables show "<10")."""
    min_cell = settings().min_cell if min_cell is None else min_cell
    sh = _at(status_shares(df, by=by), period)
    ex = _at(metric("exit_rates", df, by=by), period)
    m = sh.merge(ex[[by, "at_risk", "exits", "rate", "ci_low", "ci_high"]], on=by, how="left")
    m = m.rename(columns={"rate": "exit_rate", "ci_low": "exit_ci_low", "ci_high": "exit_ci_high"})
    m["poor_suppressed"] = (m["households"] < min_cell) | (m["poor"] < min_cell)
    m["exit_suppressed"] = (m["at_risk"].fillna(0) < min_cell) | (m["exits"].fillna(0) < min_cell)
    return m


def province_rates(df: pd.DataFrame, period, min_cell: int | None = None) -> pd.DataFrame:
    """Per province (province_2025) at `period`: households, poor, poor_rate (+ Wilson
    interval), at_risk, exits, exit_rate (+ interval). Numeric, for the ranking plots
    (which leave out provinces with small counts)."""
    df = _data(df)
    seed_national(df)
    col = "province_2025" if "province_2025" in df.panel.columns else "province"
    sh = _at(status_shares(df, by=col), period)
    ex = _at(metric("exit_rates", df, by=col), period)
    m = sh.merge(ex[[col, "at_risk", "exits", "rate", "ci_low", "ci_high"]], on=col, how="left")
    return m.rename(columns={"rate": "exit_rate", "ci_low": "exit_ci_low", "ci_high": "exit_ci_high"})


def flows(data, period) -> pd.DataFrame:
    """The flows section: ``povdyn.transition_matrix`` into `period` (long form: from,
    to, count, share). On a list register the row of households not poor at t-1 is left
    out (NaN): a list does not hold the households that were not poor, so where they
    went is unknown; the poor and near-poor rows are exact."""
    data = _data(data)
    moves = metric("transition_matrix", data, per_period=True)
    moves = moves[moves["period"].map(_pkey) == _pkey(period)].reset_index(drop=True)
    if data.register == "lists":
        unknown = moves["from_status"] == "non_poor"
        moves["count"] = moves["count"].astype("float64").where(~unknown)
        moves["share"] = moves["share"].where(~unknown)
    return moves


def annual_review_rows(panel, support=None):
    """The Panel view a programme evaluation reads: ``povdyn.programs.evaluation_rows``
    (defined there once: the annual-review rows of the households an evaluation can use)."""
    from .programs import evaluation_rows

    return evaluation_rows(panel, support)


def supported_households(support):
    """The distinct household ids of support records as a small engine table
    (``povdyn.programs.supported_households``)."""
    from .programs import supported_households as households

    return households(support)


def page_numbers(data, period, within: int = 2, support=None, n_boot: int = 200) -> dict:
    """Every number a report page publishes, by section, as numeric tables (before
    labels, formatting and suppression): headline, targets, projection, trends (stock
    shares and exit rates), flows, survival, provinces (national page), groups, and --
    given the support records -- programmes; deprivation when the panel has the
    indicators. A section that cannot be computed for this register is None (the page
    says why: ``rates_need_totals`` / ``deprivation_needs_indicators``)."""
    from . import survival, targets

    data = _data(data)
    out = {
        "headline": headline_values(data, period, within),
        "targets": targets.progress_values(data, period, region=data.region, within=within),
        "projection": (targets.projection(data, period, n_boot=n_boot) if data.rates_known else None),
        "trend_shares": status_shares(data),
        "trend_exits": metric("exit_rates", data),
        "relapse": metric("relapse_rates", data, within=within),
        "flows": flows(data, period),
        "survival": survival.survival_after_exit(data.panel),
        "groups": {by: group_rates(data, period, by) for by in ("area", "ethnic_minority")
                   if by in data.panel.columns},
        "provinces": province_rates(data, period) if data.region == "national" else None,
    }
    if support is not None:
        from . import programs

        out["programmes"] = programs.evaluate_programs(
            annual_review_rows(data.panel, support), support, within=within, region=None, period=period, event_study=False).table
    has_indicators = any(c.startswith("dep_") for c in data.panel.columns)
    if has_indicators:
        from . import deprivation

        out["deprivation"] = deprivation.deprivation_summary(data.panel, period, region=None)
    else:
        out["deprivation"] = None
    return out


# ----------------------------------------------------------------------- run-wide tables
# The metric results a province page computes that are its slice of one grouped answer
# for the whole register: (metric, its arguments as the page asks, the page's grouping).
# Computed once per report run by province (run_wide_tables) instead of once per page;
# every province page then starts with its rows of them (seed_page). Groupings: none
# (headline, trends, targets, flows), area and ethnic minority (groups section), the
# 2025 commune (communes section, povdyn.communes._grouped_metrics).
RUN_WIDE_GROUPINGS = ([], ["area"], ["ethnic_minority"], ["commune_2025"])


def run_wide_requests(columns, within: int = 2, period=None) -> list[tuple[str, dict, list]]:
    """The (metric, keyword arguments, grouping) a province page asks for and
    run_wide_tables can compute for every province at once; groupings the panel lacks
    are left out. With the report `period`, also the annual transitions of the
    projection (``targets.annual_transitions``)."""
    out = [("annual_transitions", {"period": str(period)}, [])] if period is not None else []
    for by in RUN_WIDE_GROUPINGS:
        if not set(by) <= set(columns):
            continue
        out += [("status_shares", {}, by), ("exit_rates", {}, by)]
        if by in ([], ["commune_2025"]):
            out += [("exit_rates", {"from_status": "near_poor"}, by), ("entries", {}, by),
                    ("relapse_rates", {"within": int(within)}, by),
                    ("transition_matrix", {"per_period": True}, by)]
    return out


def _request_key(name: str, kwargs: dict, by: list) -> tuple:
    """The key a Panel remembers this result under (Panel.remembered)."""
    from . import dynamics
    from .stocks import status_shares_key

    if name == "status_shares":
        return status_shares_key(by)
    if name == "annual_transitions":
        from .targets import annual_transitions_key

        return annual_transitions_key(kwargs["period"], kwargs["period_indices"])
    return getattr(dynamics, name).result_key(by=by, **kwargs)


def region_column(columns) -> str:
    """The column a report region is a value of (as ``Panel.region``)."""
    return "province_2025" if "province_2025" in columns else "province"


def run_wide_tables(panel, within: int = 2, regions=None,
                    period=None) -> tuple[list[tuple[str, dict, list, pd.DataFrame]], str | None]:
    """Every result of ``run_wide_requests`` for the whole register, grouped by province
    first (``region_column``): one engine query per metric instead of one per metric and
    province page. ``regions``: the run's regions (names as ``Panel.region`` reads
    them); only their provinces' rows are read (None: every province). ``period``: the
    report period, for the projection's annual transitions. Returns (tables,
    None), or ([], reason) when the slices would not be the province pages' own numbers,
    which then compute their own:

    * a list register (``register="lists"``): its stock denominators come from the
      household totals per province, which a grouping by province joins differently;
    * a household recorded in two provinces (or in one and, in some rows, none): a
      province page reads only its rows in that province, a grouping reads each
      household's province at each period.

    Each table's rows of one province, the province column dropped, are what that page
    would compute (tested in tests/test_report_run_tables.py)."""
    from . import dynamics
    from .stocks import status_shares

    col = region_column(panel.columns)
    if col not in panel.columns:
        return [], "the panel has no province column"
    if panel.register != "full":
        return [], f"a {panel.register} register (stock denominators from the household totals)"
    if regions is not None:
        wanted = {_norm(r) for r in regions if r not in (None, "national", "all")}
        known = panel.execute(panel.table.select(col).distinct())[col].dropna().tolist()
        if any(_norm(v) not in wanted for v in known):  # a view of their rows (the Panel
            # given keeps its own results: a national table read from it stays national)
            panel = replace(panel, table=panel.table.filter(panel.table[col].isin(
                [v for v in known if _norm(v) in wanted])), _histories={}, _results={})
    t = panel.table
    # a household with a blank province in some rows and one in others moves too: the
    # province page does not see its blank rows, a grouping counts them under none
    movers = panel.execute(t.group_by("household_id")
                           .aggregate(n=t[col].nunique(), blank=t[col].isnull().any())
                           .filter(lambda x: (x.n > 1) | ((x.n == 1) & x.blank)).count())
    if int(movers):
        return [], f"{int(movers)} households are recorded in more than one {col} (or in one and none)"
    out = []
    for name, kwargs, by in run_wide_requests(panel.columns, within, period):
        grouped = [col, *by]
        if name == "status_shares":
            result = status_shares(panel, by=grouped)
        elif name == "annual_transitions":
            from .targets import annual_snapshots, annual_transitions

            annual = annual_snapshots(panel, kwargs["period"])
            result = annual_transitions(annual, by=grouped)
            kwargs = {**kwargs, "period_indices": list(annual.period_indices)}
        else:
            result = getattr(dynamics, name)(panel, by=grouped, **kwargs)
        out.append((name, kwargs, by, result))
    return out, None


def seed_national(data: PageData) -> int:
    """Give the national page's panel the by-province status shares and exit rates of
    the run-wide tables (kept by ``page_data`` until now, then read: the provinces
    section is the first to need them), which are its own ``province_rates`` inputs:
    the same metric grouped by province over the same rows. Only a report run that
    covers every province hands them (povdyn.report.run_report). Returns how many were
    handed."""
    pending, data.pending_tables = data.pending_tables, None
    tables = pending() if callable(pending) else pending
    if data.region != "national" or not tables:
        return 0
    col = region_column(data.panel.columns)
    seeded = 0
    for name, kwargs, by, table in tables:
        if by == [] and not kwargs and name in ("status_shares", "exit_rates") and col in table.columns:
            data.panel.remember(_request_key(name, kwargs, [col]), table)
            seeded += 1
    return seeded


def seed_page(data: PageData, tables) -> int:
    """Give a province page's panel its rows of the run-wide tables (run_wide_tables),
    so that its metrics read them instead of asking the engine; returns how many were
    handed. Nothing is handed to the national page, or when the region's name matches
    more than one spelling in the tables (``Panel.region`` then selects them all)."""
    if data.region == "national" or not tables:
        return 0
    col = region_column(data.panel.columns)
    seeded = 0
    for name, kwargs, by, table in tables:
        names = pd.Series(pd.unique(table[col].dropna()))
        match = names[names.map(_norm) == _norm(data.region)]
        if len(match) > 1 or (len(match) == 1 and match.iloc[0] != data.panel.region_name):
            return seeded
        if not len(match):  # no row of the region in this table: the page computes it
            continue
        rows = table[table[col] == match.iloc[0]].drop(columns=col).reset_index(drop=True)
        rows.attrs = dict(table.attrs)
        data.panel.remember(_request_key(name, kwargs, by), rows)
        seeded += 1
    return seeded
