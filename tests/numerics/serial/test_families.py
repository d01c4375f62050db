"""Noise families: the kernels they define (checked on dense matrices) and their bad input."""

from __future__ import annotations

import numpy as np
import pytest

from gtv.numerics.serial import Grid, KernelOperator, NoiseFamily, dense_kernel_matrix

from .conftest import FAMILY_NAMES, GRIDS, level, make_families


@pytest.mark.parametrize("name", FAMILY_NAMES)
@pytest.mark.parametrize("grid_name", list(GRIDS))
def test_every_kernel_is_a_markov_kernel(grid_name, name):
    grid = GRIDS[grid_name]
    fam = make_families(grid)[name]
    K = dense_kernel_matrix(grid, fam, level(fam))
    assert K.shape == (grid.size, grid.size)
    assert np.all(K >= 0)
    np.testing.assert_allclose(K.sum(axis=0), 1.0, atol=1e-14)


def test_gaussian_kernel_on_the_torus_is_the_wrapped_gaussian():
    g = Grid.torus(10, dim=1)
    K = dense_kernel_matrix(g, NoiseFamily.gaussian(), 0.1)
    d = (g.axis - g.axis[3] + 0.5) % 1.0 - 0.5  # displacement from source 3, in [-0.5, 0.5)
    col = np.exp(-(d**2) / (2 * 0.01))
    np.testing.assert_allclose(K[:, 3], col / col.sum(), rtol=1e-14)


def test_authors_grid_kernel_counts_the_duplicated_boundary_twice():
    g = Grid.authors(n=9, dim=1)
    K = dense_kernel_matrix(g, NoiseFamily.gaussian(), 0.1)
    # grid points 0 and 8 are the same torus point: identical rows, and a boundary source sends
    # the same mass to both copies
    np.testing.assert_array_equal(K[0, 1:8], K[8, 1:8])
    assert K[0, 0] == K[8, 0]
    # so the boundary columns are normalised by a larger sum than the interior ones: not circulant
    interior = K[:, 4]
    assert not np.allclose(K[:, 0].max(), interior.max())


def test_authors_fade_stay_term_is_unnormalised_as_in_their_code():
    g = Grid.authors(0.025)
    fam = NoiseFamily.fade_authors()
    (stay, replace) = fam.terms(g, 0.5)
    mass = stay.function(g.displacement_index(), g).sum()
    assert mass == pytest.approx(1.18, abs=0.005)  # the notes' "about 1.18"
    assert not stay.normalise and replace.kind == "replacement"
    # the effective probability of replacement is sigma / ((1 - sigma) * mass + sigma)
    op = KernelOperator.from_family(fam, Grid.torus(40), 0.5)
    col = op.columns([820])[0]
    assert col.min() == pytest.approx(0.5 / (0.5 * mass + 0.5) / 1600, rel=1e-12)


def test_pure_replacement_is_identity_plus_rank_one():
    g = Grid.authors(n=5, dim=2)
    target = np.arange(1.0, g.size + 1).reshape(g.shape)
    target /= target.sum()
    K = dense_kernel_matrix(g, NoiseFamily.fade(target), 0.3)
    np.testing.assert_allclose(K, 0.7 * np.eye(g.size) + 0.3 * target.reshape(-1, 1), atol=1e-15)
    assert np.array_equal(NoiseFamily.fade(target).terminal(g), target)
    np.testing.assert_array_equal(NoiseFamily.gaussian().terminal(g), g.uniform())


def test_bimodal_modes_sit_at_plus_and_minus_shift():
    g = Grid.torus(100, dim=1)
    K = dense_kernel_matrix(g, NoiseFamily.bimodal(0.2), 0.02)
    col = K[:, 50]  # source at 0.0
    peaks = g.axis[np.argsort(col)[-2:]]
    np.testing.assert_allclose(np.sort(peaks), [-0.2, 0.2], atol=1e-12)
    assert col[np.argmin(np.abs(g.axis - 0.2))] == pytest.approx(
        col[np.argmin(np.abs(g.axis + 0.2))], rel=1e-12
    )
    tri = dense_kernel_matrix(g, NoiseFamily.trimodal(0.2), 0.02)[:, 50]
    assert tri[50] == pytest.approx(2 * tri[70], rel=1e-10)  # weights 1/4, 1/4, 1/2


@pytest.mark.parametrize(
    "family",
    [
        NoiseFamily.gaussian(),
        NoiseFamily.laplace(),
        NoiseFamily.box("disc"),
        NoiseFamily.box("square"),
    ],
)
def test_sigma_is_the_per_coordinate_standard_deviation(family):
    g = Grid.torus(200, dim=2)
    op = KernelOperator.from_family(family, g, 0.05)
    col = op.columns([g.size // 2 + g.n // 2])[0].reshape(g.shape)  # source at the centre (0, 0)
    var_x = np.sum(col * g.mesh[0] ** 2)
    assert var_x == pytest.approx(0.05**2, rel=0.03)


def test_user_array_kernel_equals_the_same_kernel_as_callable():
    g = Grid.authors(n=9, dim=2)
    d = g.displacements()
    arr = np.exp(-np.sum(d * d, axis=-1) / (2 * 0.15**2))
    a = dense_kernel_matrix(g, NoiseFamily.user(arr, centered=False), 1.0)
    b = dense_kernel_matrix(g, NoiseFamily.user(np.fft.fftshift(arr), centered=True), 1.0)
    c = dense_kernel_matrix(g, NoiseFamily.gaussian(), 0.15)
    np.testing.assert_allclose(a, c, atol=1e-15)
    np.testing.assert_allclose(b, c, atol=1e-15)


def test_config_round_trip():
    g = Grid.torus(6)
    for fam in make_families(g).values():
        if fam.kind == "user" and callable(fam.params["kernel"]):
            with pytest.raises(ValueError, match="kernel: a callable"):
                fam.to_config()
            continue
        back = NoiseFamily.from_config(fam.to_config())
        np.testing.assert_array_equal(
            dense_kernel_matrix(g, back, level(fam)), dense_kernel_matrix(g, fam, level(fam))
        )


def test_fade_probabilities_may_be_zero_or_one_but_widths_must_be_positive():
    NoiseFamily.fade().check_sigmas([0.0, 0.5, 1.0])
    with pytest.raises(ValueError, match="sigmas of a fade family .* must lie in \\[0, 1\\]"):
        NoiseFamily.fade().check_sigmas([0.5, 1.2])
    with pytest.raises(ValueError, match="\\[0, 1\\]"):
        NoiseFamily.fade_authors().check_sigmas([-0.1])
    for fam in (NoiseFamily.gaussian(), NoiseFamily.bimodal(), NoiseFamily.box()):
        with pytest.raises(ValueError, match="sigmas must be > 0"):
            fam.check_sigmas([0.1, 0.0])
    with pytest.raises(ValueError, match="sigmas must be > 0"):
        NoiseFamily.laplace().check_sigmas([-1.0])
    with pytest.raises(ValueError, match="T >= 1"):
        NoiseFamily.gaussian().check_sigmas([])
    with pytest.raises(ValueError, match="finite"):
        NoiseFamily.gaussian().check_sigmas([np.nan])


def test_negative_or_misshaped_kernels_raise():
    g = Grid.torus(4)
    bad = np.ones((4, 4))
    bad[1, 2] = -1e-3
    with pytest.raises(ValueError, match="kernel must be non-negative"):
        NoiseFamily.user(bad)
    with pytest.raises(ValueError, match="kernel must contain only finite"):
        NoiseFamily.user(np.full((4, 4), np.nan))
    with pytest.raises(ValueError, match="kernel must have a positive sum"):
        NoiseFamily.user(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="kernel must have the grid's torus shape"):
        KernelOperator.from_family(NoiseFamily.user(np.ones((5, 5))), g, 1.0)
    negative = NoiseFamily.user(lambda d, s: d[..., 0])
    with pytest.raises(ValueError, match="kernel\\(d, sigma\\) must be non-negative"):
        KernelOperator.from_family(negative, g, 1.0)
    with pytest.raises(ValueError, match="kernel\\(d, sigma\\) must be non-negative"):
        dense_kernel_matrix(g, negative, 1.0)


def test_bad_family_parameters_raise():
    with pytest.raises(ValueError, match="shape must be one of"):
        NoiseFamily.box("circle")
    with pytest.raises(ValueError, match="stay_sd must be None or a finite number > 0"):
        NoiseFamily.fade(stay_sd=0.0)
    with pytest.raises(ValueError, match="weights must hold 2 finite numbers > 0"):
        NoiseFamily.mixture([0.1, -0.1], [1.0, -1.0])
    with pytest.raises(ValueError, match="shift \\(a mode centre\\) must be .* 2-vector"):
        NoiseFamily.bimodal((0.1, 0.1, 0.1)).terms(Grid.torus(4), 0.1)
    with pytest.raises(ValueError, match="target must have the grid's shape"):
        NoiseFamily.fade(np.full(5, 0.2)).terms(Grid.torus(4), 0.1)
    with pytest.raises(ValueError, match="target must sum to 1"):
        NoiseFamily.fade(np.ones((4, 4))).terms(Grid.torus(4), 0.1)
