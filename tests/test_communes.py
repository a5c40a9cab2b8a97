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
from test_report import write_small_register

PERIOD = "2025Q4"


@pytest.fixture(scope="module")
def commune_data(tmp_path_factory):
    return write_small_register(tmp_path_factory.mktemp("communes") / "processed", households=3000, tiny=False,
                                communes=True)


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
    for commune in (sizes.index[-1], sizes.index[0]):
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


def test_commune_targets_from_the_province_tables_equal_the_communes_own(commune_data, largest, aggregates,
                                                                         tmp_path, monkeypatch):
    """A commune page's plan vs actual reads its province's metric tables grouped by
    commune (computed once per province): the table equals plan vs actual run on the
    commune's own households (targets.progress_table, no shared tables) for targets of
    every kind, with and without groups, at commune, province and national level; and
    once the province's tables exist a page's targets run no engine query."""
    from povdyn import targets
    from povdyn.labels import label
    from povdyn.panel import Panel

    sizes = aggregates.values.loc[aggregates.communes, "households"].sort_values()
    big, small = sizes.index[-1], sizes.index[0]
    f = tmp_path / "targets.csv"
    f.write_text("level,province,district,commune,indicator,kind,value,group,base_period,source\n"
                 f"province,{largest},,,poor_rate,points_per_year,-0.5,,,plan\n"
                 f"province,{largest},,,relapses,ceiling,3,ethnic_minority=true,,plan\n"
                 f"commune,{largest},,{big},near_poor_households,percent_per_year,-10,meritorious=true,,plan\n"
                 f"commune,{largest},,{big},poor_households,ceiling,5,area=urban,,plan\n", encoding="utf-8")
    for commune in (big, small):
        page = communes.commune_page(commune_data, largest, commune, PERIOD)
        got = communes.targets_table(page, targets_file=f)
        want = targets.progress_table(page.data, PERIOD, region=largest, commune=commune, within=aggregates.within,
                                      targets_path=f, min_cell=aggregates.min_cell,
                                      unit_hidden=lambda col: aggregates.hidden(commune, col))
        assert len(got) >= 4
        pd.testing.assert_frame_equal(got, want.drop(columns=[label("households")]))
        pd.testing.assert_frame_equal(pd.DataFrame(got.attrs["values"]), pd.DataFrame(want.attrs["values"]))
    queries = []
    real = Panel.execute
    monkeypatch.setattr(Panel, "execute", lambda self, *a, **k: queries.append(1) or real(self, *a, **k))
    page = communes.commune_page(commune_data, largest, sizes.index[len(sizes) // 2], PERIOD)
    communes.targets_table(page, targets_file=f)
    assert not queries


# --------------------------------------------------------------------------- the batch runner
def test_jobs_of_a_province_stay_on_one_worker():
    """A free worker keeps to its province while that province has pages; a new worker
    takes the largest province nobody is on."""
    from collections import deque

    from povdyn.report import _next_job

    pending = deque([dict(slug=f"{g}{i}", group=g) for g, n in (("A", 3), ("B", 5), ("C", 2)) for i in range(n)])
    slots = {0: dict(job=None), 1: dict(job=None)}
    first = _next_job(pending, slots, 0)
    slots[0].update(job=first, group=first["group"])
    second = _next_job(pending, slots, 1)
    slots[1].update(job=second, group=second["group"])
    assert (first["group"], second["group"]) == ("B", "A")
    order = [_next_job(pending, slots, 0)["group"] for _ in range(4)]
    assert order == ["B", "B", "B", "B"]
    assert _next_job(pending, slots, 0)["group"] == "C"  # B is done; A is taken by worker 1


def _smallest_province(data: Path) -> str:
    """A province with 2-3 communes (a fast batch)."""
    panel = pd.read_parquet(data / "panel.parquet", columns=["province_2025", "commune_2025"])
    n = panel.groupby("province_2025")["commune_2025"].nunique()
    return n[(n >= 2) & (n <= 3)].index[0]


@pytest.fixture(scope="module")
def commune_run(commune_data, tmp_path_factory):
    """`povdyn report --level commune` for one small province, then its province page
    into the same folder (the order a user may run them in)."""
    from povdyn.report import run_report

    out = tmp_path_factory.mktemp("commune-reports")
    province = _smallest_province(commune_data)
    targets = _office_targets(commune_data, province, tmp_path_factory.mktemp("office") / "ke_hoach.csv")
    run = run_report(period=PERIOD, regions=province, workers=1, out_dir=out, data_dir=commune_data,
                     progress=False, level="commune", targets=targets)
    province_run = run_report(period=PERIOD, regions=province, workers=1, out_dir=out, data_dir=commune_data,
                              progress=False, targets=targets)
    return run, province_run, province


def _office_targets(data: Path, province: str, path: Path) -> Path:
    """An office's targets file outside the data folder (`povdyn report --targets`): a
    province target and one for the province's first commune."""
    first = sorted(pd.read_parquet(data / "panel.parquet", columns=["province_2025", "commune_2025"])
                   .query("province_2025 == @province")["commune_2025"].unique())[0]
    path.write_text("level,province,district,commune,indicator,kind,value,group,base_period,source\n"
                    f"province,{province},,,near_poor_rate,points_per_year,-0.7,,,province plan\n"
                    f"commune,{province},,{first},poor_households,ceiling,4,,,commune plan\n", encoding="utf-8")
    return path


def test_targets_option_reaches_every_page_and_the_manifest(commune_run):
    """`povdyn report --targets PATH` (a file outside the data folder): every commune
    page and the province page read it (the commune's own target on its page, the
    province's target on the others and on the province page), and both manifests
    record the file and its sha256."""
    import hashlib
    import json

    from bs4 import BeautifulSoup
    from povdyn.report import slugify

    run, province_run, province = commune_run
    for manifest in ("communes.json", "manifest.json"):
        params = json.loads((run.out_dir / manifest).read_text())["parameters"]
        path = Path(params["targets_file"])
        assert path.name == "ke_hoach.csv" and params["targets_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    names = sorted(r["region"].split("/", 1)[1] for r in run.results)
    for i, c in enumerate(names):
        text = BeautifulSoup((run.out_dir / slugify(province) / f"{slugify(c)}.html").read_text(encoding="utf-8"),
                             "html.parser").get_text(" ")
        assert "ke_hoach.csv" in text
        assert (f"{c}, {province} (ke_hoach.csv" in text) == (i == 0)  # the commune's own target
        assert f"{province} (ke_hoach.csv, dòng 2)" in text  # the province's, as the fallback
    page = BeautifulSoup((run.out_dir / f"{slugify(province)}.html").read_text(encoding="utf-8"), "html.parser")
    assert f"{province} (ke_hoach.csv, dòng 2)" in page.get_text(" ")


def test_targets_option_checks_the_file_before_any_page(commune_data, tmp_path, capsys):
    """A missing or invalid --targets file stops the run at once, naming the file (and
    the row and column), before any page or folder is written."""
    from povdyn.cli import main

    province = _smallest_province(commune_data)
    out = tmp_path / "reports"
    args = ["report", "--level", "commune", "--regions", province, "--data-dir", str(commune_data), "--out", str(out),
            "--workers", "1", "--period", PERIOD]
    assert main([*args, "--targets", str(tmp_path / "missing.csv")]) == 2
    assert f"targets file {tmp_path / 'missing.csv'} not found" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("level,province,district,commune,indicator,kind,value,group,base_period,source\n"
                   f"province,{province},,,poor_rate,points_per_year,-1,,,ok\n"
                   f"province,{province},,,poor_rate,ceiling,mười,,,typo\n", encoding="utf-8")
    assert main([*args, "--targets", str(bad)]) == 2
    assert "bad.csv, row 3: value 'mười' is not a number (column value)" in capsys.readouterr().err
    assert not out.exists()


def test_commune_pages_index_and_manifest(commune_run, commune_data):
    import json

    from bs4 import BeautifulSoup
    from povdyn.report import external_urls, slugify

    run, province_run, province = commune_run
    assert run.status == "complete" and not run.failed, run
    names = sorted(pd.read_parquet(commune_data / "panel.parquet", columns=["province_2025", "commune_2025"])
                   .query("province_2025 == @province")["commune_2025"].unique())
    folder = run.out_dir / slugify(province)
    manifest = json.loads((run.out_dir / "communes.json").read_text())
    assert manifest["level"] == "commune" and manifest["status"] == "complete"
    assert [r["region"] for r in manifest["regions"]] == [f"{province}/{c}" for c in names]
    for c in names:
        page = (folder / f"{slugify(c)}.html").read_text(encoding="utf-8")
        assert external_urls(page) == []
        text = BeautifulSoup(page, "html.parser").get_text(" ")
        assert c in text and "Các chỉ tiêu chính" in text
        assert "Traceback" not in text and "commune_page(" not in text
        # never a wall of "<10": at most the commune table's marks, here none at all
        assert text.count("<10") <= 2
    # the index links the province to its communes, and each commune to its page
    index = BeautifulSoup((run.out_dir / "communes.html").read_text(encoding="utf-8"), "html.parser")
    hrefs = {a["href"] for a in index.find_all("a")}
    assert {f"{slugify(province)}/{slugify(c)}.html" for c in names} <= hrefs
    assert f"{slugify(province)}.html" in hrefs  # the province page exists now (relinked)
    own = BeautifulSoup((folder / "index.html").read_text(encoding="utf-8"), "html.parser")
    assert {f"../{slugify(province)}/{slugify(c)}.html" for c in names} <= {a["href"] for a in own.find_all("a")}
    # the province run's own index and manifest are untouched by the commune run, and link back
    assert json.loads((run.out_dir / "manifest.json").read_text())["level"] == "province"
    main = BeautifulSoup((run.out_dir / "index.html").read_text(encoding="utf-8"), "html.parser")
    assert f"{slugify(province)}/index.html" in {a["href"] for a in main.find_all("a")}


def test_province_page_commune_table_links_its_communes(commune_run):
    from bs4 import BeautifulSoup
    from povdyn.report import slugify

    run, province_run, province = commune_run
    assert province_run.status == "complete", province_run
    page = BeautifulSoup((run.out_dir / f"{slugify(province)}.html").read_text(encoding="utf-8"), "html.parser")
    table = page.find("table", class_="povdyn-communes")
    links = [a["href"] for a in table.find_all("a")]
    assert links and all((run.out_dir / href).is_file() for href in links)
    assert len(links) == len(table.find("tbody").find_all("tr"))


# --------------------------------------------------------------------------- the attacker
def _number(text):
    if not isinstance(text, str) or not text or text.startswith("<") or text in ("x", "—"):
        return None
    return float(text.replace(".", "").replace(",", ".").replace("−", "-"))


def _published_view(pc):
    """What an outsider reads on the pages of one province: every commune page's
    headline and flows chart, the province page's commune table, and (the safe side)
    every count of the province itself. Returns published cells, truth, relations
    and printed shares, keyed (None, commune, column) as povdyn.communes keys them."""
    from bs4 import BeautifulSoup
    from povdyn.plots import dynamics as charts

    truth = {(None, r, c): float(pc.values.at[r, c]) for r in pc.values.index for c in communes.COUNT_COLUMNS
             if pd.notna(pc.values.at[r, c])}
    published = {k: None for k in truth}
    for c in pc.province_shown:  # what the province page prints (its headline and flows chart)
        published[(None, communes.PROVINCE, c)] = truth[(None, communes.PROVINCE, c)]
    shares = []

    def put(commune, col, text):
        value = _number(text)
        if value is not None:
            published[(None, commune, col)] = value

    for commune in pc.communes:  # each commune page
        page = communes.CommunePage(data=communes.commune_page_data(pc, commune), province=pc, commune=commune,
                                    period=pc.period)
        table = communes.headline_table(page)
        shown_keys = [k for k in communes.HEADLINE_CELLS if k not in table.attrs["hidden"]]
        for i, key in enumerate(shown_keys):
            num, den = communes.HEADLINE_CELLS[key]
            put(commune, num, table.iat[i, 1])
            if den:
                put(commune, den, table.iat[i, 2])
                rate = _number(table.iat[i, 3])
                if rate is not None:
                    shares.append((rate / 100, (None, commune, num), (None, commune, den)))
        flows = pagedata.flows(page.data, page.period)
        figure = charts.flows(flows, hidden=communes.flows_hidden(page), min_cell=pc.min_cell)
        for k, text in enumerate(t.get_text() for t in figure.axes[0].texts):
            a, b = communes.STATES[k // 3], communes.STATES[k % 3]
            if "\n" in text:
                pct, n = text.split("\n")
                put(commune, f"flow_{a}_{b}", n)
                shares.append((float(pct.rstrip("%").replace(",", ".")) / 100, (None, commune, f"flow_{a}_{b}"),
                               (None, commune, communes.FLOW_ROWS[a])))
    html = BeautifulSoup(communes.commune_table_html(pc), "html.parser")  # the province page's table
    for tr in html.find("tbody").find_all("tr"):
        cells = [td.get_text() for td in tr.find_all("td")]
        commune = cells[0]
        put(commune, "households", cells[1])
        put(commune, "poor", cells[2])
        put(commune, "exits", cells[5])
        for text, num, den in ((cells[3], "poor", "households"), (cells[6], "exits", "at_risk"),
                               (cells[8], "relapsed", "followed")):
            rate = _number(text)
            if rate is not None:
                shares.append((rate / 100, (None, commune, num), (None, commune, den)))
    relations = [r for r in communes._relations(pc.values) if all(c in truth for c in r.cells)]
    return published, truth, relations, shares


def test_differencing_attack_recovers_no_small_commune_count(aggregates):
    """tests/differencing_attack.py over the pages of the demo's largest province read
    together (every commune page, the province's commune table, all province counts):
    no count below 10 comes back by subtraction, shares or a joint solve. The same
    attack on cell-only suppression of the same pages does recover small counts."""
    import differencing_attack as attacker

    pc = aggregates
    published, truth, relations, shares = _published_view(pc)
    assert any(v is None for v in published.values()) and any(v is not None for k, v in published.items()
                                                               if k[1] != communes.PROVINCE)
    assert attacker.small_recovered(published, truth, relations, shares, share_decimals=2) == {}
    # control: only the cells below 10 hidden
    naive = {k: (None if truth[k] < 10 else truth[k]) for k in truth}
    marks = {k: "<10" if v is None else "" for k, v in naive.items()}
    assert attacker.bounds_attack(naive, marks, relations)
    # and the bounds the labels give ("<10": 0-9, "x": at least 10) pin none either
    marks = {k: pc.mark(k[1], k[2]) or ("" if v is not None or k[1] != communes.PROVINCE
                                        else "<10" if truth[k] < 10 else "x") for k, v in published.items()}
    assert attacker.bounds_attack(published, marks, relations) == {}


def test_commune_level_names_a_province_without_communes(commune_data, tmp_path):
    from povdyn.errors import PovdynError
    from povdyn.report import run_report

    with pytest.raises(PovdynError, match="Tỉnh Không Có"):
        run_report(period=PERIOD, regions="Tỉnh Không Có", out_dir=tmp_path, data_dir=commune_data,
                   progress=False, level="commune")


def test_commune_batch_ctrl_c_and_lock_as_for_province_pages(commune_data, tmp_path):
    """The commune level runs through the same batch machinery: a second run into the
    same folder is refused, Ctrl-C stops it within seconds with an "interrupted"
    commune manifest and index, and no page of the run is presented as rendered. The
    pages are a slow stand-in notebook (it records its commune and waits)."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import tempfile
    import time

    import nbformat

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('region = ""\ncommune = ""\nperiod = "2025Q4"\nwithin = 2\nengine = None\n'
                                       'data_dir = None\nlang = "vi"')
    params.metadata["tags"] = ["parameters"]
    body = nbformat.v4.new_code_cell("import os, pathlib, time\n"
                                     "pathlib.Path(os.environ['MARKS'], commune).write_text(region)\n"
                                     "time.sleep(120)")
    nb.cells = [params, body]
    template = tmp_path / "slow.ipynb"
    nbformat.write(nb, template)
    marks = tmp_path / "marks"
    marks.mkdir()
    out = tmp_path / "reports"
    root = Path(__file__).resolve().parents[1]
    short_tmp = Path(tempfile.mkdtemp(prefix="pvc-", dir="/tmp"))
    env = {**os.environ, "PYTHONPATH": str(root / "lib"), "MARKS": str(marks), "TMPDIR": str(short_tmp)}
    province = _smallest_province(commune_data)
    args = [sys.executable, "-m", "povdyn.cli", "-q", "report", "--level", "commune", "--regions", province,
            "--notebook", str(template), "--workers", "2", "--data-dir", str(commune_data), "--out", str(out),
            "--period", PERIOD]
    slow = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    end = time.monotonic() + 120
    while len(list(marks.iterdir())) < 2 and time.monotonic() < end:
        time.sleep(0.2)
    assert len(list(marks.iterdir())) == 2, "two commune pages never started"
    run_dir = out / PERIOD
    assert json.loads((run_dir / "communes.json").read_text())["status"] == "running"
    second = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
    assert second.returncode == 2 and "already writing into" in second.stderr
    os.killpg(slow.pid, signal.SIGINT)
    started = time.monotonic()
    assert slow.wait(timeout=60) == 130, slow.stderr.read()
    assert time.monotonic() - started < 15
    manifest = json.loads((run_dir / "communes.json").read_text())
    assert manifest["status"] == "interrupted"
    assert {r["state"] for r in manifest["regions"]} == {"not_rendered"}
    assert "bị dừng giữa chừng" in (run_dir / "communes.html").read_text(encoding="utf-8")
    assert not list(run_dir.rglob("*.log"))
    assert [p.name for p in run_dir.rglob("*/*.html")] == ["index.html"]  # the province's index, no page
    assert "bị dừng giữa chừng" in next(run_dir.rglob("*/index.html")).read_text(encoding="utf-8")
    assert not [p for p in run_dir.rglob(".*") if p.name != ".povdyn-report.lock"], "partial files left"
    assert not list(short_tmp.glob("povdyn-ipc-*"))
    short_tmp.rmdir()


def test_page_links_follow_the_pages_that_exist(tmp_path):
    """A province page rendered before its commune pages shows the names as text; the
    commune run then turns them into links (relink_pages), and back into text if a
    page is gone. Hidden links (the index's "communes" link) are links or nothing."""
    from povdyn.report import link_existing_pages, relink_pages

    page = ('<td><span class="povdyn-page-link" data-povdyn-href="ha-noi/xa-a.html">Xã A</span></td>'
            '<span class="povdyn-page-link povdyn-hidden-link" data-povdyn-href="ha-noi/index.html">(x)</span>')
    (tmp_path / "ha-noi.html").write_text(page, encoding="utf-8")
    relink_pages(tmp_path)
    assert "<a " not in (tmp_path / "ha-noi.html").read_text(encoding="utf-8")
    (tmp_path / "ha-noi").mkdir()
    (tmp_path / "ha-noi" / "xa-a.html").write_text("page", encoding="utf-8")
    (tmp_path / "ha-noi" / "index.html").write_text("index", encoding="utf-8")
    relink_pages(tmp_path)
    linked = (tmp_path / "ha-noi.html").read_text(encoding="utf-8")
    assert 'href="ha-noi/xa-a.html">Xã A</a>' in linked and 'href="ha-noi/index.html">(x)</a>' in linked
    (tmp_path / "ha-noi" / "xa-a.html").unlink()
    again = link_existing_pages(linked, tmp_path)
    assert '<span class="povdyn-page-link" data-povdyn-href="ha-noi/xa-a.html">Xã A</span>' in again
    assert link_existing_pages(again, tmp_path) == again


def test_all_communes_register_covers_every_2025_commune_of_a_province():
    """`write_demo(all_communes=True)` (the register of the all-3,321-pages run): every
    2025 commune that a province's old communes went to (the official crosswalk) has
    households at the last period, old names before July 2025 and new ones after.
    Only that province's households are simulated (they are a run of consecutive
    household numbers), so the test is small; the default demo samples communes and
    misses some (the control)."""
    from povdyn.geo import commune_crosswalk_2025
    from povdyn.synth import simulate

    households, seed = 120_000, 2025
    geo = simulate._geography(households, seed, all_communes=True)
    crosswalk = commune_crosswalk_2025()
    units = crosswalk.groupby("old_province")["old_commune"].nunique()
    old_province = units[crosswalk[crosswalk["split"]]["old_province"].unique()].idxmin()  # small, with a split
    i = int(np.flatnonzero(geo.provinces["old_province"].to_numpy() == old_province)[0])
    numbers = np.arange(1, households + 1)
    mine = numbers[geo.commune_province[simulate._all_communes_commune(geo, numbers, households)] == i]
    assert len(mine) == mine[-1] - mine[0] + 1  # one run of numbers
    sim = simulate._simulate_chunk(0, int(mine[0]), len(mine), households, seed, geo)
    panel = simulate._frame(sim, simulate._rows(sim, geo, "quarter"), simulate._identifiers(sim, geo, seed, 0),
                            geo, "quarter")
    expected = set(crosswalk.loc[crosswalk["old_province"] == old_province, "commune_2025"])
    last = panel[(panel["period"] == "2025Q4") & panel["status"].notna()]
    assert set(last["commune"]) == expected
    assert last.groupby("commune").size().min() >= simulate.ALL_COMMUNES_MIN_PER_PIECE // 2
    before = panel[panel["period"] == "2025Q2"]
    old = crosswalk.loc[crosswalk["old_province"] == old_province]
    assert set(before["province"]) == {old_province} and before["district"].notna().all()
    assert set(zip(before["district"], before["commune"])) == set(zip(old["old_district"], old["old_commune"]))
    # the default demo of the same size samples communes: it misses some of them
    sampled = simulate._geography(households, seed)
    s, c = sampled.commune_start[i], sampled.commune_count[i]
    pieces = {sampled.piece_name[k] for j in range(s, s + c)
              for k in range(sampled.piece_start[j], sampled.piece_start[j] + sampled.piece_count[j])}
    assert pieces < expected


def test_fingerprint_of_a_folder_of_period_files_sees_each_file(tmp_path):
    """The commune tables' cache key follows every period file of ingest's panel.parquet/
    folder: a file written again in place leaves the folder's own size and mtime as they
    were, and must still give a new key (else a page would show the old numbers)."""
    import os
    import time

    from povdyn.communes import _fingerprint

    folder = tmp_path / "panel.parquet"
    folder.mkdir()
    (folder / "period-2024.parquet").write_bytes(b"a" * 10)
    (folder / "period-2025.parquet").write_bytes(b"b" * 10)
    before = _fingerprint(folder)
    time.sleep(0.01)
    with open(folder / "period-2025.parquet", "r+b") as f:  # same size, same folder entries
        f.write(b"c" * 10)
    os.utime(folder / "period-2025.parquet", ns=(time.time_ns(), time.time_ns() + 10**9))
    assert _fingerprint(folder) != before
