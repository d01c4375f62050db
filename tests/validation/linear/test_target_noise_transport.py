"""``gtv validate linear --target both`` with transported densities (the default) against Monte
Carlo, model by model (gtv.validation.linear.target_noise; docs/math/transport.md).

Both runs train the same noisy-target and exact-target models; only how their densities (and the
exact-Bayes baseline's) are formed differs. Statistics: tests/validation/agreement.py.
False-alarm probability of the agreement test: three ensembles (noisy, exact, the one-model
exact-Bayes baseline), each with two X^2 checks at level ``ALPHA = 1e-3 / 3`` and at most 8 gap
z-checks at ``P(|z| > 4.5) = 6.8e-6``: below ``2e-3 + 17 * 6.8e-6 = 2.1e-3`` (asymptotic X^2).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from gtv.numerics.io import CacheEntryWarning, load_result, save_result
from gtv.validation.cli import main
from gtv.validation.linear.target_noise import (
    TargetNoiseComparison,
    TargetNoiseConfig,
    compare_targets,
    format_target_noise_summary,
)

from ..agreement import check_agreement

S = 4000  # Monte Carlo samples per model and for the exact-Bayes baseline
ALPHA = 1e-3 / 3
COMMON = dict(
    eps=1e-2, P=40, n_space=4, n_time=3, n_models=8, n_bins=60, n_boot=50, n_splits=3,
    query_x=(0.0,), query_t=(0.3,), seed=2,
)  # fmt: skip


@pytest.fixture(scope="module")
def pair() -> tuple[TargetNoiseComparison, TargetNoiseComparison]:
    tr = compare_targets(TargetNoiseConfig(**COMMON, n_points=256, max_points=2048))
    mc = compare_targets(TargetNoiseConfig(**COMMON, density="mc", n_samples=S, n_bayes_samples=S))
    return tr, mc


def test_transport_agrees_with_monte_carlo_model_by_model(pair):
    """Both ensembles model by model, and the exact-Bayes baseline, within the Monte Carlo
    noise; the negative controls fail."""
    tr, mc = pair
    assert tr.config.density == "transport" and mc.config.density == "mc"
    width = float(np.diff(tr.edges)[0])
    for tg in ("noisy", "exact"):
        check_agreement(
            tg, (tr.histograms[tg], tr.outside[tg], tr.gap[tg]),
            (mc.histograms[tg], mc.outside[tg], mc.gap[tg]), width, S, ALPHA,
        )  # fmt: skip
    # the baseline: one model, its gap mass a binomial draw (z) from the transported one
    g_tr = tr.gap_row("exact_bayes_pfode")["estimate"]
    g_mc = mc.gap_row("exact_bayes_pfode")["estimate"]
    assert abs(g_mc - g_tr) / np.sqrt(g_tr * (1 - g_tr) / S) < 4.5
    errors = tr.meta["transport_error_tv"]
    assert set(errors) == {"noisy", "exact", "bayes"} and max(errors.values()) < 1e-3
    assert tr.meta["transport_points"]["noisy"] > tr.config.n_points  # refinement ran
    assert "n_bayes_samples" not in tr.meta and mc.meta["n_bayes_samples"] == S


def test_statistics_are_formed_from_the_transported_densities(pair):
    tr, _ = pair
    width = float(np.diff(tr.edges)[0])
    p = {tg: np.append(tr.histograms[tg].mean(0) * width, tr.outside[tg].mean())
         for tg in ("noisy", "exact")}  # fmt: skip
    assert tr.density["tv"] == pytest.approx(0.5 * np.abs(p["noisy"] - p["exact"]).sum())
    np.testing.assert_allclose(tr.histograms["noisy"].sum(1) * width + tr.outside["noisy"], 1.0)
    diff = tr.gap_row("difference")["estimate"]
    assert diff == pytest.approx(np.mean(tr.gap["noisy"] - tr.gap["exact"]))


def test_tables_name_the_density_and_round_trip(pair, tmp_path):
    tr, mc = pair
    assert "8 models x 256-point transported grid (<= 2048)" in tr.format_table()
    assert "| 8 x 256-point transported grid (<= 2048) |" in format_target_noise_summary([tr])
    assert "| 8 x 4000 samples |" in format_target_noise_summary([mc])
    for res in pair:
        npz, js = res.save(tmp_path / res.config.density)
        back = TargetNoiseComparison.load(npz)
        assert back.config == res.config and back.format_table() == res.format_table()
        assert json.loads(js.read_text())["config"]["density"] == res.config.density


def test_result_saved_before_the_density_option_loads_as_monte_carlo(pair, tmp_path):
    npz, _ = pair[1].save(tmp_path / "new")
    arrays, summary = load_result(npz)
    for key in ("density", "n_points", "transport_tolerance", "max_points"):
        del summary["config"][key]
    back = TargetNoiseComparison.load(save_result(tmp_path / "old", arrays, summary))
    assert back.config == pair[1].config and back.config.density == "mc"


_CLI = ["validate", "linear", "--target", "both", "--models", "4", "--P", "40", "--n-space", "4",
        "--n-time", "3", "--bins", "40", "--boot", "20", "--query-x", "0.0", "--query-t", "0.3",
        "--no-progress"]  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ([], ("transport", 2048, 16_384, 20_000)),
        (["--points", "64", "--max-points", "256"], ("transport", 64, 256, 20_000)),
        (["--density", "mc", "--samples", "300"], ("mc", 2048, 16_384, 300)),
    ],
)
def test_cli_density_options_reach_the_config(extra, expected, tmp_path, capsys, monkeypatch):
    """--target both follows --density (the comparison itself is replaced)."""
    import gtv.validation.linear.target_noise as tn

    seen = []

    def fake(c, progress=False):
        seen.append(c)
        raise ValueError("stop")

    monkeypatch.setattr(tn, "compare_targets", fake)
    assert main([*_CLI, *extra, "--out", str(tmp_path)]) == 1
    assert "gtv: error: stop" in capsys.readouterr().err
    c = seen[0]
    assert (c.density, c.n_points, c.max_points, c.n_samples) == expected


def test_cli_transport_end_to_end(tmp_path, capsys):
    args = [*_CLI, "--points", "128", "--max-points", "512", "--out", str(tmp_path)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "| 4 x 128-point transported grid (<= 512) |" in out
    back = TargetNoiseComparison.load(tmp_path / "target_noise_eps0.01_P40.npz")
    assert (back.config.density, back.config.n_points) == ("transport", 128)


def test_cli_refuses_a_resume_file_of_the_other_density(pair, tmp_path, capsys):
    """An interrupted ``--density mc`` run's resume file stops a transport run of otherwise the
    same configuration (one error line naming the file, before any work); the mc run it was
    written for accepts it."""
    from gtv.validation.linear.resume import ResumableConfigurations

    same_but_mc = TargetNoiseConfig(
        eps=0.01, P=40, n_space=4, n_time=3, n_models=4, n_samples=20_000, n_bins=40,
        n_boot=20, query_x=(0.0,), query_t=(0.3,), density="mc",
    )  # fmt: skip
    runs = ResumableConfigurations(
        tmp_path / "target_noise.partial", [same_but_mc], [tmp_path / "target_noise_eps0.01_P40"],
        TargetNoiseComparison.load,
    )  # fmt: skip
    runs.result(0, lambda c: pair[1])  # stands for an interrupted run of the mc configuration
    before = (tmp_path / "target_noise_eps0.01_P40.npz").read_bytes()
    assert main([*_CLI, "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert "target_noise.partial.npz" in err and "another configuration" in err
    assert (tmp_path / "target_noise_eps0.01_P40.npz").read_bytes() == before  # nothing computed
    # the mc run resumes from it (its result file holds another configuration's numbers, so it
    # is reported and recomputed)
    with pytest.warns(CacheEntryWarning):
        assert main([*_CLI, "--density", "mc", "--out", str(tmp_path)]) == 0
    assert TargetNoiseComparison.load(tmp_path / "target_noise_eps0.01_P40.npz").config == (
        same_but_mc
    )
