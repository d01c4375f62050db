"""Anderson mixing of the cavity fixed points and its numba kernels
(gtv.numerics.linear.fixed_point)."""

import numpy as np
import pytest

from gtv.numerics.linear.fixed_point import (
    anderson,
    anderson_reference,
    extrapolate_into,
    extrapolate_into_reference,
    history_into,
    history_into_reference,
    mixing_coefficients,
    residual_into,
    residual_into_reference,
)


def test_mixing_coefficients_are_the_least_squares_solution():
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


@pytest.mark.parametrize("n", [1, 7, 1000])
def test_mixing_kernels_match_the_numpy_reference(n):
    """residual_into / history_into / extrapolate_into (one numba pass each) against numpy,
    for a history slot in the middle of a partly filled ring."""
    rng = np.random.default_rng(n)
    g, x, f, pg, pf = (rng.standard_normal(n) for _ in range(5))
    out, ref = np.empty(n), np.empty(n)
    got = residual_into(g, x, out)
    expect = residual_into_reference(g, x, ref)
    np.testing.assert_allclose(out, ref, rtol=1e-15, atol=0)
    assert got == pytest.approx(expect, rel=1e-15)
    m, s, n_valid = 4, 1, 3
    arrays = [a.copy() for a in (pg, pf, rng.standard_normal((m, n)), rng.standard_normal((m, n)))]
    arrays_ref = [a.copy() for a in arrays]
    row, rhs = history_into(g, f, *arrays, s, n_valid)
    row_ref, rhs_ref = history_into_reference(g, f, *arrays_ref, s, n_valid)
    for a, b in zip(arrays, arrays_ref, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(row, row_ref, rtol=1e-12, atol=1e-12 * np.abs(row_ref).max())
    np.testing.assert_allclose(rhs, rhs_ref, rtol=1e-12, atol=1e-12 * np.abs(rhs_ref).max())
    coef = rng.standard_normal(n_valid)
    extrapolate_into(g, arrays[2], coef, out)
    extrapolate_into_reference(g, arrays[2], coef, ref)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())


@pytest.mark.parametrize("depth", [2, 3, 5, 8])
def test_anderson_history_ring_wraps(depth):
    """Many mixing steps (the ring of differences wraps around several times): the fixed point
    of a slowly contracting map, for several depths."""
    rng = np.random.default_rng(2)
    A = rng.standard_normal((30, 30))
    A = A @ A.T
    A *= 0.99 / np.linalg.norm(A, 2)
    b = rng.standard_normal((5, 6))
    x, it = anderson(
        lambda x: (A @ x.ravel()).reshape(5, 6) + b, np.zeros((5, 6)), 1e-12, 2000, "t",
        depth=depth,
    )  # fmt: skip
    assert it > 2 * depth
    expect = np.linalg.solve(np.eye(30) - A, b.ravel()).reshape(5, 6)
    np.testing.assert_allclose(x, expect, rtol=1e-9, atol=1e-9 * np.abs(expect).max())


@pytest.mark.parametrize("delay", [None, 0.3])
@pytest.mark.parametrize("depth", [2, 3, 5, 8])
def test_anderson_follows_the_reference_iterates(depth, delay):
    """The ring of differences with its updated normal matrix takes the steps of the plain list
    version (the same coefficients up to the order of the columns): the same number of map
    evaluations and the same point, on a slowly contracting linear map (mixing throughout, the
    ring wraps) and on a non-linear one whose residual grows on the way (restarts)."""
    rng = np.random.default_rng(3)
    A = rng.standard_normal((25, 25))
    A = A @ A.T
    A *= 0.98 / np.linalg.norm(A, 2)
    b = rng.standard_normal(25)

    def linear(x):
        return A @ x + b

    def bent(x):
        return A @ x + b + 0.5 * np.tanh(x)  # the mixing restarts on the way

    for g in (linear, bent):
        runs = [
            f(g, np.full(25, 5.0), 1e-12, 3000, "t", depth=depth, delay=delay)
            for f in (anderson, anderson_reference)
        ]
        (x, it), (x_ref, it_ref) = runs
        assert it == it_ref, g.__name__
        np.testing.assert_allclose(x, x_ref, rtol=1e-9, atol=1e-9 * np.abs(x_ref).max())
