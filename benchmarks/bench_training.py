"""Benchmark: training 100 linear-feature models (Figure 2's features) -- gtv vs plain numpy.

For each P: ``train_linear_ensemble(..., keep_normal_equations=False)`` (what Figure 2 and the
comparisons run: features, normal equations by BLAS ``dsyrk`` and the LAPACK Cholesky solve fused
in one compiled loop over the models; for ``P <= F/2`` the P x P dual system), the same with the
F x F system forced (``primal``), and the straightforward numpy algorithm in the same process:
per model the feature matrix, ``(phi * w)^T phi / P + ridge I`` and ``np.linalg.solve``. The
weights of every implementation are compared (max relative difference).

Usage::

    python benchmarks/bench_training.py           # F = 16 x 16, 100 models (~30 s)
    python benchmarks/bench_training.py --quick   # a smoke run
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _machine import command_line, load_average, print_machine

import gtv.numerics.linear.model as model
from gtv.numerics.dsm import draw_dsm_triples, dsm_weights
from gtv.numerics.features import ProductFeatures
from gtv.numerics.schedules import get_schedule
from gtv.numerics.streams import model_rngs

DATA = np.array([[-1.0], [0.0], [1.0]])


def numpy_training(feats, n_models, P, eps, sched, ridge, seed):
    """Per model: features, weighted normal equations, ``np.linalg.solve``."""
    W = np.empty((n_models, 1, feats.n_features))
    for n, rng in enumerate(model_rngs(seed, "training", n_models)):
        t, x0, x = draw_dsm_triples(rng, DATA, P, eps, sched)
        phi = feats.evaluate_reference(x, t)
        w = dsm_weights(sched, t)
        gram = (phi * w[:, None]).T @ phi / P + ridge * np.eye(phi.shape[1])
        rhs = (phi * (w * x0[:, 0])[:, None]).sum(axis=0) / P
        W[n, 0] = np.linalg.solve(gram, rhs)
    return W


def best(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    args = parser.parse_args(argv)
    n_space, n_models, Ps, repeats = (
        (8, 10, (16, 64), 1) if args.quick else (16, 100, (64, 128, 200, 256, 512, 1024), 5)
    )
    sched = get_schedule("vp-linear")
    eps, ridge, seed = 0.01, 0.1, 0
    feats = ProductFeatures.uniform("gaussian", 1, n_space, n_space, (eps, sched.T), (-1.5, 1.5))
    print("# Training benchmark")
    print_machine()
    print(f"command: {command_line()}")
    print(f"load average before: {load_average()}")
    print(f"{n_models} models, F = {feats.n_features}, best of {repeats} (numpy: one run)")

    def gtv(P):
        return model.train_linear_ensemble(
            DATA, feats, n_models, P, eps, sched, ridge=ridge, seed=seed,
            keep_normal_equations=False,
        ).W  # fmt: skip

    gtv(Ps[0])  # load the compiled kernels
    print("| P | gtv s (solver) | gtv, F x F forced s | numpy s | gtv / numpy | max rel diff |")
    print("|---|---|---|---|---|---|")
    dual_kernel = model._train_solve_dual_numba
    for P in Ps:
        t_gtv, w_gtv = best(lambda P=P: gtv(P), repeats)
        model._train_solve_dual_numba = model._train_solve_numba  # force the F x F system
        try:
            t_primal, w_primal = best(lambda P=P: gtv(P), repeats)
        finally:
            model._train_solve_dual_numba = dual_kernel
        t_np, w_np = best(
            lambda P=P: numpy_training(feats, n_models, P, eps, sched, ridge, seed), 1
        )
        solver = "dual P x P" if 2 * P <= feats.n_features else "F x F"
        diff = max(np.abs(a - w_np).max() / np.abs(w_np).max() for a in (w_gtv, w_primal))
        print(
            f"| {P} | {t_gtv:.4f} ({solver}) | {t_primal:.4f} | {t_np:.3f} | "
            f"{t_np / t_gtv:.0f}x | {diff:.1e} |"
        )
    print(f"load average after: {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
