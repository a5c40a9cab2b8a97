"""Figures for notebooks and report pages (matplotlib/seaborn, Agg-friendly).

Submodules: ``povdyn.plots.dynamics`` (trends, flows, survival after exit, provinces
ranked, group breakdowns), ``povdyn.plots.effects`` (programme effects),
``povdyn.plots.deprivation`` (deprivation contributions). Import the submodule you need;
this package imports nothing heavy on its own.
"""


def show(fig):
    """Display a figure once in a notebook and release it (works for pyplot figures and
    for the pyplot-free figures of povdyn.plots.dynamics)."""
    from IPython.display import display

    display(fig)
    try:
        import matplotlib.pyplot as plt

        plt.close(fig)
    except Exception:  # noqa: BLE001 - closing is best effort
        pass
