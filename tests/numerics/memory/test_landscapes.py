"""Closed-form landscapes (gtv.numerics.memory.landscapes) against the sympy expressions of
gtv.theory.memory (evaluated with mpmath) and independent scipy roots."""

import math

import mpmath
import numpy as np
import pytest
import sympy as sp
from scipy.optimize import brentq

from gtv.numerics.memory.landscapes import (
    circle_energy,
    circle_radial_score,
    circle_radius,
    merge_time,
    two_memory_minimum,
)
from gtv.numerics.schedules import get_schedule
from gtv.theory.memory import circle_energy as circle_energy_sym


def test_circle_energy_and_score_match_sympy_via_mpmath():
    ce = circle_energy_sym()
    R, b, _, _ = ce["symbols"]
    f_e = sp.lambdify((R, b), ce["energy"], "mpmath")
    f_s = sp.lambdify((R, b), ce["radial_score"], "mpmath")
    mpmath.mp.dps = 40
    try:
        for bv in (0.5, 2.0, 20.0, 100.0, 5000.0):
            rs = np.array([0.0, 0.1, 0.5, 0.98, 1.0, 1.7])
            got_e, got_s = circle_energy(rs, bv), circle_radial_score(rs, bv)
            for i, rv in enumerate(rs):
                want_e = float(f_e(mpmath.mpf(rv), mpmath.mpf(bv)))
                want_s = float(f_s(mpmath.mpf(rv), mpmath.mpf(bv)))
                assert abs(got_e[i] - want_e) <= 1e-12 * max(1.0, abs(want_e)), (bv, rv)
                assert abs(got_s[i] - want_s) <= 1e-12 * max(1.0, abs(want_s)), (bv, rv)
    finally:
        mpmath.mp.dps = 15


@pytest.mark.parametrize(("beta", "rstar"), [(20.0, 0.9873), (100.0, 0.9975), (2.0, 0.8315)])
def test_circle_radius(beta, rstar):
    r = circle_radius(beta)
    assert abs(r - rstar) < 5e-5
    # the radial score vanishes there and the energy is minimal (finite differences)
    assert abs(circle_radial_score(r, beta)) < 1e-12
    e = circle_energy(np.array([r - 1e-3, r, r + 1e-3]), beta)
    assert e[1] < e[0] and e[1] < e[2]


def test_circle_radius_is_zero_at_and_below_beta_one():
    assert circle_radius(1.0) == 0.0 and circle_radius(0.3) == 0.0
    assert circle_radius(1.05) > 0.1  # the ring appears just above beta = 1
    r = np.linspace(0.01, 2, 50)
    assert np.all(circle_radial_score(r, 0.9) < 0)


def test_two_memory_minimum():
    d = 1.3
    for bd2 in (1.0, 2.0):
        assert two_memory_minimum(d, bd2 / d**2) == 0.0
    for bd2 in (2.2, 4.0, 30.0):
        b = bd2 / d**2
        s = two_memory_minimum(d, b)
        ref = brentq(lambda v, b=b: v - 0.5 * d * math.tanh(b * v * d), 1e-9, d / 2, xtol=1e-15)
        assert abs(s - ref) < 1e-13 and 0 < s < d / 2


def test_merge_time_is_where_snr_equals_four_over_d2():
    sched = get_schedule("vp-linear")
    for d in (0.2, 1.0, 3.0):
        tm = merge_time(d)
        a2 = math.exp(-2 * (199 / 20 * tm**2 + tm / 10))  # vp-linear alpha**2, written out
        assert abs(a2 / (1 - a2) - 4 / d**2) < 1e-10 * 4 / d**2
        assert 0 < tm < sched.T
    assert merge_time(1e6) == math.inf  # still separate at T (snr(T) ~ 2e-9)


def test_bad_input():
    with pytest.raises(ValueError, match="beta must be"):
        circle_energy(0.5, -1.0)
    with pytest.raises(ValueError, match="R must be finite"):
        circle_radial_score(-0.1, 2.0)
    with pytest.raises(ValueError, match="d must be"):
        two_memory_minimum(0.0, 1.0)
