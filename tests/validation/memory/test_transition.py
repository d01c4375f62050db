"""The memorization transition on small sizes: every model class, the theory, reproducibility."""

import numpy as np
import pytest

from gtv.numerics.memory import LABEL_NAMES
from gtv.validation.memory import (
    CRITERIA,
    TransitionConfig,
    TransitionResult,
    plot_transition,
    run_transition,
)

SMALL = {"n_models": 2, "n_samples": 120, "n_steps": 20}


@pytest.fixture(scope="module")
def exact_run():
    cfg = TransitionConfig(model="exact", Ks=(3, 40, 600), **SMALL)
    return run_transition(cfg)


def test_fractions_are_distributions_over_the_three_classes(exact_run):
    f = exact_run.fractions
    assert f.shape == (3, 2, len(CRITERIA), len(LABEL_NAMES))
    assert np.all((f >= 0) & (f <= 1))
    assert np.allclose(f.sum(axis=-1), 1.0)
    assert np.all(np.isfinite(exact_run.proxy_frac))
    assert exact_run.theory_fractions is None and exact_run.v_kernel is None


def test_exact_score_leaves_memorization_as_K_grows(exact_run):
    """At eps = 0.01 (vp-linear) two memories merge below a spacing d = 2 sigma/alpha = 0.13
    (docs/memorization.md): 3 random points on the circle are almost always farther apart, 600
    points are ~0.01 apart. So the threshold criterion must see (nearly) all samples memorized
    at K = 3 and almost none at K = 600 -- a model that ignored K would fail."""
    mem = exact_run.fractions[:, :, CRITERIA.index("thresholds"), 0].mean(axis=1)
    assert mem[0] > 0.8
    assert mem[2] < 0.2


def test_a_sub_grid_reproduces_the_full_run(exact_run):
    cfg = TransitionConfig(model="exact", Ks=(40,), **SMALL)
    sub = run_transition(cfg)
    assert np.array_equal(sub.fractions[0], exact_run.fractions[1])
    assert np.array_equal(sub.proxy_frac[0], exact_run.proxy_frac[1])


def test_save_load_table_and_plot(exact_run, tmp_path):
    path = exact_run.save(tmp_path / "run")
    again = TransitionResult.load(path)
    assert again.config == exact_run.config
    assert np.array_equal(again.fractions, exact_run.fractions)
    rows = exact_run.table("thresholds")
    assert [r["K"] for r in rows] == [3, 40, 600]
    for r in rows:
        lo, hi = r["memorized"][1:]
        assert lo <= r["memorized"][0] <= hi
    marks = exact_run.landmarks("thresholds")
    assert marks["K_memorized_below_half"] in (40, 600)
    assert "memorized" in exact_run.format_table("ratio")
    files = plot_transition(exact_run, tmp_path / "fig", ("png",))
    assert files[0].stat().st_size > 1000
    with pytest.raises(ValueError, match="source"):
        exact_run.curve("thresholds", "theory")


def test_linear_models_with_the_theory_prediction():
    cfg = TransitionConfig(
        model="linear", Ks=(3, 30), n_space=4, n_time=2, n_train=512, n_mc=4000, **SMALL
    )
    res = run_transition(cfg)
    assert res.theory_fractions.shape == res.fractions.shape
    assert res.mean_fractions.shape == res.fractions.shape
    assert np.allclose(res.mean_fractions.sum(axis=-1), 1.0)
    assert "mean_generalized" in res.table()[0]
    assert np.allclose(res.theory_fractions.sum(axis=-1), 1.0)
    assert np.all(np.isfinite(res.v_kernel)) and np.all(res.v_kernel > 0)
    assert "theory_memorized" in res.table()[0]
    assert res.curve("ratio", "theory").shape == (2, 3, 3)
    diff = res.paired_difference("thresholds", "mean")
    expected = (res.fractions - res.mean_fractions)[:, :, 0, :].mean(axis=1)
    np.testing.assert_allclose(diff[..., 0], expected, atol=1e-12)
    assert np.all(diff[..., 1] <= diff[..., 0] + 1e-12) and np.all(
        diff[..., 0] <= diff[..., 2] + 1e-12
    )
    agree = res.agreement("ratio", "theory")
    assert agree["cells"] == 6 and 0 <= agree["ci_contains_zero"] <= 6


@pytest.mark.parametrize(
    "extra",
    [
        {"model": "kernel", "n_train": 48},
        {"model": "two-layer", "n_train": 48, "width": 8, "train_steps": 5, "learning_rate": 0.1},
        {"model": "kernel", "n_train": 48, "dataset": "sphere", "dim": 6},
    ],
)
def test_network_classes_run_end_to_end(extra):
    cfg = TransitionConfig(Ks=(2, 6), **{**SMALL, "n_samples": 40, **extra})
    res = run_transition(cfg)
    assert np.allclose(res.fractions.sum(axis=-1), 1.0)
    assert res.unconverged.shape == (2, 2, 3)


def test_wrong_config_type_and_wrong_file(tmp_path):
    with pytest.raises(TypeError, match="config"):
        run_transition({"model": "exact"})
    from gtv.numerics.io import save_result

    bad = save_result(tmp_path / "other", {"a": np.zeros(2)}, {"kind": "something-else"})
    with pytest.raises(ValueError, match="memorization-transition"):
        TransitionResult.load(bad)
