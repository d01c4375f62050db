"""Learned denoisers in the chain: the Gaussian step, exact moments, DSM pairs, training."""

import numpy as np
import pytest

from gtv.numerics.serial import (
    DenseChain,
    DiffusionChain,
    Grid,
    KernelOperator,
    NoiseFamily,
    dense_posterior_matrix,
)
from gtv.validation.serial.data import swiss_roll
from gtv.validation.serial.learned import (
    GaussianStepChain,
    draw_pairs,
    exact_posterior_moments,
    kernel_variance,
    learned_means,
    stationary_density,
    torus_inputs,
    wrap,
)

GRID = Grid.torus(12)
DATA = swiss_roll(GRID)


def _chain(family=None, sigmas=(0.06, 0.1, 0.15)):
    return DiffusionChain(DATA, GRID, family or NoiseFamily.gaussian(), np.array(sigmas))


def test_exact_moments_match_the_dense_posterior():
    chain = _chain(NoiseFamily.bimodal(0.05))
    dense = DenseChain(DATA, GRID, NoiseFamily.bimodal(0.05), chain.sigmas)
    t = 2
    mean, var = exact_posterior_moments(chain.kernel(t), GRID, chain.q[t - 1], chunk=50)
    D = dense_posterior_matrix(dense.kernel_matrix(t), dense.q[t - 1])  # D[s, d]
    pts = GRID.points
    for d in (0, 17, 77, 143):
        disp = wrap(pts - pts[d])
        m = D[:, d] @ disp
        assert np.allclose(mean[d], m, atol=1e-12)
        assert np.allclose(var[d], D[:, d] @ disp**2 - m**2, atol=1e-12)


def test_kernel_variance_of_a_gaussian_is_sigma_squared_when_resolved():
    grid = Grid.torus(64)
    for s in (0.03, 0.06):
        K = KernelOperator.from_family(NoiseFamily.gaussian(), grid, s)
        assert np.allclose(kernel_variance(K, grid), s * s, rtol=1e-6)


def test_gaussian_step_moves_mass_by_the_mean_and_is_a_markov_kernel():
    chain = _chain()
    rng = np.random.default_rng(0)
    # shift every point by exactly two cells along x, nothing along y
    means = np.zeros((3, GRID.size, 2))
    means[..., 0] = 2 * GRID.spacing
    g = GaussianStepChain(chain, means, np.full((3, GRID.size, 2), 1e-8))
    gx, gy = g.factors(1)
    assert np.allclose(gx.sum(axis=0), 1) and np.allclose(gy.sum(axis=0), 1)
    p = rng.random(GRID.shape)
    p /= p.sum()
    out = g.denoise(1, p)
    assert np.allclose(out, np.roll(p, 2, axis=0), atol=1e-12)
    # with the kernel variance the step is still a Markov kernel: mass is kept, nothing negative
    g2 = GaussianStepChain(chain, means)
    q = g2.step(3, p)
    assert abs(q.sum() - 1) < 1e-12 and q.min() >= 0
    with pytest.raises(ValueError, match="means"):
        GaussianStepChain(chain, means[:2])
    with pytest.raises(ValueError, match="variances"):
        GaussianStepChain(chain, means, np.ones((3, 4, 2)))


def test_draw_pairs_follow_prior_times_kernel():
    chain = _chain(sigmas=(0.1,))
    rng = np.random.default_rng(1)
    K = chain.kernel(1)
    prior = chain.q[0]
    src, dst = draw_pairs(rng, K, prior, 200_000)
    assert np.allclose(np.bincount(src, minlength=GRID.size) / src.size, prior.ravel(), atol=3e-3)
    # the destination marginal is K prior = q_1
    assert np.allclose(
        np.bincount(dst, minlength=GRID.size) / dst.size, chain.q[1].ravel(), atol=3e-3
    )
    # displacement statistics match the kernel's
    d = wrap(GRID.points[dst] - GRID.points[src])
    assert np.allclose(d.var(axis=0), kernel_variance(K, GRID), rtol=0.03)


def test_learned_means_approach_the_exact_posterior_with_many_pairs():
    """Both learners estimate the posterior mean far better than 0 (its RMS is the scale); the
    targets are noisy (per-pair sd ~ sigma, several times the mean), so this needs many pairs."""
    chain = _chain(sigmas=(0.08, 0.12))
    kw = dict(n_space=5, ridge=1e-4, kernel_ridge=1e-3, activation="relu", kernel_pairs=1500)
    big = learned_means(chain, n_models=1, pairs_per_step=8000, seed=0, **kw)
    exact = np.stack(
        [exact_posterior_moments(chain.kernel(t), GRID, chain.q[t - 1])[0] for t in (1, 2)]
    )
    scale = np.sqrt(np.mean(exact**2))
    for name in ("linear", "kernel"):
        assert big[name].shape == (1, 2, GRID.size, 4)
        err = np.sqrt(np.mean((big[name][..., :2] - exact[None]) ** 2))
        assert err < 0.7 * scale, (name, err / scale)
    # the linear fit improves with the number of pairs (its variance shrinks)
    small = learned_means(
        chain, n_models=1, pairs_per_step=300, seed=0, denoisers=("linear",), **kw
    )
    err_small = np.sqrt(np.mean((small["linear"][..., :2] - exact[None]) ** 2))
    err_big = np.sqrt(np.mean((big["linear"][..., :2] - exact[None]) ** 2))
    assert err_big < 0.5 * err_small


def test_learned_means_streams():
    chain = _chain(sigmas=(0.1,))
    kw = dict(
        pairs_per_step=100, kernel_pairs=50, n_space=5, ridge=1e-3, kernel_ridge=1e-4,
        activation="relu",
    )  # fmt: skip
    a = learned_means(chain, n_models=3, seed=5, **kw)
    b = learned_means(chain, n_models=2, seed=5, **kw)
    c = learned_means(chain, n_models=2, seed=6, **kw)
    # the first models of a larger ensemble are the same models; models differ from each other
    assert np.array_equal(a["linear"][:2], b["linear"]) and np.array_equal(
        a["kernel"][:2], b["kernel"]
    )
    assert not np.allclose(a["linear"][0], a["linear"][1])
    assert not np.allclose(b["linear"], c["linear"])


def test_stationary_density_of_the_exact_unit_is_its_prior():
    chain = _chain(sigmas=(0.15,))
    rng = np.random.default_rng(2)
    start = rng.random(GRID.shape)
    start /= start.sum()
    p, k = stationary_density(lambda v: chain.step(1, v), start, max_iter=2000, tol=1e-12)
    assert k < 2000 and np.allclose(p, DATA, atol=1e-9)
    # started at the prior it stays there (the invariance theorem)
    same, k = stationary_density(lambda v: chain.step(1, v), DATA, max_iter=5, tol=1e-14)
    assert k == 1 and np.allclose(same, DATA, atol=1e-14)


def test_torus_inputs_are_periodic():
    x = np.array([[0.1, -0.3], [1.1, 0.7]])
    z = torus_inputs(x)
    assert z.shape == (2, 5) and np.allclose(z[0], z[1]) and np.all(z[:, -1] == 1)
