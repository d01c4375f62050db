"""Figure 3: four points on a circle, Gaussian vs Fourier features, rotations 0, pi/8, pi/4."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import gtv.validation.figures.figure3 as fig3
from gtv.validation.ensembles import EnsembleResult, per_model_histograms
from gtv.validation.figures import (
    Figure3Config,
    Figure3Result,
    SegmentDiagonalMass,
    compute_figure3,
    paper_normalized_density,
    segment_vs_diagonal_mass,
    square_data,
)

SQUARE = square_data(math.pi / 4)  # corners (+-1/sqrt2, +-1/sqrt2): axis-aligned sides
A = 1 / math.sqrt(2)


# -- data and configuration -----------------------------------------------------------------------
@pytest.mark.parametrize("rot", [0.0, math.pi / 8, math.pi / 4])
def test_square_data_points_on_unit_circle_at_rot_plus_k_half_pi(rot):
    d = square_data(rot)
    assert d.shape == (4, 2)
    np.testing.assert_allclose(np.hypot(d[:, 0], d[:, 1]), 1.0, atol=1e-15)
    ang = np.mod(np.arctan2(d[:, 1], d[:, 0]) - rot, 2 * np.pi)
    np.testing.assert_allclose(np.sort(ang), np.arange(4) * np.pi / 2, atol=1e-12)


def test_square_data_at_pi_over_4_is_the_axis_aligned_square():
    np.testing.assert_allclose(np.sort(np.abs(SQUARE), axis=0), np.full((4, 2), A), atol=1e-15)


def test_square_data_rejects_non_finite_rotation():
    with pytest.raises(ValueError, match="rotation"):
        square_data(float("nan"))


def test_config_defaults_are_the_papers_and_fast_is_small():
    cfg = Figure3Config()
    assert cfg.rotations == (0.0, math.pi / 8, math.pi / 4)
    assert cfg.kinds == ("gaussian", "fourier")
    assert (cfg.n_space, cfg.n_time, cfg.n_features) == (10, 10, 1000)
    assert (cfg.P, cfg.eps, cfg.ridge, cfg.schedule) == (500, 0.01, 0.1, "vp-linear")
    assert (cfg.n_models, cfg.n_samples, cfg.n_steps, cfg.lookup) == (100, 100_000, 30, "exact")
    # the start points: scrambled Sobol' by default (docs/math/transport.md), the paper's random
    # ones with density="mc"
    assert (cfg.density, cfg.n_points, cfg.n_start_points) == ("transport", 65_536, 65_536)
    assert Figure3Config(density="mc").n_start_points == 100_000
    fast = Figure3Config.fast()
    assert (fast.n_models, fast.n_samples, fast.n_points) == (20, 5000, 4096)
    assert Figure3Config.fast(seed=3).seed == 3


def test_config_roundtrips_through_json_dict():
    import json

    cfg = Figure3Config.fast(rotations=(0.0, math.pi / 4), kinds=("fourier",))
    back = Figure3Config.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert back == cfg


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"kinds": ("gaussian", "wavelet")}, "kinds"),
        ({"kinds": ()}, "kinds"),
        ({"rotations": ()}, "rotations"),
        ({"rotations": (float("inf"),)}, "rotations"),
        ({"n_models": 1}, "n_models"),
        ({"P": 0}, "P"),
        ({"n_bins": 2.5}, "n_bins"),
        ({"x_range": (1.5, -1.5)}, "x_range"),
        ({"delta": 0.0}, "delta"),
        ({"point_radius": -0.1}, "point_radius"),
        ({"method": "rk4"}, "method"),
        ({"lookup": "nearest"}, "lookup"),
        ({"ridge": -1.0}, "ridge"),
        ({"eps": 0.0}, "eps"),
        ({"eps": 1.0}, "eps"),
        ({"schedule": "cosine"}, "schedule"),
        ({"density": "qmc"}, "density"),
        ({"n_points": 1000}, "n_points"),
        ({"n_points": 1}, "n_points"),
        ({"n_points": 2.0**12}, "n_points"),
    ],
)
def test_config_rejects_bad_values_naming_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        Figure3Config(**kwargs)


# -- side band vs diagonal band -------------------------------------------------------------------
def _as_models(points):
    return np.asarray(points, dtype=float)[None, :, :]


def test_bands_classify_known_points():
    side_mid = [(0.0, A), (A, 0.0), (0.0, -A), (-A, 0.0)]  # midpoints of the four sides
    on_diag = [(0.3, 0.3), (-0.3, 0.3), (0.0, 0.0), (-0.4, -0.4)]  # on y = +-x, away from points
    r = segment_vs_diagonal_mass(_as_models(side_mid), SQUARE, delta=0.1, radius=0.2)
    assert (r.segment_mass[0], r.diagonal_mass[0]) == (1.0, 0.0)
    r = segment_vs_diagonal_mass(_as_models(on_diag), SQUARE, delta=0.1, radius=0.2)
    assert (r.segment_mass[0], r.diagonal_mass[0]) == (0.0, 1.0)
    # At the training points (excluded discs) and far away: in neither band.
    r = segment_vs_diagonal_mass(
        _as_models(np.vstack([SQUARE, [[1.4, 0.0], [0.0, 1.45]]])), SQUARE, delta=0.1, radius=0.2
    )
    assert (r.segment_mass[0], r.diagonal_mass[0]) == (0.0, 0.0)


def test_bands_do_not_depend_on_point_order_and_rotate_with_the_data():
    rng = np.random.default_rng(1)
    x = rng.uniform(-1.2, 1.2, (2, 4000, 2))
    a = segment_vs_diagonal_mass(x, SQUARE)
    b = segment_vs_diagonal_mass(x, SQUARE[[2, 0, 3, 1]])
    np.testing.assert_array_equal(a.segment_mass, b.segment_mass)
    # Rotating samples and data together changes nothing; the band areas are computed in a
    # canonical pose, so all rotations of the square share them.
    c, s = math.cos(0.7), math.sin(0.7)
    rot = np.array([[c, -s], [s, c]])
    r = segment_vs_diagonal_mass(x @ rot.T, SQUARE @ rot.T)
    np.testing.assert_allclose(r.segment_mass, a.segment_mass, atol=1e-3)
    assert (r.segment_area, r.diagonal_area) == (a.segment_area, a.diagonal_area)


def test_band_areas_are_fair_uniform_density_gives_equal_densities():
    """Under a uniform distribution both bands have density 1/|box|: the comparison is fair."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1.5, 1.5, (4, 250_000, 2))
    r = segment_vs_diagonal_mass(x, SQUARE, delta=0.1, radius=0.2)
    np.testing.assert_allclose(r.segment_density, 1 / 9, rtol=0.03)
    np.testing.assert_allclose(r.diagonal_density, 1 / 9, rtol=0.03)
    # Thin-band limit: the side band is ~ 4 sides x 2 delta x (sqrt2 - excluded ends).
    assert 0.6 < r.segment_area < 4 * 2 * 0.1 * math.sqrt(2)
    assert 0.4 < r.diagonal_area < 2 * 2 * 0.1 * 2


def test_bands_from_histograms_agree_with_samples():
    rng = np.random.default_rng(2)
    n_models, n = 3, 40_000
    # Mass spread along the sides (Gaussian-like picture) plus a diffuse part.
    s = rng.uniform(-A, A, (n_models, n))
    which = rng.integers(0, 4, (n_models, n))
    pts = np.where(
        (which % 2 == 0)[..., None],
        np.stack([s, np.full_like(s, A)], -1),
        np.stack([np.full_like(s, A), s], -1),
    )
    pts *= np.where(which >= 2, -1.0, 1.0)[..., None]
    pts += 0.05 * rng.standard_normal(pts.shape)
    pts[:, : n // 4] = rng.uniform(-1.5, 1.5, (n_models, n // 4, 2))
    edges = np.linspace(-1.5, 1.5, 121)
    er = EnsembleResult(
        per_model_histograms(pts, [edges, edges]), [edges, edges], np.zeros(n_models), 0.2
    )
    exact = segment_vs_diagonal_mass(pts, SQUARE)
    binned = segment_vs_diagonal_mass(er, SQUARE)
    assert binned.source == "histogram" and exact.source == "samples"
    np.testing.assert_allclose(binned.segment_density, exact.segment_density, rtol=0.08)
    np.testing.assert_allclose(binned.diagonal_density, exact.diagonal_density, rtol=0.15)
    assert np.all(exact.difference > 0.3)


def test_segment_vs_diagonal_ci_and_difference():
    r = SegmentDiagonalMass(
        np.array([0.2, 0.3, 0.25]), np.array([0.1, 0.1, 0.1]), 2.0, 1.0, 0.1, 0.2
    )
    np.testing.assert_allclose(r.difference, [0.0, 0.05, 0.025])
    ci = r.ci()
    assert set(ci) == {"segment_density", "diagonal_density", "difference"}
    est, lo, hi = ci["difference"]
    assert lo <= est <= hi and est == pytest.approx(0.025)


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        ((np.zeros((2, 5, 3)), SQUARE), {}, "samples"),
        ((np.zeros((5, 2)), SQUARE), {}, "samples"),
        ((np.full((1, 5, 2), np.nan), SQUARE), {}, "samples"),
        ((np.zeros((1, 5, 2)), SQUARE[:3]), {}, "data"),
        ((np.zeros((1, 5, 2)), SQUARE), {"delta": 0.0}, "delta"),
        ((np.zeros((1, 5, 2)), SQUARE), {"radius": -1.0}, "radius"),
    ],
)
def test_segment_vs_diagonal_rejects_bad_input(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        segment_vs_diagonal_mass(*args, **kwargs)


def test_paper_normalization_is_per_model_column_conditional():
    h = np.zeros((2, 3, 4))
    h[0, 0] = [1, 1, 2, 0]  # column x0 of model 0
    h[0, 2] = [0, 0, 0, 8]
    h[1, 0] = [0, 0, 0, 5]
    h[1, 1] = [3, 1, 0, 0]  # model 1 has mass in column x1, model 0 has none
    out = paper_normalized_density(h)
    np.testing.assert_allclose(out[0], [0.125, 0.125, 0.25, 0.5])
    np.testing.assert_allclose(out[1], [0.375, 0.125, 0, 0])  # empty column counts as zero
    np.testing.assert_allclose(out[2], [0, 0, 0, 0.5])
    # Columns with mass in every model sum to one, whatever their joint mass.
    assert out[0].sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="histograms"):
        paper_normalized_density(np.zeros((3, 4)))


# -- computation, persistence, plotting -----------------------------------------------------------
SMALL = Figure3Config(
    rotations=(0.0, math.pi / 4),
    n_space=5,
    n_time=4,
    P=200,
    n_models=3,
    n_samples=400,
    n_points=512,
    n_bins=30,
    n_bayes_samples=2000,
    seed=5,
)


@pytest.fixture(scope="module")
def small_result():
    return compute_figure3(SMALL, progress=False)


def test_compute_small_shapes_and_coordinates(small_result):
    res = small_result
    assert len(res.ensembles) == 2 and all(len(row) == 2 for row in res.ensembles)
    er = res.ensembles[1][0]
    assert er.histograms.shape == (3, 30, 30)
    np.testing.assert_allclose(res.edges, np.linspace(-1.5, 1.5, 31))
    assert res.regions[0][1].segment_mass.shape == (3,)
    assert res.bayes_histograms.shape == (2, 30, 30)
    # Densities integrate to at most one (mass outside the box is lost).
    cell = (3 / 30) ** 2
    total = er.histograms.sum(axis=(1, 2)) * cell
    assert np.all(total <= 1 + 1e-12) and np.all(total > 0.5)
    assert res.image(0, 0).shape == (30, 30)
    np.testing.assert_array_equal(res.image(0, 0), res.mean_density(0, 0).T)


def test_bayes_baseline_is_summarized_from_its_own_samples(small_result):
    """The exact-denoiser baseline: one 'model' per rotation, consistent with its histogram."""
    cell = (3 / 30) ** 2
    for j, b in enumerate(small_result.bayes_regions):
        assert b.n_models == 1
        assert 0.9 < small_result.bayes_histograms[j].sum() * cell <= 1 + 1e-12
        assert b.segment_mass[0] < 0.2 and b.diagonal_mass[0] < 0.05


def test_paper_sampler_alone_puts_mass_on_the_sides():
    """A caveat for the acceptance test below, measured here so that it stays visible.

    With the exact (memorizing) Bayes denoiser at eps = 0.01, the paper's sampler (Euler, 30
    uniform steps) leaves ~5 % of the samples in the side band (trajectories stalled between two
    neighbouring points) and far fewer on the diagonals, while Heun with the same 30 steps puts
    almost nothing in either band, as p(x|eps) does (P(|x - mu| > 0.2) ~ 0.7 %). So part of
    any side-band excess seen with Euler-30 is discretization error, not generalization.
    """
    from gtv.numerics.exact import sample_exact_denoiser

    def bands(method):
        x = sample_exact_denoiser(SQUARE, 20_000, 0.01, "vp-linear", method=method, seed=4)
        r = segment_vs_diagonal_mass(x[None], SQUARE)
        return r.segment_mass[0], r.diagonal_mass[0]

    seg, diag = bands("euler")
    assert seg > 0.03 and seg > 4 * diag
    seg, diag = bands("heun")
    assert seg < 0.005 and diag < 0.005


def test_compute_is_reproducible(small_result):
    again = compute_figure3(SMALL, progress=False)
    for i in range(2):
        for j in range(2):
            np.testing.assert_array_equal(
                again.ensembles[i][j].histograms, small_result.ensembles[i][j].histograms
            )
            np.testing.assert_array_equal(
                again.regions[i][j].segment_mass, small_result.regions[i][j].segment_mass
            )


def test_save_load_roundtrip_without_recomputation(small_result, tmp_path, monkeypatch):
    path = small_result.save(tmp_path / "fig3")
    assert path.suffix == ".npz"

    def boom(*a, **k):
        raise AssertionError("loading must not recompute")

    monkeypatch.setattr(fig3, "sample_linear_panel", boom)
    back = Figure3Result.load(path)
    assert back.config == small_result.config
    for i in range(2):
        for j in range(2):
            np.testing.assert_array_equal(
                back.ensembles[i][j].histograms, small_result.ensembles[i][j].histograms
            )
            np.testing.assert_array_equal(
                back.ensembles[i][j].gap, small_result.ensembles[i][j].gap
            )
            a, b = back.regions[i][j], small_result.regions[i][j]
            np.testing.assert_array_equal(a.difference, b.difference)
    np.testing.assert_array_equal(back.bayes_histograms, small_result.bayes_histograms)
    assert back.segment_table() == small_result.segment_table()
    assert "side-diag" in back.format_table()


def test_monte_carlo_result_saves_and_loads_and_old_results_load_as_monte_carlo(tmp_path):
    """``density="mc"`` round-trips; a file saved before the option existed (no ``density`` or
    ``n_points`` in its configuration) loads as the Monte Carlo result it is."""
    from gtv.validation.results import load_result_of_kind, save_result

    cfg = dataclasses.replace(SMALL, rotations=(0.0,), kinds=("fourier",), density="mc")
    res = compute_figure3(cfg, progress=False)
    back = Figure3Result.load(res.save(tmp_path / "mc"))
    assert back.config == cfg and back.config.density == "mc"
    assert "400 random start points per model" in back.format_table()
    arrays, header = load_result_of_kind(tmp_path / "mc.npz", "figure3_result", "Figure 3")
    del header["config"]["density"], header["config"]["n_points"]
    old = Figure3Result.load(save_result(tmp_path / "old", arrays, header, kind="figure3_result"))
    assert old.config.density == "mc" and old.config.run_settings() == cfg.run_settings()
    np.testing.assert_array_equal(old.ensembles[0][0].histograms, res.ensembles[0][0].histograms)
    assert old.segment_table() == res.segment_table()


def test_transport_result_records_its_start_points(small_result, tmp_path):
    assert small_result.config.density == "transport"
    back = Figure3Result.load(small_result.save(tmp_path / "qmc"))
    assert (back.config.density, back.config.n_points) == ("transport", 512)
    assert "512 scrambled-Sobol' start points per model" in back.format_table()


def test_load_rejects_other_result_files(tmp_path):
    from gtv.validation.results import save_result

    p = save_result(tmp_path / "other", {"x": np.zeros(2)}, {"figure": 2}, kind="figure2_result")
    with pytest.raises(ValueError, match="Figure 3"):
        Figure3Result.load(p)


def test_cache_dir_resumes_and_is_keyed_by_config(small_result, tmp_path, monkeypatch):
    cfg = Figure3Config(
        rotations=(math.pi / 4,),
        kinds=("fourier",),
        n_space=5,
        n_time=4,
        P=200,
        n_models=2,
        n_samples=300,
        n_points=256,
        n_bins=20,
        n_bayes_samples=500,
        seed=1,
    )
    first = compute_figure3(cfg, progress=False, cache_dir=tmp_path)
    assert (tmp_path / "figure3_panel_0_0.npz").exists()

    def boom(*a, **k):
        raise AssertionError("cached panel was recomputed")

    monkeypatch.setattr(fig3, "sample_linear_panel", boom)
    second = compute_figure3(cfg, progress=False, cache_dir=tmp_path)
    np.testing.assert_array_equal(
        first.ensembles[0][0].histograms, second.ensembles[0][0].histograms
    )
    np.testing.assert_array_equal(
        first.regions[0][0].segment_mass, second.regions[0][0].segment_mass
    )
    # A different configuration does not reuse the cached panel.
    with pytest.raises(AssertionError, match="recomputed"):
        compute_figure3(
            Figure3Config.from_dict({**cfg.to_dict(), "ridge": 0.2}),
            progress=False,
            cache_dir=tmp_path,
        )


def test_damaged_panel_cache_is_reported_and_recomputed(tmp_path):
    """Audit (issue 14): a truncated or bit-flipped panel cache crashed with BadZipFile, and an
    altered array inside a valid npz would have been used. Each is now one CacheEntryWarning
    naming the file, the panel is recomputed (bit-identical to the first run) and rewritten."""
    import json as _json

    from gtv.validation.results import CacheEntryWarning

    cfg = Figure3Config(
        rotations=(0.0,), kinds=("fourier",), n_space=4, n_time=3, P=100, n_models=2,
        n_points=256, n_bins=10, n_bayes_samples=200, seed=2,
    )  # fmt: skip
    first = compute_figure3(cfg, progress=False, cache_dir=tmp_path)
    path = tmp_path / "figure3_panel_0_0.npz"
    good = path.read_bytes()
    with np.load(path, allow_pickle=False) as f:
        entries = {k: f[k] for k in f.files}
    entries["gap"] = entries["gap"] * 1.5

    def scaled(p):
        with open(p, "wb") as fh:
            np.savez(fh, **entries)

    def legacy(p):
        with open(p, "wb") as fh:
            np.savez(fh, **{k: v for k, v in entries.items() if k != "__gtv__"})

    damages = {
        "truncated": lambda p: p.write_bytes(good[: len(good) // 2]),
        "flipped": lambda p: p.write_bytes(good[:200] + bytes([good[200] ^ 0xFF]) + good[201:]),
        "scaled": scaled,
        "legacy": legacy,
    }
    for damage in damages.values():
        path.write_bytes(good)
        damage(path)
        with pytest.warns(CacheEntryWarning, match="figure3_panel_0_0.npz") as rec:
            again = compute_figure3(cfg, progress=False, cache_dir=tmp_path)
        assert len([w for w in rec if w.category is CacheEntryWarning]) == 1
        np.testing.assert_array_equal(again.ensembles[0][0].gap, first.ensembles[0][0].gap)
        np.testing.assert_array_equal(
            again.ensembles[0][0].histograms, first.ensembles[0][0].histograms
        )
        with np.load(path, allow_pickle=False) as f:  # the entry was rewritten, verified
            assert _json.loads(str(f["__gtv__"]))["kind"] == "figure3_panel"
            np.testing.assert_array_equal(f["gap"], first.ensembles[0][0].gap)


@pytest.mark.parametrize("paper", [False, True])
def test_plot_writes_files(small_result, tmp_path, paper):
    paths = small_result.plot(tmp_path, formats=("png", "pdf"), paper_normalization=paper)
    stem = "figure3_paper" if paper else "figure3"
    assert [p.name for p in paths] == [f"{stem}.png", f"{stem}.pdf"]
    assert all(p.stat().st_size > 1000 for p in paths)
    with pytest.raises(ValueError, match="scale"):
        small_result.plot(tmp_path, formats=("png",), scale="sqrt")


# -- the physics (the acceptance test) ----------------------------------------------------
def _difference_ci(kind: str, n_models: int, n_samples: int, seed: int):
    cfg = Figure3Config(
        rotations=(math.pi / 4,),
        kinds=(kind,),
        n_models=n_models,
        n_samples=n_samples,
        density="mc",  # the numbers in the docstrings below are Monte Carlo ones
        n_bins=60,
        n_bayes_samples=1000,
        seed=seed,
    )
    res = compute_figure3(cfg, progress=False)
    return res.regions[0][0].ci()["difference"], res


@pytest.mark.slow
def test_gaussian_fills_the_sides_fourier_fills_the_diagonals_at_pi_over_4():
    """Paper Fig. 3, rotation pi/4 (a square with axis-aligned sides), F = 10x10x10, P = 500,
    the paper's sampler (Euler, 30 steps).

    Per model: density within 0.1 of the square's sides vs within 0.1 of its diagonals (both
    outside discs of radius 0.2 around the points). Gaussian features: sides > diagonals;
    Fourier features: diagonals > sides; 95 % model-level bootstrap CIs exclude zero.

    Sizes are reduced from the paper's 100 models x 1e5 samples to keep the default run short
    (sampling noise per model is far below the model-to-model spread, so 2000-3000 samples
    suffice). The Gaussian effect is small, about +0.04 +- 0.10 (model sd) in density, so it
    needs ~80 models for the CI to exclude zero reliably (~95 % of seeds); the Fourier effect,
    about -0.25 +- 0.16, needs only 16. Caveat (see test_paper_sampler_alone_puts_mass_on_the_sides
    and the slow test below): the Gaussian side excess comes from the Euler-30 discretization;
    with an accurate integrator it is not significant.
    """
    (est, lo, hi), _ = _difference_ci("gaussian", 80, 2000, seed=1)
    print(f"gaussian side-diag density: {est:+.4f} [{lo:+.4f}, {hi:+.4f}] (paper: +)")
    assert lo > 0, (est, lo, hi)
    (est, lo, hi), _ = _difference_ci("fourier", 16, 3000, seed=2)
    print(f"fourier  side-diag density: {est:+.4f} [{lo:+.4f}, {hi:+.4f}] (paper: -)")
    assert hi < 0, (est, lo, hi)


@pytest.mark.slow
def test_fourier_cross_survives_an_accurate_integrator():
    """Same models, same initial points, Euler-30 (paper) vs Heun-300 (converged ODE solution).

    The Fourier diagonal excess is a property of the learned ensemble: it stays (and grows) when
    the ODE is solved accurately. For Gaussian features the side excess of Euler-30 mostly
    disappears (printed, not asserted: measured +0.008 [-0.021, +0.034] with Heun-300 vs +0.053
    [+0.033, +0.072] with Euler-30 on 100 models; the paired drop, ~+0.03 +- 0.14 per model,
    would need ~300 models to resolve reliably).
    """
    from gtv.numerics.features import ProductFeatures
    from gtv.numerics.linear import sample_linear_ensemble, train_linear_ensemble
    from gtv.validation.stats import bootstrap_ci

    out = {}
    for kind, n_models in (("gaussian", 60), ("fourier", 20)):
        feats = ProductFeatures.uniform(kind, 2, 10, 10, (0.01, 1.0), (-1.5, 1.5))
        ens = train_linear_ensemble(
            SQUARE,
            feats,
            n_models,
            500,
            0.01,
            "vp-linear",
            ridge=0.1,
            seed=31,
            keep_normal_equations=False,
        )
        diffs = {}
        for method, steps in (("euler", 30), ("heun", 300)):
            x = sample_linear_ensemble(ens, 3000, method=method, n_steps=steps, seed=31)
            diffs[method] = segment_vs_diagonal_mass(x, SQUARE).difference
            print(f"{kind} {method}-{steps}: side-diag {bootstrap_ci(diffs[method])}")
        print(f"{kind} paired euler30 - heun300: {bootstrap_ci(diffs['euler'] - diffs['heun'])}")
        out[kind] = diffs
    assert bootstrap_ci(out["fourier"]["heun"])[2] < 0


@pytest.fixture(scope="module")
def paper_size_pi_over_4():
    # density="mc": the paper's 1e5 random start points, as measured in the docstrings below
    cfg = Figure3Config(rotations=(math.pi / 4,), n_bayes_samples=20_000, density="mc", seed=21)
    res = compute_figure3(cfg, progress=False)
    print(res.format_table())
    return res.regions[0][0].ci()["difference"], res.regions[1][0].ci()["difference"]


@pytest.mark.slow
def test_figure3_paper_size_fourier_sign_at_pi_over_4(paper_size_pi_over_4):
    """The acceptance check at the paper's size (100 models x 1e5 samples per kind): the Fourier
    features put less mass on the square's sides than on its diagonals (measured with seed 21:
    -0.287 [-0.318, -0.259])."""
    _, f = paper_size_pi_over_4
    assert f[2] < 0, f


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="the Gaussian side excess is not significant at seed 21")
def test_figure3_paper_size_gaussian_sign_at_pi_over_4(paper_size_pi_over_4):
    """The paper's Gaussian-feature sign (more mass on the sides) at the paper's size.

    Measured with seed 21 (the same at commit 0265025, before this test was split):
    +0.018 [-0.001, +0.038], smaller than the exact Bayes denoiser's own +0.055 under the same
    Euler-30 sampler -- the side excess is the sampler's, not the features' (README, "A finding
    worth knowing"). Kept as a strict xfail so that a change of this number is seen."""
    g, _ = paper_size_pi_over_4
    assert g[1] > 0, g


# -- scrambled-Sobol' start points against Monte Carlo --------------------------------------------
def test_qmc_agrees_with_monte_carlo_model_by_model():
    """The default start points (scrambled Sobol', ``density="transport"``) against the paper's
    random ones on the same trained models (training does not depend on the start points).

    Per model, a Monte Carlo mass q_mc (side band, diagonal band, gap) is Binomial(S, q)/S
    around the model's true q; the Sobol' estimate q_qmc from n = 16 S points is unbiased with
    variance at most e q(1 - q)/n (Owen's bound for scrambled (0, m, 2)-nets in base 2, which
    holds for scipy's linear matrix scramble with digital shift too). So
    z = (q_mc - q_qmc) / sqrt(q_qmc (1 - q_qmc) (1/S + e/n)) has variance <= 1 under
    agreement; |z| < 4.5 for all (at most 48) masses with S q (1 - q) >= 10 fails for a correct
    implementation with probability < 48 x 6.8e-6 = 3.3e-4 (normal approximation).
    Per model the n_bins^2 histogram is checked the same way: Pearson's statistic of the Monte
    Carlo counts against the Sobol' bin masses (bins with expected count >= 5; the rest pooled),
    divided by the variance inflation 1 + e S/n, stays below the chi-square quantile
    1 - 1e-5 (16 models: false-alarm probability < 1.6e-4). And every Sobol' estimate of the
    segment table lies inside the Monte Carlo 95 % CI of the same row.
    """
    from scipy import stats

    S, n = 2048, 32_768
    common = dict(
        rotations=(math.pi / 4,), n_space=5, n_time=4, P=200, n_models=8, n_bins=10,
        n_bayes_samples=200, seed=11,
    )  # fmt: skip
    mc = compute_figure3(Figure3Config(density="mc", n_samples=S, **common), progress=False)
    qmc = compute_figure3(Figure3Config(n_points=n, **common), progress=False)
    inflation = 1.0 + math.e * S / n
    zs, tested = [], 0
    for i in range(2):
        pairs = [
            (mc.regions[i][0].segment_mass, qmc.regions[i][0].segment_mass),
            (mc.regions[i][0].diagonal_mass, qmc.regions[i][0].diagonal_mass),
            (mc.ensembles[i][0].gap, qmc.ensembles[i][0].gap),
        ]
        for q_mc, q_qmc in pairs:
            var = q_qmc * (1 - q_qmc)
            ok = S * var >= 10
            tested += int(ok.sum())
            zs.append((q_mc - q_qmc)[ok] / np.sqrt(var[ok] * (1 / S + math.e / n)))
        cell = (3 / 10) ** 2
        hists = zip(mc.ensembles[i][0].histograms, qmc.ensembles[i][0].histograms, strict=True)
        for h_mc, h_qmc in hists:
            p = np.append(h_qmc.ravel() * cell, 0.0)
            c = np.append(np.rint(h_mc.ravel() * cell * S), 0.0)
            p[-1], c[-1] = max(1 - p[:-1].sum(), 0.0), S - c[:-1].sum()  # outside the box
            big = p * S >= 5
            e_, c_ = np.append(p[big] * S, p[~big].sum() * S), np.append(c[big], c[~big].sum())
            if e_[-1] < 5:  # too little pooled mass for its own cell: leave it out
                e_, c_ = e_[:-1], c_[:-1]
            chi2 = np.sum((c_ - e_) ** 2 / e_) / inflation
            assert chi2 < stats.chi2.ppf(1 - 1e-5, e_.size - 1), (i, chi2, e_.size)
        ci_mc = mc.segment_table()[i]
        est_qmc = qmc.segment_table()[i]
        for key in ("segment_density", "diagonal_density", "difference"):
            assert ci_mc[key][1] <= est_qmc[key][0] <= ci_mc[key][2], (i, key)
    zs = np.concatenate(zs)
    print(f"{tested} masses tested, max |z| = {np.abs(zs).max():.2f}")
    assert tested >= 32
    assert np.abs(zs).max() < 4.5


def test_bayes_baseline_follows_the_density(small_result):
    """Wiring: with ``density="transport"`` the baseline of rotation ``j`` is the exact-denoiser
    PF-ODE from the scrambled-Sobol' set scrambled by ``stream(stream(seed, "panel", j),
    "bayes-qmc")``, ``n_bayes_samples`` = 2000 rounded up to 2048 points; with ``"mc"`` it keeps
    its 2000 random points."""
    from gtv.numerics.exact import sample_exact_denoiser
    from gtv.numerics.schedules import get_schedule
    from gtv.numerics.streams import stream
    from gtv.numerics.transport import qmc_start_points

    cfg = small_result.config
    assert cfg.n_bayes_start_points == 2048 and small_result.meta["bayes_start_points"] == 2048
    assert dataclasses.replace(cfg, density="mc").n_bayes_start_points == 2000
    sched = get_schedule(cfg.schedule)
    sigma_T = math.sqrt(float(sched.sigma2(sched.T)))
    edges = small_result.edges
    for j, rot in enumerate(cfg.rotations):
        x_T = qmc_start_points(1, 2048, 2, sigma_T, stream(cfg.seed, "panel", j), "bayes-qmc")[0]
        xb = sample_exact_denoiser(square_data(rot), 2048, cfg.eps, sched, x_T=x_T)
        counts, _, _ = np.histogram2d(xb[:, 0], xb[:, 1], bins=[edges, edges])
        dens = counts / (2048 * np.diff(edges)[:, None] * np.diff(edges)[None, :])
        np.testing.assert_array_equal(small_result.bayes_histograms[j], dens)


def test_bayes_baseline_qmc_agrees_with_monte_carlo():
    """The baseline's scrambled-Sobol' estimate (n points) against its Monte Carlo one (S random
    points), as in :func:`test_qmc_agrees_with_monte_carlo_model_by_model`: Pearson's statistic
    of the Monte Carlo counts against the Sobol' bin masses over the variance inflation
    1 + e S/n below the chi-square quantile 1 - 1e-5, and |z| < 4.5 for the side- and
    diagonal-band masses, per rotation (two rotations: false-alarm probability < 2e-5 + 4 x
    6.8e-6 = 4.7e-5). Negative control: the Monte Carlo baseline of one rotation against the
    Sobol' baseline of the other fails."""
    from scipy import stats

    S, n = 4096, 32_768
    common = dict(
        rotations=(0.0, math.pi / 8), kinds=("fourier",), n_space=3, n_time=3, P=50, n_models=2,
        n_bins=10, seed=13,
    )  # fmt: skip
    mc = compute_figure3(
        Figure3Config(density="mc", n_samples=64, n_bayes_samples=S, **common), progress=False
    )
    qmc = compute_figure3(Figure3Config(n_points=64, n_bayes_samples=n, **common), progress=False)
    assert qmc.meta["bayes_start_points"] == n and mc.meta["bayes_start_points"] == S
    inflation = 1.0 + math.e * S / n
    cell = (3 / 10) ** 2

    def chi2_ratio(h_mc, h_qmc):
        p = np.append(h_qmc.ravel() * cell, 0.0)
        c = np.append(np.rint(h_mc.ravel() * cell * S), 0.0)
        p[-1], c[-1] = max(1 - p[:-1].sum(), 0.0), S - c[:-1].sum()  # outside the box
        big = p * S >= 5
        e_, c_ = np.append(p[big] * S, p[~big].sum() * S), np.append(c[big], c[~big].sum())
        if e_[-1] < 5:
            e_, c_ = e_[:-1], c_[:-1]
        return np.sum((c_ - e_) ** 2 / e_) / inflation / stats.chi2.ppf(1 - 1e-5, e_.size - 1)

    for j in range(2):
        ratio = chi2_ratio(mc.bayes_histograms[j], qmc.bayes_histograms[j])
        a, b = mc.bayes_regions[j], qmc.bayes_regions[j]
        for q_mc, q_qmc in ((a.segment_mass, b.segment_mass), (a.diagonal_mass, b.diagonal_mass)):
            var = q_qmc[0] * (1 - q_qmc[0])
            z = (q_mc[0] - q_qmc[0]) / math.sqrt(var * (1 / S + math.e / n))
            assert abs(z) < 4.5, (j, z)
        print(f"rotation {j}: X^2 / threshold {ratio:.2f}")
        assert ratio < 1, j
    assert chi2_ratio(mc.bayes_histograms[0], qmc.bayes_histograms[1]) > 1
    assert chi2_ratio(mc.bayes_histograms[1], qmc.bayes_histograms[0]) > 1


def _cli_figure3(monkeypatch, tmp_path, *args):
    """``gtv figure 3 --fast ...`` on a reduced grid of panels: (exit code, configurations)."""
    from gtv.validation.cli import main

    real, seen = fig3.compute_figure3, []

    def reduced(cfg, **kw):
        seen.append(cfg)
        small = dataclasses.replace(
            cfg, rotations=(0.0,), kinds=("fourier",), n_space=3, n_time=3, P=50, n_bins=10,
            n_bayes_samples=100,
        )  # fmt: skip
        return real(small, **kw)

    monkeypatch.setattr(fig3, "compute_figure3", reduced)
    argv = ["figure", "3", "--fast", "--models", "2", *args]
    code = main([*argv, "--out", str(tmp_path), "--no-progress", "--formats", "png", "--json"])
    return code, seen


def test_cli_figure3_density_choice(tmp_path, monkeypatch, capsys):
    import json

    code, seen = _cli_figure3(monkeypatch, tmp_path, "--points", "64")
    assert code == 0 and (seen[0].density, seen[0].n_points) == ("transport", 64)
    out = json.loads(capsys.readouterr().out)
    assert out["table"][0]["kind"] == "fourier"
    assert Figure3Result.load(tmp_path / "figure3.npz").config.density == "transport"
    code, seen = _cli_figure3(monkeypatch, tmp_path, "--density", "mc", "--samples", "100")
    assert code == 0 and (seen[0].density, seen[0].n_samples) == ("mc", 100)
    assert Figure3Result.load(tmp_path / "figure3.npz").config.density == "mc"
    capsys.readouterr()
    assert _cli_figure3(monkeypatch, tmp_path)[1][0].n_points == 4096  # --fast's
    capsys.readouterr()
    errors = {
        ("--samples", "100"): "--samples is used with --density mc",
        ("--density", "mc", "--points", "64"): "--points is used with --density transport",
        ("--points", "48"): "--points must be a power of 2",
        ("--max-points", "64"): "--max-points is used with figure 2 only",
    }
    for args, message in errors.items():
        code, seen = _cli_figure3(monkeypatch, tmp_path, *args)
        err = capsys.readouterr().err
        assert code == 1 and not seen and message in err and len(err.splitlines()) == 1, args
    with pytest.raises(SystemExit) as exc:
        _cli_figure3(monkeypatch, tmp_path, "--density", "qmc")
    assert exc.value.code == 2 and "--density" in capsys.readouterr().err


def test_cli_figure_help_gives_the_density_default(capsys):
    from gtv.validation.cli import main

    with pytest.raises(SystemExit):
        main(["figure", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "figures 2 and 3: how each model's density is formed" in help_text
    entry = help_text.split("--density {transport,mc} ")[-1].split("--points POINTS")[0]
    assert entry.endswith("(default: transport) ")
