"""PF-ODE sampling of kernel-expansion ensembles (docs/math/conventions.md).

Model ``n`` of a :class:`~gtv.numerics.kernel.ensemble.KernelEnsemble` is the denoiser
``D^_n(z) = Theta(z, centres_n) coeffs_n``; :func:`integrate_kernel_ensemble` integrates the PF-ODE
``dx/dt = pf_x_coeff(t) x - pf_mean_coeff(t) D^(x, t)`` on a given time grid by Euler or Heun with
the one stepper of :mod:`gtv.numerics.pfode` (:func:`~gtv.numerics.pfode.make_pf_ode`), the
denoiser evaluated exactly at each sample (one NTK value per centre,
:func:`gtv.numerics.kernel.gram.pair_value`). Results do not depend on the thread count.
``backend="numpy"`` is the plain reference :func:`~gtv.numerics.pfode.pf_ode_reference` with Gram
matrices per step.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from gtv.numerics.kernel.gram import ACTIVATION_CODES, gram_reference, pair_value
from gtv.numerics.pfode import make_pf_ode, pf_ode_reference

__all__ = ["integrate_kernel_ensemble"]


@numba.njit(cache=True, error_model="numpy", inline="always")
def _kernel_denoise(act, uq, nq, units, norms, coeffs, inv_d, out):
    """``out = sum_j Theta(zq, centres_j) coeffs_j`` (one query, as unit vector and norm)."""
    dd = coeffs.shape[1]
    for c in range(dd):
        out[c] = 0.0
    for j in range(units.shape[0]):
        v = pair_value(act, 2, uq, units[j], nq, norms[j], inv_d)
        for c in range(dd):
            out[c] += v * coeffs[j, c]


@numba.njit(cache=True, error_model="numpy", inline="always")
def _set_query(x, e, bias, uq):
    """``uq = z / |z|`` for ``z = (x, e, bias)``; returns ``|z|``."""
    d = x.shape[0]
    acc = e * e + bias * bias
    for k in range(d):
        acc += x[k] * x[k]
    nz = math.sqrt(acc)
    for k in range(d):
        uq[k] = x[k] / nz
    uq[d] = e / nz
    uq[d + 1] = bias / nz
    return nz


@numba.njit(cache=True, error_model="numpy", inline="always")
def _kernel_point(args, n, k, x, out, uq):
    """``out = D^_n(x, ts[k])`` for one point: the PF-ODE denoiser of :func:`make_pf_ode`.

    ``args = (units, norms, cidx, coeffs, rows, act, emb, bias)``: row ``n`` of the start points
    is carried by model ``m = rows[n]``, whose centres are the unit vectors ``units[cidx[m]]``
    with norms ``norms[cidx[m]]`` (index arrays rather than a conditional on ``n``, which would
    mix integer types); ``uq`` (d_in,) is the workspace.
    """
    units, norms, cidx, coeffs, rows, act, emb, bias = args
    m = rows[n]
    cn = cidx[m]
    nq = _set_query(x, emb[k], bias, uq)
    _kernel_denoise(act, uq, nq, units[cn], norms[cn], coeffs[m], 1.0 / uq.shape[0], out)


@numba.njit(cache=True, error_model="numpy", inline="always")
def _query_workspace(args, d):
    """The query ``z / |z|`` (d_in = D + 2,) of one job."""
    return np.empty(d + 2)


_pf_ode_kernel = make_pf_ode(_kernel_point, _query_workspace, pointwise=True)


def integrate_kernel_ensemble(
    x: np.ndarray,
    centres: np.ndarray,
    coeffs: np.ndarray,
    activation: str,
    emb: np.ndarray,
    bias: float,
    ts: np.ndarray,
    ax: np.ndarray,
    bx: np.ndarray,
    heun: bool,
    backend: str = "numba",
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """Integrate start points ``x`` (N, S, D) of kernel-expansion denoisers down the grid ``ts``.

    Parameters
    ----------
    x : ndarray (N, S, D) (or (R, S, D) with ``rows``)
        Start points at ``ts[0]``, C-contiguous float64 (overwritten by the numba backend).
    centres : ndarray (N or 1, P, d_in)
        Kernel centres per model, or one set shared by all models.
    coeffs : ndarray (N, P, D)
        ``D^_n(z) = Theta(z, centres_n) coeffs_n``.
    activation : {"relu", "erf"}
    emb : ndarray (K+1,)
        Time embedding on the grid; the query is ``z = (x, emb[k], bias)``.
    bias : float
    ts, ax, bx : ndarray (K+1,)
        Time grid and PF-ODE drift coefficients ``pf_x_coeff``, ``pf_mean_coeff`` on it.
    heun : bool
        Heun instead of Euler.
    backend : {"numba", "numpy"}
    rows : ndarray of int64 (R,), optional
        Row ``r`` of ``x`` is carried by model ``rows[r]`` (default: row ``n`` by model ``n``;
        :func:`gtv.numerics.pfode.model_rows` checks it).

    Returns
    -------
    ndarray (N, S, D) (or (R, S, D))
        The points at ``ts[-1]`` (``x`` itself for the numba backend).
    """
    n_models = coeffs.shape[0]
    if rows is None:
        rows = np.arange(x.shape[0], dtype=np.int64)
    if backend == "numba":
        norms = np.sqrt(np.sum(centres**2, axis=2))
        units = np.ascontiguousarray(centres / norms[:, :, None])
        cidx = np.arange(n_models) if centres.shape[0] > 1 else np.zeros(n_models, np.int64)
        args = (units, norms, cidx, coeffs, rows, ACTIVATION_CODES[activation], emb, float(bias))
        _pf_ode_kernel(x, ts, ax, bx, heun, args)
        return x
    if backend == "numpy":

        def denoise(n: int, pts: np.ndarray, k: int) -> np.ndarray:
            zq = np.concatenate(
                [pts, np.full((pts.shape[0], 1), emb[k]), np.full((pts.shape[0], 1), bias)], axis=1
            )
            m = rows[n]
            cn = centres[min(m, centres.shape[0] - 1)]
            return gram_reference(zq, cn, activation, "ntk") @ coeffs[m]

        return pf_ode_reference(denoise, x, ts, ax, bx, heun)
    raise ValueError(f"backend must be 'numba' or 'numpy', got {backend!r}")
