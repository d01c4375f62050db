"""Symbolic closed forms (gtv.theory.closed_forms; docs/math/naive_estimator.md, §3.3, §3.6).

Each identity is checked independently of the code that produced it: sympy simplification of
differences against a generic schedule, mpmath quadrature of the defining integrals, and
high-accuracy ODE integration of the defining dynamics.
"""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest
import sympy as sp
from scipy.integrate import solve_ivp

from gtv.theory import closed_forms as cf
from gtv.theory.closed_forms import eps, kappa, m, s2, x
from gtv.theory.schedules import Schedule, named_schedule, t

# A generic consistent schedule: undefined alpha(t), sigma2(t); beta and D derived.
_alpha = sp.Function("alpha", positive=True)(t)
_sigma2 = sp.Function("sigma2", positive=True)(t)
_beta = -sp.diff(_alpha, t) / _alpha
GENERIC = Schedule(
    "generic",
    _alpha,
    _sigma2,
    _beta,
    (sp.diff(_sigma2, t) + 2 * _beta * _sigma2) / 2,
    sp.Integer(1),
)
R = sp.Rational


def _zero(expr) -> bool:
    return sp.simplify(sp.expand(expr)) == 0


# -- item 1: Gaussian data, naive estimator ------------------------------------------------------
def test_score_and_proxy_covariance_from_the_density():
    """s = d/dx log N(x; alpha m, v); C = 1/sigma**2 + d2/dx2 log p = alpha**2 s2/(sigma**2 v)."""
    v = cf.gaussian_noised_variance(GENERIC)
    logp = -((x - _alpha * m) ** 2) / (2 * v) - sp.log(2 * sp.pi * v) / 2
    assert _zero(cf.gaussian_score(GENERIC) - sp.diff(logp, x))
    C = cf.gaussian_proxy_covariance(GENERIC)
    assert _zero(C - (1 / _sigma2 + sp.diff(logp, x, 2)))
    assert _zero(C - _alpha**2 * s2 / (_sigma2 * v))
    assert not C.has(x)  # C does not depend on x: additive noise


def test_posterior_is_gaussian_conditioning():
    """d/dx0 [log N(x0; m, s2) + log N(x; alpha x0, sigma**2)] = -(x0 - mean)/var."""
    x0 = sp.Symbol("x0", real=True)
    mean, var = cf.gaussian_posterior(GENERIC)
    log_joint = -((x0 - m) ** 2) / (2 * s2) - (x - _alpha * x0) ** 2 / (2 * _sigma2)
    assert _zero(sp.diff(log_joint, x0) + (x0 - mean) / var)


def test_propagator_solves_the_pf_ode():
    """x(t) = alpha_t m + sqrt(v_t/v_T) (x_T - alpha_T m) solves dx/dt = -beta x - D s."""
    xT, T = sp.symbols("x_T T", real=True)
    v = cf.gaussian_noised_variance(GENERIC)
    # pf_propagator(t_from=T, t_to=t) = sqrt(v_t / v_T).
    prop = cf.pf_propagator(GENERIC, s2, T, t)
    assert _zero(prop - sp.sqrt(v / v.subs(t, T)))
    path = _alpha * m + prop * (xT - _alpha.subs(t, T) * m)
    score = cf.gaussian_score(GENERIC).subs(x, path)
    assert _zero(sp.diff(path, t) - (-_beta * path - GENERIC.diffusion * score))


def _cancels(expr) -> bool:
    """Name undefined-function values and derivatives by symbols, then cancel to 0?"""
    for k, d in enumerate(sorted(expr.atoms(sp.Derivative), key=str)):
        expr = expr.xreplace({d: sp.Symbol(f"d{k}")})
    for k, f in enumerate(sorted(expr.atoms(sp.core.function.AppliedUndef), key=str)):
        expr = expr.xreplace({f: sp.Symbol(f"f{k}", positive=True)})
    return sp.cancel(sp.together(expr)) == 0


def test_variance_formula_solves_the_moment_ode():
    """w(eps) = v_eps (w_T/v_T + kappa I(eps)), I(eps) = int_eps^T D**2 C/v, obeys
    dw/d eps = rate w - source (Leibniz: dI/d eps = -(D**2 C/v)(eps))."""
    wT, T = sp.symbols("w_T T", positive=True)
    v = cf.gaussian_noised_variance(GENERIC)
    I = sp.Function("I")(eps)  # noqa: E741
    w = v.subs(t, eps) * (wT / v.subs(t, T) + kappa * I)
    dI = -cf.naive_noise_integrand(GENERIC).subs(t, eps)
    dw = sp.diff(w, eps).subs(sp.Derivative(I, eps), dI)
    rate, source = cf.naive_moment_ode(GENERIC)
    assert _cancels(dw - (rate * w - source).subs(t, eps))
    # The check has teeth: the propagator squared v_eps/v_t left out of I fails.
    dw_wrong = sp.diff(w, eps).subs(sp.Derivative(I, eps), dI * v.subs(t, eps))
    assert not _cancels(dw_wrong - (rate * w - source).subs(t, eps))


def test_naive_moments_equal_the_generic_formula():
    r = cf.naive_gaussian_moments(GENERIC, closed_form=False)
    T = GENERIC.T
    v = cf.gaussian_noised_variance(GENERIC)
    ve, vT = v.subs(t, eps), v.subs(t, T)
    assert _zero(r.variance - (ve / vT * _sigma2.subs(t, T) + kappa * ve * r.noise_integral))
    assert _zero(r.mean - (_alpha.subs(t, eps) * m - sp.sqrt(ve / vT) * _alpha.subs(t, T) * m))
    ex = cf.naive_gaussian_moments(GENERIC, closed_form=False, start="exact")
    assert _zero(ex.variance - ve * (1 + kappa * ex.noise_integral))
    assert _zero(ex.mean - _alpha.subs(t, eps) * m)


@pytest.mark.parametrize(
    "name, T",
    [("linear-variance", R(9, 10)), ("linear-variance", R(1, 2)), ("ve", R(7, 10)), ("ve", 1)],
)
@pytest.mark.parametrize("s2_value", [R(1, 4), 1, 3])
def test_noise_integral_closed_form_matches_quadrature(name, T, s2_value):
    """The closed form (sympy, via a rationalizing substitution) = mpmath quadrature (30 digits)."""
    sch = named_schedule(name, T=T)
    r = cf.naive_gaussian_moments(sch, m, s2_value, eps_value=R(1, 100))
    assert r.closed, r.noise_integral
    assert not r.noise_integral.has(sp.I)
    integrand = sp.lambdify(t, cf.naive_noise_integrand(sch, s2_value), "mpmath")
    mp.mp.dps = 30
    ref = mp.quad(integrand, mp.linspace(mp.mpf("0.01"), mp.mpf(sp.N(sch.T, 30)), 12))
    val = sp.N(r.noise_integral, 30)
    print(f"{name} T={T} s2={s2_value}: I = {val}  (quadrature {ref})")
    assert abs(float((val - sp.Float(str(ref), 30)) / val)) < 1e-20


def test_closed_forms_are_symbolic_in_eps_and_T():
    for name in ("ve", "linear-variance", "edm"):
        T = sp.Symbol("T", positive=True)
        r = cf.naive_gaussian_moments(name, T=T)
        assert r.closed
        assert {eps, T, s2} <= r.noise_integral.free_symbols
    # vp-linear has no elementary antiderivative: an unevaluated Integral is returned.
    r = cf.naive_gaussian_moments("vp-linear", m, R(1, 4), R(1, 10), R(1, 100))
    assert not r.closed and r.noise_integral.has(sp.Integral)
    assert float(sp.N(r.variance, 20)) > 0


def test_diagonal_data_factorizes():
    S = sp.diag(R(1, 4), 2)
    T = R(9, 10)  # below the schedule's T = 1, where D_t diverges
    mean, cov = cf.naive_gaussian_moments_diagonal(
        "linear-variance", [R(1, 2), -1], S, R(1, 5), T=T
    )
    one = cf.naive_gaussian_moments("linear-variance", -1, 2, R(1, 5), T=T)
    assert one.variance.is_finite is not False and not one.variance.has(sp.zoo)
    assert _zero(cov[1, 1] - one.variance) and _zero(mean[1] - one.mean)
    assert cov[0, 1] == 0
    with pytest.raises(ValueError, match="S must be diagonal"):
        cf.naive_gaussian_moments_diagonal("ve", [0, 0], sp.Matrix([[1, R(1, 2)], [R(1, 2), 1]]))


def test_integrate_rational_real_logs():
    y = sp.Symbol("y", real=True)
    f = 1 / (y * (1 - y)) + 3 / (2 * y + 1) ** 2
    val = cf.integrate_rational(f, y, R(1, 10), R(9, 10))
    assert not val.has(sp.I)
    ref = mp.quad(sp.lambdify(y, f, "mpmath"), [0.1, 0.9])
    assert abs(float(sp.N(val, 25)) - float(ref)) < 1e-14
    with pytest.raises(ValueError, match="rational"):
        cf.integrate_rational(sp.exp(y), y, 0, 1)


# -- item 2: binned affine model ------------------------------------------------------------------
@pytest.mark.parametrize("name, T", [("ve", R(7, 10)), ("linear-variance", R(9, 10)), ("edm", 80)])
def test_affine_bin_map_solves_the_pf_ode(name, T):
    """x_lo = g x_hi + a eta: the closed form against DOP853 on dx/dt = A x - B (a + c x)."""
    sch = named_schedule(name, T=T)
    lo, hi = R(1, 20), R(1, 5)
    g, eta = cf.affine_bin_map(sch, lo, hi, cf.c_sym)
    assert not g.has(sp.Integral) and not eta.has(sp.Integral)
    A = sp.lambdify(t, sch.quantity("pf_x_coeff"))
    B = sp.lambdify(t, sch.quantity("pf_mean_coeff"))
    a_val = 0.3
    for c_val in (0.2, 0.9, 1.3):
        sol = solve_ivp(
            lambda tt, y, c_val=c_val: [A(tt) * y[0] - B(tt) * (a_val + c_val * y[0])],
            (float(hi), float(lo)),
            [1.0],
            method="DOP853",
            rtol=1e-13,
            atol=1e-15,
        )
        closed = float(sp.N((g + a_val * eta).subs(cf.c_sym, c_val), 20))
        assert abs(sol.y[0, -1] - closed) < 1e-10 * max(1.0, abs(closed)), (c_val, closed)


def test_affine_bin_map_without_closed_form_is_an_integral():
    """vp-linear: no elementary antiderivative of B; g and eta stay (nested) integrals, and g
    agrees with a direct quadrature of its definition."""
    sch = named_schedule("vp-linear")
    g, eta = cf.affine_bin_map(sch, R(1, 10), R(1, 2), R(1, 2))
    assert g.has(sp.Integral) and eta.has(sp.Integral)
    B = sp.lambdify(t, sch.quantity("pf_mean_coeff"), "mpmath")
    sig = sp.lambdify(t, sp.sqrt(sch.sigma2), "mpmath")
    ref = sig(0.1) / sig(0.5) * mp.exp(0.5 * mp.quad(B, [0.1, 0.5]))
    assert abs(float(sp.N(g, 20)) - float(ref)) < 1e-12 * float(ref)


def test_affine_composition_two_bins():
    g0, g1, e0, e1, a0, a1, xT = sp.symbols("g0 g1 e0 e1 a0 a1 x_T")
    G, H = cf.affine_composition([g0, g1], [e0, e1], [a0, a1])
    # Sampler order: bin 1 (the later times) first, then bin 0.
    x1 = g1 * xT + a1 * e1
    x0 = g0 * x1 + a0 * e0
    assert _zero(G * xT + H - x0)
    with pytest.raises(ValueError, match="same positive length"):
        cf.affine_composition([g0], [e0, e1], [a0])


def test_delta_method_on_a_polynomial():
    """E f = f + grad f . bias + tr(Hess f Cov)/2, written out by hand for a quadratic f."""
    u, w = sp.symbols("u w", real=True)
    f = 3 * u**2 + u * w - 2 * w + 1
    cov = sp.Matrix([[R(1, 10), R(1, 50)], [R(1, 50), R(1, 5)]])
    bias = [R(1, 2), -1]
    val = cf.delta_method_moments(f, [u, w], [0, 0], bias, cov)
    # f(0) = 1, grad f(0) = (0, -2), Hess f = [[6, 1], [1, 0]].
    expected = 1 + (-2) * bias[1] + (6 * cov[0, 0] + 2 * cov[0, 1]) / 2
    assert sp.simplify(val - expected) == 0


def test_binned_bin_moments_match_direct_quadrature():
    """S, A, Egg (at some a, c) and the proxy part against mpmath quadrature over t of Gaussian
    expectations computed by Gauss-Hermite in (x0, xi) -- an independent route to the moments."""
    sch = named_schedule("linear-variance", T=R(9, 10))
    lo, hi, L = R(1, 10), R(3, 10), R(89, 100)
    mv, s2v, av, cv = R(1, 2), R(1, 4), R(1, 10), R(7, 10)
    mom = cf.binned_bin_moments(sch, mv, s2v, lo, hi, L)
    gh_x, gh_w = np.polynomial.hermite_e.hermegauss(12)
    gh_w = gh_w / gh_w.sum()
    X0 = float(mv) + np.sqrt(float(s2v)) * gh_x[:, None]
    XI = gh_x[None, :]
    W2 = gh_w[:, None] * gh_w[None, :]
    al_f, sg_f = sp.lambdify(t, sch.alpha), sp.lambdify(t, sch.sigma2)

    def expect(fn, tt):
        al, sg2 = al_f(tt), sg_f(tt)
        xx = al * X0 + np.sqrt(sg2) * XI
        lam = al * al / sg2
        return float(np.sum(W2 * fn(X0, xx, lam)))

    def quad(fn):
        return mp.quad(lambda tt: expect(fn, float(tt)), [float(lo), float(hi)]) / float(L)

    r = lambda x0, xx: x0 - float(av) - float(cv) * xx  # noqa: E731
    checks = {
        ("S", 0, 1): lambda x0, xx, lam: lam * xx,
        ("S", 1, 1): lambda x0, xx, lam: lam * xx * xx,
        ("A", 1, 0): lambda x0, xx, lam: lam * x0 * xx,
        ("Egg", 0, 0): lambda x0, xx, lam: lam**2 * r(x0, xx) ** 2,
        ("Egg", 1, 1): lambda x0, xx, lam: lam**2 * r(x0, xx) ** 2 * xx * xx,
    }
    for (key, i, j), fn in checks.items():
        expr = mom[key][i, j] if key != "A" else mom[key][i]
        val = float(sp.N(expr.subs({cf.a_sym: av, cf.c_sym: cv}), 20))
        ref = float(quad(fn))
        assert abs(val - ref) < 1e-9 * abs(ref), (key, i, j, val, ref)
    # Bias moment with q = (1, 0, 0): E[lam**2 r phi].
    q = {cf._q0: 1, cf._q1: 0, cf._q2: 0, cf.a_sym: av, cf.c_sym: cv}
    val = float(sp.N(mom["bias"][1].subs(q), 20))
    ref = float(quad(lambda x0, xx, lam: lam**2 * r(x0, xx) * xx))
    assert abs(val - ref) < 1e-9 * abs(ref)


def test_gaussian_design_inverse_moment_limits():
    n, mu_x, v = sp.symbols("n mu_x v", positive=True)
    E = cf.gaussian_design_inverse_moment(n, mu_x, v)
    Sigma = sp.Matrix([[1, mu_x], [mu_x, mu_x**2 + v]])
    # Exact form = Sigma^{-1}/(n - 3) - 2/(n (n - 3)) e1 e1^T, and n E -> Sigma^{-1} as n -> oo.
    e1 = sp.Matrix([1, 0])
    assert (E - (Sigma.inv() / (n - 3) - 2 / (n * (n - 3)) * e1 * e1.T)).applyfunc(
        sp.simplify
    ) == sp.zeros(2, 2)
    assert (sp.limit(n * E[1, 1], n, sp.oo) - Sigma.inv()[1, 1]).simplify() == 0
    with pytest.raises(ValueError, match="n must be > 3"):
        cf.gaussian_design_inverse_moment(3, 0, 1)


# -- items 3 and 4 --------------------------------------------------------------------------------
@pytest.mark.parametrize("n_triples, n_features", [(1, 2), (2, 2), (3, 3)])
def test_single_point_ridge_identity(n_triples, n_features):
    out = cf.single_point_ridge_identity(n_triples, n_features)
    assert out["difference"] == sp.zeros(1, n_features)


def test_two_point_closed_forms():
    sch = named_schedule("linear-variance")
    a = sp.Symbol("a", positive=True)
    out = cf.two_point_closed_forms(a, sch)
    C, s = out["C"], out["score"]
    assert sp.simplify((out["frac"] - C / (C + s**2)).rewrite(sp.exp)) == 0
    assert out["naive_sde"].noise.has(sp.Symbol("kappa", positive=True))
    with pytest.raises(ValueError, match="a must be > 0"):
        cf.two_point_closed_forms(-1, sch)


# -- bad input ------------------------------------------------------------------------------------
def test_bad_input():
    with pytest.raises(ValueError, match="s2"):
        cf.naive_gaussian_moments("ve", 0, 0)
    with pytest.raises(ValueError, match="s2"):
        cf.naive_gaussian_moments("ve", 0, -1)
    with pytest.raises(ValueError, match="kappa"):
        cf.naive_gaussian_moments("ve", 0, 1, -R(1, 10))
    with pytest.raises(ValueError, match="start"):
        cf.naive_gaussian_moments("ve", 0, 1, start="prior")
    with pytest.raises(ValueError, match="T = 1: the noise integral"):  # D_t -> oo at t = 1
        cf.naive_gaussian_moments("linear-variance", R(1, 2), R(1, 4), R(1, 10), R(1, 100), T=1)
    with pytest.raises(ValueError, match="positive definite"):
        cf.naive_gaussian_moments_diagonal("ve", [0, 0], sp.Matrix([[1, 2], [2, 1]]))
    with pytest.raises(ValueError, match="S"):
        cf.naive_gaussian_moments_diagonal("ve", [0, 0], sp.diag(1, 0))
    with pytest.raises(ValueError, match="symmetric"):
        cf.naive_gaussian_moments_diagonal("ve", [0, 0], sp.Matrix([[1, 0], [1, 1]]))
    with pytest.raises(ValueError, match="bin_edges"):
        cf.check_bin_edges([R(1, 100), R(1, 2)], R(1, 100), 1)
    with pytest.raises(ValueError, match="bin_edges"):
        cf.check_bin_edges([R(1, 100), R(1, 2), R(1, 4), 1], R(1, 100), 1)
    with pytest.raises(ValueError, match="bin_edges"):
        cf.binned_affine_theory("ve", 0, 1, [R(1, 100), R(1, 2)], R(1, 10), 100)
    with pytest.raises(ValueError, match="ridge"):
        cf.binned_affine_theory("ve", 0, 1, [R(1, 100), 1], -1, 100)
    with pytest.raises(ValueError, match="P"):
        cf.binned_affine_theory("ve", 0, 1, [R(1, 100), 1], R(1, 10), 0)
    with pytest.raises(ValueError, match="s2"):
        cf.binned_affine_theory("ve", 0, -1, [R(1, 100), 1], R(1, 10), 100)
