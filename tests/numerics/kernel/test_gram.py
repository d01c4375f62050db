"""Infinite-width kernel matrices (gtv.numerics.kernel.gram; docs/math/kernel.md).

Checks: Gram matrices (numba = numpy reference, thread-count invariance, accuracy for nearly
parallel inputs against mpmath, PSD); the closed-form NNGP / NTK against the Monte Carlo average
of J(z) J(z')^T over random width-1e5 networks (to 1 %); bad input.
"""

import math

import mpmath as mp
import numba
import numpy as np
import pytest
from scipy.special import erf

from gtv.numerics.kernel import (
    ACTIVATIONS,
    KERNELS,
    ntk_gram,
    ntk_inputs,
)
from gtv.numerics.schedules import get_schedule

SCHED = get_schedule("vp-linear")
EPS = 0.05


def _inputs(rng, n, D=1):
    x = rng.normal(size=(n, D))
    t = rng.uniform(EPS, 1.0, n)
    return ntk_inputs(x, t, EPS, SCHED)


# -- Gram matrices ------------------------------------------------------------------------------
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_gram_numba_matches_numpy_reference_and_thread_count(act):
    rng = np.random.default_rng(0)
    z1, z2 = _inputs(rng, 40, 2), _inputs(rng, 30, 2)
    for k in KERNELS:
        got = ntk_gram(z1, z2, act, k)
        ref = ntk_gram(z1, z2, act, k, backend="numpy")
        np.testing.assert_allclose(got, ref, rtol=1e-13, atol=1e-15)
    G = ntk_gram(z1, None, act)
    assert np.array_equal(G, G.T)
    assert np.linalg.eigvalsh(G).min() > -1e-12 * np.abs(G).max()
    nt = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        g1 = ntk_gram(z1, z2, act)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        g2 = ntk_gram(z1, z2, act)
    finally:
        numba.set_num_threads(nt)
    assert np.array_equal(g1, g2)


def _mp_kernel(act, z1, z2, kernel):
    """The closed forms at 50 digits, theta from mpmath (reference for accuracy checks)."""
    mp.mp.dps = 50
    z1 = [mp.mpf(float(v)) for v in z1]
    z2 = [mp.mpf(float(v)) for v in z2]
    d = len(z1)
    av = mp.fsum(v * v for v in z1) / d
    bv = mp.fsum(v * v for v in z2) / d
    cv = mp.fsum(p * q for p, q in zip(z1, z2, strict=True)) / d
    if act == "relu":
        n1, n2 = mp.sqrt(av * d), mp.sqrt(bv * d)
        dm = mp.sqrt(mp.fsum((p / n1 - q / n2) ** 2 for p, q in zip(z1, z2, strict=True)))
        dp = mp.sqrt(mp.fsum((p / n1 + q / n2) ** 2 for p, q in zip(z1, z2, strict=True)))
        th = 2 * mp.atan2(dm, dp)
        k1 = (mp.sqrt(av * bv) * mp.sin(th) + (mp.pi - th) * cv) / (2 * mp.pi)
        k0 = (mp.pi - th) / (2 * mp.pi)
    else:
        det = (1 + 2 * av) * (1 + 2 * bv)
        k1 = 2 / mp.pi * mp.asin(2 * cv / mp.sqrt(det))
        k0 = 4 / mp.pi / mp.sqrt(det - 4 * cv * cv)
    return float({"nngp": k1, "derivative": k0, "ntk": k1 + cv * k0}[kernel])


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_nearly_parallel_inputs_are_accurate(act):
    """Pairs at angles 1e-12 .. 1e-3 and identical pairs: 1e-13 relative to mpmath. (The
    derivative kernel (pi - theta)/(2 pi) is where arccos of a rounded cosine would be off by
    ~1e-8.)"""
    z = np.array([0.3, -0.4, 1.0])
    perp = np.array([0.4, 0.3, 0.0])
    pairs = [(z, z), (z, 2.5 * z)] + [(z, z + h * perp) for h in (1e-12, 1e-9, 1e-6, 1e-3)]
    for z1, z2 in pairs:
        for k in KERNELS:
            got = ntk_gram(z1[None], z2[None], act, k)[0, 0]
            ref = _mp_kernel(act, z1, z2, k)
            assert abs(got - ref) <= 1e-13 * abs(ref), (act, k, got, ref)


def _empirical_ntk(z1, z2, act, width, rng, D=1):
    """J(z) J(z')^T of one random two-layer network (NTK parameterization, D outputs).

    With u_i = w_i.z/sqrt(d), D^ = (1/sqrt(n)) sum_i a_i sigma(u_i): the a-gradients give
    (1/n) sum sigma(u_i) sigma(u_i') I_D, the w-gradients (1/n) sum (z.z'/d) sigma'(u_i)
    sigma'(u_i') a_i a_i^T. Returns (nngp part (scalar), full D x D NTK).
    """
    d = z1.size
    W = rng.standard_normal((width, d))
    A = rng.standard_normal((width, D))
    u1, u2 = W @ z1 / math.sqrt(d), W @ z2 / math.sqrt(d)
    if act == "relu":
        s1, s2 = np.maximum(u1, 0), np.maximum(u2, 0)
        p1, p2 = (u1 > 0).astype(float), (u2 > 0).astype(float)
    else:
        s1, s2 = erf(u1), erf(u2)
        p1 = 2 / math.sqrt(math.pi) * np.exp(-(u1**2))
        p2 = 2 / math.sqrt(math.pi) * np.exp(-(u2**2))
    nngp = float(np.mean(s1 * s2))
    c = float(z1 @ z2) / d
    J = nngp * np.eye(D) + c * (A * (p1 * p2)[:, None]).T @ A / width
    return nngp, J


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_closed_form_ntk_equals_monte_carlo_of_wide_networks(act):
    """Average of J(z) J(z')^T over 16 random networks of width 1e5 equals Theta (x) I_2 to 1 %
    (and the NNGP part to 1 %) for five pairs, including a nearly parallel one, an identical one
    and an obtuse one (z.z' < 0, where Theta = K + c Kdot partly cancels). The MC standard error
    (0.04-0.27 % of Theta with this seed) is asserted below 0.3 %, so 1 % is >= 3.3 standard
    errors: a two-sided false-failure rate below 1e-3 per pair for a correct closed form, ~1 %
    for the whole test. The off-diagonal output block must vanish to 4 standard errors."""
    rng = np.random.default_rng(12345)
    zs = [
        (np.array([0.5, -1.0, 1.0]), np.array([-0.7, 0.3, 1.0])),
        (np.array([1.5, 0.9, 1.0]), np.array([1.4, 0.95, 1.0])),
        (np.array([0.2, 0.1, 1.0]), np.array([0.2, 0.1 + 1e-9, 1.0])),
        (np.array([-1.0, -0.5, 1.0]), np.array([1.0, 0.8, 1.0])),
        (np.array([0.0, 1.0, 1.0]), np.array([0.0, 1.0, 1.0])),
    ]
    for z1, z2 in zs:
        runs = [_empirical_ntk(z1, z2, act, 100_000, rng, D=2) for _ in range(16)]
        nngp = np.array([r[0] for r in runs])
        J = np.array([r[1] for r in runs])
        theta = ntk_gram(z1[None], z2[None], act, "ntk")[0, 0]
        k = ntk_gram(z1[None], z2[None], act, "nngp")[0, 0]
        diag = J[:, [0, 1], [0, 1]].mean(axis=1)
        se = diag.std(ddof=1) / math.sqrt(len(runs))
        assert se < 0.003 * abs(theta)
        assert abs(diag.mean() - theta) <= 0.01 * abs(theta), (act, z1, z2, diag.mean(), theta)
        assert abs(nngp.mean() - k) <= 0.01 * abs(k), (act, z1, z2, nngp.mean(), k)
        off = J[:, 0, 1]
        assert abs(off.mean()) <= 4 * off.std(ddof=1) / math.sqrt(len(runs))


def test_gram_rejects_bad_input():
    z = np.array([[0.1, 0.2, 1.0]])
    with pytest.raises(ValueError, match="activation"):
        ntk_gram(z, activation="tanh")
    with pytest.raises(ValueError, match="kernel"):
        ntk_gram(z, kernel="cntk")
    with pytest.raises(ValueError, match="z1"):
        ntk_gram(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="z2"):
        ntk_gram(z, np.ones((2, 4)))
    with pytest.raises(ValueError, match="backend"):
        ntk_gram(z, backend="torch")
