"""The spectral filter of lazy training and its divided differences (docs/math/kernel.md).

Lazy training of a kernel model (:mod:`gtv.numerics.kernel.regression`) acts on each eigenvalue
``x = s + rho`` of the normalized weighted kernel matrix through the filter ``g_tau(x)``:

* gradient flow:     ``g_tau(x) = (1 - exp(-lr tau x)) / x``  (``-expm1``; ``lr tau`` at
  ``x = 0``);
* gradient descent:  ``k = tau / lr`` steps (an integer), ``g(x) = (1 - (1 - lr x)**k) / x``;
* ``tau = inf``:     ``g(x) = 1/x`` (``x > rcond * x_max``, else 0).

Gradient descent is stable iff ``lr x_max < 2``
(:func:`gtv.numerics.kernel.checks.gd_stability_limit`); larger learning rates raise ``ValueError``
naming ``lr``.

The first-order theory (:mod:`gtv.numerics.kernel.theory`) needs, besides ``g = -phi[0, x]``,
the second divided difference ``phi[0, x, y]`` of ``phi(x) = exp(-lr tau x)`` or
``(1 - lr x)**k`` (:mod:`gtv.theory.ntk`). :func:`lazy_divided_differences` computes ``phi(x)``,
``phi[0, x]``, ``phi[x, y]``, ``phi[0, x, y]`` as the entries of ``phi(J)`` for the bidiagonal
``J = [[0, 1, 0], [0, x, 1], [0, 0, y]]`` (Opitz): by scaling and squaring for the flow (a
convergent Taylor series at ``|lr tau x| / 2**m <= 1/2``, then Leibniz-rule squarings, all of
whose terms have one sign) and by binary powering for gradient descent. No differences of nearly
equal numbers are formed, so clustered eigenvalues are harmless.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from gtv.numerics.kernel.checks import (
    check_flow,
    check_gd_stable,
    check_lr,
    check_tau,
    gd_step_count,
)

__all__ = ["lazy_divided_differences", "lazy_filter"]


@numba.njit(cache=True, error_model="numpy", inline="always")
def _e1(u):
    """``(1 - exp(-u)) / u`` (1 at u = 0), any sign of ``u``."""
    if u == 0.0:
        return 1.0
    return -math.expm1(-u) / u


@numba.njit(cache=True, error_model="numpy", inline="always")
def _f2_small(u, v):
    """``exp(-.)[0, u, v] = sum_n (-1)**n h_n(u, v) / (n + 2)!`` for ``|u|, |v| <= 1/2``."""
    hn = 1.0
    upow = 1.0
    fact = 2.0
    acc = 0.5
    sign = 1.0
    for n in range(1, 24):
        upow *= u
        hn = v * hn + upow
        fact *= n + 2
        sign = -sign
        acc += sign * hn / fact
    return acc


@numba.njit(cache=True, error_model="numpy", inline="always")
def _leibniz(f, g, out):
    """Divided differences of the product ``f g`` at ``(0, x, y)``.

    Layout ``(phi(0), phi(x), phi(y), phi[0,x], phi[x,y], phi[0,x,y])``.
    """
    p0 = f[0] * g[0]
    px = f[1] * g[1]
    py = f[2] * g[2]
    d0x = f[0] * g[3] + f[3] * g[1]
    dxy = f[1] * g[4] + f[4] * g[2]
    d0xy = f[0] * g[5] + f[3] * g[4] + f[5] * g[2]
    out[0] = p0
    out[1] = px
    out[2] = py
    out[3] = d0x
    out[4] = dxy
    out[5] = d0xy


@numba.njit(cache=True, error_model="numpy")
def _dd_flow(kappa, x, y, out, work):
    """Divided differences of ``exp(-kappa .)`` at ``(0, x, y)`` into ``out`` (6 entries)."""
    big = max(x, y, 0.0) * kappa
    m = 0
    while big > 0.5:
        big *= 0.5
        m += 1
    h = kappa
    for _ in range(m):
        h *= 0.5
    hx = h * x
    hy = h * y
    out[0] = 1.0
    out[1] = math.exp(-hx)
    out[2] = math.exp(-hy)
    out[3] = -h * _e1(hx)
    out[4] = -h * out[1] * _e1(hy - hx)
    out[5] = h * h * _f2_small(hx, hy)
    for _ in range(m):
        for i in range(6):
            work[i] = out[i]
        _leibniz(work, work, out)


@numba.njit(cache=True, error_model="numpy")
def _dd_gd(lr, k, x, y, out, base, work):
    """Divided differences of ``(1 - lr .)**k`` at ``(0, x, y)`` by binary powering."""
    base[0] = 1.0
    base[1] = 1.0 - lr * x
    base[2] = 1.0 - lr * y
    base[3] = -lr
    base[4] = -lr
    base[5] = 0.0
    out[0] = 1.0
    out[1] = 1.0
    out[2] = 1.0
    out[3] = 0.0
    out[4] = 0.0
    out[5] = 0.0
    n = k
    while n > 0:
        if n & 1:
            for i in range(6):
                work[i] = out[i]
            _leibniz(work, base, out)
        n >>= 1
        if n > 0:
            for i in range(6):
                work[i] = base[i]
            _leibniz(work, work, base)


@numba.njit(cache=True, error_model="numpy")
def _dd_inf(x, y, out):
    """``tau = inf``: ``phi(0) = 1``, ``phi = 0`` elsewhere (``x, y > 0``)."""
    out[0] = 1.0
    out[1] = 0.0
    out[2] = 0.0
    out[3] = -1.0 / x
    out[4] = 0.0
    out[5] = 1.0 / (x * y)


@numba.njit(parallel=True, cache=True, error_model="numpy")
def _dd_matrix(x, mode, kappa, lr, k, keep):
    """``g_k = -phi[0, x_k]`` and ``I_kl = phi[0, x_k, x_l]`` for all pairs (0 where not kept).

    ``mode``: 0 flow (``kappa = lr tau``), 1 gradient descent (``k`` steps), 2 ``tau = inf``.
    """
    r = x.shape[0]
    g = np.zeros(r)
    dd2 = np.zeros((r, r))
    for i in numba.prange(r):
        out = np.empty(6)
        base = np.empty(6)
        work = np.empty(6)
        if not keep[i]:
            continue
        for j in range(r):
            if not keep[j]:
                continue
            if mode == 0:
                _dd_flow(kappa, x[i], x[j], out, work)
            elif mode == 1:
                _dd_gd(lr, k, x[i], x[j], out, base, work)
            else:
                _dd_inf(x[i], x[j], out)
            dd2[i, j] = out[5]
            if j == i:
                g[i] = -out[3]
    return g, dd2


def _dd_reference(x: float, y: float, tau: float, lr: float, flow: str) -> np.ndarray:
    """Plain reference: entries of ``phi(J)``, ``J = [[0,1,0],[0,x,1],[0,0,y]]``, by
    ``scipy.linalg.expm`` (flow) or ``numpy.linalg.matrix_power`` (gradient descent)."""
    from scipy.linalg import expm

    J = np.array([[0.0, 1.0, 0.0], [0.0, x, 1.0], [0.0, 0.0, y]])
    if flow == "gradient-flow":
        F = expm(-lr * tau * J)
    else:
        F = np.linalg.matrix_power(np.eye(3) - lr * J, int(round(tau / lr)))
    return np.array([F[0, 0], F[1, 1], F[2, 2], F[0, 1], F[1, 2], F[0, 2]])


def _mode(tau: float, lr: float, flow: str) -> tuple[int, float, int]:
    if np.isinf(tau):
        return 2, 0.0, 0
    if flow == "gradient-flow":
        return 0, lr * tau, 0
    return 1, 0.0, int(gd_step_count(tau, lr))


def _keep_mask(x: np.ndarray, tau: float, rcond: float | None) -> np.ndarray:
    """Components used: all for finite ``tau``; ``x > rcond * x_max`` for ``tau = inf``."""
    if not np.isinf(tau):
        return np.ones(x.shape, dtype=bool)
    top = float(x.max()) if x.size else 0.0
    rc = x.size * np.finfo(float).eps if rcond is None else float(rcond)
    return x > rc * top


def lazy_divided_differences(
    x: object,
    tau: float,
    lr: float = 1.0,
    flow: str = "gradient-flow",
    *,
    rcond: float | None = None,
    backend: str = "numba",
) -> tuple[np.ndarray, np.ndarray]:
    """Filter ``g(x_k) = -phi[0, x_k]`` and ``I[k, l] = phi[0, x_k, x_l]`` (module docstring).

    Parameters
    ----------
    x : array_like, shape (r,)
        Shifted eigenvalues ``s + rho >= 0``.
    tau : float
        Training time (``inf``: converged limit; components with ``x <= rcond * x_max`` get 0).
    lr : float
        Learning rate; gradient descent takes ``k = tau / lr`` steps (an integer).
    flow : {"gradient-flow", "gradient-descent"}
    rcond : float, optional
        Cutoff for ``tau = inf`` (default ``r * machine epsilon``).
    backend : {"numba", "numpy"}
        ``"numpy"``: the 3 x 3 matrix-function reference (slow; for tests).

    Returns
    -------
    g : ndarray (r,)
    I : ndarray (r, r)
        Symmetric.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or not np.all(np.isfinite(x)) or np.any(x < 0):
        raise ValueError("x must be a 1-D array of finite numbers >= 0")
    tau = float(check_tau(tau))
    lr = check_lr(lr)
    flow = check_flow(flow)
    keep = _keep_mask(x, tau, rcond)
    if flow == "gradient-descent" and x.size:
        check_gd_stable(lr, 2.0 / float(x.max()) if x.max() > 0 else np.inf, "these eigenvalues")
    mode, kappa, k = _mode(tau, lr, flow)
    if backend == "numba":
        g, dd2 = _dd_matrix(x, mode, kappa, lr, k, keep)
    elif backend == "numpy":
        r = x.size
        g, dd2 = np.zeros(r), np.zeros((r, r))
        for i in range(r):
            for j in range(r):
                if not (keep[i] and keep[j]):
                    continue
                if mode == 2:
                    v = np.array([1.0, 0, 0, -1 / x[i], 0, 1 / (x[i] * x[j])])
                else:
                    v = _dd_reference(x[i], x[j], tau, lr, flow)
                dd2[i, j] = v[5]
                if i == j:
                    g[i] = -v[3]
    else:
        raise ValueError(f"backend must be 'numba' or 'numpy', got {backend!r}")
    return g, (dd2 + dd2.T) / 2


def lazy_filter(
    x: object,
    tau: float,
    lr: float = 1.0,
    flow: str = "gradient-flow",
    *,
    rcond: float | None = None,
) -> np.ndarray:
    """The spectral filter ``g_tau(x)`` alone (closed forms; module docstring).

    Gradient flow ``-expm1(-lr tau x) / x``; gradient descent
    ``-expm1(k log1p(-lr x)) / x`` (``lr x < 1``) or ``(1 - (1 - lr x)**k) / x``; the value at
    ``x = 0`` is ``lr tau``; ``tau = inf`` gives ``1/x`` above the cutoff, else 0.
    """
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)) or np.any(x < 0):
        raise ValueError("x must contain finite numbers >= 0")
    tau = float(check_tau(tau))
    lr = check_lr(lr)
    flow = check_flow(flow)
    out = np.zeros_like(x)
    if np.isinf(tau):
        keep = _keep_mask(x.ravel(), tau, rcond).reshape(x.shape)
        out[keep] = 1.0 / x[keep]
        if flow == "gradient-descent" and x.size and x.max() > 0:
            check_gd_stable(lr, 2.0 / float(x.max()), "these eigenvalues")
        return out
    pos = x > 0
    if flow == "gradient-flow":
        out[~pos] = lr * tau
        out[pos] = -np.expm1(-lr * tau * x[pos]) / x[pos]
        return out
    if x.size and x.max() > 0:
        check_gd_stable(lr, 2.0 / float(x.max()), "these eigenvalues")
    k = gd_step_count(tau, lr)
    out[~pos] = lr * k
    q = lr * x
    small = pos & (q < 1)
    out[small] = -np.expm1(k * np.log1p(-q[small])) / x[small]
    large = pos & (q >= 1)
    out[large] = (1.0 - (1.0 - q[large]) ** k) / x[large]
    return out
