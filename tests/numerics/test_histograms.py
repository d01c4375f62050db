"""numba per-model reductions vs their numpy references (exact agreement)."""

from __future__ import annotations

import numpy as np
import pytest

from gtv.numerics.histograms import gap_fraction, uniform_histogram_counts
from gtv.validation.ensembles import (
    gap_mass,
    gap_mass_reference,
    per_model_histograms,
    per_model_histograms_reference,
)


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_uniform_counts_equal_numpy_histogramdd(dim):
    """Bin for bin equal to numpy.histogramdd, including samples exactly on edges and bounds."""
    rng = np.random.default_rng(dim)
    lo, hi, nb = -1.5, 1.5, 17
    edges = np.linspace(lo, hi, nb + 1)
    x = rng.normal(scale=1.3, size=(5, 3000, dim))
    # Every edge value, the outer bounds and points just outside, on every axis.
    on_edges = np.concatenate([edges, [hi, lo, np.nextafter(hi, 9), np.nextafter(lo, -9)]])
    x[:, : on_edges.size, :] = on_edges[None, :, None]
    counts = uniform_histogram_counts(x, [(lo, hi)] * dim, [nb] * dim)
    for n in range(x.shape[0]):
        ref, _ = np.histogramdd(x[n], bins=[edges] * dim)
        np.testing.assert_array_equal(counts[n], ref)


def test_per_model_histograms_fast_path_equals_reference():
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, size=(4, 2000, 2))
    edges = [np.linspace(-1.5, 1.5, 31), np.linspace(-1.0, 1.0, 11)]
    np.testing.assert_array_equal(
        per_model_histograms(x, edges), per_model_histograms_reference(x, edges)
    )
    # Non-uniform edges take the reference path and still integrate to the fraction inside.
    uneven = [np.array([-1.5, -0.2, 0.0, 0.7, 1.5]), np.array([-1.0, 0.1, 1.0])]
    h = per_model_histograms(x, uneven)
    vol = np.multiply.outer(np.diff(uneven[0]), np.diff(uneven[1]))
    inside = np.mean((np.abs(x[..., 0]) <= 1.5) & (np.abs(x[..., 1]) <= 1.0), axis=1)
    np.testing.assert_allclose((h * vol).sum(axis=(1, 2)), inside, rtol=1e-12)


@pytest.mark.parametrize("dim", [1, 2])
def test_gap_fraction_equals_reference(dim):
    rng = np.random.default_rng(10 + dim)
    data = rng.normal(size=(4, dim))
    x = rng.normal(size=(6, 4000, dim))
    x[0, :4] = data + 0.25 / np.sqrt(dim)  # exactly at (or within rounding of) the threshold
    np.testing.assert_array_equal(gap_mass(x, data, 0.25), gap_mass_reference(x, data, 0.25))
    np.testing.assert_array_equal(gap_fraction(x, data, 0.25), gap_mass_reference(x, data, 0.25))


def test_bad_input():
    with pytest.raises(ValueError, match="nbins"):
        uniform_histogram_counts(np.zeros((1, 3, 1)), [(0.0, 1.0)], [0])
    with pytest.raises(ValueError, match="lo < hi"):
        uniform_histogram_counts(np.zeros((1, 3, 1)), [(1.0, 1.0)], [3])
