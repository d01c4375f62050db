"""The paper's Figure-2 notebook, written out: the algorithm ``bench_figure2.py`` times against gtv.

Source: J. Vastola, ``gtv-iclr25`` (commit e22a3fdfaa034cc54a6d8390d3dfb1e77ede8631), notebook
``fig2-1d-generalize.ipynb`` (cell 8: settings; cell 10: the model loop, the one its
``Elapsed time`` covers; cell 12: the exact-denoiser reference loop) with the functions it calls
from ``functions/general_functions.py`` (``get_time_funcs``, ``get_basic_distributions_1d``) and
``functions/linear_functions_1d.py`` (``phi_gauss``, ``get_phi_crossed_func_1d``,
``get_phi_crossed_grid_1d``, ``train_phi_denoise``, ``sample_PF_ODE_1d``,
``sample_PF_ODE_1d_batched``). This is a transcription of their data flow, operation for
operation, not a copy of their code.

The one change: every random draw comes from a local ``numpy.random.default_rng(seed)`` Generator
(in the notebook's order: components, times, noise, then the start points; the reference loop
continues the same Generator) instead of the global ``np.random`` state. The numbers therefore
differ draw by draw from the notebook's, the algorithm and its cost do not.

Kept although they look redundant, because the notebook runs (and times) them:

* ``train_phi_denoise`` forms the Gram matrix twice, by a batched matmul and then by ``einsum``,
  and keeps the second;
* the reference loop runs once per ``(eps, P)`` although it does not depend on ``P``, with
  ``10 x num_samples`` samples, and its unbatched sampler records every step's indices;
* the denoiser lookup is ``np.searchsorted(x, x_t)`` clipped to the last index: the first grid
  point at or to the right of the sample, not the nearest one.

Left out: the ``print`` calls; storing every model's final samples (``x_list``, 1.2 GB at the
paper's size; pure storage, no arithmetic); the quantities of ``get_basic_distributions_1d`` the
notebook never reads (``p_norm_t``, ``var_bayes``, ``var_proxy``, ``score_true``: a few
microseconds on 200 x 31 x 3 arrays).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

__all__ = ["PAPER_DATA", "PaperFigure2", "run_paper_figure2"]

PAPER_DATA = np.array([-1.0, 0.0, 1.0])
# Cell 8 of the notebook and the VP branch of get_time_funcs.
BETA_MIN, BETA_D, T_MAX, N_STEPS = 0.1, 19.9, 1.0, 30
F_X, F_T = 16, 16
X_MIN, X_MAX, N_X = -1.5, 1.5, 200
RIDGE = 0.1
LAMBDA_TOL = 1e-8  # the eps_tol added to sigma^2 in the DSM weight
POSTERIOR_TOL = 1e-8  # the eps_stab added to the posterior normalizer


@dataclass(frozen=True)
class _VPGrid:
    """The VP schedule on the notebook's time grid ``t = flip(linspace(eps, T, 31))``."""

    eps: float
    t: np.ndarray  # (31,), decreasing from T to eps
    beta: np.ndarray
    g2: np.ndarray
    alpha: np.ndarray
    sig2: np.ndarray

    @staticmethod
    def alpha_of(t: np.ndarray) -> np.ndarray:
        return np.exp(-(BETA_MIN * t + (BETA_D / 2.0) * t * t))

    @classmethod
    def sig2_of(cls, t: np.ndarray) -> np.ndarray:
        return 1 - cls.alpha_of(t) ** 2

    @classmethod
    def build(cls, eps: float) -> _VPGrid:
        t = np.flip(np.linspace(eps, T_MAX, N_STEPS + 1))
        beta = BETA_MIN + BETA_D * t
        alpha = np.exp(-(BETA_MIN * t + (BETA_D / 2.0) * t * t))
        return cls(eps, t, beta, 2 * beta, alpha, 1 - alpha**2)


def _gauss_features(u: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """``phi_gauss``: normal pdfs at equally spaced centres, std half their spacing, (n, F)."""
    widths = (centres[1] - centres[0]) * np.ones_like(centres) / 2.0
    return norm.pdf(u[:, None], loc=centres[None, :], scale=1.0 * widths[None, :])


@dataclass(frozen=True)
class _CrossedFeatures:
    """The 16 x 16 crossed Gaussian features of one ``eps`` (x centres on the plot range)."""

    x_centres: np.ndarray
    t_centres: np.ndarray

    @classmethod
    def build(cls, eps: float) -> _CrossedFeatures:
        return cls(np.linspace(X_MIN, X_MAX, F_X), np.linspace(eps, T_MAX, F_T))

    def at_points(self, x: np.ndarray, t: np.ndarray) -> np.ndarray:
        """``get_phi_crossed_func_1d``: features of paired (x_i, t_i), shape (n, F)."""
        phi = (
            _gauss_features(x, self.x_centres)[:, :, None]
            * _gauss_features(t, self.t_centres)[:, None, :]
        )
        return phi.reshape(phi.shape[0], F_X * F_T)

    def on_grid(self, x: np.ndarray, t: np.ndarray) -> np.ndarray:
        """``get_phi_crossed_grid_1d``: features of every (x_a, t_b), shape (n_x, n_t, F)."""
        px, pt = _gauss_features(x, self.x_centres), _gauss_features(t, self.t_centres)
        phi = px[:, None, :, None] * pt[None, :, None, :]
        return phi.reshape(x.shape[0], t.shape[0], F_X * F_T)


def _train_all_models(
    rng: np.random.Generator, features: _CrossedFeatures, vp: _VPGrid, P: int, n_models: int
) -> np.ndarray:
    """``train_phi_denoise``: the ridge solution of every model at once, weights (N, F)."""
    comp = rng.integers(low=0, high=PAPER_DATA.size, size=(n_models, P))
    x0 = PAPER_DATA[comp]
    t = rng.uniform(vp.eps, T_MAX, size=(n_models, P))
    x_noisy = vp.alpha_of(t) * x0 + np.sqrt(vp.sig2_of(t)) * rng.normal(size=(n_models, P))
    # One feature matrix for all N * P triples, then one block per model.
    phi = features.at_points(x_noisy.reshape(n_models * P), t.reshape(n_models * P))
    phi = phi.reshape(n_models, P, phi.shape[-1])
    lam = vp.alpha_of(t) ** 2 / (vp.sig2_of(t) + LAMBDA_TOL)
    # The notebook's first Gram (batched matmul) is overwritten by its einsum Gram just below.
    gram = ((phi * lam[..., None]).transpose(0, 2, 1) @ phi) / P
    rhs = ((x0 * lam)[:, None, :] @ phi) / P  # (N, 1, F)
    gram = np.einsum("bnf,bng,bn->bfg", phi, phi, lam, optimize=True) / P
    gram_inv = np.linalg.inv(gram + RIDGE * np.eye(gram.shape[-1])[None, :, :])
    weights = rhs @ gram_inv
    return weights.reshape(weights.shape[0], weights.shape[-1])


def _euler_step(
    x_t: np.ndarray, vp: _VPGrid, j: int, denoised: np.ndarray, dt: np.ndarray
) -> np.ndarray:
    """One Euler step of the VP PF-ODE as the notebook writes it (score from the denoiser)."""
    score_part = (vp.alpha[j] * denoised - x_t) / vp.sig2[j]
    return x_t - (vp.beta[j] * x_t + (vp.g2[j] / 2) * score_part) * dt[j]


def _sample_models(
    rng: np.random.Generator, n_samples: int, x: np.ndarray, vp: _VPGrid, table: np.ndarray
) -> np.ndarray:
    """``sample_PF_ODE_1d_batched``: every model's samples at once, table (N, n_x, n_t)."""
    n_models = table.shape[0]
    x_t = rng.normal(loc=0, scale=np.sqrt(vp.sig2[0]), size=(n_models, n_samples))
    dt = np.roll(vp.t, -1) - vp.t
    rows = np.arange(n_models)[:, None]
    for j in range(vp.t.size - 1):
        idx = np.clip(np.searchsorted(x, x_t), None, x.size - 1)
        x_t = _euler_step(x_t, vp, j, table[rows, idx, j], dt)
    return x_t


def _sample_one(
    rng: np.random.Generator, n_samples: int, x: np.ndarray, vp: _VPGrid, table: np.ndarray
) -> np.ndarray:
    """``sample_PF_ODE_1d``: one denoiser table (n_x, n_t); records the indices, as it does."""
    x_t = rng.normal(loc=0, scale=np.sqrt(vp.sig2[0]), size=n_samples)
    dt = np.roll(vp.t, -1) - vp.t
    n_steps = vp.t.size - 1
    indices = np.zeros((n_steps, n_samples), dtype=int)
    for j in range(n_steps):
        idx = np.clip(np.searchsorted(x, x_t), None, x.size - 1)
        indices[j] = idx
        x_t = _euler_step(x_t, vp, j, table[idx, j], dt)
    return x_t


def _bayes_denoiser_table(x: np.ndarray, vp: _VPGrid) -> np.ndarray:
    """``mu_bayes`` of ``get_basic_distributions_1d``: posterior mean on the grid, (n_x, n_t)."""
    std = np.sqrt(vp.sig2)
    lik = norm.pdf(
        x[:, None, None],
        loc=PAPER_DATA[None, None, :] * vp.alpha[None, :, None],
        scale=std[None, :, None],
    )
    post = lik / (np.sum(lik, axis=-1)[:, :, None] + POSTERIOR_TOL)
    return np.sum(PAPER_DATA[None, None, :] * post, axis=-1)


@dataclass
class PaperFigure2:
    """What the notebook computes for its figure, per panel ``[i, j]`` = (eps_i, P_j).

    ``densities`` (n_eps, n_P, N, 200) are the per-model ``np.histogram(density=True)`` on
    ``bins`` (200 bins centred on the grid ``x``); ``mean``, ``std``, ``lower``, ``upper`` their
    across-model mean, std and 25 / 75 % quantiles; ``exact`` is ``p(x|eps)`` on ``x`` and
    ``bayes`` the PF-ODE histogram with the Bayes denoiser. ``model_seconds`` is the wall time of
    the model loop (what the notebook's ``Elapsed time`` measures), ``reference_seconds`` that of
    the reference loop.
    """

    eps_values: tuple[float, ...]
    P_values: tuple[int, ...]
    x: np.ndarray
    bins: np.ndarray
    densities: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    exact: np.ndarray
    bayes: np.ndarray
    model_seconds: float
    reference_seconds: float


def _check(
    eps_values: tuple[float, ...], P_values: tuple[int, ...], n_models: int, n_samples: int
) -> None:
    """``ValueError`` naming the argument unless the settings are usable."""
    for eps in eps_values:
        if not 0 < eps < T_MAX:
            raise ValueError(f"eps_values must lie in (0, {T_MAX}), got {eps!r}")
    for name, values in (("P_values", P_values), ("n_models", [n_models])):
        if any(int(v) != v or v < 1 for v in values):
            raise ValueError(f"{name} must be positive integers, got {values!r}")
    if int(n_samples) != n_samples or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")


def run_paper_figure2(
    n_models: int = 100,
    n_samples: int = 100_000,
    eps_values: tuple[float, ...] = (1e-4, 1e-3, 1e-2),
    P_values: tuple[int, ...] = (64, 128, 256, 512, 1024),
    seed: int = 0,
    reference: bool = True,
    progress: Callable[[str], None] | None = None,
) -> PaperFigure2:
    """Run the notebook's two loops (defaults: its settings) and time each.

    Parameters
    ----------
    n_models, n_samples : int
        ``num_models`` and ``num_samples`` of the notebook (100 and 10^5); the reference loop
        draws ``10 * n_samples`` samples per panel.
    eps_values, P_values : tuple
        The panels' rows and columns.
    seed : int
        Seed of the one ``numpy.random.default_rng`` Generator used for all draws.
    reference : bool, default True
        Also run the reference loop (otherwise ``exact``, ``bayes`` are NaN, its time 0).
    progress : callable, optional
        Called with a short message after each panel (the notebook prints ``r, c``).
    """
    _check(eps_values, P_values, n_models, n_samples)
    rng = np.random.default_rng(seed)
    n_eps, n_P = len(eps_values), len(P_values)
    x = np.linspace(X_MIN, X_MAX, N_X)
    dx = x[1] - x[0]
    bins = np.linspace(X_MIN - dx / 2.0, X_MAX + dx / 2.0, N_X + 1)
    densities = np.zeros((n_eps, n_P, n_models, N_X))
    mean, std, lower, upper = (np.zeros((n_eps, n_P, N_X)) for _ in range(4))
    exact = np.full((n_eps, n_P, N_X), np.nan)
    bayes = np.full((n_eps, n_P, N_X), np.nan)

    start = time.perf_counter()
    for r, eps in enumerate(eps_values):
        for c, P in enumerate(P_values):
            vp = _VPGrid.build(float(eps))
            features = _CrossedFeatures.build(float(eps))
            phi_grid = features.on_grid(x, vp.t)  # (200, 31, F)
            weights = _train_all_models(rng, features, vp, int(P), n_models)
            table = np.dot(weights, phi_grid.transpose(0, 2, 1))  # (N, 200, 31)
            x_t = _sample_models(rng, n_samples, x, vp, table)
            prob = np.zeros((n_models, N_X))
            for n in range(n_models):
                prob[n], _ = np.histogram(x_t[n], bins=bins, density=True)
            densities[r, c] = prob
            mean[r, c], std[r, c] = np.mean(prob, axis=0), np.std(prob, axis=0)
            lower[r, c] = np.quantile(prob, 0.25, axis=0)
            upper[r, c] = np.quantile(prob, 0.75, axis=0)
            if progress is not None:
                progress(f"paper models: eps={eps:g}, P={P}")
    model_seconds = time.perf_counter() - start

    start = time.perf_counter()
    for r, eps in enumerate(eps_values if reference else ()):
        for c, P in enumerate(P_values):
            vp = _VPGrid.build(float(eps))
            a_last, sig_last = vp.alpha[-1], np.sqrt(vp.sig2[-1])
            pdfs = norm.pdf(x[:, None], loc=PAPER_DATA[None, :] * a_last, scale=sig_last)
            exact[r, c] = np.mean(pdfs, axis=-1)
            mu_bayes = _bayes_denoiser_table(x, vp)
            x_ref = _sample_one(rng, 10 * n_samples, x, vp, mu_bayes)
            bayes[r, c], _ = np.histogram(x_ref, bins=bins, density=True)
            if progress is not None:
                progress(f"paper reference: eps={eps:g}, P={P}")
    reference_seconds = time.perf_counter() - start

    return PaperFigure2(
        tuple(float(e) for e in eps_values),
        tuple(int(p) for p in P_values),
        x,
        bins,
        densities,
        mean,
        std,
        lower,
        upper,
        exact,
        bayes,
        model_seconds,
        reference_seconds,
    )
