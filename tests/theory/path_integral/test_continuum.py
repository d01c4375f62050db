"""Continuum effective dynamics (gtv.theory.path_integral.continuum; docs/math/path_integral.md).

* The Markov intensity of V0 exp(-|tau|/tau_c) is 2 tau_c V0.
* The effective drift with the exact score is the PF-ODE drift, and the exact density solves the
  reverse-time Fokker-Planck equation of the effective SDE without noise (sign convention).
"""

import sympy as sp

from gtv.theory.path_integral import (
    effective_drift,
    t2,
    tau,
    two_point_naive_sde,
    two_point_score,
    white_noise_intensity,
    x,
    x2,
)
from gtv.theory.proxy import log_density
from gtv.theory.schedules import named_schedule, t


def test_white_noise_intensity_of_exponential_kernel():
    tc = sp.Symbol("tau_c", positive=True)
    v0 = sp.Function("V0")(x)
    assert sp.simplify(white_noise_intensity(v0 * sp.exp(-sp.Abs(t - t2) / tc)) - 2 * tc * v0) == 0
    assert sp.simplify(white_noise_intensity(v0 * sp.exp(-sp.Abs(tau) / tc)) - 2 * tc * v0) == 0
    # x' -> x is applied: V0(x) V0(x') exp(-|t - t'|/tc) gives 2 tc V0(x)**2
    v0b = sp.Function("V0")(x2)
    assert (
        sp.simplify(white_noise_intensity(v0 * v0b * sp.exp(-sp.Abs(t - t2) / tc)) - 2 * tc * v0**2)
        == 0
    )


def test_effective_drift_with_exact_score_is_pf_ode_drift():
    sch = named_schedule("linear-variance")
    s = two_point_score(1, sch)
    assert sp.simplify(effective_drift(sch, s) - sch.pf_ode_drift(x, s)) == 0


def _hp(expr, subs, digits=50):
    return sp.N(expr.subs({k: sp.Float(v, digits) for k, v in subs.items()}), digits)


def test_exact_density_solves_reverse_time_fokker_planck_without_noise():
    """Sign convention check: with kappa = 0, dq/dtau = -dq/dt = d/dx(b q) holds for q = p(x|t)."""
    sch = named_schedule("linear-variance")
    sde = two_point_naive_sde(1, sch, kappa_value=0)
    q = sp.exp(log_density([-1, 1], sch))
    residual = -sp.diff(q, t) - sde.fokker_planck_rhs(q)
    scale = sp.diff(q, t)
    for xv, tv in [(-1.3, 0.2), (0.4, 0.5), (2.0, 0.8)]:
        r = abs(_hp(residual, {x: xv, t: tv}))
        assert r <= 1e-40 * abs(_hp(scale, {x: xv, t: tv})) + 1e-45
    # the wrong time direction fails
    assert abs(_hp(sp.diff(q, t) - sde.fokker_planck_rhs(q), {x: 0.4, t: 0.5})) > 1e-3
