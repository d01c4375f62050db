"""Plain-numpy references of the two-layer networks' compiled passes (for tests and benchmarks).

Each function handles one model (except :func:`gd_steps_reference`, a loop over models) and is
written with matrix products (``U = Z W^T / sqrt(d)``, ``H = sigma(U)``, ...), independently of the
numba code in :mod:`gtv.numerics.two_layer.network`, whose conventions it follows (the two halves of
the hidden units are summed separately).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erf as scipy_erf

from gtv.numerics.kernel.checks import check_activation

__all__ = [
    "activation_reference",
    "forward_reference",
    "gd_steps_reference",
    "jvp_reference",
    "vjp_reference",
]

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def activation_reference(u: np.ndarray, activation: str) -> tuple[np.ndarray, np.ndarray]:
    """``(sigma(u), sigma'(u))`` elementwise (relu: ``sigma'(0) = 0``)."""
    if activation == "relu":
        return np.maximum(u, 0.0), (u > 0).astype(float)
    return scipy_erf(u), _TWO_OVER_SQRT_PI * np.exp(-u * u)


def forward_reference(W: np.ndarray, A: np.ndarray, z: np.ndarray, activation: str = "relu"):
    """Plain-numpy :func:`forward` for one model: ``W`` (n, d_in), ``A`` (n, D), ``z`` (Q, d_in)
    -> (Q, D). The two halves of the units are summed separately, as in the kernel."""
    check_activation(activation)
    n, d = W.shape
    h, _ = activation_reference(z @ W.T / np.sqrt(d), activation)
    half = n // 2
    return (h[:, :half] @ A[:half] + h[:, half:] @ A[half:]) / np.sqrt(n)


def vjp_reference(W, A, z, r, activation="relu"):
    """Plain-numpy :func:`vjp` for one model: ``r`` (Q, D) -> ``(gW (n, d_in), gA (n, D))``."""
    n, d = W.shape
    h, dh = activation_reference(z @ W.T / np.sqrt(d), activation)
    gA = h.T @ r / np.sqrt(n)
    gW = ((r @ A.T) * dh).T @ z / np.sqrt(n * d)
    return gW, gA


def jvp_reference(W, A, z, dW, dA, activation="relu"):
    """Plain-numpy :func:`jvp` for one model -> (Q, D)."""
    n, d = W.shape
    h, dh = activation_reference(z @ W.T / np.sqrt(d), activation)
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
            h, dh = activation_reference(u, activation)
            out = (h[:, :half] @ A[m, :half] + h[:, half:] @ A[m, half:]) / sn
            r = wr * (out - x0[m])
            gA = h.T @ r / sn
            gW = ((r @ A[m].T) * dh).T @ zm / (sn * sd)
            W[m] -= learning_rate * gW
            A[m] -= learning_rate * gA
    return W, A
