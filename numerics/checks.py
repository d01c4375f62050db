"""Argument checks shared by every model class: one home for each rule.

Every check returns the cleaned value or raises ``ValueError`` (``TypeError`` where the type is
wrong in a way no conversion fixes) with a message that names the argument and the allowed range,
before any expensive work starts (docs/engineering.md).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "QUERY_LIMIT",
    "WORK_LIMIT",
    "check_bin_edges",
    "check_budget",
    "check_choice",
    "check_count",
    "check_positive",
    "check_eps",
    "check_field_types",
    "check_gaussian_1d",
    "check_gaussian_data",
    "check_kappa",
    "check_output_dir",
    "check_points",
    "check_query_values",
    "check_query_pair",
    "check_query_points",
    "check_ridge",
    "check_samples_per_model",
    "memory_limit",
    "set_checked_arrays",
]

#: Default cap on the elementary operations (multiply-adds) one call may imply: 1e15, about a day
#: on a 2-core machine. The environment variable ``GTV_WORK_LIMIT`` overrides it.
WORK_LIMIT = 1e15


#: Largest ``|x|`` of a denoiser-table query (``query_x``): the tables compare denoisers near
#: the data, and far beyond it squared norms in kernels and features overflow or lose all digits.
QUERY_LIMIT = 1e6


def check_query_values(values: object, argname: str, limit: float = QUERY_LIMIT) -> np.ndarray:
    """Return ``values`` as a non-empty 1-D float array or raise ``ValueError`` naming
    ``argname`` unless every entry is finite with ``|v| <= limit``."""
    try:
        v = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{argname} must be a sequence of numbers, got {values!r}") from None
    if v.ndim != 1 or v.size == 0 or not np.all(np.isfinite(v)):
        raise ValueError(f"{argname} must be a non-empty sequence of finite numbers")
    if np.any(np.abs(v) > limit):
        raise ValueError(f"{argname} must lie in [-{limit:g}, {limit:g}], got {v.tolist()}")
    return v


def memory_limit() -> float:
    """The memory one call may allocate, in bytes: half the physical memory (``os.sysconf``),
    8 GiB where that is unknown; the environment variable ``GTV_MEMORY_LIMIT_GIB`` overrides it."""
    env = os.environ.get("GTV_MEMORY_LIMIT_GIB")
    if env:
        return float(env) * 2**30
    try:
        return 0.5 * os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 8.0 * 2**30


def _work_limit() -> float:
    env = os.environ.get("GTV_WORK_LIMIT")
    return float(env) if env else WORK_LIMIT


def check_budget(
    argname: str, value: object, *, n_bytes: float = 0.0, n_ops: float = 0.0, what: str = "the run"
) -> None:
    """Raise ``ValueError`` naming ``argname`` when the sizes imply more memory than
    :func:`memory_limit` or more operations than :data:`WORK_LIMIT` (before any work).

    Parameters
    ----------
    argname : str
        The size argument(s) responsible, e.g. ``"--models"`` or ``"n_models, n_samples"``.
    value : object
        Its value(s), shown in the message after ``argname`` (``None``: ``argname`` says all).
    n_bytes, n_ops : float
        Estimated peak memory in bytes and elementary operations (pass floats: products of sizes
        overflow int64).
    what : str
        What needs them, e.g. ``"the samples"``.
    """
    mem, work = memory_limit(), _work_limit()
    label = argname if value is None else f"{argname} {value}"
    if not n_bytes <= mem:  # also catches NaN / inf estimates
        raise ValueError(
            f"{label}: {what} would need ~{n_bytes / 2**30:.3g} GiB of memory (limit "
            f"{mem / 2**30:.3g} GiB; set GTV_MEMORY_LIMIT_GIB to change it)"
        )
    if not n_ops <= work:
        raise ValueError(
            f"{label}: {what} would need ~{n_ops:.3g} operations (limit {work:.3g}, about "
            "a day on 2 cores; set GTV_WORK_LIMIT to change it)"
        )


def check_output_dir(path: object, argname: str = "--out") -> Path:
    """Create the output folder ``path`` if needed and check that a file can be written there.

    Raises ``ValueError`` naming ``argname`` when ``path`` is a file, cannot be created or is not
    writable, so that a long computation never ends in an unwritable folder.
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ValueError(f"{argname} {p}: exists and is not a directory")
    try:
        p.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=p, prefix=".gtv-write-test-"):
            pass
    except OSError as exc:
        raise ValueError(f"{argname} {p}: not writable ({exc.strerror or exc})") from None
    return p


def check_positive(value: object, argname: str) -> float:
    """``value`` as a float, or ``ValueError`` naming ``argname`` unless it is finite and > 0."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{argname} must be a finite number > 0, got {value!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{argname} must be a finite number > 0, got {value!r}")
    return v


def check_nonnegative_time(value: object, argname: str) -> float:
    """``value`` as a float, or ``ValueError`` naming ``argname`` unless it is a finite number
    ``>= 0`` (bools and strings are rejected), e.g. the occupancy fields' ``exact_below``."""
    if (
        isinstance(value, (bool, str))
        or not isinstance(value, (int, float, np.number))
        or not (np.isfinite(value) and value >= 0)
    ):
        raise ValueError(f"{argname} must be a finite time >= 0, got {value!r}")
    return float(value)


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


_SCALAR_TYPES = {
    "int": (numbers.Integral, "an integer"),
    "float": (numbers.Real, "a number"),
    "str": (str, "a string"),
    "bool": (bool, "a bool"),
}


def _type_error(name: str, what: str, value: object) -> ValueError:
    # ValueError like check_count (a float count is a bad value, not only a bad type)
    return ValueError(f"{name} must be {what}, got {type(value).__name__} {value!r}")


def check_field_types(obj: object, skip: Sequence[str] = ()) -> None:
    """``ValueError`` naming the field when a dataclass field has the wrong type for its annotation
    (``TypeError`` for a non-bool in a ``bool`` field).

    Understood annotations: ``int``, ``float``, ``str``, ``bool``, ``tuple[T, ...]`` and
    ``tuple[T, T]`` of those, each optionally ``| None``; other fields are left to the class's own
    checks. ``bool`` is not accepted for ``int``/``float`` (``True`` is not a count), numpy
    scalars are; sequences may be tuples, lists or 1-D arrays. A field named ``seed`` is checked
    by :func:`gtv.numerics.streams.check_seed` (a non-negative integer or a ``SeedSequence``;
    ``TypeError`` for ``"a"``, ``None``, ``True``, ``1.7``), so that a junk seed fails when the
    configuration is made, not when the first random stream is drawn. Fields in ``skip`` are left
    to the class. Called first in the ``__post_init__`` of the configuration classes, so that junk
    (``n_models="a"``, ``hist_range=None``) fails by name instead of inside ``int()``.
    """
    from gtv.numerics.streams import check_seed  # streams imports this module

    for f in dataclasses.fields(obj):
        if f.name in skip:
            continue
        if f.name == "seed":
            check_seed(getattr(obj, f.name))
            continue
        ann = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        if not isinstance(f.type, (str, type)):
            ann = str(f.type)
        ann = ann.replace(" ", "")
        optional = ann.endswith("|None")
        ann = ann.removesuffix("|None")
        value = getattr(obj, f.name)
        if value is None and optional:
            continue
        if ann in _SCALAR_TYPES:
            cls, what = _SCALAR_TYPES[ann]
            if ann == "bool" and not isinstance(value, (bool, np.bool_)):
                raise TypeError(f"{f.name} must be a bool, got {type(value).__name__} {value!r}")
            if not isinstance(value, cls) or (ann != "bool" and isinstance(value, bool)):
                raise _type_error(f.name, what, value)
            continue
        m = re.fullmatch(r"tuple\[(int|float|str)(,\.\.\.|(?:,\1)+)\]", ann)
        if m is None:
            continue
        cls, what = _SCALAR_TYPES[m.group(1)]
        n = None if m.group(2) == ",..." else m.group(2).count(",") + 1
        want = f"a sequence of {'' if n is None else f'{n} '}{what.split(' ', 1)[1]}s"
        if isinstance(value, np.ndarray) and value.ndim == 1:
            value = value.tolist()
        if not isinstance(value, (tuple, list)) or (n is not None and len(value) != n):
            raise _type_error(f.name, want, value)
        if any(not isinstance(v, cls) or isinstance(v, bool) for v in value):
            raise _type_error(f.name, want, value)
