"""The quadrature nodes of a linear theory's DSM triple population, with product-structure sums.

docs/math/finite_fp.md ("Numerics"). :func:`population_nodes` lays out the nodes of a
:class:`~gtv.numerics.linear.theory.LinearTheory`'s quadrature (its Gauss-Legendre time nodes;
per node and mixture component its Gauss-Hermite rule in ``x``) with the posterior moments and the
two feature factors ``phi = phi_space (x) phi_time``; :class:`PopulationNodes` sums over them per
time node in spatial blocks (:mod:`gtv.numerics.linear.node_kernels`), then one product over time
nodes. The cavity equations (:mod:`gtv.numerics.linear.cavity`), the small-occupancy split
(:mod:`gtv.numerics.linear.occupancy`) and its strata run on them. D = 1.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from gtv.numerics.checks import check_count
from gtv.numerics.dsm import dsm_weights
from gtv.numerics.linear.node_kernels import (
    active_nodes,
    spatial_grams,
    spatial_quadratic,
    spatial_quadratic_grams,
)
from gtv.numerics.linear.population import time_panel_width
from gtv.numerics.linear.theory import LinearTheory
from gtv.numerics.posterior import posterior_stats
from gtv.numerics.quadrature import hermite_quadrature, time_quadrature

__all__ = ["ACTIVE_FEATURE", "PopulationNodes", "population_nodes"]

#: Nodes whose spatial features are all below this fraction of the largest ``|phi_s|`` are left
#: out of the node kernels' sums (every term they add to a Gram block is below ``1e-20`` of the
#: largest; :attr:`PopulationNodes.active_layout`).
ACTIVE_FEATURE = 1e-10


@dataclass(frozen=True)
class PopulationNodes:
    """Quadrature nodes of the DSM triple population, grouped by time node, with the
    product-structure sums over them (:meth:`gram`, :meth:`quadratic`, :meth:`vector`,
    :meth:`apply`; per time node a spatial block, then one product over time nodes).

    ``x`` (n_t, n_x) points, ``prob`` (n_t, n_x) probabilities (summing to 1), ``w`` (n_t,) DSM
    weights, ``mu``/``s2`` (n_t, n_x) posterior mean and variance, ``phi_s`` (n_t, n_x, F_s) and
    ``phi_t`` (n_t, F_t) the two feature factors.
    """

    t: np.ndarray
    x: np.ndarray
    prob: np.ndarray
    w: np.ndarray
    mu: np.ndarray
    s2: np.ndarray
    phi_s: np.ndarray
    phi_t: np.ndarray

    @functools.cached_property
    def active_layout(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The node kernels' layout (made once per node set): per time node the *active* nodes,
        those with a spatial feature above :data:`ACTIVE_FEATURE` times the largest ``|phi_s|``,
        in ``x`` order, their spatial features transposed and compacted, ``psT`` (n_t, F_s, n_c)
        float64 (zeros past ``count[k]``), their positions ``idx`` (n_t, n_c), numbers ``count``
        (n_t,) and the node spans of the 4 x 4 feature tiles ``span`` (n_t, G, G, 2)
        (:func:`~gtv.numerics.linear.node_kernels.active_nodes`)."""
        ps = np.ascontiguousarray(self.phi_s, dtype=float)
        order = np.argsort(self.x, axis=1, kind="stable")
        return active_nodes(ps, order, ACTIVE_FEATURE)

    def active_layout_reference(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Plain-numpy :attr:`active_layout`."""
        ps = np.asarray(self.phi_s, dtype=float)
        big = np.abs(ps).max(axis=2)
        cut = ACTIVE_FEATURE * max(float(big.max(initial=0.0)), np.finfo(float).tiny)
        active = big > cut
        count = active.sum(axis=1).astype(np.intp)
        n_t, _, fs = ps.shape
        n_g = -(-fs // 4)
        n_c = max(1, int(count.max(initial=0)))
        psT = np.zeros((n_t, fs, n_c))
        idx = np.zeros((n_t, n_c), dtype=np.intp)
        span = np.zeros((n_t, n_g, n_g, 2), dtype=np.intp)
        for k in range(n_t):  # the active nodes of each time node, in x order
            order = np.argsort(self.x[k], kind="stable")
            sel = order[active[k, order]]
            idx[k, : sel.size] = sel
            psT[k, :, : sel.size] = ps[k, sel].T
            # the largest |feature| per group of 4 at each active node, (G, count)
            gm = np.stack([np.abs(ps[k, sel, g : g + 4]).max(axis=1) for g in range(0, fs, 4)])
            for g in range(n_g):
                for h in range(n_g):
                    need = np.flatnonzero(gm[g] * gm[h] > cut * cut)
                    if need.size:
                        span[k, g, h] = need[0], need[-1] + 1
        return psT, idx, count, span

    def gram(self, a: np.ndarray) -> np.ndarray:
        """``sum_n a_n phi_n phi_n^T`` (F, F) for node coefficients ``a`` (n_t, n_x) (numba
        spatial blocks over the active nodes,
        :func:`~gtv.numerics.linear.node_kernels.spatial_grams`)."""
        psT, idx, count, span = self.active_layout
        a = np.ascontiguousarray(a, dtype=float)
        return self._assemble(spatial_grams(psT, idx, count, span, a))

    def gram_reference(self, a: np.ndarray) -> np.ndarray:
        """Plain-numpy :meth:`gram`."""
        ps = self.phi_s
        return self._assemble(np.matmul(ps.transpose(0, 2, 1), ps * a[:, :, None]))

    def _assemble(self, S: np.ndarray) -> np.ndarray:
        """``sum_k S[k] (x) phi_t phi_t^T`` (F, F) for spatial blocks ``S``, by symmetry over
        the index pairs ``i <= j`` (space) and ``a <= b`` (time) only; exactly symmetric."""
        fs, ft = S.shape[1], self.phi_t.shape[1]
        si, sj, _ = _pairs(fs)
        R = S[:, si, sj].T @ self._time_pair_products  # (space pairs, time pairs)
        return np.take(R, _assembly_index(fs, ft)).reshape(fs * ft, fs * ft)

    @functools.cached_property
    def _time_pair_products(self) -> np.ndarray:
        """``phi_t[k, a] phi_t[k, b]`` for the time index pairs ``a <= b`` (n_t, pairs)."""
        ta, tb, _ = _pairs(self.phi_t.shape[1])
        return np.ascontiguousarray(self.phi_t[:, ta] * self.phi_t[:, tb])

    def _time_blocks(self, B: np.ndarray) -> np.ndarray:
        """A *symmetric* ``B`` contracted with ``phi_t`` on both sides at every time node
        (n_t, F_s, F_s): ``sum_{a <= b} phi_t[k, a] phi_t[k, b] (B_ab + B_ab^T [a < b])`` with the
        spatial blocks ``B_ab = B[(., a), (., b)]`` (``B_ba = B_ab^T`` by symmetry). Each result
        is symmetric: one product over the time index pairs for the spatial index pairs
        ``i <= j`` only, then both triangles filled from them; :meth:`_time_blocks_reference`
        contracts all of ``B``."""
        fs, ft = self.phi_s.shape[2], self.phi_t.shape[1]
        block, transposed, off = _time_block_index(fs, ft)
        blocks = np.take(B, block)  # (time pairs, space pairs)
        blocks[off] += np.take(B, transposed)
        out = self._time_pair_products @ blocks  # (n_t, space pairs)
        return np.take(out, _pairs(fs)[2], axis=1)

    def _time_blocks_reference(self, B: np.ndarray) -> np.ndarray:
        """Plain :meth:`_time_blocks`: ``einsum`` over both time indices."""
        pt = self.phi_t
        fs, ft = self.phi_s.shape[2], pt.shape[1]
        B4 = B.reshape(fs, ft, fs, ft)
        path = _time_block_path(pt.shape[0], fs, ft)
        return np.einsum("ka,iajb,kb->kij", pt, B4, pt, optimize=path)

    def quadratic(self, B: np.ndarray) -> np.ndarray:
        """``phi_n^T B phi_n`` at every node (n_t, n_x) for a symmetric (F, F) matrix ``B``
        (numba spatial blocks, :func:`~gtv.numerics.linear.node_kernels.spatial_quadratic`; 0 at
        the inactive nodes, :attr:`active_layout`, where it is below ``1e-20 |B|``)."""
        Bt = np.ascontiguousarray(self._time_blocks(B), dtype=float)
        psT, idx, count, span = self.active_layout
        return spatial_quadratic(psT, idx, count, span, Bt, self.prob.shape[1])

    def quadratic_reference(self, B: np.ndarray) -> np.ndarray:
        """Plain-numpy :meth:`quadratic`."""
        Bt = self._time_blocks_reference(B)
        return np.einsum("kxi,kij,kxj->kx", self.phi_s, Bt, self.phi_s, optimize=True)

    def quadratic_gram(self, B: np.ndarray, c: np.ndarray, P: float | None = None) -> np.ndarray:
        """:meth:`gram` of the node coefficients made from the quadratic forms ``v =``
        :meth:`quadratic` ``(B)``: ``c v``, or with ``P`` ``c / (1 + q)`` with the leverages
        ``q = max(0, w v / P)``; both node sums in one pass over each time node's features
        (:func:`~gtv.numerics.linear.node_kernels.spatial_quadratic_grams`; the same values as
        the two calls, to rounding)."""
        Bt = np.ascontiguousarray(self._time_blocks(B), dtype=float)
        psT, idx, count, span = self.active_layout
        c = np.ascontiguousarray(c, dtype=float)
        w = np.ascontiguousarray(self.w, dtype=float)
        saturate = P is not None
        S = spatial_quadratic_grams(psT, idx, count, span, Bt, c, w, float(P or 1.0), saturate)
        return self._assemble(S)

    def quadratic_gram_reference(
        self, B: np.ndarray, c: np.ndarray, P: float | None = None
    ) -> np.ndarray:
        """Plain-numpy :meth:`quadratic_gram`."""
        v = self.quadratic_reference(B)
        if P is None:
            return self.gram_reference(c * v)
        return self.gram_reference(c / (1 + np.clip(self.w[:, None] * v / P, 0.0, None)))

    def vector(self, a: np.ndarray) -> np.ndarray:
        """``sum_n a_n phi_n`` (F,) for node coefficients ``a`` (n_t, n_x) (per time node a
        batched matrix product over its nodes, then one product over time nodes)."""
        v = np.matmul(np.asarray(a, dtype=float)[:, None, :], self.phi_s)[:, 0, :]  # (n_t, F_s)
        return (v.T @ self.phi_t).reshape(-1)

    def apply(self, W: np.ndarray) -> np.ndarray:
        """``W phi`` at every node (n_t, n_x) for a weight vector ``W`` (F,)."""
        fs, ft = self.phi_s.shape[2], self.phi_t.shape[1]
        Wt = W.reshape(fs, ft) @ self.phi_t.T  # (F_s, n_t)
        return np.matmul(self.phi_s, Wt.T[:, :, None])[:, :, 0]

    def full_features(self) -> np.ndarray:
        """Every node's full feature vector, (n_t * n_x, F) (index ``i F_t + a``)."""
        n_t, n_x, fs = self.phi_s.shape
        out = self.phi_s[:, :, :, None] * self.phi_t[:, None, None, :]
        return out.reshape(n_t * n_x, fs * self.phi_t.shape[1])


@functools.cache
def _time_block_path(n_t: int, fs: int, ft: int) -> list:
    """The contraction order of :meth:`PopulationNodes._time_blocks` (``numpy.einsum_path``,
    once per shape instead of on every call)."""
    pt, B4 = np.empty((n_t, ft)), np.empty((fs, ft, fs, ft))
    return np.einsum_path("ka,iajb,kb->kij", pt, B4, pt, optimize="greedy")[0]


@functools.cache
def _time_block_index(fs: int, ft: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat positions in an (F, F) matrix ``B`` for :meth:`PopulationNodes._time_blocks`: entry
    ``(i, j)`` of the spatial block ``B_ab`` for the time pairs ``a <= b`` (rows) and the spatial
    pairs ``i <= j`` (columns), the same entry of ``B_ab^T`` for the time pairs ``a < b``, and
    the mask of those pairs."""
    (si, sj, _), (ta, tb, _) = _pairs(fs), _pairs(ft)
    shape = (fs, ft, fs, ft)
    block = np.ravel_multi_index((si[None, :], ta[:, None], sj[None, :], tb[:, None]), shape)
    off = ta != tb
    transposed = np.ravel_multi_index(
        (sj[None, :], ta[off, None], si[None, :], tb[off, None]), shape
    )
    return block, transposed, off


@functools.cache
def _assembly_index(fs: int, ft: int) -> np.ndarray:
    """Flat positions in the (space pairs, time pairs) matrix ``R`` of :meth:`PopulationNodes.
    _assemble` of every entry ``((i, a), (j, b))`` of the (F, F) Gram, ``(fs, ft, fs, ft)``."""
    s_pair, t_pair = _pairs(fs)[2], _pairs(ft)[2]
    n_t_pairs = ft * (ft + 1) // 2
    flat = s_pair[:, None, :, None] * n_t_pairs + t_pair[None, :, None, :]
    return np.ascontiguousarray(flat)


@functools.cache
def _pairs(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index pairs ``i <= j`` of ``range(n)`` and the pair number of every ``(i, j)``."""
    i, j = np.triu_indices(n)
    number = np.empty((n, n), dtype=np.intp)
    number[i, j] = number[j, i] = np.arange(i.size)
    return i, j, number


def population_nodes(
    theory: LinearTheory, *, n_t: int | None = None, prune: float | None = None
) -> PopulationNodes:
    """The nodes of ``theory``'s quadrature (1-D data), with features and posterior moments.

    ``n_t``/``prune`` give the coarser rule of
    :data:`gtv.numerics.linear.cavity.PREDICTION_RULE`.

    Parameters
    ----------
    theory : LinearTheory
    n_t : int, optional
        Gauss-Legendre nodes per time panel (the panels of
        :func:`~gtv.numerics.linear.population.time_panel_width`); default: ``theory``'s own time
        rule (``theory.t_nodes``).
    prune : float, optional
        Gauss-Hermite weights below it are dropped
        (:func:`gtv.numerics.quadrature.hermite_quadrature`; default its ``HERMITE_PRUNE``);
        ``theory.n_hermite`` nodes per component either way.

    Returns
    -------
    PopulationNodes
    """
    if not isinstance(theory, LinearTheory):
        raise TypeError("theory must be a LinearTheory")
    if theory.dim != 1:
        raise ValueError(f"theory: only 1-D data is supported, got D = {theory.dim}")
    s = theory.schedule
    if n_t is None:
        t, t_weights = theory.t_nodes, theory.t_weights
    else:
        n_t = check_count(n_t, "n_t")
        width = time_panel_width(theory.features, theory.eps, s.T)
        t, t_weights = time_quadrature(theory.eps, s.T, n_t, width)
    if prune is None:
        xi, xw = hermite_quadrature(theory.n_hermite, 1)
    else:
        if not (np.isfinite(prune) and 0 <= prune < 1e-3):
            raise ValueError(f"prune must lie in [0, 1e-3), got {prune!r}")
        xi, xw = hermite_quadrature(theory.n_hermite, 1, prune)
    data = theory.data[:, 0]
    alpha, sigma = np.asarray(s.alpha(t)), np.sqrt(np.asarray(s.sigma2(t)))
    x = alpha[:, None, None] * data[None, :, None] + sigma[:, None, None] * xi[None, None, :, 0]
    n_t = t.size
    x = x.reshape(n_t, -1)
    prob = np.broadcast_to(
        t_weights[:, None, None] * xw[None, None, :] / data.size,
        (n_t, data.size, xw.size),
    ).reshape(n_t, -1)
    tt = np.broadcast_to(t[:, None], x.shape).ravel()
    post = posterior_stats(theory.data, x.reshape(-1, 1), tt, s)
    phi_s = theory.features.evaluate_space(x.reshape(-1, 1)).reshape(n_t, x.shape[1], -1)
    return PopulationNodes(
        t=t,
        x=x,
        prob=np.ascontiguousarray(prob),
        w=dsm_weights(s, t),
        mu=post.mean[:, 0].reshape(x.shape),
        s2=post.cov_trace.reshape(x.shape),
        phi_s=phi_s,
        phi_t=theory.features.time.evaluate(t),
    )
