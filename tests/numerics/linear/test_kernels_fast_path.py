"""numba kernels of the [q] fast path against their plain-numpy references, and their
independence of the numba thread count (node sums: gtv.numerics.linear.node_kernels; members:
gtv.numerics.linear.member_kernels)."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from gtv.numerics.features import ProductFeatures
from gtv.numerics.linear import cavity_moments, linear_model_theory, population_nodes
from gtv.numerics.linear.member_kernels import (
    member_leverages,
    member_weights_shared,
)
from gtv.numerics.linear.node_kernels import spatial_grams, spatial_quadratic
from gtv.numerics.linear.nodes import ACTIVE_FEATURE
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
    for a in (pos, signed):
        v = nodes.vector(a)
        np.testing.assert_allclose(v, a.reshape(-1) @ phi, rtol=1e-10, atol=1e-13 * abs(v).max())
    W = rng.standard_normal(phi.shape[1])
    Wphi = nodes.apply(W)
    np.testing.assert_allclose(
        Wphi, (phi @ W).reshape(Wphi.shape), rtol=1e-10, atol=1e-13 * abs(Wphi).max()
    )


def test_fused_quadratic_gram_matches_the_two_sums(setup):
    """quadratic_gram (one numba pass: quadratic forms, coefficients, Gram blocks) against its
    numpy reference, and the same values as gram(coefficients of quadratic(B)) to the bit, with
    and without the leverage saturation, for signed and definite B."""
    _, nodes, P, m = setup
    rng = np.random.default_rng(2)
    c = nodes.prob * nodes.w[:, None] * rng.uniform(0.5, 2.0, nodes.prob.shape)
    B = rng.standard_normal((m.M.shape[0],) * 2)
    for mat in (m.M_inv, B + B.T):
        v = nodes.quadratic(mat)
        q = np.clip(nodes.w[:, None] * v / P, 0.0, None)
        for p_, a in ((None, c * v), (P, c / (1 + q))):
            G = nodes.quadratic_gram(mat, c, p_)
            np.testing.assert_array_equal(G, nodes.gram(a))
            np.testing.assert_allclose(
                G, nodes.quadratic_gram_reference(mat, c, p_), rtol=1e-11,
                atol=1e-13 * abs(G).max(),
            )  # fmt: skip


@pytest.mark.parametrize("fs", [1, 3, 4, 5, 8, 11, 16])
@pytest.mark.parametrize("spans", ["full", "random"])
def test_node_kernels_tiles_and_remainder_rows(fs, spans):
    """spatial_grams / spatial_quadratic (4 x 4 tiles, then the rows past the last full tile)
    against plain numpy on random layouts, for spatial sizes with and without a remainder, with
    every tile summed over all active nodes or over its own random span (the terms of the pairs
    ``(i, j)`` at the nodes outside ``span[k, i // 4, j // 4]`` left out); the Gram blocks are
    exactly symmetric, the quadratic forms 0 at the nodes left out."""
    rng = np.random.default_rng(fs)
    n_t, n_x, n_c = 3, 9, 7
    n_g = -(-fs // 4)
    count = np.array([7, 0, 4], dtype=np.intp)
    idx = np.zeros((n_t, n_c), dtype=np.intp)
    psT = np.zeros((n_t, fs, n_c))
    span = np.zeros((n_t, n_g, n_g, 2), dtype=np.intp)
    for k in range(n_t):
        idx[k, : count[k]] = rng.choice(n_x, count[k], replace=False)
        psT[k, :, : count[k]] = rng.standard_normal((fs, count[k]))
        for g in range(n_g):
            for h in range(g + 1):
                if spans == "full":
                    span[k, g, h] = span[k, h, g] = 0, count[k]
                else:
                    lo, hi = np.sort(rng.integers(0, count[k] + 1, 2))
                    span[k, g, h] = span[k, h, g] = lo, hi
    a = rng.standard_normal((n_t, n_x))
    B = rng.standard_normal((n_t, fs, fs))
    B = B + B.transpose(0, 2, 1)
    S = spatial_grams(psT, idx, count, span, a)
    q = spatial_quadratic(psT, idx, count, span, B, n_x)
    group = np.arange(fs) // 4
    for k in range(n_t):
        p = psT[k, :, : count[k]]
        ak = a[k, idx[k, : count[k]]]
        r = np.arange(count[k])
        lo, hi = (
            span[k, group[:, None], group[None, :], 0],
            span[k, group[:, None], group[None, :], 1],
        )
        inside = (lo[:, :, None] <= r) & (r < hi[:, :, None])  # (fs, fs, nodes)
        expect_S = np.einsum("ir,jr,r,ijr->ij", p, p, ak, inside)
        np.testing.assert_allclose(S[k], expect_S, rtol=1e-12, atol=1e-13)
        np.testing.assert_array_equal(S[k], S[k].T)
        expect = np.zeros(n_x)
        expect[idx[k, : count[k]]] = np.einsum("ir,ij,jr,ijr->r", p, B[k], p, inside)
        np.testing.assert_allclose(q[k], expect, rtol=1e-12, atol=1e-12)


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


def test_node_kernels_skip_only_negligible_nodes(setup):
    """The fixture's rule reaches |x| ~ 9 at t = 1: 40 % of its nodes are inactive (every spatial
    feature below ACTIVE_FEATURE of the largest). The layout holds exactly the active nodes, in
    x order; each tile's span holds every node where a product of its two groups' features
    exceeds ACTIVE_FEATURE**2 of the largest squared feature, so every term left out is below
    that bound; the kernels' quadratic form is 0 at the inactive nodes, where the full-vector
    value is below 1e-18 of the largest; the numpy references (all nodes and terms) agree (test
    above)."""
    _, nodes, _, m = setup
    psT, idx, count, span = nodes.active_layout
    big = np.abs(nodes.phi_s).max(axis=2)
    cut = ACTIVE_FEATURE * big.max()
    active = big > cut
    assert 0.3 < 1 - active.mean() < 0.6
    np.testing.assert_array_equal(count, active.sum(axis=1))
    fs = psT.shape[1]
    group = np.arange(fs) // 4
    for k in range(nodes.prob.shape[0]):
        order = np.argsort(nodes.x[k], kind="stable")
        np.testing.assert_array_equal(idx[k, : count[k]], order[active[k, order]])
        np.testing.assert_array_equal(psT[k, :, : count[k]], nodes.phi_s[k, idx[k, : count[k]]].T)
        assert np.all(np.diff(nodes.x[k, idx[k, : count[k]]]) >= 0)
        assert not psT[k, :, count[k] :].any()
        p = np.abs(psT[k, :, : count[k]])
        r = np.arange(count[k])
        lo, hi = (
            span[k, group[:, None], group[None, :], 0],
            span[k, group[:, None], group[None, :], 1],
        )
        outside = (r < lo[:, :, None]) | (r >= hi[:, :, None])
        assert np.all(p[:, None, :] * p[None, :, :] * outside <= cut**2)
        np.testing.assert_array_equal(span[k], span[k].transpose(1, 0, 2))
    # some tiles of distant groups are left out at some nodes
    assert (span[..., 1] - span[..., 0] < count[:, None, None]).any()
    for got, expect in zip(nodes.active_layout, nodes.active_layout_reference(), strict=True):
        np.testing.assert_array_equal(got, expect)
        assert got.dtype == expect.dtype
    q = nodes.quadratic(m.M_inv)
    ref = nodes.quadratic_reference(m.M_inv)
    assert not q[~active].any()
    assert np.abs(ref[~active]).max() < 1e-18 * np.abs(ref).max()


@pytest.mark.parametrize("q_star", [0.0, 1.0, 3.0, 1e30])
def test_fused_shared_members_match_a_direct_numpy_solve(q_star):
    """member_weights_shared (features, screened leverages, Woodbury solves for h <= F / 2 heavy
    triples and the direct Cholesky solve for more, in one pass per member) against numpy: exact
    leverages, heavy = q > q_star, a solve of (M_L + (1/P) sum_H w phi phi^T) W^T = A^T. q_star
    = 0 makes every triple heavy (direct branch), 1 some (Woodbury), 1e30 none; the same bits
    under 1 and 2 numba threads."""
    feats = ProductFeatures.uniform("gaussian", 1, 5, 4, (0.01, 1.0), (-1.5, 1.5))
    rng = np.random.default_rng(7)
    k, n, f, P = 6, 30, feats.n_features, 30.0
    z = np.stack([rng.uniform(-2.5, 2.5, (k, n)), rng.uniform(0.01, 1.0, (k, n))], axis=2)
    w = 1.0 / rng.uniform(0.005, 1.0, (k, n))
    x0 = rng.standard_normal((k, n))
    A = rng.standard_normal((f, f))
    M_inv = np.linalg.inv(A @ A.T / f + 0.05 * np.eye(f))
    B = rng.standard_normal((f, f + 5))
    M_light = B @ B.T / (f + 5) + 0.1 * np.eye(f)
    A_light, xi = rng.standard_normal(f), rng.standard_normal((k, f))
    L, L_light = np.linalg.cholesky(M_inv), np.linalg.cholesky(np.linalg.inv(M_light))
    lam = np.linalg.eigvalsh(M_inv)[-1] * (1 + 1e-8)
    args = (*feats.arrays(), z, w, x0, L, P, lam, q_star, M_light, L_light, A_light, xi)
    (W, status), (W2, _) = _threads(lambda: member_weights_shared(*args))
    np.testing.assert_array_equal(W, W2)
    assert not status.any()
    phi = feats.evaluate(z[:, :, 0].reshape(-1, 1), z[:, :, 1].reshape(-1)).reshape(k, n, f)
    heavy = w * np.einsum("mnf,fg,mng->mn", phi, M_inv, phi) / P > q_star
    if q_star == 3.0:
        assert 0 < heavy.sum(axis=1).max() <= f // 2  # the Woodbury branch
    if q_star == 1.0:
        assert heavy.sum(axis=1).min() > f // 2  # the direct branch, with light triples
    for m in range(k):
        h = heavy[m]
        G = M_light + (phi[m, h].T * (w[m, h] / P)) @ phi[m, h]
        rhs = A_light + (w[m, h] * x0[m, h] / P) @ phi[m, h] + xi[m]
        expect = np.linalg.solve(G, rhs)
        np.testing.assert_allclose(W[m, 0], expect, rtol=1e-9, atol=1e-11 * abs(expect).max())


def test_member_leverage_screening_keeps_the_heavy_set():
    """With lam_max >= the largest eigenvalue of M^-1, the screened leverages give the same heavy
    set as the unscreened ones; computed ones are identical, screened ones are the bound (>= the
    leverage, <= q_star); the same bits under 1 and 2 numba threads."""
    feats = ProductFeatures.uniform("gaussian", 1, 5, 4, (0.01, 1.0), (-1.5, 1.5))
    rng = np.random.default_rng(3)
    k, n, f, P, q_star = 5, 40, feats.n_features, 40.0, 1.0
    z = np.stack([rng.uniform(-2.5, 2.5, (k, n)), rng.uniform(0.01, 1.0, (k, n))], axis=2)
    w = 1.0 / rng.uniform(0.005, 1.0, (k, n))
    A = rng.standard_normal((f, f))
    M_inv = np.linalg.inv(A @ A.T / f + 0.05 * np.eye(f))
    L = np.linalg.cholesky(M_inv)
    lam = np.linalg.eigvalsh(M_inv)[-1] * (1 + 1e-8)
    phi, q = member_leverages(*feats.arrays(), z, w, L, P)
    runs = _threads(lambda: member_leverages(*feats.arrays(), z, w, L, P, lam, q_star))
    (phi_s, q_s), (_, q_s2) = runs
    np.testing.assert_array_equal(q_s, q_s2)
    np.testing.assert_array_equal(phi_s, phi)
    np.testing.assert_allclose(q, w * np.einsum("mnf,fg,mng->mn", phi, M_inv, phi) / P, rtol=1e-10)
    bound = w * (phi**2).sum(axis=2) * lam / P
    screened = bound <= q_star
    # both branches, and heavy as well as computed light triples, are exercised
    assert 0.1 < screened.mean() < 0.9
    assert (q > q_star).any() and (~screened & (q <= q_star)).any()
    np.testing.assert_array_equal(q_s > q_star, q > q_star)
    np.testing.assert_allclose(q_s[screened], bound[screened], rtol=1e-13)
    assert np.all(q_s[screened] >= q[screened])
    np.testing.assert_allclose(q_s[~screened], q[~screened], rtol=1e-13)
