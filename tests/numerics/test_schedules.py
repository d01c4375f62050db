"""Numeric schedules (docs/math/conventions.md, docs/engineering.md): lookup and validation, the
forward ODEs
checked by finite differences (independently of sympy), and the rule that ``numerics`` never
imports sympy."""

import subprocess
import sys

import numpy as np
import pytest

from gtv.numerics.schedules import SCHEDULE_NAMES, NumericSchedule, get_schedule, resolve_schedule


def test_all_design_schedules_are_available():
    assert set(SCHEDULE_NAMES) == {"vp-linear", "linear-variance", "song-vp", "ve", "edm"}
    for name in SCHEDULE_NAMES:
        sched = get_schedule(name)
        assert isinstance(sched, NumericSchedule) and sched.name == name
        assert sched.T == (80.0 if name == "edm" else 1.0)
        assert sched.config() == {"name": name, "T": sched.T}


def test_unknown_name_is_rejected():
    with pytest.raises(ValueError, match="schedule"):
        get_schedule("cosine-nope")
    with pytest.raises(ValueError, match="schedule"):
        resolve_schedule("cosine-nope")


@pytest.mark.parametrize("T", [0.0, -1.0, np.nan, np.inf])
def test_non_positive_or_non_finite_T_is_rejected(T):
    with pytest.raises(ValueError, match="T"):
        get_schedule("vp-linear", T=T)


def test_linear_variance_T_above_one_is_rejected():
    """sigma2 = t, alpha = sqrt(1 - t) only exists for t <= 1."""
    with pytest.raises(ValueError, match="T"):
        get_schedule("linear-variance", T=1.01)
    assert get_schedule("linear-variance", T=0.9).T == 0.9


@pytest.mark.parametrize("bad", [0.0, -0.5, 1.0 + 1e-12, np.nan, [0.5, 0.0], [0.2, np.nan]])
def test_check_times_rejects_outside_open_closed_interval(bad):
    """Valid times are 0 < t <= T; 0, negative, > T and NaN raise ValueError naming t."""
    with pytest.raises(ValueError, match=r"^t\b"):
        get_schedule("vp-linear").check_times(bad)


def test_check_times_accepts_T_and_names_the_argument():
    sched = get_schedule("edm")
    out = sched.check_times([1e-6, 40.0, 80.0])
    assert out.dtype == np.float64 and out.tolist() == [1e-6, 40.0, 80.0]
    with pytest.raises(ValueError, match=r"^times\b"):
        sched.check_times(81.0, argname="times")


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_forward_odes_by_central_differences(name):
    """d sigma2/dt = -2 beta sigma2 + 2 D and d alpha/dt = -beta alpha, numerically.

    Central differences with h = 1e-5 t: truncation h**2 f'''/6 is <~ 1e-8 relative for these
    schedules (the steepest, ve, has f'''/f' ~ 17**2) and rounding eps f/h is ~1e-11 relative to
    the terms. The residual is compared with 1e-7 x the magnitude of the right-hand-side terms
    (they nearly cancel for VP schedules near T, where sigma2 -> 1); a wrong beta or D by even
    1e-5 relative would fail.
    """
    sched = get_schedule(name)
    for frac in (0.05, 0.3, 0.6, 0.9):
        tv = frac * sched.T
        h = 1e-5 * tv
        ds2 = (sched.sigma2(tv + h) - sched.sigma2(tv - h)) / (2 * h)
        da = (sched.alpha(tv + h) - sched.alpha(tv - h)) / (2 * h)
        b, d, a, s2 = sched.beta(tv), sched.diffusion(tv), sched.alpha(tv), sched.sigma2(tv)
        assert abs(ds2 - (-2 * b * s2 + 2 * d)) <= 1e-7 * (abs(2 * b * s2) + abs(2 * d)), (tv, ds2)
        assert abs(da - (-b * a)) <= 1e-7 * max(abs(b * a), abs(a) / sched.T), (tv, da)


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_derived_coefficients_are_consistent(name):
    """The derived coefficients are the stated combinations of alpha, sigma2, beta, D
    (docs/math/conventions.md)."""
    s = get_schedule(name)
    tv = np.array([0.01, 0.2, 0.7]) * s.T
    a, s2, b, d = s.alpha(tv), s.sigma2(tv), s.beta(tv), s.diffusion(tv)
    np.testing.assert_allclose(s.inv_sigma2(tv), 1 / s2, rtol=1e-13)
    np.testing.assert_allclose(s.score_mean_coeff(tv), a / s2, rtol=1e-13)
    np.testing.assert_allclose(s.proxy_cov_scale(tv), a**2 / s2**2, rtol=1e-13)
    np.testing.assert_allclose(s.dsm_weight(tv), a**2 / s2, rtol=1e-13)
    np.testing.assert_allclose(s.pf_mean_coeff(tv), d * a / s2, rtol=1e-13)
    # pf_x_coeff = D/sigma2 - beta is a difference: compare against the size of the terms.
    assert np.all(np.abs(s.pf_x_coeff(tv) - (d / s2 - b)) <= 1e-13 * (np.abs(d / s2) + np.abs(b)))


def test_numerics_does_not_import_sympy():
    """docs/architecture.md: numerics must not import sympy at run time (import time matters)."""
    code = (
        "import sys\n"
        "import gtv.numerics.posterior, gtv.numerics.schedules\n"
        "assert 'sympy' not in sys.modules, sorted(m for m in sys.modules if 'sympy' in m)[:5]\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


# -- sign conditions at construction (issue 14, "Schedules"; docs/reliability.md) ----------------
def _fields(name, **override):
    s = get_schedule(name)
    keys = ("alpha", "sigma2", "beta", "diffusion", "pf_x_coeff", "pf_mean_coeff")
    keys += ("score_mean_coeff", "inv_sigma2", "proxy_cov_scale", "dsm_weight")
    return {**{k: getattr(s, k) for k in keys}, **override}


def test_custom_numeric_schedule_with_negative_diffusion_is_rejected():
    """A NumericSchedule built from plain callables is checked on a dense grid: D = 1 - 2 t is
    negative on (1/2, 1] (the grid reports [0.502, 1]); sigma2 = 2 t (1 - t) vanishes at T."""
    with pytest.raises(ValueError, match=r"^diffusion: .*negative for t in \[0\.502, 1\]"):
        NumericSchedule(name="mine", T=1.0, **_fields("vp-linear", diffusion=lambda t: 1 - 2 * t))
    with pytest.raises(ValueError, match=r"^sigma2: .*not for t in \[1, 1\]"):
        NumericSchedule(
            name="mine", T=1.0, **_fields("vp-linear", sigma2=lambda t: 2 * t * (1 - t))
        )
    with pytest.raises(ValueError, match="T must be"):
        NumericSchedule(name="mine", T=-1.0, **_fields("vp-linear"))


def test_custom_schedule_used_beyond_its_valid_range_is_rejected():
    """Valid symbolically for T = 1 (D = 1 - t/2 >= 0 there), but compiled for T = 3: the numeric
    check catches D < 0 for t > 2."""
    from gtv.theory.schedules import Schedule, t

    sched = Schedule.from_drift_diffusion(0, 1 - t / 2, T=1)
    assert sched.to_numeric().T == 1.0
    with pytest.raises(ValueError, match=r"^diffusion: .*negative for t in \[2\.0\d*, 3\]"):
        sched.to_numeric(T=3)


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_named_numeric_schedules_pass_the_sign_check(name):
    get_schedule(name).check_signs()
