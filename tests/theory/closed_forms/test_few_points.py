"""Closed forms for one and two training points (docs/math/closed_forms.md, items 3 and 4)."""

from __future__ import annotations

import pytest
import sympy as sp

from gtv.theory import closed_forms as cf
from gtv.theory.schedules import named_schedule


# -- items 3 and 4 --------------------------------------------------------------------------------
@pytest.mark.parametrize("n_triples, n_features", [(1, 2), (2, 2), (3, 3)])
def test_single_point_ridge_identity(n_triples, n_features):
    out = cf.single_point_ridge_identity(n_triples, n_features)
    assert out["difference"] == sp.zeros(1, n_features)


def test_two_point_closed_forms():
    sch = named_schedule("linear-variance")
    a = sp.Symbol("a", positive=True)
    out = cf.two_point_closed_forms(a, sch)
    C, s = out["C"], out["score"]
    assert sp.simplify((out["frac"] - C / (C + s**2)).rewrite(sp.exp)) == 0
    assert out["naive_sde"].noise.has(sp.Symbol("kappa", positive=True))
    with pytest.raises(ValueError, match="a must be > 0"):
        cf.two_point_closed_forms(-1, sch)
