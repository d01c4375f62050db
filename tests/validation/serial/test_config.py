"""Configurations of the serial-reproduction experiments: the paper's parameters, bad input."""

import numpy as np
import pytest

from gtv.validation.serial.config import (
    EXPERIMENTS,
    Condition,
    ExperimentConfig,
    experiment_config,
    fixed_total_fade,
    paper_total,
)


def test_fig2_has_the_papers_conditions():
    cfg = experiment_config("fig2")
    assert cfg.h == 0.025 and cfg.n == 41 and cfg.grid == "authors"
    got = {(c.family, c.start, c.stop, c.T, c.terminal) for c in cfg.conditions}
    assert got == {
        ("gaussian", 0.03, 0.10, 10, "uniform"),
        ("bimodal", 0.02, 0.07, 10, "uniform"),
        ("fade", 0.01, 1.0, 10, "uniform"),
        ("fade", 0.01, 1.0, 10, "three-modes"),
    }
    assert np.allclose(cfg.conditions[0].sigmas(), np.linspace(0.03, 0.10, 10))
    assert all(c.keep_trajectory and c.inject_noise for c in cfg.conditions)


def test_sweeps_use_the_same_endpoints_for_every_T():
    for name, fam, (a, b) in (("fig3", "gaussian", (0.01, 0.05)), ("s5", "bimodal", (0.02, 0.07))):
        cfg = experiment_config(name)
        assert cfg.n == 26 and [c.T for c in cfg.conditions] == [2, 3, 6, 12, 24, 48, 100]
        for c in cfg.conditions:
            s = c.sigmas()
            assert c.family == fam and s[0] == a and s[-1] == b and s.size == c.T


def test_s2_and_s4():
    s2 = experiment_config("s2").conditions
    assert [c.inject_noise for c in s2] == [True, False]
    s4 = experiment_config("s4").conditions
    assert [(c.family, c.schedule, c.start, c.T) for c in s4] == [
        ("gaussian", "constant", 0.01, 10),
        ("bimodal", "constant", 1e-4, 10),
        ("fade", "constant", 1e-4, 10),
        ("gaussian", "constant", 0.01, 100),
    ]
    assert s4[2].terminal == "three-modes"
    assert np.all(s4[3].sigmas() == 0.01)


def test_fixed_total_has_the_same_total_variance_for_every_T():
    cfg = experiment_config("fixed-total", steps=(2, 5, 40))
    total = paper_total()
    assert abs(total - np.sum(np.linspace(0.01, 0.05, 100) ** 2)) < 1e-15
    fixed = [c for c in cfg.conditions if c.schedule == "fixed-total"]
    assert len(fixed) == 6  # 3 T x (with, without noise injection)
    for c in fixed:
        s = c.sigmas()
        assert abs(np.sum(s**2) - total) < 1e-12
        assert abs(s[-1] / s[0] - 5.0) < 1e-12  # the shape of the 0.01 -> 0.05 ramp
    paper = [c for c in cfg.conditions if c.schedule == "linear"]
    assert [c.T for c in paper] == [2, 5, 40]


def test_fixed_total_fade_reaches_its_replacement_probability():
    for T in (1, 3, 20):
        s = fixed_total_fade(T, 0.01, 1.0, 0.7)
        assert abs(1 - np.prod(1 - s) - 0.7) < 1e-12
    assert fixed_total_fade(4, 0.1, 0.5, 1.0)[-1] == 1.0


def test_round_trip_through_dict():
    cfg = experiment_config("s4", "torus")
    again = ExperimentConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.n == 40


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"family": "cauchy"}, "family"),
        ({"schedule": "sqrt"}, "schedule"),
        ({"terminal": "moons"}, "terminal"),
        ({"T": 0}, "T"),
        ({"T": 2.5}, "T"),
        ({"start": 0.0}, "start"),
        ({"stop": float("nan")}, "stop"),
        ({"family": "fade", "stop": 1.5}, "fade"),
        ({"schedule": "fixed-total"}, "total"),
    ],
)
def test_bad_conditions_raise_naming_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Condition("x", **kwargs)


def test_bad_experiments_raise():
    with pytest.raises(ValueError, match="name"):
        experiment_config("fig9")
    with pytest.raises(ValueError, match="grid"):
        experiment_config("fig2", "hexagonal")
    with pytest.raises(ValueError, match="h"):
        experiment_config("fig2", h=0.0)
    with pytest.raises(ValueError, match="conditions"):
        ExperimentConfig("x", "torus", 0.1, ())
    assert set(EXPERIMENTS) == {"fig2", "fig3", "s2", "s4", "s5", "fixed-total"}
