"""Modern-Hopfield (CCCP) fixed points of the exact empirical score.

See docs/math/memorization.md.

In data coordinates the energy ``E^AM_beta(y) = |y|**2 - beta**-1 lse(2 beta y.xi - beta |xi|**2)``
(``beta = alpha_t**2 / (2 sigma_t**2)``) is a convex quadratic plus a concave function. The
concave-convex procedure (Yuille & Rangarajan) sets the gradient of the convex part at the new
point equal to minus the gradient of the concave part at the old one, which is

    ``y <- m(alpha_t y)``  (the posterior mean: the modern-Hopfield / softmax-attention update),

and never increases the energy. Its fixed points are the stationary points of the energy, i.e. the
fixed points of the denoiser map ``G_t(y) = m(alpha_t y)``.

The numba kernel runs the starts in parallel (``prange``; each start is independent, so results do
not depend on the number of threads) and stops each start when its step ``|y_new - y|`` (Euclidean)
is ``<= tol``. Per iteration it forms the logits ``-beta |y - xi_mu|**2`` for all memories (direct
differences, memories stored transposed so that the loop over memories vectorizes), the weights
with a vectorizable exponential (:func:`gtv.numerics.fastexp.exp_block`; logits more than 708
below the maximum give weight 0) and the weighted mean. The numpy reference iterates all still
active starts at once with the same formulas.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numba
import numpy as np

from gtv.numerics.checks import check_choice, check_count, check_points
from gtv.numerics.fastexp import exp_block
from gtv.numerics.memory.energy import schedule_coefficients

__all__ = ["HopfieldResult", "hopfield_fixed_points"]


@dataclass(frozen=True)
class HopfieldResult:
    """End points of the fixed-point iteration ``y <- m(alpha_t y)``.

    Attributes
    ----------
    points : ndarray, shape (n, D)
        End point of every start (data coordinates).
    iterations : ndarray of int64, shape (n,)
        Updates performed per start.
    converged : ndarray of bool, shape (n,)
        Whether the last step was ``<= tol``.
    step : ndarray, shape (n,)
        Length of the last step ``|y_k - y_{k-1}|``.
    n_unconverged : int
        Number of starts that hit ``max_iter`` (also reported by a ``RuntimeWarning``).
    beta : float
        Inverse temperature ``alpha_t**2 / (2 sigma_t**2)``.
    """

    points: np.ndarray
    iterations: np.ndarray
    converged: np.ndarray
    step: np.ndarray
    n_unconverged: int
    beta: float


# -- numba kernel -------------------------------------------------------------------------------
@numba.njit(parallel=True, cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _hopfield_numba(mu_t, starts, beta, tol, max_iter):
    """``mu_t`` is the (D, K) transposed memory array."""
    n, d = starts.shape
    k_total = mu_t.shape[1]
    points = np.empty((n, d))
    iterations = np.zeros(n, dtype=np.int64)
    converged = np.zeros(n, dtype=np.bool_)
    steps = np.full(n, np.inf)
    tol2 = tol * tol
    for i in numba.prange(n):
        y = starts[i].copy()
        new = np.empty(d)
        lg = np.empty(k_total)
        lgc = np.empty(k_total)
        w = np.empty(k_total)
        for it in range(max_iter):
            for m in range(k_total):
                lg[m] = 0.0
            for j in range(d):
                yj = y[j]
                for m in range(k_total):
                    diff = yj - mu_t[j, m]
                    lg[m] += diff * diff
            mx = -np.inf
            for m in range(k_total):
                lg[m] *= -beta
                mx = max(mx, lg[m])
            for m in range(k_total):
                v = lg[m] - mx
                lgc[m] = max(v, -708.0)
            exp_block(lgc, w, k_total)
            total = 0.0
            for m in range(k_total):
                if lg[m] - mx < -708.0:
                    w[m] = 0.0
                total += w[m]
            s2 = 0.0
            for j in range(d):
                acc = 0.0
                for m in range(k_total):
                    acc += w[m] * mu_t[j, m]
                new[j] = acc / total
                diff = new[j] - y[j]
                s2 += diff * diff
            for j in range(d):
                y[j] = new[j]
            iterations[i] = it + 1
            steps[i] = np.sqrt(s2)
            if s2 <= tol2:
                converged[i] = True
                break
        for j in range(d):
            points[i, j] = y[j]
    return points, iterations, converged, steps


# -- numpy reference ----------------------------------------------------------------------------
def _hopfield_numpy(mu, starts, beta, tol, max_iter, max_elements=4_000_000):
    n, d = starts.shape
    k_total = mu.shape[0]
    points = starts.copy()
    iterations = np.zeros(n, dtype=np.int64)
    converged = np.zeros(n, dtype=bool)
    steps = np.full(n, np.inf)
    active = np.arange(n)
    block = max(1, max_elements // (k_total * d))
    for it in range(max_iter):
        if active.size == 0:
            break
        new = np.empty((active.size, d))
        for q0 in range(0, active.size, block):
            y = points[active[q0 : q0 + block]]
            diff = y[:, None, :] - mu[None, :, :]
            lg = -beta * np.einsum("nkd,nkd->nk", diff, diff)
            w = np.exp(lg - lg.max(axis=1, keepdims=True))
            new[q0 : q0 + block] = (w @ mu) / w.sum(axis=1, keepdims=True)
        step = np.sqrt(np.sum((new - points[active]) ** 2, axis=1))
        points[active] = new
        iterations[active] = it + 1
        steps[active] = step
        done = step <= tol
        converged[active[done]] = True
        active = active[~done]
    return points, iterations, converged, steps


# -- public API ---------------------------------------------------------------------------------
def hopfield_fixed_points(
    memories: object,
    starts: object,
    t: float,
    schedule: object = "vp-linear",
    *,
    tol: float = 1e-10,
    max_iter: int = 10_000,
    backend: str = "numba",
) -> HopfieldResult:
    """Iterate ``y <- m(alpha_t y)`` from every start until the step is ``<= tol``.

    Parameters
    ----------
    memories : array_like, shape (K, D)
        Training points ``xi_mu`` (K >= 1), uniform prior weights.
    starts : array_like, shape (n, D)
        Start points in data coordinates.
    t : float
        Time in ``(0, T]``; sets ``beta = alpha_t**2 / (2 sigma_t**2)``.
    schedule : str or NumericSchedule or gtv.theory.schedules.Schedule, default "vp-linear"
    tol : float, default 1e-10
        Stop a start when ``|y_new - y| <= tol`` (Euclidean, data units).
    max_iter : int, default 10_000
        At most this many updates per start; starts that reach it are reported as unconverged
        (``n_unconverged`` and a ``RuntimeWarning``).
    backend : {"numba", "numpy"}, default "numba"

    Returns
    -------
    HopfieldResult
    """
    check_choice(backend, "backend", ("numba", "numpy"))
    mu = check_points(memories, "memories")
    y0 = check_points(starts, "starts")
    if y0.shape[1] != mu.shape[1]:
        raise ValueError(
            f"starts must have D = {mu.shape[1]} columns to match memories, got {y0.shape[1]}"
        )
    if np.ndim(t) != 0:
        raise ValueError(f"t must be a scalar time, got shape {np.shape(t)}")
    try:
        tol = float(tol)
    except (TypeError, ValueError):
        raise ValueError(f"tol must be a finite number > 0, got {tol!r}") from None
    if not (np.isfinite(tol) and tol > 0):
        raise ValueError(f"tol must be a finite number > 0, got {tol!r}")
    max_iter = check_count(max_iter, "max_iter", 1)
    a, s2, _ = schedule_coefficients(schedule, t, y0.shape[0])
    beta = float(a[0] ** 2 / (2.0 * s2[0]))
    if backend == "numba":
        out = _hopfield_numba(np.ascontiguousarray(mu.T), y0, beta, tol, max_iter)
    else:
        out = _hopfield_numpy(mu, y0, beta, tol, max_iter)
    points, iterations, converged, steps = out
    n_bad = int(np.count_nonzero(~converged))
    if n_bad:
        warnings.warn(
            f"hopfield_fixed_points: {n_bad} of {converged.size} starts did not converge to "
            f"tol={tol:g} within max_iter={max_iter}",
            RuntimeWarning,
            stacklevel=2,
        )
    return HopfieldResult(points, iterations, converged, steps, n_bad, beta)
