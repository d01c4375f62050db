"""Trained linear-feature ensembles against their theory (docs/math/linear.md).

:func:`compare_linear` trains N models on ``{-1, 0, 1}``, computes a theory of the ensemble (by
default the first-order one, through the theory contract
:class:`gtv.numerics.contract.EnsembleTheory`) and its density predictions, and tabulates the
denoiser moments, density distances and gap masses with model-level bootstrap intervals
(:mod:`~gtv.validation.linear.compare`); :func:`validity_row` condenses one comparison into a row of
the table of where the first-order theory holds (:mod:`~gtv.validation.linear.validity`);
:func:`compare_targets` trains the noisy-target and exact-target ensembles on the same design
points and compares them model by model (:mod:`~gtv.validation.linear.target_noise`);
:func:`validity_map` scores every theory (the paper's, first and second order, the finite-P
cavity moments and the cavity field) over a grid of eps x F/P
(:mod:`~gtv.validation.linear.validity_map`, docs/math/finite_fp.md). All three form a trained
ensemble's per-model densities with :func:`linear_ensemble_densities`
(:mod:`~gtv.validation.linear.densities`): transported by default, Monte Carlo on request.
:func:`splice_rows` samples a trained ensemble and a theory field spliced at chosen times, to
find which sampler times carry a density difference (:mod:`~gtv.validation.linear.splice`), and
:func:`last_step_basins` measures how much of the line each member's last sampler step sends into
the peaks' cores (:mod:`~gtv.validation.linear.basins`).
"""

from gtv.validation._lazy import lazy_exports

_EXPORTS = {
    "LinearCompareConfig": ".comparison",
    "LinearComparison": ".comparison",
    "TargetNoiseComparison": ".target_noise",
    "TargetNoiseConfig": ".target_noise",
    "ValidityMap": ".validity_map",
    "ValidityMapConfig": ".validity_map",
    "compare_linear": ".compare",
    "compare_targets": ".target_noise",
    "format_target_noise_summary": ".target_noise",
    "format_validity_table": ".validity",
    "last_step_basins": ".basins",
    "format_splices": ".splice",
    "linear_ensemble_densities": ".densities",
    "splice_rows": ".splice",
    "validity_map": ".validity_map",
    "validity_row": ".validity",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
