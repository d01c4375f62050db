"""Ensemble results: per-model histograms, spread across models, gap mass (docs/engineering.md).

The trained model is the statistical unit. Each model's samples are reduced to per-model
statistics first (a density histogram, a gap-mass fraction); uncertainty comes from resampling
*models* (:func:`gtv.validation.stats.bootstrap_ci` over the per-model values), never from
pooling samples.

Per-model densities come from Monte Carlo samples (an array (N, S, D)) or, in 1-D, from a
deterministic start grid carried through each model's sampler
(:class:`gtv.numerics.transport.TransportedGrid`, docs/math/transport.md): the same
:func:`summarize_ensemble` takes either. :func:`transported_densities` runs any 1-D sampler on the
transport grid (:class:`TransportSettings`) and returns the per-model densities, outside masses,
gap masses and error estimates (:class:`LearnedDensities`) that the comparisons use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gtv.numerics.checks import check_choice, check_count, check_points, check_positive
from gtv.numerics.histograms import gap_fraction, uniform_histogram_counts
from gtv.numerics.transport import TransportedGrid, transport_1d
from gtv.validation.results import load_result_of_kind, require_finite, result_file, save_result
from gtv.validation.stats import bootstrap_ci

__all__ = [
    "DENSITIES",
    "DensityOptions",
    "EnsembleResult",
    "LearnedDensities",
    "TransportSettings",
    "gap_mass",
    "gap_mass_reference",
    "grid_densities",
    "per_model_histograms",
    "per_model_histograms_reference",
    "sampled_densities",
    "summarize_ensemble",
    "transported_densities",
]

#: How per-model densities are formed: a transported grid (or, in 2-D and more, scrambled
#: Sobol' start points) or Monte Carlo samples (docs/math/transport.md).
DENSITIES = ("transport", "mc")


def _check_samples(samples: object) -> np.ndarray:
    """Samples (N, S, D), all finite: a NaN or infinite sample is a diverged sampler, never gap
    or outside mass (docs/reliability.md)."""
    samples = np.asarray(samples, dtype=float)
    if samples.ndim != 3:
        raise ValueError(f"samples must have shape (N, S, D), got {samples.shape}")
    bad = ~np.isfinite(samples).all(axis=2)
    if bad.any():
        models = int(np.count_nonzero(bad.any(axis=1)))
        raise ValueError(
            f"samples must be finite: {int(np.count_nonzero(bad))} of {bad.size} samples (in "
            f"{models} of {samples.shape[0]} models) are NaN or infinite; the sampler diverged "
            "(use more steps, or method='euler')"
        )
    return samples


def _check_histogram_args(samples: np.ndarray, edges: list[np.ndarray]):
    samples = _check_samples(samples)
    d = samples.shape[2]
    if len(edges) != d:
        raise ValueError(f"edges must give one array per dimension (D = {d}), got {len(edges)}")
    edges = [np.asarray(e, dtype=float) for e in edges]
    for e in edges:
        if e.ndim != 1 or e.size < 2 or not np.all(np.diff(e) > 0):
            raise ValueError("edges must be increasing 1-D arrays with at least two entries")
    vol = edges[0][1:] - edges[0][:-1]
    for e in edges[1:]:
        vol = np.multiply.outer(vol, e[1:] - e[:-1])
    return samples, edges, vol


def per_model_histograms(samples: np.ndarray, edges: list[np.ndarray]) -> np.ndarray:
    """Density histogram of each model's samples.

    Parameters
    ----------
    samples : ndarray, shape (N, S, D)
    edges : list of D 1-D arrays
        Bin edges per axis (increasing).

    Returns
    -------
    ndarray, shape (N, n_bins_1, ..., n_bins_D)
        Densities: counts / (S * bin volume). Samples outside the edges count in the
        normalization but in no bin, so a histogram integrates to the fraction inside.

    Notes
    -----
    Edges equal to ``numpy.linspace(lo, hi, n + 1)`` use a parallel numba kernel
    (:func:`gtv.numerics.histograms.uniform_histogram_counts`, bin for bin the same as
    ``numpy.histogramdd``); other edges use :func:`per_model_histograms_reference`.
    """
    samples, edges, vol = _check_histogram_args(samples, edges)
    if all(np.array_equal(e, np.linspace(e[0], e[-1], e.size)) for e in edges):
        counts = uniform_histogram_counts(
            samples, [(e[0], e[-1]) for e in edges], [e.size - 1 for e in edges]
        )
        return counts / (samples.shape[1] * vol)
    return per_model_histograms_reference(samples, edges)


def per_model_histograms_reference(samples: np.ndarray, edges: list[np.ndarray]) -> np.ndarray:
    """Plain-numpy :func:`per_model_histograms` (``numpy.histogramdd`` per model)."""
    samples, edges, vol = _check_histogram_args(samples, edges)
    n, s, _ = samples.shape
    out = np.empty((n, *vol.shape))
    for k in range(n):
        counts, _ = np.histogramdd(samples[k], bins=edges)
        out[k] = counts / (s * vol)
    return out


def _check_gap_args(samples, data, distance):
    samples = _check_samples(samples)
    data = check_points(data, "data", dim=samples.shape[-1])
    if not (np.isfinite(distance) and distance > 0):
        raise ValueError(f"distance must be a finite positive number, got {distance!r}")
    return samples, data


def gap_mass(samples: np.ndarray, data: np.ndarray, distance: float) -> np.ndarray:
    """Per-model fraction of samples farther than ``distance`` from every training point.

    Parameters
    ----------
    samples : ndarray, shape (N, S, D)
    data : ndarray, shape (M, D)
    distance : float
        Threshold > 0.

    Returns
    -------
    ndarray, shape (N,)
        Computed by the numba kernel :func:`gtv.numerics.histograms.gap_fraction`.

    Raises
    ------
    ValueError
        Naming ``samples`` (with the count) if any sample is NaN or infinite: such samples are
        never counted as gap mass (previously a diverged sampler inflated it).
    """
    samples, data = _check_gap_args(samples, data, distance)
    return gap_fraction(samples, data, distance)


def gap_mass_reference(samples: np.ndarray, data: np.ndarray, distance: float) -> np.ndarray:
    """Plain-numpy :func:`gap_mass`."""
    samples, data = _check_gap_args(samples, data, distance)
    n, s, d = samples.shape
    out = np.empty(n)
    for k in range(n):
        far = np.ones(s, dtype=bool)
        for mu in data:
            far &= np.sum((samples[k] - mu) ** 2, axis=1) > distance * distance
        out[k] = far.mean()
    return out


@dataclass
class EnsembleResult:
    """Per-model statistics of one trained ensemble's samples.

    Attributes
    ----------
    histograms : ndarray, shape (N, bins...)
        Per-model density histograms.
    edges : list of ndarray
        Bin edges per axis.
    gap : ndarray, shape (N,)
        Per-model gap mass.
    gap_distance : float
    config : dict
        Full configuration (data, features, schedule, eps, P, N, seeds, sampler...).
    """

    histograms: np.ndarray
    edges: list[np.ndarray]
    gap: np.ndarray
    gap_distance: float
    config: dict = field(default_factory=dict)

    @property
    def n_models(self) -> int:
        return self.histograms.shape[0]

    @property
    def centres(self) -> list[np.ndarray]:
        return [(e[1:] + e[:-1]) / 2 for e in self.edges]

    def mean_density(self) -> np.ndarray:
        """Ensemble-mean density (the typical learned distribution [q])."""
        return self.histograms.mean(axis=0)

    def quantiles(self, q: tuple[float, float] = (0.25, 0.75)) -> np.ndarray:
        """Per-bin quantiles of the density across models (default: the 25-75 % band)."""
        return np.quantile(self.histograms, q, axis=0)

    def gap_mass_ci(
        self, confidence: float = 0.95, seed: int | np.random.SeedSequence = 0
    ) -> tuple[float, float, float]:
        """Gap mass averaged over models, with a model-level bootstrap CI
        (:func:`gtv.validation.stats.bootstrap_ci`, stream ``stream(seed, "bootstrap")``)."""
        return bootstrap_ci(self.gap, confidence=confidence, seed=seed)

    def save(self, path: str | Path) -> Path:
        arrays = {"histograms": self.histograms, "gap": self.gap}
        arrays.update({f"edges{i}": e for i, e in enumerate(self.edges)})
        cfg = dict(self.config, gap_distance=self.gap_distance, n_axes=len(self.edges))
        return save_result(path, arrays, cfg, kind="ensemble_result")

    @classmethod
    def load(cls, path: str | Path) -> EnsembleResult:
        """Read a file written by :meth:`save`; ``ValueError`` naming the file if it is corrupt,
        of another kind, or inconsistent (histogram shape against the edges, non-finite values,
        a gap distance that is not positive)."""
        arrays, cfg = load_result_of_kind(
            path,
            "ensemble_result",
            "an EnsembleResult",
            legacy=lambda c: {"gap_distance", "n_axes"} <= set(c),
        )
        with result_file(path, "EnsembleResult"):
            n_axes = cfg["n_axes"]
            if type(n_axes) is not int or n_axes < 1:
                raise ValueError(f"n_axes must be a positive integer, got {n_axes!r}")
            edges = [arrays[f"edges{i}"] for i in range(n_axes)]
            hist, gap = arrays["histograms"], arrays["gap"]
            shape = (gap.shape[0] if gap.ndim == 1 else -1, *(e.size - 1 for e in edges))
            if gap.ndim != 1 or hist.shape != shape or any(e.ndim != 1 for e in edges):
                raise ValueError(
                    f"histograms of shape {hist.shape} and gap of shape {gap.shape} do not match "
                    f"{n_axes} axes of edges with {[e.size for e in edges]} entries"
                )
            require_finite(arrays, "histograms", "gap", *(f"edges{i}" for i in range(n_axes)))
            dist = float(cfg["gap_distance"])
            if not (np.isfinite(dist) and dist > 0):
                raise ValueError(f"gap_distance must be finite and > 0, got {dist!r}")
            return cls(hist, edges, gap, dist, cfg)


def summarize_ensemble(
    samples: np.ndarray | TransportedGrid,
    data: np.ndarray,
    edges: list[np.ndarray],
    gap_distance: float,
    config: dict | None = None,
) -> EnsembleResult:
    """Reduce samples (N, S, D) to per-model histograms and gap masses.

    ``samples`` may instead be a :class:`gtv.numerics.transport.TransportedGrid` (1-D): the
    histograms and gap masses are then the exactly binned transported mass
    (:meth:`~gtv.numerics.transport.TransportedGrid.histograms`,
    :meth:`~gtv.numerics.transport.TransportedGrid.gap_mass`, :func:`grid_densities`), and the
    configuration records ``density = "transport"``, the mean number of grid points per model
    ``transport_points`` and the largest per-model error estimate ``transport_error_tv``
    (:meth:`~gtv.numerics.transport.TransportedGrid.error`, total variation on ``edges``).
    """
    cfg = dict(config or {})
    if isinstance(samples, TransportedGrid):
        if len(edges) != 1:
            raise ValueError(
                f"edges must hold one array for a 1-D transported grid, got {len(edges)}"
            )
        d = grid_densities(samples, data, edges[0], gap_distance)
        hist, gap = d.histograms, d.gap
        cfg.update(
            density="transport",
            transport_points=float(d.points.mean()),
            transport_error_tv=float(d.error.max()),
        )
    else:
        hist = per_model_histograms(samples, edges)
        gap = gap_mass(samples, data, gap_distance)
    return EnsembleResult(
        hist, [np.asarray(e, dtype=float) for e in edges], gap, float(gap_distance), cfg
    )


@dataclass(frozen=True)
class TransportSettings:
    """How a 1-D ensemble's densities are transported (docs/math/transport.md).

    Every model's PF-ODE map is applied to the quantile grid of ``n_points`` start points
    (:func:`gtv.numerics.transport.transport_grid`), refined where a cell's chord may misplace
    more than ``tolerance`` of mass across a histogram bin, up to ``max_points`` points per model
    (:func:`gtv.numerics.transport.transport_1d` with ``resolution`` = the bin width).

    Attributes
    ----------
    n_points : int, default 2048
        Start points per model (>= 4).
    tolerance : float, default 1e-6
        Largest mass a cell may misplace before it is cut (> 0).
    max_points : int, default 16384
        Most points per model after refinement (>= ``n_points``).
    """

    n_points: int = 2048
    tolerance: float = 1e-6
    max_points: int = 16_384

    def __post_init__(self) -> None:
        n = check_count(self.n_points, "n_points", 4)
        check_count(self.max_points, "max_points", n)
        check_positive(self.tolerance, "transport_tolerance")


class DensityOptions:
    """How a configuration forms its per-model 1-D densities (mixin for frozen config dataclasses).

    The class using it declares the fields ``density`` (one of :data:`DENSITIES`), ``n_samples``
    (Monte Carlo samples per model, ``density="mc"`` only), ``n_points``, ``transport_tolerance``
    and ``max_points`` (the transport grid, ``density="transport"`` only; see
    :class:`TransportSettings`) and calls :meth:`check_density` in its ``__post_init__``.
    """

    def check_density(self) -> None:
        """``ValueError`` naming the field for a bad ``density`` or transport setting."""
        check_choice(self.density, "density", DENSITIES)
        self.transport_settings()  # n_points >= 4, max_points >= n_points, tolerance > 0

    def transport_settings(self) -> TransportSettings:
        """The transport grid of this configuration (``n_points``, ``transport_tolerance``,
        ``max_points``)."""
        return TransportSettings(self.n_points, self.transport_tolerance, self.max_points)

    def density_settings(self) -> TransportSettings | None:
        """:meth:`transport_settings` with ``density="transport"``, ``None`` with ``"mc"``."""
        return self.transport_settings() if self.density == "transport" else None

    def run_settings(self) -> dict:
        """The configuration as a resume file compares it: ``to_dict()``, and with
        ``density="mc"`` without the fields ``density``, ``n_points``, ``transport_tolerance`` and
        ``max_points`` (the dictionary of the Monte Carlo runs made before these fields existed,
        so their resume files stay valid, while one of the other density is refused)."""
        d = self.to_dict()
        if self.density == "mc":
            for name in ("density", "n_points", "transport_tolerance", "max_points"):
                del d[name]
        return d

    def density_label(self) -> str:
        """How the per-model densities were formed, e.g. ``"20000 samples"`` or
        ``"2048-point transported grid (<= 16384)"``."""
        if self.density == "mc":
            return f"{self.n_samples} samples"
        return f"{self.n_points}-point transported grid (<= {self.max_points})"


@dataclass
class LearnedDensities:
    """Per-model learned densities of an ensemble on one uniform histogram grid.

    Attributes
    ----------
    histograms : ndarray, shape (N, B)
        Per-model bin densities (bin mass / bin width).
    outside : ndarray, shape (N,)
        Per-model mass outside the edges.
    gap : ndarray, shape (N,)
        Per-model gap mass (farther than the gap distance from every training point).
    error : ndarray, shape (N,), optional
        Transported densities only: per-model error estimate, the total variation (outside mass
        as one more bin) between the grid and every other point of it
        (:meth:`gtv.numerics.transport.TransportedGrid.error`).
    points : ndarray of int, shape (N,), optional
        Transported densities only: the points each model carried after refinement.
    """

    histograms: np.ndarray
    outside: np.ndarray
    gap: np.ndarray
    error: np.ndarray | None = None
    points: np.ndarray | None = None

    def summary(self) -> dict:
        """``{"error_max", "error_median", "points_mean", "points_max"}`` (transport), or ``{}``."""
        if self.error is None:
            return {}
        return {
            "error_max": float(self.error.max()),
            "error_median": float(np.median(self.error)),
            "points_mean": float(self.points.mean()),
            "points_max": int(self.points.max()),
        }


def sampled_densities(
    samples: np.ndarray, data: np.ndarray, edges: np.ndarray, gap_distance: float
) -> LearnedDensities:
    """Per-model densities of Monte Carlo samples (N, S, 1) on uniform ``edges``.

    Histograms by :func:`per_model_histograms`, ``outside = 1 - sum(histogram) * width`` with the
    width ``edges[1] - edges[0]``, gap masses by :func:`gap_mass`: the Monte Carlo counterpart
    of :func:`transported_densities` (no error estimates).
    """
    edges = np.asarray(edges, dtype=float)
    hist = per_model_histograms(samples, [edges])
    outside = 1.0 - hist.sum(axis=1) * float(edges[1] - edges[0])
    return LearnedDensities(hist, outside, gap_mass(samples, data, gap_distance))


def transported_densities(
    sample: Callable[..., np.ndarray],
    n_models: int,
    sigma_T: float,
    data: np.ndarray,
    edges: np.ndarray,
    gap_distance: float,
    settings: TransportSettings | None = None,
) -> LearnedDensities:
    """Per-model densities of a 1-D ensemble from its sampler carried over the transport grid.

    Parameters
    ----------
    sample : callable
        ``sample(x_T, models=None) -> x_eps``: the ensemble's PF-ODE sampler on explicit start
        points ``x_T`` (R, S, 1), row ``r`` carried by model ``models[r]`` (by model ``r`` when
        ``models`` is None); see :func:`gtv.numerics.transport.transport_1d`.
    n_models : int
    sigma_T : float
        The sampler's start distribution is ``N(0, sigma_T**2)``.
    data : ndarray, shape (M, 1)
        Training points (for the gap mass).
    edges : ndarray, shape (B + 1,)
        Uniform, increasing histogram edges; the bin width is the refinement's resolution.
    gap_distance : float
        Gap mass threshold (> 0).
    settings : TransportSettings, optional
        Default ``TransportSettings()``.

    Returns
    -------
    LearnedDensities
        With the per-model error estimates and point counts; the bin masses are the exactly binned
        transported Gaussian mass (:meth:`gtv.numerics.transport.TransportedGrid.bin_masses`),
        ``outside = 1 - sum(masses)`` (clipped to [0, 1]).
    """
    settings = TransportSettings() if settings is None else settings
    if not isinstance(settings, TransportSettings):
        raise TypeError("settings must be a TransportSettings")
    edges = np.asarray(edges, dtype=float)
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.diff(edges) > 0):
        raise ValueError("edges must be an increasing 1-D array with at least two entries")
    data = check_points(data, "data", dim=1)
    gap_distance = check_positive(gap_distance, "gap_distance")
    # the bin width as Figure 2 computes it from its range (uniform edges)
    width = float((edges[-1] - edges[0]) / (edges.size - 1))
    grid = transport_1d(
        sample, n_models, sigma_T, settings.n_points, resolution=width,
        tolerance=settings.tolerance, max_points=settings.max_points,
    )  # fmt: skip
    return grid_densities(grid, data, edges, gap_distance)


def grid_densities(
    grid: TransportedGrid, data: np.ndarray, edges: np.ndarray, gap_distance: float
) -> LearnedDensities:
    """Per-model densities of a transported grid on ``edges``: the exactly binned transported
    Gaussian mass (:meth:`gtv.numerics.transport.TransportedGrid.bin_masses`), ``outside = 1 -
    sum`` (clipped to [0, 1]), gap masses, error estimates (binned once) and point counts."""
    data = check_points(data, "data", dim=1)
    edges = np.asarray(edges, dtype=float)
    masses = grid.bin_masses(edges)
    return LearnedDensities(
        histograms=masses / np.diff(edges),
        outside=np.clip(1.0 - masses.sum(axis=1), 0.0, 1.0),
        gap=grid.gap_mass(data, gap_distance),
        error=grid.error(edges, masses),
        points=np.asarray(grid.size, dtype=np.int64).copy(),
    )
