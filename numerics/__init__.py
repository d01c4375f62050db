"""Numeric layer of gtv: numba kernels with plain-numpy references. Imports no sympy."""
