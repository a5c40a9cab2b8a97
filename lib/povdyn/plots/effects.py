"""Figures for programme effectiveness: event study, forest plot, propensity overlap.

Every function takes ``lang="vi"`` (Vietnamese labels, default) or ``"en"`` and returns
a matplotlib Figure (pass ``ax=`` to draw into an existing axes).
"""
from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..formatting import fmt_count

VERDICT_COLOURS = {
    "effective": "#1b7837",
    "fading": "#e08214",
    "no_evidence": "#6e6e6e",
    "insufficient_data": "#bdbdbd",
}

TEXT = {
    "vi": {
        "event_x": "Số năm kể từ khi áp dụng mô hình",
        "event_y": "Thay đổi tỷ lệ hộ nghèo (điểm %)",
        "cs": "Callaway–Sant'Anna (so với xã chưa áp dụng)",
        "twfe": "TWFE hai chiều (so sánh có sai lệch)",
        "placebo": "trước khi áp dụng (kiểm định giả)",
        "event_title": "Nghiên cứu sự kiện: {name}",
        "forest_x": "Tác động lên thoát nghèo bền vững (điểm %)",
        "ci": "KTC 95%",
        "ci_adj": "KTC hiệu chỉnh đa kiểm định (Bonferroni)",
        "naive": "So sánh thô (chưa điều chỉnh)",
        "forest_title": "Mô hình giảm nghèo nào hiệu quả?",
        "overlap_x": "Điểm xu hướng (xác suất được hỗ trợ)",
        "overlap_y": "Số hộ",
        "treated": "Hộ được hỗ trợ",
        "control": "Hộ so sánh",
        "trim": "ngưỡng cắt",
        "overlap_title": "Vùng chồng lấn điểm xu hướng",
        "n": "n hỗ trợ",
    },
    "en": {
        "event_x": "Years since the model was adopted",
        "event_y": "Change in poor-household share (points)",
        "cs": "Callaway–Sant'Anna (vs not-yet-adopting communes)",
        "twfe": "Two-way FE (biased comparison)",
        "placebo": "before adoption (placebo)",
        "event_title": "Event study: {name}",
        "forest_x": "Effect on sustained exit from poverty (points)",
        "ci": "95% CI",
        "ci_adj": "multiplicity-adjusted CI (Bonferroni)",
        "naive": "Naive comparison (unadjusted)",
        "forest_title": "Which poverty-reduction models work?",
        "overlap_x": "Propensity score (probability of support)",
        "overlap_y": "Households",
        "treated": "Supported",
        "control": "Comparison",
        "trim": "trimming bounds",
        "overlap_title": "Propensity-score overlap",
        "n": "n supported",
    },
}


def _t(lang):
    if lang not in TEXT:
        raise ValueError(f"lang must be 'vi' or 'en', got {lang!r}")
    return TEXT[lang]


def _axes(ax, size):
    if ax is None:
        fig, ax = plt.subplots(figsize=size)
    else:
        fig = ax.figure
    return fig, ax


def event_study(result, twfe=None, lang: str = "vi", name: str = "", scale: float = 100.0, ax=None):
    """Event-time effects with 95% intervals from povdyn.staggered.group_time_att
    (``result.event_time``); pre-adoption placebos drawn hollow; optional TWFE estimates
    (``twfe.event_time``) beside them, labelled as the biased comparison."""
    t = _t(lang)
    fig, ax = _axes(ax, (7, 4))
    ev = result.event_time if hasattr(result, "event_time") else result
    x = ev["event_time"].to_numpy()
    y, lo, hi = (ev[c].to_numpy() * scale for c in ("att", "ci_low", "ci_high"))
    pre = x < 0
    ax.axhline(0, color="black", lw=0.8)
    ax.axvline(-0.5, color="grey", ls=":", lw=0.8)
    ax.errorbar(x[~pre], y[~pre], yerr=[y[~pre] - lo[~pre], hi[~pre] - y[~pre]], fmt="o", color="#2166ac",
                capsize=3, label=t["cs"])
    if pre.any():
        ax.errorbar(x[pre], y[pre], yerr=[y[pre] - lo[pre], hi[pre] - y[pre]], fmt="o", mfc="white",
                    color="#2166ac", capsize=3, label=t["placebo"])
    if twfe is not None:
        tw = twfe.event_time if hasattr(twfe, "event_time") else twfe
        ax.errorbar(tw["event_time"] + 0.15, tw["coef"] * scale,
                    yerr=[(tw["coef"] - tw["ci_low"]) * scale, (tw["ci_high"] - tw["coef"]) * scale],
                    fmt="s", ms=4, color="#b2182b", alpha=0.6, capsize=2, label=t["twfe"])
    ax.set_xlabel(t["event_x"])
    ax.set_ylabel(t["event_y"])
    ax.set_title(t["event_title"].format(name=name).rstrip(": "))
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def forest(table: pd.DataFrame, lang: str = "vi", scale: float = 100.0, show_naive: bool = True, ax=None):
    """Forest plot of the programme table from povdyn.programs.evaluate_programs: one row
    per model (name in ``lang``), point estimate, 95% CI (thick) and the
    multiplicity-adjusted CI (thin; columns ci_low_adj/ci_high_adj when present), colour
    by verdict, verdict label at the right, naive comparison as a grey cross."""
    t = _t(lang)
    tab = table.copy().reset_index(drop=True)
    name_col = "program_vi" if lang == "vi" else "program_en"
    if name_col not in tab:
        name_col = "program"
    verdict_col = "verdict_vi" if lang == "vi" and "verdict_vi" in tab else (
        "verdict_en" if "verdict_en" in tab else "verdict")
    tab = tab.iloc[::-1].reset_index(drop=True)
    own_figure = ax is None
    if own_figure:
        # constrained layout, without pyplot (as povdyn.plots.deprivation.contributions):
        # the verdicts right of the axes and the legend above it are laid out with the
        # axes as the figure is drawn, and saved uncropped at its own size
        # (povdyn.plots.show) -- where tight_layout and a cropped save cost three passes
        # of text layout, a quarter of a report page's figure time. 7.6 inches wide: the
        # width the cropped 10-inch figure had (its right fifth was kept empty for them)
        from matplotlib.figure import Figure

        fig = Figure(figsize=(7.6, 0.6 * len(tab) + 1.8), layout="constrained")
        ax = fig.subplots()
    else:
        fig = ax.figure
    ax.axvline(0, color="black", lw=0.8)
    for i, r in tab.iterrows():
        colour = VERDICT_COLOURS.get(r.get("verdict", ""), "#6e6e6e")
        if np.isfinite(r.get("estimate", np.nan)):
            if {"ci_low_adj", "ci_high_adj"} <= set(tab.columns) and np.isfinite(r["ci_low_adj"]):
                ax.plot([r.ci_low_adj * scale, r.ci_high_adj * scale], [i, i], color=colour, lw=1,
                        label=t["ci_adj"] if i == 0 else None)
            ax.plot([r.ci_low * scale, r.ci_high * scale], [i, i], color=colour, lw=4, alpha=0.8,
                    label=t["ci"] if i == 0 else None)
            ax.plot(r.estimate * scale, i, "o", color="white", mec=colour, ms=7)
            if show_naive and np.isfinite(r.get("naive", np.nan)):
                ax.plot(r.naive * scale, i, "x", color="grey", label=t["naive"] if i == 0 else None)
        label = str(r.get(verdict_col, ""))
        n = r.get("n_treated", np.nan)
        if np.isfinite(n):
            label += f"  ({t['n']} {fmt_count(n, lang)})"
        ax.annotate(label, xy=(1.01, i), xycoords=("axes fraction", "data"), va="center", fontsize=8,
                    color=colour)
    ax.set_yticks(range(len(tab)))
    ax.set_yticklabels([textwrap.fill(str(v), 30) for v in tab[name_col]])
    ax.set_ylim(-0.7, len(tab) - 0.3)
    ax.set_xlabel(t["forest_x"])
    ax.set_title(t["forest_title"])
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(fontsize=7, frameon=False, loc="lower left", bbox_to_anchor=(0, 1.06), ncol=3)
    return fig


def overlap(result, lang: str = "vi", bins: int = 40, ax=None):
    """Histograms of the propensity score by group (from an EffectResult's ``overlap``),
    with the trimming bounds when the rule had any."""
    t = _t(lang)
    ov = result.overlap if hasattr(result, "overlap") else result
    s = ov.scores
    fig, ax = _axes(ax, (7, 4))
    edges = np.linspace(0, 1, bins + 1)
    ax.hist(s.loc[s.treated == 0, "pscore"], bins=edges, alpha=0.55, color="#6e6e6e", label=t["control"])
    ax.hist(s.loc[s.treated == 1, "pscore"], bins=edges, alpha=0.7, color="#2166ac", label=t["treated"])
    ax.set_yscale("symlog")
    if ov.bounds is not None:
        for b in ov.bounds:
            ax.axvline(b, color="#b2182b", ls="--", lw=1)
        ax.plot([], [], color="#b2182b", ls="--", label=f"{t['trim']} ({ov.n_trimmed_treated} + {ov.n_trimmed_control})")
    ax.set_xlabel(t["overlap_x"])
    ax.set_ylabel(t["overlap_y"])
    ax.set_title(t["overlap_title"])
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig
