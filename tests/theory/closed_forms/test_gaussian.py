"""Gaussian data with the naive estimator in closed form (docs/math/closed_forms.md, item 1).

Each identity is checked independently of the code that produced it: sympy simplification of
differences against a generic schedule, mpmath quadrature of the defining integrals, and
high-accuracy ODE integration of the defining dynamics.
"""

from __future__ import annotations

import mpmath as mp
import pytest
import sympy as sp

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
