"""Scrambled-Sobol' start points: stratification, streams, argument checks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtri

from gtv.numerics.transport import qmc_start_points


def test_every_axis_is_exactly_stratified():
    """A Sobol' set of 2^12 points puts exactly 2^8 points in each of the 16 equal-mass
    intervals of each axis (random start points would not: binomial sd ~ 15)."""
    sigma = 1.3
    x = qmc_start_points(2, 4096, 2, sigma, seed=0)
    assert x.shape == (2, 4096, 2) and np.all(np.isfinite(x))
    cuts = sigma * ndtri(np.arange(1, 16) / 16)
    for n in range(2):
        for a in range(2):
            counts = np.bincount(np.searchsorted(cuts, x[n, :, a]), minlength=16)
            np.testing.assert_array_equal(counts, 256)
        # the 2-D net: each of the 4 x 4 equal-mass boxes holds 4096 / 16 points
        i = np.searchsorted(cuts[3::4], x[n, :, 0])
        j = np.searchsorted(cuts[3::4], x[n, :, 1])
        np.testing.assert_array_equal(np.bincount(4 * i + j, minlength=16), 256)


def test_models_and_seeds_get_their_own_scrambles():
    a = qmc_start_points(3, 64, 2, 1.0, seed=0)
    np.testing.assert_array_equal(a, qmc_start_points(3, 64, 2, 1.0, seed=0))
    np.testing.assert_array_equal(a[:2], qmc_start_points(2, 64, 2, 1.0, seed=0))
    assert not np.array_equal(a[0], a[1])
    assert not np.array_equal(a, qmc_start_points(3, 64, 2, 1.0, seed=1))


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((0, 64, 2, 1.0), "n_models"),
        ((1, 100, 2, 1.0), "power of 2"),
        ((1, 64, 0, 1.0), "dim"),
        ((1, 64, 2, 0.0), "sigma_T"),
    ],
)
def test_bad_arguments_are_named(args, match):
    with pytest.raises(ValueError, match=match):
        qmc_start_points(*args)
