"""Exact sampler maps of binned affine ensembles (docs/math/linear.md).

With an affine denoiser the PF-ODE is affine, so each model's sampler map is exactly
``x_eps = G x_T + H`` (:func:`affine_flow`): on bin ``[lo, hi]``
``x_lo = g x_hi + a eta(c)`` with ``g = (sigma_lo/sigma_hi) exp(c J)``,
``eta(c) = int_lo^hi B(t) (sigma_lo/sigma_t) exp(c J(t)) dt``, ``B = pf_mean_coeff``,
``J(t) = int_lo^t B`` (:class:`BinMapQuadrature` holds the nodes; the integrals are
composite Gauss-Legendre, accurate to ~1e-13). With ``x_T ~ N(0, sigma_T**2)`` a model's output is
``N(H, G**2 sigma_T**2)``, so the ensemble's ``[q]`` has mean ``E H`` and variance
``sigma_T**2 E[G**2] + Var H`` (:func:`affine_ensemble_moments`): a Monte Carlo over models with
no sampler error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from gtv.numerics.checks import check_bin_edges
from gtv.numerics.quadrature import geometric_panels
from gtv.numerics.schedules import resolve_schedule

__all__ = [
    "BinMapQuadrature",
    "affine_ensemble_moments",
    "affine_flow",
    "affine_flow_reference",
    "bin_map_quadrature",
]


@dataclass(frozen=True)
class BinMapQuadrature:
    """Quadrature for the bin maps ``g_b(c) = ratio_b exp(c J_b)``,
    ``eta_b(c) = sum_q omega[b, q] exp(c J_nodes[b, q])``.

    Attributes
    ----------
    bin_edges : ndarray, shape (K + 1,)
    sigma_ratio : ndarray, shape (K,)
        ``sigma_lo / sigma_hi``.
    J_bin : ndarray, shape (K,)
        ``int_lo^hi B dt``.
    J_nodes, omega : ndarray, shape (K, Q)
        ``J(t_q) = int_lo^{t_q} B`` at the nodes, and ``w_q B(t_q) sigma_lo/sigma(t_q)``.
    sigma_T2 : float
        ``sigma_T**2`` (variance of the sampler's start).
    """

    bin_edges: np.ndarray
    sigma_ratio: np.ndarray
    J_bin: np.ndarray
    J_nodes: np.ndarray
    omega: np.ndarray
    sigma_T2: float

    @property
    def n_bins(self) -> int:
        return self.sigma_ratio.size

    def maps(self, c: object, order: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``d^order/dc^order`` of ``g`` and ``eta`` for coefficients ``c`` of shape (..., K)."""
        c = np.asarray(c, dtype=float)
        e = np.exp(c[..., None] * self.J_nodes)
        g = self.sigma_ratio * np.exp(c * self.J_bin) * self.J_bin**order
        eta = np.sum(self.omega * self.J_nodes**order * e, axis=-1)
        return g, eta


def bin_map_quadrature(
    schedule: object, bin_edges: object, n_nodes: int = 16, n_panels: int = 12
) -> BinMapQuadrature:
    """Nodes and weights of :class:`BinMapQuadrature` (Gauss-Legendre, ``n_nodes`` per panel,
    ``n_panels`` geometric panels per bin; ``J`` at each node by its own panel rule)."""
    sched = resolve_schedule(schedule)
    edges = check_bin_edges(bin_edges, sched)
    K = edges.size - 1
    B = sched.pf_mean_coeff
    ratio, Jb, Jn, om = np.empty(K), np.empty(K), [], []
    for k in range(K):
        lo, hi = float(edges[k]), float(edges[k + 1])
        s_lo = math.sqrt(float(sched.sigma2(lo)))
        ratio[k] = s_lo / math.sqrt(float(sched.sigma2(hi)))
        nodes, w = geometric_panels(lo, hi, n_nodes, n_panels)
        Jb[k] = float(np.dot(w, B(nodes)))
        J = np.empty(nodes.size)
        for q, tq in enumerate(nodes):
            sub_n, sub_w = geometric_panels(lo, float(tq), n_nodes, n_panels)
            J[q] = np.dot(sub_w, B(sub_n))
        Jn.append(J)
        om.append(w * B(nodes) * s_lo / np.sqrt(sched.sigma2(nodes)))
    return BinMapQuadrature(
        edges, ratio, Jb, np.array(Jn), np.array(om), float(sched.sigma2(sched.T))
    )


@numba.njit(parallel=True, cache=True, error_model="numpy")
def _affine_flow_numba(theta, ratio, J_bin, J_nodes, omega):
    n_models, n_bins, _ = theta.shape
    G = np.empty(n_models)
    H = np.empty(n_models)
    for n in numba.prange(n_models):
        g_tot, h_tot = 1.0, 0.0
        for k in range(n_bins - 1, -1, -1):
            a, c = theta[n, k, 0], theta[n, k, 1]
            g = ratio[k] * np.exp(c * J_bin[k])
            eta = 0.0
            for q in range(J_nodes.shape[1]):
                eta += omega[k, q] * np.exp(c * J_nodes[k, q])
            g_tot, h_tot = g * g_tot, g * h_tot + a * eta
        G[n] = g_tot
        H[n] = h_tot
    return G, H


def affine_flow(theta: np.ndarray, quad: BinMapQuadrature) -> tuple[np.ndarray, np.ndarray]:
    """Each model's exact sampler map ``x_eps = G x_T + H`` (numba, parallel over models).

    Parameters
    ----------
    theta : ndarray, shape (N, K, 2)
    quad : BinMapQuadrature

    Returns
    -------
    G, H : ndarray, shape (N,)
    """
    theta = np.ascontiguousarray(theta, dtype=np.float64)
    if theta.ndim != 3 or theta.shape[1:] != (quad.n_bins, 2):
        raise ValueError(f"theta must have shape (N, {quad.n_bins}, 2), got {theta.shape}")
    return _affine_flow_numba(theta, quad.sigma_ratio, quad.J_bin, quad.J_nodes, quad.omega)


def affine_flow_reference(theta: np.ndarray, quad: BinMapQuadrature):
    """Plain-numpy version of :func:`affine_flow`."""
    g, eta = quad.maps(theta[..., 1])
    G = np.ones(theta.shape[0])
    H = np.zeros(theta.shape[0])
    for k in reversed(range(quad.n_bins)):
        G, H = g[:, k] * G, g[:, k] * H + theta[:, k, 0] * eta[:, k]
    return G, H


def affine_ensemble_moments(G: np.ndarray, H: np.ndarray, sigma_T2: float) -> tuple[float, float]:
    """Mean and variance of ``[q]`` = the mixture of ``N(H_n, G_n**2 sigma_T2)`` over models."""
    mean = float(np.mean(H))
    return mean, float(sigma_T2 * np.mean(G * G) + np.mean((H - mean) ** 2))
