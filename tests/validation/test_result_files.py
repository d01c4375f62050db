"""Every result class under damaged or mismatched files (issue 14, "Results and caches";
docs/reliability.md): the wrong kind, malformed JSON, NaN arrays, wrong shapes and out-of-range
configuration values each give one ValueError naming the file; a legacy (format-1) file of the
right kind still loads with a warning. One small object of each audited class."""

import json

import numpy as np
import pytest

from gtv.numerics.binned_affine import train_binned_affine_ensemble
from gtv.numerics.features import ProductFeatures
from gtv.numerics.io import LegacyResultWarning, ResultFileError, load_result, save_result
from gtv.numerics.linear import LinearTheory, SecondOrderMoments, linear_model_theory
from gtv.numerics.linear.second_order import second_order_moments
from gtv.numerics.two_layer import TwoLayerTrajectory, train_two_layer_ensemble
from gtv.validation.ensembles import EnsembleResult, summarize_ensemble
from gtv.validation.figures.figure1 import Figure1Result, compute_figure1

EPS = 0.01
DATA = np.array([[-1.0], [0.0], [1.0]])


@pytest.fixture(scope="module")
def objects():
    """name -> (class, object); all small (well under a second together, numba aside)."""
    rng = np.random.default_rng(0)
    feats = ProductFeatures.uniform("gaussian", 1, 3, 2, (EPS, 1.0))
    theory = linear_model_theory(DATA, feats, EPS, ridge=0.1, n_t=2)
    edges = [np.linspace(-1.5, 1.5, 7)]
    ens = summarize_ensemble(rng.standard_normal((3, 50, 1)), DATA, edges, 0.25, {"kind": "gauss"})
    return {
        "EnsembleResult": (EnsembleResult, ens),
        "LinearTheory": (LinearTheory, theory),
        "SecondOrderMoments": (SecondOrderMoments, second_order_moments(theory)),
        "TwoLayerTrajectory": (
            TwoLayerTrajectory,
            train_two_layer_ensemble(DATA, 4, 2, 5, EPS, 0.01, [0.0, 0.02], activation="erf"),
        ),
        "Figure1Result": (Figure1Result, compute_figure1(n_grid=4, times=(0.1,), progress=False)),
        "BinnedAffineEnsemble": (
            type(b := train_binned_affine_ensemble(0.0, 1.0, [EPS, 0.5, 1.0], 2, 20)),
            b,
        ),
    }


NAMES = [
    "EnsembleResult",
    "LinearTheory",
    "SecondOrderMoments",
    "TwoLayerTrajectory",
    "Figure1Result",
    "BinnedAffineEnsemble",
]


def _save(objects, name, tmp_path):
    cls, obj = objects[name]
    out = obj.save(tmp_path / name)
    return cls, out[0] if isinstance(out, tuple) else out


def _resave(path, edit_arrays=None, edit_config=None):
    """Rewrite a file with save_result (valid checksum) after editing its arrays or config,
    keeping its kind: the loader's own consistency checks must catch the edit."""
    with np.load(path, allow_pickle=False) as f:
        kind = json.loads(str(f["__gtv__"]))["kind"]
    arrays, cfg = load_result(path)
    if edit_arrays:
        edit_arrays(arrays)
    if edit_config:
        edit_config(cfg)
    save_result(path, arrays, cfg, kind=kind)


@pytest.mark.parametrize("name", NAMES)
def test_round_trip(objects, name, tmp_path):
    cls, path = _save(objects, name, tmp_path)
    back = cls.load(path)
    assert type(back) is cls


@pytest.mark.parametrize("name", NAMES)
def test_wrong_kind_is_named(objects, name, tmp_path):
    """Audit: loading another result's file gave a KeyError."""
    cls, _ = objects[name]
    other = "LinearTheory" if name != "LinearTheory" else "EnsembleResult"
    _, path = _save(objects, other, tmp_path)
    with pytest.raises(ResultFileError, match=r"not an? .*file \(its kind is") as info:
        cls.load(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("name", NAMES)
def test_malformed_json_is_named(objects, name, tmp_path):
    """Audit: malformed JSON gave a raw JSONDecodeError."""
    cls, path = _save(objects, name, tmp_path)
    with np.load(path, allow_pickle=False) as f:
        entries = {k: f[k] for k in f.files}
    entries["__config__"] = np.array(str(entries["__config__"])[:-3])
    with open(path, "wb") as fh:
        np.savez(fh, **entries)
    with pytest.raises(ValueError, match="not valid JSON") as info:
        cls.load(path)
    assert str(path) in str(info.value)


# the largest floating-point array of each object (a NaN there must not load)
_FLOAT_ARRAY = {
    "EnsembleResult": "histograms",
    "LinearTheory": "cov_g_proxy",
    "SecondOrderMoments": "T3",
    "TwoLayerTrajectory": "W",
    "Figure1Result": "frac",
    "BinnedAffineEnsemble": "theta",
}


@pytest.mark.parametrize("name", NAMES)
def test_nan_array_is_rejected(objects, name, tmp_path):
    """Audit: NaN arrays loaded silently (here with a valid checksum: the object's own check)."""
    cls, path = _save(objects, name, tmp_path)

    def poison(arrays):
        a = arrays[_FLOAT_ARRAY[name]].astype(float)
        a.reshape(-1)[a.size // 2] = np.nan
        arrays[_FLOAT_ARRAY[name]] = a

    _resave(path, edit_arrays=poison)
    with pytest.raises(ValueError, match="finite") as info:
        cls.load(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("name", NAMES)
def test_wrong_shape_is_rejected(objects, name, tmp_path):
    """Audit: wrong shapes loaded silently."""
    cls, path = _save(objects, name, tmp_path)
    key = _FLOAT_ARRAY[name]
    _resave(path, edit_arrays=lambda a: a.update({key: a[key][..., :-1]}))
    with pytest.raises(ValueError) as info:
        cls.load(path)
    assert str(path) in str(info.value) and "shape" in str(info.value)


_EPS_EDIT = {
    "LinearTheory": lambda c: c.update(eps=-1),
    "TwoLayerTrajectory": lambda c: c.update(eps=-1),
    "Figure1Result": lambda c: c.update(T=0.05),  # times (0.1,) outside (0, T]
    "BinnedAffineEnsemble": lambda c: c.update(bin_edges=[-1, 0.5, 1.0]),
    "EnsembleResult": lambda c: c.update(gap_distance=-1),
    "SecondOrderMoments": lambda c: c.update(ridge=-1),
}


@pytest.mark.parametrize("name", NAMES)
def test_out_of_range_config_is_rejected(objects, name, tmp_path):
    """Audit: ``eps = -1`` (and other out-of-range settings) loaded silently."""
    cls, path = _save(objects, name, tmp_path)
    _resave(path, edit_config=_EPS_EDIT[name])
    with pytest.raises(ValueError) as info:
        cls.load(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("name", ["EnsembleResult", "LinearTheory", "Figure1Result"])
def test_format_1_file_of_the_right_kind_loads_with_a_warning(objects, name, tmp_path):
    """Back-compatibility: a file written before the header (no format, no checksum) whose
    configuration identifies its kind loads with a LegacyResultWarning."""
    cls, path = _save(objects, name, tmp_path)
    with np.load(path, allow_pickle=False) as f:
        entries = {k: f[k] for k in f.files if k != "__gtv__"}
    with open(path, "wb") as fh:
        np.savez(fh, **entries)
    with pytest.warns(LegacyResultWarning, match=name):
        cls.load(path)


def _all_loaders():
    """(loader, kind) for every result class with a ``load`` (one import per module)."""
    from gtv.numerics.binned_affine import BinnedAffineEnsemble
    from gtv.numerics.fokker_planck.result import FokkerPlanckResult
    from gtv.numerics.kernel import KernelEnsemble, NTKTheory
    from gtv.numerics.kernel.finite_prediction import FiniteKernelTheoryAt
    from gtv.numerics.kernel.prediction import KernelTheoryAt
    from gtv.numerics.linear.cavity import CavityMoments
    from gtv.numerics.linear.prediction import CavityLinear, FirstOrderLinear, SecondOrderLinear
    from gtv.validation.figures.figure2 import Figure2Result
    from gtv.validation.figures.figure3 import Figure3Result
    from gtv.validation.linear.comparison import LinearComparison
    from gtv.validation.linear.target_noise import TargetNoiseComparison
    from gtv.validation.linear.validity_map import ValidityMap
    from gtv.validation.ntk.result import NTKComparison
    from gtv.validation.predictions import TheoryPredictions
    from gtv.validation.serial.experiments import ExperimentResult
    from gtv.validation.serial.learned_experiment import LearnedResult

    return {
        "EnsembleResult": (EnsembleResult.load, "ensemble_result"),
        "LinearTheory": (LinearTheory.load, "linear_theory"),
        "SecondOrderMoments": (SecondOrderMoments.load, "second_order_moments"),
        "TwoLayerTrajectory": (TwoLayerTrajectory.load, "two_layer_trajectory"),
        "Figure1Result": (Figure1Result.load, "figure1_result"),
        "Figure2Result": (Figure2Result.load, "figure2_result"),
        "Figure3Result": (Figure3Result.load, "figure3_result"),
        "BinnedAffineEnsemble": (BinnedAffineEnsemble.load, "binned_affine_ensemble"),
        "FokkerPlanckResult": (FokkerPlanckResult.load, "fokker_planck_result"),
        "KernelEnsemble": (KernelEnsemble.load, "kernel_ensemble"),
        "NTKTheory": (NTKTheory.load, "ntk_theory"),
        "KernelTheoryAt": (KernelTheoryAt.load, "kernel_theory_at"),
        "FiniteKernelTheoryAt": (FiniteKernelTheoryAt.load, "finite_kernel_theory_at"),
        "CavityMoments": (CavityMoments.load, "cavity_moments"),
        "FirstOrderLinear": (FirstOrderLinear.load, "first_order_linear"),
        "SecondOrderLinear": (SecondOrderLinear.load, "second_order_linear"),
        "CavityLinear": (CavityLinear.load, "cavity_linear"),
        "TheoryPredictions": (TheoryPredictions.load, "theory_predictions"),
        "NTKComparison": (NTKComparison.load, "ntk_comparison"),
        "LinearComparison": (LinearComparison.load, "linear_comparison"),
        "ValidityMap": (ValidityMap.load, "validity_map"),
        "TargetNoiseComparison": (TargetNoiseComparison.load, "target_noise_comparison"),
        "ExperimentResult": (ExperimentResult.load, "serial-experiment"),
        "LearnedResult": (LearnedResult.load, "serial-learned"),
    }


LOADERS = [
    "EnsembleResult", "LinearTheory", "SecondOrderMoments", "TwoLayerTrajectory",
    "Figure1Result", "Figure2Result", "Figure3Result", "BinnedAffineEnsemble",
    "FokkerPlanckResult", "KernelEnsemble", "NTKTheory", "KernelTheoryAt", "FiniteKernelTheoryAt",
    "CavityMoments", "FirstOrderLinear", "SecondOrderLinear", "CavityLinear", "TheoryPredictions",
    "NTKComparison", "LinearComparison", "ValidityMap", "TargetNoiseComparison",
    "ExperimentResult", "LearnedResult",
]  # fmt: skip


@pytest.mark.parametrize("name", LOADERS)
def test_every_loader_reports_an_incomplete_file_by_name(name, tmp_path):
    """A verified file of the right kind that lacks the entries the object needs (written by
    something other than the class's ``save``) is one ValueError naming the file for every
    loader, never a KeyError/IndexError/TypeError; the kind each class saves is the one its
    loader expects (checked against the wrong kind too)."""
    load, kind = _all_loaders()[name]
    path = save_result(tmp_path / "incomplete", {"unrelated": np.zeros(2)}, {"x": 1}, kind=kind)
    with pytest.raises(ResultFileError) as info:
        load(path)
    assert str(path) in str(info.value) and "its kind is" not in str(info.value)
    other = save_result(tmp_path / "other", {}, {}, kind="something_else")
    with pytest.raises(ResultFileError, match="its kind is 'something_else'"):
        load(other)


def _small_figure():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 2))
    fig.subplots().plot([0, 1, 2], [1, 0, 1])
    return fig


def test_save_figure_parallel_writes_every_format_whole(tmp_path):
    """``parallel``: the PNG rendered in a forked child is the same file as rendered here; no
    temporary file is left."""
    import gtv.validation.results as results

    fig = _small_figure()
    serial = results.save_figure(fig, tmp_path / "a", ("png", "pdf"))
    par = results.save_figure(fig, tmp_path / "b", ("png", "pdf"), parallel=True)
    assert [p.name for p in par] == ["b.png", "b.pdf"]
    assert serial[0].read_bytes() == par[0].read_bytes()
    assert par[1].read_bytes().startswith(b"%PDF")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pdf", "a.png", "b.pdf", "b.png"]


def test_save_figure_rerenders_a_format_whose_child_failed(tmp_path, monkeypatch):
    import os

    import gtv.validation.results as results

    parent = os.getpid()
    real = results._write_figure_file

    def failing_in_children(fig, path, fmt, dpi):
        if os.getpid() != parent:
            raise RuntimeError("a child that dies")
        real(fig, path, fmt, dpi)

    monkeypatch.setattr(results, "_write_figure_file", failing_in_children)
    paths = results.save_figure(_small_figure(), tmp_path / "c", ("png", "pdf"), parallel=True)
    assert all(p.exists() and p.stat().st_size > 100 for p in paths)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pdf", "c.png"]
