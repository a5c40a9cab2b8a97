"""The programme section's analysis file (povdyn.programs.build_analysis_file), built with
arrays per cohort since issue 15 §4 (six models on each of ~35 report pages): checked
household by household against a register planted by hand (methods.md, programme
effectiveness: baseline poor at t0 = s - 1, sustained exit = not poor at each of the
next `within` reviews, clean controls without another programme by s)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from povdyn.programs import annual_reviews, build_analysis_file

# status at the annual reviews 2021-2024 (None: no row that year) and province
HOUSEHOLDS = {
    "A": (["poor", "poor", "non_poor", "poor"], "P1"),  # credit 2023: exits at once, poor before
    "B": (["non_poor", "poor", "poor", "near_poor"], "P1"),  # credit 2023: still poor in 2023
    "C": (["poor", "poor", "near_poor", "near_poor"], "P1"),  # housing 2022: not a clean control
    "D": (["poor", "poor", "near_poor", "non_poor"], "P1"),  # no support: a control that exits
    "E": (["poor", "poor", None, None], "P1"),  # no support, removed: a censored control
    "F": (["near_poor", "near_poor", "poor", "poor"], "P1"),  # not poor at baseline
    "G": (["poor", "poor", "poor", "poor"], "P2"),  # no support, in a province without credit
    "H": (["poor", "non_poor", "non_poor", "poor"], "P1"),  # credit 2023, not poor at baseline
    "K": (["poor", "poor", "poor", "non_poor"], "P1"),  # credit 2024: a control of the 2023 cohort
    "L": ([None, "poor", "poor", "poor"], "P1"),  # no support, first seen in 2022: no poor review before
}


def _register():
    rows = [dict(household_id=h, period=f"{2021 + i}Q4", status=s, province_2025=prov, commune=f"X{h in 'ABCD'}",
                 income_pc_month=1_500_000 + 100_000 * i, household_size=4)
            for h, (statuses, prov) in HOUSEHOLDS.items() for i, s in enumerate(statuses) if s is not None]
    support = pd.DataFrame({"household_id": ["A", "B", "C", "H", "K"],
                            "program": ["credit", "credit", "housing", "credit", "credit"],
                            "start_year": [2023, 2023, 2022, 2023, 2024], "amount_vnd": [5e6, 3e6, 1e6, 2e6, 4e6]})
    return annual_reviews(pd.DataFrame(rows)), support


def test_the_analysis_file_is_the_planted_design_household_by_household():
    ann, support = _register()
    af, counts = build_analysis_file(ann, support, "credit", within=1)
    first = af[af["cohort"] == 2023].set_index("household_id")
    # C had housing by 2023, E is censored, F and H were not poor, G lives where credit is not run
    assert list(first.index) == ["A", "B", "D", "K", "L"]
    assert first["treated"].to_dict() == {"A": 1, "B": 1, "D": 0, "K": 0, "L": 0}
    assert first["sustained_exit"].to_dict() == {"A": 1, "B": 0, "D": 1, "K": 0, "L": 0}
    assert first["exit_event"].to_dict() == {"A": 1, "B": 0, "D": 1, "K": 0, "L": 0}
    assert first["exit_duration"].to_dict() == {"A": 1, "B": 1, "D": 1, "K": 1, "L": 1}
    assert first["poor_before"].to_dict() == {"A": 1.0, "B": 0.0, "D": 1.0, "K": 1.0, "L": 0.0}
    assert first["amount_vnd"].fillna(-1).to_dict() == {"A": 5e6, "B": 3e6, "D": -1, "K": -1, "L": -1}
    assert first["commune"].to_dict() == {"A": "XTrue, P1", "B": "XTrue, P1", "D": "XTrue, P1", "K": "XFalse, P1",
                                          "L": "XFalse, P1"}
    assert (first["t0"] == 2022).all()
    assert np.allclose(first["log_income"], np.log(1_600_000))  # covariates at the baseline review
    # the 2024 cohort (baseline 2023): K treated and out at once; F a control still poor;
    # B had credit before 2024, so it is neither
    second = af[af["cohort"] == 2024].set_index("household_id")
    assert second["treated"].to_dict() == {"F": 0, "K": 1, "L": 0}
    assert second["sustained_exit"].to_dict() == {"F": 0, "K": 1, "L": 0}
    assert counts == dict(treated_records=4, treated_not_poor_at_baseline=1, censored_treated=0,
                          censored_controls=1, cohorts_without_followup=0)
    # controls="not_this_program": C (housing) is a control of the 2023 cohort too
    af, _ = build_analysis_file(ann, support, "credit", within=1, controls="not_this_program")
    assert list(af[af["cohort"] == 2023]["household_id"]) == ["A", "B", "C", "D", "K", "L"]


def test_the_forest_plot_is_drawn_only_when_a_model_has_an_estimate(tmp_path, monkeypatch):
    """A province of a small register has too few supported households for any model:
    its programme section shows the table of verdicts and no forest plot (empty axes).
    With estimates (tests/test_pages.py, the national page of a larger register) the
    plot is drawn."""
    import IPython.display

    from povdyn import tables
    from test_report import write_small_register

    data_dir = write_small_register(tmp_path / "processed", households=3000, seed=5, tiny=False)
    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, *a, **k: shown.append(type(obj).__name__))
    province = pd.read_parquet(data_dir / "panel.parquet", columns=["province_2025"]).value_counts().index[-1][0]
    section = tables.programmes_section(tables.page_data(data_dir, province), data_dir, "2025Q4")
    assert section["evaluation"].table["estimate"].isna().all() and len(section["table"])
    assert section["figure"] is None and "Image" not in shown and "HTML" in shown
