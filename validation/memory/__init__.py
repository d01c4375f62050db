"""Memorization -> spurious states -> generalization as the training set grows.

The experiments of docs/memorization.md.

Training sets (:mod:`.datasets`), the run configuration (:mod:`.config`), one model trained and
sampled per (training set, pair) (:mod:`.models`), the transition curves with gtv's theory next
to them (:mod:`.transition`), figures (:mod:`.plots`) and the ``gtv memorization`` command
(:mod:`.cli`). The numerics -- energies, attractors, classification -- are
:mod:`gtv.numerics.memory`.
"""

from gtv.validation.memory.config import (
    CRITERIA,
    MODEL_CLASSES,
    TransitionConfig,
    default_K_grid,
)
from gtv.validation.memory.datasets import DATASETS, dataset_dim, training_set
from gtv.validation.memory.models import fit_and_sample, linear_features, linear_theory_field
from gtv.validation.memory.plots import plot_transition, plot_transitions
from gtv.validation.memory.transition import TransitionResult, classify_all, run_transition

__all__ = [
    "CRITERIA",
    "DATASETS",
    "MODEL_CLASSES",
    "TransitionConfig",
    "TransitionResult",
    "classify_all",
    "dataset_dim",
    "default_K_grid",
    "fit_and_sample",
    "linear_features",
    "linear_theory_field",
    "plot_transition",
    "plot_transitions",
    "run_transition",
    "training_set",
]
