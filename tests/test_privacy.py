"""Pseudonyms, the key file, identifier dropping and small-cell suppression."""
from __future__ import annotations

import hashlib
import hmac
import os
import stat

import numpy as np
import pandas as pd
import pytest

from povdyn import privacy


def test_pseudonym_is_the_keyed_hmac_sha256_of_the_id():
    ids = pd.Series(["HH00012345", "HH00000001"])
    out = privacy.pseudonymise(ids, "secret")
    expected = "h_" + hmac.new(b"secret", b"HH00012345", hashlib.sha256).hexdigest()[:16]
    assert out.iloc[0] == expected
    assert out.str.fullmatch(r"h_[0-9a-f]{16}").all()


def test_same_key_same_pseudonym_other_key_other_pseudonym():
    ids = pd.Series(["HH1", "HH2", "HH1", None])
    a = privacy.pseudonymise(ids, b"k1")
    b = privacy.pseudonymise(ids.iloc[::-1], b"k1").iloc[::-1]
    c = privacy.pseudonymise(ids, b"k2")
    assert a.tolist() == b.tolist()
    assert a.iloc[0] == a.iloc[2] and a.iloc[0] != a.iloc[1]
    assert pd.isna(a.iloc[3])
    assert not set(a.dropna()) & set(c.dropna())


def test_empty_key_refused():
    with pytest.raises(ValueError):
        privacy.pseudonymise(pd.Series(["a"]), "")


def test_key_from_environment(monkeypatch):
    monkeypatch.setenv("POVDYN_PSEUDONYM_KEY", "from-env-0123456789")
    assert privacy.load_key() == b"from-env-0123456789"


def test_key_file_created_once_owner_only(monkeypatch, tmp_path):
    monkeypatch.delenv("POVDYN_PSEUDONYM_KEY", raising=False)
    key_file = tmp_path / "sub" / ".povdyn_key"
    monkeypatch.setenv("POVDYN_KEY_FILE", str(key_file))
    first = privacy.load_key()
    assert key_file.exists()
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert len(first) == 64 and int(first, 16) >= 0       # 32 random bytes as hex
    assert privacy.load_key() == first                    # reused, not regenerated
    ids = pd.Series(["HH1"])
    assert privacy.pseudonymise(ids).iloc[0] == privacy.pseudonymise(ids, first).iloc[0]


def test_drop_identifiers():
    df = pd.DataFrame({"household_id": ["a"], "head_name": ["Nguyễn Văn A"], "id_card": ["0"],
                       "phone": ["09"], "address": ["1 Lê Lợi"], "status": ["poor"]})
    assert list(privacy.drop_identifiers(df).columns) == ["household_id", "status"]
    assert privacy.IDENTIFIER_COLUMNS == ["head_name", "id_card", "phone", "address"]


def _exit_table():
    return pd.DataFrame({
        "province": ["Lai Châu", "Hà Nội", "Điện Biên", "Cao Bằng"],
        "at_risk": [250, 7, 10, 40],
        "exits": [30, 2, 9, 12],
        "rate": [0.12, 2 / 7, 0.9, 0.3],
        "ci_low": [0.08, 0.08, 0.6, 0.18],
    })


def test_small_counts_become_less_than_ten_and_their_rates_a_dash():
    out = privacy.suppress_small_cells(_exit_table(), ["at_risk", "exits"], ["rate", "ci_low"],
                                       min_cell=10)
    assert out["at_risk"].tolist() == [250, "<10", 10, 40]      # 10 itself is shown
    assert out["exits"].tolist() == [30, "<10", "<10", 12]
    # rates follow their denominator (the first count column): only Hà Nội is hidden
    assert out["rate"].tolist() == [0.12, "—", 0.9, 0.3]
    assert out["ci_low"].tolist() == [0.08, "—", 0.6, 0.18]
    assert out["province"].tolist() == _exit_table()["province"].tolist()


def test_rate_basis_can_name_the_numerator_too():
    out = privacy.suppress_small_cells(_exit_table(), ["exits", "at_risk"], ["rate"],
                                       min_cell=10, rate_basis={"rate": ("at_risk", "exits")})
    assert out["rate"].tolist() == [0.12, "—", "—", 0.3]


def test_min_cell_defaults_to_settings(monkeypatch):
    monkeypatch.setenv("POVDYN_MIN_CELL", "5")
    out = privacy.suppress_small_cells(_exit_table(), ["exits"])
    assert out["exits"].tolist() == [30, "<5", 9, 12]


def test_missing_counts_stay_missing_and_bad_columns_raise():
    table = pd.DataFrame({"n": [np.nan, 3.0], "rate": [np.nan, 0.5]})
    out = privacy.suppress_small_cells(table, ["n"], ["rate"], min_cell=10)
    assert pd.isna(out["n"].iloc[0]) and out["n"].iloc[1] == "<10"
    assert pd.isna(out["rate"].iloc[0]) and out["rate"].iloc[1] == "—"
    with pytest.raises(KeyError):
        privacy.suppress_small_cells(table, ["nope"])
    with pytest.raises(KeyError):
        privacy.suppress_small_cells(table, ["n"], ["rate"], rate_basis={"rate": "nope"})
