"""Semiclassical density of the naive estimator (gtv.numerics.naive.semiclassical).

Independent checks: the numba paths equal the plain-numpy reference; the generated Jacobi
coefficients equal the schedule's own functions; the classical path's Jacobian pushes ``p(x|T)``
forward to ``p(x|eps)``; for Gaussian data the formula is exact (mean and variance equal the
closed form of gtv.numerics.naive.gaussian, and the *unrenormalised* mass is 1 only with the
determinant); for {-1, 0, 1} it is closer to the Fokker-Planck density than the variants without
the determinant or without any factor (slow), and the interleaved sampler and the SDE agree with
it within Monte-Carlo error at a small kappa (slow).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from gtv.numerics.naive import (
    classical_paths,
    density_moments,
    jacobi_coefficient_functions,
    naive_density,
    naive_gaussian_moments,
    sample_naive_estimator,
    sample_naive_sde,
    semiclassical_density,
)
from gtv.numerics.schedules import get_schedule

DATA = np.array([[-1.0], [0.0], [1.0]])
EPS = 1e-2
SCHEDULES = ("vp-linear", "linear-variance", "song-vp", "ve", "edm")


def _tv(p: np.ndarray, q: np.ndarray, h: float) -> float:
    return 0.5 * float(np.sum(np.abs(p - q)) * h)


def test_numba_paths_equal_numpy_reference():
    kw = {"bounds": (-3.0, 3.0), "n_cells": 60, "n_sub": 3, "n_steps": 200}
    a = classical_paths(DATA, EPS, data_var=[0.0, 0.02, 0.0], backend="numba", **kw)
    b = classical_paths(DATA, EPS, data_var=[0.0, 0.02, 0.0], backend="numpy", **kw)
    np.testing.assert_allclose(a.x_T, b.x_T, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(a.variance, b.variance, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(a.log_jacobian, b.log_jacobian, rtol=1e-12, atol=1e-10)


@pytest.mark.parametrize("name", SCHEDULES)
def test_generated_coefficients_equal_schedule_products(name):
    """slope_var = D alpha**2/sigma**4 and noise_var = D**2 alpha**2/sigma**4 from the schedule's
    alpha, sigma2 and diffusion (independent of the generated code)."""
    sched = get_schedule(name)
    ts = np.geomspace(1e-3, 0.99 * sched.T, 17)
    fns = jacobi_coefficient_functions(sched)
    a, s2, d = sched.alpha(ts), sched.sigma2(ts), sched.diffusion(ts)
    np.testing.assert_allclose(fns["slope_var"](ts), d * a**2 / s2**2, rtol=1e-9)
    np.testing.assert_allclose(fns["noise_var"](ts), d**2 * a**2 / s2**2, rtol=1e-9)


def test_jacobian_pushes_p_T_forward_to_p_eps():
    """p(x_T|T) / (dx_eps/dx_T) along the classical path equals p(y|eps) (the PF-ODE transports
    the noised density): checks the path and the integrated slope b'."""
    paths = classical_paths(DATA, EPS, bounds=(-2.0, 2.0), n_cells=200, n_steps=400)
    sched = get_schedule("vp-linear")
    a, s2 = float(sched.alpha(EPS)), float(sched.sigma2(EPS))
    y = paths.nodes
    p_eps = np.mean(np.exp(-((y[:, None] - a * DATA[:, 0]) ** 2) / (2 * s2)), axis=1)
    p_eps /= np.sqrt(2 * np.pi * s2)
    pushed = np.exp(paths.log_p_T - paths.log_jacobian)
    keep = p_eps > 1e-3
    np.testing.assert_allclose(pushed[keep], p_eps[keep], rtol=1e-6)


@pytest.mark.parametrize("start", ["sampler", "exact"])
def test_gaussian_data_is_exact_and_normalised_only_with_the_determinant(start):
    """For data N(0.3, 0.5) the effective SDE is linear and the formula is exact: mean and
    variance equal naive_gaussian_moments (the closed form). The determinant is constant in x here,
    so it is checked through the formula's own mass: 1 with it, 1.25 without it."""
    paths = classical_paths([[0.3]], EPS, data_var=0.5, bounds=(-8, 8), n_cells=1000, n_steps=400)
    for kappa in (0.1, 0.3):
        mom = naive_gaussian_moments(0.3, 0.5, kappa, EPS, start=start)
        full = paths.density(kappa, start=start)
        mean, var = density_moments(full)
        assert abs(mean - mom.mean[0]) < 1e-5
        assert abs(var / mom.variance - 1) < 1e-4, (kappa, var, mom.variance)
        assert abs(full.raw_mass - 1) < 1e-4
        assert paths.density(kappa, start=start, prefactor="no-det").raw_mass > 1.1
        _, var0 = density_moments(paths.density(kappa, start=start, prefactor="none"))
        assert var0 < 0.9 * mom.variance  # the noise-free push-forward misses the broadening


def test_density_is_normalised_and_reports_raw_mass():
    paths = classical_paths(DATA, EPS, bounds=(-3, 3), n_cells=300, n_steps=300)
    d = paths.density(0.05)
    assert abs(d.grid.mass(d.density) - 1) < 1e-12
    raw = paths.density(0.05, normalize=False)
    assert abs(raw.grid.mass(raw.density) - raw.raw_mass) < 1e-12
    assert raw.raw_mass == d.raw_mass and d.config["normalized"] and not raw.config["normalized"]
    # kappa = 0 with the exact start is p(x|eps) itself
    p0 = paths.density(0.0, start="exact")
    assert abs(p0.raw_mass + p0.outside_mass - 1) < 1e-12


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kappa": -1.0}, "kappa"),
        ({"eps": 0.0}, "eps"),
        ({"data": [[0.0, 1.0]]}, "data"),
        ({"data_var": -0.1}, "data_var"),
        ({"data_var": [0.1, 0.2]}, "data_var"),
        ({"start": "prior"}, "start"),
        ({"prefactor": "half"}, "prefactor"),
        ({"n_sub": 0}, "n_sub"),
        ({"n_steps": 0}, "n_steps"),
        ({"backend": "gpu"}, "backend"),
        ({"bounds": (1.0, -1.0)}, "bounds"),
    ],
)
def test_bad_input_raises_naming_the_argument(kwargs, match):
    args = {"data": DATA, "kappa": 0.01, "eps": EPS}
    args.update(kwargs)
    opts = {k: args.pop(k) for k in list(args) if k not in ("data", "kappa", "eps")}
    with pytest.raises(ValueError, match=match):
        semiclassical_density(args["data"], args["kappa"], args["eps"], n_cells=50, **opts)


@pytest.mark.slow
def test_three_points_formula_beats_variants_against_fokker_planck():
    """Data {-1, 0, 1}: TV to the Fokker-Planck density. At kappa = 3e-3 the formula is within
    0.02; at kappa = 0.03 it is closer than without the determinant, which is closer than the
    noise-free push-forward (measured 0.071 < 0.074 < 0.079; the FP discretization error at this
    grid is 5e-4, the TV of p(x|eps) at kappa = 1e-4)."""
    grid = {"bounds": (-6.0, 6.0), "n_cells": 1200}
    paths = classical_paths(DATA, EPS, n_steps=1000, **grid)
    h = float(paths.grid.widths[0][0])
    fp = naive_density(DATA, EPS, 3e-3, n_steps=400, **grid)
    assert _tv(paths.density(3e-3).density, fp.density, h) < 0.02
    fp = naive_density(DATA, EPS, 3e-2, n_steps=400, **grid)
    tvs = [
        _tv(paths.density(3e-2, prefactor=p).density, fp.density, h)
        for p in ("full", "no-det", "none")
    ]
    assert tvs[0] + 0.002 < tvs[1] and tvs[1] + 0.002 < tvs[2], tvs


@pytest.mark.slow
@pytest.mark.parametrize("sampler", [sample_naive_estimator, sample_naive_sde])
def test_samplers_agree_with_formula_at_small_kappa(sampler):
    """kappa = 1e-3: counts of 20 000 samples in five coarse bins against the formula's bin
    masses, Pearson chi-square with 4 degrees of freedom; fails at p < 1e-4 (the false-positive
    rate if the formula and the sampler agreed exactly)."""
    kappa = 1e-3
    edges = np.array([-6.0, -1.5, -0.5, 0.5, 1.5, 6.0])
    paths = classical_paths(DATA, EPS, bounds=(-6.0, 6.0), n_cells=1200, n_steps=1000)
    d = paths.density(kappa)
    cdf = np.concatenate([[0.0], np.cumsum(d.density * d.grid.widths[0])])
    probs = np.diff(np.interp(edges, d.grid.edges[0], cdf))
    x = sampler(DATA, 20_000, EPS, kappa, seed=0)[:, 0]
    counts = np.histogram(np.clip(x, -5.999, 5.999), edges)[0]
    expected = probs / probs.sum() * x.size
    chi2 = float(np.sum((counts - expected) ** 2 / expected))
    assert stats.chi2.sf(chi2, df=4) > 1e-4, (counts, expected)
