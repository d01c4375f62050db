"""Training sets of the memorization experiments."""

import numpy as np
import pytest

from gtv.validation.memory import DATASETS, dataset_dim, training_set
from gtv.validation.memory.datasets import MIXTURE_MEANS, MIXTURE_STD


@pytest.mark.parametrize("dataset", DATASETS)
def test_sets_are_nested_in_K_and_independent_across_indices(dataset):
    big = training_set(dataset, 500, 3, seed=4)
    small = training_set(dataset, 37, 3, seed=4)
    assert np.array_equal(small, big[:37])
    other = training_set(dataset, 37, 4, seed=4)
    assert not np.allclose(small, other)
    assert big.shape == (500, dataset_dim(dataset))


def test_circle_and_sphere_lie_on_the_unit_sphere():
    assert np.allclose(np.linalg.norm(training_set("circle", 100), axis=1), 1.0)
    s = training_set("sphere", 200, dim=24)
    assert s.shape == (200, 24)
    assert np.allclose(np.linalg.norm(s, axis=1), 1.0)
    # Uniform on the sphere: E[x x^T] = I / D; the mean of x_1^2 over 200 points has standard
    # error ~ sqrt(2 / (D + 2)) / D / sqrt(200) ~ 0.0005 (4 SE bound).
    assert abs(np.mean(s[:, 0] ** 2) - 1 / 24) < 0.0025


def test_mixture_components_are_balanced():
    x = training_set("mixture", 8000, seed=2)
    comp = np.argmin(((x[:, None, :] - MIXTURE_MEANS[None]) ** 2).sum(-1), axis=1)
    counts = np.bincount(comp, minlength=4) / x.shape[0]
    # Each share ~ 1/4 (binomial SE 0.005; nearest-mean assignment misplaces ~0.1 % of points).
    assert np.all(np.abs(counts - 0.25) < 0.02)
    near = x[comp == 0] - MIXTURE_MEANS[0]
    assert abs(near.std() - MIXTURE_STD) < 0.01


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="dataset"):
        training_set("square", 10)
    with pytest.raises(ValueError, match="K"):
        training_set("circle", 0)
    with pytest.raises(ValueError, match="dim"):
        training_set("circle", 10, dim=3)
    with pytest.raises(ValueError, match="dim"):
        training_set("sphere", 10, dim=1)
    with pytest.raises(ValueError, match="K"):
        training_set("circle", 10**7)
