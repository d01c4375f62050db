"""The binned affine model in closed form (docs/math/closed_forms.md, item 2).

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
from gtv.theory.schedules import named_schedule, t

R = sp.Rational


def _zero(expr) -> bool:
    return sp.simplify(sp.expand(expr)) == 0


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


@pytest.mark.slow
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
    q = {cf.q0_sym: 1, cf.q1_sym: 0, cf.q2_sym: 0, cf.a_sym: av, cf.c_sym: cv}
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
