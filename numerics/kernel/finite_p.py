"""Finite-P moments of lazy infinite-width ensembles: the cavity deterministic equivalent.

docs/math/kernel.md ("Finite P").

The first-order theory (:mod:`gtv.numerics.kernel.theory`) linearizes the training set around
the node measure. At small ``eps`` the DSM weight ``lam ~ 1/t`` is heavy-tailed and single
triples are not small perturbations; this module resums each triple's self-interaction
(its leverage) as in the linear-model cavity equations, for the kernel filter of lazy training.

Notebook-ready derivation
-------------------------
**Feature form.** On the Nystrom nodes the kernel is ``Theta(z, z') = phi(z)^T phi(z')`` with
``phi = s^(-1/2) psi`` (r-vector; ``E[lam phi phi^T] = diag(s)``,
``E[lam phi mu_bar] = s^(1/2) mu_tilde``). A model trained on P triples is the linear model
``D^(z) = phi(z)^T W_tau``, ``W_tau = g_tau(Sigma_hat + rho) b_hat`` with
``Sigma_hat = (1/P) sum_j lam_j phi_j phi_j^T``, ``b_hat = (1/P) sum_j lam_j phi_j x0_j`` and the
filter ``g_tau`` of :func:`gtv.numerics.kernel.divided_differences.lazy_filter`.

**Filter as resolvents.** ``g_tau`` is written as a sum of poles,
``g_tau(x) ~ sum_m e_m / (x - z_m)`` (:func:`filter_poles`), so that
``W_tau = sum_m e_m R(kappa_m) b_hat`` with the resolvents ``R(kappa) = (Sigma_hat + kappa)^-1`` at
the complex ridges ``kappa_m = rho - z_m``: a *linear combination of ridge estimators*. The poles
come from the Talbot quadrature of the inverse Laplace transform (Weideman & Trefethen 2007,
cotangent contour, ``n`` nodes): for gradient flow
``e^{-s x} = (1/2 pi i) int e^{p s} / (p + x) dp`` (``s = lr tau``), for ``k`` gradient-descent
steps ``(1 - lr x)**k = (1/2 pi i) int e^{(k+1) u} / (e^u - (1 - lr x)) du`` (``zeta = e^u``),
then ``g = (1 - phi(x)) / x``. The relative error, measured on ``[0, 1/lr]``, is 1e-5 at
``n = 12`` and 8e-8 at ``n = 16`` (the default), independent of ``tau``, for
``x >= 0`` (gradient descent: ``0 <= lr x <= 1``; above, ``|1 - lr x|**k``).
``tau = inf`` is the single pole ``z = 0`` (kernel ridge).

**Cavity equations** (the linear-model equations with ``kappa`` complex; nodes ``n`` with
probabilities ``omega_n``, weights ``w_n = lam_n``, posterior mean ``mu_n`` and variance
``s2_n``). For each pole:

* leverage ``q_n = w_n phi_n^T M^-1 phi_n / P``,
  ``M = kappa I + sum_n omega_n w_n phi_n phi_n^T / (1 + q_n)`` (fixed point; ``E R ~ M^-1``);
* mean ``W_bar = M^-1 sum_n omega_n w_n mu_n phi_n / (1 + q_n)``;

and for each pair of poles ``(a, b)`` the covariance
``C_ab = (1/P) M_a^-1 [sum_n omega_n w_n^2 (s2_n + r_an r_bn + v_n) phi_n phi_n^T /
((1 + q_an)(1 + q_bn)) - (kappa_a W_bar_a)(kappa_b W_bar_b)^T] M_b^-1`` with the residuals
``r_an = mu_n - W_bar_a^T phi_n`` and the self-consistent prediction covariance
``v_n = phi_n^T C_ab phi_n`` (a linear system on the nodes, solved directly). Then
``E W_tau = sum_a e_a W_bar_a`` and ``Cov W_tau = sum_ab e_a e_b C_ab``. The ``s2`` terms are the
*proxy* part, the residual and ``kappa W_bar`` terms the *misfit* part (``v`` splits linearly).

**Limits.** As ``P -> inf``: ``q -> 0``, ``M -> diag(s) + kappa``, ``v -> 0`` and ``P Cov`` is
the delta-method covariance of ``g(Sigma_hat) b_hat`` -- the first-order theory, to the filter's
pole error (a test). For one real ridge the equations are those of the linear-model cavity.

**What it misses** (measured, docs/math/kernel.md): the equivalent assumes that the other
triples act through their mean (``M``); at eps = 0.01, P = 256 only a few triples have
``lam > 100`` and their number fluctuates, so the variance at the outer query points is still
underestimated (by less than the first-order theory).

Cost: per pole an r x r fixed point; per pair of poles one Q x Q complex solve
(``n (n + 1) / 2`` pairs). D = 1 only.
"""

from __future__ import annotations

import numpy as np

from gtv.numerics.checks import check_samples_per_model
from gtv.numerics.kernel.checks import check_flow, check_lr, check_tau, gd_step_count
from gtv.numerics.kernel.gram import serial_blas
from gtv.numerics.kernel.theory import NTKTheory, check_part

__all__ = ["FiniteKernelMoments", "filter_poles"]

# Weideman & Trefethen (2007) optimal cotangent (Talbot) contour.
_SIGMA, _MU, _ALPHA, _NU = -0.6122, 0.5017, 0.6407, 0.2645


def _talbot(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``u_j`` and weights with ``(1/2 pi i) int f(u) du ~ sum_j w_j f(u_j)`` (unit time)."""
    th = -np.pi + (np.arange(n) + 0.5) * (2 * np.pi / n)
    cot = 1.0 / np.tan(_ALPHA * th)
    u = _SIGMA + _MU * th * cot + 1j * _NU * th
    du = _MU * cot - _MU * _ALPHA * th / np.sin(_ALPHA * th) ** 2 + 1j * _NU
    return u, du / (1j * n)


def filter_poles(
    tau: float, lr: float = 1.0, flow: str = "gradient-flow", n_poles: int = 16
) -> tuple[np.ndarray, np.ndarray]:
    """Poles ``z_m`` and coefficients ``e_m`` with ``g_tau(x) ~ sum_m e_m / (x - z_m)``.

    Module docstring (Talbot rule). ``tau = inf`` gives the one pole ``z = 0``, ``e = 1``.

    Parameters
    ----------
    tau : float
        Training time ``> 0`` (``inf`` allowed).
    lr : float
    flow : {"gradient-flow", "gradient-descent"}
        Gradient descent takes ``k = tau / lr`` steps (an integer).
    n_poles : int
        Talbot nodes ``>= 4`` (even: the poles come in complex-conjugate pairs).

    Returns
    -------
    z, e : ndarray (n_poles,) complex
    """
    tau = float(check_tau(tau))
    lr = check_lr(lr)
    flow = check_flow(flow)
    if isinstance(n_poles, bool) or not isinstance(n_poles, (int, np.integer)) or n_poles < 4:
        raise ValueError(f"n_poles must be an integer >= 4, got {n_poles!r}")
    if n_poles % 2:
        raise ValueError(f"n_poles must be even (conjugate pairs), got {n_poles}")
    if tau == 0:
        raise ValueError("tau must be > 0 here (at tau = 0 the model is D^ = 0)")
    if np.isinf(tau):
        return np.zeros(1, complex), np.ones(1, complex)
    u, w = _talbot(int(n_poles))
    if flow == "gradient-flow":
        scale = n_poles / (lr * tau)  # e^{-s x} = sum c / (p + x), p = scale u
        p = scale * u
        c = scale * w * np.exp(p * lr * tau)
        z = -p  # phi(x) = sum_m c_m / (x - z_m)
    else:
        k = int(gd_step_count(tau, lr))
        scale = n_poles / k
        uu = scale * u
        c = scale * w * np.exp((k + 1) * uu) / lr  # 1/(e^u - 1 + lr x) = 1/(lr (x - z))
        z = (1.0 - np.exp(uu)) / lr
    # phi(x) = sum_m c_m / (x - z_m) with phi(0) = 1, so 1 - phi(x) = phi(0) - phi(x)
    # = -sum_m c_m x / (z_m (x - z_m)) and g = (1 - phi) / x = sum_m (-c_m / z_m) / (x - z_m).
    e = -c / z
    return z, e


def _solve_leverage(kappa, Phi, ow, w, P, tol, max_iter):
    """Fixed point ``q_n = w_n phi_n^T M^-1 phi_n / P`` (damped iteration); returns q, M^-1."""
    Q, r = Phi.shape
    q = np.zeros(Q, complex)
    eye = np.eye(r)
    for it in range(max_iter):
        Mi = np.linalg.inv(kappa * eye + (Phi.T * (ow / (1 + q))) @ Phi)
        q_new = (w / P) * np.einsum("nk,nk->n", Phi @ Mi, Phi)
        delta = np.max(np.abs(q_new - q))
        q = q_new if it < 3 else 0.5 * (q + q_new)
        if delta <= tol * (1.0 + np.max(np.abs(q_new))):
            break
    else:
        raise RuntimeError(
            f"cavity leverage did not converge in {max_iter} iterations at kappa = {kappa:.3g} "
            f"(last change {delta:.2e}); raise max_iter"
        )
    Mi = np.linalg.inv(kappa * eye + (Phi.T * (ow / (1 + q))) @ Phi)
    return q, Mi


class FiniteKernelMoments:
    """Finite-P mean and covariance of the eigen-coordinates at one ``tau`` and ``P``.

    Module docstring. ``D_bar(z) = psi(z) . mean`` and
    ``Cov[D^(z), D^(z')] = psi(z)^T covariance(part) psi(z')`` in the Nystrom eigenfeatures of
    ``theory`` (the same coordinates as :meth:`NTKTheory.coefficient_covariance`, which is the
    ``P -> inf`` limit).

    Parameters
    ----------
    theory : NTKTheory
        D = 1.
    tau : float
        Training time ``> 0`` (``inf``: kernel ridge, needs ``ridge > 0`` or ``rank < P``).
    P : float
        DSM triples per model.
    n_poles : int
        Talbot poles of the filter (:func:`filter_poles`).
    tol, max_iter
        Leverage fixed point.

    Attributes
    ----------
    mean : ndarray (r,)
    poles, coefficients : ndarray complex
    leverage : ndarray (n_poles, Q) complex
        ``q_n`` per pole.
    pole_means : ndarray (n_poles, r) complex
        ``W_bar`` per pole in the scaled features ``phi = s^(-1/2) psi`` (``E W_tau`` is
        ``sum_a e_a W_bar_a``).
    """

    @serial_blas
    def __init__(
        self,
        theory: NTKTheory,
        tau: float,
        P: float,
        *,
        n_poles: int = 16,
        tol: float = 1e-12,
        max_iter: int = 2000,
    ):
        if not isinstance(theory, NTKTheory):
            raise TypeError("theory must be an NTKTheory")
        if theory.dim != 1:
            raise ValueError(f"theory: only 1-D data is supported, got D = {theory.dim}")
        self.theory = theory
        self.tau = theory.check_training_time(tau)
        self.P = check_samples_per_model(P, required=True)
        if not (0 < tol < 1e-3):
            raise ValueError(f"tol must be in (0, 1e-3), got {tol!r}")
        z, e = filter_poles(self.tau, theory.lr, theory.flow, n_poles)
        self.poles, self.coefficients = z, e
        self._solve(tol, int(max_iter))

    def _solve(self, tol: float, max_iter: int) -> None:
        th, P = self.theory, self.P
        Phi = th.psi_nodes / np.sqrt(th.s)[None, :]
        w, om = th.lam, th.omega
        mu, s2 = th.mu_bar[:, 0], th.sigma_post[:, 0, 0]
        kap = th.ridge - self.poles
        n, Q = kap.size, th.n_nodes
        Y, G, h, y, q, res, wb = [], [], [], [], [], [], []
        for k in kap:
            qk, Mi = _solve_leverage(k, Phi, om * w, w, P, tol, max_iter)
            Wb = Mi @ (Phi.T @ (om * w * mu / (1 + qk)))
            Yk = Mi @ Phi.T  # (r, Q)
            q.append(qk)
            wb.append(Wb)
            Y.append(Yk)
            G.append(Phi @ Yk)
            y.append(k * (Mi @ Wb))
            h.append(Phi @ y[-1])
            res.append(mu - Phi @ Wb)
        self.leverage = np.array(q)
        self.pole_means = np.array(wb)  # W_bar_a per pole, phi coordinates (n_poles, r)
        # Mean (complex sum of a conjugate-closed set: real to round-off).
        mean_W = sum(ek * Wk for ek, Wk in zip(self.coefficients, wb, strict=True))
        self._mean_W = self._real(mean_W, "mean")
        # Pair solves: (I - K) v = K c + d, K = (G_a o G_b) diag(A) / P.
        r = th.rank
        C = {"proxy": np.zeros((r, r), complex), "misfit": np.zeros((r, r), complex)}
        A0 = om * w**2
        eye = np.eye(Q)
        for a in range(n):
            for b in range(a, n):
                A = A0 / ((1 + q[a]) * (1 + q[b]))
                K = (G[a] * G[b]) * (A / P)[None, :]
                rhs = np.stack([K @ s2, K @ (res[a] * res[b]) - h[a] * h[b] / P], axis=1)
                v = np.linalg.solve(eye - K, rhs)
                f = self.coefficients[a] * self.coefficients[b] * (1.0 if a == b else 2.0) / P
                for part, src in (("proxy", s2 + v[:, 0]), ("misfit", res[a] * res[b] + v[:, 1])):
                    Cab = (Y[a] * (A * src)[None, :]) @ Y[b].T
                    # (a, b) and (b, a) together: C_ba = C_ab^T.
                    C[part] += f * (Cab if a == b else (Cab + Cab.T) / 2)
        u = sum(ek * yk for ek, yk in zip(self.coefficients, y, strict=True))
        C["misfit"] -= np.outer(u, u) / P
        isq = 1.0 / np.sqrt(th.s)
        self._cov = {}
        for part, m in C.items():
            m = self._real(m, f"covariance ({part})")
            m = isq[:, None] * m * isq[None, :]
            self._cov[part] = (m + m.T) / 2
        self._cov["total"] = self._cov["proxy"] + self._cov["misfit"]
        self.mean = isq * self._mean_W

    @staticmethod
    def _real(x: np.ndarray, what: str) -> np.ndarray:
        scale = np.max(np.abs(x.real)) if x.size else 0.0
        if np.max(np.abs(x.imag), initial=0.0) > 1e-8 * max(scale, 1e-300):
            raise RuntimeError(
                f"the {what} has an imaginary part {np.max(np.abs(x.imag)):.2e} (scale "
                f"{scale:.2e}): the pole sum is not conjugate-symmetric"
            )
        return np.ascontiguousarray(x.real)

    def covariance(self, part: str = "total") -> np.ndarray:
        """``Cov`` of the eigen-coordinates (r, r) (module docstring); ``part`` in
        :data:`gtv.numerics.kernel.theory.PARTS`."""
        return self._cov[check_part(part)]

    def node_mean(self) -> np.ndarray:
        """``a`` (Q, 1) with ``D_bar(z) = Theta(z, N) a``."""
        return (self.theory.basis @ self.mean)[:, None]

    def max_leverage(self) -> float:
        """``max |q_n|`` over nodes and poles (0: first order; >~ 1: saturated triples)."""
        return float(np.max(np.abs(self.leverage)))
