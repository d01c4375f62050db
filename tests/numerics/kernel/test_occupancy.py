"""The small-occupancy field of lazy ensembles (gtv.numerics.kernel.occupancy).

Checks:

* every node heavy: a member is a model trained exactly on its design -- the pole sum with the
  Woodbury solve equals ``phi^T g_tau(Sigma^ + rho) b^`` from one eigendecomposition and the
  closed-form filter (an independent route) to the poles' error;
* no node heavy and no noise: the member is the cavity mean exactly;
* no node heavy: the members' variance is the cavity variance (the field differs from the cavity
  covariance only in the scatter ``v``, a few percent here; Monte Carlo margin stated);
* the heavy split follows the self-influence threshold; same seed, same members; the bound
  theory's ``occupancy_field`` is these members; bad input.
"""

import copy

import numpy as np
import pytest

from gtv.numerics.kernel import (
    FiniteKernelTheoryAt,
    KernelOccupancySplit,
    kernel_occupancy_coefficients,
    lazy_filter,
)
from gtv.numerics.kernel.occupancy import _members
from gtv.numerics.streams import model_rngs

DATA = np.array([[-1.0], [0.0], [1.0]])
XQ = np.array([-1.2, -1.0, -0.5, 0.0, 0.5, 1.0])
TQ = (0.02, 0.1, 0.4)


def _query_features(th):
    return np.concatenate([th.features(XQ, t) for t in TQ])


def test_all_heavy_member_is_the_exactly_trained_model(small_eps_theory, small_eps_moments):
    split = KernelOccupancySplit(small_eps_moments, q_star=1e-12)
    assert split.light.size == 0 and split.heavy.size == small_eps_theory.n_nodes
    phi = small_eps_theory.psi_nodes / np.sqrt(small_eps_theory.s)
    P = 64
    for rng in model_rngs(3, "field", 3):
        counts, sums, normals = split.draw(rng)
        assert counts.sum() == P and normals.shape == (2, 0)
        got = _members(split, [(counts, sums, normals)])[0]
        H = split.heavy
        S = (phi[H].T * (counts * small_eps_theory.lam[H] / P)) @ phi[H]
        b = phi[H].T @ (sums * small_eps_theory.lam[H] / P)
        ev, V = np.linalg.eigh(S)
        g = lazy_filter(
            np.clip(ev, 0, None) + small_eps_theory.ridge,
            small_eps_moments.tau,
            1.0,
            "gradient-flow",
        )
        want = V @ (g * (V.T @ b)) / np.sqrt(small_eps_theory.s)
        # the 16 Talbot poles reproduce the filter to ~1e-7 relative (finite_p.filter_poles)
        assert np.max(np.abs(got - want)) < 1e-6 * np.max(np.abs(want))


def test_no_heavy_and_no_noise_is_the_cavity_mean(small_eps_theory, small_eps_moments):
    split = KernelOccupancySplit(small_eps_moments, q_star=1e12)
    assert split.heavy.size == 0 and split.heavy_probability == 0.0
    draw = (np.zeros(0, int), np.zeros(0), np.zeros((2, split.light.size)))
    got = _members(split, [draw])[0]
    assert np.allclose(
        got, small_eps_moments.mean, rtol=1e-9, atol=1e-12 * np.max(np.abs(small_eps_moments.mean))
    )


def test_no_heavy_field_has_the_cavity_variance(small_eps_theory, small_eps_moments):
    """4000 members: the relative standard error of a variance is about 2.2 %; the median over
    18 points of |ratio - 1| must be below 6 % (MC noise alone exceeds that with probability
    < 1e-3; measured 1-3 % here at P = 256 on the benchmark's nodes). A field without the
    count term (B_count) or without the label noise misses by more than 20 %."""
    split = KernelOccupancySplit(small_eps_moments, q_star=1e12)
    c = kernel_occupancy_coefficients(split, 4000, seed=5)
    psi = _query_features(small_eps_theory)
    var_field = (c @ psi.T).var(axis=0, ddof=1)
    var_cav = np.einsum("ik,kl,il->i", psi, small_eps_moments.covariance(), psi)
    assert np.median(np.abs(var_field / var_cav - 1)) < 0.06
    # negative control: the same members without their count fluctuation
    split.B_count = [0 * b for b in split.B_count]
    c0 = kernel_occupancy_coefficients(split, 4000, seed=5)
    assert np.median(np.abs((c0 @ psi.T).var(axis=0, ddof=1) / var_cav - 1)) > 0.2


def test_heavy_split_follows_the_self_influence(small_eps_moments):
    split = KernelOccupancySplit(small_eps_moments)
    h = split.influence
    assert np.all(h[split.heavy] > 0.5) and np.all(h[split.light] <= 0.5)
    # one ridge: h = q / (1 + q)
    assert np.all((h >= -1e-9) & (h < 1))


def test_members_reproducible_and_bound_field(small_eps_theory, small_eps_moments):
    split = KernelOccupancySplit(small_eps_moments)
    a = kernel_occupancy_coefficients(split, 20, seed=7)
    b = kernel_occupancy_coefficients(split, 20, seed=7)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, kernel_occupancy_coefficients(split, 20, seed=8))
    bound = FiniteKernelTheoryAt(small_eps_theory, small_eps_moments.tau, 64)
    field = bound.occupancy_field(20, seed=7)
    assert field.ensemble.config["kind"] == "occupancy-field"
    d = field.denoise(XQ, np.full(XQ.size, 0.1))[:, :, 0]
    assert np.allclose(d, a @ small_eps_theory.features(XQ, 0.1).T, rtol=1e-9, atol=1e-12)


def test_bad_input(small_eps_theory, small_eps_moments):
    with pytest.raises(TypeError, match="moments"):
        KernelOccupancySplit("x")
    for bad in (0.0, -1.0, np.inf, np.nan):
        with pytest.raises(ValueError, match="q_star"):
            KernelOccupancySplit(small_eps_moments, q_star=bad)
    with pytest.raises(TypeError, match="split"):
        kernel_occupancy_coefficients(small_eps_moments, 3)
    with pytest.raises(ValueError, match="n_models"):
        kernel_occupancy_coefficients(KernelOccupancySplit(small_eps_moments), 0)
    split = KernelOccupancySplit(small_eps_moments)
    split.moments = copy.copy(small_eps_moments)
    split.moments.P = 64.5
    with pytest.raises(ValueError, match="integer"):
        kernel_occupancy_coefficients(split, 3)
