"""PF-ODE sampling of an ensemble of two-layer networks (docs/math/conventions.md).

The sampler of every model class (:mod:`gtv.numerics.pfode`): Euler (default) or Heun on the
uniform grid :func:`gtv.numerics.pfode.pf_ode_time_grid` from ``t = T`` to ``t = eps``, drift
``pf_x_coeff(t) x - pf_mean_coeff(t) D^(x, t)``, initial points ``x_T ~ N(0, sigma_T**2 I)`` drawn
per model from stream ``"sampling"`` (:func:`gtv.numerics.pfode.initial_points`). The one stepper
(:func:`gtv.numerics.pfode.make_pf_ode`) calls the compiled forward pass of
:mod:`gtv.numerics.two_layer.network` on blocks of samples, at every sample and stage; the time
embedding uses the networks' training ``eps`` even when sampling stops at another one. Results do
not depend on the thread count. Samples that end beyond
:func:`gtv.numerics.pfode.divergence_bound` of the data radius ``radius`` give a
:class:`gtv.numerics.pfode.DivergenceWarning` (:func:`gtv.numerics.pfode.warn_if_diverged`).
"""

from __future__ import annotations

import numba
import numpy as np

from gtv.numerics.checks import check_count, check_positive
from gtv.numerics.kernel.inputs import embed_time
from gtv.numerics.pfode import (
    BLOCK,
    abs_max,
    check_method,
    drift_coefficients,
    initial_points,
    make_pf_ode,
    model_rows,
    pf_ode_reference,
    pf_ode_time_grid,
    warn_if_diverged,
)
from gtv.numerics.two_layer.ensemble import TwoLayerNetworks
from gtv.numerics.two_layer.network import FASTMATH, N_BUF, activation_code, forward_into
from gtv.numerics.two_layer.reference import forward_reference

__all__ = ["sample_two_layer_ensemble", "sample_two_layer_reference"]


@numba.njit(cache=True, error_model="numpy", fastmath=FASTMATH, inline="always")
def _two_layer_block(args, n, k, z, m, out, ws):
    """``out[:, :m] = D^_n(z[:, :m], ts[k])``: the block denoiser of :func:`make_pf_ode`.

    ``args = (W, A, emb, bias, act, rows)``: row ``n`` of the start points is carried by network
    ``rows[n]`` (:func:`gtv.numerics.pfode.model_rows`); the workspace holds the network inputs
    ``zc`` (d_in, BLOCK) (rows ``0..D-1`` the points, then ``e(t_k)`` and ``bias``) and the
    forward pass's scratch.
    """
    W, A, emb, bias, act, rows = args
    zc, buf, tmp = ws
    d = z.shape[0]
    for c in range(d):
        for s in range(m):
            zc[c, s] = z[c, s]
    e = emb[k]
    for s in range(m):
        zc[d, s] = e
        zc[d + 1, s] = bias
    r = rows[n]
    forward_into(W[r], A[r], zc, m, act, buf, out, tmp)


@numba.njit(cache=True, error_model="numpy", inline="always")
def _two_layer_workspace(args, d):
    """Inputs (d_in, BLOCK), forward-pass buffers (N_BUF, BLOCK) and (D, BLOCK) of one job."""
    return np.empty((d + 2, BLOCK)), np.empty((N_BUF, BLOCK)), np.empty((d, BLOCK))


_pf_ode_two_layer = make_pf_ode(_two_layer_block, _two_layer_workspace, fastmath=FASTMATH)


def _setup(networks, n_samples, eps, n_steps, method, seed, x_T, radius, models):
    if not isinstance(networks, TwoLayerNetworks):
        raise TypeError("networks must be a TwoLayerNetworks")
    check_method(method)
    if isinstance(radius, str):
        raise ValueError(f"radius must be a finite number > 0, got {radius!r}")
    check_positive(radius, "radius")
    sched = networks.schedule
    ts = pf_ode_time_grid(sched, networks.eps if eps is None else eps, n_steps)
    n_samples = check_count(n_samples, "n_samples")
    rows = model_rows(models, networks.n_models, x_T)
    x = initial_points(x_T, seed, rows.size, n_samples, networks.dim, sched)
    emb = embed_time(ts, networks.eps, sched, networks.embedding)
    return x, rows, ts, emb, *drift_coefficients(sched, ts)


def sample_two_layer_ensemble(
    networks: TwoLayerNetworks,
    n_samples: int,
    *,
    eps: float | None = None,
    n_steps: int = 30,
    method: str = "euler",
    seed: int | np.random.SeedSequence = 0,
    x_T: np.ndarray | None = None,
    radius: float = 1.0,
    models: np.ndarray | None = None,
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
    seed : int or SeedSequence
        Model ``m`` draws ``x_T`` from ``model_rngs(seed, "sampling", N)[m]``
        (:func:`gtv.numerics.pfode.initial_points`).
    x_T : ndarray, shape (N, n_samples, D), optional
        Initial points (overrides ``seed``).
    radius : float, default 1.0
        ``max |x|`` of the training data (the networks do not store it; 1 for data in
        ``[-1, 1]``): sets the divergence bound.
    models : ndarray of int, shape (R,), optional
        With ``x_T`` of shape (R, n_samples, D): row ``r`` is carried by network ``models[r]``
        (e.g. the refinement rows of :func:`gtv.numerics.transport.transport_1d`).

    Returns
    -------
    ndarray, shape (N, n_samples, D) (or (R, n_samples, D) with ``models``)
        Samples at ``t = eps``.

    Warns
    -----
    DivergenceWarning
        When samples end non-finite or beyond :func:`gtv.numerics.pfode.divergence_bound`
        (``radius``); the share is in the message.
    """
    x, rows, ts, emb, ax, bx = _setup(
        networks, n_samples, eps, n_steps, method, seed, x_T, radius, models
    )
    start = abs_max(x)
    act = activation_code(networks.activation)
    args = (networks.W, networks.A, emb, float(networks.bias), act, rows)
    _pf_ode_two_layer(x, ts, ax, bx, method == "heun", args)
    warn_if_diverged(x, radius, networks.schedule, method, ts.size - 1, start)
    return x


def sample_two_layer_reference(
    networks: TwoLayerNetworks,
    n_samples: int,
    *,
    eps: float | None = None,
    n_steps: int = 30,
    method: str = "euler",
    seed: int | np.random.SeedSequence = 0,
    x_T: np.ndarray | None = None,
    radius: float = 1.0,
    models: np.ndarray | None = None,
) -> np.ndarray:
    """Plain-numpy :func:`sample_two_layer_ensemble` (a loop over rows and steps; the same
    divergence warning)."""
    x, rows, ts, _, ax, bx = _setup(
        networks, n_samples, eps, n_steps, method, seed, x_T, radius, models
    )

    def denoise(m: int, xs: np.ndarray, k: int) -> np.ndarray:  # through the public ntk_inputs
        z = networks.inputs(xs, ts[k])
        r = rows[m]
        return forward_reference(networks.W[r], networks.A[r], z, networks.activation)

    out = pf_ode_reference(denoise, x, ts, ax, bx, method == "heun")
    warn_if_diverged(out, radius, networks.schedule, method, ts.size - 1, abs_max(x))
    return out
