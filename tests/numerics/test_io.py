"""Result files (gtv.numerics.io; docs/engineering.md, docs/reliability.md): arrays + JSON
configuration + a header (format, kind, SHA-256) in an .npz; atomic writes; verified reads;
loading never unpickles."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest

from gtv.numerics.io import (
    FORMAT_VERSION,
    CacheEntryWarning,
    LegacyResultWarning,
    ResultFileError,
    load_cache_entry,
    load_result,
    load_result_of_kind,
    result_file,
    save_result,
)


def _entries(path):
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def _rewrite(path, entries):
    """Rewrite ``path`` as a valid npz with numpy directly (no gtv involved)."""
    with open(path, "wb") as f:
        np.savez(f, **entries)


@pytest.fixture
def saved(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"W": rng.standard_normal((3, 4, 5)), "steps": np.arange(3), "ok": np.array([True])}
    config = {"kind": "test_kind", "eps": 0.01, "T": 1.0}
    return save_result(tmp_path / "res", arrays, config), arrays, config


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
        "big_endian": np.arange(4, dtype=">f8"),
        "file": np.zeros(2),  # a name that np.savez would take as its own argument
    }
    config = {
        "kind": "figure1_result",
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
    header = json.loads(str(_entries(path)["__gtv__"]))
    assert header["format"] == FORMAT_VERSION and header["kind"] == "figure1_result"
    assert len(header["sha256"]) == 64
    # the only file in the folder: no temporary file is left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.npz"]


def test_npz_suffix_kept_and_parent_created(tmp_path):
    path = save_result(tmp_path / "a" / "b" / "res.npz", {"x": np.zeros(2)}, {}, kind="k")
    assert path == tmp_path / "a" / "b" / "res.npz" and path.exists()
    assert load_result_of_kind(path, "k", "a K")[1] == {}


def test_every_file_records_a_kind(tmp_path):
    with pytest.raises(ValueError, match="kind"):
        save_result(tmp_path / "nokind", {"x": np.zeros(1)}, {"eps": 0.1})
    assert not (tmp_path / "nokind.npz").exists()
    # an explicit kind wins over the configuration's own "kind" entry (e.g. a feature kind)
    p = save_result(tmp_path / "e", {"x": np.zeros(1)}, {"kind": "fourier"}, kind="ensemble_result")
    arrays, cfg = load_result_of_kind(p, "ensemble_result", "an EnsembleResult")
    assert cfg["kind"] == "fourier"


def test_object_arrays_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="object"):
        save_result(
            tmp_path / "bad", {"x": np.array([{"a": 1}, None], dtype=object)}, {"kind": "k"}
        )
    assert not (tmp_path / "bad.npz").exists()


def test_reserved_keys_are_rejected(tmp_path):
    for key in ("__config__", "__gtv__"):
        with pytest.raises(ValueError, match="reserved"):
            save_result(tmp_path / "bad", {key: np.zeros(1)}, {"kind": "k"})


def test_non_json_config_is_rejected(tmp_path):
    with pytest.raises(TypeError):
        save_result(tmp_path / "bad", {"x": np.zeros(1)}, {"kind": "k", "f": object()})
    with pytest.raises(TypeError, match="config"):
        save_result(tmp_path / "bad", {"x": np.zeros(1)}, ["kind"])
    assert list(tmp_path.iterdir()) == []


def test_plain_npz_without_config_is_rejected(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, x=np.zeros(3))
    with pytest.raises(ValueError, match="config"):
        load_result(path)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_result(tmp_path / "absent.npz")


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
    with pytest.raises(ValueError, match="evil.npz"):
        load_result(path)
    assert not marker.exists()


def test_validation_layer_reexports_the_same_functions():
    import gtv.validation.results as vr

    assert vr.save_result is save_result and vr.load_result is load_result
    assert vr.load_result_of_kind is load_result_of_kind and vr.ResultFileError is ResultFileError


# -- damaged files (issue 14, "Results and caches") -------------------------------------------
def test_zero_byte_and_truncated_files_are_reported_by_name(saved):
    """Audit: a truncated file crashed with BadZipFile. Now: one ValueError naming the file."""
    path, _, _ = saved
    data = path.read_bytes()
    for size in (0, 10, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:size])
        with pytest.raises(ResultFileError, match="corrupt or truncated") as info:
            load_result(path)
        assert str(path) in str(info.value) and isinstance(info.value, ValueError)


def test_every_single_byte_flip_is_detected(saved):
    """Audit: a bit-flipped file. Flipping any one byte of the array payloads (a sample of
    positions across the file, the zip metadata included) gives a ValueError naming the file:
    zip CRC, zlib or the SHA-256 checksum catches it; never a silent load of other numbers."""
    path, _, _ = saved
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(1)
    positions = sorted(set(rng.integers(0, len(data), 60).tolist()))
    for pos in positions:
        bad = bytearray(data)
        bad[pos] ^= 0xFF
        path.write_bytes(bytes(bad))
        try:
            arrays, cfg = load_result(path)
        except ValueError as exc:
            assert str(path) in str(exc), pos
        else:  # a flip in a part of the zip that carries no data (e.g. a timestamp)
            good = dict(zip(*_unzip(bytes(data)), strict=True))
            assert all(np.array_equal(arrays[k], v) for k, v in good.items()), pos


def _unzip(blob):
    import io

    with np.load(io.BytesIO(blob), allow_pickle=False) as f:
        keys = [k for k in f.files if not k.startswith("__")]
        return keys, [f[k] for k in keys]


def test_scaled_array_in_a_valid_npz_fails_the_checksum(saved):
    """Audit: a cache whose array was changed but stays a valid npz (W[-1] x 1.5) was used."""
    path, _, _ = saved
    entries = _entries(path)
    entries["W"] = entries["W"].copy()
    entries["W"][-1] *= 1.5
    _rewrite(path, entries)
    with pytest.raises(ResultFileError, match="array data do not match the checksum") as info:
        load_result(path)
    assert str(path) in str(info.value)


def test_changed_dtype_shape_name_or_config_fail_the_checksum(saved):
    path, _, _ = saved
    base = _entries(path)
    edits = {
        "dtype": lambda e: e.update(steps=e["steps"].astype(np.int32)),
        "shape": lambda e: e.update(W=e["W"].reshape(4, 3, 5)),
        "name": lambda e: e.update(V=e.pop("W")),
        "extra": lambda e: e.update(extra=np.zeros(1)),
        "config": lambda e: e.update(__config__=np.array(json.dumps({"kind": "test_kind"}))),
    }
    for edit in edits.values():
        entries = {k: v.copy() for k, v in base.items()}
        edit(entries)
        _rewrite(path, entries)
        with pytest.raises(ValueError, match="checksum"):
            load_result(path)


def test_swapped_kind_is_named(saved):
    path, _, _ = saved
    with pytest.raises(ResultFileError, match="not a LinearTheory file.*'test_kind'"):
        load_result_of_kind(path, "linear_theory", "a LinearTheory")
    # the header kind is part of the checksum: relabelling it is detected too
    entries = _entries(path)
    header = json.loads(str(entries["__gtv__"]))
    entries["__gtv__"] = np.array(json.dumps({**header, "kind": "linear_theory"}))
    _rewrite(path, entries)
    with pytest.raises(ValueError, match="checksum"):
        load_result_of_kind(path, "linear_theory", "a LinearTheory")


def test_malformed_json_and_header_are_reported(saved):
    """Audit: malformed JSON gave a raw JSONDecodeError."""
    path, _, _ = saved
    base = _entries(path)
    for key, text, match in (
        ("__config__", '{"kind": "test_kind", ', "configuration is not valid JSON"),
        ("__config__", "[1, 2]", "not a JSON object"),
        ("__gtv__", "{not json", "header is not valid JSON"),
        ("__gtv__", '{"format": 2}', "malformed header"),
        ("__gtv__", json.dumps({"format": 99, "kind": "k", "sha256": "0"}), "format version 99"),
    ):
        _rewrite(path, {**base, key: np.array(text)})
        with pytest.raises(ResultFileError, match=match) as info:
            load_result(path)
        assert str(path) in str(info.value)
    _rewrite(path, {**base, "__config__": np.arange(3)})
    with pytest.raises(ResultFileError, match="not a text string"):
        load_result(path)


def test_legacy_files_load_with_a_warning_only_when_their_kind_matches(tmp_path):
    """Format-1 files (no header; written before checksums) still load, with a warning, when their
    configuration identifies the kind; otherwise they are rejected."""
    path = tmp_path / "old.npz"
    np.savez(path, x=np.arange(3.0), __config__=np.array(json.dumps({"figure": 1, "n": 3})))
    with pytest.warns(LegacyResultWarning, match="old.npz"):
        arrays, cfg = load_result_of_kind(
            path, "figure1_result", "a Figure 1 result", legacy=lambda c: c.get("figure") == 1
        )
    assert cfg == {"figure": 1, "n": 3} and np.array_equal(arrays["x"], np.arange(3.0))
    with pytest.raises(ResultFileError, match="not a Figure 2 result"):
        load_result_of_kind(
            path, "figure2_result", "a Figure 2 result", legacy=lambda c: c.get("figure") == 2
        )
    # default legacy rule: the configuration's own "kind"
    np.savez(path, x=np.zeros(1), __config__=np.array(json.dumps({"kind": "ntk_theory"})))
    with pytest.warns(LegacyResultWarning):
        load_result_of_kind(path, "ntk_theory", "an NTKTheory")
    with pytest.raises(ValueError, match="not a KernelEnsemble"):
        load_result_of_kind(path, "kernel_ensemble", "a KernelEnsemble")


def test_result_file_context_names_the_file(tmp_path):
    p = tmp_path / "f.npz"
    with pytest.raises(ResultFileError, match="f.npz.*missing 'gap'"):
        with result_file(p, "EnsembleResult"):
            {}["gap"]
    with pytest.raises(ResultFileError, match="f.npz.*eps must lie"):
        with result_file(p, "LinearTheory"):
            raise ValueError("eps must lie in (0, T)")


# -- caches --------------------------------------------------------------------------------------
def test_cache_entry_absent_corrupt_legacy_and_good(saved, tmp_path):
    path, arrays, _ = saved

    def load(p):
        return load_result_of_kind(p, "test_kind", "a test")[0]

    assert load_cache_entry(tmp_path / "absent.npz", load) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        good = load_cache_entry(path, load)
    np.testing.assert_array_equal(good["W"], arrays["W"])
    entries = _entries(path)
    entries["W"] = entries["W"] * 1.5
    _rewrite(path, entries)
    with pytest.warns(CacheEntryWarning, match="res.npz.*checksum") as rec:
        assert load_cache_entry(path, load) is None
    assert len(rec) == 1 and "\n" not in str(rec[0].message)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.warns(CacheEntryWarning, match="corrupt or truncated"):
        assert load_cache_entry(path, load) is None
    entries.pop("__gtv__")  # a legacy entry has no checksum: never trusted as a cache
    entries["__config__"] = np.array(json.dumps({"kind": "test_kind"}))
    _rewrite(path, entries)
    with pytest.warns(CacheEntryWarning, match="format 1"):
        assert load_cache_entry(path, load) is None


def test_cache_warning_is_one_line_on_stderr(tmp_path):
    """What a user of ``--cache`` sees for a damaged entry: exactly one line, naming the file."""
    bad = tmp_path / "entry.npz"
    bad.write_bytes(b"not a zip archive at all")
    code = (
        "import sys; from gtv.numerics.io import load_cache_entry, load_result; "
        "assert load_cache_entry(sys.argv[1], load_result) is None"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(bad)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and "CacheEntryWarning" in lines[0], lines
    assert "corrupt or truncated file (not an .npz archive)" in lines[0]


# -- atomic writes -------------------------------------------------------------------------------
def test_failed_save_keeps_the_previous_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = save_result(tmp_path / "r", {"x": np.arange(4.0)}, {"kind": "k", "v": 1})

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np.lib.format, "write_array", boom)
    with pytest.raises(OSError, match="disk full"):
        save_result(path, {"x": np.zeros(4)}, {"kind": "k", "v": 2})
    monkeypatch.undo()
    arrays, cfg = load_result(path)
    assert cfg["v"] == 1 and np.array_equal(arrays["x"], np.arange(4.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.npz"]


_CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    from gtv.numerics.io import save_result
    path = sys.argv[1]
    rng = np.random.default_rng(int(sys.argv[2]))
    i = 0
    while True:
        i += 1
        # random bits compress slowly: each save takes a while, so kills land mid-write
        x = rng.standard_normal(200_000)
        x[0] = i
        save_result(path, {"x": x, "check": np.array([x.sum()])}, {"kind": "k", "i": i})
        print(i, flush=True)
    """
)


def test_sigkill_mid_save_leaves_the_previous_complete_file(tmp_path):
    """Audit: a process killed mid-save left a 0-byte file. A real child process saves a 1.6 MB
    random array in a loop (about 0.1 s per save); after its first save it is SIGKILLed at a
    random moment, which lands inside a later save. Five children in turn write the same path.
    After each kill the final path is a complete file: it verifies, its array is the one its
    configuration names, and it is the last save the child finished (or the one it was finishing
    when the rename had happened)."""
    path = tmp_path / "res.npz"
    rng = np.random.default_rng(2)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    for k in range(5):
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(path), str(k)],
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        first = child.stdout.readline()  # the first save is complete
        assert first.strip() == "1"
        time.sleep(float(rng.uniform(0.0, 0.25)))
        child.send_signal(signal.SIGKILL)
        out, _ = child.communicate()
        done = [1] + [int(v) for v in out.split()]
        assert child.returncode == -signal.SIGKILL
        arrays, cfg = load_result_of_kind(path, "k", "a k")
        assert arrays["x"][0] == cfg["i"] and arrays["check"][0] == arrays["x"].sum()
        assert cfg["i"] in (done[-1], done[-1] + 1)
    # the writers were killed mid-write: their temporary files remain (hidden, never read)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "res.npz"]
    assert all(n.startswith(".res.npz.tmp-") for n in leftovers)
    assert leftovers, "no kill landed inside a save: the test did not exercise the atomic write"
