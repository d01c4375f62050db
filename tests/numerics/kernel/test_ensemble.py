"""Ensembles of lazy infinite-width networks (gtv.numerics.kernel.ensemble, .sampler).

Checks: per-model streams, save/load, the PF-ODE sampler (numba = numpy reference, thread-count
invariance), shared centres (Gaussian-field ensembles) equal per-model copies.
"""

import numba
import numpy as np
import pytest

from gtv.numerics.dsm import draw_dsm_triples
from gtv.numerics.kernel import (
    KernelEnsemble,
    fit_kernel_regression,
    ntk_inputs,
    train_kernel_ensemble,
)
from gtv.numerics.schedules import get_schedule
from gtv.numerics.streams import model_rngs

SCHED = get_schedule("vp-linear")
DATA = np.array([[-1.0], [0.0], [1.0]])
EPS = 0.05


def _inputs(rng, n, D=1):
    x = rng.normal(size=(n, D))
    t = rng.uniform(EPS, 1.0, n)
    return ntk_inputs(x, t, EPS, SCHED)


# -- ensembles ----------------------------------------------------------------------------------
def test_ensemble_models_use_their_own_streams_and_round_trip(tmp_path):
    taus = np.array([0.5, 5.0, np.inf])
    ens = train_kernel_ensemble(DATA, 20, 3, EPS, taus, activation="erf", ridge=0.01, seed=7)
    rng = model_rngs(7, "training", 3)[2]
    t, x0, x = draw_dsm_triples(rng, DATA, 20, EPS, SCHED)
    m = fit_kernel_regression(ntk_inputs(x, t, EPS, SCHED), x0, SCHED.dsm_weight(t), "erf", 0.01)
    np.testing.assert_array_equal(ens.coeffs[2], m.coefficients(taus))
    xq = np.array([-0.5, 0.2])
    np.testing.assert_allclose(
        ens.denoiser(xq, 0.3, 5.0)[2], m.predict(ntk_inputs(xq, 0.3, EPS, SCHED), 5.0)
    )
    path = ens.save(tmp_path / "ens")
    back = KernelEnsemble.load(path)
    np.testing.assert_array_equal(back.coeffs, ens.coeffs)
    assert back.config == ens.config and back.activation == "erf"
    np.testing.assert_array_equal(back.denoiser(xq, 0.3, np.inf), ens.denoiser(xq, 0.3, np.inf))
    with pytest.raises(ValueError, match="tau"):
        ens.denoiser(xq, 0.3, 1.0)


@pytest.mark.parametrize("method", ["euler", "heun"])
def test_pf_ode_sampler_matches_reference_and_thread_count(method):
    ens = train_kernel_ensemble(DATA, 15, 3, EPS, [2.0], seed=1)
    x_T = np.random.default_rng(2).standard_normal((3, 7, 1))
    got = ens.sample(7, n_steps=12, method=method, x_T=x_T)
    ref = ens.sample(7, n_steps=12, method=method, x_T=x_T, backend="numpy")
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
    nt = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        a = ens.sample(7, n_steps=12, method=method, seed=3)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        b = ens.sample(7, n_steps=12, method=method, seed=3)
    finally:
        numba.set_num_threads(nt)
    assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="method"):
        ens.sample(3, method="rk4")


def test_shared_centres_equal_per_model_copies():
    """A Gaussian-field-style ensemble stores one set of centres; denoiser and sampler give the
    same numbers as the same ensemble with the centres copied per model."""
    rng = np.random.default_rng(8)
    centres = _inputs(rng, 12)
    coeffs = rng.normal(size=(4, 1, 12, 1))
    shared = KernelEnsemble(centres[None], coeffs, [3.0], "relu", DATA, SCHED, EPS)
    copied = KernelEnsemble(np.repeat(centres[None], 4, 0), coeffs, [3.0], "relu", DATA, SCHED, EPS)
    assert shared.shared_centres and not copied.shared_centres and shared.n_models == 4
    xq = np.array([-0.3, 0.8])
    np.testing.assert_allclose(shared.denoiser(xq, 0.4), copied.denoiser(xq, 0.4), rtol=1e-14)
    a = shared.sample(5, n_steps=6, seed=2)
    np.testing.assert_array_equal(a, copied.sample(5, n_steps=6, seed=2))
    x_T = rng.standard_normal((4, 5, 1))
    np.testing.assert_allclose(
        shared.sample(5, n_steps=6, x_T=x_T),
        shared.sample(5, n_steps=6, x_T=x_T, backend="numpy"),
        rtol=1e-12,
        atol=1e-12,
    )
    with pytest.raises(ValueError, match="centres"):
        KernelEnsemble(np.repeat(centres[None], 3, 0), coeffs, [3.0], "relu", DATA, SCHED, EPS)


def test_rows_carried_by_the_given_models_equal_each_model_alone():
    """``sample(..., x_T (R, S, 1), models)``: row r is model ``models[r]``, bit for bit the
    same as that model sampled alone (per-model and shared centres), and the numpy backend
    agrees; ``seed`` gives the start points of stream ``"sampling"`` (the Monte Carlo path)."""
    rng = np.random.default_rng(5)
    per_model = train_kernel_ensemble(DATA, 15, 3, EPS, [2.0, 8.0], activation="erf", seed=1)
    centres = _inputs(rng, 12)
    shared = KernelEnsemble(centres[None], rng.normal(size=(3, 1, 12, 1)), [3.0], "relu", DATA,
                            SCHED, EPS)  # fmt: skip
    models = np.array([1, 1, 0, 2])
    x_T = rng.standard_normal((4, 9, 1))
    for ens, tau in ((per_model, 8.0), (shared, 3.0)):
        got = ens.sample(9, tau, n_steps=10, x_T=x_T, models=models)
        k = ens.tau_index(tau)
        for r, m in enumerate(models):
            alone = KernelEnsemble(
                ens.centres[min(m, ens.centres.shape[0] - 1)][None],
                ens.coeffs[m : m + 1, k : k + 1], [tau], ens.activation, DATA, SCHED, EPS,
            )  # fmt: skip
            np.testing.assert_array_equal(
                got[r], alone.sample(9, n_steps=10, x_T=x_T[r : r + 1])[0]
            )
        ref = ens.sample(9, tau, n_steps=10, x_T=x_T, models=models, backend="numpy")
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
    sigma_T = np.sqrt(SCHED.sigma2(1.0))
    x0 = np.stack([sigma_T * g.standard_normal((9, 1)) for g in model_rngs(4, "sampling", 3)])
    np.testing.assert_array_equal(
        per_model.sample(9, 2.0, seed=4), per_model.sample(9, 2.0, x_T=x0)
    )
    with pytest.raises(ValueError, match="models needs explicit start points"):
        per_model.sample(9, 2.0, models=models)
    with pytest.raises(ValueError, match=r"models must lie in \[0, 2\]"):
        per_model.sample(9, 2.0, x_T=x_T, models=np.array([0, 1, 3, 0]))
