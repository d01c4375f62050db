"""Adaptive refinement of transported 1-D grids: where a chord misplaces mass, add points.

:func:`gtv.numerics.transport.kernel.pushforward_masses` carries each cell's Gaussian mass through
the chord of the map. The chord is off by about ``h**2 |y''| / 8`` in the middle of a cell of
width ``h``; mass is misplaced only where that shift crosses a bin edge, so a cell's *score* is
::

    score_c = m_c * min(1, h_c**2 |y''|_c / (8 w))

(``m_c``: the cell's start mass, ``w``: the bin width, ``|y''|_c``: the larger of the second
divided differences at the cell's two end nodes, an end node of the grid taking its neighbour's;
docs/math/transport.md, "Refinement"). A cell whose score exceeds ``tolerance`` is cut into
``k = ceil(sqrt(score / tolerance))`` equal parts (at most ``max_split``), the square root because
the chord error falls like ``h**2``. When a model's new points would exceed its budget, its cut
cells are kept by decreasing score (ties in cell order) while they fit. Cells too narrow to cut
in floating point (``h <= 1e-9 max(1, |x|)``), or of mass ``<= 1e-15``, are left.

A cell's score depends only on itself and its two neighbours, so after the first round only the
*active* cells are scored again: the parts of a cut cell and the cells next to them.

State of a refinement: rows ``x`` (start points), ``p`` (their ``N(0, sigma**2)`` CDF), ``y``
(images) and ``active`` (per cell) of width ``max_points``, with ``size`` points per model.

* :func:`refinement_points` (numba, parallel over models): the new start points of every model,
  flat with per-model offsets, and the parts of every cell;
* :func:`merge_refinement` (numba): inserts the transported new points in place and marks the
  active cells;
* :func:`refinement_points_reference`, :func:`merge_refinement_reference`: the same in plain
  numpy, model by model (tests).
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = [
    "compact_rows",
    "merge_refinement",
    "merge_refinement_reference",
    "refinement_points",
    "refinement_points_reference",
]

#: Smallest start mass of a cell worth cutting, and smallest relative width that can be cut.
_MIN_MASS = 1e-15
_MIN_WIDTH = 1e-9


@numba.njit(cache=True, error_model="numpy", inline="always")
def _curvature(x, y, i, m):
    """``|y''|`` at node ``i`` from the two cells around it (the end nodes take their
    neighbour's)."""
    i = min(max(i, 1), m - 2)
    s0 = (y[i] - y[i - 1]) / (x[i] - x[i - 1])
    s1 = (y[i + 1] - y[i]) / (x[i + 1] - x[i])
    return 2.0 * abs(s1 - s0) / (x[i + 1] - x[i - 1])


@numba.njit(parallel=True, cache=True, error_model="numpy")
def _split_counts(x_all, p_all, y_all, size, active, inv_w, tol, max_split, budget, parts):
    """``parts[n, c]``: the parts cell ``c`` of model ``n`` is cut into (1: not cut); returns
    the number of new points per model."""
    n_models = y_all.shape[0]
    new = np.zeros(n_models, dtype=np.int64)
    for n in numba.prange(n_models):
        x, p, y = x_all[n], p_all[n], y_all[n]
        m = size[n]
        total = 0
        n_cut = 0
        for c in range(m - 1):
            parts[n, c] = 1
            if not active[n, c]:
                continue
            h = x[c + 1] - x[c]
            mass = p[c + 1] - p[c]
            if not (mass > _MIN_MASS and h > _MIN_WIDTH * max(1.0, abs(x[c]))):
                continue
            curv = max(_curvature(x, y, c, m), _curvature(x, y, c + 1, m))
            s = mass * min(1.0, h * h * curv * 0.125 * inv_w)
            if s > tol:
                k = min(int(math.ceil(math.sqrt(s / tol))), max_split)
                parts[n, c] = k
                total += k - 1
                n_cut += 1
        if total > budget[n]:
            # over budget: whole cells by decreasing score (stable: ties in cell order)
            cells = np.empty(n_cut, dtype=np.int64)
            score = np.empty(n_cut)
            j = 0
            for c in range(m - 1):
                if parts[n, c] > 1:
                    cells[j] = c
                    curv = max(_curvature(x, y, c, m), _curvature(x, y, c + 1, m))
                    h = x[c + 1] - x[c]
                    score[j] = -((p[c + 1] - p[c]) * min(1.0, h * h * curv * 0.125 * inv_w))
                    j += 1
            left = budget[n]
            total = 0
            for q in np.argsort(score, kind="mergesort"):
                c = cells[q]
                k = parts[n, c]
                if k - 1 <= left:
                    left -= k - 1
                    total += k - 1
                else:
                    parts[n, c] = 1
        new[n] = total
    return new


@numba.njit(parallel=True, cache=True, error_model="numpy")
def _fill_points(x_all, size, parts, offsets, scale, out, out_cdf):
    for n in numba.prange(size.shape[0]):
        x = x_all[n]
        j = offsets[n]
        for c in range(size[n] - 1):
            k = parts[n, c]
            if k > 1:
                h = x[c + 1] - x[c]
                for q in range(1, k):
                    u = x[c] + h * (q / k)
                    out[j] = u
                    out_cdf[j] = 0.5 * math.erfc(-u * scale)
                    j += 1


def refinement_points(
    x: np.ndarray,
    p: np.ndarray,
    y: np.ndarray,
    size: np.ndarray,
    active: np.ndarray,
    sigma: float,
    resolution: float,
    tolerance: float,
    max_split: int,
    budget: np.ndarray,
    parts: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """New start points of every model (module docstring).

    Parameters
    ----------
    x, p, y : ndarray, shape (N, W)
        Start points (strictly increasing in each row's first ``size[n]`` entries), their
        ``N(0, sigma**2)`` CDF and their images; C-contiguous float64.
    size : ndarray of int64, shape (N,)
        Points of each model (>= 3).
    active : ndarray of bool, shape (N, W)
        ``active[n, c]``: whether cell ``c`` (between points ``c`` and ``c + 1``) is scored.
    sigma : float
        The start distribution is ``N(0, sigma**2)``.
    resolution : float
        ``w``: the bin width the score is measured against.
    tolerance : float
        Largest score of a cell left uncut.
    max_split : int
        Most parts a cell is cut into in one round.
    budget : ndarray of int64, shape (N,)
        Most new points per model.
    parts : ndarray of int64, shape (N, W), optional
        Where to write the parts per cell (a buffer reused over rounds; allocated if not given).

    Returns
    -------
    points : ndarray, shape (S,)
        The new points, model after model, each model's increasing.
    cdf : ndarray, shape (S,)
        Their ``N(0, sigma**2)`` CDF.
    offsets : ndarray of int64, shape (N + 1,)
        Model ``n``'s points are ``points[offsets[n]:offsets[n + 1]]``.
    parts : ndarray of int64, shape (N, W)
        Parts per cell (the input of :func:`merge_refinement`).
    """
    n, w = y.shape
    if parts is None:
        parts = np.empty((n, w), dtype=np.int64)
    new = _split_counts(
        x, p, y, size, active, 1.0 / resolution, tolerance, max_split, budget, parts
    )
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(new, out=offsets[1:])
    points, cdf = np.empty(offsets[-1]), np.empty(offsets[-1])
    _fill_points(x, size, parts, offsets, 1.0 / (sigma * math.sqrt(2.0)), points, cdf)
    return points, cdf, offsets, parts


@numba.njit(parallel=True, cache=True, error_model="numpy")
def _merge(x_all, p_all, y_all, size, active, parts, offsets, points, cdf, images):
    for n in numba.prange(size.shape[0]):
        j1 = offsets[n + 1]
        m = size[n]
        m_new = m + j1 - offsets[n]
        if m_new == m:
            for c in range(m - 1):
                active[n, c] = False
            continue
        x, p, y, act = x_all[n], p_all[n], y_all[n], active[n]
        for c in range(m_new - 1):
            act[c] = False
        # from the back, so that nothing is overwritten before it is moved
        o = m_new - 1
        j = j1
        for c in range(m - 1, -1, -1):
            if c < m - 1 and parts[n, c] > 1:
                k = parts[n, c]
                for _ in range(k - 1):
                    j -= 1
                    x[o], p[o], y[o] = points[j], cdf[j], images[j]
                    o -= 1
                # node c goes to o: cells o .. o+k-1 of the new row are the parts of cell c,
                # o-1 and o+k its neighbours
                lo, hi = max(o - 1, 0), min(o + k + 1, m_new - 1)
                for q in range(lo, hi):
                    act[q] = True
            x[o], p[o], y[o] = x[c], p[c], y[c]
            o -= 1
        size[n] = m_new


def merge_refinement(
    x: np.ndarray,
    p: np.ndarray,
    y: np.ndarray,
    size: np.ndarray,
    active: np.ndarray,
    parts: np.ndarray,
    offsets: np.ndarray,
    points: np.ndarray,
    cdf: np.ndarray,
    images: np.ndarray,
) -> None:
    """Insert the new points of :func:`refinement_points`, their CDF and ``images``, into the
    rows ``x, p, y`` in place (``size`` updated) and mark as ``active`` the parts of every cut
    cell and the cells next to them (every other cell inactive)."""
    if int((size + np.diff(offsets)).max()) > y.shape[1]:
        raise ValueError("the refined rows do not fit their width (budget too large)")
    _merge(x, p, y, size, active, parts, offsets, points, cdf, images)


@numba.njit(cache=True, error_model="numpy")
def _compact(flat, width, size, stride):
    # row n moves from n * stride to n * width (<= n * stride): ascending, in place
    for n in range(size.shape[0]):
        src, dst = n * stride, n * width
        m = size[n]
        for c in range(m):
            flat[dst + c] = flat[src + c]
        for c in range(m, width):
            flat[dst + c] = flat[src + m - 1]


def compact_rows(
    x: np.ndarray, p: np.ndarray, y: np.ndarray, size: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows cut to the largest ``size`` in place (C-contiguous views of the same memory);
    beyond a row's size each row repeats its last entry (never read)."""
    n, stride = y.shape
    width = int(size.max())
    out = []
    for a in (x, p, y):
        flat = a.reshape(-1)
        _compact(flat, width, size, stride)
        out.append(flat[: n * width].reshape(n, width))
    return tuple(out)


def refinement_points_reference(
    x: np.ndarray,
    p: np.ndarray,
    y: np.ndarray,
    size: np.ndarray,
    active: np.ndarray,
    resolution: float,
    tolerance: float,
    max_split: int,
    budget: np.ndarray,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Plain-numpy :func:`refinement_points`: each model's new points and parts per cell."""
    points, parts = [], []
    for n in range(y.shape[0]):
        m = size[n]
        xn, pn, yn = x[n, :m], p[n, :m], y[n, :m]
        h = np.diff(xn)
        slope = np.diff(yn) / h
        node = np.empty(m)
        node[1:-1] = 2.0 * np.abs(np.diff(slope)) / (xn[2:] - xn[:-2])
        node[0], node[-1] = node[1], node[-2]
        curv = np.maximum(node[:-1], node[1:])
        mass = np.diff(pn)
        score = mass * np.minimum(1.0, h * h * curv * 0.125 * (1.0 / resolution))
        ok = (
            active[n, : m - 1]
            & (mass > _MIN_MASS)
            & (h > _MIN_WIDTH * np.maximum(1.0, abs(xn[:-1])))
        )
        cut = ok & (score > tolerance)
        k = np.ones(m - 1, dtype=np.int64)
        k[cut] = np.minimum(np.ceil(np.sqrt(score[cut] / tolerance)), max_split)
        if (k - 1).sum() > budget[n]:
            cells = np.flatnonzero(k > 1)
            left = budget[n]
            for c in cells[np.argsort(-score[cells], kind="stable")]:
                if k[c] - 1 <= left:
                    left -= k[c] - 1
                else:
                    k[c] = 1
        pts = [xn[c] + h[c] * (np.arange(1, k[c]) / k[c]) for c in np.flatnonzero(k > 1)]
        points.append(np.concatenate(pts) if pts else np.empty(0))
        parts.append(k)
    return points, parts


def merge_refinement_reference(
    x: np.ndarray, y: np.ndarray, parts: np.ndarray, points: np.ndarray, images: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plain-numpy :func:`merge_refinement` for one model: the merged ``x``, ``y`` (by sorting)
    and the active cells."""
    xs = np.concatenate([x, points])
    order = np.argsort(xs, kind="stable")
    cut_left = np.repeat(np.arange(parts.size), parts)  # old cell of every new cell
    cut = parts[cut_left] > 1
    active = cut.copy()
    active[:-1] |= cut[1:]
    active[1:] |= cut[:-1]
    return xs[order], np.concatenate([y, images])[order], active
