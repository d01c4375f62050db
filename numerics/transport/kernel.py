"""Binned push-forward of a Gaussian through a sampled 1-D map (docs/math/transport.md).

The start points ``x_0 < ... < x_{M-1}`` cut the line into ``M + 1`` cells (two of them infinite)
of ``N(0, sigma**2)`` mass ``Phi(x_{k+1}/sigma) - Phi(x_k/sigma)``. A model's sampler carries them
to ``y_k``; on each cell the map is taken affine (the chord through the transported ends; the two
infinite cells continue the chord of their finite neighbour), and the Gaussian mass of the cell is
carried through that affine map *exactly*: the mass falling in the bin ``[e_j, e_{j+1}]`` is
``|Phi(x(e_{j+1})/sigma) - Phi(x(e_j)/sigma)|``, with ``x(e)`` the cell's preimage of ``e`` clipped
to the cell. A reversed chord (a fold of the discrete map) and cells whose images overlap need no
special treatment: each cell adds its own mass to the bins its image covers. A cell whose ends
land on the same point puts its mass in the bin of that point (``numpy.histogram``'s convention).

* :func:`pushforward_masses`: a numba kernel, parallel over models, walking each cell's image
  bin by bin (one ``erfc`` per bin edge crossed);
* :func:`pushforward_masses_reference`: plain numpy, every cell against every bin edge.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from scipy.special import ndtr

__all__ = [
    "checked_pushforward_masses",
    "pushforward_masses",
    "pushforward_masses_reference",
    "row_checks",
]

_SQRT1_2 = 1.0 / math.sqrt(2.0)


def _check(start: object, end: object, sigma: object, edges: object, size: object):
    """Arrays as float64 and the checks: ``start`` (1, M) when shared by the models, else
    (N, M); ``end`` (N, M), padded beyond ``size`` (N,)."""
    start = np.asarray(start, dtype=np.float64)
    end = np.ascontiguousarray(end, dtype=np.float64)
    edges = np.ascontiguousarray(edges, dtype=np.float64)
    if end.ndim != 2 or start.ndim not in (1, 2) or start.shape[-1] != end.shape[1]:
        raise ValueError(
            f"end must have shape (N, M) and start (M,) or (N, M), got {end.shape}, {start.shape}"
        )
    n, m = end.shape
    if start.ndim == 2 and start.shape[0] != n:
        raise ValueError(f"start must have shape (M,) or (N, M) = {(n, m)}, got {start.shape}")
    start = np.ascontiguousarray(start.reshape(-1, m))
    size = np.full(n, m, dtype=np.int64) if size is None else np.asarray(size, dtype=np.int64)
    if size.shape != (n,) or np.any(size < 2) or np.any(size > m):
        raise ValueError(f"size must hold N = {n} counts in [2, {m}], got {size!r}")
    bad_start, not_increasing, bad_end = row_checks(start, end, size)
    ok_start, increasing, ok_end = bad_start == 0, not_increasing == 0, bad_end == 0
    if not ok_start:
        raise ValueError("start must be finite")
    if not increasing:
        raise ValueError("start must be strictly increasing")
    if not ok_end:
        raise ValueError("end must be finite (the sampler diverged)")
    sigma = float(sigma)
    if not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a finite positive number, got {sigma!r}")
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.isfinite(edges)):
        raise ValueError("edges must be a finite 1-D array of at least 2 entries")
    if not np.all(np.diff(edges) > 0):
        raise ValueError("edges must be strictly increasing")
    return start, end, sigma, edges, size


@numba.njit(cache=True, error_model="numpy")
def row_checks(start, end, size):
    """One pass over a grid's rows (``start`` (1, M) shared or (N, M), ``end`` (N, M), each
    model's first ``size[n]`` entries): the number of models whose start points are not all
    finite, not strictly increasing, and whose images are not all finite."""
    shared = start.shape[0] == 1
    bad_start = 0
    not_increasing = 0
    bad_end = 0
    for n in range(end.shape[0]):
        x = start[0 if shared else n]
        y = end[n]
        fin, inc, fin_y = True, True, True
        for k in range(size[n]):
            fin = fin and np.isfinite(x[k])
            fin_y = fin_y and np.isfinite(y[k])
            if k > 0:
                inc = inc and x[k] > x[k - 1]
        bad_start += not fin
        not_increasing += not inc
        bad_end += not fin_y
    return bad_start, not_increasing, bad_end


@numba.njit(cache=True, error_model="numpy", inline="always")
def _phi(x, scale):
    """``Phi(x / sigma)`` with ``scale = 1 / (sigma sqrt 2)`` (0 and 1 at -inf and +inf)."""
    return 0.5 * math.erfc(-x * scale)


@numba.njit(cache=True, error_model="numpy", inline="always")
def _below(edges, y, inv_w, right):
    """``searchsorted(edges, y, side) - 1`` (``side = "right"`` if ``right``, else ``"left"``).

    With ``inv_w > 0`` the edges are taken to be (nearly) uniform with spacing ``1/inv_w``:
    the index is guessed from ``y`` and corrected against the edges themselves, so the result
    is exactly searchsorted's for any edges; ``inv_w = 0`` uses the binary search.
    """
    nb = edges.shape[0] - 1
    if inv_w == 0.0 or not (abs(y) < 1e300):
        if right:
            return np.searchsorted(edges, y, side="right") - 1
        return np.searchsorted(edges, y, side="left") - 1
    g = (y - edges[0]) * inv_w
    j = -1 if g < 0.0 else (nb if g > nb else int(g))
    if right:
        # the largest j with edges[j] <= y (-1 if none)
        while j < nb and edges[j + 1] <= y:
            j += 1
        while j >= 0 and edges[j] > y:
            j -= 1
    else:
        # the largest j with edges[j] < y
        while j < nb and edges[j + 1] < y:
            j += 1
        while j >= 0 and edges[j] >= y:
            j -= 1
    return j


@numba.njit(cache=True, error_model="numpy", inline="always")
def _point_bin(y, edges, inv_w):
    """Bin of the point ``y`` as ``numpy.histogram`` (last bin closed), -1 if outside."""
    nb = edges.shape[0] - 1
    if y < edges[0] or y > edges[nb]:
        return -1
    return min(_below(edges, y, inv_w, True), nb - 1)


@numba.njit(cache=True, error_model="numpy", inline="always")
def _add_cell(out, edges, inv_w, xa, xb, pa, pb, x0, y0, s, lo, hi, scale):
    """Add the mass ``pb - pa`` of the cell ``[xa, xb]`` carried by ``y = y0 + s (x - x0)``."""
    nb = edges.shape[0] - 1
    if s == 0.0:
        j = _point_bin(y0, edges, inv_w)
        if j >= 0:
            out[j] += pb - pa
        return
    p = pa
    if s > 0.0:
        # walk upwards from lo: bin j = [e_j, e_{j+1}) holds lo
        j = _below(edges, lo, inv_w, True)
        while j < nb and edges[j + 1] < hi:
            xe = min(max(x0 + (edges[j + 1] - y0) / s, xa), xb)
            q = _phi(xe, scale)
            if j >= 0:
                out[j] += q - p
            p = q
            j += 1
    else:
        # walk downwards from hi: bin j = (e_j, e_{j+1}] holds hi
        j = _below(edges, hi, inv_w, False)
        while j >= 0 and edges[j] > lo:
            xe = min(max(x0 + (edges[j] - y0) / s, xa), xb)
            q = _phi(xe, scale)
            if j < nb:
                out[j] += q - p
            p = q
            j -= 1
    if 0 <= j < nb:
        out[j] += pb - p


@numba.njit(parallel=True, cache=True, error_model="numpy")
def _masses(start_all, cdf_all, size, end, sigma, edges, inv_w, first, step, out):
    # the points first, first + step, ... of each row (every other one for an error estimate)
    scale = 1.0 / (sigma * math.sqrt(2.0))
    inf = np.inf
    shared = start_all.shape[0] == 1
    for n in numba.prange(end.shape[0]):
        m = (size[n] - first + step - 1) // step
        r = n - n if shared else n  # (n - n: the index type of n; a literal 0 would unify to float)
        start, cdf = start_all[r, first::step], cdf_all[r, first::step]
        y = end[n, first::step]
        row = out[n]
        # the lower infinite cell (-inf, x_0]: the chord of the first finite cell continued
        s = (y[1] - y[0]) / (start[1] - start[0])
        lo, hi = (-inf, y[0]) if s > 0 else (y[0], inf)
        _add_cell(row, edges, inv_w, -inf, start[0], 0.0, cdf[0], start[0], y[0], s, lo, hi,
                  scale)  # fmt: skip
        for k in range(1, m):
            xa, xb, ya, yb = start[k - 1], start[k], y[k - 1], y[k]
            s = (yb - ya) / (xb - xa)
            _add_cell(row, edges, inv_w, xa, xb, cdf[k - 1], cdf[k], xa, ya, s, min(ya, yb),
                      max(ya, yb), scale)  # fmt: skip
        # the upper infinite cell [x_{M-1}, inf)
        s = (y[m - 1] - y[m - 2]) / (start[m - 1] - start[m - 2])
        lo, hi = (y[m - 1], inf) if s > 0 else (-inf, y[m - 1])
        _add_cell(row, edges, inv_w, start[m - 1], inf, cdf[m - 1], 1.0, start[m - 1], y[m - 1],
                  s, lo, hi, scale)  # fmt: skip


def _uniform_inverse_width(edges: np.ndarray) -> float:
    """``1 / spacing`` if the edges are uniform to 1e-9 relative (a guess for the bin index,
    corrected against the edges themselves), else 0 (binary search)."""
    w = np.diff(edges)
    if edges.size > 2 and np.ptp(w) <= 1e-9 * w.mean():
        return float((edges.size - 1) / (edges[-1] - edges[0]))
    return 0.0


def pushforward_masses(
    start: np.ndarray,
    end: np.ndarray,
    sigma: float,
    edges: np.ndarray,
    size: np.ndarray | None = None,
    cdf: np.ndarray | None = None,
) -> np.ndarray:
    """Bin masses of ``N(0, sigma**2)`` carried through each model's piecewise-affine map.

    Parameters
    ----------
    start : ndarray, shape (M,) or (N, M)
        Strictly increasing start points, shared by the models or one row per model.
    end : ndarray, shape (N, M)
        ``end[n, k]``: where model ``n``'s sampler carries ``start[(n,) k]`` (finite).
    sigma : float
        Standard deviation of the start distribution.
    edges : ndarray, shape (B + 1,)
        Strictly increasing bin edges.
    size : ndarray of int, shape (N,), optional
        Model ``n`` uses only its first ``size[n] >= 2`` points (rows padded beyond; default:
        all ``M``).
    cdf : ndarray, shape of ``start``, optional
        ``Phi(start / sigma)`` if already known (computed otherwise).

    Returns
    -------
    ndarray, shape (N, B)
        Bin masses (probabilities); the mass outside ``[edges[0], edges[-1]]`` is ``1 - sum``.
    """
    start, end, sigma, edges, size = _check(start, end, sigma, edges, size)
    if cdf is None:
        cdf = ndtr(start / sigma)
    return checked_pushforward_masses(start, cdf, end, size, sigma, edges)


def checked_pushforward_masses(
    start: np.ndarray,
    cdf: np.ndarray,
    end: np.ndarray,
    size: np.ndarray,
    sigma: float,
    edges: np.ndarray,
    every_other: bool = False,
) -> np.ndarray:
    """:func:`pushforward_masses` on a grid already checked (e.g. a
    :class:`~gtv.numerics.transport.TransportedGrid`): ``start`` and ``cdf`` (1, M) or (N, M),
    ``end`` (N, M), ``size`` (N,) int64, all C-contiguous; only ``edges`` is checked. With
    ``every_other``, each model's odd-numbered points only (the half grid of an error estimate,
    without copying it; a model needs 4 of them)."""
    edges = np.ascontiguousarray(edges, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.isfinite(edges)):
        raise ValueError("edges must be a finite 1-D array of at least 2 entries")
    if not np.all(np.diff(edges) > 0):
        raise ValueError("edges must be strictly increasing")
    out = np.zeros((end.shape[0], edges.size - 1))
    first, step = (1, 2) if every_other else (0, 1)
    if np.any((size - first + step - 1) // step < 2):
        raise ValueError("every model needs at least 2 points (4 for every_other)")
    _masses(start, cdf, size, end, sigma, edges, _uniform_inverse_width(edges), first, step, out)
    return out


def pushforward_masses_reference(
    start: np.ndarray,
    end: np.ndarray,
    sigma: float,
    edges: np.ndarray,
    size: np.ndarray | None = None,
    chunk: int = 2048,
) -> np.ndarray:
    """Plain-numpy :func:`pushforward_masses`: every cell's preimage of every bin edge."""
    start_all, end, sigma, edges, size = _check(start, end, sigma, edges, size)
    nb = edges.size - 1
    out = np.zeros((end.shape[0], nb))
    for n in range(end.shape[0]):
        m = size[n]
        start, y = start_all[n if start_all.shape[0] > 1 else 0, :m], end[n, :m]
        xa = np.concatenate([[-np.inf], start])
        xb = np.concatenate([start, [np.inf]])
        cdf = ndtr(start / sigma)
        pa, pb = np.concatenate([[0.0], cdf]), np.concatenate([cdf, [1.0]])
        anchor = np.concatenate([[0], np.arange(m)])  # the finite end of each cell
        s_fin = np.diff(y) / np.diff(start)
        s = np.concatenate([[s_fin[0]], s_fin, [s_fin[-1]]])
        x0, y0 = start[anchor], y[anchor]
        flat = s == 0.0
        for c0 in range(0, m + 1, chunk):
            sl = slice(c0, min(c0 + chunk, m + 1))
            ok = ~flat[sl]
            with np.errstate(divide="ignore", invalid="ignore"):
                xe = x0[sl, None] + (edges[None, :] - y0[sl, None]) / s[sl, None]
            xe = np.clip(xe, xa[sl, None], xb[sl, None])
            p = ndtr(xe / sigma)
            out[n] += np.abs(np.diff(p, axis=1))[ok].sum(axis=0)
        # cells mapped to a single point
        for c in np.flatnonzero(flat):
            counts, _ = np.histogram([y0[c]], bins=edges)
            out[n] += (pb[c] - pa[c]) * counts
    return out
