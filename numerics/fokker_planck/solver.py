"""Finite-volume Fokker-Planck solver for reverse-time densities in 1-D and 2-D.

The mathematics is in docs/math/predictions.md.

What is solved
--------------
The processes of this project run *backwards* in the diffusion time, from ``t = T`` down to the
cutoff ``t = eps`` (the PF-ODE, the reverse SDE, the effective dynamics of
docs/math/path_integral.md to docs/math/naive_estimator.md). They are
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
The package splits the scheme into small modules: grids and Gaussian cell averages
(:mod:`~gtv.numerics.fokker_planck.grid`), faces and lines
(:mod:`~gtv.numerics.fokker_planck.geometry`), face coefficients
(:mod:`~gtv.numerics.fokker_planck.chang_cooper`), line sweeps with TR-BDF2 and the limiter
(:mod:`~gtv.numerics.fokker_planck.fct`), the Selling decomposition
(:mod:`~gtv.numerics.fokker_planck.selling`), input checks
(:mod:`~gtv.numerics.fokker_planck.inputs`) and the result
(:mod:`~gtv.numerics.fokker_planck.result`); this module runs the split steps.
``backend="numba"`` (:class:`~gtv.numerics.fokker_planck.numba_backend.NumbaBackend`): kernels for
the face coefficients, Selling decomposition and the line sweeps (Thomas algorithm; for the
M-matrices it involves every operation adds non-negative numbers, so the low-order solution is
non-negative exactly in floating point), serial or parallel over lines (``parallel``; same result
for any thread count).
``backend="numpy"`` (:class:`~gtv.numerics.fokker_planck.numpy_backend.NumpyBackend`): a plain
reference of the same scheme that assembles each sweep's operator as one scipy.sparse matrix on
the whole grid and solves it with a sparse LU; its Selling decomposition and FCT limiter are
separate vectorized/looped numpy code. A test asserts that the two agree.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from gtv.numerics.checks import check_choice, check_count, check_eps
from gtv.numerics.fokker_planck.constants import SCHEMES
from gtv.numerics.fokker_planck.geometry import Geometry
from gtv.numerics.fokker_planck.grid import FVGrid
from gtv.numerics.fokker_planck.inputs import (
    boundary_masks,
    callable_name,
    check_density,
    check_tolerance,
    eval_drift,
    eval_noise,
    time_grid,
)
from gtv.numerics.fokker_planck.numba_backend import NumbaBackend
from gtv.numerics.fokker_planck.numpy_backend import NumpyBackend
from gtv.numerics.fokker_planck.result import FokkerPlanckResult

__all__ = ["BACKENDS", "solve_fokker_planck"]

#: Implementations of the scheme (see *Implementations* above).
BACKENDS = ("numba", "numpy")


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
    scheme = check_choice(scheme, "scheme", SCHEMES)
    backend = check_choice(backend, "backend", BACKENDS)
    boundary_tol = check_tolerance(np.inf if boundary_tol is None else boundary_tol, "boundary_tol")
    boundary_cells = check_count(boundary_cells, "boundary_cells", 1)
    if 2 * boundary_cells >= min(grid.shape):
        raise ValueError(
            f"boundary_cells = {boundary_cells} leaves no interior on a grid of shape {grid.shape}"
        )
    max_stencil = check_count(max_stencil, "max_stencil", 1)
    noise_rtol = check_tolerance(noise_rtol, "noise_rtol")
    p = check_density(p_T, grid).ravel().copy()
    ts, st = time_grid(T, eps, n_steps, save_times)

    geom = Geometry(grid)
    be = NumbaBackend(geom, parallel) if backend == "numba" else NumpyBackend(geom)
    high = scheme == "tr-bdf2-fct"
    sides = boundary_masks(grid, boundary_cells)
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
        b = eval_drift(drift, geom.face_points, tm, geom.ndim)
        parts = np.split(b, geom.face_split, axis=0)
        a_axes = [np.ascontiguousarray(-parts[j][:, j]) for j in range(geom.ndim)]
        q = eval_noise(noise, geom.cell_points, tm, geom.ndim)
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
        "drift": callable_name(drift),
        "noise": callable_name(noise),
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
