"""The numba kernels against the scipy.sparse reference backend, threads, the Selling decomposition.

Serial vs parallel kernels and thread-count invariance; Selling's decomposition reproduces Q with
non-negative weights in both backends; numba-jitted coefficients are accepted.
"""

import numba
import numpy as np
import pytest

from gtv.numerics.fokker_planck import (
    SCHEMES,
    gaussian_cell_averages,
    grid_from_edges,
    solve_fokker_planck,
    uniform_grid,
)
from gtv.numerics.fokker_planck.geometry import Geometry
from gtv.numerics.fokker_planck.numba_backend import NumbaBackend
from gtv.numerics.fokker_planck.numpy_backend import NumpyBackend

from .exact import EPS, T, cell_avg, check_invariants


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_selling_decomposition_reproduces_q(backend):
    """sum_e rho_e (H e)(H e)^T + diag(qx, qy) = Q for random SPD Q (all weights >= 0)."""
    rng = np.random.default_rng(3)
    a = rng.normal(size=(500, 2, 2))
    q = a @ np.swapaxes(a, 1, 2) + 1e-3 * np.eye(2)
    q[:50, 0, 1] = q[:50, 1, 0] = 0.0  # diagonal ones stay on the axes
    hx, hy = 0.1, 0.25
    geom = Geometry(uniform_grid(((0, 1), (0, 1)), 10))
    be = NumbaBackend(geom) if backend == "numba" else NumpyBackend(geom)
    qx, qy, ex, ey, rho, dropped = be.selling(
        np.ascontiguousarray(q[:, 0, 0]),
        np.ascontiguousarray(q[:, 0, 1]),
        np.ascontiguousarray(q[:, 1, 1]),
        hx,
        hy,
        30,
    )
    assert np.all(rho >= 0) and np.all(qx >= 0) and np.all(qy >= 0)
    assert np.all(dropped <= 1e-12)
    hex_, hey = hx * ex, hy * ey
    rec = np.zeros_like(q)
    rec[:, 0, 0] = qx + np.sum(rho * hex_ * hex_, axis=1)
    rec[:, 1, 1] = qy + np.sum(rho * hey * hey, axis=1)
    rec[:, 0, 1] = rec[:, 1, 0] = np.sum(rho * hex_ * hey, axis=1)
    scale = np.trace(q, axis1=1, axis2=2)[:, None, None]
    assert np.all(np.abs(rec - q) <= 1e-12 * scale)
    np.testing.assert_array_equal(rho[:50], 0.0)


# -- backends, threads ----------------------------------------------------------------------------
def _drift_1d(x, t):
    return 0.8 * x + 0.3 * np.sin(2 * x) * (1 + t)


def _noise_1d(x, t):
    return 0.4 + 0.3 * np.cos(x[:, 0]) ** 2 * t


def _drift_2d(x, t):
    return np.stack(
        [0.8 * x[:, 0] + 0.2 * np.sin(x[:, 1]), 0.5 * x[:, 1] - 0.3 * np.cos(x[:, 0]) * t], axis=1
    )


def _noise_2d_full(x, t):
    a = 0.5 + 0.2 * np.sin(x[:, 0])
    c = 0.4 + 0.2 * np.cos(x[:, 1])
    r = 0.89 * np.tanh(x[:, 0] - x[:, 1])
    out = np.empty((x.shape[0], 2, 2))
    out[:, 0, 0], out[:, 1, 1] = a, c
    out[:, 0, 1] = out[:, 1, 0] = r * np.sqrt(a * c)
    return out


def _noise_2d_diag(x, t):
    return np.stack([0.5 + 0.2 * np.sin(x[:, 0]), 0.3 + 0.1 * t + 0 * x[:, 1]], axis=1)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("noise", [_noise_1d, None])
def test_numba_matches_reference_1d(scheme, noise):
    """Non-uniform grid, space- and time-dependent coefficients (the limiter is active for
    Q = 0): the numba kernels agree with the scipy.sparse reference to rounding."""
    edges = np.concatenate([np.linspace(-5, 0, 31), np.linspace(0, 5, 51)[1:]])
    grid = grid_from_edges(edges)
    p0 = cell_avg(edges, 0.3, 0.8)
    args = (_drift_1d, noise, p0, grid, T, 0.05, 20)
    a = solve_fokker_planck(*args, scheme=scheme)
    b = solve_fokker_planck(*args, scheme=scheme, backend="numpy")
    np.testing.assert_allclose(a.density, b.density, rtol=0, atol=1e-13 * a.density.max())
    np.testing.assert_allclose(a.limited_mass, b.limited_mass, rtol=1e-9, atol=1e-15)
    check_invariants(a)
    if scheme == "tr-bdf2-fct" and noise is None:
        assert a.limited_mass.sum() > 0  # the comparison covers the limiter


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("noise", [_noise_2d_full, _noise_2d_diag, None, "non-uniform"])
def test_numba_matches_reference_2d(scheme, noise):
    """hx != hy, space-time dependent coefficients, full noise with long lattice directions;
    and a non-uniform 2-D grid (diagonal noise)."""
    grid = uniform_grid(((-5, 5), (-5, 5)), (36, 30))
    if noise == "non-uniform":
        ex = np.concatenate([np.linspace(-5, 0, 13), np.linspace(0, 5, 31)[1:]])
        u = np.linspace(-5, 5, 27)
        grid, noise = grid_from_edges(ex, u**3 / 25 + 0.6 * u), _noise_2d_diag  # y: -8 .. 8
    p0 = gaussian_cell_averages(grid, [0.2, -0.1], [[0.8, 0.2], [0.2, 0.6]])
    args = (_drift_2d, noise, p0, grid, T, 0.05, 8)
    a = solve_fokker_planck(*args, scheme=scheme)
    b = solve_fokker_planck(*args, scheme=scheme, backend="numpy")
    np.testing.assert_allclose(a.density, b.density, rtol=0, atol=1e-13 * a.density.max())
    check_invariants(a)


def test_full_noise_uses_long_directions():
    """The full-noise test case above really exercises sweeps beyond the 7-point stencil."""
    grid = uniform_grid(((-5, 5), (-5, 5)), (36, 30))
    geom = Geometry(grid)
    q = _noise_2d_full(geom.cell_points, 0.5)
    _, _, ex, ey, rho, _ = NumbaBackend(geom).selling(
        q[:, 0, 0].copy(), q[:, 0, 1].copy(), q[:, 1, 1].copy(), *geom.spacing, 8
    )
    used = {(int(a), int(b)) for a, b in zip(ex[rho > 0], ey[rho > 0], strict=True)}
    assert {(1, 1), (1, -1)} <= used
    assert any(max(abs(a), abs(b)) >= 2 for a, b in used), used


def test_parallel_kernels_and_thread_count_do_not_change_results():
    grid = uniform_grid(((-5, 5), (-5, 5)), (30, 26))
    p0 = gaussian_cell_averages(grid, [0.2, -0.1], [[0.8, 0.2], [0.2, 0.6]])
    args = (_drift_2d, _noise_2d_full, p0, grid, T, 0.05, 3)
    serial = solve_fokker_planck(*args, parallel=False)
    outs = []
    for n_threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
        numba.set_num_threads(n_threads)
        try:
            outs.append(solve_fokker_planck(*args, parallel=True).density)
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    for out in outs:
        np.testing.assert_array_equal(out, serial.density)


def test_numba_jitted_coefficients_are_accepted():
    @numba.njit
    def drift(x, t):
        return 1.5 * (x - 0.4)

    @numba.njit
    def noise(x, t):
        return 0.6 + 0.0 * x[:, 0]

    grid = uniform_grid((-5, 5), 200)
    p0 = cell_avg(grid.edges[0], -0.8, 0.5)
    a = solve_fokker_planck(drift, noise, p0, grid, T, EPS, 40)
    b = solve_fokker_planck(lambda x, t: 1.5 * (x - 0.4), 0.6, p0, grid, T, EPS, 40)
    np.testing.assert_array_equal(a.density, b.density)
