"""Each office's own targets, plan vs actual, and where the current dynamics lead.

**Targets files.** A targets file is a csv (utf-8) with one row per target:

=============  ==========================================================================
column         meaning
=============  ==========================================================================
level          ``national``, ``province`` or ``commune``: whose plan the row is
province       the province (2025 name, or a pre-reform name: provinces merged whole, so
               ``povdyn.geo.province_2025`` maps it). Blank on national rows.
district       optional, commune rows written with pre-reform names only (the old
               district, to tell apart old communes of the same name)
commune        commune rows: the 2025 commune or ward, or the pre-reform commune, mapped
               through the official crosswalk ``povdyn.geo.commune_2025``
indicator      what is measured (all "lower is better"): ``poor_rate``,
               ``near_poor_rate`` (status shares, percent: ``povdyn.stocks``),
               ``poor_households``, ``near_poor_households`` (counts at the review),
               ``relapse_rate`` (percent of the exits followed ``within`` periods that
               were poor again: ``povdyn.relapse_rates``), ``relapses`` (that count)
kind           ``points_per_year`` (a rate changes by ``value`` points a year: -0.15 =
               falls by 0.15 points), ``percent_per_year`` (a count changes by ``value``
               percent a year: -10 = near-poor households down 10% a year),
               ``ceiling`` (the indicator stays at or below ``value``: 0 poor
               households among meritorious families; "100% of exits do not relapse"
               = ``relapses`` ceiling 0 or ``relapse_rate`` ceiling 0)
value          the number (points, percent, households or percent of exits)
group          optional: the households the target is about, ``column=value`` (e.g.
               ``meritorious=true``, ``area=urban``, ``ethnic_minority=true``); several
               joined by ``;``. Blank = all households of the unit.
base_period    optional, rate-of-change kinds: the period the plan starts from ("2024",
               "2024Q4"; a year on a quarterly register means that year's quarter of the
               report period). Blank = the same period a year before the report period.
source         free text: the plan the target comes from
=============  ==========================================================================

Rate points, ``points_per_year`` and ``percent_per_year`` pair only with rate indicators
(``*_rate``) and count indicators respectively; ``ceiling`` with either. Every error
(unknown column value, unknown or ambiguous place name, a split old commune, the same
target twice for one unit) names the file, the row (as a spreadsheet numbers it) and, for
names, the candidates.

**Which targets apply** (``applicable_targets``): for a page of a commune, targets are
taken commune → province → national, per (indicator, kind, group): a commune's own
poor-rate target replaces its province's, which replaces the national one, and a target
its office did not set comes from the level above. The national defaults
(``data/targets.csv``, the National Target Program, domain.md: poor rate −1 point a year
(the lower end of "−1 to −1.5"), ethnic-minority poor rate −3 points a year, "100% of
exited households do not relapse" as a relapse-rate ceiling of 0) are always the last
fallback; a national row in the office's own file replaces the shipped one. Each row
says where it came from: file, row, level and the unit's 2025 name.

**Plan vs actual** (``plan_vs_actual``), computed in the engine with the same
definitions as the page: ``actual`` is the indicator at the report period (for relapse:
the exit cohort ``within`` periods earlier, the latest fully followed). ``planned`` is
the plan's value at the report period: base + value × years (points), base × (1 +
value/100)^years (percent), or the ceiling; ``base`` is the indicator at the base
period and years = (report period − base period) in years. A target is **met**
(``on_track``) when actual ≤ planned. ``actual_change`` is the change per year since the
base (points, or percent for counts) with, for rates, a 95% interval from the two Wilson
standard errors combined as if independent (households are in both years, which makes
the true interval narrower: the stated one is conservative). On a list register rates
need the household totals (``needs_totals`` otherwise; totals are not kept by group, so
a rate target by group needs a full panel); counts are the same on both kinds. No
verdict rests on fewer than ``min_cell`` households (``not_assessable``): "met, ceiling
0" would print a hidden count.

**Projection** (``project`` / ``projection``): a Markov chain on the three statuses with
the annual transition matrix estimated at the same quarter of two consecutive years: the
poor and near-poor rows from the households observed at both, the not-poor row as a
stock-flow row (``annual_transition_counts``) that a list register with household
totals gives exactly as a full panel does. Share at
year y = start share · P^(y − year of the report period). Uncertainty: parametric
(multinomial) bootstrap of the transition counts — each row of counts is redrawn as
Multinomial(n_i, p̂_i), the start distribution as Multinomial(N, start share), and the
2.5% / 97.5% percentiles of the projected shares form the interval.
"""
from __future__ import annotations

import difflib
from pathlib import Path

import numpy as np
import pandas as pd

from . import periods as _periods
from .config import settings
from .errors import EstimationError, PovdynError
from .labels import label

STATES = ("poor", "near_poor", "non_poor")
TARGETS_FILE = Path(__file__).parent / "data" / "targets.csv"
EXAMPLE_TARGETS_FILE = Path(__file__).parent / "data" / "targets_demo.csv"
LOCAL_TARGETS_NAME = "targets.csv"

RATE_INDICATORS = ("poor_rate", "near_poor_rate", "relapse_rate")
COUNT_INDICATORS = ("poor_households", "near_poor_households", "relapses")
INDICATORS = RATE_INDICATORS + COUNT_INDICATORS
KINDS = ("points_per_year", "percent_per_year", "ceiling")
LEVELS = ("national", "province", "commune")
COLUMNS = ("level", "province", "district", "commune", "indicator", "kind", "value", "group",
           "base_period", "source")
# the legacy page rows (progress_values): national-programme indicators by their old names
LEGACY = {("poor_rate", "points_per_year", ""): "poor_rate_reduction",
          ("near_poor_rate", "points_per_year", ""): "near_poor_rate_reduction",
          ("poor_rate", "points_per_year", "ethnic_minority=true"): "em_poor_rate_reduction",
          ("relapse_rate", "ceiling", ""): "relapse_ceiling"}


def _panel_of(data):
    """The Panel behind a page's data (``povdyn.pagedata.PageData``: its un-grouped view,
    whose household pivot the page's other metrics share) or anything
    ``povdyn.stocks.as_panel`` reads."""
    from .stocks import as_panel

    if hasattr(data, "panel_for"):
        return data.panel_for(None)
    return as_panel(data)


def _year_before(period):
    """The same period a year earlier (4 quarters or 1 year)."""
    freq, _ = _periods.parse_period(period)
    return _periods.shift(period, -4 if freq == "quarter" else -1)


# --------------------------------------------------------------------------- targets files
def _blank(v) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == ""


def _clean(v) -> str:
    return "" if _blank(v) else str(v).strip()


def parse_group(text) -> tuple[tuple[str, str], ...]:
    """``"meritorious=true; area=urban"`` -> (("area", "urban"), ("meritorious", "true")),
    sorted, values lower-cased (booleans as "true"/"false")."""
    out = []
    for part in _clean(text).split(";"):
        if not part.strip():
            continue
        if "=" not in part:
            raise ValueError(f"group {part.strip()!r}: write column=value (e.g. meritorious=true)")
        col, val = (s.strip() for s in part.split("=", 1))
        if not col or not val:
            raise ValueError(f"group {part.strip()!r}: write column=value (e.g. meritorious=true)")
        out.append((col, _group_value(val)))
    return tuple(sorted(out))


def _group_value(v) -> str:
    """One spelling per value: booleans (True, 1, "có", "yes") -> "true"/"false", else the
    folded text."""
    from .text import fold_key

    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    s = fold_key(str(v)) if not _blank(v) else ""
    if s in ("true", "1", "yes", "co", "x"):
        return "true"
    if s in ("false", "0", "no", "khong"):
        return "false"
    return s


def group_text(group) -> str:
    """The canonical ``col=value;col=value`` text of a group ("" = all households)."""
    return ";".join(f"{c}={v}" for c, v in (parse_group(group) if isinstance(group, str) else group))


def _close(name, candidates, n=5) -> list[str]:
    from .geo import normalise_name

    keyed = {normalise_name(c): c for c in candidates}
    hits = difflib.get_close_matches(normalise_name(name), list(keyed), n=n, cutoff=0.6)
    return [keyed[h] for h in hits]


_READ: dict = {}


def read_targets(path) -> pd.DataFrame:
    """``_read_targets``, kept per file version (path, size, modification time): every
    page of a report reads the same files, and checking the place names of a file
    through the crosswalk costs more than a commune page's table."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        return _read_targets(path)  # the error names the file
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _READ:
        if len(_READ) >= 8:
            _READ.pop(next(iter(_READ)))
        _READ[key] = _read_targets(path)
    return _READ[key].copy()


def _read_targets(path) -> pd.DataFrame:
    """A targets file (module docstring) read and checked: one row per target with its
    2025 ``province_2025`` / ``commune_2025`` / ``commune_code``, canonical ``group``,
    float ``value``, and where it came from (``origin_file``, ``origin_row`` as a
    spreadsheet numbers it, ``origin_level``, ``origin_name``). Any problem is a
    ``PovdynError`` naming the file and row (and the candidates for a place name)."""
    from .geo import commune_2025, new_provinces, old_provinces, province_2025

    path = Path(path)
    if not path.exists():
        raise PovdynError(f"targets file {path} not found")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise PovdynError(f"{path}: not a readable csv (utf-8, comma-separated; quote a text "
                          f"with commas): {e}") from None
    raw.columns = [c.strip().lower() for c in raw.columns]
    need = ("level", "indicator", "kind", "value")
    missing = [c for c in need if c not in raw.columns]
    if missing:
        raise PovdynError(f"{path}: column(s) {missing} missing; a targets file has columns "
                          f"{', '.join(COLUMNS)} (povdyn.targets)")
    unknown_cols = [c for c in raw.columns if c not in COLUMNS]
    if unknown_cols:
        raise PovdynError(f"{path}: unknown column(s) {unknown_cols}; use {', '.join(COLUMNS)}")
    for c in COLUMNS:
        if c not in raw.columns:
            raw[c] = ""
    raw = raw[list(COLUMNS)].map(_clean)

    def fail(i, column, msg):
        raise PovdynError(f"{path}, row {i + 2}: {msg} (column {column})")

    rows = []
    for i, r in raw.iterrows():
        if not any(r.values):
            continue  # an empty line
        level, ind, kind = r["level"].lower(), r["indicator"], r["kind"]
        if level not in LEVELS:
            fail(i, "level", f"level {r['level']!r}: use one of {list(LEVELS)}")
        if ind not in INDICATORS:
            fail(i, "indicator", f"unknown indicator {ind!r}; use one of {list(INDICATORS)}")
        if kind not in KINDS:
            fail(i, "kind", f"unknown kind {kind!r}; use one of {list(KINDS)}")
        if kind == "points_per_year" and ind not in RATE_INDICATORS:
            fail(i, "indicator", f"points_per_year needs a rate indicator ({', '.join(RATE_INDICATORS)}), not {ind!r}")
        if kind == "percent_per_year" and ind not in COUNT_INDICATORS:
            fail(i, "indicator",
                 f"percent_per_year needs a count indicator ({', '.join(COUNT_INDICATORS)}), not {ind!r}")
        try:
            value = float(r["value"].replace(",", ".")) if r["value"] else np.nan
        except ValueError:
            fail(i, "value", f"value {r['value']!r} is not a number")
        if not np.isfinite(value):
            fail(i, "value", "value is empty: a target needs a number (leave the row out for no target)")
        if kind == "ceiling" and value < 0:
            fail(i, "value", f"a ceiling cannot be negative ({value})")
        if kind == "percent_per_year" and value <= -100:
            fail(i, "value", f"a count cannot fall by {-value}% a year")
        try:
            group = group_text(r["group"])
        except ValueError as e:
            fail(i, "group", str(e))
        if r["base_period"]:
            if kind == "ceiling":
                fail(i, "base_period", "a ceiling has no base_period")
            try:
                _periods.parse_period(r["base_period"])
            except Exception:
                fail(i, "base_period", f"base_period {r['base_period']!r} is not a period (2024, 2024Q4)")
        if level == "national" and (r["province"] or r["commune"] or r["district"]):
            fail(i, "province", "a national row names no province or commune")
        if level != "national" and not r["province"]:
            fail(i, "province", f"a {level} row needs its province")
        if level == "province" and (r["commune"] or r["district"]):
            fail(i, "commune", "a province row names no commune or district (use level commune)")
        if level == "commune" and not r["commune"]:
            fail(i, "commune", "a commune row needs its commune")
        rows.append(dict(level=level, province=r["province"], district=r["district"], commune=r["commune"],
                         indicator=ind, kind=kind, value=value, group=group, base_period=r["base_period"],
                         source=r["source"], origin_row=i + 2))
    t = pd.DataFrame(rows, columns=["level", "province", "district", "commune", "indicator", "kind", "value",
                                    "group", "base_period", "source", "origin_row"])
    t["province_2025"] = None
    t["commune_2025"] = None
    t["commune_code"] = None
    local = t["level"] != "national"
    if local.any():
        p = province_2025(t.loc[local, "province"], errors="coerce")
        for i in p.index[p.isna()]:
            name = t.at[i, "province"]
            close = _close(name, list(new_provinces()) + list(old_provinces()))
            raise PovdynError(f"{path}, row {t.at[i, 'origin_row']}: unknown province {name!r}; "
                              f"closest: {', '.join(close) if close else 'none'} (column province)")
        t.loc[local, "province_2025"] = p
    communes = t["level"] == "commune"
    if communes.any():
        q = t.loc[communes, ["province", "district", "commune"]].replace("", None)
        placed = commune_2025(q, period_col=None)
        problems = {(u["province"], u.get("district"), u["commune"]): u for u in placed.attrs.get("unmatched", [])}
        for i, g in placed.groupby(level=0, sort=False):
            row = t.at[i, "origin_row"]
            where = ", ".join(x for x in (t.at[i, "commune"], t.at[i, "district"], t.at[i, "province"]) if x)
            if g["match"].isin(["ambiguous", "unmatched"]).any():
                info = next((u for k, u in problems.items() if k[0] == q.at[i, "province"]
                             and k[2] == q.at[i, "commune"]), None)
                cands = "; ".join(info["candidates"]) if info and info.get("candidates") else "none"
                reason = info["reason"] if info else g["match"].iloc[0]
                raise PovdynError(f"{path}, row {row}: commune {where!r}: {reason}; candidates: {cands} "
                                  "(columns province, district, commune)")
            if len(g) > 1:
                raise PovdynError(f"{path}, row {row}: the pre-reform commune {where!r} was split between "
                                  f"{'; '.join(g['commune_2025'])}: a target cannot be shared out; write "
                                  "the row for the 2025 commune(s)")
            t.at[i, "province_2025"] = g["province_2025"].iloc[0]
            t.at[i, "commune_2025"] = g["commune_2025"].iloc[0]
            t.at[i, "commune_code"] = g["commune_code"].iloc[0]
    t["origin_file"] = str(path)
    t["origin_level"] = t["level"]
    t["origin_name"] = np.where(t["level"] == "national", "national",
                                np.where(t["level"] == "commune", t["commune_2025"].astype(str) + ", "
                                         + t["province_2025"].astype(str), t["province_2025"].astype(str)))
    key = ["level", "province_2025", "commune_2025", "indicator", "kind", "group"]
    dup = t.duplicated(key, keep=False)
    if dup.any():
        first = t[dup].iloc[0]
        same = t[dup & (t[key].fillna("").eq(first[key].fillna("")).all(axis=1))]
        raise PovdynError(f"{path}, rows {', '.join(map(str, same['origin_row']))}: the same target "
                          f"({first['indicator']}, {first['kind']}{', ' + first['group'] if first['group'] else ''}) "
                          f"twice for {first['origin_name']} (a pre-reform name and its 2025 name, "
                          "or two old provinces merged into one?)")
    return t


def load_targets(path=None) -> pd.DataFrame:
    """The national defaults shipped with povdyn (``data/targets.csv``) or the targets
    file at ``path``, read and checked (``read_targets``)."""
    return read_targets(path or TARGETS_FILE)


def local_targets_file(data_dir=None) -> Path | None:
    """The office's own targets file for a report on the processed data in `data_dir`:
    ``targets.csv`` in that folder, else ``targets.csv`` beside it (the project's
    ``data/targets.csv``, next to ``raw/`` and ``processed/``, where ``povdyn demo``
    writes the example: ingest reads every table under ``raw/``, so the file cannot sit
    there). None when there is none (the national targets only)."""
    base = Path(data_dir or settings().processed_dir)
    if base.is_file():
        base = base.parent
    for candidate in (base / LOCAL_TARGETS_NAME, base.parent / LOCAL_TARGETS_NAME):
        if candidate.is_file():
            return candidate
    return None


def write_example_targets(path) -> Path:
    """Copy the example targets file (a few provinces and communes of the demo register
    filled in) to `path` (a file, or a folder: ``targets.csv`` in it); atomic."""
    import os
    import tempfile

    path = Path(path)
    if path.is_dir():
        path = path / LOCAL_TARGETS_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".targets-", suffix=".csv")
    with os.fdopen(fd, "wb") as f:
        f.write(EXAMPLE_TARGETS_FILE.read_bytes())
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return path


def applicable_targets(targets_file=None, province=None, commune=None) -> pd.DataFrame:
    """The targets that apply to a page (module docstring, "Which targets apply"): for
    ``commune`` (its 2025 name) of ``province``, or for ``province``, or for the nation
    (``province`` None or "national"). ``targets_file``: the office's file (or a list of
    files, later ones first-hand), None = the national defaults only.

    Per (indicator, kind, group) the most local row wins: commune, then province, then
    national (a national row of the office's file before the shipped one). Returns one
    row per target with indicator, kind, value, group, base_period, source and where it
    came from: origin_file, origin_row, origin_level, origin_name."""
    from .geo import normalise_name

    files = [] if targets_file is None else (
        [targets_file] if isinstance(targets_file, (str, Path)) else list(targets_file))
    tables = [load_targets(TARGETS_FILE)] + [read_targets(f) for f in files]
    # rank: more local first; among national rows, the office's file before the shipped one
    ranked = []
    for order, t in enumerate(tables):
        t = t.copy()
        t["_file_order"] = order
        ranked.append(t)
    t = pd.concat(ranked, ignore_index=True)
    is_national = province is None or normalise_name(province) in ("national", "toan quoc", "ca nuoc")
    if commune is not None and is_national:
        raise PovdynError("applicable_targets: a commune needs its province")
    keep = t["level"] == "national"
    if not is_national:
        keep |= (t["level"] == "province") & (t["province_2025"].map(
            lambda v: normalise_name(v) if v else "") == normalise_name(province))
        if commune is not None:
            keep |= ((t["level"] == "commune")
                     & (t["province_2025"].map(lambda v: normalise_name(v) if v else "") == normalise_name(province))
                     & (t["commune_2025"].map(lambda v: normalise_name(v) if v else "") == normalise_name(commune)))
    t = t[keep].copy()
    t["_rank"] = t["level"].map({"commune": 0, "province": 1, "national": 2})
    t = t.sort_values(["_rank", "_file_order"], ascending=[True, False], kind="stable")
    t = t.drop_duplicates(["indicator", "kind", "group"], keep="first")
    order = {k: i for i, k in enumerate(INDICATORS)}
    t = t.assign(_ind=t["indicator"].map(order)).sort_values(["_ind", "kind", "group"], kind="stable")
    cols = ["indicator", "kind", "value", "group", "base_period", "source", "origin_file", "origin_row",
            "origin_level", "origin_name"]
    return t[cols].reset_index(drop=True)


# --------------------------------------------------------------------------- plan vs actual
def series_key(indicator: str, group: str) -> tuple[bool, tuple[str, ...]]:
    """Which metric table an indicator of `group` is read from: (relapse?, the group's
    columns); the key of ``plan_vs_actual``'s `series` tables."""
    return indicator in ("relapse_rate", "relapses"), tuple(c for c, _ in parse_group(group))


def series_table(panel, key: tuple[bool, tuple[str, ...]], within: int, by_first=()) -> pd.DataFrame:
    """The metric table behind ``series_key`` `key`: ``dynamics.relapse_rates`` or
    ``stocks.status_shares`` grouped by the group's columns (after `by_first`: the
    commune pages compute a province's communes at once, by_first=("commune_2025",))."""
    from .dynamics import relapse_rates
    from .stocks import status_shares

    by = [*by_first, *key[1]] or None
    return relapse_rates(panel, within=within, by=by) if key[0] else status_shares(panel, by=by)


def _indicator_series(panel, indicator: str, group: str, within: int, cache: dict) -> pd.DataFrame:
    """The indicator per period for the households of `group` (engine-side metrics):
    indexed by period key, columns value (percent for rates, households for counts),
    count, households (the denominator; NaN for counts), ci_low, ci_high (rates). For
    relapse the period is the cohort's exit period + ``within`` (when it is known).
    None when the panel has no column the group names. `cache`: {series_key: table}."""
    spec = parse_group(group)
    cols = [c for c, _ in spec]
    if any(c not in panel.columns for c in cols):
        return None
    relapse = indicator in ("relapse_rate", "relapses")
    key = series_key(indicator, group)
    if key not in cache:
        cache[key] = series_table(panel, key, within)
    t = cache[key]
    for col, want in spec:
        # a boolean array, not the mapped Series: mapping an empty table gives an object
        # Series, which pandas reads as column labels (the relapse columns then vanish)
        t = t[t[col].map(lambda v: (not pd.isna(v)) and _group_value(v) == want).to_numpy(bool)]
    if relapse:
        idx = t["exit_period"].map(lambda p: _periods.parse_period(p)[1] + within)
        out = pd.DataFrame({"count": t["relapsed"].to_numpy(float), "households": t["followed"].to_numpy(float),
                            "rate": t["rate"].to_numpy(float), "ci_low": t["ci_low"].to_numpy(float),
                            "ci_high": t["ci_high"].to_numpy(float)}, index=idx.to_numpy())
    else:
        st = "poor" if indicator in ("poor_rate", "poor_households") else "near_poor"
        idx = t["period"].map(lambda p: _periods.parse_period(p)[1])
        out = pd.DataFrame({"count": t[st].to_numpy(float), "households": t["households"].to_numpy(float),
                            "rate": t[f"{st}_rate"].to_numpy(float), "ci_low": t[f"{st}_ci_low"].to_numpy(float),
                            "ci_high": t[f"{st}_ci_high"].to_numpy(float)}, index=idx.to_numpy())
    out = out.groupby(level=0).sum(min_count=1) if out.index.has_duplicates else out
    if indicator in RATE_INDICATORS:
        out["value"] = out["rate"] * 100
        out["ci_low"], out["ci_high"] = out["ci_low"] * 100, out["ci_high"] * 100
    else:
        out["value"] = out["count"]
        out["ci_low"] = out["ci_high"] = np.nan
        out["households"] = np.nan
    return out


def _base_period(period, base, frequency):
    """The plan's base period on the register's frequency (module docstring)."""
    if not base:
        return _year_before(period)
    bfreq, bidx = _periods.parse_period(base)
    pfreq, pidx = _periods.parse_period(period)
    if bfreq == pfreq:
        return _periods.label(bfreq, bidx)
    if bfreq == "year" and pfreq == "quarter":
        return _periods.label("quarter", bidx * 4 + pidx % 4)
    return _periods.label("year", bidx // 4)  # a quarter on a yearly register: its year


def plan_vs_actual(df, applicable: pd.DataFrame, period, within: int = 2,
                   min_cell: int | None = None, series: dict | None = None) -> pd.DataFrame:
    """Plan vs actual for each row of ``applicable`` (``applicable_targets``) on the page
    data `df` (PageData, Panel, DataFrame or path; full panel, or lists with their
    household totals) at `period` (module docstring, "Plan vs actual").

    Returns the target columns plus: period, base_period, base (the indicator at the
    base period), planned, actual, ci_low, ci_high (of the actual rate), actual_change
    (per year: points, or percent for counts), change_ci_low, change_ci_high (rates),
    count / households (the counts the actual rests on), base_count / base_households,
    group_count (the group's complement is the unit's count less it: for suppression)
    and status: "on_track" (actual <= planned), "off_track", "not_assessable" (a figure
    below min_cell households, a group column the register lacks, no data at the
    periods), "needs_totals" (a rate on a list register without the totals it needs).

    `series`: metric tables already computed for `df`'s households, {``series_key``:
    ``series_table``} (a commune page passes its slice of its province's tables); the
    others are computed here."""
    min_cell = settings().min_cell if min_cell is None else min_cell
    panel = _panel_of(df)
    period = _periods.canonical([period])[0]
    freq, now_key = _periods.parse_period(period)
    per_year = 4 if freq == "quarter" else 1
    cache: dict = dict(series or {})
    rows = []
    for tg in applicable.to_dict("records"):
        row = dict(tg, period=period, base_period=None, base=np.nan, planned=np.nan, actual=np.nan,
                   ci_low=np.nan, ci_high=np.nan, actual_change=np.nan, change_ci_low=np.nan,
                   change_ci_high=np.nan, count=np.nan, households=np.nan, base_count=np.nan,
                   base_households=np.nan, total_count=np.nan, base_total_count=np.nan, status="not_assessable")
        series = _indicator_series(panel, tg["indicator"], tg["group"], within, cache)
        rate = tg["indicator"] in RATE_INDICATORS
        if series is None or now_key not in series.index:
            rows.append(row)
            continue
        now = series.loc[now_key]
        row.update(actual=now["value"], ci_low=now["ci_low"], ci_high=now["ci_high"], count=now["count"],
                   households=now["households"])
        if tg["group"]:  # the whole unit's count: group + the rest (for suppression)
            whole = _indicator_series(panel, tg["indicator"], "", within, cache)
            if now_key in whole.index:
                row["total_count"] = whole.loc[now_key, "count"]
        checks = [now["count"]] + ([now["households"]] if rate else [])
        if tg["kind"] == "ceiling":
            row["planned"] = tg["value"]
        else:
            base = _base_period(period, tg["base_period"], freq)
            base_key = _periods.parse_period(base)[1]
            row["base_period"] = base
            years = (now_key - base_key) / per_year
            if years <= 0 or base_key not in series.index:
                rows.append(row)
                continue
            then = series.loc[base_key]
            row.update(base=then["value"], base_count=then["count"], base_households=then["households"])
            if tg["group"] and base_key in whole.index:
                row["base_total_count"] = whole.loc[base_key, "count"]
            checks += [then["count"]] + ([then["households"]] if rate else [])
            if rate:
                row["planned"] = max(then["value"] + tg["value"] * years, 0.0)  # a rate stops at 0
                if np.isfinite(now["households"]) and np.isfinite(then["households"]):
                    p1, n1, p0, n0 = now["rate"], now["households"], then["rate"], then["households"]
                    change = (p1 - p0) * 100 / years
                    se = np.sqrt(p0 * (1 - p0) / n0 + p1 * (1 - p1) / n1) * 100 / years if n0 > 0 and n1 > 0 else np.nan
                    row.update(actual_change=change, change_ci_low=change - 1.96 * se,
                               change_ci_high=change + 1.96 * se)
            else:
                row["planned"] = then["value"] * (1 + tg["value"] / 100) ** years
                if then["value"] > 0:
                    row["actual_change"] = ((now["value"] / then["value"]) ** (1 / years) - 1) * 100
        if rate and not all(np.isfinite(c) for c in checks):
            row["status"] = "needs_totals"
        elif not all(np.isfinite(c) and c >= min_cell for c in checks):
            row["status"] = "not_assessable"  # a verdict on a hidden figure would reveal it
        elif np.isfinite(row["actual"]) and np.isfinite(row["planned"]):
            row["status"] = "on_track" if row["actual"] <= row["planned"] + 1e-12 else "off_track"
        rows.append(row)
    return pd.DataFrame(rows)


def progress_values(df, period, region: str = "national", within: int = 2,
                    targets_path=None, min_cell: int | None = None) -> pd.DataFrame:
    """The national programme's four page rows (their earlier names), from
    ``plan_vs_actual`` on the targets that apply to `region`: indicator
    (poor_rate_reduction, near_poor_rate_reduction, em_poor_rate_reduction,
    relapse_ceiling), target (fall in points a year, or the relapse ceiling in percent),
    actual (the fall in points since a year before, or the relapse rate), ci_low,
    ci_high, numerator / denominator (the smaller counts it rests on) and status
    ("no_target" where none applies). ``targets_path``: the office's targets file."""
    applicable = applicable_targets(targets_path, None if region in (None, "national") else region)
    pva = plan_vs_actual(df, applicable, period, within, min_cell)
    rows = []
    for key, name in LEGACY.items():
        hit = pva[(pva["indicator"] == key[0]) & (pva["kind"] == key[1]) & (pva["group"] == key[2])]
        row = dict(indicator=name, target=np.nan, actual=np.nan, ci_low=np.nan, ci_high=np.nan,
                   numerator=np.nan, denominator=np.nan, status="no_target")
        if len(hit):
            r = hit.iloc[0]
            row["status"] = r["status"]
            if key[1] == "ceiling":
                row.update(target=r["value"], actual=r["actual"], ci_low=r["ci_low"], ci_high=r["ci_high"],
                           numerator=r["count"], denominator=r["households"])
            else:
                row.update(target=-r["value"], actual=-r["actual_change"], ci_low=-r["change_ci_high"],
                           ci_high=-r["change_ci_low"], numerator=np.fmin(r["count"], r["base_count"]),
                           denominator=np.fmin(r["households"], r["base_households"]))
        rows.append(row)
    return pd.DataFrame(rows)


def _cells_of(r) -> dict:
    """The published counts a plan-vs-actual row rests on, as cells shared between rows
    (the same count printed twice is one cell): {role: (measure, group, period)}."""
    ind = r["indicator"]
    measure = ("relapsed", "followed") if ind in ("relapse_rate", "relapses") else (
        ("poor", "households") if ind.startswith("poor") else ("near_poor", "households"))
    rate = ind in RATE_INDICATORS
    out = {"count": (measure[0], r["group"], r["period"])}
    if rate:
        out["households"] = (measure[1], r["group"], r["period"])
    if r["base_period"]:
        out["base_count"] = (measure[0], r["group"], r["base_period"])
        if rate:
            out["base_households"] = (measure[1], r["group"], r["base_period"])
    return out


def suppress_plan_vs_actual(pva: pd.DataFrame, min_cell: int | None = None) -> pd.DataFrame:
    """Which figures of a plan-vs-actual table may be printed (methods.md, Disclosure
    control; ``povdyn.suppression``). Every count a row rests on is a published cell,
    printed or not: the actual and its households, and the base, since the planned value
    gives it back (base × (1 − 10%) = planned). The unit's own counts are printed
    elsewhere on the page (the headline and its change since last year), so they are
    taken as shown. A row about a group publishes the group's count beside the unit's,
    so the rest of the unit (unit − group) is a cell too: a small rest hides the group's
    count (secondary), as the group table does. Returns boolean columns show_actual, show_base (base and
    planned), show_change, show_count (counts) and the cell statuses in
    ``attrs["status"]``."""
    from .suppression import Relation, linked_suppression

    min_cell = settings().min_cell if min_cell is None else min_cell
    values: dict = {}
    relations: list = []
    fixed: set = set()
    cells = [_cells_of(r) for r in pva.to_dict("records")]
    for r, c in zip(pva.to_dict("records"), cells):
        for role, key in c.items():
            values[key] = r[role]
        if r["group"]:
            for role, total in (("count", "total_count"), ("base_count", "base_total_count")):
                if role not in c or not np.isfinite(r[total]):
                    continue
                measure, group, per = c[role]
                whole, rest = (measure, "", per), (measure, "rest:" + group, per)
                values[rest] = r[total] - r[role]
                if whole not in values or pd.isna(values[whole]):
                    values[whole] = r[total]
                    fixed.add(whole)
                relations.append(Relation(whole, (c[role], rest)))
    # the unit's own counts (no group) are on the page anyway (headline, and its change
    # since last year): never hidden here to protect a group, only when small themselves
    fixed |= {key for key in values if key[1] == ""}
    status = linked_suppression(pd.Series(values, dtype=float, index=pd.Index(list(values), tupleize_cols=False)),
                                relations, min_cell=min_cell, shown=fixed) if values else pd.Series(dtype=object)

    def ok(c, roles):
        return all(status.get(c[k], "") == "" and np.isfinite(values[c[k]]) for k in roles if k in c)

    out = pva.copy()
    out["show_actual"] = [ok(c, ("count", "households")) for c in cells]
    out["show_base"] = [ok(c, ("base_count", "base_households")) for c in cells]
    out["show_change"] = out["show_actual"] & out["show_base"]
    out["show_count"] = out["show_actual"]
    out.attrs["status"] = dict(status.items())
    return out


def _target_text(r, lang) -> str:
    from .formatting import fmt_count, fmt_decimal

    v = r["value"]
    if r["kind"] == "ceiling":
        unit = label("households_unit", lang) if r["indicator"] in COUNT_INDICATORS else "%"
        amount = fmt_count(v, lang) if r["indicator"] in COUNT_INDICATORS else fmt_decimal(v, lang)
        return f"≤ {amount} {unit}".replace(" %", "%")
    unit = label("points_per_year", lang) if r["kind"] == "points_per_year" else label("percent_per_year", lang)
    sign = "+" if v > 0 else ""
    since = f" ({label('since', lang)} {r['base_period']})" if r.get("base_period") else ""
    return f"{sign}{fmt_decimal(v, lang)} {unit}{since}"


def _indicator_text(r, lang) -> str:
    from .labels import group_label

    name = label(f"target_{r['indicator']}", lang)
    if not r["group"]:
        return name
    parts = []
    for col, val in parse_group(r["group"]):
        value = True if val == "true" else False if val == "false" else val
        parts.append(label(col, lang) if value is True and col != "ethnic_minority"
                     else group_label(col, value, lang))
    return f"{name} — {', '.join(parts)}"


def _origin_text(r, lang) -> str:
    name = Path(str(r["origin_file"])).name
    if r["origin_level"] == "national" and Path(str(r["origin_file"])) == TARGETS_FILE:
        return label("origin_national_default", lang)
    where = {"national": label("national", lang), "province": r["origin_name"],
             "commune": r["origin_name"]}[r["origin_level"]]
    return f"{label('origin_' + r['origin_level'], lang)} {where} ({name}, {label('row', lang)} {r['origin_row']})"


def targets_table(df, period, province=None, commune=None, targets_file=None, within: int = 2,
                  lang: str = "vi", min_cell: int | None = None, applicable: pd.DataFrame | None = None,
                  unit_hidden=None, series: dict | None = None) -> pd.DataFrame:
    """Plan vs actual for reviewers: the targets that apply to the page
    (``applicable_targets(targets_file, province, commune)``, or ``applicable``), one
    row each with the indicator (and group), the target, the base value, the planned
    value at `period`, the actual with its 95% interval, the households it rests on, the
    verdict and where the target comes from (Vietnamese or English, ``lang``). Counts and
    everything resting on them are suppressed together (``suppress_plan_vs_actual``):
    hidden figures show "—", a count below min_cell "<10" and a count hidden to protect
    another "x".

    ``unit_hidden``: for a page whose unit is one of several that add up to a total
    published elsewhere (a commune of its province), a function of a count column
    ("poor", "near_poor", "households", "relapsed", "followed") saying whether the
    joint suppression across the province's pages hides the unit's count at `period`.
    Such a page prints only those counts, and what rests on them, as that joint
    suppression allows: an earlier period's count (the base, and the planned value of a
    rate-of-change target, which gives the base back) and a group's count are parts of
    the province's counts that no joint table covers, so they show "—"; the verdict
    stays (it rests on counts of at least min_cell, and says no more than that).
    ``series``: as for ``plan_vs_actual``."""
    from .formatting import fmt_count, fmt_decimal
    from .suppression import PRIMARY, SECONDARY, SUPPRESSED_RATE, SUPPRESSED_SECONDARY

    min_cell = settings().min_cell if min_cell is None else min_cell
    if applicable is None:
        applicable = applicable_targets(targets_file, province, commune)
    pva = suppress_plan_vs_actual(plan_vs_actual(df, applicable, period, within, min_cell, series), min_cell)
    status = pva.attrs["status"]
    if unit_hidden is not None:
        for i, r in pva.iterrows():
            cells = _cells_of(r)
            own = [cells[k][0] for k in ("count", "households") if k in cells]
            if r["group"] or any(unit_hidden(c) for c in own):
                pva.loc[i, ["show_actual", "show_count", "show_change"]] = False
                status[cells["count"]] = status.get(cells["count"]) or SECONDARY
            if r["base_period"]:
                pva.loc[i, ["show_base", "show_change"]] = False
    verdict = {s: label(s, lang) for s in ("on_track", "off_track", "not_assessable", "needs_totals")}
    rows = []
    for r in pva.to_dict("records"):
        rate = r["indicator"] in RATE_INDICATORS
        num = (lambda x: fmt_decimal(x, lang)) if rate else (lambda x: fmt_count(round(x, 1) if np.isfinite(x) else x, lang))
        cells = _cells_of(r)
        mark = status.get(cells["count"], "")
        count = (f"<{min_cell}" if mark == PRIMARY else SUPPRESSED_SECONDARY if mark == SECONDARY
                 else fmt_count(r["count"], lang))
        if rate and r["show_count"] and np.isfinite(r["households"]):
            count = f"{count}/{fmt_count(r['households'], lang)}"
        hidden = SUPPRESSED_RATE
        rows.append({
            label("indicator", lang): _indicator_text(r, lang),
            label("target", lang): _target_text(r, lang),
            label("base_value", lang): (("" if not np.isfinite(r["base"]) else num(r["base"]))
                                        if r["show_base"] or not r["base_period"] else hidden),
            label("planned", lang): ((num(r["planned"]) if np.isfinite(r["planned"]) else "")
                                     if r["show_base"] or r["kind"] == "ceiling" else hidden),
            label("actual", lang): (num(r["actual"]) if np.isfinite(r["actual"]) else "") if r["show_actual"] else hidden,
            label("ci95", lang): ((f"{fmt_decimal(r['ci_low'], lang)} – {fmt_decimal(r['ci_high'], lang)}"
                                   if rate and np.isfinite(r["ci_low"]) else "")
                                  if r["show_actual"] else hidden),
            label("households", lang): count if np.isfinite(r["count"]) else "",
            label("assessment", lang): verdict[r["status"]],
            label("target_source", lang): _origin_text(r, lang),
        })
    out = pd.DataFrame(rows, columns=[label(k, lang) for k in ("indicator", "target", "base_value", "planned", "actual",
                                                               "ci95", "households", "assessment", "target_source")])
    # plain lists, not a DataFrame: pandas compares attrs when it concatenates (printing)
    out.attrs["values"] = pva.to_dict("list")
    return out



def progress_table(df, period, region: str = "national", within: int = 2, lang: str = "vi",
                   targets_path=None, min_cell: int | None = None, commune=None,
                   unit_hidden=None) -> pd.DataFrame:
    """The page's targets table (``targets_table``) for `region` (a province or
    "national") and, on a commune page, its `commune` (with ``unit_hidden``: the joint
    suppression of the province's communes); ``targets_path``: the office's targets file
    (None = national defaults only)."""
    province = None if region in (None, "national") else region
    return targets_table(df, period, province, commune, targets_path, within, lang, min_cell,
                         unit_hidden=unit_hidden)


# --------------------------------------------------------------------------- projection
def project(matrix, start, years: int) -> np.ndarray:
    """Distribution after `years` steps of a Markov chain: start · P^years.
    matrix: 3x3 row-stochastic (rows/cols in STATES order); start: shares (sum 1)."""
    P = np.asarray(matrix, dtype=float)
    x = np.asarray(start, dtype=float)
    if P.shape != (len(x), len(x)):
        raise EstimationError(f"transition matrix shape {P.shape} does not match {len(x)} states")
    if not np.allclose(P.sum(axis=1), 1):
        raise EstimationError("transition matrix rows must sum to 1")
    if years < 0:
        raise EstimationError(f"cannot project {years} years back")
    return x @ np.linalg.matrix_power(P, int(years))


def row_shares(counts) -> np.ndarray:
    """Row-normalised transition counts; a state never seen at the start stays put."""
    C = np.asarray(counts, dtype=float)
    n = C.sum(axis=1, keepdims=True)
    P = np.where(n > 0, C / np.where(n > 0, n, 1), np.eye(len(C)))
    return P


def bootstrap_projection(counts, start_counts, horizons, n_boot: int = 1000, seed: int = 0,
                         level: float = 0.95) -> pd.DataFrame:
    """Projected shares with a parametric bootstrap interval (module docstring).

    counts: 3x3 annual transition counts (from STATES to STATES); start_counts:
    households by status at the start; horizons: years ahead (ints). Returns a
    DataFrame [years, status, share, ci_low, ci_high]."""
    C = np.asarray(counts, dtype=float)
    s = np.asarray(start_counts, dtype=float)
    P = row_shares(C)
    start = s / s.sum()
    rng = np.random.default_rng(seed)
    n_rows = C.sum(axis=1).astype(int)
    k = len(s)
    # all n_boot replicates at once (a Python loop over draws cost a report page ~0.1 s):
    # each row's counts redrawn from its multinomial, an unseen row kept as "stays put"
    Cb = np.stack([rng.multinomial(n_rows[i], P[i], size=n_boot) if n_rows[i] > 0
                   else np.tile(np.eye(k)[i], (n_boot, 1)) for i in range(k)], axis=1)
    totals = Cb.sum(axis=2, keepdims=True)
    Pb = np.where(totals > 0, Cb / np.where(totals > 0, totals, 1), np.eye(k))  # row_shares of each draw
    sb = rng.multinomial(int(s.sum()), start, size=n_boot) / s.sum()
    # project() without its checks: each Pb is row-stochastic by construction
    draws = {h: np.einsum("bi,bij->bj", sb, np.linalg.matrix_power(Pb, int(h))) for h in horizons}
    a = (1 - level) / 2
    rows = []
    for h in horizons:
        point = project(P, start, h)
        lo, hi = np.quantile(draws[h], [a, 1 - a], axis=0)
        for i, st in enumerate(STATES):
            rows.append(dict(years=h, status=st, share=point[i], ci_low=lo[i], ci_high=hi[i]))
    return pd.DataFrame(rows)


def annual_transition_counts(df, period) -> tuple[np.ndarray, np.ndarray]:
    """(3x3 counts from status a year before to status at `period`, start counts at
    `period`) for the projection (module docstring), computed in the engine on the
    snapshots of the report period's quarter (annual steps).

    Rows poor and near-poor: households with that status a year before and a status at
    `period` (povdyn.transition_matrix on the annual snapshots). Row not poor: a
    stock-flow row, the same on both register kinds -- households poor (near-poor) at
    `period` that were neither poor nor near-poor a year before (not poor, or not yet on
    the register) against the not-poor households a year before (households - poor -
    near-poor of ``povdyn.stocks.status_shares``, so on lists the household totals);
    the rest stay not poor. Start counts: poor, near-poor and not-poor households at
    `period`. A list register without totals for both reviews has no not-poor stock:
    an EstimationError says the totals are needed."""
    from .stocks import status_shares

    panel = _panel_of(df)
    freq, idx = _periods.parse_period(period)
    target = idx // 4 if freq == "quarter" else idx
    annual = annual_snapshots(panel, period)
    # remembered by the page's panel: a report run hands each province page its slice
    # of the whole register's table (pagedata.run_wide_tables), computed once
    tm = panel.remembered(annual_transitions_key(period, annual.period_indices),
                          lambda: annual_transitions(annual))
    long = transition_counts_long(tm)
    long = long[long["period"].map(lambda p: _periods.parse_period(p)[1]) == target]
    C = np.zeros((3, 3))
    for r in long.itertuples(index=False):
        if r.from_status in ("poor", "near_poor") and r.to_status in STATES:
            C[STATES.index(r.from_status), STATES.index(r.to_status)] += r.count
    shares = status_shares(panel)
    shares = shares.set_index(shares["period"].map(lambda p: _periods.parse_period(p)[1]))
    key_now, key_then = idx, _periods.parse_period(_year_before(period))[1]
    if key_now not in shares.index or key_then not in shares.index:
        raise EstimationError(f"no households at {period} or a year before: cannot project")
    now, then = shares.loc[key_now], shares.loc[key_then]
    if not (np.isfinite(now["households"]) and np.isfinite(then["households"])):
        raise EstimationError("the projection needs the number of not-poor households, which a "
                              "list register only has with the household totals of both reviews")
    for j, st in enumerate(("poor", "near_poor")):
        C[2, j] = now[st] - C[0, j] - C[1, j]
    C[2, 2] = then["non_poor"] - C[2, 0] - C[2, 1]
    if C.sum() == 0:
        raise EstimationError(f"no household is observed both a year before and at {period}: "
                              "cannot estimate an annual transition matrix")
    if (C < 0).any():
        raise EstimationError(f"inconsistent counts for the projection at {period}: {C.tolist()}")
    start = np.array([now["poor"], now["near_poor"], now["non_poor"]], dtype=float)
    return C, start


def annual_snapshots(panel, period):
    """The Panel of the annual steps the projection reads: the snapshots of the report
    period's quarter (every year of an annual panel) up to `period`, periods numbered by
    year, read as a full register (absence on a list is already known here)."""
    from .panel import load_panel

    freq, idx = _periods.parse_period(period)
    target = idx // 4 if freq == "quarter" else idx
    t = panel.table
    if freq == "quarter":
        t = t.filter((t.period_index % 4) == idx % 4)
        t = t.mutate(period=(t.period_index // 4).cast("int64")).drop("period_index")
    t = t.filter(t.period <= target) if freq == "quarter" else t.filter(t.period_index <= target)
    return load_panel(t, register="full")


def annual_transitions(annual, by=None) -> pd.DataFrame:
    """``povdyn.transition_matrix`` of ``annual_snapshots`` per year (by ``by``): the
    annual transition counts of annual_transition_counts."""
    from . import dynamics

    return dynamics.transition_matrix(annual, by=by, per_period=True)


def annual_transitions_key(period, period_indices) -> tuple:
    """The key a page's Panel remembers ``annual_transitions`` under: the report period
    and the years its annual snapshots hold (a province's slice of the whole register's
    table is its own table only over the same years)."""
    return ("annual_transitions", str(period), tuple(int(i) for i in period_indices))


def transition_counts_long(tm) -> pd.DataFrame:
    """Adapt povdyn.transition_matrix output to long form [*, from_status, to_status, count]."""
    obj = tm
    for attr in ("counts", "table"):
        if not isinstance(obj, pd.DataFrame) and hasattr(obj, attr):
            obj = getattr(obj, attr)
    if isinstance(obj, tuple):
        obj = obj[0]
    df = obj.reset_index() if isinstance(obj, pd.DataFrame) and not isinstance(obj.index, pd.RangeIndex) else obj
    cols = {c.lower(): c for c in df.columns}
    from_c = next((cols[c] for c in ("from_status", "from", "status_from", "prev_status") if c in cols), None)
    to_c = next((cols[c] for c in ("to_status", "to", "status_to", "status") if c in cols), None)
    n_c = next((cols[c] for c in ("count", "n", "households", "transitions") if c in cols), None)
    if from_c and to_c and n_c:
        return df.rename(columns={from_c: "from_status", to_c: "to_status", n_c: "count"})
    if from_c and all(s in df.columns for s in STATES):  # wide: one column per destination
        keep = [c for c in df.columns if c not in STATES]
        return df.melt(id_vars=keep, value_vars=list(STATES), var_name="to_status",
                       value_name="count").rename(columns={from_c: "from_status"})
    raise EstimationError(f"cannot read transition_matrix output with columns {list(df.columns)}")


def projection(df, period, years=(2025, 2030), n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Projected poor / near-poor / not-poor shares at the end of each year in `years`
    (start = the report period) with bootstrap intervals: [year, years, status, share,
    ci_low, ci_high]. Years before the report period's year are left out."""
    C, start = annual_transition_counts(df, period)
    y0 = _periods.year_of(period)
    horizons = [y - y0 for y in years if y >= y0]
    out = bootstrap_projection(C, start, horizons, n_boot=n_boot, seed=seed)
    out.insert(0, "year", out["years"] + y0)
    out.attrs["counts"] = C
    out.attrs["start"] = start
    return out


def projection_table(df: pd.DataFrame, period, years=(2025, 2030), lang: str = "vi", n_boot: int = 1000,
                     min_cell: int | None = None, proj: pd.DataFrame | None = None) -> pd.DataFrame:
    """Projected poor and near-poor shares for reviewers (percent, 95% interval). The
    projection rests on the whole transition table; when any of its rows has fewer
    than min_cell households the table says it cannot be shown. `proj`: an existing
    projection(df, period, years) to reuse."""
    from .formatting import fmt_pct

    min_cell = settings().min_cell if min_cell is None else min_cell
    p = projection(df, period, years, n_boot=n_boot) if proj is None else proj
    C = p.attrs["counts"]
    small = (C.sum(axis=1) < min_cell).any()
    rows = []
    for year, g in p.groupby("year"):
        g = g.set_index("status")
        row = {label("year", lang): int(year)}
        for st, key in (("poor", "poor_rate"), ("near_poor", "near_poor_rate")):
            if small:
                row[label(key, lang) + " (%)"] = "—"
                row[label("ci95", lang) + (" " if st == "near_poor" else "")] = "—"
            else:
                row[label(key, lang) + " (%)"] = fmt_pct(g.loc[st, "share"], lang)
                row[label("ci95", lang) + (" " if st == "near_poor" else "")] = (
                    f"{fmt_pct(g.loc[st, 'ci_low'], lang)} – {fmt_pct(g.loc[st, 'ci_high'], lang)}")
        rows.append(row)
    return pd.DataFrame(rows)
