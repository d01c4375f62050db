"""Tensor-product finite-volume grids in 1-D and 2-D and Gaussian cell averages on them.

Densities on a grid are cell averages (docs/math/predictions.md); the solver
(:func:`gtv.numerics.fokker_planck.solve_fokker_planck`) evolves them with zero-flux walls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "MIN_CELLS",
    "FVGrid",
    "gaussian_cell_averages",
    "grid_from_edges",
    "uniform_grid",
]

#: Fewest cells allowed along an axis.
MIN_CELLS = 8


@dataclass(frozen=True, eq=False)
class FVGrid:
    """A tensor-product finite-volume grid in 1-D or 2-D.

    Build it with :func:`uniform_grid` or :func:`grid_from_edges` (which validate the input).
    Densities on the grid are cell averages with shape ``grid.shape`` (``(n,)`` or ``(nx, ny)``,
    axis 0 = x, axis 1 = y, as ``meshgrid(..., indexing="ij")``).

    Attributes
    ----------
    edges : tuple of ndarray
        Cell edges per axis, strictly increasing, ``n_k + 1`` entries.
    """

    edges: tuple[np.ndarray, ...]

    @property
    def ndim(self) -> int:
        return len(self.edges)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(e.size - 1 for e in self.edges)

    @property
    def n_cells(self) -> int:
        return int(np.prod(self.shape))

    @property
    def centres(self) -> tuple[np.ndarray, ...]:
        """Cell centres per axis."""
        return tuple(0.5 * (e[1:] + e[:-1]) for e in self.edges)

    @property
    def widths(self) -> tuple[np.ndarray, ...]:
        """Cell widths per axis."""
        return tuple(np.diff(e) for e in self.edges)

    @property
    def volumes(self) -> np.ndarray:
        """Cell volumes (lengths in 1-D, areas in 2-D), shape ``grid.shape``."""
        w = self.widths
        return w[0].copy() if self.ndim == 1 else np.outer(w[0], w[1])

    def is_uniform(self, axis: int) -> bool:
        """Whether the cells along ``axis`` have equal widths (to 1e-10 relative)."""
        w = self.widths[axis]
        return bool(np.all(np.abs(w - w.mean()) <= 1e-10 * w.mean()))

    def points(self) -> np.ndarray:
        """Cell centres as an ``(n_cells, ndim)`` array, in the C order of ``grid.shape``."""
        c = self.centres
        if self.ndim == 1:
            return c[0][:, None].copy()
        X, Y = np.meshgrid(c[0], c[1], indexing="ij")
        return np.stack([X.ravel(), Y.ravel()], axis=1)

    def mass(self, density: np.ndarray) -> float:
        """``sum(density * volumes)``."""
        return float(np.sum(np.asarray(density) * self.volumes))

    def config(self) -> dict:
        return {
            "ndim": self.ndim,
            "shape": list(self.shape),
            "bounds": [[float(e[0]), float(e[-1])] for e in self.edges],
            "uniform": [self.is_uniform(k) for k in range(self.ndim)],
        }


def _check_edges(e: object, argname: str) -> np.ndarray:
    try:
        arr = np.array(e, dtype=np.float64).ravel()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{argname} must be a 1-D numeric array of cell edges") from exc
    if arr.size < MIN_CELLS + 1:
        raise ValueError(
            f"{argname} must describe at least MIN_CELLS = {MIN_CELLS} cells "
            f"({MIN_CELLS + 1} edges), got {max(arr.size - 1, 0)} cells"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{argname} must contain only finite values")
    if not np.all(np.diff(arr) > 0):
        raise ValueError(f"{argname} must be strictly increasing")
    arr.setflags(write=False)
    return arr


def grid_from_edges(*edges: object) -> FVGrid:
    """A grid from explicit cell edges, one strictly increasing array per axis (1 or 2 axes).

    Raises
    ------
    ValueError
        For a number of axes other than 1 or 2, fewer than ``MIN_CELLS`` cells along an axis,
        non-finite or non-increasing edges.
    """
    if len(edges) not in (1, 2):
        raise ValueError(f"edges: pass one array per axis (1 or 2 axes), got {len(edges)}")
    return FVGrid(tuple(_check_edges(e, f"edges[{k}]") for k, e in enumerate(edges)))


def uniform_grid(bounds: object, n_cells: object = None) -> FVGrid:
    """A uniform grid on ``[lo, hi]`` (1-D) or ``[lo_x, hi_x] x [lo_y, hi_y]`` (2-D).

    Parameters
    ----------
    bounds : (lo, hi) or ((lo_x, hi_x), (lo_y, hi_y))
        Domain; it must contain all but a negligible part of the mass at every time
        (see the boundary check of :func:`solve_fokker_planck`).
    n_cells : int or (int, int), optional
        Cells per axis (default 400 in 1-D, 200 per axis in 2-D); at least ``MIN_CELLS``.

    Raises
    ------
    ValueError
        For malformed or empty ``bounds`` or too few ``n_cells``.
    """
    try:
        b = np.array(bounds, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError("bounds must be (lo, hi) or ((lo_x, hi_x), (lo_y, hi_y))") from exc
    if b.shape == (2,):
        b = b[None, :]
    if b.ndim != 2 or b.shape[1] != 2 or b.shape[0] not in (1, 2):
        raise ValueError(
            f"bounds must be (lo, hi) or ((lo_x, hi_x), (lo_y, hi_y)), got shape {b.shape}"
        )
    if not (np.all(np.isfinite(b)) and np.all(b[:, 1] > b[:, 0])):
        raise ValueError(f"bounds must be finite with lo < hi on every axis, got {b.tolist()}")
    ndim = b.shape[0]
    if n_cells is None:
        n_cells = 400 if ndim == 1 else 200
    n = np.atleast_1d(np.asarray(n_cells))
    if n.size == 1 and ndim == 2:
        n = np.repeat(n, 2)
    if n.shape != (ndim,) or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in n.tolist()
    ):
        raise ValueError(f"n_cells must be an integer or one integer per axis, got {n_cells!r}")
    if np.any(n < MIN_CELLS):
        raise ValueError(f"n_cells must be >= MIN_CELLS = {MIN_CELLS} per axis, got {n_cells!r}")
    edges = []
    for k in range(ndim):
        e = np.linspace(b[k, 0], b[k, 1], int(n[k]) + 1)
        e.setflags(write=False)
        edges.append(e)
    return FVGrid(tuple(edges))


def gaussian_cell_averages(grid: FVGrid, mean: object = 0.0, cov: object = 1.0) -> np.ndarray:
    """Cell averages of the Gaussian density ``N(mean, cov)`` on ``grid``.

    For the PF-ODE initial density ``N(0, sigma_T**2 I)`` pass ``cov=schedule.sigma2(T)``.

    Parameters
    ----------
    grid : FVGrid
    mean : float or array_like, shape (d,)
    cov : float (isotropic), array_like (d,) (diagonal) or (d, d)
        Diagonal covariances are averaged exactly (differences of ``erf``); a full 2x2
        covariance with 6x6 Gauss-Legendre points per cell (relative error ~1e-12 for cells up
        to ~1 standard deviation wide).

    Returns
    -------
    ndarray, shape ``grid.shape``
    """
    from scipy.special import erf

    d = grid.ndim
    m = np.broadcast_to(np.asarray(mean, dtype=np.float64), (d,))
    c = np.asarray(cov, dtype=np.float64)
    if c.ndim == 0:
        c = np.eye(d) * c
    elif c.shape == (d,):
        c = np.diag(c)
    if c.shape != (d, d) or not np.all(np.isfinite(c)) or not np.allclose(c, c.T):
        raise ValueError(f"cov must be a scalar, ({d},) or a symmetric ({d}, {d}) array")
    if np.any(np.linalg.eigvalsh(c) <= 0):
        raise ValueError("cov must be positive definite")
    if d == 1 or c[0, 1] == 0.0:
        out = []
        for k in range(d):
            z = (grid.edges[k] - m[k]) / math.sqrt(2.0 * c[k, k])
            out.append(0.5 * np.diff(erf(z)) / grid.widths[k])
        return out[0] if d == 1 else np.outer(out[0], out[1])
    nodes, weights = np.polynomial.legendre.leggauss(6)
    pts, wts = [], []
    for k in range(2):
        lo, w = grid.edges[k][:-1], grid.widths[k]
        pts.append(lo[:, None] + 0.5 * w[:, None] * (nodes[None, :] + 1.0))
        wts.append(0.5 * weights)
    inv = np.linalg.inv(c)
    norm = 1.0 / (2.0 * math.pi * math.sqrt(np.linalg.det(c)))
    dx = pts[0][:, None, :, None] - m[0]
    dy = pts[1][None, :, None, :] - m[1]
    q = inv[0, 0] * dx * dx + 2.0 * inv[0, 1] * dx * dy + inv[1, 1] * dy * dy
    vals = norm * np.exp(-0.5 * q)
    return np.einsum("ijab,a,b->ij", vals, wts[0], wts[1])
