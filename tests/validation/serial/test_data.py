"""The experiments' densities: the Swiss roll and the 3-mode mixture."""

import numpy as np
import pytest

from gtv.numerics.serial import Grid
from gtv.validation.serial.data import (
    density,
    roll_mask,
    swiss_roll,
    swiss_roll_curve,
    three_modes,
)


def _roll_by_loops(grid: Grid, width: float) -> np.ndarray:
    """The roll indicator computed point by point (independent of the vectorised version)."""
    curve = []
    for k in range(101):
        t = 1.5 * np.pi * (1 + 2 * k / 100)
        curve.append((t * np.sin(t), -t * np.cos(t)))
    curve = np.array(curve)
    for a in range(2):
        lo, hi = curve[:, a].min(), curve[:, a].max()
        curve[:, a] = -0.4 + 0.8 * (curve[:, a] - lo) / (hi - lo)
    out = np.zeros(grid.shape, dtype=bool)
    for i, x in enumerate(grid.axis):
        for j, y in enumerate(grid.axis):
            out[i, j] = min(np.hypot(x - cx, y - cy) for cx, cy in curve) < width
    return out


@pytest.mark.parametrize("grid", [Grid.authors(0.04), Grid.torus(20)], ids=["authors", "torus"])
def test_roll_mask_matches_a_pointwise_computation(grid):
    assert np.array_equal(roll_mask(grid), _roll_by_loops(grid, 0.04))


def test_swiss_roll_is_the_authors_mixture():
    grid = Grid.authors(0.025)
    p = swiss_roll(grid)
    on = roll_mask(grid)
    assert p.shape == (41, 41) and abs(p.sum() - 1) < 1e-12
    # off the roll only the uniform floor: 0.1 / M
    assert np.allclose(p[~on], 0.1 / grid.size)
    # on the roll: 0.9 spread evenly over the roll cells, plus the floor
    assert np.allclose(p[on], 0.9 / on.sum() + 0.1 / grid.size)
    assert 100 < on.sum() < 600  # a thin curve, not the whole grid


def test_curve_is_rescaled_to_pm_04():
    c = swiss_roll_curve()
    assert c.shape == (101, 2)
    assert np.allclose(c.min(axis=0), -0.4) and np.allclose(c.max(axis=0), 0.4)


def test_three_modes_peaks_at_its_means():
    grid = Grid.torus(40)
    p = three_modes(grid)
    assert abs(p.sum() - 1) < 1e-12 and np.all(p > 0)
    for mx, my in ((0.1, 0.2), (-0.2, -0.1)):
        i = int(np.argmin(np.abs(grid.axis - mx)))
        j = int(np.argmin(np.abs(grid.axis - my)))
        assert p[i, j] == p[i - 1 : i + 2, j - 1 : j + 2].max()
    # the third mode is elongated along the diagonal (covariance W [[2, 1], [1, 2]])
    i, j = int(np.argmin(np.abs(grid.axis - 0.2))), int(np.argmin(np.abs(grid.axis + 0.2)))
    assert p[i + 3, j + 3] > p[i + 3, j - 3]


def test_density_names_and_bad_input():
    grid = Grid.torus(10)
    assert np.allclose(density("uniform", grid), 0.01)
    with pytest.raises(ValueError, match="density"):
        density("moons", grid)
    with pytest.raises(ValueError, match="grid"):
        swiss_roll(Grid.torus(10, dim=1))
    with pytest.raises(ValueError, match="grid"):
        swiss_roll(np.zeros((10, 10)))
    with pytest.raises(ValueError, match="width"):
        roll_mask(grid, width=0.0)
    with pytest.raises(ValueError, match="floor"):
        swiss_roll(grid, floor=1.5)
