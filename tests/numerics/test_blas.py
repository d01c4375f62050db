"""The BLAS routines called from compiled code against numpy."""

from __future__ import annotations

import numpy as np
import pytest

from gtv.numerics.blas import gram_lower_into


@pytest.mark.parametrize(("p", "f"), [(1, 1), (7, 3), (64, 256), (300, 17)])
def test_gram_lower_into_is_the_lower_triangle_of_phi_t_phi(p, f):
    phi = np.random.default_rng(p * f).standard_normal((p, f))
    out = np.full((f, f), 7.0)
    gram_lower_into(phi, out)
    ref = phi.T @ phi
    low = np.tril_indices(f)
    np.testing.assert_allclose(out[low], ref[low], rtol=1e-13, atol=1e-13 * np.abs(ref).max())
    # the strict upper triangle is left untouched
    assert np.all(out[np.triu_indices(f, 1)] == 7.0)
