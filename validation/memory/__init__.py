"""Memorization -> spurious states -> generalization as the training set grows.

The experiments of docs/memorization.md.

Training sets (:mod:`.datasets`), the run configuration (:mod:`.config`), one model trained and
sampled per (training set, pair) (:mod:`.models`), the transition curves with gtv's theory next
to them (:mod:`.transition`), figures (:mod:`.plots`) and the ``gtv memorization`` command
(:mod:`.cli`). The numerics -- energies, attractors, classification -- are
:mod:`gtv.numerics.memory`.
"""

from gtv.validation._lazy import lazy_exports

_EXPORTS = {
    "CRITERIA": ".config",
    "DATASETS": ".datasets",
    "MODEL_CLASSES": ".config",
    "TransitionConfig": ".config",
    "TransitionResult": ".transition",
    "classify_all": ".transition",
    "dataset_dim": ".datasets",
    "default_K_grid": ".config",
    "fit_and_sample": ".models",
    "linear_features": ".models",
    "linear_theory_field": ".models",
    "plot_transition": ".plots",
    "plot_transitions": ".plots",
    "run_transition": ".transition",
    "training_set": ".datasets",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
