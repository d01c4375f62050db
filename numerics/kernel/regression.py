"""Lazy infinite-width two-layer networks: NTK Gram matrices and kernel gradient flow (docs/math/kernel.md).

Kernels
-------
``ntk_gram(z1, z2, activation, kernel)`` evaluates the infinite-width kernels of
:mod:`gtv.theory.ntk` (NNGP ``K``, derivative kernel ``Kdot``, NTK ``Theta = K + (z.z'/d_in) Kdot``)
for inputs built by :func:`gtv.numerics.kernel.inputs.ntk_inputs`. The numba kernel calls the functions
generated from sympy (``numerics/_generated/ntk.py``); ``backend="numpy"`` is an independent
hand-written reference. The angle between two inputs is computed as
``theta = 2 atan2(|u - v|, |u + v|)`` for the unit vectors ``u, v`` (accurate to ~1 ulp even for
nearly parallel inputs, where ``arccos`` of a rounded cosine loses half the digits).

Training in the lazy regime
---------------------------
A model is trained on P DSM triples ``(z_j, x0_j)`` with weights ``lam_j = alpha**2/sigma**2``
(``dsm_weight``), loss ``L = (1/(2P)) sum_j lam_j |D^(z_j) - x0_j|**2`` plus an optional weight
decay toward the initialization ``(rho/2) |theta - theta_0|**2`` (``ridge = rho``), from the
antisymmetric ("doubling") initialization ``D^_0 = 0`` used by the finite-width networks, which
leaves the NTK unchanged. (With a standard initialization ``D^_0`` would be a ``GP(0, K (x) I)``
draw, adding ``D^_0(z) - Theta(z, Z) beta[D^_0(Z)]`` to every model; that option is not
implemented.) In the lazy regime the network is linear in its
parameters with Jacobian ``J`` (``J J^T = Theta (x) I_D``), ``theta - theta_0 = J^T beta``, and
gradient flow ``d theta/d tau = -lr grad L`` becomes, exactly,

    ``d beta/d tau = -lr (W (Theta beta - X0) + rho beta)``,  ``W = diag(lam)/P``,
    ``D^_tau(z) = Theta(z, Z) beta_tau``.

With ``B = W^(1/2) Theta(Z, Z) W^(1/2) = U diag(s) U^T`` (the *normalized* weighted kernel
matrix: ``s = eig(Lam^(1/2) Theta Lam^(1/2)) / P``) and ``x = s + rho``:

    ``beta_tau = W^(1/2) U diag(g_tau(x)) U^T W^(1/2) X0``,

    * gradient flow:     ``g_tau(x) = (1 - exp(-lr tau x)) / x``  (``-expm1``; ``lr tau`` at
      ``x = 0``);
    * gradient descent:  ``k = tau / lr`` steps (an integer), ``g(x) = (1 - (1 - lr x)**k) / x``;
    * ``tau = inf``:     ``g(x) = 1/x`` (``x > rcond * x_max``, else 0): the minimum-norm
      interpolant for ``rho = 0`` (pseudo-inverse), kernel ridge regression
      ``D^ = Theta(z,Z) (Lam Theta + P rho I)^(-1) Lam X0`` for ``rho > 0``.

This is the guidance formula ``Theta^-1 (I - e^{-c Theta Lam})`` with ``c = lr tau / P`` in a
form that is stable as ``s -> 0``. Gradient descent is stable iff ``lr x_max < 2``:
``lr_max = 2 / (s_max + rho) = 2P / (lambda_max(Lam^(1/2) Theta Lam^(1/2)) + P rho)``
(:func:`gd_stability_limit`); larger learning rates raise ``ValueError`` naming ``lr``.

Divided differences
-------------------
The first-order theory (:mod:`gtv.numerics.kernel.theory`) needs, besides ``g``, the second divided
difference ``phi[0, x, y]`` of ``phi(x) = exp(-lr tau x)`` or ``(1 - lr x)**k``
(:mod:`gtv.theory.ntk`). :func:`lazy_divided_differences` computes ``phi(x)``, ``phi[0, x]``,
``phi[x, y]``, ``phi[0, x, y]`` as the entries of ``phi(J)`` for the bidiagonal
``J = [[0, 1, 0], [0, x, 1], [0, 0, y]]`` (Opitz): by scaling and squaring for the flow (a
convergent Taylor series at ``|lr tau x| / 2**m <= 1/2``, then Leibniz-rule squarings, all of
whose terms have one sign) and by binary powering for gradient descent. No differences of nearly
equal numbers are formed, so clustered eigenvalues are harmless.

Ensembles
---------
:func:`train_kernel_ensemble` trains N independent infinite-width models (one DSM draw each,
stream ``SeedSequence(seed).spawn(N)[n]``) and returns a :class:`KernelEnsemble`: per model the
kernel centres and the coefficients ``beta_tau`` for each requested ``tau``, so that
``D^_n(z) = Theta(z, centres_n) beta_n``. The same container holds Gaussian-field ensembles of
the theory (:meth:`gtv.numerics.kernel.theory.NTKTheory.gaussian_field_ensemble`). It is sampled with
the PF-ODE (docs/math/conventions.md: Euler or Heun on ``linspace(T, eps, n_steps + 1)``, the denoiser evaluated
exactly at each sample) by :meth:`KernelEnsemble.sample`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numba
import numpy as np
from threadpoolctl import threadpool_limits

from gtv.numerics._generated.ntk import (
    erf_derivative,
    erf_nngp,
    erf_ntk,
    relu_derivative,
    relu_nngp,
    relu_ntk,
)
from gtv.numerics.checks import check_count, check_eps, check_points, check_ridge
from gtv.numerics.io import load_result_of_kind, save_result
from gtv.numerics.kernel.inputs import check_embedding, embed_time, ntk_inputs
from gtv.numerics.linear.model import draw_dsm_triples, model_rngs
from gtv.numerics.pfode import METHODS, _euler_step, _heun_correct, initial_points, pf_ode_time_grid
from gtv.numerics.schedules import NumericSchedule, get_schedule, resolve_schedule

__all__ = [
    "ACTIVATIONS",
    "FLOWS",
    "KERNELS",
    "KernelEnsemble",
    "KernelRegression",
    "check_activation",
    "check_lr",
    "check_tau",
    "fit_kernel_regression",
    "gd_stability_limit",
    "lazy_divided_differences",
    "lazy_filter",
    "ntk_gram",
    "train_kernel_ensemble",
]

#: Activations with closed-form kernels (:mod:`gtv.theory.ntk`).
ACTIVATIONS = ("relu", "erf")
#: Kernels: NNGP, derivative kernel, NTK.
KERNELS = ("nngp", "derivative", "ntk")
#: Training dynamics: continuous-time gradient flow or gradient descent with step ``lr``.
FLOWS = ("gradient-flow", "gradient-descent")

_TWO_PI = 2.0 * math.pi
#: Single-threaded BLAS for the dense algebra: right after a numba parallel region, multi-threaded
#: OpenBLAS oversubscribes the cores (measured: 100x slower on a busy 2-core machine).
_serial_blas = threadpool_limits.wrap(limits=1, user_api="blas")


# -- input checks -------------------------------------------------------------------------------
def check_activation(activation: object) -> str:
    """Return ``activation`` if it is one of :data:`ACTIVATIONS`, else raise ``ValueError``."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    return str(activation)


def _check_kernel(kernel: object) -> str:
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    return str(kernel)


def _check_flow(flow: object) -> str:
    if flow not in FLOWS:
        raise ValueError(f"flow must be one of {FLOWS}, got {flow!r}")
    return str(flow)


def check_tau(tau: object) -> np.ndarray:
    """Training times as a float64 array (scalar or 1-D); ``ValueError`` unless each is >= 0.

    ``numpy.inf`` is allowed (the converged limit).
    """
    try:
        arr = np.asarray(tau, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"tau must be a number >= 0 (inf allowed), got {tau!r}") from None
    if arr.ndim > 1 or np.any(np.isnan(arr)) or np.any(arr < 0):
        raise ValueError(f"tau must be a scalar or 1-D array of numbers >= 0, got {tau!r}")
    return arr


def check_lr(lr: object) -> float:
    """The learning rate ``lr`` (``eta``) as a float; ``ValueError`` unless finite and > 0."""
    try:
        v = float(lr)
    except (TypeError, ValueError):
        raise ValueError(
            f"lr (learning rate eta) must be a finite number > 0, got {lr!r}"
        ) from None
    if not (np.isfinite(v) and v > 0):
        raise ValueError(f"lr (learning rate eta) must be a finite number > 0, got {lr!r}")
    return v


def _gd_steps(tau: float, lr: float) -> float:
    """``k = tau / lr`` for gradient descent; must be an integer (or inf)."""
    if np.isinf(tau):
        return np.inf
    k = tau / lr
    kr = round(k)
    if abs(k - kr) > 1e-9 * max(1.0, k):
        raise ValueError(
            f"tau: gradient descent needs tau = lr * n_steps with an integer n_steps; "
            f"got tau / lr = {k!r}"
        )
    return float(kr)


def gd_stability_limit(eigenvalues: object, ridge: float = 0.0) -> float:
    """Largest stable gradient-descent step ``lr_max = 2 / (s_max + rho)``.

    Parameters
    ----------
    eigenvalues : array_like
        Eigenvalues ``s`` of the *normalized* weighted kernel matrix
        ``W^(1/2) Theta W^(1/2)``, ``W = diag(lam)/P`` (for a training set:
        ``eig(Lam^(1/2) Theta(Z, Z) Lam^(1/2)) / P``, so ``lr_max = 2P / (lambda_max + P rho)``;
        for the population theory: the Nystrom eigenvalues).
    ridge : float
        Weight decay ``rho >= 0``.
    """
    s = np.asarray(eigenvalues, dtype=np.float64)
    if s.size == 0 or not np.all(np.isfinite(s)):
        raise ValueError("eigenvalues must be a non-empty finite array")
    top = float(s.max()) + check_ridge(ridge)
    return 2.0 / top if top > 0 else np.inf


def _check_gd_stable(lr: float, lr_max: float, what: str) -> None:
    if not lr < lr_max:
        raise ValueError(
            f"lr = {lr!r} is beyond the stability limit of gradient descent for {what}: "
            f"lr must be < lr_max = 2 / (s_max + ridge) = {lr_max:.6g}"
        )


# -- kernels (numba) ----------------------------------------------------------------------------
_ACT_CODE = {"relu": 0, "erf": 1}
_KERNEL_CODE = {"nngp": 0, "derivative": 1, "ntk": 2}


@numba.njit(cache=True, error_model="numpy", inline="always")
def _pair_value(act, kind, ui, uj, ni, nj, inv_d):
    """One kernel value for unit rows ``ui, uj`` with norms ``ni, nj`` (``inv_d = 1/d_in``).

    ``theta = 2 atan2(|u - v|, |u + v|)``, ``sin theta = |u - v| |u + v| / 2`` and
    ``cos theta = (|u + v|**2 - |u - v|**2) / 4``: no cancellation for nearly parallel inputs.
    """
    d = ui.shape[0]
    dm = 0.0
    dp = 0.0
    for k in range(d):
        x = ui[k]
        y = uj[k]
        dm += (x - y) * (x - y)
        dp += (x + y) * (x + y)
    r = ni * nj * inv_d
    a = ni * ni * inv_d
    b = nj * nj * inv_d
    c = r * 0.25 * (dp - dm)
    if act == 0:
        th = 2.0 * math.atan2(math.sqrt(dm), math.sqrt(dp))
        st = 0.5 * math.sqrt(dm * dp)
        if kind == 0:
            return relu_nngp(a, b, c, th, st)
        if kind == 1:
            return relu_derivative(a, b, c, th, st)
        return relu_ntk(a, b, c, th, st)
    if kind == 0:
        return erf_nngp(a, b, c, 0.0, 0.0)
    if kind == 1:
        return erf_derivative(a, b, c, 0.0, 0.0)
    return erf_ntk(a, b, c, 0.0, 0.0)


@numba.njit(parallel=True, cache=True, error_model="numpy")
def _gram_numba(u1, u2, n1, n2, act, kind):
    """``out[i, j] = k(z1[i], z2[j])`` from unit rows and norms; parallel over rows (each entry
    computed independently, so the result does not depend on the thread count)."""
    m1, d = u1.shape
    m2 = u2.shape[0]
    inv_d = 1.0 / d
    out = np.empty((m1, m2))
    for i in numba.prange(m1):
        for j in range(m2):
            out[i, j] = _pair_value(act, kind, u1[i], u2[j], n1[i], n2[j], inv_d)
    return out


def _unit_rows(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = np.sqrt(np.sum(z * z, axis=1))
    return np.ascontiguousarray(z / n[:, None]), n


def _gram_numpy(z1: np.ndarray, z2: np.ndarray, activation: str, kernel: str) -> np.ndarray:
    """Plain-numpy reference: the closed forms written out by hand (not the generated code)."""
    d = z1.shape[1]
    n1 = np.sqrt(np.sum(z1 * z1, axis=1))
    n2 = np.sqrt(np.sum(z2 * z2, axis=1))
    a = (n1**2 / d)[:, None]
    b = (n2**2 / d)[None, :]
    c = z1 @ z2.T / d
    if activation == "relu":
        u = z1 / n1[:, None]
        v = z2 / n2[:, None]
        dm = np.sqrt(np.sum((u[:, None, :] - v[None, :, :]) ** 2, axis=2))
        dp = np.sqrt(np.sum((u[:, None, :] + v[None, :, :]) ** 2, axis=2))
        th = 2.0 * np.arctan2(dm, dp)
        k1 = (np.sqrt(a * b) * np.sin(th) + (np.pi - th) * c) / _TWO_PI
        k0 = (np.pi - th) / _TWO_PI
    else:
        det = (1.0 + 2.0 * a) * (1.0 + 2.0 * b)
        k1 = 2.0 / np.pi * np.arcsin(2.0 * c / np.sqrt(det))
        k0 = 4.0 / np.pi / np.sqrt(det - 4.0 * c * c)
    return {"nngp": k1, "derivative": k0, "ntk": k1 + c * k0}[kernel]


def _check_inputs(z: object, argname: str, dim: int | None = None) -> np.ndarray:
    z = check_points(z, argname, dim=dim)
    if np.any(np.sum(z * z, axis=1) == 0):
        raise ValueError(f"{argname} must not contain the zero vector (use the bias coordinate)")
    return z


def ntk_gram(
    z1: object,
    z2: object = None,
    activation: str = "relu",
    kernel: str = "ntk",
    *,
    backend: str = "numba",
) -> np.ndarray:
    """Infinite-width kernel matrix ``k(z1_i, z2_j)``.

    Parameters
    ----------
    z1 : array_like, shape (n1, d_in)
        Network inputs (:func:`gtv.numerics.kernel.inputs.ntk_inputs`); no zero rows.
    z2 : array_like, shape (n2, d_in), optional
        Second set (default ``z1``).
    activation : {"relu", "erf"}
    kernel : {"nngp", "derivative", "ntk"}
        ``K = E[sigma(u) sigma(u')]``, ``Kdot = E[sigma'(u) sigma'(u')]`` or
        ``Theta = K + (z.z'/d_in) Kdot``, with ``(u, u')`` the pre-activations of one unit.
    backend : {"numba", "numpy"}
        ``"numpy"`` runs the hand-written reference.

    Returns
    -------
    ndarray, shape (n1, n2)
        For ``z2 = None`` exactly symmetric.
    """
    activation = check_activation(activation)
    kernel = _check_kernel(kernel)
    z1 = _check_inputs(z1, "z1")
    same = z2 is None
    z2 = z1 if same else _check_inputs(z2, "z2", dim=z1.shape[1])
    if backend == "numba":
        u1, n1 = _unit_rows(z1)
        u2, n2 = (u1, n1) if same else _unit_rows(z2)
        out = _gram_numba(u1, u2, n1, n2, _ACT_CODE[activation], _KERNEL_CODE[kernel])
    elif backend == "numpy":
        out = _gram_numpy(z1, z2, activation, kernel)
    else:
        raise ValueError(f"backend must be 'numba' or 'numpy', got {backend!r}")
    if same:
        out = (out + out.T) / 2
    return out


# -- divided differences of the training filter --------------------------------------------------
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
    return 1, 0.0, int(_gd_steps(tau, lr))


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
    flow = _check_flow(flow)
    keep = _keep_mask(x, tau, rcond)
    if flow == "gradient-descent" and x.size:
        _check_gd_stable(lr, 2.0 / float(x.max()) if x.max() > 0 else np.inf, "these eigenvalues")
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
    flow = _check_flow(flow)
    out = np.zeros_like(x)
    if np.isinf(tau):
        keep = _keep_mask(x.ravel(), tau, rcond).reshape(x.shape)
        out[keep] = 1.0 / x[keep]
        if flow == "gradient-descent" and x.size and x.max() > 0:
            _check_gd_stable(lr, 2.0 / float(x.max()), "these eigenvalues")
        return out
    pos = x > 0
    if flow == "gradient-flow":
        out[~pos] = lr * tau
        out[pos] = -np.expm1(-lr * tau * x[pos]) / x[pos]
        return out
    if x.size and x.max() > 0:
        _check_gd_stable(lr, 2.0 / float(x.max()), "these eigenvalues")
    k = _gd_steps(tau, lr)
    out[~pos] = lr * k
    q = lr * x
    small = pos & (q < 1)
    out[small] = -np.expm1(k * np.log1p(-q[small])) / x[small]
    large = pos & (q >= 1)
    out[large] = (1.0 - (1.0 - q[large]) ** k) / x[large]
    return out


# -- one trained model --------------------------------------------------------------------------
@dataclass
class KernelRegression:
    """A lazy infinite-width network trained on one set of P weighted examples.

    Build with :func:`fit_kernel_regression`. ``D^_tau(z) = Theta(z, Z) beta_tau`` (module
    docstring); the eigendecomposition is done once, every ``tau`` is then ``O(P**2 D)``.

    Attributes
    ----------
    z : ndarray (P, d_in)
        Training inputs (the kernel centres).
    x0 : ndarray (P, D)
        Targets.
    weights : ndarray (P,)
        Per-example weights ``lam_j`` (the DSM weight ``alpha**2/sigma**2``).
    activation : str
    ridge : float
        Weight decay ``rho`` toward the initialization.
    s : ndarray (P,)
        Eigenvalues of ``W^(1/2) Theta W^(1/2)`` (``W = diag(lam)/P``), ascending, round-off
        negatives clipped to 0.
    U : ndarray (P, P)
        Eigenvectors.
    """

    z: np.ndarray
    x0: np.ndarray
    weights: np.ndarray
    activation: str
    ridge: float
    s: np.ndarray = field(repr=False)
    U: np.ndarray = field(repr=False)
    _proj: np.ndarray = field(init=False, repr=False)
    _sqrt_w: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._sqrt_w = np.sqrt(self.weights / self.n_train)
        self._proj = self.U.T @ (self._sqrt_w[:, None] * self.x0)

    @property
    def n_train(self) -> int:
        return self.z.shape[0]

    @property
    def lr_max(self) -> float:
        """Gradient-descent stability limit ``2P / (lambda_max(Lam^1/2 Theta Lam^1/2) + P rho)``."""
        return gd_stability_limit(self.s, self.ridge)

    def filter(self, tau: float, lr: float = 1.0, flow: str = "gradient-flow") -> np.ndarray:
        """``g_tau(s + rho)`` (P,); raises for gradient descent with ``lr >= lr_max``."""
        flow = _check_flow(flow)
        if flow == "gradient-descent":
            _check_gd_stable(check_lr(lr), self.lr_max, "this training set's kernel")
        return lazy_filter(self.s + self.ridge, tau, lr, flow)

    @_serial_blas
    def coefficients(self, tau: object, lr: float = 1.0, flow: str = "gradient-flow") -> np.ndarray:
        """``beta_tau`` with ``D^_tau(z) = Theta(z, Z) beta_tau``: (P, D), or (n_tau, P, D)."""
        taus = check_tau(tau)
        out = np.stack(
            [
                self._sqrt_w[:, None] * (self.U @ (self.filter(tv, lr, flow)[:, None] * self._proj))
                for tv in np.atleast_1d(taus)
            ]
        )
        return out[0] if taus.ndim == 0 else out

    @_serial_blas
    def predict(
        self, zq: object, tau: object, lr: float = 1.0, flow: str = "gradient-flow"
    ) -> np.ndarray:
        """``D^_tau(zq)``: (n, D), or (n_tau, n, D) for an array of ``tau``."""
        K = ntk_gram(zq, self.z, self.activation)
        beta = self.coefficients(tau, lr, flow)
        return K @ beta if beta.ndim == 2 else np.einsum("np,kpd->knd", K, beta)


@_serial_blas
def fit_kernel_regression(
    z: object,
    x0: object,
    weights: object,
    activation: str = "relu",
    ridge: float = 0.0,
) -> KernelRegression:
    """Eigendecompose ``W^(1/2) Theta(Z, Z) W^(1/2)`` for one training set.

    Parameters
    ----------
    z : array_like (P, d_in)
        Inputs (:func:`gtv.numerics.kernel.inputs.ntk_inputs`).
    x0 : array_like (P, D)
        Targets.
    weights : array_like (P,)
        Per-example weights ``> 0`` (``lam_j``).
    activation : {"relu", "erf"}
    ridge : float
        Weight decay ``rho >= 0`` (module docstring).
    """
    activation = check_activation(activation)
    z = _check_inputs(z, "z")
    x0 = np.asarray(x0, dtype=np.float64)
    if x0.ndim == 1:
        x0 = x0[:, None]
    x0 = check_points(x0, "x0")
    w = np.asarray(weights, dtype=np.float64)
    if x0.shape[0] != z.shape[0] or w.shape != (z.shape[0],):
        raise ValueError(
            f"x0 and weights must have {z.shape[0]} rows like z; got {x0.shape}, {w.shape}"
        )
    if not (np.all(np.isfinite(w)) and np.all(w > 0)):
        raise ValueError("weights must be finite and > 0")
    ridge = check_ridge(ridge)
    P = z.shape[0]
    sw = np.sqrt(w / P)
    B = ntk_gram(z, None, activation) * sw[:, None] * sw[None, :]
    s, U = np.linalg.eigh(B)
    s = np.clip(s, 0.0, None)
    return KernelRegression(z, x0, w, activation, ridge, s, U)


# -- ensembles ----------------------------------------------------------------------------------
@numba.njit(cache=True, error_model="numpy", inline="always")
def _kernel_denoise(act, uq, nq, units, norms, coeffs, inv_d, out):
    """``out = sum_j Theta(zq, centres_j) coeffs_j`` (one query, as unit vector and norm)."""
    dd = coeffs.shape[1]
    for c in range(dd):
        out[c] = 0.0
    for j in range(units.shape[0]):
        v = _pair_value(act, 2, uq, units[j], nq, norms[j], inv_d)
        for c in range(dd):
            out[c] += v * coeffs[j, c]


@numba.njit(cache=True, error_model="numpy", inline="always")
def _set_query(x, e, bias, uq):
    """``uq = z / |z|`` for ``z = (x, e, bias)``; returns ``|z|``."""
    d = x.shape[0]
    acc = e * e + bias * bias
    for k in range(d):
        acc += x[k] * x[k]
    nz = math.sqrt(acc)
    for k in range(d):
        uq[k] = x[k] / nz
    uq[d] = e / nz
    uq[d + 1] = bias / nz
    return nz


@numba.njit(parallel=True, cache=True, error_model="numpy")
def _pf_ode_kernel(x, units, norms, coeffs, act, emb, bias, ts, ax, bx, heun):
    """Integrate ``x`` (N, S, D) in place; model ``n`` has ``D^ = Theta(., centres[n]) coeffs[n]``
    (centres given as unit vectors ``units`` and ``norms``; one shared set if ``units`` has a
    single entry)."""
    n_models, n_samples, d = x.shape
    n_steps = ts.shape[0] - 1
    d_in = d + 2
    inv_d = 1.0 / d_in
    # centre set of each model (an index array: mixing the prange index with an int literal in
    # a conditional would type as float)
    cidx = np.zeros(n_models, dtype=np.int64)
    if units.shape[0] > 1:
        cidx = np.arange(n_models)
    for n in numba.prange(n_models):
        cn = cidx[n]
        uq = np.empty(d_in)
        dn = np.empty(d)
        dn2 = np.empty(d)
        xt = np.empty(d)
        for i in range(n_samples):
            xi = x[n, i]
            for k in range(n_steps):
                dt = ts[k + 1] - ts[k]
                nq = _set_query(xi, emb[k], bias, uq)
                _kernel_denoise(act, uq, nq, units[cn], norms[cn], coeffs[n], inv_d, dn)
                if heun:
                    _euler_step(xi, dn, ax[k], bx[k], dt, xt, d)
                    nq = _set_query(xt, emb[k + 1], bias, uq)
                    _kernel_denoise(act, uq, nq, units[cn], norms[cn], coeffs[n], inv_d, dn2)
                    _heun_correct(xi, xt, dn, dn2, ax[k], bx[k], ax[k + 1], bx[k + 1], dt, d)
                else:
                    _euler_step(xi, dn, ax[k], bx[k], dt, xi, d)


def _pf_ode_kernel_reference(x, centres, coeffs, activation, emb, bias, ts, ax, bx, heun):
    """Plain-numpy PF-ODE for kernel ensembles (Gram matrices per step; for tests)."""
    x = x.copy()
    n_models = x.shape[0]

    def den(n, pts, k):
        zq = np.concatenate(
            [pts, np.full((pts.shape[0], 1), emb[k]), np.full((pts.shape[0], 1), bias)], axis=1
        )
        return _gram_numpy(zq, centres[min(n, centres.shape[0] - 1)], activation, "ntk") @ coeffs[n]

    for n in range(n_models):
        xs = x[n]
        for k in range(ts.size - 1):
            dt = ts[k + 1] - ts[k]
            d0 = den(n, xs, k)
            f0 = ax[k] * xs - bx[k] * d0
            if heun:
                xt = xs + dt * f0
                f1 = ax[k + 1] * xt - bx[k + 1] * den(n, xt, k + 1)
                xs = xs + 0.5 * dt * (f0 + f1)
            else:
                xs = xs + dt * f0
        x[n] = xs
    return x


@dataclass
class KernelEnsemble:
    """N kernel-expansion denoisers ``D^_n(z) = Theta(z, centres[n]) coeffs[n, k]``.

    One coefficient set per training time ``taus[k]``. Produced by :func:`train_kernel_ensemble`
    (infinite-width networks trained on independent DSM draws) and by
    :meth:`gtv.numerics.kernel.theory.NTKTheory.gaussian_field_ensemble` (the theory's Gaussian field).

    Attributes
    ----------
    centres : ndarray (N, P, d_in) or (1, P, d_in)
        Kernel centres per model, or one set shared by all models (Gaussian fields).
    coeffs : ndarray (N, n_tau, P, D)
    taus : ndarray (n_tau,)
    activation : str
    data : ndarray (M, D)
        Training points (for summaries).
    schedule : NumericSchedule
    eps : float
    embedding : str
    bias : float
        Input construction (:func:`gtv.numerics.kernel.inputs.ntk_inputs`).
    config : dict
        Everything else (``kind``, ``P``, ``lr``, ``flow``, ``ridge``, ``seed``...), JSON-safe.
    """

    centres: np.ndarray
    coeffs: np.ndarray
    taus: np.ndarray
    activation: str
    data: np.ndarray
    schedule: NumericSchedule
    eps: float
    embedding: str = "linear"
    bias: float = 1.0
    config: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.centres = np.ascontiguousarray(self.centres, dtype=np.float64)
        self.coeffs = np.ascontiguousarray(self.coeffs, dtype=np.float64)
        self.taus = np.atleast_1d(check_tau(self.taus))
        self.activation = check_activation(self.activation)
        if self.centres.ndim != 3 or self.coeffs.ndim != 4:
            raise ValueError("centres must be (N or 1, P, d_in) and coeffs (N, n_tau, P, D)")
        n, p, d_in = self.coeffs.shape[0], self.centres.shape[1], self.centres.shape[2]
        if self.centres.shape[0] not in (1, n) or self.coeffs.shape[1:3] != (self.taus.size, p):
            raise ValueError(
                f"centres {self.centres.shape} and coeffs {self.coeffs.shape} must have shapes "
                f"(N or 1, P, d_in) and (N, n_tau = {self.taus.size}, P, D)"
            )
        if d_in != self.coeffs.shape[3] + 2:
            raise ValueError("centres must have d_in = D + 2 columns")
        check_embedding(self.embedding)

    @property
    def n_models(self) -> int:
        return self.coeffs.shape[0]

    @property
    def shared_centres(self) -> bool:
        """True if all models share one set of centres (stored once)."""
        return self.centres.shape[0] == 1 and self.n_models > 1

    @property
    def dim(self) -> int:
        return self.coeffs.shape[3]

    def tau_index(self, tau: float) -> int:
        """Index of ``tau`` in :attr:`taus` (exact match, ``ValueError`` otherwise)."""
        hit = np.nonzero(self.taus == float(tau))[0]
        if hit.size == 0:
            raise ValueError(f"tau = {tau!r} is not one of this ensemble's taus {self.taus}")
        return int(hit[0])

    def inputs(self, x: object, t: object) -> np.ndarray:
        """``z = (x, e(t), bias)`` with this ensemble's embedding."""
        return ntk_inputs(x, t, self.eps, self.schedule, self.embedding, self.bias)

    @_serial_blas
    def denoiser(self, x: object, t: object, tau: float | None = None) -> np.ndarray:
        """``D^_n(x, t)`` for every model: (N, n, D) at ``tau`` (default: the only one)."""
        if tau is None:
            if self.taus.size != 1:
                raise ValueError("tau is required when the ensemble holds several taus")
            k = 0
        else:
            k = self.tau_index(tau)
        zq = self.inputs(x, t)
        if self.centres.shape[0] == 1:
            K = ntk_gram(zq, self.centres[0], self.activation)
            return np.einsum("ip,npd->nid", K, self.coeffs[:, k])
        return np.stack(
            [
                ntk_gram(zq, self.centres[n], self.activation) @ self.coeffs[n, k]
                for n in range(self.n_models)
            ]
        )

    def sample(
        self,
        n_samples: int,
        tau: float | None = None,
        *,
        n_steps: int = 30,
        method: str = "euler",
        seed: int = 0,
        x_T: np.ndarray | None = None,
        backend: str = "numba",
    ) -> np.ndarray:
        """PF-ODE samples of every model at ``t = eps``: (N, n_samples, D).

        Parameters
        ----------
        n_samples : int
            Samples per model.
        tau : float, optional
            Which training time (default: the only one).
        n_steps, method
            Euler (default, 30 steps) or Heun on ``linspace(T, eps, n_steps + 1)``.
        seed : int
            Model ``n`` draws ``x_T ~ N(0, sigma_T**2 I)`` from
            ``SeedSequence([seed, 1]).spawn(N)[n]`` (:func:`gtv.numerics.pfode.sampling_rngs`).
        x_T : ndarray (N, n_samples, D), optional
            Initial points (overrides ``seed``).
        backend : {"numba", "numpy"}
        """
        n_samples = check_count(n_samples, "n_samples")
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        k = 0 if tau is None and self.taus.size == 1 else None
        if k is None:
            if tau is None:
                raise ValueError("tau is required when the ensemble holds several taus")
            k = self.tau_index(tau)
        sched = self.schedule
        ts = pf_ode_time_grid(sched, self.eps, n_steps)
        emb = embed_time(ts, self.eps, sched, self.embedding)
        ax = np.asarray(sched.pf_x_coeff(ts), dtype=float)
        bx = np.asarray(sched.pf_mean_coeff(ts), dtype=float)
        n, d = self.n_models, self.dim
        x = initial_points(x_T, seed, n, n_samples, d, sched)
        coeffs = np.ascontiguousarray(self.coeffs[:, k])
        heun = method == "heun"
        if backend == "numba":
            norms = np.sqrt(np.sum(self.centres**2, axis=2))
            units = np.ascontiguousarray(self.centres / norms[:, :, None])
            _pf_ode_kernel(
                x, units, norms, coeffs, _ACT_CODE[self.activation], emb,
                float(self.bias), ts, ax, bx, heun,
            )  # fmt: skip
            return x
        if backend == "numpy":
            return _pf_ode_kernel_reference(
                x, self.centres, coeffs, self.activation, emb, float(self.bias), ts, ax, bx, heun
            )
        raise ValueError(f"backend must be 'numba' or 'numpy', got {backend!r}")

    def save(self, path: str | Path) -> Path:
        """Save to ``.npz`` (arrays + JSON configuration; loading never unpickles)."""
        cfg = {
            "kind": "kernel_ensemble",
            "activation": self.activation,
            "schedule": self.schedule.name,
            "T": self.schedule.T,
            "eps": self.eps,
            "embedding": self.embedding,
            "bias": self.bias,
            "config": self.config,
        }
        arrays = {
            "centres": self.centres,
            "coeffs": self.coeffs,
            "taus": self.taus,
            "data": self.data,
        }
        return save_result(path, arrays, cfg)

    @classmethod
    def load(cls, path: str | Path) -> KernelEnsemble:
        a, cfg = load_result_of_kind(path, "kernel_ensemble", "a KernelEnsemble")
        return cls(
            a["centres"],
            a["coeffs"],
            a["taus"],
            cfg["activation"],
            a["data"],
            get_schedule(cfg["schedule"], cfg["T"]),
            cfg["eps"],
            cfg["embedding"],
            cfg["bias"],
            cfg["config"],
        )


@_serial_blas
def train_kernel_ensemble(
    data: object,
    n_train: int,
    n_models: int,
    eps: float,
    taus: object,
    schedule: object = "vp-linear",
    activation: str = "relu",
    *,
    lr: float = 1.0,
    flow: str = "gradient-flow",
    ridge: float = 0.0,
    embedding: str = "linear",
    bias: float = 1.0,
    seed: int = 0,
) -> KernelEnsemble:
    """Train N lazy infinite-width networks, each on its own P DSM triples.

    Parameters
    ----------
    data : array_like (M, D)
        Training points.
    n_train : int
        P, DSM triples per model (:func:`gtv.numerics.linear.model.draw_dsm_triples`).
    n_models : int
        N.
    eps : float
        Training cutoff, ``t ~ U[eps, T]``.
    taus : float or array_like
        Training times ``>= 0`` (``inf`` allowed); coefficients are stored for each.
    schedule, activation, embedding, bias
        See :func:`gtv.numerics.kernel.inputs.ntk_inputs` and :func:`ntk_gram`.
    lr : float
        Learning rate ``eta`` (gradient flow depends only on ``lr * tau``).
    flow : {"gradient-flow", "gradient-descent"}
        For gradient descent ``tau / lr`` must be an integer and ``lr`` below every model's
        stability limit (else ``ValueError`` naming ``lr`` with the limit).
    ridge : float
        Weight decay ``rho`` toward the initialization (module docstring).
    seed : int
        Model ``n`` uses ``SeedSequence(seed).spawn(N)[n]``.

    Returns
    -------
    KernelEnsemble
        ``config`` records ``kind = "kernel-regression"``, P, lr, flow, ridge, seed and the
        per-model stability limits ``lr_max``.
    """
    sched = resolve_schedule(schedule)
    data = check_points(data, "data")
    n_train = check_count(n_train, "n_train (P)")
    n_models = check_count(n_models, "n_models")
    eps = check_eps(eps, sched.T)
    taus = np.atleast_1d(check_tau(taus))
    lr = check_lr(lr)
    flow = _check_flow(flow)
    ridge = check_ridge(ridge)
    activation = check_activation(activation)
    check_embedding(embedding)
    D = data.shape[1]
    centres = np.empty((n_models, n_train, D + 2))
    coeffs = np.empty((n_models, taus.size, n_train, D))
    lr_max = np.empty(n_models)
    for n, rng in enumerate(model_rngs(seed, n_models)):
        t, x0, x = draw_dsm_triples(rng, data, n_train, eps, sched)
        z = ntk_inputs(x, t, eps, sched, embedding, bias)
        model = fit_kernel_regression(z, x0, sched.dsm_weight(t), activation, ridge)
        lr_max[n] = model.lr_max
        centres[n] = z
        coeffs[n] = model.coefficients(taus, lr, flow)
    cfg = {
        "kind": "kernel-regression",
        "P": n_train,
        "lr": lr,
        "flow": flow,
        "ridge": ridge,
        "seed": int(seed),
        "lr_max": lr_max.tolist(),
    }
    return KernelEnsemble(centres, coeffs, taus, activation, data, sched, eps, embedding, bias, cfg)
