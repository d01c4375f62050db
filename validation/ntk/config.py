"""Configuration of the NTK comparison (:func:`gtv.validation.ntk.compare.compare_ntk`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gtv.numerics.checks import check_field_types, check_query_values
from gtv.numerics.kernel import ACTIVATIONS, check_embedding
from gtv.numerics.schedules import get_schedule
from gtv.validation.ensembles import DensityOptions
from gtv.validation.exact_below import check_auto_grid, check_exact_below
from gtv.validation.figures.figure2 import FIGURE2_DATA
from gtv.validation.results import JsonConfig

__all__ = ["DENSITIES", "THEORIES", "NTKCompareConfig"]

#: Densities compared with the trained networks' ensemble mean (names used in tables and files).
DENSITIES = ("kernel", "gaussian_field", "white_noise_fp", "mean_score_fp_Q0", "p(x|eps)", "bayes")


#: Kernel theories the comparison can use (:attr:`NTKCompareConfig.theory`).
THEORIES = ("first-order", "finite-p", "occupancy-field", "stratified-field")

#: The field ensemble of [q] of the theories whose field is not the Gaussian field.
FIELD_LABELS = {"occupancy-field": "occupancy field", "stratified-field": "stratified field"}


def _is_int(v: object) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, np.integer))


@dataclass(frozen=True)
class NTKCompareConfig(DensityOptions, JsonConfig):
    """One configuration of :func:`compare_ntk` (defaults: erf, eps = 1e-2, P = 256).

    Attributes
    ----------
    eps : float
        Training cutoff and sampling end time, ``0 < eps < T``.
    P : int
        DSM triples per model.
    activation : {"erf", "relu"}
        erf reaches the lazy regime much faster in width than relu (whose kink makes activation
        flips a first-order effect; :mod:`gtv.numerics.two_layer.training` tests).
    widths : tuple of int
        Network widths (even integers >= 2: the antisymmetric initialization pairs mirrored units).
    n_models : int
        N >= 4 models (each with its own DSM draw).
    taus : tuple of float
        Training times ``tau = eta k > 0``, increasing (rounded to whole steps).
    lr_fraction : float
        ``eta`` as a fraction of the smallest stability limit, in (0, 1).
    learning_rate : float, optional
        An explicit ``eta`` (overrides ``lr_fraction``); must be below the stability limit.
    n_samples : int
        PF-ODE samples per model (``density="mc"``).
    query_x, query_t
        Query points of the denoiser tables (all pairs); ``eps <= t <= T``.
    hist_range, n_bins, gap_distance
        Histogram grid and gap-mass threshold.
    schedule, n_steps, method
        Noise schedule and the PF-ODE sampler (Euler, 30 steps: the paper's).
    n_boot : int
        Bootstrap resamples (models).
    sample_kernel : bool
        Also sample the infinite-width networks (kernel regression on the same triples).
    theory_n_t, theory_n_hermite : int
        Quadrature of the theory (``n_t * 3 * n_hermite`` Nystrom nodes). 10 x 10 changes the mean
        and standard deviation of ``D^`` at the default query points by < 3e-4 from 16 x 16
        (measured at tau = 3, 30, 300), far below the sampling errors; the Gaussian-field
        ensemble is evaluated on all nodes, so they set its sampling cost.
    fp_refine, fp_steps : int
        White-noise Fokker-Planck cells per histogram bin and time steps.
    fp_half_width : float, optional
        Fokker-Planck domain ``[-h, h]`` (default: the histogram range extended to
        ``+-6 sigma_T``; widen it when the solver reports mass at the boundary, as happens for
        small P, where the white-noise intensity is large).
    n_bayes_samples : int, optional
        Exact-Bayes PF-ODE samples (``density="mc"``; default ``N * n_samples`` capped at
        10**6).
    embedding, bias
        Network inputs (:func:`gtv.numerics.kernel.inputs.ntk_inputs`).
    theory : {"first-order", "finite-p", "occupancy-field", "stratified-field"}
        The kernel theory: first order in 1/P (:class:`gtv.numerics.kernel.KernelTheoryAt`),
        the finite-P cavity equivalent (:class:`gtv.numerics.kernel.FiniteKernelTheoryAt`), or
        the same moments with its small-occupancy field
        (:meth:`~gtv.numerics.kernel.FiniteKernelTheoryAt.occupancy_field`) or its stratified
        field (:meth:`~gtv.numerics.kernel.FiniteKernelTheoryAt.stratified_field`, the default
        32 x 16 cells) in place of the Gaussian field for [q].
    exact_below : float or "auto", default 0
        With the member fields: every node with ``t < exact_below`` is kept exact in each member
        (:class:`gtv.numerics.kernel.occupancy.KernelOccupancySplit`); ``"auto"``: chosen per
        ``tau`` where the field's own gap and core mass stop moving
        (:func:`gtv.validation.exact_below.ladder_choice`; docs/math/finite_fp.md).
    centre : bool, default True
        With ``theory="stratified-field"``: move the members onto the cavity mean.
    density : {"transport", "mc"}
        How every per-model density is formed (trained networks, infinite-width networks, the
        theory's field members, the exact-Bayes baseline): ``"transport"`` (default) carries a
        quantile grid of ``n_points`` start points through each model's PF-ODE map, refined
        where a cell's chord may misplace more than ``transport_tolerance`` of mass across a bin,
        up to ``max_points`` per model, and bins the Gaussian mass exactly
        (docs/math/transport.md); ``"mc"`` bins ``n_samples`` Monte Carlo samples per model.
    n_points, transport_tolerance, max_points
        The transport grid (:class:`gtv.validation.ensembles.TransportSettings`; used with
        ``density="transport"`` only). 512 refined up to 4096 by default (measured accuracy:
        docs/math/transport.md, "The NTK comparison").
    seed : int
    """

    eps: float = 1e-2
    P: int = 256
    activation: str = "erf"
    widths: tuple[int, ...] = (256, 1024, 2048)
    n_models: int = 32
    taus: tuple[float, ...] = (3.0, 10.0, 30.0, 100.0, 300.0)
    lr_fraction: float = 0.5
    learning_rate: float | None = None
    n_samples: int = 1000
    query_x: tuple[float, ...] = (-1.2, -1.0, -0.5, 0.0, 0.5, 1.0)
    query_t: tuple[float, ...] = (0.02, 0.1, 0.4)
    hist_range: tuple[float, float] = (-2.0, 2.0)
    n_bins: int = 80
    gap_distance: float = 0.25
    schedule: str = "vp-linear"
    n_steps: int = 30
    method: str = "euler"
    n_boot: int = 1000
    sample_kernel: bool = True
    theory_n_t: int = 10
    theory_n_hermite: int = 10
    fp_refine: int = 2
    fp_steps: int = 300
    fp_half_width: float | None = None
    n_bayes_samples: int | None = None
    embedding: str = "linear"
    bias: float = 1.0
    theory: str = "first-order"
    exact_below: float | str = 0.0
    centre: bool = True
    seed: int = 0
    density: str = "transport"
    n_points: int = 512
    transport_tolerance: float = 1e-6
    max_points: int = 4096

    def __post_init__(self) -> None:
        check_field_types(self, skip=("widths",))
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        widths = tuple(self.widths) if isinstance(self.widths, (tuple, list)) else (self.widths,)
        if not widths or not all(_is_int(w) for w in widths):
            raise ValueError(
                f"widths must be a non-empty sequence of integers, got {self.widths!r}"
            )
        for w in widths:
            if w < 1:
                raise ValueError(f"widths must be integers >= 1 (hidden units), got {w}")
            if w % 2:
                raise ValueError(
                    f"widths must be even (the antisymmetric initialization pairs mirrored "
                    f"units so that D^_0 = 0), got {w}"
                )
        if len(set(widths)) != len(widths):
            raise ValueError(f"widths must be distinct, got {widths}")
        object.__setattr__(self, "widths", tuple(sorted(int(w) for w in widths)))
        try:
            taus = np.asarray(self.taus, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"taus must be numbers > 0, got {self.taus!r}") from None
        if taus.ndim != 1 or taus.size == 0 or not np.all(np.isfinite(taus)):
            raise ValueError(
                f"taus must be a non-empty sequence of finite numbers, got {self.taus}"
            )
        if np.any(taus < 0):
            raise ValueError(
                f"taus must be >= 0 (training times tau = eta * steps), got {self.taus}"
            )
        if np.any(taus == 0):
            raise ValueError(
                "taus must be > 0 (tau = 0 is the untrained network, D^ = 0, for which the "
                f"relative errors are undefined), got {self.taus}"
            )
        if np.any(np.diff(taus) <= 0):
            raise ValueError(f"taus must be strictly increasing, got {self.taus}")
        object.__setattr__(self, "taus", tuple(float(v) for v in taus))
        if not (isinstance(self.lr_fraction, (int, float)) and 0 < self.lr_fraction < 1):
            raise ValueError(
                "lr_fraction must be in (0, 1): learning rates at or beyond the stability limit "
                f"of gradient descent diverge; got {self.lr_fraction!r}"
            )
        if self.learning_rate is not None and not (
            isinstance(self.learning_rate, (int, float))
            and math.isfinite(self.learning_rate)
            and self.learning_rate > 0
        ):
            raise ValueError(
                f"learning_rate must be a finite number > 0 (or None), got {self.learning_rate!r}"
            )
        if not _is_int(self.n_models) or self.n_models < 4:
            raise ValueError(f"n_models must be an integer >= 4, got {self.n_models!r}")
        for name in ("P", "n_samples", "n_bins", "n_steps", "theory_n_t", "theory_n_hermite"):
            v = getattr(self, name)
            if not _is_int(v) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        for name in ("fp_refine", "fp_steps"):
            v = getattr(self, name)
            if not _is_int(v) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        if self.fp_half_width is not None and not (
            isinstance(self.fp_half_width, (int, float))
            and math.isfinite(self.fp_half_width)
            and self.fp_half_width >= max(abs(self.hist_range[0]), abs(self.hist_range[1]))
        ):
            raise ValueError(
                "fp_half_width must be a finite number covering hist_range (or None), got "
                f"{self.fp_half_width!r}"
            )
        if not _is_int(self.n_boot) or self.n_boot < 10:
            raise ValueError(f"n_boot must be an integer >= 10, got {self.n_boot!r}")
        if self.n_bayes_samples is not None and (
            not _is_int(self.n_bayes_samples) or self.n_bayes_samples < 1
        ):
            raise ValueError(
                f"n_bayes_samples must be an integer >= 1, got {self.n_bayes_samples!r}"
            )
        self.check_density()
        if self.theory not in THEORIES:
            raise ValueError(f"theory must be one of {THEORIES}, got {self.theory!r}")
        if check_exact_below(self.exact_below) and self.theory not in FIELD_LABELS:
            raise ValueError(
                f"exact_below: only with the member fields {tuple(FIELD_LABELS)}, not "
                f"theory={self.theory!r}"
            )
        if not self.centre and self.theory != "stratified-field":
            raise ValueError("centre=False: only with theory='stratified-field'")
        if self.method not in ("euler", "heun"):
            raise ValueError(f"method must be 'euler' or 'heun', got {self.method!r}")
        check_embedding(self.embedding)
        sched = get_schedule(self.schedule)
        if not (isinstance(self.eps, (int, float)) and 0 < self.eps < sched.T):
            raise ValueError(f"eps must lie in (0, T) = (0, {sched.T:g}), got {self.eps!r}")
        lo, hi = self.hist_range
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise ValueError(f"hist_range must be (lo, hi) with lo < hi, got {self.hist_range}")
        check_auto_grid(self.exact_below, self.hist_range, self.n_bins, FIGURE2_DATA)
        if not (np.isfinite(self.gap_distance) and self.gap_distance > 0):
            raise ValueError(f"gap_distance must be > 0, got {self.gap_distance!r}")
        for name in ("query_x", "query_t"):
            check_query_values(getattr(self, name), name)
        qt = np.asarray(self.query_t, dtype=float)
        if np.any(qt < self.eps) or np.any(qt > sched.T):
            raise ValueError(
                f"query_t must lie in [eps, T] = [{self.eps:g}, {sched.T:g}], got {self.query_t}"
            )

    def run_settings(self) -> dict:
        """:meth:`DensityOptions.run_settings` without ``exact_below`` and ``centre`` at their
        defaults (the resume files written before these fields existed stay valid)."""
        d = super().run_settings()
        if self.exact_below == 0:
            del d["exact_below"]
        if self.centre:
            del d["centre"]
        return d

    @property
    def field_label(self) -> str:
        """Name of the theory's field ensemble in tables and figures."""
        return FIELD_LABELS.get(self.theory, "Gaussian field")

    def query_points(self) -> tuple[np.ndarray, np.ndarray]:
        """All (x, t) query pairs, t-major: ``x`` (Q,), ``t`` (Q,)."""
        qx = np.asarray(self.query_x, dtype=float)
        qt = np.asarray(self.query_t, dtype=float)
        return np.tile(qx, qt.size), np.repeat(qt, qx.size)
