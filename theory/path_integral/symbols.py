"""Symbols shared by the path-integral derivations (docs/math/path_integral.md)."""

from __future__ import annotations

import sympy as sp

from gtv.theory.proxy import x

__all__ = [
    "indexed_vector",
    "kappa",
    "space_symbols",
    "symmetric_symbol_matrix",
    "t2",
    "tau",
    "x",
    "x2",
]


#: Second space point ``x'`` of a two-point kernel ``V(x, t; x', t')`` (1-D).
x2 = sp.Symbol("x2", real=True)
#: Second time ``t'`` of a two-point kernel.
t2 = sp.Symbol("t2", positive=True)
#: Time lag ``tau = t' - t`` of the white-noise integral.
tau = sp.Symbol("tau", real=True)
#: Naive-estimator time constant kappa (units of time), docs/math/naive_estimator.md.
kappa = sp.Symbol("kappa", positive=True)


def space_symbols(dim: int) -> tuple[sp.Symbol, ...]:
    """Space coordinates of ``dim``-dimensional expressions: ``(x,)`` or ``(x0, x1, ...)``."""
    if not (isinstance(dim, int) and dim >= 1):
        raise ValueError(f"dim must be a positive integer, got {dim!r}")
    if dim == 1:
        return (x,)
    return tuple(sp.Symbol(f"x{a}", real=True) for a in range(dim))


def indexed_vector(name: str, k: int, dim: int) -> sp.Matrix:
    """Real symbols of step ``k`` as a ``dim x 1`` Matrix: ``name{k}`` or ``name{k}_{a}``."""
    if dim == 1:
        return sp.Matrix([sp.Symbol(f"{name}{k}", real=True)])
    return sp.Matrix([sp.Symbol(f"{name}{k}_{a}", real=True) for a in range(dim)])


def symmetric_symbol_matrix(name: str, dim: int) -> sp.Matrix:
    """Symmetric ``dim x dim`` Matrix of real symbols ``name_{ab}`` (``a <= b``)."""
    m = sp.zeros(dim, dim)
    for a in range(dim):
        for b in range(a, dim):
            m[a, b] = m[b, a] = sp.Symbol(f"{name}_{a}{b}", real=True)
    return m
