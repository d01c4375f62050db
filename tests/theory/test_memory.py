"""The associative-memory derivations of gtv.theory.memory and their generated code.

Symbolic identities are checked to cancel exactly; closed forms are checked against independent
numerical integrals (mpmath quadrature); the generated numerics file is checked byte for byte
(golden test) and against the sympy expressions at 50 digits.
"""

import math

import mpmath
import numba
import numpy as np
import pytest
import sympy as sp

from gtv.numerics._generated import memory as gen
from gtv.theory.memory import (
    alpha,
    beta,
    circle_angular_average,
    circle_energy,
    collapse_condition,
    data_energy_expression,
    energy_expression,
    energy_identities,
    generated_memory_path,
    generated_memory_source,
    gradient_expression,
    hessian_expression,
    merge_threshold,
    ou_schedule,
    posterior_covariance_expression,
    posterior_mean_expression,
    sigma2,
)
from gtv.theory.schedules import named_schedule, t


# -- energy, gradient, Hessian ------------------------------------------------------------------
@pytest.mark.parametrize(("K", "D"), [(1, 1), (2, 3), (3, 2)])
def test_energy_identities_cancel_exactly(K, D):
    res = energy_identities(K, D)
    for name, mat in res.items():
        assert all(v == 0 for v in mat), (name, mat)


def _random_subs(K, D, rng):
    e = energy_expression(K, D)
    subs = {alpha: sp.Rational(7, 10), sigma2: sp.Rational(2, 5)}
    for sym in e["x"]:
        subs[sym] = sp.Float(rng.normal(), 30)
    for sym in e["memories"]:
        subs[sym] = sp.Float(rng.normal(), 30)
    w = rng.random(K) + 0.1
    for sym, v in zip(e["weights"], w / w.sum(), strict=True):
        subs[sym] = sp.Float(v, 30)
    return e, subs


def test_explicit_gradient_and_hessian_equal_posterior_forms():
    """The explicitly differentiated expressions (no placeholders) equal x - alpha m and
    I - (alpha**2/sigma2) Cov at random points, to 25 digits."""
    rng = np.random.default_rng(3)
    K, D = 3, 2
    e, subs = _random_subs(K, D, rng)
    g = gradient_expression(K, D).subs(subs).evalf(30)
    h = hessian_expression(K, D).subs(subs).evalf(30)
    m = posterior_mean_expression(K, D).subs(subs).evalf(30)
    c = posterior_covariance_expression(K, D).subs(subs).evalf(30)
    x = e["x"].subs(subs)
    a, v = subs[alpha], subs[sigma2]
    assert max(abs(gi) for gi in (g - (x - a * m))) < 1e-25
    assert max(abs(hi) for hi in (h - (sp.eye(D) - a**2 / v * c))) < 1e-25
    assert abs(h[0, 1] - h[1, 0]) < 1e-28  # symmetric


def test_energy_with_schedule_substitutes_alpha_and_sigma2():
    sched = named_schedule("vp-linear")
    e = energy_expression(2, 1, schedule=sched)["energy"]
    assert t in e.free_symbols and alpha not in e.free_symbols and sigma2 not in e.free_symbols
    plain = energy_expression(2, 1)["energy"].subs({alpha: sched.alpha, sigma2: sched.sigma2})
    assert sp.simplify(e - plain) == 0


def test_data_energy_is_twice_the_energy_over_alpha_squared_numerically():
    K, D = 3, 2
    rng = np.random.default_rng(5)
    e, subs = _random_subs(K, D, rng)
    de = data_energy_expression(K, D)
    ysubs = {yi: xi / subs[alpha] for yi, xi in zip(de["y"], e["x"].subs(subs), strict=True)}
    ysubs.update({k: v for k, v in subs.items() if k not in set(e["x"])})
    ysubs[beta] = subs[alpha] ** 2 / (2 * subs[sigma2])
    lhs = 2 * e["energy"].subs(subs) / subs[alpha] ** 2
    assert abs(sp.N(lhs - de["energy"].subs(ysubs), 30)) < 1e-25


# -- two memories -------------------------------------------------------------------------------
def test_merge_threshold_relation_and_snr():
    mt = merge_threshold()
    s, d, b = mt["symbols"]
    assert sp.simplify(mt["beta_c"] - 2 / d**2) == 0
    assert sp.simplify(mt["snr_c"] - 4 / d**2) == 0
    assert sp.simplify(mt["midpoint_curvature"] - (2 - b * d**2)) == 0
    assert mt["perpendicular_curvature"] == 2
    assert mt["relation"] == sp.Eq(b * d**2, 2)
    # E(s) equals the cosh form and E'(s) = 2 s - d tanh(beta s d), checked at points.
    for sv, dv, bv in [(0.3, 1.0, 2.5), (-0.7, 2.0, 0.4), (0.05, 0.5, 9.0)]:
        at = {s: sv, d: dv, b: bv}
        assert abs(float(mt["energy"].subs(at) - mt["energy_cosh"].subs(at))) < 1e-12
        ref = 2 * sv - dv * math.tanh(bv * sv * dv)
        assert abs(float(mt["first_derivative"].subs(at)) - ref) < 1e-12


def test_merge_minima_above_and_below_threshold():
    """beta d**2 = 2.5: the midpoint is a maximum along the segment and +-s* are minima; 1.5: the
    midpoint is the only stationary point (E' > 0 for s > 0) and a minimum."""
    mt = merge_threshold()
    s, d, b = mt["symbols"]
    e2 = sp.diff(mt["energy_cosh"], s, 2)
    above = {d: 1, b: sp.Rational(5, 2)}
    assert float(mt["midpoint_curvature"].subs(above)) < 0
    sstar = float(sp.nsolve(mt["fixed_point_equation"].subs(above), s, 0.4))
    assert 0 < sstar < 0.5 and float(e2.subs(above).subs(s, sstar)) > 0
    below = {d: 1, b: sp.Rational(3, 2)}
    assert float(mt["midpoint_curvature"].subs(below)) > 0
    de = sp.lambdify(s, mt["first_derivative"].subs(below), "mpmath")
    assert all(de(sv) > 0 for sv in np.linspace(1e-3, 3.0, 200))


# -- circle -------------------------------------------------------------------------------------
def test_circle_angular_average_is_bessel_i0():
    res = circle_angular_average(order=6)
    assert res["derivative_residual"] == 0 and res["bessel_ode_residual"] == 0
    assert res["initial_values"] == (1, 0)
    assert all(r == 0 for r in res["series_residuals"])
    assert res["series_sum"] == sp.besseli(0, sp.Symbol("z", positive=True))
    # Independent: quadrature of the angular mean.
    for zv in (0.3, 3.7, 25.0):
        quad = mpmath.quad(lambda p, zv=zv: mpmath.exp(zv * mpmath.cos(p)), [0, 2 * mpmath.pi])
        assert abs(quad / (2 * mpmath.pi) / mpmath.besseli(0, zv) - 1) < 1e-14


def test_circle_energy_matches_quadrature_and_its_derivative():
    ce = circle_energy()
    assert all(r == 0 for r in ce["residuals"])
    R, b, i0e, i1e = ce["symbols"]
    for Rv, bv in [(0.8, 5.0), (1.3, 20.0), (0.1, 0.7)]:
        at = {R: Rv, b: bv}

        def integrand(p, Rv=Rv, bv=bv):
            d2 = (Rv - mpmath.cos(p)) ** 2 + mpmath.sin(p) ** 2
            return mpmath.exp(-bv * d2)

        avg = mpmath.quad(integrand, [0, mpmath.pi, 2 * mpmath.pi]) / (2 * mpmath.pi)
        e_ref = -mpmath.log(avg) / bv
        assert abs(float(ce["energy"].subs(at)) - float(e_ref)) < 1e-12
        f = sp.lambdify(R, ce["energy"].subs(b, bv), "mpmath")
        score_ref = -mpmath.diff(f, Rv)
        assert abs(float(ce["radial_score"].subs(at)) - float(score_ref)) < 1e-10
        # scaled forms
        z = 2 * bv * Rv
        sc = {R: Rv, b: bv, i0e: mpmath.besseli(0, z) * mpmath.exp(-z)}
        sc[i1e] = mpmath.besseli(1, z) * mpmath.exp(-z)
        assert abs(float(ce["energy_scaled"].subs(sc)) - float(e_ref)) < 1e-12
        assert abs(float(ce["radial_score_scaled"].subs(sc)) - float(score_ref)) < 1e-10


@pytest.mark.parametrize(("bv", "rstar"), [(20, 0.9873), (100, 0.9975)])
def test_circle_minimum_radius(bv, rstar):
    ce = circle_energy()
    R, b, _, _ = ce["symbols"]
    eq = ce["stationary"].subs(b, bv)
    root = sp.nsolve(eq.lhs - eq.rhs, R, 0.9)
    assert abs(float(root) - rstar) < 5e-5
    assert abs(float(root) - (1 - 1 / (4 * bv))) < 2 / bv**2  # R* = 1 - 1/(4 beta) + O(beta**-2)


# -- collapse -----------------------------------------------------------------------------------
def test_collapse_condition():
    cc = collapse_condition()
    K, D, s2, snr = cc["symbols"]
    assert sp.simplify(cc["snr_c"] - (K ** (2 / D) - 1) / s2) == 0
    assert all(r == 0 for r in cc["residuals"])
    assert sp.simplify(cc["excess_entropy_snr"].subs(snr, cc["snr_c"])) == 0
    ou = ou_schedule()
    tc = cc["ou_time"]
    for Kv, Dv, sv in [(100, 8, 1), (1000, 32, sp.Rational(5, 2)), (7, 2, sp.Rational(3, 10))]:
        at = {K: Kv, D: Dv, s2: sv}
        tcv = sp.Float(sp.N(tc.subs(at), 40), 40)
        f = cc["excess_entropy"].subs(at).subs({alpha: ou.alpha, sigma2: ou.sigma2})
        assert abs(sp.N(f.subs(t, tcv), 40)) < 1e-30
        ref = 0.5 * math.log(1 + float(sv) / (Kv ** (2 / Dv) - 1))
        assert abs(float(tcv) - ref) < 1e-14


# -- generated code -----------------------------------------------------------------------------
def test_generated_file_is_up_to_date():
    assert generated_memory_source() == generated_memory_path().read_text(), (
        "numerics/_generated/memory.py is out of date: run python -m gtv.theory.memory"
    )


def test_generated_functions_match_sympy_at_50_digits():
    cc = collapse_condition()
    K, D, s2, snr = cc["symbols"]
    mt = merge_threshold()
    _, d, _ = mt["symbols"]
    ce = circle_energy()
    R, b, i0e, i1e = ce["symbols"]

    def ref(expr, subs):
        return float(sp.N(expr.subs({k: sp.Float(v, 50) for k, v in subs.items()}), 50))

    for Kv, Dv, sv in [(2, 64, 1.0), (1e6, 2, 0.5), (1000, 16, 3.0), (1 + 1e-9, 4, 1.0)]:
        at = {K: Kv, D: Dv, s2: sv}
        for got, expr in [
            (gen.collapse_snr(Kv, Dv, sv), cc["snr_c"]),
            (gen.collapse_time_ou(Kv, Dv, sv), cc["ou_time"]),
        ]:
            want = ref(expr, at)
            assert abs(got - want) <= 1e-12 * abs(want), (Kv, Dv, sv, got, want)
        want = ref(cc["excess_entropy_snr"], {**at, snr: 0.7})
        assert abs(gen.excess_entropy(Kv, Dv, sv, 0.7) - want) <= 1e-12 * abs(want) + 1e-15
    for dv in (0.1, 1.0, 3.0):
        assert abs(gen.merge_beta(dv) - ref(mt["beta_c"], {d: dv})) <= 1e-15 * gen.merge_beta(dv)
        assert abs(gen.merge_snr(dv) - ref(mt["snr_c"], {d: dv})) <= 1e-15 * gen.merge_snr(dv)
    for Rv, bv in [(0.5, 2.0), (0.99, 100.0), (1.0, 1e4)]:
        z = mpmath.mpf(2 * bv * Rv)
        v0 = float(mpmath.besseli(0, z) * mpmath.exp(-z))
        v1 = float(mpmath.besseli(1, z) * mpmath.exp(-z))
        want_e = ref(ce["energy"], {R: Rv, b: bv})
        got_e = gen.circle_energy_scaled(Rv, bv, v0)
        assert abs(got_e - want_e) <= 1e-12 * max(abs(want_e), 1e-3), (Rv, bv)
        want_s = ref(ce["radial_score"], {R: Rv, b: bv})
        assert abs(gen.circle_radial_score_scaled(Rv, v0, v1) - want_s) <= 1e-12


def test_generated_functions_callable_from_njit_and_on_arrays():
    @numba.njit
    def both(k):
        return gen.collapse_snr(k, 8.0, 1.0) + gen.merge_snr(0.5)

    assert both(256.0) == gen.collapse_snr(256.0, 8.0, 1.0) + gen.merge_snr(0.5)
    ks = np.array([16.0, 256.0])
    np.testing.assert_allclose(gen.collapse_snr(ks, 8.0, 1.0), [1.0, 3.0], rtol=1e-14)
