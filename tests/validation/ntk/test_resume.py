"""Resuming an interrupted ``compare_ntk`` run gives the uninterrupted numbers (reliability.md).

A real child process is killed (SIGKILL; SIGINT in the slow variant) after its first checkpoint;
the rerun from the checkpoint must equal an uninterrupted run bit for bit. Also: chunked training
equals training all models together, a checkpoint of another configuration is refused, a damaged
one is reported and ignored, and the checkpoint is removed on completion.
"""

import signal
import warnings

import numpy as np
import pytest

from gtv.numerics.io import CacheEntryWarning
from gtv.numerics.two_layer import init_two_layer_ensemble, stability_limit, train_two_layer
from gtv.validation.checkpoint import TaskCheckpoint
from gtv.validation.figures.figure2 import FIGURE2_DATA
from gtv.validation.ntk import compare
from gtv.validation.ntk.compare import NTKCompareConfig, compare_ntk
from gtv.validation.ntk.training import model_chunks, train_width

from ..interrupt import interrupt_after_checkpoint

CONFIG = dict(
    P=48, widths=(16,), n_models=4, taus=(1.0, 3.0), n_samples=40, n_bins=20, n_boot=20,
    theory_n_t=3, theory_n_hermite=4, fp_steps=5, fp_refine=1, fp_half_width=10.0,
    n_bayes_samples=200, query_x=(-1.0, 0.5), query_t=(0.05,), sample_kernel=True, density="mc",
)  # fmt: skip
CHILD = """
import sys
from gtv.validation.ntk.compare import NTKCompareConfig, compare_ntk

compare_ntk(NTKCompareConfig(**{config!r}), checkpoint=sys.argv[1], model_chunk=1)
"""
FIELDS = (
    "denoiser", "histograms", "outside", "gap", "kernel_histograms", "kernel_gap",
    "gf_histograms", "gf_gap", "fp_gap",
)  # fmt: skip


@pytest.fixture(scope="module")
def uninterrupted():
    return compare_ntk(NTKCompareConfig(**CONFIG))


def _same(a, b):
    for name in FIELDS:
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert a.gap_rows == b.gap_rows


def test_chunks_of_models_train_to_the_numbers_of_the_whole_ensemble():
    """Chunk sizes 1, 4 and N, and any order of finished chunks: bit-identical parameters."""
    init = init_two_layer_ensemble(FIGURE2_DATA, 16, 6, 48, 1e-2, activation="erf", seed=3)
    eta = 0.5 * float(stability_limit(init).min())
    steps = np.array([3, 11])
    whole = train_two_layer(init, eta, eta * steps.astype(float))
    K, N, n, d = whole.W.shape
    for chunk, first in ((1, []), (4, []), (6, []), (2, [4, 5]), (4, [1])):
        arrays = {"W": np.zeros_like(whole.W), "A": np.zeros_like(whole.A), "L": np.zeros((K, N))}
        ckpt = TaskCheckpoint(None, "test", {}, arrays, N)
        for m in first:  # chunks already finished (by an interrupted run): filled in, not redone
            ckpt.arrays["W"][:, m], ckpt.arrays["A"][:, m] = whole.W[:, m], whole.A[:, m]
            ckpt.arrays["L"][:, m] = whole.train_loss[:, m]
            ckpt.mark_done(m)
        tr, status = train_width(init, eta, steps, ckpt, ("W", "A", "L"), np.arange(N), chunk)
        assert status == "trained" and ckpt.done.all()
        assert np.array_equal(tr.W, whole.W), chunk
        assert np.array_equal(tr.A, whole.A), chunk
        assert np.array_equal(tr.train_loss, whole.train_loss), chunk
    assert model_chunks([0, 1, 2, 4, 5, 6, 7, 9], 3) == [[0, 1, 2], [4, 5, 6], [7], [9]]


@pytest.mark.parametrize(
    "sig",
    [signal.SIGKILL, pytest.param(signal.SIGINT, marks=pytest.mark.slow)],
    ids=["SIGKILL", "SIGINT"],
)
def test_resume_after_a_real_interrupt_is_bit_identical(tmp_path, uninterrupted, sig):
    path = tmp_path / "run.partial.npz"
    code = interrupt_after_checkpoint(CHILD.format(config=CONFIG), path, sig)
    assert code != 0, "the child finished before it was interrupted"
    assert path.exists()
    resumed = compare_ntk(NTKCompareConfig(**CONFIG), checkpoint=path)
    done, total = resumed.meta["checkpoint_resumed"]
    assert 0 < done <= total
    _same(resumed, uninterrupted)
    assert not path.exists()  # removed once the run is complete


def _partial_run(path, monkeypatch, config):
    """An in-process run stopped (as by Ctrl-C) at its first network sampling run: its
    checkpoint holds the trained models."""

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(compare, "sample_two_layer_ensemble", stop)
        with pytest.raises(KeyboardInterrupt):
            compare_ntk(NTKCompareConfig(**config), checkpoint=path)
    assert path.exists()


def test_checkpoint_of_another_configuration_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "other.partial.npz"
    _partial_run(path, monkeypatch, CONFIG)
    with pytest.raises(ValueError, match="another configuration") as exc:
        compare_ntk(NTKCompareConfig(**{**CONFIG, "seed": 1}), checkpoint=path)
    assert str(path) in str(exc.value)


def test_damaged_checkpoint_is_reported_and_recomputed(tmp_path, uninterrupted):
    path = tmp_path / "bad.partial.npz"
    path.write_bytes(b"not a zip file at all")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = compare_ntk(NTKCompareConfig(**CONFIG), checkpoint=path)
    assert sum(issubclass(w.category, CacheEntryWarning) for w in caught) == 1
    assert res.meta["checkpoint_resumed"][0] == 0
    _same(res, uninterrupted)
    assert not path.exists()


def test_in_process_interrupt_resumes_the_trained_models_and_meets_the_cache(
    tmp_path, monkeypatch, uninterrupted
):
    """Ctrl-C during sampling: the rerun trains nothing again (all models restored), writes the
    trajectory cache, and equals the uninterrupted run; the cache entry is then reused."""
    path = tmp_path / "run.partial.npz"
    _partial_run(path, monkeypatch, CONFIG)
    res = compare_ntk(NTKCompareConfig(**CONFIG), checkpoint=path, cache_dir=tmp_path / "c")
    assert res.meta["checkpoint_resumed"][0] == len(CONFIG["widths"]) * CONFIG["n_models"]
    assert res.meta["cache"] == ["trained"]
    _same(res, uninterrupted)
    assert not path.exists()
    again = compare_ntk(NTKCompareConfig(**CONFIG), checkpoint=path, cache_dir=tmp_path / "c")
    assert again.meta["cache"] == ["cached"]
    _same(again, uninterrupted)


def test_cli_passes_a_checkpoint_in_the_output_folder(tmp_path, monkeypatch):
    """``gtv validate ntk`` resumes from ``DIR/ntk_<activation>_eps<eps>_P<P>.partial.npz``."""
    from gtv.validation.cli import main

    class Seen(Exception):
        pass

    def spy(cfg, progress=False, cache_dir=None, *, checkpoint=None, model_chunk=None):
        raise Seen(checkpoint)

    monkeypatch.setattr(compare, "compare_ntk", spy)
    with pytest.raises(Seen) as exc:
        main(["validate", "ntk", "--P", "48", "--no-progress", "--out", str(tmp_path)])
    assert exc.value.args[0] == tmp_path / "ntk_erf_eps0.01_P48.partial.npz"
