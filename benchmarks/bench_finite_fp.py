"""Benchmark: the finite-P cavity theory of one configuration against the ensemble it predicts.

Configuration: data {-1, 0, 1}, ``vp-linear``, eps = 1e-2, F = 8 x 8 (and 16 x 16) Gaussian
features, ridge 0.1, F/P = 1.

* **solver**: :func:`gtv.numerics.linear.cavity.cavity_moments` (product structure) against the
  straightforward version with full feature vectors at every node
  (:func:`~gtv.numerics.linear.cavity.cavity_moments_reference`), same nodes, same iterations;
* **[q] prediction vs the ensemble**: the cavity solve plus a fixed number of small-occupancy
  members (K = 256) sampled by the PF-ODE, against training N = 2000 models and sampling them the
  same way (5000 samples per member, 30 Euler steps). The prediction's cost does not grow with N.

Usage::

    python benchmarks/bench_finite_fp.py          # the full sizes
    python benchmarks/bench_finite_fp.py --quick  # a smoke run
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _machine import print_machine

from gtv.numerics.features import ProductFeatures
from gtv.numerics.linear import (
    CavityLinear,
    cavity_moments,
    cavity_moments_reference,
    linear_model_theory,
    population_nodes,
    sample_linear_ensemble,
    train_linear_ensemble,
)
from gtv.numerics.schedules import get_schedule
from gtv.validation.figures.figure2 import FIGURE2_DATA


def _best(fn, repeats: int) -> tuple[float, object]:
    best, out = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    args = ap.parse_args()
    sched = get_schedule("vp-linear")
    eps = 1e-2
    sizes = [(4, 4)] if args.quick else [(8, 8), (16, 16)]
    n_models, n_members, n_samples = (40, 16, 200) if args.quick else (2000, 256, 5000)
    print_machine()
    print("| case | gtv s | reference s | ratio | max rel diff | notes |")
    print("|---|---:|---:|---:|---:|---|")
    for ns, nt in sizes:
        run_size(ns, nt, eps, sched, n_models, n_members, n_samples, quick=args.quick)


def run_size(ns, nt, eps, sched, n_models, n_members, n_samples, quick=False) -> None:
    """Print the two rows of one feature size (``quick``: a coarse quadrature)."""
    feats = ProductFeatures.uniform("gaussian", 1, ns, nt, (eps, sched.T), (-1.5, 1.5))
    F = feats.n_features
    P = F  # F/P = 1
    coarse = {"n_t": 4, "n_hermite": 30} if quick else {}
    theory = linear_model_theory(FIGURE2_DATA, feats, eps, sched, ridge=0.1, **coarse)
    nodes = population_nodes(theory)
    fast_s, fast = _best(lambda: cavity_moments(theory, P, nodes=nodes), 3)
    if F <= 64:  # the full-vector reference needs n_nodes x F doubles and O(n_nodes F^2) a step
        ref_s, ref = _best(lambda: cavity_moments_reference(theory, P, nodes=nodes), 1)
        diff = np.abs(fast.cov_W - ref.cov_W).max() / np.abs(ref.cov_W).max()
        ref_cols = f"{ref_s:.3f} | {ref_s / fast_s:.1f}x | {diff:.1e}"
    else:
        ref_cols = "- | - | -"
    print(
        f"| cavity solve, F = {ns}x{nt}, P = {P} | {fast_s:.3f} | {ref_cols} | "
        f"{nodes.prob.size} nodes, iterations {fast.iterations}; reference = full feature "
        "vectors (F <= 64 only) |"
    )

    def predict():
        m = cavity_moments(theory, P, nodes=nodes)
        field = CavityLinear(theory, m, "occupancy", nodes).gaussian_field(n_members, seed=0)
        return field.sample(n_samples, seed=0)

    def predict_coarse():
        # the cavity equations on a coarser time rule (n_t = 6) at tol 1e-7: the deviation from
        # the default solve is printed in the notes column
        th6 = linear_model_theory(FIGURE2_DATA, feats, eps, sched, ridge=0.1, n_t=6)
        nodes6 = population_nodes(th6)
        m = cavity_moments(th6, P, nodes=nodes6, tol=1e-7)
        field = CavityLinear(th6, m, "occupancy", nodes6).gaussian_field(n_members, seed=0)
        return m, field.sample(n_samples, seed=0)

    def ensemble():
        ens = train_linear_ensemble(
            FIGURE2_DATA, feats, n_models, P, eps, sched, seed=0, keep_normal_equations=False
        )
        return sample_linear_ensemble(ens, n_samples, seed=0)

    pred_s, _ = _best(predict, 1)
    ens_s, _ = _best(ensemble, 1)
    print(
        f"| [q]: small-occupancy field ({n_members} members) vs trained ensemble "
        f"({n_models} models), "
        f"F = {ns}x{nt} | {pred_s:.2f} | {ens_s:.2f} | {ens_s / pred_s:.1f}x | - | "
        f"{n_samples} samples per member/model, 30 Euler steps; the prediction's cost is "
        "fixed, the ensemble's grows with N |"
    )

    coarse_s, (m6, _) = _best(predict_coarse, 1)
    dev = np.abs(m6.cov_W - fast.cov_W).max() / np.abs(fast.cov_W).max()
    print(
        f"| [q]: the same on the coarse rule (n_t = 6, tol 1e-7), F = {ns}x{nt} | "
        f"{coarse_s:.2f} | {ens_s:.2f} | {ens_s / coarse_s:.1f}x | {dev:.1e} | max rel deviation "
        "of Cov W from the default solve |"
    )


if __name__ == "__main__":
    main()
