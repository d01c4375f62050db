"""The exact-denoiser experiments: agreement with the dense algorithm, the control, persistence."""

import numpy as np
import pytest

from gtv.numerics.serial import AUTHORS_EPS, DenseChain, Grid, kl_bits
from gtv.validation.serial.config import Condition, ExperimentConfig, experiment_config
from gtv.validation.serial.data import swiss_roll, three_modes
from gtv.validation.serial.experiments import (
    ExperimentResult,
    make_family,
    make_grid,
    run_condition,
    run_experiment,
)
from gtv.validation.serial.plots import plot_experiment


def _dense_error(cond: Condition, grid: Grid) -> tuple[float, float]:
    """Error and terminal KL of one condition with the dense (authors') algorithm."""
    data = swiss_roll(grid)
    chain = DenseChain(data, grid, make_family(cond, grid), cond.sigmas())
    start = three_modes(grid) if cond.terminal == "three-modes" else grid.uniform()
    p = chain.generate(start, inject_noise=cond.inject_noise)
    return kl_bits(p[0], data, AUTHORS_EPS), kl_bits(start, chain.q[-1], AUTHORS_EPS)


@pytest.mark.parametrize("layout", ["authors", "torus"])
@pytest.mark.parametrize(
    "cond",
    [
        Condition("g", "gaussian", "linear", 0.03, 0.10, 5),
        Condition("b", "bimodal", "linear", 0.02, 0.07, 4),
        Condition("f", "fade", "linear", 0.01, 1.0, 4, terminal="three-modes"),
        Condition("d", "gaussian", "linear", 0.05, 0.10, 3, inject_noise=False),
    ],
    ids=["gaussian", "bimodal", "fade-3modes", "denoise-only"],
)
def test_runner_matches_the_dense_algorithm(cond, layout):
    grid = make_grid(layout, 1 / 16)
    metrics, arrays = run_condition(cond, grid, swiss_roll(grid))
    err, terminal = _dense_error(cond, grid)
    assert metrics["error"] == pytest.approx(err, rel=1e-9, abs=1e-12)
    assert metrics["terminal"] == pytest.approx(terminal, rel=1e-9, abs=1e-12)
    assert arrays["generated"].shape == grid.shape and abs(arrays["generated"].sum() - 1) < 1e-12


def test_fade_on_both_grids_uses_the_authors_kernel():
    cond = Condition("f", "fade", "linear", 0.01, 1.0, 3)
    for layout in ("authors", "torus"):
        fam = make_family(cond, make_grid(layout, 0.1))
        assert fam.kind == "fade" and fam.params["stay_sd"] == 0.01
        assert not fam.params["normalise_stay"]


def test_fig3_sweep_gains_from_more_steps_but_the_fixed_total_control_does_not():
    """Fig. 3's error falls with T because q_T approaches p_F; at fixed total noise it does not."""
    res = run_experiment(experiment_config("fixed-total", "torus", h=1 / 16, steps=(2, 4, 8, 16)))
    rows = {r["label"]: r for r in res.rows}
    paper = [rows[f"paper T={T}"] for T in (2, 4, 8, 16)]
    fixed = [rows[f"fixed T={T} inject"] for T in (2, 4, 8, 16)]
    only = [rows[f"fixed T={T} denoise-only"] for T in (2, 4, 8, 16)]
    # the paper's sweep: error and terminal mismatch both fall with T
    assert all(a["error"] > b["error"] for a, b in zip(paper, paper[1:], strict=False))
    assert paper[0]["terminal"] > 4 * paper[-1]["terminal"]
    # fixed total: the terminal mismatch is the same small value for every T ...
    term = np.array([r["terminal"] for r in fixed])
    assert term.max() < 0.01 and term.max() < 3 * term.min()
    # ... and more steps do not help the exact sampler with noise injection
    assert fixed[-1]["error"] > fixed[0]["error"]
    # denoise-only from p_F is exact up to the terminal mismatch (no accumulation)
    assert all(r["error"] <= r["terminal"] + 1e-12 for r in only)
    assert all(r["complexity"] == s["complexity"] for r, s in zip(fixed, only, strict=True))


def test_save_load_and_plot(tmp_path):
    cfg = ExperimentConfig(
        "fig2",
        "torus",
        0.1,
        (
            Condition("a", "gaussian", "linear", 0.05, 0.1, 3, keep_trajectory=True),
            Condition("b", "fade", "linear", 0.1, 1.0, 2),
        ),
    )
    res = run_experiment(cfg)
    path = res.save(tmp_path / "r")
    again = ExperimentResult.load(path)
    assert again.config == cfg and again.rows == res.rows
    assert np.array_equal(again.arrays[0]["q"], res.arrays[0]["q"])
    assert again.arrays[0]["p"].shape == (4, 10, 10) and "q" not in again.arrays[1]
    assert "fig2 on the torus grid (10 x 10" in again.format_table()
    paths = plot_experiment(again, tmp_path / "fig", ("png",))
    assert [p.name for p in paths] == ["fig.png"] and paths[0].stat().st_size > 0
    sweep = run_experiment(experiment_config("fig3", "torus", h=0.1, steps=(2, 3)))
    names = [p.name for p in plot_experiment(sweep, tmp_path / "s", ("png", "pdf"))]
    assert names == ["s.png", "s.pdf", "s_S1.png", "s_S1.pdf"]
    with pytest.raises(ValueError, match="serial-experiment"):
        ExperimentResult.load(
            __import__("gtv.numerics.io", fromlist=["save_result"]).save_result(
                tmp_path / "other", {"a": np.zeros(2)}, {"kind": "other"}
            )
        )


def test_bad_input():
    with pytest.raises(TypeError, match="config"):
        run_experiment({"name": "fig2"})
    with pytest.raises(ValueError, match="grid"):
        make_grid("hexagonal", 0.1)


@pytest.mark.slow
def test_fig3_on_the_authors_grid_matches_the_dense_algorithm_at_full_size():
    cfg = experiment_config("fig3")
    res = run_experiment(cfg)
    grid = make_grid("authors", 0.04)
    for cond, row in zip(cfg.conditions, res.rows, strict=True):
        err, _ = _dense_error(cond, grid)
        assert row["error"] == pytest.approx(err, rel=1e-8)
