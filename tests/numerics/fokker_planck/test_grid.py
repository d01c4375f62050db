"""Finite-volume grids and Gaussian cell averages (gtv.numerics.fokker_planck.grid)."""

import math

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from gtv.numerics.fokker_planck import (
    MIN_CELLS,
    gaussian_cell_averages,
    grid_from_edges,
    uniform_grid,
)

from .exact import cell_avg


def test_gaussian_cell_averages_correlated_matches_scipy():
    grid = uniform_grid(((-3, 3), (-2, 2)), (12, 10))
    mean, cov = np.array([0.2, -0.1]), np.array([[0.5, 0.3], [0.3, 0.4]])
    avg = gaussian_cell_averages(grid, mean, cov)
    mvn = multivariate_normal(mean, cov)
    ex, ey = grid.edges
    for i, j in [(5, 4), (6, 5), (2, 7), (9, 1), (0, 0)]:
        prob = (
            mvn.cdf([ex[i + 1], ey[j + 1]])
            - mvn.cdf([ex[i], ey[j + 1]])
            - mvn.cdf([ex[i + 1], ey[j]])
            + mvn.cdf([ex[i], ey[j]])
        )
        assert abs(avg[i, j] * grid.volumes[i, j] - prob) <= 1e-6 * max(prob, 1e-3), (i, j)
    diag = gaussian_cell_averages(grid, mean, [0.5, 0.4])
    np.testing.assert_allclose(
        diag, np.outer(cell_avg(ex, 0.2, 0.5), cell_avg(ey, -0.1, 0.4)), rtol=1e-12
    )


@pytest.mark.parametrize(
    "call, argname",
    [
        (lambda: uniform_grid((-1, 1), MIN_CELLS - 1), "n_cells"),
        (lambda: uniform_grid((-1, 1), 10.0), "n_cells"),
        (lambda: uniform_grid((1, -1), 10), "bounds"),
        (lambda: uniform_grid((0, 1, 2), 10), "bounds"),
        (lambda: uniform_grid(((0, 1), (0, np.inf)), 10), "bounds"),
        (lambda: grid_from_edges(np.linspace(0, 1, MIN_CELLS)), r"edges\[0\]"),
        (
            lambda: grid_from_edges(np.linspace(0, 1, 20), np.r_[0, 2, 1, np.arange(3, 20)]),
            r"edges\[1\]",
        ),
        (lambda: grid_from_edges(), "edges"),
    ],
)
def test_bad_grid_raises(call, argname):
    with pytest.raises(ValueError, match=rf"^{argname}"):
        call()


def test_grid_geometry():
    g = grid_from_edges([0, 1, 3, 4, 5, 7, 8, 9, 10], np.linspace(-1, 1, 11))
    assert g.shape == (8, 10) and g.ndim == 2 and g.n_cells == 80
    np.testing.assert_allclose(g.widths[0], [1, 2, 1, 1, 2, 1, 1, 1])
    np.testing.assert_allclose(g.centres[0][:3], [0.5, 2, 3.5])
    assert g.volumes.shape == (8, 10) and math.isclose(g.volumes.sum(), 20.0)
    assert not g.is_uniform(0) and g.is_uniform(1)
    pts = g.points()
    assert pts.shape == (80, 2) and pts[11].tolist() == [2.0, -0.7]
