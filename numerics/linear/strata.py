"""The light part of the small-occupancy field, conditioned on where the light triples land.

docs/math/finite_fp.md, section *Occupancy strata*. The small-occupancy field
(:mod:`gtv.numerics.linear.occupancy`) replaces the sum over a member's light triples by its
deterministic equivalent plus a Gaussian fluctuation with the *population* covariance. A trained
model's light triples are a multinomial sample, though: in some designs a region of ``(t, x)`` is
less occupied than average, and at ``F/P = 1/4`` the variance of ``D^`` at small ``t`` is carried
by those designs. Here the ``(t, x)`` plane is cut into cells (strata) ``s`` -- geometric bins in
``t`` from ``eps`` to ``T``, uniform bins in ``x`` over the spatial features' range widened by a
sixth of it on each side plus two open outer bins -- and a member's light sums are replaced by
their equivalent *given the number* ``n_s`` *of its light triples in each cell*:

    ``M_L(n) = rho I + sum_s (n_s / P) m_s``,   ``m_s = E[w phi phi^T / (1 + q) | s, light]``,
    ``A_L(n) = sum_s (n_s / P) a_s``,           ``a_s = E[w mu_bar phi^T / (1 + q) | s, light]``,
    ``xi(n) ~ N(0, sum_s n_s K_s / P**2)``,     ``K_s = Cov(w r phi / (1 + q) | s, light)``

(``q`` the cavity leverage, ``r = x0 - W_bar phi + sqrt(v) zeta`` the cavity residual). Averaged
over the multinomial counts these are the unconditioned light part (``E n_s = P pi_s``); as
``P -> inf`` the counts concentrate and the field is again the first-order Gaussian field. The
counts are what is random; positions inside a cell and labels enter only through the cell's
conditional moments. A light triple that lands in a cell without light quadrature mass is kept
exactly, like a heavy one; so are, on request (``min_count``), the light triples of *sparse*
cells, expected to hold fewer than ``min_count`` of them per member. That option is a
diagnostic, not the theory: with ``min_count = 1`` at ``F/P >= 1`` nearly every triple is kept
exactly and the field *is* a trained ensemble (docs/math/finite_fp.md).

``xi`` is drawn as ``noise @ (sqrt(n[noise_stratum]) * zeta) / P`` with one standard normal per
column of ``noise``: per cell the eigen-directions of ``K_s`` until the discarded eigenvalues sum
to at most :data:`NOISE_TRUNCATION` of its trace. D = 1.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from gtv.numerics.cells import STRATA, CellGrid, cell_grid

__all__ = ["NOISE_TRUNCATION", "STRATA", "LightStrata", "light_strata"]

#: Relative trace of a cell's label-noise covariance that may be dropped.
NOISE_TRUNCATION = 1e-9


@dataclass(frozen=True)
class LightStrata:
    """Per-cell conditional moments of the light triples (module docstring).

    Attributes
    ----------
    grid : CellGrid
        The cells (:func:`gtv.numerics.cells.cell_grid`: geometric time bins between ``eps`` and
        ``T``, space bins with open outer ones); ``shape``, ``t_edges`` and ``x_edges`` are its.
    index : ndarray (n_t * n_x,) of int
        Compact cell number of cell ``i_t * n_x + i_x``, ``-1`` where the cell has no light
        quadrature mass or is sparse (its triples are kept exactly).
    probability : ndarray (S,)
        Population probability of a light triple in each cell with light mass.
    sparse : ndarray (S,) of bool
        Cells expected to hold fewer than ``min_count`` light triples per member.
    gram : ndarray (S, F * F)
        ``m_s`` flattened.
    vector : ndarray (S, F)
        ``a_s``.
    noise : ndarray (F, R)
        Square-root columns of the ``K_s``.
    noise_stratum : ndarray (R,) of int
        Cell of each column.
    """

    grid: CellGrid
    index: np.ndarray
    probability: np.ndarray
    sparse: np.ndarray
    gram: np.ndarray
    vector: np.ndarray
    noise: np.ndarray
    noise_stratum: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        """Time bins and space bins."""
        return self.grid.shape

    @property
    def t_edges(self) -> np.ndarray:
        """Interior time edges (n_t - 1,)."""
        return self.grid.t_edges

    @property
    def x_edges(self) -> np.ndarray:
        """Space edges (n_x - 1,); the first and last bins are open."""
        return self.grid.x_edges

    def cells(self, t: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Compact cell numbers of triples at times ``t`` and positions ``x`` (any equal shapes;
        ``-1`` for a cell without light mass)."""
        return self.index[self.grid.cell(t, x)]

    def light_sums(
        self, counts: np.ndarray, normals: np.ndarray, P: int, ridge: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(M_L(n), A_L(n), xi(n))`` for ``k`` members' cell counts ``counts`` (k, S) and
        their standard normals ``normals`` (k, R): shapes (k, F, F), (k, F), (k, F)."""
        k, F = counts.shape[0], self.vector.shape[1]
        M = (counts @ self.gram).reshape(k, F, F) / P
        M[:, np.arange(F), np.arange(F)] += ridge
        A = counts @ self.vector / P
        xi = (normals * np.sqrt(counts[:, self.noise_stratum])) @ self.noise.T / P
        return M, A, xi


def light_strata(
    nodes: object,
    coefficients: dict[str, np.ndarray],
    light: np.ndarray,
    *,
    eps: float,
    T: float,
    x_range: tuple[float, float],
    P: float,
    shape: tuple[int, int] = STRATA,
    min_count: float = 0.0,
) -> LightStrata:
    """Cell moments of the light triples on the population nodes.

    Parameters
    ----------
    nodes : PopulationNodes
        :func:`gtv.numerics.linear.nodes.population_nodes` of the theory.
    coefficients : dict
        Per node (n_t, n_x): ``"gram"`` = ``w / (1 + q)``, ``"vector"`` = ``w mu_bar / (1 + q)``,
        ``"second"`` = ``w**2 (c + v) / (1 + q)**2`` and ``"residual"`` =
        ``w (mu_bar - W_bar phi) / (1 + q)`` (module docstring), ``"W_bar"`` (F,).
    light : ndarray of bool (n_t, n_x)
    eps, T : float
        Time range.
    x_range : (float, float)
        Range of the spatial features.
    P : float
        Triples per member.
    shape : (int, int), default STRATA
        Time bins (``>= 1``) and space bins (``>= 3``).
    min_count : float, default 0
        Cells with ``P pi_s < min_count`` are sparse (``0``: none is; module docstring).
    """
    if not (np.isfinite(min_count) and min_count >= 0):
        raise ValueError(f"min_count must be a finite number >= 0, got {min_count!r}")
    grid = cell_grid(eps, T, x_range, shape)
    n_t, n_x = grid.shape
    it = grid.time_bin(nodes.t)
    cell = grid.cell(nodes.t[:, None], nodes.x)
    prob = nodes.prob * light
    mass = np.bincount(cell.ravel(), prob.ravel(), minlength=n_t * n_x)
    kept = np.flatnonzero(mass > 0)
    index = np.full(n_t * n_x, -1)
    index[kept] = np.arange(kept.size)
    sparse = P * mass[kept] < min_count
    index[kept[sparse]] = -1
    F = nodes.phi_s.shape[2] * nodes.phi_t.shape[1]
    gram = np.empty((kept.size, F * F))
    vector = np.empty((kept.size, F))
    columns, owner = [], []
    for j, c in enumerate(kept):
        rows = np.flatnonzero(it == c // n_x)  # the time nodes of the cell's time bin
        sub = _time_rows(nodes, rows)
        p = (prob * (cell == c))[rows] / mass[c]
        gram[j] = sub.gram(p * coefficients["gram"][rows]).ravel()
        vector[j] = sub.vector(p * coefficients["vector"][rows])
        g = sub.vector(p * coefficients["residual"][rows])
        K = sub.gram(p * coefficients["second"][rows]) - np.outer(g, g)
        ev, U = np.linalg.eigh((K + K.T) / 2)
        ev = np.clip(ev, 0.0, None)[::-1]
        U = U[:, ::-1]
        total = ev.sum()
        if total <= 0:
            continue
        # keep the leading directions until the dropped tail is below the truncation
        tail = total - np.cumsum(ev)
        r = int(np.searchsorted(-tail, -NOISE_TRUNCATION * total)) + 1
        columns.append(U[:, :r] * np.sqrt(ev[:r]))
        owner.append(np.full(r, j))
    noise = np.concatenate(columns, axis=1) if columns else np.zeros((F, 0))
    noise_stratum = np.concatenate(owner) if owner else np.zeros(0, dtype=int)
    return LightStrata(
        grid, index, mass[kept], sparse, gram, vector, noise, noise_stratum
    )  # fmt: skip


def _time_rows(nodes: object, rows: np.ndarray) -> object:
    """``nodes`` restricted to the time nodes ``rows``."""
    return replace(nodes, **{f.name: getattr(nodes, f.name)[rows] for f in fields(nodes)})
