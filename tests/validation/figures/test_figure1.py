"""Figure 1 of the paper (proxy-score variance fraction): physics, not pixels.

frac = tr C/(tr C + |s|**2) is 1 where the score vanishes by symmetry but the posterior is spread
(the hexagon's centre), tends to 0 far from the data (posterior collapses on the nearest point,
|s| grows), and is larger between neighbouring training points than at them at small t (where the
posterior switches between the two points).
"""

import numpy as np
import pytest

from gtv.numerics.posterior import posterior_stats
from gtv.validation.figures.figure1 import (
    FIGURE1_DATASETS,
    FIGURE1_TIMES,
    Figure1Result,
    compute_figure1,
)

N_GRID = 41  # odd, so that 0 is a grid node: linspace(-2, 2, 41) has step 0.1
HEXAGON = FIGURE1_DATASETS["hexagon"]


@pytest.fixture(scope="module")
def fig1():
    return compute_figure1(n_grid=N_GRID, progress=False)


def test_result_layout(fig1):
    names = list(FIGURE1_DATASETS)
    assert fig1.frac.shape == (len(names), len(FIGURE1_TIMES), N_GRID, N_GRID)
    assert np.all((fig1.frac >= 0) & (fig1.frac <= 1))
    np.testing.assert_array_equal(fig1.times, FIGURE1_TIMES)
    assert fig1.config["schedule"] == "linear-variance" and fig1.config["datasets"] == names
    assert fig1.config["n_grid"] == N_GRID


def test_frac_is_one_at_hexagon_centre(fig1):
    """At the centre of the hexagon mu_bar = 0 by symmetry, so s = 0 while tr C > 0: frac = 1."""
    k = list(FIGURE1_DATASETS).index("hexagon")
    c = N_GRID // 2
    assert abs(fig1.grid[c]) < 1e-15
    np.testing.assert_allclose(fig1.frac[k, :, c, c], 1.0, rtol=0, atol=1e-9)


def test_grid_orientation_and_dataset_order(fig1):
    """frac[k, j, iy, ix] is frac of data set k at time j at the point (grid[ix], grid[iy]).

    Spot-checked at 60 random grid nodes for every data set and time against posterior_stats
    called on that single point (the asymmetric data sets would expose a transposed or shuffled
    layout)."""
    rng = np.random.default_rng(5)
    iy, ix = rng.integers(0, N_GRID, size=(2, 60))
    pts = np.stack([fig1.grid[ix], fig1.grid[iy]], axis=1)
    for k, name in enumerate(FIGURE1_DATASETS):
        for j, tv in enumerate(FIGURE1_TIMES):
            ref = posterior_stats(FIGURE1_DATASETS[name], pts, tv, "linear-variance").frac
            np.testing.assert_allclose(fig1.frac[k, j, iy, ix], ref, rtol=1e-14, atol=0)


@pytest.mark.parametrize("tv", FIGURE1_TIMES)
def test_frac_decays_along_rays_away_from_the_data(tv):
    """Along the ray from each hexagon vertex directly away from the centre, frac decreases
    monotonically and is < 1e-3 at distance 10.

    That vertex stays the nearest training point along the whole ray and the weights of the others
    fall like exp(-alpha r/(2 sigma**2)) (their projection on the ray is 1/2 shorter), so tr C
    decays exponentially while |s|**2 ~ (r/sigma**2)**2 grows. The slowest case is t = 0.75
    (alpha = 1/2, sigma**2 = 3/4, decay rate 1/3 per unit length): frac ~ 1e-4 at r = 10.
    """
    r = np.linspace(0.0, 10.0, 101)
    for vertex in HEXAGON:
        direction = vertex / np.linalg.norm(vertex)
        xs = vertex + r[:, None] * direction
        frac = posterior_stats(HEXAGON, xs, tv, "linear-variance").frac
        assert np.all(np.diff(frac) < 0), (vertex, tv)
        assert frac[-1] < 1e-3


@pytest.mark.parametrize("tv", [0.05, 0.1])
def test_frac_peaks_between_neighbouring_points_at_small_t(tv):
    """On the perpendicular bisector of two neighbouring hexagon points the posterior is split
    50/50, so tr C is large and |s| small: frac at the midpoint exceeds frac at either point and on
    a circle of radius 0.1 around each (both around mu and around its noised position alpha mu)."""
    alpha = np.sqrt(1 - tv)  # linear-variance
    ang = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    circle = 0.1 * np.stack([np.cos(ang), np.sin(ang)], axis=1)
    for k in range(6):
        p, q = HEXAGON[k], HEXAGON[(k + 1) % 6]
        mid = (p + q) / 2
        near = np.concatenate(
            [p[None], q[None], p + circle, q + circle, alpha * p + circle, alpha * q + circle]
        )
        f_mid = posterior_stats(HEXAGON, mid[None], tv, "linear-variance").frac[0]
        f_near = posterior_stats(HEXAGON, near.reshape(-1, 2), tv, "linear-variance").frac
        assert f_mid > f_near.max(), (k, tv, f_mid, f_near.max())


def test_save_load_round_trip(fig1, tmp_path):
    """A saved Figure1Result reloads with identical arrays, data sets and configuration."""
    path = fig1.save(tmp_path / "fig1")
    assert path.suffix == ".npz" and path.exists()
    back = Figure1Result.load(path)
    np.testing.assert_array_equal(back.frac, fig1.frac)
    np.testing.assert_array_equal(back.grid, fig1.grid)
    np.testing.assert_array_equal(back.times, fig1.times)
    assert list(back.datasets) == list(fig1.datasets)
    for name in fig1.datasets:
        np.testing.assert_array_equal(back.datasets[name], fig1.datasets[name])
    assert back.config == fig1.config


def test_plot_writes_png_and_pdf(fig1, tmp_path):
    paths = fig1.plot(tmp_path / "out")
    assert sorted(p.name for p in paths) == ["figure1.pdf", "figure1.png"]
    for p in paths:
        assert p.exists() and p.stat().st_size > 1000
    assert (tmp_path / "out" / "figure1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "out" / "figure1.pdf").read_bytes()[:5] == b"%PDF-"


def test_compute_figure1_rejects_bad_arguments():
    with pytest.raises(ValueError, match="n_grid"):
        compute_figure1(n_grid=1, progress=False)
    with pytest.raises(ValueError, match="extent"):
        compute_figure1(n_grid=5, extent=-1.0, progress=False)
    with pytest.raises(ValueError, match="times"):
        compute_figure1(n_grid=5, times=(0.1, 1.5), progress=False)
