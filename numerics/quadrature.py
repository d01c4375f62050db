"""Deterministic quadrature rules shared by the theories (docs/math/linear.md, docs/math/kernel.md).

* Time: expectations over ``t ~ U[eps, T]``. The DSM weight behaves like ``lam ~ 1/t`` near
  ``t = 0``, so the rules concentrate nodes at small ``t``: composite Gauss-Legendre on panels
  that grow geometrically from ``eps`` and then stay uniform (:func:`time_quadrature`,
  :func:`gauss_legendre_panels`), or Gauss-Legendre in ``log t``
  (:func:`log_time_quadrature`).
* Space: expectations over ``xi ~ N(0, I_D)`` by a tensor Gauss-Hermite rule
  (:func:`hermite_quadrature`), with an order that resolves a product basis at a given noise
  level (:func:`default_n_hermite`).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy.special import roots_hermitenorm

from gtv.numerics.checks import check_count
from gtv.numerics.features import ProductFeatures

__all__ = [
    "GEO_RATIO",
    "HERMITE_PRUNE",
    "default_n_hermite",
    "gauss_legendre_panels",
    "geometric_panels",
    "hermite_quadrature",
    "log_time_quadrature",
    "panel_breaks",
    "time_quadrature",
]

#: Growth ratio of consecutive time panels near ``eps``.
GEO_RATIO = 1.25
#: Gauss-Hermite product weights below this (of total 1) are dropped.
HERMITE_PRUNE = 1e-25


def panel_breaks(lo: float, hi: float, max_width: float, ratio: float = GEO_RATIO) -> np.ndarray:
    """Panel breakpoints on ``[lo, hi]`` (``0 < lo < hi``): widths grow geometrically from ``lo``
    (``ratio``) until they would exceed ``max_width``, then uniform panels of width
    ``<= max_width`` up to ``hi``."""
    br = [lo]
    while br[-1] < hi and br[-1] * (ratio - 1) < max_width:
        br.append(min(hi, br[-1] * ratio))
    if br[-1] < hi:
        n_uni = int(math.ceil((hi - br[-1]) / max_width - 1e-12))
        br.extend(np.linspace(br[-1], hi, n_uni + 1)[1:])
    br = np.array(br)
    br[-1] = hi
    return br


def _legendre_on_panels(br: np.ndarray, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """``n_nodes`` Gauss-Legendre nodes and weights on each panel ``[br[i], br[i+1]]``."""
    gx, gw = np.polynomial.legendre.leggauss(n_nodes)
    a, b = br[:-1, None], br[1:, None]
    return ((b - a) / 2 * gx + (a + b) / 2).ravel(), ((b - a) / 2 * gw).ravel()


def gauss_legendre_panels(
    lo: float, hi: float, n_nodes: int = 16, ratio: float = GEO_RATIO, n_uniform: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Composite Gauss-Legendre nodes and weights for ``int_lo^hi f dt`` (``0 < lo < hi``).

    Panels grow geometrically from ``lo`` (``ratio``; integrands here behave like ``1/t`` near
    ``t = 0``) until they reach ``(hi - lo)/n_uniform``, then stay uniform.
    """
    if not (np.isfinite(lo) and np.isfinite(hi) and 0 < lo < hi):
        raise ValueError(f"the interval must satisfy 0 < lo < hi, got ({lo!r}, {hi!r})")
    return _legendre_on_panels(panel_breaks(lo, hi, (hi - lo) / n_uniform, ratio), n_nodes)


def geometric_panels(
    lo: float, hi: float, n_nodes: int, n_panels: int
) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre (``n_nodes`` per panel) on ``n_panels`` geometrically spaced panels of
    ``[lo, hi]`` (``0 < lo < hi``): nodes and weights for ``int_lo^hi f dt``."""
    br = lo * (hi / lo) ** (np.arange(n_panels + 1) / n_panels)
    br[0], br[-1] = lo, hi
    return _legendre_on_panels(br, n_nodes)


def time_quadrature(
    eps: float, T: float, n_t: int, max_width: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights for ``E_{t ~ U[eps, T]}`` (weights sum to 1).

    Composite Gauss-Legendre with ``n_t`` nodes per panel; panel breakpoints grow geometrically
    from ``eps`` (ratio 1.25) until the width reaches ``max_width`` (default ``(T - eps)/32``),
    then are uniform with width ``<= max_width``.
    """
    n_t = check_count(n_t, "n_t")
    if not (np.isfinite(eps) and np.isfinite(T) and 0 < eps < T):
        raise ValueError(f"eps must lie in (0, T) = (0, {T:g}), got {eps!r}")
    h = (T - eps) / 32 if max_width is None else float(max_width)
    if not (np.isfinite(h) and h > 0):
        raise ValueError(f"max_width must be a positive number, got {max_width!r}")
    nodes, weights = _legendre_on_panels(panel_breaks(eps, T, h), n_t)
    return nodes, weights / (T - eps)


def log_time_quadrature(eps: float, T: float, n_t: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre in ``log t`` for ``E_{t ~ U[eps, T]}``: nodes and weights (sum ~ 1).

    ``int_eps^T f(t) dt / (T - eps) = int f(e^v) e^v dv / (T - eps)`` with ``n_t`` Legendre nodes
    in ``v in [log eps, log T]``. The weights sum to 1 up to the (super-exponentially small for
    ``n_t >~ 8``) quadrature error of ``int e^v dv``.
    """
    n_t = check_count(n_t, "n_t")
    if not (np.isfinite(eps) and np.isfinite(T) and 0 < eps < T):
        raise ValueError(f"eps must lie in (0, T) = (0, {T:g}), got {eps!r}")
    gx, gw = np.polynomial.legendre.leggauss(n_t)
    lo, hi = math.log(eps), math.log(T)
    v = (hi - lo) / 2 * gx + (hi + lo) / 2
    t = np.exp(v)
    w = (hi - lo) / 2 * gw * t / (T - eps)
    return t, w


@functools.lru_cache(maxsize=16)
def _hermite_roots(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and normalized weights of the ``n``-point probabilists' Gauss-Hermite rule, read-only
    (computed once per ``n``: thousands of nodes take milliseconds)."""
    x, w = roots_hermitenorm(n)
    w = w / w.sum()
    x.flags.writeable = False
    w.flags.writeable = False
    return x, w


def hermite_quadrature(
    n: int, dim: int = 1, prune: float = HERMITE_PRUNE
) -> tuple[np.ndarray, np.ndarray]:
    """Tensor Gauss-Hermite rule for ``E_{xi ~ N(0, I_dim)}``: nodes (q, dim), weights (q,).

    ``n`` nodes per axis (probabilists' Hermite, :func:`scipy.special.roots_hermitenorm`), weights
    normalized to sum 1; product weights below ``prune`` are dropped (then renormalized).
    """
    n = check_count(n, "n_hermite")
    x, w = _hermite_roots(n)
    keep = w > prune
    x, w = x[keep], w[keep]
    grids = np.meshgrid(*([x] * dim), indexing="ij")
    wgrids = np.meshgrid(*([w] * dim), indexing="ij")
    nodes = np.stack([g.ravel() for g in grids], axis=1)
    weights = np.prod(np.stack([g.ravel() for g in wgrids], axis=1), axis=1)
    keep = weights > prune
    nodes, weights = nodes[keep], weights[keep]
    return np.ascontiguousarray(nodes), weights / weights.sum()


def default_n_hermite(features: ProductFeatures, sigma_max: float) -> int:
    """Gauss-Hermite order per axis that resolves the spatial features at ``sigma_max``.

    The rule is close to a trapezoid rule with spacing ``h ~ pi / sqrt(2 n)`` near the centre. The
    narrowest integrand is a product of four spatial features (``phi_i phi_j (m m^T)`` with
    ``m = mu_bar - W_inf phi``): for Gaussian bumps a Gaussian of width ``w = std / 2`` in ``x``,
    i.e. ``w / sigma`` in ``xi``, resolved to ~1e-15 by ``h <= 0.75 w / sigma_max``; for Fourier
    modes frequencies up to ``k = 4 (2 pi n_max / L)``, aliasing-free for
    ``h <= 2 pi / (1.25 k sigma_max + 12)`` (a margin for the posterior's transitions, which
    widen the spectrum; measured: ~1e-11 relative on the misfit part for F_x = 16). Posterior
    transitions alone need ``h <= 0.15``. Clipped to ``[32, 4000]``.
    """
    h = 0.15
    s = max(float(sigma_max), 1e-300)
    for ax in features.space:
        if ax.size <= 1:
            continue
        if ax.kind == "gaussian":
            h = min(h, 0.75 * (ax.spacing / 2) / 2 / s)
        else:
            n_max = max(ax.size - 1 - (ax.size - 1) // 2, (ax.size - 1) // 2)
            k = 4 * 2 * math.pi * n_max / (ax.hi - ax.lo)
            h = min(h, 2 * math.pi / (1.25 * k * s + 12))
    return int(min(4000, max(32, math.ceil(math.pi**2 / (2 * h * h)))))
