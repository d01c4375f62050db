"""One lazy infinite-width network trained on DSM triples (gtv.numerics.kernel.regression).

Checks: the trained denoiser against the matrix exponential, an explicit ODE integration and
explicit gradient-descent iteration (ridge and tau = inf included); the gradient-descent stability
limit of a training set; bad input.
"""

import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.linalg import expm

from gtv.numerics.dsm import draw_dsm_triples
from gtv.numerics.kernel import (
    ACTIVATIONS,
    fit_kernel_regression,
    ntk_gram,
    ntk_inputs,
    train_kernel_ensemble,
)
from gtv.numerics.schedules import get_schedule

SCHED = get_schedule("vp-linear")
DATA = np.array([[-1.0], [0.0], [1.0]])
EPS = 0.05


def _inputs(rng, n, D=1):
    x = rng.normal(size=(n, D))
    t = rng.uniform(EPS, 1.0, n)
    return ntk_inputs(x, t, EPS, SCHED)


# -- one trained model --------------------------------------------------------------------------
def _training_set(P, seed=3, D=1):
    rng = np.random.default_rng(seed)
    data = DATA if D == 1 else np.array([[-1.0, 0.5], [0.0, -0.5], [1.0, 1.0]])
    t, x0, x = draw_dsm_triples(rng, data, P, EPS, SCHED)
    return ntk_inputs(x, t, EPS, SCHED), x0, SCHED.dsm_weight(t)


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_gradient_flow_matches_matrix_exponential_and_ode(act):
    """D^_tau(Z) = Theta(Z,Z) Theta^-1 (I - e^{-lr tau Theta Lam / P}) X0 written with expm on the
    training points (no eigendecomposition), and an RK45 integration of the function-space ODE
    d D^(z)/d tau = -(lr/P) Theta(z, Z) Lam (D^(Z) - X0) at training and query points."""
    P, lr, tau = 25, 0.7, 3.0
    z, x0, lam = _training_set(P, D=2)
    model = fit_kernel_regression(z, x0, lam, act)
    G = ntk_gram(z, None, act)
    A = G @ np.diag(lam) / P
    # D^(Z) = (I - expm(-lr tau A)) X0
    ref_train = (np.eye(P) - expm(-lr * tau * A)) @ x0
    np.testing.assert_allclose(model.predict(z, tau, lr), ref_train, rtol=1e-9, atol=1e-11)
    zq = _inputs(np.random.default_rng(9), 6, 2)
    Kq = ntk_gram(zq, z, act)

    def rhs(_, y):
        f = y.reshape(P + 6, 2)
        r = lam[:, None] * (f[:P] - x0) / P
        return -lr * np.concatenate([G @ r, Kq @ r]).ravel()

    sol = solve_ivp(rhs, (0, tau), np.zeros((P + 6) * 2), rtol=1e-11, atol=1e-13, method="DOP853")
    f = sol.y[:, -1].reshape(P + 6, 2)
    np.testing.assert_allclose(model.predict(z, tau, lr), f[:P], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(model.predict(zq, tau, lr), f[P:], rtol=1e-7, atol=1e-9)
    # an array of taus gives the stacked results
    both = model.predict(zq, np.array([1.0, tau]), lr)
    np.testing.assert_allclose(both[1], model.predict(zq, tau, lr), rtol=1e-14)


def test_gradient_descent_matches_explicit_iteration():
    """k steps of D^ <- D^ - (lr/P) Theta Lam (D^ - X0) (training and query points), with and
    without weight decay (beta <- beta - lr (W (Theta beta - X0) + rho beta))."""
    P = 30
    z, x0, lam = _training_set(P)
    zq = _inputs(np.random.default_rng(4), 5)
    G, Kq = ntk_gram(z), ntk_gram(zq, z)
    for ridge in (0.0, 0.05):
        model = fit_kernel_regression(z, x0, lam, "relu", ridge)
        lr = 0.9 * model.lr_max
        k = 57
        beta = np.zeros((P, 1))
        for _ in range(k):
            beta = beta - lr * ((lam / P)[:, None] * (G @ beta - x0) + ridge * beta)
        got = model.predict(zq, lr * k, lr, "gradient-descent")
        np.testing.assert_allclose(got, Kq @ beta, rtol=1e-9, atol=1e-12)
        if ridge == 0.0:
            fz = np.zeros((P, 1))
            for _ in range(k):
                fz = fz - lr / P * G @ (lam[:, None] * (fz - x0))
            np.testing.assert_allclose(
                model.predict(z, lr * k, lr, "gradient-descent"), fz, rtol=1e-9, atol=1e-12
            )


def test_ridge_and_converged_limits():
    """tau = inf: kernel ridge regression Theta(z,Z)(Lam Theta + P rho I)^-1 Lam X0, and the
    minimum-norm interpolant (pseudo-inverse) without ridge; finite tau with ridge = the ODE
    with weight decay (expm)."""
    P = 20
    z, x0, lam = _training_set(P)
    zq = _inputs(np.random.default_rng(5), 4)
    G, Kq = ntk_gram(z), ntk_gram(zq, z)
    L = np.diag(lam)
    rho = 0.02
    model = fit_kernel_regression(z, x0, lam, "erf", rho)
    G, Kq = ntk_gram(z, None, "erf"), ntk_gram(zq, z, "erf")
    ref = Kq @ np.linalg.solve(L @ G + P * rho * np.eye(P), L @ x0)
    np.testing.assert_allclose(model.predict(zq, np.inf), ref, rtol=1e-8)
    A = L @ G / P + rho * np.eye(P)
    beta = np.linalg.solve(A, np.eye(P) - expm(-2.0 * A)) @ (L @ x0) / P
    np.testing.assert_allclose(model.predict(zq, 2.0), Kq @ beta, rtol=1e-8)
    m0 = fit_kernel_regression(z, x0, lam, "relu")
    G = ntk_gram(z)
    # relu NTK with the bias coordinate is strictly positive definite: interpolation
    np.testing.assert_allclose(m0.predict(z, np.inf), x0, atol=1e-6)
    sw = np.sqrt(lam)
    pinv = sw[:, None] * np.linalg.pinv(sw[:, None] * G * sw[None, :], rcond=1e-14) * sw[None, :]
    np.testing.assert_allclose(m0.coefficients(np.inf), pinv @ x0, rtol=1e-6, atol=1e-8)


def test_lr_beyond_stability_limit_raises_with_the_limit():
    z, x0, lam = _training_set(15)
    model = fit_kernel_regression(z, x0, lam)
    K = np.sqrt(lam)[:, None] * ntk_gram(z) * np.sqrt(lam)[None, :]
    lr_max = 2 * 15 / np.linalg.eigvalsh(K).max()
    np.testing.assert_allclose(model.lr_max, lr_max, rtol=1e-12)
    lr = 1.01 * lr_max
    with pytest.raises(ValueError, match=r"lr = .* lr_max = "):
        model.predict(z, 10 * lr, lr, "gradient-descent")
    # ... and the explicit iteration at that rate does diverge
    fz = np.zeros((15, 1))
    G = ntk_gram(z)
    for _ in range(3000):
        fz = fz - lr / 15 * G @ (lam[:, None] * (fz - x0))
    assert np.abs(fz).max() > 1e3
    model.predict(z, 10 * 0.99 * lr_max, 0.99 * lr_max, "gradient-descent")


def test_bad_input():
    z, x0, lam = _training_set(10)
    model = fit_kernel_regression(z, x0, lam)
    with pytest.raises(ValueError, match="tau"):
        model.predict(z, -1.0)
    with pytest.raises(ValueError, match="lr"):
        model.predict(z, 1.0, lr=0.0)
    with pytest.raises(ValueError, match="flow"):
        model.predict(z, 1.0, flow="adam")
    with pytest.raises(ValueError, match="tau"):
        model.predict(z, 1.05, lr=0.1, flow="gradient-descent")
    with pytest.raises(ValueError, match="activation"):
        fit_kernel_regression(z, x0, lam, "sigmoid")
    with pytest.raises(ValueError, match="ridge"):
        fit_kernel_regression(z, x0, lam, ridge=-1.0)
    with pytest.raises(ValueError, match="weights"):
        fit_kernel_regression(z, x0, -lam)
    with pytest.raises(ValueError, match="n_train"):
        train_kernel_ensemble(DATA, 0, 2, EPS, 1.0)
    with pytest.raises(ValueError, match="n_models"):
        train_kernel_ensemble(DATA, 5, 0, EPS, 1.0)
    with pytest.raises(ValueError, match="eps"):
        train_kernel_ensemble(DATA, 5, 2, 0.0, 1.0)
    with pytest.raises(ValueError, match="embedding"):
        train_kernel_ensemble(DATA, 5, 2, EPS, 1.0, embedding="fourier")
    with pytest.raises(ValueError, match="lr = "):
        train_kernel_ensemble(DATA, 5, 2, EPS, 100.0, lr=100.0, flow="gradient-descent")
