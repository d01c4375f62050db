"""The naive estimator: a solvable model of generalization through variance.

docs/math/naive_estimator.md.

At every Euler step of the PF-ODE a fresh clean point ``x0`` is drawn from the posterior over the
training points at the current ``(x, t)`` and the score estimate is

    ``s^ = s + sqrt(kappa / |dt|) (s~ - s)``,   ``s~ = (alpha x0 - x) / sigma**2``,

so ``E s^ = s`` and the per-step noise has covariance ``(kappa/|dt|) C(x, t)``. In the continuum
limit (``gtv.theory.path_integral`` derives it) the sampler becomes the reverse-time Ito SDE

    ``dx = (-beta_t x - D_t s(x, t)) dt + sqrt(kappa) D_t C(x, t)^(1/2) dW``

(``dt < 0``, increments of covariance ``kappa D_t**2 C |dt|``), whose density solves a
Fokker-Planck equation with drift ``b = -beta x - D s`` and noise ``Q = kappa D**2 C``. This
module provides all three routes:

* :func:`sample_naive_estimator`: the interleaved scheme itself (a posterior draw per step);
* :func:`sample_naive_sde`: Euler-Maruyama for the effective SDE;
* :func:`naive_density`: the Fokker-Planck density (deterministic, no sampling noise).

``kappa`` has units of time; ``kappa = 0`` is the PF-ODE with the exact score (memorization).
Random numbers come from one generator on the stream ``stream(seed, "naive")``
(:mod:`gtv.numerics.streams`), ``x_T`` first and then step by step, so results do not depend on
the thread count.
"""

from __future__ import annotations

import numba
import numpy as np

from gtv.numerics.checks import check_count, check_kappa, check_points
from gtv.numerics.fokker_planck import (
    FokkerPlanckResult,
    gaussian_cell_averages,
    schedule_drift,
    solve_fokker_planck,
    uniform_grid,
)
from gtv.numerics.pfode import pf_ode_time_grid
from gtv.numerics.posterior import posterior_stats, posterior_weights_into
from gtv.numerics.schedules import resolve_schedule
from gtv.numerics.streams import stream_rng

__all__ = [
    "naive_density",
    "naive_initial_points",
    "sample_naive_estimator",
    "sample_naive_sde",
]


def naive_initial_points(
    dim: int, n_samples: int, schedule, rng: np.random.Generator, x_T: object = None
) -> np.ndarray:
    """Starting points of a naive-estimator sampler: ``x_T`` (checked, copied) or
    ``N(0, sigma_T**2 I)`` drawn from ``rng``; shape (n_samples, dim)."""
    n_samples = check_count(n_samples, "n_samples")
    if x_T is not None:
        x = check_points(x_T, "x_T", dim=dim).copy()
        if x.shape[0] != n_samples:
            raise ValueError(f"x_T must have {n_samples} rows, got {x.shape[0]}")
        return x
    return np.sqrt(schedule.sigma2(schedule.T)) * rng.standard_normal((n_samples, dim))


def _setup(data, n_samples, eps, kappa, schedule, n_steps, seed, x_T):
    """Checked inputs shared by both samplers: schedule, data, kappa, time grid, rng, x_T."""
    sched = resolve_schedule(schedule)
    mu = check_points(data, "data")
    kappa = check_kappa(kappa)
    ts = pf_ode_time_grid(sched, eps, n_steps)
    rng = stream_rng(seed, "naive")
    return sched, mu, kappa, ts, rng, naive_initial_points(mu.shape[1], n_samples, sched, rng, x_T)


@numba.njit(parallel=True, cache=True, error_model="numpy")
def _naive_step(x, mu, u, alpha, inv_two_sigma2, ax, bx, dt, amp):
    """One interleaved step for every sample: posterior draw with uniform ``u``, then Euler.

    The effective denoiser is ``mu_bar + amp (x0 - mu_bar)`` with ``amp = sqrt(kappa/|dt|)``,
    i.e. ``s^ = s + amp (s~ - s)``.
    """
    n, d = x.shape
    m_total = mu.shape[0]
    for i in numba.prange(n):
        logits = np.empty(m_total)
        total = posterior_weights_into(mu, x[i], alpha, inv_two_sigma2, logits)
        # Categorical draw by inverse CDF, and the posterior mean, from the same weights.
        target = u[i] * total
        acc = 0.0
        pick = m_total - 1
        for m in range(m_total):
            acc += logits[m]
            if acc >= target:
                pick = m
                break
        for j in range(d):
            mean = 0.0
            for m in range(m_total):
                mean += logits[m] * mu[m, j]
            mean /= total
            dhat = mean + amp * (mu[pick, j] - mean)
            x[i, j] += dt * (ax * x[i, j] - bx * dhat)


def sample_naive_estimator(
    data: object,
    n_samples: int,
    eps: float,
    kappa: float,
    schedule: object = "vp-linear",
    *,
    n_steps: int = 1000,
    seed: int | np.random.SeedSequence = 0,
    x_T: np.ndarray | None = None,
) -> np.ndarray:
    """Samples of the interleaved naive estimator (a fresh posterior draw at every Euler step).

    Parameters
    ----------
    data : array_like, shape (M, D)
        Training points.
    n_samples : int
    eps : float
        Final time, ``0 < eps < T``.
    kappa : float
        Noise strength ``>= 0`` (units of time).
    schedule : str or NumericSchedule, default "vp-linear"
    n_steps : int, default 1000
        Euler steps on ``linspace(T, eps, n_steps + 1)``; the scheme converges to the effective
        SDE as the step shrinks.
    seed : int or SeedSequence, default 0
    x_T : ndarray, shape (n_samples, D), optional
        Initial points (default ``N(0, sigma_T**2 I)``).

    Returns
    -------
    ndarray, shape (n_samples, D)
    """
    sched, mu, kappa, ts, rng, x = _setup(data, n_samples, eps, kappa, schedule, n_steps, seed, x_T)
    alpha, sigma2 = sched.alpha(ts), sched.sigma2(ts)
    ax, bx = sched.pf_x_coeff(ts), sched.pf_mean_coeff(ts)
    for k in range(ts.size - 1):
        dt = ts[k + 1] - ts[k]
        u = rng.random(x.shape[0])
        amp = np.sqrt(kappa / abs(dt))
        _naive_step(x, mu, u, alpha[k], 0.5 / sigma2[k], ax[k], bx[k], dt, amp)
    return x


@numba.njit(parallel=True, cache=True, error_model="numpy")
def _naive_sde_step_1d(x, mu, xi, alpha, inv_two_sigma2, ax, bx, dt, noise_scale):
    """One Euler-Maruyama step in 1-D.

    Drift ``ax x - bx mu_bar`` (``= -beta x - D s``); noise ``noise_scale sqrt(Var_post) xi`` with
    ``noise_scale = sqrt(kappa |dt|) D alpha / sigma**2`` (``C = (alpha/sigma**2)**2 Var_post``).
    """
    n = x.shape[0]
    m_total = mu.shape[0]
    for i in numba.prange(n):
        w = np.empty(m_total)
        total = posterior_weights_into(mu, x[i], alpha, inv_two_sigma2, w)
        mean = 0.0
        for m in range(m_total):
            mean += w[m] * mu[m, 0]
        mean /= total
        var = 0.0
        for m in range(m_total):
            dm = mu[m, 0] - mean
            var += w[m] * dm * dm
        var /= total
        x[i, 0] += dt * (ax * x[i, 0] - bx * mean) + noise_scale * np.sqrt(var) * xi[i]


def _sqrt_psd(c: np.ndarray) -> np.ndarray:
    """Symmetric square roots of a stack of PSD matrices (N, D, D)."""
    if c.shape[1] == 1:
        return np.sqrt(np.maximum(c, 0.0))
    vals, vecs = np.linalg.eigh(c)
    return np.einsum("nij,nj,nkj->nik", vecs, np.sqrt(np.maximum(vals, 0.0)), vecs)


def sample_naive_sde(
    data: object,
    n_samples: int,
    eps: float,
    kappa: float,
    schedule: object = "vp-linear",
    *,
    n_steps: int = 1000,
    seed: int | np.random.SeedSequence = 0,
    x_T: np.ndarray | None = None,
) -> np.ndarray:
    """Euler-Maruyama samples of the naive estimator's effective SDE.

    ``x <- x + dt (-beta x - D s) + sqrt(kappa |dt|) D C^(1/2) xi`` on
    ``linspace(T, eps, n_steps + 1)`` (``dt < 0``), with ``s`` and ``C`` from
    :func:`gtv.numerics.posterior.posterior_stats`. Parameters as :func:`sample_naive_estimator`.
    """
    sched, mu, kappa, ts, rng, x = _setup(data, n_samples, eps, kappa, schedule, n_steps, seed, x_T)
    if mu.shape[1] == 1:
        alpha, sigma2 = sched.alpha(ts), sched.sigma2(ts)
        ax, bx = sched.pf_x_coeff(ts), sched.pf_mean_coeff(ts)
        diffusion = sched.diffusion(ts)
        for k in range(ts.size - 1):
            dt = float(ts[k + 1] - ts[k])
            xi = rng.standard_normal(x.shape[0])
            scale = np.sqrt(kappa * abs(dt)) * diffusion[k] * alpha[k] / sigma2[k]
            _naive_sde_step_1d(x, mu, xi, alpha[k], 0.5 / sigma2[k], ax[k], bx[k], dt, scale)
        return x
    for k in range(ts.size - 1):
        t, dt = float(ts[k]), float(ts[k + 1] - ts[k])
        st = posterior_stats(mu, x, t, sched, full_cov=kappa > 0)
        drift = -float(sched.beta(t)) * x - float(sched.diffusion(t)) * st.score
        x = x + dt * drift
        if kappa > 0:
            xi = rng.standard_normal(x.shape)
            root = _sqrt_psd(st.proxy_cov)
            x += (
                np.sqrt(kappa * abs(dt))
                * float(sched.diffusion(t))
                * np.einsum("nij,nj->ni", root, xi)
            )
    return x


def naive_density(
    data: object,
    eps: float,
    kappa: float,
    schedule: object = "vp-linear",
    *,
    bounds: object = (-5.0, 5.0),
    n_cells: object = None,
    n_steps: int = 400,
    **solver_options,
) -> FokkerPlanckResult:
    """Density of the naive estimator's effective dynamics from the Fokker-Planck solver.

    Drift ``b = -beta_t x - D_t s(x, t)`` and noise ``Q = kappa D_t**2 C(x, t)`` (both from
    :func:`gtv.numerics.posterior.posterior_stats`), started from ``N(0, sigma_T**2 I)`` at ``T``.

    Parameters
    ----------
    data : array_like, shape (M, D) with D in {1, 2}
    eps, kappa, schedule
        As :func:`sample_naive_estimator`.
    bounds : pair or list of pairs, default (-5, 5)
        Domain per axis (see :func:`gtv.numerics.fokker_planck.uniform_grid`).
    n_cells : int or list, optional
        Cells per axis (solver default).
    n_steps : int, default 400
    **solver_options
        Passed to :func:`gtv.numerics.fokker_planck.solver.solve_fokker_planck`.
    """
    sched = resolve_schedule(schedule)
    mu = check_points(data, "data")
    if mu.shape[1] not in (1, 2):
        raise ValueError(
            f"data must be 1-D or 2-D for the Fokker-Planck solver, got D = {mu.shape[1]}"
        )
    kappa = check_kappa(kappa)
    if mu.shape[1] == 2 and np.ndim(bounds) == 1:
        bounds = [bounds, bounds]
    grid = uniform_grid(bounds, n_cells)

    def score(x, t):
        return posterior_stats(mu, x, t, sched).score

    def noise(x, t):
        if kappa == 0:
            return 0.0
        c = posterior_stats(mu, x, t, sched, full_cov=True).proxy_cov
        q = kappa * float(sched.diffusion(t)) ** 2 * c
        return q[:, 0, 0] if mu.shape[1] == 1 else q

    p_T = gaussian_cell_averages(grid, np.zeros(mu.shape[1]), float(sched.sigma2(sched.T)))
    return solve_fokker_planck(
        schedule_drift(sched, score), noise, p_T, grid, sched.T, eps, n_steps, **solver_options
    )
