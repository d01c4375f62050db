"""Linear-model features: crossed products of 1-D bases over space and time (docs/math/linear.md).

Per-axis bases:

* ``gaussian``: ``F_a`` bumps with centres ``linspace(lo, hi, F_a)``, standard deviation
  ``spacing / 2`` and pdf normalization ``exp(-(u - c)**2 / (2 std**2)) / (std sqrt(2 pi))``
  (for ``F_a = 1`` the single bump sits at ``lo`` with ``std = (hi - lo) / 2``);
* ``fourier``: ``[1, cos(2 pi n u / L) for n = 1..n_cos, sin(2 pi n u / L) for n = 1..n_sin]``
  with ``n_sin = (F_a - 1) // 2``, ``n_cos = F_a - 1 - n_sin`` and ``L = hi - lo``; ``u`` is the
  raw coordinate.

The product feature of a point ``(x_1, ..., x_D, t)`` is ``kron(phi_1(x_1), ..., phi_D(x_D),
phi_t(t))``: the time index runs fastest. The numba kernels evaluate a Gaussian axis with one
exponential per point (a ratio recurrence outward from the nearest centre: exact up to a few ulp)
and a Fourier axis with one ``cos``/``sin`` pair (angle-addition recurrence); the numpy reference
evaluates every basis function directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from gtv.numerics.checks import check_budget, check_points

__all__ = [
    "EXP_MINUS_4",
    "FEATURE_KINDS",
    "AxisBasis",
    "ProductFeatures",
    "axis_offsets",
    "axis_params",
    "axis_values",
    "axis_values_fast",
    "check_data_and_features",
    "kron_into",
    "product_features_serial",
]

FEATURE_KINDS = ("gaussian", "fourier")
_KIND_CODE = {"gaussian": 0, "fourier": 1}
EXP_MINUS_4 = math.exp(-4.0)  # exp(-h**2/s**2) for std s = h/2


@dataclass(frozen=True)
class AxisBasis:
    """A 1-D basis on one coordinate.

    Parameters
    ----------
    kind : {"gaussian", "fourier"}
    size : int
        Number of basis functions ``F_a >= 1``.
    lo, hi : float
        Range (``lo < hi``): bump centres span it; the Fourier period is ``hi - lo``.
    """

    kind: str
    size: int
    lo: float
    hi: float

    def __post_init__(self) -> None:
        if self.kind not in FEATURE_KINDS:
            raise ValueError(f"kind must be one of {FEATURE_KINDS}, got {self.kind!r}")
        if isinstance(self.size, bool) or int(self.size) != self.size or self.size < 1:
            raise ValueError(
                f"size (features per axis F_a) must be an integer >= 1, got {self.size!r}"
            )
        object.__setattr__(self, "size", int(self.size))
        lo, hi = float(self.lo), float(self.hi)
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(
                f"range (lo, hi) must be finite with lo < hi, got ({self.lo}, {self.hi})"
            )
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)

    @property
    def spacing(self) -> float:
        """Distance between neighbouring Gaussian centres (``hi - lo`` when ``size == 1``)."""
        return (self.hi - self.lo) / (self.size - 1) if self.size > 1 else self.hi - self.lo

    @property
    def centres(self) -> np.ndarray:
        """Gaussian centres ``linspace(lo, hi, size)``."""
        return np.linspace(self.lo, self.hi, self.size)

    def evaluate(self, u: object) -> np.ndarray:
        """Basis values at the points ``u``: an array of shape ``(len(u), size)`` (numba)."""
        u = _finite_1d(u, "u")
        out = np.empty((u.size, self.size))
        _axis_values_batch(_KIND_CODE[self.kind], self.size, self.lo, self.hi, u, out)
        return out

    def evaluate_reference(self, u: object) -> np.ndarray:
        """Plain-numpy evaluation of every basis function directly (the reference)."""
        u = _finite_1d(u, "u")
        if self.kind == "gaussian":
            std = self.spacing / 2
            z = (u[:, None] - self.centres[None, :]) / std
            return np.exp(-0.5 * z * z) / (std * np.sqrt(2 * np.pi))
        n_sin = (self.size - 1) // 2
        n_cos = self.size - 1 - n_sin
        theta = 2 * np.pi * u / (self.hi - self.lo)
        cols = [np.ones_like(u)]
        cols += [np.cos(n * theta) for n in range(1, n_cos + 1)]
        cols += [np.sin(n * theta) for n in range(1, n_sin + 1)]
        return np.stack(cols, axis=1)

    def config(self) -> dict:
        return {"kind": self.kind, "size": self.size, "lo": self.lo, "hi": self.hi}


@dataclass(frozen=True)
class ProductFeatures:
    """Crossed-product features ``phi(x, t) = kron(phi_1(x_1), ..., phi_D(x_D), phi_t(t))``.

    Parameters
    ----------
    space : tuple of AxisBasis
        One basis per spatial dimension.
    time : AxisBasis
        Basis over time.
    """

    space: tuple[AxisBasis, ...]
    time: AxisBasis

    def __post_init__(self) -> None:
        space = tuple(self.space)
        if len(space) < 1 or not all(isinstance(a, AxisBasis) for a in space):
            raise ValueError("space must be a non-empty sequence of AxisBasis (one per dimension)")
        if not isinstance(self.time, AxisBasis):
            raise ValueError("time must be an AxisBasis")
        object.__setattr__(self, "space", space)
        n = math.prod(a.size for a in space) * self.time.size  # Python ints: no overflow
        # every trainer forms the F x F normal equations (docs/reliability.md)
        sizes = "x".join(str(a.size) for a in (*space, self.time))
        check_budget(
            "n_features", f"{n} (= {sizes})", n_bytes=8.0 * n * n, what="the F x F Gram matrix"
        )

    @classmethod
    def uniform(
        cls,
        kind: str,
        dim: int,
        n_space: int,
        n_time: int,
        t_range: tuple[float, float],
        x_range: tuple[float, float] = (-1.5, 1.5),
        time_kind: str | None = None,
    ) -> ProductFeatures:
        """The paper's features: the same basis on every spatial axis over ``x_range``.

        Parameters
        ----------
        kind : {"gaussian", "fourier"}
            Spatial basis (and the time basis unless ``time_kind`` is given).
        dim : int
            Spatial dimension ``D``.
        n_space, n_time : int
            Basis functions per spatial axis and over time; ``F = n_space**dim * n_time``.
        t_range : (float, float)
            Time range, the paper's ``[eps, T]``.
        x_range : (float, float), default (-1.5, 1.5)
        time_kind : str, optional
        """
        if int(dim) != dim or dim < 1:
            raise ValueError(f"dim must be an integer >= 1, got {dim!r}")
        space = tuple(AxisBasis(kind, n_space, *x_range) for _ in range(int(dim)))
        return cls(space, AxisBasis(time_kind or kind, n_time, *t_range))

    @property
    def dim(self) -> int:
        """Spatial dimension ``D``."""
        return len(self.space)

    @property
    def n_space_features(self) -> int:
        """Number of spatial product features ``prod(F_a)`` over the spatial axes."""
        return math.prod(a.size for a in self.space)

    @property
    def n_features(self) -> int:
        """Total number of features ``F``."""
        return self.n_space_features * self.time.size

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per-axis ``(kinds, sizes, los, his)`` for the numba kernels (time axis last)."""
        axes = (*self.space, self.time)
        kinds = np.array([_KIND_CODE[a.kind] for a in axes], dtype=np.int64)
        sizes = np.array([a.size for a in axes], dtype=np.int64)
        los = np.array([a.lo for a in axes])
        his = np.array([a.hi for a in axes])
        return kinds, sizes, los, his

    def _inputs(self, x: object, t: object) -> tuple[np.ndarray, np.ndarray]:
        x = np.ascontiguousarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (N, {self.dim}), got {x.shape}")
        t = np.asarray(t, dtype=np.float64)
        t = np.full(x.shape[0], float(t)) if t.ndim == 0 else np.ascontiguousarray(t)
        if t.shape != (x.shape[0],):
            raise ValueError(f"t must be a scalar or have shape ({x.shape[0]},), got {t.shape}")
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(t))):
            raise ValueError("x and t must be finite")
        return x, t

    def evaluate(self, x: object, t: object) -> np.ndarray:
        """Feature matrix of shape ``(N, F)`` at points ``x`` (N, D) and times ``t`` (numba)."""
        x, t = self._inputs(x, t)
        z = np.ascontiguousarray(np.concatenate([x, t[:, None]], axis=1))
        out = np.empty((x.shape[0], self.n_features))
        _product_features_batch(*self.arrays(), z, out)
        return out

    def evaluate_reference(self, x: object, t: object) -> np.ndarray:
        """Plain-numpy feature matrix (row-wise Kronecker product of the axis bases)."""
        x, t = self._inputs(x, t)
        mats = [a.evaluate_reference(x[:, d]) for d, a in enumerate(self.space)]
        mats.append(self.time.evaluate_reference(t))
        out = mats[0]
        for m in mats[1:]:
            out = (out[:, :, None] * m[:, None, :]).reshape(out.shape[0], -1)
        return out

    def evaluate_space(self, x: object) -> np.ndarray:
        """Spatial features ``kron(phi_1(x_1), ..., phi_D(x_D))`` at points ``x`` (n, D).

        Returns an (n, F_space) array (time features left out).
        """
        x = np.asarray(x, dtype=np.float64)
        out = np.ones((x.shape[0], 1))
        for d, ax in enumerate(self.space):
            v = ax.evaluate(x[:, d])
            out = (out[:, :, None] * v[:, None, :]).reshape(x.shape[0], -1)
        return out

    def config(self) -> dict:
        return {"space": [a.config() for a in self.space], "time": self.time.config()}

    @classmethod
    def from_config(cls, cfg: dict) -> ProductFeatures:
        return cls(tuple(AxisBasis(**a) for a in cfg["space"]), AxisBasis(**cfg["time"]))


def _finite_1d(u: object, argname: str) -> np.ndarray:
    u = np.ascontiguousarray(np.atleast_1d(np.asarray(u, dtype=np.float64)))
    if u.ndim != 1:
        raise ValueError(f"{argname} must be a scalar or 1-D array, got shape {u.shape}")
    if not np.all(np.isfinite(u)):
        raise ValueError(f"{argname} must be finite")
    return u


# -- numba kernels ------------------------------------------------------------------------------
@numba.njit(cache=True, error_model="numpy", inline="always")
def axis_params(kind, size, lo, hi):
    """Per-axis constants for :func:`axis_values_fast`: ``(lo, 1/h, norm)`` or ``(omega, 0, 0)``."""
    if kind == 0:
        h = (hi - lo) / (size - 1) if size > 1 else hi - lo
        # std s = h/2, so the pdf normalization 1/(s sqrt(2 pi)) is 2/(h sqrt(2 pi)).
        return lo, 1.0 / h, 2.0 / (h * math.sqrt(2.0 * math.pi))
    return 2.0 * math.pi / (hi - lo), 0.0, 0.0


@numba.njit(cache=True, error_model="numpy", inline="always")
def axis_values_fast(kind, size, p0, p1, p2, u, out):
    """Write the ``size`` basis values at the scalar ``u`` into ``out[:size]``.

    ``(p0, p1, p2)`` come from :func:`axis_params`. For Gaussian bumps with ``v = (u - c_k0)/h``
    measured from the nearest centre, ``phi_k0 = norm exp(-2 v**2)`` and the ratio
    ``phi_{k+1}/phi_k = exp(((u - c_k) h - h**2/2)/s**2)`` starts at ``exp(4 v - 2)`` and is
    multiplied by ``exp(-4)`` at every further step (``s = h/2``); going down the first ratio is
    ``exp(-4 v - 2) = exp(-4) / exp(4 v - 2)``. All ratios are <= 1, so nothing overflows.
    """
    if kind == 0:
        lo, inv_h, norm = p0, p1, p2
        # Beyond 40 spacings from the ends every value underflows to 0 (exp(-2 * 40**2)); the
        # clamp keeps int() and exp(4 v) finite for huge |u| (no 0 * inf = NaN).
        z = min(max((u - lo) * inv_h, -40.0), size + 39.0)
        k0 = int(math.floor(z + 0.5)) if size > 1 else 0
        k0 = min(max(k0, 0), size - 1)
        v = z - k0
        out[k0] = norm * math.exp(-2.0 * v * v)
        up = 0.0
        if k0 < size - 1:
            up = math.exp(4.0 * v - 2.0)
            r = up
            for k in range(k0 + 1, size):
                out[k] = out[k - 1] * r
                r *= EXP_MINUS_4
        if k0 > 0:
            # In the interior |v| <= 1/2, so up is in [exp(-4), 1] and the division is safe.
            r = EXP_MINUS_4 / up if k0 < size - 1 else math.exp(-4.0 * v - 2.0)
            for k in range(k0 - 1, -1, -1):
                out[k] = out[k + 1] * r
                r *= EXP_MINUS_4
    else:
        n_sin = (size - 1) // 2
        n_cos = size - 1 - n_sin
        theta = p0 * u
        c1 = math.cos(theta)
        s1 = math.sin(theta)
        out[0] = 1.0
        c = 1.0
        sn = 0.0
        for n in range(1, max(n_cos, n_sin) + 1):
            c, sn = c * c1 - sn * s1, sn * c1 + c * s1
            if n <= n_cos:
                out[n] = c
            if n <= n_sin:
                out[n_cos + n] = sn


@numba.njit(cache=True, error_model="numpy", inline="always")
def axis_values(kind, size, lo, hi, u, out):
    """Write the ``size`` basis values at the scalar ``u`` into ``out[:size]``."""
    p0, p1, p2 = axis_params(kind, size, lo, hi)
    axis_values_fast(kind, size, p0, p1, p2, u, out)


@numba.njit(cache=True, error_model="numpy")
def _axis_values_batch(kind, size, lo, hi, u, out):
    for i in range(u.shape[0]):
        axis_values(kind, size, lo, hi, u[i], out[i])


@numba.njit(cache=True, error_model="numpy", inline="always")
def kron_into(vals, offsets, sizes, n_axes, out):
    """``out = kron(vals[off_0:off_0+n_0], ..., vals[off_last:...])`` (last axis fastest)."""
    out[0] = 1.0
    length = 1
    for a in range(n_axes):
        na = sizes[a]
        off = offsets[a]
        # Expand in place from the back so earlier entries are read before being overwritten.
        for i in range(length - 1, -1, -1):
            base = out[i]
            for j in range(na - 1, -1, -1):
                out[i * na + j] = base * vals[off + j]
        length *= na
    return length


@numba.njit(cache=True, error_model="numpy")
def axis_offsets(sizes):
    """Start of each axis's block in the concatenated per-axis values, and the total length."""
    n_axes = sizes.shape[0]
    offsets = np.zeros(n_axes, dtype=np.int64)
    for a in range(1, n_axes):
        offsets[a] = offsets[a - 1] + sizes[a - 1]
    return offsets, offsets[n_axes - 1] + sizes[n_axes - 1]


@numba.njit(cache=True, error_model="numpy")
def product_features_serial(kinds, sizes, los, his, z, out):
    """Serial feature matrix: ``out[i] = phi(z[i])`` (for use inside a prange over models)."""
    n_axes = kinds.shape[0]
    offsets, total = axis_offsets(sizes)
    vals = np.empty(total)
    for i in range(z.shape[0]):
        for a in range(n_axes):
            axis_values(kinds[a], sizes[a], los[a], his[a], z[i, a], vals[offsets[a] :])
        kron_into(vals, offsets, sizes, n_axes, out[i])


@numba.njit(parallel=True, cache=True, error_model="numpy")
def _product_features_batch(kinds, sizes, los, his, z, out):
    n_axes = kinds.shape[0]
    offsets, total = axis_offsets(sizes)
    for i in numba.prange(z.shape[0]):
        vals = np.empty(total)
        for a in range(n_axes):
            axis_values(kinds[a], sizes[a], los[a], his[a], z[i, a], vals[offsets[a] :])
        kron_into(vals, offsets, sizes, n_axes, out[i])


def check_data_and_features(data: object, features: object) -> np.ndarray:
    """``data`` as checked points (M, D) for a :class:`ProductFeatures` of spatial dimension D;
    ``TypeError``/``ValueError`` naming ``features`` or ``data`` otherwise."""
    data = check_points(data, "data")
    if not isinstance(features, ProductFeatures):
        raise TypeError("features must be a ProductFeatures")
    if features.dim != data.shape[1]:
        raise ValueError(f"features has dimension {features.dim} but data has D = {data.shape[1]}")
    return data
