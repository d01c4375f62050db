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

With one ``M_L`` for all members (the unconditioned field) :func:`member_weights_shared` does
both in one pass per member (no ``(k, P, F)`` feature array between them), screens the
leverages by a bound (only triples that may be heavy enter the product with the factor of
``M^{-1}``) and solves through the Woodbury identity with a factor of ``M_L^{-1}`` made once; for
the consistent field it first closes each member's heavy set under its own leverage
(:func:`_close_and_solve`, or :func:`_close_direct` for a member whose solve is direct anyway;
numpy reference :func:`gtv.numerics.linear.occupancy.close_heavy_sets`). Triples kept exact by
time (``t_exact``) skip the leverage product.

The plain-numpy reference is :func:`gtv.numerics.linear.occupancy.occupancy_members` with
``backend="numpy"`` (tests compare).
"""

from __future__ import annotations

import numba
import numpy as np

from gtv.numerics.blas import (
    cholesky_factor_checked,
    cholesky_solve_rows,
    factored_solve_rows,
    gram_lower_into,
    lower_right_multiply_inplace,
    outer_lower_into,
)
from gtv.numerics.features import product_features_serial

__all__ = ["member_leverages", "member_solves", "member_weights_ladder", "member_weights_shared"]


@numba.njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _member_leverages_one(
    kinds, sizes, los, his, zm, wm, chol_M_inv, P, lam_max, q_star, phi, q, t_exact=0.0
):  # fmt: skip
    """One member of :func:`member_leverages`: ``phi`` (P, F) and ``q`` (P,) filled in place.
    Triples with ``t < t_exact`` (the last column of ``zm``) are heavy whatever their leverage:
    their ``q`` is set to ``inf`` without the product with ``chol_M_inv``."""
    n, d1 = zm.shape
    f = chol_M_inv.shape[0]
    product_features_serial(kinds, sizes, los, his, zm, phi)
    keep = np.empty(n, dtype=np.intp)
    h = 0
    for j in range(n):
        if zm[j, d1 - 1] < t_exact:
            q[j] = np.inf
            continue
        nrm = 0.0
        for i in range(f):
            nrm += phi[j, i] * phi[j, i]
        bound = wm[j] * nrm * lam_max / P
        if bound <= q_star:
            q[j] = bound
        else:
            keep[h] = j
            h += 1
    if h == 0:
        return
    u = np.empty((h, f))
    for r in range(h):
        for i in range(f):
            u[r, i] = phi[keep[r], i]
    lower_right_multiply_inplace(u, chol_M_inv)
    for r in range(h):
        acc = 0.0
        for i in range(f):
            acc += u[r, i] * u[r, i]
        q[keep[r]] = wm[keep[r]] * acc / P


@numba.njit(parallel=True, cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def member_leverages(kinds, sizes, los, his, z, w, chol_M_inv, P, lam_max=np.inf, q_star=-1.0):
    """Features ``phi`` (k, P, F) at the points-and-times ``z`` (k, P, D+1) and leverages
    ``q = w phi^T M^{-1} phi / P = w |phi^T L|^2 / P`` (k, P) for weights ``w`` (k, P), with
    ``L`` the lower Cholesky factor of ``M^{-1}`` held in ``chol_M_inv`` (F, F) (``phi L`` by
    :func:`gtv.numerics.blas.lower_right_multiply_inplace`).

    Screening: with ``lam_max`` at least the largest eigenvalue of ``M^{-1}``, a triple whose
    bound ``b = w |phi|^2 lam_max / P`` (``>= q``) is at most ``q_star`` is light whatever its
    leverage; its ``q`` is then returned as ``b`` (not computed; at most ``q_star``), so only the
    other triples enter the product with ``L``. ``q > q_star`` is the same either way (pass
    ``lam_max`` with a relative margin above rounding). The defaults compute every leverage."""
    k, n, _ = z.shape
    f = chol_M_inv.shape[0]
    phi = np.empty((k, n, f))
    q = np.empty((k, n))
    for m in numba.prange(k):
        _member_leverages_one(
            kinds, sizes, los, his, z[m], w[m], chol_M_inv, P, lam_max, q_star, phi[m], q[m]
        )
    return phi, q


@numba.njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _heavy_rows(phi, heavy, wm, x0m, A_light, xim, P):
    """One member's heavy rows ``y_j = sqrt(w_j / P) phi_j`` (h, F) and its right-hand side
    ``A_light + (1/P) sum_H w_j x0_j phi_j + xi`` (1, F) from ``phi`` (P, F) and ``heavy`` (P,)."""
    n, f = phi.shape
    h = 0
    for j in range(n):
        if heavy[j]:
            h += 1
    y = np.empty((h, f))
    a = np.empty((1, f))
    for i in range(f):
        a[0, i] = 0.0
    r = 0
    for j in range(n):
        if heavy[j]:
            s = np.sqrt(wm[j] / P)
            c = wm[j] * x0m[j] / P
            for i in range(f):
                y[r, i] = s * phi[j, i]
                a[0, i] += c * phi[j, i]
            r += 1
    for i in range(f):
        a[0, i] = A_light[i] + a[0, i] + xim[i]
    return y, a


@numba.njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _heavy_rhs(phi, heavy, wm, x0m, A_light, xim, P):
    """The right-hand side of :func:`_heavy_rows` alone (1, F), in the same order."""
    n, f = phi.shape
    a = np.empty((1, f))
    for i in range(f):
        a[0, i] = 0.0
    for j in range(n):
        if heavy[j]:
            c = wm[j] * x0m[j] / P
            for i in range(f):
                a[0, i] += c * phi[j, i]
    for i in range(f):
        a[0, i] = A_light[i] + a[0, i] + xim[i]
    return a


@numba.njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _direct_solve(y, a, M_light, out):
    """``out = a (M_light + y^T y)^{-1}`` (1, F) by LAPACK Cholesky (the heavy Gram by
    ``dsyrk``); returns the status of :func:`gtv.numerics.blas.cholesky_solve_rows`."""
    f = M_light.shape[0]
    g = np.zeros((f, f))
    if y.shape[0] > 0:
        gram_lower_into(y, g)
    for i in range(f):
        for c2 in range(i + 1):
            g[i, c2] += M_light[i, c2]
    work = np.empty(f)
    return cholesky_solve_rows(g, a, out, work)


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
        y, rhs = _heavy_rows(phi[m], heavy[m], w[m], x0[m], al, xi[m], P)
        status[m] = _direct_solve(y, rhs, ml, W[m])
    return W, status


@numba.njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _member_solve_shared(phi, heavy, wm, x0m, M_light, L, A_light, xim, P, out):
    """One member of :func:`member_weights_shared` from its features ``phi`` (P, F) and heavy
    flags (P,): ``out`` (1, F) filled, returns the solve status. ``h <= F / 2`` heavy triples
    (rows ``y_j = sqrt(w_j / P) phi_j`` of ``Y``): the Woodbury identity with ``L L^T =
    M_light^{-1}`` (:func:`_woodbury_solve`, ``Z = Y L`` by BLAS ``dtrmm``, ``Z Z^T`` by
    ``dsyrk``; about half the operations of the ``F x F`` solve at ``h ~ F / 3``). More heavy
    triples: the direct Cholesky solve of :func:`member_solves`."""
    f = phi.shape[1]
    y, a = _heavy_rows(phi, heavy, wm, x0m, A_light, xim, P)
    h = y.shape[0]
    if 2 * h > f:  # the direct solve
        return _direct_solve(y, a, M_light, out)
    g = np.zeros((h, h))
    if h > 0:
        lower_right_multiply_inplace(y, L)  # Z = Y L
        outer_lower_into(y, g)  # lower triangle of Z Z^T
        for r in range(h):
            g[r, r] += 1.0
    return _woodbury_solve(a, y, g, L, out)


@numba.njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _woodbury_solve(a, z, g, L, out):
    """``out = a (M_L + Y^T Y)^{-1}`` (1, F) from ``Z = Y L`` (h, F) and the lower triangle of
    ``I_h + Z Z^T`` in ``g`` (h, h; overwritten by its Cholesky factor), ``L L^T = M_L^{-1}``:

        ``(M_L + Y^T Y)^{-1} = L (I - Z^T (I_h + Z Z^T)^{-1} Z) L^T``,

    so ``W = (b - (b Z^T) (I_h + Z Z^T)^{-1} Z) L^T`` with ``b = a L`` (``I_h + Z Z^T >= I`` is
    well conditioned). Returns the status of :func:`gtv.numerics.blas.cholesky_solve_rows`
    (0 when ``h = 0``)."""
    f = L.shape[0]
    h = z.shape[0]
    status = 0
    b = np.zeros(f)  # b = a L
    for i in range(f):
        ai = a[0, i]
        for j in range(i + 1):
            b[j] += ai * L[i, j]
    if h > 0:
        cz = np.empty((1, h))
        for q in range(h):
            acc = 0.0
            for i in range(f):
                acc += b[i] * z[q, i]
            cz[0, q] = acc
        sz = np.empty((1, h))
        work = np.empty(h)
        status = cholesky_solve_rows(g, cz, sz, work)
        for q in range(h):
            sq = sz[0, q]
            for i in range(f):
                b[i] -= sq * z[q, i]
    for i in range(f):  # W = b L^T
        acc = 0.0
        for j in range(i + 1):
            acc += L[i, j] * b[j]
        out[0, i] = acc
    return status


@numba.njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _close_and_solve(phi, heavy, wm, x0m, M_light, L, A_light, xim, light_bound, q_star, P, out):
    """One member of the consistent field: its heavy flags (P,) closed in place under its own
    leverage (:func:`gtv.numerics.linear.occupancy.close_heavy_sets`), then ``out`` (1, F) solved
    as in :func:`_member_solve_shared`; returns the solve status, or 4 if a capacitance matrix of
    the closure could not be factorized.

    In the coordinates ``u = phi L`` (``L L^T = M_light^{-1}``) a triple's leverage against
    ``M_L + Y^T Y`` (rows ``y_j = sqrt(w_j / P) phi_j`` of the heavy triples, ``Z = Y L``) is
    ``(w / P) (|u|^2 - v^T (I_h + Z Z^T)^{-1} v)``, ``v = Z u``. Candidates: light triples whose
    leverage against ``M_L`` alone exceeds ``q_star`` (screened first by the bound
    ``w |phi|^2 light_bound / P``); adding heavy triples only lowers leverages. ``Z`` and the
    lower triangle of ``I_h + Z Z^T`` are made once and grown by the rows ``sqrt(w / P) u`` of
    the triples made heavy (their ``u`` is at hand); the final Woodbury solve reuses both
    (:func:`_woodbury_solve`; the rows in the order heavy by the population leverage, then
    made heavy, which changes the solve by round-off only)."""
    n, f = phi.shape
    cand = np.empty(n, dtype=np.intp)
    c = 0
    for j in range(n):
        if not heavy[j]:
            nrm = 0.0
            for i in range(f):
                nrm += phi[j, i] * phi[j, i]
            if wm[j] * nrm * light_bound / P > q_star:
                cand[c] = j
                c += 1
    u = np.empty((c, f))
    for r in range(c):
        for i in range(f):
            u[r, i] = phi[cand[r], i]
    if c > 0:
        lower_right_multiply_inplace(u, L)
    base = np.empty(c)
    alive = np.zeros(c, dtype=np.bool_)
    left = 0
    for r in range(c):
        acc = 0.0
        for i in range(f):
            acc += u[r, i] * u[r, i]
        base[r] = wm[cand[r]] * acc / P
        if base[r] > q_star:
            alive[r] = True
            left += 1
    if left == 0:  # nothing to close
        return _member_solve_shared(phi, heavy, wm, x0m, M_light, L, A_light, xim, P, out)
    h = 0
    for j in range(n):
        if heavy[j]:
            h += 1
    if 2 * h > f:  # the solve will be direct: close with the factor of M_L + Y^T Y itself
        return _close_direct(
            phi, heavy, wm, x0m, M_light, A_light, xim, cand, alive, q_star, P, out
        )
    z = np.empty((h, f))
    r2 = 0
    for j in range(n):
        if heavy[j]:
            s = np.sqrt(wm[j] / P)
            for i in range(f):
                z[r2, i] = s * phi[j, i]
            r2 += 1
    g = np.zeros((h, h))
    if h > 0:
        lower_right_multiply_inplace(z, L)  # Z = Y L
        outer_lower_into(z, g)
        for a in range(h):
            g[a, a] += 1.0
    while left > 0:  # every round makes at least one candidate heavy or ends
        new = 0
        made = np.empty(left, dtype=np.intp)
        if h > 0:
            v = np.empty((left, h))
            rows = np.empty(left, dtype=np.intp)
            t = 0
            for r in range(c):
                if alive[r]:
                    rows[t] = r
                    for a in range(h):
                        acc = 0.0
                        for i in range(f):
                            acc += z[a, i] * u[r, i]
                        v[t, a] = acc
                    t += 1
            sv = np.empty((left, h))
            work = np.empty(h)
            gw = g.copy()
            if cholesky_solve_rows(gw, v, sv, work) != 0:
                return 4
            for t in range(left):
                acc = 0.0
                for a in range(h):
                    acc += v[t, a] * sv[t, a]
                r = rows[t]
                if base[r] - wm[cand[r]] * acc / P > q_star:
                    made[new] = r
                    new += 1
        else:
            for r in range(c):
                if alive[r]:
                    made[new] = r
                    new += 1
        if new == 0:
            break
        # grow Z by the rows sqrt(w / P) u of the new heavy triples, and I + Z Z^T with them
        h2 = h + new
        z2 = np.empty((h2, f))
        z2[:h] = z
        g2 = np.zeros((h2, h2))
        for a in range(h):
            for b2 in range(a + 1):
                g2[a, b2] = g[a, b2]
        for e in range(new):
            r = made[e]
            heavy[cand[r]] = True
            alive[r] = False
            s = np.sqrt(wm[cand[r]] / P)
            for i in range(f):
                z2[h + e, i] = s * u[r, i]
        for e in range(new):
            a = h + e
            for b2 in range(a + 1):
                acc = 0.0
                for i in range(f):
                    acc += z2[a, i] * z2[b2, i]
                g2[a, b2] = acc
            g2[a, a] += 1.0
        z, g, h = z2, g2, h2
        left -= new
    if 2 * h > f:  # the direct solve
        y, a_rhs = _heavy_rows(phi, heavy, wm, x0m, A_light, xim, P)
        return _direct_solve(y, a_rhs, M_light, out)
    return _woodbury_solve(_heavy_rhs(phi, heavy, wm, x0m, A_light, xim, P), z, g, L, out)


@numba.njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _close_direct(phi, heavy, wm, x0m, M_light, A_light, xim, cand, alive, q_star, P, out):
    """:func:`_close_and_solve` when the member already has ``h > F / 2`` heavy triples, so that
    its solve is direct: each round factors ``M = M_L + Y^T Y`` (the heavy Gram by ``dsyrk``,
    LAPACK Cholesky) and takes the leverage of each remaining candidate as
    ``(w / P) |L_M^{-1} phi|^2`` (one forward substitution); the last round's factor is the
    solve's (the same Gram and factor as :func:`_direct_solve`). Cheaper than growing ``Z`` and
    ``I_h + Z Z^T`` (``h^2 F`` operations) when ``h`` is large."""
    f = phi.shape[1]
    s = np.empty(f)
    made = np.empty(alive.size, dtype=np.intp)  # cand[:alive.size] are the candidates
    while True:
        y, a = _heavy_rows(phi, heavy, wm, x0m, A_light, xim, P)
        g = np.zeros((f, f))
        gram_lower_into(y, g)
        for i in range(f):
            for c2 in range(i + 1):
                g[i, c2] += M_light[i, c2]
        status = cholesky_factor_checked(g)
        if status != 0:
            return status
        new = 0
        for r in range(alive.size):
            if not alive[r]:
                continue
            j = cand[r]
            acc = 0.0
            for i in range(f):  # L_M s = phi_j
                v = phi[j, i]
                for k in range(i):
                    v -= g[i, k] * s[k]
                s[i] = v / g[i, i]
                acc += s[i] * s[i]
            if wm[j] * acc / P > q_star:
                made[new] = r
                new += 1
        if new == 0:
            break
        for e in range(new):  # the new heavy triples join for the next round
            alive[made[e]] = False
            heavy[cand[made[e]]] = True
    return factored_solve_rows(g, a, out, s)


def member_weights_shared(
    kinds, sizes, los, his, z, w, x0, chol_M_inv, P, lam_max, q_star, M_light, chol_light_inv,
    A_light, xi, light_bound=-1.0, t_exact=0.0,
):  # fmt: skip
    """Weights (k, 1, F) and solve statuses (k,) of ``k`` members sharing one ``M_light`` (F, F),
    in one pass per member (no (k, P, F) feature array): its features and screened leverages as
    :func:`member_leverages` (``lam_max``, ``q_star``), heavy = ``q > q_star``, then the solve of
    :func:`member_solves` through :func:`_member_solve_shared` with ``chol_light_inv`` the lower
    Cholesky factor of ``M_light^{-1}``. ``z`` (k, P, D+1), ``w``/``x0`` (k, P), ``A_light``
    (F,), ``xi`` (k, F). With ``light_bound > 0`` (an upper bound of the largest eigenvalue of
    ``M_light^{-1}``) each member's heavy set is first closed under its own leverage
    (:func:`_close_and_solve`; status 4 if that fails). Triples with ``t < t_exact`` (the last
    column of ``z``) are heavy whatever their leverage. :func:`member_weights_ladder` with one
    split."""
    W, status = member_weights_ladder(
        kinds, sizes, los, his, z, w, x0, chol_M_inv, P, lam_max, q_star, M_light[None],
        chol_light_inv[None], A_light[None], xi[None], np.array([float(light_bound)]),
        np.array([float(t_exact)]),
    )  # fmt: skip
    return W[0], status[0]


@numba.njit(parallel=True, cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def member_weights_ladder(
    kinds, sizes, los, his, z, w, x0, chol_M_inv, P, lam_max, q_star, M_lights, chol_light_invs,
    A_lights, xis, light_bounds, t_exacts,
):  # fmt: skip
    """:func:`member_weights_shared` for ``R`` splits at once (a ladder of ``t_exact``): weights
    (R, k, 1, F) and statuses (R, k). Each member's features and population leverages are made
    once (screened as there, the triples below the smallest ``t_exacts`` skipped) and serve
    every split ``r`` (``M_lights[r]``, ``chol_light_invs[r]``, ``A_lights[r]``, ``xis[r]`` (k, F),
    ``light_bounds[r]``, ``t_exacts[r]``); each split's weights do not depend on the other splits
    (:func:`member_weights_shared` is this with one split)."""
    k, n, d1 = z.shape
    f = chol_M_inv.shape[0]
    R = t_exacts.shape[0]
    W = np.empty((R, k, 1, f))
    status = np.zeros((R, k), dtype=np.int8)
    t_min = np.inf
    for r in range(R):
        t_min = min(t_min, t_exacts[r])
    for m in numba.prange(k):
        phi = np.empty((n, f))
        q = np.empty(n)
        _member_leverages_one(
            kinds, sizes, los, his, z[m], w[m], chol_M_inv, P, lam_max, q_star, phi, q, t_min
        )
        for r in range(R):
            heavy = q > q_star
            for j in range(n):
                if z[m, j, d1 - 1] < t_exacts[r]:
                    heavy[j] = True
            if light_bounds[r] > 0.0:
                status[r, m] = _close_and_solve(
                    phi, heavy, w[m], x0[m], M_lights[r], chol_light_invs[r], A_lights[r],
                    xis[r, m], light_bounds[r], q_star, P, W[r, m],
                )  # fmt: skip
            else:
                status[r, m] = _member_solve_shared(
                    phi, heavy, w[m], x0[m], M_lights[r], chol_light_invs[r], A_lights[r],
                    xis[r, m], P, W[r, m],
                )  # fmt: skip
    return W, status
