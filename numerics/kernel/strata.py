"""The stratified field of lazy (kernel) ensembles: light triples counted per (t, x) cell.

docs/math/finite_fp.md ("The lazy-network (NTK) theory at finite P"). The small-occupancy field
(:mod:`gtv.numerics.kernel.occupancy`) gives every member the *population's* light part: each
light node enters with its probability ``omega_n``. A trained model's light triples are a
multinomial sample, though, and under early stopping the variance of ``D^`` is carried by how many
of them a design puts in each region (the node-design measurement of that page). As for the
linear models (:mod:`gtv.numerics.linear.strata`), the ``(t, x)`` plane is cut into the cells of
:mod:`gtv.numerics.cells` (over the nodes' ``x`` range), a member draws how many of its ``P``
triples land on each heavy node and in each cell (one multinomial), and its light nodes enter
with the frequencies its counts give them,

    ``nu_n = (n_s / P) p_{n|s}``,  ``p_{n|s} = omega_n / sum_{k in s, light} omega_k``

(``s`` the cell of node ``n``), in place of ``omega_n``. Per Talbot pole ``m``:

    ``M_m(n) = kappa_m I + sum_L nu_n w_n phi_n phi_n^T / (1 + q_mn) + heavy``,
    ``A_m(n) = sum_L nu_n w_n mu_n phi_n / (1 + q_mn) + xi_m(n) + heavy``,

and the Gaussian fluctuation keeps the occupancy field's two normals per light node, with the
count fluctuation now *inside each cell* (the cell's count is drawn, so only the positions inside
it fluctuate):

    ``xi_m(n) = P^(-1/2) sum_L w_n phi_n / (1 + q_mn) (sqrt(nu_n (s2_n + v_n)) zeta_n +
    r_mn u_n)``,
    ``u_n = sqrt(n_s / P) (sqrt(p_{n|s}) zeta'_n - p_{n|s} sum_{k in s} sqrt(p_{k|s}) zeta'_k)``

(``E[u_n u_k] = (n_s / P)(p_{n|s} delta_nk - p_{n|s} p_{k|s})`` within a cell, zero across).
Member ``k`` is ``W_k = Re sum_m e_m M_m(n)^-1 A_m(n)`` with the heavy nodes exact as in the
occupancy field. Averaged over the counts the light frequencies are ``omega_n``; with one cell and
no heavy node a member is the occupancy field's member with the same normals (a test).

The cell sums ``sum_{n in s} p_{n|s} w_n phi_n phi_n^T / (1 + q_mn)`` are formed once per pole and
cell; a member's matrix is its counts times them, one ``r x r`` complex solve per pole. The poles
come in complex-conjugate pairs and the members are real, so only one pole of each pair is solved
(``2 Re``).

**Centring.** Given its counts a member's light part is still a deterministic equivalent with
the population's leverage ``q_mn``, while the counts already carry part of the design's
fluctuation that the discount ``1 / (1 + q)`` resums: the members' mean comes out shrunk towards
zero. At ``eps = 0.01``, ``P = 256`` the least-squares slope of their mean on that of models
fitted on node designs is 0.961 at ``tau = 3`` and 0.994 at ``tau = 10`` (the cavity mean's:
1.008 and 1.006; benchmarks/measure_ntk_closure.py, docs/math/finite_fp.md). The field therefore
takes its fluctuations from the strata and its mean from the cavity equations,
``c_k - mean_k c_k + E W``. This was decided after the uncentred field's gap mass had been seen
(docs/math/finite_fp.md says so); ``centre=False`` gives the members as drawn.

Streams: member ``k`` draws its heavy-and-cell counts, its heavy labels, then ``zeta`` and
``zeta'`` from ``stream(seed, "field").spawn(N)[k]``. D = 1.
"""

from __future__ import annotations

import numpy as np

from gtv.numerics.cells import STRATA, CellGrid, cell_grid
from gtv.numerics.checks import check_count
from gtv.numerics.kernel.gram import serial_blas
from gtv.numerics.kernel.occupancy import KernelOccupancySplit
from gtv.numerics.streams import model_rngs

__all__ = ["KernelStrata", "kernel_stratified_coefficients"]

#: Members solved together (their matrices are formed by one product per pole).
_CHUNK = 128


class KernelStrata:
    """The cells of the light nodes of one :class:`KernelOccupancySplit` (module docstring).

    Parameters
    ----------
    split : KernelOccupancySplit
    shape : (int, int), default STRATA
        Time bins and space bins of :func:`gtv.numerics.cells.cell_grid` (over ``[eps, T]`` and
        the nodes' ``x`` range).

    Attributes
    ----------
    grid : CellGrid
    cell : ndarray (Q_L,) int
        Compact cell of each light node (0 … S - 1).
    mass : ndarray (S,)
        Probability of a light triple in each cell.
    conditional : ndarray (Q_L,)
        ``p_{n|s}``.
    """

    def __init__(self, split: KernelOccupancySplit, shape: tuple[int, int] = STRATA):
        if not isinstance(split, KernelOccupancySplit):
            raise TypeError("split must be a KernelOccupancySplit")
        th = split.moments.theory
        x = th.nodes_x[:, 0]
        self.split = split
        self.grid: CellGrid = cell_grid(th.eps, th.schedule.T, (x.min(), x.max()), shape)
        prob = split.node_probability
        L = split.light
        cells, self.cell = np.unique(self.grid.cell(th.nodes_t[L], x[L]), return_inverse=True)
        self.mass = np.bincount(self.cell, prob[L], minlength=cells.size)
        self.conditional = prob[L] / self.mass[self.cell]
        # one multinomial over the heavy nodes, then the cells
        draw_p = np.concatenate([prob[split.heavy], self.mass])
        self._draw_p = draw_p / draw_p.sum()

    @property
    def n_cells(self) -> int:
        """Number of cells holding light nodes."""
        return self.mass.size

    def draw(self, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        """One member's heavy counts (Q_H,), heavy label sums (Q_H,), cell counts (S,) and light
        normals (2, Q_L)."""
        sp = self.split
        counts = rng.multinomial(int(sp.moments.P), self._draw_p)
        heavy, cells = counts[: sp.heavy.size], counts[sp.heavy.size :]
        return heavy, sp.label_sums(rng, heavy), cells, rng.standard_normal((2, sp.light.size))


def kernel_stratified_coefficients(
    strata: KernelStrata,
    n_models: int,
    seed: int | np.random.SeedSequence = 0,
    *,
    centre: bool = True,
) -> np.ndarray:
    """Eigen-coefficients (N, r) of the stratified field (module docstring):
    ``D^_k(z) = psi(z) . c_k``; member ``k`` from ``stream(seed, "field").spawn(N)[k]``.

    With ``centre`` (the default) the members are moved together so that their mean is the
    cavity mean: ``c_k - mean_k c_k + mean`` (module docstring, *Centring*; needs ``N >= 2``).
    ``centre=False`` gives the members as drawn."""
    if not isinstance(strata, KernelStrata):
        raise TypeError("strata must be a KernelStrata")
    n_models = check_count(n_models, "n_models", 2 if centre else 1)
    P = float(strata.split.moments.P)
    if P != int(P):
        raise ValueError(f"P must be an integer to draw triples, got {P!r}")
    draws = [strata.draw(rng) for rng in model_rngs(seed, "field", n_models)]
    c = _stratified_members(strata, draws)
    if centre:
        c += strata.split.moments.mean[None, :] - c.mean(axis=0)
    return c


def _pole_representatives(z: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of one pole per conjugate pair (and every real pole) and their weights 2 (1)."""
    keep, weight = [], []
    used = np.zeros(z.size, bool)
    scale = max(float(np.max(np.abs(z))), 1e-300)
    for m in range(z.size):
        if used[m]:
            continue
        used[m] = True
        if abs(z[m].imag) <= 1e-12 * scale:
            keep.append(m)
            weight.append(1.0)
            continue
        partner = np.flatnonzero(~used & (np.abs(z - np.conj(z[m])) <= 1e-10 * scale))
        partner = partner[np.abs(e[partner] - np.conj(e[m])) <= 1e-10 * np.abs(e[m])]
        if partner.size == 0:
            raise RuntimeError("the filter's poles are not closed under conjugation")
        used[partner[0]] = True
        keep.append(m)
        weight.append(2.0)
    return np.array(keep), np.array(weight)


@serial_blas
def _stratified_members(strata: KernelStrata, draws: list, *, pairs: bool = True) -> np.ndarray:
    """:func:`kernel_stratified_coefficients` for drawn members (``pairs=False``: every pole
    solved, the check of the conjugate-pair shortcut)."""
    sp = strata.split
    mo = sp.moments
    th = mo.theory
    P = float(mo.P)
    N, S = len(draws), strata.n_cells
    phi = th.psi_nodes / np.sqrt(th.s)[None, :]
    r = phi.shape[1]
    L, H = sp.light, sp.heavy
    phL = phi[L]
    w, mu = th.lam[L], th.mu_bar[L, 0]
    noise_var = sp.label_variance
    cell, cond = strata.cell, strata.conditional
    heavy = np.array([d[0] for d in draws], float)  # (N, Q_H)
    sums = np.array([d[1] for d in draws])
    n_cell = np.array([d[2] for d in draws], float) / P  # (N, S): n_s / P
    z_label = np.array([d[3][0] for d in draws])  # (N, Q_L)
    z_count = np.array([d[3][1] for d in draws])
    nu = n_cell[:, cell] * cond  # (N, Q_L) the members' light node frequencies
    # count fluctuations inside each cell (module docstring)
    sq = np.sqrt(cond)
    cell_sum = np.zeros((N, S))
    np.add.at(cell_sum.T, cell, (sq * z_count).T)
    u = np.sqrt(n_cell[:, cell]) * (sq * z_count - cond * cell_sum[:, cell])
    label = np.sqrt(nu * noise_var / P) * z_label  # (N, Q_L)
    # heavy nodes: exact and the same for every pole; only the members that drew some
    phH = phi[H]
    b_heavy = (sums * sp.w_heavy / P) @ phH
    heavy_rows = {
        k: (phH[h].T * (heavy[k, h] * sp.w_heavy[h] / P)) @ phH[h]
        for k in np.flatnonzero(heavy.sum(axis=1))
        for h in (np.flatnonzero(heavy[k]),)
    }
    in_cell = [np.flatnonzero(cell == s) for s in range(S)]
    poles = np.arange(mo.poles.size)
    weights = np.ones(poles.size)
    if pairs:
        poles, weights = _pole_representatives(mo.poles, mo.coefficients)
    kap = th.ridge - mo.poles
    out = np.zeros((N, r))
    eye = np.eye(r)
    for m, g in zip(poles, weights, strict=True):
        coef = w / (1.0 + mo.leverage[m, L])  # w_n / (1 + q_mn), complex
        a = cond * coef
        # per cell: sum_n p_{n|s} w_n phi_n phi_n^T / (1 + q_mn)
        G = np.zeros((S, r, r), complex)
        for s, idx in enumerate(in_cell):
            G[s] = (phL[idx].T * a[idx]) @ phL[idx]
        G_real = G.reshape(S, r * r).view(float).reshape(S, 2 * r * r)
        res = mu - phL @ mo.pole_means[m]
        e = g * mo.coefficients[m]
        for lo in range(0, N, _CHUNK):
            sl = slice(lo, min(N, lo + _CHUNK))
            M = (n_cell[sl] @ G_real).view(complex).reshape(-1, r, r)
            M += kap[m] * eye
            for k in range(lo, sl.stop):
                if k in heavy_rows:
                    M[k - lo] += heavy_rows[k]
            # the light nodes' mean part, label noise and count fluctuation, then the heavy labels
            y = (coef * (nu[sl] * mu + label[sl] + res * u[sl] / np.sqrt(P))) @ phL + b_heavy[sl]
            W = np.linalg.solve(M, y[:, :, None])[:, :, 0]
            out[sl] += (e * W).real
    return out / np.sqrt(th.s)[None, :]
