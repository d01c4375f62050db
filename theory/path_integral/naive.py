"""The naive estimator's path integral: discrete -> continuum, and its effective SDE.

For the naive estimator of docs/math/naive_estimator.md the per-step scores are independent with
``Sigma_kl = delta_kl (kappa/h_k) C_k``, hence ``M2 = sum_k h_k kappa D_k**2 p_k^T C_k p_k``, the
Riemann sum of the continuum ``int int p^T V p`` with ``V = kappa D C D delta(t - t')``
(:func:`naive_m2_discrete`, :func:`naive_m2_continuum`, :func:`riemann_limit`), and
``Q_naive = kappa D**2 C`` (:func:`naive_effective_sde`; docs/math/path_integral.md). Higher
cumulants of the per-step noise vanish in the continuum limit (:func:`naive_cumulant_sum`).
For two training points ``+-a`` everything is in closed form (:func:`two_point_naive_sde`).
"""

from __future__ import annotations

import sympy as sp

from gtv.theory.path_integral.continuum import EffectiveSDE, effective_drift, white_noise_intensity
from gtv.theory.path_integral.symbols import (
    indexed_vector,
    kappa,
    symmetric_symbol_matrix,
    t2,
    x,
)
from gtv.theory.proxy import proxy_covariance_two_points
from gtv.theory.schedules import Schedule, as_schedule, t

__all__ = [
    "naive_cumulant_sum",
    "naive_effective_sde",
    "naive_m2_continuum",
    "naive_m2_discrete",
    "naive_v_kernel",
    "riemann_limit",
    "two_point_naive_sde",
    "two_point_naive_sde_from_theory",
    "two_point_score",
]


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
    p = [indexed_vector("p", k, dim) for k in range(K)]
    c = [symmetric_symbol_matrix(f"C{k}", dim) for k in range(K)]
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


def naive_v_kernel(
    schedule: Schedule | str, proxy_cov: object, kappa_value: object = kappa
) -> sp.Expr:
    """``V = kappa D_t C(x, t) D_t' delta(t - t')`` of the naive estimator.

    See docs/math/naive_estimator.md.
    """
    sch = as_schedule(schedule)
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
    sch = as_schedule(schedule)
    a = sp.sympify(a)
    return (sch.alpha * a * sp.tanh(sch.alpha * a * x / sch.sigma2) - x) / sch.sigma2


def naive_effective_sde(
    schedule: Schedule | str,
    score: object,
    proxy_cov: object,
    kappa_value: object = kappa,
    dim: int = 1,
) -> EffectiveSDE:
    """Naive-estimator effective SDE: ``b = -beta x - D s``, ``Q = kappa D**2 C``.

    See docs/math/naive_estimator.md.

    ``Q`` is obtained as :func:`white_noise_intensity` of :func:`naive_v_kernel` (the delta kernel
    integrated by sympy), not written down directly.
    """
    sch = as_schedule(schedule)
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
    sch = as_schedule(schedule)
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
    sch = as_schedule(schedule)
    return naive_effective_sde(
        sch, two_point_score(a, sch), proxy_covariance_two_points(a, sch), kappa_value
    )
