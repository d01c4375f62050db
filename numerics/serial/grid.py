"""Grids of the serial-reproduction chains: the true periodic torus and the authors' grid.

Both grids live on a torus of period ``length`` per axis. :meth:`Grid.torus` has ``n`` points per
axis at ``-length/2 + k h`` with ``h = length / n``: every torus point once. :meth:`Grid.authors`
reproduces the grid of Marjieh et al.'s simulations: ``[-0.5, 0.5]`` with spacing ``h`` and *both*
endpoints, i.e. ``m + 1`` points per axis for ``m = 1/h``; the first and last point of each axis
are the same torus point, so the boundary row and column appear twice (the duplicated boundary).

A density on either grid is an array of :attr:`Grid.shape` with entries summing to 1; entry
``p[i, j]`` sits at ``(axis[i], axis[j])`` (so ``imshow(p.T, origin="lower")`` draws it with x to
the right). Every grid point maps to a torus point: ``fold`` sums a grid array onto the torus
(adding the duplicates) and ``lift`` copies a torus array back to every grid point. Displacements
between grid points are minimum images per axis, taken in integer units of ``h`` in
``(-m/2, m/2]``: a displacement of exactly half a period counts as ``+length/2``, which is what the
authors' nine-shift search picks in exact arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from gtv.numerics.checks import check_count

__all__ = ["DENSITY_ATOL", "LAYOUTS", "Grid"]

#: The two layouts: the true torus and the authors' grid with its duplicated boundary.
LAYOUTS = ("torus", "authors")
#: A density must sum to 1 within this tolerance (it is never renormalised silently).
DENSITY_ATOL = 1e-9


def _check_dim(dim: object) -> int:
    if isinstance(dim, bool) or dim not in (1, 2):
        raise ValueError(f"dim must be 1 or 2, got {dim!r}")
    return int(dim)


@dataclass(frozen=True, eq=True)
class Grid:
    """A 1-D or 2-D grid on a torus (use :meth:`torus` or :meth:`authors` to make one).

    Parameters
    ----------
    n : int
        Points per axis (``>= 2``).
    dim : int
        1 or 2.
    length : float
        Period of the torus per axis.
    duplicated : bool
        True for the authors' layout: the last point of each axis repeats the first one.
    """

    n: int
    dim: int = 2
    length: float = 1.0
    duplicated: bool = False

    def __post_init__(self) -> None:
        check_count(self.n, "n (grid points per axis)", minimum=2)
        _check_dim(self.dim)
        length = float(self.length)
        if not (np.isfinite(length) and length > 0):
            raise ValueError(f"length must be a finite number > 0, got {self.length!r}")
        object.__setattr__(self, "n", int(self.n))
        object.__setattr__(self, "length", length)
        object.__setattr__(self, "duplicated", bool(self.duplicated))

    # -- constructors -------------------------------------------------------------------------

    @classmethod
    def torus(cls, n: int, dim: int = 2, length: float = 1.0) -> Grid:
        """The true periodic grid: ``n`` points per axis, spacing ``length / n``."""
        return cls(n=check_count(n, "n (grid points per axis)", minimum=2), dim=dim, length=length)

    @classmethod
    def authors(cls, h: float | None = None, dim: int = 2, *, n: int | None = None) -> Grid:
        """The authors' grid ``-0.5:h:0.5`` (both ends included) on the torus of period 1.

        Parameters
        ----------
        h : float, optional
            Spacing; ``1/h`` must be an integer ``m >= 1``, giving ``m + 1`` points per axis
            (0.025 gives 41, 0.04 gives 26). Default 0.025 unless ``n`` is given.
        dim : int
            1 or 2.
        n : int, optional
            Points per axis instead of ``h`` (``n >= 2``; ``h = 1/(n - 1)``).
        """
        if h is not None and n is not None:
            raise ValueError("give either h or n for the authors' grid, not both")
        if n is not None:
            n = check_count(n, "n (grid points per axis)", minimum=2)
            return cls(n=n, dim=dim, length=1.0, duplicated=True)
        h = 0.025 if h is None else h
        try:
            hf = float(h)
        except (TypeError, ValueError):
            raise ValueError(f"h must be a number 1/m for an integer m >= 1, got {h!r}") from None
        if not (np.isfinite(hf) and 0 < hf <= 1):
            raise ValueError(f"h must lie in (0, 1] (h = 1/m, m >= 1), got {h!r}")
        m = round(1.0 / hf)
        if abs(m * hf - 1.0) > 1e-9:
            raise ValueError(f"h must be 1/m for an integer m >= 1 (1/h = {1 / hf!r})")
        return cls(n=m + 1, dim=dim, length=1.0, duplicated=True)

    # -- geometry ------------------------------------------------------------------------------

    @property
    def layout(self) -> str:
        """``"authors"`` (duplicated boundary) or ``"torus"``."""
        return "authors" if self.duplicated else "torus"

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of a density on this grid, ``(n,) * dim``."""
        return (self.n,) * self.dim

    @property
    def size(self) -> int:
        """Number of grid points ``M = n**dim``."""
        return self.n**self.dim

    @property
    def period_points(self) -> int:
        """Distinct torus points per axis, ``m = n - 1`` (authors) or ``n`` (torus)."""
        return self.n - 1 if self.duplicated else self.n

    @property
    def torus_shape(self) -> tuple[int, ...]:
        """Shape of an array on the underlying torus, ``(m,) * dim``."""
        return (self.period_points,) * self.dim

    @property
    def spacing(self) -> float:
        """Grid spacing ``h = length / m``."""
        return self.length / self.period_points

    @cached_property
    def axis(self) -> np.ndarray:
        """Coordinates along one axis, ``-length/2 + k h`` for ``k = 0 .. n-1``."""
        return -0.5 * self.length + self.spacing * np.arange(self.n, dtype=np.float64)

    @cached_property
    def mesh(self) -> tuple[np.ndarray, ...]:
        """Coordinate arrays of :attr:`shape`, one per axis (``indexing="ij"``)."""
        return tuple(np.meshgrid(*([self.axis] * self.dim), indexing="ij"))

    @cached_property
    def points(self) -> np.ndarray:
        """All grid points, shape ``(M, dim)``, in the C order of :attr:`shape`."""
        return np.stack([c.ravel() for c in self.mesh], axis=1)

    @cached_property
    def torus_index(self) -> np.ndarray:
        """Torus index of every grid point, shape ``(M, dim)`` (``k mod m`` per axis)."""
        k = np.indices(self.shape).reshape(self.dim, -1).T
        return k % self.period_points

    def displacement_index(self) -> np.ndarray:
        """Integer displacements of the torus cells, shape ``(*torus_shape, dim)``.

        Entry ``[r_1, .., r_dim]`` is the minimum-image displacement of offset ``r`` in units of
        ``h``: ``r`` if ``r <= m/2``, else ``r - m`` (so values lie in ``(-m/2, m/2]``).
        """
        m = self.period_points
        r = np.arange(m)
        r = np.where(2 * r <= m, r, r - m)
        return np.stack(np.meshgrid(*([r] * self.dim), indexing="ij"), axis=-1)

    def displacements(self) -> np.ndarray:
        """Displacements of the torus cells in coordinates, ``displacement_index() * h``."""
        return self.displacement_index() * self.spacing

    # -- arrays on the grid --------------------------------------------------------------------

    def uniform(self) -> np.ndarray:
        """The uniform density over the grid points (duplicates included, as the authors do)."""
        return np.full(self.shape, 1.0 / self.size)

    def fold(self, x: np.ndarray) -> np.ndarray:
        """Sum a grid array onto the torus (the duplicated points add up); ``E^T x``."""
        if not self.duplicated:
            return x
        y = x[(slice(0, -1),) * self.dim].copy()
        if self.dim == 1:
            y[0] += x[-1]
        else:
            y[0, :] += x[-1, :-1]
            y[:, 0] += x[:-1, -1]
            y[0, 0] += x[-1, -1]
        return y

    def lift(self, y: np.ndarray) -> np.ndarray:
        """Copy a torus array to every grid point (duplicates get the same value); ``E y``."""
        if not self.duplicated:
            return y
        out = np.empty(self.shape)
        if self.dim == 1:
            out[:-1] = y
            out[-1] = y[0]
        else:
            out[:-1, :-1] = y
            out[-1, :-1] = y[0]
            out[:-1, -1] = y[:, 0]
            out[-1, -1] = y[0, 0]
        return out

    def check_density(self, p: object, argname: str = "p") -> np.ndarray:
        """Return ``p`` as a float64 density of :attr:`shape` or raise ``ValueError``.

        A density must be finite, non-negative and sum to 1 within :data:`DENSITY_ATOL`; it is
        never renormalised (normalise it yourself, e.g. ``p / p.sum()``).
        """
        try:
            a = np.asarray(p, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{argname} must be a numeric array of shape {self.shape}") from None
        if a.shape != self.shape:
            if a.size == self.size and a.ndim == 1 and self.dim > 1:
                raise ValueError(
                    f"{argname} must have the grid's shape {self.shape}, got a flat array of "
                    f"{a.size} values (reshape it to {self.shape})"
                )
            raise ValueError(f"{argname} must have the grid's shape {self.shape}, got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{argname} must contain only finite values")
        if np.any(a < 0):
            raise ValueError(f"{argname} must be non-negative (min {a.min()!r})")
        s = float(a.sum())
        if abs(s - 1.0) > DENSITY_ATOL:
            raise ValueError(
                f"{argname} must sum to 1 within {DENSITY_ATOL:g} (it sums to {s!r}); densities "
                "are not renormalised silently"
            )
        return np.ascontiguousarray(a)
