"""The numba backend of the Fokker-Planck solver (the default).

The scheme is described in :mod:`gtv.numerics.fokker_planck.solver`. A backend turns the
coefficients of one split step into sweep operators (``axis_op``, ``cross_op``), decomposes a
full 2-D noise (``selling``) and applies a sweep in place (``sweep``, returning the mass moved by
the limiter and the number of fallback lines).
:class:`gtv.numerics.fokker_planck.numpy_backend.NumpyBackend` is its plain reference.
"""

from __future__ import annotations

import numba
import numpy as np

from gtv.numerics.fokker_planck.chang_cooper import (
    axis_coeffs_parallel,
    axis_coeffs_serial,
    cross_coeffs,
)
from gtv.numerics.fokker_planck.constants import PARALLEL_MIN_CELLS
from gtv.numerics.fokker_planck.fct import sweep_parallel, sweep_serial
from gtv.numerics.fokker_planck.geometry import Geometry, direction_chains
from gtv.numerics.fokker_planck.selling import selling_decomposition

__all__ = ["NumbaBackend"]


class NumbaBackend:
    """Numba kernels for the face coefficients, the Selling decomposition and the line sweeps.

    Thomas algorithm per line; for the M-matrices it involves every operation adds non-negative
    numbers, so the low-order solution is non-negative exactly in floating point. Serial or
    parallel over lines (``parallel``; the same result for any thread count). ``parallel=None``
    runs in parallel on grids of at least ``PARALLEL_MIN_CELLS`` cells when numba has more than
    one thread.
    """

    name = "numba"

    def __init__(self, geom: Geometry, parallel: bool | None = None):
        self.geom = geom
        self._chains: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        if parallel is None:
            parallel = geom.vol.size >= PARALLEL_MIN_CELLS and numba.get_num_threads() > 1
        self.parallel = bool(parallel)

    def axis_op(self, k: int, a: np.ndarray, q: np.ndarray) -> tuple:
        ax = self.geom.axes[k]
        f = a.shape[0]
        cpl, cml, cph, cmh = (np.empty(f) for _ in range(4))
        kernel = axis_coeffs_parallel if self.parallel else axis_coeffs_serial
        kernel(a, q, ax["ptr"], ax["idx"], ax["h"], ax["theta"], ax["area"], cpl, cml, cph, cmh)
        return (ax["ptr"], ax["idx"], cpl, cml, cph, cmh)

    def cross_op(self, e: tuple[int, int], rho: np.ndarray) -> tuple:
        if e not in self._chains:
            self._chains[e] = direction_chains(self.geom.nx, self.geom.ny, e[0], e[1])
        ptr, idx = self._chains[e]
        f = idx.shape[0] - (ptr.shape[0] - 1)
        cp, cm = np.empty(f), np.empty(f)
        cross_coeffs(rho, self.geom.vol, ptr, idx, cp, cm)
        return (ptr, idx, cp, cm, cp, cm)

    def selling(self, qxx, qxy, qyy, hx, hy, kmax):
        return selling_decomposition(qxx, qxy, qyy, hx, hy, kmax, parallel=self.parallel)

    def sweep(self, p: np.ndarray, op: tuple, ds: float, high: bool) -> tuple[float, int]:
        ptr, idx, cpl, cml, cph, cmh = op
        kernel = sweep_parallel if self.parallel and ptr.shape[0] > 2 else sweep_serial
        lim, fb = kernel(p, self.geom.vol, ptr, idx, cpl, cml, cph, cmh, ds, high)
        return float(lim), int(fb)
