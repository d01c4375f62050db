"""MSR path integral of the PF-ODE with a random score (docs/math/path_integral.md, §3.2).

* The Gaussian average of the discretized action's exponential, computed by integrating against
  the normal density with sympy, equals exp(-S0 + M1 - M2/2) exactly (K = 2, 3 in 1-D; K = 2 in
  2-D); wrong variants of M1/M2 are detected.
* The averaged weight is the MSR weight of the effective Euler-Maruyama scheme.
* Naive estimator: discrete M2 == Riemann sum of the continuum kernel kappa D C D delta(t - t');
  the Riemann sum converges to the integral; cumulants >= 3 vanish in the continuum limit.
* Markov intensity of V0 exp(-|tau|/tau_c) is 2 tau_c V0; of the naive kernel, kappa D**2 C.
* Two-point (+-a) naive SDE: closed form == assembled form; numba code == sympy at 50 digits.
"""

import numpy as np
import pytest
import sympy as sp

from gtv.theory.path_integral import (
    discrete_msr,
    effective_drift,
    function_source_multi,
    gaussian_expectation,
    kappa,
    naive_cumulant_sum,
    naive_effective_sde,
    naive_m2_continuum,
    naive_m2_discrete,
    naive_v_kernel,
    riemann_limit,
    space_symbols,
    t2,
    tau,
    two_point_naive_sde,
    two_point_naive_sde_from_theory,
    two_point_score,
    v_kernel,
    white_noise_intensity,
    x,
    x2,
)
from gtv.theory.proxy import log_density
from gtv.theory.schedules import named_schedule, t

CASES = [(2, 1), (3, 1), (2, 2)]


@pytest.fixture(scope="module")
def msr():
    """The three discretizations with their computed Gaussian averages (built once)."""
    out = {}
    for K, dim in CASES:
        m = discrete_msr(K, dim)
        m.gaussian_average()
        out[(K, dim)] = m
    return out


# -- the discrete Gaussian identity -------------------------------------------------------------
@pytest.mark.parametrize("K,dim", CASES)
def test_gaussian_average_of_action_is_exp_m1_minus_half_m2(msr, K, dim):
    m = msr[(K, dim)]
    avg = m.gaussian_average()
    # the density integrates to one: the computed prefactor is exactly 1
    assert avg.prefactor == 1
    # the computed average no longer contains the random scores
    assert not (avg.exponent.free_symbols & set(m.score_variables))
    lhs = m.averaged_weight()
    rhs = sp.exp(-m.free_action() + m.m1() - m.m2() / 2)
    assert sp.simplify(lhs - rhs) == 0


@pytest.mark.parametrize("K,dim", CASES)
def test_wrong_cumulant_formulas_are_detected(msr, K, dim):
    """Negative controls: M2 without the 1/2, M2 without its k != l terms, M1 of wrong sign."""
    m = msr[(K, dim)]
    lhs = m.averaged_weight()
    exponent = m.gaussian_average().exponent
    s0 = m.free_action()
    wrong = {
        "no half": -s0 + m.m1() - m.m2(),
        "no cross terms": -s0 + m.m1() - m.m2(cross_terms=False) / 2,
        "M1 sign": -s0 - m.m1() - m.m2() / 2,
    }
    for name, expo in wrong.items():
        assert sp.expand(exponent - expo) != 0, name
        if (K, dim) == (2, 1):  # the full simplify of the weights, as in the positive test
            assert sp.simplify(lhs - sp.exp(expo)) != 0, name


def test_cross_terms_are_really_present(msr):
    """M2's k != l terms are nonzero for a generic covariance (the negative control has teeth)."""
    m = msr[(2, 1)]
    assert sp.expand(m.m2() - m.m2(cross_terms=False)) != 0


@pytest.mark.parametrize("K,dim", [(2, 1), (2, 2)])
def test_averaged_weight_is_the_effective_euler_maruyama_scheme(msr, K, dim):
    """E exp(-S) == MSR weight of x_{k+1} = x_k + dt_k (-beta x_k - D m_k) + eta_k, eta Gaussian."""
    m = msr[(K, dim)]
    eff = m.effective_euler_average()
    assert eff.prefactor == 1
    assert sp.expand(eff.exponent - m.gaussian_average().exponent) == 0


def test_gaussian_expectation_is_a_real_integration():
    """The engine reproduces a 1-D moment generating function and rejects non-Gaussian input."""
    s = sp.Symbol("s", real=True)
    mu, c = sp.symbols("mu c", real=True)
    sd = sp.Symbol("sd", positive=True)
    res = gaussian_expectation(c * s, [s], sp.Matrix([mu]), sp.Matrix([[sd]]))
    assert res.prefactor == 1
    assert sp.expand(res.exponent - (c * mu + c**2 * sd**2 / 2)) == 0
    with pytest.raises(ValueError, match="quadratic"):
        gaussian_expectation(s**3, [s], sp.Matrix([mu]), sp.Matrix([[sd]]))
    with pytest.raises(ValueError, match="lower triangular"):
        s1, s2 = sp.symbols("s1 s2", real=True)
        gaussian_expectation(s1, [s1, s2], sp.zeros(2, 1), sp.Matrix([[sd, 1], [0, sd]]))


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="K"):
        discrete_msr(0)
    with pytest.raises(ValueError, match="dim"):
        discrete_msr(2, 0)
    with pytest.raises(ValueError, match="K"):
        naive_m2_discrete(0)


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


# -- continuum kernels --------------------------------------------------------------------------
def test_white_noise_intensity_of_exponential_kernel():
    tc = sp.Symbol("tau_c", positive=True)
    v0 = sp.Function("V0")(x)
    assert sp.simplify(white_noise_intensity(v0 * sp.exp(-sp.Abs(t - t2) / tc)) - 2 * tc * v0) == 0
    assert sp.simplify(white_noise_intensity(v0 * sp.exp(-sp.Abs(tau) / tc)) - 2 * tc * v0) == 0
    # x' -> x is applied: V0(x) V0(x') exp(-|t - t'|/tc) gives 2 tc V0(x)**2
    v0b = sp.Function("V0")(x2)
    assert (
        sp.simplify(white_noise_intensity(v0 * v0b * sp.exp(-sp.Abs(t - t2) / tc)) - 2 * tc * v0**2)
        == 0
    )


def test_naive_kernel_gives_kappa_d2_c():
    sch = named_schedule("vp-linear")
    c = sp.Function("C")(x, t)
    q = white_noise_intensity(naive_v_kernel(sch, c))
    assert sp.simplify(q - kappa * sch.diffusion**2 * c) == 0
    # v_kernel with a delta-correlated score covariance is the same kernel
    cov = kappa * c * sp.DiracDelta(t - t2)
    assert sp.simplify(v_kernel(sch, cov) - naive_v_kernel(sch, c)) == 0


def test_effective_drift_with_exact_score_is_pf_ode_drift():
    sch = named_schedule("linear-variance")
    s = two_point_score(1, sch)
    assert sp.simplify(effective_drift(sch, s) - sch.pf_ode_drift(x, s)) == 0


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


def test_exact_density_solves_reverse_time_fokker_planck_without_noise():
    """Sign convention check: with kappa = 0, dq/dtau = -dq/dt = d/dx(b q) holds for q = p(x|t)."""
    sch = named_schedule("linear-variance")
    sde = two_point_naive_sde(1, sch, kappa_value=0)
    q = sp.exp(log_density([-1, 1], sch))
    residual = -sp.diff(q, t) - sde.fokker_planck_rhs(q)
    scale = sp.diff(q, t)
    for xv, tv in [(-1.3, 0.2), (0.4, 0.5), (2.0, 0.8)]:
        r = abs(_hp(residual, {x: xv, t: tv}))
        assert r <= 1e-40 * abs(_hp(scale, {x: xv, t: tv})) + 1e-45
    # the wrong time direction fails
    assert abs(_hp(sp.diff(q, t) - sde.fokker_planck_rhs(q), {x: 0.4, t: 0.5})) > 1e-3


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
    with pytest.raises(ValueError, match="not arguments"):
        function_source_multi("f", x * t2, (x, t))
    # a constant broadcasts over every argument
    assert "0.0 * x" in function_source_multi("f", sp.Integer(3), (x, t))
