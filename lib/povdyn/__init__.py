"""povdyn — household poverty dynamics for Vietnam's poverty-reduction offices.

The public API (../shared/architecture.md) is re-exported here. Names load lazily so
that ``import povdyn`` stays fast and does not start Spark or statsmodels.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it (each metric is defined once, there)
_API = {
    "load_panel": "povdyn.panel",
    "exit_rates": "povdyn.dynamics",
    "relapse_rates": "povdyn.dynamics",
    "entries": "povdyn.dynamics",
    "transition_matrix": "povdyn.dynamics",
    "survival_after_exit": "povdyn.survival",
    "hazard_model": "povdyn.survival",
    "exit_spells": "povdyn.survival",
    "poverty_spells": "povdyn.survival",
    "estimate_effect": "povdyn.effects",
    "evaluate_programs": "povdyn.programs",
    "classify": "povdyn.standards",
    "alkire_foster": "povdyn.deprivation",
    "deprivation_summary": "povdyn.deprivation",
    "reclassify": "povdyn.standard_change",
    "decompose_flows": "povdyn.standard_change",
    "province_2025": "povdyn.geo",
    "settings": "povdyn.config",
    "relapse_risk": "povdyn.risk",
    "entry_risk": "povdyn.risk",
}

__all__ = sorted(_API)


def __getattr__(name: str):
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'povdyn' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_API))
