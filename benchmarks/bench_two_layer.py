"""Benchmark: one epoch of full-batch gradient descent for an ensemble of two-layer networks.

100 networks of width 2048 (NTK parameterization, D = 1, d_in = 3), each trained on its own
P = 1024 DSM triples (vp-linear, eps = 0.01, three training points). One epoch = one full-batch
gradient step (forward pass, residuals, gradients of both layers, update) for every network.

* ``gtv``: :func:`gtv.numerics.two_layer.network.gd_steps` (numba, parallel over models; per step
  a forward pass over the hidden units, then per unit its gradient from recomputed
  pre-activations, applied at once; no P x n array is formed).
* ``numpy``: :func:`gtv.numerics.two_layer.reference.gd_steps_reference`, the same algorithm
  written with matrix products, one model at a time (``U = Z W^T/sqrt(d)``, ``H = sigma(U)``,
  ``out = H A/sqrt(n)``, ``r = lambda~ (out - x0)/P``, ``grad A = H^T r/sqrt(n)``,
  ``grad W = ((r A^T) * sigma'(U))^T Z/sqrt(n d)``), in this process, with BLAS limited to the same
  number of threads as numba (threadpoolctl).

Usage::

    python benchmarks/bench_two_layer.py            # full size (about a minute)
    python benchmarks/bench_two_layer.py --quick    # a tiny smoke run
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

import numba
import numpy as np
from _machine import print_machine
from threadpoolctl import threadpool_info, threadpool_limits

from gtv.numerics.two_layer import gd_steps, gd_steps_reference, init_two_layer_ensemble

DATA = np.array([[-1.0], [0.2], [1.0]])
GOAL = 5.0
#: Below the stability limit of these networks (about 0.6); the timing does not depend on it.
LEARNING_RATE = 0.3


def _best(fn, repeats: int) -> float:
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs (gtv)")
    parser.add_argument(
        "--numpy-models",
        type=int,
        default=None,
        help="time the numpy version on this many models and scale linearly (default: all)",
    )
    args = parser.parse_args(argv)
    n_models, width, n_samples = (4, 64, 64) if args.quick else (100, 2048, 1024)
    n_np = min(n_models, args.numpy_models or n_models)
    threads = numba.get_num_threads()
    print("# Two-layer network training benchmark: one epoch of full-batch gradient descent")
    print_machine()
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}, "
        f"numba threads {threads}"
    )
    print(f"sizes: {n_models} networks x width {width} x P = {n_samples} triples, D = 1")

    rows = []
    for activation in ("relu", "erf"):
        ini = init_two_layer_ensemble(
            DATA, width, n_models, n_samples, 0.01, activation=activation, init="standard", seed=0
        )
        args_gd = (ini.W0, ini.A0, ini.z, ini.x0, ini.weight, LEARNING_RATE)
        gd_steps(*(a[:1] for a in args_gd[:5]), 1e-3, 1, activation)  # compile
        t_gtv = _best(lambda: gd_steps(*args_gd, 1, activation), args.repeats)  # noqa: B023
        W_gtv, A_gtv = gd_steps(*args_gd, 1, activation)
        numba.set_num_threads(1)
        try:
            t_one = _best(lambda: gd_steps(*args_gd, 1, activation), 1)  # noqa: B023
        finally:
            numba.set_num_threads(threads)
        sub = tuple(a[:n_np] for a in args_gd[:5])
        with threadpool_limits(limits=threads, user_api="blas"):
            t0 = time.perf_counter()
            W_np, A_np = gd_steps_reference(*sub, LEARNING_RATE, 1, activation)
            t_np = (time.perf_counter() - t0) * n_models / n_np
        # Compare the updates (the parameters themselves barely move in one small step).
        W0, A0 = ini.W0[:n_np], ini.A0[:n_np]
        diff = max(
            np.max(np.abs((W_gtv[:n_np] - W0) - (W_np - W0))) / np.max(np.abs(W_np - W0)),
            np.max(np.abs((A_gtv[:n_np] - A0) - (A_np - A0))) / np.max(np.abs(A_np - A0)),
        )
        rows.append((activation, t_gtv, t_one, t_np, diff))

    print(f"numba threading layer: {numba.threading_layer()}; BLAS: {_blas()}")
    scaled = "" if n_np == n_models else f" (numpy timed on {n_np} models, scaled)"
    print()
    print(
        "| activation | gtv s/epoch | gtv 1 thread s/epoch | numpy s/epoch | speedup | "
        f"goal >= {GOAL:g}x | max rel diff |"
    )
    print("|---|---:|---:|---:|---:|---|---:|")
    for act, t_gtv, t_one, t_np, diff in rows:
        met = "met" if t_np / t_gtv >= GOAL else "NOT met"
        print(
            f"| {act}{scaled} | {t_gtv:.3f} | {t_one:.3f} | {t_np:.3f} | {t_np / t_gtv:.1f}x | "
            f"{met} | {diff:.1e} |"
        )
    print()
    print(
        f"gtv: best of {args.repeats} (1 thread: one run); numpy: one run with BLAS limited to "
        f"{threads} thread(s). max rel diff: the parameter updates of the epoch, numba vs numpy."
    )
    return 0


def _blas() -> str:
    info = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    if not info:
        return "unknown"
    i = info[0]
    return f"{i.get('internal_api')} {i.get('version')} ({i.get('num_threads')} threads)"


if __name__ == "__main__":
    sys.exit(main())
