"""numba kernels of the cavity node sums: spatial blocks per time node (docs/math/finite_fp.md).

:class:`gtv.numerics.linear.nodes.PopulationNodes` sums over nodes grouped by time node ``k``
with the product features ``phi = phi_space (x) phi_time``. Per time node the work is a spatial
block of the spatial features of its *active* nodes (those with a spatial feature above
:data:`~gtv.numerics.linear.nodes.ACTIVE_FEATURE` of the largest), held transposed and
compacted, ``psT[k]`` (F_s, n_c) with ``psT[k, :, r]`` the features of node ``idx[k, r]`` for
``r < count[k]`` (one copy per node set, ``PopulationNodes`` builds it), so that every inner loop
runs over contiguous nodes:

* :func:`spatial_grams`: ``S[k] = sum_r a[k, idx[k, r]] psT[k, :, r] psT[k, :, r]^T`` (F_s, F_s);
* :func:`spatial_quadratic`: ``psT[k, :, r]^T B[k] psT[k, :, r]`` at the active nodes, 0 at the
  others.

The transposed layout (2026-12-06, issue 11 item 3) took the spatial Gram blocks at 16 x 16 from
2.2 to 1.4 ms and the quadratic forms from 2.1 to 1.3 ms a call (CPU, 124 800 nodes of the fast
path's rule, load ~5): the earlier kernels transposed each block on every call, which cost more
than the dot products. Skipping the inactive nodes (at large ``t`` the Gauss-Hermite rule reaches
``|x| ~ 7`` while Gaussian bumps live on ``[-1.5, 1.5]``: half the nodes of the fast path's rule
at 16 x 16 have every spatial feature below 1e-10 of the largest, so every term they add to a
Gram block is below 1e-20 of the largest) halves both again.

Serial loops: the cavity fixed points call them ~60 times, a few milliseconds each, and on a
loaded machine a parallel region per call cost more than it saved (2026-12-06, 2 shared cores,
load ~9; ``prediction_moments`` at 16 x 16 timed in one process per variant, best of 3: 4.9 s
with a first version parallel over time nodes, BLAS per block, 2.0 s with it serial). Each sum
runs in a fixed order; ``reassoc`` lets LLVM vectorize the dot products (the order then depends on
the vector width, not on any thread count). Their plain-numpy references are
:meth:`~gtv.numerics.linear.nodes.PopulationNodes.gram_reference` and
:meth:`~gtv.numerics.linear.nodes.PopulationNodes.quadratic_reference` (tests compare).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["spatial_grams", "spatial_quadratic"]


@numba.njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def spatial_grams(psT, idx, count, a):
    """``S[k] = sum_{r < count[k]} a[k, idx[k, r]] psT[k, :, r] psT[k, :, r]^T`` (n_t, F_s, F_s),
    symmetric; ``psT`` (n_t, F_s, n_c) float64, ``idx`` (n_t, n_c) and ``count`` (n_t,) integer,
    ``a`` (n_t, n_x) float64. Per time node the scaled rows ``a psT[k, i]``, then one triangle of
    dot products over the active nodes."""
    n_t, fs, n_c = psT.shape
    S = np.empty((n_t, fs, fs))
    yT = np.empty((fs, n_c))
    for k in range(n_t):
        pT = psT[k]
        nk = count[k]
        ak = np.empty(nk)
        for r in range(nk):
            ak[r] = a[k, idx[k, r]]
        for i in range(fs):
            for r in range(nk):
                yT[i, r] = ak[r] * pT[i, r]
        for i in range(fs):
            yi = yT[i]
            for j in range(i + 1):
                pj = pT[j]
                s = 0.0
                for r in range(nk):
                    s += yi[r] * pj[r]
                S[k, i, j] = s
                S[k, j, i] = s
    return S


@numba.njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def spatial_quadratic(psT, idx, count, B, n_x):
    """``out[k, idx[k, r]] = psT[k, :, r]^T B[k] psT[k, :, r]`` for ``r < count[k]``, 0 at the
    other nodes (n_t, n_x), for symmetric ``B[k]``; ``psT``/``idx``/``count`` as in
    :func:`spatial_grams`, ``B`` (n_t, F_s, F_s) float64 (its lower triangle is read).
    Vectorized over nodes: ``sum_i p_i u_i``, ``u_i = B_ii p_i + 2 sum_{j<i} B_ij p_j``, two rows
    ``i`` at a time sharing the loads of ``p_j``."""
    n_t, fs, n_c = psT.shape
    out = np.zeros((n_t, n_x))
    u0 = np.empty(n_c)
    u1 = np.empty(n_c)
    o = np.empty(n_c)
    for k in range(n_t):
        pT = psT[k]
        Bk = B[k]
        nk = count[k]
        for r in range(nk):
            o[r] = 0.0
        i = 0
        while i + 2 <= fs:
            p0 = pT[i]
            p1 = pT[i + 1]
            b00, b11, b01 = Bk[i, i], Bk[i + 1, i + 1], 2.0 * Bk[i + 1, i]
            for r in range(nk):
                u0[r] = b00 * p0[r]
                u1[r] = b11 * p1[r] + b01 * p0[r]
            for j in range(i):
                c0 = 2.0 * Bk[i, j]
                c1 = 2.0 * Bk[i + 1, j]
                pj = pT[j]
                for r in range(nk):
                    v = pj[r]
                    u0[r] += c0 * v
                    u1[r] += c1 * v
            for r in range(nk):
                o[r] += p0[r] * u0[r] + p1[r] * u1[r]
            i += 2
        if i < fs:
            pi = pT[i]
            for r in range(nk):
                u0[r] = Bk[i, i] * pi[r]
            for j in range(i):
                c0 = 2.0 * Bk[i, j]
                pj = pT[j]
                for r in range(nk):
                    u0[r] += c0 * pj[r]
            for r in range(nk):
                o[r] += pi[r] * u0[r]
        for r in range(nk):
            out[k, idx[k, r]] = o[r]
    return out
