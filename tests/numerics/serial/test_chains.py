"""Chains: fast against dense, the invariance theorem for every family, and bad input."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

from gtv.numerics.serial import (
    DenseChain,
    DenseSerialReproduction,
    DiffusionChain,
    Grid,
    NoiseFamily,
    SerialReproduction,
    forward_marginals,
    generate,
    homogeneous_chain,
    schedule,
)

from .conftest import FAMILY_NAMES, GRIDS, make_families, random_density

CASES = [(g, f) for g in GRIDS for f in FAMILY_NAMES]


def sigmas_for(family: NoiseFamily, T: int = 4) -> np.ndarray:
    return schedule("linear", T, 0.2, 0.8) if family.is_fade else schedule("linear", T, 0.06, 0.18)


@pytest.mark.parametrize("grid_name, name", CASES)
def test_fast_chain_equals_the_dense_algorithm(grid_name, name):
    grid = GRIDS[grid_name]
    fam = make_families(grid)[name]
    data = random_density(grid, 11, zeros=True)
    s = sigmas_for(fam)
    fast, dense = DiffusionChain(data, grid, fam, s), DenseChain(data, grid, fam, s)
    np.testing.assert_allclose(fast.q, dense.q, rtol=0, atol=1e-14)
    for inject in (True, False):
        np.testing.assert_allclose(
            fast.generate(inject_noise=inject), dense.generate(inject_noise=inject), atol=1e-14
        )
    start = random_density(grid, 12)
    np.testing.assert_allclose(fast.generate(start), dense.generate(start), atol=1e-14)
    v = np.random.default_rng(13).normal(size=grid.shape)
    for inject in (True, False):
        np.testing.assert_allclose(
            fast.step_transpose(2, v, inject), dense.step_transpose(2, v, inject), atol=1e-13
        )


@pytest.mark.parametrize("grid_name, name", CASES)
def test_each_unit_leaves_its_prior_invariant(grid_name, name):
    """S_t q_{t-1} = q_{t-1} for every kernel: the posterior step undoes its own noise."""
    grid = GRIDS[grid_name]
    fam = make_families(grid)[name]
    chain = DiffusionChain(random_density(grid, 21, zeros=True), grid, fam, sigmas_for(fam))
    for t in range(1, chain.T + 1):
        np.testing.assert_allclose(chain.step(t, chain.q[t - 1]), chain.q[t - 1], atol=1e-16)
        np.testing.assert_allclose(chain.denoise(t, chain.q[t]), chain.q[t - 1], atol=1e-16)
    # ... and only its own prior: the same unit moves another density
    other = random_density(grid, 22)
    assert np.abs(chain.step(1, other) - other).max() > 1e-4


@pytest.mark.parametrize("grid_name, name", CASES)
def test_denoise_only_from_the_exact_terminal_returns_the_data(grid_name, name):
    grid = GRIDS[grid_name]
    fam = make_families(grid)[name]
    data = random_density(grid, 31, zeros=True)
    chain = DiffusionChain(data, grid, fam, sigmas_for(fam, T=6))
    p = chain.generate(chain.q[-1], inject_noise=False)
    np.testing.assert_allclose(p, chain.q, rtol=0, atol=1e-14)
    assert np.abs(p[0] - data).max() < 1e-14
    # with noise injection the same start does not give the data back exactly
    assert np.abs(chain.generate(chain.q[-1])[0] - data).max() > 1e-6


@pytest.mark.parametrize("grid_name, name", CASES)
def test_homogeneous_chain_converges_to_its_prior_from_any_start(grid_name, name):
    grid = GRIDS[grid_name]
    fam = make_families(grid)[name]
    prior = 0.5 * random_density(grid, 41) + 0.5 * grid.uniform()
    sigma = 0.5 if fam.is_fade else 0.2
    chain = SerialReproduction(prior, grid, fam, sigma)
    corner = np.zeros(grid.shape)
    corner.flat[-1] = 1.0
    for start in (corner, random_density(grid, 42, zeros=True)):
        run = chain.run(start, 150)
        tv = 0.5 * np.abs(run - prior).reshape(151, -1).sum(axis=1)
        assert tv[0] > 0.1
        assert tv[-1] < 1e-6 * tv[0], f"TV after 150 steps: {tv[-1]:.2e}"
        assert np.all(np.diff(tv) <= 1e-12)  # a Markov kernel with stationary prior contracts TV
        np.testing.assert_allclose(run.reshape(151, -1).sum(axis=1), 1.0, atol=1e-13)


@pytest.mark.parametrize("grid_name", list(GRIDS))
def test_homogeneous_chain_equals_the_dense_one(grid_name):
    grid = GRIDS[grid_name]
    fam = make_families(grid)["bimodal-axis"]
    prior = random_density(grid, 51, zeros=True)
    start = np.zeros(grid.shape)
    start.flat[0] = 1.0
    fast = homogeneous_chain(prior, grid, fam, 0.1, start, 20)
    dense = DenseSerialReproduction(prior, grid, fam, 0.1).run(start, 20)
    np.testing.assert_allclose(fast, dense, rtol=0, atol=1e-14)
    v = np.random.default_rng(52).normal(size=grid.shape)
    np.testing.assert_allclose(
        SerialReproduction(prior, grid, fam, 0.1).step_transpose(v),
        DenseSerialReproduction(prior, grid, fam, 0.1).step_transpose(v),
        atol=1e-13,
    )


def test_functional_wrappers_and_generation_indexing():
    grid = GRIDS["authors-2d"]
    fam = NoiseFamily.gaussian()
    data = random_density(grid, 61)
    s = schedule("linear", 5, 0.05, 0.2)
    chain = DiffusionChain(data, grid, fam, s)
    q = forward_marginals(data, grid, fam, s)
    assert q.shape == (6, *grid.shape) and np.array_equal(q[0], data)
    np.testing.assert_array_equal(q, chain.q)
    p = generate(data, grid, fam, s)
    np.testing.assert_array_equal(p[5], grid.uniform())  # p[T] is the start
    np.testing.assert_allclose(p[4], chain.step(5, p[5]), atol=0)  # p[t-1] = S_t p[t]
    np.testing.assert_array_equal(chain.terminal(), grid.uniform())


def test_authors_scale_run_is_fast_and_small():
    """T = 100 on the authors' 41 x 41 grid: no M x M matrix (dense: 2.3 GB per 100 steps)."""
    grid = Grid.authors(0.025)
    data = 0.9 * random_density(grid, 71, zeros=True) + 0.1 * grid.uniform()
    tracemalloc.start()
    try:
        chain = DiffusionChain(
            data, grid, NoiseFamily.bimodal(), schedule("linear", 100, 0.02, 0.07)
        )
        chain.generate()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50e6, f"peak {peak / 1e6:.1f} MB"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"sigmas": []}, "sigmas must hold T >= 1"),
        ({"sigmas": [0.1, 0.0]}, "sigmas must be > 0"),
        ({"sigmas": [0.1, -0.2]}, "sigmas must be > 0"),
        ({"sigmas": [0.1, np.inf]}, "sigmas must contain only finite"),
        ({"family": NoiseFamily.fade(), "sigmas": [0.5, 1.5]}, "must lie in \\[0, 1\\]"),
        ({"family": NoiseFamily.fade(), "sigmas": [-0.5]}, "must lie in \\[0, 1\\]"),
        ({"data": np.full((4, 4), 1 / 16)}, "data must have the grid's shape \\(5, 5\\)"),
        ({"data": np.full(25, 1 / 25)}, "data must have the grid's shape"),
        ({"data": np.full((5, 5), 1 / 20)}, "data must sum to 1"),
        ({"data": -np.full((5, 5), 1 / 25)}, "data must be non-negative"),
        ({"data": np.full((5, 5), np.nan)}, "data must contain only finite"),
        ({"grid": "torus"}, "grid must be a gtv.numerics.serial.Grid"),
        ({"family": "gaussian"}, "family must be a NoiseFamily"),
    ],
)
def test_bad_chain_arguments_raise(kwargs, match):
    args = {
        "data": np.full((5, 5), 1 / 25),
        "grid": Grid.torus(5),
        "family": NoiseFamily.gaussian(),
        "sigmas": [0.1, 0.2],
    }
    args.update(kwargs)
    for make in (DiffusionChain, DenseChain):
        with pytest.raises(ValueError, match=match):
            make(args["data"], args["grid"], args["family"], args["sigmas"])


def test_bad_starts_steps_and_priors_raise():
    grid = Grid.torus(5)
    chain = DiffusionChain(grid.uniform(), grid, NoiseFamily.gaussian(), [0.1, 0.2])
    with pytest.raises(ValueError, match="start must sum to 1"):
        chain.generate(np.full((5, 5), 0.1))
    with pytest.raises(ValueError, match="start must have the grid's shape"):
        generate(grid.uniform(), grid, NoiseFamily.gaussian(), [0.1], start=np.ones(3) / 3)
    for t in (0, 3, 1.0, True):
        with pytest.raises(
            ValueError, match="t must be an integer step in \\[1, T\\] = \\[1, 2\\]"
        ):
            chain.kernel(t)
    with pytest.raises(ValueError, match="sigma must be > 0"):
        SerialReproduction(grid.uniform(), grid, NoiseFamily.gaussian(), 0.0)
    with pytest.raises(ValueError, match="prior must be non-negative"):
        SerialReproduction(-grid.uniform(), grid, NoiseFamily.gaussian(), 0.1)
    with pytest.raises(ValueError, match="n_steps must be an integer >= 1"):
        homogeneous_chain(grid.uniform(), grid, NoiseFamily.gaussian(), 0.1, grid.uniform(), 0)
    with pytest.raises(ValueError, match="start must be non-negative"):
        homogeneous_chain(grid.uniform(), grid, NoiseFamily.gaussian(), 0.1, -grid.uniform(), 3)


def test_serial_numerics_import_neither_sympy_nor_validation():
    code = (
        "import sys\n"
        "import gtv.numerics.serial\n"
        "bad = [m for m in sys.modules if m == 'sympy' or m.startswith('gtv.validation')]\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
