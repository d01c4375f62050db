"""Argument checks of the closed forms (sympy values: numbers or symbols).

Numeric arguments are checked against their range, symbolic ones only where sympy's assumptions
already decide (e.g. a symbol declared positive passes :func:`check_positive`).
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy as sp

__all__ = [
    "START_CHOICES",
    "check_bin_edges",
    "check_covariance_matrix",
    "check_kappa",
    "check_positive",
    "check_start",
]

#: Where the sampler starts: ``x_T ~ N(0, sigma_T**2)`` ("sampler") or ``x_T ~ p(x|T)`` ("exact").
START_CHOICES = ("sampler", "exact")


def check_positive(value: object, argname: str) -> sp.Expr:
    """Return ``value`` as a sympy expression; ``ValueError`` if it is a number ``<= 0``."""
    try:
        v = sp.sympify(value)
    except (sp.SympifyError, TypeError):
        raise ValueError(f"{argname} must be a positive number or symbol, got {value!r}") from None
    if v.is_number:
        if not (v.is_real and v.is_finite and v > 0):
            raise ValueError(f"{argname} must be > 0 (a variance), got {value!r}")
    elif v.is_positive is False or v.is_nonpositive:
        raise ValueError(f"{argname} must be > 0 (a variance), got {value!r}")
    return v


def check_kappa(value: object) -> sp.Expr:
    """Return ``value`` as a sympy expression; ``ValueError`` if it is a number ``< 0``."""
    try:
        v = sp.sympify(value)
    except (sp.SympifyError, TypeError):
        raise ValueError(f"kappa must be a number >= 0 or a symbol, got {value!r}") from None
    if v.is_number and not (v.is_real and v.is_finite and v >= 0):
        raise ValueError(f"kappa must be >= 0 (units of time), got {value!r}")
    if not v.is_number and v.is_negative:
        raise ValueError(f"kappa must be >= 0 (units of time), got {value!r}")
    return v


def check_start(start: str) -> str:
    """Return ``start`` unchanged; ``ValueError`` unless it is one of :data:`START_CHOICES`."""
    if start not in START_CHOICES:
        raise ValueError(f"start must be one of {START_CHOICES}, got {start!r}")
    return start


def check_covariance_matrix(S: object, argname: str = "S") -> sp.Matrix:
    """A symmetric positive-definite matrix (numeric entries are checked, symbolic diagonal ones
    must not be known non-positive)."""
    try:
        M = sp.Matrix(S)
    except (TypeError, ValueError, sp.SympifyError):
        raise ValueError(f"{argname} must be a square symmetric positive-definite matrix") from None
    if M.shape[0] != M.shape[1] or M.shape[0] < 1:
        raise ValueError(f"{argname} must be a square matrix, got shape {M.shape}")
    if M != M.T:
        raise ValueError(f"{argname} must be symmetric")
    if all(e.is_number for e in M):
        if not all(e.is_real and e.is_finite for e in M):
            raise ValueError(f"{argname} must have finite real entries")
        # Sylvester's criterion: all leading principal minors positive.
        for k in range(1, M.shape[0] + 1):
            if not sp.simplify(M[:k, :k].det()) > 0:
                raise ValueError(f"{argname} must be positive definite (leading minor {k} <= 0)")
    else:
        for i in range(M.shape[0]):
            check_positive(M[i, i], f"{argname}[{i},{i}]")
    return M


def check_bin_edges(edges: Sequence[object], eps_value: object, T: object) -> list[sp.Expr]:
    """Time-bin edges that partition ``[eps, T]``: strictly increasing, first ``eps``, last ``T``.

    Raises
    ------
    ValueError
        Naming ``bin_edges`` if they do not partition ``[eps, T]``.
    """
    try:
        e = [sp.nsimplify(sp.sympify(v)) if isinstance(v, float) else sp.sympify(v) for v in edges]
    except (TypeError, sp.SympifyError):
        raise ValueError(f"bin_edges must be a sequence of numbers, got {edges!r}") from None
    if len(e) < 2:
        raise ValueError(f"bin_edges must have at least 2 entries (one bin), got {len(e)}")
    eps_v, T_v = sp.sympify(eps_value), sp.sympify(T)
    if e[0] != eps_v or e[-1] != T_v:
        raise ValueError(
            f"bin_edges must partition [eps, T] = [{eps_v}, {T_v}]: the first edge must be eps "
            f"and the last T, got {e[0]} and {e[-1]}"
        )
    for lo, hi in zip(e[:-1], e[1:], strict=True):
        if (hi - lo).is_number and not (hi - lo) > 0:
            raise ValueError(f"bin_edges must be strictly increasing, got {lo} then {hi}")
    return e
