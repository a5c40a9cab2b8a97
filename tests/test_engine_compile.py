"""The compiled-SQL memory of the DuckDB connection (povdyn.engine.CompiledSQL): the SQL
a page's queries run with is exactly what Ibis compiles for them, and a second page of
the same kind compiles (almost) nothing again."""
from __future__ import annotations

import matplotlib
import pytest

from povdyn import tables
from povdyn.engine import CompiledSQL, connect
from test_report import write_small_register

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def register(tmp_path_factory):
    return write_small_register(tmp_path_factory.mktemp("processed"), households=600, tiny=False)


def _page_queries(data_dir, region, period):
    """The queries of a province page's main sections (headline, trends, flows, groups)."""
    data = tables.page_data(data_dir, region)
    tables.headline(data, period, within=2, lang="vi")
    tables.trend_data(data, period, within=2)
    tables.flows(data, period)
    tables.group_table(data, period, lang="vi")
    return data


def test_each_query_runs_the_sql_ibis_compiles_and_a_second_page_reuses_it(register, monkeypatch):
    con = connect()
    memory = con.compile
    assert isinstance(memory, CompiledSQL)
    checked = []

    def compare(expr, /, **kwargs):
        got = memory(expr, **kwargs)
        assert got == memory._compile(expr, **kwargs)  # Ibis' own compile, uncached
        checked.append(got)
        return got

    monkeypatch.setattr(con, "compile", compare)
    provinces = [p for p in tables.page_data(register, "national").panel.execute(
        tables.page_data(register, "national").panel.table.select("province_2025").distinct())["province_2025"]
        if p is not None]
    period = "2025Q4"
    _page_queries(register, provinces[0], period)
    first = len(checked)
    misses = memory.misses
    data = _page_queries(register, provinces[1], period)
    assert len(checked) > first + 10  # the second page ran its queries through the memory...
    assert memory.misses - misses <= (len(checked) - first) // 4  # ...and compiled few of them again
    # and its numbers are those of a connection that never saw the first page
    memory._shapes.clear()
    again = tables.headline(tables.page_data(register, provinces[1]), period, within=2, lang="vi")
    assert again.equals(tables.headline(data, period, within=2, lang="vi"))
