"""Finite-volume Fokker-Planck solver for reverse-time densities in 1-D and 2-D (docs/math/predictions.md).

What is solved
--------------
The processes of this project run *backwards* in the diffusion time, from ``t = T`` down to the
cutoff ``t = eps`` (the PF-ODE, the reverse SDE, the effective dynamics of §3.1-3.2). They are
written in the diffusion-time convention of docs/math/conventions.md,

    ``dx = b(x, t) dt + xi``,   ``dt < 0``,   ``<xi(t) xi(t')^T> = Q(x, t) delta(t - t')``,

e.g. ``b = -beta_t x - D_t s(x, t)`` with ``Q = 0`` (PF-ODE), ``b = -beta_t x - 2 D_t s`` with
``Q = 2 D_t I`` (reverse SDE), or ``b = -beta_t x - D_t s_avg`` with ``Q`` from the V-kernel.
``Q`` is a covariance *per unit of |dt|* (the reverse-time noise increments have covariance
``Q |dt|``). In the reverse time ``s = T - t`` (running from 0 to ``T - eps``) the same process
is the ordinary forward SDE ``dx = -b(x, T - s) ds + Q^(1/2) dW_s``, so its density obeys the
forward parabolic equation

    ``dp/ds = div(b p) + 1/2 sum_ij d_i d_j (Q_ij p)``
          ``= -div(a p) + 1/2 sum_ij d_i d_j (Q_ij p)``,   ``a(x, s) = -b(x, T - s)``,

from ``p(s = 0) = p_T`` to ``s = T - eps``. (Written in ``t``:
``dp/dt = -div(b p) - 1/2 d_i d_j (Q_ij p)``, integrated from ``t = T`` down to ``eps``.) A user
whose drift is already a reverse-time velocity ``a(x, s)`` passes ``b = -a``. The noise enters in
Ito form, ``d_i d_j (Q_ij p)``, with no spurious-drift correction: this is the Fokker-Planck
equation of the Ito SDE above.

Interface for coefficients
--------------------------
``drift(x, t)`` and ``noise(x, t)`` are called once per time step with ``x`` a float64 array of
points of shape ``(m, d)`` (``d`` = grid dimension) and ``t`` a Python float (the diffusion time).
Both plain numpy callables and numba ``@njit`` functions qualify (the generated schedule functions
and ``posterior_stats(mu, x, t).score`` have exactly this calling convention), as do closures
combining them.

* ``drift`` returns ``b`` with shape ``(m, d)`` (``(m,)`` is accepted in 1-D). It is evaluated at
  the interior cell faces (component ``k`` at the faces normal to axis ``k``).
* ``noise`` returns ``Q`` at the cell centres: a scalar or shape ``(m,)`` (isotropic ``Q = q I``),
  in 2-D ``(m, 2)`` (diagonal) or ``(m, 2, 2)`` (full symmetric matrix; the PSD check and the
  symmetrization use a 1e-12 relative tolerance); in 1-D also ``(m, 1)`` or ``(m, 1, 1)``
  (``posterior_stats(..., full_cov=True).proxy_cov`` has this shape). Constant shapes ``(2,)``
  and ``(2, 2)`` (2-D) are broadcast. ``noise`` may also be ``None``/``0`` (no noise) or such a
  constant (number or array) instead of a callable.

Both are evaluated once per step, at the midpoint ``t_mid = (t_k + t_{k+1}) / 2``, and frozen over
the step (second order in time, and never at ``t = T`` or ``t = eps`` themselves): ``drift`` on
the ``(nx - 1) ny + nx (ny - 1)`` interior faces in one call (both components are computed at
all faces; only the normal one is used), ``noise`` on the ``nx ny`` centres. Their cost (e.g. a
posterior over M training points) adds to the solver's ~50 ns per cell and sweep.

Scheme
------
Cell-centred finite volumes on a tensor grid (arbitrary cell widths per axis), zero-flux
boundaries, so the total mass is conserved exactly up to round-off and mass that would leave the
domain piles up in the outermost cells, where it is detected (see *Boundary check*).

* Space, along one axis: the flux through the face between cells ``l`` and ``r`` is
  ``J = a p - 1/2 d(Q p)/dx`` (``Q`` the diagonal entry for this axis), discretized two ways:

  - **low order** (Chang-Cooper = Scharfetter-Gummel exponential fitting):
    ``J = (d/h) [B(-w) p_l - B(w) p_r]`` with ``A = a_f - (Q_r - Q_l)/(2h)``,
    ``d = (Q_l + Q_r)/4``, ``w = A h / d``, ``B(w) = w / (e^w - 1)``; pure upwind when ``d = 0``.
    Both coefficients are non-negative for any ``a`` and ``Q``: the implicit operator is an
    M-matrix, so the backward-Euler step is positivity preserving for every step size. It is
    second order where diffusion dominates on the cell scale (``|w| << 1``) and degrades to
    first-order upwind where advection dominates (``Q = 0``, e.g. the PF-ODE);
  - **high order** (central): ``J = a_f ((1 - th) p_l + th p_r) - 1/2 (Q_r p_r - Q_l p_l)/h``
    with ``th`` the linear-interpolation weight of the face; second order, not monotone.

* Time: ``scheme="tr-bdf2-fct"`` (default) advances the central discretization with TR-BDF2
  (``gamma = 2 - sqrt 2``; L-stable, second order; both stages share one tridiagonal matrix) and
  the Chang-Cooper discretization with backward Euler, then applies a flux-corrected-transport
  (FCT) **positivity limiter**: the difference of the two solutions is written as a conservative
  flux ``g`` along the line, and each cell's outgoing part of ``g`` is scaled down just enough
  (Zalesak-type, donor-cell factor ``R = min(1, (1 - 1e-12) V p_low / outflow)``) that no cell
  becomes negative. Wherever no cell's antidiffusive outflow exceeds its low-order mass the
  limiter is inactive and the result is the second-order (space and time) solution; in practice
  it acts only in far tails (densities ~1e-30) and on features the grid does not resolve, and
  the mass it moves is reported (``limited_mass``; ~1e-14 .. 1e-7 of the mass per step in the
  resolved tests, percents on a too-coarse grid).
  ``scheme="chang-cooper-be"`` is the linear, monotone, first-order scheme (low order only).

* 2-D: symmetric Strang splitting into 1-D sweeps along grid lines, all with the coefficients of
  the step's midpoint: ``X(ds/2) Y(ds/2) C_1(ds/2) ... C_m(ds) ... Y(ds/2) X(ds/2)`` (``X(ds/2)
  Y(ds) X(ds/2)`` without cross terms). Each sweep is a set of independent tridiagonal systems
  (numba, parallel over lines) and is itself conservative and positive, so the step is too.
  This is ADI of the locally-one-dimensional (LOD) type; it was preferred to a sparse LU of the
  2-D operator because the operator changes every step (the drift and noise depend on ``t``):
  on 200 x 200 cells one scipy ``splu`` takes ~170 ms and a step needs two (high and low order),
  against ~9 ms (diagonal ``Q``) to ~20 ms (full ``Q``) for a whole split step; and to
  Douglas/Peaceman-Rachford ADI because their explicit half-steps are not positivity preserving.

* Full 2x2 noise (2-D): the off-diagonal part is handled with a monotone lattice decomposition
  (Selling's obtuse superbase; Fehrenbach & Mirebeau 2014). In grid units ``H^-1 Q H^-1 =
  sum_e rho_e e e^T`` with ``rho_e >= 0`` and ``e`` three integer vectors per cell, so
  ``1/2 d_i d_j (Q_ij p) = 1/2 sum_e d_e^2 (rho_e p)``; each term is a non-negative central
  diffusion along the grid lines of direction ``e``. ``e = (1, 0)``, ``(0, 1)`` join the X/Y
  sweeps (as their diagonal ``Q``); every other direction becomes one more sweep ``C_i`` (e.g.
  ``(1, 1)`` and ``(1, -1)`` for moderately anisotropic ``Q``, longer vectors for stronger
  anisotropy). This needs uniform spacing along each axis. Stencils are limited to
  ``max(|e_x|, |e_y|) <= max_stencil``; the part of ``Q`` a limited stencil cannot represent (a
  nearly singular ``Q`` whose null direction is not a lattice direction) is dropped, its relative
  trace is reported (``noise_dropped``), and above ``noise_rtol`` a ``ValueError`` is raised.

Boundary check
--------------
The *boundary mass* is the fraction of the total mass in the boundary layer: the outermost
``boundary_cells`` cells at each end of each axis (in 2-D the frame of cells within
``boundary_cells`` of any edge). It is computed for ``p_T`` and after every step; if it exceeds
``boundary_tol`` (default 1e-6) a ``ValueError`` names ``grid`` and reports the amount, the
time and the side. Zero-flux walls conserve mass exactly, so this is how a grid that does not
cover the mass is detected.

Implementations
---------------
``backend="numba"``: kernels for the face coefficients, Selling decomposition and the line sweeps
(Thomas algorithm; for the M-matrices it involves every operation adds non-negative numbers, so
the low-order solution is non-negative exactly in floating point), serial or parallel over lines
(``parallel``; same result for any thread count).
``backend="numpy"``: a plain reference of the same scheme that assembles each sweep's operator
as one scipy.sparse matrix on the whole grid and solves it with a sparse LU; its Selling
decomposition and FCT limiter are separate vectorized/looped numpy code. A test asserts that the
two agree.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numba
import numpy as np

from gtv.numerics.checks import check_count, check_eps
from gtv.numerics.io import load_result, save_result

__all__ = [
    "FVGrid",
    "FokkerPlanckResult",
    "MIN_CELLS",
    "SCHEMES",
    "gaussian_cell_averages",
    "grid_from_edges",
    "load_fokker_planck",
    "schedule_drift",
    "solve_clipped_white_noise",
    "solve_fokker_planck",
    "uniform_grid",
]

#: Fewest cells allowed along an axis.
MIN_CELLS = 8
#: Available time/space schemes (see the module docstring).
SCHEMES = ("tr-bdf2-fct", "chang-cooper-be")

# TR-BDF2 with gamma = 2 - sqrt(2): both stages use the matrix V - KAPPA ds L.
_GAMMA = 2.0 - math.sqrt(2.0)
_KAPPA = 1.0 - math.sqrt(0.5)  # = gamma/2 = (1 - gamma)/(2 - gamma)
_C1 = 1.0 / (_GAMMA * (2.0 - _GAMMA))
_C2 = (1.0 - _GAMMA) ** 2 / (_GAMMA * (2.0 - _GAMMA))
# The FCT limiter leaves this fraction of every cell's low-order mass untouched, which keeps the
# result non-negative despite round-off.
_FCT_MARGIN = 1e-12
# The high-order solve of a line is used only if every LU pivot is >= this fraction of the cell
# volume (otherwise the step is too long for the compression rate and the line falls back to the
# low-order solution, counted in ``n_fallback``).
_PIVOT_FLOOR = 0.5
# Relative tolerances for accepting the noise: negative entries / eigenvalues down to
# -_NOISE_TOL * scale are rounding and are set to zero; asymmetry up to _NOISE_TOL * scale is
# averaged away. Selling's iteration stops when every pair product is <= _SELLING_TOL * trace.
_NOISE_TOL = 1e-12
_SELLING_TOL = 1e-14
_SELLING_MAXIT = 200
# With ``parallel=None`` grids with at least this many cells run the line sweeps in parallel
# (numba prange over lines). Thread launches cost more than they save on smaller grids, and on a
# busy machine (more runnable threads than cores) a parallel sweep can be ~10x slower than serial.
_PARALLEL_MIN_CELLS = 250_000


# -- grid ---------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class FVGrid:
    """A tensor-product finite-volume grid in 1-D or 2-D.

    Build it with :func:`uniform_grid` or :func:`grid_from_edges` (which validate the input).
    Densities on the grid are cell averages with shape ``grid.shape`` (``(n,)`` or ``(nx, ny)``,
    axis 0 = x, axis 1 = y, as ``meshgrid(..., indexing="ij")``).

    Attributes
    ----------
    edges : tuple of ndarray
        Cell edges per axis, strictly increasing, ``n_k + 1`` entries.
    """

    edges: tuple[np.ndarray, ...]

    @property
    def ndim(self) -> int:
        return len(self.edges)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(e.size - 1 for e in self.edges)

    @property
    def n_cells(self) -> int:
        return int(np.prod(self.shape))

    @property
    def centres(self) -> tuple[np.ndarray, ...]:
        """Cell centres per axis."""
        return tuple(0.5 * (e[1:] + e[:-1]) for e in self.edges)

    @property
    def widths(self) -> tuple[np.ndarray, ...]:
        """Cell widths per axis."""
        return tuple(np.diff(e) for e in self.edges)

    @property
    def volumes(self) -> np.ndarray:
        """Cell volumes (lengths in 1-D, areas in 2-D), shape ``grid.shape``."""
        w = self.widths
        return w[0].copy() if self.ndim == 1 else np.outer(w[0], w[1])

    def is_uniform(self, axis: int) -> bool:
        """Whether the cells along ``axis`` have equal widths (to 1e-10 relative)."""
        w = self.widths[axis]
        return bool(np.all(np.abs(w - w.mean()) <= 1e-10 * w.mean()))

    def points(self) -> np.ndarray:
        """Cell centres as an ``(n_cells, ndim)`` array, in the C order of ``grid.shape``."""
        c = self.centres
        if self.ndim == 1:
            return c[0][:, None].copy()
        X, Y = np.meshgrid(c[0], c[1], indexing="ij")
        return np.stack([X.ravel(), Y.ravel()], axis=1)

    def mass(self, density: np.ndarray) -> float:
        """``sum(density * volumes)``."""
        return float(np.sum(np.asarray(density) * self.volumes))

    def config(self) -> dict:
        return {
            "ndim": self.ndim,
            "shape": list(self.shape),
            "bounds": [[float(e[0]), float(e[-1])] for e in self.edges],
            "uniform": [self.is_uniform(k) for k in range(self.ndim)],
        }


def _check_edges(e: object, argname: str) -> np.ndarray:
    try:
        arr = np.array(e, dtype=np.float64).ravel()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{argname} must be a 1-D numeric array of cell edges") from exc
    if arr.size < MIN_CELLS + 1:
        raise ValueError(
            f"{argname} must describe at least MIN_CELLS = {MIN_CELLS} cells "
            f"({MIN_CELLS + 1} edges), got {max(arr.size - 1, 0)} cells"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{argname} must contain only finite values")
    if not np.all(np.diff(arr) > 0):
        raise ValueError(f"{argname} must be strictly increasing")
    arr.setflags(write=False)
    return arr


def grid_from_edges(*edges: object) -> FVGrid:
    """A grid from explicit cell edges, one strictly increasing array per axis (1 or 2 axes).

    Raises
    ------
    ValueError
        For a number of axes other than 1 or 2, fewer than ``MIN_CELLS`` cells along an axis,
        non-finite or non-increasing edges.
    """
    if len(edges) not in (1, 2):
        raise ValueError(f"edges: pass one array per axis (1 or 2 axes), got {len(edges)}")
    return FVGrid(tuple(_check_edges(e, f"edges[{k}]") for k, e in enumerate(edges)))


def uniform_grid(bounds: object, n_cells: object = None) -> FVGrid:
    """A uniform grid on ``[lo, hi]`` (1-D) or ``[lo_x, hi_x] x [lo_y, hi_y]`` (2-D).

    Parameters
    ----------
    bounds : (lo, hi) or ((lo_x, hi_x), (lo_y, hi_y))
        Domain; it must contain all but a negligible part of the mass at every time
        (see the boundary check of :func:`solve_fokker_planck`).
    n_cells : int or (int, int), optional
        Cells per axis (default 400 in 1-D, 200 per axis in 2-D); at least ``MIN_CELLS``.

    Raises
    ------
    ValueError
        For malformed or empty ``bounds`` or too few ``n_cells``.
    """
    try:
        b = np.array(bounds, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError("bounds must be (lo, hi) or ((lo_x, hi_x), (lo_y, hi_y))") from exc
    if b.shape == (2,):
        b = b[None, :]
    if b.ndim != 2 or b.shape[1] != 2 or b.shape[0] not in (1, 2):
        raise ValueError(
            f"bounds must be (lo, hi) or ((lo_x, hi_x), (lo_y, hi_y)), got shape {b.shape}"
        )
    if not (np.all(np.isfinite(b)) and np.all(b[:, 1] > b[:, 0])):
        raise ValueError(f"bounds must be finite with lo < hi on every axis, got {b.tolist()}")
    ndim = b.shape[0]
    if n_cells is None:
        n_cells = 400 if ndim == 1 else 200
    n = np.atleast_1d(np.asarray(n_cells))
    if n.size == 1 and ndim == 2:
        n = np.repeat(n, 2)
    if n.shape != (ndim,) or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in n.tolist()
    ):
        raise ValueError(f"n_cells must be an integer or one integer per axis, got {n_cells!r}")
    if np.any(n < MIN_CELLS):
        raise ValueError(f"n_cells must be >= MIN_CELLS = {MIN_CELLS} per axis, got {n_cells!r}")
    edges = []
    for k in range(ndim):
        e = np.linspace(b[k, 0], b[k, 1], int(n[k]) + 1)
        e.setflags(write=False)
        edges.append(e)
    return FVGrid(tuple(edges))


def gaussian_cell_averages(grid: FVGrid, mean: object = 0.0, cov: object = 1.0) -> np.ndarray:
    """Cell averages of the Gaussian density ``N(mean, cov)`` on ``grid``.

    For the PF-ODE initial density ``N(0, sigma_T**2 I)`` pass ``cov=schedule.sigma2(T)``.

    Parameters
    ----------
    grid : FVGrid
    mean : float or array_like, shape (d,)
    cov : float (isotropic), array_like (d,) (diagonal) or (d, d)
        Diagonal covariances are averaged exactly (differences of ``erf``); a full 2x2
        covariance with 6x6 Gauss-Legendre points per cell (relative error ~1e-12 for cells up
        to ~1 standard deviation wide).

    Returns
    -------
    ndarray, shape ``grid.shape``
    """
    from scipy.special import erf

    d = grid.ndim
    m = np.broadcast_to(np.asarray(mean, dtype=np.float64), (d,))
    c = np.asarray(cov, dtype=np.float64)
    if c.ndim == 0:
        c = np.eye(d) * c
    elif c.shape == (d,):
        c = np.diag(c)
    if c.shape != (d, d) or not np.all(np.isfinite(c)) or not np.allclose(c, c.T):
        raise ValueError(f"cov must be a scalar, ({d},) or a symmetric ({d}, {d}) array")
    if np.any(np.linalg.eigvalsh(c) <= 0):
        raise ValueError("cov must be positive definite")
    if d == 1 or c[0, 1] == 0.0:
        out = []
        for k in range(d):
            z = (grid.edges[k] - m[k]) / math.sqrt(2.0 * c[k, k])
            out.append(0.5 * np.diff(erf(z)) / grid.widths[k])
        return out[0] if d == 1 else np.outer(out[0], out[1])
    nodes, weights = np.polynomial.legendre.leggauss(6)
    pts, wts = [], []
    for k in range(2):
        lo, w = grid.edges[k][:-1], grid.widths[k]
        pts.append(lo[:, None] + 0.5 * w[:, None] * (nodes[None, :] + 1.0))
        wts.append(0.5 * weights)
    inv = np.linalg.inv(c)
    norm = 1.0 / (2.0 * math.pi * math.sqrt(np.linalg.det(c)))
    dx = pts[0][:, None, :, None] - m[0]
    dy = pts[1][None, :, None, :] - m[1]
    q = inv[0, 0] * dx * dx + 2.0 * inv[0, 1] * dx * dy + inv[1, 1] * dy * dy
    vals = norm * np.exp(-0.5 * q)
    return np.einsum("ijab,a,b->ij", vals, wts[0], wts[1])


def schedule_drift(schedule: object, score: Callable, score_factor: float = 1.0) -> Callable:
    """The drift ``b(x, t) = -beta_t x - score_factor * D_t * score(x, t)``.

    ``score_factor = 1`` gives the PF-ODE / effective-dynamics drift (use ``Q = 0`` or the
    V-kernel noise), ``score_factor = 2`` the reverse-SDE drift (with ``Q = 2 D_t``).
    ``score(x, t)`` takes points ``(m, d)`` and a float time and returns ``(m, d)``.
    """
    from gtv.numerics.schedules import resolve_schedule

    sched = resolve_schedule(schedule)
    f = float(score_factor)

    def drift(x: np.ndarray, t: float) -> np.ndarray:
        return -float(sched.beta(t)) * x - f * float(sched.diffusion(t)) * np.asarray(score(x, t))

    drift.__name__ = f"schedule_drift[{sched.name}, x{f:g}]"
    return drift


# -- geometry shared by both backends ------------------------------------------------------------
@numba.njit(cache=True, error_model="numpy")
def _direction_chains(nx, ny, a, b):
    """Lines of cells ``z, z + e, z + 2e, ...`` of direction ``e = (a, b)`` on an nx x ny grid.

    Returns ``ptr`` (n_chains + 1) and ``idx`` (nx * ny): chain ``c`` holds the flat cell indices
    ``idx[ptr[c]:ptr[c+1]]`` (C order, ``i * ny + j``). Chains are ordered by their first cell.
    """
    ptr = np.empty(nx * ny + 1, dtype=np.int64)
    idx = np.empty(nx * ny, dtype=np.int64)
    nc = 0
    pos = 0
    for i in range(nx):
        for j in range(ny):
            pi = i - a
            pj = j - b
            if 0 <= pi < nx and 0 <= pj < ny:
                continue
            ptr[nc] = pos
            nc += 1
            ii = i
            jj = j
            while 0 <= ii < nx and 0 <= jj < ny:
                idx[pos] = ii * ny + jj
                pos += 1
                ii += a
                jj += b
    ptr[nc] = pos
    return ptr[: nc + 1].copy(), idx


class _Geometry:
    """Faces and lines of the axis sweeps (shared by both backends; no numerics here).

    The faces of axis ``k`` are ordered like the lines of :func:`_direction_chains` with the unit
    vector of axis ``k``: face ``f`` of line ``c`` at position ``q`` (between its cells ``q`` and
    ``q + 1``) has index ``ptr[c] - c + q``.
    """

    def __init__(self, grid: FVGrid):
        self.grid = grid
        self.ndim = grid.ndim
        self.shape = grid.shape
        nx = self.shape[0]
        ny = self.shape[1] if self.ndim == 2 else 1
        self.nx, self.ny = nx, ny
        self.vol = np.ascontiguousarray(grid.volumes.ravel())
        cen, edg, wid = grid.centres, grid.edges, grid.widths
        self.axes = []
        for k in range(self.ndim):
            e = (1, 0) if k == 0 else (0, 1)
            ptr, idx = _direction_chains(nx, ny, *e)
            c, ed = cen[k], edg[k]
            h = np.diff(c)
            theta = (ed[1:-1] - c[:-1]) / h
            if self.ndim == 1:
                pts = ed[1:-1][:, None].copy()
                area = np.ones(nx - 1)
                hf, th = h, theta
            elif k == 0:  # lines j, faces i: point (edge_x[i+1], centre_y[j])
                X, Y = np.meshgrid(ed[1:-1], cen[1], indexing="xy")  # (ny, nx-1)
                pts = np.stack([X.ravel(), Y.ravel()], axis=1)
                area = np.repeat(wid[1], nx - 1)
                hf, th = np.tile(h, ny), np.tile(theta, ny)
            else:  # lines i, faces j: point (centre_x[i], edge_y[j+1])
                X, Y = np.meshgrid(cen[0], ed[1:-1], indexing="ij")  # (nx, ny-1)
                pts = np.stack([X.ravel(), Y.ravel()], axis=1)
                area = np.repeat(wid[0], ny - 1)
                hf, th = np.tile(h, nx), np.tile(theta, nx)
            self.axes.append(
                {
                    "e": e,
                    "ptr": ptr,
                    "idx": idx,
                    "points": pts,
                    "h": np.ascontiguousarray(hf),
                    "theta": np.ascontiguousarray(th),
                    "area": np.ascontiguousarray(area),
                }
            )
        self.face_points = np.concatenate([ax["points"] for ax in self.axes], axis=0)
        self.face_split = np.cumsum([ax["points"].shape[0] for ax in self.axes])[:-1]
        self.cell_points = grid.points()
        self.uniform = all(grid.is_uniform(k) for k in range(self.ndim))
        self.spacing = tuple(float(w.mean()) for w in wid)


# -- numba kernels --------------------------------------------------------------------------------
_W_MAX = 700.0  # largest |w| for which the Chang-Cooper weights are formed explicitly


@numba.njit(cache=True, error_model="numpy", inline="always")
def _bernoulli(w):
    """``B(w) = w / (exp(w) - 1)``, ``B(0) = 1``."""
    if w == 0.0:
        return 1.0
    return w / np.expm1(w)


@numba.njit(cache=True, error_model="numpy")
def _axis_coeffs_line(c, a, q, ptr, idx, h, theta, area, cpl, cml, cph, cmh):
    """Face coefficients of one line of an axis sweep: flux ``F = c+ p_l - c- p_r``."""
    s0 = ptr[c]
    m = ptr[c + 1] - s0
    f0 = s0 - c
    for k in range(m - 1):
        f = f0 + k
        ql = q[idx[s0 + k]]
        qr = q[idx[s0 + k + 1]]
        hf = h[f]
        th = theta[f]
        ar = area[f]
        af = a[f]
        # central: J = af ((1 - th) p_l + th p_r) - (qr p_r - ql p_l) / (2 h)
        cph[f] = ar * (af * (1.0 - th) + 0.5 * ql / hf)
        cmh[f] = ar * (0.5 * qr / hf - af * th)
        # Chang-Cooper / Scharfetter-Gummel: J = (d/h) [B(-w) p_l - B(w) p_r]
        drift = af - 0.5 * (qr - ql) / hf
        d = 0.25 * (ql + qr)
        # |w| > 700: the exponential fitting equals upwinding to within exp(-700); computing w
        # there would overflow (d can be denormal where the noise has all but vanished).
        if d > 0.0 and abs(drift * hf) < _W_MAX * d:
            w = drift * hf / d
            cpl[f] = ar * (d / hf) * _bernoulli(-w)
            cml[f] = ar * (d / hf) * _bernoulli(w)
        else:
            cpl[f] = ar * max(drift, 0.0)
            cml[f] = ar * max(-drift, 0.0)


@numba.njit(cache=True, error_model="numpy")
def _axis_coeffs_serial(a, q, ptr, idx, h, theta, area, cpl, cml, cph, cmh):
    for c in range(ptr.shape[0] - 1):
        _axis_coeffs_line(c, a, q, ptr, idx, h, theta, area, cpl, cml, cph, cmh)


@numba.njit(parallel=True, cache=True, error_model="numpy")
def _axis_coeffs_parallel(a, q, ptr, idx, h, theta, area, cpl, cml, cph, cmh):
    for c in numba.prange(ptr.shape[0] - 1):
        _axis_coeffs_line(c, a, q, ptr, idx, h, theta, area, cpl, cml, cph, cmh)


@numba.njit(cache=True, error_model="numpy")
def _cross_coeffs_numba(rho, vol, ptr, idx, cp, cm):
    """Coefficients of a lattice-direction sweep: ``F = -1/2 (V rho p)_r + 1/2 (V rho p)_l``."""
    n_chains = ptr.shape[0] - 1
    for c in range(n_chains):
        s0 = ptr[c]
        m = ptr[c + 1] - s0
        f0 = s0 - c
        for k in range(m - 1):
            lc = idx[s0 + k]
            rc = idx[s0 + k + 1]
            cp[f0 + k] = 0.5 * vol[lc] * rho[lc]
            cm[f0 + k] = 0.5 * vol[rc] * rho[rc]


@numba.njit(cache=True, error_model="numpy", inline="always")
def _tri_factor(vm, cp, cm, s0, f0, m, scale, fac, piv):
    """LU of ``V - scale L`` on one line; False if a pivot is below ``_PIVOT_FLOOR * V``."""
    for k in range(m):
        diag = vm[s0 + k]
        if k < m - 1:
            diag += scale * cp[f0 + k]
        if k > 0:
            diag += scale * cm[f0 + k - 1]
            # sub-diagonal -scale cp[k-1/2] times the previous c' = sup/den
            diag -= (-scale * cp[f0 + k - 1]) * fac[s0 + k - 1]
        if not diag >= _PIVOT_FLOOR * vm[s0 + k]:
            return False
        piv[s0 + k] = diag
        fac[s0 + k] = (-scale * cm[f0 + k]) / diag if k < m - 1 else 0.0
    return True


@numba.njit(cache=True, error_model="numpy", inline="always")
def _tri_solve(cp, s0, f0, m, scale, fac, piv, rhs, out):
    """Solve with the factors of :func:`_tri_factor` (Thomas forward/back substitution)."""
    for k in range(m):
        r = rhs[s0 + k]
        if k > 0:
            r += scale * cp[f0 + k - 1] * out[s0 + k - 1]
        out[s0 + k] = r / piv[s0 + k]
    for k in range(m - 2, -1, -1):
        out[s0 + k] -= fac[s0 + k] * out[s0 + k + 1]


@numba.njit(cache=True, error_model="numpy")
def _sweep_line(c, p, vol, ptr, idx, cpl, cml, cph, cmh, ds, high_order, work, limited, fallback):
    """One line of a sweep: low-order BE, high-order TR-BDF2, FCT positivity limiter.

    ``work`` (10, n) is scratch space; line ``c`` only touches its own positions.
    """
    vm, pn, pl, ph, ps, rhs, fac, piv, g, rr = (
        work[0],
        work[1],
        work[2],
        work[3],
        work[4],
        work[5],
        work[6],
        work[7],
        work[8],
        work[9],
    )
    s0 = ptr[c]
    m = ptr[c + 1] - s0
    f0 = s0 - c
    if m < 2:
        return
    for k in range(m):
        vm[s0 + k] = vol[idx[s0 + k]]
        pn[s0 + k] = p[idx[s0 + k]]
        rhs[s0 + k] = vm[s0 + k] * pn[s0 + k]
    # low order: (V - ds L_low) p_low = V p_n, an M-matrix (pivots >= V)
    _tri_factor(vm, cpl, cml, s0, f0, m, ds, fac, piv)
    _tri_solve(cpl, s0, f0, m, ds, fac, piv, rhs, pl)
    use_high = high_order
    sc = _KAPPA * ds
    if use_high:
        use_high = _tri_factor(vm, cph, cmh, s0, f0, m, sc, fac, piv)
        if not use_high:
            fallback[c] = 1
    if not use_high:
        for k in range(m):
            p[idx[s0 + k]] = pl[s0 + k]
        return
    # TR stage: (V - kappa ds L) p* = (V + kappa ds L) p_n
    for k in range(m):
        lp = 0.0
        if k < m - 1:
            lp += -cph[f0 + k] * pn[s0 + k] + cmh[f0 + k] * pn[s0 + k + 1]
        if k > 0:
            lp += cph[f0 + k - 1] * pn[s0 + k - 1] - cmh[f0 + k - 1] * pn[s0 + k]
        rhs[s0 + k] = vm[s0 + k] * pn[s0 + k] + sc * lp
    _tri_solve(cph, s0, f0, m, sc, fac, piv, rhs, ps)
    # BDF2 stage: (V - kappa ds L) p_high = V (c1 p* - c2 p_n)
    for k in range(m):
        rhs[s0 + k] = vm[s0 + k] * (_C1 * ps[s0 + k] - _C2 * pn[s0 + k])
    _tri_solve(cph, s0, f0, m, sc, fac, piv, rhs, ph)
    finite = True
    for k in range(m):
        if not np.isfinite(ph[s0 + k]):
            finite = False
    if not finite:
        fallback[c] = 1
        for k in range(m):
            p[idx[s0 + k]] = pl[s0 + k]
        return
    # FCT: g[k] moves mass from cell k to k+1 and turns p_low into p_high
    acc = 0.0
    for k in range(m - 1):
        acc += vm[s0 + k] * (pl[s0 + k] - ph[s0 + k])
        g[f0 + k] = acc
    for k in range(m):
        out = 0.0
        if k < m - 1:
            out += max(g[f0 + k], 0.0)
        if k > 0:
            out += max(-g[f0 + k - 1], 0.0)
        avail = (vm[s0 + k] * pl[s0 + k]) * (1.0 - _FCT_MARGIN)
        rr[s0 + k] = avail / out if out > avail else 1.0
    lim = 0.0
    for k in range(m - 1):
        gk = g[f0 + k]
        gl = gk * (rr[s0 + k] if gk > 0.0 else rr[s0 + k + 1])
        lim += abs(gk - gl)
        g[f0 + k] = gl
    limited[c] = lim
    for k in range(m):
        removed = 0.0
        incoming = 0.0
        if k < m - 1:
            removed += max(g[f0 + k], 0.0)
            incoming += max(-g[f0 + k], 0.0)
        if k > 0:
            removed += max(-g[f0 + k - 1], 0.0)
            incoming += max(g[f0 + k - 1], 0.0)
        v = vm[s0 + k]
        p[idx[s0 + k]] = (v * pl[s0 + k] - removed) / v + incoming / v


@numba.njit(cache=True, error_model="numpy")
def _sweep_serial(p, vol, ptr, idx, cpl, cml, cph, cmh, ds, high_order):
    """A sweep over all lines (``p`` flat, updated in place); returns (limited mass, fallbacks)."""
    n_chains = ptr.shape[0] - 1
    work = np.empty((10, idx.shape[0]))
    limited = np.zeros(n_chains)
    fallback = np.zeros(n_chains, dtype=np.int64)
    for c in range(n_chains):
        _sweep_line(
            c, p, vol, ptr, idx, cpl, cml, cph, cmh, ds, high_order, work, limited, fallback
        )
    return limited.sum(), fallback.sum()


@numba.njit(parallel=True, cache=True, error_model="numpy")
def _sweep_parallel(p, vol, ptr, idx, cpl, cml, cph, cmh, ds, high_order):
    """:func:`_sweep_serial` with the lines in parallel (same result for any thread count)."""
    n_chains = ptr.shape[0] - 1
    work = np.empty((10, idx.shape[0]))
    limited = np.zeros(n_chains)
    fallback = np.zeros(n_chains, dtype=np.int64)
    for c in numba.prange(n_chains):
        _sweep_line(
            c, p, vol, ptr, idx, cpl, cml, cph, cmh, ds, high_order, work, limited, fallback
        )
    return limited.sum(), fallback.sum()


@numba.njit(cache=True, error_model="numpy", inline="always")
def _pair_product(ax, ay, bx, by, dxx, dxy, dyy):
    """``a . D b`` for integer vectors ``a``, ``b`` and the symmetric 2x2 ``D``."""
    return ax * (dxx * bx + dxy * by) + ay * (dxy * bx + dyy * by)


@numba.njit(cache=True, error_model="numpy", inline="always")
def _selling_dropped(v0x, v0y, v1x, v1y, v2x, v2y, dxx, dxy, dyy, hx, hy):
    """Physical trace of the positive pair products that a superbase cannot represent."""
    out = 0.0
    s = _pair_product(v0x, v0y, v1x, v1y, dxx, dxy, dyy)
    out += max(s, 0.0) * (hx * hx * v2y * v2y + hy * hy * v2x * v2x)
    s = _pair_product(v0x, v0y, v2x, v2y, dxx, dxy, dyy)
    out += max(s, 0.0) * (hx * hx * v1y * v1y + hy * hy * v1x * v1x)
    s = _pair_product(v1x, v1y, v2x, v2y, dxx, dxy, dyy)
    out += max(s, 0.0) * (hx * hx * v0y * v0y + hy * hy * v0x * v0x)
    return out


@numba.njit(cache=True, error_model="numpy", inline="always")
def _selling_slot(i, slot, s, cx, cy, hx, hy, qx, qy, ex, ey, rho):
    """Store the weight ``-s`` of direction ``perp(c)``; return the dropped trace (if ``s > 0``)."""
    r = -s
    e0 = -cy
    e1 = cx
    if e0 < 0 or (e0 == 0 and e1 < 0):
        e0 = -e0
        e1 = -e1
    ex[i, slot] = e0
    ey[i, slot] = e1
    rho[i, slot] = 0.0
    if r < 0.0:
        return -r * (hx * hx * e0 * e0 + hy * hy * e1 * e1)
    if e0 == 1 and e1 == 0:
        qx[i] += r * hx * hx
    elif e0 == 0 and e1 == 1:
        qy[i] += r * hy * hy
    else:
        rho[i, slot] = r
    return 0.0


@numba.njit(cache=True, error_model="numpy")
def _selling_cell(i, qxx, qxy, qyy, hx, hy, kmax, qx, qy, ex, ey, rho, dropped):
    """Selling decomposition of ``H^-1 Q H^-1`` per cell (see the module docstring).

    Superbase ``(v0, v1, v2)``, ``v0 + v1 + v2 = 0``; while a pair has ``vi . D vj > tol`` (pairs
    tried in the order (0,1), (0,2), (1,2)) it is replaced by ``(-vi, vj, vi - vj)`` unless the new
    vector exceeds ``kmax``. Then ``D = -sum_{i<j} (vi . D vj) e_ij e_ij^T``, ``e_ij = perp(v_k)``.
    If the stencil limit stops the iteration before every product is <= tol, the superbase met on
    the way that drops the smallest trace of positive products is used. Writes the axis parts as
    physical diagonal noise ``qx``, ``qy``, the other directions (canonical sign: ``ex > 0`` or
    ``ex == 0 < ey``) and weights to ``ex, ey, rho`` (N, 3) (weight 0 in unused slots), and the
    dropped relative trace to ``dropped``.
    """
    dxx = qxx[i] / (hx * hx)
    dxy = qxy[i] / (hx * hy)
    dyy = qyy[i] / (hy * hy)
    tol = _SELLING_TOL * (dxx + dyy)
    v0x, v0y, v1x, v1y, v2x, v2y = 1, 0, 0, 1, -1, -1
    best = _selling_dropped(v0x, v0y, v1x, v1y, v2x, v2y, dxx, dxy, dyy, hx, hy)
    b0x, b0y, b1x, b1y, b2x, b2y = v0x, v0y, v1x, v1y, v2x, v2y
    converged = False
    for _ in range(_SELLING_MAXIT):
        s01 = _pair_product(v0x, v0y, v1x, v1y, dxx, dxy, dyy)
        s02 = _pair_product(v0x, v0y, v2x, v2y, dxx, dxy, dyy)
        s12 = _pair_product(v1x, v1y, v2x, v2y, dxx, dxy, dyy)
        if s01 <= tol and s02 <= tol and s12 <= tol:
            converged = True
            break
        if s01 > tol and max(abs(v0x - v1x), abs(v0y - v1y)) <= kmax:
            v2x, v2y, v0x, v0y = v0x - v1x, v0y - v1y, -v0x, -v0y
        elif s02 > tol and max(abs(v0x - v2x), abs(v0y - v2y)) <= kmax:
            v1x, v1y, v0x, v0y = v0x - v2x, v0y - v2y, -v0x, -v0y
        elif s12 > tol and max(abs(v1x - v2x), abs(v1y - v2y)) <= kmax:
            v0x, v0y, v1x, v1y = v1x - v2x, v1y - v2y, -v1x, -v1y
        else:
            break  # every violating update would exceed the stencil limit
        d = _selling_dropped(v0x, v0y, v1x, v1y, v2x, v2y, dxx, dxy, dyy, hx, hy)
        if d < best:
            best = d
            b0x, b0y, b1x, b1y, b2x, b2y = v0x, v0y, v1x, v1y, v2x, v2y
    if not converged:  # stencil limit: keep the superbase that dropped the least
        v0x, v0y, v1x, v1y, v2x, v2y = b0x, b0y, b1x, b1y, b2x, b2y
    qx[i] = 0.0
    qy[i] = 0.0
    drop = _selling_slot(
        i,
        0,
        _pair_product(v0x, v0y, v1x, v1y, dxx, dxy, dyy),
        v2x,
        v2y,
        hx,
        hy,
        qx,
        qy,
        ex,
        ey,
        rho,
    )
    drop += _selling_slot(
        i,
        1,
        _pair_product(v0x, v0y, v2x, v2y, dxx, dxy, dyy),
        v1x,
        v1y,
        hx,
        hy,
        qx,
        qy,
        ex,
        ey,
        rho,
    )
    drop += _selling_slot(
        i,
        2,
        _pair_product(v1x, v1y, v2x, v2y, dxx, dxy, dyy),
        v0x,
        v0y,
        hx,
        hy,
        qx,
        qy,
        ex,
        ey,
        rho,
    )
    tr = qxx[i] + qyy[i]
    dropped[i] = drop / tr if tr > 0.0 else 0.0


@numba.njit(cache=True, error_model="numpy")
def _selling_serial(qxx, qxy, qyy, hx, hy, kmax, qx, qy, ex, ey, rho, dropped):
    for i in range(qxx.shape[0]):
        _selling_cell(i, qxx, qxy, qyy, hx, hy, kmax, qx, qy, ex, ey, rho, dropped)


@numba.njit(parallel=True, cache=True, error_model="numpy")
def _selling_parallel(qxx, qxy, qyy, hx, hy, kmax, qx, qy, ex, ey, rho, dropped):
    for i in numba.prange(qxx.shape[0]):
        _selling_cell(i, qxx, qxy, qyy, hx, hy, kmax, qx, qy, ex, ey, rho, dropped)


class _NumbaBackend:
    name = "numba"

    def __init__(self, geom: _Geometry, parallel: bool | None = None):
        self.geom = geom
        self._chains: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        if parallel is None:
            parallel = geom.vol.size >= _PARALLEL_MIN_CELLS and numba.get_num_threads() > 1
        self.parallel = bool(parallel)

    def axis_op(self, k: int, a: np.ndarray, q: np.ndarray) -> tuple:
        ax = self.geom.axes[k]
        f = a.shape[0]
        cpl, cml, cph, cmh = (np.empty(f) for _ in range(4))
        kernel = _axis_coeffs_parallel if self.parallel else _axis_coeffs_serial
        kernel(a, q, ax["ptr"], ax["idx"], ax["h"], ax["theta"], ax["area"], cpl, cml, cph, cmh)
        return (ax["ptr"], ax["idx"], cpl, cml, cph, cmh)

    def cross_op(self, e: tuple[int, int], rho: np.ndarray) -> tuple:
        if e not in self._chains:
            self._chains[e] = _direction_chains(self.geom.nx, self.geom.ny, e[0], e[1])
        ptr, idx = self._chains[e]
        f = idx.shape[0] - (ptr.shape[0] - 1)
        cp, cm = np.empty(f), np.empty(f)
        _cross_coeffs_numba(rho, self.geom.vol, ptr, idx, cp, cm)
        return (ptr, idx, cp, cm, cp, cm)

    def selling(self, qxx, qxy, qyy, hx, hy, kmax):
        n = qxx.shape[0]
        qx, qy, dropped = np.empty(n), np.empty(n), np.empty(n)
        ex, ey = np.empty((n, 3), dtype=np.int64), np.empty((n, 3), dtype=np.int64)
        rho = np.empty((n, 3))
        kernel = _selling_parallel if self.parallel else _selling_serial
        kernel(qxx, qxy, qyy, hx, hy, kmax, qx, qy, ex, ey, rho, dropped)
        return qx, qy, ex, ey, rho, dropped

    def sweep(self, p: np.ndarray, op: tuple, ds: float, high: bool) -> tuple[float, int]:
        ptr, idx, cpl, cml, cph, cmh = op
        kernel = _sweep_parallel if self.parallel and ptr.shape[0] > 2 else _sweep_serial
        lim, fb = kernel(p, self.geom.vol, ptr, idx, cpl, cml, cph, cmh, ds, high)
        return float(lim), int(fb)


# -- plain numpy / scipy reference ----------------------------------------------------------------
def _bernoulli_np(w: np.ndarray) -> np.ndarray:
    out = np.ones_like(w)
    nz = w != 0.0
    with np.errstate(over="ignore"):
        out[nz] = w[nz] / np.expm1(w[nz])
    return out


def _chains_python(nx: int, ny: int, e: tuple[int, int]) -> list[np.ndarray]:
    """Lines of direction ``e`` as a list of flat-index arrays (ordered by first cell)."""
    a, b = e
    chains = []
    for i in range(nx):
        for j in range(ny):
            if 0 <= i - a < nx and 0 <= j - b < ny:
                continue
            cells = []
            ii, jj = i, j
            while 0 <= ii < nx and 0 <= jj < ny:
                cells.append(ii * ny + jj)
                ii, jj = ii + a, jj + b
            chains.append(np.array(cells, dtype=np.int64))
    return chains


class _NumpyBackend:
    """Reference: each sweep is one scipy.sparse system on the whole grid."""

    name = "numpy"

    def __init__(self, geom: _Geometry):
        self.geom = geom
        self._chains: dict[tuple[int, int], list[np.ndarray]] = {}

    def _lines(self, e: tuple[int, int]) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
        if e not in self._chains:
            self._chains[e] = _chains_python(self.geom.nx, self.geom.ny, e)
        chains = self._chains[e]
        left = np.concatenate([ch[:-1] for ch in chains])
        right = np.concatenate([ch[1:] for ch in chains])
        return chains, left, right

    def axis_op(self, k: int, a: np.ndarray, q: np.ndarray) -> tuple:
        ax = self.geom.axes[k]
        chains, left, right = self._lines(ax["e"])
        h, th, ar = ax["h"], ax["theta"], ax["area"]
        ql, qr = q[left], q[right]
        cph = ar * (a * (1.0 - th) + 0.5 * ql / h)
        cmh = ar * (0.5 * qr / h - a * th)
        drift = a - 0.5 * (qr - ql) / h
        d = 0.25 * (ql + qr)
        pos = (d > 0.0) & (np.abs(drift * h) < _W_MAX * d)
        w = np.where(pos, drift * h / np.where(pos, d, 1.0), 0.0)
        cpl = np.where(pos, ar * (d / h) * _bernoulli_np(-w), ar * np.maximum(drift, 0.0))
        cml = np.where(pos, ar * (d / h) * _bernoulli_np(w), ar * np.maximum(-drift, 0.0))
        return (chains, left, right, cpl, cml, cph, cmh)

    def cross_op(self, e: tuple[int, int], rho: np.ndarray) -> tuple:
        chains, left, right = self._lines(e)
        vol = self.geom.vol
        cp = 0.5 * vol[left] * rho[left]
        cm = 0.5 * vol[right] * rho[right]
        return (chains, left, right, cp, cm, cp, cm)

    def selling(self, qxx, qxy, qyy, hx, hy, kmax):
        n = qxx.shape[0]
        dxx, dxy, dyy = qxx / (hx * hx), qxy / (hx * hy), qyy / (hy * hy)
        tol = _SELLING_TOL * (dxx + dyy)
        v = np.zeros((3, n, 2), dtype=np.int64)
        v[0, :, 0] = 1
        v[1, :, 1] = 1
        v[2] = -1
        pairs = ((0, 1, 2), (0, 2, 1), (1, 2, 0))

        def inner(x, y):
            return x[:, 0] * (dxx * y[:, 0] + dxy * y[:, 1]) + x[:, 1] * (
                dxy * y[:, 0] + dyy * y[:, 1]
            )

        def dropped_trace(v):
            out = np.zeros(n)
            for a, b, c in pairs:
                s = np.maximum(inner(v[a], v[b]), 0.0)
                out += s * (hx * hx * v[c][:, 1] * v[c][:, 1] + hy * hy * v[c][:, 0] * v[c][:, 0])
            return out

        best, best_v = dropped_trace(v), v.copy()
        active = np.ones(n, dtype=bool)  # still iterating
        converged = np.zeros(n, dtype=bool)
        for _ in range(_SELLING_MAXIT):
            conv = active & np.all([inner(v[a], v[b]) <= tol for a, b, _c in pairs], axis=0)
            converged |= conv
            active &= ~conv
            done = np.zeros(n, dtype=bool)
            for a, b, c in pairs:
                new = v[a] - v[b]
                ok = active & ~done & (inner(v[a], v[b]) > tol) & (np.abs(new).max(axis=1) <= kmax)
                v[c][ok] = new[ok]
                v[a][ok] = -v[a][ok]
                done |= ok
            active &= done  # blocked cells stop
            d = dropped_trace(v)
            better = active & (d < best)
            best[better] = d[better]
            best_v[:, better] = v[:, better]
            if not active.any():
                break
        v = np.where(converged[None, :, None], v, best_v)
        qx, qy, drop = np.zeros(n), np.zeros(n), np.zeros(n)
        ex, ey, rho = (
            np.zeros((n, 3), dtype=np.int64),
            np.zeros((n, 3), dtype=np.int64),
            np.zeros((n, 3)),
        )
        for slot, (a, b, c) in enumerate(pairs):
            r = -inner(v[a], v[b])
            e0, e1 = -v[c][:, 1], v[c][:, 0]
            flip = (e0 < 0) | ((e0 == 0) & (e1 < 0))
            e0, e1 = np.where(flip, -e0, e0), np.where(flip, -e1, e1)
            ex[:, slot], ey[:, slot] = e0, e1
            neg = r < 0.0
            drop += np.where(neg, -r * (hx * hx * e0 * e0 + hy * hy * e1 * e1), 0.0)
            isx = ~neg & (e0 == 1) & (e1 == 0)
            isy = ~neg & (e0 == 0) & (e1 == 1)
            qx += np.where(isx, r * hx * hx, 0.0)
            qy += np.where(isy, r * hy * hy, 0.0)
            rho[:, slot] = np.where(~neg & ~isx & ~isy, r, 0.0)
        tr = qxx + qyy
        dropped = np.divide(drop, tr, out=np.zeros(n), where=tr > 0)
        return qx, qy, ex, ey, rho, dropped

    def sweep(self, p: np.ndarray, op: tuple, ds: float, high: bool) -> tuple[float, int]:
        import scipy.sparse as sp
        import scipy.sparse.linalg as spla

        chains, left, right, cpl, cml, cph, cmh = op
        n = p.size
        vol = self.geom.vol

        def lmat(cp, cm):
            rows = np.concatenate([left, right, left, right])
            cols = np.concatenate([left, left, right, right])
            vals = np.concatenate([-cp, cp, cm, -cm])
            return sp.csc_matrix((vals, (rows, cols)), shape=(n, n))

        V = sp.diags(vol, format="csc")
        pl = spla.spsolve((V - ds * lmat(cpl, cml)).tocsc(), vol * p)
        if not high:
            p[:] = pl
            return 0.0, 0
        LH = lmat(cph, cmh)
        lu = spla.splu((V - _KAPPA * ds * LH).tocsc())
        ps = lu.solve(vol * p + _KAPPA * ds * (LH @ p))
        ph = lu.solve(vol * (_C1 * ps - _C2 * p))
        limited, fallback = 0.0, 0
        out_p = p.copy()
        for ch in chains:
            if ch.size < 2:
                continue
            v, pL, pH = vol[ch], pl[ch], ph[ch]
            if not np.all(np.isfinite(pH)):
                out_p[ch] = pL
                fallback += 1
                continue
            g = np.cumsum(v * (pL - pH))[:-1]
            out = np.zeros(ch.size)
            out[:-1] += np.maximum(g, 0.0)
            out[1:] += np.maximum(-g, 0.0)
            vp = v * pL
            avail = vp * (1.0 - _FCT_MARGIN)
            R = np.where(out > avail, avail / np.where(out > 0, out, 1.0), 1.0)
            G = g * np.where(g > 0.0, R[:-1], R[1:])
            limited += float(np.sum(np.abs(g - G)))
            removed = np.zeros(ch.size)
            incoming = np.zeros(ch.size)
            removed[:-1] += np.maximum(G, 0.0)
            incoming[:-1] += np.maximum(-G, 0.0)
            removed[1:] += np.maximum(-G, 0.0)
            incoming[1:] += np.maximum(G, 0.0)
            out_p[ch] = (vp - removed) / v + incoming / v
        p[:] = out_p
        return limited, fallback


# -- result -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FokkerPlanckResult:
    """Density of the reverse-time process on a grid, with diagnostics.

    Attributes
    ----------
    density : ndarray, shape ``grid.shape``
        Cell averages of ``p(x)`` at ``t = eps``.
    grid : FVGrid
        The grid (``grid.centres``, ``grid.edges``, ``grid.widths``, ``grid.volumes``).
    times : ndarray, shape (K + 1,)
        Diffusion times of the step grid, from ``T`` down to ``eps`` (uniform, plus the
        requested ``save_times``).
    mass : ndarray, shape (K + 1,)
        Total mass ``sum(p * volumes)`` at each time of ``times``.
    boundary_mass : ndarray, shape (K + 1,)
        Fraction of the mass in the boundary layer at each time (see the module docstring).
    limited_mass : ndarray, shape (K,)
        Mass moved by the FCT positivity limiter in each step, relative to the total mass
        (0 for ``scheme="chang-cooper-be"``).
    save_times : ndarray, shape (S,)
        Requested intermediate times, sorted from ``T`` towards ``eps``.
    snapshots : ndarray, shape ``(S,) + grid.shape``
        The density at ``save_times``.
    n_fallback : int
        Line sweeps whose high-order solve was rejected (step too long for the compression rate)
        and replaced by the low-order solution; 0 in a well-resolved run.
    noise_dropped : float
        Largest relative trace of the noise the lattice decomposition could not represent
        (2-D full ``Q`` only; 0 otherwise).
    config : dict
        JSON-serializable configuration of the run.
    """

    density: np.ndarray
    grid: FVGrid
    times: np.ndarray
    mass: np.ndarray
    boundary_mass: np.ndarray
    limited_mass: np.ndarray
    save_times: np.ndarray
    snapshots: np.ndarray
    n_fallback: int = 0
    noise_dropped: float = 0.0
    config: dict = field(default_factory=dict)

    @property
    def centres(self) -> tuple[np.ndarray, ...]:
        return self.grid.centres

    @property
    def widths(self) -> tuple[np.ndarray, ...]:
        return self.grid.widths

    @property
    def mass_error(self) -> float:
        """``max |mass(t) - mass(T)| / mass(T)`` over the run."""
        return float(np.max(np.abs(self.mass - self.mass[0])) / self.mass[0])

    def save(self, path: str | Path) -> Path:
        """Write to ``path`` (``.npz`` appended): arrays plus the configuration as JSON.

        The format is the one of :mod:`gtv.numerics.io` (readable with ``allow_pickle=False``).
        """
        arrays = {
            "density": self.density,
            "times": self.times,
            "mass": self.mass,
            "boundary_mass": self.boundary_mass,
            "limited_mass": self.limited_mass,
            "save_times": self.save_times,
            "snapshots": self.snapshots,
        }
        for k, e in enumerate(self.grid.edges):
            arrays[f"edges_{k}"] = np.asarray(e)
        config = dict(
            self.config, n_fallback=int(self.n_fallback), noise_dropped=float(self.noise_dropped)
        )
        return save_result(path, arrays, config)

    @classmethod
    def load(cls, path: str | Path) -> FokkerPlanckResult:
        """Read a file written by :meth:`save` (never unpickles)."""
        arrays, config = load_result(path)
        edges = [arrays.pop(f"edges_{k}") for k in range(2) if f"edges_{k}" in arrays]
        grid = grid_from_edges(*edges)
        n_fallback = int(config.pop("n_fallback", 0))
        noise_dropped = float(config.pop("noise_dropped", 0.0))
        return cls(
            grid=grid, n_fallback=n_fallback, noise_dropped=noise_dropped, config=config, **arrays
        )


def load_fokker_planck(path: str | Path) -> FokkerPlanckResult:
    """Alias of :meth:`FokkerPlanckResult.load`."""
    return FokkerPlanckResult.load(path)


# -- input handling -----------------------------------------------------------------------------
def _check_tolerance(value: object, argname: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = np.nan
    if not v >= 0:
        raise ValueError(f"{argname} must be a number >= 0, got {value!r}")
    return v


def _check_density(p_T: object, grid: FVGrid) -> np.ndarray:
    try:
        p = np.array(p_T, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError("p_T must be a numeric array of cell averages") from exc
    if p.shape != grid.shape:
        raise ValueError(f"p_T must have the grid's shape {grid.shape}, got {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError("p_T must contain only finite values")
    if np.any(p < 0):
        raise ValueError(f"p_T must be non-negative, got a minimum of {p.min():g}")
    if grid.mass(p) <= 0:
        raise ValueError("p_T must have positive total mass")
    return p


def _time_grid(T: float, eps: float, n_steps: int, save_times: object) -> tuple[np.ndarray, ...]:
    ts = np.linspace(T, eps, n_steps + 1)
    if save_times is None:
        return ts, np.empty(0)
    try:
        st = np.array(save_times, dtype=np.float64).ravel()
    except (TypeError, ValueError) as exc:
        raise ValueError("save_times must be an array of times in [eps, T]") from exc
    if not np.all(np.isfinite(st)) or np.any(st < eps) or np.any(st > T):
        raise ValueError(f"save_times must lie in [eps, T] = [{eps:g}, {T:g}], got {st.tolist()}")
    st = np.unique(st)[::-1]
    snap = 1e-9 * (T - eps)
    extra = [s for s in st if np.min(np.abs(ts - s)) > snap]
    ts = np.unique(np.concatenate([ts, extra]))[::-1]
    st = np.array([ts[np.argmin(np.abs(ts - s))] for s in st])
    return ts, st


def _eval_drift(drift: Callable, points: np.ndarray, t: float, ndim: int) -> np.ndarray:
    try:
        b = np.asarray(drift(points, t), dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"drift(x, t) failed on points of shape {points.shape}: {exc}") from exc
    m = points.shape[0]
    if ndim == 1 and b.shape == (m,):
        b = b[:, None]
    try:
        b = np.broadcast_to(b, (m, ndim))
    except ValueError:
        raise ValueError(
            f"drift must return an array of shape (m, {ndim}) = ({m}, {ndim}), got {b.shape}"
        ) from None
    if not np.all(np.isfinite(b)):
        bad = np.flatnonzero(~np.all(np.isfinite(b), axis=1))[0]
        raise ValueError(
            f"drift returned a non-finite value at t = {t:.17g}, x = {points[bad].tolist()}"
        )
    return b


def _eval_noise(noise, points: np.ndarray, t: float, ndim: int) -> tuple[np.ndarray, ...]:
    """Return (q,) in 1-D or (qxx, qxy, qyy) in 2-D at the cell centres, validated."""
    m = points.shape[0]
    if noise is None:
        q = np.zeros(())
    elif callable(noise):
        try:
            q = np.asarray(noise(points, t), dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"noise(x, t) failed on points of shape {points.shape}: {exc}"
            ) from exc
    else:
        try:
            q = np.asarray(noise, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                "noise must be None, a number, a constant array or a callable noise(x, t)"
            ) from exc
    # constants: (1,), (1, 1) in 1-D; (2,) diagonal or (2, 2) full in 2-D (m >= MIN_CELLS**d)
    if ndim == 1 and q.shape in ((1,), (1, 1)):
        q = q.reshape(())
    elif ndim == 2 and q.shape in ((2,), (2, 2)):
        q = np.broadcast_to(q, (m,) + q.shape)
    if not np.all(np.isfinite(q)):
        raise ValueError(f"noise returned a non-finite value at t = {t:.17g}")
    if ndim == 1:
        if q.ndim == 0 or q.shape in ((m,), (m, 1), (m, 1, 1)):
            q = np.broadcast_to(q.reshape(-1) if q.ndim else q, (m,))
        else:
            raise ValueError(f"noise must return a scalar or shape ({m},) in 1-D, got {q.shape}")
        scale = float(np.max(np.abs(q))) if m else 0.0
        if np.any(q < -_NOISE_TOL * scale) or (scale == 0.0 and np.any(q < 0)):
            raise ValueError(
                f"noise must be non-negative, got Q = {q.min():g} at t = {t:.17g}, "
                f"x = {points[int(np.argmin(q))].tolist()}"
            )
        return (np.ascontiguousarray(np.maximum(q, 0.0)),)
    if q.ndim == 0 or q.shape == (m,):
        qd = np.broadcast_to(q, (m,))
        qxx, qyy, qxy = qd, qd, np.zeros(m)
    elif q.shape == (m, 2):
        qxx, qyy, qxy = q[:, 0], q[:, 1], np.zeros(m)
    elif q.shape == (m, 2, 2):
        qxx, qyy = q[:, 0, 0], q[:, 1, 1]
        scale = max(float(np.max(np.abs(qxx))), float(np.max(np.abs(qyy))))
        asym = np.abs(q[:, 0, 1] - q[:, 1, 0])
        if np.any(asym > _NOISE_TOL * max(scale, 1e-300)):
            raise ValueError(f"noise must return symmetric 2x2 matrices (t = {t:.17g})")
        qxy = 0.5 * (q[:, 0, 1] + q[:, 1, 0])
    else:
        raise ValueError(
            f"noise must return a scalar or shape ({m},), ({m}, 2) or ({m}, 2, 2) in 2-D, "
            f"got {q.shape}"
        )
    scale = max(float(np.max(np.abs(qxx))), float(np.max(np.abs(qyy))), 0.0)
    tol = _NOISE_TOL * scale
    det = qxx * qyy - qxy * qxy
    bad = (qxx < -tol) | (qyy < -tol) | (det < -tol * scale)
    if scale == 0.0:
        bad |= (qxx < 0) | (qyy < 0) | (qxy != 0)
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            "noise must be positive semidefinite, got Q = "
            f"[[{qxx[i]:g}, {qxy[i]:g}], [{qxy[i]:g}, {qyy[i]:g}]] at t = {t:.17g}, "
            f"x = {points[i].tolist()}"
        )
    return (
        np.ascontiguousarray(np.maximum(qxx, 0.0)),
        np.ascontiguousarray(qxy),
        np.ascontiguousarray(np.maximum(qyy, 0.0)),
    )


def _boundary_masks(grid: FVGrid, width: int) -> list[tuple[str, np.ndarray]]:
    sides = []
    names = (("x_low", "x_high"), ("y_low", "y_high"))
    for k, n in enumerate(grid.shape):
        for side, sl in zip(names[k], (slice(0, width), slice(n - width, n)), strict=True):
            mask = np.zeros(grid.shape, dtype=bool)
            index = [slice(None)] * grid.ndim
            index[k] = sl
            mask[tuple(index)] = True
            sides.append((side if grid.ndim == 2 else side[2:], mask.ravel()))
    return sides


def _name(obj: object) -> str:
    if obj is None or not callable(obj):
        return repr(obj)
    return getattr(obj, "__qualname__", getattr(obj, "__name__", type(obj).__name__))


# -- solver -------------------------------------------------------------------------------------
def solve_fokker_planck(
    drift: Callable,
    noise: Callable | float | None,
    p_T: object,
    grid: FVGrid,
    T: float,
    eps: float,
    n_steps: int = 200,
    *,
    save_times: object = None,
    scheme: str = "tr-bdf2-fct",
    boundary_tol: float | None = 1e-6,
    boundary_cells: int = 1,
    max_stencil: int = 8,
    noise_rtol: float = 1e-6,
    backend: str = "numba",
    parallel: bool | None = None,
    progress: bool = False,
) -> FokkerPlanckResult:
    """Evolve a density under the reverse-time process from ``t = T`` down to ``t = eps``.

    Solves ``dp/ds = div(b p) + 1/2 d_i d_j (Q_ij p)`` in ``s = T - t`` (see the module
    docstring for the conventions and the scheme).

    Parameters
    ----------
    drift : callable
        ``drift(x, t)`` -> ``b`` of shape ``(m, d)``: the velocity ``dx/dt`` in the *diffusion*
        time (e.g. ``-beta_t x - D_t s(x, t)``); ``x`` is ``(m, d)``, ``t`` a float.
    noise : callable, float, array_like or None
        ``Q(x, t)`` per unit ``|dt|`` at the cell centres: scalar/``(m,)`` (isotropic),
        ``(m, 2)`` (diagonal, 2-D), ``(m, 2, 2)`` (full, 2-D, uniform grid); or a constant
        (number, ``(2,)``, ``(2, 2)``); ``None`` or 0 for no noise (the PF-ODE).
    p_T : array_like, shape ``grid.shape``
        Cell averages of the density at ``t = T`` (non-negative, positive mass; need not be
        normalized), e.g. :func:`gaussian_cell_averages` ``(grid, 0, sigma_T**2)``.
    grid : FVGrid
        From :func:`uniform_grid` or :func:`grid_from_edges`.
    T, eps : float
        Start and end diffusion times, ``0 < eps < T``.
    n_steps : int, default 200
        Uniform steps from ``T`` to ``eps`` (``save_times`` not on this grid add steps).
    save_times : array_like, optional
        Diffusion times in ``[eps, T]`` at which to store the density.
    scheme : {"tr-bdf2-fct", "chang-cooper-be"}, default "tr-bdf2-fct"
        Second order (positivity-limited) or the linear monotone first-order scheme.
    boundary_tol : float or None, default 1e-6
        Largest allowed fraction of the mass in the boundary layer (``None``: no check).
    boundary_cells : int, default 1
        Width of the boundary layer in cells.
    max_stencil : int, default 8
        Longest lattice direction (``max(|e_x|, |e_y|)``) for a full 2-D ``Q``.
    noise_rtol : float, default 1e-6
        Largest allowed relative trace of the dropped (unrepresentable) part of a full ``Q``.
    backend : {"numba", "numpy"}, default "numba"
        ``"numpy"`` runs the scipy.sparse reference of the same scheme (slow; for tests).
    parallel : bool or None, default None
        Run the numba line sweeps in parallel over lines (the result does not depend on it or on
        the thread count). ``None``: only for grids of at least 250 000 cells; on an idle
        machine ``True`` pays from ~200 x 200 cells (1.7x on 2 cores), on a busy one it can be
        much slower than serial.
    progress : bool, default False
        Show a progress bar over the steps.

    Returns
    -------
    FokkerPlanckResult

    Raises
    ------
    ValueError
        ``drift``: not callable, wrong shape, non-finite values. ``noise``: wrong shape,
        non-finite, negative / not positive semidefinite, or not representable within
        ``noise_rtol``. ``grid``: not an FVGrid, or the boundary-layer mass exceeds
        ``boundary_tol`` (message gives the amount, time and side), or a full ``Q`` on a
        non-uniform grid. ``p_T``: wrong shape, non-finite, negative, zero mass. ``T``,
        ``eps``, ``n_steps`` (< 1), ``save_times``, ``scheme``, ``boundary_tol``,
        ``boundary_cells``, ``max_stencil``, ``noise_rtol``, ``backend``: out of range.
    """
    if not isinstance(grid, FVGrid):
        raise ValueError(
            "grid must be an FVGrid (see uniform_grid / grid_from_edges), got "
            f"{type(grid).__name__}"
        )
    if not callable(drift):
        raise ValueError(f"drift must be a callable drift(x, t), got {type(drift).__name__}")
    try:
        T = float(T)
    except (TypeError, ValueError):
        raise ValueError(f"T must be a finite positive number, got {T!r}") from None
    if not (np.isfinite(T) and T > 0):
        raise ValueError(f"T must be a finite positive number, got {T!r}")
    eps = check_eps(eps, T)
    n_steps = check_count(n_steps, "n_steps", 1)
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    if backend not in ("numba", "numpy"):
        raise ValueError(f"backend must be 'numba' or 'numpy', got {backend!r}")
    boundary_tol = _check_tolerance(
        np.inf if boundary_tol is None else boundary_tol, "boundary_tol"
    )
    boundary_cells = check_count(boundary_cells, "boundary_cells", 1)
    if 2 * boundary_cells >= min(grid.shape):
        raise ValueError(
            f"boundary_cells = {boundary_cells} leaves no interior on a grid of shape {grid.shape}"
        )
    max_stencil = check_count(max_stencil, "max_stencil", 1)
    noise_rtol = _check_tolerance(noise_rtol, "noise_rtol")
    p = _check_density(p_T, grid).ravel().copy()
    ts, st = _time_grid(T, eps, n_steps, save_times)

    geom = _Geometry(grid)
    be = _NumbaBackend(geom, parallel) if backend == "numba" else _NumpyBackend(geom)
    high = scheme == "tr-bdf2-fct"
    sides = _boundary_masks(grid, boundary_cells)
    layer = np.zeros(grid.n_cells, dtype=bool)
    for _, mk in sides:
        layer |= mk
    vol = geom.vol

    n_total = ts.size - 1
    mass = np.empty(n_total + 1)
    bmass = np.empty(n_total + 1)
    limited = np.zeros(n_total)
    snapshots = np.empty((st.size,) + grid.shape)
    n_fallback = 0
    noise_dropped = 0.0

    def record(k: int, t: float) -> None:
        vp = vol * p
        total = float(vp.sum())
        if not np.isfinite(total):
            raise FloatingPointError(
                f"solve_fokker_planck: the density became non-finite at t = {t:.6g}; "
                "check drift and noise there (or refine n_steps / the grid)"
            )
        mass[k] = total
        frac = float(vp[layer].sum()) / total
        bmass[k] = frac
        if frac > boundary_tol:
            worst = max(sides, key=lambda s: float(vp[s[1]].sum()))
            raise ValueError(
                f"grid does not cover the mass: at t = {t:.6g} a fraction {frac:.3g} of the mass "
                f"lies in the outermost {boundary_cells} cell(s) (largest on side "
                f"{worst[0]!r}: {float(vp[worst[1]].sum()) / total:.3g}); boundary_tol = "
                f"{boundary_tol:g}. Widen the grid."
            )
        for i in np.flatnonzero(st == t):
            snapshots[i] = p.reshape(grid.shape)

    record(0, ts[0])
    steps = range(n_total)
    if progress:
        from tqdm import tqdm

        steps = tqdm(steps, desc="Fokker-Planck", unit="step")
    hx, hy = (geom.spacing + (1.0,))[:2]
    for k in steps:
        t0, t1 = float(ts[k]), float(ts[k + 1])
        ds = t0 - t1
        tm = 0.5 * (t0 + t1)
        b = _eval_drift(drift, geom.face_points, tm, geom.ndim)
        parts = np.split(b, geom.face_split, axis=0)
        a_axes = [np.ascontiguousarray(-parts[j][:, j]) for j in range(geom.ndim)]
        q = _eval_noise(noise, geom.cell_points, tm, geom.ndim)
        ops = []
        if geom.ndim == 1:
            ops.append(be.axis_op(0, a_axes[0], q[0]))
        else:
            qxx, qxy, qyy = q
            cross = []
            if np.any(qxy != 0.0):
                if not geom.uniform:
                    raise ValueError(
                        "grid: a noise with off-diagonal entries needs uniform spacing along "
                        "each axis (use uniform_grid)"
                    )
                qxx, qyy, ex, ey, rho, dropped = be.selling(qxx, qxy, qyy, hx, hy, max_stencil)
                worst = float(dropped.max())
                noise_dropped = max(noise_dropped, worst)
                if worst > noise_rtol:
                    i = int(np.argmax(dropped))
                    raise ValueError(
                        f"noise is too anisotropic for a monotone stencil with max_stencil = "
                        f"{max_stencil}: a relative {worst:.3g} of tr Q at x = "
                        f"{geom.cell_points[i].tolist()}, t = {tm:.6g} cannot be represented "
                        f"(noise_rtol = {noise_rtol:g}); raise max_stencil or regularize Q"
                    )
                used = rho > 0.0
                if np.any(used):
                    span = 2 * max_stencil + 1
                    keys = (ex + max_stencil) * span + (ey + max_stencil)
                    for key in np.unique(keys[used]):
                        e = (int(key // span) - max_stencil, int(key % span) - max_stencil)
                        field_ = np.zeros(grid.n_cells)
                        sel = used & (keys == key)
                        cells, slots = np.nonzero(sel)
                        field_[cells] = rho[cells, slots]
                        cross.append(be.cross_op(e, field_))
            ops.append(be.axis_op(0, a_axes[0], np.ascontiguousarray(qxx)))
            ops.append(be.axis_op(1, a_axes[1], np.ascontiguousarray(qyy)))
            ops.extend(cross)
        if len(ops) == 1:
            sequence = [(ops[0], ds)]
        else:
            half = [(op, 0.5 * ds) for op in ops[:-1]]
            sequence = half + [(ops[-1], ds)] + half[::-1]
        lim_step = 0.0
        for op, h in sequence:
            lim, fb = be.sweep(p, op, h, high)
            lim_step += lim
            n_fallback += fb
        limited[k] = lim_step / mass[k]
        record(k + 1, ts[k + 1])

    if n_fallback:
        warnings.warn(
            f"solve_fokker_planck: {n_fallback} line sweeps fell back to the first-order scheme "
            "because the step was too long for the compression rate of the drift; increase "
            "n_steps",
            RuntimeWarning,
            stacklevel=2,
        )
    config = {
        "T": T,
        "eps": eps,
        "n_steps": int(n_total),
        "n_steps_uniform": n_steps,
        "scheme": scheme,
        "boundary_tol": boundary_tol if np.isfinite(boundary_tol) else None,
        "boundary_cells": boundary_cells,
        "max_stencil": max_stencil,
        "noise_rtol": noise_rtol,
        "backend": backend,
        "drift": _name(drift),
        "noise": _name(noise),
        "grid": grid.config(),
    }
    return FokkerPlanckResult(
        density=p.reshape(grid.shape),
        grid=grid,
        times=ts,
        mass=mass,
        boundary_mass=bmass,
        limited_mass=limited,
        save_times=st,
        snapshots=snapshots,
        n_fallback=n_fallback,
        noise_dropped=noise_dropped,
        config=config,
    )


def solve_clipped_white_noise(
    schedule: object,
    mean_score: Callable,
    markov_intensity: Callable,
    eps: float,
    bounds: object,
    n_cells: int,
    n_steps: int,
    with_noise: bool = True,
    **fp_kwargs,
) -> tuple[FokkerPlanckResult, dict]:
    """White-noise (Markov) density at ``t = eps`` of a 1-D ensemble with noise ``Q^+ = max(Q, 0)``.

    Drift ``-beta x - D_t s_avg`` (:func:`schedule_drift` of ``mean_score(x, t)``), noise intensity
    ``max(markov_intensity(x, t), 0)`` (``with_noise=False``: no noise, the continuous-time PF-ODE
    of the mean score), from ``N(0, sigma_T**2)`` cell averages on ``uniform_grid(bounds,
    n_cells)`` at ``t = T``, by :func:`solve_fokker_planck` (extra keyword arguments pass through).

    Returns
    -------
    (FokkerPlanckResult, dict)
        The dict holds the clipping statistics over all noise evaluations: ``clipped_fraction``
        (fraction of (cell, step) evaluations with ``Q < 0``), ``clipped_share``
        (``sum |Q^-| / sum |Q|``) and ``min_Q_rel`` (the most negative ``Q`` relative to the
        largest ``Q`` of its step).
    """
    from gtv.numerics.schedules import resolve_schedule

    sched = resolve_schedule(schedule)
    stats = {"n_eval": 0, "n_neg": 0, "abs_neg": 0.0, "abs_all": 0.0, "min_rel": 0.0}

    def noise(x: np.ndarray, t: float) -> np.ndarray:
        q = markov_intensity(x, t)
        neg = q < 0
        stats["n_eval"] += q.size
        stats["n_neg"] += int(neg.sum())
        stats["abs_neg"] += float(-q[neg].sum())
        stats["abs_all"] += float(np.abs(q).sum())
        qmax = float(q.max())
        if neg.any() and qmax > 0:
            stats["min_rel"] = min(stats["min_rel"], float(q.min()) / qmax)
        return np.clip(q, 0.0, None)

    grid = uniform_grid(bounds, n_cells)
    p_T = gaussian_cell_averages(grid, 0.0, float(sched.sigma2(sched.T)))
    res = solve_fokker_planck(
        schedule_drift(sched, mean_score),
        noise if with_noise else None,
        p_T,
        grid,
        sched.T,
        eps,
        n_steps,
        **fp_kwargs,
    )
    info = {
        "clipped_fraction": stats["n_neg"] / max(stats["n_eval"], 1),
        "clipped_share": stats["abs_neg"] / stats["abs_all"] if stats["abs_all"] > 0 else 0.0,
        "min_Q_rel": stats["min_rel"],
    }
    return res, info
