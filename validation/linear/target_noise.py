"""Does the DSM target's noise matter? Noisy vs exact targets, side by side (docs/math/linear.md).

:func:`compare_targets` trains two linear-feature ensembles on ``{-1, 0, 1}`` that differ only in
the regression target (:func:`gtv.numerics.linear.train_linear_ensemble`): the noisy DSM target
``x0`` and the exact target ``mu_bar(x, t) = E[x0 | x, t]`` (the posterior mean over the
training points). Both use the same random streams, so model ``n`` has the *same* design points
``(x_j, t_j)``, weights and ridge under both targets, and both are sampled by the same PF-ODE
sampler from the same start points. The comparison is therefore paired, model by model:

1. **gap mass** (fraction of samples farther than ``gap_distance`` from every training point)
   of each ensemble with a model-level BCa bootstrap CI, the per-model paired difference
   ``gap_noisy[n] - gap_exact[n]`` with a BCa CI of its mean, and the *share of the gap filling
   due to the target's noise* ``(G_noisy - G_exact) / (G_noisy - G_bayes)`` (``G_bayes``: the gap
   mass of the exact-Bayes denoiser under the same sampler, the sampler's own baseline) with a
   paired percentile bootstrap CI (models resampled jointly);
2. **densities**: total variation and Hellinger distance between the two ensemble-mean
   histograms (the mass outside the grid is one more bin) with a paired model-level bootstrap
   CI, against the half-vs-half noise floor of each ensemble (mean over ``n_splits`` random
   splits). Two unrelated ensembles of N models with the same [q] would differ by about
   ``floor / sqrt 2``; the pairing makes the two ensembles positively correlated, so under
   "the noise does not matter" the distance is expected below that;
3. **denoiser variance** at query points ``(x, t)``: ``Var D^`` of each ensemble (percentile
   bootstrap CIs) next to the first-order predictions, total (noisy target,
   :class:`gtv.numerics.linear.FirstOrderLinear`) and misfit only (exact target,
   :class:`gtv.numerics.linear.exact_target.ExactTargetLinear`).

Per-model densities (``TargetNoiseConfig.density``): by default both ensembles and the
exact-Bayes baseline are **transported** -- every model carries the same deterministic quantile
grid through its PF-ODE map (refined per model where needed) and the Gaussian mass is binned
exactly (:func:`gtv.validation.linear.densities.linear_ensemble_densities`,
:func:`gtv.validation.theory_densities.exact_bayes_densities`, docs/math/transport.md): no
sampling noise in either, and the error estimates in ``meta["transport_error_tv"]``;
``density="mc"`` bins ``n_samples`` PF-ODE samples per model (``n_bayes_samples`` for the
baseline).

Streams (:mod:`gtv.numerics.streams`): both ensembles train on ``stream(seed, "training")`` and,
with ``density="mc"``, sample from ``stream(seed, "sampling")`` (per-model children); the
exact-Bayes baseline then uses ``stream(seed, "bayes-sampling")``; BCa intervals
``stream(seed, "bootstrap")``; the resampling tables (variance intervals, then the paired model
resamples, then the half-vs-half splits) ``stream(seed, "bootstrap", 1)``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gtv.numerics.checks import check_field_types
from gtv.numerics.features import ProductFeatures
from gtv.numerics.linear import FirstOrderLinear, linear_model_theory, train_linear_ensemble
from gtv.numerics.linear.exact_target import ExactTargetLinear
from gtv.numerics.schedules import get_schedule
from gtv.validation.ensembles import DensityOptions
from gtv.validation.figures.figure2 import FIGURE2_DATA
from gtv.validation.linear.densities import linear_ensemble_densities
from gtv.validation.results import JsonConfig, load_result_of_kind, result_file, save_result
from gtv.validation.stats import (
    DISTANCES,
    bootstrap_ci,
    interval_masses,
    resampling_rng,
    variance_ci,
)
from gtv.validation.theory_densities import exact_bayes_densities

__all__ = [
    "TargetNoiseComparison",
    "TargetNoiseConfig",
    "compare_targets",
    "format_target_noise_summary",
]

TARGET_NAMES = ("noisy", "exact")


def _check_int(name: str, v: object, minimum: int) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {v!r}")


@dataclass(frozen=True)
class TargetNoiseConfig(DensityOptions, JsonConfig):
    """One configuration of the noisy-vs-exact comparison (defaults: eps = 1e-2, F = 8 x 8,
    P = 64, i.e. F/P = 1; N = 1000 models).

    ``density`` is ``"transport"`` (default: both ensembles and the exact-Bayes baseline carry
    the transport grid of ``n_points`` start points, refined up to ``max_points`` per model, and
    the Gaussian mass is binned exactly; docs/math/transport.md) or ``"mc"`` (``n_samples``
    Monte Carlo samples per model, ``n_bayes_samples`` for the baseline). ``n_samples`` and
    ``n_bayes_samples`` are used with ``"mc"`` only; ``n_points``, ``transport_tolerance`` and
    ``max_points`` with ``"transport"`` only.
    """

    eps: float = 1e-2
    P: int = 64
    n_space: int = 8
    n_time: int = 8
    n_models: int = 1000
    n_samples: int = 5000
    seed: int = 0
    x_range: tuple[float, float] = (-1.5, 1.5)
    hist_range: tuple[float, float] = (-2.0, 2.0)
    n_bins: int = 160
    gap_distance: float = 0.25
    query_x: tuple[float, ...] = (-1.0, -0.5, 0.0, 0.5, 1.0)
    query_t: tuple[float, ...] = (0.02, 0.1, 0.5)
    ridge: float = 0.1
    schedule: str = "vp-linear"
    n_steps: int = 30
    method: str = "euler"
    n_boot: int = 1000
    n_splits: int = 20
    n_bayes_samples: int | None = None
    #: Per-model densities: "transport" (transported quantile grid) or "mc" (Monte Carlo).
    density: str = "transport"
    #: Start points per model of the transport grid (density="transport").
    n_points: int = 2048
    #: Largest mass a grid cell's chord may misplace before the cell is refined.
    transport_tolerance: float = 1e-6
    #: Most grid points per model after refinement (>= n_points).
    max_points: int = 16_384

    def __post_init__(self) -> None:
        check_field_types(self)
        self.check_density()
        for name in ("P", "n_space", "n_time", "n_samples", "n_bins", "n_steps", "n_splits"):
            _check_int(name, getattr(self, name), 1)
        _check_int("n_models", self.n_models, 4)
        _check_int("n_boot", self.n_boot, 10)
        if self.n_bayes_samples is not None:
            _check_int("n_bayes_samples", self.n_bayes_samples, 1)
        sched = get_schedule(self.schedule)
        if not (np.isfinite(self.eps) and 0 < self.eps < sched.T):
            raise ValueError(f"eps must lie in (0, T) = (0, {sched.T:g}), got {self.eps!r}")
        if not (self.hist_range[0] < self.hist_range[1]):
            raise ValueError(f"hist_range must be (lo, hi) with lo < hi, got {self.hist_range}")
        if not (self.x_range[0] < self.x_range[1]):
            raise ValueError(f"x_range must be (lo, hi) with lo < hi, got {self.x_range}")
        for name in ("query_x", "query_t"):
            v = np.asarray(getattr(self, name), dtype=float)
            if v.ndim != 1 or v.size == 0 or not np.all(np.isfinite(v)):
                raise ValueError(f"{name} must be a non-empty sequence of finite numbers")
        if not (np.isfinite(self.gap_distance) and self.gap_distance > 0):
            raise ValueError(f"gap_distance must be > 0, got {self.gap_distance!r}")
        if not (np.isfinite(self.ridge) and self.ridge >= 0):
            raise ValueError(f"ridge must be >= 0, got {self.ridge!r}")
        if self.method not in ("euler", "heun"):
            raise ValueError(f"method must be 'euler' or 'heun', got {self.method!r}")

    @property
    def n_features(self) -> int:
        return self.n_space * self.n_time


# -- result ---------------------------------------------------------------------------------------
@dataclass
class TargetNoiseComparison:
    """Result of :func:`compare_targets` (one configuration).

    Attributes
    ----------
    config : TargetNoiseConfig
    gap : dict of ndarray (N,)
        Per-model gap mass, ``{"noisy": ..., "exact": ...}`` (model ``n`` of both: same design
        points, same start points).
    histograms : dict of ndarray (N, B)
        Per-model histograms on ``edges``.
    outside : dict of ndarray (N,)
        Per-model mass outside the histogram range.
    gap_rows : list of dict
        name, estimate, lo, hi: the two ensembles, the paired difference, the exact-Bayes
        baseline (lo = hi = estimate) and the share of the gap filling due to the noise.
    density : dict
        ``tv``, ``tv_lo``, ``tv_hi``, ``hellinger``, ... between the two ensemble means, and the
        half-vs-half floors ``floor_<target>_<distance>`` (means over splits).
    denoiser_rows : list of dict
        x, t, var_<target> (with _lo, _hi), var_pred_total, var_pred_misfit.
    meta : dict
        Timings.
    """

    config: TargetNoiseConfig
    gap: dict
    histograms: dict
    outside: dict
    gap_rows: list
    density: dict
    denoiser_rows: list
    meta: dict = field(default_factory=dict)

    @property
    def edges(self) -> np.ndarray:
        c = self.config
        return np.linspace(c.hist_range[0], c.hist_range[1], c.n_bins + 1)

    def gap_row(self, name: str) -> dict:
        """The gap-mass row ``name`` ("noisy", "exact", "difference", "exact_bayes_pfode",
        "noise_share")."""
        for r in self.gap_rows:
            if r["name"] == name:
                return r
        raise KeyError(name)

    def summary(self) -> dict:
        """JSON-safe summary (config, rows, distances, timings)."""
        return {
            "kind": "target_noise_comparison",
            "config": self.config.to_dict(),
            "gap_rows": self.gap_rows,
            "density": self.density,
            "denoiser_rows": self.denoiser_rows,
            "meta": self.meta,
        }

    def format_table(self) -> str:
        c = self.config
        d = self.density
        lines = [
            f"== noisy vs exact target: eps={c.eps:g}  P={c.P}  F={c.n_space}x{c.n_time} "
            f"(F/P={c.n_features / c.P:.3g})  N={c.n_models} models x {c.density_label()}  "
            f"seed={c.seed} ==",
            f"gap mass (distance > {c.gap_distance:g} from every training point; 95 % model-level "
            "bootstrap CI, paired over models)",
        ]
        for r in self.gap_rows:
            ci = f"[{r['lo']:+.4f}, {r['hi']:+.4f}]" if r["lo"] != r["hi"] else ""
            lines.append(f"{r['name']:>22} | {r['estimate']:+.4f} {ci}")
        lines.append(
            "ensemble-mean densities, noisy vs exact (paired 95 % model-bootstrap CI) and the "
            "half-vs-half floors"
        )
        for dn in DISTANCES:
            lines.append(
                f"{dn:>22} | {d[dn]:.4f} [{d[dn + '_lo']:.4f}, {d[dn + '_hi']:.4f}]   floor "
                f"noisy {d['floor_noisy_' + dn]:.4f}, exact {d['floor_exact_' + dn]:.4f}"
            )
        lines.append(
            "Var D^(x,t) across models [95 % CI] vs first order: total (noisy target), "
            "misfit only (exact target)"
        )
        lines.append(
            f"{'x':>6} {'t':>6} | {'noisy [CI]':>33} {'pred total':>10} | "
            f"{'exact [CI]':>33} {'pred misfit':>11} | {'exact/noisy':>11}"
        )
        for r in self.denoiser_rows:
            lines.append(
                f"{r['x']:>6.2f} {r['t']:>6.3f} | {r['var_noisy']:>10.3e} "
                f"[{r['var_noisy_lo']:.3e},{r['var_noisy_hi']:.3e}] {r['var_pred_total']:>10.3e}"
                f" | {r['var_exact']:>10.3e} [{r['var_exact_lo']:.3e},{r['var_exact_hi']:.3e}] "
                f"{r['var_pred_misfit']:>11.3e} | {r['var_exact'] / r['var_noisy']:>11.3f}"
            )
        return "\n".join(lines)

    def save(self, path: str | Path) -> tuple[Path, Path]:
        """``path.npz`` (per-model arrays + summary) and ``path.json`` (the summary)."""
        path = Path(path)
        stem = path.with_suffix("") if path.suffix == ".npz" else path
        arrays = {}
        for tg in TARGET_NAMES:
            arrays[f"gap_{tg}"] = self.gap[tg]
            arrays[f"histograms_{tg}"] = self.histograms[tg]
            arrays[f"outside_{tg}"] = self.outside[tg]
        summary = self.summary()
        npz = save_result(stem, arrays, summary)
        js = Path(str(stem) + ".json")
        js.write_text(json.dumps(summary, indent=1, sort_keys=True))
        return npz, js

    @classmethod
    def load(cls, path: str | Path) -> TargetNoiseComparison:
        """Read a file written by :meth:`save`. A result saved before transported densities
        existed (its configuration has no ``density``) was made by Monte Carlo and loads as
        ``density="mc"``."""
        a, s = load_result_of_kind(path, "target_noise_comparison", "a TargetNoiseComparison")
        with result_file(path, "TargetNoiseComparison"):
            return cls(
                TargetNoiseConfig.from_dict({"density": "mc", **s["config"]}),
                {tg: a[f"gap_{tg}"] for tg in TARGET_NAMES},
                {tg: a[f"histograms_{tg}"] for tg in TARGET_NAMES},
                {tg: a[f"outside_{tg}"] for tg in TARGET_NAMES},
                s["gap_rows"],
                s["density"],
                s["denoiser_rows"],
                s.get("meta", {}),
            )


# -- computation ----------------------------------------------------------------------------------
def _mean_masses(hist, outside, width, idx=None):
    """Bin masses (+ outside) of the ensemble-mean histogram, optionally of resamples ``idx``."""
    if idx is None:
        return interval_masses(hist.mean(axis=0), width, outside.mean())
    return interval_masses(hist[idx].mean(axis=-2), width, outside[idx].mean(axis=-1))


def compare_targets(
    config: TargetNoiseConfig | None = None, progress: bool = False
) -> TargetNoiseComparison:
    """Train, sample and compare the noisy-target and exact-target ensembles (module docstring).

    Parameters
    ----------
    config : TargetNoiseConfig, optional
    progress : bool
        Progress bars while training.
    """
    c = config or TargetNoiseConfig()
    sched = get_schedule(c.schedule)
    feats = ProductFeatures.uniform("gaussian", 1, c.n_space, c.n_time, (c.eps, sched.T), c.x_range)
    edges = np.linspace(c.hist_range[0], c.hist_range[1], c.n_bins + 1)
    width = float(edges[1] - edges[0])
    timings: dict = {}
    transport = c.density_settings()
    ens, gap, hist, outside, learned = {}, {}, {}, {}, {}
    for tg in TARGET_NAMES:
        t0 = time.perf_counter()
        ens[tg] = train_linear_ensemble(
            FIGURE2_DATA, feats, c.n_models, c.P, c.eps, sched, ridge=c.ridge, seed=c.seed,
            keep_normal_equations=False, progress=progress, target=tg,
        )  # fmt: skip
        timings[f"train_{tg}_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        learned[tg] = linear_ensemble_densities(
            ens[tg], edges, c.gap_distance, density=c.density, n_samples=c.n_samples,
            transport=transport, n_steps=c.n_steps, method=c.method, seed=c.seed,
        )  # fmt: skip
        d = learned[tg]
        hist[tg], outside[tg], gap[tg] = d.histograms, d.outside, d.gap
        timings[f"sample_{tg}_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    nb = (
        c.n_bayes_samples if c.n_bayes_samples is not None else min(c.n_models * c.n_samples, 10**6)
    )
    learned["bayes"] = exact_bayes_densities(
        FIGURE2_DATA, edges, c.eps, sched, c.gap_distance, density=c.density, n_samples=nb,
        transport=transport, n_steps=c.n_steps, method=c.method, seed=c.seed,
    )  # fmt: skip
    bayes_gap = float(learned["bayes"].gap[0])
    timings["bayes_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    population = linear_model_theory(FIGURE2_DATA, feats, c.eps, sched, ridge=c.ridge)
    theories = {
        "total": FirstOrderLinear(population, c.P),
        "misfit": ExactTargetLinear(population, c.P),
    }
    timings["theory_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    rng = resampling_rng(c.seed)
    # 3. denoiser variance at the query points
    rows = []
    qx = np.asarray(c.query_x, dtype=float)
    for t in c.query_t:
        if not (c.eps <= t <= sched.T):
            continue
        row_t = [{"x": float(x), "t": float(t)} for x in qx]
        for tg in TARGET_NAMES:
            v, lo, hi = variance_ci(ens[tg].denoise(qx[:, None], t)[:, :, 0], c.n_boot, rng)
            for k, r in enumerate(row_t):
                r.update({f"var_{tg}": float(v[k]), f"var_{tg}_lo": float(lo[k])})
                r[f"var_{tg}_hi"] = float(hi[k])
        for part, th in theories.items():
            pv = th.denoiser_covariance((qx, t), paired=True)[:, 0, 0]
            for k, r in enumerate(row_t):
                r[f"var_pred_{part}"] = float(pv[k])
        rows.extend(row_t)

    # 1. gap mass: each ensemble, the paired difference, the share due to the noise
    n = c.n_models
    gap_rows = []
    diff = gap["noisy"] - gap["exact"]
    for name, vals in (("noisy", gap["noisy"]), ("exact", gap["exact"]), ("difference", diff)):
        est, lo, hi = bootstrap_ci(vals, n_resamples=c.n_boot, seed=c.seed)
        gap_rows.append({"name": name, "estimate": est, "lo": lo, "hi": hi})
    gap_rows.append({"name": "exact_bayes_pfode", "estimate": bayes_gap, "lo": bayes_gap})
    gap_rows[-1]["hi"] = bayes_gap
    idx = rng.integers(0, n, (c.n_boot, n))

    def share(g_noisy: np.ndarray, g_exact: np.ndarray) -> np.ndarray:
        gn, ge = g_noisy.mean(axis=-1), g_exact.mean(axis=-1)
        return (gn - ge) / (gn - bayes_gap)

    # The share is defined only when the noisy ensemble fills the gap beyond the baseline.
    if gap["noisy"].mean() > bayes_gap:
        boot = share(gap["noisy"][idx], gap["exact"][idx])
        lo, hi = np.quantile(boot, [0.025, 0.975])
        est = float(share(gap["noisy"], gap["exact"]))
        gap_rows.append({"name": "noise_share", "estimate": est, "lo": float(lo), "hi": float(hi)})

    # 2. densities: paired bootstrap of the distance, half-vs-half floors
    p_noisy = _mean_masses(hist["noisy"], outside["noisy"], width)
    p_exact = _mean_masses(hist["exact"], outside["exact"], width)
    density: dict = {}
    boot_n = np.empty((c.n_boot, c.n_bins + 1))
    boot_e = np.empty_like(boot_n)
    for b0 in range(0, c.n_boot, 100):
        sl = idx[b0 : b0 + 100]
        boot_n[b0 : b0 + 100] = _mean_masses(hist["noisy"], outside["noisy"], width, sl)
        boot_e[b0 : b0 + 100] = _mean_masses(hist["exact"], outside["exact"], width, sl)
    for dn, fn in DISTANCES.items():
        lo, hi = np.quantile(fn(boot_n, boot_e), [0.025, 0.975])
        density.update({dn: float(fn(p_noisy, p_exact)), f"{dn}_lo": float(lo)})
        density[f"{dn}_hi"] = float(hi)
    for tg in TARGET_NAMES:
        splits = {dn: [] for dn in DISTANCES}
        for _ in range(c.n_splits):
            perm = rng.permutation(n)
            a, b = perm[: n // 2], perm[n // 2 : 2 * (n // 2)]
            pa = _mean_masses(hist[tg][a], outside[tg][a], width)
            pb = _mean_masses(hist[tg][b], outside[tg][b], width)
            for dn, fn in DISTANCES.items():
                splits[dn].append(float(fn(pa, pb)))
        for dn in DISTANCES:
            density[f"floor_{tg}_{dn}"] = float(np.mean(splits[dn]))
            density[f"floor_{tg}_{dn}_splits"] = splits[dn]
    timings["statistics_s"] = time.perf_counter() - t0
    meta: dict = {"timings": timings}
    if transport is None:
        meta["n_bayes_samples"] = int(nb)
    else:
        meta["transport_error_tv"] = {k: float(v.error.max()) for k, v in learned.items()}
        meta["transport_points"] = {k: float(v.points.mean()) for k, v in learned.items()}
    return TargetNoiseComparison(c, gap, hist, outside, gap_rows, density, rows, meta)


def format_target_noise_summary(results: list[TargetNoiseComparison]) -> str:
    """One row per configuration: gap masses with CIs, the paired difference, the share of the
    gap filling due to the noise, and TV(noisy, exact) against the half-vs-half floors."""

    def ci(r: dict, fmt: str = ".4f") -> str:
        return f"{r['estimate']:{fmt}} [{r['lo']:{fmt}}, {r['hi']:{fmt}}]"

    head = (
        "| eps | F/P | P | N x density | gap noisy [CI] | gap exact [CI] | noisy - exact [CI] "
        "| exact-Bayes | noise share [CI] | TV(noisy, exact) [CI] | floor noisy / exact |"
    )
    lines = [head, "|" + "---|" * 11]
    for res in results:
        c, d = res.config, res.density
        names = {r["name"] for r in res.gap_rows}
        share = ci(res.gap_row("noise_share"), "+.2f") if "noise_share" in names else "n/a"
        lines.append(
            f"| {c.eps:g} | {c.n_features / c.P:.3g} | {c.P} | "
            f"{c.n_models} x {c.density_label()} | "
            f"{ci(res.gap_row('noisy'))} | {ci(res.gap_row('exact'))} | "
            f"{ci(res.gap_row('difference'), '+.4f')} | "
            f"{res.gap_row('exact_bayes_pfode')['estimate']:.4f} | {share} | "
            f"{d['tv']:.4f} [{d['tv_lo']:.4f}, {d['tv_hi']:.4f}] | "
            f"{d['floor_noisy_tv']:.4f} / {d['floor_exact_tv']:.4f} |"
        )
    return "\n".join(lines)
