"""Training the networks of one width in chunks of models, resumable (docs/reliability.md).

:func:`train_width` trains the ``N`` networks of one width of :func:`gtv.validation.ntk.compare_ntk`
in chunks of models (:func:`model_chunks`) and stores every finished chunk in the run's
:class:`gtv.validation.checkpoint.TaskCheckpoint` (one task per model, so the checkpoint does not
depend on the chunk size). Model ``m`` draws its training set and initial weights from its own
stream (:mod:`gtv.numerics.two_layer.init`) before any training, and gradient descent updates
every model independently (:func:`gtv.numerics.two_layer.network.gd_kernel`), so a chunk's
numbers do not depend on which chunks ran before it or on the chunk size: training models
``[a, b)`` alone gives bit for bit the rows ``[a, b)`` of training all ``N`` together
(tests/validation/ntk/test_resume.py).

The verified trajectory cache of ``gtv validate ntk --cache DIR`` (one entry per width, reused by
later runs and resumed for later ``taus``; :func:`cache_path`) works as before: a width found
complete in the cache is copied into the checkpoint without training; a cache entry of earlier
``taus`` is resumed chunk by chunk; a completed width is written to the cache.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from gtv.numerics.two_layer import TwoLayerInit, TwoLayerTrajectory, train_two_layer
from gtv.validation.checkpoint import TaskCheckpoint
from gtv.validation.results import load_cache_entry

__all__ = ["cache_path", "model_chunks", "subset_init", "subset_steps", "train_width"]


def cache_path(cache_dir: Path, init: TwoLayerInit) -> Path:
    """The cache entry of a width's trajectory, keyed by its training configuration and data."""
    key = json.dumps({**init.config(), "data": init.data.tolist()}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return Path(cache_dir) / f"two_layer_{init.activation}_w{init.width}_{digest}.npz"


def model_chunks(models: list[int], size: int) -> list[list[int]]:
    """``models`` cut into consecutive runs of at most ``size`` contiguous indices."""
    out: list[list[int]] = []
    for m in models:
        if out and len(out[-1]) < size and out[-1][-1] == m - 1:
            out[-1].append(m)
        else:
            out.append([m])
    return out


def subset_init(init: TwoLayerInit, models: slice) -> TwoLayerInit:
    """The training sets, initial weights and stability limits of the ``models`` of ``init``."""
    return TwoLayerInit(
        init.W0[models], init.A0[models], init.t[models], init.x0[models], init.x[models],
        init.z[models], init.weight[models], init.data, init.schedule, init.eps, init.activation,
        init.init, init.embedding, init.bias, init.seed,
        None if init.limit is None else init.limit[models],
    )  # fmt: skip


def subset_steps(tr: TwoLayerTrajectory, steps: np.ndarray) -> TwoLayerTrajectory:
    """The checkpoints of ``tr`` at ``steps`` (each must be recorded in ``tr``)."""
    idx = [int(np.flatnonzero(tr.steps == s)[0]) for s in steps]
    return TwoLayerTrajectory(
        tr.init, tr.learning_rate, tr.steps[idx], tr.W[idx], tr.A[idx], tr.train_loss[idx], tr.limit
    )


def _cached(init: TwoLayerInit, eta: float, cache_dir: Path | None) -> TwoLayerTrajectory | None:
    """The cache entry of ``init`` if it was trained from the same start at the same rate."""
    if cache_dir is None:
        return None
    old = load_cache_entry(cache_path(cache_dir, init), TwoLayerTrajectory.load)
    if old is None:  # absent, or damaged (reported in one warning line)
        return None
    same = (
        old.learning_rate == eta
        and np.array_equal(old.init.W0, init.W0)
        and np.array_equal(old.init.A0, init.A0)
        and np.array_equal(old.init.t, init.t)
        and np.array_equal(old.init.x0, init.x0)
    )
    return old if same else None


def train_width(
    init: TwoLayerInit,
    eta: float,
    steps: np.ndarray,
    ckpt: TaskCheckpoint,
    names: tuple[str, str, str],
    tasks: np.ndarray,
    chunk: int,
    cache_dir: Path | None = None,
    progress: bool = False,
) -> tuple[TwoLayerTrajectory, str]:
    """Train (or restore) every network of one width; returns the trajectory and its status.

    Parameters
    ----------
    init : TwoLayerInit
        The width's training sets and initial weights, with its stability limits computed.
    eta : float
        Learning rate.
    steps : ndarray of int, shape (K,)
        Gradient steps of the checkpoints.
    ckpt : TaskCheckpoint
        The run's checkpoint; ``ckpt.arrays[names[i]]`` are this width's ``W`` (K, N, n, d_in),
        ``A`` (K, N, n, D) and training losses (K, N).
    names : tuple of str
        Names of those three arrays.
    tasks : ndarray of int, shape (N,)
        The checkpoint task of each model.
    chunk : int
        Models trained per call (and per checkpoint write).
    cache_dir : path, optional
        The verified trajectory cache (module docstring).
    progress : bool

    Returns
    -------
    trajectory : TwoLayerTrajectory
    status : {"cached", "resumed", "trained"}
        Taken whole from the cache, trained on from a cache entry of earlier ``taus``, or
        trained from the initial weights (in this run or in the interrupted one it resumes).
    """
    W, A, loss = (ckpt.arrays[n] for n in names)
    old = _cached(init, eta, cache_dir)
    new = steps if old is None else np.array([s for s in steps if s not in set(old.steps.tolist())])
    if old is not None and new.size == 0:
        sub = subset_steps(old, steps)
        W[:], A[:], loss[:] = sub.W, sub.A, sub.train_loss
        if not ckpt.done[tasks].all():
            ckpt.done[tasks[:-1]] = True
            ckpt.mark_done(int(tasks[-1]))
        return TwoLayerTrajectory(init, eta, steps, W, A, loss, init.limit), "cached"
    resume = old is not None and new[0] > old.steps[-1]
    pending = [m for m in range(init.n_models) if not ckpt.done[tasks[m]]]
    bar = tqdm(
        total=init.n_models, initial=init.n_models - len(pending), desc=f"width {init.width}",
        disable=not progress, leave=False,
    )  # fmt: skip
    for group in model_chunks(pending, chunk):
        sl = slice(group[0], group[-1] + 1)
        part = subset_init(init, sl)
        if resume:
            start = TwoLayerTrajectory(
                part, eta, old.steps, old.W[:, sl], old.A[:, sl], old.train_loss[:, sl], part.limit
            )
            tr = train_two_layer(part, eta, eta * new.astype(float), resume_from=start)
            tr = subset_steps(tr, steps)
        else:
            tr = train_two_layer(part, eta, eta * steps.astype(float))
        W[:, sl], A[:, sl], loss[:, sl] = tr.W, tr.A, tr.train_loss
        ckpt.done[tasks[group[:-1]]] = True
        ckpt.mark_done(int(tasks[group[-1]]))
        bar.update(len(group))
    bar.close()
    traj = TwoLayerTrajectory(init, eta, steps, W, A, loss, init.limit)
    if cache_dir is not None:
        entry = traj
        if resume:  # the entry keeps its earlier checkpoints
            idx = np.searchsorted(steps, new)
            entry = TwoLayerTrajectory(
                init, eta, np.concatenate([old.steps, new]), np.concatenate([old.W, W[idx]]),
                np.concatenate([old.A, A[idx]]), np.concatenate([old.train_loss, loss[idx]]),
                init.limit,
            )  # fmt: skip
        entry.save(cache_path(cache_dir, init))
    return traj, "resumed" if resume else "trained"
