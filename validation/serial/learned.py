"""Learned denoisers in the serial-reproduction chain (docs/serial.md, "Learned denoisers").

The exact chain reproduces with the full Bayesian posterior ``D_t(s | d)``. A trained model gives
a posterior *mean* (and, if asked, a second moment). Here a learned step is a DDPM-style Gaussian
step: the previous state is drawn from a Gaussian on the torus centred at ``d + m^_t(d)``, where
``m^_t(d)`` estimates the mean minimum-image displacement ``E[wrap(x_{t-1} - x_t) | x_t = d]``,
with either the per-axis variance of the step's own noise kernel (DDPM's ``sigma_t**2 = beta_t``;
``variance="kernel"``) or a per-point posterior variance (``variance="posterior"``: the model also
regresses the squared displacement). On the grid the step is a transition matrix that is a
product of one wrapped Gaussian per axis, so applying it to a density costs ``O(n**2 M)`` (two
matrix products; no ``M x M`` matrix is formed) and each model's chain is a deterministic
density, not a histogram of particles.

Denoisers (``DENOISERS``):

* ``"exact"``: the exact Bayesian chain (:class:`gtv.numerics.serial.DiffusionChain`);
* ``"exact-mean"``: the Gaussian step with the exact posterior mean (and variance), which
  isolates the error of the Gaussian form of the step from the error of learning it;
* ``"linear"``: linear-feature models ``m^_t(d) = W_t phi(d)``, Fourier features on the torus
  (``n_space`` per axis, crossed) times the indicator of the step; closed-form ridge regression on
  DSM pairs (:func:`gtv.numerics.linear.normal_equations`);
* ``"kernel"``: lazy infinite-width two-layer networks (kernel ridge regression with the NTK of
  :func:`gtv.numerics.kernel.fit_kernel_regression`), inputs
  ``(cos 2 pi x, sin 2 pi x, cos 2 pi y, sin 2 pi y, 1)``, one model per step.

Training pairs (the DSM draws on the grid): for step ``t``, ``x_{t-1} ~ q_{t-1}`` and
``x_t ~ K_t(. | x_{t-1})``, ``pairs_per_step`` pairs per step and model; the target is the
minimum-image displacement ``wrap(x_{t-1} - x_t)``. Model ``n`` of a condition draws from the
``n``-th child of ``stream(condition_seed, "training")``; its kernel model is fitted to the first
``kernel_pairs`` pairs of the same draws (so the two learned denoisers of one model index are a
paired comparison).
"""

from __future__ import annotations

import numpy as np

from gtv.numerics.features import AxisBasis, ProductFeatures
from gtv.numerics.kernel import fit_kernel_regression
from gtv.numerics.linear import normal_equations
from gtv.numerics.serial import DiffusionChain, Grid, KernelOperator
from gtv.numerics.streams import model_rngs

__all__ = [
    "DENOISERS",
    "LEARNED",
    "VARIANCES",
    "GaussianStepChain",
    "draw_pairs",
    "exact_posterior_moments",
    "fit_kernel_means",
    "fit_linear_means",
    "kernel_variance",
    "learned_means",
    "stationary_density",
    "torus_inputs",
    "wrap",
]

#: Every denoiser of the comparison, and the learned ones (trained ensembles).
DENOISERS = ("exact", "exact-mean", "linear", "kernel")
LEARNED = ("linear", "kernel")
#: Variances of the Gaussian step: the step kernel's, or the per-point posterior variance.
VARIANCES = ("kernel", "posterior")


def wrap(d: np.ndarray, length: float = 1.0) -> np.ndarray:
    """Minimum-image displacement on a torus of period ``length``."""
    return d - length * np.round(d / length)


def kernel_variance(kernel: KernelOperator, grid: Grid) -> np.ndarray:
    """Per-axis variance of the displacement under ``kernel``, from the source nearest the origin.

    For translation-invariant kernels every source gives the same value; for fade kernels (whose
    replacement part does not depend on the source) it is that source's value.
    """
    j0 = int(np.argmin((grid.points**2).sum(axis=1)))
    col = kernel.columns([j0])[0]
    d = wrap(grid.points - grid.points[j0], grid.length)
    mean = col @ d
    return np.maximum(col @ (d * d) - mean * mean, 0.0)


def exact_posterior_moments(
    kernel: KernelOperator, grid: Grid, prior: np.ndarray, chunk: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and per-axis variance of ``wrap(x_{t-1} - x_t)`` given ``x_t = d``.

    For every grid point ``d``; each (M, dim). The posterior is ``K(d | s) prior(s) /
    (K prior)(d)``, computed from exact kernel rows.
    """
    pts = grid.points
    qf = np.asarray(prior, dtype=np.float64).ravel()
    mean = np.zeros((grid.size, grid.dim))
    var = np.zeros((grid.size, grid.dim))
    for start in range(0, grid.size, chunk):
        idx = np.arange(start, min(grid.size, start + chunk))
        w = kernel.rows(idx) * qf[None, :]
        den = w.sum(axis=1)
        w = w / np.where(den > 0, den, 1.0)[:, None]
        d = wrap(pts[None, :, :] - pts[idx, None, :], grid.length)
        m = np.einsum("cs,csk->ck", w, d)
        mean[idx] = m
        var[idx] = np.maximum(np.einsum("cs,csk->ck", w, d * d) - m * m, 0.0)
    return mean, var


def draw_pairs(
    rng: np.random.Generator, kernel: KernelOperator, prior: np.ndarray, n_pairs: int
) -> tuple[np.ndarray, np.ndarray]:
    """``n_pairs`` flat index pairs ``(src ~ prior, dst ~ K(. | src))``."""
    M = prior.size
    cols = kernel.columns(np.arange(M))
    return draw_pairs_from_columns(rng, cols, prior, n_pairs)


def draw_pairs_from_columns(
    rng: np.random.Generator, columns: np.ndarray, prior: np.ndarray, n_pairs: int
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`draw_pairs` with the kernel columns ``columns[s] = K(. | s)`` given (M, M)."""
    M = columns.shape[0]
    pr = np.clip(np.asarray(prior, dtype=np.float64).ravel(), 0.0, None)
    src = rng.choice(M, size=n_pairs, p=pr / pr.sum())
    cum = np.cumsum(np.clip(columns, 0.0, None), axis=1)
    cum /= cum[:, -1:]
    flat = (cum + np.arange(M)[:, None]).ravel()
    dst = np.searchsorted(flat, src + rng.random(n_pairs), side="right") - src * M
    return src, np.minimum(dst, M - 1)


def torus_inputs(x: np.ndarray, length: float = 1.0) -> np.ndarray:
    """Kernel-model inputs ``(cos 2 pi x_k / L, sin 2 pi x_k / L for each axis, 1)``."""
    a = 2.0 * np.pi * np.asarray(x, dtype=np.float64) / length
    cols = [f(a[:, k]) for k in range(a.shape[1]) for f in (np.cos, np.sin)]
    return np.stack([*cols, np.ones(a.shape[0])], axis=1)


def torus_features(grid: Grid, n_space: int) -> ProductFeatures:
    """Fourier features (``n_space`` per axis, period = the torus) times a constant time basis."""
    axis = AxisBasis("fourier", n_space, -0.5 * grid.length, 0.5 * grid.length)
    return ProductFeatures((axis,) * grid.dim, AxisBasis("fourier", 1, 0.0, 1.0))


def fit_linear_means(
    features: ProductFeatures,
    x: np.ndarray,
    y: np.ndarray,
    ridge: float,
    query: np.ndarray,
) -> np.ndarray:
    """Ridge fits ``m^ = W phi`` for a batch of models, evaluated at ``query``.

    ``x``: (N, P, dim) inputs; ``y``: (N, P, k) targets; returns (N, n_query, k).
    """
    N, P, _ = x.shape
    gram, rhs = normal_equations(features, np.zeros((N, P)), y, x, np.ones((N, P)))
    F = gram.shape[1]
    gram[:, np.arange(F), np.arange(F)] += ridge
    W = np.linalg.solve(gram, np.transpose(rhs, (0, 2, 1)))  # (N, F, k)
    phi = features.evaluate(query, 0.0)
    return np.einsum("qf,nfk->nqk", phi, W)


def fit_kernel_means(
    x: np.ndarray, y: np.ndarray, ridge: float, activation: str, query: np.ndarray, length: float
) -> np.ndarray:
    """Kernel ridge regression (NTK, ``tau = inf``) of one model, evaluated at ``query``."""
    model = fit_kernel_regression(
        torus_inputs(x, length), y, np.ones(x.shape[0]), activation, ridge
    )
    return model.predict(torus_inputs(query, length), np.inf)


def learned_means(
    chain: DiffusionChain,
    *,
    n_models: int,
    pairs_per_step: int,
    kernel_pairs: int,
    n_space: int,
    ridge: float,
    kernel_ridge: float,
    activation: str,
    seed: object,
    denoisers: tuple[str, ...] = LEARNED,
) -> dict[str, np.ndarray]:
    """Train the learned denoisers of every step.

    Each model regresses the displacement and its square per axis, so it estimates the posterior
    mean and second moment. Returns ``{name: (N, T, M, 2 dim)}``: the mean displacement in the
    first ``dim`` entries of the last axis, the second moment in the others. Model ``n`` draws
    its pairs of every step, in step order, from ``model_rngs(seed, "training", n_models)[n]``.
    """
    grid = chain.grid
    pts = grid.points
    T, M, D = chain.T, grid.size, grid.dim
    rngs = model_rngs(seed, "training", n_models)
    out = {name: np.empty((n_models, T, M, 2 * D)) for name in denoisers}
    feats = torus_features(grid, n_space)
    for t in range(1, T + 1):
        cols = chain.kernel(t).columns(np.arange(M))
        prior = chain.q[t - 1]
        draws = [draw_pairs_from_columns(rng, cols, prior, pairs_per_step) for rng in rngs]
        x = np.stack([pts[d] for _, d in draws])
        y = np.stack([wrap(pts[s] - pts[d], grid.length) for s, d in draws])
        y = np.concatenate([y, y * y], axis=2)
        if "linear" in out:
            out["linear"][:, t - 1] = fit_linear_means(feats, x, y, ridge, pts)
        if "kernel" in out:
            k = min(kernel_pairs, pairs_per_step)
            for n in range(n_models):
                out["kernel"][n, t - 1] = fit_kernel_means(
                    x[n, :k], y[n, :k], kernel_ridge, activation, pts, grid.length
                )
    return out


class GaussianStepChain:
    """The sampler with Gaussian posterior steps around given mean displacements.

    Step ``t`` maps a density ``p`` to ``G_t K_t p`` (with noise injection) or ``G_t p``, where
    ``G_t(s | d) = prod_k g(s_k; d_k + m_t(d)_k, v_t(d)_k)`` and ``g`` is a Gaussian on the
    grid's axis coordinates, wrapped to the torus and normalised over the axis points.

    Parameters
    ----------
    chain : DiffusionChain
        Supplies the grid and the kernels ``K_t`` (noise injection).
    means : ndarray (T, M, dim)
        The mean displacement of every step at every grid point.
    variances : ndarray (T, M, dim), optional
        Per-point variances. Default: the per-axis variance of the step's own kernel
        (:func:`kernel_variance`; DDPM's ``sigma_t**2 = beta_t``). Values below
        ``VARIANCE_FLOOR`` times the kernel's are raised to it.
    """

    #: Smallest variance of a step, relative to the kernel's variance.
    VARIANCE_FLOOR = 0.01

    def __init__(
        self, chain: DiffusionChain, means: np.ndarray, variances: np.ndarray | None = None
    ) -> None:
        self.chain = chain
        grid = chain.grid
        if grid.dim != 2:
            raise ValueError(f"the Gaussian-step chain needs a 2-D grid, got dim = {grid.dim}")
        shape = (chain.T, grid.size, grid.dim)
        means = np.asarray(means, dtype=np.float64)
        if means.shape != shape:
            raise ValueError(f"means must have shape {shape}, got {means.shape}")
        self.means = means
        kvar = np.stack([kernel_variance(chain.kernel(t), grid) for t in range(1, chain.T + 1)])
        kvar = np.maximum(kvar, (1e-6 * grid.spacing) ** 2)[:, None, :]
        if variances is None:
            self.var = np.broadcast_to(kvar, shape)
        else:
            v = np.asarray(variances, dtype=np.float64)
            if v.shape != shape:
                raise ValueError(f"variances must have shape {shape}, got {v.shape}")
            self.var = np.maximum(v, self.VARIANCE_FLOOR * kvar)
        self._factors: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def factors(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """The per-axis Gaussian factors of step ``t``: two (n, M) arrays, columns sum to 1."""
        if t not in self._factors:
            grid = self.chain.grid
            centre = grid.points + self.means[t - 1]
            out = []
            for k in range(2):
                d = wrap(grid.axis[:, None] - centre[None, :, k], grid.length)
                logg = -0.5 * d * d / self.var[t - 1, :, k][None, :]
                g = np.exp(logg - logg.max(axis=0, keepdims=True))  # a narrow step stays finite
                out.append(g / g.sum(axis=0, keepdims=True))
            self._factors[t] = (out[0], out[1])
        return self._factors[t]

    def denoise(self, t: int, p: np.ndarray) -> np.ndarray:
        """``G_t p``."""
        gx, gy = self.factors(t)
        return (gx * np.asarray(p).ravel()[None, :]) @ gy.T

    def step(self, t: int, p: np.ndarray, inject_noise: bool = True) -> np.ndarray:
        """``G_t K_t p`` or ``G_t p``."""
        if inject_noise:
            p = self.chain.kernel(t).apply(p)
        return self.denoise(t, p)

    def generate(self, start: np.ndarray, inject_noise: bool = True) -> np.ndarray:
        """Run ``t = T .. 1`` from ``start``; returns the generated density."""
        p = np.asarray(start, dtype=np.float64)
        for t in range(self.chain.T, 0, -1):
            p = self.step(t, p, inject_noise)
        return p


def stationary_density(
    step, start: np.ndarray, max_iter: int = 300, tol: float = 1e-9
) -> tuple[np.ndarray, int]:
    """Power iteration ``p <- step(p)`` until the TV change is below ``tol``.

    Returns ``(p, iterations)``.
    """
    p = np.asarray(start, dtype=np.float64)
    for k in range(1, max_iter + 1):
        nxt = step(p)
        if 0.5 * float(np.abs(nxt - p).sum()) < tol:
            return nxt, k
        p = nxt
    return p, max_iter
