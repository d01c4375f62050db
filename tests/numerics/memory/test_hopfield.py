"""Modern-Hopfield (CCCP) fixed-point iteration (gtv.numerics.memory.hopfield).

Checks: numba = numpy reference; results independent of the thread count; the energy never
increases along the iteration (checked with am_energy); two memories merge exactly at
beta d**2 = 2 (scipy root for s*); the ring radius for many memories on the circle equals R* of
the closed form; non-convergence is reported.
"""

import math
import warnings

import numba
import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.special import i0e, i1e

from gtv.numerics.memory.collapse import time_at_snr
from gtv.numerics.memory.energy import am_energy
from gtv.numerics.memory.hopfield import hopfield_fixed_points
from gtv.numerics.schedules import get_schedule

SCHED = get_schedule("vp-linear")


def _time_for_beta(beta):
    """t with alpha**2/(2 sigma2) = beta (the test's own inversion of the schedule)."""
    return brentq(
        lambda tv: float(SCHED.alpha(tv)) ** 2 / (2 * float(SCHED.sigma2(tv))) - beta, 1e-6, 1.0
    )


@pytest.mark.parametrize("t", [0.05, 0.3])
def test_numba_matches_numpy(t):
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(30, 3))
    starts = rng.normal(size=(50, 3)) * 1.5
    a = hopfield_fixed_points(mu, starts, t)
    b = hopfield_fixed_points(mu, starts, t, backend="numpy")
    assert a.n_unconverged == 0 and b.n_unconverged == 0
    np.testing.assert_allclose(a.points, b.points, rtol=0, atol=1e-9)
    assert np.all(np.abs(a.iterations - b.iterations) <= 1)
    assert a.beta == b.beta


def test_identical_for_any_thread_count():
    rng = np.random.default_rng(1)
    mu = rng.normal(size=(40, 4))
    starts = rng.normal(size=(64, 4))
    n0 = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = hopfield_fixed_points(mu, starts, 0.1)
    finally:
        numba.set_num_threads(n0)
    many = hopfield_fixed_points(mu, starts, 0.1)
    assert np.array_equal(one.points, many.points)
    assert np.array_equal(one.iterations, many.iterations)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_energy_never_increases(backend):
    rng = np.random.default_rng(2)
    mu = rng.normal(size=(25, 3))
    starts = 2.0 * rng.normal(size=(30, 3))
    t = 0.15
    a = float(SCHED.alpha(t))
    energies = [am_energy(mu, a * starts, t)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # truncated runs are unconverged
        for k in range(1, 26):
            r = hopfield_fixed_points(mu, starts, t, max_iter=k, tol=1e-300, backend=backend)
            energies.append(am_energy(mu, a * r.points, t))
    e = np.array(energies)
    inc = np.diff(e, axis=0)
    assert np.all(inc <= 1e-12 * (1 + np.abs(e[:-1]))), inc.max()
    assert np.any(inc < -1e-3)  # the iteration does move


@pytest.mark.parametrize("factor", [0.95, 1.05])
def test_two_memories_merge_at_beta_d2_equal_2(factor):
    """beta d**2 = 2 * factor. Below (0.95): every start ends at the midpoint. Above (1.05): the
    starts with y_1 != 0 end at +-s*, s* = (d/2) tanh(beta s* d) (scipy root)."""
    t = 0.2
    beta = float(SCHED.alpha(t)) ** 2 / (2 * float(SCHED.sigma2(t)))
    d = math.sqrt(2 * factor / beta)
    mu = np.array([[-d / 2, 0.0], [d / 2, 0.0]])
    rng = np.random.default_rng(3)
    starts = rng.uniform(-2 * d, 2 * d, size=(200, 2))
    for backend in ("numba", "numpy"):
        r = hopfield_fixed_points(mu, starts, t, tol=1e-12, max_iter=100_000, backend=backend)
        assert r.n_unconverged == 0
        assert abs(r.beta * d * d - 2 * factor) < 1e-12
        np.testing.assert_allclose(r.points[:, 1], 0.0, atol=1e-15)
        if factor < 1:
            # contraction 0.95 per step near the midpoint: |y| <= tol / (1 - 0.95)
            np.testing.assert_allclose(r.points[:, 0], 0.0, atol=1e-9)
        else:
            sstar = brentq(
                lambda s: s - 0.5 * d * math.tanh(beta * s * d), 1e-6 * d, d / 2, xtol=1e-15
            )
            assert sstar > 0.1 * d
            np.testing.assert_allclose(np.abs(r.points[:, 0]), sstar, rtol=0, atol=1e-9)
            np.testing.assert_array_equal(np.sign(r.points[:, 0]), np.sign(starts[:, 0]))


def test_ring_radius_matches_closed_form_for_many_memories_on_the_circle():
    """K = 1000 equally spaced memories on the unit circle, beta = 20: every start converges to
    the ring R* with I1/I0(2 beta R*) = R* (independent scipy root, 0.98726), within 1e-8; the
    discreteness correction is of order I_K(2 beta R)/I_0, i.e. nil for K = 1000."""
    beta = 20.0
    t = _time_for_beta(beta)
    phi = 2 * np.pi * np.arange(1000) / 1000
    mu = np.stack([np.cos(phi), np.sin(phi)], axis=1)
    rng = np.random.default_rng(4)
    starts = rng.normal(size=(100, 2)) * 0.8
    starts = starts[np.linalg.norm(starts, axis=1) > 0.05]
    rstar = brentq(lambda r: i1e(2 * beta * r) / i0e(2 * beta * r) - r, 0.5, 1.0, xtol=1e-15)
    assert abs(rstar - 0.9873) < 5e-5
    r = hopfield_fixed_points(mu, starts, t, tol=1e-12)
    assert r.n_unconverged == 0
    np.testing.assert_allclose(np.linalg.norm(r.points, axis=1), rstar, rtol=0, atol=1e-8)


def test_unconverged_starts_are_reported():
    mu = np.array([[-1.0, 0.0], [1.0, 0.0]])
    t = time_at_snr(1.0)  # alpha**2/sigma2 = 4/d**2 for d = 2: critical slowing down
    starts = np.array([[0.7, 0.0], [3.0, 1.0]])
    with pytest.warns(RuntimeWarning, match="2 of 2 starts did not converge"):
        r = hopfield_fixed_points(mu, starts, t, max_iter=50)
    assert r.n_unconverged == 2 and not r.converged.any()
    assert np.all(r.iterations == 50) and np.all(r.step > 1e-10)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"t": 0.0}, "t must lie in"),
        ({"t": [0.1, 0.2]}, "t must be a scalar"),
        ({"starts": np.ones((2, 3))}, "starts must have D = 2"),
        ({"starts": np.array([[np.nan, 0.0]])}, "starts must contain only finite"),
        ({"memories": np.zeros((0, 2))}, "memories must have shape"),
        ({"tol": 0.0}, "tol must be"),
        ({"max_iter": 0}, "max_iter must be"),
        ({"backend": "cuda"}, "backend must be one of"),
    ],
)
def test_bad_input_raises(kwargs, match):
    args = {"memories": np.eye(2), "starts": np.ones((3, 2)), "t": 0.5}
    args.update(kwargs)
    rest = {k: v for k, v in args.items() if k not in ("memories", "starts", "t")}
    with pytest.raises(ValueError, match=match):
        hopfield_fixed_points(args["memories"], args["starts"], args["t"], **rest)
