"""Affine denoisers per time bin on Gaussian data: training, exact flows, theory (docs/math/linear.md).

The model (item 2 of :mod:`gtv.theory.closed_forms`): features ``phi(x, t) = (1, x) (x) 1[t in bin b]``
over bins ``eps = tau_0 < tau_1 < ... < tau_K = T``, so ``D^(x, t) = a_b + c_b x`` on bin ``b``.
Data ``x0 ~ N(m, s2)`` (1-D); each model is trained by weighted ridge regression on P DSM triples
``t ~ U[eps, T]``, ``x = alpha_t x0 + sigma_t xi``, weight ``lam = alpha**2/sigma**2``
(docs/math/linear.md: ``Sigma_P = (1/P) sum lam phi phi^T + rho I``), which splits into one 2x2 system per
bin. The number of triples per bin is random (multinomial); nothing is conditioned on it.

With an affine denoiser the PF-ODE is affine, so each model's sampler map is exactly
``x_eps = G x_T + H`` (:func:`affine_flow`): on bin ``[lo, hi]``
``x_lo = g x_hi + a eta(c)`` with ``g = (sigma_lo/sigma_hi) exp(c J)``,
``eta(c) = int_lo^hi B(t) (sigma_lo/sigma_t) exp(c J(t)) dt``, ``B = pf_mean_coeff``,
``J(t) = int_lo^t B`` (:class:`BinMapQuadrature` holds the nodes; the integrals are
composite Gauss-Legendre, accurate to ~1e-13). With ``x_T ~ N(0, sigma_T**2)`` a model's output is
``N(H, G**2 sigma_T**2)``, so the ensemble's ``[q]`` has mean ``E H`` and variance
``sigma_T**2 E[G**2] + Var H`` (:func:`affine_ensemble_moments`): a Monte Carlo over models with
no sampler error.

:func:`binned_affine_theory` is the numeric twin of :func:`gtv.theory.closed_forms.binned_affine_theory`
(population moments by Gauss-Legendre instead of closed forms, derivatives of the flow by
forward-mode second-order jets instead of sympy), plus the white-noise (Markov) approximation of
the same noise (:meth:`BinnedAffineTheory.white_noise_moments`) and a Gaussian-field ensemble
(:meth:`BinnedAffineTheory.gaussian_field_moments`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numba
import numpy as np
from scipy import stats
from scipy.integrate import solve_ivp

from gtv.numerics.checks import check_count, check_ridge, check_samples_per_model
from gtv.numerics.closed_forms import check_gaussian_data
from gtv.numerics.io import load_result, save_result
from gtv.numerics.linear.model import model_rngs
from gtv.numerics.schedules import NumericSchedule, resolve_schedule

__all__ = [
    "BinMapQuadrature",
    "BinnedAffineEnsemble",
    "BinnedAffineTheory",
    "affine_ensemble_moments",
    "affine_ensemble_moments_ci",
    "affine_flow",
    "affine_flow_reference",
    "bin_map_quadrature",
    "binned_affine_theory",
    "binned_normal_equations",
    "binned_normal_equations_reference",
    "check_bin_edges",
    "draw_gaussian_dsm_triples",
    "train_binned_affine_ensemble",
]


# -- input checks -------------------------------------------------------------------------------
def check_bin_edges(bin_edges: object, schedule: NumericSchedule) -> np.ndarray:
    """Bin edges that partition ``[eps, T]``: ``0 < eps = edges[0] < ... < edges[-1] = T``.

    ``T`` is the schedule's end time (a last edge within ``1e-12 T`` of it is snapped to it).

    Raises
    ------
    ValueError
        Naming ``bin_edges``: fewer than 2 edges, not finite, not strictly increasing, a first edge
        outside ``(0, T)`` or a last edge other than ``T``.
    """
    try:
        e = np.array(bin_edges, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise ValueError(f"bin_edges must be a sequence of numbers, got {bin_edges!r}") from None
    T = schedule.T
    if e.size < 2 or not np.all(np.isfinite(e)):
        raise ValueError(f"bin_edges must hold at least 2 finite numbers, got {bin_edges!r}")
    if not np.all(np.diff(e) > 0):
        raise ValueError(f"bin_edges must be strictly increasing, got {e.tolist()}")
    if not (0.0 < e[0] < T):
        raise ValueError(
            f"bin_edges must partition [eps, T] with 0 < eps < T = {T:g}; first edge {e[0]!r}"
        )
    if abs(e[-1] - T) > 1e-12 * T:
        raise ValueError(
            f"bin_edges must partition [eps, T]: the last edge must be T = {T:g} (the schedule's "
            f"end time, where the sampler starts), got {e[-1]!r}"
        )
    e[-1] = T
    return e


def _gaussian_1d(mean: object, s2: object) -> tuple[float, float]:
    m, S = check_gaussian_data(mean, s2)
    if m.size != 1:
        raise ValueError("mean must be a scalar: the binned affine model is 1-D")
    return float(m[0]), float(S[0, 0])


# -- training -----------------------------------------------------------------------------------
def draw_gaussian_dsm_triples(
    rng: np.random.Generator, mean: float, s2: float, n: int, eps: float, schedule: NumericSchedule
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P DSM triples for data ``N(mean, s2)``: times, clean points, noisy points (each (n,)).

    Draw order (part of the reproducibility contract): times ``U[eps, T]``, then ``x0``, then the
    noise.
    """
    t = rng.uniform(eps, schedule.T, n)
    x0 = mean + math.sqrt(s2) * rng.standard_normal(n)
    xi = rng.standard_normal(n)
    return t, x0, schedule.alpha(t) * x0 + np.sqrt(schedule.sigma2(t)) * xi


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
    seed : int
    """

    theta: np.ndarray
    counts: np.ndarray
    bin_edges: np.ndarray
    mean: float
    s2: float
    schedule: NumericSchedule
    n_samples: int
    ridge: float
    seed: int

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
            "seed": self.seed,
        }

    def save(self, path: str | Path) -> Path:
        """Write ``theta`` and ``counts`` with the configuration (npz + JSON, no pickle)."""
        return save_result(path, {"theta": self.theta, "counts": self.counts}, self.config())

    @classmethod
    def load(cls, path: str | Path) -> BinnedAffineEnsemble:
        """Read a file written by :meth:`save` (named schedules only)."""
        from gtv.numerics.schedules import get_schedule

        arrays, cfg = load_result(path)
        return cls(
            theta=arrays["theta"],
            counts=arrays["counts"],
            bin_edges=np.asarray(cfg["bin_edges"], dtype=float),
            mean=cfg["mean"],
            s2=cfg["s2"],
            schedule=get_schedule(cfg["schedule"], cfg["T"]),
            n_samples=cfg["n_samples"],
            ridge=cfg["ridge"],
            seed=cfg["seed"],
        )


def train_binned_affine_ensemble(
    mean: float,
    s2: float,
    bin_edges: object,
    n_models: int,
    n_samples: int,
    schedule: object = "vp-linear",
    ridge: float = 0.1,
    seed: int = 0,
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
    seed : int
        Model ``n`` draws from ``SeedSequence(seed).spawn(N)[n]``.
    backend : {"numba", "numpy"}
    """
    sched = resolve_schedule(schedule)
    m, s2 = _gaussian_1d(mean, s2)
    edges = check_bin_edges(bin_edges, sched)
    n_models = check_count(n_models, "n_models (N)")
    n_samples = check_count(n_samples, "n_samples (P)")
    ridge = check_ridge(ridge)
    if backend not in ("numba", "numpy"):
        raise ValueError(f"backend must be 'numba' or 'numpy', got {backend!r}")
    eps = float(edges[0])
    rngs = model_rngs(seed, n_models)
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
        S, A, cnt = solve(t, x0, x, sched.dsm_weight(t), edges)
        theta[c0:c1] = _solve_bins(S, A, ridge)
        counts[c0:c1] = cnt
    return BinnedAffineEnsemble(theta, counts, edges, m, s2, sched, n_samples, ridge, int(seed))


# -- exact flow maps ----------------------------------------------------------------------------
@dataclass(frozen=True)
class BinMapQuadrature:
    """Quadrature for the bin maps ``g_b(c) = ratio_b exp(c J_b)``,
    ``eta_b(c) = sum_q omega[b, q] exp(c J_nodes[b, q])``.

    Attributes
    ----------
    bin_edges : ndarray, shape (K + 1,)
    sigma_ratio : ndarray, shape (K,)
        ``sigma_lo / sigma_hi``.
    J_bin : ndarray, shape (K,)
        ``int_lo^hi B dt``.
    J_nodes, omega : ndarray, shape (K, Q)
        ``J(t_q) = int_lo^{t_q} B`` at the nodes, and ``w_q B(t_q) sigma_lo/sigma(t_q)``.
    sigma_T2 : float
        ``sigma_T**2`` (variance of the sampler's start).
    """

    bin_edges: np.ndarray
    sigma_ratio: np.ndarray
    J_bin: np.ndarray
    J_nodes: np.ndarray
    omega: np.ndarray
    sigma_T2: float

    @property
    def n_bins(self) -> int:
        return self.sigma_ratio.size

    def maps(self, c: object, order: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``d^order/dc^order`` of ``g`` and ``eta`` for coefficients ``c`` of shape (..., K)."""
        c = np.asarray(c, dtype=float)
        e = np.exp(c[..., None] * self.J_nodes)
        g = self.sigma_ratio * np.exp(c * self.J_bin) * self.J_bin**order
        eta = np.sum(self.omega * self.J_nodes**order * e, axis=-1)
        return g, eta


def _panel_rule(lo: float, hi: float, n_nodes: int, n_panels: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre on ``n_panels`` geometrically spaced panels of ``[lo, hi]``."""
    br = lo * (hi / lo) ** (np.arange(n_panels + 1) / n_panels)
    br[0], br[-1] = lo, hi
    gx, gw = np.polynomial.legendre.leggauss(n_nodes)
    a, b = br[:-1, None], br[1:, None]
    return ((b - a) / 2 * gx + (a + b) / 2).ravel(), ((b - a) / 2 * gw).ravel()


def bin_map_quadrature(
    schedule: object, bin_edges: object, n_nodes: int = 16, n_panels: int = 12
) -> BinMapQuadrature:
    """Nodes and weights of :class:`BinMapQuadrature` (Gauss-Legendre, ``n_nodes`` per panel,
    ``n_panels`` geometric panels per bin; ``J`` at each node by its own panel rule)."""
    sched = resolve_schedule(schedule)
    edges = check_bin_edges(bin_edges, sched)
    K = edges.size - 1
    B = sched.pf_mean_coeff
    ratio, Jb, Jn, om = np.empty(K), np.empty(K), [], []
    for k in range(K):
        lo, hi = float(edges[k]), float(edges[k + 1])
        s_lo = math.sqrt(float(sched.sigma2(lo)))
        ratio[k] = s_lo / math.sqrt(float(sched.sigma2(hi)))
        nodes, w = _panel_rule(lo, hi, n_nodes, n_panels)
        Jb[k] = float(np.dot(w, B(nodes)))
        J = np.empty(nodes.size)
        for q, tq in enumerate(nodes):
            sub_n, sub_w = _panel_rule(lo, float(tq), n_nodes, n_panels)
            J[q] = np.dot(sub_w, B(sub_n))
        Jn.append(J)
        om.append(w * B(nodes) * s_lo / np.sqrt(sched.sigma2(nodes)))
    return BinMapQuadrature(
        edges, ratio, Jb, np.array(Jn), np.array(om), float(sched.sigma2(sched.T))
    )


@numba.njit(parallel=True, cache=True, error_model="numpy")
def _affine_flow_numba(theta, ratio, J_bin, J_nodes, omega):
    n_models, n_bins, _ = theta.shape
    G = np.empty(n_models)
    H = np.empty(n_models)
    for n in numba.prange(n_models):
        g_tot, h_tot = 1.0, 0.0
        for k in range(n_bins - 1, -1, -1):
            a, c = theta[n, k, 0], theta[n, k, 1]
            g = ratio[k] * np.exp(c * J_bin[k])
            eta = 0.0
            for q in range(J_nodes.shape[1]):
                eta += omega[k, q] * np.exp(c * J_nodes[k, q])
            g_tot, h_tot = g * g_tot, g * h_tot + a * eta
        G[n] = g_tot
        H[n] = h_tot
    return G, H


def affine_flow(theta: np.ndarray, quad: BinMapQuadrature) -> tuple[np.ndarray, np.ndarray]:
    """Each model's exact sampler map ``x_eps = G x_T + H`` (numba, parallel over models).

    Parameters
    ----------
    theta : ndarray, shape (N, K, 2)
    quad : BinMapQuadrature

    Returns
    -------
    G, H : ndarray, shape (N,)
    """
    theta = np.ascontiguousarray(theta, dtype=np.float64)
    if theta.ndim != 3 or theta.shape[1:] != (quad.n_bins, 2):
        raise ValueError(f"theta must have shape (N, {quad.n_bins}, 2), got {theta.shape}")
    return _affine_flow_numba(theta, quad.sigma_ratio, quad.J_bin, quad.J_nodes, quad.omega)


def affine_flow_reference(theta: np.ndarray, quad: BinMapQuadrature):
    """Plain-numpy version of :func:`affine_flow`."""
    g, eta = quad.maps(theta[..., 1])
    G = np.ones(theta.shape[0])
    H = np.zeros(theta.shape[0])
    for k in reversed(range(quad.n_bins)):
        G, H = g[:, k] * G, g[:, k] * H + theta[:, k, 0] * eta[:, k]
    return G, H


def affine_ensemble_moments(G: np.ndarray, H: np.ndarray, sigma_T2: float) -> tuple[float, float]:
    """Mean and variance of ``[q]`` = the mixture of ``N(H_n, G_n**2 sigma_T2)`` over models."""
    mean = float(np.mean(H))
    return mean, float(sigma_T2 * np.mean(G * G) + np.mean((H - mean) ** 2))


def affine_ensemble_moments_ci(
    G: np.ndarray,
    H: np.ndarray,
    sigma_T2: float,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, tuple[float, float, float]]:
    """Model-level bootstrap CIs of ``[q]``'s mean and variance: ``{"mean": (est, lo, hi),
    "var": (est, lo, hi)}``.

    Models are resampled in pairs ``(G_n, H_n)`` (the model is the unit); percentile intervals
    (BCa's jackknife costs ``N**2`` here, and with thousands of models the statistic is close to
    normal).
    """
    G, H = np.asarray(G, dtype=float), np.asarray(H, dtype=float)
    out = {}
    for i, name in enumerate(("mean", "var")):

        def stat(g, h, axis=-1, _i=i):
            mu = np.mean(h, axis=axis)
            if _i == 0:
                return mu
            return sigma_T2 * np.mean(g * g, axis=axis) + np.mean(
                (h - np.expand_dims(mu, axis)) ** 2, axis=axis
            )

        res = stats.bootstrap(
            (G, H),
            stat,
            paired=True,
            vectorized=True,
            confidence_level=confidence,
            n_resamples=n_resamples,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
        est = affine_ensemble_moments(G, H, sigma_T2)[i]
        out[name] = (est, float(res.confidence_interval.low), float(res.confidence_interval.high))
    return out


# -- theory -------------------------------------------------------------------------------------
def _jet_mul(u: tuple, v: tuple) -> tuple:
    """Product of two second-order jets ``(value, gradient, Hessian)``."""
    return (
        u[0] * v[0],
        u[0] * v[1] + v[0] * u[1],
        u[0] * v[2] + v[0] * u[2] + np.outer(u[1], v[1]) + np.outer(v[1], u[1]),
    )


@dataclass
class BinnedAffineTheory:
    """First-order-in-``1/P`` theory of the binned affine model, by quadrature.

    The same construction as :func:`gtv.theory.closed_forms.binned_affine_theory` (see there);
    ``theta`` is ordered ``(a_0, c_0, a_1, c_1, ...)``, bins by increasing time.

    Attributes
    ----------
    S, A : ndarray, shape (K, 2, 2), (K, 2)
        Population ``E[lam 1_b phi phi^T]`` and ``E[lam 1_b x0 phi]``.
    theta_inf : ndarray, shape (2K,)
    unit_cov, unit_cov_proxy : ndarray, shape (2K, 2K)
        ``P Cov(theta)`` and its proxy-noise part (``Var(x0|x,t)`` in place of ``E[r**2|x,t]``).
    unit_bias : ndarray, shape (2K,)
        ``P (E theta - theta_inf)``.
    quad : BinMapQuadrature
    """

    bin_edges: np.ndarray
    mean: float
    s2: float
    schedule: NumericSchedule
    ridge: float
    S: np.ndarray
    A: np.ndarray
    theta_inf: np.ndarray
    unit_cov: np.ndarray
    unit_cov_proxy: np.ndarray
    unit_bias: np.ndarray
    quad: BinMapQuadrature
    _jets: dict = field(default_factory=dict, repr=False)

    @property
    def n_bins(self) -> int:
        return self.S.shape[0]

    def expected_counts(self, P: float) -> np.ndarray:
        """Expected DSM triples per bin, ``P (tau_{b+1} - tau_b)/(T - eps)``: shape (K,)."""
        w = np.diff(self.bin_edges)
        return check_samples_per_model(P) * w / w.sum()

    def cov_theta(self, P: float, finite_sample: bool = False) -> np.ndarray:
        """First-order ``Cov(theta)`` at ``P`` triples per model.

        ``finite_sample=True`` multiplies each bin's diagonal block by ``n/(n - 3)``,
        ``n`` = :meth:`expected_counts`: the exact finite-sample (inverse-Wishart) factor of the
        slope variance for OLS on ``n`` Gaussian design points with an intercept
        (:func:`gtv.theory.closed_forms.gaussian_design_inverse_moment`). Here it is only a
        refinement: the weights ``lam`` and the residual variance change within a bin and the
        counts are random, so it is not exact (measured effect: notebooks/03).
        """
        cov = self.unit_cov / check_samples_per_model(P)
        if finite_sample:
            n = self.expected_counts(P)
            if np.any(n <= 3):
                raise ValueError(
                    f"P: finite_sample needs more than 3 expected triples per bin, got {n.min():g}"
                )
            f = np.sqrt(np.repeat(n / (n - 3), 2))
            blocks = np.kron(np.eye(self.n_bins), np.ones((2, 2))) > 0
            cov = np.where(blocks, cov * np.outer(f, f), cov)
        return cov

    def bias(self, P: float) -> np.ndarray:
        """``E[theta] - theta_inf`` to ``O(1/P)``."""
        return self.unit_bias / check_samples_per_model(P)

    def mean_theta(self, P: float) -> np.ndarray:
        """``E[theta]`` to ``O(1/P)``, shape (K, 2)."""
        return (self.theta_inf + self.bias(P)).reshape(self.n_bins, 2)

    def flow_jets(self) -> tuple[tuple, tuple]:
        """Second-order jets ``(value, gradient, Hessian)`` of ``H`` and ``G**2`` at theta_inf."""
        if not self._jets:
            K, n = self.n_bins, 2 * self.n_bins
            th = self.theta_inf.reshape(K, 2)
            gj = [self.quad.maps(th[:, 1], order) for order in range(3)]
            G = (1.0, np.zeros(n), np.zeros((n, n)))
            H = (0.0, np.zeros(n), np.zeros((n, n)))
            for k in reversed(range(K)):
                ia, ic = 2 * k, 2 * k + 1
                g = (gj[0][0][k], np.zeros(n), np.zeros((n, n)))
                g[1][ic], g[2][ic, ic] = gj[1][0][k], gj[2][0][k]
                a = th[k, 0]
                eta, d1, d2 = gj[0][1][k], gj[1][1][k], gj[2][1][k]
                h = (a * eta, np.zeros(n), np.zeros((n, n)))
                h[1][ia], h[1][ic] = eta, a * d1
                h[2][ia, ic] = h[2][ic, ia] = d1
                h[2][ic, ic] = a * d2
                G = _jet_mul(g, G)
                gH = _jet_mul(g, H)
                H = (gH[0] + h[0], gH[1] + h[1], gH[2] + h[2])
            self._jets = {"H": H, "G2": _jet_mul(G, G)}
        return self._jets["H"], self._jets["G2"]

    def moments(
        self, P: float | None, include_bias: bool = True, finite_sample: bool = False
    ) -> tuple[float, float]:
        """``[q]``'s mean and variance: ``E H`` and ``sigma_T**2 E[G**2] + Var H`` by the delta
        method (``O(1/P)``; ``P=None`` gives the population model). ``include_bias=False`` drops
        the ``O(1/P)`` mean shift of ``theta`` (what ``theta ~ N(theta_inf, Cov)`` gives);
        ``finite_sample`` as :meth:`cov_theta`."""
        H, G2 = self.flow_jets()
        sT2 = self.quad.sigma_T2
        if P is None:
            return float(H[0]), float(sT2 * G2[0])
        cov = self.cov_theta(P, finite_sample)
        b = self.bias(P) if include_bias else np.zeros_like(self.unit_bias)

        def expect(j):
            return j[0] + j[1] @ b + 0.5 * np.sum(j[2] * cov)

        return float(expect(H)), float(sT2 * expect(G2) + H[1] @ cov @ H[1])

    def gaussian_field_moments(
        self, P: float, n_draws: int = 200_000, seed: int = 0, include_bias: bool = True
    ) -> tuple[float, float, float, float]:
        """Gaussian-field ensemble: ``theta ~ N(E theta, Cov theta)`` through :func:`affine_flow`.

        Exact in the Gaussian (second-cumulant) approximation, coloured noise included. Returns
        ``(mean, var, se_mean, se_var)`` (standard errors from the draws' own spread).
        """
        n_draws = check_count(n_draws, "n_draws")
        cov = self.cov_theta(P)
        mu = self.theta_inf + (self.bias(P) if include_bias else 0.0)
        vals, vecs = np.linalg.eigh(cov)
        root = vecs * np.sqrt(np.clip(vals, 0.0, None))
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), 4]))
        z = rng.standard_normal((n_draws, mu.size))
        theta = (mu + z @ root.T).reshape(n_draws, self.n_bins, 2)
        G, H = affine_flow(theta, self.quad)
        mean, var = affine_ensemble_moments(G, H, self.quad.sigma_T2)
        per = self.quad.sigma_T2 * G * G + (H - mean) ** 2
        return mean, var, float(H.std() / math.sqrt(n_draws)), float(per.std() / math.sqrt(n_draws))

    def markov_intensity_coefficients(self, P: float) -> np.ndarray:
        """White-noise intensity ``Q(x, t) = B(t) (q0 + q1 x + q2 x**2)`` per bin: shape (K, 3).

        ``Q(x, t) = int_eps^T V(x, t; x, t') dt'`` (docs/math/predictions.md) with
        ``V = B(t) B(t') phi(x)^T Cov(theta_b, theta_b') phi(x)`` (``B = D alpha/sigma**2``) and
        ``int_{b'} B = J_b'``.
        """
        K = self.n_bins
        C = self.cov_theta(P).reshape(K, 2, K, 2)
        Ct = np.einsum("bicj,c->bij", C, self.quad.J_bin)
        return np.stack([Ct[:, 0, 0], Ct[:, 0, 1] + Ct[:, 1, 0], Ct[:, 1, 1]], axis=1)

    def white_noise_moments(self, P: float, rtol: float = 1e-11) -> tuple[float, float]:
        """Mean and variance under the white-noise (Markov) approximation (docs/math/predictions.md).

        Effective SDE ``dx = (A x - B (a_bar + c_bar x)) dt + sqrt(Q) dW`` (reverse time), with
        ``(a_bar, c_bar) = E theta`` and ``Q`` from :meth:`markov_intensity_coefficients`. Drift
        affine and ``Q`` quadratic in ``x``, so the first two moments obey closed linear ODEs
        (integrated bin by bin with ``solve_ivp``, DOP853): ``dmu/dt = k mu - B a_bar``,
        ``dM2/dt = 2 k M2 - 2 B a_bar mu - B (q0 + q1 mu + q2 M2)``, ``k = A - B c_bar``.
        """
        sched = self.schedule
        th = self.mean_theta(P)
        q = self.markov_intensity_coefficients(P)
        y = np.array([0.0, self.quad.sigma_T2])
        for k in reversed(range(self.n_bins)):
            a_bar, c_bar = th[k]
            q0, q1, q2 = q[k]

            def rhs(tt, yy, a_bar=a_bar, c_bar=c_bar, q0=q0, q1=q1, q2=q2):
                A, B = float(sched.pf_x_coeff(tt)), float(sched.pf_mean_coeff(tt))
                kk = A - B * c_bar
                mu, M2 = yy
                return [
                    kk * mu - B * a_bar,
                    2 * kk * M2 - 2 * B * a_bar * mu - B * (q0 + q1 * mu + q2 * M2),
                ]

            sol = solve_ivp(
                rhs,
                (self.bin_edges[k + 1], self.bin_edges[k]),
                y,
                method="DOP853",
                rtol=rtol,
                atol=1e-14,
            )
            if not sol.success:  # pragma: no cover
                raise RuntimeError(f"moment ODE failed in bin {k}: {sol.message}")
            y = sol.y[:, -1]
        return float(y[0]), float(y[1] - y[0] ** 2)

    def exact_moments(self, start: str = "sampler") -> tuple[float, float]:
        """``p(x|eps)`` (``start="exact"``) or the exact-score PF-ODE from ``N(0, sigma_T**2)``."""
        sched, eps, T = self.schedule, float(self.bin_edges[0]), self.schedule.T
        v_e = float(sched.alpha(eps)) ** 2 * self.s2 + float(sched.sigma2(eps))
        if start == "exact":
            return float(sched.alpha(eps)) * self.mean, v_e
        v_T = float(sched.alpha(T)) ** 2 * self.s2 + float(sched.sigma2(T))
        a_T = float(sched.alpha(T))
        return (
            float(sched.alpha(eps)) * self.mean - math.sqrt(v_e / v_T) * a_T * self.mean,
            v_e / v_T * float(sched.sigma2(T)),
        )


def binned_affine_theory(
    mean: float,
    s2: float,
    bin_edges: object,
    schedule: object = "vp-linear",
    ridge: float = 0.1,
    n_nodes: int = 16,
    n_panels: int = 12,
) -> BinnedAffineTheory:
    """Population solution, first-order ``Cov(theta)``, ``O(1/P)`` mean shift and flow quadrature.

    Per bin, with ``t`` on ``n_panels`` geometric Gauss-Legendre panels (``n_nodes`` each) and
    exact Gaussian moments in ``(x0, x)`` at each ``t`` (Isserlis / Stein, as in
    :func:`gtv.theory.closed_forms.binned_bin_moments`):
    ``S = E[lam 1_b phi phi^T]``, ``A = E[lam 1_b x0 phi]``, ``theta_inf = (S + rho)^{-1} A``,
    ``Egg = E[lam**2 1_b r**2 phi phi^T]`` (``r = x0 - a - c x``), ``Cov g = blockdiag(Egg) -
    vec(Eg) vec(Eg)^T`` with ``E g = rho theta_inf``; ``P Cov theta = Sigma_r^{-1} Cov g
    Sigma_r^{-1}``; ``P (E theta - theta_inf) = -Sigma_r^{-1} (E[lam**2 r (phi^T Sigma_r^{-1} phi)
    phi] - S Sigma_r^{-1} E g)``.
    """
    sched = resolve_schedule(schedule)
    m, s2 = _gaussian_1d(mean, s2)
    edges = check_bin_edges(bin_edges, sched)
    ridge = check_ridge(ridge)
    K = edges.size - 1
    L = edges[-1] - edges[0]
    S = np.empty((K, 2, 2))
    A = np.empty((K, 2))
    theta = np.empty((K, 2))
    Sr_inv = np.empty((K, 2, 2))
    Egg = np.empty((K, 2, 2))
    proxy = np.empty((K, 2, 2))
    unit_bias = np.empty(2 * K)
    for k in range(K):
        tn, tw = _panel_rule(float(edges[k]), float(edges[k + 1]), n_nodes, n_panels)
        tw = tw / L
        al = sched.alpha(tn)
        sg2 = sched.sigma2(tn)
        lam = sched.dsm_weight(tn)
        v = al * al * s2 + sg2
        mx = al * m
        Ex = [np.ones_like(tn), mx, mx**2 + v, mx**3 + 3 * mx * v, mx**4 + 6 * mx**2 * v + 3 * v**2]
        S[k] = [[tw @ (lam * Ex[0]), tw @ (lam * Ex[1])], [tw @ (lam * Ex[1]), tw @ (lam * Ex[2])]]
        A[k] = [tw @ (lam * m), tw @ (lam * al * (m * m + s2))]
        Sr_inv[k] = np.linalg.inv(S[k] + ridge * np.eye(2))
        theta[k] = Sr_inv[k] @ A[k]
        a, c = theta[k]
        mr = m - a - c * mx  # E r
        Kc = al * s2 - c * v  # Cov(r, x)
        Er2 = s2 - 2 * c * al * s2 + c * c * v + mr * mr
        Er2x = [Er2, mx * Er2 + 2 * mr * Kc, Er2 * (v + mx**2) + 2 * Kc**2 + 4 * mr * mx * Kc]
        Erx = [mr] + [mr * Ex[j] + j * Kc * Ex[j - 1] for j in range(1, 4)]
        w2 = tw * lam * lam
        post = s2 * sg2 / v
        for i in range(2):
            for j in range(2):
                Egg[k, i, j] = w2 @ Er2x[i + j]
                proxy[k, i, j] = w2 @ (post * Ex[i + j])
        M = Sr_inv[k]
        qc = (M[0, 0], 2 * M[0, 1], M[1, 1])
        Eb = np.array([w2 @ sum(qc[i] * Erx[j + i] for i in range(3)) for j in range(2)])
        unit_bias[2 * k : 2 * k + 2] = -M @ (Eb - S[k] @ M @ (ridge * theta[k]))
    n = 2 * K
    cov_g = np.zeros((n, n))
    proxy_g = np.zeros((n, n))
    for k in range(K):
        cov_g[2 * k : 2 * k + 2, 2 * k : 2 * k + 2] = Egg[k]
        proxy_g[2 * k : 2 * k + 2, 2 * k : 2 * k + 2] = proxy[k]
    eg = ridge * theta.ravel()
    cov_g -= np.outer(eg, eg)
    Mfull = np.zeros((n, n))
    for k in range(K):
        Mfull[2 * k : 2 * k + 2, 2 * k : 2 * k + 2] = Sr_inv[k]
    unit_cov = Mfull @ cov_g @ Mfull
    unit_cov_proxy = Mfull @ proxy_g @ Mfull
    return BinnedAffineTheory(
        bin_edges=edges,
        mean=m,
        s2=s2,
        schedule=sched,
        ridge=ridge,
        S=S,
        A=A,
        theta_inf=theta.ravel(),
        unit_cov=(unit_cov + unit_cov.T) / 2,
        unit_cov_proxy=(unit_cov_proxy + unit_cov_proxy.T) / 2,
        unit_bias=unit_bias,
        quad=bin_map_quadrature(sched, edges, n_nodes, n_panels),
    )
