"""Moment error and closure error (gtv.validation.linear.diagnostics) and their wiring into
``compare_linear``, ``validity_row`` and ``gtv validate linear``. Small sizes (each test < 5 s)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import scipy.stats as st
from scipy.integrate import quad

from gtv.numerics.features import ProductFeatures
from gtv.numerics.io import load_result, save_result
from gtv.numerics.linear import FirstOrderLinear, linear_model_theory, sample_linear_ensemble
from gtv.numerics.schedules import get_schedule
from gtv.numerics.streams import model_rngs, stream_rng
from gtv.validation.cli import main
from gtv.validation.ensembles import gap_mass, per_model_histograms
from gtv.validation.figures.figure2 import FIGURE2_DATA
from gtv.validation.linear import LinearCompareConfig, LinearComparison, compare_linear
from gtv.validation.linear.diagnostics import (
    QUANTILE_LEVELS,
    distribution_statistics,
    gaussian_statistics,
    gaussian_top_share,
    moment_matched_histograms,
    moment_matched_weights,
    pair_distance_ci,
    top_share,
)
from gtv.validation.linear.validity import format_validity_table, validity_row
from gtv.validation.stats import interval_masses, total_variation

EPS = 1e-2


# -- the moment-matched weights
def test_moment_matched_weights_are_the_documented_combination():
    """Member m = mean + (N-1)^-1/2 sum_n g_mn (W_n - mean), g_m from child m of the
    "moment-field" stream (reimplemented here), and a larger field starts with the same members."""
    W = stream_rng(3, "subsample").normal(size=(12, 1, 7))
    got = moment_matched_weights(W, 5, seed=4)
    mean = W.mean(axis=0)
    for m, rng in enumerate(model_rngs(4, "moment-field", 5)):
        g = rng.standard_normal(12)
        want = mean + np.tensordot(g, W - mean, axes=1) / np.sqrt(11)
        np.testing.assert_allclose(got[m], want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(moment_matched_weights(W, 9, seed=4)[:5], got, rtol=1e-12)
    assert not np.array_equal(moment_matched_weights(W, 5, seed=5), got)


def test_moment_matched_weights_have_the_sample_moments_even_when_rank_deficient():
    """N = 10 < F = 20: the sample covariance has rank 9; the members reproduce mean and
    covariance (statistically, M = 4000) and lie in mean + span of the centred weights."""
    rng = stream_rng(0, "subsample")
    W = rng.normal(size=(10, 1, 20)) * np.linspace(0.2, 2.0, 20)
    Wm = moment_matched_weights(W, 4000, seed=0)
    flat, mflat = W.reshape(10, -1), Wm.reshape(4000, -1)
    S = np.cov(flat, rowvar=False)
    assert np.linalg.matrix_rank(S) == 9
    # exact subspace: the centred members are combinations of the centred trained weights
    centred = flat - flat.mean(0)
    coef, *_ = np.linalg.lstsq(centred.T, (mflat - flat.mean(0)).T, rcond=None)
    np.testing.assert_allclose(centred.T @ coef, (mflat - flat.mean(0)).T, atol=1e-10)
    # statistical: each entry within 5.5 standard errors (Wishart: Var S_ij = (S_ii S_jj +
    # S_ij^2)/M; mean: S_ii/M). Union bound over 230 entries: false-positive rate < 1e-5.
    C = np.cov(mflat, rowvar=False)
    se = np.sqrt((np.outer(np.diag(S), np.diag(S)) + S**2) / 4000)
    assert np.max(np.abs(C - S) / se) < 5.5
    z = (mflat.mean(0) - flat.mean(0)) / np.sqrt(np.diag(S) / 4000)
    assert np.max(np.abs(z)) < 5.5


@pytest.mark.parametrize(
    "W, n, match",
    [(np.zeros((1, 1, 3)), 2, "W"), (np.zeros((4, 3)), 2, "W"), (np.zeros((4, 1, 3)), 0, "n_")],
)
def test_moment_matched_weights_bad_input(W, n, match):
    with pytest.raises(ValueError, match=match):
        moment_matched_weights(W, n)


# -- closure error of an exactly Gaussian ensemble is at the noise floor
def _gaussian_ensemble(seed):
    """400 members with W drawn from the first-order theory's Gaussian N(W_inf, Cov W(P)) at
    P = 16, F = 5 x 4 (drawn by LinearTheory.sample_weights, not by the code under test)."""
    sched = get_schedule("vp-linear")
    feats = ProductFeatures.uniform("gaussian", 1, 5, 4, (EPS, sched.T), (-1.5, 1.5))
    th = linear_model_theory(FIGURE2_DATA, feats, EPS, sched, ridge=0.1)
    return FirstOrderLinear(th, 16).gaussian_field(400, seed).ensemble


@pytest.fixture(scope="module")
def gaussian_ensemble():
    return _gaussian_ensemble(0)


EDGES = np.linspace(-2.0, 2.0, 41)
WIDTH = 0.1


def _summary(ens):
    xs = sample_linear_ensemble(ens, 2000, seed=2)
    h = per_model_histograms(xs, [EDGES])
    return h, 1 - h.sum(1) * WIDTH, gap_mass(xs, FIGURE2_DATA, 0.25)


def _floor(summary, rng, n_splits=10):
    """Half-vs-half TV, averaged over random splits (as compare_linear's floor)."""
    h, o, _ = summary
    out = []
    for _ in range(n_splits):
        perm = rng.permutation(h.shape[0])
        a, b = perm[: h.shape[0] // 2], perm[h.shape[0] // 2 :]
        pa = interval_masses(h[a].mean(0), WIDTH, o[a].mean())
        out.append(float(total_variation(pa, interval_masses(h[b].mean(0), WIDTH, o[b].mean()))))
    return float(np.mean(out))


def test_closure_error_of_a_gaussian_ensemble_is_at_the_floor(gaussian_ensemble):
    """For Gaussian W the moment-matched field has the ensemble's distribution: the distance of the
    mean densities is below the half-vs-half floor. Over seeds 0-7 of _gaussian_ensemble (this
    test's code) the ratio TV / floor was 0.43-0.77 (mean 0.59, sd 0.11), so the threshold 1 is
    > 3.5 sd away (false-positive rate < 0.1 %). Negative control: a field with only the diagonal
    of the covariance (the wrong sampler a missing cross-covariance would give) was 2.8-3.7
    floors away (threshold 2); the covariance scale is checked through Var D^ (a factor 2
    would fail it)."""
    ens = gaussian_ensemble
    trained = _summary(ens)
    rng = stream_rng(0, "bootstrap", 2)
    floor = _floor(trained, rng)
    mm, h, o, g = moment_matched_histograms(ens, 2000, EDGES, 0.25, seed=0)
    row = pair_distance_ci((h, o, g), trained, WIDTH, 200, rng)
    assert row["tv"] < floor
    # gap overshoot: over seeds 0-7 within +-0.08 (sd 0.05); 0.2 is 4 sd (trained linear
    # ensembles at this F/P overshoot by 0.2-0.7, docs/math/predictions.md)
    assert abs(row["gap_ratio"]) < 0.2
    # Var D^ of the field = the ensemble's (relative sd of a variance of 400 Gaussian values:
    # sqrt(2/399) = 7 %; 0.3 is > 4 sd)
    qx = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    for t in (0.02, 0.1, 0.5):
        ratio = mm.denoise(qx[:, None], t)[:, :, 0].var(0) / ens.denoise(qx[:, None], t)[
            :, :, 0
        ].var(0)
        assert np.all(np.abs(ratio - 1) < 0.3), ratio
    mean, sd = ens.W.mean(0), ens.W.std(0, ddof=1)
    diag = dataclasses.replace(ens, W=mean + sd * rng.standard_normal(ens.W.shape))
    wrong = pair_distance_ci(_summary(diag), trained, WIDTH, 50, rng)
    assert wrong["tv"] > 2 * floor


# -- distribution statistics
def test_distribution_statistics_match_scipy_and_numpy():
    v = stream_rng(5, "subsample").gamma(2.0, size=(1000, 3))
    d = distribution_statistics(v, 100, stream_rng(5, "bootstrap", 2))
    np.testing.assert_allclose(d["skew"], st.skew(v, axis=0), rtol=1e-10)
    np.testing.assert_allclose(d["kurt"], st.kurtosis(v, axis=0), rtol=1e-10)
    np.testing.assert_allclose(d["quantiles"], np.quantile(v, QUANTILE_LEVELS, axis=0))
    assert np.all(d["skew_lo"] <= d["skew"]) and np.all(d["skew"] <= d["skew_hi"])
    # gamma(2): skewness sqrt(2) = 1.41, excess kurtosis 3; the CIs lie clearly above 0
    assert np.all(d["skew_lo"] > 0.5) and np.all(d["kurt_lo"] > 0)


def test_student_t_has_positive_excess_kurtosis_and_a_gaussian_none():
    """Student t (10 dof: excess kurtosis 1) with N = 2000: the CI excludes 0. The percentile CI of
    Gaussian samples covers 0: coverage over 200 replicates (N = 300) is within [0.87, 0.99]
    (binomial sd at 0.95 is 0.015; the percentile bootstrap of kurtosis undercovers slightly)."""
    rng = stream_rng(6, "subsample")
    d = distribution_statistics(rng.standard_t(10, (2000, 2)), 400, stream_rng(6, "bootstrap", 2))
    assert np.all(d["kurt_lo"] > 0), d["kurt_lo"]
    g = rng.standard_normal((300, 200))
    dg = distribution_statistics(g, 200, stream_rng(7, "bootstrap", 2))
    cover_k = np.mean((dg["kurt_lo"] <= 0) & (0 <= dg["kurt_hi"]))
    cover_s = np.mean((dg["skew_lo"] <= 0) & (0 <= dg["skew_hi"]))
    assert 0.87 <= cover_k <= 0.99 and 0.87 <= cover_s <= 0.99, (cover_k, cover_s)


def test_top_share():
    v = np.zeros((100, 1))
    v[7] = 10.0  # mean 0.1: squared deviations 9.9**2 once and 0.1**2 99 times
    assert top_share(v, 0.01)[0] == pytest.approx(9.9**2 / (9.9**2 + 99 * 0.01), rel=1e-12)
    assert top_share(v, 0.02)[0] == pytest.approx((9.9**2 + 0.01) / (9.9**2 + 0.99), rel=1e-12)
    # closed form vs quadrature, and a large Gaussian sample
    c = st.norm.ppf(1 - 0.005)
    want = 2 * quad(lambda z: z * z * st.norm.pdf(z), c, np.inf)[0]
    assert gaussian_top_share(0.01) == pytest.approx(want, rel=1e-8)
    z = stream_rng(8, "subsample").standard_normal((200_000, 1))
    assert top_share(z, 0.01)[0] == pytest.approx(gaussian_top_share(0.01), abs=0.004)
    with pytest.raises(ValueError, match="fraction"):
        gaussian_top_share(0.0)


def test_gaussian_statistics():
    g = gaussian_statistics(np.array([0.5, -1.0]), np.array([4.0, 0.25]), 1000)
    np.testing.assert_allclose(
        g["quantiles"][:, 0], st.norm.ppf(QUANTILE_LEVELS, loc=0.5, scale=2.0), rtol=1e-12
    )
    assert np.all(g["skew"] == 0) and np.all(g["kurt"] == 0)
    assert g["top_share"][1] == pytest.approx(gaussian_top_share(0.01))
    with pytest.raises(ValueError, match="var"):
        gaussian_statistics(np.zeros(1), -np.ones(1), 10)


def test_distribution_statistics_bad_input():
    with pytest.raises(ValueError, match="values"):
        distribution_statistics(np.zeros((3, 2)), 20, stream_rng(0, "bootstrap", 2))
    with pytest.raises(ValueError, match="values"):
        distribution_statistics(np.ones((10, 2)), 20, stream_rng(0, "bootstrap", 2))
    with pytest.raises(ValueError, match="n_boot"):
        distribution_statistics(np.eye(10), 2, stream_rng(0, "bootstrap", 2))


# -- compare_linear, save/load, validity, CLI
def _tiny(**kw):
    base = dict(
        eps=EPS, P=64, n_space=5, n_time=4, n_models=40, n_samples=300, n_bins=40, n_boot=40,
        n_splits=3, fp_steps=60, fp_refine=1, n_bayes_samples=2000, query_x=(-1.0, 0.0, 0.5),
        query_t=(0.02, 0.3),
    )  # fmt: skip
    base.update(kw)
    return LinearCompareConfig(**base)


@pytest.fixture(scope="module")
def comparison():
    return compare_linear(_tiny())


def test_compare_rows_and_round_trip(comparison, tmp_path):
    res = comparison
    assert [r["comparison"] for r in res.closure_rows] == ["total", "moment", "closure"]
    rows = {r["comparison"]: r for r in res.closure_rows}
    # the gap masses in the rows are the per-model means of the stored arrays
    assert rows["closure"]["gap_a"] == pytest.approx(res.mm_gap.mean())
    assert rows["closure"]["gap_b"] == pytest.approx(res.gap.mean())
    assert rows["moment"]["gap_a"] == pytest.approx(res.theory.gf_gap.mean())
    tv = total_variation(
        interval_masses(res.mm_histograms.mean(0), 0.1, res.mm_outside.mean()),
        interval_masses(res.histograms.mean(0), 0.1, res.outside.mean()),
    )
    assert rows["closure"]["tv"] == pytest.approx(float(tv))
    assert res.mm_histograms.shape == res.histograms.shape
    assert len(res.distribution_rows) == 6
    for r in res.distribution_rows:
        assert r["skew_lo"] <= r["skew_hi"] and r["kurt_lo"] <= r["kurt_hi"]
        assert len(r["quantiles"]) == len(QUANTILE_LEVELS) == len(r["quantiles_pred"])
        assert r["var"] == pytest.approx(
            next(d["var"] for d in res.denoiser_rows if (d["x"], d["t"]) == (r["x"], r["t"]))
        )
    text = res.format_table()
    assert "closure: MM vs trained" in text and "ex.kurt" in text and "nan" not in text
    npz, js = res.save(tmp_path / "cmp")
    summary = json.loads(js.read_text())
    assert summary["closure_rows"] == res.closure_rows
    back = LinearComparison.load(npz)
    assert back.closure_rows == res.closure_rows
    assert back.distribution_rows == res.distribution_rows
    np.testing.assert_array_equal(back.mm_histograms, res.mm_histograms)
    np.testing.assert_array_equal(back.mm_gap, res.mm_gap)
    assert back.config == res.config and back.format_table() == text
    # an older result (no diagnostics in the file) still loads, without them
    arrays, s = load_result(npz)
    for k in ("closure_rows", "distribution_rows"):
        s.pop(k)
    for k in ("diagnostics", "n_moment_members"):
        s["config"].pop(k)
    old = {k: v for k, v in arrays.items() if not k.startswith("mm_")}
    save_result(tmp_path / "old.npz", old, s)
    (tmp_path / s["theory_file"]).write_bytes((tmp_path / s["theory_file"]).read_bytes())
    prev = LinearComparison.load(tmp_path / "old.npz")
    assert prev.closure_rows == [] and prev.mm_histograms is None
    assert prev.config.diagnostics is False
    assert "closure" not in prev.format_table()
    assert validity_row(prev)["closure_tv"] is None
    assert "n/a" in format_validity_table([validity_row(prev)])


def test_validity_closure_columns(comparison):
    row = validity_row(comparison)
    r = {x["comparison"]: x for x in comparison.closure_rows}["closure"]
    assert row["closure_tv"] == (r["tv"], r["tv_lo"], r["tv_hi"])
    assert row["gap_mm"] == (r["gap_a"], r["gap_a_lo"], r["gap_a_hi"])
    text = format_validity_table([row])
    assert f"{r['tv']:.4f} [{r['tv_lo']:.4f}, {r['tv_hi']:.4f}]" in text and "n/a" not in text


def test_diagnostics_off_and_config_checks():
    off = compare_linear(_tiny(n_models=4, diagnostics=False))
    assert off.closure_rows == [] and off.distribution_rows == [] and off.mm_gap is None
    assert "diagnostics_s" not in off.meta["timings"]
    with pytest.raises(ValueError, match="n_moment_members"):
        _tiny(n_moment_members=2)
    with pytest.raises(TypeError, match="diagnostics"):
        _tiny(diagnostics=1)


def test_n_moment_members(comparison):
    res = compare_linear(_tiny(n_models=6, n_moment_members=10, query_t=(0.3,)))
    assert res.mm_histograms.shape[0] == 10 and res.histograms.shape[0] == 6


CLI = ["validate", "linear", "--models", "6", "--points", "256", "--P", "64", "--n-space", "5",
       "--n-time", "4", "--bins", "40", "--boot", "20", "--query-x", "-0.4", "0.7",
       "--query-t", "0.05", "--formats", "png", "--no-progress"]  # fmt: skip


@pytest.mark.parametrize("flag", [[], ["--diagnostics"], ["--no-diagnostics"]])
def test_cli_diagnostics_flag(flag, tmp_path, capsys):
    assert main([*CLI, "--out", str(tmp_path), *flag]) == 0
    out = capsys.readouterr().out
    on = flag != ["--no-diagnostics"]
    assert ("moment error and closure error" in out) == on
    assert ("closure: MM vs trained" in out) == on
    assert "closure: TV(trained, MM GF)" in out  # the validity table's column
    s = json.loads((tmp_path / "linear_eps0.01_P64.json").read_text())
    assert (len(s["closure_rows"]) == 3) == on and (len(s["distribution_rows"]) == 2) == on
    assert s["config"]["diagnostics"] is on


def test_cli_help_names_the_default(capsys):
    with pytest.raises(SystemExit):
        main(["validate", "linear", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--diagnostics, --no-diagnostics" in text
    i = text.index("--diagnostics, --no-diagnostics")
    assert "(default: True)" in text[i : i + 700]
