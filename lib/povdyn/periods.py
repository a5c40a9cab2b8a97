"""Review periods: integer years (annual review) or "YYYYQn" (quarterly snapshots).

methods.md, "The register panel": periods are ordered and have a frequency;
"consecutive" means the next period of that frequency, not the next row of a household.
Every period is mapped to an integer *index* such that consecutive periods differ by 1
(year -> year; "2025Q3" -> 2025*4 + 2). Mixing frequencies in one panel is an error.
"""
from __future__ import annotations

import re
from typing import Iterable, Literal

import numpy as np
import pandas as pd

from .errors import PeriodError

Frequency = Literal["year", "quarter"]
_QUARTER = re.compile(r"^\s*(\d{4})\s*[-_ ]?[Qq]([1-4])\s*$")
_YEAR = re.compile(r"^\s*(\d{4})\s*$")


def parse_period(value) -> tuple[Frequency, int]:
    """Return (frequency, index) of one period label. 2024 -> ("year", 2024);
    "2025Q3" -> ("quarter", 2025*4+2)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return "year", int(value)
    if isinstance(value, float) and value.is_integer():
        return "year", int(value)
    text = str(value)
    m = _QUARTER.match(text)
    if m:
        return "quarter", int(m.group(1)) * 4 + int(m.group(2)) - 1
    m = _YEAR.match(text)
    if m:
        return "year", int(m.group(1))
    raise PeriodError(f"cannot read period {value!r}: use a year (2024) or a quarter ('2025Q3')")


def label(freq: Frequency, index: int):
    """Inverse of parse_period: the canonical label (int year or "YYYYQn")."""
    if freq == "year":
        return int(index)
    return f"{index // 4}Q{index % 4 + 1}"


def frequency_and_index(periods: Iterable) -> tuple[Frequency, np.ndarray]:
    """Frequency of a whole column and the integer index of each value.

    Raises PeriodError when the column mixes years and quarters."""
    values = pd.Series(periods)
    uniques = pd.unique(values)
    parsed = {u: parse_period(u) for u in uniques}
    freqs = {f for f, _ in parsed.values()}
    if len(freqs) > 1:
        years = [u for u, (f, _) in parsed.items() if f == "year"][:3]
        quarters = [u for u, (f, _) in parsed.items() if f == "quarter"][:3]
        raise PeriodError(
            "the panel mixes annual and quarterly periods "
            f"(e.g. {years} and {quarters}); read one frequency, or use frequency='year' "
            "to take each year's last quarterly snapshot"
        )
    freq = freqs.pop() if freqs else "year"
    index = values.map({u: i for u, (_, i) in parsed.items()}).to_numpy(dtype="int64")
    return freq, index


def canonical(periods: Iterable) -> pd.Series:
    """Periods rewritten in canonical form (int years, or "YYYYQn" strings)."""
    freq, index = frequency_and_index(periods)
    if freq == "year":
        return pd.Series(index, dtype="int64")
    return pd.Series([label(freq, i) for i in index], dtype="object")


def shift(value, n: int):
    """The period n steps after `value` (n may be negative), same frequency."""
    freq, index = parse_period(value)
    return label(freq, index + n)


def year_of(value) -> int:
    """Calendar year of a period label."""
    freq, index = parse_period(value)
    return index if freq == "year" else index // 4


def quarter_of(value) -> int | None:
    """Quarter (1-4) of a quarterly label, None for an annual one."""
    freq, index = parse_period(value)
    return None if freq == "year" else index % 4 + 1
