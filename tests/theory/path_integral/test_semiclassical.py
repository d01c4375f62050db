"""Symbolic derivation of the semiclassical formula (gtv.theory.path_integral.semiclassical).

The posterior identities cancel exactly for Gaussian mixtures; the Jacobi coefficients derived
from the drift and the naive V-kernel equal the printed forms at 50 digits; the variance
equation is the derivative of the accumulated variance; the start-point integral factorises into
determinant times tilt; the committed generated module is up to date (golden test) and its
functions equal sympy at 50 digits.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from gtv.numerics._generated.semiclassical import JACOBI, log_factor
from gtv.theory.path_integral import (
    JACOBI_NAMES,
    fluctuation_variance_rate,
    generated_semiclassical_path,
    jacobi_coefficients,
    jacobi_coefficients_from_theory,
    posterior_identities,
    semiclassical_factor,
    write_generated_semiclassical,
)
from gtv.theory.schedules import SCHEDULE_NAMES, named_schedule, t

RTOL = 1e-12


def _hp(expr: sp.Expr, subs: dict) -> float:
    return float(sp.N(expr.subs({k: sp.Float(float(v), 50) for k, v in subs.items()}), 50))


@pytest.mark.parametrize("n", [1, 2, pytest.param(3, marks=pytest.mark.slow)])
def test_posterior_identities_cancel(n):
    res = posterior_identities(n)
    assert res["score"] == 0
    assert res["mean_slope"] == 0


def test_posterior_identities_reject_bad_n():
    with pytest.raises(ValueError, match="n_components"):
        posterior_identities(0)


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_jacobi_coefficients_from_theory_equal_printed_forms(name):
    """Derived (drift differentiated, V-kernel integrated) == printed (schedule quantities)."""
    sch = named_schedule(name)
    derived, printed = jacobi_coefficients_from_theory(sch), jacobi_coefficients(sch)
    T = float(sch.T)
    for tv in np.geomspace(1e-4 * T, 0.99 * T, 5):
        for q in ("pf_x_coeff", *JACOBI_NAMES):
            ref = _hp(derived[q], {t: tv})
            assert abs(_hp(printed[q], {t: tv}) - ref) <= RTOL * abs(ref), (name, q, tv)


def test_jacobi_slope_is_not_the_naive_guess():
    """slope_var is D alpha**2/sigma**4, not D/sigma**2 (a test that could fail)."""
    sch = named_schedule("vp-linear")
    got = _hp(jacobi_coefficients_from_theory(sch)["slope_var"], {t: 0.3})
    wrong = _hp(sch.diffusion / sch.sigma2, {t: 0.3})
    right = _hp(sch.diffusion * sch.alpha**2 / sch.sigma2**2, {t: 0.3})
    assert abs(got - right) <= RTOL * right and abs(got - wrong) > 0.1 * wrong


def test_fluctuation_variance_rate():
    res = fluctuation_variance_rate()
    assert res["residual"] == 0


@pytest.mark.slow
def test_semiclassical_factor_is_det_times_tilt():
    f = semiclassical_factor()
    assert sp.simplify(f["factor"] / (f["det"] * f["tilt"])) == 1
    y, A, k, s = f["symbols"]
    assert sp.limit(f["det"], k, 0) == 1
    # det is the ratio of Gaussian normalisations: Hessian 1/s + 1/(k A) against 1/(k A)
    hess = 1 / s + 1 / (k * A)
    assert sp.simplify(f["det"] ** 2 - (1 / (k * A)) / hess) == 0
    sub = {y: 1.7, A: 0.4, k: 0.3, s: 0.9}
    assert abs(_hp(f["log_factor"], sub) - _hp(sp.log(f["factor"]), sub)) < 1e-14


def test_generated_file_is_up_to_date(tmp_path):
    """Golden test: regenerating (via the writer) reproduces the committed file byte for byte."""
    fresh = write_generated_semiclassical(tmp_path / "semiclassical.py").read_text()
    assert fresh == generated_semiclassical_path().read_text(), (
        "numerics/_generated/semiclassical.py is out of date: "
        "run python -m gtv.theory.path_integral.semiclassical"
    )


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_generated_coefficients_match_sympy_at_50_digits(name):
    sch = named_schedule(name)
    printed = jacobi_coefficients(sch)
    T = float(sch.T)
    for tv in np.geomspace(1e-6 * T, 0.99 * T, 8):
        for q in JACOBI_NAMES:
            ref = _hp(printed[q], {t: tv})
            got = float(JACOBI[name][q](float(tv)))
            assert abs(got - ref) <= RTOL * abs(ref), (name, q, tv, got, ref)


def _factor_by_quadrature(y: float, var: float, s: float) -> float:
    """``int N(z; 0, s) N(z; y, var) dz / N(y; 0, s)`` by the trapezoid rule (independent)."""
    sd = np.sqrt(var)
    z = np.linspace(y - 12 * sd, y + 12 * sd, 200_001)
    f = np.exp(-(z**2) / (2 * s) - (z - y) ** 2 / (2 * var) + y**2 / (2 * s))
    return float(np.trapezoid(f, z) / (2 * np.pi * np.sqrt(var * s)) * np.sqrt(2 * np.pi * s))


def test_generated_log_factor_is_the_start_point_integral():
    """The printed log-factor equals the log of the integral it stands for (numeric quadrature)
    and, for large y, the determinant plus tilt written out here."""
    for yv, av, kv, sv in [(0.0, 1.0, 0.1, 1.0), (3.0, 2.5, 1e-3, 0.8), (-2.0, 0.2, 0.5, 1.0)]:
        ref = np.log(_factor_by_quadrature(yv, kv * av, sv))
        assert abs(float(log_factor(yv, av, kv, sv)) - ref) < 1e-9, (yv, av, kv, sv)
    yv, av, kv, sv = -40.0, 0.2, 0.5, 1.0
    closed = -0.5 * np.log1p(kv * av / sv) + kv * av * yv**2 / (2 * sv * (sv + kv * av))
    assert abs(float(log_factor(yv, av, kv, sv)) - closed) <= 1e-12 * abs(closed)
