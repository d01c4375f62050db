"""Running the serial-reproduction experiments with exact Bayesian denoisers.

:func:`run_experiment` runs every :class:`~gtv.validation.serial.config.Condition` of an
:class:`~gtv.validation.serial.config.ExperimentConfig` on its grid with
:class:`gtv.numerics.serial.DiffusionChain` (FFT kernels, ``O(M log M)`` per step) and returns an
:class:`ExperimentResult`: one row of metrics per condition (in bits, with the authors'
``eps = 2.2e-16`` inside the logarithms) and the densities needed for the figures, saveable with
its configuration (:mod:`gtv.numerics.io`).

Metrics of a row (docs/serial.md, "Metrics"):

* ``error``: ``KL(p_gen || p_data)``, the paper's "performance";
* ``jsd``: the Jensen-Shannon divergence of the same pair;
* ``tv``: total variation ``(1/2) sum |p_gen - p_data|``;
* ``complexity``: ``max_t KL(q_t || q_{t+1})`` over ``t = 1 .. T-1`` (the authors' exclusion of
  the data step);
* ``stationarity``: the authors' "deviation of the integral from 1";
* ``terminal``: ``KL(p_F || q_T)``, how far the forward process is from the density the sampler
  starts at (0 when the noise reaches it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from gtv.numerics.io import load_result_of_kind, result_file, save_result
from gtv.numerics.serial import (
    AUTHORS_EPS,
    DiffusionChain,
    Grid,
    NoiseFamily,
    complexity_bits,
    jsd_bits,
    kl_bits,
    stationarity_score,
)
from gtv.validation.checkpoint import TaskCheckpoint
from gtv.validation.serial.config import Condition, ExperimentConfig
from gtv.validation.serial.data import density

__all__ = [
    "METRICS",
    "ExperimentResult",
    "format_rows",
    "make_family",
    "make_grid",
    "run_condition",
    "run_experiment",
]

#: The metric columns of a row, in table order.
METRICS = ("error", "jsd", "tv", "complexity", "stationarity", "terminal")
_KIND = "serial-experiment"
_PARTIAL = "serial-experiment-partial"


def make_grid(layout: str, h: float) -> Grid:
    """The authors' grid of spacing ``h`` (``round(1/h) + 1`` points per axis) or the torus of
    ``round(1/h)`` points per axis."""
    if layout == "authors":
        return Grid.authors(h)
    if layout == "torus":
        return Grid.torus(int(round(1.0 / h)))
    raise ValueError(f"grid must be 'authors' or 'torus', got {layout!r}")


def make_family(cond: Condition, grid: Grid) -> NoiseFamily:
    """The noise family of a condition on ``grid``.

    Fade noise fades to the condition's terminal density with the authors' kernel on both grids
    (an unnormalised Gaussian "stay" of width 0.01,
    :meth:`~gtv.numerics.serial.NoiseFamily.fade_authors`), so that the grid is the only thing
    the ``torus`` option changes. That stay term also blurs: on the 0.025 grid each neighbour
    receives about 4 % of a cell's mass per step.
    """
    kind = cond.family
    if kind == "gaussian":
        return NoiseFamily.gaussian()
    if kind == "bimodal":
        return NoiseFamily.bimodal(cond.shift)
    if kind == "trimodal":
        return NoiseFamily.trimodal(cond.shift)
    if kind == "laplace":
        return NoiseFamily.laplace()
    if kind == "box":
        return NoiseFamily.box()
    return NoiseFamily.fade_authors(density(cond.terminal, grid))


def run_condition(
    cond: Condition, grid: Grid, data: np.ndarray
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Run one condition; returns ``(metrics, arrays)``.

    ``arrays`` holds ``sigmas``, the generated density ``generated`` and, when the condition
    keeps its trajectory, ``q`` (the forward marginals ``q_0 .. q_T``) and ``p`` (the sampler's
    densities, ``p[T]`` its start and ``p[0]`` the generated density).
    """
    sigmas = cond.sigmas()
    chain = DiffusionChain(data, grid, make_family(cond, grid), sigmas)
    start = density(cond.terminal, grid)
    p = chain.generate(start, inject_noise=cond.inject_noise)
    gen = p[0]
    metrics = {
        "error": kl_bits(gen, data, AUTHORS_EPS),
        "jsd": jsd_bits(gen, data, AUTHORS_EPS),
        "tv": 0.5 * float(np.abs(gen - data).sum()),
        "complexity": complexity_bits(chain.q, eps=AUTHORS_EPS),
        "stationarity": stationarity_score(chain, p, cond.inject_noise),
        "terminal": kl_bits(start, chain.q[-1], AUTHORS_EPS),
    }
    arrays = {"sigmas": sigmas, "generated": gen}
    if cond.keep_trajectory:
        arrays["q"] = chain.q
        arrays["p"] = p
    return metrics, arrays


@dataclass
class ExperimentResult:
    """The result of :func:`run_experiment`.

    Attributes
    ----------
    config : ExperimentConfig
    rows : list of dict
        Per condition: ``label``, ``family``, ``schedule``, ``T``, ``sampler`` and the
        :data:`METRICS`.
    arrays : list of dict
        Per condition: ``sigmas``, ``generated`` and (if kept) ``q``, ``p``.
    data : ndarray
        The data density on the grid.
    meta : dict
        Timings (``seconds`` per condition and in total).
    """

    config: ExperimentConfig
    rows: list[dict]
    arrays: list[dict[str, np.ndarray]]
    data: np.ndarray
    meta: dict = field(default_factory=dict)

    @property
    def grid(self) -> Grid:
        return make_grid(self.config.grid, self.config.h)

    def table(self) -> list[dict]:
        """The printed table as JSON-ready rows."""
        return [dict(r) for r in self.rows]

    def format_table(self) -> str:
        """The rows as a fixed-width text table (metrics in bits, TV and stationarity plain)."""
        cfg = self.config
        g = self.grid
        head = f"{cfg.name} on the {cfg.grid} grid ({g.n} x {g.n}, h = {g.spacing:g})"
        return head + "\n" + format_rows(self.rows)

    def save(self, path: str | Path) -> Path:
        """Write a ``.npz`` with the configuration, rows and arrays (reload with :meth:`load`)."""
        out = {"data": self.data}
        for i, a in enumerate(self.arrays):
            out.update({f"{k}_{i}": v for k, v in a.items()})
        cfg = {"kind": _KIND, "config": self.config.to_dict(), "rows": self.rows, "meta": self.meta}
        return save_result(path, out, cfg)

    @classmethod
    def load(cls, path: str | Path) -> ExperimentResult:
        arrays, cfg = load_result_of_kind(path, _KIND, "a serial-experiment")
        with result_file(path, "serial-experiment"):
            config = ExperimentConfig.from_dict(cfg["config"])
            per = []
            for i in range(len(config.conditions)):
                suffix = f"_{i}"
                per.append({k[: -len(suffix)]: v for k, v in arrays.items() if k.endswith(suffix)})
            return cls(config, cfg["rows"], per, arrays["data"], cfg.get("meta", {}))


def format_rows(rows: list[dict], columns: tuple[str, ...] = METRICS) -> str:
    """A fixed-width table of condition rows."""
    label_w = max(12, *(len(r["label"]) for r in rows))
    head = f"{'condition':<{label_w}}  {'family':<9} {'T':>4} {'sampler':<12}" + "".join(
        f" {c:>12}" for c in columns
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        vals = "".join(f" {r[c]:>12.5g}" for c in columns)
        lines.append(
            f"{r['label']:<{label_w}}  {r['family']:<9} {r['T']:>4} {r['sampler']:<12}{vals}"
        )
    return "\n".join(lines)


def _empty_arrays(config: ExperimentConfig, grid: Grid) -> dict[str, np.ndarray]:
    """The outputs of every condition, zero (their shapes define a valid checkpoint)."""
    n = len(config.conditions)
    arrays = {"metrics": np.zeros((n, len(METRICS))), "seconds": np.zeros(n)}
    for i, cond in enumerate(config.conditions):
        arrays[f"sigmas_{i}"] = np.zeros(cond.sigmas().shape)
        arrays[f"generated_{i}"] = np.zeros(grid.shape)
        if cond.keep_trajectory:
            arrays[f"q_{i}"] = np.zeros((cond.T + 1, *grid.shape))
            arrays[f"p_{i}"] = np.zeros((cond.T + 1, *grid.shape))
    return arrays


def run_experiment(
    config: ExperimentConfig, progress: bool = False, *, checkpoint: str | Path | None = None
) -> ExperimentResult:
    """Run every condition of ``config`` with exact Bayesian denoisers.

    The data density is the Swiss roll (:func:`gtv.validation.serial.data.swiss_roll`) on the
    configuration's grid.

    Parameters
    ----------
    config : ExperimentConfig
    progress : bool, default False
        Show a progress bar over the conditions.
    checkpoint : path, optional
        Resume file (kind ``"serial-experiment-partial"``), written atomically after every
        condition and read at the start, so an interrupted run (Ctrl-C, a killed process)
        continues with the first unfinished condition; the chains are deterministic, so the
        result equals an uninterrupted run's bit for bit. A checkpoint of another configuration
        raises ``ValueError``; a damaged one is reported in one warning line and ignored.
        Removed when the run completes.
    """
    if not isinstance(config, ExperimentConfig):
        raise TypeError(f"config must be an ExperimentConfig, got {type(config).__name__}")
    grid = make_grid(config.grid, config.h)
    data = density("swiss-roll", grid)
    n = len(config.conditions)
    ckpt = TaskCheckpoint(checkpoint, _PARTIAL, config.to_dict(), _empty_arrays(config, grid), n)
    arrays = ckpt.arrays
    t_all = time.perf_counter()
    bar = tqdm(total=n, initial=ckpt.resumed, desc=config.name, disable=not progress, leave=False)
    for i, cond in enumerate(config.conditions):
        if ckpt.done[i]:
            continue
        t0 = time.perf_counter()
        metrics, arr = run_condition(cond, grid, data)
        arrays["metrics"][i] = [metrics[m] for m in METRICS]
        for k, v in arr.items():
            arrays[f"{k}_{i}"][...] = v
        arrays["seconds"][i] = time.perf_counter() - t0
        ckpt.mark_done(i)
        bar.update()
    bar.close()
    rows, per = [], []
    for i, cond in enumerate(config.conditions):
        rows.append(
            {
                "label": cond.label,
                "family": cond.family,
                "schedule": cond.schedule,
                "T": cond.T,
                "sampler": "inject" if cond.inject_noise else "denoise-only",
                "terminal_density": cond.terminal,
                **{m: float(v) for m, v in zip(METRICS, arrays["metrics"][i], strict=True)},
            }
        )
        keys = (
            ("sigmas", "generated", "q", "p") if cond.keep_trajectory else ("sigmas", "generated")
        )
        per.append({k: arrays[f"{k}_{i}"] for k in keys})
    meta = {
        "seconds": [float(s) for s in arrays["seconds"]],
        "total_seconds": time.perf_counter() - t_all,
        "resumed_conditions": ckpt.resumed,
    }
    ckpt.finish()
    return ExperimentResult(config, rows, per, data, meta)
