"""Numba kernels for the face coefficients of one sweep.

Along an axis the flux through a face is ``F = c+ p_l - c- p_r``, with two sets of coefficients:
Chang-Cooper / Scharfetter-Gummel exponential fitting (low order, an M-matrix) and central
differences (high order). Along another lattice direction (the Selling part of a full 2-D noise)
the flux is the central diffusion ``F = 1/2 (V rho p)_l - 1/2 (V rho p)_r``. The scheme is
described in :mod:`gtv.numerics.fokker_planck.solver`.
"""

from __future__ import annotations

import numba
import numpy as np

from gtv.numerics.fokker_planck.constants import W_MAX

__all__ = ["axis_coeffs_parallel", "axis_coeffs_serial", "cross_coeffs"]


@numba.njit(cache=True, error_model="numpy", inline="always")
def _bernoulli(w):
    """``B(w) = w / (exp(w) - 1)``, ``B(0) = 1``."""
    if w == 0.0:
        return 1.0
    return w / np.expm1(w)


@numba.njit(cache=True, error_model="numpy")
def _axis_coeffs_line(c, a, q, ptr, idx, h, theta, area, cpl, cml, cph, cmh):
    """Face coefficients of one line of an axis sweep: flux ``F = c+ p_l - c- p_r``."""
    s0 = ptr[c]
    m = ptr[c + 1] - s0
    f0 = s0 - c
    for k in range(m - 1):
        f = f0 + k
        ql = q[idx[s0 + k]]
        qr = q[idx[s0 + k + 1]]
        hf = h[f]
        th = theta[f]
        ar = area[f]
        af = a[f]
        # central: J = af ((1 - th) p_l + th p_r) - (qr p_r - ql p_l) / (2 h)
        cph[f] = ar * (af * (1.0 - th) + 0.5 * ql / hf)
        cmh[f] = ar * (0.5 * qr / hf - af * th)
        # Chang-Cooper / Scharfetter-Gummel: J = (d/h) [B(-w) p_l - B(w) p_r]
        drift = af - 0.5 * (qr - ql) / hf
        d = 0.25 * (ql + qr)
        # |w| > 700: the exponential fitting equals upwinding to within exp(-700); computing w
        # there would overflow (d can be denormal where the noise has all but vanished).
        if d > 0.0 and abs(drift * hf) < W_MAX * d:
            w = drift * hf / d
            cpl[f] = ar * (d / hf) * _bernoulli(-w)
            cml[f] = ar * (d / hf) * _bernoulli(w)
        else:
            cpl[f] = ar * max(drift, 0.0)
            cml[f] = ar * max(-drift, 0.0)


@numba.njit(cache=True, error_model="numpy")
def axis_coeffs_serial(a, q, ptr, idx, h, theta, area, cpl, cml, cph, cmh):
    for c in range(ptr.shape[0] - 1):
        _axis_coeffs_line(c, a, q, ptr, idx, h, theta, area, cpl, cml, cph, cmh)


@numba.njit(parallel=True, cache=True, error_model="numpy")
def axis_coeffs_parallel(a, q, ptr, idx, h, theta, area, cpl, cml, cph, cmh):
    for c in numba.prange(ptr.shape[0] - 1):
        _axis_coeffs_line(c, a, q, ptr, idx, h, theta, area, cpl, cml, cph, cmh)


@numba.njit(cache=True, error_model="numpy")
def cross_coeffs(rho, vol, ptr, idx, cp, cm):
    """Coefficients of a lattice-direction sweep: ``F = -1/2 (V rho p)_r + 1/2 (V rho p)_l``."""
    n_chains = ptr.shape[0] - 1
    for c in range(n_chains):
        s0 = ptr[c]
        m = ptr[c + 1] - s0
        f0 = s0 - c
        for k in range(m - 1):
            lc = idx[s0 + k]
            rc = idx[s0 + k + 1]
            cp[f0 + k] = 0.5 * vol[lc] * rho[lc]
            cm[f0 + k] = 0.5 * vol[rc] * rho[rc]
