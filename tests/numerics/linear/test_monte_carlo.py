"""The Monte Carlo population moments against the quadrature theory (an independent method)."""

import numpy as np
import pytest

from gtv.numerics.features import ProductFeatures
from gtv.numerics.linear import (
    LinearTheory,
    linear_model_theory,
    linear_model_theory_mc,
    population_triples,
)
from gtv.numerics.schedules import get_schedule

EPS = 0.02


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(11)
    a = rng.uniform(0, 2 * np.pi, 4)
    data = np.c_[np.cos(a), np.sin(a)]
    feat = ProductFeatures.uniform("gaussian", 2, 3, 2, (EPS, 1.0))
    quad = linear_model_theory(data, feat, EPS, ridge=1e-2, n_t=6, n_hermite=24)
    return data, feat, quad


def _rel(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


def test_mc_moments_converge_to_the_quadrature(setup):
    """Monte Carlo error ~ n**-1/2 (largest entry, relative to the largest): measured 0.3-3.5 %
    at 2e4 triples, 0.1-1.1 % at 3.2e5 and 0.05-0.3 % at 1.28e6 over seeds 5, 6; the bounds are
    about 2.5x the largest of those. A wrong weight, index order or missing term is off by O(1)."""
    data, feat, quad = setup
    errs = []
    for n in (20_000, 320_000):
        mc = linear_model_theory_mc(data, feat, EPS, ridge=1e-2, n_mc=n, seed=5)
        assert isinstance(mc, LinearTheory) and mc.n_hermite == 0
        errs.append(
            max(_rel(getattr(mc, k), getattr(quad, k)) for k in ("sigma", "A", "A_x0", "W_inf"))
        )
        errs.append(max(_rel(mc.cov_g(part), quad.cov_g(part)) for part in ("proxy", "misfit")))
    small_first, small_cov, big_first, big_cov = errs
    assert small_first < 0.02 and small_cov < 0.08
    assert big_first < 0.01 and big_cov < 0.025


def test_population_triples_weights_and_balance():
    data = np.array([[0.0, 1.0], [1.0, 0.0], [-1.0, 0.0]])
    sched = get_schedule("vp-linear")
    t, w, x0, x = population_triples(data, 3000, EPS, sched, seed=1)
    assert np.all((t >= EPS) & (t <= 1.0))
    # Each training point appears equally often (cycling through a permutation).
    counts = [np.sum(np.all(x0 == p, axis=1)) for p in data]
    assert counts == [1000, 1000, 1000]
    # The weights integrate 1 and t exactly: E_{U[eps, T]}[t] = (T + eps) / 2.
    assert abs(w.sum() - 1) < 1e-3
    assert abs((w * t).sum() - (1 + EPS) / 2) < 1e-3


def test_mc_theory_is_reproducible_and_checks_arguments(setup):
    data, feat, _ = setup
    a = linear_model_theory_mc(data, feat, EPS, ridge=1e-2, n_mc=2000, seed=7)
    b = linear_model_theory_mc(data, feat, EPS, ridge=1e-2, n_mc=2000, seed=7)
    assert np.array_equal(a.cov_g_misfit, b.cov_g_misfit)
    with pytest.raises(ValueError, match="n_mc"):
        linear_model_theory_mc(data, feat, EPS, n_mc=3)
    with pytest.raises(ValueError, match="eps"):
        linear_model_theory_mc(data, feat, 2.0)
    with pytest.raises(TypeError, match="seed"):
        linear_model_theory_mc(data, feat, EPS, seed=1.5)
