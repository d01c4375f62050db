"""Resume files for long runs: one atomic, verified checkpoint per run (docs/reliability.md).

A long run (a figure, a validation, a memorization curve) is a grid of independent *tasks*, each
drawing from its own named random stream, so a task's numbers do not depend on which tasks ran
before it. :class:`TaskCheckpoint` keeps the run's output arrays and a boolean ``done`` array
with one entry per task; after every finished task the caller marks it done and the whole state
is written atomically (:func:`gtv.numerics.io.save_result`: temporary file, ``fsync``, rename).
A run that is interrupted -- Ctrl-C, a killed process, a lost machine -- and started again with
the same configuration skips the finished tasks and ends with numbers bit-identical to an
uninterrupted run's.

Rules (tested for every run that uses this, see docs/reliability.md):

* a checkpoint written for another configuration is refused with one ``ValueError`` naming the
  file (never silently mixed);
* a damaged checkpoint (truncated, flipped byte, wrong arrays) is reported in one
  :class:`~gtv.numerics.io.CacheEntryWarning` line and ignored: the run starts afresh;
* the checkpoint is removed when the run completes (:meth:`TaskCheckpoint.finish`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from gtv.numerics.io import load_cache_entry, load_result_of_kind, save_result

__all__ = ["TaskCheckpoint", "checkpoint_path", "json_normalized"]


def checkpoint_path(path: str | Path) -> Path:
    """``path`` with the ``.npz`` suffix the result files use (added if missing)."""
    path = Path(path)
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def json_normalized(config: object) -> object:
    """``config`` as it reads back from JSON (tuples become lists, etc.): what two
    configurations are compared by."""
    return json.loads(json.dumps(config, sort_keys=True))


class TaskCheckpoint:
    """The output arrays of a run of independent tasks, saved after each task.

    Parameters
    ----------
    path : path or None
        Checkpoint file (``.npz`` added if missing). ``None`` keeps everything in memory: the
        same code path runs without a resume file.
    kind : str
        Kind recorded in the file (e.g. ``"figure2-partial"``); a file of another kind is damaged.
    config : dict
        JSON-serializable configuration of the run; a checkpoint is only used by a run whose
        configuration is equal (after a JSON round trip).
    arrays : dict of str to ndarray
        Freshly initialised output arrays (their shapes and dtypes define a valid checkpoint).
    n_tasks : int or tuple of int
        Shape of the ``done`` array (one entry per task).
    min_interval : float, default 0
        Seconds between writes: :meth:`mark_done` writes the first finished task at once and
        later ones only when ``min_interval`` has passed since the last write (a run of many
        short tasks then spends its time on the tasks, not on ``fsync``); :meth:`flush` writes
        what is pending. A killed run loses at most ``min_interval`` seconds of finished tasks.

    Attributes
    ----------
    arrays : dict of str to ndarray
        The output arrays: restored from the checkpoint if one was found, else ``arrays``.
    done : ndarray of bool
        Which tasks are finished.
    resumed : int
        Number of tasks found finished in the checkpoint.
    """

    def __init__(
        self,
        path: str | Path | None,
        kind: str,
        config: dict,
        arrays: dict[str, np.ndarray],
        n_tasks: int | tuple[int, ...],
        min_interval: float = 0.0,
    ) -> None:
        if not min_interval >= 0:
            raise ValueError(f"min_interval must be >= 0 seconds, got {min_interval!r}")
        self.min_interval = float(min_interval)
        self._written: float | None = None
        self._pending = False
        if "done" in arrays:
            raise ValueError("arrays: the name 'done' is reserved for the task flags")
        self.path = None if path is None else checkpoint_path(path)
        self.kind = kind
        self.config = json_normalized(config)
        self.arrays = {name: np.array(a) for name, a in arrays.items()}
        self.done = np.zeros(n_tasks, dtype=bool)
        self.resumed = 0
        if self.path is not None:
            self._restore()

    def _restore(self) -> None:
        template = {**self.arrays, "done": self.done}

        def load(p: Path) -> tuple[dict, dict]:
            arrays, meta = load_result_of_kind(p, self.kind, f"a {self.kind} checkpoint")
            if json_normalized(meta.get("config")) != self.config:
                return arrays, meta  # refused below, with the configuration named
            for name, a in template.items():
                got = arrays.get(name)
                if got is None or got.shape != a.shape or got.dtype != a.dtype:
                    raise ValueError(f"path {str(p)!r}: {name} is missing or has the wrong shape")
            return arrays, meta

        entry = load_cache_entry(self.path, load)
        if entry is None:
            return
        arrays, meta = entry
        if json_normalized(meta.get("config")) != self.config:
            raise ValueError(
                f"checkpoint {str(self.path)!r} was written by another configuration; remove it "
                "or run the configuration it records"
            )
        self.done = arrays["done"].copy()
        self.arrays = {name: arrays[name].copy() for name in self.arrays}
        self.resumed = int(self.done.sum())

    def mark_done(self, task: int | tuple[int, ...]) -> None:
        """Flag ``task`` finished and write the checkpoint (atomically; see ``min_interval``)."""
        self.done[task] = True
        self._pending = True
        now = time.monotonic()
        if self._written is None or now - self._written >= self.min_interval:
            self.flush()

    def flush(self) -> None:
        """Write the checkpoint (atomically) if a finished task is not in it yet."""
        if self.path is not None and self._pending:
            save_result(
                self.path, {**self.arrays, "done": self.done}, {"config": self.config},
                kind=self.kind,
            )  # fmt: skip
        self._pending = False
        self._written = time.monotonic()

    def pending(self) -> list[tuple[int, ...]]:
        """Indices of the unfinished tasks, in row-major order."""
        return [tuple(int(i) for i in ix) for ix in np.argwhere(~self.done)]

    def finish(self) -> None:
        """Remove the checkpoint file (the run is complete)."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)
