"""Posterior over training points and the proxy-score covariance (docs/math/conventions.md).

For training points ``mu`` (M x D), a query ``x`` and a time ``t``:

* ``w_m = softmax_m(-|x - alpha_t mu_m|**2 / (2 sigma_t**2))`` (log-sum-exp stable),
* ``mu_bar = sum_m w_m mu_m`` and ``Sigma_post = sum_m w_m (mu_m - mu_bar)(mu_m - mu_bar)^T``,
* the score ``s = (alpha_t mu_bar - x) / sigma_t**2``,
* the proxy-score covariance ``C = Cov[s_tilde | x, t] = (alpha_t**2 / sigma_t**4) Sigma_post``,
* ``frac = tr C / (tr C + |s|**2) = E|s_tilde - s|**2 / E|s_tilde|**2`` (the paper's Fig. 1).

Two implementations compute the same thing:

* the numba kernel (:func:`gtv.numerics.posterior_kernel.posterior_tiles`) streams over tiles
  (a block of queries x a block of training points): the tile's logits and weights (a vectorized
  exponential), its centred moments, and a merge into the running state by Chan's pairwise
  formula with a running maximum logit (an *online* softmax). It never holds an M x N matrix
  and never forms ``E[mu mu^T] - mu_bar mu_bar^T`` (which cancels catastrophically when the
  posterior is concentrated and is then multiplied by ``alpha**2/sigma**4``);
* the numpy reference forms the logits for a block of queries at once and uses centred two-pass
  moments. A test asserts that the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from gtv.numerics.checks import check_points
from gtv.numerics.fastexp import exp_block
from gtv.numerics.posterior_kernel import POINT_BLOCK, QUERY_BLOCK, posterior_tiles
from gtv.numerics.schedules import NumericSchedule, resolve_schedule

__all__ = [
    "MU_LIMIT",
    "PosteriorStats",
    "frac_proxy_variance",
    "posterior_stats",
    "posterior_weights",
    "proxy_covariance",
]


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


# -- per-point numba helpers (used by other kernels) ----------------------------------------
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
        exp_block(lg, w, nb)
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
@dataclass(frozen=True)
class _Inputs:
    """Checked inputs and per-query coefficients (arrays of length N, or 1 for a common time)."""

    mu: np.ndarray
    x: np.ndarray
    alpha: np.ndarray
    sigma2: np.ndarray
    inv_two_sigma2: np.ndarray
    smc: np.ndarray
    isg: np.ndarray
    pcs: np.ndarray
    mu_max: float


def _inputs(mu: object, x: object, t: object, schedule: object) -> _Inputs:
    sched = resolve_schedule(schedule)
    mu = check_points(mu, "mu")
    mu_max = float(np.abs(mu).max())
    if mu_max > MU_LIMIT:
        raise ValueError(
            f"mu must have entries of magnitude <= {MU_LIMIT:g} (squared distances between "
            f"training points must be representable), got {mu_max:g}"
        )
    x = check_points(x, "x", dim=mu.shape[1])
    tq, alpha, sigma2 = _query_times(sched, t, x.shape[0])
    with np.errstate(over="ignore"):  # subnormal sigma2: inf, handled by _far_moments below
        inv_two_sigma2 = 0.5 / sigma2
    smc, isg, pcs = _coefficients(sched, tq)
    return _Inputs(mu, x, alpha, sigma2, inv_two_sigma2, smc, isg, pcs, mu_max)


def _run_kernel(inp: _Inputs, full_cov: bool, frac_only: bool) -> tuple[np.ndarray, ...]:
    """:func:`gtv.numerics.posterior_kernel.posterior_tiles`, then the expanded-logit fallback for
    the queries it flags (the same formulas as the numpy reference)."""
    n, d = inp.x.shape
    bound = _FAR * (1.0 + inp.alpha * inp.mu_max)
    # The kernel writes into these (with frac_only: into frac and flagged only).
    rows = 1 if frac_only else n
    mean, score = np.empty((rows, d)), np.empty((rows, d))
    trace, ptr = np.empty(rows), np.empty(rows)
    cov = np.empty((n if full_cov else 1, d, d))
    frac, flagged = np.empty(n), np.empty(n, dtype=np.uint8)
    posterior_tiles(
        inp.mu,
        inp.x,
        inp.alpha,
        inp.inv_two_sigma2,
        inp.smc,
        inp.isg,
        inp.pcs,
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
        QUERY_BLOCK,
        POINT_BLOCK,
    )
    bad = np.flatnonzero(flagged)
    if bad.size:
        a_b, s2_b, smc_b, isg_b, pcs_b = (
            np.broadcast_to(v, (n,))[bad]
            for v in (inp.alpha, inp.sigma2, inp.smc, inp.isg, inp.pcs)
        )
        x_b = inp.x[bad]
        m_b, tr_b, cov_b = _far_moments(inp.mu, x_b, a_b, s2_b, full_cov)
        if full_cov:
            cov[bad] = cov_b
        s_b, ptr_b, frac[bad] = _outputs_numpy(m_b, tr_b, x_b, a_b, smc_b, isg_b, pcs_b)
        if not frac_only:
            mean[bad], trace[bad], score[bad], ptr[bad] = m_b, tr_b, s_b, ptr_b
    return mean, trace, cov, score, ptr, frac


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
    if backend not in ("numba", "numpy"):
        raise ValueError(f"backend must be 'numba' or 'numpy', got {backend!r}")
    inp = _inputs(mu, x, t, schedule)
    if backend == "numba":
        mean, trace, cov, score, proxy_trace, frac = _run_kernel(inp, bool(full_cov), False)
        cov = cov if full_cov else None
    else:
        mean, trace, cov, score, proxy_trace, frac = _reference(inp, bool(full_cov))
    proxy_cov = None
    if full_cov:
        with np.errstate(over="ignore", invalid="ignore"):  # C beyond float64: inf; 0 stays 0
            proxy_cov = np.where(cov != 0, inp.pcs[:, None, None] * cov, 0.0)
    return PosteriorStats(mean, trace, cov, score, proxy_trace, proxy_cov, frac)


def _reference(inp: _Inputs, full_cov: bool) -> tuple[np.ndarray, ...]:
    """The plain-numpy reference of :func:`posterior_stats` (all per-query arrays of length N)."""
    mu, x = inp.mu, inp.x
    n = x.shape[0]
    alpha, sigma2, inv_two_sigma2, smc, isg, pcs = (
        np.broadcast_to(v, (n,))
        for v in (inp.alpha, inp.sigma2, inp.inv_two_sigma2, inp.smc, inp.isg, inp.pcs)
    )
    mean, trace, cov = _posterior_moments_numpy(mu, x, alpha, inv_two_sigma2, full_cov)
    far_x = np.abs(x).max(axis=1) > _FAR * (1.0 + alpha * np.abs(mu).max())
    bad = far_x | ~(np.isfinite(mean).all(axis=1) & np.isfinite(trace))
    if bad.any():
        # |x| so large that |x - a mu|**2 loses the differences between training points (or
        # overflows): recompute those rows from the expanded logits
        mean[bad], trace[bad], cov_b = _far_moments(mu, x[bad], alpha[bad], sigma2[bad], full_cov)
        if full_cov:
            cov[bad] = cov_b
    score, proxy_trace, frac = _outputs_numpy(mean, trace, x, alpha, smc, isg, pcs)
    return mean, trace, cov, score, proxy_trace, frac


#: Largest training-point entry accepted by :func:`posterior_stats` (squared distances between
#: training points, up to ``D (2 MU_LIMIT)**2``, stay finite).
MU_LIMIT = 1e150

#: Queries with ``|x| > _FAR (1 + alpha max|mu|)`` take the expanded logits (:func:`_far_moments`).
_FAR = 1e6


def _outputs_numpy(mean, trace, x, alpha, smc, isg, pcs) -> tuple[np.ndarray, ...]:
    """Score, ``tr C`` and frac from the posterior mean and trace (arrays of length n);
    :func:`gtv.numerics.posterior_kernel.posterior_tiles` computes the same in its last step."""
    with np.errstate(over="ignore", invalid="ignore"):  # tr C, |s| beyond float64 (t -> 0): inf
        score = smc[:, None] * mean - isg[:, None] * x
        proxy_trace = np.where(trace > 0, pcs * trace, 0.0)
        nan_score = np.isnan(score).any(axis=1)
        if nan_score.any():  # smc mu_bar - isg x = inf - inf: use (a mu_bar - x) / sigma2
            u = alpha[nan_score, None] * mean[nan_score] - x[nan_score]
            score[nan_score] = np.where(u == 0, 0.0, u * isg[nan_score, None])
    return score, proxy_trace, _scaled_frac(mean, trace, x, alpha)


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


def _far_moments(mu, x, alpha, sigma2, full_cov=False) -> tuple[np.ndarray, ...]:
    """Posterior mean, ``tr Sigma_post`` and (``full_cov``; else None) ``Sigma_post`` where the
    logits overflow (huge |x| or tiny sigma2).

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
    centred = mu[None, :, :] - mean[:, None, :]
    trace = np.einsum("nm,nmd->n", w, centred**2)
    cov = np.einsum("nm,nmd,nme->nde", w, centred, centred) if full_cov else None
    return mean, trace, cov


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
    """``tr C / (tr C + |s|**2)`` at each query point (the quantity of the paper's Fig. 1).

    The same values as ``posterior_stats(mu, x, t, schedule, backend=backend).frac``; the numba
    backend writes no other per-query output (arguments and errors as there).
    """
    if backend not in ("numba", "numpy"):
        raise ValueError(f"backend must be 'numba' or 'numpy', got {backend!r}")
    inp = _inputs(mu, x, t, schedule)
    if backend == "numba":
        return _run_kernel(inp, False, True)[5]
    return _reference(inp, False)[5]
