"""Result files (gtv.numerics.io; docs/engineering.md): arrays + JSON configuration in an .npz;
loading never unpickles."""

import json

import numpy as np
import pytest

from gtv.numerics.io import load_result, save_result


def test_round_trip_preserves_arrays_and_config(tmp_path):
    """Arrays come back bit for bit (dtype and shape included) and the configuration as saved."""
    rng = np.random.default_rng(0)
    arrays = {
        "frac": rng.random((2, 3, 4)),
        "grid": np.linspace(-2, 2, 5),
        "counts": np.arange(6, dtype=np.int32).reshape(2, 3),
        "mask": np.array([True, False, True]),
        "scalar": np.float64(np.pi),
        "labels": np.array(["hexagon", "L-shape"]),
    }
    config = {
        "figure": 1,
        "schedule": "linear-variance",
        "eps": 1e-3,
        "times": [0.05, 0.1, 0.2],
        "nested": {"P": 10_000, "seed": 12345, "note": "σ² ≥ 0", "flag": True, "none": None},
    }
    path = save_result(tmp_path / "run", arrays, config)
    assert path.name == "run.npz" and path.exists()
    back, cfg = load_result(path)
    assert cfg == config
    assert set(back) == set(arrays)
    for name, arr in arrays.items():
        arr = np.asarray(arr)
        assert back[name].dtype == arr.dtype and back[name].shape == arr.shape, name
        np.testing.assert_array_equal(back[name], arr)


def test_npz_suffix_kept_and_parent_created(tmp_path):
    path = save_result(tmp_path / "a" / "b" / "res.npz", {"x": np.zeros(2)}, {})
    assert path == tmp_path / "a" / "b" / "res.npz" and path.exists()
    assert load_result(path)[1] == {}


def test_object_arrays_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="object"):
        save_result(tmp_path / "bad", {"x": np.array([{"a": 1}, None], dtype=object)}, {})
    assert not (tmp_path / "bad.npz").exists()


def test_reserved_key_is_rejected(tmp_path):
    with pytest.raises(ValueError):
        save_result(tmp_path / "bad", {"__config__": np.zeros(1)}, {})


def test_non_json_config_is_rejected(tmp_path):
    with pytest.raises(TypeError):
        save_result(tmp_path / "bad", {"x": np.zeros(1)}, {"f": object()})


def test_plain_npz_without_config_is_rejected(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, x=np.zeros(3))
    with pytest.raises(ValueError, match="config"):
        load_result(path)


class _Payload:
    """Unpickling this object creates a marker file (a harmless stand-in for running code)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_loading_never_unpickles(tmp_path):
    """A file carrying a pickled object array (plus a valid-looking configuration) is refused with
    ValueError, and the pickle payload is never executed."""
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    payload = np.empty(1, dtype=object)
    payload[0] = _Payload(marker)
    np.savez(path, x=payload, __config__=np.array(json.dumps({"figure": 1})))
    with pytest.raises(ValueError):
        load_result(path)
    assert not marker.exists()


def test_validation_layer_reexports_the_same_functions():
    import gtv.validation.results as vr

    assert vr.save_result is save_result and vr.load_result is load_result
