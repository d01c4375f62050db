"""Transported densities in ``compare_linear`` (``density="transport"``, the default) against
Monte Carlo (``density="mc"``), model by model; the density options of the configuration and of
``gtv validate linear``; saved results of both kinds (docs/math/transport.md, "Comparisons").

The two densities come from the *same* models: the trained ensemble's training streams, the
Gaussian-field weights (stream ``"field"``) and the moment-matched weights (``"moment-field"``)
do not depend on how the densities are formed. A transported density is exact up to its grid
error (estimates below 1e-3 in total variation here, recorded in ``meta``), so the Monte Carlo
histogram of model ``n`` is a multinomial draw (``S`` samples) from the transported bin masses,
and its gap mass a binomial one. Every check below is a test of that null hypothesis at a stated
false-alarm probability (asymptotic, bins with expected count < 5 pooled; the statistics are in
tests/validation/agreement.py), and a negative control
(the same statistic for a deliberately wrong pairing) shows it can fail. Small sizes: the module
runs in a few seconds once the kernels are compiled.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from gtv.numerics.io import load_result, save_result
from gtv.validation.cli import main
from gtv.validation.linear import LinearCompareConfig, LinearComparison, compare_linear

from ..agreement import Z_MAX, agreement, check_agreement

S = 4000  # Monte Carlo samples per model (and for the exact-Bayes reference)
ALPHA = 1e-3  # false-alarm probability of each family of checks
# per-model gap z: |z| < Z_MAX = 4.5, P(|z| > 4.5) = 6.8e-6, times 12 models < 1e-4
COMMON = dict(
    eps=1e-2, P=100, n_space=6, n_time=4, n_models=12, n_bins=80, n_boot=20, n_splits=3,
    fp_steps=40, fp_refine=1, query_x=(0.0,), query_t=(0.1,), seed=5,
)  # fmt: skip


@pytest.fixture(scope="module")
def pair() -> tuple[LinearComparison, LinearComparison]:
    # 256 start points refined up to 2048 per model at the bin width (refinement runs: the
    # trained models carry ~700 points on average)
    tr = compare_linear(LinearCompareConfig(**COMMON, n_points=256, max_points=2048))
    mc = compare_linear(LinearCompareConfig(**COMMON, density="mc", n_samples=S, n_bayes_samples=S))
    return tr, mc


def _agreement(transported, sampled, width: float) -> dict:
    return agreement(transported, sampled, width, S, ALPHA)


def _check(name: str, transported, sampled, width: float) -> None:
    check_agreement(name, transported, sampled, width, S, ALPHA)


def test_trained_transport_agrees_with_monte_carlo_model_by_model(pair):
    """Trained ensemble: per-model gap masses and densities, and the ensemble-mean density,
    within the Monte Carlo noise (max |z| printed: 1.7; X^2 at most 0.7 of its threshold)."""
    tr, mc = pair
    assert tr.config.density == "transport" and mc.config.density == "mc"
    width = float(np.diff(tr.edges)[0])
    _check(
        "trained", (tr.histograms, tr.outside, tr.gap), (mc.histograms, mc.outside, mc.gap), width
    )
    # the transport run refined, and its error estimates are small against the MC noise
    assert tr.meta["transport_points"]["trained_mean"] > tr.config.n_points
    assert max(tr.meta["transport_error_tv"].values()) < 1e-3
    assert tr.transport_error.shape == (tr.config.n_models,)
    assert tr.transport_error.max() == tr.meta["transport_error_tv"]["trained"]
    # downstream quantities are formed from the transported densities
    np.testing.assert_allclose(tr.histograms.sum(1) * width + tr.outside, 1.0, atol=1e-12)
    gaps = {r["name"]: r for r in tr.gap_rows}
    assert gaps["trained"]["estimate"] == pytest.approx(tr.gap.mean(), rel=1e-12)
    assert tr.meta["trained_outside_mean"] == pytest.approx(tr.outside.mean(), rel=1e-12)


def test_gaussian_field_transport_agrees_with_monte_carlo_model_by_model(pair):
    """The theory side: the Gaussian-field members, the moment-matched members and the
    exact-Bayes reference (one model, ``S`` samples) within the Monte Carlo noise."""
    tr, mc = pair
    width = float(np.diff(tr.edges)[0])
    a, b = tr.theory, mc.theory
    assert a.config["density"] == "transport" and b.config["density"] == "mc"
    _check(
        "gaussian_field",
        (a.gf_histograms, a.gf_outside, a.gf_gap),
        (b.gf_histograms, b.gf_outside, b.gf_gap),
        width,
    )
    _check(
        "moment_matched",
        (tr.mm_histograms, tr.mm_outside, tr.mm_gap),
        (mc.mm_histograms, mc.mm_outside, mc.mm_gap),
        width,
    )
    bayes = _agreement(
        (a.bayes_density[None], np.array([a.outside["bayes"]]), np.array([a.gap["bayes"]])),
        (b.bayes_density[None], np.array([b.outside["bayes"]]), np.array([b.gap["bayes"]])),
        width,
    )
    assert abs(bayes["z"][0]) < Z_MAX and bayes["worst"] < 1
    # the distances of the table are computed from the transported theory densities
    gf = {r["theory"]: r for r in tr.density_rows}["gaussian_field"]
    q = np.append(a.gf_mean * width, a.gf_outside.mean())
    p = np.append(tr.mean_density() * width, tr.outside.mean())
    assert gf["tv"] == pytest.approx(0.5 * np.abs(p - q).sum(), rel=1e-9)


def test_transport_is_deterministic_and_table_names_it(pair):
    tr, _ = pair
    again = compare_linear(LinearCompareConfig(**COMMON, n_points=256, max_points=2048))
    np.testing.assert_array_equal(again.histograms, tr.histograms)
    np.testing.assert_array_equal(again.theory.gf_histograms, tr.theory.gf_histograms)
    assert again.density_rows == tr.density_rows and again.floor == tr.floor
    text = tr.format_table()
    assert "12 models x 256-point transported grid (<= 2048)" in text
    assert "transport error estimate (largest per-model TV): trained" in text
    assert "transport error" not in compare_linear(
        LinearCompareConfig(**{**COMMON, "n_models": 4, "diagnostics": False}, density="mc",
                            n_samples=200, n_bayes_samples=200)
    ).format_table()  # fmt: skip


@pytest.mark.parametrize("density", ["transport", "mc"])
def test_save_load_round_trip(pair, tmp_path, density):
    res = pair[0] if density == "transport" else pair[1]
    npz, js = res.save(tmp_path / "cmp")
    back = LinearComparison.load(npz)
    assert back.config == res.config and back.config.density == density
    assert back.format_table() == res.format_table()
    for name in ("histograms", "outside", "gap", "mm_histograms", "transport_error"):
        a, b = getattr(res, name), getattr(back, name)
        assert (a is None and b is None) or np.array_equal(a, b), name
    np.testing.assert_array_equal(back.theory.gf_histograms, res.theory.gf_histograms)
    assert back.theory.config["density"] == density
    assert json.loads(js.read_text())["config"]["density"] == density


def test_result_saved_before_the_density_option_loads_as_monte_carlo(pair, tmp_path):
    """A result file whose configuration has no density fields (written before they existed)
    loads as ``density="mc"`` with the default transport settings."""
    npz, _ = pair[1].save(tmp_path / "new")
    arrays, summary = load_result(npz)
    for key in ("density", "n_points", "transport_tolerance", "max_points"):
        del summary["config"][key]
    old = save_result(tmp_path / "old", arrays, summary)
    back = LinearComparison.load(old)
    assert back.config == pair[1].config and back.config.density == "mc"
    np.testing.assert_array_equal(back.histograms, pair[1].histograms)


@pytest.mark.parametrize(
    ("bad", "name"),
    [
        ({"density": "quasi"}, "density"),
        ({"density": 1}, "density"),
        ({"n_points": 3}, "n_points"),
        ({"n_points": 100, "max_points": 99}, "max_points"),
        ({"transport_tolerance": 0.0}, "transport_tolerance"),
        ({"transport_tolerance": float("nan")}, "transport_tolerance"),
    ],
)
def test_config_rejects_bad_density_options(bad, name):
    with pytest.raises(ValueError, match=name):
        LinearCompareConfig(**bad)


def test_config_defaults():
    c = LinearCompareConfig()
    assert (c.density, c.n_points, c.transport_tolerance, c.max_points) == (
        "transport", 2048, 1e-6, 16_384,
    )  # fmt: skip
    s = c.transport_settings()
    assert (s.n_points, s.tolerance, s.max_points) == (2048, 1e-6, 16_384)


_CLI = ["validate", "linear", "--models", "4", "--P", "100", "--n-space", "4", "--n-time", "3",
        "--bins", "20", "--boot", "10", "--query-x", "0.0", "--query-t", "0.3", "--steps", "10",
        "--no-diagnostics", "--no-progress", "--formats", "png"]  # fmt: skip


def _one_line(err: str, text: str) -> None:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gtv: error:") and text in lines[0], err


@pytest.mark.parametrize(
    ("extra", "text"),
    [
        (["--samples", "100"], "--samples is used with --density mc"),
        (["--density", "transport", "--samples", "100"], "--samples is used with --density mc"),
        (["--density", "mc", "--points", "64"], "--points and --max-points are used with"),
        (["--density", "mc", "--max-points", "64"], "--points and --max-points are used with"),
        (["--points", "128", "--max-points", "64"], "--max-points must be >= --points (128)"),
        (["--max-points", "1024"], "--max-points must be >= --points (2048)"),
        (["--target", "both", "--samples", "100"], "--samples is used with --density mc"),
        (["--target", "both", "--density", "mc", "--points", "64"], "--points and --max-points"),
        (["--target", "both", "--points", "128", "--max-points", "64"], "--max-points must be >="),
    ],
)
def test_cli_density_errors_one_line(extra, text, tmp_path, capsys):
    assert main([*_CLI, *extra, "--out", str(tmp_path)]) == 1
    _one_line(capsys.readouterr().err, text)
    assert not any(tmp_path.iterdir())  # nothing computed


def test_cli_bad_density_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["validate", "linear", "--density", "qmc"])
    assert exc.value.code == 2
    _one_line(capsys.readouterr().err, "--density")


def test_cli_help_gives_the_density_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["validate", "linear", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for opt, default in (
        ("--density {transport,mc}", "default: transport"),
        ("--samples SAMPLES", "default: 20000"),
        ("--points POINTS", "default: 2048"),
        ("--max-points MAX_POINTS", "default: 16384"),
    ):
        i = text.index(opt, text.index("options:"))
        assert default in text[i : i + 500], opt


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ([], ("transport", 2048, 16_384, 20_000)),
        (["--points", "64", "--max-points", "256"], ("transport", 64, 256, 20_000)),
        (["--points", "20000"], ("transport", 20_000, 20_000, 20_000)),
        (["--density", "mc", "--samples", "300"], ("mc", 2048, 16_384, 300)),
    ],
)
def test_cli_density_options_reach_the_config(extra, expected, tmp_path, capsys, monkeypatch):
    """The options end in the configuration (the comparison itself is replaced: only the
    configuration is checked here; the end-to-end runs are in test_compare.py)."""
    import gtv.validation.linear.compare as compare

    seen = []

    def fake(c, progress=False):
        seen.append(c)
        raise ValueError("stop")

    monkeypatch.setattr(compare, "compare_linear", fake)
    assert main([*_CLI, *extra, "--out", str(tmp_path)]) == 1
    assert "gtv: error: stop" in capsys.readouterr().err
    c = seen[0]
    assert (c.density, c.n_points, c.max_points, c.n_samples) == expected


def test_cli_transport_end_to_end(tmp_path, capsys):
    assert main([*_CLI, "--points", "128", "--max-points", "512", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "4 models x 128-point transported grid (<= 512)" in out
    assert "transport error estimate" in out
    back = LinearComparison.load(tmp_path / "linear_eps0.01_P100.npz")
    assert (back.config.density, back.config.n_points, back.config.max_points) == (
        "transport", 128, 512,
    )  # fmt: skip
    assert (tmp_path / "linear_eps0.01_P100.png").stat().st_size > 1000
