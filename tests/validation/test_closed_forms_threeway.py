"""Three-way checks of the exactly solvable cases (docs/math/closed_forms.md): sympy = numeric
theory = Monte Carlo. Run with ``-s`` to see the three numbers of every comparison.

1. Gaussian data, naive estimator: sympy closed form, Fokker-Planck density, interleaved sampler
   (20 000 iid samples in 20 chunks; the chunk is the unit). The sampler's own time-step bias is
   known exactly (gtv.numerics.naive.naive_gaussian_euler_moments) and asserted to be far
   below the CI.
2. Gaussian data, binned affine model: sympy closed forms + delta method, the same by quadrature,
   and N = 20 000 trained models, each mapped exactly (x_eps = G x_T + H; the model is the unit,
   model-level bootstrap CIs). Also printed: the Gaussian field at theta_inf without the O(1/P)
   mean shift (what docs/math/linear.md's first-order formula alone gives) and the white-noise
   (Markov) approximation of the same noise.
3. One training point: no proxy noise; ridge-only variance; samples = p(x|eps) up to ridge bias.
4. Two points +-a: symbolic C and frac = the kernel (1e-12); naive Fokker-Planck density from the
   symbolic SDE = from the posterior kernel; density = interleaved sampler.

False positives: every CI is a 99.9 % interval; with 8 + 8 + 4 + 1 interval checks below the
chance that a correct implementation fails one is about 2 %. Seeds are fixed, so a pass is
reproducible.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest
import sympy as sp

from gtv.numerics.binned_affine import (
    affine_flow,
    binned_affine_theory,
    train_binned_affine_ensemble,
)
from gtv.numerics.exact import sample_exact_denoiser
from gtv.numerics.features import ProductFeatures
from gtv.numerics.fokker_planck import (
    gaussian_cell_averages,
    solve_fokker_planck,
    uniform_grid,
)
from gtv.numerics.linear import linear_model_theory, sample_linear_ensemble, train_linear_ensemble
from gtv.numerics.naive import (
    density_moments,
    naive_gaussian_density,
    naive_gaussian_euler_moments,
    sample_naive_gaussian,
)
from gtv.numerics.naive.estimator import naive_density, sample_naive_estimator
from gtv.numerics.posterior import posterior_stats
from gtv.numerics.schedules import get_schedule
from gtv.theory import closed_forms as tcf
from gtv.theory.proxy import evaluate
from gtv.theory.schedules import named_schedule
from gtv.validation.stats import affine_ensemble_moments_ci, bootstrap_ci

CONF = 0.999
M_DATA, S2_DATA, EPS = 0.5, 0.25, 0.01


@functools.cache
def _sym_schedule(name: str, T: float):
    return named_schedule(name, T=sp.nsimplify(T))


# -- 1. naive estimator on Gaussian data ----------------------------------------------------------
# (schedule, T, sampler steps, FP bounds and cells): the step counts keep the exactly known Euler
# bias below a quarter of the CI half-width (asserted); the FP cells (width 0.006 and 0.005) keep
# its error below 1e-4 (measured 3e-5; second-order convergence is tested in
# tests/numerics/naive/test_gaussian.py).
NAIVE = [
    ("linear-variance", 0.9, 1000, (-6.0, 6.0), 2000),
    ("ve", 0.7, 4000, (-20.0, 20.0), 8000),
]


@pytest.mark.parametrize("kappa", [0.05, 0.2])
@pytest.mark.parametrize("name, T, n_steps, bounds, n_cells", NAIVE)
def test_naive_gaussian_threeway(name, T, n_steps, bounds, n_cells, kappa):
    sched = get_schedule(name, T=T)
    r = tcf.naive_gaussian_moments(
        _sym_schedule(name, T),
        sp.nsimplify(M_DATA),
        sp.nsimplify(S2_DATA),
        sp.nsimplify(kappa),
        sp.nsimplify(EPS),
    )
    assert r.closed
    sym_mean, sym_var = float(sp.N(r.mean, 30)), float(sp.N(r.variance, 30))
    fp = naive_gaussian_density(
        M_DATA, S2_DATA, EPS, kappa, sched, bounds=bounds, n_cells=n_cells, n_steps=800
    )
    fp_mean, fp_var = density_moments(fp)
    x = sample_naive_gaussian(M_DATA, S2_DATA, 20_000, EPS, kappa, sched, n_steps=n_steps, seed=1)
    chunks = x[:, 0].reshape(20, -1)
    mc_mean = bootstrap_ci(chunks.mean(1), confidence=CONF, seed=1)
    mc_var = bootstrap_ci(chunks.var(1, ddof=1), confidence=CONF, seed=2)
    euler = naive_gaussian_euler_moments(M_DATA, S2_DATA, kappa, EPS, sched, n_steps=n_steps)
    print(
        f"\n[naive, {name} T={T}, kappa={kappa}] variance: sympy {sym_var:.6f} | Fokker-Planck "
        f"{fp_var:.6f} | interleaved sampler {mc_var[0]:.6f} [{mc_var[1]:.6f}, {mc_var[2]:.6f}] "
        f"({n_steps} Euler steps; their exact bias {euler.variance - sym_var:+.1e})\n"
        f"   mean: sympy {sym_mean:.6f} | FP {fp_mean:.6f} | sampler {mc_mean[0]:.6f} "
        f"[{mc_mean[1]:.6f}, {mc_mean[2]:.6f}]"
    )
    # The sampler's time-step bias cannot decide the comparison.
    assert abs(euler.variance - sym_var) < 0.25 * (mc_var[2] - mc_var[1]) / 2
    assert abs(euler.mean[0] - sym_mean) < 0.25 * (mc_mean[2] - mc_mean[1]) / 2
    # Fokker-Planck (deterministic): within 1e-4 of the closed form.
    assert abs(fp_var - sym_var) < 1e-4 * sym_var and abs(fp_mean - sym_mean) < 1e-4
    assert mc_mean[1] <= sym_mean <= mc_mean[2]
    assert mc_var[1] <= sym_var <= mc_var[2]
    # Not vacuous: the variance without the noise (kappa = 0) is far outside the CI.
    base = tcf.naive_gaussian_moments(
        _sym_schedule(name, T), sp.nsimplify(M_DATA), sp.nsimplify(S2_DATA), 0, sp.nsimplify(EPS)
    )
    assert float(sp.N(base.variance, 30)) < mc_var[1] - (mc_var[2] - mc_var[1])


# -- 2. binned affine model on Gaussian data ------------------------------------------------------
BINNED = {
    "linear-variance": (0.9, [0.01, 0.05, 0.2, 0.5, 0.9]),
    "ve": (0.7, [0.01, 0.05, 0.2, 0.4, 0.7]),
}
RIDGE = 0.1
N_MODELS = 20_000


@functools.cache
def _binned_theories(name: str):
    T, edges = BINNED[name]
    return binned_affine_theory(M_DATA, S2_DATA, edges, get_schedule(name, T=T), RIDGE)


@pytest.mark.parametrize("P", [400, pytest.param(1600, marks=pytest.mark.slow)])
@pytest.mark.parametrize("name", list(BINNED))
def test_binned_affine_threeway(name, P):
    T, edges = BINNED[name]
    sched = get_schedule(name, T=T)
    sym = tcf.binned_affine_theory(
        _sym_schedule(name, T),
        sp.nsimplify(M_DATA),
        sp.nsimplify(S2_DATA),
        [sp.nsimplify(e) for e in edges],
        sp.nsimplify(RIDGE),
        P,
    )
    th = _binned_theories(name)
    num_mean, num_var = th.moments(P)
    ens = train_binned_affine_ensemble(M_DATA, S2_DATA, edges, N_MODELS, P, sched, RIDGE, seed=P)
    G, H = affine_flow(ens.theta, th.quad)
    ci = affine_ensemble_moments_ci(G, H, th.quad.sigma_T2, confidence=CONF, seed=1)
    white = th.white_noise_moments(P)
    nb_mean, nb_var = th.moments(P, include_bias=False)
    exact = th.exact_moments("sampler")
    print(
        f"\n[binned affine, {name}, P={P}] variance: sympy {float(sym.var):.6f} | quadrature "
        f"{num_var:.6f} | {N_MODELS} trained models {ci['var'][0]:.6f} "
        f"[{ci['var'][1]:.6f}, {ci['var'][2]:.6f}]\n"
        f"   mean: sympy {float(sym.mean):.6f} | quadrature {num_mean:.6f} | trained "
        f"{ci['mean'][0]:.6f} [{ci['mean'][1]:.6f}, {ci['mean'][2]:.6f}]\n"
        f"   P=inf model ({float(sym.mean_inf):.6f}, {float(sym.var_inf):.6f}); exact score "
        f"({exact[0]:.6f}, {exact[1]:.6f}); without the O(1/P) mean shift ({nb_mean:.6f}, "
        f"{nb_var:.6f}); white noise ({white[0]:.6f}, {white[1]:.6f})"
    )
    assert abs(num_mean - float(sym.mean)) < 1e-12 and abs(num_var - float(sym.var)) < 1e-12
    assert ci["mean"][1] <= float(sym.mean) <= ci["mean"][2]
    assert ci["var"][1] <= float(sym.var) <= ci["var"][2]
    # Finding: the O(1/P) mean shift of the coefficients is needed. Without it (a Gaussian field
    # around theta_inf) the variance misses the trained ensemble's CI in every case here.
    assert not ci["var"][1] <= nb_var <= ci["var"][2]
    # The coloured noise gives more variance than its white-noise (Markov) approximation here.
    assert white[1] < float(sym.var)
    if P == 400:
        # Not vacuous: the population model (P = inf) is outside the CI, i.e. the O(1/P) effect
        # is resolved (at P = 1600 it is ~1 CI width: printed, not asserted).
        assert not ci["var"][1] <= float(sym.var_inf) <= ci["var"][2]


# -- 3. one training point ----------------------------------------------------------------------
MU1 = np.array([[0.5]])
FOURIER = ProductFeatures.uniform("fourier", dim=1, n_space=5, n_time=3, t_range=(EPS, 1.0))
XQ = np.array([[-1.0], [0.0], [0.5], [1.2]])
TQ = np.array([0.05, 0.3, 0.05, 0.7])


def _denoiser_at_queries(ens) -> np.ndarray:
    return np.stack([ens.denoise(XQ[i : i + 1], TQ[i])[:, 0, 0] for i in range(len(TQ))], axis=1)


def test_single_point_no_proxy_noise_and_exact_memorization():
    """rho = 0: every model is the constant denoiser mu (to round-off), the theory's proxy part is
    exactly zero, and the ensemble's samples are the exact-denoiser PF-ODE's."""
    ens = train_linear_ensemble(MU1, FOURIER, 50, 200, EPS, ridge=0.0, seed=0)
    xs = np.linspace(-3, 3, 25)[:, None]
    for tv in (0.011, 0.1, 0.5, 1.0):
        assert np.abs(ens.denoise(xs, tv) - 0.5).max() < 1e-9
    th = linear_model_theory(MU1, FOURIER, EPS, ridge=0.1)
    assert np.all(th.cov_g_proxy == 0.0)
    x_T = np.random.default_rng(0).standard_normal((50, 200, 1))
    a = sample_linear_ensemble(ens, 200, n_steps=100, method="heun", x_T=x_T)
    b = np.stack(
        [
            sample_exact_denoiser(MU1, 200, EPS, n_steps=100, method="heun", x_T=x_T[n])
            for n in range(50)
        ]
    )
    assert np.abs(a - b).max() < 1e-8


def test_single_point_ridge_variance_scales_like_rho_squared():
    """Var D^ = mu**2 rho**2 Var(phi^T Sigma_P^{-1} e_c): the same designs (seed) at rho = 1e-6
    and 1e-7 give Var/rho**2 equal to 1 % (rho far below the smallest eigenvalue of Sigma_P,
    ~8e-4), and equal to the rho -> 0 value computed from Sigma_P at rho = 0."""
    vals = []
    for rho in (1e-6, 1e-7, 0.0):
        ens = train_linear_ensemble(MU1, FOURIER, 200, 2000, EPS, ridge=rho, seed=0)
        if rho > 0:
            vals.append(_denoiser_at_queries(ens).var(0, ddof=1) / rho**2)
        else:
            phi = np.stack([FOURIER.evaluate(XQ[i : i + 1], TQ[i])[0] for i in range(len(TQ))])
            sol = np.linalg.solve(ens.gram, np.broadcast_to(np.eye(15)[0], (200, 15))[..., None])
            limit = (0.5 * (sol[..., 0] @ phi.T)).var(0, ddof=1)
    print("\nVar D^ / rho**2 at rho = 1e-6, 1e-7 and the rho -> 0 limit:", vals[0], vals[1], limit)
    np.testing.assert_allclose(vals[0], vals[1], rtol=0.01)
    np.testing.assert_allclose(vals[1], limit, rtol=0.002)


def test_single_point_ridge_variance_matches_first_order_theory():
    """At P = 8000, rho = 0.1 (F = 15) the first-order ridge theory (misfit part only) predicts the
    across-model variance of D^ at four (x, t): within model-level 99.9 % CIs."""
    P, N = 8000, 400
    ens = train_linear_ensemble(MU1, FOURIER, N, P, EPS, ridge=0.1, seed=3)
    D = _denoiser_at_queries(ens)
    th = linear_model_theory(MU1, FOURIER, EPS, ridge=0.1)
    pred = th.denoiser_covariance((XQ, TQ), P=P, paired=True)[:, 0, 0]
    pred_proxy = th.denoiser_covariance((XQ, TQ), P=P, paired=True, part="proxy")[:, 0, 0]
    assert np.all(pred_proxy == 0.0)
    for i in range(len(TQ)):
        sq = (D[:, i] - D[:, i].mean()) ** 2 * N / (N - 1)
        est, lo, hi = bootstrap_ci(sq, confidence=CONF, seed=i)
        print(
            f"\n(x, t) = ({XQ[i, 0]}, {TQ[i]}): Var D^ {est:.3e} [{lo:.3e}, {hi:.3e}], "
            f"theory {pred[i]:.3e}"
        )
        assert lo <= pred[i] <= hi


@pytest.mark.slow
def test_single_point_samples_are_p_eps_up_to_ridge_bias():
    """rho = 0: the trained ensemble's samples (Heun, 600 steps) have the mean and variance of
    p(x|eps) = N(alpha mu, sigma**2) within model-level CIs. rho = 0.1: they match the population
    (W_inf) model run through the same sampler, and miss p(x|eps) by the ridge bias."""
    sched = get_schedule("vp-linear")
    target = (float(sched.alpha(EPS)) * 0.5, float(sched.sigma2(EPS)))
    ens0 = train_linear_ensemble(MU1, FOURIER, 20, 200, EPS, ridge=0.0, seed=5)
    x0 = sample_linear_ensemble(ens0, 2000, n_steps=600, method="heun", seed=6)[:, :, 0]
    m0 = bootstrap_ci(x0.mean(1), confidence=CONF, seed=1)
    v0 = bootstrap_ci(x0.var(1, ddof=1), confidence=CONF, seed=2)
    ens = train_linear_ensemble(MU1, FOURIER, 100, 2000, EPS, ridge=0.1, seed=7)
    x1 = sample_linear_ensemble(ens, 1000, n_steps=200, method="heun", seed=8)[:, :, 0]
    m1 = bootstrap_ci(x1.mean(1), confidence=CONF, seed=3)
    v1 = bootstrap_ci(x1.var(1, ddof=1), confidence=CONF, seed=4)
    th = linear_model_theory(MU1, FOURIER, EPS, ridge=0.1)
    pop = dataclasses.replace(ens, W=th.W_inf[None], gram=None, rhs=None)
    xp = sample_linear_ensemble(pop, 200_000, n_steps=200, method="heun", seed=9)[0, :, 0]
    print(
        f"\np(x|eps): mean {target[0]:.5f}, var {target[1]:.6f}\n"
        f"rho = 0:   trained mean {m0[0]:.5f} [{m0[1]:.5f}, {m0[2]:.5f}], "
        f"var {v0[0]:.6f} [{v0[1]:.6f}, {v0[2]:.6f}]\n"
        f"rho = 0.1: trained mean {m1[0]:.5f} [{m1[1]:.5f}, {m1[2]:.5f}], "
        f"var {v1[0]:.6f} [{v1[1]:.6f}, {v1[2]:.6f}]; W_inf model mean {xp.mean():.5f}, "
        f"var {xp.var():.6f}"
    )
    assert m0[1] <= target[0] <= m0[2] and v0[1] <= target[1] <= v0[2]
    # The W_inf model's own sampling error (200 000 samples) is ~7x below the CI widths.
    assert m1[1] <= xp.mean() <= m1[2] and v1[1] <= xp.var() <= v1[2]
    assert not m1[1] <= target[0] <= m1[2]  # the ridge bias is resolved


# -- 4. two points +-a ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["linear-variance", "vp-linear"])
def test_two_points_symbolic_C_and_frac_match_the_kernel(name):
    a = sp.Rational(4, 5)
    forms = tcf.two_point_closed_forms(a, named_schedule(name))
    xs = np.array([-2.0, -0.7, -0.05, 0.3, 1.1, 2.5])
    for tv in (0.02, 0.1, 0.5, 0.9):
        st = posterior_stats(np.array([[0.8], [-0.8]]), xs[:, None], tv, name)
        C = np.array([evaluate(forms["C"], xv, tv) for xv in xs])
        frac = np.array([evaluate(forms["frac"], xv, tv) for xv in xs])
        np.testing.assert_allclose(st.proxy_cov_trace, C, rtol=1e-12, atol=0)
        np.testing.assert_allclose(st.frac, frac, rtol=1e-12, atol=0)


@pytest.mark.slow
def test_two_points_naive_density_three_ways():
    """kappa = 0.3, a = 0.8, vp-linear, eps = 0.01: Fokker-Planck with the compiled symbolic SDE
    (theory) = with the posterior kernel (gtv.numerics.naive.estimator.naive_density) to 1e-10; its
    second moment E[x**2] lies in the interleaved sampler's 99.9 % CI (40 chunks of 500) and is
    far from the kappa = 0 value (that of p(x|eps))."""
    a, kappa = 0.8, 0.3
    data = np.array([[a], [-a]])
    opts = {"bounds": (-5.0, 5.0), "n_cells": 800, "n_steps": 400}
    fp_kernel = naive_density(data, EPS, kappa, **opts)
    sched = get_schedule("vp-linear")
    sde = tcf.two_point_closed_forms(sp.Rational(4, 5), named_schedule("vp-linear"))["naive_sde"]
    funcs = sde.compile(prefix="two_point_test")
    grid = uniform_grid(opts["bounds"], opts["n_cells"])
    fp_sym = solve_fokker_planck(
        lambda x, t: funcs["drift"](x[:, 0], t, kappa)[:, None],
        lambda x, t: funcs["noise"](x[:, 0], t, kappa),
        gaussian_cell_averages(grid, 0.0, float(sched.sigma2(sched.T))),
        grid,
        sched.T,
        EPS,
        opts["n_steps"],
    )
    scale = fp_kernel.density.max()
    assert np.abs(fp_sym.density - fp_kernel.density).max() < 1e-10 * scale
    second = density_moments(fp_kernel)[1]  # the mean is 0 by symmetry
    # kappa = 0 (exact-score PF-ODE, ending in p(x|eps)): E[x**2] = alpha**2 a**2 + sigma**2.
    second0 = float(sched.alpha(EPS)) ** 2 * a**2 + float(sched.sigma2(EPS))
    x = sample_naive_estimator(data, 20_000, EPS, kappa, n_steps=1000, seed=4)
    est, lo, hi = bootstrap_ci((x[:, 0] ** 2).reshape(40, -1).mean(1), confidence=CONF, seed=4)
    print(
        f"\n[two points] E[x**2]: Fokker-Planck {second:.5f} (p(x|eps): {second0:.5f}) | "
        f"sampler {est:.5f} [{lo:.5f}, {hi:.5f}]"
    )
    assert lo <= second <= hi
    assert second0 < lo - (hi - lo)


# -- larger runs (python -m pytest -m slow) ------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name", list(BINNED))
def test_binned_affine_large_ensembles(name):
    """N = 100 000 models. P = 1600 and 6400: the first-order theory is inside the (5x narrower
    than default) CIs. P = 100 (about 4.5 triples expected in the first bin): it is not -- the
    known weakness of the first-order theory at small counts (docs/math/linear.md), recorded
    here."""
    T, edges = BINNED[name]
    sched = get_schedule(name, T=T)
    th = _binned_theories(name)
    for P in (100, 1600, 6400):
        ens = train_binned_affine_ensemble(M_DATA, S2_DATA, edges, 100_000, P, sched, RIDGE, seed=P)
        G, H = affine_flow(ens.theta, th.quad)
        ci = affine_ensemble_moments_ci(G, H, th.quad.sigma_T2, confidence=CONF, seed=1)
        mean, var = th.moments(P)
        print(
            f"\n[large, {name}, P={P}] mean: theory {mean:.6f}, trained {ci['mean'][0]:.6f} "
            f"[{ci['mean'][1]:.6f}, {ci['mean'][2]:.6f}]; var: theory {var:.6f}, trained "
            f"{ci['var'][0]:.6f} [{ci['var'][1]:.6f}, {ci['var'][2]:.6f}]"
        )
        inside = ci["mean"][1] <= mean <= ci["mean"][2] and ci["var"][1] <= var <= ci["var"][2]
        assert inside == (P != 100)


@pytest.mark.slow
@pytest.mark.parametrize("name, T, n_steps, bounds, n_cells", NAIVE)
def test_naive_gaussian_large(name, T, n_steps, bounds, n_cells):
    """200 000 samples (CIs ~3x narrower than default) and twice the steps; kappa = 0.2."""
    kappa = 0.2
    sched = get_schedule(name, T=T)
    r = tcf.naive_gaussian_moments(
        _sym_schedule(name, T),
        sp.nsimplify(M_DATA),
        sp.nsimplify(S2_DATA),
        sp.nsimplify(kappa),
        sp.nsimplify(EPS),
    )
    sym_var = float(sp.N(r.variance, 30))
    x = sample_naive_gaussian(
        M_DATA, S2_DATA, 200_000, EPS, kappa, sched, n_steps=2 * n_steps, seed=11
    )
    est, lo, hi = bootstrap_ci(x[:, 0].reshape(40, -1).var(1, ddof=1), confidence=CONF, seed=3)
    euler = naive_gaussian_euler_moments(M_DATA, S2_DATA, kappa, EPS, sched, n_steps=2 * n_steps)
    print(
        f"\n[large naive, {name}] variance: sympy {sym_var:.6f} | sampler {est:.6f} "
        f"[{lo:.6f}, {hi:.6f}] (Euler bias {euler.variance - sym_var:+.1e})"
    )
    assert abs(euler.variance - sym_var) < 0.25 * (hi - lo) / 2
    assert lo <= sym_var <= hi
