"""PF-ODE samples with the exact Bayes denoiser (gtv.numerics.exact; docs/math/conventions.md).

* With many steps the PF-ODE output reproduces p(x | eps), the Gaussian mixture
  (1/M) sum_m N(alpha_eps mu_m, sigma_eps^2 I), checked on region masses.
* Thread-count invariance, seed reproducibility (the stream "bayes-sampling"), input validation.

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

from gtv.numerics.exact import sample_exact_denoiser
from gtv.numerics.streams import stream

T = 1.0


ALPHA_FW = 1e-3  # family-wise false-failure rate of each statistical check


# vp-linear closed forms (independent of the generated schedule code).
def _alpha(t):
    return np.exp(-(0.1 * t + 19.9 * t * t / 2))


def _sigma2(t):
    return -np.expm1(-2 * (0.1 * t + 19.9 * t * t / 2))


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


def test_exact_denoiser_seed_protocol_and_reproducibility():
    data = np.array([[-1.0], [0.0], [1.0]])
    a = sample_exact_denoiser(data, 300, 0.01, seed=4)
    b = sample_exact_denoiser(data, 300, 0.01, seed=4)
    c = sample_exact_denoiser(data, 300, 0.01, seed=5)
    np.testing.assert_array_equal(a, b)
    assert np.mean(a != c) > 0.9
    # Initial points: sigma_T * N(0, 1) from stream(seed, "bayes-sampling").spawn(1)[0].
    rng = np.random.default_rng(stream(4, "bayes-sampling").spawn(1)[0])
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
