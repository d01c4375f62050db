"""Argument checks shared by every model class: one home for each rule.

Every check returns the cleaned value or raises ``ValueError`` (``TypeError`` where the type is
wrong in a way no conversion fixes) with a message that names the argument and the allowed range,
before any expensive work starts (docs/engineering.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "check_bin_edges",
    "check_choice",
    "check_count",
    "check_eps",
    "check_gaussian_1d",
    "check_gaussian_data",
    "check_kappa",
    "check_points",
    "check_query_pair",
    "check_query_points",
    "check_ridge",
    "check_samples_per_model",
    "set_checked_arrays",
]


def check_count(value: object, argname: str, minimum: int = 1) -> int:
    """Return ``value`` as an ``int`` or raise ``ValueError`` unless it is an integer
    ``>= minimum`` (bools are rejected: ``True`` is not a count)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{argname} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_choice(value: object, argname: str, choices: Sequence[str]) -> str:
    """Return ``value`` unchanged or raise ``ValueError`` unless it is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{argname} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_eps(eps: object, T: float) -> float:
    """Return ``eps`` as a float or raise ``ValueError`` unless ``0 < eps < T``."""
    try:
        e = float(eps)
    except (TypeError, ValueError):
        raise ValueError(f"eps must be a number in (0, T) = (0, {T:g}), got {eps!r}") from None
    if not (np.isfinite(e) and 0.0 < e < T):
        raise ValueError(f"eps must lie in (0, T) = (0, {T:g}), got {eps!r}")
    return e


def check_ridge(ridge: object) -> float:
    """Return the ridge ``rho`` as a float or raise ``ValueError`` unless it is finite and
    ``>= 0``."""
    try:
        r = float(ridge)
    except (TypeError, ValueError):
        raise ValueError(f"ridge (rho) must be a finite number >= 0, got {ridge!r}") from None
    if not (np.isfinite(r) and r >= 0):
        raise ValueError(f"ridge (rho) must be a finite number >= 0, got {ridge!r}")
    return r


def check_samples_per_model(P: object, *, required: bool = False) -> float:
    """Return ``P`` (DSM samples per model) as a float or raise ``ValueError`` unless it is a
    finite number ``>= 1``.

    ``P`` may be fractional: theory predictions are analytic in ``1/P``. With
    ``required=True`` a missing ``P`` (``None``) gets its own message, because ``Cov(vec W)``
    scales as ``1/P`` and has no default.
    """
    if required and P is None:
        raise ValueError("P (DSM samples per model) is required: Cov(vec W) scales as 1/P")
    try:
        p = float(P)
    except (TypeError, ValueError):
        raise ValueError(f"P (DSM samples per model) must be a number >= 1, got {P!r}") from None
    if not (np.isfinite(p) and p >= 1):
        raise ValueError(f"P (DSM samples per model) must be a finite number >= 1, got {P!r}")
    return p


def check_points(arr: object, argname: str, dim: int | None = None) -> np.ndarray:
    """Return ``arr`` as a C-contiguous float64 (n, D) array or raise ``ValueError``.

    Parameters
    ----------
    arr : array_like
        Points, one per row.
    argname : str
        Name used in the error message.
    dim : int, optional
        Required number of columns.
    """
    try:
        a = np.ascontiguousarray(arr, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{argname} must be a numeric array of shape (n, D)") from exc
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(
            f"{argname} must have shape (n, D) with n >= 1, D >= 1; got shape {a.shape} "
            "(for 1-D data pass arr[:, None])"
        )
    if dim is not None and a.shape[1] != dim:
        raise ValueError(f"{argname} must have D = {dim} columns to match mu, got {a.shape[1]}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{argname} must contain only finite values")
    return a


def check_query_points(x: object, argname: str, dim: int) -> np.ndarray:
    """Query points ``x`` as a checked (n, D) float64 array; ``(n,)`` is accepted when D = 1."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1 and dim == 1:
        x = x[:, None]
    return check_points(x, argname, dim=dim)


def check_query_pair(
    z: object, argname: str, dim: int, schedule: object = None
) -> tuple[np.ndarray, np.ndarray]:
    """Split and check a query ``z = (x, t)``: returns ``x`` (n, D) and ``t`` (n,).

    ``x`` as in :func:`check_query_points` (named ``argname[0] (x)``); ``t`` a scalar (broadcast
    to all points) or shape (n,), checked against ``schedule.check_times`` when a schedule is
    given.
    """
    if not (isinstance(z, (tuple, list)) and len(z) == 2):
        raise ValueError(f"{argname} must be a pair (x, t)")
    x, t = z
    x = check_query_points(x, f"{argname}[0] (x)", dim)
    t = np.asarray(t, dtype=np.float64)
    t = np.full(x.shape[0], float(t)) if t.ndim == 0 else t
    if t.shape != (x.shape[0],):
        raise ValueError(
            f"{argname}[1] (t) must be a scalar or have shape ({x.shape[0]},), got {t.shape}"
        )
    if schedule is not None:
        schedule.check_times(t, f"{argname}[1] (t)")
    return x, t


def check_kappa(kappa: object) -> float:
    """Return the naive estimator's noise strength ``kappa`` as a float; ``ValueError`` unless it
    is finite and ``>= 0``."""
    try:
        k = float(kappa)
    except (TypeError, ValueError):
        raise ValueError(f"kappa must be a finite number >= 0, got {kappa!r}") from None
    if not (np.isfinite(k) and k >= 0):
        raise ValueError(f"kappa must be a finite number >= 0, got {kappa!r}")
    return k


def check_gaussian_data(mean: object, cov: object) -> tuple[np.ndarray, np.ndarray]:
    """Return Gaussian data ``N(m, S)`` as ``(m, S)`` arrays of shape (D,) and (D, D).

    A scalar ``cov`` is the 1-D variance ``s2``; a 1-D array is a diagonal; a 2-D array must be
    symmetric positive definite.

    Raises
    ------
    ValueError
        ``s2 <= 0`` (naming ``s2``), ``S`` not symmetric positive definite (naming ``S``),
        non-finite values or mismatched sizes.
    """
    m = np.atleast_1d(np.asarray(mean, dtype=np.float64))
    if m.ndim != 1 or not np.all(np.isfinite(m)):
        raise ValueError(f"mean must be a finite scalar or vector, got {mean!r}")
    c = np.asarray(cov, dtype=np.float64)
    if c.ndim == 0:
        if not (np.isfinite(c) and c > 0):
            raise ValueError(f"s2 (the data variance) must be finite and > 0, got {cov!r}")
        c = c.reshape(1, 1)
    elif c.ndim == 1:
        if not (np.all(np.isfinite(c)) and np.all(c > 0)):
            raise ValueError(f"S (diagonal) must have finite entries > 0, got {cov!r}")
        c = np.diag(c)
    if c.ndim != 2 or c.shape[0] != c.shape[1] or c.shape[0] != m.size:
        raise ValueError(f"S must be a ({m.size}, {m.size}) matrix like the mean, got {c.shape}")
    if not np.all(np.isfinite(c)) or not np.allclose(c, c.T, rtol=1e-12, atol=0.0):
        raise ValueError("S must be a finite symmetric matrix")
    if m.size == 1 and not c[0, 0] > 0:
        raise ValueError(f"s2 (the data variance) must be > 0, got {c[0, 0]!r}")
    if np.linalg.eigvalsh(c).min() <= 0:
        raise ValueError("S must be positive definite (an eigenvalue is <= 0)")
    return m, (c + c.T) / 2


def set_checked_arrays(obj: object, shapes: dict[str, tuple[int, ...]]) -> None:
    """Replace each attribute ``obj.<name>`` by a float64 array, checked finite with ``shape``.

    Raises ``ValueError`` naming the first attribute of the wrong shape or with non-finite values.
    """
    for name, shape in shapes.items():
        arr = np.asarray(getattr(obj, name), dtype=np.float64)
        if arr.shape != shape or not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be a finite array of shape {shape}")
        setattr(obj, name, arr)


def check_bin_edges(bin_edges: object, schedule: object) -> np.ndarray:
    """Bin edges that partition ``[eps, T]``: ``0 < eps = edges[0] < ... < edges[-1] = T``.

    ``T`` is the schedule's end time (a last edge within ``1e-12 T`` of it is snapped to it).

    Raises
    ------
    ValueError
        Naming ``bin_edges``: fewer than 2 edges, not finite, not strictly increasing, a first edge
        outside ``(0, T)`` or a last edge other than ``T``.
    """
    try:
        e = np.array(bin_edges, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise ValueError(f"bin_edges must be a sequence of numbers, got {bin_edges!r}") from None
    T = schedule.T
    if e.size < 2 or not np.all(np.isfinite(e)):
        raise ValueError(f"bin_edges must hold at least 2 finite numbers, got {bin_edges!r}")
    if not np.all(np.diff(e) > 0):
        raise ValueError(f"bin_edges must be strictly increasing, got {e.tolist()}")
    if not (0.0 < e[0] < T):
        raise ValueError(
            f"bin_edges must partition [eps, T] with 0 < eps < T = {T:g}; first edge {e[0]!r}"
        )
    if abs(e[-1] - T) > 1e-12 * T:
        raise ValueError(
            f"bin_edges must partition [eps, T]: the last edge must be T = {T:g} (the schedule's "
            f"end time, where the sampler starts), got {e[-1]!r}"
        )
    e[-1] = T
    return e


def check_gaussian_1d(mean: object, s2: object) -> tuple[float, float]:
    """Return 1-D Gaussian data ``N(mean, s2)`` as floats (:func:`check_gaussian_data`)."""
    m, S = check_gaussian_data(mean, s2)
    if m.size != 1:
        raise ValueError("mean must be a scalar: the model is 1-D")
    return float(m[0]), float(S[0, 0])
