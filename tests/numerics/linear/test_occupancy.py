"""The small-occupancy field (gtv.numerics.linear.occupancy)."""

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
from gtv.numerics.linear.occupancy import member_heavy_sets
from gtv.numerics.streams import model_rngs
from gtv.validation.ensembles import gap_mass

DATA = np.array([[-1.0], [0.0], [1.0]])


@pytest.fixture(scope="module")
def setup():
    feats = ProductFeatures.uniform("gaussian", 1, 4, 4, (0.01, 1.0), (-1.5, 1.5))
    th = linear_model_theory(DATA, feats, 0.01)
    return th, population_nodes(th)


def test_member_is_the_stated_ratio(setup):
    """Member 0 recomputed by hand from its own stream: light part + exact heavy triples."""
    th, nodes = setup
    P = 16
    m = cavity_moments(th, P, nodes=nodes)
    split = occupancy_split(th, m, nodes=nodes)
    W = sample_occupancy_weights(th, m, 3, seed=5, split=split)
    rng = model_rngs(5, "field", 3)[0]
    t, x0, x = draw_dsm_triples(rng, DATA, P, th.eps, th.schedule)
    xi = split.fluctuation @ rng.standard_normal(th.n_features)
    w = dsm_weights(th.schedule, t)
    phi = th.features.evaluate_reference(x, t)
    q = w * np.einsum("nf,fg,ng->n", phi, np.linalg.inv(m.M), phi) / P
    h = q > 1.0
    M = split.M_light + (phi[h] * w[h, None]).T @ phi[h] / P
    A = split.A_light + (w[h] * x0[h, 0]) @ phi[h] / P + xi
    np.testing.assert_allclose(W[0, 0], np.linalg.solve(M, A), rtol=1e-9, atol=1e-12)
    assert 0 < h.sum() < P


def test_heavy_share_vanishes_as_P_grows(setup):
    th, nodes = setup
    shares = [
        occupancy_split(th, cavity_moments(th, P, nodes=nodes), nodes=nodes).heavy_probability
        for P in (16, 256, 100_000)
    ]
    assert shares[0] > shares[1] > shares[2]
    assert shares[2] == 0.0  # no triple is heavy: the first-order Gaussian field


def test_gap_mass_matches_trained_ensemble_at_F_over_P_one(setup):
    """F = 16, P = 16: the occupancy field's gap mass lies within 3 standard errors of the
    trained ensemble's (1500 models each; a 3-sigma bound has a false-positive rate of 0.3 %),
    while the Gaussian field with the same (cavity) moments overshoots by more than 5."""
    th, nodes = setup
    P, N, S = 16, 1500, 300
    ens = train_linear_ensemble(DATA, th.features, N, P, 0.01, seed=0, keep_normal_equations=False)
    g_t = gap_mass(sample_linear_ensemble(ens, S, seed=0), DATA, 0.25)
    m = cavity_moments(th, P, nodes=nodes)
    gaps = {}
    for field in ("occupancy", "gaussian"):
        f = CavityLinear(th, m, field).gaussian_field(N, seed=1)
        gaps[field] = gap_mass(f.sample(S, seed=1), DATA, 0.25)
    se = np.hypot(g_t.std(ddof=1), gaps["occupancy"].std(ddof=1)) / np.sqrt(N)
    assert abs(gaps["occupancy"].mean() - g_t.mean()) < 3 * se
    assert gaps["gaussian"].mean() - g_t.mean() > 5 * se


def test_bad_input(setup):
    th, nodes = setup
    m = cavity_moments(th, 8, nodes=nodes)
    with pytest.raises(ValueError, match="q_star"):
        occupancy_split(th, m, nodes=nodes, q_star=0.0)
    with pytest.raises(TypeError, match="moments"):
        sample_occupancy_weights(th, None, 2)
    with pytest.raises(ValueError, match="n_models"):
        sample_occupancy_weights(th, m, 0)


def test_split_matches_full_feature_sums(setup):
    """The product-structure light part equals plain sums over full feature vectors."""
    th, nodes = setup
    m = cavity_moments(th, 16, nodes=nodes)
    split = occupancy_split(th, m, nodes=nodes)
    phi = nodes.full_features()
    prob = nodes.prob.ravel()
    w = np.broadcast_to(nodes.w[:, None], nodes.prob.shape).ravel()
    q = m.leverage(phi, w)
    a = prob * w / (1 + q) * (q <= 1.0)
    M = th.ridge * np.eye(th.n_features) + (phi * a[:, None]).T @ phi
    np.testing.assert_allclose(split.M_light, M, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(split.A_light, (a * nodes.mu.ravel()) @ phi, atol=1e-14)
    assert split.heavy_probability == pytest.approx(prob[q > 1.0].sum(), rel=1e-12)


def _closed_by_hand(phi, w, heavy, M_light, q_star, P):
    """The closure of one member's heavy set, by direct inversion: add every light triple whose
    leverage against ``M_L`` plus the heavy triples exceeds ``q_star``, round by round."""
    heavy = heavy.copy()
    while True:
        M = M_light + (phi[heavy] * w[heavy, None]).T @ phi[heavy] / P
        q = w * np.einsum("nf,fg,ng->n", phi, np.linalg.inv(M), phi) / P
        new = ~heavy & (q > q_star)
        if not new.any():
            return heavy, q
        heavy |= new


def test_consistent_member_closes_its_heavy_set(setup):
    """Member 0 of the consistent field recomputed from its own stream: its heavy set is the
    population's plus the closure under its own leverage (direct inversion, not Woodbury), every
    light triple's own leverage is <= q_star, and the weights are the stated ratio on that set.
    At P = 32 on 4 x 4 features the closure adds triples (else the test would check nothing)."""
    th, nodes = setup
    P, k = 32, 20
    m = cavity_moments(th, P, nodes=nodes)
    split = occupancy_split(th, m, nodes=nodes, consistent=True)
    assert split.consistent
    W = sample_occupancy_weights(th, m, k, seed=5, split=split)
    plain = sample_occupancy_weights(th, m, k, seed=5, split=occupancy_split(th, m, nodes=nodes))
    heavy_sets = member_heavy_sets(th, m, split, model_rngs(5, "field", k))
    added = 0
    for n, rng in enumerate(model_rngs(5, "field", k)):
        t, x0, x = draw_dsm_triples(rng, DATA, P, th.eps, th.schedule)
        xi = split.fluctuation @ rng.standard_normal(th.n_features)
        w = dsm_weights(th.schedule, t)
        phi = th.features.evaluate_reference(x, t)
        pop = w * np.einsum("nf,fg,ng->n", phi, np.linalg.inv(m.M), phi) / P > 1.0
        h, q = _closed_by_hand(phi, w, pop, split.M_light, 1.0, P)
        assert np.all(q[~h] <= 1.0)
        np.testing.assert_array_equal(heavy_sets[n], h)
        added += int(h.sum() - pop.sum())
        M = split.M_light + (phi[h] * w[h, None]).T @ phi[h] / P
        A = split.A_light + (w[h] * x0[h, 0]) @ phi[h] / P + xi
        np.testing.assert_allclose(W[n, 0], np.linalg.solve(M, A), rtol=1e-9, atol=1e-12)
        if h.sum() == pop.sum():  # nothing added: the plain occupancy member
            np.testing.assert_allclose(W[n], plain[n], rtol=1e-9, atol=1e-12)
    assert added > 0


def test_close_heavy_sets_numpy_and_numba_members_agree(setup):
    """Both member backends apply the closure: the same weights to rounding."""
    from gtv.numerics.linear.occupancy import occupancy_members

    th, nodes = setup
    m = cavity_moments(th, 32, nodes=nodes)
    split = occupancy_split(th, m, nodes=nodes, consistent=True)
    a = occupancy_members(th, m, split, model_rngs(2, "field", 6), backend="numba")
    b = occupancy_members(th, m, split, model_rngs(2, "field", 6), backend="numpy")
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_consistent_field_bad_input(setup):
    th, nodes = setup
    m = cavity_moments(th, 16, nodes=nodes)
    with pytest.raises(ValueError, match="consistent"):
        occupancy_split(th, m, nodes=nodes, strata=(8, 6), consistent=True)
    with pytest.raises(TypeError, match="consistent"):
        occupancy_split(th, m, nodes=nodes, consistent=1)
    with pytest.raises(ValueError, match="consistent"):
        CavityLinear(th, m, "consistent", nodes, split=occupancy_split(th, m, nodes=nodes))
    with pytest.raises(ValueError, match="consistent"):
        CavityLinear(
            th, m, "occupancy", nodes, split=occupancy_split(th, m, nodes=nodes, consistent=True)
        )
    # the field of CavityLinear(field="consistent") is made of consistent members
    f = CavityLinear(th, m, "consistent", nodes).gaussian_field(3, seed=4)
    split = occupancy_split(th, m, nodes=nodes, consistent=True)
    np.testing.assert_array_equal(f.W, sample_occupancy_weights(th, m, 3, seed=4, split=split))


def test_consistent_members_do_not_depend_on_the_thread_count(setup):
    import numba

    th, nodes = setup
    m = cavity_moments(th, 32, nodes=nodes)
    split = occupancy_split(th, m, nodes=nodes, consistent=True)
    before = numba.get_num_threads()
    try:
        out = []
        for n_threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(n_threads)
            out.append(sample_occupancy_weights(th, m, 9, seed=3, split=split))
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(out[0], out[1])


# -- exact_below: every triple below a time kept exact ----------------------------------------
def _ridge_on_own_triples(th, P, seed, k):
    """Members recomputed as plain ridge regressions on the triples their streams draw (the
    field's protocol: P triples, then F normals that must not matter)."""
    out = []
    for rng in model_rngs(seed, "field", k):
        t, x0, x = draw_dsm_triples(rng, DATA, P, th.eps, th.schedule)
        rng.standard_normal(th.n_features)
        w = dsm_weights(th.schedule, t)
        phi = th.features.evaluate_reference(x, t)
        M = th.ridge * np.eye(th.n_features) + (phi * w[:, None]).T @ phi / P
        out.append(np.linalg.solve(M, (w * x0[:, 0]) @ phi / P))
    return np.array(out)


@pytest.mark.parametrize("consistent", [False, True])
@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_exact_below_past_T_makes_every_member_a_trained_model(setup, consistent, backend):
    """With every time below exact_below the light part is empty (M_L = ridge I, A_L = 0, no
    fluctuation) and each member is the ridge regression on its own P triples."""
    from gtv.numerics.linear.occupancy import occupancy_members

    th, nodes = setup
    P = 24
    m = cavity_moments(th, P, nodes=nodes)
    split = occupancy_split(th, m, nodes=nodes, consistent=consistent, exact_below=2.0)
    np.testing.assert_allclose(split.M_light, th.ridge * np.eye(th.n_features), atol=1e-15)
    assert np.abs(split.A_light).max() < 1e-15 and np.abs(split.fluctuation).max() < 1e-8
    assert split.heavy_probability == pytest.approx(1.0, abs=1e-12)
    W = occupancy_members(th, m, split, model_rngs(3, "field", 5), backend=backend)
    np.testing.assert_allclose(W, _ridge_on_own_triples(th, P, 3, 5), rtol=1e-8, atol=1e-10)


def test_exact_below_keeps_the_early_triples_and_takes_the_light_part_above(setup):
    """Member by hand: heavy = population-heavy or t < t_c; the light sums over nodes with
    t >= t_c only; exact_below = 0 is the plain field, bit for bit."""
    th, nodes = setup
    P, t_c = 16, 0.2
    m = cavity_moments(th, P, nodes=nodes)
    split = occupancy_split(th, m, nodes=nodes, exact_below=t_c)
    assert split.exact_below == t_c
    phi_n = nodes.full_features()
    prob = nodes.prob.ravel()
    w_n = np.broadcast_to(nodes.w[:, None], nodes.prob.shape).ravel()
    t_n = np.broadcast_to(nodes.t[:, None], nodes.prob.shape).ravel()
    q_n = m.leverage(phi_n, w_n)
    a = prob * w_n / (1 + q_n) * ((q_n <= 1.0) & (t_n >= t_c))
    M_L = th.ridge * np.eye(th.n_features) + (phi_n * a[:, None]).T @ phi_n
    np.testing.assert_allclose(split.M_light, M_L, rtol=1e-12, atol=1e-14)
    W = sample_occupancy_weights(th, m, 4, seed=6, split=split)
    heavy_sets = member_heavy_sets(th, m, split, model_rngs(6, "field", 4))
    early = 0
    for n, rng in enumerate(model_rngs(6, "field", 4)):
        t, x0, x = draw_dsm_triples(rng, DATA, P, th.eps, th.schedule)
        xi = split.fluctuation @ rng.standard_normal(th.n_features)
        w = dsm_weights(th.schedule, t)
        phi = th.features.evaluate_reference(x, t)
        q = w * np.einsum("nf,fg,ng->n", phi, np.linalg.inv(m.M), phi) / P
        h = (q > 1.0) | (t < t_c)
        np.testing.assert_array_equal(heavy_sets[n], h)
        early += int(((t < t_c) & (q <= 1.0)).sum())
        M = split.M_light + (phi[h] * w[h, None]).T @ phi[h] / P
        A = split.A_light + (w[h] * x0[h, 0]) @ phi[h] / P + xi
        np.testing.assert_allclose(W[n, 0], np.linalg.solve(M, A), rtol=1e-9, atol=1e-12)
    assert early > 0  # triples made exact by the time alone
    plain = occupancy_split(th, m, nodes=nodes)
    np.testing.assert_array_equal(
        sample_occupancy_weights(th, m, 4, seed=6, split=occupancy_split(th, m, nodes=nodes,
                                                                          exact_below=0.0)),
        sample_occupancy_weights(th, m, 4, seed=6, split=plain),
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["consistent", "stratified"])
def test_exact_below_numba_and_numpy_members_agree(setup, kind):
    from gtv.numerics.linear.occupancy import occupancy_members

    th, nodes = setup
    m = cavity_moments(th, 32, nodes=nodes)
    split = occupancy_split(
        th, m, nodes=nodes, consistent=kind == "consistent", exact_below=0.1,
        strata=(8, 6) if kind == "stratified" else None,
    )  # fmt: skip
    a = occupancy_members(th, m, split, model_rngs(2, "field", 6), backend="numba")
    b = occupancy_members(th, m, split, model_rngs(2, "field", 6), backend="numpy")
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_exact_below_bad_input_and_the_theory_carries_it(setup, tmp_path):
    th, nodes = setup
    m = cavity_moments(th, 16, nodes=nodes)
    for bad in (-0.1, float("nan"), float("inf"), True):
        with pytest.raises(ValueError, match="exact_below"):
            occupancy_split(th, m, nodes=nodes, exact_below=bad)
        with pytest.raises(ValueError, match="exact_below"):
            CavityLinear(th, m, "consistent", nodes, exact_below=bad)
    with pytest.raises(ValueError, match="exact_below: only for the occupancy fields"):
        CavityLinear(th, m, "gaussian", exact_below=0.1)
    with pytest.raises(ValueError, match="split: made with exact_below=0"):
        CavityLinear(th, m, "consistent", nodes, exact_below=0.1,
                     split=occupancy_split(th, m, nodes=nodes, consistent=True))  # fmt: skip
    theory = CavityLinear(th, m, "consistent", nodes, exact_below=0.1)
    split = occupancy_split(th, m, nodes=nodes, consistent=True, exact_below=0.1)
    np.testing.assert_array_equal(
        theory.gaussian_field(3, seed=1).W, sample_occupancy_weights(th, m, 3, seed=1, split=split)
    )
    assert theory.config()["exact_below"] == 0.1 and "exact_below=0.1" in repr(theory)
    back = CavityLinear.load(theory.save(tmp_path / "cav"))
    assert back.exact_below == 0.1 and back.field == "consistent"


def test_closure_of_members_already_solved_directly():
    """Members with more than F / 2 heavy triples before their closure (here by exact_below)
    close it with the Cholesky factor of ``M_L + Y^T Y`` itself (numba's ``_close_direct``):
    they agree with the numpy closure (Woodbury) -- in a configuration where, by the numpy
    route, some of those members do take in light triples."""
    from gtv.numerics.linear.occupancy import (
        _draw,
        _features_and_leverages,
        member_heavy_sets,
        occupancy_members,
    )

    feats = ProductFeatures.uniform("gaussian", 1, 4, 4, (0.01, 1.0), (-1.5, 1.5))
    th = linear_model_theory(DATA, feats, 0.01, ridge=0.01)
    nodes = population_nodes(th)
    P, k = 32, 40
    m = cavity_moments(th, P, nodes=nodes)
    split = occupancy_split(th, m, nodes=nodes, consistent=True, exact_below=0.2)
    t, _, x, _ = _draw(th, P, model_rngs(2, "field", k), 0)
    _, q = _features_and_leverages(th, m, t, x, dsm_weights(th.schedule, t))
    before = ((q > split.q_star) | (t < 0.2)).sum(axis=1)
    after = member_heavy_sets(th, m, split, model_rngs(2, "field", k)).sum(axis=1)
    assert np.any((2 * before > th.n_features) & (after > before))
    a = occupancy_members(th, m, split, model_rngs(2, "field", k), backend="numba")
    b = occupancy_members(th, m, split, model_rngs(2, "field", k), backend="numpy")
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("consistent", [False, True])
def test_ladder_draw_is_each_splits_draw(setup, consistent):
    """One draw for a ladder of splits (shared triples, features and leverages) gives each
    split's own members to the last bit, the all-exact rung included; bad splits are refused."""
    from gtv.numerics.linear.occupancy import occupancy_members, sample_occupancy_weights_ladder

    th, nodes = setup
    m = cavity_moments(th, 32, nodes=nodes)
    splits = [
        occupancy_split(th, m, nodes=nodes, consistent=consistent, exact_below=t_c)
        for t_c in (0.0, 0.1, 0.3, 2.0)
    ]
    W = sample_occupancy_weights_ladder(th, m, splits, 7, seed=4)
    assert W.shape == (4, 7, 1, th.n_features)
    for r, split in enumerate(splits):
        np.testing.assert_array_equal(W[r], sample_occupancy_weights(th, m, 7, 4, split=split))
        ref = occupancy_members(th, m, split, model_rngs(4, "field", 7), backend="numpy")
        np.testing.assert_allclose(W[r, :, 0], ref, rtol=1e-9, atol=1e-12)  # the numpy reference
    assert not np.array_equal(W[0], W[1])
    with pytest.raises(TypeError, match="splits"):
        sample_occupancy_weights_ladder(th, m, [], 3)
    strat = occupancy_split(th, m, nodes=nodes, strata=(8, 6))
    with pytest.raises(ValueError, match="strata=None"):
        sample_occupancy_weights_ladder(th, m, [splits[0], strat], 3)
    other = occupancy_split(th, m, nodes=nodes, q_star=2.0)
    with pytest.raises(ValueError, match="q_star"):
        sample_occupancy_weights_ladder(th, m, [splits[0], other], 3)
