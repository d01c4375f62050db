"""Resuming an interrupted transition run gives the uninterrupted numbers (SIGKILL and SIGINT)."""

import signal
import warnings

import numpy as np
import pytest

from gtv.numerics.io import CacheEntryWarning
from gtv.validation.memory import TransitionConfig, run_transition

from ..interrupt import interrupt_after_checkpoint

CONFIG = {"model": "exact", "Ks": (3, 30, 300), "n_models": 3, "n_samples": 60, "n_steps": 10}
CHILD = """
import sys
from gtv.validation.memory import TransitionConfig, run_transition

run_transition(TransitionConfig(**{config!r}), checkpoint=sys.argv[1])
"""
FIELDS = ("fractions", "proxy_frac", "unconverged")


@pytest.fixture(scope="module")
def uninterrupted():
    return run_transition(TransitionConfig(**CONFIG))


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_resume_after_a_real_interrupt_is_bit_identical(tmp_path, uninterrupted, sig):
    path = tmp_path / "run.partial.npz"
    code = interrupt_after_checkpoint(CHILD.format(config=CONFIG), path, sig)
    assert code != 0, "the child finished before it was interrupted"
    assert path.exists()
    resumed = run_transition(TransitionConfig(**CONFIG), checkpoint=path)
    for name in FIELDS:
        assert np.array_equal(getattr(resumed, name), getattr(uninterrupted, name)), name
    assert not path.exists()  # removed once the run is complete


def test_checkpoint_of_another_configuration_is_refused(tmp_path):
    path = tmp_path / "other.partial.npz"
    interrupt_after_checkpoint(CHILD.format(config=CONFIG), path, signal.SIGKILL)
    with pytest.raises(ValueError, match="another configuration"):
        run_transition(TransitionConfig(**{**CONFIG, "n_samples": 61}), checkpoint=path)


def test_damaged_checkpoint_is_reported_and_recomputed(tmp_path, uninterrupted):
    path = tmp_path / "bad.partial.npz"
    path.write_bytes(b"not a zip file at all")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = run_transition(TransitionConfig(**CONFIG), checkpoint=path)
    assert any(issubclass(w.category, CacheEntryWarning) for w in caught)
    assert np.array_equal(res.fractions, uninterrupted.fractions)
