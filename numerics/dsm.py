"""Denoising score matching (DSM) training sets: the draws every trained model class shares.

A DSM triple is ``(t, x0, x)`` with ``t ~ U[eps, T]``, ``x0 ~ p_data`` and
``x = alpha_t x0 + sigma_t xi``, ``xi ~ N(0, I)``; a model is fitted to ``P`` triples with the
denoiser-form weight ``lam(t) = alpha_t**2 / sigma_t**2`` (the schedule's ``dsm_weight``,
docs/math/linear.md). Each model of an ensemble draws its triples from its own generator, the
``n``-th child of the stream ``stream(seed, "training")`` (:mod:`gtv.numerics.streams`).

The order of the draws (times, then clean points, then noise) is part of the reproducibility
contract: the same generator state gives the same triples.
"""

from __future__ import annotations

import math

import numpy as np

from gtv.numerics.schedules import NumericSchedule

__all__ = ["draw_dsm_triples", "draw_gaussian_dsm_triples", "dsm_weights"]


def draw_dsm_triples(
    rng: np.random.Generator,
    data: np.ndarray,
    n_samples: int,
    eps: float,
    schedule: NumericSchedule,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw P DSM triples with ``x0`` uniform over the training points ``data`` (M, D).

    Returns times ``t`` (P,), clean points ``x0`` (P, D) and noisy points ``x`` (P, D). Draw
    order: times ``U[eps, T]``, then data indices, then the noise.
    """
    t = rng.uniform(eps, schedule.T, n_samples)
    idx = rng.integers(0, data.shape[0], n_samples)
    xi = rng.standard_normal((n_samples, data.shape[1]))
    x0 = data[idx]
    x = schedule.alpha(t)[:, None] * x0 + np.sqrt(schedule.sigma2(t))[:, None] * xi
    return t, x0, x


def draw_gaussian_dsm_triples(
    rng: np.random.Generator, mean: float, s2: float, n: int, eps: float, schedule: NumericSchedule
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P DSM triples for 1-D Gaussian data ``N(mean, s2)``: times, clean points, noisy points
    (each (n,)).

    Draw order: times ``U[eps, T]``, then ``x0``, then the noise.
    """
    t = rng.uniform(eps, schedule.T, n)
    x0 = mean + math.sqrt(s2) * rng.standard_normal(n)
    xi = rng.standard_normal(n)
    return t, x0, schedule.alpha(t) * x0 + np.sqrt(schedule.sigma2(t)) * xi


def dsm_weights(schedule: NumericSchedule, t: object) -> np.ndarray:
    """The DSM weights ``lam(t) = alpha_t**2 / sigma_t**2`` of the triples' times, as float64."""
    return np.asarray(schedule.dsm_weight(t), dtype=np.float64)
