"""numba kernels of the covariance solver's vector updates against their plain-numpy references
(gtv.numerics.linear.solver_kernels)."""

from __future__ import annotations

import numpy as np
import pytest

from gtv.numerics.linear.solver_kernels import (
    cg_curvature,
    cg_curvature_reference,
    cg_direction,
    cg_direction_reference,
    cg_update,
    cg_update_reference,
)


@pytest.mark.parametrize("shape", [(1, 1), (7, 7), (64, 64)])
@pytest.mark.parametrize("transposed", [False, True])
def test_cg_kernels_match_the_numpy_reference(shape, transposed):
    """The three kernels against numpy on random matrices (C-ordered and transposed views:
    the in-place updates reach the caller's arrays either way)."""
    rng = np.random.default_rng(shape[0])

    def mats(n):
        out = [rng.standard_normal(shape) for _ in range(n)]
        return [m.T if transposed else m for m in out]

    x, r, rt, p, pt, Lp, Kp = mats(7)
    np.testing.assert_allclose(
        cg_curvature(p, pt, Kp), cg_curvature_reference(p, pt, Kp), rtol=1e-12, atol=1e-12
    )
    alpha, beta = 0.37, 0.81
    got = [a.copy() for a in (x, r, rt)]
    expect = [a.copy() for a in (x, r, rt)]
    sums = cg_update(*got, p, pt, Lp, Kp, alpha)
    sums_ref = cg_update_reference(*expect, p, pt, Lp, Kp, alpha)
    for a, b in zip(got, expect, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(sums[0], sums_ref[0], rtol=1e-12, atol=1e-12)
    assert sums[1:] == pytest.approx(sums_ref[1:], rel=1e-14)
    got = [a.copy() for a in (p, pt)]
    expect = [a.copy() for a in (p, pt)]
    cg_direction(*got, r, rt, beta)
    cg_direction_reference(*expect, r, rt, beta)
    for a, b in zip(got, expect, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-14)
