"""TaskCheckpoint: the shared resume file of long runs (validation/checkpoint.py)."""

import warnings

import numpy as np
import pytest

from gtv.numerics.io import CacheEntryWarning, load_result_of_kind
from gtv.validation.checkpoint import TaskCheckpoint, checkpoint_path

CONFIG = {"n": 3, "eps": (0.01, 0.1)}


def fresh(path, config=CONFIG, n=3):
    return TaskCheckpoint(path, "test-partial", config, {"x": np.zeros((n, 2))}, n)


def test_round_trip_and_finish(tmp_path):
    ck = fresh(tmp_path / "run")
    assert ck.path == tmp_path / "run.npz" and ck.resumed == 0 and not ck.path.exists()
    ck.arrays["x"][1] = [1.5, -2.0]
    ck.mark_done(1)
    arrays, meta = load_result_of_kind(ck.path, "test-partial", "a test checkpoint")
    assert meta["config"] == {"n": 3, "eps": [0.01, 0.1]}  # tuples stored as JSON lists
    again = fresh(tmp_path / "run")  # a tuple config equals its JSON form
    assert again.resumed == 1 and again.pending() == [(0,), (2,)]
    assert np.array_equal(again.arrays["x"], [[0, 0], [1.5, -2.0], [0, 0]])
    again.finish()
    assert not again.path.exists()


def test_no_path_keeps_everything_in_memory(tmp_path):
    ck = TaskCheckpoint(None, "k", CONFIG, {"x": np.zeros(2)}, (2, 2))
    ck.mark_done((1, 0))
    assert ck.pending() == [(0, 0), (0, 1), (1, 1)]
    ck.finish()
    assert list(tmp_path.iterdir()) == []


def test_other_configuration_is_refused(tmp_path):
    fresh(tmp_path / "run").mark_done(0)
    with pytest.raises(ValueError, match="run.npz.*another configuration"):
        fresh(tmp_path / "run", config={"n": 4, "eps": (0.01, 0.1)})


@pytest.mark.parametrize("damage", ["garbage", "truncated", "shape", "kind"])
def test_damaged_checkpoint_is_reported_and_ignored(tmp_path, damage):
    path = tmp_path / "run.npz"
    ck = fresh(path)
    ck.arrays["x"][0] = 7.0
    ck.mark_done(0)
    if damage == "garbage":
        path.write_bytes(b"not a zip")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:-40])
    else:
        path.unlink()  # a valid file, but of another shape or kind
        kind, n = ("test-partial", 4) if damage == "shape" else ("other-kind", 3)
        TaskCheckpoint(path, kind, CONFIG, {"x": np.zeros((n, 2))}, n).mark_done(0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = fresh(path)
    assert sum(issubclass(w.category, CacheEntryWarning) for w in caught) == 1
    assert again.resumed == 0 and not again.arrays["x"].any()


def test_reserved_name():
    with pytest.raises(ValueError, match="'done' is reserved"):
        TaskCheckpoint(None, "k", {}, {"done": np.zeros(1)}, 1)
    assert checkpoint_path("a/b.npz").name == "b.npz" and checkpoint_path("a/b").name == "b.npz"


def test_min_interval_writes_the_first_task_then_at_most_that_often(tmp_path):
    ck = TaskCheckpoint(
        tmp_path / "run", "test-partial", CONFIG, {"x": np.zeros((3, 2))}, 3, min_interval=3600.0
    )
    ck.mark_done(0)  # the first finished task is written at once
    assert fresh(tmp_path / "run").resumed == 1
    ck.arrays["x"][2] = 7.0
    ck.mark_done(2)  # within the interval: kept in memory
    assert fresh(tmp_path / "run").resumed == 1
    ck.flush()  # what a run does when it is interrupted (Ctrl-C, an error)
    again = fresh(tmp_path / "run")
    assert again.resumed == 2 and np.all(again.arrays["x"][2] == 7.0)
    with pytest.raises(ValueError, match="min_interval"):
        TaskCheckpoint(None, "k", CONFIG, {"x": np.zeros(1)}, 1, min_interval=-1.0)
