"""Ensembles of kernel-expansion denoisers: trained lazy infinite-width networks.

docs/math/kernel.md.

:func:`train_kernel_ensemble` trains N independent infinite-width models (one DSM draw each, from
the per-model children of stream ``"training"``, :mod:`gtv.numerics.streams`) by
:func:`gtv.numerics.kernel.regression.fit_kernel_regression` and returns a :class:`KernelEnsemble`:
per model the kernel centres and the coefficients ``beta_tau`` for each requested ``tau``, so that
``D^_n(z) = Theta(z, centres_n) beta_n``. The same container holds Gaussian-field ensembles of the
theory (one set of centres shared by all members). It is sampled with the PF-ODE
(docs/math/conventions.md: Euler or Heun on ``linspace(T, eps, n_steps + 1)``, the denoiser
evaluated exactly at each sample) by :meth:`KernelEnsemble.sample`
(:mod:`gtv.numerics.kernel.sampler`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gtv.numerics.checks import check_budget, check_count, check_eps, check_points, check_ridge
from gtv.numerics.dsm import draw_dsm_triples
from gtv.numerics.io import load_result_of_kind, result_file, save_result
from gtv.numerics.kernel.checks import (
    check_activation,
    check_flow,
    check_lr,
    check_tau,
)
from gtv.numerics.kernel.gram import ntk_gram, serial_blas
from gtv.numerics.kernel.inputs import check_embedding, embed_time, ntk_inputs
from gtv.numerics.kernel.regression import fit_kernel_regression
from gtv.numerics.kernel.sampler import integrate_kernel_ensemble
from gtv.numerics.pfode import (
    abs_max,
    check_method,
    initial_points,
    model_rows,
    pf_ode_time_grid,
    warn_if_diverged,
)
from gtv.numerics.schedules import NumericSchedule, get_schedule, resolve_schedule
from gtv.numerics.streams import check_seed, model_rngs

__all__ = ["KernelEnsemble", "train_kernel_ensemble"]


@dataclass
class KernelEnsemble:
    """N kernel-expansion denoisers ``D^_n(z) = Theta(z, centres[n]) coeffs[n, k]``.

    One coefficient set per training time ``taus[k]``. Produced by :func:`train_kernel_ensemble`
    (infinite-width networks trained on independent DSM draws) and by the Gaussian-field
    predictions of the kernel theory (one set of centres shared by all members).

    Attributes
    ----------
    centres : ndarray (N, P, d_in) or (1, P, d_in)
        Kernel centres per model, or one set shared by all models (Gaussian fields).
    coeffs : ndarray (N, n_tau, P, D)
    taus : ndarray (n_tau,)
    activation : str
    data : ndarray (M, D)
        Training points (for summaries).
    schedule : NumericSchedule
    eps : float
    embedding : str
    bias : float
        Input construction (:func:`gtv.numerics.kernel.inputs.ntk_inputs`).
    config : dict
        Everything else (``kind``, ``P``, ``lr``, ``flow``, ``ridge``, ``seed``...), JSON-safe.
    """

    centres: np.ndarray
    coeffs: np.ndarray
    taus: np.ndarray
    activation: str
    data: np.ndarray
    schedule: NumericSchedule
    eps: float
    embedding: str = "linear"
    bias: float = 1.0
    config: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.centres = np.ascontiguousarray(self.centres, dtype=np.float64)
        self.coeffs = np.ascontiguousarray(self.coeffs, dtype=np.float64)
        self.taus = np.atleast_1d(check_tau(self.taus))
        self.activation = check_activation(self.activation)
        if self.centres.ndim != 3 or self.coeffs.ndim != 4:
            raise ValueError("centres must be (N or 1, P, d_in) and coeffs (N, n_tau, P, D)")
        n, p, d_in = self.coeffs.shape[0], self.centres.shape[1], self.centres.shape[2]
        if self.centres.shape[0] not in (1, n) or self.coeffs.shape[1:3] != (self.taus.size, p):
            raise ValueError(
                f"centres {self.centres.shape} and coeffs {self.coeffs.shape} must have shapes "
                f"(N or 1, P, d_in) and (N, n_tau = {self.taus.size}, P, D)"
            )
        if d_in != self.coeffs.shape[3] + 2:
            raise ValueError("centres must have d_in = D + 2 columns")
        check_embedding(self.embedding)

    @property
    def n_models(self) -> int:
        return self.coeffs.shape[0]

    @property
    def shared_centres(self) -> bool:
        """True if all models share one set of centres (stored once)."""
        return self.centres.shape[0] == 1 and self.n_models > 1

    @property
    def dim(self) -> int:
        return self.coeffs.shape[3]

    def tau_index(self, tau: float) -> int:
        """Index of ``tau`` in :attr:`taus` (exact match, ``ValueError`` otherwise)."""
        hit = np.nonzero(self.taus == float(tau))[0]
        if hit.size == 0:
            raise ValueError(f"tau = {tau!r} is not one of this ensemble's taus {self.taus}")
        return int(hit[0])

    def inputs(self, x: object, t: object) -> np.ndarray:
        """``z = (x, e(t), bias)`` with this ensemble's embedding."""
        return ntk_inputs(x, t, self.eps, self.schedule, self.embedding, self.bias)

    @serial_blas
    def denoiser(self, x: object, t: object, tau: float | None = None) -> np.ndarray:
        """``D^_n(x, t)`` for every model: (N, n, D) at ``tau`` (default: the only one)."""
        if tau is None:
            if self.taus.size != 1:
                raise ValueError("tau is required when the ensemble holds several taus")
            k = 0
        else:
            k = self.tau_index(tau)
        zq = self.inputs(x, t)
        if self.centres.shape[0] == 1:
            K = ntk_gram(zq, self.centres[0], self.activation)
            return np.einsum("ip,npd->nid", K, self.coeffs[:, k])
        return np.stack(
            [
                ntk_gram(zq, self.centres[n], self.activation) @ self.coeffs[n, k]
                for n in range(self.n_models)
            ]
        )

    def sample(
        self,
        n_samples: int,
        tau: float | None = None,
        *,
        n_steps: int = 30,
        method: str = "euler",
        seed: int | np.random.SeedSequence = 0,
        x_T: np.ndarray | None = None,
        backend: str = "numba",
        models: np.ndarray | None = None,
    ) -> np.ndarray:
        """PF-ODE samples of every model at ``t = eps``: (N, n_samples, D).

        Parameters
        ----------
        n_samples : int
            Samples per model.
        tau : float, optional
            Which training time (default: the only one).
        n_steps, method
            Euler (default, 30 steps) or Heun on ``linspace(T, eps, n_steps + 1)``.
        seed : int or SeedSequence
            Model ``n`` draws ``x_T ~ N(0, sigma_T**2 I)`` from stream ``"sampling"``
            (:func:`gtv.numerics.pfode.initial_points`).
        x_T : ndarray (N, n_samples, D), optional
            Initial points (overrides ``seed``).
        backend : {"numba", "numpy"}
        models : ndarray of int (R,), optional
            With ``x_T`` of shape (R, n_samples, D): row ``r`` is carried by model ``models[r]``
            (e.g. the refinement rows of :func:`gtv.numerics.transport.transport_1d`); the
            result is then (R, n_samples, D).

        Warns
        -----
        DivergenceWarning
            When samples end non-finite or beyond
            :func:`gtv.numerics.pfode.divergence_bound` of the training data (e.g. Heun with
            few steps at a tiny ``eps``, or huge coefficients); the share is in the message.
        """
        n_samples = check_count(n_samples, "n_samples")
        check_method(method)
        k = 0 if tau is None and self.taus.size == 1 else None
        if k is None:
            if tau is None:
                raise ValueError("tau is required when the ensemble holds several taus")
            k = self.tau_index(tau)
        sched = self.schedule
        ts = pf_ode_time_grid(sched, self.eps, n_steps)
        emb = embed_time(ts, self.eps, sched, self.embedding)
        ax = np.asarray(sched.pf_x_coeff(ts), dtype=float)
        bx = np.asarray(sched.pf_mean_coeff(ts), dtype=float)
        rows = model_rows(models, self.n_models, x_T)
        x = initial_points(x_T, seed, rows.size, n_samples, self.dim, sched)
        start = abs_max(x)
        coeffs = np.ascontiguousarray(self.coeffs[:, k])
        x = integrate_kernel_ensemble(
            x, self.centres, coeffs, self.activation, emb, self.bias, ts, ax, bx,
            method == "heun", backend, rows,
        )  # fmt: skip
        radius = np.max(np.abs(self.data), initial=0.0)
        warn_if_diverged(x, radius, sched, method, ts.size - 1, start)
        return x

    def save(self, path: str | Path) -> Path:
        """Save to ``.npz`` (arrays + JSON configuration; loading never unpickles)."""
        cfg = {
            "kind": "kernel_ensemble",
            "activation": self.activation,
            "schedule": self.schedule.name,
            "T": self.schedule.T,
            "eps": self.eps,
            "embedding": self.embedding,
            "bias": self.bias,
            "config": self.config,
        }
        arrays = {
            "centres": self.centres,
            "coeffs": self.coeffs,
            "taus": self.taus,
            "data": self.data,
        }
        return save_result(path, arrays, cfg)

    @classmethod
    def load(cls, path: str | Path) -> KernelEnsemble:
        a, cfg = load_result_of_kind(path, "kernel_ensemble", "a KernelEnsemble")
        with result_file(path, "KernelEnsemble"):
            return cls(
                a["centres"],
                a["coeffs"],
                a["taus"],
                cfg["activation"],
                a["data"],
                get_schedule(cfg["schedule"], cfg["T"]),
                cfg["eps"],
                cfg["embedding"],
                cfg["bias"],
                cfg["config"],
            )


@serial_blas
def train_kernel_ensemble(
    data: object,
    n_train: int,
    n_models: int,
    eps: float,
    taus: object,
    schedule: object = "vp-linear",
    activation: str = "relu",
    *,
    lr: float = 1.0,
    flow: str = "gradient-flow",
    ridge: float = 0.0,
    embedding: str = "linear",
    bias: float = 1.0,
    seed: int | np.random.SeedSequence = 0,
) -> KernelEnsemble:
    """Train N lazy infinite-width networks, each on its own P DSM triples.

    Parameters
    ----------
    data : array_like (M, D)
        Training points.
    n_train : int
        P, DSM triples per model (:func:`gtv.numerics.dsm.draw_dsm_triples`).
    n_models : int
        N.
    eps : float
        Training cutoff, ``t ~ U[eps, T]``.
    taus : float or array_like
        Training times ``>= 0`` (``inf`` allowed); coefficients are stored for each.
    schedule, activation, embedding, bias
        See :func:`gtv.numerics.kernel.inputs.ntk_inputs` and :func:`ntk_gram`.
    lr : float
        Learning rate ``eta`` (gradient flow depends only on ``lr * tau``).
    flow : {"gradient-flow", "gradient-descent"}
        For gradient descent ``tau / lr`` must be an integer and ``lr`` below every model's
        stability limit (else ``ValueError`` naming ``lr`` with the limit).
    ridge : float
        Weight decay ``rho`` toward the initialization (module docstring).
    seed : int or SeedSequence
        Model ``n`` draws its triples from ``stream(seed, "training").spawn(N)[n]``
        (:mod:`gtv.numerics.streams`).

    Returns
    -------
    KernelEnsemble
        ``config`` records ``kind = "kernel-regression"``, P, lr, flow, ridge, seed and the
        per-model stability limits ``lr_max``.
    """
    sched = resolve_schedule(schedule)
    data = check_points(data, "data")
    n_train = check_count(n_train, "n_train (P)")
    n_models = check_count(n_models, "n_models")
    eps = check_eps(eps, sched.T)
    taus = np.atleast_1d(check_tau(taus))
    lr = check_lr(lr)
    flow = check_flow(flow)
    ridge = check_ridge(ridge)
    activation = check_activation(activation)
    check_embedding(embedding)
    seed = check_seed(seed)
    D = data.shape[1]
    check_budget(
        "n_models, n_train (P)", f"{n_models}, {n_train}",
        n_bytes=8.0 * (n_models * n_train * (2 * D + 3) + 3.0 * n_train**2),
        n_ops=float(n_models) * float(n_train) ** 3, what="the kernel regressions",
    )  # fmt: skip
    centres = np.empty((n_models, n_train, D + 2))
    coeffs = np.empty((n_models, taus.size, n_train, D))
    lr_max = np.empty(n_models)
    for n, rng in enumerate(model_rngs(seed, "training", n_models)):
        t, x0, x = draw_dsm_triples(rng, data, n_train, eps, sched)
        z = ntk_inputs(x, t, eps, sched, embedding, bias)
        model = fit_kernel_regression(z, x0, sched.dsm_weight(t), activation, ridge)
        lr_max[n] = model.lr_max
        centres[n] = z
        coeffs[n] = model.coefficients(taus, lr, flow)
    cfg = {
        "kind": "kernel-regression",
        "P": n_train,
        "lr": lr,
        "flow": flow,
        "ridge": ridge,
        "seed": seed if isinstance(seed, int) else -1,
        "lr_max": lr_max.tolist(),
    }
    return KernelEnsemble(centres, coeffs, taus, activation, data, sched, eps, embedding, bias, cfg)
