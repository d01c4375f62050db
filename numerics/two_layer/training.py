"""Ensembles of two-layer networks trained by full-batch gradient descent on DSM draws.

docs/math/kernel.md (lazy networks), issue 6 item 4. The network, its compiled forward/backward passes
and its tangent kernel live in :mod:`gtv.numerics.two_layer.network`; this module draws the training sets and
initial parameters, checks the learning rate against the stability limit of gradient descent, and
trains, recording the parameters at a list of training times.

Randomness (the reproducibility contract). Model ``m`` uses the generator
``model_rngs(seed, N)[m]`` (``SeedSequence(seed).spawn(N)[m]``) in this order:

1. its P DSM triples, :func:`gtv.numerics.linear.model.draw_dsm_triples` (times, data indices, noise);
2. its initial parameters: ``init="antisymmetric"`` (default, n even): ``W_half`` =
   ``standard_normal((n/2, d_in))`` then ``A_half`` = ``standard_normal((n/2, D))``, and
   ``W = [W_half; W_half]``, ``A = [A_half; -A_half]`` (the "doubling trick": ``D^_0 = 0``
   exactly, same tangent-kernel distribution); ``init="standard"``: ``W`` =
   ``standard_normal((n, d_in))`` then ``A`` = ``standard_normal((n, D))``.

The Lanczos start vectors of :func:`stability_limit` come from ``SeedSequence([seed, 2])``.

Training time. ``tau = eta * k`` after ``k`` steps of rate ``eta``; requested times are rounded to
whole steps (``k = rint(tau / eta)``) and the trajectory records the times actually reached.

Stability. Near the initial parameters the loss Hessian is the Gauss-Newton matrix
``(1/P) J^T Lambda J`` (plus a residual term that vanishes as ``n -> infinity``); gradient descent
on the linearized model is stable iff ``eta < eta_max = 2 P / lambda_max(G)`` with
``G = Lambda^{1/2} J J^T Lambda^{1/2} = Lambda^{1/2} Theta Lambda^{1/2}``, the (P D) x (P D)
weighted empirical tangent-kernel Gram matrix at initialization (all output blocks, including the
off-diagonal ones of D > 1). ``lambda_max(G)`` is computed per model by Lanczos iteration with full
reorthogonalization on the operator ``v -> Lambda^{1/2} J J^T Lambda^{1/2} v`` (one backward and one
forward-mode pass per iteration, never forming G); the returned value is the largest Ritz value
plus its residual bound ``beta_k |s_k|`` (an interval that contains an eigenvalue), so it errs on
the safe side by at most ``rtol`` relative.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.linalg import eigh_tridiagonal
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from gtv.numerics.checks import check_count, check_eps, check_points
from gtv.numerics.io import load_result, save_result
from gtv.numerics.kernel.inputs import check_embedding, ntk_inputs
from gtv.numerics.linear.model import draw_dsm_triples, model_rngs
from gtv.numerics.schedules import NumericSchedule, get_schedule, resolve_schedule
from gtv.numerics.two_layer.network import (
    TwoLayerNetworks,
    _check_targets,
    _gd_kernel,
    _jvp_kernel,
    _vjp_kernel,
    check_activation,
    forward,
    linearized_predictions,
)

__all__ = [
    "INITS",
    "TwoLayerInit",
    "TwoLayerTrajectory",
    "gauss_newton_lmax",
    "init_two_layer_ensemble",
    "linearized_ensemble_predictions",
    "stability_limit",
    "train_two_layer",
    "train_two_layer_ensemble",
]

#: Allowed initializations.
INITS = ("antisymmetric", "standard")


def _check_width(width: object, init: str) -> int:
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1:
        raise ValueError(f"width must be an integer >= 1, got {width!r}")
    if init == "antisymmetric" and width % 2:
        raise ValueError(
            f"width must be even for init='antisymmetric' (pairs of mirrored units), got {width}"
        )
    return int(width)


@dataclass
class TwoLayerInit:
    """Training sets and initial parameters of ``N`` networks (see the module docstring).

    Attributes
    ----------
    W0 : ndarray, shape (N, n, d_in)
    A0 : ndarray, shape (N, n, D)
    t : ndarray, shape (N, P)
        DSM times.
    x0, x : ndarray, shape (N, P, D)
        Clean and noisy points.
    z : ndarray, shape (N, P, d_in)
        Network inputs ``ntk_inputs(x, t, eps, schedule, embedding, bias)``.
    weight : ndarray, shape (N, P)
        ``lambda~ = alpha_t**2 / sigma_t**2``.
    data : ndarray, shape (M, D)
    schedule : NumericSchedule
    eps : float
    activation, init, embedding : str
    bias : float
    seed : int
    """

    W0: np.ndarray
    A0: np.ndarray
    t: np.ndarray
    x0: np.ndarray
    x: np.ndarray
    z: np.ndarray
    weight: np.ndarray
    data: np.ndarray
    schedule: NumericSchedule
    eps: float
    activation: str
    init: str
    embedding: str
    bias: float
    seed: int
    _limit: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_models(self) -> int:
        return self.W0.shape[0]

    @property
    def width(self) -> int:
        return self.W0.shape[1]

    @property
    def n_samples(self) -> int:
        """P, the DSM triples per model."""
        return self.t.shape[1]

    @property
    def dim(self) -> int:
        return self.A0.shape[2]

    def networks(self) -> TwoLayerNetworks:
        """The untrained networks."""
        return TwoLayerNetworks(
            self.W0, self.A0, self.activation, self.schedule, self.eps, self.embedding, self.bias
        )

    def config(self) -> dict:
        return {
            "n_models": self.n_models,
            "width": self.width,
            "n_samples": self.n_samples,
            "schedule": self.schedule.name,
            "T": self.schedule.T,
            "eps": self.eps,
            "activation": self.activation,
            "init": self.init,
            "embedding": self.embedding,
            "bias": self.bias,
            "seed": self.seed,
        }


def init_two_layer_ensemble(
    data: object,
    width: int,
    n_models: int,
    n_samples: int,
    eps: float,
    schedule: object = "vp-linear",
    *,
    activation: str = "relu",
    init: str = "antisymmetric",
    embedding: str = "linear",
    bias: float = 1.0,
    seed: int = 0,
) -> TwoLayerInit:
    """Draw every model's DSM triples and initial parameters (module docstring for the order).

    Parameters
    ----------
    data : array_like, shape (M, D)
        Training points.
    width : int
        n >= 1 hidden units (even for ``init="antisymmetric"``).
    n_models : int
        N >= 1.
    n_samples : int
        P >= 1 DSM triples per model.
    eps : float
        Smallest training time, ``0 < eps < T``.
    schedule : str or NumericSchedule, default "vp-linear"
    activation : {"relu", "erf"}
    init : {"antisymmetric", "standard"}
    embedding : {"linear", "log-sigma"}
        Time embedding of :func:`gtv.numerics.kernel.inputs.ntk_inputs`.
    bias : float
        The constant input coordinate.
    seed : int

    Returns
    -------
    TwoLayerInit
    """
    sched = resolve_schedule(schedule)
    data = check_points(data, "data")
    check_activation(activation)
    width = _check_width(width, init)
    check_embedding(embedding)
    n_models = check_count(n_models, "n_models (N)")
    n_samples = check_count(n_samples, "n_samples (P)")
    eps = check_eps(eps, sched.T)
    D = data.shape[1]
    d_in = D + 2
    rngs = model_rngs(seed, n_models)
    W0 = np.empty((n_models, width, d_in))
    A0 = np.empty((n_models, width, D))
    t = np.empty((n_models, n_samples))
    x0 = np.empty((n_models, n_samples, D))
    x = np.empty((n_models, n_samples, D))
    for m, rng in enumerate(rngs):
        t[m], x0[m], x[m] = draw_dsm_triples(rng, data, n_samples, eps, sched)
        if init == "antisymmetric":
            half = width // 2
            W0[m, :half] = rng.standard_normal((half, d_in))
            A0[m, :half] = rng.standard_normal((half, D))
            W0[m, half:] = W0[m, :half]
            A0[m, half:] = -A0[m, :half]
        else:
            W0[m] = rng.standard_normal((width, d_in))
            A0[m] = rng.standard_normal((width, D))
    z = np.stack([ntk_inputs(x[m], t[m], eps, sched, embedding, bias) for m in range(n_models)])
    return TwoLayerInit(
        W0, A0, t, x0, x, z, sched.dsm_weight(t), data, sched, eps, activation, init, embedding,
        float(bias), int(seed),
    )  # fmt: skip


# -- stability limit ----------------------------------------------------------------------------
def gauss_newton_lmax(
    W: np.ndarray,
    A: np.ndarray,
    z: np.ndarray,
    weight: np.ndarray,
    activation: str = "relu",
    *,
    rtol: float = 1e-6,
    max_iter: int = 200,
    seed: int = 0,
) -> np.ndarray:
    """Largest eigenvalue of ``G = Lambda^{1/2} J J^T Lambda^{1/2}`` per model (Lanczos).

    Parameters
    ----------
    W, A : ndarray, shapes (N, n, d_in), (N, n, D)
    z : ndarray, shape (N, P, d_in)
    weight : ndarray, shape (N, P)
        ``Lambda = diag(weight)`` (repeated over the D outputs).
    rtol : float
        Stop when the residual bound is below ``rtol`` times the top Ritz value.
    max_iter : int
        Most Lanczos steps (also capped by P D).
    seed : int
        Start vectors from ``SeedSequence([seed, 2]).spawn(N)``.

    Returns
    -------
    ndarray, shape (N,)
        Top Ritz value plus its residual bound (>= an eigenvalue of G within ``rtol``).
    """
    act = check_activation(activation)
    W = np.ascontiguousarray(W, dtype=np.float64)
    A = np.ascontiguousarray(A, dtype=np.float64)
    n_models, _, _ = W.shape
    n_out = A.shape[2]
    p = z.shape[1]
    zc = np.ascontiguousarray(np.swapaxes(np.asarray(z, dtype=np.float64), 1, 2))
    sw = np.sqrt(np.asarray(weight, dtype=np.float64))[:, None, :]  # (N, 1, P)
    dim = p * n_out

    def matvec(v: np.ndarray) -> np.ndarray:  # v: (N, D*P) in (D, P) order
        r = np.ascontiguousarray(v.reshape(n_models, n_out, p) * sw)
        gW, gA = _vjp_kernel(W, A, zc, r, act)
        return (_jvp_kernel(W, A, zc, gW, gA, act) * sw).reshape(n_models, dim)

    n_iter = min(int(max_iter), dim)
    starts = [
        np.random.default_rng(s).standard_normal(dim)
        for s in np.random.SeedSequence([int(seed), 2]).spawn(n_models)
    ]
    V = np.zeros((n_iter + 1, n_models, dim))
    V[0] = np.stack(starts)
    V[0] /= np.linalg.norm(V[0], axis=1, keepdims=True)
    alpha = np.zeros((n_iter, n_models))
    beta = np.zeros((n_iter, n_models))
    est = np.full(n_models, np.nan)
    done = np.zeros(n_models, dtype=bool)
    with threadpool_limits(limits=1, user_api="blas"):
        for j in range(n_iter):
            w = matvec(V[j])
            alpha[j] = np.einsum("nd,nd->n", w, V[j])
            w -= alpha[j][:, None] * V[j]
            if j > 0:
                w -= beta[j - 1][:, None] * V[j - 1]
            for _ in range(2):  # full reorthogonalization (twice is enough)
                c = np.einsum("jnd,nd->jn", V[: j + 1], w)
                w -= np.einsum("jn,jnd->nd", c, V[: j + 1])
            beta[j] = np.linalg.norm(w, axis=1)
            for m in np.flatnonzero(~done):
                if j == 0:
                    theta, s = np.array([alpha[0, m]]), np.ones((1, 1))
                else:
                    theta, s = eigh_tridiagonal(alpha[: j + 1, m], beta[:j, m])
                top = int(np.argmax(theta))
                resid = beta[j, m] * abs(s[-1, top])
                exhausted = beta[j, m] <= 1e-13 * max(abs(theta[top]), 1e-300)
                if resid <= rtol * theta[top] or exhausted or j == n_iter - 1:
                    est[m] = theta[top] + resid
                    done[m] = True
            if done.all():
                break
            safe = np.where(beta[j] > 0, beta[j], 1.0)
            V[j + 1] = np.where(done[:, None], 0.0, w / safe[:, None])
    return est


def stability_limit(init: TwoLayerInit, **kwargs) -> np.ndarray:
    """``eta_max = 2 P / lambda_max(G)`` per model at initialization, shape (N,) (cached).

    Keyword arguments go to :func:`gauss_newton_lmax` (its ``seed`` defaults to ``init.seed``);
    only the default call is cached (it is the one :func:`train_two_layer` uses).
    """
    if init._limit is not None and not kwargs:
        return init._limit
    opts = {"seed": init.seed, **kwargs}
    lmax = gauss_newton_lmax(init.W0, init.A0, init.z, init.weight, init.activation, **opts)
    limit = 2.0 * init.n_samples / lmax
    if not kwargs:
        init._limit = limit
    return limit


def _check_learning_rate(learning_rate: object) -> float:
    try:
        eta = float(learning_rate)
    except (TypeError, ValueError):
        raise ValueError(
            f"learning_rate must be a positive number, got {learning_rate!r}"
        ) from None
    if not (np.isfinite(eta) and eta > 0):
        raise ValueError(f"learning_rate must be finite and > 0, got {learning_rate!r}")
    return eta


def _taus_to_steps(taus: object, eta: float) -> np.ndarray:
    taus = np.atleast_1d(np.asarray(taus, dtype=np.float64))
    if taus.ndim != 1 or taus.size < 1 or not np.all(np.isfinite(taus)):
        raise ValueError(f"taus must be a non-empty 1-D array of finite training times, got {taus}")
    if np.any(taus < 0):
        raise ValueError(f"taus must be >= 0 (training times tau = eta * steps), got {taus}")
    if np.any(np.diff(taus) < 0):
        raise ValueError(f"taus must be sorted in increasing order, got {taus}")
    return np.rint(taus / eta).astype(np.int64)


# -- training -----------------------------------------------------------------------------------
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
        return save_result(path, arrays, self.config())

    @classmethod
    def load(cls, path: str | Path) -> TwoLayerTrajectory:
        """Load a trajectory written by :meth:`save` (named schedules only)."""
        arr, cfg = load_result(path)
        sched = get_schedule(cfg["schedule"], cfg["T"])
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
            cfg["bias"], cfg["seed"], limit,
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
    eta = _check_learning_rate(learning_rate)
    steps = _taus_to_steps(taus, eta)
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
    act = check_activation(init.activation)
    zc = np.ascontiguousarray(np.swapaxes(init.z, 1, 2))
    x0c, wr = _check_targets(init.x0, init.weight, init.n_models, init.n_samples, init.dim)
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
            _gd_kernel(W, A, zc, x0c, wr, eta, k, act)
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
    seed: int = 0,
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


def linearized_ensemble_predictions(
    init: TwoLayerInit,
    learning_rate: float,
    steps: object,
    x: object,
    t: object,
    flow: str = "gd",
) -> np.ndarray:
    """Predictions of every network's linearization (its empirical tangent kernel at init).

    See :func:`gtv.numerics.two_layer.network.linearized_predictions`; ``steps`` (K,) step counts.

    Returns
    -------
    ndarray, shape (K, N, Q, D)
    """
    eta = _check_learning_rate(learning_rate)
    zq = init.networks().inputs(x, t)
    steps = np.atleast_1d(np.asarray(steps))
    out = [
        linearized_predictions(
            init.W0[m],
            init.A0[m],
            init.z[m],
            init.x0[m],
            init.weight[m],
            zq,
            eta,
            steps,
            init.activation,
            flow,
        )  # fmt: skip
        for m in range(init.n_models)
    ]
    return np.stack(out, axis=1)
