"""Diffusion as serial reproduction: the paper's grid experiments, their controls, learned chains.

The chains themselves are :mod:`gtv.numerics.serial`; this subpackage runs the experiments of
Marjieh et al. (ICML 2023) on them and adds what the paper lacks (docs/serial.md). It holds the
experiments' densities, the Swiss roll and the 3-mode mixture (:mod:`.data`); their
configurations (:mod:`.config`: Fig. 2, Fig. 3/S1, S2, S3/S4, S5 and the fixed-total-noise
control, on the authors' grid or the true torus); the runner with exact Bayesian denoisers and
its saveable result (:mod:`.experiments`); chains whose denoisers are trained gtv models --
linear-feature and kernel ensembles used as Gaussian posterior steps (:mod:`.learned`) -- and
their comparison with exact chains, with model-level intervals (:mod:`.learned_experiment`); the
figures (:mod:`.plots`); and the ``gtv serial`` command (:mod:`.cli`).

The names below are loaded on first use, so that building the ``gtv`` parser (which imports
:mod:`.cli`) does not import the numerics.
"""

from __future__ import annotations

import importlib

__all__ = [
    "DENOISERS",
    "EXPERIMENTS",
    "FAMILY_SCHEDULES",
    "Condition",
    "ExperimentConfig",
    "ExperimentResult",
    "GaussianStepChain",
    "LearnedConfig",
    "LearnedResult",
    "experiment_config",
    "exact_posterior_moments",
    "learned_means",
    "make_family",
    "make_grid",
    "plot_experiment",
    "plot_learned",
    "roll_mask",
    "run_experiment",
    "run_learned",
    "swiss_roll",
    "three_modes",
]

_HOMES = {
    "DENOISERS": "learned",
    "EXPERIMENTS": "config",
    "FAMILY_SCHEDULES": "learned_experiment",
    "Condition": "config",
    "ExperimentConfig": "config",
    "ExperimentResult": "experiments",
    "GaussianStepChain": "learned",
    "LearnedConfig": "learned_experiment",
    "LearnedResult": "learned_experiment",
    "experiment_config": "config",
    "exact_posterior_moments": "learned",
    "learned_means": "learned",
    "make_family": "experiments",
    "make_grid": "experiments",
    "plot_experiment": "plots",
    "plot_learned": "plots",
    "roll_mask": "data",
    "run_experiment": "experiments",
    "run_learned": "learned_experiment",
    "swiss_roll": "data",
    "three_modes": "data",
}


def __getattr__(name: str):
    if name in _HOMES:
        module = importlib.import_module(f"{__name__}.{_HOMES[name]}")
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
