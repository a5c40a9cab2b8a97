"""Figures for multidimensional poverty: contributions to M0, persistent deprivations,
and status changes under another standard.

Every function takes ``lang="vi"`` (Vietnamese labels, default) or ``"en"`` and returns
a matplotlib Figure (pass ``ax=`` to draw into an existing axes). Inputs are the tables
of ``povdyn.deprivation.deprivation_summary`` / ``alkire_foster`` and
``povdyn.standard_change.reclassify``.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..formatting import fmt_count
from ..deprivation import DIMENSION_LABELS, AFResult, dimension_of, indicator_label

DIMENSION_COLOURS = {
    "employment": "#1b9e77",
    "health": "#d95f02",
    "education": "#7570b3",
    "housing": "#e7298a",
    "water_sanitation": "#1f78b4",
    "information": "#a6761d",
    None: "#999999",
}

TEXT = {
    "vi": {
        "contrib_x": "Đóng góp vào chỉ số nghèo đa chiều M0 (%)",
        "contrib_title": "Chỉ số thiếu hụt nào đóng góp nhiều nhất vào nghèo đa chiều?",
        "persist_x": "Tỷ lệ hộ thiếu hụt (%)",
        "persist_title": "Thiếu hụt còn lại theo nhóm hộ",
        "reclass_title": "Thay đổi tình trạng khi áp dụng chuẩn mới (số hộ)",
        "old": "Theo chuẩn hiện hành",
        "new": "Theo chuẩn mới",
        "statuses": {"poor": "Nghèo", "near_poor": "Cận nghèo", "non_poor": "Không nghèo"},
    },
    "en": {
        "contrib_x": "Contribution to the adjusted headcount M0 (%)",
        "contrib_title": "Which deprivations drive multidimensional poverty?",
        "persist_x": "Households deprived (%)",
        "persist_title": "Deprivations that remain, by household group",
        "reclass_title": "Status under the new standard (households)",
        "old": "Current standard",
        "new": "New standard",
        "statuses": {"poor": "Poor", "near_poor": "Near-poor", "non_poor": "Not poor"},
    },
}


def _contribution_table(data, lang) -> pd.DataFrame:
    """indicator, label, dimension, contribution_pct from any accepted input."""
    if isinstance(data, dict) and "contributions" in data:
        data = data["contributions"]
    if isinstance(data, AFResult):
        data = pd.DataFrame({"indicator": list(data["contribution"]),
                             "contribution_pct": list(data["contribution"].values())})
    table = pd.DataFrame(data).copy()
    if "indicator" not in table or "contribution_pct" not in table:
        raise ValueError("contributions() needs a table with indicator and contribution_pct "
                         "(deprivation_summary(...)['contributions'] or an AFResult)")
    if "dimension" not in table:
        table["dimension"] = table["indicator"].map(dimension_of)
    table["label"] = table["indicator"].map(lambda c: indicator_label(c, lang))
    return table.sort_values("contribution_pct", ascending=True, na_position="first")


def contributions(data, lang: str = "vi", ax=None, title: str | None = None):
    """Horizontal bars: each indicator's percentage contribution to M0, coloured by
    dimension (contributions add up to 100%). ``data``: the ``"contributions"`` table
    of ``deprivation_summary`` (or that dict itself), or an ``AFResult``."""
    text = TEXT[lang]
    table = _contribution_table(data, lang)
    own_figure = ax is None
    if own_figure:
        # constrained layout, without pyplot: laid out once as it is drawn, and saved at its
        # own size (povdyn.plots.show), where tight_layout and a cropped save cost three
        # passes of text layout
        from matplotlib.figure import Figure

        fig = Figure(figsize=(8, 0.38 * len(table) + 1.6), layout="constrained")
        ax = fig.subplots()
    else:
        fig = ax.figure
    values = table["contribution_pct"].fillna(0).to_numpy()
    colours = [DIMENSION_COLOURS.get(d, "#999999") for d in table["dimension"]]
    ax.barh(table["label"], values, color=colours)
    for y, v in enumerate(values):
        ax.text(v + 0.3, y, f"{v:.1f}", va="center", fontsize=8)
    ax.set_xlabel(text["contrib_x"])
    ax.set_xlim(0, max(values.max() * 1.15, 1) if len(values) else 1)
    if own_figure:
        # over the whole figure, not the axes: the indicators' long names push the axes
        # right, and a title centred over them ran off the canvas on report pages
        fig.suptitle(title or text["contrib_title"], fontsize=11, fontweight="bold")
    else:
        ax.set_title(title or text["contrib_title"], fontsize=11)
    seen = [d for d in dict.fromkeys(table["dimension"][::-1]) if d in DIMENSION_LABELS]
    handles = [plt.Rectangle((0, 0), 1, 1, color=DIMENSION_COLOURS[d]) for d in seen]
    ax.legend(handles, [DIMENSION_LABELS[d][lang] for d in seen], fontsize=8,
              loc="lower right", frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    if not own_figure:
        fig.tight_layout()
    return fig


def persistent(table: pd.DataFrame, lang: str = "vi", ax=None, title: str | None = None):
    """Grouped bars: share deprived in each indicator (rows) for each household group
    (columns) — the ``"persistent"`` table of ``deprivation_summary`` (percent). The
    households row, if present, goes into the legend labels."""
    text = TEXT[lang]
    data = table.copy()
    counts = None
    for name in ("Số hộ", "Households"):  # the households row of deprivation_summary
        if name in data.index:
            counts = data.loc[name]
            data = data.drop(index=name)
    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 0.5 * len(data) + 2.4))
    else:
        fig = ax.figure
    groups = list(data.columns)
    height = 0.8 / max(len(groups), 1)
    y = np.arange(len(data))
    palette = ["#1b7837", "#c51b7d", "#762a83", "#e08214"]
    for i, g in enumerate(groups):
        name = g if counts is None else f"{g} (n={int(counts[g]) if pd.notna(counts[g]) else 0})"
        ax.barh(y + i * height, data[g].fillna(0).to_numpy(), height=height,
                color=palette[i % len(palette)], label=name)
    ax.set_yticks(y + height * (len(groups) - 1) / 2)
    ax.set_yticklabels(data.index)
    ax.invert_yaxis()
    ax.set_xlabel(text["persist_x"])
    ax.set_xlim(0, 100)
    ax.set_title(title or text["persist_title"], fontsize=11)
    ax.legend(fontsize=8, frameon=False, loc="upper center", bbox_to_anchor=(0.4, -0.08),
              ncol=2)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def reclassification(table: pd.DataFrame, lang: str = "vi", ax=None, title: str | None = None):
    """Heat map of old status (rows) × new status (columns) household counts — the
    ``table`` of ``povdyn.standard_change.reclassify`` (totals are dropped)."""
    text = TEXT[lang]
    core = table.drop(index="total", columns="total", errors="ignore")
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 4.2))
    else:
        fig = ax.figure
    values = core.to_numpy(dtype=float)
    ax.imshow(np.log1p(values), cmap="Blues")  # log shade: the large "stays" cell would hide the rest
    names = text["statuses"]
    ax.set_xticks(range(core.shape[1]), [names.get(c, c) for c in core.columns])
    ax.set_yticks(range(core.shape[0]), [names.get(r, r) for r in core.index])
    ax.set_xlabel(text["new"])
    ax.set_ylabel(text["old"])
    top = values.max() if values.size else 0
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            ax.text(j, i, fmt_count(values[i, j], lang),
                    ha="center", va="center",
                    color="white" if top and np.log1p(values[i, j]) > np.log1p(top) * 0.6
                    else "black", fontsize=9)
    ax.set_title(title or text["reclass_title"], fontsize=11)
    fig.tight_layout()
    return fig
