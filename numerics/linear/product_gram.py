"""Normal equations of two-axis product features through their Kronecker structure.

docs/math/linear.md ("Training"). With one space and one time axis (D = 1) every feature is a
product, ``phi_(i,l)(x, t) = a_i(x) b_l(t)`` (index ``i F_t + l``), so the Gram entries factor:

    ``G[(i,l), (k,m)] = (1/P) sum_j w_j (a_ji a_jk) (b_jl b_jm) = M[(i,k), (l,m)]``,
    ``M = U^T V``,  ``U[j, (i,k)] = (w_j / P) a_ji a_jk``,  ``V[j, (l,m)] = b_jl b_jm``,

with ``(i,k)`` and ``(l,m)`` running over the *unordered* pairs (``M`` is symmetric in each).
One matrix product of ``P x F_s (F_s + 1) / 2`` by ``P x F_t (F_t + 1) / 2`` -- for 16 x 16
features 136 x 136 x P multiply-adds against ``F (F + 1) / 2 x P = 32 896 x P`` for BLAS
``dsyrk`` on the full feature matrix (1.8x fewer), and no ``P x F`` feature matrix at all.
Equal to the ``dsyrk`` route to rounding (tests); :func:`product_normal_equations_reference` is
the plain-numpy version. The kernels are compiled once, not inlined into their callers, so the
stored and the fused training paths run the same machine code (and keep the same bits) whatever
fast-math flags the callers carry.

For the ``P x P`` dual system the kernel factors the same way,
``K[j, j'] = sqrt(w_j w_j') (a_j . a_j') (b_j . b_j')``.
"""

from __future__ import annotations

import numba
import numpy as np

from gtv.numerics.blas import outer_lower_into
from gtv.numerics.features import axis_params, axis_values_fast

__all__ = [
    "pair_count",
    "product_factors",
    "product_normal_equations",
    "product_normal_equations_reference",
    "product_dual_kernel",
]


@numba.njit(cache=True, inline="always")
def pair_count(n):
    """Unordered pairs ``(i, k)``, ``i <= k < n``: ``n (n + 1) / 2``."""
    return n * (n + 1) // 2


@numba.njit(cache=True, inline="always")
def _pair(i, k):
    """Packed index of the pair ``i <= k``."""
    return k * (k + 1) // 2 + i


@numba.njit(cache=True, error_model="numpy")
def product_factors(kinds, sizes, los, his, z, a, b):
    """The axis values of every triple: ``a[j] = a(z[j, 0])`` (F_s), ``b[j] = b(z[j, 1])``."""
    s0, s1, s2 = axis_params(kinds[0], sizes[0], los[0], his[0])
    t0, t1, t2 = axis_params(kinds[1], sizes[1], los[1], his[1])
    for j in range(z.shape[0]):
        axis_values_fast(kinds[0], sizes[0], s0, s1, s2, z[j, 0], a[j])
        axis_values_fast(kinds[1], sizes[1], t0, t1, t2, z[j, 1], b[j])


@numba.njit(cache=True, error_model="numpy")
def product_normal_equations(kinds, sizes, los, his, z, x0, weight, a, b, u, v, m, g, rhs):
    """One model's normal equations (module docstring): the lower triangle of ``g`` (F, F; the
    strict upper triangle left as it was) and ``rhs`` (D, F), both with the factor ``1/P``.

    Work buffers: ``a`` (P, F_s), ``b`` (P, F_t), ``u`` (P, pairs_s), ``v`` (P, pairs_t), ``m``
    (pairs_s, pairs_t). One BLAS thread inside a parallel loop.
    """
    n, fs, ft = z.shape[0], sizes[0], sizes[1]
    inv_p = 1.0 / n
    product_factors(kinds, sizes, los, his, z, a, b)
    for c in range(x0.shape[1]):
        r = rhs[c]
        r[:] = 0.0
        for j in range(n):
            s = weight[j] * x0[j, c] * inv_p
            for i in range(fs):
                sa = s * a[j, i]
                for q in range(ft):
                    r[i * ft + q] += sa * b[j, q]
    for j in range(n):
        s = weight[j] * inv_p
        for k in range(fs):
            sk = s * a[j, k]
            for i in range(k + 1):
                u[j, _pair(i, k)] = sk * a[j, i]
        for mm in range(ft):
            for q in range(mm + 1):
                v[j, _pair(q, mm)] = b[j, q] * b[j, mm]
    np.dot(u.T, v, m)
    for i in range(fs):
        for k in range(i + 1):
            pik = _pair(k, i)
            for q in range(ft):
                row = i * ft + q
                for mm in range(ft if i > k else q + 1):
                    g[row, k * ft + mm] = m[pik, _pair(min(q, mm), max(q, mm))]


@numba.njit(cache=True, error_model="numpy")
def product_dual_kernel(a, b, sw, ka, kb, k):
    """Lower triangle of ``K[j, j'] = sw_j sw_j' (a_j . a_j') (b_j . b_j')`` (P, P) from the axis
    values ``a`` (P, F_s), ``b`` (P, F_t) and ``sw = sqrt(w)``; ``ka``, ``kb`` (P, P) work."""
    outer_lower_into(a, ka)
    outer_lower_into(b, kb)
    for j in range(k.shape[0]):
        for jj in range(j + 1):
            k[j, jj] = sw[j] * sw[jj] * ka[j, jj] * kb[j, jj]


def product_normal_equations_reference(
    a: np.ndarray, b: np.ndarray, x0: np.ndarray, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Plain numpy: ``G`` (F, F) and ``rhs`` (D, F) from the full feature matrix
    ``phi_(i,l) = a_i b_l`` of axis values ``a`` (P, F_s), ``b`` (P, F_t)."""
    P = a.shape[0]
    phi = (a[:, :, None] * b[:, None, :]).reshape(P, -1)
    w = weight / P
    return (phi * w[:, None]).T @ phi, (x0 * w[:, None]).T @ phi
