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


@pytest.fixture(scope="session")
def reference_store(tmp_path_factory):
    """The uninterrupted, serial run of ``small_spec()``."""
    path = tmp_path_factory.mktemp("sweep") / "reference.zarr"
    run_sweep(small_spec(), path, executor="serial")
    return path
