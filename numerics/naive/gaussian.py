"""The naive estimator on Gaussian data: closed forms, sampler, density.

docs/math/naive_estimator.md.

Numeric side of item 1 of :mod:`gtv.theory.closed_forms` (no sympy here). For data ``x0 ~ N(m, S)``
and an isotropic schedule, the naive estimator's effective SDE is linear with additive noise and
decouples along the eigenvectors of ``S``; along an eigenvector with variance ``s2``
(``v_t = alpha_t**2 s2 + sigma_t**2``):

* mean: ``alpha_eps m + sqrt(v_eps/v_T) (E[x_T] - alpha_T m)``;
* variance: ``(v_eps/v_T) Var[x_T] + kappa v_eps I``, ``I = int_eps^T D_t**2 C(t)/v_t dt``,
  ``C = alpha**2 s2/(sigma**2 v)``.

``x_T ~ N(0, sigma_T**2 I)`` (``start="sampler"``, what every sampler does) or ``p(x|T)``
(``start="exact"``). ``I`` comes from :func:`naive_noise_integral`: closed forms for ``ve`` and
``linear-variance`` (hand-written from the sympy results, tested against sympy to 1e-12) and a
composite Gauss-Legendre quadrature (:func:`gtv.numerics.quadrature.gauss_legendre_panels`) for any
schedule.

Three independent numeric routes to ``[q]`` (the tests compare them with the sympy value):

* :func:`sample_naive_gaussian`: the interleaved naive estimator itself (a fresh posterior draw of
  ``x0`` at every Euler step, docs/math/naive_estimator.md); :func:`naive_gaussian_euler_moments`
  gives the exact mean and variance of that discrete scheme (a linear Gaussian recursion), so its
  time-step bias is known exactly;
* :func:`naive_gaussian_density`: the Fokker-Planck density of the effective SDE (1-D), with
  :func:`density_moments` for its mean and variance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from gtv.numerics.checks import check_choice, check_eps, check_gaussian_data, check_kappa
from gtv.numerics.fokker_planck import (
    FokkerPlanckResult,
    gaussian_cell_averages,
    schedule_drift,
    solve_fokker_planck,
    uniform_grid,
)
from gtv.numerics.naive.estimator import naive_initial_points
from gtv.numerics.pfode import pf_ode_time_grid
from gtv.numerics.quadrature import gauss_legendre_panels
from gtv.numerics.schedules import NumericSchedule, resolve_schedule
from gtv.numerics.streams import stream_rng

__all__ = [
    "CLOSED_FORM_SCHEDULES",
    "START_CHOICES",
    "NaiveGaussianMoments",
    "density_moments",
    "naive_gaussian_density",
    "naive_gaussian_euler_moments",
    "naive_gaussian_moments",
    "naive_noise_integral",
    "sample_naive_gaussian",
    "sample_naive_gaussian_reference",
]

START_CHOICES = ("sampler", "exact")
#: Constants of the named ``ve`` schedule (gtv.theory.schedules.named_schedule):
#: sigma_min, sigma_max.
VE_SIGMA_MIN, VE_SIGMA_MAX = 0.01, 50.0
#: Schedules with a hand-written closed form of the noise integral.
CLOSED_FORM_SCHEDULES = ("ve", "linear-variance")


def _check_start(start: object) -> str:
    return check_choice(start, "start", START_CHOICES)


# -- noise integral ---------------------------------------------------------------------------
def _noised_variance(sched: NumericSchedule, s2: float, t: object) -> np.ndarray:
    return sched.alpha(t) ** 2 * s2 + sched.sigma2(t)


def _noise_integrand(sched: NumericSchedule, s2: float, t: np.ndarray) -> np.ndarray:
    """``D**2 C / v`` with ``C = alpha**2 s2 / (sigma**2 v)``."""
    v = _noised_variance(sched, s2, t)
    return sched.diffusion(t) ** 2 * sched.alpha(t) ** 2 * s2 / (sched.sigma2(t) * v * v)


def _closed_ve(s2: float, eps: float, T: float) -> float:
    # u = sigma**2 = c0 (exp(r t) - 1), D = r (u + c0)/2, alpha = 1, v = s2 + u:
    # I = (r/4) [ (c0/s2) log(u_T v_eps / (u_eps v_T)) + (s2 - c0) (1/v_eps - 1/v_T) ].
    c0 = VE_SIGMA_MIN**2
    r = 2.0 * math.log(VE_SIGMA_MAX / VE_SIGMA_MIN)
    u_e, u_T = c0 * math.expm1(r * eps), c0 * math.expm1(r * T)
    v_e, v_T = s2 + u_e, s2 + u_T
    log_term = math.log(u_T / u_e) + math.log(v_e / v_T)
    return r / 4.0 * (c0 / s2 * log_term + (s2 - c0) * (1.0 / v_e - 1.0 / v_T))


def _closed_linear_variance(s2: float, eps: float, T: float) -> float:
    # D**2 C / v = s2 / (4 (1 - t) t v**2), v = s2 + k t, k = 1 - s2; partial fractions give
    # I = (s2/4) [ log(T/eps)/s2**2 - log((1 - T)/(1 - eps)) + (1 - 1/s2**2) log(v_T/v_eps)
    #              + (k/s2) (1/v_T - 1/v_eps) ]   (finite at s2 = 1, where k = 0).
    k = 1.0 - s2
    v_e, v_T = s2 + k * eps, s2 + k * T
    return (
        s2
        / 4.0
        * (
            math.log(T / eps) / s2**2
            - (math.log1p(-T) - math.log1p(-eps))
            + (1.0 - 1.0 / s2**2) * math.log(v_T / v_e)
            + k / s2 * (1.0 / v_T - 1.0 / v_e)
        )
    )


def naive_noise_integral(
    s2: float, eps: float, schedule: object = "vp-linear", method: str = "auto", n_nodes: int = 16
) -> float:
    """``I = int_eps^T D_t**2 C(t) / v_t dt`` for data variance ``s2`` (one eigen-direction).

    Parameters
    ----------
    s2 : float
        Data variance, ``> 0``.
    eps : float
        ``0 < eps < T``.
    schedule : str or NumericSchedule
    method : {"auto", "closed", "quadrature"}
        ``"closed"``: the hand-written closed form (``ve``, ``linear-variance`` only);
        ``"quadrature"``: composite Gauss-Legendre (:func:`gauss_legendre_panels`, ``n_nodes`` per
        panel) with the schedule's compiled functions, for any schedule; ``"auto"``: closed form
        where there is one.
    """
    sched = resolve_schedule(schedule)
    if not (np.isfinite(s2) and s2 > 0):
        raise ValueError(f"s2 (the data variance) must be finite and > 0, got {s2!r}")
    eps = check_eps(eps, sched.T)
    if method not in ("auto", "closed", "quadrature"):
        raise ValueError(f"method must be 'auto', 'closed' or 'quadrature', got {method!r}")
    has_closed = sched.name in CLOSED_FORM_SCHEDULES
    if method == "closed" and not has_closed:
        raise ValueError(
            f"method: no closed form for schedule {sched.name!r} (have {CLOSED_FORM_SCHEDULES})"
        )
    if method == "closed" or (method == "auto" and has_closed):
        f = _closed_ve if sched.name == "ve" else _closed_linear_variance
        return float(f(float(s2), eps, sched.T))
    nodes, weights = gauss_legendre_panels(eps, sched.T, n_nodes)
    vals = _noise_integrand(sched, float(s2), nodes)
    if not np.all(np.isfinite(vals)):
        raise ValueError(
            f"T: the noise integrand of schedule {sched.name!r} is not finite on [eps, T]"
        )
    return float(np.dot(weights, vals))


# -- moments ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NaiveGaussianMoments:
    """Mean and covariance of the naive estimator's ``[q]`` for Gaussian data.

    Attributes
    ----------
    mean : ndarray, shape (D,)
    cov : ndarray, shape (D, D)
    noise_integral : ndarray, shape (D,)
        ``I`` per eigenvalue of ``S`` (ascending, as ``numpy.linalg.eigh``).
    start : str
    """

    mean: np.ndarray
    cov: np.ndarray
    noise_integral: np.ndarray
    start: str

    @property
    def variance(self) -> float:
        """The variance in 1-D."""
        if self.cov.shape != (1, 1):
            raise ValueError("variance is defined for 1-D data only; use cov")
        return float(self.cov[0, 0])


def naive_gaussian_moments(
    mean: object,
    cov: object,
    kappa: float,
    eps: float,
    schedule: object = "vp-linear",
    start: str = "sampler",
    method: str = "auto",
) -> NaiveGaussianMoments:
    """Mean and covariance of ``[q]`` for data ``N(mean, cov)`` (module docstring).

    ``cov`` may be a scalar (1-D), a diagonal or a full SPD matrix: the problem decouples along
    the eigenvectors of ``S``. ``method`` is passed to :func:`naive_noise_integral`.
    """
    sched = resolve_schedule(schedule)
    m, S = check_gaussian_data(mean, cov)
    kappa = check_kappa(kappa)
    eps = check_eps(eps, sched.T)
    start = _check_start(start)
    T = sched.T
    lam, U = np.linalg.eigh(S)
    mz = U.T @ m
    a_e, a_T = float(sched.alpha(eps)), float(sched.alpha(T))
    s2_T = float(sched.sigma2(T))
    I = np.array([naive_noise_integral(s, eps, sched, method) for s in lam])  # noqa: E741
    v_e = a_e**2 * lam + float(sched.sigma2(eps))
    v_T = a_T**2 * lam + s2_T
    if start == "exact":
        mean_z, var_z = a_e * mz, v_e * (1.0 + kappa * I)
    else:
        mean_z = a_e * mz - np.sqrt(v_e / v_T) * a_T * mz
        var_z = v_e / v_T * s2_T + kappa * v_e * I
    return NaiveGaussianMoments(U @ mean_z, (U * var_z) @ U.T, I, start)


def naive_gaussian_euler_moments(
    mean: object,
    cov: object,
    kappa: float,
    eps: float,
    schedule: object = "vp-linear",
    n_steps: int = 1000,
    start: str = "sampler",
) -> NaiveGaussianMoments:
    """Exact mean and covariance of the *discrete* interleaved scheme of
    :func:`sample_naive_gaussian` (Euler on ``linspace(T, eps, n_steps + 1)``).

    Per eigen-direction (variance ``s2``) a step is
    ``x' = A x + c + dt bx amp sqrt(s2 sigma**2/v) z`` with ``A = 1 + dt (ax - bx alpha s2/v)``,
    ``c = -dt bx m (1 - alpha**2 s2/v)``, ``amp**2 = kappa/|dt|`` (``ax = pf_x_coeff``,
    ``bx = pf_mean_coeff`` at the step's start), so mean and variance follow a linear recursion.
    Its difference from :func:`naive_gaussian_moments` is the sampler's time-step bias.
    """
    sched = resolve_schedule(schedule)
    m, S = check_gaussian_data(mean, cov)
    kappa = check_kappa(kappa)
    start = _check_start(start)
    ts = pf_ode_time_grid(sched, eps, n_steps)
    lam, U = np.linalg.eigh(S)
    mz = U.T @ m
    T = sched.T
    if start == "exact":
        mu = float(sched.alpha(T)) * mz
        var = float(sched.alpha(T)) ** 2 * lam + float(sched.sigma2(T))
    else:
        mu = np.zeros_like(mz)
        var = np.full_like(lam, float(sched.sigma2(T)))
    al, sg2 = sched.alpha(ts), sched.sigma2(ts)
    ax, bx = sched.pf_x_coeff(ts), sched.pf_mean_coeff(ts)
    for k in range(ts.size - 1):
        dt = ts[k + 1] - ts[k]
        v = al[k] ** 2 * lam + sg2[k]
        A = 1.0 + dt * (ax[k] - bx[k] * al[k] * lam / v)
        c = -dt * bx[k] * mz * (1.0 - al[k] ** 2 * lam / v)
        mu = A * mu + c
        var = A * A * var + abs(dt) * kappa * bx[k] ** 2 * lam * sg2[k] / v
    return NaiveGaussianMoments(U @ mu, (U * var) @ U.T, np.full_like(lam, np.nan), start)


# -- sampler ------------------------------------------------------------------------------------
#: Steps whose random numbers are drawn (and advanced) together in :func:`sample_naive_gaussian`.
_STEP_BLOCK = 64


@numba.njit(parallel=True, cache=True, error_model="numpy")
def _naive_gaussian_steps(x, z, offset, gain, chol, amp, ax, bx, dt):
    """A block of interleaved steps ``k = 0..K-1`` for every sample (prange over samples).

    Step ``k``: posterior mean ``mu_bar = offset[k] + gain[k] x``, posterior draw
    ``x0 = mu_bar + chol[k] z[k]``, effective denoiser ``mu_bar + amp[k] (x0 - mu_bar)``, then Euler
    ``x += dt[k] (ax[k] x - bx[k] D^)``.
    """
    n, d = x.shape
    n_steps = z.shape[0]
    for i in numba.prange(n):
        dn = np.empty(d)
        for k in range(n_steps):
            for j in range(d):
                mb = offset[k, j]
                for c in range(d):
                    mb += gain[k, j, c] * x[i, c]
                noise = 0.0
                for c in range(j + 1):
                    noise += chol[k, j, c] * z[k, i, c]
                dn[j] = mb + amp[k] * noise
            for j in range(d):
                x[i, j] += dt[k] * (ax[k] * x[i, j] - bx[k] * dn[j])


def _posterior_coefficients(m, S, alpha, sigma2):
    """``mu_bar = offset + gain x`` and the Cholesky factor of ``Cov(x0 | x, t)``.

    ``V = alpha**2 S + sigma**2 I``; ``gain = alpha S V^{-1}``, ``offset = m - alpha gain m``,
    ``Cov = S - alpha**2 S V^{-1} S`` (symmetrized).
    """
    d = m.size
    V = alpha**2 * S + sigma2 * np.eye(d)
    SVi = np.linalg.solve(V, S).T  # S V^{-1} (V, S symmetric)
    gain = alpha * SVi
    cov = S - alpha**2 * SVi @ S
    cov = (cov + cov.T) / 2
    return m - alpha * gain @ m, gain, np.linalg.cholesky(cov)


def _sampler_setup(mean, cov, n_samples, eps, kappa, schedule, n_steps, seed, x_T):
    sched = resolve_schedule(schedule)
    m, S = check_gaussian_data(mean, cov)
    kappa = check_kappa(kappa)
    ts = pf_ode_time_grid(sched, eps, n_steps)
    rng = stream_rng(seed, "naive")
    x = naive_initial_points(m.size, n_samples, sched, rng, x_T)
    return sched, m, S, kappa, ts, rng, x


def _step_args(sched, m, S, kappa, ts, k):
    dt = float(ts[k + 1] - ts[k])
    t = float(ts[k])
    alpha, sigma2 = float(sched.alpha(t)), float(sched.sigma2(t))
    offset, gain, chol = _posterior_coefficients(m, S, alpha, sigma2)
    amp = math.sqrt(kappa / abs(dt))
    return offset, gain, chol, amp, float(sched.pf_x_coeff(t)), float(sched.pf_mean_coeff(t)), dt


def sample_naive_gaussian(
    mean: object,
    cov: object,
    n_samples: int,
    eps: float,
    kappa: float,
    schedule: object = "vp-linear",
    *,
    n_steps: int = 1000,
    seed: int | np.random.SeedSequence = 0,
    x_T: np.ndarray | None = None,
) -> np.ndarray:
    """Samples of the interleaved naive estimator for Gaussian data ``N(mean, cov)``.

    At each Euler step on ``linspace(T, eps, n_steps + 1)`` every sample draws a fresh
    ``x0 ~ N(mu_bar, Cov(x0 | x, t))`` and uses ``D^ = mu_bar + sqrt(kappa/|dt|) (x0 - mu_bar)``
    (docs/math/naive_estimator.md). Starts from ``N(0, sigma_T**2 I)`` unless ``x_T`` is given.
    Random numbers: one generator on the stream ``stream(seed, "naive")``, ``x_T`` first, then a
    standard normal array of shape ``(n_samples, D)`` per step in step order (drawn in blocks of
    steps, which gives the same numbers), so the result does not depend on the thread count.

    Returns
    -------
    ndarray, shape (n_samples, D)
    """
    sched, m, S, kappa, ts, rng, x = _sampler_setup(
        mean, cov, n_samples, eps, kappa, schedule, n_steps, seed, x_T
    )
    n_total = ts.size - 1
    for k0 in range(0, n_total, _STEP_BLOCK):
        k1 = min(n_total, k0 + _STEP_BLOCK)
        args = [_step_args(sched, m, S, kappa, ts, k) for k in range(k0, k1)]
        cols = [np.ascontiguousarray(np.array([a[i] for a in args])) for i in range(7)]
        z = rng.standard_normal((k1 - k0, *x.shape))
        _naive_gaussian_steps(x, z, *cols)
    return x


def sample_naive_gaussian_reference(
    mean: object,
    cov: object,
    n_samples: int,
    eps: float,
    kappa: float,
    schedule: object = "vp-linear",
    *,
    n_steps: int = 1000,
    seed: int | np.random.SeedSequence = 0,
    x_T: np.ndarray | None = None,
) -> np.ndarray:
    """Plain-numpy version of :func:`sample_naive_gaussian` (same random numbers)."""
    sched, m, S, kappa, ts, rng, x = _sampler_setup(
        mean, cov, n_samples, eps, kappa, schedule, n_steps, seed, x_T
    )
    for k in range(ts.size - 1):
        z = rng.standard_normal(x.shape)
        offset, gain, chol, amp, ax, bx, dt = _step_args(sched, m, S, kappa, ts, k)
        x0 = x @ gain.T + offset + z @ chol.T
        mb = x @ gain.T + offset
        x = x + dt * (ax * x - bx * (mb + amp * (x0 - mb)))
    return x


# -- Fokker-Planck ------------------------------------------------------------------------------
def naive_gaussian_density(
    mean: float,
    s2: float,
    eps: float,
    kappa: float,
    schedule: object = "vp-linear",
    start: str = "sampler",
    *,
    bounds: object = (-5.0, 5.0),
    n_cells: int = 1000,
    n_steps: int = 400,
    **solver_options,
) -> FokkerPlanckResult:
    """1-D Fokker-Planck density of the effective SDE for data ``N(mean, s2)``.

    Drift ``b = -beta x - D s``, ``s = -(x - alpha m)/v`` and noise ``Q = kappa D**2 C(t)`` (no
    ``x`` dependence), from ``N(0, sigma_T**2)`` (``start="sampler"``) or ``p(x|T)``.
    Options as :func:`gtv.numerics.naive.estimator.naive_density`.
    """
    sched = resolve_schedule(schedule)
    m, S = check_gaussian_data(mean, s2)
    if m.size != 1:
        raise ValueError("mean must be a scalar: the Fokker-Planck route is 1-D here")
    mv, s2v = float(m[0]), float(S[0, 0])
    kappa = check_kappa(kappa)
    start = _check_start(start)
    grid = uniform_grid(bounds, n_cells)

    def score(x, t):
        return -(x - float(sched.alpha(t)) * mv) / float(_noised_variance(sched, s2v, t))

    def noise(x, t):
        v = float(_noised_variance(sched, s2v, t))
        c = float(sched.alpha(t)) ** 2 * s2v / (float(sched.sigma2(t)) * v)
        return kappa * float(sched.diffusion(t)) ** 2 * c

    T = sched.T
    if start == "exact":
        v_T = float(_noised_variance(sched, s2v, T))
        p_T = gaussian_cell_averages(grid, float(sched.alpha(T)) * mv, v_T)
    else:
        p_T = gaussian_cell_averages(grid, 0.0, float(sched.sigma2(T)))
    return solve_fokker_planck(
        schedule_drift(sched, score),
        noise if kappa > 0 else None,
        p_T,
        grid,
        T,
        eps,
        n_steps,
        **solver_options,
    )


def density_moments(result: FokkerPlanckResult) -> tuple[float, float]:
    """Mean and variance of a 1-D density given by its cell averages.

    For cell averages of a smooth density ``p`` (what the finite-volume solver evolves),
    ``sum_i m_i c_i**2 = E[x**2] + h**2/12 + O(h**4)`` (``m_i`` the cell masses, ``c_i`` the
    centres; by Taylor expansion of ``p`` in each cell), so the variance is
    ``sum m_i (c_i - mu)**2 / sum m_i - h**2/12`` (uniform cells; the mean needs no correction).
    """
    if result.grid.ndim != 1:
        raise ValueError("result must be a 1-D density")
    c = result.grid.centres[0]
    h = result.grid.widths[0]
    mass = result.density * h
    total = mass.sum()
    mu = float(np.dot(mass, c) / total)
    var = float(np.dot(mass, (c - mu) ** 2 - h * h / 12.0) / total)
    return mu, var
