"""Semiclassical (small-kappa) density of the naive estimator, derived with sympy.

The mathematics is the section "The semiclassical formula" of docs/math/predictions.md. For the
naive estimator's reverse SDE ``dx = b dt + sqrt(kappa) g dW`` (``b = -beta x - D s``,
``g**2 = D**2 C``, docs/math/naive_estimator.md) the path integral is expanded to second order
around the noise-free path that ends at ``x`` at ``t = eps``. Four results are derived here:

* :func:`posterior_identities`: for a Gaussian mixture (point masses are the case of zero
  component variance) the score is ``(alpha m - x)/sigma**2`` and ``dm/dx = alpha v/sigma**2``
  (``m``, ``v``: posterior mean and variance of the clean point), so the slope of the drift and the
  noise are *linear in v*: ``b' = pf_x_coeff - slope_var v`` and ``g**2 = noise_var v``
  (:func:`jacobi_coefficients`, :func:`jacobi_coefficients_from_theory`);
* :func:`fluctuation_variance_rate`: the variance of the path's start produced by the noise along
  it, per unit kappa, ``A(t) = int_eps^t g**2 exp(2 int_s^t b') ds``, obeys
  ``dA/dt = g**2 + 2 b' A`` (the Jacobi/variance equation, integrated from ``eps`` to ``T``);
* :func:`semiclassical_factor`: the Gaussian integral over the start point ``x_T`` of the
  start density ``N(0, s_T2)`` against the fluctuation Gaussian ``N(x_T; y, kappa A)`` divided by
  ``N(y; 0, s_T2)``: a determinant ``(1 + kappa A / s_T2)**(-1/2)`` times an exponential tilt.

:func:`generated_semiclassical_source` prints the coefficients and the log of the factor with
:func:`gtv.theory.codegen.function_source` into ``numerics/_generated/semiclassical.py``
(regenerate with ``python -m gtv.theory.path_integral.semiclassical``; a golden test diffs it).
"""

from __future__ import annotations

import sys
from pathlib import Path

import sympy as sp

from gtv.theory.codegen import function_source
from gtv.theory.path_integral.continuum import effective_drift
from gtv.theory.path_integral.naive import naive_effective_sde
from gtv.theory.path_integral.symbols import kappa, x
from gtv.theory.schedules import SCHEDULE_NAMES, Schedule, as_schedule, named_schedule, t

__all__ = [
    "JACOBI_NAMES",
    "fluctuation_variance_rate",
    "generated_semiclassical_path",
    "generated_semiclassical_source",
    "jacobi_coefficients",
    "jacobi_coefficients_from_theory",
    "posterior_identities",
    "semiclassical_factor",
    "write_generated_semiclassical",
]

#: Coefficients of the Jacobi equation generated per schedule: ``b' = pf_x_coeff - slope_var v``,
#: ``g**2 = D**2 C = noise_var v`` (``v`` the posterior variance of the clean point).
JACOBI_NAMES = ("slope_var", "noise_var")

#: Posterior variance of the clean point (a symbol standing for ``Var[x0 | x, t]``).
_v = sp.Symbol("v", nonnegative=True)
#: Arguments of the generated log-factor: end point's start ``y``, variance ``A``, ``kappa``,
#: start variance ``s_T2``.
_y = sp.Symbol("y", real=True)
_A = sp.Symbol("A", nonnegative=True)
_sT2 = sp.Symbol("sT2", positive=True)


def posterior_identities(n_components: int = 2) -> dict[str, sp.Expr]:
    """Residuals of the two posterior identities for an ``n_components`` Gaussian mixture.

    Data ``x0 ~ sum_k w_k N(mu_k, s_k)`` noised to ``p(x|t) = sum_k w_k N(alpha mu_k,
    alpha**2 s_k + sigma2)``; the posterior of ``x0`` has mean ``m`` and variance ``v`` (law of
    total variance over the components). The Gaussian factors are kept as undefined functions
    ``g_k(x)`` with ``g_k' = -(x - alpha mu_k)/(alpha**2 s_k + sigma2) g_k``, so the check holds
    for every ``x`` and every parameter value.

    Returns
    -------
    dict
        ``"score"``: ``d log p/dx - (alpha m - x)/sigma2``; ``"mean_slope"``:
        ``dm/dx - alpha v / sigma2``. Both cancel to 0.
    """
    if not (isinstance(n_components, int) and n_components >= 1):
        raise ValueError(f"n_components must be a positive integer, got {n_components!r}")
    a, s2 = sp.symbols("alpha sigma2", positive=True)
    mus = sp.symbols(f"mu0:{n_components}", real=True)
    svar = sp.symbols(f"s0:{n_components}", nonnegative=True)
    ws = sp.symbols(f"w0:{n_components}", positive=True)
    vk = [a**2 * s + s2 for s in svar]
    g = [sp.Function(f"g{k}")(x) for k in range(n_components)]
    rule = {sp.Derivative(g[k], x): -(x - a * mus[k]) / vk[k] * g[k] for k in range(n_components)}
    p = sum(w * gk for w, gk in zip(ws, g, strict=True))
    r = [w * gk / p for w, gk in zip(ws, g, strict=True)]
    mk = [mus[k] + a * svar[k] * (x - a * mus[k]) / vk[k] for k in range(n_components)]
    ck = [svar[k] * s2 / vk[k] for k in range(n_components)]
    m = sum(rk * mkk for rk, mkk in zip(r, mk, strict=True))
    v = sum(rk * (c + mkk**2) for rk, c, mkk in zip(r, ck, mk, strict=True)) - m**2
    plain = {gk: sp.Symbol(f"G{k}", positive=True) for k, gk in enumerate(g)}

    def residual(expr):
        return sp.cancel(sp.together(expr.subs(rule).subs(plain)))

    return {
        "score": residual(sp.diff(p, x) / p - (a * m - x) / s2),
        "mean_slope": residual(sp.diff(m, x) - a * v / s2),
    }


def jacobi_coefficients_from_theory(schedule: Schedule | str) -> dict[str, sp.Expr]:
    """The Jacobi coefficients derived from the drift and the naive V-kernel.

    ``b = -beta x - D s`` with ``s = (alpha m(x) - x)/sigma**2`` (:func:`posterior_identities`);
    ``b'`` is differentiated by sympy with ``m' = alpha v/sigma**2`` substituted, and
    ``slope_var = -d b'/dv``. The noise comes from
    :func:`gtv.theory.path_integral.naive_effective_sde` with ``C = alpha**2 v/sigma**4``:
    ``noise_var = Q / (kappa v)``.

    Returns
    -------
    dict
        ``"pf_x_coeff"`` (``b'`` at ``v = 0``), ``"slope_var"``, ``"noise_var"``: expressions in t.
    """
    sch = as_schedule(schedule)
    m = sp.Function("m")(x)
    score = (sch.alpha * m - x) / sch.sigma2
    slope = sp.diff(effective_drift(sch, score), x)
    slope = slope.subs(sp.Derivative(m, x), sch.alpha * _v / sch.sigma2)
    proxy = sch.alpha**2 / sch.sigma2**2 * _v
    noise = naive_effective_sde(sch, score, proxy).noise
    return {
        "pf_x_coeff": slope.subs(_v, 0),
        "slope_var": -sp.diff(slope, _v),
        "noise_var": sp.cancel(noise / (kappa * _v)),
    }


def jacobi_coefficients(schedule: Schedule | str) -> dict[str, sp.Expr]:
    """The Jacobi coefficients written with the schedule's simplified quantities.

    ``slope_var = pf_mean_coeff * score_mean_coeff`` (``D alpha**2/sigma**4``) and
    ``noise_var = D**2 proxy_cov_scale`` (``D**2 alpha**2/sigma**4``), the forms that are printed;
    equal to :func:`jacobi_coefficients_from_theory` (tested).
    """
    sch = as_schedule(schedule)
    return {
        "pf_x_coeff": sch.quantity("pf_x_coeff"),
        "slope_var": sch.quantity("pf_mean_coeff") * sch.quantity("score_mean_coeff"),
        "noise_var": sch.diffusion**2 * sch.quantity("proxy_cov_scale"),
    }


def fluctuation_variance_rate() -> dict[str, sp.Expr]:
    """``dA/dt`` of ``A(t) = int_eps^t g2(s) exp(2 int_s^t b1(r) dr) ds``, by sympy.

    ``b1`` (the slope ``b'`` along the path) and ``g2`` (``D**2 C`` along it) are undefined
    functions. A noise kick ``dW`` at time ``s`` moves the path's position at ``t > s`` by
    ``exp(int_s^t b1)`` times the kick (the linearized flow, run towards larger ``t``); ``A(t)`` is
    the variance that the kicks in ``[eps, t]`` give the position at ``t``, per unit kappa.

    Returns
    -------
    dict
        ``"A"`` (the integral), ``"rate"`` (its derivative) and ``"residual"`` =
        ``rate - (g2 + 2 b1 A)``, which simplifies to 0.
    """
    s, r = sp.symbols("s r", positive=True)
    eps = sp.Symbol("epsilon", positive=True)
    b1, g2 = sp.Function("b1"), sp.Function("g2")
    A = sp.Integral(g2(s) * sp.exp(2 * sp.Integral(b1(r), (r, s, t))), (s, eps, t))
    rate = sp.diff(A, t)
    return {"A": A, "rate": rate, "residual": sp.simplify(rate - (g2(t) + 2 * b1(t) * A))}


def semiclassical_factor() -> dict[str, sp.Expr]:
    """The start-point integral of the semiclassical formula, by sympy.

    ``F = int N(z; 0, sT2) N(z; y, kappa A) dz / N(y; 0, sT2)``: the Gaussian start density
    against the Gaussian fluctuation of the start point ``z = x_T`` around the classical start
    ``y``. Its Hessian in ``z`` is ``1/sT2 + 1/(kappa A)`` (``(1/kappa) d2 S_cl/dz2`` plus the
    start density's), and ``F = det * tilt`` with ``det = (1 + kappa A/sT2)**(-1/2)`` (a ratio of
    Gaussian normalisations) and ``tilt = exp(kappa A y**2 / (2 sT2 (sT2 + kappa A)))``.

    Returns
    -------
    dict
        ``"factor"`` (the integral, simplified), ``"det"``, ``"tilt"``, ``"log_factor"``
        (``log det + log tilt``, the printed form) and ``"symbols"`` ``(y, A, kappa, sT2)``.
    """
    z = sp.Symbol("z", real=True)

    def normal(u, mean, var):
        return sp.exp(-((u - mean) ** 2) / (2 * var)) / sp.sqrt(2 * sp.pi * var)

    integrand = normal(z, 0, _sT2) * normal(z, _y, kappa * _A)
    integral = sp.integrate(integrand, (z, -sp.oo, sp.oo), conds="none")
    factor = sp.simplify(integral / normal(_y, 0, _sT2))
    det, tilt = _det_and_tilt()
    return {
        "factor": factor,
        "det": det,
        "tilt": tilt,
        "log_factor": _log_factor(),
        "symbols": (_y, _A, kappa, _sT2),
    }


def _det_and_tilt() -> tuple[sp.Expr, sp.Expr]:
    det = (1 + kappa * _A / _sT2) ** sp.Rational(-1, 2)
    tilt = sp.exp(kappa * _A * _y**2 / (2 * _sT2 * (_sT2 + kappa * _A)))
    return det, tilt


def _log_factor() -> sp.Expr:
    """``log det + log tilt``, with ``log(1 + kappa A/sT2)`` (printed as ``log1p``)."""
    return -sp.log(1 + kappa * _A / _sT2) / 2 + kappa * _A * _y**2 / (
        2 * _sT2 * (_sT2 + kappa * _A)
    )


# -- code generation ----------------------------------------------------------------------------
_HEADER = '''"""Semiclassical coefficients, GENERATED by theory/path_integral/semiclassical.py (do not edit).

Regenerate with ``python -m gtv.theory.path_integral.semiclassical``; a test regenerates this file
and fails if it differs. Per schedule: ``slope_var(t)`` and ``noise_var(t)`` with
``b' = pf_x_coeff - slope_var v`` and ``D**2 C = noise_var v`` (``v`` the posterior variance of
the clean point); ``log_factor(y, A, kappa, sT2)`` is the log of the start-point factor
(docs/math/predictions.md, "The semiclassical formula").
"""

import numpy
from numba import njit

'''  # noqa: E501 (the header of the generated file)

_DECORATOR = "@njit(cache=True, error_model='numpy')"


def _prefix(name: str) -> str:
    return name.replace("-", "_")


def generated_semiclassical_source() -> str:
    """Full text of ``numerics/_generated/semiclassical.py``."""
    blocks = [_HEADER]
    blocks.append(
        function_source(
            "log_factor",
            _log_factor(),
            (_y, _A, kappa, _sT2),
            decorator=_DECORATOR,
        )
    )
    blocks.append("\n\n")
    registry = ["JACOBI = {"]
    for name in SCHEDULE_NAMES:
        coeffs = jacobi_coefficients(named_schedule(name))
        blocks.append(f"# --- {name} " + "-" * (90 - len(name)) + "\n\n")
        parts = [
            function_source(f"{_prefix(name)}_{q}", coeffs[q], decorator=_DECORATOR)
            for q in JACOBI_NAMES
        ]
        blocks.append("\n\n".join(parts))
        blocks.append("\n\n")
        entries = ", ".join(f'"{q}": {_prefix(name)}_{q}' for q in JACOBI_NAMES)
        registry.append(f'    "{name}": {{{entries}}},')
    registry.append("}")
    return "".join(blocks) + "\n".join(registry) + "\n"


def generated_semiclassical_path() -> Path:
    """Where the generated module lives in the source tree."""
    root = Path(__file__).resolve().parent.parent.parent
    return root / "numerics" / "_generated" / "semiclassical.py"


def write_generated_semiclassical(path: Path | None = None) -> Path:
    """Write :func:`generated_semiclassical_source` to ``path`` (default: the package's copy)."""
    path = Path(path) if path is not None else generated_semiclassical_path()
    path.write_text(generated_semiclassical_source())
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m gtv.theory.path_integral.semiclassical``: regenerate the generated module."""
    print(f"wrote {write_generated_semiclassical()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
