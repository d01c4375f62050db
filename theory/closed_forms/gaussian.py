"""Gaussian data with the naive estimator, in closed form (docs/math/closed_forms.md, item 1).

For ``x0 ~ N(m, s2)`` the noised density is ``p(x|t) = N(alpha m, v_t)``,
``v_t = alpha**2 s2 + sigma**2``; the score ``s = -(x - alpha m)/v`` is linear, the posterior of
``x0`` given ``(x, t)`` is ``N(m + alpha s2 (x - alpha m)/v, s2 sigma**2/v)`` and the proxy-score
covariance ``C(t) = alpha**2 s2/(sigma**2 v) = 1/sigma**2 - 1/v`` does not depend on ``x``. The
effective SDE ``dx = (-beta x - D s) dt + sqrt(kappa) D C**(1/2) dW`` is linear with additive
noise, so ``[q]`` is Gaussian (docs/math/naive_estimator.md). With ``y = x - alpha_t m`` the drift
is
``dy/dt = (D/v - beta) y`` and ``dv/dt = 2 D - 2 beta v``, so the PF-ODE propagator from ``t``
to ``eps`` is ``sqrt(v_eps/v_t)`` and the variance ``w`` of ``y`` obeys (reverse time,
``dt < 0``) ``dw/dt = 2 (D/v - beta) w - kappa D**2 C``, i.e. ``d(w/v)/dt = -kappa D**2 C/v``:

   ``Var[q] = (v_eps/v_T) Var[x_T] + kappa v_eps int_eps^T D_t**2 C(t) / v_t dt``,
   ``E[q] = alpha_eps m + sqrt(v_eps/v_T) (E[x_T] - alpha_T m)``.

The sampler starts from ``x_T ~ N(0, sigma_T**2)`` (``start="sampler"``); started from
``p(x|T)`` (``start="exact"``) the result is ``N(alpha_eps m, v_eps (1 + kappa I))``, the exact
``p(x|eps)`` plus the noise term. The integral ``I`` is elementary for ``ve`` and
``linear-variance`` (and ``edm``): sympy integrates it after a substitution that makes it rational
(:func:`gtv.theory.closed_forms.integration.closed_form_integral`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sympy as sp

from gtv.theory.closed_forms.checks import (
    check_covariance_matrix,
    check_kappa,
    check_positive,
    check_start,
)
from gtv.theory.closed_forms.integration import closed_form_integral
from gtv.theory.path_integral import kappa
from gtv.theory.proxy import x
from gtv.theory.schedules import Schedule, as_schedule, t

__all__ = [
    "NaiveGaussianMoments",
    "eps",
    "gaussian_noised_variance",
    "gaussian_posterior",
    "gaussian_proxy_covariance",
    "gaussian_score",
    "m",
    "naive_gaussian_moments",
    "naive_gaussian_moments_diagonal",
    "naive_moment_ode",
    "naive_noise_integrand",
    "pf_propagator",
    "s2",
]

#: Data mean and variance of the Gaussian data ``N(m, s2)``.
m = sp.Symbol("m", real=True)
s2 = sp.Symbol("s2", positive=True)
#: The cutoff time ``eps`` as a symbol (final time of the sampler, smallest DSM time).
eps = sp.Symbol("epsilon", positive=True)


def gaussian_noised_variance(schedule: Schedule | str, s2_value: object = s2) -> sp.Expr:
    """``v_t = alpha_t**2 s2 + sigma_t**2``, the variance of ``p(x|t)`` for ``x0 ~ N(m, s2)``."""
    sch = as_schedule(schedule)
    s2_value = check_positive(s2_value, "s2")
    return sch.alpha**2 * s2_value + sch.sigma2


def gaussian_score(schedule: Schedule | str, m_value: object = m, s2_value: object = s2) -> sp.Expr:
    """Exact score ``-(x - alpha m)/v_t`` of ``p(x|t) = N(alpha m, v_t)``."""
    sch = as_schedule(schedule)
    return -(x - sch.alpha * sp.sympify(m_value)) / gaussian_noised_variance(sch, s2_value)


def gaussian_posterior(
    schedule: Schedule | str, m_value: object = m, s2_value: object = s2
) -> tuple[sp.Expr, sp.Expr]:
    """Mean and variance of ``x0 | (x, t)`` for ``x0 ~ N(m, s2)``, ``x = alpha x0 + sigma xi``.

    ``(m + alpha s2 (x - alpha m)/v, s2 sigma**2/v)`` (Gaussian conditioning).
    """
    sch = as_schedule(schedule)
    s2_value = check_positive(s2_value, "s2")
    m_value = sp.sympify(m_value)
    v = gaussian_noised_variance(sch, s2_value)
    return (
        m_value + sch.alpha * s2_value * (x - sch.alpha * m_value) / v,
        s2_value * sch.sigma2 / v,
    )


def gaussian_proxy_covariance(schedule: Schedule | str, s2_value: object = s2) -> sp.Expr:
    """``C(t) = (alpha**2/sigma**4) Var[x0 | x, t] = alpha**2 s2/(sigma**2 v_t)`` (no ``x``)."""
    sch = as_schedule(schedule)
    _, var = gaussian_posterior(sch, m, s2_value)
    return sch.alpha**2 / sch.sigma2**2 * var


def pf_propagator(
    schedule: Schedule | str, s2_value: object, t_from: object, t_to: object
) -> sp.Expr:
    """``d x_to / d x_from = sqrt(v_to / v_from)`` of the PF-ODE with the exact Gaussian score."""
    sch = as_schedule(schedule)
    v = gaussian_noised_variance(sch, s2_value)
    return sp.sqrt(v.subs(t, sp.sympify(t_to)) / v.subs(t, sp.sympify(t_from)))


def naive_noise_integrand(schedule: Schedule | str, s2_value: object = s2) -> sp.Expr:
    """``D_t**2 C(t) / v_t``: ``kappa v_eps`` times its integral over ``[eps, T]`` is the noise
    part of ``Var[q]`` (``D**2 C`` is the noise intensity, ``v_eps/v_t`` the squared propagator)."""
    sch = as_schedule(schedule)
    return (
        sch.diffusion**2
        * gaussian_proxy_covariance(sch, s2_value)
        / gaussian_noised_variance(sch, s2_value)
    )


def naive_moment_ode(
    schedule: Schedule | str, s2_value: object = s2, kappa_value: object = kappa
) -> tuple[sp.Expr, sp.Expr]:
    """Coefficients of the variance ODE of the effective SDE, ``dw/dt = rate w - source``.

    With drift ``b = -beta x - D s`` (linear, slope ``D/v - beta``) and noise ``Q = kappa D**2 C``
    per unit ``|dt|``, integrating from ``T`` down: ``rate = 2 (D/v - beta)``,
    ``source = kappa D**2 C``.
    """
    sch = as_schedule(schedule)
    v = gaussian_noised_variance(sch, s2_value)
    kappa_value = check_kappa(kappa_value)
    return (
        2 * (sch.diffusion / v - sch.beta),
        kappa_value * sch.diffusion**2 * gaussian_proxy_covariance(sch, s2_value),
    )


@dataclass(frozen=True)
class NaiveGaussianMoments:
    """Mean and variance of ``[q]`` for the naive estimator on Gaussian data (1-D).

    Attributes
    ----------
    mean, variance : sympy.Expr
    noise_integral : sympy.Expr
        ``I = int_eps^T D**2 C / v dt`` (closed form or an unevaluated ``Integral``);
        ``variance = start part + kappa v_eps I``.
    start : str
        ``"sampler"`` (``x_T ~ N(0, sigma_T**2)``) or ``"exact"`` (``x_T ~ p(x|T)``).
    closed : bool
        Whether ``noise_integral`` is in closed form.
    """

    mean: sp.Expr
    variance: sp.Expr
    noise_integral: sp.Expr
    start: str
    closed: bool


def naive_gaussian_moments(
    schedule: Schedule | str,
    m_value: object = m,
    s2_value: object = s2,
    kappa_value: object = kappa,
    eps_value: object = eps,
    T: object = None,
    start: str = "sampler",
    closed_form: bool = True,
) -> NaiveGaussianMoments:
    """Mean and variance of the naive estimator's ``[q]`` for data ``N(m, s2)`` (module item 1).

    Parameters
    ----------
    schedule : Schedule or str
    m_value, s2_value, kappa_value, eps_value : numbers or symbols
        Data mean and variance (``s2 > 0``), noise strength (``kappa >= 0``), cutoff.
    T : number or symbol, optional
        Start time (default: the schedule's ``T``).
    start : {"sampler", "exact"}
        ``x_T ~ N(0, sigma_T**2)`` (what the samplers do) or ``x_T ~ p(x|T)``.
    closed_form : bool
        Integrate ``I`` in closed form where a rationalizing substitution exists
        (:func:`closed_form_integral`); otherwise leave an ``Integral``.

    Raises
    ------
    ValueError
        ``s2 <= 0``, ``kappa < 0`` or an unknown ``start``.
    """
    sch = as_schedule(schedule)
    s2_value = check_positive(s2_value, "s2")
    kappa_value = check_kappa(kappa_value)
    start = check_start(start)
    m_value = sp.sympify(m_value)
    eps_value = sp.sympify(eps_value)
    T = sch.T if T is None else sp.sympify(T)
    v = gaussian_noised_variance(sch, s2_value)
    v_eps, v_T = v.subs(t, eps_value), v.subs(t, T)
    a_eps, a_T = sch.alpha.subs(t, eps_value), sch.alpha.subs(t, T)
    integrand = naive_noise_integrand(sch, s2_value)
    if closed_form:
        integral = closed_form_integral(integrand, sch, eps_value, T)
    else:
        integral = sp.Integral(integrand, (t, eps_value, T))
    if integral.has(sp.zoo, sp.oo, -sp.oo, sp.nan):
        # e.g. linear-variance at T = 1: D_t = 1/(2(1 - t)) makes the noise integral diverge
        raise ValueError(
            f"T = {T}: the noise integral int D_t**2 C(t) v_eps/v_t dt diverges on "
            f"[{eps_value}, {T}] for schedule {sch.name!r}; choose T inside the schedule's range "
            "where D_t is finite"
        )
    noise = kappa_value * v_eps * integral
    if start == "exact":
        mean, var = a_eps * m_value, v_eps + noise
    else:
        # y = x - alpha m is scaled by sqrt(v_eps/v_T); x_T ~ N(0, sigma_T**2) has y_T mean
        # -alpha_T m and variance sigma_T**2.
        mean = a_eps * m_value - sp.sqrt(v_eps / v_T) * a_T * m_value
        var = v_eps / v_T * sch.sigma2.subs(t, T) + noise
    return NaiveGaussianMoments(mean, var, integral, start, not integral.has(sp.Integral))


def naive_gaussian_moments_diagonal(
    schedule: Schedule | str,
    mean_vector: Sequence[object],
    S: object,
    kappa_value: object = kappa,
    eps_value: object = eps,
    T: object = None,
    start: str = "sampler",
) -> tuple[sp.Matrix, sp.Matrix]:
    """D-dimensional data ``N(m, S)`` with diagonal ``S``: mean vector and (diagonal) covariance.

    With an isotropic schedule and diagonal ``S`` the posterior, ``C`` and the effective SDE
    factorize over coordinates, so each coordinate is the 1-D case with ``s2 = S_ii``.

    Raises
    ------
    ValueError
        ``S`` not symmetric positive definite, not diagonal, or of the wrong size; ``kappa < 0``.
    """
    M = check_covariance_matrix(S, "S")
    mv = [sp.sympify(v) for v in mean_vector]
    if len(mv) != M.shape[0]:
        raise ValueError(f"S must be {len(mv)}x{len(mv)} to match the mean, got {M.shape}")
    if any(M[i, j] != 0 for i in range(M.shape[0]) for j in range(M.shape[0]) if i != j):
        raise ValueError("S must be diagonal here (gtv.numerics.naive handles a full S)")
    means, variances = [], []
    for i, mi in enumerate(mv):
        r = naive_gaussian_moments(schedule, mi, M[i, i], kappa_value, eps_value, T, start)
        means.append(r.mean)
        variances.append(r.variance)
    return sp.Matrix(means), sp.diag(*variances)
