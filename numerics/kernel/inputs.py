"""Network inputs z = (x, e(t), 1) shared by the NTK theory and the trained two-layer networks.

docs/math/kernel.md leaves the time embedding open; gtv fixes one documented choice so that the
kernel theory (:mod:`gtv.numerics.kernel`) and the finite-width networks
(:mod:`gtv.numerics.two_layer`) see identical inputs:

* ``"linear"`` (default): ``e(t) = 2 (t - eps) / (T - eps) - 1``, which maps the training range
  [eps, T] onto [-1, 1], the same scale as the paper's data;
* ``"log-sigma"``: ``e(t) = log sigma_t``, the natural noise-level coordinate.

The trailing constant coordinate ``bias`` (default 1) plays the role of the hidden-layer bias, so
the network needs no separate bias parameters: its pre-activations are ``u = w . z / sqrt(d_in)``
with ``d_in = D + 2``.
"""

from __future__ import annotations

import numpy as np

from gtv.numerics.schedules import NumericSchedule

__all__ = ["EMBEDDINGS", "check_embedding", "embed_time", "ntk_inputs"]

#: Allowed time embeddings.
EMBEDDINGS = ("linear", "log-sigma")


def check_embedding(embedding: object) -> str:
    """Return ``embedding`` if it is one of :data:`EMBEDDINGS`, else raise ``ValueError``."""
    if embedding not in EMBEDDINGS:
        raise ValueError(f"embedding must be one of {EMBEDDINGS}; got {embedding!r}")
    return str(embedding)


def embed_time(
    t: object, eps: float, schedule: NumericSchedule, embedding: str = "linear"
) -> np.ndarray:
    """Time embedding ``e(t)`` (see the module docstring); returns a float64 array like ``t``."""
    check_embedding(embedding)
    t = schedule.check_times(t)
    if embedding == "linear":
        return 2.0 * (t - eps) / (schedule.T - eps) - 1.0
    return 0.5 * np.log(schedule.sigma2(t))


def ntk_inputs(
    x: object,
    t: object,
    eps: float,
    schedule: NumericSchedule,
    embedding: str = "linear",
    bias: float = 1.0,
) -> np.ndarray:
    """Stack network inputs ``z = (x, e(t), bias)``, shape ``(n, D + 2)``.

    Parameters
    ----------
    x : array_like, shape (n, D) or (n,)
        Noisy points (a 1-D array is read as ``D = 1``).
    t : array_like, shape (n,) or scalar
        Diffusion times in (0, T]; a scalar is broadcast.
    eps : float
        The training cutoff (used by the ``"linear"`` embedding).
    schedule : NumericSchedule
        The noise schedule.
    embedding : {"linear", "log-sigma"}
        Time embedding, see the module docstring.
    bias : float
        Value of the constant coordinate (> 0).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"x must have shape (n, D) or (n,); got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("x must be finite")
    if not (np.isfinite(bias) and bias > 0):
        raise ValueError(f"bias must be finite and > 0; got {bias!r}")
    e = np.broadcast_to(embed_time(t, eps, schedule, embedding), (x.shape[0],))
    z = np.empty((x.shape[0], x.shape[1] + 2))
    z[:, : x.shape[1]] = x
    z[:, -2] = e
    z[:, -1] = bias
    return z
