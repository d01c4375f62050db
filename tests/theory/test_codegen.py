"""Code generation sympy -> numba (docs/architecture.md, docs/engineering.md).

The committed ``numerics/_generated/schedules.py`` must be exactly what the generator produces
today (golden test), and every generated function must equal sympy's value of the same quantity
computed with mpmath at 50 digits, to 1e-12 relative, over the whole time range including
t ~ 1e-8 T where naive ``1 - exp(-x)`` would lose about half the digits.
"""

import numba
import numpy as np
import pytest
import sympy as sp

from gtv.numerics._generated.schedules import SCHEDULES
from gtv.theory.codegen import (
    function_source,
    generated_schedules_path,
    generated_schedules_source,
)
from gtv.theory.schedules import QUANTITIES, SCHEDULE_NAMES, named_schedule, t

RTOL = 1e-12


def _reference(expr, tv):
    """sympy's value at t = tv with 50 significant digits, rounded to float at the end."""
    return float(sp.N(expr.subs(t, sp.Float(float(tv), 50)), 50))


def _assert_close(got, ref, what):
    # For ref == 0 (e.g. beta of ve/edm) this demands an exact 0.
    assert abs(got - ref) <= RTOL * abs(ref), (
        what,
        got,
        ref,
        abs(got - ref) / max(abs(ref), 1e-300),
    )


def test_generated_file_is_up_to_date():
    """Golden test: regenerating the schedule module reproduces the committed file byte for byte."""
    committed = generated_schedules_path().read_text()
    assert generated_schedules_source() == committed, (
        "numerics/_generated/schedules.py is out of date: run python -m gtv.theory.codegen"
    )


def test_registry_covers_every_named_schedule_and_quantity():
    assert set(SCHEDULES) == set(SCHEDULE_NAMES)
    for name in SCHEDULE_NAMES:
        entry = SCHEDULES[name]
        assert entry["T"] == float(named_schedule(name).T)
        assert set(entry) == {"T", *QUANTITIES}


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_generated_quantities_match_sympy_at_50_digits(name):
    """Every quantity at 10 times log-uniform in [1e-8 T, 0.99 T] agrees with mpmath to 1e-12.

    The upper end is 0.99 T because linear-variance's beta = 1/(2(1 - t)) diverges at t = T = 1.
    """
    sch = named_schedule(name)
    T = float(sch.T)
    times = np.geomspace(1e-8 * T, 0.99 * T, 10)
    for q in QUANTITIES:
        expr = sch.quantity(q)
        fn = SCHEDULES[name][q]
        for tv in times:
            _assert_close(float(fn(float(tv))), _reference(expr, tv), (q, float(tv)))


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_sigma2_is_accurate_at_tiny_t(name):
    """sigma2(1e-8) to 1e-12 relative: VP/VE schedules need expm1 (1 - exp(-x) keeps ~8 digits)."""
    sch = named_schedule(name)
    tv = 1e-8
    _assert_close(float(SCHEDULES[name]["sigma2"](tv)), _reference(sch.sigma2, tv), "sigma2")


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_generated_functions_accept_scalars_and_arrays(name):
    """Each function broadcasts over a float64 array (constants included: ve's alpha = 1) and the
    array result equals the scalar results element by element."""
    T = SCHEDULES[name]["T"]
    ts = np.array([0.01, 0.2, 0.5, 0.9]) * T
    for q in QUANTITIES:
        fn = SCHEDULES[name][q]
        arr = np.asarray(fn(ts))
        assert arr.shape == ts.shape, (q, arr.shape)
        assert arr.dtype == np.float64
        scalars = np.array([fn(float(tv)) for tv in ts])
        assert np.ndim(fn(float(ts[0]))) == 0
        np.testing.assert_array_equal(arr, scalars)


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_generated_functions_are_callable_from_njit(name):
    """The functions can be used inside user kernels: call all of them from an @njit loop."""
    f = [SCHEDULES[name][q] for q in QUANTITIES]
    f0, f1, f2, f3, f4, f5, f6, f7, f8, f9 = f

    @numba.njit
    def table(ts):
        out = np.empty((ts.size, 10))
        for i in range(ts.size):
            tv = ts[i]
            out[i, 0] = f0(tv)
            out[i, 1] = f1(tv)
            out[i, 2] = f2(tv)
            out[i, 3] = f3(tv)
            out[i, 4] = f4(tv)
            out[i, 5] = f5(tv)
            out[i, 6] = f6(tv)
            out[i, 7] = f7(tv)
            out[i, 8] = f8(tv)
            out[i, 9] = f9(tv)
        return out

    ts = np.array([0.05, 0.3, 0.7]) * SCHEDULES[name]["T"]
    got = table(ts)
    expected = np.array([[fn(float(tv)) for fn in f] for tv in ts])
    np.testing.assert_array_equal(got, expected)


def test_function_source_checks_arguments_and_broadcasts():
    """Every argument must be a symbol of the expression's; unused ones are padded with 0.0 * arg
    so that the result broadcasts (a constant over every argument), unless broadcast=False."""
    x, t2 = sp.Symbol("x", real=True), sp.Symbol("t2", positive=True)
    with pytest.raises(ValueError, match="not arguments"):
        function_source("f", x * t2, (x, t))
    assert "0.0 * x" in function_source("f", sp.Integer(3), (x, t))
    assert "0.0 * t" in function_source("f", sp.Integer(3))
    src = function_source("f", sp.sech(x), (x, t), broadcast=False)
    assert "sech" not in src and "cosh" in src and "0.0" not in src
