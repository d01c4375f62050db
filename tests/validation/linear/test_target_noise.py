"""Noisy vs exact DSM target, side by side (gtv.validation.linear.target_noise) and the CLI
``gtv validate linear --target {exact,both}``, with Monte Carlo densities (transported ones:
test_target_noise_transport.py). Small sizes: each test runs in seconds. (Training with the exact
target and its theory: tests/numerics/linear/test_target.py.)"""

import json

import numpy as np
import pytest

from gtv.numerics.features import ProductFeatures
from gtv.numerics.linear import sample_linear_ensemble, train_linear_ensemble
from gtv.numerics.schedules import get_schedule
from gtv.validation.cli import main
from gtv.validation.ensembles import gap_mass
from gtv.validation.figures.figure2 import FIGURE2_DATA
from gtv.validation.linear import LinearCompareConfig, LinearComparison
from gtv.validation.linear.target_noise import (
    TargetNoiseComparison,
    TargetNoiseConfig,
    compare_targets,
    format_target_noise_summary,
)

EPS = 1e-2


def _tiny(**kw):
    base = dict(
        eps=EPS, P=40, n_space=4, n_time=3, n_models=8, n_samples=300, n_bins=40, n_boot=50,
        n_splits=3, n_bayes_samples=2000, query_x=(-0.5, 0.0), query_t=(0.05, 0.3),
        density="mc",
    )  # fmt: skip
    base.update(kw)
    return TargetNoiseConfig(**base)


@pytest.fixture(scope="module")
def tiny():
    return compare_targets(_tiny())


def test_paired_ensembles_are_the_documented_ones(tiny):
    """Per-model gap masses equal those of the two ensembles trained and sampled directly
    (same training and sampling streams for both targets), and the tabulated statistics are
    the stated functions of them."""
    c = tiny.config
    sched = get_schedule(c.schedule)
    feats = ProductFeatures.uniform("gaussian", 1, c.n_space, c.n_time, (EPS, sched.T), c.x_range)
    for tg in ("noisy", "exact"):
        ens = train_linear_ensemble(FIGURE2_DATA, feats, c.n_models, c.P, EPS, target=tg)
        xs = sample_linear_ensemble(ens, c.n_samples, seed=c.seed)
        np.testing.assert_array_equal(tiny.gap[tg], gap_mass(xs, FIGURE2_DATA, c.gap_distance))
    assert np.any(tiny.gap["noisy"] != tiny.gap["exact"])
    diff = tiny.gap_row("difference")
    assert diff["estimate"] == pytest.approx(np.mean(tiny.gap["noisy"] - tiny.gap["exact"]))
    assert diff["lo"] <= diff["estimate"] <= diff["hi"]
    width = (c.hist_range[1] - c.hist_range[0]) / c.n_bins
    p = {tg: np.append(tiny.histograms[tg].mean(0) * width, tiny.outside[tg].mean())
         for tg in ("noisy", "exact")}  # fmt: skip
    assert tiny.density["tv"] == pytest.approx(0.5 * np.abs(p["noisy"] - p["exact"]).sum())
    bayes = tiny.gap_row("exact_bayes_pfode")["estimate"]
    if "noise_share" in {r["name"] for r in tiny.gap_rows}:
        g_n, g_e = tiny.gap["noisy"].mean(), tiny.gap["exact"].mean()
        share = tiny.gap_row("noise_share")
        assert share["estimate"] == pytest.approx((g_n - g_e) / (g_n - bayes))
    for tg in ("noisy", "exact"):
        assert 0 < tiny.density[f"floor_{tg}_tv"] < 1


def test_variance_rows_use_both_theories(tiny):
    assert len(tiny.denoiser_rows) == 4
    for r in tiny.denoiser_rows:
        assert r["var_pred_total"] > r["var_pred_misfit"] > 0
        assert r["var_noisy_lo"] <= r["var_noisy"] <= r["var_noisy_hi"]
        assert r["var_exact_lo"] <= r["var_exact"] <= r["var_exact_hi"]
        for v in r.values():
            assert np.isfinite(v)


def test_save_load_and_tables(tiny, tmp_path):
    text = tiny.format_table()
    assert "noisy vs exact target" in text and "nan" not in text and "difference" in text
    npz, js = tiny.save(tmp_path / "tn")
    back = TargetNoiseComparison.load(npz)
    assert back.config == tiny.config
    assert back.format_table() == text
    for tg in ("noisy", "exact"):
        np.testing.assert_array_equal(back.gap[tg], tiny.gap[tg])
        np.testing.assert_array_equal(back.histograms[tg], tiny.histograms[tg])
    assert json.loads(js.read_text())["config"]["P"] == 40
    summary = format_target_noise_summary([tiny, back])
    assert summary.count("\n") == 3 and "| 0.01 | 0.3 | 40 | 8 x 300 samples |" in summary


@pytest.mark.parametrize(
    "bad,name",
    [({"n_models": 2}, "n_models"), ({"P": 0}, "P"), ({"eps": 2.0}, "eps"),
     ({"gap_distance": 0.0}, "gap_distance"), ({"method": "rk4"}, "method"),
     ({"query_t": ()}, "query_t")],
)  # fmt: skip
def test_bad_config_raises(bad, name):
    with pytest.raises(ValueError, match=name):
        _tiny(**bad)


_CLI = ["validate", "linear", "--models", "4", "--samples", "200", "--P", "40", "--n-space",
        "4", "--n-time", "3", "--bins", "40", "--boot", "20", "--query-x", "0.0",
        "--query-t", "0.3", "--no-progress"]  # fmt: skip


def test_cli_target_both_writes_json(tmp_path, capsys):
    js = tmp_path / "all.json"
    args = [*_CLI, "--density", "mc", "--target", "both", "--out", str(tmp_path), "--json", str(js)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "noisy vs exact target" in out and "| 0.01 | 0.3 | 40 | 4 x 200 samples |" in out
    rows = json.loads(js.read_text())
    assert len(rows) == 1 and rows[0]["kind"] == "target_noise_comparison"
    back = TargetNoiseComparison.load(tmp_path / "target_noise_eps0.01_P40.npz")
    assert back.config.n_models == 4 and back.config.P == 40


def test_cli_target_exact_saves_config(tmp_path, capsys):
    args = [*_CLI, "--density", "mc", "--target", "exact", "--out", str(tmp_path)]
    assert main([*args, "--formats", "png"]) == 0
    out = capsys.readouterr().out
    assert "misfit part only (exact target)" in out
    back = LinearComparison.load(tmp_path / "linear_eps0.01_P40_exact.npz")
    assert back.config.target == "exact"
    with pytest.raises(ValueError, match="target"):
        LinearCompareConfig(target="both")


def test_cli_target_errors_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["validate", "linear", "--target", "posterior"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("gtv: error:")
    assert main([*_CLI, "--out", str(tmp_path), "--json", str(tmp_path / "x.json")]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "--json" in err
