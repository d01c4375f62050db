"""BLAS routines numba does not expose, called through SciPy's Cython BLAS.

numba's ``@`` reaches BLAS ``dgemm``; a Gram matrix ``phi^T phi`` needs only one triangle, which
``dsyrk`` computes in half the operations. :func:`gram_lower_into` calls SciPy's ``dsyrk`` (the
same OpenBLAS that ``scipy.linalg`` uses) from inside compiled code; its reference is
``phi.T @ phi`` (a test compares them).
"""

from __future__ import annotations

import llvmlite.binding as llvm
import numba
import numpy as np
from numba.core import types
from numba.extending import get_cython_function_address

__all__ = ["gram_lower_into"]

# SciPy's dsyrk, registered with LLVM under a fixed symbol name: compiled code refers to the
# name (so it can be cached on disk), and importing this module registers the address again.
llvm.add_symbol("gtv_scipy_dsyrk", get_cython_function_address("scipy.linalg.cython_blas", "dsyrk"))
_dsyrk = types.ExternalFunction("gtv_scipy_dsyrk", types.void(*([types.voidptr] * 10)))
_UPPER, _NO_TRANS = 85, 78  # ASCII 'U', 'N'


@numba.njit(cache=True)
def gram_lower_into(phi, out):
    """``out[i, k] = sum_j phi[j, i] phi[j, k]`` for ``k <= i`` (the lower triangle; the strict
    upper triangle of ``out`` is left as it was).

    ``phi`` (P, F) and ``out`` (F, F) must be C-contiguous float64. Read as Fortran arrays,
    ``phi`` is ``A`` (F x P) and ``out`` is ``C^T``, so BLAS ``dsyrk('U', 'N')`` computing the
    upper triangle of ``C = A A^T`` writes the lower triangle of ``out`` in C order. Call it with
    BLAS limited to one thread when it runs inside a parallel loop.
    """
    p, f = phi.shape
    chars = np.array([_UPPER, _NO_TRANS], dtype=np.uint8)
    ints = np.array([f, p], dtype=np.int32)
    scalars = np.array([1.0, 0.0])
    _dsyrk(
        chars[0:].ctypes, chars[1:].ctypes, ints[0:].ctypes, ints[1:].ctypes,
        scalars[0:].ctypes, phi.ctypes, ints[0:].ctypes, scalars[1:].ctypes, out.ctypes,
        ints[0:].ctypes,
    )  # fmt: skip
