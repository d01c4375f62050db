"""Anderson mixing of the cavity fixed points (gtv.numerics.linear.fixed_point)."""

import numpy as np
import pytest

from gtv.numerics.linear.fixed_point import anderson, mixing_coefficients


def testmixing_coefficients_are_the_least_squares_solution():
    """The normal-equation Anderson coefficients equal numpy's least squares on a
    well-conditioned history, and drop (not blow up on) an exactly repeated difference."""
    rng = np.random.default_rng(0)
    fs = [rng.standard_normal(500) for _ in range(5)]
    dF = np.diff(np.array(fs), axis=0).T
    expect = np.linalg.lstsq(dF, fs[-1], rcond=None)[0]
    np.testing.assert_allclose(mixing_coefficients(fs), expect, rtol=1e-9, atol=1e-12)
    fs = [fs[0], fs[1], fs[0], fs[1]]  # dF has two equal columns (rank 2 of 3)
    coef = mixing_coefficients(fs)
    dF = np.diff(np.array(fs), axis=0).T
    assert np.all(np.isfinite(coef))
    np.testing.assert_allclose(dF @ coef, dF @ np.linalg.lstsq(dF, fs[-1], rcond=None)[0])


@pytest.mark.parametrize("delay", [None, 0.3])
def test_anderson_reaches_the_fixed_point_of_a_contraction(delay):
    """x = A x + b with |A| < 1: the point returned satisfies the plain map to the tolerance and
    is the solution of (I - A) x = b; both mixing schemes; fewer steps than plain iteration."""
    rng = np.random.default_rng(1)
    A = rng.standard_normal((20, 20))
    A *= 0.9 / np.linalg.norm(A, 2)
    b = rng.standard_normal(20)
    x, it = anderson(lambda x: A @ x + b, np.zeros(20), 1e-10, 500, "test", delay=delay)
    np.testing.assert_allclose(x, np.linalg.solve(np.eye(20) - A, b), rtol=1e-8, atol=1e-9)
    plain, n = np.zeros(20), 0
    while np.max(np.abs(A @ plain + b - plain)) >= 1e-10 * np.max(np.abs(A @ plain + b)):
        plain, n = A @ plain + b, n + 1
    assert it < n


def test_anderson_names_the_fixed_point_that_does_not_converge():
    with pytest.raises(ValueError, match="M: the cavity fixed point did not converge"):
        anderson(lambda x: x + 1.0, np.zeros(3), 1e-10, 5, "M")
