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
from gtv.numerics.transport.kernel import checked_pushforward_masses, row_checks
from gtv.numerics.transport.refine import compact_rows, merge_refinement, refinement_points

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
    cdf : ndarray, shape of ``start``, optional
        ``Phi(start / sigma_T)``, the start mass below each point (computed if not given; the
        refinement of :func:`transport_1d` carries it along).
    """

    start: np.ndarray
    end: np.ndarray
    sigma_T: float
    size: np.ndarray | None = None
    cdf: np.ndarray | None = None

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
        # the kernel's layout: C-contiguous rows ((1, M) when shared), int64 sizes
        start = np.ascontiguousarray(start)
        end = np.ascontiguousarray(end)
        size = np.ascontiguousarray(size, dtype=np.int64)
        rows = start.reshape(-1, m)
        bad_start, not_increasing, bad_end = row_checks(rows, end, size)
        if bad_start or not_increasing:
            raise ValueError("start must be finite and strictly increasing (>= 4 points)")
        if bad_end:
            raise ValueError(
                f"end must be finite: the sampler diverged in {bad_end} of {n} models "
                "(use more steps, or method='euler')"
            )
        sigma_T = check_positive(self.sigma_T, "sigma_T")
        if self.cdf is None:
            cdf = ndtr(start / sigma_T)
        else:
            cdf = np.ascontiguousarray(self.cdf, dtype=float)
            if cdf.shape != start.shape:
                raise ValueError(f"cdf must have the shape of start {start.shape}, got {cdf.shape}")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "sigma_T", sigma_T)
        object.__setattr__(self, "cdf", cdf)
        object.__setattr__(self, "_kernel_args", (rows, cdf.reshape(-1, m), end, size))

    @property
    def n_models(self) -> int:
        return self.end.shape[0]

    def points(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Model ``n``'s start points and their images (without padding)."""
        x = self.start if self.start.ndim == 1 else self.start[n]
        return x[: self.size[n]], self.end[n, : self.size[n]]

    def bin_masses(self, edges: np.ndarray) -> np.ndarray:
        """Per-model bin masses (N, B) on the increasing ``edges`` (B + 1,)."""
        start, cdf, end, size = self._kernel_args
        return checked_pushforward_masses(start, cdf, end, size, self.sigma_T, edges)

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
        odd = (..., slice(1, None, 2))
        if self.start.ndim == 1 and np.all(self.size == self.start.size):
            return TransportedGrid(self.start[odd], self.end[odd], self.sigma_T, cdf=self.cdf[odd])
        # a model's odd-numbered points are the first size // 2 of the odd columns
        return TransportedGrid(
            self.start[odd], self.end[odd], self.sigma_T, self.size // 2, cdf=self.cdf[odd]
        )

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
        start, cdf, end, size = self._kernel_args
        half = checked_pushforward_masses(
            start, cdf, end, size, self.sigma_T, edges, every_other=True
        )
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


def _pack(
    points: np.ndarray, offsets: np.ndarray, block: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The models' new points in rows of ``block`` (each row one model's; a model's last row
    padded with its first point), the model of every row, and where each point sits in the
    flattened rows."""
    counts = np.diff(offsets)
    rows = -(-counts // block)
    first = np.zeros(counts.size)
    has = counts > 0
    first[has] = points[offsets[:-1][has]]
    row0 = np.concatenate([[0], np.cumsum(rows)[:-1]])
    owner = np.repeat(np.arange(counts.size), counts)
    where = row0[owner] * block + (np.arange(offsets[-1]) - offsets[:-1][owner])
    packed = np.repeat(first, rows * block)
    packed[where] = points
    return packed.reshape(-1, block), np.repeat(np.arange(counts.size), rows), where


def transport_1d(
    sample: Callable[..., np.ndarray],
    n_models: int,
    sigma_T: float,
    n_points: int,
    *,
    resolution: float | None = None,
    tolerance: float = 1e-6,
    max_points: int | None = None,
    max_split: int = 16,
    max_rounds: int = 4,
    block: int = 256,
) -> TransportedGrid:
    """Run a 1-D ensemble's sampler on :func:`transport_grid` and keep where the grid went.

    Parameters
    ----------
    sample : callable
        ``sample(x_T) -> x_eps``: the ensemble's PF-ODE sampler on explicit start points
        ``x_T`` (n_models, S, 1) (model ``n`` from row ``n``), e.g.
        ``lambda x, models=None: sample_linear_ensemble(ens, x.shape[1], x_T=x, models=models)``.
        With ``resolution`` it is also called as ``sample(x_T, models)``: ``x_T`` (R, block, 1)
        and row ``r`` carried by model ``models[r]``.
    n_models : int
    sigma_T : float
        The sampler's start distribution is ``N(0, sigma_T**2)``.
    n_points : int
        Points of the shared grid (>= 4).
    resolution : float, optional
        If given (e.g. the bin width), refine adaptively
        (:mod:`gtv.numerics.transport.refine`, docs/math/transport.md "Refinement"): in up to
        ``max_rounds`` rounds every cell whose chord may misplace more than ``tolerance`` of
        mass across a bin of this width is cut into up to ``max_split`` parts and the sampler
        runs on the new points (all models at once, packed in rows of ``block``), until no cell
        is cut or a model has ``max_points`` points (default ``8 n_points``).
    tolerance : float, default 1e-6
    max_points, max_split, max_rounds, block : int

    Returns
    -------
    TransportedGrid
        One row of start points per model if refined.
    """
    n_models = check_count(n_models, "n_models")
    start = transport_grid(n_points, sigma_T)
    if resolution is not None:
        resolution = check_positive(resolution, "resolution")
        tolerance = check_positive(tolerance, "tolerance")
        max_split = check_count(max_split, "max_split", 2)
        max_rounds = check_count(max_rounds, "max_rounds", 0)
        block = check_count(block, "block")
        max_points = (
            8 * start.size
            if max_points is None
            else check_count(max_points, "max_points", start.size)
        )
    x_T = np.broadcast_to(start[None, :, None], (n_models, start.size, 1)).copy()
    end = _run(sample, x_T)[:, :, 0]
    if resolution is None:
        return TransportedGrid(start, end, sigma_T)
    m = start.size
    shape = (n_models, max_points)
    x, p, y = np.empty(shape), np.empty(shape), np.empty(shape)
    x[:, :m], p[:, :m], y[:, :m] = start, ndtr(start / sigma_T), end
    active = np.ones(shape, dtype=np.bool_)
    parts = np.empty(shape, dtype=np.int64)
    size = np.full(n_models, m, dtype=np.int64)
    for _ in range(max_rounds):
        points, cdf, offsets, parts = refinement_points(
            x, p, y, size, active, sigma_T, resolution, tolerance, max_split, max_points - size,
            parts,
        )  # fmt: skip
        if points.size == 0:
            break
        rows, models, where = _pack(points, offsets, block)
        images = _run(sample, rows[:, :, None], models)[:, :, 0].ravel()[where]
        merge_refinement(x, p, y, size, active, parts, offsets, points, cdf, images)
    x, p, y = compact_rows(x, p, y, size)
    return TransportedGrid(x, y, sigma_T, size, cdf=p)


def _run(sample: Callable[..., np.ndarray], x_T: np.ndarray, *models: np.ndarray) -> np.ndarray:
    end = np.asarray(sample(x_T, *models), dtype=float)
    if end.shape != x_T.shape:
        raise ValueError(f"sample must return an array of shape {x_T.shape}, got {end.shape}")
    return end
