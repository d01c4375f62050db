"""A vectorizable error function for blocks of arguments (the erf networks' hot loop).

``math.erf`` is a scalar libm call that LLVM cannot vectorize (numba's pip build has no SVML).
:func:`erf_block` evaluates ``erf(u)`` and, at no extra cost, ``exp(-u**2)`` (which the
derivative ``erf'(u) = 2/sqrt(pi) exp(-u**2)`` needs) with branch-free arithmetic:

* ``|u| < 1``: ``erf(u) = u g(u**2)`` with ``g(y) = erf(sqrt y)/sqrt y``, a degree-13 polynomial in
  ``y`` on [0, 1];
* ``|u| >= 1``: ``erf(|u|) = 1 - exp(-u**2) erfcx(|u|)`` with ``erfcx(x) = exp(x**2) erfc(x)``, a
  degree-18 polynomial in ``t = (x - 3)/(x + 3)`` on ``x`` in [1, 6] (``x`` is clamped to 6:
  ``erfc(6) < 2.2e-17`` rounds ``erf`` to 1);
* ``exp`` by :func:`gtv.numerics.fastexp.exp_block` (argument clamped to -708, so ``exp(-u**2)``
  is at least 3e-308 instead of underflowing).

The coefficients are Chebyshev interpolants (at 14 and 19 Chebyshev points, 60-digit mpmath)
converted to the monomial basis; their condition numbers ``sum |c_j v**j| / |f|`` are below 3 on
the intervals. ``tests/numerics/test_fasterf.py`` regenerates them with mpmath and checks the
accuracy against mpmath (measured: at most 2 ulp, like ``scipy.special.erf``).
"""

from __future__ import annotations

import numba
import numpy as np

from gtv.numerics.fastexp import exp_block

__all__ = ["ERFCX_SHIFT", "LARGE", "SMALL", "erf_array", "erf_block"]

#: ``g(y) = erf(sqrt y)/sqrt y`` on ``y`` in [0, 1]: coefficients of ``y**0 .. y**13``.
SMALL = (
    1.1283791670955126,
    -0.37612638903183754,
    0.1128379167095512,
    -0.02686617064512984,
    0.0052239776254232985,
    -0.000854832702193483,
    0.00012055332902888736,
    -1.4925647567519332e-05,
    1.6462045441468418e-06,
    -1.6364642158167616e-07,
    1.4792401209404813e-08,
    -1.216456005728345e-09,
    8.709045129053106e-11,
    -4.230945824295338e-12,
)
#: ``erfcx(x)`` on ``x`` in [1, 6] as a polynomial in ``t = (x - K)/(x + K)``, ``K`` below:
#: coefficients of ``t**0 .. t**18``.
LARGE = (
    0.17900115118138996,
    -0.3262335600430372,
    0.24560380171233087,
    -0.1501159365007772,
    0.07166583719797825,
    -0.024392499318674116,
    0.004269136332839387,
    0.000707746439062207,
    -0.0005970619486416963,
    4.525529412129632e-05,
    6.405655737002857e-05,
    -1.2860421831200831e-05,
    -7.978119385932173e-06,
    2.119283446053111e-06,
    1.2519261188022667e-06,
    -2.902652004392866e-07,
    -2.2960836640172656e-07,
    2.1006932317945462e-08,
    3.0997111248611914e-08,
)
#: ``K`` of the map ``t = (x - K)/(x + K)``.
ERFCX_SHIFT = 3.0


@numba.njit(cache=True, error_model="numpy", fastmath={"contract"})
def erf_block(u, out, ex, n):
    """``out[:n] = erf(u[:n])`` and ``ex[:n] = exp(-u[:n]**2)``.

    ``ex`` is also the work array of the exponential (``ex`` may not be ``out``). Not inlined on
    purpose: its arithmetic (the Cody-Waite reduction in ``exp_block``) must not be reassociated
    by a caller's flags.
    """
    for i in range(n):
        ex[i] = -min(u[i] * u[i], 708.0)
    exp_block(ex, ex, n)
    for i in range(n):
        x = abs(u[i])
        y = x * x
        p = -4.230945824295338e-12
        p = p * y + 8.709045129053106e-11
        p = p * y - 1.216456005728345e-09
        p = p * y + 1.4792401209404813e-08
        p = p * y - 1.6364642158167616e-07
        p = p * y + 1.6462045441468418e-06
        p = p * y - 1.4925647567519332e-05
        p = p * y + 0.00012055332902888736
        p = p * y - 0.000854832702193483
        p = p * y + 0.0052239776254232985
        p = p * y - 0.02686617064512984
        p = p * y + 0.1128379167095512
        p = p * y - 0.37612638903183754
        p = p * y + 1.1283791670955126
        xc = min(max(x, 1.0), 6.0)
        t = (xc - ERFCX_SHIFT) / (xc + ERFCX_SHIFT)
        q = 3.0997111248611914e-08
        q = q * t + 2.1006932317945462e-08
        q = q * t - 2.2960836640172656e-07
        q = q * t - 2.902652004392866e-07
        q = q * t + 1.2519261188022667e-06
        q = q * t + 2.119283446053111e-06
        q = q * t - 7.978119385932173e-06
        q = q * t - 1.2860421831200831e-05
        q = q * t + 6.405655737002857e-05
        q = q * t + 4.525529412129632e-05
        q = q * t - 0.0005970619486416963
        q = q * t + 0.000707746439062207
        q = q * t + 0.004269136332839387
        q = q * t - 0.024392499318674116
        q = q * t + 0.07166583719797825
        q = q * t - 0.1501159365007772
        q = q * t + 0.24560380171233087
        q = q * t - 0.3262335600430372
        q = q * t + 0.17900115118138996
        v = x * p if x < 1.0 else 1.0 - ex[i] * q
        out[i] = v if u[i] >= 0.0 else -v


@numba.njit(cache=True, error_model="numpy")
def _erf_array(u):
    out = np.empty(u.shape[0])
    ex = np.empty(u.shape[0])
    erf_block(u, out, ex, u.shape[0])
    return out, ex


def erf_array(u: object) -> tuple[np.ndarray, np.ndarray]:
    """``(erf(u), exp(-u**2))`` of a finite 1-D array through :func:`erf_block` (for tests)."""
    u = np.ascontiguousarray(u, dtype=np.float64)
    if u.ndim != 1 or not np.all(np.isfinite(u)):
        raise ValueError(f"u must be a finite 1-D array, got shape {u.shape}")
    return _erf_array(u)
