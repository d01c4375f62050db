"""The paper's Figure 3: which gaps a 2-D ensemble fills depends on features and orientation.

Data: four points on the unit circle at angles ``rotation + k pi/2`` (k = 0..3) for the rotations
``0, pi/8, pi/4``; at ``pi/4`` they are the corners ``(+-1/sqrt 2, +-1/sqrt 2)`` of a square with
axis-aligned sides. For each feature kind (Gaussian bumps, Fourier modes; ``F = 10 x 10 x 10``
crossed features over ``x, y in [-1.5, 1.5]`` and ``t in [eps, T]``) and each rotation, an
ensemble of N linear models is trained on independent DSM draws (P = 500, ridge 0.1,
``vp-linear``, ``eps = 0.01``) and every model is sampled with the PF-ODE (Euler, 30 steps, the
denoiser evaluated exactly at each sample). Layout: rows = feature kind, columns = rotation.

Start points
------------
By default (``density="transport"``) every model's sampler starts from its own scrambled Sobol'
set of ``n_points`` points of ``N(0, sigma_T**2 I)`` (randomized quasi-Monte Carlo,
:func:`gtv.numerics.transport.qmc_start_points`, docs/math/transport.md): per-model densities
stay unbiased and independent across models, and 2**12-2**16 of them per model are as accurate
as 1.9-3.7 times as many random start points (measured by
:func:`gtv.validation.figures.figure3_density.measure_start_sets`, docs/math/transport.md: the
default 2**16 beat the paper's 1e5 random points on every measure). ``density="mc"`` draws
``n_samples`` random start points per model, as the paper does. The exact-Bayes baseline follows
the same choice: one scrambled Sobol' set of ``n_bayes_samples`` rounded up to a power of 2
(``density="transport"``) or ``n_bayes_samples`` random start points (``density="mc"``).

What is plotted
---------------
By default each panel is the **joint** density ``[q](x, y)``: the ensemble mean of the per-model
2-D density histograms (counts / (samples x bin area)), on one colour scale shared by all
panels (logarithmic by default, because the mass at the training points is orders of magnitude
denser than the generalized mass between them). Training points are drawn at their true
positions, x to the right and y up.

``plot(..., paper_normalization=True)`` instead reproduces the normalization of the paper's own
code (``get_prob_from_samples`` in the authors' repository): for **each model** and **each x bin
(image column)** the counts are divided by that column's sum over y, i.e. every model's histogram
is turned into the conditional ``p(y | x in bin)``; these are then averaged over models (columns
that are empty in a model contribute zero). This is not the joint density: every column is
rescaled to unit mass, so columns that carry almost no probability (between the training points,
near the edges of the box) are drawn as bright as the columns through the training points, and
low-mass structure is exaggerated -- most for the x bins with the least mass. The comparison
across columns (and the "shape" of a panel) therefore says nothing about where the ensemble
puts its mass along x. (The normalization divides by column sums, not column maxima. The
paper's helper sums over its array's first bin axis, which with its bin layout is y; whether
that was meant as a full normalization we cannot tell, but it is what produced the figure.) We
draw the paper-normalized image in the same true orientation as the joint density, points at
their true positions; the paper's own image orientation (its array is indexed ``[y bin, x bin]``
and shown as an image) is not reproduced.

Quantitative check (the issue's acceptance test)
------------------------------------------------
:func:`segment_vs_diagonal_mass` measures, per model, the probability **density** (mass / area)
in a band of half-width ``delta`` around the four sides of the square (the segments joining
neighbouring points) and in the same band around its two diagonals (the segments joining
opposite points, through the centre), both outside discs of radius ``point_radius`` around the
points. The model-level statistic is the per-model difference of the two densities, with a
model-level bootstrap CI. The paper's picture predicts a positive difference for Gaussian
features (the square's sides fill in) and a negative one for Fourier features (a cross through
the centre fills in).

What we found (rotation pi/4 unless stated; densities, 95 % model-level CIs; the paper's 1e5
random start points per model, ``density="mc"``):

* Fourier: a strong diagonal/centre excess at every rotation, e.g. -0.25 [-0.28, -0.22]
  (100 models, Euler-30); it survives, and grows, with an accurate integrator (Heun, 300
  steps: -0.40 [-0.44, -0.37]). This part of the paper's picture is a property of the ensemble.
* Gaussian: a small side excess with the paper's sampler, +0.053 [+0.033, +0.072] (100 models,
  Euler-30), not significant at rotations 0 and pi/8. But the paper's sampler alone produces
  such an excess: with the exact (memorizing) Bayes denoiser, Euler-30 leaves ~5 % of the
  samples stalled between neighbouring points, a side-minus-diagonal density of about +0.055,
  while Heun-30 or finer grids leave < 1 % (as p(x|eps) does). With Heun-300 the Gaussian
  ensemble's difference is +0.008 [-0.021, +0.034]. The Gaussian "square" is therefore mostly
  Euler-30 discretization error, not generalization; the summary table prints the Bayes
  baseline next to every panel for this reason, and the figure title names the sampler.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from gtv.numerics.checks import check_choice, check_eps, check_field_types
from gtv.numerics.exact import sample_exact_denoiser
from gtv.numerics.features import FEATURE_KINDS, ProductFeatures
from gtv.numerics.pfode import METHODS
from gtv.numerics.schedules import get_schedule
from gtv.numerics.transport import qmc_start_points
from gtv.validation.checkpoint import TaskCheckpoint
from gtv.validation.ensembles import EnsembleResult, summarize_ensemble
from gtv.validation.figures.bands import (
    SegmentDiagonalMass,
    paper_normalized_density,
    segment_vs_diagonal_mass,
    square_data,
)
from gtv.validation.figures.base import DENSITIES, panel_seed, sample_linear_panel
from gtv.validation.results import (
    JsonConfig,
    load_cache_entry,
    load_result_of_kind,
    require_finite,
    result_file,
    save_result,
)

__all__ = [
    "FIGURE3_KINDS",
    "FIGURE3_ROTATIONS",
    "Figure3Config",
    "Figure3Result",
    "compute_figure3",
    "rotation_label",
]

FIGURE3_ROTATIONS = (0.0, math.pi / 8, math.pi / 4)
FIGURE3_KINDS = ("gaussian", "fourier")
_PARTIAL = "figure3-partial"
_TIMINGS = ("train", "sample", "summarize")


# -- configuration and result ---------------------------------------------------------------------
@dataclass(frozen=True)
class Figure3Config(JsonConfig):
    """Settings of Figure 3 (defaults: the paper's, except the start points).

    ``density`` is ``"transport"`` (default: each model's sampler starts from its own scrambled
    Sobol' set of ``n_points`` points, a power of 2; randomized quasi-Monte Carlo,
    docs/math/transport.md) or ``"mc"`` (``n_samples`` random start points per model, the
    paper's). ``fast()`` returns a small version (20 models x 4096 Sobol' points, or 5000
    samples with ``density="mc"``) for quick looks and tests. ``delta`` and ``point_radius``
    define the side/diagonal bands of :func:`segment_vs_diagonal_mass`; ``point_radius`` is
    also the gap-mass distance.
    """

    rotations: tuple[float, ...] = FIGURE3_ROTATIONS
    kinds: tuple[str, ...] = FIGURE3_KINDS
    n_space: int = 10
    n_time: int = 10
    x_range: tuple[float, float] = (-1.5, 1.5)
    eps: float = 0.01
    P: int = 500
    n_models: int = 100
    n_samples: int = 100_000
    density: str = "transport"
    n_points: int = 65_536
    n_steps: int = 30
    method: str = "euler"
    lookup: str = "exact"
    ridge: float = 0.1
    schedule: str = "vp-linear"
    n_bins: int = 120
    delta: float = 0.1
    point_radius: float = 0.2
    n_bayes_samples: int = 100_000
    seed: int = 0

    def __post_init__(self) -> None:
        check_field_types(self)
        object.__setattr__(self, "rotations", tuple(float(r) for r in self.rotations))
        object.__setattr__(self, "kinds", tuple(self.kinds))
        object.__setattr__(self, "x_range", tuple(float(v) for v in self.x_range))
        if not self.rotations or not all(math.isfinite(r) for r in self.rotations):
            raise ValueError(
                f"rotations must be a non-empty sequence of finite angles, got {self.rotations}"
            )
        if not self.kinds or any(k not in FEATURE_KINDS for k in self.kinds):
            raise ValueError(
                f"kinds must be a non-empty subset of {FEATURE_KINDS}, got {self.kinds}"
            )
        for name in (
            "n_space",
            "n_time",
            "P",
            "n_models",
            "n_samples",
            "n_steps",
            "n_bins",
            "n_bayes_samples",
        ):
            v = getattr(self, name)
            lowest = 2 if name == "n_models" else 1
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lowest:
                raise ValueError(f"{name} must be an integer >= {lowest}, got {v!r}")
        check_choice(self.density, "density", DENSITIES)
        v = self.n_points
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 2 or v & (v - 1):
            raise ValueError(
                f"n_points must be a power of 2 >= 2 (scrambled Sobol' sets are balanced only "
                f"then), got {v!r}"
            )
        if len(self.x_range) != 2 or not (self.x_range[0] < self.x_range[1]):
            raise ValueError(f"x_range must be (lo, hi) with lo < hi, got {self.x_range}")
        if not (math.isfinite(self.delta) and self.delta > 0):
            raise ValueError(f"delta must be a finite positive number, got {self.delta!r}")
        if not (math.isfinite(self.point_radius) and self.point_radius > 0):
            raise ValueError(
                f"point_radius must be a finite positive number, got {self.point_radius!r}"
            )
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.lookup not in ("exact", "grid"):
            raise ValueError(f"lookup must be 'exact' or 'grid', got {self.lookup!r}")
        if not (math.isfinite(self.ridge) and self.ridge >= 0):
            raise ValueError(f"ridge must be finite and >= 0, got {self.ridge!r}")
        check_eps(self.eps, get_schedule(self.schedule).T)  # also rejects unknown schedules

    @classmethod
    def fast(cls, **overrides) -> Figure3Config:
        base = {"n_models": 20, "n_samples": 5_000, "n_points": 4_096, "n_bayes_samples": 20_000}
        base.update(overrides)
        return cls(**base)

    @property
    def n_features(self) -> int:
        return self.n_space**2 * self.n_time

    @property
    def n_bayes_start_points(self) -> int:
        """Start points of the exact-Bayes baseline: ``n_bayes_samples``, rounded up to a power
        of 2 with ``density="transport"`` (a balanced Sobol' set)."""
        if self.density == "mc":
            return self.n_bayes_samples
        return 1 << max(self.n_bayes_samples - 1, 1).bit_length()

    @property
    def n_start_points(self) -> int:
        """Start points per model: ``n_points`` (``density="transport"``) or ``n_samples``."""
        return self.n_points if self.density == "transport" else self.n_samples

    def start_points_label(self) -> str:
        """The start points in words, e.g. ``"65536 scrambled-Sobol' start points"``."""
        if self.density == "transport":
            return f"{self.n_points} scrambled-Sobol' start points"
        return f"{self.n_samples} random start points"

    def run_settings(self) -> dict:
        """The settings a run's panels depend on, as compared by the panel cache and the resume
        file: :meth:`to_dict`, and with ``density="mc"`` without ``density`` and ``n_points``
        (the dictionary of the Monte Carlo runs made before these fields existed, so their
        caches and checkpoints stay valid)."""
        d = self.to_dict()
        if self.density == "mc":
            del d["density"], d["n_points"]
        return d


def rotation_label(rot: float) -> str:
    k = rot / (math.pi / 8)
    if abs(k - round(k)) < 1e-9:
        k = int(round(k))
        return {0: "0", 1: "π/8", 2: "π/4", 4: "π/2"}.get(k, f"{k}π/8")
    return f"{rot:.3g}"


@dataclass
class Figure3Result:
    """All panels of Figure 3: ``ensembles[i][j]``, ``regions[i][j]`` are kinds[i] x rotations[j].

    Attributes
    ----------
    config : Figure3Config
    ensembles : list of list of EnsembleResult
        Per-model 2-D density histograms (axis 1 = x bins, axis 2 = y bins) and gap masses.
    regions : list of list of SegmentDiagonalMass
        Per-model side/diagonal masses, classified exactly from the samples.
    bayes_histograms : ndarray, shape (n_rotations, n_bins, n_bins)
        PF-ODE with the exact Bayes denoiser (same sampler): the memorizing baseline.
    bayes_regions : list of SegmentDiagonalMass
        Side/diagonal masses of the Bayes baseline (one "model" per rotation).
    meta : dict
        Timings and other run information.
    """

    config: Figure3Config
    ensembles: list[list[EnsembleResult]]
    regions: list[list[SegmentDiagonalMass]]
    bayes_histograms: np.ndarray
    bayes_regions: list[SegmentDiagonalMass]
    meta: dict = field(default_factory=dict)

    @property
    def edges(self) -> np.ndarray:
        """Bin edges (the same on both axes)."""
        return self.ensembles[0][0].edges[0]

    def data(self, j: int) -> np.ndarray:
        """Training points of rotation ``j``."""
        return square_data(self.config.rotations[j])

    def mean_density(self, i: int, j: int) -> np.ndarray:
        """Ensemble-mean joint density of panel (i, j), indexed ``[x bin, y bin]``."""
        return self.ensembles[i][j].mean_density()

    def segment_table(self, confidence: float = 0.95, seed: int | None = None) -> list[dict]:
        """Side-band vs diagonal-band densities with model-level bootstrap CIs, every panel.

        Panel ``(i, j)`` resamples from ``stream(panel_seed(seed, i, j), "bootstrap")`` (``seed``
        defaults to the run's). Each row also holds the Bayes-denoiser baseline (memorization)
        for that rotation.
        """
        seed = self.config.seed if seed is None else seed
        rows = []
        for i, kind in enumerate(self.config.kinds):
            for j, rot in enumerate(self.config.rotations):
                reg = self.regions[i][j]
                ci = reg.ci(confidence, panel_seed(seed, i, j))
                b = self.bayes_regions[j]
                rows.append(
                    {
                        "kind": kind,
                        "rotation": rot,
                        "n_models": reg.n_models,
                        "segment_density": ci["segment_density"],
                        "diagonal_density": ci["diagonal_density"],
                        "difference": ci["difference"],
                        "segment_mass": float(reg.segment_mass.mean()),
                        "diagonal_mass": float(reg.diagonal_mass.mean()),
                        "bayes_difference": float(b.difference[0]),
                    }
                )
        return rows

    def format_table(self, confidence: float = 0.95) -> str:
        """The segment table as text (estimate [CI] per row)."""
        lines = [
            f"side band vs diagonal band (delta = {self.config.delta:g}, points excluded "
            f"within {self.config.point_radius:g}); densities = mass / area; "
            f"{int(confidence * 100)} % model-level bootstrap CIs; "
            f"{self.config.start_points_label()} per model"
        ]
        for r in self.segment_table(confidence):
            s, g, d = r["segment_density"], r["diagonal_density"], r["difference"]
            lines.append(
                f"{r['kind']:>8s} rot={rotation_label(r['rotation']):>4s}  "
                f"side {s[0]:.4f} [{s[1]:.4f}, {s[2]:.4f}]  "
                f"diag {g[0]:.4f} [{g[1]:.4f}, {g[2]:.4f}]  "
                f"side-diag {d[0]:+.4f} [{d[1]:+.4f}, {d[2]:+.4f}]  "
                f"(Bayes {r['bayes_difference']:+.4f})"
            )
        return "\n".join(lines)

    # -- persistence ------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        arrays = {"edges": self.edges, "bayes_histograms": self.bayes_histograms}
        for i in range(len(self.config.kinds)):
            for j in range(len(self.config.rotations)):
                arrays[f"hist_{i}_{j}"] = self.ensembles[i][j].histograms
                arrays[f"gap_{i}_{j}"] = self.ensembles[i][j].gap
                arrays.update(self.regions[i][j].to_arrays(f"reg_{i}_{j}_"))
        for j, b in enumerate(self.bayes_regions):
            arrays.update(b.to_arrays(f"bayesreg_{j}_"))
        cfg = {
            "figure": 3,
            "config": self.config.to_dict(),
            "region_areas": [
                [[r.segment_area, r.diagonal_area] for r in row] for row in self.regions
            ],
            "bayes_region_areas": [[b.segment_area, b.diagonal_area] for b in self.bayes_regions],
            "meta": self.meta,
        }
        return save_result(path, arrays, cfg, kind="figure3_result")

    @classmethod
    def load(cls, path: str | Path) -> Figure3Result:
        """Read a file written by :meth:`save`; ``ValueError`` naming the file if it is corrupt,
        of another kind, or inconsistent (shapes against the configuration, non-finite arrays)."""
        arrays, cfg = load_result_of_kind(
            path, "figure3_result", "a Figure 3 result", legacy=lambda c: c.get("figure") == 3
        )
        with result_file(path, "Figure 3 result"):
            # results saved before the density option existed are Monte Carlo ones
            config = Figure3Config.from_dict({"density": "mc", **cfg["config"]})
            return cls._from_arrays(config, arrays, cfg)

    @classmethod
    def _from_arrays(cls, config: Figure3Config, arrays: dict, cfg: dict) -> Figure3Result:
        B = config.n_bins
        if arrays["edges"].shape != (B + 1,) or arrays["bayes_histograms"].shape[1:] != (B, B):
            raise ValueError(f"edges / bayes_histograms do not match n_bins = {B}")
        require_finite(arrays, *arrays)
        for i in range(len(config.kinds)):
            for j in range(len(config.rotations)):
                p = f"_{i}_{j}"
                _check_panel(
                    config, arrays["hist" + p], arrays["gap" + p], arrays[f"reg{p}_seg"],
                    arrays[f"reg{p}_diag"], cfg["region_areas"][i][j],
                )  # fmt: skip
        edges = arrays["edges"]
        ens, regs = [], []
        for i, kind in enumerate(config.kinds):
            erow, rrow = [], []
            for j, rot in enumerate(config.rotations):
                erow.append(
                    EnsembleResult(
                        arrays[f"hist_{i}_{j}"],
                        [edges, edges],
                        arrays[f"gap_{i}_{j}"],
                        config.point_radius,
                        {"kind": kind, "rotation": rot},
                    )
                )
                a_s, a_g = cfg["region_areas"][i][j]
                rrow.append(
                    SegmentDiagonalMass(
                        arrays[f"reg_{i}_{j}_seg"],
                        arrays[f"reg_{i}_{j}_diag"],
                        a_s,
                        a_g,
                        config.delta,
                        config.point_radius,
                    )
                )
            ens.append(erow)
            regs.append(rrow)
        bayes_regs = [
            SegmentDiagonalMass(
                arrays[f"bayesreg_{j}_seg"],
                arrays[f"bayesreg_{j}_diag"],
                *cfg["bayes_region_areas"][j],
                config.delta,
                config.point_radius,
            )
            for j in range(len(config.rotations))
        ]
        return cls(config, ens, regs, arrays["bayes_histograms"], bayes_regs, cfg.get("meta", {}))

    # -- drawing ----------------------------------------------------------------------------------
    def image(self, i: int, j: int, paper_normalization: bool = False) -> np.ndarray:
        """The array drawn in panel (i, j), indexed ``[y bin, x bin]`` (for ``origin="lower"``).

        ``paper_normalization=False``: the ensemble-mean joint density. ``True``: the paper's
        per-model, per-x-bin normalization (see :func:`paper_normalized_density`).
        """
        h = self.ensembles[i][j].histograms
        img = paper_normalized_density(h) if paper_normalization else h.mean(axis=0)
        return img.T

    def plot(
        self,
        out_dir: str | Path,
        formats: tuple[str, ...] = ("png", "pdf"),
        paper_normalization: bool = False,
        scale: str | None = None,
        annotate: bool = True,
    ) -> list[Path]:
        """Draw the kinds x rotations grid and save ``figure3.<fmt>``
        (:func:`gtv.validation.figures.figure3_plot.plot_figure3`, which documents the options).
        """
        from gtv.validation.figures.figure3_plot import plot_figure3

        return plot_figure3(self, out_dir, formats, paper_normalization, scale, annotate)


# -- computation ----------------------------------------------------------------------------------
def _check_panel(
    cfg: Figure3Config, hist: object, gap: object, seg: object, diag: object, areas: object
) -> None:
    """``ValueError`` unless one panel's arrays fit ``cfg`` (shapes; finite; positive areas)."""
    N, B = cfg.n_models, cfg.n_bins
    shapes = {
        "hist": (hist, (N, B, B)),
        "gap": (gap, (N,)),
        "seg": (seg, (N,)),
        "diag": (diag, (N,)),
    }
    for name, (a, shape) in shapes.items():
        if np.shape(a) != shape or not np.all(np.isfinite(a)):
            raise ValueError(f"panel array {name!r} must be finite of shape {shape}")
    a_s, a_g = (float(v) for v in areas)
    if not (a_s > 0 and a_g > 0 and math.isfinite(a_s + a_g)):
        raise ValueError(f"region areas must be finite and > 0, got {areas!r}")


def _load_panel(path: Path, cfg: Figure3Config, key: str) -> tuple[dict, dict] | None:
    """A cached panel's ``(arrays, config)``; ``None`` if its key differs (other settings). A
    corrupt or inconsistent file raises ``ValueError`` naming it (for :func:`load_cache_entry`)."""
    arrays, pcfg = load_result_of_kind(
        path, "figure3_panel", "a Figure 3 panel cache", legacy=lambda c: "key" in c
    )
    if pcfg.get("key") != key:
        return None
    with result_file(path, "Figure 3 panel cache"):
        _check_panel(
            cfg, arrays["hist"], arrays["gap"], arrays["seg"], arrays["diag"], pcfg["areas"]
        )
    return arrays, pcfg


def _panel_cache_path(cache_dir: Path, i: int, j: int) -> Path:
    return cache_dir / f"figure3_panel_{i}_{j}.npz"


def _panel_key(cfg: Figure3Config, i: int, j: int) -> str:
    panel_cfg = {k: v for k, v in cfg.run_settings().items() if k != "n_bayes_samples"}
    # "streams": the seed layout (named streams, gtv.numerics.streams); panels cached under an
    # older layout are recomputed.
    return json.dumps({"config": panel_cfg, "panel": [i, j], "streams": 2}, sort_keys=True)


def compute_figure3(
    config: Figure3Config | None = None,
    progress: bool = True,
    cache_dir: str | Path | None = None,
    checkpoint: str | Path | None = None,
) -> Figure3Result:
    """Train, sample and summarize every (kind, rotation) ensemble of Figure 3.

    Panel ``(i, j)`` (kinds[i], rotations[j]) has the seed ``s_ij = stream(seed, "panel", i, j)``
    (:func:`gtv.validation.figures.base.panel_seed`): its model ``n`` trains on
    ``stream(s_ij, "training").spawn(N)[n]`` and starts its sampler from ``n_points``
    scrambled-Sobol' points scrambled by ``stream(s_ij, "transport-qmc").spawn(N)[n]``
    (``density="transport"``) or from ``n_samples`` random points drawn from
    ``stream(s_ij, "sampling").spawn(N)[n]`` (``density="mc"``). The Bayes baseline of
    rotation ``j`` (always recomputed; it is cheap) starts from one scrambled-Sobol' set of
    :attr:`Figure3Config.n_bayes_start_points` points scrambled by
    ``stream(stream(seed, "panel", j), "bayes-qmc").spawn(1)[0]`` (``density="transport"``) or
    from random points of ``stream(stream(seed, "panel", j), "bayes-sampling")``
    (``density="mc"``).

    Parameters
    ----------
    config : Figure3Config, optional
        Default: the paper's settings (100 models per panel), with 65 536 scrambled-Sobol'
        start points per model in place of the paper's 1e5 random ones.
    progress : bool, default True
        Show a progress bar over panels.
    cache_dir : path, optional
        If given, every finished panel is written there (``figure3_panel_i_j.npz``) and a later
        call with the same configuration (``n_bayes_samples`` aside; compared by
        :meth:`Figure3Config.run_settings`) reloads it instead of recomputing (resume).
    checkpoint : path, optional
        Resume file of this run (:class:`gtv.validation.checkpoint.TaskCheckpoint`, kind
        ``"figure3-partial"``): the summary of every finished panel (per-model histograms, gap
        and band masses, band areas) is written atomically and read at the start, so an
        interrupted run continues where it stopped and gives the same numbers as an
        uninterrupted one. Unlike the panel cache it is tied to the whole configuration
        (:meth:`Figure3Config.run_settings`): a checkpoint of another configuration raises
        ``ValueError``; a damaged one is reported in
        one warning line and ignored. Removed when the run completes.
    """
    cfg = config or Figure3Config()
    sched = get_schedule(cfg.schedule)
    edges = np.linspace(cfg.x_range[0], cfg.x_range[1], cfg.n_bins + 1)
    cache = Path(cache_dir) if cache_dir is not None else None
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
    nk, nr = len(cfg.kinds), len(cfg.rotations)
    N, B = cfg.n_models, cfg.n_bins
    ckpt = TaskCheckpoint(
        checkpoint,
        _PARTIAL,
        cfg.run_settings(),
        {
            "hist": np.zeros((nk, nr, N, B, B)),
            **{name: np.zeros((nk, nr, N)) for name in ("gap", "seg", "diag")},
            "areas": np.zeros((nk, nr, 2)),
            # train, sample, summarize seconds (NaN: not recorded, e.g. an old cache entry)
            "timings": np.full((nk, nr, 3), np.nan),
        },
        (nk, nr),
    )
    out = ckpt.arrays
    bar = tqdm(total=nk * nr + nr, desc="figure 3", disable=not progress, leave=False)
    bar.update(ckpt.resumed)
    for i, kind in enumerate(cfg.kinds):
        feats = ProductFeatures.uniform(
            kind, 2, cfg.n_space, cfg.n_time, (cfg.eps, sched.T), cfg.x_range
        )
        for j, rot in enumerate(cfg.rotations):
            if ckpt.done[i, j]:
                continue
            data = square_data(rot)
            key = _panel_key(cfg, i, j)
            path = _panel_cache_path(cache, i, j) if cache is not None else None
            hit = None
            if path is not None:
                hit = load_cache_entry(path, lambda p, k=key: _load_panel(p, cfg, k))
            if hit is not None:
                arrays, pcfg = hit
                for name in ("hist", "gap", "seg", "diag"):
                    out[name][i, j] = arrays[name]
                out["areas"][i, j] = pcfg["areas"]
                t = pcfg.get("timings", {})
                for m, what in enumerate(_TIMINGS):
                    out["timings"][i, j, m] = t.get(f"{what}_{i}_{j}", np.nan)
                ckpt.mark_done((i, j))
                bar.update()
                continue
            bar.set_postfix_str(f"{kind}, rotation {rotation_label(rot)}")
            samples, took = sample_linear_panel(
                data, feats, cfg.n_models, cfg.P, cfg.eps, sched, ridge=cfg.ridge,
                n_samples=cfg.n_start_points, n_steps=cfg.n_steps, method=cfg.method,
                lookup=cfg.lookup, seed=panel_seed(cfg.seed, i, j), density=cfg.density,
            )  # fmt: skip
            t2 = time.perf_counter()
            ens = summarize_ensemble(samples, data, [edges, edges], cfg.point_radius)
            reg = segment_vs_diagonal_mass(samples, data, cfg.delta, cfg.point_radius)
            t3 = time.perf_counter()
            del samples
            out["hist"][i, j], out["gap"][i, j] = ens.histograms, ens.gap
            out["seg"][i, j], out["diag"][i, j] = reg.segment_mass, reg.diagonal_mass
            out["areas"][i, j] = reg.segment_area, reg.diagonal_area
            out["timings"][i, j] = took["train"], took["sample"], t3 - t2
            if path is not None:
                panel_t = {
                    f"{what}_{i}_{j}": float(v)
                    for what, v in zip(_TIMINGS, out["timings"][i, j], strict=True)
                }
                save_result(
                    path,
                    {"hist": ens.histograms, "gap": ens.gap, "seg": reg.segment_mass,
                     "diag": reg.diagonal_mass},
                    {"key": key, "areas": [reg.segment_area, reg.diagonal_area],
                     "timings": panel_t},
                    kind="figure3_panel",
                )  # fmt: skip
            ckpt.mark_done((i, j))
            bar.update()
    ensembles, regions, timings = _panels_from_arrays(cfg, edges, out)
    bayes = np.empty((nr, cfg.n_bins, cfg.n_bins))
    bayes_regions = []
    sigma_T = math.sqrt(float(sched.sigma2(sched.T)))
    for j, rot in enumerate(cfg.rotations):
        data = square_data(rot)
        x_T = None
        if cfg.density == "transport":
            x_T = qmc_start_points(
                1, cfg.n_bayes_start_points, 2, sigma_T, panel_seed(cfg.seed, j), "bayes-qmc"
            )[0]
        xb = sample_exact_denoiser(
            data,
            cfg.n_bayes_start_points,
            cfg.eps,
            sched,
            n_steps=cfg.n_steps,
            method=cfg.method,
            seed=panel_seed(cfg.seed, j),
            x_T=x_T,
        )
        counts, _, _ = np.histogram2d(xb[:, 0], xb[:, 1], bins=[edges, edges])
        bayes[j] = counts / (xb.shape[0] * np.diff(edges)[:, None] * np.diff(edges)[None, :])
        bayes_regions.append(segment_vs_diagonal_mass(xb[None], data, cfg.delta, cfg.point_radius))
        bar.update()
    bar.close()
    meta = {"timings_s": timings, "bayes_start_points": cfg.n_bayes_start_points}
    result = Figure3Result(cfg, ensembles, regions, bayes, bayes_regions, meta)
    ckpt.finish()
    return result


def _panels_from_arrays(
    cfg: Figure3Config, edges: np.ndarray, out: dict[str, np.ndarray]
) -> tuple[list, list, dict[str, float]]:
    """The panels' ensembles, band masses and timings from the checkpoint arrays."""
    ensembles, regions, timings = [], [], {}
    for i, kind in enumerate(cfg.kinds):
        ensembles.append([])
        regions.append([])
        for j, rot in enumerate(cfg.rotations):
            about = {"kind": kind, "rotation": rot, "seed": cfg.seed, "panel": [i, j]}
            ensembles[i].append(
                EnsembleResult(
                    out["hist"][i, j],
                    [edges, edges],
                    out["gap"][i, j],
                    float(cfg.point_radius),
                    about,
                )
            )
            a_s, a_g = (float(a) for a in out["areas"][i, j])
            regions[i].append(
                SegmentDiagonalMass(
                    out["seg"][i, j],
                    out["diag"][i, j],
                    a_s,
                    a_g,
                    float(cfg.delta),
                    float(cfg.point_radius),
                )
            )
            for m, what in enumerate(_TIMINGS):
                if not np.isnan(out["timings"][i, j, m]):
                    timings[f"{what}_{i}_{j}"] = float(out["timings"][i, j, m])
    return ensembles, regions, timings
