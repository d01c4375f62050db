"""Ensembles of two-layer networks trained by full-batch gradient descent on DSM draws.

docs/math/kernel.md (lazy networks). The network and its compiled forward/backward passes live in
:mod:`gtv.numerics.two_layer.network`, the training sets and initial parameters (and the order of
the random draws) in :mod:`gtv.numerics.two_layer.init`, the stability limit in
:mod:`gtv.numerics.two_layer.stability`; this module checks the learning rate against that limit
and trains, recording the parameters at a list of training times.

Training time. ``tau = eta * k`` after ``k`` steps of rate ``eta``; requested times are rounded to
whole steps (``k = rint(tau / eta)``) and the trajectory records the times actually reached.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from gtv.numerics.checks import check_budget, check_count, check_eps
from gtv.numerics.io import load_result_of_kind, require_finite, result_file, save_result
from gtv.numerics.kernel.inputs import ntk_inputs
from gtv.numerics.schedules import get_schedule
from gtv.numerics.two_layer.checks import check_learning_rate, taus_to_steps
from gtv.numerics.two_layer.ensemble import TwoLayerNetworks
from gtv.numerics.two_layer.init import TwoLayerInit, init_two_layer_ensemble, seed_from_config
from gtv.numerics.two_layer.network import activation_code, check_targets, forward, gd_kernel
from gtv.numerics.two_layer.stability import stability_limit

__all__ = ["TwoLayerTrajectory", "train_two_layer", "train_two_layer_ensemble"]


@dataclass
class TwoLayerTrajectory:
    """Parameters of ``N`` networks at ``K`` checkpoints of one gradient-descent run.

    Attributes
    ----------
    init : TwoLayerInit
        Training sets and initial parameters.
    learning_rate : float
        eta.
    steps : ndarray of int, shape (K,)
        Steps taken at each checkpoint (non-decreasing).
    W : ndarray, shape (K, N, n, d_in)
    A : ndarray, shape (K, N, n, D)
    train_loss : ndarray, shape (K, N)
        ``(1/(2P)) sum_j lambda~_j |D^(z_j) - x0_j|^2`` per model at each checkpoint.
    limit : ndarray, shape (N,), or None
        ``eta_max`` per model at initialization (None if not checked).
    """

    init: TwoLayerInit
    learning_rate: float
    steps: np.ndarray
    W: np.ndarray
    A: np.ndarray
    train_loss: np.ndarray
    limit: np.ndarray | None = None

    @property
    def taus(self) -> np.ndarray:
        """Training times reached, ``eta * steps``, shape (K,)."""
        return self.learning_rate * self.steps.astype(np.float64)

    @property
    def n_checkpoints(self) -> int:
        return self.steps.shape[0]

    def networks(self, checkpoint: int = -1) -> TwoLayerNetworks:
        """The ensemble at one checkpoint (index into :attr:`steps`)."""
        i = self.init
        return TwoLayerNetworks(
            self.W[checkpoint], self.A[checkpoint], i.activation, i.schedule, i.eps, i.embedding,
            i.bias,
        )  # fmt: skip

    def denoise(self, x: object, t: object) -> np.ndarray:
        """``D^`` of every model at every checkpoint: shape (K, N, Q, D)."""
        return np.stack([self.networks(k).denoise(x, t) for k in range(self.n_checkpoints)])

    def config(self) -> dict:
        return {**self.init.config(), "learning_rate": self.learning_rate}

    def save(self, path: str | Path) -> Path:
        """Save to ``path`` (npz + JSON config, :func:`gtv.numerics.io.save_result`)."""
        i = self.init
        arrays = {
            "W0": i.W0, "A0": i.A0, "t": i.t, "x0": i.x0, "x": i.x, "data": i.data,
            "steps": self.steps, "W": self.W, "A": self.A, "train_loss": self.train_loss,
        }  # fmt: skip
        if self.limit is not None:
            arrays["limit"] = self.limit
        return save_result(path, arrays, self.config(), kind="two_layer_trajectory")

    @classmethod
    def load(cls, path: str | Path) -> TwoLayerTrajectory:
        """Load a trajectory written by :meth:`save` (named schedules only).

        Raises ``ValueError`` naming the file if it is corrupt, of another kind, or inconsistent
        (array shapes against ``n_models``, ``width``, ``n_samples``; non-finite parameters;
        ``eps`` outside (0, T); a non-positive learning rate).
        """
        arr, cfg = load_result_of_kind(
            path,
            "two_layer_trajectory",
            "a TwoLayerTrajectory",
            legacy=lambda c: {"width", "activation", "learning_rate"} <= set(c),
        )
        with result_file(path, "TwoLayerTrajectory"):
            return cls._from_arrays(arr, cfg)

    @classmethod
    def _from_arrays(cls, arr: dict, cfg: dict) -> TwoLayerTrajectory:
        sched = get_schedule(cfg["schedule"], cfg["T"])
        check_eps(cfg["eps"], sched.T)
        check_learning_rate(cfg["learning_rate"])
        N, n, P = (check_count(cfg[k], k) for k in ("n_models", "width", "n_samples"))
        K, D, d_in = arr["steps"].shape[0], arr["data"].shape[1], arr["W0"].shape[-1]
        shapes = {
            "W0": (N, n, d_in), "A0": (N, n, D), "t": (N, P), "x0": (N, P, D), "x": (N, P, D),
            "steps": (K,), "W": (K, N, n, d_in), "A": (K, N, n, D), "train_loss": (K, N),
        }  # fmt: skip
        if "limit" in arr:
            shapes["limit"] = (N,)
        for name, shape in shapes.items():
            if arr[name].shape != shape:
                raise ValueError(f"array {name!r} has shape {arr[name].shape}, expected {shape}")
        require_finite(arr, "W0", "A0", "t", "x0", "x", "data", "W", "A", "train_loss")
        if arr["steps"].dtype.kind not in "iu" or np.any(np.diff(arr["steps"]) < 0):
            raise ValueError("array 'steps' must hold non-decreasing integers")
        z = np.stack(
            [
                ntk_inputs(
                    arr["x"][m], arr["t"][m], cfg["eps"], sched, cfg["embedding"], cfg["bias"]
                )
                for m in range(arr["t"].shape[0])
            ]
        )
        limit = arr.get("limit")
        init = TwoLayerInit(
            arr["W0"], arr["A0"], arr["t"], arr["x0"], arr["x"], z, sched.dsm_weight(arr["t"]),
            arr["data"], sched, cfg["eps"], cfg["activation"], cfg["init"], cfg["embedding"],
            cfg["bias"], seed_from_config(cfg["seed"]), limit,
        )  # fmt: skip
        return cls(
            init, cfg["learning_rate"], arr["steps"], arr["W"], arr["A"], arr["train_loss"], limit
        )


def _train_loss(W, A, init: TwoLayerInit) -> np.ndarray:
    out = forward(W, A, init.z, init.activation)
    return 0.5 * np.mean(init.weight * np.sum((out - init.x0) ** 2, axis=2), axis=1)


def train_two_layer(
    init: TwoLayerInit,
    learning_rate: float,
    taus: object,
    *,
    check_stability: bool = True,
    resume_from: TwoLayerTrajectory | None = None,
    chunk_steps: int = 100,
    progress: bool = False,
) -> TwoLayerTrajectory:
    """Train every network by full-batch gradient descent, recording checkpoints.

    Parameters
    ----------
    init : TwoLayerInit
    learning_rate : float
        eta > 0; must be below :func:`stability_limit` for every model (``ValueError`` otherwise).
    taus : array_like, shape (K,)
        Training times ``tau >= 0``, increasing; checkpoint ``k`` is taken after
        ``rint(tau_k / eta)`` steps (``0`` gives the initial networks).
    check_stability : bool, default True
        Compute the stability limit and refuse ``eta >= eta_max`` (costs about two gradient steps
        per Lanczos iteration, typically 10-40 iterations).
    resume_from : TwoLayerTrajectory, optional
        An earlier run on the same ``init`` and ``learning_rate``: training continues from its
        last checkpoint (the new ``taus`` must not precede it) and its checkpoints are kept.
    chunk_steps : int
        Steps per compiled call (progress and divergence checks happen between calls).
    progress : bool

    Returns
    -------
    TwoLayerTrajectory

    Raises
    ------
    ValueError
        ``learning_rate`` at or beyond the stability limit (the message gives the limit), or
        training that diverges anyway (non-finite parameters); bad ``taus``.
    """
    if not isinstance(init, TwoLayerInit):
        raise TypeError("init must be a TwoLayerInit (see init_two_layer_ensemble)")
    eta = check_learning_rate(learning_rate)
    steps = taus_to_steps(taus, eta)
    n_models, width, d_in = init.W0.shape
    check_budget(
        "taus", f"(up to {int(steps[-1])} gradient steps at learning_rate = {eta:.3g})",
        n_ops=4.0 * float(steps[-1]) * n_models * width * d_in * init.x.shape[1], what="training",
    )  # fmt: skip
    chunk_steps = check_count(chunk_steps, "chunk_steps")
    limit = None
    if check_stability:
        limit = stability_limit(init)
        worst = int(np.argmin(limit))
        if eta >= limit[worst]:
            raise ValueError(
                f"learning_rate = {eta:.6g} is at or beyond the stability limit of gradient "
                f"descent, eta_max = 2P / lambda_max(Lambda^1/2 Theta Lambda^1/2) = "
                f"{limit[worst]:.6g} (model {worst}, empirical tangent kernel at initialization); "
                "use learning_rate < eta_max"
            )
    act = activation_code(init.activation)
    zc = np.ascontiguousarray(np.swapaxes(init.z, 1, 2))
    x0c, wr = check_targets(init.x0, init.weight, init.n_models, init.n_samples, init.dim)
    if resume_from is None:
        W, A, done = init.W0.copy(), init.A0.copy(), 0
        prev = None
    else:
        if resume_from.init is not init or resume_from.learning_rate != eta:
            raise ValueError("resume_from must come from the same init and learning_rate")
        done = int(resume_from.steps[-1])
        if steps[0] < done:
            raise ValueError(
                f"taus must start at or after the resumed run's last time {eta * done:g}"
            )
        W, A = resume_from.W[-1].copy(), resume_from.A[-1].copy()
        prev = resume_from
    Ws, As, losses = [], [], []
    bar = tqdm(total=int(steps[-1]) - done, desc="training", disable=not progress, leave=False)
    for target in steps:
        while done < target:
            k = int(min(chunk_steps, target - done))
            gd_kernel(W, A, zc, x0c, wr, eta, k, act)
            done += k
            bar.update(k)
            if not (np.all(np.isfinite(W)) and np.all(np.isfinite(A))):
                bar.close()
                raise ValueError(
                    f"learning_rate = {eta:.6g}: gradient descent diverged (non-finite "
                    f"parameters after {done} steps); use a smaller learning_rate"
                )
        Ws.append(W.copy())
        As.append(A.copy())
        losses.append(_train_loss(W, A, init))
    bar.close()
    if prev is not None:
        steps = np.concatenate([prev.steps, steps])
        Ws = list(prev.W) + Ws
        As = list(prev.A) + As
        losses = list(prev.train_loss) + losses
        limit = prev.limit if limit is None else limit
    return TwoLayerTrajectory(init, eta, steps, np.stack(Ws), np.stack(As), np.stack(losses), limit)


def train_two_layer_ensemble(
    data: object,
    width: int,
    n_models: int,
    n_samples: int,
    eps: float,
    learning_rate: float,
    taus: object,
    schedule: object = "vp-linear",
    *,
    activation: str = "relu",
    init: str = "antisymmetric",
    embedding: str = "linear",
    bias: float = 1.0,
    seed: int | np.random.SeedSequence = 0,
    check_stability: bool = True,
    progress: bool = False,
) -> TwoLayerTrajectory:
    """:func:`init_two_layer_ensemble` followed by :func:`train_two_layer` (same arguments)."""
    start = init_two_layer_ensemble(
        data, width, n_models, n_samples, eps, schedule, activation=activation, init=init,
        embedding=embedding, bias=bias, seed=seed,
    )  # fmt: skip
    return train_two_layer(
        start, learning_rate, taus, check_stability=check_stability, progress=progress
    )
