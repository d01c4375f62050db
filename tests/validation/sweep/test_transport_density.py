"""The linear class's densities: transported quantile grid (default) or Monte Carlo."""

import numpy as np
import xarray as xr

from gtv.numerics.features import ProductFeatures
from gtv.numerics.linear import sample_linear_ensemble, train_linear_ensemble
from gtv.numerics.schedules import get_schedule
from gtv.numerics.transport import transport_1d
from gtv.validation.figures.figure2 import FIGURE2_DATA
from gtv.validation.sweep import SweepSpec, run_sweep

FIXED = {"n_models": 4, "n_samples": 4000, "n_space": 4, "n_time": 4, "eps": 0.02, "n_bins": 40}


def _spec(density):
    return SweepSpec.from_dict({
        "model": "linear", "seed": 3, "record": ["gap_mass", "density"],
        "fixed": {**FIXED, "density": density}, "axes": {"P": [16]},
    })  # fmt: skip


def test_transport_records_equal_the_transport_of_the_same_models(tmp_path):
    spec = _spec("transport")
    run_sweep(spec, tmp_path / "t.zarr", executor="serial")
    ds = xr.open_zarr(tmp_path / "t.zarr")
    assert set(ds.data_vars) >= {"gap_mass", "density", "transport_error"}
    # independently: the same models (the task's stream), the same grid through their sampler
    sched = get_schedule("vp-linear")
    feats = ProductFeatures.uniform("gaussian", 1, 4, 4, (0.02, sched.T), (-1.5, 1.5))
    seed = spec.task_seed((0,))
    ens = train_linear_ensemble(
        FIGURE2_DATA, feats, 4, 16, 0.02, sched, ridge=0.1, seed=seed, keep_normal_equations=False
    )

    def run(x_T):
        return sample_linear_ensemble(ens, x_T.shape[1], n_steps=30, seed=seed, x_T=x_T)

    grid = transport_1d(run, 4, float(np.sqrt(sched.sigma2(sched.T))), 4000)
    edges = np.linspace(-2.0, 2.0, 41)
    assert np.array_equal(ds.gap_mass.values[0], grid.gap_mass(FIGURE2_DATA, 0.25))
    assert np.array_equal(ds.density.values[0], grid.histograms(edges))
    err = ds.transport_error.values[0]
    assert np.all(np.isfinite(err)) and np.all(err >= 0)


def test_monte_carlo_agrees_with_transport_within_its_noise(tmp_path):
    """Same models (same task stream), two ways to their gap masses: the Monte Carlo estimate
    is binomial around the transported (exact up to the grid) value. 5 SE per model, 4 models:
    false-positive rate < 3e-6."""
    run_sweep(_spec("transport"), tmp_path / "t.zarr", executor="serial")
    run_sweep(_spec("mc"), tmp_path / "m.zarr", executor="serial")
    t = xr.open_zarr(tmp_path / "t.zarr").gap_mass.values[0]
    m = xr.open_zarr(tmp_path / "m.zarr").gap_mass.values[0]
    se = np.sqrt(t * (1 - t) / 4000)
    assert np.all(np.abs(m - t) <= 5 * se + 1e-3), (m, t, se)
    assert "transport_error" not in xr.open_zarr(tmp_path / "m.zarr").data_vars


def test_density_setting_is_checked_and_fixed_across_the_sweep():
    import pytest

    with pytest.raises(ValueError, match="density must be one of"):
        _spec("exact")
    with pytest.raises(ValueError, match="density sets the shape"):
        SweepSpec.from_dict({"model": "linear", "fixed": FIXED, "axes": {"density": ["mc"]}})


def test_a_linear_store_from_before_transport_resumes_only_as_monte_carlo(tmp_path):
    """A store the linear class wrote before ``density`` existed (Monte Carlo, no
    ``transport_error``, spec without the key): read as ``density = "mc"``; its spec without
    the key (now transport) is refused with a hint, ``density = "mc"`` resumes it."""
    import pytest

    from gtv.validation.sweep import SweepStore

    from .conftest import as_written_before_transport

    path = tmp_path / "old.zarr"
    run_sweep(_spec("mc"), path, executor="serial")
    old_spec = SweepSpec.from_dict(as_written_before_transport(path))
    store = SweepStore.open(path)
    assert store.monte_carlo_before_transport and store.verify() == []
    with pytest.raises(ValueError, match="holds Monte Carlo densities"):
        run_sweep(old_spec, path, executor="serial")
    assert run_sweep(_spec("mc"), path, executor="serial").skipped == 1
