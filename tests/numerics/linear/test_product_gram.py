"""The Kronecker route to the normal equations of product features (numerics/linear/product_gram).

Checks, against the plain-numpy full-feature-matrix reference: the lower triangle of ``G`` and
``rhs`` (Cauchy-Schwarz scale, 1e-12) for square, rectangular and one-by-one axes, with the strict
upper triangle untouched; the dual kernel ``K`` for the rows scaled by ``sqrt(w)``.
"""

import numpy as np
import pytest

from gtv.numerics.features import ProductFeatures
from gtv.numerics.linear.product_gram import (
    pair_count,
    product_dual_kernel,
    product_factors,
    product_normal_equations,
    product_normal_equations_reference,
)

EPS, T = 0.01, 1.0


def _batch(seed, P, fs, ft, kind="gaussian", D=2):
    feats = ProductFeatures.uniform(kind, 1, fs, ft, (EPS, T), (-1.5, 1.5))
    rng = np.random.default_rng(seed)
    t = rng.uniform(EPS, T, P)
    x = rng.uniform(-2.0, 2.0, P)
    z = np.ascontiguousarray(np.stack([x, t], axis=1))
    x0 = rng.choice([-1.0, 0.0, 1.0], (P, D))
    w = 1.0 / rng.uniform(EPS, T, P)  # heavy weights, as lam ~ 1/t
    return feats, z, x0, w


@pytest.mark.parametrize("fs,ft,kind", [(16, 16, "gaussian"), (5, 9, "gaussian"), (7, 3, "fourier"),
                                        (1, 1, "gaussian")])  # fmt: skip
def test_normal_equations_equal_the_full_feature_route(fs, ft, kind):
    feats, z, x0, w = _batch(3, 300, fs, ft, kind)
    kinds, sizes, los, his = feats.arrays()
    P, F = z.shape[0], fs * ft
    a, b = np.empty((P, fs)), np.empty((P, ft))
    u, v = np.empty((P, pair_count(fs))), np.empty((P, pair_count(ft)))
    m = np.empty((pair_count(fs), pair_count(ft)))
    g = np.full((F, F), 7.0)  # the strict upper triangle must stay as it was
    rhs = np.empty((x0.shape[1], F))
    product_normal_equations(kinds, sizes, los, his, z, x0, w, a, b, u, v, m, g, rhs)
    # the axis values are the features' own (an independent evaluation; the fast recurrence is
    # accurate relative to each row's largest value, not in the far tails)
    phi = feats.evaluate_reference(z[:, :1], z[:, 1])
    err = np.abs((a[:, :, None] * b[:, None, :]).reshape(P, F) - phi)
    assert np.all(err <= 1e-12 * np.abs(phi).max(axis=1, keepdims=True))
    G_ref, rhs_ref = product_normal_equations_reference(a, b, x0, w)
    low = np.tril_indices(F)
    d = np.sqrt(np.diag(G_ref))
    scale = (d[:, None] * d[None, :])[low]
    assert np.all(np.abs(g[low] - G_ref[low]) <= 1e-12 * scale)
    assert np.all(g[np.triu_indices(F, 1)] == 7.0)
    xs = np.sqrt(np.mean(w[:, None] * x0**2, axis=0))
    assert np.all(np.abs(rhs - rhs_ref) <= 1e-12 * xs[:, None] * d[None, :])


def test_dual_kernel_equals_scaled_feature_products():
    feats, z, _, w = _batch(4, 120, 16, 16)
    kinds, sizes, los, his = feats.arrays()
    P = z.shape[0]
    a, b = np.empty((P, 16)), np.empty((P, 16))
    product_factors(kinds, sizes, los, his, z, a, b)
    sw = np.sqrt(w)
    ka, kb, k = np.empty((P, P)), np.empty((P, P)), np.full((P, P), 7.0)
    product_dual_kernel(a, b, sw, ka, kb, k)
    phi = feats.evaluate_reference(z[:, :1], z[:, 1]) * sw[:, None]
    K_ref = phi @ phi.T
    low = np.tril_indices(P)
    d = np.sqrt(np.diag(K_ref))
    assert np.all(np.abs(k[low] - K_ref[low]) <= 1e-12 * (d[:, None] * d[None, :])[low])
    assert np.all(k[np.triu_indices(P, 1)] == 7.0)
