"""Where the finite-P kernel theory loses its variance: quadrature or closure?

A measurement, not a timing benchmark (docs/math/finite_fp.md, *The lazy-network (NTK) theory at
finite P*). Configuration: data {-1, 0, 1}, ``vp-linear``, eps = 0.01, P = 256, erf, gradient
flow at unit rate, tau in {3, 10, 300}, the 18 query points x in {-1, -0.5, 0, 0.5, 1, 1.5} x
t in {0.02, 0.1, 0.5}. Three ensembles of D^ are compared by their variance at the query points:

* **trained**: N infinite-width networks, each on its own DSM triples
  (:func:`gtv.numerics.kernel.train_kernel_ensemble`);
* **node designs**: N models trained with the same exact filter on designs drawn from the theory's
  *own* population -- counts ``n ~ Multinomial(P, omega)`` over its Nystrom nodes, each triple's
  label ``x0`` drawn from its node's posterior over the data points -- in the theory's
  eigenfeatures ``phi = psi / sqrt(s)`` (``W = g_tau(Sigma^) b^``). This is simulation on the
  quadrature's population, not a theory: it has the law of a trained model if the population were
  the node measure;
* **cavity**: the finite-P cavity theory on the same nodes
  (:class:`gtv.numerics.kernel.FiniteKernelTheoryAt`);
* **occupancy field**: the small-occupancy field of the same theory
  (:mod:`gtv.numerics.kernel.occupancy`: nodes whose triples have self-influence above one half
  kept exactly, the rest by their per-pole cavity equivalent; 2N members, stream ``"field"`` with
  seed 1) -- a prediction: no trained model, no simulation of designs on the light nodes;
* **stratified field**: the same field with each member's light nodes weighted by its own counts
  per (t, x) cell (:mod:`gtv.numerics.kernel.strata`, the default 32 x 16 cells; 2N members,
  seed 1), as drawn (``centre=False``: centring moves the members together and leaves their
  variance as it is); its mean is compared with the node designs' (share of the points within 2
  standard errors, and the least-squares slope of the field's mean on the node designs' mean:
  below 1, the field shrinks the mean), next to the cavity mean's.

* **early nodes exact** (second table): the stratified field as drawn with every node below
  ``t_c`` heavy too (``KernelOccupancySplit(moments, exact_below=t_c)``; 2N members, seed 1),
  ``t_c`` in 0, 0.05, 0.1, 0.2, 0.4 and above ``T`` (every node heavy: each member the exactly
  trained model of its node design): the median trained / field variance and its range, and the
  field's mean against the trained one (share of the points within 2 standard errors) and against
  the node designs' (least-squares slope).

trained / node designs measures the quadrature's (and the Nystrom rank's) error; node designs /
cavity the error of the cavity closure itself. The last column checks that a trained model is a
linear model in the eigenfeatures: each trained model's own triples (its stream draws them
first), ``W = g_tau(Sigma^) b^`` in ``phi``, and the rms over models of the difference of the two
``D^`` over the trained spread (median over the points). Streams: trained models
``"training"``, node designs ``"field"`` (:mod:`gtv.numerics.streams`).

Run: ``python benchmarks/measure_ntk_closure.py`` (about two minutes on 2 cores; ``--quick``: a
smoke run).
"""

from __future__ import annotations

import argparse

import numpy as np
from _machine import print_machine

from gtv.numerics.dsm import draw_dsm_triples, dsm_weights
from gtv.numerics.kernel import FiniteKernelTheoryAt, ntk_theory, train_kernel_ensemble
from gtv.numerics.kernel.divided_differences import lazy_filter
from gtv.numerics.kernel.occupancy import KernelOccupancySplit, kernel_occupancy_coefficients
from gtv.numerics.kernel.strata import KernelStrata, kernel_stratified_coefficients
from gtv.numerics.schedules import get_schedule
from gtv.numerics.streams import model_rngs, stream_rng

DATA = np.array([[-1.0], [0.0], [1.0]])
QUERY_X = (-1.0, -0.5, 0.0, 0.5, 1.0, 1.5)
QUERY_T = (0.02, 0.1, 0.5)


def node_design_weights(theory, P: int, n_models: int, taus, seed: int = 0) -> dict:
    """Eigenfeature weights (n_models, r) per ``tau`` of models trained on node designs (module
    docstring)."""
    sched = theory.schedule
    phi_nodes = theory.psi_nodes / np.sqrt(theory.s)[None, :]
    # posterior over the data points at each node (uniform prior): the labels' law
    a, s2 = sched.alpha(theory.nodes_t), sched.sigma2(theory.nodes_t)
    logw = -((theory.nodes_x[:, :1] - a[:, None] * DATA[None, :, 0]) ** 2) / (2 * s2[:, None])
    post = np.exp(logw - logw.max(axis=1, keepdims=True))
    post /= post.sum(axis=1, keepdims=True)
    if not np.allclose(post @ DATA[:, 0], theory.mu_bar[:, 0], atol=1e-12):
        raise RuntimeError("node posteriors disagree with the theory's posterior means")
    cum = np.cumsum(post, axis=1)
    p = theory.omega / theory.omega.sum()
    rng = stream_rng(seed, "field")
    out = {tau: np.empty((n_models, theory.s.size)) for tau in taus}
    for m in range(n_models):
        idx = np.repeat(np.arange(p.size), rng.multinomial(P, p))
        label = (rng.random(idx.size)[:, None] > cum[idx]).sum(axis=1)
        x0 = DATA[np.minimum(label, DATA.shape[0] - 1), 0]
        for tau, W in zip(
            taus, _fit(phi_nodes[idx], theory.lam[idx], x0, P, theory, taus), strict=True
        ):
            out[tau][m] = W
    return out


def _fit(phi: np.ndarray, lam: np.ndarray, x0: np.ndarray, P: int, theory, taus) -> list:
    """``W = g_tau(Sigma^) b^`` per ``tau`` for one design in the eigenfeatures."""
    S = (phi * lam[:, None]).T @ phi / P
    b = (phi * lam[:, None]).T @ x0 / P
    e, V = np.linalg.eigh((S + S.T) / 2)
    out = []
    for tau in taus:
        g = lazy_filter(np.clip(e, 0, None) + theory.ridge, tau, theory.lr, theory.flow, rcond=0.0)
        out.append(V @ (g * (V.T @ b)))
    return out


def own_triples_weights(theory, P: int, n_models: int, taus, seed: int = 0) -> dict:
    """Weights (n_models, r) per ``tau`` fitted in the eigenfeatures on each trained model's own
    triples (the first draw of its ``"training"`` stream)."""
    isq = 1.0 / np.sqrt(theory.s)
    out = {tau: np.empty((n_models, theory.s.size)) for tau in taus}
    for m, rng in enumerate(model_rngs(seed, "training", n_models)):
        t, x0, x = draw_dsm_triples(rng, DATA, P, theory.eps, theory.schedule)
        phi = theory.features(x[:, 0], t) * isq
        for tau, W in zip(
            taus, _fit(phi, dsm_weights(theory.schedule, t), x0[:, 0], P, theory, taus), strict=True
        ):
            out[tau][m] = W
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    args = ap.parse_args()
    print_machine()
    eps, P = 0.01, 256
    n_models, n_nodes = (64, 6) if args.quick else (2000, 16)
    taus = (3.0, 10.0, 300.0)
    sched = get_schedule("vp-linear")
    th = ntk_theory(
        DATA, eps, sched, "erf", lr=1.0, flow="gradient-flow", n_t=n_nodes, n_hermite=n_nodes
    )
    ens = train_kernel_ensemble(
        DATA, P, n_models, eps, taus, sched, "erf", lr=1.0, flow="gradient-flow", seed=0
    )
    X = np.repeat(QUERY_X, len(QUERY_T))
    T = np.tile(QUERY_T, len(QUERY_X))
    phi_q = th.features(X, T) / np.sqrt(th.s)[None, :]
    W = node_design_weights(th, P, 2 * n_models, taus)
    own = own_triples_weights(th, P, n_models, taus)
    outer = np.abs(X) >= 1.0
    print(
        f"eps = {eps}, P = {P}, erf, {th.n_nodes} nodes (rank {th.s.size}), {n_models} trained "
        f"models, {2 * n_models} node designs; medians over the 18 query points (outer |x| >= 1)"
    )
    print(
        "| tau | trained / cavity | trained / node designs [range] | node designs / cavity | "
        "rms(trained - own-triples fit) / sd | trained / occupancy field [range] | "
        "heavy nodes (mean heavy triples per model) | trained / stratified field [range] | "
        "mean vs node designs, share |z| <= 2 (slope): stratified; cavity | "
        "cells (light nodes per cell) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for tau in taus:
        d_tr = ens.denoiser(X, T, tau)[:, :, 0]
        v_tr = d_tr.var(axis=0, ddof=1)
        gap = np.sqrt(((d_tr - own[tau] @ phi_q.T) ** 2).mean(axis=0) / v_tr)
        v_nd = (W[tau] @ phi_q.T).var(axis=0, ddof=1)
        bound = FiniteKernelTheoryAt(th, tau, P)
        v_cav = bound.denoiser_covariance((X, T), paired=True)[:, 0, 0]
        split = KernelOccupancySplit(bound.moments)
        c_occ = kernel_occupancy_coefficients(split, 2 * n_models, seed=1)
        v_occ = (c_occ @ th.features(X, T).T).var(axis=0, ddof=1)
        cells = KernelStrata(split)
        per_cell = np.bincount(cells.cell)
        d_st = (
            kernel_stratified_coefficients(cells, 2 * n_models, seed=1, centre=False)
            @ th.features(X, T).T
        )
        v_st = d_st.var(axis=0, ddof=1)
        d_nd = W[tau] @ phi_q.T
        m_st, m_nd = d_st.mean(axis=0), d_nd.mean(axis=0)
        z = (m_st - m_nd) / np.sqrt((v_st + v_nd) / (2 * n_models))
        m_cav = bound.mean_denoiser(X, T)[:, 0]
        z_cav = (m_cav - m_nd) / np.sqrt(v_nd / (2 * n_models))
        r1, r2, r3, r4 = v_tr / v_cav, v_tr / v_nd, v_nd / v_cav, v_tr / v_occ
        r5 = v_tr / v_st
        print(
            f"| {tau:g} | {np.median(r1):.2f} ({np.median(r1[outer]):.2f}) | "
            f"{np.median(r2):.2f} ({np.median(r2[outer]):.2f}) [{r2.min():.2f}, {r2.max():.2f}] | "
            f"{np.median(r3):.2f} ({np.median(r3[outer]):.2f}) | {np.median(gap):.1e} | "
            f"{np.median(r4):.2f} ({np.median(r4[outer]):.2f}) [{r4.min():.2f}, {r4.max():.2f}] | "
            f"{split.heavy.size} ({P * split.heavy_probability:.2f}) | "
            f"{np.median(r5):.2f} ({np.median(r5[outer]):.2f}) [{r5.min():.2f}, {r5.max():.2f}] | "
            f"{np.mean(np.abs(z) <= 2):.0%} ({(m_st @ m_nd) / (m_nd @ m_nd):.3f}); "
            f"{np.mean(np.abs(z_cav) <= 2):.0%} ({(m_cav @ m_nd) / (m_nd @ m_nd):.3f}) | "
            f"{cells.n_cells} ({per_cell.min()}-{per_cell.max()}) |"
        )

    print()
    print(
        "stratified field as drawn, every node below t_c exact: trained / field variance, median "
        "(outer) [range]; mean vs trained, share |z| <= 2; slope of the mean on the node designs'"
    )
    print("| tau | t_c | heavy nodes (heavy triples per model) | trained / field | mean |")
    print("|---|---|---|---|---|")
    for tau in taus:
        d_tr = ens.denoiser(X, T, tau)[:, :, 0]
        v_tr, m_tr = d_tr.var(axis=0, ddof=1), d_tr.mean(axis=0)
        m_nd = (W[tau] @ phi_q.T).mean(axis=0)
        moments = FiniteKernelTheoryAt(th, tau, P).moments
        for t_c in (0.0, 0.05, 0.1, 0.2, 0.4, 2.0 * sched.T):
            split = KernelOccupancySplit(moments, exact_below=t_c)
            c = kernel_stratified_coefficients(KernelStrata(split), 2 * n_models, 1, centre=False)
            d = c @ th.features(X, T).T
            v, m = d.var(axis=0, ddof=1), d.mean(axis=0)
            r = v_tr / v
            z = (m - m_tr) / np.sqrt(v_tr / n_models + v / (2 * n_models))
            print(
                f"| {tau:g} | {t_c:g} | {split.heavy.size} ({P * split.heavy_probability:.1f}) | "
                f"{np.median(r):.2f} ({np.median(r[outer]):.2f}) [{r.min():.2f}, {r.max():.2f}] | "
                f"{np.mean(np.abs(z) <= 2):.0%} ({(m @ m_nd) / (m_nd @ m_nd):.3f}) |"
            )


if __name__ == "__main__":
    main()
