"""First-order (in 1/P) theory of linear-feature ensembles, derived with sympy.

The mathematics is docs/math/linear.md.

Setting
-------
One model is trained on P DSM triples ``(lam_j, phi_j, x0_j)`` (weight ``lam = alpha**2/sigma**2``,
features ``phi in R^F``, clean point ``x0 in R^D``) by ridge regression:

    ``Sigma_P = (1/P) sum_j lam_j phi_j phi_j^T + rho I``,
    ``A_P = (1/P) sum_j lam_j x0_j phi_j^T``,   ``W_P = A_P Sigma_P^{-1}``.

Population: ``Sigma = E[lam phi phi^T]``, ``A = E[lam x0 phi^T]``, ``Sigma_r = Sigma + rho I``,
``W_inf = A Sigma_r^{-1}``, ``D_bar = W_inf phi``, and the per-triple gradient
``g = lam (x0 - W_inf phi) phi^T``.

Derivation (each step is a function below that returns the sympy objects a test simplifies)
---------------------------------------------------------------------------------------------
1. :func:`mean_gradient`: ``E g = A - W_inf Sigma = W_inf Sigma_r - W_inf Sigma = rho W_inf``.
2. :func:`exact_weight_error`: for any ``W_inf``, ``A_P - W_inf Sigma_P = g_bar - rho W_inf``
   (``g_bar`` = mean of the P gradients), hence exactly
   ``W_P - W_inf = (A_P - W_inf Sigma_P) Sigma_P^{-1} = (g_bar - E g) Sigma_P^{-1}``.
3. :func:`first_order_perturbation`: with ``A_P = A + eta dA``, ``Sigma_P = Sigma_r + eta dS``,
   ``d W / d eta |_0 = (dA - W_inf dS) Sigma_r^{-1}`` and ``dA - W_inf dS = g_bar - E g``, so
   ``W_P - W_inf = (g_bar - E g) Sigma_r^{-1} + O(eta**2)``: the fluctuation of ``Sigma_P``
   (``dS = O(P**-1/2)``) enters only at second order.
4. :func:`vec_identities`: with column-stacking ``vec``, ``vec(X B) = (B^T (x) I_D) vec X`` and
   ``X phi = (phi^T (x) I_D) vec X``; ``vec(g) = lam phi (x) r`` and
   ``vec(g) vec(g)^T = lam**2 (phi phi^T) (x) (r r^T)`` (``r = x0 - D_bar``). The mean of P iid
   gradients has ``Cov(vec g_bar) = Cov(vec g)/P``, so, ``Sigma_r`` being symmetric,
   ``Cov(vec W) = (1/P) (Sigma_r^{-1} (x) I) Cov(vec g) (Sigma_r^{-1} (x) I)`` and
   ``Cov[D^(z), D^(z')] = (phi(z)^T (x) I) Cov(vec W) (phi(z') (x) I)``.
5. :func:`posterior_split`: conditional on ``(x, t)``, ``x0`` follows the posterior over training
   points, and
   ``E[(x0 - D_bar)(x0 - D_bar)^T | x,t] = Sigma_post + (mu_bar - D_bar)(mu_bar - D_bar)^T``.
6. :func:`total_covariance_split`: on a discrete design (K design points ``(x, t)`` with
   probabilities, each with its own posterior over M points), the directly computed ``Cov(vec g)``
   equals ``proxy + misfit`` with ``proxy = E[lam**2 phi phi^T (x) Sigma_post]`` and
   ``misfit = E[lam**2 phi phi^T (x) m m^T] - vec(E g) vec(E g)^T`` (``m = mu_bar - D_bar``):
   the law of total covariance. The outer product of ``E g`` belongs to the misfit part, which is
   ``Cov_{x,t}(E[vec g | x, t])``.
7. :func:`score_covariance_factor`: ``s^ = (alpha D^ - x)/sigma**2`` is affine in ``D^``, so
   ``Cov[s^(x,t), s^(x',t')] = (alpha_t/sigma_t**2)(alpha_t'/sigma_t'**2) Cov[D^, D^']`` and the
   V-kernel of docs/math/path_integral.md is ``V = c_t Cov[D^, D^'] c_t'`` with
   ``c_t = D_t alpha_t / sigma_t**2``.
8. :func:`constant_feature_theory`: the closed form for a single constant feature ``phi = 1``
   (``Sigma = E lam``, ``A = E[lam] mean(mu)``,
   ``Cov g = E[lam**2] mean((mu - W)**2) - rho**2 W**2``), integrated over ``t`` by sympy: a
   three-way check of the quadrature in :mod:`gtv.numerics.linear.theory`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy as sp

from gtv.theory.path_integral import t2, v_kernel
from gtv.theory.schedules import Schedule, as_schedule, t

__all__ = [
    "constant_feature_theory",
    "exact_weight_error",
    "first_order_perturbation",
    "kron",
    "mean_gradient",
    "posterior_split",
    "score_covariance_factor",
    "sym_matrix",
    "total_covariance_split",
    "vec",
    "vec_identities",
]

rho = sp.Symbol("rho", nonnegative=True)


# -- helpers ------------------------------------------------------------------------------------
def sym_matrix(name: str, rows: int, cols: int, symmetric: bool = False) -> sp.Matrix:
    """A matrix of independent real symbols ``name_ij`` (``symmetric``: ``name_ij = name_ji``)."""
    if symmetric:
        if rows != cols:
            raise ValueError("a symmetric matrix must be square")
        return sp.Matrix(
            rows,
            cols,
            lambda i, j: sp.Symbol(f"{name}_{min(i, j)}{max(i, j)}", real=True),
        )
    return sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"{name}_{i}{j}", real=True))


def vec(X: sp.Matrix) -> sp.Matrix:
    """Column-stacking vectorization (entry ``(d, f)`` at index ``f * rows + d``)."""
    return sp.Matrix([X[i, j] for j in range(X.cols) for i in range(X.rows)])


def kron(A: sp.Matrix, B: sp.Matrix) -> sp.Matrix:
    """Kronecker product ``A (x) B``."""
    return sp.kronecker_product(A, B)


def _zero(M: sp.Matrix) -> bool:
    return all(sp.simplify(e) == 0 for e in M)


# -- 1-3: the weight error ----------------------------------------------------------------------
def mean_gradient(F: int = 2, D: int = 1) -> dict:
    """``E g = A - W_inf Sigma`` and ``rho W_inf`` for symbolic ``A`` (D x F), ``Sigma`` (F x F)."""
    Sig = sym_matrix("S", F, F, symmetric=True)
    A = sym_matrix("A", D, F)
    W = A * (Sig + rho * sp.eye(F)).inv()
    return {"Eg": A - W * Sig, "rho_W": rho * W, "W_inf": W, "Sigma": Sig, "A": A}


def _triples(P: int, F: int, D: int):
    lam = sp.symbols(f"lam0:{P}", positive=True)
    phis = [sym_matrix(f"phi{j}", F, 1) for j in range(P)]
    x0s = [sym_matrix(f"xz{j}", D, 1) for j in range(P)]
    return lam, phis, x0s


def exact_weight_error(P: int = 2, F: int = 2, D: int = 1) -> dict:
    """The exact identity ``A_P - W Sigma_P = g_bar - rho W`` for arbitrary ``W`` (D x F).

    Returns ``lhs``, ``rhs`` (to be equal) and ``W_P``, ``W_error`` =
    ``W_P - W - (g_bar - rho W) Sigma_P^{-1}`` (to vanish).
    """
    lam, phis, x0s = _triples(P, F, D)
    W = sym_matrix("W", D, F)
    S_P = sum((lam[j] * phis[j] * phis[j].T for j in range(P)), sp.zeros(F, F)) / P
    S_P = S_P + rho * sp.eye(F)
    A_P = sum((lam[j] * x0s[j] * phis[j].T for j in range(P)), sp.zeros(D, F)) / P
    g = [lam[j] * (x0s[j] - W * phis[j]) * phis[j].T for j in range(P)]
    g_bar = sum(g, sp.zeros(D, F)) / P
    lhs = A_P - W * S_P
    rhs = g_bar - rho * W
    W_P = A_P * S_P.inv()
    return {"lhs": lhs, "rhs": rhs, "W_P": W_P, "W_error": W_P - W - rhs * S_P.inv()}


def first_order_perturbation(F: int = 2, D: int = 1) -> dict:
    """``W(eta) = (A + eta dA)(Sigma_r + eta dS)^{-1}`` expanded to first order in ``eta``.

    Returns ``derivative`` (``dW/deta`` at 0), ``predicted`` (``(dA - W_inf dS) Sigma_r^{-1}``),
    ``gbar_minus_Eg`` (``g_bar - E g`` written with ``A_P = A + dA``, ``Sigma_P = Sigma_r + dS``)
    and ``dA_minus_W_dS`` (the two must agree), and ``remainder`` =
    ``W(eta) - W_inf - eta predicted``, which is ``O(eta**2)``.
    """
    eta = sp.Symbol("eta", real=True)
    Sig = sym_matrix("S", F, F, symmetric=True)
    Sr = Sig + rho * sp.eye(F)
    A = sym_matrix("A", D, F)
    dA = sym_matrix("dA", D, F)
    dS = sym_matrix("dS", F, F, symmetric=True)
    Sr_inv = Sr.inv()
    W_inf = A * Sr_inv
    W_eta = (A + eta * dA) * (Sr + eta * dS).inv()
    derivative = sp.diff(W_eta, eta).subs(eta, 0)
    predicted = (dA - W_inf * dS) * Sr_inv
    # g_bar = A_P - W_inf (Sigma_P - rho I) (identity 2) and E g = A - W_inf Sigma (identity 1).
    A_P, S_P = A + dA, Sr + dS
    gbar_minus_Eg = (A_P - W_inf * (S_P - rho * sp.eye(F))) - (A - W_inf * Sig)
    return {
        "eta": eta,
        "derivative": derivative,
        "predicted": predicted,
        "gbar_minus_Eg": gbar_minus_Eg,
        "dA_minus_W_dS": dA - W_inf * dS,
        "remainder": W_eta - W_inf - eta * predicted,
    }


# -- 4: vec / Kronecker identities --------------------------------------------------------------
def vec_identities(F: int = 2, D: int = 2) -> dict:
    """Pairs ``(lhs, rhs)`` of the vec/Kronecker identities used for ``Cov(vec W)``."""
    X = sym_matrix("X", D, F)
    B = sym_matrix("B", F, F, symmetric=True)
    phi = sym_matrix("phi", F, 1)
    r = sym_matrix("r", D, 1)
    lam = sp.Symbol("lam", positive=True)
    g = lam * r * phi.T
    ID = sp.eye(D)
    return {
        "vec_XB": (vec(X * B), kron(B.T, ID) * vec(X)),
        "X_phi": (X * phi, kron(phi.T, ID) * vec(X)),
        "vec_g": (vec(g), lam * kron(phi, r)),
        "vec_g_outer": (vec(g) * vec(g).T, lam**2 * kron(phi * phi.T, r * r.T)),
    }


# -- 5-6: the proxy / misfit split --------------------------------------------------------------
def posterior_split(M: int = 3, D: int = 2) -> dict:
    """``E_w[(x0 - D_bar)(x0 - D_bar)^T]`` and ``Sigma_post + (mu_bar - D_bar)(mu_bar - D_bar)^T``
    for symbolic posterior weights (``w_M = 1 - sum of the others``), points and ``D_bar``."""
    w = list(sp.symbols(f"w0:{M - 1}", positive=True))
    w.append(1 - sum(w))
    mus = [sym_matrix(f"mu{m}", D, 1) for m in range(M)]
    Dbar = sym_matrix("Dbar", D, 1)
    mbar = sum((w[m] * mus[m] for m in range(M)), sp.zeros(D, 1))
    post = sum((w[m] * (mus[m] - mbar) * (mus[m] - mbar).T for m in range(M)), sp.zeros(D, D))
    lhs = sum((w[m] * (mus[m] - Dbar) * (mus[m] - Dbar).T for m in range(M)), sp.zeros(D, D))
    return {"lhs": lhs, "rhs": post + (mbar - Dbar) * (mbar - Dbar).T}


def total_covariance_split(K: int = 2, M: int = 2, F: int = 2, D: int = 1) -> dict:
    """``Cov(vec g)`` on a discrete design, computed directly and as ``proxy + misfit``.

    Design point ``k`` (probability ``q_k``, ``q_K = 1 - sum``) has weight ``lam_k``, features
    ``phi_k``, prediction ``W phi_k`` (``W`` arbitrary, D x F) and a posterior ``w_km`` over the M
    training points ``mu_m``. Returns ``direct``, ``proxy``, ``misfit`` and ``Eg`` (``E g``).
    """
    q = list(sp.symbols(f"q0:{K - 1}", positive=True))
    q.append(1 - sum(q))
    lam = sp.symbols(f"lam0:{K}", positive=True)
    phis = [sym_matrix(f"phi{k}", F, 1) for k in range(K)]
    mus = [sym_matrix(f"mu{m}", D, 1) for m in range(M)]
    W = sym_matrix("W", D, F)
    post = []
    for k in range(K):
        wk = list(sp.symbols(f"w{k}_0:{M - 1}", positive=True))
        wk.append(1 - sum(wk))
        post.append(wk)
    n = F * D
    # Direct: the joint law of (design point, x0).
    Evg = sp.zeros(n, 1)
    Evv = sp.zeros(n, n)
    for k in range(K):
        for m in range(M):
            v = vec(lam[k] * (mus[m] - W * phis[k]) * phis[k].T)
            Evg += q[k] * post[k][m] * v
            Evv += q[k] * post[k][m] * v * v.T
    direct = Evv - Evg * Evg.T
    proxy = sp.zeros(n, n)
    misfit2 = sp.zeros(n, n)
    for k in range(K):
        mbar = sum((post[k][m] * mus[m] for m in range(M)), sp.zeros(D, 1))
        Sp = sum(
            (post[k][m] * (mus[m] - mbar) * (mus[m] - mbar).T for m in range(M)), sp.zeros(D, D)
        )
        mk = mbar - W * phis[k]
        proxy += q[k] * lam[k] ** 2 * kron(phis[k] * phis[k].T, Sp)
        misfit2 += q[k] * lam[k] ** 2 * kron(phis[k] * phis[k].T, mk * mk.T)
    Eg = sum(
        (
            q[k]
            * lam[k]
            * (sum((post[k][m] * mus[m] for m in range(M)), sp.zeros(D, 1)) - W * phis[k])
            * phis[k].T
            for k in range(K)
        ),
        sp.zeros(D, F),
    )
    misfit = misfit2 - vec(Eg) * vec(Eg).T
    return {"direct": direct, "proxy": proxy, "misfit": misfit, "Eg": Eg, "Evg": Evg}


# -- 7: the V-kernel factors --------------------------------------------------------------------
def score_covariance_factor(schedule: Schedule | str) -> dict:
    """Covariance of ``s^ = (alpha D^ - x)/sigma**2`` from that of ``D^``, and the V-kernel factor.

    ``D^`` at ``(x, t)`` and ``(x2, t2)`` is a random pair with two outcomes (probability ``p``);
    the covariance of the scores is computed from the outcomes (with symbols ``a1, a2`` for
    ``alpha_t, alpha_t2`` and ``v1, v2`` for ``sigma**2``) and divided by ``Cov[D^, D^']``.
    Returns ``generic_ratio`` (``a1 a2 / (v1 v2)``, in those symbols), ``score_cov_ratio`` (the
    schedule's ``(alpha/sigma**2)(alpha'/sigma'**2)``), ``v_factor`` (``V`` divided by
    ``Cov[D^, D^']``, via :func:`gtv.theory.path_integral.v_kernel`) and ``c_t``
    (``D_t alpha_t / sigma_t**2``; ``v_factor = c_t c_t2``).
    """
    sch = as_schedule(schedule)
    p = sp.Symbol("p", positive=True)
    u1, u2, w1, w2, xx, xx2 = sp.symbols("u1 u2 w1 w2 x x2", real=True)
    a1, a2, v1, v2 = sp.symbols("a1 a2 v1 v2", positive=True)

    def score(Dh, x_, al, var):
        return (al * Dh - x_) / var

    def cov(f1, f2, g1, g2):
        m1, m2 = p * f1 + (1 - p) * f2, p * g1 + (1 - p) * g2
        return p * (f1 - m1) * (g1 - m2) + (1 - p) * (f2 - m1) * (g2 - m2)

    cov_D = cov(u1, u2, w1, w2)
    cov_s = cov(
        score(u1, xx, a1, v1), score(u2, xx, a1, v1), score(w1, xx2, a2, v2), score(w2, xx2, a2, v2)
    )
    generic = sp.factor(sp.cancel(cov_s / cov_D))
    sub = {
        a1: sch.alpha,
        v1: sch.sigma2,
        a2: sch.alpha.subs(t, t2),
        v2: sch.sigma2.subs(t, t2),
    }
    ratio = generic.subs(sub)
    V = v_kernel(sch, ratio * cov_D)
    c_t = sch.diffusion * sch.alpha / sch.sigma2
    return {
        "generic_ratio": generic,
        "generic_symbols": (a1, v1, a2, v2),
        "score_cov_ratio": ratio,
        "v_factor": sp.cancel(V / cov_D),
        "c_t": c_t,
        "c_t2": c_t.subs(t, t2),
    }


# -- 8: closed form for a constant feature ------------------------------------------------------
def constant_feature_theory(
    points: Sequence[object], schedule: Schedule | str, eps: object, rho_value: object = rho
) -> dict:
    """Population theory for the single constant feature ``phi = 1`` (1-D points).

    ``Sigma = E_t[lam]``, ``A = E_t[lam] mean(mu)``, ``W_inf = A / (Sigma + rho)``,
    ``Cov g = E_t[lam**2] mean((mu - W_inf)**2) - (rho W_inf)**2`` (total; the split needs the
    posterior and has no closed form), ``P Var D^ = Cov g / (Sigma + rho)**2``.
    ``E_t`` is over ``t ~ U[eps, T]``, integrated by sympy (closed form for ``linear-variance``).
    """
    sch = as_schedule(schedule)
    pts = [sp.sympify(m) for m in points]
    if len(pts) < 1:
        raise ValueError("points must contain at least one training point")
    eps = sp.sympify(eps)
    T = sch.T
    lam = sch.alpha**2 / sch.sigma2
    E1 = sp.simplify(sp.integrate(sp.simplify(lam), (t, eps, T)) / (T - eps))
    E2 = sp.simplify(sp.integrate(sp.expand(sp.simplify(lam**2)), (t, eps, T)) / (T - eps))
    mean_mu = sum(pts) / len(pts)
    Sigma = E1
    A = E1 * mean_mu
    W = A / (Sigma + rho_value)
    cov_g = E2 * sum((m - W) ** 2 for m in pts) / len(pts) - (rho_value * W) ** 2
    return {
        "E_lam": E1,
        "E_lam2": E2,
        "Sigma": Sigma,
        "A": A,
        "W_inf": W,
        "cov_g": cov_g,
        "P_var_D": cov_g / (Sigma + rho_value) ** 2,
    }
