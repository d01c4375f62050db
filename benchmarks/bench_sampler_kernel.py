"""Benchmark: CPU time per point and step of the 1-D Gaussian-bump PF-ODE kernel on one thread.

20 Figure-2 models (eps = 0.01, P = 256, F = 16 x 16) carried over three start sets of 16 384
points: the transported quantile grid (5.7 % of its points beyond the outermost bumps, the far
path), the same grid clipped to |x| <= 3.2 (no far points) and sorted N(0, sigma_T^2) draws.
Reported: the best of 5 ``time.process_time`` differences divided by models x points x steps.

Usage::

    python benchmarks/bench_sampler_kernel.py
"""

from __future__ import annotations

import sys
import time

import numba
import numpy as np
from _machine import command_line, load_average, print_machine

from gtv.numerics.features import ProductFeatures
from gtv.numerics.linear import sample_linear_ensemble, train_linear_ensemble
from gtv.numerics.schedules import get_schedule
from gtv.numerics.streams import stream_rng
from gtv.numerics.transport import transport_grid
from gtv.validation.figures.figure2 import FIGURE2_DATA


def main() -> int:
    numba.set_num_threads(1)
    sched = get_schedule("vp-linear")
    sigma_T = float(np.sqrt(sched.sigma2(sched.T)))
    n_models, n_points, n_steps, eps = 20, 16_384, 30, 1e-2
    feats = ProductFeatures.uniform("gaussian", 1, 16, 16, (eps, sched.T), (-1.5, 1.5))
    ens = train_linear_ensemble(
        FIGURE2_DATA, feats, n_models, 256, eps, sched, seed=0, keep_normal_equations=False
    )
    grid = transport_grid(n_points, sigma_T)
    normal = np.sort(stream_rng(0, "sampling").standard_normal(n_points) * sigma_T)
    print_machine()
    print(f"command: {command_line()}")
    print(f"load average: {load_average()}")
    print("numba threads: 1\n")
    print("| start points | points beyond the bumps | CPU ns per point-step |")
    print("|---|---|---|")
    for label, x0 in (
        ("transported grid", grid),
        ("grid clipped to |x| <= 3.2", np.clip(grid, -3.2, 3.2)),
        ("sorted N(0, sigma_T^2) draws", normal),
    ):
        x = np.broadcast_to(x0[None, :, None], (n_models, n_points, 1)).copy()
        sample_linear_ensemble(ens, n_points, n_steps=n_steps, x_T=x)  # compile / warm up
        best = np.inf
        for _ in range(5):
            c0 = time.process_time()
            sample_linear_ensemble(ens, n_points, n_steps=n_steps, x_T=x)
            best = min(best, time.process_time() - c0)
        per = best / (n_models * n_points * n_steps) * 1e9
        print(f"| {label} | {np.mean(np.abs(x0) > 3.3):.2%} | {per:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
