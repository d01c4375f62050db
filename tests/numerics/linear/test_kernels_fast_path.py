"""numba kernels of the [q] fast path against their plain-numpy references, and their
independence of the numba thread count (node sums: gtv.numerics.linear.node_kernels; members:
gtv.numerics.linear.member_kernels)."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from gtv.numerics.features import ProductFeatures
from gtv.numerics.linear import cavity_moments, linear_model_theory, population_nodes
from gtv.numerics.linear.occupancy import occupancy_members, occupancy_split
from gtv.numerics.linear.strata import STRATA
from gtv.numerics.streams import model_rngs

DATA = np.array([[-1.0], [0.0], [1.0]])


@pytest.fixture(scope="module")
def setup():
    feats = ProductFeatures.uniform("gaussian", 1, 5, 4, (0.01, 1.0), (-1.5, 1.5))
    th = linear_model_theory(DATA, feats, 0.01, n_t=6, n_hermite=40)
    nodes = population_nodes(th)
    P = 20
    return th, nodes, P, cavity_moments(th, P, nodes=nodes)


def _threads(fn, counts=(1, 2)):
    """``fn()`` under each numba thread count (restored afterwards)."""
    old = numba.get_num_threads()
    out = []
    try:
        for n in counts:
            numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
            out.append(fn())
    finally:
        numba.set_num_threads(old)
    return out


def test_node_sums_match_the_numpy_reference_and_full_features(setup):
    """gram / quadratic (numba spatial blocks) against the numpy product route and against the
    full feature vectors, with positive, signed and partly zero coefficients."""
    th, nodes, _, m = setup
    phi = nodes.full_features()
    rng = np.random.default_rng(1)
    pos = nodes.prob * nodes.w[:, None] * rng.uniform(0.5, 2.0, nodes.prob.shape)
    signed = pos * rng.choice([-1.0, 1.0], nodes.prob.shape)
    zeros = pos * (rng.uniform(size=nodes.prob.shape) < 0.5)
    for a in (pos, signed, zeros):
        G = nodes.gram(a)
        full = (phi * a.reshape(-1, 1)).T @ phi
        np.testing.assert_allclose(
            G, nodes.gram_reference(a), rtol=1e-12, atol=1e-14 * abs(G).max()
        )
        np.testing.assert_allclose(G, (full + full.T) / 2, rtol=1e-10, atol=1e-13 * abs(G).max())
        np.testing.assert_array_equal(G, G.T)
    B = rng.standard_normal((phi.shape[1],) * 2)
    for mat in (m.M_inv, m.cov_W, B + B.T):
        q = nodes.quadratic(mat)
        np.testing.assert_allclose(
            q, nodes.quadratic_reference(mat), rtol=1e-11, atol=1e-14 * abs(q).max()
        )
        full = ((phi @ mat) * phi).sum(axis=1).reshape(q.shape)
        np.testing.assert_allclose(q, full, rtol=1e-9, atol=1e-12 * abs(q).max())


@pytest.mark.parametrize("strata", [None, STRATA])
def test_members_match_the_numpy_reference(setup, strata):
    """The numba members (Cholesky solves) against the numpy members (LU solves), same draws,
    with and without the strata; some triples are heavy, some light."""
    th, nodes, P, m = setup
    split = occupancy_split(th, m, nodes=nodes, strata=strata)
    assert 0 < split.heavy_probability < 0.5
    rngs = model_rngs(3, "field", 12)
    a = occupancy_members(th, m, split, rngs)
    b = occupancy_members(th, m, split, model_rngs(3, "field", 12), backend="numpy")
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12 * abs(b).max())


def test_results_do_not_depend_on_the_numba_thread_count(setup):
    """Bit-identical node sums, moments, split and members under 1 and 2 numba threads."""
    th, nodes, P, m = setup
    a = nodes.prob * nodes.w[:, None]

    def run():
        mm = cavity_moments(th, P, nodes=nodes)
        split = occupancy_split(th, mm, nodes=nodes)
        W = occupancy_members(th, mm, split, model_rngs(0, "field", 9))
        return nodes.gram(a), nodes.quadratic(m.M_inv), mm.cov_W, split.M_light, W

    one, two = _threads(run)
    for x, y in zip(one, two, strict=True):
        np.testing.assert_array_equal(x, y)


def test_bad_backend(setup):
    th, nodes, _, m = setup
    split = occupancy_split(th, m, nodes=nodes)
    with pytest.raises(ValueError, match="backend"):
        occupancy_members(th, m, split, model_rngs(0, "field", 2), backend="fortran")
