"""Lazy infinite-width two-layer networks (the NTK regime) and their large-P theory.

Network inputs ``z = (x, e(t), bias)`` (:mod:`.inputs`), the closed-form NNGP / derivative / NTK
Gram matrices (:mod:`.gram`, numba with a numpy reference), the spectral filter of lazy gradient
flow and gradient descent with its divided differences (:mod:`.divided_differences`), one trained
model (:mod:`.regression`), ensembles of trained models and their PF-ODE sampler
(:mod:`.ensemble`, :mod:`.sampler`), and the first-order-in-1/P population theory
(:mod:`.theory`, built on the Nystrom nodes of :mod:`.nystrom`), and the theory bound to one
training time and budget as an :class:`gtv.numerics.contract.EnsembleTheory` with its
Gaussian-field ensemble (:mod:`.prediction`); the finite-P (cavity) moments and their bound
theory (:mod:`.finite_p`, :mod:`.finite_prediction`), the small-occupancy field on them
(:mod:`.occupancy`) and its stratified form (:mod:`.strata`). The mathematics is in
docs/math/kernel.md.
"""

from gtv.numerics.kernel.checks import (
    ACTIVATIONS,
    FLOWS,
    KERNELS,
    check_activation,
    check_flow,
    check_gd_stable,
    check_kernel,
    check_kernel_inputs,
    check_lr,
    check_tau,
    gd_stability_limit,
    gd_step_count,
)
from gtv.numerics.kernel.divided_differences import lazy_divided_differences, lazy_filter
from gtv.numerics.kernel.ensemble import KernelEnsemble, train_kernel_ensemble
from gtv.numerics.kernel.finite_p import FiniteKernelMoments, filter_poles
from gtv.numerics.kernel.finite_prediction import FiniteKernelTheoryAt
from gtv.numerics.kernel.gram import gram_reference, ntk_gram, serial_blas
from gtv.numerics.kernel.inputs import EMBEDDINGS, check_embedding, embed_time, ntk_inputs
from gtv.numerics.kernel.nystrom import ntk_theory
from gtv.numerics.kernel.occupancy import KernelOccupancySplit, kernel_occupancy_coefficients
from gtv.numerics.kernel.prediction import KernelField, KernelTheoryAt
from gtv.numerics.kernel.regression import KernelRegression, fit_kernel_regression
from gtv.numerics.kernel.sampler import integrate_kernel_ensemble
from gtv.numerics.kernel.strata import KernelStrata, kernel_stratified_coefficients
from gtv.numerics.kernel.theory import PARTS, NTKTheory, check_part, check_scalar_tau

__all__ = [
    "ACTIVATIONS",
    "EMBEDDINGS",
    "FLOWS",
    "FiniteKernelMoments",
    "FiniteKernelTheoryAt",
    "KERNELS",
    "PARTS",
    "KernelEnsemble",
    "KernelField",
    "KernelOccupancySplit",
    "KernelRegression",
    "KernelStrata",
    "KernelTheoryAt",
    "NTKTheory",
    "check_activation",
    "check_embedding",
    "check_flow",
    "check_gd_stable",
    "check_kernel",
    "check_kernel_inputs",
    "check_lr",
    "check_part",
    "check_scalar_tau",
    "check_tau",
    "embed_time",
    "filter_poles",
    "fit_kernel_regression",
    "gd_stability_limit",
    "gd_step_count",
    "gram_reference",
    "integrate_kernel_ensemble",
    "kernel_occupancy_coefficients",
    "kernel_stratified_coefficients",
    "lazy_divided_differences",
    "lazy_filter",
    "ntk_gram",
    "ntk_inputs",
    "ntk_theory",
    "serial_blas",
    "train_kernel_ensemble",
]
