"""Numerical constants of the Fokker-Planck scheme (see :mod:`gtv.numerics.fokker_planck.solver`).

Shared by the numba kernels and the numpy reference backend, so both use the same numbers.
"""

from __future__ import annotations

import math

__all__ = [
    "FCT_MARGIN",
    "NOISE_TOL",
    "PARALLEL_MIN_CELLS",
    "PIVOT_FLOOR",
    "SCHEMES",
    "SELLING_MAXIT",
    "SELLING_TOL",
    "TRBDF2_C1",
    "TRBDF2_C2",
    "TRBDF2_GAMMA",
    "TRBDF2_KAPPA",
    "W_MAX",
]

#: Available time/space schemes (see :mod:`gtv.numerics.fokker_planck.solver`).
SCHEMES = ("tr-bdf2-fct", "chang-cooper-be")

# TR-BDF2 with gamma = 2 - sqrt(2): both stages use the matrix V - KAPPA ds L.
TRBDF2_GAMMA = 2.0 - math.sqrt(2.0)
TRBDF2_KAPPA = 1.0 - math.sqrt(0.5)  # = gamma/2 = (1 - gamma)/(2 - gamma)
TRBDF2_C1 = 1.0 / (TRBDF2_GAMMA * (2.0 - TRBDF2_GAMMA))
TRBDF2_C2 = (1.0 - TRBDF2_GAMMA) ** 2 / (TRBDF2_GAMMA * (2.0 - TRBDF2_GAMMA))
# The FCT limiter leaves this fraction of every cell's low-order mass untouched, which keeps the
# result non-negative despite round-off.
FCT_MARGIN = 1e-12
# The high-order solve of a line is used only if every LU pivot is >= this fraction of the cell
# volume (otherwise the step is too long for the compression rate and the line falls back to the
# low-order solution, counted in ``n_fallback``).
PIVOT_FLOOR = 0.5
# Relative tolerances for accepting the noise: negative entries / eigenvalues down to
# -NOISE_TOL * scale are rounding and are set to zero; asymmetry up to NOISE_TOL * scale is
# averaged away. Selling's iteration stops when every pair product is <= SELLING_TOL * trace.
NOISE_TOL = 1e-12
SELLING_TOL = 1e-14
SELLING_MAXIT = 200
# With ``parallel=None`` grids with at least this many cells run the line sweeps in parallel
# (numba prange over lines). Thread launches cost more than they save on smaller grids, and on a
# busy machine (more runnable threads than cores) a parallel sweep can be ~10x slower than serial.
PARALLEL_MIN_CELLS = 250_000

W_MAX = 700.0  # largest |w| for which the Chang-Cooper weights are formed explicitly
