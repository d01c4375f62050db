"""Fixed points by Anderson mixing, safeguarded by the plain iteration (docs/math/finite_fp.md).

:func:`anderson` solves ``x = g(x)`` for the monotone maps of the cavity equations
(:mod:`gtv.numerics.linear.cavity`): the plain iteration converges on its own, the mixing only
shortens it, and the returned point and its tolerance are those of the plain map.
:func:`mixing_coefficients` is the least-squares step of the mixing.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MIXINGS", "anderson", "mixing_coefficients"]

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

    The history is kept as its ``depth - 1`` last differences of the map values and residuals,
    with the normal matrix of the latter updated by one row a step (the values and coefficients
    of :func:`mixing_coefficients` on the last ``depth`` residuals, to the bit).
    """
    x = x0
    prev = None  # the last (g(x), residual) of the history, raveled
    dG, dF = [], []  # differences of consecutive map values / residuals, oldest first
    D = np.empty((0, 0))  # dF^T dF
    last = np.inf
    restarts = 0
    max_restarts = 3 if delay is None else _MAX_RESTARTS
    hold = False
    for it in range(1, max_iter + 1):
        gx = g(x)
        f = gx - x
        err = np.max(np.abs(f)) / max(np.finfo(float).tiny, np.max(np.abs(gx)))
        if err < tol:
            return gx, it
        if err > last:
            prev, dG, dF, D = None, [], [], np.empty((0, 0))
            restarts += 1
            hold = delay is not None
        last = err
        if restarts >= max_restarts or hold or (delay is not None and err > delay):
            hold = False
            x = gx
            continue
        gv, fv = gx.ravel(), f.ravel()
        if prev is None:
            prev = gv, fv
            x = gx
            continue
        dG.append(gv - prev[0])
        dF.append(fv - prev[1])
        prev = gv, fv
        if len(dF) > depth - 1:
            del dG[0], dF[0]
            D = D[1:, 1:]
        k = len(dF)
        row = np.array([dF[-1] @ dF[j] for j in range(k)])
        D = np.block([[D, row[:-1, None]], [row[None, :-1], row[-1:, None]]])
        coef = _normal_solve(D, np.array([d @ fv for d in dF]))
        xv = gv.copy()  # x = g(x) - dG coef
        step = np.empty_like(xv)
        for ci, d in zip(coef, dG, strict=True):
            np.multiply(d, ci, out=step)
            xv -= step
        x = xv.reshape(gx.shape)
    raise ValueError(f"{name}: the cavity fixed point did not converge in {max_iter} iterations")
