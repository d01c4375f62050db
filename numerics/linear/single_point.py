"""One training point: the exact ridge weights of a one-point linear ensemble.

docs/math/closed_forms.md.

With one training point ``mu`` every DSM target is ``mu``, so with a constant feature the trained
weights are known in closed form (:func:`single_point_ridge_weights`); item 3 of
:mod:`gtv.theory.closed_forms`.
"""

from __future__ import annotations

import numpy as np

from gtv.numerics.features import ProductFeatures
from gtv.numerics.linear.model import LinearEnsemble

__all__ = ["constant_feature_index", "single_point_ridge_weights"]


def constant_feature_index(features: ProductFeatures) -> int | None:
    """Index of the constant feature ``phi_f = 1`` of a product basis, or ``None``.

    Every Fourier axis starts with the constant, so a product of Fourier axes has the constant at
    index 0; a Gaussian axis has no constant function.
    """
    if not isinstance(features, ProductFeatures):
        raise TypeError("features must be a ProductFeatures")
    axes = (*features.space, features.time)
    return 0 if all(a.kind == "fourier" for a in axes) else None


def single_point_ridge_weights(ensemble: LinearEnsemble) -> np.ndarray:
    """The exact weights of a one-point ensemble, ``W_n = mu (e_c - rho Sigma_P,n^{-1} e_c)^T``.

    With one training point every DSM target is ``mu``; with a constant feature ``e_c``
    (:func:`constant_feature_index`) ``(1/P) sum lam phi = (Sigma_P - rho I) e_c``, hence the
    identity (:func:`gtv.theory.closed_forms.single_point_ridge_identity`). Uses the kept
    ``Sigma_P`` (``ensemble.gram``, ridge included).

    Returns
    -------
    ndarray, shape (N, D, F)
    """
    if not isinstance(ensemble, LinearEnsemble):
        raise TypeError("ensemble must be a LinearEnsemble")
    if ensemble.data.shape[0] != 1:
        raise ValueError(f"data must hold one training point, got M = {ensemble.data.shape[0]}")
    c = constant_feature_index(ensemble.features)
    if c is None:
        raise ValueError("features must contain the constant (all axes Fourier)")
    if ensemble.gram is None:
        raise ValueError("ensemble: train with keep_normal_equations=True (Sigma_P is needed)")
    F = ensemble.features.n_features
    e = np.zeros(F)
    e[c] = 1.0
    sol = np.linalg.solve(ensemble.gram, np.broadcast_to(e, (ensemble.n_models, F))[..., None])
    row = e[None, :] - ensemble.ridge * sol[..., 0]  # (N, F)
    return ensemble.data[0][None, :, None] * row[:, None, :]
