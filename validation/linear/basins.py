"""The basins of the sampler's last step: how much of the line each member sends into the cores.

docs/math/finite_fp.md ("Where the density errors sit"). The Euler PF-ODE sampler's last step,
from the last evaluated time ``t_{K-1}`` to ``eps``, is the affine map of the member's denoiser

    x_K = x + dt (a x - b D^_n(x, t_{K-1})),    dt = eps - t_{K-1} < 0

(:func:`gtv.numerics.pfode.drift_coefficients`). Its *basin* around a training point ``x_m`` is
the set of ``x`` within ``reach`` of ``x_m`` that it sends into the core ``|x_K - x_m| < core``;
its length is a property of the member's whole profile ``D^_n(., t_{K-1})`` near the data (a
level-set measure), not of ``D^`` at ``x_m`` alone. A member's mass in the cores is the mass of
its step-``K-1`` samples inside its basins, so two ensembles with the same law of ``D^`` at every
point but different basins put different mass in the cores.
"""

from __future__ import annotations

import numpy as np

from gtv.numerics.checks import check_count
from gtv.numerics.linear import LinearEnsemble
from gtv.numerics.linear.prediction import LinearField
from gtv.numerics.pfode import drift_coefficients, pf_ode_time_grid

__all__ = ["last_step_basins"]


def last_step_basins(
    ensemble: LinearEnsemble | LinearField,
    *,
    n_steps: int = 30,
    core: float = 0.05,
    reach: float = 0.5,
    n_grid: int = 2001,
) -> np.ndarray:
    """Basin lengths of the Euler sampler's last step, per member and training point.

    Parameters
    ----------
    ensemble : LinearEnsemble or LinearField
        1-D members.
    n_steps : int, default 30
        Steps of the sampler (``linspace(T, eps, n_steps + 1)``; the last step starts at its
        second-to-last time).
    core : float, default 0.05
        Half-width of a core (> 0).
    reach : float, default 0.5
        Half-width of the window around each training point that is searched (``> core``); at
        most half the smallest spacing of the training points, so that windows do not overlap.
    n_grid : int, default 2001
        Midpoint-rule points per window (>= 11): lengths are exact to ``2 reach / n_grid`` per
        boundary crossing.

    Returns
    -------
    ndarray, shape (N, M)
        The length of ``{x : |x - x_m| < reach, |x_K(x) - x_m| < core}`` for member ``n`` and
        training point ``m``.
    """
    if isinstance(ensemble, LinearField):
        ensemble = ensemble.ensemble
    if not isinstance(ensemble, LinearEnsemble):
        raise TypeError("ensemble must be a LinearEnsemble or a LinearField")
    if ensemble.features.dim != 1:
        raise ValueError(f"ensemble: only 1-D data is supported, got D = {ensemble.features.dim}")
    n_steps = check_count(n_steps, "n_steps")
    n_grid = check_count(n_grid, "n_grid")
    if n_grid < 11:
        raise ValueError(f"n_grid must be >= 11, got {n_grid}")
    data = np.sort(np.asarray(ensemble.data, dtype=float)[:, 0])
    gap = float(np.diff(data).min()) if data.size > 1 else np.inf
    if not (np.isfinite(core) and core > 0):
        raise ValueError(f"core must be > 0, got {core!r}")
    if not (np.isfinite(reach) and core < reach <= gap / 2):
        raise ValueError(
            f"reach must lie in (core, half the smallest data spacing] = ({core:g}, {gap / 2:g}], "
            f"got {reach!r}"
        )
    ts = pf_ode_time_grid(ensemble.schedule, ensemble.eps, n_steps)
    a, b = drift_coefficients(ensemble.schedule, ts[-2:-1])
    dt = float(ts[-1] - ts[-2])
    h = 2 * reach / n_grid
    offsets = -reach + h * (np.arange(n_grid) + 0.5)
    x = (data[:, None] + offsets[None, :]).ravel()  # (M * G,)
    d = ensemble.denoise(x[:, None], float(ts[-2]))[:, :, 0]  # (N, M * G)
    x_next = x + dt * (a[0] * x - b[0] * d)
    centre = np.repeat(data, n_grid)
    inside = np.abs(x_next - centre) < core
    lengths = inside.reshape(ensemble.n_models, data.size, n_grid).sum(axis=2) * h
    order = np.argsort(np.argsort(np.asarray(ensemble.data, dtype=float)[:, 0]))
    return lengths[:, order]
