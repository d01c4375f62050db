"""The naive estimator: a solvable model of generalization through variance.

At every Euler step of the PF-ODE a fresh clean point is drawn from the posterior, which makes
the sampler a stochastic differential equation with a known Fokker-Planck density. On training
points (:mod:`.estimator`: the interleaved sampler, its effective SDE and its density) and on
Gaussian data (:mod:`.gaussian`: closed-form moments, the exact moments of the discrete scheme,
a sampler and the 1-D density) and the small-kappa semiclassical density (:mod:`.semiclassical`).
The mathematics is in docs/math/naive_estimator.md and docs/math/predictions.md.
"""

from gtv.numerics.naive.estimator import (
    naive_density,
    naive_initial_points,
    sample_naive_estimator,
    sample_naive_sde,
)
from gtv.numerics.naive.gaussian import (
    CLOSED_FORM_SCHEDULES,
    START_CHOICES,
    NaiveGaussianMoments,
    density_moments,
    naive_gaussian_density,
    naive_gaussian_euler_moments,
    naive_gaussian_moments,
    naive_noise_integral,
    sample_naive_gaussian,
    sample_naive_gaussian_reference,
)
from gtv.numerics.naive.semiclassical import (
    PREFACTORS,
    SEMICLASSICAL_STARTS,
    ClassicalPaths,
    SemiclassicalDensity,
    classical_paths,
    jacobi_coefficient_functions,
    semiclassical_density,
)

__all__ = [
    "CLOSED_FORM_SCHEDULES",
    "PREFACTORS",
    "SEMICLASSICAL_STARTS",
    "ClassicalPaths",
    "START_CHOICES",
    "NaiveGaussianMoments",
    "SemiclassicalDensity",
    "classical_paths",
    "density_moments",
    "jacobi_coefficient_functions",
    "naive_density",
    "naive_gaussian_density",
    "naive_gaussian_euler_moments",
    "naive_gaussian_moments",
    "naive_initial_points",
    "naive_noise_integral",
    "sample_naive_estimator",
    "sample_naive_gaussian",
    "sample_naive_gaussian_reference",
    "sample_naive_sde",
    "semiclassical_density",
]
