"""The exact (noise-free) regression target of linear-feature training and its first-order theory.

``train_linear_ensemble(..., target="exact")`` replaces the DSM target ``x0`` by the posterior
mean ``mu_bar(x, t)`` at the same design points (gtv.numerics.linear.model); its first-order
theory is the misfit part of the covariance only (gtv.numerics.linear.exact_target). Checks:
the whole exact-target pipeline against a from-scratch numpy version (posterior mean by an
explicit softmax written here, the numpy reference of the normal equations); the numba and numpy
backends of the targets; identical design points under both targets; one training point (no
label noise at all: both targets coincide); argument validation; the bound theory's forwarding
and persistence; and (slow) the trained exact-target variance against the misfit-only
prediction, with the noisy-target prediction clearly excluded.
"""

import numpy as np
import pytest

from gtv.numerics.contract import EnsembleTheory
from gtv.numerics.features import ProductFeatures
from gtv.numerics.linear import FirstOrderLinear, linear_model_theory, train_linear_ensemble
from gtv.numerics.linear.exact_target import ExactTargetLinear
from gtv.numerics.linear.model import (
    TARGETS,
    normal_equations,
    normal_equations_reference,
    regression_targets,
)
from gtv.numerics.schedules import get_schedule
from gtv.numerics.streams import stream
from gtv.validation.stats import variance_ci

EPS, T = 0.01, 1.0
SCHED = get_schedule("vp-linear")


# Closed forms for vp-linear, written out here (independent of the generated schedule code).
def _alpha(t):
    return np.exp(-(0.1 * t + 19.9 * t * t / 2))


def _sigma2(t):
    return -np.expm1(-2 * (0.1 * t + 19.9 * t * t / 2))


def _lam(t):
    return _alpha(t) ** 2 / _sigma2(t)


def _draw(data, n_models, n_samples, seed, n):
    """Model n's triples by the documented protocol (times, data indices, noise)."""
    rng = np.random.default_rng(stream(seed, "training").spawn(n_models)[n])
    t = rng.uniform(EPS, T, n_samples)
    idx = rng.integers(0, data.shape[0], n_samples)
    xi = rng.standard_normal((n_samples, data.shape[1]))
    x0 = data[idx]
    return t, x0, _alpha(t)[:, None] * x0 + np.sqrt(_sigma2(t))[:, None] * xi


def _posterior_mean(data, x, t):
    """``sum_m w_m mu_m`` with ``w = softmax(-|x - alpha mu_m|**2 / (2 sigma**2))``, explicitly."""
    logits = -((x[:, None, :] - _alpha(t)[:, None, None] * data[None]) ** 2).sum(-1)
    logits = logits / (2 * _sigma2(t))[:, None]
    w = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (w / w.sum(axis=1, keepdims=True)) @ data


@pytest.mark.parametrize("kind,dim", [("gaussian", 1), ("fourier", 1), ("gaussian", 2)])
def test_exact_target_matches_numpy_implementation(kind, dim):
    """Exact target = the noisy-target pipeline with x0 replaced by the posterior mean."""
    data = np.random.default_rng(5).uniform(-1, 1, (4, dim))
    feats = ProductFeatures.uniform(kind, dim, 4, 3, (EPS, T))
    N, P, rho, seed = 3, 300, 0.1, 42
    ens = train_linear_ensemble(data, feats, N, P, EPS, ridge=rho, seed=seed, target="exact")
    assert ens.target == "exact" and ens.config()["target"] == "exact"
    for n in range(N):
        t, _, x = _draw(data, N, P, seed, n)
        mu_bar = _posterior_mean(data, x, t)
        G, B = normal_equations_reference(feats, t[None], mu_bar[None], x[None], _lam(t)[None])
        G = G[0] + rho * np.eye(feats.n_features)
        W = np.linalg.solve(G, B[0].T).T
        assert np.linalg.norm(ens.gram[n] - G) <= 1e-12 * np.linalg.norm(G)
        assert np.linalg.norm(ens.rhs[n] - B[0]) <= 1e-12 * np.linalg.norm(B[0])
        assert np.linalg.norm(ens.W[n] - W) <= 1e-10 * np.linalg.norm(W)


def test_targets_numba_matches_numpy_reference():
    """regression_targets and the normal equations with the exact target, numba vs numpy."""
    rng = np.random.default_rng(3)
    data = rng.uniform(-1, 1, (5, 2))
    t = rng.uniform(EPS, T, (3, 400))
    x = rng.normal(size=(3, 400, 2))
    x0 = data[rng.integers(0, 5, (3, 400))]
    a = regression_targets(data, t, x0, x, SCHED, "exact", backend="numba")
    b = regression_targets(data, t, x0, x, SCHED, "exact", backend="numpy")
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    # The explicit softmax of this file (an independent third implementation).
    expl = np.stack([_posterior_mean(data, x[n], t[n]) for n in range(3)])
    np.testing.assert_allclose(b, expl, rtol=0, atol=1e-12)
    assert regression_targets(data, t, x0, x, SCHED, "noisy") is x0
    feats = ProductFeatures.uniform("gaussian", 2, 3, 3, (EPS, T))
    g1, r1 = normal_equations(feats, t, a, x, _lam(t))
    g2, r2 = normal_equations_reference(feats, t, b, x, _lam(t))
    np.testing.assert_allclose(g1, g2, rtol=1e-11, atol=1e-14 * np.abs(g2).max())
    np.testing.assert_allclose(r1, r2, rtol=1e-11, atol=1e-12 * np.abs(r2).max())


def test_same_design_points_under_both_targets():
    """Model n sees the same (x_j, t_j): Sigma_P is bit-identical, only A_P differs."""
    data = np.array([[-1.0], [0.0], [1.0]])
    feats = ProductFeatures.uniform("gaussian", 1, 5, 4, (EPS, T))
    noisy = train_linear_ensemble(data, feats, 5, 200, EPS, seed=7)
    exact = train_linear_ensemble(data, feats, 5, 200, EPS, seed=7, target="exact")
    np.testing.assert_array_equal(noisy.gram, exact.gram)
    assert np.all(np.abs(noisy.rhs - exact.rhs).max(axis=(1, 2)) > 1e-3)
    default = train_linear_ensemble(data, feats, 5, 200, EPS, seed=7, target="noisy")
    np.testing.assert_array_equal(default.W, noisy.W)
    assert noisy.target == "noisy" and noisy.config()["target"] == "noisy"


def test_one_training_point_has_no_label_noise():
    """With M = 1, x0 = mu_bar = the point: both targets give the same weights."""
    data = np.array([[0.3, -0.2]])
    feats = ProductFeatures.uniform("gaussian", 2, 3, 3, (EPS, T))
    a = train_linear_ensemble(data, feats, 3, 150, EPS, seed=1)
    b = train_linear_ensemble(data, feats, 3, 150, EPS, seed=1, target="exact")
    np.testing.assert_allclose(a.W, b.W, rtol=1e-13, atol=1e-13 * np.abs(a.W).max())


@pytest.mark.parametrize("bad", ["Exact", "posterior", None, 1])
def test_bad_target_raises(bad):
    data = np.array([[-1.0], [1.0]])
    feats = ProductFeatures.uniform("gaussian", 1, 3, 2, (EPS, T))
    with pytest.raises(ValueError, match="target"):
        train_linear_ensemble(data, feats, 2, 10, EPS, target=bad)
    with pytest.raises(ValueError, match="target"):
        regression_targets(data, np.ones((1, 2)), np.ones((1, 2, 1)), np.ones((1, 2, 1)), SCHED,
                           bad)  # fmt: skip
    assert TARGETS == ("noisy", "exact")


# -- the bound theory ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_theory():
    data = np.array([[-1.0], [0.0], [1.0]])
    feats = ProductFeatures.uniform("gaussian", 1, 4, 3, (EPS, T))
    return linear_model_theory(data, feats, EPS)


def test_exact_target_theory_is_the_misfit_part(small_theory, tmp_path):
    th = ExactTargetLinear(small_theory, 500)
    noisy = FirstOrderLinear(small_theory, 500)
    assert isinstance(th, EnsembleTheory)
    x, t = np.array([-1.0, 0.0, 0.4]), 0.2
    cov = th.denoiser_covariance((x, t), paired=True)
    np.testing.assert_array_equal(
        cov, small_theory.denoiser_covariance((x, t), None, 500, "misfit", True)
    )
    np.testing.assert_array_equal(th.denoiser_covariance((x, t), part="misfit", paired=True), cov)
    # total = proxy + misfit for the noisy target; the proxy part is strictly positive here.
    assert np.all(noisy.denoiser_covariance((x, t), paired=True) > cov)
    np.testing.assert_array_equal(th.mean_denoiser(x, t), noisy.mean_denoiser(x, t))
    np.testing.assert_array_equal(
        th.markov_intensity(x, t), small_theory.markov_intensity(x, t, 500, "misfit")
    )
    np.testing.assert_array_equal(th.weight_moments()[1], small_theory.cov_W(500, "misfit"))
    with pytest.raises(ValueError, match="part"):
        th.denoiser_covariance((x, t), part="proxy")
    # The Gaussian field draws with the misfit covariance (the same streams as the noisy one).
    W = th.gaussian_field(4000, seed=3).W[:, 0, :]
    C = th.weight_moments()[1]
    emp = np.cov(W.T)
    scale = np.sqrt(np.outer(np.diag(C), np.diag(C)))
    # 4000 draws: sampling error of a covariance entry ~ sqrt(2/4000) ~ 0.022 of its scale.
    assert np.abs(emp - C).max() <= 0.12 * scale.max()
    back = ExactTargetLinear.load(th.save(tmp_path / "exact"))
    assert type(back) is ExactTargetLinear and back.config() == th.config()
    np.testing.assert_array_equal(back.denoiser_covariance((x, t), paired=True), cov)
    with pytest.raises(ValueError):
        FirstOrderLinear.load(tmp_path / "exact.npz")


@pytest.mark.slow
def test_trained_exact_target_variance_matches_misfit_theory():
    """F = 4 x 4, P = 8000, N = 2000 (~40 s). At 6 query points (t = 0.1, 0.5, where the
    label-noise part is 40-400 % of the misfit part), the 99 % percentile bootstrap CI of the
    exact-target ensemble's Var D^ must contain the misfit-only prediction and lie below the
    total (noisy-target) prediction; the noisy ensemble's CI must contain the total prediction.
    False-positive rate for a correct first-order theory <= 12 * 1 % (Bonferroni), plus the
    O(1/P**2) bias, about 1 % of the variance at these points at P = 8000 (docs/math/linear.md).
    """
    data = np.array([[-1.0], [0.0], [1.0]])
    feats = ProductFeatures.uniform("gaussian", 1, 4, 4, (EPS, T), (-1.5, 1.5))
    P, N = 8000, 2000
    theory = linear_model_theory(data, feats, EPS)
    exact_th, noisy_th = ExactTargetLinear(theory, P), FirstOrderLinear(theory, P)
    ens = {
        tg: train_linear_ensemble(data, feats, N, P, EPS, seed=0, target=tg,
                                  keep_normal_equations=False)
        for tg in ("noisy", "exact")
    }  # fmt: skip
    rng = np.random.default_rng(stream(0, "bootstrap", 1))
    qx = np.array([-0.5, 0.0, 0.5])
    for t in (0.1, 0.5):
        pe = exact_th.denoiser_covariance((qx, t), paired=True)[:, 0, 0]
        pn = noisy_th.denoiser_covariance((qx, t), paired=True)[:, 0, 0]
        assert np.all(pn > 1.3 * pe)  # the two predictions are clearly apart
        _, lo, hi = variance_ci(ens["exact"].denoise(qx[:, None], t)[:, :, 0], 2000, rng, 0.99)
        assert np.all((lo <= pe) & (pe <= hi)), (t, lo, pe, hi)
        assert np.all(hi < pn), (t, hi, pn)
        _, lo, hi = variance_ci(ens["noisy"].denoise(qx[:, None], t)[:, :, 0], 2000, rng, 0.99)
        assert np.all((lo <= pn) & (pn <= hi)), (t, lo, pn, hi)
