"""BLAS and LAPACK routines numba does not expose, called through SciPy's Cython wrappers.

numba's ``@`` reaches BLAS ``dgemm``; a Gram matrix ``phi^T phi`` needs only one triangle, which
``dsyrk`` computes in half the operations, and numba has no in-place Cholesky factorization.
:func:`gram_lower_into` calls SciPy's ``dsyrk``, :func:`lower_right_multiply_inplace` its
``dtrmm`` and :func:`cholesky_lower_inplace` its LAPACK ``dpotrf`` (the same OpenBLAS that
``scipy.linalg`` uses) from inside compiled code; their references are ``phi.T @ phi``,
``b @ numpy.tril(low)`` and ``numpy.linalg.cholesky`` (tests compare them).
"""

from __future__ import annotations

import functools

import llvmlite.binding as llvm
import numba
import numpy as np
from numba.core import types
from numba.extending import get_cython_function_address
from threadpoolctl import ThreadpoolController

__all__ = [
    "cholesky_factor_checked",
    "cholesky_lower_inplace",
    "cholesky_solve_rows",
    "factored_solve_rows",
    "gram_lower_into",
    "lower_right_multiply_inplace",
    "outer_lower_into",
    "serial_blas",
]

# SciPy's dsyrk, registered with LLVM under a fixed symbol name: compiled code refers to the
# name (so it can be cached on disk), and importing this module registers the address again.
llvm.add_symbol("gtv_scipy_dsyrk", get_cython_function_address("scipy.linalg.cython_blas", "dsyrk"))
_dsyrk = types.ExternalFunction("gtv_scipy_dsyrk", types.void(*([types.voidptr] * 10)))
_UPPER, _NO_TRANS, _TRANS, _LEFT = 85, 78, 84, 76  # ASCII 'U', 'N', 'T', 'L'
llvm.add_symbol(
    "gtv_scipy_dpotrf", get_cython_function_address("scipy.linalg.cython_lapack", "dpotrf")
)
_dpotrf = types.ExternalFunction("gtv_scipy_dpotrf", types.void(*([types.voidptr] * 5)))
llvm.add_symbol("gtv_scipy_dtrmm", get_cython_function_address("scipy.linalg.cython_blas", "dtrmm"))
_dtrmm = types.ExternalFunction("gtv_scipy_dtrmm", types.void(*([types.voidptr] * 11)))


@numba.njit(cache=True, inline="always")
def _syrk_upper(trans, n, k, a, c):
    """BLAS ``dsyrk('U', trans)``: the upper triangle of the Fortran ``C`` (n x n) = ``op(A)
    op(A)^T`` with ``A`` the Fortran view of ``a`` (its leading dimension ``a.shape[1]``)."""
    chars = np.array([_UPPER, trans], dtype=np.uint8)
    ints = np.array([n, k, a.shape[1]], dtype=np.int32)
    scalars = np.array([1.0, 0.0])
    _dsyrk(
        chars[0:].ctypes, chars[1:].ctypes, ints[0:].ctypes, ints[1:].ctypes,
        scalars[0:].ctypes, a.ctypes, ints[2:].ctypes, scalars[1:].ctypes, c.ctypes,
        ints[0:].ctypes,
    )  # fmt: skip


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
    _syrk_upper(_NO_TRANS, f, p, phi, out)


@numba.njit(cache=True)
def outer_lower_into(phi, out):
    """``out[i, k] = sum_j phi[i, j] phi[k, j]`` for ``k <= i`` (the lower triangle of
    ``phi phi^T``; the strict upper triangle of ``out`` is left as it was).

    ``phi`` (P, F) and ``out`` (P, P) C-contiguous float64. Read as Fortran arrays ``phi`` is
    ``A`` (F x P), and ``dsyrk('U', 'T')`` computing the upper triangle of ``A^T A`` writes the
    lower triangle of ``out`` in C order. One BLAS thread inside a parallel loop.
    """
    p, f = phi.shape
    _syrk_upper(_TRANS, p, f, phi, out)


@numba.njit(cache=True)
def cholesky_lower_inplace(a):
    """Overwrite the lower triangle of the SPD matrix ``a`` (F, F), C-contiguous float64, with
    its Cholesky factor ``L`` (``a = L L^T``); the strict upper triangle is not read nor
    written. Returns LAPACK's ``info``: 0 on success, ``k > 0`` if the leading minor of order
    ``k`` is not positive definite.

    Read as a Fortran array, the lower triangle of ``a`` is the upper one of ``a^T = a``, which
    ``dpotrf('U')`` factors as ``U^T U`` in place: ``U^T`` is ``L``. Call it with BLAS limited to
    one thread when it runs inside a parallel loop.
    """
    f = a.shape[0]
    chars = np.array([_UPPER], dtype=np.uint8)
    ints = np.array([f, 0], dtype=np.int32)
    _dpotrf(chars.ctypes, ints[0:].ctypes, a.ctypes, ints[0:].ctypes, ints[1:].ctypes)
    return ints[1]


@numba.njit(cache=True)
def lower_right_multiply_inplace(b, low):
    """Overwrite ``b`` (n, F) with ``b @ L``, ``L`` the lower triangle of ``low`` (F, F) (its
    strict upper triangle is not read); both C-contiguous float64. Half the operations of a
    full product.

    Read as Fortran arrays ``b`` is ``B = b^T`` (F x n) and ``low`` is ``L^T`` (upper), so BLAS
    ``dtrmm('L', 'U', 'N', 'N')`` computing ``L^T B`` writes ``(b L)^T``, i.e. ``b L`` in C order.
    One BLAS thread inside a parallel loop.
    """
    n, f = b.shape
    chars = np.array([_LEFT, _UPPER, _NO_TRANS, _NO_TRANS], dtype=np.uint8)
    ints = np.array([f, n], dtype=np.int32)
    one = np.array([1.0])
    _dtrmm(
        chars[0:].ctypes, chars[1:].ctypes, chars[2:].ctypes, chars[3:].ctypes,
        ints[0:].ctypes, ints[1:].ctypes, one.ctypes, low.ctypes, ints[0:].ctypes, b.ctypes,
        ints[0:].ctypes,
    )  # fmt: skip


@numba.njit(cache=True, error_model="numpy", inline="always")
def cholesky_factor_checked(g):
    """Overwrite the lower triangle ``g`` (F, F) of an SPD matrix with its Cholesky factor
    ``L`` (:func:`cholesky_lower_inplace`) and check it. Status: 0 factorized; 1 not positive
    definite; 2 numerically singular (a pivot ``L_ii**2`` at or below ``F eps max_i g_ii``:
    Cholesky can succeed on such a matrix with meaningless pivots)."""
    f = g.shape[0]
    scale = 0.0
    for i in range(f):
        scale = max(scale, g[i, i])
    if cholesky_lower_inplace(g) != 0:
        return 1
    smallest = np.inf
    for i in range(f):
        smallest = min(smallest, g[i, i] * g[i, i])
    if not smallest > f * 2.220446049250313e-16 * scale:
        return 2
    return 0


@numba.njit(cache=True, error_model="numpy", inline="always")
def factored_solve_rows(g, rhs, w, y):
    """``w = rhs (L L^T)^{-1}`` (D, F) from the Cholesky factor ``L`` in the lower triangle of
    ``g`` (:func:`cholesky_factor_checked`), two substitutions per row of ``rhs``; ``y`` (F,) is
    a work buffer. Status: 0 solved; 3 non-finite weights."""
    f = g.shape[0]
    finite = True
    for c in range(rhs.shape[0]):
        for i in range(f):  # L y = b
            acc = rhs[c, i]
            for j in range(i):
                acc -= g[i, j] * y[j]
            y[i] = acc / g[i, i]
        for i in range(f - 1, -1, -1):  # L^T w = y, by rows of L (contiguous)
            wi = y[i] / g[i, i]
            w[c, i] = wi
            finite = finite and np.isfinite(wi)
            for j in range(i):
                y[j] -= g[i, j] * wi
    return 0 if finite else 3


@numba.njit(cache=True, error_model="numpy", inline="always")
def cholesky_solve_rows(g, rhs, w, y):
    """``w = rhs g^{-1}`` (D, F) for the SPD matrix whose lower triangle ``g`` holds, by LAPACK
    Cholesky (``g`` overwritten by its factor ``L``; :func:`cholesky_factor_checked`) and two
    substitutions per row of ``rhs`` (:func:`factored_solve_rows`); ``y`` (F,) is a work buffer.
    Status: 0 solved; 1 not positive definite; 2 numerically singular; 3 non-finite weights.
    """
    status = cholesky_factor_checked(g)
    if status != 0:
        return status
    return factored_solve_rows(g, rhs, w, y)


@functools.cache
def _controller() -> ThreadpoolController:
    # scanning the loaded libraries takes milliseconds: once per process (after this module
    # has loaded SciPy's BLAS)
    return ThreadpoolController()


def serial_blas():
    """A context manager limiting BLAS to one thread (for BLAS called inside, or right after, a
    numba parallel region: several OpenBLAS threads per core oversubscribe the machine)."""
    return _controller().limit(limits=1, user_api="blas")
