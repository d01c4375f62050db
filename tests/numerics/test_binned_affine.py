"""Binned affine denoisers on Gaussian data (gtv.numerics.binned_affine.model; docs/math/linear.md, §3.6).

Kernels against their numpy references and across thread counts; the exact flow map against an
ODE solver; the quadrature theory against the sympy closed forms (gtv.theory.closed_forms) to 1e-12;
internal consistency of the white-noise and Gaussian-field routes; the finite-sample design
formula against Monte Carlo; save/load and bad input. The Monte Carlo comparison with trained
ensembles is in tests/validation/test_closed_forms_threeway.py.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest
import sympy as sp
from scipy.integrate import solve_ivp

from gtv.numerics.binned_affine.model import (
    BinnedAffineEnsemble,
    affine_ensemble_moments,
    affine_flow,
    affine_flow_reference,
    bin_map_quadrature,
    binned_affine_theory,
    binned_normal_equations,
    binned_normal_equations_reference,
    check_bin_edges,
    draw_gaussian_dsm_triples,
    train_binned_affine_ensemble,
)
from gtv.numerics.schedules import get_schedule
from gtv.theory import closed_forms as tcf
from gtv.theory.schedules import named_schedule

LV = get_schedule("linear-variance", T=0.9)
EDGES = [0.01, 0.05, 0.2, 0.5, 0.9]
M, S2, RHO = 0.5, 0.25, 0.1


@pytest.fixture(scope="module")
def theory():
    return binned_affine_theory(M, S2, EDGES, LV, RHO)


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
    from gtv.numerics.linear.model import model_rngs

    ens = train_binned_affine_ensemble(M, S2, EDGES, 3, 150, LV, RHO, seed=9)
    t, x0, x = draw_gaussian_dsm_triples(model_rngs(9, 3)[0], M, S2, 150, 0.01, LV)
    w = LV.dsm_weight(t)
    for k in range(4):
        sel = (t >= EDGES[k]) & (t < EDGES[k + 1])
        phi = np.stack([np.ones(sel.sum()), x[sel]], axis=1)
        Sig = (phi * w[sel, None]).T @ phi / 150 + RHO * np.eye(2)
        A = (phi * (w[sel] * x0[sel])[:, None]).sum(0) / 150
        np.testing.assert_allclose(ens.theta[0, k], np.linalg.solve(Sig, A), rtol=1e-12)


def test_flow_kernel_matches_reference_and_an_ode_solver(ensemble):
    quad = bin_map_quadrature(LV, EDGES)
    G, H = affine_flow(ensemble.theta, quad)
    G2, H2 = affine_flow_reference(ensemble.theta, quad)
    np.testing.assert_allclose(G, G2, rtol=1e-13)
    np.testing.assert_allclose(H, H2, rtol=1e-13, atol=1e-15)
    for n in (0, 1, 2):
        th = ensemble.theta[n]

        def rhs(tt, y, th=th):
            k = min(np.searchsorted(EDGES, tt, side="right") - 1, 3)
            return [LV.pf_x_coeff(tt) * y[0] - LV.pf_mean_coeff(tt) * (th[k, 0] + th[k, 1] * y[0])]

        for x_T in (0.0, 1.3):
            # One solve per bin (the right-hand side jumps at the edges).
            y = np.array([x_T])
            for k in reversed(range(4)):
                sol = solve_ivp(
                    rhs, (EDGES[k + 1], EDGES[k]), y, method="DOP853", rtol=1e-13, atol=1e-15
                )
                y = sol.y[:, -1]
            assert abs(y[0] - (G[n] * x_T + H[n])) < 1e-10


def test_flow_thread_count_invariance(ensemble):
    quad = bin_map_quadrature(LV, EDGES)
    prev = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        a = affine_flow(ensemble.theta, quad)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        b = affine_flow(ensemble.theta, quad)
    finally:
        numba.set_num_threads(prev)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("name, T, edges", [("linear-variance", 0.9, EDGES), ("ve", 0.7, None)])
def test_bin_maps_match_sympy_closed_forms(name, T, edges):
    edges = edges or [0.01, 0.05, 0.2, 0.4, 0.7]
    quad = bin_map_quadrature(get_schedule(name, T=T), edges)
    sch = named_schedule(name, T=sp.nsimplify(T))
    for k in range(len(edges) - 1):
        g, eta = tcf.affine_bin_map(sch, sp.nsimplify(edges[k]), sp.nsimplify(edges[k + 1]))
        for c in (0.3, 1.4):
            for order in range(3):
                gq, eq = quad.maps(np.full(len(edges) - 1, c), order)
                # Exact rational c: a 53-bit Float c loses digits in the closed form's 1/(c**2 - 1).
                cr = sp.nsimplify(c)
                gs = float(sp.N(sp.diff(g, tcf.c_sym, order).subs(tcf.c_sym, cr), 30))
                es = float(sp.N(sp.diff(eta, tcf.c_sym, order).subs(tcf.c_sym, cr), 30))
                assert abs(gq[k] - gs) <= 1e-12 * abs(gs), (k, c, order)
                assert abs(eq[k] - es) <= 1e-12 * abs(es), (k, c, order)


@pytest.mark.parametrize(
    "name, T, edges",
    [("linear-variance", 0.9, EDGES), ("ve", 0.7, [0.01, 0.05, 0.2, 0.4, 0.7])],
)
def test_theory_matches_sympy(name, T, edges):
    """theta_inf, Cov(theta), the mean shift and the delta-method moments: quadrature + jets vs
    closed forms + sympy derivatives, to 1e-12."""
    P = 400
    th = binned_affine_theory(M, S2, edges, get_schedule(name, T=T), RHO)
    sym = tcf.binned_affine_theory(
        named_schedule(name, T=sp.nsimplify(T)),
        sp.Rational(1, 2),
        sp.Rational(1, 4),
        [sp.nsimplify(e) for e in edges],
        sp.Rational(1, 10),
        P,
    )

    def close(a, b, tol=1e-12):
        a, b = (
            np.asarray(a, float),
            np.asarray(np.array(b, dtype=float), float).reshape(np.shape(a)),
        )
        assert np.max(np.abs(a - b)) <= tol * np.max(np.abs(b)), (a, b)

    close(th.theta_inf, sym.theta_inf)
    close(th.cov_theta(P), sym.cov_theta)
    close(th.unit_cov_proxy / P, sym.cov_theta_proxy)
    close(th.bias(P), sym.bias)
    close(th.moments(P), [sym.mean, sym.var])
    close(th.moments(None), [sym.mean_inf, sym.var_inf])
    close(th.moments(P, include_bias=False), [sym.mean_no_bias, sym.var_no_bias])
    print(
        f"{name}: [q] mean/var at P={P}: quadrature {th.moments(P)}, "
        f"sympy ({float(sym.mean)}, {float(sym.var)})"
    )


def test_theory_parts_and_limits(theory):
    """Proxy part below the total; Cov PSD; P -> oo gives the population model; with a vanishing
    covariance the white-noise moment ODE reproduces the exact flow of the mean model."""
    cov = theory.cov_theta(400)
    assert np.linalg.eigvalsh(cov).min() > -1e-12 * np.abs(cov).max()
    prox = theory.unit_cov_proxy / 400
    assert np.all(np.diag(prox) <= np.diag(cov) + 1e-15)
    assert np.all(np.diag(prox) > 0)  # Gaussian data: the posterior never collapses
    np.testing.assert_allclose(theory.moments(1e12), theory.moments(None), rtol=1e-9)
    np.testing.assert_allclose(theory.white_noise_moments(1e12), theory.moments(None), rtol=1e-9)
    # Finite-sample refinement: only the diagonal bin blocks grow, by n/(n - 3).
    ref = theory.cov_theta(400, finite_sample=True)
    n = theory.expected_counts(400)
    np.testing.assert_allclose(np.diag(ref), np.diag(cov) * np.repeat(n / (n - 3), 2))
    np.testing.assert_allclose(ref[0, 2:], cov[0, 2:])


def test_gaussian_field_agrees_with_the_delta_method(theory):
    """Gaussian field (exact in theta's Gaussian law) vs the delta method (first order in 1/P):
    at P = 1600 they differ by O(1/P**2) ~ 1e-6, far below 5 standard errors of the draws
    (false-positive rate ~1e-6 per comparison)."""
    mean_gf, var_gf, se_m, se_v = theory.gaussian_field_moments(1600, n_draws=100_000, seed=1)
    mean_dm, var_dm = theory.moments(1600)
    print(
        f"Gaussian field ({mean_gf:.6f}, {var_gf:.6f}), delta method ({mean_dm:.6f}, {var_dm:.6f})"
    )
    assert abs(mean_gf - mean_dm) < 5 * se_m
    assert abs(var_gf - var_dm) < 5 * se_v


def test_ensemble_moments_definition():
    G = np.array([0.5, 0.7])
    H = np.array([0.1, 0.3])
    mean, var = affine_ensemble_moments(G, H, 2.0)
    # Mixture of N(0.1, 0.5) and N(0.3, 0.98) with equal weights.
    assert abs(mean - 0.2) < 1e-15
    assert abs(var - ((0.5 + 0.98) / 2 + 0.01)) < 1e-15


def test_gaussian_design_inverse_moment_by_monte_carlo():
    """E[(X^T X)^{-1}] for 12 rows (1, x), x ~ N(0.4, 2): 200 000 replicates, within 5 s.e."""
    n, mu_x, v, reps = 12, 0.4, 2.0, 200_000
    rng = np.random.default_rng(2)
    xs = mu_x + np.sqrt(v) * rng.standard_normal((reps, n))
    s0, s1, s2 = n, xs.sum(1), (xs * xs).sum(1)
    det = s0 * s2 - s1 * s1
    inv = np.stack([s2 / det, -s1 / det, s0 / det], axis=1)
    E = np.array(tcf.gaussian_design_inverse_moment(n, sp.nsimplify(mu_x), 2), dtype=float)
    for k, (i, j) in enumerate([(0, 0), (0, 1), (1, 1)]):
        se = inv[:, k].std() / np.sqrt(reps)
        assert abs(inv[:, k].mean() - E[i, j]) < 5 * se, (i, j, inv[:, k].mean(), E[i, j])
    # The first-order value Sigma^{-1}/n is off by far more than the Monte Carlo error.
    first = np.linalg.inv(np.array([[1, mu_x], [mu_x, mu_x**2 + v]])) / n
    assert abs(inv[:, 2].mean() - first[1, 1]) > 20 * inv[:, 2].std() / np.sqrt(reps)


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
