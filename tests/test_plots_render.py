"""How a report figure becomes its PNG (povdyn.plots.show): a constrained-layout
figure is saved at its own size (cropping it to what is drawn costs one more pass of
text layout, a third of a figure's time on a page); a figure with a note below its
canvas is cropped so that the note is in the picture."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image


@pytest.fixture
def shown(monkeypatch):
    import IPython.display

    images = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, *a, **k: images.append(obj))
    return images


def _size(image) -> tuple[int, int]:
    return Image.open(io.BytesIO(image.data)).size


def _provinces(n_small: int) -> pd.DataFrame:
    rows = [dict(province_2025=f"Tỉnh {i}", rate=0.1 + i / 100, ci_low=0.05, ci_high=0.2,
                 at_risk=200, exits=40) for i in range(6)]
    rows += [dict(province_2025=f"Tỉnh nhỏ {i}", rate=0.3, ci_low=0.1, ci_high=0.5, at_risk=5, exits=2)
             for i in range(n_small)]
    return pd.DataFrame(rows)


def test_a_constrained_figure_keeps_its_size_and_a_note_below_it_is_kept(shown):
    from povdyn.plots import dynamics as charts, show

    dpi = 110
    plain = charts.provinces_ranked(_provinces(0))
    width, height = (np.asarray(plain.get_size_inches()) * dpi).round().astype(int)
    show(plain, dpi=dpi)
    assert _size(shown[-1]) == (width, height)

    noted = charts.provinces_ranked(_provinces(2))  # two provinces left out: named in a note
    assert noted.texts, "the figure should carry a note"
    canvas_height = round(noted.get_size_inches()[1] * dpi)
    show(noted, dpi=dpi)
    assert _size(shown[-1])[1] > canvas_height  # cropped to include the note below the canvas


def _group_rates(by: str, rows: list[tuple]) -> pd.DataFrame:
    """group_rates-shaped rows: (value, poor_rate, poor_ci, exit_rate, exit_ci, poor_hidden, exit_hidden)."""
    return pd.DataFrame([{by: value, "poor_rate": poor, "poor_ci_low": poor_ci[0], "poor_ci_high": poor_ci[1],
                          "exit_rate": ex, "exit_ci_low": ex_ci[0], "exit_ci_high": ex_ci[1],
                          "poor_suppressed": poor_hidden, "exit_suppressed": exit_hidden}
                         for value, poor, poor_ci, ex, ex_ci, poor_hidden, exit_hidden in rows])


def test_groups_figure_draws_each_known_rate_and_its_interval_and_hides_suppressed_ones():
    """The group comparison (matplotlib since issue 15; seaborn.objects before) draws,
    per panel, one bar per group whose length is the planted rate and one line spanning
    its planted 95% interval; a suppressed group has neither, only a dash."""
    from matplotlib.collections import LineCollection

    from povdyn.labels import group_label, label
    from povdyn.plots import dynamics as charts

    rates = {"area": _group_rates("area", [("rural", 0.12, (0.10, 0.14), 0.31, (0.25, 0.37), False, False),
                                           ("urban", 0.04, (0.02, 0.07), 0.50, (0.2, 0.8), False, True)]),
             "ethnic_minority": _group_rates("ethnic_minority", [
                 (True, 0.30, (0.26, 0.34), 0.22, (0.18, 0.26), False, False),
                 (False, 0.05, (0.045, 0.055), 0.40, (0.35, 0.45), False, False)])}
    fig = charts.groups(rates, lang="vi")
    names = [group_label("area", "rural"), group_label("area", "urban"),
             group_label("ethnic_minority", True), group_label("ethnic_minority", False)]
    poor_ax, exit_ax = fig.axes
    assert [t.get_text() for t in poor_ax.get_yticklabels()] == names
    assert poor_ax.get_title() == label("poor_rate") and exit_ax.get_title() == label("exit_rate")
    planted = {poor_ax: {0: (0.12, 0.10, 0.14), 1: (0.04, 0.02, 0.07), 2: (0.30, 0.26, 0.34),
                         3: (0.05, 0.045, 0.055)},
               exit_ax: {0: (0.31, 0.25, 0.37), 2: (0.22, 0.18, 0.26), 3: (0.40, 0.35, 0.45)}}
    for ax, want in planted.items():
        bars = {round(p.get_y() + p.get_height() / 2): p.get_width() for p in ax.patches}
        assert bars.keys() == want.keys()
        for y, (rate, _, _) in want.items():
            assert bars[y] == pytest.approx(rate)
        (lines,) = [c for c in ax.collections if isinstance(c, LineCollection)]
        spans = {round(seg[0, 1]): (seg[0, 0], seg[1, 0]) for seg in lines.get_segments()}
        assert spans.keys() == want.keys()
        for y, (_, low, high) in want.items():
            assert spans[y] == pytest.approx((low, high))
    # the urban exit rate is suppressed: no bar, no interval, a dash in its row
    assert [(t.get_text(), t.get_position()[1]) for t in exit_ax.texts] == [(" —", 1)]
    assert not poor_ax.texts


def test_forest_figure_keeps_its_verdicts_inside_its_own_canvas(shown):
    """The programme forest plot is laid out with its verdicts (right of the axes) and
    legend (above it) inside the canvas, so show() saves it uncropped, at its own size,
    without losing them (it was tight_layout plus a cropped save: three layout passes)."""
    from povdyn.plots import effects, show

    table = pd.DataFrame({"program": ["credit", "housing", "training"],
                          "program_vi": ["Tín dụng ưu đãi (Ngân hàng Chính sách xã hội)", "Hỗ trợ nhà ở",
                                         "Đào tạo nghề"],
                          "estimate": [0.08, np.nan, -0.01], "ci_low": [0.03, np.nan, -0.06],
                          "ci_high": [0.13, np.nan, 0.04], "ci_low_adj": [0.01, np.nan, -0.08],
                          "ci_high_adj": [0.15, np.nan, 0.06], "naive": [0.12, np.nan, 0.02],
                          "verdict": ["effective", "insufficient_data", "no_evidence"],
                          "verdict_vi": ["Hiệu quả", "Chưa đủ dữ liệu", "Chưa có bằng chứng"],
                          "n_treated": [340, np.nan, 120]})
    fig = effects.forest(table, lang="vi")
    dpi = 110
    width, height = (np.asarray(fig.get_size_inches()) * dpi).round().astype(int)
    show(fig, dpi=dpi)
    assert _size(shown[-1]) == (width, height)  # not cropped
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    agg = FigureCanvasAgg(fig)
    agg.draw()  # laid out as when saved
    renderer, canvas = agg.get_renderer(), fig.bbox
    ax = fig.axes[0]
    verdicts = [t for t in ax.texts if "Hiệu quả" in t.get_text() or "Chưa" in t.get_text()]
    assert len(verdicts) == 3
    for artist in [*verdicts, ax.get_legend(), ax.title, *ax.get_yticklabels()]:
        box = artist.get_window_extent(renderer)
        assert canvas.x0 - 1 <= box.x0 and box.x1 <= canvas.x1 + 1, artist
        assert canvas.y0 - 1 <= box.y0 and box.y1 <= canvas.y1 + 1, artist


def test_a_figure_wider_than_the_page_column_is_saved_at_the_column_width(shown):
    """The report page shows a figure at most PAGE_COLUMN_PX wide (its stylesheet): a
    wider one is saved at that width, same proportions, not drawn larger for the
    browser to scale it down; a narrower one keeps the asked resolution."""
    from matplotlib.figure import Figure

    from povdyn.plots import PAGE_COLUMN_PX, show

    css = (Path(__file__).resolve().parents[1] / "lib/povdyn/templates/povdyn/static/povdyn.css").read_text()
    assert "max-width: 1280px" in css and "flex: 0 0 230px" in css and "gap: 2rem" in css
    assert PAGE_COLUMN_PX == 1280 - 2 * 24 - 230 - 32
    for width, height, expected_width in ((10.5, 3.8, PAGE_COLUMN_PX), (7.5, 3.8, 825)):
        fig = Figure(figsize=(width, height), layout="constrained")
        fig.subplots().plot([0, 1], [0, 1])
        show(fig, dpi=110)
        w, h = _size(shown[-1])
        assert w == expected_width
        assert abs(h / w - height / width) < 0.01


def test_deprivation_contributions_title_stays_on_its_canvas():
    """With the twelve indicators' long names, the contributions figure's axes start a
    third of the way in: a title centred over them ran off the canvas on report pages.
    It is the figure's title now, inside the canvas in both languages."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from povdyn import standards
    from povdyn.plots import deprivation as charts

    from povdyn.plots import dynamics

    dynamics._style()  # as on a report page, whose earlier figures set the bold titles
    indicators = [c for cols in standards.DIMENSIONS.values() for c in cols]
    table = pd.DataFrame({"indicator": indicators,
                          "contribution_pct": np.full(len(indicators), 100 / len(indicators))})
    for lang in ("vi", "en"):
        fig = charts.contributions(table, lang=lang)
        fig.set_dpi(110)  # as show() saves it
        agg = FigureCanvasAgg(fig)
        agg.draw()
        titles = [t for t in [*fig.texts, fig.axes[0].title] if t.get_text()]
        assert [t.get_text() for t in titles] == [charts.TEXT[lang]["contrib_title"]]
        title = titles[0]
        box, canvas = title.get_window_extent(agg.get_renderer()), fig.bbox
        assert canvas.x0 <= box.x0 and box.x1 <= canvas.x1 and box.y1 <= canvas.y1


def _page_figures():
    """One figure of each kind a report page shows, built from small planted tables."""
    from povdyn import standards
    from povdyn.plots import deprivation, dynamics, effects

    dynamics._style()
    periods = [f"{y}Q{q}" for y in (2023, 2024, 2025) for q in (1, 2, 3, 4)]
    n = len(periods)
    shares = pd.DataFrame({"period": periods, "poor": 400, "near_poor": 300,
                           "poor_rate": np.linspace(0.12, 0.05, n), "poor_ci_low": np.linspace(0.10, 0.04, n),
                           "poor_ci_high": np.linspace(0.14, 0.06, n), "near_poor_rate": np.linspace(0.09, 0.07, n),
                           "near_poor_ci_low": np.linspace(0.08, 0.06, n),
                           "near_poor_ci_high": np.linspace(0.10, 0.08, n)})
    exits = pd.DataFrame({"period": periods, "at_risk": 300, "exits": 90, "rate": 0.3, "ci_low": 0.25,
                          "ci_high": 0.35})
    km = pd.DataFrame({"time": [1, 2, 3, 4], "at_risk": [200, 150, 100, 60], "survival": [0.95, 0.9, 0.86, 0.8],
                       "ci_low": [0.92, 0.86, 0.8, 0.72], "ci_high": [0.98, 0.94, 0.92, 0.88]})
    indicators = [c for cols in standards.DIMENSIONS.values() for c in cols]
    contributions = pd.DataFrame({"indicator": indicators, "contribution_pct": np.linspace(1, 20, len(indicators))})
    forest = pd.DataFrame({"program": ["credit", "training"], "program_vi": ["Tín dụng ưu đãi", "Đào tạo nghề"],
                           "estimate": [0.08, -0.01], "ci_low": [0.03, -0.06], "ci_high": [0.13, 0.04],
                           "ci_low_adj": [0.01, -0.08], "ci_high_adj": [0.15, 0.06], "naive": [0.12, 0.02],
                           "verdict": ["effective", "no_evidence"], "verdict_vi": ["Hiệu quả", "Chưa có bằng chứng"],
                           "n_treated": [340, 120]})
    groups = {"area": _group_rates("area", [("rural", 0.12, (0.10, 0.14), 0.31, (0.25, 0.37), False, False),
                                            ("urban", 0.04, (0.02, 0.07), 0.50, (0.2, 0.8), False, True)])}
    return {"trends": lambda: dynamics.trends(shares, exits),
            "flows": lambda: dynamics.flows(np.array([[300, 60, 40], [50, 200, 50], [5, 30, 900]])),
            "survival": lambda: dynamics.survival(km),
            "groups": lambda: dynamics.groups(groups),
            "provinces": lambda: dynamics.provinces_ranked(_provinces(0)),
            "forest": lambda: effects.forest(forest, lang="vi"),
            "deprivation": lambda: deprivation.contributions(contributions, lang="vi")}


def test_a_page_figure_is_drawn_once_into_the_pixels_savefig_would_write(shown, monkeypatch):
    """show() draws a constrained-layout figure once, laying it out within that draw
    (savefig lays it out in a first, non-rasterising draw, then draws it again), and
    embeds the same pixels savefig writes for it, as an opaque RGB PNG."""
    from matplotlib.figure import Figure

    from povdyn.plots import figure_dpi, show

    draws = []
    real_draw = Figure.draw

    def counted(self, renderer):
        draws.append(self)
        return real_draw(self, renderer)

    for kind, make in _page_figures().items():
        reference = make()
        buffer = io.BytesIO()
        reference.savefig(buffer, format="png", dpi=figure_dpi(reference), facecolor="white")
        expected = np.asarray(Image.open(buffer).convert("RGBA"))
        assert (expected[..., 3] == 255).all()
        fig = make()
        monkeypatch.setattr(Figure, "draw", counted)
        draws.clear()
        show(fig)
        monkeypatch.setattr(Figure, "draw", real_draw)
        assert len(draws) == 1, kind
        picture = Image.open(io.BytesIO(shown[-1].data))
        assert picture.mode == "RGB", kind
        assert np.array_equal(np.asarray(picture), expected[..., :3]), kind
        assert fig.get_facecolor() == reference.get_facecolor()  # the figure itself is left as it was


def test_quarterly_axes_tick_and_label_the_fourth_quarters_only_and_still_span_every_period():
    """The trends figure's period axes: a tick (and its grid line) at each labelled
    fourth quarter only -- an unlabelled tick per quarter cost as much to lay out and
    draw -- while the view still covers the first and last quarters."""
    from povdyn.plots import dynamics

    periods = [f"{y}Q{q}" for y in (2023, 2024, 2025) for q in (1, 2, 3, 4)][1:]  # 2023Q2..2025Q4
    shares = pd.DataFrame({"period": periods, "poor": 400, "near_poor": 300,
                           **{f"{s}_{c}": 0.1 for s in ("poor", "near_poor") for c in ("rate", "ci_low", "ci_high")}})
    exits = pd.DataFrame({"period": periods, "at_risk": 300, "exits": 90, "rate": 0.3, "ci_low": 0.25,
                          "ci_high": 0.35})
    fig = dynamics.trends(shares, exits)
    for ax in fig.axes:
        assert [t.get_text() for t in ax.get_xticklabels()] == ["2023Q4", "2024Q4", "2025Q4"]
        assert list(ax.get_xticks()) == [periods.index(p) for p in ("2023Q4", "2024Q4", "2025Q4")]
        low, high = ax.get_xlim()
        assert low <= 0 and high >= len(periods) - 1
