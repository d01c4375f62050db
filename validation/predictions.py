"""Theory predictions of the ensemble-mean learned density [q] in 1-D (docs/math/predictions.md).

Written once for any theory implementing :class:`gtv.numerics.contract.EnsembleTheory` (the
linear first- and second-order theories, :mod:`gtv.numerics.linear.prediction`; the kernel
theory, :mod:`gtv.numerics.kernel.prediction`). Four predictions, all on one common histogram
grid (``edges``) so they can be compared with a trained ensemble's per-model histograms:

* **Gaussian-field ensemble**
  (:func:`gtv.validation.theory_densities.gaussian_field_densities`): ``N`` denoisers drawn from
  the theory's Gaussian field (``theory.gaussian_field``: for the linear theory
  ``W ~ N(W_inf, Cov W(P))``; for the kernel theory ``xi ~ N(0, C/P)`` in its eigenbasis),
  sampled with the *same* PF-ODE sampler as trained ensembles. Per-model histograms are kept,
  so the Gaussian-field ensemble is summarized exactly like a trained one.
* **White-noise (Markov) Fokker-Planck density** (:func:`markov_fokker_planck`): the
  reverse-time process with drift ``b = -beta_t x - D_t s_avg`` (the theory's mean score) and
  noise intensity ``Q(x, t)`` (its Markov intensity: the two-sided lag integral of the
  V-kernel), evolved from ``N(0, sigma_T**2)`` by
  :func:`gtv.numerics.fokker_planck.solve_clipped_white_noise`. ``Q`` need not be
  non-negative (V can be negative between distant times); negative values are clipped to 0 and
  the clipped fraction of (cell, step) evaluations, and the clipped share of ``|Q|``, are
  recorded.
* **Mean-score Fokker-Planck** (diagnostic): the same solver with ``Q = 0``.
* **Baselines**: the exact ``p(x|eps)`` (bin averages of the Gaussian mixture, by ``erf``) and the
  PF-ODE histogram with the exact Bayes denoiser (same sampler grid; shows discretization error).

Every density is stored as bin *densities* on ``edges`` plus the mass outside ``[edges[0],
edges[-1]]`` (``*_outside``), so distances can treat "outside" as one more bin.

The Gaussian-field members and the exact-Bayes PF-ODE are binned from Monte Carlo samples
(``density="mc"``, the default of :func:`compute_theory_predictions`) or transported
(``density="transport"``), by :mod:`gtv.validation.theory_densities`.

Streams (:mod:`gtv.numerics.streams`, given ``seed``): Gaussian-field weights
``stream(seed, "field").spawn(N)``, their PF-ODE start points
``stream(seed, "field-sampling").spawn(N)``; the exact-Bayes sampler
``stream(seed, "bayes-sampling")``. A trained ensemble with training/sampling seed ``seed``
(streams ``"training"``, ``"sampling"``) shares no stream with these.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.special import erf

from gtv.numerics.checks import check_choice, check_count
from gtv.numerics.contract import EnsembleTheory
from gtv.numerics.fokker_planck import solve_clipped_white_noise
from gtv.numerics.streams import check_seed
from gtv.validation.ensembles import DENSITIES, TransportSettings
from gtv.validation.results import load_result_of_kind, result_file, save_result
from gtv.validation.theory_densities import (
    _check_1d,
    check_theory,
    exact_bayes_densities,
    exact_bayes_histogram,
    gaussian_field_densities,
    gaussian_field_histograms,
)

__all__ = [
    "TheoryPredictions",
    "bin_mixture_density",
    "compute_theory_predictions",
    "exact_gap_mass",
    "fokker_planck_grid",
    "fokker_planck_on_edges",
    "markov_fokker_planck",
]


def markov_fokker_planck(
    theory: EnsembleTheory,
    bounds: tuple[float, float] = (-6.0, 6.0),
    n_cells: int = 960,
    n_steps: int = 400,
    with_noise: bool = True,
    **fp_kwargs,
):
    """White-noise (Markov) density at ``t = eps`` of any 1-D theory: drift
    ``-beta x - D s_avg``, noise ``Q^+ = max(Q, 0)``.

    ``s_avg`` and ``Q`` are ``theory.white_noise_coefficients()`` (the theory's mean score and
    Markov intensity, cached per point set), evolved from ``N(0, sigma_T**2)`` at ``t = T`` by
    :func:`gtv.numerics.fokker_planck.solve_clipped_white_noise` (extra keyword arguments pass
    through to the solver). ``with_noise=False`` solves the continuous-time PF-ODE of the mean
    score alone (``Q = 0``), which separates the effect of the noise from that of ``s_avg`` and
    of the sampler's time discretization.

    Returns
    -------
    (FokkerPlanckResult, dict)
        The dict holds ``clipped_fraction`` (fraction of (cell, step) evaluations with
        ``Q < 0``), ``clipped_share`` (``sum |Q^-| / sum |Q|`` over all evaluations),
        ``min_Q_rel`` (the most negative ``Q`` relative to the largest ``Q`` of its step),
        ``max_boundary_mass``, ``max_limited_mass`` (FCT limiter) and ``mass_error``.
    """
    _check_1d(check_theory(theory))
    mean_score, intensity = theory.white_noise_coefficients()
    res, clip = solve_clipped_white_noise(
        theory.schedule,
        mean_score,
        intensity,
        theory.eps,
        bounds,
        n_cells,
        n_steps,
        with_noise,
        **fp_kwargs,
    )
    info = {
        **clip,
        "max_boundary_mass": float(res.boundary_mass.max()),
        "max_limited_mass": float(res.limited_mass.max()) if res.limited_mass.size else 0.0,
        "mass_error": float(res.mass_error),
    }
    return res, info


def bin_mixture_density(data: np.ndarray, edges: np.ndarray, t: float, schedule) -> np.ndarray:
    """Bin averages of the exact ``p(x|t)`` of the 1-D training points on ``edges``."""
    a, s = float(schedule.alpha(t)), math.sqrt(float(schedule.sigma2(t)))
    z = (np.asarray(edges)[:, None] - a * np.asarray(data)[:, 0][None, :]) / (s * math.sqrt(2))
    cdf = 0.5 * (1 + erf(z)).mean(axis=1)
    return np.diff(cdf) / np.diff(edges)


def _rebin(fine_edges: np.ndarray, fine_density: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin densities on ``edges`` from a finer density (mass-conserving; linear CDF in cells)."""
    cdf = np.concatenate([[0.0], np.cumsum(fine_density * np.diff(fine_edges))])
    c = np.interp(edges, fine_edges, cdf)
    return np.diff(c) / np.diff(edges)


def _near_data_mask(x: np.ndarray, data: np.ndarray, distance: float) -> np.ndarray:
    return np.any(np.abs(x[:, None] - data[None, :, 0]) <= distance, axis=1)


def fokker_planck_grid(
    edges: np.ndarray,
    schedule,
    fp_bounds: tuple[float, float] | None = None,
    fp_refine: int = 2,
) -> tuple[float, float, int]:
    """Fokker-Planck domain ``(lo, hi, n_cells)`` aligned with the uniform histogram ``edges``.

    Default bounds: the edges extended to cover ``+-6 sigma_T``; ``fp_refine`` cells per bin.
    """
    width = float(np.diff(edges).mean())
    if fp_bounds is None:
        sig_T = math.sqrt(float(schedule.sigma2(schedule.T)))
        half = max(abs(edges[0]), abs(edges[-1]), 6.0 * sig_T)
        fp_bounds = (-half, half)
    lo_pad = max(0, int(math.ceil((edges[0] - fp_bounds[0]) / width - 1e-9)))
    hi_pad = max(0, int(math.ceil((fp_bounds[1] - edges[-1]) / width - 1e-9)))
    lo, hi = edges[0] - lo_pad * width, edges[-1] + hi_pad * width
    return float(lo), float(hi), (edges.size - 1 + lo_pad + hi_pad) * int(fp_refine)


def fokker_planck_on_edges(res, edges: np.ndarray, data: np.ndarray, gap_distance: float):
    """A 1-D Fokker-Planck result on the histogram grid.

    Returns
    -------
    (fp_edges, fp_density, density, gap)
        The solver's own edges and normalized cell densities, the density re-binned onto
        ``edges`` (mass-conserving) and the gap mass (cells whose centre is farther than
        ``gap_distance`` from every training point).
    """
    fp_edges = np.asarray(res.grid.edges[0])
    fp_density = np.asarray(res.density) / res.grid.mass(res.density)
    fp_centres = (fp_edges[1:] + fp_edges[:-1]) / 2
    far = ~_near_data_mask(fp_centres, data, gap_distance)
    gap = float((fp_density * np.diff(fp_edges))[far].sum())
    return fp_edges, fp_density, _rebin(fp_edges, fp_density, edges), gap


def exact_gap_mass(data: np.ndarray, eps: float, schedule, distance: float) -> float:
    """Gap mass of the exact ``p(x|eps)`` (1-D): one minus the mass within ``distance`` of some
    training point (a union of intervals, integrated exactly by ``erf``)."""
    ivals = sorted((m - distance, m + distance) for m in np.asarray(data)[:, 0])
    merged = []
    for a, b in ivals:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    near = sum(
        float(bin_mixture_density(data, np.array([a, b]), eps, schedule)[0] * (b - a))
        for a, b in merged
    )
    return 1.0 - near


@dataclass
class TheoryPredictions:
    """Theory densities on a common histogram grid (module docstring).

    Attributes
    ----------
    edges : ndarray (B + 1,)
    gf_histograms : ndarray (N, B)
        Per-model histograms of the Gaussian-field ensemble.
    gf_gap : ndarray (N,)
        Per-model gap mass of the Gaussian-field ensemble.
    fp_density, fp_edges : ndarray
        White-noise Fokker-Planck cell averages at ``eps`` on its own (finer, wider) grid.
    markov_density : ndarray (B,)
        ``fp_density`` re-binned onto ``edges``.
    mean_fp_density : ndarray (B,)
        The same solver with ``Q = 0`` (continuous-time PF-ODE of ``s_avg``; diagnostic).
    exact_density : ndarray (B,)
        Bin averages of ``p(x|eps)``.
    bayes_density : ndarray (B,)
        Histogram of the exact-Bayes PF-ODE samples.
    outside : dict
        Mass outside the edges for ``"markov"``, ``"mean_fp"``, ``"exact"``, ``"bayes"``;
        ``"gaussian_field"`` is per model in ``gf_outside`` (N,).
    gap : dict
        Gap mass (``config["gap_distance"]``) of ``"markov"``, ``"mean_fp"``, ``"exact"``,
        ``"bayes"``.
    fp_info : dict
        Clipping and solver diagnostics of the Fokker-Planck run.
    config : dict
        eps, P, N, samples, features, data, schedule, seeds, timings...
    """

    edges: np.ndarray
    gf_histograms: np.ndarray
    gf_outside: np.ndarray
    gf_gap: np.ndarray
    fp_edges: np.ndarray
    fp_density: np.ndarray
    markov_density: np.ndarray
    mean_fp_density: np.ndarray
    exact_density: np.ndarray
    bayes_density: np.ndarray
    outside: dict
    gap: dict
    fp_info: dict
    config: dict = field(default_factory=dict)

    @property
    def centres(self) -> np.ndarray:
        return (self.edges[1:] + self.edges[:-1]) / 2

    @property
    def gf_mean(self) -> np.ndarray:
        return self.gf_histograms.mean(axis=0)

    def densities(self) -> dict[str, tuple[np.ndarray, float]]:
        """``{name: (bin densities (B,), mass outside)}`` for every prediction."""
        return {
            "gaussian_field": (self.gf_mean, float(self.gf_outside.mean())),
            "white_noise_fp": (self.markov_density, float(self.outside["markov"])),
            "mean_score_fp_Q0": (self.mean_fp_density, float(self.outside["mean_fp"])),
            "p(x|eps)": (self.exact_density, float(self.outside["exact"])),
            "exact_bayes_pfode": (self.bayes_density, float(self.outside["bayes"])),
        }

    def save(self, path: str | Path) -> Path:
        arrays = {
            "edges": self.edges,
            "gf_histograms": self.gf_histograms,
            "gf_outside": self.gf_outside,
            "gf_gap": self.gf_gap,
            "fp_edges": self.fp_edges,
            "fp_density": self.fp_density,
            "markov_density": self.markov_density,
            "mean_fp_density": self.mean_fp_density,
            "exact_density": self.exact_density,
            "bayes_density": self.bayes_density,
        }
        cfg = {
            "kind": "theory_predictions",
            "outside": self.outside,
            "gap": self.gap,
            "fp_info": self.fp_info,
            "config": self.config,
        }
        return save_result(path, arrays, cfg)

    @classmethod
    def load(cls, path: str | Path) -> TheoryPredictions:
        a, cfg = load_result_of_kind(path, "theory_predictions", "a TheoryPredictions")
        with result_file(path, "TheoryPredictions"):
            return cls(
                a["edges"],
                a["gf_histograms"],
                a["gf_outside"],
                a["gf_gap"],
                a["fp_edges"],
                a["fp_density"],
                a["markov_density"],
                a["mean_fp_density"],
                a["exact_density"],
                a["bayes_density"],
                cfg["outside"],
                cfg["gap"],
                cfg["fp_info"],
                cfg["config"],
            )


def compute_theory_predictions(
    theory: EnsembleTheory,
    n_models: int,
    n_samples: int | None,
    edges: np.ndarray,
    *,
    gap_distance: float = 0.25,
    n_bayes_samples: int | None = None,
    n_steps: int = 30,
    method: str = "euler",
    seed: int = 0,
    fp_bounds: tuple[float, float] | None = None,
    fp_refine: int = 2,
    fp_steps: int = 400,
    density: str = "mc",
    transport: TransportSettings | None = None,
) -> TheoryPredictions:
    """All four predictions for one configuration (eps and the budget from ``theory``).

    Parameters
    ----------
    theory : EnsembleTheory
        A 1-D theory at its budget (e.g.
        :class:`~gtv.numerics.linear.prediction.FirstOrderLinear`).
    n_models : int
        Gaussian-field ensemble size (use the trained ensemble's).
    n_samples : int or None
        PF-ODE samples per Gaussian-field member with ``density="mc"`` (use the trained
        ensemble's); unused (may be None) with ``density="transport"``.
    edges : ndarray
        Common histogram grid (uniform, increasing).
    gap_distance : float
        Gap mass threshold (distance from every training point).
    n_bayes_samples : int, optional
        Exact-Bayes PF-ODE samples with ``density="mc"`` (default ``n_models * n_samples``
        capped at 10**6).
    n_steps, method
        The PF-ODE sampler (same for the Gaussian field and the exact-Bayes baseline).
    fp_bounds : (lo, hi), optional
        Fokker-Planck domain (default: edges extended to cover ``+-6 sigma_T``), aligned with
        ``edges``; ``fp_refine`` FP cells per histogram bin; ``fp_steps`` FP time steps.
    seed : int or SeedSequence
        Streams as in the module docstring.
    density : {"mc", "transport"}, default "mc"
        How the Gaussian-field members and the exact-Bayes PF-ODE are binned (module
        docstring); with ``"transport"`` both carry the grid of ``transport`` (default
        :class:`~gtv.validation.ensembles.TransportSettings`) and ``config`` records
        ``transport_error_tv`` (the largest per-member error estimate of the Gaussian field
        and that of the exact-Bayes reference) and the points carried.
    """
    _check_1d(check_theory(theory))
    seed = check_seed(seed)
    edges = np.asarray(edges, dtype=float)
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.diff(edges) > 0):
        raise ValueError("edges must be an increasing 1-D array with at least two entries")
    width = float(np.diff(edges).mean())
    if not np.allclose(np.diff(edges), width, rtol=1e-9, atol=0):
        raise ValueError("edges must be uniform")
    if int(fp_refine) != fp_refine or fp_refine < 1:
        raise ValueError(f"fp_refine must be an integer >= 1, got {fp_refine!r}")
    check_choice(density, "density", DENSITIES)
    mc = density == "mc"
    if mc:
        n_samples = check_count(n_samples, "n_samples")
    else:
        transport = TransportSettings() if transport is None else transport
        if not isinstance(transport, TransportSettings):
            raise TypeError("transport must be a TransportSettings (or None)")
    sched = theory.schedule
    data = theory.data
    eps = theory.eps
    timings = {}

    t0 = time.perf_counter()
    if mc:
        gf_hist, gf_out, gf_gap = gaussian_field_histograms(
            theory, n_models, n_samples, edges, gap_distance, n_steps=n_steps, method=method,
            seed=seed,
        )  # fmt: skip
    else:
        gf = gaussian_field_densities(
            theory, n_models, edges, gap_distance, density="transport", transport=transport,
            n_steps=n_steps, method=method, seed=seed,
        )  # fmt: skip
        gf_hist, gf_out, gf_gap = gf.histograms, gf.outside, gf.gap
    timings["gaussian_field_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    lo, hi, n_cells = fokker_planck_grid(edges, sched, fp_bounds, fp_refine)
    fp, fp_info = markov_fokker_planck(theory, (lo, hi), n_cells, fp_steps)
    fp_edges, fp_density, markov, markov_gap = fokker_planck_on_edges(fp, edges, data, gap_distance)
    fp0, _ = markov_fokker_planck(theory, (lo, hi), n_cells, fp_steps, with_noise=False)
    _, _, mean_fp, mean_fp_gap = fokker_planck_on_edges(fp0, edges, data, gap_distance)
    timings["fokker_planck_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    exact = bin_mixture_density(data, edges, eps, sched)
    exact_gap = exact_gap_mass(data, eps, sched, gap_distance)
    if mc:
        nb = n_bayes_samples if n_bayes_samples is not None else min(n_models * n_samples, 10**6)
        bayes, bayes_gap = exact_bayes_histogram(
            data, edges, nb, eps, sched, gap_distance, n_steps=n_steps, method=method, seed=seed
        )
        bayes_out = float(1.0 - bayes.sum() * width)
    else:
        bd = exact_bayes_densities(
            data, edges, eps, sched, gap_distance, density="transport", transport=transport,
            n_steps=n_steps, method=method,
        )  # fmt: skip
        bayes, bayes_gap, bayes_out = bd.histograms[0], float(bd.gap[0]), float(bd.outside[0])
    timings["baselines_s"] = time.perf_counter() - t0

    sizes = (
        {"n_samples": int(n_samples), "n_bayes_samples": int(nb)}
        if mc
        else {
            "transport": dataclasses.asdict(transport),
            "transport_error_tv": {
                "gaussian_field": float(gf.error.max()), "bayes": float(bd.error[0]),
            },
            "transport_points": {
                "gaussian_field_mean": float(gf.points.mean()),
                "gaussian_field_max": int(gf.points.max()), "bayes": int(bd.points[0]),
            },
        }
    )  # fmt: skip
    config = {
        "eps": eps,
        "P": float(theory.P),
        "n_models": int(n_models),
        "density": density,
        **sizes,
        "n_steps": int(n_steps),
        "method": method,
        "seed": seed if isinstance(seed, int) else -1,
        "gap_distance": float(gap_distance),
        "fp_bounds": [float(lo), float(hi)],
        "fp_cells": int(n_cells),
        "fp_steps": int(fp_steps),
        "theory": theory.config(),
        "timings": timings,
    }
    return TheoryPredictions(
        edges=edges,
        gf_histograms=gf_hist,
        gf_outside=gf_out,
        gf_gap=gf_gap,
        fp_edges=fp_edges,
        fp_density=fp_density,
        markov_density=markov,
        mean_fp_density=mean_fp,
        exact_density=exact,
        bayes_density=bayes,
        outside={
            "markov": float(1.0 - markov.sum() * width),
            "mean_fp": float(1.0 - mean_fp.sum() * width),
            "exact": float(1.0 - exact.sum() * width),
            "bayes": bayes_out,
        },
        gap={
            "markov": markov_gap,
            "mean_fp": mean_fp_gap,
            "exact": float(exact_gap),
            "bayes": bayes_gap,
        },
        fp_info=fp_info,
        config=config,
    )
