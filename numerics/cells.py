"""The (t, x) cells of the occupancy strata, shared by the linear and the kernel fields.

docs/math/finite_fp.md, section *Occupancy strata*. The stratified fields replace a member's
light triples by their equivalent given how many of them land in each cell of the ``(t, x)``
plane. The cells are ``n_t`` geometric bins in ``t`` from ``eps`` to ``T`` times ``n_x`` bins in
``x``: ``n_x - 2`` equal bins over a range ``[lo, hi]`` widened by a sixth of its width on each
side, plus two open outer bins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gtv.numerics.checks import check_count

__all__ = ["STRATA", "CellGrid", "cell_grid"]

#: Default cells: (time bins, space bins).
STRATA = (32, 16)


@dataclass(frozen=True)
class CellGrid:
    """Interior edges of the strata cells (module docstring).

    Attributes
    ----------
    shape : (int, int)
        Time bins and space bins.
    t_edges : ndarray (n_t - 1,)
        Interior time edges.
    x_edges : ndarray (n_x - 1,)
        Space edges; the first and last bins are open.
    """

    shape: tuple[int, int]
    t_edges: np.ndarray
    x_edges: np.ndarray

    @property
    def size(self) -> int:
        """Number of cells ``n_t * n_x``."""
        return self.shape[0] * self.shape[1]

    def time_bin(self, t: np.ndarray) -> np.ndarray:
        """Time bin of each ``t`` (0 … n_t - 1)."""
        return np.searchsorted(self.t_edges, t, side="right")

    def cell(self, t: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Cell number ``i_t * n_x + i_x`` of each ``(t, x)`` (broadcast)."""
        return self.time_bin(t) * self.shape[1] + np.searchsorted(self.x_edges, x, side="right")


def cell_grid(
    eps: float, T: float, x_range: tuple[float, float], shape: tuple[int, int] = STRATA
) -> CellGrid:
    """The strata cells over ``[eps, T] x x_range`` (module docstring).

    Parameters
    ----------
    eps, T : float
        Time range, ``0 < eps < T``.
    x_range : (float, float)
        ``lo < hi``, the range the inner space bins cover (widened by a sixth on each side).
    shape : (int, int), default STRATA
        Time bins (``>= 1``) and space bins (``>= 3``).
    """
    if not (np.isfinite([eps, T]).all() and 0 < eps < T):
        raise ValueError(f"eps and T must satisfy 0 < eps < T, got eps = {eps!r}, T = {T!r}")
    lo, hi = float(x_range[0]), float(x_range[1])
    if not (np.isfinite([lo, hi]).all() and lo < hi):
        raise ValueError(f"x_range must be finite with lo < hi, got {x_range!r}")
    if len(shape) != 2:
        raise ValueError(f"strata must be (time bins, space bins), got {shape!r}")
    n_t = check_count(shape[0], "strata (time bins)")
    n_x = check_count(shape[1], "strata (space bins)", 3)
    t_edges = np.geomspace(eps, T, n_t + 1)[1:-1]
    x_edges = np.linspace(lo - (hi - lo) / 6, hi + (hi - lo) / 6, n_x - 1)
    return CellGrid((n_t, n_x), t_edges, x_edges)
