"""Trained two-layer networks vs the lazy infinite-width theory (gtv.validation.ntk.compare;
issue 6, items 4-5) and ``gtv validate ntk``.

Fast tests (tiny widths, models and P; a few seconds): the time mapping between the networks'
``(eta, k steps)`` and the kernel theory's ``(lr, tau)`` (exact, on the same Gram matrix); the
shared training sets; every code path of :func:`compare_ntk` (statistics recomputed from the raw
arrays, save/load, plot, the on-disk cache and resume); bad input; the CLI.

The slow test (``python -m pytest -m slow tests/validation/ntk/test_compare.py -s``, ~4 minutes on
2 cores) has the headline numbers: widths 256 / 1024 / 2048, erf, eps = 1e-2, P = 256.
"""

from __future__ import annotations

import re

import numba
import numpy as np
import pytest

from gtv.numerics.io import save_result
from gtv.numerics.kernel import (
    KernelRegression,
    fit_kernel_regression,
    ntk_theory,
    train_kernel_ensemble,
)
from gtv.numerics.schedules import get_schedule
from gtv.numerics.two_layer import (
    empirical_ntk,
    init_two_layer_ensemble,
    linearized_predictions,
    stability_limit,
)
from gtv.validation.cli import NTK_DEFAULTS, main
from gtv.validation.figures.figure2 import FIGURE2_DATA
from gtv.validation.ntk.compare import NTKCompareConfig, NTKComparison, compare_ntk

EPS = 1e-2


def _tiny(**kw) -> NTKCompareConfig:
    base = dict(
        P=48,
        widths=(32, 2048),
        n_models=5,
        taus=(1.0, 6.0),
        n_samples=150,
        n_bins=40,
        n_boot=40,
        theory_n_t=8,
        theory_n_hermite=8,
        fp_steps=60,
        fp_refine=1,
        fp_half_width=10.0,
        n_bayes_samples=1000,
        query_x=(-1.0, 0.5),
        query_t=(0.05, 0.3),
        n_points=128,
        max_points=1024,
    )
    base.update(kw)
    return NTKCompareConfig(**base)


@pytest.fixture(scope="module")
def tiny() -> NTKComparison:
    return compare_ntk(_tiny())


def _one_line_error(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("gtv: error:"), err
    assert "Traceback" not in err
    return lines[0]


# -- the time mapping -------------------------------------------------------------------------
def test_kernel_theory_at_lr_eta_tau_eta_k_is_the_linearized_network():
    """Networks after k steps of rate eta <-> the kernel theory, on the same Gram matrix.

    gtv.numerics.two_layer.linearized_predictions (part B: the network's linearization,
    filter ``(1 - eta g / P)**k`` on ``G = Lam^1/2 Theta Lam^1/2``, or ``exp(-eta k g / P)``
    for ``flow="gf"``) and gtv.numerics.kernel.KernelRegression (part A: filters on
    ``s = eig(G) / P``) are given the network's empirical tangent kernel at initialization and
    must agree to round-off:

    * gradient descent: A at ``(lr = eta, tau = eta k)`` (A takes ``k = tau / lr`` steps) -- the
      mapping compare_ntk uses;
    * gradient flow: A's filter is ``exp(-lr tau s)``, so ``(lr = 1, tau = eta k)`` or
      ``(lr = eta, tau = k)``.

    Negative controls: A's gradient flow at ``(lr = eta, tau = eta k)`` (``tau`` read as in A's
    gradient descent) and at ``tau = k, lr = 1`` are far off -- in A the meaning of ``tau`` depends
    on ``flow`` (time at unit rate for gradient descent, time at rate ``lr`` for the flow)."""
    ini = init_two_layer_ensemble(FIGURE2_DATA, 256, 1, 40, EPS, activation="erf", seed=3)
    W0, A0, z, x0, w = ini.W0[0], ini.A0[0], ini.z[0], ini.x0[0], ini.weight[0]
    P = z.shape[0]
    # The negative controls read tau at the wrong rate, off by a factor eta: they can only fail
    # to match when eta is far from 1, so that is required of the rate (not left to the seed).
    eta = 0.25 * float(stability_limit(ini)[0])
    assert abs(np.log(eta)) > 0.5, eta
    steps = np.array([1, 7, 60, 400])
    zq = ini.networks().inputs(np.linspace(-1.5, 1.5, 9), 0.1)
    theta = empirical_ntk(W0, A0, z, z, "erf")[:, 0, :, 0]
    theta_q = empirical_ntk(W0, A0, zq, z, "erf")[:, 0, :, 0]
    sw = np.sqrt(w / P)
    s, U = np.linalg.eigh(sw[:, None] * theta * sw[None, :])
    kr = KernelRegression(z, x0, w, "erf", 0.0, np.clip(s, 0.0, None), U)

    def kernel(tau, lr, flow):
        return np.einsum("qp,kp->kq", theta_q, kr.coefficients(tau, lr, flow)[:, :, 0])

    def net_lin(flow):
        return linearized_predictions(W0, A0, z, x0, w, zq, eta, steps, "erf", flow)[:, :, 0]

    gd, gf = net_lin("gd"), net_lin("gf")
    assert np.abs(gd[-1]).max() > 0.1  # a non-trivial prediction
    k = steps.astype(float)
    np.testing.assert_allclose(kernel(eta * k, eta, "gradient-descent"), gd, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(kernel(eta * k, 1.0, "gradient-flow"), gf, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(kernel(k, eta, "gradient-flow"), gf, rtol=1e-8, atol=1e-10)
    assert np.abs(kernel(eta * k, eta, "gradient-flow") - gf).max() > 0.05
    assert np.abs(kernel(k, 1.0, "gradient-flow") - gf).max() > 0.05


def test_all_widths_and_the_kernel_regression_share_the_training_sets():
    """Each model's stream draws its triples before its weights (part B) and the infinite-width
    ensemble of part A draws the same triples from the same stream, so the comparison at every
    width is paired with the same training sets."""
    a = init_two_layer_ensemble(FIGURE2_DATA, 8, 3, 20, EPS, activation="erf", seed=11)
    b = init_two_layer_ensemble(FIGURE2_DATA, 64, 3, 20, EPS, activation="erf", seed=11)
    for name in ("t", "x0", "x", "z", "weight"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    kens = train_kernel_ensemble(FIGURE2_DATA, 20, 3, EPS, [1.0], activation="erf", seed=11)
    np.testing.assert_array_equal(kens.centres, a.z)


# -- compare_ntk end to end (tiny) ------------------------------------------------------------
def test_compare_shapes_and_learning_rate(tiny):
    c = tiny.config
    W, K, N, Q = len(c.widths), len(c.taus), c.n_models, len(c.query_x) * len(c.query_t)
    assert tiny.denoiser.shape == (W, K, N, Q)
    assert tiny.kernel_denoiser.shape == (K, N, Q)
    assert tiny.histograms.shape == (W, K, N, c.n_bins)
    assert tiny.kernel_histograms.shape == tiny.gf_histograms.shape == (K, N, c.n_bins)
    assert tiny.fp_density.shape == (K, c.n_bins)
    m = tiny.meta
    assert tiny.learning_rate == pytest.approx(c.lr_fraction * m["stability_limit"], rel=1e-12)
    assert m["stability_limit"] == min(
        min(m["limit_by_width_min"]), m["kernel_limit_min"], m["theory_limit"]
    )
    np.testing.assert_array_equal(tiny.steps, np.rint(np.array(c.taus) / tiny.learning_rate))
    np.testing.assert_allclose(tiny.taus, tiny.learning_rate * tiny.steps, rtol=0, atol=0)


def test_compare_values_match_independent_computations(tiny):
    """Kernel and theory columns against direct calls at (lr = eta, tau = eta k); the trained
    networks approach the kernel as the width grows (32 -> 2048: the n^-1/2 tangent-kernel
    fluctuation predicts 8x; at least 2x required. With 5 models the measured ratio scatters by
    a factor ~1.6 (32 -> 512 over seeds 0-3 gave 1.8-6.9 around the predicted 4x), so 2x is
    three such factors below the prediction)."""
    c = tiny.config
    qx, qt = c.query_points()
    ini = init_two_layer_ensemble(FIGURE2_DATA, 32, c.n_models, c.P, c.eps, activation="erf")
    eta, taus = tiny.learning_rate, tiny.taus
    for m in (0, c.n_models - 1):
        kr = fit_kernel_regression(ini.z[m], ini.x0[m], ini.weight[m], "erf")
        for t in np.unique(qt):
            sel = qt == t
            pred = kr.predict(ini.networks().inputs(qx[sel], t), taus, eta, "gradient-descent")
            np.testing.assert_allclose(tiny.kernel_denoiser[:, m, sel], pred[:, :, 0], rtol=1e-10)
    th = ntk_theory(FIGURE2_DATA, c.eps, "vp-linear", "erf", lr=eta, flow="gradient-descent",
                    n_t=c.theory_n_t, n_hermite=c.theory_n_hermite)  # fmt: skip
    for k, tau in enumerate(taus):
        np.testing.assert_allclose(tiny.theory["mean"][k], th.mean_denoiser(qx, qt, tau)[:, 0])
        var = th.denoiser_covariance((qx, qt), tau=tau, P=c.P, paired=True)[:, 0, 0]
        np.testing.assert_allclose(tiny.theory["var"][k], var)
        np.testing.assert_allclose(
            tiny.theory["var_proxy"][k] + tiny.theory["var_misfit"][k], var, rtol=1e-10
        )
    err = np.sqrt(
        ((tiny.denoiser - tiny.kernel_denoiser[None]) ** 2).sum(axis=(2, 3))
        / (tiny.kernel_denoiser[None] ** 2).sum(axis=(2, 3))
    )  # (W, K)
    assert np.all(err[1] < err[0] / 2), err
    for i, w in enumerate(c.widths):
        np.testing.assert_allclose(tiny.errors("model", w), err[i], rtol=1e-12)


def test_error_rows_recomputed_from_raw_arrays(tiny):
    c = tiny.config
    net, ker = tiny.denoiser, tiny.kernel_denoiser
    for i, w in enumerate(c.widths):
        m_net, m_ker = net[i].mean(1), ker.mean(1)
        v_net, v_ker = net[i].var(1, ddof=1), ker.var(1, ddof=1)
        mean_err = np.linalg.norm(m_net - m_ker, axis=1) / np.linalg.norm(m_ker, axis=1)
        var_err = np.linalg.norm(v_net - v_ker, axis=1) / np.linalg.norm(v_ker, axis=1)
        th_err = np.linalg.norm(v_net - tiny.theory["var"], axis=1) / np.linalg.norm(
            tiny.theory["var"], axis=1
        )
        np.testing.assert_allclose(tiny.errors("mean_vs_kernel", w), mean_err, rtol=1e-12)
        np.testing.assert_allclose(tiny.errors("var_vs_kernel", w), var_err, rtol=1e-12)
        np.testing.assert_allclose(tiny.errors("var_vs_theory", w), th_err, rtol=1e-12)
        # Jensen: the error of the mean is at most the rms per-model error
        rms = np.sqrt(((net[i] - ker) ** 2).mean(axis=1).sum(axis=1))
        assert np.all(mean_err * np.linalg.norm(m_ker, axis=1) <= rms * (1 + 1e-12))
    for r in tiny.error_rows:
        for key in ("mean_vs_theory", "var_vs_theory", "mean_vs_kernel", "var_vs_kernel"):
            if key in r:
                assert 0 <= r[f"{key}_lo"] <= r[f"{key}_hi"] and np.isfinite(r[key])
    with pytest.raises(ValueError, match="width"):
        tiny.errors("model", 7)
    with pytest.raises(ValueError, match="name"):
        tiny.errors("nonsense", "inf")


def test_denoiser_gap_and_density_rows(tiny):
    c = tiny.config
    qx, qt = c.query_points()
    K, Q = len(c.taus), qx.size
    assert len(tiny.denoiser_rows) == K * Q
    for j, r in enumerate(tiny.denoiser_rows):
        k, q = divmod(j, Q)
        assert (r["tau"], r["x"], r["t"]) == (tiny.taus[k], qx[q], qt[q])
        vals = tiny.denoiser[-1, k, :, q]
        assert r["mean"] == pytest.approx(vals.mean(), rel=1e-12)
        assert r["var"] == pytest.approx(vals.var(ddof=1), rel=1e-12)
        assert r["var_lo"] <= r["var"] <= r["var_hi"]
        assert r["kernel_mean"] == pytest.approx(tiny.kernel_denoiser[k, :, q].mean(), rel=1e-12)
    bw = (c.hist_range[1] - c.hist_range[0]) / c.n_bins
    np.testing.assert_allclose(tiny.histograms.sum(-1) * bw + tiny.outside, 1.0, atol=1e-12)
    np.testing.assert_allclose(tiny.gf_histograms.sum(-1) * bw + tiny.gf_outside, 1.0, atol=1e-12)
    assert np.all((tiny.gap >= 0) & (tiny.gap <= 1))
    for k, r in enumerate(tiny.gap_rows):
        for i, w in enumerate(c.widths):
            est, lo, hi = r[f"width {w}"]
            assert est == pytest.approx(tiny.gap[i, k].mean(), rel=1e-12) and lo <= hi
        assert r["infinite width"][0] == pytest.approx(tiny.kernel_gap[k].mean(), rel=1e-12)
        assert r["white-noise FP"] == tiny.fp_gap[k] and 0 <= r["FP, Q = 0"] <= 1
    for r in tiny.density_rows:
        assert 0 <= r["tv"] <= 1 and r["tv_lo"] <= r["tv_hi"]
    assert {r["name"] for r in tiny.density_rows} == {
        "kernel", "gaussian_field", "white_noise_fp", "mean_score_fp_Q0", "p(x|eps)", "bayes",
        "floor",
    }  # fmt: skip
    # mass by distance from the data: per tau the field against the infinite-width networks;
    # the gap shells (d >= 0.25) against a direct count over the bins whose centre is that far
    centres = (np.arange(c.n_bins) + 0.5) * bw + c.hist_range[0]  # here some lie on d = 0.25
    far = np.min(np.abs(centres[:, None] - np.array([-1.0, 0.0, 1.0])), axis=1) >= 0.25 - 1e-9
    assert len(tiny.shell_rows) == 5 * K
    for k, tau in enumerate(tiny.taus):
        rows = [r for r in tiny.shell_rows if r["tau"] == float(tau)]
        assert [r["lo"] for r in rows] == [0.0, 0.05, 0.1, 0.25, 0.5]
        assert {r["reference"] for r in rows} == {"infinite width"}
        direct = tiny.kernel_histograms[k][:, far].sum(1) * bw + tiny.kernel_outside[k]
        assert rows[3]["trained"] + rows[4]["trained"] == pytest.approx(direct.mean(), rel=1e-12)
        field = tiny.gf_histograms[k][:, far].sum(1) * bw + tiny.gf_outside[k]
        assert rows[3]["predicted"] + rows[4]["predicted"] == pytest.approx(field.mean(), rel=1e-12)
    # exact baseline: p(x|eps) at eps = 0.01 (sigma = 0.063) leaves ~1e-4 beyond 0.25 = 4 sigma
    assert 0 < tiny.meta["baseline_gap"]["p(x|eps)"] < 1e-3
    assert np.all(np.isfinite(tiny.width_slopes()))


def test_table_save_load_and_plot(tiny, tmp_path):
    text = tiny.format_table()
    for s in ("gradient descent eta", "relative errors over the 4 query points", "summary:",
              "gap mass", "baselines: p(x|eps)", "Gaussian field", "width 2048",
              "mass by distance", "against infinite width"):  # fmt: skip
        assert s in text, s
    assert "nan" not in text
    npz, js = tiny.save(tmp_path / "ntk")
    assert js.exists() and npz.suffix == ".npz"
    back = NTKComparison.load(npz)
    assert back.format_table() == text
    assert back.config == tiny.config and back.learning_rate == tiny.learning_rate
    for name, arr in tiny.arrays().items():
        np.testing.assert_array_equal(back.arrays()[name], arr)
    paths = tiny.plot(tmp_path / "ntk", formats=("png",), density_taus=(6.0,))
    assert paths[0].stat().st_size > 0
    other = save_result(tmp_path / "other", {"a": np.zeros(1)}, {"kind": "something"})
    with pytest.raises(ValueError, match="NTKComparison"):
        NTKComparison.load(other)


def test_cache_reuses_and_resumes_training(tmp_path):
    """Cached (identical), resumed (= an uninterrupted run with the same, explicitly given,
    learning rate on one numba thread instead of the default count: thread-count invariance of
    the whole pipeline)."""
    cheap = dict(
        widths=(16,), sample_kernel=False, n_samples=40, n_bins=20, fp_steps=20, density="mc"
    )
    cfg = _tiny(taus=(1.0, 3.0), **cheap)
    a = compare_ntk(cfg, cache_dir=tmp_path)
    b = compare_ntk(cfg, cache_dir=tmp_path)
    assert a.meta["cache"] == ["trained"] and b.meta["cache"] == ["cached"]
    np.testing.assert_array_equal(a.denoiser, b.denoiser)
    np.testing.assert_array_equal(a.histograms, b.histograms)
    assert a.kernel_gap.size == 0 and "infinite width" not in a.format_gap_table()
    longer = _tiny(taus=(1.0, 3.0, 8.0), **cheap)
    c = compare_ntk(longer, cache_dir=tmp_path)
    assert c.meta["cache"] == ["resumed"]
    np.testing.assert_array_equal(c.denoiser[:, :2], a.denoiser)  # resumed = uninterrupted
    # an uninterrupted run, with the same learning rate given explicitly, on one numba thread
    explicit = _tiny(taus=(1.0, 3.0, 8.0), learning_rate=c.learning_rate, **cheap)
    old = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        fresh = compare_ntk(explicit)
    finally:
        numba.set_num_threads(old)
    assert old > 1 or numba.config.NUMBA_NUM_THREADS == 1
    assert fresh.learning_rate == c.learning_rate
    for name in ("denoiser", "kernel_denoiser", "histograms", "gap", "gf_histograms"):
        np.testing.assert_array_equal(getattr(c, name), getattr(fresh, name), err_msg=name)


@pytest.mark.parametrize(
    "damage",
    [
        "scaled",
        pytest.param("truncated", marks=pytest.mark.slow),
        pytest.param("flipped", marks=pytest.mark.slow),
    ],
)
def test_damaged_training_cache_is_reported_and_retrained(tmp_path, damage):
    """Audit (issue 14): a truncated or bit-flipped ``--cache`` trajectory crashed with
    BadZipFile, and one whose array was changed inside a valid npz (W[-1] x 1.5) was used as
    "cached" (it moved the gap mass by up to 0.40). Each is now one CacheEntryWarning naming the
    file; the model is retrained, giving the numbers of the undamaged run, and the retrained
    entry is saved and reused."""
    from gtv.validation.results import CacheEntryWarning

    cheap = dict(
        widths=(16,), sample_kernel=False, n_samples=40, n_bins=20, fp_steps=20, density="mc"
    )
    cfg = _tiny(taus=(1.0, 3.0), **cheap)
    a = compare_ntk(cfg, cache_dir=tmp_path)
    (path,) = tmp_path.glob("two_layer_*.npz")
    good = path.read_bytes()
    if damage == "scaled":
        with np.load(path, allow_pickle=False) as f:
            entries = {k: f[k] for k in f.files}
        entries["W"] = entries["W"].copy()
        entries["W"][-1] *= 1.5
        with open(path, "wb") as fh:
            np.savez(fh, **entries)
    elif damage == "truncated":
        path.write_bytes(good[: len(good) // 3])
    else:
        path.write_bytes(good[:300] + bytes([good[300] ^ 0x55]) + good[301:])
    with pytest.warns(CacheEntryWarning, match=path.name):
        b = compare_ntk(cfg, cache_dir=tmp_path)
    assert b.meta["cache"] == ["trained"]
    np.testing.assert_array_equal(b.denoiser, a.denoiser)
    np.testing.assert_array_equal(b.gap, a.gap)
    c = compare_ntk(cfg, cache_dir=tmp_path)
    assert c.meta["cache"] == ["cached"]


# -- bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kw, match",
    [
        ({"widths": (0,)}, "widths"),
        ({"widths": (-4, 8)}, "widths"),
        ({"widths": (3,)}, "widths must be even"),
        ({"widths": ()}, "widths"),
        ({"widths": (2.5,)}, "widths"),
        ({"taus": (-1.0,)}, "taus must be >= 0"),
        ({"taus": (0.0, 1.0)}, "taus must be > 0"),
        ({"taus": (3.0, 1.0)}, "taus must be strictly increasing"),
        ({"taus": (np.inf,)}, "taus"),
        ({"activation": "tanh"}, "activation"),
        ({"lr_fraction": 1.0}, "lr_fraction"),
        ({"lr_fraction": 0.0}, "lr_fraction"),
        ({"learning_rate": -0.1}, "learning_rate"),
        ({"n_models": 3}, "n_models"),
        ({"P": 0}, "P"),
        ({"eps": 1.5}, "eps"),
        ({"query_t": (0.001,)}, "query_t"),
        ({"gap_distance": 0.0}, "gap_distance"),
        ({"method": "rk4"}, "method"),
        ({"n_boot": 5}, "n_boot"),
        ({"fp_half_width": 1.0}, "fp_half_width"),
    ],
)
def test_config_rejects_bad_input(kw, match):
    with pytest.raises(ValueError, match=match):
        _tiny(**kw)


def test_learning_rate_beyond_the_stability_limit_raises_with_the_limit():
    cfg = _tiny(widths=(16, 64), learning_rate=50.0)
    with pytest.raises(ValueError, match="stability limit") as exc:
        compare_ntk(cfg)
    msg = str(exc.value)
    assert "learning_rate = 50" in msg
    limit = float(re.search(r"\) = ([0-9.eE+-]+) \(min over", msg).group(1))
    # the limit: smallest of the finite-width, infinite-width and population limits
    inits = [
        init_two_layer_ensemble(FIGURE2_DATA, w, 5, 48, EPS, activation="erf") for w in (16, 64)
    ]
    finite = min(float(stability_limit(i).min()) for i in inits)
    kern = min(
        fit_kernel_regression(inits[0].z[m], inits[0].x0[m], inits[0].weight[m], "erf").lr_max
        for m in range(5)
    )
    pop = ntk_theory(FIGURE2_DATA, EPS, get_schedule("vp-linear"), "erf", n_t=8, n_hermite=8).lr_max
    assert limit == pytest.approx(min(finite, kern, pop), rel=1e-5)


def test_query_points_with_vanishing_reference_raise():
    with pytest.raises(ValueError, match="query_x"):
        compare_ntk(_tiny(widths=(16,), query_x=(0.0,), sample_kernel=False, n_samples=20))


def test_taus_must_resolve_to_distinct_whole_steps():
    with pytest.raises(ValueError, match="shorter than one gradient step"):
        compare_ntk(_tiny(widths=(16,), taus=(1e-4, 1.0)))
    with pytest.raises(ValueError, match="repeated step counts"):
        compare_ntk(_tiny(widths=(16,), taus=(1.0, 1.0001)))
    with pytest.raises(TypeError, match="config"):
        compare_ntk({"P": 3})


# -- CLI --------------------------------------------------------------------------------------
_CLI_TINY = [
    "validate", "ntk", "--P", "48", "--widths", "16", "64", "--models", "4", "--taus", "1", "4",
    "--samples", "100", "--bins", "40", "--boot", "20", "--query-x", "-0.4", "0.7",
    "--query-t", "0.05", "--theory-nodes", "8", "8", "--fp-steps", "50", "--fp-half-width", "10",
    "--formats", "png", "--no-progress", "--density", "mc",
]  # fmt: skip


def test_cli_validate_ntk_runs(tmp_path, capsys):
    assert main([*_CLI_TINY, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "gap mass" in out and "summary:" in out and " -0.40 0.050 |" in out
    for ext in ("npz", "json", "png"):
        assert (tmp_path / f"ntk_erf_eps0.01_P48.{ext}").exists(), ext
    back = NTKComparison.load(tmp_path / "ntk_erf_eps0.01_P48.npz")
    assert back.config.widths == (16, 64) and back.config.n_models == 4


@pytest.mark.parametrize(
    "bad, word",
    [
        (["--widths", "0"], "widths"),
        (["--taus", "-1"], "taus"),
        (["--learning-rate", "100"], "stability limit"),
        (["--activation", "tanh"], "activation"),
        (["--lr-fraction", "1.5"], "lr_fraction"),
    ],
)
def test_cli_validate_ntk_bad_input_one_line(bad, word, tmp_path, capsys):
    assert main([*_CLI_TINY, "--out", str(tmp_path), *bad]) == 1
    line = _one_line_error(capsys.readouterr().err)
    assert word in line


def test_cli_bad_number_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["validate", "ntk", "--widths", "x"])
    assert exc.value.code == 2
    _one_line_error(capsys.readouterr().err)


def test_cli_defaults_are_the_config_defaults():
    d = NTKCompareConfig()
    for k, v in NTK_DEFAULTS.items():
        assert getattr(d, k) == v, k
    from gtv.validation.cli import build_parser

    args = build_parser().parse_args(["validate", "ntk"])
    assert tuple(args.widths) == d.widths and tuple(args.taus) == d.taus
    assert args.models == d.n_models and args.learning_rate is None
    from gtv.validation.ntk.cli import THEORIES as CLI_THEORIES
    from gtv.validation.ntk.config import THEORIES

    assert CLI_THEORIES == THEORIES


# -- member fields with the early nodes exact ---------------------------------------------------
def test_member_field_with_early_nodes_exact_and_auto(tmp_path):
    """``exact_below`` (fixed or "auto") and ``centre`` reach the member field: its gap masses are
    those of ``FiniteKernelTheoryAt.stratified_field(exact_below=..., centre=...)`` sampled the
    same way; "auto" is the plateau start of the ladder of that field (recomputed by hand for
    each tau), saved, printed and kept across a reload."""
    from gtv.numerics.kernel import FiniteKernelTheoryAt
    from gtv.validation.exact_below import ladder_choice
    from gtv.validation.ntk.compare import _MemberField
    from gtv.validation.theory_densities import gaussian_field_histograms

    kw = dict(widths=(32,), n_models=4, taus=(6.0,), n_samples=50, theory="stratified-field",
              density="mc", sample_kernel=False, n_bins=80)  # fmt: skip
    fixed = compare_ntk(_tiny(exact_below=0.1, centre=False, **kw))
    auto = compare_ntk(_tiny(exact_below="auto", centre=False, **kw))
    th = ntk_theory(FIGURE2_DATA, EPS, "vp-linear", "erf", lr=fixed.learning_rate,
                    flow="gradient-descent", n_t=8, n_hermite=8)  # fmt: skip
    b = FiniteKernelTheoryAt(th, fixed.taus[0], 48)
    edges = np.linspace(-2.0, 2.0, 81)
    src = _MemberField(b, "stratified-field", exact_below=0.1, centre=False)
    _, _, gap = gaussian_field_histograms(src, 4, 50, edges, 0.25, seed=0)
    np.testing.assert_array_equal(fixed.gf_gap[0], gap)
    choice = ladder_choice(
        lambda t_c: _MemberField(b, "stratified-field", exact_below=t_c, centre=False),
        1.0, FIGURE2_DATA, n_members=4, edges=edges, n_samples=50, seed=0,
    )  # fmt: skip
    assert auto.meta["exact_below_choice"][0] == choice.to_dict()
    src = _MemberField(b, "stratified-field", exact_below=choice.t_c, centre=False)
    np.testing.assert_array_equal(
        auto.gf_gap[0], gaussian_field_histograms(src, 4, 50, edges, 0.25, seed=0)[2]
    )
    assert "nodes exact below t_c (auto, plateau start): tau" in auto.format_gap_table()
    assert "not centred" in auto.format_gap_table()
    assert "every node below t = 0.1 exact" in fixed.format_gap_table()
    auto.save(tmp_path / "auto")
    back = NTKComparison.load(tmp_path / "auto.npz")
    assert back.config.exact_below == "auto" and back.meta["exact_below_choice"][0]["t_c"] == (
        choice.t_c
    )
    # the resume file of a run at the defaults is compared without the new fields
    assert "exact_below" not in _tiny().run_settings() and "centre" not in _tiny().run_settings()
    assert _tiny(exact_below=0.1, theory="occupancy-field").run_settings()["exact_below"] == 0.1
    # the field's own Var D^ at the query points: over the same members as its densities (drawn
    # by hand here at the chosen t_c), next to the cavity moments' "theory" column
    members = src.gaussian_field(4, 0)
    for res in (auto, back):
        rows = [r for r in res.denoiser_rows if r["tau"] == res.taus[0]]
        x = np.array([r["x"] for r in rows])
        t = np.array([r["t"] for r in rows])
        for r, xi, ti in zip(rows, x, t, strict=True):
            v = members.denoise(np.array([xi]), ti)[:, 0, 0].var(ddof=1)
            assert r["field_var"] == pytest.approx(v, rel=1e-10)
            assert r["field_ratio"] == pytest.approx(r["var"] / v, rel=1e-10)
        assert "tr/fd" in res.format_table() and "field's own 4 members" in res.format_table()
        # and its relative error, from those rows by hand (the widest network's variances)
        v = np.array([r["var"] for r in rows])
        f = np.array([r["field_var"] for r in rows])
        top = next(
            r for r in res.error_rows if r["tau"] == res.taus[0] and r["width"] == kw["widths"][-1]
        )
        assert top["var_vs_field"] == pytest.approx(
            np.linalg.norm(v - f) / np.linalg.norm(f), rel=1e-10
        )
        noise = np.sqrt((2 * v**2).sum() / 3 + (2 * f**2).sum() / 3) / np.linalg.norm(f)
        assert top["field_noise"] == pytest.approx(noise, rel=1e-10)
        assert top["var_vs_field_lo"] <= top["var_vs_field_hi"]
        assert "Var vs field" in res.format_table() and "Var/fd" in res.format_summary()
    plain = compare_ntk(_tiny(**{**kw, "theory": "finite-p"}))
    assert "field_var" not in plain.denoiser_rows[0]
    assert "var_vs_field" not in plain.error_rows[0] and "Var/fd" not in plain.format_summary()


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"exact_below": 0.1}, "exact_below: only with the member fields"),
        ({"exact_below": "soon", "theory": "stratified-field"}, "exact_below must be 'auto'"),
        ({"exact_below": -1.0, "theory": "stratified-field"}, "exact_below must be 'auto'"),
        ({"centre": False, "theory": "occupancy-field"}, "centre=False"),
        ({"exact_below": "auto", "theory": "stratified-field"}, "edges: the core"),
    ],
)
def test_exact_below_config_bad_input(kw, match):
    with pytest.raises(ValueError, match=match):
        _tiny(**kw)


def test_cli_exact_below_and_centre(tmp_path, capsys):
    args = [*_CLI_TINY, "--widths", "16", "--taus", "4", "--theory", "stratified-field",
            "--exact-below", "0.2", "--no-centre", "--out", str(tmp_path)]  # fmt: skip
    assert main(args) == 0
    back = NTKComparison.load(tmp_path / "ntk_erf_eps0.01_P48.npz")
    assert back.config.exact_below == 0.2 and back.config.centre is False
    assert "every node below t = 0.2 exact" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["validate", "ntk", "--exact-below", "x"])
    _one_line_error(capsys.readouterr().err)


# -- headline numbers (slow) --------------------------------------------------------------------
HEADLINE = dict(
    P=256,
    widths=(256, 1024, 2048),
    n_models=24,
    taus=(3.0, 10.0, 30.0, 100.0, 300.0),
    n_samples=500,
    fp_steps=200,
    seed=0,
    density="mc",  # the numbers of docs/math/kernel.md were made with Monte Carlo samples
)


@pytest.mark.slow
def test_headline_trained_networks_match_the_kernel_prediction():
    """erf, eps = 1e-2, P = 256, N = 24 models per width, widths 256 / 1024 / 2048, tau = 3 ...
    300 (eta = half the stability limit; ~4 minutes on 2 cores). Tolerances are derived, not tuned:

    Finite width (trained vs the infinite-width networks on the same triples):
    * the per-model error falls at every tau, with log-log slope in [-0.7, -0.3]: the tangent
      kernel at initialization is a mean over n random units, so the distance to the
      infinite-width network is O(n^-1/2) (the change of the kernel during training is O(1/n) for
      erf with the antisymmetric initialization); +-0.2 covers the measured spread of the slope
      over tau (-0.41 ... -0.52 with N = 32);
    * at width 2048 the errors of the ensemble mean and variance are below half of what N models
      can resolve at all (the expected sampling error of the mean, ``sqrt(sum_q v_q / N)``, and
      of the variance, ``sqrt(sum_q 2 v_q**2 / (N - 1))``, relative): the finite-width ensemble is
      statistically indistinguishable from the infinite-width one;
    * averaged over tau, the mean and variance errors are larger at width 256 than at 2048.

    First-order theory: at eps = 1e-2 and P = 256 the 1/P theory has its own error (the
    heavy-tailed DSM weight; numerics/kernel/theory.py). It is measured independently on 200
    infinite-width networks (``e200``, noise ``n200``); the trained networks at width 2048 must
    agree with the theory to within ``e200 + 2 n200`` (theory error) ``+ 2 n24`` (sampling, N = 24,
    ~1 % tail for a norm over 18 points) ``+`` their measured finite-width error.

    Learned distributions: the paired (same PF-ODE start points) gap masses of width 2048 and of
    the infinite-width networks differ by less than half the model-level CI half-width; the gap
    mass falls monotonically from tau = 10 to 300 (non-overlapping CIs at the ends) and stays
    above the exact-Bayes PF-ODE value (the learned [q] moves toward memorization but at P = 256
    the variance, which grows with tau, keeps it away). tau = 3 is printed: there the denoiser is
    still shrunk toward 0, which concentrates samples at the middle training point.
    """
    r = compare_ntk(NTKCompareConfig(**HEADLINE))
    print()
    print(r.format_summary())
    print(r.format_gap_table())
    c = r.config
    wmax = c.widths[-1]

    model = np.array([r.errors("model", w) for w in c.widths])  # (W, K)
    assert np.all(np.diff(model, axis=0) < 0), model
    slopes = r.width_slopes()
    assert np.all((slopes > -0.7) & (slopes < -0.3)), slopes

    top = {name: r.errors(name, wmax) for name in (
        "mean_vs_kernel", "var_vs_kernel", "mean_noise", "var_noise", "mean_vs_theory",
        "var_vs_theory")}  # fmt: skip
    assert np.all(top["mean_vs_kernel"] < top["mean_noise"] / 2), top
    assert np.all(top["var_vs_kernel"] < top["var_noise"] / 2), top
    for name in ("mean_vs_kernel", "var_vs_kernel"):
        assert r.errors(name, c.widths[0]).mean() > top[name].mean(), name

    # the theory's own 1/P error, on 200 infinite-width networks (independent seed)
    qx, qt = c.query_points()
    kens = train_kernel_ensemble(
        FIGURE2_DATA, c.P, 200, c.eps, r.taus, activation="erf", lr=r.learning_rate,
        flow="gradient-descent", seed=12345,
    )  # fmt: skip
    big = np.empty((r.taus.size, 200, qx.size))
    for k, tau in enumerate(r.taus):
        for t in np.unique(qt):
            sel = qt == t
            big[k][:, sel] = kens.denoiser(qx[sel], t, tau)[:, :, 0]
    m_th, v_th = r.theory["mean"], r.theory["var"]
    m200, v200 = big.mean(1), big.var(1, ddof=1)
    e200_m = np.linalg.norm(m200 - m_th, axis=1) / np.linalg.norm(m_th, axis=1)
    e200_v = np.linalg.norm(v200 - v_th, axis=1) / np.linalg.norm(v_th, axis=1)
    n200_m = np.sqrt(v200.sum(1) / 200) / np.linalg.norm(m_th, axis=1)
    n200_v = np.sqrt((2 * v200**2).sum(1) / 199) / np.linalg.norm(v_th, axis=1)
    tol_m = e200_m + 2 * n200_m + 2 * top["mean_noise"] + top["mean_vs_kernel"]
    tol_v = e200_v + 2 * n200_v + 2 * top["var_noise"] + top["var_vs_kernel"]
    print("tau:", np.round(r.taus, 2))
    print(
        f"theory error on 200 infinite-width networks: mean {np.round(e200_m, 4)} noise "
        f"{np.round(n200_m, 4)} | Var {np.round(e200_v, 3)} noise {np.round(n200_v, 3)}"
    )
    print(
        f"width {wmax} vs theory: mean {np.round(top['mean_vs_theory'], 4)} tol "
        f"{np.round(tol_m, 4)} | Var {np.round(top['var_vs_theory'], 3)} tol {np.round(tol_v, 3)}"
    )
    assert np.all(top["mean_vs_theory"] <= tol_m)
    assert np.all(top["var_vs_theory"] <= tol_v)

    gaps = np.array([r2[f"width {wmax}"] for r2 in r.gap_rows])  # (K, 3)
    inf = np.array([r2["infinite width"] for r2 in r.gap_rows])
    half = (gaps[:, 2] - gaps[:, 1]) / 2
    assert np.all(np.abs(gaps[:, 0] - inf[:, 0]) < half / 2), (gaps, inf)
    later = gaps[1:]  # tau >= 10
    assert np.all(np.diff(later[:, 0]) < 0), later
    assert later[-1, 2] < later[0, 1], later  # CIs at tau = 10 and 300 do not overlap
    assert later[-1, 1] > r.meta["baseline_gap"]["bayes"]


# -- transported densities (the default) --------------------------------------------------------
def test_tiny_densities_are_transported_and_report_their_error(tiny):
    """The default run transports every ensemble: the error estimates and point counts are
    recorded for each (every width, infinite width, field, exact Bayes), the table says so, no
    Bayes sample count is claimed; the densities are normalized with the outside mass."""
    c = tiny.config
    assert (
        c.density == "transport" and "128-point transported grid (<= 1024)" in tiny.format_table()
    )
    err, pts = tiny.meta["transport_error_tv"], tiny.meta["transport_points"]
    names = {*(f"width {w}" for w in c.widths), "infinite width", "Gaussian field", "bayes"}
    assert set(err) == set(pts) == names
    assert max(err.values()) < 2e-3, err  # grid error far below the Monte Carlo noise of 150
    assert all(c.n_points <= p <= c.max_points for p in pts.values()), pts
    assert min(pts.values()) > c.n_points  # refinement ran
    assert tiny.meta["n_bayes_samples"] is None and tiny.meta["density"] == "transport"
    assert "transported densities: largest per-model error estimate" in tiny.format_table()
    bw = (c.hist_range[1] - c.hist_range[0]) / c.n_bins
    for h, o in ((tiny.histograms, tiny.outside), (tiny.kernel_histograms, tiny.kernel_outside)):
        np.testing.assert_allclose(h.sum(-1) * bw + o, 1.0, atol=1e-12)
        assert np.all(h >= 0) and np.all((o >= 0) & (o <= 1))


def test_results_saved_before_the_density_option_load_as_monte_carlo(tiny, tmp_path, monkeypatch):
    """A result file whose configuration has no ``density`` and no transport fields, as every
    file written before the option, loads as a Monte Carlo result (the transport fields at their
    defaults, unused)."""
    import dataclasses
    import json

    from gtv.validation.results import JsonConfig

    new = ("density", "n_points", "transport_tolerance", "max_points")

    def old_to_dict(self):
        return {k: v for k, v in JsonConfig.to_dict(self).items() if k not in new}

    monkeypatch.setattr(NTKCompareConfig, "to_dict", old_to_dict)
    npz, js = tiny.save(tmp_path / "old")
    monkeypatch.undo()
    assert not set(new) & set(json.loads(js.read_text())["config"])
    back = NTKComparison.load(npz)
    d = NTKCompareConfig()
    assert back.config == dataclasses.replace(
        tiny.config, density="mc", n_points=d.n_points, max_points=d.max_points
    )
    np.testing.assert_array_equal(back.histograms, tiny.histograms)
