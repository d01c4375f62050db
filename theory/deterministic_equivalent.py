"""Symbolic checks of the cavity (leave-one-out) equations for finite-P ridge ensembles.

docs/math/finite_fp.md. The numerics (:mod:`gtv.numerics.linear.cavity`) solve, over the
population of DSM triples ``z`` with weight ``w``, features ``phi`` and posterior mean ``mu``,

    ``M = rho + S_q - (rho/P) S_q M^{-1}``,  ``S_q = E[w phi phi^T / (1 + q)]``,
    ``q = w phi^T M^{-1} phi / P``,
    ``W_bar = E[w mu phi^T / (1 + q)] M^{-1}``.

Two exact statements about these equations are derived here, each returned as an expression that
must simplify to zero:

* :func:`isotropic_reduction`: when every triple has the same leverage ``q`` (the quadratic form
  concentrates, as for Gaussian designs) and the finite-F term ``(rho/P) S_q M^{-1}``
  (``O(1/P)`` against the ``O(F/P)`` of the leverages) is dropped, the equations are the
  effective-ridge equation
  ``kappa = rho + (kappa/P) tr Sigma (Sigma + kappa)^-1`` with ``kappa = rho (1 + q)``, and
  ``W_bar = A (Sigma + kappa)^-1`` -- the known deterministic equivalent of ridge regression;
* :func:`mean_shift_difference`: for one feature (``F = 1``) and a population of ``K`` atoms with
  symbolic probabilities, weights, feature values and posterior means, the ``1/P`` term of
  ``W_bar`` equals the second-order mean shift ``-(1/P) E[u R v] R`` of
  docs/math/linear.md (``u = g - E g``, ``v = w phi^2 - Sigma``, ``R = (Sigma + rho)^-1``).
  Without the finite-F term the two differ by ``rho Sigma W0 R**2``.
"""

from __future__ import annotations

import sympy as sp

__all__ = ["cavity_scalar_mean_series", "isotropic_reduction", "mean_shift_difference"]


def isotropic_reduction(n_eigen: int = 3) -> dict[str, sp.Expr]:
    """The cavity equations with a common leverage, for a diagonal ``Sigma`` of ``n_eigen``
    symbolic eigenvalues.

    Returns
    -------
    dict
        ``"effective_ridge"``: (effective-ridge equation) - (cavity ``q`` equation), after
        substituting ``q = kappa/rho - 1``, times ``rho``; ``"mean"``: ``W_bar - A (Sigma +
        kappa)^-1`` per eigendirection. Both simplify to zero.
    """
    rho, P, kappa = sp.symbols("rho P kappa", positive=True)
    lam = sp.symbols(f"lambda_1:{n_eigen + 1}", positive=True)
    a = sp.symbols(f"a_1:{n_eigen + 1}")
    q = kappa / rho - 1
    # M = rho + Sigma / (1 + q) is diagonal: M_k = rho + lambda_k / (1 + q)
    M = [rho + lk / (1 + q) for lk in lam]
    q_cavity = sum(lk / Mk for lk, Mk in zip(lam, M, strict=True)) / P  # tr(Sigma M^-1) / P
    df1 = sum(lk / (lk + kappa) for lk in lam)
    eff = sp.simplify(rho * (q - q_cavity) - (kappa - rho - kappa * df1 / P))
    mean = [
        sp.simplify(ak / (1 + q) / Mk - ak / (lk + kappa))
        for ak, lk, Mk in zip(a, lam, M, strict=True)
    ]
    return {"effective_ridge": eff, "mean": sp.Matrix(mean)}


def _atoms(k: int):
    p = sp.symbols(f"p_1:{k + 1}", positive=True)
    w = sp.symbols(f"w_1:{k + 1}", positive=True)
    f = sp.symbols(f"f_1:{k + 1}", positive=True)
    mu = sp.symbols(f"mu_1:{k + 1}")
    return p, w, f, mu


def cavity_scalar_mean_series(k: int = 2) -> tuple[sp.Expr, sp.Expr, sp.Symbol]:
    """``W_bar`` of the one-feature cavity equations to first order in ``h = 1/P``.

    ``K = k`` atoms with probabilities ``p_i`` (``sum p_i = 1`` is *not* imposed: the
    expectations are the weighted sums), weights ``w_i``, feature values ``f_i`` and posterior
    means ``mu_i``. Returns ``(W0, W1, h)`` with ``W_bar = W0 + h W1 + O(h**2)``.
    """
    rho, h = sp.symbols("rho h", positive=True)
    p, w, f, mu = _atoms(k)
    Sigma = sum(pi * wi * fi**2 for pi, wi, fi in zip(p, w, f, strict=True))
    m1 = sp.Symbol("m1")
    # M = M0 + h m1; q_i = h w_i f_i^2 / M0 + O(h^2)
    M0 = rho + Sigma
    q = [h * wi * fi**2 / M0 for wi, fi in zip(w, f, strict=True)]
    S_q = sum(pi * wi * fi**2 / (1 + qi) for pi, wi, fi, qi in zip(p, w, f, q, strict=True))
    M_eq = rho + S_q - h * rho * S_q / M0
    m1_val = sp.solve(sp.Eq(sp.series(M_eq, h, 0, 2).removeO().coeff(h, 1), m1), m1)[0]
    M = M0 + h * m1_val
    A = sum(pi * wi * mi * fi / (1 + qi) for pi, wi, mi, fi, qi in zip(p, w, mu, f, q, strict=True))
    W = sp.series(A / M, h, 0, 2).removeO()
    return sp.simplify(W.coeff(h, 0)), sp.simplify(W.coeff(h, 1)), h


def mean_shift_difference(k: int = 2) -> sp.Expr:
    """(``1/P`` term of the cavity ``W_bar``) - (second-order mean shift); simplifies to zero.

    The second-order shift for one feature: ``-E[u R v] R`` with ``u = w (x0 - W0 f) f - rho W0``
    and ``v = w f^2 - Sigma``; ``E[x0 | atom] = mu`` and ``E u = 0``, ``E v = 0`` reduce it to
    ``-R**2 E[w**2 (mu - W0 f) f**3]``.
    """
    rho = sp.Symbol("rho", positive=True)
    p, w, f, mu = _atoms(k)
    W0, W1, _ = cavity_scalar_mean_series(k)
    Sigma = sum(pi * wi * fi**2 for pi, wi, fi in zip(p, w, f, strict=True))
    R = 1 / (Sigma + rho)
    u = [wi * (mi - W0 * fi) * fi - rho * W0 for wi, mi, fi in zip(w, mu, f, strict=True)]
    v = [wi * fi**2 - Sigma for wi, fi in zip(w, f, strict=True)]
    EuRv = sum(pi * ui * R * vi for pi, ui, vi in zip(p, u, v, strict=True))
    # E u = 0 needs sum p = 1 and W0 = A / (Sigma + rho); impose sum p = 1 through p_k
    shift = -EuRv * R
    diff = (W1 - shift).subs(p[-1], 1 - sum(p[:-1]))
    return sp.simplify(diff)
