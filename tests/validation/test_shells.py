"""Mass by distance from the training data (gtv.validation.shells)."""

import numpy as np
import pytest

from gtv.validation.shells import SHELLS, format_shells, shell_masses, shell_rows

EDGES = np.linspace(-2.0, 2.0, 161)  # the comparisons' bins: width 0.025
DATA = np.array([-1.0, 0.0, 1.0])
WIDTH = 0.025


def _point_mass(x: float) -> np.ndarray:
    """A histogram with all its mass in the bin holding x."""
    h = np.zeros(EDGES.size - 1)
    h[np.searchsorted(EDGES, x) - 1] = 1.0 / WIDTH
    return h


def test_point_masses_land_in_their_shell():
    """Each bin's mass goes to the shell of its centre's distance to the nearest data point
    (worked by hand: centres 1.0125 -> 0.0125, 0.5625 -> 0.4375, -0.1625 -> 0.1625)."""
    h = np.stack([_point_mass(1.01), _point_mass(0.56), _point_mass(-0.17), _point_mass(0.08)])
    m = shell_masses(h, np.array([0.0, 0.0, 0.3, 0.0]), EDGES, DATA)
    expect = np.zeros((4, 5))
    expect[0, 0] = expect[1, 3] = 1.0
    expect[2, 2], expect[2, 4] = 1.0, 0.3  # the outside mass joins the open last shell
    expect[3, 1] = 1.0  # centre 0.0875
    np.testing.assert_allclose(m, expect, atol=1e-12)


def test_a_centre_on_a_shell_edge_counts_in_the_outer_shell():
    """Bins of width 0.1 on [-2, 2] (centres -1.95, -1.85, ...): the centres -0.25, -0.05 and
    0.75 lie on the edges 0.25, 0.05 and 0.25, and linspace's rounding puts all three distances
    just *below* their edge (0.2499999999999999, ...); they still go to the outer shells."""
    edges = np.linspace(-2.0, 2.0, 41)
    h = np.zeros((3, 40))
    for n, k in enumerate((17, 19, 27)):  # bin k has centre -2 + 0.1 (k + 1/2)
        h[n, k] = 10.0
    m = shell_masses(h, np.zeros(3), edges, DATA)
    expect = np.zeros((3, 5))
    expect[0, 3] = expect[1, 1] = expect[2, 3] = 1.0
    np.testing.assert_allclose(m, expect, atol=1e-12)


def test_masses_add_up_and_match_a_direct_count():
    rng = np.random.default_rng(3)
    h = rng.random((30, 160))
    out = rng.random(30) * 0.05
    h *= (1 - out)[:, None] / (h.sum(axis=1, keepdims=True) * WIDTH)
    m = shell_masses(h, out, EDGES, DATA)
    np.testing.assert_allclose(m.sum(axis=1), 1.0, rtol=1e-12)
    # the gap shells (d >= 0.25) against a count over bins whose whole extent is in the gap
    centres = (EDGES[:-1] + EDGES[1:]) / 2
    far = np.min(np.abs(centres[:, None] - DATA), axis=1) >= 0.25
    np.testing.assert_allclose(m[:, 3:].sum(axis=1), (h[:, far] * WIDTH).sum(axis=1) + out)


def test_rows_cover_a_known_shift():
    """Two ensembles of point masses that differ only in where 10 % of the models put their
    mass: the difference is exact in the estimate, and the CI covers it; identical ensembles
    give a CI around 0."""
    n = 400
    core, flank = _point_mass(0.01), _point_mass(0.3)
    a = np.stack([core] * n)
    b = a.copy()
    b[: n // 10] = flank
    out = np.zeros(n)
    rows = shell_rows((a, out), (b, out), EDGES, DATA, 500, np.random.default_rng(0))
    assert rows[0]["diff"] == pytest.approx(-0.1) and rows[3]["diff"] == pytest.approx(0.1)
    assert rows[0]["diff_lo"] < -0.1 < rows[0]["diff_hi"] < 0
    assert rows[0]["z"] < -5 and rows[3]["z"] > 5
    assert rows[1]["z"] is None and rows[1]["diff"] == 0.0  # an empty shell
    assert rows[-1]["hi"] is None and rows[0]["lo"] == 0.0
    rng = np.random.default_rng(1)
    h = rng.random((200, 160)) / (160 * WIDTH * 0.5)
    h /= h.sum(axis=1, keepdims=True) * WIDTH
    same = shell_rows((h, np.zeros(200)), (h, np.zeros(200)), EDGES, DATA, 300, rng)
    for r in same:
        assert r["diff"] == 0.0 and r["diff_lo"] < 0 < r["diff_hi"]
    text = format_shells(same, "theory field")
    assert text.count("\n") == len(SHELLS) and ">= 0.5" in text and "[0.25, 0.5)" in text


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"shells": (0.0, 0.1, 0.05, np.inf)}, "shells must be increasing"),
        ({"shells": (0.1, 0.5, np.inf)}, "shells must be increasing"),
        ({"shells": (0.0, 0.25, 0.5)}, "last edge must be inf"),
        ({"shells": (0.0, 0.5, 1.5, np.inf)}, "last shell must start within 1"),
        ({"histograms": np.ones((3, 10))}, "histograms must have shape"),
        ({"outside": np.zeros(4)}, "outside must have shape"),
        ({"edges": EDGES[::-1]}, "edges must be increasing"),
        ({"data": np.array([])}, "data must hold"),
    ],
)
def test_bad_input(kwargs, match):
    args = {"histograms": np.ones((3, 160)), "outside": np.zeros(3), "edges": EDGES, "data": DATA}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        shell_masses(**args)


def test_rows_bad_input():
    h, out = np.ones((3, 160)) / 4, np.zeros(3)
    with pytest.raises(ValueError, match="at least 2 models"):
        shell_rows((h[:1], out[:1]), (h, out), EDGES, DATA, 10, np.random.default_rng(0))
    with pytest.raises(ValueError, match="n_boot"):
        shell_rows((h, out), (h, out), EDGES, DATA, 0, np.random.default_rng(0))
