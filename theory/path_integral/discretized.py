"""The time-discretized PF-ODE with a random score as an MSR integral (docs/math/path_integral.md).

Conventions (docs/math/conventions.md)
--------------------------------------
The PF-ODE ``dx/dt = -beta_t x - D_t s(x, t)`` runs from ``t = T`` *down* to ``t = eps``. On a
grid ``T = t_0 > t_1 > ... > t_K = eps`` the Euler step with a learned (random) score is

    ``x_{k+1} = x_k + dt_k f_k``, ``f_k = -beta_k x_k - D_k s_hat_k``, ``dt_k = t_{k+1} - t_k < 0``

(signed steps; ``h_k = -dt_k > 0`` is the step length). The score of step ``k`` is evaluated at
``x_k``, the point the step starts from: the pre-point in the direction of integration, so every
continuum SDE derived from it is an **Ito** SDE in reverse time ``tau = T - t``.

Each step is enforced by a Fourier-represented delta function with a response variable ``p_k``,

    ``delta(y_k) = int dp_k/(2 pi)**dim exp(-i p_k . y_k)``,  ``y_k = x_{k+1} - x_k - dt_k f_k``,

so that the path weight is ``exp(-S)`` with the action ``S = sum_k i p_k . y_k``, whose continuum
form is docs/math/path_integral.md's ``int i p . (xdot + beta x + D s_hat) dt``. (The other sign
of the Fourier kernel is the substitution ``p -> -p``, which changes nothing below except the sign
of ``i`` in ``M1``.) The random score enters ``S`` only through
``sum_k i dt_k D_k p_k . s_hat_k``; with ``s_hat`` Gaussian of mean ``m_k`` and covariance blocks
``Sigma_kl`` (``dim x dim``, between steps ``k`` and ``l``),

    ``E exp(-i sum_k dt_k D_k p_k . s_hat_k) = exp(M1 - M2/2)``,
    ``M1 = -i sum_k dt_k D_k p_k . m_k``,
    ``M2 = sum_{k,l} dt_k dt_l D_k D_l p_k^T Sigma_kl p_l``.

:class:`DiscreteMSR` proves this by computing the ``s_hat`` integral: the full Gaussian density of
``s_hat`` (covariance ``L L^T`` with a symbolic Cholesky factor) times ``exp(-S)`` is integrated
one variable at a time, each one-dimensional integral being sympy's own evaluation of
``int exp(-A v**2 + (B_r + i B_i) v) dv``
(:func:`gtv.theory.path_integral.gaussian.gaussian_rule`), not a quoted formula. The averaged
weight ``exp(-S0 + M1 - M2/2)`` is the MSR weight of the Euler-Maruyama scheme
``x_{k+1} = x_k + dt_k b_k + eta_k`` with drift ``b = -beta x - D m`` and Gaussian increments
``Cov(eta_k, eta_l) = dt_k dt_l D_k D_l Sigma_kl``
(:meth:`DiscreteMSR.effective_euler_average`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import sympy as sp

from gtv.theory.path_integral.gaussian import GaussianAverage, gaussian_expectation
from gtv.theory.path_integral.symbols import indexed_vector

__all__ = ["DiscreteMSR", "discrete_msr"]


@dataclass(frozen=True)
class DiscreteMSR:
    """The PF-ODE in ``K`` Euler steps in ``dim`` dimensions, as an MSR integral (module docstring).

    All quantities are sympy symbols: states ``x[k]`` (``k = 0..K``), response variables ``p[k]``,
    random scores ``s_hat[k]`` with means ``mean[k]``, signed steps ``dt[k]`` (negative symbols:
    the PF-ODE runs from T down to eps; the Gaussian identity itself holds for any real ``dt``),
    ``beta[k]``, ``diffusion[k]`` (positive), and the lower-triangular Cholesky factor ``chol``
    (``n x n``, ``n = K dim``, positive diagonal) of the covariance of the stacked scores
    ``(s_hat_0, ..., s_hat_{K-1})``. Build with :func:`discrete_msr`.
    """

    K: int
    dim: int
    x: tuple
    p: tuple
    s_hat: tuple
    mean: tuple
    dt: tuple
    beta: tuple
    diffusion: tuple
    chol: sp.Matrix
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    # -- pieces ---------------------------------------------------------------------------------
    @property
    def n(self) -> int:
        return self.K * self.dim

    @property
    def score_variables(self) -> list[sp.Symbol]:
        return [c for s in self.s_hat for c in s]

    @property
    def covariance(self) -> sp.Matrix:
        """``Sigma = chol chol^T`` of the stacked scores (``n x n``)."""
        return self.chol * self.chol.T

    def cov_block(self, k: int, j: int) -> sp.Matrix:
        """``Sigma_kj = Cov(s_hat_k, s_hat_j)`` (``dim x dim``)."""
        d = self.dim
        return self.covariance[k * d : (k + 1) * d, j * d : (j + 1) * d]

    def step_residual(self, k: int, score: sp.Matrix) -> sp.Matrix:
        """``y_k = x_{k+1} - x_k - dt_k (-beta_k x_k - D_k score)``."""
        f = -self.beta[k] * self.x[k] - self.diffusion[k] * score
        return self.x[k + 1] - self.x[k] - self.dt[k] * f

    def action(self, scores: Sequence[sp.Matrix] | None = None) -> sp.Expr:
        """``S = sum_k i p_k . y_k`` with the given per-step scores (default: ``s_hat``)."""
        scores = self.s_hat if scores is None else scores
        return sp.expand(
            sum(
                (sp.I * (self.p[k].T * self.step_residual(k, scores[k]))[0] for k in range(self.K)),
                sp.Integer(0),
            )
        )

    def free_action(self) -> sp.Expr:
        """``S0``: the action with the score part removed (``s_hat = 0``)."""
        return self.action([sp.zeros(self.dim, 1)] * self.K)

    # -- the cumulant formula -------------------------------------------------------------------
    def m1(self) -> sp.Expr:
        """``M1 = -i sum_k dt_k D_k p_k . m_k``."""
        return sp.expand(
            -sp.I
            * sum(
                (
                    self.dt[k] * self.diffusion[k] * (self.p[k].T * self.mean[k])[0]
                    for k in range(self.K)
                ),
                sp.Integer(0),
            )
        )

    def m2(self, cross_terms: bool = True) -> sp.Expr:
        """``M2 = sum_{k,l} dt_k dt_l D_k D_l p_k^T Sigma_kl p_l``.

        ``cross_terms=False`` keeps ``k = l`` only: a deliberately wrong variant for negative
        controls.
        """
        total = sp.Integer(0)
        for k in range(self.K):
            for j in range(self.K):
                if k != j and not cross_terms:
                    continue
                q = (self.p[k].T * self.cov_block(k, j) * self.p[j])[0]
                total += self.dt[k] * self.dt[j] * self.diffusion[k] * self.diffusion[j] * q
        return sp.expand(total)

    def cumulant_exponent(
        self, m2_factor: object = sp.Rational(1, 2), cross_terms: bool = True
    ) -> sp.Expr:
        """Predicted exponent ``-S0 + M1 - m2_factor * M2`` of the averaged path weight.

        The defaults give the claimed identity; other values are for negative controls.
        """
        return sp.expand(
            -self.free_action() + self.m1() - sp.sympify(m2_factor) * self.m2(cross_terms)
        )

    def cumulant_weight(self, **kwargs) -> sp.Expr:
        """``exp(-S0 + M1 - M2/2)`` (keyword arguments as in :meth:`cumulant_exponent`)."""
        return sp.exp(self.cumulant_exponent(**kwargs))

    # -- the computed average -------------------------------------------------------------------
    def gaussian_average(self) -> GaussianAverage:
        """``E_{s_hat} exp(-S)``, integrated with sympy against the normal density of ``s_hat``."""
        if "avg" not in self._cache:
            mean = sp.Matrix([c for m in self.mean for c in m])
            self._cache["avg"] = gaussian_expectation(
                -self.action(), self.score_variables, mean, self.chol
            )
        return self._cache["avg"]

    def averaged_weight(self) -> sp.Expr:
        """``E_{s_hat} exp(-S)`` as one sympy expression (prefactor times exponential)."""
        return self.gaussian_average().value

    # -- the effective Euler-Maruyama scheme ----------------------------------------------------
    def effective_drift(self, k: int) -> sp.Matrix:
        """``b_k = -beta_k x_k - D_k m_k``: the drift of the averaged dynamics."""
        return -self.beta[k] * self.x[k] - self.diffusion[k] * self.mean[k]

    def increment_cholesky(self) -> sp.Matrix:
        """Cholesky factor of ``Cov(eta_k, eta_l) = dt_k dt_l D_k D_l Sigma_kl``.

        ``diag(-dt_k D_k) chol``, with positive diagonal since ``dt_k < 0``.
        """
        scale = [-self.dt[k] * self.diffusion[k] for k in range(self.K) for _ in range(self.dim)]
        return sp.diag(*scale) * self.chol

    def effective_euler_average(self) -> GaussianAverage:
        """MSR weight of ``x_{k+1} = x_k + dt_k b_k + eta_k``, averaged over Gaussian ``eta``.

        Integrates ``exp(-sum_k i p_k . (x_{k+1} - x_k - dt_k b_k - eta_k))`` against the density of
        ``eta ~ N(0, increment_cholesky increment_cholesky^T)``; its exponent equals
        :meth:`cumulant_exponent`, i.e. the averaged PF-ODE *is* this Euler-Maruyama scheme.
        (The factor is ``diag(-dt_k D_k) chol``, positive on the diagonal because ``dt_k < 0``.)
        """
        eta = [indexed_vector("eta", k, self.dim) for k in range(self.K)]
        expo = -sum(
            (
                sp.I
                * (
                    self.p[k].T
                    * (self.x[k + 1] - self.x[k] - self.dt[k] * self.effective_drift(k) - eta[k])
                )[0]
                for k in range(self.K)
            ),
            sp.Integer(0),
        )
        variables = [c for e in eta for c in e]
        return gaussian_expectation(expo, variables, sp.zeros(self.n, 1), self.increment_cholesky())


def discrete_msr(K: int, dim: int = 1) -> DiscreteMSR:
    """Build the symbolic :class:`DiscreteMSR` with ``K`` Euler steps in ``dim`` dimensions."""
    if not (isinstance(K, int) and K >= 1):
        raise ValueError(f"K must be a positive integer, got {K!r}")
    if not (isinstance(dim, int) and dim >= 1):
        raise ValueError(f"dim must be a positive integer, got {dim!r}")
    n = K * dim
    chol = sp.zeros(n, n)
    for i in range(n):
        chol[i, i] = sp.Symbol(f"l{i}_{i}", positive=True)
        for j in range(i):
            chol[i, j] = sp.Symbol(f"l{i}_{j}", real=True)
    return DiscreteMSR(
        K=K,
        dim=dim,
        x=tuple(indexed_vector("x", k, dim) for k in range(K + 1)),
        p=tuple(indexed_vector("p", k, dim) for k in range(K)),
        s_hat=tuple(indexed_vector("shat", k, dim) for k in range(K)),
        mean=tuple(indexed_vector("m", k, dim) for k in range(K)),
        dt=tuple(sp.Symbol(f"dt{k}", negative=True) for k in range(K)),
        beta=tuple(sp.Symbol(f"beta{k}", real=True) for k in range(K)),
        diffusion=tuple(sp.Symbol(f"D{k}", positive=True) for k in range(K)),
        chol=chol,
    )
