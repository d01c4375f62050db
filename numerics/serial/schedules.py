"""Noise schedules of the serial-reproduction chains: one noise level per step, sigma_1 .. sigma_T.

A schedule is a plain float array; what its values mean depends on the noise family (a width for
the Gaussian-like families, a replacement probability for fade noise, which
:meth:`~gtv.numerics.serial.families.NoiseFamily.check_sigmas` checks when a chain is built).

Kinds (``u_t = (t - 1) / (T - 1)`` for ``t = 1 .. T``):

* ``"linear"`` -- ``start + (stop - start) u_t``, linear in sigma (the authors' ``linspace``; with
  ``T = 1`` it is ``[stop]``, as MATLAB's ``linspace(a, b, 1)``);
* ``"constant"`` -- ``start`` at every step;
* ``"geometric"`` -- ``start (stop / start)^u_t``;
* ``"cosine"`` -- ``start + (stop - start) (1 - cos(pi u_t)) / 2`` (slow at both ends);
* ``"fixed-total-variance"`` -- ``c * shape_t`` with ``c`` chosen so that
  ``sum_t sigma_t^2 = total_variance``, where ``shape_t`` is one of the kinds above (only the
  ratio ``stop / start`` matters). For Gaussian noise on a torus the per-step variances add, so
  the total noise is the same for every ``T``: this separates the effect of more, smaller steps
  from that of reaching the terminal density.
"""

from __future__ import annotations

import numpy as np

from gtv.numerics.checks import check_choice, check_count, check_positive

__all__ = ["SCHEDULE_KINDS", "SCHEDULE_SHAPES", "schedule"]

#: Schedule shapes (also the shapes of a fixed-total-variance schedule).
SCHEDULE_SHAPES = ("constant", "linear", "geometric", "cosine")
#: Every schedule kind :func:`schedule` accepts by name.
SCHEDULE_KINDS = (*SCHEDULE_SHAPES, "fixed-total-variance")


def _positive(value: object, argname: str, kind: str) -> float:
    if value is None:
        raise ValueError(f"{argname} is required for a {kind!r} schedule")
    return check_positive(value, argname)


def _shape(kind: str, T: int, start: float, stop: float) -> np.ndarray:
    if kind == "constant":
        return np.full(T, start)
    if T == 1:
        return np.array([stop])
    u = np.arange(T) / (T - 1)
    if kind == "linear":
        out = start + (stop - start) * u
    elif kind == "geometric":
        out = start * (stop / start) ** u
    else:  # cosine
        out = start + (stop - start) * 0.5 * (1.0 - np.cos(np.pi * u))
    out[0], out[-1] = start, stop
    return out


def schedule(
    kind: object,
    T: int | None = None,
    start: float | None = None,
    stop: float | None = None,
    *,
    total_variance: float | None = None,
    shape: str = "constant",
) -> np.ndarray:
    """A schedule ``sigma_1 .. sigma_T`` (module docstring lists the kinds).

    Parameters
    ----------
    kind : str or array_like
        One of :data:`SCHEDULE_KINDS`, or the values themselves (checked: finite, ``>= 0``,
        ``T >= 1`` of them; whether 0 is allowed is up to the family).
    T : int
        Number of steps (``>= 1``); for an array, optional (must match its length).
    start, stop : float
        First and last value (``> 0``). ``"constant"`` takes only ``start``. For
        ``"fixed-total-variance"`` they give the shape (``stop`` defaults to ``start``).
    total_variance : float
        ``sum_t sigma_t^2`` of a ``"fixed-total-variance"`` schedule (``> 0``).
    shape : str
        The shape of a ``"fixed-total-variance"`` schedule, one of :data:`SCHEDULE_SHAPES`.

    Returns
    -------
    ndarray
        Shape ``(T,)``, float64.
    """
    if not isinstance(kind, str):
        try:
            values = np.array(kind, dtype=np.float64).ravel()
        except (TypeError, ValueError):
            raise ValueError(f"kind must be a schedule name or an array, got {kind!r}") from None
        if values.size < 1:
            raise ValueError("kind (a schedule array) must hold T >= 1 values, got none")
        if T is not None and check_count(T, "T") != values.size:
            raise ValueError(f"T = {T} does not match the schedule array's length {values.size}")
        if not np.all(np.isfinite(values)) or np.any(values < 0):
            raise ValueError("kind (a schedule array) must hold finite values >= 0")
        return values
    check_choice(kind, "kind", SCHEDULE_KINDS)
    T = check_count(T, "T")
    if kind == "constant":
        value = _positive(start, "start (the constant value)", kind)
        if stop is not None and float(stop) != value:
            raise ValueError("stop must be omitted (or equal start) for a constant schedule")
        return np.full(T, value)
    if kind == "fixed-total-variance":
        check_choice(shape, "shape", SCHEDULE_SHAPES)
        total = _positive(total_variance, "total_variance", kind)
        a = 1.0 if start is None else _positive(start, "start", kind)
        b = a if stop is None else _positive(stop, "stop", kind)
        base = _shape(shape, T, a, b)
        return base * np.sqrt(total / np.sum(base * base))
    a = _positive(start, "start", kind)
    b = _positive(stop, "stop", kind)
    return _shape(kind, T, a, b)
