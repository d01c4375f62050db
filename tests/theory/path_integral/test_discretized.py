"""MSR path integral of the discretized PF-ODE with a random score (docs/math/path_integral.md).

* The Gaussian average of the discretized action's exponential, computed by integrating against
  the normal density with sympy, equals exp(-S0 + M1 - M2/2) exactly (K = 2, 3 in 1-D; K = 2 in
  2-D); wrong variants of M1/M2 are detected.
* The averaged weight is the MSR weight of the effective Euler-Maruyama scheme.
"""

import pytest
import sympy as sp

from gtv.theory.path_integral import (
    discrete_msr,
    naive_m2_discrete,
)

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


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="K"):
        discrete_msr(0)
    with pytest.raises(ValueError, match="dim"):
        discrete_msr(2, 0)
    with pytest.raises(ValueError, match="K"):
        naive_m2_discrete(0)
