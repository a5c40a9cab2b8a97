"""Every notebook in notebooks/ runs top to bottom with papermill on a small synthetic
register (data_dir parameter), in English and Vietnamese, and is committed stripped."""
from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pytest

from povdyn.report import execute_notebook
from test_report import write_small_register

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def _run(args):
    notebook, out, params = args
    try:
        execute_notebook(notebook, out, params, timeout=600)
        return None
    except Exception as exc:  # returned, so one failure does not hide the others
        return f"{type(exc).__name__}: {exc}"[-3000:]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """Execute all notebooks once, two at a time (the English run of the report too)."""
    data = write_small_register(tmp_path_factory.mktemp("nb_data"), households=1200, seed=5, tiny=False)
    out = tmp_path_factory.mktemp("nb_out")
    jobs = {}
    for nb in NOTEBOOKS:
        lang = "en" if nb.stem == "quarterly_report" else "vi"
        jobs[nb.name] = (str(nb), str(out / nb.name), dict(data_dir=str(data), period="2025Q4", lang=lang))
        if nb.stem == "commune_report":  # its register needs the 2025 communes ingest adds
            import pandas as pd

            with_communes = write_small_register(tmp_path_factory.mktemp("nb_communes"), households=1200,
                                                 seed=5, tiny=False, communes=True)
            rows = pd.read_parquet(with_communes / "panel.parquet", columns=["province_2025", "commune_2025"])
            province, commune = rows.value_counts().index[0]
            jobs[nb.name][2].update(data_dir=str(with_communes), region=province, commune=commune)
    with ProcessPoolExecutor(max_workers=2, mp_context=get_context("spawn")) as pool:
        errors = dict(zip(jobs, pool.map(_run, jobs.values())))
    return out, errors


@pytest.mark.parametrize("notebook", [p.name for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(executed, notebook):
    out, errors = executed
    assert errors[notebook] is None, errors[notebook]
    nb = json.loads((out / notebook).read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not any(o.get("output_type") == "error" for o in c.get("outputs", [])) for c in code)


def test_english_report_has_english_headings(executed):
    out, errors = executed
    assert errors["quarterly_report.ipynb"] is None
    text = (out / "quarterly_report.ipynb").read_text(encoding="utf-8")
    for heading in ("Headline figures", "Progress against targets", "Flows between statuses",
                    "Sustained exit", "Provinces compared"):
        assert heading in text


@pytest.mark.parametrize("notebook", [p.name for p in NOTEBOOKS])
def test_committed_stripped_with_a_parameters_cell(notebook):
    nb = json.loads((NOTEBOOKS[0].parent / notebook).read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c.get("outputs") == [] and c.get("execution_count") is None for c in code)
    params = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1
    source = "".join(params[0]["source"])
    for name in ("region", "engine", "data_dir", "lang"):
        assert f"{name} =" in source
    if notebook.startswith(("01", "02", "03", "04", "quarterly")):  # they read it: changes of standard noted, flows and reclassifications under it
        assert "standard =" in source


@pytest.mark.parametrize("notebook", [p.name for p in NOTEBOOKS])
def test_every_parameter_is_read(notebook):
    """A parameter the notebook never reads would be a setting that does nothing (issue
    15 §2: every notebook parameter is real): each name the parameters cell assigns is
    read by a later code cell."""
    import ast

    nb = json.loads((NOTEBOOKS[0].parent / notebook).read_text(encoding="utf-8"))
    code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    tagged = [i for i, c in enumerate(c for c in nb["cells"] if c["cell_type"] == "code")
              if "parameters" in c.get("metadata", {}).get("tags", [])]
    params = [target.id for node in ast.parse(code[tagged[0]]).body for target in node.targets]
    read = {node.id for cell in code[tagged[0] + 1:] for node in ast.walk(ast.parse(cell))
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
    assert not [p for p in params if p not in read], f"parameters never read: {[p for p in params if p not in read]}"
