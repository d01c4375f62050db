"""The stability limit of gradient descent for two-layer networks at initialization.

Near the initial parameters the loss Hessian is the Gauss-Newton matrix
``(1/P) J^T Lambda J`` (plus a residual term that vanishes as ``n -> infinity``); gradient descent
on the linearized model is stable iff ``eta < eta_max = 2 P / lambda_max(G)`` with
``G = Lambda^{1/2} J J^T Lambda^{1/2} = Lambda^{1/2} Theta Lambda^{1/2}``, the (P D) x (P D)
weighted empirical tangent-kernel Gram matrix at initialization (all output blocks, including the
off-diagonal ones of D > 1). ``lambda_max(G)`` is computed per model by Lanczos iteration with full
reorthogonalization on the operator ``v -> Lambda^{1/2} J J^T Lambda^{1/2} v`` (one backward and one
forward-mode pass per iteration, never forming G); the returned value is the largest Ritz value
plus its residual bound ``beta_k |s_k|`` (an interval that contains an eigenvalue), so it errs on
the safe side by at most ``rtol`` relative. The start vector of model ``m`` comes from
``model_rngs(seed, "lanczos", N)[m]`` (:mod:`gtv.numerics.streams`).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import eigh_tridiagonal

from gtv.numerics.blas import serial_blas
from gtv.numerics.streams import model_rngs
from gtv.numerics.two_layer.init import TwoLayerInit
from gtv.numerics.two_layer.network import activation_code, jvp_kernel, vjp_kernel

__all__ = ["gauss_newton_lmax", "stability_limit"]


def gauss_newton_lmax(
    W: np.ndarray,
    A: np.ndarray,
    z: np.ndarray,
    weight: np.ndarray,
    activation: str = "relu",
    *,
    rtol: float = 1e-6,
    max_iter: int = 200,
    seed: int | np.random.SeedSequence = 0,
) -> np.ndarray:
    """Largest eigenvalue of ``G = Lambda^{1/2} J J^T Lambda^{1/2}`` per model (Lanczos).

    Parameters
    ----------
    W, A : ndarray, shapes (N, n, d_in), (N, n, D)
    z : ndarray, shape (N, P, d_in)
    weight : ndarray, shape (N, P)
        ``Lambda = diag(weight)`` (repeated over the D outputs).
    rtol : float
        Stop when the residual bound is below ``rtol`` times the top Ritz value.
    max_iter : int
        Most Lanczos steps (also capped by P D).
    seed : int or SeedSequence
        Start vectors from ``model_rngs(seed, "lanczos", N)`` (:mod:`gtv.numerics.streams`).

    Returns
    -------
    ndarray, shape (N,)
        Top Ritz value plus its residual bound (>= an eigenvalue of G within ``rtol``).
    """
    act = activation_code(activation)
    W = np.ascontiguousarray(W, dtype=np.float64)
    A = np.ascontiguousarray(A, dtype=np.float64)
    n_models, _, _ = W.shape
    n_out = A.shape[2]
    p = z.shape[1]
    zc = np.ascontiguousarray(np.swapaxes(np.asarray(z, dtype=np.float64), 1, 2))
    sw = np.sqrt(np.asarray(weight, dtype=np.float64))[:, None, :]  # (N, 1, P)
    dim = p * n_out

    def matvec(v: np.ndarray) -> np.ndarray:  # v: (N, D*P) in (D, P) order
        r = np.ascontiguousarray(v.reshape(n_models, n_out, p) * sw)
        gW, gA = vjp_kernel(W, A, zc, r, act)
        return (jvp_kernel(W, A, zc, gW, gA, act) * sw).reshape(n_models, dim)

    n_iter = min(int(max_iter), dim)
    starts = [rng.standard_normal(dim) for rng in model_rngs(seed, "lanczos", n_models)]
    V = np.zeros((n_iter + 1, n_models, dim))
    V[0] = np.stack(starts)
    V[0] /= np.linalg.norm(V[0], axis=1, keepdims=True)
    alpha = np.zeros((n_iter, n_models))
    beta = np.zeros((n_iter, n_models))
    est = np.full(n_models, np.nan)
    done = np.zeros(n_models, dtype=bool)
    with serial_blas():
        for j in range(n_iter):
            w = matvec(V[j])
            alpha[j] = np.einsum("nd,nd->n", w, V[j])
            w -= alpha[j][:, None] * V[j]
            if j > 0:
                w -= beta[j - 1][:, None] * V[j - 1]
            for _ in range(2):  # full reorthogonalization (twice is enough)
                c = np.einsum("jnd,nd->jn", V[: j + 1], w)
                w -= np.einsum("jn,jnd->nd", c, V[: j + 1])
            beta[j] = np.linalg.norm(w, axis=1)
            for m in np.flatnonzero(~done):
                if j == 0:
                    theta, s = np.array([alpha[0, m]]), np.ones((1, 1))
                else:
                    theta, s = eigh_tridiagonal(alpha[: j + 1, m], beta[:j, m])
                top = int(np.argmax(theta))
                resid = beta[j, m] * abs(s[-1, top])
                exhausted = beta[j, m] <= 1e-13 * max(abs(theta[top]), 1e-300)
                if resid <= rtol * theta[top] or exhausted or j == n_iter - 1:
                    est[m] = theta[top] + resid
                    done[m] = True
            if done.all():
                break
            safe = np.where(beta[j] > 0, beta[j], 1.0)
            V[j + 1] = np.where(done[:, None], 0.0, w / safe[:, None])
    return est


def stability_limit(init: TwoLayerInit, **kwargs) -> np.ndarray:
    """``eta_max = 2 P / lambda_max(G)`` per model at initialization, shape (N,) (cached).

    Keyword arguments go to :func:`gauss_newton_lmax` (its ``seed`` defaults to ``init.seed``);
    only the default call is cached (it is the one :func:`train_two_layer` uses).
    """
    if init.limit is not None and not kwargs:
        return init.limit
    opts = {"seed": init.seed, **kwargs}
    lmax = gauss_newton_lmax(init.W0, init.A0, init.z, init.weight, init.activation, **opts)
    limit = 2.0 * init.n_samples / lmax
    if not kwargs:
        init.limit = limit
    return limit
