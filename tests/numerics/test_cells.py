"""The (t, x) cells of the occupancy strata (gtv.numerics.cells)."""

import numpy as np
import pytest

from gtv.numerics.cells import STRATA, cell_grid


def test_edges_by_hand():
    """4 geometric time bins on [0.01, 1] (edges 0.01 * 100**(k/4)); 5 space bins: three equal
    ones over [-1, 1] widened by a sixth of its width on each side, plus two open outer bins."""
    g = cell_grid(0.01, 1.0, (-1.0, 1.0), (4, 5))
    assert g.shape == (4, 5) and g.size == 20
    np.testing.assert_allclose(g.t_edges, [0.01 * 100**0.25, 0.1, 0.01 * 100**0.75], rtol=1e-12)
    np.testing.assert_allclose(g.x_edges, np.linspace(-4 / 3, 4 / 3, 4), rtol=1e-12)
    assert cell_grid(0.01, 1.0, (-1.0, 1.0)).shape == STRATA


def test_cell_numbers_and_broadcasting():
    g = cell_grid(0.01, 1.0, (-1.0, 1.0), (4, 5))
    t = np.array([0.01, 0.05, 0.5, 1.0])  # bins 0, 1, 3, 3
    x = np.array([-5.0, -1.0, 0.0, 5.0])  # bins 0, 1, 2, 4
    np.testing.assert_array_equal(g.time_bin(t), [0, 1, 3, 3])
    np.testing.assert_array_equal(g.cell(t, x), [0, 6, 17, 19])
    # a time per row against a grid of positions, as on the quadrature nodes
    full = g.cell(t[:, None], np.tile(x, (4, 1)))
    np.testing.assert_array_equal(full, g.time_bin(t)[:, None] * 5 + g.cell(0.01, x)[None, :])


@pytest.mark.parametrize(
    "args,match",
    [
        ((0.0, 1.0, (-1, 1), (4, 5)), "0 < eps < T"),
        ((0.5, 0.1, (-1, 1), (4, 5)), "0 < eps < T"),
        ((0.01, 1.0, (1, -1), (4, 5)), "x_range"),
        ((0.01, 1.0, (-1, np.inf), (4, 5)), "x_range"),
        ((0.01, 1.0, (-1, 1), (4,)), "strata must be"),
        ((0.01, 1.0, (-1, 1), (0, 5)), "time bins"),
        ((0.01, 1.0, (-1, 1), (4, 2)), "space bins"),
    ],
)
def test_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        cell_grid(*args)
