"""numba kernels of the cavity covariance solver's vector updates (conjugate gradients).

:func:`gtv.numerics.linear.cavity._covariance_cg` updates five ``F x F`` matrices a step (the
iterate, the residual and its ``M``-transform, the search direction and its ``M``-transform)
and takes three reductions of them. In numpy that is ~25 passes over ``F**2`` doubles with their
temporaries (~0.5 ms a step at F = 256); these kernels do it in three passes, in place:

* :func:`cg_curvature`: ``sum(p * (pt - Kp))``;
* :func:`cg_update`: ``x += alpha p``, ``r -= alpha (p - Lp)``, ``rt -= alpha (pt - Kp)``,
  returning ``sum(r * rt)``, ``max|r|`` and ``max|x + r|`` of the updated matrices;
* :func:`cg_direction`: ``p = r + beta p``, ``pt = rt + beta pt``.

Serial loops in a fixed order (``reassoc`` lets LLVM vectorize the sums: the order depends on the
vector width, not on any thread count). Plain-numpy references: :func:`cg_curvature_reference`,
:func:`cg_update_reference`, :func:`cg_direction_reference` (tests compare).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = [
    "cg_curvature",
    "cg_curvature_reference",
    "cg_direction",
    "cg_direction_reference",
    "cg_update",
    "cg_update_reference",
]


@numba.njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def cg_curvature(p: np.ndarray, pt: np.ndarray, Kp: np.ndarray) -> float:
    """``sum(p * (pt - Kp))`` for float64 arrays of one shape (n, m)."""
    s = 0.0
    for i in range(p.shape[0]):
        for j in range(p.shape[1]):
            s += p[i, j] * (pt[i, j] - Kp[i, j])
    return s


def cg_curvature_reference(p: np.ndarray, pt: np.ndarray, Kp: np.ndarray) -> float:
    """Plain-numpy :func:`cg_curvature`."""
    return float(np.sum(p * (pt - Kp)))


@numba.njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def cg_update(
    x: np.ndarray, r: np.ndarray, rt: np.ndarray, p: np.ndarray, pt: np.ndarray,
    Lp: np.ndarray, Kp: np.ndarray, alpha: float,
) -> tuple[float, float, float]:  # fmt: skip
    """In place ``x += alpha p``, ``r -= alpha (p - Lp)``, ``rt -= alpha (pt - Kp)`` (float64
    arrays of one shape (n, m)); returns ``sum(r * rt)``, ``max|r|`` and ``max|x + r|`` after the
    update."""
    rr = 0.0
    r_max = 0.0
    xr_max = 0.0
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            xi = x[i, j] + alpha * p[i, j]
            ri = r[i, j] - alpha * (p[i, j] - Lp[i, j])
            rti = rt[i, j] - alpha * (pt[i, j] - Kp[i, j])
            x[i, j], r[i, j], rt[i, j] = xi, ri, rti
            rr += ri * rti
            r_max = max(r_max, abs(ri))
            xr_max = max(xr_max, abs(xi + ri))
    return rr, r_max, xr_max


def cg_update_reference(
    x: np.ndarray, r: np.ndarray, rt: np.ndarray, p: np.ndarray, pt: np.ndarray,
    Lp: np.ndarray, Kp: np.ndarray, alpha: float,
) -> tuple[float, float, float]:  # fmt: skip
    """Plain-numpy :func:`cg_update` (in place as well)."""
    x += alpha * p
    r -= alpha * (p - Lp)
    rt -= alpha * (pt - Kp)
    return float(np.sum(r * rt)), float(np.max(np.abs(r))), float(np.max(np.abs(x + r)))


@numba.njit(cache=True, error_model="numpy", fastmath={"contract"})
def cg_direction(p: np.ndarray, pt: np.ndarray, r: np.ndarray, rt: np.ndarray, beta: float) -> None:
    """In place ``p = r + beta p``, ``pt = rt + beta pt`` (float64 arrays of one shape (n, m))."""
    for i in range(p.shape[0]):
        for j in range(p.shape[1]):
            p[i, j] = r[i, j] + beta * p[i, j]
            pt[i, j] = rt[i, j] + beta * pt[i, j]


def cg_direction_reference(
    p: np.ndarray, pt: np.ndarray, r: np.ndarray, rt: np.ndarray, beta: float
) -> None:
    """Plain-numpy :func:`cg_direction` (in place as well)."""
    p *= beta
    p += r
    pt *= beta
    pt += rt
