"""Basins of the sampler's last step (gtv.validation.linear.basins).

* A member with D^ = 0 (W = 0): the last step is x -> c x, so the basins are intervals known in
  closed form (vp-linear coefficients written out here, independent of the schedule code).
* A trained ensemble: the lengths against a Monte Carlo count with uniform points, the denoiser
  evaluated by ``evaluate_reference`` and the closed-form coefficients (5 binomial standard
  errors: a false alarm below 1e-6 per member and point).
* Bad input.
"""

import dataclasses

import numpy as np
import pytest

from gtv.numerics.features import ProductFeatures
from gtv.numerics.linear import train_linear_ensemble
from gtv.numerics.schedules import get_schedule
from gtv.validation.linear.basins import last_step_basins
from tests.numerics.fokker_planck.exact import beta, log_alpha

DATA = np.array([[0.0], [-1.0], [1.0]])  # unsorted on purpose
EPS = 0.01


def _last_step(n_steps):
    """(t, c_x, c_d) with x_K = c_x x + c_d D^(x, t) for the Euler step from t to eps
    (dx/dt = (beta/sigma^2 - beta) x - (beta alpha/sigma^2) D^, vp-linear closed forms)."""
    t = EPS + (1.0 - EPS) / n_steps
    la = log_alpha(t)
    alpha, sigma2 = np.exp(la), -np.expm1(2 * la)
    a, b = beta(t) / sigma2 - beta(t), beta(t) * alpha / sigma2
    dt = EPS - t
    return t, 1 + dt * a, -dt * b


@pytest.fixture(scope="module")
def ens():
    sched = get_schedule("vp-linear")
    feats = ProductFeatures.uniform("gaussian", 1, 8, 4, (EPS, sched.T), (-1.5, 1.5))
    return train_linear_ensemble(DATA, feats, 4, 64, EPS, sched, ridge=0.1, seed=2)


def _interval_length(lo, hi, a, b):
    return max(0.0, min(hi, b) - max(lo, a))


@pytest.mark.parametrize("n_steps", [30, 7])
def test_zero_denoiser_basins_in_closed_form(ens, n_steps):
    zero = dataclasses.replace(ens, W=np.zeros_like(ens.W))
    core, reach = 0.05, 0.5
    got = last_step_basins(zero, n_steps=n_steps, core=core, reach=reach, n_grid=20001)
    _, cx, _ = _last_step(n_steps)
    for j, xm in enumerate(DATA[:, 0]):
        # |cx x - xm| < core  <=>  x in ((xm - core)/cx, (xm + core)/cx)
        want = _interval_length(xm - reach, xm + reach, (xm - core) / cx, (xm + core) / cx)
        np.testing.assert_allclose(got[:, j], want, atol=2 * 2 * reach / 20001)
    assert got[0, 0] > 0.05  # the centre's basin is a real interval, the test is not vacuous


def test_trained_basins_against_monte_carlo(ens):
    got = last_step_basins(ens, core=0.05, reach=0.5)
    t, cx, cd = _last_step(30)
    rng = np.random.default_rng(7)
    n = 40000
    for j, xm in enumerate(DATA[:, 0]):
        x = xm + rng.uniform(-0.5, 0.5, n)
        phi = ens.features.evaluate_reference(x[:, None], np.full(n, t))
        for k in range(ens.n_models):
            xk = cx * x + cd * (phi @ ens.W[k, 0])
            p = np.mean(np.abs(xk - xm) < 0.05)
            se = np.sqrt(max(p * (1 - p), 1e-4) / n)
            assert abs(got[k, j] - p * 1.0) < 5 * se + 1e-3, (k, j)
    assert got.std() > 0.01  # members and points differ


def test_bad_input(ens):
    with pytest.raises(TypeError, match="ensemble"):
        last_step_basins(ens.W)
    for kw, match in (
        (dict(core=0.0), "core"),
        (dict(core=float("nan")), "core"),
        (dict(reach=0.04), "reach"),
        (dict(reach=0.6), "reach"),
        (dict(n_grid=5), "n_grid"),
        (dict(n_steps=0), "n_steps"),
    ):
        with pytest.raises(ValueError, match=match):
            last_step_basins(ens, **kw)
