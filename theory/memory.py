"""The empirical score as a dense associative memory (docs/math/memorization.md).

Energy, gradient and Hessian
----------------------------
For memories (training points) ``xi_mu`` with prior weights ``pi_mu`` the noised empirical
density at time ``t`` is ``p_t(x) = sum_mu pi_mu N(x; alpha xi_mu, sigma2 I)``. Its associative-
memory energy is

    ``E_t(x) = -sigma2 log sum_mu pi_mu exp(-|x - alpha xi_mu|**2 / (2 sigma2))``,

so the score is ``-grad E / sigma2``. :func:`energy_identities` derives (sympy, for explicit small
``K`` and ``D``) ``grad E = x - alpha m(x)`` with the posterior mean ``m`` and
``Hess E = I - (alpha**2/sigma2) Cov_w(xi)``. In data coordinates ``x = alpha y`` with
``beta = alpha**2 / (2 sigma2)``, ``2 E_t(alpha y) / alpha**2`` is the dense associative-memory
energy ``E^AM(y) = -beta**-1 log sum_mu pi_mu exp(-beta |y - xi_mu|**2)`` (Pham et al. 2025).

Closed forms
------------
* :func:`merge_threshold`: two memories at ``+-d/2`` merge into one minimum at the midpoint when
  ``beta d**2 = 2``, i.e. at the signal-to-noise ratio ``alpha**2 / sigma2 = 4 / d**2``;
* :func:`circle_angular_average` and :func:`circle_energy`: memories uniform on the unit circle
  give ``E(R) = R**2 + 1 - log(I_0(2 beta R)) / beta`` and the radial score
  ``2 (I_1/I_0(2 beta R) - R)``;
* :func:`collapse_condition`: the collapse time of Biroli, Bonnaire, de Bortoli & Mezard (2024)
  for K Gaussian points in D dimensions, ``alpha**2 s2 / sigma2 = K**(2/D) - 1``.

Code generation
---------------
:func:`generated_memory_source` prints the closed forms numerics needs into
``numerics/_generated/memory.py`` (regenerate with ``python -m gtv.theory.memory``). The Bessel
functions enter the generated code only through the exponentially scaled values
``i0e = I_0(z) exp(-z)`` and ``i1e = I_1(z) exp(-z)``, passed in as arguments.
"""

from __future__ import annotations

import sys
from pathlib import Path

import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p

from gtv.theory.codegen import function_source
from gtv.theory.schedules import Schedule, t

__all__ = [
    "alpha",
    "beta",
    "circle_angular_average",
    "circle_energy",
    "collapse_condition",
    "data_energy_expression",
    "energy_expression",
    "energy_identities",
    "generated_memory_path",
    "generated_memory_source",
    "gradient_expression",
    "hessian_expression",
    "merge_threshold",
    "ou_schedule",
    "posterior_covariance_expression",
    "posterior_mean_expression",
    "sigma2",
    "write_generated_memory",
]

#: Signal scale ``alpha_t`` and noise variance ``sigma_t**2`` as plain symbols.
alpha = sp.Symbol("alpha", positive=True)
sigma2 = sp.Symbol("sigma2", positive=True)
#: Inverse temperature of the data-coordinate energy, ``beta = alpha**2 / (2 sigma2)``.
beta = sp.Symbol("beta", positive=True)

_d = sp.Symbol("d", positive=True)
_s = sp.Symbol("s", real=True)
_R = sp.Symbol("R", nonnegative=True)
_z = sp.Symbol("z", positive=True)
_phi = sp.Symbol("phi", real=True)
_K = sp.Symbol("K", positive=True)
_D = sp.Symbol("D", positive=True)
_s2 = sp.Symbol("s2", positive=True)
_snr = sp.Symbol("snr", positive=True)
_i0e = sp.Symbol("i0e", positive=True)
_i1e = sp.Symbol("i1e", positive=True)


# -- energy, gradient, Hessian ------------------------------------------------------------------
def _symbols(K: int, D: int) -> tuple[sp.Matrix, sp.Matrix, tuple]:
    if not (isinstance(K, int) and isinstance(D, int) and K >= 1 and D >= 1):
        raise ValueError(f"K and D must be integers >= 1, got K={K!r}, D={D!r}")
    x = sp.Matrix(sp.symbols(f"x0:{D}", real=True))
    xi = sp.Matrix(K, D, lambda m, j: sp.Symbol(f"xi{m}_{j}", real=True))
    pi = sp.symbols(f"pi0:{K}", positive=True)
    return x, xi, tuple(pi)


def _logits(x: sp.Matrix, xi: sp.Matrix, a: sp.Expr, v: sp.Expr) -> list[sp.Expr]:
    K, D = xi.shape
    return [-sum((x[j] - a * xi[m, j]) ** 2 for j in range(D)) / (2 * v) for m in range(K)]


def _with_schedule(expr: sp.Expr, schedule: Schedule | None) -> sp.Expr:
    if schedule is None:
        return expr
    return expr.subs({alpha: schedule.alpha, sigma2: schedule.sigma2})


def energy_expression(K: int = 3, D: int = 2, schedule: Schedule | None = None) -> dict:
    """``E_t(x) = -sigma2 log sum_mu pi_mu exp(-|x - alpha xi_mu|**2 / (2 sigma2))``.

    Parameters
    ----------
    K, D : int
        Number of memories and dimension (small: the expressions are explicit).
    schedule : gtv.theory.schedules.Schedule, optional
        Substitute ``alpha_t`` and ``sigma_t**2`` of this schedule (the result depends on
        :data:`gtv.theory.schedules.t`); by default they stay the symbols :data:`alpha`,
        :data:`sigma2`.

    Returns
    -------
    dict
        ``energy``; the symbols ``x`` (D x 1), ``memories`` (K x D) and ``weights`` (K-tuple).
    """
    x, xi, pi = _symbols(K, D)
    lg = _logits(x, xi, alpha, sigma2)
    energy = -sigma2 * sp.log(sum(pi[m] * sp.exp(lg[m]) for m in range(K)))
    return {"energy": _with_schedule(energy, schedule), "x": x, "memories": xi, "weights": pi}


def gradient_expression(K: int = 3, D: int = 2, schedule: Schedule | None = None) -> sp.Matrix:
    """``grad_x E_t`` (D x 1), differentiated by sympy from :func:`energy_expression`."""
    e = energy_expression(K, D, schedule)
    return sp.Matrix([sp.diff(e["energy"], xj) for xj in e["x"]])


def hessian_expression(K: int = 3, D: int = 2, schedule: Schedule | None = None) -> sp.Matrix:
    """``Hess_x E_t`` (D x D), differentiated by sympy from :func:`energy_expression`."""
    e = energy_expression(K, D, schedule)
    x = e["x"]
    return sp.Matrix(D, D, lambda i, j: sp.diff(e["energy"], x[i], x[j]))


def _weights(pi: tuple, g: list[sp.Expr]) -> list[sp.Expr]:
    total = sum(p * gm for p, gm in zip(pi, g, strict=True))
    return [p * gm / total for p, gm in zip(pi, g, strict=True)]


def posterior_mean_expression(K: int = 3, D: int = 2) -> sp.Matrix:
    """``m(x) = sum_mu w_mu xi_mu`` with ``w = softmax(log pi - |x - alpha xi|**2/(2 sigma2))``."""
    x, xi, pi = _symbols(K, D)
    w = _weights(pi, [sp.exp(v) for v in _logits(x, xi, alpha, sigma2)])
    return sp.Matrix([sum(w[m] * xi[m, j] for m in range(K)) for j in range(D)])


def posterior_covariance_expression(K: int = 3, D: int = 2) -> sp.Matrix:
    """``Cov_w(xi) = sum_mu w_mu (xi_mu - m)(xi_mu - m)^T`` (D x D)."""
    x, xi, pi = _symbols(K, D)
    w = _weights(pi, [sp.exp(v) for v in _logits(x, xi, alpha, sigma2)])
    m = [sum(w[k] * xi[k, j] for k in range(K)) for j in range(D)]
    return sp.Matrix(
        D, D, lambda i, j: sum(w[k] * (xi[k, i] - m[i]) * (xi[k, j] - m[j]) for k in range(K))
    )


def energy_identities(K: int = 3, D: int = 2) -> dict[str, sp.Matrix]:
    """Residuals that vanish identically (``sympy.cancel`` reduces each entry to 0).

    The energy is written as ``-sigma2 log sum_mu pi_mu exp(L_mu(x))`` with undetermined functions
    ``L_mu``; sympy differentiates it (chain rule), then ``dL_mu/dx_i`` and
    ``d2L_mu/dx_i dx_j`` are replaced by the derivatives of the actual logits
    ``-|x - alpha xi_mu|**2 / (2 sigma2)`` and ``exp(L_mu)`` by positive symbols ``G_mu``, which
    leaves rational functions.

    Returns
    -------
    dict
        ``gradient``: ``grad E - (x - alpha m)``; ``hessian``:
        ``Hess E - (I - (alpha**2/sigma2) Cov_w)``; ``score_jacobian``: the Jacobian of the score
        ``(alpha m - x)/sigma2`` minus ``-Hess E / sigma2``; ``data_energy``:
        ``2 E_t(alpha y)/alpha**2 - E^AM_beta(y)`` at ``beta = alpha**2/(2 sigma2)``.
    """
    x, xi, pi = _symbols(K, D)
    lg = _logits(x, xi, alpha, sigma2)
    L = [sp.Function(f"L{m}")(*x) for m in range(K)]
    G = sp.symbols(f"G0:{K}", positive=True)
    energy = -sigma2 * sp.log(sum(pi[m] * sp.exp(L[m]) for m in range(K)))
    reps = {}
    for m in range(K):
        for i in range(D):
            reps[sp.Derivative(L[m], x[i])] = sp.diff(lg[m], x[i])
            for j in range(D):
                reps[sp.Derivative(L[m], x[i], x[j])] = sp.diff(lg[m], x[i], x[j])

    def concrete(e: sp.Expr) -> sp.Expr:
        return e.subs(reps).xreplace({sp.exp(L[m]): G[m] for m in range(K)})

    grad = sp.Matrix([sp.diff(energy, xj) for xj in x]).applyfunc(concrete)
    hess = sp.Matrix(D, D, lambda i, j: sp.diff(energy, x[i], x[j])).applyfunc(concrete)
    w = _weights(pi, list(G))
    m = sp.Matrix([sum(w[k] * xi[k, j] for k in range(K)) for j in range(D)])
    cov = sp.Matrix(
        D, D, lambda i, j: sum(w[k] * (xi[k, i] - m[i]) * (xi[k, j] - m[j]) for k in range(K))
    )
    score = (alpha * m - x) / sigma2
    # d/dx of the score through G_mu(x): dG_mu/dx_j = G_mu dL_mu/dx_j.
    dscore = sp.Matrix(
        D,
        D,
        lambda i, j: (
            sp.diff(score[i], x[j])
            + sum(sp.diff(score[i], G[k]) * G[k] * sp.diff(lg[k], x[j]) for k in range(K))
        ),
    )
    # Data coordinates: x = alpha y, beta = alpha**2/(2 sigma2).
    y = sp.Matrix(sp.symbols(f"y0:{D}", real=True))
    e_full = -sigma2 * sp.log(sum(pi[k] * sp.exp(lg[k]) for k in range(K)))
    e_data = 2 * e_full.subs({x[j]: alpha * y[j] for j in range(D)}, simultaneous=True) / alpha**2
    am = (
        -sp.log(
            sum(
                pi[k] * sp.exp(-beta * sum((y[j] - xi[k, j]) ** 2 for j in range(D)))
                for k in range(K)
            )
        )
        / beta
    )
    # Same log-sum-exp once every exponent is expanded: the difference vanishes structurally.
    data_residual = sp.simplify(
        _expand_exponents(e_data) - _expand_exponents(am.subs(beta, alpha**2 / (2 * sigma2)))
    )
    return {
        "gradient": (grad - (x - alpha * m)).applyfunc(sp.cancel),
        "hessian": (hess - (sp.eye(D) - alpha**2 / sigma2 * cov)).applyfunc(sp.cancel),
        "score_jacobian": (dscore + hess / sigma2).applyfunc(sp.cancel),
        "data_energy": sp.Matrix([data_residual]),
    }


def _expand_exponents(e: sp.Expr) -> sp.Expr:
    return e.replace(lambda u: isinstance(u, sp.exp), lambda u: sp.exp(sp.expand(u.args[0])))


def data_energy_expression(K: int = 3, D: int = 2) -> dict:
    """``E^AM_beta(y) = -beta**-1 log sum_mu pi_mu exp(-beta |y - xi_mu|**2)`` (Pham et al.).

    Equal to ``2 E_t(alpha y) / alpha**2`` at ``beta = alpha**2 / (2 sigma2)``
    (:func:`energy_identities`). Returns ``energy`` and the symbols ``y``, ``memories``,
    ``weights``.
    """
    _, xi, pi = _symbols(K, D)
    y = sp.Matrix(sp.symbols(f"y0:{D}", real=True))
    energy = (
        -sp.log(
            sum(
                pi[k] * sp.exp(-beta * sum((y[j] - xi[k, j]) ** 2 for j in range(D)))
                for k in range(K)
            )
        )
        / beta
    )
    return {"energy": energy, "y": y, "memories": xi, "weights": pi}


# -- two memories -------------------------------------------------------------------------------
def merge_threshold() -> dict:
    """Two memories at ``y = +-(d/2) e_1`` (Pham convention, no prior weights).

    Along the segment ``y = s e_1``,
    ``E(s) = -beta**-1 log(exp(-beta (s - d/2)**2) + exp(-beta (s + d/2)**2))``
    ``= s**2 + d**2/4 - beta**-1 log(2 cosh(beta s d))``.

    Returns
    -------
    dict
        ``energy`` E(s); ``energy_cosh`` the cosh form; ``first_derivative`` E'(s)
        ``= 2 s - d tanh(beta s d)``; ``midpoint_curvature`` E''(0) ``= 2 - beta d**2``;
        ``perpendicular_curvature`` (2, from the D = 2 energy at the midpoint); ``beta_c``
        ``= 2/d**2`` (from ``solve(E''(0) = 0, beta)``); ``relation`` ``Eq(beta d**2, 2)``;
        ``snr_c`` the critical ``alpha**2/sigma2 = 2 beta_c = 4/d**2``;
        ``fixed_point_equation`` ``Eq(s, (d/2) tanh(beta s d))`` (the minima ``+-s*`` above
        the threshold); symbols ``s``, ``d``, ``beta``.
    """
    s, d = _s, _d
    energy = -sp.log(sp.exp(-beta * (s - d / 2) ** 2) + sp.exp(-beta * (s + d / 2) ** 2)) / beta
    energy_cosh = s**2 + d**2 / 4 - sp.log(2 * sp.cosh(beta * s * d)) / beta
    e1 = sp.simplify(sp.diff(energy, s))
    e2_0 = sp.simplify(sp.diff(energy, s, 2).subs(s, 0))
    (beta_c,) = sp.solve(sp.Eq(e2_0, 0), beta)
    y1, y2 = sp.symbols("y1 y2", real=True)
    g_minus = sp.exp(-beta * ((y1 - d / 2) ** 2 + y2**2))
    g_plus = sp.exp(-beta * ((y1 + d / 2) ** 2 + y2**2))
    e_2d = -sp.log(g_minus + g_plus) / beta
    perp = sp.simplify(sp.diff(e_2d, y2, 2).subs({y1: 0, y2: 0}))
    snr_c = sp.simplify(2 * beta_c)
    return {
        "energy": energy,
        "energy_cosh": energy_cosh,
        "first_derivative": e1,
        "midpoint_curvature": e2_0,
        "perpendicular_curvature": perp,
        "beta_c": beta_c,
        "relation": sp.Eq(beta * d**2, 2),
        "snr_c": snr_c,
        "fixed_point_equation": sp.Eq(s, d / 2 * sp.tanh(beta * s * d)),
        "symbols": (s, d, beta),
    }


# -- memories on the unit circle -----------------------------------------------------------------
def circle_angular_average(order: int = 8) -> dict:
    """``(1/2pi) int_0^{2pi} exp(z cos phi) dphi = I_0(z)``, shown two ways.

    * ODE: ``f(z) = <exp(z cos phi)>_phi`` satisfies ``z f'' + f' - z f = 0`` because the
      integrand ``(z cos**2 + cos - z) exp(z cos)`` is ``d/dphi [sin phi exp(z cos phi)]``
      (periodic, so its integral is 0); ``f(0) = 1``, ``f'(0) = 0``, and ``I_0`` is the solution
      of the modified Bessel equation that is regular at 0 with ``I_0(0) = 1``.
    * Series: the angular moments ``<cos**n phi>`` (sympy integrals for ``n <= 2 order``) equal
      the coefficients of ``I_0``'s Taylor series, whose general term ``(z/2)**(2k)/k!**2`` sums
      to ``besseli(0, z)`` (sympy summation).

    Returns
    -------
    dict
        ``derivative_residual``, ``bessel_ode_residual``, ``initial_values`` (I_0(0), I_0'(0)),
        ``series_residuals`` (list, all 0) and ``series_sum`` (``besseli(0, z)``).
    """
    z, phi = _z, _phi
    integrand = (z * sp.cos(phi) ** 2 + sp.cos(phi) - z) * sp.exp(z * sp.cos(phi))
    deriv_res = sp.simplify(sp.diff(sp.sin(phi) * sp.exp(z * sp.cos(phi)), phi) - integrand)
    i0 = sp.besseli(0, z)
    ode_res = sp.simplify(z * sp.diff(i0, z, 2) + sp.diff(i0, z) - z * i0)
    init = (sp.limit(i0, z, 0), sp.limit(sp.diff(i0, z), z, 0))
    series = sp.series(i0, z, 0, 2 * order + 1).removeO()
    residuals = []
    for n in range(2 * order + 1):
        moment = sp.integrate(sp.cos(phi) ** n, (phi, 0, 2 * sp.pi)) / (2 * sp.pi)
        residuals.append(sp.simplify(moment / sp.factorial(n) - series.coeff(z, n)))
    k = sp.Symbol("k", integer=True, nonnegative=True)
    total = sp.summation((z / 2) ** (2 * k) / sp.factorial(k) ** 2, (k, 0, sp.oo))
    return {
        "derivative_residual": deriv_res,
        "bessel_ode_residual": ode_res,
        "initial_values": init,
        "series_residuals": residuals,
        "series_sum": total,
    }


def circle_energy() -> dict:
    """Energy of memories uniform on the unit circle, radius ``R`` (Pham convention).

    ``int exp(-beta |x - xi|**2) dphi/(2 pi) = exp(-beta (R**2 + 1)) I_0(2 beta R)`` (expand
    ``|x - xi|**2 = R**2 + 1 - 2 R cos phi`` and use :func:`circle_angular_average`), so
    ``E(R) = -beta**-1 log(...) = R**2 + 1 - log(I_0(2 beta R))/beta``.

    Returns
    -------
    dict
        ``energy``; ``radial_score`` ``-dE/dR = 2 (I_1/I_0(2 beta R) - R)``; ``stationary``
        ``Eq(I_1(2 beta R)/I_0(2 beta R), R)``; the float-safe forms in the scaled Bessel values
        ``i0e = I_0(z) e^{-z}``, ``i1e = I_1(z) e^{-z}`` at ``z = 2 beta R``:
        ``energy_scaled`` ``(R - 1)**2 - log(i0e)/beta`` and ``radial_score_scaled``
        ``2 (i1e/i0e - R)``; ``scaled_substitution`` (the map ``besseli -> e^z * scaled``); the
        symbols ``R``, ``beta``, ``i0e``, ``i1e``; ``residuals`` (both 0): the integrand's factor
        ``exp(-beta |x - xi|**2) / exp(-beta (R**2 + 1)) - exp(2 beta R cos phi)`` and the
        scaled energy minus the expanded one.
    """
    R, z, phi = _R, 2 * beta * _R, _phi
    dist2 = sp.expand((R - sp.cos(phi)) ** 2 + sp.sin(phi) ** 2)
    dist2 = sp.trigsimp(dist2)  # R**2 + 1 - 2 R cos(phi)
    # exp(-beta dist2) = exp(-beta (R**2 + 1)) exp(z cos(phi)); its angular mean is I_0(z).
    rest = sp.simplify(sp.exp(-beta * dist2) / sp.exp(-beta * (R**2 + 1)))
    factor_residual = sp.simplify(rest - sp.exp(z * sp.cos(phi)))
    energy = -sp.log(sp.exp(-beta * (R**2 + 1)) * sp.besseli(0, z)) / beta
    energy = sp.expand(sp.expand_log(energy, force=True))
    score = sp.simplify(-sp.diff(energy, R))
    scaled = {sp.besseli(0, z): sp.exp(z) * _i0e, sp.besseli(1, z): sp.exp(z) * _i1e}
    expanded = sp.expand(sp.expand_log(energy.xreplace(scaled), force=True))
    energy_scaled = (R - 1) ** 2 - sp.log(_i0e) / beta
    scaled_residual = sp.simplify(expanded - energy_scaled)
    score_scaled = sp.simplify(score.xreplace(scaled))
    return {
        "energy": energy,
        "radial_score": score,
        "stationary": sp.Eq(sp.besseli(1, z) / sp.besseli(0, z), R),
        "energy_scaled": energy_scaled,
        "radial_score_scaled": score_scaled,
        "scaled_substitution": scaled,
        "symbols": (R, beta, _i0e, _i1e),
        "residuals": (factor_residual, scaled_residual),
    }


# -- collapse time -------------------------------------------------------------------------------
def collapse_condition() -> dict:
    """Collapse time of K = P Gaussian points N(0, s2 I_D) (Biroli, Bonnaire, de Bortoli, Mezard).

    Excess entropy ``f = log K / D + (1/2) log(sigma2 / (sigma2 + s2 alpha**2))``; with
    ``snr = alpha**2 / sigma2`` it is ``log K / D - (1/2) log(1 + s2 snr)``, and ``f = 0`` at
    ``s2 snr = K**(2/D) - 1``.

    Returns
    -------
    dict
        ``excess_entropy`` (in ``alpha``, ``sigma2``), ``excess_entropy_snr`` (in ``snr``),
        ``snr_c`` (sympy ``solve``), ``ou_time`` (the OU schedule ``alpha = e^-t``,
        ``sigma2 = 1 - e^-2t``: ``t_C = (1/2) log(1 + s2/(K**(2/D) - 1))``, solved by sympy
        for ``u = e^-2t``), the symbols ``K``, ``D``, ``s2``, ``snr`` and ``residuals`` (both 0):
        ``f(alpha = sqrt(snr sigma2)) - f_snr`` and ``1/u_c - (1 + s2/(K**(2/D) - 1))``.
    """
    K, D, s2, snr = _K, _D, _s2, _snr
    f = sp.log(K) / D + sp.log(sigma2 / (sigma2 + s2 * alpha**2)) / 2
    f_snr = sp.log(K) / D - sp.log(1 + s2 * snr) / 2
    snr_residual = sp.simplify(f.subs(alpha, sp.sqrt(snr * sigma2)) - f_snr)
    (snr_c,) = sp.solve(sp.Eq(f_snr, 0), snr)
    # OU: snr = u/(1 - u) with u = exp(-2t) in (0, 1).
    u = sp.Symbol("u", positive=True)
    (u_c,) = sp.solve(sp.Eq(u / (1 - u), snr_c), u)
    ou_time = sp.log(1 + s2 / (K ** (2 / D) - 1)) / 2
    # -log(u_c)/2 = log(1/u_c)/2 with 1/u_c = 1 + s2/(K**(2/D) - 1).
    ou_residual = sp.simplify(1 / u_c - (1 + s2 / (K ** (2 / D) - 1)))
    return {
        "excess_entropy": f,
        "excess_entropy_snr": f_snr,
        "snr_c": sp.simplify(snr_c),
        "ou_time": ou_time,
        "symbols": (K, D, s2, snr),
        "residuals": (snr_residual, ou_residual),
    }


def ou_schedule(T: float = 5) -> Schedule:
    """The OU schedule ``alpha = exp(-t)``, ``sigma2 = 1 - exp(-2t)`` of Biroli et al."""
    return Schedule.from_alpha_sigma2(sp.exp(-t), 1 - sp.exp(-2 * t), T=T, name="ou")


# -- code generation ----------------------------------------------------------------------------
_HEADER = '''"""Associative-memory closed forms, GENERATED by theory/memory.py (do not edit).

Regenerate with ``python -m gtv.theory.memory``; a test regenerates this file and fails if it
differs. The circle functions take the exponentially scaled Bessel values
``i0e = I_0(z) exp(-z)`` and ``i1e = I_1(z) exp(-z)`` at ``z = 2 beta R`` as arguments (e.g. from
``scipy.special.i0e``).
"""

import numpy
from numba import njit

'''

_DECORATOR = "@njit(cache=True, error_model='numpy')"


def _generated_functions() -> list[tuple[str, sp.Expr, tuple]]:
    K, D, s2, snr = _K, _D, _s2, _snr
    cc = collapse_condition()
    mt = merge_threshold()
    ce = circle_energy()
    # K**(2/D) - 1 written as exp(2 log K / D) - 1 so that float_safe prints expm1.
    snr_c = cc["snr_c"].replace(
        lambda e: e.is_Pow and e.base == K, lambda e: sp.exp(e.exp * sp.log(K))
    )
    # t_C = log1p(s2 / expm1(2 log K / D)) / 2, accurate both for K**(2/D) - 1 << s2 and >> s2.
    ou = log1p(s2 / expm1(2 * sp.log(K) / D)) / 2
    return [
        ("collapse_snr", snr_c, (K, D, s2)),
        ("collapse_time_ou", ou, (K, D, s2)),
        ("excess_entropy", cc["excess_entropy_snr"], (K, D, s2, snr)),
        ("merge_beta", mt["beta_c"], (_d,)),
        ("merge_snr", mt["snr_c"], (_d,)),
        ("circle_energy_scaled", ce["energy_scaled"], (_R, beta, _i0e)),
        ("circle_radial_score_scaled", ce["radial_score_scaled"], (_R, _i0e, _i1e)),
    ]


def generated_memory_source() -> str:
    """Full text of ``numerics/_generated/memory.py``."""
    parts = [
        function_source(name, expr, args, decorator=_DECORATOR)
        for name, expr, args in _generated_functions()
    ]
    return _HEADER + "\n\n".join(parts)


def generated_memory_path() -> Path:
    """Where the generated module lives in the source tree."""
    return Path(__file__).resolve().parent.parent / "numerics" / "_generated" / "memory.py"


def write_generated_memory(path: Path | None = None) -> Path:
    """Write :func:`generated_memory_source` to ``path`` (default: the package's copy)."""
    path = Path(path) if path is not None else generated_memory_path()
    path.write_text(generated_memory_source())
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m gtv.theory.memory``: regenerate ``numerics/_generated/memory.py``."""
    print(f"wrote {write_generated_memory()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
