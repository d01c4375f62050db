"""Per-member densities of a theory's Gaussian field and of the exact-Bayes PF-ODE, in 1-D.

The theory side of a comparison summarized like a trained ensemble (docs/math/predictions.md):
the members of ``theory.gaussian_field`` and the PF-ODE with the exact Bayes denoiser are run
through the same sampler as trained models and reduced to per-member bin densities, outside mass
and gap mass (:class:`gtv.validation.ensembles.LearnedDensities`), from Monte Carlo samples
(``density="mc"``) or transported (``density="transport"``: each member's PF-ODE map carried over
a deterministic quantile grid and the Gaussian mass binned exactly,
:func:`gtv.validation.ensembles.transported_densities`, docs/math/transport.md; no start-point
stream is drawn). Transport needs a field whose ``sample`` takes explicit start points (``x_T``,
``models``; :class:`gtv.numerics.linear.LinearField` does).

Streams (:mod:`gtv.numerics.streams`, given ``seed``): Gaussian-field weights
``stream(seed, "field").spawn(N)``, their PF-ODE start points
``stream(seed, "field-sampling").spawn(N)``; the exact-Bayes sampler
``stream(seed, "bayes-sampling")``. :mod:`gtv.validation.predictions` builds the predictions of
[q] on them.
"""

from __future__ import annotations

import inspect
import math
import warnings

import numpy as np

from gtv.numerics.checks import check_choice, check_count
from gtv.numerics.contract import EnsembleTheory
from gtv.numerics.exact import sample_exact_denoiser
from gtv.numerics.pfode import DivergenceWarning, abs_max, check_method, warn_if_diverged
from gtv.validation.ensembles import (
    DENSITIES,
    LearnedDensities,
    TransportSettings,
    gap_mass,
    sampled_densities,
    transported_densities,
)

__all__ = [
    "check_theory",
    "exact_bayes_densities",
    "exact_bayes_histogram",
    "gaussian_field_densities",
    "gaussian_field_histograms",
]


def check_theory(theory: object) -> EnsembleTheory:
    """``theory`` if it implements the theory contract, else ``TypeError``."""
    if not isinstance(theory, EnsembleTheory):
        raise TypeError(
            "theory must implement gtv.numerics.contract.EnsembleTheory (e.g. "
            "FirstOrderLinear(theory, P) or KernelTheoryAt(theory, tau, P))"
        )
    return theory


def _check_1d(theory: EnsembleTheory) -> None:
    if theory.dim != 1:
        raise ValueError(f"theory: only 1-D data is supported here, got D = {theory.dim}")


def _sigma_T(schedule) -> float:
    return math.sqrt(float(schedule.sigma2(schedule.T)))


def _takes_start_points(sample: object) -> bool:
    try:
        params = inspect.signature(sample).parameters
    except (TypeError, ValueError):
        return False
    return "x_T" in params and "models" in params


def gaussian_field_densities(
    theory: EnsembleTheory,
    n_models: int,
    edges: np.ndarray,
    gap_distance: float,
    *,
    density: str = "mc",
    n_samples: int | None = None,
    transport: TransportSettings | None = None,
    n_steps: int = 30,
    method: str = "euler",
    seed: int | np.random.SeedSequence = 0,
) -> LearnedDensities:
    """[q] by a Gaussian field of ``theory`` (1-D): per-member densities, like a trained ensemble.

    ``theory.gaussian_field(n_models, seed)`` (weights from stream ``"field"``) is run through
    the PF-ODE (``n_steps``, ``method``):

    * ``density="mc"``: ``n_samples`` per member, start points from stream ``"field-sampling"``
      (what :func:`gaussian_field_histograms` returns);
    * ``density="transport"``: every member carries the transport grid (``transport``, default
      :class:`~gtv.validation.ensembles.TransportSettings`, refined to the bin width of
      ``edges``; :func:`gtv.validation.ensembles.transported_densities`). The field's ``sample``
      must take explicit start points (``x_T`` and ``models``, as
      :class:`gtv.numerics.linear.LinearField` does; ``TypeError`` otherwise).

    Returns
    -------
    LearnedDensities
        Per-member histograms on ``edges`` (uniform), mass outside them and gap mass (fraction
        farther than ``gap_distance`` from every training point); with transport also the
        per-member error estimates and point counts.

    Warns
    -----
    DivergenceWarning
        Once, when samples (or transported points) end non-finite or beyond
        :func:`gtv.numerics.pfode.divergence_bound` of the training data (the field's own
        sampler's warning is replaced by this one, which names the Gaussian field; any field,
        also one that does not check itself, is checked). Non-finite samples then raise in the
        histograms.
    """
    _check_1d(check_theory(theory))
    check_method(method)
    check_choice(density, "density", DENSITIES)
    edges = np.asarray(edges, dtype=float)
    if density == "mc":
        n_samples = check_count(n_samples, "n_samples")
    elif transport is not None and not isinstance(transport, TransportSettings):
        raise TypeError("transport must be a TransportSettings (or None)")
    field = theory.gaussian_field(n_models, seed)
    radius = np.max(np.abs(theory.data), initial=0.0)
    sampler = "PF-ODE sampler of the Gaussian-field ensemble"
    if density == "mc":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DivergenceWarning)
            xs = field.sample(n_samples, n_steps=n_steps, method=method, seed=seed)
        warn_if_diverged(xs, radius, theory.schedule, method, n_steps, sampler=sampler)
        return sampled_densities(xs, theory.data, edges, gap_distance)
    if not _takes_start_points(field.sample):
        raise TypeError(
            f"theory: its Gaussian field ({type(field).__name__}) cannot be transported: its "
            "sample() takes no explicit start points (x_T, models); use density='mc'"
        )
    counts = [0, 0]  # points beyond the divergence bound, points carried

    def run(x_T: np.ndarray, models: np.ndarray | None = None) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DivergenceWarning)
            x = field.sample(x_T.shape[1], n_steps=n_steps, method=method, x_T=x_T, models=models)
            start = abs_max(x_T)
            counts[0] += warn_if_diverged(x, radius, theory.schedule, method, n_steps, start)
        counts[1] += x.shape[0] * x.shape[1]
        return x

    out = transported_densities(
        run, n_models, _sigma_T(theory.schedule), theory.data, edges, gap_distance, transport
    )
    if counts[0]:
        warnings.warn(
            f"the {method} {sampler} ({n_steps} steps) diverged: {counts[0]} of {counts[1]} "
            "transported grid points ended beyond 10 x (data radius + sigma_T) (or 2 max|x_T|); "
            "use more steps" + (", or method='euler'" if method == "heun" else ""),
            DivergenceWarning,
            stacklevel=2,
        )
    return out


def gaussian_field_histograms(
    theory: EnsembleTheory,
    n_models: int,
    n_samples: int,
    edges: np.ndarray,
    gap_distance: float,
    *,
    n_steps: int = 30,
    method: str = "euler",
    seed: int | np.random.SeedSequence = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """[q] by a Gaussian field of ``theory`` (1-D), summarized like a trained ensemble.

    ``theory.gaussian_field(n_models, seed)`` (weights from stream ``"field"``) is sampled with
    the PF-ODE (``n_samples`` per member, start points from stream ``"field-sampling"``):
    :func:`gaussian_field_densities` with ``density="mc"``.

    Returns
    -------
    (histograms (N, B), outside (N,), gap (N,))
        Per-member density histograms on ``edges`` (uniform), mass outside the edges and gap
        mass (fraction farther than ``gap_distance`` from every training point).

    Warns
    -----
    DivergenceWarning
        Once, when samples end non-finite or beyond
        :func:`gtv.numerics.pfode.divergence_bound` of the training data (the field's own
        sampler's warning is replaced by this one, which names the Gaussian field; any field,
        also one that does not check itself, is checked). Non-finite samples then raise in the
        histograms.
    """
    d = gaussian_field_densities(
        theory, n_models, edges, gap_distance, density="mc", n_samples=n_samples,
        n_steps=n_steps, method=method, seed=seed,
    )  # fmt: skip
    return d.histograms, d.outside, d.gap


def exact_bayes_densities(
    data: np.ndarray,
    edges: np.ndarray,
    eps: float,
    schedule,
    gap_distance: float,
    *,
    density: str = "mc",
    n_samples: int | None = None,
    transport: TransportSettings | None = None,
    n_steps: int = 30,
    method: str = "euler",
    seed: int | np.random.SeedSequence = 0,
) -> LearnedDensities:
    """PF-ODE with the exact Bayes denoiser (1-D) as a one-model ensemble.

    ``density="mc"``: ``n_samples`` start points from ``stream(seed, "bayes-sampling")``
    (:func:`gtv.numerics.exact.sample_exact_denoiser`; what :func:`exact_bayes_histogram`
    returns); ``density="transport"``: the transport grid (``transport``), refined to the bin
    width of ``edges`` (no stream).

    Returns
    -------
    LearnedDensities
        ``histograms`` (1, B), ``outside`` (1,), ``gap`` (1,); with transport the error estimate
        and point count.
    """
    check_choice(density, "density", DENSITIES)
    edges = np.asarray(edges, dtype=float)
    if density == "mc":
        xb = sample_exact_denoiser(
            data, n_samples, eps, schedule, n_steps=n_steps, method=method, seed=seed
        )
        counts, _ = np.histogram(xb[:, 0], bins=edges)
        hist = counts / (xb.shape[0] * np.diff(edges))
        gap = gap_mass(xb[None], data, gap_distance)
        outside = np.array([1.0 - hist.sum() * float(np.diff(edges).mean())])
        return LearnedDensities(hist[None], outside, gap)

    def run(x_T: np.ndarray, models: np.ndarray | None = None) -> np.ndarray:
        # one model: every row (the grid, or packed rows of new points) is the same sampler's
        x = sample_exact_denoiser(
            data, x_T.size, eps, schedule, n_steps=n_steps, method=method,
            x_T=x_T.reshape(-1, 1),
        )  # fmt: skip
        return x.reshape(x_T.shape)

    return transported_densities(run, 1, _sigma_T(schedule), data, edges, gap_distance, transport)


def exact_bayes_histogram(
    data: np.ndarray,
    edges: np.ndarray,
    n_samples: int,
    eps: float,
    schedule,
    gap_distance: float,
    *,
    n_steps: int = 30,
    method: str = "euler",
    seed: int | np.random.SeedSequence = 0,
) -> tuple[np.ndarray, float]:
    """PF-ODE with the exact Bayes denoiser (1-D): bin densities on ``edges`` and gap mass.

    Start points from ``stream(seed, "bayes-sampling")``
    (:func:`gtv.numerics.exact.sample_exact_denoiser`); :func:`exact_bayes_densities` with
    ``density="mc"``.
    """
    d = exact_bayes_densities(
        data, edges, eps, schedule, gap_distance, density="mc", n_samples=n_samples,
        n_steps=n_steps, method=method, seed=seed,
    )  # fmt: skip
    return d.histograms[0], float(d.gap[0])
