"""PF-ODE sampling of two-layer network ensembles (gtv.numerics.two_layer.sampler).

Conventions: docs/math/conventions.md.

Checks: the compiled sampler against a numpy loop that builds its inputs through the public
``ntk_inputs`` path (Euler and Heun, both activations, D = 1 and 2, a final time other than the
training eps); the exact Euler product for networks that output 0 (antisymmetric init); the
seed protocol shared with the linear-model sampler; thread-count invariance; bad input.
"""

import numba
import numpy as np
import pytest

from gtv.numerics.schedules import get_schedule
from gtv.numerics.streams import model_rngs
from gtv.numerics.two_layer import (
    TwoLayerNetworks,
    sample_two_layer_ensemble,
    sample_two_layer_reference,
)

SCHED = get_schedule("vp-linear")


def _networks(seed, n_models, width, dim, activation, antisymmetric=False, scale=1.0):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((n_models, width, dim + 2))
    A = scale * rng.standard_normal((n_models, width, dim))
    if antisymmetric:
        h = width // 2
        W[:, h:] = W[:, :h]
        A[:, h:] = -A[:, :h]
    return TwoLayerNetworks(W, A, activation, SCHED, 0.01)


@pytest.mark.parametrize("activation", ["relu", "erf"])
@pytest.mark.parametrize("method", ["euler", "heun"])
@pytest.mark.parametrize("dim", [1, 2])
def test_sampler_matches_numpy_reference(activation, method, dim):
    nets = _networks(1, 3, 24, dim, activation, scale=0.5)
    a = sample_two_layer_ensemble(nets, 300, method=method, seed=4)  # 300 > one block (256)
    b = sample_two_layer_reference(nets, 300, method=method, seed=4)
    assert a.shape == (3, 300, dim)
    assert np.max(np.abs(a - b)) < 1e-12 * np.max(np.abs(b))
    c = sample_two_layer_ensemble(nets, 50, method=method, seed=4, eps=0.05, n_steps=12)
    d = sample_two_layer_reference(nets, 50, method=method, seed=4, eps=0.05, n_steps=12)
    assert np.max(np.abs(c - d)) < 1e-12 * np.max(np.abs(d))


def test_zero_denoiser_gives_the_euler_product():
    """D^ = 0 exactly: the PF-ODE is dx/dt = a_t x and Euler multiplies by prod(1 + dt a_k)."""
    nets = _networks(2, 2, 16, 2, "erf", antisymmetric=True)
    x_T = np.random.default_rng(3).standard_normal((2, 40, 2))
    ts = np.linspace(1.0, 0.01, 31)
    factor = np.prod(1 + np.diff(ts) * SCHED.pf_x_coeff(ts)[:-1])
    out = sample_two_layer_ensemble(nets, 40, x_T=x_T)
    np.testing.assert_allclose(out, factor * x_T, rtol=1e-12)


def test_seed_protocol_and_threads():
    nets = _networks(5, 3, 10, 1, "relu")
    sigma_T = np.sqrt(SCHED.sigma2(1.0))
    x_T = np.stack([sigma_T * r.standard_normal((100, 1)) for r in model_rngs(7, "sampling", 3)])
    a = sample_two_layer_ensemble(nets, 100, seed=7)
    np.testing.assert_array_equal(a, sample_two_layer_ensemble(nets, 100, x_T=x_T))
    assert np.mean(a != sample_two_layer_ensemble(nets, 100, seed=8)) > 0.9
    old = numba.get_num_threads()
    res = []
    try:
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            res.append(sample_two_layer_ensemble(nets, 700, seed=1, method="heun"))
    finally:
        numba.set_num_threads(old)
    np.testing.assert_array_equal(res[0], res[1])


def test_bad_input():
    nets = _networks(6, 2, 4, 1, "relu")
    with pytest.raises(ValueError, match="method"):
        sample_two_layer_ensemble(nets, 10, method="rk4")
    with pytest.raises(ValueError, match="n_samples"):
        sample_two_layer_ensemble(nets, 0)
    with pytest.raises(ValueError, match="x_T"):
        sample_two_layer_ensemble(nets, 10, x_T=np.zeros((2, 9, 1)))
    with pytest.raises(ValueError, match="x_T"):
        sample_two_layer_ensemble(nets, 1, x_T=np.full((2, 1, 1), np.inf))
    with pytest.raises(ValueError, match="eps"):
        sample_two_layer_ensemble(nets, 10, eps=2.0)
    with pytest.raises(TypeError, match="TwoLayerNetworks"):
        sample_two_layer_ensemble(nets.W, 10)


# -- explicit start points and row owners (transport, gtv.numerics.transport.transport_1d) ------
def test_rows_carried_by_the_given_models_equal_each_model_alone():
    """``x_T`` (R, S, 1) with ``models``: row r is model ``models[r]``'s sampler, bit for bit the
    same as that network sampled alone from the same points (a one-network ensemble); the numpy
    reference agrees; with ``models = arange(N)`` it is the plain call."""
    nets = _networks(9, 3, 24, 1, "erf", scale=0.5)
    models = np.array([2, 0, 2, 1, 0])
    x_T = np.random.default_rng(4).standard_normal((5, 300, 1))  # 300 > one block
    got = sample_two_layer_ensemble(nets, 300, x_T=x_T, models=models)
    assert got.shape == (5, 300, 1)
    for r, m in enumerate(models):
        alone = TwoLayerNetworks(nets.W[m : m + 1], nets.A[m : m + 1], "erf", SCHED, 0.01)
        np.testing.assert_array_equal(
            got[r], sample_two_layer_ensemble(alone, 300, x_T=x_T[r : r + 1])[0]
        )
    ref = sample_two_layer_reference(nets, 300, x_T=x_T, models=models)
    assert np.max(np.abs(got - ref)) < 1e-12 * np.max(np.abs(ref))
    x3 = x_T[:3]
    np.testing.assert_array_equal(
        sample_two_layer_ensemble(nets, 300, x_T=x3, models=np.arange(3)),
        sample_two_layer_ensemble(nets, 300, x_T=x3),
    )


def test_models_bad_input():
    nets = _networks(6, 2, 4, 1, "relu")
    x = np.zeros((3, 5, 1))
    with pytest.raises(ValueError, match="models needs explicit start points"):
        sample_two_layer_ensemble(nets, 5, models=np.array([0, 1]))
    with pytest.raises(ValueError, match=r"models must lie in \[0, 1\]"):
        sample_two_layer_ensemble(nets, 5, x_T=x, models=np.array([0, 2, 1]))
    with pytest.raises(ValueError, match="models must be a non-empty 1-D array"):
        sample_two_layer_ensemble(nets, 5, x_T=x, models=np.array([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="x_T"):  # 3 rows, 2 owners
        sample_two_layer_ensemble(nets, 5, x_T=x, models=np.array([0, 1]))
