"""Martin-Siggia-Rose path integral of the PF-ODE with a random score (docs/math/path_integral.md, §3.2).

Conventions (docs/math/conventions.md)
--------------------------
The PF-ODE ``dx/dt = -beta_t x - D_t s(x, t)`` runs from ``t = T`` *down* to ``t = eps``. On a
grid ``T = t_0 > t_1 > ... > t_K = eps`` the Euler step with a learned (random) score is

    ``x_{k+1} = x_k + dt_k f_k``, ``f_k = -beta_k x_k - D_k s_hat_k``, ``dt_k = t_{k+1} - t_k < 0``

(signed steps; ``h_k = -dt_k > 0`` is the step length). The score of step ``k`` is evaluated at
``x_k``, the point the step starts from: the pre-point in the direction of integration, so every
continuum SDE below is an **Ito** SDE in reverse time ``tau = T - t``.

Each step is enforced by a Fourier-represented delta function with a response variable ``p_k``,

    ``delta(y_k) = int dp_k/(2 pi)**dim exp(-i p_k . y_k)``,  ``y_k = x_{k+1} - x_k - dt_k f_k``,

so that the path weight is ``exp(-S)`` with the action ``S = sum_k i p_k . y_k``, whose continuum
form is docs/math/path_integral.md's ``int i p . (xdot + beta x + D s_hat) dt``. (The other sign of the Fourier
kernel is the substitution ``p -> -p``, which changes nothing below except the sign of ``i`` in
``M1``.) The random score enters ``S`` only through ``sum_k i dt_k D_k p_k . s_hat_k``; with
``s_hat`` Gaussian of mean ``m_k`` and covariance blocks ``Sigma_kl`` (``dim x dim``, between
steps ``k`` and ``l``),

    ``E exp(-i sum_k dt_k D_k p_k . s_hat_k) = exp(M1 - M2/2)``,
    ``M1 = -i sum_k dt_k D_k p_k . m_k``,
    ``M2 = sum_{k,l} dt_k dt_l D_k D_l p_k^T Sigma_kl p_l``.

:class:`DiscreteMSR` proves this by computing the ``s_hat`` integral: the full Gaussian density of
``s_hat`` (covariance ``L L^T`` with a symbolic Cholesky factor) times ``exp(-S)`` is integrated one
variable at a time, each one-dimensional integral being sympy's own evaluation of
``int exp(-A v**2 + (B_r + i B_i) v) dv`` (:func:`gaussian_rule`), not a quoted formula.

Continuum limit
---------------
The averaged weight ``exp(-S0 + M1 - M2/2)`` is the MSR weight of the Euler scheme
``x_{k+1} = x_k + dt_k b_k + eta_k`` with drift ``b = -beta x - D m`` and Gaussian increments
``Cov(eta_k, eta_l) = dt_k dt_l D_k D_l Sigma_kl``. With ``m_k = s_avg(x_k, t_k)`` and
``D_k D_l Sigma_kl = V(t_k, t_l)`` this becomes the effective dynamics of docs/math/path_integral.md,

    ``dx = (-beta x - D s_avg) dt + xi``,  ``<xi(t) xi(t')^T> = V(x, t; x', t')``,

``V = D_t Cov[s_hat(x,t), s_hat(x',t')] D_t'`` (:func:`effective_drift`, :func:`v_kernel`).
Its white-noise (Markov) approximation has intensity ``Q(x,t) = int V(x,t; x,t+tau) dtau``
(two-sided, :func:`white_noise_intensity`). For the naive estimator of docs/math/naive_estimator.md the per-step
scores are independent with ``Sigma_kl = delta_kl (kappa/h_k) C_k``, hence
``M2 = sum_k h_k kappa D_k**2 p_k^T C_k p_k``, the Riemann sum of the continuum
``int int p^T V p`` with ``V = kappa D C D delta(t - t')`` (:func:`naive_m2_discrete`,
:func:`naive_m2_continuum`), and ``Q_naive = kappa D**2 C``.

Effective SDE in reverse time
-----------------------------
:class:`EffectiveSDE` holds ``b(x, t)`` (the coefficient of ``dt``, ``dt < 0``) and ``Q(x, t)``.
One Euler-Maruyama step from ``t`` to ``t - h`` is ``x <- x - h b(x,t) + sqrt(h Q(x,t)) z``; in
``tau = T - t`` the density obeys the (Ito) Fokker-Planck equation

    ``d q/d tau = div(b q) + (1/2) sum_ij d_i d_j (Q_ij q)``

(:meth:`EffectiveSDE.fokker_planck_rhs`). With ``Q = 0`` and ``b`` from the exact score the
noised density ``p(x|t)`` solves it. :meth:`EffectiveSDE.source` / :meth:`EffectiveSDE.compile`
turn ``b`` and ``Q`` into numba functions of ``(x, t, *params)`` with the printer and float-safe
rewrites of :mod:`gtv.theory.codegen`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

import sympy as sp

from gtv.theory.codegen import _float_safe, _printer
from gtv.theory.proxy import proxy_covariance_two_points, x
from gtv.theory.schedules import Schedule, named_schedule, t

__all__ = [
    "DiscreteMSR",
    "EffectiveSDE",
    "GaussianAverage",
    "discrete_msr",
    "effective_drift",
    "function_source_multi",
    "gaussian_expectation",
    "gaussian_rule",
    "kappa",
    "naive_cumulant_sum",
    "naive_effective_sde",
    "naive_m2_continuum",
    "naive_m2_discrete",
    "naive_v_kernel",
    "riemann_limit",
    "space_symbols",
    "t2",
    "tau",
    "two_point_naive_sde",
    "two_point_naive_sde_from_theory",
    "two_point_score",
    "v_kernel",
    "white_noise_intensity",
    "x",
    "x2",
]

#: Second space point ``x'`` of a two-point kernel ``V(x, t; x', t')`` (1-D).
x2 = sp.Symbol("x2", real=True)
#: Second time ``t'`` of a two-point kernel.
t2 = sp.Symbol("t2", positive=True)
#: Time lag ``tau = t' - t`` of the white-noise integral.
tau = sp.Symbol("tau", real=True)
#: Naive-estimator time constant kappa (units of time), docs/math/naive_estimator.md.
kappa = sp.Symbol("kappa", positive=True)


def space_symbols(dim: int) -> tuple[sp.Symbol, ...]:
    """Space coordinates of ``dim``-dimensional expressions: ``(x,)`` or ``(x0, x1, ...)``."""
    if not (isinstance(dim, int) and dim >= 1):
        raise ValueError(f"dim must be a positive integer, got {dim!r}")
    if dim == 1:
        return (x,)
    return tuple(sp.Symbol(f"x{a}", real=True) for a in range(dim))


def _schedule(schedule: Schedule | str) -> Schedule:
    return named_schedule(schedule) if isinstance(schedule, str) else schedule


# =================================================================================================
# Gaussian integration by sympy
# =================================================================================================
_A = sp.Symbol("A", positive=True)
_BR = sp.Symbol("B_r", real=True)
_BI = sp.Symbol("B_i", real=True)


@functools.lru_cache(maxsize=1)
def gaussian_rule() -> tuple[sp.Expr, sp.Expr]:
    """sympy's value of ``int_R exp(-A v**2 + (B_r + i B_i) v) dv``, ``A > 0``, ``B_r, B_i`` real.

    Computed once by :func:`sympy.integrate` (then simplified) and returned split as
    ``(prefactor, exponent)`` with ``value = prefactor * exp(exponent)``; the prefactor depends on
    ``A`` only. Every Gaussian integral in this module is a substitution into this result.
    """
    v = sp.Symbol("v", real=True)
    value = sp.simplify(
        sp.integrate(sp.exp(-_A * v**2 + (_BR + sp.I * _BI) * v), (v, -sp.oo, sp.oo))
    )
    if value.has(sp.Integral, sp.erf, sp.Piecewise):
        raise RuntimeError(f"sympy did not evaluate the Gaussian integral in closed form: {value}")
    pref, expo = sp.Integer(1), sp.Integer(0)
    for f in sp.Mul.make_args(value):
        if isinstance(f, sp.exp):
            expo += f.args[0]
        else:
            pref *= f
    if pref.free_symbols - {_A}:
        raise RuntimeError(f"unexpected form of the Gaussian integral: {value}")
    return pref, expo


def _split_re_im(expr: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    """Real and imaginary parts of an expression linear in ``I`` with real symbols."""
    e = sp.expand(expr)
    im = e.coeff(sp.I)
    re = sp.expand(e - sp.I * im)
    if re.has(sp.I) or im.has(sp.I):
        raise ValueError(f"cannot split {expr} into real and imaginary parts")
    return re, im


@dataclass(frozen=True)
class GaussianAverage:
    """Result ``prefactor * exp(exponent)`` of a Gaussian integral (parts kept apart)."""

    prefactor: sp.Expr
    exponent: sp.Expr

    @property
    def value(self) -> sp.Expr:
        return self.prefactor * sp.exp(self.exponent)


def _integrate_exp_quadratic(exponent: sp.Expr, variables: Sequence[sp.Symbol]) -> GaussianAverage:
    """``int exp(exponent) d variables`` over ``R**n``, one variable at a time (last first).

    ``exponent`` must be a polynomial of degree 2 in each variable, with a negative ``v**2``
    coefficient once the later variables are integrated out (checked with sympy's assumptions).
    """
    rule_pref, rule_expo = gaussian_rule()
    pref = sp.Integer(1)
    expo = sp.expand(exponent)
    for v in reversed(list(variables)):
        coeffs = sp.collect(expo, v, evaluate=False)
        unknown = set(coeffs) - {sp.Integer(1), v, v**2}
        if unknown:
            raise ValueError(
                f"exponent is not quadratic in {v}: terms in {sorted(map(str, unknown))}"
            )
        a = sp.cancel(-coeffs.get(v**2, sp.Integer(0)))
        if a.is_positive is not True:
            raise ValueError(f"the coefficient of -{v}**2 must be provably positive, got {a}")
        br, bi = _split_re_im(coeffs.get(v, sp.Integer(0)))
        sub = {_A: a, _BR: br, _BI: bi}
        pref = pref * rule_pref.subs(_A, a)
        expo = sp.expand(coeffs.get(sp.Integer(1), sp.Integer(0)) + rule_expo.xreplace(sub))
    return GaussianAverage(pref, expo)


def gaussian_expectation(
    exponent: sp.Expr,
    variables: Sequence[sp.Symbol],
    mean: sp.Matrix,
    chol: sp.Matrix,
) -> GaussianAverage:
    """``E[exp(exponent)]`` for ``variables ~ N(mean, chol chol^T)``, by explicit integration.

    The normal density ``exp(-|chol^{-1}(v - mean)|**2 / 2) / ((2 pi)**(n/2) det chol)`` is written
    out and ``exp(exponent) * density`` integrated over ``R**n`` with sympy (see
    :func:`gaussian_rule`). ``chol`` must be lower triangular with provably positive diagonal;
    ``exponent`` at most linear in ``variables`` (for a characteristic function).

    Returns
    -------
    GaussianAverage
        ``prefactor`` (simplified; 1 for a correctly normalized density) and ``exponent``
        (expanded).
    """
    n = len(variables)
    mean = sp.Matrix(mean)
    chol = sp.Matrix(chol)
    if mean.shape != (n, 1) or chol.shape != (n, n):
        raise ValueError(f"mean must be {n}x1 and chol {n}x{n}, got {mean.shape} and {chol.shape}")
    if not chol.is_lower:
        raise ValueError("chol must be lower triangular")
    if any(chol[i, i].is_positive is not True for i in range(n)):
        raise ValueError("chol must have a provably positive diagonal")
    white = chol.inv() * (sp.Matrix(variables) - mean)  # lower-triangular solve, exact
    log_density = -sum((w**2 for w in white), sp.Integer(0)) / 2
    norm = 1 / ((2 * sp.pi) ** sp.Rational(n, 2) * sp.prod([chol[i, i] for i in range(n)]))
    res = _integrate_exp_quadratic(exponent + log_density, variables)
    return GaussianAverage(sp.simplify(norm * res.prefactor), res.exponent)


# =================================================================================================
# The time-discretized action
# =================================================================================================
def _vec(name: str, k: int, dim: int) -> sp.Matrix:
    if dim == 1:
        return sp.Matrix([sp.Symbol(f"{name}{k}", real=True)])
    return sp.Matrix([sp.Symbol(f"{name}{k}_{a}", real=True) for a in range(dim)])


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
        eta = [_vec("eta", k, self.dim) for k in range(self.K)]
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
        x=tuple(_vec("x", k, dim) for k in range(K + 1)),
        p=tuple(_vec("p", k, dim) for k in range(K)),
        s_hat=tuple(_vec("shat", k, dim) for k in range(K)),
        mean=tuple(_vec("m", k, dim) for k in range(K)),
        dt=tuple(sp.Symbol(f"dt{k}", negative=True) for k in range(K)),
        beta=tuple(sp.Symbol(f"beta{k}", real=True) for k in range(K)),
        diffusion=tuple(sp.Symbol(f"D{k}", positive=True) for k in range(K)),
        chol=chol,
    )


# =================================================================================================
# Naive estimator: discrete -> continuum
# =================================================================================================
def _sym_matrix(name: str, dim: int) -> sp.Matrix:
    m = sp.zeros(dim, dim)
    for a in range(dim):
        for b in range(a, dim):
            m[a, b] = m[b, a] = sp.Symbol(f"{name}_{a}{b}", real=True)
    return m


def naive_m2_discrete(K: int, dim: int = 1) -> tuple[sp.Expr, dict]:
    """``M2`` of the naive estimator on a ``K``-step grid, from the general double sum.

    Per-step scores ``s_hat_k = s_k + sqrt(kappa/h_k) (s_tilde_k - s_k)`` with independent draws
    have ``Sigma_kl = delta_kl (kappa/h_k) C_k`` (``C_k`` the proxy covariance at step ``k``, a
    symbolic symmetric matrix); steps ``dt_k = -h_k``, ``h_k > 0``.

    Returns
    -------
    (M2, symbols)
        ``M2 = sum_{k,l} dt_k dt_l D_k D_l p_k^T Sigma_kl p_l`` and the symbols used:
        ``{"h", "D", "p", "C"}`` (lists over ``k``).
    """
    if not (isinstance(K, int) and K >= 1):
        raise ValueError(f"K must be a positive integer, got {K!r}")
    h = [sp.Symbol(f"h{k}", positive=True) for k in range(K)]
    d = [sp.Symbol(f"D{k}", positive=True) for k in range(K)]
    p = [_vec("p", k, dim) for k in range(K)]
    c = [_sym_matrix(f"C{k}", dim) for k in range(K)]
    dt = [-hk for hk in h]
    total = sp.Integer(0)
    for k in range(K):
        for j in range(K):
            block = kappa / h[k] * c[k] if k == j else sp.zeros(dim, dim)
            total += dt[k] * dt[j] * d[k] * d[j] * (p[k].T * block * p[j])[0]
    return sp.expand(total), {"h": h, "D": d, "p": p, "C": c}


def naive_m2_continuum(dim: int = 1) -> tuple[sp.Expr, dict]:
    """Integrand ``g(t)`` of the continuum ``M2 = int g dt`` for ``V = kappa D C D delta(t - t')``.

    ``g(t) = int dt' p(t)^T V(t, t') p(t')`` is evaluated by sympy (the delta function collapses
    the ``t'`` integral); ``p``, ``D`` and the symmetric ``C`` are undefined functions of time.

    Returns
    -------
    (g, functions)
        ``g`` as an expression in :data:`t` and ``{"p", "D", "C"}`` (the undefined functions, as
        ``p[a]``, ``D`` and ``C[a][b]``, each called as ``f(t)``).
    """
    tp = sp.Symbol("tp", real=True)
    tr = sp.Symbol("tr", real=True)
    pf = [sp.Function(f"p_{a}" if dim > 1 else "p", real=True) for a in range(dim)]
    dfun = sp.Function("D", positive=True)
    cf = [[None] * dim for _ in range(dim)]
    for a in range(dim):
        for b in range(a, dim):
            cf[a][b] = cf[b][a] = sp.Function(f"C_{a}{b}", real=True)
    integrand = sp.Integer(0)
    for a in range(dim):
        for b in range(dim):
            integrand += pf[a](tr) * kappa * dfun(tr) * cf[a][b](tr) * dfun(tp) * pf[b](tp)
    integrand *= sp.DiracDelta(tr - tp)
    g = sp.integrate(sp.expand(integrand), (tp, -sp.oo, sp.oo))
    if g.has(sp.Integral, sp.DiracDelta):
        raise RuntimeError(f"sympy did not collapse the delta function: {g}")
    return g.subs(tr, t), {"p": pf, "D": dfun, "C": cf}


def riemann_limit(integrand: sp.Expr, eps: object, T: object) -> tuple[sp.Expr, sp.Expr]:
    """``lim_{K->oo} sum_k h g(t_k)`` on the reverse grid ``t_k = T - k h``, ``h = (T - eps)/K``.

    The pre-point sum (``k = 0..K-1``, as in the Euler scheme) is summed in closed form by sympy
    and its limit taken; returns ``(limit, int_eps^T g dt)`` for comparison. ``integrand`` must
    be an expression in :data:`t` that sympy can sum (e.g. a polynomial).
    """
    K = sp.Symbol("K", positive=True, integer=True)
    k = sp.Symbol("k", nonnegative=True, integer=True)
    eps, T = sp.sympify(eps), sp.sympify(T)
    h = (T - eps) / K
    riemann = sp.summation(h * integrand.subs(t, T - k * h), (k, 0, K - 1))
    return sp.simplify(sp.limit(riemann, K, sp.oo)), sp.simplify(
        sp.integrate(integrand, (t, eps, T))
    )


def naive_cumulant_sum(order: int) -> sp.Expr:
    """Summed contribution of the ``order``-th cumulant of the naive per-step noise (step ``h``).

    The ``n``-th cumulant of ``dt_k D_k p_k . s_hat_k`` scales as ``h**n (kappa/h)**(n/2) c_n``;
    summed over ``(T - eps)/h`` steps this is ``(T - eps) h**(n/2 - 1) kappa**(n/2) c_n``.
    Its ``h -> 0`` limit is finite for ``n = 2`` and zero for ``n >= 3``: the Gaussian
    (two-cumulant) effective dynamics of the naive estimator are exact in the continuum limit even
    though the per-step proxy noise is not Gaussian. Returns the expression in ``h`` (take
    ``sp.limit``).
    """
    h = sp.Symbol("h", positive=True)
    c_n, length = sp.Symbol("c_n", positive=True), sp.Symbol("L", positive=True)
    n = sp.Integer(order)
    return (length / h) * h**n * (kappa / h) ** (n / 2) * c_n


# =================================================================================================
# Continuum effective dynamics
# =================================================================================================
def effective_drift(schedule: Schedule | str, s_avg: object, dim: int = 1) -> sp.Expr | sp.Matrix:
    """``b(x, t) = -beta_t x - D_t s_avg(x, t)``: the coefficient of ``dt`` (PF-ODE: ``dt < 0``).

    ``s_avg`` is a sympy expression in :data:`x` (or a ``dim x 1`` Matrix in :func:`space_symbols`)
    and :data:`t`.
    """
    sch = _schedule(schedule)
    if dim == 1 and not isinstance(s_avg, sp.MatrixBase):
        return -sch.beta * x - sch.diffusion * sp.sympify(s_avg)
    s_avg = sp.Matrix(s_avg)
    xs = sp.Matrix(space_symbols(dim))
    if s_avg.shape != (dim, 1):
        raise ValueError(f"s_avg must be a {dim}x1 matrix, got shape {s_avg.shape}")
    return -sch.beta * xs - sch.diffusion * s_avg


def v_kernel(schedule: Schedule | str, score_cov: object) -> sp.Expr | sp.Matrix:
    """``V(x,t; x',t') = D_t Cov[s_hat(x,t), s_hat(x',t')] D_t'``.

    ``score_cov`` is written in ``x, t`` and ``x2, t2`` (:data:`x2`, :data:`t2`); ``D_t'`` is the
    schedule's diffusion at :data:`t2`.
    """
    sch = _schedule(schedule)
    return sch.diffusion * sp.sympify(score_cov) * sch.diffusion.subs(t, t2)


def _lag_integral(expr: sp.Expr, lag: sp.Symbol) -> sp.Expr:
    """``int_R expr dlag``.

    Without delta functions as ``int_0^oo [f(u) + f(-u)] du``, so that ``|lag|`` resolves.
    """
    if expr.has(sp.DiracDelta):
        res = sp.integrate(sp.expand(expr), (lag, -sp.oo, sp.oo))
    else:
        u = sp.Dummy("u", positive=True)
        res = sp.integrate(expr.subs(lag, u) + expr.subs(lag, -u), (u, 0, sp.oo), conds="none")
    if res.has(sp.Integral):
        raise ValueError(f"sympy could not integrate the kernel over its time lag: {res}")
    return sp.simplify(res)


def white_noise_intensity(V: object, dim: int = 1) -> sp.Expr | sp.Matrix:
    """Markov approximation ``Q(x, t) = int_R V(x, t; x, t + tau) dtau`` (two-sided, docs/math/predictions.md).

    ``V`` may be written in ``(x, t, x2, t2)`` (then ``x2 -> x``, ``t2 -> t + tau``) or directly in
    the lag :data:`tau`. For ``dim > 1`` pass a Matrix in :func:`space_symbols` with the second
    point's coordinates named ``x0_2, x1_2, ...`` (real symbols) or already set equal.
    """
    V = sp.sympify(V)
    xs = space_symbols(dim)
    sub = {t2: t + tau}
    if dim == 1:
        sub[x2] = x
    else:
        sub.update({sp.Symbol(f"{s.name}_2", real=True): s for s in xs})
    if isinstance(V, sp.MatrixBase):
        return V.applyfunc(lambda e: _lag_integral(sp.sympify(e).subs(sub), tau))
    return _lag_integral(V.subs(sub), tau)


def naive_v_kernel(
    schedule: Schedule | str, proxy_cov: object, kappa_value: object = kappa
) -> sp.Expr:
    """``V = kappa D_t C(x, t) D_t' delta(t - t')`` of the naive estimator (docs/math/naive_estimator.md)."""
    sch = _schedule(schedule)
    return (
        sp.sympify(kappa_value)
        * sch.diffusion
        * sp.sympify(proxy_cov)
        * sch.diffusion.subs(t, t2)
        * sp.DiracDelta(t - t2)
    )


def two_point_score(a: object, schedule: Schedule | str) -> sp.Expr:
    """Exact score for two training points ``+-a`` in 1-D.

    ``s = (alpha a tanh(alpha a x/sigma**2) - x)/sigma**2``.
    """
    sch = _schedule(schedule)
    a = sp.sympify(a)
    return (sch.alpha * a * sp.tanh(sch.alpha * a * x / sch.sigma2) - x) / sch.sigma2


def _rewrite_hyperbolic(expr: sp.Expr) -> sp.Expr:
    # NumPy has no sech/csch/coth; the printer's exp forms overflow to inf/inf = NaN.
    return (
        expr.replace(sp.sech, lambda u: 1 / sp.cosh(u))
        .replace(sp.csch, lambda u: 1 / sp.sinh(u))
        .replace(sp.coth, lambda u: 1 / sp.tanh(u))
    )


def function_source_multi(
    fname: str, expr: sp.Expr, args: Sequence[sp.Symbol], decorator: str = ""
) -> str:
    """Like :func:`gtv.theory.codegen.function_source` for several arguments, e.g. ``(x, t, kappa)``.

    Same float-safe rewriting, cse and NumPy printer; ``sech``/``csch``/``coth`` are rewritten to
    ``1/cosh`` etc. first. Arguments the expression does not use are added as ``0.0 * arg`` so the
    result broadcasts over array arguments.
    """
    args = list(args)
    expr = sp.sympify(expr)
    extra = expr.free_symbols - set(args)
    if extra:
        raise ValueError(f"expr contains symbols that are not arguments: {sorted(map(str, extra))}")
    printer = _printer()
    expr = _float_safe(_rewrite_hyperbolic(expr))
    replacements, (reduced,) = sp.cse(expr, symbols=sp.numbered_symbols("_c"))
    lines = ([decorator] if decorator else []) + [f"def {fname}({', '.join(map(str, args))}):"]
    for sym, sub in replacements:
        lines.append(f"    {sym} = {printer.doprint(_float_safe(sub))}")
    body = printer.doprint(reduced)
    used = set(reduced.free_symbols)
    for _, sub in replacements:
        used |= sub.free_symbols
    missing = [a for a in args if a not in used]
    if missing:
        body = f"{body} + " + " + ".join(f"0.0 * {a}" for a in missing)
    lines.append(f"    return {body}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class EffectiveSDE:
    """Reverse-time effective SDE ``dx = b dt + sqrt(Q) dW`` (``dt < 0``; Ito in ``tau = T - t``).

    Attributes
    ----------
    drift : sympy.Expr or Matrix
        ``b(x, t)``, the coefficient of ``dt`` (PF-ODE convention ``-beta x - D s_avg``).
    noise : sympy.Expr or Matrix
        ``Q(x, t)``: covariance per unit ``|dt|`` of the increments.
    dim : int
        Space dimension; the coordinates are :func:`space_symbols` ``(dim)``.
    """

    drift: sp.Expr | sp.MatrixBase
    noise: sp.Expr | sp.MatrixBase
    dim: int = 1

    @property
    def space(self) -> tuple[sp.Symbol, ...]:
        return space_symbols(self.dim)

    @property
    def params(self) -> tuple[sp.Symbol, ...]:
        """Free symbols other than the coordinates and ``t``, sorted by name (extra arguments)."""
        free = set()
        for e in self.components().values():
            free |= e.free_symbols
        free -= set(self.space) | {t}
        return tuple(sorted(free, key=lambda s: s.name))

    @property
    def args(self) -> tuple[sp.Symbol, ...]:
        """Arguments of every compiled function: ``(*space, t, *params)``."""
        return (*self.space, t, *self.params)

    def components(self) -> dict[str, sp.Expr]:
        """``{"drift": b, "noise": Q}`` in 1-D; else ``drift_a`` and ``noise_ab`` (``a <= b``)."""
        if self.dim == 1:
            b = self.drift[0] if isinstance(self.drift, sp.MatrixBase) else self.drift
            q = self.noise[0, 0] if isinstance(self.noise, sp.MatrixBase) else self.noise
            return {"drift": sp.sympify(b), "noise": sp.sympify(q)}
        out = {}
        for a in range(self.dim):
            out[f"drift_{a}"] = sp.sympify(self.drift[a])
        for a in range(self.dim):
            for b in range(a, self.dim):
                out[f"noise_{a}{b}"] = sp.sympify(self.noise[a, b])
        return out

    def fokker_planck_rhs(self, q: sp.Expr) -> sp.Expr:
        """``d q / d tau = div(b q) + (1/2) sum_ij d_i d_j (Q_ij q)`` for a density ``q(x, t)``."""
        comps = self.components()
        xs = self.space
        if self.dim == 1:
            return sp.diff(comps["drift"] * q, x) + sp.diff(comps["noise"] * q, x, 2) / 2
        rhs = sum((sp.diff(comps[f"drift_{a}"] * q, xs[a]) for a in range(self.dim)), sp.Integer(0))
        for a in range(self.dim):
            for b in range(self.dim):
                qab = comps[f"noise_{min(a, b)}{max(a, b)}"]
                rhs += sp.diff(qab * q, xs[a], xs[b]) / 2
        return rhs

    def source(
        self, prefix: str = "sde", decorator: str = "@njit(cache=True, error_model='numpy')"
    ) -> str:
        """Python/numba source of one function ``{prefix}_{component}(*args)`` per component."""
        return "\n\n".join(
            function_source_multi(f"{prefix}_{name}", expr, self.args, decorator=decorator)
            for name, expr in self.components().items()
        )

    def compile(self, prefix: str = "sde") -> dict:
        """Compile the components with numba at run time (no on-disk cache for ``exec``'d code).

        Returns ``{component: function}``; every function takes :attr:`args` (floats or arrays).
        """
        src = "import numpy\nfrom numba import njit\n\n" + self.source(
            prefix, decorator="@njit(error_model='numpy')"
        )
        namespace: dict = {}
        exec(compile(src, f"<gtv effective SDE {prefix}>", "exec"), namespace)
        return {name: namespace[f"{prefix}_{name}"] for name in self.components()}


def naive_effective_sde(
    schedule: Schedule | str,
    score: object,
    proxy_cov: object,
    kappa_value: object = kappa,
    dim: int = 1,
) -> EffectiveSDE:
    """Naive-estimator effective SDE: ``b = -beta x - D s``, ``Q = kappa D**2 C`` (docs/math/naive_estimator.md).

    ``Q`` is obtained as :func:`white_noise_intensity` of :func:`naive_v_kernel` (the delta kernel
    integrated by sympy), not written down directly.
    """
    sch = _schedule(schedule)
    drift = effective_drift(sch, score, dim)
    if dim == 1 and not isinstance(proxy_cov, sp.MatrixBase):
        noise = white_noise_intensity(naive_v_kernel(sch, proxy_cov, kappa_value))
    else:
        c = sp.Matrix(proxy_cov)
        if c.shape != (dim, dim):
            raise ValueError(f"proxy_cov must be {dim}x{dim}, got shape {c.shape}")
        noise = c.applyfunc(lambda e: white_noise_intensity(naive_v_kernel(sch, e, kappa_value)))
    return EffectiveSDE(drift, noise, dim)


def two_point_naive_sde(
    a: object, schedule: Schedule | str, kappa_value: object = kappa
) -> EffectiveSDE:
    """Naive-estimator effective SDE for two training points ``+-a`` in 1-D, in closed form.

    ``b = (D/sigma**2 - beta) x - (D alpha/sigma**2) a tanh(alpha a x/sigma**2)`` and
    ``Q = kappa D**2 (alpha**2 a**2/sigma**4) sech**2(alpha a x/sigma**2)``, written with the
    schedule's simplified coefficients (``pf_x_coeff``, ``pf_mean_coeff``, ``proxy_cov_scale``) so
    that the generated code is the same quality as the schedule functions. Equal to
    :func:`naive_effective_sde` with :func:`two_point_score` and
    :func:`gtv.theory.proxy.proxy_covariance_two_points` (tested).
    """
    sch = _schedule(schedule)
    a = sp.sympify(a)
    y = sch.quantity("score_mean_coeff") * a * x
    drift = sch.quantity("pf_x_coeff") * x - sch.quantity("pf_mean_coeff") * a * sp.tanh(y)
    noise = (
        sp.sympify(kappa_value)
        * sch.diffusion**2
        * sch.quantity("proxy_cov_scale")
        * a**2
        * sp.sech(y) ** 2
    )
    return EffectiveSDE(drift, noise, 1)


def two_point_naive_sde_from_theory(
    a: object, schedule: Schedule | str, kappa_value: object = kappa
) -> EffectiveSDE:
    """:func:`two_point_naive_sde` assembled from the general pieces (score, delta kernel)."""
    sch = _schedule(schedule)
    return naive_effective_sde(
        sch, two_point_score(a, sch), proxy_covariance_two_points(a, sch), kappa_value
    )
