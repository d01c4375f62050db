"""Large-P theory of lazy infinite-width networks trained on DSM.

docs/math/linear.md to docs/math/kernel.md.

Notebook-ready derivation
-------------------------
**Population dynamics.** One triple is ``z' = (x', t')`` with ``t' ~ U[eps, T]``,
``x' ~ p(x | t')`` (a Gaussian mixture over the M training points), ``x0' | z'`` the posterior
over training points (mean ``mu_bar``, covariance ``Sigma_post``) and weight
``lam(z') = alpha**2/sigma**2``. Lazy training on P triples
(:mod:`gtv.numerics.kernel.regression`; ``rho = 0`` here for brevity) is the function-space flow
``dD^/dtau = -lr (T_P D^ - b_P)`` with the empirical operator
``(T_P f)(z) = (1/P) sum_j lam_j Theta(z, z_j) f(z_j)`` and
``b_P = (1/P) sum_j lam_j Theta(., z_j) x0_j``. As ``P -> inf`` they become
``(T f)(z) = E_{z'}[lam(z') Theta(z, z') f(z')]`` and
``b = T mu_bar`` (``E[x0' | z'] = mu_bar``), so from ``D^_0 = 0``

    ``D_bar_tau = (I - e^{-lr tau T}) mu_bar``      (``rho = 0``; docs/math/kernel.md),

i.e. the kernel flow pulls the Bayes denoiser ``mu_bar`` through the spectral filter of ``T``.

**Discretization (Nystrom).** ``E_{z'}`` is replaced by a quadrature: Gauss-Legendre in
``log t`` (``n_t`` nodes, weights ``t_k w_k / (T - eps)``; the weight ``lam ~ 1/t`` makes the
integrand smooth in ``log t``) times, per mixture component, the Gauss-Hermite rule
``x = alpha_t mu_m + sigma_t xi`` (:func:`gtv.numerics.quadrature.hermite_quadrature`, ``n_hermite``
per axis), i.e. nodes ``z_q`` with probabilities ``omega_q``. On this discrete measure everything
is exact linear algebra. Write ``G = Theta(N, N)``, ``W = diag(omega_q lam_q)``,
``B = W^(1/2) G W^(1/2) = U diag(s) U^T`` (kept: ``s > rcond s_max``; rank r), and the Nystrom
eigenfeatures ``psi(z) = U^T W^(1/2) Theta(N, z)`` (r-vector, ``|psi_k(z)|**2 <= s_k Theta(z,z)``),
``mu_tilde = U^T W^(1/2) mu_bar(N)`` (r x D), ``x_k = s_k + rho``. Then
``D_bar_tau(z) = sum_k psi_k(z) g_k mu_tilde_k`` with the filter ``g_k = g_tau(x_k)`` of
:func:`gtv.numerics.kernel.divided_differences.lazy_filter` (the same filter as a finite training
set: ``s`` plays the role of ``eig(Lam^1/2 Theta Lam^1/2)/P``).

**First order in 1/P.** On the node measure a training set is described by node frequencies
``n_q = #{j: q_j = q}/P`` and sums ``y_q = (1/P) sum_{j: q_j = q} x0_j``; the model is
``D^(z) = Theta(z, N) c`` with ``dc/dtau = -lr (diag(lam n) G c + rho c - Lam y)``. Linearizing
around ``n = omega``, ``y = omega mu_bar`` (``D_bar_u`` the mean path):

    ``delta c_tau = lr int_0^tau e^{-lr (tau-u)(W G + rho)} Lam zeta(u) du``,
    ``zeta(u) = (1/P) sum_j [e_{q_j} (x0_j - D_bar_u(z_{q_j})) - E(.)]``,

a mean of P iid zero-mean terms, so ``Cov = (1/P) x`` the covariance of one triple's functional.
By the law of total covariance over ``z'`` it splits into

* **proxy** (``x0 - mu_bar``, conditional covariance ``Sigma_post``, independent of ``u``):
  ``C_prox[k, l] = g_k g_l sum_q lam_q U_qk U_ql Sigma_post,q``;
* **misfit** (``m_q(u) = mu_bar_q - D_bar_u(z_q)``, which relaxes during training):
  ``C_mis = sum_q lam_q Z_q Z_q^T - L L^T`` (evaluated in the centred form
  ``sum_q V_q V_q^T``, ``V_q = lam_q^(1/2) Z_q - omega_q^(1/2) L``), ``Z_q[k] = U_qk Y_q[k]``,
  ``L = sum_q (omega_q lam_q)^(1/2) Z_q``,
  ``Y_q[k] = mu_bar_q g_k - sum_l I_kl psi_l(z_q) mu_tilde_l``,

with ``I_kl = lr int_0^tau e^{-lr (tau-u) x_k} g_u(x_l) du = phi[0, x_k, x_l]`` (second divided
difference of ``phi(x) = e^{-lr tau x}``, :mod:`gtv.theory.ntk`; for gradient descent
``phi = (1 - lr x)**k`` and sums replace integrals, with the same result). In eigen-coordinates
``Cov[D^(z), D^(z')] = (1/P) psi(z)^T C psi(z')`` (``C = C_prox + C_mis``, shape (r, D, r, D)), and
``V(x,t; x',t') = c_t Cov c_t'`` with ``c_t = D_t alpha_t / sigma_t**2``
(:func:`gtv.numerics.linear.theory.v_kernel_factor`). Without ridge ``L_k = lr tau e^{-lr tau s_k}
mu_tilde_k`` (flow), a built-in check.

**Limits.** ``tau -> 0``: ``g_k -> lr tau``, so ``D_bar = O(tau)`` and ``Cov = O(tau**2)``:
``Cov -> (lr tau)**2 / P Cov_{z', x0'}[lam Theta(z, z') x0']`` (the first gradient step).
``tau -> inf`` (``rho = 0``): ``g_k -> 1/s_k``; on the nodes ``D_bar -> mu_bar`` (the Bayes
denoiser is learned: memorization at the ensemble level), the misfit part vanishes and the proxy
part becomes ``(1/P) sum_q l_q(z) l_q(z') Sigma_post,q / omega_q`` with the Nystrom cardinal
functions ``l_q = Theta(., N) G^-1 e_q``: a *local* kernel that grows without bound as the
quadrature is refined (``~ delta(z - z') Sigma_post / (P p(z))`` in the continuum), the analogue of
the naive estimator's white noise (docs/math/naive_estimator.md). The first-order expansion needs
the effective dimension ``d_eff(tau) = sum_k s_k g_k`` (``sum_k (1 - e^{-lr tau s_k})`` for the
ridgeless flow: the number of learned eigendirections) to be small compared with P; it is reported
by :meth:`NTKTheory.effective_dimension` and the theory is not to be trusted when it is not.

**Measured validity** (tests/numerics/kernel/test_theory.py; data {-1, 0, 1}, vp-linear, ReLU,
query points x in {-1.2, -0.5, 0.3, 1.0} at t = 0.2). On the node measure the formulas are exact
(agreement with a complex-step linearization of the exact solution to ~1e-15). Against ensembles
of trained infinite-width models, eps = 0.1: the mean has an O(1/P) bias (``P * bias`` ~ 2 at
tau = 10, ~5 at tau = 30, measured for P = 150 ... 1200) and the variance agrees to a few
percent for P >= 300 at tau <= 100 (d_eff <= 3.4). At eps = 0.01 the standard deviation of the
trained models exceeds the theory's by 20-120 % at the outer query points (t = 0.1, tau = 10,
P = 200-1600; the excess shrinks only slowly with P): the DSM weight ``lam ~ 1/(0.2 t)``
reaches ~250 at t = eps, single triples are then not
perturbations of the empirical operator, and the first-order theory fails although d_eff is
small.

The builder :func:`gtv.numerics.kernel.nystrom.ntk_theory` constructs the nodes; the theory at
one training time and budget (:class:`gtv.numerics.kernel.prediction.KernelTheoryAt`, the theory
contract) draws its Gaussian-field ensemble, and :mod:`gtv.validation.predictions` turns it into
predictions of [q] (Gaussian field, white-noise Fokker-Planck).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gtv.numerics.checks import (
    check_query_pair,
    check_query_points,
    check_ridge,
    check_samples_per_model,
)
from gtv.numerics.io import load_result_of_kind, result_file, save_result
from gtv.numerics.kernel.checks import (
    FLOWS,
    check_activation,
    check_gd_stable,
    check_lr,
    check_tau,
    gd_stability_limit,
    gd_step_count,
)
from gtv.numerics.kernel.divided_differences import lazy_divided_differences, lazy_filter
from gtv.numerics.kernel.gram import ntk_gram, serial_blas
from gtv.numerics.kernel.inputs import check_embedding, ntk_inputs
from gtv.numerics.linear import v_kernel_factor
from gtv.numerics.schedules import NumericSchedule, get_schedule

__all__ = ["PARTS", "NTKTheory", "check_part", "check_scalar_tau"]

#: Parts of the first-order covariance.
PARTS = ("total", "proxy", "misfit")


def check_part(part: object) -> str:
    """Return ``part`` if it is one of :data:`PARTS`, else raise ``ValueError``."""
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}")
    return str(part)


def check_scalar_tau(tau: object) -> float:
    """One training time ``tau >= 0`` (``inf`` allowed) as a float; ``ValueError`` otherwise."""
    arr = check_tau(tau)
    if arr.ndim != 0:
        raise ValueError(f"tau must be a single number >= 0 here, got shape {arr.shape}")
    return float(arr)


# -- result -------------------------------------------------------------------------------------
@dataclass
class NTKTheory:
    """Nystrom-discretized population theory of lazy NTK ensembles (module docstring).

    Build with :func:`gtv.numerics.kernel.nystrom.ntk_theory`. Node arrays are stored; the
    eigendecomposition is recomputed on construction (also after :meth:`load`).

    Attributes
    ----------
    data : ndarray (M, D)
    schedule : NumericSchedule
    eps : float
    activation, embedding : str
    bias, ridge, lr : float
    flow : str
        ``"gradient-flow"`` or ``"gradient-descent"`` (``k = tau / lr`` steps).
    n_t, n_hermite : int
    rcond : float
        Eigenvalues ``s <= rcond * s_max`` of ``B`` are dropped (their features are
        ``|psi_k| <= sqrt(s_k Theta(z, z))``).
    t_nodes, t_weights : ndarray (n_t,)
        The time rule (:func:`gtv.numerics.quadrature.log_time_quadrature`).
    nodes_x (Q, D), nodes_t (Q,), omega (Q,), lam (Q,), mu_bar (Q, D), sigma_post (Q, D, D)
        Quadrature nodes, probabilities, DSM weights and posterior moments.
    nodes_z : ndarray (Q, d_in)
        Network inputs of the nodes.
    s : ndarray (r,)
        Kept eigenvalues of ``B = W^1/2 G W^1/2`` (descending).
    basis : ndarray (Q, r)
        ``W^(1/2) U``: ``psi(z) = Theta(z, N) @ basis``.
    mu_tilde : ndarray (r, D)
    """

    data: np.ndarray
    schedule: NumericSchedule
    eps: float
    activation: str
    embedding: str
    bias: float
    ridge: float
    lr: float
    flow: str
    n_t: int
    n_hermite: int
    rcond: float
    t_nodes: np.ndarray
    t_weights: np.ndarray
    nodes_x: np.ndarray
    nodes_t: np.ndarray
    omega: np.ndarray
    lam: np.ndarray
    mu_bar: np.ndarray
    sigma_post: np.ndarray
    nodes_z: np.ndarray = field(init=False, repr=False)
    s: np.ndarray = field(init=False, repr=False)
    U: np.ndarray = field(init=False, repr=False)
    basis: np.ndarray = field(init=False, repr=False)
    psi_nodes: np.ndarray = field(init=False, repr=False)
    mu_tilde: np.ndarray = field(init=False, repr=False)
    s_all: np.ndarray = field(init=False, repr=False)
    _cache: dict = field(init=False, repr=False)

    @serial_blas
    def __post_init__(self) -> None:
        self.activation = check_activation(self.activation)
        check_embedding(self.embedding)
        if self.flow not in FLOWS:
            raise ValueError(f"flow must be one of {FLOWS}, got {self.flow!r}")
        self.lr = check_lr(self.lr)
        self.ridge = check_ridge(self.ridge)
        self.nodes_z = ntk_inputs(
            self.nodes_x, self.nodes_t, self.eps, self.schedule, self.embedding, self.bias
        )
        G = ntk_gram(self.nodes_z, None, self.activation)
        sw = np.sqrt(self.omega * self.lam)
        B = G * sw[:, None] * sw[None, :]
        s, U = np.linalg.eigh(B)
        s, U = s[::-1], U[:, ::-1]
        self.s_all = s.copy()
        keep = s > self.rcond * s[0]
        self.s = s[keep]
        self.U = np.ascontiguousarray(U[:, keep])
        self.basis = sw[:, None] * self.U
        self.psi_nodes = G @ self.basis
        self.mu_tilde = self.basis.T @ self.mu_bar
        self._cache = {}
        if self.flow == "gradient-descent":
            check_gd_stable(self.lr, self.lr_max, "the population kernel")

    # -- sizes and diagnostics ----------------------------------------------------------------
    @property
    def dim(self) -> int:
        return self.data.shape[1]

    @property
    def n_nodes(self) -> int:
        return self.omega.size

    @property
    def rank(self) -> int:
        return self.s.size

    @property
    def lr_max(self) -> float:
        """Population gradient-descent stability limit ``2 / (s_max + rho)``.

        A training set of size P has its own limit ``2P / (lambda_max(Lam^1/2 Theta Lam^1/2) +
        P rho)``, close to this one for large P.
        """
        return gd_stability_limit(self.s, self.ridge)

    def check_training_time(self, tau: object) -> float:
        """``tau`` as a float (one number >= 0, ``inf`` allowed); for gradient descent also
        checks ``lr < lr_max`` and that ``tau / lr`` is an integer (``ValueError`` otherwise)."""
        tau = check_scalar_tau(tau)
        if self.flow == "gradient-descent":
            check_gd_stable(self.lr, self.lr_max, "the population kernel")
            gd_step_count(tau, self.lr)
        return tau

    def filter(self, tau: float) -> np.ndarray:
        """Spectral filter ``g_tau(s_k + rho)`` (r,)."""
        tau = self.check_training_time(tau)
        return lazy_filter(self.s + self.ridge, tau, self.lr, self.flow, rcond=0.0)

    def effective_dimension(self, tau: object) -> np.ndarray:
        """``d_eff(tau) = sum_k s_k g_tau(s_k + rho)``: learned eigendirections (scalar or array).

        The first-order theory needs ``d_eff << P``.
        """
        taus = check_tau(tau)
        out = np.array([float(self.s @ self.filter(tv)) for tv in np.atleast_1d(taus)])
        return out[0] if taus.ndim == 0 else out

    # -- queries ------------------------------------------------------------------------------
    def inputs(self, x: object, t: object) -> np.ndarray:
        """``z = (x, e(t), bias)`` for query points (``x`` (n, D) or (n,) for D = 1)."""
        x = check_query_points(x, "x", self.dim)
        return ntk_inputs(x, t, self.eps, self.schedule, self.embedding, self.bias)

    @serial_blas
    def features(self, x: object, t: object) -> np.ndarray:
        """Nystrom eigenfeatures ``psi(z) = U^T W^(1/2) Theta(N, z)``: (n, r)."""
        return ntk_gram(self.inputs(x, t), self.nodes_z, self.activation) @ self.basis

    @serial_blas
    def node_coefficients(self, tau: float) -> np.ndarray:
        """``a_tau`` (Q, D) with ``D_bar_tau(z) = Theta(z, N) a_tau``."""
        return self.basis @ (self.filter(tau)[:, None] * self.mu_tilde)

    @serial_blas
    def mean_denoiser(self, x: object, t: object, tau: object) -> np.ndarray:
        """``D_bar_tau(x, t)``: (n, D), or (n_tau, n, D) for an array of ``tau``."""
        psi = self.features(x, t)
        taus = check_tau(tau)
        out = np.stack([psi @ (self.filter(tv)[:, None] * self.mu_tilde) for tv in taus.ravel()])
        return out[0] if taus.ndim == 0 else out

    def mean_score(self, x: object, t: object, tau: float) -> np.ndarray:
        """Ensemble-mean score ``(alpha D_bar - x) / sigma**2``: (n, D)."""
        xx, tt = self._split((x, t), "z")
        dbar = self.mean_denoiser(xx, tt, check_scalar_tau(tau))
        s = self.schedule
        return s.score_mean_coeff(tt)[:, None] * dbar - s.inv_sigma2(tt)[:, None] * xx

    # -- first-order covariance ---------------------------------------------------------------
    @serial_blas
    def _unit_cov(self, tau: float, part: str) -> np.ndarray:
        """``P Cov`` of the eigen-coordinates: (r, D, r, D), cached per (tau, part)."""
        key = (tau, part)
        if key in self._cache:
            return self._cache[key]
        r, D = self.rank, self.dim
        if part == "total":
            out = self._unit_cov(tau, "proxy") + self._unit_cov(tau, "misfit")
        elif part == "proxy":
            g = self.filter(tau)
            Ul = self.U * np.sqrt(self.lam)[:, None]  # (Q, r)
            # sum_q lam_q U_qk U_ql Sigma_post,q[d, e]
            A = np.einsum("qk,qde,ql->kdle", Ul, self.sigma_post, Ul, optimize=True)
            out = A * g[:, None, None, None] * g[None, None, :, None]
        else:
            Z, L = self._misfit_functional(tau)
            # Centred (two-pass) form of sum_q lam_q Z_q Z_q^T - L L^T (sum_q omega_q = 1):
            # V_q = sqrt(omega_q) (per-triple functional sqrt(lam_q/omega_q) Z_q - its mean L).
            V = Z * np.sqrt(self.lam)[:, None, None] - np.sqrt(self.omega)[:, None, None] * L
            V = V.reshape(self.n_nodes, r * D)
            m = V.T @ V
            out = m.reshape(r, D, r, D)
        m = out.reshape(r * D, r * D)
        out = ((m + m.T) / 2).reshape(r, D, r, D)
        self._cache[key] = out
        return out

    @serial_blas
    def _misfit_functional(self, tau: float) -> tuple[np.ndarray, np.ndarray]:
        """``Z`` (Q, r, D) and ``L = sum_q sqrt(omega_q lam_q) Z_q`` (r, D) (module docstring)."""
        tau = self.check_training_time(tau)
        x = self.s + self.ridge
        g, dd2 = lazy_divided_differences(x, tau, self.lr, self.flow, rcond=0.0)
        Q, r, D = self.n_nodes, self.rank, self.dim
        Y = np.empty((Q, r, D))
        for d in range(D):
            # Y_q[k] = mu_bar_q g_k - sum_l I_kl psi_l(z_q) mu_tilde_l
            Y[:, :, d] = (
                self.mu_bar[:, d : d + 1] * g[None, :]
                - (self.psi_nodes * self.mu_tilde[None, :, d]) @ dd2.T
            )
        Z = self.U[:, :, None] * Y
        L = np.tensordot(np.sqrt(self.omega * self.lam), Z, axes=(0, 0))
        return Z, L

    def coefficient_covariance(self, tau: float, P: float, part: str = "total") -> np.ndarray:
        """First-order covariance of the eigen-coordinates ``C / P``: (r, D, r, D)."""
        P = check_samples_per_model(P)
        return self._unit_cov(self.check_training_time(tau), check_part(part)) / P

    def _pair_features(self, z, z2):
        x1, t1 = self._split(z, "z")
        psi1 = self.features(x1, t1)
        if z2 is None:
            return psi1, psi1, t1, t1
        x2, t2 = self._split(z2, "z2")
        return psi1, self.features(x2, t2), t1, t2

    def _split(self, z: object, argname: str) -> tuple[np.ndarray, np.ndarray]:
        return check_query_pair(z, argname, self.dim, self.schedule)

    @serial_blas
    def _contract(self, psi1, psi2, C, paired):
        r, D = self.rank, self.dim
        T1 = (psi1 @ C.reshape(r, -1)).reshape(psi1.shape[0], D, r, D)
        if paired:
            return np.einsum("idke,ik->ide", T1, psi2)
        out = T1.transpose(0, 1, 3, 2).reshape(-1, r) @ psi2.T
        return np.ascontiguousarray(out.reshape(psi1.shape[0], D, D, -1).transpose(0, 3, 1, 2))

    def denoiser_covariance(
        self,
        z: object,
        z2: object = None,
        *,
        tau: float,
        P: float,
        part: str = "total",
        paired: bool = False,
    ) -> np.ndarray:
        """``Cov[D^_tau(z), D^_tau(z')] = (1/P) psi(z)^T C psi(z')`` (first order in 1/P).

        Parameters
        ----------
        z, z2 : (x, t) pairs
            ``x`` (n, D) (or (n,) for D = 1), ``t`` scalar or (n,); ``z2`` defaults to ``z``.
        tau : float
            Training time (``inf``: converged limit).
        P : float
            DSM triples per model.
        part : {"total", "proxy", "misfit"}
        paired : bool
            ``Cov[D^(z_i), D^(z2_i)]`` (n, D, D) instead of all pairs (n, n2, D, D).
        """
        C = self.coefficient_covariance(tau, P, part)
        psi1, psi2, _, _ = self._pair_features(z, z2)
        if paired and psi1.shape[0] != psi2.shape[0]:
            raise ValueError("z2: with paired=True z and z2 must have the same number of points")
        return self._contract(psi1, psi2, C, paired)

    def score_factor(self, t: object) -> np.ndarray:
        """``c_t = D_t alpha_t / sigma_t**2``."""
        return v_kernel_factor(self.schedule, t)

    def v_kernel(
        self,
        z: object,
        z2: object = None,
        *,
        tau: float,
        P: float,
        part: str = "total",
        paired: bool = False,
    ) -> np.ndarray:
        """``V(x,t; x',t') = c_t Cov[D^(x,t), D^(x',t')] c_t'`` (shapes as
        :meth:`denoiser_covariance`)."""
        cov = self.denoiser_covariance(z, z2, tau=tau, P=P, part=part, paired=paired)
        _, t1 = self._split(z, "z")
        _, t2 = self._split(z if z2 is None else z2, "z2")
        c1, c2 = self.score_factor(t1), self.score_factor(t2)
        if paired:
            return cov * (c1 * c2)[:, None, None]
        return cov * c1[:, None, None, None] * c2[None, :, None, None]

    @serial_blas
    def markov_time_features(self, x: object) -> np.ndarray:
        """``h(x) = int_eps^T c_t' psi(x, t') dt'`` (n, r), by the theory's time rule."""
        x = check_query_points(x, "x", self.dim)
        wt = self.t_weights * (self.schedule.T - self.eps) * self.score_factor(self.t_nodes)
        h = np.zeros((x.shape[0], self.rank))
        for tk, wk in zip(self.t_nodes, wt, strict=True):
            h += wk * self.features(x, float(tk))
        return h

    def markov_intensity(
        self, x: object, t: object, *, tau: float, P: float, part: str = "total"
    ) -> np.ndarray:
        """White-noise intensity ``Q(x, t) = int_eps^T V(x, t; x, t') dt'``, symmetrized (n, D, D).

        Need not be PSD (V can be negative between distant times).
        """
        xx, tt = self._split((x, t), "z")
        C = self.coefficient_covariance(tau, P, part)
        Q = self._contract(self.features(xx, tt), self.markov_time_features(xx), C, True)
        Q = (Q + Q.transpose(0, 2, 1)) / 2
        return Q * self.score_factor(tt)[:, None, None]

    # -- persistence ----------------------------------------------------------------------------
    def config(self) -> dict:
        return {
            "data": self.data.tolist(),
            "schedule": self.schedule.name,
            "T": self.schedule.T,
            "eps": self.eps,
            "activation": self.activation,
            "embedding": self.embedding,
            "bias": self.bias,
            "ridge": self.ridge,
            "lr": self.lr,
            "flow": self.flow,
            "n_t": self.n_t,
            "n_hermite": self.n_hermite,
            "rcond": self.rcond,
            "n_nodes": self.n_nodes,
            "rank": self.rank,
        }

    def save(self, path: str | Path) -> Path:
        """Save nodes and configuration (``.npz`` + JSON; loading never unpickles)."""
        arrays = {
            "t_nodes": self.t_nodes,
            "t_weights": self.t_weights,
            "nodes_x": self.nodes_x,
            "nodes_t": self.nodes_t,
            "omega": self.omega,
            "lam": self.lam,
            "mu_bar": self.mu_bar,
            "sigma_post": self.sigma_post,
        }
        return save_result(path, arrays, {"kind": "ntk_theory", **self.config()})

    @classmethod
    def load(cls, path: str | Path) -> NTKTheory:
        a, cfg = load_result_of_kind(path, "ntk_theory", "an NTKTheory")
        with result_file(path, "NTKTheory"):
            return cls(
                data=np.array(cfg["data"], dtype=float),
                schedule=get_schedule(cfg["schedule"], cfg["T"]),
                eps=cfg["eps"],
                activation=cfg["activation"],
                embedding=cfg["embedding"],
                bias=cfg["bias"],
                ridge=cfg["ridge"],
                lr=cfg["lr"],
                flow=cfg["flow"],
                n_t=cfg["n_t"],
                n_hermite=cfg["n_hermite"],
                rcond=cfg["rcond"],
                **a,
            )
