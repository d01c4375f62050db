"""The naive estimator on Gaussian data (gtv.numerics.naive.gaussian; docs/math/naive_estimator.md).

The hand-written closed forms and the generic quadrature are checked against sympy (40-digit
evaluation of gtv.theory.closed_forms) to 1e-12; the sampler's numba kernel against its numpy
reference and across thread counts; the exact moments of the discrete scheme against the continuum
formula (first-order convergence) and against the sampler (Monte Carlo, small).
"""

from __future__ import annotations

import functools

import numba
import numpy as np
import pytest
import sympy as sp

from gtv.numerics.checks import check_gaussian_data
from gtv.numerics.naive import (
    density_moments,
    naive_gaussian_density,
    naive_gaussian_euler_moments,
    naive_gaussian_moments,
    naive_noise_integral,
    sample_naive_gaussian,
    sample_naive_gaussian_reference,
)
from gtv.numerics.schedules import get_schedule
from gtv.theory import closed_forms as tcf
from gtv.theory.schedules import named_schedule

R = sp.Rational


LV = get_schedule("linear-variance", T=0.9)


VE = get_schedule("ve", T=0.7)


@functools.cache
def _sympy_moments(name, T, m, s2, kappa, eps, start="sampler"):
    """sympy's mean, variance and noise integral (closed forms at 40 digits; an mpmath integral
    at 25 digits where there is no closed form)."""
    sch = named_schedule(name, T=sp.nsimplify(T))
    r = tcf.naive_gaussian_moments(
        sch, sp.nsimplify(m), sp.nsimplify(s2), sp.nsimplify(kappa), sp.nsimplify(eps), start=start
    )
    digits = 40 if r.closed else 25
    integral = sp.N(r.noise_integral, digits)
    sub = {r.noise_integral: integral}
    return tuple(float(sp.N(e.xreplace(sub), digits)) for e in (r.mean, r.variance, integral))


CASES = [
    ("linear-variance", 0.9, 0.25, 0.01),
    ("linear-variance", 0.5, 1.0, 0.05),  # s2 = 1: the k = 1 - s2 = 0 branch of the closed form
    ("linear-variance", 0.99, 3.0, 0.001),
    ("ve", 0.7, 0.25, 0.01),
    ("ve", 1.0, 4.0, 0.02),
    ("ve", 0.3, 1e-3, 0.05),
]


@pytest.mark.parametrize("name, T, s2, eps", CASES)
@pytest.mark.parametrize("method", ["closed", "quadrature"])
def test_noise_integral_matches_sympy(name, T, s2, eps, method):
    sch = get_schedule(name, T=T)
    _, _, ref = _sympy_moments(name, T, 0.0, s2, 0.0, eps)
    val = naive_noise_integral(s2, eps, sch, method=method)
    assert abs(val - ref) <= 1e-12 * abs(ref), (val, ref)


@pytest.mark.parametrize("name, T", [("vp-linear", 1.0), ("song-vp", 1.0), ("edm", 80.0)])
def test_quadrature_for_schedules_without_hand_written_closed_form(name, T):
    """Quadrature vs sympy: edm has a closed form (atan); vp-linear/song-vp an mpmath integral."""
    _, _, ref = _sympy_moments(name, T, 0.0, 0.3, 0.0, 0.01)
    val = naive_noise_integral(0.3, 0.01, get_schedule(name, T=T))
    assert abs(val - ref) <= 1e-12 * abs(ref), (val, ref)
    with pytest.raises(ValueError, match="method: no closed form"):
        naive_noise_integral(0.3, 0.01, get_schedule(name, T=T), method="closed")


@pytest.mark.parametrize(
    "name, T, start",
    [
        ("linear-variance", 0.9, "sampler"),
        ("linear-variance", 0.9, "exact"),
        ("ve", 0.7, "sampler"),
        ("ve", 0.7, "exact"),
        ("vp-linear", 1.0, "sampler"),
    ],
)
def test_moments_match_sympy(name, T, start):
    m, s2, kappa, eps = 0.5, 0.25, 0.2, 0.01
    mean, var, _ = _sympy_moments(name, T, m, s2, kappa, eps, start)
    r = naive_gaussian_moments(m, s2, kappa, eps, get_schedule(name, T=T), start=start)
    assert abs(r.mean[0] - mean) <= 1e-12 * abs(mean)
    assert abs(r.variance - var) <= 1e-12 * var


def test_full_covariance_rotates_the_diagonal_case():
    """N(m, S) with S = R diag R^T: the moments are R (diagonal-case moments) R^T."""
    th = 0.4
    Rm = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    lam = np.array([0.25, 2.0])
    mz = np.array([0.5, -1.0])
    S = Rm @ np.diag(lam) @ Rm.T
    full = naive_gaussian_moments(Rm @ mz, S, 0.3, 0.01, LV)
    diag = naive_gaussian_moments(mz, lam, 0.3, 0.01, LV)
    np.testing.assert_allclose(full.mean, Rm @ diag.mean, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(full.cov, Rm @ diag.cov @ Rm.T, rtol=1e-12, atol=1e-14)
    # And each diagonal coordinate is the sympy 1-D result.
    for i in range(2):
        mean, var, _ = _sympy_moments("linear-variance", 0.9, mz[i], lam[i], 0.3, 0.01)
        assert abs(diag.mean[i] - mean) <= 1e-12 * abs(mean)
        assert abs(diag.cov[i, i] - var) <= 1e-12 * var


def test_euler_moments_converge_to_the_continuum_at_first_order():
    ref = naive_gaussian_moments(0.5, 0.25, 0.2, 0.01, VE)
    errs = []
    for n in (1000, 2000, 4000):
        eu = naive_gaussian_euler_moments(0.5, 0.25, 0.2, 0.01, VE, n_steps=n)
        errs.append(abs(eu.variance - ref.variance))
    print("Euler variance errors at 1000, 2000, 4000 steps:", errs)
    assert 1.7 < errs[0] / errs[1] < 2.3 and 1.7 < errs[1] / errs[2] < 2.3


# -- sampler ------------------------------------------------------------------------------------
def test_sampler_numba_matches_numpy_reference_1d_and_2d():
    a = sample_naive_gaussian(0.5, 0.25, 500, 0.01, 0.2, LV, n_steps=150, seed=3)
    b = sample_naive_gaussian_reference(0.5, 0.25, 500, 0.01, 0.2, LV, n_steps=150, seed=3)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    S = np.array([[0.3, 0.1], [0.1, 0.2]])
    a = sample_naive_gaussian([0.5, -0.2], S, 300, 0.01, 0.2, "vp-linear", n_steps=130, seed=1)
    b = sample_naive_gaussian_reference(
        [0.5, -0.2], S, 300, 0.01, 0.2, "vp-linear", n_steps=130, seed=1
    )
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_sampler_thread_count_invariance_and_seed():
    S = np.array([[0.3, 0.1], [0.1, 0.2]])
    prev = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        a = sample_naive_gaussian([0.5, -0.2], S, 400, 0.01, 0.5, LV, n_steps=100, seed=7)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        b = sample_naive_gaussian([0.5, -0.2], S, 400, 0.01, 0.5, LV, n_steps=100, seed=7)
    finally:
        numba.set_num_threads(prev)
    np.testing.assert_array_equal(a, b)
    c = sample_naive_gaussian([0.5, -0.2], S, 400, 0.01, 0.5, LV, n_steps=100, seed=8)
    assert not np.array_equal(a, c)


def test_sampler_kappa_zero_is_the_exact_pf_ode_euler_scheme():
    """kappa = 0: deterministic, and equal to the Euler recursion's mean map (any x_T)."""
    x_T = np.linspace(-2, 2, 11)[:, None]
    a = sample_naive_gaussian(0.5, 0.25, 11, 0.01, 0.0, LV, n_steps=200, x_T=x_T, seed=1)
    b = sample_naive_gaussian(0.5, 0.25, 11, 0.01, 0.0, LV, n_steps=200, x_T=x_T, seed=2)
    np.testing.assert_array_equal(a, b)
    # The recursion for a point mass at x_T: mean = A-product x_T + offset, var = 0.
    eu0 = naive_gaussian_euler_moments(0.5, 0.25, 0.0, 0.01, LV, n_steps=200)  # x_T ~ N(0, s_T^2)
    slope = (a[-1, 0] - a[0, 0]) / 4.0
    np.testing.assert_allclose(a[5, 0], eu0.mean[0], rtol=0, atol=1e-12)  # x_T = 0 -> the mean
    np.testing.assert_allclose(slope**2 * LV.sigma2(LV.T), eu0.variance, rtol=1e-10)


def test_sampler_2d_full_covariance_matches_euler_moments():
    """Monte Carlo (6000 samples, 200 steps) vs the exact moments of the same discrete scheme.

    Each of the 5 compared numbers is within 4.5 standard errors (false-positive rate < 1e-4).
    """
    S = np.array([[0.3, 0.12], [0.12, 0.2]])
    mean = [0.5, -0.2]
    x = sample_naive_gaussian(mean, S, 6000, 0.01, 0.4, LV, n_steps=200, seed=11)
    eu = naive_gaussian_euler_moments(mean, S, 0.4, 0.01, LV, n_steps=200)
    n = x.shape[0]
    se_mean = np.sqrt(np.diag(eu.cov) / n)
    assert np.all(np.abs(x.mean(0) - eu.mean) < 4.5 * se_mean)
    C = np.cov(x.T)
    for i, j in [(0, 0), (1, 1), (0, 1)]:
        se = np.sqrt((eu.cov[i, i] * eu.cov[j, j] + eu.cov[i, j] ** 2) / n)
        assert abs(C[i, j] - eu.cov[i, j]) < 4.5 * se, (i, j, C[i, j], eu.cov[i, j])


# -- Fokker-Planck ------------------------------------------------------------------------------
def test_density_moments_of_a_gaussian():
    from gtv.numerics.fokker_planck import (
        FokkerPlanckResult,
        gaussian_cell_averages,
        uniform_grid,
    )

    grid = uniform_grid((-6.0, 6.0), 600)
    p = gaussian_cell_averages(grid, 0.3, 0.5)
    res = FokkerPlanckResult(p, grid, *(np.zeros(1),) * 5, np.zeros((0, 600)))
    mu, var = density_moments(res)
    # Cell width h = 0.02: the h**2/12 correction is 3.3e-5; what is left is O(h**4).
    assert abs(mu - 0.3) < 1e-12 and abs(var - 0.5) < 1e-9


def test_fokker_planck_density_matches_formula():
    """FP mean/variance vs the closed form: second-order convergence to it under refinement
    (cells and steps doubled together: the error falls ~4x per level)."""
    ref = naive_gaussian_moments(0.5, 0.25, 0.2, 0.01, LV)
    errs = []
    for cells, steps in ((500, 200), (1000, 400), (2000, 800)):
        fp = naive_gaussian_density(
            0.5, 0.25, 0.01, 0.2, LV, bounds=(-6, 6), n_cells=cells, n_steps=steps
        )
        mu, var = density_moments(fp)
        errs.append(abs(var - ref.variance))
        assert abs(mu - ref.mean[0]) < 1e-5
    print("FP variance error at (500, 200), (1000, 400), (2000, 800):", errs)
    assert 3.0 < errs[0] / errs[1] < 5.0 and 3.0 < errs[1] / errs[2] < 5.0
    assert errs[2] < 1e-4 * ref.variance


# -- bad input ----------------------------------------------------------------------------------
def test_bad_input():
    with pytest.raises(ValueError, match="s2"):
        check_gaussian_data(0.0, 0.0)
    with pytest.raises(ValueError, match="s2"):
        naive_gaussian_moments(0.0, -1.0, 0.1, 0.01, LV)
    with pytest.raises(ValueError, match="S"):
        check_gaussian_data([0, 0], [[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(ValueError, match="S"):
        check_gaussian_data([0, 0], [1.0, 0.0])
    with pytest.raises(ValueError, match="S"):
        check_gaussian_data([0, 0], [[1.0, 0.5], [0.0, 1.0]])
    with pytest.raises(ValueError, match="S"):
        check_gaussian_data([0, 0, 0], np.eye(2))
    with pytest.raises(ValueError, match="kappa"):
        naive_gaussian_moments(0.0, 1.0, -0.1, 0.01, LV)
    with pytest.raises(ValueError, match="kappa"):
        sample_naive_gaussian(0.0, 1.0, 10, 0.01, -1.0, LV)
    with pytest.raises(ValueError, match="eps"):
        naive_gaussian_moments(0.0, 1.0, 0.1, 0.0, LV)
    with pytest.raises(ValueError, match="start"):
        naive_gaussian_moments(0.0, 1.0, 0.1, 0.01, LV, start="prior")
    with pytest.raises(ValueError, match="method"):
        naive_noise_integral(1.0, 0.01, LV, method="simpson")
    with pytest.raises(ValueError, match="n_samples"):
        sample_naive_gaussian(0.0, 1.0, 0, 0.01, 0.1, LV)
    with pytest.raises(ValueError, match="mean"):
        naive_gaussian_density([0.0, 1.0], np.eye(2), 0.01, 0.1, LV)
