"""Independent exact references for the Fokker-Planck tests (no solver helpers used).

Cell averages come from scipy's normal cdf. vp-linear with Gaussian data N(0, s0**2):
p(x|t) = N(0, v_t), v_t = alpha_t**2 s0**2 + sigma_t**2, score -x/v_t; both the reverse SDE
(b = -beta x - 2 D s, Q = 2 D) and the PF-ODE (b = -beta x - D s, Q = 0) carry p(x|T) to p(x|eps).
"""

import math

import numpy as np
from scipy.stats import norm

from gtv.numerics.fokker_planck import solve_fokker_planck, uniform_grid

T = 1.0
EPS = 1e-3
S0 = 0.5  # std of the Gaussian data
TOL = 2e-3  # max abs density error on the default grid


def log_alpha(t):
    return -(0.1 * t + 19.9 * t * t / 2)


def beta(t):
    return 0.1 + 19.9 * t


def var(t, s0=S0):
    """Var of x_t for data N(0, s0**2) under vp-linear (sigma2 = 1 - alpha**2)."""
    return math.exp(2 * log_alpha(t)) * s0**2 - math.expm1(2 * log_alpha(t))


def cell_avg(edges, mean, var):
    """Exact cell averages of N(mean, var) (1-D)."""
    return np.diff(norm.cdf((edges - mean) / math.sqrt(var))) / np.diff(edges)


def check_invariants(res, p0_mass=None):
    assert np.all(res.density >= 0.0)
    assert np.all(res.snapshots >= 0.0)
    assert res.mass_error <= 1e-10, res.mass_error
    if p0_mass is not None:
        assert abs(res.mass[0] - p0_mass) <= 1e-14 * p0_mass
    assert res.n_fallback == 0


def vp_case(kind):
    """(drift, noise) of the vp-linear reverse SDE or PF-ODE for Gaussian data (1-D or 2-D)."""
    factor = 2.0 if kind == "sde" else 1.0

    def drift(x, t):
        return (-beta(t) + factor * beta(t) / var(t)) * x

    noise = (lambda x, t: 2.0 * beta(t)) if kind == "sde" else None
    return drift, noise


def vp_error(kind, n_cells, n_steps, scheme="tr-bdf2-fct"):
    grid = uniform_grid((-6, 6), n_cells)
    drift, noise = vp_case(kind)
    p0 = cell_avg(grid.edges[0], 0.0, var(T))
    res = solve_fokker_planck(drift, noise, p0, grid, T, EPS, n_steps, scheme=scheme)
    return np.abs(res.density - cell_avg(grid.edges[0], 0.0, var(EPS))).max(), res


def orders(errors):
    return [math.log2(errors[i] / errors[i + 1]) for i in range(len(errors) - 1)]
