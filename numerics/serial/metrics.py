"""Information measures of the serial-reproduction chains, in bits.

The divergences take an ``eps`` argument: ``eps = 0`` (default) is the exact divergence
(``0 log 0 = 0``; ``inf`` where ``p > 0`` and ``q = 0``), ``eps = AUTHORS_EPS`` reproduces the
authors' ``sum p log2((p + eps) / (q + eps))`` with MATLAB's ``eps``.

* :func:`kl_bits`, :func:`jsd_bits`, :func:`entropy_bits` -- of two densities;
* :func:`consecutive_kl_bits`, :func:`complexity_bits` -- ``KL(q_t || q_{t+1})`` along the forward
  process and its maximum, the authors' "complexity" (they skip the data -> ``q_1`` step);
* :func:`lag_kl_bits` -- ``KL(p_k || q_k)`` of the sampler at every level;
* :func:`stationarity_score` -- the authors' "deviation of integral from 1";
* :func:`channel_entropy_bits`, :func:`mutual_information_bits`, :func:`step_information_bits` --
  the noise channel of a step given its input density.
"""

from __future__ import annotations

import numpy as np

from gtv.numerics.serial.operator import KernelOperator

__all__ = [
    "AUTHORS_EPS",
    "channel_entropy_bits",
    "complexity_bits",
    "consecutive_kl_bits",
    "entropy_bits",
    "jsd_bits",
    "kl_bits",
    "lag_kl_bits",
    "mutual_information_bits",
    "stationarity_score",
    "step_information_bits",
]

#: MATLAB's ``eps`` (2^-52), which the authors add inside their logarithms.
AUTHORS_EPS = float(np.finfo(np.float64).eps)


def _pair(p: object, q: object) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(p, dtype=np.float64).ravel()
    b = np.asarray(q, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"p and q must have the same shape, got {np.shape(p)} and {np.shape(q)}")
    for name, x in (("p", a), ("q", b)):
        if not np.all(np.isfinite(x)) or np.any(x < 0):
            raise ValueError(f"{name} must be finite and non-negative")
    return a, b


def _check_eps(eps: object) -> float:
    e = float(eps)
    if not (np.isfinite(e) and e >= 0):
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")
    return e


def kl_bits(p: object, q: object, eps: float = 0.0) -> float:
    """``KL(p || q)`` in bits (``eps``: see the module docstring)."""
    a, b = _pair(p, q)
    eps = _check_eps(eps)
    if eps > 0:
        return float(np.sum(a * np.log2((a + eps) / (b + eps))))
    pos = a > 0
    if np.any(b[pos] == 0):
        return float("inf")
    return float(np.sum(a[pos] * np.log2(a[pos] / b[pos])))


def jsd_bits(p: object, q: object, eps: float = 0.0) -> float:
    """Jensen-Shannon divergence ``(KL(p || m) + KL(q || m)) / 2``, ``m = (p + q) / 2``, in bits.

    Like the authors' ``JSD2``, ``p`` and ``q`` are normalised first.
    """
    a, b = _pair(p, q)
    a, b = a / a.sum(), b / b.sum()
    m = 0.5 * (a + b)
    return 0.5 * (kl_bits(a, m, eps) + kl_bits(b, m, eps))


def entropy_bits(p: object) -> float:
    """Shannon entropy ``-sum p log2 p`` in bits."""
    a = np.asarray(p, dtype=np.float64).ravel()
    if not np.all(np.isfinite(a)) or np.any(a < 0):
        raise ValueError("p must be finite and non-negative")
    pos = a > 0
    return float(-np.sum(a[pos] * np.log2(a[pos])))


def _marginals(q: object, argname: str) -> np.ndarray:
    a = np.asarray(q, dtype=np.float64)
    if a.ndim < 2 or a.shape[0] < 1:
        raise ValueError(f"{argname} must be a stack of densities, shape (T + 1, *grid.shape)")
    return a


def consecutive_kl_bits(q: object, eps: float = 0.0) -> np.ndarray:
    """``KL(q_t || q_{t+1})`` for ``t = 0 .. T-1`` (shape ``(T,)``) of forward marginals ``q``."""
    q = _marginals(q, "q")
    return np.array([kl_bits(q[t], q[t + 1], eps) for t in range(q.shape[0] - 1)])


def complexity_bits(q: object, include_data_step: bool = False, eps: float = 0.0) -> float:
    """The authors' complexity ``max_t KL(q_t || q_{t+1})`` in bits.

    By default over ``t = 1 .. T-1``, i.e. without the data -> ``q_1`` step, as in the authors'
    code (so it is ``nan`` for ``T = 1``); ``include_data_step=True`` takes ``t = 0 .. T-1``.
    """
    steps = consecutive_kl_bits(q, eps)
    if not include_data_step:
        steps = steps[1:]
    return float(steps.max()) if steps.size else float("nan")


def lag_kl_bits(p: object, q: object, eps: float = 0.0) -> np.ndarray:
    """``KL(p_k || q_k)`` for ``k = 0 .. T`` (shape ``(T + 1,)``).

    ``p`` are the sampler's densities (``p[T]`` its start, ``p[0]`` the generated density) and
    ``q`` the forward marginals: entry 0 is the generation error ``KL(p_gen || p_data)``, entry
    ``T`` the terminal mismatch ``KL(p_F || q_T)``, and entry ``k`` how far the sampler lags
    behind the forward process at level ``k`` (the output of step ``k + 1``, whose stationary
    distribution is ``q_k``).
    """
    p, q = _marginals(p, "p"), _marginals(q, "q")
    if p.shape != q.shape:
        raise ValueError(f"p and q must have the same shape, got {p.shape} and {q.shape}")
    return np.array([kl_bits(p[k], q[k], eps) for k in range(p.shape[0])])


def stationarity_score(
    chain: object, p: object, inject_noise: bool = True, eps: float = AUTHORS_EPS
) -> float:
    """The authors' stationarity ("integral") score of a sampler run.

    With the sampler's densities ``p`` (``p[t - 1] = S_t p[t]``): ``v = p[T-1] / (p[T-2] + eps)``,
    then ``v <- S_t^T v`` for ``t = T-1 .. 1``, and the score is ``||v - 1||_2 / sqrt(M)``. It
    is 0 when consecutive generated densities agree. ``nan`` for ``T < 2``.

    Parameters
    ----------
    chain : DiffusionChain or DenseChain
        Anything with ``T`` and ``step_transpose(t, v, inject_noise)``.
    p : ndarray
        ``chain.generate(start, inject_noise)``.
    inject_noise : bool
        The sampler ``p`` was made with.
    eps : float
        Added to the denominator of the first ratio (the authors').
    """
    p = _marginals(p, "p")
    T = int(chain.T)
    if p.shape[0] != T + 1:
        raise ValueError(f"p must hold T + 1 = {T + 1} densities, got {p.shape[0]}")
    if T < 2:
        return float("nan")
    v = p[T - 1] / (p[T - 2] + _check_eps(eps))
    for t in range(T - 1, 0, -1):
        v = chain.step_transpose(t, v, inject_noise)
    return float(np.linalg.norm(v.ravel() - 1.0) / np.sqrt(v.size))


def _xlog2x(x: np.ndarray) -> np.ndarray:
    out = np.zeros_like(x)
    pos = x > 0
    out[pos] = x[pos] * np.log2(x[pos])
    return out


def channel_entropy_bits(kernel: KernelOperator | np.ndarray, p: object) -> float:
    """Conditional entropy ``H(noisy | input) = sum_s p(s) H(K(. | s))`` in bits, input ``~ p``.

    ``kernel`` is a :class:`KernelOperator` (columns computed exactly, ``O(M)`` each, for the
    sources with ``p > 0``) or a dense ``M x M`` matrix (row = destination).
    """
    pf = np.asarray(p, dtype=np.float64).ravel()
    src = np.flatnonzero(pf > 0)
    if isinstance(kernel, KernelOperator):
        if pf.size != kernel.grid.size:
            raise ValueError(f"p must have {kernel.grid.size} entries like the kernel's grid")
        h = np.empty(src.size)
        step = max(1, (1 << 19) // kernel.grid.size)
        for i in range(0, src.size, step):
            cols = kernel.columns(src[i : i + step])
            h[i : i + step] = -np.sum(_xlog2x(cols), axis=1)
    else:
        K = np.asarray(kernel, dtype=np.float64)
        if K.shape != (pf.size, pf.size):
            raise ValueError(f"kernel must be ({pf.size}, {pf.size}) like p, got {K.shape}")
        h = -np.sum(_xlog2x(K[:, src]), axis=0)
    return float(np.dot(pf[src], h))


def _noisy(kernel: KernelOperator | np.ndarray, p: np.ndarray) -> np.ndarray:
    if isinstance(kernel, KernelOperator):
        return np.maximum(kernel.apply(p.reshape(kernel.grid.shape)), 0.0)
    return np.asarray(kernel, dtype=np.float64) @ p.ravel()


def mutual_information_bits(kernel: KernelOperator | np.ndarray, p: object) -> float:
    """``I(input; noisy) = H(K p) - H(noisy | input)`` in bits, input ``~ p``.

    (The authors' diagnostic ``I_t`` puts the *denoised* output, not ``K p``, in the product of
    marginals; this is the textbook mutual information of the noise channel.)
    """
    pf = np.asarray(p, dtype=np.float64)
    return entropy_bits(_noisy(kernel, pf)) - channel_entropy_bits(kernel, pf)


def step_information_bits(chain: object, p: object) -> tuple[np.ndarray, np.ndarray]:
    """Per step ``t = 1 .. T`` (index ``t - 1``): ``H(noisy | input)`` and ``I(input; noisy)``
    of ``K_t`` with the step's input ``p[t]`` (the sampler's densities), in bits.

    ``chain`` is a :class:`~gtv.numerics.serial.DiffusionChain` or a
    :class:`~gtv.numerics.serial.DenseChain`.
    """
    p = _marginals(p, "p")
    T = int(chain.T)
    if p.shape[0] != T + 1:
        raise ValueError(f"p must hold T + 1 = {T + 1} densities, got {p.shape[0]}")
    H, info = np.empty(T), np.empty(T)
    for t in range(1, T + 1):
        k = chain.kernel_matrix(t) if hasattr(chain, "kernel_matrix") else chain.kernel(t)
        H[t - 1] = channel_entropy_bits(k, p[t])
        info[t - 1] = entropy_bits(_noisy(k, p[t])) - H[t - 1]
    return H, info
