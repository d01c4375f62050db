"""Posterior over training points and the proxy-score covariance (docs/math/conventions.md).

For training points ``mu`` (M x D), a query ``x`` and a time ``t``:

* ``w_m = softmax_m(-|x - alpha_t mu_m|**2 / (2 sigma_t**2))`` (log-sum-exp stable),
* ``mu_bar = sum_m w_m mu_m`` and ``Sigma_post = sum_m w_m (mu_m - mu_bar)(mu_m - mu_bar)^T``,
* the score ``s = (alpha_t mu_bar - x) / sigma_t**2``,
* the proxy-score covariance ``C = Cov[s_tilde | x, t] = (alpha_t**2 / sigma_t**4) Sigma_post``,
* ``frac = tr C / (tr C + |s|**2) = E|s_tilde - s|**2 / E|s_tilde|**2`` (the paper's Fig. 1).

Two implementations compute the same thing:

* the numba kernel streams over tiles (a block of queries x a block of training points): the
  tile's logits and weights (a vectorized exponential), its centred moments, and a merge into
  the running state by Chan's pairwise formula with a running maximum logit (an *online*
  softmax). It never holds an M x N matrix and never forms ``E[mu mu^T] - mu_bar mu_bar^T``
  (which cancels catastrophically when the posterior is concentrated and is then multiplied by
  ``alpha**2/sigma**4``);
* the numpy reference forms the logits for a block of queries at once and uses centred two-pass
  moments. A test asserts that the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from gtv.numerics.checks import check_points
from gtv.numerics.fastexp import exp_block
from gtv.numerics.schedules import NumericSchedule, resolve_schedule

__all__ = [
    "MU_LIMIT",
    "PosteriorStats",
    "frac_proxy_variance",
    "posterior_stats",
    "posterior_weights",
    "proxy_covariance",
]

_QUERY_BLOCK = 64
_POINT_BLOCK = 32


@dataclass(frozen=True)
class PosteriorStats:
    """Posterior moments and proxy-score statistics at N query points.

    Attributes
    ----------
    mean : ndarray, shape (N, D)
        Posterior mean ``mu_bar`` of the clean point.
    cov_trace : ndarray, shape (N,)
        ``tr Sigma_post``.
    cov : ndarray, shape (N, D, D) or None
        ``Sigma_post`` (only with ``full_cov=True``).
    score : ndarray, shape (N, D)
        Exact score ``s = (alpha mu_bar - x) / sigma**2``.
    proxy_cov_trace : ndarray, shape (N,)
        ``tr C``.
    proxy_cov : ndarray, shape (N, D, D) or None
        ``C`` (only with ``full_cov=True``).
    frac : ndarray, shape (N,)
        ``tr C / (tr C + |s|**2)``; 0 where both vanish (no proxy noise at all).
    """

    mean: np.ndarray
    cov_trace: np.ndarray
    cov: np.ndarray | None
    score: np.ndarray
    proxy_cov_trace: np.ndarray
    proxy_cov: np.ndarray | None
    frac: np.ndarray


# -- input checks -------------------------------------------------------------------------------
def _query_times(
    sched: NumericSchedule, t: object, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    arr = sched.check_times(t)
    if arr.ndim == 0:
        # One time for all queries: evaluate the schedule once.
        a, s2 = float(sched.alpha(float(arr))), float(sched.sigma2(float(arr)))
        arr, alpha, sigma2 = np.array([float(arr)]), np.array([a]), np.array([s2])
    elif arr.shape != (n,):
        raise ValueError(f"t must be a scalar or have shape (N,) = ({n},), got shape {arr.shape}")
    else:
        alpha = np.asarray(sched.alpha(arr), dtype=np.float64)
        sigma2 = np.asarray(sched.sigma2(arr), dtype=np.float64)
    if not (np.all(np.isfinite(alpha)) and np.all(sigma2 > 0) and np.all(np.isfinite(sigma2))):
        raise ValueError(f"t gives a non-finite alpha or a non-positive sigma2 for {sched.name!r}")
    return arr, alpha, sigma2


def _coefficients(sched: NumericSchedule, tq: np.ndarray) -> tuple[np.ndarray, ...]:
    """``score_mean_coeff``, ``inv_sigma2``, ``proxy_cov_scale`` (length N, or 1 for one time)."""
    return tuple(
        np.atleast_1d(np.asarray(f(tq), dtype=np.float64))
        for f in (sched.score_mean_coeff, sched.inv_sigma2, sched.proxy_cov_scale)
    )


# -- numba kernel -------------------------------------------------------------------------------
@numba.njit(parallel=True, cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _posterior_moments_numba(mu, x, alpha, inv_two_sigma2, smc, isg, pcs, full_cov, qblock, mblock):
    """Posterior mean, ``tr Sigma_post`` and optionally ``Sigma_post``, tile by tile.

    A tile is ``qblock`` queries x ``mblock`` training points; the innermost loops run over the
    queries of the tile (stored transposed), so they vectorize whatever M and D are. Per tile:
    the logits, their maximum per query, the weights ``exp(logit - max)``
    (:func:`gtv.numerics.fastexp.exp_block`; arguments below -708 take the scalar ``exp``), the
    tile's weighted mean and *centred* second moment (two passes), and a merge into the running
    state with Chan's pairwise formula ``M2 = M2_a + M2_b + |delta|**2 W_a W_b / (W_a + W_b)``,
    both sides rescaled to the larger maximum logit. ``reassoc`` lets LLVM vectorize; no NaN/inf
    assumptions are made. The per-query coefficient arrays (``alpha``, ``inv_two_sigma2`` and the
    score/proxy factors ``smc``, ``isg``, ``pcs``) have length N, or 1 for a common time. The
    score ``smc mu_bar - isg x``, ``tr C = pcs tr Sigma_post`` and frac are formed at the end.
    """
    n, d = x.shape
    m_total = mu.shape[0]
    mean = np.zeros((n, d))
    trace = np.zeros(n)
    score = np.empty((n, d))
    ptr = np.empty(n)
    frac = np.empty(n)
    per_query = alpha.shape[0] > 1
    cov = np.zeros((n if full_cov else 1, d, d))
    nqb = (n + qblock - 1) // qblock
    cd = d if full_cov else 1
    for qb in numba.prange(nqb):
        q0 = qb * qblock
        nq = min(n, q0 + qblock) - q0
        xt = np.zeros((d, qblock))
        av = np.zeros(qblock)
        cv = np.zeros(qblock)
        for i in range(nq):
            av[i] = alpha[q0 + i] if per_query else alpha[0]
            cv[i] = inv_two_sigma2[q0 + i] if per_query else inv_two_sigma2[0]
            for j in range(d):
                xt[j, i] = x[q0 + i, j]
        runmax = np.full(qblock, -np.inf)
        wsum = np.zeros(qblock)
        rmean = np.zeros((d, qblock))
        rtr = np.zeros(qblock)
        rcov = np.zeros((cd, cd, qblock))
        lg = np.zeros(mblock * qblock)
        lgc = np.zeros(mblock * qblock)
        w = np.zeros(mblock * qblock)
        scratch = np.zeros(mblock * qblock)
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
            exp_block(lgc, w, scratch, size)
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
            exp_block(yac, ga, scratch, qblock)
            exp_block(ybc, gb, scratch, qblock)
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
        for i in range(nq):
            q = q0 + i
            inv_w = 1.0 / wsum[i]
            trace[q] = rtr[i] * inv_w
            k = q if per_query else 0
            ss = 0.0
            for j in range(d):
                mean[q, j] = rmean[j, i]
                score[q, j] = smc[k] * rmean[j, i] - isg[k] * x[q, j]
                ss += score[q, j] * score[q, j]
            ptr[q] = pcs[k] * trace[q]
            total = ptr[q] + ss
            frac[q] = ptr[q] / total if total > 0.0 else 0.0
            if full_cov:
                for j in range(d):
                    for e in range(j + 1):
                        v = rcov[j, e, i] * inv_w
                        cov[q, j, e] = v
                        cov[q, e, j] = v
    return mean, trace, cov, score, ptr, frac


@numba.njit(cache=True, error_model="numpy", inline="always")
def posterior_weights_into(mu, x, alpha, inv_two_sigma2, out):
    """Unnormalized posterior weights ``exp(logit_m - max logit)`` at one point ``x`` into ``out``.

    Returns their sum (>= 1, the maximum contributes exactly 1).
    """
    mx = -np.inf
    for m in range(mu.shape[0]):
        d2 = 0.0
        for j in range(x.shape[0]):
            diff = x[j] - alpha * mu[m, j]
            d2 += diff * diff
        out[m] = -d2 * inv_two_sigma2
        if out[m] > mx:
            mx = out[m]
    total = 0.0
    for m in range(mu.shape[0]):
        out[m] = np.exp(out[m] - mx)
        total += out[m]
    return total


#: Training points per block of :func:`posterior_mean_into` (logits, then one vectorized exp).
MEAN_BLOCK = 256


@numba.njit(cache=True, error_model="numpy")
def posterior_mean_into(mu_t, x, alpha, inv_two_sigma2, out):
    """Write the posterior mean ``mu_bar`` at one point ``x`` (D,) into ``out`` (D,).

    ``mu_t`` is the *transposed* training set, shape (D, M), so the inner loops run over
    contiguous rows. One pass over blocks of :data:`MEAN_BLOCK` training points: the block's
    logits, a running maximum that rescales the accumulated sums when it grows (online softmax),
    and the block's weights by the vectorizable :func:`gtv.numerics.fastexp.exp_block`; weights
    below ``exp(-708)`` relative to the maximum are 0.
    """
    d = x.shape[0]
    n_mu = mu_t.shape[1]
    lg = np.empty(MEAN_BLOCK)
    w = np.empty(MEAN_BLOCK)
    scratch = np.empty(MEAN_BLOCK)
    runmax = -np.inf
    wsum = 0.0
    for j in range(d):
        out[j] = 0.0
    for b0 in range(0, n_mu, MEAN_BLOCK):
        nb = min(MEAN_BLOCK, n_mu - b0)
        for m in range(nb):
            lg[m] = 0.0
        for j in range(d):
            row = mu_t[j, b0 : b0 + nb]
            xj = x[j]
            for m in range(nb):
                diff = xj - alpha * row[m]
                lg[m] += diff * diff
        bmax = -np.inf
        for m in range(nb):
            lg[m] *= -inv_two_sigma2
            bmax = max(bmax, lg[m])
        if bmax > runmax:
            c = np.exp(runmax - bmax)
            wsum *= c
            for j in range(d):
                out[j] *= c
            runmax = bmax
        for m in range(nb):
            lg[m] = max(lg[m] - runmax, -708.0)
        exp_block(lg, w, scratch, nb)
        for m in range(nb):
            if lg[m] <= -708.0:
                w[m] = 0.0
            wsum += w[m]
        for j in range(d):
            row = mu_t[j, b0 : b0 + nb]
            acc = 0.0
            for m in range(nb):
                acc += w[m] * row[m]
            out[j] += acc
    for j in range(d):
        out[j] /= wsum


@numba.njit(parallel=True, cache=True, error_model="numpy")
def _posterior_weights_numba(mu, x, alpha, inv_two_sigma2):
    n = x.shape[0]
    out = np.empty((n, mu.shape[0]))
    for i in numba.prange(n):
        total = posterior_weights_into(mu, x[i], alpha[i], inv_two_sigma2[i], out[i])
        for m in range(mu.shape[0]):
            out[i, m] /= total
    return out


# -- numpy reference ----------------------------------------------------------------------------
def _logits_numpy(mu, x, alpha, inv_two_sigma2):
    # Extended precision (80-bit long double on x86): at small t the logits are large (~1e3-1e4)
    # and their differences, which set the weights, would otherwise lose ~|logit| ulps; the
    # reference should be the more accurate of the two backends (it is checked against mpmath).
    ld = np.longdouble
    diff = x.astype(ld)[:, None, :] - alpha.astype(ld)[:, None, None] * mu.astype(ld)[None, :, :]
    return -np.einsum("nmd,nmd->nm", diff, diff) * inv_two_sigma2.astype(ld)[:, None]


def _softmax_rows(logits):
    w = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (w / w.sum(axis=1, keepdims=True)).astype(np.float64)


def _posterior_moments_numpy(mu, x, alpha, inv_two_sigma2, full_cov, max_elements=4_000_000):
    n, d = x.shape
    m_total = mu.shape[0]
    mean = np.empty((n, d))
    trace = np.empty(n)
    cov = np.empty((n, d, d)) if full_cov else None
    step = max(1, max_elements // (m_total * d))
    for q0 in range(0, n, step):
        sl = slice(q0, min(n, q0 + step))
        w = _softmax_rows(_logits_numpy(mu, x[sl], alpha[sl], inv_two_sigma2[sl]))
        mean[sl] = w @ mu
        centred = mu[None, :, :] - mean[sl][:, None, :]
        trace[sl] = np.einsum("nm,nmd,nmd->n", w, centred, centred)
        if full_cov:
            cov[sl] = np.einsum("nm,nmd,nme->nde", w, centred, centred)
    return mean, trace, cov


# -- public API ---------------------------------------------------------------------------------
def posterior_stats(
    mu: object,
    x: object,
    t: object,
    schedule: object = "vp-linear",
    *,
    full_cov: bool = False,
    backend: str = "numba",
) -> PosteriorStats:
    """Posterior moments, exact score and proxy-score covariance at query points.

    Parameters
    ----------
    mu : array_like, shape (M, D)
        Training points.
    x : array_like, shape (N, D)
        Query points.
    t : float or array_like, shape (N,)
        Time(s), each in ``(0, T]``; one per query or one for all.
    schedule : str or NumericSchedule or gtv.theory.schedules.Schedule, default "vp-linear"
        Noise schedule.
    full_cov : bool, default False
        Also return the full ``D x D`` matrices ``Sigma_post`` and ``C`` (memory ``N D**2``).
    backend : {"numba", "numpy"}, default "numba"
        ``"numpy"`` runs the plain reference implementation.

    Returns
    -------
    PosteriorStats

    Raises
    ------
    ValueError
        For wrongly shaped or non-finite ``mu``/``x``, ``|mu|`` above :data:`MU_LIMIT`, ``t``
        outside ``(0, T]``, an unknown schedule name or backend.

    Notes
    -----
    For every accepted input ``mean``, ``cov_trace`` and ``frac`` are finite (``frac`` in
    [0, 1]): ``frac`` is formed with the common ``1/sigma**4`` cancelled and scaled by its largest
    term, and queries far from the data (or whose logits all underflow) take expanded logits
    (docs/reliability.md). ``score`` and ``proxy_cov_trace`` are ``+-inf`` exactly when their
    true value exceeds the float64 range (e.g. ``tr C ~ 1/t**2`` for ``t < 1e-154``), never NaN.
    """
    sched = resolve_schedule(schedule)
    mu = check_points(mu, "mu")
    if np.abs(mu).max() > MU_LIMIT:
        raise ValueError(
            f"mu must have entries of magnitude <= {MU_LIMIT:g} (squared distances between "
            f"training points must be representable), got {np.abs(mu).max():g}"
        )
    x = check_points(x, "x", dim=mu.shape[1])
    n = x.shape[0]
    tq, alpha, sigma2 = _query_times(sched, t, n)
    with np.errstate(over="ignore"):  # subnormal sigma2: inf, handled by _far_moments below
        inv_two_sigma2 = 0.5 / sigma2
    smc, isg, pcs = _coefficients(sched, tq)
    if backend == "numba":
        mean, trace, cov, score, proxy_trace, frac = _posterior_moments_numba(
            mu,
            x,
            alpha,
            inv_two_sigma2,
            smc,
            isg,
            pcs,
            bool(full_cov),
            _QUERY_BLOCK,
            _POINT_BLOCK,
        )
        cov = cov if full_cov else None
    elif backend == "numpy":
        full = [np.broadcast_to(v, (n,)) for v in (alpha, inv_two_sigma2, smc, isg, pcs)]
        alpha, inv_two_sigma2, smc, isg, pcs = full
        mean, trace, cov = _posterior_moments_numpy(mu, x, alpha, inv_two_sigma2, bool(full_cov))
        with np.errstate(over="ignore", invalid="ignore"):  # frac is recomputed scaled below
            score = smc[:, None] * mean - isg[:, None] * x
            proxy_trace = pcs * trace
    else:
        raise ValueError(f"backend must be 'numba' or 'numpy', got {backend!r}")
    a_all = np.broadcast_to(alpha, (n,))
    far_x = np.abs(x).max(axis=1) > _FAR * (1.0 + a_all * np.abs(mu).max())
    bad = far_x | ~(np.isfinite(mean).all(axis=1) & np.isfinite(trace))
    if bad.any():
        # |x| so large that |x - a mu|**2 loses the differences between training points (or
        # overflows): recompute those rows from the expanded logits
        a_b = np.broadcast_to(alpha, (n,))[bad]
        s2_b = np.broadcast_to(sigma2, (n,))[bad]
        mean[bad], trace[bad] = _far_moments(mu, x[bad], a_b, s2_b)
        with np.errstate(over="ignore", invalid="ignore"):  # |s| beyond float64: inf
            score = smc[:, None] * mean - isg[:, None] * x
    with np.errstate(over="ignore", invalid="ignore"):  # tr C beyond float64 (t -> 0): inf
        proxy_trace = np.where(trace > 0, pcs * trace, 0.0)
        nan_score = np.isnan(score).any(axis=1)
        if nan_score.any():  # smc mu_bar - isg x = inf - inf: use (a mu_bar - x) / sigma2
            u = a_all[nan_score, None] * mean[nan_score] - x[nan_score]
            isg_b = np.broadcast_to(isg, (n,))[nan_score, None]
            score[nan_score] = np.where(u == 0, 0.0, u * isg_b)
    frac = _scaled_frac(mean, trace, x, a_all)
    proxy_cov = pcs[:, None, None] * cov if full_cov else None
    return PosteriorStats(mean, trace, cov, score, proxy_trace, proxy_cov, frac)


#: Largest training-point entry accepted by :func:`posterior_stats` (squared distances between
#: training points, up to ``D (2 MU_LIMIT)**2``, stay finite).
MU_LIMIT = 1e150

#: Queries with ``|x| > _FAR (1 + alpha max|mu|)`` take the expanded logits (:func:`_far_moments`).
_FAR = 1e6


def _scaled_frac(mean, trace, x, alpha) -> np.ndarray:
    """``frac = a**2 tr / (a**2 tr + |a mu_bar - x|**2)``: ``tr C / (tr C + |s|**2)`` with the
    common factor ``1 / sigma**4`` cancelled (``C = a**2 / sigma**4 Sigma_post``, ``s = (a mu_bar
    - x) / sigma**2``), so it is finite for every t > 0, and both terms scaled by their maximum
    so that nothing overflows for large |x| (docs/reliability.md)."""
    r = alpha * np.sqrt(trace)  # sqrt of the numerator, computed without overflow/underflow
    u = alpha[:, None] * mean - x
    c = np.maximum(r, np.abs(u).max(axis=1))
    ok = c > 0
    cs = np.where(ok, c, 1.0)
    num_s = (r / cs) ** 2
    den = num_s + np.einsum("nd,nd->n", u / cs[:, None], u / cs[:, None])
    return np.where(ok & (den > 0), num_s / np.where(den > 0, den, 1.0), 0.0)


def _far_moments(mu, x, alpha, sigma2) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and ``tr Sigma_post`` where the logits overflow (huge |x| or tiny sigma2).

    The logits minus their common ``-|x|**2 / (2 sigma2)`` are ``f g_m`` with
    ``g_m = (x/s) . a mu_m - a**2 |mu_m|**2 / (2 s)`` (finite: ``s = max(|x|_max, a |mu|_max)``)
    and ``f = s / sigma2`` (may be inf); ``exp(f (g_m - max g))`` is 1 at the maximum and 0 (not
    NaN) elsewhere when ``f`` overflows.
    """
    s = np.maximum(np.abs(x).max(axis=1), alpha * np.abs(mu).max())
    s = np.where(s > 0, s, 1.0)  # x = 0 and alpha mu = 0: every logit is 0
    amu = alpha[:, None] * np.linalg.norm(mu, axis=1)[None, :]  # a |mu_m|, (n, M)
    g = (x / s[:, None]) @ mu.T * alpha[:, None] - 0.5 * (amu / s[:, None]) * amu
    d = g - g.max(axis=1, keepdims=True)
    with np.errstate(over="ignore", invalid="ignore"):
        w = np.where(d == 0, 1.0, np.exp((s / sigma2)[:, None] * d))
    w /= w.sum(axis=1, keepdims=True)
    mean = w @ mu
    trace = np.einsum("nm,nmd->n", w, (mu[None, :, :] - mean[:, None, :]) ** 2)
    return mean, trace


def posterior_weights(
    mu: object, x: object, t: object, schedule: object = "vp-linear", *, backend: str = "numba"
) -> np.ndarray:
    """Posterior weights ``w[n, m]`` of training point ``m`` given query ``n`` (an N x M matrix).

    For large M prefer :func:`posterior_stats`, which never forms this matrix.
    """
    sched = resolve_schedule(schedule)
    mu = check_points(mu, "mu")
    x = check_points(x, "x", dim=mu.shape[1])
    _, alpha, sigma2 = _query_times(sched, t, x.shape[0])
    alpha = np.ascontiguousarray(np.broadcast_to(alpha, (x.shape[0],)))
    sigma2 = np.ascontiguousarray(np.broadcast_to(sigma2, (x.shape[0],)))
    if backend == "numba":
        return _posterior_weights_numba(mu, x, alpha, 0.5 / sigma2)
    if backend == "numpy":
        return _softmax_rows(_logits_numpy(mu, x, alpha, 0.5 / sigma2))
    raise ValueError(f"backend must be 'numba' or 'numpy', got {backend!r}")


def proxy_covariance(
    mu: object, x: object, t: object, schedule: object = "vp-linear", *, backend: str = "numba"
) -> np.ndarray:
    """Proxy-score covariance ``C(x, t)`` as an (N, D, D) array."""
    return posterior_stats(mu, x, t, schedule, full_cov=True, backend=backend).proxy_cov


def frac_proxy_variance(
    mu: object, x: object, t: object, schedule: object = "vp-linear", *, backend: str = "numba"
) -> np.ndarray:
    """``tr C / (tr C + |s|**2)`` at each query point (the quantity of the paper's Fig. 1)."""
    return posterior_stats(mu, x, t, schedule, backend=backend).frac
