"""PF-ODE sampling of a linear-feature ensemble (docs/math/conventions.md, docs/math/linear.md).

The denoiser ``D^_n(x, t) = W[n] phi(x, t)`` of a
:class:`~gtv.numerics.linear.model.LinearEnsemble` is evaluated **exactly** at every sample
(``lookup="exact"``, default) or, to reproduce the paper, at the nearest point of a uniform
spatial grid (``lookup="grid"``); the steps are those of :mod:`gtv.numerics.pfode`.

On the uniform time grid every sample of a step shares ``t``, so the time features are contracted
into the weights once per step: ``W_k = W . phi_t(t_k)`` (``D x F_space``). Memory is
O(models x samples x D); nothing is stored per step. Three denoiser kernels:

* the general one (any bases, any D): per sample, the axis values and their Kronecker product;
* 1-D Gaussian bumps: a block of samples at a time in Horner form (vectorized by LLVM);
* grid lookup: a table of ``D^`` on the grid per model and step.

Model ``n`` draws its start points from ``stream(seed, "sampling").spawn(N)[n]``
(:func:`gtv.numerics.pfode.initial_points`).
"""

from __future__ import annotations

import numba
import numpy as np

from gtv.numerics.checks import check_choice, check_count
from gtv.numerics.fastexp import exp_block
from gtv.numerics.features import (
    EXP_MINUS_4,
    axis_offsets,
    axis_params,
    axis_values_fast,
    kron_into,
)
from gtv.numerics.linear.model import LinearEnsemble
from gtv.numerics.pfode import (
    BLOCK,
    check_method,
    drift_coefficients,
    initial_points,
    make_pf_ode,
    pf_ode_time_grid,
    warn_if_diverged,
)

__all__ = ["LOOKUPS", "sample_linear_ensemble", "time_contracted_weights"]

LOOKUPS = ("exact", "grid")

# Largest |z| (in bump spacings from the central bump) at which the Horner form below is used:
# its intermediate values grow like exp(2 z**2) and must stay far below the double range.
_HORNER_ZMAX = 17.0
# Largest basis size for the Horner form: its coefficients carry exp(-2 j (j-1)) for
# j <= size/2, which must not underflow (j = 17 gives exp(-544), j = 20 would give exp(-760)).
_HORNER_MAX_SIZE = 34


def time_contracted_weights(ensemble: LinearEnsemble, ts: np.ndarray) -> np.ndarray:
    """``W_k[n] = W[n] . phi_t(t_k)`` for every grid time: shape (N, K+1, D, F_space)."""
    feats = ensemble.features
    phi_t = feats.time.evaluate(ts)  # (K+1, F_t)
    n, d, _ = ensemble.W.shape
    w = ensemble.W.reshape(n, d, feats.n_space_features, feats.time.size)
    return np.ascontiguousarray(np.einsum("ndst,kt->nkds", w, phi_t))


# -- general kernel: one point at a time --------------------------------------------------------
@numba.njit(cache=True, error_model="numpy", inline="always")
def _linear_point(args, n, k, x, out, ws):
    """``out = W_k[n] . phi_space(x)`` for one point ``x`` (D,)."""
    wts, kinds, sizes, params, offsets = args
    vals, phi = ws
    wk = wts[n, k]
    n_axes = kinds.shape[0]
    for a in range(n_axes):
        axis_values_fast(
            kinds[a], sizes[a], params[a, 0], params[a, 1], params[a, 2], x[a], vals[offsets[a] :]
        )
    if n_axes == 1:
        f = sizes[0]
        for c in range(wk.shape[0]):
            acc = 0.0
            for i in range(f):
                acc += wk[c, i] * vals[i]
            out[c] = acc
    else:
        f = kron_into(vals, offsets, sizes, n_axes, phi)
        for c in range(wk.shape[0]):
            acc = 0.0
            for i in range(f):
                acc += wk[c, i] * phi[i]
            out[c] = acc


@numba.njit(cache=True, error_model="numpy", inline="always")
def _linear_workspace(args, d):
    wts, _, sizes, _, offsets = args
    return np.empty(offsets[-1] + sizes[-1]), np.empty(wts.shape[3])


_pf_ode_linear = make_pf_ode(_linear_point, _linear_workspace, pointwise=True)


# -- 1-D Gaussian bumps: a block at a time ------------------------------------------------------
@numba.njit(cache=True, error_model="numpy")
def _gauss1d_far(u, wts, n, k, lo, inv_h, norm, size):
    """``D^(u)`` by the nearest-centre recurrence (for points far from the central bump)."""
    zz = (u - lo) * inv_h
    k0 = min(max(int(np.floor(zz + 0.5)), 0), size - 1)
    v = zz - k0
    phi0 = norm * np.exp(-2.0 * v * v)
    acc = wts[n, k, k0] * phi0
    if k0 < size - 1:
        r = np.exp(4.0 * v - 2.0)
        p = phi0
        for i in range(k0 + 1, size):
            p *= r
            r *= EXP_MINUS_4
            acc += wts[n, k, i] * p
    if k0 > 0:
        r = np.exp(-4.0 * v - 2.0)
        p = phi0
        for i in range(k0 - 1, -1, -1):
            p *= r
            r *= EXP_MINUS_4
            acc += wts[n, k, i] * p
    return acc


@numba.njit(cache=True, error_model="numpy", fastmath={"contract"}, inline="always")
def _gauss1d_block(args, n, k, z, m, out, work):
    """``out[0, :m] = D^(z[0, :m])`` of model ``n`` at step ``k`` for 1-D Gaussian bumps.

    With ``z = (u - c_kc)/h`` measured from the central bump ``kc``,
    ``phi_{kc+j} = phi_kc r**j exp(-2 j (j-1))`` with ``phi_kc = norm exp(-2 z**2)`` and
    ``r = exp(4 z - 2)`` (``exp(-4 z - 2) = exp(-4)/r`` going down), so
    ``D^ = phi_kc (P_up(r) + r_down P_down(r_down))`` with per-step coefficients
    ``cu[j] = w[kc+j] exp(-2 j (j-1))``, ``cd[j] = w[kc-j] exp(-2 j (j-1))``, evaluated by Horner's
    rule: two exponentials and ``size`` fused multiply-adds per point, in loops over the block
    that LLVM vectorizes. Points with ``|z| > _HORNER_ZMAX`` (where the Horner intermediates,
    which grow like ``exp(2 z**2)``, would leave the double range) use :func:`_gauss1d_far`.
    """
    cu, cd, wts, lo, inv_h, norm, kc = args
    u = z[0]
    res = out[0]
    y1, y2, e1, e2, pu, pd, scratch = work[0], work[1], work[2], work[3], work[4], work[5], work[6]
    n_far = 0
    for i in range(m):
        zi = (u[i] - lo) * inv_h - kc
        if abs(zi) > _HORNER_ZMAX:
            n_far += 1
        zi = min(max(zi, -_HORNER_ZMAX), _HORNER_ZMAX)
        y1[i] = -2.0 * zi * zi
        y2[i] = 4.0 * zi - 2.0
    exp_block(y1, e1, scratch, m)
    exp_block(y2, e2, scratch, m)
    nu = cu.shape[2]
    nd = cd.shape[2]
    c = cu[n, k, nu - 1]
    for i in range(m):
        pu[i] = c
    for j in range(nu - 2, -1, -1):
        c = cu[n, k, j]
        for i in range(m):
            pu[i] = pu[i] * e2[i] + c
    for i in range(m):
        pd[i] = 0.0
    if nd > 1:
        # r_down = exp(-4) / r once per point (y1 is free after the exponentials): a division
        # inside the Horner loop below cost one vdivpd per point and coefficient, the slowest
        # instruction of the kernel on AVX2 machines; the values are the same to the bit
        rdown = y1
        for i in range(m):
            rdown[i] = EXP_MINUS_4 / e2[i]
        c = cd[n, k, nd - 1]
        for i in range(m):
            pd[i] = c
        for j in range(nd - 2, 0, -1):
            c = cd[n, k, j]
            for i in range(m):
                pd[i] = pd[i] * rdown[i] + c
        for i in range(m):
            pd[i] *= rdown[i]
    for i in range(m):
        res[i] = norm * e1[i] * (pu[i] + pd[i])
    if n_far > 0:
        for i in range(m):
            if abs((u[i] - lo) * inv_h - kc) > _HORNER_ZMAX:
                res[i] = _gauss1d_far(u[i], wts, n, k, lo, inv_h, norm, wts.shape[2])


@numba.njit(cache=True, inline="always")
def _gauss1d_workspace(args, d):
    return np.empty((7, BLOCK))


_pf_ode_gauss1d = make_pf_ode(_gauss1d_block, _gauss1d_workspace, fastmath={"contract"})


def _horner_coefficients(w: np.ndarray, kc: int) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients of ``_gauss1d_block`` from weights ``w`` (..., F) and the centre ``kc``."""
    f = w.shape[-1]
    ju = np.arange(f - kc)
    jd = np.arange(kc + 1)
    cu = w[..., kc:] * np.exp(-2.0 * ju * (ju - 1))
    cd = w[..., kc::-1] * np.exp(-2.0 * jd * (jd - 1))
    return np.ascontiguousarray(cu), np.ascontiguousarray(cd)


# -- grid lookup ---------------------------------------------------------------------------------
@numba.njit(cache=True, error_model="numpy", inline="always")
def _grid_point(args, n, k, x, out, ws):
    """Nearest-grid-point value of the tabulated denoiser; ``tables[n, k]`` is (G**D, D)."""
    tables, lo, h, g = args
    d = x.shape[0]
    flat = 0
    for a in range(d):
        j = int(np.floor((x[a] - lo) / h + 0.5))
        j = min(max(j, 0), g - 1)
        flat = flat * g + j
    for c in range(d):
        out[c] = tables[n, k, flat, c]


_pf_ode_grid = make_pf_ode(_grid_point, pointwise=True)


# -- public API ---------------------------------------------------------------------------------
def sample_linear_ensemble(
    ensemble: LinearEnsemble,
    n_samples: int,
    *,
    eps: float | None = None,
    n_steps: int = 30,
    method: str = "euler",
    lookup: str = "exact",
    lookup_grid: tuple[float, float, int] = (-1.5, 1.5, 200),
    seed: object = 0,
    x_T: np.ndarray | None = None,
) -> np.ndarray:
    """Sample every model of a linear ensemble with the PF-ODE.

    Parameters
    ----------
    ensemble : LinearEnsemble
    n_samples : int
        Samples per model.
    eps : float, optional
        Final time (default: the ensemble's training ``eps``).
    n_steps : int, default 30
        Steps on the uniform grid ``linspace(T, eps, n_steps + 1)``.
    method : {"euler", "heun"}, default "euler"
    lookup : {"exact", "grid"}, default "exact"
        ``"exact"`` evaluates ``D^ = W phi`` at each sample; ``"grid"`` uses the value at the
        nearest point of the uniform grid ``lookup_grid = (lo, hi, G)`` per axis, as the paper's
        code does (kept only to reproduce it).
    seed : int or SeedSequence, default 0
        Model ``n`` draws ``x_T`` from ``stream(seed, "sampling").spawn(N)[n]``.
    x_T : ndarray, shape (N, n_samples, D), optional
        Initial points (overrides ``seed``).

    Returns
    -------
    ndarray, shape (N, n_samples, D)
        Samples at ``t = eps``.
    """
    if not isinstance(ensemble, LinearEnsemble):
        raise TypeError("ensemble must be a LinearEnsemble")
    check_method(method)
    check_choice(lookup, "lookup", LOOKUPS)
    sched = ensemble.schedule
    ts = pf_ode_time_grid(sched, ensemble.eps if eps is None else eps, n_steps)
    n_models, d = ensemble.n_models, ensemble.features.dim
    n_samples = check_count(n_samples, "n_samples")
    if lookup == "grid":
        lo, hi, g = float(lookup_grid[0]), float(lookup_grid[1]), int(lookup_grid[2])
        if not (lo < hi and g >= 2):
            raise ValueError(
                f"lookup_grid must be (lo, hi, G) with lo < hi and G >= 2, got {lookup_grid}"
            )
    x = initial_points(x_T, seed, n_models, n_samples, d, sched)
    start = np.abs(x).max()
    ax, bx = drift_coefficients(sched, ts)
    wts = time_contracted_weights(ensemble, ts)
    heun = method == "heun"
    feats = ensemble.features
    basis = feats.space[0]
    if lookup == "exact" and d == 1 and basis.kind == "gaussian" and basis.size <= _HORNER_MAX_SIZE:
        lo, inv_h, norm = axis_params(0, basis.size, basis.lo, basis.hi)
        kc = basis.size // 2
        w1 = np.ascontiguousarray(wts[:, :, 0, :])
        cu, cd = _horner_coefficients(w1, kc)
        _pf_ode_gauss1d(x, ts, ax, bx, heun, (cu, cd, w1, lo, inv_h, norm, kc))
    elif lookup == "exact":
        kinds, sizes, los, his = (a[:-1].copy() for a in feats.arrays())
        params = np.array([axis_params(*a) for a in zip(kinds, sizes, los, his, strict=True)])
        offsets, _ = axis_offsets(sizes)
        _pf_ode_linear(x, ts, ax, bx, heun, (wts, kinds, sizes, params, offsets))
    else:
        axis = np.linspace(lo, hi, g)
        pts = np.stack(np.meshgrid(*([axis] * d), indexing="ij"), axis=-1).reshape(-1, d)
        phi_s = feats.evaluate_space(pts)  # (G**D, Fs)
        tables = np.ascontiguousarray(np.einsum("nkds,gs->nkgd", wts, phi_s))
        _pf_ode_grid(x, ts, ax, bx, heun, (tables, lo, (hi - lo) / (g - 1), g))
    # the data lie inside the features' x_range
    radius = max(max(abs(a.lo), abs(a.hi)) for a in feats.space)
    warn_if_diverged(x, radius, sched, method, ts.size - 1, start)
    return x
