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
  others;
* :func:`active_nodes`: the layout itself (one pass over the features for their largest
  magnitudes, one to copy the active ones in ``x`` order, one for the node spans of the tiles;
  numpy reference :meth:`~gtv.numerics.linear.nodes.PopulationNodes.active_layout_reference`).

Both run over 4 x 4 tiles of the spatial index pairs (2026-12-06, issue 11 item 3: each loaded
feature serves four products instead of one; at 16 x 16, 62 618 active nodes of the fast path's
rule, the Gram blocks took 0.31 ms a call instead of 0.62-0.67 and the quadratic forms 0.29 ms
instead of 0.62-0.65, CPU, best of 30, load 1-2; the sums move by round-off, 3e-16 / 1e-15
relative to the numpy references).

Each 4 x 4 tile of feature groups ``(g, h)`` is summed over its own span of the nodes (sorted by
``x``), those where some product of a group-``g`` and a group-``h`` feature exceeds
``ACTIVE_FEATURE**2`` of the largest squared feature (the bound of the terms of the inactive
nodes, which both kernels skip): a spatial basis of localized bumps has few nodes where distant
bumps overlap (2026-12-06: at 16 x 16 Gaussian features, eps = 0.01, 37 % of the tile-node pairs
of the fast path's rule lie in the spans, 76 % at 8 x 8; the Gram blocks took 0.18 ms a call
instead of 0.33 and the quadratic forms 0.17 ms instead of 0.30 at 16 x 16, best of 30, load ~1;
the sums move by round-off, the fast path's moments by 7e-14 relative at most).

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

__all__ = [
    "active_nodes",
    "spatial_grams",
    "spatial_quadratic",
    "spatial_quadratic_grams",
]


@numba.njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _gram_block(pT, sp, nk, ak, y, Sk):
    """``Sk = sum_r ak[r] pT[:, r] pT[:, r]^T`` of one time node (``pT`` (F_s, n_c), spans
    ``sp`` (G, G, 2), ``nk`` active nodes, weights ``ak``, scratch ``y``; :func:`spatial_grams`)."""
    fs = pT.shape[0]
    f4 = fs - fs % 4
    for ib in range(0, f4, 4):
        for jb in range(0, ib + 1, 4):
            # slices of the span: loops over range(n) vectorize, loops over range(lo, hi) not
            lo, hi = sp[ib // 4, jb // 4, 0], sp[ib // 4, jb // 4, 1]
            w = ak[lo:hi]
            x0, x1, x2, x3 = (
                pT[ib, lo:hi],
                pT[ib + 1, lo:hi],
                pT[ib + 2, lo:hi],
                pT[ib + 3, lo:hi],
            )
            y0, y1, y2, y3 = (
                pT[jb, lo:hi],
                pT[jb + 1, lo:hi],
                pT[jb + 2, lo:hi],
                pT[jb + 3, lo:hi],
            )
            s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = 0.0
            s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = 0.0
            for r in range(hi - lo):
                wr = w[r]
                a0, a1, a2, a3 = wr * x0[r], wr * x1[r], wr * x2[r], wr * x3[r]
                b0, b1, b2, b3 = y0[r], y1[r], y2[r], y3[r]
                s00 += a0 * b0
                s01 += a0 * b1
                s02 += a0 * b2
                s03 += a0 * b3
                s10 += a1 * b0
                s11 += a1 * b1
                s12 += a1 * b2
                s13 += a1 * b3
                s20 += a2 * b0
                s21 += a2 * b1
                s22 += a2 * b2
                s23 += a2 * b3
                s30 += a3 * b0
                s31 += a3 * b1
                s32 += a3 * b2
                s33 += a3 * b3
            Sk[ib, jb], Sk[ib, jb + 1], Sk[ib, jb + 2], Sk[ib, jb + 3] = s00, s01, s02, s03
            Sk[ib + 1, jb], Sk[ib + 1, jb + 1] = s10, s11
            Sk[ib + 1, jb + 2], Sk[ib + 1, jb + 3] = s12, s13
            Sk[ib + 2, jb], Sk[ib + 2, jb + 1] = s20, s21
            Sk[ib + 2, jb + 2], Sk[ib + 2, jb + 3] = s22, s23
            Sk[ib + 3, jb], Sk[ib + 3, jb + 1] = s30, s31
            Sk[ib + 3, jb + 2], Sk[ib + 3, jb + 3] = s32, s33
    for i in range(f4, fs):  # the rows past the last full tile
        pi = pT[i]
        for r in range(nk):
            y[r] = ak[r] * pi[r]
        for j in range(i + 1):
            lo, hi = sp[i // 4, j // 4, 0], sp[i // 4, j // 4, 1]
            yi, pj = y[lo:hi], pT[j, lo:hi]
            s = 0.0
            for r in range(hi - lo):
                s += yi[r] * pj[r]
            Sk[i, j] = s
    for i in range(fs):  # the upper triangle (and that of the diagonal tiles) from the lower
        for j in range(i):
            Sk[j, i] = Sk[i, j]


@numba.njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _quadratic_block(pT, sp, nk, Bk, o):
    """``o[r] = pT[:, r]^T Bk pT[:, r]`` for ``r < nk`` of one time node (``pT``, ``sp``, ``nk``
    as in :func:`_gram_block`; :func:`spatial_quadratic`)."""
    fs = pT.shape[0]
    f4 = fs - fs % 4
    for r in range(nk):
        o[r] = 0.0
    for ib in range(0, f4, 4):
        gi = ib // 4
        lo, hi = sp[gi, gi, 0], sp[gi, gi, 1]
        ot = o[lo:hi]  # slices of the span (loops over range(n) vectorize)
        x0, x1, x2, x3 = pT[ib, lo:hi], pT[ib + 1, lo:hi], pT[ib + 2, lo:hi], pT[ib + 3, lo:hi]
        d0, d1 = Bk[ib, ib], Bk[ib + 1, ib + 1]
        d2, d3 = Bk[ib + 2, ib + 2], Bk[ib + 3, ib + 3]
        e10, e20, e21 = 2.0 * Bk[ib + 1, ib], 2.0 * Bk[ib + 2, ib], 2.0 * Bk[ib + 2, ib + 1]
        e30, e31 = 2.0 * Bk[ib + 3, ib], 2.0 * Bk[ib + 3, ib + 1]
        e32 = 2.0 * Bk[ib + 3, ib + 2]
        for r in range(hi - lo):  # the diagonal tile
            a0, a1, a2, a3 = x0[r], x1[r], x2[r], x3[r]
            ot[r] += (
                a0 * (d0 * a0)
                + a1 * (d1 * a1 + e10 * a0)
                + a2 * (d2 * a2 + e20 * a0 + e21 * a1)
                + a3 * (d3 * a3 + e30 * a0 + e31 * a1 + e32 * a2)
            )
        for jb in range(0, ib, 4):
            lo, hi = sp[gi, jb // 4, 0], sp[gi, jb // 4, 1]
            ot = o[lo:hi]
            x0, x1 = pT[ib, lo:hi], pT[ib + 1, lo:hi]
            x2, x3 = pT[ib + 2, lo:hi], pT[ib + 3, lo:hi]
            y0, y1 = pT[jb, lo:hi], pT[jb + 1, lo:hi]
            y2, y3 = pT[jb + 2, lo:hi], pT[jb + 3, lo:hi]
            c00, c01 = 2.0 * Bk[ib, jb], 2.0 * Bk[ib, jb + 1]
            c02, c03 = 2.0 * Bk[ib, jb + 2], 2.0 * Bk[ib, jb + 3]
            c10, c11 = 2.0 * Bk[ib + 1, jb], 2.0 * Bk[ib + 1, jb + 1]
            c12, c13 = 2.0 * Bk[ib + 1, jb + 2], 2.0 * Bk[ib + 1, jb + 3]
            c20, c21 = 2.0 * Bk[ib + 2, jb], 2.0 * Bk[ib + 2, jb + 1]
            c22, c23 = 2.0 * Bk[ib + 2, jb + 2], 2.0 * Bk[ib + 2, jb + 3]
            c30, c31 = 2.0 * Bk[ib + 3, jb], 2.0 * Bk[ib + 3, jb + 1]
            c32, c33 = 2.0 * Bk[ib + 3, jb + 2], 2.0 * Bk[ib + 3, jb + 3]
            for r in range(hi - lo):
                a0, a1, a2, a3 = x0[r], x1[r], x2[r], x3[r]
                b0, b1, b2, b3 = y0[r], y1[r], y2[r], y3[r]
                ot[r] += (
                    a0 * (c00 * b0 + c01 * b1 + c02 * b2 + c03 * b3)
                    + a1 * (c10 * b0 + c11 * b1 + c12 * b2 + c13 * b3)
                    + a2 * (c20 * b0 + c21 * b1 + c22 * b2 + c23 * b3)
                    + a3 * (c30 * b0 + c31 * b1 + c32 * b2 + c33 * b3)
                )
    for i in range(f4, fs):  # the rows past the last full tile
        for j in range(i + 1):
            cij = Bk[i, i] if j == i else 2.0 * Bk[i, j]
            lo, hi = sp[i // 4, j // 4, 0], sp[i // 4, j // 4, 1]
            ot, pi, pj = o[lo:hi], pT[i, lo:hi], pT[j, lo:hi]
            for r in range(hi - lo):
                ot[r] += cij * pi[r] * pj[r]


@numba.njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def spatial_grams(psT, idx, count, span, a):
    """``S[k] = sum_{r < count[k]} a[k, idx[k, r]] psT[k, :, r] psT[k, :, r]^T`` (n_t, F_s, F_s),
    exactly symmetric, each entry ``(i, j)`` summed over the nodes ``span[k, i // 4, j // 4, 0]
    <= r < span[k, i // 4, j // 4, 1]`` only; ``psT`` (n_t, F_s, n_c) float64, ``idx`` (n_t, n_c),
    ``count`` (n_t,) and ``span`` (n_t, G, G, 2) integer (``G = ceil(F_s / 4)`` feature groups;
    :func:`active_nodes`), ``a`` (n_t, n_x) float64.

    Per time node the lower triangle in 4 x 4 tiles (16 sums over the tile's span of nodes at
    once: each loaded feature serves four products; the node weight is applied to the row
    features on the fly), the rows past the last full tile by plain dot products, then the upper
    triangle copied from the lower."""
    n_t, fs, n_c = psT.shape
    S = np.empty((n_t, fs, fs))
    ak = np.empty(n_c)
    y = np.empty(n_c)
    for k in range(n_t):
        nk = count[k]
        for r in range(nk):
            ak[r] = a[k, idx[k, r]]
        _gram_block(psT[k], span[k], nk, ak, y, S[k])
    return S


@numba.njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def spatial_quadratic(psT, idx, count, span, B, n_x):
    """``out[k, idx[k, r]] = psT[k, :, r]^T B[k] psT[k, :, r]`` for ``r < count[k]``, 0 at the
    other nodes (n_t, n_x), for symmetric ``B[k]``, the term of ``(i, j)`` at the nodes of its
    span only (:func:`spatial_grams`); ``psT``/``idx``/``count``/``span`` as there, ``B``
    (n_t, F_s, F_s) float64 (its lower triangle is read).

    ``sum_i B_ii p_i^2 + 2 sum_{j < i} B_ij p_i p_j`` by 4 x 4 tiles of the lower triangle: per
    tile one pass over the active nodes with its 16 (diagonal tile: 10) coefficients held and 8
    features loaded per node; the rows past the last full tile one coefficient at a time."""
    n_t, fs, n_c = psT.shape
    out = np.zeros((n_t, n_x))
    o = np.empty(n_c)
    for k in range(n_t):
        nk = count[k]
        _quadratic_block(psT[k], span[k], nk, B[k], o)
        for r in range(nk):
            out[k, idx[k, r]] = o[r]
    return out


@numba.njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def spatial_quadratic_grams(psT, idx, count, span, B, c, w, P, saturate):
    """:func:`spatial_grams` with the node coefficients ``a`` made from the quadratic forms
    ``v = psT[k, :, r]^T B[k] psT[k, :, r]`` (:func:`spatial_quadratic`) in the same pass over
    each time node's features (read once from memory for both): ``a = c / (1 + max(0, w[k] v /
    P))`` if ``saturate`` (the leverage ``q = w v / P``), else ``a = c v``; ``c`` (n_t, n_x),
    ``w`` (n_t,) float64, ``P`` float (the same values as the two kernels and these operations in
    numpy, to the bit)."""
    n_t, fs, n_c = psT.shape
    S = np.empty((n_t, fs, fs))
    ak = np.empty(n_c)
    y = np.empty(n_c)
    o = np.empty(n_c)
    for k in range(n_t):
        nk = count[k]
        _quadratic_block(psT[k], span[k], nk, B[k], o)
        for r in range(nk):
            if saturate:
                q = max(w[k] * o[r] / P, 0.0)
                ak[r] = c[k, idx[k, r]] / (1.0 + q)
            else:
                ak[r] = c[k, idx[k, r]] * o[r]
        _gram_block(psT[k], span[k], nk, ak, y, S[k])
    return S


@numba.njit(cache=True, error_model="numpy")
def active_nodes(ps, order, fraction):
    """The layout of :func:`spatial_grams` for spatial features ``ps`` (n_t, n_x, F_s) float64
    with the nodes of each time node ``k`` taken in the order ``order[k]`` (n_t, n_x) integer (the
    ``x`` order): per time node the nodes whose largest ``|ps|`` exceeds ``cut = fraction`` times
    the largest of all (at least the smallest normal double), in that order: ``psT``
    (n_t, F_s, n_c) (zeros past ``count[k]``, ``n_c >= 1`` the largest count), ``idx``
    (n_t, n_c), ``count`` (n_t,) and ``span`` (n_t, G, G, 2), ``G = ceil(F_s / 4)``: for the
    feature groups ``g = i // 4`` the first and one past the last node ``r`` with
    ``m[g, r] m[h, r] > cut**2``, ``m[g, r]`` the largest ``|ps|`` of group ``g`` at node ``r``
    (``(0, 0)`` if none), for ``g >= h`` (``span[k, h, g] = span[k, g, h]``).

    Every term the node kernels leave out of a tile ``(g, h)``, ``a psT[i, r] psT[j, r]``, is
    below ``cut**2 |a|``, as the terms of the inactive nodes. Features of one ``x`` region (a
    spatial basis of bumps) make the spans of distant groups short or empty: with the ``x`` order
    every node between the first and the last of a span is needed for such features."""
    n_t, n_x, fs = ps.shape
    n_g = (fs + 3) // 4
    big = np.empty((n_t, n_x))
    top = 0.0
    for k in range(n_t):
        for j in range(n_x):
            m = 0.0
            for i in range(fs):
                m = max(m, abs(ps[k, j, i]))
            big[k, j] = m
            top = max(top, m)
    cut = fraction * max(top, 2.2250738585072014e-308)
    count = np.zeros(n_t, dtype=np.intp)
    for k in range(n_t):
        for j in range(n_x):
            if big[k, j] > cut:
                count[k] += 1
    n_c = 1
    for k in range(n_t):
        n_c = max(n_c, count[k])
    psT = np.zeros((n_t, fs, n_c))
    idx = np.zeros((n_t, n_c), dtype=np.intp)
    span = np.zeros((n_t, n_g, n_g, 2), dtype=np.intp)
    gm = np.empty(n_g)
    for k in range(n_t):
        r = 0
        for j in order[k]:
            if big[k, j] > cut:
                idx[k, r] = j
                for i in range(fs):
                    psT[k, i, r] = ps[k, j, i]
                r += 1
        for r in range(count[k]):
            for g in range(n_g):
                m = 0.0
                for i in range(4 * g, min(fs, 4 * g + 4)):
                    m = max(m, abs(psT[k, i, r]))
                gm[g] = m
            for g in range(n_g):
                for h in range(g + 1):
                    if gm[g] * gm[h] > cut * cut:
                        if span[k, g, h, 1] == 0:
                            span[k, g, h, 0] = r
                        span[k, g, h, 1] = r + 1
        for g in range(n_g):
            for h in range(g):
                span[k, h, g, 0] = span[k, g, h, 0]
                span[k, h, g, 1] = span[k, g, h, 1]
    return psT, idx, count, span
