"""The densities of the serial-reproduction experiments: the Swiss roll and the 3-mode mixture.

Both are the authors' (docs/serial.md, "Setup"):

* **Swiss roll.** The curve ``(t sin t, -t cos t)`` at ``t = (3 pi / 2)(1 + 2u)`` for 101 values
  ``u = 0, 0.01, .., 1``, each coordinate rescaled to [-0.4, 0.4]; a grid point is on the roll
  when its distance to the nearest curve point is below ``width`` (0.04). The roll indicator is
  normalised and mixed with the uniform density: ``(1 - floor) roll + floor uniform`` with
  ``floor = 0.1``.
* **Three modes.** Three Gaussian densities (not periodic) with means (0.1, 0.2), (-0.2, -0.1),
  (0.2, -0.2) and covariances ``W I``, ``W I``, ``W [[2, 1], [1, 2]]``, ``W = 8 * 0.04**2``,
  summed and normalised on the grid. The terminal density of the "fade to 3 modes" noise.

Coordinates: a density ``p`` on a 2-D grid is indexed ``p[i, j]`` at ``x = axis[i]``,
``y = axis[j]`` (``Grid.mesh``).
"""

from __future__ import annotations

import numpy as np

from gtv.numerics.serial import Grid

__all__ = ["density", "roll_mask", "swiss_roll", "swiss_roll_curve", "three_modes"]

#: Half-width of the roll (distance to the curve below which a grid point is on the roll).
ROLL_WIDTH = 0.04
#: Weight of the uniform density mixed into the roll.
UNIFORM_FLOOR = 0.1


def _check_2d(grid: object) -> Grid:
    if not isinstance(grid, Grid):
        raise ValueError(f"grid must be a gtv.numerics.serial.Grid, got {type(grid).__name__}")
    if grid.dim != 2:
        raise ValueError(f"grid must be 2-D for the paper's densities, got dim = {grid.dim}")
    return grid


def swiss_roll_curve(n_points: int = 101) -> np.ndarray:
    """The Swiss-roll curve, (n_points, 2), each coordinate rescaled to [-0.4, 0.4]."""
    u = np.linspace(0.0, 1.0, int(n_points))
    t = 1.5 * np.pi * (1.0 + 2.0 * u)
    curve = np.stack([t * np.sin(t), -t * np.cos(t)], axis=1)
    lo, hi = curve.min(axis=0), curve.max(axis=0)
    return (curve - lo) / (hi - lo) * 0.8 - 0.4


def roll_mask(grid: Grid, width: float = ROLL_WIDTH) -> np.ndarray:
    """Boolean array of ``grid.shape``: grid points closer than ``width`` to the curve."""
    grid = _check_2d(grid)
    if not (np.isfinite(width) and width > 0):
        raise ValueError(f"width must be finite and > 0, got {width!r}")
    curve = swiss_roll_curve()
    d2 = ((grid.points[:, None, :] - curve[None, :, :]) ** 2).sum(axis=-1).min(axis=1)
    mask = (np.sqrt(d2) < width).reshape(grid.shape)
    if not mask.any():
        raise ValueError(
            f"width = {width!r} puts no grid point on the roll (spacing {grid.spacing})"
        )
    return mask


def swiss_roll(grid: Grid, width: float = ROLL_WIDTH, floor: float = UNIFORM_FLOOR) -> np.ndarray:
    """The Swiss-roll density ``(1 - floor) roll + floor uniform`` on ``grid`` (sums to 1)."""
    if not (0.0 <= floor <= 1.0):
        raise ValueError(f"floor must be in [0, 1], got {floor!r}")
    roll = roll_mask(grid, width).astype(np.float64)
    roll /= roll.sum()
    return (1.0 - floor) * roll + floor / grid.size


def three_modes(grid: Grid) -> np.ndarray:
    """The authors' 3-mode Gaussian mixture on ``grid`` (not periodic; sums to 1)."""
    grid = _check_2d(grid)
    w = 8 * 0.04**2
    means = ((0.1, 0.2), (-0.2, -0.1), (0.2, -0.2))
    covs = (w * np.eye(2), w * np.eye(2), w * np.array([[2.0, 1.0], [1.0, 2.0]]))
    out = np.zeros(grid.size)
    for mean, cov in zip(means, covs, strict=True):
        d = grid.points - np.asarray(mean)
        quad = np.einsum("mi,ij,mj->m", d, np.linalg.inv(cov), d)
        out += np.exp(-0.5 * quad) / (2 * np.pi * np.sqrt(np.linalg.det(cov)))
    return (out / out.sum()).reshape(grid.shape)


#: Densities by the names used in configurations.
DENSITIES = {"swiss-roll": swiss_roll, "three-modes": three_modes}


def density(name: str, grid: Grid) -> np.ndarray:
    """``"swiss-roll"``, ``"three-modes"`` or ``"uniform"`` on ``grid``."""
    if name == "uniform":
        return grid.uniform()
    if name not in DENSITIES:
        raise ValueError(f"density must be one of {('uniform', *DENSITIES)}, got {name!r}")
    return DENSITIES[name](grid)
