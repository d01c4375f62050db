"""Associative-memory energy of the empirical score (docs/math/memorization.md).

For memories ``xi_mu`` (K x D) with prior weights ``pi_mu`` (uniform by default) at time ``t``:

* ``E_t(x) = -sigma2 log sum_mu pi_mu exp(-|x - alpha xi_mu|**2 / (2 sigma2))``
  (:func:`am_energy`); the score is ``-grad E / sigma2``;
* ``grad E = x - alpha m(x)`` with the posterior mean ``m`` (:func:`am_gradient`);
* ``Hess E = I - (alpha**2 / sigma2) Cov_w(xi)`` (:func:`am_hessian`).

Data coordinates ``x = alpha y`` (where attractors live): :func:`data_energy`
``= E_t(alpha y) / alpha**2`` with gradient ``y - m(alpha y)`` (:func:`data_gradient`) and
Hessian ``I - (alpha**2/sigma2) Cov_w = I - J_G`` (:func:`data_hessian`). Pham et al.'s
``E^AM_beta(y)`` (``beta = alpha**2 / (2 sigma2)``) is ``2 data_energy``.

The numba kernel works point by point (parallel over points): logits ``log pi_mu - ...``, their
maximum, weights ``exp(logit - max)`` (log-sum-exp stable; zero prior weights give zero weights),
then the energy, the weighted mean and the *centred* weighted covariance (two passes, no
``E[xi xi^T] - m m^T`` cancellation). The numpy reference forms the logits of a block of points
at once with the same two-pass moments; tests check that the two agree with each other, with
finite differences and with the sympy expressions of :mod:`gtv.theory.memory`.
"""

from __future__ import annotations

import numba
import numpy as np

from gtv.numerics.checks import check_choice, check_points
from gtv.numerics.schedules import resolve_schedule

__all__ = [
    "am_energy",
    "am_gradient",
    "am_hessian",
    "check_memory_weights",
    "data_energy",
    "data_gradient",
    "data_hessian",
    "schedule_coefficients",
]

_BACKENDS = ("numba", "numpy")


# -- input checks -------------------------------------------------------------------------------
def check_memory_weights(weights: object, K: int) -> np.ndarray:
    """Prior weights as a float64 (K,) array: finite, ``>= 0`` and summing to 1 (to 1e-9).

    ``None`` gives the uniform weights ``1/K``.
    """
    if weights is None:
        return np.full(K, 1.0 / K)
    try:
        w = np.ascontiguousarray(weights, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"weights must be a numeric array of shape (K,) = ({K},)") from exc
    if w.shape != (K,):
        raise ValueError(f"weights must have shape (K,) = ({K},), got {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("weights must be finite and >= 0")
    if abs(w.sum() - 1.0) > 1e-9:
        raise ValueError(f"weights must sum to 1 (within 1e-9), got sum {w.sum()!r}")
    return w


def schedule_coefficients(
    schedule: object, t: object, n: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """``alpha_t`` and ``sigma_t**2`` as float64 arrays of length 1 (scalar ``t``) or ``n``.

    Also returns the schedule's ``T``. ``ValueError`` unless every ``t`` is in ``(0, T]`` and
    ``t`` is a scalar or has shape ``(n,)``.
    """
    sched = resolve_schedule(schedule)
    arr = sched.check_times(t)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    elif arr.shape != (n,):
        raise ValueError(f"t must be a scalar or have shape (n,) = ({n},), got shape {arr.shape}")
    a = np.ascontiguousarray(np.atleast_1d(sched.alpha(arr)), dtype=np.float64)
    s2 = np.ascontiguousarray(np.atleast_1d(sched.sigma2(arr)), dtype=np.float64)
    if not (np.all(np.isfinite(a)) and np.all(a > 0) and np.all(np.isfinite(s2) & (s2 > 0))):
        raise ValueError(f"t gives a non-positive alpha or sigma2 for schedule {sched.name!r}")
    return a, s2, sched.T


def _prepare(memories, x, t, schedule, weights, backend, xname="x"):
    check_choice(backend, "backend", _BACKENDS)
    mu = check_points(memories, "memories")
    pts = check_points(x, xname)
    if pts.shape[1] != mu.shape[1]:
        raise ValueError(
            f"{xname} must have D = {mu.shape[1]} columns to match memories, got {pts.shape[1]}"
        )
    w = check_memory_weights(weights, mu.shape[0])
    a, s2, _ = schedule_coefficients(schedule, t, pts.shape[0])
    with np.errstate(divide="ignore"):
        logpi = np.log(w)
    return mu, pts, logpi, a, s2


# -- numba kernel -------------------------------------------------------------------------------
@numba.njit(parallel=True, cache=True, error_model="numpy")
def _am_numba(mu, logpi, x, alpha, sigma2, order):
    """Energy (order >= 0), gradient (order >= 1) and Hessian (order 2) at every row of ``x``."""
    n, d = x.shape
    k_total = mu.shape[0]
    per_point = alpha.shape[0] > 1
    energy = np.empty(n)
    grad = np.empty((n if order >= 1 else 0, d))
    hess = np.empty((n if order >= 2 else 0, d, d))
    for i in numba.prange(n):
        a = alpha[i] if per_point else alpha[0]
        s2 = sigma2[i] if per_point else sigma2[0]
        c = 0.5 / s2
        lg = np.empty(k_total)
        mx = -np.inf
        for m in range(k_total):
            d2 = 0.0
            for j in range(d):
                diff = x[i, j] - a * mu[m, j]
                d2 += diff * diff
            lg[m] = logpi[m] - d2 * c
            if lg[m] > mx:
                mx = lg[m]
        total = 0.0
        for m in range(k_total):
            lg[m] = np.exp(lg[m] - mx)  # exp(-inf) = 0 for zero prior weights
            total += lg[m]
        energy[i] = -s2 * (mx + np.log(total))
        if order >= 1:
            mean = np.zeros(d)
            for m in range(k_total):
                wm = lg[m] / total
                for j in range(d):
                    mean[j] += wm * mu[m, j]
            for j in range(d):
                grad[i, j] = x[i, j] - a * mean[j]
            if order >= 2:
                cov = np.zeros((d, d))
                dv = np.empty(d)
                for m in range(k_total):
                    wm = lg[m] / total
                    for j in range(d):
                        dv[j] = mu[m, j] - mean[j]
                    for j in range(d):
                        for e in range(j + 1):
                            cov[j, e] += wm * dv[j] * dv[e]
                scale = a * a / s2
                for j in range(d):
                    for e in range(j + 1):
                        h = -scale * cov[j, e]
                        if j == e:
                            h += 1.0
                        hess[i, j, e] = h
                        hess[i, e, j] = h
    return energy, grad, hess


# -- numpy reference ----------------------------------------------------------------------------
def _am_numpy(mu, logpi, x, alpha, sigma2, order, max_elements=2_000_000):
    n, d = x.shape
    k_total = mu.shape[0]
    a = np.broadcast_to(alpha, (n,))
    s2 = np.broadcast_to(sigma2, (n,))
    energy = np.empty(n)
    grad = np.empty((n, d)) if order >= 1 else None
    hess = np.empty((n, d, d)) if order >= 2 else None
    step = max(1, max_elements // (k_total * d))
    for q0 in range(0, n, step):
        sl = slice(q0, min(n, q0 + step))
        diff = x[sl][:, None, :] - a[sl][:, None, None] * mu[None, :, :]
        lg = logpi[None, :] - np.einsum("nkd,nkd->nk", diff, diff) / (2.0 * s2[sl][:, None])
        mx = lg.max(axis=1, keepdims=True)
        w = np.exp(lg - mx)
        total = w.sum(axis=1, keepdims=True)
        energy[sl] = -s2[sl] * (mx[:, 0] + np.log(total[:, 0]))
        if order >= 1:
            w = w / total
            mean = w @ mu
            grad[sl] = x[sl] - a[sl][:, None] * mean
            if order >= 2:
                centred = mu[None, :, :] - mean[:, None, :]
                cov = np.einsum("nk,nkd,nke->nde", w, centred, centred)
                hess[sl] = np.eye(d)[None] - (a[sl] ** 2 / s2[sl])[:, None, None] * cov
    return energy, grad, hess


def _evaluate(memories, x, t, schedule, weights, backend, order, xname="x"):
    mu, pts, logpi, a, s2 = _prepare(memories, x, t, schedule, weights, backend, xname)
    if backend == "numba":
        return _am_numba(mu, logpi, pts, a, s2, order), a
    return _am_numpy(mu, logpi, pts, a, s2, order), a


# -- public API ---------------------------------------------------------------------------------
def am_energy(
    memories: object,
    x: object,
    t: object,
    schedule: object = "vp-linear",
    weights: object = None,
    *,
    backend: str = "numba",
) -> np.ndarray:
    """``E_t(x) = -sigma2 log sum_mu pi_mu exp(-|x - alpha xi_mu|**2 / (2 sigma2))``, shape (n,).

    Parameters
    ----------
    memories : array_like, shape (K, D)
        The memories (training points) ``xi_mu``, K >= 1.
    x : array_like, shape (n, D)
        Points in x-space (noised coordinates).
    t : float or array_like, shape (n,)
        Time(s) in ``(0, T]``.
    schedule : str or NumericSchedule or gtv.theory.schedules.Schedule, default "vp-linear"
    weights : array_like, shape (K,), optional
        Prior weights ``pi_mu >= 0`` summing to 1 (default uniform ``1/K``).
    backend : {"numba", "numpy"}, default "numba"
        ``"numpy"`` runs the plain reference.

    Raises
    ------
    ValueError
        Naming the argument: non-finite or wrongly shaped ``memories``/``x``, mismatched D,
        ``t`` outside ``(0, T]``, invalid ``weights``, unknown ``backend``.
    """
    (energy, _, _), _ = _evaluate(memories, x, t, schedule, weights, backend, 0)
    return energy


def am_gradient(
    memories: object,
    x: object,
    t: object,
    schedule: object = "vp-linear",
    weights: object = None,
    *,
    backend: str = "numba",
) -> np.ndarray:
    """``grad E_t(x) = x - alpha_t m(x)``, shape (n, D) (arguments as :func:`am_energy`)."""
    (_, grad, _), _ = _evaluate(memories, x, t, schedule, weights, backend, 1)
    return grad


def am_hessian(
    memories: object,
    x: object,
    t: object,
    schedule: object = "vp-linear",
    weights: object = None,
    *,
    backend: str = "numba",
) -> np.ndarray:
    """``Hess E_t(x) = I - (alpha_t**2 / sigma_t**2) Cov_w(xi)``, shape (n, D, D)."""
    (_, _, hess), _ = _evaluate(memories, x, t, schedule, weights, backend, 2)
    return hess


def _scaled_points(memories, y, t, schedule):
    pts = check_points(y, "y")
    a, _, _ = schedule_coefficients(schedule, t, pts.shape[0])
    return pts * (a[:, None] if a.shape[0] > 1 else a[0]), a


def data_energy(
    memories: object,
    y: object,
    t: object,
    schedule: object = "vp-linear",
    weights: object = None,
    *,
    backend: str = "numba",
) -> np.ndarray:
    """``E_t(alpha_t y) / alpha_t**2`` at data-coordinate points ``y`` (n, D), shape (n,).

    Its gradient is ``y - m(alpha y)`` (:func:`data_gradient`) and its Hessian
    ``I - (alpha**2/sigma2) Cov_w`` (:func:`data_hessian`); twice it is Pham et al.'s
    ``E^AM_beta(y)`` at ``beta = alpha**2 / (2 sigma2)``.
    """
    x, a = _scaled_points(memories, y, t, schedule)
    (energy, _, _), _ = _evaluate(memories, x, t, schedule, weights, backend, 0, "y")
    return energy / a**2


def data_gradient(
    memories: object,
    y: object,
    t: object,
    schedule: object = "vp-linear",
    weights: object = None,
    *,
    backend: str = "numba",
) -> np.ndarray:
    """``y - m(alpha_t y)`` = ``y - G_t(y)``, shape (n, D)."""
    x, a = _scaled_points(memories, y, t, schedule)
    (_, grad, _), _ = _evaluate(memories, x, t, schedule, weights, backend, 1, "y")
    return grad / a[:, None]


def data_hessian(
    memories: object,
    y: object,
    t: object,
    schedule: object = "vp-linear",
    weights: object = None,
    *,
    backend: str = "numba",
) -> np.ndarray:
    """``I - (alpha_t**2 / sigma_t**2) Cov_w(xi)`` at ``x = alpha_t y`` (= ``I - J_G(y)``)."""
    x, _ = _scaled_points(memories, y, t, schedule)
    (_, _, hess), _ = _evaluate(memories, x, t, schedule, weights, backend, 2, "y")
    return hess
