"""Selling's decomposition of a 2x2 noise matrix into lattice directions.

Selling's obtuse superbase, as in Fehrenbach & Mirebeau 2014: in grid units
``H^-1 Q H^-1 = sum_e rho_e e e^T`` with ``rho_e >= 0`` and ``e`` three integer vectors per cell,
so the full 2-D noise becomes non-negative central diffusions along grid lines (see
:mod:`gtv.numerics.fokker_planck.solver`). The numba kernel (:func:`selling_decomposition`) and
its numpy reference (:func:`selling_reference`) return ``(qx, qy, ex, ey, rho, dropped)``: the
axis parts as physical diagonal noise, the other directions (``(N, 3)`` integer arrays, weight 0
in unused slots), their weights, and the relative trace of ``Q`` the stencil limit ``kmax``
could not represent.
"""

from __future__ import annotations

import numba
import numpy as np

from gtv.numerics.fokker_planck.constants import SELLING_MAXIT, SELLING_TOL

__all__ = ["selling_decomposition", "selling_reference"]


@numba.njit(cache=True, error_model="numpy", inline="always")
def _pair_product(ax, ay, bx, by, dxx, dxy, dyy):
    """``a . D b`` for integer vectors ``a``, ``b`` and the symmetric 2x2 ``D``."""
    return ax * (dxx * bx + dxy * by) + ay * (dxy * bx + dyy * by)


@numba.njit(cache=True, error_model="numpy", inline="always")
def _selling_dropped(v0x, v0y, v1x, v1y, v2x, v2y, dxx, dxy, dyy, hx, hy):
    """Physical trace of the positive pair products that a superbase cannot represent."""
    out = 0.0
    s = _pair_product(v0x, v0y, v1x, v1y, dxx, dxy, dyy)
    out += max(s, 0.0) * (hx * hx * v2y * v2y + hy * hy * v2x * v2x)
    s = _pair_product(v0x, v0y, v2x, v2y, dxx, dxy, dyy)
    out += max(s, 0.0) * (hx * hx * v1y * v1y + hy * hy * v1x * v1x)
    s = _pair_product(v1x, v1y, v2x, v2y, dxx, dxy, dyy)
    out += max(s, 0.0) * (hx * hx * v0y * v0y + hy * hy * v0x * v0x)
    return out


@numba.njit(cache=True, error_model="numpy", inline="always")
def _selling_slot(i, slot, s, cx, cy, hx, hy, qx, qy, ex, ey, rho):
    """Store the weight ``-s`` of direction ``perp(c)``; return the dropped trace (if ``s > 0``)."""
    r = -s
    e0 = -cy
    e1 = cx
    if e0 < 0 or (e0 == 0 and e1 < 0):
        e0 = -e0
        e1 = -e1
    ex[i, slot] = e0
    ey[i, slot] = e1
    rho[i, slot] = 0.0
    if r < 0.0:
        return -r * (hx * hx * e0 * e0 + hy * hy * e1 * e1)
    if e0 == 1 and e1 == 0:
        qx[i] += r * hx * hx
    elif e0 == 0 and e1 == 1:
        qy[i] += r * hy * hy
    else:
        rho[i, slot] = r
    return 0.0


@numba.njit(cache=True, error_model="numpy")
def _selling_cell(i, qxx, qxy, qyy, hx, hy, kmax, qx, qy, ex, ey, rho, dropped):
    """Selling decomposition of ``H^-1 Q H^-1`` per cell (see the module docstring).

    Superbase ``(v0, v1, v2)``, ``v0 + v1 + v2 = 0``; while a pair has ``vi . D vj > tol`` (pairs
    tried in the order (0,1), (0,2), (1,2)) it is replaced by ``(-vi, vj, vi - vj)`` unless the new
    vector exceeds ``kmax``. Then ``D = -sum_{i<j} (vi . D vj) e_ij e_ij^T``, ``e_ij = perp(v_k)``.
    If the stencil limit stops the iteration before every product is <= tol, the superbase met on
    the way that drops the smallest trace of positive products is used. Writes the axis parts as
    physical diagonal noise ``qx``, ``qy``, the other directions (canonical sign: ``ex > 0`` or
    ``ex == 0 < ey``) and weights to ``ex, ey, rho`` (N, 3) (weight 0 in unused slots), and the
    dropped relative trace to ``dropped``.
    """
    dxx = qxx[i] / (hx * hx)
    dxy = qxy[i] / (hx * hy)
    dyy = qyy[i] / (hy * hy)
    tol = SELLING_TOL * (dxx + dyy)
    v0x, v0y, v1x, v1y, v2x, v2y = 1, 0, 0, 1, -1, -1
    best = _selling_dropped(v0x, v0y, v1x, v1y, v2x, v2y, dxx, dxy, dyy, hx, hy)
    b0x, b0y, b1x, b1y, b2x, b2y = v0x, v0y, v1x, v1y, v2x, v2y
    converged = False
    for _ in range(SELLING_MAXIT):
        s01 = _pair_product(v0x, v0y, v1x, v1y, dxx, dxy, dyy)
        s02 = _pair_product(v0x, v0y, v2x, v2y, dxx, dxy, dyy)
        s12 = _pair_product(v1x, v1y, v2x, v2y, dxx, dxy, dyy)
        if s01 <= tol and s02 <= tol and s12 <= tol:
            converged = True
            break
        if s01 > tol and max(abs(v0x - v1x), abs(v0y - v1y)) <= kmax:
            v2x, v2y, v0x, v0y = v0x - v1x, v0y - v1y, -v0x, -v0y
        elif s02 > tol and max(abs(v0x - v2x), abs(v0y - v2y)) <= kmax:
            v1x, v1y, v0x, v0y = v0x - v2x, v0y - v2y, -v0x, -v0y
        elif s12 > tol and max(abs(v1x - v2x), abs(v1y - v2y)) <= kmax:
            v0x, v0y, v1x, v1y = v1x - v2x, v1y - v2y, -v1x, -v1y
        else:
            break  # every violating update would exceed the stencil limit
        d = _selling_dropped(v0x, v0y, v1x, v1y, v2x, v2y, dxx, dxy, dyy, hx, hy)
        if d < best:
            best = d
            b0x, b0y, b1x, b1y, b2x, b2y = v0x, v0y, v1x, v1y, v2x, v2y
    if not converged:  # stencil limit: keep the superbase that dropped the least
        v0x, v0y, v1x, v1y, v2x, v2y = b0x, b0y, b1x, b1y, b2x, b2y
    qx[i] = 0.0
    qy[i] = 0.0
    drop = _selling_slot(
        i,
        0,
        _pair_product(v0x, v0y, v1x, v1y, dxx, dxy, dyy),
        v2x,
        v2y,
        hx,
        hy,
        qx,
        qy,
        ex,
        ey,
        rho,
    )
    drop += _selling_slot(
        i,
        1,
        _pair_product(v0x, v0y, v2x, v2y, dxx, dxy, dyy),
        v1x,
        v1y,
        hx,
        hy,
        qx,
        qy,
        ex,
        ey,
        rho,
    )
    drop += _selling_slot(
        i,
        2,
        _pair_product(v1x, v1y, v2x, v2y, dxx, dxy, dyy),
        v0x,
        v0y,
        hx,
        hy,
        qx,
        qy,
        ex,
        ey,
        rho,
    )
    tr = qxx[i] + qyy[i]
    dropped[i] = drop / tr if tr > 0.0 else 0.0


@numba.njit(cache=True, error_model="numpy")
def _selling_serial(qxx, qxy, qyy, hx, hy, kmax, qx, qy, ex, ey, rho, dropped):
    for i in range(qxx.shape[0]):
        _selling_cell(i, qxx, qxy, qyy, hx, hy, kmax, qx, qy, ex, ey, rho, dropped)


@numba.njit(parallel=True, cache=True, error_model="numpy")
def _selling_parallel(qxx, qxy, qyy, hx, hy, kmax, qx, qy, ex, ey, rho, dropped):
    for i in numba.prange(qxx.shape[0]):
        _selling_cell(i, qxx, qxy, qyy, hx, hy, kmax, qx, qy, ex, ey, rho, dropped)


def selling_decomposition(qxx, qxy, qyy, hx, hy, kmax, parallel=False):
    """Selling decomposition of ``Q = [[qxx, qxy], [qxy, qyy]]`` per cell on spacing ``(hx, hy)``.

    Numba kernel, serial or parallel over cells (same result); see the module docstring for the
    returned ``(qx, qy, ex, ey, rho, dropped)``.
    """
    n = qxx.shape[0]
    qx, qy, dropped = np.empty(n), np.empty(n), np.empty(n)
    ex, ey = np.empty((n, 3), dtype=np.int64), np.empty((n, 3), dtype=np.int64)
    rho = np.empty((n, 3))
    kernel = _selling_parallel if parallel else _selling_serial
    kernel(qxx, qxy, qyy, hx, hy, kmax, qx, qy, ex, ey, rho, dropped)
    return qx, qy, ex, ey, rho, dropped


def selling_reference(qxx, qxy, qyy, hx, hy, kmax):
    """Plain-numpy reference of :func:`selling_decomposition` (vectorized over cells).

    Same iteration and tie-breaking as the numba kernel, on all cells at once.
    """
    n = qxx.shape[0]
    dxx, dxy, dyy = qxx / (hx * hx), qxy / (hx * hy), qyy / (hy * hy)
    tol = SELLING_TOL * (dxx + dyy)
    v = np.zeros((3, n, 2), dtype=np.int64)
    v[0, :, 0] = 1
    v[1, :, 1] = 1
    v[2] = -1
    pairs = ((0, 1, 2), (0, 2, 1), (1, 2, 0))

    def inner(x, y):
        return x[:, 0] * (dxx * y[:, 0] + dxy * y[:, 1]) + x[:, 1] * (dxy * y[:, 0] + dyy * y[:, 1])

    def dropped_trace(v):
        out = np.zeros(n)
        for a, b, c in pairs:
            s = np.maximum(inner(v[a], v[b]), 0.0)
            out += s * (hx * hx * v[c][:, 1] * v[c][:, 1] + hy * hy * v[c][:, 0] * v[c][:, 0])
        return out

    best, best_v = dropped_trace(v), v.copy()
    active = np.ones(n, dtype=bool)  # still iterating
    converged = np.zeros(n, dtype=bool)
    for _ in range(SELLING_MAXIT):
        conv = active & np.all([inner(v[a], v[b]) <= tol for a, b, _c in pairs], axis=0)
        converged |= conv
        active &= ~conv
        done = np.zeros(n, dtype=bool)
        for a, b, c in pairs:
            new = v[a] - v[b]
            ok = active & ~done & (inner(v[a], v[b]) > tol) & (np.abs(new).max(axis=1) <= kmax)
            v[c][ok] = new[ok]
            v[a][ok] = -v[a][ok]
            done |= ok
        active &= done  # blocked cells stop
        d = dropped_trace(v)
        better = active & (d < best)
        best[better] = d[better]
        best_v[:, better] = v[:, better]
        if not active.any():
            break
    v = np.where(converged[None, :, None], v, best_v)
    qx, qy, drop = np.zeros(n), np.zeros(n), np.zeros(n)
    ex, ey, rho = (
        np.zeros((n, 3), dtype=np.int64),
        np.zeros((n, 3), dtype=np.int64),
        np.zeros((n, 3)),
    )
    for slot, (a, b, c) in enumerate(pairs):
        r = -inner(v[a], v[b])
        e0, e1 = -v[c][:, 1], v[c][:, 0]
        flip = (e0 < 0) | ((e0 == 0) & (e1 < 0))
        e0, e1 = np.where(flip, -e0, e0), np.where(flip, -e1, e1)
        ex[:, slot], ey[:, slot] = e0, e1
        neg = r < 0.0
        drop += np.where(neg, -r * (hx * hx * e0 * e0 + hy * hy * e1 * e1), 0.0)
        isx = ~neg & (e0 == 1) & (e1 == 0)
        isy = ~neg & (e0 == 0) & (e1 == 1)
        qx += np.where(isx, r * hx * hx, 0.0)
        qy += np.where(isy, r * hy * hy, 0.0)
        rho[:, slot] = np.where(~neg & ~isx & ~isy, r, 0.0)
    tr = qxx + qyy
    dropped = np.divide(drop, tr, out=np.zeros(n), where=tr > 0)
    return qx, qy, ex, ey, rho, dropped
