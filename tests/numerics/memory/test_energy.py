"""Associative-memory energy, gradient and Hessian (gtv.numerics.memory.energy).

Three-way checks: sympy expressions of gtv.theory.memory (mpmath, 30 digits) = numba kernel =
numpy reference; plus central finite differences of the energy and the data-coordinate helpers.
"""

import numpy as np
import pytest
import sympy as sp

from gtv.numerics.memory.energy import (
    am_energy,
    am_gradient,
    am_hessian,
    data_energy,
    data_gradient,
    data_hessian,
)
from gtv.numerics.posterior import posterior_stats
from gtv.numerics.schedules import get_schedule
from gtv.theory.memory import (
    alpha,
    energy_expression,
    gradient_expression,
    hessian_expression,
    sigma2,
)

FUNCS = (am_energy, am_gradient, am_hessian)


def _data(K=7, D=3, n=40, seed=0):
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=(K, D))
    x = rng.normal(size=(n, D))
    w = rng.random(K) + 0.05
    return mu, x, w / w.sum()


@pytest.mark.parametrize("t", [0.02, 0.3, 1.0])
@pytest.mark.parametrize("weighted", [False, True])
def test_numba_matches_numpy(t, weighted):
    mu, x, w = _data()
    w = w if weighted else None
    for f in FUNCS:
        a = f(mu, x, t, "vp-linear", w)
        b = f(mu, x, t, "vp-linear", w, backend="numpy")
        scale = max(1.0, float(np.abs(b).max()))
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * scale, err_msg=f.__name__)


def test_three_way_against_sympy():
    """K = 3, D = 2, random weights: the sympy energy, gradient and Hessian evaluated at 30
    digits equal both backends to 1e-12."""
    K, D = 3, 2
    mu, x, w = _data(K, D, n=3, seed=4)
    t = 0.4
    sched = get_schedule("vp-linear")
    av, sv = float(sched.alpha(t)), float(sched.sigma2(t))
    e = energy_expression(K, D)
    gexpr, hexpr = gradient_expression(K, D), hessian_expression(K, D)
    base = {alpha: sp.Float(av, 30), sigma2: sp.Float(sv, 30)}
    base.update({s: sp.Float(v, 30) for s, v in zip(e["memories"], mu.ravel(), strict=True)})
    base.update({s: sp.Float(v, 30) for s, v in zip(e["weights"], w, strict=True)})
    for backend in ("numba", "numpy"):
        en = am_energy(mu, x, t, weights=w, backend=backend)
        gr = am_gradient(mu, x, t, weights=w, backend=backend)
        he = am_hessian(mu, x, t, weights=w, backend=backend)
        for i in range(x.shape[0]):
            subs = dict(base)
            subs.update({s: sp.Float(v, 30) for s, v in zip(e["x"], x[i], strict=True)})
            assert abs(en[i] - float(e["energy"].subs(subs).evalf(30))) < 1e-12
            g_ref = np.array(gexpr.subs(subs).evalf(30), dtype=float).ravel()
            np.testing.assert_allclose(gr[i], g_ref, rtol=0, atol=1e-12)
            h_ref = np.array(hexpr.subs(subs).evalf(30), dtype=float)
            np.testing.assert_allclose(he[i], h_ref, rtol=0, atol=1e-12)


def test_finite_differences():
    mu, x, w = _data(K=5, D=3, n=6, seed=2)
    t, h = 0.25, 1e-5
    e = lambda z: am_energy(mu, z, t, weights=w)  # noqa: E731
    g = am_gradient(mu, x, t, weights=w)
    hess = am_hessian(mu, x, t, weights=w)
    for j in range(3):
        dx = np.zeros(3)
        dx[j] = h
        fd = (e(x + dx) - e(x - dx)) / (2 * h)
        np.testing.assert_allclose(g[:, j], fd, rtol=0, atol=1e-7)
        fd2 = (am_gradient(mu, x + dx, t, weights=w) - am_gradient(mu, x - dx, t, weights=w)) / (
            2 * h
        )
        np.testing.assert_allclose(hess[:, :, j], fd2, rtol=0, atol=1e-7)


def test_score_relation_and_posterior_mean():
    """-grad E / sigma2 is the exact score of gtv.numerics.posterior (uniform weights)."""
    mu, x, _ = _data()
    t = 0.3
    s2 = float(get_schedule("vp-linear").sigma2(t))
    score = posterior_stats(mu, x, t).score
    np.testing.assert_allclose(-am_gradient(mu, x, t) / s2, score, rtol=1e-10, atol=1e-10)


def test_log_sum_exp_is_stable_and_zero_weights_drop_out():
    mu = np.array([[0.0, 0.0], [1.0, 0.0], [50.0, 0.0]])
    x = np.array([[0.2, 0.1], [0.9, -0.3]])
    t = 1e-3  # sigma2 ~ 2e-4: logits of order -1e7, exp underflows without the shift
    sched = get_schedule("vp-linear")
    a, s2 = float(sched.alpha(t)), float(sched.sigma2(t))
    for backend in ("numba", "numpy"):
        en = am_energy(mu, x, t, weights=[0.5, 0.5, 0.0], backend=backend)
        assert np.all(np.isfinite(en))
        # Exact two-memory value by hand, in log-sum-exp form.
        d2 = ((x[:, None, :] - a * mu[None, :2, :]) ** 2).sum(-1) / (2 * s2)
        ref = -s2 * (np.log(0.5) - d2.min(1) + np.log(np.exp(-(d2 - d2.min(1)[:, None])).sum(1)))
        np.testing.assert_allclose(en, ref, rtol=1e-12)
        h = am_hessian(mu, x, t, weights=[0.5, 0.5, 0.0], backend=backend)
        assert np.all(np.isfinite(h))


def test_data_coordinate_helpers():
    mu, y, w = _data(n=8)
    t = 0.35
    a = float(get_schedule("vp-linear").alpha(t))
    np.testing.assert_allclose(
        data_energy(mu, y, t, weights=w), am_energy(mu, a * y, t, weights=w) / a**2, rtol=1e-13
    )
    np.testing.assert_allclose(
        data_gradient(mu, y, t, weights=w),
        am_gradient(mu, a * y, t, weights=w) / a,
        rtol=1e-12,
        atol=1e-14,
    )
    np.testing.assert_allclose(
        data_hessian(mu, y, t, weights=w), am_hessian(mu, a * y, t, weights=w), atol=1e-14
    )
    # gradient of data_energy by finite differences
    h = 1e-5
    dy = np.zeros(3)
    dy[1] = h
    fd = (data_energy(mu, y + dy, t, weights=w) - data_energy(mu, y - dy, t, weights=w)) / (2 * h)
    np.testing.assert_allclose(data_gradient(mu, y, t, weights=w)[:, 1], fd, atol=1e-7)


def test_per_point_times():
    mu, x, _ = _data(n=4)
    ts = np.array([0.1, 0.2, 0.5, 0.9])
    got = am_hessian(mu, x, ts)
    for i, tv in enumerate(ts):
        np.testing.assert_allclose(got[i], am_hessian(mu, x[i : i + 1], tv)[0], atol=1e-14)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"t": 0.0}, "t must lie in"),
        ({"t": 1.5}, "t must lie in"),
        ({"t": np.array([0.1, 0.2])}, "t must be a scalar or have shape"),
        ({"x": np.ones((3, 2))}, "x must have D = 3"),
        ({"x": np.array([[np.nan, 0, 0]])}, "x must contain only finite"),
        ({"memories": np.array([[np.inf, 0, 0]])}, "memories must contain only finite"),
        ({"memories": np.zeros((0, 3))}, "memories must have shape"),
        ({"weights": [0.5, 0.5]}, "weights must have shape"),
        ({"weights": [0.6, 0.6, -0.2]}, "weights must be finite and >= 0"),
        ({"weights": [0.2, 0.2, 0.2]}, "weights must sum to 1"),
        ({"backend": "torch"}, "backend must be one of"),
    ],
)
def test_bad_input_raises(kwargs, match):
    args = {
        "memories": np.eye(3),
        "x": np.ones((4, 3)),
        "t": 0.5,
        "weights": None,
        "backend": "numba",
    }
    args.update(kwargs)
    for f in FUNCS:
        with pytest.raises(ValueError, match=match):
            f(
                args["memories"],
                args["x"],
                args["t"],
                weights=args["weights"],
                backend=args["backend"],
            )
