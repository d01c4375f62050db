"""Gaussian integrals by sympy (gtv.theory.path_integral.gaussian)."""

import pytest
import sympy as sp

from gtv.theory.path_integral import (
    gaussian_expectation,
)


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
