"""Small sweeps shared by the sweep tests (tiny sizes: each task well under a second)."""

import pytest

from gtv.validation.sweep import SweepSpec, run_sweep

SMALL = {"n_models": 4, "n_samples": 60, "n_space": 3, "n_time": 3}


def small_spec(**axes) -> SweepSpec:
    return SweepSpec.from_dict(
        {
            "model": "linear",
            "seed": 5,
            "record": ["gap_mass", "density", "var_dhat"],
            "fixed": dict(SMALL),
            "axes": axes or {"eps": [0.01, 0.02], "P": [8, 16, 32]},
        }
    )


def arrays_of(path) -> dict:
    import xarray as xr

    with xr.open_zarr(path) as ds:
        return {name: ds[name].values for name in ds.data_vars if name != "seconds"}


def as_written_before_transport(path) -> dict:
    """Make a ``density = "mc"`` store look like one written before its model class had the
    ``density`` setting (Monte Carlo the only way; the data are the same bit for bit,
    test_kernel_class.py): drop the key from the recorded spec and its hash. Returns that
    spec's dict."""
    import json

    meta = path / "zarr.json"
    root = json.loads(meta.read_text())
    spec = json.loads(root["attributes"]["gtv_spec"])
    assert spec["fixed"].pop("density") == "mc"
    root["attributes"]["gtv_spec"] = json.dumps(spec)
    root["attributes"]["gtv_spec_hash"] = SweepSpec.from_dict(spec).spec_hash()
    meta.write_text(json.dumps(root))
    return spec


@pytest.fixture(scope="session")
def reference_store(tmp_path_factory):
    """The uninterrupted, serial run of ``small_spec()``."""
    path = tmp_path_factory.mktemp("sweep") / "reference.zarr"
    run_sweep(small_spec(), path, executor="serial")
    return path
