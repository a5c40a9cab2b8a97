"""Figures for notebooks and report pages (matplotlib/seaborn, Agg-friendly).

Submodules: ``povdyn.plots.dynamics`` (trends, flows, survival after exit, provinces
ranked, group breakdowns), ``povdyn.plots.effects`` (programme effects),
``povdyn.plots.deprivation`` (deprivation contributions). Import the submodule you need;
this package imports nothing heavy on its own.
"""
