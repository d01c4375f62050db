"""Population moments of linear-feature models by deterministic quadrature (docs/math/linear.md).

The moments behind :class:`gtv.numerics.linear.theory.LinearTheory`: ``Sigma = E[lam phi phi^T]``,
``A = E[lam mu_bar phi^T]``, ``A_x0 = E[lam x0 phi^T]`` and the second moments of ``g``
(proxy and misfit parts), with the notation of :mod:`gtv.numerics.linear.theory`.

Quadrature (no sampling)
------------------------
``t``: composite Gauss-Legendre, ``n_t`` nodes per panel; panels grow geometrically from ``eps``
(ratio 1.25, since ``lam ~ 1/t``) up to a maximum width (``(T - eps)/32`` and below the time
features' length scale), then stay uniform. ``x``: per mixture component
``x = alpha_t mu_m + sigma_t xi``, ``xi`` on a tensor Gauss-Hermite grid (probabilists',
``n_hermite`` per axis; product weights below 1e-25 dropped), averaged over ``m``. The default
``n_hermite`` resolves the narrowest spatial feature product at the largest ``sigma_t`` (node
spacing ``<= 0.75 * width / sigma_max`` and ``<= 0.15``); it grows like ``(sigma_max/width)**2``.

The product structure ``phi = phi_space(x) (x) phi_time(t)`` is used: at each time node the numba
kernel accumulates only *spatial* moments (``F_s x F_s`` blocks, parallel over time nodes, fixed
summation order, so results do not depend on the thread count), and a matrix product over time
nodes assembles the ``F x F`` (and ``FD x FD``) moments. The plain-numpy reference
(``backend="numpy"``) forms every full feature vector and the posterior with
:func:`gtv.numerics.posterior.posterior_stats` and sums directly. Cost of the kernel:
``n_time_nodes * M * n_xi * (3 F_s**2 D**2 / 2 + M D**2)``; with many training points or
``D >= 2`` with narrow features the per-component Gauss-Hermite grid becomes the bottleneck.
"""

from __future__ import annotations

import numba
import numpy as np

from gtv.numerics.blas import serial_blas
from gtv.numerics.features import ProductFeatures, axis_offsets, axis_values, kron_into
from gtv.numerics.posterior import posterior_stats, posterior_weights_into

__all__ = [
    "PSD_RTOL",
    "check_psd",
    "moments_numba",
    "moments_reference",
    "population_solution",
    "time_panel_width",
]

#: Negative eigenvalues below ``PSD_RTOL * (largest eigenvalue of the second moment)`` are
#: round-off; anything more negative raises.
PSD_RTOL = 1e-10
#: Memory budget for the per-time-node spatial moments held at once.
_CHUNK_BYTES = 256 * 2**20


def time_panel_width(features: ProductFeatures, eps: float, T: float) -> float:
    """Largest panel width: (T - eps)/32 and at most one length scale of the time features."""
    ax = features.time
    width = (T - eps) / 32
    if ax.kind == "gaussian" and ax.size > 1:
        width = min(width, ax.spacing / 2)  # one standard deviation
    elif ax.kind == "fourier" and ax.size > 1:
        n_max = max(ax.size - 1 - (ax.size - 1) // 2, (ax.size - 1) // 2)
        width = min(width, (ax.hi - ax.lo) / n_max / 4)  # a quarter wavelength
    return width


# -- numba kernel -------------------------------------------------------------------------------
@numba.njit(cache=True, error_model="numpy", inline="always")
def _posterior_into(mu, x, a, inv2s2, logit, mbar, cov):
    """Posterior mean and covariance over the training points at one ``x`` (two-pass, centred)."""
    n_pts, d = mu.shape
    tot = posterior_weights_into(mu, x, a, inv2s2, logit)
    for j in range(d):
        mbar[j] = 0.0
    for m in range(n_pts):
        logit[m] /= tot
        for j in range(d):
            mbar[j] += logit[m] * mu[m, j]
    for j in range(d):
        for k in range(d):
            cov[j, k] = 0.0
    for m in range(n_pts):
        w = logit[m]
        for j in range(d):
            dj = mu[m, j] - mbar[j]
            for k in range(j + 1):
                cov[j, k] += w * dj * (mu[m, k] - mbar[k])
    for j in range(d):
        for k in range(j):
            cov[k, j] = cov[j, k]


@numba.njit(parallel=True, cache=True, error_model="numpy")
def _spatial_moments_numba(kinds, sizes, los, his, mu, alpha, sigma, xi, xw, wt, do_misfit):
    """Per time node ``k``: spatial moments over ``x ~ p(x | t_k)`` (a Gaussian mixture).

    First pass (``do_misfit=False``): ``S[k] = E[phi_s phi_s^T]``, ``Ab[k] = E[mu_bar phi_s^T]``,
    ``A0[k] = E[x0 phi_s^T]``, ``Kp[k, i, d, j, e] = E[phi_i phi_j Sigma_post_de]``. Misfit pass
    (``do_misfit=True``, only ``Km``): ``Km[k, i, d, j, e] = E[phi_i phi_j m_d m_e]`` with
    ``m = mu_bar - wt[k] phi_s`` (``wt[k]``: ``W_inf`` contracted with ``phi_time(t_k)``).

    Each weighted Gram is accumulated in the lower triangle of a contiguous ``(F_s, F_s)`` block
    per time node (for ``Kp``/``Km`` one block per pair ``e <= d`` of the ``D x D`` factor; the
    rows are contiguous loops the compiler vectorizes, no array views inside the loop), then
    mirrored into the output layout; the summation order is fixed per time node.
    """
    n_t = alpha.shape[0]
    n_pts, d = mu.shape
    n_axes = kinds.shape[0]
    fs = 1
    for ax in range(n_axes):
        fs *= sizes[ax]
    nq = xi.shape[0]
    offsets, total = axis_offsets(sizes)
    n1 = 1 if do_misfit else n_t  # pass 1 arrays (unused in the misfit pass)
    S = np.zeros((n1, fs, fs))
    Ab = np.zeros((n1, d, fs))
    A0 = np.zeros((n1, d, fs))
    Kp = np.zeros((n1, fs, d, fs, d))
    Km = np.zeros((n_t, fs, d, fs, d)) if do_misfit else np.zeros((1, 1, 1, 1, 1))
    inv_m = 1.0 / n_pts
    for k in numba.prange(n_t):
        vals = np.empty(total)
        phi = np.empty(fs)
        x = np.empty(d)
        logit = np.empty(n_pts)
        mbar = np.empty(d)
        cov = np.empty((d, d))
        r = np.zeros(d)
        G = np.zeros((d, d, fs, fs))  # the (d, e) blocks of Kp[k] or Km[k], lower triangles
        Sk = np.zeros((fs, fs))
        a = alpha[k]
        s = sigma[k]
        inv2s2 = 0.5 / (s * s)
        for m in range(n_pts):
            for q in range(nq):
                w = xw[q] * inv_m
                for j in range(d):
                    x[j] = a * mu[m, j] + s * xi[q, j]
                for ax in range(n_axes):
                    axis_values(kinds[ax], sizes[ax], los[ax], his[ax], x[ax], vals[offsets[ax] :])
                kron_into(vals, offsets, sizes, n_axes, phi)
                _posterior_into(mu, x, a, inv2s2, logit, mbar, cov)
                if do_misfit:
                    for j in range(d):
                        acc = 0.0
                        for i in range(fs):
                            acc += wt[k, j, i] * phi[i]
                        r[j] = mbar[j] - acc
                    for j in range(d):
                        for e in range(j + 1):
                            wr = w * r[j] * r[e]
                            for i in range(fs):
                                wi = wr * phi[i]
                                for i2 in range(i + 1):
                                    G[j, e, i, i2] += wi * phi[i2]
                    continue
                for i in range(fs):
                    wi = w * phi[i]
                    for j in range(d):
                        Ab[k, j, i] += wi * mbar[j]
                        A0[k, j, i] += wi * mu[m, j]
                    for i2 in range(i + 1):
                        Sk[i, i2] += wi * phi[i2]
                for j in range(d):
                    for e in range(j + 1):
                        wc = w * cov[j, e]
                        for i in range(fs):
                            wi = wc * phi[i]
                            for i2 in range(i + 1):
                                G[j, e, i, i2] += wi * phi[i2]
        K = Km if do_misfit else Kp
        for j in range(d):
            for e in range(j + 1):
                for i in range(fs):
                    for i2 in range(i + 1):
                        g = G[j, e, i, i2]
                        K[k, i, j, i2, e] = g
                        K[k, i2, e, i, j] = g
                        K[k, i, e, i2, j] = g
                        K[k, i2, j, i, e] = g
        if not do_misfit:
            for i in range(fs):
                for i2 in range(i + 1):
                    S[k, i, i2] = Sk[i, i2]
                    S[k, i2, i] = Sk[i, i2]
    return S, Ab, A0, Kp, Km


# -- assembly over time nodes -------------------------------------------------------------------
def _assemble4(c: np.ndarray, K: np.ndarray, phit: np.ndarray) -> np.ndarray:
    """``sum_k c_k K[k] (x) phi_t phi_t^T`` in the (F, D, F, D) layout (F index = i F_t + a)."""
    n_t, fs, d = K.shape[0], K.shape[1], K.shape[2]
    ft = phit.shape[1]
    left = (K * c[:, None, None, None, None]).reshape(n_t, -1)
    right = (phit[:, :, None] * phit[:, None, :]).reshape(n_t, -1)
    with serial_blas():  # see LinearTheory.__post_init__
        out = left.T @ right
    out = out.reshape(fs, d, fs, d, ft, ft).transpose(0, 4, 1, 2, 5, 3)
    out = out.reshape(fs * ft, d, fs * ft, d)
    m = out.reshape(fs * ft * d, -1)
    return ((m + m.T) / 2).reshape(out.shape)


def _assemble2(c: np.ndarray, Ak: np.ndarray, phit: np.ndarray) -> np.ndarray:
    """``sum_k c_k Ak[k] (x) phi_t^T`` as a (D, F) matrix."""
    n_t, d, fs = Ak.shape
    out = (Ak * c[:, None, None]).reshape(n_t, -1).T @ phit  # (d*fs, ft)
    return out.reshape(d, fs * phit.shape[1])


def check_psd(ev: np.ndarray, name: str, scale: float) -> None:
    """Raise unless the smallest of the eigenvalues ``ev`` (ascending) is round-off negative."""
    if ev[0] < -PSD_RTOL * max(scale, np.finfo(float).tiny):
        raise ValueError(
            f"{name} is not positive semi-definite beyond round-off: smallest eigenvalue "
            f"{ev[0]:.3e} vs scale {scale:.3e} (quadrature too coarse? raise n_t / n_hermite)"
        )


def population_solution(sigma, A, ridge):
    """``Sigma_r = Sigma + rho I``, its inverse and ``W_inf = A Sigma_r^{-1}``; singular raises."""
    F = sigma.shape[0]
    sigma_r = sigma + ridge * np.eye(F)
    # Single-threaded BLAS: right after a numba parallel region multi-threaded OpenBLAS
    # oversubscribes the cores (see gtv.numerics.linear.model.solve_spd).
    with serial_blas():
        try:
            chol = np.linalg.cholesky(sigma_r)
        except np.linalg.LinAlgError:
            raise ValueError(
                "ridge: Sigma + ridge I is not positive definite; use ridge > 0"
            ) from None
        piv = np.diag(chol) ** 2
        if piv.min() <= F * np.finfo(float).eps * np.diag(sigma_r).max():
            raise ValueError("ridge: Sigma + ridge I is numerically singular; use ridge > 0")
        inv = np.linalg.inv(sigma_r)
    inv = (inv + inv.T) / 2
    return sigma_r, inv, A @ inv


# -- computation --------------------------------------------------------------------------------
def moments_reference(features, data, sched, t_nodes, t_w, xi, xw, W_inf):
    """Plain-numpy reference: full feature vectors, posterior via posterior_stats, direct sums.

    Returns ``(Sigma, A, A_x0, proxy2, misfit2, direct2)``: ``sum_k t_w[k] lam_k E[. | t_k]`` of
    ``phi phi^T``, ``mu_bar phi^T``, ``x0 phi^T`` and (times ``lam_k`` again, (F, D, F, D)) of
    ``phi phi^T (x) Sigma_post``, ``phi phi^T (x) m m^T`` and ``phi phi^T (x) r r^T`` with
    ``m = mu_bar - D_bar``, ``r = x0 - D_bar`` (the last two only when ``W_inf`` is given).
    """
    M, D = data.shape
    F = features.n_features
    S1 = np.zeros((F, F))
    A1 = np.zeros((D, F))
    A01 = np.zeros((D, F))
    Kp = np.zeros((F, D, F, D))
    Km = np.zeros((F, D, F, D))
    Kt = np.zeros((F, D, F, D))
    for tk, wk in zip(t_nodes, t_w, strict=True):
        a, s = float(sched.alpha(tk)), float(np.sqrt(sched.sigma2(tk)))
        x = (a * data[:, None, :] + s * xi[None, :, :]).reshape(-1, D)
        x0 = np.repeat(data, xi.shape[0], axis=0)
        w = np.tile(xw, M) * (wk / M)
        phi = features.evaluate_reference(x, np.full(x.shape[0], tk))
        post = posterior_stats(data, x, tk, sched, full_cov=True, backend="numpy")
        lam = float(sched.dsm_weight(tk))
        S1 += lam * (phi * w[:, None]).T @ phi
        A1 += lam * (post.mean * w[:, None]).T @ phi
        A01 += lam * (x0 * w[:, None]).T @ phi
        Kp += lam**2 * np.einsum("n,nf,nde,ng->fdge", w, phi, post.cov, phi, optimize=True)
        if W_inf is not None:
            m = post.mean - phi @ W_inf.T
            r = x0 - phi @ W_inf.T
            Km += lam**2 * np.einsum("n,nf,nd,ne,ng->fdge", w, phi, m, m, phi, optimize=True)
            Kt += lam**2 * np.einsum("n,nf,nd,ne,ng->fdge", w, phi, r, r, phi, optimize=True)
    return S1, A1, A01, Kp, Km, Kt


def moments_numba(features, data, alpha, sigma, xi, xw, phit, c1, c2, W_inf=None):
    """Time-weighted moments from the numba kernel, over chunks of time nodes (bounded memory;
    chunks are summed in a fixed order, so the result does not depend on the thread count).

    Without ``W_inf``: ``(Sigma, A, A_x0, proxy second moment)``; with it: the misfit second
    moment ``E[lam**2 phi phi^T (x) m m^T]``.
    """
    kinds, sizes, los, his = (a[:-1].copy() for a in features.arrays())
    D = data.shape[1]
    fs, ft = features.n_space_features, features.time.size
    F = fs * ft
    n_t = alpha.size
    chunk = max(1, min(n_t, _CHUNK_BYTES // (8 * fs * fs * D * D)))
    misfit = W_inf is not None
    if misfit:
        wt_all = np.einsum("dia,ka->kdi", W_inf.reshape(D, fs, ft), phit)
        out = np.zeros((F, D, F, D))
    else:
        dummy = np.zeros((1, D, 1))
        Sig, A, A_x0, prox = np.zeros((F, F)), np.zeros((D, F)), np.zeros((D, F)), 0.0
    for k0 in range(0, n_t, chunk):
        sl = slice(k0, min(n_t, k0 + chunk))
        wt = np.ascontiguousarray(wt_all[sl]) if misfit else dummy
        S, Ab, A0, Kp, Km = _spatial_moments_numba(
            kinds, sizes, los, his, data, alpha[sl], sigma[sl], xi, xw, wt, misfit
        )
        if misfit:
            out += _assemble4(c2[sl], Km, phit[sl])
        else:
            Sig += _assemble4(c1[sl], S[:, :, None, :, None], phit[sl]).reshape(F, F)
            A += _assemble2(c1[sl], Ab, phit[sl])
            A_x0 += _assemble2(c1[sl], A0, phit[sl])
            prox = prox + _assemble4(c2[sl], Kp, phit[sl])
    return out if misfit else (Sig, A, A_x0, prox)
