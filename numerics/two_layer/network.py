"""Finite-width two-layer networks in NTK parameterization (docs/math/kernel.md).

One network maps an input ``z`` in ``R^{d_in}`` (``z = (x, e(t), 1)`` from
:func:`gtv.numerics.kernel.inputs.ntk_inputs`, ``d_in = D + 2``) to a denoiser value in ``R^D``:

    ``u_i = w_i . z / sqrt(d_in)``,   ``D^(z) = (1/sqrt(n)) sum_{i<n} a_i sigma(u_i)``,

with ``w_i`` in ``R^{d_in}`` and ``a_i`` in ``R^D`` (both trained, no separate biases: the constant
coordinate of ``z`` plays the bias), ``sigma`` = ``relu`` (``sigma'(0) = 0``) or ``erf``. An
ensemble of ``N`` networks of width ``n`` is stored as ``W`` (N, n, d_in) and ``A`` (N, n, D).

Loss and gradients (docs/math/conventions.md): on P triples with inputs ``z_j``, targets ``x0_j``
and weights ``lambda~_j``, ``L = (1/(2P)) sum_j lambda~_j |D^(z_j) - x0_j|^2``. With residuals
``r_j = lambda~_j (D^(z_j) - x0_j) / P`` the gradient is the vector-Jacobian product
``J^T r``:

    ``dL/da_i = (1/sqrt(n)) sum_j r_j sigma(u_ij)``,
    ``dL/dw_i = (1/sqrt(n d_in)) sum_j (a_i . r_j) sigma'(u_ij) z_j``.

The empirical tangent kernel and the linearized model are in
:mod:`gtv.numerics.two_layer.linearized`, the plain-numpy references in
:mod:`gtv.numerics.two_layer.reference`, the ensemble object in
:mod:`gtv.numerics.two_layer.ensemble`.

Every compiled pass is written once here and reused by the trainer
(:mod:`gtv.numerics.two_layer.training`) and the sampler (:mod:`gtv.numerics.two_layer.sampler`):
``forward_into`` (outputs of a block of inputs) and ``unit_vjp`` (gradient of one hidden unit).
Work is parallel over models (and blocks of inputs for evaluation); each model's arithmetic runs in
a fixed order, so results do not depend on the number of threads. ``fastmath`` is limited to
``{"reassoc", "contract"}`` (vectorized fixed-order reductions and fused multiply-adds; no NaN/inf
assumptions).

The forward pass sums the units ``[0, n//2)`` and ``[n//2, n)`` into separate accumulators (same
order within each) and adds them at the end, so an antisymmetric ensemble (second half = first half
with ``a`` negated) outputs exactly 0.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from gtv.numerics.fasterf import erf_block
from gtv.numerics.kernel.checks import ACTIVATIONS, check_activation

__all__ = [
    "ACTIVATIONS",
    "BLOCK",
    "FASTMATH",
    "N_BUF",
    "activation_code",
    "check_params",
    "check_targets",
    "forward",
    "forward_into",
    "forward_kernel",
    "gd_kernel",
    "gd_steps",
    "jvp",
    "jvp_kernel",
    "unit_vjp",
    "vjp",
    "vjp_kernel",
]

_RELU, _ERF = 0, 1
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
#: Inputs evaluated together by the forward kernel (one block per parallel job).
BLOCK = 256
#: Rows of the per-job work array ``buf``: pre-activations, activations, derivatives (also
#: ``exp(-u**2)`` for erf) and the back-propagated signal.
N_BUF = 4
_U, _H, _DH, _G = 0, 1, 2, 3
#: Fast-math flags of every compiled pass (module docstring).
FASTMATH = {"reassoc", "contract"}


def activation_code(activation: object) -> int:
    """Integer code of ``activation`` in the compiled kernels (its index in :data:`ACTIVATIONS`).

    ``ValueError`` unless it is one of them (:func:`gtv.numerics.kernel.checks.check_activation`).
    """
    return ACTIVATIONS.index(check_activation(activation))


# -- compiled building blocks -------------------------------------------------------------------
@numba.njit(cache=True, error_model="numpy", fastmath=FASTMATH, inline="always")
def _preactivations(w, zc, m, scale, u):
    """``u[s] = scale * sum_k w[k] zc[k, s]`` for ``s < m`` (``zc`` holds inputs as columns)."""
    c = w[0] * scale
    for s in range(m):
        u[s] = c * zc[0, s]
    for k in range(1, w.shape[0]):
        c = w[k] * scale
        for s in range(m):
            u[s] += c * zc[k, s]


@numba.njit(cache=True, error_model="numpy", fastmath=FASTMATH, inline="always")
def _activate(u, m, act, h, ex):
    """``h[s] = sigma(u[s])`` (``ex``: a work array for erf)."""
    if act == _RELU:
        for s in range(m):
            h[s] = u[s] if u[s] > 0.0 else 0.0
    else:
        erf_block(u, h, ex, m)


@numba.njit(cache=True, error_model="numpy", fastmath=FASTMATH, inline="always")
def _activate_with_derivative(u, m, act, h, dh):
    """``h[s] = sigma(u[s])`` and ``dh[s] = sigma'(u[s])`` (relu: ``sigma'(0) = 0``)."""
    if act == _RELU:
        for s in range(m):
            if u[s] > 0.0:
                h[s] = u[s]
                dh[s] = 1.0
            else:
                h[s] = 0.0
                dh[s] = 0.0
    else:
        erf_block(u, h, dh, m)  # dh = exp(-u**2)
        for s in range(m):
            dh[s] *= _TWO_OVER_SQRT_PI


@numba.njit(cache=True, error_model="numpy", fastmath=FASTMATH, inline="always")
def _accumulate_units(W, A, zc, m, act, i0, i1, scale, buf, acc):
    """``acc[c, s] = sum_{i0 <= i < i1} A[i, c] sigma(u_is)`` (units in increasing order)."""
    n_out = A.shape[1]
    u, h = buf[_U], buf[_H]
    for c in range(n_out):
        for s in range(m):
            acc[c, s] = 0.0
    for i in range(i0, i1):
        _preactivations(W[i], zc, m, scale, u)
        _activate(u, m, act, h, buf[_DH])
        for c in range(n_out):
            a = A[i, c]
            for s in range(m):
                acc[c, s] += a * h[s]


@numba.njit(cache=True, error_model="numpy", fastmath=FASTMATH)
def forward_into(W, A, zc, m, act, buf, out, tmp):
    """The forward pass: ``out[c, s] = D^_c(zc[:, s])`` for ``s < m``.

    ``W`` (n, d_in), ``A`` (n, D), ``zc`` (d_in, >= m); work arrays ``buf`` (N_BUF, >= m) and
    ``tmp`` (D, >= m). The two halves of the units are summed separately (module docstring).
    """
    n = W.shape[0]
    half = n // 2
    scale = 1.0 / math.sqrt(W.shape[1])
    _accumulate_units(W, A, zc, m, act, 0, half, scale, buf, out)
    _accumulate_units(W, A, zc, m, act, half, n, scale, buf, tmp)
    inv_sqrt_n = 1.0 / math.sqrt(n)
    for c in range(A.shape[1]):
        for s in range(m):
            out[c, s] = (out[c, s] + tmp[c, s]) * inv_sqrt_n


@numba.njit(cache=True, error_model="numpy", fastmath=FASTMATH)
def unit_vjp(w, a, zc, r, m, act, inv_sqrt_n, buf, gw, ga):
    """The backward pass of one hidden unit: its rows of ``J^T r``.

    ``ga[c] = (1/sqrt(n)) sum_s r[c, s] sigma(u_s)`` and
    ``gw[k] = (1/sqrt(n d_in)) sum_s (a . r[:, s]) sigma'(u_s) zc[k, s]``.
    """
    d = w.shape[0]
    n_out = a.shape[0]
    scale = 1.0 / math.sqrt(d)
    u, h, dh, g = buf[_U], buf[_H], buf[_DH], buf[_G]
    _preactivations(w, zc, m, scale, u)
    _activate_with_derivative(u, m, act, h, dh)
    for c in range(n_out):
        acc = 0.0
        for s in range(m):
            acc += r[c, s] * h[s]
        ga[c] = acc * inv_sqrt_n
    a0 = a[0]
    for s in range(m):
        g[s] = a0 * r[0, s]
    for c in range(1, n_out):
        ac = a[c]
        for s in range(m):
            g[s] += ac * r[c, s]
    for s in range(m):
        g[s] *= dh[s]
    for k in range(d):
        acc = 0.0
        for s in range(m):
            acc += g[s] * zc[k, s]
        gw[k] = acc * (scale * inv_sqrt_n)


# -- compiled kernels (parallel over models / blocks) -------------------------------------------
@numba.njit(parallel=True, cache=True, error_model="numpy", fastmath=FASTMATH)
def forward_kernel(W, A, zc, act):
    """Outputs (N, D, Q) of every model at inputs ``zc`` (Nz, d_in, Q), ``Nz`` in {1, N}."""
    n_models, _, d = W.shape
    n_out = A.shape[2]
    n_q = zc.shape[2]
    out = np.empty((n_models, n_out, n_q))
    n_blocks = (n_q + BLOCK - 1) // BLOCK
    for job in numba.prange(n_models * n_blocks):
        mdl = job // n_blocks
        q0 = (job % n_blocks) * BLOCK
        m = min(n_q, q0 + BLOCK) - q0
        zsrc = zc[mdl] if zc.shape[0] > 1 else zc[0]
        zb = np.empty((d, BLOCK))
        for k in range(d):
            for s in range(m):
                zb[k, s] = zsrc[k, q0 + s]
        buf = np.empty((N_BUF, BLOCK))
        acc = np.empty((n_out, BLOCK))
        tmp = np.empty((n_out, BLOCK))
        forward_into(W[mdl], A[mdl], zb, m, act, buf, acc, tmp)
        for c in range(n_out):
            for s in range(m):
                out[mdl, c, q0 + s] = acc[c, s]
    return out


@numba.njit(parallel=True, cache=True, error_model="numpy", fastmath=FASTMATH)
def vjp_kernel(W, A, zc, R, act):
    """``J^T R`` per model: ``gW`` (N, n, d_in), ``gA`` (N, n, D); ``zc`` (N, d_in, P),
    ``R`` (N, D, P)."""
    n_models, n, d = W.shape
    p = zc.shape[2]
    gW = np.empty_like(W)
    gA = np.empty_like(A)
    inv_sqrt_n = 1.0 / math.sqrt(n)
    for mdl in numba.prange(n_models):
        buf = np.empty((N_BUF, p))
        for i in range(n):
            unit_vjp(
                W[mdl, i], A[mdl, i], zc[mdl], R[mdl], p, act, inv_sqrt_n, buf, gW[mdl, i],
                gA[mdl, i],
            )  # fmt: skip
    return gW, gA


@numba.njit(parallel=True, cache=True, error_model="numpy", fastmath=FASTMATH)
def jvp_kernel(W, A, zc, dW, dA, act):
    """``J (dW, dA)`` per model: (N, D, P), i.e. the directional derivative of the outputs.

    ``out[c, s] = (1/sqrt(n)) sum_i [dA_ic sigma(u_is) + A_ic sigma'(u_is) dW_i . z_s / sqrt(d)]``.
    """
    n_models, n, d = W.shape
    n_out = A.shape[2]
    p = zc.shape[2]
    out = np.zeros((n_models, n_out, p))
    scale = 1.0 / math.sqrt(d)
    inv_sqrt_n = 1.0 / math.sqrt(n)
    for mdl in numba.prange(n_models):
        buf = np.empty((N_BUF, p))
        u, h, dh, du = buf[_U], buf[_H], buf[_DH], buf[_G]
        for i in range(n):
            _preactivations(W[mdl, i], zc[mdl], p, scale, u)
            _activate_with_derivative(u, p, act, h, dh)
            _preactivations(dW[mdl, i], zc[mdl], p, scale, du)
            for s in range(p):
                dh[s] *= du[s]
            for c in range(n_out):
                a = A[mdl, i, c]
                da = dA[mdl, i, c]
                for s in range(p):
                    out[mdl, c, s] += da * h[s] + a * dh[s]
        for c in range(n_out):
            for s in range(p):
                out[mdl, c, s] *= inv_sqrt_n
    return out


@numba.njit(parallel=True, cache=True, error_model="numpy", fastmath=FASTMATH)
def gd_kernel(W, A, zc, x0c, wr, eta, n_steps, act):
    """``n_steps`` full-batch gradient-descent steps, in place, for every model.

    ``zc`` (N, d_in, P) inputs as columns, ``x0c`` (N, D, P) targets, ``wr`` (N, P) =
    ``lambda~ / P``. Per step: the forward pass (all units) gives the residuals
    ``r = wr (D^ - x0)``; then each unit's gradient (:func:`unit_vjp`, which depends only on
    ``r`` and that unit's current weights) is computed and applied before the next unit's.
    """
    n_models, n, d = W.shape
    n_out = A.shape[2]
    p = zc.shape[2]
    inv_sqrt_n = 1.0 / math.sqrt(n)
    for mdl in numba.prange(n_models):
        buf = np.empty((N_BUF, p))
        out = np.empty((n_out, p))
        tmp = np.empty((n_out, p))
        r = np.empty((n_out, p))
        gw = np.empty(d)
        ga = np.empty(n_out)
        z = zc[mdl]
        for _ in range(n_steps):
            forward_into(W[mdl], A[mdl], z, p, act, buf, out, tmp)
            for c in range(n_out):
                for s in range(p):
                    r[c, s] = wr[mdl, s] * (out[c, s] - x0c[mdl, c, s])
            for i in range(n):
                unit_vjp(W[mdl, i], A[mdl, i], z, r, p, act, inv_sqrt_n, buf, gw, ga)
                for k in range(d):
                    W[mdl, i, k] -= eta * gw[k]
                for c in range(n_out):
                    A[mdl, i, c] -= eta * ga[c]


# -- input checking -----------------------------------------------------------------------------
def check_params(W: object, A: object) -> tuple[np.ndarray, np.ndarray]:
    """Parameters ``W`` (N, n, d_in), ``A`` (N, n, D) as C-contiguous float64, or ``ValueError``."""
    W = np.ascontiguousarray(W, dtype=np.float64)
    A = np.ascontiguousarray(A, dtype=np.float64)
    if W.ndim != 3 or A.ndim != 3 or W.shape[:2] != A.shape[:2] or min(W.shape + A.shape) < 1:
        raise ValueError(
            f"W and A must have shapes (N, n, d_in) and (N, n, D) with N, n >= 1; got {W.shape} "
            f"and {A.shape}"
        )
    return W, A


def _check_inputs(z: object, n_models: int, d_in: int, argname: str = "z") -> np.ndarray:
    """Inputs as columns: (Nz, d_in, Q) with ``Nz`` 1 (shared) or ``n_models``."""
    z = np.asarray(z, dtype=np.float64)
    if z.ndim == 2:
        z = z[None]
    if z.ndim != 3 or z.shape[2] != d_in or z.shape[0] not in (1, n_models) or z.shape[1] < 1:
        raise ValueError(
            f"{argname} must have shape (Q, d_in) or (N, Q, d_in) with d_in = {d_in}, "
            f"N = {n_models}; got {z.shape}"
        )
    if not np.all(np.isfinite(z)):
        raise ValueError(f"{argname} must be finite")
    return np.ascontiguousarray(np.swapaxes(z, 1, 2))


def _per_model_inputs(z: object, n_models: int, d_in: int) -> np.ndarray:
    zc = _check_inputs(z, n_models, d_in)
    if zc.shape[0] != n_models:
        zc = np.ascontiguousarray(np.broadcast_to(zc, (n_models,) + zc.shape[1:]))
    return zc


# -- public compiled API ------------------------------------------------------------------------
def forward(W: object, A: object, z: object, activation: str = "relu") -> np.ndarray:
    """Outputs ``D^`` of every network (numba).

    Parameters
    ----------
    W, A : ndarray, shapes (N, n, d_in) and (N, n, D)
    z : ndarray, shape (Q, d_in) (shared by all models) or (N, Q, d_in)
    activation : {"relu", "erf"}

    Returns
    -------
    ndarray, shape (N, Q, D)
    """
    act = activation_code(activation)
    W, A = check_params(W, A)
    zc = _check_inputs(z, W.shape[0], W.shape[2])
    return np.ascontiguousarray(np.swapaxes(forward_kernel(W, A, zc, act), 1, 2))


def vjp(W: object, A: object, z: object, r: object, activation: str = "relu"):
    """Vector-Jacobian products ``J^T r`` (numba): gradients of ``sum_j r_j . D^(z_j)``.

    Parameters
    ----------
    W, A : ndarray, shapes (N, n, d_in) and (N, n, D)
    z : ndarray, shape (Q, d_in) or (N, Q, d_in)
    r : ndarray, shape (N, Q, D)

    Returns
    -------
    gW, gA : ndarray, shapes (N, n, d_in) and (N, n, D)
    """
    act = activation_code(activation)
    W, A = check_params(W, A)
    zc = _per_model_inputs(z, W.shape[0], W.shape[2])
    r = np.asarray(r, dtype=np.float64)
    if r.shape != (W.shape[0], zc.shape[2], A.shape[2]):
        raise ValueError(
            f"r must have shape {(W.shape[0], zc.shape[2], A.shape[2])}, got {r.shape}"
        )
    return vjp_kernel(W, A, zc, np.ascontiguousarray(np.swapaxes(r, 1, 2)), act)


def jvp(W: object, A: object, z: object, dW: object, dA: object, activation: str = "relu"):
    """Jacobian-vector products ``J (dW, dA)`` (numba): shape (N, Q, D)."""
    act = activation_code(activation)
    W, A = check_params(W, A)
    dW, dA = check_params(dW, dA)
    if dW.shape != W.shape or dA.shape != A.shape:
        raise ValueError("dW and dA must have the shapes of W and A")
    zc = _per_model_inputs(z, W.shape[0], W.shape[2])
    return np.ascontiguousarray(np.swapaxes(jvp_kernel(W, A, zc, dW, dA, act), 1, 2))


def gd_steps(
    W: object,
    A: object,
    z: object,
    x0: object,
    weight: object,
    learning_rate: float,
    n_steps: int,
    activation: str = "relu",
) -> tuple[np.ndarray, np.ndarray]:
    """``n_steps`` of full-batch gradient descent on the weighted DSM loss (numba).

    Runs no stability check (see :func:`gtv.numerics.two_layer.stability.stability_limit`).

    Parameters
    ----------
    W, A : ndarray, shapes (N, n, d_in) and (N, n, D)
        Parameters before the first step (not modified).
    z : ndarray, shape (N, P, d_in)
    x0 : ndarray, shape (N, P, D)
        Targets (clean points).
    weight : ndarray, shape (N, P)
        ``lambda~_j``; the loss is ``(1/(2P)) sum_j weight_j |D^(z_j) - x0_j|^2``.
    learning_rate : float
    n_steps : int

    Returns
    -------
    W, A : ndarray
        Parameters after ``n_steps`` steps (new arrays).
    """
    act = activation_code(activation)
    W, A = check_params(W, A)
    W, A = W.copy(), A.copy()
    zc = _per_model_inputs(z, W.shape[0], W.shape[2])
    x0c, wr = check_targets(x0, weight, W.shape[0], zc.shape[2], A.shape[2])
    gd_kernel(W, A, zc, x0c, wr, float(learning_rate), int(n_steps), act)
    return W, A


def check_targets(
    x0: object, weight: object, n_models: int, p: int, n_out: int
) -> tuple[np.ndarray, np.ndarray]:
    """Targets as columns ``x0c`` (N, D, P) and residual weights ``weight / P`` (N, P), checked."""
    x0 = np.asarray(x0, dtype=np.float64)
    weight = np.asarray(weight, dtype=np.float64)
    if x0.shape != (n_models, p, n_out) or weight.shape != (n_models, p):
        raise ValueError(
            f"x0 and weight must have shapes {(n_models, p, n_out)} and {(n_models, p)}; got "
            f"{x0.shape} and {weight.shape}"
        )
    return np.ascontiguousarray(np.swapaxes(x0, 1, 2)), np.ascontiguousarray(weight / p)
