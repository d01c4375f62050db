"""Ensemble results (docs/engineering.md): per-model histograms, gap mass, saving/loading,
ensemble mean and quantile bands. (Bootstrap CIs: test_stats.py.)"""

import json

import numpy as np
import pytest

from gtv.validation.ensembles import (
    EnsembleResult,
    TransportSettings,
    gap_mass,
    per_model_histograms,
    sampled_densities,
    summarize_ensemble,
    transported_densities,
)
from gtv.validation.stats import bootstrap_ci


# -- per-model histograms -----------------------------------------------------------------------
def test_histograms_1d_equal_numpy_density_when_all_inside():
    rng = np.random.default_rng(0)
    samples = rng.uniform(-1.5, 1.5, (4, 500, 1))
    edges = np.array([-1.5, -1.0, -0.2, 0.0, 0.7, 1.5])  # unequal widths
    h = per_model_histograms(samples, [edges])
    assert h.shape == (4, 5)
    for k in range(4):
        dens, _ = np.histogram(samples[k, :, 0], bins=edges, density=True)
        np.testing.assert_allclose(h[k], dens, rtol=1e-14)
        np.testing.assert_allclose(np.sum(h[k] * np.diff(edges)), 1.0, rtol=1e-14)


def test_histograms_1d_outside_samples_count_in_normalization():
    rng = np.random.default_rng(1)
    samples = rng.normal(0, 1.2, (3, 400, 1))
    edges = np.linspace(-1.0, 1.0, 9)
    h = per_model_histograms(samples, [edges])
    for k in range(3):
        counts, _ = np.histogram(samples[k, :, 0], bins=edges)
        np.testing.assert_allclose(h[k], counts / (400 * np.diff(edges)), rtol=1e-14)
        inside = np.mean((samples[k, :, 0] >= -1) & (samples[k, :, 0] <= 1))
        np.testing.assert_allclose(np.sum(h[k] * np.diff(edges)), inside, rtol=1e-13)
        assert inside < 1  # the case is not trivial


def test_histograms_2d_equal_numpy_histogram2d():
    rng = np.random.default_rng(2)
    samples = rng.normal(0, 1, (3, 600, 2))
    ex = np.array([-2.0, -0.5, 0.0, 1.0, 2.5])
    ey = np.linspace(-1.5, 1.5, 7)
    h = per_model_histograms(samples, [ex, ey])
    assert h.shape == (3, 4, 6)
    area = np.outer(np.diff(ex), np.diff(ey))
    for k in range(3):
        counts, _, _ = np.histogram2d(samples[k, :, 0], samples[k, :, 1], bins=[ex, ey])
        np.testing.assert_allclose(h[k], counts / (600 * area), rtol=1e-14)


def test_histograms_bad_input():
    with pytest.raises(ValueError, match="samples"):
        per_model_histograms(np.zeros((10, 1)), [np.linspace(0, 1, 3)])
    with pytest.raises(ValueError, match="edges"):
        per_model_histograms(np.zeros((2, 10, 2)), [np.linspace(0, 1, 3)])
    with pytest.raises(ValueError, match="edges"):
        per_model_histograms(np.zeros((2, 10, 1)), [np.array([0.0, 1.0, 0.5])])
    with pytest.raises(ValueError, match="edges"):
        per_model_histograms(np.zeros((2, 10, 1)), [np.array([0.0])])


# -- gap mass -----------------------------------------------------------------------------------
def _gap_mass_loop(samples, data, distance):
    out = []
    for model in samples:
        far = 0
        for x in model:
            if min(np.sqrt(np.sum((x - mu) ** 2)) for mu in data) > distance:
                far += 1
        out.append(far / len(model))
    return np.array(out)


@pytest.mark.parametrize("dim", [1, 2])
def test_gap_mass_matches_direct_loop(dim):
    rng = np.random.default_rng(3 + dim)
    data = rng.uniform(-1, 1, (4, dim))
    samples = rng.uniform(-1.5, 1.5, (5, 300, dim))
    for distance in (0.05, 0.2, 0.6):
        got = gap_mass(samples, data, distance)
        expected = _gap_mass_loop(samples, data, distance)
        assert got.shape == (5,)
        np.testing.assert_array_equal(got, expected)
        assert 0 < expected.mean() < 1  # non-trivial


def test_gap_mass_boundary_is_strict():
    """'Farther than distance': a sample exactly at the distance is not in the gap."""
    data = np.array([[0.0], [1.0]])
    samples = np.array([[[0.5], [0.25], [2.0], [-0.75]]])
    np.testing.assert_array_equal(gap_mass(samples, data, 0.5), [0.5])  # 2.0 and -0.75


def test_gap_mass_bad_input():
    samples = np.zeros((2, 5, 1))
    with pytest.raises(ValueError, match="distance"):
        gap_mass(samples, np.zeros((2, 1)), 0.0)
    with pytest.raises(ValueError, match="distance"):
        gap_mass(samples, np.zeros((2, 1)), np.nan)
    with pytest.raises(ValueError, match="data"):
        gap_mass(samples, np.zeros((2, 2)), 0.1)
    with pytest.raises(ValueError, match="data"):
        gap_mass(samples, np.array([[np.nan]]), 0.1)


# -- EnsembleResult -----------------------------------------------------------------------------
def _result():
    rng = np.random.default_rng(4)
    samples = np.concatenate(
        [rng.normal([[-1.0, 0.0]], 0.2, (6, 100, 2)), rng.normal([[1.0, 0.5]], 0.2, (6, 100, 2))],
        axis=1,
    )
    data = np.array([[-1.0, 0.0], [1.0, 0.5]])
    edges = [np.linspace(-2, 2, 9), np.linspace(-1, 1.5, 6)]
    cfg = {"eps": 0.01, "P": 1000, "features": {"kind": "gaussian", "sizes": [6, 5]}, "seed": 3}
    return samples, data, edges, summarize_ensemble(samples, data, edges, 0.3, cfg)


def test_summarize_ensemble_combines_the_pieces():
    samples, data, edges, res = _result()
    np.testing.assert_array_equal(res.histograms, per_model_histograms(samples, edges))
    np.testing.assert_array_equal(res.gap, gap_mass(samples, data, 0.3))
    assert res.n_models == 6 and res.gap_distance == 0.3
    assert res.config["P"] == 1000
    np.testing.assert_allclose(res.centres[0], (edges[0][1:] + edges[0][:-1]) / 2)
    assert res.gap_mass_ci(seed=2) == bootstrap_ci(res.gap, seed=2)


def test_save_load_round_trip(tmp_path):
    _, _, edges, res = _result()
    path = res.save(tmp_path / "ens")
    assert path.suffix == ".npz"
    back = EnsembleResult.load(path)
    np.testing.assert_array_equal(back.histograms, res.histograms)
    np.testing.assert_array_equal(back.gap, res.gap)
    assert len(back.edges) == 2
    for a, b in zip(back.edges, edges, strict=True):
        np.testing.assert_array_equal(a, b)
    assert back.gap_distance == res.gap_distance
    for key, value in res.config.items():
        assert back.config[key] == value
    np.testing.assert_array_equal(back.mean_density(), res.mean_density())
    # Plain arrays and a JSON configuration: loads without pickle.
    with np.load(path, allow_pickle=False) as f:
        assert all(f[k].dtype != object for k in f.files)
        assert json.loads(str(f["__config__"]))["eps"] == 0.01


def test_mean_density_and_quantiles_against_numpy():
    rng = np.random.default_rng(5)
    h = rng.gamma(2.0, 1.0, (7, 4, 3))
    res = EnsembleResult(h, [np.arange(5.0), np.arange(4.0)], rng.random(7), 0.1)
    mean = res.mean_density()
    assert mean.shape == (4, 3)
    np.testing.assert_allclose(mean, h.sum(axis=0) / 7, rtol=1e-14)
    q = res.quantiles()
    assert q.shape == (2, 4, 3)
    q3 = res.quantiles((0.1, 0.5, 0.9))
    assert q3.shape == (3, 4, 3)
    # Independent linear-interpolation quantile: position q (N - 1) in the sorted values.
    srt = np.sort(h, axis=0)
    for probs, got in (((0.25, 0.75), q), ((0.1, 0.5, 0.9), q3)):
        for i, p in enumerate(probs):
            pos = p * (7 - 1)
            j = int(np.floor(pos))
            frac = pos - j
            expected = srt[j] + frac * (srt[min(j + 1, 6)] - srt[j])
            np.testing.assert_allclose(got[i], expected, rtol=1e-13)
    np.testing.assert_allclose(q3[1], np.median(h, axis=0), rtol=1e-14)
    assert np.all(q[0] <= q[1])


# -- transported densities ----------------------------------------------------------------------
def test_transported_densities_of_affine_maps_are_exact():
    """Model n maps x -> a_n x + b_n: its push-forward of N(0, sigma**2) is N(b_n, (a_n
    sigma)**2), whose bin masses, outside mass and gap mass are known in closed form (scipy);
    the transport is exact for affine maps whatever the grid (docs/math/transport.md)."""
    from scipy.stats import norm

    a, b, sigma = np.array([0.5, 1.0, -0.8]), np.array([0.0, 0.3, -1.1]), 1.3
    calls = []

    def sample(x_T, models=None):
        rows = np.arange(x_T.shape[0]) if models is None else models
        calls.append(rows.size)
        return a[rows, None, None] * x_T + b[rows, None, None]

    edges = np.linspace(-2.0, 2.0, 41)
    data = np.array([[-1.0], [0.0], [1.0]])
    d = transported_densities(sample, 3, sigma, data, edges, 0.25, TransportSettings(64, 1e-6, 256))
    for n in range(3):
        law = norm(b[n], abs(a[n]) * sigma)
        np.testing.assert_allclose(d.histograms[n] * 0.1, np.diff(law.cdf(edges)), atol=1e-12)
        outside = law.cdf(-2.0) + law.sf(2.0)
        assert d.outside[n] == pytest.approx(outside, abs=1e-12)
        near = sum(law.cdf(m + 0.25) - law.cdf(m - 0.25) for m in (-1.0, 0.0, 1.0))
        assert d.gap[n] == pytest.approx(1.0 - near, abs=1e-12)
    # affine maps need no refinement: one call, the grid of 64 points, zero error
    assert calls == [3] and np.all(d.points == 64)
    np.testing.assert_allclose(d.error, 0.0, atol=1e-12)
    assert d.summary()["points_max"] == 64


@pytest.mark.parametrize(
    ("kw", "name"),
    [
        ({"n_points": 3}, "n_points"),
        ({"n_points": 2.5}, "n_points"),
        ({"n_points": 100, "max_points": 50}, "max_points"),
        ({"tolerance": -1.0}, "transport_tolerance"),
    ],
)
def test_transport_settings_are_checked(kw, name):
    with pytest.raises(ValueError, match=name):
        TransportSettings(**kw)


def test_sampled_densities_are_the_per_model_histograms_and_gap_masses():
    """The Monte Carlo counterpart of transported_densities: histograms, outside = 1 - inside
    (samples beyond the edges), gap masses; no error estimates."""
    rng = np.random.default_rng(3)
    xs = rng.normal(0.0, 1.2, (4, 500, 1))
    edges = np.linspace(-2.0, 2.0, 41)
    data = np.array([[-1.0], [0.0], [1.0]])
    d = sampled_densities(xs, data, edges, 0.25)
    for n in range(4):
        counts, _ = np.histogram(xs[n, :, 0], bins=edges)
        np.testing.assert_allclose(d.histograms[n], counts / (500 * 0.1), rtol=1e-12)
        inside = np.count_nonzero((xs[n, :, 0] >= -2.0) & (xs[n, :, 0] <= 2.0))
        assert d.outside[n] == pytest.approx(1.0 - inside / 500, abs=1e-12)
        far = np.min(np.abs(xs[n, :, 0][:, None] - data[:, 0]), axis=1) > 0.25
        assert d.gap[n] == pytest.approx(far.mean(), abs=1e-15)
    assert d.error is None and d.points is None and d.summary() == {}
