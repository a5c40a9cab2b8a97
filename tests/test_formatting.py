"""povdyn.formatting: the reader's number conventions (Vietnamese "1.234.567" and "4,03",
English "1,234,567" and "4.03"), written once in ``_formatted`` for every formatter."""
from __future__ import annotations

import numpy as np
import pytest

from povdyn.formatting import fmt_count, fmt_decimal, fmt_pct


@pytest.mark.parametrize("fmt, value, vi, en", [
    (fmt_count, 1234567, "1.234.567", "1,234,567"),
    (fmt_count, 999.6, "1.000", "1,000"),
    (fmt_pct, 0.0403, "4,03", "4.03"),
    (fmt_pct, 0.123456, "12,35", "12.35"),
    (fmt_decimal, 1.5, "1,50", "1.50"),
    (fmt_decimal, -2.25, "−2,25", "−2.25"),  # a true minus sign
    (fmt_decimal, 1234.5, "1234,50", "1234.50"),
])
def test_numbers_in_both_conventions(fmt, value, vi, en):
    assert fmt(value, "vi") == vi and fmt(value, "en") == en


@pytest.mark.parametrize("fmt", [fmt_count, fmt_pct, fmt_decimal])
def test_suppressed_text_is_kept_and_missing_is_blank(fmt):
    assert fmt("<10", "vi") == "<10" and fmt("—", "en") == "—"
    assert fmt(None, "vi") == "" and fmt(np.nan, "en") == "" and fmt(float("nan")) == ""
