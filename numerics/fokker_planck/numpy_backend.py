"""Plain numpy / scipy reference backend of the Fokker-Planck solver (slow; for tests).

The same scheme as :class:`gtv.numerics.fokker_planck.numba_backend.NumbaBackend`, written
independently: each sweep's operator is assembled as one scipy.sparse matrix on the whole grid and
solved with a sparse LU, the lines are built in Python, the Selling decomposition is vectorized
numpy (:func:`gtv.numerics.fokker_planck.selling.selling_reference`) and the FCT limiter a loop
over lines. A test asserts that the two backends agree to rounding.
"""

from __future__ import annotations

import numpy as np

from gtv.numerics.fokker_planck.constants import (
    FCT_MARGIN,
    TRBDF2_C1,
    TRBDF2_C2,
    TRBDF2_KAPPA,
    W_MAX,
)
from gtv.numerics.fokker_planck.geometry import Geometry
from gtv.numerics.fokker_planck.selling import selling_reference

__all__ = ["NumpyBackend"]


def _bernoulli_np(w: np.ndarray) -> np.ndarray:
    out = np.ones_like(w)
    nz = w != 0.0
    with np.errstate(over="ignore"):
        out[nz] = w[nz] / np.expm1(w[nz])
    return out


def _chains_python(nx: int, ny: int, e: tuple[int, int]) -> list[np.ndarray]:
    """Lines of direction ``e`` as a list of flat-index arrays (ordered by first cell)."""
    a, b = e
    chains = []
    for i in range(nx):
        for j in range(ny):
            if 0 <= i - a < nx and 0 <= j - b < ny:
                continue
            cells = []
            ii, jj = i, j
            while 0 <= ii < nx and 0 <= jj < ny:
                cells.append(ii * ny + jj)
                ii, jj = ii + a, jj + b
            chains.append(np.array(cells, dtype=np.int64))
    return chains


class NumpyBackend:
    """Reference: each sweep is one scipy.sparse system on the whole grid."""

    name = "numpy"

    def __init__(self, geom: Geometry):
        self.geom = geom
        self._chains: dict[tuple[int, int], list[np.ndarray]] = {}

    def _lines(self, e: tuple[int, int]) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
        if e not in self._chains:
            self._chains[e] = _chains_python(self.geom.nx, self.geom.ny, e)
        chains = self._chains[e]
        left = np.concatenate([ch[:-1] for ch in chains])
        right = np.concatenate([ch[1:] for ch in chains])
        return chains, left, right

    def axis_op(self, k: int, a: np.ndarray, q: np.ndarray) -> tuple:
        ax = self.geom.axes[k]
        chains, left, right = self._lines(ax["e"])
        h, th, ar = ax["h"], ax["theta"], ax["area"]
        ql, qr = q[left], q[right]
        cph = ar * (a * (1.0 - th) + 0.5 * ql / h)
        cmh = ar * (0.5 * qr / h - a * th)
        drift = a - 0.5 * (qr - ql) / h
        d = 0.25 * (ql + qr)
        pos = (d > 0.0) & (np.abs(drift * h) < W_MAX * d)
        w = np.where(pos, drift * h / np.where(pos, d, 1.0), 0.0)
        cpl = np.where(pos, ar * (d / h) * _bernoulli_np(-w), ar * np.maximum(drift, 0.0))
        cml = np.where(pos, ar * (d / h) * _bernoulli_np(w), ar * np.maximum(-drift, 0.0))
        return (chains, left, right, cpl, cml, cph, cmh)

    def cross_op(self, e: tuple[int, int], rho: np.ndarray) -> tuple:
        chains, left, right = self._lines(e)
        vol = self.geom.vol
        cp = 0.5 * vol[left] * rho[left]
        cm = 0.5 * vol[right] * rho[right]
        return (chains, left, right, cp, cm, cp, cm)

    def selling(self, qxx, qxy, qyy, hx, hy, kmax):
        return selling_reference(qxx, qxy, qyy, hx, hy, kmax)

    def sweep(self, p: np.ndarray, op: tuple, ds: float, high: bool) -> tuple[float, int]:
        import scipy.sparse as sp
        import scipy.sparse.linalg as spla

        chains, left, right, cpl, cml, cph, cmh = op
        n = p.size
        vol = self.geom.vol

        def lmat(cp, cm):
            rows = np.concatenate([left, right, left, right])
            cols = np.concatenate([left, left, right, right])
            vals = np.concatenate([-cp, cp, cm, -cm])
            return sp.csc_matrix((vals, (rows, cols)), shape=(n, n))

        V = sp.diags(vol, format="csc")
        pl = spla.spsolve((V - ds * lmat(cpl, cml)).tocsc(), vol * p)
        if not high:
            p[:] = pl
            return 0.0, 0
        LH = lmat(cph, cmh)
        lu = spla.splu((V - TRBDF2_KAPPA * ds * LH).tocsc())
        ps = lu.solve(vol * p + TRBDF2_KAPPA * ds * (LH @ p))
        ph = lu.solve(vol * (TRBDF2_C1 * ps - TRBDF2_C2 * p))
        limited, fallback = 0.0, 0
        out_p = p.copy()
        for ch in chains:
            if ch.size < 2:
                continue
            v, pL, pH = vol[ch], pl[ch], ph[ch]
            if not np.all(np.isfinite(pH)):
                out_p[ch] = pL
                fallback += 1
                continue
            g = np.cumsum(v * (pL - pH))[:-1]
            out = np.zeros(ch.size)
            out[:-1] += np.maximum(g, 0.0)
            out[1:] += np.maximum(-g, 0.0)
            vp = v * pL
            avail = vp * (1.0 - FCT_MARGIN)
            R = np.where(out > avail, avail / np.where(out > 0, out, 1.0), 1.0)
            G = g * np.where(g > 0.0, R[:-1], R[1:])
            limited += float(np.sum(np.abs(g - G)))
            removed = np.zeros(ch.size)
            incoming = np.zeros(ch.size)
            removed[:-1] += np.maximum(G, 0.0)
            incoming[:-1] += np.maximum(-G, 0.0)
            removed[1:] += np.maximum(-G, 0.0)
            incoming[1:] += np.maximum(G, 0.0)
            out_p[ch] = (vp - removed) / v + incoming / v
        p[:] = out_p
        return limited, fallback
