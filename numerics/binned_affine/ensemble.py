"""Binned affine denoisers on 1-D Gaussian data: the model and its training (docs/math/linear.md).

The model (item 2 of :mod:`gtv.theory.closed_forms`): features
``phi(x, t) = (1, x) (x) 1[t in bin b]`` over bins ``eps = tau_0 < tau_1 < ... < tau_K = T``, so
``D^(x, t) = a_b + c_b x`` on bin ``b``. Data ``x0 ~ N(m, s2)`` (1-D); each model is trained by
weighted ridge regression on P DSM triples ``t ~ U[eps, T]``, ``x = alpha_t x0 + sigma_t xi``,
weight ``lam = alpha**2/sigma**2`` (docs/math/linear.md:
``Sigma_P = (1/P) sum lam phi phi^T + rho I``), which splits into one 2x2 system per bin. The
number of triples per bin is random (multinomial); nothing is conditioned on it. Model ``n`` draws
its triples from ``stream(seed, "training").spawn(N)[n]``
(:func:`gtv.numerics.dsm.draw_gaussian_dsm_triples`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np

from gtv.numerics.checks import (
    check_bin_edges,
    check_budget,
    check_choice,
    check_count,
    check_gaussian_1d,
    check_ridge,
)
from gtv.numerics.dsm import draw_gaussian_dsm_triples, dsm_weights
from gtv.numerics.io import load_result_of_kind, require_finite, result_file, save_result
from gtv.numerics.schedules import NumericSchedule, get_schedule, resolve_schedule
from gtv.numerics.streams import check_seed, model_rngs, seed_from_config, seed_to_config

__all__ = [
    "BinnedAffineEnsemble",
    "binned_normal_equations",
    "binned_normal_equations_reference",
    "train_binned_affine_ensemble",
]


@numba.njit(parallel=True, cache=True, error_model="numpy")
def _binned_normal_equations_numba(t, x0, x, w, edges):
    n_models, n_samples = t.shape
    n_bins = edges.size - 1
    S = np.zeros((n_models, n_bins, 3))
    A = np.zeros((n_models, n_bins, 2))
    counts = np.zeros((n_models, n_bins), dtype=np.int64)
    inv_p = 1.0 / n_samples
    for n in numba.prange(n_models):
        for j in range(n_samples):
            b = np.searchsorted(edges, t[n, j], side="right") - 1
            b = min(max(b, 0), n_bins - 1)
            wj, xj = w[n, j], x[n, j]
            S[n, b, 0] += wj
            S[n, b, 1] += wj * xj
            S[n, b, 2] += wj * xj * xj
            A[n, b, 0] += wj * x0[n, j]
            A[n, b, 1] += wj * x0[n, j] * xj
            counts[n, b] += 1
        for b in range(n_bins):
            for i in range(3):
                S[n, b, i] *= inv_p
            for i in range(2):
                A[n, b, i] *= inv_p
    return S, A, counts


def binned_normal_equations(
    t: np.ndarray, x0: np.ndarray, x: np.ndarray, weight: np.ndarray, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-bin normal equations (no ridge) for a batch of models (numba, parallel over models).

    Parameters
    ----------
    t, x0, x, weight : ndarray, shape (N, P)
    edges : ndarray, shape (K + 1,)

    Returns
    -------
    S : ndarray, shape (N, K, 3)
        ``(1/P) sum_{j in b} w_j (1, x_j, x_j**2)`` (entries ``00, 01, 11`` of the 2x2 Gram).
    A : ndarray, shape (N, K, 2)
        ``(1/P) sum_{j in b} w_j x0_j (1, x_j)``.
    counts : ndarray, shape (N, K)
        Triples per bin.
    """
    arrs = [np.ascontiguousarray(a, dtype=np.float64) for a in (t, x0, x, weight)]
    return _binned_normal_equations_numba(*arrs, np.ascontiguousarray(edges, dtype=np.float64))


def binned_normal_equations_reference(t, x0, x, weight, edges):
    """Plain-numpy version of :func:`binned_normal_equations`."""
    n_models, n_samples = t.shape
    K = edges.size - 1
    b = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, K - 1)
    S = np.zeros((n_models, K, 3))
    A = np.zeros((n_models, K, 2))
    counts = np.zeros((n_models, K), dtype=np.int64)
    for k in range(K):
        sel = b == k
        wk = np.where(sel, weight, 0.0)
        S[:, k, 0] = wk.sum(1)
        S[:, k, 1] = (wk * x).sum(1)
        S[:, k, 2] = (wk * x * x).sum(1)
        A[:, k, 0] = (wk * x0).sum(1)
        A[:, k, 1] = (wk * x0 * x).sum(1)
        counts[:, k] = sel.sum(1)
    return S / n_samples, A / n_samples, counts


def _solve_bins(S: np.ndarray, A: np.ndarray, ridge: float) -> np.ndarray:
    """``theta = (S + rho I)^{-1} A`` per model and bin (explicit 2x2 inverse)."""
    s00, s01, s11 = S[..., 0] + ridge, S[..., 1], S[..., 2] + ridge
    det = s00 * s11 - s01 * s01
    if np.any(~(det > 1e-14 * (s00 * s11))):
        raise ValueError(
            "ridge: a bin's 2x2 system is singular for at least one model (a bin with fewer than "
            "2 triples and ridge = 0); use ridge > 0, more triples P or wider bins"
        )
    a = (s11 * A[..., 0] - s01 * A[..., 1]) / det
    c = (s00 * A[..., 1] - s01 * A[..., 0]) / det
    return np.stack([a, c], axis=-1)


@dataclass
class BinnedAffineEnsemble:
    """N trained binned affine denoisers ``D^_n(x, t) = theta[n, b, 0] + theta[n, b, 1] x``.

    Attributes
    ----------
    theta : ndarray, shape (N, K, 2)
        ``(a_b, c_b)`` per model and bin (bins by increasing time).
    counts : ndarray, shape (N, K)
        DSM triples that fell in each bin.
    bin_edges : ndarray, shape (K + 1,)
    mean, s2 : float
        The data ``N(mean, s2)``.
    schedule : NumericSchedule
    n_samples : int
        P.
    ridge : float
    seed : int or SeedSequence
        The seed of the training streams.
    """

    theta: np.ndarray
    counts: np.ndarray
    bin_edges: np.ndarray
    mean: float
    s2: float
    schedule: NumericSchedule
    n_samples: int
    ridge: float
    seed: int | np.random.SeedSequence

    @property
    def n_models(self) -> int:
        return self.theta.shape[0]

    @property
    def eps(self) -> float:
        return float(self.bin_edges[0])

    def config(self) -> dict:
        return {
            "n_models": self.n_models,
            "bin_edges": self.bin_edges.tolist(),
            "mean": self.mean,
            "s2": self.s2,
            "schedule": self.schedule.name,
            "T": self.schedule.T,
            "n_samples": self.n_samples,
            "ridge": self.ridge,
            "seed": seed_to_config(self.seed),
        }

    def save(self, path: str | Path) -> Path:
        """Write ``theta`` and ``counts`` with the configuration (npz + JSON, no pickle)."""
        arrays = {"theta": self.theta, "counts": self.counts}
        return save_result(path, arrays, self.config(), kind="binned_affine_ensemble")

    @classmethod
    def load(cls, path: str | Path) -> BinnedAffineEnsemble:
        """Read a file written by :meth:`save` (named schedules only); ``ValueError`` naming the
        file if it is corrupt, of another kind, or inconsistent (shapes, non-finite ``theta``,
        bin edges that do not partition ``[eps, T]``)."""
        arrays, cfg = load_result_of_kind(
            path,
            "binned_affine_ensemble",
            "a BinnedAffineEnsemble",
            legacy=lambda c: {"bin_edges", "s2", "n_samples"} <= set(c),
        )
        with result_file(path, "BinnedAffineEnsemble"):
            sched = get_schedule(cfg["schedule"], cfg["T"])
            edges = check_bin_edges(cfg["bin_edges"], sched)
            theta, counts = arrays["theta"], arrays["counts"]
            K = edges.size - 1
            if theta.ndim != 3 or theta.shape[1:] != (K, 2) or counts.shape != theta.shape[:2]:
                raise ValueError(
                    f"theta {theta.shape} and counts {counts.shape} do not match {K} bins"
                )
            require_finite(arrays, "theta")
            mean, s2 = check_gaussian_1d(cfg["mean"], cfg["s2"])
            return cls(
                theta=theta,
                counts=counts,
                bin_edges=edges,
                mean=mean,
                s2=s2,
                schedule=sched,
                n_samples=check_count(cfg["n_samples"], "n_samples"),
                ridge=check_ridge(cfg["ridge"]),
                seed=seed_from_config(cfg["seed"]),
            )


def train_binned_affine_ensemble(
    mean: float,
    s2: float,
    bin_edges: object,
    n_models: int,
    n_samples: int,
    schedule: object = "vp-linear",
    ridge: float = 0.1,
    seed: int | np.random.SeedSequence = 0,
    backend: str = "numba",
) -> BinnedAffineEnsemble:
    """Train N binned affine denoisers on data ``N(mean, s2)`` (module docstring).

    Parameters
    ----------
    mean, s2 : float
        Data mean and variance (``s2 > 0``).
    bin_edges : array_like, shape (K + 1,)
        Partition of ``[eps, T]`` (:func:`check_bin_edges`); ``eps = bin_edges[0]``.
    n_models, n_samples : int
        N models, P DSM triples each.
    schedule : str or NumericSchedule
    ridge : float, default 0.1
    seed : int or SeedSequence
        Model ``n`` draws its triples from ``stream(seed, "training").spawn(N)[n]``.
    backend : {"numba", "numpy"}
    """
    sched = resolve_schedule(schedule)
    m, s2 = check_gaussian_1d(mean, s2)
    edges = check_bin_edges(bin_edges, sched)
    n_models = check_count(n_models, "n_models (N)")
    n_samples = check_count(n_samples, "n_samples (P)")
    ridge = check_ridge(ridge)
    check_choice(backend, "backend", ("numba", "numpy"))
    seed = check_seed(seed)
    eps = float(edges[0])
    check_budget(
        "n_models (N), n_samples (P)", f"{n_models}, {n_samples}",
        n_bytes=8.0 * (4 * n_samples + 8 * n_models * edges.size),
        n_ops=float(n_models) * n_samples, what="training",
    )  # fmt: skip
    rngs = model_rngs(seed, "training", n_models)
    K = edges.size - 1
    theta = np.empty((n_models, K, 2))
    counts = np.empty((n_models, K), dtype=np.int64)
    chunk = max(1, 2**21 // n_samples)
    solve = binned_normal_equations if backend == "numba" else binned_normal_equations_reference
    for c0 in range(0, n_models, chunk):
        c1 = min(n_models, c0 + chunk)
        draws = [
            draw_gaussian_dsm_triples(rngs[n], m, s2, n_samples, eps, sched) for n in range(c0, c1)
        ]
        t = np.stack([d[0] for d in draws])
        x0 = np.stack([d[1] for d in draws])
        x = np.stack([d[2] for d in draws])
        S, A, cnt = solve(t, x0, x, dsm_weights(sched, t), edges)
        theta[c0:c1] = _solve_bins(S, A, ridge)
        counts[c0:c1] = cnt
    return BinnedAffineEnsemble(theta, counts, edges, m, s2, sched, n_samples, ridge, seed)
