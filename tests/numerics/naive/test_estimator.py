"""Naive estimator (gtv.numerics.naive.estimator): sampler = effective SDE = Fokker-Planck density.

Data {-1, 0, 1}, vp-linear, eps = 1e-2. The sampler's samples are iid (every trajectory has its own
noise), so chunks of samples are independent units; CIs are bootstrap intervals over chunks.

What the naive estimator does here (measured, and asserted below): the boundary noise
``Q = kappa D**2 C`` moves mass from the middle training point to the outer ones (the middle
point's mass falls from 1/3 to ~0.27, 0.19, 0.08 at kappa = 0.1, 0.3, 1) and, for kappa >~ 1,
spreads mass beyond the outer points, so the gap mass grows with kappa; it does not fill the
space *between* the points at this eps (C vanishes away from the thin boundary layers, where the
drift towards the nearest point dominates).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from gtv.numerics.checks import check_kappa
from gtv.numerics.exact import sample_exact_denoiser
from gtv.numerics.naive import naive_density, sample_naive_estimator, sample_naive_sde
from gtv.validation.ensembles import bootstrap_ci

DATA = np.array([[-1.0], [0.0], [1.0]])
EPS = 1e-2
N_SAMPLES = 20_000
N_CHUNKS = 20
N_STEPS = 1000  # sampler steps: halving them moves the statistic by less than the CI (tested)
FP = {"n_steps": 800, "bounds": (-6.0, 6.0), "n_cells": 1200}


def _middle(x: np.ndarray) -> np.ndarray:
    """Per-chunk mass near the middle point (|x| < 0.5)."""
    return (np.abs(x[:, 0]) < 0.5).reshape(N_CHUNKS, -1).mean(axis=1)


def _gap(x: np.ndarray) -> np.ndarray:
    """Per-chunk fraction farther than 0.25 from every training point."""
    far = np.min(np.abs(x[:, 0][:, None] - DATA[:, 0][None, :]), axis=1) > 0.25
    return far.reshape(N_CHUNKS, -1).mean(axis=1)


def _fp_mass(r, select) -> float:
    c = np.asarray(r.centres).ravel()
    m = r.density.ravel() * np.asarray(r.widths).ravel()
    return float(m[select(c)].sum() / m.sum())


def _fp_middle(r) -> float:
    return _fp_mass(r, lambda c: np.abs(c) < 0.5)


def _fp_gap(r) -> float:
    return _fp_mass(r, lambda c: np.min(np.abs(c[:, None] - DATA[:, 0][None, :]), axis=1) > 0.25)


# the default run checks kappa = 0.3 (every code path, ~10 s); the other two are `slow`
@pytest.mark.parametrize(
    "kappa",
    [pytest.param(0.1, marks=pytest.mark.slow), 0.3, pytest.param(1.0, marks=pytest.mark.slow)],
)
def test_three_routes_agree(kappa):
    """Interleaved sampler, Euler-Maruyama and Fokker-Planck give the same middle-point mass.

    99.9 % bootstrap CIs over 20 chunks; 6 comparisons in this test family, so a correct
    implementation fails with probability below ~1 %. The FP density is converged: doubling its
    cells and steps changes the statistic by < 1e-5 (measured: 3e-6 at kappa = 0.1).
    """
    fp = _fp_middle(naive_density(DATA, EPS, kappa, **FP))
    for name, sampler, seed in (
        ("interleaved", sample_naive_estimator, 1),
        ("Euler-Maruyama", sample_naive_sde, 2),
    ):
        x = sampler(DATA, N_SAMPLES, EPS, kappa, n_steps=N_STEPS, seed=seed)
        est, lo, hi = bootstrap_ci(_middle(x), confidence=0.999, seed=seed)
        print(f"kappa={kappa}: {name} {est:.4f} [{lo:.4f}, {hi:.4f}]  Fokker-Planck {fp:.4f}")
        assert lo <= fp <= hi, f"{name} vs Fokker-Planck at kappa={kappa}"
    # The effect is real: the middle point loses mass relative to p(x|eps) (1/3).
    assert fp < 1 / 3 - 0.05


@pytest.mark.slow
def test_step_count_is_converged():
    """Halving the sampler's steps (1000 -> 500) moves the statistic by less than its CI."""
    kappa = 1.0
    fine = _middle(sample_naive_estimator(DATA, N_SAMPLES, EPS, kappa, n_steps=N_STEPS, seed=5))
    coarse = _middle(
        sample_naive_estimator(DATA, N_SAMPLES, EPS, kappa, n_steps=N_STEPS // 2, seed=6)
    )
    _, lo, hi = bootstrap_ci(fine, confidence=0.95)
    print(
        f"1000 steps {fine.mean():.4f}, 500 steps {coarse.mean():.4f}, 95 % CI width {hi - lo:.4f}"
    )
    assert abs(fine.mean() - coarse.mean()) < hi - lo


def test_gap_mass_grows_with_kappa():
    """Fokker-Planck gap mass increases with kappa, and the sampler separates kappa = 1 from 3."""
    gaps = [_fp_gap(naive_density(DATA, EPS, k, **FP)) for k in (0.0, 1.0, 3.0)]
    print("Fokker-Planck gap mass at kappa = 0, 1, 3:", [f"{g:.5f}" for g in gaps])
    assert gaps[0] < gaps[1] < gaps[2]
    g1 = bootstrap_ci(_gap(sample_naive_estimator(DATA, N_SAMPLES, EPS, 1.0, seed=3)))
    g3 = bootstrap_ci(_gap(sample_naive_estimator(DATA, N_SAMPLES, EPS, 3.0, seed=4)))
    print(f"interleaved gap mass: kappa=1 {g1}, kappa=3 {g3}")
    assert g1[2] < g3[1]


def test_kappa_zero_is_the_pf_ode_with_the_exact_denoiser():
    """With kappa = 0 the interleaved scheme is Euler on the PF-ODE with D^ = mu_bar."""
    x_T = np.random.default_rng(0).standard_normal((500, 1))
    a = sample_naive_estimator(DATA, 500, EPS, 0.0, n_steps=50, x_T=x_T)
    b = sample_exact_denoiser(DATA, 500, EPS, n_steps=50, x_T=x_T)
    c = sample_naive_sde(DATA, 500, EPS, 0.0, n_steps=50, x_T=x_T)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)
    np.testing.assert_allclose(c, b, rtol=0, atol=1e-10)


def test_reproducible_from_seed():
    a = sample_naive_estimator(DATA, 300, EPS, 0.5, n_steps=40, seed=9)
    b = sample_naive_estimator(DATA, 300, EPS, 0.5, n_steps=40, seed=9)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, sample_naive_estimator(DATA, 300, EPS, 0.5, n_steps=40, seed=10))


def test_two_dimensional_routes_run_and_agree_roughly():
    """2-D data: EM (general-D path with matrix square roots) vs interleaved, coarse check."""
    data = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    a = sample_naive_estimator(data, 4000, EPS, 0.3, n_steps=300, seed=1)
    b = sample_naive_sde(data, 4000, EPS, 0.3, n_steps=300, seed=2)
    near = lambda x: np.mean(np.linalg.norm(x - data[2], axis=1) < 0.5)  # noqa: E731
    assert abs(near(a) - near(b)) < 4 * np.sqrt(0.25 / 4000) * np.sqrt(2)


def test_bad_input():
    with pytest.raises(ValueError, match="kappa"):
        check_kappa(-0.1)
    with pytest.raises(ValueError, match="kappa"):
        sample_naive_estimator(DATA, 10, EPS, float("nan"))
    with pytest.raises(ValueError, match="eps"):
        sample_naive_sde(DATA, 10, 0.0, 0.1)
    with pytest.raises(ValueError, match="data"):
        naive_density(np.zeros((2, 3)), EPS, 0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="grid"):
            naive_density(DATA, EPS, 0.1, bounds=(-1.0, 1.0), n_cells=100)
