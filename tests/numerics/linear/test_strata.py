"""The light part per (t, x) cell (gtv.numerics.linear.strata) and the field built on it."""

from __future__ import annotations

import numpy as np
import pytest

from gtv.numerics.dsm import draw_dsm_triples, dsm_weights
from gtv.numerics.features import ProductFeatures
from gtv.numerics.linear import (
    CavityLinear,
    cavity_moments,
    linear_model_theory,
    occupancy_split,
    population_nodes,
    sample_linear_ensemble,
    sample_occupancy_weights,
    train_linear_ensemble,
)
from gtv.numerics.linear.strata import STRATA
from gtv.numerics.streams import model_rngs
from gtv.validation.ensembles import gap_mass

DATA = np.array([[-1.0], [0.0], [1.0]])


@pytest.fixture(scope="module")
def setup():
    feats = ProductFeatures.uniform("gaussian", 1, 4, 4, (0.01, 1.0), (-1.5, 1.5))
    th = linear_model_theory(DATA, feats, 0.01)
    nodes = population_nodes(th)
    m = cavity_moments(th, 16, nodes=nodes)
    return th, nodes, m, occupancy_split(th, m, nodes=nodes, strata=(8, 6), min_cell_count=1.0)


def test_cells_follow_the_stated_edges(setup):
    """Geometric time edges from eps to T, space edges over the feature range widened by a
    sixth of it, open outer bins; a point on an edge belongs to the bin above it."""
    *_, split = setup
    s = split.strata
    np.testing.assert_allclose(s.t_edges, 0.01 * 100.0 ** (np.arange(1, 8) / 8), rtol=1e-12)
    np.testing.assert_allclose(s.x_edges, np.linspace(-2.0, 2.0, 5), rtol=1e-12)
    t = np.array([0.0101, s.t_edges[0], 0.99, 0.5])
    x = np.array([-5.0, -2.0, 7.0, 0.1])
    full = np.array([0 * 6 + 0, 1 * 6 + 1, 7 * 6 + 5, np.searchsorted(s.t_edges, 0.5) * 6 + 3])
    np.testing.assert_array_equal(s.cells(t, x), s.index[full])
    # sparse cells (on request: expected fewer than one light triple per member) are not averaged
    _, _, m, _ = setup
    np.testing.assert_array_equal(s.sparse, m.P * s.probability < 1.0)
    kept = np.flatnonzero(s.index >= 0)
    assert not s.sparse[s.index[kept]].any()
    assert s.sparse.any() and (~s.sparse).sum() == kept.size


def test_cells_recombine_to_the_unconditioned_light_part(setup):
    """Summed with their probabilities the cells give the split's light part: M_L, A_L and the
    light covariance K_L = (within cells) + (between cells) -- an independent code path."""
    th, nodes, m, split = setup
    s, P = split.strata, m.P
    pi = s.probability
    F = th.n_features
    grams = s.gram.reshape(-1, F, F)
    M = th.ridge * np.eye(F) + np.einsum("s,sfg->fg", pi, grams)
    np.testing.assert_allclose(M, split.M_light, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(pi @ s.vector, split.A_light, rtol=1e-11, atol=1e-13)
    assert pi.sum() == pytest.approx(1 - split.heavy_probability, rel=1e-12)
    g = s.vector - grams @ m.W_bar[0]  # per cell the mean residual term a_s - W_bar m_s
    within = (s.noise * pi[s.noise_stratum]) @ s.noise.T
    between = np.einsum("s,sf,sg->fg", pi, g, g) - np.outer(pi @ g, pi @ g)
    K_L = P * split.fluctuation @ split.fluctuation.T
    np.testing.assert_allclose(within + between, K_L, rtol=1e-7, atol=1e-9 * np.abs(K_L).max())


def test_expected_counts_give_the_light_part(setup):
    th, _, m, split = setup
    counts = m.P * split.strata.probability[None, :]
    M, A, xi = split.strata.light_sums(
        counts, np.zeros((1, split.strata.noise.shape[1])), m.P, th.ridge
    )
    np.testing.assert_allclose(M[0], split.M_light, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(A[0], split.A_light, rtol=1e-11, atol=1e-13)
    assert not xi.any()


def test_member_is_the_stated_ratio(setup):
    """Member 0 recomputed by hand from its own stream: P triples, then one normal per noise
    column; cell counts of the light triples, heavy ones (and light ones in empty cells) exact."""
    th, nodes, m, split = setup
    P, s = int(m.P), split.strata
    W = sample_occupancy_weights(th, m, 3, seed=5, split=split)
    rng = model_rngs(5, "field", 3)[0]
    t, x0, x = draw_dsm_triples(rng, DATA, P, th.eps, th.schedule)
    z = rng.standard_normal(s.noise.shape[1])
    w = dsm_weights(th.schedule, t)
    phi = th.features.evaluate_reference(x, t)
    q = w * np.einsum("nf,fg,ng->n", phi, np.linalg.inv(m.M), phi) / P
    it = np.array([np.sum(s.t_edges <= tj) for tj in t])
    ix = np.array([np.sum(s.x_edges <= xj) for xj in x[:, 0]])
    cell = s.index[it * s.shape[1] + ix]
    exact = (q > 1.0) | (cell < 0)
    n = np.zeros(s.probability.size)
    for c in cell[~exact]:
        n[c] += 1
    F = th.n_features
    M = th.ridge * np.eye(F) + (n @ s.gram).reshape(F, F) / P
    M += (phi[exact] * w[exact, None]).T @ phi[exact] / P
    A = n @ s.vector / P + (w[exact] * x0[exact, 0]) @ phi[exact] / P
    A += s.noise @ (np.sqrt(n[s.noise_stratum]) * z) / P
    np.testing.assert_allclose(W[0, 0], np.linalg.solve(M, A), rtol=1e-9, atol=1e-12)
    assert 0 < exact.sum() < P


def test_stratified_field_gap_mass_matches_trained_ensemble(setup):
    """F = 16, P = 16: the stratified field's gap mass lies within 3 standard errors of the
    trained ensemble's (1500 models and members; false-positive rate 0.3 %)."""
    th, nodes, m, _ = setup
    P, N, S = 16, 1500, 300
    ens = train_linear_ensemble(DATA, th.features, N, P, 0.01, seed=0, keep_normal_equations=False)
    g_t = gap_mass(sample_linear_ensemble(ens, S, seed=0), DATA, 0.25)
    bound = CavityLinear(th, m, "stratified", nodes)
    f = bound.gaussian_field(N, seed=1)
    g_f = gap_mass(f.sample(S, seed=1), DATA, 0.25)
    se = np.hypot(g_t.std(ddof=1), g_f.std(ddof=1)) / np.sqrt(N)
    assert abs(g_f.mean() - g_t.mean()) < 3 * se
    # the field's own split has the default cells; members are reproducible from the seed
    split = occupancy_split(th, m, nodes=nodes, strata=STRATA)
    W = sample_occupancy_weights(th, m, 4, seed=1, split=split)
    np.testing.assert_array_equal(f.ensemble.W[:4], W)
    given = CavityLinear(th, m, "occupancy", nodes, split=split).gaussian_field(4, seed=1)
    np.testing.assert_array_equal(given.W, W)


def test_bad_input(setup):
    th, nodes, m, _ = setup
    with pytest.raises(ValueError, match="strata"):
        occupancy_split(th, m, nodes=nodes, strata=(8,))
    with pytest.raises(ValueError, match="space bins"):
        occupancy_split(th, m, nodes=nodes, strata=(8, 2))
    with pytest.raises(ValueError, match="time bins"):
        occupancy_split(th, m, nodes=nodes, strata=(0, 6))
    with pytest.raises(TypeError, match="split"):
        CavityLinear(th, m, "stratified", nodes, split="no")
    with pytest.raises(ValueError, match="split"):
        CavityLinear(th, m, "gaussian", nodes, split=occupancy_split(th, m, nodes=nodes))
    with pytest.raises(ValueError, match="min_count"):
        occupancy_split(th, m, nodes=nodes, strata=(8, 6), min_cell_count=-1.0)
