"""Finite-volume Fokker-Planck solver for reverse-time densities in 1-D and 2-D.


:func:`solve_fokker_planck` evolves cell averages of a density under ``dx = b dt + xi`` from
``t = T`` down to ``t = eps`` (positivity-limited second-order finite volumes, Strang splitting,
Selling's decomposition for a full 2-D noise; the conventions and the scheme are documented in
:mod:`gtv.numerics.fokker_planck.solver`). Grids come from :func:`uniform_grid` or
:func:`grid_from_edges`, initial densities from :func:`gaussian_cell_averages`, results are
:class:`FokkerPlanckResult` (saved and loaded with :mod:`gtv.numerics.io`).
:func:`schedule_drift` and :func:`solve_clipped_white_noise` build the drifts and the white-noise
densities of the theories (docs/math/predictions.md). Two implementations of the scheme exist,
numba kernels and a plain numpy/scipy reference, and the tests check one against the other.
"""

from gtv.numerics.fokker_planck.constants import SCHEMES
from gtv.numerics.fokker_planck.grid import (
    MIN_CELLS,
    FVGrid,
    gaussian_cell_averages,
    grid_from_edges,
    uniform_grid,
)
from gtv.numerics.fokker_planck.result import FokkerPlanckResult, load_fokker_planck
from gtv.numerics.fokker_planck.solver import BACKENDS, solve_fokker_planck
from gtv.numerics.fokker_planck.white_noise import schedule_drift, solve_clipped_white_noise

__all__ = [
    "BACKENDS",
    "MIN_CELLS",
    "SCHEMES",
    "FVGrid",
    "FokkerPlanckResult",
    "gaussian_cell_averages",
    "grid_from_edges",
    "load_fokker_planck",
    "schedule_drift",
    "solve_clipped_white_noise",
    "solve_fokker_planck",
    "uniform_grid",
]
