"""Gaussian data, linear model with features (1, x) x time-bin indicators, in closed form.

Item 2 of docs/math/closed_forms.md (docs/math/linear.md). Model ``n`` has
``D^(x, t) = a_b + c_b x`` for ``t`` in bin ``b``. The PF-ODE with an affine denoiser is affine,
and on a bin ``[lo, hi]`` its flow (from ``hi`` down to ``lo``) is
``x_lo = g_b x_hi + a_b eta_b(c_b)`` with (:func:`affine_bin_map`)

   ``g_b(c) = (sigma_lo/sigma_hi) exp(c J_b)``,
   ``eta_b(c) = int_lo^hi B(t) (sigma_lo/sigma_t) exp(c J(t)) dt``,

``B = D alpha/sigma**2`` (``pf_mean_coeff``), ``J(t) = int_lo^t B`` (using
``D/sigma**2 - beta = (1/2) d log sigma**2/dt``). Over the bins, in sampler order,
``x_eps = G x_T + H`` with ``G = prod_b g_b`` and ``H = sum_b a_b eta_b prod_{b' < b} g_b'``
(:func:`affine_composition`). The coefficients ``theta = (a_b, c_b)_b`` are random (trained on P
DSM triples); :func:`binned_affine_theory` gives their population value, first-order covariance
(docs/math/linear.md, with the multinomial bin counts accounted for: ``t ~ U[eps, T]`` is part of
each triple) and their ``O(1/P)`` mean shift, and expands ``E[H]`` and
``Var[x_eps] = Var[x_T] E[G**2] + Var[H]`` to first order in ``1/P``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import sympy as sp

from gtv.theory.closed_forms.checks import check_bin_edges, check_positive
from gtv.theory.closed_forms.integration import (
    closed_form_integral,
    rational_antiderivative,
    rationalizing_substitutions,
    real_value,
)
from gtv.theory.schedules import Schedule, as_schedule, t

__all__ = [
    "BinnedAffineTheoryValues",
    "a_sym",
    "affine_bin_map",
    "affine_composition",
    "binned_affine_theory",
    "binned_bin_moments",
    "c_sym",
    "delta_method_moments",
    "gaussian_design_inverse_moment",
    "q0_sym",
    "q1_sym",
    "q2_sym",
]

#: Coefficient symbols of one bin, ``D^ = a + c x``, and of the quadratic form ``phi^T M phi``.
a_sym, c_sym = sp.symbols("a c", real=True)
q0_sym, q1_sym, q2_sym = sp.symbols("q0 q1 q2", real=True)


def _bin_integral(
    expr: sp.Expr, sch: Schedule, lo: sp.Expr, hi: sp.Expr, params: Sequence[sp.Symbol]
) -> sp.Expr:
    """``int_lo^hi expr dt`` for ``expr`` polynomial in ``params``: one closed-form integral per
    coefficient function of ``t`` (cached), recombined."""
    poly = sp.Poly(sp.expand(expr), *params)
    total = sp.Integer(0)
    for monom, coeff in poly.terms():
        mono = sp.Mul(*[p**k for p, k in zip(params, monom, strict=True)])
        total += mono * _coefficient_integral(sp.sympify(coeff), sch, lo, hi)
    return total


@functools.lru_cache(maxsize=4096)
def _coefficient_integral(coeff: sp.Expr, sch: Schedule, lo: sp.Expr, hi: sp.Expr) -> sp.Expr:
    return closed_form_integral(coeff, sch, lo, hi)


def binned_bin_moments(
    schedule: Schedule | str,
    m_value: object,
    s2_value: object,
    lo: object,
    hi: object,
    L: object,
) -> dict[str, sp.Matrix]:
    """Population moments of one time bin ``[lo, hi]`` for data ``N(m, s2)``, ``t ~ U`` on an
    interval of length ``L`` (so the bin has probability ``(hi - lo)/L``).

    With ``phi = (1, x)`` on the bin, ``lam = alpha**2/sigma**2`` and the residual
    ``r = x0 - a - c x`` of the bin's coefficients ``(a, c)`` (symbols :data:`a_sym`,
    :data:`c_sym`), and ``phi^T M phi = q0 + q1 x + q2 x**2``:

    * ``"S"`` = ``E[lam 1_b phi phi^T]`` (2x2), ``"A"`` = ``E[lam 1_b x0 phi]`` (2x1);
    * ``"Egg"`` = ``E[lam**2 1_b r**2 phi phi^T]`` (polynomial in ``a, c``);
    * ``"proxy"`` = ``E[lam**2 1_b Var(x0|x,t) phi phi^T]`` (the proxy-noise part of ``Egg``);
    * ``"bias"`` = ``E[lam**2 1_b r (phi^T M phi) phi]`` (2x1, polynomial in ``a, c, q``).

    Conditional on ``t``, ``(x0, x)`` is bivariate Gaussian with means ``(m, alpha m)``, variances
    ``(s2, v)`` and covariance ``alpha s2``; moments follow from Isserlis' theorem (written via the
    means, and Stein's lemma ``Cov(r, f(x)) = Cov(r, x) E f'(x)``).
    """
    sch = as_schedule(schedule)
    m_value, s2_value = sp.sympify(m_value), check_positive(s2_value, "s2")
    lo, hi, L = sp.sympify(lo), sp.sympify(hi), sp.sympify(L)
    al, sg2 = sch.alpha, sch.sigma2
    lam = sch.quantity("dsm_weight")
    v = al**2 * s2_value + sg2
    mx = al * m_value
    # Raw moments E[x^k | t], k = 0..4.
    Ex = [sp.Integer(1), mx, mx**2 + v, mx**3 + 3 * mx * v, mx**4 + 6 * mx**2 * v + 3 * v**2]
    mr = m_value - a_sym - c_sym * mx  # E r
    Kc = al * s2_value - c_sym * v  # Cov(r, x)
    Vr = s2_value - 2 * c_sym * al * s2_value + c_sym**2 * v  # Var r
    Er2 = Vr + mr**2
    # E[r**2 x**k], k = 0, 1, 2 (Isserlis with means) and E[r x**k] = mr E[x**k] + k Kc E[x**(k-1)]
    # (Stein's lemma), k = 0..3.
    Er2x = [Er2, mx * Er2 + 2 * mr * Kc, Er2 * (v + mx**2) + 2 * Kc**2 + 4 * mr * mx * Kc]

    def Erx(k: int) -> sp.Expr:
        return mr * Ex[k] + k * Kc * Ex[k - 1] if k >= 1 else mr

    params = (a_sym, c_sym, q0_sym, q1_sym, q2_sym)
    scale = 1 / L

    def I(expr: sp.Expr) -> sp.Expr:  # noqa: E743
        return scale * _bin_integral(expr, sch, lo, hi, params)

    S = sp.Matrix(2, 2, lambda i, j: I(lam * Ex[i + j]))
    A = sp.Matrix([I(lam * m_value), I(lam * al * (m_value**2 + s2_value))])
    Egg = sp.Matrix(2, 2, lambda i, j: I(lam**2 * Er2x[i + j]))
    post_var = s2_value * sg2 / v
    proxy = sp.Matrix(2, 2, lambda i, j: I(lam**2 * post_var * Ex[i + j]))
    q = (q0_sym, q1_sym, q2_sym)
    bias = sp.Matrix([I(lam**2 * sum(q[i] * Erx(k + i) for i in range(3))) for k in range(2)])
    return {"S": S, "A": A, "Egg": Egg, "proxy": proxy, "bias": bias}


@functools.lru_cache(maxsize=32)
def _map_variable(sch: Schedule) -> tuple[sp.Expr, sp.Symbol, sp.Expr] | None:
    """``W(t) = int B dt`` (``B = pf_mean_coeff``), a symbol ``w`` and ``sigma`` as a function of
    ``w`` (inverting ``W``); ``None`` where no substitution makes ``B dt`` rational.

    E.g. ``ve``: ``W = log(sigma) + const`` (``u = sigma**2``); ``linear-variance``:
    ``W = -atanh(alpha)`` (``u = alpha``), so ``sigma = sech(w)``.
    """
    B = sch.quantity("pf_mean_coeff")
    t_test = sp.Rational(1, 3) * sch.T
    w = sp.Symbol("w", real=True)
    for u_of_t, u, t_of_u in rationalizing_substitutions(sch):
        f = B if u is t else B.subs(t, t_of_u) * sp.diff(t_of_u, u)
        f = sp.cancel(sp.together(sp.powsimp(f, force=True)))
        if not f.is_rational_function(u):
            continue
        u_test = u_of_t.subs(t, t_test)
        W_u = sp.expand_log(rational_antiderivative(f, u, u_test), force=True)
        try:
            sols = sp.solve(sp.Eq(W_u, w), u)
        except NotImplementedError:  # pragma: no cover
            continue
        w_test = W_u.subs(u, u_test)
        for sol in sols:
            if abs(complex(sp.N(sol.subs(w, w_test) - u_test, 30))) < 1e-20:
                sigma_w = sp.sqrt(sch.sigma2.subs(t, t_of_u).subs(u, sol))
                sigma_w = sp.simplify(sp.powsimp(sigma_w, force=True))
                return W_u.subs(u, u_of_t), w, sigma_w
    return None


def _resolve_piecewise(expr: sp.Expr, at: dict) -> sp.Expr:
    """Replace every ``Piecewise`` by its first branch whose condition holds at the point ``at``."""

    def pick(*pairs):
        for e, c in pairs:
            cond = c.subs(at) if hasattr(c, "subs") else c
            if cond in (True, sp.true):
                return e
        return sp.nan

    return expr.replace(
        lambda e: isinstance(e, sp.Piecewise), lambda e: pick(*[(p.expr, p.cond) for p in e.args])
    )


def affine_bin_map(
    schedule: Schedule | str, lo: object, hi: object, c_value: object = c_sym
) -> tuple[sp.Expr, sp.Expr]:
    """PF-ODE flow over one bin for ``D^ = a + c x``: ``x_lo = g x_hi + a eta``; returns
    ``(g, eta)`` as functions of ``c``.

    ``g = (sigma_lo/sigma_hi) exp(c J)``, ``J = W(hi) - W(lo)``, ``W = int B dt``;
    ``eta = sigma_lo int_{W(lo)}^{W(hi)} exp(c (w - W(lo))) / sigma(t(w)) dw`` (substituting
    ``w = W(t)``, ``dw = B dt``). Closed form for ``ve``, ``edm`` and ``linear-variance``; an
    unevaluated ``Integral`` in ``t`` otherwise.
    """
    sch = as_schedule(schedule)
    lo, hi, c_value = sp.sympify(lo), sp.sympify(hi), sp.sympify(c_value)
    s_lo, s_hi = sp.sqrt(sch.sigma2.subs(t, lo)), sp.sqrt(sch.sigma2.subs(t, hi))
    mv = _map_variable(sch)
    B = sch.quantity("pf_mean_coeff")
    if mv is None:
        tt = sp.Dummy("tau", positive=True)
        J_t = sp.Integral(B.subs(t, tt), (tt, lo, t))
        g = s_lo / s_hi * sp.exp(c_value * sp.Integral(B, (t, lo, hi)))
        eta = sp.Integral(B * s_lo / sp.sqrt(sch.sigma2) * sp.exp(c_value * J_t), (t, lo, hi))
        return g, eta
    W, w, sigma_w = mv
    W_lo, W_hi = W.subs(t, lo), W.subs(t, hi)
    g = s_lo / s_hi * sp.exp(c_value * (W_hi - W_lo))
    cc = sp.Dummy("c", real=True)
    F = sp.integrate(sp.exp(cc * w) / sigma_w, w, conds="none")
    F = _resolve_piecewise(F, {w: W.subs(t, sp.Rational(1, 3) * sch.T)})
    eta = s_lo * sp.exp(-c_value * W_lo) * (F.subs(w, W_hi) - F.subs(w, W_lo)).subs(cc, c_value)
    return g, eta


def affine_composition(
    g: Sequence[sp.Expr], eta: Sequence[sp.Expr], a: Sequence[sp.Expr]
) -> tuple[sp.Expr, sp.Expr]:
    """Compose the bin maps in sampler order (from the top bin down): ``x_eps = G x_T + H``.

    Bins are indexed by increasing time; bin ``b`` maps ``x_hi -> g_b x_hi + a_b eta_b``. Hence
    ``G = prod_b g_b`` and ``H = sum_b a_b eta_b prod_{b' < b} g_b'``.
    """
    if not (len(g) == len(eta) == len(a)) or len(g) < 1:
        raise ValueError("g, eta and a must have the same positive length (one entry per bin)")
    G, H = sp.Integer(1), sp.Integer(0)
    for b in reversed(range(len(g))):
        G, H = g[b] * G, g[b] * H + a[b] * eta[b]
    return G, H


def delta_method_moments(
    f: sp.Expr,
    theta: Sequence[sp.Symbol],
    at: Sequence[object],
    bias: Sequence[object],
    cov: sp.Matrix,
) -> sp.Expr:
    """``E f(theta) = f + grad f . delta + (1/2) tr(Hess f Cov)`` at ``theta = at`` (``O(1/P)``)."""
    subs = dict(zip(theta, at, strict=True))
    grad = sp.Matrix([sp.diff(f, th) for th in theta]).subs(subs)
    hess = sp.hessian(f, theta).subs(subs)
    return (
        f.subs(subs)
        + (grad.T * sp.Matrix(bias))[0, 0]
        + sp.Rational(1, 2) * sum(hess.multiply_elementwise(sp.Matrix(cov)))
    )


@dataclass(frozen=True)
class BinnedAffineTheoryValues:
    """Numbers (sympy Floats) from :func:`binned_affine_theory`.

    Attributes
    ----------
    theta_inf : Matrix (2K x 1)
        Population coefficients ``(a_0, c_0, a_1, c_1, ...)`` (bins by increasing time).
    cov_theta : Matrix (2K x 2K)
        First-order ``Cov(theta)`` at ``P``; ``cov_theta_proxy`` its proxy-noise part.
    bias : Matrix (2K x 1)
        ``E[theta] - theta_inf`` to ``O(1/P)``.
    mean_inf, var_inf : Float
        ``E[x_eps]``, ``Var[x_eps]`` of the population model (``P = inf``).
    mean, var : Float
        ``[q]``'s mean and variance to first order in ``1/P``.
    mean_no_bias, var_no_bias : Float
        The same without the coefficient mean shift (what a Gaussian field
        ``theta ~ N(theta_inf, Cov)`` gives).
    """

    theta_inf: sp.Matrix
    cov_theta: sp.Matrix
    cov_theta_proxy: sp.Matrix
    bias: sp.Matrix
    mean_inf: sp.Expr
    var_inf: sp.Expr
    mean: sp.Expr
    var: sp.Expr
    mean_no_bias: sp.Expr
    var_no_bias: sp.Expr


def _edges_tuple(bin_edges: Sequence[object], T: sp.Expr) -> tuple[sp.Expr, ...]:
    try:
        edges = [sp.nsimplify(e) if isinstance(e, float) else sp.sympify(e) for e in bin_edges]
    except (TypeError, sp.SympifyError):
        raise ValueError(f"bin_edges must be a sequence of numbers, got {bin_edges!r}") from None
    if len(edges) < 2:
        raise ValueError(f"bin_edges must have at least 2 entries (one bin), got {len(edges)}")
    return tuple(check_bin_edges(edges, edges[0], T))


@functools.lru_cache(maxsize=16)
def _binned_population(
    sch: Schedule, m_value: sp.Expr, s2_value: sp.Expr, edges: tuple, rho: sp.Expr, digits: int
) -> dict:
    """Everything of :func:`binned_affine_theory` that does not depend on ``P`` (cached)."""
    K = len(edges) - 1
    L = edges[-1] - edges[0]
    num = lambda e: real_value(e, digits)  # noqa: E731
    mom = [binned_bin_moments(sch, m_value, s2_value, edges[k], edges[k + 1], L) for k in range(K)]
    S = [mk["S"].applyfunc(num) for mk in mom]
    A = [mk["A"].applyfunc(num) for mk in mom]
    Sr_inv = [(S[k] + rho * sp.eye(2)).inv() for k in range(K)]
    theta = [Sr_inv[k] * A[k] for k in range(K)]
    n = 2 * K
    cov_g, proxy_g = sp.zeros(n, n), sp.zeros(n, n)
    bias_unit, eg = sp.zeros(n, 1), sp.zeros(n, 1)
    for k in range(K):
        blk = slice(2 * k, 2 * k + 2)
        sub = {a_sym: theta[k][0], c_sym: theta[k][1]}
        cov_g[blk, blk] = mom[k]["Egg"].subs(sub).applyfunc(num)
        proxy_g[blk, blk] = mom[k]["proxy"].applyfunc(num)
        eg[blk, 0] = rho * theta[k]
        Mk = Sr_inv[k]
        Eb = mom[k]["bias"].subs({**sub, q0_sym: Mk[0, 0], q1_sym: 2 * Mk[0, 1], q2_sym: Mk[1, 1]})
        # P (E theta - theta_inf) for this bin.
        bias_unit[blk, 0] = -Mk * (Eb.applyfunc(num) - S[k] * Mk * (rho * theta[k]))
    cov_g = cov_g - eg * eg.T  # cross-bin blocks: -E g_b E g_b'^T (multinomial bin counts)
    Sr_inv_full = sp.diag(*Sr_inv)
    # The delta method needs derivatives up to second order at theta_inf only, so each bin map is
    # replaced by its second-order Taylor polynomial in dc = c - c_inf with symbolic coefficients
    # (g_j, e_j: j-th c-derivative of g and eta at c_inf); the composition is differentiated as a
    # polynomial and the closed-form derivatives of affine_bin_map are substituted last.
    a_syms = sp.symbols(f"a_0:{K}", real=True)
    dc_syms = sp.symbols(f"dc_0:{K}", real=True)
    gs, etas, values = [], [], {}
    for k in range(K):
        g_k, eta_k = affine_bin_map(sch, edges[k], edges[k + 1], c_sym)
        gj = sp.symbols(f"g{k}_0:3", real=True)
        ej = sp.symbols(f"e{k}_0:3", real=True)
        dc = dc_syms[k]
        gs.append(gj[0] + gj[1] * dc + gj[2] * dc**2 / 2)
        etas.append(ej[0] + ej[1] * dc + ej[2] * dc**2 / 2)
        for f, syms in ((g_k, gj), (eta_k, ej)):
            for j in range(3):
                values[syms[j]] = num(sp.diff(f, c_sym, j).subs(c_sym, theta[k][1]))
    G, H = affine_composition(gs, etas, a_syms)
    th_syms = [s for k in range(K) for s in (a_syms[k], dc_syms[k])]
    at = dict(zip(th_syms, [v for k in range(K) for v in (theta[k][0], 0)], strict=True))

    def jet(f: sp.Expr) -> tuple:
        grad = sp.Matrix([sp.diff(f, s) for s in th_syms])
        hess = sp.hessian(f, th_syms)
        return tuple(
            e.subs(at).subs(values).applyfunc(num)
            if hasattr(e, "applyfunc")
            else num(e.subs(at).subs(values))
            for e in (f, grad, hess)
        )

    return {
        "theta": sp.Matrix([theta[k][i] for k in range(K) for i in range(2)]),
        "unit_cov": (Sr_inv_full * cov_g * Sr_inv_full).applyfunc(num),
        "unit_cov_proxy": (Sr_inv_full * proxy_g * Sr_inv_full).applyfunc(num),
        "unit_bias": bias_unit.applyfunc(num),
        "H": jet(H),
        "G2": jet(G**2),
        "sigma_T2": num(sch.sigma2.subs(t, sch.T)),
    }


def binned_affine_theory(
    schedule: Schedule | str,
    m_value: object,
    s2_value: object,
    bin_edges: Sequence[object],
    ridge: object,
    P: object,
    digits: int = 30,
) -> BinnedAffineTheoryValues:
    """First-order-in-``1/P`` theory of the binned affine model on data ``N(m, s2)`` (1-D).

    Population moments per bin in closed form (:func:`binned_bin_moments`), evaluated with
    ``digits`` significant digits; then (docs/math/linear.md, vector form ``theta = (a_b, c_b)_b``):

    * ``Sigma_r = blockdiag(S_b + rho I)``, ``theta_inf = Sigma_r^{-1} A``;
    * ``g = lam r phi`` per triple, ``E g = rho theta_inf``; ``Cov g`` is block-diagonal
      ``Egg_b`` minus ``vec(Eg) vec(Eg)^T`` (cross-bin terms from the multinomial bin counts:
      each triple's ``t ~ U[eps, T]`` is part of the randomness, nothing is conditioned on);
      ``Cov theta = Sigma_r^{-1} Cov g Sigma_r^{-1} / P``;
    * mean shift (second-order perturbation of ``Sigma_P^{-1}``, theory/linear.py step 3):
      ``E theta - theta_inf = -(1/P) Sigma_r^{-1} (E[lam**2 r (phi^T Sigma_r^{-1} phi) phi]
      - Sigma Sigma_r^{-1} E g)``;
    * ``x_eps = G x_T + H`` (:func:`affine_composition` of :func:`affine_bin_map`), ``x_T ~
      N(0, sigma_T**2)``: ``E x_eps = E H``, ``Var x_eps = sigma_T**2 E[G**2] + Var H`` with
      ``E f = f + grad f . bias + tr(Hess f Cov)/2`` and ``Var H = grad H^T Cov grad H``
      (:func:`delta_method_moments`; error ``O(1/P**2)``).

    The population part is cached, so several ``P`` cost little more than one.

    Raises
    ------
    ValueError
        ``s2 <= 0``, ``ridge < 0``, ``P < 1``, or ``bin_edges`` not a partition of ``[eps, T]``.
    """
    sch = as_schedule(schedule)
    s2_value = check_positive(s2_value, "s2")
    rho_v = sp.sympify(ridge)
    if not (rho_v.is_number and rho_v.is_real and rho_v >= 0):
        raise ValueError(f"ridge (rho) must be a number >= 0, got {ridge!r}")
    rho_v = sp.nsimplify(rho_v) if isinstance(ridge, float) else rho_v
    P_v = sp.sympify(P)
    if not (P_v.is_number and P_v.is_real and P_v >= 1):
        raise ValueError(f"P (DSM samples per model) must be a number >= 1, got {P!r}")
    edges = _edges_tuple(bin_edges, sch.T)
    pop = _binned_population(sch, sp.sympify(m_value), s2_value, edges, rho_v, int(digits))
    num = lambda e: real_value(e, digits)  # noqa: E731
    cov = (pop["unit_cov"] / P_v).applyfunc(num)
    bias = (pop["unit_bias"] / P_v).applyfunc(num)
    zero = sp.zeros(*bias.shape)

    def expect(j: tuple, b: sp.Matrix) -> sp.Expr:
        f, grad, hess = j
        return num(f + (grad.T * b)[0, 0] + sum(hess.multiply_elementwise(cov)) / 2)

    gH = pop["H"][1]
    var_H = num((gH.T * cov * gH)[0, 0])
    sT2 = pop["sigma_T2"]
    return BinnedAffineTheoryValues(
        theta_inf=pop["theta"],
        cov_theta=cov,
        cov_theta_proxy=(pop["unit_cov_proxy"] / P_v).applyfunc(num),
        bias=bias,
        mean_inf=pop["H"][0],
        var_inf=num(sT2 * pop["G2"][0]),
        mean=expect(pop["H"], bias),
        var=num(sT2 * expect(pop["G2"], bias) + var_H),
        mean_no_bias=expect(pop["H"], zero),
        var_no_bias=num(sT2 * expect(pop["G2"], zero) + var_H),
    )


def gaussian_design_inverse_moment(n: object, mu_x: object, v: object) -> sp.Matrix:
    """``E[(X^T X)^{-1}]`` for ``n`` rows ``(1, x_j)``, ``x_j ~ N(mu_x, v)`` iid (``n > 3``).

    With ``S_xx = sum (x_j - xbar)**2 ~ v chi2_{n-1}`` independent of ``xbar``,
    ``(X^T X)^{-1} = [[1/n + xbar**2/S_xx, -xbar/S_xx], [-xbar/S_xx, 1/S_xx]]`` and
    ``E[1/S_xx] = 1/(v (n - 3))``, ``E[xbar**2] = mu_x**2 + v/n``. Compared with the first-order
    ``Sigma^{-1}/n`` (``Sigma = E[phi phi^T]``) this is the exact finite-sample (inverse-Wishart)
    correction for OLS with Gaussian design: ``Sigma^{-1}/(n - 3) - 2/(n (n - 3)) e_1 e_1^T``.
    """
    n, mu_x, v = sp.sympify(n), sp.sympify(mu_x), check_positive(v, "v")
    if n.is_number and not n > 3:
        raise ValueError(f"n must be > 3 for a finite inverse moment, got {n}")
    inv_sxx = 1 / (v * (n - 3))
    return sp.Matrix(
        [[1 / n + (mu_x**2 + v / n) * inv_sxx, -mu_x * inv_sxx], [-mu_x * inv_sxx, inv_sxx]]
    )


# =================================================================================================
# 3. One training point
