"""Shared small grids, noise families and densities for the serial-reproduction tests."""

from __future__ import annotations

import numpy as np
import pytest

from gtv.numerics.serial import Grid, NoiseFamily

#: Small grids with an even number of torus points per axis (so that half-period ties occur).
GRIDS = {
    "torus-2d": Grid.torus(8, dim=2),
    "authors-2d": Grid.authors(n=9, dim=2),
    "torus-1d": Grid.torus(16, dim=1),
    "authors-1d": Grid.authors(n=17, dim=1),
}


def make_families(grid: Grid) -> dict[str, NoiseFamily]:
    """Every noise family, with parameters that suit the small test grids."""
    rng = np.random.default_rng(7)
    target = rng.random(grid.shape) + 0.05
    user = rng.random(grid.torus_shape) ** 2
    return {
        "gaussian": NoiseFamily.gaussian(),
        "bimodal": NoiseFamily.bimodal(0.1),
        "bimodal-axis": NoiseFamily.bimodal((0.2, 0.0))
        if grid.dim == 2
        else NoiseFamily.bimodal(0.2),
        "trimodal": NoiseFamily.trimodal(0.1),
        "fade-uniform": NoiseFamily.fade(),
        "fade-target": NoiseFamily.fade(target / target.sum()),
        "fade-authors": NoiseFamily.fade_authors(),
        "fade-gauss-stay": NoiseFamily.fade(stay_sd=0.1),
        "laplace": NoiseFamily.laplace(),
        "box-disc": NoiseFamily.box("disc"),
        "box-square": NoiseFamily.box("square"),
        "user-array": NoiseFamily.user(user),
        "user-callable": NoiseFamily.user(lambda d, s: 1.0 / (1.0 + np.sum(d * d, axis=-1) / s**2)),
    }


FAMILY_NAMES = list(make_families(GRIDS["torus-1d"]))


def level(family: NoiseFamily) -> float:
    """A noise level for the family on the test grids."""
    return 0.35 if family.is_fade else 0.15


def random_density(grid: Grid, seed: int, zeros: bool = False) -> np.ndarray:
    """A random density; with ``zeros`` about half of its entries are exactly 0."""
    rng = np.random.default_rng(seed)
    p = rng.random(grid.shape) ** 3
    if zeros:
        p[rng.random(grid.shape) < 0.5] = 0.0
    return p / p.sum()


@pytest.fixture(params=list(GRIDS))
def grid(request) -> Grid:
    return GRIDS[request.param]
