"""The empirical tangent kernel of a two-layer network and its linearized training.

docs/math/kernel.md.

Empirical tangent kernel (the Gram matrix of the output Jacobian, ``J J^T``), for outputs
``c, c'``::

    Theta_cc'(z, z') = (1/n) sum_i [ delta_cc' sigma(u_i) sigma(u'_i)
                                     + a_ic a_ic' sigma'(u_i) sigma'(u'_i) (z . z') / d_in ]

The second term couples the outputs at finite width (it averages to ``delta_cc'`` times a scalar
kernel only as ``n -> infinity``). Gradient descent with rate ``eta`` on the linearized model moves
the weighted residual ``Lambda^{1/2} e`` by ``I - (eta/P) G`` with
``G = Lambda^{1/2} Theta Lambda^{1/2}`` ((P D) x (P D)); see :func:`linearized_predictions`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from gtv.numerics.kernel.checks import check_activation
from gtv.numerics.two_layer.checks import check_learning_rate
from gtv.numerics.two_layer.reference import activation_reference, forward_reference

if TYPE_CHECKING:
    from gtv.numerics.two_layer.init import TwoLayerInit

__all__ = ["empirical_ntk", "linearized_ensemble_predictions", "linearized_predictions"]


def empirical_ntk(
    W: np.ndarray, A: np.ndarray, z1: np.ndarray, z2: np.ndarray, activation: str = "relu"
) -> np.ndarray:
    """Empirical tangent kernel ``J(z1) J(z2)^T`` of one network (numpy; module docstring).

    Parameters
    ----------
    W, A : ndarray, shapes (n, d_in) and (n, D)
    z1, z2 : ndarray, shapes (Q1, d_in), (Q2, d_in)

    Returns
    -------
    ndarray, shape (Q1, D, Q2, D)
        ``Theta[q, c, q', c']``.
    """
    check_activation(activation)
    n, d = W.shape
    n_out = A.shape[1]
    h1, s1 = activation_reference(z1 @ W.T / np.sqrt(d), activation)
    h2, s2 = activation_reference(z2 @ W.T / np.sqrt(d), activation)
    feat = h1 @ h2.T / n  # (Q1, Q2)
    zz = z1 @ z2.T / d
    grad = np.einsum("qi,ic,ie,pi->qcpe", s1, A, A, s2, optimize=True) / n
    theta = grad * zz[:, None, :, None]
    theta += feat[:, None, :, None] * np.eye(n_out)[None, :, None, :]
    return theta


def _gd_filter(g: np.ndarray, learning_rate: float, n_samples: int, steps: np.ndarray):
    """``phi_k(g) = (eta/P) sum_{m<k} (1 - eta g/P)**m = (1 - (1 - eta g/P)**k) / g`` (K, G).

    Written as ``-(eta/P) expm1(k log1p(-x)) / x`` with ``x = eta g / P`` (no cancellation at small
    ``x``), ``eta k / P`` at ``x = 0``, and by direct powers for ``x >= 1``.
    """
    x = learning_rate * np.clip(g, 0.0, None) / n_samples
    k = np.asarray(steps, dtype=float)[:, None]
    out = np.empty((k.shape[0], x.shape[0]))
    small = x < 1.0
    pos = small & (x > 0)
    out[:, pos] = -np.expm1(k * np.log1p(-x[pos])) / x[pos]
    out[:, ~small] = (1.0 - (1.0 - x[~small]) ** k) / x[~small]
    out[:, x == 0] = k
    return out * (learning_rate / n_samples)


def _gf_filter(g: np.ndarray, n_samples: int, taus: np.ndarray):
    """Gradient flow: ``phi_tau(g) = (1 - exp(-tau g / P)) / g`` (K, G)."""
    g = np.clip(g, 0.0, None)
    tau = np.asarray(taus, dtype=float)[:, None]
    out = np.empty((tau.shape[0], g.shape[0]))
    pos = g > 0
    out[:, pos] = -np.expm1(-tau * g[pos] / n_samples) / g[pos]
    out[:, ~pos] = tau / n_samples
    return out


def linearized_predictions(
    W0: np.ndarray,
    A0: np.ndarray,
    z: np.ndarray,
    x0: np.ndarray,
    weight: np.ndarray,
    z_query: np.ndarray,
    learning_rate: float,
    steps: object,
    activation: str = "relu",
    flow: str = "gd",
) -> np.ndarray:
    """Predictions of one network's linearization around ``(W0, A0)`` trained on the DSM loss.

    The linearized model ``f(theta) = f_0 + J (theta - theta_0)`` trained by gradient descent
    (``flow="gd"``: ``k`` steps of rate ``eta``, exactly what the network does in the lazy limit)
    or gradient flow (``flow="gf"``: time ``tau = eta k``) predicts at a query ``q``

        ``f_k(q) = f_0(q) - Theta(q, Z) Lambda^{1/2} U phi_k(g) U^T Lambda^{1/2} (f_0(Z) - X0)``,

    with ``G = Lambda^{1/2} Theta(Z, Z) Lambda^{1/2} = U diag(g) U^T`` (Theta the empirical kernel
    at ``theta_0``, :func:`empirical_ntk`), ``phi_k(g) = (1 - (1 - eta g/P)**k) / g`` (GD) or
    ``(1 - exp(-tau g/P)) / g`` (GF).

    Parameters
    ----------
    W0, A0 : ndarray, shapes (n, d_in), (n, D)
    z, x0, weight : ndarray, shapes (P, d_in), (P, D), (P,)
        Training inputs, targets and weights ``lambda~``.
    z_query : ndarray, shape (Q, d_in)
    learning_rate : float
    steps : array_like of int, shape (K,)
        Step counts ``k`` (``tau = eta k``).

    Returns
    -------
    ndarray, shape (K, Q, D)

    Cost: the (P D) x (P D) kernel and its eigendecomposition; meant for P D up to a few thousand.
    """
    if flow not in ("gd", "gf"):
        raise ValueError(f"flow must be 'gd' or 'gf', got {flow!r}")
    p, n_out = x0.shape
    theta_zz = empirical_ntk(W0, A0, z, z, activation).reshape(p * n_out, p * n_out)
    theta_qz = empirical_ntk(W0, A0, z_query, z, activation)
    q = z_query.shape[0]
    theta_qz = theta_qz.reshape(q * n_out, p * n_out)
    sw = np.repeat(np.sqrt(weight), n_out)
    g, U = np.linalg.eigh(sw[:, None] * theta_zz * sw[None, :])
    f0_train = forward_reference(W0, A0, z, activation).reshape(-1)
    f0_query = forward_reference(W0, A0, z_query, activation).reshape(-1)
    coeff = U.T @ (sw * (f0_train - x0.reshape(-1)))
    steps = np.asarray(steps)
    filt = (
        _gd_filter(g, learning_rate, p, steps)
        if flow == "gd"
        else _gf_filter(g, p, learning_rate * steps)
    )
    left = (theta_qz * sw[None, :]) @ U  # (Q D, G)
    out = f0_query[None, :] - (filt * coeff[None, :]) @ left.T
    return out.reshape(steps.shape[0], q, n_out)


def linearized_ensemble_predictions(
    init: TwoLayerInit,
    learning_rate: float,
    steps: object,
    x: object,
    t: object,
    flow: str = "gd",
) -> np.ndarray:
    """Predictions of every network's linearization (its empirical tangent kernel at init).

    See :func:`linearized_predictions`; ``steps`` (K,) step counts.

    Returns
    -------
    ndarray, shape (K, N, Q, D)
    """
    eta = check_learning_rate(learning_rate)
    zq = init.networks().inputs(x, t)
    steps = np.atleast_1d(np.asarray(steps))
    out = [
        linearized_predictions(
            init.W0[m],
            init.A0[m],
            init.z[m],
            init.x0[m],
            init.weight[m],
            zq,
            eta,
            steps,
            init.activation,
            flow,
        )  # fmt: skip
        for m in range(init.n_models)
    ]
    return np.stack(out, axis=1)
