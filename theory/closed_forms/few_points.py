"""Closed forms for one and two training points (docs/math/closed_forms.md, items 3 and 4).

* **One training point**: ``Sigma_post = 0``, so ``C = 0`` and the proxy part of the V-kernel
  vanishes; with a constant feature every ridge model is ``D^ = mu (1 - rho phi^T Sigma_P^{-1}
  e_1)`` exactly (:func:`single_point_ridge_identity`).
* **Two points +-a** (1-D): ``C``, ``frac`` and the naive estimator's effective SDE, reused from
  :mod:`gtv.theory.proxy` and :mod:`gtv.theory.path_integral` (:func:`two_point_closed_forms`).
"""

from __future__ import annotations

import sympy as sp

from gtv.theory.closed_forms.checks import check_positive
from gtv.theory.path_integral import two_point_naive_sde, two_point_score
from gtv.theory.proxy import frac_two_points, proxy_covariance_two_points
from gtv.theory.schedules import Schedule, as_schedule

__all__ = ["single_point_ridge_identity", "two_point_closed_forms"]


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


def two_point_closed_forms(a: object, schedule: Schedule | str) -> dict[str, object]:
    """Closed forms for two training points ``+-a`` in 1-D (reused from :mod:`gtv.theory.proxy` and
    :mod:`gtv.theory.path_integral`): ``"C"`` ``= (alpha**2 a**2/sigma**4) sech**2(alpha a x/
    sigma**2)``, ``"frac"`` ``= C/(C + s**2)``, ``"score"``, and ``"naive_sde"`` (the naive
    estimator's effective SDE, drift ``-beta x - D s`` and noise ``kappa D**2 C``)."""
    sch = as_schedule(schedule)
    a = check_positive(a, "a")
    return {
        "C": proxy_covariance_two_points(a, sch),
        "frac": frac_two_points(a, sch),
        "score": two_point_score(a, sch),
        "naive_sde": two_point_naive_sde(a, sch),
    }
