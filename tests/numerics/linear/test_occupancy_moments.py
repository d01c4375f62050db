"""Monte Carlo moments of the small-occupancy field (gtv.numerics.linear.occupancy_moments)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gtv.numerics.dsm import draw_dsm_triples, dsm_weights
from gtv.numerics.features import ProductFeatures
from gtv.numerics.linear import (
    CavityLinear,
    OccupancyLinear,
    OccupancyMoments,
    cavity_moments,
    linear_model_theory,
    occupancy_moments,
    occupancy_split,
    population_nodes,
    sample_occupancy_weights,
)
from gtv.numerics.linear.occupancy import occupancy_members
from gtv.numerics.linear.strata import STRATA
from gtv.numerics.streams import model_rngs, stream

DATA = np.array([[-1.0], [0.0], [1.0]])


def _theory(eps: float):
    feats = ProductFeatures.uniform("gaussian", 1, 4, 4, (eps, 1.0), (-1.5, 1.5))
    th = linear_model_theory(DATA, feats, eps)
    return th, population_nodes(th)


@pytest.fixture(scope="module")
def heavy_case():
    """eps = 0.05, P = 16: about two heavy triples per member."""
    th, nodes = _theory(0.05)
    m = cavity_moments(th, 16, nodes=nodes)
    return th, nodes, m, occupancy_split(th, m, nodes=nodes)


def _hand_member(th, m, split, rng):
    """One member from the formula of docs/math/finite_fp.md, with reference features."""
    P = int(m.P)
    t, x0, x = draw_dsm_triples(rng, DATA, P, th.eps, th.schedule)
    xi = split.fluctuation @ rng.standard_normal(th.n_features)
    w = dsm_weights(th.schedule, t)
    phi = th.features.evaluate_reference(x, t)
    h = w * np.einsum("nf,fg,ng->n", phi, np.linalg.inv(m.M), phi) / P > split.q_star
    M = split.M_light + (phi[h] * w[h, None]).T @ phi[h] / P
    A = split.A_light + (w[h] * x0[h, 0]) @ phi[h] / P + xi
    return np.linalg.solve(M, A), int(h.sum())


def test_moments_are_those_of_the_stated_members(heavy_case):
    """The MC moments (overall and per batch) are the sample moments of members built by hand
    from the stream ``occupancy-moments``; the batched member builder is the field's sampler."""
    th, nodes, m, split = heavy_case
    n, B = 40, 4
    occ = occupancy_moments(th, m, n, seed=3, split=split, n_batches=B)
    hand = [_hand_member(th, m, split, r) for r in model_rngs(3, "occupancy-moments", n)]
    W = np.array([w for w, _ in hand])
    assert sum(h for _, h in hand) > 0  # the heavy part is exercised
    np.testing.assert_allclose(occ.W_bar[0], W.mean(0), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(occ.cov_W, np.cov(W.T), rtol=1e-8, atol=1e-12)
    for b in range(B):
        Wb = W[b * n // B : (b + 1) * n // B]
        np.testing.assert_allclose(occ.batch_W_bar[b], Wb.mean(0), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(occ.batch_cov_W[b], np.cov(Wb.T), rtol=1e-8, atol=1e-12)
    # the field sampler builds the same members from its own stream
    Wf = sample_occupancy_weights(th, m, 3, seed=3, split=split)[:, 0]
    hand_f = [_hand_member(th, m, split, r)[0] for r in model_rngs(3, "field", 3)]
    np.testing.assert_allclose(Wf, np.array(hand_f), rtol=1e-9, atol=1e-12)


def test_gaussian_law_when_no_triple_is_heavy():
    """eps = 0.3, P = 32: every leverage is below 0.5, no triple is heavy and the field is exactly
    ``W = M_L^{-1} (A_L + xi)``, Gaussian with mean ``M_L^{-1} A_L`` and covariance
    ``M_L^{-1} (K_L / P) M_L^{-1}`` (from the split alone). With 2000 members the MC mean of
    ``D^`` lies within 4.5 SE of it and the variance within 4.5 relative SE ``sqrt(2/2000)`` at
    each of 6 points (false-positive rate < 1e-4); the batch errors estimate the known SE
    within a factor [0.5, 1.6] (chi^2 with 19 dof: < 1e-3)."""
    th, nodes = _theory(0.3)
    m = cavity_moments(th, 32, nodes=nodes)
    assert m.q_max < 0.5
    split = occupancy_split(th, m, nodes=nodes)
    assert split.heavy_probability == 0.0
    n = 2000
    occ = occupancy_moments(th, m, n, seed=0, split=split)
    Li = np.linalg.inv(split.M_light)
    mean = Li @ split.A_light
    cov = Li @ split.fluctuation @ split.fluctuation.T @ Li
    x = np.array([-1.0, -0.5, 0.0, 0.0, 0.5, 1.2])
    t = np.array([0.3, 0.4, 0.3, 0.7, 0.5, 0.3])
    phi = th.features.evaluate_reference(x[:, None], t)
    v = np.einsum("if,fg,ig->i", phi, cov, phi)
    se_mean = np.sqrt(v / n)
    assert np.all(np.abs(phi @ occ.W_bar[0] - phi @ mean) < 4.5 * se_mean)
    v_mc = np.einsum("if,fg,ig->i", phi, occ.cov_W, phi)
    assert np.all(np.abs(v_mc / v - 1) < 4.5 * np.sqrt(2 / n))
    se_m, se_v = occ.standard_errors(phi)
    assert np.all((se_m / se_mean > 0.5) & (se_m / se_mean < 1.6))
    assert np.all((se_v / (v * np.sqrt(2 / n)) > 0.5) & (se_v / (v * np.sqrt(2 / n)) < 1.6))


def test_theory_is_built_on_the_occupancy_moments(heavy_case, tmp_path):
    th, nodes, m, split = heavy_case
    occ = occupancy_moments(th, m, 40, seed=1, split=split, n_batches=4)
    bound = OccupancyLinear(th, m, occ, nodes=nodes)
    x, t = np.array([-0.5, 0.0, 0.7]), np.array([0.02, 0.1, 0.5])
    phi = th.features.evaluate_reference(x[:, None], t)
    np.testing.assert_allclose(bound.mean_denoiser(x, t)[:, 0], phi @ occ.W_bar[0], rtol=1e-12)
    np.testing.assert_allclose(
        bound.denoiser_covariance((x, t), paired=True)[:, 0, 0],
        np.einsum("if,fg,ig->i", phi, occ.cov_W, phi),
        rtol=1e-12,
    )
    full = bound.denoiser_covariance((x, t))[:, :, 0, 0]
    np.testing.assert_allclose(full, phi @ occ.cov_W @ phi.T, rtol=1e-12, atol=1e-15)
    # the V-kernel follows the occupancy covariance, not the cavity one
    vk = bound.v_kernel((x, t), paired=True)[:, 0, 0]
    vk_cav = CavityLinear(th, m).v_kernel((x, t), paired=True)[:, 0, 0]
    c = th.score_factor(t) ** 2
    np.testing.assert_allclose(vk, c * np.einsum("if,fg,ig->i", phi, occ.cov_W, phi), rtol=1e-12)
    assert not np.allclose(vk, vk_cav)
    # its field is the occupancy field
    np.testing.assert_allclose(
        bound.gaussian_field(3, seed=2).W, sample_occupancy_weights(th, m, 3, seed=2, split=split)
    )
    path = bound.save(tmp_path / "occ")
    back = OccupancyLinear.load(path)
    np.testing.assert_array_equal(back.occupancy.cov_W, occ.cov_W)
    np.testing.assert_array_equal(back.occupancy.batch_cov_W, occ.batch_cov_W)
    assert back.config() == bound.config() and back.config()["kind"] == "occupancy_linear"
    assert OccupancyMoments.load(tmp_path / "occ_occupancy.npz").n_members == 40


def test_stratified_moments_are_those_of_the_stratified_members(heavy_case, tmp_path):
    """With strata the moments are the sample moments of the stratified members (the same
    streams), the cells travel with the saved moments, and the bound theory's field is the
    stratified field."""
    th, nodes, m, _ = heavy_case
    split = occupancy_split(th, m, nodes=nodes, strata=(6, 5))
    occ = occupancy_moments(th, m, 40, seed=1, split=split, n_batches=4)
    assert occ.strata == (6, 5)
    rngs = [np.random.default_rng(s) for s in stream(1, "occupancy-moments").spawn(40)]
    W = occupancy_members(th, m, split, rngs)
    np.testing.assert_allclose(occ.W_bar[0], W.mean(axis=0), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(occ.cov_W, np.cov(W.T), rtol=1e-8, atol=1e-13)
    bound = OccupancyLinear(th, m, occ, nodes=nodes)
    np.testing.assert_allclose(
        bound.gaussian_field(3, seed=2).W, sample_occupancy_weights(th, m, 3, seed=2, split=split)
    )
    back = OccupancyLinear.load(bound.save(tmp_path / "strat"))
    assert back.occupancy.strata == (6, 5) and back.config() == bound.config()


def test_consistent_moments_with_early_triples_exact(heavy_case, tmp_path):
    """From the consistent split with the early triples exact, the moments are the sample moments
    of those members (the same streams; the members themselves are checked by hand in
    test_occupancy.py), the split's flags travel with the saved moments, and the bound theory's
    field is the consistent field with that exact_below, member for member."""
    th, nodes, m, _ = heavy_case
    split = occupancy_split(th, m, nodes=nodes, consistent=True, exact_below=0.2)
    occ = occupancy_moments(th, m, 40, seed=1, split=split, n_batches=4)
    assert occ.consistent and occ.exact_below == 0.2
    rngs = [np.random.default_rng(s) for s in stream(1, "occupancy-moments").spawn(40)]
    W = occupancy_members(th, m, split, rngs)
    np.testing.assert_allclose(occ.W_bar[0], W.mean(axis=0), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(occ.cov_W, np.cov(W.T), rtol=1e-8, atol=1e-13)
    plain = occupancy_moments(th, m, 40, seed=1, split=occupancy_split(th, m, nodes=nodes))
    assert not np.allclose(plain.W_bar, occ.W_bar)  # the split matters
    bound = OccupancyLinear(th, m, occ, nodes=nodes)
    assert bound.exact_below == 0.2 and "consistent, exact_below=0.2" in repr(bound)
    field = CavityLinear(th, m, "consistent", nodes, exact_below=0.2)
    np.testing.assert_array_equal(bound.gaussian_field(5, seed=2).W, field.gaussian_field(5, 2).W)
    back = OccupancyLinear.load(bound.save(tmp_path / "cons"))
    assert back.occupancy.consistent and back.occupancy.exact_below == 0.2
    assert back.config() == bound.config() and back.config()["consistent"] is True
    np.testing.assert_array_equal(back.gaussian_field(5, seed=2).W, field.gaussian_field(5, 2).W)
    # another field of the same moments keeps the plain split (no early triples)
    assert OccupancyLinear(th, m, occ, "stratified", nodes).exact_below == 0.0


def test_bad_input(heavy_case):
    th, nodes, m, split = heavy_case
    with pytest.raises(ValueError, match="n_members"):
        occupancy_moments(th, m, 30, split=split, n_batches=20)
    with pytest.raises(ValueError, match="n_batches"):
        occupancy_moments(th, m, 30, split=split, n_batches=1)
    with pytest.raises(TypeError, match="moments"):
        occupancy_moments(th, "m", 40, split=split)
    with pytest.raises(TypeError, match="split"):
        occupancy_moments(th, m, 40, split="s")
    with pytest.raises(ValueError, match="integer"):
        occupancy_moments(th, dataclasses.replace(m, P=16.5), 40)
    with pytest.raises(TypeError, match="occupancy"):
        OccupancyLinear(th, m, m)
    occ = occupancy_moments(th, m, 40, split=split, n_batches=4)
    with pytest.raises(ValueError, match="field"):
        OccupancyLinear(th, m, occ, field="bogus")
    with pytest.raises(ValueError, match="part"):
        OccupancyLinear(th, m, occ).denoiser_covariance((np.zeros(1), np.ones(1)), part="proxy")
    with pytest.raises(ValueError, match="phi"):
        occ.standard_errors(np.zeros((2, 3)))


# -- the issue-11 moment target (slow) ------------------------------------------------------------
QUERY_X = (-1.5, -1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0, 1.5)
QUERY_T = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


def _target_scores(P: int, eps: float = 0.01, strata: tuple[int, int] | None = None) -> dict:
    """The occupancy moments (100000 members, q_star = 1; light part per cell with ``strata``)
    scored against N = 2000 trained models
    (seed 0, F = 8 x 8) as `gtv validate linear` scores the cavity moments: points of the 11 x 7
    grid with trained Var D^ > 1e-4; r = Var_pred / Var_trained; z = (predicted - trained mean)
    over the trained mean's standard error."""
    from gtv.numerics.linear import train_linear_ensemble
    from gtv.validation.figures.figure2 import FIGURE2_DATA

    feats = ProductFeatures.uniform("gaussian", 1, 8, 8, (eps, 1.0), (-1.5, 1.5))
    ens = train_linear_ensemble(
        FIGURE2_DATA, feats, 2000, P, eps, ridge=0.1, seed=0, keep_normal_equations=False
    )
    th = linear_model_theory(FIGURE2_DATA, feats, eps, ridge=0.1)
    nodes = population_nodes(th)
    m = cavity_moments(th, P, nodes=nodes)
    occ = occupancy_moments(th, m, seed=0, nodes=nodes, strata=strata)
    bound = OccupancyLinear(th, m, occ, nodes=nodes)
    qx = np.array(QUERY_X)
    e, z = [], []
    for t in QUERY_T:
        vals = ens.denoise(qx[:, None], t)[:, :, 0]
        v = vals.var(axis=0, ddof=1)
        keep = v > 1e-4
        pv = bound.denoiser_covariance((qx, t), paired=True)[:, 0, 0]
        pm = bound.mean_denoiser(qx, t)[:, 0]
        se = vals.std(axis=0, ddof=1) / np.sqrt(vals.shape[0])
        e += list(np.abs(pv[keep] / v[keep] - 1))
        z += list(np.abs(pm[keep] - vals.mean(axis=0)[keep]) / se[keep])
    e, z = np.array(e), np.array(z)
    return {"median": np.median(e), "within_25": np.mean(e <= 0.25), "z_within_2": np.mean(z <= 2)}


@pytest.mark.slow
@pytest.mark.parametrize(
    "P",
    [
        pytest.param(
            256,
            marks=pytest.mark.xfail(
                strict=True,
                reason="F/P = 1/4: 77 % of points within 25 % (median 0.063); at t <= 0.05 next "
                "to the training points the field lacks the trained ensemble's heavy tail",
            ),
        ),
        64,
        16,
    ],
)
def test_variance_target_at_finite_F_over_P(P):
    """Issue 11 target (eps = 0.01, F = 8 x 8): median |Var_pred/Var_trained - 1| <= 0.10 and
    90 % of the points within 25 %. Measured (2-core AMD EPYC, 100000 members; the trained Var of
    2000 models has a relative SE of 3-12 % per point): F/P = 1/4: 0.063, 77 %; F/P = 1: 0.075,
    100 %; F/P = 4: 0.044, 100 %. The mean: 74 %, 91 % and 89 % of the points within 2 SE
    (median |z| 1.05, 0.65, 0.80; a correct theory: 95 % and 0.67) -- reported, not asserted:
    the issue states no threshold for it and one chosen after the measurement would not test."""
    s = _target_scores(P)
    assert s["median"] <= 0.10
    assert s["within_25"] >= 0.90


@pytest.mark.slow
@pytest.mark.parametrize("eps", [0.01, 0.001])
@pytest.mark.parametrize("P", [256, 64, 16])
def test_stratified_variance_target_at_finite_F_over_P(P, eps):
    """Issue 11 target with the light part conditioned on the cell counts (STRATA = 32 x 16
    cells; docs/math/finite_fp.md, *Occupancy strata*): median |r - 1| <= 0.10 and 90 % of the
    points within 25 % at F/P = 1/4, 1 and 4. Measured with `gtv validate linear --theory
    stratified` (same ensembles, 2-core AMD EPYC): see the docs table. The mean criterion is
    reported there, not asserted (no threshold was stated before the measurement)."""
    s = _target_scores(P, eps, strata=STRATA)
    assert s["median"] <= 0.10
    assert s["within_25"] >= 0.90
