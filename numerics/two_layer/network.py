"""Finite-width two-layer networks in NTK parameterization (docs/math/kernel.md; issue 6, item 4).

One network maps an input ``z`` in ``R^{d_in}`` (``z = (x, e(t), 1)`` from
:func:`gtv.numerics.kernel.inputs.ntk_inputs`, ``d_in = D + 2``) to a denoiser value in ``R^D``:

    ``u_i = w_i . z / sqrt(d_in)``,   ``D^(z) = (1/sqrt(n)) sum_{i<n} a_i sigma(u_i)``,

with ``w_i`` in ``R^{d_in}`` and ``a_i`` in ``R^D`` (both trained, no separate biases: the constant
coordinate of ``z`` plays the bias), ``sigma`` = ``relu`` (``sigma'(0) = 0``) or ``erf``. An
ensemble of ``N`` networks of width ``n`` is stored as ``W`` (N, n, d_in) and ``A`` (N, n, D).

Loss and gradients (docs/math/conventions.md): on P triples with inputs ``z_j``, targets ``x0_j`` and weights
``lambda~_j``, ``L = (1/(2P)) sum_j lambda~_j |D^(z_j) - x0_j|^2``. With residuals
``r_j = lambda~_j (D^(z_j) - x0_j) / P`` the gradient is the vector-Jacobian product
``J^T r``:

    ``dL/da_i = (1/sqrt(n)) sum_j r_j sigma(u_ij)``,
    ``dL/dw_i = (1/sqrt(n d_in)) sum_j (a_i . r_j) sigma'(u_ij) z_j``.

Empirical tangent kernel (the Gram matrix of the output Jacobian, ``J J^T``), for outputs
``c, c'``:

    ``Theta_cc'(z, z') = (1/n) sum_i [ delta_cc' sigma(u_i) sigma(u'_i)
                                        + a_ic a_ic' sigma'(u_i) sigma'(u'_i) (z . z') / d_in ]``.

The second term couples the outputs at finite width (it averages to ``delta_cc'`` times a scalar
kernel only as ``n -> infinity``). Gradient descent with rate ``eta`` on the linearized model moves
the weighted residual ``Lambda^{1/2} e`` by ``I - (eta/P) G`` with
``G = Lambda^{1/2} Theta Lambda^{1/2}`` ((P D) x (P D)); see :func:`linearized_predictions`.

Every compiled pass is written once here and reused by the trainer
(:mod:`gtv.numerics.two_layer.training`) and the sampler (:mod:`gtv.numerics.two_layer.sampler`):
``_forward_into`` (outputs of a block of inputs) and ``_unit_vjp`` (gradient of one hidden unit).
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
from dataclasses import dataclass

import numba
import numpy as np
from scipy.special import erf as _erf_np

from gtv.numerics.fasterf import erf_block
from gtv.numerics.kernel.inputs import check_embedding, ntk_inputs
from gtv.numerics.schedules import NumericSchedule

__all__ = [
    "ACTIVATIONS",
    "TwoLayerNetworks",
    "check_activation",
    "empirical_ntk",
    "forward",
    "forward_reference",
    "gd_steps",
    "gd_steps_reference",
    "jvp",
    "jvp_reference",
    "linearized_predictions",
    "vjp",
    "vjp_reference",
]

#: Allowed activations (``sigma``).
ACTIVATIONS = ("relu", "erf")
_RELU, _ERF = 0, 1
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
#: Inputs evaluated together by the forward kernel (one block per parallel job).
BLOCK = 256
#: Rows of the per-job work array ``buf``: pre-activations, activations, derivatives (also
#: ``exp(-u**2)`` for erf), the back-propagated signal, and scratch.
N_BUF = 5
_U, _H, _DH, _G, _SCRATCH = 0, 1, 2, 3, 4
_FASTMATH = {"reassoc", "contract"}


def check_activation(activation: object) -> int:
    """Integer code of ``activation`` (one of :data:`ACTIVATIONS`) or ``ValueError``."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    return ACTIVATIONS.index(activation)


# -- compiled building blocks -------------------------------------------------------------------
@numba.njit(cache=True, error_model="numpy", fastmath=_FASTMATH, inline="always")
def _preactivations(w, zc, m, scale, u):
    """``u[s] = scale * sum_k w[k] zc[k, s]`` for ``s < m`` (``zc`` holds inputs as columns)."""
    c = w[0] * scale
    for s in range(m):
        u[s] = c * zc[0, s]
    for k in range(1, w.shape[0]):
        c = w[k] * scale
        for s in range(m):
            u[s] += c * zc[k, s]


@numba.njit(cache=True, error_model="numpy", fastmath=_FASTMATH, inline="always")
def _activate(u, m, act, h, ex, scratch):
    """``h[s] = sigma(u[s])`` (``ex``, ``scratch``: work arrays for erf)."""
    if act == _RELU:
        for s in range(m):
            h[s] = u[s] if u[s] > 0.0 else 0.0
    else:
        erf_block(u, h, ex, scratch, m)


@numba.njit(cache=True, error_model="numpy", fastmath=_FASTMATH, inline="always")
def _activate_with_derivative(u, m, act, h, dh, scratch):
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
        erf_block(u, h, dh, scratch, m)  # dh = exp(-u**2)
        for s in range(m):
            dh[s] *= _TWO_OVER_SQRT_PI


@numba.njit(cache=True, error_model="numpy", fastmath=_FASTMATH, inline="always")
def _accumulate_units(W, A, zc, m, act, i0, i1, scale, buf, acc):
    """``acc[c, s] = sum_{i0 <= i < i1} A[i, c] sigma(u_is)`` (units in increasing order)."""
    n_out = A.shape[1]
    u, h = buf[_U], buf[_H]
    for c in range(n_out):
        for s in range(m):
            acc[c, s] = 0.0
    for i in range(i0, i1):
        _preactivations(W[i], zc, m, scale, u)
        _activate(u, m, act, h, buf[_DH], buf[_SCRATCH])
        for c in range(n_out):
            a = A[i, c]
            for s in range(m):
                acc[c, s] += a * h[s]


@numba.njit(cache=True, error_model="numpy", fastmath=_FASTMATH)
def _forward_into(W, A, zc, m, act, buf, out, tmp):
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


@numba.njit(cache=True, error_model="numpy", fastmath=_FASTMATH)
def _unit_vjp(w, a, zc, r, m, act, inv_sqrt_n, buf, gw, ga):
    """The backward pass of one hidden unit: its rows of ``J^T r``.

    ``ga[c] = (1/sqrt(n)) sum_s r[c, s] sigma(u_s)`` and
    ``gw[k] = (1/sqrt(n d_in)) sum_s (a . r[:, s]) sigma'(u_s) zc[k, s]``.
    """
    d = w.shape[0]
    n_out = a.shape[0]
    scale = 1.0 / math.sqrt(d)
    u, h, dh, g = buf[_U], buf[_H], buf[_DH], buf[_G]
    _preactivations(w, zc, m, scale, u)
    _activate_with_derivative(u, m, act, h, dh, buf[_SCRATCH])
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
@numba.njit(parallel=True, cache=True, error_model="numpy", fastmath=_FASTMATH)
def _forward_kernel(W, A, zc, act):
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
        _forward_into(W[mdl], A[mdl], zb, m, act, buf, acc, tmp)
        for c in range(n_out):
            for s in range(m):
                out[mdl, c, q0 + s] = acc[c, s]
    return out


@numba.njit(parallel=True, cache=True, error_model="numpy", fastmath=_FASTMATH)
def _vjp_kernel(W, A, zc, R, act):
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
            _unit_vjp(
                W[mdl, i], A[mdl, i], zc[mdl], R[mdl], p, act, inv_sqrt_n, buf, gW[mdl, i],
                gA[mdl, i],
            )  # fmt: skip
    return gW, gA


@numba.njit(parallel=True, cache=True, error_model="numpy", fastmath=_FASTMATH)
def _jvp_kernel(W, A, zc, dW, dA, act):
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
            _activate_with_derivative(u, p, act, h, dh, buf[_SCRATCH])
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


@numba.njit(parallel=True, cache=True, error_model="numpy", fastmath=_FASTMATH)
def _gd_kernel(W, A, zc, x0c, wr, eta, n_steps, act):
    """``n_steps`` full-batch gradient-descent steps, in place, for every model.

    ``zc`` (N, d_in, P) inputs as columns, ``x0c`` (N, D, P) targets, ``wr`` (N, P) =
    ``lambda~ / P``. Per step: the forward pass (all units) gives the residuals
    ``r = wr (D^ - x0)``; then each unit's gradient (:func:`_unit_vjp`, which depends only on
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
            _forward_into(W[mdl], A[mdl], z, p, act, buf, out, tmp)
            for c in range(n_out):
                for s in range(p):
                    r[c, s] = wr[mdl, s] * (out[c, s] - x0c[mdl, c, s])
            for i in range(n):
                _unit_vjp(W[mdl, i], A[mdl, i], z, r, p, act, inv_sqrt_n, buf, gw, ga)
                for k in range(d):
                    W[mdl, i, k] -= eta * gw[k]
                for c in range(n_out):
                    A[mdl, i, c] -= eta * ga[c]


# -- input checking -----------------------------------------------------------------------------
def _check_params(W: object, A: object) -> tuple[np.ndarray, np.ndarray]:
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
    act = check_activation(activation)
    W, A = _check_params(W, A)
    zc = _check_inputs(z, W.shape[0], W.shape[2])
    return np.ascontiguousarray(np.swapaxes(_forward_kernel(W, A, zc, act), 1, 2))


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
    act = check_activation(activation)
    W, A = _check_params(W, A)
    zc = _per_model_inputs(z, W.shape[0], W.shape[2])
    r = np.asarray(r, dtype=np.float64)
    if r.shape != (W.shape[0], zc.shape[2], A.shape[2]):
        raise ValueError(
            f"r must have shape {(W.shape[0], zc.shape[2], A.shape[2])}, got {r.shape}"
        )
    return _vjp_kernel(W, A, zc, np.ascontiguousarray(np.swapaxes(r, 1, 2)), act)


def jvp(W: object, A: object, z: object, dW: object, dA: object, activation: str = "relu"):
    """Jacobian-vector products ``J (dW, dA)`` (numba): shape (N, Q, D)."""
    act = check_activation(activation)
    W, A = _check_params(W, A)
    dW, dA = _check_params(dW, dA)
    if dW.shape != W.shape or dA.shape != A.shape:
        raise ValueError("dW and dA must have the shapes of W and A")
    zc = _per_model_inputs(z, W.shape[0], W.shape[2])
    return np.ascontiguousarray(np.swapaxes(_jvp_kernel(W, A, zc, dW, dA, act), 1, 2))


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

    Runs no stability check (see :func:`gtv.numerics.two_layer.training.stability_limit`).

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
    act = check_activation(activation)
    W, A = _check_params(W, A)
    W, A = W.copy(), A.copy()
    zc = _per_model_inputs(z, W.shape[0], W.shape[2])
    x0c, wr = _check_targets(x0, weight, W.shape[0], zc.shape[2], A.shape[2])
    _gd_kernel(W, A, zc, x0c, wr, float(learning_rate), int(n_steps), act)
    return W, A


def _check_targets(x0, weight, n_models, p, n_out):
    x0 = np.asarray(x0, dtype=np.float64)
    weight = np.asarray(weight, dtype=np.float64)
    if x0.shape != (n_models, p, n_out) or weight.shape != (n_models, p):
        raise ValueError(
            f"x0 and weight must have shapes {(n_models, p, n_out)} and {(n_models, p)}; got "
            f"{x0.shape} and {weight.shape}"
        )
    return np.ascontiguousarray(np.swapaxes(x0, 1, 2)), np.ascontiguousarray(weight / p)


# -- plain-numpy references ---------------------------------------------------------------------
def _sigma_np(u: np.ndarray, activation: str) -> tuple[np.ndarray, np.ndarray]:
    if activation == "relu":
        return np.maximum(u, 0.0), (u > 0).astype(float)
    return _erf_np(u), _TWO_OVER_SQRT_PI * np.exp(-u * u)


def forward_reference(W: np.ndarray, A: np.ndarray, z: np.ndarray, activation: str = "relu"):
    """Plain-numpy :func:`forward` for one model: ``W`` (n, d_in), ``A`` (n, D), ``z`` (Q, d_in)
    -> (Q, D). The two halves of the units are summed separately, as in the kernel."""
    check_activation(activation)
    n, d = W.shape
    h, _ = _sigma_np(z @ W.T / np.sqrt(d), activation)
    half = n // 2
    return (h[:, :half] @ A[:half] + h[:, half:] @ A[half:]) / np.sqrt(n)


def vjp_reference(W, A, z, r, activation="relu"):
    """Plain-numpy :func:`vjp` for one model: ``r`` (Q, D) -> ``(gW (n, d_in), gA (n, D))``."""
    n, d = W.shape
    h, dh = _sigma_np(z @ W.T / np.sqrt(d), activation)
    gA = h.T @ r / np.sqrt(n)
    gW = ((r @ A.T) * dh).T @ z / np.sqrt(n * d)
    return gW, gA


def jvp_reference(W, A, z, dW, dA, activation="relu"):
    """Plain-numpy :func:`jvp` for one model -> (Q, D)."""
    n, d = W.shape
    h, dh = _sigma_np(z @ W.T / np.sqrt(d), activation)
    du = z @ dW.T / np.sqrt(d)
    return (h @ dA + (dh * du) @ A) / np.sqrt(n)


def gd_steps_reference(W, A, z, x0, weight, learning_rate, n_steps, activation="relu"):
    """Plain-numpy :func:`gd_steps` (also the benchmark's baseline): a loop over models, each
    step written with matrix products (``U = Z W^T / sqrt(d)``, ``H = sigma(U)``, ...)."""
    check_activation(activation)
    W = np.array(W, dtype=np.float64)
    A = np.array(A, dtype=np.float64)
    n_models, n, d = W.shape
    p = z.shape[1]
    sd, sn = np.sqrt(d), np.sqrt(n)
    half = n // 2
    for m in range(n_models):
        zm, wr = z[m], weight[m][:, None] / p
        for _ in range(n_steps):
            u = zm @ W[m].T / sd
            h, dh = _sigma_np(u, activation)
            out = (h[:, :half] @ A[m, :half] + h[:, half:] @ A[m, half:]) / sn
            r = wr * (out - x0[m])
            gA = h.T @ r / sn
            gW = ((r @ A[m].T) * dh).T @ zm / (sn * sd)
            W[m] -= learning_rate * gW
            A[m] -= learning_rate * gA
    return W, A


# -- tangent kernel and the linearized model ----------------------------------------------------
def empirical_ntk(
    W: np.ndarray, A: np.ndarray, z1: np.ndarray, z2: np.ndarray, activation: str = "relu"
) -> np.ndarray:
    """Empirical tangent kernel ``J(z1) J(z2)^T`` of one network (numpy; module docstring).

    Parameters
    ----------
    W, A : ndarray, shapes (n, d_in) and (n, D)
    z1, z2 : ndarray, shapes (Q1, d_in), (Q2, d_in)

    Returns
    -------
    ndarray, shape (Q1, D, Q2, D)
        ``Theta[q, c, q', c']``.
    """
    check_activation(activation)
    n, d = W.shape
    n_out = A.shape[1]
    h1, s1 = _sigma_np(z1 @ W.T / np.sqrt(d), activation)
    h2, s2 = _sigma_np(z2 @ W.T / np.sqrt(d), activation)
    feat = h1 @ h2.T / n  # (Q1, Q2)
    zz = z1 @ z2.T / d
    grad = np.einsum("qi,ic,ie,pi->qcpe", s1, A, A, s2, optimize=True) / n
    theta = grad * zz[:, None, :, None]
    theta += feat[:, None, :, None] * np.eye(n_out)[None, :, None, :]
    return theta


def _gd_filter(g: np.ndarray, learning_rate: float, n_samples: int, steps: np.ndarray):
    """``phi_k(g) = (eta/P) sum_{m<k} (1 - eta g/P)**m = (1 - (1 - eta g/P)**k) / g`` (K, G).

    Written as ``-(eta/P) expm1(k log1p(-x)) / x`` with ``x = eta g / P`` (no cancellation at small
    ``x``), ``eta k / P`` at ``x = 0``, and by direct powers for ``x >= 1``.
    """
    x = learning_rate * np.clip(g, 0.0, None) / n_samples
    k = np.asarray(steps, dtype=float)[:, None]
    out = np.empty((k.shape[0], x.shape[0]))
    small = x < 1.0
    pos = small & (x > 0)
    out[:, pos] = -np.expm1(k * np.log1p(-x[pos])) / x[pos]
    out[:, ~small] = (1.0 - (1.0 - x[~small]) ** k) / x[~small]
    out[:, x == 0] = k
    return out * (learning_rate / n_samples)


def _gf_filter(g: np.ndarray, n_samples: int, taus: np.ndarray):
    """Gradient flow: ``phi_tau(g) = (1 - exp(-tau g / P)) / g`` (K, G)."""
    g = np.clip(g, 0.0, None)
    tau = np.asarray(taus, dtype=float)[:, None]
    out = np.empty((tau.shape[0], g.shape[0]))
    pos = g > 0
    out[:, pos] = -np.expm1(-tau * g[pos] / n_samples) / g[pos]
    out[:, ~pos] = tau / n_samples
    return out


def linearized_predictions(
    W0: np.ndarray,
    A0: np.ndarray,
    z: np.ndarray,
    x0: np.ndarray,
    weight: np.ndarray,
    z_query: np.ndarray,
    learning_rate: float,
    steps: object,
    activation: str = "relu",
    flow: str = "gd",
) -> np.ndarray:
    """Predictions of one network's linearization around ``(W0, A0)`` trained on the DSM loss.

    The linearized model ``f(theta) = f_0 + J (theta - theta_0)`` trained by gradient descent
    (``flow="gd"``: ``k`` steps of rate ``eta``, exactly what the network does in the lazy limit)
    or gradient flow (``flow="gf"``: time ``tau = eta k``) predicts at a query ``q``

        ``f_k(q) = f_0(q) - Theta(q, Z) Lambda^{1/2} U phi_k(g) U^T Lambda^{1/2} (f_0(Z) - X0)``,

    with ``G = Lambda^{1/2} Theta(Z, Z) Lambda^{1/2} = U diag(g) U^T`` (Theta the empirical kernel
    at ``theta_0``, :func:`empirical_ntk`), ``phi_k(g) = (1 - (1 - eta g/P)**k) / g`` (GD) or
    ``(1 - exp(-tau g/P)) / g`` (GF).

    Parameters
    ----------
    W0, A0 : ndarray, shapes (n, d_in), (n, D)
    z, x0, weight : ndarray, shapes (P, d_in), (P, D), (P,)
        Training inputs, targets and weights ``lambda~``.
    z_query : ndarray, shape (Q, d_in)
    learning_rate : float
    steps : array_like of int, shape (K,)
        Step counts ``k`` (``tau = eta k``).

    Returns
    -------
    ndarray, shape (K, Q, D)

    Cost: the (P D) x (P D) kernel and its eigendecomposition; meant for P D up to a few thousand.
    """
    if flow not in ("gd", "gf"):
        raise ValueError(f"flow must be 'gd' or 'gf', got {flow!r}")
    p, n_out = x0.shape
    theta_zz = empirical_ntk(W0, A0, z, z, activation).reshape(p * n_out, p * n_out)
    theta_qz = empirical_ntk(W0, A0, z_query, z, activation)
    q = z_query.shape[0]
    theta_qz = theta_qz.reshape(q * n_out, p * n_out)
    sw = np.repeat(np.sqrt(weight), n_out)
    g, U = np.linalg.eigh(sw[:, None] * theta_zz * sw[None, :])
    f0_train = forward_reference(W0, A0, z, activation).reshape(-1)
    f0_query = forward_reference(W0, A0, z_query, activation).reshape(-1)
    coeff = U.T @ (sw * (f0_train - x0.reshape(-1)))
    steps = np.asarray(steps)
    filt = (
        _gd_filter(g, learning_rate, p, steps)
        if flow == "gd"
        else _gf_filter(g, p, learning_rate * steps)
    )
    left = (theta_qz * sw[None, :]) @ U  # (Q D, G)
    out = f0_query[None, :] - (filt * coeff[None, :]) @ left.T
    return out.reshape(steps.shape[0], q, n_out)


# -- the ensemble object ------------------------------------------------------------------------
@dataclass
class TwoLayerNetworks:
    """``N`` two-layer denoisers ``D^_m(x, t)`` at one parameter state.

    Attributes
    ----------
    W : ndarray, shape (N, n, d_in)
        First-layer weights (``d_in = D + 2``).
    A : ndarray, shape (N, n, D)
        Output weights.
    activation : {"relu", "erf"}
    schedule : NumericSchedule
    eps : float
        The training cutoff (enters the time embedding).
    embedding : {"linear", "log-sigma"}
    bias : float
        The constant input coordinate.
    """

    W: np.ndarray
    A: np.ndarray
    activation: str
    schedule: NumericSchedule
    eps: float
    embedding: str = "linear"
    bias: float = 1.0

    def __post_init__(self) -> None:
        self.W, self.A = _check_params(self.W, self.A)
        check_activation(self.activation)
        check_embedding(self.embedding)
        if self.W.shape[2] != self.A.shape[2] + 2:
            raise ValueError(
                f"W must have d_in = D + 2 = {self.A.shape[2] + 2} columns, got {self.W.shape[2]}"
            )

    @property
    def n_models(self) -> int:
        return self.W.shape[0]

    @property
    def width(self) -> int:
        return self.W.shape[1]

    @property
    def dim(self) -> int:
        """D, the data dimension."""
        return self.A.shape[2]

    def inputs(self, x: object, t: object) -> np.ndarray:
        """Network inputs ``z = (x, e(t), bias)``, shape (Q, D + 2)."""
        z = ntk_inputs(x, t, self.eps, self.schedule, self.embedding, self.bias)
        if z.shape[1] != self.W.shape[2]:
            raise ValueError(f"x must have D = {self.dim} columns, got {z.shape[1] - 2}")
        return z

    def denoise(self, x: object, t: object) -> np.ndarray:
        """``D^_m(x_q, t_q)`` for every model: shape (N, Q, D). ``x`` (Q, D) (or (Q,) if D = 1),
        ``t`` scalar or (Q,)."""
        return forward(self.W, self.A, self.inputs(x, t), self.activation)

    def denoise_inputs(self, z: object) -> np.ndarray:
        """``D^_m`` at prepared inputs ``z`` (Q, d_in) or (N, Q, d_in): shape (N, Q, D)."""
        return forward(self.W, self.A, z, self.activation)

    def score(self, x: object, t: object) -> np.ndarray:
        """``s^ = (alpha_t D^ - x) / sigma_t**2``: shape (N, Q, D)."""
        z = self.inputs(x, t)
        tq = np.broadcast_to(np.asarray(t, dtype=float), (z.shape[0],))
        d_hat = forward(self.W, self.A, z, self.activation)
        alpha = self.schedule.alpha(tq)[None, :, None]
        return (alpha * d_hat - z[None, :, : self.dim]) / self.schedule.sigma2(tq)[None, :, None]

    def empirical_ntk(self, model: int, z1: np.ndarray, z2: np.ndarray) -> np.ndarray:
        """:func:`empirical_ntk` of network ``model``: shape (Q1, D, Q2, D)."""
        return empirical_ntk(self.W[model], self.A[model], z1, z2, self.activation)
