"""The result of a Fokker-Planck run: density, diagnostics, save and load."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gtv.numerics.fokker_planck.grid import FVGrid, grid_from_edges
from gtv.numerics.io import load_result_of_kind, require_finite, result_file, save_result

__all__ = ["FokkerPlanckResult", "load_fokker_planck"]


@dataclass(frozen=True)
class FokkerPlanckResult:
    """Density of the reverse-time process on a grid, with diagnostics.

    Attributes
    ----------
    density : ndarray, shape ``grid.shape``
        Cell averages of ``p(x)`` at ``t = eps``.
    grid : FVGrid
        The grid (``grid.centres``, ``grid.edges``, ``grid.widths``, ``grid.volumes``).
    times : ndarray, shape (K + 1,)
        Diffusion times of the step grid, from ``T`` down to ``eps`` (uniform, plus the
        requested ``save_times``).
    mass : ndarray, shape (K + 1,)
        Total mass ``sum(p * volumes)`` at each time of ``times``.
    boundary_mass : ndarray, shape (K + 1,)
        Fraction of the mass in the boundary layer at each time (*Boundary check* in
        :mod:`gtv.numerics.fokker_planck.solver`).
    limited_mass : ndarray, shape (K,)
        Mass moved by the FCT positivity limiter in each step, relative to the total mass
        (0 for ``scheme="chang-cooper-be"``).
    save_times : ndarray, shape (S,)
        Requested intermediate times, sorted from ``T`` towards ``eps``.
    snapshots : ndarray, shape ``(S,) + grid.shape``
        The density at ``save_times``.
    n_fallback : int
        Line sweeps whose high-order solve was rejected (step too long for the compression rate)
        and replaced by the low-order solution; 0 in a well-resolved run.
    noise_dropped : float
        Largest relative trace of the noise the lattice decomposition could not represent
        (2-D full ``Q`` only; 0 otherwise).
    config : dict
        JSON-serializable configuration of the run.
    """

    density: np.ndarray
    grid: FVGrid
    times: np.ndarray
    mass: np.ndarray
    boundary_mass: np.ndarray
    limited_mass: np.ndarray
    save_times: np.ndarray
    snapshots: np.ndarray
    n_fallback: int = 0
    noise_dropped: float = 0.0
    config: dict = field(default_factory=dict)

    @property
    def centres(self) -> tuple[np.ndarray, ...]:
        return self.grid.centres

    @property
    def widths(self) -> tuple[np.ndarray, ...]:
        return self.grid.widths

    @property
    def mass_error(self) -> float:
        """``max |mass(t) - mass(T)| / mass(T)`` over the run."""
        return float(np.max(np.abs(self.mass - self.mass[0])) / self.mass[0])

    def save(self, path: str | Path) -> Path:
        """Write to ``path`` (``.npz`` appended): arrays plus the configuration as JSON.

        The format is the one of :mod:`gtv.numerics.io` (readable with ``allow_pickle=False``).
        """
        arrays = {
            "density": self.density,
            "times": self.times,
            "mass": self.mass,
            "boundary_mass": self.boundary_mass,
            "limited_mass": self.limited_mass,
            "save_times": self.save_times,
            "snapshots": self.snapshots,
        }
        for k, e in enumerate(self.grid.edges):
            arrays[f"edges_{k}"] = np.asarray(e)
        config = dict(
            self.config, n_fallback=int(self.n_fallback), noise_dropped=float(self.noise_dropped)
        )
        return save_result(path, arrays, config, kind="fokker_planck_result")

    _ARRAYS = ("density", "times", "mass", "boundary_mass", "limited_mass", "save_times")

    @classmethod
    def load(cls, path: str | Path) -> FokkerPlanckResult:
        """Read a file written by :meth:`save` (never unpickles); ``ValueError`` naming the file
        if it is corrupt, of another kind, or inconsistent (shapes against the grid, non-finite
        values)."""
        arrays, config = load_result_of_kind(
            path,
            "fokker_planck_result",
            "a FokkerPlanckResult",
            legacy=lambda c: "n_fallback" in c and "noise_dropped" in c,
        )
        with result_file(path, "FokkerPlanckResult"):
            edges = [arrays.pop(f"edges_{k}") for k in range(2) if f"edges_{k}" in arrays]
            grid = grid_from_edges(*edges)
            require_finite(arrays, *cls._ARRAYS, "snapshots")
            K1, S = arrays["times"].shape[0], arrays["save_times"].shape[0]
            shapes = {
                "density": grid.shape,
                "times": (K1,),
                "mass": (K1,),
                "boundary_mass": (K1,),
                "limited_mass": (K1 - 1,),
                "save_times": (S,),
                "snapshots": (S, *grid.shape),
            }
            for name, shape in shapes.items():
                if arrays[name].shape != shape:
                    raise ValueError(f"array {name!r} has shape {arrays[name].shape}, not {shape}")
            n_fallback = int(config.pop("n_fallback", 0))
            noise_dropped = float(config.pop("noise_dropped", 0.0))
            return cls(
                grid=grid,
                n_fallback=n_fallback,
                noise_dropped=noise_dropped,
                config=config,
                **{k: arrays[k] for k in shapes},
            )


def load_fokker_planck(path: str | Path) -> FokkerPlanckResult:
    """Alias of :meth:`FokkerPlanckResult.load`."""
    return FokkerPlanckResult.load(path)
