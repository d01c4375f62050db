"""Nearest and second-nearest neighbours of query points among a set of points (Euclidean).

For each query ``x_n`` the two closest points of ``points`` (K x D) and their distances
``d1 <= d2``. This is the one geometric primitive of the sample classifications in
:mod:`.classify`: the distance to the nearest training point (Pham et al. 2025), the nearest
*other* generated sample, and the gap ratio ``d1 / d2`` (Yoon et al. 2023; Gu et al. 2025;
Bonnaire et al. 2025).

Conventions shared by every backend and method, so that they agree exactly:

* squared distances ``sum_k (x_k - p_k)**2`` are accumulated in float64 over ``k = 0, ..., D-1`` in
  that order (no reassociation, no fused multiply-add), so every backend computes bitwise the same
  number for a pair; ``d = sqrt`` of it;
* ties are broken by the lowest index: candidates are ordered by ``(distance, index)``, hence
  ``i1 < i2`` when ``d1 == d2``;
* ``exclude_self=True``: ``points`` is the query set itself and query ``n`` never matches point
  ``n`` (the nearest *other* sample);
* fewer than two candidates (K = 1, or K = 2 with ``exclude_self``): ``d2 = inf`` and ``i2 = -1``.

Implementations:

* ``backend="numpy"``: the straightforward reference. For a chunk of queries the full distance
  matrix, then ``i1 = argmin`` (``argmin`` returns the first, i.e. lowest-index, minimum), the
  entry masked with ``inf``, and ``i2 = argmin`` again.
* ``backend="numba", method="brute"``: the same brute force, parallel over blocks of queries
  (``prange``; each query is independent, so results do not depend on the thread count). A block
  of points, stored transposed (D x K), is reused across a block of queries; its distances to one
  query are computed in a loop that vectorizes over points (the sum over ``k`` stays sequential),
  then scanned for a running top-2.
* ``backend="numba", method="grid"`` (D <= 3): an exact cell list. Points are sorted (stably)
  into cubic cells holding about two points each on average over their bounding box; a query
  visits rings of cells of growing Chebyshev radius around its own cell and stops once every
  unvisited cell is provably farther than its current second-nearest candidate (a conservative
  bound, see :func:`_ring_bound`). Same results as brute force, far less work in low dimension
  -- unless the points crowd into a few cells (samples collapsed onto a few memories): then a
  query scans whole crowded cells with scalar code, and ``method="auto"`` uses brute force.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from gtv.numerics.checks import check_choice, check_points

__all__ = ["NearestTwo", "nearest_two"]

_BACKENDS = ("numba", "numpy")
_METHODS = ("auto", "brute", "grid")
_QUERY_BLOCK = 32
_POINT_BLOCK = 256
_NUMPY_CHUNK_ENTRIES = 1 << 21
_GRID_MAX_DIM = 3
_GRID_POINTS_PER_CELL = 2.0
# Relative safety margin of the grid's stopping bound: rounding in the cell assignment and in the
# distances is a few ulps; 1e-9 is far above that and costs nothing measurable.
_GRID_SLACK = 1e-9
# Cost of one grid candidate in brute-force pairs (measured ~7 on the 2-core EPYC with all
# samples collapsed onto two points; benchmarks/bench_memorization_nearest.py).
_GRID_COST_RATIO = 8.0
# Largest accepted |coordinate|: squared distances of up to 64k dimensions stay finite.
_MAX_ABS = 1e150


@dataclass(frozen=True)
class NearestTwo:
    """The two nearest points of each query.

    Attributes
    ----------
    d1, d2 : ndarray, shape (N,)
        Euclidean distances to the nearest and second-nearest point (``d1 <= d2``); ``d2 = inf``
        when there is only one candidate.
    i1, i2 : ndarray of int64, shape (N,)
        Their row indices in ``points``; ``i2 = -1`` when there is only one candidate.
    """

    d1: np.ndarray
    d2: np.ndarray
    i1: np.ndarray
    i2: np.ndarray


# -- numpy reference ----------------------------------------------------------------------------
def _sq_dist_numpy(q: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Squared distances (n, K), summed over k in order (bitwise equal to the kernels)."""
    acc = q[:, 0, None] - p[None, :, 0]
    acc *= acc
    for k in range(1, q.shape[1]):
        diff = q[:, k, None] - p[None, :, k]
        diff *= diff
        acc += diff
    return acc


def _nearest_two_numpy(
    q: np.ndarray, p: np.ndarray, exclude_self: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n, k = q.shape[0], p.shape[0]
    d1 = np.empty(n)
    d2 = np.empty(n)
    i1 = np.empty(n, dtype=np.int64)
    i2 = np.empty(n, dtype=np.int64)
    chunk = max(1, _NUMPY_CHUNK_ENTRIES // k)
    for q0 in range(0, n, chunk):
        q1 = min(n, q0 + chunk)
        rows = np.arange(q1 - q0)
        sq = _sq_dist_numpy(q[q0:q1], p)
        if exclude_self:
            sq[rows, np.arange(q0, q1)] = np.inf
        a1 = np.argmin(sq, axis=1)
        d1[q0:q1] = sq[rows, a1]
        sq[rows, a1] = np.inf
        a2 = np.argmin(sq, axis=1)
        d2[q0:q1] = sq[rows, a2]
        i1[q0:q1] = a1
        i2[q0:q1] = a2
    # A masked (self or already taken) entry is not a candidate.
    i2[np.isinf(d2)] = -1
    return np.sqrt(d1), np.sqrt(d2), i1, i2


# -- numba: brute force -------------------------------------------------------------------------
@numba.njit(parallel=True, cache=True)
def _nearest_two_brute_numba(q, pt, exclude_self, qblock, pblock):
    """Running top-2 over all points for each query; ``pt`` is the points transposed (D, K).

    Squared distances of one query to a block of points are accumulated dimension by dimension in
    ``tmp`` (the loops over contiguous 1-D slices vectorize; each entry is summed over k in
    order). A vectorized count of entries below the current second-best skips the scalar scan of
    most blocks. The scan keeps ``(b1, j1) <= (b2, j2)``; points arrive in increasing index order,
    so the strict ``<`` breaks ties by the lowest index.
    """
    n, d = q.shape
    k_total = pt.shape[1]
    d1 = np.empty(n)
    d2 = np.empty(n)
    i1 = np.empty(n, dtype=np.int64)
    i2 = np.empty(n, dtype=np.int64)
    nqb = (n + qblock - 1) // qblock
    for qb in numba.prange(nqb):
        q0 = qb * qblock
        nq = min(n, q0 + qblock) - q0
        b1 = np.full(qblock, np.inf)
        b2 = np.full(qblock, np.inf)
        j1 = np.full(qblock, -1, dtype=np.int64)
        j2 = np.full(qblock, -1, dtype=np.int64)
        buf = np.empty(pblock)
        for p0 in range(0, k_total, pblock):
            p1 = min(k_total, p0 + pblock)
            npb = p1 - p0
            tmp = buf[:npb]
            for a in range(nq):
                qi = q0 + a
                row = pt[0, p0:p1]
                x = q[qi, 0]
                for j in range(npb):
                    diff = x - row[j]
                    tmp[j] = diff * diff
                for kk in range(1, d):
                    row = pt[kk, p0:p1]
                    x = q[qi, kk]
                    for j in range(npb):
                        diff = x - row[j]
                        tmp[j] += diff * diff
                if exclude_self and p0 <= qi < p1:
                    tmp[qi - p0] = np.inf
                c1 = b1[a]
                c2 = b2[a]
                below = 0
                for j in range(npb):
                    below += tmp[j] < c2
                if below == 0:
                    continue
                e1 = j1[a]
                e2 = j2[a]
                for j in range(npb):
                    v = tmp[j]
                    if v < c2:
                        if v < c1:
                            c2 = c1
                            e2 = e1
                            c1 = v
                            e1 = p0 + j
                        else:
                            c2 = v
                            e2 = p0 + j
                b1[a] = c1
                b2[a] = c2
                j1[a] = e1
                j2[a] = e2
        for a in range(nq):
            d1[q0 + a] = math.sqrt(b1[a])
            d2[q0 + a] = math.sqrt(b2[a])
            i1[q0 + a] = j1[a]
            i2[q0 + a] = j2[a]
    return d1, d2, i1, i2


# -- numba: cell list (D <= 3) ------------------------------------------------------------------
@numba.njit(cache=True)
def _offer(v, j, c):
    """Insert candidate ``(v, j)`` into the top-2 state ``c = [b1, b2, j1, j2]`` by the
    lexicographic order of ``(squared distance, index)``."""
    if v < c[1] or (v == c[1] and j < c[3]):
        if v < c[0] or (v == c[0] and j < c[2]):
            c[1] = c[0]
            c[3] = c[2]
            c[0] = v
            c[2] = j
        else:
            c[1] = v
            c[3] = j


@numba.njit(cache=True)
def _visit_cell(cell, start, sp, sidx, x, qi, exclude_self, c):
    """Offer every point of one cell (``sp`` holds the sorted points padded to 3 columns)."""
    for s in range(start[cell], start[cell + 1]):
        j = sidx[s]
        if exclude_self and j == qi:
            continue
        e0 = x[0] - sp[s, 0]
        e1 = x[1] - sp[s, 1]
        e2 = x[2] - sp[s, 2]
        _offer(e0 * e0 + e1 * e1 + e2 * e2, j, c)


@numba.njit(cache=True)
def _box_dist2(x, lo, hi):
    """Squared distance from ``x`` to the box ``[lo, hi]`` (3 coordinates)."""
    s = 0.0
    for k in range(3):
        if x[k] < lo[k]:
            e = lo[k] - x[k]
            s += e * e
        elif x[k] > hi[k]:
            e = x[k] - hi[k]
            s += e * e
    return s


@numba.njit(cache=True)
def _ring_bound(x, c, r, ncell, origin, h, pmin, pmax, slack, lo, hi):
    """Lower bound on the squared distance from ``x`` to every point in a cell outside the
    Chebyshev box of radius ``r`` around cell ``c`` (inf when that box covers the grid).

    The unvisited cells lie in the union of 2D slabs ``{cell_k < c_k - r}``, ``{cell_k > c_k + r}``
    intersected with the points' bounding box; the bound is the distance to the nearest slab,
    each a box. Slab faces are widened by ``slack`` (absolute, per dimension) to absorb rounding
    in the cell assignment.
    """
    best = np.inf
    for k in range(3):
        for side in range(2):
            if side == 0 and c[k] - r <= 0:
                continue
            if side == 1 and c[k] + r >= ncell[k] - 1:
                continue
            for m in range(3):
                lo[m] = pmin[m]
                hi[m] = pmax[m]
            if side == 0:
                hi[k] = min(pmax[k], origin[k] + (c[k] - r) * h + slack[k])
            else:
                lo[k] = max(pmin[k], origin[k] + (c[k] + r + 1) * h - slack[k])
            best = min(best, _box_dist2(x, lo, hi))
    return best


@numba.njit(cache=True)
def _grid_query(x, qi, exclude_self, ncell, origin, inv_h, h, start, sp, sidx, pmin, pmax, slack):
    """Top-2 ``[b1, b2, j1, j2]`` of one query by rings of cells."""
    cst = np.array([np.inf, np.inf, -1.0, -1.0])
    c = np.empty(3, dtype=np.int64)
    for k in range(3):
        ck = math.floor((x[k] - origin[k]) * inv_h) if ncell[k] > 1 else 0.0
        c[k] = int(min(max(ck, 0.0), ncell[k] - 1.0))  # clamp before int: no overflow
    lo = np.empty(3)
    hi = np.empty(3)
    n1, n2 = ncell[1], ncell[2]
    rmax = max(max(ncell[0], ncell[1]), ncell[2])
    for r in range(rmax):
        # Cells at Chebyshev distance exactly r from c: full faces where |o0| == r, rings of the
        # remaining two dimensions otherwise.
        for o0 in range(-r, r + 1):
            a0 = c[0] + o0
            if a0 < 0 or a0 >= ncell[0]:
                continue
            for o1 in range(-r, r + 1):
                a1 = c[1] + o1
                if a1 < 0 or a1 >= n1:
                    continue
                if abs(o0) == r or abs(o1) == r:
                    for a2 in range(max(0, c[2] - r), min(n2, c[2] + r + 1)):
                        _visit_cell(
                            (a0 * n1 + a1) * n2 + a2, start, sp, sidx, x, qi, exclude_self, cst
                        )
                else:
                    # here r >= 1, so the two end cells are distinct
                    for a2 in (c[2] - r, c[2] + r):
                        if 0 <= a2 < n2:
                            _visit_cell(
                                (a0 * n1 + a1) * n2 + a2, start, sp, sidx, x, qi, exclude_self, cst
                            )
        bound = _ring_bound(x, c, r, ncell, origin, h, pmin, pmax, slack, lo, hi)
        if bound == np.inf or bound * (1.0 - _GRID_SLACK) > cst[1]:
            break
    return cst


@numba.njit(parallel=True, cache=True)
def _nearest_two_grid_numba(
    q3, exclude_self, ncell, origin, inv_h, h, start, sp, sidx, pmin, pmax, slack
):
    """Grid search for every query (``q3``: queries padded to 3 columns), parallel over queries."""
    n = q3.shape[0]
    d1 = np.empty(n)
    d2 = np.empty(n)
    i1 = np.empty(n, dtype=np.int64)
    i2 = np.empty(n, dtype=np.int64)
    for qi in numba.prange(n):
        cst = _grid_query(
            q3[qi], qi, exclude_self, ncell, origin, inv_h, h, start, sp, sidx, pmin, pmax, slack
        )
        d1[qi] = math.sqrt(cst[0])
        d2[qi] = math.sqrt(cst[1])
        i1[qi] = int(cst[2])
        i2[qi] = int(cst[3])
    return d1, d2, i1, i2


def _build_grid(p: np.ndarray) -> tuple:
    """Cell list of the points (padded to 3 columns): cubic cells of side ``h`` holding about
    ``_GRID_POINTS_PER_CELL`` points on average over the bounding box; a dimension narrower than
    one cell gets a single cell. Points are sorted by cell, stable in their index."""
    k_total, d = p.shape
    p3 = np.zeros((k_total, 3))
    p3[:, :d] = p
    pmin = p3.min(axis=0)
    pmax = p3.max(axis=0)
    ext = pmax - pmin
    target = max(1.0, k_total / _GRID_POINTS_PER_CELL)
    active = ext > 0
    h = 1.0
    for _ in range(3):
        if not active.any():
            break
        h = float(np.prod(ext[active]) / target) ** (1.0 / int(active.sum()))
        narrower = active & (ext > h)
        if np.array_equal(narrower, active):
            break
        active = narrower
    ncell = np.where(active, np.ceil(ext / h), 1.0).astype(np.int64)
    ncell = np.maximum(ncell, 1)
    inv_h = 1.0 / h
    cidx = np.floor((p3 - pmin) * inv_h)
    cidx = np.clip(np.where(ncell > 1, cidx, 0.0), 0, ncell - 1).astype(np.int64)
    lin = (cidx[:, 0] * ncell[1] + cidx[:, 1]) * ncell[2] + cidx[:, 2]
    order = np.argsort(lin, kind="stable")
    start = np.zeros(int(np.prod(ncell)) + 1, dtype=np.int64)
    np.cumsum(np.bincount(lin, minlength=start.size - 1), out=start[1:])
    slack = _GRID_SLACK * (ext + h) + 1e-12 * (np.abs(pmin) + np.abs(pmax))
    sp = np.ascontiguousarray(p3[order])
    return ncell, pmin.copy(), inv_h, h, start, sp, order.astype(np.int64), pmin, pmax, slack


def _grid_too_crowded(start: np.ndarray) -> bool:
    """True when the cell list would scan more candidates than brute force pays for.

    With queries distributed like the points, a query scans about ``sum_c n_c**2 / K`` points of
    its own cell (``n_c`` = cell occupancy). A grid candidate costs about
    ``_GRID_COST_RATIO`` brute-force pairs (scalar code vs vectorized), so the grid loses once
    that number exceeds ``K / _GRID_COST_RATIO``: collapsed or heavily duplicated points.
    """
    occ = np.diff(start).astype(np.float64)
    k_total = occ.sum()
    return _GRID_COST_RATIO * float(occ @ occ) / k_total > k_total


# -- public function ----------------------------------------------------------------------------
def nearest_two(
    queries: object,
    points: object,
    *,
    exclude_self: bool = False,
    backend: str = "numba",
    method: str = "auto",
) -> NearestTwo:
    """Distances and indices of the nearest and second-nearest point of each query.

    Parameters
    ----------
    queries : array_like, shape (N, D)
        Query points, finite, with ``|values| <= 1e150`` (squared distances must not overflow).
    points : array_like, shape (K, D)
        Candidate points, finite (same bound), K >= 1 (K >= 2 with ``exclude_self``).
    exclude_self : bool
        ``points`` is the query set itself (same values, N = K) and query ``n`` skips point ``n``:
        the nearest *other* point. Exact duplicates at other indices still count (distance 0).
    backend : {"numba", "numpy"}
        The compiled kernels, or the plain-numpy reference (brute force; see the module docstring).
    method : {"auto", "brute", "grid"}
        For ``backend="numba"``: brute force, or the exact cell list (D <= 3 only). ``"auto"``
        picks ``"grid"`` for D <= 3 unless the points crowd into a few cells (collapsed or heavily
        duplicated points, where a query would scan more than about K/8 candidates), and
        ``"brute"`` otherwise. The numpy backend is always brute force (``"grid"`` is refused).
        All choices give identical indices and distances.

    Returns
    -------
    NearestTwo
        ``d1, d2, i1, i2``; with a single candidate ``d2 = inf`` and ``i2 = -1``. Ties are broken
        by the lowest index.

    Raises
    ------
    ValueError
        Non-finite or wrongly shaped ``queries`` / ``points``, mismatched D, too few points, an
        ``exclude_self`` call whose ``points`` differ from ``queries``, or an unknown / inapplicable
        ``backend`` or ``method``.
    """
    check_choice(backend, "backend", _BACKENDS)
    check_choice(method, "method", _METHODS)
    if not isinstance(exclude_self, (bool, np.bool_)):
        raise ValueError(f"exclude_self must be True or False, got {exclude_self!r}")
    q = check_points(queries, "queries")
    p = check_points(points, "points")
    n, d = q.shape
    for arr, name in ((q, "queries"), (p, "points")):
        if np.max(np.abs(arr)) > _MAX_ABS:
            raise ValueError(
                f"{name} must have |values| <= {_MAX_ABS:g} (squared distances must not overflow)"
            )
    if p.shape[1] != d:
        raise ValueError(
            f"points must have the same number of columns as queries (D = {d}), got {p.shape[1]}"
        )
    if exclude_self:
        if p.shape[0] < 2:
            raise ValueError("points must hold at least 2 rows with exclude_self=True")
        if p.shape != q.shape or not np.array_equal(p, q):
            raise ValueError("with exclude_self=True, points must be the same array as queries")
    if method == "grid" and d > _GRID_MAX_DIM:
        raise ValueError(f"method='grid' needs D <= {_GRID_MAX_DIM}, got D = {d}")
    if method == "grid" and backend == "numpy":
        raise ValueError("method='grid' needs backend='numba' (the numpy reference is brute force)")
    excl = bool(exclude_self)
    if backend == "numpy":
        out = _nearest_two_numpy(q, p, excl)
    elif method == "grid" or (method == "auto" and d <= _GRID_MAX_DIM):
        grid = _build_grid(p)
        if method == "auto" and _grid_too_crowded(grid[4]):
            out = _nearest_two_brute_numba(
                q, np.ascontiguousarray(p.T), excl, _QUERY_BLOCK, _POINT_BLOCK
            )
        else:
            q3 = np.zeros((n, 3))
            q3[:, :d] = q
            out = _nearest_two_grid_numba(q3, excl, *grid)
    else:
        pt = np.ascontiguousarray(p.T)
        out = _nearest_two_brute_numba(q, pt, excl, _QUERY_BLOCK, _POINT_BLOCK)
    return NearestTwo(*out)
