"""The Gaussian serial-reproduction chain is AR(1): sympy derivation and the numerics on a grid."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from gtv.numerics.serial import Grid, NoiseFamily, SerialReproduction
from gtv.theory.serial import (
    GaussianForm,
    ar1_coefficient,
    gaussian_integral,
    gaussian_serial_reproduction,
    mu0,
    s,
    s0,
    x,
    xh,
)


@pytest.fixture(scope="module")
def derived():
    return gaussian_serial_reproduction()


def test_every_residual_of_the_derivation_vanishes(derived):
    res = derived.residuals()
    assert set(res) == {
        "marginal",
        "posterior_mean",
        "posterior_variance",
        "transition_mean",
        "transition_variance",
        "coefficient",
        "stationary_variance",
        "prior_invariance",
    }
    assert all(v == 0 for v in res.values()), res


def test_the_derived_coefficient_and_variances(derived):
    lam = sp.simplify(derived.coefficient)
    assert sp.simplify(lam - s0**2 / (s0**2 + s**2)) == 0
    assert derived.coefficient.free_symbols == {s0, s}  # no dependence on x, mu0: AR(1)
    assert x not in derived.transition_variance.free_symbols
    assert sp.simplify(derived.stationary_variance - s0**2) == 0


def test_gaussian_forms_can_differ():
    """The comparison used by the residuals is able to fail."""
    a = GaussianForm.normal(xh, mu0, s0)
    assert a.equals(GaussianForm.normal(xh, mu0, s0))
    assert not a.equals(GaussianForm.normal(xh, mu0, s))
    assert not a.equals(GaussianForm.normal(xh, 0, s0))
    assert not a.equals(GaussianForm(2 * a.prefactor, a.exponent))
    assert sp.simplify(ar1_coefficient() - s**2 / (s0**2 + s**2)) != 0


def test_gaussian_integral_moments():
    f = GaussianForm.normal(x, mu0, s0)
    assert sp.simplify(gaussian_integral(sp.Integer(1), f, x).value - 1) == 0
    assert sp.simplify(gaussian_integral(x, f, x).value - mu0) == 0
    assert sp.simplify(gaussian_integral(x**2, f, x).value - (mu0**2 + s0**2)) == 0
    with pytest.raises(ValueError, match="degree <= 2"):
        gaussian_integral(x**3, f, x)
    with pytest.raises(ValueError, match="provably positive"):
        gaussian_integral(sp.Integer(1), GaussianForm(sp.Integer(1), x**2), x)


@pytest.mark.parametrize("mu, sd0, sd", [(0.05, 0.05, 0.04), (-0.1, 0.03, 0.06)])
def test_numerical_chain_on_a_fine_grid_is_the_derived_ar1(derived, mu, sd0, sd):
    """The exact grid chain's transition regression: slope lam, constant conditional variance."""
    grid = Grid.torus(1000, dim=1)
    xs = grid.axis
    prior = np.exp(-((xs - mu) ** 2) / (2 * sd0**2))
    prior /= prior.sum()
    chain = SerialReproduction(prior, grid, NoiseFamily.gaussian(), sd)
    mean = chain.step_transpose(xs)  # E[x' | x] at every grid point
    second = chain.step_transpose(xs**2)
    subs = {mu0: mu, s0: sd0, s: sd}
    lam = float(derived.coefficient.subs(subs))
    # the regression of x' on x under the stationary (prior) distribution
    xc = xs - mu
    slope = np.sum(prior * xc * (mean - mu)) / np.sum(prior * xc**2)
    assert slope == pytest.approx(lam, abs=1e-10)
    core = np.abs(xc) < 3 * sd0
    want_mean = sp.lambdify(x, derived.transition_mean.subs(subs), "numpy")(xs[core])
    np.testing.assert_allclose(mean[core], want_mean, rtol=0, atol=1e-11)
    var = second - mean**2
    want_var = float(derived.transition_variance.subs(subs))
    np.testing.assert_allclose(var[core], want_var, rtol=1e-9)
    # the prior is stationary and its variance is s0^2
    np.testing.assert_allclose(chain.step(prior), prior, atol=1e-15)
    assert np.sum(prior * xc**2) == pytest.approx(float(derived.stationary_variance.subs(subs)))
