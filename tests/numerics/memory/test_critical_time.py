"""Critical times and the attractor-based classification (gtv.numerics.memory.critical_time).

Critical times, exact score, two memories +-d/2 u: the reflection through the midpoint plane maps
the exact PF-ODE flow to itself, so a re-noised x_t = alpha_t y0 + sigma_t xi returns to y0 iff
it starts on y0's side, i.e. iff u.xi > -alpha_t d / (2 sigma_t) (up to the time discretization).
Hence (1) with the same draws for every d the recovery sets are nested in d, and the contiguous
critical time can only shrink as the memories approach; (2) every trial at a time with
alpha_t d / (2 sigma_t) >= 4 recovers unless u.xi < -4, probability Phi(-4) = 3.2e-5 per
trial, so T_c >= t4 (the largest such grid time) fails with probability <= 100 * 3.2e-5 = 3e-3
for the <= 100 trials involved (fixed seed). A lone memory is recovered from every t.

Classification: exact score (memorized at small t, spurious midpoint after the merger), a
projection onto a circle (flat: generalized), a drift that never converges (generalized,
reported unconverged).
"""

import numpy as np
import pytest

from gtv.numerics.memory.attractors import find_attractors
from gtv.numerics.memory.critical_time import (
    classify_by_attractors,
    critical_times,
    log_density_barriers,
)
from gtv.numerics.memory.denoisers import ExactDenoiser, FunctionDenoiser
from gtv.numerics.memory.labels import GENERALIZED, MEMORIZED, SPURIOUS
from gtv.numerics.streams import stream_rng

GRID = np.linspace(0.01, 0.7, 24)


# Closed forms for vp-linear, written out here (independent of the generated schedule code).
def _alpha(t):
    return np.exp(-(0.1 * t + 9.95 * t * t))


def _sigma(t):
    return np.sqrt(1 - _alpha(t) ** 2)


def _time_for_beta(beta):
    B = 0.5 * np.log1p(1.0 / (2.0 * beta))
    return (-0.1 + np.sqrt(0.01 + 4 * 9.95 * B)) / (2 * 9.95)


def _pair(d):
    return np.array([[-d / 2, 0.0], [d / 2, 0.0]])


def test_critical_time_shrinks_as_the_other_memory_approaches_and_has_a_lower_bound():
    tcs = []
    for d in (4.0, 2.0, 1.0, 0.5):
        den = ExactDenoiser(_pair(d), "vp-linear", 1e-3)
        ct = critical_times(den, _pair(d)[1:], GRID, delta=0.05 * d, seed=0, rule="contiguous")
        assert ct.found[0]
        # The contiguous rule, recomputed from the table.
        bad = np.flatnonzero(ct.recovery[0] < 0.9)
        assert ct.t_c[0] == (GRID[bad[0] - 1] if bad.size else GRID[-1])
        margin = _alpha(GRID) * d / (2 * _sigma(GRID))
        if np.any(margin >= 4):
            assert ct.t_c[0] >= GRID[margin >= 4].max()
        tcs.append(ct.t_c[0])
    assert all(a >= b for a, b in zip(tcs[:-1], tcs[1:], strict=True)), tcs
    assert tcs[0] > tcs[-1]


def test_last_rule_is_the_largest_qualifying_time():
    den = ExactDenoiser(_pair(1.0), "vp-linear", 1e-3)
    ys = _pair(1.0)
    last = critical_times(den, ys, GRID, delta=0.05, seed=1, n_steps=10)
    cont = critical_times(den, ys, GRID, delta=0.05, seed=1, n_steps=10, rule="contiguous")
    np.testing.assert_array_equal(last.recovery, cont.recovery)
    for i in range(2):
        assert last.t_c[i] == GRID[np.flatnonzero(last.recovery[i] >= 0.9).max()]
        assert last.t_c[i] >= cont.t_c[i]


def test_recovery_table_radius_and_a_lone_memory():
    mem = np.array([[0.5, -0.2]])
    den = ExactDenoiser(mem, "vp-linear", 1e-3)
    grid = np.array([1e-3, 0.2, 0.6, 1.0])
    ct = critical_times(den, mem, grid, delta=1e-6, seed=4, n_trials=5, n_steps=5)
    np.testing.assert_array_equal(ct.recovery, 1.0)
    assert ct.t_c[0] == 1.0 and ct.found[0]
    xi = stream_rng(4, "memory-renoise").standard_normal((4, 1, 5, 2))
    r = _sigma(1.0) / _alpha(1.0) * np.linalg.norm(xi[3, 0], axis=1).mean()
    np.testing.assert_allclose(ct.radius[0], r, rtol=1e-10)


def test_no_recovery_is_reported_not_nan():
    """Without the final denoise the end point alpha_eps^-1 x_eps misses a radius-1e-12 ball."""
    den = ExactDenoiser(_pair(2.0), "vp-linear", 1e-3)
    ct = critical_times(den, _pair(2.0), [0.5, 1.0], delta=1e-12, seed=0, final_denoise=False)
    assert not ct.found.any() and np.all(ct.t_c == 0.0) and np.all(ct.radius == 0.0)


def test_classify_exact_score_memorized_then_spurious():
    d = 2.0
    mem = _pair(d)
    den = ExactDenoiser(mem, "vp-linear", 1e-3)
    rng = np.random.default_rng(0)
    samples = mem[rng.integers(0, 2, 20)] + 0.1 * rng.standard_normal((20, 2))
    small = classify_by_attractors(den, samples, _time_for_beta(20.0 / d**2))
    np.testing.assert_array_equal(small.labels, MEMORIZED)
    assert small.counts == {"memorized": 20, "spurious": 0, "generalized": 0}
    merged = classify_by_attractors(den, samples, _time_for_beta(1.0 / d**2))
    np.testing.assert_array_equal(merged.labels, SPURIOUS)
    np.testing.assert_allclose(merged.fractions, [0.0, 1.0, 0.0])


def test_classify_flat_continuum_and_unconverged_descent_are_generalized():
    angles = np.linspace(0, 2 * np.pi, 5)[:-1]
    mem = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    circle = FunctionDenoiser(
        lambda x, t: x / np.linalg.norm(x, axis=1, keepdims=True), mem, "vp-linear", 1e-3
    )
    rng = np.random.default_rng(1)
    samples = rng.normal(size=(15, 2)) + 0.1
    res = classify_by_attractors(circle, samples, 0.3)
    np.testing.assert_array_equal(res.labels, GENERALIZED)
    assert res.flat.all() and res.n_unconverged == 0
    # I - J_G = y y^T on the circle: eigenvalues 0 (tangent) and 1 (radial).
    np.testing.assert_allclose(res.attractors.eigenvalues.real[:, 0], 0.0, atol=1e-8)
    np.testing.assert_allclose(res.attractors.eigenvalues.real[:, 1], 1.0, atol=1e-8)

    drift = FunctionDenoiser(lambda x, t: x / _alpha(t) + 0.01, mem, "vp-linear", 1e-3)
    res = classify_by_attractors(drift, samples, 0.3, max_iter=20)
    np.testing.assert_array_equal(res.labels, GENERALIZED)
    assert res.n_unconverged == 15 and not res.flat.any()
    assert res.counts["generalized"] == 15


def test_bad_input():
    den = ExactDenoiser(_pair(1.0), "vp-linear", 1e-3)
    y = _pair(1.0)
    for kw, name in [
        ({"delta": 0.0}, "delta"), ({"p": 1.5}, "p"), ({"p": 0.0}, "p"),
        ({"n_trials": 0}, "n_trials"), ({"n_steps": 0}, "n_steps"),
        ({"method": "rk4"}, "method"), ({"rule": "first"}, "rule"),
    ]:  # fmt: skip
        args = {"delta": 0.1, "seed": 0, **kw}
        with pytest.raises(ValueError, match=name):
            critical_times(den, y, GRID, **args)
    for grid in ([], [0.5, 0.2], [1e-4, 0.5], [0.5, 1.5], [0.1, np.nan]):
        with pytest.raises(ValueError, match="t_grid"):
            critical_times(den, y, grid, delta=0.1, seed=0)
    with pytest.raises(ValueError, match="samples"):
        critical_times(den, np.zeros((2, 3)), GRID, delta=0.1, seed=0)
    with pytest.raises(ValueError, match="flat_tol"):
        classify_by_attractors(den, y, 0.3, flat_tol=0.0)
    with pytest.raises(ValueError, match="memory_tol"):
        classify_by_attractors(den, y, 0.3, memory_tol=-1.0)
    with pytest.raises(ValueError, match="^t must"):
        classify_by_attractors(den, y, 0.0)


@pytest.mark.parametrize("beta_d2", [2.5, 4.0, 10.0])
def test_barrier_is_the_log_density_drop_between_two_memories(beta_d2):
    """Independent check: the noisy density of two memories at +-d/2 is, in data coordinates,
    p(y) ~ sum_mu exp(-beta |y - xi_mu|**2); the barrier is log p(y*) - log p(0) at the
    attractor y* (by symmetry the straight path is the minimal one)."""
    d = 1.0
    mem = _pair(d)
    beta = beta_d2 / d**2
    t = _time_for_beta(beta)
    den = ExactDenoiser(mem, "vp-linear", 1e-3)
    att = find_attractors(den, t, mem + np.array([[0.05, 0.01], [-0.05, -0.01]]))
    assert att.n_stable == 2
    barrier = log_density_barriers(att, den)

    def logp(y):
        return np.log(np.exp(-beta * ((y - mem) ** 2).sum(axis=1)).sum())

    true = logp(att.points[0]) - logp(np.zeros(2))
    np.testing.assert_allclose(barrier, true, rtol=2e-3)
    labels = classify_by_attractors(den, mem, t, flat_tol=1.0).labels
    # Below one nat the two memories are one state at this resolution (generalized).
    expected = GENERALIZED if true < 1.0 else MEMORIZED
    np.testing.assert_array_equal(labels, expected)
