"""The binned push-forward kernel: numba vs numpy; exact push-forwards computed independently."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.special import ndtr

from gtv.numerics.transport import (
    TransportedGrid,
    pushforward_masses,
    pushforward_masses_reference,
    transport_grid,
)

EDGES = np.linspace(-2.0, 2.0, 41)


def exact_masses(F, edges, lim=12.0, n=200_001):
    """Bin masses of ``F(X)``, ``X ~ N(0, 1)``, by root finding (independent of the kernel).

    Every solution of ``F(x) = e`` for every edge ``e`` is bracketed on a fine grid and refined
    with ``brentq``; between consecutive solutions ``F`` stays in one bin, found at the midpoint,
    which receives the Gaussian mass of the interval. (|x| > 12 carries mass < 1e-32.)
    """
    xs = np.linspace(-lim, lim, n)
    fx = F(xs)
    breaks = [-np.inf, np.inf]
    for e in edges:
        g = fx - e
        idx = np.flatnonzero(np.sign(g[:-1]) * np.sign(g[1:]) < 0)
        breaks += [brentq(lambda x, e=e: F(x) - e, xs[i], xs[i + 1], xtol=1e-15) for i in idx]
        breaks += list(xs[g == 0])
    breaks = np.sort(breaks)
    out = np.zeros(len(edges) - 1)
    for a, b in zip(breaks[:-1], breaks[1:], strict=True):
        if b <= a:
            continue
        mid = 0.5 * (a + b) if np.isfinite(a) and np.isfinite(b) else (b - 1 if a < -lim else a + 1)
        j = np.searchsorted(edges, F(np.array([mid]))[0], side="right") - 1
        if 0 <= j < len(edges) - 1:
            out[j] += ndtr(b) - ndtr(a)
    return out


def test_numba_kernel_agrees_with_numpy_reference():
    """Random non-monotone maps (folds, overlapping images), flat cells, images off the bins."""
    rng = np.random.default_rng(0)
    start = np.sort(rng.uniform(-3, 3, 60))
    end = np.cumsum(rng.normal(0.0, 0.3, (5, 60)), axis=1)  # a random walk: many folds
    end[1, 10:14] = end[1, 10]  # flat cells (images are points)
    end[2] = 0.5 * start  # monotone, partly off the bins at both ends
    end[3] = -5.0 + 0.1 * start  # everything below the bins
    non_uniform = np.concatenate([EDGES[:20], EDGES[20:] + 0.013])
    # the kernel guesses bin indices on uniform edges (then checks them against the edges) and
    # searches on other edges: both, with ends exactly on edges, in flat cells and at the ends
    for edges in (non_uniform, EDGES):
        end[4, 30] = edges[7]
        end[4, 40:43] = edges[11]  # flat cells on an edge
        end[4, 50] = edges[0]
        end[4, 52] = edges[-1]
        for sigma in (0.7, 1.0):
            a = pushforward_masses(start, end, sigma, edges)
            b = pushforward_masses_reference(start, end, sigma, edges, chunk=7)
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-14)
            assert np.all(a >= 0)
        assert a[3].sum() == 0.0
        assert a[0].sum() > 0.5  # not vacuous


@pytest.mark.parametrize(("slope", "shift"), [(0.7, 0.2), (-1.3, -0.1), (2.5, 0.0)])
def test_affine_map_gives_the_exact_gaussian_bin_masses(slope, shift):
    """``y = a x + b`` carries N(0, s^2) to N(b, a^2 s^2): bin masses to 1e-12 on any grid."""
    sigma = 0.8
    for start in (transport_grid(7, sigma), transport_grid(3001, sigma)):
        end = (slope * start + shift)[None]
        got = pushforward_masses(start, end, sigma, EDGES)[0]
        exact = np.diff(ndtr((EDGES - shift) / (abs(slope) * sigma)))
        np.testing.assert_allclose(got, exact, rtol=0, atol=1e-12)


def test_constant_map_puts_all_mass_in_one_bin():
    start = transport_grid(50, 1.0)
    got = pushforward_masses(start, np.full((1, 50), 0.31), 1.0, EDGES)[0]
    j = np.searchsorted(EDGES, 0.31, side="right") - 1
    assert got[j] == pytest.approx(1.0, abs=1e-15)
    assert np.delete(got, j).sum() == 0.0


def test_fold_x_squared_against_the_closed_form():
    """``y = x**2`` folds at 0: bin masses ``2 (Phi(sqrt b) - Phi(sqrt a))``; second order."""
    e = np.clip(EDGES, 0.0, None)
    exact = 2.0 * np.diff(ndtr(np.sqrt(e)))
    errs = []
    for n in (1000, 4000):
        g = TransportedGrid(transport_grid(n, 1.0), transport_grid(n, 1.0)[None] ** 2, 1.0)
        err = 0.5 * np.abs(g.bin_masses(EDGES)[0] - exact).sum()
        errs.append(err)
        assert err <= g.error(EDGES)[0] * 1.01  # the halving estimate bounds the error
    assert errs[1] < 1e-6
    assert errs[0] / errs[1] > 8  # h**2 convergence: at least 8x for 4x the points


def test_fold_sine_map_against_root_finding():
    """``y = sin 2x + 0.3 x``: several folds and overlapping images; exact masses by roots."""

    def F(x):
        return np.sin(2 * x) + 0.3 * x

    exact = exact_masses(F, EDGES)
    assert exact.sum() > 0.99
    start = transport_grid(8000, 1.0)
    g = TransportedGrid(start, F(start)[None], 1.0)
    err = 0.5 * np.abs(g.bin_masses(EDGES)[0] - exact).sum()
    est = g.error(EDGES)[0]
    assert err < 1e-6
    assert err <= est <= 10 * err  # the estimate bounds the error, and not by miles


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"start": np.array([0.0, 1.0, 1.0])}, "start"),
        ({"start": np.array([0.0])}, "start"),
        ({"end": np.zeros((2, 4))}, "end"),
        ({"end": np.full((1, 3), np.nan)}, "end"),
        ({"sigma": 0.0}, "sigma"),
        ({"sigma": np.inf}, "sigma"),
        ({"edges": np.array([0.0, 0.0, 1.0])}, "edges"),
        ({"edges": np.array([1.0])}, "edges"),
    ],
)
def test_bad_input_is_named(kwargs, match):
    args = {"start": np.array([-1.0, 0.0, 1.0]), "end": np.zeros((1, 3)), "sigma": 1.0}
    args["edges"] = EDGES
    args.update(kwargs)
    for f in (pushforward_masses, pushforward_masses_reference):
        with pytest.raises(ValueError, match=match):
            f(**args)


def test_per_model_grids_with_padding_agree_with_separate_runs():
    """Rows of different lengths (padded with junk the kernels must not read)."""
    rng = np.random.default_rng(1)
    rows = [np.sort(rng.uniform(-3, 3, m)) for m in (40, 25, 33)]
    start = np.full((3, 40), np.nan)
    end = np.full((3, 40), np.nan)
    for n, x in enumerate(rows):
        start[n, : x.size] = x
        end[n, : x.size] = np.sin(3 * x) + 0.2 * n
    size = np.array([r.size for r in rows])
    a = pushforward_masses(start, end, 1.0, EDGES, size)
    b = pushforward_masses_reference(start, end, 1.0, EDGES, size)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-14)
    for n, x in enumerate(rows):
        alone = pushforward_masses(x, end[n : n + 1, : x.size], 1.0, EDGES)
        np.testing.assert_array_equal(a[n], alone[0])
    with pytest.raises(ValueError, match="size"):
        pushforward_masses(start, end, 1.0, EDGES, np.array([40, 1, 33]))
