"""The memorization run configuration and the CLI's defaults."""

import dataclasses
import math

import pytest

from gtv.validation.memory import TransitionConfig, default_K_grid
from gtv.validation.memory.cli import CURVE_DEFAULTS


def test_default_grid_spans_2_to_10000():
    g = default_K_grid()
    assert g[0] == 2 and g[-1] == 10_000 and len(g) == 12
    assert all(b > a for a, b in zip(g, g[1:], strict=False))


def test_cli_defaults_equal_the_config_defaults():
    cfg = TransitionConfig()
    for key, value in CURVE_DEFAULTS.items():
        assert getattr(cfg, key) == value, key


def test_round_trip_through_a_dict():
    cfg = TransitionConfig(model="kernel", Ks=(2, 5), tau=math.inf, delta_m=0.1, seed=3)
    again = TransitionConfig.from_dict(cfg.to_dict())
    assert again == cfg
    with pytest.raises(ValueError, match="unknown configuration keys"):
        TransitionConfig.from_dict({**cfg.to_dict(), "colour": 1})


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"dataset": "torus"}, "dataset"),
        ({"model": "unet"}, "model"),
        ({"Ks": ()}, "Ks"),
        ({"Ks": (5, 3)}, "Ks"),
        ({"Ks": (1, 3)}, "Ks"),
        ({"n_models": 1}, "n_models"),
        ({"n_samples": 10**9}, "n_samples"),
        ({"eps": 0.0}, "eps"),
        ({"eps": 2.0}, "eps"),
        ({"delta_m": -1.0}, "delta_m"),
        ({"delta_s": float("nan")}, "delta_s"),
        ({"ratio": 1.0}, "ratio"),
        ({"flat_tol": 0.0}, "flat_tol"),
        ({"tau": -1.0}, "tau"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"dataset": "sphere", "model": "linear"}, "model"),
        ({"model": "linear", "n_space": 100}, "n_space"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"n_models": "a"}, "n_models"),
        ({"Ks": (2, "b")}, "Ks"),
        ({"eps": None}, "eps"),
        ({"theory": 1}, "theory"),
    ],
)
def test_bad_fields_are_named(kwargs, name):
    with pytest.raises((ValueError, TypeError), match=name):
        TransitionConfig(**kwargs)


def test_sphere_dimension_default_and_fields_are_documented():
    assert TransitionConfig(dataset="sphere", model="kernel").dim == 16
    doc = TransitionConfig.__doc__
    for f in dataclasses.fields(TransitionConfig):
        assert f.name in doc, f.name
