"""Numbers as reviewers read them, in Vietnamese or English (pure functions, no data).

Rates arrive as fractions (every metric returns fractions, methods.md) and are printed
as percentages; Vietnamese uses "." for thousands and "," for decimals ("1.234.567",
"4,03"), English the reverse. Suppressed cells arrive as text ("<10", "—") and are kept.
"""
from __future__ import annotations

import html as _html
import re

import numpy as np
import pandas as pd

from .config import settings
from .labels import label

def _num(v):
    if v is None or isinstance(v, str):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if np.isnan(f) else f


def decimal_comma(text: str, lang: str = "vi") -> str:
    """A number already written with a decimal point, in the reader's convention."""
    return text.replace(".", ",") if lang == "vi" else text


# English notation -> Vietnamese: "." and "," change roles ("1,234.5" -> "1.234,5")
_VI_MARKS = str.maketrans({",": ".", ".": ","})


def _formatted(v, lang: str, write) -> str:
    """The shape every number formatter shares: suppressed text ("<10", "—") is kept,
    a missing number (None, NaN) is "", and a number is ``write(number)`` -- written in
    English notation -- with the thousands and decimal marks swapped for Vietnamese."""
    if isinstance(v, str):
        return v
    f = _num(v)
    if f is None:
        return ""
    s = write(f)
    return s.translate(_VI_MARKS) if lang == "vi" else s


def fmt_count(v, lang: str = "vi") -> str:
    """1234567 -> "1.234.567" (vi) / "1,234,567" (en); suppressed text kept; NaN -> ""."""
    return _formatted(v, lang, lambda f: f"{int(round(f)):,}")


def fmt_pct(v, lang: str = "vi", digits: int = 2) -> str:
    """A fraction as a percentage: 0.0403 -> "4,03" (vi) / "4.03" (en)."""
    return _formatted(v, lang, lambda f: f"{100 * f:.{digits}f}")


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


def fmt_decimal(v, lang: str = "vi", digits: int = 2) -> str:
    """A plain number (points, percent already scaled): 1.5 -> "1,50" (vi) / "1.50" (en),
    with a true minus sign; suppressed text kept; NaN -> ""."""
    return _formatted(v, lang, lambda f: f"{f:.{digits}f}".replace("-", "−"))


def to_html(table: pd.DataFrame, caption: str | None = None) -> str:
    """A plain HTML table (no index, escaped text) for report pages and the index."""
    head = "".join(f"<th>{_html.escape(str(c))}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(f"<td>{_html.escape(str(v))}</td>" for v in row) + "</tr>"
                   for row in table.itertuples(index=False))
    cap = f"<caption>{_html.escape(caption)}</caption>" if caption else ""
    return f'<table class="povdyn-table">{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


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
