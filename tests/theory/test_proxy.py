"""Proxy-score covariance for point data (docs/math/conventions.md, docs/math/closed_forms.md).

For p_data = (1/M) sum delta(x - mu_m), three expressions of C(x, t) = Cov[s_tilde | x, t] must
agree: Tweedie's identity ``1/sigma**2 + d**2/dx**2 log p(x|t)`` (density form), the posterior
variance ``(alpha**2/sigma**4) Var_w[mu]`` (posterior form) and, for two points +-a, the closed form
``(alpha**2 a**2/sigma**4) sech**2(alpha a x/sigma**2)``. The numba kernel of
``gtv.numerics.posterior`` must reproduce them in floating point.
"""

import mpmath
import numpy as np
import pytest
import sympy as sp

from gtv.numerics.posterior import posterior_stats
from gtv.theory.proxy import (
    evaluate,
    frac_two_points,
    proxy_covariance_from_density,
    proxy_covariance_from_posterior,
    proxy_covariance_two_points,
    x,
)
from gtv.theory.schedules import t

NUMERIC_TIMES = (1e-3, 0.01, 0.1, 0.5, 0.9)
X_GRID = np.linspace(-3.0, 3.0, 121)


def _hp(expr, xv, tv, digits=60):
    """High-precision value of an expression in x and t (an mpmath-backed sympy Float)."""
    return sp.N(expr.subs({x: sp.Float(xv, digits), t: sp.Float(tv, digits)}), digits)


# -- symbolic identities ------------------------------------------------------------------------
def test_two_point_forms_are_symbolically_identical():
    """Density form == posterior form == sech**2 closed form for +-1 under linear-variance."""
    pts = [-1, 1]
    dens = proxy_covariance_from_density(pts, "linear-variance")
    post = proxy_covariance_from_posterior(pts, "linear-variance")
    closed = proxy_covariance_two_points(1, "linear-variance")
    for a, b in ((dens, post), (dens, closed), (post, closed)):
        assert sp.simplify((a - b).rewrite(sp.exp)) == 0


def test_two_point_closed_form_is_not_trivially_matched():
    """Sanity of the identity check: a closed form with the wrong amplitude is detected."""
    dens = proxy_covariance_from_density([-1, 1], "linear-variance")
    wrong = 2 * proxy_covariance_two_points(1, "linear-variance")
    assert sp.simplify((dens - wrong).rewrite(sp.exp)) != 0


XT_POINTS = [
    (xv, tv) for tv in (0.1, 0.4, 0.9) for xv in (-2.5, -1.2, -0.3, 0.0, 0.65, 1.7, 3.0)
] + [(-0.3, 0.02)]


def test_density_form_equals_posterior_form_three_asymmetric_points_vp_linear():
    """Tweedie's identity for three asymmetric points [-1, 0.3, 2] under vp-linear, at 60 digits.

    The density form is a difference of large terms (1/sigma**2 and d**2 log p) whose result can be
    many orders smaller; the (x, t) points are chosen so that fewer than ~40 of the 60 digits
    cancel, leaving well over 20 for the 1e-20 comparison.
    """
    pts = [-1, sp.Rational(3, 10), 2]
    dens = proxy_covariance_from_density(pts, "vp-linear")
    post = proxy_covariance_from_posterior(pts, "vp-linear")
    for xv, tv in XT_POINTS:
        a, b = _hp(dens, xv, tv), _hp(post, xv, tv)
        assert b > 0
        assert abs(a - b) <= sp.Float("1e-20") * abs(b), (xv, tv, a, b)
        # ``evaluate`` is the float-valued convenience wrapper of the same evaluation.
        assert evaluate(post, xv, tv) == pytest.approx(float(b), rel=1e-15)


# -- numeric kernel vs symbolic ------------------------------------------------------------------
def _mp_values(expr, xs, tv, dps=50):
    f = sp.lambdify((x, t), expr, "mpmath")
    with mpmath.workdps(dps):
        return np.array([float(f(mpmath.mpf(float(xv)), mpmath.mpf(tv))) for xv in xs])


def _assert_close_rowwise(got, ref, what):
    """|got - ref| <= 1e-12 |ref| + 1e-12 max|ref| over the x row at this t.

    Why the atol: C(x, t) spans hundreds of orders of magnitude along x at small t (sech**2 of
    arguments up to ~3000), down to subnormal numbers where no relative accuracy exists; the
    kernel's logits ~ (x -+ alpha a)**2/(2 sigma**2) carry an absolute rounding error ~ eps |logit|,
    i.e. a relative error ~1e-13 in exponentially small weights, and the 50-digit density form
    is accurate only in absolute terms (1/sigma**2 cancels against d**2 log p). Errors below
    1e-12 of the row's peak value are thus beneath what either side resolves, while any formula
    error (a wrong factor, power or sign) changes the values near the peak by O(1).
    """
    tol = 1e-12 * np.abs(ref) + 1e-12 * np.abs(ref).max()
    bad = np.abs(got - ref) > tol
    assert not bad.any(), (what, X_GRID[bad][:5], got[bad][:5], ref[bad][:5])


@pytest.mark.parametrize("schedule", ["linear-variance", "vp-linear"])
@pytest.mark.parametrize("a", [1.0, 0.7])
def test_kernel_matches_two_point_closed_form_and_density_form(schedule, a):
    """posterior_stats(mu = [[-a], [a]]) tr C equals the sech**2 closed form and Tweedie's
    density form, and frac equals frac_two_points, on x in [-3, 3] and t in {1e-3, ..., 0.9}."""
    closed = proxy_covariance_two_points(a, schedule)
    dens = proxy_covariance_from_density([-a, a], schedule)
    frac_sym = frac_two_points(a, schedule)
    for tv in NUMERIC_TIMES:
        stats = posterior_stats([[-a], [a]], X_GRID[:, None], tv, schedule)
        ref_closed = _mp_values(closed, X_GRID, tv)
        ref_dens = _mp_values(dens, X_GRID, tv)
        ref_frac = _mp_values(frac_sym, X_GRID, tv)
        assert ref_closed.max() > 0
        _assert_close_rowwise(stats.proxy_cov_trace, ref_closed, ("closed form", schedule, tv))
        _assert_close_rowwise(stats.proxy_cov_trace, ref_dens, ("density form", schedule, tv))
        _assert_close_rowwise(stats.frac, ref_frac, ("frac", schedule, tv))
