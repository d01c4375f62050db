"""Benchmark: the full Figure-2 sweep, gtv (numba) vs a straightforward numpy version of the paper.

The sweep is 3 values of eps x 5 values of P = 15 configurations, each with 100 linear-feature
models (F = 16 x 16 Gaussian features) trained on P DSM triples and sampled with 10^5 samples x 30
Euler steps of the PF-ODE, training included.

* ``gtv``: :func:`gtv.validation.figures.figure2.compute_figure2` (training, exact evaluation of
  the denoiser at every sample, per-model histograms and gap mass, plus the exact-denoiser
  reference curve).
* ``gtv grid``: the same with ``lookup="grid"`` (the paper's nearest-grid evaluation).
* ``numpy``: the paper's algorithm written plainly in numpy, in this process: per model, build the
  feature matrix, solve the ridge normal equations, then per step tabulate the denoiser on a
  200-point x-grid and look each sample up at its nearest grid point with ``searchsorted``;
  per-model histograms at the end.

Usage::

    python benchmarks/bench_figure2.py            # the full sweep (minutes: numpy is slow)
    python benchmarks/bench_figure2.py --quick    # a tiny smoke run
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import time

import numba
import numpy as np
from _machine import print_machine

from gtv.numerics.schedules import get_schedule
from gtv.validation.figures.figure2 import FIGURE2_DATA, Figure2Config, compute_figure2


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _gauss_features(u: np.ndarray, lo: float, hi: float, n: int) -> np.ndarray:
    centres = np.linspace(lo, hi, n)
    std = (hi - lo) / (n - 1) / 2
    z = (u[:, None] - centres[None, :]) / std
    return np.exp(-0.5 * z * z) / (std * np.sqrt(2 * np.pi))


def numpy_paper_sweep(cfg: Figure2Config, seed: int = 0, grid_points: int = 200) -> float:
    """The paper's algorithm in plain numpy; returns the wall time in seconds."""
    sched = get_schedule(cfg.schedule)
    rng = np.random.default_rng(seed)
    lo, hi = cfg.x_range
    grid = np.linspace(lo, hi, grid_points)
    edges = np.linspace(lo, hi, cfg.n_bins + 1)
    phi_grid = _gauss_features(grid, lo, hi, cfg.n_space)  # (G, Fx)
    t0 = time.perf_counter()
    for eps in cfg.eps_values:
        ts = np.linspace(sched.T, eps, cfg.n_steps + 1)
        a_coef, b_coef = sched.pf_x_coeff(ts), sched.pf_mean_coeff(ts)
        phi_t_grid = _gauss_features(ts, eps, sched.T, cfg.n_time)  # (K+1, Ft)
        for P in cfg.P_values:
            for _ in range(cfg.n_models):
                # Training: P DSM triples, weighted ridge normal equations.
                t = rng.uniform(eps, sched.T, P)
                x0 = FIGURE2_DATA[rng.integers(0, 3, P), 0]
                x = sched.alpha(t) * x0 + np.sqrt(sched.sigma2(t)) * rng.standard_normal(P)
                lam = sched.dsm_weight(t)
                px = _gauss_features(x, lo, hi, cfg.n_space)
                pt = _gauss_features(t, eps, sched.T, cfg.n_time)
                phi = (px[:, :, None] * pt[:, None, :]).reshape(P, -1)
                gram = (phi * lam[:, None]).T @ phi / P + cfg.ridge * np.eye(phi.shape[1])
                rhs = (phi * (lam * x0)[:, None]).sum(axis=0) / P
                w = np.linalg.solve(gram, rhs).reshape(cfg.n_space, cfg.n_time)
                # Sampling: Euler on the time grid, denoiser looked up at the nearest grid point.
                xs = np.sqrt(sched.sigma2(sched.T)) * rng.standard_normal(cfg.n_samples)
                for k in range(cfg.n_steps):
                    table = phi_grid @ (w @ phi_t_grid[k])  # denoiser on the x-grid
                    idx = np.clip(np.searchsorted(grid, xs), 1, grid_points - 1)
                    left_closer = (xs - grid[idx - 1]) < (grid[idx] - xs)
                    idx = idx - left_closer
                    dt = ts[k + 1] - ts[k]
                    xs = xs + dt * (a_coef[k] * xs - b_coef[k] * table[idx])
                np.histogram(xs, bins=edges)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    parser.add_argument(
        "--numpy-fraction",
        type=float,
        default=1.0,
        help="run the numpy version on this fraction of the models and scale its time linearly "
        "(default 1: the whole sweep)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        cfg = Figure2Config(n_models=4, n_samples=2000, n_bayes_samples=2000)
    else:
        cfg = Figure2Config()
    print("# Figure-2 sweep benchmark")
    print_machine()
    n_configs = len(cfg.eps_values) * len(cfg.P_values)
    print(
        f"sweep: {n_configs} configurations x {cfg.n_models} models x {cfg.n_samples} samples x "
        f"{cfg.n_steps} steps"
    )

    # Compile once on a tiny version so that the timings below are run time only.
    compute_figure2(
        Figure2Config(
            n_models=2, n_samples=10, n_bayes_samples=10, P_values=(64,), eps_values=(1e-2,)
        ),
        progress=False,
    )
    compute_figure2(
        Figure2Config(
            n_models=2,
            n_samples=10,
            n_bayes_samples=10,
            P_values=(64,),
            eps_values=(1e-2,),
            lookup="grid",
        ),
        progress=False,
    )
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}, "
        f"numba threads {numba.get_num_threads()} ({numba.threading_layer()})"
    )

    t0 = time.perf_counter()
    compute_figure2(cfg, progress=False)
    t_gtv = time.perf_counter() - t0
    rss_gtv = _peak_rss_mb()

    t0 = time.perf_counter()
    compute_figure2(
        Figure2Config(
            **{
                **cfg.to_dict(),
                "lookup": "grid",
                "eps_values": cfg.eps_values,
                "P_values": cfg.P_values,
                "x_range": cfg.x_range,
            }
        ),
        progress=False,
    )
    t_grid = time.perf_counter() - t0

    frac = min(1.0, max(args.numpy_fraction, 1.0 / cfg.n_models))
    n_np = max(1, round(cfg.n_models * frac))
    np_cfg = Figure2Config(
        **{
            **cfg.to_dict(),
            "n_models": n_np,
            "eps_values": cfg.eps_values,
            "P_values": cfg.P_values,
            "x_range": cfg.x_range,
        }
    )
    t_np = numpy_paper_sweep(np_cfg) * cfg.n_models / n_np
    scaled = (
        ""
        if n_np == cfg.n_models
        else f" (measured on {n_np} models, scaled x{cfg.n_models / n_np:g})"
    )

    print()
    print("| implementation | wall time (s) | speed-up vs numpy | peak RSS (MB) |")
    print("|---|---|---|---|")
    print(
        f"| gtv, exact denoiser at every sample | {t_gtv:.2f} | {t_np / t_gtv:.1f}x "
        f"| {rss_gtv:.0f} |"
    )
    print(f'| gtv, lookup="grid" (paper\'s evaluation) | {t_grid:.2f} | {t_np / t_grid:.1f}x | |')
    print(f"| numpy, paper's algorithm (searchsorted){scaled} | {t_np:.2f} | 1.0x | |")
    print()
    print(
        "Peak RSS is the whole process's maximum resident set size after the gtv run "
        "(Python, numba and the libraries included)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
