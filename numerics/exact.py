"""PF-ODE samples with the exact Bayes denoiser of the training points (the baseline sampler).

The denoiser is the posterior mean ``D^ = mu_bar(x, t)`` over the training points
(:func:`gtv.numerics.posterior.posterior_mean_into`); the steps are those of
:mod:`gtv.numerics.pfode`. With the exact score the continuous-time flow maps
``N(0, sigma_T**2)`` (approximately ``p(x|T)``) to ``p(x|eps)``; the discrete sampler shows the
discretization error. Start points come from the stream ``stream(seed, "bayes-sampling")``.
"""

from __future__ import annotations

import numba
import numpy as np

from gtv.numerics.checks import check_count, check_points
from gtv.numerics.pfode import (
    abs_max,
    check_method,
    drift_coefficients,
    initial_points,
    make_pf_ode,
    pf_ode_time_grid,
    warn_if_diverged,
)
from gtv.numerics.posterior import posterior_mean_into
from gtv.numerics.schedules import resolve_schedule

__all__ = ["sample_exact_denoiser"]


@numba.njit(cache=True, error_model="numpy", inline="always")
def _bayes_point(args, n, k, x, out, ws):
    """``out = mu_bar(x, t_k)`` for one point ``x`` (D,); ``args[0]`` is the transposed data."""
    mu_t, alpha, inv_two_sigma2 = args
    posterior_mean_into(mu_t, x, alpha[k], inv_two_sigma2[k], out)


_pf_ode_bayes = make_pf_ode(_bayes_point, pointwise=True)


def sample_exact_denoiser(
    data: object,
    n_samples: int,
    eps: float,
    schedule: object = "vp-linear",
    *,
    n_steps: int = 30,
    method: str = "euler",
    seed: object = 0,
    x_T: np.ndarray | None = None,
) -> np.ndarray:
    """PF-ODE samples with the exact Bayes denoiser ``D^ = mu_bar`` of the training points.

    Parameters
    ----------
    data : array_like, shape (M, D)
        Training points.
    n_samples : int
    eps : float
        Final time.
    schedule : str or NumericSchedule, default "vp-linear"
    n_steps : int, default 30
        Steps on ``linspace(T, eps, n_steps + 1)``.
    method : {"euler", "heun"}, default "euler"
    seed : int or SeedSequence, default 0
        ``x_T`` is drawn from ``stream(seed, "bayes-sampling").spawn(1)[0]``.
    x_T : ndarray, shape (n_samples, D), optional
        Initial points (overrides ``seed``; not modified).

    Returns
    -------
    ndarray, shape (n_samples, D)

    Warns
    -----
    DivergenceWarning
        When samples end beyond :func:`gtv.numerics.pfode.divergence_bound` (e.g. Heun, 30
        steps, ``eps = 1e-4``); the share of samples is in the message.
    """
    sched = resolve_schedule(schedule)
    mu = check_points(data, "data")
    check_method(method)
    ts = pf_ode_time_grid(sched, eps, n_steps)
    n_samples = check_count(n_samples, "n_samples")
    d = mu.shape[1]
    if x_T is not None:
        x_T = check_points(x_T, "x_T", dim=d)[None]
    x = initial_points(x_T, seed, 1, n_samples, d, sched, stream="bayes-sampling")
    alpha = np.asarray(sched.alpha(ts), dtype=float)
    inv_two_sigma2 = 0.5 / np.asarray(sched.sigma2(ts), dtype=float)
    ax, bx = drift_coefficients(sched, ts)
    start = abs_max(x)
    mu_t = np.ascontiguousarray(mu.T)
    _pf_ode_bayes(x, ts, ax, bx, method == "heun", (mu_t, alpha, inv_two_sigma2))
    warn_if_diverged(x, np.abs(mu).max(), sched, method, ts.size - 1, start)
    return x[0]
