"""The small-occupancy field of lazy (kernel) ensembles: heavy triples exact, per filter pole.

docs/math/finite_fp.md ("The lazy-network (NTK) theory at finite P"). The linear-model field
(:mod:`gtv.numerics.linear.occupancy`) carried over to the finite-P kernel theory
(:mod:`gtv.numerics.kernel.finite_p`). In the scaled Nystrom eigenfeatures
``phi = s^(-1/2) psi`` a lazily trained model is ``W = sum_m e_m (Sigma^ + kappa_m)^(-1) b^``
(the filter's Talbot poles, complex ridges ``kappa_m``). The cavity equations give every node
``n`` a leverage ``q_mn`` per pole. Nodes with ``max_m |q_mn| > q_star`` are **heavy**: a member
draws how many of its ``P`` triples land on each of them (one multinomial over the nodes' law)
and each such triple's label from the node's posterior over the data points, and keeps them
exactly. The **light** nodes are replaced, per pole, by their cavity equivalent

    ``M_m = kappa_m I + sum_L omega_n w_n phi_n phi_n^T / (1 + q_mn)``,
    ``A_m = sum_L omega_n w_n mu_n phi_n / (1 + q_mn) + xi_m``,

with one Gaussian fluctuation shared by all poles: per light node two standard normals
``zeta_n`` (the label noise, variance ``s2_n + v_n``: posterior variance plus the model's own
scatter ``v_n = Var D^(z_n)`` of the cavity moments) and ``zeta'_n`` (the fluctuation of the
node's count, projected so that the counts keep their total: the ``- g g^T`` term of the cavity
covariance), so that

    ``xi_m = P^(-1/2) sum_L w_n phi_n / (1 + q_mn) (sqrt(omega_n (s2_n + v_n)) zeta_n +
    r_mn u_n)``,  ``r_mn = mu_n - W_bar_m . phi_n``,
    ``u_n = sqrt(omega_n) zeta'_n - c omega_n sum_L sqrt(omega_k) zeta'_k``,
    ``c = (1 - sqrt(1 - p_L)) / p_L``,  ``p_L = sum_L omega_n``

(``E[u_n u_k] = omega_n delta_nk - omega_n omega_k``). Member ``k`` is then

    ``W_k = Re sum_m e_m (M_m + sum_H (c_n w_n / P) phi_n phi_n^T)^(-1)
    (A_m + sum_H (w_n / P) (sum of the node's labels) phi_n)``,

solved by the Woodbury identity on the member's few heavy nodes. As ``P -> inf`` no node is
heavy and the field is Gaussian with the cavity covariance up to ``v``'s pole structure (the
cavity pairs each pole's own scatter; the field uses the model's total one). With one pole
(``tau = inf``) it is the linear-model field in the eigenfeatures.

Streams: member ``k`` draws its heavy counts, their labels, then ``zeta`` and ``zeta'`` from
``stream(seed, "field").spawn(N)[k]``. D = 1.
"""

from __future__ import annotations

import numpy as np

from gtv.numerics.checks import check_count, check_nonnegative_time
from gtv.numerics.kernel.finite_p import FiniteKernelMoments
from gtv.numerics.kernel.gram import serial_blas
from gtv.numerics.streams import model_rngs

__all__ = ["HEAVY_LEVERAGE", "KernelOccupancySplit", "kernel_occupancy_coefficients"]

#: Default leverage above which a node's triples are kept exactly.
HEAVY_LEVERAGE = 1.0


class KernelOccupancySplit:
    """The per-pole light equivalents and the heavy nodes of one finite-P kernel theory.

    Parameters
    ----------
    moments : FiniteKernelMoments
    q_star : float
        Heavy threshold: nodes with self-influence ``h_n > q_star / (1 + q_star)``.
    exact_below : float, default 0
        Every node with ``t < exact_below`` is heavy too, whatever its self-influence: its
        triples are kept exactly in each member and the light equivalent is taken over the later
        nodes only (the linear models' early triples, docs/math/finite_fp.md; 0: none, above
        ``T``: every node heavy, each member the exactly trained model of its design).

    Attributes
    ----------
    heavy : ndarray (Q_H,) int
        Node numbers of the heavy nodes.
    light : ndarray (Q_L,) int
    heavy_probability : float
        Probability of a heavy triple (``P`` times it: the mean heavy count).
    """

    @serial_blas
    def __init__(
        self, moments: FiniteKernelMoments, q_star: float = HEAVY_LEVERAGE, exact_below: float = 0.0
    ):
        if not isinstance(moments, FiniteKernelMoments):
            raise TypeError("moments must be a FiniteKernelMoments")
        if not (np.isfinite(q_star) and q_star > 0):
            raise ValueError(f"q_star must be a finite number > 0, got {q_star!r}")
        self.exact_below = check_nonnegative_time(exact_below, "exact_below")
        th = moments.theory
        self.moments, self.q_star = moments, float(q_star)
        P = moments.P
        phi = th.psi_nodes / np.sqrt(th.s)[None, :]
        om, w = th.omega, th.lam
        mu, s2 = th.mu_bar[:, 0], th.sigma_post[:, 0, 0]
        q = moments.leverage  # (n_poles, Q)
        # self-influence of one triple on its own prediction through the whole filter,
        # h = sum_m e_m q_m / (1 + q_m) (= q / (1 + q) for one ridge, so q > q_star <=> h > h_star)
        self.influence = (moments.coefficients[:, None] * q / (1 + q)).sum(axis=0).real
        heavy = (self.influence > q_star / (1 + q_star)) | (th.nodes_t < self.exact_below)
        self.heavy, self.light = np.flatnonzero(heavy), np.flatnonzero(~heavy)
        prob = om / om.sum()
        #: probability of a triple at each node (the node law the members draw from)
        self.node_probability = prob
        self.heavy_probability = float(prob[heavy].sum())
        # the heavy nodes' law: their probabilities, then "any light node"
        self._draw_p = np.append(prob[heavy], max(0.0, 1.0 - prob[heavy].sum()))
        # labels: the posterior over the data points at each heavy node (uniform prior)
        sched, data = th.schedule, th.data[:, 0]
        t_h, x_h = th.nodes_t[heavy], th.nodes_x[heavy, 0]
        a, var = np.asarray(sched.alpha(t_h)), np.asarray(sched.sigma2(t_h))
        logp = -((x_h[:, None] - a[:, None] * data[None, :]) ** 2) / (2 * var[:, None])
        post = np.exp(logp - logp.max(axis=1, keepdims=True))
        post /= post.sum(axis=1, keepdims=True)
        self._label_cdf = np.cumsum(post, axis=1)
        self._data = data
        # model's own scatter at the nodes (the cavity covariance, psi coordinates)
        psi = th.psi_nodes
        v = np.einsum("nk,kl,nl->n", psi, moments.covariance("total"), psi)
        v = np.clip(v, 0.0, None)
        L, H = self.light, self.heavy
        #: label noise of a light node's triple: posterior variance plus the model's scatter
        self.label_variance = s2[L] + v[L]
        phL, phH = phi[L], phi[H]
        pL = om[L].sum()
        self._proj = (1.0 - np.sqrt(max(0.0, 1.0 - pL))) / pL if pL > 0 else 0.0
        self._sqrt_omL = np.sqrt(om[L])
        self._omL = om[L]
        r = phi.shape[1]
        self.phi_heavy = phH
        self.w_heavy = w[H]
        kap = th.ridge - moments.poles
        self.coefficients = moments.coefficients
        self.Minv, self.G, self.C, self.y0, self.B_label, self.B_count = [], [], [], [], [], []
        for m, k in enumerate(kap):
            d = 1.0 / (1.0 + q[m, L])
            Mm = k * np.eye(r) + (phL.T * (om[L] * w[L] * d)) @ phL
            Mi = np.linalg.inv(Mm)
            Mi = (Mi + Mi.T) / 2  # complex symmetric
            A = phL.T @ (om[L] * w[L] * mu[L] * d)
            res = mu[L] - phL @ moments.pole_means[m]
            self.Minv.append(Mi)
            self.G.append(Mi @ phH.T)  # (r, Q_H)
            self.C.append(phH @ self.G[-1])  # (Q_H, Q_H)
            self.y0.append(A)
            self.B_label.append(phL.T * (w[L] * d * np.sqrt(om[L] * self.label_variance / P)))
            self.B_count.append(phL.T * (w[L] * d * res / np.sqrt(P)))

    def draw(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One member's heavy counts (Q_H,), label sums (Q_H,) and light normals (2, Q_L)."""
        P = int(self.moments.P)
        counts = rng.multinomial(P, self._draw_p)[:-1]
        sums = self.label_sums(rng, counts)
        normals = rng.standard_normal((2, self.light.size))
        return counts, sums, normals

    def label_sums(self, rng: np.random.Generator, counts: np.ndarray) -> np.ndarray:
        """Sums (Q_H,) of the labels of ``counts`` (Q_H,) triples per heavy node, each label
        from its node's posterior over the data points."""
        sums = np.zeros(counts.size)
        for j in np.flatnonzero(counts):
            u = rng.random(counts[j])
            lab = np.minimum((u[:, None] > self._label_cdf[j]).sum(axis=1), self._data.size - 1)
            sums[j] = self._data[lab].sum()
        return sums


def kernel_occupancy_coefficients(
    split: KernelOccupancySplit, n_models: int, seed: int | np.random.SeedSequence = 0
) -> np.ndarray:
    """Eigen-coefficients (N, r) of the small-occupancy field (module docstring):
    ``D^_k(z) = psi(z) . c_k``; member ``k`` from ``stream(seed, "field").spawn(N)[k]``."""
    if not isinstance(split, KernelOccupancySplit):
        raise TypeError("split must be a KernelOccupancySplit")
    n_models = check_count(n_models, "n_models")
    P = float(split.moments.P)
    if P != int(P):
        raise ValueError(f"P must be an integer to draw triples, got {P!r}")
    draws = [split.draw(rng) for rng in model_rngs(seed, "field", n_models)]
    return _members(split, draws)


@serial_blas
def _members(split: KernelOccupancySplit, draws: list) -> np.ndarray:
    """:func:`kernel_occupancy_coefficients` for drawn members."""
    P = float(split.moments.P)
    th = split.moments.theory
    N = len(draws)
    counts = np.array([d[0] for d in draws])  # (N, Q_H)
    sums = np.array([d[1] for d in draws])
    z_label = np.array([d[2][0] for d in draws])  # (N, Q_L)
    z_count = np.array([d[2][1] for d in draws])
    # count fluctuations that keep the total (module docstring)
    u = split._sqrt_omL * z_count - split._proj * np.outer(z_count @ split._sqrt_omL, split._omL)
    b_heavy = (sums * split.w_heavy / P) @ split.phi_heavy  # (N, r)
    d_heavy = counts * split.w_heavy / P  # (N, Q_H)
    # each member's heavy nodes and the diagonal of its Woodbury capacitance, shared by the poles
    members = [
        (k, h, np.diag(1.0 / d_heavy[k, h]))
        for k in np.flatnonzero(counts.sum(axis=1))
        for h in (np.flatnonzero(counts[k]),)
    ]
    out = np.zeros((N, split.phi_heavy.shape[1]), complex)
    for m, e in enumerate(split.coefficients):
        Y = split.y0[m][None, :] + z_label @ split.B_label[m].T + u @ split.B_count[m].T + b_heavy
        W = Y @ split.Minv[m]  # Minv symmetric: rows are M^-1 y
        G, C = split.G[m], split.C[m]
        for k, h, dinv in members:
            Gh = G[:, h]
            W[k] -= Gh @ np.linalg.solve(dinv + C[np.ix_(h, h)], Gh.T @ Y[k])
        out += e * W
    scale = np.max(np.abs(out.real), initial=0.0)
    if np.max(np.abs(out.imag), initial=0.0) > 1e-8 * max(scale, 1e-300):
        raise RuntimeError("the pole sum of the occupancy field is not real: conjugate poles lost")
    return out.real / np.sqrt(th.s)[None, :]
