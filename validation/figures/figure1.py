"""The paper's Figure 1: the proxy-score variance fraction of four 2-D data sets
(docs/math/conventions.md; Vastola 2025, Fig. 1).

:func:`compute_figure1` returns a :class:`Figure1Result` (arrays + full configuration,
saveable and reloadable) whose ``plot`` method writes PNG and/or PDF files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from gtv.numerics.posterior import posterior_stats
from gtv.numerics.schedules import get_schedule
from gtv.validation.figures.base import new_figure, write_figure
from gtv.validation.results import load_result_of_kind, require_finite, result_file, save_result

__all__ = ["FIGURE1_DATASETS", "FIGURE1_TIMES", "Figure1Result", "compute_figure1"]


def _hexagon() -> np.ndarray:
    ang = np.arange(6) * np.pi / 3
    return np.stack([np.cos(ang), np.sin(ang)], axis=1)


#: The four 2-D training sets of the paper's Fig. 1.
FIGURE1_DATASETS: dict[str, np.ndarray] = {
    "hexagon": _hexagon(),
    "line": np.stack([np.linspace(-1, 1, 6), np.linspace(-1, 1, 6)], axis=1),
    "L-shape": np.array([[-1, -1], [-1, 0], [-1, 1], [0, -1], [0.5, -1], [1, -1]], dtype=float),
    "random": np.stack(
        [
            np.array([-1, -0.9, -0.3, 0.1, 0.2, 0.9]),
            np.array([-1, 1, 0.2, -0.1, -0.1, 0.7]),
        ],
        axis=1,
    ),
}

FIGURE1_TIMES = (0.05, 0.1, 0.2, 0.5, 0.75)


@dataclass
class Figure1Result:
    """Proxy-score variance fraction on a 2-D grid for each data set and time.

    Attributes
    ----------
    frac : ndarray, shape (n_datasets, n_times, n_grid, n_grid)
        ``tr C / (tr C + |s|**2)``; ``frac[k, j, iy, ix]`` is at ``(grid[ix], grid[iy])``.
    grid : ndarray, shape (n_grid,)
        Coordinates along each axis.
    times : ndarray
    datasets : dict of name -> (6, 2) array
    config : dict
    """

    frac: np.ndarray
    grid: np.ndarray
    times: np.ndarray
    datasets: dict[str, np.ndarray]
    config: dict = field(default_factory=dict)

    def save(self, path: str | Path) -> Path:
        """Save arrays and configuration to ``path`` (``.npz``)."""
        arrays = {"frac": self.frac, "grid": self.grid, "times": self.times}
        arrays.update({f"data:{k}": v for k, v in self.datasets.items()})
        return save_result(path, arrays, self.config, kind="figure1_result")

    @classmethod
    def load(cls, path: str | Path) -> Figure1Result:
        """Reload a result written by :meth:`save`; ``ValueError`` naming the file if it is
        corrupt, of another kind, or inconsistent (shapes against the configuration, non-finite
        values or ``frac`` outside [0, 1], times outside (0, T])."""
        arrays, config = load_result_of_kind(
            path, "figure1_result", "a Figure 1 result", legacy=lambda c: c.get("figure") == 1
        )
        with result_file(path, "Figure 1 result"):
            names = list(config["datasets"])
            frac, grid, times = arrays["frac"], arrays["grid"], arrays["times"]
            get_schedule(config["schedule"], config["T"]).check_times(times, "times")
            shape = (len(names), times.size, grid.size, grid.size)
            if grid.shape != (config["n_grid"],) or times.ndim != 1 or frac.shape != shape:
                raise ValueError(
                    f"frac {frac.shape}, grid {grid.shape}, times {times.shape} do not match "
                    f"{len(names)} data sets and n_grid = {config['n_grid']}"
                )
            require_finite(arrays, "frac", "grid", *(f"data:{k}" for k in names))
            if frac.size and not (frac.min() >= 0 and frac.max() <= 1):
                raise ValueError("frac must lie in [0, 1]")
            return cls(frac, grid, times, {k: arrays[f"data:{k}"] for k in names}, config)

    def plot(self, out_dir: str | Path, formats: tuple[str, ...] = ("png", "pdf")) -> list[Path]:
        """Draw the grid of heat maps (rows: data sets, columns: times) and save it."""
        names = list(self.datasets)
        nrow, ncol = len(names), len(self.times)
        fig = new_figure((2.2 * ncol + 0.8, 2.2 * nrow))
        axes = fig.subplots(nrow, ncol, squeeze=False)
        lo, hi = float(self.grid[0]), float(self.grid[-1])
        im = None
        for r, name in enumerate(names):
            pts = self.datasets[name]
            for c, tv in enumerate(self.times):
                ax = axes[r, c]
                im = ax.imshow(
                    self.frac[r, c],
                    origin="lower",
                    extent=(lo, hi, lo, hi),
                    vmin=0.0,
                    vmax=1.0,
                    cmap="viridis",
                    interpolation="nearest",
                )
                ax.scatter(pts[:, 0], pts[:, 1], s=12, c="red", edgecolors="white", linewidths=0.5)
                ax.set_xticks([])
                ax.set_yticks([])
                if r == 0:
                    ax.set_title(f"t = {tv:g}", fontsize=10)
                if c == 0:
                    ax.set_ylabel(name, fontsize=10)
        fig.colorbar(im, ax=axes, shrink=0.8, label=r"tr$\,C$ / (tr$\,C$ + $\|s\|^2$)")
        fig.suptitle(f"Proxy-score variance fraction ({self.config.get('schedule', '')})")
        return write_figure(fig, out_dir, "figure1", formats, dpi=150)


def compute_figure1(
    n_grid: int = 401,
    times: tuple[float, ...] = FIGURE1_TIMES,
    extent: float = 2.0,
    schedule: str = "linear-variance",
    progress: bool = True,
) -> Figure1Result:
    """Compute the data of the paper's Fig. 1 (``frac`` on ``[-extent, extent]**2``).

    Parameters
    ----------
    n_grid : int, default 401
        Grid points per axis (at least 2).
    times : tuple of float, default (0.05, 0.1, 0.2, 0.5, 0.75)
        Times, each in ``(0, T]`` of the schedule.
    extent : float, default 2.0
        Half-width of the square plotted.
    schedule : str, default "linear-variance"
        Schedule name (the paper uses ``linear-variance``).
    progress : bool, default True
        Show a progress bar.
    """
    if int(n_grid) != n_grid or n_grid < 2:
        raise ValueError(f"n_grid must be an integer >= 2, got {n_grid!r}")
    if not (np.isfinite(extent) and extent > 0):
        raise ValueError(f"extent must be a finite positive number, got {extent!r}")
    sched = get_schedule(schedule)
    times_arr = sched.check_times(np.asarray(times, dtype=float), argname="times")
    if times_arr.ndim != 1 or times_arr.size < 1:
        raise ValueError("times must be a non-empty 1-D sequence")
    grid = np.linspace(-extent, extent, int(n_grid))
    gx, gy = np.meshgrid(grid, grid)
    queries = np.stack([gx.ravel(), gy.ravel()], axis=1)
    frac = np.empty((len(FIGURE1_DATASETS), times_arr.size, grid.size, grid.size))
    jobs = [(k, j) for k in range(len(FIGURE1_DATASETS)) for j in range(times_arr.size)]
    names = list(FIGURE1_DATASETS)
    for k, j in tqdm(jobs, desc="figure 1", disable=not progress, leave=False):
        stats = posterior_stats(FIGURE1_DATASETS[names[k]], queries, times_arr[j], sched)
        frac[k, j] = stats.frac.reshape(grid.size, grid.size)
    config = {
        "figure": 1,
        "schedule": sched.name,
        "T": sched.T,
        "times": times_arr.tolist(),
        "n_grid": int(n_grid),
        "extent": float(extent),
        "datasets": names,
    }
    return Figure1Result(frac, grid, times_arr, dict(FIGURE1_DATASETS), config)
