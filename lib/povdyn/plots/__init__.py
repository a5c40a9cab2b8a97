"""Figures for notebooks and report pages (matplotlib, Agg-friendly).

Submodules: ``povdyn.plots.dynamics`` (trends, flows, survival after exit, provinces
ranked, group breakdowns), ``povdyn.plots.effects`` (programme effects),
``povdyn.plots.deprivation`` (deprivation contributions). Import the submodule you need;
this package imports nothing heavy on its own.
"""


# The widest a report page shows a figure, in CSS pixels: the page's 1280 px less its
# padding (2 x 24), table of contents (230) and gap (32) (povdyn/templates/.../povdyn.css)
PAGE_COLUMN_PX = 970


def figure_dpi(fig, dpi: float = 110) -> float:
    """The resolution ``show`` saves `fig` at: `dpi`, or less for a figure wider than the
    page's column (PAGE_COLUMN_PX) -- the browser would scale its picture down to the
    column anyway, so the page shows the same picture, drawn at the size it is seen
    instead of 19% larger (a quarter more pixels to draw and compress)."""
    width = fig.get_size_inches()[0]
    return min(float(dpi), PAGE_COLUMN_PX / width) if width > 0 else float(dpi)


def show(fig, dpi: int = 110):
    """Display a figure once in a notebook as an embedded PNG (``png_bytes``), then
    release it. Works the same for pyplot figures and for the pyplot-free figures of
    povdyn.plots.dynamics, whatever the matplotlib backend (the PNG is rendered here,
    not by the backend). A figure wider than the report page's column is saved at its
    width (``figure_dpi``)."""
    from IPython.display import Image, display

    display(Image(data=png_bytes(fig, dpi), format="png"))
    try:
        import matplotlib.pyplot as plt

        plt.close(fig)
    except Exception:  # noqa: BLE001 - closing is best effort
        pass


# zlib level of the page's PNGs: level 3 of the opaque RGB picture takes 55-60% of the
# time of matplotlib's default (level 6 of RGBA) and is still 5-10% smaller (issue 15 §4:
# measured on the seven figures of a demo province page)
PNG_COMPRESS_LEVEL = 3


def png_bytes(fig, dpi: int = 110) -> bytes:
    """The figure as the PNG a report page embeds: on a white face, at ``figure_dpi``.

    A constrained-layout figure whose parts all lie on its canvas (``_may_overflow``)
    is drawn once on an Agg canvas -- its layout computed within that draw -- and the
    pixels written as an opaque RGB PNG. ``Figure.savefig`` draws such a figure twice
    (a first, non-rasterising draw to lay it out, then the real one): the same pixels
    for about 15% more of a figure's time, the largest part of a report page's
    (issue 15 §4). Any other figure is cropped to what is drawn by ``savefig``
    (``bbox_inches="tight"``) and written as savefig writes it."""
    import io

    save_dpi = figure_dpi(fig, dpi)
    buffer = io.BytesIO()
    if _may_overflow(fig):
        fig.savefig(buffer, format="png", dpi=save_dpi, bbox_inches="tight", facecolor="white")
        return buffer.getvalue()
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    canvas, dpi_before, face_before = fig.canvas, fig.get_dpi(), fig.get_facecolor()
    try:
        agg = FigureCanvasAgg(fig)
        fig.set_dpi(save_dpi)
        fig.set_facecolor("white")
        agg.draw()
        pixels = np.asarray(agg.buffer_rgba())
        opaque = bool((pixels[..., 3] == 255).all())
        picture = Image.fromarray(np.ascontiguousarray(pixels[..., :3]) if opaque else pixels)
        picture.save(buffer, format="png", compress_level=PNG_COMPRESS_LEVEL, dpi=(save_dpi, save_dpi))
    finally:
        fig.set_facecolor(face_before)
        fig.set_dpi(dpi_before)
        fig.set_canvas(canvas)
    return buffer.getvalue()


def _may_overflow(fig) -> bool:
    """Whether parts of the figure may lie outside its canvas, so that the PNG must be
    cropped to what is drawn (``bbox_inches="tight"``: one more pass of text layout, a
    third of a figure's cost). A constrained-layout figure (povdyn.plots.dynamics)
    keeps its titles, tick labels, legends and colour bars inside the canvas; only a
    note placed below it (``dynamics._note``) falls outside. Figures laid out otherwise
    (``tight_layout``, legends and labels anchored outside the axes: programme effects,
    deprivation) are always cropped."""
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    if not isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine):
        return True
    return any(not (0 <= x <= 1 and 0 <= y <= 1) for x, y in (text.get_position() for text in fig.texts))
