"""One training point: the exact ridge weights of a one-point ensemble
(gtv.numerics.linear.single_point; docs/math/closed_forms.md)."""

import numpy as np
import pytest

from gtv.numerics.features import ProductFeatures
from gtv.numerics.linear import (
    constant_feature_index,
    single_point_ridge_weights,
    train_linear_ensemble,
)


def test_single_point_ridge_weights_identity():
    f = ProductFeatures.uniform("fourier", 1, 5, 3, (0.01, 1.0))
    assert constant_feature_index(f) == 0
    assert constant_feature_index(ProductFeatures.uniform("gaussian", 1, 5, 3, (0.01, 1.0))) is None
    for rho in (0.1, 1e-3):
        ens = train_linear_ensemble(np.array([[0.5]]), f, 20, 100, 0.01, ridge=rho, seed=0)
        np.testing.assert_allclose(single_point_ridge_weights(ens), ens.W, rtol=0, atol=1e-11)
    two = train_linear_ensemble(np.array([[0.5], [-0.5]]), f, 2, 100, 0.01, seed=0)
    with pytest.raises(ValueError, match="one training point"):
        single_point_ridge_weights(two)
