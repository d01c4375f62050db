"""Symbolic NTKs of the two-layer network (docs/math/kernel.md) and their generated code.

Checks: the closed forms are the Gaussian expectations (sympy integration for ReLU and for the
erf derivative kernel, Price's theorem for the erf NNGP), an independent numerical 2-D quadrature
of the same expectations, the lazy-training time integrals as divided differences (sympy, both
gradient flow and gradient descent), the golden test of ``numerics/_generated/ntk.py`` and the
generated functions against sympy at 50 digits (nearly parallel inputs included).
"""

import math

import numba
import numpy as np
import pytest
import sympy as sp
from scipy import integrate
from scipy.special import erf

from gtv.numerics._generated.ntk import KERNELS
from gtv.theory.ntk import (
    ACTIVATIONS,
    KERNEL_NAMES,
    a,
    b,
    c,
    erf_derivative_expectation,
    gaussian_quadratic_integral,
    generated_ntk_path,
    generated_ntk_source,
    gradient_descent_sums,
    gradient_flow_integrals,
    kernel_expression,
    price_checks,
    relu_expectations,
    sin_theta,
    theta,
)

# (a, b, c) configurations: generic, anticorrelated, nearly parallel, unequal norms.
CONFIGS = [(1.0, 0.7, 0.3), (0.5, 2.0, -0.6), (1.3, 1.3, 1.3 * (1 - 1e-9)), (0.2, 3.0, 0.1)]


def _theta(av, bv, cv):
    return math.acos(max(-1.0, min(1.0, cv / math.sqrt(av * bv))))


# -- derivations --------------------------------------------------------------------------------
def test_relu_kernels_are_the_polar_integrals():
    """sympy's polar integration gives the arc-cosine kernels of order 1 and 0."""
    der = relu_expectations()
    cos_sub = {sp.cos(theta): c / sp.sqrt(a * b)}
    nngp = kernel_expression("relu", "nngp")
    assert sp.simplify(der["nngp"].subs(cos_sub) - nngp) == 0
    assert sp.simplify(der["derivative"] - kernel_expression("relu", "derivative")) == 0
    # Orthogonal inputs: E[relu(u)] E[relu(u')] = sqrt(a b) / (2 pi) and Kdot = 1/4.
    assert sp.simplify(der["nngp"].subs(theta, sp.pi / 2) - sp.sqrt(a * b) / (2 * sp.pi)) == 0
    assert der["derivative"].subs(theta, sp.pi / 2) == sp.Rational(1, 4)


def test_gaussian_quadratic_integral_and_erf_derivative_kernel():
    g = gaussian_quadratic_integral()
    assert sp.simplify(g["integral"] - g["closed_form"]) == 0
    e = erf_derivative_expectation()
    assert sp.simplify(e["LLT"] - sp.Matrix([[a, c], [c, b]])) == sp.zeros(2, 2)
    assert sp.simplify(e["det"] - ((1 + 2 * a) * (1 + 2 * b) - 4 * c**2)) == 0
    assert sp.simplify(e["derivative"] - kernel_expression("erf", "derivative")) == 0


def test_price_theorem_links_nngp_and_derivative_kernel():
    """dK/dc = Kdot for both activations, and K at c = 0 is the product of the means (0 for
    erf, by oddness): for erf this derives K = int_0^c Kdot."""
    for act, chk in price_checks().items():
        assert chk["dK_dc_minus_Kdot"] == 0, act
        assert sp.simplify(chk["K_at_0"] - chk["product_of_means"]) == 0, act


def test_ntk_is_nngp_plus_c_times_derivative_kernel():
    for act in ACTIVATIONS:
        lhs = kernel_expression(act, "ntk")
        rhs = kernel_expression(act, "nngp") + c * kernel_expression(act, "derivative")
        assert sp.simplify(lhs - rhs) == 0


def _relu_quadrature(av, bv, cv):
    """E[relu relu], E[H H] by scipy dblquad over the active region (independent of sympy)."""
    th = _theta(av, bv, cv)
    ct, st = math.cos(th), math.sin(th)
    phi = lambda v: math.exp(-v * v / 2) / math.sqrt(2 * math.pi)  # noqa: E731

    def region(f):
        val, _ = integrate.dblquad(
            lambda x2, x1: f(x1, x2) * phi(x1) * phi(x2),
            0,
            12,
            lambda x1: -x1 * ct / st,
            lambda x1: 12 + abs(x1 * ct / st),
            epsabs=1e-13,
            epsrel=1e-11,
        )
        return val

    k1 = region(lambda x1, x2: math.sqrt(av) * x1 * math.sqrt(bv) * (ct * x1 + st * x2))
    k0 = region(lambda x1, x2: 1.0)
    return k1, k0


def _erf_quadrature(av, bv, cv, n=120):
    """E[erf erf], E[erf' erf'] by tensor Gauss-Hermite (smooth integrands)."""
    x, w = np.polynomial.hermite_e.hermegauss(n)
    w = w / w.sum()
    x1, x2 = np.meshgrid(x, x, indexing="ij")
    W = np.outer(w, w)
    u = math.sqrt(av) * x1
    v = cv / math.sqrt(av) * x1 + math.sqrt(bv - cv * cv / av) * x2
    d = lambda s: 2 / math.sqrt(math.pi) * np.exp(-(s**2))  # noqa: E731
    return float(np.sum(W * erf(u) * erf(v))), float(np.sum(W * d(u) * d(v)))


@pytest.mark.parametrize("cfg", [CONFIGS[0], CONFIGS[1], CONFIGS[3]])
def test_closed_forms_equal_numerical_gaussian_expectations(cfg):
    av, bv, cv = cfg
    th = _theta(av, bv, cv)
    vals = {a: av, b: bv, c: cv, theta: th}
    k1, k0 = _relu_quadrature(av, bv, cv)
    f = {k: float(kernel_expression("relu", k).subs(vals)) for k in ("nngp", "derivative")}
    np.testing.assert_allclose([f["nngp"], f["derivative"]], [k1, k0], rtol=1e-8)
    e1, e0 = _erf_quadrature(av, bv, cv)
    g = {k: float(kernel_expression("erf", k).subs(vals)) for k in ("nngp", "derivative")}
    np.testing.assert_allclose([g["nngp"], g["derivative"]], [e1, e0], rtol=1e-10)


def test_lazy_time_integrals_are_divided_differences():
    flow = gradient_flow_integrals()
    assert sp.simplify(flow["g"] - flow["minus_dd1"]) == 0
    assert sp.simplify(flow["g"] - flow["g_closed"]) == 0
    assert sp.simplify(flow["I"] - flow["dd2"]) == 0
    for k in (1, 2, 5):
        gd = gradient_descent_sums(k)
        assert sp.simplify(gd["g"] - gd["minus_dd1"]) == 0, k
        assert sp.simplify(gd["I"] - gd["dd2"]) == 0, k


def test_kernel_expression_rejects_unknown_names():
    with pytest.raises(ValueError, match="activation"):
        kernel_expression("tanh", "ntk")
    with pytest.raises(ValueError, match="kernel"):
        kernel_expression("relu", "ck")


# -- generated code -----------------------------------------------------------------------------
def test_generated_file_is_up_to_date():
    """Golden test: regenerating reproduces the committed file byte for byte."""
    assert generated_ntk_source() == generated_ntk_path().read_text(), (
        "numerics/_generated/ntk.py is out of date: run python -m gtv.theory.ntk"
    )


def test_registry_covers_every_activation_and_kernel():
    assert set(KERNELS) == set(ACTIVATIONS)
    for act in ACTIVATIONS:
        assert set(KERNELS[act]) == set(KERNEL_NAMES)


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_generated_kernels_match_sympy_at_50_digits(act):
    """Every generated function equals the sympy closed form (mpmath, 50 digits) to 1e-12 relative,
    with theta and sin(theta) computed at 50 digits (nearly parallel inputs included)."""
    for av, bv, cv in CONFIGS:
        A, B, Cc = (sp.Float(v, 50) for v in (av, bv, cv))
        th = sp.acos(Cc / sp.sqrt(A * B)).evalf(50)
        subs = {a: A, b: B, c: Cc, theta: th}
        for k in KERNEL_NAMES:
            ref = float(sp.N(kernel_expression(act, k).subs(subs), 50))
            got = KERNELS[act][k](av, bv, cv, float(th), float(sp.sin(th).evalf(50)))
            assert abs(got - ref) <= 1e-12 * abs(ref), (act, k, (av, bv, cv), got, ref)


def test_generated_kernels_callable_from_njit():
    f = KERNELS["relu"]["ntk"]
    g = KERNELS["erf"]["ntk"]

    @numba.njit
    def both(x):
        return f(x, x, 0.5 * x, 1.0, math.sin(1.0)) + g(x, x, 0.5 * x, 0.0, 0.0)

    ref = f(1.2, 1.2, 0.6, 1.0, math.sin(1.0)) + g(1.2, 1.2, 0.6, 0.0, 0.0)
    assert both(1.2) == ref
    # sin_theta is used as given (the ReLU kernel does not recompute it).
    assert sp.Symbol("sin_theta", nonnegative=True) == sin_theta
