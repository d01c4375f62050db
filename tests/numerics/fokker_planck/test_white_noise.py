"""Schedule drifts for the Fokker-Planck solver (gtv.numerics.fokker_planck.white_noise)."""

import numpy as np
import pytest

from gtv.numerics.fokker_planck import schedule_drift, solve_fokker_planck, uniform_grid

from .exact import EPS, T, cell_avg, var, vp_case


@pytest.mark.parametrize("kind", ["sde", "pf"])
def test_schedule_drift_with_generated_schedule_matches(kind):
    """schedule_drift (generated numba schedule functions) gives the same drift as the closed
    form, so the same density."""
    grid = uniform_grid((-6, 6), 200)
    drift, noise = vp_case(kind)
    factor = 2.0 if kind == "sde" else 1.0
    sd = schedule_drift("vp-linear", lambda x, t: -x / var(t), factor)
    x = np.linspace(-3, 3, 7)[:, None]
    for t in (0.01, 0.5, 0.99):
        np.testing.assert_allclose(sd(x, t), drift(x, t), rtol=1e-12, atol=1e-12)
    p0 = cell_avg(grid.edges[0], 0.0, var(T))
    a = solve_fokker_planck(drift, noise, p0, grid, T, EPS, 50)
    b = solve_fokker_planck(sd, noise, p0, grid, T, EPS, 50)
    np.testing.assert_allclose(a.density, b.density, rtol=0, atol=1e-12 * a.density.max())
