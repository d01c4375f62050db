"""PF-ODE sampling of an ensemble of two-layer networks (docs/math/conventions.md; issue 6 item 4).

The same sampler as :func:`gtv.numerics.pfode.sample_linear_ensemble`: Euler (default) or Heun
on the uniform grid :func:`gtv.numerics.pfode.pf_ode_time_grid` from ``t = T`` to ``t = eps``,
drift ``pf_x_coeff(t) x - pf_mean_coeff(t) D^(x, t)``, initial points
``x_T ~ N(0, sigma_T**2 I)`` drawn per model from
:func:`gtv.numerics.pfode.sampling_rngs` (``SeedSequence([seed, 1]).spawn(N)``). The network is
evaluated exactly at every sample and stage with the compiled forward pass of
:mod:`gtv.numerics.two_layer.network`; the time embedding uses the networks' training ``eps`` even when
sampling stops at another one. Work is split into (model, block of samples) jobs; each job's
arithmetic is fixed, so results do not depend on the thread count.
"""

from __future__ import annotations

import numba
import numpy as np

from gtv.numerics.kernel.inputs import embed_time
from gtv.numerics.pfode import (
    _check_method,
    _check_n_samples,
    _euler_step,
    _heun_correct,
    initial_points,
    pf_ode_time_grid,
)
from gtv.numerics.two_layer.network import (
    _FASTMATH,
    BLOCK,
    N_BUF,
    TwoLayerNetworks,
    _forward_into,
    check_activation,
    forward_reference,
)

__all__ = ["sample_two_layer_ensemble", "sample_two_layer_reference"]


@numba.njit(parallel=True, cache=True, error_model="numpy", fastmath=_FASTMATH)
def _pf_ode_two_layer(x, W, A, emb, bias, ts, ax, bx, heun, act):
    """Integrate ``x`` (N, S, D) in place; ``emb`` (K+1,) is the time embedding on the grid."""
    n_models, n_samples, d = x.shape
    d_in = W.shape[2]
    n_steps = ts.shape[0] - 1
    n_blocks = (n_samples + BLOCK - 1) // BLOCK
    for job in numba.prange(n_models * n_blocks):
        mdl = job // n_blocks
        s0 = (job % n_blocks) * BLOCK
        m = min(n_samples, s0 + BLOCK) - s0
        zc = np.empty((d_in, BLOCK))  # rows 0..D-1: the current points; then e(t), bias
        zt = np.empty((d_in, BLOCK))  # Heun's predicted points
        buf = np.empty((N_BUF, BLOCK))
        dn = np.empty((d, BLOCK))
        dn2 = np.empty((d, BLOCK))
        tmp = np.empty((d, BLOCK))
        for c in range(d):
            for s in range(m):
                zc[c, s] = x[mdl, s0 + s, c]
        for s in range(m):
            zc[d + 1, s] = bias
            zt[d + 1, s] = bias
        for k in range(n_steps):
            dt = ts[k + 1] - ts[k]
            for s in range(m):
                zc[d, s] = emb[k]
            _forward_into(W[mdl], A[mdl], zc, m, act, buf, dn, tmp)
            if heun:
                for c in range(d):
                    _euler_step(zc[c], dn[c], ax[k], bx[k], dt, zt[c], m)
                for s in range(m):
                    zt[d, s] = emb[k + 1]
                _forward_into(W[mdl], A[mdl], zt, m, act, buf, dn2, tmp)
                for c in range(d):
                    _heun_correct(
                        zc[c], zt[c], dn[c], dn2[c], ax[k], bx[k], ax[k + 1], bx[k + 1], dt, m
                    )
            else:
                for c in range(d):
                    _euler_step(zc[c], dn[c], ax[k], bx[k], dt, zc[c], m)
        for c in range(d):
            for s in range(m):
                x[mdl, s0 + s, c] = zc[c, s]


def _setup(networks, n_samples, eps, n_steps, method, seed, x_T):
    if not isinstance(networks, TwoLayerNetworks):
        raise TypeError("networks must be a TwoLayerNetworks")
    _check_method(method)
    sched = networks.schedule
    ts = pf_ode_time_grid(sched, networks.eps if eps is None else eps, n_steps)
    n_samples = _check_n_samples(n_samples)
    n_models, d = networks.n_models, networks.dim
    x = initial_points(x_T, seed, n_models, n_samples, d, sched)
    emb = embed_time(ts, networks.eps, sched, networks.embedding)
    return x, ts, emb, sched.pf_x_coeff(ts), sched.pf_mean_coeff(ts)


def sample_two_layer_ensemble(
    networks: TwoLayerNetworks,
    n_samples: int,
    *,
    eps: float | None = None,
    n_steps: int = 30,
    method: str = "euler",
    seed: int = 0,
    x_T: np.ndarray | None = None,
) -> np.ndarray:
    """Sample every network of an ensemble with the PF-ODE (numba).

    Parameters
    ----------
    networks : TwoLayerNetworks
        E.g. ``trajectory.networks(k)``.
    n_samples : int
        Samples per model.
    eps : float, optional
        Final time (default: the networks' training ``eps``).
    n_steps : int, default 30
        Steps on ``linspace(T, eps, n_steps + 1)``.
    method : {"euler", "heun"}
    seed : int
        Model ``m`` draws ``x_T`` from ``SeedSequence([seed, 1]).spawn(N)[m]``.
    x_T : ndarray, shape (N, n_samples, D), optional
        Initial points (overrides ``seed``).

    Returns
    -------
    ndarray, shape (N, n_samples, D)
        Samples at ``t = eps``.
    """
    x, ts, emb, ax, bx = _setup(networks, n_samples, eps, n_steps, method, seed, x_T)
    act = check_activation(networks.activation)
    _pf_ode_two_layer(
        x, networks.W, networks.A, emb, networks.bias, ts, ax, bx, method == "heun", act
    )
    return x


def sample_two_layer_reference(
    networks: TwoLayerNetworks,
    n_samples: int,
    *,
    eps: float | None = None,
    n_steps: int = 30,
    method: str = "euler",
    seed: int = 0,
    x_T: np.ndarray | None = None,
) -> np.ndarray:
    """Plain-numpy :func:`sample_two_layer_ensemble` (a loop over models and steps)."""
    x, ts, _, ax, bx = _setup(networks, n_samples, eps, n_steps, method, seed, x_T)

    def denoise(m, xs, k):  # inputs through the public ntk_inputs path
        z = networks.inputs(xs, ts[k])
        return forward_reference(networks.W[m], networks.A[m], z, networks.activation)

    for m in range(networks.n_models):
        xs = x[m]
        for k in range(ts.shape[0] - 1):
            dt = ts[k + 1] - ts[k]
            f0 = ax[k] * xs - bx[k] * denoise(m, xs, k)
            if method == "heun":
                xt = xs + dt * f0
                f1 = ax[k + 1] * xt - bx[k + 1] * denoise(m, xt, k + 1)
                xs = xs + 0.5 * dt * (f0 + f1)
            else:
                xs = xs + dt * f0
        x[m] = xs
    return x
