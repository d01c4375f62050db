"""Model-level statistics (gtv.validation.stats): bootstrap CIs (BCa, percentile fallback, SciPy
1.11-1.14 compatibility), the across-model variance CI, interval masses and distances."""

import inspect
import types

import numpy as np
import pytest
from scipy import stats

import gtv.validation.stats as stats_mod
from gtv.numerics.streams import stream_rng
from gtv.validation.stats import (
    DISTANCES,
    bootstrap_ci,
    hellinger,
    interval_masses,
    resampling_rng,
    total_variation,
    variance_ci,
)


# -- bootstrap CI -------------------------------------------------------------------------------
def test_bootstrap_ci_coverage():
    """1000 repetitions of 30 N(2, 1.5^2) draws; BCa 95 % intervals must cover the true mean
    2.0 in a fraction in [0.895, 0.975]. (BCa slightly under-covers at n = 30: an independent
    1000-repetition simulation gave 0.927 +- 0.008.) The number covered is Binomial(1000, p):
    for p = 0.927 the chance of falling outside the window is ~5e-5, for p = 0.92 it is ~0.2 %,
    for p = 0.95 ~2e-4. A 90 % (or 99 %) interval, a wrong centre or a CI that ignores the
    sample size fails."""
    covered, width_ratio = 0, []
    tcrit = stats.t.ppf(0.975, df=29)
    for r in range(1000):
        v = np.random.default_rng(50_000 + r).normal(2.0, 1.5, 30)
        est, lo, hi = bootstrap_ci(v, seed=r)
        assert lo <= est <= hi
        np.testing.assert_allclose(est, v.mean(), rtol=1e-15)
        covered += lo <= 2.0 <= hi
        width_ratio.append((hi - lo) / (2 * tcrit * v.std(ddof=1) / np.sqrt(30)))
    coverage = covered / 1000
    print(
        f"coverage {coverage:.3f} (nominal 0.95); mean width / t-interval width "
        f"{np.mean(width_ratio):.3f}"
    )
    assert 0.895 <= coverage <= 0.975
    # For normal data the bootstrap interval is close to the t-interval: about
    # (1.96/2.045) sqrt(29/30) = 0.94 of its width.
    assert 0.85 < np.mean(width_ratio) < 1.02


def test_bootstrap_ci_degenerate_and_bad_input():
    assert bootstrap_ci(np.full(10, 0.3)) == (0.3, 0.3, 0.3)
    est, lo, hi = bootstrap_ci(np.array([0.0, 1.0]))
    assert lo <= est == 0.5 <= hi
    with pytest.raises(ValueError, match="values"):
        bootstrap_ci(np.array([1.0]))
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci(np.arange(5.0), confidence=1.5)
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci(np.arange(5.0), confidence=0.0)


def test_bootstrap_ci_reproducible_and_confidence_ordered():
    v = np.random.default_rng(8).exponential(size=40)
    assert bootstrap_ci(v, seed=3) == bootstrap_ci(v, seed=3)
    _, lo90, hi90 = bootstrap_ci(v, confidence=0.90)
    _, lo99, hi99 = bootstrap_ci(v, confidence=0.99)
    assert lo99 < lo90 < v.mean() < hi90 < hi99


def test_bootstrap_ci_percentile_fallback(monkeypatch):
    """If BCa returns a non-finite interval the percentile bootstrap is used; for normal data
    it is close to the normal-theory interval mean +- 1.96 s/sqrt(n)."""
    monkeypatch.setattr(stats_mod, "bca_mean_interval", lambda *a: (np.nan, np.nan))
    v = np.random.default_rng(9).normal(0.0, 1.0, 200)
    est, lo, hi = bootstrap_ci(v, n_resamples=4000)
    half = 1.96 * v.std() / np.sqrt(200)
    assert np.isfinite(lo) and np.isfinite(hi) and lo < est < hi
    np.testing.assert_allclose([lo, hi], [est - half, est + half], atol=0.15 * half)


#: The generator keyword of the installed SciPy (``rng`` from 1.15 on, ``random_state`` before).
SCIPY_RNG = "rng" if "rng" in inspect.signature(stats.bootstrap).parameters else "random_state"


def test_bootstrap_ci_resamples_from_the_bootstrap_stream():
    """The resamples come from ``stream(seed, "bootstrap")``: the same interval as
    ``scipy.stats.bootstrap`` given that generator, and a different one for another seed."""
    v = np.random.default_rng(10).exponential(size=25)
    ref = stats.bootstrap(
        (v,), np.mean, n_resamples=500, method="BCa", **{SCIPY_RNG: stream_rng(4, "bootstrap")}
    ).confidence_interval
    np.testing.assert_allclose(
        bootstrap_ci(v, n_resamples=500, seed=4)[1:], (ref.low, ref.high), rtol=1e-15
    )
    assert bootstrap_ci(v, n_resamples=500, seed=5) != bootstrap_ci(v, n_resamples=500, seed=4)
    ss = np.random.SeedSequence(4)
    assert bootstrap_ci(v, n_resamples=500, seed=ss) == bootstrap_ci(v, n_resamples=500, seed=ss)


def test_bca_mean_interval_is_scipys_bca():
    """The BCa interval written out for the mean equals ``scipy.stats.bootstrap(method="BCa")``
    on the same stream, to rounding, over skewed, tied and tiny samples and several levels."""
    for k in range(60):
        rng = np.random.default_rng(k)
        n = int(rng.integers(2, 120))
        v = rng.lognormal(0, rng.uniform(0.1, 2), n) if k % 2 else rng.random(n) ** 3
        if k % 7 == 0:
            v = np.round(v, 1)  # ties
        conf, n_res = [(0.95, 2000), (0.9, 999), (0.5, 50)][k % 3]
        ref = stats.bootstrap(
            (v,), np.mean, confidence_level=conf, n_resamples=n_res, method="BCa",
            **{SCIPY_RNG: stream_rng(k, "bootstrap")},
        ).confidence_interval  # fmt: skip
        got = stats_mod.bca_mean_interval(v, conf, n_res, stream_rng(k, "bootstrap"))
        if np.isnan(ref.low) or np.isnan(got[0]):
            assert np.isnan(ref.low) and np.isnan(got[0]), (k, got, ref)
            continue
        np.testing.assert_allclose(got, (ref.low, ref.high), rtol=0, atol=2e-15 * np.ptp(v))


def test_scipy_bootstrap_on_scipy_without_rng_keyword(monkeypatch):
    """SciPy 1.11-1.14: ``bootstrap`` takes ``random_state=`` (no ``rng=``). The generator goes
    there, and the interval is the same as with ``rng=`` on SciPy >= 1.15."""
    real = stats.bootstrap
    calls = []

    def old_bootstrap(data, statistic, *, n_resamples=9999, confidence_level=0.95,
                      method="BCa", random_state=None):  # fmt: skip
        calls.append(random_state)
        return real(data, statistic, n_resamples=n_resamples, confidence_level=confidence_level,
                    method=method, **{SCIPY_RNG: random_state})  # fmt: skip

    assert "rng" not in inspect.signature(old_bootstrap).parameters
    v = np.random.default_rng(11).normal(size=40)
    kw = {"n_resamples": 300, "method": "BCa"}
    new = stats_mod.scipy_bootstrap((v,), np.mean, 2, **kw).confidence_interval
    monkeypatch.setattr(stats_mod, "scipy_stats", types.SimpleNamespace(bootstrap=old_bootstrap))
    old = stats_mod.scipy_bootstrap((v,), np.mean, 2, **kw).confidence_interval
    assert len(calls) == 1 and isinstance(calls[0], np.random.Generator)
    assert tuple(old) == tuple(new)


@pytest.mark.skipif(
    not {"rng", "random_state"} <= set(inspect.signature(stats.bootstrap).parameters),
    reason="this SciPy does not have both the rng and the random_state keyword",
)
def test_bootstrap_ci_random_state_gives_the_rng_numbers():
    """Where SciPy has both keywords, a Generator passed either way gives the same interval
    (what makes the SciPy 1.11-1.14 path reproduce the numbers of SciPy >= 1.15)."""
    v = np.random.default_rng(12).normal(size=30)
    kw = dict(n_resamples=400, method="BCa")
    a = stats.bootstrap((v,), np.mean, rng=stream_rng(1, "bootstrap"), **kw)
    b = stats.bootstrap((v,), np.mean, random_state=stream_rng(1, "bootstrap"), **kw)
    assert a.confidence_interval == b.confidence_interval


# -- variance CI --------------------------------------------------------------------------------
def test_variance_ci_percentile_of_resampled_variances():
    values = np.random.default_rng(13).normal(0, [1.0, 2.0, 0.5], (60, 3))
    est, lo, hi = variance_ci(values, 500, np.random.default_rng(1))
    np.testing.assert_allclose(est, values.var(axis=0, ddof=1), rtol=1e-14)
    idx = np.random.default_rng(1).integers(0, 60, (500, 60))
    boots = values[idx].var(axis=1, ddof=1)
    np.testing.assert_allclose([lo, hi], np.quantile(boots, [0.025, 0.975], axis=0), rtol=1e-14)
    assert np.all(lo < est) and np.all(est < hi)


def test_resampling_rng_is_its_own_stream():
    a = resampling_rng(3).integers(0, 2**62, 4)
    np.testing.assert_array_equal(a, stream_rng(3, "bootstrap", 1).integers(0, 2**62, 4))
    assert not np.array_equal(a, stream_rng(3, "bootstrap").integers(0, 2**62, 4))


# -- masses and distances -----------------------------------------------------------------------
def test_interval_masses_append_the_outside_bin():
    m = interval_masses(np.array([[0.5, 1.0], [2.0, 0.0]]), 0.25, np.array([0.625, -1e-17]))
    np.testing.assert_allclose(m, [[0.125, 0.25, 0.625], [0.5, 0.0, 0.0]])
    np.testing.assert_allclose(interval_masses(np.array([1.0, 1.0]), 0.5, 0.0), [0.5, 0.5, 0.0])


def test_distances():
    p = np.array([0.5, 0.5, 0.0])
    q = np.array([0.0, 0.0, 1.0])
    assert total_variation(p, p) == 0 and hellinger(p, p) == pytest.approx(0, abs=1e-7)
    assert total_variation(p, q) == pytest.approx(1) and hellinger(p, q) == pytest.approx(1)
    r = np.array([0.25, 0.25, 0.5])
    assert total_variation(p, r) == pytest.approx(0.5)
    assert hellinger(p, r) == pytest.approx(np.sqrt(1 - 2 * np.sqrt(0.125)))
    assert set(DISTANCES) == {"tv", "hellinger"}


def test_standard_error_against_scipy():
    v = np.random.default_rng(4).standard_normal(37) * 3 + 1
    assert stats_mod.standard_error(v) == pytest.approx(stats.sem(v), rel=1e-13)
    for bad in (np.ones(1), np.ones((3, 2))):
        with pytest.raises(ValueError, match="values"):
            stats_mod.standard_error(bad)
