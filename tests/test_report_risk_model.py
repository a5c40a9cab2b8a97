"""The report's early-warning model is fitted once per run, in the parent, and handed to
every page (issue 15 §4: it was fitted once per worker kernel, 5.7 s each on the demo).
Pages show the same section as with a model fitted where the page runs; a failed fit
fails the run and its pages, naming the cause; a model is never used on another
register. The pages here are the template's own parameters and early-warning cells."""
from __future__ import annotations

import json
import pickle
import threading
import time
from pathlib import Path

import nbformat
import pytest

from povdyn import report
from povdyn.errors import PovdynError
from povdyn.report import RISK_MODEL_FILE, fit_risk_model, handed_risk_model, run_report

# 30 relapses within one review in the training cohorts and 30 in the validation cohort need about 40,000 households
# (fewer: the section says there are too few events, and no model is handed)
HOUSEHOLDS = 40_000
PROVINCE_PAGES = 1


@pytest.fixture(scope="module")
def register(tmp_path_factory) -> Path:
    """An annual synthetic register (identifiers dropped) with its support records."""
    from povdyn.synth import generate

    reg = generate(households=HOUSEHOLDS, seed=11, frequency="year")
    out = tmp_path_factory.mktemp("processed")
    reg.panel.drop(columns=["head_name", "id_card", "phone", "address"]).to_parquet(out / "panel.parquet",
                                                                                    index=False)
    reg.support.to_parquet(out / "support.parquet", index=False)
    return out


@pytest.fixture(scope="module")
def small_register(tmp_path_factory) -> Path:
    """A register too small to fit the model (the parent's fit is what fails here)."""
    from povdyn.synth import generate

    out = tmp_path_factory.mktemp("small")
    reg = generate(households=2_000, seed=3, frequency="year")
    reg.panel.drop(columns=["head_name", "id_card", "phone", "address"]).to_parquet(out / "panel.parquet",
                                                                                    index=False)
    return out


@pytest.fixture(scope="module")
def section_template(tmp_path_factory) -> Path:
    """The report template cut down to its parameters and early-warning cells, plus a
    cell that prints how many models the page's kernel fitted itself."""
    nb = nbformat.read(report.template_notebook(), as_version=4)
    keep = [c for c in nb.cells if "parameters" in c.metadata.get("tags", []) or c.get("id") == "early-warning"]
    assert len(keep) == 2, "the template lost its parameters or early-warning cell"
    nb.cells = [keep[0], nbformat.v4.new_code_cell("from povdyn import tables"), keep[1],
                nbformat.v4.new_code_cell("from povdyn.risk import _register_model\n"
                                          "print('KERNEL_FITS', _register_model.cache_info().misses)")]
    path = tmp_path_factory.mktemp("template") / "early_warning.ipynb"
    nbformat.write(nb, path)
    return path


def _page_outputs(run, slug: str) -> tuple[str, int]:
    """The section's paragraph as the page shows it, and the kernel's own fits."""
    nb = nbformat.read(run.out_dir / "notebooks" / f"{slug}.ipynb", as_version=4)
    texts = [o["data"]["text/markdown"] for c in nb.cells for o in c.get("outputs", [])
             if "text/markdown" in o.get("data", {})]
    fits = [int(line.split()[1]) for c in nb.cells for o in c.get("outputs", [])
            for line in o.get("text", "").splitlines() if line.startswith("KERNEL_FITS")]
    return texts[-1], fits[0]


def _provinces(register: Path) -> list[str]:
    import pandas as pd

    names = pd.read_parquet(register / "panel.parquet", columns=["province_2025"])["province_2025"]
    return list(names.value_counts().index[:PROVINCE_PAGES])


def test_pages_show_the_section_of_a_model_fitted_where_they_run(register, section_template, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from povdyn.report import resolve_period
    from povdyn.risk import early_warning_section

    regions = ["national", *_provinces(register)]
    period = resolve_period(register)
    with ThreadPoolExecutor(1) as here:
        # a model fitted here, as a page's kernel fits it without a handed model (beside
        # the run, whose kernel mostly waits for the run's own fit)
        fitted_here = here.submit(lambda: {r: early_warning_section(register, as_of=period, region=r, within=1,
                                                                    lang="vi") for r in regions})
        # one worker renders both pages in turn (one kernel to start); the model is fitted
        # in this process beside them as in any run of more than one page
        run = run_report(period="latest", regions=regions, workers=1, out_dir=tmp_path, data_dir=register,
                         notebook=section_template, progress=False)
        fitted_here = fitted_here.result()
    assert not run.failed, run
    manifest = json.loads(run.manifest_path.read_text(encoding="utf-8"))
    assert manifest["early_warning_fit"]["outcome"] == "model"
    for region in regions:
        shown, kernel_fits = _page_outputs(run, report.slugify(region))
        assert kernel_fits == 0  # the page used the run's model
        assert fitted_here[region]["model"] is not None
        assert shown == fitted_here[region]["text"]


def test_a_failed_fit_fails_the_run_and_its_pages_naming_the_cause(small_register, section_template, tmp_path,
                                                                    monkeypatch):
    import povdyn.risk

    def broken(*args, **kwargs):
        raise RuntimeError("planted failure of the fit")

    monkeypatch.setattr(povdyn.risk, "relapse_risk", broken)  # the parent's fit only
    with pytest.raises(PovdynError, match="planted failure of the fit"):
        run_report(period="latest", regions=["national", *_provinces(small_register)], workers=1,
                   out_dir=tmp_path, data_dir=small_register, notebook=section_template, progress=False)
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["status"] == "failed"
    assert manifest["early_warning_fit"]["outcome"] == "error"
    assert [p.name for p in run_dir.glob("*.html")] == ["index.html"]  # no page looks fine
    logs = [p.read_text(encoding="utf-8") for p in (run_dir / "logs").glob("*.log")]
    assert logs and all("planted failure of the fit" in text for text in logs)


def _outcome(path: Path, **fields) -> None:
    path.write_bytes(pickle.dumps(fields))


def test_a_handed_model_of_another_register_is_refused(tmp_path, small_register):
    path = tmp_path / RISK_MODEL_FILE
    source, mtime_ns = report._panel_key(small_register)
    _outcome(path, panel=[source, mtime_ns + 1], within=1, model=None)  # the panel changed since
    with pytest.raises(PovdynError, match="was computed on .* not on"):
        handed_risk_model(path, small_register)


def test_too_few_events_or_a_finished_run_hand_no_model(tmp_path, small_register):
    path = tmp_path / RISK_MODEL_FILE
    _outcome(path, panel=report._panel_key(small_register), within=1, too_few="too few relapses to fit")
    assert handed_risk_model(path, small_register) is None  # the section fits and says why
    assert handed_risk_model(tmp_path / "gone" / RISK_MODEL_FILE, small_register) is None  # the run is over
    assert handed_risk_model(None, small_register) is None


def test_a_page_waits_for_the_model_being_fitted(tmp_path, small_register):
    path = tmp_path / RISK_MODEL_FILE

    def later():
        time.sleep(0.3)
        outcome = dict(panel=report._panel_key(small_register), within=1, model="m")
        report.atomic_write(path, pickle.dumps(outcome))

    writer = threading.Thread(target=later)
    writer.start()
    try:
        assert handed_risk_model(path, small_register, timeout=30) == "m"
    finally:
        writer.join()
    with pytest.raises(PovdynError, match="not ready"):
        handed_risk_model(tmp_path / "never.pickle", small_register, timeout=0.2)


def test_the_fit_writes_too_few_for_a_small_register(small_register, tmp_path):
    """Too few relapses: the outcome says so, and the pages then fit and say it."""
    outcome = fit_risk_model(small_register, tmp_path / RISK_MODEL_FILE)
    assert "too_few" in outcome and "model" not in outcome
    assert handed_risk_model(tmp_path / RISK_MODEL_FILE, small_register) is None
    # a run that ended before its fit removed its temporary folder: nothing is left behind
    fit_risk_model(small_register, tmp_path / "povdyn-ipc-run-gone" / RISK_MODEL_FILE)
    assert not (tmp_path / "povdyn-ipc-run-gone").exists()


class _ScoredModel:
    """Stands in for a RiskModel: counts what it scores."""
    calls: list = []

    def scores(self, as_of=None, lang="vi", reasons=3):
        import pandas as pd

        self.calls.append((as_of, lang))
        return pd.DataFrame({"risk": [0.5], "as_of": [as_of]})


def test_the_run_period_is_scored_once_in_the_parent(tmp_path, small_register):
    """The pages read the scores the parent computed for the run's period (a copy each:
    a page filters its region); other periods are scored by the model as usual."""
    import pandas as pd

    Model = _ScoredModel
    parent = Model().scores("2025Q4", "vi")
    path = tmp_path / RISK_MODEL_FILE
    _outcome(path, panel=report._panel_key(small_register), within=1, model=Model(),
             scores={report._score_key("2025Q4", "vi"): parent})
    model = handed_risk_model(path, small_register)
    Model.calls.clear()
    first = model.scores(as_of="2025Q4", lang="vi")
    first.loc[0, "risk"] = 0.0  # a page's changes stay on its copy
    pd.testing.assert_frame_equal(model.scores(as_of="2025Q4", lang="vi"), parent)
    assert Model.calls == []
    model.scores(as_of="2024Q4", lang="vi")
    assert Model.calls == [("2024Q4", "vi")]


def test_a_model_without_out_of_time_validation_gives_a_section_that_says_so(tmp_path):
    """Found by the report's engineer: 30,000 annual households (seed 11) have enough
    relapses to fit but none left for an out-of-time test, and the page failed with
    AttributeError 'auc'. The section must publish the scores and say plainly that the
    model is not validated, never quote an AUC it does not have."""
    from povdyn.risk import early_warning_section
    from povdyn.synth import generate

    reg = generate(households=30_000, seed=11, frequency="year")
    reg.panel.drop(columns=["head_name", "id_card", "phone", "address"]).to_parquet(tmp_path / "panel.parquet",
                                                                                    index=False)
    reg.support.to_parquet(tmp_path / "support.parquet", index=False)
    for lang, words in (("en", "not been validated out of time"), ("vi", "chưa được kiểm định")):
        section = early_warning_section(tmp_path, within=1, lang=lang)
        assert section["model"] is not None and section["model"].test_period is None
        assert words in section["text"] and "AUC" not in section["text"]


def test_the_calibration_slope_needs_only_statsmodels_glm_and_finds_the_planted_slope():
    """The parent's fit computes calibration slopes with statsmodels' GLM modules, not
    statsmodels.api (0.4 CPU-s more to import in every report run); the slope and
    intercept are still the logistic recalibration's: planted slope 0.6 and
    intercept -0.3 on 40,000 draws."""
    import subprocess
    import sys

    import numpy as np

    from povdyn.risk import calibration_slope_intercept

    code = ("import sys, numpy as np; from povdyn.risk import calibration_slope_intercept; "
            "calibration_slope_intercept(np.array([0, 1, 0, 1, 1.]), np.array([.2, .7, .4, .5, .9])); "
            "print('statsmodels.api' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"
    rng = np.random.default_rng(7)
    p = rng.uniform(0.02, 0.6, 40_000)
    lp = np.log(p / (1 - p))
    y = rng.random(len(p)) < 1 / (1 + np.exp(-(-0.3 + 0.6 * lp)))
    slope, _ = calibration_slope_intercept(y, p)
    assert slope == pytest.approx(0.6, abs=0.05)
    # calibration in the large: with the slope fixed at 1, the mean offset that matches the events
    _, intercept = calibration_slope_intercept(rng.random(len(p)) < 1 / (1 + np.exp(-(-0.3 + lp))), p)
    assert intercept == pytest.approx(-0.3, abs=0.05)


def test_the_section_selects_support_records_in_the_engine(register, monkeypatch):
    """A page that fits the section's model itself reads support.parquet through the
    panel's engine (``programs.support_records``, only the columns used), never whole
    into pandas; the model still has its support features."""
    import pandas as pd

    from povdyn import programs
    from povdyn.risk import _register_model, early_warning_section

    read, selected = [], []
    real_read, real_select = pd.read_parquet, programs.support_records

    def spy_read(path, *args, **kwargs):
        read.append(Path(str(path)).name)
        return real_read(path, *args, **kwargs)

    def spy_select(source, panel):
        out = real_select(source, panel)
        selected.append(out)
        return out

    monkeypatch.setattr(pd, "read_parquet", spy_read)
    monkeypatch.setattr(programs, "support_records", spy_select)
    _register_model.cache_clear()  # a page's own fit, not one an earlier test left in this process
    section = early_warning_section(register, region=_provinces(register)[0], within=1)
    _register_model.cache_clear()
    assert "support.parquet" not in read
    assert len(selected) == 1 and list(selected[0].columns) == list(programs.SUPPORT_COLUMNS)
    assert len(selected[0]) == len(real_read(register / "support.parquet"))  # the whole register's model
    assert "supported" in section["model"]._design.columns
