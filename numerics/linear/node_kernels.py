"""numba kernels of the cavity node sums: spatial blocks per time node (docs/math/finite_fp.md).

:class:`gtv.numerics.linear.cavity.PopulationNodes` sums over nodes grouped by time node ``k``
with the product features ``phi = phi_space (x) phi_time``. Per time node the work is a spatial
block of the ``n_x`` nodes' spatial features, held transposed, ``psT[k]`` (F_s, n_x) (one copy
per node set, :attr:`~gtv.numerics.linear.cavity.PopulationNodes.phi_s_t`), so that every inner
loop runs over contiguous nodes:

* :func:`spatial_grams`: ``S[k] = sum_x a[k, x] psT[k, :, x] psT[k, :, x]^T`` (F_s, F_s);
* :func:`spatial_quadratic`: ``psT[k, :, x]^T B[k] psT[k, :, x]`` at every node.

The transposed layout (2026-12-06, issue 11 item 3) took the spatial Gram blocks at 16 x 16 from
2.2 to 1.4 ms and the quadratic forms from 2.1 to 1.3 ms a call (CPU, 124 800 nodes of the fast
path's rule, load ~5): the earlier kernels transposed each block on every call, which cost more
than the dot products.

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
def spatial_grams(psT, a):
    """``S[k] = sum_x a[k, x] psT[k, :, x] psT[k, :, x]^T`` (n_t, F_s, F_s), symmetric; ``psT``
    (n_t, F_s, n_x) and ``a`` (n_t, n_x) float64. Per time node the scaled rows
    ``a[k] * psT[k, i]``, then one triangle of dot products over ``x``."""
    n_t, fs, n_x = psT.shape
    S = np.empty((n_t, fs, fs))
    yT = np.empty((fs, n_x))
    for k in range(n_t):
        pT = psT[k]
        ak = a[k]
        for i in range(fs):
            for x in range(n_x):
                yT[i, x] = ak[x] * pT[i, x]
        for i in range(fs):
            yi = yT[i]
            for j in range(i + 1):
                pj = pT[j]
                s = 0.0
                for x in range(n_x):
                    s += yi[x] * pj[x]
                S[k, i, j] = s
                S[k, j, i] = s
    return S


@numba.njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def spatial_quadratic(psT, B):
    """``out[k, x] = psT[k, :, x]^T B[k] psT[k, :, x]`` (n_t, n_x) for symmetric ``B[k]``;
    ``psT`` (n_t, F_s, n_x) and ``B`` (n_t, F_s, F_s) float64 (the lower triangle of ``B[k]`` is
    read). Vectorized over nodes: ``out = sum_i p_i u_i``, ``u_i = B_ii p_i + 2 sum_{j<i} B_ij
    p_j``, two rows ``i`` at a time sharing the loads of ``p_j``."""
    n_t, fs, n_x = psT.shape
    out = np.zeros((n_t, n_x))
    u0 = np.empty(n_x)
    u1 = np.empty(n_x)
    for k in range(n_t):
        pT = psT[k]
        Bk = B[k]
        o = out[k]
        i = 0
        while i + 2 <= fs:
            p0 = pT[i]
            p1 = pT[i + 1]
            b00, b11, b01 = Bk[i, i], Bk[i + 1, i + 1], 2.0 * Bk[i + 1, i]
            for x in range(n_x):
                u0[x] = b00 * p0[x]
                u1[x] = b11 * p1[x] + b01 * p0[x]
            for j in range(i):
                c0 = 2.0 * Bk[i, j]
                c1 = 2.0 * Bk[i + 1, j]
                pj = pT[j]
                for x in range(n_x):
                    v = pj[x]
                    u0[x] += c0 * v
                    u1[x] += c1 * v
            for x in range(n_x):
                o[x] += p0[x] * u0[x] + p1[x] * u1[x]
            i += 2
        if i < fs:
            pi = pT[i]
            for x in range(n_x):
                u0[x] = Bk[i, i] * pi[x]
            for j in range(i):
                c0 = 2.0 * Bk[i, j]
                pj = pT[j]
                for x in range(n_x):
                    u0[x] += c0 * pj[x]
            for x in range(n_x):
                o[x] += pi[x] * u0[x]
    return out
