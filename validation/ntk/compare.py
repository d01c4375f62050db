"""Trained finite-width two-layer networks vs the lazy infinite-width (NTK) theory (issue 6).

docs/math/kernel.md (lazy networks), §3.4 (predictions of [q]), §4 (the model is the unit).

For one configuration (1-D data ``{-1, 0, 1}``, ``vp-linear``, eps, P, an activation) and a list
of training times ``tau``, :func:`compare_ntk`

1. draws N independent DSM training sets and trains, on each, one two-layer network per width
   (NTK parameterization, antisymmetric initialization so that ``D^_0 = 0``) by full-batch
   gradient descent with one learning rate ``eta`` for all widths and models
   (:mod:`gtv.numerics.two_layer.training`), recording a checkpoint at every ``tau``. For each width
   the training sets are *the same* (each model's stream draws its triples first), so the widths
   differ only by their random features;
2. fits, on the same N training sets, the infinite-width networks: kernel regression with the
   closed-form NTK trained by the same gradient descent (:func:`gtv.numerics.kernel.regression.fit_kernel_regression`)
   — the exact ``width -> infinity`` limit of every trained model, so the difference to it is the
   finite-width error alone;
3. computes the first-order-in-1/P population theory (:func:`gtv.numerics.kernel.theory.ntk_theory`):
   the ensemble-mean denoiser, the across-model (co)variance split into its proxy-noise and misfit
   parts, the Gaussian-field ensemble and the white-noise Fokker-Planck density of [q];
4. compares, per ``tau``: (a) the across-model mean and variance of ``D^(x, t)`` at query points
   (model-level bootstrap CIs) and their relative errors vs width; (b) the learned distributions:
   every network sampled with the PF-ODE (per-model histograms and gap masses), the gap-mass curve
   vs ``tau`` with model-level CIs next to the theory's and the baselines ``p(x|eps)`` and the
   exact-Bayes PF-ODE (:mod:`gtv.validation.predictions`).

Time convention (the mapping between the two halves of issue 6)
-----------------------------------------------------------------
The networks take ``k`` gradient steps of rate ``eta``; their training time is ``tau = eta k``
(gradient-flow time at unit rate, :mod:`gtv.numerics.two_layer.training`), and this is the ``tau``
of every table and file here. In the lazy limit a network follows its linearization, whose
residual shrinks by ``(1 - eta g / P)**k`` along each eigenvector of
``G = Lambda^1/2 Theta Lambda^1/2`` (eigenvalue ``g``). The kernel code (:mod:`gtv.numerics.kernel.regression`,
:mod:`gtv.numerics.kernel.theory`) writes the same filter on ``s = g / P``; its two flows read ``tau``
differently: ``flow="gradient-descent"`` takes ``k = tau / lr`` steps of ``(1 - lr s)`` (so
``tau`` is time at unit rate), ``flow="gradient-flow"`` applies ``exp(-lr tau s)`` (docs/math/kernel.md's
``exp(-eta tau Theta Lambda / P)``, so ``tau`` is time at rate ``lr``). The networks at
``(eta, k)`` are therefore compared with the kernel regression and the theory at
``lr = eta, tau = eta k, flow = "gradient-descent"`` -- exactly the networks' discrete filter; the
continuous flow would be ``lr = 1, tau = eta k`` (or ``lr = eta, tau = k``).
tests/validation/test_ntk_compare.py checks both mappings against
:func:`gtv.numerics.two_layer.network.linearized_predictions` on the same Gram matrix (to round-off).

Learning rate
-------------
Gradient descent on a training set is stable iff ``eta < 2P / lambda_max(Lambda^1/2 Theta
Lambda^1/2)``. The limit is computed for every model and width from its empirical tangent kernel
at initialization (:func:`gtv.numerics.two_layer.training.stability_limit`), for every model's
infinite-width kernel (:attr:`gtv.numerics.kernel.regression.KernelRegression.lr_max`) and for the population
kernel of the theory (:attr:`gtv.numerics.kernel.theory.NTKTheory.lr_max`); ``eta`` is ``lr_fraction``
times the smallest of them, or a given ``learning_rate``, which must be below it (``ValueError``
with the limit otherwise). Requested ``tau`` are rounded to whole steps; the times reached
(``eta k``) are reported and used everywhere.

Relative errors (per ``tau``, over the Q query points, ``||.||`` the Euclidean norm over them)
----------------------------------------------------------------------------------------------
* ``model``: ``sqrt(sum_{n,q} (D^_net - D^_ker)**2 / sum_{n,q} D^_ker**2)``, the per-model
  distance to the infinite-width network trained on the same triples;
* ``mean vs kernel``: ``||m_net - m_ker|| / ||m_ker||`` (ensemble means; paired, so sampling noise
  cancels and only the finite-width error remains); ``Var vs kernel`` likewise for the
  across-model variances;
* ``mean vs theory``, ``Var vs theory``: the same against the first-order theory; these contain
  the 1/P error of the theory and the sampling error of N models, whose expected size alone
  (``noise``: ``sqrt(sum_q v_q / N) / ||m_th||`` and ``sqrt(sum_q 2 v_q**2 / (N - 1)) / ||v_th||``)
  is printed next to them.
CIs resample models (the same resample for every width, kernel and theory column); they are
percentile intervals of a norm, which resampling biases upward (it adds noise to the differences),
so an estimate can lie below its interval: read them as the spread under model resampling.

Seeds (given ``seed``)
----------------------
Training sets and initial weights ``SeedSequence(seed).spawn(N)`` (triples first, so they are
shared by every width and by the kernel regression); PF-ODE initial points of the networks *and*
of the kernel regression ``SeedSequence([seed, 1]).spawn(N)`` (paired); Gaussian-field draws
``SeedSequence([seed, 2]).spawn(N)`` (the same for every ``tau``, as a trained model is the same
model at every checkpoint), their initial points ``SeedSequence([seed + 1, 1])``; exact-Bayes
baseline ``seed + 999``; bootstraps ``default_rng([seed, 3])``.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from gtv.numerics.kernel.inputs import check_embedding
from gtv.numerics.kernel.regression import ACTIVATIONS, KernelEnsemble, fit_kernel_regression
from gtv.numerics.kernel.theory import markov_fokker_planck, ntk_theory
from gtv.numerics.schedules import get_schedule
from gtv.numerics.two_layer.sampler import sample_two_layer_ensemble
from gtv.numerics.two_layer.training import (
    TwoLayerInit,
    TwoLayerTrajectory,
    init_two_layer_ensemble,
    stability_limit,
    train_two_layer,
)
from gtv.validation.ensembles import bootstrap_ci, gap_mass, per_model_histograms
from gtv.validation.figures.figure2 import FIGURE2_DATA, mixture_density
from gtv.validation.linear.compare import _masses, _variance_ci, total_variation
from gtv.validation.predictions import (
    bin_mixture_density,
    exact_bayes_histogram,
    exact_gap_mass,
    fokker_planck_grid,
    fokker_planck_on_edges,
)
from gtv.validation.results import (
    JsonConfig,
    figure_stem,
    load_result_of_kind,
    save_figure,
    save_result,
)

__all__ = ["NTKCompareConfig", "NTKComparison", "compare_ntk"]

#: Densities compared with the trained networks' ensemble mean (names used in tables and files).
DENSITIES = ("kernel", "gaussian_field", "white_noise_fp", "mean_score_fp_Q0", "p(x|eps)", "bayes")


def _is_int(v: object) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, np.integer))


@dataclass(frozen=True)
class NTKCompareConfig(JsonConfig):
    """One configuration of :func:`compare_ntk` (defaults: erf, eps = 1e-2, P = 256).

    Attributes
    ----------
    eps : float
        Training cutoff and sampling end time, ``0 < eps < T``.
    P : int
        DSM triples per model.
    activation : {"erf", "relu"}
        erf reaches the lazy regime much faster in width than relu (whose kink makes activation
        flips a first-order effect; :mod:`gtv.numerics.two_layer.training` tests).
    widths : tuple of int
        Network widths (even integers >= 2: the antisymmetric initialization pairs mirrored units).
    n_models : int
        N >= 4 models (each with its own DSM draw).
    taus : tuple of float
        Training times ``tau = eta k > 0``, increasing (rounded to whole steps).
    lr_fraction : float
        ``eta`` as a fraction of the smallest stability limit, in (0, 1).
    learning_rate : float, optional
        An explicit ``eta`` (overrides ``lr_fraction``); must be below the stability limit.
    n_samples : int
        PF-ODE samples per model.
    query_x, query_t
        Query points of the denoiser tables (all pairs); ``eps <= t <= T``.
    hist_range, n_bins, gap_distance
        Histogram grid and gap-mass threshold.
    schedule, n_steps, method
        Noise schedule and the PF-ODE sampler (Euler, 30 steps: the paper's).
    n_boot : int
        Bootstrap resamples (models).
    sample_kernel : bool
        Also sample the infinite-width networks (kernel regression on the same triples).
    theory_n_t, theory_n_hermite : int
        Quadrature of the theory (``n_t * 3 * n_hermite`` Nystrom nodes). 10 x 10 changes the mean
        and standard deviation of ``D^`` at the default query points by < 3e-4 from 16 x 16
        (measured at tau = 3, 30, 300), far below the sampling errors; the Gaussian-field
        ensemble is evaluated on all nodes, so they set its sampling cost.
    fp_refine, fp_steps : int
        White-noise Fokker-Planck cells per histogram bin and time steps.
    fp_half_width : float, optional
        Fokker-Planck domain ``[-h, h]`` (default: the histogram range extended to
        ``+-6 sigma_T``; widen it when the solver reports mass at the boundary, as happens for
        small P, where the white-noise intensity is large).
    n_bayes_samples : int, optional
        Exact-Bayes PF-ODE samples (default ``N * n_samples`` capped at 10**6).
    embedding, bias
        Network inputs (:func:`gtv.numerics.kernel.inputs.ntk_inputs`).
    seed : int
    """

    eps: float = 1e-2
    P: int = 256
    activation: str = "erf"
    widths: tuple[int, ...] = (256, 1024, 2048)
    n_models: int = 32
    taus: tuple[float, ...] = (3.0, 10.0, 30.0, 100.0, 300.0)
    lr_fraction: float = 0.5
    learning_rate: float | None = None
    n_samples: int = 1000
    query_x: tuple[float, ...] = (-1.2, -1.0, -0.5, 0.0, 0.5, 1.0)
    query_t: tuple[float, ...] = (0.02, 0.1, 0.4)
    hist_range: tuple[float, float] = (-2.0, 2.0)
    n_bins: int = 80
    gap_distance: float = 0.25
    schedule: str = "vp-linear"
    n_steps: int = 30
    method: str = "euler"
    n_boot: int = 1000
    sample_kernel: bool = True
    theory_n_t: int = 10
    theory_n_hermite: int = 10
    fp_refine: int = 2
    fp_steps: int = 300
    fp_half_width: float | None = None
    n_bayes_samples: int | None = None
    embedding: str = "linear"
    bias: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        widths = tuple(self.widths) if isinstance(self.widths, (tuple, list)) else (self.widths,)
        if not widths or not all(_is_int(w) for w in widths):
            raise ValueError(
                f"widths must be a non-empty sequence of integers, got {self.widths!r}"
            )
        for w in widths:
            if w < 1:
                raise ValueError(f"widths must be integers >= 1 (hidden units), got {w}")
            if w % 2:
                raise ValueError(
                    f"widths must be even (the antisymmetric initialization pairs mirrored "
                    f"units so that D^_0 = 0), got {w}"
                )
        if len(set(widths)) != len(widths):
            raise ValueError(f"widths must be distinct, got {widths}")
        object.__setattr__(self, "widths", tuple(sorted(int(w) for w in widths)))
        try:
            taus = np.asarray(self.taus, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"taus must be numbers > 0, got {self.taus!r}") from None
        if taus.ndim != 1 or taus.size == 0 or not np.all(np.isfinite(taus)):
            raise ValueError(
                f"taus must be a non-empty sequence of finite numbers, got {self.taus}"
            )
        if np.any(taus < 0):
            raise ValueError(
                f"taus must be >= 0 (training times tau = eta * steps), got {self.taus}"
            )
        if np.any(taus == 0):
            raise ValueError(
                "taus must be > 0 (tau = 0 is the untrained network, D^ = 0, for which the "
                f"relative errors are undefined), got {self.taus}"
            )
        if np.any(np.diff(taus) <= 0):
            raise ValueError(f"taus must be strictly increasing, got {self.taus}")
        object.__setattr__(self, "taus", tuple(float(v) for v in taus))
        if not (isinstance(self.lr_fraction, (int, float)) and 0 < self.lr_fraction < 1):
            raise ValueError(
                "lr_fraction must be in (0, 1): learning rates at or beyond the stability limit "
                f"of gradient descent diverge; got {self.lr_fraction!r}"
            )
        if self.learning_rate is not None and not (
            isinstance(self.learning_rate, (int, float))
            and math.isfinite(self.learning_rate)
            and self.learning_rate > 0
        ):
            raise ValueError(
                f"learning_rate must be a finite number > 0 (or None), got {self.learning_rate!r}"
            )
        if not _is_int(self.n_models) or self.n_models < 4:
            raise ValueError(f"n_models must be an integer >= 4, got {self.n_models!r}")
        for name in ("P", "n_samples", "n_bins", "n_steps", "theory_n_t", "theory_n_hermite"):
            v = getattr(self, name)
            if not _is_int(v) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        for name in ("fp_refine", "fp_steps"):
            v = getattr(self, name)
            if not _is_int(v) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        if self.fp_half_width is not None and not (
            isinstance(self.fp_half_width, (int, float))
            and math.isfinite(self.fp_half_width)
            and self.fp_half_width >= max(abs(self.hist_range[0]), abs(self.hist_range[1]))
        ):
            raise ValueError(
                "fp_half_width must be a finite number covering hist_range (or None), got "
                f"{self.fp_half_width!r}"
            )
        if not _is_int(self.n_boot) or self.n_boot < 10:
            raise ValueError(f"n_boot must be an integer >= 10, got {self.n_boot!r}")
        if self.n_bayes_samples is not None and (
            not _is_int(self.n_bayes_samples) or self.n_bayes_samples < 1
        ):
            raise ValueError(
                f"n_bayes_samples must be an integer >= 1, got {self.n_bayes_samples!r}"
            )
        if self.method not in ("euler", "heun"):
            raise ValueError(f"method must be 'euler' or 'heun', got {self.method!r}")
        check_embedding(self.embedding)
        sched = get_schedule(self.schedule)
        if not (isinstance(self.eps, (int, float)) and 0 < self.eps < sched.T):
            raise ValueError(f"eps must lie in (0, T) = (0, {sched.T:g}), got {self.eps!r}")
        lo, hi = self.hist_range
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise ValueError(f"hist_range must be (lo, hi) with lo < hi, got {self.hist_range}")
        if not (np.isfinite(self.gap_distance) and self.gap_distance > 0):
            raise ValueError(f"gap_distance must be > 0, got {self.gap_distance!r}")
        for name in ("query_x", "query_t"):
            v = np.asarray(getattr(self, name), dtype=float)
            if v.ndim != 1 or v.size == 0 or not np.all(np.isfinite(v)):
                raise ValueError(f"{name} must be a non-empty sequence of finite numbers")
        qt = np.asarray(self.query_t, dtype=float)
        if np.any(qt < self.eps) or np.any(qt > sched.T):
            raise ValueError(
                f"query_t must lie in [eps, T] = [{self.eps:g}, {sched.T:g}], got {self.query_t}"
            )

    def query_points(self) -> tuple[np.ndarray, np.ndarray]:
        """All (x, t) query pairs, t-major: ``x`` (Q,), ``t`` (Q,)."""
        qx = np.asarray(self.query_x, dtype=float)
        qt = np.asarray(self.query_t, dtype=float)
        return np.tile(qx, qt.size), np.repeat(qt, qx.size)


# -- statistics ---------------------------------------------------------------------------------
def _rel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``||a - b|| / ||b||`` over the last axis (the query points); ``ValueError`` if ``||b||`` is
    at round-off level (1e-10 per point; the data are O(1))."""
    den = np.linalg.norm(b, axis=-1)
    if np.any(den <= 1e-10 * np.sqrt(b.shape[-1])):
        raise ValueError(
            "query_x: the reference values vanish at every query point (e.g. only x = 0, where "
            "the mean denoiser of the symmetric data is 0), so relative errors are undefined; "
            "add query points away from 0"
        )
    return np.linalg.norm(a - b, axis=-1) / den


def _ci(boot: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    a = (1 - confidence) / 2
    lo, hi = np.quantile(boot, [a, 1 - a], axis=0)
    return lo, hi


def _error_rows(
    net: np.ndarray,
    ker: np.ndarray,
    th_mean: np.ndarray,
    th_var: np.ndarray,
    widths: tuple[int, ...],
    taus: np.ndarray,
    idx: np.ndarray,
) -> list[dict]:
    """Relative errors per (tau, width) (module docstring) with model-bootstrap CIs.

    ``net`` (W, K, N, Q), ``ker`` (K, N, Q), ``th_*`` (K, Q), ``idx`` (n_boot, N).
    """
    n = ker.shape[1]
    km, kv = ker.mean(1), ker.var(1, ddof=1)  # (K, Q)
    kb = ker[:, idx]  # (K, B, N, Q)
    kbm, kbv = kb.mean(2), kb.var(2, ddof=1)  # (K, B, Q)
    rows = []
    entries = [(w, net[i]) for i, w in enumerate(widths)] + [("inf", None)]
    for w, vals in entries:
        if vals is None:
            m, v, bm, bv = km, kv, kbm, kbv
        else:
            m, v = vals.mean(1), vals.var(1, ddof=1)
            vb = vals[:, idx]
            bm, bv = vb.mean(2), vb.var(2, ddof=1)
        stats = {
            "mean_vs_theory": (_rel(m, th_mean), _rel(bm, th_mean[:, None])),
            "var_vs_theory": (_rel(v, th_var), _rel(bv, th_var[:, None])),
        }
        if vals is not None:
            stats["mean_vs_kernel"] = (_rel(m, km), _rel(bm, kbm))
            stats["var_vs_kernel"] = (_rel(v, kv), _rel(bv, kbv))
            model = np.sqrt(((vals - ker) ** 2).sum(axis=(1, 2)) / (ker**2).sum(axis=(1, 2)))
        mean_noise = np.sqrt(v.sum(-1) / n) / np.linalg.norm(th_mean, axis=-1)
        var_noise = np.sqrt((2 * v**2).sum(-1) / (n - 1)) / np.linalg.norm(th_var, axis=-1)
        for k, tau in enumerate(taus):
            row = {"tau": float(tau), "width": w}
            row["model"] = float(model[k]) if vals is not None else None
            for name, (est, boot) in stats.items():
                lo, hi = _ci(boot[k])
                row[name] = float(est[k])
                row[f"{name}_lo"] = float(lo)
                row[f"{name}_hi"] = float(hi)
            row["mean_noise"] = float(mean_noise[k])
            row["var_noise"] = float(var_noise[k])
            rows.append(row)
    return rows


def _denoiser_rows(
    net: np.ndarray,
    ker: np.ndarray,
    th: dict,
    qx: np.ndarray,
    qt: np.ndarray,
    taus: np.ndarray,
    n_boot: int,
    seed: int,
    rng: np.random.Generator,
) -> list[dict]:
    """Per (tau, query): the largest width's and the kernel's mean and variance with CIs and the
    theory's mean and variance (total, proxy, misfit)."""
    rows = []
    for k, tau in enumerate(taus):
        v, vlo, vhi = _variance_ci(net[k], n_boot, rng)
        kv, kvlo, kvhi = _variance_ci(ker[k], n_boot, rng)
        for q in range(qx.size):
            m, mlo, mhi = bootstrap_ci(net[k, :, q], n_resamples=n_boot, seed=seed)
            km, kmlo, kmhi = bootstrap_ci(ker[k, :, q], n_resamples=n_boot, seed=seed)
            vt = float(th["var"][k, q])
            rows.append(
                {
                    "tau": float(tau),
                    "x": float(qx[q]),
                    "t": float(qt[q]),
                    "mean": m,
                    "mean_lo": mlo,
                    "mean_hi": mhi,
                    "kernel_mean": km,
                    "kernel_mean_lo": kmlo,
                    "kernel_mean_hi": kmhi,
                    "theory_mean": float(th["mean"][k, q]),
                    "var": float(v[q]),
                    "var_lo": float(vlo[q]),
                    "var_hi": float(vhi[q]),
                    "kernel_var": float(kv[q]),
                    "kernel_var_lo": float(kvlo[q]),
                    "kernel_var_hi": float(kvhi[q]),
                    "theory_var": vt,
                    "theory_var_proxy": float(th["var_proxy"][k, q]),
                    "theory_var_misfit": float(th["var_misfit"][k, q]),
                    "var_ratio": float(v[q] / vt) if vt > 0 else float("inf"),
                }
            )
    return rows


# -- result -------------------------------------------------------------------------------------
@dataclass
class NTKComparison:
    """Result of :func:`compare_ntk`.

    Attributes
    ----------
    config : NTKCompareConfig
    learning_rate : float
        ``eta`` used for every width, model and for the kernel and theory.
    steps : ndarray (K,)
        Gradient steps per checkpoint; ``taus = learning_rate * steps``.
    taus : ndarray (K,)
        Training times reached.
    denoiser : ndarray (W, K, N, Q)
        ``D^`` of every trained network at the query points (:meth:`query_points`).
    kernel_denoiser : ndarray (K, N, Q)
        The infinite-width networks on the same triples.
    theory : dict of ndarray (K, Q)
        ``mean``, ``var``, ``var_proxy``, ``var_misfit`` at the query points.
    histograms : ndarray (W, K, N, B)
        Per-model density histograms of the trained networks on :attr:`edges`.
    outside, gap : ndarray (W, K, N)
        Per-model mass outside the histogram range and gap mass.
    kernel_histograms, kernel_outside, kernel_gap
        The same for the infinite-width networks ((K, N, B), (K, N), (K, N); empty if not
        sampled).
    gf_histograms, gf_outside, gf_gap
        The same for the theory's Gaussian-field ensemble.
    fp_density, fp_mean_density : ndarray (K, B)
        White-noise Fokker-Planck density (``Q^+``) and the same solver with ``Q = 0``, re-binned.
    fp_gap, fp_mean_gap : ndarray (K,)
    exact_density, bayes_density : ndarray (B,)
        ``p(x|eps)`` and the exact-Bayes PF-ODE histogram.
    denoiser_rows, error_rows, gap_rows, density_rows : list of dict
        The tables (see :meth:`format_table`).
    meta : dict
        Stability limits, baselines' gap masses, theory diagnostics, FP diagnostics, timings.
    """

    config: NTKCompareConfig
    learning_rate: float
    steps: np.ndarray
    taus: np.ndarray
    denoiser: np.ndarray
    kernel_denoiser: np.ndarray
    theory: dict
    histograms: np.ndarray
    outside: np.ndarray
    gap: np.ndarray
    kernel_histograms: np.ndarray
    kernel_outside: np.ndarray
    kernel_gap: np.ndarray
    gf_histograms: np.ndarray
    gf_outside: np.ndarray
    gf_gap: np.ndarray
    fp_density: np.ndarray
    fp_mean_density: np.ndarray
    fp_gap: np.ndarray
    fp_mean_gap: np.ndarray
    exact_density: np.ndarray
    bayes_density: np.ndarray
    denoiser_rows: list
    error_rows: list
    gap_rows: list
    density_rows: list
    meta: dict = field(default_factory=dict)

    @property
    def edges(self) -> np.ndarray:
        c = self.config
        return np.linspace(c.hist_range[0], c.hist_range[1], c.n_bins + 1)

    @property
    def centres(self) -> np.ndarray:
        e = self.edges
        return (e[1:] + e[:-1]) / 2

    def query_points(self) -> tuple[np.ndarray, np.ndarray]:
        return self.config.query_points()

    def errors(self, name: str, width: int | str) -> np.ndarray:
        """One relative error (e.g. ``"var_vs_kernel"``) vs tau for one width (K,)."""
        rows = [r for r in self.error_rows if r["width"] == width]
        if not rows:
            raise ValueError(f"width must be one of {self.config.widths} or 'inf', got {width!r}")
        if name not in rows[0]:
            raise ValueError(f"name must be one of the error columns, got {name!r}")
        return np.array([r[name] for r in rows], dtype=float)

    # -- tables ---------------------------------------------------------------------------------
    def format_table(self) -> str:
        """One block per ``tau`` (denoiser moments, errors vs width, density distances) and the
        gap-mass curve."""
        c = self.config
        wmax = c.widths[-1]
        m = self.meta
        lines = [
            f"== trained two-layer networks ({c.activation}, NTK parameterization) vs lazy "
            f"infinite-width theory: eps={c.eps:g}  P={c.P}  N={c.n_models} models x "
            f"{c.n_samples} samples  widths {'/'.join(map(str, c.widths))}  seed={c.seed} ==",
            f"gradient descent eta = {self.learning_rate:.5g} (stability limit "
            f"{m['stability_limit']:.5g}: min over widths {m['limit_by_width_min']}, "
            f"infinite width {m['kernel_limit_min']:.5g}, population {m['theory_limit']:.5g}); "
            "tau = eta * steps",
        ]
        nq = len(self.query_points()[0])
        for k, tau in enumerate(self.taus):
            lines.append("")
            lines.append(
                f"-- tau = {tau:.4g} ({int(self.steps[k])} steps; theory d_eff = "
                f"{m['effective_dimension'][k]:.2f}) --"
            )
            lines.append(
                f"D^(x,t) across models: trained width {wmax} and infinite-width kernel regression "
                "on the same triples (95 % model-bootstrap CI) vs first-order theory"
            )
            lines.append(
                f"{'x':>6} {'t':>5} | {'mean trained [CI]':>27} {'kernel':>8} {'theory':>8} | "
                f"{'Var trained [CI]':>31} {'kernel':>9} {'theory':>9} "
                f"{'(proxy':>9} {'misfit)':>9} {'tr/th':>6}"
            )
            for r in self.denoiser_rows:
                if r["tau"] != tau:
                    continue
                lines.append(
                    f"{r['x']:>6.2f} {r['t']:>5.3f} | {r['mean']:>8.4f} "
                    f"[{r['mean_lo']:>8.4f},{r['mean_hi']:>8.4f}] {r['kernel_mean']:>8.4f} "
                    f"{r['theory_mean']:>8.4f} | {r['var']:>9.3e} "
                    f"[{r['var_lo']:.3e},{r['var_hi']:.3e}] {r['kernel_var']:>9.3e} "
                    f"{r['theory_var']:>9.3e} {r['theory_var_proxy']:>9.3e} "
                    f"{r['theory_var_misfit']:>9.3e} {r['var_ratio']:>6.2f}"
                )
            lines.append(
                f"relative errors over the {nq} query points (95 % model-bootstrap CI); "
                "'noise' = expected error vs theory from N models alone"
            )
            lines.append(
                f"{'width':>6} | {'model':>6} | {'mean vs kernel':>24} | {'Var vs kernel':>24} | "
                f"{'mean vs theory':>24} {'noise':>6} | {'Var vs theory':>24} {'noise':>6}"
            )
            for r in self.error_rows:
                if r["tau"] != tau:
                    continue

                def cell(name, r=r):
                    if name not in r:
                        return f"{'-':>24}"
                    return f"{r[name]:>7.4f} [{r[name + '_lo']:.4f},{r[name + '_hi']:.4f}]"

                model = f"{r['model']:>6.4f}" if r["model"] is not None else f"{'-':>6}"
                lines.append(
                    f"{r['width']!s:>6} | {model} | {cell('mean_vs_kernel')} | "
                    f"{cell('var_vs_kernel')} | {cell('mean_vs_theory')} {r['mean_noise']:>6.4f} | "
                    f"{cell('var_vs_theory')} {r['var_noise']:>6.4f}"
                )
            drows = [r for r in self.density_rows if r["tau"] == tau]
            lines.append(
                f"TV(mean density of trained width {wmax}, X) [95 % model-bootstrap CI]: "
                + "; ".join(
                    f"{r['name']} {r['tv']:.4f} [{r['tv_lo']:.4f},{r['tv_hi']:.4f}]"
                    for r in drows
                    if r["name"] != "floor"
                )
                + "; half-vs-half floor "
                + "".join(f"{r['tv']:.4f}" for r in drows if r["name"] == "floor")
            )
            fp = m["fp_info"][k]
            lines.append(
                f"white-noise FP: Q<0 clipped at {100 * fp['clipped_fraction']:.2f} % of (cell, "
                f"step) evaluations ({100 * fp['clipped_share']:.3g} % of sum|Q|)"
            )
        lines.append("")
        lines.append(self.format_summary())
        lines.append("")
        lines.append(self.format_gap_table())
        return "\n".join(lines)

    def width_slopes(self) -> np.ndarray:
        """Log-log slope of the per-model finite-width error vs width, per tau (K,); NaN with a
        single width. Lazy-regime expectation: -1/2 (the tangent kernel at initialization is an
        average over n independent units; for erf with the antisymmetric initialization the change
        during training is O(1/n), numerics/two_layer_training tests)."""
        w = np.log(np.asarray(self.config.widths, dtype=float))
        if w.size < 2:
            return np.full(self.taus.size, np.nan)
        err = np.log(np.array([self.errors("model", wd) for wd in self.config.widths]))  # (W, K)
        return np.polyfit(w, err, 1)[0]

    def format_summary(self) -> str:
        """One line per tau: the finite-width error per width and its slope, and the relative
        errors of the largest width and of the infinite-width networks."""
        c = self.config
        wmax = c.widths[-1]
        slopes = self.width_slopes()
        head = (
            f"{'tau':>8} | "
            + " ".join(f"{'n=' + str(w):>7}" for w in c.widths)
            + f" {'slope':>6} | {'mean/ker':>8} {'Var/ker':>8} | "
            f"{'mean/th':>8} {'(inf)':>7} {'noise':>7} | {'Var/th':>7} {'(inf)':>7} {'noise':>7}"
        )
        lines = [
            "summary: per-model finite-width error vs width (distance to the infinite-width "
            f"network on the same triples) and its log-log slope; relative errors of width {wmax} "
            "vs kernel regression (ker) and vs the first-order theory (th; '(inf)' = infinite "
            "width; 'noise' = expected from N models alone)",
            head,
        ]
        for k, tau in enumerate(self.taus):
            r = {
                w: next(x for x in self.error_rows if x["tau"] == tau and x["width"] == w)
                for w in (*c.widths, "inf")
            }
            top, inf = r[wmax], r["inf"]
            lines.append(
                f"{tau:>8.4g} | "
                + " ".join(f"{r[w]['model']:>7.4f}" for w in c.widths)
                + f" {slopes[k]:>6.2f} | {top['mean_vs_kernel']:>8.4f} "
                f"{top['var_vs_kernel']:>8.4f} | {top['mean_vs_theory']:>8.4f} "
                f"{inf['mean_vs_theory']:>7.4f} {top['mean_noise']:>7.4f} | "
                f"{top['var_vs_theory']:>7.4f} {inf['var_vs_theory']:>7.4f} "
                f"{top['var_noise']:>7.4f}"
            )
        return "\n".join(lines)

    def format_gap_table(self) -> str:
        """The gap-mass curve vs tau (model-level 95 % bootstrap CIs) and the baselines."""
        c = self.config
        names = [f"width {w}" for w in c.widths]
        if self.kernel_gap.size:
            names.append("infinite width")
        names += ["Gaussian field"]
        head = f"{'tau':>8} | " + " | ".join(f"{n:>25}" for n in names)
        head += f" | {'white-noise FP':>14} | {'FP, Q = 0':>10}"
        lines = [
            f"gap mass (fraction farther than {c.gap_distance:g} from every training point; "
            "95 % model-level bootstrap CI)",
            head,
        ]
        for r in self.gap_rows:
            cells = [f"{r['tau']:>8.4g}"]
            for n in names:
                e = r[n]
                cells.append(f"{e[0]:>7.4f} [{e[1]:.4f}, {e[2]:.4f}]".rjust(25))
            cells.append(f"{r['white-noise FP']:>14.4f}")
            cells.append(f"{r['FP, Q = 0']:>10.4f}")
            lines.append(" | ".join(cells))
        b = self.meta["baseline_gap"]
        lines.append(
            f"baselines: p(x|eps) {b['p(x|eps)']:.4f}; exact-Bayes PF-ODE "
            f"({c.n_steps} {c.method} steps) {b['bayes']:.4f}"
        )
        return "\n".join(lines)

    # -- persistence ----------------------------------------------------------------------------
    def _arrays(self) -> dict:
        out = {
            "steps": self.steps,
            "taus": self.taus,
            "denoiser": self.denoiser,
            "kernel_denoiser": self.kernel_denoiser,
            "histograms": self.histograms,
            "outside": self.outside,
            "gap": self.gap,
            "kernel_histograms": self.kernel_histograms,
            "kernel_outside": self.kernel_outside,
            "kernel_gap": self.kernel_gap,
            "gf_histograms": self.gf_histograms,
            "gf_outside": self.gf_outside,
            "gf_gap": self.gf_gap,
            "fp_density": self.fp_density,
            "fp_mean_density": self.fp_mean_density,
            "fp_gap": self.fp_gap,
            "fp_mean_gap": self.fp_mean_gap,
            "exact_density": self.exact_density,
            "bayes_density": self.bayes_density,
        }
        out.update({f"theory_{k}": v for k, v in self.theory.items()})
        return out

    def save(self, path: str | Path) -> tuple[Path, Path]:
        """``path.npz`` (arrays + configuration, :mod:`gtv.numerics.io`) and ``path.json``
        (the same summary, readable)."""
        path = Path(path)
        stem = path.with_suffix("") if path.suffix == ".npz" else path
        summary = {
            "kind": "ntk_comparison",
            "config": self.config.to_dict(),
            "learning_rate": self.learning_rate,
            "denoiser_rows": self.denoiser_rows,
            "error_rows": self.error_rows,
            "gap_rows": self.gap_rows,
            "density_rows": self.density_rows,
            "meta": self.meta,
        }
        npz = save_result(stem, self._arrays(), summary)
        js = Path(str(stem) + ".json")
        js.write_text(json.dumps(summary, indent=1, sort_keys=True))
        return npz, js

    @classmethod
    def load(cls, path: str | Path) -> NTKComparison:
        a, s = load_result_of_kind(path, "ntk_comparison", "an NTKComparison")
        theory = {k[len("theory_") :]: v for k, v in a.items() if k.startswith("theory_")}
        return cls(
            NTKCompareConfig.from_dict(s["config"]),
            s["learning_rate"],
            a["steps"],
            a["taus"],
            a["denoiser"],
            a["kernel_denoiser"],
            theory,
            a["histograms"],
            a["outside"],
            a["gap"],
            a["kernel_histograms"],
            a["kernel_outside"],
            a["kernel_gap"],
            a["gf_histograms"],
            a["gf_outside"],
            a["gf_gap"],
            a["fp_density"],
            a["fp_mean_density"],
            a["fp_gap"],
            a["fp_mean_gap"],
            a["exact_density"],
            a["bayes_density"],
            s["denoiser_rows"],
            s["error_rows"],
            s["gap_rows"],
            s["density_rows"],
            s.get("meta", {}),
        )

    # -- figure ---------------------------------------------------------------------------------
    def plot(
        self,
        path: str | Path,
        formats: tuple[str, ...] = ("png", "pdf"),
        density_taus: tuple[float, ...] | None = None,
    ) -> list[Path]:
        """Gap mass vs tau, relative errors vs width, and densities at up to three ``tau``.

        ``density_taus`` (default: the first, middle and last ``tau``) must be among
        :attr:`taus` (nearest checkpoint used).
        """
        from matplotlib.figure import Figure

        c = self.config
        taus = self.taus
        if density_taus is None:
            sel = sorted({0, len(taus) // 2, len(taus) - 1})
        else:
            sel = sorted({int(np.argmin(np.abs(np.log(taus / float(v))))) for v in density_taus})
        ncol = max(2, len(sel))
        fig = Figure(figsize=(4.0 * ncol, 7.4))
        gs = fig.add_gridspec(2, ncol)
        ax = fig.add_subplot(gs[0, : ncol // 2 + (ncol % 2)])
        names = [f"width {w}" for w in c.widths]
        if self.kernel_gap.size:
            names.append("infinite width")
        names.append("Gaussian field")
        colors = {n: f"C{i}" for i, n in enumerate(names)}
        for j, n in enumerate(names):
            e = np.array([r[n] for r in self.gap_rows])
            off = np.exp(0.03 * (j - len(names) / 2))  # spread error bars along tau
            ax.errorbar(
                taus * off,
                e[:, 0],
                yerr=[e[:, 0] - e[:, 1], e[:, 2] - e[:, 0]],
                fmt="o-" if n.startswith("width") else "s--",
                ms=3,
                lw=1,
                capsize=2,
                color=colors[n],
                label=n,
            )
        ax.plot(
            taus, [r["white-noise FP"] for r in self.gap_rows], "k-.", lw=1, label="white-noise FP"
        )
        ax.plot(
            taus, [r["FP, Q = 0"] for r in self.gap_rows], ":", color="0.4", lw=1, label="FP, Q = 0"
        )
        b = self.meta["baseline_gap"]
        ax.axhline(b["p(x|eps)"], color="black", lw=0.7, label=r"$p(x|\epsilon)$")
        ax.axhline(b["bayes"], color="0.6", lw=0.7, label="PF-ODE, exact Bayes")
        ax.set_xscale("log")
        ax.set_xlabel(r"training time $\tau = \eta k$")
        ax.set_ylabel(f"gap mass (> {c.gap_distance:g} from data)")
        ax.set_title(f"{c.activation}, eps={c.eps:g}, P={c.P}, N={c.n_models}", fontsize=9)
        ax.legend(fontsize=6)

        ax = fig.add_subplot(gs[0, ncol // 2 + (ncol % 2) :])
        w = np.array(c.widths, dtype=float)
        for k, tau in enumerate(taus):
            rows = [r for r in self.error_rows if r["tau"] == tau and r["width"] != "inf"]
            ax.loglog(
                w, [r["model"] for r in rows], "o-", color=f"C{k}", ms=3, label=f"tau={tau:.3g}"
            )
            ax.loglog(w, [r["var_vs_kernel"] for r in rows], "s:", color=f"C{k}", ms=3)
        if len(w) > 1:
            ref = np.array([r["model"] for r in self.error_rows if r["width"] == c.widths[0]])
            ax.loglog(w, ref.max() * np.sqrt(w[0] / w), color="0.5", lw=0.7, label="width^-1/2")
        ax.set_xticks(w)
        ax.set_xticks([], minor=True)
        ax.set_xticklabels([str(int(v)) for v in w])
        ax.set_xlabel("width")
        ax.set_ylabel("relative error vs infinite width")
        ax.set_title("per-model (o-) and Var (s:) error vs kernel regression", fontsize=9)
        ax.legend(fontsize=6)

        ctr = self.centres
        x_fine = np.linspace(c.hist_range[0], c.hist_range[1], 1001)
        sched = get_schedule(c.schedule)
        p_eps = mixture_density(FIGURE2_DATA, x_fine, c.eps, sched)
        for j, k in enumerate(sel):
            ax = fig.add_subplot(gs[1, j])
            h = self.histograms[-1, k]
            lo, hi = np.quantile(h, [0.25, 0.75], axis=0)
            ax.fill_between(ctr, lo, hi, color="tab:red", alpha=0.2, lw=0)
            ax.plot(x_fine, p_eps, color="black", lw=0.6, label=r"$p(x|\epsilon)$")
            ax.plot(ctr, h.mean(0), color="tab:red", lw=1.3, label=f"trained, width {c.widths[-1]}")
            if self.kernel_gap.size:
                ax.plot(
                    ctr,
                    self.kernel_histograms[k].mean(0),
                    color="tab:orange",
                    lw=1,
                    ls="--",
                    label="infinite width",
                )
            ax.plot(
                ctr,
                self.gf_histograms[k].mean(0),
                color="tab:blue",
                lw=1,
                ls="--",
                label="Gaussian field",
            )
            ax.plot(
                ctr, self.fp_density[k], color="tab:green", lw=1, ls="-.", label="white-noise FP"
            )
            top = 1.3 * max(
                np.max(hi), np.max(self.gf_histograms[k].mean(0)), np.max(self.fp_density[k])
            )
            ax.set_ylim(0, top)
            ax.set_xlim(c.hist_range)
            ax.set_xlabel("x")
            ax.set_title(f"tau = {taus[k]:.3g}", fontsize=9)
            if j == 0:
                ax.set_ylabel("density")
                ax.legend(fontsize=6)
        fig.tight_layout()
        return save_figure(fig, figure_stem(path), formats, dpi=130)


# -- computation --------------------------------------------------------------------------------
def _subset(tr: TwoLayerTrajectory, steps: np.ndarray) -> TwoLayerTrajectory:
    idx = [int(np.flatnonzero(tr.steps == s)[0]) for s in steps]
    return TwoLayerTrajectory(
        tr.init, tr.learning_rate, tr.steps[idx], tr.W[idx], tr.A[idx], tr.train_loss[idx], tr.limit
    )


def _cache_path(cache_dir: Path, init: TwoLayerInit) -> Path:
    key = json.dumps({**init.config(), "data": init.data.tolist()}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return Path(cache_dir) / f"two_layer_{init.activation}_w{init.width}_{digest}.npz"


def _train(
    init: TwoLayerInit, eta: float, steps: np.ndarray, cache_dir: Path | None, progress: bool
) -> tuple[TwoLayerTrajectory, str]:
    """Train (or reuse/resume an on-disk trajectory of the same init and learning rate)."""
    taus = eta * steps.astype(float)
    if cache_dir is None:
        return train_two_layer(init, eta, taus, progress=progress), "trained"
    path = _cache_path(cache_dir, init)
    if path.exists():
        old = TwoLayerTrajectory.load(path)
        same = (
            old.learning_rate == eta
            and np.array_equal(old.init.W0, init.W0)
            and np.array_equal(old.init.A0, init.A0)
            and np.array_equal(old.init.t, init.t)
            and np.array_equal(old.init.x0, init.x0)
        )
        if same:
            have = set(old.steps.tolist())
            new = np.array([s for s in steps if s not in have], dtype=np.int64)
            if new.size == 0:
                return _subset(old, steps), "cached"
            if new[0] > old.steps[-1]:
                tr = train_two_layer(
                    old.init, eta, eta * new.astype(float), resume_from=old, progress=progress
                )
                tr.save(path)
                return _subset(tr, steps), "resumed"
    tr = train_two_layer(init, eta, taus, progress=progress)
    tr.save(path)
    return tr, "trained"


def _density_rows(
    hist: np.ndarray,
    outside: np.ndarray,
    others: dict,
    width: float,
    n_boot: int,
    rng: np.random.Generator,
    tau: float,
) -> list[dict]:
    """TV between the trained ensemble-mean density and each other density (model bootstrap
    CI over the trained models) and the half-vs-half floor (mean over 10 random splits)."""
    n = hist.shape[0]
    pm = _masses(hist.mean(0), width, outside.mean())
    idx = rng.integers(0, n, (n_boot, n))
    boot = _masses(hist[idx].mean(1), width, outside[idx].mean(1))
    rows = []
    for name, (dens, out) in others.items():
        q = _masses(dens, width, out)
        lo, hi = np.quantile(total_variation(boot, q[None, :]), [0.025, 0.975])
        rows.append(
            {
                "tau": float(tau),
                "name": name,
                "tv": float(total_variation(pm, q)),
                "tv_lo": float(lo),
                "tv_hi": float(hi),
            }
        )
    splits = []
    for _ in range(10):
        perm = rng.permutation(n)
        a, b = perm[: n // 2], perm[n // 2 : 2 * (n // 2)]
        pa = _masses(hist[a].mean(0), width, outside[a].mean())
        pb = _masses(hist[b].mean(0), width, outside[b].mean())
        splits.append(float(total_variation(pa, pb)))
    f = float(np.mean(splits))
    rows.append({"tau": float(tau), "name": "floor", "tv": f, "tv_lo": f, "tv_hi": f})
    return rows


def compare_ntk(
    config: NTKCompareConfig | None = None,
    progress: bool = False,
    cache_dir: str | Path | None = None,
) -> NTKComparison:
    """Train, sample, compute the kernel theory and compare (module docstring).

    Parameters
    ----------
    config : NTKCompareConfig, optional
    progress : bool
        Progress bars (training per width, sampling).
    cache_dir : path, optional
        Trained trajectories are saved here (one ``.npz`` per width, keyed by the training
        configuration) and reused or resumed (later ``tau``) by a later call.

    Raises
    ------
    ValueError
        ``learning_rate`` at or beyond the stability limit (message gives the limit); ``taus``
        shorter than one step or two ``taus`` rounding to the same step; bad configuration
        (:class:`NTKCompareConfig`).
    """
    c = config or NTKCompareConfig()
    if not isinstance(c, NTKCompareConfig):
        raise TypeError("config must be an NTKCompareConfig")
    sched = get_schedule(c.schedule)
    data = FIGURE2_DATA
    timings: dict[str, float] = {}
    kw = dict(activation=c.activation, embedding=c.embedding, bias=c.bias, seed=c.seed)

    # 1. training sets and initial weights (triples shared by all widths), stability limits
    t0 = time.perf_counter()
    inits = [
        init_two_layer_ensemble(data, w, c.n_models, c.P, c.eps, sched, **kw) for w in c.widths
    ]
    base = inits[0]
    limits = np.stack([stability_limit(ini) for ini in inits])  # (W, N)
    kernels = [
        fit_kernel_regression(base.z[m], base.x0[m], base.weight[m], c.activation)
        for m in range(c.n_models)
    ]
    kernel_limits = np.array([kr.lr_max for kr in kernels])
    th_opts = dict(
        embedding=c.embedding, bias=c.bias, n_t=c.theory_n_t, n_hermite=c.theory_n_hermite
    )
    theory_limit = ntk_theory(data, c.eps, sched, c.activation, **th_opts).lr_max
    eta_max = float(min(limits.min(), kernel_limits.min(), theory_limit))
    where = (
        f"min over {len(c.widths)} widths x {c.n_models} models of the empirical tangent kernel "
        f"at initialization ({limits.min():.6g}), the infinite-width kernels of the same "
        f"training sets ({kernel_limits.min():.6g}) and the population kernel ({theory_limit:.6g})"
    )
    if c.learning_rate is None:
        eta = c.lr_fraction * eta_max
    else:
        eta = float(c.learning_rate)
        if not eta < eta_max:
            raise ValueError(
                f"learning_rate = {eta:.6g} is at or beyond the stability limit of gradient "
                f"descent for this kernel: eta_max = 2P / lambda_max(Lambda^1/2 Theta "
                f"Lambda^1/2) = {eta_max:.6g} ({where}); use learning_rate < eta_max"
            )
    req = np.asarray(c.taus, dtype=float)
    steps = np.rint(req / eta).astype(np.int64)
    if np.any(steps < 1):
        bad = req[steps < 1]
        raise ValueError(
            f"taus {bad.tolist()} are shorter than one gradient step (eta = {eta:.6g}); "
            "use larger taus or a larger learning rate"
        )
    if np.any(np.diff(steps) <= 0):
        raise ValueError(
            f"taus {req.tolist()} round to repeated step counts {steps.tolist()} at eta = "
            f"{eta:.6g}; use more widely spaced taus"
        )
    taus = eta * steps.astype(float)
    timings["setup_s"] = time.perf_counter() - t0

    # 2. theory (the same gradient-descent filter: lr = eta, k = tau / eta steps)
    t0 = time.perf_counter()
    theory = ntk_theory(
        data, c.eps, sched, c.activation, lr=eta, flow="gradient-descent", **th_opts
    )
    qx, qt = c.query_points()
    K, Q = taus.size, qx.size
    th = {k: np.empty((K, Q)) for k in ("mean", "var", "var_proxy", "var_misfit")}
    for k, tau in enumerate(taus):
        th["mean"][k] = theory.mean_denoiser(qx, qt, tau)[:, 0]
        for part, key in (("total", "var"), ("proxy", "var_proxy"), ("misfit", "var_misfit")):
            cov = theory.denoiser_covariance((qx, qt), tau=tau, P=c.P, part=part, paired=True)
            th[key][k] = cov[:, 0, 0]
    d_eff = [float(theory.effective_dimension(tau)) for tau in taus]
    timings["theory_s"] = time.perf_counter() - t0

    # 3. infinite-width networks on the same triples
    t0 = time.perf_counter()
    coeffs = np.stack([kr.coefficients(taus, eta, "gradient-descent") for kr in kernels])
    kens = KernelEnsemble(
        base.z, coeffs, taus, c.activation, data, sched, c.eps, c.embedding, c.bias,
        {"kind": "kernel-regression", "P": c.P, "lr": eta, "flow": "gradient-descent",
         "seed": c.seed},
    )  # fmt: skip
    ker = np.empty((K, c.n_models, Q))
    for k, tau in enumerate(taus):
        for t in np.unique(qt):
            sel = qt == t
            ker[k][:, sel] = kens.denoiser(qx[sel], t, tau)[:, :, 0]
    timings["kernel_s"] = time.perf_counter() - t0

    # 4. train the networks
    t0 = time.perf_counter()
    cache = None if cache_dir is None else Path(cache_dir)
    trajs, cache_status = [], []
    for ini in inits:
        tr, status = _train(ini, eta, steps, cache, progress)
        trajs.append(tr)
        cache_status.append(status)
    net = np.empty((len(c.widths), K, c.n_models, Q))
    for i, tr in enumerate(trajs):
        for t in np.unique(qt):
            sel = qt == t
            net[i][:, :, sel] = tr.denoise(qx[sel], t)[..., 0]
    timings["train_s"] = time.perf_counter() - t0

    # 5. sampling: networks, infinite-width networks, Gaussian field; FP; baselines
    t0 = time.perf_counter()
    edges = np.linspace(c.hist_range[0], c.hist_range[1], c.n_bins + 1)
    bw = float(edges[1] - edges[0])
    W_ = len(c.widths)
    hist = np.empty((W_, K, c.n_models, c.n_bins))
    outside = np.empty((W_, K, c.n_models))
    gap = np.empty((W_, K, c.n_models))
    n_k = K if c.sample_kernel else 0
    k_hist = np.empty((n_k, c.n_models, c.n_bins))
    k_out = np.empty((n_k, c.n_models))
    k_gap = np.empty((n_k, c.n_models))
    g_hist = np.empty((K, c.n_models, c.n_bins))
    g_out = np.empty((K, c.n_models))
    g_gap = np.empty((K, c.n_models))
    samp = dict(n_steps=c.n_steps, method=c.method)
    n_jobs = K * (W_ + 1 + int(c.sample_kernel))
    bar = tqdm(total=n_jobs, desc="sampling", disable=not progress, leave=False)

    def reduce(xs):
        h = per_model_histograms(xs, [edges])
        return h, 1.0 - h.sum(axis=1) * bw, gap_mass(xs, data, c.gap_distance)

    for i, tr in enumerate(trajs):
        for k in range(K):
            xs = sample_two_layer_ensemble(tr.networks(k), c.n_samples, seed=c.seed, **samp)
            hist[i, k], outside[i, k], gap[i, k] = reduce(xs)
            bar.update()
    timings["sample_networks_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for k in range(n_k):
        xs = kens.sample(c.n_samples, taus[k], seed=c.seed, **samp)
        k_hist[k], k_out[k], k_gap[k] = reduce(xs)
        bar.update()
    timings["sample_kernel_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for k, tau in enumerate(taus):
        gf = theory.gaussian_field_ensemble(
            tau, c.P, c.n_models, seed=np.random.SeedSequence([c.seed, 2])
        )
        xs = gf.sample(c.n_samples, seed=c.seed + 1, **samp)
        g_hist[k], g_out[k], g_gap[k] = reduce(xs)
        bar.update()
    bar.close()
    timings["sample_gaussian_field_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    h = c.fp_half_width
    lo, hi, n_cells = fokker_planck_grid(edges, sched, None if h is None else (-h, h), c.fp_refine)
    fp_d = np.empty((K, c.n_bins))
    fp0_d = np.empty((K, c.n_bins))
    fp_gap = np.empty(K)
    fp0_gap = np.empty(K)
    fp_info = []
    for k, tau in enumerate(taus):
        res, info = markov_fokker_planck(theory, tau, c.P, (lo, hi), n_cells, c.fp_steps)
        _, _, fp_d[k], fp_gap[k] = fokker_planck_on_edges(res, edges, data, c.gap_distance)
        res0, _ = markov_fokker_planck(
            theory, tau, c.P, (lo, hi), n_cells, c.fp_steps, with_noise=False
        )
        _, _, fp0_d[k], fp0_gap[k] = fokker_planck_on_edges(res0, edges, data, c.gap_distance)
        fp_info.append(info)
    timings["fokker_planck_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    exact = bin_mixture_density(data, edges, c.eps, sched)
    exact_gap = exact_gap_mass(data, c.eps, sched, c.gap_distance)
    nb = c.n_bayes_samples or min(c.n_models * c.n_samples, 10**6)
    bayes, bayes_gap = exact_bayes_histogram(
        data, edges, nb, c.eps, sched, c.gap_distance, seed=c.seed + 999, **samp
    )
    timings["baselines_s"] = time.perf_counter() - t0

    # 6. tables
    t0 = time.perf_counter()
    rng = np.random.default_rng([c.seed, 3])
    idx = rng.integers(0, c.n_models, (c.n_boot, c.n_models))
    error_rows = _error_rows(net, ker, th["mean"], th["var"], c.widths, taus, idx)
    denoiser_rows = _denoiser_rows(net[-1], ker, th, qx, qt, taus, c.n_boot, c.seed, rng)
    gap_rows, density_rows = [], []
    for k, tau in enumerate(taus):
        row = {"tau": float(tau)}
        for i, w in enumerate(c.widths):
            row[f"width {w}"] = bootstrap_ci(gap[i, k], n_resamples=c.n_boot, seed=c.seed)
        if c.sample_kernel:
            row["infinite width"] = bootstrap_ci(k_gap[k], n_resamples=c.n_boot, seed=c.seed)
        row["Gaussian field"] = bootstrap_ci(g_gap[k], n_resamples=c.n_boot, seed=c.seed)
        row["white-noise FP"] = float(fp_gap[k])
        row["FP, Q = 0"] = float(fp0_gap[k])
        gap_rows.append(row)
        others = {}
        if c.sample_kernel:
            others["kernel"] = (k_hist[k].mean(0), float(k_out[k].mean()))
        others["gaussian_field"] = (g_hist[k].mean(0), float(g_out[k].mean()))
        others["white_noise_fp"] = (fp_d[k], float(1.0 - fp_d[k].sum() * bw))
        others["mean_score_fp_Q0"] = (fp0_d[k], float(1.0 - fp0_d[k].sum() * bw))
        others["p(x|eps)"] = (exact, float(1.0 - exact.sum() * bw))
        others["bayes"] = (bayes, float(1.0 - bayes.sum() * bw))
        density_rows += _density_rows(
            hist[-1, k], outside[-1, k], others, bw, c.n_boot, rng, float(tau)
        )
    timings["statistics_s"] = time.perf_counter() - t0

    meta = {
        "stability_limit": eta_max,
        "limit_by_width_min": [float(v) for v in limits.min(axis=1)],
        "kernel_limit_min": float(kernel_limits.min()),
        "theory_limit": float(theory_limit),
        "lr_fraction_used": float(eta / eta_max),
        "requested_taus": [float(v) for v in req],
        "effective_dimension": d_eff,
        "theory_nodes": int(theory.n_nodes),
        "theory_rank": int(theory.rank),
        "train_loss_final": [float(tr.train_loss[-1].mean()) for tr in trajs],
        "baseline_gap": {"p(x|eps)": float(exact_gap), "bayes": float(bayes_gap)},
        "n_bayes_samples": int(nb),
        "fp_info": fp_info,
        "fp_grid": [lo, hi, int(n_cells)],
        "cache": cache_status,
        "timings": timings,
    }
    return NTKComparison(
        c, float(eta), steps, taus, net, ker, th, hist, outside, gap, k_hist, k_out, k_gap,
        g_hist, g_out, g_gap, fp_d, fp0_d, fp_gap, fp0_gap, exact, bayes, denoiser_rows,
        error_rows, gap_rows, density_rows, meta,
    )  # fmt: skip
