"""Integrals over time in closed form (docs/math/closed_forms.md).

The time integrals of the closed forms become rational after a substitution ``u = u(t)``
(``t`` itself, ``alpha_t`` or ``sigma_t**2``, :func:`rationalizing_substitutions`) and are then
integrated by partial fractions with real logarithms (:func:`integrate_rational`).
"""

from __future__ import annotations

import functools

import sympy as sp

from gtv.theory.schedules import Schedule, as_schedule, t

__all__ = [
    "closed_form_integral",
    "integrate_rational",
    "rational_antiderivative",
    "rationalizing_substitutions",
    "real_value",
]


def integrate_rational(expr: sp.Expr, var: sp.Symbol, lo: sp.Expr, hi: sp.Expr) -> sp.Expr:
    """``int_lo^hi expr d var`` for a rational function of ``var``, by partial fractions.

    Terms ``k (p var + q)**n`` are integrated by hand with real logarithms
    (``(k/p) log((p hi + q)/(p lo + q))`` for ``n = -1``), valid when ``p var + q`` has no zero in
    ``[lo, hi]`` (true whenever the integrand is finite there); other terms (irreducible quadratic
    denominators) go to :func:`sympy.integrate`. Much faster than ``integrate`` on the whole
    expression when the coefficients contain parameters, and free of ``log(negative)`` branches.
    """
    expr = sp.together(sp.sympify(expr))
    if not expr.is_rational_function(var):
        raise ValueError(f"expr must be a rational function of {var}, got {expr}")
    total = sp.Integer(0)
    for term in sp.Add.make_args(sp.apart(expr, var)):
        coeff, rest = term.as_independent(var, as_Add=False)
        if rest == 1:
            total += coeff * (hi - lo)
            continue
        base, n = rest.as_base_exp()
        if n.is_Integer and base.is_polynomial(var) and sp.degree(base, var) == 1:
            p = base.coeff(var, 1)
            b_hi, b_lo = base.subs(var, hi), base.subs(var, lo)
            if n == -1:
                total += coeff / p * sp.log(b_hi / b_lo)
            else:
                total += coeff / (p * (n + 1)) * (b_hi ** (n + 1) - b_lo ** (n + 1))
            continue
        total += sp.integrate(term, (var, lo, hi), conds="none")
    return total


@functools.lru_cache(maxsize=64)
def rationalizing_substitutions(sch: Schedule) -> tuple[tuple[sp.Expr, sp.Symbol, sp.Expr], ...]:
    """Candidate integration variables ``u = u(t)`` with the inverse ``t(u)``.

    ``t`` itself, ``u = alpha_t`` and ``u = sigma_t**2`` (where sympy can invert them and the
    inverse reproduces ``t`` at a test time). E.g. ``linear-variance`` becomes rational in
    ``u = alpha = sqrt(1 - t)`` and ``ve`` in ``u = sigma**2``.
    """
    out = [(t, t, t)]
    t_test = sp.Rational(1, 3) * sch.T
    for name, expr in (("alpha", sch.alpha), ("sigma2", sch.sigma2)):
        if not expr.has(t):
            continue
        u = sp.Dummy(f"u_{name}", positive=True)
        try:
            sols = sp.solve(sp.Eq(expr, u), t)
        except NotImplementedError:  # pragma: no cover - depends on sympy
            continue
        for sol in sols:
            back = sol.subs(u, expr.subs(t, t_test))
            if abs(complex(sp.N(back - t_test, 30))) < 1e-20:
                out.append((expr, u, sol))
    return tuple(out)


def closed_form_integral(
    integrand: sp.Expr, schedule: Schedule | str, lo: object, hi: object
) -> sp.Expr:
    """``int_lo^hi integrand(t) dt`` in closed form, or an unevaluated ``Integral``.

    Tries the variables of :func:`rationalizing_substitutions` in turn and integrates the first
    rational form with :func:`integrate_rational`. Other symbols in ``integrand`` are parameters.
    """
    sch = as_schedule(schedule)
    lo, hi = sp.sympify(lo), sp.sympify(hi)
    integrand = sp.sympify(integrand)
    for u_of_t, u, t_of_u in rationalizing_substitutions(sch):
        if u is t:
            f = integrand
        else:
            f = integrand.subs(t, t_of_u) * sp.diff(t_of_u, u)
        f = sp.cancel(sp.together(sp.powsimp(f, force=True)))
        if f.is_rational_function(u):
            return integrate_rational(f, u, u_of_t.subs(t, lo), u_of_t.subs(t, hi))
    return sp.Integral(integrand, (t, lo, hi))


def real_value(expr: sp.Expr, digits: int) -> sp.Expr:
    """Numeric value with ``digits`` significant digits (mpmath quadrature for ``Integral``).

    Closed forms of real quantities can evaluate with a round-off imaginary part (e.g.
    ``1e-38 I`` at 30 digits); one below ``10**(5 - digits)`` of the magnitude is dropped, a
    larger one raises.
    """
    val = sp.N(expr, digits)
    if val.is_number and not val.is_real:
        re, im = val.as_real_imag()
        if abs(im) > sp.Float(10) ** (5 - digits) * max(1, abs(re)):
            raise ValueError(f"expected a real value, got {val}")
        val = re
    return val


def rational_antiderivative(expr: sp.Expr, var: sp.Symbol, at: sp.Expr) -> sp.Expr:
    """An antiderivative of a rational function, real near ``var = at`` (``log |p var + q|``
    written as ``log(+-(p var + q))`` with the sign it has at ``at``)."""
    total = sp.Integer(0)
    for term in sp.Add.make_args(sp.apart(sp.together(expr), var)):
        coeff, rest = term.as_independent(var, as_Add=False)
        base, n = rest.as_base_exp()
        if n == -1 and base.is_polynomial(var) and sp.degree(base, var) == 1:
            sign = 1 if sp.N(base.subs(var, at)) > 0 else -1
            total += coeff / base.coeff(var, 1) * sp.log(sign * base)
        else:
            total += sp.integrate(term, var)
    return total
