"""The fast kernel operator (FFT + diagonal + rank one) against the dense reference."""

from __future__ import annotations

import numpy as np
import pytest

from gtv.numerics.serial import (
    Grid,
    KernelOperator,
    NoiseFamily,
    dense_kernel_matrix,
    dense_posterior_matrix,
)

from .conftest import FAMILY_NAMES, GRIDS, level, make_families, random_density

CASES = [(g, f) for g in GRIDS for f in FAMILY_NAMES]


@pytest.mark.parametrize("grid_name, name", CASES)
def test_fast_operator_equals_the_dense_kernel(grid_name, name):
    grid = GRIDS[grid_name]
    fam = make_families(grid)[name]
    sigma = level(fam)
    op = KernelOperator.from_family(fam, grid, sigma)
    K = dense_kernel_matrix(grid, fam, sigma)
    np.testing.assert_allclose(op.dense(), K, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(op.columns(np.arange(grid.size)).T, K, rtol=1e-13, atol=1e-15)
    rng = np.random.default_rng(1)
    p = random_density(grid, 2)
    v = rng.normal(size=grid.shape)
    np.testing.assert_allclose(op.apply(p).ravel(), K @ p.ravel(), rtol=0, atol=1e-14)
    np.testing.assert_allclose(op.apply_transpose(v).ravel(), K.T @ v.ravel(), rtol=0, atol=1e-14)


@pytest.mark.parametrize("zeros", [False, True])
@pytest.mark.parametrize("grid_name, name", CASES)
def test_fast_posterior_equals_the_dense_posterior(grid_name, name, zeros):
    grid = GRIDS[grid_name]
    fam = make_families(grid)[name]
    sigma = level(fam)
    op = KernelOperator.from_family(fam, grid, sigma)
    K = dense_kernel_matrix(grid, fam, sigma)
    prior = random_density(grid, 3, zeros=zeros)
    D = dense_posterior_matrix(K, prior)
    np.testing.assert_allclose(D.sum(axis=0), 1.0, atol=1e-14)  # a Markov kernel
    p = random_density(grid, 4)
    v = np.random.default_rng(5).normal(size=grid.shape)
    np.testing.assert_allclose(op.posterior(p, prior).ravel(), D @ p.ravel(), rtol=0, atol=1e-14)
    np.testing.assert_allclose(
        op.posterior_transpose(v, prior).ravel(), D.T @ v.ravel(), rtol=0, atol=1e-13
    )
    np.testing.assert_allclose(op.pushed(prior).ravel(), K @ prior.ravel(), rtol=0, atol=1e-14)


def test_pushed_prior_is_accurate_entry_by_entry():
    """Tiny values of K q (which the posterior divides by) keep their relative accuracy."""
    g = Grid.torus(32, dim=2)
    q = np.exp(-np.sum([c**2 for c in g.mesh], axis=0) / (2 * 0.03**2))
    q /= q.sum()
    op = KernelOperator.from_family(NoiseFamily.gaussian(), g, 0.03)
    K = op.dense()
    exact = K @ q.ravel()
    fast = op.pushed(q).ravel()
    assert exact.min() < 1e-40  # far tails: below the FFT's absolute resolution
    np.testing.assert_allclose(fast, exact, rtol=1e-12, atol=0)
    plain = np.maximum(op.apply(q).ravel(), 0.0)  # the FFT alone loses them
    assert np.max(np.abs(plain - exact) / exact) > 1e-3


def test_posterior_of_a_point_mass_far_in_the_prior_tail():
    """A large ratio p / (K q) is done exactly from the kernel's rows, not through the FFT."""
    g = Grid.torus(64, dim=1)
    q = np.exp(-(g.axis**2) / (2 * 0.04**2))
    q /= q.sum()
    op = KernelOperator.from_family(NoiseFamily.gaussian(), g, 0.03)
    p = np.zeros(g.shape)
    p[-5] = 1.0  # an observation at 0.42, where K q ~ 1e-24 of its peak
    D = dense_posterior_matrix(op.dense(), q)
    np.testing.assert_allclose(op.posterior(p, q), D[:, -5], rtol=0, atol=1e-15)
    assert op.posterior(p, q).sum() == pytest.approx(1.0, abs=1e-14)


def test_posterior_falls_back_to_the_prior_where_it_is_undefined():
    g = Grid.torus(10, dim=1)
    op = KernelOperator.from_family(NoiseFamily.box("square"), g, 0.1)  # 3-cell box
    q = np.zeros(g.shape)
    q[:3] = 1 / 3
    p = np.zeros(g.shape)
    p[6] = 1.0  # K q = 0 at 6: no clean state could have produced this observation
    assert op.pushed(q)[6] == 0.0
    np.testing.assert_array_equal(op.posterior(p, q), q)
    np.testing.assert_allclose(op.posterior_transpose(np.arange(10.0), q)[6], 1.0, atol=1e-15)
    np.testing.assert_allclose(dense_posterior_matrix(op.dense(), q)[:, 6], q)


def test_rows_and_columns_check_their_indices():
    op = KernelOperator.from_family(NoiseFamily.gaussian(), Grid.torus(4), 0.1)
    assert op.rows([]).shape == (0, 16)
    with pytest.raises(ValueError, match="idx must lie in \\[0, 15\\]"):
        op.rows([16])
    with pytest.raises(ValueError, match="idx must be integer"):
        op.columns([0.5])
    with pytest.raises(ValueError, match="p must have the grid's shape"):
        op.apply(np.ones(16) / 16)


def test_posterior_is_linear_in_signed_vectors():
    grid = GRIDS["authors-2d"]
    fam = NoiseFamily.bimodal(0.1)
    op = KernelOperator.from_family(fam, grid, 0.15)
    prior = random_density(grid, 8, zeros=True)
    D = dense_posterior_matrix(dense_kernel_matrix(grid, fam, 0.15), prior)
    v = np.random.default_rng(9).normal(size=grid.shape)
    np.testing.assert_allclose(op.posterior(v, prior).ravel(), D @ v.ravel(), atol=1e-13)
    with pytest.raises(ValueError, match="prior must be finite and non-negative"):
        op.posterior(v, -prior)
