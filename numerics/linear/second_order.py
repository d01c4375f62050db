"""Second-order (``1/P**2``) theory of linear-feature ensembles by quadrature (docs/math/linear.md).

The first-order theory (:mod:`gtv.numerics.linear.theory`) keeps ``Var D^ = (1/P) a^T Cov(g) a``.
With the heavy-tailed DSM weight ``lam = alpha**2/sigma**2 ~ 1/t`` the early-time features see few
effective samples, and the next order in ``1/P`` is visible at ``P ~ 10**3 - 10**4``. This module
adds the ``O(1/P**2)`` variance and the ``O(1/P)`` mean of ``D^(z)`` at a query point ``z``.

Derivation
----------
Notation as in :mod:`gtv.numerics.linear.theory` (``D x F`` weights, ``D = 1`` or more): one triple
``j`` gives ``u_j = g_j - E g`` (``g = lam (x0 - D_bar) phi^T``, ``D x F``) and
``v_j = lam_j phi_j phi_j^T - Sigma`` (``F x F``); both have mean zero. Exactly,
``W - W_inf = dg Sigma_P^{-1}`` with ``dg = (1/P) sum_j u_j``, ``Sigma_P = Sigma_r + Delta``,
``Delta = (1/P) sum_j v_j``. With ``R = Sigma_r^{-1}`` and the query vector ``a = R phi(z)``,
``Sigma_P^{-1} = R - R Delta R + R Delta R Delta R - ...`` gives

    ``X = D^(z) - D_bar(z) = X1 + X2 + X3 + O(P**-2)``,
    ``X1 = dg a``,  ``X2 = -dg R Delta a``,  ``X3 = dg R Delta R Delta a``

(``X_k = O(P**(-k/2))``). Every expectation below is a sum over iid indices; a term survives only
if every index appears at least twice (``E u = E v = 0``). ``E_j E_k`` means two independent
triples; all single-triple expectations are population integrals.

* **Mean** (order ``1/P``): ``E X = E X2 + O(P**-2) = -(1/P) E[u R v] a``.
* **Variance** to order ``1/P**2``: ``Cov X = (1/P) V1 + (1/P**2) V2 + O(P**-3)``,

  - ``V1 = E[(u a)(u a)^T]`` (exact coefficient of ``1/P``: the first-order theory);
  - ``E[X1 X2^T]``: only ``j = k = l`` gives ``-(1/P**2) T2``, ``T2 = E[(u a)(u R v a)^T]``
    (the third-moment term);
  - ``E[X2 X2^T]``: the pairings of ``(j k)(l m)`` with two distinct indices:
    ``(j=k, l=m)`` gives ``E[X2] E[X2]^T`` and cancels against ``E X E X^T`` (up to
    ``O(P**-3)``); ``(j=l, k=m)`` gives ``Tv = E_j E_k[(u_j R v_k a)(u_j R v_k a)^T]``;
    ``(j=m, k=l)`` gives ``Tx = E_j E_k[(u_j R v_k a)(u_k R v_j a)^T]``; all-equal indices
    are ``O(P**-3)``;
  - ``E[X1 X3^T]`` (``X1`` index ``m``, ``X3 = (1/P**3) sum u_j R v_k R v_l a``):
    ``(m=j, k=l)``: ``Ca = E_j E_k[(u_j a)(u_j R v_k R v_k a)^T]``,
    ``(m=k, j=l)``: ``Cb = E_j E_k[(u_k a)(u_j R v_k R v_j a)^T]``,
    ``(m=l, j=k)``: ``Cc = E_j E_l[(u_l a)(u_j R v_j R v_l a)^T]``;
  - ``E[X1 X4^T]``, ``E[X2 X3^T]`` (five factors) are ``O(P**-3)``.

  So ``V2 = -(T2 + T2^T) + Tv + Tx + (C + C^T)`` with ``C = Ca + Cb + Cc``.

Reduction to population moments
-------------------------------
Conditional on the design point ``(x, t)``, ``x0`` follows the posterior over the training
points: ``r = x0 - D_bar`` has ``E[r | x,t] = m = mu_bar - D_bar`` and
``E[r r^T | x,t] = Q2 = Sigma_post + m m^T``; ``u`` is affine in ``x0`` and enters each
single-triple expectation at most twice, so only ``m`` and ``Q2`` are needed. With
``B = E g = rho W_inf`` (``E[lam m phi^T] = B``), ``kappa = phi^T R phi`` and the
query-independent moments

* ``C4[f,d,f',e] = Cov(g_df, g_ef')`` (the first-order ``cov_g``), ``S2 = C4 + vec B vec B^T``;
* ``T3[d,f,f',f''] = E[lam**2 m_d phi_f phi_f' phi_f'']`` (symmetric in the last three);
* ``M2 = E[v R v] = E[lam**2 kappa phi phi^T] - Sigma R Sigma``;
* ``H[f,f',d,e] = E[lam**2 phi_f phi_f' (R phi)^T C4[:,d,:,e] (R phi)]``;
* ``A3[f,f',d,e] = E[lam**3 kappa phi_f phi_f' Q2_de]``;
* ``Ev = E[u R v] = T3:R - B R Sigma`` (``(T3:R)_dg = E[lam**2 kappa m_d phi_g]``),

and, per query, ``K0_d = T3[d] . a`` (``F x F``),
``K_d = E[u_d (v a)^T] = K0_d - B_d (Sigma a)^T`` and
``L_d = E[(u a)_d v] = K0_d - (B a)_d Sigma``:

* ``T2 = A3(a,a) - S2(a, R Sigma a) - T3(a,a,.) R B^T - (B a)(Ev' a)^T + 2 (B a)(B R Sigma a)^T``
  with ``Ev' = T3:R`` (expanding ``(u a)(u R v a)^T`` in ``r`` and using ``E[lam m phi] = B^T``);
* ``Tv = E[u R M_v R u^T]`` with ``M_v = E[v a a^T v]``: ``Tv = H(a,a) - C4(R Sigma a, R Sigma a)``;
* ``Tx_de = tr(K_d R K_e R)``;
* ``Ca = C4(a, R M2 a)``, ``Cb_de = tr(K_e^T R L_d R)``, ``Cc_de = (Ev R L_d a)_e``.

Quadrature
----------
The same deterministic rules as the first-order theory (no Monte Carlo): its time nodes
(``LinearTheory.t_nodes``, Gauss-Legendre on geometric panels, which integrate the
``lam**3 ~ t**-3`` moments) and a Gauss-Hermite grid per mixture component in ``x``
(``n_hermite`` per axis, default the theory's). ``backend="product"`` uses the product structure
``phi = phi_space (x) phi_time``: per time node only spatial moments (``F_s**3`` for ``T3``), then
one matrix product over time nodes assembles the ``F``-space tensors (cost
``n_t n_x F_s**3 + n_t F**3``; memory ``D F**3``). ``backend="reference"`` forms every full
feature vector and sums directly (:func:`design_moments`, the plain reference). Per query the
cost is ``O(D**2 F**3)`` (no ``F**4`` tensor is formed).

Validity (measured; tests/numerics/linear/test_second_order.py)
----------------------------------------------------------------------
An asymptotic expansion: the remainder is ``O(P**-3)``, i.e. ``O(1/P**2)`` relative to the first
order, with a coefficient that is large where the ``1/P**2`` term is (few effective samples: early
times, and points whose features are little visited, e.g. the data points' flanks and the edge of
the feature range). Data ``{-1, 0, 1}``, ``eps = 0.01``, ridge 0.1:

* F = 4x4, N = 20000 models: mean ``|emp/pred - 1|`` over 20 points is 0.31 / 0.11 (first /
  first + second order) at P = 300, 0.057 / 0.011 at P = 1000, 0.021 / 0.008 at P = 3000 (the
  last at the Monte Carlo floor). At P = 300 the second-order term reaches 70% of the first
  (x = -1, t <= 0.1) and the expansion has broken down (emp/2nd = 1.45); at P = 1000 the
  residual there is 5% where the second-order term is 21% (third order).
* F = 8x8, P = 4000 (the Figure-2 acceptance configuration): every point with Var > 1e-4 is within
  8% with first + second order (first order: up to 30% off); with N = 10000 models the 95% CI of
  emp/pred contains 1 at 58 of 59 points, and the ``1/P`` mean correction matches the ensemble
  mean at the feature-range edges. At P = 2000 the second-order term reaches 41% at x = +-1.5 and
  residuals of 6-10% (third order) remain there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gtv.numerics.blas import serial_blas
from gtv.numerics.checks import (
    check_query_pair,
    check_ridge,
    check_samples_per_model,
    set_checked_arrays,
)
from gtv.numerics.dsm import dsm_weights
from gtv.numerics.features import ProductFeatures
from gtv.numerics.io import load_result_of_kind, result_file, save_result
from gtv.numerics.linear.theory import LinearTheory
from gtv.numerics.posterior import posterior_stats
from gtv.numerics.quadrature import hermite_quadrature
from gtv.numerics.schedules import NumericSchedule, get_schedule

__all__ = [
    "TERM_NAMES",
    "SecondOrderMoments",
    "design_moments",
    "second_order_denoiser_moments",
    "second_order_moments",
]

#: Unit terms returned by :meth:`SecondOrderMoments.terms` (module docstring).
TERM_NAMES = (
    "first",
    "third_moment",
    "direct_pair",
    "crossed_pair",
    "cubic_a",
    "cubic_b",
    "cubic_c",
)

_QUERY_DOUBLES = 4_000_000  # query chunk x D x F**2 (per-query F x F intermediates)


@dataclass
class SecondOrderMoments:
    """Query-independent population moments for the ``O(1/P**2)`` ensemble statistics.

    The module docstring defines each moment; ``F`` features, ``D`` dimensions.

    Attributes
    ----------
    sigma : (F, F)
        ``Sigma = E[lam phi phi^T]``.
    ridge : float
    W_inf : (D, F)
    cov4 : (F, D, F, D)
        ``C4 = Cov(vec g)`` in the ``(f, d, f', e)`` layout of :mod:`gtv.numerics.linear.theory`.
    T3 : (D, F, F, F)
        ``E[lam**2 m_d phi phi phi]``.
    M2 : (F, F)
        ``E[v R v]``.
    H, A3 : (F, F, D, D)
    features : ProductFeatures or None
        Needed to evaluate ``phi(z)`` at query points ``(x, t)``; without it use
        :meth:`terms_from_phi`.
    """

    sigma: np.ndarray
    ridge: float
    W_inf: np.ndarray
    cov4: np.ndarray
    T3: np.ndarray
    M2: np.ndarray
    H: np.ndarray
    A3: np.ndarray
    features: ProductFeatures | None = None
    schedule: NumericSchedule | None = None

    def __post_init__(self) -> None:
        F = self.sigma.shape[0]
        D = self.W_inf.shape[0]
        shapes = {
            "sigma": (F, F),
            "W_inf": (D, F),
            "cov4": (F, D, F, D),
            "T3": (D, F, F, F),
            "M2": (F, F),
            "H": (F, F, D, D),
            "A3": (F, F, D, D),
        }
        set_checked_arrays(self, shapes)
        with serial_blas():
            R = np.linalg.inv(self.sigma + self.ridge * np.eye(F))
        self.R = (R + R.T) / 2
        self.B = self.ridge * self.W_inf
        #: ``E[lam**2 kappa m phi^T]`` (D, F) and ``E[u R v] = that - B R Sigma``.
        self.e_kappa = np.einsum("dabg,ab->dg", self.T3, self.R)
        self.E_uRv = self.e_kappa - self.B @ self.R @ self.sigma

    @property
    def n_features(self) -> int:
        return self.sigma.shape[0]

    @property
    def dim(self) -> int:
        return self.W_inf.shape[0]

    # -- persistence ----------------------------------------------------------------------------
    _ARRAYS = ("sigma", "W_inf", "cov4", "T3", "M2", "H", "A3")

    def save(self, path: str | Path) -> Path:
        """Save to ``.npz`` (arrays + JSON configuration; loading never unpickles)."""
        cfg = {
            "ridge": self.ridge,
            "features": None if self.features is None else self.features.config(),
            "schedule": None if self.schedule is None else self.schedule.name,
            "T": None if self.schedule is None else self.schedule.T,
        }
        arrays = {k: getattr(self, k) for k in self._ARRAYS}
        return save_result(path, arrays, cfg, kind="second_order_moments")

    @classmethod
    def load(cls, path: str | Path) -> SecondOrderMoments:
        """Read a file written by :meth:`save`; ``ValueError`` naming the file if it is corrupt,
        of another kind, or inconsistent (shapes, non-finite arrays, a negative ridge)."""
        arrays, cfg = load_result_of_kind(
            path,
            "second_order_moments",
            "a SecondOrderMoments",
            legacy=lambda c: {"ridge", "features", "schedule"} <= set(c) and len(c) == 4,
        )
        with result_file(path, "SecondOrderMoments"):
            feats = cfg["features"]
            feats = None if feats is None else ProductFeatures.from_config(feats)
            sched = cfg["schedule"]
            out = cls(
                ridge=check_ridge(cfg["ridge"]),
                features=feats,
                schedule=None if sched is None else get_schedule(sched, cfg["T"]),
                **{k: np.asarray(arrays[k]) for k in cls._ARRAYS},
            )
            if feats is not None and feats.n_features != out.n_features:
                raise ValueError(
                    f"features have {feats.n_features} functions but sigma is "
                    f"{out.n_features} x {out.n_features}"
                )
            return out

    # -- per-query terms ------------------------------------------------------------------------
    def terms_from_phi(self, phi: object) -> dict:
        """Unit terms at query feature vectors ``phi`` (n, F): each (n, D, D), ``"mean"`` (n, D).

        ``"first"`` = ``V1``; ``"third_moment"`` = ``T2``; ``"direct_pair"`` = ``Tv``;
        ``"crossed_pair"`` = ``Tx``; ``"cubic_a/b/c"`` = ``Ca, Cb, Cc``; ``"mean"`` =
        ``E[u R v] a``; ``"V2"`` = ``-(T2 + T2^T) + Tv + Tx + (C + C^T)``. Then
        ``E D^ = D_bar - mean/P`` and ``Var D^ = V1/P + V2/P**2``.
        """
        phi = np.asarray(phi, dtype=np.float64)
        F, D = self.n_features, self.dim
        if phi.ndim != 2 or phi.shape[1] != F or not np.all(np.isfinite(phi)):
            raise ValueError(f"phi must be a finite array of shape (n, {F})")
        chunk = max(1, _QUERY_DOUBLES // (D * F * F))
        if phi.shape[0] > chunk:  # bounded memory: (chunk, D, F, F) intermediates
            parts = [self._terms(phi[i : i + chunk]) for i in range(0, phi.shape[0], chunk)]
            return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        return self._terms(phi)

    def _terms(self, phi: np.ndarray) -> dict:
        R, S, B, C4 = self.R, self.sigma, self.B, self.cov4
        with serial_blas():
            a = phi @ R  # (n, F)
            Sa = a @ S
            RSa = Sa @ R
            Ba = a @ B.T  # (n, D)
            BRSa = RSa @ B.T
            RM2a = a @ self.M2 @ R

            def c4(x, y):
                return np.einsum("qa,adbe,qb->qde", x, C4, y, optimize=True)

            K0 = np.einsum("dabg,qg->qdab", self.T3, a, optimize=True)  # (n, D, F, F)
            K = K0 - B[None, :, :, None] * Sa[:, None, None, :]
            L = K0 - Ba[:, :, None, None] * S[None, None]
            KR = K @ R
            RLR = R @ L @ R
            T3aa = np.einsum("qa,qdag->qdg", a, K0)
            out = {"first": c4(a, a)}
            out["third_moment"] = (
                np.einsum("qa,qb,abde->qde", a, a, self.A3, optimize=True)
                - c4(a, RSa)
                - Ba[:, :, None] * BRSa[:, None, :]
                - T3aa @ (R @ B.T)
                - Ba[:, :, None] * (a @ self.e_kappa.T)[:, None, :]
                + 2 * Ba[:, :, None] * BRSa[:, None, :]
            )
            out["direct_pair"] = np.einsum("qa,qb,abde->qde", a, a, self.H, optimize=True) - c4(
                RSa, RSa
            )
            out["crossed_pair"] = np.einsum("qdab,qeba->qde", KR, KR, optimize=True)
            out["cubic_a"] = c4(a, RM2a)
            out["cubic_b"] = np.einsum("qdab,qeab->qde", RLR, K, optimize=True)
            RLa = np.einsum("ij,qdjk,qk->qdi", R, L, a, optimize=True)
            out["cubic_c"] = np.einsum("eg,qdg->qde", self.E_uRv, RLa)
            out["mean"] = a @ self.E_uRv.T
        T2 = out["third_moment"]
        C = out["cubic_a"] + out["cubic_b"] + out["cubic_c"]
        swap = (0, 2, 1)
        out["V2"] = (
            -(T2 + T2.transpose(swap))
            + out["direct_pair"]
            + out["crossed_pair"]
            + C
            + C.transpose(swap)
        )
        return out

    def _phi(self, z: object) -> np.ndarray:
        if self.features is None:
            raise ValueError("these moments carry no features: use terms_from_phi(phi)")
        x, t = check_query_pair(z, "z", self.dim, self.schedule)
        return self.features.evaluate(x, t)

    def terms(self, z: object) -> dict:
        """:meth:`terms_from_phi` at query points ``z = (x, t)`` (``x`` (n, D) or (n,))."""
        return self.terms_from_phi(self._phi(z))

    def weight_moments(self, P: float) -> tuple[np.ndarray, np.ndarray]:
        """Second-order mean and covariance of the weights (``D = 1``): ``(dW, C2)``.

        ``E W = W_inf + dW + O(P**-2)`` with ``dW = -(1/P) E[u R v] R`` (shape (1, F)), and
        ``Cov(vec W) = (1/P) Cov1 + C2 + O(P**-3)`` with ``C2`` (F, F) the matrix of the quadratic
        form ``phi -> V2(phi) / P**2``: ``Var D^(z) = phi^T Cov(vec W) phi`` exactly, so ``V2`` is a
        quadratic form in ``phi`` and polarization over the unit vectors ``e_p`` and
        ``e_p + e_q`` recovers its matrix. ``D > 1`` raises (the ``D x D`` blocks are not fixed by
        their values on the diagonal ``z = z'``).
        """
        P = check_samples_per_model(P)
        if self.dim != 1:
            raise ValueError(f"weight_moments supports D = 1 only, got D = {self.dim}")
        F = self.n_features
        eye = np.eye(F)
        diag = self.terms_from_phi(eye)
        v_diag = diag["V2"][:, 0, 0]
        iu = np.triu_indices(F, 1)
        v_pair = self.terms_from_phi(eye[iu[0]] + eye[iu[1]])["V2"][:, 0, 0]
        C2 = np.diag(v_diag)
        C2[iu] = (v_pair - v_diag[iu[0]] - v_diag[iu[1]]) / 2
        C2[(iu[1], iu[0])] = C2[iu]
        dW = -diag["mean"][:, 0][None, :] / P
        return dW, C2 / P**2

    def denoiser_moments(self, z: object, P: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(mean_correction, var_first, var_second)`` at ``z = (x, t)`` for ``P`` samples.

        ``E D^ = D_bar + mean_correction + O(P**-2)`` (shape (n, D)) and
        ``Cov D^ = var_first + var_second + O(P**-3)`` (each (n, D, D));
        ``var_first`` is the first-order ``denoiser_covariance(paired=True)``.
        """
        P = check_samples_per_model(P)
        tm = self.terms(z)
        return -tm["mean"] / P, tm["first"] / P, tm["V2"] / P**2


# -- moments from an explicit discrete design (the plain reference) ------------------------------
def design_moments(
    weights: object,
    lam: object,
    phi: object,
    mu_bar: object,
    post_cov: object,
    ridge: float,
    features: ProductFeatures | None = None,
    schedule: NumericSchedule | None = None,
) -> SecondOrderMoments:
    """Second-order moments of a discrete design, all sums formed directly (plain numpy).

    The design has nodes ``n`` with probability ``weights[n]`` (summing to 1), DSM weight
    ``lam[n]``, feature vector ``phi[n]`` (F), posterior mean ``mu_bar[n]`` (D) and covariance
    ``post_cov[n]`` (D, D) of ``x0`` (zero for a node with a known ``x0 = mu_bar``). ``Sigma``,
    ``A``, ``W_inf``, ``Cov(vec g)`` are computed from the same design, so the result is exact
    for it (used for the quadrature reference and for exact finite-P checks).
    """
    w = np.asarray(weights, dtype=np.float64)
    lam = np.asarray(lam, dtype=np.float64)
    phi = np.asarray(phi, dtype=np.float64)
    mu_bar = np.asarray(mu_bar, dtype=np.float64)
    post_cov = np.asarray(post_cov, dtype=np.float64)
    n, F = phi.shape
    D = mu_bar.shape[1]
    if w.shape != (n,) or lam.shape != (n,) or mu_bar.shape != (n, D):
        raise ValueError("weights, lam (n,), phi (n, F), mu_bar (n, D) must have matching n")
    if post_cov.shape != (n, D, D):
        raise ValueError(f"post_cov must have shape ({n}, {D}, {D})")
    ridge = float(ridge)
    if not (np.isfinite(ridge) and ridge >= 0):
        raise ValueError(f"ridge must be finite and >= 0, got {ridge!r}")
    w1, w2, w3 = w * lam, w * lam**2, w * lam**3
    Sig = (phi * w1[:, None]).T @ phi
    A = (mu_bar * w1[:, None]).T @ phi
    R = np.linalg.inv(Sig + ridge * np.eye(F))
    R = (R + R.T) / 2
    W_inf = A @ R
    B = ridge * W_inf
    m = mu_bar - phi @ W_inf.T
    Q2 = post_cov + m[:, :, None] * m[:, None, :]
    vB = B.T.reshape(-1)
    C4 = np.einsum("n,na,nde,nb->adbe", w2, phi, Q2, phi) - np.outer(vB, vB).reshape(F, D, F, D)
    kappa = np.einsum("na,ab,nb->n", phi, R, phi)
    Rphi = phi @ R
    h = np.einsum("na,adbe,nb->nde", Rphi, C4, Rphi)
    T3 = np.einsum("n,nd,na,nb,ng->dabg", w2, m, phi, phi, phi)
    M2 = (phi * (w2 * kappa)[:, None]).T @ phi - Sig @ R @ Sig
    H = np.einsum("n,nde,na,nb->abde", w2, h, phi, phi)
    A3 = np.einsum("n,nde,na,nb->abde", w3 * kappa, Q2, phi, phi)
    return SecondOrderMoments(Sig, ridge, W_inf, C4, T3, M2, H, A3, features, schedule)


def _nodes(theory: LinearTheory, n_hermite: int):
    """Spatial quadrature nodes per mixture component: x (M nq, D) per alpha/sigma, weights."""
    xi, xw = hermite_quadrature(n_hermite, theory.dim)
    M = theory.data.shape[0]
    return xi, np.tile(xw, M) / M


def _reference_design(theory: LinearTheory, n_hermite: int):
    """Every quadrature node of the theory's rules as an explicit design (plain numpy)."""
    sched, data = theory.schedule, theory.data
    xi, wx = _nodes(theory, n_hermite)
    ws, lams, phis, mus, covs = [], [], [], [], []
    for tk, wk in zip(theory.t_nodes, theory.t_weights, strict=True):
        a, s = float(sched.alpha(tk)), math.sqrt(float(sched.sigma2(tk)))
        x = (a * data[:, None, :] + s * xi[None, :, :]).reshape(-1, theory.dim)
        post = posterior_stats(data, x, tk, sched, full_cov=True, backend="numpy")
        ws.append(wk * wx)
        lams.append(np.full(x.shape[0], float(sched.dsm_weight(tk))))
        phis.append(theory.features.evaluate_reference(x, np.full(x.shape[0], tk)))
        mus.append(post.mean)
        covs.append(post.cov)
    return [np.concatenate(v) for v in (ws, lams, phis, mus, covs)]


def _product_moments(theory: LinearTheory, n_hermite: int) -> SecondOrderMoments:
    """Moments from per-time-node spatial sums and one assembly over time nodes."""
    feats, sched, data = theory.features, theory.schedule, theory.data
    D, F = theory.dim, theory.n_features
    fs, ft = feats.n_space_features, feats.time.size
    R = theory.sigma_r_inv
    C4 = (theory.cov_g_proxy + theory.cov_g_misfit).reshape(F, D, F, D)
    G = np.einsum("ax,xdye,yb->adbe", R, C4, R, optimize=True)  # R C4 R, (F, D, F, D)
    R4 = R.reshape(fs, ft, fs, ft)
    G6 = G.reshape(fs, ft, D, fs, ft, D)
    W3 = theory.W_inf.reshape(D, fs, ft)
    t_nodes = theory.t_nodes
    n_t = t_nodes.size
    phit = feats.time.evaluate(t_nodes)  # (n_t, ft)
    lam = dsm_weights(sched, t_nodes)
    c2 = theory.t_weights * lam**2
    c3 = theory.t_weights * lam**3
    xi, wx = _nodes(theory, n_hermite)
    T3s = np.empty((n_t, D, fs, fs, fs))
    M2s = np.empty((n_t, fs, fs))
    Hs = np.empty((n_t, fs, fs, D, D))
    A3s = np.empty((n_t, fs, fs, D, D))
    # All spatial nodes of all time nodes: x = alpha_k mu_m + sigma_k xi_q (one posterior call).
    alpha = np.asarray(sched.alpha(t_nodes), dtype=float)
    sig = np.sqrt(np.asarray(sched.sigma2(t_nodes), dtype=float))
    x_all = (
        alpha[:, None, None, None] * data[None, :, None, :]
        + sig[:, None, None, None] * xi[None, None, :, :]
    ).reshape(n_t, -1, D)
    n_sp = x_all.shape[1]
    post = posterior_stats(
        data, x_all.reshape(-1, D), np.repeat(t_nodes, n_sp), sched, full_cov=True
    )
    mu_all = post.mean.reshape(n_t, n_sp, D)
    cov_all = post.cov.reshape(n_t, n_sp, D, D)
    with serial_blas():
        for k in range(n_t):
            ps = feats.evaluate_space(x_all[k])  # (n, fs)
            pt = phit[k]
            m = mu_all[k] - ps @ (W3 @ pt).T  # (n, D)
            Q2 = cov_all[k] + m[:, :, None] * m[:, None, :]
            Rk = np.einsum("iajb,a,b->ij", R4, pt, pt)
            kappa = np.einsum("ni,ij,nj->n", ps, Rk, ps)
            Gk = np.einsum("iadjbe,a,b->idje", G6, pt, pt)
            h = np.einsum("ni,idje,nj->nde", ps, Gk, ps, optimize=True)
            pp = (ps[:, :, None] * ps[:, None, :]).reshape(-1, fs * fs)  # (n, fs^2)
            wm = wx[:, None] * m
            T3s[k] = (wm.T @ (pp[:, :, None] * ps[:, None, :]).reshape(-1, fs**3)).reshape(
                D, fs, fs, fs
            )
            M2s[k] = ((wx * kappa) @ pp).reshape(fs, fs)
            Hs[k] = (
                ((wx[:, None, None] * h).reshape(-1, D * D).T @ pp)
                .reshape(D, D, fs, fs)
                .transpose(2, 3, 0, 1)
            )
            A3s[k] = (
                (((wx * kappa)[:, None, None] * Q2).reshape(-1, D * D).T @ pp)
                .reshape(D, D, fs, fs)
                .transpose(2, 3, 0, 1)
            )
        # Assembly over time nodes: sum_k c_k (spatial moment)_k (x) phi_t(t_k)^{(x) r}.
        pt2 = (phit[:, :, None] * phit[:, None, :]).reshape(n_t, -1)
        pt3 = (pt2[:, :, None] * phit[:, None, :]).reshape(n_t, -1)
        T3 = ((T3s * c2[:, None, None, None, None]).reshape(n_t, -1).T @ pt3).reshape(
            D, fs, fs, fs, ft, ft, ft
        )
        T3 = T3.transpose(0, 1, 4, 2, 5, 3, 6).reshape(D, F, F, F)
        M2 = ((M2s * c2[:, None, None]).reshape(n_t, -1).T @ pt2).reshape(fs, fs, ft, ft)
        M2 = M2.transpose(0, 2, 1, 3).reshape(F, F)
        M2 = M2 - theory.sigma @ R @ theory.sigma
        H = ((Hs * c2[:, None, None, None, None]).reshape(n_t, -1).T @ pt2).reshape(
            fs, fs, D, D, ft, ft
        )
        H = H.transpose(0, 4, 1, 5, 2, 3).reshape(F, F, D, D)
        A3 = ((A3s * c3[:, None, None, None, None]).reshape(n_t, -1).T @ pt2).reshape(
            fs, fs, D, D, ft, ft
        )
        A3 = A3.transpose(0, 4, 1, 5, 2, 3).reshape(F, F, D, D)
    # Symmetrize the (exactly symmetric) tensors against round-off.
    T3 = (
        T3
        + T3.transpose(0, 1, 3, 2)
        + T3.transpose(0, 2, 1, 3)
        + T3.transpose(0, 2, 3, 1)
        + T3.transpose(0, 3, 1, 2)
        + T3.transpose(0, 3, 2, 1)
    ) / 6
    M2 = (M2 + M2.T) / 2
    H = (H + H.transpose(1, 0, 3, 2)) / 2
    A3 = (A3 + A3.transpose(1, 0, 3, 2)) / 2
    return SecondOrderMoments(
        theory.sigma, theory.ridge, theory.W_inf, C4, T3, M2, H, A3, feats, sched
    )


def second_order_moments(
    theory: LinearTheory, n_hermite: int | None = None, backend: str = "product"
) -> SecondOrderMoments:
    """Population moments of the second-order theory for a first-order :class:`LinearTheory`.

    Parameters
    ----------
    theory : LinearTheory
        Supplies the features, data, schedule, ridge, ``Sigma``, ``W_inf``, ``Cov(vec g)`` and
        the time quadrature nodes.
    n_hermite : int, optional
        Gauss-Hermite nodes per spatial axis (default ``theory.n_hermite``). The ``A3`` integrand
        carries six spatial features (four in the first-order theory); raise it to check.
    backend : {"product", "reference"}
        ``"reference"``: every node's full feature vector, direct sums (slow; for tests).
    """
    if not isinstance(theory, LinearTheory):
        raise TypeError("theory must be a LinearTheory (gtv.numerics.linear.theory)")
    if n_hermite is None:
        n_hermite = theory.n_hermite
    if isinstance(n_hermite, bool) or not isinstance(n_hermite, (int, np.integer)) or n_hermite < 1:
        raise ValueError(f"n_hermite must be an integer >= 1, got {n_hermite!r}")
    if backend == "product":
        return _product_moments(theory, int(n_hermite))
    if backend == "reference":
        design = _reference_design(theory, int(n_hermite))
        return design_moments(*design, theory.ridge, theory.features, theory.schedule)
    raise ValueError(f"backend must be 'product' or 'reference', got {backend!r}")


def second_order_denoiser_moments(
    theory: LinearTheory | SecondOrderMoments, z: object, P: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean_correction, var_first, var_second)`` of ``D^(z)`` to order ``1/P**2``.

    ``E D^(z) = D_bar(z) + mean_correction + O(P**-2)`` with
    ``mean_correction = -(1/P) E[u R v] R phi(z)`` (n, D), and
    ``Cov D^(z) = var_first + var_second + O(P**-3)`` (each (n, D, D)); ``var_first`` equals
    ``theory.denoiser_covariance(z, P=P, paired=True)``. Pass a precomputed
    :class:`SecondOrderMoments` (from :func:`second_order_moments`) to avoid recomputing the
    population moments.
    """
    mom = theory if isinstance(theory, SecondOrderMoments) else second_order_moments(theory)
    return mom.denoiser_moments(z, P)
