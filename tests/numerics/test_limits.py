"""Up-front size limits (issue 14, deliverable 3): absurd sizes fail at once, naming the argument.

Each call below would allocate terabytes or run for years; it must raise ``ValueError`` naming
the argument and the estimate within a second (the wall-time bound is the test that the check
comes before any work).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from gtv.numerics.binned_affine import train_binned_affine_ensemble
from gtv.numerics.checks import (
    QUERY_LIMIT,
    WORK_LIMIT,
    check_budget,
    check_output_dir,
    check_query_values,
    memory_limit,
)
from gtv.numerics.exact import sample_exact_denoiser
from gtv.numerics.features import ProductFeatures
from gtv.numerics.kernel import train_kernel_ensemble
from gtv.numerics.linear import train_linear_ensemble
from gtv.numerics.streams import model_rngs
from gtv.numerics.two_layer import init_two_layer_ensemble, train_two_layer

DATA = np.array([[-1.0], [0.0], [1.0]])
HUGE = 10**12


def _fails_fast(fn, *match: str, seconds: float = 1.0) -> str:
    t0 = time.perf_counter()
    with pytest.raises(ValueError) as info:
        fn()
    assert time.perf_counter() - t0 < seconds
    msg = str(info.value)
    for m in match:
        assert m in msg, msg
    return msg


def test_check_budget_names_argument_and_estimate():
    msg = _fails_fast(
        lambda: check_budget("--models", 10**9, n_bytes=2.0**50), "--models 1000000000"
    )
    assert "1.05e+06 GiB" in msg and "limit" in msg  # 2**50 bytes = 2**20 GiB
    _fails_fast(lambda: check_budget("steps", 7, n_ops=10 * WORK_LIMIT), "steps 7", "operations")
    _fails_fast(lambda: check_budget("x", 1, n_bytes=float("nan")), "x 1")  # NaN estimate fails
    check_budget("ok", 1, n_bytes=1e6, n_ops=1e6)  # small sizes pass


def test_memory_limit_default_and_override(monkeypatch):
    monkeypatch.delenv("GTV_MEMORY_LIMIT_GIB", raising=False)
    lim = memory_limit()
    assert 2**28 <= lim <= 2**50  # between 0.25 GiB and 1 PiB on any real machine
    monkeypatch.setenv("GTV_MEMORY_LIMIT_GIB", "0.5")
    assert memory_limit() == 2**29
    _fails_fast(lambda: check_budget("a", 1, n_bytes=2**30), "limit 0.5 GiB")
    monkeypatch.setenv("GTV_WORK_LIMIT", "100")
    _fails_fast(lambda: check_budget("a", 1, n_ops=101), "limit 100")


def test_output_dir_is_checked(tmp_path):
    assert check_output_dir(tmp_path / "a" / "b").is_dir()  # created
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _fails_fast(lambda: check_output_dir(blocker, "--out"), "--out", "not a directory")
    _fails_fast(lambda: check_output_dir(blocker / "sub", "--out"), "--out", "not writable")


def test_model_rngs_rejects_a_billion_models():
    _fails_fast(lambda: model_rngs(0, "training", 10**9), "n_models 1000000000", "GiB")
    assert len(model_rngs(0, "training", 3)) == 3


def test_product_features_overflow_is_a_named_error():
    """8**22 * 8 features overflowed int64 to 0 and then divided by zero."""
    msg = _fails_fast(
        lambda: ProductFeatures.uniform("gaussian", 22, 8, 8, (0.01, 1.0)), "n_features"
    )
    assert str(8**23) in msg  # the exact count, no overflow
    assert ProductFeatures.uniform("gaussian", 2, 8, 8, (0.01, 1.0)).n_features == 512


@pytest.mark.parametrize(
    "call",
    [
        lambda f: train_linear_ensemble(DATA, f, HUGE, 64, 0.01),
        lambda f: train_linear_ensemble(DATA, f, 4, HUGE, 0.01),
        lambda f: train_kernel_ensemble(DATA, 4, HUGE, 0.01, 1.0),
        lambda f: train_kernel_ensemble(DATA, HUGE, 8, 0.01, 1.0),
        lambda f: init_two_layer_ensemble(DATA, 8, 4, HUGE, 0.01),
        lambda f: init_two_layer_ensemble(DATA, 2 * HUGE, 4, 8, 0.01),
        lambda f: train_binned_affine_ensemble(0.0, 1.0, [0.01, 1.0], HUGE, 8),
        lambda f: sample_exact_denoiser(DATA, HUGE, 0.01),
    ],
    ids=[
        "linear-N",
        "linear-P",
        "kernel-N",
        "kernel-P",
        "two-layer-P",
        "two-layer-width",
        "binned-N",
        "exact-samples",
    ],  # fmt: skip
)
def test_trainers_and_samplers_reject_absurd_sizes(call):
    feats = ProductFeatures.uniform("gaussian", 1, 4, 4, (0.01, 1.0))
    msg = _fails_fast(lambda: call(feats))
    assert "GiB" in msg or "operations" in msg, msg
    assert "n_" in msg or "width" in msg, msg  # names the argument


def test_two_layer_training_steps_are_bounded():
    init = init_two_layer_ensemble(DATA, 8, 4, 16, 0.01)
    _fails_fast(lambda: train_two_layer(init, 0.1, [1e12]), "taus", "gradient steps", "operations")


def test_query_values_range():
    assert check_query_values([0.0, -QUERY_LIMIT], "query_x").shape == (2,)
    _fails_fast(lambda: check_query_values([1e200], "query_x"), "query_x")
    _fails_fast(lambda: check_query_values([np.nan], "query_t"), "query_t")
    _fails_fast(lambda: check_query_values("ab", "query_x"), "query_x")
