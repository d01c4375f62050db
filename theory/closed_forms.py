"""Exactly solvable cases of the theory, derived with sympy (docs/math/naive_estimator.md, §3.3, §3.6).

Four cases, each with a closed form that :mod:`gtv.numerics.closed_forms` /
:mod:`gtv.numerics.binned_affine.model` evaluate numerically and the tests check three ways (sympy = numeric
theory = Monte Carlo):

1. **Gaussian data, naive estimator** (§3.2). For ``x0 ~ N(m, s2)`` the noised density is
   ``p(x|t) = N(alpha m, v_t)``, ``v_t = alpha**2 s2 + sigma**2``; the score
   ``s = -(x - alpha m)/v`` is linear, the posterior of ``x0`` given ``(x, t)`` is
   ``N(m + alpha s2 (x - alpha m)/v, s2 sigma**2/v)`` and the proxy-score covariance
   ``C(t) = alpha**2 s2/(sigma**2 v) = 1/sigma**2 - 1/v`` does not depend on ``x``. The effective
   SDE ``dx = (-beta x - D s) dt + sqrt(kappa) D C**(1/2) dW`` is linear with additive noise, so
   ``[q]`` is Gaussian. With ``y = x - alpha_t m`` the drift is ``dy/dt = (D/v - beta) y`` and
   ``dv/dt = 2 D - 2 beta v``, so the PF-ODE propagator from ``t`` to ``eps`` is
   ``sqrt(v_eps/v_t)`` and the variance ``w`` of ``y`` obeys (reverse time, ``dt < 0``)
   ``dw/dt = 2 (D/v - beta) w - kappa D**2 C``, i.e. ``d(w/v)/dt = -kappa D**2 C/v``:

   ``Var[q] = (v_eps/v_T) Var[x_T] + kappa v_eps int_eps^T D_t**2 C(t) / v_t dt``,
   ``E[q] = alpha_eps m + sqrt(v_eps/v_T) (E[x_T] - alpha_T m)``.

   The sampler starts from ``x_T ~ N(0, sigma_T**2)`` (``start="sampler"``); started from
   ``p(x|T)`` (``start="exact"``) the result is ``N(alpha_eps m, v_eps (1 + kappa I))``, the exact
   ``p(x|eps)`` plus the noise term. The integral ``I`` is elementary for ``ve`` and
   ``linear-variance`` (and ``edm``): sympy integrates it after a substitution that makes it
   rational (:func:`closed_form_integral`).

2. **Gaussian data, linear model with features (1, x) x time-bin indicators** (§3.3). Model ``n``
   has ``D^(x, t) = a_b + c_b x`` for ``t`` in bin ``b``. The PF-ODE with an affine denoiser is
   affine, and on a bin ``[lo, hi]`` its flow (from ``hi`` down to ``lo``) is
   ``x_lo = g_b x_hi + a_b eta_b(c_b)`` with (:func:`affine_bin_map`)

   ``g_b(c) = (sigma_lo/sigma_hi) exp(c J_b)``,
   ``eta_b(c) = int_lo^hi B(t) (sigma_lo/sigma_t) exp(c J(t)) dt``,

   ``B = D alpha/sigma**2`` (``pf_mean_coeff``), ``J(t) = int_lo^t B`` (using
   ``D/sigma**2 - beta = (1/2) d log sigma**2/dt``). Over the bins, in sampler order,
   ``x_eps = G x_T + H`` with ``G = prod_b g_b`` and ``H = sum_b a_b eta_b prod_{b' < b} g_b'``
   (:func:`affine_composition`). The coefficients ``theta = (a_b, c_b)_b`` are random (trained on P
   DSM triples); :func:`binned_affine_theory` gives their population value, first-order covariance
   (docs/math/linear.md, with the multinomial bin counts accounted for: ``t ~ U[eps, T]`` is part of each
   triple) and their ``O(1/P)`` mean shift, and expands ``E[H]`` and
   ``Var[x_eps] = Var[x_T] E[G**2] + Var[H]`` to first order in ``1/P``.

3. **One training point**: ``Sigma_post = 0``, so ``C = 0`` and the proxy part of the V-kernel
   vanishes; with a constant feature every ridge model is ``D^ = mu (1 - rho phi^T Sigma_P^{-1}
   e_1)`` exactly (:func:`single_point_ridge_identity`).

4. **Two points +-a** (1-D): ``C``, ``frac`` and the naive estimator's effective SDE, reused from
   :mod:`gtv.theory.proxy` and :mod:`gtv.theory.path_integral` (:func:`two_point_closed_forms`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import sympy as sp

from gtv.theory.path_integral import kappa, two_point_naive_sde, two_point_score
from gtv.theory.proxy import frac_two_points, proxy_covariance_two_points, x
from gtv.theory.schedules import Schedule, named_schedule, t

__all__ = [
    "START_CHOICES",
    "BinnedAffineTheoryValues",
    "a_sym",
    "c_sym",
    "NaiveGaussianMoments",
    "affine_bin_map",
    "affine_composition",
    "binned_affine_theory",
    "binned_bin_moments",
    "check_bin_edges",
    "closed_form_integral",
    "delta_method_moments",
    "eps",
    "gaussian_design_inverse_moment",
    "gaussian_noised_variance",
    "gaussian_posterior",
    "gaussian_proxy_covariance",
    "gaussian_score",
    "integrate_rational",
    "kappa",
    "m",
    "naive_gaussian_moments",
    "naive_gaussian_moments_diagonal",
    "naive_moment_ode",
    "naive_noise_integrand",
    "pf_propagator",
    "s2",
    "single_point_ridge_identity",
    "two_point_closed_forms",
    "x",
]

#: Data mean and variance of the Gaussian data ``N(m, s2)``.
m = sp.Symbol("m", real=True)
s2 = sp.Symbol("s2", positive=True)
#: The cutoff time ``eps`` as a symbol (final time of the sampler, smallest DSM time).
eps = sp.Symbol("epsilon", positive=True)
#: Where the sampler starts: ``x_T ~ N(0, sigma_T**2)`` ("sampler") or ``x_T ~ p(x|T)`` ("exact").
START_CHOICES = ("sampler", "exact")


def _schedule(schedule: Schedule | str) -> Schedule:
    return named_schedule(schedule) if isinstance(schedule, str) else schedule


# =================================================================================================
# Input checks
# =================================================================================================
def _check_positive(value: object, argname: str) -> sp.Expr:
    """Return ``value`` as a sympy expression; ``ValueError`` if it is a number ``<= 0``."""
    try:
        v = sp.sympify(value)
    except (sp.SympifyError, TypeError):
        raise ValueError(f"{argname} must be a positive number or symbol, got {value!r}") from None
    if v.is_number:
        if not (v.is_real and v.is_finite and v > 0):
            raise ValueError(f"{argname} must be > 0 (a variance), got {value!r}")
    elif v.is_positive is False or v.is_nonpositive:
        raise ValueError(f"{argname} must be > 0 (a variance), got {value!r}")
    return v


def _check_kappa(value: object) -> sp.Expr:
    try:
        v = sp.sympify(value)
    except (sp.SympifyError, TypeError):
        raise ValueError(f"kappa must be a number >= 0 or a symbol, got {value!r}") from None
    if v.is_number and not (v.is_real and v.is_finite and v >= 0):
        raise ValueError(f"kappa must be >= 0 (units of time), got {value!r}")
    if not v.is_number and v.is_negative:
        raise ValueError(f"kappa must be >= 0 (units of time), got {value!r}")
    return v


def _check_start(start: str) -> str:
    if start not in START_CHOICES:
        raise ValueError(f"start must be one of {START_CHOICES}, got {start!r}")
    return start


def _check_covariance_matrix(S: object, argname: str = "S") -> sp.Matrix:
    """A symmetric positive-definite matrix (numeric entries are checked, symbolic diagonal ones
    must not be known non-positive)."""
    try:
        M = sp.Matrix(S)
    except (TypeError, ValueError, sp.SympifyError):
        raise ValueError(f"{argname} must be a square symmetric positive-definite matrix") from None
    if M.shape[0] != M.shape[1] or M.shape[0] < 1:
        raise ValueError(f"{argname} must be a square matrix, got shape {M.shape}")
    if M != M.T:
        raise ValueError(f"{argname} must be symmetric")
    if all(e.is_number for e in M):
        if not all(e.is_real and e.is_finite for e in M):
            raise ValueError(f"{argname} must have finite real entries")
        # Sylvester's criterion: all leading principal minors positive.
        for k in range(1, M.shape[0] + 1):
            if not sp.simplify(M[:k, :k].det()) > 0:
                raise ValueError(f"{argname} must be positive definite (leading minor {k} <= 0)")
    else:
        for i in range(M.shape[0]):
            _check_positive(M[i, i], f"{argname}[{i},{i}]")
    return M


def check_bin_edges(edges: Sequence[object], eps_value: object, T: object) -> list[sp.Expr]:
    """Time-bin edges that partition ``[eps, T]``: strictly increasing, first ``eps``, last ``T``.

    Raises
    ------
    ValueError
        Naming ``bin_edges`` if they do not partition ``[eps, T]``.
    """
    try:
        e = [sp.nsimplify(sp.sympify(v)) if isinstance(v, float) else sp.sympify(v) for v in edges]
    except (TypeError, sp.SympifyError):
        raise ValueError(f"bin_edges must be a sequence of numbers, got {edges!r}") from None
    if len(e) < 2:
        raise ValueError(f"bin_edges must have at least 2 entries (one bin), got {len(e)}")
    eps_v, T_v = sp.sympify(eps_value), sp.sympify(T)
    if e[0] != eps_v or e[-1] != T_v:
        raise ValueError(
            f"bin_edges must partition [eps, T] = [{eps_v}, {T_v}]: the first edge must be eps "
            f"and the last T, got {e[0]} and {e[-1]}"
        )
    for lo, hi in zip(e[:-1], e[1:], strict=True):
        if (hi - lo).is_number and not (hi - lo) > 0:
            raise ValueError(f"bin_edges must be strictly increasing, got {lo} then {hi}")
    return e


# =================================================================================================
# Integration in closed form
# =================================================================================================
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
def _substitutions(sch: Schedule) -> tuple[tuple[sp.Expr, sp.Symbol, sp.Expr], ...]:
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

    Tries the variables of :func:`_substitutions` in turn and integrates the first rational form
    with :func:`integrate_rational`. Other symbols in ``integrand`` are parameters.
    """
    sch = _schedule(schedule)
    lo, hi = sp.sympify(lo), sp.sympify(hi)
    integrand = sp.sympify(integrand)
    for u_of_t, u, t_of_u in _substitutions(sch):
        if u is t:
            f = integrand
        else:
            f = integrand.subs(t, t_of_u) * sp.diff(t_of_u, u)
        f = sp.cancel(sp.together(sp.powsimp(f, force=True)))
        if f.is_rational_function(u):
            return integrate_rational(f, u, u_of_t.subs(t, lo), u_of_t.subs(t, hi))
    return sp.Integral(integrand, (t, lo, hi))


def _evalf(expr: sp.Expr, digits: int) -> sp.Expr:
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


# =================================================================================================
# 1. Gaussian data, naive estimator
# =================================================================================================
def gaussian_noised_variance(schedule: Schedule | str, s2_value: object = s2) -> sp.Expr:
    """``v_t = alpha_t**2 s2 + sigma_t**2``, the variance of ``p(x|t)`` for ``x0 ~ N(m, s2)``."""
    sch = _schedule(schedule)
    s2_value = _check_positive(s2_value, "s2")
    return sch.alpha**2 * s2_value + sch.sigma2


def gaussian_score(schedule: Schedule | str, m_value: object = m, s2_value: object = s2) -> sp.Expr:
    """Exact score ``-(x - alpha m)/v_t`` of ``p(x|t) = N(alpha m, v_t)``."""
    sch = _schedule(schedule)
    return -(x - sch.alpha * sp.sympify(m_value)) / gaussian_noised_variance(sch, s2_value)


def gaussian_posterior(
    schedule: Schedule | str, m_value: object = m, s2_value: object = s2
) -> tuple[sp.Expr, sp.Expr]:
    """Mean and variance of ``x0 | (x, t)`` for ``x0 ~ N(m, s2)``, ``x = alpha x0 + sigma xi``.

    ``(m + alpha s2 (x - alpha m)/v, s2 sigma**2/v)`` (Gaussian conditioning).
    """
    sch = _schedule(schedule)
    s2_value = _check_positive(s2_value, "s2")
    m_value = sp.sympify(m_value)
    v = gaussian_noised_variance(sch, s2_value)
    return (
        m_value + sch.alpha * s2_value * (x - sch.alpha * m_value) / v,
        s2_value * sch.sigma2 / v,
    )


def gaussian_proxy_covariance(schedule: Schedule | str, s2_value: object = s2) -> sp.Expr:
    """``C(t) = (alpha**2/sigma**4) Var[x0 | x, t] = alpha**2 s2/(sigma**2 v_t)`` (no ``x``)."""
    sch = _schedule(schedule)
    _, var = gaussian_posterior(sch, m, s2_value)
    return sch.alpha**2 / sch.sigma2**2 * var


def pf_propagator(
    schedule: Schedule | str, s2_value: object, t_from: object, t_to: object
) -> sp.Expr:
    """``d x_to / d x_from = sqrt(v_to / v_from)`` of the PF-ODE with the exact Gaussian score."""
    sch = _schedule(schedule)
    v = gaussian_noised_variance(sch, s2_value)
    return sp.sqrt(v.subs(t, sp.sympify(t_to)) / v.subs(t, sp.sympify(t_from)))


def naive_noise_integrand(schedule: Schedule | str, s2_value: object = s2) -> sp.Expr:
    """``D_t**2 C(t) / v_t``: ``kappa v_eps`` times its integral over ``[eps, T]`` is the noise
    part of ``Var[q]`` (``D**2 C`` is the noise intensity, ``v_eps/v_t`` the squared propagator)."""
    sch = _schedule(schedule)
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
    sch = _schedule(schedule)
    v = gaussian_noised_variance(sch, s2_value)
    kappa_value = _check_kappa(kappa_value)
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
    sch = _schedule(schedule)
    s2_value = _check_positive(s2_value, "s2")
    kappa_value = _check_kappa(kappa_value)
    start = _check_start(start)
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
    M = _check_covariance_matrix(S, "S")
    mv = [sp.sympify(v) for v in mean_vector]
    if len(mv) != M.shape[0]:
        raise ValueError(f"S must be {len(mv)}x{len(mv)} to match the mean, got {M.shape}")
    if any(M[i, j] != 0 for i in range(M.shape[0]) for j in range(M.shape[0]) if i != j):
        raise ValueError("S must be diagonal here (gtv.numerics.closed_forms handles a full S)")
    means, variances = [], []
    for i, mi in enumerate(mv):
        r = naive_gaussian_moments(schedule, mi, M[i, i], kappa_value, eps_value, T, start)
        means.append(r.mean)
        variances.append(r.variance)
    return sp.Matrix(means), sp.diag(*variances)


# =================================================================================================
# 2. Gaussian data, linear model with features (1, x) x time-bin indicators
# =================================================================================================
#: Coefficient symbols of one bin, ``D^ = a + c x``, and of the quadratic form ``phi^T M phi``.
a_sym, c_sym = sp.symbols("a c", real=True)
_q0, _q1, _q2 = sp.symbols("q0 q1 q2", real=True)


def _bin_integral(
    expr: sp.Expr, sch: Schedule, lo: sp.Expr, hi: sp.Expr, params: Sequence[sp.Symbol]
) -> sp.Expr:
    """``int_lo^hi expr dt`` for ``expr`` polynomial in ``params``: one closed-form integral per
    coefficient function of ``t`` (cached), recombined."""
    poly = sp.Poly(sp.expand(expr), *params)
    total = sp.Integer(0)
    for monom, coeff in poly.terms():
        mono = sp.Mul(*[p**k for p, k in zip(params, monom, strict=True)])
        total += mono * _coefficient_integral(sp.sympify(coeff), sch, lo, hi)
    return total


@functools.lru_cache(maxsize=4096)
def _coefficient_integral(coeff: sp.Expr, sch: Schedule, lo: sp.Expr, hi: sp.Expr) -> sp.Expr:
    return closed_form_integral(coeff, sch, lo, hi)


def binned_bin_moments(
    schedule: Schedule | str,
    m_value: object,
    s2_value: object,
    lo: object,
    hi: object,
    L: object,
) -> dict[str, sp.Matrix]:
    """Population moments of one time bin ``[lo, hi]`` for data ``N(m, s2)``, ``t ~ U`` on an
    interval of length ``L`` (so the bin has probability ``(hi - lo)/L``).

    With ``phi = (1, x)`` on the bin, ``lam = alpha**2/sigma**2`` and the residual
    ``r = x0 - a - c x`` of the bin's coefficients ``(a, c)`` (symbols :data:`a_sym`,
    :data:`c_sym`), and ``phi^T M phi = q0 + q1 x + q2 x**2``:

    * ``"S"`` = ``E[lam 1_b phi phi^T]`` (2x2), ``"A"`` = ``E[lam 1_b x0 phi]`` (2x1);
    * ``"Egg"`` = ``E[lam**2 1_b r**2 phi phi^T]`` (polynomial in ``a, c``);
    * ``"proxy"`` = ``E[lam**2 1_b Var(x0|x,t) phi phi^T]`` (the proxy-noise part of ``Egg``);
    * ``"bias"`` = ``E[lam**2 1_b r (phi^T M phi) phi]`` (2x1, polynomial in ``a, c, q``).

    Conditional on ``t``, ``(x0, x)`` is bivariate Gaussian with means ``(m, alpha m)``, variances
    ``(s2, v)`` and covariance ``alpha s2``; moments follow from Isserlis' theorem (written via the
    means, and Stein's lemma ``Cov(r, f(x)) = Cov(r, x) E f'(x)``).
    """
    sch = _schedule(schedule)
    m_value, s2_value = sp.sympify(m_value), _check_positive(s2_value, "s2")
    lo, hi, L = sp.sympify(lo), sp.sympify(hi), sp.sympify(L)
    al, sg2 = sch.alpha, sch.sigma2
    lam = sch.quantity("dsm_weight")
    v = al**2 * s2_value + sg2
    mx = al * m_value
    # Raw moments E[x^k | t], k = 0..4.
    Ex = [sp.Integer(1), mx, mx**2 + v, mx**3 + 3 * mx * v, mx**4 + 6 * mx**2 * v + 3 * v**2]
    mr = m_value - a_sym - c_sym * mx  # E r
    Kc = al * s2_value - c_sym * v  # Cov(r, x)
    Vr = s2_value - 2 * c_sym * al * s2_value + c_sym**2 * v  # Var r
    Er2 = Vr + mr**2
    # E[r**2 x**k], k = 0, 1, 2 (Isserlis with means) and E[r x**k] = mr E[x**k] + k Kc E[x**(k-1)]
    # (Stein's lemma), k = 0..3.
    Er2x = [Er2, mx * Er2 + 2 * mr * Kc, Er2 * (v + mx**2) + 2 * Kc**2 + 4 * mr * mx * Kc]

    def Erx(k: int) -> sp.Expr:
        return mr * Ex[k] + k * Kc * Ex[k - 1] if k >= 1 else mr

    params = (a_sym, c_sym, _q0, _q1, _q2)
    scale = 1 / L

    def I(expr: sp.Expr) -> sp.Expr:  # noqa: E743
        return scale * _bin_integral(expr, sch, lo, hi, params)

    S = sp.Matrix(2, 2, lambda i, j: I(lam * Ex[i + j]))
    A = sp.Matrix([I(lam * m_value), I(lam * al * (m_value**2 + s2_value))])
    Egg = sp.Matrix(2, 2, lambda i, j: I(lam**2 * Er2x[i + j]))
    post_var = s2_value * sg2 / v
    proxy = sp.Matrix(2, 2, lambda i, j: I(lam**2 * post_var * Ex[i + j]))
    q = (_q0, _q1, _q2)
    bias = sp.Matrix([I(lam**2 * sum(q[i] * Erx(k + i) for i in range(3))) for k in range(2)])
    return {"S": S, "A": A, "Egg": Egg, "proxy": proxy, "bias": bias}


def _rational_antiderivative(expr: sp.Expr, var: sp.Symbol, at: sp.Expr) -> sp.Expr:
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


@functools.lru_cache(maxsize=32)
def _map_variable(sch: Schedule) -> tuple[sp.Expr, sp.Symbol, sp.Expr] | None:
    """``W(t) = int B dt`` (``B = pf_mean_coeff``), a symbol ``w`` and ``sigma`` as a function of
    ``w`` (inverting ``W``); ``None`` where no substitution makes ``B dt`` rational.

    E.g. ``ve``: ``W = log(sigma) + const`` (``u = sigma**2``); ``linear-variance``:
    ``W = -atanh(alpha)`` (``u = alpha``), so ``sigma = sech(w)``.
    """
    B = sch.quantity("pf_mean_coeff")
    t_test = sp.Rational(1, 3) * sch.T
    w = sp.Symbol("w", real=True)
    for u_of_t, u, t_of_u in _substitutions(sch):
        f = B if u is t else B.subs(t, t_of_u) * sp.diff(t_of_u, u)
        f = sp.cancel(sp.together(sp.powsimp(f, force=True)))
        if not f.is_rational_function(u):
            continue
        u_test = u_of_t.subs(t, t_test)
        W_u = sp.expand_log(_rational_antiderivative(f, u, u_test), force=True)
        try:
            sols = sp.solve(sp.Eq(W_u, w), u)
        except NotImplementedError:  # pragma: no cover
            continue
        w_test = W_u.subs(u, u_test)
        for sol in sols:
            if abs(complex(sp.N(sol.subs(w, w_test) - u_test, 30))) < 1e-20:
                sigma_w = sp.sqrt(sch.sigma2.subs(t, t_of_u).subs(u, sol))
                sigma_w = sp.simplify(sp.powsimp(sigma_w, force=True))
                return W_u.subs(u, u_of_t), w, sigma_w
    return None


def _resolve_piecewise(expr: sp.Expr, at: dict) -> sp.Expr:
    """Replace every ``Piecewise`` by its first branch whose condition holds at the point ``at``."""

    def pick(*pairs):
        for e, c in pairs:
            cond = c.subs(at) if hasattr(c, "subs") else c
            if cond in (True, sp.true):
                return e
        return sp.nan

    return expr.replace(
        lambda e: isinstance(e, sp.Piecewise), lambda e: pick(*[(p.expr, p.cond) for p in e.args])
    )


def affine_bin_map(
    schedule: Schedule | str, lo: object, hi: object, c_value: object = c_sym
) -> tuple[sp.Expr, sp.Expr]:
    """PF-ODE flow over one bin for ``D^ = a + c x``: ``x_lo = g x_hi + a eta``; returns
    ``(g, eta)`` as functions of ``c``.

    ``g = (sigma_lo/sigma_hi) exp(c J)``, ``J = W(hi) - W(lo)``, ``W = int B dt``;
    ``eta = sigma_lo int_{W(lo)}^{W(hi)} exp(c (w - W(lo))) / sigma(t(w)) dw`` (substituting
    ``w = W(t)``, ``dw = B dt``). Closed form for ``ve``, ``edm`` and ``linear-variance``; an
    unevaluated ``Integral`` in ``t`` otherwise.
    """
    sch = _schedule(schedule)
    lo, hi, c_value = sp.sympify(lo), sp.sympify(hi), sp.sympify(c_value)
    s_lo, s_hi = sp.sqrt(sch.sigma2.subs(t, lo)), sp.sqrt(sch.sigma2.subs(t, hi))
    mv = _map_variable(sch)
    B = sch.quantity("pf_mean_coeff")
    if mv is None:
        tt = sp.Dummy("tau", positive=True)
        J_t = sp.Integral(B.subs(t, tt), (tt, lo, t))
        g = s_lo / s_hi * sp.exp(c_value * sp.Integral(B, (t, lo, hi)))
        eta = sp.Integral(B * s_lo / sp.sqrt(sch.sigma2) * sp.exp(c_value * J_t), (t, lo, hi))
        return g, eta
    W, w, sigma_w = mv
    W_lo, W_hi = W.subs(t, lo), W.subs(t, hi)
    g = s_lo / s_hi * sp.exp(c_value * (W_hi - W_lo))
    cc = sp.Dummy("c", real=True)
    F = sp.integrate(sp.exp(cc * w) / sigma_w, w, conds="none")
    F = _resolve_piecewise(F, {w: W.subs(t, sp.Rational(1, 3) * sch.T)})
    eta = s_lo * sp.exp(-c_value * W_lo) * (F.subs(w, W_hi) - F.subs(w, W_lo)).subs(cc, c_value)
    return g, eta


def affine_composition(
    g: Sequence[sp.Expr], eta: Sequence[sp.Expr], a: Sequence[sp.Expr]
) -> tuple[sp.Expr, sp.Expr]:
    """Compose the bin maps in sampler order (from the top bin down): ``x_eps = G x_T + H``.

    Bins are indexed by increasing time; bin ``b`` maps ``x_hi -> g_b x_hi + a_b eta_b``. Hence
    ``G = prod_b g_b`` and ``H = sum_b a_b eta_b prod_{b' < b} g_b'``.
    """
    if not (len(g) == len(eta) == len(a)) or len(g) < 1:
        raise ValueError("g, eta and a must have the same positive length (one entry per bin)")
    G, H = sp.Integer(1), sp.Integer(0)
    for b in reversed(range(len(g))):
        G, H = g[b] * G, g[b] * H + a[b] * eta[b]
    return G, H


def delta_method_moments(
    f: sp.Expr,
    theta: Sequence[sp.Symbol],
    at: Sequence[object],
    bias: Sequence[object],
    cov: sp.Matrix,
) -> sp.Expr:
    """``E f(theta) = f + grad f . delta + (1/2) tr(Hess f Cov)`` at ``theta = at`` (``O(1/P)``)."""
    subs = dict(zip(theta, at, strict=True))
    grad = sp.Matrix([sp.diff(f, th) for th in theta]).subs(subs)
    hess = sp.hessian(f, theta).subs(subs)
    return (
        f.subs(subs)
        + (grad.T * sp.Matrix(bias))[0, 0]
        + sp.Rational(1, 2) * sum(hess.multiply_elementwise(sp.Matrix(cov)))
    )


@dataclass(frozen=True)
class BinnedAffineTheoryValues:
    """Numbers (sympy Floats) from :func:`binned_affine_theory`.

    Attributes
    ----------
    theta_inf : Matrix (2K x 1)
        Population coefficients ``(a_0, c_0, a_1, c_1, ...)`` (bins by increasing time).
    cov_theta : Matrix (2K x 2K)
        First-order ``Cov(theta)`` at ``P``; ``cov_theta_proxy`` its proxy-noise part.
    bias : Matrix (2K x 1)
        ``E[theta] - theta_inf`` to ``O(1/P)``.
    mean_inf, var_inf : Float
        ``E[x_eps]``, ``Var[x_eps]`` of the population model (``P = inf``).
    mean, var : Float
        ``[q]``'s mean and variance to first order in ``1/P``.
    mean_no_bias, var_no_bias : Float
        The same without the coefficient mean shift (what a Gaussian field
        ``theta ~ N(theta_inf, Cov)`` gives).
    """

    theta_inf: sp.Matrix
    cov_theta: sp.Matrix
    cov_theta_proxy: sp.Matrix
    bias: sp.Matrix
    mean_inf: sp.Expr
    var_inf: sp.Expr
    mean: sp.Expr
    var: sp.Expr
    mean_no_bias: sp.Expr
    var_no_bias: sp.Expr


def _edges_tuple(bin_edges: Sequence[object], T: sp.Expr) -> tuple[sp.Expr, ...]:
    try:
        edges = [sp.nsimplify(e) if isinstance(e, float) else sp.sympify(e) for e in bin_edges]
    except (TypeError, sp.SympifyError):
        raise ValueError(f"bin_edges must be a sequence of numbers, got {bin_edges!r}") from None
    if len(edges) < 2:
        raise ValueError(f"bin_edges must have at least 2 entries (one bin), got {len(edges)}")
    return tuple(check_bin_edges(edges, edges[0], T))


@functools.lru_cache(maxsize=16)
def _binned_population(
    sch: Schedule, m_value: sp.Expr, s2_value: sp.Expr, edges: tuple, rho: sp.Expr, digits: int
) -> dict:
    """Everything of :func:`binned_affine_theory` that does not depend on ``P`` (cached)."""
    K = len(edges) - 1
    L = edges[-1] - edges[0]
    num = lambda e: _evalf(e, digits)  # noqa: E731
    mom = [binned_bin_moments(sch, m_value, s2_value, edges[k], edges[k + 1], L) for k in range(K)]
    S = [mk["S"].applyfunc(num) for mk in mom]
    A = [mk["A"].applyfunc(num) for mk in mom]
    Sr_inv = [(S[k] + rho * sp.eye(2)).inv() for k in range(K)]
    theta = [Sr_inv[k] * A[k] for k in range(K)]
    n = 2 * K
    cov_g, proxy_g = sp.zeros(n, n), sp.zeros(n, n)
    bias_unit, eg = sp.zeros(n, 1), sp.zeros(n, 1)
    for k in range(K):
        blk = slice(2 * k, 2 * k + 2)
        sub = {a_sym: theta[k][0], c_sym: theta[k][1]}
        cov_g[blk, blk] = mom[k]["Egg"].subs(sub).applyfunc(num)
        proxy_g[blk, blk] = mom[k]["proxy"].applyfunc(num)
        eg[blk, 0] = rho * theta[k]
        Mk = Sr_inv[k]
        Eb = mom[k]["bias"].subs({**sub, _q0: Mk[0, 0], _q1: 2 * Mk[0, 1], _q2: Mk[1, 1]})
        # P (E theta - theta_inf) for this bin.
        bias_unit[blk, 0] = -Mk * (Eb.applyfunc(num) - S[k] * Mk * (rho * theta[k]))
    cov_g = cov_g - eg * eg.T  # cross-bin blocks: -E g_b E g_b'^T (multinomial bin counts)
    Sr_inv_full = sp.diag(*Sr_inv)
    # The delta method needs derivatives up to second order at theta_inf only, so each bin map is
    # replaced by its second-order Taylor polynomial in dc = c - c_inf with symbolic coefficients
    # (g_j, e_j: j-th c-derivative of g and eta at c_inf); the composition is differentiated as a
    # polynomial and the closed-form derivatives of affine_bin_map are substituted last.
    a_syms = sp.symbols(f"a_0:{K}", real=True)
    dc_syms = sp.symbols(f"dc_0:{K}", real=True)
    gs, etas, values = [], [], {}
    for k in range(K):
        g_k, eta_k = affine_bin_map(sch, edges[k], edges[k + 1], c_sym)
        gj = sp.symbols(f"g{k}_0:3", real=True)
        ej = sp.symbols(f"e{k}_0:3", real=True)
        dc = dc_syms[k]
        gs.append(gj[0] + gj[1] * dc + gj[2] * dc**2 / 2)
        etas.append(ej[0] + ej[1] * dc + ej[2] * dc**2 / 2)
        for f, syms in ((g_k, gj), (eta_k, ej)):
            for j in range(3):
                values[syms[j]] = num(sp.diff(f, c_sym, j).subs(c_sym, theta[k][1]))
    G, H = affine_composition(gs, etas, a_syms)
    th_syms = [s for k in range(K) for s in (a_syms[k], dc_syms[k])]
    at = dict(zip(th_syms, [v for k in range(K) for v in (theta[k][0], 0)], strict=True))

    def jet(f: sp.Expr) -> tuple:
        grad = sp.Matrix([sp.diff(f, s) for s in th_syms])
        hess = sp.hessian(f, th_syms)
        return tuple(
            e.subs(at).subs(values).applyfunc(num)
            if hasattr(e, "applyfunc")
            else num(e.subs(at).subs(values))
            for e in (f, grad, hess)
        )

    return {
        "theta": sp.Matrix([theta[k][i] for k in range(K) for i in range(2)]),
        "unit_cov": (Sr_inv_full * cov_g * Sr_inv_full).applyfunc(num),
        "unit_cov_proxy": (Sr_inv_full * proxy_g * Sr_inv_full).applyfunc(num),
        "unit_bias": bias_unit.applyfunc(num),
        "H": jet(H),
        "G2": jet(G**2),
        "sigma_T2": num(sch.sigma2.subs(t, sch.T)),
    }


def binned_affine_theory(
    schedule: Schedule | str,
    m_value: object,
    s2_value: object,
    bin_edges: Sequence[object],
    ridge: object,
    P: object,
    digits: int = 30,
) -> BinnedAffineTheoryValues:
    """First-order-in-``1/P`` theory of the binned affine model on data ``N(m, s2)`` (1-D).

    Population moments per bin in closed form (:func:`binned_bin_moments`), evaluated with
    ``digits`` significant digits; then (docs/math/linear.md, vector form ``theta = (a_b, c_b)_b``):

    * ``Sigma_r = blockdiag(S_b + rho I)``, ``theta_inf = Sigma_r^{-1} A``;
    * ``g = lam r phi`` per triple, ``E g = rho theta_inf``; ``Cov g`` is block-diagonal
      ``Egg_b`` minus ``vec(Eg) vec(Eg)^T`` (cross-bin terms from the multinomial bin counts:
      each triple's ``t ~ U[eps, T]`` is part of the randomness, nothing is conditioned on);
      ``Cov theta = Sigma_r^{-1} Cov g Sigma_r^{-1} / P``;
    * mean shift (second-order perturbation of ``Sigma_P^{-1}``, theory/linear.py step 3):
      ``E theta - theta_inf = -(1/P) Sigma_r^{-1} (E[lam**2 r (phi^T Sigma_r^{-1} phi) phi]
      - Sigma Sigma_r^{-1} E g)``;
    * ``x_eps = G x_T + H`` (:func:`affine_composition` of :func:`affine_bin_map`), ``x_T ~
      N(0, sigma_T**2)``: ``E x_eps = E H``, ``Var x_eps = sigma_T**2 E[G**2] + Var H`` with
      ``E f = f + grad f . bias + tr(Hess f Cov)/2`` and ``Var H = grad H^T Cov grad H``
      (:func:`delta_method_moments`; error ``O(1/P**2)``).

    The population part is cached, so several ``P`` cost little more than one.

    Raises
    ------
    ValueError
        ``s2 <= 0``, ``ridge < 0``, ``P < 1``, or ``bin_edges`` not a partition of ``[eps, T]``.
    """
    sch = _schedule(schedule)
    s2_value = _check_positive(s2_value, "s2")
    rho_v = sp.sympify(ridge)
    if not (rho_v.is_number and rho_v.is_real and rho_v >= 0):
        raise ValueError(f"ridge (rho) must be a number >= 0, got {ridge!r}")
    rho_v = sp.nsimplify(rho_v) if isinstance(ridge, float) else rho_v
    P_v = sp.sympify(P)
    if not (P_v.is_number and P_v.is_real and P_v >= 1):
        raise ValueError(f"P (DSM samples per model) must be a number >= 1, got {P!r}")
    edges = _edges_tuple(bin_edges, sch.T)
    pop = _binned_population(sch, sp.sympify(m_value), s2_value, edges, rho_v, int(digits))
    num = lambda e: _evalf(e, digits)  # noqa: E731
    cov = (pop["unit_cov"] / P_v).applyfunc(num)
    bias = (pop["unit_bias"] / P_v).applyfunc(num)
    zero = sp.zeros(*bias.shape)

    def expect(j: tuple, b: sp.Matrix) -> sp.Expr:
        f, grad, hess = j
        return num(f + (grad.T * b)[0, 0] + sum(hess.multiply_elementwise(cov)) / 2)

    gH = pop["H"][1]
    var_H = num((gH.T * cov * gH)[0, 0])
    sT2 = pop["sigma_T2"]
    return BinnedAffineTheoryValues(
        theta_inf=pop["theta"],
        cov_theta=cov,
        cov_theta_proxy=(pop["unit_cov_proxy"] / P_v).applyfunc(num),
        bias=bias,
        mean_inf=pop["H"][0],
        var_inf=num(sT2 * pop["G2"][0]),
        mean=expect(pop["H"], bias),
        var=num(sT2 * expect(pop["G2"], bias) + var_H),
        mean_no_bias=expect(pop["H"], zero),
        var_no_bias=num(sT2 * expect(pop["G2"], zero) + var_H),
    )


def gaussian_design_inverse_moment(n: object, mu_x: object, v: object) -> sp.Matrix:
    """``E[(X^T X)^{-1}]`` for ``n`` rows ``(1, x_j)``, ``x_j ~ N(mu_x, v)`` iid (``n > 3``).

    With ``S_xx = sum (x_j - xbar)**2 ~ v chi2_{n-1}`` independent of ``xbar``,
    ``(X^T X)^{-1} = [[1/n + xbar**2/S_xx, -xbar/S_xx], [-xbar/S_xx, 1/S_xx]]`` and
    ``E[1/S_xx] = 1/(v (n - 3))``, ``E[xbar**2] = mu_x**2 + v/n``. Compared with the first-order
    ``Sigma^{-1}/n`` (``Sigma = E[phi phi^T]``) this is the exact finite-sample (inverse-Wishart)
    correction for OLS with Gaussian design: ``Sigma^{-1}/(n - 3) - 2/(n (n - 3)) e_1 e_1^T``.
    """
    n, mu_x, v = sp.sympify(n), sp.sympify(mu_x), _check_positive(v, "v")
    if n.is_number and not n > 3:
        raise ValueError(f"n must be > 3 for a finite inverse moment, got {n}")
    inv_sxx = 1 / (v * (n - 3))
    return sp.Matrix(
        [[1 / n + (mu_x**2 + v / n) * inv_sxx, -mu_x * inv_sxx], [-mu_x * inv_sxx, inv_sxx]]
    )


# =================================================================================================
# 3. One training point
# =================================================================================================
def single_point_ridge_identity(n_triples: int = 2, n_features: int = 2) -> dict:
    """``W_P = mu (e_1 - rho Sigma_P^{-1} e_1)^T`` for one training point and ``phi_1 = 1``.

    With a single training point every DSM target is ``x0 = mu``, so
    ``A_P = mu (1/P) sum lam_j phi_j^T`` and, because ``phi_j^T e_1 = 1``,
    ``(1/P) sum lam_j phi_j = (Sigma_P - rho I) e_1``. Hence ``W_P = A_P Sigma_P^{-1} =
    mu e_1^T - rho mu e_1^T Sigma_P^{-1}`` exactly, for any design: with ``rho = 0`` every model is
    the exact (constant) denoiser and the ensemble has no variance at all. Verified here on a
    symbolic design of ``n_triples`` triples with ``n_features`` features.

    Returns
    -------
    dict
        ``"W"`` (the ridge solution), ``"identity"`` (the closed form) and ``"difference"``
        (simplified, a zero matrix).
    """
    if n_features < 1 or n_triples < 1:
        raise ValueError("n_triples and n_features must be >= 1")
    rho = sp.Symbol("rho", positive=True)
    mu = sp.Symbol("mu", real=True)
    lam = sp.symbols(f"lam_0:{n_triples}", positive=True)
    phis = [
        sp.Matrix([1] + [sp.Symbol(f"phi_{j}_{i}", real=True) for i in range(1, n_features)])
        for j in range(n_triples)
    ]
    Pn = sp.Integer(n_triples)
    Sigma_P = sum((lam[j] * phis[j] * phis[j].T for j in range(n_triples)), sp.zeros(n_features))
    Sigma_P = Sigma_P / Pn + rho * sp.eye(n_features)
    A_P = mu * sum((lam[j] * phis[j].T for j in range(n_triples)), sp.zeros(1, n_features)) / Pn
    inv = Sigma_P.inv()
    W = A_P * inv
    e1 = sp.zeros(n_features, 1)
    e1[0] = 1
    identity = mu * e1.T - rho * mu * (inv * e1).T
    return {"W": W, "identity": identity, "difference": (W - identity).applyfunc(sp.simplify)}


# =================================================================================================
# 4. Two points +-a
# =================================================================================================
def two_point_closed_forms(a: object, schedule: Schedule | str) -> dict[str, object]:
    """Closed forms for two training points ``+-a`` in 1-D (reused from :mod:`gtv.theory.proxy` and
    :mod:`gtv.theory.path_integral`): ``"C"`` ``= (alpha**2 a**2/sigma**4) sech**2(alpha a x/
    sigma**2)``, ``"frac"`` ``= C/(C + s**2)``, ``"score"``, and ``"naive_sde"`` (the naive
    estimator's effective SDE, drift ``-beta x - D s`` and noise ``kappa D**2 C``)."""
    sch = _schedule(schedule)
    a = _check_positive(a, "a")
    return {
        "C": proxy_covariance_two_points(a, sch),
        "frac": frac_two_points(a, sch),
        "score": two_point_score(a, sch),
        "naive_sde": two_point_naive_sde(a, sch),
    }
