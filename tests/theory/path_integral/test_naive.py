"""The naive estimator's path integral (docs/math/path_integral.md, docs/math/naive_estimator.md).

* Discrete M2 == Riemann sum of the continuum kernel kappa D C D delta(t - t'); the Riemann sum
  converges to the integral; cumulants >= 3 vanish in the continuum limit.
* The Markov intensity of the naive kernel is kappa D**2 C (1-D and 2-D).
* Two-point (+-a) naive SDE: closed form == assembled form; numba code == sympy at 50 digits.
"""

import numpy as np
import pytest
import sympy as sp

from gtv.theory.path_integral import (
    kappa,
    naive_cumulant_sum,
    naive_effective_sde,
    naive_m2_continuum,
    naive_m2_discrete,
    naive_v_kernel,
    riemann_limit,
    space_symbols,
    t2,
    two_point_naive_sde,
    two_point_naive_sde_from_theory,
    v_kernel,
    white_noise_intensity,
    x,
)
from gtv.theory.schedules import named_schedule, t


# -- naive estimator: discrete -> continuum -----------------------------------------------------
@pytest.mark.parametrize("dim", [1, 2])
def test_naive_m2_equals_riemann_sum_of_continuum_kernel(dim):
    K = 4
    m2, sym = naive_m2_discrete(K, dim)
    g, fn = naive_m2_continuum(dim)
    # g(t) = kappa D(t)**2 p(t)^T C(t) p(t), obtained from the delta kernel by sympy
    p = sp.Matrix([f(t) for f in fn["p"]])
    cmat = sp.Matrix(dim, dim, lambda a, b: fn["C"][a][b](t))
    assert sp.expand(g - kappa * fn["D"](t) ** 2 * (p.T * cmat * p)[0]) == 0
    # pre-point Riemann sum with weights h_k, functions evaluated at t_k
    tk = [sp.Symbol(f"t{k}", positive=True) for k in range(K)]
    riemann = sp.Integer(0)
    for k in range(K):
        rep = {fn["D"](tk[k]): sym["D"][k]}
        for a in range(dim):
            rep[fn["p"][a](tk[k])] = sym["p"][k][a]
            for b in range(dim):
                rep[fn["C"][a][b](tk[k])] = sym["C"][k][a, b]
        riemann += sym["h"][k] * g.subs(t, tk[k]).xreplace(rep)
    assert sp.expand(riemann - m2) == 0
    # a per-step covariance without the 1/h (Sigma_kk = kappa C_k) is not a Riemann sum of g
    wrong = sum(
        (
            h**2 * kappa * d**2 * (pk.T * ck * pk)[0]
            for h, d, pk, ck in zip(sym["h"], sym["D"], sym["p"], sym["C"], strict=True)
        ),
        sp.Integer(0),
    )
    assert sp.expand(riemann - wrong) != 0


def test_riemann_sum_converges_to_the_integral():
    g = kappa * (1 + t) ** 2 * t**2  # D = 1 + t, C = t**2, p = 1
    lim, integral = riemann_limit(g, sp.Rational(1, 100), 1)
    assert sp.simplify(lim - integral) == 0
    assert integral != 0


def test_naive_higher_cumulants_vanish_in_continuum():
    h = sp.Symbol("h", positive=True)
    assert sp.limit(naive_cumulant_sum(2), h, 0) != 0
    for n in (3, 4, 6):
        assert sp.limit(naive_cumulant_sum(n), h, 0) == 0


def test_naive_kernel_gives_kappa_d2_c():
    sch = named_schedule("vp-linear")
    c = sp.Function("C")(x, t)
    q = white_noise_intensity(naive_v_kernel(sch, c))
    assert sp.simplify(q - kappa * sch.diffusion**2 * c) == 0
    # v_kernel with a delta-correlated score covariance is the same kernel
    cov = kappa * c * sp.DiracDelta(t - t2)
    assert sp.simplify(v_kernel(sch, cov) - naive_v_kernel(sch, c)) == 0


def test_naive_sde_2d_noise_matrix():
    sch = named_schedule("ve")
    x0, x1 = space_symbols(2)
    c = sp.Matrix([[x0**2 + 1, x0 * x1], [x0 * x1, x1**2 + 2]])
    sde = naive_effective_sde(sch, sp.Matrix([-x0, -x1]), c, dim=2)
    assert sp.simplify(sde.noise - kappa * sch.diffusion**2 * c) == sp.zeros(2, 2)
    assert set(sde.components()) == {"drift_0", "drift_1", "noise_00", "noise_01", "noise_11"}
    assert sde.args == (x0, x1, t, kappa)


# -- two points +-a: closed form, Fokker-Planck convention, compiled code -------------------------
@pytest.fixture(scope="module")
def schedules():
    """Schedules shared by the tests below (each caches its simplified coefficients)."""
    return {name: named_schedule(name) for name in ("linear-variance", "vp-linear")}


@pytest.mark.parametrize("name", ["linear-variance", "vp-linear"])
def test_two_point_closed_form_matches_assembled_form(name, schedules):
    closed = two_point_naive_sde(1, schedules[name]).components()
    assembled = two_point_naive_sde_from_theory(1, schedules[name]).components()
    for key in ("drift", "noise"):
        assert sp.simplify((closed[key] - assembled[key]).rewrite(sp.exp)) == 0, key


def _hp(expr, subs, digits=50):
    return sp.N(expr.subs({k: sp.Float(v, digits) for k, v in subs.items()}), digits)


@pytest.mark.parametrize("name", ["linear-variance", "vp-linear"])
def test_compiled_two_point_naive_sde_matches_sympy(name, schedules):
    sch = schedules[name]
    sde = two_point_naive_sde(1, sch)
    assert sde.args == (x, t, kappa)
    funcs = sde.compile(prefix=name.replace("-", "_"))
    comps = sde.components()
    # scale for the drift: the two terms separately (the drift itself changes sign)
    y = sch.quantity("score_mean_coeff") * x
    drift_scale = sp.Abs(sch.quantity("pf_x_coeff") * x) + sp.Abs(
        sch.quantity("pf_mean_coeff") * sp.tanh(y)
    )
    kv = 0.37
    xs = np.array([-2.5, -0.8, 0.0, 0.15, 0.6, 1.9])
    for tv in (0.01, 0.1, 0.45, 0.9):
        got_b = funcs["drift"](xs, tv, kv)
        got_q = funcs["noise"](xs, tv, kv)
        assert got_b.shape == got_q.shape == xs.shape
        for i, xv in enumerate(xs):
            sub = {x: float(xv), t: tv, kappa: kv}
            ref_b = float(_hp(comps["drift"], sub))
            ref_q = float(_hp(comps["noise"], sub))
            scale = float(_hp(drift_scale, sub))
            assert abs(got_b[i] - ref_b) <= 1e-12 * scale, (name, xv, tv, got_b[i], ref_b)
            assert abs(got_q[i] - ref_q) <= 1e-12 * abs(ref_q), (name, xv, tv, got_q[i], ref_q)
            # scalar call agrees with the array call
            assert funcs["noise"](float(xv), tv, kv) == got_q[i]


def test_generated_source_has_no_sympy_and_no_sech(schedules):
    src = two_point_naive_sde(1, schedules["vp-linear"]).source()
    assert "sympy" not in src and "sech" not in src
    assert "def sde_drift(x, t, kappa):" in src and "def sde_noise(x, t, kappa):" in src
