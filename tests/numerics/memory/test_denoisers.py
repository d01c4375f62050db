"""Denoiser maps of one model (gtv.numerics.memory.denoisers).

Checks: the exact denoiser against a from-scratch softmax; its exact Jacobian against central
differences of that softmax (independent of the posterior code); the finite-difference Jacobian of
a map with a known Jacobian; each ModelDenoiser adapter against its ensemble's own denoiser for
the selected member (linear, kernel, kernel field, two-layer trajectory and networks, a generic
FieldEnsemble); bad input.
"""

import numpy as np
import pytest

from gtv.numerics.features import ProductFeatures
from gtv.numerics.kernel import KernelField, train_kernel_ensemble
from gtv.numerics.linear import train_linear_ensemble
from gtv.numerics.memory.denoisers import ExactDenoiser, FunctionDenoiser, ModelDenoiser
from gtv.numerics.two_layer import train_two_layer_ensemble

EPS = 0.01
DATA1 = np.array([[-1.0], [0.3], [1.0]])


# Closed forms for vp-linear, written out here (independent of the generated schedule code).
def _alpha(t):
    return np.exp(-(0.1 * t + 19.9 * t * t / 2))


def _sigma2(t):
    return -np.expm1(-2 * (0.1 * t + 19.9 * t * t / 2))


def _softmax_mean(mem, x, t):
    a, s2 = _alpha(t), _sigma2(t)
    logit = -np.sum((x[:, None, :] - a * mem[None]) ** 2, axis=2) / (2 * s2)
    w = np.exp(logit - logit.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    return w @ mem


def test_exact_denoiser_is_the_softmax_mean_and_its_jacobian_the_scaled_covariance():
    rng = np.random.default_rng(0)
    mem = rng.normal(size=(5, 3))
    den = ExactDenoiser(mem, "vp-linear", EPS)
    for t in (0.05, 0.2, 0.6):
        x = rng.normal(size=(7, 3))
        np.testing.assert_allclose(den.denoise(x, t), _softmax_mean(mem, x, t), atol=1e-13)
        jac = den.jacobian(x, t)
        h = 1e-6
        fd = np.stack(
            [(_softmax_mean(mem, x + h * e, t) - _softmax_mean(mem, x - h * e, t)) / (2 * h)
             for e in np.eye(3)], axis=2,
        )  # fmt: skip
        np.testing.assert_allclose(jac, fd, atol=1e-7 * np.abs(fd).max())
        np.testing.assert_allclose(jac, np.swapaxes(jac, 1, 2), atol=1e-14)
        # J_G = alpha * J at alpha y
        y = rng.normal(size=(4, 3))
        np.testing.assert_allclose(
            den.map_jacobian(y, t), _alpha(t) * den.jacobian(_alpha(t) * y, t), rtol=1e-12
        )
        np.testing.assert_allclose(
            den.fixed_point_map(y, t), _softmax_mean(mem, _alpha(t) * y, t), atol=1e-13
        )


def test_exact_denoiser_backends_agree():
    rng = np.random.default_rng(1)
    mem, x = rng.normal(size=(6, 2)), rng.normal(size=(5, 2))
    nb, npy = (ExactDenoiser(mem, backend=b) for b in ("numba", "numpy"))
    np.testing.assert_allclose(nb.denoise(x, 0.2), npy.denoise(x, 0.2), atol=1e-13)
    np.testing.assert_allclose(nb.jacobian(x, 0.2), npy.jacobian(x, 0.2), atol=1e-12)
    with pytest.raises(ValueError, match="backend"):
        ExactDenoiser(mem, backend="cuda")


def test_finite_difference_jacobian_of_a_known_map():
    """D^(x) = tanh(M x) has Jacobian diag(1 - tanh(Mx)**2) M."""
    M = np.array([[0.5, -0.3], [0.2, 0.8]])
    den = FunctionDenoiser(lambda x, t: np.tanh(x @ M.T), np.eye(2), "vp-linear", EPS)
    x = np.array([[0.3, -0.2], [1.0, 0.5]])
    exact = (1 - np.tanh(x @ M.T) ** 2)[:, :, None] * M[None]
    np.testing.assert_allclose(den.jacobian(x, 0.3), exact, atol=1e-9)


def _tiny_linear():
    feats = ProductFeatures.uniform("gaussian", 1, 6, 3, (EPS, 1.0))
    return train_linear_ensemble(DATA1, feats, 3, 300, EPS, ridge=1e-2, seed=1)


def test_model_denoiser_matches_each_ensemble_for_the_selected_member():
    x = np.array([[-0.7], [0.1], [1.2]])
    t = 0.25
    lin = _tiny_linear()
    den = ModelDenoiser(lin, 2)
    assert den.dim == 1 and den.eps == EPS and den.schedule is lin.schedule
    np.testing.assert_array_equal(den.memories, DATA1)
    np.testing.assert_allclose(den.denoise(x, t), lin.denoise(x, t)[2], rtol=1e-12, atol=1e-14)

    ker = train_kernel_ensemble(DATA1, 12, 3, EPS, [1.0, 5.0], activation="erf", seed=2)
    den = ModelDenoiser(ker, 1, tau=5.0)
    np.testing.assert_allclose(den.denoise(x, t), ker.denoiser(x, t, 5.0)[1], rtol=1e-12)
    with pytest.raises(ValueError, match="tau"):
        ModelDenoiser(ker, 1)

    one = train_kernel_ensemble(DATA1, 12, 2, EPS, [2.0], activation="relu", seed=3)
    den = ModelDenoiser(KernelField(one), 1)
    np.testing.assert_allclose(den.denoise(x, t), one.denoiser(x, t)[1], rtol=1e-12)

    traj = train_two_layer_ensemble(DATA1, 8, 3, 10, EPS, 0.01, [0.0, 0.05], seed=4)
    den = ModelDenoiser(traj, 2, checkpoint=0)
    np.testing.assert_allclose(den.denoise(x, t), traj.denoise(x, t)[0, 2], rtol=1e-12)
    nets = traj.networks(1)
    den = ModelDenoiser(nets, 0, memories=DATA1)
    np.testing.assert_allclose(den.denoise(x, t), traj.denoise(x, t)[1, 0], rtol=1e-12)
    with pytest.raises(ValueError, match="memories"):
        ModelDenoiser(nets, 0)


class _Field:
    """A minimal FieldEnsemble: member n is n * x (no schedule, eps or data of its own)."""

    n_models = 3
    dim = 2

    def denoise(self, x, t):
        return np.stack([n * np.asarray(x) for n in range(3)])

    def sample(self, n_samples, *, n_steps=30, method="euler", seed=0):
        raise NotImplementedError


def test_generic_field_ensemble_member():
    den = ModelDenoiser(_Field(), 2, memories=np.eye(2), schedule="ve", eps=0.01)
    x = np.array([[0.5, -1.0]])
    np.testing.assert_array_equal(den.denoise(x, 0.5), 2 * x)
    with pytest.raises(ValueError, match="schedule"):
        ModelDenoiser(_Field(), 0, memories=np.eye(2))
    with pytest.raises(ValueError, match="D = 2"):
        ModelDenoiser(_Field(), 0, memories=np.ones((2, 3)), schedule="ve", eps=0.01)


def test_bad_input():
    with pytest.raises(ValueError, match="memories"):
        ExactDenoiser(np.empty((0, 2)))
    with pytest.raises(ValueError, match="memories"):
        ExactDenoiser([[0.0, np.nan]])
    with pytest.raises(ValueError, match="eps"):
        ExactDenoiser(np.eye(2), eps=0.0)
    den = ExactDenoiser(np.eye(2))
    for t in (0.0, 1.5, np.nan, [0.1, 0.2], "a"):
        with pytest.raises(ValueError, match="^t must"):
            den.denoise(np.zeros((1, 2)), t)
    with pytest.raises(ValueError, match="^x must"):
        den.denoise(np.zeros((1, 3)), 0.5)
    with pytest.raises(ValueError, match="^x must"):
        den.jacobian([[np.inf, 0.0]], 0.5)
    with pytest.raises(ValueError, match="model"):
        ModelDenoiser(_tiny_linear(), 3)
    with pytest.raises(ValueError, match="model"):
        ModelDenoiser(_tiny_linear(), -1)
    with pytest.raises(TypeError, match="ensemble"):
        ModelDenoiser(object(), 0)
    with pytest.raises(TypeError, match="fn"):
        FunctionDenoiser(None, np.eye(2), "ve", 0.01)
