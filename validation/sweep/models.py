"""The model classes a sweep can run, what each records, and one task of each.

A model class is a settings dataclass (checked at construction: every grid point of a spec is
built before anything runs) plus a task function ``run(point, seed, record)`` returning the
recorded arrays of one grid point. Records (docs/sweeps.md):

* ``gap_mass`` -- per-model fraction of samples farther than ``gap_distance`` from every
  training point (dims ``model``);
* ``density`` -- per-model density histogram of the samples (dims ``model, x``);
* ``transport_error`` -- with ``density = "transport"`` (the default of ``linear`` and
  ``kernel``), recorded with either of the two above: each model's density error estimate
  (dims ``model``);
* ``var_dhat`` -- mean and variance across the ensemble's models of the learned denoiser
  ``D^(x, t)`` at the query points (dims ``query_t, query_x``);
* ``theory`` -- the first-order theory's mean and variance of ``D^`` at the same points
  (``gtv.numerics.linear.FirstOrderLinear``; for ``kernel``
  ``gtv.numerics.kernel.KernelTheoryAt``; a prediction: it uses no trained model).

Model classes: ``linear`` (the linear-feature ensemble of Figure 2: data {-1, 0, 1}, Gaussian
product features ``n_space x n_time``, ridge regression on ``P`` DSM triples per model,
PF-ODE sampling), ``kernel`` (lazy infinite-width two-layer networks -- NTK kernel regression
trained by gradient flow for a time ``tau`` -- on ``P`` DSM triples per model of the same data,
PF-ODE sampling; docs/math/kernel.md) and ``exact`` (the exact Bayes denoiser of the same data,
the ``P -> infinity`` reference, whose "models" are independent sample batches). The ``linear``
and ``kernel`` classes record all four records, ``exact`` only ``gap_mass`` and ``density``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np

from gtv.numerics.checks import (
    check_budget,
    check_choice,
    check_field_types,
    check_query_values,
)
from gtv.numerics.schedules import get_schedule

__all__ = [
    "DENSITIES",
    "MEASUREMENT_SETTINGS",
    "MODEL_CLASSES",
    "RECORDS",
    "ExactPoint",
    "KernelPoint",
    "LinearPoint",
    "ModelClass",
    "model_class",
]

RECORDS = ("gap_mass", "density", "var_dhat", "theory")
MEASUREMENT_SETTINGS = (
    "n_bins", "hist_range", "gap_distance", "query_x", "query_t", "density", "theory_n_t",
    "theory_n_hermite", "theory",
)  # fmt: skip
#: How per-model densities are formed (``density``): transported quantile grid or Monte Carlo.
DENSITIES = ("transport", "mc")
_METHODS = ("euler", "heun")
_SCHEDULES = ("vp-linear", "linear-variance", "song-vp", "ve", "edm")


@dataclass(frozen=True)
class _SamplingPoint:
    """Settings shared by the model classes (sampling and what is measured)."""

    eps: float = 1e-2
    n_models: int = 20
    n_samples: int = 2000
    n_steps: int = 30
    method: str = "euler"
    schedule: str = "vp-linear"
    hist_range: tuple[float, float] = (-2.0, 2.0)
    n_bins: int = 80
    gap_distance: float = 0.25

    def _check_sampling(self) -> None:
        check_choice(self.schedule, "schedule", _SCHEDULES)
        T = get_schedule(self.schedule).T
        if not (np.isfinite(self.eps) and 0 < self.eps < T):
            raise ValueError(f"eps must lie in (0, T) = (0, {T:g}), got {self.eps!r}")
        check_choice(self.method, "method", _METHODS)
        for name, lo in (("n_models", 2), ("n_samples", 1), ("n_steps", 1), ("n_bins", 1)):
            v = getattr(self, name)
            if v < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
        lo, hi = self.hist_range
        if not (len(self.hist_range) == 2 and np.isfinite([lo, hi]).all() and lo < hi):
            raise ValueError(f"hist_range must be (lo, hi) with lo < hi, got {self.hist_range}")
        if not (np.isfinite(self.gap_distance) and self.gap_distance > 0):
            raise ValueError(f"gap_distance must be a finite number > 0, got {self.gap_distance}")
        check_budget(
            "n_models, n_samples", (self.n_models, self.n_samples),
            n_bytes=8.0 * self.n_models * self.n_samples * 2,
            n_ops=float(self.n_models) * self.n_samples * self.n_steps * 100.0,
            what="one task's samples",
        )  # fmt: skip


@dataclass(frozen=True)
class LinearPoint(_SamplingPoint):
    """One grid point of a ``linear`` sweep (defaults: F = 8 x 8, P = 256, eps = 1e-2)."""

    P: int = 256
    n_space: int = 8
    n_time: int = 8
    ridge: float = 0.1
    x_range: tuple[float, float] = (-1.5, 1.5)
    query_x: tuple[float, ...] = (-1.0, -0.5, 0.0, 0.5, 1.0)
    query_t: tuple[float, ...] = (0.02, 0.1, 0.5)
    #: How per-model densities and gap masses are formed (docs/math/transport.md):
    #: ``"transport"`` pushes a deterministic quantile grid of ``n_samples`` points through each
    #: model's sampler and bins it exactly (records ``transport_error``, the halving estimate of
    #: each model's density error in total variation); ``"mc"``: ``n_samples`` random samples.
    density: str = "transport"

    def __post_init__(self) -> None:
        _tuples(self)
        check_field_types(self)
        self._check_sampling()
        check_choice(self.density, "density", DENSITIES)
        for name in ("P", "n_space", "n_time"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {getattr(self, name)!r}")
        check_budget(
            "n_space, n_time", (self.n_space, self.n_time),
            n_bytes=8.0 * self.n_models * (self.n_space * self.n_time) ** 2,
            what="the ensemble's weights",
        )  # fmt: skip
        if not (np.isfinite(self.ridge) and self.ridge > 0):
            raise ValueError(f"ridge must be a finite number > 0, got {self.ridge!r}")
        lo, hi = self.x_range
        if not (len(self.x_range) == 2 and np.isfinite([lo, hi]).all() and lo < hi):
            raise ValueError(f"x_range must be (lo, hi) with lo < hi, got {self.x_range}")
        _check_queries(self)


@dataclass(frozen=True)
class KernelPoint(_SamplingPoint):
    """One grid point of a ``kernel`` sweep: lazy infinite-width two-layer networks.

    Each of the ``n_models`` models is the NTK kernel regression of
    :func:`gtv.numerics.kernel.train_kernel_ensemble` on its own ``P`` DSM triples of the
    Figure-2 data, trained by gradient flow (learning rate 1) for the time ``tau`` with weight
    decay ``ridge``; its theory is :class:`gtv.numerics.kernel.KernelTheoryAt` of
    :func:`gtv.numerics.kernel.ntk_theory` (docs/math/kernel.md). Defaults: P = 256, ReLU,
    tau = 100, where ``d_eff = ntk_theory(FIGURE2_DATA, 1e-2).effective_dimension(100)`` is 7.5,
    well below P.

    Attributes
    ----------
    P : int
        DSM triples per model.
    activation : {"relu", "erf"}
    tau : float
        Gradient-flow training time at unit learning rate (``>= 0``; ``inf``: the converged
        kernel regression, whose ``d_eff`` with ``ridge = 0`` is the theory's rank -- far outside
        the first-order theory).
    ridge : float
        Weight decay ``rho >= 0`` toward the initialization.
    theory_n_t, theory_n_hermite : int
        Quadrature of the theory (``theory_n_t * 3 * theory_n_hermite`` Nystrom nodes); only
        ``theory`` depends on them.
    query_x, query_t : tuple of float
        Query points of ``var_dhat`` and ``theory`` (``query_t`` in ``[eps, T]``).
    density : {"transport", "mc"}
        How per-model densities and gap masses are formed, as for :class:`LinearPoint`:
        ``"transport"`` (default) carries a deterministic quantile grid of ``n_samples`` start
        points through each model's sampler and bins it exactly (records ``transport_error``);
        ``"mc"`` samples ``n_samples`` random start points per model.
    """

    P: int = 256
    activation: str = "relu"
    tau: float = 100.0
    ridge: float = 0.0
    theory_n_t: int = 16
    theory_n_hermite: int = 16
    query_x: tuple[float, ...] = (-1.0, -0.5, 0.0, 0.5, 1.0)
    query_t: tuple[float, ...] = (0.02, 0.1, 0.5)
    #: The theory record: ``"first-order"`` (``KernelTheoryAt``, the 1/P theory) or
    #: ``"finite-p"`` (``FiniteKernelTheoryAt``, the finite-P cavity equivalent,
    #: docs/math/kernel.md; needs ``tau > 0``).
    theory: str = "first-order"
    density: str = "transport"

    def __post_init__(self) -> None:
        from gtv.numerics.kernel import ACTIVATIONS

        _tuples(self)
        check_field_types(self)
        self._check_sampling()
        for name in ("P", "theory_n_t", "theory_n_hermite"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {getattr(self, name)!r}")
        check_choice(self.activation, "activation", ACTIVATIONS)
        check_choice(self.theory, "theory", ("first-order", "finite-p"))
        check_choice(self.density, "density", DENSITIES)
        if not self.tau >= 0:  # also NaN
            raise ValueError(f"tau must be a number >= 0 (inf allowed), got {self.tau!r}")
        if self.theory == "finite-p" and not (
            self.tau > 0 and (self.tau < np.inf or self.ridge > 0)
        ):
            raise ValueError(
                f"tau must be > 0 for theory 'finite-p' (inf needs ridge > 0), got {self.tau!r}"
            )
        if not (np.isfinite(self.ridge) and self.ridge >= 0):
            raise ValueError(f"ridge must be a finite number >= 0, got {self.ridge!r}")
        N, P, S = float(self.n_models), float(self.P), float(self.n_samples)
        check_budget(
            "n_models, P", (self.n_models, self.P),
            n_bytes=8.0 * (N * P * 5 + 3.0 * P * P), n_ops=N * P**3,
            what="the kernel regressions",
        )  # fmt: skip
        # one NTK value (tens of operations) per centre, sample and denoiser evaluation
        check_budget(
            "n_models, n_samples, P", (self.n_models, self.n_samples, self.P),
            n_ops=N * S * P * self.n_steps * 2 * 50.0, what="sampling the kernel ensemble",
        )  # fmt: skip
        Q = 3.0 * self.theory_n_t * self.theory_n_hermite  # Nystrom nodes of the 3 data points
        check_budget(
            "theory_n_t, theory_n_hermite", (self.theory_n_t, self.theory_n_hermite),
            n_bytes=8.0 * 4 * Q * Q, n_ops=10.0 * Q**3, what="the kernel theory",
        )  # fmt: skip
        _check_queries(self)


@dataclass(frozen=True)
class ExactPoint(_SamplingPoint):
    """One grid point of an ``exact`` sweep: the exact Bayes denoiser, ``n_models`` batches."""

    def __post_init__(self) -> None:
        _tuples(self)
        check_field_types(self)
        self._check_sampling()


def _check_queries(p: LinearPoint | KernelPoint) -> None:
    """``query_x`` finite; ``query_t`` finite and in ``[eps, T]``."""
    check_query_values(p.query_x, "query_x")
    qt = check_query_values(p.query_t, "query_t")
    T = get_schedule(p.schedule).T
    if np.any(qt < p.eps) or np.any(qt > T):
        raise ValueError(
            f"query_t must lie in [eps, T] = [{p.eps:g}, {T:g}], got {list(p.query_t)}"
        )


def _tuples(point: object) -> None:
    """Lists from TOML become tuples (the fields' declared type)."""
    for f in fields(point):
        v = getattr(point, f.name)
        if isinstance(v, list):
            object.__setattr__(point, f.name, tuple(v))


def _edges(p: _SamplingPoint) -> np.ndarray:
    return np.linspace(p.hist_range[0], p.hist_range[1], p.n_bins + 1)


def _sample_records(p: _SamplingPoint, samples: np.ndarray, record: tuple, out: dict) -> None:
    from gtv.validation.ensembles import gap_mass, per_model_histograms
    from gtv.validation.figures.figure2 import FIGURE2_DATA

    if "gap_mass" in record:
        out["gap_mass"] = gap_mass(samples, FIGURE2_DATA, p.gap_distance)
    if "density" in record:
        out["density"] = per_model_histograms(samples, [_edges(p)])


def _denoiser_records(denoise: Callable, p: LinearPoint | KernelPoint, out: dict) -> None:
    """``mean_dhat``, ``var_dhat``: across-model mean and variance (ddof 1) of ``D^`` at the
    query points, from ``denoise(x (n, 1), t) -> (N, n, 1)``."""
    qx = np.asarray(p.query_x, dtype=float)[:, None]
    vals = np.stack([denoise(qx, t)[:, :, 0] for t in p.query_t], axis=1)
    out["mean_dhat"] = vals.mean(axis=0)
    out["var_dhat"] = vals.var(axis=0, ddof=1)


def _theory_records(theory: object, p: LinearPoint | KernelPoint, out: dict) -> None:
    """``theory_mean_dhat``, ``theory_var_dhat`` of a bound first-order theory at the queries."""
    qx = np.asarray(p.query_x, dtype=float)
    out["theory_mean_dhat"] = np.stack([theory.mean_denoiser(qx, t)[:, 0] for t in p.query_t])
    out["theory_var_dhat"] = np.stack(
        [theory.denoiser_covariance((qx, t), paired=True)[:, 0, 0] for t in p.query_t]
    )


def _transport_records(
    sample: Callable[[np.ndarray], np.ndarray],
    p: LinearPoint | KernelPoint,
    sched,
    record: tuple,
    out: dict,
) -> None:
    """Gap masses and densities of the transported quantile grid (exact binning), and the
    per-model error estimate ``transport_error`` (docs/math/transport.md).

    ``sample(x_T) -> x_eps`` is the ensemble's PF-ODE sampler (``p.n_steps`` steps of
    ``p.method``) on explicit start points ``x_T`` of shape (``p.n_models``, S, 1), model ``n``
    from row ``n``. The grid of ``p.n_samples`` points is deterministic: nothing is drawn.
    """
    from gtv.numerics.transport import transport_1d
    from gtv.validation.figures.figure2 import FIGURE2_DATA

    grid = transport_1d(sample, p.n_models, float(np.sqrt(sched.sigma2(sched.T))), p.n_samples)
    edges = _edges(p)
    if "gap_mass" in record:
        out["gap_mass"] = grid.gap_mass(FIGURE2_DATA, p.gap_distance)
    if "density" in record:
        out["density"] = grid.histograms(edges)
    out["transport_error"] = grid.error(edges)


def run_linear(p: LinearPoint, seed: np.random.SeedSequence, record: tuple) -> dict:
    """Train and sample one linear ensemble at grid point ``p``; the arrays of ``record``."""
    from gtv.numerics.features import ProductFeatures
    from gtv.numerics.linear import FirstOrderLinear, linear_model_theory
    from gtv.validation.figures.figure2 import FIGURE2_DATA

    sched = get_schedule(p.schedule)
    feats = ProductFeatures.uniform("gaussian", 1, p.n_space, p.n_time, (p.eps, sched.T), p.x_range)
    out: dict[str, np.ndarray] = {}
    needs_samples = "gap_mass" in record or "density" in record
    if needs_samples or "var_dhat" in record:
        from gtv.numerics.linear import sample_linear_ensemble, train_linear_ensemble

        ens = train_linear_ensemble(
            FIGURE2_DATA, feats, p.n_models, p.P, p.eps, sched, ridge=p.ridge, seed=seed,
            keep_normal_equations=False,
        )  # fmt: skip
        if needs_samples and p.density == "mc":
            samples = sample_linear_ensemble(
                ens, p.n_samples, n_steps=p.n_steps, method=p.method, seed=seed
            )
            _sample_records(p, samples, record, out)
        elif needs_samples:

            def run(x_T: np.ndarray) -> np.ndarray:
                return sample_linear_ensemble(
                    ens, x_T.shape[1], n_steps=p.n_steps, method=p.method, seed=seed, x_T=x_T
                )

            _transport_records(run, p, sched, record, out)
        if "var_dhat" in record:
            _denoiser_records(ens.denoise, p, out)
    if "theory" in record:
        theory = FirstOrderLinear(
            linear_model_theory(FIGURE2_DATA, feats, p.eps, sched, ridge=p.ridge), p.P
        )
        _theory_records(theory, p, out)
    return out


def run_kernel(p: KernelPoint, seed: np.random.SeedSequence, record: tuple) -> dict:
    """Train and sample one lazy infinite-width ensemble at ``p``; the arrays of ``record``.

    The ensemble is :func:`gtv.numerics.kernel.train_kernel_ensemble` (gradient flow, lr = 1,
    training time ``p.tau``) with ``seed`` (its streams ``"training"``), sampled by
    :meth:`gtv.numerics.kernel.KernelEnsemble.sample`: with ``p.density = "transport"`` (the
    default) on the deterministic quantile grid (``x_T=``, nothing drawn; records
    ``transport_error``), with ``"mc"`` from random start points of the same ``seed`` (stream
    ``"sampling"``); ``theory`` is ``KernelTheoryAt(ntk_theory(...), p.tau, p.P)`` (or
    ``FiniteKernelTheoryAt`` with ``p.theory = "finite-p"``).
    """
    from gtv.numerics.kernel import (
        FiniteKernelTheoryAt,
        KernelTheoryAt,
        ntk_theory,
        train_kernel_ensemble,
    )
    from gtv.validation.figures.figure2 import FIGURE2_DATA

    sched = get_schedule(p.schedule)
    out: dict[str, np.ndarray] = {}
    needs_samples = "gap_mass" in record or "density" in record
    if needs_samples or "var_dhat" in record:
        ens = train_kernel_ensemble(
            FIGURE2_DATA, p.P, p.n_models, p.eps, p.tau, sched, p.activation, ridge=p.ridge,
            seed=seed,
        )  # fmt: skip
        if needs_samples and p.density == "mc":
            samples = ens.sample(p.n_samples, n_steps=p.n_steps, method=p.method, seed=seed)
            _sample_records(p, samples, record, out)
        elif needs_samples:

            def run(x_T: np.ndarray) -> np.ndarray:
                return ens.sample(x_T.shape[1], n_steps=p.n_steps, method=p.method, x_T=x_T)

            _transport_records(run, p, sched, record, out)
        if "var_dhat" in record:
            _denoiser_records(ens.denoiser, p, out)
    if "theory" in record:
        theory = ntk_theory(
            FIGURE2_DATA, p.eps, sched, p.activation, ridge=p.ridge, n_t=p.theory_n_t,
            n_hermite=p.theory_n_hermite,
        )  # fmt: skip
        bound_cls = FiniteKernelTheoryAt if p.theory == "finite-p" else KernelTheoryAt
        _theory_records(bound_cls(theory, p.tau, p.P), p, out)
    return out


def run_exact(p: ExactPoint, seed: np.random.SeedSequence, record: tuple) -> dict:
    """Sample the exact Bayes denoiser in ``n_models`` independent batches at ``p``."""
    from gtv.numerics.exact import sample_exact_denoiser
    from gtv.validation.figures.figure2 import FIGURE2_DATA

    sched = get_schedule(p.schedule)
    batches = [
        sample_exact_denoiser(
            FIGURE2_DATA,
            p.n_samples,
            p.eps,
            sched,
            n_steps=p.n_steps,
            method=p.method,
            seed=child,
        )  # fmt: skip
        for child in seed.spawn(p.n_models)
    ]
    out: dict[str, np.ndarray] = {}
    _sample_records(p, np.stack(batches), record, out)
    return out


@dataclass(frozen=True)
class ModelClass:
    """A model class of the sweep engine (module docstring)."""

    name: str
    point: type
    run: Callable[..., dict]
    records: tuple[str, ...]
    #: Settings that set the shapes of the recorded arrays: fixed across a sweep.
    per_record_fixed: tuple[str, ...]
    #: Settings that only say what is measured (bins, query points, how densities are formed,
    #: theory quadrature): they draw nothing, so they do not enter a task's random stream.
    measurement: tuple[str, ...] = MEASUREMENT_SETTINGS

    def build(self, settings: dict) -> object:
        """The checked settings dataclass of one grid point."""
        return self.point(**settings)

    @property
    def settings(self) -> tuple[str, ...]:
        return tuple(f.name for f in fields(self.point))

    def variables(self, p: object, record: tuple) -> dict[str, tuple[tuple[str, ...], tuple]]:
        """Recorded variable name -> (its per-task dims, their sizes)."""
        out: dict[str, tuple[tuple[str, ...], tuple]] = {}
        if "gap_mass" in record:
            out["gap_mass"] = (("model",), (p.n_models,))
        if "density" in record:
            out["density"] = (("model", "x"), (p.n_models, p.n_bins))
        if getattr(p, "density", "mc") == "transport" and (
            "gap_mass" in record or "density" in record
        ):
            out["transport_error"] = (("model",), (p.n_models,))
        q = (
            ("query_t", "query_x"),
            (len(getattr(p, "query_t", ())), len(getattr(p, "query_x", ()))),
        )
        if "var_dhat" in record:
            out["mean_dhat"] = q
            out["var_dhat"] = q
        if "theory" in record:
            out["theory_mean_dhat"] = q
            out["theory_var_dhat"] = q
        return out

    def coordinates(self, p: object) -> dict[str, np.ndarray]:
        """Coordinates of the per-task dims (bin centres, query points, model index)."""
        e = _edges(p)
        coords = {"model": np.arange(p.n_models), "x": 0.5 * (e[1:] + e[:-1])}
        if hasattr(p, "query_t"):
            coords["query_t"] = np.asarray(p.query_t, dtype=float)
            coords["query_x"] = np.asarray(p.query_x, dtype=float)
        return coords


MODEL_CLASSES: dict[str, ModelClass] = {
    "linear": ModelClass(
        "linear", LinearPoint, run_linear, RECORDS,
        ("n_models", "n_bins", "hist_range", "query_x", "query_t", "density"),
    ),
    "kernel": ModelClass(
        "kernel", KernelPoint, run_kernel, RECORDS,
        ("n_models", "n_bins", "hist_range", "query_x", "query_t", "density"),
    ),
    "exact": ModelClass(
        "exact", ExactPoint, run_exact, ("gap_mass", "density"),
        ("n_models", "n_bins", "hist_range"),
    ),
}  # fmt: skip


def model_class(name: object) -> ModelClass:
    """The :class:`ModelClass` called ``name`` (``ValueError`` naming ``model`` otherwise)."""
    if not isinstance(name, str) or name not in MODEL_CLASSES:
        raise ValueError(f"model must be one of {tuple(MODEL_CLASSES)}, got {name!r}")
    return MODEL_CLASSES[name]
