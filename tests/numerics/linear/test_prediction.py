"""The linear theories bound to a budget P (gtv.numerics.linear.prediction).

Checks: both bound theories implement the theory contract; the first order equals the
per-call methods of :class:`LinearTheory` to the last digit, the second order those of
:class:`SecondOrderMoments` (mean and variance at query points); the white-noise coefficients
reproduce the mean score and the Markov intensity; the Gaussian fields have the predicted weight
moments and draw from the documented streams; save/load round trips.
"""

import numpy as np
import pytest

from gtv.numerics.contract import EnsembleTheory, FieldEnsemble
from gtv.numerics.features import ProductFeatures
from gtv.numerics.linear import (
    FirstOrderLinear,
    LinearField,
    SecondOrderLinear,
    linear_model_theory,
    sample_linear_ensemble,
    second_order_moments,
)
from gtv.numerics.pfode import initial_points
from gtv.numerics.schedules import get_schedule

DATA = np.array([[-1.0], [0.0], [1.0]])
EPS = 1e-2
P = 400
X = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])


@pytest.fixture(scope="module")
def theory():
    sched = get_schedule("vp-linear")
    feats = ProductFeatures.uniform("gaussian", 1, 5, 4, (EPS, sched.T))
    return linear_model_theory(DATA, feats, EPS, sched)


@pytest.fixture(scope="module")
def moments(theory):
    return second_order_moments(theory)


# -- the contract -------------------------------------------------------------------------------
def test_first_order_implements_the_contract_and_equals_the_per_call_methods(theory):
    b = FirstOrderLinear(theory, P)
    assert isinstance(b, EnsembleTheory) and not isinstance(theory, EnsembleTheory)
    assert b.P == P and b.eps == EPS and b.dim == 1 and b.data is theory.data
    z, z2 = (X, 0.1), (X[::-1], np.linspace(0.02, 0.9, X.size))
    eq = np.testing.assert_array_equal
    eq(b.mean_denoiser(X, 0.1), theory.mean_denoiser(X, 0.1))
    eq(b.mean_score(X, 0.1), theory.mean_score(X, 0.1))
    eq(b.score_factor(np.array([0.1, 0.5])), theory.score_factor(np.array([0.1, 0.5])))
    for part in ("total", "proxy", "misfit"):
        for paired in (False, True):
            eq(
                b.denoiser_covariance(z, z2, part=part, paired=paired),
                theory.denoiser_covariance(z, z2, P, part, paired),
            )
            eq(b.v_kernel(z, z2, part=part, paired=paired), theory.v_kernel(z, z2, P, part, paired))
        eq(b.markov_intensity(X, 0.1, part=part), theory.markov_intensity(X, 0.1, P, part))
    W, C = b.weight_moments()
    eq(W, theory.W_inf)
    eq(C, theory.cov_W(P))


def test_second_order_implements_the_contract_and_equals_the_moments(theory, moments):
    b = SecondOrderLinear(theory, moments, P)
    assert isinstance(b, EnsembleTheory)
    for t in (0.02, 0.3):
        corr, v1, v2 = moments.denoiser_moments((X, t), P)
        np.testing.assert_array_equal(b.mean_denoiser(X, t), theory.mean_denoiser(X, t) + corr)
        np.testing.assert_array_equal(b.denoiser_covariance((X, t), paired=True), v1 + v2)
        # the same variance from the weight moments (all pairs): equal up to round-off
        full = b.denoiser_covariance((X, t))[:, :, 0, 0]
        np.testing.assert_allclose(np.diagonal(full), (v1 + v2)[:, 0, 0], rtol=1e-10)
        s = theory.schedule
        score = s.score_mean_coeff(t) * b.mean_denoiser(X, t)[:, 0] - s.inv_sigma2(t) * X
        np.testing.assert_allclose(b.mean_score(X, t)[:, 0], score, rtol=1e-14, atol=1e-12)
        c = theory.score_factor(np.full(X.size, t))
        np.testing.assert_allclose(
            b.v_kernel((X, t), paired=True)[:, 0, 0], c * c * (v1 + v2)[:, 0, 0], rtol=1e-14
        )
    dW, C2 = moments.weight_moments(P)
    W, C = b.weight_moments()
    np.testing.assert_array_equal(W, theory.W_inf + dW)
    np.testing.assert_array_equal(C, theory.cov_W(P) + C2)
    with pytest.raises(ValueError, match="part"):
        b.denoiser_covariance((X, 0.1), part="proxy")


def test_second_order_markov_intensity_is_the_lag_integral_of_its_covariance(theory, moments):
    """``Q(x, t) = int_eps^T V(x, t; x, t') dt'`` on the theory's own time rule, for the
    second-order covariance (all pairs through the weight moments)."""
    b = SecondOrderLinear(theory, moments, P)
    x = np.array([-0.7, 0.2, 1.1])
    t = 0.15
    w = theory.t_weights * (theory.schedule.T - theory.eps)
    q = np.zeros(x.size)
    for tk, wk in zip(theory.t_nodes, w, strict=True):
        q += wk * b.v_kernel((x, t), (x, np.full(x.size, tk)), paired=True)[:, 0, 0]
    np.testing.assert_allclose(b.markov_intensity(x, t)[:, 0, 0], q, rtol=1e-10)


@pytest.mark.parametrize("order", [1, 2])
def test_white_noise_coefficients_reproduce_the_theory(theory, moments, order):
    b = FirstOrderLinear(theory, P) if order == 1 else SecondOrderLinear(theory, moments, P)
    mean_score, intensity = b.white_noise_coefficients()
    x = np.linspace(-3, 3, 41)[:, None]
    for t in (0.011, 0.3, 0.95):
        q_ref = b.markov_intensity(x, t)[:, 0, 0]
        np.testing.assert_allclose(intensity(x, t), q_ref, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(mean_score(x, t), b.mean_score(x, t), rtol=1e-12, atol=1e-12)


def test_bad_arguments(theory, moments):
    with pytest.raises(TypeError, match="LinearTheory"):
        FirstOrderLinear("theory", P)
    with pytest.raises(ValueError, match="P"):
        FirstOrderLinear(theory, None)
    with pytest.raises(TypeError, match="SecondOrderMoments"):
        SecondOrderLinear(theory, "moments", P)
    other = linear_model_theory(
        DATA, ProductFeatures.uniform("gaussian", 1, 4, 4, (EPS, 1.0)), EPS, "vp-linear"
    )
    with pytest.raises(ValueError, match="moments"):
        SecondOrderLinear(other, moments, P)


# -- Gaussian fields ----------------------------------------------------------------------------
def test_gaussian_field_weights_have_the_predicted_covariance(theory):
    n = 4000
    gf = FirstOrderLinear(theory, P).gaussian_field(n, seed=1)
    assert isinstance(gf, LinearField) and isinstance(gf, FieldEnsemble)
    assert gf.W.shape == (n, 1, theory.n_features) and gf.n_models == n and gf.dim == 1
    ens = gf.ensemble
    assert ens.features is theory.features and ens.eps == theory.eps and ens.n_samples == P
    v = gf.W[:, 0, :]  # D = 1: vec W = W[0]
    C = theory.cov_W(P)
    emp = np.cov(v, rowvar=False)
    # E||C^ - C||_F^2 = (||C||_F^2 + tr(C)^2) / n for Gaussian vectors: <= sqrt(21/n) = 0.07 here
    assert np.linalg.norm(emp - C) / np.linalg.norm(C) < 0.15
    assert np.allclose(v.mean(0), theory.W_inf[0], atol=4 * np.sqrt(np.diag(C) / n).max())


def test_gaussian_field_reproduces_predicted_denoiser_variance(theory):
    n = 4000
    b = FirstOrderLinear(theory, P)
    gf = b.gaussian_field(n, seed=2)
    for t in (0.02, 0.1, 0.5):
        emp = gf.denoise(X[:, None], t)[:, :, 0].var(axis=0, ddof=1)
        pred = b.denoiser_covariance((X, t), paired=True)[:, 0, 0]
        # sd of a variance ratio with n Gaussian draws: sqrt(2 / n) = 0.022
        assert np.all(np.abs(emp / pred - 1) < 0.12), (t, emp / pred)


def test_gaussian_field_streams(theory):
    """Weights: :meth:`LinearTheory.sample_weights` (stream ``"field"``); start points: stream
    ``"field-sampling"``; the first members of a larger field are the same members."""
    b = FirstOrderLinear(theory, P)
    gf = b.gaussian_field(6, seed=3)
    np.testing.assert_array_equal(gf.W, theory.sample_weights(P, 6, seed=3))
    np.testing.assert_array_equal(b.gaussian_field(2, seed=3).W, gf.W[:2])
    x_T = initial_points(None, 3, 6, 50, 1, theory.schedule, stream="field-sampling")
    np.testing.assert_array_equal(
        gf.sample(50, seed=3), sample_linear_ensemble(gf.ensemble, 50, x_T=x_T)
    )
    assert not np.array_equal(gf.sample(50, seed=3), sample_linear_ensemble(gf.ensemble, 50))


def test_gaussian_field_takes_explicit_start_points(theory):
    """``x_T`` replaces the random start points (the seed is then unused); with ``models`` row
    ``r`` is carried by member ``models[r]`` -- what transporting the field needs
    (gtv.validation.predictions, density="transport")."""
    gf = FirstOrderLinear(theory, P).gaussian_field(5, seed=3)
    x_T = np.linspace(-3.0, 3.0, 5 * 40).reshape(5, 40, 1)
    own = gf.sample(40, x_T=x_T, seed=123)
    np.testing.assert_array_equal(own, sample_linear_ensemble(gf.ensemble, 40, x_T=x_T))
    np.testing.assert_array_equal(own, gf.sample(40, x_T=x_T, seed=0))
    models = np.array([4, 0, 4, 2])
    rows = gf.sample(40, x_T=x_T[models], models=models)
    np.testing.assert_array_equal(rows, own[models])
    # models without start points is an error, not a silent random draw
    with pytest.raises(ValueError, match="x_T"):
        gf.sample(40, models=models)


def test_second_order_gaussian_field_has_the_second_order_moments(theory, moments):
    n, P2 = 6000, 150  # small P: the second-order part is a visible share of Cov W
    b = SecondOrderLinear(theory, moments, P2)
    dW, C2 = moments.weight_moments(P2)
    C = theory.cov_W(P2) + C2
    assert np.linalg.norm(C2) > 0.1 * np.linalg.norm(theory.cov_W(P2))
    v = b.gaussian_field(n, seed=2).W[:, 0, :]
    emp = np.cov(v, rowvar=False)
    # Frobenius error of a Gaussian sample covariance: sqrt((|C|^2 + tr(C)^2)/n) relative
    bound = 4 * np.sqrt((np.linalg.norm(C) ** 2 + np.trace(C) ** 2) / n) / np.linalg.norm(C)
    assert np.linalg.norm(emp - C) / np.linalg.norm(C) < bound
    assert np.linalg.norm(emp - theory.cov_W(P2)) / np.linalg.norm(C) > bound  # C2 is visible
    se = np.sqrt(np.diag(C) / n)
    assert np.all(np.abs(v.mean(0) - (theory.W_inf[0] + dW[0])) < 4.5 * se)
    # the second-order draws go through the same sampler as the first order, same streams
    np.testing.assert_array_equal(
        v[:3], theory.sample_weights(P2, 3, seed=2, mean_shift=dW, extra_cov=C2)[:, 0, :]
    )
    first = FirstOrderLinear(theory, P2).gaussian_field(3, seed=2)
    assert not np.allclose(first.W[:, 0, :], v[:3])
    with pytest.raises(ValueError, match="n_models"):
        b.gaussian_field(0)


# -- persistence --------------------------------------------------------------------------------
def test_save_load_round_trip(theory, moments, tmp_path):
    b1 = FirstOrderLinear(theory, P)
    back1 = FirstOrderLinear.load(b1.save(tmp_path / "first"))
    assert back1.P == P and back1.config() == b1.config()
    np.testing.assert_array_equal(
        back1.denoiser_covariance((X, 0.1)), b1.denoiser_covariance((X, 0.1))
    )
    b2 = SecondOrderLinear(theory, moments, P)
    path = b2.save(tmp_path / "second")
    assert (tmp_path / "second_theory.npz").exists() and (tmp_path / "second_moments.npz").exists()
    back2 = SecondOrderLinear.load(path)
    np.testing.assert_array_equal(back2.mean_denoiser(X, 0.1), b2.mean_denoiser(X, 0.1))
    with pytest.raises(ValueError, match="SecondOrderLinear"):
        SecondOrderLinear.load(b1.save(tmp_path / "other"))
