"""Folding Vietnamese text for matching: the one home of the name-folding helpers.

Names and headers arrive in many spellings ("Hà Nội", "HA NOI", "Ha  Noi"; "Mã hộ",
"MÃ HỘ", "ma_ho"). Matching compares folded keys, never the text shown to readers
(display names keep their diacritics).

* ``fold``: lower case, diacritics removed (NFD, combining marks dropped, đ -> d),
  runs of white space made one space. Punctuation is kept (place names:
  ``povdyn.geo.normalise_name`` builds on it).
* ``fold_key``: also compatibility forms unfolded (NFKD) and every run of characters
  other than a-z and 0-9 made one space (column headers and coded values:
  ``povdyn.schema``).
"""
from __future__ import annotations

import re
import unicodedata

_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def fold(text) -> str:
    """Lower case, no diacritics (NFD, combining marks removed, đ -> d), single spaces:
    "  Thành phố  Hồ Chí Minh" -> "thanh pho ho chi minh"."""
    s = unicodedata.normalize("NFD", str(text))
    s = "".join(ch for ch in s if unicodedata.category(ch) != "Mn")
    s = s.replace("đ", "d").replace("Đ", "D").lower()
    return " ".join(s.split())


def fold_key(text) -> str:
    """Case-, diacritic-, spacing- and punctuation-insensitive key: "Mã  Hộ" -> "ma ho",
    "Đồng" -> "dong", "Số_CCCD" -> "so cccd"."""
    s = str(text).replace("đ", "d").replace("Đ", "D")
    s = unicodedata.normalize("NFKD", s)
    s = "".join(c for c in s if not unicodedata.combining(c)).lower()
    return _NOT_ALNUM.sub(" ", s).strip()
