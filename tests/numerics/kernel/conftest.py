"""Fixtures shared by the kernel-field tests (test_occupancy.py, test_strata.py)."""

import numpy as np
import pytest

from gtv.numerics.kernel import FiniteKernelMoments, ntk_theory

#: Training time of the shared finite-P moments.
FIELD_TAU = 10.0


@pytest.fixture(scope="module")
def small_eps_theory():
    """eps = 0.01 (heavy DSM weights), data {-1, 0, 1}, 5 x 3 x 5 Nystrom nodes, erf, gradient
    flow at unit rate."""
    return ntk_theory(np.array([[-1.0], [0.0], [1.0]]), 0.01, activation="erf", n_t=5, n_hermite=5)


@pytest.fixture(scope="module")
def small_eps_moments(small_eps_theory):
    """Its finite-P moments at ``tau = FIELD_TAU``, ``P = 64``."""
    return FiniteKernelMoments(small_eps_theory, FIELD_TAU, 64)
