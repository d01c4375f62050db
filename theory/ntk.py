"""Infinite-width kernels of a two-layer network and the lazy-training integrals.

The mathematics is docs/math/kernel.md.

Network and kernels
-------------------
Inputs ``z in R^{d_in}`` (``d_in = D + 2``, :func:`gtv.numerics.kernel.inputs.ntk_inputs`), NTK
parameterization without separate biases:
``u_i = w_i . z / sqrt(d_in)``, ``D^(z) = (1/sqrt(n)) sum_i a_i sigma(u_i)`` with
``w_i ~ N(0, I_{d_in})``, ``a_i ~ N(0, I_D)``. For two inputs the pre-activations of one unit are
jointly Gaussian, ``(u, u') ~ N(0, [[a, c], [c, b]])`` with

    ``a = z.z / d_in``,  ``b = z'.z' / d_in``,  ``c = z.z' / d_in``,

and, as ``n -> infinity`` (output dimensions independent, ``Theta (x) I_D``):

* NNGP ``K(z, z') = E[sigma(u) sigma(u')]``;
* derivative kernel ``Kdot(z, z') = E[sigma'(u) sigma'(u')]``;
* NTK ``Theta = K + c Kdot`` (the ``a_i``-gradients give ``K``, the ``w_i``-gradients give
  ``(z.z'/d_in) a_i a_i^T sigma'(u_i) sigma'(u_i')``, whose mean over ``a_i`` is ``c Kdot I_D``).

Closed forms (derived below; ``theta`` is the angle between ``z`` and ``z'``, so
``cos theta = c / sqrt(a b)``):

* ReLU (arc-cosine kernels of order 1 and 0, Cho & Saul 2009):
  ``K = (sqrt(a b) sin theta + (pi - theta) c) / (2 pi)``, ``Kdot = (pi - theta) / (2 pi)``;
* erf (Williams 1997): ``K = (2/pi) asin(2 c / sqrt((1 + 2a)(1 + 2b)))``,
  ``Kdot = (4/pi) / sqrt((1 + 2a)(1 + 2b) - 4 c**2) = (4/pi) det(I + 2 Sigma)^(-1/2)``.

Derivations (each function returns sympy objects that a test simplifies)
------------------------------------------------------------------------
* :func:`relu_expectations`: ``u = sqrt(a) xi_1``, ``u' = sqrt(b)(cos theta xi_1 + sin theta xi_2)``
  with ``xi ~ N(0, I_2)``; in polar coordinates ``xi = r (cos phi, sin phi)`` both units are active
  on the wedge ``theta - pi/2 < phi < pi/2``; sympy does the radial integrals
  (``int r**3 e^{-r**2/2} = 2``, ``int r e^{-r**2/2} = 1``) and the angular ones.
* :func:`gaussian_quadratic_integral`: ``int_{R^2} exp(-xi^T A xi / 2) = 2 pi / sqrt(det A)``
  (sympy, completing the square), used by :func:`erf_derivative_expectation`:
  ``E[exp(-u**2 - u'**2)] = det(I + 2 L^T L)^(-1/2) = det(I + 2 Sigma)^(-1/2)`` with
  ``Sigma = L L^T`` (Cholesky factor ``L``, written out symbolically).
* :func:`price_checks`: Price's theorem ``d/dc E[f(u) f(u')] = E[f'(u) f'(u')]`` ties the pairs
  together. For erf it *derives* ``K``: ``K(c = 0) = E[erf(u)]**2 = 0`` (odd integrand, sympy),
  and ``(2/pi) asin(.)`` has derivative ``Kdot`` in ``c``, so ``K = int_0^c Kdot``. For ReLU it
  is a consistency check (``dK/dc = Kdot`` and ``K(c = 0) = E[relu(u)] E[relu(u')]``).

Lazy-training integrals
-----------------------
With eigenvalues ``x = s + rho`` of the (ridge-shifted) normalized weighted kernel operator and
``phi(x) = exp(-eta tau x)`` (gradient flow) or ``(1 - eta x)**k`` (``k = tau / eta`` steps of
gradient descent), every time integral of the first-order theory
(:mod:`gtv.numerics.kernel.theory`) is a divided difference of ``phi`` at ``0``:

* the filter ``g(x) = eta int_0^tau exp(-eta (tau - u) x) du = -phi[0, x]``;
* the response to a source that itself relaxes with rate ``y``:
  ``I(x, y) = eta int_0^tau exp(-eta (tau - u) x) g_u(y) du = phi[0, x, y]``
  (:func:`gradient_flow_integrals`, sympy, and the discrete-time sum
  :func:`gradient_descent_sums`).

Code generation
---------------
:func:`generated_ntk_source` writes ``numerics/_generated/ntk.py`` (regenerate with
``python -m gtv.theory.ntk``): one ``@njit`` function per activation and kernel, each of the
arguments ``(a, b, c, theta, sin_theta)`` (``sin(theta)`` is replaced by the argument
``sin_theta``; erf uses only ``a, b, c``). The numerics compute ``theta`` stably from the unit
vectors ``u, v`` (``theta = 2 atan2(|u - v|, |u + v|)``, ``sin theta = |u - v| |u + v| / 2``),
never as ``arccos`` of a rounded cosine. A golden test regenerates the file and diffs.
"""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

import sympy as sp

from gtv.theory.codegen import function_source

__all__ = [
    "ACTIVATIONS",
    "KERNEL_NAMES",
    "a",
    "b",
    "c",
    "erf_derivative_expectation",
    "generated_ntk_path",
    "generated_ntk_source",
    "gaussian_quadratic_integral",
    "gradient_descent_sums",
    "gradient_flow_integrals",
    "kernel_expression",
    "price_checks",
    "relu_expectations",
    "sin_theta",
    "theta",
    "write_generated_ntk",
]

#: Activations with closed-form kernels.
ACTIVATIONS = ("relu", "erf")
#: Kernels generated per activation: NNGP, derivative kernel, NTK.
KERNEL_NAMES = ("nngp", "derivative", "ntk")

#: ``a = z.z/d_in``, ``b = z'.z'/d_in`` (> 0 with the bias coordinate), ``c = z.z'/d_in``.
a, b = sp.symbols("a b", positive=True)
c = sp.Symbol("c", real=True)
#: Angle between ``z`` and ``z'`` (``0 <= theta <= pi``).
theta = sp.Symbol("theta", nonnegative=True)

#: ``sin(theta)``, passed to the generated functions (the numerics get it without a ``sin`` call).
sin_theta = sp.Symbol("sin_theta", nonnegative=True)

_r, _phi = sp.symbols("r phi", real=True)
_ARGS = (a, b, c, theta, sin_theta)


# -- closed forms -------------------------------------------------------------------------------
def kernel_expression(activation: str, kernel: str) -> sp.Expr:
    """Closed form of ``kernel`` in ``(a, b, c, theta)`` (module docstring).

    Parameters
    ----------
    activation : {"relu", "erf"}
    kernel : {"nngp", "derivative", "ntk"}
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    if kernel not in KERNEL_NAMES:
        raise ValueError(f"kernel must be one of {KERNEL_NAMES}, got {kernel!r}")
    if activation == "relu":
        nngp = (sp.sqrt(a * b) * sp.sin(theta) + (sp.pi - theta) * c) / (2 * sp.pi)
        deriv = (sp.pi - theta) / (2 * sp.pi)
    else:
        det = (1 + 2 * a) * (1 + 2 * b)
        nngp = 2 / sp.pi * sp.asin(2 * c / sp.sqrt(det))
        deriv = 4 / sp.pi / sp.sqrt(det - 4 * c**2)
    return {"nngp": nngp, "derivative": deriv, "ntk": nngp + c * deriv}[kernel]


# -- derivations --------------------------------------------------------------------------------
@cache
def relu_expectations() -> dict:
    """``E[relu(u) relu(u')]`` and ``E[H(u) H(u')]`` by explicit polar integration (sympy).

    Returns ``{"nngp": ..., "derivative": ...}`` in ``(a, b, theta)`` with ``cos theta =
    c/sqrt(a b)`` (``H`` is the step function, ``relu' = H``).
    """
    # u = sqrt(a) r cos(phi), u' = sqrt(b) r cos(phi - theta); both > 0 on the wedge below.
    lo, hi = theta - sp.pi / 2, sp.pi / 2
    gauss = sp.exp(-(_r**2) / 2) / (2 * sp.pi)
    radial1 = sp.integrate(_r**3 * gauss, (_r, 0, sp.oo))
    radial0 = sp.integrate(_r * gauss, (_r, 0, sp.oo))
    ang1 = sp.integrate(sp.cos(_phi) * sp.cos(_phi - theta), (_phi, lo, hi))
    ang0 = sp.integrate(sp.Integer(1), (_phi, lo, hi))
    return {
        "nngp": sp.simplify(sp.sqrt(a * b) * radial1 * ang1),
        "derivative": sp.simplify(radial0 * ang0),
    }


@cache
def gaussian_quadratic_integral() -> dict:
    """``int_{R^2} exp(-xi^T A xi / 2) d xi`` for ``A = [[p, q], [q, q**2/p + s]]`` (p, s > 0).

    Every symmetric positive-definite ``A`` has this form (``s = det A / p``). Returns
    ``{"integral": ..., "closed_form": 2 pi / sqrt(det A), "p", "q", "s"}``.
    """
    p, s = sp.symbols("p s", positive=True)
    q = sp.Symbol("q", real=True)
    x, y = sp.symbols("x y", real=True)
    A22 = q**2 / p + s
    inner = sp.simplify(
        sp.integrate(sp.exp(-(p * x**2 + 2 * q * x * y + A22 * y**2) / 2), (x, -sp.oo, sp.oo))
    )
    integral = sp.simplify(sp.integrate(inner, (y, -sp.oo, sp.oo)))
    return {
        "integral": integral,
        "closed_form": 2 * sp.pi / sp.sqrt(p * A22 - q**2),
        "p": p,
        "q": q,
        "s": s,
    }


@cache
def erf_derivative_expectation() -> dict:
    """``E[erf'(u) erf'(u')] = (4/pi) E[exp(-u**2 - u'**2)]`` via the Cholesky factor of Sigma.

    ``(u, u') = L xi`` with ``L = [[sqrt(a), 0], [c/sqrt(a), sqrt(b - c**2/a)]]`` (``L L^T =
    Sigma``); ``E[exp(-|L xi|**2)] = (2 pi)^-1 int exp(-xi^T (I + 2 L^T L) xi / 2)``, evaluated by
    :func:`gaussian_quadratic_integral`. Returns ``{"derivative": ..., "LLT": L L^T,
    "det": det(I + 2 L^T L)}``.
    """
    L = sp.Matrix([[sp.sqrt(a), 0], [c / sp.sqrt(a), sp.sqrt(b - c**2 / a)]])
    A = sp.eye(2) + 2 * L.T * L
    g = gaussian_quadratic_integral()
    det = sp.simplify(A.det())
    # int exp(-xi^T A xi/2) = 2 pi / sqrt(det A) (the identity above, with p = A11, s = det/A11).
    integral = g["integral"].subs({g["p"]: A[0, 0], g["s"]: det / A[0, 0]}, simultaneous=True)
    expectation = sp.simplify(integral / (2 * sp.pi))
    return {
        "derivative": sp.simplify(4 / sp.pi * expectation),
        "LLT": sp.simplify(L * L.T),
        "det": det,
    }


@cache
def price_checks() -> dict:
    """Price's theorem ``dK/dc = Kdot`` and the value at ``c = 0`` for both activations.

    Returns, per activation, ``"dK_dc_minus_Kdot"`` (should simplify to 0) and ``"K_at_0"`` /
    ``"product_of_means"`` (should be equal). For ReLU ``c`` enters through ``theta`` and
    explicitly: ``theta = acos(c / sqrt(a b))``.
    """
    u = sp.Symbol("u", real=True)
    std_normal = sp.exp(-(u**2) / 2) / sp.sqrt(2 * sp.pi)
    out = {}
    # ReLU: write K(c) with theta(c).
    th_c = sp.acos(c / sp.sqrt(a * b))
    K = kernel_expression("relu", "nngp").subs(theta, th_c)
    Kd = kernel_expression("relu", "derivative").subs(theta, th_c)
    mean_a = sp.integrate(sp.sqrt(a) * u * std_normal, (u, 0, sp.oo))
    mean_b = sp.integrate(sp.sqrt(b) * u * std_normal, (u, 0, sp.oo))
    out["relu"] = {
        "dK_dc_minus_Kdot": sp.simplify(sp.diff(K, c) - Kd),
        "K_at_0": sp.simplify(K.subs(c, 0)),
        "product_of_means": sp.simplify(mean_a * mean_b),
    }
    K = kernel_expression("erf", "nngp")
    Kd = kernel_expression("erf", "derivative")
    mean = sp.integrate(sp.erf(sp.sqrt(a) * u) * std_normal, (u, -sp.oo, sp.oo))
    out["erf"] = {
        "dK_dc_minus_Kdot": sp.simplify(sp.diff(K, c) - Kd),
        "K_at_0": sp.simplify(K.subs(c, 0)),
        "product_of_means": sp.simplify(mean**2),
    }
    return out


# -- time integrals of the lazy-training theory ---------------------------------------------------
def gradient_flow_integrals() -> dict:
    """The gradient-flow time integrals as divided differences of ``phi(x) = exp(-kappa x)``.

    With ``kappa = eta tau``: ``g_tau(x) = eta int_0^tau e^{-eta (tau - u) x} du``,
    ``I(x, y) = eta int_0^tau e^{-eta (tau - u) x} g_u(y) du``. Returns the integrals (``"g"``,
    ``"I"``) and the divided-difference forms (``"minus_dd1"`` = ``-phi[0, x]``, ``"dd2"`` =
    ``phi[0, x, y]``) for ``0 < x < y = x + d``, plus the symbols ``(x, d, eta, tau)``.
    """
    x, d, eta, tau, u = sp.symbols("x d eta tau u", positive=True)
    y = x + d  # I is symmetric in (x, y): y > x without loss of generality, so no x = y branch
    phi = sp.Lambda(_r, sp.exp(-eta * tau * _r))
    g = lambda v, upto: (1 - sp.exp(-eta * upto * v)) / v  # noqa: E731
    g_int = sp.integrate(eta * sp.exp(-eta * (tau - u) * x), (u, 0, tau))
    I_int = sp.integrate(sp.expand(eta * sp.exp(-eta * (tau - u) * x) * g(y, u)), (u, 0, tau))
    dd1 = (phi(x) - phi(0)) / x
    dd_xy = (phi(y) - phi(x)) / (y - x)
    dd2 = (dd_xy - dd1) / y
    return {
        "g": sp.simplify(g_int),
        "g_closed": g(x, tau),
        "minus_dd1": -dd1,
        "I": sp.simplify(I_int),
        "dd2": dd2,
        "symbols": (x, d, eta, tau),
    }


def gradient_descent_sums(k: int = 5) -> dict:
    """Gradient-descent analogues for ``k`` steps, ``phi(x) = (1 - eta x)**k`` (explicit sums).

    ``g_k(x) = eta sum_{j<k} (1 - eta x)**j`` and
    ``I_k(x, y) = eta sum_{j<k} (1 - eta x)**(k-1-j) g_j(y)`` against ``-phi[0, x]`` and
    ``phi[0, x, y]``.
    """
    x, y, eta = sp.symbols("x y eta", positive=True)
    phi = sp.Lambda(_r, (1 - eta * _r) ** k)
    gk = lambda v, n: sum((eta * (1 - eta * v) ** j for j in range(n)), sp.Integer(0))  # noqa: E731
    I_sum = sum((eta * (1 - eta * x) ** (k - 1 - j) * gk(y, j) for j in range(k)), sp.Integer(0))
    dd1 = (phi(x) - phi(0)) / x
    dd2 = ((phi(y) - phi(x)) / (y - x) - dd1) / y
    return {"g": gk(x, k), "minus_dd1": -dd1, "I": I_sum, "dd2": dd2, "symbols": (x, y, eta)}


# -- code generation ----------------------------------------------------------------------------
_HEADER = '''"""Infinite-width two-layer kernels, GENERATED by theory/ntk.py (do not edit).

Regenerate with ``python -m gtv.theory.ntk``; a test regenerates this file and fails if it differs.
Every function takes ``(a, b, c, theta, sin_theta)``: ``a = z.z/d_in``, ``b = z'.z'/d_in``,
``c = z.z'/d_in``, the angle ``theta`` between ``z`` and ``z'`` and ``sin_theta = sin(theta)``
(erf uses only ``a, b, c``).
"""

import numpy
from numba import njit

'''

_DECORATOR = "@njit(cache=True, error_model='numpy')"


def _kernel_source(fname: str, expr: sp.Expr) -> str:
    """``def fname(a, b, c, theta, sin_theta): return expr`` with ``sin(theta) -> sin_theta``.

    Printed by :func:`gtv.theory.codegen.function_source` (no broadcasting terms: the kernels are
    called on scalars inside numba loops).
    """
    expr = sp.sympify(expr).subs(sp.sin(theta), sin_theta)
    return function_source(fname, expr, _ARGS, decorator=_DECORATOR, broadcast=False)


def generated_ntk_source() -> str:
    """Full text of ``numerics/_generated/ntk.py``."""
    blocks = [_HEADER]
    registry = ["KERNELS = {"]
    for act in ACTIVATIONS:
        blocks.append(f"# --- {act} " + "-" * (90 - len(act)) + "\n\n")
        parts = [_kernel_source(f"{act}_{k}", kernel_expression(act, k)) for k in KERNEL_NAMES]
        blocks.append("\n\n".join(parts))
        blocks.append("\n\n")
        entries = ", ".join(f'"{k}": {act}_{k}' for k in KERNEL_NAMES)
        registry.append(f'    "{act}": {{{entries}}},')
    registry.append("}")
    return "".join(blocks) + "\n".join(registry) + "\n"


def generated_ntk_path() -> Path:
    """Where the generated kernel module lives in the source tree."""
    return Path(__file__).resolve().parent.parent / "numerics" / "_generated" / "ntk.py"


def write_generated_ntk(path: Path | None = None) -> Path:
    """Write :func:`generated_ntk_source` to ``path`` (default: the package's copy)."""
    path = Path(path) if path is not None else generated_ntk_path()
    path.write_text(generated_ntk_source())
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m gtv.theory.ntk``: regenerate ``numerics/_generated/ntk.py``."""
    print(f"wrote {write_generated_ntk()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
