"""Metrics in bits: divergences, complexity, lag, stationarity score, channel information."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import entropy

from gtv.numerics.serial import (
    AUTHORS_EPS,
    DenseChain,
    DiffusionChain,
    Grid,
    KernelOperator,
    NoiseFamily,
    channel_entropy_bits,
    complexity_bits,
    consecutive_kl_bits,
    dense_kernel_matrix,
    entropy_bits,
    jsd_bits,
    kl_bits,
    lag_kl_bits,
    mutual_information_bits,
    schedule,
    stationarity_score,
    step_information_bits,
)

from .conftest import GRIDS, level, make_families, random_density


def test_kl_and_entropy_against_scipy():
    rng = np.random.default_rng(0)
    p, q = rng.random(50), rng.random(50)
    p, q = p / p.sum(), q / q.sum()
    assert kl_bits(p, q) == pytest.approx(entropy(p, q, base=2), rel=1e-13)
    assert entropy_bits(p) == pytest.approx(entropy(p, base=2), rel=1e-13)
    assert kl_bits(p, p) == 0.0
    p[:10] = 0.0
    p /= p.sum()
    assert kl_bits(p, q) == pytest.approx(entropy(p, q, base=2), rel=1e-13)  # 0 log 0 = 0
    assert kl_bits(q, p) == np.inf


def test_authors_eps_convention():
    p = np.array([0.5, 0.5, 0.0])
    q = np.array([0.25, 0.25, 0.5])
    e = AUTHORS_EPS
    assert e == 2.0**-52
    want = np.sum(p * np.log2((p + e) / (q + e)))
    assert kl_bits(p, q, eps=e) == want
    assert kl_bits(q, p, eps=e) == pytest.approx(0.5 * np.log2((0.5 + e) / e) - 0.5, rel=1e-12)
    m = (p + q) / 2
    assert jsd_bits(p, q, eps=e) == pytest.approx(
        0.5 * (kl_bits(p, m, eps=e) + kl_bits(q, m, eps=e)), rel=1e-15
    )


def test_jsd_is_symmetric_and_bounded():
    p = np.array([1.0, 0.0])
    q = np.array([0.0, 1.0])
    assert jsd_bits(p, q) == pytest.approx(1.0)  # disjoint supports: exactly one bit
    rng = np.random.default_rng(1)
    a, b = rng.random(20), rng.random(20)
    assert jsd_bits(a, b) == pytest.approx(jsd_bits(b, a), rel=1e-14)  # normalised inside
    assert 0 < jsd_bits(a, b) < 1


def test_complexity_skips_the_data_step_by_default():
    grid = GRIDS["torus-2d"]
    chain = DiffusionChain(
        random_density(grid, 2, zeros=True),
        grid,
        NoiseFamily.gaussian(),
        schedule([0.2, 0.05, 0.05, 0.05]),
    )
    steps = consecutive_kl_bits(chain.q)
    assert steps.shape == (4,)
    assert steps[0] == kl_bits(chain.q[0], chain.q[1])
    assert complexity_bits(chain.q) == steps[1:].max()
    assert complexity_bits(chain.q, include_data_step=True) == steps.max()
    assert steps[0] > steps[1:].max()  # the data step is the largest here: the option matters
    assert np.isnan(complexity_bits(chain.q[:2]))  # T = 1 has no pair without the data step


def test_lag_kl_indexing():
    grid = GRIDS["authors-2d"]
    data = 0.5 * random_density(grid, 3) + 0.5 * grid.uniform()
    chain = DiffusionChain(data, grid, NoiseFamily.gaussian(), schedule("linear", 3, 0.1, 0.3))
    p = chain.generate()
    lag = lag_kl_bits(p, chain.q)
    assert lag.shape == (4,)
    assert lag[0] == kl_bits(p[0], data) and lag[3] == kl_bits(grid.uniform(), chain.q[3])
    exact = chain.generate(chain.q[-1], inject_noise=False)
    np.testing.assert_allclose(lag_kl_bits(exact, chain.q), 0.0, atol=1e-12)


@pytest.mark.parametrize("inject", [True, False])
@pytest.mark.parametrize("grid_name", list(GRIDS))
def test_stationarity_score_fast_equals_dense(grid_name, inject):
    grid = GRIDS[grid_name]
    data = 0.9 * random_density(grid, 4, zeros=True) + 0.1 * grid.uniform()
    fam = make_families(grid)["bimodal-axis"]
    s = schedule("linear", 5, 0.05, 0.15)
    fast, dense = DiffusionChain(data, grid, fam, s), DenseChain(data, grid, fam, s)
    pf, pd = fast.generate(inject_noise=inject), dense.generate(inject_noise=inject)
    a, b = stationarity_score(fast, pf, inject), stationarity_score(dense, pd, inject)
    assert a > 1e-5
    assert a == pytest.approx(b, rel=1e-10)


def test_stationarity_score_follows_the_authors_recursion():
    grid = GRIDS["torus-1d"]
    data = random_density(grid, 5)
    chain = DenseChain(
        data, grid, NoiseFamily.gaussian(), schedule("linear", 4, 0.05, 0.1), store_sampling=True
    )
    p = chain.generate()
    v = p[3] / (p[2] + AUTHORS_EPS)
    for t in (3, 2, 1):
        S = chain.sampling_matrices[(t, True)]
        v = np.sum(S * v[:, None], axis=0)  # the authors' sum(S .* repmat(vec, 1, M))
    want = np.linalg.norm(v - 1) / np.sqrt(v.size)
    assert stationarity_score(chain, p) == pytest.approx(want, rel=1e-12)
    one = DiffusionChain(data, grid, NoiseFamily.gaussian(), [0.1])
    assert np.isnan(stationarity_score(one, one.generate()))
    with pytest.raises(ValueError, match="p must hold T \\+ 1 = 5 densities"):
        stationarity_score(chain, p[:3])


def test_channel_entropy_and_information_limits():
    grid = Grid.torus(6)
    p = random_density(grid, 6)
    ident = KernelOperator.from_family(NoiseFamily.fade(), grid, 0.0)  # no replacement: identity
    assert channel_entropy_bits(ident, p) == 0.0
    assert mutual_information_bits(ident, p) == pytest.approx(entropy_bits(p), rel=1e-13)
    full = KernelOperator.from_family(NoiseFamily.fade(), grid, 1.0)  # a fresh uniform draw
    assert channel_entropy_bits(full, p) == pytest.approx(np.log2(36), rel=1e-13)
    assert mutual_information_bits(full, p) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    "name", ["gaussian", "bimodal-axis", "fade-target", "fade-authors", "box-disc", "user-array"]
)
@pytest.mark.parametrize("grid_name", list(GRIDS))
def test_channel_information_fast_equals_dense(grid_name, name):
    grid = GRIDS[grid_name]
    fam = make_families(grid)[name]
    op = KernelOperator.from_family(fam, grid, level(fam))
    K = dense_kernel_matrix(grid, fam, level(fam))
    p = random_density(grid, 7, zeros=True)
    want_h = -sum(
        p.ravel()[j] * np.sum(K[K[:, j] > 0, j] * np.log2(K[K[:, j] > 0, j]))
        for j in range(grid.size)
    )
    assert channel_entropy_bits(op, p) == pytest.approx(want_h, rel=1e-12)
    assert channel_entropy_bits(K, p) == pytest.approx(want_h, rel=1e-12)
    joint = K * p.ravel()[None, :]
    out = K @ p.ravel()
    nz = joint > 0
    want_i = np.sum(joint[nz] * np.log2(joint[nz] / (out[:, None] * p.ravel()[None, :])[nz]))
    assert mutual_information_bits(op, p) == pytest.approx(want_i, rel=1e-10, abs=1e-13)
    assert mutual_information_bits(K, p) == pytest.approx(want_i, rel=1e-10, abs=1e-13)


def test_step_information_for_fast_and_dense_chains():
    grid = GRIDS["authors-1d"]
    data = random_density(grid, 8)
    s = schedule("linear", 3, 0.05, 0.2)
    fast, dense = (
        DiffusionChain(data, grid, NoiseFamily.laplace(), s),
        DenseChain(data, grid, NoiseFamily.laplace(), s),
    )
    p = fast.generate()
    H, info = step_information_bits(fast, p)
    Hd, infod = step_information_bits(dense, p)
    np.testing.assert_allclose(H, Hd, rtol=1e-12)
    np.testing.assert_allclose(info, infod, rtol=1e-10)
    assert H[0] == pytest.approx(channel_entropy_bits(fast.kernel(1), p[1]))
    assert np.all(np.diff(H) > 0) and np.all(np.diff(info) < 0)  # more noise: less information


def test_bad_metric_input_raises():
    with pytest.raises(ValueError, match="p and q must have the same shape"):
        kl_bits([0.5, 0.5], [1.0])
    with pytest.raises(ValueError, match="p must be finite and non-negative"):
        kl_bits([-0.5, 1.5], [0.5, 0.5])
    with pytest.raises(ValueError, match="eps must be a finite number >= 0"):
        kl_bits([0.5, 0.5], [0.5, 0.5], eps=-1.0)
    with pytest.raises(ValueError, match="q must be a stack of densities"):
        complexity_bits(np.ones(3))
