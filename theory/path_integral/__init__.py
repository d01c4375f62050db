"""Martin-Siggia-Rose path integral of the PF-ODE with a random score.

The mathematics is docs/math/path_integral.md (docs/math/naive_estimator.md). The PF-ODE in ``K``
Euler steps with a
Gaussian random score is written as an MSR integral and the score average is computed by sympy
(:mod:`~gtv.theory.path_integral.discretized`, with the Gaussian integrals of
:mod:`~gtv.theory.path_integral.gaussian`); its continuum limit is the reverse-time effective SDE
with drift ``-beta x - D s_avg`` and noise kernel ``V``, and the white-noise intensity ``Q``
(:mod:`~gtv.theory.path_integral.continuum`); for the naive estimator the discrete and continuum
second cumulants, the vanishing of higher cumulants and the two-point closed forms are derived in
:mod:`~gtv.theory.path_integral.naive`; the small-kappa (semiclassical) density of the naive
estimator is derived in :mod:`~gtv.theory.path_integral.semiclassical`. Conventions (time runs
from ``T`` down to ``eps``, Ito pre-point) are those of docs/math/conventions.md.
"""

from gtv.theory.path_integral.continuum import (
    EffectiveSDE,
    effective_drift,
    v_kernel,
    white_noise_intensity,
)
from gtv.theory.path_integral.discretized import DiscreteMSR, discrete_msr
from gtv.theory.path_integral.gaussian import GaussianAverage, gaussian_expectation, gaussian_rule
from gtv.theory.path_integral.naive import (
    naive_cumulant_sum,
    naive_effective_sde,
    naive_m2_continuum,
    naive_m2_discrete,
    naive_v_kernel,
    riemann_limit,
    two_point_naive_sde,
    two_point_naive_sde_from_theory,
    two_point_score,
)
from gtv.theory.path_integral.semiclassical import (
    JACOBI_NAMES,
    fluctuation_variance_rate,
    generated_semiclassical_path,
    generated_semiclassical_source,
    jacobi_coefficients,
    jacobi_coefficients_from_theory,
    posterior_identities,
    semiclassical_factor,
    write_generated_semiclassical,
)
from gtv.theory.path_integral.symbols import kappa, space_symbols, t2, tau, x, x2

__all__ = [
    "DiscreteMSR",
    "EffectiveSDE",
    "GaussianAverage",
    "JACOBI_NAMES",
    "discrete_msr",
    "effective_drift",
    "fluctuation_variance_rate",
    "gaussian_expectation",
    "gaussian_rule",
    "generated_semiclassical_path",
    "generated_semiclassical_source",
    "jacobi_coefficients",
    "jacobi_coefficients_from_theory",
    "kappa",
    "naive_cumulant_sum",
    "naive_effective_sde",
    "naive_m2_continuum",
    "naive_m2_discrete",
    "naive_v_kernel",
    "posterior_identities",
    "riemann_limit",
    "semiclassical_factor",
    "space_symbols",
    "t2",
    "tau",
    "two_point_naive_sde",
    "two_point_naive_sde_from_theory",
    "two_point_score",
    "v_kernel",
    "white_noise_intensity",
    "write_generated_semiclassical",
    "x",
    "x2",
]
