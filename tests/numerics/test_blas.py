"""The BLAS routines called from compiled code against numpy."""

from __future__ import annotations

import numpy as np
import pytest

from gtv.numerics.blas import (
    cholesky_factor_checked,
    cholesky_lower_inplace,
    cholesky_solve_rows,
    factored_solve_rows,
    gram_lower_into,
    lower_right_multiply_inplace,
    outer_lower_into,
    serial_blas,
)


@pytest.mark.parametrize(("p", "f"), [(1, 1), (7, 3), (64, 256), (300, 17)])
def test_gram_lower_into_is_the_lower_triangle_of_phi_t_phi(p, f):
    phi = np.random.default_rng(p * f).standard_normal((p, f))
    out = np.full((f, f), 7.0)
    gram_lower_into(phi, out)
    ref = phi.T @ phi
    low = np.tril_indices(f)
    np.testing.assert_allclose(out[low], ref[low], rtol=1e-13, atol=1e-13 * np.abs(ref).max())
    # the strict upper triangle is left untouched
    assert np.all(out[np.triu_indices(f, 1)] == 7.0)


@pytest.mark.parametrize("f", [1, 5, 64, 256])
def test_cholesky_lower_inplace_is_numpy_cholesky(f):
    a = np.random.default_rng(f).standard_normal((f + 3, f))
    spd = a.T @ a / (f + 3) + 0.1 * np.eye(f)
    work = spd.copy()
    work[np.triu_indices(f, 1)] = np.nan  # the strict upper triangle is never read
    assert cholesky_lower_inplace(work) == 0
    low = np.tril_indices(f)
    ref = np.linalg.cholesky(spd)
    np.testing.assert_allclose(work[low], ref[low], rtol=1e-12, atol=1e-13)
    assert np.all(np.isnan(work[np.triu_indices(f, 1)]))


def test_cholesky_lower_inplace_reports_the_failing_minor():
    a = np.diag([2.0, 1.0, -1.0, 3.0])
    assert cholesky_lower_inplace(a) == 3
    assert cholesky_lower_inplace(np.zeros((2, 2))) == 1


def test_serial_blas_limits_to_one_thread():
    from threadpoolctl import threadpool_info

    with serial_blas():
        assert all(p["num_threads"] == 1 for p in threadpool_info() if p["user_api"] == "blas")


@pytest.mark.parametrize(("p", "f"), [(1, 1), (3, 7), (64, 256), (17, 300)])
def test_outer_lower_into_is_the_lower_triangle_of_phi_phi_t(p, f):
    phi = np.random.default_rng(p + f).standard_normal((p, f))
    out = np.full((p, p), 7.0)
    outer_lower_into(phi, out)
    ref = phi @ phi.T
    low = np.tril_indices(p)
    np.testing.assert_allclose(out[low], ref[low], rtol=1e-13, atol=1e-13 * np.abs(ref).max())
    assert np.all(out[np.triu_indices(p, 1)] == 7.0)


@pytest.mark.parametrize(("n", "f"), [(1, 1), (7, 3), (64, 256), (300, 17)])
def test_lower_right_multiply_inplace_is_b_times_the_lower_triangle(n, f):
    rng = np.random.default_rng(n + 3 * f)
    b = rng.standard_normal((n, f))
    low = rng.standard_normal((f, f))
    ref = b @ np.tril(low)
    low[np.triu_indices(f, 1)] = np.nan  # the strict upper triangle is never read
    lower_right_multiply_inplace(b, low)
    np.testing.assert_allclose(b, ref, rtol=1e-12, atol=1e-13 * np.abs(ref).max())


def test_cholesky_solve_rows_equals_numpy_and_reports_failures():
    """``w = rhs g^-1`` from the lower triangle of an SPD ``g`` (the upper one is never read);
    status 1 for a matrix that is not positive definite, 2 for a numerically singular one."""
    rng = np.random.default_rng(5)
    a = rng.standard_normal((40, 12))
    spd = a.T @ a + 0.1 * np.eye(12)
    rhs = rng.standard_normal((2, 12))
    g = np.tril(spd) + np.triu(np.full((12, 12), np.nan), 1)
    w, y = np.empty((2, 12)), np.empty(12)
    assert cholesky_solve_rows(g, rhs, w, y) == 0
    np.testing.assert_allclose(w, np.linalg.solve(spd, rhs.T).T, rtol=1e-12)
    assert cholesky_solve_rows(-np.eye(3), np.ones((1, 3)), np.empty((1, 3)), np.empty(3)) == 1
    v = rng.standard_normal(12)
    near = np.outer(v, v) + 1e-18 * np.eye(12)  # rank one: a pivot far below F eps max diag
    assert cholesky_solve_rows(near, rhs, w, y) in (1, 2)


def test_factor_once_and_solve_rows_is_cholesky_solve_rows():
    """The two halves of :func:`cholesky_solve_rows`: one factor serves several right-hand sides
    (each against numpy) and gives the same bits as the one-call solve; the factor's statuses."""
    rng = np.random.default_rng(7)
    a = rng.standard_normal((30, 9))
    spd = a.T @ a + 0.1 * np.eye(9)
    g = np.tril(spd) + np.triu(np.full((9, 9), np.nan), 1)
    assert cholesky_factor_checked(g) == 0
    np.testing.assert_allclose(np.tril(g), np.linalg.cholesky(spd), rtol=1e-12)
    y = np.empty(9)
    for rhs in (rng.standard_normal((1, 9)), rng.standard_normal((3, 9))):
        w = np.empty_like(rhs)
        assert factored_solve_rows(g, rhs, w, y) == 0
        np.testing.assert_allclose(w, np.linalg.solve(spd, rhs.T).T, rtol=1e-12)
        once = np.empty_like(rhs)
        assert cholesky_solve_rows(np.tril(spd), rhs, once, y) == 0
        np.testing.assert_array_equal(w, once)
    assert cholesky_factor_checked(-np.eye(3)) == 1
    v = rng.standard_normal(9)
    assert cholesky_factor_checked(np.outer(v, v) + 1e-18 * np.eye(9)) in (1, 2)
    w = np.empty((1, 9))
    assert factored_solve_rows(np.tril(g), np.full((1, 9), np.inf), w, y) == 3
