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


# ------------------------------------------- secondary suppression vs a differencing attack
# Hand-built tables shaped like the ones the issue (13 §3) found leaking; the attacker
# (tests/differencing_attack.py) recovers the hidden count from cell-only suppression
# and recovers nothing after complementary suppression.

import differencing_attack as attacker  # noqa: E402

from povdyn import suppression  # noqa: E402
from povdyn.suppression import Relation  # noqa: E402


def _cells(df, cols, table=None):
    return {(table, r, c): float(df.at[r, c]) for c in cols for r in df.index}


def _cell_only(df, cols, table=None):
    shown = privacy.suppress_small_cells(df, cols, min_cell=10)
    return attacker.published_cells(shown, cols, table)


def test_headline_exits_split_by_destination():
    """exits 25 = to near-poor 16 + to non-poor 9: cell-only hides 9, 25 − 16 gives it."""
    df = pd.DataFrame({"numerator": [25, 16, 9]},
                      index=["exits", "exits_near_poor", "exits_non_poor"])
    truth = _cells(df, ["numerator"])
    rels = suppression.table_relations(df, ["numerator"],
                                       row_totals={"exits": ["exits_near_poor", "exits_non_poor"]})
    leaked = attacker.small_recovered(_cell_only(df, ["numerator"]), truth, rels)
    assert leaked == {(None, "exits_non_poor", "numerator"): 9.0}
    out = suppression.suppress_table(df, ["numerator"],
                                     row_totals={"exits": ["exits_near_poor", "exits_non_poor"]})
    assert out["numerator"].tolist() == [25, "x", "<10"]  # the 16 hides with the 9
    assert attacker.attack(attacker.published_cells(out, ["numerator"]), rels) == {}


def test_group_split_and_share_of_total():
    """urban 9 + rural 36 = 45, and the poor rate of each group printed: hiding the urban
    count alone leaves 45 − 36; hiding its rate too but printing the rural rate over a
    hidden denominator would give it back by division."""
    df = pd.DataFrame({"households": [45, 9, 36], "poor": [20, 5, 15]},
                      index=["all", "urban", "rural"])
    df["poor_rate"] = df["poor"] / df["households"]
    truth = _cells(df, ["households", "poor"])
    split = {"all": ["urban", "rural"]}
    rels = suppression.table_relations(df, ["households", "poor"], row_totals=split)
    shares = [(df.at[r, "poor_rate"], (None, r, "poor"), (None, r, "households")) for r in df.index]
    cell_only = _cell_only(df, ["households", "poor"])
    assert attacker.small_recovered(cell_only, truth, rels)
    out = suppression.suppress_table(df, ["households", "poor"], ["poor_rate"], row_totals=split)
    published = attacker.published_cells(out, ["households", "poor"])
    printed = [(None if isinstance(out.at[r, "poor_rate"], str) else out.at[r, "poor_rate"], n, d)
               for (_, n, d), r in zip(shares, df.index)]
    assert attacker.attack(published, rels, printed) == {}
    assert out.loc["urban", "poor_rate"] == "—" and out.loc["rural", "poor_rate"] == "—"
    assert out.loc["all", "households"] == 45        # the total stays: parts hide first


def test_flows_with_row_shares():
    """A flows table (from-status rows x to-status columns, row totals) whose chart
    prints each cell's share of its row: cell-only suppression leaks through
    total − others and through share × row total."""
    flows = pd.DataFrame({"poor": [41, 3, 2], "near_poor": [16, 30, 12], "non_poor": [9, 25, 400]},
                         index=["poor", "near_poor", "non_poor"])
    flows["total"] = flows.sum(axis=1)
    cols = ["poor", "near_poor", "non_poor", "total"]
    truth = _cells(flows, cols)
    col_totals = {"total": ["poor", "near_poor", "non_poor"]}
    rels = suppression.table_relations(flows, cols, col_totals=col_totals)
    shares = [(flows.at[r, c] / flows.at[r, "total"], (None, r, c), (None, r, "total"))
              for r in flows.index for c in cols[:3]]
    leaked = attacker.small_recovered(_cell_only(flows, cols), truth, rels, shares)
    assert {k[1:] for k in leaked} >= {("poor", "non_poor"), ("near_poor", "poor"), ("non_poor", "poor")}
    status = suppression.linked_suppression(suppression.table_cells(flows, cols), rels, min_cell=10)
    out = suppression.render(flows, status, cols)
    published = attacker.published_cells(out, cols)
    printed = [(None if status[n] or status[d] else s, n, d) for s, n, d in shares]  # hidden with its counts
    assert attacker.attack(published, rels, printed) == {}
    # the fewest, smallest complements: one more cell per row, the smallest one
    assert out.loc["poor", "near_poor"] == "x" and out.loc["poor", "poor"] == 41
    assert (out.loc["non_poor", ["near_poor", "total", "non_poor"]] != "x").sum() == 2


def test_province_table_with_margins_two_ways():
    """Provinces x status with a total row and a total column (2-D, linked both ways):
    complementary cells form rectangles, and no combination of rows and columns brings
    a hidden count back (the joint linear-algebra attack)."""
    rng = np.random.default_rng(5)
    counts = pd.DataFrame(rng.integers(10, 200, (6, 3)), columns=["poor", "near_poor", "exits"],
                          index=[f"P{i}" for i in range(6)])
    counts.iloc[0, 0], counts.iloc[2, 1], counts.iloc[4, 2], counts.iloc[5, 0] = 3, 7, 0, 9
    counts["total"] = counts.sum(axis=1)
    counts.loc["all"] = counts.sum()
    cols = ["poor", "near_poor", "exits", "total"]
    truth = _cells(counts, cols)
    rels = suppression.table_relations(counts, cols, row_totals={"all": [f"P{i}" for i in range(6)]},
                                       col_totals={"total": ["poor", "near_poor", "exits"]})
    assert attacker.small_recovered(_cell_only(counts, cols), truth, rels)
    out = suppression.render(counts, suppression.linked_suppression(
        suppression.table_cells(counts, cols), rels, min_cell=10), cols)
    assert attacker.attack(attacker.published_cells(out, cols), rels) == {}
    assert out.attrs["suppressed"]["primary"] == 4
    assert out.loc["all", "total"] != "x"            # the grand total stays


def test_joint_check_catches_what_pairwise_cannot():
    """Three relations that each hide two cells, yet solve together (x+y, x+z, y+z):
    the relation-by-relation rule is satisfied, the joint check adds a cell."""
    values = pd.Series({"x": 3.0, "y": 4.0, "z": 5.0, "p": 50.0, "q": 60.0, "r": 70.0,
                        "A": 57.0, "B": 68.0, "C": 79.0})
    rels = [Relation("A", ("x", "y", "p")), Relation("B", ("x", "z", "q")), Relation("C", ("y", "z", "r"))]
    cell_only = {k: (None if v < 10 else v) for k, v in values.items()}
    assert attacker.attack(cell_only, rels) == {"x": 3.0, "y": 4.0, "z": 5.0}
    assert suppression.determined_cells(["x", "y", "z"], rels) == {"x", "y", "z"}
    status = suppression.linked_suppression(values, rels, min_cell=10)
    assert (status == "secondary").sum() == 1 and status["p"] == "secondary"  # the smallest
    published = {k: (None if status[k] else v) for k, v in values.items()}
    assert attacker.attack(published, rels) == {}


def test_communes_against_their_province_across_tables():
    """A province page's headline (province total) and its commune table: the province
    total is the sum of its communes, across two tables of one page."""
    communes = pd.DataFrame({"poor": [4, 120, 35, 60, 12]},
                            index=["Xã A", "Phường B", "Xã C", "Xã D", "Xã E"])
    headline = pd.DataFrame({"poor": [communes["poor"].sum()]}, index=["province"])
    values = pd.concat([suppression.table_cells(communes, ["poor"], "communes"),
                        suppression.table_cells(headline, ["poor"], "headline")])
    rels = [Relation(("headline", "province", "poor"),
                     tuple(("communes", c, "poor") for c in communes.index))]
    truth = values.to_dict()
    cell_only = {k: (None if v < 10 else v) for k, v in truth.items()}
    assert attacker.small_recovered(cell_only, truth, rels) == {("communes", "Xã A", "poor"): 4.0}
    status = suppression.linked_suppression(values, rels, min_cell=10)
    assert status[("communes", "Xã E", "poor")] == "secondary"   # the smallest other commune
    assert status[("headline", "province", "poor")] == ""
    published = {k: (None if status[k] else v) for k, v in truth.items()}
    assert attacker.attack(published, rels) == {}


def test_unpublished_cells_are_unknowns_not_leaks():
    """A part the page does not print (NaN) is unknown to the reader: it needs no
    complement, and it blocks subtraction for the others."""
    values = pd.Series({"T": 40.0, "a": 5.0, "b": np.nan, "c": 30.0})
    status = suppression.linked_suppression(values, [Relation("T", ("a", "b", "c"))], min_cell=10)
    assert status.to_dict() == {"T": "", "a": "primary", "b": "", "c": ""}


def test_suppress_table_rates_follow_hidden_counts_and_min_cell(monkeypatch):
    monkeypatch.setenv("POVDYN_MIN_CELL", "5")
    df = pd.DataFrame({"at_risk": [50, 30, 20], "exits": [12, 8, 4]}, index=["all", "urban", "rural"])
    df["rate"] = df["exits"] / df["at_risk"]
    out = suppression.suppress_table(df, ["at_risk", "exits"], ["rate"], row_totals={"all": ["urban", "rural"]},
                                     rate_basis={"rate": ("at_risk", "exits")})
    assert out.loc["rural", "exits"] == "<5" and out.loc["urban", "exits"] == "x"
    assert out["rate"].tolist()[1:] == ["—", "—"] and out.loc["all", "rate"] == pytest.approx(0.24)


def test_page_tables_suppressed_together():
    """A page: headline (exits and their two destinations, households, poor) and a
    group table (urban / rural) whose parts add up to the headline. Suppressing each
    table alone leaves the urban exits = headline exits − rural exits; the page-wide
    call closes it."""
    headline = pd.DataFrame({"numerator": [300, 40, 22, 18]},
                            index=["households", "exits", "to_near_poor", "to_non_poor"])
    groups = pd.DataFrame({"households": [120, 180], "exits": [6, 34]}, index=["urban", "rural"])
    groups["exit_rate"] = groups["exits"] / 40
    tables = {"headline": suppression.PageTable(headline, ["numerator"],
                                                row_totals={"exits": ["to_near_poor", "to_non_poor"]}),
              "groups": suppression.PageTable(groups, ["households", "exits"], ["exit_rate"],
                                              rate_basis={"exit_rate": "exits"})}
    links = [(("headline", "households", "numerator"), [("groups", "urban", "households"),
                                                        ("groups", "rural", "households")]),
             (("headline", "exits", "numerator"), [("groups", "urban", "exits"),
                                                   ("groups", "rural", "exits")])]
    truth = {**_cells(headline, ["numerator"], "headline"), **_cells(groups, ["households", "exits"], "groups")}
    rels = [r for name, t in tables.items() for r in suppression.table_relations(
        t.frame, t.count_cols, name, t.row_totals, t.col_totals)] + links
    alone = {**attacker.published_cells(suppression.suppress_table(headline, ["numerator"], row_totals={
        "exits": ["to_near_poor", "to_non_poor"]}), ["numerator"], "headline"),
        **attacker.published_cells(suppression.suppress_table(groups, ["households", "exits"]),
                                   ["households", "exits"], "groups")}
    assert attacker.small_recovered(alone, truth, rels) == {("groups", "urban", "exits"): 6.0}
    page = suppression.suppress_page(tables, links, min_cell=10)
    published = {**attacker.published_cells(page["headline"], ["numerator"], "headline"),
                 **attacker.published_cells(page["groups"], ["households", "exits"], "groups")}
    assert attacker.attack(published, rels) == {}
    assert page["groups"].loc["rural", "exits"] == "x" and page["groups"].loc["urban", "exit_rate"] == "—"
    assert page["headline"].loc["exits", "numerator"] == 40   # the headline total stays


@pytest.mark.parametrize("seed", range(6))
def test_random_linked_tables_leak_nothing(seed):
    """Random tables shaped like commune tables (communes x counts, a total column, the
    province row), many small cells: the attacker finds something after cell-only
    suppression and nothing after linked suppression."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(4, 40))
    counts = pd.DataFrame(rng.negative_binomial(1, 0.06, (n, 4)), columns=list("abcd"),
                          index=[f"Xã {i}" for i in range(n)])
    counts["total"] = counts.sum(axis=1)
    counts.loc["province"] = counts.sum()
    cols = list("abcd") + ["total"]
    rels = suppression.table_relations(counts, cols, row_totals={"province": list(counts.index[:-1])},
                                       col_totals={"total": list("abcd")})
    truth = _cells(counts, cols)
    assert attacker.small_recovered(_cell_only(counts, cols), truth, rels)
    status = suppression.linked_suppression(suppression.table_cells(counts, cols), rels, min_cell=10)
    out = suppression.render(counts, status, cols)
    assert attacker.attack(attacker.published_cells(out, cols), rels) == {}
    marks = {(None, r, c): out.at[r, c] for c in cols for r in out.index}
    assert attacker.bounds_attack(attacker.published_cells(out, cols), marks, rels) == {}
    # no complement is wasted: showing any one secondary cell again gives a small one
    # back, by subtraction or by the bounds the labels give
    published = {k: (None if status[k] else v) for k, v in truth.items()}
    values = suppression.table_cells(counts, cols)
    for cell in status.index[status == "secondary"]:
        found = attacker.attack({**published, cell: truth[cell]}, rels)
        shown_again = status.copy()
        shown_again[cell] = ""
        assert any(status[k] == "primary" for k in found) or \
            suppression.pinned_cells(values, shown_again, rels, 10), cell


def test_labels_bounds_cannot_pin_a_small_count():
    """68 = 9 + 9 + 50: the two 9s marked "<10" solve to nothing by subtraction, but
    both lie in 0..9 and add to 18, so both are 9. The bounds step hides a third cell."""
    df = pd.DataFrame({"n": [68, 9, 9, 50]}, index=["all", "a", "b", "c"])
    rels = suppression.table_relations(df, ["n"], row_totals={"all": ["a", "b", "c"]})
    values = suppression.table_cells(df, ["n"])
    naive = suppression.linked_suppression(values, rels, min_cell=10, interval_check=False)
    shown = suppression.render(df, naive, ["n"])
    marks = {(None, r, "n"): v for r, v in shown["n"].items()}
    assert attacker.attack(attacker.published_cells(shown, ["n"]), rels) == {}   # no subtraction
    assert attacker.bounds_attack(attacker.published_cells(shown, ["n"]), marks, rels) == {
        (None, "a", "n"): 9.0, (None, "b", "n"): 9.0}
    status = suppression.linked_suppression(values, rels, min_cell=10)
    out = suppression.render(df, status, ["n"])
    marks = {(None, r, "n"): v for r, v in out["n"].items()}
    assert out["n"].tolist() == [68, "<10", "<10", "x"]
    assert attacker.bounds_attack(attacker.published_cells(out, ["n"]), marks, rels) == {}


# ------------------------------------- the demo's page tables against the attacker

def _number(text):
    """Rendered vi number -> float; hidden or blank -> None."""
    if not isinstance(text, str) or not text or text.startswith("<") or text in ("x", "—"):
        return None
    return float(text.replace(".", "").replace(",", "."))


def _change_number(text):
    """Rendered change ("+0,25 điểm", "−120", "±0") -> float; hidden or blank -> None."""
    if not isinstance(text, str) or not text or text in ("x", "—") or text.startswith("<"):
        return None
    sign = -1.0 if text[0] == "−" else 1.0
    return sign * _number(text.lstrip("+−±").split("\u00a0")[0])


def _page_cells(df, period, targets_file=None, region=None):
    """Every published cell of the headline (with both change columns: this period −
    earlier period = change), the group table and the targets table of a page, the
    relations between them and the printed shares."""
    from povdyn import periods, tables, targets
    from povdyn.panel import load_panel

    df = tables.PageData(panel=load_panel(df))  # one engine-side panel, metrics cached as on a page
    head = tables.headline(df, period)
    groups = tables.group_table(df, period)
    keys = ["poor_rate", "near_poor_rate", "exit_rate", "to_near_poor", "to_non_poor"]
    hv = tables.headline_values(df, period)
    row = {k: i for i, k in enumerate(hv["key"])}
    num, den, rate = head.columns[1], head.columns[2], head.columns[3]
    published, truth, shares = {}, {}, []
    for k in keys:
        for col, tcol in ((num, "numerator"), (den, "denominator")):
            published[("h", k, tcol)] = _number(head.at[row[k], col])
            truth[("h", k, tcol)] = float(hv.at[row[k], tcol])
        r = _number(head.at[row[k], rate])
        shares.append((None if r is None else r / 100, ("h", k, "numerator"), ("h", k, "denominator")))
    names = list(groups.iloc[:, 0])
    raw = pd.concat([tables.group_rates(df, period, by) for by in ("area", "ethnic_minority")],
                    ignore_index=True)
    for i, g in enumerate(names):
        for c, tcol in ((1, "households"), (2, "poor"), (5, "exits")):
            published[("g", g, tcol)] = _number(groups.iat[i, c])
            truth[("g", g, tcol)] = float(raw.at[i, tcol]) if pd.notna(raw.at[i, tcol]) else 0.0
        published[("g", g, "at_risk")] = None      # used in the exit rate, not printed
        truth[("g", g, "at_risk")] = float(raw.at[i, "at_risk"]) if pd.notna(raw.at[i, "at_risk"]) else 0.0
        for rc, n, d in ((3, "poor", "households"), (6, "exits", "at_risk")):
            r = _number(groups.iat[i, rc])
            shares.append((None if r is None else r / 100, ("g", g, n), ("g", g, d)))
    relations = [(("h", "exit_rate", "numerator"), [("h", "to_near_poor", "numerator"),
                                                    ("h", "to_non_poor", "numerator")])]
    for k in keys:  # each rate's denominator = numerator + the rest (e.g. still poor)
        published[("h", k, "rest")] = None
        truth[("h", k, "rest")] = truth[("h", k, "denominator")] - truth[("h", k, "numerator")]
        relations.append((("h", k, "denominator"), [("h", k, "numerator"), ("h", k, "rest")]))
    for breakdown in (names[:2], names[2:]):
        for tcol, total in (("households", ("h", "poor_rate", "denominator")),
                            ("poor", ("h", "poor_rate", "numerator")),
                            ("exits", ("h", "exit_rate", "numerator")),
                            ("at_risk", ("h", "exit_rate", "denominator"))):
            relations.append((total, [("g", g, tcol) for g in breakdown]))
    # the change columns: the earlier periods' counts are cells the page gives away
    changes, rate_changes = [], []
    for change_col, pre in ((head.columns[5], "prev_"), (head.columns[6], "year_")):
        for k in hv["key"]:
            i = row[k]
            for tcol in ("numerator", "denominator"):
                published.setdefault(("h", k, tcol), _number(head.at[i, num if tcol == "numerator" else den]))
                truth.setdefault(("h", k, tcol), float(hv.at[i, tcol]) if pd.notna(hv.at[i, tcol]) else 0.0)
                then = ("h" + pre, k, tcol)
                published[then] = None
                truth[then] = float(hv.at[i, pre + tcol]) if pd.notna(hv.at[i, pre + tcol]) else 0.0
            change = _change_number(head.at[i, change_col])
            if hv.at[i, "kind"] == "count":
                changes.append((change, ("h", k, "numerator"), ("h" + pre, k, "numerator")))
            else:
                r = _number(head.at[i, rate])
                rate_changes.append((change, None if r is None else r / 100,
                                     ("h" + pre, k, "numerator"), ("h" + pre, k, "denominator")))
        relations.append((("h" + pre, "exit_rate", "numerator"), [("h" + pre, "to_near_poor", "numerator"),
                                                                  ("h" + pre, "to_non_poor", "numerator")]))
    # the targets table: actual and base of each target, as cells of the same counts
    if targets_file is not None:
        shown = targets.targets_table(df, period, region, targets_file=targets_file)
        values = pd.DataFrame(shown.attrs["values"])
        year = periods.shift(period, -4)
        measure = {"poor_rate": "poor_rate", "near_poor_rate": "near_poor_rate", "poor_households": "poor_rate",
                   "near_poor_households": "near_poor_rate", "relapse_rate": "relapse_rate",
                   "relapses": "relapse_rate"}
        for i, v in values.iterrows():
            m, grp = measure[v["indicator"]], v["group"]
            base_text, actual_text, count_text = shown.iat[i, 2], shown.iat[i, 4], shown.iat[i, 6]
            for when, count, households, text, pre in (("now", v["count"], v["households"], actual_text, ""),
                                                       ("base", v["base_count"], v["base_households"], base_text,
                                                        "year_")):
                if when == "base" and v["base_period"] != year:
                    continue
                key = ("h" + pre, m, "numerator") if not grp else ("t" + pre, m, grp, "count")
                den = ("h" + pre, m, "denominator") if not grp else ("t" + pre, m, grp, "households")
                truth[key] = float(count) if pd.notna(count) else 0.0
                truth[den] = float(households) if pd.notna(households) else 0.0
                published.setdefault(key, None)
                published.setdefault(den, None)
                shown_value = _number(text)
                if v["indicator"] in targets.RATE_INDICATORS:
                    shares.append((None if shown_value is None else shown_value / 100, key, den))
                elif shown_value is not None:
                    published[key] = shown_value
                if when == "now" and count_text not in ("", None) and _number(count_text.split("/")[0]) is not None:
                    published[key] = _number(count_text.split("/")[0])
                if grp and pd.notna(v["total_count" if when == "now" else "base_total_count"]):
                    rest = ("t" + pre, m, "rest:" + grp, "count")
                    published[rest] = None
                    truth[rest] = float(v["total_count" if when == "now" else "base_total_count"] - (count or 0))
                    relations.append((("h" + pre, m, "numerator"), [key, rest]))
    return published, truth, relations, shares, changes, rate_changes


@pytest.mark.parametrize("region", ["national", "Hà Giang"])
def test_demo_headline_and_group_table_leak_no_small_count(demo_register, region):
    """The national page and province pages of the demo: the headline (exits and their
    two destinations, rates) and the urban/rural and ethnic-minority table, read
    together as an outsider would (every total − part, every share × total, all at
    once): no count below 10 comes back."""
    from povdyn import tables

    panel = demo_register.panel.drop(columns=["head_name", "id_card", "phone", "address"])
    df = panel if region == "national" else panel[panel["province"].eq(region)
                                                  | panel["province_2025"].eq(region)]
    for period in ("2023Q4",):
        published, truth, relations, shares, _, _ = _page_cells(df, period)
        assert any(v is None for v in published.values())        # something was hidden
        assert attacker.small_recovered(published, truth, relations, shares, share_decimals=2) == {}


DEMO_TARGETS = """level,province,district,commune,indicator,kind,value,group,base_period,source
national,,,,poor_households,ceiling,0,meritorious=true,,x
national,,,,near_poor_households,percent_per_year,-10,,,x
national,,,,near_poor_rate,points_per_year,-0.2,area=urban,,x
national,,,,relapses,ceiling,0,,,x
province,Sơn La,,,poor_rate,points_per_year,-2,ethnic_minority=true,,x
province,Sơn La,,,poor_households,percent_per_year,-10,area=rural,,x
"""


@pytest.fixture(scope="module")
def page_register():
    """A demo register large enough (12,000 households) that a province page (Sơn La:
    about 160 households, 24 poor) prints counts, rates and changes beside hidden ones."""
    from povdyn.synth import generate

    return generate(households=12_000, seed=7, frequency="quarter")


@pytest.mark.parametrize("region", ["national", "Sơn La"])
def test_demo_page_with_changes_and_targets_leaks_no_small_count(page_register, region, tmp_path):
    """The headline with both change columns (this period − earlier period = change, for
    counts and for rates in points), the group table and the targets table with local
    targets by group, read together with every total − part, share × total and change:
    no count below 10 comes back, on the national page and a province page."""
    panel = page_register.panel.drop(columns=["head_name", "id_card", "phone", "address"])
    df = panel if region == "national" else panel[panel["province_2025"].eq(region)]
    targets_file = tmp_path / "targets.csv"
    targets_file.write_text(DEMO_TARGETS, encoding="utf-8")
    published, truth, relations, shares, changes, rate_changes = _page_cells(
        df, "2025Q4", targets_file, None if region == "national" else region)
    read = sum(c is not None for c, _, _ in changes) + sum(c is not None for c, *_ in rate_changes)
    assert read >= 2                                           # the change columns are read
    assert any(k[0] == "t" for k in truth)                     # and the targets' group cells
    assert attacker.small_recovered(published, truth, relations, shares, share_decimals=2,
                                    changes=changes, rate_changes=rate_changes) == {}


def test_a_printed_change_gives_last_years_count_back():
    """relapses 12 now, "+3" against last year: last year's 9 follows; the attacker reads
    it, and a rate change in points gives last year's rate, then its count."""
    published = {"now": 12.0, "then": None}
    assert attacker.attack(published, [], changes=[(3.0, "now", "then")]) == {"then": 9.0}
    assert attacker.attack(published, [], changes=[(None, "now", "then")]) == {}
    published = {"n_then": None, "d_then": 150.0}
    found = attacker.attack(published, [], rate_changes=[(-2.0, 0.04, "n_then", "d_then")], share_decimals=2)
    assert found == {"n_then": 9.0}  # (4% + 2 points) x 150


def test_flows_chart_labels_give_no_hidden_count_back():
    """The issue's flows chart: each cell printed with its share of the row and its
    count, so the row total follows (41 / 62.1%) and with it the hidden cell
    (66 − 41 − 16 = 9). The chart now hides a complement in such rows."""
    from povdyn.plots import dynamics as plots

    counts = np.array([[41, 16, 9], [3, 30, 25], [2, 12, 400]])
    texts = [t.get_text() for t in plots.flows(counts).axes[0].texts]
    published, truth, shares, rels = {}, {}, [], []
    for k, text in enumerate(texts):
        i, j = divmod(k, 3)
        truth[(i, j)] = float(counts[i, j])
        if "\n" in text:
            pct, n = text.split("\n")
            published[(i, j)] = float(n.replace(".", ""))
            shares.append((float(pct.rstrip("%").replace(",", ".")) / 100, (i, j), ("row", i)))
        else:
            published[(i, j)] = None
    for i in range(3):
        published[("row", i)] = None
        truth[("row", i)] = float(counts[i].sum())
        rels.append((("row", i), [(i, j) for j in range(3)]))
    assert attacker.small_recovered(published, truth, rels, shares) == {}
    # the old chart (small cells only) leaked through the same reading
    old = {k: (None if isinstance(k[0], int) and truth[k] < 10 else v) for k, v in published.items()}
    old.update({k: truth[k] for k in truth if isinstance(k[0], int) and truth[k] >= 10})
    old_shares = [(counts[i, j] / counts[i].sum(), (i, j), ("row", i))
                  for i in range(3) for j in range(3) if counts[i, j] >= 10]
    assert (0, 2) in attacker.small_recovered(old, truth, rels, old_shares)


def _null_space_rule(hidden, relations):
    """The definition, by brute force: a hidden cell is determined when the null space
    of the relations over the hidden cells has a zero row for it (scipy, dense)."""
    from scipy.linalg import null_space

    position = {c: j for j, c in enumerate(hidden)}
    rows = []
    for rel in relations:
        row = np.zeros(len(hidden))
        for sign, cell in [(-1.0, rel.total)] + [(1.0, p) for p in rel.parts]:
            if cell in position:
                row[position[cell]] += sign
        if row.any():
            rows.append(row)
    if not rows:
        return set()
    basis = null_space(np.array(rows))
    free = np.abs(basis).max(axis=1) > 1e-9 if basis.size else np.zeros(len(hidden), bool)
    return {c for c, f in zip(hidden, free) if not f}


@pytest.mark.parametrize("seed", range(25))
def test_determined_cells_equals_the_null_space_rule(seed):
    """The fast determination (peeling, blocks, economy SVD) against the definition on
    random sparse systems: commune-like tables with some cells hidden, plus random
    extra relations linking them."""
    rng = np.random.default_rng(100 + seed)
    n, k = int(rng.integers(3, 25)), int(rng.integers(2, 5))
    cells = [(r, c) for r in range(n + 1) for c in range(k + 1)]
    rels = [suppression.Relation((n, c), tuple((r, c) for r in range(n))) for c in range(k + 1)]
    rels += [suppression.Relation((r, k), tuple((r, c) for c in range(k))) for r in range(n + 1)]
    for _ in range(int(rng.integers(0, 4))):
        picked = rng.choice(len(cells), size=3, replace=False)
        rels.append(suppression.Relation(cells[picked[0]], (cells[picked[1]], cells[picked[2]])))
    hidden = [c for c in cells if rng.random() < rng.uniform(0.1, 0.9)]
    assert suppression.determined_cells(hidden, rels) == _null_space_rule(hidden, rels)


@pytest.mark.parametrize("seed", range(4))
def test_provinces_are_solved_as_independent_blocks(seed):
    """Communes of several provinces against their province totals (shown: printed on
    the province pages) and a national total: suppressing all at once gives exactly
    what suppressing each province alone gives, and the attacker recovers nothing."""
    rng = np.random.default_rng(seed)
    frames, rels, shown = [], [], []
    for p in range(3):
        n = int(rng.integers(5, 30))
        t = pd.DataFrame(rng.negative_binomial(1, 0.06, (n, 3)), columns=list("abc"),
                         index=[f"p{p} xã {i}" for i in range(n)]) + 1
        t["total"] = t.sum(axis=1)
        t.loc[f"p{p}"] = t.sum()
        frames.append(t)
        rels.append(suppression.table_relations(t, list(t.columns), table=p,
                                                row_totals={f"p{p}": list(t.index[:-1])},
                                                col_totals={"total": list("abc")}))
        shown.append([(p, f"p{p}", c) for c in t.columns])
    cols = list(frames[0].columns)
    national = {("nat", c): float(sum(f.loc[f"p{p}", c] for p, f in enumerate(frames))) for c in cols}
    national_rels = [suppression.Relation(("nat", c), tuple((p, f"p{p}", c) for p in range(3))) for c in cols]
    values = pd.concat([suppression.table_cells(f, cols, table=p) for p, f in enumerate(frames)]
                       + [pd.Series(national)])
    together = suppression.linked_suppression(values, [r for rs in rels for r in rs] + national_rels,
                                              min_cell=10, shown=[c for s in shown for c in s])
    for p, f in enumerate(frames):
        alone = suppression.linked_suppression(suppression.table_cells(f, cols, table=p), rels[p],
                                               min_cell=10, shown=shown[p])
        assert together[alone.index].tolist() == alone.tolist()
        out = suppression.render(f, alone, cols, table=p)
        truth = _cells(f, cols, table=p)
        assert attacker.small_recovered(attacker.published_cells(out, cols, table=p), truth, rels[p]) == {}
    assert (together == "primary").any() and (together == "secondary").any()


def test_a_peeled_cell_is_determined_when_the_rest_of_its_relation_is():
    """x + y = 20 (x in no other relation) and y + s = 15 with s shown: y = 15 − s, so
    x = 20 − y too; z + w = 30 alone leaves both free."""
    rels = [suppression.Relation("T1", ("x", "y")), suppression.Relation("T2", ("y", "s")),
            suppression.Relation("T3", ("z", "w"))]
    hidden = ["x", "y", "z", "w"]
    assert suppression.determined_cells(hidden, rels) == {"x", "y"} == _null_space_rule(hidden, rels)


# ------------------------------------- the trends tables (notebooks 01 and 02)

def _rendered(shown, columns, period_col):
    """{(period, column): number or None} from a rendered vi table."""
    return {(p, c): _number(v) for c in columns for p, v in zip(shown[period_col], shown[c])}


def _few_stay_poor() -> pd.DataFrame:
    """400 households, 30 poor at 2024Q4; at 2025Q1 25 of them have exited and 5 stay poor."""
    rows = []
    for i in range(400):
        before = "poor" if i < 30 else "non_poor"
        after = "poor" if i < 5 else ("near_poor" if i < 20 else "non_poor")
        for p, s in (("2024Q4", before), ("2025Q1", after)):
            rows.append(dict(household_id=f"h{i}", period=p, status=s, province="Tỉnh A",
                             province_2025="Tỉnh A", area="rural", ethnic_minority=False))
    return pd.DataFrame(rows)


def test_headline_hides_exits_when_few_stay_poor():
    """30 poor households at risk, 25 exits: printing both prints the 5 that stayed poor.
    The headline hides the exits (and the rate) instead."""
    from povdyn import tables

    head = tables.headline(_few_stay_poor(), "2025Q1", lang="en").set_index("Indicator")
    exit_row = head.loc[[i for i in head.index if i.startswith("Exit rate")][0]]
    assert exit_row["Out of"] == "30"
    assert exit_row["Households"] == "x" and exit_row["Rate (%)"] == "—"


def test_trends_chart_does_not_draw_a_rate_the_headline_hides():
    """The same 25 exits of 30: the headline hides the exit rate; the trends chart drew
    it (28 of 30 read off the chart gives the 5 still poor back). It is left out now."""
    from povdyn import tables
    from povdyn.plots import dynamics as charts

    df = _few_stay_poor()
    shares, exits = tables.trend_data(df, "2025Q1")
    assert exits["rate"].isna().all()
    assert tables.metric("exit_rates", df)["rate"].notna().all()  # what the chart drew before
    drawn = charts.trends(shares, exits).axes[1].lines[0].get_ydata()
    assert np.isnan(np.asarray(drawn, dtype=float)).all()


def test_exit_rate_table_by_period_hides_what_subtraction_gives_back():
    """Exits 25 of 30 at risk, 16 to near-poor: cell-only suppression printed 25 and 16,
    so the 9 exits above near-poor (25 − 16) and the 5 who stayed poor (30 − 25) came
    back. The trends table now hides complements, and the attacker finds nothing on it
    or on the demo's table."""
    from povdyn import tables

    t = pd.DataFrame({"period": ["2024Q4", "2025Q4"], "at_risk": [30, 200], "exits": [25, 60],
                      "to_near_poor": [16, 31], "to_non_poor": [9, 29], "rate": [25 / 30, 0.3],
                      "ci_low": [0.6, 0.24], "ci_high": [0.9, 0.37]})
    counts = ["at_risk", "exits", "to_near_poor", "to_non_poor"]
    shown = tables.suppressed_rates(t, lang="vi", min_cell=10)
    labels = list(shown.columns[1:5])
    published = _rendered(shown, labels, shown.columns[0])
    truth = {(p, lab): float(t.at[i, c]) for i, p in enumerate(t["period"]) for lab, c in zip(labels, counts)}
    relations = []
    for p in t["period"]:
        published[(p, "stayed")] = None
        truth[(p, "stayed")] = truth[(p, labels[0])] - truth[(p, labels[1])]
        relations += [((p, labels[1]), [(p, labels[2]), (p, labels[3])]),
                      ((p, labels[0]), [(p, labels[1]), (p, "stayed")])]
    assert attacker.small_recovered(published, truth, relations) == {}
    assert published[("2025Q4", labels[1])] == 60  # a row with nothing small stays whole
    cell_only = {k: (None if truth[k] < 10 or k[1] == "stayed" else truth[k]) for k in truth}
    assert attacker.small_recovered(cell_only, truth, relations) == {
        ("2024Q4", labels[3]): 9.0, ("2024Q4", "stayed"): 5.0}


def test_relapse_and_entry_tables_of_the_demo_leak_nothing(page_register):
    """Notebook 02's tables on the demo: relapse by exit cohort (exits = followed + not
    followed, followed = relapsed + sustained) and entries (= relapsed + newly poor =
    from near-poor + from not poor + not on the previous register)."""
    from povdyn import tables
    from povdyn.panel import load_panel

    data = tables.PageData(panel=load_panel(page_register.panel))
    rel = tables.metric("relapse_rates", data, within=2)
    shown = tables.suppressed_rates(rel, lang="en", count_cols=["followed", "relapsed", "exits"],
                                    period_col="exit_period")
    cols = ["followed", "relapsed", "exits"]
    published, truth, relations = {}, {}, []
    for i, p in enumerate(rel["exit_period"]):
        for j, c in enumerate(cols):
            v = shown.iat[i, 1 + j]
            published[(p, c)] = None if v in ("x", "—") or str(v).startswith("<") else float(str(v).replace(",", ""))
            truth[(p, c)] = float(rel.at[i, c])
        for rest, total, part in (("not_followed", "exits", "followed"), ("sustained", "followed", "relapsed")):
            published[(p, rest)] = None
            truth[(p, rest)] = truth[(p, total)] - truth[(p, part)]
            relations.append(((p, total), [(p, part), (p, rest)]))
    assert any(v is None for v in published.values()) and any(v is not None for v in published.values())
    assert attacker.small_recovered(published, truth, relations) == {}

    ent = tables.metric("entries", data)
    shown = tables.suppressed_counts(ent, ["entries", "relapsed", "new_poor"], lang="en")
    cols = ["entries", "relapsed", "new_poor", "from_near_poor", "from_non_poor", "from_unobserved"]
    published = {(p, c): (None if str(v) in ("x", "—") or str(v).startswith("<") else float(str(v).replace(",", "")))
                 for j, c in enumerate(cols) for p, v in zip(ent["period"], shown.iloc[:, 1 + j])}
    truth = {(p, c): float(v) for c in cols for p, v in zip(ent["period"], ent[c])}
    relations = [((p, "entries"), [(p, "relapsed"), (p, "new_poor")]) for p in ent["period"]]
    relations += [((p, "entries"), [(p, c) for c in cols[3:]]) for p in ent["period"]]
    assert all(published[k] is None for k in truth if truth[k] < 10)
    assert attacker.small_recovered(published, truth, relations) == {}
