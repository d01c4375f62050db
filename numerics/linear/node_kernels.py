"""numba kernels of the cavity node sums: spatial blocks per time node (docs/math/finite_fp.md).

:class:`gtv.numerics.linear.cavity.PopulationNodes` sums over nodes grouped by time node ``k``
with the product features ``phi = phi_space (x) phi_time``. Per time node the work is a spatial
block of the ``n_x`` nodes' spatial features ``ps[k]`` (n_x, F_s):

* :func:`spatial_grams`: ``S[k] = sum_x a[k, x] ps[k, x] ps[k, x]^T`` (F_s, F_s);
* :func:`spatial_quadratic`: ``ps[k, x]^T B[k] ps[k, x]`` at every node.

Serial loops: the cavity fixed points call them ~60 times, a few milliseconds each, and on a
loaded machine a parallel region per call cost more than it saved (2026-12-06, 2 shared cores,
load ~9; ``prediction_moments`` at 16 x 16 timed in one process per variant, best of 3: 4.9 s
with a first version parallel over time nodes, BLAS per block, 2.0 s with it serial). Each sum
runs in a fixed order; ``reassoc`` lets LLVM vectorize the dot products (the order then depends on
the vector width, not on any thread count). Their plain-numpy references are
:meth:`~gtv.numerics.linear.cavity.PopulationNodes.gram_reference` and
:meth:`~gtv.numerics.linear.cavity.PopulationNodes.quadratic_reference` (tests compare).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["spatial_grams", "spatial_quadratic"]


@numba.njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def spatial_grams(ps, a):
    """``S[k] = sum_x a[k, x] ps[k, x] ps[k, x]^T`` (n_t, F_s, F_s), symmetric; ``ps``
    (n_t, n_x, F_s) and ``a`` (n_t, n_x) float64. Per time node one triangle of dot products
    over ``x`` (on transposed copies of the block, so the ``x`` loop is contiguous)."""
    n_t, n_x, fs = ps.shape
    S = np.empty((n_t, fs, fs))
    pT = np.empty((fs, n_x))
    yT = np.empty((fs, n_x))
    for k in range(n_t):
        for x in range(n_x):
            ax = a[k, x]
            for i in range(fs):
                v = ps[k, x, i]
                pT[i, x] = v
                yT[i, x] = ax * v
        for i in range(fs):
            for j in range(i + 1):
                s = 0.0
                for x in range(n_x):
                    s += yT[i, x] * pT[j, x]
                S[k, i, j] = s
                S[k, j, i] = s
    return S


@numba.njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def spatial_quadratic(ps, B):
    """``out[k, x] = ps[k, x]^T B[k] ps[k, x]`` (n_t, n_x); ``ps`` (n_t, n_x, F_s) and ``B``
    (n_t, F_s, F_s) float64. Four nodes at a time share each row of ``B[k]``."""
    n_t, n_x, fs = ps.shape
    out = np.empty((n_t, n_x))
    for k in range(n_t):
        Bk = B[k]
        x = 0
        while x + 4 <= n_x:
            p0, p1, p2, p3 = ps[k, x], ps[k, x + 1], ps[k, x + 2], ps[k, x + 3]
            a0 = a1 = a2 = a3 = 0.0
            for i in range(fs):
                s0 = s1 = s2 = s3 = 0.0
                for j in range(fs):
                    b = Bk[i, j]
                    s0 += b * p0[j]
                    s1 += b * p1[j]
                    s2 += b * p2[j]
                    s3 += b * p3[j]
                a0 += p0[i] * s0
                a1 += p1[i] * s1
                a2 += p2[i] * s2
                a3 += p3[i] * s3
            out[k, x], out[k, x + 1], out[k, x + 2], out[k, x + 3] = a0, a1, a2, a3
            x += 4
        for r in range(x, n_x):
            p = ps[k, r]
            acc = 0.0
            for i in range(fs):
                s = 0.0
                for j in range(fs):
                    s += Bk[i, j] * p[j]
                acc += p[i] * s
            out[k, r] = acc
    return out
