"""Serial reproduction with a Gaussian prior and Gaussian noise: the chain is AR(1) (sympy).

One serial-reproduction step (Xu & Griffiths 2010; Marjieh et al. 2023): a state ``x`` with prior
``N(mu0, s0^2)`` is observed through Gaussian noise, ``xh ~ N(x, s^2)``, and reproduced by
sampling the posterior, ``x' ~ p(x | xh)``. :func:`gaussian_serial_reproduction` derives with
sympy that

* the observation's marginal is ``N(mu0, s0^2 + s^2)``;
* the posterior is Gaussian with mean ``mu0 + lam (xh - mu0)`` and variance ``lam s^2``, where
  ``lam = s0^2 / (s0^2 + s^2)``;
* the transition ``x -> x'`` has the conditional mean ``mu0 + lam (x - mu0)``, linear in ``x``,
  and the conditional variance ``lam s^2 (1 + lam)``, independent of ``x``: the chain is the AR(1)
  process ``x' - mu0 = lam (x - mu0) + sqrt(lam s^2 (1 + lam)) eta`` with coefficient ``lam``;
* its stationary variance, the fixed point of ``v = lam^2 v + lam s^2 (1 + lam)``, is ``s0^2``;
  and the prior is invariant: ``integral T(x' | x) p(x) dx = p(x')`` for the transition density
  ``T(x' | x) = integral p(x' | xh) p(xh | x) dxh``.

Every integral is an integral of ``poly(v) exp(-A v^2 + B v + C)`` over the real line, evaluated by
substituting ``A, B, C`` into sympy's own value of ``integral exp(-A v^2 + B v) dv`` (computed
once by ``sympy.integrate``) and its derivatives in ``B``, which give the moments ``v^k``
(:func:`moment_rules`), not a typed formula.
The numerics (:class:`gtv.numerics.serial.SerialReproduction`) match the coefficient on a fine 1-D
grid (tests/theory/test_serial.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import sympy as sp

__all__ = [
    "GaussianForm",
    "GaussianSerialReproduction",
    "ar1_coefficient",
    "gaussian_integral",
    "gaussian_serial_reproduction",
    "moment_rules",
    "mu0",
    "s",
    "s0",
    "x",
    "xh",
    "xp",
]

x, xh, xp = sp.symbols("x xh xp", real=True)
mu0 = sp.Symbol("mu0", real=True)
s0, s = sp.symbols("s0 s", positive=True)
_A = sp.Symbol("A", positive=True)
_B = sp.Symbol("B", real=True)
_V = sp.Symbol("v", real=True)


@cache
def moment_rules() -> tuple[sp.Expr, sp.Expr, sp.Expr]:
    """``integral_R v^k exp(-A v^2 + B v) dv`` for ``k = 0, 1, 2`` (``A > 0``, ``B`` real).

    ``k = 0`` is sympy's own value of the integral; the moments are its derivatives in ``B``
    (differentiation under the integral sign), also taken by sympy.
    """
    val = sp.simplify(sp.integrate(sp.exp(-_A * _V**2 + _B * _V), (_V, -sp.oo, sp.oo)))
    if val.has(sp.Integral, sp.erf, sp.Piecewise):
        raise RuntimeError(f"sympy did not evaluate the Gaussian integral in closed form: {val}")
    return tuple(sp.factor(sp.diff(val, _B, k)) for k in range(3))


@dataclass(frozen=True)
class GaussianForm:
    """``prefactor * exp(exponent)``: a (possibly unnormalised) Gaussian density, kept in parts."""

    prefactor: sp.Expr
    exponent: sp.Expr

    @classmethod
    def normal(cls, var: sp.Expr, mean: sp.Expr, sd: sp.Expr) -> GaussianForm:
        """The density of ``N(mean, sd^2)`` at ``var``."""
        return cls(1 / sp.sqrt(2 * sp.pi * sd**2), -((var - mean) ** 2) / (2 * sd**2))

    def __mul__(self, other: GaussianForm) -> GaussianForm:
        return GaussianForm(self.prefactor * other.prefactor, self.exponent + other.exponent)

    def __truediv__(self, other: GaussianForm) -> GaussianForm:
        return GaussianForm(self.prefactor / other.prefactor, self.exponent - other.exponent)

    @property
    def value(self) -> sp.Expr:
        return self.prefactor * sp.exp(self.exponent)

    def equals(self, other: GaussianForm) -> bool:
        """Same function: equal exponents and equal prefactors (both positive, so compared
        through the square of their ratio, a rational function once the roots are squared)."""
        if sp.cancel(sp.together(sp.expand(self.exponent - other.exponent))) != 0:
            return False
        ratio2 = sp.powsimp(
            sp.expand_power_base((self.prefactor / other.prefactor) ** 2, force=True)
        )
        return sp.cancel(sp.together(ratio2)) == 1


def gaussian_integral(poly: sp.Expr, form: GaussianForm, var: sp.Symbol) -> GaussianForm:
    """``integral_R poly(var) * form dvar`` for a polynomial of degree <= 2 in ``var``.

    The exponent must be quadratic in ``var`` with a provably negative ``var^2`` coefficient.
    Returns the result as a :class:`GaussianForm` in the remaining symbols.
    """
    expo = sp.expand(form.exponent)
    coeffs = sp.collect(expo, var, evaluate=False)
    if set(coeffs) - {sp.Integer(1), var, var**2}:
        raise ValueError(f"exponent is not quadratic in {var}: {expo}")
    a = sp.factor(sp.cancel(-coeffs.get(var**2, sp.Integer(0))))
    if a.is_positive is not True:
        raise ValueError(f"the coefficient of -{var}**2 must be provably positive, got {a}")
    b = coeffs.get(var, sp.Integer(0))
    c = coeffs.get(sp.Integer(1), sp.Integer(0))
    pc = sp.Poly(sp.expand(poly), var)
    if pc.degree() > 2:
        raise ValueError(f"poly must have degree <= 2 in {var}, got {pc.degree()}")
    rules = moment_rules()
    total = sp.Integer(0)
    for (k,), ck in pc.terms():
        total += ck * rules[k].subs({_A: a, _B: b}, simultaneous=True)
    # every rule is (algebraic prefactor) * exp(B^2 / (4 A)); split it off
    gauss = sp.exp(b**2 / (4 * a))
    pref = sp.simplify(total / gauss)
    if pref.has(sp.exp):
        raise RuntimeError(f"unexpected form of the Gaussian integral: {total}")
    return GaussianForm(pref * form.prefactor, sp.expand(c + b**2 / (4 * a)))


def ar1_coefficient() -> sp.Expr:
    """The closed form ``lam = s0^2 / (s0^2 + s^2)`` that the derivation must reproduce."""
    return s0**2 / (s0**2 + s**2)


@dataclass(frozen=True)
class GaussianSerialReproduction:
    """The derived quantities of the Gaussian serial-reproduction step (module docstring)."""

    marginal: GaussianForm  # p(xh)
    posterior: GaussianForm  # p(x | xh)
    posterior_mean: sp.Expr
    posterior_variance: sp.Expr
    transition_mean: sp.Expr  # E[x' | x]
    transition_variance: sp.Expr  # Var[x' | x]
    coefficient: sp.Expr  # lam = d E[x' | x] / dx
    stationary_variance: sp.Expr  # fixed point of v = lam^2 v + Var[x' | x]
    transition_density: GaussianForm  # T(x' | x)
    pushed_prior: GaussianForm  # integral T(x' | x) p(x) dx

    def residuals(self) -> dict[str, sp.Expr]:
        """Differences from the closed forms (each is 0; forms compare as 0 if equal, else 1)."""
        lam = ar1_coefficient()
        marginal = GaussianForm.normal(xh, mu0, sp.sqrt(s0**2 + s**2))
        prior = GaussianForm.normal(xp, mu0, s0)
        return {
            "marginal": sp.Integer(0 if self.marginal.equals(marginal) else 1),
            "posterior_mean": sp.simplify(self.posterior_mean - (mu0 + lam * (xh - mu0))),
            "posterior_variance": sp.simplify(self.posterior_variance - lam * s**2),
            "transition_mean": sp.simplify(self.transition_mean - (mu0 + lam * (x - mu0))),
            "transition_variance": sp.simplify(self.transition_variance - lam * s**2 * (1 + lam)),
            "coefficient": sp.simplify(self.coefficient - lam),
            "stationary_variance": sp.simplify(self.stationary_variance - s0**2),
            "prior_invariance": sp.Integer(0 if self.pushed_prior.equals(prior) else 1),
        }


@cache
def gaussian_serial_reproduction() -> GaussianSerialReproduction:
    """Derive the Gaussian serial-reproduction step with sympy (cached; a few seconds)."""
    prior = GaussianForm.normal(x, mu0, s0)
    noise = GaussianForm.normal(xh, x, s)  # p(xh | x)
    marginal = gaussian_integral(sp.Integer(1), noise * prior, x)
    posterior = noise * prior / marginal
    norm = gaussian_integral(sp.Integer(1), posterior, x).value
    post_mean = sp.simplify(gaussian_integral(x, posterior, x).value / norm)
    post_second = sp.simplify(gaussian_integral(x**2, posterior, x).value / norm)
    post_var = sp.simplify(post_second - post_mean**2)
    # the transition: xh ~ N(x, s^2), then x' ~ p(. | xh); moments by the tower rule
    trans_mean = sp.simplify(gaussian_integral(post_mean, noise, xh).value)
    trans_second = sp.simplify(gaussian_integral(post_var + post_mean**2, noise, xh).value)
    trans_var = sp.simplify(trans_second - trans_mean**2)
    lam = sp.simplify(sp.diff(trans_mean, x))
    v = sp.Symbol("v", positive=True)
    (stat_var,) = sp.solve(sp.Eq(v, lam**2 * v + trans_var), v)
    # the full transition density T(x' | x) and the prior pushed through it
    posterior_at_xp = GaussianForm(posterior.prefactor.subs(x, xp), posterior.exponent.subs(x, xp))
    transition = gaussian_integral(sp.Integer(1), posterior_at_xp * noise, xh)
    pushed = gaussian_integral(sp.Integer(1), transition * prior, x)
    return GaussianSerialReproduction(
        marginal=marginal,
        posterior=posterior,
        posterior_mean=post_mean,
        posterior_variance=post_var,
        transition_mean=trans_mean,
        transition_variance=trans_var,
        coefficient=lam,
        stationary_variance=sp.simplify(stat_var),
        transition_density=transition,
        pushed_prior=pushed,
    )
