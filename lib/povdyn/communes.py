"""Commune pages and the commune table of a province page (issue 13 §2).

Since July 2025 the commune (xã, phường, đặc khu) is where the poor and near-poor lists
are kept; ingest gives every register row its 2025 commune (``commune_2025``, through
the official crosswalk, povdyn.geo), and a household seen after the reform keeps its
own new commune in its earlier rows too, so a commune's series runs across July 2025
without a break.

**One engine-side pass per province.** ``province_communes`` runs the page metrics once
over a province's Panel grouped by ``commune_2025`` -- ``stocks.status_shares``,
``dynamics.exit_rates`` (from poor and from near-poor), ``dynamics.entries``,
``dynamics.relapse_rates``, ``stocks.removals_from_lists``,
``dynamics.transition_matrix`` -- and keeps the small results. Nothing is defined
here: each number is the metric of methods.md, grouped, so a commune's row is what the
metric gives on that commune's households (tested). The result is cached in this
module, keyed by the panel file (path, size, modification time: a cheap fingerprint),
province, period, register kind, ``within`` and engine, so every commune page of a
province rendered in the same report kernel reuses it (a module survives the runner's
``%reset -f`` between pages). ``commune_page_data`` then gives a commune page a
``pagedata.PageData`` whose metric cache already holds that commune's slice: the
page's headline, trend and flows ask the engine nothing more.

**Disclosure control across pages** (methods.md, Disclosure control; povdyn.suppression).
A province page prints the province's counts; each commune page prints its commune's
counts; the commune table prints some of them again. Every commune count is a part of
the province count, so all pages of a province are one linked table: communes × the
published counts (households, poor, near-poor, exits and their two destinations, the
near-poor at risk and their exits, relapses, newly poor, removals, the relapse cohort,
the nine flows), the province row as their total, and inside each commune row the
relations a page shows (exits = to near-poor + to not poor; the flows chart's rows add
up to the poor and near-poor at risk). ``province_communes`` suppresses that one table
once (``suppression.linked_suppression``: primary below ``min_cell``, complementary so
that no hidden count comes back by subtraction, by solving the relations together or by
the labels' bounds), and every commune page and the commune table hide exactly the
cells it hides; rates on a hidden count are hidden. Counts the province page prints are
kept shown (never picked as complements). Households whose commune is unknown form an
unpublished remainder, so the communes need not add up exactly.

Small communes: a page says in one sentence which figures it cannot show and why
(``hidden_sentence``) instead of a table of "<10".
"""
from __future__ import annotations

import html as _html
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import periods as _periods
from .config import settings
from .errors import PovdynError
from .labels import label

COMMUNE = "commune_2025"
REST = "__unplaced__"      # households without a 2025 commune: an unpublished remainder
PROVINCE = "__province__"  # the total row
STATES = ("poor", "near_poor", "non_poor")
FLOW_COLUMNS = [f"flow_{a}_{b}" for a in STATES for b in STATES]
#: every count a province's pages publish per commune, at the report period
COUNT_COLUMNS = ["households", "poor", "near_poor", "at_risk", "exits", "to_near_poor", "to_non_poor",
                 "np_at_risk", "np_exits", "relapses", "new_poor", "removals", "followed", "relapsed",
                 *FLOW_COLUMNS, "non_poor_row"]
#: the flows chart's rows: their totals are printed in effect (a count and its share)
FLOW_ROWS = {"poor": "at_risk", "near_poor": "np_at_risk", "non_poor": "non_poor_row"}
#: the headline row, and its numerator / denominator columns (pagedata.headline_values keys)
HEADLINE_CELLS = {
    "households": ("households", None),  # the poor rate's denominator, as a row of its own
    "poor_rate": ("poor", "households"),
    "near_poor_rate": ("near_poor", "households"),
    "exit_rate": ("exits", "at_risk"),
    "to_near_poor": ("to_near_poor", "at_risk"),
    "to_non_poor": ("to_non_poor", "at_risk"),
    "near_poor_exit_rate": ("np_exits", "np_at_risk"),
    "relapses": ("relapses", None),
    "new_poor": ("new_poor", None),
    "removals": ("removals", None),
    "relapse_rate": ("relapsed", "followed"),
}

_CACHE: dict = {}
_CACHE_SIZE = 4  # provinces kept per process (a worker renders one province at a time)


def _metric_key(name: str, **kwargs) -> tuple:
    """The key ``pagedata.metric`` caches a metric result under (same expression)."""
    return (name, tuple(sorted((k, repr(v)) for k, v in kwargs.items())))


def _pkey(p) -> int:
    return _periods.parse_period(p)[1]


def _at(table: pd.DataFrame, period, col: str = "period") -> pd.DataFrame:
    return table[table[col].map(_pkey) == _pkey(period)]


def _fingerprint(path: Path) -> tuple:
    """Cheap identity of the processed data: path, size and mtime of the panel (of each
    of its files when it is a folder) and of the household totals beside it (hashing a national panel for every page would cost
    more than the page)."""
    from .panel import _parquet_files

    out = []
    # ingest's panel.parquet/ folder: each period file (an incremental run replaces some)
    panel_files = _parquet_files(path) if path.is_dir() else [path]
    for p in (*panel_files, path.parent / "totals.parquet"):
        try:
            st = os.stat(p)
            out.append((str(p.resolve()), st.st_size, st.st_mtime_ns))
        except OSError:
            out.append((str(p), None, None))
    return tuple(out)


def _panel_file(data_dir) -> Path:
    path = Path(data_dir or settings().processed_dir)
    if path.is_dir():
        path = path / "panel.parquet"
    if not path.exists():
        raise PovdynError(f"{path} not found: run `povdyn ingest` first or set data_dir")
    return path


# --------------------------------------------------------------------------- aggregates
@dataclass
class ProvinceCommunes:
    """A province's commune aggregates (module docstring).

    ``data``: the province's PageData (its metric cache is shared with the province page
    when that page builds the commune table); ``metrics``: {pagedata cache key: the
    metric's result grouped by ``commune_2025``, every period}; ``values``: the counts
    each page publishes at ``period``, one row per commune plus the province row
    (``PROVINCE``) and, when some households have no commune, the unpublished
    remainder (``REST``); ``status``: the joint suppression status of every
    (row, column) cell ("", "primary", "secondary")."""

    province: str
    period: str
    within: int
    data: object
    metrics: dict
    values: pd.DataFrame
    status: pd.Series
    min_cell: int
    province_shown: set = field(default_factory=set)
    seconds: dict = field(default_factory=dict)
    # the targets' metric tables grouped by commune (``target_series``), filled on demand
    targets: dict = field(default_factory=dict)

    @property
    def communes(self) -> list[str]:
        """The province's 2025 communes (sorted), those with a household on the register."""
        return [c for c in self.values.index if c not in (PROVINCE, REST)]

    def hidden(self, row: str, column: str) -> bool:
        return bool(self.status.get((None, row, column), ""))

    def mark(self, row: str, column: str) -> str:
        """How a hidden count is printed: "<10" (small) or "x" (hidden to protect another)."""
        s = self.status.get((None, row, column), "")
        return f"<{self.min_cell}" if s == "primary" else ("x" if s else "")


def province_communes(data_dir=None, province: str = "", period=None, within: int = 2,
                      register: str | None = None, engine: str | None = None, data=None,
                      min_cell: int | None = None) -> ProvinceCommunes:
    """The commune aggregates of one province at `period` (module docstring), computed
    once per process for the same data, province, period, register, within and engine.
    `data`: the province page's PageData, when the caller has it (its cached metrics
    are reused); otherwise the panel is read from `data_dir`."""
    from .pagedata import page_data

    min_cell = settings().min_cell if min_cell is None else int(min_cell)
    path = _panel_file(data_dir if data is None else (data_dir or settings().processed_dir))
    if data is not None:  # the page's own data: its region, register kind and engine
        province, register, engine = data.region, data.register, data.panel.engine
    key = (_fingerprint(path), province, str(period), register, int(within), engine, min_cell)
    if key in _CACHE:
        return _CACHE[key]
    import time

    started = time.perf_counter()
    if data is None:
        data = page_data(path, province, register=register, engine=engine)
    if COMMUNE not in data.panel.columns:
        raise PovdynError(f"{path} has no {COMMUNE} column: run `povdyn ingest` again (ingest adds "
                          "the 2025 commune of every row through the official crosswalk)")
    if period in (None, "latest"):
        period = data.panel.periods[-1]
    period = _periods.canonical([period])[0]
    metrics = _grouped_metrics(data, within)
    seconds = {"queries": round(time.perf_counter() - started, 3)}
    values = _period_values(data, metrics, period, within)
    t0 = time.perf_counter()
    shown = province_published(data, values, period, within, min_cell)
    status = _joint_status(values, min_cell, shown)
    seconds["suppression"] = round(time.perf_counter() - t0, 3)
    out = ProvinceCommunes(province=data.region, period=period, within=int(within), data=data,
                           metrics=metrics, values=values, status=status, min_cell=min_cell,
                           province_shown=shown,
                           seconds=seconds)
    while len(_CACHE) >= _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = out
    return out


def _grouped_metrics(data, within: int) -> dict:
    """Each metric a commune page shows, grouped by commune: one engine query each over
    the province's household pivot (povdyn.dynamics keeps one pivot per grouping)."""
    from . import dynamics
    from .stocks import removals_from_lists, status_shares

    panel = data.panel_for(COMMUNE)
    by = [COMMUNE]
    return {
        ("status_shares", repr(None)): status_shares(panel, by=by),
        ("removals", repr(None)): removals_from_lists(panel, by=by),
        _metric_key("exit_rates"): dynamics.exit_rates(panel, by=by),
        _metric_key("exit_rates", from_status="near_poor"): dynamics.exit_rates(panel, by=by,
                                                                                from_status="near_poor"),
        _metric_key("entries"): dynamics.entries(panel, by=by),
        _metric_key("relapse_rates", within=within): dynamics.relapse_rates(panel, within=within, by=by),
        _metric_key("transition_matrix", per_period=True): dynamics.transition_matrix(panel, by=by,
                                                                                       per_period=True),
    }


def _counts_at(tables: dict, period, within: int, by: list[str]) -> pd.DataFrame:
    """The published counts at `period` from metric results (grouped by `by`, or not)."""
    def pick(key, cols, rename, at=period, col="period"):
        t = _at(tables[key], at, col)
        t = t[[*by, *cols]].rename(columns=rename)
        return t.set_index(by) if by else t.reset_index(drop=True)

    parts = [
        pick(("status_shares", repr(None)), ["households", "poor", "near_poor"], {}),
        pick(_metric_key("exit_rates"), ["at_risk", "exits", "to_near_poor", "to_non_poor"], {}),
        pick(_metric_key("exit_rates", from_status="near_poor"), ["at_risk", "exits"],
             {"at_risk": "np_at_risk", "exits": "np_exits"}),
        pick(_metric_key("entries"), ["relapsed", "new_poor"], {"relapsed": "relapses"}),
        pick(("removals", repr(None)), ["removals"], {}),
        pick(_metric_key("relapse_rates", within=within), ["followed", "relapsed"], {},
             at=_periods.shift(period, -within), col="exit_period"),
    ]
    tm = _at(tables[_metric_key("transition_matrix", per_period=True)], period)
    tm = tm.assign(_col="flow_" + tm["from_status"].astype(str) + "_" + tm["to_status"].astype(str))
    tm = tm[tm["_col"].isin(FLOW_COLUMNS)]
    if by:
        flows = tm.pivot_table(index=by, columns="_col", values="count", aggfunc="sum")
    else:
        flows = tm.groupby("_col")["count"].sum().to_frame().T.reset_index(drop=True)
    parts.append(flows)
    if by:
        out = pd.concat(parts, axis=1)
    else:
        out = pd.concat([p.reset_index(drop=True) if len(p) else pd.DataFrame(index=[0]) for p in parts], axis=1)
    out = out.reindex(columns=COUNT_COLUMNS)
    for c in COUNT_COLUMNS:  # a flow with no event in a period is a zero, not unknown
        if c != "households":
            out[c] = out[c].fillna(0)
    out["non_poor_row"] = out[[f"flow_non_poor_{b}" for b in STATES]].sum(axis=1)
    return out


def _period_values(data, metrics: dict, period, within: int) -> pd.DataFrame:
    """[COUNT_COLUMNS] per commune at `period`, plus the province row (the ungrouped
    metrics, as the province page computes them, through its cache) and the remainder
    of households without a commune (NaN: not published)."""
    from .pagedata import metric, removals, status_shares

    communes = _counts_at(metrics, period, within, [COMMUNE])
    communes = communes[communes.index.notna()].sort_index()
    province_tables = {
        ("status_shares", repr(None)): status_shares(data),
        ("removals", repr(None)): removals(data),
        _metric_key("exit_rates"): metric("exit_rates", data),
        _metric_key("exit_rates", from_status="near_poor"): metric("exit_rates", data, from_status="near_poor"),
        _metric_key("entries"): metric("entries", data),
        _metric_key("relapse_rates", within=within): metric("relapse_rates", data, within=within),
        _metric_key("transition_matrix", per_period=True): metric("transition_matrix", data, per_period=True),
    }
    total = _counts_at(province_tables, period, within, [])
    total.index = [PROVINCE]
    rest = total.iloc[0] - communes.sum(axis=0, min_count=1).reindex(COUNT_COLUMNS)
    out = pd.concat([communes, total])
    if (rest.fillna(0) != 0).any():
        out.loc[REST] = np.nan  # unpublished: the relation then has an unknown part
    out.index.name = COMMUNE
    return out.astype(float)


def _relations(values: pd.DataFrame) -> list:
    """Column sums (communes -> province) and, in each row, the splits a page shows."""
    from .suppression import Relation

    rows = [r for r in values.index if r != PROVINCE]
    rels = [Relation((None, PROVINCE, c), tuple((None, r, c) for r in rows)) for c in COUNT_COLUMNS]
    for r in values.index:
        def cell(c):
            return (None, r, c)
        rels.append(Relation(cell("exits"), (cell("to_near_poor"), cell("to_non_poor"))))
        # the flows chart prints each cell's count and its share of the row, so the row
        # (the households poor / near-poor at t-1 still observed at t) is known: it is
        # the exit and near-poor exit denominators; the flows into a status add up to
        # the exits (poor -> near-poor / not poor are the exit destinations)
        for origin, total in FLOW_ROWS.items():
            rels.append(Relation(cell(total), tuple(cell(f"flow_{origin}_{b}") for b in STATES)))
        rels.append(Relation(cell("to_near_poor"), (cell("flow_poor_near_poor"),)))
        rels.append(Relation(cell("to_non_poor"), (cell("flow_poor_non_poor"),)))
    return rels


def province_published(data, values: pd.DataFrame, period, within: int, min_cell: int) -> set[str]:
    """The count columns whose province value the province page prints: its headline
    (``tables.headline``, with that table's own suppression) and its flows chart
    (``plots.dynamics.flow_cells``: a cell printed with its share also prints its row's
    total)."""
    from .pagedata import headline_values
    from .plots.dynamics import flow_cells
    from .tables import headline

    keys = list(headline_values(data, period, within)["key"])
    table = headline(data, period, within=within, min_cell=min_cell)
    shown = set()
    for i, key in enumerate(keys):
        if key not in HEADLINE_CELLS:
            continue
        num_col, den_col = HEADLINE_CELLS[key]
        for pos, col in ((1, num_col), (2, den_col)):
            text = str(table.iat[i, pos])
            if col is not None and text and text[0].isdigit():
                shown.add(col)
    if "poor" in shown or "near_poor" in shown:
        row = keys.index("poor_rate")
        if str(table.iat[row, 2])[:1].isdigit():
            shown.add("households")
    matrix = np.array([[values.at[PROVINCE, f"flow_{a}_{b}"] for b in STATES] for a in STATES], dtype=float)
    _, _, small, secondary, unknown = flow_cells(matrix, min_cell)
    printed = ~(small | secondary | unknown)
    for i, a in enumerate(STATES):
        for j, b in enumerate(STATES):
            if printed[i, j]:
                shown.update({f"flow_{a}_{b}", FLOW_ROWS[a]})
    return shown


def _joint_status(values: pd.DataFrame, min_cell: int, province_shown: set) -> pd.Series:
    """linked_suppression over every commune count of the province (module docstring).
    The province counts its page prints (``province_published``) stay shown and are
    never chosen as complements; the others are cells like any other (the rule may
    take one as a complement, which costs nothing: the province page hides it anyway)."""
    from .suppression import linked_suppression, table_cells

    cells = table_cells(values, COUNT_COLUMNS)
    rels = [r for r in _relations(values) if all(c in cells.index for c in r.cells)]
    shown = [(None, PROVINCE, c) for c in COUNT_COLUMNS if c in province_shown and values.at[PROVINCE, c] >= min_cell]
    return linked_suppression(cells, rels, min_cell=min_cell, shown=shown)


# --------------------------------------------------------------------------- one commune
def commune_names(data_dir=None, province: str = "", register: str | None = None,
                  engine: str | None = None) -> list[str]:
    """The 2025 communes of a province that have households on the register (sorted)."""
    from .pagedata import page_data

    data = page_data(data_dir, province, register=register, engine=engine)
    t = data.panel.table
    names = data.panel.execute(t.select(COMMUNE).distinct())[COMMUNE].dropna().tolist()
    return sorted(names)


def _resolve_commune(pc: ProvinceCommunes, commune: str) -> str:
    from .geo import normalise_name

    wanted = normalise_name(commune)
    match = [c for c in pc.communes if normalise_name(c) == wanted]
    if not match:
        raise PovdynError(f"commune {commune!r} has no household on the register of {pc.province}; "
                          f"known: {', '.join(pc.communes[:40])}{' ...' if len(pc.communes) > 40 else ''}")
    return match[0]


def commune_page_data(pc: ProvinceCommunes, commune: str):
    """The PageData of one commune page: the province's Panel restricted to the
    commune (lazy, engine-side) with its metric cache filled from the province's
    grouped results, so the page's tables and charts read the commune's slice."""
    from .pagedata import PageData

    commune = _resolve_commune(pc, commune)
    panel = pc.data.panel
    view = PageData(panel=_commune_panel(panel, commune), region=pc.province)
    for key, table in pc.metrics.items():
        part = table[table[COMMUNE] == commune].drop(columns=COMMUNE).reset_index(drop=True)
        part.attrs.update(table.attrs)
        view.cache[key] = part
    view.commune = commune  # type: ignore[attr-defined]
    return view


def _commune_panel(panel, commune: str):
    from dataclasses import replace

    t = panel.table.filter(panel.table[COMMUNE] == commune)
    return replace(panel, table=t, _histories={})


@dataclass
class CommunePage:
    """What a commune page notebook needs: ``data`` (PageData of the commune), the
    province's aggregates ``province`` and the resolved names."""

    data: object
    province: ProvinceCommunes
    commune: str
    period: str


def commune_page(data_dir=None, region: str = "", commune: str = "", period=None, within: int = 2,
                 register: str | None = None, engine: str | None = None) -> CommunePage:
    """Everything a commune page shows, from the (cached) province aggregates."""
    pc = province_communes(data_dir, region, period, within=within, register=register, engine=engine)
    data = commune_page_data(pc, commune)
    return CommunePage(data=data, province=pc, commune=data.commune, period=pc.period)


# --------------------------------------------------------------------------- published tables
def headline_table(page: CommunePage, lang: str = "vi") -> pd.DataFrame:
    """The commune headline a reviewer reads: indicator, households, out of, rate %,
    95% interval, change of the rate since the same period last year (points). Counts
    hidden as the province's joint suppression hides them; a rate on a hidden count is
    "—". Rows with nothing left to show are dropped and named in ``attrs["hidden"]``
    (``hidden_sentence`` says it in words). Counts are not compared with earlier
    periods: each earlier count is a part of a province count too."""
    from .formatting import fmt_count, fmt_interval, fmt_pct
    from .labels import text
    from .pagedata import headline_values

    pc, commune = page.province, page.commune
    values = headline_values(page.data, page.period, pc.within).set_index("key")
    rows, hidden = [], []
    values.loc["households"] = np.nan
    values.loc["households", ["numerator", "year_numerator"]] = \
        values.loc["poor_rate", ["denominator", "year_denominator"]].to_numpy()
    for key, (num_col, den_col) in HEADLINE_CELLS.items():
        v = values.loc[key]
        num_hidden = pc.hidden(commune, num_col)
        den_hidden = den_col is not None and pc.hidden(commune, den_col)
        rate_ok = den_col is not None and not (num_hidden or den_hidden) and np.isfinite(v["rate"])
        if num_hidden:  # said in one sentence instead of a row of "<10"
            hidden.append(key)
            continue
        year_ok = rate_ok and np.isfinite(v["year_rate"]) and v["year_numerator"] >= pc.min_cell \
            and v["year_denominator"] >= pc.min_cell
        name = (text("relapse_rate_row", lang, name=label("relapse_rate", lang), within=pc.within,
                     cohort=_periods.shift(page.period, -pc.within)) if key == "relapse_rate" else label(key, lang))
        rows.append({
            label("indicator", lang): name,
            label("numerator", lang): pc.mark(commune, num_col) or fmt_count(v["numerator"], lang),
            label("denominator", lang): ("" if den_col is None else
                                         pc.mark(commune, den_col) or fmt_count(v["denominator"], lang)),
            label("rate", lang) + " (%)": fmt_pct(v["rate"], lang) if rate_ok else ("" if den_col is None else "—"),
            label("ci95", lang): fmt_interval(v["ci_low"], v["ci_high"], lang) if rate_ok else "",
            label("vs_last_year", lang) + " (" + label("points", lang) + ")":
                fmt_pct(v["rate"] - v["year_rate"], lang) if year_ok else "",
        })
    columns = [label("indicator", lang), label("numerator", lang), label("denominator", lang),
               label("rate", lang) + " (%)", label("ci95", lang),
               label("vs_last_year", lang) + " (" + label("points", lang) + ")"]
    out = pd.DataFrame(rows, columns=columns)
    out.attrs["hidden"] = hidden
    return out


def hidden_sentence(hidden: list[str], lang: str = "vi", min_cell: int | None = None) -> str | None:
    """One sentence naming the figures a commune page leaves out, and why; None if none."""
    if not hidden:
        return None
    min_cell = settings().min_cell if min_cell is None else min_cell
    names = ", ".join(label(k, lang).lower() for k in hidden)
    return label("commune_hidden", lang).format(names=names, m=min_cell)


def flow_counts(page: CommunePage) -> pd.DataFrame:
    """The commune's flows at the period (long form: from_status, to_status, count) with
    the cells the joint suppression hides as NaN-free counts and a ``hidden`` flag."""
    pc = page.province
    rows = []
    for a in STATES:
        for b in STATES:
            col = f"flow_{a}_{b}"
            rows.append(dict(from_status=a, to_status=b, count=pc.values.at[page.commune, col],
                             hidden=pc.hidden(page.commune, col)))
    return pd.DataFrame(rows)


def commune_table_values(pc: ProvinceCommunes) -> pd.DataFrame:
    """Numeric commune table of a province page: per commune, households, poor, poor
    rate, exits and exit rate, relapse rate within k (each rate with its Wilson
    interval) and the hidden flags of the joint suppression; ranked by poor rate (only
    rates that are shown: hidden ones would give away an order), then exit rate, then
    relapse rate, then name."""
    from .intervals import wilson_interval

    v = pc.values.loc[pc.communes]
    out = pd.DataFrame(index=v.index)
    for name, num, den in (("poor_rate", "poor", "households"), ("exit_rate", "exits", "at_risk"),
                           ("relapse_rate", "relapsed", "followed")):
        out[num], out[den] = v[num], v[den]
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.where(v[den] > 0, v[num] / v[den], np.nan)
        lo, hi = wilson_interval(v[num].fillna(0).to_numpy(), v[den].fillna(0).to_numpy())
        shown = np.array([not (pc.hidden(c, num) or pc.hidden(c, den)) for c in v.index]) & np.isfinite(rate)
        out[name] = np.where(shown, rate, np.nan)
        out[f"{name}_low"] = np.where(shown, lo, np.nan)
        out[f"{name}_high"] = np.where(shown, hi, np.nan)
    out = out.sort_values(["poor_rate", "exit_rate", "relapse_rate"], ascending=False, na_position="last",
                          kind="stable")
    # hidden rates last, by name (their order must not follow the hidden values)
    shown_rows = out[out["poor_rate"].notna()]
    rest = out[out["poor_rate"].isna()].sort_index()
    return pd.concat([shown_rows, rest])


def commune_href(province: str, commune: str) -> str:
    """Where a commune page sits relative to the province page: <province>/<commune>.html."""
    from .report import slugify

    return f"{slugify(province)}/{slugify(commune)}.html"


def commune_table_html(pc: ProvinceCommunes, lang: str = "vi") -> str:
    """The commune table a province page shows (HTML): ranked by poor rate, with exits
    and relapse, intervals, the joint suppression's marks, each commune name a link to
    its page once that page exists (``report.link_existing_pages`` turns the marked
    names into links when the pages are there)."""
    from .formatting import fmt_count, fmt_interval, fmt_pct

    t = commune_table_values(pc)
    head = [label("commune_2025", lang), label("households", lang), label("poor_households", lang),
            label("poor_rate", lang) + " (%)", label("ci95", lang), label("exits", lang),
            label("exit_rate", lang) + " (%)", label("ci95", lang),
            text_relapse(pc, lang), label("ci95", lang)]
    body = []
    for c, r in t.iterrows():
        def count(col):
            return pc.mark(c, col) or fmt_count(r[col], lang)

        def rate(name):
            if not np.isfinite(r[name]):
                return "—", ""
            return fmt_pct(r[name], lang), fmt_interval(r[f"{name}_low"], r[f"{name}_high"], lang)

        pr, pci = rate("poor_rate")
        er, eci = rate("exit_rate")
        rr, rci = rate("relapse_rate")
        name = (f'<span class="povdyn-page-link" data-povdyn-href="{_html.escape(commune_href(pc.province, c))}">'
                f"{_html.escape(str(c))}</span>")
        cells = [name] + [_html.escape(x) for x in (count("households"), count("poor"), pr, pci, count("exits"),
                                                     er, eci, rr, rci)]
        body.append("<tr>" + "".join(f"<td>{x}</td>" for x in cells) + "</tr>")
    thead = "".join(f"<th>{_html.escape(h)}</th>" for h in head)
    return (f'<table class="povdyn-table povdyn-communes"><thead><tr>{thead}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


def text_relapse(pc: ProvinceCommunes, lang: str = "vi") -> str:
    from .labels import text

    return text("relapse_rate_row", lang, name=label("relapse_rate", lang), within=pc.within,
                cohort=_periods.shift(pc.period, -pc.within)) + " (%)"


def commune_section(data, period, within: int = 2, lang: str = "vi", data_dir=None):
    """The province page's commune section: heading, a sentence and the table (display
    in a notebook); nothing when the panel has no 2025 communes (a register ingested
    before the crosswalk). `data`: the province page's PageData (its cached metrics
    are reused)."""
    from IPython.display import HTML, Markdown, display

    from .display import heading

    if COMMUNE not in data.panel.columns:
        return None
    heading("communes", lang)
    pc = province_communes(data_dir, period=period, within=within, data=data)
    display(Markdown(label("commune_table_note", lang).format(m=pc.min_cell, n=len(pc.communes))))
    display(HTML(commune_table_html(pc, lang)))
    return pc


# --------------------------------------------------------------------------- the commune page
def title(page: CommunePage, lang: str = "vi"):
    """The page title (a Markdown heading) and, when the page hides figures, the one
    sentence saying which and why."""
    from IPython.display import Markdown, display

    from IPython.display import HTML

    from .report import slugify

    display(Markdown(f"# {label('commune_report_title', lang)}: {page.commune} "
                     f"({page.province.province}), {page.period}"))
    if not np.isfinite(page.province.values.at[page.commune, "households"]):
        # no totals at all, or totals that do not cover this commune (stocks.commune_totals)
        has_totals = getattr(page.province.data.panel, "totals", None) is not None
        display(Markdown(label("commune_total_not_covered" if has_totals else "commune_rates_need_totals",
                               lang)))
    # a link back to the province page, shown once that page exists (report.link_existing_pages)
    display(HTML(f'<p><span class="povdyn-page-link povdyn-hidden-link" '
                 f'data-povdyn-href="../{slugify(page.province.province)}.html">'
                 f'{_html.escape(label("province_page", lang))}: {_html.escape(page.province.province)}</span></p>'))


def show_headline(page: CommunePage, lang: str = "vi"):
    """The headline table, or the sentence that nothing can be shown; under it the
    sentence naming what is left out and why."""
    from IPython.display import Markdown, display

    from .display import show

    table = headline_table(page, lang)
    if len(table):
        show(table)
    else:
        display(Markdown(label("commune_nothing_shown", lang).format(m=page.province.min_cell)))
    sentence = hidden_sentence(table.attrs["hidden"], lang, page.province.min_cell)
    if sentence:
        display(Markdown(sentence))
    return table


def trend_tables(page: CommunePage) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The commune's stock shares and exit rates over the periods, for
    ``plots.dynamics.trends``, with the report period's points left out where the
    joint suppression hides their count or denominator (a rate beside a printed count
    gives the other count back). The chart itself leaves out points on fewer than
    min_cell households."""
    from .pagedata import metric, status_shares

    pc, c = page.province, page.commune
    shares = status_shares(page.data)
    exits = metric("exit_rates", page.data)
    now = shares["period"].map(_pkey) == _pkey(page.period)
    for st in ("poor", "near_poor"):
        if pc.hidden(c, st) or pc.hidden(c, "households"):
            shares[st] = shares[st].astype(float).where(~now, np.nan)
    now = exits["period"].map(_pkey) == _pkey(page.period)
    if pc.hidden(c, "exits") or pc.hidden(c, "at_risk"):
        exits["exits"] = exits["exits"].astype(float).where(~now, np.nan)
    return shares, exits


def trend_drawable(shares: pd.DataFrame, exits: pd.DataFrame, min_cell: int) -> bool:
    """Whether the trend chart has at least one point to draw."""
    ok = any(((shares[st] >= min_cell) & shares[f"{st}_rate"].notna()).any() for st in ("poor", "near_poor"))
    return bool(ok or ((exits["at_risk"].fillna(0) >= min_cell) & (exits["exits"].fillna(0) >= min_cell)).any())


def show_trend(page: CommunePage, lang: str = "vi"):
    """The trend chart across July 2025 (the commune's series has no break: module
    docstring), or a sentence when no period has enough households."""
    from IPython.display import Markdown, display

    from .plots import dynamics as charts, show

    shares, exits = trend_tables(page)
    if trend_drawable(shares, exits, page.province.min_cell):
        show(charts.trends(shares, exits, lang=lang, min_cell=page.province.min_cell))
    else:
        display(Markdown(label("commune_trend_hidden", lang).format(m=page.province.min_cell)))


def flows_hidden(page: CommunePage) -> np.ndarray:
    """3x3 cells of the flows chart to hide: those the joint suppression hides, and
    whole rows whose total it hides (a printed share would give the total back)."""
    pc, c = page.province, page.commune
    out = np.zeros((3, 3), dtype=bool)
    for i, a in enumerate(STATES):
        row_hidden = pc.hidden(c, FLOW_ROWS[a])
        for j, b in enumerate(STATES):
            out[i, j] = row_hidden or pc.hidden(c, f"flow_{a}_{b}")
    return out


def show_flows(page: CommunePage, lang: str = "vi"):
    """The flows chart with the joint suppression's cells hidden, or a sentence when
    every cell is hidden."""
    from IPython.display import Markdown, display

    from .pagedata import flows
    from .plots import dynamics as charts, show

    pc = page.province
    counts = flows(page.data, page.period)
    hidden = flows_hidden(page)
    matrix = np.zeros((3, 3))
    for r in counts.itertuples(index=False):
        if r.from_status in STATES and r.to_status in STATES:
            matrix[STATES.index(r.from_status), STATES.index(r.to_status)] += r.count
    if np.all(hidden | (matrix < pc.min_cell) | ~np.isfinite(matrix)):
        display(Markdown(label("commune_flows_hidden", lang).format(m=pc.min_cell)))
        return None
    show(charts.flows(counts, lang=lang, min_cell=pc.min_cell, hidden=hidden))
    return hidden


def targets_table(page: CommunePage, lang: str = "vi", targets_file=None) -> pd.DataFrame:
    """Plan vs actual for the commune: its own targets, else its province's, else the
    national ones, each saying where it comes from (``povdyn.targets.targets_table``;
    ``targets_file``: the office's file, None = national defaults only). Counts and the
    actuals resting on them are printed as the province's joint suppression allows
    (``unit_hidden``); earlier-period and group counts are not printed. The households
    column is left out (a count beside the province's parts)."""
    from . import targets

    pc = page.province
    applicable = targets.applicable_targets(targets_file, pc.province, page.commune)
    table = targets.targets_table(page.data, page.period, pc.province, page.commune, within=pc.within, lang=lang,
                                  min_cell=pc.min_cell, applicable=applicable,
                                  unit_hidden=lambda col: pc.hidden(page.commune, col),
                                  series=target_series(page, applicable))
    return table.drop(columns=[label("households", lang)])


def target_series(page: CommunePage, applicable: pd.DataFrame) -> dict:
    """The metric tables plan vs actual reads for `applicable` on the commune's
    households ({``targets.series_key``: table}), sliced from its province's tables
    grouped by commune: each is computed once per province (the ungrouped ones are the
    commune aggregates themselves), so a commune page's targets ask the engine nothing."""
    from . import targets

    pc = page.province
    keys = set()
    for indicator, group in zip(applicable["indicator"], applicable["group"]):
        key = targets.series_key(indicator, group)
        if all(c in pc.data.panel.columns for c in key[1]):
            keys |= {key, (key[0], ())}  # a group's row also reads the whole unit's count
    out = {}
    for key in keys:
        if key not in pc.targets:
            if not key[1]:  # the commune aggregates (_grouped_metrics)
                metric = _metric_key("relapse_rates", within=pc.within) if key[0] else ("status_shares", repr(None))
                pc.targets[key] = pc.metrics[metric]
            else:
                by = [COMMUNE, *key[1]]
                pc.targets[key] = targets.series_table(pc.data.panel_for(by), key, pc.within, by_first=(COMMUNE,))
        table = pc.targets[key]
        part = table[table[COMMUNE] == page.commune].drop(columns=COMMUNE).reset_index(drop=True)
        part.attrs.update(table.attrs)
        out[key] = part
    return out


def show_targets(page: CommunePage, lang: str = "vi", targets_file=None):
    from .display import show

    show(targets_table(page, lang, targets_file))


def methods_note(lang: str = "vi"):
    """The commune page's methods paragraph: 2025 communes across the reform and the
    complementary suppression across the province's pages."""
    from IPython.display import Markdown, display

    display(Markdown(label("commune_methods", lang).format(m=settings().min_cell)))
