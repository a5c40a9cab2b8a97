"""How a report figure becomes its PNG (povdyn.plots.show): a constrained-layout
figure is saved at its own size (cropping it to what is drawn costs one more pass of
text layout, a third of a figure's time on a page); a figure with a note below its
canvas is cropped so that the note is in the picture."""
from __future__ import annotations

import io

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
