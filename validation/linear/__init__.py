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
(:mod:`~gtv.validation.linear.validity_map`, docs/math/finite_fp.md).
"""

from gtv.validation.linear.compare import LinearCompareConfig, LinearComparison, compare_linear
from gtv.validation.linear.target_noise import (
    TargetNoiseComparison,
    TargetNoiseConfig,
    compare_targets,
    format_target_noise_summary,
)
from gtv.validation.linear.validity import format_validity_table, validity_row
from gtv.validation.linear.validity_map import ValidityMap, ValidityMapConfig, validity_map

__all__ = [
    "LinearCompareConfig",
    "LinearComparison",
    "TargetNoiseComparison",
    "TargetNoiseConfig",
    "ValidityMap",
    "ValidityMapConfig",
    "compare_linear",
    "compare_targets",
    "format_target_noise_summary",
    "format_validity_table",
    "validity_map",
    "validity_row",
]
