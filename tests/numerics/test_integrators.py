"""Probability-flow ODE samplers (docs/math/conventions.md, §3.3, §4).

* Exact Bayes denoiser: with many steps the PF-ODE output reproduces p(x | eps), the Gaussian
  mixture (1/M) sum_m N(alpha_eps mu_m, sigma_eps^2 I), checked on region masses.
* Convergence order: Euler is first order, Heun second order (common initial points, a fine
  Heun reference).
* Linear ensembles: the numba sampler against a plain-numpy loop (exact and grid lookup).
* Thread-count invariance, seed reproducibility, shapes, input validation.

Statistics for the exact-denoiser check. There is no trained model here, so the unit is an
independent sampler run (its own seed): K runs, each giving the fraction of its samples in each
region. For every region a two-sided t-interval over the K runs (df = K - 1) must cover the exact
mass; with R regions the intervals are at level 1 - 0.001/R (Bonferroni), so the family-wise
false-failure rate is <= 0.1 %. Because the sampler is a deterministic map applied to iid Gaussian
initial points, all samples of all runs are iid, so a chi-square goodness-of-fit test on the
summed counts (and, in 1-D, a KS test) is also valid; each fails at p < 1e-3.
"""

import numba
import numpy as np
import pytest
from scipy import stats

from gtv.numerics.fastexp import EXP_BLOCK_RANGE, exp_array
from gtv.numerics.features import ProductFeatures
from gtv.numerics.linear.model import train_linear_ensemble
from gtv.numerics.pfode import sample_exact_denoiser, sample_linear_ensemble
from gtv.numerics.schedules import get_schedule

T = 1.0
ALPHA_FW = 1e-3  # family-wise false-failure rate of each statistical check


# vp-linear closed forms (independent of the generated schedule code).
def _alpha(t):
    return np.exp(-(0.1 * t + 19.9 * t * t / 2))


def _sigma2(t):
    return -np.expm1(-2 * (0.1 * t + 19.9 * t * t / 2))


def _pf_coeffs(ts):
    """dx/dt = -beta x - D s with s = (alpha D^ - x)/sigma^2 and D = beta (vp-linear):
    dx/dt = (beta/sigma^2 - beta) x - (beta alpha/sigma^2) D^."""
    beta = 0.1 + 19.9 * ts
    return beta / _sigma2(ts) - beta, beta * _alpha(ts) / _sigma2(ts)


# -- exact denoiser reproduces p(x | eps) -------------------------------------------------------
def _box_masses(boxes, data, eps):
    """Exact mass of axis-aligned boxes [(lo_vec, hi_vec), ...] under p(x | eps)."""
    a, s = _alpha(eps), np.sqrt(_sigma2(eps))
    out = []
    for lo, hi in boxes:
        per_comp = np.prod(
            stats.norm.cdf((np.asarray(hi) - a * data) / s)
            - stats.norm.cdf((np.asarray(lo) - a * data) / s),
            axis=1,
        )
        out.append(per_comp.mean())
    return np.array(out)


def _box_fractions(x, boxes):
    return np.array([np.mean(np.all((x > lo) & (x <= hi), axis=1)) for lo, hi in boxes])


def _regions(data, eps):
    """For each training point: the four (2^D) sub-boxes of the +-sigma box around alpha mu and
    the +-2 sigma box (the overlap is fine for the per-region t-tests)."""
    a, s = _alpha(eps), np.sqrt(_sigma2(eps))
    dim = data.shape[1]
    boxes = []
    for mu in data:
        c = a * mu
        for corner in np.ndindex(*(2,) * dim):
            lo = c + s * (np.array(corner) - 1.0)
            boxes.append((lo, lo + s))
        boxes.append((c - 2 * s, c + 2 * s))
    return boxes


def _sample_runs(data, eps, n_runs, n_samples, method, n_steps):
    """K independent runs (seeds 0..K-1) of the exact-denoiser sampler."""
    return [
        sample_exact_denoiser(data, n_samples, eps, n_steps=n_steps, method=method, seed=r)
        for r in range(n_runs)
    ]


def _t_check(fracs, exact, label):
    """Max |t| over regions and the Bonferroni critical value (see module docstring)."""
    k, r = fracs.shape
    mean = fracs.mean(axis=0)
    se = fracs.std(axis=0, ddof=1) / np.sqrt(k)
    tstat = (mean - exact) / se
    crit = stats.t.ppf(1 - ALPHA_FW / (2 * r), df=k - 1)
    print(f"{label}: {k} runs, per-region t-intervals at level {1 - ALPHA_FW / r:.5f}")
    for j in range(r):
        print(
            f"region {j}: mean {mean[j]:.4f}, CI [{mean[j] - crit * se[j]:.4f}, "
            f"{mean[j] + crit * se[j]:.4f}], exact {exact[j]:.4f}"
        )
    return np.abs(tstat).max(), crit


def _mixture_cdf_1d(x, data, eps):
    a, s = _alpha(eps), np.sqrt(_sigma2(eps))
    return np.mean([stats.norm.cdf((x - a * m) / s) for m in data[:, 0]], axis=0)


def _check_exact_sampler(data, eps, runs):
    boxes = _regions(data, eps)
    fracs = np.array([_box_fractions(x, boxes) for x in runs])
    exact = _box_masses(boxes, data, eps)
    tmax, crit = _t_check(fracs, exact, "sampler vs p(x | eps)")
    assert tmax < crit, f"max |t| {tmax:.2f} >= {crit:.2f}"
    # Negative control: the same procedure rejects the mixture at a different time (the
    # sampler's modes are ~30 % narrower than those of p(x | 2 eps)).
    tmax_wrong, _ = _t_check(fracs, _box_masses(boxes, data, 2 * eps), "control vs p(x | 2 eps)")
    assert tmax_wrong > crit


@pytest.mark.parametrize(
    "data",
    [np.array([[-1.0], [0.0], [1.0]]), np.array([[-1.0, -1.0], [1.0, -1.0], [0.0, 1.0]])],
    ids=["1d", "2d"],
)
def test_exact_denoiser_reproduces_p_eps(data):
    _check_exact_sampler(data, 0.01, _sample_runs(data, 0.01, 20, 1000, "heun", 400))


def _pooled_gof(data, eps, runs):
    """Chi-square on disjoint bins of the summed counts; KS against the mixture CDF in 1-D."""
    xs = np.concatenate(runs)
    a, s = _alpha(eps), np.sqrt(_sigma2(eps))
    if data.shape[1] == 1:
        bands = [a * m + s * np.arange(-2, 3) for m in data[:, 0]]
        edges = np.sort(np.concatenate([[-np.inf, np.inf], *bands]))
        cdf = _mixture_cdf_1d(edges, data, eps)
        expected = np.diff(cdf) * xs.shape[0]
        counts = np.histogram(xs[:, 0], edges)[0]
        ks = stats.kstest(xs[:, 0], lambda v: _mixture_cdf_1d(v, data, eps))
        print(f"KS D = {ks.statistic:.4f}, p = {ks.pvalue:.3f}")
        assert ks.pvalue > ALPHA_FW
    else:
        boxes = [b for i, b in enumerate(_regions(data, eps)) if (i + 1) % (2 ** data.shape[1] + 1)]
        counts = np.array([np.sum(np.all((xs > lo) & (xs <= hi), axis=1)) for lo, hi in boxes])
        probs = _box_masses(boxes, data, eps)
        counts = np.append(counts, xs.shape[0] - counts.sum())  # the rest of the plane
        expected = np.append(probs, 1 - probs.sum()) * xs.shape[0]
    chi2 = stats.chisquare(counts, expected)
    print(f"chi-square = {chi2.statistic:.1f} on {counts.size - 1} df, p = {chi2.pvalue:.3f}")
    assert expected.min() > 5
    assert chi2.pvalue > ALPHA_FW


def test_exact_denoiser_goodness_of_fit_small():
    data = np.array([[-1.0], [0.0], [1.0]])
    _pooled_gof(data, 0.01, _sample_runs(data, 0.01, 10, 1000, "heun", 400))


@pytest.mark.slow
@pytest.mark.parametrize("method,n_steps", [("heun", 400), ("euler", 2000)])
@pytest.mark.parametrize(
    "data",
    [np.array([[-1.0], [0.0], [1.0]]), np.array([[-1.0, -1.0], [1.0, -1.0], [0.0, 1.0]])],
    ids=["1d", "2d"],
)
def test_exact_denoiser_reproduces_p_eps_large(data, method, n_steps):
    runs = _sample_runs(data, 0.01, 20, 5000, method, n_steps)
    _check_exact_sampler(data, 0.01, runs)
    _pooled_gof(data, 0.01, runs)


# -- convergence order --------------------------------------------------------------------------
CONV_DATA = {
    "1d": np.array([[-1.0], [0.0], [1.0]]),
    "2d": np.array([[-1.0, -1.0], [1.0, -1.0], [0.0, 1.0]]),
}


@pytest.mark.parametrize("case", ["1d", "2d"])
def test_convergence_orders(case):
    """Mean |x_method(x_T) - x_ref(x_T)| over 500 common initial points at eps = 0.05 (smooth
    flow); reference: Heun with 4000 steps (its own error ~2e-7, < 1 % of the errors below).
    Euler error halves as steps double; Heun's quarters (4 (1 + O(h)) pre-asymptotically)."""
    data = CONV_DATA[case]
    eps = 0.05
    x_T = np.sqrt(_sigma2(T)) * np.random.default_rng(0).standard_normal((500, data.shape[1]))
    ref = sample_exact_denoiser(data, 500, eps, n_steps=4000, method="heun", x_T=x_T)
    ref_half = sample_exact_denoiser(data, 500, eps, n_steps=2000, method="heun", x_T=x_T)
    steps = np.array([50, 100, 200, 400])
    err = {}
    for method in ("euler", "heun"):
        err[method] = np.array(
            [
                np.abs(
                    sample_exact_denoiser(data, 500, eps, n_steps=n, method=method, x_T=x_T) - ref
                ).mean()
                for n in steps
            ]
        )
        print(method, err[method], err[method][:-1] / err[method][1:])
    assert np.abs(ref - ref_half).mean() < 0.05 * err["heun"][-1]
    euler_ratios = err["euler"][:-1] / err["euler"][1:]
    assert np.all((euler_ratios > 1.7) & (euler_ratios < 2.3))
    heun_ratios = err["heun"][:-1] / err["heun"][1:]
    assert 3.5 < heun_ratios[-1] < 4.5
    order = np.log2(err["heun"][0] / err["heun"][-1]) / 3
    assert 1.8 < order < 2.4
    assert np.all(err["heun"] < err["euler"])


def test_exact_denoiser_seed_protocol_and_reproducibility():
    data = np.array([[-1.0], [0.0], [1.0]])
    a = sample_exact_denoiser(data, 300, 0.01, seed=4)
    b = sample_exact_denoiser(data, 300, 0.01, seed=4)
    c = sample_exact_denoiser(data, 300, 0.01, seed=5)
    np.testing.assert_array_equal(a, b)
    assert np.mean(a != c) > 0.9
    # Initial points: sigma_T * N(0, 1) from default_rng(SeedSequence([seed, 1]).spawn(1)[0]).
    rng = np.random.default_rng(np.random.SeedSequence([4, 1]).spawn(1)[0])
    x_T = np.sqrt(_sigma2(T)) * rng.standard_normal((300, 1))
    x_T_copy = x_T.copy()
    np.testing.assert_array_equal(sample_exact_denoiser(data, 300, 0.01, x_T=x_T), a)
    np.testing.assert_array_equal(x_T, x_T_copy)  # input not modified


def test_exact_denoiser_thread_invariance():
    data = np.array([[-1.0, 0.0], [1.0, 0.5], [0.0, -1.0]])
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        a = sample_exact_denoiser(data, 257, 0.01, method="heun", seed=1)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        b = sample_exact_denoiser(data, 257, 0.01, method="heun", seed=1)
    finally:
        numba.set_num_threads(old)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (257, 2)


def test_exact_denoiser_single_point_is_linear_ode():
    """M = 1, mu = 0: D^ = 0 and the PF-ODE is dx/dt = (beta/sigma^2 - beta) x, whose exact
    solution is x_eps = x_T sigma_eps/sigma_T. Euler applies the product of (1 + dt a_k)."""
    x_T = np.array([[0.7], [-1.3]])
    ts = np.linspace(T, 0.05, 31)
    ax, _ = _pf_coeffs(ts)
    factor = np.prod(1 + np.diff(ts) * ax[:-1])
    out = sample_exact_denoiser(np.zeros((1, 1)), 2, 0.05, x_T=x_T)
    np.testing.assert_allclose(out, x_T * factor, rtol=1e-12)
    fine = sample_exact_denoiser(np.zeros((1, 1)), 2, 0.05, n_steps=4000, method="heun", x_T=x_T)
    np.testing.assert_allclose(fine, x_T * np.sqrt(_sigma2(0.05) / _sigma2(T)), rtol=1e-6)


# -- linear ensembles against plain numpy -------------------------------------------------------
def _numpy_sampler(ens, x_T, eps, n_steps, method, grid=None):
    """Straightforward PF-ODE loop with D^ = W phi(x, t) from evaluate_reference; with
    ``grid = (lo, hi, G)`` D^ is taken at the nearest point of linspace(lo, hi, G) per axis
    (searchsorted)."""
    ts = np.linspace(T, eps, n_steps + 1)
    ax, bx = _pf_coeffs(ts)
    feats = ens.features

    def nearest(x):
        g = np.linspace(*grid[:2], grid[2])
        i = np.clip(np.searchsorted(g, x), 1, g.size - 1)
        left, right = g[i - 1], g[i]
        return np.where(x - left < right - x, left, right)

    out = np.empty_like(x_T)
    for n in range(ens.n_models):

        def den(x, k, n=n):
            z = nearest(x) if grid is not None else x
            return feats.evaluate_reference(z, np.full(z.shape[0], ts[k])) @ ens.W[n].T

        x = x_T[n].copy()
        for k in range(n_steps):
            dt = ts[k + 1] - ts[k]
            f0 = ax[k] * x - bx[k] * den(x, k)
            if method == "euler":
                x = x + dt * f0
            else:
                xt = x + dt * f0
                f1 = ax[k + 1] * xt - bx[k + 1] * den(xt, k + 1)
                x = x + 0.5 * dt * (f0 + f1)
        out[n] = x
    return out


def _ensemble(dim, kind="gaussian", n_models=3, seed=0):
    data = (
        np.array([[-1.0], [0.0], [1.0]])
        if dim == 1
        else np.array([[-1.0, -1.0], [1.0, -1.0], [0.0, 1.0]])
    )
    n_space = 8 if dim == 1 else 5
    feats = ProductFeatures.uniform(kind, dim, n_space, 4, (0.01, T))
    return train_linear_ensemble(data, feats, n_models, 400, 0.01, seed=seed)


@pytest.mark.parametrize("method", ["euler", "heun"])
@pytest.mark.parametrize(
    "dim,kind", [(1, "gaussian"), (1, "fourier"), (2, "gaussian"), (2, "fourier")]
)
def test_linear_sampler_exact_lookup_matches_numpy(dim, kind, method):
    ens = _ensemble(dim, kind)
    # 300 samples: more than one block of the block-vectorized kernels.
    x_T = 1.3 * np.random.default_rng(1).standard_normal((3, 300, dim))
    x_T[:, :4] = [[-10.0], [-4.0], [4.0], [10.0]]  # far outside the feature range
    out = sample_linear_ensemble(ens, 300, n_steps=30, method=method, x_T=x_T)
    ref = _numpy_sampler(ens, x_T, 0.01, 30, method)
    assert out.shape == (3, 300, dim)
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-10)
    # Different eps than the training eps.
    out = sample_linear_ensemble(ens, 300, eps=0.05, n_steps=17, method=method, x_T=x_T)
    ref = _numpy_sampler(ens, x_T, 0.05, 17, method)
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("method", ["euler", "heun"])
@pytest.mark.parametrize(
    "dim,grid", [(1, (-1.5, 1.5, 200)), (1, (-1.0, 1.2, 7)), (2, (-1.5, 1.5, 40))]
)
def test_linear_sampler_grid_lookup_matches_numpy(dim, grid, method):
    ens = _ensemble(dim)
    x_T = 1.3 * np.random.default_rng(2).standard_normal((3, 300, dim))
    x_T[:, :4] = [[-10.0], [-4.0], [4.0], [10.0]]
    out = sample_linear_ensemble(ens, 300, method=method, lookup="grid", lookup_grid=grid, x_T=x_T)
    ref = _numpy_sampler(ens, x_T, 0.01, 30, method, grid=grid)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
    # Grid lookup is a different sampler from exact lookup (guards against a silent fallback).
    assert np.abs(out - sample_linear_ensemble(ens, 300, method=method, x_T=x_T)).max() > 1e-6


@pytest.mark.parametrize("method", ["euler", "heun"])
@pytest.mark.parametrize("size", [1, 2, 7, 16, 34, 35])
def test_linear_sampler_1d_gaussian_sizes_match_numpy(size, method):
    """1-D Gaussian features have their own block-vectorized kernel (Horner form up to 34 bumps,
    the general recurrence above; a separate branch for points > 17 spacings from the central
    bump). Models are trained on P = 50 F triples so that the flow x_T -> x_eps is well
    conditioned: with P ~ 3 F the trained D^ is wiggly and the flow amplifies rounding-level
    differences of the denoiser by up to ~3e4 (measured), which says nothing about the kernel."""
    data = np.array([[-1.0], [0.0], [1.0]])
    feats = ProductFeatures.uniform("gaussian", 1, size, 4, (0.01, T))
    ens = train_linear_ensemble(data, feats, 2, max(400, 50 * feats.n_features), 0.01, seed=1)
    x_T = 1.3 * np.random.default_rng(0).standard_normal((2, 600, 1))
    far = [-1e3, -50.0, -30.0, -10.0, -7.5, -5.0, 5.0, 7.5, 10.0, 30.0, 50.0, 1e3]
    x_T[:, : len(far), 0] = far
    out = sample_linear_ensemble(ens, 600, method=method, x_T=x_T)
    ref = _numpy_sampler(ens, x_T, 0.01, 30, method)
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-10)


def test_exp_block_matches_numpy():
    """The vectorizable exponential of the 1-D sampler: within 1 ulp-ish of numpy.exp over its
    whole stated range (relative difference <= 2 * 2**-52)."""
    y = np.concatenate(
        [
            np.linspace(EXP_BLOCK_RANGE[0], EXP_BLOCK_RANGE[1], 200_001),
            np.random.default_rng(0).uniform(-80.0, 80.0, 100_000),
            [0.0, -0.0, 1e-300, -1e-17, 0.5 * np.log(2), -0.5 * np.log(2)],
        ]
    )
    got = exp_array(y)
    ref = np.exp(y)
    assert np.all(np.abs(got - ref) <= 2 * np.finfo(float).eps * ref)
    assert exp_array(np.array([0.0]))[0] == 1.0
    with pytest.raises(ValueError, match=r"\by\b"):
        exp_array(np.array([EXP_BLOCK_RANGE[1] + 1.0]))
    with pytest.raises(ValueError, match=r"\by\b"):
        exp_array(np.array([EXP_BLOCK_RANGE[0] - 1.0]))


def test_linear_sampler_thread_invariance():
    """Bit-identical samples with 1 and 2 numba threads, for every kernel: 2-D (general
    recurrence), 1-D Gaussian (block-vectorized), 1-D Fourier, and grid lookup."""
    ensembles = [_ensemble(2, n_models=5), _ensemble(1, n_models=5), _ensemble(1, "fourier", 5)]
    old = numba.get_num_threads()
    try:
        res = []
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            out = []
            for ens in ensembles:
                out.append(sample_linear_ensemble(ens, 300, seed=3, method="heun"))
                out.append(
                    sample_linear_ensemble(
                        ens, 300, seed=3, lookup="grid", lookup_grid=(-1.5, 1.5, 60)
                    )
                )
            res.append(out)
    finally:
        numba.set_num_threads(old)
    for a, b in zip(res[0], res[1], strict=True):
        np.testing.assert_array_equal(a, b)


def test_linear_sampler_seed_protocol_and_shapes():
    ens = _ensemble(1, n_models=4)
    a = sample_linear_ensemble(ens, 50, seed=7)
    b = sample_linear_ensemble(ens, 50, seed=7)
    c = sample_linear_ensemble(ens, 50, seed=8)
    assert a.shape == (4, 50, 1)
    np.testing.assert_array_equal(a, b)
    assert np.mean(a != c) > 0.9
    # Model n starts from sigma_T * N(0, 1) drawn from SeedSequence([seed, 1]).spawn(N)[n].
    x_T = np.stack(
        [
            np.sqrt(_sigma2(T)) * np.random.default_rng(s).standard_normal((50, 1))
            for s in np.random.SeedSequence([7, 1]).spawn(4)
        ]
    )
    x_T_copy = x_T.copy()
    np.testing.assert_array_equal(sample_linear_ensemble(ens, 50, x_T=x_T), a)
    np.testing.assert_array_equal(x_T, x_T_copy)
    # Each model is integrated with its own W: models differ.
    assert np.abs(a[0] - a[1]).max() > 1e-6
    ens2 = _ensemble(2, n_models=2)
    assert sample_linear_ensemble(ens2, 3, n_steps=2).shape == (2, 3, 2)


# -- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(n_steps=0), "n_steps"),
        (dict(n_steps=2.5), "n_steps"),
        (dict(method="rk4"), "method"),
        (dict(lookup="foo"), "lookup"),
        (dict(lookup="grid", lookup_grid=(1.0, -1.0, 10)), "lookup_grid"),
        (dict(lookup="grid", lookup_grid=(-1.0, 1.0, 1)), "lookup_grid"),
        (dict(eps=0.0), "eps"),
        (dict(eps=-0.1), "eps"),
        (dict(eps=1.0), "eps"),
        (dict(eps=3.0), "eps"),
        (dict(x_T=np.zeros((3, 5, 1))), "x_T"),
        (dict(n_samples=0), "n_samples"),
    ],
)
def test_linear_sampler_bad_input(kw, match):
    ens = _ensemble(1)
    args = dict(n_samples=4)
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        sample_linear_ensemble(ens, **args)


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(n_steps=0), "n_steps"),
        (dict(method="rk4"), "method"),
        (dict(eps=0.0), "eps"),
        (dict(eps=1.5), "eps"),
        (dict(schedule="cosine"), "schedule"),
        (dict(data=np.array([[0.0], [np.nan]])), "data"),
        (dict(x_T=np.zeros((4, 2))), "x_T"),
        (dict(x_T=np.full((4, 1), np.inf)), "x_T"),
        (dict(n_samples=0), "n_samples"),
    ],
)
def test_exact_sampler_bad_input(kw, match):
    args = dict(data=np.array([[-1.0], [1.0]]), n_samples=4, eps=0.01)
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        sample_exact_denoiser(**args)


def test_linear_variance_with_T_one_is_rejected():
    """linear-variance has beta_t = 1/(2(1 - t)): the PF-ODE drift is infinite at T = 1."""
    data = np.array([[-1.0], [1.0]])
    with pytest.raises(ValueError, match=r"\bT\b"):
        sample_exact_denoiser(data, 4, 0.01, "linear-variance")
    feats = ProductFeatures.uniform("gaussian", 1, 4, 3, (0.01, 1.0))
    ens = train_linear_ensemble(data, feats, 2, 100, 0.01, schedule="linear-variance")
    with pytest.raises(ValueError, match=r"\bT\b"):
        sample_linear_ensemble(ens, 4)
    # T < 1 works.
    sched = get_schedule("linear-variance", T=0.99)
    out = sample_exact_denoiser(data, 4, 0.01, sched)
    assert out.shape == (4, 1) and np.all(np.isfinite(out))


def test_ensemble_type_checked():
    with pytest.raises(TypeError):
        sample_linear_ensemble("not an ensemble", 4)
