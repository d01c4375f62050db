"""The fast path of the cavity moments (gtv.numerics.linear.cavity.prediction_moments).

Independent check throughout: the default solve (the theory's own quadrature, tol 1e-10,
``"safeguarded"`` mixing). The stated deviations are those of ``PREDICTION_RULE``.
"""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from gtv.numerics.features import ProductFeatures
from gtv.numerics.linear import (
    cavity_moments,
    cavity_moments_reference,
    linear_model_theory,
    population_nodes,
)
from gtv.numerics.linear.cavity import (
    PREDICTION_RULE,
    _symmetric_inverse,
    prediction_moments,
)
from gtv.numerics.linear.occupancy import occupancy_members, occupancy_split
from gtv.numerics.quadrature import HERMITE_PRUNE
from gtv.numerics.streams import model_rngs

DATA = np.array([[-1.0], [0.0], [1.0]])


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.fixture(scope="module")
def small():
    feats = ProductFeatures.uniform("gaussian", 1, 4, 4, (0.01, 1.0), (-1.5, 1.5))
    th = linear_model_theory(DATA, feats, 0.01)
    return th, population_nodes(th)


def test_node_rule_options(small):
    """``n_t`` rebuilds the theory's time rule when equal to it; the coarse rule still integrates
    the population ``Sigma`` (computed by the first-order quadrature) to 1e-6."""
    th, nodes = small
    same = population_nodes(th, n_t=th.n_t, prune=HERMITE_PRUNE)
    np.testing.assert_allclose(same.t, nodes.t, rtol=1e-14)
    np.testing.assert_allclose(same.prob, nodes.prob, rtol=1e-12, atol=1e-300)
    coarse = population_nodes(th, n_t=PREDICTION_RULE["n_t"], prune=PREDICTION_RULE["prune"])
    assert coarse.prob.size < nodes.prob.size / 4
    assert abs(coarse.prob.sum() - 1) < 1e-12
    phi = coarse.full_features()
    wp = (coarse.w[:, None] * coarse.prob).ravel()
    assert _rel((phi * wp[:, None]).T @ phi, th.sigma) < 1e-6


@pytest.mark.parametrize("P", [4, 16, 64])
def test_delayed_mixing_reaches_the_same_fixed_point(small, P):
    th, nodes = small
    a = cavity_moments(th, P, nodes=nodes)
    b = cavity_moments(th, P, nodes=nodes, mixing="delayed")
    assert _rel(b.W_bar, a.W_bar) < 1e-9
    assert _rel(b.cov_W, a.cov_W) < 1e-8
    assert _rel(b.M, a.M) < 1e-9


@pytest.mark.parametrize("P", [4, 16, 64])
def test_fast_path_agrees_with_the_default_solve(small, P):
    """Stated tolerance at F = 4 x 4 (F/P = 4, 1, 1/4): 1e-7 relative on W_bar, Cov W and M
    (measured 2e-9 at most); the split on the returned nodes agrees to 1e-7."""
    th, nodes = small
    fine = cavity_moments(th, P, nodes=nodes)
    fast, split_nodes = prediction_moments(th, P)
    assert fast.iterations["M"] <= fine.iterations["M"]
    assert _rel(fast.W_bar, fine.W_bar) < 1e-7
    assert _rel(fast.cov_W, fine.cov_W) < 1e-7
    assert _rel(fast.M, fine.M) < 1e-7
    a = occupancy_split(th, fine, nodes=nodes)
    b = occupancy_split(th, fast, nodes=split_nodes)
    assert _rel(b.M_light, a.M_light) < 1e-7
    assert _rel(b.A_light, a.A_light) < 1e-7
    Ka, Kb = a.fluctuation @ a.fluctuation.T, b.fluctuation @ b.fluctuation.T
    assert _rel(Kb, Ka) < 1e-7
    assert abs(b.heavy_probability - a.heavy_probability) < 1e-9


def test_bad_input(small):
    th, _ = small
    with pytest.raises(ValueError, match="mixing"):
        cavity_moments(th, 4, mixing="anderson")
    with pytest.raises(ValueError, match="n_t"):
        population_nodes(th, n_t=0)
    with pytest.raises(ValueError, match="prune"):
        population_nodes(th, prune=-1.0)
    with pytest.raises(TypeError, match="nodes"):
        prediction_moments(th, 4, nodes="fine")


def test_fast_path_returns_the_given_split_nodes(small):
    th, nodes = small
    _, split_nodes = prediction_moments(th, 16, nodes=nodes)
    assert split_nodes is nodes


@pytest.mark.slow
@pytest.mark.parametrize(
    "ns, tol_W, tol_C, tol_M",
    # the deviations stated at PREDICTION_RULE (measured 9e-9 / 4e-7 / 7e-8 and
    # 2e-6 / 3e-5 / 9e-6) with a factor-3 margin
    [(8, 3e-8, 1.2e-6, 2.1e-7), (16, 6e-6, 1e-4, 2.7e-5)],
)
def test_fast_path_stated_deviation(ns, tol_W, tol_C, tol_M):
    """eps = 0.01, F/P = 1 (the benchmark's configuration); the members of the small-occupancy
    field agree with the default path's (same seed) to 1e-5 at 8 x 8."""
    feats = ProductFeatures.uniform("gaussian", 1, ns, ns, (0.01, 1.0), (-1.5, 1.5))
    th = linear_model_theory(DATA, feats, 0.01)
    P = feats.n_features
    nodes = population_nodes(th)
    fine = cavity_moments(th, P, nodes=nodes)
    fast, split_nodes = prediction_moments(th, P)
    assert _rel(fast.W_bar, fine.W_bar) < tol_W
    assert _rel(fast.cov_W, fine.cov_W) < tol_C
    assert _rel(fast.M, fine.M) < tol_M
    if ns == 8:
        a = occupancy_split(th, fine, nodes=nodes)
        b = occupancy_split(th, fast, nodes=split_nodes)
        Wa = occupancy_members(th, fine, a, model_rngs(0, "field", 64))
        Wb = occupancy_members(th, fast, b, model_rngs(0, "field", 64))
        assert _rel(Wb, Wa) < 1e-5


@pytest.mark.slow
def test_members_do_not_depend_on_the_blas_thread_count():
    """On 16 x 16 features the batched products of the members differed in the 7th digit between
    one and two BLAS threads before they were pinned to one."""
    feats = ProductFeatures.uniform("gaussian", 1, 16, 16, (0.01, 1.0), (-1.5, 1.5))
    th = linear_model_theory(DATA, feats, 0.01, n_t=4)
    P = feats.n_features
    m, nodes = prediction_moments(th, P)
    out = []
    for limit in (1, 2):
        with threadpool_limits(limits=limit, user_api="blas"):
            split = occupancy_split(th, m, nodes=nodes)
            out.append(occupancy_members(th, m, split, model_rngs(0, "field", 32)))
    np.testing.assert_array_equal(out[0], out[1])


@pytest.mark.parametrize("P", [4, 16, 64])
def test_conjugate_gradient_covariance_agrees_with_anderson(small, P):
    """covariance="cg" reaches the Anderson fixed point (both at tol 1e-12; stated: 1e-9
    relative on Cov W, measured ~1e-11), on the product nodes and on full feature vectors,
    in no more map evaluations; M and W_bar are untouched."""
    th, nodes = small
    a = cavity_moments(th, P, nodes=nodes, tol=1e-12)
    b = cavity_moments(th, P, nodes=nodes, tol=1e-12, covariance="cg")
    r = cavity_moments_reference(th, P, nodes=nodes, tol=1e-12, covariance="cg")
    assert _rel(b.cov_W, a.cov_W) < 1e-9
    assert _rel(r.cov_W, b.cov_W) < 1e-9
    np.testing.assert_array_equal(b.M, a.M)
    np.testing.assert_array_equal(b.W_bar, a.W_bar)
    assert b.iterations["covariance"] <= a.iterations["covariance"]
    np.testing.assert_array_equal(b.cov_W, b.cov_W.T)


def test_symmetric_inverse():
    """Cholesky inverse of an SPD matrix: numpy's inverse to 1e-12, exactly symmetric; an
    indefinite symmetric matrix takes the LU route."""
    rng = np.random.default_rng(1)
    A = rng.standard_normal((30, 40))
    M = A @ A.T / 40 + 0.1 * np.eye(30)
    inv = _symmetric_inverse(M)
    np.testing.assert_array_equal(inv, inv.T)
    np.testing.assert_allclose(inv, np.linalg.inv(M), rtol=1e-11, atol=1e-13 * abs(inv).max())
    S = M - 0.5 * np.eye(30) * np.linalg.eigvalsh(M).max()
    np.testing.assert_allclose(_symmetric_inverse(S) @ S, np.eye(30), atol=1e-8)


def test_bad_covariance_solver(small):
    th, nodes = small
    with pytest.raises(ValueError, match="covariance"):
        cavity_moments(th, 4, nodes=nodes, covariance="gmres")
