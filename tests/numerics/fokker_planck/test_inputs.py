"""Input validation of the Fokker-Planck solver: a bad argument raises a ValueError naming it."""

import numpy as np
import pytest

from gtv.numerics.fokker_planck import (
    gaussian_cell_averages,
    grid_from_edges,
    solve_fokker_planck,
    uniform_grid,
)

from .exact import EPS, T, cell_avg, check_invariants


def _grid1():
    return uniform_grid((-6, 6), 50)


def _p1():
    return cell_avg(_grid1().edges[0], 0.0, 1.0)


@pytest.mark.parametrize(
    "kwargs, argname",
    [
        ({"drift": "x"}, "drift"),
        ({"drift": lambda x, t: np.full_like(x, np.nan)}, "drift"),
        ({"drift": lambda x, t: np.zeros((x.shape[0], 3))}, "drift"),
        ({"noise": -0.1}, "noise"),
        ({"noise": lambda x, t: 0.5 - x[:, 0] ** 2}, "noise"),
        ({"noise": lambda x, t: np.inf}, "noise"),
        ({"noise": lambda x, t: np.zeros((x.shape[0], 2))}, "noise"),
        ({"noise": "big"}, "noise"),
        ({"p_T": np.ones(49)}, "p_T"),
        ({"p_T": -_p1()}, "p_T"),
        ({"p_T": np.zeros(50)}, "p_T"),
        ({"p_T": np.full(50, np.nan)}, "p_T"),
        ({"grid": np.linspace(-6, 6, 51)}, "grid"),
        ({"T": -1.0}, "T"),
        ({"eps": 0.0}, "eps"),
        ({"eps": 1.0}, "eps"),
        ({"n_steps": 0}, "n_steps"),
        ({"n_steps": 2.5}, "n_steps"),
        ({"save_times": [1.5]}, "save_times"),
        ({"scheme": "euler"}, "scheme"),
        ({"backend": "cuda"}, "backend"),
        ({"boundary_tol": -1.0}, "boundary_tol"),
        ({"boundary_tol": "tight"}, "boundary_tol"),
        ({"noise_rtol": np.nan}, "noise_rtol"),
        ({"boundary_cells": 25}, "boundary_cells"),
        ({"max_stencil": 0}, "max_stencil"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(kwargs, argname):
    args = {
        "drift": lambda x, t: x,
        "noise": 0.5,
        "p_T": _p1(),
        "grid": _grid1(),
        "T": T,
        "eps": EPS,
        "n_steps": 5,
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=rf"^{argname}\b"):
        solve_fokker_planck(**args)


@pytest.mark.parametrize(
    "noise",
    [
        lambda x, t: np.broadcast_to(np.array([[1.0, 2.0], [2.0, 1.0]]), (x.shape[0], 2, 2)),
        lambda x, t: np.broadcast_to(np.array([[1.0, 0.2], [0.1, 1.0]]), (x.shape[0], 2, 2)),
        lambda x, t: np.stack([np.ones(x.shape[0]), -np.ones(x.shape[0])], axis=1),
        lambda x, t: np.ones((x.shape[0], 3)),
    ],
    ids=["not-psd", "asymmetric", "negative-diagonal", "bad-shape"],
)
def test_bad_2d_noise_raises(noise):
    grid = uniform_grid(((-6, 6), (-6, 6)), 20)
    with pytest.raises(ValueError, match=r"^noise\b"):
        solve_fokker_planck(lambda x, t: x, noise, gaussian_cell_averages(grid), grid, T, 0.5, 2)


def test_full_noise_needs_uniform_grid():
    e = np.concatenate([np.linspace(-6, 0, 11), np.linspace(0, 6, 21)[1:]])
    grid = grid_from_edges(e, e)
    noise = lambda x, t: np.broadcast_to(np.array([[1.0, 0.3], [0.3, 1.0]]), (x.shape[0], 2, 2))  # noqa: E731
    with pytest.raises(ValueError, match=r"^grid: a noise with off-diagonal"):
        solve_fokker_planck(lambda x, t: x, noise, gaussian_cell_averages(grid), grid, T, 0.5, 2)
    # a diagonal noise is fine on the same grid
    res = solve_fokker_planck(lambda x, t: x, 1.0, gaussian_cell_averages(grid), grid, T, 0.5, 4)
    check_invariants(res)
