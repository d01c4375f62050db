"""Bad input to the closed forms raises a ValueError naming the argument."""

from __future__ import annotations

import pytest
import sympy as sp

from gtv.theory import closed_forms as cf

R = sp.Rational


# -- bad input ------------------------------------------------------------------------------------
def test_bad_input():
    with pytest.raises(ValueError, match="s2"):
        cf.naive_gaussian_moments("ve", 0, 0)
    with pytest.raises(ValueError, match="s2"):
        cf.naive_gaussian_moments("ve", 0, -1)
    with pytest.raises(ValueError, match="kappa"):
        cf.naive_gaussian_moments("ve", 0, 1, -R(1, 10))
    with pytest.raises(ValueError, match="start"):
        cf.naive_gaussian_moments("ve", 0, 1, start="prior")
    with pytest.raises(ValueError, match="T = 1: the noise integral"):  # D_t -> oo at t = 1
        cf.naive_gaussian_moments("linear-variance", R(1, 2), R(1, 4), R(1, 10), R(1, 100), T=1)
    with pytest.raises(ValueError, match="positive definite"):
        cf.naive_gaussian_moments_diagonal("ve", [0, 0], sp.Matrix([[1, 2], [2, 1]]))
    with pytest.raises(ValueError, match="S"):
        cf.naive_gaussian_moments_diagonal("ve", [0, 0], sp.diag(1, 0))
    with pytest.raises(ValueError, match="symmetric"):
        cf.naive_gaussian_moments_diagonal("ve", [0, 0], sp.Matrix([[1, 0], [1, 1]]))
    with pytest.raises(ValueError, match="bin_edges"):
        cf.check_bin_edges([R(1, 100), R(1, 2)], R(1, 100), 1)
    with pytest.raises(ValueError, match="bin_edges"):
        cf.check_bin_edges([R(1, 100), R(1, 2), R(1, 4), 1], R(1, 100), 1)
    with pytest.raises(ValueError, match="bin_edges"):
        cf.binned_affine_theory("ve", 0, 1, [R(1, 100), R(1, 2)], R(1, 10), 100)
    with pytest.raises(ValueError, match="ridge"):
        cf.binned_affine_theory("ve", 0, 1, [R(1, 100), 1], -1, 100)
    with pytest.raises(ValueError, match="P"):
        cf.binned_affine_theory("ve", 0, 1, [R(1, 100), 1], R(1, 10), 0)
    with pytest.raises(ValueError, match="s2"):
        cf.binned_affine_theory("ve", 0, -1, [R(1, 100), 1], R(1, 10), 100)
