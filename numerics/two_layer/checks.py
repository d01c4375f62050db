"""Argument checks of two-layer network training: width and initialization, learning rate,
training times (the activation check is :func:`gtv.numerics.kernel.checks.check_activation`)."""

from __future__ import annotations

import numpy as np

__all__ = ["INITS", "check_learning_rate", "check_width", "taus_to_steps"]

#: Allowed initializations.
INITS = ("antisymmetric", "standard")


def check_width(width: object, init: str) -> int:
    """``width`` as an int for initialization ``init`` (even for ``"antisymmetric"``), or
    ``ValueError`` (also for an unknown ``init``)."""
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1:
        raise ValueError(f"width must be an integer >= 1, got {width!r}")
    if init == "antisymmetric" and width % 2:
        raise ValueError(
            f"width must be even for init='antisymmetric' (pairs of mirrored units), got {width}"
        )
    return int(width)


def check_learning_rate(learning_rate: object) -> float:
    """The learning rate ``eta`` as a float, or ``ValueError`` unless finite and > 0."""
    try:
        eta = float(learning_rate)
    except (TypeError, ValueError):
        raise ValueError(
            f"learning_rate must be a positive number, got {learning_rate!r}"
        ) from None
    if not (np.isfinite(eta) and eta > 0):
        raise ValueError(f"learning_rate must be finite and > 0, got {learning_rate!r}")
    return eta


def taus_to_steps(taus: object, eta: float) -> np.ndarray:
    """Step counts ``rint(tau / eta)`` of increasing training times ``taus >= 0``, or
    ``ValueError``."""
    taus = np.atleast_1d(np.asarray(taus, dtype=np.float64))
    if taus.ndim != 1 or taus.size < 1 or not np.all(np.isfinite(taus)):
        raise ValueError(f"taus must be a non-empty 1-D array of finite training times, got {taus}")
    if np.any(taus < 0):
        raise ValueError(f"taus must be >= 0 (training times tau = eta * steps), got {taus}")
    if np.any(np.diff(taus) < 0):
        raise ValueError(f"taus must be sorted in increasing order, got {taus}")
    return np.rint(taus / eta).astype(np.int64)
