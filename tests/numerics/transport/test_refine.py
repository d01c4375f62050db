"""Adaptive refinement of transported grids: numba kernels against their numpy references, and
a whole refinement (several rounds, budgets, inactive cells) against a numpy driver."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtr

from gtv.numerics.transport import transport_1d, transport_grid
from gtv.numerics.transport.refine import (
    compact_rows,
    merge_refinement,
    merge_refinement_reference,
    refinement_points,
    refinement_points_reference,
)

SIGMA = 1.3


def _maps(x, models):
    """Per-row maps with steep, folding and flat parts (row r is model models[r])."""
    c = np.array([0.0, 0.4, -0.7, 0.2])[models][:, None]
    k = np.array([30.0, 300.0, 5.0, 80.0])[models][:, None]
    return np.tanh(k * (x - c)) + 0.3 * np.sin(7 * x) * (models[:, None] % 2)


def _state(m, n, width):
    start = transport_grid(m, SIGMA)
    x, p, y = (np.zeros((n, width)) for _ in range(3))
    x[:, :m], p[:, :m] = start, ndtr(start / SIGMA)
    y[:, :m] = _maps(np.broadcast_to(start, (n, m)), np.arange(n))
    return x, p, y, np.full(n, m, dtype=np.int64), np.ones((n, width), dtype=bool)


@pytest.mark.parametrize("budget", [10_000, 40, 0])
def test_refinement_points_match_the_reference(budget):
    x, p, y, size, active = _state(150, 4, 400)
    active[2, ::3] = False  # some cells not scored
    budgets = np.full(4, budget, dtype=np.int64)
    pts, cdf, offsets, parts = refinement_points(
        x, p, y, size, active, SIGMA, 0.05, 1e-5, 8, budgets
    )
    ref_pts, ref_parts = refinement_points_reference(x, p, y, size, active, 0.05, 1e-5, 8, budgets)
    assert np.all(np.diff(offsets) <= budget)
    if budget == 10_000:
        assert np.all(np.diff(offsets) > 0)  # every map has curved cells
    for n in range(4):
        np.testing.assert_array_equal(pts[offsets[n] : offsets[n + 1]], ref_pts[n])
        np.testing.assert_array_equal(parts[n, : size[n] - 1], ref_parts[n])
        assert np.all(ref_parts[n][~active[n, : size[n] - 1]] == 1)
    np.testing.assert_allclose(cdf, ndtr(pts / SIGMA), rtol=1e-14, atol=1e-300)


def test_merge_matches_the_sorted_reference_and_marks_the_neighbours():
    x, p, y, size, active = _state(120, 3, 600)
    budgets = np.full(3, 480, dtype=np.int64)
    pts, cdf, offsets, parts = refinement_points(
        x, p, y, size, active, SIGMA, 0.05, 1e-5, 8, budgets
    )
    owner = np.repeat(np.arange(3), np.diff(offsets))
    images = _maps(pts[:, None], owner)[:, 0]
    old = [(x[n, : size[n]].copy(), y[n, : size[n]].copy()) for n in range(3)]
    merge_refinement(x, p, y, size, active, parts, offsets, pts, cdf, images)
    for n in range(3):
        sl = slice(offsets[n], offsets[n + 1])
        rx, ry, ract = merge_refinement_reference(
            *old[n], parts[n, : old[n][0].size - 1], pts[sl], images[sl]
        )
        m = size[n]
        assert m == rx.size
        np.testing.assert_array_equal(x[n, :m], rx)
        np.testing.assert_array_equal(y[n, :m], ry)
        np.testing.assert_array_equal(active[n, : m - 1], ract)
        np.testing.assert_allclose(p[n, :m], ndtr(rx / SIGMA), rtol=1e-14, atol=1e-300)
    with pytest.raises(ValueError, match="do not fit"):
        merge_refinement(
            x[:, :130].copy(), p[:, :130].copy(), y[:, :130].copy(), size.copy(),
            active[:, :130].copy(), parts, offsets, pts, cdf, images,
        )  # fmt: skip


def test_compact_rows_keeps_every_row_and_pads_with_its_last_entry():
    rng = np.random.default_rng(0)
    size = np.array([5, 9, 7], dtype=np.int64)
    arrays = [rng.standard_normal((3, 20)) for _ in range(3)]
    rows = [[a[n, : size[n]].copy() for n in range(3)] for a in arrays]
    out = compact_rows(*arrays, size)
    for a, r in zip(out, rows, strict=True):
        assert a.shape == (3, 9) and a.flags.c_contiguous
        for n in range(3):
            np.testing.assert_array_equal(a[n, : size[n]], r[n])
            assert np.all(a[n, size[n] :] == r[n][-1])


def _numpy_transport(n_models, m, resolution, tolerance, max_points, max_split, rounds):
    """The refinement of ``transport_1d`` driven model by model with the numpy references."""
    start = transport_grid(m, SIGMA)
    rows = []
    for n in range(n_models):
        xs = start.copy()
        ys = _maps(xs[None, :], np.array([n]))[0]
        act = np.ones(m - 1, dtype=bool)
        for _ in range(rounds):
            st = (a[None, :] for a in (xs, ndtr(xs / SIGMA), ys))
            pts, parts = refinement_points_reference(
                *st, np.array([xs.size]), act[None, :], resolution, tolerance, max_split,
                np.array([max_points - xs.size]),
            )  # fmt: skip
            if pts[0].size == 0:
                break
            img = _maps(pts[0][None, :], np.array([n]))[0]
            xs, ys, act = merge_refinement_reference(xs, ys, parts[0], pts[0], img)
        rows.append((xs, ys))
    return rows


def test_transport_1d_refinement_equals_the_numpy_driver():
    def sample(x_T, models=None):
        rows = np.arange(x_T.shape[0]) if models is None else models
        return _maps(x_T[:, :, 0], rows)[:, :, None]

    kw = {"resolution": 0.02, "tolerance": 1e-6, "max_points": 1500, "max_split": 16}
    g = transport_1d(sample, 4, SIGMA, 200, max_rounds=4, block=32, **kw)
    ref = _numpy_transport(4, 200, rounds=4, **kw)
    # the unlimited number of rounds and the cap are both exercised
    assert max(r[0].size for r in ref) == 1500 and min(r[0].size for r in ref) < 1500
    for n in range(4):
        x, y = g.points(n)
        np.testing.assert_array_equal(x, ref[n][0])
        np.testing.assert_array_equal(y, ref[n][1])
