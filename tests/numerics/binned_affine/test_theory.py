"""First-order theory of binned affine ensembles (gtv.numerics.binned_affine.theory).

The quadrature theory against the sympy closed forms (gtv.theory.closed_forms) to 1e-12;
internal consistency of the white-noise and Gaussian-field routes; the finite-sample design
formula against Monte Carlo. The Monte Carlo comparison with trained ensembles is in
tests/validation/test_closed_forms_threeway.py (docs/math/linear.md).
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from gtv.numerics.binned_affine import (
    binned_affine_theory,
)
from gtv.numerics.schedules import get_schedule
from gtv.theory import closed_forms as tcf
from gtv.theory.schedules import named_schedule

LV = get_schedule("linear-variance", T=0.9)


EDGES = [0.01, 0.05, 0.2, 0.5, 0.9]


M, S2, RHO = 0.5, 0.25, 0.1


@pytest.fixture(scope="module")
def theory():
    return binned_affine_theory(M, S2, EDGES, LV, RHO)


@pytest.mark.parametrize(
    "name, T, edges",
    [("linear-variance", 0.9, EDGES), ("ve", 0.7, [0.01, 0.05, 0.2, 0.4, 0.7])],
)
def test_theory_matches_sympy(name, T, edges):
    """theta_inf, Cov(theta), the mean shift and the delta-method moments: quadrature + jets vs
    closed forms + sympy derivatives, to 1e-12."""
    P = 400
    th = binned_affine_theory(M, S2, edges, get_schedule(name, T=T), RHO)
    sym = tcf.binned_affine_theory(
        named_schedule(name, T=sp.nsimplify(T)),
        sp.Rational(1, 2),
        sp.Rational(1, 4),
        [sp.nsimplify(e) for e in edges],
        sp.Rational(1, 10),
        P,
    )

    def close(a, b, tol=1e-12):
        a, b = (
            np.asarray(a, float),
            np.asarray(np.array(b, dtype=float), float).reshape(np.shape(a)),
        )
        assert np.max(np.abs(a - b)) <= tol * np.max(np.abs(b)), (a, b)

    close(th.theta_inf, sym.theta_inf)
    close(th.cov_theta(P), sym.cov_theta)
    close(th.unit_cov_proxy / P, sym.cov_theta_proxy)
    close(th.bias(P), sym.bias)
    close(th.moments(P), [sym.mean, sym.var])
    close(th.moments(None), [sym.mean_inf, sym.var_inf])
    close(th.moments(P, include_bias=False), [sym.mean_no_bias, sym.var_no_bias])
    print(
        f"{name}: [q] mean/var at P={P}: quadrature {th.moments(P)}, "
        f"sympy ({float(sym.mean)}, {float(sym.var)})"
    )


def test_theory_parts_and_limits(theory):
    """Proxy part below the total; Cov PSD; P -> oo gives the population model; with a vanishing
    covariance the white-noise moment ODE reproduces the exact flow of the mean model."""
    cov = theory.cov_theta(400)
    assert np.linalg.eigvalsh(cov).min() > -1e-12 * np.abs(cov).max()
    prox = theory.unit_cov_proxy / 400
    assert np.all(np.diag(prox) <= np.diag(cov) + 1e-15)
    assert np.all(np.diag(prox) > 0)  # Gaussian data: the posterior never collapses
    np.testing.assert_allclose(theory.moments(1e12), theory.moments(None), rtol=1e-9)
    np.testing.assert_allclose(theory.white_noise_moments(1e12), theory.moments(None), rtol=1e-9)
    # Finite-sample refinement: only the diagonal bin blocks grow, by n/(n - 3).
    ref = theory.cov_theta(400, finite_sample=True)
    n = theory.expected_counts(400)
    np.testing.assert_allclose(np.diag(ref), np.diag(cov) * np.repeat(n / (n - 3), 2))
    np.testing.assert_allclose(ref[0, 2:], cov[0, 2:])


def test_gaussian_field_agrees_with_the_delta_method(theory):
    """Gaussian field (exact in theta's Gaussian law) vs the delta method (first order in 1/P):
    at P = 1600 they differ by O(1/P**2) ~ 1e-6, far below 5 standard errors of the draws
    (false-positive rate ~1e-6 per comparison)."""
    mean_gf, var_gf, se_m, se_v = theory.gaussian_field_moments(1600, n_draws=100_000, seed=1)
    mean_dm, var_dm = theory.moments(1600)
    print(
        f"Gaussian field ({mean_gf:.6f}, {var_gf:.6f}), delta method ({mean_dm:.6f}, {var_dm:.6f})"
    )
    assert abs(mean_gf - mean_dm) < 5 * se_m
    assert abs(var_gf - var_dm) < 5 * se_v


def test_gaussian_design_inverse_moment_by_monte_carlo():
    """E[(X^T X)^{-1}] for 12 rows (1, x), x ~ N(0.4, 2): 200 000 replicates, within 5 s.e."""
    n, mu_x, v, reps = 12, 0.4, 2.0, 200_000
    rng = np.random.default_rng(2)
    xs = mu_x + np.sqrt(v) * rng.standard_normal((reps, n))
    s0, s1, s2 = n, xs.sum(1), (xs * xs).sum(1)
    det = s0 * s2 - s1 * s1
    inv = np.stack([s2 / det, -s1 / det, s0 / det], axis=1)
    E = np.array(tcf.gaussian_design_inverse_moment(n, sp.nsimplify(mu_x), 2), dtype=float)
    for k, (i, j) in enumerate([(0, 0), (0, 1), (1, 1)]):
        se = inv[:, k].std() / np.sqrt(reps)
        assert abs(inv[:, k].mean() - E[i, j]) < 5 * se, (i, j, inv[:, k].mean(), E[i, j])
    # The first-order value Sigma^{-1}/n is off by far more than the Monte Carlo error.
    first = np.linalg.inv(np.array([[1, mu_x], [mu_x, mu_x**2 + v]])) / n
    assert abs(inv[:, 2].mean() - first[1, 1]) > 20 * inv[:, 2].std() / np.sqrt(reps)
