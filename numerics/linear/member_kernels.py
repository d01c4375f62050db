"""numba kernels of the small-occupancy members (:mod:`gtv.numerics.linear.occupancy`).

Two passes, each parallel over members with every member's arithmetic in a fixed order (results
do not depend on the numba thread count); BLAS is called inside the compiled loops, so call them
with one BLAS thread (:func:`gtv.numerics.blas.serial_blas`):

* :func:`member_leverages`: per member its ``P`` feature vectors and leverages
  ``q_j = w_j phi_j^T M^{-1} phi_j / P`` (through the Cholesky factor of ``M^{-1}``, BLAS
  ``dtrmm``: half the operations of ``phi M^{-1}``);
* :func:`member_solves`: ``W_n = A_n (M_L + (1/P) sum_H w_j phi_j phi_j^T)^{-1}`` with
  ``A_n = (A_L + (1/P) sum_H w_j x0_j phi_j) + xi_n``: the heavy Gram by ``dsyrk``, the solve by
  LAPACK Cholesky (:func:`gtv.numerics.blas.cholesky_solve_rows`).

The plain-numpy reference is :func:`gtv.numerics.linear.occupancy.occupancy_members` with
``backend="numpy"`` (tests compare).
"""

from __future__ import annotations

import numba
import numpy as np

from gtv.numerics.blas import cholesky_solve_rows, gram_lower_into, lower_right_multiply_inplace
from gtv.numerics.features import product_features_serial

__all__ = ["member_leverages", "member_solves"]


@numba.njit(parallel=True, cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def member_leverages(kinds, sizes, los, his, z, w, chol_M_inv, P):
    """Features ``phi`` (k, P, F) at the points-and-times ``z`` (k, P, D+1) and leverages
    ``q = w phi^T M^{-1} phi / P = w |phi^T L|^2 / P`` (k, P) for weights ``w`` (k, P), with
    ``L`` the lower Cholesky factor of ``M^{-1}`` held in ``chol_M_inv`` (F, F) (``phi L`` by
    :func:`gtv.numerics.blas.lower_right_multiply_inplace`)."""
    k, n, _ = z.shape
    f = chol_M_inv.shape[0]
    phi = np.empty((k, n, f))
    q = np.empty((k, n))
    for m in numba.prange(k):
        product_features_serial(kinds, sizes, los, his, z[m], phi[m])
        u = phi[m].copy()
        lower_right_multiply_inplace(u, chol_M_inv)
        for j in range(n):
            acc = 0.0
            for i in range(f):
                acc += u[j, i] * u[j, i]
            q[m, j] = w[m, j] * acc / P
    return phi, q


@numba.njit(parallel=True, cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def member_solves(phi, heavy, w, x0, M_light, A_light, xi, P):
    """Weights (k, 1, F) and solve statuses (k,) of :func:`gtv.numerics.linear.model.
    cholesky_solve_rows` (0: solved) for ``k`` members: ``phi`` (k, P, F), ``heavy`` (k, P) bool,
    ``w``/``x0`` (k, P), ``xi`` (k, F), ``M_light`` (1 or k, F, F) and ``A_light`` (1 or k, F)
    (one shared by all members or one each)."""
    k, n, f = phi.shape
    W = np.empty((k, 1, f))
    status = np.zeros(k, dtype=np.int8)
    shared = M_light.shape[0] == 1
    for m in numba.prange(k):
        ml = M_light[0] if shared else M_light[m]
        al = A_light[0] if shared else A_light[m]
        h = 0
        for j in range(n):
            if heavy[m, j]:
                h += 1
        y = np.empty((h, f))
        rhs = np.empty((1, f))
        for i in range(f):
            rhs[0, i] = 0.0
        r = 0
        for j in range(n):
            if heavy[m, j]:
                s = np.sqrt(w[m, j] / P)
                c = w[m, j] * x0[m, j] / P
                for i in range(f):
                    y[r, i] = s * phi[m, j, i]
                    rhs[0, i] += c * phi[m, j, i]
                r += 1
        for i in range(f):
            rhs[0, i] = al[i] + rhs[0, i] + xi[m, i]
        g = np.zeros((f, f))
        if h > 0:
            gram_lower_into(y, g)
        for i in range(f):
            for c2 in range(i + 1):
                g[i, c2] += ml[i, c2]
        work = np.empty(f)
        status[m] = cholesky_solve_rows(g, rhs, W[m], work)
    return W, status
