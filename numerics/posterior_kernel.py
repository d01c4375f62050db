"""The streaming numba kernel behind :func:`gtv.numerics.posterior.posterior_stats`
(docs/math/posterior.md).

:func:`posterior_tiles` computes, for N queries at once, the posterior mean, ``tr Sigma_post``
(optionally ``Sigma_post``) and from them, per query, the score, ``tr C`` and ``frac`` (the
formulas of the numpy reference in :mod:`gtv.numerics.posterior`, vectorized over a block of
queries; no fast-math flag assumes away ``inf`` or ``NaN``). Queries it cannot handle (far from
the data, or a non-finite moment) are flagged for the caller's expanded-logit fallback. Its
plain-numpy reference is ``posterior_stats(..., backend="numpy")``;
tests/numerics/test_posterior.py asserts that they agree.
"""

from __future__ import annotations

import numba
import numpy as np

from gtv.numerics.fastexp import exp_block

__all__ = ["CHUNK_BLOCKS", "POINT_BLOCK", "QUERY_BLOCK", "posterior_tiles"]

#: Queries per tile (the innermost, vectorized loops run over them).
QUERY_BLOCK = 64
#: Training points per tile.
POINT_BLOCK = 32
#: Query blocks per parallel task when M <= POINT_BLOCK (the work arrays are allocated once per
#: task; with more training points a task is one block).
CHUNK_BLOCKS = 16


@numba.njit(parallel=True, cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def posterior_tiles(
    mu,
    x,
    alpha,
    inv_two_sigma2,
    smc,
    isg,
    pcs,
    bound,
    mean,
    trace,
    cov,
    score,
    ptr,
    frac,
    flagged,
    full_cov,
    frac_only,
    qblock,
    mblock,
):
    """Posterior moments, score, ``tr C`` and ``frac`` of N queries, tile by tile, written into
    the given output arrays.

    Parameters
    ----------
    mu : ndarray (M, D); x : ndarray (N, D)
        Training points and queries (C-contiguous float64).
    alpha, inv_two_sigma2, smc, isg, pcs, bound : ndarray (N,) or (1,)
        Per-query (or common) ``alpha``, ``1/(2 sigma**2)``, the score factors
        ``score_mean_coeff`` and ``inv_sigma2``, ``proxy_cov_scale`` and the bound on ``max|x|``
        above which a query is left to the caller.
    mean, score : ndarray (N, D); trace, ptr : ndarray (N,); cov : ndarray (N, D, D)
        Outputs: posterior mean, score, ``tr Sigma_post``, ``tr C`` and (with ``full_cov``)
        ``Sigma_post``; every entry is written. With ``frac_only`` they are not used (pass
        arrays with one row), nor is ``cov`` without ``full_cov``.
    frac : ndarray (N,); flagged : ndarray (N,) uint8
        Outputs: ``frac``, and ``flagged[q] = 1`` where ``max|x_q| > bound`` or a moment of
        query ``q`` is not finite (the query's other outputs are then left for the caller to
        overwrite), else 0.
    full_cov : bool
        Also accumulate ``Sigma_post``.
    frac_only : bool
        Write only ``frac`` and ``flagged`` (``full_cov`` must then be False).
    qblock, mblock : int
        Tile size: queries x training points.

    Notes
    -----
    A tile's innermost loops run over its queries (stored transposed), so they vectorize for any
    M and D. Per tile: the logits, their maximum per query, the weights ``exp(logit - max)``
    (:func:`gtv.numerics.fastexp.exp_block`; arguments below -708 take the scalar ``exp``), the
    tile's weight sum, mean and *centred* second moment (two passes). With one tile of training
    points (M <= mblock) these are the result. Otherwise each tile is merged into the running
    state with Chan's pairwise formula ``M2 = M2_a + M2_b + |delta|**2 W_a W_b / (W_a + W_b)``,
    both sides rescaled to the larger maximum logit (an online softmax). ``reassoc`` lets LLVM
    vectorize; no NaN/inf assumptions are made. The last step forms the per-query outputs for
    the whole block at once (``score``, ``tr C`` and ``frac``, the latter with both of its terms
    scaled by their largest, docs/reliability.md). A parallel task is one query block, or with
    one tile of training points (little work per block) a run of :data:`CHUNK_BLOCKS` blocks
    that share their work arrays. Each query's result depends only on its own block, so it is
    the same for any thread count.
    """
    n, d = x.shape
    m_total = mu.shape[0]
    per_query = alpha.shape[0] > 1
    one_tile = m_total <= mblock
    nqb = (n + qblock - 1) // qblock
    per_task = CHUNK_BLOCKS if one_tile else 1
    nchunks = (nqb + per_task - 1) // per_task
    cd = d if full_cov else 1
    for ch in numba.prange(nchunks):
        xt = np.zeros((d, qblock))
        av = np.zeros(qblock)
        cv = np.zeros(qblock)
        sv = np.zeros(qblock)
        gv = np.zeros(qblock)
        pv = np.zeros(qblock)
        bv = np.zeros(qblock)
        runmax = np.empty(qblock)
        wsum = np.empty(qblock)
        rmean = np.empty((d, qblock))
        rtr = np.empty(qblock)
        rcov = np.zeros((cd, cd, qblock))
        lg = np.zeros(mblock * qblock)
        lgc = np.zeros(mblock * qblock)
        w = np.zeros(mblock * qblock)
        tmax = np.empty(qblock)
        tw = np.empty(qblock)
        tmean = np.empty((d, qblock))
        ttr = np.empty(qblock)
        tcov = np.zeros((cd, cd, qblock))
        dl = np.zeros((d, qblock))
        ya = np.zeros(qblock)
        yb = np.zeros(qblock)
        yac = np.zeros(qblock)
        ybc = np.zeros(qblock)
        ga = np.zeros(qblock)
        gb = np.zeros(qblock)
        fm = np.zeros(qblock)
        hm = np.zeros(qblock)
        dd = np.zeros(qblock)
        for qb in range(ch * per_task, min(nqb, (ch + 1) * per_task)):
            q0 = qb * qblock
            nq = min(n, q0 + qblock) - q0
            for i in range(qblock):
                av[i] = 0.0
                cv[i] = 0.0
                sv[i] = 0.0
                gv[i] = 0.0
                pv[i] = 0.0
                bv[i] = 0.0
                runmax[i] = -np.inf
                wsum[i] = 0.0
                rtr[i] = 0.0
                for j in range(d):
                    xt[j, i] = 0.0
                    rmean[j, i] = 0.0
                for j in range(cd):
                    for e in range(cd):
                        rcov[j, e, i] = 0.0
            for i in range(nq):
                k = q0 + i if per_query else 0
                av[i] = alpha[k]
                cv[i] = inv_two_sigma2[k]
                sv[i] = smc[k]
                gv[i] = isg[k]
                pv[i] = pcs[k]
                bv[i] = bound[k]
                for j in range(d):
                    xt[j, i] = x[q0 + i, j]
            for m0 in range(0, m_total, mblock):
                nb = min(m_total, m0 + mblock) - m0
                # Logits and their maximum per query.
                for i in range(qblock):
                    tmax[i] = -np.inf
                for m in range(nb):
                    row = m * qblock
                    for i in range(qblock):
                        lg[row + i] = 0.0
                    for j in range(d):
                        muj = mu[m0 + m, j]
                        for i in range(qblock):
                            diff = xt[j, i] - av[i] * muj
                            lg[row + i] += diff * diff
                    for i in range(qblock):
                        lg[row + i] *= -cv[i]
                        tmax[i] = max(tmax[i], lg[row + i])
                # Weights relative to the tile maximum.
                size = nb * qblock
                n_small = 0
                for m in range(nb):
                    row = m * qblock
                    for i in range(qblock):
                        y = lg[row + i] - tmax[i]
                        lg[row + i] = y
                        lgc[row + i] = max(y, -708.0)
                        n_small += y < -708.0
                exp_block(lgc, w, size)
                if n_small > 0:
                    for k in range(size):
                        if lg[k] < -708.0:
                            w[k] = np.exp(lg[k])
                # Tile weight and mean.
                for i in range(qblock):
                    tw[i] = 0.0
                    ttr[i] = 0.0
                for j in range(d):
                    for i in range(qblock):
                        tmean[j, i] = 0.0
                for m in range(nb):
                    row = m * qblock
                    for i in range(qblock):
                        tw[i] += w[row + i]
                    for j in range(d):
                        muj = mu[m0 + m, j]
                        for i in range(qblock):
                            tmean[j, i] += w[row + i] * muj
                for j in range(d):
                    for i in range(qblock):
                        tmean[j, i] /= tw[i]
                # Centred second moment of the tile.
                if full_cov:
                    for j in range(d):
                        for e in range(d):
                            for i in range(qblock):
                                tcov[j, e, i] = 0.0
                for m in range(nb):
                    row = m * qblock
                    for j in range(d):
                        muj = mu[m0 + m, j]
                        for i in range(qblock):
                            dv = muj - tmean[j, i]
                            ttr[i] += w[row + i] * dv * dv
                    if full_cov:
                        for j in range(d):
                            for e in range(j + 1):
                                muj = mu[m0 + m, j]
                                mue = mu[m0 + m, e]
                                for i in range(qblock):
                                    tcov[j, e, i] += (
                                        w[row + i] * (muj - tmean[j, i]) * (mue - tmean[e, i])
                                    )
                if one_tile:
                    # The merge below with an empty running state (its weight factor is exactly
                    # 0, the tile's exactly 1) returns the tile's moments unchanged.
                    for i in range(qblock):
                        wsum[i] = tw[i]
                        rtr[i] = ttr[i]
                        for j in range(d):
                            rmean[j, i] = tmean[j, i]
                    if full_cov:
                        for j in range(d):
                            for e in range(j + 1):
                                for i in range(qblock):
                                    rcov[j, e, i] = tcov[j, e, i]
                    continue
                # Chan merge, both sides rescaled to the larger maximum; vectorized over queries.
                n_small = 0
                for i in range(qblock):
                    new = max(runmax[i], tmax[i])
                    ya[i] = runmax[i] - new  # -inf on a query's first tile
                    yb[i] = tmax[i] - new
                    yac[i] = max(ya[i], -708.0)
                    ybc[i] = max(yb[i], -708.0)
                    n_small += (ya[i] < -708.0) + (yb[i] < -708.0)
                    runmax[i] = new
                exp_block(yac, ga, qblock)
                exp_block(ybc, gb, qblock)
                if n_small > 0:
                    for i in range(qblock):
                        if ya[i] < -708.0:
                            ga[i] = np.exp(ya[i])
                        if yb[i] < -708.0:
                            gb[i] = np.exp(yb[i])
                for i in range(qblock):
                    wa = wsum[i] * ga[i]
                    wb = tw[i] * gb[i]
                    wn = wa + wb
                    fm[i] = wb / wn
                    hm[i] = wa * fm[i]  # W_a W_b / (W_a + W_b), no cancellation
                    wsum[i] = wn
                    dd[i] = 0.0
                for j in range(d):
                    for i in range(qblock):
                        dl[j, i] = tmean[j, i] - rmean[j, i]
                        dd[i] += dl[j, i] * dl[j, i]
                        rmean[j, i] += fm[i] * dl[j, i]
                for i in range(qblock):
                    rtr[i] = rtr[i] * ga[i] + ttr[i] * gb[i] + hm[i] * dd[i]
                if full_cov:
                    for j in range(d):
                        for e in range(j + 1):
                            for i in range(qblock):
                                rcov[j, e, i] = (
                                    rcov[j, e, i] * ga[i]
                                    + tcov[j, e, i] * gb[i]
                                    + hm[i] * dl[j, i] * dl[e, i]
                                )
            # Per-query outputs, vectorized over the block's queries: the formulas of the numpy
            # reference (gtv.numerics.posterior), with lane arrays reused as named below.
            u, inv_w, tr_f, r_s, c_s, xmax, n_nonfin = dl, wsum, ttr, ya, yb, yac, ybc
            cs, num, usum, fr, n_nan, score_t = ga, fm, hm, dd, gb, tmean
            for i in range(qblock):
                inv_w[i] = 1.0 / wsum[i]
                tr_f[i] = rtr[i] * inv_w[i]
                r_s[i] = av[i] * np.sqrt(tr_f[i])  # sqrt of a**2 tr, without overflow
                c_s[i] = r_s[i]
                xmax[i] = 0.0
                n_nonfin[i] = 0.0 if abs(tr_f[i]) < np.inf else 1.0
                usum[i] = 0.0
                n_nan[i] = 0.0
            for j in range(d):
                for i in range(qblock):
                    u[j, i] = av[i] * rmean[j, i] - xt[j, i]  # sigma**2 times the score
                    c_s[i] = max(c_s[i], abs(u[j, i]))
                    xmax[i] = max(xmax[i], abs(xt[j, i]))
                    n_nonfin[i] += 0.0 if abs(rmean[j, i]) < np.inf else 1.0
            for i in range(qblock):
                cs[i] = c_s[i] if c_s[i] > 0 else 1.0
                num[i] = (r_s[i] / cs[i]) * (r_s[i] / cs[i])
            for j in range(d):
                for i in range(qblock):
                    v = u[j, i] / cs[i]
                    usum[i] += v * v
            for i in range(qblock):
                den = num[i] + usum[i]
                fr[i] = num[i] / den if (c_s[i] > 0) & (den > 0) else 0.0
            for i in range(nq):
                q = q0 + i
                frac[q] = fr[i]
                flagged[q] = (n_nonfin[i] > 0) | (xmax[i] > bv[i])
            if frac_only:
                continue
            for j in range(d):
                for i in range(qblock):
                    sc = sv[i] * rmean[j, i] - gv[i] * xt[j, i]
                    score_t[j, i] = sc
                    n_nan[i] += 0.0 if sc == sc else 1.0
            for i in range(nq):
                q = q0 + i
                trace[q] = tr_f[i]
                ptr[q] = pv[i] * tr_f[i] if tr_f[i] > 0 else 0.0
                for j in range(d):
                    mean[q, j] = rmean[j, i]
                    score[q, j] = score_t[j, i]
            for i in range(nq):
                if n_nan[i] > 0:  # smc mu_bar - isg x = inf - inf: (a mu_bar - x) isg instead
                    for j in range(d):
                        score[q0 + i, j] = 0.0 if u[j, i] == 0 else u[j, i] * gv[i]
            if full_cov:
                for i in range(nq):
                    for j in range(d):
                        for e in range(j + 1):
                            v = rcov[j, e, i] * inv_w[i]
                            cov[q0 + i, j, e] = v
                            cov[q0 + i, e, j] = v
