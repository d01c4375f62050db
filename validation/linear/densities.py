"""Per-model learned densities of a trained 1-D linear ensemble (docs/math/transport.md).

:func:`linear_ensemble_densities` is the one place a trained linear ensemble's per-model
densities are formed for the comparisons (``gtv validate linear``, its ``--target both``, the
validity map): Monte Carlo samples binned per model, or every model's PF-ODE map carried over the
transport grid and the Gaussian mass binned exactly
(:func:`gtv.validation.ensembles.transported_densities`). The theory side is
:mod:`gtv.validation.theory_densities`.
"""

from __future__ import annotations

import math

import numpy as np

from gtv.numerics.checks import check_choice, check_count
from gtv.numerics.linear import LinearEnsemble, LinearSampler, sample_linear_ensemble
from gtv.validation.ensembles import (
    DENSITIES,
    LearnedDensities,
    TransportSettings,
    sampled_densities,
    transported_densities,
)

__all__ = ["linear_ensemble_densities"]


def linear_ensemble_densities(
    ensemble: LinearEnsemble,
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
    """Per-model densities of a trained 1-D linear ensemble on uniform ``edges``.

    Parameters
    ----------
    ensemble : LinearEnsemble
        1-D.
    edges : ndarray, shape (B + 1,)
        Uniform, increasing histogram edges.
    gap_distance : float
        Gap-mass threshold (> 0): distance from every training point (``ensemble.data``).
    density : {"mc", "transport"}, default "mc"
        ``"mc"``: model ``n`` bins ``n_samples`` PF-ODE samples started from
        ``stream(seed, "sampling").spawn(N)[n]``
        (:func:`gtv.numerics.linear.sample_linear_ensemble`); ``"transport"``: every model carries
        the transport grid (``transport``, default
        :class:`~gtv.validation.ensembles.TransportSettings`, refined to the bin width; no stream).
    n_samples : int, optional
        Samples per model, required with ``density="mc"``.
    transport : TransportSettings, optional
    n_steps, method
        The PF-ODE sampler (the paper's: 30 Euler steps).
    seed : int or SeedSequence
        Used with ``density="mc"`` only.

    Returns
    -------
    LearnedDensities
        Histograms (N, B), outside mass ``1 - sum(histogram) * width`` and gap masses (N,); with
        transport also the per-model error estimates and point counts.
    """
    if not isinstance(ensemble, LinearEnsemble):
        raise TypeError("ensemble must be a LinearEnsemble")
    if ensemble.features.dim != 1:
        raise ValueError(f"ensemble: only 1-D data is supported, got D = {ensemble.features.dim}")
    check_choice(density, "density", DENSITIES)
    edges = np.asarray(edges, dtype=float)
    if density == "mc":
        n_samples = check_count(n_samples, "n_samples")
        xs = sample_linear_ensemble(ensemble, n_samples, n_steps=n_steps, method=method, seed=seed)
        return sampled_densities(xs, ensemble.data, edges, gap_distance)
    if transport is not None and not isinstance(transport, TransportSettings):
        raise TypeError("transport must be a TransportSettings (or None)")
    sampler = LinearSampler(ensemble, n_steps=n_steps, method=method)

    def run(x_T: np.ndarray, models: np.ndarray | None = None) -> np.ndarray:
        return sampler.sample(x_T.shape[1], x_T=x_T, models=models)

    sigma_T = math.sqrt(float(ensemble.schedule.sigma2(ensemble.schedule.T)))
    return transported_densities(
        run, ensemble.n_models, sigma_T, ensemble.data, edges, gap_distance, transport
    )
