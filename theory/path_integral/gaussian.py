"""Gaussian integrals evaluated by sympy (docs/math/path_integral.md).

Every Gaussian integral of the path-integral derivation is a substitution into sympy's own value of
``int exp(-A v**2 + (B_r + i B_i) v) dv`` (:func:`gaussian_rule`), applied one variable at a time
(:func:`gaussian_expectation`), not a quoted formula.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import sympy as sp

__all__ = ["GaussianAverage", "gaussian_expectation", "gaussian_rule"]

_A = sp.Symbol("A", positive=True)
_BR = sp.Symbol("B_r", real=True)
_BI = sp.Symbol("B_i", real=True)


@functools.lru_cache(maxsize=1)
def gaussian_rule() -> tuple[sp.Expr, sp.Expr]:
    """sympy's value of ``int_R exp(-A v**2 + (B_r + i B_i) v) dv``, ``A > 0``, ``B_r, B_i`` real.

    Computed once by :func:`sympy.integrate` (then simplified) and returned split as
    ``(prefactor, exponent)`` with ``value = prefactor * exp(exponent)``; the prefactor depends on
    ``A`` only. Every Gaussian integral in this module is a substitution into this result.
    """
    v = sp.Symbol("v", real=True)
    value = sp.simplify(
        sp.integrate(sp.exp(-_A * v**2 + (_BR + sp.I * _BI) * v), (v, -sp.oo, sp.oo))
    )
    if value.has(sp.Integral, sp.erf, sp.Piecewise):
        raise RuntimeError(f"sympy did not evaluate the Gaussian integral in closed form: {value}")
    pref, expo = sp.Integer(1), sp.Integer(0)
    for f in sp.Mul.make_args(value):
        if isinstance(f, sp.exp):
            expo += f.args[0]
        else:
            pref *= f
    if pref.free_symbols - {_A}:
        raise RuntimeError(f"unexpected form of the Gaussian integral: {value}")
    return pref, expo


def _split_re_im(expr: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    """Real and imaginary parts of an expression linear in ``I`` with real symbols."""
    e = sp.expand(expr)
    im = e.coeff(sp.I)
    re = sp.expand(e - sp.I * im)
    if re.has(sp.I) or im.has(sp.I):
        raise ValueError(f"cannot split {expr} into real and imaginary parts")
    return re, im


@dataclass(frozen=True)
class GaussianAverage:
    """Result ``prefactor * exp(exponent)`` of a Gaussian integral (parts kept apart)."""

    prefactor: sp.Expr
    exponent: sp.Expr

    @property
    def value(self) -> sp.Expr:
        return self.prefactor * sp.exp(self.exponent)


def _integrate_exp_quadratic(exponent: sp.Expr, variables: Sequence[sp.Symbol]) -> GaussianAverage:
    """``int exp(exponent) d variables`` over ``R**n``, one variable at a time (last first).

    ``exponent`` must be a polynomial of degree 2 in each variable, with a negative ``v**2``
    coefficient once the later variables are integrated out (checked with sympy's assumptions).
    """
    rule_pref, rule_expo = gaussian_rule()
    pref = sp.Integer(1)
    expo = sp.expand(exponent)
    for v in reversed(list(variables)):
        coeffs = sp.collect(expo, v, evaluate=False)
        unknown = set(coeffs) - {sp.Integer(1), v, v**2}
        if unknown:
            raise ValueError(
                f"exponent is not quadratic in {v}: terms in {sorted(map(str, unknown))}"
            )
        a = sp.cancel(-coeffs.get(v**2, sp.Integer(0)))
        if a.is_positive is not True:
            raise ValueError(f"the coefficient of -{v}**2 must be provably positive, got {a}")
        br, bi = _split_re_im(coeffs.get(v, sp.Integer(0)))
        sub = {_A: a, _BR: br, _BI: bi}
        pref = pref * rule_pref.subs(_A, a)
        expo = sp.expand(coeffs.get(sp.Integer(1), sp.Integer(0)) + rule_expo.xreplace(sub))
    return GaussianAverage(pref, expo)


def gaussian_expectation(
    exponent: sp.Expr,
    variables: Sequence[sp.Symbol],
    mean: sp.Matrix,
    chol: sp.Matrix,
) -> GaussianAverage:
    """``E[exp(exponent)]`` for ``variables ~ N(mean, chol chol^T)``, by explicit integration.

    The normal density ``exp(-|chol^{-1}(v - mean)|**2 / 2) / ((2 pi)**(n/2) det chol)`` is written
    out and ``exp(exponent) * density`` integrated over ``R**n`` with sympy (see
    :func:`gaussian_rule`). ``chol`` must be lower triangular with provably positive diagonal;
    ``exponent`` at most linear in ``variables`` (for a characteristic function).

    Returns
    -------
    GaussianAverage
        ``prefactor`` (simplified; 1 for a correctly normalized density) and ``exponent``
        (expanded).
    """
    n = len(variables)
    mean = sp.Matrix(mean)
    chol = sp.Matrix(chol)
    if mean.shape != (n, 1) or chol.shape != (n, n):
        raise ValueError(f"mean must be {n}x1 and chol {n}x{n}, got {mean.shape} and {chol.shape}")
    if not chol.is_lower:
        raise ValueError("chol must be lower triangular")
    if any(chol[i, i].is_positive is not True for i in range(n)):
        raise ValueError("chol must have a provably positive diagonal")
    white = chol.inv() * (sp.Matrix(variables) - mean)  # lower-triangular solve, exact
    log_density = -sum((w**2 for w in white), sp.Integer(0)) / 2
    norm = 1 / ((2 * sp.pi) ** sp.Rational(n, 2) * sp.prod([chol[i, i] for i in range(n)]))
    res = _integrate_exp_quadratic(exponent + log_density, variables)
    return GaussianAverage(sp.simplify(norm * res.prefactor), res.exponent)
