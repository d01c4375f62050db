"""First-order (1/P) theory of lazy NTK ensembles by Nystrom quadrature (docs/math/kernel.md).

Checks:

* the quadrature (log-time Gauss-Legendre) and the Nystrom discretization's convergence;
* the whole first-order formula on the discrete node measure against an independent computation:
  the exact finite-P solution written as a matrix exponential / matrix power of the node-space
  ODE, differentiated by complex step along every one-triple direction (proxy and misfit parts
  separately; gradient flow, gradient descent, ridge);
* the closed-form identities (misfit mean ``L = lr tau e^{-lr tau s} mu_tilde``) and the
  limits tau -> 0 (slope ``T mu_bar``, covariance ``~ tau**2`` with its direct formula) and
  tau -> inf (Bayes denoiser on the nodes, proxy-only local kernel that grows with refinement);
* V-kernel and Markov intensity against their definitions;
* at the model level, ensembles of trained infinite-width networks (N = 400 independent DSM
  draws, P = 300) against the predicted mean and variance with model-level CIs;
* save/load, bad input.
"""

import numpy as np
import pytest
from scipy import stats
from scipy.linalg import expm
from threadpoolctl import threadpool_limits

from gtv.numerics.kernel import (
    NTKTheory,
    ntk_gram,
    ntk_theory,
    train_kernel_ensemble,
)
from gtv.numerics.quadrature import log_time_quadrature
from gtv.numerics.streams import stream_rng

DATA = np.array([[-1.0], [0.0], [1.0]])
EPS = 0.1
XQ = np.array([-1.2, -0.5, 0.3, 1.0])
TQ = 0.2


@pytest.fixture(scope="module")
def theory():
    return ntk_theory(DATA, EPS, n_t=12, n_hermite=12)


def test_log_time_quadrature():
    t, w = log_time_quadrature(0.01, 1.0, 16)
    assert np.all((t > 0.01) & (t < 1.0))
    np.testing.assert_allclose(w.sum(), 1.0, rtol=1e-14)
    np.testing.assert_allclose(w @ (1 / t), np.log(100) / 0.99, rtol=1e-14)
    np.testing.assert_allclose(w @ t**3, (1 - 0.01**4) / 4 / 0.99, rtol=1e-13)
    with pytest.raises(ValueError, match="n_t"):
        log_time_quadrature(0.01, 1.0, 0)
    with pytest.raises(ValueError, match="eps"):
        log_time_quadrature(1.5, 1.0, 4)


def test_nodes_are_the_population_measure(theory):
    """Node probabilities sum to 1; E[lam x0] from the posterior equals the direct mixture
    average (the Bayes denoiser is unbiased); every node's posterior is a proper distribution."""
    np.testing.assert_allclose(theory.omega.sum(), 1.0, rtol=1e-12)
    comp = np.tile(np.repeat(DATA[:, 0], theory.n_hermite), theory.n_t)  # x0 = mu_m per node
    np.testing.assert_allclose(
        theory.omega @ (theory.lam * theory.mu_bar[:, 0]),
        theory.omega @ (theory.lam * comp),
        rtol=1e-10,
        atol=1e-12,
    )
    assert np.all(theory.sigma_post[:, 0, 0] >= 0)
    assert theory.rank <= theory.n_nodes and np.all(theory.s > 0)


# -- exact first-order check on the discrete measure -----------------------------------------------
def _posterior_weights(th):
    a = th.schedule.alpha(th.nodes_t)
    s2 = th.schedule.sigma2(th.nodes_t)
    logit = -((th.nodes_x[:, 0][:, None] - a[:, None] * DATA[:, 0][None, :]) ** 2) / (
        2 * s2[:, None]
    )
    logit -= logit.max(axis=1, keepdims=True)
    w = np.exp(logit)
    return w / w.sum(axis=1, keepdims=True)


@threadpool_limits.wrap(limits=1, user_api="blas")  # small matrices: threads only thrash
@pytest.mark.parametrize(
    "flow,lr,tau,ridge",
    [
        ("gradient-flow", 1.0, 3.0, 0.0),
        ("gradient-flow", 0.5, 20.0, 0.05),
        ("gradient-descent", 0.25, 5.0, 0.0),
        ("gradient-descent", 0.25, 3.0, 0.1),
    ],
)
def test_first_order_covariance_equals_linearized_exact_solution(flow, lr, tau, ridge):
    """On the node measure a training set is (node counts n, target sums y) and the trained
    coefficients solve dc/dtau = -lr (diag(lam n) G c + rho c - lam y) exactly. Their derivative
    along each one-triple direction (complex step through scipy's expm / a matrix power, no
    eigendecomposition, no divided differences) gives Cov = (1/P) sum_triples (J zeta)(J zeta)^T;
    the theory's proxy and misfit parts must equal it."""
    th = ntk_theory(DATA, 0.05, n_t=4, n_hermite=4, rcond=0.0, lr=lr, flow=flow, ridge=ridge)
    Q = th.n_nodes
    assert th.rank == Q
    G = ntk_gram(th.nodes_z)
    lam, om, mub = th.lam, th.omega, th.mu_bar[:, 0]

    def solve(n, y):
        """c(n, y): last column of a Van Loan matrix exponential (flow) or of a matrix power
        (gradient descent) of the augmented system."""
        A = (lam * n)[:, None] * G + ridge * np.eye(Q)
        if flow == "gradient-flow":
            M = np.zeros((Q + 1, Q + 1), dtype=complex)
            M[:Q, :Q] = -lr * tau * A
            M[:Q, Q] = lr * tau * lam * y
            return expm(M)[:Q, Q]
        M = np.eye(Q + 1, dtype=complex)
        M[:Q, :Q] -= lr * A
        M[:Q, Q] = lr * lam * y
        return np.linalg.matrix_power(M, int(round(tau / lr)))[:Q, Q]

    n0, y0 = om.astype(complex), (om * mub).astype(complex)
    np.testing.assert_allclose(
        solve(n0, y0).real, th.node_coefficients(tau)[:, 0], rtol=1e-11, atol=1e-13
    )
    w = _posterior_weights(th)
    h = 1e-10  # complex step: error O(h**2); tiny h only produces subnormal numbers in expm
    J_mis, J_prox = [], []
    for q in range(Q):
        e = np.zeros(Q)
        e[q] = 1.0
        # misfit direction: one triple at node q with x0 = mu_bar_q, minus its mean
        d = solve(n0 + 1j * h * (e - om), y0 + 1j * h * (e * mub[q] - om * mub)).imag / h
        J_mis.append(np.sqrt(om[q]) * d)
        # proxy directions: x0 = mu_m, minus mu_bar_q
        for m in range(DATA.shape[0]):
            d = solve(n0, y0 + 1j * h * e * (DATA[m, 0] - mub[q])).imag / h
            J_prox.append(np.sqrt(om[q] * w[q, m]) * d)
    K = ntk_gram(th.inputs(XQ, TQ), th.nodes_z)
    for part, J in (("misfit", np.array(J_mis)), ("proxy", np.array(J_prox))):
        ref = K @ (J.T @ J) @ K.T
        got = th.denoiser_covariance((XQ, TQ), tau=tau, P=1, part=part)[:, :, 0, 0]
        np.testing.assert_allclose(got, ref, rtol=1e-8, atol=1e-12 * np.abs(ref).max())
    got = th.denoiser_covariance((XQ, TQ), tau=tau, P=7, part="total")[:, :, 0, 0]
    ref = (
        th.denoiser_covariance((XQ, TQ), tau=tau, P=1, part="proxy")
        + th.denoiser_covariance((XQ, TQ), tau=tau, P=1, part="misfit")
    )[:, :, 0, 0] / 7
    np.testing.assert_allclose(got, ref, rtol=1e-13)


def test_misfit_mean_identity(theory):
    """Without ridge (flow): L = sum_q sqrt(omega_q lam_q) Z_q = lr tau e^{-lr tau s} mu_tilde."""
    for tau in (0.3, 4.0, 50.0):
        _, L = theory._misfit_functional(tau)
        ref = (tau * np.exp(-tau * theory.s))[:, None] * theory.mu_tilde
        np.testing.assert_allclose(L, ref, rtol=1e-9, atol=1e-12 * np.abs(ref).max())


# -- limits -------------------------------------------------------------------------------------
def test_small_tau_limit(theory):
    """tau -> 0: D_bar / tau -> (T mu_bar)(z) and Cov / tau**2 -> (1/P) Cov_triple[lam Theta x0],
    both computed directly from the nodes (no eigendecomposition)."""
    tau, P = 1e-7, 50.0
    K = ntk_gram(theory.inputs(XQ, TQ), theory.nodes_z)
    wl = theory.omega * theory.lam
    b = K @ (wl * theory.mu_bar[:, 0])
    np.testing.assert_allclose(theory.mean_denoiser(XQ, TQ, tau)[:, 0] / tau, b, rtol=1e-6)
    second = theory.sigma_post[:, 0, 0] + theory.mu_bar[:, 0] ** 2
    direct = (K * (wl * theory.lam * second)) @ K.T - np.outer(b, b)
    got = theory.denoiser_covariance((XQ, TQ), tau=tau, P=P)[:, :, 0, 0] * P / tau**2
    np.testing.assert_allclose(got, direct, rtol=1e-5)


def test_converged_limit_learns_the_bayes_denoiser_with_a_local_kernel():
    """tau = inf, no ridge, full rank: D_bar = mu_bar on the nodes, the misfit part vanishes, and
    the proxy variance grows as the quadrature is refined (a local kernel: the first-order
    theory has no continuum limit at tau = inf). Measured mean variance over the query points
    (P = 1): 21, 125, 399 for n_hermite = 4, 6, 9."""
    var = []
    for nh in (4, 6, 9):
        th = ntk_theory(DATA, EPS, n_t=6, n_hermite=nh, rcond=0.0)
        if nh == 4:
            a = th.node_coefficients(np.inf)
            np.testing.assert_allclose(ntk_gram(th.nodes_z) @ a, th.mu_bar, atol=1e-6)
            mis = th.denoiser_covariance((XQ, TQ), tau=np.inf, P=1, part="misfit", paired=True)
            prox = th.denoiser_covariance((XQ, TQ), tau=np.inf, P=1, part="proxy", paired=True)
            assert np.abs(mis).max() < 1e-6 * np.abs(prox).max()
        var.append(th.denoiser_covariance((XQ, TQ), tau=np.inf, P=1, paired=True)[:, 0, 0].mean())
    assert var[1] > 2 * var[0] and var[2] > 2 * var[0]


def test_nystrom_discretization_converges(theory):
    """Mean and standard deviation at the query points for (n_t, n_hermite) = (6, 6), (9, 9),
    (12, 12) (fixture) and (18, 18): successive differences shrink and the last is < 1e-3."""
    taus = (1.0, 10.0, 100.0)

    def summary(th):
        return np.concatenate(
            [
                np.concatenate(
                    [
                        th.mean_denoiser(XQ, TQ, tau)[:, 0],
                        np.sqrt(th.denoiser_covariance((XQ, TQ), tau=tau, P=1, paired=True))[
                            :, 0, 0
                        ],
                    ]
                )
                for tau in taus
            ]
        )

    vals = [summary(ntk_theory(DATA, EPS, n_t=n, n_hermite=n)) for n in (6, 9)]
    vals += [summary(theory), summary(ntk_theory(DATA, EPS, n_t=18, n_hermite=18))]
    diffs = [np.abs(vals[i + 1] - vals[i]).max() for i in range(3)]
    assert diffs[2] < diffs[1] < diffs[0]
    assert diffs[2] < 1e-3 * np.abs(vals[-1]).max()


# -- derived quantities -------------------------------------------------------------------------
def test_v_kernel_and_markov_intensity_definitions(theory):
    tau, P = 10.0, 200.0
    x2, t2 = XQ[::-1], np.array([0.15, 0.4, 0.7, 0.9])
    cov = theory.denoiser_covariance((XQ, TQ), (x2, t2), tau=tau, P=P)
    c = theory.schedule.diffusion(np.r_[TQ, t2]) * theory.schedule.alpha(np.r_[TQ, t2])
    c = c / theory.schedule.sigma2(np.r_[TQ, t2])
    V = theory.v_kernel((XQ, TQ), (x2, t2), tau=tau, P=P)
    np.testing.assert_allclose(V, cov * c[0] * c[1:][None, :, None, None], rtol=1e-13)
    Vp = theory.v_kernel((XQ, TQ), (x2, t2), tau=tau, P=P, paired=True)
    np.testing.assert_allclose(Vp[:, 0, 0], np.diagonal(V[:, :, 0, 0]), rtol=1e-13)
    # Q(x, t) = int_eps^T V(x, t; x, t') dt' with the theory's time rule, term by term
    Qm = theory.markov_intensity(XQ, TQ, tau=tau, P=P)[:, 0, 0]
    ref = np.zeros(XQ.size)
    for tk, wk in zip(theory.t_nodes, theory.t_weights, strict=True):
        v = theory.v_kernel((XQ, TQ), (XQ, np.full(XQ.size, tk)), tau=tau, P=P, paired=True)
        ref += wk * (theory.schedule.T - EPS) * v[:, 0, 0]
    np.testing.assert_allclose(Qm, ref, rtol=1e-10)


def test_effective_dimension_and_stability(theory):
    d = theory.effective_dimension(np.array([0.0, 1.0, 10.0, 100.0]))
    assert d[0] == 0.0 and np.all(np.diff(d) > 0)
    np.testing.assert_allclose(theory.effective_dimension(10.0), np.sum(-np.expm1(-10 * theory.s)))
    assert theory.lr_max == 2.0 / theory.s[0]


# -- the theory against trained infinite-width ensembles -----------------------------------------
def _compare_with_ensemble(theory, P, N, taus, seed, confidence):
    """Per-model D^_n(z_i) for each tau: theory mean within the CLT CI of the ensemble mean and
    theory variance within the BCa bootstrap CI of the sample variance (the model is the unit)."""
    ens = train_kernel_ensemble(DATA, P, N, theory.eps, taus, seed=seed)
    rows = []
    for tau in taus:
        d = ens.denoiser(XQ, TQ, tau)[:, :, 0]
        mean = theory.mean_denoiser(XQ, TQ, tau)[:, 0]
        var = theory.denoiser_covariance((XQ, TQ), tau=tau, P=P, paired=True)[:, 0, 0]
        zcrit = stats.norm.ppf(0.5 + confidence / 2)
        for i in range(XQ.size):
            se = d[:, i].std(ddof=1) / np.sqrt(N)
            ci = stats.bootstrap(
                (d[:, i],),
                lambda v, axis: np.var(v, axis=axis, ddof=1),
                confidence_level=confidence,
                n_resamples=2000,
                method="BCa",
                random_state=stream_rng(seed, "bootstrap", i),
            ).confidence_interval
            rows.append(
                {
                    "tau": tau,
                    "x": XQ[i],
                    "mean": d[:, i].mean(),
                    "mean_ci": (d[:, i].mean() - zcrit * se, d[:, i].mean() + zcrit * se),
                    "mean_theory": mean[i],
                    "var": d[:, i].var(ddof=1),
                    "var_ci": (ci.low, ci.high),
                    "var_theory": var[i],
                }
            )
    return rows


def test_theory_matches_trained_infinite_width_ensembles(theory):
    """N = 400 ensembles of exact infinite-width (kernel) models, P = 300, eps = 0.1, at
    tau = 1 and 10 (d_eff = 0.2 and 1.4 << P). Every theory mean and variance lies in the
    99.5 % model-level CI (16 comparisons: family-wise false-failure rate <= 8 % for an exact
    first-order theory; the known O(1/P) bias of the mean, P * bias ~ 2, is ~1.5 standard
    errors here). Power: the proxy-only prediction (the wrong model for short training) is
    rejected at every point at tau = 1."""
    rows = _compare_with_ensemble(theory, 300, 400, np.array([1.0, 10.0]), 11, 0.995)
    for r in rows:
        assert r["mean_ci"][0] <= r["mean_theory"] <= r["mean_ci"][1], r
        assert r["var_ci"][0] <= r["var_theory"] <= r["var_ci"][1], r
    prox = theory.denoiser_covariance((XQ, TQ), tau=1.0, P=300, part="proxy", paired=True)
    for r, v in zip([r for r in rows if r["tau"] == 1.0], prox[:, 0, 0], strict=True):
        assert not (r["var_ci"][0] <= v <= r["var_ci"][1])


@pytest.mark.slow
def test_theory_matches_trained_ensembles_long_training():
    """Slow: tau = 100 (d_eff = 3.4) with P = 600, N = 600, refined quadrature; same criteria.
    Measured (eps = 0.1, this seed): variance ratio trained/theory 1.01-1.06. At eps = 0.01 and
    P = 200-1600 the standard-deviation ratio is 1.2-2.2 at the outer query points (t = 0.1,
    tau = 10): the heavy tail of the DSM weight lam ~ 1/t makes single triples
    non-perturbative, and the first-order theory fails there (not asserted)."""
    th = ntk_theory(DATA, EPS, n_t=16, n_hermite=16)
    rows = _compare_with_ensemble(th, 600, 600, np.array([100.0]), 21, 0.995)
    for r in rows:
        assert r["mean_ci"][0] <= r["mean_theory"] <= r["mean_ci"][1], r
        assert r["var_ci"][0] <= r["var_theory"] <= r["var_ci"][1], r


# -- persistence, input checks ------------------------------------------------------------------
def test_save_load_round_trip(theory, tmp_path):
    path = theory.save(tmp_path / "ntk_theory")
    back = NTKTheory.load(path)
    assert back.config() == theory.config()
    np.testing.assert_array_equal(back.s, theory.s)
    np.testing.assert_array_equal(
        back.denoiser_covariance((XQ, TQ), tau=5.0, P=10),
        theory.denoiser_covariance((XQ, TQ), tau=5.0, P=10),
    )


def test_bad_input(theory):
    with pytest.raises(ValueError, match="P"):
        theory.denoiser_covariance((XQ, TQ), tau=1.0, P=0.5)
    with pytest.raises(ValueError, match="tau"):
        theory.mean_denoiser(XQ, TQ, -1.0)
    with pytest.raises(ValueError, match="part"):
        theory.denoiser_covariance((XQ, TQ), tau=1.0, P=10, part="signal")
    with pytest.raises(ValueError, match="activation"):
        ntk_theory(DATA, EPS, activation="gelu")
    with pytest.raises(ValueError, match="eps"):
        ntk_theory(DATA, -0.1)
    with pytest.raises(ValueError, match="rcond"):
        ntk_theory(DATA, EPS, rcond=1.5)
    with pytest.raises(ValueError, match="flow"):
        ntk_theory(DATA, EPS, flow="sgd")
    gd = ntk_theory(DATA, EPS, n_t=4, n_hermite=4, lr=1.0, flow="gradient-descent")
    assert 1.0 < gd.lr_max < 20.0
    with pytest.raises(ValueError, match="tau"):
        gd.mean_denoiser(XQ, TQ, 2.5)  # not an integer number of steps
    with pytest.raises(ValueError, match=r"lr = 20.0 .*lr_max = "):
        ntk_theory(DATA, EPS, n_t=4, n_hermite=4, lr=20.0, flow="gradient-descent")
    with pytest.raises(ValueError, match="z"):
        theory.denoiser_covariance((XQ,), tau=1.0, P=10)
    with pytest.raises(ValueError, match="t"):
        theory.denoiser_covariance((XQ, 2.0), tau=1.0, P=10)
