"""Dense reference of the serial-reproduction chains: the authors' algorithm with M x M matrices.

This is the plain algorithm of Marjieh et al.'s simulation code, written for clarity and used to
check the fast operators (:mod:`gtv.numerics.serial.operator`) and as the baseline of the
benchmark: every kernel ``K_t`` is built entry by entry from the minimum-image displacement
between two grid points (the authors' search over the nine periodic shifts, in integer grid units
so that ties are exact), every posterior ``D_t`` is an ``M x M`` matrix and the sampler multiplies
matrices with vectors. Memory is ``O(M^2)`` per step (``O(T M^2)`` with ``cache=True``, as in the
authors' code: about 7 GB for ``T = 100`` on their 41 x 41 grid), so use it on small grids.
"""

from __future__ import annotations

import itertools

import numpy as np

from gtv.numerics.checks import check_count
from gtv.numerics.serial.chains import check_chain_arguments
from gtv.numerics.serial.families import NoiseFamily, check_kernel_values
from gtv.numerics.serial.grid import Grid

__all__ = [
    "DenseChain",
    "DenseSerialReproduction",
    "dense_kernel_matrix",
    "dense_posterior_matrix",
    "pairwise_displacement_index",
]

#: Largest grid the dense reference accepts (an M x M matrix is 800 MB at this size).
MAX_DENSE_POINTS = 10_000


def pairwise_displacement_index(grid: Grid) -> np.ndarray:
    """Minimum-image displacements ``dest - source`` of all pairs, in grid units: (M, M, dim).

    The authors' rule: of the candidates ``dest - source - shift * m`` over the ``3**dim``
    periodic shifts (taken in the order of their loops), the first with the smallest Euclidean
    norm wins.
    """
    if grid.size > MAX_DENSE_POINTS:
        raise ValueError(
            f"grid must have at most {MAX_DENSE_POINTS} points for the dense reference"
        )
    k = np.indices(grid.shape).reshape(grid.dim, -1).T  # (M, dim) integer coordinates
    delta = k[:, None, :] - k[None, :, :]
    m = grid.period_points
    best = np.full_like(delta, 999 * m)
    for shift in itertools.product((-1, 0, 1), repeat=grid.dim):
        cand = delta - m * np.asarray(shift)
        closer = np.sum(cand * cand, axis=-1) < np.sum(best * best, axis=-1)
        best[closer] = cand[closer]
    return best


def dense_kernel_matrix(grid: Grid, family: NoiseFamily, sigma: float) -> np.ndarray:
    """The forward kernel ``K[dest, source]`` of ``family`` at ``sigma``, column-normalised."""
    disp = pairwise_displacement_index(grid)
    total = np.zeros((grid.size, grid.size))
    for term in family.terms(grid, sigma):
        if term.kind == "shift":
            a = check_kernel_values(term.function(disp, grid), "kernel")
            if term.normalise:
                a = a / a.sum(axis=0, keepdims=True)
            total += term.weight * a
        elif term.kind == "identity":
            total += term.weight * np.eye(grid.size)
        else:
            total += term.weight * np.asarray(term.target, dtype=np.float64).reshape(-1, 1)
    return total / total.sum(axis=0, keepdims=True)


def dense_posterior_matrix(K: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """The Bayesian denoiser ``D[s, d] = K[d, s] prior[s] / (K prior)[d]``.

    A column ``d`` with ``(K prior)[d] = 0`` is the prior itself.
    """
    q = np.asarray(prior, dtype=np.float64).ravel()
    joint = K.T * q[:, None]  # joint[s, d] = K[d, s] q[s]
    y = joint.sum(axis=0)
    out = np.empty_like(joint)
    ok = y > 0
    out[:, ok] = joint[:, ok] / y[ok]
    out[:, ~ok] = q[:, None]
    return out


class DenseChain:
    """The authors' dense algorithm; the same interface as :class:`~.chains.DiffusionChain`.

    Parameters
    ----------
    data, grid, family, sigmas
        As for :class:`~gtv.numerics.serial.chains.DiffusionChain`.
    cache : bool
        Keep every ``K_t`` and ``D_t`` (the authors' memory profile) or rebuild them on demand.
    store_sampling : bool
        Also form and keep the sampling matrices ``S_t = D_t K_t`` during :meth:`generate`, as
        the authors do (an ``M^3`` product per step).
    """

    def __init__(
        self,
        data: object,
        grid: Grid,
        family: NoiseFamily,
        sigmas: object,
        cache: bool = True,
        store_sampling: bool = False,
    ) -> None:
        self.data, self.sigmas = check_chain_arguments(data, grid, family, sigmas)
        if grid.size > MAX_DENSE_POINTS:
            raise ValueError(f"grid must have at most {MAX_DENSE_POINTS} points for DenseChain")
        self.grid, self.family, self.T = grid, family, int(self.sigmas.size)
        self.cache, self.store_sampling = bool(cache), bool(store_sampling)
        self._K: dict[int, np.ndarray] = {}
        self._D: dict[int, np.ndarray] = {}
        self.sampling_matrices: dict[tuple[int, bool], np.ndarray] = {}
        q = np.empty((self.T + 1, grid.size))
        q[0] = self.data.ravel()
        for t in range(1, self.T + 1):
            q[t] = self.kernel_matrix(t) @ q[t - 1]
        self.q = q.reshape(self.T + 1, *grid.shape)

    def _check_t(self, t: object) -> int:
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 1 <= t <= self.T:
            raise ValueError(f"t must be an integer step in [1, T] = [1, {self.T}], got {t!r}")
        return int(t)

    def kernel_matrix(self, t: int) -> np.ndarray:
        """``K_t`` as an ``M x M`` matrix (row = destination)."""
        t = self._check_t(t)
        if t in self._K:
            return self._K[t]
        K = dense_kernel_matrix(self.grid, self.family, self.sigmas[t - 1])
        if self.cache:
            self._K[t] = K
        return K

    def posterior_matrix(self, t: int) -> np.ndarray:
        """``D_t`` as an ``M x M`` matrix (row = clean state, column = noisy state)."""
        t = self._check_t(t)
        if t in self._D:
            return self._D[t]
        D = dense_posterior_matrix(self.kernel_matrix(t), self.q[t - 1])
        if self.cache:
            self._D[t] = D
        return D

    def terminal(self) -> np.ndarray:
        """The terminal density ``p_F`` (the family's)."""
        return self.family.terminal(self.grid)

    def denoise(self, t: int, p: object) -> np.ndarray:
        """``D_t p``."""
        p = np.asarray(p, dtype=np.float64).ravel()
        return (self.posterior_matrix(t) @ p).reshape(self.grid.shape)

    def step(self, t: int, p: object, inject_noise: bool = True) -> np.ndarray:
        """``S_t p``: ``D_t (K_t p)`` or ``D_t p``."""
        p = np.asarray(p, dtype=np.float64).ravel()
        if inject_noise:
            p = self.kernel_matrix(t) @ p
        return (self.posterior_matrix(t) @ p).reshape(self.grid.shape)

    def step_transpose(self, t: int, v: object, inject_noise: bool = True) -> np.ndarray:
        """``S_t^T v``."""
        v = np.asarray(v, dtype=np.float64).ravel()
        z = self.posterior_matrix(t).T @ v
        if inject_noise:
            z = self.kernel_matrix(t).T @ z
        return z.reshape(self.grid.shape)

    def generate(self, start: object = None, inject_noise: bool = True) -> np.ndarray:
        """The sampler's densities ``p`` (``p[T] = start``, ``p[t-1] = S_t p[t]``)."""
        p0 = self.terminal() if start is None else self.grid.check_density(start, "start")
        p = np.empty((self.T + 1, *self.grid.shape))
        p[self.T] = p0
        for t in range(self.T, 0, -1):
            p[t - 1] = self.step(t, p[t], inject_noise)
            if self.store_sampling:
                D = self.posterior_matrix(t)
                S = D @ self.kernel_matrix(t) if inject_noise else D
                self.sampling_matrices[(t, bool(inject_noise))] = S
        return p


class DenseSerialReproduction:
    """Dense homogeneous chain; the interface of :class:`~.chains.SerialReproduction`."""

    def __init__(self, prior: object, grid: Grid, family: NoiseFamily, sigma: float) -> None:
        self.prior, s = check_chain_arguments(prior, grid, family, [sigma], "prior", "sigma")
        self.grid, self.family, self.sigma = grid, family, float(s[0])
        self.kernel = dense_kernel_matrix(grid, family, self.sigma)
        self.posterior = dense_posterior_matrix(self.kernel, self.prior)
        self.transition = self.posterior @ self.kernel  # S[x', x]

    def step(self, p: object) -> np.ndarray:
        """``S p``."""
        return (self.transition @ np.asarray(p, dtype=np.float64).ravel()).reshape(self.grid.shape)

    def step_transpose(self, v: object) -> np.ndarray:
        """``S^T v``."""
        v = np.asarray(v, dtype=np.float64).ravel()
        return (self.transition.T @ v).reshape(self.grid.shape)

    def run(self, start: object, n_steps: int) -> np.ndarray:
        """``(n_steps + 1, *shape)`` densities from ``start``."""
        p0 = self.grid.check_density(start, "start")
        n = check_count(n_steps, "n_steps", minimum=1)
        out = np.empty((n + 1, *self.grid.shape))
        out[0] = p0
        for i in range(n):
            out[i + 1] = self.step(out[i])
        return out
