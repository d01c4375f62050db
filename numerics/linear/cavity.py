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
from gtv.numerics.linear.fixed_point import MIXINGS, anderson
from gtv.numerics.linear.nodes import PopulationNodes, population_nodes
from gtv.numerics.linear.solver_kernels import cg_curvature, cg_direction, cg_update
from gtv.numerics.linear.theory import LinearTheory
from gtv.numerics.streams import model_rngs

#: Feature-block size (doubles) of the cavity-field sampler.
_FIELD_CHUNK = 4_000_000

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
    "cavity_moments",
    "cavity_moments_reference",
    "PREDICTION_RULE",
    "prediction_moments",
    "sample_cavity_weights",
]


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
    quad_gram, M: np.ndarray, Mi: np.ndarray, base: np.ndarray, K0: np.ndarray, P: float,
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
    one ``gram`` and two ``F x F`` products, as a step of the plain map (the vector updates in
    place, :mod:`gtv.numerics.linear.solver_kernels`). Stop as
    :func:`~gtv.numerics.linear.fixed_point.anderson` does: when the recursive residual is below
    ``tol``, one application of the map at the iterate ``x`` must give
    ``max|g(x) - x| <= tol max|g(x)|`` (else restart from ``x``); ``g(x)`` is returned.
    """

    def apply_l(X):
        K = quad_gram(X, base) / P  # gram(base * quad(X)) / P
        out = Mi @ K @ Mi
        return (out + out.T) / 2, K

    C0 = Mi @ K0 @ Mi / P
    C0 = (C0 + C0.T) / 2
    x = np.zeros_like(C0)
    r, rt = C0.copy(), K0 / P  # residual g(x) - x and M r M
    p, pt = r.copy(), rt.copy()
    rr = float(np.sum(r * rt))
    r_max, xr_max = np.max(np.abs(r)), np.max(np.abs(x + r))
    it = 1
    while True:
        if r_max <= tol * xr_max:
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
        pAp = cg_curvature(p, pt, Kp)
        if not (np.isfinite(pAp) and pAp > 0 and rr > 0):
            raise ValueError(
                "covariance: the cavity covariance map is not a contraction (conjugate gradients "
                "met a non-positive curvature)"
            )
        alpha = rr / pAp
        # x += alpha p, r -= alpha (p - Lp), rt -= alpha (pt - Kp), in place
        rr_new, r_max, xr_max = cg_update(x, r, rt, p, pt, Lp, Kp, alpha)
        beta = rr_new / rr
        rr = rr_new
        cg_direction(p, pt, r, rt, beta)  # p = r + beta p, pt = rt + beta pt
    raise ValueError(
        f"covariance: the cavity fixed point did not converge in {max_iter} iterations"
    )


def _solve(
    ops, nodes, ridge: float, P: float, tol: float, max_iter: int, delay: float | None = None,
    covariance: str = "anderson",
) -> CavityMoments:  # fmt: skip
    """The three cavity equations with ``ops = (gram, quadratic, vector, apply, quadratic_gram)``
    on ``nodes`` (:meth:`~gtv.numerics.linear.nodes.PopulationNodes.quadratic_gram`)
    (``delay``: the mixing of :func:`~gtv.numerics.linear.fixed_point.anderson`;
    ``covariance``: ``"anderson"`` or ``"cg"``, the solver of the covariance fixed point,
    :func:`_covariance_cg`)."""
    gram, quad, vec, apply, quad_gram = ops
    F = nodes.phi_s.shape[2] * nodes.phi_t.shape[1]
    wp = nodes.w[:, None] * nodes.prob
    eye = np.eye(F)

    def leverage(M):
        Mi = _symmetric_inverse(M)
        return Mi, np.clip(nodes.w[:, None] * quad(Mi) / P, 0.0, None)

    def m_map(M):
        Mi = _symmetric_inverse(M)
        Sq = quad_gram(Mi, wp, P)  # gram(wp / (1 + q)) with the leverages q of leverage(M)
        # the finite-F term (rho/P) S_q M^-1 makes the 1/P term of W_bar exact (docstring)
        corr = Sq @ Mi
        out = corr + corr.T  # rho I + S_q - (rho / P) (corr + corr^T) / 2, in place
        out *= -ridge / (2 * P)
        out += Sq
        out.flat[:: F + 1] += ridge
        return out

    # from q = 0 (M = Sigma + rho I) the iterates of M decrease monotonically
    M, it_q = anderson(m_map, ridge * eye + gram(wp), tol, max_iter, "M", delay=delay)
    Mi, q = leverage(M)
    W_bar = vec(wp * nodes.mu / (1 + q)) @ Mi
    c = nodes.s2 + (nodes.mu - apply(W_bar)) ** 2
    base = nodes.w[:, None] ** 2 * nodes.prob / (1 + q) ** 2
    eg = W_bar @ (M - gram(wp / (1 + q)))

    if covariance == "cg":
        K0 = gram(base * c) - np.outer(eg, eg)
        C, it_c = _covariance_cg(quad_gram, M, Mi, base, K0, P, tol, max_iter)
    else:

        def c_map(C):
            K = gram(base * (c + quad(C))) - np.outer(eg, eg)
            out = Mi @ K @ Mi / P
            return (out + out.T) / 2

        C, it_c = anderson(c_map, np.zeros((F, F)), tol, max_iter, "covariance", delay=delay)
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
            (nodes.gram, nodes.quadratic, nodes.vector, nodes.apply, nodes.quadratic_gram),
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

    def quad_gram(B, c, P=None):
        v = quad(B)
        return gram(c * v if P is None else c / (1 + np.clip(nodes.w[:, None] * v / P, 0.0, None)))

    return _solve(
        (gram, quad, vec, apply, quad_gram), nodes, theory.ridge, float(P), tol, max_iter, delay,
        covariance,
    )  # fmt: skip


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
