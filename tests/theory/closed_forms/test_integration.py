"""Closed-form time integrals (gtv.theory.closed_forms.integration)."""

from __future__ import annotations

import mpmath as mp
import pytest
import sympy as sp

from gtv.theory import closed_forms as cf

R = sp.Rational


def test_integrate_rational_real_logs():
    y = sp.Symbol("y", real=True)
    f = 1 / (y * (1 - y)) + 3 / (2 * y + 1) ** 2
    val = cf.integrate_rational(f, y, R(1, 10), R(9, 10))
    assert not val.has(sp.I)
    ref = mp.quad(sp.lambdify(y, f, "mpmath"), [0.1, 0.9])
    assert abs(float(sp.N(val, 25)) - float(ref)) < 1e-14
    with pytest.raises(ValueError, match="rational"):
        cf.integrate_rational(sp.exp(y), y, 0, 1)
