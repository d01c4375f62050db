"""Saving and loading Fokker-Planck results (gtv.numerics.fokker_planck.result)."""

import numpy as np

from gtv.numerics.fokker_planck import FokkerPlanckResult, solve_fokker_planck, uniform_grid

from .exact import EPS, T, cell_avg


def test_save_and_load_roundtrip(tmp_path):
    grid = uniform_grid((-5, 5), 100)
    p0 = cell_avg(grid.edges[0], 0.0, 1.0)
    res = solve_fokker_planck(lambda x, t: x, 0.3, p0, grid, T, EPS, 10, save_times=[0.5])
    path = res.save(tmp_path / "fp")
    assert path.suffix == ".npz"
    back = FokkerPlanckResult.load(path)
    np.testing.assert_array_equal(back.density, res.density)
    np.testing.assert_array_equal(back.snapshots, res.snapshots)
    np.testing.assert_array_equal(back.grid.edges[0], grid.edges[0])
    assert back.config == res.config and back.config["scheme"] == "tr-bdf2-fct"
    with np.load(path, allow_pickle=False) as data:
        assert "__config__" in data.files
