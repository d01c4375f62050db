"""Binned affine denoisers on 1-D Gaussian data: an exactly solvable trained model.

``D^(x, t) = a_b + c_b x`` on time bins ``b``; each model is a weighted ridge fit per bin
(:mod:`.ensemble`), its PF-ODE sampler map is exactly affine, ``x_eps = G x_T + H``
(:mod:`.flow`), and the first-order-in-1/P theory propagates ``Cov(theta)`` through the flow by
second-order jets, with its white-noise and Gaussian-field variants (:mod:`.theory`). The
mathematics is in docs/math/linear.md and docs/math/closed_forms.md.
"""

from gtv.numerics.binned_affine.ensemble import (
    BinnedAffineEnsemble,
    binned_normal_equations,
    binned_normal_equations_reference,
    train_binned_affine_ensemble,
)
from gtv.numerics.binned_affine.flow import (
    BinMapQuadrature,
    affine_ensemble_moments,
    affine_flow,
    affine_flow_reference,
    bin_map_quadrature,
)
from gtv.numerics.binned_affine.theory import BinnedAffineTheory, binned_affine_theory
from gtv.numerics.checks import check_bin_edges

__all__ = [
    "BinMapQuadrature",
    "BinnedAffineEnsemble",
    "BinnedAffineTheory",
    "affine_ensemble_moments",
    "affine_flow",
    "affine_flow_reference",
    "bin_map_quadrature",
    "binned_affine_theory",
    "binned_normal_equations",
    "binned_normal_equations_reference",
    "check_bin_edges",
    "train_binned_affine_ensemble",
]
