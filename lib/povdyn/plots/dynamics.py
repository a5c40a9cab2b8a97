"""Figures of poverty dynamics for notebooks and report pages.

Every function takes tables made by the library (``povdyn.tables``, ``povdyn.dynamics``,
``povdyn.survival``, ``povdyn.targets``) and returns a matplotlib ``Figure`` built
without pyplot (so a notebook shows it once, and nothing is left open). Labels are
Vietnamese with diacritics by default, English with ``lang="en"``. Groups or provinces
whose counts are below the small-cell threshold are left out of the figure and named in
its note (never plotted as a value).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from ..config import settings
from ..formatting import decimal_comma, fmt_count, fmt_pct
from ..labels import group_label, label

STATES = ("poor", "near_poor", "non_poor")
COLORS = {"poor": "#c0392b", "near_poor": "#e69f00", "non_poor": "#2a9d8f", "exit": "#0b6e4f",
          "accent": "#0b6e4f", "muted": "#7b8794"}
FONT = ["DejaVu Sans"]  # ships with matplotlib and has every Vietnamese glyph


def _style():
    import matplotlib as mpl

    mpl.rcParams.update({"font.family": "sans-serif", "font.sans-serif": FONT, "font.size": 10, "axes.titlesize": 11.5,
                         "axes.titleweight": "bold", "axes.spines.top": False,
                         "axes.spines.right": False, "axes.grid": True, "grid.color": "#e4e7eb",
                         "grid.linewidth": 0.8, "axes.edgecolor": "#9aa5b1", "legend.frameon": False,
                         "figure.dpi": 100, "savefig.dpi": 110})


def _fig(w=9.0, h=4.0, ncols=1, nrows=1, **kw):
    _style()
    fig = Figure(figsize=(w, h), layout="constrained")
    axes = fig.subplots(nrows, ncols, **kw)
    return fig, axes


def pct_formatter(lang="vi", digits=1):
    """Axis formatter for fractions as percent (decimal comma in Vietnamese; a trailing
    zero decimal is dropped: 10% not 10,0%)."""
    def f(x, _pos):
        s = f"{100 * x:.{digits}f}"
        if "." in s:
            s = s.rstrip("0").rstrip(".")
        return decimal_comma(s, lang) + "%"
    return FuncFormatter(f)


def _period_ticks(ax, periods):
    """Quarterly axes label the fourth quarter of each year only ("2024Q4"), so labels
    never overlap; annual axes label every year (at most ~12, else every n-th). Ticks
    and grid lines stand at the labelled periods only (the points mark every period):
    an unlabelled tick cost a report page as much to lay out and draw as a labelled one
    -- 17 quarters on two axes of the trends figure, a sixth of its time (issue 15 §4)."""
    from .. import periods as _periods

    quarterly = len(periods) and _periods.parse_period(periods[0])[0] == "quarter"
    if quarterly:
        shown = [i for i, p in enumerate(periods) if _periods.quarter_of(p) == 4]
    else:
        shown = list(range(0, len(periods), max(1, len(periods) // 12)))
    if len(periods):  # the view spans every period, labelled or not (as a tick at each did)
        low, high = ax.get_xlim()
        ax.set_xlim(min(low, 0), max(high, len(periods) - 1))
    ax.set_xticks(shown, [str(periods[i]) for i in shown], rotation=0)


def _note(fig, text):
    if text:
        fig.text(0.01, -0.02, text, fontsize=8.5, color=COLORS["muted"], ha="left", va="top", wrap=True)


# --------------------------------------------------------------------------- trends
def trends(shares: pd.DataFrame, exits: pd.DataFrame | None = None, lang: str = "vi",
           min_cell: int | None = None) -> Figure:
    """Poor and near-poor rates over the periods (95% bands) and, when `exits` is
    given, the exit rate from poverty per period (95% band).
    shares: povdyn.tables.status_shares(...); exits: povdyn.exit_rates(...)."""
    min_cell = settings().min_cell if min_cell is None else min_cell
    ncols = 2 if exits is not None else 1
    fig, axes = _fig(10.5 if ncols == 2 else 7.0, 3.8, ncols=ncols)
    axes = np.atleast_1d(axes)
    periods = list(shares["period"])
    x = np.arange(len(periods))
    ax = axes[0]
    for st in ("poor", "near_poor"):
        # a rate is drawn only where it is known (a list register has rates at the annual
        # reviews only, where household totals exist) and rests on enough households
        ok = (shares[st].to_numpy() >= min_cell) & shares[f"{st}_rate"].notna().to_numpy()
        ax.plot(x[ok], shares[f"{st}_rate"][ok], color=COLORS[st], lw=2, marker="o", ms=3.5,
                label=label(f"{st}_rate", lang))
        ax.fill_between(x[ok], shares[f"{st}_ci_low"][ok].astype(float), shares[f"{st}_ci_high"][ok].astype(float),
                        color=COLORS[st], alpha=0.15, lw=0)
    ax.set_title(label("poor_rate", lang) + " · " + label("near_poor_rate", lang).lower())
    ax.yaxis.set_major_formatter(pct_formatter(lang))
    ax.set_ylim(bottom=0)
    _period_ticks(ax, periods)
    ax.legend(loc="best")
    if exits is not None and len(exits):
        ax = axes[1]
        e = exits.set_index("period").reindex(periods)
        ok = (e["at_risk"].fillna(0) >= min_cell) & (e["exits"].fillna(0) >= min_cell)
        ax.plot(x, e["rate"].where(ok), color=COLORS["exit"], lw=2, marker="o", ms=3.5,
                label=label("exit_rate", lang))
        ax.fill_between(x, e["ci_low"].where(ok).astype(float), e["ci_high"].where(ok).astype(float),
                        color=COLORS["exit"], alpha=0.15, lw=0)
        ax.set_title(label("exit_rate", lang))
        ax.yaxis.set_major_formatter(pct_formatter(lang))
        ax.set_ylim(bottom=0)
        _period_ticks(ax, periods)
    return fig


# --------------------------------------------------------------------------- flows
def flow_cells(counts, min_cell: int | None = None, hidden=None):
    """The numbers and marks of the flows chart (``flows``): the 3x3 counts C, row
    shares, ``small`` (below min_cell, "<10"), ``secondary`` (hidden to protect a small
    cell of its row, or given in `hidden`: "x") and ``unknown`` (lists: not known).
    Exposed so that a suppression across pages (povdyn.communes) knows which counts a
    flows chart publishes."""
    min_cell = settings().min_cell if min_cell is None else min_cell
    if isinstance(counts, pd.DataFrame):
        C = np.zeros((3, 3))
        for r in counts.itertuples(index=False):
            if r.from_status in STATES and r.to_status in STATES:
                C[STATES.index(r.from_status), STATES.index(r.to_status)] += r.count
    else:
        C = np.asarray(counts, dtype=float)
    unknown = ~np.isfinite(C)  # lists: where the not-poor households went is not known
    C = np.where(unknown, 0.0, C)
    rows = C.sum(axis=1, keepdims=True)
    share = np.divide(C, rows, out=np.full_like(C, np.nan), where=rows > 0)
    small = ((C < min_cell) | (rows < min_cell)) & ~unknown
    forced = np.zeros_like(small) if hidden is None else (np.asarray(hidden, dtype=bool) & ~unknown & ~small)
    # a shown share and count give the row total, and the total less the shown cells a
    # hidden one: hide complements too (povdyn.suppression; methods.md Disclosure control).
    # A row with an unknown cell (lists) publishes no total, so it links nothing.
    from ..suppression import SECONDARY, linked_suppression

    known_rows = [i for i in range(3) if not unknown[i].any()]
    cells = {(i, j): C[i, j] for i in range(3) for j in range(3) if not unknown[i, j]}
    cells.update({("row", i): (rows[i, 0] if rows[i, 0] >= min_cell else np.nan) for i in known_rows})
    status = linked_suppression(
        pd.Series(cells, dtype=float), [(("row", i), [(i, j) for j in range(3)]) for i in known_rows],
        min_cell=min_cell, hidden=[k for k in cells if k[0] != "row" and (small[k] or forced[k])],
        shown=[("row", i) for i in known_rows])
    secondary = np.array([[status.get((i, j)) == SECONDARY for j in range(3)] for i in range(3)]) | forced
    return C, share, small, secondary, unknown


def flows(counts, lang: str = "vi", min_cell: int | None = None, title: str | None = None,
          hidden=None) -> Figure:
    """Flows between statuses from the previous period to this one: a 3x3 heatmap of
    row shares (how households of each status at t−1 are distributed at t), each cell
    annotated with its share and household count; counts below min_cell show "<10" and
    their share is hidden. counts: 3x3 array (STATES order) or a long DataFrame
    [from_status, to_status, count]. hidden: a 3x3 bool array of further cells to hide
    ("x"), decided by a suppression across tables (a commune page: povdyn.communes)."""
    from ..suppression import SUPPRESSED_SECONDARY

    min_cell = settings().min_cell if min_cell is None else min_cell
    C, share, small, secondary, unknown = flow_cells(counts, min_cell, hidden)
    small = small | secondary
    shown = np.where(small | unknown, np.nan, share)
    fig, ax = _fig(6.4, 4.2)
    im = ax.imshow(shown, cmap="Greens", vmin=0, vmax=1)
    ax.grid(False)
    names = [label(s, lang) for s in STATES]
    ax.set_xticks(range(3), names)
    ax.set_yticks(range(3), names)
    ax.set_xlabel(label("to_status", lang))
    ax.set_ylabel(label("from_status", lang))
    for i in range(3):
        for j in range(3):
            if unknown[i, j]:
                text, color = "—", COLORS["muted"]
            elif small[i, j]:
                text = SUPPRESSED_SECONDARY if secondary[i, j] else f"<{min_cell}"
                color = COLORS["muted"]
            else:
                text = f"{fmt_pct(share[i, j], lang, 1)}%\n{fmt_count(C[i, j], lang)}"
                color = "white" if share[i, j] > 0.6 else "#1f2933"
            ax.text(j, i, text, ha="center", va="center", fontsize=9.5, color=color)
    ax.set_title(title or label("title_flows", lang))
    cb = fig.colorbar(im, ax=ax, shrink=0.8, format=pct_formatter(lang, 0))
    cb.set_label(label("share", lang))
    return fig


# --------------------------------------------------------------------------- survival
def survival(km: pd.DataFrame, by: str | None = None, lang: str = "vi", min_cell: int | None = None,
             time_unit: str | None = None) -> Figure:
    """Share of exited households not poor again, by time since exit (Kaplan–Meier
    step curve with 95% band). km: povdyn.survival_after_exit(...). Times whose risk
    set is below min_cell are cut off."""
    min_cell = settings().min_cell if min_cell is None else min_cell
    unit = time_unit or km.attrs.get("time_unit", "quarter")
    fig, ax = _fig(7.5, 3.8)
    groups = km.groupby(by) if by else [(None, km)]
    palette = ["#0b6e4f", "#c0392b", "#3b5bdb", "#e69f00"]
    for k, (name, g) in enumerate(groups):
        g = g[g["at_risk"] >= min_cell].sort_values("time")
        if g.empty:
            continue
        t = np.r_[0, g["time"].to_numpy()]
        s = np.r_[1.0, g["survival"].to_numpy()]
        lo = np.r_[1.0, g["ci_low"].to_numpy()]
        hi = np.r_[1.0, g["ci_high"].to_numpy()]
        lab = None if name is None else group_label(by, name, lang)
        color = palette[k % len(palette)]
        ax.step(t, s, where="post", color=color, lw=2, label=lab)
        ax.fill_between(t, lo, hi, step="post", color=color, alpha=0.15, lw=0)
    ax.set_ylim(min(0.5, ax.get_ylim()[0]), 1.01)
    ax.yaxis.set_major_formatter(pct_formatter(lang, 0))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(label("time_quarter" if unit == "quarter" else "time_year", lang))
    ax.set_ylabel(label("survival", lang))
    ax.set_title(label("title_survival", lang))
    if by:
        ax.legend(loc="lower left")
    return fig


# --------------------------------------------------------------------------- provinces
def provinces_ranked(table: pd.DataFrame, value: str = "rate", lang: str = "vi", name_col: str = "province_2025",
                     national: float | None = None, title: str | None = None, count_cols=("at_risk", "exits"),
                     min_cell: int | None = None, metric: str | None = None) -> Figure:
    """Provinces ranked by a rate with 95% intervals (dot and whisker), optional
    national reference line. table: one row per province with `value`, ci_low, ci_high
    and the counts in `count_cols` (rows with a count below min_cell are left out and
    listed in a note). ``metric``: a rate of ``povdyn.tables.province_rates`` --
    "poor_rate" (counts households, poor) or "exit_rate" (at_risk, exits) -- read with
    its own interval columns, counts and title (no renaming needed)."""
    min_cell = settings().min_cell if min_cell is None else min_cell
    t = table.copy()
    if metric is not None:
        prefix = metric[: -len("rate")]  # "poor_" / "exit_"
        t = t.rename(columns={metric: "rate", f"{prefix}ci_low": "ci_low", f"{prefix}ci_high": "ci_high"})
        value = "rate"
        count_cols = {"poor_rate": ("households", "poor"), "near_poor_rate": ("households", "near_poor"),
                      "exit_rate": ("at_risk", "exits")}.get(metric, count_cols)
        title = title or label(metric, lang)
    small = np.zeros(len(t), bool)
    for c in count_cols:
        if c in t.columns:
            small |= pd.to_numeric(t[c], errors="coerce").fillna(0).to_numpy() < min_cell
    left_out = list(t.loc[small, name_col])
    t = t[~small].sort_values(value)
    if t.empty:  # nothing large enough to show: say so instead of an empty axis
        fig, ax = _fig(8.0, 1.2)
        ax.axis("off")
        ax.set_title(title or label("exit_rate", lang))
        ax.text(0.5, 0.3, label("no_province_large_enough", lang).format(m=min_cell),
                ha="center", va="center", color=COLORS["muted"], transform=ax.transAxes)
        return fig
    fig, ax = _fig(8.0, max(3.0, 0.27 * len(t) + 1.2))
    y = np.arange(len(t))
    v = t[value].to_numpy(float)
    ax.errorbar(v, y, xerr=[v - t["ci_low"].to_numpy(float), t["ci_high"].to_numpy(float) - v], fmt="o",
                color=COLORS["accent"], ecolor="#9fd8c2", elinewidth=2.2, capsize=0, ms=5)
    ax.set_yticks(y, list(t[name_col]))
    ax.xaxis.set_major_formatter(pct_formatter(lang))
    ax.grid(axis="y", visible=False)
    if national is not None and np.isfinite(national):
        ax.axvline(national, color=COLORS["poor"], ls="--", lw=1.2)
        ax.text(national, len(t) - 0.4, " " + label("national", lang), color=COLORS["poor"], fontsize=9, va="bottom")
    ax.set_title(title or label("exit_rate", lang))
    ax.set_ylim(-0.7, len(t) - 0.1)
    if left_out:
        _note(fig, label("not_shown_small", lang).format(m=min_cell) + ", ".join(map(str, left_out)))
    return fig


# --------------------------------------------------------------------------- groups
# The group comparison's look (seaborn's "whitegrid" theme, which drew it until issue 15
# measured its cost): light grid across the rates, no tick marks, dark grey text
GROUPS_STYLE = {"font.size": 12.0, "axes.titlesize": 12.0, "axes.titleweight": "normal",
                "axes.edgecolor": "0.8", "axes.linewidth": 1.25, "axes.labelcolor": "0.15",
                "grid.color": "0.8", "grid.linewidth": 1.0, "text.color": "0.15",
                "xtick.color": "0.15", "ytick.color": "0.15", "xtick.labelsize": 11.0, "ytick.labelsize": 11.0,
                "xtick.bottom": False, "ytick.left": False, "axes.axisbelow": True}


def groups(rates: dict[str, pd.DataFrame], lang: str = "vi") -> Figure:
    """Poor rate and exit rate by urban/rural and by ethnic minority: bars with 95%
    intervals, one panel per rate sharing the group axis. rates: {by:
    povdyn.tables.group_rates(df, period, by)}; a group flagged as suppressed, or whose
    rate is unknown (lists without totals by group), has no bar and shows "—".

    Drawn with matplotlib, not seaborn.objects (which drew it before): on the 60,000-
    household demo batch seaborn.objects cost 0.17 s to build this figure on each of 35
    pages, its import 0.85 s in each report kernel, and its layout more than the bars
    drawn directly (issue 15 §4, the batch's time)."""
    import matplotlib as mpl

    order, values = [], {key: {} for key in ("poor_rate", "exit_rate")}
    for by, g in rates.items():
        for r in g.itertuples(index=False):
            name = group_label(by, getattr(r, by), lang)
            order.append(name)
            for key, lo, hi, flag in (("poor_rate", "poor_ci_low", "poor_ci_high", "poor_suppressed"),
                                      ("exit_rate", "exit_ci_low", "exit_ci_high", "exit_suppressed")):
                hidden = bool(getattr(r, flag))
                values[key][name] = tuple(np.nan if hidden else pd.to_numeric(getattr(r, c), errors="coerce")
                                          for c in (key, lo, hi))
    order = list(dict.fromkeys(order))
    y = np.arange(len(order))
    _style()
    with mpl.rc_context(GROUPS_STYLE):
        fig = Figure(figsize=(10.0, 3.6), layout="constrained")
        axes = fig.subplots(1, 2, sharey=True)
        for ax, key, color in zip(axes, ("poor_rate", "exit_rate"), (COLORS["poor"], COLORS["exit"])):
            rate, low, high = (np.array([values[key].get(name, (np.nan,) * 3)[i] for name in order], float)
                               for i in range(3))
            known = np.isfinite(rate)
            ax.barh(y[known], rate[known], height=0.6, color=mpl.colors.to_rgba(color, 0.8), edgecolor=color,
                    linewidth=1.0)
            ax.hlines(y[known], low[known], high[known], color="#1f2933", linewidth=1.3)
            if not known.any():
                ax.set_xlim(0, 0.05)  # no rate known: an empty 0-5% axis, not a negative one
            for i in np.flatnonzero(~known):
                ax.text(0, i, " —", va="center", color=COLORS["muted"])
            ax.xaxis.set_major_formatter(pct_formatter(lang, 1))
            ax.grid(axis="y", visible=False)
            ax.set_title(label(key, lang))
            ax.tick_params(length=0)
        axes[0].set_yticks(y, order)
        axes[0].set_ylim(len(order) - 0.5, -0.5)  # the first group on top
    return fig


# --------------------------------------------------------------------------- projection
def projection(shares: pd.DataFrame, proj: pd.DataFrame, lang: str = "vi") -> Figure:
    """Observed poor and near-poor rates and their Markov projection (points with 95%
    bootstrap intervals at the projected years). shares: povdyn.tables.status_shares
    (observed history); proj: povdyn.targets.projection(...)."""
    from .. import periods as _periods

    fig, ax = _fig(8.0, 3.6)
    years = shares["period"].map(lambda p: _periods.parse_period(p))
    # time axis in years: quarter q of year y at y + (q-1)/4, an annual review (and a
    # projected year, taken at the same quarter as the report period) at its year + 0.75
    xs = np.array([i // 4 + (i % 4) / 4 if f == "quarter" else i + 0.75 for f, i in years])
    for st in ("poor", "near_poor"):
        known = shares[f"{st}_rate"].notna().to_numpy()  # lists: the reviews only
        observed = shares[f"{st}_rate"][known]
        ax.plot(xs[known], observed, color=COLORS[st], lw=2, label=label(f"{st}_rate", lang))
        p = proj[proj["status"] == st]
        px = p["year"].to_numpy(float) + 0.75
        ax.errorbar(px, p["share"], yerr=[p["share"] - p["ci_low"], p["ci_high"] - p["share"]], fmt="D",
                    color=COLORS[st], ms=6, capsize=4, ls=":")
        if known.any():
            ax.plot([xs[known][-1], px[-1]], [observed.iloc[-1], p["share"].iloc[-1]], ls=":",
                    color=COLORS[st], lw=1.2)
    ax.yaxis.set_major_formatter(pct_formatter(lang))
    ax.set_ylim(bottom=0)
    ax.set_title(label("title_projection", lang))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="best")
    return fig
