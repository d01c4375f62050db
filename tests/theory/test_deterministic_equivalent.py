"""Symbolic facts about the cavity equations (gtv.theory.deterministic_equivalent)."""

from __future__ import annotations

import sympy as sp

from gtv.theory.deterministic_equivalent import (
    cavity_scalar_mean_series,
    isotropic_reduction,
    mean_shift_difference,
)


def test_isotropic_reduction_is_the_effective_ridge_equation():
    r = isotropic_reduction(3)
    assert sp.simplify(r["effective_ridge"]) == 0
    assert all(sp.simplify(e) == 0 for e in r["mean"])


def test_one_over_P_mean_is_the_second_order_shift():
    assert mean_shift_difference(2) == 0


def test_leading_order_is_the_population_solution():
    W0, W1, _ = cavity_scalar_mean_series(2)
    p, w, f = (sp.symbols(f"{n}_1:3", positive=True) for n in ("p", "w", "f"))
    mu = sp.symbols("mu_1:3")
    rho = sp.Symbol("rho", positive=True)
    A = sum(pi * wi * mi * fi for pi, wi, mi, fi in zip(p, w, mu, f, strict=True))
    S = sum(pi * wi * fi**2 for pi, wi, fi in zip(p, w, f, strict=True))
    assert sp.simplify(W0 - A / (S + rho)) == 0
    assert W1 != 0
