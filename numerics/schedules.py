"""Numeric noise schedules: generated numba functions of t (docs/math/conventions.md).

The functions come from ``numerics/_generated/schedules.py``, which :mod:`gtv.theory.codegen` writes
from the sympy definitions in :mod:`gtv.theory.schedules`; this module imports no sympy. A custom
schedule built in :mod:`gtv.theory.schedules` reaches the numerics through
``Schedule.to_numeric()``, which returns the same :class:`NumericSchedule` type.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gtv.numerics._generated.schedules import SCHEDULES as _GENERATED

__all__ = ["SCHEDULE_NAMES", "NumericSchedule", "get_schedule", "resolve_schedule"]

#: Named schedules available without sympy.
SCHEDULE_NAMES = tuple(_GENERATED)


@dataclass(frozen=True)
class NumericSchedule:
    """A schedule's compiled functions of ``t`` (each accepts a float or an array).

    Attributes
    ----------
    name : str
        Schedule name (``"vp-linear"``, ..., or a custom name).
    T : float
        End time; valid times are ``0 < t <= T``.
    alpha, sigma2, beta, diffusion : callable
        ``alpha_t``, ``sigma_t**2``, ``beta_t``, ``D_t``.
    pf_x_coeff, pf_mean_coeff : callable
        The PF-ODE drift is ``pf_x_coeff(t) * x - pf_mean_coeff(t) * mu_bar``.
    score_mean_coeff, inv_sigma2 : callable
        ``s = score_mean_coeff * mu_bar - inv_sigma2 * x``.
    proxy_cov_scale : callable
        ``alpha**2 / sigma**4``; the proxy covariance is ``proxy_cov_scale * Sigma_post``.
    dsm_weight : callable
        ``alpha**2 / sigma**2``, the denoiser-form DSM weight lambda-tilde.
    """

    name: str
    T: float
    alpha: Callable
    sigma2: Callable
    beta: Callable
    diffusion: Callable
    pf_x_coeff: Callable
    pf_mean_coeff: Callable
    score_mean_coeff: Callable
    inv_sigma2: Callable
    proxy_cov_scale: Callable
    dsm_weight: Callable

    def check_times(self, t: object, argname: str = "t") -> np.ndarray:
        """Return ``t`` as a float64 array; ``ValueError`` unless every entry is in (0, T]."""
        arr = np.asarray(t, dtype=np.float64)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{argname} must be finite, in (0, {self.T:g}]")
        if arr.size and (arr.min() <= 0.0 or arr.max() > self.T):
            raise ValueError(
                f"{argname} must lie in (0, T] = (0, {self.T:g}] for schedule {self.name!r}; "
                f"got values in [{arr.min():g}, {arr.max():g}]"
            )
        return arr

    def config(self) -> dict:
        """JSON-serializable description (for saved results)."""
        return {"name": self.name, "T": self.T}


def get_schedule(name: str, T: float | None = None) -> NumericSchedule:
    """Return the named numeric schedule.

    Parameters
    ----------
    name : {"vp-linear", "linear-variance", "song-vp", "ve", "edm"}
        See :func:`gtv.theory.schedules.named_schedule` for the definitions.
    T : float, optional
        End time (default: the schedule's own, 80 for ``edm`` and 1 otherwise).

    Raises
    ------
    ValueError
        For an unknown name or a non-positive ``T`` (``T > 1`` for ``linear-variance``).
    """
    if name not in _GENERATED:
        raise ValueError(f"schedule must be one of {SCHEDULE_NAMES}, got {name!r}")
    entry = dict(_GENERATED[name])
    default_T = entry.pop("T")
    if T is None:
        T = default_T
    T = float(T)
    if not (np.isfinite(T) and T > 0):
        raise ValueError(f"T must be a finite positive number, got {T!r}")
    if name == "linear-variance" and T > 1:
        raise ValueError(f"T must be in (0, 1] for linear-variance, got {T!r}")
    return NumericSchedule(name=name, T=T, **entry)


def resolve_schedule(schedule: object) -> NumericSchedule:
    """Accept a schedule name, a :class:`NumericSchedule` or a ``gtv.theory.schedules.Schedule``."""
    if isinstance(schedule, NumericSchedule):
        return schedule
    if isinstance(schedule, str):
        return get_schedule(schedule)
    if hasattr(schedule, "to_numeric"):
        return schedule.to_numeric()
    raise TypeError(
        f"schedule must be a name in {SCHEDULE_NAMES}, a NumericSchedule or a theory Schedule, "
        f"got {type(schedule).__name__}"
    )
