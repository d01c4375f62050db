"""Collapse time of the exact empirical score (docs/math/memorization.md).

Biroli, Bonnaire, de Bortoli & Mezard (2024): for K training points drawn from N(0, s2 I_D), the
backward dynamics of the exact empirical score collapse onto the training points below the time
``t_C`` where the excess entropy ``f(t) = log K / D - (1/2) log(1 + s2 alpha_t**2 / sigma_t**2)``
vanishes, i.e. where ``alpha_t**2 / sigma_t**2 = (K**(2/D) - 1) / s2`` (the formula is
generated from :func:`gtv.theory.memory.collapse_condition`).

* :func:`collapse_time` solves that equation on a schedule (:func:`time_at_snr`);
* :func:`measured_collapse_time` measures it: fresh population points are noised to time ``t``
  and the mean largest posterior weight over the training points is followed on a time grid;
  the reported time is where it crosses 1/2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from gtv.numerics._generated.memory import collapse_snr
from gtv.numerics.checks import check_choice, check_count, check_positive
from gtv.numerics.posterior import posterior_weights
from gtv.numerics.schedules import resolve_schedule
from gtv.numerics.streams import stream_rng

__all__ = ["MeasuredCollapse", "collapse_time", "measured_collapse_time", "time_at_snr"]


def time_at_snr(snr: float, schedule: object = "vp-linear") -> float:
    """The time ``t`` in ``(0, T]`` with ``alpha_t**2 / sigma_t**2 = snr``.

    The signal-to-noise ratio decreases in ``t`` for every named schedule; the root is found by
    Brent's method on ``log(alpha**2/sigma2) - log(snr)`` in ``log t``.

    Returns
    -------
    float
        The time; ``math.inf`` if ``snr`` is below the ratio at ``T`` (the equation's root lies
        beyond the schedule's end).

    Raises
    ------
    ValueError
        If ``snr`` is not a finite positive number, or the root lies below ``1e-12 T``.
    """
    sched = resolve_schedule(schedule)
    try:
        target = float(snr)
    except (TypeError, ValueError):
        raise ValueError(f"snr must be a finite positive number, got {snr!r}") from None
    if not (math.isfinite(target) and target > 0):
        raise ValueError(f"snr must be a finite positive number, got {snr!r}")
    T = sched.T
    lo = 1e-12 * T

    def g(log_t: float) -> float:
        tv = math.exp(log_t)
        return math.log(float(sched.dsm_weight(tv))) - math.log(target)

    if g(math.log(T)) > 0:
        return math.inf
    if g(math.log(lo)) < 0:
        raise ValueError(
            f"snr = {target:g} is above alpha**2/sigma2 at t = 1e-12 T for {sched.name!r}"
        )
    return min(T, math.exp(brentq(g, math.log(lo), math.log(T), xtol=1e-14, rtol=1e-14)))


def collapse_time(K: int, D: int, s2: float = 1.0, schedule: object = "vp-linear") -> float:
    """Predicted collapse time ``t_C``: ``alpha**2 s2 / sigma2 = K**(2/D) - 1`` on the schedule.

    Parameters
    ----------
    K : int
        Number of training points, >= 2.
    D : int
        Dimension, >= 1.
    s2 : float, default 1.0
        Per-coordinate variance of the Gaussian data.
    schedule : str or NumericSchedule or gtv.theory.schedules.Schedule, default "vp-linear"

    Returns
    -------
    float
        ``t_C``, or ``math.inf`` when the excess entropy is still negative at ``T`` (the whole
        forward process lies in the collapsed phase).
    """
    K = check_count(K, "K", 2)
    D = check_count(D, "D", 1)
    s2 = check_positive(s2, "s2")
    return time_at_snr(float(collapse_snr(float(K), float(D), s2)), schedule)


@dataclass(frozen=True)
class MeasuredCollapse:
    """Result of :func:`measured_collapse_time`.

    Attributes
    ----------
    time : float
        Where ``mean_max_weight`` first drops below 1/2 going up in ``t`` (linear interpolation
        in ``log t`` between the two bracketing grid points).
    t_grid : ndarray, shape (n_t,)
    mean_max_weight : ndarray, shape (n_t,)
        Mean over population points of the largest posterior weight over the training points.
    K, D, s2 : the data parameters.
    """

    time: float
    t_grid: np.ndarray
    mean_max_weight: np.ndarray
    K: int
    D: int
    s2: float


def measured_collapse_time(
    K: int,
    D: int,
    s2: float = 1.0,
    schedule: object = "vp-linear",
    *,
    n_population: int = 1000,
    t_grid: object = None,
    seed: object = 0,
    backend: str = "numba",
) -> MeasuredCollapse:
    """Measure the collapse time of the exact empirical score.

    K training points are drawn from N(0, s2 I_D) (stream ``"memory-data"``) and
    ``n_population`` fresh points ``x0`` from the same law (stream ``"memory-renoise"``, which
    also gives the noise ``z``); at each ``t`` of the grid, ``x_t = alpha_t x0 + sigma_t z`` and
    the largest posterior weight over the training points
    (:func:`gtv.numerics.posterior.posterior_weights`) is averaged over the population. The same
    ``x0`` and ``z`` are used at every ``t``.

    Parameters
    ----------
    K, D, s2, schedule
        As in :func:`collapse_time`.
    n_population : int, default 1000
    t_grid : array_like, optional
        Increasing times in ``(0, T]``; default 60 points geometric from ``1e-3 T`` to ``T``.
    seed : int or SeedSequence, default 0
    backend : {"numba", "numpy"}, default "numba"

    Raises
    ------
    ValueError
        For invalid arguments, or if the mean largest weight does not cross 1/2 inside
        ``t_grid`` (widen the grid).
    """
    K = check_count(K, "K", 2)
    D = check_count(D, "D", 1)
    s2 = check_positive(s2, "s2")
    n_population = check_count(n_population, "n_population", 1)
    check_choice(backend, "backend", ("numba", "numpy"))
    sched = resolve_schedule(schedule)
    if t_grid is None:
        grid = np.geomspace(1e-3 * sched.T, sched.T, 60)
    else:
        grid = sched.check_times(t_grid, "t_grid")
        if grid.ndim != 1 or grid.size < 2 or np.any(np.diff(grid) <= 0):
            raise ValueError("t_grid must be a 1-D increasing array of at least 2 times")
    scale = math.sqrt(s2)
    mu = scale * stream_rng(seed, "memory-data").standard_normal((K, D))
    rng = stream_rng(seed, "memory-renoise")
    x0 = scale * rng.standard_normal((n_population, D))
    z = rng.standard_normal((n_population, D))
    curve = np.empty(grid.size)
    for i, tv in enumerate(grid):
        a = float(sched.alpha(tv))
        sd = math.sqrt(float(sched.sigma2(tv)))
        w = posterior_weights(mu, a * x0 + sd * z, float(tv), sched, backend=backend)
        curve[i] = float(np.mean(w.max(axis=1)))
    below = np.nonzero(curve < 0.5)[0]
    if below.size == 0 or below[0] == 0:
        raise ValueError(
            "t_grid: the mean largest posterior weight does not cross 1/2 inside the grid "
            f"(values from {curve[0]:.3g} to {curve[-1]:.3g}); widen t_grid"
        )
    j = int(below[0])
    l0, l1 = math.log(grid[j - 1]), math.log(grid[j])
    frac = (curve[j - 1] - 0.5) / (curve[j - 1] - curve[j])
    return MeasuredCollapse(math.exp(l0 + frac * (l1 - l0)), grid, curve, K, D, s2)
