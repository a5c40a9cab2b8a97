"""Commune aggregates, commune pages and the commune table (issue 13 §2).

The demo register carries real old communes before July 2025 and their real 2025
communes after; ``geo.panel_commune_2025`` gives every row its 2025 commune as ingest
does. Checked here against the metric functions themselves (run on each commune's own
households) and against the province page's numbers, never against numbers this code
printed before."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from povdyn import communes, pagedata

PERIOD = "2025Q4"


def write_commune_register(out: Path, households: int = 3000, seed: int = 11) -> Path:
    """The synthetic register as ingest leaves it: identifiers dropped, ids
    pseudonymised, the 2025 commune of every row (povdyn.geo.panel_commune_2025)."""
    from povdyn import geo
    from povdyn.privacy import drop_identifiers, pseudonymise
    from povdyn.synth import generate

    reg = generate(households=households, seed=seed, frequency="quarter")
    panel = drop_identifiers(reg.panel)
    panel = panel.join(geo.panel_commune_2025(panel))
    panel["household_id"] = pseudonymise(panel["household_id"], "test-key")
    support = reg.support.copy()
    support["household_id"] = pseudonymise(support["household_id"], "test-key")
    out.mkdir(parents=True, exist_ok=True)
    panel.to_parquet(out / "panel.parquet", index=False)
    support.to_parquet(out / "support.parquet", index=False)
    return out


@pytest.fixture(scope="module")
def commune_data(tmp_path_factory):
    return write_commune_register(tmp_path_factory.mktemp("communes") / "processed")


@pytest.fixture(scope="module")
def largest(commune_data):
    panel = pd.read_parquet(commune_data / "panel.parquet", columns=["province_2025", "commune_2025"])
    return panel.groupby("province_2025")["commune_2025"].nunique().idxmax()


@pytest.fixture(scope="module")
def aggregates(commune_data, largest):
    return communes.province_communes(commune_data, largest, PERIOD)


def test_commune_rows_add_up_to_the_province_page(commune_data, largest, aggregates):
    """Every count the pages publish, summed over the province's communes, is the
    province page's own number (pagedata.headline_values on the province's page data,
    computed without any commune grouping)."""
    province = pagedata.page_data(commune_data, largest)
    head = pagedata.headline_values(province, PERIOD).set_index("key")
    v = aggregates.values
    assert communes.REST not in v.index  # the demo places every household
    summed = v.loc[aggregates.communes].sum()
    assert len(aggregates.communes) >= 5
    for key, (num, den) in communes.HEADLINE_CELLS.items():
        if key == "households":  # the poor rate's denominator
            continue
        # (a flow with no row at the period is none: NaN on the page, 0 summed)
        assert summed[num] == np.nan_to_num(head.at[key, "numerator"]), key
        if den is not None:
            assert summed[den] == np.nan_to_num(head.at[key, "denominator"]), key
    flows = pagedata.flows(province, PERIOD)
    for r in flows.itertuples(index=False):
        assert summed[f"flow_{r.from_status}_{r.to_status}"] == r.count


def test_a_commune_page_equals_the_metrics_on_that_communes_households(commune_data, aggregates):
    """The commune page's numbers (its PageData filled from the province's grouped
    results) are those of every metric run on a Panel of that commune's rows alone;
    and the page asks the engine nothing more (no new cache entry)."""
    from povdyn.panel import load_panel

    rows = pd.read_parquet(commune_data / "panel.parquet")
    sizes = aggregates.values.loc[aggregates.communes, "households"].sort_values()
    for commune in (sizes.index[-1], sizes.index[len(sizes) // 2], sizes.index[0]):
        page = communes.commune_page_data(aggregates, commune)
        keys = set(page.cache)
        got = pagedata.headline_values(page, PERIOD)
        assert set(page.cache) == keys, "the page ran a metric the aggregates do not hold"
        alone = pagedata.PageData(panel=load_panel(rows[rows["commune_2025"] == commune]))
        want = pagedata.headline_values(alone, PERIOD)
        cols = [c for c in got.columns if c not in ("key", "kind")]
        pd.testing.assert_frame_equal(got[cols].astype(float), want[cols].astype(float), check_exact=False,
                                      rtol=1e-12, atol=0)
        for table, own in ((pagedata.status_shares(page), pagedata.status_shares(alone)),
                           (pagedata.metric("exit_rates", page), pagedata.metric("exit_rates", alone))):
            page_rows = table.assign(period=table["period"].astype(str)).set_index("period")
            for c in ("poor", "households", "exits", "at_risk"):
                if c in own.columns:
                    mine = own.set_index(own["period"].astype(str))[c]
                    # a period the grouped result has no row for had no event there
                    assert (page_rows[c].reindex(mine.index).fillna(0) == mine.fillna(0)).all(), c
        flows = pagedata.flows(alone, PERIOD)
        for r in flows.itertuples(index=False):
            assert aggregates.values.at[commune, f"flow_{r.from_status}_{r.to_status}"] == r.count


def test_aggregates_are_computed_once_per_province(commune_data, largest, aggregates):
    again = communes.province_communes(commune_data, largest, PERIOD)
    assert again is aggregates
    assert communes.commune_page(commune_data, largest, aggregates.communes[0], PERIOD).province is aggregates


def test_unknown_commune_is_an_error_listing_the_known_ones(aggregates):
    from povdyn.errors import PovdynError

    with pytest.raises(PovdynError, match="known:"):
        communes.commune_page_data(aggregates, "Xã Không Có")


def test_small_commune_page_names_what_it_hides(commune_data, largest, aggregates):
    """A small commune's headline drops the rows it cannot show and says which and why;
    a count the joint suppression hides never appears as a number."""
    sizes = aggregates.values.loc[aggregates.communes, "households"].sort_values()
    page = communes.commune_page(commune_data, largest, sizes.index[0], PERIOD)
    table = communes.headline_table(page)
    hidden = table.attrs["hidden"]
    assert hidden, "the smallest commune of a 3,000-household demo has small cells"
    sentence = communes.hidden_sentence(hidden)
    from povdyn.labels import label

    assert "10 hộ" in sentence
    assert all(label(k).lower() in sentence for k in hidden)
    shown = dict(zip(table.iloc[:, 0], table.iloc[:, 1]))
    assert all(not str(v).startswith("<") for v in shown.values())  # no row of "<10"
    for key in communes.HEADLINE_CELLS:
        num = communes.HEADLINE_CELLS[key][0]
        assert (key in hidden) == aggregates.hidden(page.commune, num)
