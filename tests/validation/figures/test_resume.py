"""Resuming interrupted Figure 2 and Figure 3 runs gives the uninterrupted numbers.

A real child process is interrupted (SIGKILL; SIGINT in the slow variant) after its first
checkpoint and the run is started again; the result must equal an uninterrupted run's bit for
bit. The child pauses right after writing its first checkpoint (the signal lands in that pause),
so the test interrupts a run that has more tasks to do whatever the machine's load; the slow
SIGINT variant has no pause and interrupts at a random point of a longer run.
"""

import math
import signal
import warnings

import numpy as np
import pytest

import gtv.validation.figures.figure2 as fig2
import gtv.validation.figures.figure3 as fig3
from gtv.numerics.io import CacheEntryWarning
from gtv.validation.cli import main
from gtv.validation.figures import Figure2Config, Figure3Config, compute_figure2, compute_figure3

from ..interrupt import interrupt_after_checkpoint

FIG2 = {
    "eps_values": (1e-2,), "P_values": (32, 64), "n_space": 4, "n_time": 4, "n_models": 2,
    "n_samples": 100, "n_points": 256, "n_bins": 20, "n_bayes_samples": 100, "seed": 3,
}  # fmt: skip
# Figure 3 with its default start points (scrambled Sobol', density="transport") and with the
# paper's random ones (density="mc").
FIG3 = {
    "rotations": (0.0,), "kinds": ("gaussian", "fourier"), "n_space": 4, "n_time": 3, "P": 100,
    "n_models": 2, "n_samples": 200, "n_points": 256, "n_bins": 10, "n_bayes_samples": 200,
    "seed": 2,
}  # fmt: skip
FIG3_MC = {**FIG3, "density": "mc"}
# Larger runs for the slow variant (~5 s each), interrupted at a random point.
FIG2_SLOW = {
    **FIG2, "P_values": (32, 64, 128, 256), "eps_values": (1e-3, 1e-2), "n_points": 200_000,
    "max_points": 200_000,
    "n_bayes_samples": 100_000,
}  # fmt: skip
FIG3_SLOW = {**FIG3, "rotations": (0.0, math.pi / 8, math.pi / 4), "n_points": 32_768}
FIG3_MC_SLOW = {**FIG3_MC, "rotations": (0.0, math.pi / 8, math.pi / 4), "n_samples": 30_000}
#: (figure, configuration) of the fast tests
CASES = [(2, FIG2), (3, FIG3), (3, FIG3_MC)]
CASE_IDS = ["figure2", "figure3", "figure3-mc"]

CHILD = """
import sys
from gtv.validation.figures import {cls}, {func}
{func}({cls}(**{config!r}), progress=False, checkpoint=sys.argv[1])
"""
RUNS = {
    2: (Figure2Config, compute_figure2, "Figure2Config", "compute_figure2"),
    3: (Figure3Config, compute_figure3, "Figure3Config", "compute_figure3"),
}


def _run(figure, config, **kw):
    cls, func = RUNS[figure][:2]
    return func(cls(**config), progress=False, **kw)


def _assert_same(a, b):
    """Every number of two Figure 2 / Figure 3 results is equal (bit for bit)."""
    assert a.config == b.config
    for ra, rb in zip(a.ensembles, b.ensembles, strict=True):
        for ea, eb in zip(ra, rb, strict=True):
            assert np.array_equal(ea.histograms, eb.histograms)
            assert np.array_equal(ea.gap, eb.gap)
            assert ea.config == eb.config and ea.gap_distance == eb.gap_distance
    assert np.array_equal(a.bayes_histograms, b.bayes_histograms)
    if hasattr(a, "regions"):
        for ra, rb in zip(a.regions, b.regions, strict=True):
            for ga, gb in zip(ra, rb, strict=True):
                assert np.array_equal(ga.segment_mass, gb.segment_mass)
                assert np.array_equal(ga.diagonal_mass, gb.diagonal_mass)
                assert (ga.segment_area, ga.diagonal_area) == (gb.segment_area, gb.diagonal_area)
        assert a.segment_table() == b.segment_table()
    else:
        assert np.array_equal(a.exact_density, b.exact_density)
        assert a.gap_table() == b.gap_table()


def _interrupt(figure, config, path, sig, pause=True, delay=0.0):
    """Start a child run, wait for its first checkpoint (+ ``delay`` s), then send ``sig``."""
    _, _, cls, func = RUNS[figure]
    code = CHILD.format(cls=cls, func=func, config=config)
    return interrupt_after_checkpoint(code, path, sig, pause=pause, delay=delay)


def _interrupt_in_process(monkeypatch, figure, config, path, after=1):
    """Run in this process, raising KeyboardInterrupt when panel ``after`` starts."""
    module = fig2 if figure == 2 else fig3
    calls = []
    sample = module.sample_linear_panel

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) > after:
            raise KeyboardInterrupt
        return sample(*args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(module, "sample_linear_panel", interrupted)
        with pytest.raises(KeyboardInterrupt):
            _run(figure, config, checkpoint=path)
    assert path.exists()


@pytest.mark.parametrize("figure, config", CASES, ids=CASE_IDS)
def test_resume_after_sigkill_is_bit_identical(tmp_path, figure, config):
    path = tmp_path / f"figure{figure}.partial.npz"
    code = _interrupt(figure, config, path, signal.SIGKILL)
    assert code != 0, "the child finished before it was interrupted"
    assert path.exists()
    with np.load(path) as f:
        assert 1 <= f["done"].sum() < f["done"].size  # interrupted between tasks
    resumed = _run(figure, config, checkpoint=path)
    _assert_same(resumed, _run(figure, config))
    assert not path.exists()  # removed once the run is complete


@pytest.mark.slow
@pytest.mark.parametrize(
    "figure, config",
    [(2, FIG2_SLOW), (3, FIG3_SLOW), (3, FIG3_MC_SLOW)],
    ids=CASE_IDS,
)
@pytest.mark.parametrize("seed", [0, 1])
def test_resume_after_sigint_at_a_random_point_is_bit_identical(tmp_path, figure, config, seed):
    path = tmp_path / f"figure{figure}.partial.npz"
    delay = np.random.default_rng(seed).uniform(0, 1.0)  # test timing only, not a result
    code = _interrupt(figure, config, path, signal.SIGINT, pause=False, delay=delay)
    assert code != 0, "the child finished before it was interrupted"
    assert path.exists()
    resumed = _run(figure, config, checkpoint=path)
    _assert_same(resumed, _run(figure, config))
    assert not path.exists()


@pytest.mark.parametrize("figure, config", CASES, ids=CASE_IDS)
def test_in_process_interrupt_resumes_and_recomputes_only_the_rest(
    tmp_path, monkeypatch, figure, config
):
    """A KeyboardInterrupt in panel 2 leaves panel 1 in the checkpoint; the rerun computes only
    the panels after it (counted) and equals an uninterrupted run."""
    path = tmp_path / "run.partial.npz"
    _interrupt_in_process(monkeypatch, figure, config, path)
    module = fig2 if figure == 2 else fig3
    calls = []
    sample = module.sample_linear_panel

    def counted(*args, **kwargs):
        calls.append(1)
        return sample(*args, **kwargs)

    monkeypatch.setattr(module, "sample_linear_panel", counted)
    resumed = _run(figure, config, checkpoint=path)
    assert len(calls) == 1  # two panels, the first one restored
    monkeypatch.undo()
    _assert_same(resumed, _run(figure, config))
    assert not path.exists()


@pytest.mark.parametrize("figure, config", CASES, ids=CASE_IDS)
def test_checkpoint_of_another_configuration_is_refused(tmp_path, monkeypatch, figure, config):
    path = tmp_path / "other.partial.npz"
    _interrupt_in_process(monkeypatch, figure, config, path)
    others = [{**config, "n_samples": 101}]
    if figure == 3:  # the other start points, and another number of Sobol' points
        other = "transport" if config.get("density") == "mc" else "mc"
        others += [{**config, "density": other}, {**config, "n_points": 128}]
        if other == "transport":  # n_points does not enter a Monte Carlo run
            others.pop()
    for other_config in others:
        with pytest.raises(ValueError, match="other.partial.npz.*another configuration"):
            _run(figure, other_config, checkpoint=path)
    assert path.exists()  # kept: it is the other configuration's work


def test_figure3_monte_carlo_checkpoint_settings_are_those_before_the_density_option():
    """A Monte Carlo run compares its checkpoint and panel cache by the settings it had before
    ``density`` and ``n_points`` existed (so those files stay valid); a transport run by all."""
    mc, qmc = Figure3Config(**FIG3_MC), Figure3Config(**FIG3)
    fields = set(mc.to_dict())
    assert set(mc.run_settings()) == fields - {"density", "n_points"}
    assert qmc.run_settings() == qmc.to_dict()


@pytest.mark.parametrize("figure, config", CASES, ids=CASE_IDS)
def test_damaged_checkpoint_is_reported_and_recomputed(tmp_path, monkeypatch, figure, config):
    path = tmp_path / "bad.partial.npz"
    _interrupt_in_process(monkeypatch, figure, config, path)
    good = path.read_bytes()
    for damaged in (b"not a zip file at all", good[: len(good) // 2]):
        path.write_bytes(damaged)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = _run(figure, config, checkpoint=path)
        hits = [w for w in caught if issubclass(w.category, CacheEntryWarning)]
        assert len(hits) == 1 and "bad.partial.npz" in str(hits[0].message)
        _assert_same(res, _run(figure, config))
        assert not path.exists()


@pytest.mark.parametrize("figure", [2, 3])
def test_cli_uses_a_checkpoint_in_the_output_folder(tmp_path, monkeypatch, capsys, figure):
    """``gtv figure N`` reads DIR/figureN.partial.npz: one left by another configuration stops
    the command with one error line naming it (before any panel is computed)."""
    path = tmp_path / f"figure{figure}.partial.npz"
    _interrupt_in_process(monkeypatch, figure, FIG2 if figure == 2 else FIG3, path)
    size = ["--points", "64"]  # both figures' default start points (transport)
    argv = ["figure", str(figure), "--fast", "--models", "2", *size]
    rc = main([*argv, "--out", str(tmp_path), "--no-progress", "--formats", "png"])
    assert rc == 1
    err = capsys.readouterr().err
    assert f"figure{figure}.partial.npz" in err and "another configuration" in err
