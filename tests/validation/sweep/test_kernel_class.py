"""The ``kernel`` model class: a sweep's store holds what the kernel API computes with the task's
seed, its theory record is the kernel theory's, and bad settings name their key. (Transported
densities, the default, are tested in test_kernel_transport.py; the store here is Monte Carlo.)"""

import numpy as np
import pytest
import xarray as xr

from gtv.numerics.kernel import KernelTheoryAt, ntk_theory, train_kernel_ensemble
from gtv.numerics.schedules import get_schedule
from gtv.validation.figures.figure2 import FIGURE2_DATA
from gtv.validation.sweep import DONE, SweepSpec, run_sweep
from gtv.validation.sweep.models import KernelPoint

from .conftest import arrays_of

TINY = {
    "n_models": 3, "n_samples": 40, "n_steps": 10, "n_bins": 16, "tau": 30.0, "ridge": 0.01,
    "theory_n_t": 6, "theory_n_hermite": 6, "query_x": [-1.0, 0.25], "query_t": [0.02, 0.3],
}  # fmt: skip
RECORD = ["gap_mass", "density", "var_dhat", "theory"]


def kernel_spec(**kw) -> SweepSpec:
    d = {"model": "kernel", "seed": 11, "record": RECORD, "fixed": dict(TINY),
         "axes": {"P": [8, 16]}}  # fmt: skip
    d.update(kw)
    return SweepSpec.from_dict(d)


@pytest.fixture(scope="module")
def kernel_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("kernel") / "kernel.zarr"
    report = run_sweep(kernel_spec(fixed={**TINY, "density": "mc"}), path, executor="serial")
    assert (report.ran, report.failures) == (2, {})
    return path


def test_store_equals_a_direct_call_of_the_kernel_api(kernel_store):
    """``density = "mc"``: the records are those of ``KernelEnsemble.sample`` called directly with
    the task's seed -- bit for bit (the class's Monte Carlo path before transport existed)."""
    from gtv.validation.ensembles import gap_mass, per_model_histograms

    spec = kernel_spec(fixed={**TINY, "density": "mc"})
    # the task stream leaves out how densities are formed: the default spec's models are these
    assert spec.task_seed((1,)).spawn_key == kernel_spec().task_seed((1,)).spawn_key
    got = arrays_of(kernel_store)
    assert "transport_error" not in got
    with xr.open_zarr(kernel_store) as ds:
        assert ds.var_dhat.dims == ("P", "query_t", "query_x")
        assert ds.density.dims == ("P", "model", "x")
        assert list(ds.P.values) == [8, 16]
    assert (got["status"] == DONE).all()
    sched = get_schedule("vp-linear")
    edges = np.linspace(-2.0, 2.0, TINY["n_bins"] + 1)
    for i, P in enumerate((8, 16)):
        seed = spec.task_seed((i,))
        ens = train_kernel_ensemble(
            FIGURE2_DATA, P, 3, 0.01, 30.0, sched, "relu", ridge=0.01, seed=seed
        )
        samples = ens.sample(40, n_steps=10, method="euler", seed=seed)  # (N, S, 1)
        xs = samples[:, :, 0]
        assert np.array_equal(got["gap_mass"][i], gap_mass(samples, FIGURE2_DATA, 0.25))
        assert np.array_equal(got["density"][i], per_model_histograms(samples, [edges]))
        # gap mass and density recomputed here in plain numpy
        far = np.min(np.abs(xs[:, :, None] - FIGURE2_DATA[None, None, :, 0]), axis=2) > 0.25
        assert np.array_equal(got["gap_mass"][i], far.mean(axis=1))
        dens = np.stack([np.histogram(x, edges)[0] for x in xs]) / (40 * (edges[1] - edges[0]))
        np.testing.assert_allclose(got["density"][i], dens, rtol=1e-13, atol=0)
        vals = np.stack(
            [ens.denoiser(np.array([-1.0, 0.25]), t)[:, :, 0] for t in (0.02, 0.3)], axis=1
        )  # (N, query_t, query_x)
        np.testing.assert_allclose(got["mean_dhat"][i], vals.mean(axis=0), rtol=1e-13, atol=0)
        np.testing.assert_allclose(got["var_dhat"][i], vals.var(axis=0, ddof=1), rtol=1e-13)
        assert np.all(got["var_dhat"][i] > 0)
    # the two points are different ensembles (P and stream both differ)
    assert not np.array_equal(got["mean_dhat"][0], got["mean_dhat"][1])


def test_theory_record_is_the_kernel_theory(kernel_store):
    got = arrays_of(kernel_store)
    theory = ntk_theory(FIGURE2_DATA, 0.01, "vp-linear", "relu", ridge=0.01, n_t=6, n_hermite=6)
    qx = np.array([-1.0, 0.25])
    for i, P in enumerate((8, 16)):
        bound = KernelTheoryAt(theory, 30.0, P)
        for k, t in enumerate((0.02, 0.3)):
            assert np.array_equal(got["theory_mean_dhat"][i, k], bound.mean_denoiser(qx, t)[:, 0])
            cov = bound.denoiser_covariance((qx, t), paired=True)[:, 0, 0]
            assert np.array_equal(got["theory_var_dhat"][i, k], cov)
    # first order in 1/P: the mean does not depend on P, the variance halves from P = 8 to 16
    np.testing.assert_array_equal(got["theory_mean_dhat"][0], got["theory_mean_dhat"][1])
    np.testing.assert_allclose(got["theory_var_dhat"][0], 2 * got["theory_var_dhat"][1], rtol=1e-12)
    assert np.all(got["theory_var_dhat"] > 0)


def test_theory_alone_needs_no_ensemble():
    """``record = ["theory"]`` computes only the theory (the same numbers as with the others)."""
    from gtv.validation.sweep.models import run_kernel

    p = KernelPoint(**{**TINY, "P": 16})
    seed = np.random.SeedSequence(0)
    only = run_kernel(p, seed, ("theory",))
    assert set(only) == {"theory_mean_dhat", "theory_var_dhat"}
    bound = KernelTheoryAt(
        ntk_theory(FIGURE2_DATA, 0.01, "vp-linear", "relu", ridge=0.01, n_t=6, n_hermite=6),
        30.0,
        16,
    )
    assert np.array_equal(only["theory_mean_dhat"][1], bound.mean_denoiser([-1.0, 0.25], 0.3)[:, 0])


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"P": 0}, r"P must be an integer >= 1, got 0"),
        ({"P": 12.5}, r"P must be an integer"),
        ({"tau": -1.0}, r"tau must be a number >= 0"),
        ({"tau": float("nan")}, r"tau must be a number >= 0"),
        ({"tau": "long"}, r"tau must be a number"),
        ({"ridge": -0.1}, r"ridge must be a finite number >= 0"),
        ({"ridge": float("inf")}, r"ridge must be a finite number >= 0"),
        ({"activation": "tanh"}, r"activation must be one of \('relu', 'erf'\)"),
        ({"theory_n_t": 0}, r"theory_n_t must be an integer >= 1"),
        ({"theory_n_hermite": 10**5}, r"theory_n_t, theory_n_hermite"),
        ({"n_models": 10**4, "P": 10**4}, r"n_models, P .*kernel regressions"),
        ({"query_t": [0.001]}, r"query_t must lie in \[eps, T\]"),
        ({"query_x": []}, r"query_x must be a non-empty sequence"),
        ({"n_models": 1}, r"n_models must be an integer >= 2"),
        ({"density": "exact"}, r"density must be one of \('transport', 'mc'\), got 'exact'"),
        ({"density": 1}, r"density must be"),
    ],
)
def test_bad_settings_name_the_key(change, match):
    with pytest.raises((ValueError, TypeError), match=match):
        KernelPoint(**{**TINY, **change})
    # ... and in a spec, with the grid point
    fixed = {**TINY, **{k: v for k, v in change.items() if k != "P"}}
    axes = {"P": [8, change["P"]]} if "P" in change else {"P": [8]}
    with pytest.raises(ValueError, match=match + r".*\(at grid point P="):
        SweepSpec.from_dict({"model": "kernel", "record": RECORD, "fixed": fixed, "axes": axes})


def test_bad_spec_keys_for_the_kernel_class():
    with pytest.raises(ValueError, match=r"fixed: unknown key\(s\) \['width'\]"):
        kernel_spec(fixed={**TINY, "width": 64})
    with pytest.raises(ValueError, match="axes.query_t: query_t sets the shape"):
        kernel_spec(axes={"query_t": [0.1, 0.2]}, fixed={"P": 8})
    # tau may be an axis, including the converged limit inf
    fixed = {k: v for k, v in TINY.items() if k != "tau"}
    spec = kernel_spec(axes={"tau": [10.0, float("inf")]}, fixed=fixed)
    assert spec.axes["tau"] == (10.0, float("inf"))
    assert spec.settings((1,))["tau"] == float("inf")


def test_finite_p_theory_record_is_the_finite_p_theory(tmp_path):
    """``theory = "finite-p"``: the record is FiniteKernelTheoryAt's (built here independently),
    it differs from the first order at small P, and the models are the same (a measurement
    setting does not change the task's stream)."""
    from gtv.numerics.kernel import FiniteKernelTheoryAt

    spec = kernel_spec(fixed={**TINY, "theory": "finite-p"}, axes={"P": [8]})
    path = tmp_path / "fp.zarr"
    run_sweep(spec, path, executor="serial")
    got = arrays_of(path)
    theory = ntk_theory(FIGURE2_DATA, 0.01, "vp-linear", "relu", ridge=0.01, n_t=6, n_hermite=6)
    bound = FiniteKernelTheoryAt(theory, 30.0, 8)
    first = KernelTheoryAt(theory, 30.0, 8)
    qx = np.array([-1.0, 0.25])
    for k, t in enumerate((0.02, 0.3)):
        cov = bound.denoiser_covariance((qx, t), paired=True)[:, 0, 0]
        assert np.array_equal(got["theory_var_dhat"][0, k], cov)
        assert np.array_equal(got["theory_mean_dhat"][0, k], bound.mean_denoiser(qx, t)[:, 0])
        assert not np.allclose(cov, first.denoiser_covariance((qx, t), paired=True)[:, 0, 0])
    assert spec.task_seed((0,)).entropy == kernel_spec(axes={"P": [8]}).task_seed((0,)).entropy
    assert spec.task_seed((0,)).spawn_key == kernel_spec(axes={"P": [8]}).task_seed((0,)).spawn_key
    with pytest.raises(ValueError, match="tau must be > 0 for theory 'finite-p'"):
        KernelPoint(**{**TINY, "theory": "finite-p", "tau": 0.0})
    with pytest.raises(ValueError, match="theory must be one of"):
        KernelPoint(**{**TINY, "theory": "second-order"})
