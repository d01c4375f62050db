"""Training of binned affine denoisers on Gaussian data (gtv.numerics.binned_affine.ensemble).

The numba normal equations against their numpy reference and across thread counts; one model
rebuilt from its own DSM triples (the stream "training"); save/load and bad input
(docs/math/linear.md).
"""

from __future__ import annotations

import numba
import numpy as np
import pytest

from gtv.numerics.binned_affine import (
    BinnedAffineEnsemble,
    binned_affine_theory,
    binned_normal_equations,
    binned_normal_equations_reference,
    check_bin_edges,
    train_binned_affine_ensemble,
)
from gtv.numerics.dsm import draw_gaussian_dsm_triples
from gtv.numerics.schedules import get_schedule
from gtv.numerics.streams import model_rngs

LV = get_schedule("linear-variance", T=0.9)


EDGES = [0.01, 0.05, 0.2, 0.5, 0.9]


M, S2, RHO = 0.5, 0.25, 0.1


@pytest.fixture(scope="module")
def ensemble():
    return train_binned_affine_ensemble(M, S2, EDGES, 300, 200, LV, RHO, seed=4)


def test_normal_equations_numba_matches_numpy_and_threads():
    rng = np.random.default_rng(0)
    t = rng.uniform(0.01, 0.9, (7, 50))
    x0 = rng.normal(size=(7, 50))
    x = rng.normal(size=(7, 50))
    w = rng.uniform(0.5, 2.0, (7, 50))
    edges = check_bin_edges(EDGES, LV)
    ref = binned_normal_equations_reference(t, x0, x, w, edges)
    prev = numba.get_num_threads()
    try:
        for n in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(n)
            out = binned_normal_equations(t, x0, x, w, edges)
            for a, b in zip(out, ref, strict=True):
                np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
    finally:
        numba.set_num_threads(prev)
    assert ref[2].sum() == 7 * 50


def test_training_backends_agree_and_seed_reproducible(ensemble):
    ref = train_binned_affine_ensemble(M, S2, EDGES, 300, 200, LV, RHO, seed=4, backend="numpy")
    np.testing.assert_allclose(ensemble.theta, ref.theta, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(ensemble.counts, ref.counts)
    other = train_binned_affine_ensemble(M, S2, EDGES, 300, 200, LV, RHO, seed=5)
    assert not np.array_equal(other.theta, ensemble.theta)
    # Model n's draws depend only on its own stream: the first 10 models of a smaller ensemble
    # are the same models.
    small = train_binned_affine_ensemble(M, S2, EDGES, 10, 200, LV, RHO, seed=4)
    np.testing.assert_array_equal(small.theta, ensemble.theta[:10])


def test_one_model_is_a_per_bin_weighted_ridge_regression():
    """Model 0 rebuilt from its own DSM triples with np.linalg.solve per bin."""
    ens = train_binned_affine_ensemble(M, S2, EDGES, 3, 150, LV, RHO, seed=9)
    t, x0, x = draw_gaussian_dsm_triples(model_rngs(9, "training", 3)[0], M, S2, 150, 0.01, LV)
    w = LV.dsm_weight(t)
    for k in range(4):
        sel = (t >= EDGES[k]) & (t < EDGES[k + 1])
        phi = np.stack([np.ones(sel.sum()), x[sel]], axis=1)
        Sig = (phi * w[sel, None]).T @ phi / 150 + RHO * np.eye(2)
        A = (phi * (w[sel] * x0[sel])[:, None]).sum(0) / 150
        np.testing.assert_allclose(ens.theta[0, k], np.linalg.solve(Sig, A), rtol=1e-12)


def test_save_load_roundtrip(ensemble, tmp_path):
    path = ensemble.save(tmp_path / "ens")
    back = BinnedAffineEnsemble.load(path)
    np.testing.assert_array_equal(back.theta, ensemble.theta)
    np.testing.assert_array_equal(back.counts, ensemble.counts)
    assert back.config() == ensemble.config()


def test_bad_input():
    with pytest.raises(ValueError, match="bin_edges"):
        check_bin_edges([0.01, 0.5], LV)  # does not reach T
    with pytest.raises(ValueError, match="bin_edges"):
        check_bin_edges([0.01, 0.5, 0.3, 0.9], LV)  # not increasing
    with pytest.raises(ValueError, match="bin_edges"):
        check_bin_edges([0.0, 0.9], LV)  # eps = 0
    with pytest.raises(ValueError, match="bin_edges"):
        check_bin_edges([0.9], LV)
    with pytest.raises(ValueError, match="bin_edges"):
        train_binned_affine_ensemble(M, S2, [0.01, 0.5, 0.95], 2, 10, LV)
    with pytest.raises(ValueError, match="s2"):
        train_binned_affine_ensemble(M, -1.0, EDGES, 2, 10, LV)
    with pytest.raises(ValueError, match="ridge"):
        train_binned_affine_ensemble(M, S2, EDGES, 2, 10, LV, ridge=-0.1)
    with pytest.raises(ValueError, match="ridge"):  # ridge = 0 and a bin without triples
        train_binned_affine_ensemble(M, S2, EDGES, 2, 2, LV, ridge=0.0)
    with pytest.raises(ValueError, match="n_samples"):
        train_binned_affine_ensemble(M, S2, EDGES, 2, 0, LV)
    with pytest.raises(ValueError, match="P"):
        binned_affine_theory(M, S2, EDGES, LV).cov_theta(0)
    with pytest.raises(ValueError, match="s2"):
        binned_affine_theory(M, 0.0, EDGES, LV)
    with pytest.raises(ValueError, match="P: finite_sample"):
        binned_affine_theory(M, S2, EDGES, LV).cov_theta(50, finite_sample=True)
