"""Exact vs learned chains: model-level intervals, persistence, streams, configuration checks."""

import numpy as np
import pytest

from gtv.validation.serial.learned_experiment import (
    LearnedConfig,
    LearnedResult,
    learned_conditions,
    run_learned,
)
from gtv.validation.serial.plots import plot_learned

SMALL = {
    "h": 0.1,
    "steps": (2, 4),
    "families": ("gaussian", "fade"),
    "family_T": 3,
    "n_models": 3,
    "pairs_per_step": 150,
    "kernel_pairs": 80,
    "n_space": 5,
    "stationary_iters": 20,
    "n_boot": 100,
}


@pytest.fixture(scope="module")
def result():
    return run_learned(LearnedConfig(**SMALL))


def test_rows_and_intervals(result):
    assert len(result.rows) == 4 * 4  # 4 conditions x 4 denoisers
    for r in result.rows:
        for s in ("error", "gap", "stationary_error"):
            assert r[s + "_lo"] <= r[s] <= r[s + "_hi"], (r["label"], r["denoiser"], s)
        n = r["n_models"]
        assert n == (3 if r["denoiser"] in ("linear", "kernel") else 1)
        assert r[s + "_lo"] < r[s + "_hi"] or n == 1
    by = {(r["label"], r["denoiser"]): r for r in result.rows}
    for label in ("gaussian T=2", "gaussian T=4", "gaussian T=3", "fade T=3"):
        exact = by[(label, "exact")]["error"]
        # the exact chain beats every Gaussian-step chain, and the learned ones fill the gaps
        for d in ("exact-mean", "linear", "kernel"):
            assert by[(label, d)]["error"] > exact
            assert by[(label, d)]["gap"] > result.data_gap
    text = result.format_table()
    assert "steps at fixed total noise" in text and "noise families at T = 3" in text


def test_per_model_values_reproduce_the_row_means(result):
    for i, r in enumerate(result.rows):
        assert np.mean(result.per_model[f"{i}/error"]) == pytest.approx(r["error"])


def test_same_seed_same_numbers_other_seed_other_models(result):
    again = run_learned(LearnedConfig(**SMALL))
    assert again.rows == result.rows
    other = run_learned(LearnedConfig(**{**SMALL, "seed": 1}))
    for a, b in zip(result.rows, other.rows, strict=True):
        if a["denoiser"] in ("exact", "exact-mean"):
            assert a["error"] == b["error"]
        else:
            assert a["error"] != b["error"]


def test_save_load_plot(result, tmp_path):
    path = result.save(tmp_path / "learned")
    again = LearnedResult.load(path)
    assert again.config == result.config and again.rows == result.rows
    assert set(again.images) == set(result.images)
    names = [p.name for p in plot_learned(again, tmp_path / "fig", ("png",))]
    assert names == ["fig.png", "fig_images.png"]


def test_posterior_variance_option_changes_only_gaussian_steps():
    cfg = LearnedConfig(**{**SMALL, "steps": (3,), "families": (), "variance": "posterior"})
    res = run_learned(cfg)
    base = run_learned(LearnedConfig(**{**SMALL, "steps": (3,), "families": ()}))
    by = {r["denoiser"]: r for r in res.rows}
    by0 = {r["denoiser"]: r for r in base.rows}
    assert by["exact"]["error"] == by0["exact"]["error"]
    # the exact per-point posterior variance is a better Gaussian step than the kernel's
    assert by["exact-mean"]["error"] < by0["exact-mean"]["error"]


def test_conditions():
    cfg = LearnedConfig(**{**SMALL, "sweep_family": "fade"})
    conds = learned_conditions(cfg)
    assert [(part, c.T) for part, _, c in conds] == [
        ("steps", 2), ("steps", 4), ("families", 3), ("families", 3)
    ]  # fmt: skip
    assert conds[0][2].sigmas()[-1] == 1.0  # fade sweeps end at replacement probability 1
    gauss = learned_conditions(LearnedConfig(**SMALL))[1][2]
    assert abs(np.sum(gauss.sigmas() ** 2) - 0.1036027) < 1e-6


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_models": 1}, "n_models"),
        ({"denoisers": ("exact", "oracle")}, "denoisers"),
        ({"denoisers": ()}, "denoisers"),
        ({"families": ("cauchy",)}, "families"),
        ({"steps": (), "families": ()}, "nothing"),
        ({"grid": "hex"}, "grid"),
        ({"variance": "learned"}, "variance"),
        ({"kernel_ridge": 0.0}, "kernel_ridge"),
        ({"ridge": -1.0}, "ridge"),
        ({"activation": "tanh"}, "activation"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_configurations(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LearnedConfig(**{**SMALL, **kwargs})
