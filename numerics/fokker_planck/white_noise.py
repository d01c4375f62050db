"""Schedule drifts and the clipped white-noise (Markov) density of a 1-D ensemble.

:func:`schedule_drift` builds ``b(x, t) = -beta_t x - k D_t s(x, t)`` for
:func:`gtv.numerics.fokker_planck.solve_fokker_planck`; :func:`solve_clipped_white_noise` solves the
white-noise approximation of the effective dynamics (docs/math/predictions.md) with the negative
part of the noise intensity clipped, for any theory that supplies a mean score and a Markov
intensity.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gtv.numerics.fokker_planck.grid import gaussian_cell_averages, uniform_grid
from gtv.numerics.fokker_planck.result import FokkerPlanckResult
from gtv.numerics.fokker_planck.solver import solve_fokker_planck

__all__ = ["schedule_drift", "solve_clipped_white_noise"]


def schedule_drift(schedule: object, score: Callable, score_factor: float = 1.0) -> Callable:
    """The drift ``b(x, t) = -beta_t x - score_factor * D_t * score(x, t)``.

    ``score_factor = 1`` gives the PF-ODE / effective-dynamics drift (use ``Q = 0`` or the
    V-kernel noise), ``score_factor = 2`` the reverse-SDE drift (with ``Q = 2 D_t``).
    ``score(x, t)`` takes points ``(m, d)`` and a float time and returns ``(m, d)``.
    """
    from gtv.numerics.schedules import resolve_schedule

    sched = resolve_schedule(schedule)
    f = float(score_factor)

    def drift(x: np.ndarray, t: float) -> np.ndarray:
        return -float(sched.beta(t)) * x - f * float(sched.diffusion(t)) * np.asarray(score(x, t))

    drift.__name__ = f"schedule_drift[{sched.name}, x{f:g}]"
    return drift


def solve_clipped_white_noise(
    schedule: object,
    mean_score: Callable,
    markov_intensity: Callable,
    eps: float,
    bounds: object,
    n_cells: int,
    n_steps: int,
    with_noise: bool = True,
    **fp_kwargs,
) -> tuple[FokkerPlanckResult, dict]:
    """White-noise (Markov) density at ``t = eps`` of a 1-D ensemble with noise ``Q^+ = max(Q, 0)``.

    Drift ``-beta x - D_t s_avg`` (:func:`schedule_drift` of ``mean_score(x, t)``), noise intensity
    ``max(markov_intensity(x, t), 0)`` (``with_noise=False``: no noise, the continuous-time PF-ODE
    of the mean score), from ``N(0, sigma_T**2)`` cell averages on ``uniform_grid(bounds,
    n_cells)`` at ``t = T``, by :func:`solve_fokker_planck` (extra keyword arguments pass through).

    Returns
    -------
    (FokkerPlanckResult, dict)
        The dict holds the clipping statistics over all noise evaluations: ``clipped_fraction``
        (fraction of (cell, step) evaluations with ``Q < 0``), ``clipped_share``
        (``sum |Q^-| / sum |Q|``) and ``min_Q_rel`` (the most negative ``Q`` relative to the
        largest ``Q`` of its step).
    """
    from gtv.numerics.schedules import resolve_schedule

    sched = resolve_schedule(schedule)
    stats = {"n_eval": 0, "n_neg": 0, "abs_neg": 0.0, "abs_all": 0.0, "min_rel": 0.0}

    def noise(x: np.ndarray, t: float) -> np.ndarray:
        q = markov_intensity(x, t)
        neg = q < 0
        stats["n_eval"] += q.size
        stats["n_neg"] += int(neg.sum())
        stats["abs_neg"] += float(-q[neg].sum())
        stats["abs_all"] += float(np.abs(q).sum())
        qmax = float(q.max())
        if neg.any() and qmax > 0:
            stats["min_rel"] = min(stats["min_rel"], float(q.min()) / qmax)
        return np.clip(q, 0.0, None)

    grid = uniform_grid(bounds, n_cells)
    p_T = gaussian_cell_averages(grid, 0.0, float(sched.sigma2(sched.T)))
    res = solve_fokker_planck(
        schedule_drift(sched, mean_score),
        noise if with_noise else None,
        p_T,
        grid,
        sched.T,
        eps,
        n_steps,
        **fp_kwargs,
    )
    info = {
        "clipped_fraction": stats["n_neg"] / max(stats["n_eval"], 1),
        "clipped_share": stats["abs_neg"] / stats["abs_all"] if stats["abs_all"] > 0 else 0.0,
        "min_Q_rel": stats["min_rel"],
    }
    return res, info
