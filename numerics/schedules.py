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

    def __post_init__(self) -> None:
        T = float(self.T)
        if not (np.isfinite(T) and T > 0):
            raise ValueError(f"T must be a finite positive number, got {self.T!r}")
        named = _GENERATED.get(self.name)
        if named is not None and all(self.__dict__[q] is named[q] for q in named if q != "T"):
            return  # a generated named schedule: checked symbolically in tests/theory
        self.check_signs()

    def check_signs(self, n_points: int = 500) -> None:
        """``ValueError`` unless ``sigma2(t) > 0`` (finite) on ``(0, T]`` and ``diffusion(t) >= 0``
        on ``[0, T]``, on a dense grid: ``n_points`` uniform points plus ``1e-12 T ... 0.1 T``.

        Run on construction for every schedule but the generated named ones (a custom schedule
        from ``gtv.theory.schedules.Schedule.to_numeric`` was also checked symbolically there,
        but possibly for another ``T``). A non-finite ``diffusion`` at ``t = 0`` or ``t = T``
        (a divergence at an end point) is allowed.
        """
        T = float(self.T)
        grid = np.concatenate([T * 10.0 ** -np.arange(12, 0, -1), np.linspace(0, T, n_points + 1)])
        grid = np.unique(grid)
        bad_s2, bad_d = [], []
        with np.errstate(all="ignore"):
            for tv in grid:
                if tv > 0:
                    s2 = float(self.sigma2(float(tv)))
                    if not (np.isfinite(s2) and s2 > 0):
                        bad_s2.append(tv)
                d = float(self.diffusion(float(tv)))
                if (np.isfinite(d) and d < 0) or (np.isnan(d) and 0 < tv < T):
                    bad_d.append(tv)
        n = grid.size
        if bad_d:
            raise ValueError(
                f"diffusion: D_t of schedule {self.name!r} must be >= 0 on [0, T] = [0, {T:g}], "
                f"but it is negative for t in [{min(bad_d):g}, {max(bad_d):g}] "
                f"(dense grid: {len(bad_d)} of {n} points)"
            )
        if bad_s2:
            raise ValueError(
                f"sigma2: sigma_t**2 of schedule {self.name!r} must be finite and > 0 on (0, T] = "
                f"(0, {T:g}], but it is not for t in [{min(bad_s2):g}, {max(bad_s2):g}] "
                f"(dense grid: {len(bad_s2)} of {n} points)"
            )

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
    sched = NumericSchedule(name=name, T=T, **entry)
    with np.errstate(over="ignore", invalid="ignore"):
        a_T, s2_T = float(sched.alpha(T)), float(sched.sigma2(T))
    if not (np.isfinite(a_T) and np.isfinite(s2_T)):
        raise ValueError(
            f"T = {T!r} is too large for {name!r}: alpha(T) = {a_T!r}, sigma2(T) = {s2_T!r} "
            "overflow float64"
        )
    return sched


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
