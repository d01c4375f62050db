"""Exact versus learned denoisers in the serial-reproduction chain, with model-level intervals.

:func:`run_learned` runs two parts on the Swiss roll (docs/serial.md, "Learned denoisers"):

* ``steps``: the number-of-steps sweep at **fixed total noise** (the Fig. 3 ramp rescaled to the
  total variance of the paper's 100-step chain; for fade noise the ramp to 1, which reaches the
  terminal density for every ``T``);
* ``families``: one chain per noise family at ``family_T`` steps with the paper's schedules
  (:data:`FAMILY_SCHEDULES`).

For each condition and denoiser (:data:`~gtv.validation.serial.learned.DENOISERS`) it reports the
error ``KL(p_gen || p_data)`` in bits, the total variation, the **gap mass** (the generated mass
off the roll, where the data hold only the uniform floor), and the same for the *stationary*
density of the last unit (``t = 1``) run as a homogeneous chain: the exact unit leaves the data
invariant, a learned one does not -- the difference is the learned chain's gap filling. Learned
denoisers are ensembles of ``n_models`` independently trained models; every number is the mean
over models with a model-level BCa bootstrap interval (:func:`gtv.validation.stats.bootstrap_ci`).

Streams: the condition of part ``k`` (0 = steps, 1 = families) with key ``i`` (``T`` for the
sweep, the family's index in :data:`~gtv.validation.serial.config.FAMILIES`) has the seed
``stream(seed, "panel", k, i)``; its models train on its ``"training"`` children and its intervals
resample from its ``"bootstrap"`` stream.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from gtv.numerics.checks import check_choice, check_count, check_field_types, check_ridge
from gtv.numerics.io import load_result_of_kind, result_file, save_result
from gtv.numerics.kernel import check_activation
from gtv.numerics.serial import AUTHORS_EPS, DiffusionChain, kl_bits
from gtv.numerics.streams import check_seed, stream
from gtv.validation.checkpoint import TaskCheckpoint
from gtv.validation.results import JsonConfig
from gtv.validation.serial.config import FAMILIES, GRIDS, Condition, paper_total
from gtv.validation.serial.data import density, roll_mask
from gtv.validation.serial.experiments import make_family, make_grid
from gtv.validation.serial.learned import (
    DENOISERS,
    VARIANCES,
    GaussianStepChain,
    exact_posterior_moments,
    learned_means,
    stationary_density,
)
from gtv.validation.stats import bootstrap_ci

__all__ = [
    "FAMILY_SCHEDULES",
    "LearnedConfig",
    "LearnedResult",
    "learned_conditions",
    "run_learned",
]

_KIND = "serial-learned"
_PARTIAL = "serial-learned-partial"
#: The schedule ``(start, stop)`` of each family in the family comparison (linear ramps; the
#: paper's for Gaussian, bimodal and fade, the Gaussian ramp for Laplace and box).
FAMILY_SCHEDULES = {
    "gaussian": (0.03, 0.10),
    "bimodal": (0.02, 0.07),
    "trimodal": (0.02, 0.07),
    "laplace": (0.03, 0.10),
    "box": (0.03, 0.10),
    "fade": (0.01, 1.0),
}
#: Per-model statistics of a (condition, denoiser), in table order.
STATS = ("error", "tv", "gap", "stationary_error", "stationary_gap")


@dataclass(frozen=True)
class LearnedConfig(JsonConfig):
    """Configuration of :func:`run_learned` (defaults: 16 models on the 25 x 25 torus).

    Attributes
    ----------
    grid, h : str, float
        The grid (:func:`~gtv.validation.serial.experiments.make_grid`).
    steps : tuple of int
        Numbers of steps of the fixed-total sweep (empty: skip the part).
    sweep_family : str
        Noise family of the sweep.
    total : float or None
        Total variance of the sweep (``None``: the paper's 100-step total, about 0.1036).
    families : tuple of str
        Families of the comparison (empty: skip the part).
    family_T : int
        Steps of the family comparison.
    denoisers : tuple of str
        Subset of :data:`~gtv.validation.serial.learned.DENOISERS`.
    n_models : int
        Independently trained models per learned denoiser (>= 2 for intervals).
    pairs_per_step : int
        DSM pairs per step and model (linear models use all of them).
    kernel_pairs : int
        Pairs per step of a kernel model (the first ones of the same draws).
    n_space : int
        Fourier features per axis of the linear models (``n_space**2`` per step).
    ridge, kernel_ridge : float
        Ridge of the linear models and of the kernel ridge regression.
    activation : str
        Activation of the kernel models' NTK.
    variance : {"kernel", "posterior"}
        Variance of the Gaussian steps: the step kernel's (DDPM's ``beta_t``), or the per-point
        posterior variance (exact for ``exact-mean``, learned as second moment minus squared
        mean for the learned denoisers).
    stationary_iters : int
        Power iterations of the stationary density of the last unit (started at ``p_gen``).
    n_boot : int
        Bootstrap resamples.
    seed : int
    """

    grid: str = "torus"
    h: float = 0.04
    steps: tuple[int, ...] = (2, 3, 6, 12, 24)
    sweep_family: str = "gaussian"
    total: float | None = None
    families: tuple[str, ...] = ("gaussian", "bimodal", "laplace", "box", "fade")
    family_T: int = 10
    denoisers: tuple[str, ...] = DENOISERS
    n_models: int = 16
    pairs_per_step: int = 1000
    kernel_pairs: int = 500
    n_space: int = 15
    ridge: float = 1e-4
    kernel_ridge: float = 1e-6
    activation: str = "relu"
    variance: str = "kernel"
    stationary_iters: int = 300
    n_boot: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        check_field_types(self)
        check_choice(self.grid, "grid", GRIDS)
        if not (np.isfinite(self.h) and 0 < self.h <= 0.5):
            raise ValueError(f"h must be in (0, 0.5] (grid size >= 2), got {self.h!r}")
        make_grid(self.grid, self.h)
        for T in self.steps:
            check_count(T, "steps")
        check_choice(self.sweep_family, "sweep_family", FAMILIES)
        for f in self.families:
            check_choice(f, "families", tuple(FAMILY_SCHEDULES))
        for d in self.denoisers:
            check_choice(d, "denoisers", DENOISERS)
        if not self.denoisers:
            raise ValueError("denoisers must name at least one denoiser")
        if not (self.steps or self.families):
            raise ValueError("steps and families are both empty: nothing to run")
        check_count(self.family_T, "family_T")
        check_count(self.n_models, "n_models", minimum=2)
        check_count(self.pairs_per_step, "pairs_per_step")
        check_count(self.kernel_pairs, "kernel_pairs")
        check_count(self.n_space, "n_space")
        check_ridge(self.ridge)
        if not (self.kernel_ridge > 0 and np.isfinite(self.kernel_ridge)):
            raise ValueError(f"kernel_ridge must be finite and > 0, got {self.kernel_ridge!r}")
        check_activation(self.activation)
        check_choice(self.variance, "variance", VARIANCES)
        check_count(self.stationary_iters, "stationary_iters")
        check_count(self.n_boot, "n_boot", minimum=10)
        check_seed(self.seed)
        if self.total is not None and not (self.total > 0 and np.isfinite(self.total)):
            raise ValueError(f"total must be None or finite and > 0, got {self.total!r}")

    @classmethod
    def small(cls, **kw) -> LearnedConfig:
        """A configuration that runs in a few seconds (tests, notebooks)."""
        base = {
            "h": 1 / 16,
            "steps": (2, 6),
            "families": ("gaussian", "fade"),
            "family_T": 4,
            "n_models": 4,
            "pairs_per_step": 300,
            "kernel_pairs": 150,
            "n_space": 7,
            "stationary_iters": 50,
            "n_boot": 200,
        }
        return cls(**{**base, **kw})


def learned_conditions(cfg: LearnedConfig) -> list[tuple[str, int, Condition]]:
    """The conditions of both parts: ``(part, key, condition)`` (module docstring for keys)."""
    out = []
    total = paper_total() if cfg.total is None else cfg.total
    fam = cfg.sweep_family
    for T in cfg.steps:
        if fam == "fade":
            cond = Condition(f"{fam} T={T}", fam, "linear", 0.01, 1.0, T)
        else:
            cond = Condition(f"{fam} T={T}", fam, "fixed-total", 0.01, 0.05, T, total=total)
        out.append(("steps", int(T), cond))
    for f in cfg.families:
        a, b = FAMILY_SCHEDULES[f]
        cond = Condition(f"{f} T={cfg.family_T}", f, "linear", a, b, cfg.family_T)
        out.append(("families", FAMILIES.index(f), cond))
    return out


def _model_stats(p_gen, stationary, data, off) -> dict[str, float]:
    return {
        "error": kl_bits(p_gen, data, AUTHORS_EPS),
        "tv": 0.5 * float(np.abs(p_gen - data).sum()),
        "gap": float(p_gen[off].sum()),
        "stationary_error": kl_bits(stationary, data, AUTHORS_EPS),
        "stationary_gap": float(stationary[off].sum()),
    }


def _run_condition(cfg: LearnedConfig, cond: Condition, grid, data, off, seed) -> dict:
    """Per-model statistics ``{denoiser: {stat: (N,) array}}`` and mean densities."""
    chain = DiffusionChain(data, grid, make_family(cond, grid), cond.sigmas())
    start = density(cond.terminal, grid)
    stats: dict[str, dict[str, list]] = {}
    images: dict[str, np.ndarray] = {}

    def record(name: str, p_gen: np.ndarray, step1) -> None:
        stat, _ = stationary_density(step1, p_gen, cfg.stationary_iters)
        for k, v in _model_stats(p_gen, stat, data, off).items():
            stats.setdefault(name, {}).setdefault(k, []).append(v)
        images.setdefault(name, np.zeros(grid.shape))
        images[name] += p_gen
        images.setdefault(name + " stationary", np.zeros(grid.shape))
        images[name + " stationary"] += stat

    if "exact" in cfg.denoisers:
        p = chain.generate(start)[0]
        record("exact", p, lambda v: chain.step(1, v))
    moments: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if "exact-mean" in cfg.denoisers:
        mv = [
            exact_posterior_moments(chain.kernel(t), grid, chain.q[t - 1])
            for t in range(1, chain.T + 1)
        ]
        moments["exact-mean"] = (
            np.stack([m for m, _ in mv])[None],
            np.stack([v for _, v in mv])[None],
        )
    learned = tuple(d for d in cfg.denoisers if d in ("linear", "kernel"))
    if learned:
        raw = learned_means(
            chain,
            n_models=cfg.n_models,
            pairs_per_step=cfg.pairs_per_step,
            kernel_pairs=cfg.kernel_pairs,
            n_space=cfg.n_space,
            ridge=cfg.ridge,
            kernel_ridge=cfg.kernel_ridge,
            activation=cfg.activation,
            seed=seed,
            denoisers=learned,
        )
        D = grid.dim
        for name, a in raw.items():
            m = a[..., :D]
            moments[name] = (m, a[..., D:] - m * m)
    for name in cfg.denoisers:
        if name not in moments:
            continue
        for m, v in zip(*moments[name], strict=True):
            g = GaussianStepChain(chain, m, v if cfg.variance == "posterior" else None)
            record(name, g.generate(start), lambda u, g=g: g.step(1, u))
    out = {name: {k: np.asarray(v) for k, v in s.items()} for name, s in stats.items()}
    imgs = {k: v / len(out[k.split(" ")[0]]["error"]) for k, v in images.items()}
    return {"stats": out, "images": imgs}


@dataclass
class LearnedResult:
    """The result of :func:`run_learned`.

    Attributes
    ----------
    config : LearnedConfig
    rows : list of dict
        Per condition and denoiser: ``part``, ``label``, ``family``, ``T``, ``denoiser``,
        ``n_models`` and, for each statistic, its mean with ``_lo`` / ``_hi`` interval bounds.
    per_model : dict
        ``"<row index>/<stat>"`` -> per-model values.
    images : dict
        ``"<condition index>/<denoiser>[ stationary]"`` -> model-mean densities.
    data : ndarray
    data_gap : float
        The data's own mass off the roll.
    meta : dict
    """

    config: LearnedConfig
    rows: list[dict]
    per_model: dict[str, np.ndarray]
    images: dict[str, np.ndarray]
    data: np.ndarray
    data_gap: float
    meta: dict = field(default_factory=dict)

    def table(self) -> list[dict]:
        return [dict(r) for r in self.rows]

    def format_table(self) -> str:
        """Both parts as text: mean [95 % model-level CI] per statistic."""
        cfg = self.config
        g = make_grid(cfg.grid, cfg.h)
        lines = [
            f"learned vs exact denoisers on the {cfg.grid} grid ({g.n} x {g.n}); "
            f"{cfg.n_models} models per learned denoiser; mean [95 % model-level bootstrap CI]; "
            f"data mass off the roll = {self.data_gap:.4f}"
        ]
        for part, title in (
            ("steps", "steps at fixed total noise"),
            ("families", f"noise families at T = {cfg.family_T}"),
        ):
            rows = [r for r in self.rows if r["part"] == part]
            if not rows:
                continue
            lines += ["", title]
            head = f"{'condition':<16} {'denoiser':<11}" + "".join(
                f" {s:>27}" for s in ("error [bits]", "gap mass", "stationary error [bits]")
            )
            lines += [head, "-" * len(head)]
            for r in rows:
                cells = "".join(f" {_ci(r, s):>27}" for s in ("error", "gap", "stationary_error"))
                lines.append(f"{r['label']:<16} {r['denoiser']:<11}{cells}")
        return "\n".join(lines)

    def save(self, path: str | Path) -> Path:
        arrays = {"data": self.data}
        arrays.update({f"model/{k}": v for k, v in self.per_model.items()})
        arrays.update({f"image/{k}": v for k, v in self.images.items()})
        cfg = {
            "kind": _KIND,
            "config": self.config.to_dict(),
            "rows": self.rows,
            "data_gap": self.data_gap,
            "meta": self.meta,
        }
        return save_result(path, arrays, cfg)

    @classmethod
    def load(cls, path: str | Path) -> LearnedResult:
        arrays, cfg = load_result_of_kind(path, _KIND, "a serial-learned")
        with result_file(path, "serial-learned"):
            per = {k[6:]: v for k, v in arrays.items() if k.startswith("model/")}
            imgs = {k[6:]: v for k, v in arrays.items() if k.startswith("image/")}
            config = LearnedConfig.from_dict(cfg["config"])
            return cls(config, cfg["rows"], per, imgs, arrays["data"], cfg["data_gap"], cfg["meta"])


def _ci(row: dict, stat: str) -> str:
    v, lo, hi = (round(row[stat + k], 4) + 0.0 for k in ("", "_lo", "_hi"))  # no "-0.0000"
    if row[stat + "_lo"] == row[stat + "_hi"]:
        return f"{v:.4f}"
    return f"{v:.4f} [{lo:.4f}, {hi:.4f}]"


def _denoiser_order(cfg: LearnedConfig) -> list[tuple[str, int]]:
    """The denoisers of a condition in row order, with their number of models."""
    names = ["exact"] if "exact" in cfg.denoisers else []
    names += [d for d in cfg.denoisers if d != "exact"]
    return [(d, cfg.n_models if d in ("linear", "kernel") else 1) for d in names]


def _empty_arrays(cfg: LearnedConfig, n_cond: int, shape: tuple) -> dict[str, np.ndarray]:
    """Per-model statistics and mean densities of every condition (zero), and its seconds."""
    arrays = {"seconds": np.zeros(n_cond)}
    for ci in range(n_cond):
        for name, n in _denoiser_order(cfg):
            arrays.update({f"{ci}/{name}/{s}": np.zeros(n) for s in STATS})
            arrays[f"{ci}/{name}"] = np.zeros(shape)
            arrays[f"{ci}/{name} stationary"] = np.zeros(shape)
    return arrays


def run_learned(
    cfg: LearnedConfig, progress: bool = False, *, checkpoint: str | Path | None = None
) -> LearnedResult:
    """Run both parts of the comparison (module docstring).

    Parameters
    ----------
    cfg : LearnedConfig
    progress : bool, default False
        Show a progress bar over the conditions.
    checkpoint : path, optional
        Resume file (kind ``"serial-learned-partial"``), written atomically after every
        condition (its models trained, its chains run) and read at the start, so an interrupted
        run (Ctrl-C, a killed process) continues with the first unfinished condition. Each
        condition draws from its own streams (module docstring), so the result equals an
        uninterrupted run's bit for bit. A checkpoint of another configuration raises
        ``ValueError``; a damaged one is reported in one warning line and ignored. Removed when
        the run completes.
    """
    if not isinstance(cfg, LearnedConfig):
        raise TypeError(f"cfg must be a LearnedConfig, got {type(cfg).__name__}")
    grid = make_grid(cfg.grid, cfg.h)
    data = density("swiss-roll", grid)
    off = ~roll_mask(grid)
    conds = learned_conditions(cfg)
    seeds = [stream(cfg.seed, "panel", 0 if part == "steps" else 1, key) for part, key, _ in conds]
    ckpt = TaskCheckpoint(
        checkpoint, _PARTIAL, cfg.to_dict(), _empty_arrays(cfg, len(conds), grid.shape), len(conds)
    )
    arrays = ckpt.arrays
    bar = tqdm(
        total=len(conds), initial=ckpt.resumed, desc="learned", disable=not progress, leave=False
    )
    for ci, (_, _, cond) in enumerate(conds):
        if ckpt.done[ci]:
            continue
        t0 = time.perf_counter()
        res = _run_condition(cfg, cond, grid, data, off, seeds[ci])
        for name, st in res["stats"].items():
            for s in STATS:
                arrays[f"{ci}/{name}/{s}"][...] = st[s]
        for name, img in res["images"].items():
            arrays[f"{ci}/{name}"][...] = img
        arrays["seconds"][ci] = time.perf_counter() - t0
        ckpt.mark_done(ci)
        bar.update()
    bar.close()
    rows: list[dict] = []
    per_model: dict[str, np.ndarray] = {}
    images: dict[str, np.ndarray] = {}
    for ci, (part, _, cond) in enumerate(conds):
        for name, n in _denoiser_order(cfg):
            row = {
                "part": part,
                "label": cond.label,
                "family": cond.family,
                "T": cond.T,
                "denoiser": name,
                "n_models": n,
            }
            for s in STATS:
                vals = arrays[f"{ci}/{name}/{s}"]
                per_model[f"{len(rows)}/{s}"] = vals
                if vals.size >= 2:
                    est, lo, hi = bootstrap_ci(vals, n_resamples=cfg.n_boot, seed=seeds[ci])
                else:
                    est = lo = hi = float(vals[0])
                row.update({s: est, f"{s}_lo": lo, f"{s}_hi": hi})
            rows.append(row)
            for key in (name, name + " stationary"):
                images[f"{ci}/{key}"] = arrays[f"{ci}/{key}"]
    seconds = [float(s) for s in arrays["seconds"]]
    meta = {
        "conditions": [c.label for _, _, c in conds],
        "seconds": seconds,
        "total_seconds": float(sum(seconds)),
        "resumed_conditions": ckpt.resumed,
    }
    ckpt.finish()
    return LearnedResult(cfg, rows, per_model, images, data, float(data[off].sum()), meta)
