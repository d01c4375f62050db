"""Trained linear-feature ensembles against their theory (docs/math/linear.md).

:func:`compare_linear` trains N models on ``{-1, 0, 1}``, computes a theory of the ensemble (by
default the first-order one, through the theory contract
:class:`gtv.numerics.contract.EnsembleTheory`) and its density predictions, and tabulates the
denoiser moments, density distances and gap masses with model-level bootstrap intervals
(:mod:`~gtv.validation.linear.compare`); :func:`validity_row` condenses one comparison into a row of
the table of where the first-order theory holds (:mod:`~gtv.validation.linear.validity`).
"""

from gtv.validation.linear.compare import LinearCompareConfig, LinearComparison, compare_linear
from gtv.validation.linear.validity import format_validity_table, validity_row

__all__ = [
    "LinearCompareConfig",
    "LinearComparison",
    "compare_linear",
    "format_validity_table",
    "validity_row",
]
