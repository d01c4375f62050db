"""Argument checks of the kernel (lazy infinite-width) models: activations, kernels, training
dynamics and times, and the gradient-descent stability limit (docs/math/kernel.md).

Checks shared by every model class (counts, ridge, points, ``eps``) live in
:mod:`gtv.numerics.checks`; the ones here are specific to kernel regression and its theory.
"""

from __future__ import annotations

import numpy as np

from gtv.numerics.checks import check_points, check_ridge

__all__ = [
    "ACTIVATIONS",
    "FLOWS",
    "KERNELS",
    "check_activation",
    "check_flow",
    "check_gd_stable",
    "check_kernel",
    "check_kernel_inputs",
    "check_lr",
    "check_tau",
    "gd_stability_limit",
    "gd_step_count",
]

#: Activations with closed-form kernels (:mod:`gtv.theory.ntk`).
ACTIVATIONS = ("relu", "erf")
#: Kernels: NNGP, derivative kernel, NTK.
KERNELS = ("nngp", "derivative", "ntk")
#: Training dynamics: continuous-time gradient flow or gradient descent with step ``lr``.
FLOWS = ("gradient-flow", "gradient-descent")


def check_activation(activation: object) -> str:
    """Return ``activation`` if it is one of :data:`ACTIVATIONS`, else raise ``ValueError``."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    return str(activation)


def check_kernel(kernel: object) -> str:
    """Return ``kernel`` if it is one of :data:`KERNELS`, else raise ``ValueError``."""
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    return str(kernel)


def check_flow(flow: object) -> str:
    """Return ``flow`` if it is one of :data:`FLOWS`, else raise ``ValueError``."""
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


def check_kernel_inputs(z: object, argname: str, dim: int | None = None) -> np.ndarray:
    """Network inputs as a checked (n, d_in) float64 array without zero rows.

    The kernels depend on the angle between inputs, which the zero vector does not have; the
    bias coordinate of :func:`gtv.numerics.kernel.inputs.ntk_inputs` keeps every input nonzero.
    """
    z = check_points(z, argname, dim=dim)
    if np.any(np.sum(z * z, axis=1) == 0):
        raise ValueError(f"{argname} must not contain the zero vector (use the bias coordinate)")
    return z


def gd_step_count(tau: float, lr: float) -> float:
    """``k = tau / lr`` gradient-descent steps; ``ValueError`` unless an integer (or inf)."""
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


def check_gd_stable(lr: float, lr_max: float, what: str) -> None:
    """``ValueError`` naming ``lr`` and the limit unless ``lr < lr_max`` (``what``: whose limit)."""
    if not lr < lr_max:
        raise ValueError(
            f"lr = {lr!r} is beyond the stability limit of gradient descent for {what}: "
            f"lr must be < lr_max = 2 / (s_max + ridge) = {lr_max:.6g}"
        )
