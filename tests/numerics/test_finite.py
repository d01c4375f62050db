"""Finite in, finite out (issue 14, deliverable 4).

Expected values come from the structure of the problem, not from the code under test: far from
the data the posterior sits on the nearest training point (or splits equally at an exact tie);
half-way between two points it splits equally; a Gaussian bump 10**100 away is 0.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from gtv.numerics.exact import sample_exact_denoiser
from gtv.numerics.features import ProductFeatures
from gtv.numerics.pfode import DivergenceWarning, divergence_bound
from gtv.numerics.posterior import posterior_stats
from gtv.numerics.schedules import get_schedule
from gtv.validation.ensembles import gap_mass, per_model_histograms
from gtv.validation.stats import bootstrap_ci

MU = np.array([[-1.0], [0.0], [1.0]])
BACKENDS = ("numba", "numpy")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("t", [1e-100, 1e-160, 1e-200, 1e-300])
def test_posterior_frac_finite_at_tiny_times(backend, t):
    """frac was NaN below t ~ 1e-154 (alpha**2/sigma**4 overflowed: inf/inf)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mid = posterior_stats(MU, [[0.5]], t, backend=backend)  # half-way between 0 and 1
        near = posterior_stats(MU, [[0.3]], t, backend=backend)  # all weight on 0
    assert mid.mean[0, 0] == 0.5 and mid.cov_trace[0] == 0.25
    assert mid.frac[0] == 1.0  # s = 0, tr C > 0
    assert near.mean[0, 0] == 0.0 and near.cov_trace[0] == 0.0
    assert near.frac[0] == 0.0


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("x", [1e17, 1e100, 1e155, 1e156, 1e300, -1e17, -1e300])
@pytest.mark.parametrize("t", [0.5, 1e-3])
def test_posterior_far_queries_sit_on_the_nearest_point(backend, x, t):
    """|x|**2 lost the differences between points (|x| > ~1e16) or overflowed (> ~1e154)."""
    s = posterior_stats(MU, [[x]], t, backend=backend)
    assert s.mean[0, 0] == np.sign(x)  # nearest training point: +1 or -1
    assert s.cov_trace[0] == 0.0
    assert np.isfinite(s.frac[0]) and s.frac[0] == 0.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_posterior_single_point_at_tiny_time(backend):
    """One training point: its weight is 1 even when its logit underflows to -inf (found by
    hypothesis: mu = 8480, x = 0, t = 1e-300 gave NaN)."""
    s = posterior_stats([[8480.0]], [[0.0], [3.0]], 1e-300, backend=backend)
    assert np.all(s.mean == 8480.0) and np.all(s.cov_trace == 0.0) and np.all(s.frac == 0.0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_posterior_far_tie_splits_equally(backend):
    mu = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    s = posterior_stats(mu, [[1e200, 1e200]], 0.5, backend=backend)
    np.testing.assert_array_equal(s.mean[0], [0.5, 0.5])
    assert s.cov_trace[0] == 0.5  # two points at squared distance 1/4 + 1/4 from the mean
    assert 0.0 <= s.frac[0] <= 1e-300


@pytest.mark.parametrize("backend", BACKENDS)
def test_posterior_frac_in_unit_interval_on_a_wide_grid(backend):
    xs = np.array([0.0, 0.25, 0.5, -0.7, 3.0, 1e3, 1e8, 1e20, 1e150, 1e250, -1e305])
    for t in (1.0, 0.3, 1e-2, 1e-6, 1e-40, 1e-150, 1e-250, 1e-300):
        s = posterior_stats(MU, xs[:, None], t, backend=backend)
        assert np.all(np.isfinite(s.frac)) and np.all((s.frac >= 0) & (s.frac <= 1)), t
        assert np.all(np.isfinite(s.mean)) and np.all(np.isfinite(s.cov_trace)), t


@pytest.mark.parametrize("kind", ["gaussian", "fourier"])
@pytest.mark.parametrize("x", [1e100, -1e100, 1e200, -1e300, 45.0, -41.0, 1e6])
def test_features_far_away_match_the_reference(kind, x):
    """Gaussian features at |x| = 1e100 were NaN (0 * inf); the reference gives 0."""
    f = ProductFeatures.uniform(kind, 2, 8, 4, (0.01, 1.0))
    pts = np.array([[x, 0.3], [0.2, x]])
    got = f.evaluate(pts, 0.5)
    with np.errstate(over="ignore"):
        ref = f.evaluate_reference(pts, 0.5)
    assert np.all(np.isfinite(got))
    if kind == "fourier":
        # periodic: every value is a product of cosines/sines (|.| <= 1); far out the phase of
        # n * omega * x is not representable, so only moderate x are compared with the reference
        assert np.all(np.abs(got) <= 1.0 + 1e-12)
        if abs(x) < 100:
            np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)
        return
    if abs(x) > 100:
        assert np.all(got == 0.0)  # exp(-(x/h)**2 / 2) underflows
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-300)


def test_bootstrap_ci_rejects_non_finite_values():
    for bad in ([1.0, np.nan, 2.0], [1.0, np.inf], [-np.inf, 0.0, 1.0]):
        with pytest.raises(ValueError, match="values must be finite"):
            bootstrap_ci(bad)
    with pytest.raises(ValueError, match="values"):
        bootstrap_ci([1e308, 1.7e308, 1.5e308])  # the mean overflows
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_ci([1.0, 2.0], n_resamples=0)
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci([1.0, 2.0], confidence="high")


def test_non_finite_samples_are_never_gap_mass():
    """NaN samples were counted as gap mass (0.71 instead of 0.54-0.61)."""
    rng = np.random.default_rng(0)
    samples = rng.choice([-1.0, 0.0, 1.0], size=(3, 100, 1))
    samples[1, :7, 0] = np.nan
    samples[2, 3, 0] = np.inf
    with pytest.raises(ValueError, match=r"samples must be finite: 8 of 300 samples \(in 2 of 3"):
        gap_mass(samples, MU, 0.25)
    with pytest.raises(ValueError, match="samples must be finite"):
        per_model_histograms(samples, [np.linspace(-2, 2, 9)])
    finite = np.where(np.isfinite(samples), samples, 0.0)
    assert np.all(gap_mass(finite, MU, 0.25) == 0.0)  # control: on the data, no gap mass


def test_heun_divergence_is_reported_with_share_and_advice():
    """Exact Bayes denoiser, Heun, 30 steps, eps = 1e-4: samples explode (audit: 22 % beyond 2)."""
    with pytest.warns(DivergenceWarning) as rec:
        x = sample_exact_denoiser(MU, 4000, 1e-4, n_steps=30, method="heun", seed=0)
    msg = str(rec[0].message)
    bound = divergence_bound(1.0, get_schedule("vp-linear"))
    n_far = int(np.count_nonzero(np.abs(x[:, 0]) > bound))
    assert n_far > 0 and f"{n_far} of 4000 samples ({n_far / 4000:.2%})" in msg
    assert "more steps" in msg and "euler" in msg
    assert x.shape == (4000, 1)  # the samples are still returned for inspection


@pytest.mark.parametrize(("method", "n_steps"), [("euler", 30), ("heun", 300)])
def test_healthy_samplers_do_not_warn(method, n_steps):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DivergenceWarning)
        x = sample_exact_denoiser(MU, 4000, 1e-4, n_steps=n_steps, method=method, seed=0)
    assert np.abs(x).max() < 3.0
