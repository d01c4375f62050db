"""Probability-flow ODE samplers (docs/math/conventions.md, §3.3).

The PF-ODE ``dx/dt = -beta_t x - D_t s(x, t)`` with the denoiser parameterization
``s = (alpha_t D^(x, t) - x) / sigma_t**2`` has drift ``pf_x_coeff(t) x - pf_mean_coeff(t) D^``.
It is integrated from ``t = T`` down to ``t = eps`` on the uniform grid
``t = linspace(T, eps, n_steps + 1)`` (the paper's default: Euler, 30 steps), starting from
``x_T ~ N(0, sigma_T**2 I)``.

Denoisers:

* a :class:`~gtv.numerics.linear.model.LinearEnsemble`, evaluated **exactly** at every sample
  (``lookup="exact"``, default) or, to reproduce the paper, at the nearest point of a uniform
  spatial grid (``lookup="grid"``);
* the exact Bayes denoiser ``D^ = mu_bar`` (posterior mean over the training points).

On the uniform time grid every sample of a step shares ``t``, so the time features are contracted
into the weights once per step: ``W_k = W . phi_t(t_k)`` (``D x F_space``). Memory is
O(models x samples x D); nothing is stored per step. Each model draws its initial points from its
own stream ``SeedSequence([seed, 1]).spawn(N)[n]``; results do not depend on the thread count.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from gtv.numerics.checks import check_eps, check_points
from gtv.numerics.fastexp import exp_block
from gtv.numerics.features import (
    _EXP_MINUS_4,
    axis_offsets,
    axis_params,
    axis_values_fast,
    kron_into,
)
from gtv.numerics.linear.model import LinearEnsemble
from gtv.numerics.posterior import posterior_mean_into
from gtv.numerics.schedules import NumericSchedule, resolve_schedule

__all__ = [
    "METHODS",
    "initial_points",
    "pf_ode_time_grid",
    "sample_exact_denoiser",
    "sample_linear_ensemble",
    "sampling_rngs",
    "time_contracted_weights",
]

METHODS = ("euler", "heun")

# Largest |z| (in bump spacings from the central bump) at which the Horner form below is used:
# its intermediate values grow like exp(2 z**2) and must stay far below the double range.
_HORNER_ZMAX = 17.0
# Largest basis size for the Horner form: its coefficients carry exp(-2 j (j-1)) for
# j <= size/2, which must not underflow (j = 17 gives exp(-544), j = 20 would give exp(-760)).
_HORNER_MAX_SIZE = 34
# Samples advanced together through each step (see _pf_ode_gauss1d).
_SAMPLE_BLOCK = 256


def pf_ode_time_grid(schedule: NumericSchedule, eps: float, n_steps: int = 30) -> np.ndarray:
    """The grid ``linspace(T, eps, n_steps + 1)``, checked for finite PF-ODE coefficients."""
    eps = check_eps(eps, schedule.T)
    if isinstance(n_steps, bool) or int(n_steps) != n_steps or n_steps < 1:
        raise ValueError(f"n_steps must be an integer >= 1, got {n_steps!r}")
    ts = np.linspace(schedule.T, eps, int(n_steps) + 1)
    coeffs = np.concatenate([schedule.pf_x_coeff(ts), schedule.pf_mean_coeff(ts)])
    if not np.all(np.isfinite(coeffs)):
        raise ValueError(
            f"T: the PF-ODE drift of schedule {schedule.name!r} is not finite on [eps, T] = "
            f"[{eps:g}, {schedule.T:g}] (for linear-variance use T < 1)"
        )
    return ts


def sampling_rngs(seed: int, n_models: int) -> list[np.random.Generator]:
    """Per-model generators for initial points: ``SeedSequence([seed, 1]).spawn(n_models)``.

    (Training uses ``SeedSequence(seed)``; the extra word keeps the two families independent even
    when the same seed is passed to both.)
    """
    return [
        np.random.default_rng(s) for s in np.random.SeedSequence([int(seed), 1]).spawn(n_models)
    ]


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def time_contracted_weights(ensemble: LinearEnsemble, ts: np.ndarray) -> np.ndarray:
    """``W_k[n] = W[n] . phi_t(t_k)`` for every grid time: shape (N, K+1, D, F_space)."""
    feats = ensemble.features
    phi_t = feats.time.evaluate(ts)  # (K+1, F_t)
    n, d, _ = ensemble.W.shape
    w = ensemble.W.reshape(n, d, feats.n_space_features, feats.time.size)
    return np.ascontiguousarray(np.einsum("ndst,kt->nkds", w, phi_t))


def _initial_points(rngs, n_samples: int, dim: int, sigma_T: float) -> np.ndarray:
    return np.stack([sigma_T * rng.standard_normal((n_samples, dim)) for rng in rngs])


def initial_points(
    x_T: object,
    seed: int,
    n_models: int,
    n_samples: int,
    dim: int,
    schedule: NumericSchedule,
) -> np.ndarray:
    """PF-ODE starting points at ``t = T``: shape (n_models, n_samples, dim), C-contiguous.

    ``x_T`` (checked for shape and finiteness, and copied) when given; otherwise model ``n`` draws
    ``N(0, sigma_T**2 I)`` from ``sampling_rngs(seed, n_models)[n]``.
    """
    if x_T is None:
        sigma_T = math.sqrt(float(schedule.sigma2(schedule.T)))
        return _initial_points(sampling_rngs(seed, n_models), n_samples, dim, sigma_T)
    x = np.array(x_T, dtype=np.float64, order="C")
    if x.shape != (n_models, n_samples, dim):
        raise ValueError(f"x_T must have shape {(n_models, n_samples, dim)}, got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("x_T must be finite")
    return x


@numba.njit(cache=True, error_model="numpy", inline="always")
def _euler_step(x, dn, a, b, dt, out, m):
    """``out[:m] = x + dt (a x - b D^)``: an Euler step of the PF-ODE (also Heun's predictor)."""
    for c in range(m):
        out[c] = x[c] + dt * (a * x[c] - b * dn[c])


@numba.njit(cache=True, error_model="numpy", inline="always")
def _heun_correct(x, xt, dn, dn2, a0, b0, a1, b1, dt, m):
    """Heun's corrector in place: ``x += dt/2 (f(x, t_k) + f(xt, t_k+1))``."""
    for c in range(m):
        f0 = a0 * x[c] - b0 * dn[c]
        f1 = a1 * xt[c] - b1 * dn2[c]
        x[c] = x[c] + 0.5 * dt * (f0 + f1)


# -- kernels ------------------------------------------------------------------------------------
@numba.njit(cache=True, error_model="numpy", inline="always")
def _linear_denoise(wk, kinds, sizes, params, offsets, vals, phi, x, out):
    """``out = wk . phi_space(x)`` for one point; ``wk`` is (D, F_space)."""
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


@numba.njit(parallel=True, cache=True, error_model="numpy")
def _pf_ode_linear(x, wts, kinds, sizes, los, his, ts, ax, bx, heun):
    """Integrate all samples of all models in place. ``x``: (N, S, D); ``wts``: (N, K+1, D, Fs)."""
    n_models, n_samples, d = x.shape
    n_steps = ts.shape[0] - 1
    offsets, total = axis_offsets(sizes)
    params = np.empty((kinds.shape[0], 3))
    for a in range(kinds.shape[0]):
        params[a, 0], params[a, 1], params[a, 2] = axis_params(kinds[a], sizes[a], los[a], his[a])
    fs = wts.shape[3]
    for n in numba.prange(n_models):
        vals = np.empty(total)
        phi = np.empty(fs)
        dn = np.empty(d)
        dn2 = np.empty(d)
        xt = np.empty(d)
        for i0 in range(0, n_samples, _SAMPLE_BLOCK):
            for k in range(n_steps):
                dt = ts[k + 1] - ts[k]
                for i in range(i0, min(n_samples, i0 + _SAMPLE_BLOCK)):
                    xi = x[n, i]
                    _linear_denoise(wts[n, k], kinds, sizes, params, offsets, vals, phi, xi, dn)
                    if heun:
                        _euler_step(xi, dn, ax[k], bx[k], dt, xt, d)
                        _linear_denoise(
                            wts[n, k + 1], kinds, sizes, params, offsets, vals, phi, xt, dn2
                        )
                        _heun_correct(xi, xt, dn, dn2, ax[k], bx[k], ax[k + 1], bx[k + 1], dt, d)
                    else:
                        _euler_step(xi, dn, ax[k], bx[k], dt, xi, d)


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
            r *= _EXP_MINUS_4
            acc += wts[n, k, i] * p
    if k0 > 0:
        r = np.exp(-4.0 * v - 2.0)
        p = phi0
        for i in range(k0 - 1, -1, -1):
            p *= r
            r *= _EXP_MINUS_4
            acc += wts[n, k, i] * p
    return acc


@numba.njit(cache=True, error_model="numpy", fastmath={"contract"}, inline="always")
def _gauss1d_denoise_block(u, m, out, cu, cd, wts, n, k, lo, inv_h, norm, kc, work):
    """``out[:m] = D^(u[:m])`` of model ``n`` at step ``k`` for 1-D Gaussian bumps.

    With ``z = (u - c_kc)/h`` measured from the central bump ``kc``,
    ``phi_{kc+j} = phi_kc r**j exp(-2 j (j-1))`` with ``phi_kc = norm exp(-2 z**2)`` and
    ``r = exp(4 z - 2)`` (``exp(-4 z - 2) = exp(-4)/r`` going down), so
    ``D^ = phi_kc (P_up(r) + r_down P_down(r_down))`` with per-step coefficients
    ``cu[j] = w[kc+j] exp(-2 j (j-1))``, ``cd[j] = w[kc-j] exp(-2 j (j-1))``, evaluated by Horner's
    rule: two exponentials and ``size`` fused multiply-adds per point, in loops over the block
    that LLVM vectorizes. Points with ``|z| > _HORNER_ZMAX`` (where the Horner intermediates,
    which grow like ``exp(2 z**2)``, would leave the double range) use :func:`_gauss1d_far`.
    """
    y1, y2, e1, e2, pu, pd, scratch = work[0], work[1], work[2], work[3], work[4], work[5], work[6]
    n_far = 0
    for i in range(m):
        z = (u[i] - lo) * inv_h - kc
        if abs(z) > _HORNER_ZMAX:
            n_far += 1
        z = min(max(z, -_HORNER_ZMAX), _HORNER_ZMAX)
        y1[i] = -2.0 * z * z
        y2[i] = 4.0 * z - 2.0
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
        c = cd[n, k, nd - 1]
        for i in range(m):
            pd[i] = c
        for j in range(nd - 2, 0, -1):
            c = cd[n, k, j]
            for i in range(m):
                pd[i] = pd[i] * (_EXP_MINUS_4 / e2[i]) + c
        for i in range(m):
            pd[i] *= _EXP_MINUS_4 / e2[i]
    for i in range(m):
        out[i] = norm * e1[i] * (pu[i] + pd[i])
    if n_far > 0:
        for i in range(m):
            if abs((u[i] - lo) * inv_h - kc) > _HORNER_ZMAX:
                out[i] = _gauss1d_far(u[i], wts, n, k, lo, inv_h, norm, wts.shape[2])


@numba.njit(parallel=True, cache=True, error_model="numpy", fastmath={"contract"})
def _pf_ode_gauss1d(x, cu, cd, wts, lo, inv_h, norm, kc, ts, ax, bx, heun):
    """1-D Gaussian-feature ensemble: integrate ``x`` (N, S) in place.

    Blocks of samples advance together through each step (see ``_gauss1d_denoise_block``).
    """
    n_models, n_samples = x.shape
    n_steps = ts.shape[0] - 1
    b = _SAMPLE_BLOCK
    for n in numba.prange(n_models):
        work = np.empty((7, b))
        u = np.empty(b)
        ut = np.empty(b)
        d0 = np.empty(b)
        d1 = np.empty(b)
        for i0 in range(0, n_samples, b):
            m = min(n_samples, i0 + b) - i0
            for i in range(m):
                u[i] = x[n, i0 + i]
            for k in range(n_steps):
                dt = ts[k + 1] - ts[k]
                _gauss1d_denoise_block(u, m, d0, cu, cd, wts, n, k, lo, inv_h, norm, kc, work)
                if heun:
                    _euler_step(u, d0, ax[k], bx[k], dt, ut, m)
                    _gauss1d_denoise_block(
                        ut, m, d1, cu, cd, wts, n, k + 1, lo, inv_h, norm, kc, work
                    )
                    _heun_correct(u, ut, d0, d1, ax[k], bx[k], ax[k + 1], bx[k + 1], dt, m)
                else:
                    _euler_step(u, d0, ax[k], bx[k], dt, u, m)
            for i in range(m):
                x[n, i0 + i] = u[i]


def _horner_coefficients(w: np.ndarray, kc: int) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients of ``_gauss1d_denoise`` from weights ``w`` (..., F) and the centre ``kc``."""
    f = w.shape[-1]
    ju = np.arange(f - kc)
    jd = np.arange(kc + 1)
    cu = w[..., kc:] * np.exp(-2.0 * ju * (ju - 1))
    cd = w[..., kc::-1] * np.exp(-2.0 * jd * (jd - 1))
    return np.ascontiguousarray(cu), np.ascontiguousarray(cd)


@numba.njit(cache=True, error_model="numpy", inline="always")
def _grid_lookup(table, lo, h, g, x, out):
    """Nearest-grid-point value of a tabulated denoiser; ``table`` is (g**D, D)."""
    d = x.shape[0]
    flat = 0
    for a in range(d):
        j = int(np.floor((x[a] - lo) / h + 0.5))
        j = min(max(j, 0), g - 1)
        flat = flat * g + j
    for c in range(d):
        out[c] = table[flat, c]


@numba.njit(parallel=True, cache=True, error_model="numpy")
def _pf_ode_grid(x, tables, lo, h, g, ts, ax, bx, heun):
    """As :func:`_pf_ode_linear`, the denoiser tabulated on a grid: tables (N, K+1, G**D, D)."""
    n_models, n_samples, d = x.shape
    n_steps = ts.shape[0] - 1
    for n in numba.prange(n_models):
        dn = np.empty(d)
        dn2 = np.empty(d)
        xt = np.empty(d)
        for i0 in range(0, n_samples, _SAMPLE_BLOCK):
            for k in range(n_steps):
                dt = ts[k + 1] - ts[k]
                for i in range(i0, min(n_samples, i0 + _SAMPLE_BLOCK)):
                    xi = x[n, i]
                    _grid_lookup(tables[n, k], lo, h, g, xi, dn)
                    if heun:
                        _euler_step(xi, dn, ax[k], bx[k], dt, xt, d)
                        _grid_lookup(tables[n, k + 1], lo, h, g, xt, dn2)
                        _heun_correct(xi, xt, dn, dn2, ax[k], bx[k], ax[k + 1], bx[k + 1], dt, d)
                    else:
                        _euler_step(xi, dn, ax[k], bx[k], dt, xi, d)


@numba.njit(parallel=True, cache=True, error_model="numpy")
def _pf_ode_bayes(x, mu, ts, alpha, inv_two_sigma2, ax, bx, heun):
    """Integrate samples ``x`` (S, D) in place with the exact Bayes denoiser of points ``mu``."""
    n_samples, d = x.shape
    n_steps = ts.shape[0] - 1
    for i in numba.prange(n_samples):
        dn = np.empty(d)
        dn2 = np.empty(d)
        xt = np.empty(d)
        xi = x[i]
        for k in range(n_steps):
            dt = ts[k + 1] - ts[k]
            posterior_mean_into(mu, xi, alpha[k], inv_two_sigma2[k], dn)
            if heun:
                _euler_step(xi, dn, ax[k], bx[k], dt, xt, d)
                posterior_mean_into(mu, xt, alpha[k + 1], inv_two_sigma2[k + 1], dn2)
                _heun_correct(xi, xt, dn, dn2, ax[k], bx[k], ax[k + 1], bx[k + 1], dt, d)
            else:
                _euler_step(xi, dn, ax[k], bx[k], dt, xi, d)


# -- public API ---------------------------------------------------------------------------------
def _check_n_samples(n_samples: object) -> int:
    if isinstance(n_samples, bool) or int(n_samples) != n_samples or n_samples < 1:
        raise ValueError(f"n_samples must be an integer >= 1, got {n_samples!r}")
    return int(n_samples)


def sample_linear_ensemble(
    ensemble: LinearEnsemble,
    n_samples: int,
    *,
    eps: float | None = None,
    n_steps: int = 30,
    method: str = "euler",
    lookup: str = "exact",
    lookup_grid: tuple[float, float, int] = (-1.5, 1.5, 200),
    seed: int = 0,
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
    seed : int, default 0
        Model ``n`` draws ``x_T`` from ``SeedSequence([seed, 1]).spawn(N)[n]``.
    x_T : ndarray, shape (N, n_samples, D), optional
        Initial points (overrides ``seed``).

    Returns
    -------
    ndarray, shape (N, n_samples, D)
        Samples at ``t = eps``.
    """
    if not isinstance(ensemble, LinearEnsemble):
        raise TypeError("ensemble must be a LinearEnsemble")
    _check_method(method)
    sched = ensemble.schedule
    ts = pf_ode_time_grid(sched, ensemble.eps if eps is None else eps, n_steps)
    n_models, d = ensemble.n_models, ensemble.features.dim
    n_samples = _check_n_samples(n_samples)
    x = initial_points(x_T, seed, n_models, n_samples, d, sched)
    ax, bx = sched.pf_x_coeff(ts), sched.pf_mean_coeff(ts)
    wts = time_contracted_weights(ensemble, ts)
    heun = method == "heun"
    feats = ensemble.features
    horner = (
        d == 1 and feats.space[0].kind == "gaussian" and feats.space[0].size <= _HORNER_MAX_SIZE
    )
    if lookup == "exact" and horner:
        basis = feats.space[0]
        lo, inv_h, norm = axis_params(0, basis.size, basis.lo, basis.hi)
        kc = basis.size // 2
        w1 = np.ascontiguousarray(wts[:, :, 0, :])
        cu, cd = _horner_coefficients(w1, kc)
        x1 = np.ascontiguousarray(x[:, :, 0])
        _pf_ode_gauss1d(x1, cu, cd, w1, lo, inv_h, norm, kc, ts, ax, bx, heun)
        x = x1[:, :, None]
    elif lookup == "exact":
        kinds, sizes, los, his = feats._arrays()
        _pf_ode_linear(x, wts, kinds[:-1], sizes[:-1], los[:-1], his[:-1], ts, ax, bx, heun)
    elif lookup == "grid":
        lo, hi, g = float(lookup_grid[0]), float(lookup_grid[1]), int(lookup_grid[2])
        if not (lo < hi and g >= 2):
            raise ValueError(
                f"lookup_grid must be (lo, hi, G) with lo < hi and G >= 2, got {lookup_grid}"
            )
        axis = np.linspace(lo, hi, g)
        pts = np.stack(np.meshgrid(*([axis] * d), indexing="ij"), axis=-1).reshape(-1, d)
        phi_s = _space_features(feats, pts)  # (G**D, Fs)
        tables = np.ascontiguousarray(np.einsum("nkds,gs->nkgd", wts, phi_s))
        _pf_ode_grid(x, tables, lo, (hi - lo) / (g - 1), g, ts, ax, bx, heun)
    else:
        raise ValueError(f"lookup must be 'exact' or 'grid', got {lookup!r}")
    return x


def _space_features(features, pts: np.ndarray) -> np.ndarray:
    mats = [a.evaluate(pts[:, j]) for j, a in enumerate(features.space)]
    out = mats[0]
    for m in mats[1:]:
        out = (out[:, :, None] * m[:, None, :]).reshape(out.shape[0], -1)
    return out


def sample_exact_denoiser(
    data: object,
    n_samples: int,
    eps: float,
    schedule: object = "vp-linear",
    *,
    n_steps: int = 30,
    method: str = "euler",
    seed: int = 0,
    x_T: np.ndarray | None = None,
) -> np.ndarray:
    """PF-ODE samples with the exact Bayes denoiser ``D^ = mu_bar`` of the training points.

    With the exact score the continuous-time flow maps ``N(0, sigma_T**2)`` (approximately
    ``p(x|T)``) to ``p(x|eps)``; the discrete sampler shows the discretization error.

    Returns
    -------
    ndarray, shape (n_samples, D)
    """
    sched = resolve_schedule(schedule)
    mu = check_points(data, "data")
    _check_method(method)
    ts = pf_ode_time_grid(sched, eps, n_steps)
    n_samples = _check_n_samples(n_samples)
    if x_T is None:
        (rng,) = sampling_rngs(seed, 1)
        x = np.sqrt(sched.sigma2(sched.T)) * rng.standard_normal((n_samples, mu.shape[1]))
    else:
        x = check_points(x_T, "x_T", dim=mu.shape[1]).copy()
    _pf_ode_bayes(
        x,
        mu,
        ts,
        np.asarray(sched.alpha(ts), dtype=float),
        0.5 / np.asarray(sched.sigma2(ts), dtype=float),
        sched.pf_x_coeff(ts),
        sched.pf_mean_coeff(ts),
        method == "heun",
    )
    return x
