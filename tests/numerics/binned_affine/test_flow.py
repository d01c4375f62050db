"""Exact sampler maps of binned affine ensembles (gtv.numerics.binned_affine.flow).

The flow kernel against its numpy reference, an ODE solver and the sympy closed forms of the bin
maps (gtv.theory.closed_forms), across thread counts; the ensemble moments' definition
(docs/math/linear.md).
"""

from __future__ import annotations

import numba
import numpy as np
import pytest
import sympy as sp
from scipy.integrate import solve_ivp

from gtv.numerics.binned_affine import (
    affine_ensemble_moments,
    affine_flow,
    affine_flow_reference,
    bin_map_quadrature,
    train_binned_affine_ensemble,
)
from gtv.numerics.schedules import get_schedule
from gtv.theory import closed_forms as tcf
from gtv.theory.schedules import named_schedule

LV = get_schedule("linear-variance", T=0.9)


EDGES = [0.01, 0.05, 0.2, 0.5, 0.9]


M, S2, RHO = 0.5, 0.25, 0.1


@pytest.fixture(scope="module")
def ensemble():
    return train_binned_affine_ensemble(M, S2, EDGES, 300, 200, LV, RHO, seed=4)


def test_flow_kernel_matches_reference_and_an_ode_solver(ensemble):
    quad = bin_map_quadrature(LV, EDGES)
    G, H = affine_flow(ensemble.theta, quad)
    G2, H2 = affine_flow_reference(ensemble.theta, quad)
    np.testing.assert_allclose(G, G2, rtol=1e-13)
    np.testing.assert_allclose(H, H2, rtol=1e-13, atol=1e-15)
    for n in (0, 1, 2):
        th = ensemble.theta[n]

        def rhs(tt, y, th=th):
            k = min(np.searchsorted(EDGES, tt, side="right") - 1, 3)
            return [LV.pf_x_coeff(tt) * y[0] - LV.pf_mean_coeff(tt) * (th[k, 0] + th[k, 1] * y[0])]

        for x_T in (0.0, 1.3):
            # One solve per bin (the right-hand side jumps at the edges).
            y = np.array([x_T])
            for k in reversed(range(4)):
                sol = solve_ivp(
                    rhs, (EDGES[k + 1], EDGES[k]), y, method="DOP853", rtol=1e-13, atol=1e-15
                )
                y = sol.y[:, -1]
            assert abs(y[0] - (G[n] * x_T + H[n])) < 1e-10


def test_flow_thread_count_invariance(ensemble):
    quad = bin_map_quadrature(LV, EDGES)
    prev = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        a = affine_flow(ensemble.theta, quad)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        b = affine_flow(ensemble.theta, quad)
    finally:
        numba.set_num_threads(prev)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("name, T, edges", [("linear-variance", 0.9, EDGES), ("ve", 0.7, None)])
def test_bin_maps_match_sympy_closed_forms(name, T, edges):
    edges = edges or [0.01, 0.05, 0.2, 0.4, 0.7]
    quad = bin_map_quadrature(get_schedule(name, T=T), edges)
    sch = named_schedule(name, T=sp.nsimplify(T))
    for k in range(len(edges) - 1):
        g, eta = tcf.affine_bin_map(sch, sp.nsimplify(edges[k]), sp.nsimplify(edges[k + 1]))
        for c in (0.3, 1.4):
            for order in range(3):
                gq, eq = quad.maps(np.full(len(edges) - 1, c), order)
                # Exact rational c: a 53-bit Float c loses digits in the closed form's 1/(c**2 - 1).
                cr = sp.nsimplify(c)
                gs = float(sp.N(sp.diff(g, tcf.c_sym, order).subs(tcf.c_sym, cr), 30))
                es = float(sp.N(sp.diff(eta, tcf.c_sym, order).subs(tcf.c_sym, cr), 30))
                assert abs(gq[k] - gs) <= 1e-12 * abs(gs), (k, c, order)
                assert abs(eq[k] - es) <= 1e-12 * abs(es), (k, c, order)


def test_ensemble_moments_definition():
    G = np.array([0.5, 0.7])
    H = np.array([0.1, 0.3])
    mean, var = affine_ensemble_moments(G, H, 2.0)
    # Mixture of N(0.1, 0.5) and N(0.3, 0.98) with equal weights.
    assert abs(mean - 0.2) < 1e-15
    assert abs(var - ((0.5 + 0.98) / 2 + 0.01)) < 1e-15
