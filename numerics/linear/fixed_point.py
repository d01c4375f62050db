"""Fixed points by Anderson mixing, safeguarded by the plain iteration (docs/math/finite_fp.md).

:func:`anderson` solves ``x = g(x)`` for the monotone maps of the cavity equations
(:mod:`gtv.numerics.linear.cavity`): the plain iteration converges on its own, the mixing only
shortens it, and the returned point and its tolerance are those of the plain map.
:func:`anderson_reference` is the same iteration kept as lists of past values, with
:func:`mixing_coefficients` as its least-squares step (the check); :func:`residual_into`,
:func:`history_into` and :func:`extrapolate_into` are the numba passes of a step of
:func:`anderson` (plain-numpy references ``*_reference``, tests compare).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = [
    "MIXINGS",
    "anderson",
    "anderson_reference",
    "extrapolate_into",
    "extrapolate_into_reference",
    "history_into",
    "history_into_reference",
    "mixing_coefficients",
    "residual_into",
    "residual_into_reference",
]

#: Mixing schemes of the fixed points and the residual below which ``"delayed"`` starts mixing.
MIXINGS = {"safeguarded": None, "delayed": 0.3}

#: Restarts of the ``"delayed"`` mixing before the plain iteration takes over.
_MAX_RESTARTS = 20


def mixing_coefficients(fs: list[np.ndarray]) -> np.ndarray:
    """Anderson coefficients ``argmin_c |f - dF c|`` for the residual history ``fs`` (last entry
    ``f``; ``dF[:, i] = fs[i + 1] - fs[i]``).

    The least squares run on the small ``(k, k)`` normal equations ``dF^T dF c = dF^T f``
    (``k <= 4`` here: ``k (k + 3) / 2`` dot products of length ``F^2`` instead of an SVD of the
    ``(F^2, k)`` matrix), solved by a pseudo-inverse that drops directions below ``1e-13`` of the
    largest eigenvalue (nearly parallel differences, :func:`_normal_solve`). The coefficients only
    choose the extrapolated iterate; the fixed point and its tolerance are those of the plain map.
    """
    f = fs[-1]
    dF = [b - a for a, b in zip(fs[:-1], fs[1:], strict=True)]
    k = len(dF)
    D = np.empty((k, k))
    for i in range(k):
        for j in range(i + 1):
            D[i, j] = D[j, i] = dF[i] @ dF[j]
    return _normal_solve(D, np.array([d @ f for d in dF]))


def _normal_solve(D: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """``D^+ rhs`` for the symmetric normal matrix ``D``, without the eigen-directions below
    ``1e-13`` of the largest eigenvalue."""
    ev, U = np.linalg.eigh(D)
    keep = ev > 1e-13 * max(ev[-1], np.finfo(float).tiny)
    return U[:, keep] @ ((U[:, keep].T @ rhs) / ev[keep])


@numba.njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def residual_into(g: np.ndarray, x: np.ndarray, f: np.ndarray) -> tuple[float, float]:
    """``f = g - x`` (1-D float64) in one pass; returns ``max|f|`` and ``max|g|``."""
    f_max = 0.0
    g_max = 0.0
    for i in range(g.size):
        fi = g[i] - x[i]
        f[i] = fi
        f_max = max(f_max, abs(fi))
        g_max = max(g_max, abs(g[i]))
    return f_max, g_max


def residual_into_reference(g: np.ndarray, x: np.ndarray, f: np.ndarray) -> tuple[float, float]:
    """Plain-numpy :func:`residual_into`."""
    f[:] = g - x
    return float(np.max(np.abs(f))), float(np.max(np.abs(g)))


@numba.njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def history_into(g, f, prev_g, prev_f, dG, dF, s, n_valid):
    """One step of the mixing history (1-D float64 ``g``, ``f``, ``prev_g``, ``prev_f``; rows of
    ``dG``, ``dF`` (m, n)): ``dG[s] = g - prev_g``, ``dF[s] = f - prev_f``, then ``prev_g = g``,
    ``prev_f = f``; returns ``dF[s] . dF[j]`` and ``dF[j] . f`` for ``j < n_valid`` (the new
    row of the normal matrix and the right-hand side)."""
    n = g.size
    for i in range(n):
        dF[s, i] = f[i] - prev_f[i]
        dG[s, i] = g[i] - prev_g[i]
        prev_f[i] = f[i]
        prev_g[i] = g[i]
    row = np.zeros(n_valid)
    rhs = np.zeros(n_valid)
    new = dF[s]
    for j in range(n_valid):
        dj = dF[j]
        a = 0.0
        b = 0.0
        for i in range(n):
            a += new[i] * dj[i]
            b += dj[i] * f[i]
        row[j] = a
        rhs[j] = b
    return row, rhs


def history_into_reference(g, f, prev_g, prev_f, dG, dF, s, n_valid):
    """Plain-numpy :func:`history_into`."""
    dF[s] = f - prev_f
    dG[s] = g - prev_g
    prev_f[:] = f
    prev_g[:] = g
    return dF[:n_valid] @ dF[s], dF[:n_valid] @ f


@numba.njit(cache=True, error_model="numpy", fastmath={"contract"})
def extrapolate_into(g, dG, coef, out):
    """``out = g - sum_j coef[j] dG[j]`` (1-D float64, ``dG`` rows ``j < coef.size``)."""
    for i in range(g.size):
        out[i] = g[i]
    for j in range(coef.size):
        c = coef[j]
        dj = dG[j]
        for i in range(g.size):
            out[i] -= c * dj[i]


def extrapolate_into_reference(g, dG, coef, out):
    """Plain-numpy :func:`extrapolate_into`."""
    out[:] = g - coef @ dG[: coef.size]


class _Restarts:
    """When :func:`anderson` (and its reference) drops its history and when it takes a plain
    step instead of a mixed one (the policy of :func:`anderson`'s docstring, one home for both)."""

    def __init__(self, delay: float | None):
        self.delay = delay
        self.max = 3 if delay is None else _MAX_RESTARTS
        self.count = 0
        self.last = np.inf
        self.hold = False

    def step(self, err: float) -> tuple[bool, bool]:
        """``(drop the history, take a plain step)`` after a relative residual ``err``."""
        drop = err > self.last
        if drop:
            self.count += 1
            self.hold = self.delay is not None
        self.last = err
        plain = self.count >= self.max or self.hold or (self.delay is not None and err > self.delay)
        if plain:
            self.hold = False
        return drop, plain


def anderson(
    g, x0: np.ndarray, tol: float, max_iter: int, name: str, depth: int = 5,
    delay: float | None = None,
):  # fmt: skip
    """Fixed point ``x = g(x)`` by Anderson mixing, safeguarded by the plain iteration.

    Both cavity maps are monotone, so the plain iteration alone converges (monotonically from
    the start points used here); the mixing only shortens it. Whenever the residual grows the
    history is dropped (an extrapolated step can leave the monotone region and cycle).

    ``delay=None`` (the ``"safeguarded"`` mixing): mix from the first step; after three such
    restarts the plain iteration takes over for good. ``delay=d`` (``"delayed"``): plain steps
    while the relative residual is above ``d`` (the strongly non-linear start, where mixing
    restarts), then mixing; after a restart one plain step, then mixing again (at most
    ``_MAX_RESTARTS`` restarts, then plain steps).

    The history is kept as its ``depth - 1`` last differences of the map values and residuals
    (a ring of rows), with the normal matrix of the latter updated by one row a step (the
    coefficients of :func:`mixing_coefficients` on the last ``depth`` residuals, up to the order
    of the columns and round-off); the residual, the history update and the extrapolation are
    one numba pass each (:func:`residual_into`, :func:`history_into`, :func:`extrapolate_into`;
    ~12 numpy passes over ``F**2`` doubles a step before).
    """
    x = x0
    n = x0.size
    m = max(depth - 1, 1)
    dG, dF = np.empty((m, n)), np.empty((m, n))  # differences of map values / residuals
    prev_g, prev_f = np.empty(n), np.empty(n)  # the last map value / residual of the history
    D = np.empty((m, m))  # dF dF^T over the valid rows
    count = -1  # differences since the history was (re)started; -1: no previous point
    policy = _Restarts(delay)
    for it in range(1, max_iter + 1):
        gx = g(x)
        gv = np.ascontiguousarray(gx, dtype=float).ravel()
        fv = np.empty(n)
        f_max, g_max = residual_into(gv, np.ascontiguousarray(x, dtype=float).ravel(), fv)
        err = f_max / max(np.finfo(float).tiny, g_max)
        if err < tol:
            return gx, it
        drop, plain = policy.step(err)
        if drop:
            count = -1
        if plain:
            x = gx
            continue
        if count < 0 or depth < 2:
            prev_g[:], prev_f[:] = gv, fv
            count = 0
            x = gx
            continue
        # the rows of the history form a ring: slot s replaces the oldest difference
        s, n_valid = count % m, min(count + 1, m)
        row, rhs = history_into(gv, fv, prev_g, prev_f, dG, dF, s, n_valid)
        D[s, :n_valid] = D[:n_valid, s] = row
        count += 1
        coef = _normal_solve(D[:n_valid, :n_valid], rhs)
        xv = np.empty(n)
        extrapolate_into(gv, dG, coef, xv)  # x = g(x) - dG coef
        x = xv.reshape(gx.shape)
    raise ValueError(f"{name}: the cavity fixed point did not converge in {max_iter} iterations")


def anderson_reference(
    g, x0: np.ndarray, tol: float, max_iter: int, name: str, depth: int = 5,
    delay: float | None = None,
):  # fmt: skip
    """Plain-numpy :func:`anderson`: the last ``depth`` map values and residuals kept as lists,
    the coefficients from :func:`mixing_coefficients` on all of them at every step (the same
    iterates up to round-off; tests compare)."""
    x = x0
    xs, fs = [], []
    policy = _Restarts(delay)
    for it in range(1, max_iter + 1):
        gx = g(x)
        f = gx - x
        err = np.max(np.abs(f)) / max(np.finfo(float).tiny, np.max(np.abs(gx)))
        if err < tol:
            return gx, it
        drop, plain = policy.step(err)
        if drop:
            xs, fs = [], []
        if plain:
            x = gx
            continue
        xs.append(gx.ravel())
        fs.append(f.ravel())
        xs, fs = xs[-depth:], fs[-depth:]
        if len(fs) > 1:
            coef = mixing_coefficients(fs)
            x = gx.ravel().copy()
            for i, ci in enumerate(coef):  # x = g(x) - dG coef, dG[:, i] = xs[i + 1] - xs[i]
                x -= ci * (xs[i + 1] - xs[i])
            x = x.reshape(gx.shape)
        else:
            x = gx
    raise ValueError(f"{name}: the cavity fixed point did not converge in {max_iter} iterations")
