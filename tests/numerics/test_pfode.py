"""The probability-flow ODE stepper (gtv.numerics.pfode; docs/math/conventions.md,
docs/math/linear.md, docs/engineering.md).

* The compiled driver (block and pointwise denoisers, Euler and Heun) against the plain-numpy
  reference driver, thread-count invariance, start points from named streams.
* Convergence order: Euler is first order, Heun second order (exact Bayes denoiser, common
  initial points, a fine Heun reference); a denoiser ``D^ = 0`` gives the linear ODE.
* Time-grid checks (infinite drift at ``T``).
"""

import numba
import numpy as np
import pytest

from gtv.numerics.exact import sample_exact_denoiser
from gtv.numerics.features import ProductFeatures
from gtv.numerics.linear import sample_linear_ensemble, train_linear_ensemble
from gtv.numerics.pfode import (
    BLOCK,
    abs_max,
    drift_coefficients,
    initial_points,
    make_pf_ode,
    pf_ode_reference,
    pf_ode_time_grid,
)
from gtv.numerics.schedules import get_schedule
from gtv.numerics.streams import stream

T = 1.0


ALPHA_FW = 1e-3  # family-wise false-failure rate of each statistical check


# vp-linear closed forms (independent of the generated schedule code).
def _alpha(t):
    return np.exp(-(0.1 * t + 19.9 * t * t / 2))


def _sigma2(t):
    return -np.expm1(-2 * (0.1 * t + 19.9 * t * t / 2))


def _pf_coeffs(ts):
    """dx/dt = -beta x - D s with s = (alpha D^ - x)/sigma^2 and D = beta (vp-linear):
    dx/dt = (beta/sigma^2 - beta) x - (beta alpha/sigma^2) D^."""
    beta = 0.1 + 19.9 * ts
    return beta / _sigma2(ts) - beta, beta * _alpha(ts) / _sigma2(ts)


# -- the driver --------------------------------------------------------------------------------
# A nonlinear test denoiser with per-model and per-step parameters w (N, K+1, D):
# D^_c(x) = w[n, k, c] x_c - 0.3 x_c**3 / (1 + x_c**2) + 0.1 x_{c+1}.
@numba.njit(cache=True, error_model="numpy", inline="always")
def _toy_point(args, n, k, x, out, ws):
    (w,) = args
    d = x.shape[0]
    for c in range(d):
        xc = x[c]
        out[c] = w[n, k, c] * xc - 0.3 * xc * xc * xc / (1.0 + xc * xc) + 0.1 * x[(c + 1) % d]


@numba.njit(cache=True, error_model="numpy", inline="always")
def _toy_block(args, n, k, z, m, out, ws):
    (w,) = args
    d = z.shape[0]
    cube = ws[0]
    for c in range(d):
        for i in range(m):
            xc = z[c, i]
            cube[i] = 0.3 * xc * xc * xc
        for i in range(m):
            xc = z[c, i]
            out[c, i] = w[n, k, c] * xc - cube[i] / (1.0 + xc * xc) + 0.1 * z[(c + 1) % d, i]


@numba.njit(cache=True)
def _toy_workspace(args, d):
    return (np.empty(BLOCK),)


_drive_point = make_pf_ode(_toy_point, pointwise=True)
_drive_block = make_pf_ode(_toy_block, _toy_workspace)


def _toy_reference(w):
    def denoise(n, xs, k):
        nxt = np.roll(xs, -1, axis=1)
        return w[n, k] * xs - 0.3 * xs**3 / (1.0 + xs * xs) + 0.1 * nxt

    return denoise


def _toy_problem(n_models=3, n_samples=300, dim=2, n_steps=20):
    sched = get_schedule("vp-linear")
    ts = pf_ode_time_grid(sched, 0.02, n_steps)
    ax, bx = drift_coefficients(sched, ts)
    rng = np.random.default_rng(5)
    w = rng.uniform(0.2, 1.0, (n_models, n_steps + 1, dim))
    x = initial_points(None, 3, n_models, n_samples, dim, sched)
    return x, ts, ax, bx, w


@pytest.mark.parametrize("heun", [False, True])
def test_driver_block_and_pointwise_match_the_numpy_reference(heun):
    """300 samples: more than one block; the block and pointwise forms are the same arithmetic."""
    x, ts, ax, bx, w = _toy_problem()
    ref = pf_ode_reference(_toy_reference(w), x, ts, ax, bx, heun)
    a, b = x.copy(), x.copy()
    _drive_point(a, ts, ax, bx, heun, (w,))
    _drive_block(b, ts, ax, bx, heun, (w,))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, ref, rtol=1e-13, atol=1e-13)
    assert np.abs(a - x).max() > 0.1  # the flow moved the points
    assert not np.array_equal(a[0], a[1])  # each model has its own parameters


def test_driver_thread_invariance():
    x, ts, ax, bx, w = _toy_problem(n_models=2, n_samples=700, dim=3)
    old = numba.get_num_threads()
    out = []
    try:
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            for drive in (_drive_point, _drive_block):
                y = x.copy()
                drive(y, ts, ax, bx, True, (w,))
                out.append(y)
    finally:
        numba.set_num_threads(old)
    np.testing.assert_array_equal(out[0], out[2])
    np.testing.assert_array_equal(out[1], out[3])


def test_initial_points_come_from_named_streams():
    sched = get_schedule("vp-linear")
    sigma_T = np.sqrt(_sigma2(T))
    x = initial_points(None, 4, 3, 5, 2, sched)
    ref = [
        sigma_T * np.random.default_rng(s).standard_normal((5, 2))
        for s in stream(4, "sampling").spawn(3)
    ]
    np.testing.assert_allclose(x, np.stack(ref), rtol=1e-15)
    y = initial_points(None, 4, 3, 5, 2, sched, stream="field-sampling")
    assert np.all(x != y)
    # The first models of a larger ensemble start from the same points.
    np.testing.assert_array_equal(initial_points(None, 4, 5, 5, 2, sched)[:3], x)
    x_T = np.ones((3, 5, 2))
    got = initial_points(x_T, 4, 3, 5, 2, sched)
    got[:] = 0.0
    assert np.all(x_T == 1.0)  # copied
    with pytest.raises(ValueError, match="x_T"):
        initial_points(np.ones((3, 4, 2)), 4, 3, 5, 2, sched)
    with pytest.raises(ValueError, match="x_T"):
        initial_points(np.full((3, 5, 2), np.nan), 4, 3, 5, 2, sched)


def test_abs_max_is_the_largest_absolute_value():
    rng = np.random.default_rng(0)
    for x in (rng.standard_normal((3, 50, 2)), -np.abs(rng.standard_normal(7)), np.zeros(4)):
        assert abs_max(x) == np.abs(x).max()
    assert abs_max(np.array([1.0, -5.0, 2.0])) == 5.0
    assert np.isnan(abs_max(np.array([1.0, np.nan])))


def test_make_pf_ode_needs_jitted_functions():
    with pytest.raises(TypeError, match="denoise"):
        make_pf_ode(lambda args, n, k, x, out, ws: None)
    with pytest.raises(TypeError, match="workspace"):
        make_pf_ode(_toy_block, lambda args, d: None)


# -- convergence order --------------------------------------------------------------------------
CONV_DATA = {
    "1d": np.array([[-1.0], [0.0], [1.0]]),
    "2d": np.array([[-1.0, -1.0], [1.0, -1.0], [0.0, 1.0]]),
}


@pytest.mark.parametrize("case", ["1d", "2d"])
def test_convergence_orders(case):
    """Mean |x_method(x_T) - x_ref(x_T)| over 500 common initial points at eps = 0.05 (smooth
    flow); reference: Heun with 4000 steps (its own error ~2e-7, < 1 % of the errors below).
    Euler error halves as steps double; Heun's quarters (4 (1 + O(h)) pre-asymptotically)."""
    data = CONV_DATA[case]
    eps = 0.05
    x_T = np.sqrt(_sigma2(T)) * np.random.default_rng(0).standard_normal((500, data.shape[1]))
    ref = sample_exact_denoiser(data, 500, eps, n_steps=4000, method="heun", x_T=x_T)
    ref_half = sample_exact_denoiser(data, 500, eps, n_steps=2000, method="heun", x_T=x_T)
    steps = np.array([50, 100, 200, 400])
    err = {}
    for method in ("euler", "heun"):
        err[method] = np.array(
            [
                np.abs(
                    sample_exact_denoiser(data, 500, eps, n_steps=n, method=method, x_T=x_T) - ref
                ).mean()
                for n in steps
            ]
        )
        print(method, err[method], err[method][:-1] / err[method][1:])
    assert np.abs(ref - ref_half).mean() < 0.05 * err["heun"][-1]
    euler_ratios = err["euler"][:-1] / err["euler"][1:]
    assert np.all((euler_ratios > 1.7) & (euler_ratios < 2.3))
    heun_ratios = err["heun"][:-1] / err["heun"][1:]
    assert 3.5 < heun_ratios[-1] < 4.5
    order = np.log2(err["heun"][0] / err["heun"][-1]) / 3
    assert 1.8 < order < 2.4
    assert np.all(err["heun"] < err["euler"])


def test_exact_denoiser_single_point_is_linear_ode():
    """M = 1, mu = 0: D^ = 0 and the PF-ODE is dx/dt = (beta/sigma^2 - beta) x, whose exact
    solution is x_eps = x_T sigma_eps/sigma_T. Euler applies the product of (1 + dt a_k)."""
    x_T = np.array([[0.7], [-1.3]])
    ts = np.linspace(T, 0.05, 31)
    ax, _ = _pf_coeffs(ts)
    factor = np.prod(1 + np.diff(ts) * ax[:-1])
    out = sample_exact_denoiser(np.zeros((1, 1)), 2, 0.05, x_T=x_T)
    np.testing.assert_allclose(out, x_T * factor, rtol=1e-12)
    fine = sample_exact_denoiser(np.zeros((1, 1)), 2, 0.05, n_steps=4000, method="heun", x_T=x_T)
    np.testing.assert_allclose(fine, x_T * np.sqrt(_sigma2(0.05) / _sigma2(T)), rtol=1e-6)


def test_linear_variance_with_T_one_is_rejected():
    """linear-variance has beta_t = 1/(2(1 - t)): the PF-ODE drift is infinite at T = 1."""
    data = np.array([[-1.0], [1.0]])
    with pytest.raises(ValueError, match=r"\bT\b"):
        sample_exact_denoiser(data, 4, 0.01, "linear-variance")
    feats = ProductFeatures.uniform("gaussian", 1, 4, 3, (0.01, 1.0))
    ens = train_linear_ensemble(data, feats, 2, 100, 0.01, schedule="linear-variance")
    with pytest.raises(ValueError, match=r"\bT\b"):
        sample_linear_ensemble(ens, 4)
    # T < 1 works.
    sched = get_schedule("linear-variance", T=0.99)
    out = sample_exact_denoiser(data, 4, 0.01, sched)
    assert out.shape == (4, 1) and np.all(np.isfinite(out))
