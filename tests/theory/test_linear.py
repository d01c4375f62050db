"""Symbolic derivation of the first-order linear-model theory (gtv.theory.linear).

The mathematics is docs/math/linear.md.

Each identity of the derivation is checked by sympy simplification on small explicit matrices;
wrong variants (a missing rho W_inf, a transposed Kronecker factor, E g's outer product left out
of the split) are shown to fail.
"""

import numpy as np
import pytest
import sympy as sp

from gtv.theory.linear import (
    constant_feature_theory,
    exact_weight_error,
    first_order_perturbation,
    kron,
    mean_gradient,
    posterior_split,
    rho,
    score_covariance_factor,
    sym_matrix,
    total_covariance_split,
    vec,
    vec_identities,
)
from gtv.theory.path_integral import t2
from gtv.theory.schedules import named_schedule, t


def _is_zero(M) -> bool:
    M = sp.Matrix(M)
    return all(sp.simplify(sp.expand(e)) == 0 for e in M)


@pytest.mark.parametrize("F,D", [(2, 1), (2, 2)])
def test_mean_gradient_is_rho_W_inf(F, D):
    r = mean_gradient(F, D)
    assert _is_zero(r["Eg"] - r["rho_W"])
    assert not _is_zero(r["Eg"])  # E g != 0 with a ridge
    assert _is_zero(r["Eg"].subs(rho, 0))


def test_exact_weight_error():
    """A_P - W Sigma_P = g_bar - rho W for any W; W_P - W = (g_bar - rho W) Sigma_P^{-1}."""
    r = exact_weight_error(P=2, F=2, D=1)
    assert _is_zero(r["lhs"] - r["rhs"])
    assert _is_zero(r["W_error"])
    r3 = exact_weight_error(P=3, F=2, D=2)
    assert _is_zero(r3["lhs"] - r3["rhs"])


def test_first_order_perturbation():
    r = first_order_perturbation(F=2, D=1)
    assert _is_zero(r["derivative"] - r["predicted"])
    assert _is_zero(r["gbar_minus_Eg"] - r["dA_minus_W_dS"])
    eta = r["eta"]
    # The remainder is O(eta^2): its value and first derivative vanish at eta = 0 ...
    rem = r["remainder"]
    assert _is_zero(rem.subs(eta, 0))
    assert _is_zero(sp.diff(rem, eta).subs(eta, 0))
    # ... but not its second derivative (the Sigma_P fluctuation enters at second order).
    assert not _is_zero(sp.diff(rem, eta, 2).subs(eta, 0))
    # Wrong variant: dropping the W_inf dS term.
    Sr = sym_matrix("S", 2, 2, symmetric=True) + rho * sp.eye(2)
    wrong = sym_matrix("dA", 1, 2) * Sr.inv()
    assert not _is_zero(r["derivative"] - wrong)


def test_vec_identities():
    for name, (lhs, rhs) in vec_identities(F=2, D=2).items():
        assert _is_zero(lhs - rhs), name
    # The other Kronecker order is wrong for column-stacking vec.
    X, B = sym_matrix("X", 2, 2), sym_matrix("B", 2, 2)
    assert not _is_zero(vec(X * B) - kron(sp.eye(2), B.T) * vec(X))


def test_cov_W_formula_from_vec_identity():
    """Cov(vec(X S)) = (S (x) I) Cov(vec X) (S (x) I) for symmetric S, on a discrete law of X."""
    S = sym_matrix("S", 2, 2, symmetric=True)
    p = sp.Symbol("p", positive=True)
    X1, X2 = sym_matrix("X", 2, 2), sym_matrix("Y", 2, 2)

    def cov(v1, v2):
        m = p * v1 + (1 - p) * v2
        return p * (v1 - m) * (v1 - m).T + (1 - p) * (v2 - m) * (v2 - m).T

    lhs = cov(vec(X1 * S), vec(X2 * S))
    K = kron(S, sp.eye(2))
    assert _is_zero(lhs - K * cov(vec(X1), vec(X2)) * K)


@pytest.mark.parametrize("M,D", [(3, 1), (3, 2)])
def test_posterior_split(M, D):
    r = posterior_split(M, D)
    assert _is_zero(r["lhs"] - r["rhs"])


def test_total_covariance_split():
    """Direct Cov(vec g) == proxy + misfit with vec(Eg) vec(Eg)^T inside the misfit part."""
    r = total_covariance_split(K=2, M=2, F=2, D=1)
    assert _is_zero(r["direct"] - r["proxy"] - r["misfit"])
    assert _is_zero(vec(r["Eg"]) - r["Evg"])
    # Leaving E g's outer product out (or putting it in twice) is wrong.
    Egg = vec(r["Eg"]) * vec(r["Eg"]).T
    assert not _is_zero(r["direct"] - r["proxy"] - r["misfit"] - Egg)


def test_total_covariance_split_2d():
    r = total_covariance_split(K=2, M=2, F=1, D=2)
    assert _is_zero(r["direct"] - r["proxy"] - r["misfit"])


@pytest.mark.parametrize("name", ["vp-linear", "linear-variance", "ve"])
def test_score_covariance_factor(name):
    r = score_covariance_factor(name)
    a1, v1, a2, v2 = r["generic_symbols"]
    # Affine map: the score covariance is the denoiser covariance times (a1/v1)(a2/v2), exactly.
    assert sp.simplify(r["generic_ratio"] - a1 * a2 / (v1 * v2)) == 0
    sch = named_schedule(name)
    expected = sch.diffusion * sch.alpha / sch.sigma2
    expected = expected * expected.subs(t, t2)
    f = sp.lambdify((t, t2), [r["v_factor"], r["c_t"] * r["c_t2"], expected], "mpmath")
    T = float(sch.T)
    for tv, t2v in [(0.1, 0.7), (0.35, 0.35), (0.9, 0.02)]:
        vals = [complex(v) for v in f(tv * T, t2v * T)]
        assert abs(vals[0] - vals[2]) <= 1e-12 * abs(vals[2])
        assert abs(vals[1] - vals[2]) <= 1e-12 * abs(vals[2])


def test_constant_feature_closed_form():
    r = constant_feature_theory([-1, sp.Rational(1, 2), 1], "linear-variance", sp.Rational(1, 100))
    # E[(1 - t)/t] and E[(1 - t)^2/t^2] over U[eps, 1], written out.
    eps = sp.Rational(1, 100)
    e1 = (sp.log(1 / eps) - (1 - eps)) / (1 - eps)
    e2 = (1 / eps - 1 - 2 * sp.log(1 / eps) + (1 - eps)) / (1 - eps)
    assert sp.simplify(r["E_lam"] - e1) == 0
    assert sp.simplify(r["E_lam2"] - e2) == 0
    # rho = 0: W = mean(mu) and the misfit-free constant model has Cov g = E lam^2 Var(mu).
    W0 = sp.simplify(r["W_inf"].subs(rho, 0))
    assert W0 == sp.Rational(1, 6)
    var = np.var([-1, 0.5, 1])
    assert abs(float(r["cov_g"].subs(rho, 0)) - float(e2) * var) < 1e-12 * float(e2)
