"""Quadrature rules shared by the theories (gtv.numerics.quadrature).

Time rules are exact on simple integrals with the ``1/t`` behaviour of the DSM weight; the
Gauss-Hermite rule reproduces Gaussian moments; the default Hermite order grows with the
resolution of the features.
"""

import numpy as np

from gtv.numerics.features import ProductFeatures
from gtv.numerics.quadrature import (
    default_n_hermite,
    gauss_legendre_panels,
    geometric_panels,
    hermite_quadrature,
    log_time_quadrature,
    time_quadrature,
)

EPS, T = 0.01, 1.0


FEATS = ProductFeatures.uniform("gaussian", 1, 6, 5, (EPS, T))  # F = 30


# -- quadrature rules ---------------------------------------------------------------------------
def test_time_quadrature_exact_on_simple_integrals():
    nodes, w = time_quadrature(EPS, T, 12)
    assert np.all((nodes > EPS) & (nodes < T))
    np.testing.assert_allclose(w.sum(), 1.0, rtol=1e-14)
    np.testing.assert_allclose(w @ (1 / nodes), np.log(T / EPS) / (T - EPS), rtol=1e-13)
    np.testing.assert_allclose(w @ (1 / nodes**2), (1 / EPS - 1 / T) / (T - EPS), rtol=1e-12)
    np.testing.assert_allclose(w @ nodes**5, (T**6 - EPS**6) / 6 / (T - EPS), rtol=1e-14)
    # Panels: geometric from eps, none wider than max_width.
    n2, _ = time_quadrature(EPS, T, 1, max_width=0.05)
    assert n2[0] < 1.2 * EPS and np.diff(n2).max() <= 0.05 + 1e-12


def test_hermite_quadrature_moments():
    x, w = hermite_quadrature(60)
    x = x[:, 0]
    np.testing.assert_allclose([w.sum(), w @ x**2, w @ x**4], [1, 1, 3], rtol=1e-13)
    np.testing.assert_allclose(w @ np.cos(2 * x), np.exp(-2.0), rtol=1e-12)
    x2, w2 = hermite_quadrature(30, dim=2)
    assert x2.shape[1] == 2 and np.all(w2 > 1e-25)
    np.testing.assert_allclose(w2 @ (x2[:, 0] ** 2 * x2[:, 1] ** 2), 1.0, rtol=1e-12)
    # Large orders (asymptotic nodes) prune the negligible tails.
    x3, w3 = hermite_quadrature(3000)
    assert x3.shape[0] < 500
    np.testing.assert_allclose(w3 @ x3[:, 0] ** 2, 1.0, rtol=1e-12)


def test_default_n_hermite_grows_with_feature_resolution():
    n6 = default_n_hermite(FEATS, 1.0)
    n16 = default_n_hermite(ProductFeatures.uniform("gaussian", 1, 16, 4, (EPS, T)), 1.0)
    assert 200 < n6 < n16 <= 4000
    assert default_n_hermite(FEATS, 0.1) == 220  # only the posterior bound (h <= 0.15) is left


def test_gauss_legendre_panels_integrate_log_singular_behaviour():
    nodes, w = gauss_legendre_panels(1e-3, 2.0)
    assert abs(w @ (1 / nodes) - np.log(2.0 / 1e-3)) < 1e-13


def test_geometric_and_log_time_rules():
    nodes, w = geometric_panels(1e-3, 2.0, 16, 12)
    assert abs(w @ (1 / nodes) - np.log(2.0 / 1e-3)) < 1e-13
    t, wt = log_time_quadrature(0.01, 1.0, 24)
    np.testing.assert_allclose(wt.sum(), 1.0, rtol=1e-14)
    np.testing.assert_allclose(wt @ (1 / t), np.log(100.0) / 0.99, rtol=1e-13)
