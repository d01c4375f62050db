"""Posterior over training points, exact score and proxy-score covariance
(docs/math/conventions.md, docs/engineering.md).

The streaming numba kernel is checked against the plain-numpy reference, against independent
computations (scipy Gaussian densities, finite differences of log p, Monte Carlo draws of the
proxy score), against the two-point closed form in a strongly concentrated regime, for thread-count
invariance, and for input validation.
"""

import numba
import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from gtv.numerics.posterior import frac_proxy_variance, posterior_stats, posterior_weights
from gtv.numerics.posterior_kernel import CHUNK_BLOCKS, POINT_BLOCK, QUERY_BLOCK
from gtv.numerics.schedules import get_schedule
from gtv.theory.proxy import evaluate, proxy_covariance_two_points

FIELDS = ("mean", "cov_trace", "cov", "score", "proxy_cov_trace", "proxy_cov", "frac")


def _data(seed, D, M, N, t_mode, schedule):
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=(M, D))
    x = 1.5 * rng.normal(size=(N, D))
    if t_mode == "scalar":
        tq = 0.3
    else:  # log-uniform over [1e-3, 0.99]: includes strongly concentrated posteriors
        tq = np.exp(rng.uniform(np.log(1e-3), np.log(0.99), N))
    return mu, x, tq


def _assert_backends_agree(a, b, mu, x, tq, schedule):
    """Compare two PosteriorStats field by field, each on its natural scale (rtol 1e-12).

    * mean is a convex combination of the mu_m: absolute error measured against max|mu|;
    * traces are sums of non-negative terms: plain relative error;
    * off-diagonal covariance entries can cancel to ~0: error measured against
      sqrt(C_ii C_jj) (Cauchy-Schwarz bound of |C_ij|) plus the relative error;
    * the score alpha mu_bar/sigma**2 - x/sigma**2 is a difference: error measured against the sum
      of the magnitudes of the two terms.

    Posterior variances of far-away points can be subnormal (< 2.2e-308), where doubles carry no
    relative accuracy; Sigma_post therefore also gets an absolute floor of ``tiny``, propagated
    through C = scale Sigma_post and frac = trC/(trC + |s|**2).
    """
    rtol = 1e-12
    tiny = np.finfo(np.float64).tiny
    sched = get_schedule(schedule)
    tq = np.broadcast_to(np.asarray(tq, dtype=float), (x.shape[0],))
    scale = sched.proxy_cov_scale(tq)
    np.testing.assert_allclose(a.mean, b.mean, rtol=0, atol=rtol * np.abs(mu).max())
    assert np.all(np.abs(a.cov_trace - b.cov_trace) <= rtol * b.cov_trace + tiny)
    assert np.all(
        np.abs(a.proxy_cov_trace - b.proxy_cov_trace) <= rtol * b.proxy_cov_trace + tiny * scale
    )
    term_scale = np.abs(sched.score_mean_coeff(tq)[:, None] * b.mean) + np.abs(
        sched.inv_sigma2(tq)[:, None] * x
    )
    assert np.all(np.abs(a.score - b.score) <= rtol * term_scale)
    total = b.proxy_cov_trace + np.einsum("nd,nd->n", b.score, b.score)
    frac_floor = np.divide(tiny * scale, total, out=np.zeros_like(total), where=total > 0)
    assert np.all(np.abs(a.frac - b.frac) <= rtol * b.frac + frac_floor)
    for name, floor in (("cov", np.ones_like(scale) * tiny), ("proxy_cov", tiny * scale)):
        ca, cb = getattr(a, name), getattr(b, name)
        assert (ca is None) == (cb is None)
        if cb is not None:
            diag = np.sqrt(np.abs(np.einsum("nii->ni", cb)))
            cs = diag[:, :, None] * diag[:, None, :]
            assert np.all(np.abs(ca - cb) <= rtol * (np.abs(cb) + cs) + floor[:, None, None]), name


@pytest.mark.parametrize("schedule", ["vp-linear", "linear-variance"])
@pytest.mark.parametrize("t_mode", ["scalar", "per-query"])
@pytest.mark.parametrize("M", [1, 7, 300])
@pytest.mark.parametrize("D", [1, 2, 5])
def test_numba_matches_numpy_reference(D, M, t_mode, schedule):
    """Streaming online-softmax kernel == two-pass numpy reference (all fields, both cov modes).

    Per-query times down to 1e-3 include posteriors concentrated on one point, where the other
    weights are 1e-100 and smaller: the kernel must keep their (tiny) variance accurately.
    M = 1, 7 take the kernel's one-tile path, M = 300 the merge of tiles. The frac-only mode of
    ``frac_proxy_variance`` must give exactly ``posterior_stats(...).frac``.
    """
    mu, x, tq = _data(1000 * D + M, D, M, 40, t_mode, schedule)
    for full_cov in (False, True):
        a = posterior_stats(mu, x, tq, schedule, full_cov=full_cov, backend="numba")
        b = posterior_stats(mu, x, tq, schedule, full_cov=full_cov, backend="numpy")
        assert (a.cov is not None) == full_cov and (a.proxy_cov is not None) == full_cov
        for f in FIELDS:
            v = getattr(a, f)
            assert v is None or np.all(np.isfinite(v)), f
        _assert_backends_agree(a, b, mu, x, tq, schedule)
    np.testing.assert_array_equal(frac_proxy_variance(mu, x, tq, schedule), a.frac)
    np.testing.assert_array_equal(frac_proxy_variance(mu, x, tq, schedule, backend="numpy"), b.frac)


@pytest.mark.parametrize("M", [POINT_BLOCK, POINT_BLOCK + 1, 2 * POINT_BLOCK])
@pytest.mark.parametrize("D", [2, 5])
def test_tile_boundary_matches_reference(D, M):
    """At the kernel's tile size: M = POINT_BLOCK is one tile (no merge), POINT_BLOCK + 1 merges
    a one-point tile, 2 POINT_BLOCK two full tiles; all fields agree with the numpy reference.
    Times are log-uniform in [0.05, 0.99]: at t ~ 1e-3 (logits ~ 2e3) float64 logits carry
    relative errors ~ 2e3 eps ~ 1e-12 into the exponentially small variances, for any M, which
    is not what this test is about."""
    rng = np.random.default_rng(100 * D + M)
    mu = rng.normal(size=(M, D))
    x = 1.5 * rng.normal(size=(150, D))
    tq = np.exp(rng.uniform(np.log(0.05), np.log(0.99), 150))
    for schedule in ("vp-linear", "linear-variance"):
        for t in (tq, 0.3):
            a = posterior_stats(mu, x, t, schedule, full_cov=True, backend="numba")
            b = posterior_stats(mu, x, t, schedule, full_cov=True, backend="numpy")
            _assert_backends_agree(a, b, mu, x, t, schedule)
            np.testing.assert_array_equal(frac_proxy_variance(mu, x, t, schedule), a.frac)


def _rows(s, idx):
    """The PosteriorStats ``s`` restricted to the queries ``idx``."""
    return type(s)(*(None if v is None else v[idx] for v in (getattr(s, f) for f in FIELDS)))


@pytest.mark.parametrize("M", [3, POINT_BLOCK + 8])
def test_kernel_fallback_rows_match_reference(M):
    """Queries the kernel flags for the expanded-logit fallback mixed with ordinary ones in one
    call: |x| ~ 1e200 (beyond 1e6 (1 + alpha max|mu|), where |x - alpha mu|**2 loses the
    differences between points) at an ordinary time and at t = 1e-300 (sigma**2 ~ 1e-301: the
    logits are ~ -1e300 or -inf, the score terms ~ 1e301). Far queries must sit on the training
    point that maximizes x . mu (an independent expectation) with zero variance and frac = 0; the
    ordinary rows must not be affected by the flagged ones; everything must match the numpy
    reference, and the frac-only mode must give the same frac."""
    rng = np.random.default_rng(5)
    mu = rng.normal(size=(M, 2))
    x = rng.normal(size=(300, 2))
    far = np.zeros(300, dtype=bool)
    far[::7] = True
    x[far] *= 1e200
    top = np.argmax(x[far] @ mu.T, axis=1)
    for tv in (0.4, 1e-300):
        a = posterior_stats(mu, x, tv, "vp-linear", full_cov=True, backend="numba")
        b = posterior_stats(mu, x, tv, "vp-linear", full_cov=True, backend="numpy")
        for s in (a, b):
            for f in ("mean", "cov_trace", "cov", "frac"):
                assert np.all(np.isfinite(getattr(s, f))), f
            for f in ("score", "proxy_cov_trace", "proxy_cov"):
                assert not np.isnan(getattr(s, f)).any(), f
            # Sigma_post of the flagged queries comes from the same fallback as its trace
            np.testing.assert_allclose(np.einsum("nii->n", s.cov), s.cov_trace, rtol=1e-14)
        np.testing.assert_array_equal(a.mean[far], mu[top])
        assert np.all(a.cov_trace[far] == 0.0) and np.all(a.frac[far] == 0.0)
        for f in ("mean", "cov_trace", "cov", "score", "proxy_cov_trace", "frac"):
            np.testing.assert_array_equal(getattr(a, f)[far], getattr(b, f)[far], err_msg=f)
        alone = posterior_stats(mu, x[~far], tv, "vp-linear", full_cov=True, backend="numba")
        for f in FIELDS:
            np.testing.assert_array_equal(getattr(a, f)[~far], getattr(alone, f), err_msg=f)
        if tv > 1e-3:
            _assert_backends_agree(_rows(a, ~far), _rows(b, ~far), mu, x[~far], tv, "vp-linear")
        else:  # sigma**2 ~ 1e-301: every posterior sits on the nearest training point
            near = np.argmin(((x[~far, None, :] - mu[None]) ** 2).sum(-1), axis=1)
            for s in (a, b):  # (merging tiles costs the mean an ulp)
                np.testing.assert_allclose(s.mean[~far], mu[near], rtol=0, atol=1e-15)
                assert np.all(s.cov_trace == 0.0) and np.all(s.frac == 0.0)
            # the score (alpha mu_bar - x) / sigma**2 cancels between terms ~ 1e301: compared,
            # as in _assert_backends_agree, against the sum of their magnitudes
            sched = get_schedule("vp-linear")
            sa, sb, xn = a.score[~far], b.score[~far], x[~far]
            term = np.abs(sched.score_mean_coeff(tv) * b.mean[~far]) + np.abs(
                sched.inv_sigma2(tv) * xn
            )
            assert np.all(np.isfinite(sa)) and np.all(np.abs(sa - sb) <= 1e-12 * term)
        np.testing.assert_array_equal(frac_proxy_variance(mu, x, tv, "vp-linear"), a.frac)


def _scipy_weights(mu, x, tv, schedule):
    sched = get_schedule(schedule)
    alpha, s2 = float(sched.alpha(tv)), float(sched.sigma2(tv))
    D = mu.shape[1]
    dens = np.array(
        [[multivariate_normal.pdf(xi, alpha * m, s2 * np.eye(D)) for m in mu] for xi in x]
    )
    return dens / dens.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_posterior_weights_match_scipy_gaussian_densities(backend):
    """w[n, m] = N(x_n; alpha mu_m, sigma**2 I) / sum_m' N(x_n; alpha mu_m', sigma**2 I).

    Data and times are moderate so the scipy densities neither underflow nor lose digits
    (|log pdf| < ~50 gives relative errors ~1e-14)."""
    rng = np.random.default_rng(7)
    mu = rng.normal(size=(9, 3))
    x = rng.normal(size=(6, 3))
    for schedule, tv in (("vp-linear", 0.2), ("linear-variance", 0.4), ("ve", 0.3)):
        w = posterior_weights(mu, x, tv, schedule, backend=backend)
        assert w.shape == (6, 9)
        np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-14)
        np.testing.assert_allclose(w, _scipy_weights(mu, x, tv, schedule), rtol=1e-12, atol=0)


# 2-D point cloud used by the independent checks below.
MU_2D = np.array([[-1.0, 0.2], [0.5, 0.9], [0.8, -0.7], [-0.3, -1.1], [0.1, 0.4]])
X_2D = np.array([[0.0, 0.0], [0.3, -0.2], [-0.6, 0.5], [1.2, 1.0], [0.2, -0.8]])


@pytest.mark.parametrize("schedule,tv", [("linear-variance", 0.3), ("vp-linear", 0.2)])
def test_score_and_covariance_are_derivatives_of_log_density(schedule, tv):
    """s = grad log p(x|t) and C = I/sigma**2 + Hess log p(x|t), with log p from scipy.

    log p = logsumexp_m log N(x; alpha mu_m, sigma**2 I) - log M, differentiated by central
    differences. Error budget (scales here: 1/sigma ~ 2, alpha |mu| / sigma**2 ~ 3, |log p| < 10):
    gradient, h = 1e-5: truncation h**2 f'''/6 ~ 1e-9, rounding eps |log p|/h ~ 1e-10;
    Hessian, h = 1e-4 (4-point stencil): truncation h**2 f''''/12 ~ 1e-7, rounding
    eps |log p|/h**2 ~ 1e-7. Observed errors are 1e-10 and 1e-7; the tolerances 1e-7 and 1e-5
    (absolute, against entries of size 1-4) leave a 100x margin while any error in a formula
    (a missing alpha, a wrong sigma power) is O(1).
    """
    sched = get_schedule(schedule)
    alpha, s2 = float(sched.alpha(tv)), float(sched.sigma2(tv))

    def logp(z):
        lp = [multivariate_normal.logpdf(z, alpha * m, s2 * np.eye(2)) for m in MU_2D]
        return logsumexp(lp) - np.log(len(MU_2D))

    stats = posterior_stats(MU_2D, X_2D, tv, schedule, full_cov=True)
    E = np.eye(2)
    h1, h2 = 1e-5, 1e-4
    for n, z in enumerate(X_2D):
        grad = np.array([(logp(z + h1 * E[i]) - logp(z - h1 * E[i])) / (2 * h1) for i in range(2)])
        hess = np.empty((2, 2))
        for i in range(2):
            for j in range(2):
                hess[i, j] = (
                    logp(z + h2 * E[i] + h2 * E[j])
                    - logp(z + h2 * E[i] - h2 * E[j])
                    - logp(z - h2 * E[i] + h2 * E[j])
                    + logp(z - h2 * E[i] - h2 * E[j])
                ) / (4 * h2 * h2)
        np.testing.assert_allclose(stats.score[n], grad, rtol=0, atol=1e-7)
        np.testing.assert_allclose(stats.proxy_cov[n], E / s2 + hess, rtol=0, atol=1e-5)
        assert stats.proxy_cov_trace[n] == pytest.approx(np.trace(stats.proxy_cov[n]), rel=1e-14)


def test_proxy_score_monte_carlo():
    """Draw x0 from the posterior, form s_tilde = (alpha x0 - x)/sigma**2: its sample mean is the
    score (E[s_tilde | x] = s) and its sample trace-covariance is tr C, within 4 standard errors.

    Under a correct implementation each comparison fails with probability ~6e-5 (two-sided 4
    sigma); there are 3 queries x (2 mean components + 1 trace) = 9 comparisons, so <= 6e-4 over
    seeds; with the fixed seed the outcome is deterministic. K = 40000 draws make the standard
    errors ~0.5% of tr C, so a missing factor (e.g. alpha**2) is detected.
    """
    schedule, tv, K = "linear-variance", 0.3, 40_000
    sched = get_schedule(schedule)
    alpha, s2 = float(sched.alpha(tv)), float(sched.sigma2(tv))
    xs = X_2D[:3]
    stats = posterior_stats(MU_2D, xs, tv, schedule)
    w = _scipy_weights(MU_2D, xs, tv, schedule)  # independent of the code under test
    rng = np.random.default_rng(20250101)
    for n, z in enumerate(xs):
        idx = rng.choice(len(MU_2D), size=K, p=w[n])
        s_tilde = (alpha * MU_2D[idx] - z) / s2
        mean = s_tilde.mean(axis=0)
        se_mean = s_tilde.std(axis=0, ddof=1) / np.sqrt(K)
        assert np.all(np.abs(mean - stats.score[n]) <= 4 * se_mean), (mean, stats.score[n], se_mean)
        q = ((s_tilde - mean) ** 2).sum(axis=1)
        tr_hat = q.sum() / (K - 1)
        se_tr = q.std(ddof=1) / np.sqrt(K)
        assert abs(tr_hat - stats.proxy_cov_trace[n]) <= 4 * se_tr, (
            tr_hat,
            stats.proxy_cov_trace[n],
            se_tr,
        )


def test_concentrated_posterior_matches_closed_form():
    """Two points +-1, vp-linear, t = 1e-4 (sigma**2 ~ 2e-5): the posterior is concentrated.

    With u = alpha x/sigma**2, C = (alpha**2/sigma**4) sech**2(u) falls from 2.5e9 at x = 0 to below
    the smallest normal double near u ~ 360. Forming E[mu**2] - mu_bar**2 would cancel to 0 or go
    negative; the kernel must give tr C >= 0 and match the closed form to 1e-10 relative wherever
    that is a normal double. (The logits ~ 1/(2 sigma**2) ~ 2.5e4 carry rounding ~ 5e-12, which sets
    the ~4e-12 agreement actually seen.) Below the normal range only 0 <= tr C <= 1e-300 is
    required. Points near x = alpha (u ~ 5e4) have C = 0 in double precision.
    """
    schedule, tv = "vp-linear", 1e-4
    sched = get_schedule(schedule)
    alpha, s2 = float(sched.alpha(tv)), float(sched.sigma2(tv))
    u = np.concatenate([np.linspace(0.0, 20.0, 11), np.geomspace(20.0, 800.0, 30)])
    xs = np.concatenate([u * s2 / alpha, -u[1:] * s2 / alpha, alpha + np.linspace(-1e-3, 1e-3, 5)])
    closed = proxy_covariance_two_points(1, schedule)
    ref = np.array([evaluate(closed, float(xv), tv) for xv in xs])
    for backend in ("numba", "numpy"):
        got = posterior_stats([[-1.0], [1.0]], xs[:, None], tv, schedule, backend=backend)
        assert np.all(got.cov_trace >= 0) and np.all(got.proxy_cov_trace >= 0)
        normal = ref >= 1e-300
        assert normal.sum() > 40 and ref[normal].min() < 1e-250  # spans > 250 orders of magnitude
        np.testing.assert_allclose(got.proxy_cov_trace[normal], ref[normal], rtol=1e-10, atol=0)
        assert np.all(got.proxy_cov_trace[~normal] <= 1e-300)


def test_streaming_large_point_cloud():
    """M = 100 000 points in D = 64: the streaming kernel (never an M x N matrix) agrees with the
    numpy reference. Queries are drawn from the forward process, so weights are spread over
    several points at t = 0.5 and concentrated at t = 0.1. Accumulated rounding over 1e5 terms is
    ~sqrt(M) eps ~ 1e-13, within the 1e-12 of the comparison."""
    rng = np.random.default_rng(3)
    mu = rng.normal(size=(100_000, 64))
    sched = get_schedule("vp-linear")
    for tv in (0.1, 0.5):
        alpha, s2 = float(sched.alpha(tv)), float(sched.sigma2(tv))
        x = alpha * mu[rng.integers(0, len(mu), 3)] + np.sqrt(s2) * rng.normal(size=(3, 64))
        a = posterior_stats(mu, x, tv, "vp-linear", backend="numba")
        b = posterior_stats(mu, x, tv, "vp-linear", backend="numpy")
        assert a.mean.shape == (3, 64) and a.cov_trace.shape == (3,)
        _assert_backends_agree(a, b, mu, x, tv, "vp-linear")


@pytest.mark.parametrize("M", [6, 500])
def test_results_identical_for_any_thread_count(M):
    """Bit-identical results with 1 and 2 numba threads (docs/engineering.md). M = 6 takes the
    one-tile path, where N queries span three parallel tasks of CHUNK_BLOCKS query blocks (the
    last one partial); M = 500 merges tiles, one task per query block (33). Either way the
    tasks are split differently between threads. Per-query times reach 1e-300, and some
    queries are far away (flagged by the kernel: expanded-logit fallback)."""
    n = 2 * CHUNK_BLOCKS * QUERY_BLOCK + 37
    rng = np.random.default_rng(11)
    mu = rng.normal(size=(M, 3))
    x = rng.normal(size=(n, 3))
    tq = np.exp(rng.uniform(np.log(1e-3), 0.0, n))
    tq[::50] = 1e-300
    x[::97] *= 1e200
    before = numba.get_num_threads()
    results = {}
    try:
        for n_threads in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numba.set_num_threads(n_threads)
            s = posterior_stats(mu, x, tq, "vp-linear", full_cov=True)
            w = posterior_weights(mu, x, tq, "vp-linear")
            f = frac_proxy_variance(mu, x, tq, "vp-linear")
            results[n_threads] = (s, w, f)
    finally:
        numba.set_num_threads(before)
    assert numba.get_num_threads() == before
    (s1, w1, f1), *others = results.values()
    for f in FIELDS:  # C = alpha**2/sigma**4 Sigma_post with alpha**2/sigma**4 = inf, Sigma = 0
        assert not np.isnan(getattr(s1, f)).any(), f
    for s2_, w2, f2 in others:
        for f in FIELDS:
            np.testing.assert_array_equal(getattr(s1, f), getattr(s2_, f))
        np.testing.assert_array_equal(w1, w2)
        np.testing.assert_array_equal(f1, f2)
    np.testing.assert_array_equal(f1, s1.frac)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("schedule", ["vp-linear", "linear-variance", "edm"])
def test_frac_is_zero_not_nan_without_proxy_noise(backend, schedule):
    """M = 1: Sigma_post = 0 so C = 0; at x = alpha mu also s = 0, and frac = 0/0 must read 0."""
    sched = get_schedule(schedule)
    tv = 0.25
    for mu in ([[0.0, 0.0]], [[0.7, -1.3]]):
        x = sched.alpha(tv) * np.asarray(mu)
        s = posterior_stats(mu, x, tv, schedule, backend=backend)
        assert s.cov_trace[0] == 0.0 and s.proxy_cov_trace[0] == 0.0
        assert not np.isnan(s.frac[0]) and s.frac[0] == 0.0


# -- input validation ----------------------------------------------------------------------------
GOOD_MU = np.array([[0.0, 1.0], [1.0, 0.0]])
GOOD_X = np.array([[0.5, 0.5], [0.1, 0.2], [0.3, -0.4]])


@pytest.mark.parametrize(
    "kwargs,pattern",
    [
        (dict(mu=[[0.0, np.nan], [1.0, 0.0]]), r"^mu\b"),
        (dict(mu=[[0.0, np.inf], [1.0, 0.0]]), r"^mu\b"),
        (dict(x=[[0.5, np.nan], [0.1, 0.2], [0.3, -0.4]]), r"^x\b"),
        (dict(mu=[0.0, 1.0]), r"^mu\b"),
        (dict(x=[[0.5, 0.5, 0.5]]), r"^x\b"),
        (dict(t=0.0), r"^t\b"),
        (dict(t=-0.1), r"^t\b"),
        (dict(t=1.5), r"^t\b"),
        (dict(t=np.nan), r"^t\b"),
        (dict(t=[0.1, 0.2]), r"^t\b"),
        (dict(t=[[0.1, 0.2, 0.3]]), r"^t\b"),
        (dict(schedule="cosine-nope"), r"^schedule\b"),
        (dict(backend="foo"), r"^backend\b"),
    ],
    ids=[
        "nan-mu",
        "inf-mu",
        "nan-x",
        "mu-1d",
        "x-wrong-D",
        "t-zero",
        "t-negative",
        "t-above-T",
        "t-nan",
        "t-wrong-length",
        "t-wrong-ndim",
        "unknown-schedule",
        "unknown-backend",
    ],
)
@pytest.mark.parametrize("func", ["posterior_stats", "posterior_weights"])
def test_bad_input_raises_value_error_naming_argument(func, kwargs, pattern):
    args = dict(mu=GOOD_MU, x=GOOD_X, t=0.5, schedule="vp-linear", backend="numba")
    args.update(kwargs)
    fn = {"posterior_stats": posterior_stats, "posterior_weights": posterior_weights}[func]
    with pytest.raises(ValueError, match=pattern):
        fn(args["mu"], args["x"], args["t"], args["schedule"], backend=args["backend"])


def test_both_backends_match_mpmath_where_logits_are_large():
    """At t ~ 4.5e-3 the logits are ~1e3 and the posterior variance 2.4e-32 comes from weights of
    1e-32: the weights' differences of large logits lose ~|logit| ulps in plain float64. Both
    backends must still give the trace to 1e-12 of a 60-digit mpmath evaluation (the numpy
    reference works in long double for this; found with numpy 2.4 / numba 0.68)."""
    mp = pytest.importorskip("mpmath")
    D, M = 5, 7
    mu, x, tq = _data(1000 * D + M, D, M, 40, "per-query", "vp-linear")
    i = 23
    sched = get_schedule("vp-linear")
    with mp.workdps(60):
        al, s2 = mp.mpf(float(sched.alpha(tq[i]))), mp.mpf(float(sched.sigma2(tq[i])))
        xi = [mp.mpf(float(v)) for v in x[i]]
        mus = [[mp.mpf(float(v)) for v in row] for row in mu]
        logits = [-sum((xi[d] - al * m[d]) ** 2 for d in range(D)) / (2 * s2) for m in mus]
        top = max(logits)
        w = [mp.e ** (v - top) for v in logits]
        w = [v / sum(w) for v in w]
        mbar = [sum(w[m] * mus[m][d] for m in range(M)) for d in range(D)]
        exact = float(sum(w[m] * (mus[m][d] - mbar[d]) ** 2 for m in range(M) for d in range(D)))
    assert 1e-33 < exact < 1e-31  # the regime this test is about
    for backend in ("numba", "numpy"):
        got = posterior_stats(mu, x[i : i + 1], tq[i], "vp-linear", backend=backend).cov_trace[0]
        assert abs(got - exact) <= 1e-12 * exact, (backend, got, exact)
