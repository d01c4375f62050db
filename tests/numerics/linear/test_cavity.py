"""The cavity (finite-P) moments of linear ensembles (gtv.numerics.linear.cavity)."""

from __future__ import annotations

import numpy as np
import pytest

from gtv.numerics.contract import EnsembleTheory
from gtv.numerics.features import ProductFeatures
from gtv.numerics.linear import (
    CavityLinear,
    CavityMoments,
    cavity_moments,
    linear_model_theory,
    population_nodes,
    sample_cavity_weights,
    second_order_moments,
    train_linear_ensemble,
)

DATA = np.array([[-1.0], [0.0], [1.0]])


@pytest.fixture(scope="module")
def small():
    feats = ProductFeatures.uniform("gaussian", 1, 3, 3, (0.01, 1.0), (-1.5, 1.5))
    th = linear_model_theory(DATA, feats, 0.01, n_t=6, n_hermite=40)
    return th, population_nodes(th)


@pytest.fixture(scope="module")
def medium():
    feats = ProductFeatures.uniform("gaussian", 1, 4, 4, (0.01, 1.0), (-1.5, 1.5))
    th = linear_model_theory(DATA, feats, 0.01)
    return th, population_nodes(th)


def test_nodes_reproduce_the_population_moments(small):
    """The cavity solver's node set integrates Sigma and A as the first-order quadrature does."""
    th, nodes = small
    phi = nodes.full_features()
    wp = (nodes.w[:, None] * nodes.prob).ravel()
    np.testing.assert_allclose((phi * wp[:, None]).T @ phi, th.sigma, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose((wp * nodes.mu.ravel()) @ phi, th.A[0], rtol=1e-8, atol=1e-10)
    assert abs(nodes.prob.sum() - 1) < 1e-12


@pytest.mark.parametrize("P", [4, 16, 1000])
def test_product_solver_matches_full_reference(small, P):
    th, nodes = small
    a = cavity_moments(th, P, nodes=nodes)
    b = cavity_moments(th, P, nodes=nodes, backend="full")
    np.testing.assert_allclose(a.W_bar, b.W_bar, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(a.cov_W, b.cov_W, rtol=1e-9, atol=1e-13 * np.abs(b.cov_W).max())
    np.testing.assert_allclose(a.M, b.M, rtol=1e-10, atol=1e-13)


def test_fixed_point_equations_hold(small):
    """Independent check of the solution: plug it back into the three equations."""
    th, nodes = small
    P = 8
    m = cavity_moments(th, P, nodes=nodes)
    phi = nodes.full_features()
    w = np.broadcast_to(nodes.w[:, None], nodes.prob.shape).ravel()
    prob = nodes.prob.ravel()
    Mi = np.linalg.inv(m.M)
    q = w * np.einsum("nf,fg,ng->n", phi, Mi, phi) / P
    Sq = (phi * (prob * w / (1 + q))[:, None]).T @ phi
    M = th.ridge * np.eye(phi.shape[1]) + Sq - th.ridge / P * (Sq @ Mi + Mi @ Sq) / 2
    np.testing.assert_allclose(M, m.M, rtol=1e-8, atol=1e-10)
    W = ((prob * w * nodes.mu.ravel() / (1 + q)) @ phi) @ Mi
    np.testing.assert_allclose(W, m.W_bar[0], rtol=1e-8, atol=1e-12)
    c = nodes.s2.ravel() + (nodes.mu.ravel() - phi @ W) ** 2
    v = np.einsum("nf,fg,ng->n", phi, m.cov_W, phi)
    K = (phi * (prob * w**2 * (c + v) / (1 + q) ** 2)[:, None]).T @ phi
    eg = W @ (M - Sq)
    C = Mi @ (K - np.outer(eg, eg)) @ Mi / P
    np.testing.assert_allclose(C, m.cov_W, rtol=1e-7, atol=1e-9 * np.abs(C).max())
    assert m.q_max > 1  # at P = 8 the early-time triples saturate


def test_large_P_reduces_to_first_and_second_order(small):
    """As P -> inf: W_bar -> W_inf, P Cov -> P Cov_1, and P (W_bar - W_inf) -> the second-order
    mean shift (exact at O(1/P), see gtv.theory.deterministic_equivalent)."""
    th, nodes = small
    so = second_order_moments(th)
    errs = []
    for P in (1e4, 1e5, 1e6):
        m = cavity_moments(th, P, nodes=nodes)
        dW, _ = so.weight_moments(P)
        errs.append(np.abs(P * (m.W_bar - th.W_inf) - P * dW).max() / np.abs(P * dW).max())
        rel = np.abs(m.cov_W - th.cov_W(P)).max() / np.abs(th.cov_W(P)).max()
        assert rel < 2e3 / P
    assert errs[-1] < 1e-4
    assert errs[0] / errs[-1] > 50  # the residual falls like 1/P


def test_variance_beats_first_order_against_trained(medium):
    """At F/P = 1 (F = 16, P = 16) the cavity variance is far closer to a trained ensemble than
    the first-order one (measured medians 0.1-0.2 vs 0.6-0.8; the bound leaves room for the
    Monte Carlo error of 4000 models)."""
    th, nodes = medium
    P = 16
    m = cavity_moments(th, P, nodes=nodes)
    ens = train_linear_ensemble(
        DATA, th.features, 4000, P, 0.01, ridge=th.ridge, seed=3, keep_normal_equations=False
    )
    x = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    ratios = {"cavity": [], "first": []}
    for t in (0.05, 0.2, 0.5):
        emp = ens.denoise(x[:, None], t)[:, :, 0].var(axis=0, ddof=1)
        phi = th.features.evaluate(x[:, None], t)
        ratios["cavity"] += list(np.einsum("nf,fg,ng->n", phi, m.cov_W, phi) / emp)
        ratios["first"] += list(np.einsum("nf,fg,ng->n", phi, th.cov_W(P), phi) / emp)
    med = {k: float(np.median(np.abs(np.array(v) - 1))) for k, v in ratios.items()}
    assert med["cavity"] < 0.3
    assert med["first"] > 2 * med["cavity"]


def test_cavity_field_has_the_cavity_moments(small):
    """Mean and covariance of the sampled cavity field are W_bar and cov_W: z-scores of the mean
    and a chi-square-free check of the variances (4000 members; |z| < 4.5 has a false-positive
    rate below 1e-4 over the 9 components)."""
    th, nodes = small
    m = cavity_moments(th, 8, nodes=nodes)
    W = sample_cavity_weights(th, m, 4000, seed=0)[:, 0]
    se = np.sqrt(np.diag(m.cov_W) / W.shape[0])
    assert np.abs((W.mean(axis=0) - m.W_bar[0]) / se).max() < 4.5
    ratio = W.var(axis=0, ddof=1) / np.diag(m.cov_W)
    assert np.all(np.abs(ratio - 1) < 0.25)
    # a heavy-tailed (not Gaussian) field: some component has large excess kurtosis
    k = ((W - W.mean(0)) ** 4).mean(0) / W.var(0) ** 2 - 3
    assert k.max() > 1.0


def test_bound_theory_contract_and_persistence(small, tmp_path):
    th, nodes = small
    m = cavity_moments(th, 8, nodes=nodes)
    for field in ("gaussian", "cavity"):
        bt = CavityLinear(th, m, field)
        assert isinstance(bt, EnsembleTheory)
        x = np.array([-0.5, 0.25])
        phi = th.features.evaluate(x[:, None], 0.1)
        np.testing.assert_allclose(bt.mean_denoiser(x, 0.1)[:, 0], phi @ m.W_bar[0])
        cov = bt.denoiser_covariance((x, 0.1), paired=True)[:, 0, 0]
        np.testing.assert_allclose(cov, np.einsum("nf,fg,ng->n", phi, m.cov_W, phi))
        full = bt.denoiser_covariance((x, 0.1))[:, :, 0, 0]
        np.testing.assert_allclose(np.diag(full), cov)
        W = bt.gaussian_field(6, seed=2).W
        assert W.shape == (6, 1, th.n_features)
        path = bt.save(tmp_path / f"cav_{field}")
        back = CavityLinear.load(path)
        assert back.field == field and back.P == bt.P
        np.testing.assert_array_equal(back.moments.cov_W, m.cov_W)
        np.testing.assert_array_equal(back.gaussian_field(6, seed=2).W, W)
    q = CavityLinear(th, m).markov_intensity(np.array([0.0]), 0.3)
    assert q.shape == (1, 1, 1) and np.isfinite(q).all()


def test_bad_input(small):
    th, nodes = small
    with pytest.raises(ValueError, match="P"):
        cavity_moments(th, 0)
    with pytest.raises(ValueError, match="backend"):
        cavity_moments(th, 4, backend="fast")
    with pytest.raises(ValueError, match="tol"):
        cavity_moments(th, 4, tol=2.0)
    with pytest.raises(TypeError, match="nodes"):
        cavity_moments(th, 4, nodes=np.zeros(3))
    m = cavity_moments(th, 4, nodes=nodes)
    with pytest.raises(ValueError, match="field"):
        CavityLinear(th, m, "student")
    with pytest.raises(ValueError, match="part"):
        CavityLinear(th, m).denoiser_covariance((np.zeros(1), 0.1), part="proxy")
    frac = CavityMoments(
        4.5, m.W_bar, m.cov_W, m.M, m.q_max, m.q_mean, m.iterations, m.mean_gradient
    )
    with pytest.raises(ValueError, match="integer"):
        sample_cavity_weights(th, frac, 2)
