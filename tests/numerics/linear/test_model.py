"""Closed-form DSM training of linear-feature denoisers (gtv.numerics.linear.model).

Checks: the numba normal equations against the numpy reference; the whole training pipeline
against a from-scratch numpy implementation of the documented sampling protocol; the solve;
thread-count invariance and seed reproducibility; convergence to the population solution
``W_inf = A Sigma_r^{-1}`` (computed by deterministic quadrature, independent of the library's
training code) at the rate predicted by a first-order expansion; input validation.
"""

import numba
import numpy as np
import pytest

from gtv.numerics.features import AxisBasis, ProductFeatures
from gtv.numerics.linear.model import (
    _train_solve,
    normal_equations,
    normal_equations_reference,
    solve_spd,
    train_linear_ensemble,
)
from gtv.numerics.schedules import get_schedule
from gtv.numerics.streams import stream

EPS, T = 0.01, 1.0


# Closed forms for vp-linear, written out here (independent of the generated schedule code).
def _alpha(t):
    return np.exp(-(0.1 * t + 19.9 * t * t / 2))


def _sigma2(t):
    return -np.expm1(-2 * (0.1 * t + 19.9 * t * t / 2))


def _lam(t):
    return _alpha(t) ** 2 / _sigma2(t)


def _random_batch(seed, n_models, n_samples, dim):
    rng = np.random.default_rng(seed)
    t = rng.uniform(EPS, T, (n_models, n_samples))
    x0 = rng.choice([-1.0, 0.3, 1.0], (n_models, n_samples, dim))
    x = _alpha(t)[..., None] * x0 + np.sqrt(_sigma2(t))[..., None] * rng.standard_normal(x0.shape)
    return t, x0, x, _lam(t)


# -- normal equations ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["gaussian", "fourier"])
@pytest.mark.parametrize("dim,n_space,n_time", [(1, 6, 5), (1, 1, 1), (2, 4, 3)])
def test_normal_equations_match_reference(kind, dim, n_space, n_time):
    """Entries compared on their Cauchy-Schwarz scale: |G_ik| <= sqrt(G_ii G_kk) and
    |B_ci| <= sqrt(mean(w x0_c^2)) sqrt(G_ii) (Fourier entries can cancel to ~0)."""
    feats = ProductFeatures.uniform(kind, dim, n_space, n_time, (EPS, T))
    t, x0, x, w = _random_batch(7, 3, 400, dim)
    gram, rhs = normal_equations(feats, t, x0, x, w)
    gram_ref, rhs_ref = normal_equations_reference(feats, t, x0, x, w)
    F = feats.n_features
    assert gram.shape == (3, F, F) and rhs.shape == (3, dim, F)
    d = np.sqrt(np.einsum("nii->ni", gram_ref))
    assert np.all(np.abs(gram - gram_ref) <= 1e-12 * d[:, :, None] * d[:, None, :])
    np.testing.assert_array_equal(gram, np.swapaxes(gram, 1, 2))  # exactly symmetric
    xscale = np.sqrt(np.mean(w[..., None] * x0**2, axis=1))  # (N, D)
    assert np.all(np.abs(rhs - rhs_ref) <= 1e-12 * xscale[:, :, None] * d[:, None, :])


def test_normal_equations_reference_against_explicit_sum():
    """The numpy reference itself against the literal definition (a loop over triples)."""
    feats = ProductFeatures.uniform("gaussian", 1, 3, 2, (EPS, T))
    t, x0, x, w = _random_batch(1, 1, 25, 1)
    G = np.zeros((6, 6))
    B = np.zeros((1, 6))
    for j in range(25):
        phi = np.kron(
            feats.space[0].evaluate_reference(x[0, j]), feats.time.evaluate_reference(t[0, j])
        )[0]
        G += w[0, j] * np.outer(phi, phi) / 25
        B += w[0, j] * np.outer(x0[0, j], phi) / 25
    gram_ref, rhs_ref = normal_equations_reference(feats, t, x0, x, w)
    np.testing.assert_allclose(gram_ref[0], G, rtol=1e-13)
    np.testing.assert_allclose(rhs_ref[0], B, rtol=1e-13)


# -- training -----------------------------------------------------------------------------------
def _numpy_training(data, feats, n_models, n_samples, eps, ridge, seed):
    """From scratch: model n draws t ~ U[eps, T], then data indices, then noise, from
    default_rng(stream(seed, "training").spawn(N)[n]) (the documented protocol)."""
    Ws, grams, rhss = [], [], []
    for ss in stream(seed, "training").spawn(n_models):
        rng = np.random.default_rng(ss)
        t = rng.uniform(eps, T, n_samples)
        idx = rng.integers(0, data.shape[0], n_samples)
        xi = rng.standard_normal((n_samples, data.shape[1]))
        x0 = data[idx]
        x = _alpha(t)[:, None] * x0 + np.sqrt(_sigma2(t))[:, None] * xi
        phi = feats.evaluate_reference(x, t)
        lam = _lam(t)
        G = (phi * lam[:, None]).T @ phi / n_samples + ridge * np.eye(phi.shape[1])
        B = (x0 * lam[:, None]).T @ phi / n_samples
        Ws.append(np.linalg.solve(G, B.T).T)
        grams.append(G)
        rhss.append(B)
    return np.array(Ws), np.array(grams), np.array(rhss)


@pytest.mark.parametrize("kind,dim", [("gaussian", 1), ("fourier", 1), ("gaussian", 2)])
def test_training_matches_numpy_implementation(kind, dim):
    data = np.random.default_rng(5).uniform(-1, 1, (4, dim))
    feats = ProductFeatures.uniform(kind, dim, 4, 3, (EPS, T))
    ens = train_linear_ensemble(data, feats, 3, 300, EPS, ridge=0.1, seed=42)
    W, G, B = _numpy_training(data, feats, 3, 300, EPS, 0.1, 42)
    assert ens.W.shape == (3, dim, feats.n_features)
    for n in range(3):
        assert np.linalg.norm(ens.gram[n] - G[n]) <= 1e-12 * np.linalg.norm(G[n])
        assert np.linalg.norm(ens.rhs[n] - B[n]) <= 1e-12 * np.linalg.norm(B[n])
        # W is a linear solve with cond(Sigma_P) <~ 1e4 here: agreement far better than 1e-10.
        assert np.linalg.norm(ens.W[n] - W[n]) <= 1e-10 * np.linalg.norm(W[n])


@pytest.mark.parametrize("ridge", [0.1, 1e-3])
def test_weights_solve_the_normal_equations(ridge):
    data = np.array([[-1.0, 0.0], [1.0, 0.5], [0.0, -1.0]])
    feats = ProductFeatures.uniform("gaussian", 2, 5, 4, (EPS, T))
    ens = train_linear_ensemble(data, feats, 4, 2000, EPS, ridge=ridge, seed=3)
    F = feats.n_features
    for n in range(4):
        # Ridge included in the kept Sigma_P.
        raw, _ = normal_equations_reference(
            feats, *[a[None] for a in _numpy_draw(data, 4, 2000, 3, n)]
        )
        np.testing.assert_allclose(np.diag(ens.gram[n]) - np.diag(raw[0]), ridge, rtol=1e-9)
        resid = ens.gram[n] @ ens.W[n].T - ens.rhs[n].T
        assert np.linalg.norm(resid) <= 1e-10 * np.linalg.norm(ens.rhs[n])
    assert ens.gram.shape == (4, F, F)


def _numpy_draw(data, n_models, n_samples, seed, n):
    rng = np.random.default_rng(stream(seed, "training").spawn(n_models)[n])
    t = rng.uniform(EPS, T, n_samples)
    idx = rng.integers(0, data.shape[0], n_samples)
    xi = rng.standard_normal((n_samples, data.shape[1]))
    x0 = data[idx]
    x = _alpha(t)[:, None] * x0 + np.sqrt(_sigma2(t))[:, None] * xi
    return t, x0, x, _lam(t)


def test_keep_normal_equations_false():
    data = np.array([[-1.0], [1.0]])
    feats = ProductFeatures.uniform("fourier", 1, 5, 3, (EPS, T))
    a = train_linear_ensemble(data, feats, 2, 200, EPS, seed=1)
    b = train_linear_ensemble(data, feats, 2, 200, EPS, seed=1, keep_normal_equations=False)
    assert b.gram is None and b.rhs is None
    np.testing.assert_array_equal(a.W, b.W)


def test_thread_count_invariance():
    data = np.array([[-1.0], [0.0], [1.0]])
    feats = ProductFeatures.uniform("gaussian", 1, 6, 5, (EPS, T))
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        w1 = train_linear_ensemble(data, feats, 7, 500, EPS, seed=9).W
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        w2 = train_linear_ensemble(data, feats, 7, 500, EPS, seed=9).W
    finally:
        numba.set_num_threads(old)
    np.testing.assert_array_equal(w1, w2)


def test_fused_training_is_thread_count_invariant_and_rejects_singular_systems():
    """``keep_normal_equations=False`` forms, factorizes and solves model by model in per-thread
    runs: the same W for any thread count (and the same as the stored path, above)."""
    data = np.array([[-1.0], [0.0], [1.0]])
    feats = ProductFeatures.uniform("gaussian", 1, 6, 5, (EPS, T))
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        w1 = train_linear_ensemble(data, feats, 7, 500, EPS, seed=9, keep_normal_equations=False)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        w2 = train_linear_ensemble(data, feats, 7, 500, EPS, seed=9, keep_normal_equations=False)
    finally:
        numba.set_num_threads(old)
    np.testing.assert_array_equal(w1.W, w2.W)
    stored = train_linear_ensemble(data, feats, 7, 500, EPS, seed=9)
    np.testing.assert_array_equal(stored.W, w1.W)
    # all DSM weights zero and no ridge: Sigma_P = 0, not positive definite, in the fused path
    t = np.full((2, 40), 0.5)
    x = np.zeros((2, 40, 1))
    with pytest.raises(ValueError, match="not positive definite"):
        _train_solve(feats, t, x, x, np.zeros((2, 40)), 0.0)


@pytest.mark.parametrize("P", [40, 120])
def test_fused_training_below_F_solves_the_dual_system(P):
    """P <= F / 2 with a ridge: the fused path solves the P x P dual system; the same W as the
    F x F normal equations to rounding (their condition number times 1e-16), for any thread
    count exactly."""
    data = np.array([[-1.0], [0.0], [1.0]])
    feats = ProductFeatures.uniform("gaussian", 1, 16, 16, (EPS, T))
    stored = train_linear_ensemble(data, feats, 6, P, EPS, seed=2)
    assert 2 * P <= feats.n_features
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        w1 = train_linear_ensemble(data, feats, 6, P, EPS, seed=2, keep_normal_equations=False).W
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        w2 = train_linear_ensemble(data, feats, 6, P, EPS, seed=2, keep_normal_equations=False).W
    finally:
        numba.set_num_threads(old)
    np.testing.assert_array_equal(w1, w2)
    cond = max(np.linalg.cond(g) for g in stored.gram)
    err = np.abs(w1 - stored.W).max() / np.abs(stored.W).max()
    assert err < 1e-15 * cond and err < 1e-8
    assert not np.array_equal(w1, stored.W)  # a different algorithm, not the stored path


def test_seed_reproducibility():
    data = np.array([[-1.0], [0.0], [1.0]])
    feats = ProductFeatures.uniform("gaussian", 1, 6, 5, (EPS, T))
    a = train_linear_ensemble(data, feats, 3, 300, EPS, seed=5).W
    b = train_linear_ensemble(data, feats, 3, 300, EPS, seed=5).W
    c = train_linear_ensemble(data, feats, 3, 300, EPS, seed=6).W
    np.testing.assert_array_equal(a, b)
    assert np.all(np.abs(a - c).max(axis=(1, 2)) > 1e-6)  # every model differs
    # Models within an ensemble are independent draws: no two are equal.
    assert np.abs(a[0] - a[1]).max() > 1e-6


def test_denoise_is_W_phi():
    data = np.array([[-1.0, 0.0], [1.0, 0.5]])
    feats = ProductFeatures.uniform("fourier", 2, 3, 3, (EPS, T))
    ens = train_linear_ensemble(data, feats, 3, 200, EPS, seed=2)
    x = np.random.default_rng(0).normal(size=(10, 2))
    phi = feats.evaluate_reference(x, 0.3)
    expected = np.einsum("ndf,kf->nkd", ens.W, phi)
    np.testing.assert_allclose(ens.denoise(x, 0.3), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ens.denoise(x, 0.3, model=1), expected[1], rtol=1e-12, atol=1e-12)
    cfg = ens.config()
    assert cfg["n_models"] == 3 and cfg["n_samples"] == 200 and cfg["eps"] == EPS
    assert ProductFeatures.from_config(cfg["features"]) == feats


# -- large-P limit ------------------------------------------------------------------------------
RHO = 0.1
POP_DATA = np.array([[-1.0], [0.2], [1.0]])
POP_FEATS = ProductFeatures.uniform("gaussian", 1, 6, 5, (EPS, T))


def quadrature_reference(n_gl, n_sub, n_gh):
    """Nodes/weights for E over t ~ U[eps, T] (composite Gauss-Legendre on geometric panels:
    lambda~ ~ 1/t near eps) and xi ~ N(0, 1) (probabilists' Gauss-Hermite)."""
    br = np.geomspace(EPS, T, n_sub + 1)
    gx, gw = np.polynomial.legendre.leggauss(n_gl)
    panels = list(zip(br[:-1], br[1:], strict=True))
    ts = np.concatenate([(b - a) / 2 * gx + (a + b) / 2 for a, b in panels])
    wt = np.concatenate([(b - a) / 2 * gw for a, b in panels]) / (T - EPS)
    hx, hw = np.polynomial.hermite_e.hermegauss(n_gh)
    return ts, wt, hx, hw / hw.sum()


def population_reference(quad):
    """Sigma_r = E[lam phi phi^T] + rho I, A = E[lam x0 phi^T], W_inf = A Sigma_r^{-1}, and
    c = E|(g - E g) Sigma_r^{-1}|_F^2 with g = lam (x0 - W_inf phi) phi^T, E g = rho W_inf."""
    ts, wt, hx, hw = quad
    a, s, lam = _alpha(ts), np.sqrt(_sigma2(ts)), _lam(ts)
    tt = np.repeat(ts, hx.size)
    ww = np.outer(wt, hw).ravel()
    ll = np.repeat(lam, hx.size)
    F = POP_FEATS.n_features
    S = np.zeros((F, F))
    A = np.zeros((1, F))
    phis = []
    for mu in POP_DATA:
        x = (a[:, None] * mu[0] + s[:, None] * hx[None, :]).reshape(-1, 1)
        phi = POP_FEATS.evaluate_reference(x, tt)
        phis.append(phi)
        S += (phi * (ww * ll)[:, None]).T @ phi / len(POP_DATA)
        A += np.outer(mu, (ww * ll) @ phi) / len(POP_DATA)
    Sr = S + RHO * np.eye(F)
    Si = np.linalg.inv(Sr)
    W = A @ Si
    c = 0.0
    for mu, phi in zip(POP_DATA, phis, strict=True):
        r2 = ((mu[None, :] - phi @ W.T) ** 2).sum(axis=1)
        q = np.sum((phi @ Si) ** 2, axis=1)  # phi^T Sigma_r^{-2} phi
        c += ww @ (ll**2 * r2 * q) / len(POP_DATA)
    c -= RHO**2 * np.sum((W @ Si) ** 2)
    return W, c


def test_quadrature_nodes_are_exact_on_simple_integrals():
    ts, wt, hx, hw = quadrature_reference(16, 24, 120)
    np.testing.assert_allclose(wt.sum(), 1.0, rtol=1e-14)
    np.testing.assert_allclose(wt @ (1 / ts), np.log(T / EPS) / (T - EPS), rtol=1e-12)
    np.testing.assert_allclose(
        [hw @ hx**2, hw @ hx**4, hw @ np.cos(hx)], [1, 3, np.exp(-0.5)], rtol=1e-12
    )


def test_large_P_approaches_population_solution():
    """W_P - W_inf = (mean_j g_j - E g) Sigma_P^{-1} exactly (expand A_P - W_inf Sigma_P), so to
    first order E|W_P - W_inf|_F^2 = c / P with c from quadrature; the error shrinks as 1/sqrt(P).

    K = 16 models per P. The mean of K squared errors fluctuates with relative SD
    sqrt(2 / (K nu)), nu >= 1 the effective number of independent components (here several), so
    <= 0.35; the factor-2 windows below are >= 2 such SDs in log scale even for nu = 1 (and ~5 SD
    for the observed nu), and the RMS-ratio window [2, 8] around sqrt(16) = 4 is wider still.
    """
    W_inf, c = population_reference(quadrature_reference(16, 24, 120))
    W_chk, c_chk = population_reference(quadrature_reference(12, 16, 90))
    # Quadrature converged far below the Monte Carlo error (RMS ~ 1e-2 at P = 32000).
    assert np.abs(W_inf - W_chk).max() < 1e-5 and abs(c - c_chk) < 1e-3 * c
    K = 16
    mse = {}
    for P in (2000, 32000):
        ens = train_linear_ensemble(
            POP_DATA, POP_FEATS, K, P, EPS, ridge=RHO, seed=11, keep_normal_equations=False
        )
        mse[P] = np.mean(np.sum((ens.W - W_inf) ** 2, axis=(1, 2)))
        print(f"P={P}: MSE {mse[P]:.3e}, first-order theory c/P = {c / P:.3e}")
        assert 0.5 < mse[P] / (c / P) < 2.0
    ratio = np.sqrt(mse[2000] / mse[32000])
    print(f"RMS error ratio P=2000 / P=32000: {ratio:.2f} (1/sqrt(P) predicts 4)")
    assert 2.0 < ratio < 8.0
    assert np.sqrt(mse[32000]) < 0.05 * np.linalg.norm(W_inf)


# -- bad input ----------------------------------------------------------------------------------
def _train(**kw):
    args = dict(
        data=np.array([[-1.0], [1.0]]),
        features=ProductFeatures.uniform("gaussian", 1, 3, 2, (EPS, T)),
        n_models=2,
        n_samples=50,
        eps=EPS,
    )
    args.update(kw)
    return train_linear_ensemble(**args)


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(eps=0.0), "eps"),
        (dict(eps=-0.1), "eps"),
        (dict(eps=1.0), "eps"),
        (dict(eps=2.0), "eps"),
        (dict(eps=np.nan), "eps"),
        (dict(eps="small"), "eps"),
        (dict(n_samples=0), "n_samples"),
        (dict(n_samples=2.5), "n_samples"),
        (dict(n_models=0), "n_models"),
        (dict(n_models=-1), "n_models"),
        (dict(ridge=-0.1), "ridge"),
        (dict(ridge=np.inf), "ridge"),
        (dict(data=np.array([[-1.0], [np.nan]])), "data"),
        (dict(data=np.array([[-1.0], [np.inf]])), "data"),
        (dict(data=np.array([-1.0, 1.0])), "data"),
        (dict(data=np.array([[-1.0, 0.0], [1.0, 0.0]])), "features"),
        (dict(schedule="cosine"), "schedule"),
    ],
)
def test_bad_input(kw, match):
    with pytest.raises(ValueError, match=match):
        _train(**kw)


def test_ridge_zero_with_too_few_samples_is_singular():
    """P < F: Sigma_P has rank <= P, singular. Must raise (never NaN, never a finite but
    meaningless W). Before the fix, Cholesky 'succeeded' on rounding-level pivots for some seeds
    and returned |W| ~ 1e7; several seeds and P values are tried."""
    feats = ProductFeatures.uniform("gaussian", 1, 6, 5, (EPS, T))  # F = 30
    for P in (1, 5, 26, 28, 29):
        for seed in range(6):
            with pytest.raises(ValueError, match="singular"):
                _train(features=feats, n_samples=P, ridge=0.0, seed=seed)


def test_ridge_zero_ok_when_full_rank():
    feats = ProductFeatures.uniform("fourier", 1, 3, 2, (EPS, T))  # F = 6
    ens = _train(features=feats, n_samples=500, ridge=0.0)
    assert np.all(np.isfinite(ens.W))
    for n in range(2):
        resid = ens.gram[n] @ ens.W[n].T - ens.rhs[n].T
        assert np.linalg.norm(resid) <= 1e-10 * np.linalg.norm(ens.rhs[n])


def test_solve_spd_rejects_singular_matrix():
    gram = np.array([[[1.0, 1.0], [1.0, 1.0]]])  # exactly singular PSD
    with pytest.raises(ValueError, match="singular"):
        solve_spd(gram, np.ones((1, 1, 2)))


def test_features_type_checked():
    with pytest.raises(TypeError):
        _train(features=AxisBasis("gaussian", 3, -1.0, 1.0))


def test_schedule_object_accepted():
    sched = get_schedule("vp-linear")
    a = _train(schedule=sched, seed=4)
    b = _train(seed=4)
    np.testing.assert_array_equal(a.W, b.W)
