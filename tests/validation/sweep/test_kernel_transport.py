"""The kernel class's densities: transported quantile grid (the default) or Monte Carlo; stores
written before the class had the setting (Monte Carlo, spec without ``density``).

Agreement (statistics: tests/validation/agreement.py): the same trained kernel models (the same
seed) measured both ways. A transported density is exact up to its grid error (below 1e-3 in
total variation here, asserted), so the Monte Carlo histogram of model ``n`` is a multinomial
draw of ``S`` samples from its transported bin masses and its gap mass a binomial one. With
``ALPHA = 1e-3`` for each of the two X^2 checks and ``N = 4`` gap z-checks at
``P(|z| > 4.5) = 6.8e-6``, a correct implementation fails with probability below 2.1e-3
(asymptotic X^2).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
import zarr

from gtv.numerics.kernel import train_kernel_ensemble
from gtv.numerics.schedules import get_schedule
from gtv.numerics.transport import transport_1d
from gtv.validation.figures.figure2 import FIGURE2_DATA
from gtv.validation.sweep import DONE, SweepSpec, SweepStore, run_sweep
from gtv.validation.sweep.models import KernelPoint, run_kernel

from ..agreement import check_agreement
from .conftest import arrays_of, as_written_before_transport

S = 4000  # Monte Carlo samples per model
ALPHA = 1e-3
TINY = {
    "n_models": 3, "n_samples": 200, "n_steps": 10, "n_bins": 16, "tau": 30.0, "ridge": 0.01,
    "query_x": [-1.0, 0.25], "query_t": [0.02, 0.3],
}  # fmt: skip
RECORD = ["gap_mass", "density", "var_dhat"]


def kernel_spec(fixed=None, axes=None, record=RECORD) -> SweepSpec:
    return SweepSpec.from_dict({
        "model": "kernel", "seed": 11, "record": list(record),
        "fixed": dict(TINY if fixed is None else fixed), "axes": axes or {"P": [8, 16]},
    })  # fmt: skip


def test_transport_agrees_with_monte_carlo_model_by_model():
    """Four kernel models (P = 16, tau = 30), transported on 1024 grid points and sampled with
    ``S`` random start points: per-model gap masses and densities and the ensemble-mean density
    agree within the Monte Carlo noise; the negative controls (gap masses paired with the
    neighbouring model's, densities shifted by one bin) fail the same statistics."""
    common = {**TINY, "n_models": 4, "P": 16, "n_bins": 40}
    del common["n_samples"]
    seed = np.random.SeedSequence(7)
    record = ("gap_mass", "density", "var_dhat")
    tr = run_kernel(KernelPoint(**common, n_samples=1024), seed, record)
    mc = run_kernel(KernelPoint(**common, n_samples=S, density="mc"), seed, record)
    assert np.array_equal(tr["mean_dhat"], mc["mean_dhat"])  # the same trained models
    assert "transport_error" not in mc
    assert tr["transport_error"].shape == (4,) and np.all(tr["transport_error"] < 1e-3)
    width = 4.0 / 40

    def triple(d):
        return d["density"], 1.0 - d["density"].sum(axis=1) * width, d["gap_mass"]

    a = check_agreement("kernel sweep", triple(tr), triple(mc), width, S, ALPHA)
    assert a["z"].shape == (4,)


def test_default_is_transport_and_equals_the_transport_of_the_same_models(tmp_path):
    """No ``density`` key: the store holds the transported grid of the task's models (trained
    here independently with the task's seed, carried through ``KernelEnsemble.sample(x_T=)``),
    and ``transport_error`` has dims (axes, model)."""
    spec = kernel_spec()
    path = tmp_path / "t.zarr"
    run_sweep(spec, path, executor="serial")
    with xr.open_zarr(path) as ds:
        assert ds.transport_error.dims == ("P", "model")
        assert ds.gap_mass.dims == ("P", "model") and ds.density.dims == ("P", "model", "x")
        assert ds.transport_error.shape == (2, 3)
    got = arrays_of(path)
    assert (got["status"] == DONE).all()
    sched = get_schedule("vp-linear")
    edges = np.linspace(-2.0, 2.0, 17)
    for i, P in enumerate((8, 16)):
        seed = spec.task_seed((i,))
        ens = train_kernel_ensemble(
            FIGURE2_DATA, P, 3, 0.01, 30.0, sched, "relu", ridge=0.01, seed=seed
        )
        grid = transport_1d(
            lambda x, ens=ens: ens.sample(x.shape[1], n_steps=10, x_T=x), 3,
            float(np.sqrt(sched.sigma2(sched.T))), 200,
        )  # fmt: skip
        assert np.array_equal(got["gap_mass"][i], grid.gap_mass(FIGURE2_DATA, 0.25))
        assert np.array_equal(got["density"][i], grid.histograms(edges))
        assert np.array_equal(got["transport_error"][i], grid.error(edges))
        assert np.all(got["transport_error"][i] > 0)
    assert not np.array_equal(got["gap_mass"][0], got["gap_mass"][1])  # two ensembles


def test_records_without_densities_need_no_transport(tmp_path):
    spec = kernel_spec(record=["var_dhat"], axes={"P": [8]})
    run_sweep(spec, tmp_path / "v.zarr", executor="serial")
    assert "transport_error" not in arrays_of(tmp_path / "v.zarr")


def test_density_is_checked_and_fixed_across_the_sweep():
    with pytest.raises(
        ValueError, match=r"density must be one of \('transport', 'mc'\).*grid point P=8"
    ):
        kernel_spec(fixed={**TINY, "density": "grid"})
    with pytest.raises(ValueError, match="axes.density: density sets the shape"):
        kernel_spec(axes={"density": ["mc", "transport"]}, fixed={**TINY, "P": 8})


# -- stores written before the kernel class had `density` --------------------------------------
def test_an_old_monte_carlo_store_resumes_only_as_monte_carlo(tmp_path, capsys):
    """A half-finished old store: the old spec (no ``density``, which now means transport) is
    refused with a hint -- no task is forgotten or mixed; ``density = "mc"`` resumes it, running
    only the missing task, and the store ends equal to a fresh Monte Carlo run."""
    from gtv.validation.cli import main

    mc_spec = kernel_spec(fixed={**TINY, "density": "mc"})
    fresh = tmp_path / "fresh.zarr"
    run_sweep(mc_spec, fresh, executor="serial")
    old = tmp_path / "old.zarr"
    run_sweep(mc_spec, old, executor="serial")
    # the second task never finished: no record, NaN data, status pending
    (old / "gtv_tasks" / "1.json").unlink()
    group = zarr.open_group(str(old), mode="r+")
    for name in ("gap_mass", "density", "mean_dhat", "var_dhat", "seconds"):
        group[name][1] = np.nan
    group["status"][1] = 0
    as_written_before_transport(old)
    store = SweepStore.open(old)
    assert store.monte_carlo_before_transport
    assert store.spec.fixed["density"] == "mc" and "transport_error" not in store.variables
    assert store.verify() == []
    with pytest.raises(ValueError, match=r"holds Monte Carlo densities.*density = \"mc\""):
        run_sweep(kernel_spec(), old, executor="serial")
    assert store.status().tolist() == [DONE, 0]  # nothing forgotten
    assert main(["sweep", "status", str(old), "--verify", "--json", str(tmp_path / "s.json")]) == 0
    st = json.loads((tmp_path / "s.json").read_text())
    assert (st["density"], st["done"], st["pending"], st["corrupt"]) == ("mc", 1, 1, [])
    assert "density 'mc'" in capsys.readouterr().out
    rep = run_sweep(mc_spec, old, executor="serial")
    assert (rep.ran, rep.skipped, rep.failures) == (1, 1, {})
    a, b = arrays_of(old), arrays_of(fresh)
    assert set(a) == set(b)
    for name in a:
        assert np.array_equal(a[name], b[name]), name
    # --force replaces it by a transported store
    run_sweep(kernel_spec(axes={"P": [8]}), old, executor="serial", force=True)
    assert "transport_error" in arrays_of(old)


def test_a_new_transport_store_is_not_mistaken_for_an_old_one(tmp_path):
    path = tmp_path / "t.zarr"
    run_sweep(kernel_spec(axes={"P": [8]}), path, executor="serial")
    store = SweepStore.open(path)
    assert not store.monte_carlo_before_transport and store.spec.fixed == TINY
    assert run_sweep(kernel_spec(axes={"P": [8]}), path, executor="serial").skipped == 1


def test_a_store_lacking_an_array_its_spec_records_is_refused(tmp_path):
    """Not taken for corrupt tasks (which a rerun would forget and then fail to write)."""
    path = tmp_path / "t.zarr"
    spec = kernel_spec(fixed={**TINY, "density": "transport"}, axes={"P": [8]})
    run_sweep(spec, path, executor="serial")
    with pytest.warns(UserWarning):  # zarr: "not part of the v3 spec", gtv_tasks not an array
        del zarr.open_group(str(path), mode="r+")["transport_error"]
        zarr.consolidate_metadata(str(path))
    with pytest.raises(ValueError, match=r"lacks the array\(s\) \['transport_error'\]"):
        run_sweep(spec, path, executor="serial")
    assert (path / "gtv_tasks" / "0.json").exists()
