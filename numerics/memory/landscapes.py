"""Closed-form associative-memory landscapes (docs/math/memorization.md).

* Two memories a distance ``d`` apart (data coordinates, ``beta = alpha**2 / (2 sigma2)``): one
  minimum at the midpoint for ``beta d**2 <= 2``, two minima at ``+-s*`` along the segment above,
  with ``s* = (d/2) tanh(beta s* d)`` (:func:`two_memory_minimum`); the merge happens at the
  signal-to-noise ratio ``alpha**2 / sigma2 = 4 / d**2`` (:func:`merge_time` on a schedule).
* Memories uniform on the unit circle (K -> infinity):
  ``E(R) = R**2 + 1 - log I_0(2 beta R) / beta`` (:func:`circle_energy`, float-safe as
  ``(R - 1)**2 - log(i0e(2 beta R)) / beta``), radial score
  ``2 (I_1/I_0(2 beta R) - R)`` (:func:`circle_radial_score`) and the radius of the ring of minima
  ``R*`` with ``I_1/I_0(2 beta R*) = R*`` (:func:`circle_radius`; 0 for ``beta <= 1``).

The formulas are generated from :mod:`gtv.theory.memory` (``numerics/_generated/memory.py``);
the scaled Bessel values come from ``scipy.special.i0e`` / ``i1e`` (outside numba).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq
from scipy.special import i0e, i1e

from gtv.numerics._generated.memory import (
    circle_energy_scaled,
    circle_radial_score_scaled,
    merge_snr,
)
from gtv.numerics.checks import check_positive
from gtv.numerics.memory.collapse import time_at_snr

__all__ = [
    "circle_energy",
    "circle_radial_score",
    "circle_radius",
    "merge_time",
    "two_memory_minimum",
]


def _radii(R: object) -> np.ndarray:
    r = np.asarray(R, dtype=np.float64)
    if not np.all(np.isfinite(r)) or np.any(r < 0):
        raise ValueError("R must be finite and >= 0")
    return r


def circle_energy(R: object, beta: float) -> np.ndarray:
    """``E(R) = (R - 1)**2 - log(i0e(2 beta R)) / beta`` (= ``R**2 + 1 - log I_0(2 beta R)/beta``).

    Pham et al.'s convention ``E = -beta**-1 log <exp(-beta |x - xi|**2)>_circle``.
    """
    b = check_positive(beta, "beta")
    r = _radii(R)
    return circle_energy_scaled(r, b, i0e(2.0 * b * r))


def circle_radial_score(R: object, beta: float) -> np.ndarray:
    """``-dE/dR = 2 (I_1(2 beta R) / I_0(2 beta R) - R)``."""
    b = check_positive(beta, "beta")
    r = _radii(R)
    z = 2.0 * b * r
    return circle_radial_score_scaled(r, i0e(z), i1e(z))


def circle_radius(beta: float) -> float:
    """Radius ``R*`` of the ring of minima: ``I_1/I_0(2 beta R*) = R*``; 0 for ``beta <= 1``.

    ``I_1/I_0(z) < z/2`` for ``z > 0``, so for ``beta <= 1`` the radial score is negative for all
    ``R > 0`` and the only minimum is the centre; for ``beta > 1`` the root is bracketed in
    ``(0, 1)`` (the score is positive near 0, where it is ``2 (beta - 1) R + O(R**3)``, and
    negative at ``R = 1``).
    """
    b = check_positive(beta, "beta")
    if b <= 1.0:
        return 0.0

    def f(r: float) -> float:
        return float(i1e(2.0 * b * r) / i0e(2.0 * b * r)) - r

    lo = 1e-8
    while f(lo) <= 0.0:  # only for beta barely above 1
        lo *= 0.1
        if lo < 1e-300:
            return 0.0
    return float(brentq(f, lo, 1.0, xtol=1e-15, rtol=1e-15))


def two_memory_minimum(d: float, beta: float) -> float:
    """Position ``s* >= 0`` of the minima ``+-s*`` of two memories at ``+-d/2``.

    ``s* = (d/2) tanh(beta s* d)`` for ``beta d**2 > 2``; 0 (one minimum at the midpoint) for
    ``beta d**2 <= 2``.
    """
    dv = check_positive(d, "d")
    b = check_positive(beta, "beta")
    if b * dv * dv <= 2.0:
        return 0.0

    def f(s: float) -> float:
        return s - 0.5 * dv * math.tanh(b * s * dv)

    # f < 0 just above 0 (slope 1 - beta d**2/2 < 0) and f(d/2) > 0.
    lo = 1e-12 * dv
    while f(lo) >= 0.0:
        lo *= 0.1
        if lo < 1e-300:
            return 0.0
    return float(brentq(f, lo, 0.5 * dv, xtol=1e-15, rtol=1e-15))


def merge_time(d: float, schedule: object = "vp-linear") -> float:
    """Time at which two memories ``d`` apart merge: ``alpha_t**2 / sigma_t**2 = 4 / d**2``.

    Returns ``math.inf`` if they are still separate at ``T``.
    """
    dv = check_positive(d, "d")
    return time_at_snr(float(merge_snr(dv)), schedule)
