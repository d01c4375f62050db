"""Validation layer of gtv: trained ensembles against the theory, the paper's figures, the CLI.

The trained model is the statistical unit (docs/engineering.md): ensembles are reduced to per-model
histograms and gap masses (:mod:`~gtv.validation.ensembles`), and every uncertainty is a model-level
bootstrap (:mod:`~gtv.validation.stats`, also the home of the density distances).
:mod:`~gtv.validation.predictions` turns any theory implementing
:class:`gtv.numerics.contract.EnsembleTheory` into predictions of the learned density [q]
(Gaussian-field ensemble, white-noise Fokker-Planck) next to the exact baselines;
:mod:`~gtv.validation.linear` and :mod:`~gtv.validation.ntk` compare trained linear-feature
ensembles and trained two-layer networks with their theories; :mod:`~gtv.validation.figures` remakes
the paper's figures; :mod:`~gtv.validation.results` saves results and figures;
:mod:`~gtv.validation.cli` is the ``gtv`` command.

The names below are re-exported lazily (on first access), so that ``gtv --help`` does not import the
numeric layer.
"""

from __future__ import annotations

from gtv.validation._lazy import lazy_exports

#: Public name -> the module that defines it.
_EXPORTS = {
    "bootstrap_ci": "stats",
    "hellinger": "stats",
    "interval_masses": "stats",
    "resampling_rng": "stats",
    "total_variation": "stats",
    "variance_ci": "stats",
    "EnsembleResult": "ensembles",
    "LearnedDensities": "ensembles",
    "TransportSettings": "ensembles",
    "gap_mass": "ensembles",
    "per_model_histograms": "ensembles",
    "summarize_ensemble": "ensembles",
    "transported_densities": "ensembles",
    "TheoryPredictions": "predictions",
    "compute_theory_predictions": "predictions",
    "gaussian_field_densities": "theory_densities",
    "gaussian_field_histograms": "theory_densities",
    "markov_fokker_planck": "predictions",
    "JsonConfig": "results",
    "save_figure": "results",
    "LinearCompareConfig": "linear",
    "LinearComparison": "linear",
    "compare_linear": "linear",
    "NTKCompareConfig": "ntk",
    "NTKComparison": "ntk",
    "compare_ntk": "ntk",
    "compute_figure1": "figures",
    "compute_figure2": "figures",
    "compute_figure3": "figures",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(
    __name__, globals(), {name: f".{module}" for name, module in _EXPORTS.items()}
)
