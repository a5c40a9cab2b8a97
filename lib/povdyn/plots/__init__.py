"""Figures for notebooks and report pages (matplotlib/seaborn, Agg-friendly).

Submodules: ``povdyn.plots.dynamics`` (trends, flows, survival after exit, provinces
ranked, group breakdowns), ``povdyn.plots.effects`` (programme effects),
``povdyn.plots.deprivation`` (deprivation contributions). Import the submodule you need;
this package imports nothing heavy on its own.
"""


def show(fig, dpi: int = 110):
    """Display a figure once in a notebook as an embedded PNG, then release it. Works the
    same for pyplot figures and for the pyplot-free figures of povdyn.plots.dynamics,
    whatever the matplotlib backend (the PNG is rendered here, not by the backend)."""
    import io

    from IPython.display import Image, display

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    display(Image(data=buffer.getvalue(), format="png"))
    try:
        import matplotlib.pyplot as plt

        plt.close(fig)
    except Exception:  # noqa: BLE001 - closing is best effort
        pass
