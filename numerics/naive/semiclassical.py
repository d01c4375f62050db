"""The semiclassical (small-kappa) density of the naive estimator.

docs/math/predictions.md, section "The semiclassical formula" (derived in
:mod:`gtv.theory.path_integral.semiclassical`). For 1-D data (training points, or a Gaussian
mixture with component variances ``data_var``) and an end point ``y`` at ``t = eps``:

1. the classical path: the PF-ODE with the exact score, ``dx/dt = b = pf_x_coeff x -
   pf_mean_coeff m(x, t)``, run from ``(y, eps)`` up to ``T``; it gives the start ``x_T(y)``;
2. along it the Jacobi/variance equation ``dA/dt = g**2 + 2 b' A``, ``A(eps) = 0``, with
   ``b' = pf_x_coeff - slope_var v`` and ``g**2 = D**2 C = noise_var v`` (``m``, ``v``: posterior
   mean and variance of the clean point); ``kappa A(T)`` is the variance of the start points of
   the noisy paths that end at ``y``, and ``log J = -int b'`` gives ``dx_eps/dx_T``;
3. ``[q](y) = p(y|eps) F(y)``, ``F = p_T^kappa(x_T) / p(x_T|T)``: the start density smoothed by
   ``N(0, kappa A(T))`` over the exact one. For the sampler's start ``N(0, sigma_T**2)``,
   ``p_T^kappa = N(0, sigma_T**2 + kappa A)`` = ``N(x_T; 0, sigma_T**2)`` times the generated
   ``log_factor`` (a determinant ``(1 + kappa A/sigma_T**2)**(-1/2)`` and a tilt).

The paths are integrated by RK4 in ``u = log t`` (uniform steps), in a numba kernel
(:func:`classical_paths`, ``backend="numba"``) or its plain-numpy reference (``"numpy"``). The
coefficients ``slope_var`` and ``noise_var`` come from ``numerics/_generated/semiclassical.py``
for the named schedules and from the schedule's own functions otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numba
import numpy as np
from scipy.special import logsumexp, ndtr

from gtv.numerics._generated.semiclassical import JACOBI, log_factor
from gtv.numerics.checks import check_choice, check_count, check_eps, check_kappa, check_points
from gtv.numerics.fokker_planck import FVGrid, grid_from_edges, uniform_grid
from gtv.numerics.schedules import NumericSchedule, resolve_schedule

__all__ = [
    "BACKENDS",
    "PREFACTORS",
    "SEMICLASSICAL_STARTS",
    "ClassicalPaths",
    "SemiclassicalDensity",
    "classical_paths",
    "jacobi_coefficient_functions",
    "semiclassical_density",
]

#: ``"full"``: the formula; ``"no-det"``: without the determinant ``(1 + kappa A/s_T2)**(-1/2)``
#: (tilt only); ``"none"``: ``F = 1`` apart from the start density (the noise-free push-forward).
PREFACTORS = ("full", "no-det", "none")
#: ``"sampler"``: start density ``N(0, sigma_T**2)`` (every sampler and ``naive_density``);
#: ``"exact"``: ``p(x|T)``.
SEMICLASSICAL_STARTS = ("sampler", "exact")
BACKENDS = ("numba", "numpy")


def jacobi_coefficient_functions(schedule: object) -> dict:
    """``slope_var(t)`` and ``noise_var(t)`` of a schedule (generated code for named schedules).

    For a schedule without generated code: ``pf_mean_coeff * score_mean_coeff`` and
    ``diffusion**2 * proxy_cov_scale`` (the same quantities, :mod:`gtv.theory.path_integral`).
    """
    sched = resolve_schedule(schedule)
    if sched.name in JACOBI:
        return dict(JACOBI[sched.name])
    return {
        "slope_var": lambda t: sched.pf_mean_coeff(t) * sched.score_mean_coeff(t),
        "noise_var": lambda t: sched.diffusion(t) ** 2 * sched.proxy_cov_scale(t),
    }


@dataclass(frozen=True)
class SemiclassicalDensity:
    """Cell averages of the semiclassical ``[q]`` (comparable with ``naive_density``).

    Attributes
    ----------
    density : ndarray, shape (n_cells,)
        Cell averages; they integrate to 1 over the grid when ``normalized``.
    grid : FVGrid
    kappa : float
    raw_mass : float
        ``sum p(y|eps) F(y)`` over the grid before normalisation (the formula is normalised only
        to first order in kappa).
    outside_mass : float
        Mass of ``p(x|eps)`` outside the grid (exact).
    config : dict
    """

    density: np.ndarray
    grid: FVGrid
    kappa: float
    raw_mass: float
    outside_mass: float
    config: dict = field(default_factory=dict)

    @property
    def centres(self) -> tuple[np.ndarray, ...]:
        return self.grid.centres

    @property
    def widths(self) -> tuple[np.ndarray, ...]:
        return self.grid.widths


# -- posterior moments and the RK4 right-hand side ----------------------------------------------
@numba.njit(cache=True, error_model="numpy", inline="always")
def _rates(x, A, j, mu, s2, alpha, sigma2, tt, fx, fm, kv, kn):
    """``(t b, t (g**2 + 2 b' A), -t b')``: the path equations in ``u = log t`` at stage ``j``."""
    a, sg = alpha[j], sigma2[j]
    m_total = mu.shape[0]
    top = -np.inf
    for k in range(m_total):
        vk = a * a * s2[k] + sg
        lg = -((x - a * mu[k]) ** 2) / (2.0 * vk) - 0.5 * math.log(vk)
        top = max(top, lg)
    tot = 0.0
    s1 = 0.0
    s2m = 0.0
    for k in range(m_total):
        vk = a * a * s2[k] + sg
        w = math.exp(-((x - a * mu[k]) ** 2) / (2.0 * vk) - 0.5 * math.log(vk) - top)
        mk = mu[k] + a * s2[k] * (x - a * mu[k]) / vk
        tot += w
        s1 += w * mk
        s2m += w * s2[k] * sg / vk
    m = s1 / tot
    var = 0.0
    for k in range(m_total):
        vk = a * a * s2[k] + sg
        w = math.exp(-((x - a * mu[k]) ** 2) / (2.0 * vk) - 0.5 * math.log(vk) - top)
        mk = mu[k] + a * s2[k] * (x - a * mu[k]) / vk
        var += w * (mk - m) ** 2
    v = (s2m + var) / tot
    b = fx[j] * x - fm[j] * m
    slope = fx[j] - kv[j] * v
    return tt[j] * b, tt[j] * (kn[j] * v + 2.0 * slope * A), -tt[j] * slope


@numba.njit(parallel=True, cache=True, error_model="numpy")
def _paths_numba(y, mu, s2, du, alpha, sigma2, tt, fx, fm, kv, kn, out_x, out_a, out_l):
    """RK4 for every end point ``y[i]``; stage ``j = 2k, 2k+1, 2k+2`` of step ``k``."""
    n = du.shape[0]
    for i in numba.prange(y.shape[0]):
        x = y[i]
        A = 0.0
        L = 0.0
        for k in range(n):
            h = du[k]
            j = 2 * k
            ax, aa, al = _rates(x, A, j, mu, s2, alpha, sigma2, tt, fx, fm, kv, kn)
            bx, ba, bl = _rates(
                x + 0.5 * h * ax, A + 0.5 * h * aa, j + 1, mu, s2, alpha, sigma2, tt, fx, fm, kv, kn
            )
            cx, ca, cl = _rates(
                x + 0.5 * h * bx, A + 0.5 * h * ba, j + 1, mu, s2, alpha, sigma2, tt, fx, fm, kv, kn
            )
            dx, da, dl = _rates(
                x + h * cx, A + h * ca, j + 2, mu, s2, alpha, sigma2, tt, fx, fm, kv, kn
            )
            x += h / 6.0 * (ax + 2.0 * bx + 2.0 * cx + dx)
            A += h / 6.0 * (aa + 2.0 * ba + 2.0 * ca + da)
            L += h / 6.0 * (al + 2.0 * bl + 2.0 * cl + dl)
        out_x[i] = x
        out_a[i] = A
        out_l[i] = L


def _rates_numpy(x, A, j, mu, s2, co):
    """Vectorized :func:`_rates` (plain numpy, centred two-pass moments)."""
    a, sg = co["alpha"][j], co["sigma2"][j]
    vk = a * a * s2[None, :] + sg
    lg = -((x[:, None] - a * mu[None, :]) ** 2) / (2.0 * vk) - 0.5 * np.log(vk)
    w = np.exp(lg - lg.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    mk = mu[None, :] + a * s2[None, :] * (x[:, None] - a * mu[None, :]) / vk
    m = np.sum(w * mk, axis=1)
    v = np.sum(w * (s2[None, :] * sg / vk + (mk - m[:, None]) ** 2), axis=1)
    b = co["fx"][j] * x - co["fm"][j] * m
    slope = co["fx"][j] - co["kv"][j] * v
    t = co["tt"][j]
    return t * b, t * (co["kn"][j] * v + 2.0 * slope * A), -t * slope


def _paths_numpy(y, mu, s2, du, co):
    x, A, L = y.copy(), np.zeros_like(y), np.zeros_like(y)
    for k, h in enumerate(du):
        j = 2 * k
        a = _rates_numpy(x, A, j, mu, s2, co)
        b = _rates_numpy(x + 0.5 * h * a[0], A + 0.5 * h * a[1], j + 1, mu, s2, co)
        c = _rates_numpy(x + 0.5 * h * b[0], A + 0.5 * h * b[1], j + 1, mu, s2, co)
        d = _rates_numpy(x + h * c[0], A + h * c[1], j + 2, mu, s2, co)
        x = x + h / 6.0 * (a[0] + 2 * b[0] + 2 * c[0] + d[0])
        A = A + h / 6.0 * (a[1] + 2 * b[1] + 2 * c[1] + d[1])
        L = L + h / 6.0 * (a[2] + 2 * b[2] + 2 * c[2] + d[2])
    return x, A, L


# -- inputs -------------------------------------------------------------------------------------
def _check_data(data: object, data_var: object) -> tuple[np.ndarray, np.ndarray]:
    mu = check_points(data, "data")
    if mu.shape[1] != 1:
        raise ValueError(
            f"data must be 1-D (shape (M, 1)) for the semiclassical density, got D = {mu.shape[1]}"
        )
    try:
        s2 = np.broadcast_to(np.asarray(data_var, dtype=np.float64), (mu.shape[0],)).copy()
    except (TypeError, ValueError):
        raise ValueError(
            f"data_var must be a number or one variance per data point ({mu.shape[0]}), "
            f"got {data_var!r}"
        ) from None
    if not (np.all(np.isfinite(s2)) and np.all(s2 >= 0)):
        raise ValueError(f"data_var must be finite and >= 0, got {data_var!r}")
    return np.ascontiguousarray(mu[:, 0]), s2


def _stage_coefficients(sched: NumericSchedule, eps: float, n_steps: int) -> tuple:
    us = np.linspace(math.log(eps), math.log(sched.T), 2 * n_steps + 1)
    tt = np.exp(us)
    tt[0], tt[-1] = eps, sched.T
    jac = jacobi_coefficient_functions(sched)
    co = {
        "alpha": np.asarray(sched.alpha(tt), dtype=np.float64),
        "sigma2": np.asarray(sched.sigma2(tt), dtype=np.float64),
        "tt": tt,
        "fx": np.asarray(sched.pf_x_coeff(tt), dtype=np.float64),
        "fm": np.asarray(sched.pf_mean_coeff(tt), dtype=np.float64),
        "kv": np.asarray(jac["slope_var"](tt), dtype=np.float64),
        "kn": np.asarray(jac["noise_var"](tt), dtype=np.float64),
    }
    return np.diff(us[::2]), co


def _mixture_logpdf(x: np.ndarray, means: np.ndarray, variances: np.ndarray) -> np.ndarray:
    """``log (1/M) sum_k N(x; means_k, variances_k)`` (``variances`` broadcast against x)."""
    var = np.broadcast_to(variances, (x.size, means.size))
    lg = -((x[:, None] - means[None, :]) ** 2) / (2 * var) - 0.5 * np.log(2 * np.pi * var)
    return logsumexp(lg, axis=1) - math.log(means.size)


# -- public API ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClassicalPaths:
    """Classical paths ending at the sub-cell centres of a grid, with their fluctuation variance.

    Built by :func:`classical_paths`; :meth:`density` evaluates the semiclassical ``[q]`` for any
    ``kappa`` (the paths do not depend on it).

    Attributes
    ----------
    grid : FVGrid
    nodes : ndarray, shape (n_cells * n_sub,)
        End points ``y`` at ``t = eps`` (centres of ``n_sub`` equal sub-cells per cell).
    base_mass : ndarray
        Exact ``p(x|eps)`` mass of each sub-cell.
    x_T : ndarray
        Start of the classical path ending at each node.
    variance : ndarray
        ``A(T)``: variance of the start point per unit kappa.
    log_jacobian : ndarray
        ``log dx_eps/dx_T`` along the path.
    log_p_T : ndarray
        ``log p(x_T|T)``.
    config : dict
    """

    grid: FVGrid
    nodes: np.ndarray
    base_mass: np.ndarray
    x_T: np.ndarray
    variance: np.ndarray
    log_jacobian: np.ndarray
    log_p_T: np.ndarray
    config: dict

    def log_factor(self, kappa: float, start: str = "sampler", prefactor: str = "full"):
        """``log F`` at the nodes (module docstring), for ``start`` and ``prefactor`` choices."""
        kappa = check_kappa(kappa)
        start = check_choice(start, "start", SEMICLASSICAL_STARTS)
        prefactor = check_choice(prefactor, "prefactor", PREFACTORS)
        c = self.config
        s_T2, a_T = c["sigma2_T"], c["alpha_T"]
        A = kappa * self.variance
        if start == "sampler":
            log_n = -(self.x_T**2) / (2 * s_T2) - 0.5 * np.log(2 * np.pi * s_T2)
            corr = log_n - self.log_p_T
            if prefactor == "full":
                return corr + log_factor(self.x_T, self.variance, kappa, s_T2)
            if prefactor == "no-det":
                return corr + A * self.x_T**2 / (2 * s_T2 * (s_T2 + A))
            return corr
        if prefactor == "none":
            return np.zeros_like(self.x_T)
        means = a_T * np.asarray(c["data"])
        var_T = a_T**2 * np.asarray(c["data_var"]) + s_T2
        wide = var_T[None, :] + A[:, None]
        lg = -((self.x_T[:, None] - means[None, :]) ** 2) / (2 * wide)
        lg = lg - 0.5 * np.log(2 * np.pi * wide)
        if prefactor == "no-det":
            # Each smoothed component keeps its unsmoothed normalisation (no determinant).
            lg = lg + 0.5 * np.log(wide / var_T[None, :])
        return logsumexp(lg, axis=1) - math.log(means.size) - self.log_p_T

    def density(
        self,
        kappa: float,
        start: str = "sampler",
        prefactor: str = "full",
        normalize: bool = True,
    ) -> SemiclassicalDensity:
        """Cell averages of ``p(y|eps) F(y)`` (renormalised to mass 1 when ``normalize``)."""
        lf = self.log_factor(kappa, start, prefactor)
        n_cells = self.grid.shape[0]
        mass = (self.base_mass * np.exp(lf)).reshape(n_cells, -1).sum(axis=1)
        raw = float(mass.sum())
        if not np.isfinite(raw) or raw <= 0:
            raise ValueError(
                f"kappa = {kappa!r}: the semiclassical factor is not finite on the grid"
            )
        if normalize:
            mass = mass / raw
        config = dict(self.config, kappa=float(kappa), start=start, prefactor=prefactor)
        config["normalized"] = bool(normalize)
        return SemiclassicalDensity(
            density=mass / self.grid.widths[0],
            grid=self.grid,
            kappa=float(kappa),
            raw_mass=raw,
            outside_mass=float(self.config["outside_mass"]),
            config=config,
        )


def classical_paths(
    data: object,
    eps: float,
    schedule: object = "vp-linear",
    *,
    data_var: object = 0.0,
    bounds: object = (-5.0, 5.0),
    n_cells: int = 1000,
    edges: object = None,
    n_sub: int = 2,
    n_steps: int = 1000,
    backend: str = "numba",
) -> ClassicalPaths:
    """Classical paths and their Jacobi variance for every sub-cell centre of a 1-D grid.

    Parameters
    ----------
    data : array_like, shape (M, 1)
        Training points (or component means).
    eps : float
        End time, ``0 < eps < T``.
    schedule : str or NumericSchedule, default "vp-linear"
    data_var : float or array_like, shape (M,), default 0
        Component variances (0: point masses, the naive estimator's training points).
    bounds, n_cells
        The grid, as :func:`gtv.numerics.fokker_planck.uniform_grid` (ignored if ``edges``).
    edges : array_like, optional
        Explicit cell edges.
    n_sub : int, default 2
        Paths per cell (midpoint rule in each sub-cell).
    n_steps : int, default 1000
        RK4 steps, uniform in ``log t`` from ``eps`` to ``T``.
    backend : {"numba", "numpy"}
    """
    sched = resolve_schedule(schedule)
    mu, s2 = _check_data(data, data_var)
    eps = check_eps(eps, sched.T)
    n_sub = check_count(n_sub, "n_sub")
    n_steps = check_count(n_steps, "n_steps")
    backend = check_choice(backend, "backend", BACKENDS)
    grid = grid_from_edges(edges) if edges is not None else uniform_grid(bounds, n_cells)
    if grid.ndim != 1:
        raise ValueError("bounds must describe a 1-D grid (lo, hi)")
    e = grid.edges[0]
    sub = e[:-1, None] + np.diff(e)[:, None] * np.arange(n_sub + 1)[None, :] / n_sub
    sub_edges = np.append(sub[:, :-1].ravel(), e[-1])
    nodes = 0.5 * (sub_edges[1:] + sub_edges[:-1])
    a_e, s_e2 = float(sched.alpha(eps)), float(sched.sigma2(eps))
    cdf = np.mean(ndtr((sub_edges[:, None] - a_e * mu) / np.sqrt(a_e**2 * s2 + s_e2)), axis=1)
    du, co = _stage_coefficients(sched, eps, n_steps)
    if backend == "numba":
        x_T, A, L = (np.empty_like(nodes) for _ in range(3))
        _paths_numba(nodes, mu, s2, du, co["alpha"], co["sigma2"], co["tt"], co["fx"], co["fm"],
                     co["kv"], co["kn"], x_T, A, L)  # fmt: skip
    else:
        x_T, A, L = _paths_numpy(nodes, mu, s2, du, co)
    if not (np.all(np.isfinite(x_T)) and np.all(np.isfinite(A)) and np.all(A >= 0)):
        raise ValueError(f"n_steps = {n_steps}: the path integration did not stay finite")
    a_T, s_T2 = float(sched.alpha(sched.T)), float(sched.sigma2(sched.T))
    log_p_T = _mixture_logpdf(x_T, a_T * mu, a_T**2 * s2 + s_T2)
    config = {
        "schedule": sched.config(),
        "eps": eps,
        "data": mu.tolist(),
        "data_var": s2.tolist(),
        "n_sub": n_sub,
        "n_steps": n_steps,
        "backend": backend,
        "grid": grid.config(),
        "alpha_T": a_T,
        "sigma2_T": s_T2,
        "outside_mass": float(cdf[0] + 1.0 - cdf[-1]),
    }
    return ClassicalPaths(grid, nodes, np.diff(cdf), x_T, A, L, log_p_T, config)


def semiclassical_density(
    data: object,
    kappa: float,
    eps: float,
    schedule: object = "vp-linear",
    *,
    start: str = "sampler",
    prefactor: str = "full",
    normalize: bool = True,
    **path_options,
) -> SemiclassicalDensity:
    """The semiclassical density of the naive estimator on a 1-D grid (module docstring).

    ``[q](y) = p(y|eps) F(y)``, ``F`` the ratio of the start density smoothed by the Gaussian
    fluctuation of the start point (variance ``kappa A(T)`` from the Jacobi equation along the
    classical path ending at ``y``) to the exact ``p(x_T|T)``. Keyword options as
    :func:`classical_paths` (``data_var``, ``bounds``, ``n_cells``, ``edges``, ``n_sub``,
    ``n_steps``, ``backend``); ``start`` in :data:`SEMICLASSICAL_STARTS`; ``prefactor`` in
    :data:`PREFACTORS` (``"full"`` is the formula, the others are diagnostics). Renormalised to
    mass 1 on the grid unless ``normalize=False``; the formula's own mass is ``raw_mass``.
    """
    kappa = check_kappa(kappa)
    check_choice(start, "start", SEMICLASSICAL_STARTS)
    check_choice(prefactor, "prefactor", PREFACTORS)
    paths = classical_paths(data, eps, schedule, **path_options)
    return paths.density(kappa, start, prefactor, normalize)
