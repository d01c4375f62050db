"""Symbolic noise schedules (docs/math/conventions.md).

A schedule is the forward SDE ``dx = -beta x dt + G dW`` with ``D = G**2/2``; its marginal is
``x_t | x_0 ~ N(alpha_t x_0, sigma_t**2 I)`` with ``d alpha/dt = -beta alpha``, ``alpha_0 = 1`` and
``d sigma2/dt = -2 beta sigma2 + 2 D``, ``sigma2_0 = 0``. These tests check the named schedules
against those ODEs and against the definitions in docs/math/conventions.md, the two derivation
directions (``beta, D -> alpha, sigma2`` and back), input validation, and the compiled numeric
form of a custom schedule against sympy evaluated at 50 digits.
"""

import math

import numpy as np
import pytest
import sympy as sp

from gtv.theory.schedules import QUANTITIES, SCHEDULE_NAMES, Schedule, named_schedule, t

VP_BETA = sp.Rational(1, 10) + sp.Rational(199, 10) * t


def _is_zero(expr):
    return sp.simplify(expr) == 0


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_named_schedule_satisfies_forward_odes(name):
    """alpha and sigma2 solve d alpha/dt = -beta alpha and d sigma2/dt = -2 beta sigma2 + 2 D,
    with alpha_0 = 1, sigma2_0 = 0 (checked independently of ``check_consistency``, then that
    ``check_consistency`` itself reports zero residuals)."""
    sch = named_schedule(name)
    assert _is_zero(sp.diff(sch.alpha, t) + sch.beta * sch.alpha)
    assert _is_zero(sp.diff(sch.sigma2, t) + 2 * sch.beta * sch.sigma2 - 2 * sch.diffusion)
    assert sp.limit(sch.alpha, t, 0, "+") == 1
    assert sp.limit(sch.sigma2, t, 0, "+") == 0
    residuals = sch.check_consistency()
    assert set(residuals) == {"alpha", "sigma2"}
    assert all(_is_zero(r) for r in residuals.values())


def test_check_consistency_detects_an_inconsistent_schedule():
    """A schedule whose D does not match its sigma2 has a non-zero sigma2 residual."""
    lv = named_schedule("linear-variance")
    broken = Schedule("broken", lv.alpha, lv.sigma2, lv.beta, 2 * lv.diffusion, lv.T)
    residuals = broken.check_consistency()
    assert _is_zero(residuals["alpha"])
    assert not _is_zero(residuals["sigma2"])


def test_named_schedules_match_design_definitions():
    """The closed forms of docs/math/conventions.md, written out independently here."""
    vp = named_schedule("vp-linear")
    assert _is_zero(vp.beta - VP_BETA) and _is_zero(vp.diffusion - VP_BETA)
    integral = t / 10 + sp.Rational(199, 10) * t**2 / 2
    assert _is_zero(vp.alpha - sp.exp(-integral))
    assert _is_zero(vp.sigma2 - (1 - sp.exp(-2 * integral)))

    lv = named_schedule("linear-variance")
    assert _is_zero(lv.sigma2 - t) and _is_zero(lv.alpha - sp.sqrt(1 - t))
    assert _is_zero(lv.beta - 1 / (2 * (1 - t))) and _is_zero(lv.diffusion - 1 / (2 * (1 - t)))

    song = named_schedule("song-vp")  # dx = -b/2 x dt + sqrt(b) dW, so beta = b/2 and D = b/2
    assert _is_zero(song.beta - VP_BETA / 2) and _is_zero(song.diffusion - VP_BETA / 2)

    ve = named_schedule("ve")
    assert ve.alpha == 1 and ve.beta == 0
    assert _is_zero(ve.sigma2 - sp.Rational(1, 10**4) * ((5000) ** (2 * t) - 1))

    edm = named_schedule("edm")
    assert edm.alpha == 1 and _is_zero(edm.sigma2 - t**2) and float(edm.T) == 80.0
    assert all(float(named_schedule(n).T) == 1.0 for n in ("vp-linear", "song-vp", "ve"))


def test_from_drift_diffusion_rederives_vp_linear():
    """Integrating vp-linear's beta = D = 1/10 + 199 t/10 gives back its alpha and sigma2."""
    derived = Schedule.from_drift_diffusion(VP_BETA, VP_BETA)
    named = named_schedule("vp-linear")
    assert _is_zero(derived.alpha - named.alpha)
    assert _is_zero(derived.sigma2 - named.sigma2)
    assert all(_is_zero(r) for r in derived.check_consistency().values())


def test_from_drift_diffusion_rederives_linear_variance_in_real_form():
    """beta = D = 1/(2(1 - t)) integrates to alpha = sqrt(1 - t), sigma2 = t.

    sympy's raw antiderivative is ``log(t - 1)``, i.e. ``alpha = -I sqrt(t - 1)``: equal on (0, 1)
    but NaN as floating-point code. The derived schedule must be real and evaluate numerically.
    """
    beta = 1 / (2 * (1 - t))
    derived = Schedule.from_drift_diffusion(beta, beta)
    assert _is_zero(derived.alpha - sp.sqrt(1 - t))
    assert _is_zero(derived.sigma2 - t)
    assert not derived.alpha.has(sp.I) and not derived.sigma2.has(sp.I)
    num = derived.to_numeric()
    for tv in (1e-6, 0.3, 0.9):
        assert num.alpha(tv) == pytest.approx(math.sqrt(1 - tv), rel=1e-14)
        assert num.sigma2(tv) == pytest.approx(tv, rel=1e-14)


def test_from_alpha_sigma2_derives_linear_variance_drift():
    """alpha = sqrt(1 - t), sigma2 = t gives beta = D = 1/(2(1 - t))."""
    sch = Schedule.from_alpha_sigma2(sp.sqrt(1 - t), t)
    expected = 1 / (2 * (1 - t))
    assert _is_zero(sch.beta - expected)
    assert _is_zero(sch.diffusion - expected)


def test_non_positive_sigma2_is_rejected():
    """sigma2 = t - 1/2 is negative on (0, 1/2): ValueError naming sigma2."""
    with pytest.raises(ValueError, match="sigma2"):
        Schedule.from_alpha_sigma2(1, t - sp.Rational(1, 2), T=1)


def test_unknown_schedule_name_is_rejected():
    with pytest.raises(ValueError, match="schedule"):
        named_schedule("cosine-nope")


def test_bad_end_time_is_rejected():
    """T must be positive, and linear-variance only exists up to T = 1."""
    with pytest.raises(ValueError, match="T"):
        named_schedule("vp-linear", T=0)
    with pytest.raises(ValueError, match="T"):
        named_schedule("linear-variance", T=1.5)


@pytest.mark.parametrize(
    "build",
    [
        lambda y: Schedule.from_alpha_sigma2(sp.exp(-y * t), 1 - sp.exp(-2 * t)),
        lambda y: Schedule.from_alpha_sigma2(sp.sqrt(1 - t), y * t),
        lambda y: Schedule.from_drift_diffusion(y + t, 1 + t),
        lambda y: Schedule.from_drift_diffusion(1 + t, y),
    ],
    ids=["alpha", "sigma2", "beta", "diffusion"],
)
def test_expressions_with_extra_symbols_are_rejected(build):
    """Schedules may depend on t only; another free symbol is a ValueError naming the argument."""
    y = sp.Symbol("y", positive=True)
    with pytest.raises(ValueError, match="depend only on"):
        build(y)


def test_custom_schedule_to_numeric_matches_sympy():
    """A custom (cosine) schedule compiled with ``to_numeric`` equals sympy at 50 digits to 1e-12.

    alpha = cos(pi t/2), sigma2 = sin(pi t/2)**2 on (0, 0.9]. Small t is the hard part: sympy's
    simplified 1/sigma2 is 2/(1 - cos(pi t)), which cancels catastrophically unless the code
    generator rewrites it.
    """
    T = sp.Rational(9, 10)
    sch = Schedule.from_alpha_sigma2(
        sp.cos(sp.pi * t / 2), sp.sin(sp.pi * t / 2) ** 2, T=T, name="cosine"
    )
    num = sch.to_numeric()
    assert num.name == "cosine" and num.T == 0.9
    times = np.geomspace(1e-8 * 0.9, 0.99 * 0.9, 8)
    for q in QUANTITIES:
        expr = sch.quantity(q)
        fn = getattr(num, q)
        for tv in times:
            ref = float(sp.N(expr.subs(t, sp.Float(float(tv), 50)), 50))
            got = float(fn(float(tv)))
            assert abs(got - ref) <= 1e-12 * abs(ref), (q, tv, got, ref)


# -- sign conditions at construction (issue 14, "Schedules") -----------------------------------
def test_negative_diffusion_is_rejected_with_its_interval():
    """Audit: ``from_drift_diffusion(0, 1 - 2 t, T=1)`` (sigma2(T) = 0, D < 0 for t > 1/2) was
    accepted. sympy decides it: the error names ``diffusion`` and the interval (1/2, 1]."""
    with pytest.raises(ValueError, match=r"^diffusion: .*negative for t in \(1/2, 1\]"):
        Schedule.from_drift_diffusion(0, 1 - 2 * t, T=1)
    with pytest.raises(ValueError, match=r"^diffusion: .*negative for t in \[0, 1\]"):
        Schedule.from_drift_diffusion(1, -1 - t, T=1)


def test_sigma2_not_positive_is_rejected_naming_the_arguments():
    """``D = 0`` gives ``sigma2 = 0`` on all of (0, T] (named beta/diffusion); ``alpha = 1``,
    ``sigma2 = 4 t (1 - t)`` (zero at T) implies ``D = 2 - 4 t < 0`` after 1/2 (named
    alpha/sigma2, the arguments it was built from)."""
    with pytest.raises(ValueError, match=r"^beta/diffusion: sigma_t\*\*2 = 0 must be > 0"):
        Schedule.from_drift_diffusion(1, 0, T=1)
    with pytest.raises(ValueError, match=r"^alpha/sigma2: D_t = 2 - 4\*t .*\(1/2, 1\]"):
        Schedule.from_alpha_sigma2(1, 4 * t * (1 - t), T=1)


def test_undecidable_sign_falls_back_to_a_dense_grid():
    """``t - sin(3 t) < 0`` is a ConditionSet for sympy: the dense grid finds where D < 0
    (independently: t - sin(3t) < 0 exactly for 0 < t < 0.7596, the root of t = sin 3t)."""
    with pytest.raises(ValueError, match=r"^diffusion: .*\[1e-12, 0\.759\d*\] \(dense grid"):
        Schedule.from_drift_diffusion(0, t - sp.sin(3 * t), T=1)
    ok = Schedule.from_drift_diffusion(0, 1 + t + sp.sin(3 * t) / 10, T=1)
    assert ok.T == 1


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_named_schedules_pass_the_sign_checks(name):
    """Every named schedule has sigma2 > 0 on (0, T] and D >= 0 on [0, T] (linear-variance's
    D diverges to +oo at T = 1, which is allowed)."""
    named_schedule(name).check_valid()
