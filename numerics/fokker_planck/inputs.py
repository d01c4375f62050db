"""Input handling of the Fokker-Planck solver: argument checks and coefficient evaluation.

Checks that are specific to :func:`gtv.numerics.fokker_planck.solve_fokker_planck` (densities,
tolerances, save times, the shapes and signs of ``drift`` and ``noise``); the shared ones
(``check_eps``, ``check_count``, ``check_choice``) come from :mod:`gtv.numerics.checks`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gtv.numerics.fokker_planck.constants import NOISE_TOL
from gtv.numerics.fokker_planck.grid import FVGrid

__all__ = [
    "boundary_masks",
    "callable_name",
    "check_density",
    "check_tolerance",
    "eval_drift",
    "eval_noise",
    "time_grid",
]


def check_tolerance(value: object, argname: str) -> float:
    """Return ``value`` as a float or raise ``ValueError`` unless it is a number ``>= 0``.

    ``inf`` is allowed (no check).
    """
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = np.nan
    if not v >= 0:
        raise ValueError(f"{argname} must be a number >= 0, got {value!r}")
    return v


def check_density(p_T: object, grid: FVGrid) -> np.ndarray:
    """Return ``p_T`` as float64 cell averages on ``grid``: finite, non-negative, positive mass."""
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


def time_grid(T: float, eps: float, n_steps: int, save_times: object) -> tuple[np.ndarray, ...]:
    """Step times from ``T`` down to ``eps`` (uniform, plus ``save_times``) and ``save_times``.

    ``save_times`` are returned sorted from ``T`` towards ``eps`` and snapped to the step times.
    """
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


def eval_drift(drift: Callable, points: np.ndarray, t: float, ndim: int) -> np.ndarray:
    """``drift(points, t)`` as a checked ``(m, ndim)`` float64 array."""
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


def eval_noise(noise, points: np.ndarray, t: float, ndim: int) -> tuple[np.ndarray, ...]:
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
        if np.any(q < -NOISE_TOL * scale) or (scale == 0.0 and np.any(q < 0)):
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
        if np.any(asym > NOISE_TOL * max(scale, 1e-300)):
            raise ValueError(f"noise must return symmetric 2x2 matrices (t = {t:.17g})")
        qxy = 0.5 * (q[:, 0, 1] + q[:, 1, 0])
    else:
        raise ValueError(
            f"noise must return a scalar or shape ({m},), ({m}, 2) or ({m}, 2, 2) in 2-D, "
            f"got {q.shape}"
        )
    scale = max(float(np.max(np.abs(qxx))), float(np.max(np.abs(qyy))), 0.0)
    tol = NOISE_TOL * scale
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


def boundary_masks(grid: FVGrid, width: int) -> list[tuple[str, np.ndarray]]:
    """``(side, flat mask)`` of the outermost ``width`` cells at each end of each axis."""
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


def callable_name(obj: object) -> str:
    """Qualified name of a callable (for the run configuration), ``repr`` of anything else."""
    if obj is None or not callable(obj):
        return repr(obj)
    return getattr(obj, "__qualname__", getattr(obj, "__name__", type(obj).__name__))
