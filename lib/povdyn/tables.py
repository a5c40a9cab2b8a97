"""The tables a reviewer reads, and the page sections built from them.

Each table takes the page's numbers (``povdyn.pagedata``), applies small-cell
suppression (``povdyn.privacy.suppress_small_cells``: every table a reviewer sees
passes through it), formats numbers (``povdyn.formatting``) and labels columns in
Vietnamese or English (``povdyn.labels``). For the notebooks this module also
re-exports the page data and display helpers, so a page needs ``from povdyn import
tables`` only. Layout of the page layer: see ``povdyn.pagedata``.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

from . import periods as _periods
from .config import settings
from .display import heading, note, optional_section, pending, show, title  # noqa: F401
from .formatting import (_num, fmt_change, fmt_count, fmt_decimal, fmt_interval, fmt_pct,  # noqa: F401
                         hide_small_numbers, to_html)
from .labels import group_label, label  # noqa: F401 (group_label: re-exported)
from .pagedata import (PageData, _at, annual_review_rows, _data, _norm, _pkey, flows, group_rates, headline_values,  # noqa: F401
                       metric, page_data, page_numbers, province_rates, removals, same_period_last_year,
                       select_region, status_shares, status_shares_at)

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
    # a change that does not exist (no earlier period) stays missing; exits = exits to
    # near-poor + exits to non-poor, so hiding one destination hides another cell too
    # (povdyn.suppression: secondary suppression, methods.md Disclosure control)
    from .suppression import suppress_table

    counts = ["numerator", "denominator", "prev_numerator", "year_numerator", "rest"]
    # a rate prints its numerator and denominator, and so the rest (at risk − exits =
    # households still poor): an unprinted count that must not be small alone
    t["rest"] = t["denominator"] - t["numerator"]
    keyed = t.set_index("key", drop=False)
    split = ({"exit_rate": ["to_near_poor", "to_non_poor"]}
             if {"exit_rate", "to_near_poor", "to_non_poor"} <= set(keyed.index) else {})
    relations = [((total, col), [(p, col) for p in parts]) for total, parts in split.items()
                 for col in ("numerator", "prev_numerator", "year_numerator")]
    # the destinations' rows print the same households at risk: one count, three cells
    relations += [((p, "denominator"), [(total, "denominator")]) for total, parts in split.items() for p in parts]
    sup = suppress_table(
        keyed, counts, ["rate", "ci_low", "ci_high", "change_prev_", "change_year_"],
        relations=relations, min_cell=min_cell, col_totals={"denominator": ["numerator", "rest"]},
        rate_basis={"rate": ("numerator", "denominator"), "ci_low": ("numerator", "denominator"),
                    "ci_high": ("numerator", "denominator"), "change_prev_": basis_prev,
                    "change_year_": basis_year},
    ).reset_index(drop=True)
    del suppress_small_cells
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
    # rows whose rate the page hides (a chart drawing that rate would print it anyway)
    out.attrs["hidden_rates"] = [k for k, r in zip(sup["key"], sup["rate"]) if isinstance(r, str)]
    if quarterly:
        out.attrs["note"] = label("quarterly_flows_note", lang)
    return out


def trend_data(data, period, within: int = 2, min_cell: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(stock shares, exit rates) by period for the trends chart, with the report
    period's rates blanked where the headline hides them: a rate read off the chart
    times the denominator the headline prints gives back a count it hid to protect
    another (methods.md, Disclosure control)."""
    shares = status_shares(data).copy()
    exits = metric("exit_rates", data).copy()
    hidden = set(headline(data, period, within=within, min_cell=min_cell).attrs["hidden_rates"])
    now = _periods.canonical([period])[0]
    for st in ("poor", "near_poor"):
        if f"{st}_rate" in hidden:
            at = shares["period"].astype(str) == str(now)
            shares.loc[at, [f"{st}_rate", f"{st}_ci_low", f"{st}_ci_high"]] = np.nan
    if "exit_rate" in hidden:
        at = exits["period"].astype(str) == str(now)
        exits.loc[at, ["rate", "ci_low", "ci_high"]] = np.nan
    return shares, exits


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
    n_provinces = int((allrows["region"] != "national").sum())  # before the regions are picked
    wanted = {("national" if r == "national" else _norm(r)): r for r in regions}
    allrows["_key"] = allrows["region"].map(lambda r: "national" if r == "national" else _norm(r))
    allrows = allrows[allrows["_key"].isin(wanted)]
    order = {k: i for i, k in enumerate(wanted)}
    allrows = allrows.sort_values("_key", key=lambda s: s.map(order))
    for c in ("at_risk", "exits", "relapsed", "new_poor"):
        allrows[c] = allrows[c].fillna(0)
    # the national row is the sum of the provinces when every province is listed: then
    # a hidden province comes back by subtraction unless a complement is hidden too
    from .suppression import suppress_table

    del suppress_small_cells
    allrows = allrows.reset_index(drop=True)
    provinces_rows = list(allrows.index[allrows["region"] != "national"])
    national_rows = list(allrows.index[allrows["region"] == "national"])
    every = bool(provinces_rows) and len(provinces_rows) == n_provinces
    totals = {national_rows[0]: provinces_rows} if national_rows and every else None
    sup = suppress_table(
        allrows, ["households", "poor", "near_poor", "at_risk", "exits", "relapsed", "new_poor"],
        ["poor_rate", "poor_ci_low", "poor_ci_high", "near_poor_rate", "rate", "ci_low", "ci_high"],
        row_totals=totals, min_cell=min_cell,
        rate_basis={"poor_rate": ("households", "poor"), "poor_ci_low": ("households", "poor"),
                    "poor_ci_high": ("households", "poor"), "near_poor_rate": ("households", "near_poor"),
                    "rate": ("at_risk", "exits"), "ci_low": ("at_risk", "exits"), "ci_high": ("at_risk", "exits")},
    )
    return pd.DataFrame({
        label("place", lang): [label("national", lang) if r == "national" else r
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
    # each breakdown adds up to the page's headline totals: protect it against them
    # (povdyn.suppression.suppress_breakdowns; methods.md Disclosure control)
    from .suppression import suppress_breakdowns

    del suppress_small_cells
    sizes = [len(p) for p in parts]
    breakdowns = [list(range(sum(sizes[:i]), sum(sizes[:i + 1]))) for i in range(len(sizes))]
    sup = suppress_breakdowns(
        g, ["households", "poor", "at_risk", "exits"], breakdowns,
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


@functools.lru_cache(maxsize=32)
def _changed_periods(periods: tuple, standard: str) -> tuple:
    """The periods whose standard differs from the previous one's (standard_changed),
    worked out once per process: every page of a run has the same periods, and reading
    the dated standards for each of them took about 0.2 s a page."""
    from .standard_change import standard_changed

    flags = standard_changed(periods, standard=standard)
    return tuple(str(p) for p, c in zip(flags["period"], flags["standard_changed"]) if c is True)


def standard_change_note(data, standard: str = "national", lang: str = "vi") -> list:
    """Say on the page in which periods the poverty standard `standard` changed
    (povdyn.standard_change.standard_changed; methods.md, "Traps": an exit caused by a
    new standard is not an exit caused by income). Returns the periods (empty: nothing
    shown)."""
    from .labels import text

    changed = list(_changed_periods(tuple(_data(data).panel.periods), standard))
    if changed:
        from IPython.display import Markdown, display

        display(Markdown(text("standard_changed", lang, periods=", ".join(changed), standard=standard)))
    return changed


def programmes_section(data, data_dir, period, within: int = 2, lang: str = "vi",
                       standard: str = "national") -> dict:
    """The page's "models that work" section: povdyn.programs.evaluate_programs on the
    page's panel and the support records beside it; shows the suppressed table and the
    forest plot -- drawn only when some model has an estimate to plot (figure None
    otherwise) -- and returns them ({"table", "figure", "evaluation"}). No support file,
    or no supported household in the region, is NotEnoughDataError."""
    from . import programs
    from .errors import NotEnoughDataError
    from .plots import show as show_figure
    from .plots import effects

    data = _data(data)
    # the region's records only leave the engine (a missing file: NotEnoughDataError)
    support = programs.support_records(Path(data_dir) / "support.parquet", data.panel)
    from .pagedata import supported_households

    listed = data.panel.execute(data.panel.table.select("household_id").semi_join(
        supported_households(support), "household_id").count())
    if not listed:
        raise NotEnoughDataError("no household of this region received a programme's support")
    evaluation = programs.evaluate_programs(annual_review_rows(data.panel, support), support, within=within,
                                            region=None, period=period, event_study=False,
                                            standard=standard)
    note("programs", lang)
    # every household count of the table (programs.REPORT_COLUMNS keys "n_*")
    counts = [k for k in programs.REPORT_COLUMNS if k.startswith("n_")]
    shown = suppress_counts(programs.report_table(evaluation, lang=lang), counts, lang,
                            text_columns=["reason"])
    # the referee's caveats (commune clustering, trimming, multiple testing) under the table
    shown.attrs["note"] = programs.inference_note(lang)
    show(shown)
    plotted = mask_small(evaluation.table, counts)
    figure = None
    if plotted["estimate"].notna().any():
        # without an estimate the forest plot is empty axes beside verdicts the table
        # above already gives ("not enough data" for every model: a demo province page)
        figure = effects.forest(plotted, lang=lang)
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


def _derived_rests(table: pd.DataFrame, count_cols) -> tuple[pd.DataFrame, list, dict]:
    """The counts a rate or count table gives away without printing them, and the
    relations that tie them to the printed ones (methods.md, Disclosure control: a total
    and its parts): exits = to near-poor + to non-poor; at risk = exits + those who
    stayed (at risk − exits); exits = followed + not followed; followed = relapsed +
    sustained; entries = relapsed + newly poor. Returns (frame with the unprinted rests
    as "_rest_*" columns, their names, {total column: [part columns]})."""
    frame = table.reset_index(drop=True).copy()
    have = set(count_cols)
    derived, col_totals = [], {}

    def rest(total, part):
        name = f"_rest_{total}_{part}"
        frame[name] = pd.to_numeric(frame[total], errors="coerce") - pd.to_numeric(frame[part], errors="coerce")
        derived.append(name)
        return name

    if {"exits", "to_near_poor", "to_non_poor"} <= have:
        col_totals["exits"] = ["to_near_poor", "to_non_poor"]
    if {"at_risk", "exits"} <= have:
        col_totals["at_risk"] = ["exits", rest("at_risk", "exits")]
    if {"exits", "followed"} <= have and "exits" not in col_totals:
        col_totals["exits"] = ["followed", rest("exits", "followed")]
    if {"followed", "relapsed"} <= have:
        col_totals["followed"] = ["relapsed", rest("followed", "relapsed")]
    if {"entries", "relapsed", "new_poor"} <= have:
        col_totals["entries"] = ["relapsed", "new_poor"]
    sources = ["from_near_poor", "from_non_poor", "from_unobserved"]
    if {"entries", *sources} <= have:  # entries by where they came from: a second split
        col_totals[("entries", "by_source")] = sources
    return frame, derived, col_totals


def suppressed_rates(table: pd.DataFrame, lang: str = "vi", count_cols=("at_risk", "exits", "to_near_poor", "to_non_poor"),
                     period_col: str = "period", min_cell: int | None = None) -> pd.DataFrame:
    """A rate table from povdyn.dynamics (exit_rates, relapse_rates, ...) ready to show:
    period, counts, rate and interval in percent. The rate rests on the first two counts
    (denominator, numerator). Small cells are hidden together with the cells that would
    give them back by subtraction (``povdyn.suppression.suppress_table``): the parts of
    each total on a row, and the rest a total leaves unprinted (``_derived_rests``: 30
    at risk and 25 exits would print the 5 who stayed poor)."""
    from .suppression import suppress_table

    count_cols = [c for c in count_cols if c in table.columns]
    basis = tuple(count_cols[:2])
    frame, derived, col_totals = _derived_rests(table, count_cols)
    sup = suppress_table(frame, count_cols + derived, ["rate", "ci_low", "ci_high"], col_totals=col_totals,
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
    """A count table ready to show: counts below min_cell as "<10", and the cells that
    would give them back by subtraction as "x" (entries = relapsed + newly poor:
    ``_derived_rests``), numbers formatted, headers labelled."""
    from .suppression import suppress_table

    # every other household count the table holds is printed too (entries by origin)
    count_cols = [c for c in count_cols if c in table.columns] + [
        c for c in table.columns if c not in count_cols and "period" not in c and c != "year"
        and pd.api.types.is_integer_dtype(table[c])]
    frame, derived, col_totals = _derived_rests(table, count_cols)
    relations = []
    for total, parts in list(col_totals.items()):
        if isinstance(total, tuple):  # a second split of the same total column
            del col_totals[total]
            relations += [((row, total[0]), [(row, p) for p in parts]) for row in frame.index]
    sup = suppress_table(frame, count_cols + derived, col_totals=col_totals, relations=relations,
                         min_cell=min_cell)
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
    from .programs import REPORT_COLUMNS

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
            shown[c] = [fmt_decimal(v, lang) for v in sup[c]]
        out.append(shown)
    return out
