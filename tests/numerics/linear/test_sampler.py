"""PF-ODE sampling of linear-feature ensembles (gtv.numerics.linear.sampler; conventions).

* The numba sampler against a plain-numpy loop (exact and grid lookup, every denoiser kernel,
  including the block-vectorized 1-D Gaussian one and its exponential).
* Thread-count invariance, seed reproducibility (the stream "sampling"), shapes, input
  validation.
"""

import numba
import numpy as np
import pytest

from gtv.numerics.fastexp import EXP_BLOCK_RANGE, exp_array
from gtv.numerics.features import ProductFeatures
from gtv.numerics.linear import LinearSampler, sample_linear_ensemble, train_linear_ensemble
from gtv.numerics.streams import stream

T = 1.0


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


# -- linear ensembles against plain numpy -------------------------------------------------------
def _numpy_sampler(ens, x_T, eps, n_steps, method, grid=None, early=None, t_switch=None):
    """Straightforward PF-ODE loop with D^ = W phi(x, t) from evaluate_reference; with
    ``grid = (lo, hi, G)`` D^ is taken, per axis, at the first point of linspace(lo, hi, G) at or
    above x, clipped to the last (the paper's ``np.clip(np.searchsorted(grid, x), None, G-1)``);
    with ``early``, its model n's W at every step time above ``t_switch``."""
    ts = np.linspace(T, eps, n_steps + 1)
    ax, bx = _pf_coeffs(ts)
    feats = ens.features

    def paper_point(x):
        g = np.linspace(*grid[:2], grid[2])
        return g[np.clip(np.searchsorted(g, x), None, g.size - 1)]

    out = np.empty_like(x_T)
    for n in range(ens.n_models):

        def den(x, k, n=n):
            z = paper_point(x) if grid is not None else x
            W = early.W[n] if early is not None and ts[k] > t_switch else ens.W[n]
            return feats.evaluate_reference(z, np.full(z.shape[0], ts[k])) @ W.T

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
    ref = np.exp(y)
    for method in ("block", "inline"):
        got = exp_array(y, method=method)
        assert np.all(np.abs(got - ref) <= 2 * np.finfo(float).eps * ref), method
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
    # Model n starts from sigma_T * N(0, 1) drawn from stream(seed, "sampling").spawn(N)[n].
    x_T = np.stack(
        [
            np.sqrt(_sigma2(T)) * np.random.default_rng(s).standard_normal((50, 1))
            for s in stream(7, "sampling").spawn(4)
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
    ("dim", "kind", "lookup"),
    [(1, "gaussian", "exact"), (2, "fourier", "exact"), (1, "gaussian", "grid")],
)
def test_rows_carried_by_chosen_models_equal_the_full_ensemble(dim, kind, lookup):
    """``models``: row r of x_T is carried by model models[r] (repeats, any order) -- the same
    numbers as running every model on every row (each kernel: 1-D Horner, general, grid)."""
    ens = _ensemble(dim, kind, n_models=3)
    rng = np.random.default_rng(5)
    x_T = rng.standard_normal((4, 300, dim))
    models = np.array([2, 0, 2, 1])
    got = sample_linear_ensemble(ens, 300, x_T=x_T, models=models, lookup=lookup)
    for r, n in enumerate(models):
        full = sample_linear_ensemble(
            ens, 300, x_T=np.broadcast_to(x_T[r], (3, 300, dim)), lookup=lookup
        )
        np.testing.assert_array_equal(got[r], full[n])
    for bad, match in (
        ({"models": np.array([0, 3, 1, 1])}, "models must lie"),
        ({"models": np.array([0.0, 1.0, 1.0, 2.0])}, "1-D array of model indices"),
    ):
        with pytest.raises(ValueError, match=match):
            sample_linear_ensemble(ens, 300, x_T=x_T, **bad)
    with pytest.raises(ValueError, match="x_T"):
        sample_linear_ensemble(ens, 300, models=models)


@pytest.mark.parametrize("method", ["euler", "heun"])
@pytest.mark.parametrize(("dim", "lookup"), [(1, "exact"), (2, "exact"), (1, "grid")])
def test_spliced_sampler_matches_numpy(dim, lookup, method):
    """``early``/``t_switch``: each model steps with the other ensemble's model above t_switch,
    against the numpy loop that switches W by the step time (every kernel)."""
    ens, other = _ensemble(dim, n_models=3, seed=0), _ensemble(dim, n_models=3, seed=1)
    x_T = 1.3 * np.random.default_rng(3).standard_normal((3, 300, dim))
    grid = (-1.5, 1.5, 40) if lookup == "grid" else None
    for t_switch in (0.3, 0.05):
        got = LinearSampler(
            ens, method=method, lookup=lookup, lookup_grid=grid or (-1.5, 1.5, 200),
            early=other, t_switch=t_switch,
        ).sample(300, x_T=x_T)  # fmt: skip
        ref = _numpy_sampler(ens, x_T, 0.01, 30, method, grid, early=other, t_switch=t_switch)
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)
        # a splice is neither ensemble's own sampler
        for own in (ens, other):
            plain = sample_linear_ensemble(own, 300, method=method, x_T=x_T, lookup=lookup,
                                           lookup_grid=grid or (-1.5, 1.5, 200))  # fmt: skip
            assert np.abs(got - plain).max() > 1e-3
    # no step above T: the ensemble's own samples; every step above 0: early's
    for t_switch, own in ((2.0, ens), (0.0, other)):
        got = LinearSampler(ens, early=other, t_switch=t_switch).sample(300, x_T=x_T)
        np.testing.assert_array_equal(got, sample_linear_ensemble(own, 300, x_T=x_T))


def test_spliced_sampler_bad_input():
    ens = _ensemble(1, n_models=3)
    with pytest.raises(ValueError, match="t_switch is only used with early"):
        LinearSampler(ens, t_switch=0.1)
    with pytest.raises(TypeError, match="early"):
        LinearSampler(ens, early=ens.W, t_switch=0.1)
    for bad in (None, float("nan"), True):
        with pytest.raises(ValueError, match="t_switch"):
            LinearSampler(ens, early=ens, t_switch=bad)
    with pytest.raises(ValueError, match="early must have the ensemble's models"):
        LinearSampler(ens, early=_ensemble(1, n_models=2), t_switch=0.1)
    with pytest.raises(ValueError, match="early must have the ensemble's models"):
        LinearSampler(ens, early=_ensemble(1, "fourier", n_models=3), t_switch=0.1)
    other_eps = train_linear_ensemble(ens.data, ens.features, 3, 400, 0.02, seed=0)
    with pytest.raises(ValueError, match="schedule and eps"):
        LinearSampler(ens, early=other_eps, t_switch=0.1)


def test_ensemble_type_checked():
    with pytest.raises(TypeError):
        sample_linear_ensemble("not an ensemble", 4)
