"""Configuration of a memorization-transition run: data set, K grid, model class, criteria.

One :class:`TransitionConfig` describes one curve family of docs/memorization.md: for each K of
the grid, ``n_models`` independent (training set, model) pairs of one model class, each sampled
with the PF-ODE and its samples classified as memorized / spurious / generalized by three
criteria. Every field is checked on construction (``ValueError`` naming the field and its range)
before anything is trained, and the configuration is saved with the results so they reload.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from gtv.numerics.checks import (
    check_choice,
    check_count,
    check_eps,
    check_field_types,
    check_ridge,
)
from gtv.numerics.kernel.checks import check_activation
from gtv.numerics.pfode import check_method
from gtv.numerics.schedules import SCHEDULE_NAMES, get_schedule
from gtv.numerics.streams import check_seed, seed_from_config, seed_to_config
from gtv.validation.memory.datasets import DATASETS, MAX_K, dataset_dim

__all__ = ["CRITERIA", "MODEL_CLASSES", "TransitionConfig", "default_K_grid"]

#: Model classes: the exact empirical score (sampled down to ``eps``), linear-feature models,
#: lazy infinite-width networks (NTK regression) and trained two-layer networks.
MODEL_CLASSES = ("exact", "linear", "kernel", "two-layer")
#: The three classifications: Pham et al.'s absolute thresholds, the nearest-neighbour ratio
#: test, and the model's own attractors (docs/memorization.md, "Three criteria").
CRITERIA = ("thresholds", "ratio", "attractors")
#: Upper bounds checked before any work (memory and time scale with these).
LIMITS = {"n_models": 10_000, "n_samples": 1_000_000, "n_train": 1_000_000, "width": 100_000}


def default_K_grid(k_max: int = 10_000, n: int = 12) -> tuple[int, ...]:
    """``n`` log-spaced training-set sizes from 2 to ``k_max`` (rounded, distinct)."""
    grid = np.unique(np.round(np.geomspace(2, k_max, n)).astype(int))
    return tuple(int(k) for k in grid)


@dataclass(frozen=True)
class TransitionConfig:
    """One memorization-transition run (module docstring).

    Parameters
    ----------
    dataset : {"circle", "mixture", "sphere"}, default "circle"
    Ks : tuple of int, default :func:`default_K_grid` (12 values, 2 ... 10**4)
        Training-set sizes, strictly increasing.
    model : {"exact", "linear", "kernel", "two-layer"}, default "exact"
    n_models : int, default 8
        Independent (training set, model) pairs per K: the statistical unit of every CI.
    n_samples : int, default 1000
        PF-ODE samples per model.
    eps : float, default 0.01
        Training cutoff and final sampling time (for ``"exact"``: the finite time the exact
        empirical score is sampled down to).
    schedule : str, default "vp-linear"
    n_steps : int, default 30
    method : {"euler", "heun"}, default "euler"
    dim : int, optional
        Dimension of the ``"sphere"`` set (default 16).
    n_train : int, default 4096
        DSM triples per model (P) for the trained classes.
    n_space, n_time : int, default 8, 3
        Linear features: Gaussian bumps per spatial axis over [-1.5, 1.5] and over time
        (``F = n_space**D * n_time``; the ``"sphere"`` set is out of reach for product features).
    ridge : float, default 1e-3
        Ridge of the linear and kernel models.
    activation : str, default "relu"
        Kernel and two-layer networks.
    tau : float, default inf
        Training time of kernel models (``inf``: the converged regression).
    width : int, default 256
        Hidden units of two-layer networks.
    learning_rate : float, default 0.5
        Gradient-descent rate of two-layer networks.
    train_steps : int, default 2000
        Gradient-descent steps of two-layer networks (training time ``tau = lr * steps``).
    delta_m, delta_s : float, optional
        Thresholds of the ``"thresholds"`` criterion (memorized: nearest training point within
        ``delta_m``; spurious: another sample within ``delta_s``). Default: one third of the median
        nearest-neighbour distance of the training set
        (:func:`gtv.numerics.memory.default_thresholds`).
    ratio : float, default 1/3
        The nearest/second-nearest distance ratio of the ``"ratio"`` criterion.
    flat_tol : float, default 1.0
        The ``"attractors"`` criterion calls an attractor flat (part of a continuum: generalized)
        when ``log p_eps`` drops by less than this on the straight path to the nearest other
        attractor found (:func:`gtv.numerics.memory.log_density_barriers`). Its memory
        tolerance is ``delta_m``.
    theory : bool, default True
        For ``"linear"``: also sample the first-order theory's Gaussian field built for the same
        training set (Monte Carlo population moments) and classify its samples -- the theory's
        prediction of the fractions.
    n_mc : int, default 100000
        Monte Carlo triples of that theory (:func:`gtv.numerics.linear.linear_model_theory_mc`).
    seed : int, default 0
    """

    dataset: str = "circle"
    Ks: tuple[int, ...] = field(default_factory=default_K_grid)
    model: str = "exact"
    n_models: int = 8
    n_samples: int = 1000
    eps: float = 0.01
    schedule: str = "vp-linear"
    n_steps: int = 30
    method: str = "euler"
    dim: int | None = None
    n_train: int = 4096
    n_space: int = 8
    n_time: int = 3
    ridge: float = 1e-3
    activation: str = "relu"
    tau: float = math.inf
    width: int = 256
    learning_rate: float = 0.5
    train_steps: int = 2000
    delta_m: float | None = None
    delta_s: float | None = None
    ratio: float = 1 / 3
    flat_tol: float = 1.0
    theory: bool = True
    n_mc: int = 100_000
    seed: object = 0

    def __post_init__(self) -> None:
        if isinstance(self.Ks, list):
            object.__setattr__(self, "Ks", tuple(self.Ks))
        check_field_types(self)
        check_choice(self.dataset, "dataset", DATASETS)
        check_choice(self.model, "model", MODEL_CLASSES)
        check_choice(self.schedule, "schedule", SCHEDULE_NAMES)
        object.__setattr__(self, "dim", dataset_dim(self.dataset, self.dim))
        Ks = tuple(self.Ks) if not isinstance(self.Ks, (int, np.integer)) else (self.Ks,)
        if not Ks:
            raise ValueError("Ks must name at least one training-set size")
        Ks = tuple(check_count(k, "Ks", minimum=2) for k in Ks)
        if any(b <= a for a, b in zip(Ks, Ks[1:], strict=False)):
            raise ValueError(f"Ks must be strictly increasing, got {Ks}")
        if Ks[-1] > MAX_K:
            raise ValueError(f"Ks must be at most {MAX_K}, got {Ks[-1]}")
        object.__setattr__(self, "Ks", Ks)
        for name, lo in (("n_models", 2), ("n_samples", 4), ("n_steps", 1), ("n_train", 1)):
            check_count(getattr(self, name), name, minimum=lo)
        for name in ("n_space", "n_time", "width", "train_steps", "n_mc"):
            check_count(getattr(self, name), name)
        for name, hi in LIMITS.items():
            if getattr(self, name) > hi:
                raise ValueError(f"{name} must be at most {hi}, got {getattr(self, name)}")
        check_eps(self.eps, get_schedule(self.schedule).T)
        check_method(self.method)
        check_ridge(self.ridge)
        check_activation(self.activation)
        if not (isinstance(self.tau, (int, float)) and self.tau > 0):
            raise ValueError(f"tau must be a positive number or inf, got {self.tau!r}")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(f"learning_rate must be a positive number, got {self.learning_rate!r}")
        for name in ("delta_m", "delta_s"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive number (or None), got {v!r}")
        if not (isinstance(self.ratio, (int, float)) and 0 < self.ratio < 1):
            raise ValueError(f"ratio must lie in (0, 1), got {self.ratio!r}")
        if not (isinstance(self.flat_tol, (int, float)) and self.flat_tol > 0):
            raise ValueError(f"flat_tol must be a positive number, got {self.flat_tol!r}")
        if self.model == "linear" and self.dataset == "sphere":
            raise ValueError(
                "model: product features need n_space**D functions; the 'sphere' set "
                f"(D = {self.dim}) is out of reach for 'linear' (use 'kernel' or 'two-layer')"
            )
        if self.model == "linear":
            F = self.n_space**self.dim * self.n_time
            if F > 4000:
                raise ValueError(f"n_space, n_time: F = {F} linear features exceeds 4000")
        object.__setattr__(self, "seed", check_seed(self.seed))

    @property
    def runs_theory(self) -> bool:
        """Whether the linear theory's prediction is computed."""
        return self.model == "linear" and bool(self.theory)

    def to_dict(self) -> dict:
        """JSON-safe dictionary (``tau = inf`` as the string ``"inf"``)."""
        d = dataclasses.asdict(self)
        d["Ks"] = list(self.Ks)
        d["tau"] = "inf" if math.isinf(self.tau) else self.tau
        d["seed"] = seed_to_config(self.seed)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TransitionConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError`` naming them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown configuration keys {unknown}; allowed: {sorted(names)}")
        d = dict(d)
        if "tau" in d:
            d["tau"] = math.inf if d["tau"] == "inf" else float(d["tau"])
        if "Ks" in d:
            d["Ks"] = tuple(d["Ks"])
        if "seed" in d:
            d["seed"] = seed_from_config(d["seed"])
        return cls(**d)
