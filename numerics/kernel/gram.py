"""Infinite-width kernel matrices: NNGP, derivative kernel and NTK (docs/math/kernel.md).

``ntk_gram(z1, z2, activation, kernel)`` evaluates the infinite-width kernels of
:mod:`gtv.theory.ntk` (NNGP ``K``, derivative kernel ``Kdot``, NTK ``Theta = K + (z.z'/d_in) Kdot``)
for inputs built by :func:`gtv.numerics.kernel.inputs.ntk_inputs`. The numba kernel calls the
functions generated from sympy (``numerics/_generated/ntk.py``); ``backend="numpy"`` is an
independent hand-written reference (:func:`gram_reference`). The angle between two inputs is
computed as ``theta = 2 atan2(|u - v|, |u + v|)`` for the unit vectors ``u, v`` (accurate to ~1 ulp
even for nearly parallel inputs, where ``arccos`` of a rounded cosine loses half the digits).

:func:`pair_value` (one kernel value, compiled and inlined) is also the inner loop of the kernel
ensembles' PF-ODE sampler (:mod:`gtv.numerics.kernel.sampler`).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from threadpoolctl import threadpool_limits

from gtv.numerics._generated.ntk import (
    erf_derivative,
    erf_nngp,
    erf_ntk,
    relu_derivative,
    relu_nngp,
    relu_ntk,
)
from gtv.numerics.kernel.checks import check_activation, check_kernel, check_kernel_inputs

__all__ = [
    "ACTIVATION_CODES",
    "KERNEL_CODES",
    "gram_reference",
    "ntk_gram",
    "pair_value",
    "serial_blas",
    "unit_rows",
]

_TWO_PI = 2.0 * math.pi
#: Decorator: single-threaded BLAS for the dense algebra that follows a Gram matrix. Right after
#: a numba parallel region, multi-threaded OpenBLAS oversubscribes the cores (measured: 100x
#: slower on a busy 2-core machine).
serial_blas = threadpool_limits.wrap(limits=1, user_api="blas")

#: Integer codes of the activations and kernels in the compiled code.
ACTIVATION_CODES = {"relu": 0, "erf": 1}
KERNEL_CODES = {"nngp": 0, "derivative": 1, "ntk": 2}


@numba.njit(cache=True, error_model="numpy", inline="always")
def pair_value(act, kind, ui, uj, ni, nj, inv_d):
    """One kernel value for unit rows ``ui, uj`` with norms ``ni, nj`` (``inv_d = 1/d_in``).

    ``theta = 2 atan2(|u - v|, |u + v|)``, ``sin theta = |u - v| |u + v| / 2`` and
    ``cos theta = (|u + v|**2 - |u - v|**2) / 4``: no cancellation for nearly parallel inputs.
    """
    d = ui.shape[0]
    dm = 0.0
    dp = 0.0
    for k in range(d):
        x = ui[k]
        y = uj[k]
        dm += (x - y) * (x - y)
        dp += (x + y) * (x + y)
    r = ni * nj * inv_d
    a = ni * ni * inv_d
    b = nj * nj * inv_d
    c = r * 0.25 * (dp - dm)
    if act == 0:
        th = 2.0 * math.atan2(math.sqrt(dm), math.sqrt(dp))
        st = 0.5 * math.sqrt(dm * dp)
        if kind == 0:
            return relu_nngp(a, b, c, th, st)
        if kind == 1:
            return relu_derivative(a, b, c, th, st)
        return relu_ntk(a, b, c, th, st)
    if kind == 0:
        return erf_nngp(a, b, c, 0.0, 0.0)
    if kind == 1:
        return erf_derivative(a, b, c, 0.0, 0.0)
    return erf_ntk(a, b, c, 0.0, 0.0)


@numba.njit(parallel=True, cache=True, error_model="numpy")
def _gram_numba(u1, u2, n1, n2, act, kind):
    """``out[i, j] = k(z1[i], z2[j])`` from unit rows and norms; parallel over rows (each entry
    computed independently, so the result does not depend on the thread count)."""
    m1, d = u1.shape
    m2 = u2.shape[0]
    inv_d = 1.0 / d
    out = np.empty((m1, m2))
    for i in numba.prange(m1):
        for j in range(m2):
            out[i, j] = pair_value(act, kind, u1[i], u2[j], n1[i], n2[j], inv_d)
    return out


def unit_rows(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit rows ``z / |z|`` (C-contiguous) and the norms ``|z|``."""
    n = np.sqrt(np.sum(z * z, axis=1))
    return np.ascontiguousarray(z / n[:, None]), n


def gram_reference(z1: np.ndarray, z2: np.ndarray, activation: str, kernel: str) -> np.ndarray:
    """Plain-numpy reference of :func:`ntk_gram` (unchecked inputs): the closed forms written
    out by hand, not the generated code."""
    d = z1.shape[1]
    n1 = np.sqrt(np.sum(z1 * z1, axis=1))
    n2 = np.sqrt(np.sum(z2 * z2, axis=1))
    a = (n1**2 / d)[:, None]
    b = (n2**2 / d)[None, :]
    c = z1 @ z2.T / d
    if activation == "relu":
        u = z1 / n1[:, None]
        v = z2 / n2[:, None]
        dm = np.sqrt(np.sum((u[:, None, :] - v[None, :, :]) ** 2, axis=2))
        dp = np.sqrt(np.sum((u[:, None, :] + v[None, :, :]) ** 2, axis=2))
        th = 2.0 * np.arctan2(dm, dp)
        k1 = (np.sqrt(a * b) * np.sin(th) + (np.pi - th) * c) / _TWO_PI
        k0 = (np.pi - th) / _TWO_PI
    else:
        det = (1.0 + 2.0 * a) * (1.0 + 2.0 * b)
        k1 = 2.0 / np.pi * np.arcsin(2.0 * c / np.sqrt(det))
        k0 = 4.0 / np.pi / np.sqrt(det - 4.0 * c * c)
    return {"nngp": k1, "derivative": k0, "ntk": k1 + c * k0}[kernel]


def ntk_gram(
    z1: object,
    z2: object = None,
    activation: str = "relu",
    kernel: str = "ntk",
    *,
    backend: str = "numba",
) -> np.ndarray:
    """Infinite-width kernel matrix ``k(z1_i, z2_j)``.

    Parameters
    ----------
    z1 : array_like, shape (n1, d_in)
        Network inputs (:func:`gtv.numerics.kernel.inputs.ntk_inputs`); no zero rows.
    z2 : array_like, shape (n2, d_in), optional
        Second set (default ``z1``).
    activation : {"relu", "erf"}
    kernel : {"nngp", "derivative", "ntk"}
        ``K = E[sigma(u) sigma(u')]``, ``Kdot = E[sigma'(u) sigma'(u')]`` or
        ``Theta = K + (z.z'/d_in) Kdot``, with ``(u, u')`` the pre-activations of one unit.
    backend : {"numba", "numpy"}
        ``"numpy"`` runs the hand-written reference.

    Returns
    -------
    ndarray, shape (n1, n2)
        For ``z2 = None`` exactly symmetric.
    """
    activation = check_activation(activation)
    kernel = check_kernel(kernel)
    z1 = check_kernel_inputs(z1, "z1")
    same = z2 is None
    z2 = z1 if same else check_kernel_inputs(z2, "z2", dim=z1.shape[1])
    if backend == "numba":
        u1, n1 = unit_rows(z1)
        u2, n2 = (u1, n1) if same else unit_rows(z2)
        out = _gram_numba(u1, u2, n1, n2, ACTIVATION_CODES[activation], KERNEL_CODES[kernel])
    elif backend == "numpy":
        out = gram_reference(z1, z2, activation, kernel)
    else:
        raise ValueError(f"backend must be 'numba' or 'numpy', got {backend!r}")
    if same:
        out = (out + out.T) / 2
    return out
