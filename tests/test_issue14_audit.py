"""The audit of issue 14, one case per reported failure, reproduced as a user would.

Each case runs the call, command or file operation the audit reported and asserts the fixed
behaviour: one clean ``ValueError``/``TypeError`` naming the argument (or the file), a one-line
``gtv: error:`` with a non-zero exit code and no traceback, a correct finite result, a warning,
or a recomputation. Most failures also have a dedicated, more thorough test elsewhere
(docs/reliability.md lists them); this file is the audit list itself, runnable as one file:
``python -m pytest -q tests/test_issue14_audit.py``.

Sections follow the issue: result files and caches (``FILES``), sizes (``SIZES``), non-finite
numbers (``NAN``), samplers, seeds, schedules, and errors that did not name their argument.

Shared work: the small result objects of the file cases, the Figure 3 panel cache and the
command-line cases (all of them in ONE child process that runs ``python -m gtv.validation.cli``
per case through :mod:`runpy`, so imports and numba loading are paid once) are module fixtures.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from gtv.numerics.exact import sample_exact_denoiser
from gtv.numerics.features import ProductFeatures
from gtv.numerics.io import (
    CacheEntryWarning,
    ResultFileError,
    load_cache_entry,
    load_result,
    save_result,
)
from gtv.numerics.linear import (
    LinearTheory,
    SecondOrderMoments,
    linear_model_theory,
    train_linear_ensemble,
)
from gtv.numerics.linear.second_order import second_order_moments
from gtv.numerics.pfode import DivergenceWarning, divergence_bound
from gtv.numerics.posterior import posterior_stats
from gtv.numerics.schedules import get_schedule
from gtv.numerics.two_layer import TwoLayerTrajectory, train_two_layer_ensemble
from gtv.validation.ensembles import EnsembleResult, gap_mass, summarize_ensemble
from gtv.validation.figures.figure1 import Figure1Result, compute_figure1
from gtv.validation.stats import bootstrap_ci

DATA = np.array([[-1.0], [0.0], [1.0]])
EPS = 0.01


def _one_warning(category, f):
    """``f()`` and the messages of the ``category`` warnings it gave."""
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        out = f()
    return out, [str(w.message) for w in rec if issubclass(w.category, category)]


# == Result files and caches ====================================================================
@pytest.fixture(scope="module")
def objects():
    """One small object of each class whose loader the audit named (about 3 s together)."""
    feats = ProductFeatures.uniform("gaussian", 1, 3, 2, (EPS, 1.0))
    theory = linear_model_theory(DATA, feats, EPS, ridge=0.1, n_t=2)
    rng = np.random.default_rng(0)
    edges = [np.linspace(-1.5, 1.5, 7)]
    return {
        "EnsembleResult": (
            EnsembleResult,
            summarize_ensemble(rng.standard_normal((3, 50, 1)), DATA, edges, 0.25, {"kind": "g"}),
        ),
        "LinearTheory": (LinearTheory, theory),
        "SecondOrderMoments": (SecondOrderMoments, second_order_moments(theory)),
        "TwoLayerTrajectory": (
            TwoLayerTrajectory,
            train_two_layer_ensemble(DATA, 4, 2, 5, EPS, 0.01, [0.0, 0.02], activation="erf"),
        ),
        "Figure1Result": (Figure1Result, compute_figure1(n_grid=4, times=(0.1,), progress=False)),
    }


LOADERS = ["EnsembleResult", "LinearTheory", "SecondOrderMoments", "TwoLayerTrajectory",
           "Figure1Result"]  # fmt: skip


def _save(objects, name: str, folder: Path) -> Path:
    out = objects[name][1].save(folder / name)
    return out[0] if isinstance(out, tuple) else out


def _entries(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def _write_npz(path: Path, entries: dict[str, np.ndarray]) -> None:
    """Rewrite ``path`` as a plain, valid ``.npz`` (no new checksum): a hand-edited file."""
    with open(path, "wb") as fh:
        np.savez(fh, **entries)


def _resave(path: Path, edit_arrays=None, edit_config=None) -> None:
    """Rewrite ``path`` with a valid checksum and the same kind after an edit: only the
    loader's own checks can catch it."""
    kind = json.loads(str(_entries(path)["__gtv__"]))["kind"]
    arrays, cfg = load_result(path)
    if edit_arrays:
        edit_arrays(arrays)
    if edit_config:
        edit_config(cfg)
    save_result(path, arrays, cfg, kind=kind)


def test_files_save_killed_mid_write_leaves_no_damaged_file(tmp_path, monkeypatch):
    """Audit: save_result wrote straight to the final path, so a process killed mid-save left a
    0-byte file. Here the save is interrupted (KeyboardInterrupt, as a kill at that moment)
    while the first array is being written; what is on disk at the final path at that moment is
    what a killed process leaves: nothing for a first save, the previous complete file for a
    replacement."""
    import gtv.numerics.io as io

    path = tmp_path / "result.npz"
    at_kill: list[bytes | None] = []
    real_write = np.lib.format.write_array

    def killed(fp, array, *args, **kwargs):
        real_write(fp, array.reshape(-1)[: array.size // 2], allow_pickle=False)  # half written
        at_kill.append(path.read_bytes() if path.exists() else None)
        raise KeyboardInterrupt

    monkeypatch.setattr(io.np.lib.format, "write_array", killed)
    with pytest.raises(KeyboardInterrupt):
        save_result(path, {"x": np.arange(1000.0)}, {"kind": "audit"})
    assert at_kill == [None] and not path.exists()  # no 0-byte (or partial) file
    monkeypatch.setattr(io.np.lib.format, "write_array", real_write)
    save_result(path, {"x": np.arange(1000.0)}, {"kind": "audit"})
    previous = path.read_bytes()
    monkeypatch.setattr(io.np.lib.format, "write_array", killed)
    with pytest.raises(KeyboardInterrupt):
        save_result(path, {"x": np.zeros(1000)}, {"kind": "audit"})
    assert at_kill[-1] == previous and path.read_bytes() == previous
    arrays, _ = load_result(path)  # verifies the checksum
    np.testing.assert_array_equal(arrays["x"], np.arange(1000.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.npz"]  # no temporary left


def _truncate(p: Path) -> None:
    b = p.read_bytes()
    p.write_bytes(b[: len(b) // 2])


def _flip(p: Path) -> None:
    """Flip one byte in the middle of the stored data of the largest array (a flip in a zip
    header's time stamp would be harmless and undetectable)."""
    import zipfile

    with zipfile.ZipFile(p) as zf:
        info = max(zf.infolist(), key=lambda i: i.compress_size)
    b = bytearray(p.read_bytes())
    h = info.header_offset  # local header: 30 bytes, then name and extra field of the lengths
    start = (
        h
        + 30
        + int.from_bytes(b[h + 26 : h + 28], "little")
        + int.from_bytes(b[h + 28 : h + 30], "little")
    )
    b[start + info.compress_size // 2] ^= 0xFF
    p.write_bytes(bytes(b))


DAMAGES = {"truncated": _truncate, "bit-flipped": _flip}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_files_damaged_ntk_cache_is_reported_not_a_traceback(objects, tmp_path, damage):
    """Audit: a truncated or bit-flipped ``gtv validate ntk --cache`` entry crashed with a
    BadZipFile traceback. The cache reads its entries with ``load_cache_entry(path,
    TwoLayerTrajectory.load)`` (validation/ntk/training.py): now ``None`` (retrain) and one
    CacheEntryWarning naming the file."""
    path = _save(objects, "TwoLayerTrajectory", tmp_path)
    assert isinstance(load_cache_entry(path, TwoLayerTrajectory.load), TwoLayerTrajectory)
    DAMAGES[damage](path)
    got, msgs = _one_warning(
        CacheEntryWarning, lambda: load_cache_entry(path, TwoLayerTrajectory.load)
    )
    assert got is None and len(msgs) == 1 and str(path) in msgs[0] and "recomputed" in msgs[0]


@pytest.fixture(scope="module")
def figure3_cache(tmp_path_factory):
    """A one-panel Figure 3 run with its panel cache: (config, result, cache folder, bytes)."""
    from gtv.validation.figures.figure3 import Figure3Config, compute_figure3

    cfg = Figure3Config(
        rotations=(0.0,), kinds=("fourier",), n_space=4, n_time=3, P=100, n_models=2,
        n_points=256, n_bins=10, n_bayes_samples=200, seed=2,
    )  # fmt: skip
    folder = tmp_path_factory.mktemp("figure3_cache")
    first = compute_figure3(cfg, progress=False, cache_dir=folder)
    path = folder / "figure3_panel_0_0.npz"
    return cfg, first, folder, path, path.read_bytes()


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_files_damaged_figure3_panel_cache_is_recomputed(figure3_cache, damage):
    """Audit: the same for the Figure 3 panel cache; now the panel is recomputed (the same
    numbers as the first run) with one CacheEntryWarning naming the file."""
    from gtv.validation.figures.figure3 import compute_figure3

    cfg, first, folder, path, good = figure3_cache
    path.write_bytes(good)
    DAMAGES[damage](path)
    again, msgs = _one_warning(
        CacheEntryWarning, lambda: compute_figure3(cfg, progress=False, cache_dir=folder)
    )
    assert len(msgs) == 1 and path.name in msgs[0]
    np.testing.assert_array_equal(again.ensembles[0][0].gap, first.ensembles[0][0].gap)
    np.testing.assert_array_equal(
        again.ensembles[0][0].histograms, first.ensembles[0][0].histograms
    )


def test_files_cache_with_a_scaled_array_is_not_used(objects, tmp_path):
    """Audit: a trajectory cache whose ``W[-1]`` was multiplied by 1.5 but stayed a valid npz was
    used as cached. The checksum catches it: retrain, with one warning naming the file."""
    path = _save(objects, "TwoLayerTrajectory", tmp_path)
    entries = _entries(path)
    entries["W"][-1] *= 1.5
    _write_npz(path, entries)
    got, msgs = _one_warning(
        CacheEntryWarning, lambda: load_cache_entry(path, TwoLayerTrajectory.load)
    )
    assert got is None and len(msgs) == 1 and "checksum" in msgs[0] and str(path) in msgs[0]


@pytest.mark.parametrize("name", LOADERS)
def test_files_wrong_kind_is_named_not_a_key_error(objects, tmp_path, name):
    """Audit: the loaders checked no file kind; another result's file gave a KeyError."""
    cls = objects[name][0]
    other = _save(objects, "LinearTheory" if name != "LinearTheory" else "EnsembleResult", tmp_path)
    with pytest.raises(ResultFileError, match=r"not an? .*file \(its kind is") as info:
        cls.load(other)
    assert str(other) in str(info.value)


@pytest.mark.parametrize("name", LOADERS)
def test_files_malformed_json_is_named(objects, tmp_path, name):
    """Audit: malformed JSON gave a raw JSONDecodeError."""
    path = _save(objects, name, tmp_path)
    entries = _entries(path)
    entries["__config__"] = np.array(str(entries["__config__"])[:-3])
    _write_npz(path, entries)
    with pytest.raises(ResultFileError, match="not valid JSON") as info:
        objects[name][0].load(path)
    assert str(path) in str(info.value)


# the largest floating-point array of each class
FLOAT_ARRAY = {
    "EnsembleResult": "histograms",
    "LinearTheory": "cov_g_proxy",
    "SecondOrderMoments": "T3",
    "TwoLayerTrajectory": "W",
    "Figure1Result": "frac",
}


@pytest.mark.parametrize("name", LOADERS)
def test_files_nan_array_is_rejected(objects, tmp_path, name):
    """Audit: NaN arrays loaded silently (here with a valid checksum)."""
    path = _save(objects, name, tmp_path)

    def poison(arrays):
        a = arrays[FLOAT_ARRAY[name]].astype(float)
        a.reshape(-1)[a.size // 2] = np.nan
        arrays[FLOAT_ARRAY[name]] = a

    _resave(path, edit_arrays=poison)
    with pytest.raises(ResultFileError, match="finite") as info:
        objects[name][0].load(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("name", LOADERS)
def test_files_wrong_shape_is_rejected(objects, tmp_path, name):
    """Audit: wrong shapes loaded silently."""
    path = _save(objects, name, tmp_path)
    key = FLOAT_ARRAY[name]
    _resave(path, edit_arrays=lambda a: a.update({key: a[key][..., :-1]}))
    with pytest.raises(ResultFileError, match="shape") as info:
        objects[name][0].load(path)
    assert str(path) in str(info.value)


# eps = -1 where the file has an eps; otherwise the class's own range-checked setting
OUT_OF_RANGE = {
    "LinearTheory": ("eps", -1),
    "TwoLayerTrajectory": ("eps", -1),
    "EnsembleResult": ("gap_distance", -1),
    "SecondOrderMoments": ("ridge", -1),
    "Figure1Result": ("T", 0.05),  # its times (0.1,) are then outside (0, T]
}


@pytest.mark.parametrize("name", LOADERS)
def test_files_out_of_range_setting_is_rejected(objects, tmp_path, name):
    """Audit: ``eps = -1`` loaded silently."""
    path = _save(objects, name, tmp_path)
    key, value = OUT_OF_RANGE[name]
    _resave(path, edit_config=lambda c: c.update({key: value}))
    with pytest.raises(ResultFileError) as info:
        objects[name][0].load(path)
    assert str(path) in str(info.value)


# == The command line ===========================================================================
#: ``python -m gtv.validation.cli`` per case (runpy), with a 20 s alarm against hangs; prints one
#: JSON line per case: exit code, stderr (with the traceback of anything that escaped) and seconds.
DRIVER = textwrap.dedent(
    """
    import contextlib, io, json, runpy, signal, sys, time, traceback
    import warnings
    # imported once (the commands import these lazily); each case runs the module as __main__
    import gtv.validation.cli, gtv.validation.figures.figure2, gtv.validation.ntk.compare

    # runpy's note that the module was imported before (not something `python -m` prints)
    warnings.filterwarnings("ignore", "'gtv.validation.cli' found in sys.modules", RuntimeWarning)

    class Alarm(BaseException):
        pass

    def on_alarm(*_):
        raise Alarm()

    signal.signal(signal.SIGALRM, on_alarm)
    for case in json.loads(sys.argv[1]):
        err = io.StringIO()
        code = None
        t0 = time.perf_counter()
        signal.alarm(20)
        try:
            sys.argv = ["gtv", *case]
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                runpy.run_module("gtv.validation.cli", run_name="__main__", alter_sys=True)
        except SystemExit as exc:
            code = exc.code
        except Alarm:
            code = "timeout (20 s)"
            err.write("timeout")
        except BaseException:  # what a real process prints before exiting with code 1
            code = 1
            err.write(traceback.format_exc())
        finally:
            signal.alarm(0)
        rec = dict(code=code, stderr=err.getvalue(), seconds=time.perf_counter() - t0)
        print(json.dumps(rec), flush=True)
    """
)

ABSURD = "1000000000000"  # 10**12
CLI_CASES = {
    "figure2-models-1e9": ["figure", "2", "--fast", "--models", "1000000000"],
    "ntk-taus-1e12": [
        "validate",
        "ntk",
        "--taus",
        "1e12",
        "--models",
        "4",
        "--widths",
        "8",
        "--samples",
        "10",
        "--density",
        "mc",
    ],  # fmt: skip
    "figure2-samples-1e12": ["figure", "2", "--fast", "--samples", ABSURD],
    "unwritable-out": ["figure", "2", "--fast", "--out", "{blocker}/sub"],
    "ntk-query-x-1e200": ["validate", "ntk", "--query-x", "1e200"],
}


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    """name -> {"code", "stderr", "seconds", "out"} for every case of :data:`CLI_CASES`."""
    folder = tmp_path_factory.mktemp("cli")
    blocker = folder / "a-file"
    blocker.write_text("not a folder")
    runs, argvs = {}, []
    for name, case in CLI_CASES.items():
        out = folder / name
        argv = [c.format(blocker=blocker) for c in case]
        if "--out" not in argv:
            argv += ["--out", str(out)]
        argvs.append([*argv, "--no-progress"])
        runs[name] = {"out": out}
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(argvs)],
        capture_output=True, text=True, timeout=20 * len(argvs) + 120, cwd=folder,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(records) == len(runs)
    for name, rec in zip(runs, records, strict=True):
        runs[name].update(rec)
    return runs


def _one_line_error(rec: dict) -> str:
    """The single ``gtv: error:`` line of a failed command (no traceback, exit code != 0)."""
    lines = rec["stderr"].splitlines()
    assert rec["code"] not in (0, None), rec
    assert "Traceback" not in rec["stderr"] and len(lines) == 1, rec["stderr"]
    assert lines[0].startswith("gtv: error:")
    # measured 0.04-0.07 s per case, 2.3 s for `validate ntk --taus` (its check needs the
    # networks' stability limit: the first use of numba-cached functions in the process loads
    # them, ~1.5 s); the failures were hangs or minutes of work
    assert rec["seconds"] < 5.0, f"{rec['seconds']:.1f} s: the check came after some work"
    return lines[0]


def test_sizes_figure2_with_a_billion_models_fails_fast(cli):
    """Audit: ``gtv figure 2 --fast --models 1000000000`` hung spawning seeds."""
    assert "--models 1000000000" in _one_line_error(cli["figure2-models-1e9"])


def test_sizes_ntk_with_taus_1e12_fails_fast(cli):
    """Audit: ``gtv validate ntk ... --taus 1e12`` hung (~10**12 gradient steps)."""
    line = _one_line_error(cli["ntk-taus-1e12"])
    assert "taus" in line and "gradient steps" in line


def test_sizes_samples_1e12_is_one_line_not_a_memory_error_traceback(cli):
    """Audit: ``--samples 10**12`` printed a MemoryError traceback."""
    line = _one_line_error(cli["figure2-samples-1e12"])
    assert "--samples" in line and "MemoryError" not in line


def test_sizes_product_features_too_many_is_named():
    """Audit: ``ProductFeatures.uniform("gaussian", 22, 8, 8, ...)`` overflowed to 0 features,
    then a ZeroDivisionError (8**22 * 8 features)."""
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match="feature") as info:
        ProductFeatures.uniform("gaussian", 22, 8, 8, (EPS, 1.0))
    assert "0 features" not in str(info.value) and time.perf_counter() - t0 < 1.0


def test_sizes_unwritable_out_is_reported_before_the_computation(cli):
    """Audit: an unwritable ``--out`` was reported only after the whole computation (here a
    ``figure 2 --fast`` run, minutes of work; the error comes first, measured 0.04 s)."""
    line = _one_line_error(cli["unwritable-out"])
    assert "--out" in line and "not writable" in line and cli["unwritable-out"]["seconds"] < 2.0


# == Non-finite numbers =========================================================================
def test_nan_samples_are_not_gap_mass():
    """Audit: NaN samples were counted as gap mass."""
    samples = np.zeros((2, 10, 1))
    samples[1, :3, 0] = np.nan
    with pytest.raises(ValueError, match=r"samples must be finite: 3 of 20 samples"):
        gap_mass(samples, DATA, 0.25)


@pytest.mark.parametrize("bad", [[1.0, np.nan, 2.0], [1.0, np.inf, 2.0]], ids=["nan", "inf"])
def test_nan_bootstrap_ci_rejects_non_finite_values(bad):
    """Audit: bootstrap_ci returned NaN/inf for non-finite input."""
    with pytest.raises(ValueError, match="values must be finite"):
        bootstrap_ci(bad)


def test_nan_posterior_frac_is_finite_at_tiny_times():
    """Audit: posterior_stats returned NaN frac for t below ~1e-154 (vp-linear). Expected from
    the geometry: half-way between 0 and 1 the posterior splits equally (frac 1, mean 0.5); at
    0.3 all weight is on 0 (frac 0)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = posterior_stats(DATA, [[0.5], [0.3]], 1e-200, "vp-linear")
    np.testing.assert_array_equal(s.frac, [1.0, 0.0])
    np.testing.assert_array_equal(s.mean[:, 0], [0.5, 0.0])


def test_nan_posterior_at_huge_queries_sits_on_the_nearest_point():
    """Audit: posterior_stats returned NaN frac for |x| >~ 1e155."""
    s = posterior_stats(DATA, [[1e155], [-1e200]], 0.5, "vp-linear")
    np.testing.assert_array_equal(s.mean[:, 0], [1.0, -1.0])
    np.testing.assert_array_equal(s.frac, [0.0, 0.0])


def test_nan_features_far_away_are_zero_like_the_reference():
    """Audit: Gaussian features at |x| = 1e100 gave NaN where the reference gives 0."""
    f = ProductFeatures.uniform("gaussian", 2, 8, 4, (EPS, 1.0))
    pts = np.array([[1e100, 0.3], [0.2, -1e100]])
    got = f.evaluate(pts, 0.5)
    with np.errstate(over="ignore", invalid="ignore"):
        ref = f.evaluate_reference(pts, 0.5)
    assert np.all(got == 0.0) and np.all(ref == 0.0)


def test_nan_ntk_query_x_1e200_is_refused_and_saves_nothing(cli):
    """Audit: ``gtv validate ntk --query-x 1e200`` exited 0 and saved NaN tables."""
    rec = cli["ntk-query-x-1e200"]
    assert "query_x" in _one_line_error(rec)
    out = rec["out"]
    assert not out.exists() or not any(p.suffix in (".npz", ".json") for p in out.rglob("*"))


# == Samplers ===================================================================================
@pytest.mark.parametrize("eps", [1e-4, 1e-6])
def test_samplers_heun_divergence_at_small_eps_is_reported(eps):
    """Audit: Heun with 30 steps exploded silently at small eps (exact Bayes denoiser: 22 % of
    samples beyond |x| = 2 at eps = 1e-4, 99 % at 1e-6). Now one DivergenceWarning with the
    count and share of samples beyond 10 (radius + sigma_T) = 20, counted here from the returned
    samples, and the advice."""
    x, msgs = _one_warning(
        DivergenceWarning,
        lambda: sample_exact_denoiser(DATA, 4000, eps, n_steps=30, method="heun", seed=0),
    )
    bound = divergence_bound(1.0, get_schedule("vp-linear"))
    with np.errstate(invalid="ignore"):
        n_far = int(np.count_nonzero(~(np.abs(x[:, 0]) <= bound)))
    assert bound == pytest.approx(20.0) and n_far > 0 and len(msgs) == 1
    assert f"{n_far} of 4000 samples ({n_far / 4000:.2%})" in msgs[0]
    assert "more steps" in msgs[0] and "method='euler'" in msgs[0]


# == Seeds ======================================================================================
def _trainer(seed):
    """A linear-ensemble training that would run far longer than a second."""
    feats = ProductFeatures.uniform("gaussian", 1, 3, 2, (EPS, 1.0))
    return train_linear_ensemble(DATA, feats, 500, 10**6, EPS, seed=seed)


@pytest.mark.parametrize(
    ("seed", "exc", "what"),
    [
        (True, TypeError, "bool"),
        (1.7, TypeError, "float"),
        (None, TypeError, "NoneType"),
        (-1, ValueError, "non-negative"),
    ],  # fmt: skip
    ids=["True-ran-as-1", "1.7-ran-as-1", "None-raised-late", "negative-unnamed"],
)
def test_seeds_are_rejected_by_name_before_work(seed, exc, what):
    """Audit: seed=True and seed=1.7 ran as seed 1; seed=None trained for a while, then raised;
    negative seeds said "expected non-negative integer" without naming seed."""
    t0 = time.perf_counter()
    with pytest.raises(exc, match=rf"^seed must be .*{what}"):
        _trainer(seed)
    assert time.perf_counter() - t0 < 1.0


# == Schedules ==================================================================================
@pytest.fixture(scope="module")
def symbolic():
    """``(Schedule, t)`` of gtv.theory.schedules (importing sympy once, about a second)."""
    from gtv.theory.schedules import Schedule, t

    return Schedule, t


def test_schedules_negative_diffusion_is_rejected(symbolic):
    """Audit: ``Schedule.from_drift_diffusion(0, 1 - 2*t, T=1)`` (sigma^2(T) = 0, D < 0 for
    t > 1/2) was accepted."""
    Schedule, t = symbolic
    with pytest.raises(ValueError, match=r"^diffusion: .*negative for t in \(1/2, 1\]"):
        Schedule.from_drift_diffusion(0, 1 - 2 * t, T=1)


@pytest.mark.parametrize("case", ["alpha-sigma2", "drift-diffusion", "numeric-beyond-T"])
def test_schedules_other_custom_negative_diffusion_is_rejected(symbolic, case):
    """Audit: other custom schedules with negative diffusion were accepted: one built from
    ``alpha``, ``sigma2`` (``D = 2 - 4 t``), a negative ``D`` everywhere, and a schedule valid
    for T = 1 compiled for T = 3 (``D = 1 - t/2 < 0`` for t > 2)."""
    Schedule, t = symbolic
    if case == "alpha-sigma2":
        with pytest.raises(ValueError, match=r"^alpha/sigma2: D_t = 2 - 4\*t"):
            Schedule.from_alpha_sigma2(1, 4 * t * (1 - t), T=1)
    elif case == "drift-diffusion":
        with pytest.raises(ValueError, match=r"^diffusion: .*negative for t in \[0, 1\]"):
            Schedule.from_drift_diffusion(1, -1 - t, T=1)
    else:
        sched = Schedule.from_drift_diffusion(0, 1 - t / 2, T=1)
        with pytest.raises(ValueError, match=r"^diffusion: .*negative for t in \[2\.0\d*, 3\]"):
            sched.to_numeric(T=3)


# == Errors that did not name their argument ====================================================
def _config_classes():
    from gtv.validation.figures.figure2 import Figure2Config
    from gtv.validation.figures.figure3 import Figure3Config
    from gtv.validation.linear.compare import LinearCompareConfig
    from gtv.validation.linear.target_noise import TargetNoiseConfig
    from gtv.validation.linear.validity_map import ValidityMapConfig
    from gtv.validation.memory.config import TransitionConfig
    from gtv.validation.ntk.config import NTKCompareConfig
    from gtv.validation.serial.config import Condition, ExperimentConfig
    from gtv.validation.serial.learned_experiment import LearnedConfig

    serial = {"name": "fig2", "grid": "torus", "h": 0.04, "conditions": (Condition("a"),)}
    return {
        "Figure2Config": (Figure2Config, {}),
        "Figure3Config": (Figure3Config, {}),
        "LinearCompareConfig": (LinearCompareConfig, {}),
        "NTKCompareConfig": (NTKCompareConfig, {}),
        "TargetNoiseConfig": (TargetNoiseConfig, {}),
        "ValidityMapConfig": (ValidityMapConfig, {}),
        "LearnedConfig": (LearnedConfig, {}),
        "TransitionConfig": (TransitionConfig, {}),
        "ExperimentConfig": (ExperimentConfig, serial),
        "Condition": (Condition, {"label": "a"}),
    }


CONFIG_CASES = [
    "Figure2Config",
    "Figure3Config",
    "LinearCompareConfig",
    "NTKCompareConfig",
    "TargetNoiseConfig",
    "ValidityMapConfig",
    "LearnedConfig",
    "TransitionConfig",
    "ExperimentConfig",
    "Condition",
]


@pytest.mark.parametrize("name", CONFIG_CASES)
def test_errors_every_numeric_config_field_given_a_string_is_named(name):
    """Audit: 27 errors did not name their argument (``int()``/``float()`` messages, e.g.
    "invalid literal for int() with base 10: 'a'"). Every numeric field (int, float, tuples of
    them, optional ones) of every configuration class, given ``"a"``: a ValueError/TypeError
    whose message names the field."""
    cls, base = _config_classes()[name]
    numeric = [
        f.name for f in dataclasses.fields(cls) if any(k in str(f.type) for k in ("int", "float"))
    ]
    assert numeric
    unnamed = []
    for field in numeric:
        try:
            cls(**{**base, field: "a"})
            unnamed.append(f"{field}='a' accepted")
        except (ValueError, TypeError) as exc:
            if field not in str(exc):
                unnamed.append(f"{field}='a': {type(exc).__name__}: {exc}")
    assert unnamed == []
