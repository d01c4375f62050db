"""Exactly solvable cases of the theory, derived with sympy (docs/math/closed_forms.md).

Four cases, each with a closed form that :mod:`gtv.numerics.naive` (Gaussian data),
:mod:`gtv.numerics.binned_affine` and :mod:`gtv.numerics.linear` (one point) evaluate
numerically and the tests check three ways (sympy =
numeric theory = Monte Carlo): Gaussian data with the naive estimator
(:mod:`~gtv.theory.closed_forms.gaussian`); Gaussian data with the linear model on features
``(1, x) x`` time-bin indicators, to first order in ``1/P``
(:mod:`~gtv.theory.closed_forms.binned_affine`); one and two training points
(:mod:`~gtv.theory.closed_forms.few_points`). Time integrals are done in closed form after a
rationalizing substitution (:mod:`~gtv.theory.closed_forms.integration`); argument checks live in
:mod:`~gtv.theory.closed_forms.checks`.
"""

from gtv.theory.closed_forms.binned_affine import (
    BinnedAffineTheoryValues,
    a_sym,
    affine_bin_map,
    affine_composition,
    binned_affine_theory,
    binned_bin_moments,
    c_sym,
    delta_method_moments,
    gaussian_design_inverse_moment,
    q0_sym,
    q1_sym,
    q2_sym,
)
from gtv.theory.closed_forms.checks import START_CHOICES, check_bin_edges
from gtv.theory.closed_forms.few_points import single_point_ridge_identity, two_point_closed_forms
from gtv.theory.closed_forms.gaussian import (
    NaiveGaussianMoments,
    eps,
    gaussian_noised_variance,
    gaussian_posterior,
    gaussian_proxy_covariance,
    gaussian_score,
    m,
    naive_gaussian_moments,
    naive_gaussian_moments_diagonal,
    naive_moment_ode,
    naive_noise_integrand,
    pf_propagator,
    s2,
)
from gtv.theory.closed_forms.integration import closed_form_integral, integrate_rational
from gtv.theory.path_integral import kappa
from gtv.theory.proxy import x

__all__ = [
    "START_CHOICES",
    "BinnedAffineTheoryValues",
    "NaiveGaussianMoments",
    "a_sym",
    "affine_bin_map",
    "affine_composition",
    "binned_affine_theory",
    "binned_bin_moments",
    "c_sym",
    "check_bin_edges",
    "closed_form_integral",
    "delta_method_moments",
    "eps",
    "gaussian_design_inverse_moment",
    "gaussian_noised_variance",
    "gaussian_posterior",
    "gaussian_proxy_covariance",
    "gaussian_score",
    "integrate_rational",
    "kappa",
    "m",
    "naive_gaussian_moments",
    "naive_gaussian_moments_diagonal",
    "naive_moment_ode",
    "naive_noise_integrand",
    "pf_propagator",
    "q0_sym",
    "q1_sym",
    "q2_sym",
    "s2",
    "single_point_ridge_identity",
    "two_point_closed_forms",
    "x",
]
