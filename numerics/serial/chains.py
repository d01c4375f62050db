"""Diffusion as serial reproduction: forward marginals, exact Bayesian denoisers, sampling chains.

A :class:`DiffusionChain` holds the forward kernels ``K_1 .. K_T`` of a noise family and schedule
and the forward marginals ``q_t = K_t q_{t-1}`` from ``q_0 = data``. Step ``t`` of the sampler is
one serial-reproduction unit: observe a noisy state, reproduce it with the exact Bayesian denoiser
``D_t(s | d) = K_t(d | s) q_{t-1}(s) / q_t(d)`` (the posterior of the previous state given the
noisy one). The sampler starts from a terminal density ``p_F`` and runs t = T .. 1 either

* with noise injection, ``p <- D_t K_t p`` (the unit ``S_t = D_t K_t``, which leaves ``q_{t-1}``
  invariant for any kernel), or
* denoise-only, ``p <- D_t p`` (exact when started at ``q_T``: ``D_t q_t = q_{t-1}``).

A :class:`SerialReproduction` is the homogeneous chain of one unit with a fixed kernel and a fixed
prior; it converges to the prior from any start when the kernel mixes.

Everything runs on :class:`~gtv.numerics.serial.operator.KernelOperator`: ``O(M log M)`` per
step, no ``M x M`` matrix. The dense algorithm of the authors' code is in
:mod:`gtv.numerics.serial.reference`.
"""

from __future__ import annotations

import numpy as np

from gtv.numerics.checks import check_count
from gtv.numerics.serial.families import NoiseFamily
from gtv.numerics.serial.grid import Grid
from gtv.numerics.serial.operator import KernelOperator

__all__ = [
    "DiffusionChain",
    "SerialReproduction",
    "check_chain_arguments",
    "forward_marginals",
    "generate",
    "homogeneous_chain",
]


def check_chain_arguments(
    data: object,
    grid: object,
    family: object,
    sigmas: object,
    data_name: str = "data",
    sigmas_name: str = "sigmas",
) -> tuple[np.ndarray, np.ndarray]:
    """Check the arguments of a chain before any work; returns ``(data, sigmas)``.

    Raises ``ValueError`` naming ``grid``, ``family``, the schedule ``sigmas_name`` (``T >= 1``;
    widths > 0, fade probabilities in [0, 1]) or the density ``data_name`` (the grid's shape,
    finite, non-negative, sums to 1).
    """
    if not isinstance(grid, Grid):
        raise ValueError(f"grid must be a gtv.numerics.serial.Grid, got {type(grid).__name__}")
    if not isinstance(family, NoiseFamily):
        raise ValueError(f"family must be a NoiseFamily, got {type(family).__name__}")
    s = family.check_sigmas(sigmas, sigmas_name)
    d = grid.check_density(data, data_name)
    return d, s


class DiffusionChain:
    """The forward process and the exact serial-reproduction sampler of one schedule.

    Parameters
    ----------
    data : array_like
        The data density ``q_0`` (grid shape; non-negative, sums to 1).
    grid : Grid
        The grid.
    family : NoiseFamily
        The noise family.
    sigmas : array_like
        The schedule, ``T >= 1`` noise levels ``sigma_1 .. sigma_T`` (see
        :func:`gtv.numerics.serial.schedule`).

    Attributes
    ----------
    q : ndarray
        The forward marginals, shape ``(T + 1, *grid.shape)``, ``q[0] = data``.
    """

    def __init__(self, data: object, grid: Grid, family: NoiseFamily, sigmas: object) -> None:
        self.data, self.sigmas = check_chain_arguments(data, grid, family, sigmas)
        self.grid = grid
        self.family = family
        self.T = int(self.sigmas.size)
        self._kernels = [KernelOperator.from_family(family, grid, s) for s in self.sigmas]
        q = np.empty((self.T + 1, *grid.shape))
        q[0] = self.data
        for t in range(1, self.T + 1):
            q[t] = self._kernels[t - 1].pushed(q[t - 1])
        self.q = q

    def _check_t(self, t: object) -> int:
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 1 <= t <= self.T:
            raise ValueError(f"t must be an integer step in [1, T] = [1, {self.T}], got {t!r}")
        return int(t)

    def kernel(self, t: int) -> KernelOperator:
        """The forward kernel ``K_t`` (``t = 1 .. T``)."""
        return self._kernels[self._check_t(t) - 1]

    def terminal(self) -> np.ndarray:
        """The terminal density ``p_F`` the sampler starts from by default (the family's)."""
        return self.family.terminal(self.grid)

    def denoise(self, t: int, p: object) -> np.ndarray:
        """``D_t p``: the exact posterior of the state at level ``t - 1`` given level ``t``."""
        t = self._check_t(t)
        return self._kernels[t - 1].posterior(p, self.q[t - 1], self.q[t])

    def step(self, t: int, p: object, inject_noise: bool = True) -> np.ndarray:
        """One sampler step ``S_t p``: ``D_t K_t p`` (noise injection) or ``D_t p``."""
        t = self._check_t(t)
        if inject_noise:  # the noisy density needs absolute accuracy only
            p = np.maximum(self._kernels[t - 1].apply(p), 0.0)
        return self._kernels[t - 1].posterior(p, self.q[t - 1], self.q[t])

    def step_transpose(self, t: int, v: object, inject_noise: bool = True) -> np.ndarray:
        """``S_t^T v`` (``K_t^T D_t^T v`` with noise injection, else ``D_t^T v``)."""
        t = self._check_t(t)
        k = self._kernels[t - 1]
        z = k.posterior_transpose(v, self.q[t - 1], self.q[t])
        return k.apply_transpose(z) if inject_noise else z

    def generate(self, start: object = None, inject_noise: bool = True) -> np.ndarray:
        """Run the sampler from ``start`` (default :meth:`terminal`) down to level 0.

        Returns
        -------
        ndarray
            ``p`` of shape ``(T + 1, *grid.shape)``: ``p[T] = start`` and
            ``p[t - 1] = S_t p[t]``, so ``p[0]`` is the generated density and ``p[k]`` is the
            sampler's density at level ``k`` (to compare with ``q[k]``).
        """
        p0 = self.terminal() if start is None else self.grid.check_density(start, "start")
        p = np.empty((self.T + 1, *self.grid.shape))
        p[self.T] = p0
        for t in range(self.T, 0, -1):
            p[t - 1] = self.step(t, p[t], inject_noise)
        return p


class SerialReproduction:
    """A homogeneous serial-reproduction chain: ``p <- D K p`` with fixed kernel and prior.

    Parameters
    ----------
    prior : array_like
        The prior (grid shape; a density). It is the chain's stationary distribution.
    grid : Grid
        The grid.
    family : NoiseFamily
        The noise family of the (fixed) memory noise.
    sigma : float
        Its noise level.
    """

    def __init__(self, prior: object, grid: Grid, family: NoiseFamily, sigma: float) -> None:
        self.prior, s = check_chain_arguments(prior, grid, family, [sigma], "prior", "sigma")
        self.grid = grid
        self.family = family
        self.sigma = float(s[0])
        self.kernel = KernelOperator.from_family(family, grid, self.sigma)
        self.pushed = self.kernel.pushed(self.prior)

    def step(self, p: object) -> np.ndarray:
        """One reproduction ``D K p``."""
        noisy = np.maximum(self.kernel.apply(p), 0.0)
        return self.kernel.posterior(noisy, self.prior, self.pushed)

    def step_transpose(self, v: object) -> np.ndarray:
        """``(D K)^T v``: ``(D K)^T v (x) = E[v(x') | x]``, the transition's conditional mean."""
        z = self.kernel.posterior_transpose(v, self.prior, self.pushed)
        return self.kernel.apply_transpose(z)

    def run(self, start: object, n_steps: int) -> np.ndarray:
        """Densities for ``n_steps`` steps from ``start``: ``(n_steps + 1, *shape)``."""
        p0 = self.grid.check_density(start, "start")
        n = check_count(n_steps, "n_steps", minimum=1)
        out = np.empty((n + 1, *self.grid.shape))
        out[0] = p0
        for i in range(n):
            out[i + 1] = self.step(out[i])
        return out


def forward_marginals(data: object, grid: Grid, family: NoiseFamily, sigmas: object) -> np.ndarray:
    """The forward marginals ``q`` (``(T + 1, *grid.shape)``, ``q[0] = data``)."""
    return DiffusionChain(data, grid, family, sigmas).q


def generate(
    data: object,
    grid: Grid,
    family: NoiseFamily,
    sigmas: object,
    start: object = None,
    inject_noise: bool = True,
) -> np.ndarray:
    """The sampler's densities ``p``, ``(T + 1, *grid.shape)`` (:meth:`DiffusionChain.generate`)."""
    if start is not None:
        grid.check_density(start, "start")
    return DiffusionChain(data, grid, family, sigmas).generate(start, inject_noise)


def homogeneous_chain(
    prior: object, grid: Grid, family: NoiseFamily, sigma: float, start: object, n_steps: int
) -> np.ndarray:
    """Densities of a homogeneous serial-reproduction chain (``(n_steps + 1, *grid.shape)``)."""
    check_count(n_steps, "n_steps", minimum=1)
    if isinstance(grid, Grid):
        grid.check_density(start, "start")
    return SerialReproduction(prior, grid, family, sigma).run(start, n_steps)
