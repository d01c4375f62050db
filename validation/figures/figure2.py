"""The paper's Figure 2: learned 1-D distributions of linear-feature ensembles vs eps and P.

Data ``{-1, 0, 1}``, schedule ``vp-linear``, ``F = 16 x 16`` Gaussian features over
``x in [-1.5, 1.5]``, ``t in [eps, 1]``; for each ``eps`` and ``P`` an ensemble of N models is
trained on independent DSM draws and sampled with the PF-ODE (Euler, 30 steps, the denoiser
evaluated exactly at each sample). Plotted per panel: the ensemble-mean density (red), the
25-75 % band across models, the exact ``p(x|eps)`` (black) and the PF-ODE with the exact Bayes
denoiser (gray).

Each model's learned density is by default its sampler's exact push-forward of a deterministic
quantile grid (``density="transport"``, docs/math/transport.md): no sampling noise, a sixth of
the sampler's work of the paper's 10^5 Monte Carlo samples per model, and a median per-model
error far below their noise (the steepest models keep more; the error estimate is recorded);
``density="mc"`` bins ``n_samples`` random samples per model as the paper does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from gtv.numerics.checks import (
    check_choice,
    check_count,
    check_eps,
    check_field_types,
)
from gtv.numerics.features import ProductFeatures
from gtv.numerics.schedules import get_schedule
from gtv.validation.checkpoint import TaskCheckpoint
from gtv.validation.ensembles import EnsembleResult, TransportSettings, summarize_ensemble
from gtv.validation.figures.base import (
    DENSITIES,
    new_figure,
    panel_seed,
    sample_linear_panel,
    write_figure,
)
from gtv.validation.results import (
    JsonConfig,
    load_result_of_kind,
    require_finite,
    result_file,
    save_result,
)
from gtv.validation.theory_densities import exact_bayes_densities

__all__ = [
    "FIGURE2_DATA",
    "Figure2Config",
    "Figure2Result",
    "compute_figure2",
    "mixture_density",
]

FIGURE2_DATA = np.array([[-1.0], [0.0], [1.0]])
_PARTIAL = "figure2-partial"
#: Seconds between checkpoint writes: the first panel is written at once, later ones at most
#: this often (a write with its fsync costs ~40 ms; a panel ~0.2 s).
_CHECKPOINT_INTERVAL = 2.0


@dataclass(frozen=True)
class Figure2Config(JsonConfig):
    """Settings of a Figure-2 sweep (defaults: the paper's).

    ``density`` is ``"transport"`` (default: every model's PF-ODE map applied to a quantile
    grid of ``n_points`` start points, refined where a cell's chord may misplace more than
    ``transport_tolerance`` of mass across a bin, up to ``max_points`` per model, and the
    transported Gaussian mass binned exactly, docs/math/transport.md) or ``"mc"``
    (``n_samples`` random start points per model, the paper's). The exact-denoiser reference
    follows the same choice (``n_points`` grid points refined the same way, or
    ``n_bayes_samples`` samples). ``fast()`` returns a small version (fewer models, samples
    and grid points) for quick looks and tests.
    """

    eps_values: tuple[float, ...] = (1e-4, 1e-3, 1e-2)
    P_values: tuple[int, ...] = (64, 128, 256, 512, 1024)
    n_space: int = 16
    n_time: int = 16
    x_range: tuple[float, float] = (-1.5, 1.5)
    n_models: int = 100
    n_samples: int = 100_000
    density: str = "transport"
    n_points: int = 2048
    transport_tolerance: float = 1e-6
    max_points: int = 16_384
    n_steps: int = 30
    method: str = "euler"
    lookup: str = "exact"
    ridge: float = 0.1
    schedule: str = "vp-linear"
    n_bins: int = 150
    gap_distance: float = 0.25
    n_bayes_samples: int = 100_000
    seed: int = 0

    def __post_init__(self) -> None:
        check_field_types(self)
        check_choice(self.density, "density", DENSITIES)

    @classmethod
    def fast(cls, **overrides) -> Figure2Config:
        base = {
            "n_models": 20, "n_samples": 10_000, "n_points": 1024, "max_points": 4096,
            "n_bayes_samples": 20_000,
        }  # fmt: skip
        base.update(overrides)
        return cls(**base)


def _check_arrays(config: Figure2Config, arrays: dict) -> None:
    """``ValueError`` unless the arrays of a saved result fit ``config`` (shapes, finite)."""
    T = get_schedule(config.schedule).T
    for eps in config.eps_values:
        check_eps(eps, T)
    N, B = check_count(config.n_models, "n_models"), check_count(config.n_bins, "n_bins")
    n_eps, n_fine = len(config.eps_values), arrays["x_fine"].size
    shapes = {
        "edges": (B + 1,),
        "bayes_histograms": (n_eps, B),
        "x_fine": (n_fine,),
        "exact_density": (n_eps, n_fine),
    }
    for i in range(n_eps):
        for j in range(len(config.P_values)):
            shapes[f"hist_{i}_{j}"] = (N, B)
            shapes[f"gap_{i}_{j}"] = (N,)
    for name, shape in shapes.items():
        if arrays[name].shape != shape:
            raise ValueError(f"array {name!r} has shape {arrays[name].shape}, expected {shape}")
    require_finite(arrays, *shapes)


def mixture_density(data: np.ndarray, x: np.ndarray, t: float, schedule) -> np.ndarray:
    """Exact ``p(x|t)`` of the empirical data distribution in 1-D (a Gaussian mixture)."""
    a, s2 = float(schedule.alpha(t)), float(schedule.sigma2(t))
    z = (np.asarray(x)[:, None] - a * data[:, 0][None, :]) ** 2 / (2 * s2)
    return np.exp(-z).mean(axis=1) / np.sqrt(2 * np.pi * s2)


@dataclass
class Figure2Result:
    """All panels of Figure 2: ``ensembles[i][j]`` is eps_values[i] x P_values[j]."""

    config: Figure2Config
    ensembles: list[list[EnsembleResult]]
    bayes_histograms: np.ndarray  # (n_eps, n_bins): exact-denoiser PF-ODE density
    x_fine: np.ndarray
    exact_density: np.ndarray  # (n_eps, len(x_fine)): p(x|eps)
    meta: dict = field(default_factory=dict)

    @property
    def edges(self) -> np.ndarray:
        return self.ensembles[0][0].edges[0]

    def gap_table(self, seed: int | None = None) -> list[dict]:
        """Gap mass with model-level 95 % bootstrap CIs for every panel.

        Panel ``(i, j)`` resamples from ``stream(panel_seed(seed, i, j), "bootstrap")``
        (``seed`` defaults to the run's).
        """
        seed = self.config.seed if seed is None else seed
        rows = []
        for i, eps in enumerate(self.config.eps_values):
            for j, P in enumerate(self.config.P_values):
                est, lo, hi = self.ensembles[i][j].gap_mass_ci(seed=panel_seed(seed, i, j))
                F = self.config.n_space * self.config.n_time
                rows.append({"eps": eps, "P": P, "F/P": F / P, "gap": est, "lo": lo, "hi": hi})
        return rows

    def save(self, path: str | Path) -> Path:
        arrays = {
            "bayes_histograms": self.bayes_histograms,
            "x_fine": self.x_fine,
            "exact_density": self.exact_density,
            "edges": self.edges,
        }
        for i in range(len(self.config.eps_values)):
            for j in range(len(self.config.P_values)):
                arrays[f"hist_{i}_{j}"] = self.ensembles[i][j].histograms
                arrays[f"gap_{i}_{j}"] = self.ensembles[i][j].gap
        cfg = {"figure": 2, "config": self.config.to_dict(), "meta": self.meta}
        return save_result(path, arrays, cfg, kind="figure2_result")

    @classmethod
    def load(cls, path: str | Path) -> Figure2Result:
        """Read a file written by :meth:`save`; ``ValueError`` naming the file if it is corrupt,
        of another kind, or inconsistent (shapes against the configuration, non-finite arrays,
        an ``eps`` outside (0, T))."""
        arrays, cfg = load_result_of_kind(
            path, "figure2_result", "a Figure 2 result", legacy=lambda c: c.get("figure") == 2
        )
        with result_file(path, "Figure 2 result"):
            config = Figure2Config.from_dict(cfg["config"])
            _check_arrays(config, arrays)
        edges = arrays["edges"]
        ens = [
            [
                EnsembleResult(
                    arrays[f"hist_{i}_{j}"],
                    [edges],
                    arrays[f"gap_{i}_{j}"],
                    config.gap_distance,
                    {"eps": eps, "P": P},
                )
                for j, P in enumerate(config.P_values)
            ]
            for i, eps in enumerate(config.eps_values)
        ]
        return cls(
            config,
            ens,
            arrays["bayes_histograms"],
            arrays["x_fine"],
            arrays["exact_density"],
            cfg.get("meta", {}),
        )

    def plot(
        self,
        out_dir: str | Path,
        formats: tuple[str, ...] = ("png", "pdf"),
        parallel: bool = False,
    ) -> list[Path]:
        """Draw the eps x P grid of panels and save ``figure2.<fmt>`` (``parallel``: the formats
        rendered at once in forked processes, :func:`gtv.validation.results.save_figure`)."""
        from matplotlib.ticker import FixedLocator, MaxNLocator

        cfg = self.config
        nrow, ncol = len(cfg.eps_values), len(cfg.P_values)
        fig = new_figure((3.0 * ncol, 2.4 * nrow))
        axes = fig.subplots(nrow, ncol, sharex=True, squeeze=False)
        centres = (self.edges[1:] + self.edges[:-1]) / 2
        F = cfg.n_space * cfg.n_time
        for i, eps in enumerate(cfg.eps_values):
            for j, P in enumerate(cfg.P_values):
                ax = axes[i, j]
                er = self.ensembles[i][j]
                lo, hi = er.quantiles()
                mean = er.mean_density()
                ax.fill_between(
                    centres, lo, hi, color="tab:red", alpha=0.25, lw=0, label="25-75 % of models"
                )
                ax.plot(
                    self.x_fine,
                    self.exact_density[i],
                    color="black",
                    lw=0.8,
                    label=r"$p(x|\epsilon)$",
                )
                ax.plot(
                    centres,
                    self.bayes_histograms[i],
                    color="0.55",
                    lw=0.8,
                    label="PF-ODE, exact denoiser",
                )
                ax.plot(centres, mean, color="tab:red", lw=1.2, label="ensemble mean")
                top = max(np.max(mean), np.max(hi)) * 1.3
                ax.set_ylim(0, top)
                ax.set_xlim(cfg.x_range)
                if i == 0:
                    ax.set_title(f"P = {P} (F/P = {F / P:g})", fontsize=9)
                if j == 0:
                    ax.set_ylabel(rf"$\epsilon$ = {eps:g}", fontsize=9)
                # few ticks (each tick label costs milliseconds to lay out, twice per format):
                # x at the training points, three on y
                ax.xaxis.set_major_locator(FixedLocator(FIGURE2_DATA[:, 0]))
                ax.yaxis.set_major_locator(MaxNLocator(3))
                ax.tick_params(labelsize=7)
        axes[0, 0].legend(fontsize=6, loc="upper left")
        how = (
            f"transported grid of {cfg.n_points} points refined up to {cfg.max_points} each"
            if cfg.density == "transport"
            else f"{cfg.n_samples} samples each"
        )
        fig.suptitle(
            f"Learned distributions of {cfg.n_models} linear models "
            f"(F = {cfg.n_space}x{cfg.n_time} Gaussian, {how})",
            fontsize=10,
        )
        # fixed margins (tight_layout measured every tick label of every panel: ~1 s)
        fig.subplots_adjust(left=0.05, right=0.99, bottom=0.06, top=0.9, wspace=0.22, hspace=0.2)
        return write_figure(fig, out_dir, "figure2", formats, dpi=150, parallel=parallel)


def _bin_width(cfg: Figure2Config) -> float:
    """The width of a histogram bin: the scale the transport refinement resolves."""
    return (cfg.x_range[1] - cfg.x_range[0]) / cfg.n_bins


def _transport_settings(cfg: Figure2Config) -> TransportSettings:
    """The transport of Figure 2's densities (checked: grid sizes and tolerance)."""
    return TransportSettings(cfg.n_points, cfg.transport_tolerance, cfg.max_points)


def _bayes_reference(
    cfg: Figure2Config, eps: float, sched, edges: np.ndarray, row: int
) -> tuple[np.ndarray, float]:
    """Density of the PF-ODE with the exact denoiser on ``edges`` (and its transport error)."""
    d = exact_bayes_densities(
        FIGURE2_DATA, edges, eps, sched, cfg.gap_distance, density=cfg.density,
        n_samples=cfg.n_bayes_samples, transport=_transport_settings(cfg), n_steps=cfg.n_steps,
        method=cfg.method, seed=panel_seed(cfg.seed, row),
    )  # fmt: skip
    return d.histograms[0], 0.0 if d.error is None else float(d.error[0])


def compute_figure2(
    config: Figure2Config | None = None,
    progress: bool = True,
    checkpoint: str | Path | None = None,
) -> Figure2Result:
    """Train, sample and summarize every (eps, P) ensemble of Figure 2.

    Panel ``(i, j)`` (eps_values[i], P_values[j]) has the seed
    ``s_ij = stream(seed, "panel", i, j)`` (:func:`gtv.validation.figures.base.panel_seed`): its
    model ``n`` trains on ``stream(s_ij, "training").spawn(N)[n]``. With ``density="transport"``
    (default) nothing else is random: every model and the exact-denoiser reference carry the
    same quantile grid of ``n_points`` start points, and ``result.meta["transport_error_tv"]``
    holds each panel's largest per-model error estimate (the reference's in the last column).
    With ``density="mc"`` model ``n`` samples from ``stream(s_ij, "sampling").spawn(N)[n]`` and
    the reference of row ``i`` from ``stream(stream(seed, "panel", i), "bayes-sampling")``.

    Parameters
    ----------
    config : Figure2Config, optional
        Default: the paper's settings.
    progress : bool, default True
        Show a progress bar over the panels and references.
    checkpoint : path, optional
        Resume file (:class:`gtv.validation.checkpoint.TaskCheckpoint`, kind
        ``"figure2-partial"``): the summary of every finished panel (per-model histograms and
        gap masses) and reference (its histogram) is written atomically, and read at the start,
        so an interrupted run continues where it stopped and -- every panel drawing from its own
        streams -- gives the same numbers as an uninterrupted one. A checkpoint of another
        configuration raises ``ValueError``; a damaged one is reported in one warning line and
        ignored. Removed when the run completes.
    """
    cfg = config or Figure2Config()
    sched = get_schedule(cfg.schedule)
    edges = np.linspace(cfg.x_range[0], cfg.x_range[1], cfg.n_bins + 1)
    x_fine = np.linspace(cfg.x_range[0], cfg.x_range[1], 2001)
    n_eps, n_P = len(cfg.eps_values), len(cfg.P_values)
    N, B = check_count(cfg.n_models, "n_models"), check_count(cfg.n_bins, "n_bins")
    transport = cfg.density == "transport"
    if transport:
        n_per_model = _transport_settings(cfg).n_points
    else:
        n_per_model = check_count(cfg.n_samples, "n_samples")
        check_count(cfg.n_bayes_samples, "n_bayes_samples")
    # Tasks (i, j < n_P): panel (i, j); task (i, n_P): the exact-denoiser reference of row i.
    ckpt = TaskCheckpoint(
        checkpoint,
        _PARTIAL,
        cfg.to_dict(),
        {
            "hist": np.zeros((n_eps, n_P, N, B)),
            "gap": np.zeros((n_eps, n_P, N)),
            "bayes": np.zeros((n_eps, B)),
            "error": np.zeros((n_eps, n_P + 1)),
        },
        (n_eps, n_P + 1),
        min_interval=_CHECKPOINT_INTERVAL,
    )
    done, out = ckpt.done, ckpt.arrays
    exact = np.empty((n_eps, x_fine.size))
    bar = tqdm(total=done.size, desc="figure 2", disable=not progress, leave=False)
    bar.update(ckpt.resumed)
    try:
        for i, eps in enumerate(cfg.eps_values):
            feats = ProductFeatures.uniform(
                "gaussian", 1, cfg.n_space, cfg.n_time, (eps, sched.T), cfg.x_range
            )
            for j, P in enumerate(cfg.P_values):
                if done[i, j]:
                    continue
                samples, _ = sample_linear_panel(
                    FIGURE2_DATA, feats, cfg.n_models, P, eps, sched, ridge=cfg.ridge,
                    n_samples=n_per_model, n_steps=cfg.n_steps, method=cfg.method,
                    lookup=cfg.lookup, seed=panel_seed(cfg.seed, i, j), density=cfg.density,
                    resolution=_bin_width(cfg), tolerance=cfg.transport_tolerance,
                    max_points=cfg.max_points,
                )  # fmt: skip
                summary = summarize_ensemble(samples, FIGURE2_DATA, [edges], cfg.gap_distance)
                del samples
                out["hist"][i, j], out["gap"][i, j] = summary.histograms, summary.gap
                out["error"][i, j] = summary.config.get("transport_error_tv", 0.0)
                ckpt.mark_done((i, j))
                bar.update()
            if not done[i, n_P]:
                out["bayes"][i], out["error"][i, n_P] = _bayes_reference(cfg, eps, sched, edges, i)
                ckpt.mark_done((i, n_P))
                bar.update()
            exact[i] = mixture_density(FIGURE2_DATA, x_fine, eps, sched)
    except BaseException:
        ckpt.flush()  # keep every finished panel (Ctrl-C, an error)
        raise
    bar.close()
    ensembles = [
        [
            EnsembleResult(
                out["hist"][i, j],
                [edges],
                out["gap"][i, j],
                float(cfg.gap_distance),
                {"eps": eps, "P": P, "seed": cfg.seed, "panel": [i, j]},
            )
            for j, P in enumerate(cfg.P_values)
        ]
        for i, eps in enumerate(cfg.eps_values)
    ]
    meta = {}
    if transport:
        # largest per-model error estimate (TV, grid vs every other point) of each panel; the
        # last column is the exact-denoiser reference (docs/math/transport.md)
        meta["transport_error_tv"] = out["error"].tolist()
    result = Figure2Result(cfg, ensembles, out["bayes"], x_fine, exact, meta)
    ckpt.finish()
    return result
