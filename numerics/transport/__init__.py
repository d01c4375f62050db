"""Learned densities without sampling noise: start sets pushed through a model's sampler.

* 1-D (:mod:`~gtv.numerics.transport.grid`): a deterministic quantile grid of
  ``N(0, sigma_T**2)`` is carried through each model's PF-ODE sampler and the transported
  Gaussian mass is binned exactly, cell by cell (:mod:`~gtv.numerics.transport.kernel`): per-model
  densities up to the grid resolution, folds included, with an error estimate from the halved grid.
* 2-D and more (:mod:`~gtv.numerics.transport.qmc`): scrambled Sobol' start points (randomized
  quasi-Monte Carlo), binned like samples.

docs/math/transport.md describes both and the measured accuracy.
"""

from gtv.numerics.transport.grid import GRID_WIDTH, TransportedGrid, transport_1d, transport_grid
from gtv.numerics.transport.kernel import pushforward_masses, pushforward_masses_reference
from gtv.numerics.transport.qmc import qmc_start_points

__all__ = [
    "GRID_WIDTH",
    "TransportedGrid",
    "pushforward_masses",
    "pushforward_masses_reference",
    "qmc_start_points",
    "transport_1d",
    "transport_grid",
]
