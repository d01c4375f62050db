"""Benchmark: the first-order linear-model theory of one Figure-2 configuration, and [q] from it.

Configuration: data {-1, 0, 1}, ``vp-linear``, eps = 1e-2, F = 16 x 16 Gaussian features, P = 256
(F/P = 1), ridge 0.1: one cell of the paper's Figure 2.

Part 1, "the full theory" (issue 4, goal <= 2 s):

* population matrices and ``Cov(vec g)`` by quadrature
  (:func:`gtv.numerics.linear.theory.linear_model_theory`),
* ``Cov(vec W)`` at P,
* the V-kernel ``V(x, t; x, t')`` on the 200-point x-grid x 31 sampler times
  (:meth:`~gtv.numerics.linear.theory.LinearTheory.v_kernel_grid`),
* the white-noise Fokker-Planck density at eps
  (:func:`gtv.validation.predictions.markov_fokker_planck`).

Compared with the same algorithm in plain numpy in this process (``backend="numpy"`` for the
quadrature and for the Fokker-Planck sweeps; the numpy quadrature forms every full feature vector
and the posterior with :func:`gtv.numerics.posterior.posterior_stats` instead of the per-time-node
spatial moments).

Part 2, "Gaussian-field [q] costs what a trained ensemble costs" (issue 4): 100 draws
``W ~ N(W_inf, Cov W)`` x 10^5 samples x 30 Euler steps, against training 100 models on P triples
and sampling them the same way.

Usage::

    python benchmarks/bench_theory.py          # the full sizes
    python benchmarks/bench_theory.py --quick  # a smoke run
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _machine import print_machine

from gtv.numerics.features import ProductFeatures
from gtv.numerics.linear import FirstOrderLinear, sample_linear_ensemble
from gtv.numerics.linear.model import train_linear_ensemble
from gtv.numerics.linear.theory import linear_model_theory
from gtv.numerics.schedules import get_schedule
from gtv.validation.figures.figure2 import FIGURE2_DATA
from gtv.validation.predictions import markov_fokker_planck


def full_theory(feats, eps, P, sched, backend: str) -> tuple[float, dict]:
    """Run the theory pipeline once; return the wall time and the pieces (to check agreement)."""
    t0 = time.perf_counter()
    th = linear_model_theory(FIGURE2_DATA, feats, eps, sched, ridge=0.1, backend=backend)
    cov_w = th.cov_W(P)
    x_grid = np.linspace(-1.5, 1.5, 200)
    times = np.linspace(sched.T, eps, 31)
    V = th.v_kernel_grid(x_grid, times, P)
    fp, _ = markov_fokker_planck(FirstOrderLinear(th, P), backend=backend)
    wall = time.perf_counter() - t0
    return wall, {"cov_w": cov_w, "V": V, "density": fp.density}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    args = parser.parse_args(argv)
    eps, P = 1e-2, 256
    n_space, n_time = (6, 6) if args.quick else (16, 16)
    n_models, n_samples = (4, 2000) if args.quick else (100, 100_000)
    sched = get_schedule("vp-linear")
    feats = ProductFeatures.uniform("gaussian", 1, n_space, n_time, (eps, sched.T), (-1.5, 1.5))

    print("# Theory benchmark (issue 4, item 9)")
    print_machine()
    print(
        f"configuration: data {{-1,0,1}}, vp-linear, eps={eps:g}, F={n_space}x{n_time} Gaussian, "
        f"P={P}, ridge 0.1"
    )

    full_theory(feats, eps, P, sched, "numba")  # compile / load the cache
    t_gtv = min(full_theory(feats, eps, P, sched, "numba")[0] for _ in range(3))
    _, ref_gtv = full_theory(feats, eps, P, sched, "numba")
    t_np, ref_np = full_theory(feats, eps, P, sched, "numpy")
    diffs = {
        k: float(np.max(np.abs(ref_gtv[k] - ref_np[k])) / np.max(np.abs(ref_np[k])))
        for k in ref_gtv
    }

    print()
    print("| part | gtv s | numpy s | speed-up | goal | max rel diff |")
    print("|---|---|---|---|---|---|")
    print(
        f"| full theory (matrices, Cov W, V on 200x31, FP density) | {t_gtv:.3f} | {t_np:.2f} | "
        f"{t_np / t_gtv:.1f}x | <= 2 s: {'met' if t_gtv <= 2.0 else 'NOT met'} | "
        f"{max(diffs.values()):.1e} |"
    )

    th = linear_model_theory(FIGURE2_DATA, feats, eps, sched, ridge=0.1)
    small = FirstOrderLinear(th, P).gaussian_field(2, seed=1).ensemble
    sample_linear_ensemble(small, 100, seed=1)  # compile
    t_gf = t_tr = np.inf  # best of 3, the two runs interleaved (the first touches fresh memory)
    for _ in range(1 if args.quick else 3):
        t0 = time.perf_counter()
        gf = FirstOrderLinear(th, P).gaussian_field(n_models, seed=0).ensemble
        sample_linear_ensemble(gf, n_samples, seed=0)
        t_gf = min(t_gf, time.perf_counter() - t0)
        t0 = time.perf_counter()
        ens = train_linear_ensemble(
            FIGURE2_DATA, feats, n_models, P, eps, sched, ridge=0.1, seed=0,
            keep_normal_equations=False,
        )  # fmt: skip
        sample_linear_ensemble(ens, n_samples, seed=0)
        t_tr = min(t_tr, time.perf_counter() - t0)
    print(
        f"| Gaussian-field [q]: {n_models} draws x {n_samples} samples (30 Euler steps) "
        f"| {t_gf:.2f} | | | <= trained ensemble ({t_tr:.2f} s): "
        f"{'met' if t_gf <= 1.05 * t_tr else 'NOT met'} | |"
    )
    print(f"| trained ensemble: train {n_models} models + sample | {t_tr:.2f} | | | | |")
    print()
    print(
        "gtv time: best of 3 after a warm-up (the [q] rows: best of 3, interleaved); numpy: one "
        "run. 'max rel diff' is the largest "
        "|gtv - numpy| / max|numpy| over Cov W, V and the FP density."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
