"""The lazy-training filter and its divided differences (gtv.numerics.kernel.divided_differences).

Checks: the divided differences of the training filter against 3 x 3 matrix functions and
50-digit mpmath, clustered and extreme eigenvalues, thread-count invariance, the converged limit
and its cutoff, the gradient-descent stability limit.
"""

import mpmath as mp
import numba
import numpy as np
import pytest

from gtv.numerics.kernel import (
    gd_stability_limit,
    lazy_divided_differences,
    lazy_filter,
)


# -- divided differences ------------------------------------------------------------------------
def _mp_dd(x, y, tau, lr, flow):
    """phi[0, x, y] and -phi[0, x] at 60 digits (confluent cases by derivatives)."""
    mp.mp.dps = 60
    x, y = mp.mpf(float(x)), mp.mpf(float(y))
    if flow == "gradient-flow":
        k = mp.mpf(lr) * mp.mpf(tau)

        def phi(v, n=0):
            return (-k) ** n * mp.exp(-k * v)
    else:
        steps = int(round(tau / lr))
        h = mp.mpf(lr)

        def phi(v, n=0):
            out = (1 - h * v) ** (steps - n) * (-h) ** n
            for j in range(n):
                out *= steps - j
            return out

    def d1(p, q):
        return phi(p, 1) if p == q else (phi(q) - phi(p)) / (q - p)

    def d2(p, q, r):
        pts = sorted([p, q, r])
        if pts[0] == pts[2]:
            return phi(pts[0], 2) / 2
        return (d1(pts[1], pts[2]) - d1(pts[0], pts[1])) / (pts[2] - pts[0])

    return float(d2(mp.mpf(0), x, y)), float(-d1(mp.mpf(0), x))


def test_divided_differences_match_matrix_function_reference():
    rng = np.random.default_rng(1)
    x = np.sort(rng.uniform(0, 3, 8))
    for flow, tau, lr in [
        ("gradient-flow", 2.0, 1.0),
        ("gradient-flow", 1.5, 0.3),
        ("gradient-descent", 3.0, 0.25),
        ("gradient-descent", 40.0, 0.5),
    ]:
        g, dd = lazy_divided_differences(x, tau, lr, flow)
        g2, dd_ref = lazy_divided_differences(x, tau, lr, flow, backend="numpy")
        np.testing.assert_allclose(g, g2, rtol=1e-12)
        np.testing.assert_allclose(dd, dd_ref, rtol=1e-10, atol=1e-14 * np.abs(dd_ref).max())
        np.testing.assert_allclose(g, lazy_filter(x, tau, lr, flow), rtol=1e-13)


@pytest.mark.parametrize(
    "flow,tau,lr",
    [("gradient-flow", 50.0, 2.0), ("gradient-flow", 1e6, 1.0), ("gradient-descent", 600.0, 0.3)],
)
def test_divided_differences_clustered_and_extreme_against_mpmath(flow, tau, lr):
    """Exact zeros, clusters 1e-12 apart and huge lr*tau*x: 1e-12 relative to the largest entry
    (60-digit mpmath), where the textbook difference quotients lose everything."""
    x = np.array([0.0, 1e-14, 1e-12, 1e-12 * (1 + 1e-6), 0.3, 0.3 + 1e-11, 1.2, 3.0])
    g, dd = lazy_divided_differences(x, tau, lr, flow)
    scale = np.abs(dd).max()
    for i in range(x.size):
        for j in range(x.size):
            ref, gref = _mp_dd(x[i], x[j], tau, lr, flow)
            assert abs(dd[i, j] - ref) <= 1e-12 * scale, (i, j, dd[i, j], ref)
        assert abs(g[i] - gref) <= 1e-13 * abs(gref), (i, g[i], gref)


def test_divided_differences_do_not_depend_on_thread_count():
    x = np.linspace(0.0, 2.0, 37)
    nt = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        a = lazy_divided_differences(x, 7.0, 0.5, "gradient-descent")
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        b = lazy_divided_differences(x, 7.0, 0.5, "gradient-descent")
    finally:
        numba.set_num_threads(nt)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_filter_at_infinity_and_cutoff():
    x = np.array([0.0, 1e-20, 0.5, 2.0])
    g = lazy_filter(x, np.inf)
    np.testing.assert_array_equal(g, [0.0, 0.0, 2.0, 0.5])
    gd, dd = lazy_divided_differences(x, np.inf)
    np.testing.assert_array_equal(gd, g)
    assert dd[2, 3] == 1.0 / (0.5 * 2.0) and dd[0, 2] == 0.0


def test_stability_limit():
    s = np.array([0.1, 0.5, 4.0])
    assert gd_stability_limit(s) == 0.5
    assert gd_stability_limit(s, ridge=1.0) == 0.4
    with pytest.raises(ValueError, match=r"lr = 0.5 .*lr_max = 2 / \(s_max \+ ridge\) = 0.5"):
        lazy_filter(s, 10.0, lr=0.5, flow="gradient-descent")
    lazy_filter(s, 10.0 * 0.49, lr=0.49, flow="gradient-descent")
