"""Where the linear cavity theory's mean is biased: quadrature or closure?

A measurement, not a timing benchmark (docs/math/finite_fp.md, *What is not solved*).
Configuration: data {-1, 0, 1}, ``vp-linear``, F = 8 x 8 Gaussian features, ridge 0.1,
eps in {1e-2, 1e-3}, F/P = 1 and 4, the 11 x 7 query grid of the moment tables (points where the
trained variance of D^ exceeds 1e-4). Three means of D^ are compared:

* **trained**: N models trained on their own DSM triples
  (:func:`gtv.numerics.linear.train_linear_ensemble`, stream ``"training"``, seed 0);
* **node designs**: N ridge regressions on designs drawn from the theory's *own* population --
  ``P`` nodes of :func:`gtv.numerics.linear.population_nodes` drawn with their probabilities,
  each triple's label from its node's posterior over the data points (stream ``"field"``,
  seed 0). Simulation on the quadrature's population, not a theory: it has the law of a trained
  model if the population were the node measure;
* **cavity**: ``W_bar`` of :func:`gtv.numerics.linear.cavity_moments` on the same nodes;
* **consistent field** (second table): the moments of the consistent field with every triple
  below ``t_c`` exact (:func:`gtv.numerics.linear.occupancy_moments` on
  ``occupancy_split(..., consistent=True, exact_below=t_c)``, ``--members`` members, seed 7) for
  ``t_c`` in 0, 0.2, 0.4 and above ``T`` (every triple exact: ridge regressions on node designs),
  mean and variance of ``D^`` against the trained ones.

trained vs node designs measures the quadrature; cavity vs node designs the closure. Printed:
the share of the points within 2 standard errors (95 % expected without bias) and the median
``|z|`` (0.67 expected); for the consistent field also the median ``|Var_pred / Var_trained - 1|``
and the share of the points within 25 %. F/P = 1/4 is in the second table only.

Run: ``python benchmarks/measure_cavity_mean.py`` (about a minute on 2 cores; ``--models 20000
--members 100000``: a few minutes; ``--quick``: a smoke run).
"""

from __future__ import annotations

import argparse

import numpy as np
from _machine import print_machine

from gtv.numerics.features import ProductFeatures
from gtv.numerics.linear import (
    cavity_moments,
    linear_model_theory,
    occupancy_moments,
    occupancy_split,
    population_nodes,
    train_linear_ensemble,
)
from gtv.numerics.schedules import get_schedule
from gtv.numerics.streams import stream_rng

DATA = np.array([[-1.0], [0.0], [1.0]])
QUERY_X = (-1.5, -1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0, 1.5)
QUERY_T = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
RIDGE = 0.1


def node_design_weights(theory, nodes, P: int, n_models: int, seed: int = 0) -> np.ndarray:
    """Ridge weights (n_models, F) of models fitted on node designs (module docstring)."""
    sched = theory.schedule
    phi = nodes.full_features()
    n_x = nodes.prob.shape[1]
    t = np.repeat(nodes.t, n_x)
    x = nodes.x.reshape(-1)
    w = np.repeat(nodes.w, n_x)
    p = nodes.prob.reshape(-1) / nodes.prob.sum()
    a, s2 = sched.alpha(t), sched.sigma2(t)
    logw = -((x[:, None] - a[:, None] * DATA[None, :, 0]) ** 2) / (2 * s2[:, None])
    post = np.exp(logw - logw.max(axis=1, keepdims=True))
    post /= post.sum(axis=1, keepdims=True)
    if not np.allclose(post @ DATA[:, 0], nodes.mu.reshape(-1), atol=1e-9):
        raise RuntimeError("node posteriors disagree with the nodes' posterior means")
    cum = np.cumsum(post, axis=1)
    rng = stream_rng(seed, "field")
    F = phi.shape[1]
    out = np.empty((n_models, F))
    for m in range(n_models):
        idx = rng.choice(p.size, P, p=p)
        label = np.minimum((rng.random(P)[:, None] > cum[idx]).sum(axis=1), DATA.shape[0] - 1)
        ph, wm = phi[idx], w[idx]
        S = (ph * wm[:, None]).T @ ph / P + RIDGE * np.eye(F)
        out[m] = np.linalg.solve(S, (ph * wm[:, None]).T @ DATA[label, 0] / P)
    return out


def _score(z: np.ndarray) -> str:
    return f"{np.mean(np.abs(z) <= 2):.0%} ({np.median(np.abs(z)):.2f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    ap.add_argument("--models", type=int, default=2000, help="trained models and node designs")
    ap.add_argument("--members", type=int, default=20_000, help="consistent-field members")
    args = ap.parse_args()
    print_machine()
    n_models = 100 if args.quick else args.models
    n_members = 200 if args.quick else args.members
    sched = get_schedule("vp-linear")
    first, second = [], []  # the rows of the two tables
    for eps in (1e-2,) if args.quick else (1e-2, 1e-3):
        feats = ProductFeatures.uniform("gaussian", 1, 8, 8, (eps, sched.T), (-1.5, 1.5))
        theory = linear_model_theory(DATA, feats, eps, sched, ridge=RIDGE)
        nodes = population_nodes(theory)
        X = np.tile(QUERY_X, len(QUERY_T))
        T = np.maximum(np.repeat(QUERY_T, len(QUERY_X)), eps)
        fq = feats.evaluate(X[:, None], T)
        for P in (256, 64, 16):
            ens = train_linear_ensemble(
                DATA, feats, n_models, P, eps, sched, ridge=RIDGE, seed=0,
                keep_normal_equations=False,
            )  # fmt: skip
            d_tr = ens.W[:, 0, :] @ fq.T
            v_tr, m_tr = d_tr.var(axis=0, ddof=1), d_tr.mean(axis=0)
            keep = v_tr > 1e-4
            se_tr = np.sqrt(v_tr / n_models)
            m = cavity_moments(theory, P, nodes=nodes)
            if P < 256:  # F/P = 1 and 4: the cavity mean against node designs
                d_nd = node_design_weights(theory, nodes, P, n_models) @ fq.T
                v_nd, m_nd = d_nd.var(axis=0, ddof=1), d_nd.mean(axis=0)
                se_nd = np.sqrt(v_nd / n_models)
                m_cav = m.W_bar[0] @ fq.T
                z_ct = ((m_cav - m_tr) / se_tr)[keep]
                z_cn = ((m_cav - m_nd) / se_nd)[keep]
                z_nt = ((m_nd - m_tr) / np.sqrt(se_tr**2 + se_nd**2))[keep]
                first.append(
                    f"| {eps:g} | {8 * 8 / P:g} | {keep.sum()} | {_score(z_ct)} | "
                    f"{_score(z_cn)} | {_score(z_nt)} | {np.median((v_nd / v_tr)[keep]):.2f} |"
                )
            cells = []
            for t_c in (0.0, 0.2, 0.4, 2.0 * sched.T):
                split = occupancy_split(theory, m, nodes=nodes, consistent=True, exact_below=t_c)
                occ = occupancy_moments(theory, m, n_members, seed=7, split=split)
                v = np.einsum("if,fg,ig->i", fq, occ.cov_W, fq)
                z = (occ.W_bar[0] @ fq.T - m_tr) / np.hypot(se_tr, occ.standard_errors(fq)[0])
                r = np.abs(v / v_tr - 1)[keep]
                cells.append(f"{_score(z[keep])}; {np.median(r):.3f}, {np.mean(r <= 0.25):.0%}")
            second.append(f"| {eps:g} | {8 * 8 / P:g} | " + " | ".join(cells) + " |")
    print(
        f"F = 8 x 8, ridge {RIDGE}, {n_models} trained models and {n_models} node designs; "
        "share of the points within 2 SE (median |z|)"
    )
    print(
        "| eps | F/P | points | cavity vs trained | cavity vs node designs | "
        "node designs vs trained | Var node designs / trained (median) |"
    )
    print("|---|---|---|---|---|---|---|")
    print("\n".join(first))
    print()
    print(
        f"consistent field, {n_members} members, against the {n_models} trained models: mean "
        "share |z| <= 2 (median |z|); Var median |pred/trained - 1|, share within 25 %"
    )
    print("| eps | F/P | t_c = 0 | 0.2 | 0.4 | every triple exact |")
    print("|---|---|---|---|---|---|")
    print("\n".join(second))


if __name__ == "__main__":
    main()
