"""Numba line sweeps: Thomas solves, TR-BDF2 and the FCT positivity limiter.

One sweep advances the density along every line of one direction by ``ds``: the low-order
(Chang-Cooper) backward-Euler solution, the high-order (central) TR-BDF2 solution, and the
Zalesak-type flux limiter that blends them without creating negative cells (see
:mod:`gtv.numerics.fokker_planck.solver`).
"""

from __future__ import annotations

import numba
import numpy as np

from gtv.numerics.fokker_planck.constants import (
    FCT_MARGIN,
    PIVOT_FLOOR,
    TRBDF2_C1,
    TRBDF2_C2,
    TRBDF2_KAPPA,
)

__all__ = ["sweep_parallel", "sweep_serial"]


@numba.njit(cache=True, error_model="numpy", inline="always")
def _tri_factor(vm, cp, cm, s0, f0, m, scale, fac, piv):
    """LU of ``V - scale L`` on one line; False if a pivot is below ``PIVOT_FLOOR * V``."""
    for k in range(m):
        diag = vm[s0 + k]
        if k < m - 1:
            diag += scale * cp[f0 + k]
        if k > 0:
            diag += scale * cm[f0 + k - 1]
            # sub-diagonal -scale cp[k-1/2] times the previous c' = sup/den
            diag -= (-scale * cp[f0 + k - 1]) * fac[s0 + k - 1]
        if not diag >= PIVOT_FLOOR * vm[s0 + k]:
            return False
        piv[s0 + k] = diag
        fac[s0 + k] = (-scale * cm[f0 + k]) / diag if k < m - 1 else 0.0
    return True


@numba.njit(cache=True, error_model="numpy", inline="always")
def _tri_solve(cp, s0, f0, m, scale, fac, piv, rhs, out):
    """Solve with the factors of :func:`_tri_factor` (Thomas forward/back substitution)."""
    for k in range(m):
        r = rhs[s0 + k]
        if k > 0:
            r += scale * cp[f0 + k - 1] * out[s0 + k - 1]
        out[s0 + k] = r / piv[s0 + k]
    for k in range(m - 2, -1, -1):
        out[s0 + k] -= fac[s0 + k] * out[s0 + k + 1]


@numba.njit(cache=True, error_model="numpy")
def _sweep_line(c, p, vol, ptr, idx, cpl, cml, cph, cmh, ds, high_order, work, limited, fallback):
    """One line of a sweep: low-order BE, high-order TR-BDF2, FCT positivity limiter.

    ``work`` (10, n) is scratch space; line ``c`` only touches its own positions.
    """
    vm, pn, pl, ph, ps, rhs, fac, piv, g, rr = (
        work[0],
        work[1],
        work[2],
        work[3],
        work[4],
        work[5],
        work[6],
        work[7],
        work[8],
        work[9],
    )
    s0 = ptr[c]
    m = ptr[c + 1] - s0
    f0 = s0 - c
    if m < 2:
        return
    for k in range(m):
        vm[s0 + k] = vol[idx[s0 + k]]
        pn[s0 + k] = p[idx[s0 + k]]
        rhs[s0 + k] = vm[s0 + k] * pn[s0 + k]
    # low order: (V - ds L_low) p_low = V p_n, an M-matrix (pivots >= V)
    _tri_factor(vm, cpl, cml, s0, f0, m, ds, fac, piv)
    _tri_solve(cpl, s0, f0, m, ds, fac, piv, rhs, pl)
    use_high = high_order
    sc = TRBDF2_KAPPA * ds
    if use_high:
        use_high = _tri_factor(vm, cph, cmh, s0, f0, m, sc, fac, piv)
        if not use_high:
            fallback[c] = 1
    if not use_high:
        for k in range(m):
            p[idx[s0 + k]] = pl[s0 + k]
        return
    # TR stage: (V - kappa ds L) p* = (V + kappa ds L) p_n
    for k in range(m):
        lp = 0.0
        if k < m - 1:
            lp += -cph[f0 + k] * pn[s0 + k] + cmh[f0 + k] * pn[s0 + k + 1]
        if k > 0:
            lp += cph[f0 + k - 1] * pn[s0 + k - 1] - cmh[f0 + k - 1] * pn[s0 + k]
        rhs[s0 + k] = vm[s0 + k] * pn[s0 + k] + sc * lp
    _tri_solve(cph, s0, f0, m, sc, fac, piv, rhs, ps)
    # BDF2 stage: (V - kappa ds L) p_high = V (c1 p* - c2 p_n)
    for k in range(m):
        rhs[s0 + k] = vm[s0 + k] * (TRBDF2_C1 * ps[s0 + k] - TRBDF2_C2 * pn[s0 + k])
    _tri_solve(cph, s0, f0, m, sc, fac, piv, rhs, ph)
    finite = True
    for k in range(m):
        if not np.isfinite(ph[s0 + k]):
            finite = False
    if not finite:
        fallback[c] = 1
        for k in range(m):
            p[idx[s0 + k]] = pl[s0 + k]
        return
    # FCT: g[k] moves mass from cell k to k+1 and turns p_low into p_high
    acc = 0.0
    for k in range(m - 1):
        acc += vm[s0 + k] * (pl[s0 + k] - ph[s0 + k])
        g[f0 + k] = acc
    for k in range(m):
        out = 0.0
        if k < m - 1:
            out += max(g[f0 + k], 0.0)
        if k > 0:
            out += max(-g[f0 + k - 1], 0.0)
        avail = (vm[s0 + k] * pl[s0 + k]) * (1.0 - FCT_MARGIN)
        rr[s0 + k] = avail / out if out > avail else 1.0
    lim = 0.0
    for k in range(m - 1):
        gk = g[f0 + k]
        gl = gk * (rr[s0 + k] if gk > 0.0 else rr[s0 + k + 1])
        lim += abs(gk - gl)
        g[f0 + k] = gl
    limited[c] = lim
    for k in range(m):
        removed = 0.0
        incoming = 0.0
        if k < m - 1:
            removed += max(g[f0 + k], 0.0)
            incoming += max(-g[f0 + k], 0.0)
        if k > 0:
            removed += max(-g[f0 + k - 1], 0.0)
            incoming += max(g[f0 + k - 1], 0.0)
        v = vm[s0 + k]
        p[idx[s0 + k]] = (v * pl[s0 + k] - removed) / v + incoming / v


@numba.njit(cache=True, error_model="numpy")
def sweep_serial(p, vol, ptr, idx, cpl, cml, cph, cmh, ds, high_order):
    """A sweep over all lines (``p`` flat, updated in place); returns (limited mass, fallbacks)."""
    n_chains = ptr.shape[0] - 1
    work = np.empty((10, idx.shape[0]))
    limited = np.zeros(n_chains)
    fallback = np.zeros(n_chains, dtype=np.int64)
    for c in range(n_chains):
        _sweep_line(
            c, p, vol, ptr, idx, cpl, cml, cph, cmh, ds, high_order, work, limited, fallback
        )
    return limited.sum(), fallback.sum()


@numba.njit(parallel=True, cache=True, error_model="numpy")
def sweep_parallel(p, vol, ptr, idx, cpl, cml, cph, cmh, ds, high_order):
    """:func:`sweep_serial` with the lines in parallel (same result for any thread count)."""
    n_chains = ptr.shape[0] - 1
    work = np.empty((10, idx.shape[0]))
    limited = np.zeros(n_chains)
    fallback = np.zeros(n_chains, dtype=np.int64)
    for c in numba.prange(n_chains):
        _sweep_line(
            c, p, vol, ptr, idx, cpl, cml, cph, cmh, ds, high_order, work, limited, fallback
        )
    return limited.sum(), fallback.sum()
