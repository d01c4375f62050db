"""A vectorizable exponential for blocks of arguments (used by the 1-D sampler's hot loop).

``math.exp`` is a scalar libm call that LLVM cannot vectorize (numba's pip build has no SVML).
:func:`exp_block` computes ``exp`` with branch-free arithmetic that LLVM turns into SIMD code:
Cody-Waite range reduction ``y = k ln2 + r`` with ``|r| <= ln2/2``, a degree-13 Taylor polynomial
for ``exp(r)`` (truncation error < 5e-18 relative), and the scale ``2**k`` built from its IEEE bit
pattern in registers (:func:`exp_inline`, two bit casts that cost nothing), so the exponential
vectorizes inside any loop over points together with the arithmetic around it. Valid for
``-708 <= y <= 709`` (no denormal results); the error is about 1 ulp. Its reference is
``numpy.exp``; a test asserts they agree.
"""

from __future__ import annotations

import numba
import numpy as np
from numba.core import types as nbtypes
from numba.extending import intrinsic

__all__ = ["EXP_BLOCK_RANGE", "exp_block", "exp_inline"]

#: Arguments for which :func:`exp_block` is accurate (normal, finite results).
EXP_BLOCK_RANGE = (-708.0, 709.0)

_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # ln 2 with 32 trailing zero bits: k * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_MAGIC = 1023.0 + 4503599627370496.0  # the biased exponent 1023 + k lands in the low mantissa bits


@intrinsic
def _reinterpret(typingctx, x):
    """The same 64 bits read as the other type: a float64's IEEE pattern as an int64, or an
    int64 as the float64 with that pattern (a register bit cast, no conversion)."""
    if isinstance(x, nbtypes.Float):
        target = nbtypes.int64
    elif isinstance(x, nbtypes.Integer):
        target = nbtypes.float64
    else:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(target))

    return target(x), codegen


@numba.njit(cache=True, error_model="numpy", fastmath={"contract"}, inline="always")
def exp_inline(y):
    """``exp(y)`` for one value, with ``2**k`` built in registers: inside a loop over points it
    vectorizes with the surrounding arithmetic (no pass over memory). Valid for
    ``-708 <= y <= 709``."""
    k = np.floor(y * _LOG2E + 0.5)
    r = (y - k * _LN2_HI) - k * _LN2_LO
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    poly = p * r + 1.0
    return poly * _reinterpret(_reinterpret(k + _MAGIC) << 52)


@numba.njit(cache=True, error_model="numpy", fastmath={"contract"}, inline="always")
def exp_block(y, out, n):
    """``out[:n] = exp(y[:n])`` (:func:`exp_inline` in one vectorized loop; ``out`` may be
    ``y``)."""
    for i in range(n):
        out[i] = exp_inline(y[i])


@numba.njit(cache=True, error_model="numpy")
def _exp_inline_array(y):
    out = np.empty(y.shape[0])
    for i in range(y.shape[0]):
        out[i] = exp_inline(y[i])
    return out


@numba.njit(cache=True, error_model="numpy")
def _exp_array(y):
    out = np.empty(y.shape[0])
    exp_block(y, out, y.shape[0])
    return out


def exp_array(y: object, method: str = "block") -> np.ndarray:
    """``exp`` of a 1-D array through :func:`exp_block` (``method="block"``) or
    :func:`exp_inline` (``"inline"``), for tests and small uses."""
    y = np.ascontiguousarray(y, dtype=np.float64)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D, got shape {y.shape}")
    if method not in ("block", "inline"):
        raise ValueError(f"method must be 'block' or 'inline', got {method!r}")
    if y.size and (y.min() < EXP_BLOCK_RANGE[0] or y.max() > EXP_BLOCK_RANGE[1]):
        raise ValueError(f"y must lie in {EXP_BLOCK_RANGE}, got [{y.min():g}, {y.max():g}]")
    return _exp_array(y) if method == "block" else _exp_inline_array(y)
