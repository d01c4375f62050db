"""Argument checks shared by every model class: one home for each rule.

Every check returns the cleaned value or raises ``ValueError`` (``TypeError`` where the type is
wrong in a way no conversion fixes) with a message that names the argument and the allowed range,
before any expensive work starts (docs/engineering.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "check_choice",
    "check_count",
    "check_eps",
    "check_points",
    "check_query_pair",
    "check_query_points",
    "check_ridge",
    "check_samples_per_model",
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
