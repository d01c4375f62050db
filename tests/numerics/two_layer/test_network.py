"""Two-layer networks in NTK parameterization (gtv.numerics.two_layer; docs/math/kernel.md).

Checks: every compiled pass (forward, vector-Jacobian product = the gradient, Jacobian-vector
product, gradient-descent steps) against a plain-numpy reference (1e-12) and against central finite
differences of the numpy forward pass (relative error <= 1e-6 in float64); the empirical tangent
kernel against ``J J^T`` from a finite-difference Jacobian (off-diagonal output blocks included);
the spectral formula of the linearized model against explicit gradient descent on that linear
model; exact zero output of the antisymmetric initialization; thread-count invariance; bad input.
"""

import numba
import numpy as np
import pytest

from gtv.numerics.schedules import get_schedule
from gtv.numerics.two_layer import (
    TwoLayerNetworks,
    empirical_ntk,
    forward,
    forward_reference,
    gd_steps,
    gd_steps_reference,
    jvp,
    jvp_reference,
    linearized_predictions,
    vjp,
    vjp_reference,
)


def _params(seed, n_models, width, d_in, n_out, antisymmetric=False):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((n_models, width, d_in))
    A = rng.standard_normal((n_models, width, n_out))
    if antisymmetric:
        h = width // 2
        W[:, h:] = W[:, :h]
        A[:, h:] = -A[:, :h]
    return W, A


def _inputs(seed, n_models, n_points, d_in):
    rng = np.random.default_rng(seed)
    z = rng.uniform(-1.5, 1.5, (n_models, n_points, d_in))
    z[..., -1] = 1.0  # the constant coordinate, as in ntk_inputs
    return z


def _rel(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


# -- numba vs numpy reference -------------------------------------------------------------------
@pytest.mark.parametrize("activation", ["relu", "erf"])
@pytest.mark.parametrize("n_out,width", [(1, 7), (2, 10), (3, 1)])
def test_passes_match_numpy_reference(activation, n_out, width):
    d_in = n_out + 2
    W, A = _params(0, 3, width, d_in, n_out)
    z = _inputs(1, 3, 300, d_in)  # 300 > one block of 256 queries
    rng = np.random.default_rng(2)
    out = forward(W, A, z, activation)
    ref = np.stack([forward_reference(W[m], A[m], z[m], activation) for m in range(3)])
    assert out.shape == (3, 300, n_out)
    assert _rel(out, ref) < 1e-12
    shared = forward(W, A, z[0], activation)  # one set of queries for all models
    ref0 = np.stack([forward_reference(W[m], A[m], z[0], activation) for m in range(3)])
    assert _rel(shared, ref0) < 1e-12

    r = rng.standard_normal((3, 300, n_out))
    gW, gA = vjp(W, A, z, r, activation)
    for m in range(3):
        rW, rA = vjp_reference(W[m], A[m], z[m], r[m], activation)
        assert _rel(gW[m], rW) < 1e-12 and _rel(gA[m], rA) < 1e-12

    dW, dA = rng.standard_normal(W.shape), rng.standard_normal(A.shape)
    jv = jvp(W, A, z, dW, dA, activation)
    ref = np.stack([jvp_reference(W[m], A[m], z[m], dW[m], dA[m], activation) for m in range(3)])
    assert _rel(jv, ref) < 1e-12
    # Adjointness <J v, r> = <v, J^T r>: ties the forward-mode and reverse-mode kernels together.
    lhs = np.sum(jv * r, axis=(1, 2))
    rhs = np.sum(dW * gW, axis=(1, 2)) + np.sum(dA * gA, axis=(1, 2))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12)


@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_gd_steps_match_numpy_reference(activation):
    W, A = _params(3, 4, 12, 4, 2)
    z = _inputs(4, 4, 40, 4)
    rng = np.random.default_rng(5)
    x0 = rng.choice([-1.0, 0.5], (4, 40, 2))
    weight = rng.uniform(0.05, 20.0, (4, 40))
    W1, A1 = gd_steps(W, A, z, x0, weight, 0.05, 7, activation)
    W2, A2 = gd_steps_reference(W, A, z, x0, weight, 0.05, 7, activation)
    assert _rel(W1, W2) < 1e-12 and _rel(A1, A2) < 1e-12
    assert not np.array_equal(W1, W)  # the parameters moved (and the inputs were not modified)
    np.testing.assert_array_equal(W, _params(3, 4, 12, 4, 2)[0])


# -- finite differences -------------------------------------------------------------------------
def _loss_np(W, A, z, x0, weight, activation):
    out = forward_reference(W, A, z, activation)
    return 0.5 * np.mean(weight * np.sum((out - x0) ** 2, axis=1))


def _fd_setup(activation):
    """A tiny network whose relu pre-activations stay away from the kink (asserted)."""
    W, A = _params(11, 1, 6, 4, 2)
    z = _inputs(12, 1, 5, 4)
    rng = np.random.default_rng(13)
    x0 = rng.standard_normal((1, 5, 2))
    weight = rng.uniform(0.1, 5.0, (1, 5))
    u = z[0] @ W[0].T / 2.0
    assert np.min(np.abs(u)) > 1e-3  # central differences with h = 1e-6 never cross u = 0
    return W, A, z, x0, weight


@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_gradient_matches_central_differences(activation):
    """The loss gradient (the VJP with r = lambda~ (D^ - x0) / P) vs central differences."""
    W, A, z, x0, weight = _fd_setup(activation)
    out = forward_reference(W[0], A[0], z[0], activation)
    r = (weight[0][:, None] * (out - x0[0]) / 5)[None]
    gW, gA = vjp(W, A, z, r, activation)
    h = 1e-6
    fd = []
    for P in (W, A):
        g = np.zeros(P.shape[1:])
        for idx in np.ndindex(*P.shape[1:]):
            Pp, Pm = P.copy(), P.copy()
            Pp[(0, *idx)] += h
            Pm[(0, *idx)] -= h
            args_p = (Pp[0], A[0]) if P is W else (W[0], Pp[0])
            args_m = (Pm[0], A[0]) if P is W else (W[0], Pm[0])
            g[idx] = (
                _loss_np(*args_p, z[0], x0[0], weight[0], activation)
                - _loss_np(*args_m, z[0], x0[0], weight[0], activation)
            ) / (2 * h)
        fd.append(g)
    exact = np.concatenate([gW[0].ravel(), gA[0].ravel()])
    approx = np.concatenate([f.ravel() for f in fd])
    assert np.linalg.norm(exact - approx) / np.linalg.norm(exact) < 1e-6
    # One gradient-descent step of the compiled trainer is theta - eta * (that gradient).
    W1, A1 = gd_steps(W, A, z, x0, weight, 0.3, 1, activation)
    step = np.concatenate([(W - W1)[0].ravel(), (A - A1)[0].ravel()]) / 0.3
    assert np.linalg.norm(step - approx) / np.linalg.norm(approx) < 1e-6


def _fd_jacobian(W, A, z, activation, h=1e-6):
    """Jacobian of the outputs (Q*D) w.r.t. all parameters, by central differences."""
    cols = []
    for P in (W, A):
        for idx in np.ndindex(*P.shape):
            Pp, Pm = P.copy(), P.copy()
            Pp[idx] += h
            Pm[idx] -= h
            fp = forward_reference(*((Pp, A) if P is W else (W, Pp)), z, activation)
            fm = forward_reference(*((Pm, A) if P is W else (W, Pm)), z, activation)
            cols.append(((fp - fm) / (2 * h)).ravel())
    return np.array(cols).T


@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_jvp_and_ntk_match_finite_difference_jacobian(activation):
    W, A, z, _, _ = _fd_setup(activation)
    J = _fd_jacobian(W[0], A[0], z[0], activation)  # (5*2, 6*4 + 6*2)
    rng = np.random.default_rng(14)
    dW, dA = rng.standard_normal(W.shape), rng.standard_normal(A.shape)
    v = np.concatenate([dW[0].ravel(), dA[0].ravel()])
    jv = jvp(W, A, z, dW, dA, activation)[0].ravel()
    assert np.linalg.norm(jv - J @ v) / np.linalg.norm(jv) < 1e-6
    theta = empirical_ntk(W[0], A[0], z[0], z[0], activation).reshape(10, 10)
    assert np.linalg.norm(theta - J @ J.T) / np.linalg.norm(theta) < 1e-6
    # At finite width the two outputs are coupled: the off-diagonal blocks are not small.
    off = theta.reshape(5, 2, 5, 2)[:, 0, :, 1]
    assert np.max(np.abs(off)) > 0.05 * np.max(np.abs(theta))


# -- linearized model ---------------------------------------------------------------------------
@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_linearized_predictions_match_explicit_linear_gd(activation):
    """Spectral formula vs gradient descent run step by step on the linearized model
    f = f0 + J dtheta (J from the numpy JVP reference, column by column)."""
    W, A = _params(20, 1, 8, 3, 1)
    W, A = W[0], A[0]
    z = _inputs(21, 1, 12, 3)[0]
    zq = _inputs(22, 1, 9, 3)[0]
    rng = np.random.default_rng(23)
    x0 = rng.standard_normal((12, 1))
    weight = rng.uniform(0.1, 4.0, 12)

    def jac(zz):
        cols = []
        for P in (W, A):
            for idx in np.ndindex(*P.shape):
                e = np.zeros_like(P)
                e[idx] = 1.0
                dW, dA = (e, np.zeros_like(A)) if P is W else (np.zeros_like(W), e)
                cols.append(jvp_reference(W, A, zz, dW, dA, activation).ravel())
        return np.array(cols).T

    J, Jq = jac(z), jac(zq)
    f0, f0q = (
        forward_reference(W, A, z, activation).ravel(),
        forward_reference(W, A, zq, activation),
    )
    theta = J @ J.T
    sw = np.sqrt(weight)
    lmax = np.linalg.eigvalsh(sw[:, None] * theta * sw[None, :]).max()
    eta = 0.9 * 2 * 12 / lmax
    steps = [0, 1, 5, 40]
    pred = linearized_predictions(W, A, z, x0, weight, zq, eta, steps, activation)
    dtheta = np.zeros(J.shape[1])
    explicit = []
    for k in range(steps[-1] + 1):
        if k in steps:
            explicit.append(f0q + (Jq @ dtheta).reshape(f0q.shape))
        dtheta -= eta * J.T @ (weight * (f0 + J @ dtheta - x0.ravel())) / 12
    np.testing.assert_allclose(pred, np.array(explicit), rtol=1e-9, atol=1e-11)
    # Gradient flow is the small-step limit of gradient descent at equal tau = eta * k.
    gf = linearized_predictions(W, A, z, x0, weight, zq, eta, [40], activation, flow="gf")
    gd = linearized_predictions(W, A, z, x0, weight, zq, eta / 1000, [40000], activation)
    assert np.max(np.abs(gf - gd)) < 1e-3 * np.max(np.abs(gf - f0q))


# -- antisymmetric initialization, threads, the ensemble object ----------------------------------
@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_antisymmetric_networks_output_exactly_zero(activation):
    W, A = _params(30, 5, 64, 4, 2, antisymmetric=True)
    z = _inputs(31, 5, 500, 4)
    np.testing.assert_array_equal(forward(W, A, z, activation), 0.0)
    W2, A2 = _params(30, 5, 64, 4, 2, antisymmetric=False)
    assert np.all(forward(W2, A2, z, activation) != 0.0)


def test_results_independent_of_thread_count():
    W, A = _params(40, 3, 20, 3, 1)
    z = _inputs(41, 3, 600, 3)
    x0 = np.ones((3, 600, 1))
    weight = np.linspace(0.1, 3, 600)[None].repeat(3, axis=0)
    old = numba.get_num_threads()
    res = []
    try:
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            res.append(
                [
                    forward(W, A, z, "erf"),
                    *vjp(W, A, z, x0, "relu"),
                    jvp(W, A, z, W, A, "erf"),
                    *gd_steps(W, A, z, x0, weight, 0.01, 3, "relu"),
                ]
            )
    finally:
        numba.set_num_threads(old)
    for a, b in zip(*res, strict=True):
        np.testing.assert_array_equal(a, b)


def test_networks_object_inputs_denoise_and_score():
    sched = get_schedule("vp-linear")
    W, A = _params(50, 2, 16, 4, 2)
    nets = TwoLayerNetworks(W, A, "relu", sched, 0.01)
    x = np.array([[0.3, -0.2], [1.0, 0.5], [-1.2, 0.0]])
    t = np.array([0.01, 0.5, 1.0])
    z = nets.inputs(x, t)
    np.testing.assert_array_equal(z[:, :2], x)
    np.testing.assert_allclose(z[:, 2], [-1.0, 2 * 0.49 / 0.99 - 1, 1.0], rtol=1e-14)
    np.testing.assert_array_equal(z[:, 3], 1.0)
    d = nets.denoise(x, t)
    assert d.shape == (2, 3, 2)
    np.testing.assert_array_equal(d, forward(W, A, z, "relu"))
    s = nets.score(x, t)
    alpha, sig2 = sched.alpha(t), sched.sigma2(t)
    np.testing.assert_allclose(s, (alpha[None, :, None] * d - x[None]) / sig2[None, :, None])
    assert nets.width == 16 and nets.n_models == 2 and nets.dim == 2


# -- bad input ----------------------------------------------------------------------------------
def test_bad_input():
    W, A = _params(60, 2, 4, 3, 1)
    z = _inputs(61, 2, 5, 3)
    with pytest.raises(ValueError, match="activation"):
        forward(W, A, z, "tanh")
    with pytest.raises(ValueError, match="z must have shape"):
        forward(W, A, z[..., :2], "relu")
    with pytest.raises(ValueError, match="W and A"):
        forward(W, A[:, :3], z, "relu")
    with pytest.raises(ValueError, match="z must be finite"):
        forward(W, A, np.full((5, 3), np.nan), "relu")
    with pytest.raises(ValueError, match="r must have shape"):
        vjp(W, A, z, np.zeros((2, 4, 1)), "relu")
    with pytest.raises(ValueError, match="x0 and weight"):
        gd_steps(W, A, z, np.zeros((2, 5, 2)), np.ones((2, 5)), 0.1, 1)
    sched = get_schedule("vp-linear")
    with pytest.raises(ValueError, match="activation"):
        TwoLayerNetworks(W, A, "sigmoid", sched, 0.01)
    with pytest.raises(ValueError, match="d_in = D \\+ 2"):
        TwoLayerNetworks(W[:, :, :2], A, "relu", sched, 0.01)
    with pytest.raises(ValueError, match="flow"):
        linearized_predictions(W[0], A[0], z[0], np.zeros((5, 1)), np.ones(5), z[0], 0.1, [1],
                               flow="euler")  # fmt: skip
