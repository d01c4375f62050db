"""The transport grid and TransportedGrid: quantiles, gap mass, halving, the sampler wrapper."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtr

from gtv.numerics.transport import GRID_WIDTH, TransportedGrid, transport_1d, transport_grid

EDGES = np.linspace(-2.0, 2.0, 41)


def test_grid_points_are_quantiles_of_the_widened_gaussian():
    sigma = 0.9
    x = transport_grid(99, sigma)
    assert x.shape == (99,) and np.all(np.diff(x) > 0)
    np.testing.assert_array_equal(x, -x[::-1])
    np.testing.assert_allclose(ndtr(x / (GRID_WIDTH * sigma)), np.arange(1, 100) / 100, atol=1e-14)


@pytest.mark.parametrize("bad", [3, 0, 2.5, True])
def test_grid_rejects_bad_sizes(bad):
    with pytest.raises(ValueError, match="n_points"):
        transport_grid(bad, 1.0)
    with pytest.raises(ValueError, match="sigma_T"):
        transport_grid(10, -1.0)


def test_histograms_are_masses_over_widths():
    start = transport_grid(500, 1.0)
    g = TransportedGrid(start, np.stack([0.5 * start, np.tanh(start)]), 1.0)
    edges = np.array([-1.0, -0.2, 0.1, 0.9])
    np.testing.assert_allclose(g.histograms(edges), g.bin_masses(edges) / np.diff(edges))
    np.testing.assert_allclose(g.histograms(edges)[0], np.diff(ndtr(edges / 0.5)) / np.diff(edges))


def test_gap_mass_of_an_affine_map_is_exact():
    """Far mass of N(m, s^2) from data whose near intervals overlap (merged) and do not."""
    start = transport_grid(64, 1.0)
    a, b = 0.6, 0.1
    g = TransportedGrid(start, (a * start + b)[None], 1.0)
    data = np.array([[-1.0], [0.0], [0.3], [1.0]])
    d = 0.25  # [-0.25, 0.25] and [0.05, 0.55] overlap
    near = [(-1.25, -0.75), (-0.25, 0.55), (0.75, 1.25)]
    exact = 1.0 - sum(ndtr((hi - b) / a) - ndtr((lo - b) / a) for lo, hi in near)
    assert g.gap_mass(data, d)[0] == pytest.approx(exact, abs=1e-13)
    with pytest.raises(ValueError, match="distance"):
        g.gap_mass(data, 0.0)
    with pytest.raises(ValueError, match="data"):
        g.gap_mass(np.zeros((2, 2)), d)


def test_error_estimate_vanishes_for_affine_maps_and_not_otherwise():
    start = transport_grid(401, 1.0)
    g = TransportedGrid(start, np.stack([2 * start - 0.3, np.sin(2 * start)]), 1.0)
    half = g.halved()
    np.testing.assert_array_equal(half.start, start[1::2])
    err = g.error(EDGES)
    assert err[0] < 1e-13
    assert err[1] > 1e-6


def test_transport_1d_runs_the_sampler_on_the_grid():
    calls = []

    def sample(x_T):
        calls.append(x_T.copy())
        return 0.5 * x_T + np.arange(x_T.shape[0])[:, None, None]

    g = transport_1d(sample, 3, 1.2, 100)
    (x_T,) = calls
    assert x_T.shape == (3, 100, 1)
    np.testing.assert_array_equal(x_T[2, :, 0], transport_grid(100, 1.2))
    np.testing.assert_allclose(g.end[1], 0.5 * g.start + 1)
    assert g.n_models == 3 and g.sigma_T == 1.2
    with pytest.raises(ValueError, match="sample must return"):
        transport_1d(lambda x: x[:, :-1], 3, 1.0, 10)


def test_diverged_or_malformed_transport_is_rejected():
    start = transport_grid(10, 1.0)
    end = np.tile(start, (2, 1))
    end[1, 3] = np.nan
    with pytest.raises(ValueError, match="diverged in 1 of 2"):
        TransportedGrid(start, end, 1.0)
    with pytest.raises(ValueError, match="end must have shape"):
        TransportedGrid(start, end[:, :5], 1.0)
    with pytest.raises(ValueError, match="start"):
        TransportedGrid(start[::-1], end, 1.0)


def test_refinement_resolves_a_steep_map():
    """``y = tanh(200 (x - c_n))``: the start interval of width ~0.01 around c_n is spread over
    (-1, 1). Exact bin masses ``Phi(atanh(b)/200 + c) - Phi(atanh(a)/200 + c)``. The plain grid
    of 200 points misses the bends of the steep part; refining where a chord misplaces mass
    recovers the exact masses (per model: the two models have different centres), and the
    refinement rounds call the sampler with packed rows and their models."""
    centres = np.array([0.0, 0.37])
    edges = np.linspace(-1.0, 1.0, 21)
    calls = []

    def sample(x_T, models=None):
        rows = np.arange(x_T.shape[0]) if models is None else models
        calls.append((x_T.shape, None if models is None else models.copy()))
        return np.tanh(200.0 * (x_T - centres[rows][:, None, None]))

    with np.errstate(divide="ignore"):
        z = np.arctanh(edges) / 200.0  # -inf and inf at the end edges: all the far mass
    exact = np.diff(ndtr(z[None, :] + centres[:, None]), axis=1)
    plain = transport_1d(sample, 2, 1.0, 200)
    err_plain = 0.5 * np.abs(plain.bin_masses(edges) - exact).sum(axis=1)
    calls.clear()
    fine = transport_1d(sample, 2, 1.0, 200, resolution=0.1, max_points=4000, block=16)
    err_fine = 0.5 * np.abs(fine.bin_masses(edges) - exact).sum(axis=1)
    assert err_plain.min() > 1e-3
    assert err_fine.max() < 1e-5
    assert calls[0] == ((2, 200, 1), None)
    assert len(calls) > 2
    for shape, models in calls[1:]:
        assert shape[1:] == (16, 1) and models.shape == (shape[0],)
        assert np.all(np.diff(models) >= 0) and set(models) <= {0, 1}
    assert np.all(fine.size > 200) and np.all(fine.size <= 4000)
    # the error estimate of a refined (per-model, padded) grid
    half = fine.halved()
    for n in range(2):
        np.testing.assert_array_equal(half.points(n)[0], fine.points(n)[0][1::2])
        np.testing.assert_array_equal(half.points(n)[1], fine.points(n)[1][1::2])
    assert np.all(fine.error(edges) >= err_fine)
    # the carried CDF is the start mass below every point
    for n in range(2):
        x = fine.points(n)[0]
        np.testing.assert_allclose(fine.cdf[n, : x.size], ndtr(x), rtol=1e-14, atol=1e-300)


def test_refinement_respects_the_point_budget():
    def sample(x_T, models=None):
        return np.sin(1e4 * x_T)  # unresolvable: every cell is curved

    g = transport_1d(sample, 1, 1.0, 64, resolution=1e-3, max_points=300)
    assert 64 < g.size[0] <= 300
    for kw, name in (
        ({"resolution": 0.0}, "resolution"),
        ({"resolution": 0.1, "tolerance": -1.0}, "tolerance"),
        ({"resolution": 0.1, "max_points": 10}, "max_points"),
        ({"resolution": 0.1, "max_split": 1}, "max_split"),
    ):
        with pytest.raises(ValueError, match=name):
            transport_1d(sample, 1, 1.0, 64, **kw)
