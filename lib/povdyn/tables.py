"""Tables for the report pages and notebooks, built from the library's metrics.

Nothing here defines a flow metric: exits, entries, relapses and transitions come from
``povdyn.dynamics`` (methods.md, "Flow metrics"). This module only picks the periods a
page shows, puts counts beside rates, computes changes, applies small-cell suppression
(``povdyn.privacy.suppress_small_cells``: every table a reviewer sees passes through it)
and labels columns in Vietnamese or English.

The one stock measure defined here is the **status share** at a period t (methods.md,
"All rates come with counts"): poor rate = poor households at t / households on the
register with a status at t (removal rows have no status and are not counted), with a
Wilson 95% interval; the same for near-poor.
"""
from __future__ import annotations

import html as _html
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import periods as _periods
from .config import settings
from .errors import PovdynError
from .intervals import wilson_interval
from .labels import label

STATUSES = ("poor", "near_poor", "non_poor")


# --------------------------------------------------------------------------- data
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
              engine: str | None = None) -> PageData:
    """The processed panel of a page (data_dir/panel.parquet; default
    settings().processed_dir) as an engine-side Panel restricted to `region`
    (``Panel.region``: diacritics and case ignored, unknown names listed). `register`:
    None = the kind ingest recorded, or "lists" / "full"; the household totals beside
    the panel come with it (povdyn.panel)."""
    from .panel import load_panel

    path = Path(data_dir or settings().processed_dir)
    if path.is_dir() and (path / "panel.parquet").exists():
        path = path / "panel.parquet"
    if not path.exists():
        raise PovdynError(f"{path} not found: run `povdyn ingest` first or set data_dir")
    panel = load_panel(path, register=register, engine=engine)
    if not panel.periods:
        raise PovdynError(f"{path}: the panel has no rows; run `povdyn ingest` on the registers "
                          "in data/raw/ (see data/raw/README.md)")
    region = "national" if region in (None, "national", "all") else region
    return PageData(panel=panel.region(region), region=region)


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


# --------------------------------------------------------------------------- stock measures
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


def removals(data, by=None) -> pd.DataFrame:
    """Households taken off the poor and near-poor lists at each period for death,
    migration, merger or split (povdyn.stocks.removals_from_lists)."""
    from .stocks import removals_from_lists

    data = _data(data)
    key = ("removals", repr(by))
    if key not in data.cache:
        data.cache[key] = removals_from_lists(data.panel_for(by), by=by)
    return data.cache[key].copy()


# --------------------------------------------------------------------------- headline
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


STOCK_KEYS = ("poor_rate", "near_poor_rate")  # headline rows that are stocks, not flows


def headline(df: pd.DataFrame, period, within: int = 2, lang: str = "vi", min_cell: int | None = None) -> pd.DataFrame:
    """The headline table a reviewer reads: indicator, households (numerator), out of
    (denominator), rate %, 95% interval, change vs previous period and vs the same period
    last year (points for rates, households for counts). Small cells suppressed: a
    count below min_cell shows "<10"; a rate, interval or change resting on any such
    count shows "—". On quarterly data the flows are compared with the same quarter a
    year earlier only (their "vs previous period" is blank; ``attrs["note"]`` says why,
    and ``show`` prints it under the table)."""
    from .privacy import suppress_small_cells

    values = headline_values(df, period, within)
    t = values.copy()
    is_rate = t["kind"] == "rate"
    for pre in ("prev_", "year_"):
        t[f"change_{pre}"] = np.where(is_rate, (t["rate"] - t[f"{pre}rate"]) * 100,
                                      t["numerator"] - t[f"{pre}numerator"])
    basis_prev = ("numerator", "denominator", "prev_numerator", "prev_denominator")
    basis_year = ("numerator", "denominator", "year_numerator", "year_denominator")
    # rows without a denominator (counts) must not be governed by it: fill with a large
    # sentinel only for the suppression test, then blank it again
    big = 10**12
    for c in ("denominator", "prev_denominator", "year_denominator"):
        t[c] = t[c].where(~(~is_rate & t[c].isna()), big)
    # a change that does not exist (no earlier period) stays missing
    sup = suppress_small_cells(
        t, count_cols=["numerator", "denominator", "prev_numerator", "year_numerator"],
        rate_cols=["rate", "ci_low", "ci_high", "change_prev_", "change_year_"],
        min_cell=min_cell,
        rate_basis={"rate": ("numerator", "denominator"), "ci_low": ("numerator", "denominator"),
                    "ci_high": ("numerator", "denominator"), "change_prev_": basis_prev,
                    "change_year_": basis_year},
    )
    sup["denominator"] = sup["denominator"].where(sup["denominator"] != big, np.nan)
    quarterly = _periods.parse_period(values.attrs["period"])[0] == "quarter"
    if quarterly:
        # a flow into the annual-review quarter is not comparable with one into an ad-hoc
        # quarter (issue 15 §5): flows are compared with the same quarter a year earlier
        flow = ~sup["key"].isin(STOCK_KEYS)
        sup["change_prev_"] = sup["change_prev_"].astype(object).where(~flow, None)
    from .labels import text

    labels_ = {"relapse_rate": text("relapse_rate_row", lang, name=label("relapse_rate", lang),
                                    within=within,
                                    cohort=_periods.shift(values.attrs["period"], -within))}
    out = pd.DataFrame({
        label("indicator", lang): [labels_.get(k, label(k, lang)) for k in sup["key"]],
        label("numerator", lang): [fmt_count(v, lang) for v in sup["numerator"]],
        label("denominator", lang): [fmt_count(v, lang) for v in sup["denominator"]],
        label("rate", lang) + " (%)": [fmt_pct(v, lang) for v in sup["rate"]],
        label("ci95", lang): [fmt_interval(lo, hi, lang) for lo, hi in zip(sup["ci_low"], sup["ci_high"])],
        label("vs_previous", lang): [fmt_change(v, k, lang) for v, k in zip(sup["change_prev_"], sup["kind"])],
        label("vs_last_year", lang): [fmt_change(v, k, lang) for v, k in zip(sup["change_year_"], sup["kind"])],
    })
    out.attrs.update(values.attrs)
    if quarterly:
        out.attrs["note"] = label("quarterly_flows_note", lang)
    return out


# --------------------------------------------------------------------------- many regions
def regions_overview(panel, period, regions, lang: str = "vi", min_cell: int | None = None) -> pd.DataFrame:
    """One row per report region (national and/or provinces) with poor and near-poor
    households and rates, exits and exit rate (95% interval), relapses and newly poor at
    `period`; small cells suppressed. `panel`: PageData, a DataFrame, or a parquet
    path/folder (read as national PageData)."""
    from .privacy import suppress_small_cells

    if isinstance(panel, (PageData, pd.DataFrame)) or not isinstance(panel, (str, Path)):
        df = _data(panel)
    else:
        df = page_data(Path(panel).parent if Path(panel).suffix else panel, "national")
    col = "province_2025" if "province_2025" in df.panel.columns else "province"
    rows = []
    provinces = [r for r in regions if r != "national"]
    parts = []
    if "national" in regions:
        parts.append(("national", df, None))
    if provinces:
        parts.append(("by", df, col))
    for kind, frame, by in parts:
        sh = _at(status_shares(frame, by=by), period)
        ex = _at(metric("exit_rates", frame, by=by), period)
        en = _at(metric("entries", frame, by=by), period)
        keys = [c for c in ([by] if by else [])]
        m = sh.merge(ex[[*keys, "at_risk", "exits", "rate", "ci_low", "ci_high"]], on=keys, how="left") if keys \
            else sh.assign(**{c: (ex[c].iloc[0] if len(ex) else np.nan) for c in ["at_risk", "exits", "rate", "ci_low", "ci_high"]})
        m = m.merge(en[[*keys, "relapsed", "new_poor"]], on=keys, how="left") if keys \
            else m.assign(relapsed=en["relapsed"].iloc[0] if len(en) else np.nan,
                          new_poor=en["new_poor"].iloc[0] if len(en) else np.nan)
        m["region"] = "national" if not by else m[by]
        rows.append(m)
    allrows = pd.concat(rows, ignore_index=True)
    wanted = {("national" if r == "national" else _norm(r)): r for r in regions}
    allrows["_key"] = allrows["region"].map(lambda r: "national" if r == "national" else _norm(r))
    allrows = allrows[allrows["_key"].isin(wanted)]
    order = {k: i for i, k in enumerate(wanted)}
    allrows = allrows.sort_values("_key", key=lambda s: s.map(order))
    for c in ("at_risk", "exits", "relapsed", "new_poor"):
        allrows[c] = allrows[c].fillna(0)
    sup = suppress_small_cells(
        allrows, count_cols=["households", "poor", "near_poor", "at_risk", "exits", "relapsed", "new_poor"],
        rate_cols=["poor_rate", "poor_ci_low", "poor_ci_high", "near_poor_rate", "rate", "ci_low", "ci_high"],
        min_cell=min_cell,
        rate_basis={"poor_rate": ("households", "poor"), "poor_ci_low": ("households", "poor"),
                    "poor_ci_high": ("households", "poor"), "near_poor_rate": ("households", "near_poor"),
                    "rate": ("at_risk", "exits"), "ci_low": ("at_risk", "exits"), "ci_high": ("at_risk", "exits")},
    )
    return pd.DataFrame({
        ("Địa phương" if lang == "vi" else "Region"): [label("national", lang) if r == "national" else r
                                                        for r in sup["region"]],
        label("households", lang): [fmt_count(v, lang) for v in sup["households"]],
        label("poor_households", lang): [fmt_count(v, lang) for v in sup["poor"]],
        label("poor_rate", lang) + " (%)": [fmt_pct(v, lang) for v in sup["poor_rate"]],
        label("near_poor_households", lang): [fmt_count(v, lang) for v in sup["near_poor"]],
        label("near_poor_rate", lang) + " (%)": [fmt_pct(v, lang) for v in sup["near_poor_rate"]],
        label("exits", lang): [fmt_count(v, lang) for v in sup["exits"]],
        label("exit_rate", lang) + " (%)": [fmt_pct(v, lang) for v in sup["rate"]],
        label("ci95", lang): [fmt_interval(lo, hi, lang) for lo, hi in zip(sup["ci_low"], sup["ci_high"])],
        label("relapses", lang): [fmt_count(v, lang) for v in sup["relapsed"]],
        label("new_poor", lang): [fmt_count(v, lang) for v in sup["new_poor"]],
    })


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


def group_table(df: pd.DataFrame, period, lang: str = "vi", min_cell: int | None = None) -> pd.DataFrame:
    """Urban/rural and ethnic-minority breakdown at `period` for reviewers: households,
    poor households and rate, exits and exit rate with intervals; small cells suppressed."""
    from .privacy import suppress_small_cells

    parts = []
    for by in ("area", "ethnic_minority"):
        if by not in _data(df).panel.columns:
            continue
        g = group_rates(df, period, by, min_cell)
        g["group"] = [group_label(by, v, lang) for v in g[by]]
        parts.append(g.drop(columns=[by]))
    if not parts:
        return pd.DataFrame()
    g = pd.concat(parts, ignore_index=True)
    for c in ("at_risk", "exits"):
        g[c] = g[c].fillna(0)
    basis_p = ("households", "poor")
    basis_e = ("at_risk", "exits")
    sup = suppress_small_cells(
        g, count_cols=["households", "poor", "at_risk", "exits"],
        rate_cols=["poor_rate", "poor_ci_low", "poor_ci_high", "exit_rate", "exit_ci_low", "exit_ci_high"],
        min_cell=min_cell,
        rate_basis={"poor_rate": basis_p, "poor_ci_low": basis_p, "poor_ci_high": basis_p,
                    "exit_rate": basis_e, "exit_ci_low": basis_e, "exit_ci_high": basis_e})
    return pd.DataFrame({
        label("group", lang): sup["group"],
        label("households", lang): [fmt_count(v, lang) for v in sup["households"]],
        label("poor_households", lang): [fmt_count(v, lang) for v in sup["poor"]],
        label("poor_rate", lang) + " (%)": [fmt_pct(v, lang) for v in sup["poor_rate"]],
        label("ci95", lang) + " ": [fmt_interval(a, b, lang) for a, b in zip(sup["poor_ci_low"], sup["poor_ci_high"])],
        label("exits", lang): [fmt_count(v, lang) for v in sup["exits"]],
        label("exit_rate", lang) + " (%)": [fmt_pct(v, lang) for v in sup["exit_rate"]],
        label("ci95", lang): [fmt_interval(a, b, lang) for a, b in zip(sup["exit_ci_low"], sup["exit_ci_high"])],
    })


def group_label(by: str, value, lang: str = "vi") -> str:
    """Display name of a group value; a blank (not recorded) value is its own group."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return label(f"{by}_unknown", lang)
    if by == "ethnic_minority":
        return label("em_yes" if bool(value) else "em_no", lang)
    return label(str(value), lang)


# --------------------------------------------------------------------------- formatting
def _num(v):
    if v is None or isinstance(v, str):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if np.isnan(f) else f


def fmt_count(v, lang: str = "vi") -> str:
    """1234567 -> "1.234.567" (vi) / "1,234,567" (en); suppressed text kept; NaN -> ""."""
    if isinstance(v, str):
        return v
    f = _num(v)
    if f is None:
        return ""
    s = f"{int(round(f)):,}"
    return s.replace(",", ".") if lang == "vi" else s


def fmt_pct(v, lang: str = "vi", digits: int = 2) -> str:
    """A fraction as a percentage: 0.0403 -> "4,03" (vi) / "4.03" (en)."""
    if isinstance(v, str):
        return v
    f = _num(v)
    if f is None:
        return ""
    s = f"{100 * f:.{digits}f}"
    return s.replace(".", ",") if lang == "vi" else s


def fmt_interval(lo, hi, lang: str = "vi") -> str:
    if isinstance(lo, str) or isinstance(hi, str):
        return lo if isinstance(lo, str) else hi
    if _num(lo) is None or _num(hi) is None:
        return ""
    return f"{fmt_pct(lo, lang)} – {fmt_pct(hi, lang)}"


def fmt_change(v, kind: str, lang: str = "vi") -> str:
    """A change: points for rates ("+0,25 điểm"), households for counts ("−120")."""
    if isinstance(v, str):
        return v
    f = _num(v)
    if f is None:
        return ""
    sign = "+" if f > 0 else ("−" if f < 0 else "±")
    if kind == "rate":
        s = f"{abs(f):.2f}"
        s = s.replace(".", ",") if lang == "vi" else s
        return f"{sign}{s}\u00a0{label('points', lang)}".replace(" ", "\u00a0")  # never wrapped
    return f"{sign}{fmt_count(abs(f), lang)}"


def to_html(table: pd.DataFrame, caption: str | None = None) -> str:
    """A plain HTML table (no index, escaped text) for report pages and the index."""
    head = "".join(f"<th>{_html.escape(str(c))}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(f"<td>{_html.escape(str(v))}</td>" for v in row) + "</tr>"
                   for row in table.itertuples(index=False))
    cap = f"<caption>{_html.escape(caption)}</caption>" if caption else ""
    return f'<table class="povdyn-table">{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def show(table: pd.DataFrame, caption: str | None = None):
    """Display a (suppressed, labelled) table in a notebook as plain HTML, with the
    table's ``attrs["note"]`` (if any) under it."""
    from IPython.display import HTML, display

    note_text = table.attrs.get("note")
    extra = f'<p class="table-note">{_html.escape(note_text)}</p>' if note_text else ""
    display(HTML(to_html(table, caption) + extra))


def pending(section: str, lang: str = "vi"):
    """Display a clear "being updated" note for a section whose module is not there yet."""
    from IPython.display import HTML, display

    text = (f"{label('pending', lang)}: {section}." if lang == "vi" else f"{label('pending', lang)}: {section}.")
    display(HTML(f'<p class="pending">{_html.escape(text)}</p>'))


# --------------------------------------------------------------------------- page helpers
def heading(key: str, lang: str = "vi", level: int = 2):
    """Display a section heading (a Markdown heading, so it enters the table of contents)."""
    from IPython.display import Markdown, display

    from .labels import section

    display(Markdown("#" * level + " " + section(key, lang)))


def note(key: str, lang: str = "vi", **fields):
    """Display a short explanatory paragraph of the report (labels.TEXTS)."""
    from IPython.display import Markdown, display

    from .labels import text

    display(Markdown(text(key, lang, **fields)))


def title(region: str, period, lang: str = "vi"):
    """Display the page title and introduction for a region and period."""
    from IPython.display import Markdown, display

    from .labels import region_label, text

    name = region_label(region, lang)
    display(Markdown(f"# {label('report_title', lang)}: {name}, {period}\n\n"
                     + text("intro", lang, region=name, period=period)))


def province_rates(df: pd.DataFrame, period, min_cell: int | None = None) -> pd.DataFrame:
    """Per province (province_2025) at `period`: households, poor, poor_rate (+ Wilson
    interval), at_risk, exits, exit_rate (+ interval). Numeric, for the ranking plots
    (which leave out provinces with small counts)."""
    df = _data(df)
    col = "province_2025" if "province_2025" in df.panel.columns else "province"
    sh = _at(status_shares(df, by=col), period)
    ex = _at(metric("exit_rates", df, by=col), period)
    m = sh.merge(ex[[col, "at_risk", "exits", "rate", "ci_low", "ci_high"]], on=col, how="left")
    return m.rename(columns={"rate": "exit_rate", "ci_low": "exit_ci_low", "ci_high": "exit_ci_high"})


def optional_section(run, section_name: str, lang: str = "vi"):
    """Run a report section that may lack data for a region. Only the documented
    not-enough-data condition (``povdyn.errors.NotEnoughDataError``: no support records,
    no programme with supported households, no household at the period) shows the
    "being updated" note, with the reason in the log; any other exception fails the page
    (a bug must never hide behind the note)."""
    import sys

    from .errors import NotEnoughDataError

    try:
        return run()
    except NotEnoughDataError as exc:
        print(f"section {section_name!r}: not enough data: {exc}", file=sys.stderr)
        pending(section_name, lang)
        return None


def programmes_section(data, data_dir, period, within: int = 2, lang: str = "vi") -> dict:
    """The page's "models that work" section: povdyn.programs.evaluate_programs on the
    page's panel and the support records beside it; shows the suppressed table and the
    forest plot and returns them ({"table", "figure", "evaluation"}). No support file,
    or no supported household in the region, is NotEnoughDataError."""
    from . import programs
    from .errors import NotEnoughDataError
    from .plots import show as show_figure
    from .plots import effects

    data = _data(data)
    path = Path(data_dir) / "support.parquet"
    if not path.exists():
        raise NotEnoughDataError(f"no support records: {path} does not exist")
    support = pd.read_parquet(path)
    households = data.panel.table.select("household_id").distinct()
    listed = data.panel.con.execute(households.filter(
        households.household_id.isin(support["household_id"].astype(str).unique().tolist())).count())
    if not listed:
        raise NotEnoughDataError("no household of this region received a programme's support")
    evaluation = programs.evaluate_programs(data.panel, support, within=within, region=None,
                                            period=period, event_study=False)
    note("programs", lang)
    shown = suppress_counts(programs.report_table(evaluation, lang=lang), ["n_treated", "n_control"],
                            lang, text_columns=["reason"])
    show(shown)
    figure = effects.forest(mask_small(evaluation.table, ["n_treated", "n_control"]), lang=lang)
    show_figure(figure)
    return {"table": shown, "figure": figure, "evaluation": evaluation}


def deprivation_section(data, period, lang: str = "vi") -> dict:
    """The page's multidimensional-deprivation section (povdyn.deprivation): the
    suppressed Alkire-Foster and fragile-exit tables and the contributions figure,
    shown and returned ({"tables", "figure"}). A panel without deprivation indicators
    (lists) says so; no household at the period is NotEnoughDataError."""
    from . import deprivation
    from .errors import NotEnoughDataError
    from .plots import deprivation as deprivation_charts
    from .plots import show as show_figure

    data = _data(data)
    if not any(c.startswith("dep_") for c in data.panel.columns):
        note("deprivation_needs_indicators", lang)
        return {"tables": [], "figure": None}
    t = data.panel.table
    if not data.panel.execute(t.filter((t.period_index == _pkey(period)) & t.status.notnull()).count()):
        raise NotEnoughDataError(f"no household with a status at {period}")
    summary = deprivation.deprivation_summary(data.panel, period, region=None, lang=lang)
    note("deprivation", lang)
    shown = deprivation_tables(summary, lang=lang)
    for table in shown:
        show(table)
    figure = deprivation_charts.contributions(summary, lang=lang)
    show_figure(figure)
    return {"tables": shown, "figure": figure}


def suppressed_rates(table: pd.DataFrame, lang: str = "vi", count_cols=("at_risk", "exits", "to_near_poor", "to_non_poor"),
                     period_col: str = "period", min_cell: int | None = None) -> pd.DataFrame:
    """A rate table from povdyn.dynamics (exit_rates, relapse_rates, ...) ready to show:
    period, counts, rate and interval in percent, small cells suppressed. The rate rests
    on the first two counts (denominator, numerator)."""
    from .privacy import suppress_small_cells

    count_cols = [c for c in count_cols if c in table.columns]
    basis = tuple(count_cols[:2])
    sup = suppress_small_cells(table, count_cols=count_cols, rate_cols=["rate", "ci_low", "ci_high"],
                               min_cell=min_cell, rate_basis={c: basis for c in ("rate", "ci_low", "ci_high")})
    out = pd.DataFrame({label(period_col, lang): sup[period_col].astype(str)})
    # exit_rates(from_status="near_poor") has `falls`: its population at risk is near-poor
    near_poor = "falls" in table.columns
    for c in count_cols:
        key = "at_risk_near_poor" if (c == "at_risk" and near_poor) else c
        out[label(key, lang)] = [fmt_count(v, lang) for v in sup[c]]
    out[label("rate", lang) + " (%)"] = [fmt_pct(v, lang) for v in sup["rate"]]
    out[label("ci95", lang)] = [fmt_interval(a, b, lang) for a, b in zip(sup["ci_low"], sup["ci_high"])]
    return out


def suppressed_counts(table: pd.DataFrame, count_cols, lang: str = "vi", min_cell: int | None = None) -> pd.DataFrame:
    """A count table ready to show: counts below min_cell as "<10", numbers formatted,
    headers labelled."""
    from .privacy import suppress_small_cells

    count_cols = [c for c in count_cols if c in table.columns]
    sup = suppress_small_cells(table, count_cols=count_cols, min_cell=min_cell)
    out = pd.DataFrame({label(c, lang): (sup[c].astype(str) if c not in count_cols
                                         else [fmt_count(v, lang) for v in sup[c]])
                        for c in table.columns})
    return out


def suppress_counts(table: pd.DataFrame, columns, lang: str = "vi", min_cell: int | None = None,
                    text_columns=()) -> pd.DataFrame:
    """Suppress count columns of an already-labelled table (e.g. programs.report_table):
    `columns` are column names or keys of povdyn.programs.REPORT_COLUMNS. In
    `text_columns` (free text such as a verdict's reason), every number below min_cell
    written in the text becomes "<10" too."""
    from .privacy import suppress_small_cells

    min_cell = settings().min_cell if min_cell is None else min_cell
    try:
        from .programs import REPORT_COLUMNS
    except ImportError:
        REPORT_COLUMNS = {}

    def resolve(cols):
        out = []
        for c in cols:
            name = REPORT_COLUMNS.get(c, {}).get(lang, c)
            if name in table.columns:
                out.append(name)
        return out

    sup = suppress_small_cells(table, count_cols=resolve(columns), min_cell=min_cell)
    for name in resolve(text_columns):
        sup[name] = [hide_small_numbers(v, min_cell) for v in sup[name]]
    return sup


# a count written in a text: a whole number followed by "hộ" / "household(s)"
_COUNT_IN_TEXT = re.compile(r"(?<![\w.,])(\d+(?:[.,]\d{3})*)(\s*(?:hộ|households?)\b)")


def hide_small_numbers(text, min_cell: int | None = None):
    """Replace every household count below min_cell written in a text ("5 hộ",
    "8 households") by "<10"; other numbers (effects, p-values, years) are left alone."""
    if not isinstance(text, str):
        return text
    min_cell = settings().min_cell if min_cell is None else min_cell

    def sub(m):
        value = int(m.group(1).replace(".", "").replace(",", ""))
        return (f"<{min_cell}" if value < min_cell else m.group(1)) + m.group(2)

    return _COUNT_IN_TEXT.sub(sub, text)


def mask_small(table: pd.DataFrame, columns, min_cell: int | None = None) -> pd.DataFrame:
    """A numeric copy with counts below min_cell set to NaN (for figures that print
    counts, e.g. povdyn.plots.effects.forest)."""
    min_cell = settings().min_cell if min_cell is None else min_cell
    out = table.copy()
    for c in columns:
        if c in out.columns:
            values = pd.to_numeric(out[c], errors="coerce")
            out[c] = values.where(values >= min_cell)
    return out


def deprivation_tables(summary: dict, lang: str = "vi", min_cell: int | None = None) -> list[pd.DataFrame]:
    """The deprivation section's tables (from povdyn.deprivation.deprivation_summary)
    ready to show: the Alkire–Foster table by area (households and multidimensionally
    poor households, then H, A, M0 and their standard errors) and the fragile-exit table
    (exits, fragile exits, share), small cells suppressed, numbers formatted."""
    from .privacy import suppress_small_cells

    out = []
    for key, n_counts in (("af", 2), ("fragile", 2)):
        t = summary.get(key) if isinstance(summary, dict) else None
        if t is None or len(t) == 0:
            continue
        t = t.reset_index(drop=True)
        first = 1 if key == "af" else 0  # af starts with the area label
        counts = list(t.columns[first:first + n_counts])
        rates = list(t.columns[first + n_counts:])
        sup = suppress_small_cells(t, count_cols=counts, rate_cols=rates, min_cell=min_cell,
                                   rate_basis={r: tuple(counts) for r in rates})
        shown = pd.DataFrame({c: sup[c] for c in t.columns})
        for c in counts:
            shown[c] = [fmt_count(v, lang) for v in sup[c]]
        for c in rates:
            shown[c] = [v if isinstance(v, str) else ("" if _num(v) is None else
                        (f"{float(v):.2f}".replace(".", ",") if lang == "vi" else f"{float(v):.2f}"))
                        for v in sup[c]]
        out.append(shown)
    return out


# --------------------------------------------------------------------------- page numbers
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
            data.panel, support, within=within, region=None, period=period, event_study=False).table
    has_indicators = any(c.startswith("dep_") for c in data.panel.columns)
    if has_indicators:
        from . import deprivation

        out["deprivation"] = deprivation.deprivation_summary(data.panel, period, region=None)
    else:
        out["deprivation"] = None
    return out
