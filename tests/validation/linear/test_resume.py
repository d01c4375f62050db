"""Resuming an interrupted ``gtv validate linear`` gives the uninterrupted numbers.

One task per configuration (eps, P): after a configuration's result files are written, the resume
file ``DIR/linear.partial.npz`` (``target_noise.partial.npz`` with ``--target both``) records it
as done; a rerun reloads the finished configurations from their result files and computes the
others. The reference is :func:`compare_linear` / :func:`compare_targets` called directly, one
configuration at a time, without any resume file. The child process of the SIGKILL test pauses
right after its first checkpoint (the signal lands in that pause), so it is interrupted with a
configuration still to do whatever the machine's load; the slow SIGINT variant has no pause and
interrupts at a random point of a longer run.
"""

import dataclasses
import math
import signal
import warnings

import numpy as np
import pytest

import gtv.validation.linear.compare as compare_module
from gtv.numerics.io import CacheEntryWarning
from gtv.validation.cli import main
from gtv.validation.linear.compare import LinearCompareConfig, LinearComparison, compare_linear
from gtv.validation.linear.resume import ResumableConfigurations
from gtv.validation.linear.target_noise import (
    TargetNoiseComparison,
    TargetNoiseConfig,
    compare_targets,
    format_target_noise_summary,
)
from gtv.validation.linear.validity import format_validity_table, validity_row

from ..interrupt import interrupt_after_checkpoint

SIZES = {
    "n_space": 4, "n_time": 4, "n_models": 4, "n_samples": 100, "n_bins": 10, "n_steps": 5,
    "n_boot": 10, "seed": 1, "query_x": (0.0, 1.0), "query_t": (0.1,),
}  # fmt: skip
GRID = [(0.01, 30), (0.01, 60)]  # (eps, P) of the two configurations, in the CLI's order
SLOW = {"eps": (0.01, 0.02), "P": (30, 60, 120), "n_samples": 2000}


def _args(eps=(0.01,), P=(30, 60), n_samples=100) -> list[str]:
    """``gtv validate linear`` with the sizes of SIZES (and ``n_samples``)."""
    return [
        "validate", "linear", "--eps", *map(str, eps), "--P", *map(str, P), "--n-space", "4",
        "--n-time", "4", "--models", "4", "--density", "mc", "--samples", str(n_samples),
        "--bins", "10",
        "--steps", "5", "--boot", "10", "--seed", "1", "--query-x", "0", "1", "--query-t", "0.1",
        "--no-diagnostics", "--no-progress", "--formats", "png",
    ]  # fmt: skip


def _configs(eps=(0.01,), P=(30, 60), n_samples=100) -> list[LinearCompareConfig]:
    """The configurations of :func:`_args`, built here from the sizes (not by the CLI)."""
    sizes = {**SIZES, "n_samples": n_samples, "density": "mc"}
    return [LinearCompareConfig(eps=e, P=p, diagnostics=False, **sizes) for e in eps for p in P]


ARGS = _args()

CHILD = """
import sys
from gtv.validation.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def reference() -> list[LinearComparison]:
    configs = _configs()
    assert [(c.eps, c.P) for c in configs] == GRID
    return [compare_linear(c) for c in configs]


def _same(a, b, where="result"):
    """Every number of two results is equal (bit for bit; NaN equals NaN), timings aside."""
    if dataclasses.is_dataclass(a) and not hasattr(a, "to_dict"):
        assert type(a) is type(b), where
        for f in dataclasses.fields(a):
            _same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape and a.dtype == b.dtype, where
        assert np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and sorted(a) == sorted(b), where
        for k in a:
            if k != "timings":  # seconds: differ from run to run
                _same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):  # a JSON round trip makes tuples lists
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for k, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{k}]")
    elif isinstance(a, float) and math.isnan(a):
        assert isinstance(b, float) and math.isnan(b), where
    else:
        assert a == b, where


def _check_output(out, stdout, reference):
    """The result files and the printed tables of a finished run equal the reference's."""
    for res in reference:
        stem = out / f"linear_eps{res.config.eps:g}_P{res.config.P}"
        _same(LinearComparison.load(f"{stem}.npz"), res)
        assert (out / f"{stem.name}.png").exists()
        assert res.format_table() in stdout
    assert format_validity_table([validity_row(r) for r in reference]) in stdout
    assert not (out / "linear.partial.npz").exists()  # removed once the run is complete


def _interrupt(args, out, sig, pause=True, delay=0.0):
    """Start ``gtv <args>`` in a child, wait for its first checkpoint (+ ``delay`` s), send
    ``sig``."""
    path = out / "linear.partial.npz"
    argv = [*args, "--out", str(out)]
    return interrupt_after_checkpoint(CHILD, path, sig, args=argv, pause=pause, delay=delay)


def _fake_compute(reference, calls):
    """A ``compute`` for :class:`ResumableConfigurations` that hands out the reference results
    (no recomputation; the test is about which configurations are computed)."""
    by_config = {(r.config.eps, r.config.P): r for r in reference}

    def compute(cfg):
        calls.append((cfg.eps, cfg.P))
        return by_config[(cfg.eps, cfg.P)]

    return compute


def _runs(tmp_path, configs=None, load=LinearComparison.load):
    configs = _configs() if configs is None else configs
    stems = [tmp_path / f"linear_eps{c.eps:g}_P{c.P}" for c in configs]
    return ResumableConfigurations(tmp_path / "linear.partial", configs, stems, load)


def test_resume_after_sigkill_is_bit_identical(tmp_path, reference, monkeypatch, capsys):
    code = _interrupt(ARGS, tmp_path, signal.SIGKILL)
    assert code != 0, "the child finished before it was interrupted"
    with np.load(tmp_path / "linear.partial.npz") as f:
        assert f["done"].tolist() == [True, False]
    calls = []
    compute = compare_module.compare_linear
    monkeypatch.setattr(
        compare_module, "compare_linear", lambda c, **kw: calls.append(c) or compute(c, **kw)
    )
    capsys.readouterr()
    assert main([*ARGS, "--out", str(tmp_path)]) == 0
    assert [(c.eps, c.P) for c in calls] == GRID[1:]  # the first one was reloaded
    _check_output(tmp_path, capsys.readouterr().out, reference)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_resume_after_sigint_at_a_random_point_is_bit_identical(tmp_path, capsys, seed):
    delay = np.random.default_rng(seed).uniform(0, 1.0)  # test timing only, not a result
    code = _interrupt(_args(**SLOW), tmp_path, signal.SIGINT, pause=False, delay=delay)
    assert code != 0, "the child finished before it was interrupted"
    capsys.readouterr()
    assert main([*_args(**SLOW), "--out", str(tmp_path)]) == 0
    reference = [compare_linear(c) for c in _configs(**SLOW)]
    _check_output(tmp_path, capsys.readouterr().out, reference)


@pytest.mark.parametrize(
    ("target", "name"), [("noisy", "linear"), ("exact", "linear_exact"), ("both", "target_noise")]
)
def test_cli_refuses_a_checkpoint_of_another_configuration(
    tmp_path, reference, capsys, target, name
):
    """``gtv validate linear`` reads its resume file in the output folder: one written for other
    configurations stops it with one error line naming the file, before any work."""
    other = [dataclasses.replace(_configs()[0], n_samples=101)]
    runs = ResumableConfigurations(
        tmp_path / f"{name}.partial", other, [tmp_path / "other"], LinearComparison.load
    )
    runs.result(0, lambda c: reference[0])  # an interrupted run of another configuration
    argv = [*ARGS, "--target", target, "--out", str(tmp_path)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"{name}.partial.npz" in err and "another configuration" in err
    with pytest.raises(ValueError, match=f"{name}.partial.npz.*another configuration"):
        ResumableConfigurations(
            tmp_path / f"{name}.partial", _configs(), [tmp_path / "a", tmp_path / "b"],
            LinearComparison.load,
        )  # fmt: skip


def test_finished_configurations_are_reloaded_not_recomputed(tmp_path, reference):
    calls = []
    runs = _runs(tmp_path)
    first, _ = runs.result(0, _fake_compute(reference, calls))  # then "interrupted"
    again = _runs(tmp_path)
    assert again.resumed == 1
    results = [again.result(k, _fake_compute(reference, calls))[0] for k in range(2)]
    assert calls == GRID  # once each
    for res, ref in zip(results, reference, strict=True):
        _same(res, ref)
    again.finish()
    assert not (tmp_path / "linear.partial.npz").exists()


def test_damaged_checkpoint_is_reported_and_recomputed(tmp_path, reference):
    path = tmp_path / "linear.partial.npz"
    path.write_bytes(b"not a zip file at all")
    calls = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs = _runs(tmp_path)
    hits = [w for w in caught if issubclass(w.category, CacheEntryWarning)]
    assert len(hits) == 1 and "linear.partial.npz" in str(hits[0].message)
    assert runs.resumed == 0
    for k in range(2):
        _same(runs.result(k, _fake_compute(reference, calls))[0], reference[k])
    assert calls == GRID


@pytest.mark.parametrize("damage", ["truncated", "another configuration", "missing theory"])
def test_damaged_result_of_a_finished_configuration_is_recomputed(tmp_path, reference, damage):
    """The checkpoint says configuration 1 is done but its result file is damaged, replaced by
    another configuration's, or lost its theory file: one warning naming the file, computed
    again."""
    _runs(tmp_path).result(0, _fake_compute(reference, []))
    first = tmp_path / "linear_eps0.01_P30.npz"
    if damage == "truncated":
        first.write_bytes(first.read_bytes()[:300])
    elif damage == "another configuration":
        reference[1].save(first)  # a valid result file, of configuration 2
    else:
        (tmp_path / "linear_eps0.01_P30_theory.npz").unlink()
    calls = []
    runs = _runs(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res, paths = runs.result(0, _fake_compute(reference, calls))
    hits = [w for w in caught if issubclass(w.category, CacheEntryWarning)]
    assert len(hits) == 1 and "linear_eps0.01_P30.npz" in str(hits[0].message)
    assert calls == GRID[:1]
    _same(res, reference[0])
    _same(LinearComparison.load(first), reference[0])  # rewritten
    assert first in paths


def test_target_noise_results_are_reloaded_bit_identically(tmp_path):
    configs = [TargetNoiseConfig(eps=0.01, P=30, **SIZES)]
    stems = [tmp_path / "target_noise_eps0.01_P30"]
    ref = compare_targets(configs[0])
    ResumableConfigurations(
        tmp_path / "t.partial", configs, stems, TargetNoiseComparison.load
    ).result(0, lambda c: ref)
    again = ResumableConfigurations(
        tmp_path / "t.partial", configs, stems, TargetNoiseComparison.load
    )
    assert again.resumed == 1
    res, _ = again.result(0, lambda c: pytest.fail("recomputed"))
    _same(res, ref)
    assert res.format_table() == ref.format_table()
    assert format_target_noise_summary([res]) == format_target_noise_summary([ref])


def test_stems_must_match_the_configurations(tmp_path):
    with pytest.raises(ValueError, match="stems"):
        ResumableConfigurations(None, _configs(), [tmp_path / "a"], LinearComparison.load)
