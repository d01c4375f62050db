"""Grids: the true torus and the authors' grid with its duplicated boundary."""

from __future__ import annotations

import numpy as np
import pytest

from gtv.numerics.serial import Grid, pairwise_displacement_index


def test_authors_grid_matches_their_colon_operator():
    g = Grid.authors(0.025)
    assert g.shape == (41, 41) and g.size == 1681 and g.duplicated
    np.testing.assert_allclose(g.axis, np.linspace(-0.5, 0.5, 41), atol=1e-15)
    assert Grid.authors(0.04).shape == (26, 26)
    assert Grid.authors(n=26) == Grid.authors(0.04)
    assert g.period_points == 40 and g.torus_shape == (40, 40) and g.spacing == 0.025


def test_torus_grid_has_every_point_once():
    g = Grid.torus(40)
    assert g.shape == (40, 40) and not g.duplicated and g.layout == "torus"
    assert g.axis[0] == -0.5 and g.axis[-1] == pytest.approx(0.475)
    assert g.points.shape == (1600, 2)
    # C order of the shape: point k = (axis[i], axis[j]) with k = i * n + j
    np.testing.assert_array_equal(g.points[41], [g.axis[1], g.axis[1]])


@pytest.mark.parametrize("dim", [1, 2])
def test_fold_and_lift_are_adjoint(dim):
    g = Grid.authors(n=7, dim=dim)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=g.shape), rng.normal(size=g.torus_shape)
    assert np.sum(g.fold(x) * y) == pytest.approx(np.sum(x * g.lift(y)), rel=1e-14)
    # folding sums the duplicates: the multiplicity of the corner torus point is 2**dim
    count = g.fold(np.ones(g.shape))
    assert count.flat[0] == 2**dim and count.sum() == g.size
    np.testing.assert_array_equal(g.lift(y)[-1], g.lift(y)[0])


def test_displacements_break_ties_towards_plus_half_like_the_authors():
    g = Grid.authors(n=9, dim=1)  # m = 8: an offset of 4 cells is half the period
    k = g.displacement_index()[..., 0]
    assert k.tolist() == [0, 1, 2, 3, 4, -3, -2, -1]
    pair = pairwise_displacement_index(g)[..., 0]  # the authors' nine-shift search, exactly
    tau = g.torus_index[:, 0]
    np.testing.assert_array_equal(pair, k[(tau[:, None] - tau[None, :]) % 8])
    assert pair[4, 0] == 4 and pair[0, 4] == 4  # both directions: +half a period


def test_check_density_accepts_a_density():
    g = Grid.torus(4, dim=1)
    p = g.check_density([0.1, 0.2, 0.3, 0.4])
    assert p.dtype == np.float64 and p.shape == (4,)
    g.check_density(np.array([0.25] * 4) + 1e-11)  # within 1e-9 is fine (not renormalised)


@pytest.mark.parametrize(
    "p, match",
    [
        ([0.5, 0.5, 0.5, -0.5], "non-negative"),
        ([0.5, 0.5, np.nan, 0.0], "finite"),
        ([0.5, 0.5, np.inf, 0.0], "finite"),
        ([0.3, 0.3, 0.3, 0.3], "sum to 1"),
        ([0.25, 0.25, 0.25, 0.25 + 2e-9], "sum to 1"),
        ([0.5, 0.5], "shape"),
        ("abc", "numeric"),
    ],
)
def test_check_density_rejects_bad_densities(p, match):
    with pytest.raises(ValueError, match=f"data.*{match}|{match}"):
        Grid.torus(4, dim=1).check_density(p, "data")


def test_check_density_names_the_argument_and_flat_arrays():
    g = Grid.torus(3)
    with pytest.raises(ValueError, match="start must have the grid's shape.*flat"):
        g.check_density(np.full(9, 1 / 9), "start")


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Grid.torus(1), "n \\(grid points per axis\\) must be an integer >= 2"),
        (lambda: Grid.torus(0, dim=1), "n \\(grid points per axis\\)"),
        (lambda: Grid.torus(2.5), "n \\(grid points per axis\\)"),
        (lambda: Grid.torus(8, dim=3), "dim must be 1 or 2"),
        (lambda: Grid.torus(8, length=0), "length must be"),
        (lambda: Grid.authors(n=1), "n \\(grid points per axis\\)"),
        (lambda: Grid.authors(1.5), "h must lie in \\(0, 1\\]"),
        (lambda: Grid.authors(0.03), "h must be 1/m"),
        (lambda: Grid.authors(-0.1), "h must lie"),
        (lambda: Grid.authors(0.1, n=11), "either h or n"),
    ],
)
def test_bad_grids_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()
