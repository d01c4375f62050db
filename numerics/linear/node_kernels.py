"""numba kernels of the cavity node sums: spatial blocks per time node (docs/math/finite_fp.md).

:class:`gtv.numerics.linear.cavity.PopulationNodes` sums over nodes grouped by time node ``k``
with the product features ``phi = phi_space (x) phi_time``. Per time node the work is a spatial
block of the ``n_x`` nodes' spatial features ``ps[k]`` (n_x, F_s):

* :func:`spatial_grams`: ``S[k] = sum_x a[k, x] ps[k, x] ps[k, x]^T`` (F_s, F_s);
* :func:`spatial_quadratic`: ``ps[k, x]^T B[k] ps[k, x]`` at every node.

Both run in parallel over time nodes, each time node's block with BLAS inside the compiled loop
(``dsyrk`` / ``dgemm``, one BLAS thread: call them with :func:`gtv.numerics.blas.serial_blas`)
and its own fixed summation order, so results do not depend on the numba thread count. Their
plain-numpy references are :meth:`~gtv.numerics.linear.cavity.PopulationNodes.gram_reference`
and :meth:`~gtv.numerics.linear.cavity.PopulationNodes.quadratic_reference` (tests compare).
"""

from __future__ import annotations

import numba
import numpy as np

from gtv.numerics.blas import gram_lower_into

__all__ = ["spatial_grams", "spatial_quadratic"]


@numba.njit(parallel=True, cache=True, error_model="numpy")
def spatial_grams(ps, a):
    """``S[k] = sum_x a[k, x] ps[k, x] ps[k, x]^T`` (n_t, F_s, F_s), symmetric.

    ``ps`` (n_t, n_x, F_s) and ``a`` (n_t, n_x) C-contiguous float64. Where all ``a[k] >= 0``
    the rows are scaled by ``sqrt(a)`` and BLAS ``dsyrk`` forms one triangle (half the
    operations); otherwise ``ps[k]^T (a ps[k])`` by ``dgemm``. Nodes with ``a = 0`` add nothing.
    """
    n_t, n_x, fs = ps.shape
    S = np.zeros((n_t, fs, fs))
    for k in numba.prange(n_t):
        y = np.empty((n_x, fs))
        signed = False
        for x in range(n_x):
            signed = signed or a[k, x] < 0.0
        if signed:
            for x in range(n_x):
                c = a[k, x]
                for i in range(fs):
                    y[x, i] = c * ps[k, x, i]
            S[k] = ps[k].T @ y
            continue
        for x in range(n_x):
            c = np.sqrt(a[k, x])
            for i in range(fs):
                y[x, i] = c * ps[k, x, i]
        Sk = S[k]
        gram_lower_into(y, Sk)
        for i in range(fs):
            for j in range(i):
                Sk[j, i] = Sk[i, j]
    return S


@numba.njit(parallel=True, cache=True, error_model="numpy")
def spatial_quadratic(ps, B):
    """``out[k, x] = ps[k, x]^T B[k] ps[k, x]`` (n_t, n_x): ``ps[k] B[k]`` by BLAS ``dgemm``,
    then the row-wise dot products. ``ps`` (n_t, n_x, F_s) and ``B`` (n_t, F_s, F_s)
    C-contiguous float64."""
    n_t, n_x, fs = ps.shape
    out = np.empty((n_t, n_x))
    for k in numba.prange(n_t):
        y = ps[k] @ B[k]
        for x in range(n_x):
            acc = 0.0
            for i in range(fs):
                acc += y[x, i] * ps[k, x, i]
            out[k, x] = acc
    return out
