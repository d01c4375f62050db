"""The zarr store: labelled, reopened by xarray, other specs refused, corruption detected."""

import json

import numpy as np
import pytest
import xarray as xr

from gtv.validation.sweep import DONE, FAILED, SweepStore, run_sweep
from gtv.validation.sweep.runner import Task, run_task

from .conftest import arrays_of, small_spec


def test_store_is_labelled_and_complete(reference_store):
    spec = small_spec()
    with xr.open_zarr(reference_store) as ds:
        assert ds.gap_mass.dims == ("eps", "P", "model")
        assert ds.density.dims == ("eps", "P", "model", "x")
        assert ds.var_dhat.dims == ("eps", "P", "query_t", "query_x")
        assert list(ds.P.values) == [8, 16, 32] and list(ds.eps.values) == [0.01, 0.02]
        assert json.loads(ds.attrs["gtv_spec"]) == spec.to_dict()
        assert ds.attrs["gtv_spec_hash"] == spec.spec_hash()
        assert "numba" in json.loads(ds.attrs["gtv_versions"])
        assert (ds.status.values == DONE).all()
        assert np.isfinite(ds.gap_mass.values).all()
        # a density integrates to the share of samples inside the histogram range
        width = float(ds.x[1] - ds.x[0])
        assert np.all(ds.density.sum("x").values * width <= 1 + 1e-12)


def test_each_region_equals_its_task_run_alone(reference_store):
    """The store holds exactly what one task computes (independent of the others)."""
    spec = small_spec()
    ix = (1, 2)
    _, state, arrays, _ = run_task(
        Task(ix, spec.model, spec.settings(ix), spec.task_seed(ix), spec.record)
    )
    assert state == "done"
    got = arrays_of(reference_store)
    for name in ("gap_mass", "density", "var_dhat", "mean_dhat"):
        assert np.array_equal(got[name][ix], arrays[name]), name


def test_subset_spec_reproduces_the_full_run(tmp_path, reference_store):
    sub = small_spec(eps=[0.02], P=[32, 8])
    run_sweep(sub, tmp_path / "sub.zarr", executor="serial")
    full, part = arrays_of(reference_store), arrays_of(tmp_path / "sub.zarr")
    for name in ("gap_mass", "density", "var_dhat"):
        assert np.array_equal(part[name][0, 0], full[name][1, 2])
        assert np.array_equal(part[name][0, 1], full[name][1, 0])


def test_rerun_skips_finished_tasks_and_other_specs_are_refused(tmp_path):
    path = tmp_path / "s.zarr"
    first = run_sweep(small_spec(P=[8, 16]), path, executor="serial")
    assert (first.ran, first.skipped) == (2, 0)
    again = run_sweep(small_spec(P=[8, 16]), path, executor="serial")
    assert (again.ran, again.skipped) == (0, 2)
    with pytest.raises(ValueError, match="another spec.*--force"):
        run_sweep(small_spec(P=[8, 32]), path, executor="serial")
    forced = run_sweep(small_spec(P=[8, 32]), path, executor="serial", force=True)
    assert forced.ran == 2
    assert list(xr.open_zarr(path).P.values) == [8, 32]


def test_a_corrupt_region_is_detected_and_recomputed(tmp_path, reference_store):
    path = tmp_path / "c.zarr"
    spec = small_spec(P=[8, 16])
    run_sweep(spec, path, executor="serial")
    store = SweepStore.open(path)
    assert store.verify() == []
    chunks = sorted(p for p in (path / "gap_mass").rglob("*") if p.is_file() and "c" in p.parts)
    assert chunks, "no chunk files found"
    data = bytearray(chunks[0].read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunks[0].write_bytes(bytes(data))
    assert len(store.verify()) == 1
    with pytest.warns(UserWarning, match="failed their checksum"):
        rep = run_sweep(spec, path, executor="serial")
    assert (rep.ran, rep.recomputed_corrupt) == (1, 1)
    assert store.verify() == []
    ref = arrays_of(reference_store)
    assert np.array_equal(arrays_of(path)["gap_mass"], ref["gap_mass"][0, :2])


def test_a_failing_task_is_recorded_and_the_rest_continue(tmp_path, monkeypatch):
    import gtv.validation.sweep.models as models

    real = models.run_linear

    def flaky(p, seed, record):
        if p.P == 16:
            raise RuntimeError("boom at P=16")
        return real(p, seed, record)

    monkeypatch.setitem(
        models.MODEL_CLASSES, "linear", models.MODEL_CLASSES["linear"].__class__(
            "linear", models.LinearPoint, flaky, models.RECORDS,
            models.MODEL_CLASSES["linear"].per_record_fixed,
        ),
    )  # fmt: skip
    path = tmp_path / "f.zarr"
    rep = run_sweep(small_spec(P=[8, 16, 32]), path, executor="serial")
    assert list(rep.failures) == [(1,)] and "boom at P=16" in rep.failures[(1,)]
    store = SweepStore.open(path)
    assert store.status().tolist() == [DONE, FAILED, DONE]
    assert "boom" in store.failures()[(1,)]
    assert int(xr.open_zarr(path).status.values.ravel()[1]) == FAILED
    monkeypatch.undo()
    rep = run_sweep(small_spec(P=[8, 16, 32]), path, executor="serial")  # retried
    assert (rep.ran, rep.skipped, len(rep.failures)) == (1, 2, 0)


def test_not_a_store(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(ValueError, match="not a gtv sweep store|cannot be read"):
        SweepStore.open(tmp_path / "x")
