"""A lazy infinite-width two-layer network trained on one set of weighted examples.

docs/math/kernel.md.

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
(:func:`gtv.numerics.kernel.checks.gd_stability_limit`); larger learning rates raise
``ValueError`` naming ``lr``.

The filters ``g`` are :func:`gtv.numerics.kernel.divided_differences.lazy_filter`; the Gram
matrices :func:`gtv.numerics.kernel.gram.ntk_gram`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gtv.numerics.checks import check_points, check_ridge
from gtv.numerics.kernel.checks import (
    check_activation,
    check_flow,
    check_gd_stable,
    check_kernel_inputs,
    check_lr,
    check_tau,
    gd_stability_limit,
)
from gtv.numerics.kernel.divided_differences import lazy_filter
from gtv.numerics.kernel.gram import ntk_gram, serial_blas

__all__ = ["KernelRegression", "fit_kernel_regression"]


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
        flow = check_flow(flow)
        if flow == "gradient-descent":
            check_gd_stable(check_lr(lr), self.lr_max, "this training set's kernel")
        return lazy_filter(self.s + self.ridge, tau, lr, flow)

    @serial_blas
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

    @serial_blas
    def predict(
        self, zq: object, tau: object, lr: float = 1.0, flow: str = "gradient-flow"
    ) -> np.ndarray:
        """``D^_tau(zq)``: (n, D), or (n_tau, n, D) for an array of ``tau``."""
        K = ntk_gram(zq, self.z, self.activation)
        beta = self.coefficients(tau, lr, flow)
        return K @ beta if beta.ndim == 2 else np.einsum("np,kpd->knd", K, beta)


@serial_blas
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
    z = check_kernel_inputs(z, "z")
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
