"""Finite-P moments of linear-feature ensembles: the cavity (leave-one-out) equivalent.

docs/math/finite_fp.md. With ``w = lam~(t)``, ridge ``rho`` and ``P`` triples, a trained model is
``W = A_P Sigma_P^{-1}`` (:mod:`gtv.numerics.linear.model`). Removing triple ``j`` from
``Sigma_P`` (Sherman-Morrison) turns its contribution into
``w_j x0_j phi_j^T Sigma_{-j}^{-1} / (P (1 + q_j))`` with the leverage
``q_j = w_j phi_j^T Sigma_{-j}^{-1} phi_j / P``. Replacing ``Sigma_{-j}^{-1}`` by a deterministic
matrix ``M^{-1}`` but keeping each triple's own ``q`` -- which is what saturates the rare, heavy
early-time triples -- gives three equations over the population of triples ``z = (x, t)``:

1. ``q(z) = w(z) phi(z)^T M^{-1} phi(z) / P``,
   ``M = rho I + S_q - (rho/P) S_q M^{-1}``, ``S_q = E_z[w phi phi^T / (1 + q)]``
   (a fixed point in ``M``; the last term is the mean of ``Sigma_{-j}`` having ``P - 1`` triples,
   and the variance of the other triples' sum -- a finite-F term, ``O(1/P)`` against the
   ``O(F/P)`` of the leverages, that makes the ``1/P`` term of ``W_bar`` exact);
2. ``W_bar = A~ M^{-1}``, ``A~ = E_z[w mu_bar phi^T / (1 + q)]``;
3. ``C = (1/P) M^{-1} (E_z[w**2 (c + v) phi phi^T / (1 + q)**2] - g_bar^T g_bar) M^{-1}``
   with ``c(z) = Sigma_post(z) + (mu_bar - W_bar phi)**2`` and ``v(z) = phi^T C phi``
   and ``g_bar = E_z[w (x0 - W_bar phi) phi^T / (1 + q)] = W_bar (M - S_q)``
   (a linear fixed point in ``C``: the model's own scatter acts as extra label noise).

``E W ~ W_bar`` and ``Cov W ~ C``. As ``P -> inf``, ``q -> 0`` and ``v -> 0``: the first-order
theory (:mod:`gtv.numerics.linear.theory`); the ``1/P`` term of ``W_bar`` is the second-order mean
shift of :mod:`gtv.numerics.linear.second_order` exactly; with the same ``q`` for every triple
and without the finite-F term the equations are the effective-ridge equation
``kappa = rho + (kappa/P) tr Sigma (Sigma+kappa)^-1`` (both derived in
:mod:`gtv.theory.deterministic_equivalent`). D = 1.

Quadrature: the population expectations run on the nodes of the
:class:`~gtv.numerics.linear.theory.LinearTheory` they refine (its Gauss-Legendre time nodes; per
node and mixture component its Gauss-Hermite rule in ``x``). The solver uses the product
structure ``phi = phi_space (x) phi_time`` (spatial Gram blocks per time node, one matrix product
over time nodes); :func:`cavity_moments_reference` forms every full feature vector (the check).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy.linalg import lapack

from gtv.numerics.blas import serial_blas
from gtv.numerics.checks import check_choice, check_count, check_samples_per_model
from gtv.numerics.dsm import draw_dsm_triples, dsm_weights
from gtv.numerics.io import load_result_of_kind, result_file, save_result
from gtv.numerics.linear.node_kernels import spatial_grams, spatial_quadratic
from gtv.numerics.linear.population import time_panel_width
from gtv.numerics.linear.theory import LinearTheory
from gtv.numerics.posterior import posterior_stats
from gtv.numerics.quadrature import hermite_quadrature, time_quadrature
from gtv.numerics.streams import model_rngs

#: Feature-block size (doubles) of the cavity-field sampler.
_FIELD_CHUNK = 4_000_000

#: Nodes whose spatial features are all below this fraction of the largest ``|phi_s|`` are left
#: out of the node kernels' sums (every term they add to a Gram block is below ``1e-20`` of the
#: largest; :attr:`PopulationNodes.active_layout`).
ACTIVE_FEATURE = 1e-10

#: Mixing schemes of the fixed points and the residual below which ``"delayed"`` starts mixing.
MIXINGS = {"safeguarded": None, "delayed": 0.3}

#: Restarts of the ``"delayed"`` mixing before the plain iteration takes over.
_MAX_RESTARTS = 20

#: Node rule, tolerance and solvers of :func:`prediction_moments`: 4 Gauss-Legendre nodes per time
#: panel (the theory's default is 12), Gauss-Hermite weights above 1e-12 (default 1e-25), stop at
#: 1e-8, the ``"delayed"`` mixing for ``M`` and conjugate gradients for the covariance
#: (:func:`_covariance_cg`). Chosen by convergence against the default solve (tests/numerics/
#: linear/test_cavity_fast.py): on 8 x 8 / 16 x 16 Gaussian features at eps = 0.01, F/P = 1 the
#: relative deviations of W_bar, Cov W and M are 9e-9 / 2e-6, 4e-7 / 3e-5 and 7e-8 / 9e-6 (the
#: same to the digits shown with Anderson mixing for the covariance; Cov W moves by 2e-8 / 4e-8
#: between the two covariance solvers, both stopping at 1e-8).
PREDICTION_RULE = {
    "n_t": 4, "prune": 1e-12, "tol": 1e-8, "mixing": "delayed", "covariance": "cg",
}  # fmt: skip

#: Solvers of the covariance fixed point (:func:`cavity_moments`, ``covariance``).
COVARIANCE_SOLVERS = ("anderson", "cg")

__all__ = [
    "COVARIANCE_SOLVERS",
    "CavityMoments",
    "PopulationNodes",
    "cavity_moments",
    "cavity_moments_reference",
    "MIXINGS",
    "PREDICTION_RULE",
    "population_nodes",
    "prediction_moments",
    "sample_cavity_weights",
]


@dataclass(frozen=True)
class PopulationNodes:
    """Quadrature nodes of the DSM triple population, grouped by time node, with the
    product-structure sums over them (:meth:`gram`, :meth:`quadratic`, :meth:`vector`,
    :meth:`apply`; per time node a spatial block, then one product over time nodes).

    ``x`` (n_t, n_x) points, ``prob`` (n_t, n_x) probabilities (summing to 1), ``w`` (n_t,) DSM
    weights, ``mu``/``s2`` (n_t, n_x) posterior mean and variance, ``phi_s`` (n_t, n_x, F_s) and
    ``phi_t`` (n_t, F_t) the two feature factors.
    """

    t: np.ndarray
    x: np.ndarray
    prob: np.ndarray
    w: np.ndarray
    mu: np.ndarray
    s2: np.ndarray
    phi_s: np.ndarray
    phi_t: np.ndarray

    @functools.cached_property
    def active_layout(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The node kernels' layout (made once per node set): per time node the *active* nodes,
        those with a spatial feature above :data:`ACTIVE_FEATURE` times the largest ``|phi_s|``,
        their spatial features transposed and compacted, ``psT`` (n_t, F_s, n_c) float64 (zeros
        past ``count[k]``), their positions ``idx`` (n_t, n_c) and numbers ``count`` (n_t,)."""
        ps = np.asarray(self.phi_s, dtype=float)
        big = np.abs(ps).max(axis=2)
        active = big > ACTIVE_FEATURE * max(float(big.max(initial=0.0)), np.finfo(float).tiny)
        count = active.sum(axis=1).astype(np.intp)
        n_t, _, fs = ps.shape
        n_c = max(1, int(count.max(initial=0)))
        psT = np.zeros((n_t, fs, n_c))
        idx = np.zeros((n_t, n_c), dtype=np.intp)
        for k in range(n_t):  # the active nodes of each time node, in their order
            sel = np.flatnonzero(active[k])
            idx[k, : sel.size] = sel
            psT[k, :, : sel.size] = ps[k, sel].T
        return psT, idx, count

    def gram(self, a: np.ndarray) -> np.ndarray:
        """``sum_n a_n phi_n phi_n^T`` (F, F) for node coefficients ``a`` (n_t, n_x) (numba
        spatial blocks over the active nodes,
        :func:`~gtv.numerics.linear.node_kernels.spatial_grams`)."""
        psT, idx, count = self.active_layout
        a = np.ascontiguousarray(a, dtype=float)
        return self._assemble(spatial_grams(psT, idx, count, a))

    def gram_reference(self, a: np.ndarray) -> np.ndarray:
        """Plain-numpy :meth:`gram`."""
        ps = self.phi_s
        return self._assemble(np.matmul(ps.transpose(0, 2, 1), ps * a[:, :, None]))

    def _assemble(self, S: np.ndarray) -> np.ndarray:
        """``sum_k S[k] (x) phi_t phi_t^T`` (F, F) for spatial blocks ``S``, by symmetry over
        the index pairs ``i <= j`` (space) and ``a <= b`` (time) only; exactly symmetric."""
        pt = self.phi_t
        fs, ft = S.shape[1], pt.shape[1]
        (si, sj, _), (ta, tb, _) = _pairs(fs), _pairs(ft)
        R = S[:, si, sj].T @ (pt[:, ta] * pt[:, tb])  # (space pairs, time pairs)
        return np.take(R, _assembly_index(fs, ft)).reshape(fs * ft, fs * ft)

    @functools.cached_property
    def _time_pair_products(self) -> np.ndarray:
        """``phi_t[k, a] phi_t[k, b]`` for the time index pairs ``a <= b`` (n_t, pairs)."""
        ta, tb, _ = _pairs(self.phi_t.shape[1])
        return np.ascontiguousarray(self.phi_t[:, ta] * self.phi_t[:, tb])

    def _time_blocks(self, B: np.ndarray) -> np.ndarray:
        """A *symmetric* ``B`` contracted with ``phi_t`` on both sides at every time node
        (n_t, F_s, F_s): ``sum_{a <= b} phi_t[k, a] phi_t[k, b] (B_ab + B_ab^T [a < b])`` with the
        spatial blocks ``B_ab = B[(., a), (., b)]`` (``B_ba = B_ab^T`` by symmetry), one product
        over the time index pairs; :meth:`_time_blocks_reference` contracts all of ``B``."""
        fs, ft = self.phi_s.shape[2], self.phi_t.shape[1]
        ta, tb, _ = _pairs(ft)
        blocks = B.reshape(fs, ft, fs, ft).transpose(1, 3, 0, 2)[ta, tb]  # (pairs, F_s, F_s)
        off = ta != tb
        blocks[off] += blocks[off].transpose(0, 2, 1)
        out = self._time_pair_products @ blocks.reshape(ta.size, fs * fs)
        return out.reshape(-1, fs, fs)

    def _time_blocks_reference(self, B: np.ndarray) -> np.ndarray:
        """Plain :meth:`_time_blocks`: ``einsum`` over both time indices."""
        pt = self.phi_t
        fs, ft = self.phi_s.shape[2], pt.shape[1]
        B4 = B.reshape(fs, ft, fs, ft)
        path = _time_block_path(pt.shape[0], fs, ft)
        return np.einsum("ka,iajb,kb->kij", pt, B4, pt, optimize=path)

    def quadratic(self, B: np.ndarray) -> np.ndarray:
        """``phi_n^T B phi_n`` at every node (n_t, n_x) for a symmetric (F, F) matrix ``B``
        (numba spatial blocks, :func:`~gtv.numerics.linear.node_kernels.spatial_quadratic`; 0 at
        the inactive nodes, :attr:`active_layout`, where it is below ``1e-20 |B|``)."""
        Bt = np.ascontiguousarray(self._time_blocks(B), dtype=float)
        psT, idx, count = self.active_layout
        return spatial_quadratic(psT, idx, count, Bt, self.prob.shape[1])

    def quadratic_reference(self, B: np.ndarray) -> np.ndarray:
        """Plain-numpy :meth:`quadratic`."""
        Bt = self._time_blocks_reference(B)
        return np.einsum("kxi,kij,kxj->kx", self.phi_s, Bt, self.phi_s, optimize=True)

    def vector(self, a: np.ndarray) -> np.ndarray:
        """``sum_n a_n phi_n`` (F,) for node coefficients ``a`` (n_t, n_x)."""
        v = np.einsum("kx,kxi->ki", a, self.phi_s)
        return np.einsum("ki,ka->ia", v, self.phi_t).reshape(-1)

    def apply(self, W: np.ndarray) -> np.ndarray:
        """``W phi`` at every node (n_t, n_x) for a weight vector ``W`` (F,)."""
        fs, ft = self.phi_s.shape[2], self.phi_t.shape[1]
        Wt = W.reshape(fs, ft) @ self.phi_t.T  # (F_s, n_t)
        return np.einsum("kxi,ik->kx", self.phi_s, Wt)

    def full_features(self) -> np.ndarray:
        """Every node's full feature vector, (n_t * n_x, F) (index ``i F_t + a``)."""
        n_t, n_x, fs = self.phi_s.shape
        out = self.phi_s[:, :, :, None] * self.phi_t[:, None, None, :]
        return out.reshape(n_t * n_x, fs * self.phi_t.shape[1])


@functools.cache
def _time_block_path(n_t: int, fs: int, ft: int) -> list:
    """The contraction order of :meth:`PopulationNodes._time_blocks` (``numpy.einsum_path``,
    once per shape instead of on every call)."""
    pt, B4 = np.empty((n_t, ft)), np.empty((fs, ft, fs, ft))
    return np.einsum_path("ka,iajb,kb->kij", pt, B4, pt, optimize="greedy")[0]


@functools.cache
def _assembly_index(fs: int, ft: int) -> np.ndarray:
    """Flat positions in the (space pairs, time pairs) matrix ``R`` of :meth:`PopulationNodes.
    _assemble` of every entry ``((i, a), (j, b))`` of the (F, F) Gram, ``(fs, ft, fs, ft)``."""
    s_pair, t_pair = _pairs(fs)[2], _pairs(ft)[2]
    n_t_pairs = ft * (ft + 1) // 2
    flat = s_pair[:, None, :, None] * n_t_pairs + t_pair[None, :, None, :]
    return np.ascontiguousarray(flat)


@functools.cache
def _pairs(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index pairs ``i <= j`` of ``range(n)`` and the pair number of every ``(i, j)``."""
    i, j = np.triu_indices(n)
    number = np.empty((n, n), dtype=np.intp)
    number[i, j] = number[j, i] = np.arange(i.size)
    return i, j, number


def population_nodes(
    theory: LinearTheory, *, n_t: int | None = None, prune: float | None = None
) -> PopulationNodes:
    """The nodes of ``theory``'s quadrature (1-D data), with features and posterior moments.

    ``n_t``/``prune`` give the coarser rule of :data:`PREDICTION_RULE`.

    Parameters
    ----------
    theory : LinearTheory
    n_t : int, optional
        Gauss-Legendre nodes per time panel (the panels of
        :func:`~gtv.numerics.linear.population.time_panel_width`); default: ``theory``'s own time
        rule (``theory.t_nodes``).
    prune : float, optional
        Gauss-Hermite weights below it are dropped
        (:func:`gtv.numerics.quadrature.hermite_quadrature`; default its ``HERMITE_PRUNE``);
        ``theory.n_hermite`` nodes per component either way.

    Returns
    -------
    PopulationNodes
    """
    if not isinstance(theory, LinearTheory):
        raise TypeError("theory must be a LinearTheory")
    if theory.dim != 1:
        raise ValueError(f"theory: only 1-D data is supported, got D = {theory.dim}")
    s = theory.schedule
    if n_t is None:
        t, t_weights = theory.t_nodes, theory.t_weights
    else:
        n_t = check_count(n_t, "n_t")
        width = time_panel_width(theory.features, theory.eps, s.T)
        t, t_weights = time_quadrature(theory.eps, s.T, n_t, width)
    if prune is None:
        xi, xw = hermite_quadrature(theory.n_hermite, 1)
    else:
        if not (np.isfinite(prune) and 0 <= prune < 1e-3):
            raise ValueError(f"prune must lie in [0, 1e-3), got {prune!r}")
        xi, xw = hermite_quadrature(theory.n_hermite, 1, prune)
    data = theory.data[:, 0]
    alpha, sigma = np.asarray(s.alpha(t)), np.sqrt(np.asarray(s.sigma2(t)))
    x = alpha[:, None, None] * data[None, :, None] + sigma[:, None, None] * xi[None, None, :, 0]
    n_t = t.size
    x = x.reshape(n_t, -1)
    prob = np.broadcast_to(
        t_weights[:, None, None] * xw[None, None, :] / data.size,
        (n_t, data.size, xw.size),
    ).reshape(n_t, -1)
    tt = np.broadcast_to(t[:, None], x.shape).ravel()
    post = posterior_stats(theory.data, x.reshape(-1, 1), tt, s)
    phi_s = theory.features.evaluate_space(x.reshape(-1, 1)).reshape(n_t, x.shape[1], -1)
    return PopulationNodes(
        t=t,
        x=x,
        prob=np.ascontiguousarray(prob),
        w=dsm_weights(s, t),
        mu=post.mean[:, 0].reshape(x.shape),
        s2=post.cov_trace.reshape(x.shape),
        phi_s=phi_s,
        phi_t=theory.features.time.evaluate(t),
    )


def _mixing_coefficients(fs: list[np.ndarray]) -> np.ndarray:
    """Anderson coefficients ``argmin_c |f - dF c|`` for the residual history ``fs`` (last entry
    ``f``; ``dF[:, i] = fs[i + 1] - fs[i]``).

    The least squares run on the small ``(k, k)`` normal equations ``dF^T dF c = dF^T f``
    (``k <= 4`` here: ``k (k + 3) / 2`` dot products of length ``F^2`` instead of an SVD of the
    ``(F^2, k)`` matrix), solved by a pseudo-inverse that drops directions below ``1e-13`` of the
    largest eigenvalue (nearly parallel differences). The coefficients only choose the
    extrapolated iterate; the fixed point and its tolerance are those of the plain map.
    """
    f = fs[-1]
    dF = [b - a for a, b in zip(fs[:-1], fs[1:], strict=True)]
    k = len(dF)
    D = np.empty((k, k))
    for i in range(k):
        for j in range(i + 1):
            D[i, j] = D[j, i] = dF[i] @ dF[j]
    rhs = np.array([d @ f for d in dF])
    ev, U = np.linalg.eigh(D)
    keep = ev > 1e-13 * max(ev[-1], np.finfo(float).tiny)
    return U[:, keep] @ ((U[:, keep].T @ rhs) / ev[keep])


def _anderson(
    g, x0: np.ndarray, tol: float, max_iter: int, name: str, depth: int = 5,
    delay: float | None = None,
):  # fmt: skip
    """Fixed point ``x = g(x)`` by Anderson mixing, safeguarded by the plain iteration.

    Both cavity maps are monotone, so the plain iteration alone converges (monotonically from
    the start points used here); the mixing only shortens it. Whenever the residual grows the
    history is dropped (an extrapolated step can leave the monotone region and cycle).

    ``delay=None`` (the ``"safeguarded"`` mixing): mix from the first step; after three such
    restarts the plain iteration takes over for good. ``delay=d`` (``"delayed"``): plain steps
    while the relative residual is above ``d`` (the strongly non-linear start, where mixing
    restarts), then mixing; after a restart one plain step, then mixing again (at most
    ``_MAX_RESTARTS`` restarts, then plain steps).
    """
    x = x0
    xs, fs = [], []
    last = np.inf
    restarts = 0
    max_restarts = 3 if delay is None else _MAX_RESTARTS
    hold = False
    for it in range(1, max_iter + 1):
        gx = g(x)
        f = gx - x
        err = np.max(np.abs(f)) / max(np.finfo(float).tiny, np.max(np.abs(gx)))
        if err < tol:
            return gx, it
        if err > last:
            xs, fs = [], []
            restarts += 1
            hold = delay is not None
        last = err
        if restarts >= max_restarts or hold or (delay is not None and err > delay):
            hold = False
            x = gx
            continue
        xs.append(gx.ravel())
        fs.append(f.ravel())
        xs, fs = xs[-depth:], fs[-depth:]
        if len(fs) > 1:
            coef = _mixing_coefficients(fs)
            x = gx.ravel().copy()
            for i, ci in enumerate(coef):  # x = g(x) - dG coef, dG[:, i] = xs[i + 1] - xs[i]
                x -= ci * (xs[i + 1] - xs[i])
            x = x.reshape(gx.shape)
        else:
            x = gx
    raise ValueError(f"{name}: the cavity fixed point did not converge in {max_iter} iterations")


@dataclass
class CavityMoments:
    """Solution of the cavity equations at one ``P`` (module docstring).

    Attributes
    ----------
    P : float
    W_bar : ndarray (1, F)
        ``E W``.
    cov_W : ndarray (F, F)
        ``Cov W``.
    M : ndarray (F, F)
        The deterministic equivalent of ``Sigma_P`` seen by one triple.
    q_max, q_mean : float
        Largest leverage and its population mean (``E q`` is the number of effectively learned
        directions per triple).
    iterations : dict
        Iterations of the two fixed points.
    mean_gradient : ndarray (1, F)
        ``E[w (x0 - W_bar phi) phi^T / (1 + q)] = W_bar (M - S_q)`` (``rho W_bar`` up to the
        finite-F term), subtracted in the covariance and in the cavity field.
    """

    P: float
    W_bar: np.ndarray
    cov_W: np.ndarray
    M: np.ndarray
    q_max: float
    q_mean: float
    iterations: dict
    mean_gradient: np.ndarray

    @functools.cached_property
    def M_inv(self) -> np.ndarray:
        """``M^{-1}``, symmetrized (computed once per instance)."""
        inv = np.linalg.inv(self.M)
        return (inv + inv.T) / 2

    @functools.cached_property
    def chol_M_inv(self) -> np.ndarray:
        """The lower Cholesky factor of :attr:`M_inv` (computed once per instance)."""
        return np.ascontiguousarray(np.linalg.cholesky(self.M_inv))

    @functools.cached_property
    def M_inv_bound(self) -> float:
        """An upper bound of the largest eigenvalue of ``M^{-1}``: LAPACK's, times ``1 + 1e-8``
        (a margin far above rounding), so that ``w |phi|^2 M_inv_bound / P >= q``."""
        return float(np.linalg.eigvalsh(self.M_inv)[-1]) * (1 + 1e-8)

    def leverage(self, phi: np.ndarray, w: np.ndarray) -> np.ndarray:
        """``q = w phi^T M^{-1} phi / P`` for triples with features ``phi`` (n, F), weights ``w``
        (n,)."""
        return w * np.einsum("nf,nf->n", phi @ self.M_inv, phi) / self.P

    def save(self, path) -> object:
        arrays = {
            "W_bar": self.W_bar,
            "cov_W": self.cov_W,
            "M": self.M,
            "mean_gradient": self.mean_gradient,
        }
        cfg = {
            "kind": "cavity_moments",
            "P": self.P,
            "q_max": self.q_max,
            "q_mean": self.q_mean,
            "iterations": self.iterations,
        }
        return save_result(path, arrays, cfg)

    @classmethod
    def load(cls, path) -> CavityMoments:
        arrays, cfg = load_result_of_kind(path, "cavity_moments", "a CavityMoments")
        with result_file(path, "CavityMoments"):
            return cls(
                cfg["P"], arrays["W_bar"], arrays["cov_W"], arrays["M"], cfg["q_max"],
                cfg["q_mean"], cfg["iterations"], arrays["mean_gradient"],
            )  # fmt: skip


def _symmetric_inverse(M: np.ndarray) -> np.ndarray:
    """``M^{-1}`` of a symmetric positive definite ``M``, exactly symmetric: LAPACK ``dpotrf`` and
    ``dpotri`` (a third of the operations of the LU inverse); an LU inverse, symmetrized, when the
    Cholesky factorization fails (an extrapolated Anderson iterate need not be definite)."""
    # M.T: the Fortran-ordered view of the symmetric M (no copy); clean: zero lower triangles
    U, info = lapack.dpotrf(M.T, lower=0, clean=1)
    if info == 0:
        inv, info = lapack.dpotri(U, lower=0, overwrite_c=1)
        if info == 0:
            diagonal = np.diag(inv).copy()
            out = inv + inv.T
            out[np.diag_indices_from(out)] = diagonal
            return out
    inv = np.linalg.inv(M)
    return (inv + inv.T) / 2


def _covariance_cg(
    quad, gram, M: np.ndarray, Mi: np.ndarray, base: np.ndarray, K0: np.ndarray, P: float,
    tol: float, max_iter: int,
) -> tuple[np.ndarray, int]:  # fmt: skip
    """The covariance equation by conjugate gradients; returns ``C`` and the map evaluations.

    The covariance fixed point is linear, ``C = C0 + L(C)`` with ``C0 = M^{-1} K0 M^{-1} / P``
    and ``L(X) = M^{-1} gram(base * quad(X)) M^{-1} / P``. In the inner product
    ``<A, B>_M = tr(M A M B)`` the map ``L`` is self-adjoint and positive semi-definite
    (``<L(A), B>_M = (1/P) sum_n base_n (phi_n^T A phi_n)(phi_n^T B phi_n)``), and the plain
    iteration converges, so ``I - L`` is symmetric positive definite there: conjugate gradients
    from ``C = 0`` apply. ``M X M`` of the residual and search direction is carried along
    (``M L(X) M = gram(...) / P`` comes with each application), so each step costs one ``quad``,
    one ``gram`` and two ``F x F`` products, as a step of the plain map. Stop as
    :func:`_anderson` does: when the recursive residual is below ``tol``, one application of the
    map at the iterate ``x`` must give ``max|g(x) - x| <= tol max|g(x)|`` (else restart from
    ``x``); ``g(x)`` is returned.
    """

    def apply_l(X):
        qx = quad(X)
        K = gram(base * qx) / P
        out = Mi @ K @ Mi
        return (out + out.T) / 2, K

    C0 = Mi @ K0 @ Mi / P
    C0 = (C0 + C0.T) / 2
    x = np.zeros_like(C0)
    r, rt = C0.copy(), K0 / P  # residual g(x) - x and M r M
    p, pt = r.copy(), rt.copy()
    rr = float(np.sum(r * rt))
    it = 1
    while True:
        if np.max(np.abs(r)) <= tol * np.max(np.abs(x + r)):
            if it >= max_iter:
                break
            Lx, _ = apply_l(x)
            gx = C0 + Lx
            it += 1
            r = gx - x
            if np.max(np.abs(r)) < tol * max(np.finfo(float).tiny, np.max(np.abs(gx))):
                return gx, it
            rt = M @ r @ M  # restart from x with the true residual
            rt = (rt + rt.T) / 2
            p, pt = r.copy(), rt.copy()
            rr = float(np.sum(r * rt))
        if it >= max_iter:
            break
        Lp, Kp = apply_l(p)
        it += 1
        pAp = float(np.sum(p * (pt - Kp)))
        if not (np.isfinite(pAp) and pAp > 0 and rr > 0):
            raise ValueError(
                "covariance: the cavity covariance map is not a contraction (conjugate gradients "
                "met a non-positive curvature)"
            )
        alpha = rr / pAp
        x += alpha * p
        r -= alpha * (p - Lp)
        rt -= alpha * (pt - Kp)
        rr_new = float(np.sum(r * rt))
        beta = rr_new / rr
        rr = rr_new
        p = r + beta * p
        pt = rt + beta * pt
    raise ValueError(
        f"covariance: the cavity fixed point did not converge in {max_iter} iterations"
    )


def _solve(
    ops, nodes, ridge: float, P: float, tol: float, max_iter: int, delay: float | None = None,
    covariance: str = "anderson",
) -> CavityMoments:  # fmt: skip
    """The three cavity equations with ``ops = (gram, quadratic, vector, apply)`` on ``nodes``
    (``delay``: the mixing of :func:`_anderson`; ``covariance``: ``"anderson"`` or ``"cg"``, the
    solver of the covariance fixed point, :func:`_covariance_cg`)."""
    gram, quad, vec, apply = ops
    F = nodes.phi_s.shape[2] * nodes.phi_t.shape[1]
    wp = nodes.w[:, None] * nodes.prob
    eye = np.eye(F)

    def leverage(M):
        Mi = _symmetric_inverse(M)
        return Mi, np.clip(nodes.w[:, None] * quad(Mi) / P, 0.0, None)

    def m_map(M):
        Mi, q = leverage(M)
        Sq = gram(wp / (1 + q))
        # the finite-F term (rho/P) S_q M^-1 makes the 1/P term of W_bar exact (docstring)
        corr = Sq @ Mi
        return ridge * eye + Sq - ridge / P * (corr + corr.T) / 2

    # from q = 0 (M = Sigma + rho I) the iterates of M decrease monotonically
    M, it_q = _anderson(m_map, ridge * eye + gram(wp), tol, max_iter, "M", delay=delay)
    Mi, q = leverage(M)
    W_bar = vec(wp * nodes.mu / (1 + q)) @ Mi
    c = nodes.s2 + (nodes.mu - apply(W_bar)) ** 2
    base = nodes.w[:, None] ** 2 * nodes.prob / (1 + q) ** 2
    eg = W_bar @ (M - gram(wp / (1 + q)))

    if covariance == "cg":
        K0 = gram(base * c) - np.outer(eg, eg)
        C, it_c = _covariance_cg(quad, gram, M, Mi, base, K0, P, tol, max_iter)
    else:

        def c_map(C):
            K = gram(base * (c + quad(C))) - np.outer(eg, eg)
            out = Mi @ K @ Mi / P
            return (out + out.T) / 2

        C, it_c = _anderson(c_map, np.zeros((F, F)), tol, max_iter, "covariance", delay=delay)
    return CavityMoments(
        float(P), W_bar[None, :], C, M, float(q.max()), float(np.sum(nodes.prob * q)),
        {"M": it_q, "covariance": it_c}, eg[None, :],
    )  # fmt: skip


def cavity_moments(
    theory: LinearTheory,
    P: float,
    *,
    nodes: PopulationNodes | None = None,
    tol: float = 1e-10,
    max_iter: int = 3000,
    backend: str = "product",
    mixing: str = "safeguarded",
    covariance: str = "anderson",
) -> CavityMoments:
    """Solve the cavity equations (module docstring) for ``theory``'s configuration at ``P``.

    Parameters
    ----------
    theory : LinearTheory
        Supplies features, data, schedule, eps, ridge and the quadrature (1-D data).
    P : float
        DSM triples per model (``>= 1``).
    nodes : PopulationNodes, optional
        :func:`population_nodes` of ``theory`` (pass it to solve several ``P`` on one node set).
    tol : float, default 1e-10
        Relative sup-norm change at which the fixed points stop.
    max_iter : int, default 3000
        Iteration cap per fixed point (non-convergence raises ``ValueError``).
    backend : {"product", "full"}
        ``"full"`` forms every full feature vector (:func:`cavity_moments_reference`).
    mixing : {"safeguarded", "delayed"}
        Acceleration of the two fixed points (:data:`MIXINGS`): ``"delayed"`` starts the Anderson
        mixing once the plain iteration is near the solution: at eps = 0.01, F/P = 1 it takes
        24 steps for ``M`` instead of 61 on 8 x 8 features, but 35 instead of 30 on 16 x 16;
        both stop at the same ``tol``.
    covariance : {"anderson", "cg"}
        Solver of the (linear) covariance fixed point: Anderson mixing as for ``M`` (with
        ``mixing``), or conjugate gradients in the inner product ``tr(M A M B)``
        (:func:`_covariance_cg`; the same stopping rule; 19 map evaluations instead of 28 on the
        fast path's nodes at 16 x 16, eps = 0.01, F/P = 1).

    Returns
    -------
    CavityMoments
    """
    P = check_samples_per_model(P, required=True)
    check_choice(backend, "backend", ("product", "full"))
    delay = MIXINGS[check_choice(mixing, "mixing", tuple(MIXINGS))]
    check_choice(covariance, "covariance", COVARIANCE_SOLVERS)
    max_iter = check_count(max_iter, "max_iter")
    if not (np.isfinite(tol) and 0 < tol < 1):
        raise ValueError(f"tol must lie in (0, 1), got {tol!r}")
    if nodes is None:
        nodes = population_nodes(theory)
    elif not isinstance(nodes, PopulationNodes):
        raise TypeError("nodes must be a PopulationNodes (from population_nodes)")
    if backend == "full":
        return cavity_moments_reference(
            theory, P, nodes=nodes, tol=tol, max_iter=max_iter, mixing=mixing,
            covariance=covariance,
        )  # fmt: skip
    with serial_blas():
        return _solve(
            (nodes.gram, nodes.quadratic, nodes.vector, nodes.apply),
            nodes, theory.ridge, P, tol, max_iter, delay, covariance,
        )  # fmt: skip


def cavity_moments_reference(
    theory: LinearTheory,
    P: float,
    *,
    nodes: PopulationNodes | None = None,
    tol: float = 1e-10,
    max_iter: int = 3000,
    mixing: str = "safeguarded",
    covariance: str = "anderson",
) -> CavityMoments:
    """Plain version of :func:`cavity_moments`: full feature vectors at every node."""
    delay = MIXINGS[check_choice(mixing, "mixing", tuple(MIXINGS))]
    check_choice(covariance, "covariance", COVARIANCE_SOLVERS)
    if nodes is None:
        nodes = population_nodes(theory)
    phi = nodes.full_features()
    shape = nodes.prob.shape

    def gram(a):
        g = (phi * a.reshape(-1, 1)).T @ phi
        return (g + g.T) / 2

    def quad(B):
        return ((phi @ B) * phi).sum(axis=1).reshape(shape)

    def vec(a):
        return a.reshape(-1) @ phi

    def apply(W):
        return (phi @ W).reshape(shape)

    return _solve(
        (gram, quad, vec, apply), nodes, theory.ridge, float(P), tol, max_iter, delay, covariance
    )


def prediction_moments(
    theory: LinearTheory, P: float, *, nodes: PopulationNodes | None = None
) -> tuple[CavityMoments, PopulationNodes]:
    """The fast path of the field predictions: the cavity moments on :data:`PREDICTION_RULE`.

    Returns the moments and the node set for the small-occupancy split (pass both to
    :class:`~gtv.numerics.linear.prediction.CavityLinear`): ``nodes`` when given (``theory``'s
    :func:`population_nodes`, e.g. cached for several ``P``), else ``theory``'s own time rule with
    the Hermite tails pruned at ``PREDICTION_RULE["prune"]``. The split integrates the
    discontinuous light/heavy indicator ``q <= q_star``, which the coarse time rule would move by
    up to 2e-2 (measured on 8 x 8 features), so only the fixed points run on the coarse rule.
    """
    rule = PREDICTION_RULE
    if nodes is None:
        nodes = population_nodes(theory, prune=rule["prune"])
    elif not isinstance(nodes, PopulationNodes):
        raise TypeError("nodes must be a PopulationNodes (from population_nodes)")
    coarse = population_nodes(theory, n_t=rule["n_t"], prune=rule["prune"])
    moments = cavity_moments(
        theory, P, nodes=coarse, tol=rule["tol"], mixing=rule["mixing"],
        covariance=rule["covariance"],
    )  # fmt: skip
    return moments, nodes


def sample_cavity_weights(
    theory: LinearTheory,
    moments: CavityMoments,
    n_models: int,
    seed: int | np.random.SeedSequence = 0,
) -> np.ndarray:
    """Weights of the *cavity field*: the non-Gaussian ensemble of the cavity equations.

    Member ``n`` draws its own ``P`` DSM triples ``(t_j, x0_j, x_j)`` and standard normals
    ``zeta_j`` from ``stream(seed, "field").spawn(N)[n]`` and is

        ``W_n = W_bar + ((1/P) sum_j w_j r_j phi_j^T / (1 + q_j) - g_bar) M^{-1}``,
        ``r_j = x0_j - W_bar phi_j + sqrt(v(z_j)) zeta_j``,

    (``g_bar``: :attr:`CavityMoments.mean_gradient`), the cavity form of one trained model with
    ``Sigma_{-j}^{-1}`` replaced by ``M^{-1}``: a sum of ``P`` independent saturated terms, so its
    law is the ``P``-fold convolution of one triple's (heavy-tailed where few triples reach a
    feature), with mean ``W_bar`` and covariance ``cov_W`` exactly (docs/math/finite_fp.md).
    ``P`` must be an integer here.

    Returns
    -------
    ndarray, shape (N, 1, F)
    """
    if not isinstance(moments, CavityMoments):
        raise TypeError("moments must be a CavityMoments")
    n_models = check_count(n_models, "n_models")
    P = moments.P
    if P != int(P):
        raise ValueError(f"moments.P must be an integer to draw triples, got {P!r}")
    P = int(P)
    feats, s = theory.features, theory.schedule
    Mi = moments.M_inv
    W_bar = moments.W_bar[0]
    t = np.empty((n_models, P))
    x0 = np.empty((n_models, P))
    x = np.empty((n_models, P))
    zeta = np.empty((n_models, P))
    for n, rng in enumerate(model_rngs(seed, "field", n_models)):
        tn, x0n, xn = draw_dsm_triples(rng, theory.data, P, theory.eps, s)
        t[n], x0[n], x[n] = tn, x0n[:, 0], xn[:, 0]
        zeta[n] = rng.standard_normal(P)
    w = dsm_weights(s, t)
    out = np.empty((n_models, 1, W_bar.size))
    chunk = max(1, _FIELD_CHUNK // (P * W_bar.size))  # bounded memory for the feature block
    for m0 in range(0, n_models, chunk):
        sl = slice(m0, min(n_models, m0 + chunk))
        k = sl.stop - sl.start
        phi = feats.evaluate(x[sl].reshape(-1, 1), t[sl].reshape(-1))  # (k P, F)
        q = w[sl].reshape(-1) * np.einsum("nf,nf->n", phi @ Mi, phi) / P
        v = np.einsum("nf,nf->n", phi @ moments.cov_W, phi)
        r = x0[sl].reshape(-1) - phi @ W_bar + np.sqrt(np.clip(v, 0.0, None)) * zeta[sl].reshape(-1)
        coef = (w[sl].reshape(-1) * r / (1 + q)).reshape(k, P)
        g = np.einsum("mn,mnf->mf", coef, phi.reshape(k, P, -1)) / P - moments.mean_gradient[0]
        out[sl, 0] = W_bar + g @ Mi
    return out
