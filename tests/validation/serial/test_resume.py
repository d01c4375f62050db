"""Resuming interrupted ``gtv serial`` runs gives the uninterrupted numbers (docs/reliability.md).

For the exact-denoiser experiments (:func:`run_experiment`) and the learned-denoiser comparison
(:func:`run_learned`): a real child process is killed with SIGKILL (SIGINT in the slow variants)
after its first checkpoint and the rerun must equal an uninterrupted run bit for bit; a
checkpoint of another configuration is refused; a damaged one is reported and ignored; the
checkpoint is removed on completion.
"""

import signal
import warnings

import numpy as np
import pytest

from gtv.numerics.io import CacheEntryWarning
from gtv.validation.serial import experiments, learned_experiment, plots
from gtv.validation.serial.config import experiment_config
from gtv.validation.serial.experiments import run_experiment
from gtv.validation.serial.learned_experiment import LearnedConfig, run_learned

from ..interrupt import interrupt_after_checkpoint

SIGNALS = [signal.SIGKILL, pytest.param(signal.SIGINT, marks=pytest.mark.slow)]
IDS = ["SIGKILL", "SIGINT"]
STEPS = (2, 6, 12, 24, 48)  # fixed-total: 15 conditions, the longest last
LEARNED = {"denoisers": ("exact", "linear"), "steps": (2, 6), "families": ("gaussian", "fade")}
CHILD_EXACT = """
import sys
from gtv.validation.serial.config import experiment_config
from gtv.validation.serial.experiments import run_experiment
run_experiment(experiment_config("fixed-total", steps={steps!r}), checkpoint=sys.argv[1])
"""
CHILD_LEARNED = """
import sys
from gtv.validation.serial.learned_experiment import LearnedConfig, run_learned

run_learned(LearnedConfig.small(**{kw!r}), checkpoint=sys.argv[1])
"""


def _exact(steps=STEPS):
    return experiment_config("fixed-total", steps=steps)


@pytest.fixture(scope="module")
def exact():
    return run_experiment(_exact())


@pytest.fixture(scope="module")
def learned():
    return run_learned(LearnedConfig.small(**LEARNED))


def _same_exact(a, b):
    assert a.rows == b.rows
    for x, y in zip(a.arrays, b.arrays, strict=True):
        assert x.keys() == y.keys()
        for k in x:
            assert np.array_equal(x[k], y[k]), k


def _same_learned(a, b):
    assert a.rows == b.rows
    assert a.per_model.keys() == b.per_model.keys() and a.images.keys() == b.images.keys()
    for k in a.per_model:
        assert np.array_equal(a.per_model[k], b.per_model[k]), k
    for k in a.images:
        assert np.array_equal(a.images[k], b.images[k]), k


def _stop_after_first(monkeypatch, module, name):
    """Make ``module.name`` raise KeyboardInterrupt (as Ctrl-C) on its second call."""
    real, calls = getattr(module, name), []

    def once(*args, **kwargs):
        if calls:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, once)


# -- exact-denoiser experiments ----------------------------------------------------------------
@pytest.mark.parametrize("sig", SIGNALS, ids=IDS)
def test_experiment_resumes_bit_identically_after_a_real_interrupt(tmp_path, exact, sig):
    path = tmp_path / "serial.partial.npz"
    code = interrupt_after_checkpoint(CHILD_EXACT.format(steps=STEPS), path, sig)
    assert code != 0, "the child finished before it was interrupted"
    assert path.exists()
    resumed = run_experiment(_exact(), checkpoint=path)
    assert 0 < resumed.meta["resumed_conditions"] <= len(resumed.rows)
    _same_exact(resumed, exact)
    assert not path.exists()  # removed once the run is complete


def test_experiment_checkpoint_of_another_configuration_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "other.partial.npz"
    with monkeypatch.context() as m:
        _stop_after_first(m, experiments, "run_condition")
        with pytest.raises(KeyboardInterrupt):
            run_experiment(_exact(steps=(2, 3)), checkpoint=path)
    assert path.exists()
    with pytest.raises(ValueError, match="another configuration") as exc:
        run_experiment(_exact(steps=(2, 4)), checkpoint=path)
    assert str(path) in str(exc.value)
    resumed = run_experiment(_exact(steps=(2, 3)), checkpoint=path)
    assert resumed.meta["resumed_conditions"] == 1
    _same_exact(resumed, run_experiment(_exact(steps=(2, 3))))
    assert not path.exists()


def test_experiment_damaged_checkpoint_is_reported_and_recomputed(tmp_path, exact):
    path = tmp_path / "bad.partial.npz"
    path.write_bytes(b"not a zip file at all")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = run_experiment(_exact(), checkpoint=path)
    assert sum(issubclass(w.category, CacheEntryWarning) for w in caught) == 1
    assert res.meta["resumed_conditions"] == 0
    _same_exact(res, exact)
    assert not path.exists()


# -- learned denoisers -------------------------------------------------------------------------
@pytest.mark.parametrize("sig", SIGNALS, ids=IDS)
def test_learned_resumes_bit_identically_after_a_real_interrupt(tmp_path, learned, sig):
    path = tmp_path / "learned.partial.npz"
    code = interrupt_after_checkpoint(CHILD_LEARNED.format(kw=LEARNED), path, sig)
    assert code != 0, "the child finished before it was interrupted"
    assert path.exists()
    resumed = run_learned(LearnedConfig.small(**LEARNED), checkpoint=path)
    assert 0 < resumed.meta["resumed_conditions"] <= len(resumed.meta["conditions"])
    _same_learned(resumed, learned)
    assert not path.exists()


def test_learned_checkpoint_of_another_configuration_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "other.partial.npz"
    cheap = {"denoisers": ("exact",), "steps": (2,), "families": ("gaussian",)}
    with monkeypatch.context() as m:
        _stop_after_first(m, learned_experiment, "_run_condition")
        with pytest.raises(KeyboardInterrupt):
            run_learned(LearnedConfig.small(**cheap), checkpoint=path)
    assert path.exists()
    with pytest.raises(ValueError, match="another configuration") as exc:
        run_learned(LearnedConfig.small(**cheap, seed=1), checkpoint=path)
    assert str(path) in str(exc.value)


def test_learned_damaged_checkpoint_is_reported_and_recomputed(tmp_path, learned):
    path = tmp_path / "bad.partial.npz"
    path.write_bytes(b"not a zip file at all")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = run_learned(LearnedConfig.small(**LEARNED), checkpoint=path)
    assert sum(issubclass(w.category, CacheEntryWarning) for w in caught) == 1
    assert res.meta["resumed_conditions"] == 0
    _same_learned(res, learned)
    assert not path.exists()


def test_cli_passes_a_checkpoint_in_the_output_folder(tmp_path, monkeypatch):
    """``gtv serial`` resumes from ``DIR/serial_<experiment>_<grid>.partial.npz``."""
    from gtv.validation.cli import main

    seen = []
    real = experiments.run_experiment

    def spy(cfg, progress=False, *, checkpoint=None):
        seen.append(checkpoint)
        return real(cfg, progress, checkpoint=checkpoint)

    monkeypatch.setattr(experiments, "run_experiment", spy)
    monkeypatch.setattr(plots, "plot_experiment", lambda *a: [])  # no figures: fast
    argv = ["serial", "fig3", "--steps", "2", "3", "--formats", "png", "--no-progress"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    assert seen == [tmp_path / "serial_fig3_authors.partial.npz"]
    assert not seen[0].exists()
