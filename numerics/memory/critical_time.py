"""Critical time (basin size) of samples, and the attractor-based sample classification.

docs/memorization.md ("The attractor criterion"). Pham et al. (2025) measure the basin of a sample
``y0`` by re-noising it, ``x_t = alpha_t y0 + sigma_t xi``, running the sampler back from ``t`` to
``eps`` and asking whether it returns to ``y0``. The *critical time* ``T_c`` is the largest ``t`` of
a grid at which it returns in at least a fraction ``p`` of the trials (:func:`critical_times`); the
basin radius is ``r = E |x_t / alpha_t - y0|`` at ``T_c``.

With few trials the largest qualifying time is noisy: where the recovery probability is ``q``
the chance that ``n_trials = 10`` trials show at least 9 successes is ``q**10 + 10 q**9 (1 - q)``,
0.011 at ``q = 0.5`` (two equal basins) and 0.15 at ``q = 0.7``, so on a long grid some large
``t`` qualifies by chance.
``rule="contiguous"`` takes instead the end of the run of qualifying times that starts at the
smallest grid time.

:func:`classify_by_attractors` is the model-based criterion: descend each sample with the
fixed-point iteration of :func:`gtv.numerics.memory.attractors.find_attractors` and label it by
the attractor it reaches (memory, isolated non-memory, or a flat continuum).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gtv.numerics.checks import check_choice, check_count, check_positive
from gtv.numerics.memory.attractors import (
    Attractors,
    find_attractors,
    integrate_pf_ode,
    pf_end_points,
)
from gtv.numerics.memory.denoisers import DenoiserMap
from gtv.numerics.memory.labels import GENERALIZED, LABEL_NAMES, MEMORIZED, SPURIOUS
from gtv.numerics.pfode import check_method
from gtv.numerics.streams import check_seed, stream_rng

__all__ = [
    "RULES",
    "AttractorClasses",
    "CriticalTimes",
    "classify_by_attractors",
    "critical_times",
    "log_density_barriers",
]


@dataclass(frozen=True)
class CriticalTimes:
    """Critical times of a set of samples.

    Attributes
    ----------
    t_grid : ndarray (n_t,)
        Re-noising times (increasing).
    recovery : ndarray (n, n_t)
        Fraction of the ``n_trials`` trials of sample ``i`` at ``t_grid[j]`` that returned
        within ``delta``.
    t_c : ndarray (n,)
        The critical time by ``rule``: the largest grid time with ``recovery >= p``
        (``"last"``), or the largest ``t_grid[j]`` with ``recovery >= p`` at every grid time up
        to it (``"contiguous"``); 0 where no grid time qualifies (see ``found``).
    found : ndarray of bool (n,)
        Whether some grid time qualifies.
    radius : ndarray (n,)
        ``mean_trials |x_t / alpha_t - y0| = (sigma_t / alpha_t) mean |xi|`` at ``T_c`` (from
        that time's draws); 0 where not ``found``.
    n_trials : int
    p, delta : float
    rule : {"last", "contiguous"}
    """

    t_grid: np.ndarray
    recovery: np.ndarray
    t_c: np.ndarray
    found: np.ndarray
    radius: np.ndarray
    n_trials: int
    p: float
    delta: float
    rule: str


#: Rules for the critical time (:func:`critical_times`).
RULES = ("last", "contiguous")


def critical_times(
    denoiser: DenoiserMap,
    samples: object,
    t_grid: object,
    *,
    delta: float,
    seed: object,
    n_trials: int = 10,
    p: float = 0.9,
    n_steps: int = 30,
    method: str = "euler",
    final_denoise: bool = True,
    rule: str = "last",
) -> CriticalTimes:
    """Critical time and basin radius of each sample (Pham et al.'s re-noising test).

    For each grid time ``t`` and sample ``y0``: ``x_t = alpha_t y0 + sigma_t xi`` for
    ``n_trials`` draws ``xi ~ N(0, I)``, the PF-ODE of ``denoiser`` from ``t`` to ``eps``
    (:func:`~gtv.numerics.memory.attractors.integrate_pf_ode`, ``n_steps`` steps whatever
    ``t``; none when ``t = eps``), then ``y^ = D^(x_eps, eps)`` (or ``x_eps / alpha_eps``
    without ``final_denoise``). A trial recovers ``y0`` if ``|y^ - y0| <= delta``.

    Parameters
    ----------
    denoiser : DenoiserMap
    samples : array_like (n, D)
        Samples ``y0`` in data coordinates.
    t_grid : array_like (n_t,)
        Strictly increasing times in ``[eps, T]``.
    delta : float
        Recovery radius (> 0, data units).
    seed : int or SeedSequence
        All draws come from ``stream_rng(seed, "memory-renoise")``: one standard-normal array
        of shape (n_t, n, n_trials, D).
    n_trials : int, default 10
    p : float in (0, 1], default 0.9
    n_steps, method
        PF-ODE grid from ``t`` to ``eps``.
    final_denoise : bool, default True
    rule : {"last", "contiguous"}, default "last"
        ``"last"``: Pham et al.'s largest grid time with ``recovery >= p``; ``"contiguous"``:
        the end of the qualifying run from the smallest grid time (module docstring).

    Returns
    -------
    CriticalTimes
    """
    if not isinstance(denoiser, DenoiserMap):
        raise TypeError(f"denoiser must be a DenoiserMap, got {type(denoiser).__name__}")
    y0 = denoiser.check_points(samples, "samples")
    try:
        grid = np.asarray(t_grid, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise ValueError(f"t_grid must be a sequence of times, got {t_grid!r}") from None
    if grid.size < 1 or not np.all(np.isfinite(grid)) or np.any(np.diff(grid) <= 0):
        raise ValueError("t_grid must be a non-empty, finite, strictly increasing sequence")
    eps = denoiser.eps
    if grid[0] < eps or grid[-1] > denoiser.schedule.T:
        raise ValueError(
            f"t_grid must lie in [eps, T] = [{eps:g}, {denoiser.schedule.T:g}], got "
            f"[{grid[0]:g}, {grid[-1]:g}]"
        )
    delta = check_positive(delta, "delta")
    seed = check_seed(seed)
    n_trials = check_count(n_trials, "n_trials")
    p = check_positive(p, "p")
    if p > 1:
        raise ValueError(f"p must lie in (0, 1], got {p!r}")
    n_steps = check_count(n_steps, "n_steps")
    check_method(method)
    rule = check_choice(rule, "rule", RULES)

    n, d = y0.shape
    xi = stream_rng(seed, "memory-renoise").standard_normal((grid.size, n, n_trials, d))
    s = denoiser.schedule
    recovery = np.empty((n, grid.size))
    spread = np.empty((n, grid.size))
    for j, t in enumerate(grid):
        a, sig = float(s.alpha(t)), float(np.sqrt(s.sigma2(t)))
        x = (a * y0[:, None, :] + sig * xi[j]).reshape(n * n_trials, d)
        if t > eps:
            x = integrate_pf_ode(denoiser, x, t, eps, n_steps, method)
        y_hat = pf_end_points(denoiser, x, final_denoise).reshape(n, n_trials, d)
        ok = np.linalg.norm(y_hat - y0[:, None, :], axis=2) <= delta
        recovery[:, j] = ok.mean(axis=1)
        spread[:, j] = (sig / a) * np.linalg.norm(xi[j], axis=2).mean(axis=1)
    good = recovery >= p
    if rule == "contiguous":
        good = np.cumprod(good, axis=1).astype(bool)
    found = good.any(axis=1)
    last = np.where(found, grid.size - 1 - np.argmax(good[:, ::-1], axis=1), 0)
    t_c = np.where(found, grid[last], 0.0)
    radius = np.where(found, spread[np.arange(n), last], 0.0)
    return CriticalTimes(grid, recovery, t_c, found, radius, n_trials, p, delta, rule)


@dataclass(frozen=True)
class AttractorClasses:
    """Labels of samples by the attractor their descent reaches.

    Attributes
    ----------
    labels : ndarray of int (n,)
        ``MEMORIZED`` (0), ``SPURIOUS`` (1) or ``GENERALIZED`` (2)
        (:mod:`gtv.numerics.memory.labels`).
    flat : ndarray of bool (n,)
        Converged to a fixed point whose log-density barrier is below ``flat_tol`` (a
        continuum of fixed points, or a saddle).
    attractors : Attractors
        The search from the samples (``assignment[i]`` is sample ``i``'s fixed point).
    flat_tol : float
    barrier : ndarray (A,)
        The barrier of each fixed point of ``attractors`` (:func:`log_density_barriers`).
    """

    labels: np.ndarray
    flat: np.ndarray
    attractors: Attractors
    flat_tol: float
    barrier: np.ndarray

    @property
    def converged(self) -> np.ndarray:
        return self.attractors.converged

    @property
    def n_unconverged(self) -> int:
        return self.attractors.n_not_converged

    @property
    def counts(self) -> dict[str, int]:
        """Samples per label, keyed by :data:`~gtv.numerics.memory.labels.LABEL_NAMES`."""
        return {name: int(np.count_nonzero(self.labels == k)) for k, name in enumerate(LABEL_NAMES)}

    @property
    def fractions(self) -> np.ndarray:
        """Fractions of memorized, spurious and generalized samples (3,)."""
        return np.bincount(self.labels, minlength=3) / self.labels.size


def log_density_barriers(att: Attractors, denoiser: DenoiserMap, n_path: int = 64) -> np.ndarray:
    """Log-density barrier from each fixed point of ``att`` to its nearest other stable one.

    Along the straight path ``y(s) = y_i + s (y_j - y_i)`` the relative energy is the work
    ``E~(y(s)) - E~(y_i) = int_0^s (y - G_t(y)) . (y_j - y_i) du`` (trapezoid rule on ``n_path``
    intervals); the barrier is ``2 beta_t`` times its maximum, ``beta_t = alpha_t**2 /
    (2 sigma_t**2)``, i.e. the drop of ``log p_t`` from the fixed point to the top of the path
    (docs/memorization.md, "The attractor criterion"). For the exact empirical score ``y - G`` is
    the gradient of ``E~`` and this is exact along the path; for a learned denoiser it is the
    line integral of its force (the relative energy of Raya & Ambrogioni). ``inf`` where no
    other stable fixed point was found, 0 where the point is not stable.
    """
    sched = denoiser.schedule
    beta = float(sched.alpha(att.t)) ** 2 / (2 * float(sched.sigma2(att.t)))
    pts, stable = att.points, att.stable
    out = np.where(stable, np.inf, 0.0)
    idx = np.flatnonzero(stable)
    if idx.size < 2:
        return out
    s = np.linspace(0.0, 1.0, n_path + 1)
    for i in idx:
        d = np.linalg.norm(pts[idx] - pts[i], axis=1)
        d[idx == i] = np.inf
        j = idx[int(np.argmin(d))]
        step = pts[j] - pts[i]
        path = pts[i] + s[:, None] * step
        force = path - denoiser.fixed_point_map(path, att.t)
        work = force @ step
        cum = np.concatenate([[0.0], np.cumsum((work[1:] + work[:-1]) / 2) / n_path])
        out[i] = 2 * beta * max(float(cum.max()), 0.0)
    return out


def classify_by_attractors(
    denoiser: DenoiserMap,
    samples: object,
    t: float,
    *,
    memory_tol: float | None = None,
    flat_tol: float = 1.0,
    tol: float = 1e-8,
    max_iter: int = 2000,
    damping: float | None = None,
    dedup_tol: float | None = None,
) -> AttractorClasses:
    """Memorized / spurious / generalized by the attractor each sample descends to at time ``t``.

    Each sample starts the fixed-point iteration of
    :func:`~gtv.numerics.memory.attractors.find_attractors` (same ``tol``, ``max_iter``,
    ``damping``, ``dedup_tol``, ``memory_tol``) and is labelled by the fixed point it reaches:

    * **generalized** if the descent did not converge within ``max_iter`` (a slow drift along a
      flat valley) or the fixed point is *flat*: its log-density barrier (below) is under
      ``flat_tol`` -- the attractors form a continuum at the resolution of the samples;
    * otherwise (an isolated stable attractor) **memorized** if it lies within ``memory_tol``
      of a training point, else **spurious**.

    The barrier (:func:`log_density_barriers`, docs/memorization.md, "The attractor criterion")
    is how far ``log p_t`` drops on the straight path from the fixed point to the nearest other
    stable fixed point found from the same samples; below ``flat_tol`` the two are not separate
    states at the resolution of the samples.

    Parameters
    ----------
    flat_tol : float, default 1.0
        Barrier (in units of log-density) below which a fixed point is flat.

    Returns
    -------
    AttractorClasses
        Non-convergence is reported (``converged``, ``n_unconverged``) but not warned about.
    """
    flat_tol = check_positive(flat_tol, "flat_tol")
    att = find_attractors(
        denoiser, t, samples, tol=tol, max_iter=max_iter, damping=damping, dedup_tol=dedup_tol,
        memory_tol=memory_tol, warn=False,
    )  # fmt: skip
    a = att.assignment
    conv = a >= 0
    safe = np.where(conv, a, 0)
    barrier = log_density_barriers(att, denoiser)
    flat = conv & (barrier[safe] < flat_tol if barrier.size else False)
    memory = conv & (att.memory_index[safe] >= 0 if barrier.size else False)
    labels = np.full(a.size, GENERALIZED, dtype=np.int64)
    isolated = conv & ~flat
    labels[isolated & memory] = MEMORIZED
    labels[isolated & ~memory] = SPURIOUS
    return AttractorClasses(labels, flat, att, flat_tol, barrier)
