"""Symbolic proxy-score statistics for point-cloud data (docs/math/posterior.md).

For ``p_data = (1/M) sum_m delta(x - mu_m)`` the noised density is a Gaussian mixture,
``p(x|t) = (1/M) sum_m N(x; alpha_t mu_m, sigma_t**2)``, and the proxy score
``s_tilde = (alpha_t x_0 - x) / sigma_t**2`` with ``x_0`` drawn from the posterior has (in 1-D)::

    C(x, t) = Cov[s_tilde | x, t] = (alpha_t**2 / sigma_t**4) Sigma_post
            = 1/sigma_t**2 + d**2/dx**2 log p(x|t).

This module builds both sides as sympy expressions in ``x`` and ``t`` so they can be compared with
each other, with the closed form for two points ``+-a``,
``C = (alpha**2 a**2 / sigma**4) sech**2(alpha a x / sigma**2)``, and with the numba kernel in
:mod:`gtv.numerics.posterior`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy as sp

from gtv.theory.schedules import Schedule, as_schedule, t

__all__ = [
    "evaluate",
    "frac_two_points",
    "log_density",
    "proxy_covariance_from_density",
    "proxy_covariance_from_posterior",
    "proxy_covariance_two_points",
    "score_from_density",
    "x",
]

#: The 1-D space symbol.
x = sp.Symbol("x", real=True)


def _points(points: Sequence[object]) -> list[sp.Expr]:
    pts = [sp.sympify(p) for p in points]
    if len(pts) < 1:
        raise ValueError("points must contain at least one training point")
    return pts


def log_density(points: Sequence[object], schedule: Schedule | str) -> sp.Expr:
    """``log p(x|t)`` for 1-D training points under ``schedule``."""
    sch = as_schedule(schedule)
    pts = _points(points)
    a, s2 = sch.alpha, sch.sigma2
    mix = sum(sp.exp(-((x - a * m) ** 2) / (2 * s2)) for m in pts) / len(pts)
    return sp.log(mix / sp.sqrt(2 * sp.pi * s2))


def score_from_density(points: Sequence[object], schedule: Schedule | str) -> sp.Expr:
    """The exact score ``d/dx log p(x|t)``."""
    return sp.diff(log_density(points, schedule), x)


def proxy_covariance_from_density(points: Sequence[object], schedule: Schedule | str) -> sp.Expr:
    """``C = 1/sigma_t**2 + d**2/dx**2 log p(x|t)`` (Tweedie's second-order identity)."""
    sch = as_schedule(schedule)
    return 1 / sch.sigma2 + sp.diff(log_density(points, sch), x, 2)


def proxy_covariance_from_posterior(points: Sequence[object], schedule: Schedule | str) -> sp.Expr:
    """``C = (alpha**2/sigma**4) Var_w[mu]`` with the posterior weights written out symbolically."""
    sch = as_schedule(schedule)
    pts = _points(points)
    a, s2 = sch.alpha, sch.sigma2
    logits = [-((x - a * m) ** 2) / (2 * s2) for m in pts]
    z = sum(sp.exp(lg) for lg in logits)
    w = [sp.exp(lg) / z for lg in logits]
    mean = sum(wi * m for wi, m in zip(w, pts, strict=True))
    var = sum(wi * (m - mean) ** 2 for wi, m in zip(w, pts, strict=True))
    return a**2 / s2**2 * var


def proxy_covariance_two_points(a: object, schedule: Schedule | str) -> sp.Expr:
    """Two points ``+-a``: ``C = (alpha**2 a**2/sigma**4) sech**2(alpha a x/sigma**2)``."""
    sch = as_schedule(schedule)
    a = sp.sympify(a)
    return sch.alpha**2 * a**2 / sch.sigma2**2 * sp.sech(sch.alpha * a * x / sch.sigma2) ** 2


def frac_two_points(a: object, schedule: Schedule | str) -> sp.Expr:
    """``C / (C + s**2)`` for two points ``+-a``.

    The score is ``s = (alpha a tanh(alpha a x/sigma**2) - x)/sigma**2``.
    """
    sch = as_schedule(schedule)
    a = sp.sympify(a)
    c = proxy_covariance_two_points(a, sch)
    s = (sch.alpha * a * sp.tanh(sch.alpha * a * x / sch.sigma2) - x) / sch.sigma2
    return c / (c + s**2)


def evaluate(expr: sp.Expr, x_value: float, t_value: float, digits: int = 40) -> float:
    """Evaluate an expression in ``x`` and ``t`` with ``digits`` significant digits (mpmath)."""
    return float(
        sp.N(expr.subs({x: sp.Float(x_value, digits), t: sp.Float(t_value, digits)}), digits)
    )
