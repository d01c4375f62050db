"""Sweep specs: axes, ranges, task streams, and bad input named before anything runs."""

import numpy as np
import pytest

from gtv.numerics.streams import stream
from gtv.validation.sweep import SweepSpec, coordinate_key, load_spec

SMALL = {"n_models": 4, "n_samples": 50, "n_space": 3, "n_time": 3}


def spec(**kw):
    d = {"model": "linear", "record": ("gap_mass",), "fixed": dict(SMALL), "axes": {"P": [8, 16]}}
    d.update(kw)
    return SweepSpec.from_dict(d)


def test_axes_forms_and_grid():
    s = spec(axes={"eps": [0.01, 0.02], "P": {"start": 16, "stop": 256, "num": 5, "scale": "log"},
                   "replicate": 3})  # fmt: skip
    assert s.axes["P"] == (16, 32, 64, 128, 256)  # integral doubles of a log range become ints
    assert all(type(v) is int for v in s.axes["P"])
    assert s.axes["replicate"] == (0, 1, 2)
    assert s.shape == (2, 5, 3) and s.n_tasks == 30
    assert s.settings((1, 2, 0)) == {**SMALL, "eps": 0.02, "P": 64}  # no "replicate" setting
    lin = spec(axes={"ridge": {"start": 0.1, "stop": 0.3, "num": 3}})
    assert np.allclose(lin.axes["ridge"], [0.1, 0.2, 0.3])


def test_task_streams_depend_on_coordinate_values_not_positions():
    full = spec(axes={"eps": [0.01, 0.02], "P": [8, 16, 32]})
    sub = spec(axes={"eps": [0.02], "P": [32, 16]})
    a = full.task_seed((1, 2)).generate_state(4)
    b = sub.task_seed((0, 0)).generate_state(4)
    assert np.array_equal(a, b)
    assert not np.array_equal(full.task_seed((1, 1)).generate_state(4), a)
    # fixing a value another spec sweeps over gives the same stream
    fixed = spec(fixed={**SMALL, "eps": 0.02}, axes={"P": [32]})
    assert np.array_equal(fixed.task_seed((0,)).generate_state(4), a)
    # ... and so does naming a default explicitly
    named = spec(fixed={**SMALL, "eps": 0.02, "n_steps": 30}, axes={"P": [32]})
    assert np.array_equal(named.task_seed((0,)).generate_state(4), a)
    # ... and so does measuring the same models differently (bins, query points, density)
    measured = spec(fixed={**SMALL, "eps": 0.02, "n_bins": 17, "query_t": (0.05,),
                           "density": "mc"}, axes={"P": [32]})  # fmt: skip
    assert np.array_equal(measured.task_seed((0,)).generate_state(4), a)
    # the documented derivation: stream(seed, "sweep", keys of every drawing setting, name order)
    from dataclasses import asdict

    from gtv.validation.sweep.models import MEASUREMENT_SETTINGS, LinearPoint

    point = asdict(LinearPoint(**{**SMALL, "eps": 0.02, "P": 32}))
    keys = [coordinate_key(n, v) for n, v in sorted(point.items()) if n not in MEASUREMENT_SETTINGS]
    assert np.array_equal(stream(0, "sweep", *keys).generate_state(4), a)
    assert not np.array_equal(spec(fixed={**SMALL, "eps": 0.02, "ridge": 0.2}, axes={"P": [32]})
                              .task_seed((0,)).generate_state(4), a)  # fmt: skip
    assert not np.array_equal(
        spec(axes={"P": [32], "replicate": 2}).task_seed((0, 1)).generate_state(4),
        spec(axes={"P": [32], "replicate": 2}).task_seed((0, 0)).generate_state(4),
    )
    assert coordinate_key("P", 64) == coordinate_key("P", 64.0) != coordinate_key("n_space", 64)
    assert coordinate_key("eps", 0.1) != coordinate_key("eps", 0.1 + 1e-17 + 2e-17)
    assert spec(seed=1).task_seed((0,)).entropy != spec(seed=0).task_seed((0,)).entropy


def test_hash_names_the_spec():
    assert spec().spec_hash() == spec().spec_hash()
    assert spec().spec_hash() != spec(seed=3).spec_hash()
    assert spec().spec_hash() != spec(axes={"P": [8, 17]}).spec_hash()


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"modle": "linear"}, r"unknown key\(s\) \['modle'\]"),
        ({"model": "resnet"}, "model must be one of"),
        ({"fixed": {"n_model": 4}}, r"fixed: unknown key\(s\) \['n_model'\]"),
        ({"axes": {"epsilon": [0.1]}}, r"axes: unknown key\(s\) \['epsilon'\]"),
        ({"axes": {}}, "axes is empty"),
        ({"axes": {"P": []}}, "axes.P is empty"),
        ({"axes": {"P": [8, 8]}}, "repeated"),
        ({"axes": {"P": {"start": 8, "stop": 16}}}, "needs start, stop and num"),
        ({"axes": {"P": {"start": 8, "stop": 16, "num": 2, "step": 1}}}, "unknown range key"),
        ({"axes": {"P": {"start": 0, "stop": 16, "num": 2, "scale": "log"}}}, "log range"),
        ({"axes": {"P": [8, 0]}}, r"P must be an integer >= 1.*P=0"),
        ({"axes": {"P": [8, 12.5]}}, r"P must be an integer.*P=12.5"),
        ({"axes": {"eps": [0.01, 1.5]}}, r"eps must lie in \(0, T\).*eps=1.5"),
        ({"axes": {"eps": [0.01, 0.05]}}, r"query_t must lie in \[eps, T\].*eps=0.05"),
        ({"axes": {"n_bins": [40, 80]}}, "n_bins sets the shape"),
        ({"axes": {"P": [8]}, "fixed": {**SMALL, "P": 8}}, "both set"),
        ({"record": ["gap"]}, "record: 'gap' is not recorded"),
        ({"record": []}, "record is empty"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"fixed": {**SMALL, "method": "rk4"}}, "method must be one of"),
        ({"fixed": {**SMALL, "n_samples": "many"}}, "n_samples must be an integer"),
        ({"fixed": {**SMALL, "n_samples": 10**13}}, "n_models, n_samples"),
        ({"model": "exact", "record": ["theory"]}, "not recorded by model 'exact'"),
    ],
)
def test_bad_specs_name_the_key(change, match):
    d = {"model": "linear", "record": ["gap_mass"], "fixed": dict(SMALL), "axes": {"P": [8, 16]}}
    if "modle" in change:
        d.pop("model")
    d.update(change)
    with pytest.raises((ValueError, TypeError), match=match):
        SweepSpec.from_dict(d)


def test_load_spec_names_the_file(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text('model = "linear"\n[axes]\nP = [8, 16]\n[fixed]\nn_models = 4\n')
    assert load_spec(p).shape == (2,)
    p.write_text("model = linear\n")
    with pytest.raises(ValueError, match="s.toml.*not valid TOML"):
        load_spec(p)
    p.write_text('model = "linear"\n[axes]\nP = []\n')
    with pytest.raises(ValueError, match="s.toml.*axes.P is empty"):
        load_spec(p)
    with pytest.raises(ValueError, match="does not exist"):
        load_spec(tmp_path / "none.toml")
