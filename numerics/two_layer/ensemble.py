"""An ensemble of two-layer denoisers at one parameter state (docs/math/kernel.md).

:class:`TwoLayerNetworks` holds the parameters ``W`` (N, n, d_in), ``A`` (N, n, D) of ``N`` networks
(:mod:`gtv.numerics.two_layer.network`) with the input construction of
:func:`gtv.numerics.kernel.inputs.ntk_inputs`, and evaluates denoisers, scores and tangent kernels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gtv.numerics.kernel.checks import check_activation
from gtv.numerics.kernel.inputs import check_embedding, ntk_inputs
from gtv.numerics.schedules import NumericSchedule
from gtv.numerics.two_layer.linearized import empirical_ntk
from gtv.numerics.two_layer.network import check_params, forward

__all__ = ["TwoLayerNetworks"]


@dataclass
class TwoLayerNetworks:
    """``N`` two-layer denoisers ``D^_m(x, t)`` at one parameter state.

    Attributes
    ----------
    W : ndarray, shape (N, n, d_in)
        First-layer weights (``d_in = D + 2``).
    A : ndarray, shape (N, n, D)
        Output weights.
    activation : {"relu", "erf"}
    schedule : NumericSchedule
    eps : float
        The training cutoff (enters the time embedding).
    embedding : {"linear", "log-sigma"}
    bias : float
        The constant input coordinate.
    """

    W: np.ndarray
    A: np.ndarray
    activation: str
    schedule: NumericSchedule
    eps: float
    embedding: str = "linear"
    bias: float = 1.0

    def __post_init__(self) -> None:
        self.W, self.A = check_params(self.W, self.A)
        check_activation(self.activation)
        check_embedding(self.embedding)
        if self.W.shape[2] != self.A.shape[2] + 2:
            raise ValueError(
                f"W must have d_in = D + 2 = {self.A.shape[2] + 2} columns, got {self.W.shape[2]}"
            )

    @property
    def n_models(self) -> int:
        return self.W.shape[0]

    @property
    def width(self) -> int:
        return self.W.shape[1]

    @property
    def dim(self) -> int:
        """D, the data dimension."""
        return self.A.shape[2]

    def inputs(self, x: object, t: object) -> np.ndarray:
        """Network inputs ``z = (x, e(t), bias)``, shape (Q, D + 2)."""
        z = ntk_inputs(x, t, self.eps, self.schedule, self.embedding, self.bias)
        if z.shape[1] != self.W.shape[2]:
            raise ValueError(f"x must have D = {self.dim} columns, got {z.shape[1] - 2}")
        return z

    def denoise(self, x: object, t: object) -> np.ndarray:
        """``D^_m(x_q, t_q)`` for every model: shape (N, Q, D). ``x`` (Q, D) (or (Q,) if D = 1),
        ``t`` scalar or (Q,)."""
        return forward(self.W, self.A, self.inputs(x, t), self.activation)

    def denoise_inputs(self, z: object) -> np.ndarray:
        """``D^_m`` at prepared inputs ``z`` (Q, d_in) or (N, Q, d_in): shape (N, Q, D)."""
        return forward(self.W, self.A, z, self.activation)

    def score(self, x: object, t: object) -> np.ndarray:
        """``s^ = (alpha_t D^ - x) / sigma_t**2``: shape (N, Q, D)."""
        z = self.inputs(x, t)
        tq = np.broadcast_to(np.asarray(t, dtype=float), (z.shape[0],))
        d_hat = forward(self.W, self.A, z, self.activation)
        alpha = self.schedule.alpha(tq)[None, :, None]
        return (alpha * d_hat - z[None, :, : self.dim]) / self.schedule.sigma2(tq)[None, :, None]

    def empirical_ntk(self, model: int, z1: np.ndarray, z2: np.ndarray) -> np.ndarray:
        """:func:`gtv.numerics.two_layer.linearized.empirical_ntk` of network ``model``:
        shape (Q1, D, Q2, D)."""
        return empirical_ntk(self.W[model], self.A[model], z1, z2, self.activation)
