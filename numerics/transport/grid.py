"""1-D transport densities: a deterministic start grid pushed through a model's sampler.

In 1-D a model's PF-ODE sampler is a map ``x_T -> x_eps``. Instead of binning random samples,
:func:`transport_1d` runs the sampler (the same steps, same method) on the deterministic grid
:func:`transport_grid` and :class:`TransportedGrid` bins the transported Gaussian mass exactly
(:func:`gtv.numerics.transport.kernel.pushforward_masses`): per-model densities with no sampling
noise, accurate up to the grid resolution, with an error estimate from the grid with every other
point (:meth:`TransportedGrid.error`). docs/math/transport.md derives the grid and states the
measured accuracy.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

from gtv.numerics.checks import check_count, check_points, check_positive
from gtv.numerics.transport.kernel import pushforward_masses

__all__ = ["GRID_WIDTH", "TransportedGrid", "transport_1d", "transport_grid"]

#: The grid points are the quantiles of ``N(0, GRID_WIDTH**2 sigma_T**2)``: equal-mass cells of
#: ``p**(1/3)`` (docs/math/transport.md), which minimise the chord error ``sum_c m_c h_c**2``.
GRID_WIDTH = math.sqrt(3.0)


def transport_grid(n_points: int, sigma_T: float) -> np.ndarray:
    """Start points ``x_k = sqrt(3) sigma_T Phi^{-1}(k / (n_points + 1))``, ``k = 1..n_points``.

    Parameters
    ----------
    n_points : int
        Number of points (>= 4); they cut the line into ``n_points + 1`` cells.
    sigma_T : float
        Standard deviation of the PF-ODE start distribution ``N(0, sigma_T**2)``.

    Returns
    -------
    ndarray, shape (n_points,)
        Strictly increasing, symmetric about 0.
    """
    n = check_count(n_points, "n_points", 4)
    sigma_T = check_positive(sigma_T, "sigma_T")
    k = np.arange(1, n + 1)
    # symmetric by construction: the upper half mirrors the lower half
    x = ndtri(k / (n + 1.0))
    x = 0.5 * (x - x[::-1])
    return GRID_WIDTH * sigma_T * x


@dataclass(frozen=True)
class TransportedGrid:
    """Start points and where each model's sampler carried them.

    Attributes
    ----------
    start : ndarray, shape (M,) or (N, M)
        Strictly increasing start points (e.g. :func:`transport_grid`), shared by the models or,
        after refinement (:func:`transport_1d` with ``resolution``), one row per model.
    end : ndarray, shape (N, M)
        ``end[n, k]``: model ``n``'s sample from ``start[(n,) k]``.
    sigma_T : float
        Start distribution ``N(0, sigma_T**2)``.
    size : ndarray of int, shape (N,), optional
        Model ``n`` has ``size[n]`` points; its rows are padded beyond (default: all ``M``).
    """

    start: np.ndarray
    end: np.ndarray
    sigma_T: float
    size: np.ndarray | None = None

    def __post_init__(self) -> None:
        start = np.asarray(self.start, dtype=float)
        end = np.asarray(self.end, dtype=float)
        if end.ndim != 2 or start.ndim not in (1, 2) or start.shape[-1] != end.shape[1]:
            raise ValueError(
                f"end must have shape (N, M) and start (M,) or (N, M), got {end.shape}, "
                f"{start.shape}"
            )
        n, m = end.shape
        size = np.full(n, m) if self.size is None else np.asarray(self.size, dtype=np.int64)
        if size.shape != (n,) or np.any(size < 4) or np.any(size > m):
            raise ValueError(f"size must hold N = {n} counts in [4, {m}], got {self.size!r}")
        valid = np.arange(m)[None, :] < size[:, None]
        x = np.broadcast_to(start, (n, m))
        if not np.all((np.diff(x, axis=1) > 0) | ~valid[:, 1:]) or not np.isfinite(x[valid]).all():
            raise ValueError("start must be finite and strictly increasing (>= 4 points)")
        if not np.all(np.isfinite(end[valid])):
            bad = int(np.count_nonzero(~(np.isfinite(end) | ~valid).all(axis=1)))
            raise ValueError(
                f"end must be finite: the sampler diverged in {bad} of {n} models "
                "(use more steps, or method='euler')"
            )
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "sigma_T", check_positive(self.sigma_T, "sigma_T"))

    @property
    def n_models(self) -> int:
        return self.end.shape[0]

    def points(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Model ``n``'s start points and their images (without padding)."""
        x = self.start if self.start.ndim == 1 else self.start[n]
        return x[: self.size[n]], self.end[n, : self.size[n]]

    def bin_masses(self, edges: np.ndarray) -> np.ndarray:
        """Per-model bin masses (N, B) on the increasing ``edges`` (B + 1,)."""
        return pushforward_masses(self.start, self.end, self.sigma_T, edges, self.size)

    def histograms(self, edges: np.ndarray) -> np.ndarray:
        """Per-model densities (N, B): bin mass / bin width (like
        :func:`gtv.validation.ensembles.per_model_histograms`, the mass outside the edges in no
        bin)."""
        edges = np.asarray(edges, dtype=float)
        return self.bin_masses(edges) / np.diff(edges)

    def gap_mass(self, data: np.ndarray, distance: float) -> np.ndarray:
        """Per-model mass farther than ``distance`` from every point of ``data`` (M, 1)."""
        data = check_points(data, "data", dim=1)
        distance = check_positive(distance, "distance")
        mu = np.sort(data[:, 0])
        # the near set: the union of [mu - d, mu + d], merged into disjoint intervals
        lo, hi = [mu[0] - distance], [mu[0] + distance]
        for m in mu[1:]:
            if m - distance <= hi[-1]:
                hi[-1] = m + distance
            else:
                lo.append(m - distance)
                hi.append(m + distance)
        edges = np.ravel(np.column_stack([lo, hi]))
        near = self.bin_masses(edges)[:, ::2].sum(axis=1)
        return np.clip(1.0 - near, 0.0, 1.0)

    def halved(self) -> TransportedGrid:
        """Every other point of each model's grid (the odd-numbered ones): half the resolution."""
        if self.start.ndim == 1 and np.all(self.size == self.start.size):
            return TransportedGrid(self.start[1::2], self.end[:, 1::2], self.sigma_T)
        rows = [tuple(a[1::2] for a in self.points(n)) for n in range(self.n_models)]
        return _padded(rows, self.sigma_T)

    def error(self, edges: np.ndarray, masses: np.ndarray | None = None) -> np.ndarray:
        """Per-model error estimate: total variation between the bin masses (the mass outside the
        edges as one more bin) of this grid and of :meth:`halved`.

        For a smooth map the binned mass converges like ``h**2`` in the cell size, so this is
        about 3 times the error of this grid (docs/math/transport.md); it is reported as is.
        ``masses``, if given, must be this grid's :meth:`bin_masses` on ``edges`` (saves
        recomputing them).
        """
        full = self.bin_masses(edges) if masses is None else np.asarray(masses, dtype=float)
        if full.shape != (self.n_models, np.size(edges) - 1):
            raise ValueError(
                f"masses must have shape {(self.n_models, np.size(edges) - 1)}, got {full.shape}"
            )
        half = self.halved().bin_masses(edges)
        diff = np.abs(full - half).sum(axis=1) + np.abs(full.sum(axis=1) - half.sum(axis=1))
        return 0.5 * diff

    def unresolved_mass(self, resolution: float) -> np.ndarray:
        """Per-model start mass of the finite cells whose image is longer than ``resolution``."""
        resolution = check_positive(resolution, "resolution")
        out = np.empty(self.n_models)
        for n in range(self.n_models):
            x, y = self.points(n)
            mass = np.diff(ndtr(x / self.sigma_T))
            out[n] = mass[np.abs(np.diff(y)) > resolution].sum()
        return out


def _padded(rows: list[tuple[np.ndarray, np.ndarray]], sigma_T: float) -> TransportedGrid:
    """A per-model TransportedGrid from rows ``(start_n, end_n)`` of different lengths."""
    size = np.array([r[0].size for r in rows])
    m = int(size.max())
    start = np.empty((len(rows), m))
    end = np.empty((len(rows), m))
    for n, (x, y) in enumerate(rows):
        start[n, : x.size], end[n, : x.size] = x, y
        # padding: continue the grid beyond its last point (never read)
        start[n, x.size :] = x[-1] + np.arange(1, m - x.size + 1)
        end[n, x.size :] = y[-1]
    return TransportedGrid(start, end, sigma_T, size)


def _refinement_points(
    x: np.ndarray, y: np.ndarray, sigma_T: float, resolution: float, split: int, budget: int
) -> np.ndarray:
    """New start points splitting the cells of one model whose image is longer than
    ``resolution`` into ``split`` equal parts (largest ``mass * |dy|`` first, within ``budget``
    points; cells too narrow to split in floating point, or of mass < 1e-15, are left)."""
    dy = np.abs(np.diff(y))
    h = np.diff(x)
    mass = np.diff(ndtr(x / sigma_T))
    ok = (dy > resolution) & (mass > 1e-15) & (h > 1e-9 * np.maximum(1.0, np.abs(x[:-1])))
    idx = np.flatnonzero(ok)
    n_cells = budget // (split - 1)
    if idx.size > n_cells:
        idx = idx[np.argsort(-(mass * dy)[idx], kind="stable")[:n_cells]]
    frac = np.arange(1, split) / split
    return np.ravel(x[idx, None] + h[idx, None] * frac[None, :])


def transport_1d(
    sample: Callable[[np.ndarray], np.ndarray],
    n_models: int,
    sigma_T: float,
    n_points: int,
    *,
    resolution: float | None = None,
    max_points: int | None = None,
    split: int = 8,
    max_rounds: int = 8,
) -> TransportedGrid:
    """Run a 1-D ensemble's sampler on :func:`transport_grid` and keep where the grid went.

    Parameters
    ----------
    sample : callable
        ``sample(x_T) -> x_eps``: the ensemble's PF-ODE sampler on explicit start points
        ``x_T`` (n_models, S, 1) (model ``n`` from row ``n``), e.g.
        ``lambda x: sample_linear_ensemble(ens, x.shape[1], x_T=x)``.
    n_models : int
    sigma_T : float
        The sampler's start distribution is ``N(0, sigma_T**2)``.
    n_points : int
        Points of the shared grid (>= 4).
    resolution : float, optional
        If given, refine: every cell whose image is longer than ``resolution`` (e.g. a bin
        width) is split into ``split`` equal cells and the sampler runs on the new points (all
        models at once, rows padded), for up to ``max_rounds`` rounds, until every cell's image
        is shorter or a model has ``max_points`` points (default ``4 n_points``; the cells with
        the largest ``mass * image length`` are split first). Steep parts of a map (a narrow
        start interval spread over the gap between two data points) need this
        (docs/math/transport.md).
    split, max_rounds : int

    Returns
    -------
    TransportedGrid
    """
    n_models = check_count(n_models, "n_models")
    start = transport_grid(n_points, sigma_T)
    x_T = np.broadcast_to(start[None, :, None], (n_models, start.size, 1)).copy()
    end = _run(sample, x_T)
    grid = TransportedGrid(start, end[:, :, 0], sigma_T)
    if resolution is None:
        return grid
    resolution = check_positive(resolution, "resolution")
    split = check_count(split, "split", 2)
    max_rounds = check_count(max_rounds, "max_rounds", 0)
    max_points = 4 * start.size if max_points is None else check_count(max_points, "max_points")
    rows = [(start, end[n, :, 0]) for n in range(n_models)]
    for _ in range(max_rounds):
        new = [
            _refinement_points(x, y, sigma_T, resolution, split, max(max_points - x.size, 0))
            for x, y in rows
        ]
        width = max(p.size for p in new)
        if width == 0:
            break
        x_T = np.empty((n_models, width, 1))
        for n, p in enumerate(new):
            x_T[n, :, 0] = p[0] if p.size else start[0]  # padding, discarded
            x_T[n, : p.size, 0] = p
        y_T = _run(sample, x_T)[:, :, 0]
        for n, p in enumerate(new):
            if p.size:
                x = np.concatenate([rows[n][0], p])
                y = np.concatenate([rows[n][1], y_T[n, : p.size]])
                order = np.argsort(x, kind="stable")
                rows[n] = (x[order], y[order])
    return _padded(rows, sigma_T)


def _run(sample: Callable[[np.ndarray], np.ndarray], x_T: np.ndarray) -> np.ndarray:
    end = np.asarray(sample(x_T), dtype=float)
    if end.shape != x_T.shape:
        raise ValueError(f"sample must return an array of shape {x_T.shape}, got {end.shape}")
    return end
