"""Which poverty-reduction models work: register-level evaluation of each support model.

methods.md, "Model (programme) effectiveness". Design of the analysis file
--------------------------------------------------------------------------
* Annual reviews. The unit of time is the annual review (rà soát): an annual panel as
  is, or the **Q4 snapshot** of each year for a quarterly panel. A household without a
  usable status at a review (not listed, or removed) is unobserved there.
* Treated (per model M): households whose first support record of M starts in year s
  (cohort s). Baseline t0 = s - 1, the last annual review before the start year.
  Only households **poor at t0** enter (the estimand concerns poor households).
* Comparable controls for cohort s: households poor at the same baseline t0, living in
  a province where M operates (any cohort), **not yet supported by M in the start year
  s** (their first support of M, if any, starts after s). ``controls="unsupported"``
  (default) makes the contrast "M versus no support": neither treated nor controls may
  have another programme starting at or before s. ``controls="not_this_program"``
  keeps households with other support on both sides. A control household may serve
  several cohorts (one row per cohort); SEs are clustered by household.
  Why not "never supported up to t0 + k": support goes to households that are still
  poor, so excluding households supported later excludes those that stayed poor, which
  conditions on the outcome and biases the effect downwards (we saw about -4 points on
  a null programme in simulation). Support starting after s cannot change a sustained
  exit that already failed (the household had to be poor to get it), so keeping these
  households as controls does not contaminate the comparison.
* Outcome: **sustained exit within k reviews** = poor at t0 and not poor at every
  annual review t0+1..t0+k (methods.md "Sustained exit"). Households not observed at
  all of t0+1..t0+k (removed, missing) are censored and left out (attrition is not exit);
  their number is reported. Cohorts whose t0+k is after the last review are left out.
* Baseline covariates (at t0): log income per person per month, household
  size, ethnic minority, urban area, number of deprivations (of the dep_* columns
  present), number of poor reviews among t0-1 and t0-2, region (national runs), and the
  cohort (baseline year) so the comparison stays within cohort.
* Estimand and estimator: ATT on sustained exit (a difference in probabilities, in
  percentage points when x100), doubly robust AIPW by default (povdyn.effects),
  propensity trimming [0.01, 0.99]; the treated households the trimming drops are
  counted (``n_trimmed_treated``): the effect is then that on the remaining supported
  households. The naive difference (supported minus unsupported mean) is shown beside it.
* Inference is clustered by **commune**: communes decide to adopt a model, so the
  households of a commune share that decision and local conditions, and their outcomes
  are correlated. Influence-function SEs are summed within communes (the household's
  first recorded commune; by household only when the register has no commune column;
  column ``cluster`` says which).

Multiple testing: Holm step-down adjusted p-values across the models evaluated
(``p_adjusted``; statsmodels ``multipletests``); a model is called **effective** only if
its Holm-adjusted p < alpha and the estimate is positive. Beside it, the Romano–Wolf
step-down p-value (``p_romano_wolf``, :func:`romano_wolf`) over the family of every
model x outcome (sustained exit within k; out of poverty at the first review), from a
bootstrap that resamples communes; it uses the correlation between the tests, so it is
never less powerful than Holm over the same family (``evaluation.multiple_testing``
has both for every test). **Fading**: the latest cohort with enough treated households
is compared with the earlier cohorts pooled; z = (recent - early) / sqrt(se_r^2 + se_e^2),
one-sided test "recent smaller", Holm-adjusted across models; fading if that adjusted
p < alpha and the early cohorts' effect is positive with p < alpha. (Shared control
households make the two estimates positively correlated, so this test is conservative.)
**Insufficient data**: fewer than ``min_treated`` (default 50) treated households in the
analysis file. Otherwise **no evidence**.

Secondary output: the exit hazard ratio (first exit within k reviews, supported vs
comparison, cloglog discrete-time model via ``povdyn.hazard_model``, covariate-adjusted,
clustered by household) in columns exit_hazard_ratio / _ci_low / _ci_high.

Cost per additional sustained exit = total amount_vnd of M's support to the treated
households in the analysis file / (ATT x n_treated), reported when ATT > 0.

Event study (per model): adoption is staggered across communes and years, so the
figure uses Callaway–Sant'Anna group-time effects (povdyn.staggered) on a commune-year
panel: unit = commune (the household's first recorded commune), cohort = the year the
commune adopted M, from the commune adoption register (``adoption=``; the first year any
household of the commune got M's support when no register is given — that year depends
on poverty itself, so its pre-trend test can reject for a null model), outcome = the commune's poor share at each annual review,
weighted by households, not-yet-treated comparisons, varying base period, cells with
at least 10 adopting communes, only the
review years under the same poverty standard as the latest review (a change of
standard, e.g. 2021 -> 2022, moves the line for everyone and would masquerade as an
effect or a pre-trend); TWFE on the same panel is kept only as the biased comparison.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import periods as _periods
from .effects import e_values_for_difference, estimate_effect
from .errors import EstimationError, SchemaError
from .formatting import _formatted, decimal_comma
from .labels import PROGRAMME_COLUMNS, text

VERDICT_VI = {
    "effective": "Hiệu quả",
    "no_evidence": "Chưa có bằng chứng",
    "fading": "Hiệu quả giảm dần",
    "insufficient_data": "Chưa đủ dữ liệu",
}
VERDICT_EN = {
    "effective": "Effective",
    "no_evidence": "No evidence",
    "fading": "Fading",
    "insufficient_data": "Insufficient data",
}
def inference_note(lang: str = "vi") -> str:
    """The sentence the page prints under the programme table (labels ``programs_inference``)."""
    return text("programs_inference", lang)


MIN_TREATED = 50
MIN_COHORT = 30


@dataclass
class ProgramEvaluation:
    """Result of :func:`evaluate_programs`.

    table: one row per model — program, program_vi, program_en, estimate, se, ci_low,
        ci_high, p_value, p_adjusted (Holm), ci_low_adj/ci_high_adj (Bonferroni
        simultaneous intervals over the models estimated), n_treated, n_control, naive, verdict,
        verdict_vi, verdict_en, reason, reason_vi, cost_per_sustained_exit, early/recent cohort effects and the
        fading test (fading_z, fading_p, fading_p_adjusted), total_cost_vnd.
    cohorts: effect by adoption cohort [program, cohort, estimate, se, ci_low, ci_high,
        n_treated, n_control, naive].
    event_study: {program: povdyn.staggered.StaggeredResult} (commune-level CS).
    twfe: {program: TwfeResult} — biased comparison only.
    balance: {program: balance DataFrame of the pooled estimate}.
    analysis_files: {program: the analysis file used}.
    design: the design in words (module docstring summary).
    multiple_testing: the family of tests (every model x outcome: sustained exit within
        k, exit at the first review) with p_value, p_holm (Holm over the family) and
        p_romano_wolf (Romano–Wolf step-down, bootstrap resampling communes).
    """

    table: pd.DataFrame
    cohorts: pd.DataFrame
    event_study: dict = field(default_factory=dict)
    twfe: dict = field(default_factory=dict)
    balance: dict = field(default_factory=dict)
    analysis_files: dict = field(default_factory=dict, repr=False)
    overlap: dict = field(default_factory=dict, repr=False)
    design: str = ""
    settings: dict = field(default_factory=dict)
    multiple_testing: pd.DataFrame | None = None
    event_study_cohort: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- inputs
def program_names() -> pd.DataFrame:
    """code, name_vi, name_en of the shipped programme table (schema.program_table)."""
    from .schema import program_table

    return program_table()


def _to_frame(obj) -> pd.DataFrame:
    if isinstance(obj, pd.DataFrame):
        return obj
    if hasattr(obj, "to_pandas"):
        return obj.to_pandas()
    if isinstance(obj, (str, Path)):
        p = Path(obj)
        return pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p)
    raise SchemaError(f"cannot read {type(obj).__name__}: give a DataFrame, a Panel or a parquet/csv path")


def annual_reviews(panel, until=None) -> pd.DataFrame:
    """The annual-review view of a panel: annual rows as they are, or the Q4 snapshot of
    each year for a quarterly panel. Adds int column ``year``; drops rows without a
    status (removal rows) and, with ``until`` (a period label), reviews after it."""
    df = _to_frame(panel)
    for c in ("household_id", "period", "status"):
        if c not in df.columns:
            raise SchemaError(f"panel has no column {c!r}")
    freq, index = _periods.frequency_and_index(df["period"])
    df = df.assign(_idx=index)
    if until is not None:
        ufreq, uidx = _periods.parse_period(until)
        if ufreq != freq:
            uidx = uidx // 4 if ufreq == "quarter" else uidx * 4 + 3
        df = df[df._idx <= uidx]
    if freq == "quarter":
        df = df[df._idx % 4 == 3].assign(year=lambda d: d._idx // 4)
    else:
        df = df.assign(year=df._idx)
    df = df[df["status"].notna()]
    if df.duplicated(["household_id", "year"]).any():
        raise SchemaError("panel has duplicate (household_id, period) rows")
    return df.drop(columns="_idx").reset_index(drop=True)


# --------------------------------------------------------------------------- engine side
# What an evaluation reads from a Panel (an engine-side register, povdyn.panel): the
# columns of the analysis file and its covariates -- never the whole register.
_EVALUATION_COLUMNS = ("household_id", "period", "status", "income_pc_month", "household_size",
                       "ethnic_minority", "area", "region", "province", "province_2025", "commune")
# the number of dep_* indicators a household is deprived in (a missing value: not
# deprived), the baseline covariate "deprivations"
_DEPRIVATION_COUNT = "_deprivation_count"


def _is_panel(obj) -> bool:
    from .panel import Panel

    return isinstance(obj, Panel)


def _annual_table(panel, until=None):
    """The annual-review rows of a Panel as an Ibis table with int column ``year``: rows
    with a status, at Q4 of a quarterly panel (every row of an annual one), up to the
    review ``until`` -- :func:`annual_reviews`, in the engine."""
    t = panel.table.filter(panel.table.status.notnull())
    quarterly = panel.frequency == "quarter"
    if until is not None:
        ufreq, uidx = _periods.parse_period(until)
        if ufreq != panel.frequency:
            uidx = uidx // 4 if ufreq == "quarter" else uidx * 4 + 3
        t = t.filter(t.period_index <= uidx)
    if quarterly:
        t = t.filter(t.period_index % 4 == 3)
    return t.mutate(year=(t.period_index // 4) if quarterly else t.period_index)


def evaluation_rows(panel, support=None):
    """The Panel view an evaluation pulls into pandas: the rows with a status at the
    annual reviews (Q4 of a quarterly panel; every row of an annual one) -- all that
    :func:`annual_reviews` keeps, so a quarter of a quarterly panel's rows at most.

    Given the ``support`` records (a DataFrame with ``household_id``), only the
    households an evaluation can use: those poor at some annual review (every household
    of an analysis file, treated or control, is poor at its baseline review) and those
    with a support record (they define the treated counts and the provinces where a
    programme operates). Every number of the evaluation is the same as on all rows; what
    is left out (households never poor and never supported, ~90% of a national
    register) enters only the commune poverty rates of the event study, which
    :func:`commune_poverty_rates` computes in the engine from every row."""
    from dataclasses import replace

    import ibis

    t = _annual_table(panel).drop("year")
    if support is not None:
        ever_poor = t.filter(t.status == "poor").select("household_id")
        wanted = ibis.union(ever_poor, supported_households(support), distinct=True)
        t = t.semi_join(wanted, "household_id")
    return replace(panel, table=t, _histories={}, _results={})


def supported_households(support):
    """The distinct household ids of support records as a small engine table (a join
    instead of an ``isin`` list: a national register's list would be millions long and
    slow to compile)."""
    import ibis

    ids = pd.unique(_to_frame(support)["household_id"].dropna().astype(str))
    return ibis.memtable(pd.DataFrame({"household_id": pd.Series(ids, dtype=object)}),
                         schema=ibis.schema({"household_id": "string"}))


# the columns of the support records an evaluation reads (``_support_years``)
SUPPORT_COLUMNS = ("household_id", "program", "start_period", "amount_vnd")
_support_views = itertools.count()


def support_records(source, panel) -> pd.DataFrame:
    """The support records of ``panel``'s households, selected in its engine: the
    records file (``source``: support.parquet, or a folder of parquet files) is read by
    the panel's engine (DuckDB or Spark) and, for a region's view (``Panel.region``),
    joined on household_id with the region's households, so that only those records
    leave it -- a report page or a province's notebook no longer reads every record
    of the country (millions nationally). The whole register keeps every record. Only
    the columns an evaluation reads (``SUPPORT_COLUMNS``) are pulled. A missing file is
    a ``NotEnoughDataError``."""
    from .errors import NotEnoughDataError
    from .engine import backend_name

    path = Path(source)
    if not path.exists():
        raise NotEnoughDataError(f"no support records: {path} does not exist")
    name = f"povdyn_support_{next(_support_views)}"
    if backend_name(panel.con) == "duckdb":
        pattern = str(path / "**" / "*.parquet") if path.is_dir() else str(path)
        records = panel.con.read_parquet(pattern, table_name=name)
    else:
        records = panel.con.read_parquet(str(path), table_name=name)
    missing = [c for c in SUPPORT_COLUMNS[:3] if c not in records.columns]
    if missing:
        raise SchemaError(f"support records have no column(s) {missing}")
    if panel.region_name is not None:
        records = records.semi_join(panel.table.select("household_id"), "household_id")
    return panel.execute(records.select([c for c in SUPPORT_COLUMNS if c in records.columns]))


def _commune_keys(commune: pd.Series, province: pd.Series | None) -> pd.Series:
    """A household's commune key, "commune, province" (commune names repeat across
    provinces); NaN when no commune is recorded, "" for an unrecorded province."""
    if province is None:
        key = commune.astype(str)
    else:
        key = commune.astype(str) + ", " + province.astype(object).where(province.notna(), "").astype(str)
    return key.where(commune.notna())


def commune_poverty_rates(panel, until=None) -> pd.DataFrame:
    """The event study's commune-year panel, computed in the engine from every
    annual-review row of the Panel (methods.md, "Model (programme) effectiveness":
    staggered adoption across communes, Callaway–Sant'Anna group-time effects on the
    commune poor share). Each household counts in its first recorded commune (the first
    annual review with a commune; its first recorded 2025 province, else province, names
    the commune's province); per commune and review year: ``poor_rate`` = share of the
    commune's households with a status that are poor, ``households`` = how many.
    Returns [commune_key, year, poor_rate, households, province], sorted by commune and
    year -- the numbers :func:`_prepare` computes from a pandas frame, without pulling
    the register: only one row per commune and year leaves the engine."""
    import ibis

    t = _annual_table(panel, until)
    prov_col = "province_2025" if "province_2025" in t.columns else ("province" if "province" in t.columns else None)

    def first_recorded(column):
        rows = t.filter(t[column].notnull())
        rows = rows.mutate(_order=ibis.row_number().over(group_by="household_id", order_by="year"))
        return rows.filter(rows._order == 0).select("household_id", **{f"first_{column}": rows[column].cast("string")})

    place = first_recorded("commune")
    if prov_col:
        place = place.left_join(first_recorded(prov_col), "household_id").select(
            "household_id", "first_commune", first_province=lambda p: p[f"first_{prov_col}"])
        key = place.first_commune.concat(", ", place.first_province.fill_null(""))
    else:
        place = place.mutate(first_province=ibis.null("string"))
        key = place.first_commune
    place = place.mutate(commune_key=key)
    rows = t.select("household_id", "year", poor=(t.status == "poor").cast("float64"))
    rows = rows.join(place, "household_id")
    rates = rows.group_by(["commune_key", "year"]).aggregate(
        poor_rate=rows.poor.mean(), households=rows.count(), province=rows.first_province.max())
    out = panel.execute(rates)
    out["year"] = out["year"].astype("int64")
    out["households"] = out["households"].astype("int64")
    out["poor_rate"] = out["poor_rate"].astype("float64")
    return (out.sort_values(["commune_key", "year"], kind="stable")
            [["commune_key", "year", "poor_rate", "households", "province"]].reset_index(drop=True))


def _review_years(panel, until=None) -> list[int]:
    """The annual-review years with at least one status row, up to ``until``."""
    t = _annual_table(panel, until)
    return sorted(int(y) for y in panel.execute(t.select("year").distinct())["year"])


def _evaluation_inputs(panel, support: pd.DataFrame, until, event_study: bool):
    """(annual-review frame of the households an evaluation can use, the review years or
    None, the commune-year panel or None) from a Panel: the frame is
    :func:`evaluation_rows` pulled with the columns an analysis file reads. For the event
    study, the review years and the commune poverty rates come from every row, in the
    engine; without it the years are those of the frame (a review year in which none
    of these households has a status would only move a cohort from "censored" to
    "without follow-up" in the counts -- not worth a query per report page)."""
    from dataclasses import replace

    view = evaluation_rows(panel, support)
    columns = [c for c in panel.columns if c in _EVALUATION_COLUMNS]
    deps = [c for c in panel.columns if c.startswith("dep_")]
    if deps:  # the one covariate made of them, counted in the engine (12 columns -> 1)
        from .deprivation import _deprived

        count = sum(_deprived(view.table[c]).fill_null(0.0) for c in deps)
        view = replace(view, table=view.table.mutate(**{_DEPRIVATION_COUNT: count}))
        columns.append(_DEPRIVATION_COUNT)
    ann = annual_reviews(view.to_pandas(columns=columns), until=until)
    if not (event_study and "commune" in panel.columns):
        return ann, None, None
    return ann, _review_years(panel, until), commune_poverty_rates(panel, until)


def _support_years(support) -> pd.DataFrame:
    sup = _to_frame(support).copy()
    for c in ("household_id", "program", "start_period"):
        if c not in sup.columns:
            raise SchemaError(f"support records have no column {c!r}")
    # each distinct period parsed once (a report page reads every support record)
    years = {v: _periods.year_of(v) for v in pd.unique(sup["start_period"])}
    sup["start_year"] = [years[v] for v in sup["start_period"]]
    if "amount_vnd" not in sup.columns:
        sup["amount_vnd"] = np.nan
    return sup


def holm(p_values) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values (statsmodels ``multipletests``, method
    "holm"); NaN stays NaN."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p_values, float)
    out = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
    return out


def romano_wolf(estimates, se, cluster_sums, n, n_boot: int = 999, seed: int = 0) -> np.ndarray:
    """Romano & Wolf (2005, Econometrica 73:1237; 2016) step-down adjusted p-values for
    the two-sided hypotheses estimate_k = 0, k = 1..m, controlling the family-wise error
    rate while using the dependence between the estimates (so it is at least as powerful
    as Holm, often more when the estimates are correlated).

    The joint distribution of the t-statistics is bootstrapped by resampling clusters
    (communes) with replacement, applied to each estimator's influence function (its
    linearisation): ``cluster_sums`` is a G x m array, the influence function of estimate k
    summed within each of the G clusters (0 where a cluster has no unit of that estimate),
    ``n[k]`` its number of units, so that a replicate's deviation is
    sum_c (w_c - 1) S_ck / n_k with multinomial counts w. With t*_bk = deviation / se_k and
    hypotheses ordered by |t| (largest first), the adjusted p of the j-th is
    max over i <= j of (1 + #{b: max_{l >= i} |t*_bl| >= |t_i|}) / (1 + B)."""
    est = np.asarray(estimates, float)
    se = np.asarray(se, float)
    S = np.asarray(cluster_sums, float)
    n = np.asarray(n, float)
    m = len(est)
    if m == 0:
        return np.array([])
    G = S.shape[0]
    rng = np.random.default_rng(seed)
    W = rng.multinomial(G, np.full(G, 1.0 / G), size=n_boot).astype(float) - 1.0
    T_star = np.abs((W @ S) / n / se)  # B x m
    t = np.abs(est / se)
    order = np.argsort(-t, kind="stable")
    A = T_star[:, order]
    tail_max = np.maximum.accumulate(A[:, ::-1], axis=1)[:, ::-1]
    p_step = (1 + (tail_max >= t[order][None, :]).sum(axis=0)) / (1 + n_boot)
    p_adj = np.empty(m)
    p_adj[order] = np.maximum.accumulate(p_step)
    return np.minimum(p_adj, 1.0)


def _family_member(code, outcome, res, af) -> dict:
    """One test of the multiple-testing family: estimate, SE and the influence function
    summed within clusters (communes)."""
    member = dict(program=code, outcome=outcome, estimate=res.estimate, se=res.se, p_value=res.p_value,
                  sums=None, n=0)
    if res.influence is not None:
        kept = ~res.overlap.scores["trimmed"].to_numpy()
        labels = af[_cluster_column(af)].to_numpy()[kept]
        member["sums"] = pd.Series(res.influence).groupby(labels).sum()
        member["n"] = int(kept.sum())
    return member


def _multiple_testing(family: list[dict], n_boot: int = 999, seed: int = 0) -> pd.DataFrame:
    """Holm and Romano–Wolf adjusted p-values over the whole family of tests."""
    cols = ["program", "outcome", "estimate", "se", "p_value", "p_holm", "p_romano_wolf"]
    if not family:
        return pd.DataFrame(columns=cols)
    out = pd.DataFrame([{k: v for k, v in f.items() if k not in ("sums", "n")} for f in family])
    out["p_holm"] = holm(out["p_value"])
    out["p_romano_wolf"] = np.nan
    usable = [i for i, f in enumerate(family) if f["sums"] is not None and f["se"] > 0]
    if usable:
        S = pd.concat([family[i]["sums"] for i in usable], axis=1).fillna(0.0)
        out.loc[usable, "p_romano_wolf"] = romano_wolf(
            out.loc[usable, "estimate"], out.loc[usable, "se"], S.to_numpy(),
            [family[i]["n"] for i in usable], n_boot=n_boot, seed=seed)
    return out[cols]


# --------------------------------------------------------------------------- analysis file
def _baseline_covariates(ann: pd.DataFrame) -> pd.DataFrame:
    """Baseline covariate columns per (household_id, year)."""
    out = ann[["household_id", "year"]].copy()
    if "income_pc_month" in ann:
        out["log_income"] = np.log(ann["income_pc_month"].astype(float).clip(lower=1e4))
    if "household_size" in ann:
        out["household_size"] = ann["household_size"].astype(float)
    if "ethnic_minority" in ann:
        out["ethnic_minority"] = ann["ethnic_minority"].astype(float)
    if "area" in ann:
        out["urban"] = (ann["area"] == "urban").astype(float)
    deps = [c for c in ann.columns if c.startswith("dep_")]
    if _DEPRIVATION_COUNT in ann:  # counted in the engine (_evaluation_inputs)
        out["deprivations"] = ann[_DEPRIVATION_COUNT].astype(float)
    elif deps:
        out["deprivations"] = ann[deps].fillna(False).astype(float).sum(axis=1)
    if "region" in ann:
        out["region"] = ann["region"].astype(str)
    return out


@dataclass
class _Prepared:
    """What every model's analysis file and event study share (computed once)."""

    status: pd.DataFrame  # household x year status (NaN = not observed)
    poor: pd.DataFrame  # household x year 1.0 poor / 0.0 not poor / NaN
    home: pd.Series | None  # household -> province (last recorded, 2025 names if present)
    covs: pd.DataFrame  # baseline covariates indexed by (household_id, year)
    place: pd.DataFrame | None  # household -> commune key and province (first recorded)
    commune_year: pd.DataFrame | None  # commune key, year, poor_rate, households
    province_column: str | None = None  # the province column in the commune key


def _prepare(ann: pd.DataFrame, years=None, commune_year: pd.DataFrame | None = None) -> _Prepared:
    """The shared inputs from an annual-review frame. ``years``: every review year of
    the register (the frame may hold only the households an evaluation can use, which
    need not be seen in every year); ``commune_year``: the commune poverty rates when
    computed in the engine from every row (:func:`commune_poverty_rates`), else they are
    computed here from the frame."""
    status = ann.pivot(index="household_id", columns="year", values="status")
    if years is not None:
        status = status.reindex(columns=pd.Index(list(years), name=status.columns.name))
    poor = status.eq("poor").astype(float).where(status.notna())
    prov_col = "province_2025" if "province_2025" in ann else ("province" if "province" in ann else None)
    ordered = ann.sort_values("year", kind="stable")
    home = ordered.groupby("household_id", sort=False)[prov_col].last() if prov_col else None
    covs = _baseline_covariates(ann).set_index(["household_id", "year"])
    place = None
    if "commune" not in ann:
        commune_year = None
    else:
        first = ordered.groupby("household_id", sort=False)[["commune"] + ([prov_col] if prov_col else [])].first()
        # commune names repeat across provinces: the key is "commune, province"
        key = _commune_keys(first["commune"], first[prov_col] if prov_col else None)
        place = pd.DataFrame({"commune_key": key, "province": first[prov_col] if prov_col else ""})
        if commune_year is None:
            d = pd.DataFrame({"commune_key": place["commune_key"].reindex(ann["household_id"]).to_numpy(),
                              "year": ann["year"].to_numpy(), "poor": (ann["status"] == "poor").to_numpy(float)})
            commune_year = (d.groupby(["commune_key", "year"]).agg(poor_rate=("poor", "mean"),
                                                                  households=("poor", "size"))
                            .reset_index())
            commune_year["province"] = commune_year["commune_key"].map(
                place.dropna(subset=["commune_key"]).drop_duplicates("commune_key").set_index("commune_key")["province"])
    return _Prepared(status, poor, home, covs, place, commune_year, prov_col)


def build_analysis_file(ann, support: pd.DataFrame, program: str, within: int = 2,
                        controls: str = "unsupported") -> tuple[pd.DataFrame, dict]:
    """Stacked cohort analysis file for one model (design in the module docstring).

    ``ann``: the annual-review frame (:func:`annual_reviews`) or its prepared form.
    Returns (file, counts): file has household_id, cohort, t0, treated, sustained_exit,
    exit_duration, exit_event, amount_vnd and baseline covariates; counts reports
    exclusions."""
    prep = ann if isinstance(ann, _Prepared) else _prepare(ann)
    if "start_year" not in support:
        support = _support_years(support)
    status, poor = prep.status, prep.poor
    sup_m = support[support.program == program]
    first_m = sup_m.groupby("household_id")["start_year"].min()
    amount_m = sup_m.groupby("household_id")["amount_vnd"].sum(min_count=1)
    # provinces where M operates (comparable places)
    home, covs = prep.home, prep.covs
    if home is not None:
        m_provinces = set(home.reindex(first_m.index).dropna())
    counts = dict(treated_records=int(len(first_m)), treated_not_poor_at_baseline=0,
                  censored_treated=0, censored_controls=0, cohorts_without_followup=0)
    # households' first start of another programme (the same for every cohort)
    other_first = (support[support.program != program].groupby("household_id")["start_year"].min()
                   .reindex(poor.index) if controls == "unsupported" else None)
    if controls not in ("unsupported", "not_this_program"):
        raise EstimationError("controls must be 'not_this_program' or 'unsupported'")
    # every household's values as arrays aligned with the pivot's rows, once for all
    # cohorts (a report page evaluates six models on each of ~35 pages: per-cohort pandas
    # selections were 70% of its programme section, issue 15 §4)
    ids_all = poor.index
    rates = poor.to_numpy()
    year_col = {y: j for j, y in enumerate(poor.columns)}
    later_m = first_m.reindex(ids_all).to_numpy(float)
    other = other_first.to_numpy(float) if other_first is not None else None
    comparable = home.reindex(ids_all).isin(m_provinces).to_numpy() if home is not None else None
    commune_keys = prep.place["commune_key"].reindex(ids_all).to_numpy() if prep.place is not None else None
    amounts = amount_m.reindex(ids_all).to_numpy()
    parts = []
    for s in sorted(first_m.unique()):
        t0 = s - 1
        follow = [t0 + j for j in range(1, within + 1)]
        if t0 not in status.columns or any(f not in status.columns for f in follow):
            counts["cohorts_without_followup"] += 1
            continue
        at_base = rates[:, year_col[t0]] == 1
        ahead = rates[:, [year_col[f] for f in follow]]
        observed = ~np.isnan(ahead).any(axis=1)
        # first review after t0 at which the household is not poor (for the exit hazard)
        out_of_poverty = ahead == 0
        sustained = out_of_poverty.all(axis=1)
        first_exit = np.where(out_of_poverty.any(axis=1), out_of_poverty.argmax(axis=1) + 1, within)
        exited = out_of_poverty.any(axis=1)
        is_t = later_m == s
        not_yet = np.isnan(later_m) | (later_m > s)
        if controls == "unsupported":
            # clean contrast "M vs no support": nobody (treated or control) had another
            # programme start at or before the start year s
            clean = np.isnan(other) | (other > s)
            is_t = is_t & clean
            is_c = ~is_t & clean & not_yet
        else:
            is_c = ~is_t & not_yet
        if comparable is not None:
            is_c &= comparable
        counts["treated_not_poor_at_baseline"] += int((is_t & ~at_base).sum())
        counts["censored_treated"] += int((is_t & at_base & ~observed).sum())
        counts["censored_controls"] += int((is_c & at_base & ~observed).sum())
        keep = at_base & observed & (is_t | is_c)
        ids = ids_all[keep]
        part = pd.DataFrame({
            "household_id": ids, "cohort": s, "t0": t0,
            "treated": is_t[keep].astype(int),
            "sustained_exit": sustained[keep].astype(int),
            "exit_duration": first_exit[keep],
            "exit_event": exited[keep].astype(int),
        })
        # secondary outcome of the multiple-testing family: not poor at the first review
        part["exit_next"] = ((part["exit_event"] == 1) & (part["exit_duration"] == 1)).astype(int)
        if commune_keys is not None:
            # programmes are adopted by communes: the commune is the cluster for inference
            part["commune"] = commune_keys[keep]
        part["amount_vnd"] = np.where(part.treated == 1, amounts[keep], np.nan)
        # poor reviews in the two years before baseline (duration proxy)
        prior = [year_col[y] for y in (t0 - 1, t0 - 2) if y in year_col]
        part["poor_before"] = np.nan_to_num(rates[keep][:, prior]).sum(axis=1) if prior else 0.0
        cv = covs.reindex(pd.MultiIndex.from_arrays([ids, np.full(len(ids), t0)])).reset_index(drop=True)
        parts.append(pd.concat([part.reset_index(drop=True), cv], axis=1))
    if not parts:
        return pd.DataFrame(columns=["household_id", "cohort", "t0", "treated", "sustained_exit"]), counts
    return pd.concat(parts, ignore_index=True), counts


def _usable(af: pd.DataFrame, candidates: list[str]) -> list[str]:
    """Covariates present, without missing values and not constant in this file."""
    out = []
    for c in candidates:
        if c in af and af[c].notna().all() and af[c].nunique() > 1:
            out.append(c)
    return out


def _cluster_column(af: pd.DataFrame) -> str:
    """Communes adopt programmes, so errors are correlated within a commune: inference
    clusters by commune when the register has one, else by household."""
    return "commune" if "commune" in af and af["commune"].notna().all() else "household_id"


def _estimate(af, covariates, method, cluster=True, outcome="sustained_exit"):
    """estimate_effect with a fallback ladder when a covariate separates the groups:
    drop region, then the cohort dummies. SEs clustered by commune (:func:`_cluster_column`).
    Returns (result, covariates used, note)."""
    ladders = [covariates, [c for c in covariates if c != "region"],
               [c for c in covariates if c not in ("region", "cohort_cat")]]
    last = None
    for i, cov in enumerate(ladders):
        if i and cov == ladders[i - 1]:
            continue
        try:
            res = estimate_effect(af, "treated", outcome, cov, method=method,
                                  cluster=_cluster_column(af) if cluster else None)
            note = "" if i == 0 else f" (covariates reduced to {cov} after: {last})"
            return res, cov, note
        except EstimationError as exc:
            last = str(exc)
    raise EstimationError(last)


# --------------------------------------------------------------------------- event study
ADOPTION_COLUMNS = ("province_2025", "commune", "program", "adoption_year")


def load_adoption(source) -> pd.DataFrame:
    """The commune programme adoption register (a DataFrame, or a csv/parquet path): one
    row per commune and programme with ``commune``, ``province_2025`` (or ``province``),
    ``program`` and ``adoption_year`` (the year the commune adopted the programme; empty
    = never). The synthetic register writes it (``povdyn.synth`` ``.adoption``)."""
    df = _to_frame(source).copy()
    if "province_2025" not in df and "province" in df:
        df["province_2025"] = df["province"]
    missing = [c for c in ADOPTION_COLUMNS if c not in df]
    if missing:
        raise SchemaError(f"adoption register has no column(s) {missing}; needs {list(ADOPTION_COLUMNS)}")
    df["adoption_year"] = pd.to_numeric(df["adoption_year"], errors="coerce")
    return df


ADOPTION_FILES = ("adoption.parquet", "adoption.csv")


def find_adoption(*folders) -> pd.DataFrame | None:
    """The commune adoption register from the first of ``folders`` holding
    adoption.parquet or adoption.csv (e.g. the processed data folder, then the raw one);
    None when there is none (the event study then falls back to the first support)."""
    for folder in folders:
        if folder is None:
            continue
        for name in ADOPTION_FILES:
            path = Path(folder) / name
            if path.exists():
                return load_adoption(path)
    return None


def commune_event_panel(ann, support: pd.DataFrame, program: str, adoption=None) -> pd.DataFrame:
    """Commune-year panel for the event study: poor share among observed households,
    households observed, and the commune's cohort ``first_year`` (0 = never adopted).
    A commune is (commune name, province); each household counts in its first recorded
    commune. Communes are limited to provinces where the model operates.

    Cohort: with ``adoption`` (:func:`load_adoption`), the year the commune *adopted* the
    programme — a decision taken before any household's outcome, so the pre-trend test
    can hold. Without it, the first year any household of the commune got support: that
    year depends on poverty itself (support goes to households still poor), so the
    placebo cells can reject even for a null programme (issue 14 §3); the column
    ``cohort_source`` says which was used. Two communes sharing a name in one 2025
    province form one key and take the earlier adoption year."""
    prep = ann if isinstance(ann, _Prepared) else _prepare(ann)
    if prep.commune_year is None:
        raise SchemaError("panel has no 'commune' column: the event study needs it")
    if "start_year" not in support:
        support = _support_years(support)
    cp = prep.commune_year
    if adoption is not None:
        ad = load_adoption(adoption)
        ad = ad[ad["program"] == program]
        prov = ad["province_2025"] if prep.province_column == "province_2025" or "province" not in ad else ad["province"]
        key = ad["commune"].astype(str) + (", " + prov.astype(str) if prep.province_column else "")
        adopt = ad.assign(commune_key=key).dropna(subset=["adoption_year"]).groupby("commune_key")["adoption_year"].min()
        provinces = set(cp.loc[cp["commune_key"].isin(adopt.index), "province"].dropna())
        source = "commune adoption date"
    else:
        sup_m = support[support.program == program].join(prep.place, on="household_id")
        adopt = sup_m.groupby("commune_key")["start_year"].min()
        provinces = set(sup_m["province"].dropna())
        source = "first support in the commune"
    cp = cp[cp["province"].isin(provinces)].copy()
    cp["first_year"] = cp["commune_key"].map(adopt).fillna(0).astype(int)
    cp["weight"] = cp.groupby("commune_key")["households"].transform("mean")
    cp["cohort_source"] = source
    return cp.rename(columns={"commune_key": "commune"}).reset_index(drop=True)


# --------------------------------------------------------------------------- main
def evaluate_programs(
    panel,
    support,
    within: int = 2,
    region: str | None = None,
    by_cohort: bool = True,
    alpha: float = 0.05,
    method: str = "aipw",
    period=None,
    programs: list[str] | None = None,
    controls: str = "unsupported",
    min_treated: int = MIN_TREATED,
    event_study: bool = True,
    standard: str = "national",
    adoption=None,
    n_boot: int = 999,
    seed: int = 0,
) -> ProgramEvaluation:
    """Evaluate every support model on the register (design in the module docstring).

    panel: the register as a Panel (povdyn.load_panel; a parquet path is loaded as one),
    or a pandas DataFrame of canonical rows (small data, tests). From a Panel only the
    annual-review rows of the households an analysis file can use leave the engine
    (:func:`evaluation_rows`), and the event study's commune poverty rates are computed
    in the engine from every row (:func:`commune_poverty_rates`): the numbers are those
    of the whole register in pandas, which a national register never becomes.
    support: support records. within: k, the number of annual reviews the exit must
    last. region: None/"national" for all; for a Panel a province (``Panel.region``:
    diacritics and case ignored), for a DataFrame a value of ``region``,
    ``province_2025`` or ``province``; the region's support records only are used (also
    for a Panel already restricted by ``Panel.region``). period: only
    reviews up to this period are used (e.g. "2025Q4"). programs: codes to evaluate
    (default: all in the support records). adoption: the commune adoption register
    (:func:`load_adoption`), the event-study cohort; without it the cohort is the
    commune's first support (flagged). n_boot, seed: Romano–Wolf bootstrap (resampling
    communes). Returns a :class:`ProgramEvaluation`.
    """
    sup = _support_years(support)
    if isinstance(panel, (str, Path)):
        from .panel import as_panel

        panel = as_panel(panel)
    years = commune_year = None
    if _is_panel(panel):
        # engine side: only the households the analysis files can use leave the engine
        if region not in (None, "national", "all", "toàn quốc"):
            panel = panel.region(region)
        ann, years, commune_year = _evaluation_inputs(panel, sup, period, event_study)
        if panel.region_name is not None:  # the region's support records only
            sup = sup[sup.household_id.isin(ann.household_id)]
    else:
        ann = annual_reviews(panel, until=period)
    if not _is_panel(panel) and region not in (None, "national", "all", "toàn quốc"):
        mask = np.zeros(len(ann), bool)
        for col in ("region", "province_2025", "province"):
            if col in ann:
                mask |= (ann[col] == region).to_numpy()
        if not mask.any():
            raise SchemaError(f"region {region!r} matches no row of region/province_2025/province")
        ann = ann[mask]
        sup = sup[sup.household_id.isin(ann.household_id)]
    listed = program_names()
    names = listed.set_index("code") if len(listed) else pd.DataFrame(columns=["name_vi", "name_en"])
    codes = programs or sorted(sup.program.unique())
    base_covs = ["log_income", "household_size", "ethnic_minority", "urban", "deprivations",
                 "poor_before", "region", "cohort_cat"]

    rows, cohort_rows, es, tw, bal, files, overlaps, family, es_cohort = [], [], {}, {}, {}, {}, {}, [], {}
    prep = _prepare(ann, years=years, commune_year=commune_year)
    same_standard_years = _years_under_latest_standard(
        years if years is not None else sorted(ann["year"].unique()), standard)
    for code in codes:
        af, counts = build_analysis_file(prep, sup, code, within=within, controls=controls)
        files[code] = af
        row = dict(program=code,
                   program_vi=names["name_vi"].get(code, code) if len(names) else code,
                   program_en=names["name_en"].get(code, code) if len(names) else code,
                   estimate=np.nan, se=np.nan, ci_low=np.nan, ci_high=np.nan, p_value=np.nan,
                   n_treated=int(af["treated"].sum()) if len(af) else 0,
                   n_control=int((af["treated"] == 0).sum()) if len(af) else 0,
                   naive=np.nan, early_estimate=np.nan, early_se=np.nan, recent_estimate=np.nan,
                   recent_se=np.nan, recent_cohort=np.nan, fading_z=np.nan, fading_p=np.nan,
                   total_cost_vnd=np.nan, note="", n_trimmed_treated=0, n_trimmed_control=0, treated_mean=np.nan,
                   cluster="", **{f"n_{k}": v for k, v in counts.items()})
        if row["n_treated"] < min_treated or row["n_control"] < min_treated:
            row["note"] = f"only {row['n_treated']} treated / {row['n_control']} comparable households"
            rows.append(row)
            continue
        af = af.assign(cohort_cat=af["cohort"].astype(str))
        covs = _usable(af, base_covs)
        try:
            res, used, note = _estimate(af, covs, method)
        except EstimationError as exc:
            row["note"] = f"estimation failed: {exc}"
            rows.append(row)
            continue
        row.update(estimate=res.estimate, se=res.se, ci_low=res.ci_low, ci_high=res.ci_high,
                   p_value=res.p_value, n_treated=res.n_treated, n_control=res.n_control,
                   naive=res.naive, note=note.strip(),
                   n_trimmed_treated=res.overlap.n_trimmed_treated,
                   n_trimmed_control=res.overlap.n_trimmed_control, cluster=_cluster_column(af),
                   treated_mean=res.treated_mean,
                   total_cost_vnd=float(af.loc[af.treated == 1, "amount_vnd"].sum(min_count=1)))
        family.append(_family_member(code, "sustained_exit", res, af))
        try:  # secondary outcome of the family: out of poverty at the first review
            res_next, _, _ = _estimate(af, used, method, outcome="exit_next")
            family.append(_family_member(code, "exit_next", res_next, af))
        except EstimationError:
            pass
        bal[code] = res.balance
        overlaps[code] = res.overlap
        # effect by adoption cohort
        per = []
        if by_cohort:
            for s, sub in af.groupby("cohort"):
                nt = int(sub.treated.sum())
                if nt < MIN_COHORT or (sub.treated == 0).sum() < MIN_COHORT:
                    continue
                try:
                    r, _, _ = _estimate(sub, [c for c in _usable(sub, used) if c != "cohort_cat"], method)
                except EstimationError:
                    continue
                per.append(dict(program=code, cohort=int(s), estimate=r.estimate, se=r.se, ci_low=r.ci_low,
                                ci_high=r.ci_high, p_value=r.p_value, n_treated=r.n_treated,
                                n_control=r.n_control, naive=r.naive))
        cohort_rows += per
        # fading: latest cohort vs earlier cohorts pooled
        if len(per) >= 2:
            recent = max(p["cohort"] for p in per)
            early_af = af[af.cohort < recent]
            try:
                re_, _, _ = _estimate(early_af, _usable(early_af, used), method)
                rr = next(p for p in per if p["cohort"] == recent)
                z = (rr["estimate"] - re_.estimate) / np.sqrt(rr["se"] ** 2 + re_.se ** 2)
                from scipy import stats
                row.update(early_estimate=re_.estimate, early_se=re_.se, early_p=re_.p_value,
                           recent_estimate=rr["estimate"], recent_se=rr["se"], recent_cohort=recent,
                           fading_z=z, fading_p=float(stats.norm.cdf(z)))
            except EstimationError:
                pass
        row.update(_exit_hazard(af, [c for c in used if c not in ("region", "cohort_cat")]))
        if event_study and "commune" in ann:
            try:
                cp = commune_event_panel(prep, sup, code, adoption=adoption)
                cp = cp[cp["year"].isin(same_standard_years)]
                # cells with fewer than 10 adopting communes are skipped: influence-function
                # SEs from a handful of units are unreliable
                es[code] = _staggered().group_time_att(cp, "commune", "year", "first_year", "poor_rate",
                                                       weight="weight", min_units=10)
                tw[code] = _staggered().twfe_event_study(cp, "commune", "year", "first_year", "poor_rate")
                es_cohort[code] = str(cp["cohort_source"].iloc[0]) if len(cp) else ""
            except EstimationError:
                pass
        rows.append(row)

    table = pd.DataFrame(rows, columns=list(rows[0]) if rows else ["program", "program_vi", "program_en", "estimate",
                                                                   "se", "ci_low", "ci_high", "p_value", "n_treated",
                                                                   "n_control", "naive", "total_cost_vnd", "fading_p",
                                                                   "early_estimate", "recent_estimate", "recent_cohort",
                                                                   "note"])
    table["p_adjusted"] = holm(table["p_value"])
    table["fading_p_adjusted"] = holm(table["fading_p"])
    multiple = _multiple_testing(family, n_boot=n_boot, seed=seed)
    primary = multiple[multiple["outcome"] == "sustained_exit"].set_index("program")
    table["p_romano_wolf"] = table["program"].map(primary["p_romano_wolf"]) if len(primary) else np.nan
    # simultaneous (Bonferroni) intervals over the models with an estimate, for the forest plot
    m = int(table["estimate"].notna().sum())
    if m:
        from scipy import stats
        z_adj = stats.norm.ppf(1 - alpha / (2 * m))
        table["ci_low_adj"] = table["estimate"] - z_adj * table["se"]
        table["ci_high_adj"] = table["estimate"] + z_adj * table["se"]
    else:
        table["ci_low_adj"] = table["ci_high_adj"] = np.nan
    verdicts, reasons, reasons_vi, cpe = [], [], [], []
    for _, r in table.iterrows():
        v, why, why_vi = _verdict(r, alpha, min_treated)
        verdicts.append(v); reasons.append(why); reasons_vi.append(why_vi)
        ok = np.isfinite(r.estimate) and r.estimate > 0 and np.isfinite(r.total_cost_vnd)
        cpe.append(r.total_cost_vnd / (r.estimate * r.n_treated) if ok else np.nan)
    table["verdict"] = verdicts
    table["verdict_vi"] = table["verdict"].map(VERDICT_VI)
    table["verdict_en"] = table["verdict"].map(VERDICT_EN)
    table["reason"] = reasons
    table["reason_vi"] = reasons_vi
    table["cost_per_sustained_exit"] = cpe
    ev_pairs = [e_values_for_difference(r.treated_mean, r.estimate, r.ci_low, r.ci_high)
                if np.isfinite(r.estimate) and np.isfinite(r.treated_mean) else (np.nan, np.nan)
                for r in table.itertuples()]
    table["e_value"] = [a for a, _ in ev_pairs]
    table["e_value_ci"] = [b for _, b in ev_pairs]
    table["sensitivity"] = [sensitivity_text(r, "en") for r in table.itertuples()]
    table["sensitivity_vi"] = [sensitivity_text(r, "vi") for r in table.itertuples()]
    first = ["program", "program_vi", "program_en", "estimate", "se", "ci_low", "ci_high", "p_value",
             "p_adjusted", "n_treated", "n_control", "naive", "verdict", "verdict_vi", "reason",
             "cost_per_sustained_exit"]
    table = table[first + [c for c in table.columns if c not in first]]
    cohorts = pd.DataFrame(cohort_rows, columns=["program", "cohort", "estimate", "se", "ci_low", "ci_high",
                                                 "p_value", "n_treated", "n_control", "naive"])
    return ProgramEvaluation(
        table=table, cohorts=cohorts, event_study=es, twfe=tw, balance=bal, analysis_files=files,
        multiple_testing=multiple, event_study_cohort=es_cohort,
        overlap=overlaps, design=__doc__.split("Design of the analysis file")[1].split("Multiple testing")[0].strip("-\n "),
        settings=dict(within=within, region=region, alpha=alpha, method=method, period=period,
                      controls=controls, min_treated=min_treated),
    )


def _exit_hazard(af: pd.DataFrame, covariates: list[str]) -> dict:
    """Secondary output: hazard ratio of the first exit from poverty within k reviews for
    supported vs comparison households — discrete-time complementary log-log model
    (povdyn.hazard_model, kind="cloglog", SE clustered by household) with the baseline
    covariates as regressors (regression adjustment, not weighting)."""
    out = dict(exit_hazard_ratio=np.nan, exit_hazard_ci_low=np.nan, exit_hazard_ci_high=np.nan)
    try:
        from .survival import hazard_model

        res = hazard_model(af, "exit_duration", "exit_event", ["treated", *covariates], kind="cloglog",
                           cluster=_cluster_column(af))
        b, se = float(res.params["treated"]), float(res.bse["treated"])
        out.update(exit_hazard_ratio=np.exp(b), exit_hazard_ci_low=np.exp(b - 1.96 * se),
                   exit_hazard_ci_high=np.exp(b + 1.96 * se))
    except Exception:  # secondary output: never block the main evaluation
        pass
    return out


def _years_under_latest_standard(years, standard="national") -> list:
    """Review years classified under the same poverty standard as the latest one. The
    commune event study compares year-to-year changes in the poor share; a change of
    standard (e.g. 2021 -> 2022) moves the line and would show up as a spurious
    'effect' or pre-trend (methods.md, traps), so those years are left out."""
    try:
        from .standards import standard_for

        ids = {y: standard_for(int(y), standard).standard_id for y in years}
    except Exception:  # no standards table for these years: keep them all
        return list(years)
    last = ids[years[-1]]
    return [y for y in years if ids[y] == last]


def _staggered():
    from . import staggered
    return staggered


def format_p(p: float, lang: str = "vi", adjustment: str | None = None) -> str:
    """A p-value for free text: "p (Holm) < 0,001" / "p (Holm) = 0,012" in Vietnamese
    (decimal comma), "Holm p < 0.001" / "Holm p = 0.012" in English; three decimals
    below 0.1 (so 0.0497 reads 0,050, not a rounded 0,05), two above, "< 0,001" below
    0.001; empty for NaN."""
    if p is None or not np.isfinite(p):
        return ""
    if p < 0.001:
        num, op = "0.001", "<"
    elif p < 0.1:
        num, op = f"{p:.3f}", "="
    else:
        num, op = f"{p:.2f}", "="
    num = decimal_comma(num, lang)
    if adjustment:
        return text("p_value_adjusted", lang, adjustment=adjustment, op=op, num=num)
    return text("p_value", lang, op=op, num=num)


def _fmt_number(x: float, lang: str, digits: int = 1) -> str:
    return decimal_comma(f"{x:.{digits}f}", lang)


def sensitivity_text(r, lang: str = "vi") -> str:
    """The E-value of a model's effect in plain words (VanderWeele & Ding 2017;
    povdyn.effects.e_values_for_difference): how strongly an unmeasured factor would have
    to be tied to both getting support and sustained exit (as a risk ratio, each) to
    explain the effect away, and to make it no longer significant."""
    e, e_ci = getattr(r, "e_value", np.nan), getattr(r, "e_value_ci", np.nan)
    if not np.isfinite(e) or not np.isfinite(r.estimate):
        return ""
    direction = text("e_value_direction_positive" if r.estimate > 0 else "e_value_direction_negative", lang)
    head = text("e_value_head", lang, e=_fmt_number(e, lang), direction=direction)
    tail = (text("e_value_already_not_significant", lang) if e_ci <= 1
            else text("e_value_to_not_significant", lang, e_ci=_fmt_number(e_ci, lang)))
    return head + tail + "."


def pretrend_text(result, cohort_source: str = "", lang: str = "vi", alpha: float = 0.05) -> str:
    """The joint pre-trend test of a commune event study (povdyn.staggered
    ``result.pretrend``: Wald test that every placebo ATT(g, t) before adoption is 0) in
    words, with how the cohort was defined, to print beside the figure."""
    pt = result.pretrend
    p, dof = pt.get("p_value", np.nan), pt.get("df", 0)
    adoption = cohort_source == "commune adoption date"
    cohort = text("pretrend_cohort_adoption" if adoption else "pretrend_cohort_first_support", lang)
    if not dof or not np.isfinite(p):
        return text("pretrend_untestable", lang, cohort=cohort)
    verdict = text("pretrend_rejected" if p < alpha else "pretrend_not_rejected", lang)
    cells = text("pretrend_cell" if dof == 1 else "pretrend_cells", lang, dof=dof)
    return text("pretrend_result", lang, cells=cells, p=format_p(p, lang), verdict=verdict, cohort=cohort)


def _verdict(r, alpha, min_treated) -> tuple[str, str, str]:
    """Verdict and its reason in English and Vietnamese (rules in the module docstring)."""
    def both(key, **fields):
        return text(key, "en", **{k: v("en") if callable(v) else v for k, v in fields.items()}), \
            text(key, "vi", **{k: v("vi") if callable(v) else v for k, v in fields.items()})

    def points(x):  # a share as signed percentage points, in either language
        return lambda lang: decimal_comma(f"{100 * x:+.1f}", lang)

    if not np.isfinite(r.estimate):
        en, vi = both("verdict_insufficient", min_treated=min_treated, n_treated=int(r.n_treated))
        return "insufficient_data", f"{en}; {r.note}".strip("; "), vi
    pp = dict(zip(("en", "vi"), both("verdict_effect", estimate=points(r.estimate), low=points(r.ci_low),
                                     high=points(r.ci_high),
                                     p=lambda lang: format_p(r.p_adjusted, lang, "Holm"))))
    early_p = r.get("early_p", np.nan)
    if (np.isfinite(r.fading_p_adjusted) and r.fading_p_adjusted < alpha and r.early_estimate > 0
            and np.isfinite(early_p) and early_p < alpha):
        return ("fading", *both("verdict_fading", early=points(r.early_estimate), cohort=int(r.recent_cohort),
                                recent=points(r.recent_estimate),
                                p=lambda lang: format_p(r.fading_p_adjusted, lang, "Holm"),
                                pp=lambda lang: pp[lang]))
    if r.p_adjusted < alpha and r.estimate > 0:
        return ("effective", *both("verdict_effective", pp=lambda lang: pp[lang]))
    if r.p_adjusted < alpha and r.estimate < 0:
        return ("no_evidence", *both("verdict_lower", pp=lambda lang: pp[lang]))
    return ("no_evidence", *both("verdict_not_distinguishable", pp=lambda lang: pp[lang]))


# the programme table's column names (defined in povdyn.labels)
REPORT_COLUMNS = PROGRAMME_COLUMNS


def report_table(evaluation, lang: str = "vi", min_cell: int | None = None) -> pd.DataFrame:
    """Reader-facing version of ``evaluation.table`` (or of a table): model name,
    effect and 95% CI in percentage points, Holm and Romano–Wolf p, naive difference,
    counts (with the supported households the trimming left out), verdict, cost per
    additional sustained exit (million VND), reason, and the E-value in plain words;
    headers in ``lang``. The count of supported households left out by trimming is
    small-cell suppressed here already (below ``min_cell``, default settings().min_cell,
    it reads "<10"); n_treated and n_control must still go through
    ``tables.suppress_counts`` before publication, as before."""
    t = evaluation.table if hasattr(evaluation, "table") else evaluation
    if lang not in ("vi", "en"):
        raise ValueError("lang must be 'vi' or 'en'")
    L = {k: v[lang] for k, v in REPORT_COLUMNS.items()}

    def pts(x):
        return "" if not np.isfinite(x) else decimal_comma(f"{100 * x:+.1f}", lang)

    out = pd.DataFrame({
        L["name"]: t[f"program_{lang}"],
        L["estimate"]: t["estimate"].map(pts),
        L["ci"]: [("" if not np.isfinite(a) else f"{pts(a)} … {pts(b)}")
                  for a, b in zip(t["ci_low"], t["ci_high"])],
        L["p_adjusted"]: t["p_adjusted"].map(lambda p: _p_cell(p, lang)),
        L["p_romano_wolf"]: (t["p_romano_wolf"] if "p_romano_wolf" in t else pd.Series(np.nan, index=t.index)).map(
            lambda p: _p_cell(p, lang)),
        L["naive"]: t["naive"].map(pts),
        L["n_treated"]: t["n_treated"],
        L["n_trimmed_treated"]: _suppressed(t["n_trimmed_treated"] if "n_trimmed_treated" in t
                                            else pd.Series(0, index=t.index), min_cell),
        L["n_control"]: t["n_control"],
        L["verdict"]: t[f"verdict_{lang}"],
        # million VND with the reader's marks (povdyn.formatting)
        L["cost"]: t["cost_per_sustained_exit"].map(
            lambda c: _formatted(c / 1e6, lang, lambda f: f"{f:,.1f}")),
        L["reason"]: t[{"vi": "reason_vi", "en": "reason"}[lang]],
        L["e_value"]: t[{"vi": "sensitivity_vi", "en": "sensitivity"}[lang]] if "sensitivity" in t else "",
    })
    return out


def _suppressed(counts: pd.Series, min_cell: int | None) -> pd.Series:
    """Primary small-cell suppression of one count column (povdyn.privacy)."""
    from .privacy import suppress_small_cells

    frame = pd.DataFrame({"n": pd.to_numeric(counts, errors="coerce")})
    return suppress_small_cells(frame, ["n"], min_cell=min_cell)["n"]


def _p_cell(p, lang):
    """A p-value in a table cell: "<0,001" or three decimals (decimal comma in Vietnamese)."""
    if not np.isfinite(p):
        return ""
    if p < 0.001:
        return text("p_below", lang)
    return decimal_comma(f"{p:.3f}", lang)


def cohort_table(evaluation, lang: str = "vi") -> pd.DataFrame:
    """Effect by adoption cohort for readers: estimate, 95% CI and the naive difference in
    percentage points, with counts. An evaluation with no cohort estimates (a small region,
    too few treated households) gives an empty table with the same columns."""
    columns = ["program", "cohort", "estimate", "ci_low", "ci_high", "naive", "n_treated", "n_control"]
    cohorts = evaluation.cohorts
    if cohorts is None or len(cohorts) == 0:
        return pd.DataFrame(columns=columns)
    out = cohorts[columns].copy()
    for col in ("estimate", "ci_low", "ci_high", "naive"):
        out[col] = (100 * pd.to_numeric(out[col], errors="coerce")).round(1)
    names = program_names().set_index("code")[f"name_{lang}"]
    out["program"] = out["program"].map(names).fillna(out["program"])
    return out.reset_index(drop=True)
