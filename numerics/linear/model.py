"""Closed-form DSM training of linear-feature denoisers (docs/math/linear.md).

One model is trained on P DSM triples ``(t_j, x0_j, x_j)`` with ``t ~ U[eps, T]``,
``x0 ~ p_data`` (uniform over the training points) and ``x = alpha_t x0 + sigma_t xi``. With the
denoiser-form weight ``lambda~ = alpha**2 / sigma**2`` and ridge ``rho``:

    ``Sigma_P = (1/P) sum_j lambda~_j phi_j phi_j^T + rho I``,
    ``A_P = (1/P) sum_j lambda~_j x0_j phi_j^T``,     ``W = A_P Sigma_P^{-1}``   (D x F),

and the denoiser is ``D^(x, t) = W phi(x, t)``. An ensemble is N independent draws of the P
triples, each from its own random stream, the ``n``-th child of ``stream(seed, "training")``
(:func:`gtv.numerics.dsm.draw_dsm_triples`).

**Target.** The DSM target is the noisy ``x0`` (``target="noisy"``, the default). With
``target="exact"`` the regression target is the posterior mean ``mu_bar(x_j, t_j)`` over the
training points (:func:`gtv.numerics.posterior.posterior_stats`) at the same design points
``(x_j, t_j)`` (drawn from the same streams, so model ``n`` sees the same design under both
targets): ``A_P = (1/P) sum_j lambda~_j mu_bar(x_j, t_j) phi_j^T``. The population solution is
the same (``E[x0 | x, t] = mu_bar``) but the label noise is gone; to first order in 1/P the
covariance is the misfit part only (docs/math/linear.md, "Does the target's noise matter?").

The Gram matrices are accumulated in numba (parallel over models, a fixed summation order per
model, so results do not depend on the thread count) with BLAS ``dsyrk``; the solves are LAPACK
Cholesky factorizations (``dpotrf``) called from the same compiled loop. Without
``keep_normal_equations`` each model's normal equations are formed, factorized and solved in one
pass through per-thread work buffers, never stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numba
import numpy as np
from tqdm import tqdm

from gtv.numerics.blas import (
    cholesky_solve_rows,
    gram_lower_into,
    outer_lower_into,
    serial_blas,
)
from gtv.numerics.checks import (
    check_budget,
    check_choice,
    check_count,
    check_eps,
    check_ridge,
)
from gtv.numerics.dsm import draw_dsm_triples, dsm_weights
from gtv.numerics.features import ProductFeatures, check_data_and_features, product_features_serial
from gtv.numerics.linear.product_gram import (
    pair_count,
    product_dual_kernel,
    product_factors,
    product_normal_equations,
)
from gtv.numerics.posterior import posterior_stats
from gtv.numerics.schedules import NumericSchedule, resolve_schedule
from gtv.numerics.streams import check_seed, model_rngs, seed_to_config

__all__ = [
    "TARGETS",
    "LinearEnsemble",
    "normal_equations",
    "normal_equations_reference",
    "solve_spd",
    "regression_targets",
    "train_linear_ensemble",
]

#: Regression targets of DSM training: the noisy ``x0`` or the posterior mean ``E[x0 | x, t]``.
TARGETS = ("noisy", "exact")


@numba.njit(cache=True, error_model="numpy", inline="always")
def _model_normal_equations(kinds, sizes, los, his, z, x0, weight, phi, v, g, rhs):
    """One model: the lower triangle of ``g = (1/P) sum_j w_j phi_j phi_j^T`` (the strict upper
    triangle left as it was) and ``rhs = (1/P) sum_j w_j x0_j phi_j^T`` (D, F).

    Both are BLAS products of the feature matrix ``phi`` (P, F, a work buffer): ``rhs = (w
    x0)^T phi``, and ``G = phi_s^T phi_s`` with the rows of ``phi_s`` scaled by ``sqrt(w)``
    (BLAS ``dsyrk``, :func:`gtv.numerics.blas.gram_lower_into`).
    """
    n_samples, f = phi.shape
    inv_p = 1.0 / n_samples
    product_features_serial(kinds, sizes, los, his, z, phi)
    for c in range(x0.shape[1]):
        for j in range(n_samples):
            v[j] = weight[j] * x0[j, c]
        b = v @ phi
        for i in range(f):
            rhs[c, i] = b[i] * inv_p
    for j in range(n_samples):
        sw = np.sqrt(weight[j])
        for i in range(f):
            phi[j, i] *= sw
    gram_lower_into(phi, g)
    for i in range(f):
        for k in range(i + 1):
            g[i, k] *= inv_p


@numba.njit(parallel=True, cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _normal_equations_numba(kinds, sizes, los, his, z, x0, weight):
    """Gram ``G[n] = (1/P) sum_j w_j phi_j phi_j^T`` and ``B[n] = (1/P) sum_j w_j x0_j phi_j^T``
    (:func:`_model_normal_equations`, the lower triangle mirrored to the upper one).

    ``z`` is (N, P, D+1) (points and times), ``x0`` is (N, P, D), ``weight`` is (N, P). The
    caller limits BLAS to one thread: the models run in parallel here. No NaN/inf assumptions.
    """
    n_models, n_samples, _ = z.shape
    d, f = x0.shape[2], np.prod(sizes)
    gram = np.empty((n_models, f, f))
    rhs = np.zeros((n_models, d, f))
    for n in numba.prange(n_models):
        g = gram[n]
        if kinds.shape[0] == 2:  # one space axis: the Kronecker route (product_gram)
            fs, ft = sizes[0], sizes[1]
            a, b = np.empty((n_samples, fs)), np.empty((n_samples, ft))
            u = np.empty((n_samples, pair_count(fs)))
            v2 = np.empty((n_samples, pair_count(ft)))
            m = np.empty((pair_count(fs), pair_count(ft)))
            product_normal_equations(
                kinds, sizes, los, his, z[n], x0[n], weight[n], a, b, u, v2, m, g, rhs[n]
            )
        else:
            phi = np.empty((n_samples, f))
            v = np.empty(n_samples)
            _model_normal_equations(
                kinds, sizes, los, his, z[n], x0[n], weight[n], phi, v, g, rhs[n]
            )
        for i in range(f):
            for k in range(i):
                g[k, i] = g[i, k]
    return gram, rhs


@numba.njit(parallel=True, cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _train_solve_numba(kinds, sizes, los, his, z, x0, weight, ridge, n_threads):
    """:func:`_normal_equations_numba`, ``ridge`` added to the diagonal and
    :func:`cholesky_solve_rows`, model by model, without keeping the normal equations: ``W`` and the
    status of every solve. The models are cut into one run per thread, each with its own work
    buffers (no per-model allocation); every model's arithmetic is the same whatever the cut.
    """
    n_models, n_samples, _ = z.shape
    d, f = x0.shape[2], np.prod(sizes)
    W = np.empty((n_models, d, f))
    status = np.zeros(n_models, dtype=np.int8)
    n_runs = max(1, min(n_models, n_threads))
    kron = kinds.shape[0] == 2  # one space axis: the Kronecker route (product_gram)
    fs, ft = sizes[0], sizes[-1]
    for r in numba.prange(n_runs):
        phi = np.empty((0 if kron else n_samples, f))
        v = np.empty(n_samples)
        a, b = np.empty((n_samples, fs)), np.empty((n_samples, ft))
        u = np.empty((n_samples if kron else 0, pair_count(fs)))
        v2 = np.empty((n_samples if kron else 0, pair_count(ft)))
        m = np.empty((pair_count(fs), pair_count(ft)))
        g = np.empty((f, f))
        rhs = np.empty((d, f))
        y = np.empty(f)
        for n in range(r * n_models // n_runs, (r + 1) * n_models // n_runs):
            if kron:
                product_normal_equations(
                    kinds, sizes, los, his, z[n], x0[n], weight[n], a, b, u, v2, m, g, rhs
                )
            else:
                _model_normal_equations(
                    kinds, sizes, los, his, z[n], x0[n], weight[n], phi, v, g, rhs
                )
            for i in range(f):
                g[i, i] += ridge
            status[n] = cholesky_solve_rows(g, rhs, W[n], y)
    return W, status


@numba.njit(parallel=True, cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _train_solve_dual_numba(kinds, sizes, los, his, z, x0, weight, ridge, n_threads):
    """:func:`_train_solve_numba` through the P x P dual system, for ``P <= F/2`` and ``ridge > 0``.

    With ``Phi_s`` the feature matrix with rows scaled by ``sqrt(w)`` (P, F), the push-through
    identity ``(Phi_s^T Phi_s + c I)^{-1} Phi_s^T = Phi_s^T (Phi_s Phi_s^T + c I)^{-1}`` with
    ``c = P ridge`` gives ``W = alpha^T Phi_s``, ``alpha = (Phi_s Phi_s^T + c I)^{-1} sqrt(w) x0``
    (docs/math/linear.md, "Training"): a P x P factorization instead of F x F.
    """
    n_models, n_samples, _ = z.shape
    d, f = x0.shape[2], np.prod(sizes)
    W = np.zeros((n_models, d, f))
    status = np.zeros(n_models, dtype=np.int8)
    n_runs = max(1, min(n_models, n_threads))
    shift = n_samples * ridge
    kron = kinds.shape[0] == 2  # one space axis: K from the axis Gram matrices (product_gram)
    fs, ft = sizes[0], sizes[-1]
    for r in numba.prange(n_runs):
        phi = np.empty((0 if kron else n_samples, f))
        nk = n_samples if kron else 0
        a, b = np.empty((nk, fs)), np.empty((nk, ft))
        ka, kb = np.empty((nk, nk)), np.empty((nk, nk))
        sw = np.empty(n_samples)
        k = np.empty((n_samples, n_samples))
        rhs = np.empty((d, n_samples))
        alpha = np.empty((d, n_samples))
        y = np.empty(n_samples)
        for n in range(r * n_models // n_runs, (r + 1) * n_models // n_runs):
            for j in range(n_samples):
                sw[j] = np.sqrt(weight[n, j])
                for c in range(d):
                    rhs[c, j] = sw[j] * x0[n, j, c]
            if kron:
                product_factors(kinds, sizes, los, his, z[n], a, b)
                product_dual_kernel(a, b, sw, ka, kb, k)
            else:
                product_features_serial(kinds, sizes, los, his, z[n], phi)
                for j in range(n_samples):
                    for i in range(f):
                        phi[j, i] *= sw[j]
                outer_lower_into(phi, k)
            for j in range(n_samples):
                k[j, j] += shift
            status[n] = cholesky_solve_rows(k, rhs, alpha, y)
            for c in range(d):
                wc = W[n, c]
                for j in range(n_samples):
                    aj = alpha[c, j]
                    if kron:  # phi_s[j, (i, l)] = sw_j a_ji b_jl
                        aj *= sw[j]
                        for i in range(fs):
                            ai = aj * a[j, i]
                            for q in range(ft):
                                wc[i * ft + q] += ai * b[j, q]
                    else:
                        for i in range(f):
                            wc[i] += aj * phi[j, i]
    return W, status


def normal_equations(
    features: ProductFeatures, t: np.ndarray, x0: np.ndarray, x: np.ndarray, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Unregularized normal equations for a batch of models (numba).

    Parameters
    ----------
    features : ProductFeatures
    t, weight : ndarray, shape (N, P)
    x0, x : ndarray, shape (N, P, D)

    Returns
    -------
    gram : ndarray, shape (N, F, F)
        ``(1/P) sum_j w_j phi_j phi_j^T`` (no ridge).
    rhs : ndarray, shape (N, D, F)
        ``(1/P) sum_j w_j x0_j phi_j^T``.
    """
    z = np.ascontiguousarray(np.concatenate([x, t[:, :, None]], axis=2))
    with serial_blas():
        return _normal_equations_numba(
            *features.arrays(), z, np.ascontiguousarray(x0), np.ascontiguousarray(weight)
        )


def _train_solve(
    features: ProductFeatures,
    t: np.ndarray,
    x0: np.ndarray,
    x: np.ndarray,
    weight: np.ndarray,
    ridge: float,
) -> np.ndarray:
    """``W`` of :func:`normal_equations` + ridge + :func:`solve_spd` in one pass over the models,
    without keeping the normal equations: for ``P >= F`` (or no ridge) the same arithmetic, the
    same ``W`` bit for bit; for ``P <= F / 2`` with a ridge the P x P dual system
    (:func:`_train_solve_dual_numba`), the same ``W`` to rounding (faster below ``F / 2``:
    ``benchmarks/README.md``, "Training below F")."""
    z = np.ascontiguousarray(np.concatenate([x, t[:, :, None]], axis=2))
    dual = ridge > 0 and 2 * t.shape[1] <= features.n_features
    kernel = _train_solve_dual_numba if dual else _train_solve_numba
    with serial_blas():
        W, status = kernel(
            *features.arrays(), z, np.ascontiguousarray(x0), np.ascontiguousarray(weight),
            float(ridge), numba.get_num_threads(),
        )  # fmt: skip
    raise_for_status(status)
    return W


def normal_equations_reference(
    features: ProductFeatures, t: np.ndarray, x0: np.ndarray, x: np.ndarray, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Plain-numpy version of :func:`normal_equations` (the reference)."""
    grams, rhss = [], []
    for n in range(t.shape[0]):
        phi = features.evaluate_reference(x[n], t[n])
        w = weight[n]
        grams.append((phi * w[:, None]).T @ phi / t.shape[1])
        rhss.append((x0[n] * w[:, None]).T @ phi / t.shape[1])
    return np.array(grams), np.array(rhss)


@dataclass
class LinearEnsemble:
    """N trained linear-feature denoisers ``D^_n(x, t) = W[n] phi(x, t)``.

    Attributes
    ----------
    W : ndarray, shape (N, D, F)
    features : ProductFeatures
    data : ndarray, shape (M, D)
        Training points.
    schedule : NumericSchedule
    eps : float
        Smallest training time (DSM draws ``t ~ U[eps, T]``).
    n_samples : int
        P, the DSM triples per model.
    ridge : float
    seed : int or SeedSequence
        The seed of the training streams.
    gram, rhs : ndarray or None
        Per-model ``Sigma_P`` (N, F, F, ridge included) and ``A_P`` (N, D, F), if kept.
    target : {"noisy", "exact"}
        The regression target: ``x0`` or the posterior mean ``mu_bar(x, t)`` (module docstring).
    """

    W: np.ndarray
    features: ProductFeatures
    data: np.ndarray
    schedule: NumericSchedule
    eps: float
    n_samples: int
    ridge: float
    seed: int | np.random.SeedSequence
    gram: np.ndarray | None = field(default=None, repr=False)
    rhs: np.ndarray | None = field(default=None, repr=False)
    target: str = "noisy"

    @property
    def n_models(self) -> int:
        return self.W.shape[0]

    def denoise(self, x: object, t: object, model: int | None = None) -> np.ndarray:
        """Evaluate ``D^(x, t)``: shape (N_models, n, D), or (n, D) for one ``model``."""
        phi = self.features.evaluate(np.atleast_2d(np.asarray(x, dtype=float)), t)
        if model is not None:
            return phi @ self.W[model].T
        return np.einsum("ndf,kf->nkd", self.W, phi)

    def config(self) -> dict:
        return {
            "n_models": self.n_models,
            "features": self.features.config(),
            "data": self.data.tolist(),
            "schedule": self.schedule.name,
            "T": self.schedule.T,
            "eps": self.eps,
            "n_samples": self.n_samples,
            "ridge": self.ridge,
            "seed": seed_to_config(self.seed),
            "target": self.target,
        }


def regression_targets(
    data: np.ndarray,
    t: np.ndarray,
    x0: np.ndarray,
    x: np.ndarray,
    schedule: NumericSchedule,
    target: str,
    backend: str = "numba",
) -> np.ndarray:
    """The regression targets of a batch of DSM triples: ``x0``, or ``mu_bar(x, t)``.

    Parameters
    ----------
    data : ndarray, shape (M, D)
        Training points.
    t : ndarray, shape (N, P)
    x0, x : ndarray, shape (N, P, D)
    schedule : NumericSchedule
    target : {"noisy", "exact"}
        ``"noisy"`` returns ``x0`` itself; ``"exact"`` the posterior mean over ``data`` at each
        design point ``(x, t)`` (:func:`gtv.numerics.posterior.posterior_stats`).
    backend : {"numba", "numpy"}, default "numba"
        Backend of :func:`~gtv.numerics.posterior.posterior_stats` (``"numpy"``: the reference).

    Returns
    -------
    ndarray, shape (N, P, D)
    """
    target = check_choice(target, "target", TARGETS)
    if target == "noisy":
        return x0
    n, p, d = x.shape
    stats = posterior_stats(data, x.reshape(n * p, d), t.reshape(n * p), schedule, backend=backend)
    return stats.mean.reshape(n, p, d)


def _chunk_size(n_features: int, budget_bytes: int = 256 * 2**20) -> int:
    return max(1, budget_bytes // (8 * n_features * n_features))


def train_linear_ensemble(
    data: object,
    features: ProductFeatures,
    n_models: int,
    n_samples: int,
    eps: float,
    schedule: object = "vp-linear",
    ridge: float = 0.1,
    seed: int | np.random.SeedSequence = 0,
    keep_normal_equations: bool = True,
    progress: bool = False,
    target: str = "noisy",
) -> LinearEnsemble:
    """Train N linear-feature denoisers on independent DSM draws (closed-form weighted ridge).

    Parameters
    ----------
    data : array_like, shape (M, D)
        Training points.
    features : ProductFeatures
        Features over ``(x, t)``; their spatial dimension must equal D.
    n_models : int
        N >= 1, the ensemble size.
    n_samples : int
        P >= 1, DSM triples per model.
    eps : float
        Smallest time, ``0 < eps < T``.
    schedule : str or NumericSchedule, default "vp-linear"
    ridge : float, default 0.1
        Ridge ``rho >= 0``. With ``rho = 0`` a singular ``Sigma_P`` raises ``ValueError``.
    seed : int or SeedSequence, default 0
        Model ``n`` draws its triples from ``stream(seed, "training").spawn(N)[n]``.
    keep_normal_equations : bool, default True
        Keep ``Sigma_P`` and ``A_P`` (memory ``N F**2``).
    progress : bool, default False
        Show a progress bar over chunks of models.
    target : {"noisy", "exact"}, default "noisy"
        Regression target (:func:`regression_targets`): the DSM target ``x0``, or the posterior
        mean ``mu_bar(x, t)`` at the same design points (same streams: model ``n`` has the same
        ``(x_j, t_j)`` under both).

    Returns
    -------
    LinearEnsemble
    """
    sched = resolve_schedule(schedule)
    data = check_data_and_features(data, features)
    n_models = check_count(n_models, "n_models (N)")
    n_samples = check_count(n_samples, "n_samples (P)")
    eps = check_eps(eps, sched.T)
    ridge = check_ridge(ridge)
    seed = check_seed(seed)
    target = check_choice(target, "target", TARGETS)
    F, D = features.n_features, data.shape[1]
    check_budget(
        "n_models (N), n_samples (P)", f"{n_models}, {n_samples}",
        n_bytes=8.0 * (3 * n_models * F * D + n_samples * (F + 2 * D + 1) + 2 * F * F),
        n_ops=float(n_models) * (n_samples * F * F + F**3), what=f"training (F = {F} features)",
    )  # fmt: skip
    if ridge == 0 and n_samples < F:
        # Sigma_P is a sum of P rank-one terms: rank <= P < F. Cholesky does not reliably detect
        # this (rounding can leave tiny positive pivots and a finite, meaningless W).
        raise ValueError(
            f"ridge: with ridge = 0 and n_samples (P) = {n_samples} < F = {F} features, Sigma_P "
            "is singular (rank <= P); use ridge > 0 or P >= F"
        )
    rngs = model_rngs(seed, "training", n_models)
    W = np.empty((n_models, D, F))
    grams = np.empty((n_models, F, F)) if keep_normal_equations else None
    rhss = np.empty((n_models, D, F)) if keep_normal_equations else None
    chunk = _chunk_size(F)
    starts = range(0, n_models, chunk)
    for c0 in tqdm(starts, desc="training", disable=not progress, leave=False):
        c1 = min(n_models, c0 + chunk)
        draws = [draw_dsm_triples(rngs[n], data, n_samples, eps, sched) for n in range(c0, c1)]
        t = np.stack([d[0] for d in draws])
        x0 = np.stack([d[1] for d in draws])
        x = np.stack([d[2] for d in draws])
        y = regression_targets(data, t, x0, x, sched, target)
        if not keep_normal_equations:
            W[c0:c1] = _train_solve(features, t, y, x, dsm_weights(sched, t), ridge)
            continue
        gram, rhs = normal_equations(features, t, y, x, dsm_weights(sched, t))
        gram[:, np.arange(F), np.arange(F)] += ridge
        W[c0:c1] = solve_spd(gram, rhs)
        grams[c0:c1] = gram
        rhss[c0:c1] = rhs
    return LinearEnsemble(
        W, features, data, sched, eps, n_samples, ridge, seed, grams, rhss, target
    )


def solve_spd(gram: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """``W[n] = rhs[n] gram[n]^{-1}`` by Cholesky; a non-positive-definite gram raises.

    The systems are many and small: they are factorized and solved in parallel over the models
    (numba), each on one BLAS thread (multi-threaded OpenBLAS inside or right after a numba
    parallel region oversubscribes the cores: measured up to 20x slower).
    """
    gram = np.ascontiguousarray(gram, dtype=np.float64)
    rhs = np.ascontiguousarray(rhs, dtype=np.float64)
    with serial_blas():
        W, status = _cholesky_solve(gram, rhs, numba.get_num_threads())
    raise_for_status(status)
    return W


def raise_for_status(status: np.ndarray) -> None:
    """``ValueError`` for the worst status of :func:`cholesky_solve_rows` over the models."""
    if np.any(status == 1):
        raise ValueError(
            "ridge: Sigma_P is singular (not positive definite) for at least one model; "
            "use ridge > 0 or more DSM samples P"
        )
    if np.any(status == 2):
        raise ValueError(
            "ridge: Sigma_P is numerically singular for at least one model "
            "(a Cholesky pivot below F * eps * max diag); use ridge > 0 or more DSM samples P"
        )
    if np.any(status == 3):
        raise ValueError(
            "ridge: the solve produced non-finite weights (Sigma_P is ill-conditioned)"
        )


@numba.njit(parallel=True, cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _cholesky_solve(gram, rhs, n_threads):
    """Per model :func:`cholesky_solve_rows` on a copy of ``gram[n]``: ``W`` and the statuses.
    ``reassoc`` lets LLVM vectorize the dot products (the summation order then depends on the
    vector width)."""
    n_models, f, _ = gram.shape
    d = rhs.shape[1]
    W = np.empty((n_models, d, f))
    status = np.zeros(n_models, dtype=np.int8)
    n_runs = max(1, min(n_models, n_threads))
    for r in numba.prange(n_runs):
        g = np.empty((f, f))
        y = np.empty(f)
        for n in range(r * n_models // n_runs, (r + 1) * n_models // n_runs):
            for i in range(f):
                for k in range(i + 1):
                    g[i, k] = gram[n, i, k]
            status[n] = cholesky_solve_rows(g, rhs[n], W[n], y)
    return W, status
