"""Benchmark: the full Figure-2 sweep, gtv (numba) vs a straightforward numpy version of the paper.

The sweep is 3 values of eps x 5 values of P = 15 configurations, each with 100 linear-feature
models (F = 16 x 16 Gaussian features) trained on P DSM triples, 30 Euler steps of the PF-ODE,
training included.

* ``gtv, transport`` (the default of ``gtv figure 2``):
  :func:`gtv.validation.figures.figure2.compute_figure2` with ``density="transport"``: every
  model's sampler (the denoiser evaluated exactly) carried over a 2048-point quantile grid,
  refined where a chord would misplace mass (up to 16 384 points per model), and the Gaussian mass
  binned exactly (docs/math/transport.md), per-model histograms, gap masses and error estimates,
  plus the exact-denoiser reference the same way. Per model it is more accurate than 10^5 Monte
  Carlo samples (the measurement is in docs/math/transport.md). Timed ``--repeats`` times
  (default 3: first, just before the paper's algorithm, after it); the goal is judged on the
  median, and every run is printed.
* ``gtv, Monte Carlo``: the same with ``density="mc"``: 10^5 random samples per model, as the
  paper (the same algorithm as the numpy rows).
* ``gtv grid``: Monte Carlo with ``lookup="grid"`` (the paper's tabulated evaluation).
* ``numpy``: the paper's algorithm written plainly in numpy, in this process: per model, build the
  feature matrix, solve the ridge normal equations, then per step tabulate the denoiser on a
  200-point x-grid and look each sample up at the first grid point at or above it
  (``searchsorted``, the paper's rule);
  per-model histograms at the end.
* ``paper's notebook algorithm``: the functions of the paper's Figure-2 notebook written out
  (``_paper_figure2.py``: all models of a panel trained at once, the denoiser tabulated on the
  200 x 31 grid, batched Euler with a ``searchsorted`` lookup, ``np.histogram`` per model), then
  its second loop, the exact-denoiser reference (10^6 samples per panel). ``--paper-models N``
  runs the model loop on N models and scales its time by ``n_models / N``; the reference loop
  does not depend on the number of models and is never scaled.

A sanity table then compares the gap mass of the per-model histograms (the mass lying farther
than ``gap_distance`` from every data point) of gtv and of the paper's algorithm, panel by panel:
the two compute the same figure.

Usage::

    python benchmarks/bench_figure2.py            # the full sweep (minutes: numpy is slow)
    python benchmarks/bench_figure2.py --quick    # a tiny smoke run
    python benchmarks/bench_figure2.py --paper-models 20 --numpy-fraction 0.1
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import resource
import sys
import time

import numba
import numpy as np
from _machine import command_line, load_average, print_machine
from _paper_figure2 import PAPER_DATA, PaperFigure2, run_paper_figure2
from threadpoolctl import threadpool_info, threadpool_limits

from gtv.numerics.allocator import tune_allocator
from gtv.numerics.schedules import get_schedule
from gtv.validation.figures.figure2 import (
    FIGURE2_DATA,
    Figure2Config,
    Figure2Result,
    compute_figure2,
)


def _blas_threads() -> str:
    """The BLAS library and its thread count (the paper's algorithm spends its time in BLAS and
    LAPACK calls, whose threads compete with other processes on a busy machine)."""
    pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    return "; ".join(
        f"{p['internal_api']} {p.get('version')}, {p['num_threads']} threads" for p in pools
    )


def _blas_limit(threads: int | None):
    """A context limiting BLAS to ``threads`` threads (``None``: no limit)."""
    if threads is None:
        return contextlib.nullcontext()
    return threadpool_limits(limits=threads, user_api="blas")


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
                # Sampling: Euler on the time grid, the denoiser looked up at the first grid
                # point at or above each sample (the paper's searchsorted rule).
                xs = np.sqrt(sched.sigma2(sched.T)) * rng.standard_normal(cfg.n_samples)
                for k in range(cfg.n_steps):
                    table = phi_grid @ (w @ phi_t_grid[k])  # denoiser on the x-grid
                    idx = np.clip(np.searchsorted(grid, xs), None, grid_points - 1)
                    dt = ts[k + 1] - ts[k]
                    xs = xs + dt * (a_coef[k] * xs - b_coef[k] * table[idx])
                np.histogram(xs, bins=edges)
    return time.perf_counter() - t0


def gap_mass_of_histograms(
    hist: np.ndarray, edges: np.ndarray, data: np.ndarray, distance: float
) -> np.ndarray:
    """Per-model mass of density histograms (N, B) farther than ``distance`` from every point.

    Exact for the piecewise-constant densities: each bin contributes its density times the part
    of the bin outside the intervals ``[d - distance, d + distance]`` (which must not overlap).
    Both implementations are measured the same way, each on its own bins.
    """
    data = np.sort(np.asarray(data, dtype=float))
    if np.any(np.diff(data) <= 2 * distance):
        raise ValueError(f"distance must be < half the data spacing, got {distance!r}")
    lo, hi = edges[:-1], edges[1:]
    near = sum(
        np.clip(np.minimum(hi, d + distance) - np.maximum(lo, d - distance), 0, None) for d in data
    )
    return hist @ ((hi - lo) - near)


def _mean_2se(values: np.ndarray) -> tuple[float, float]:
    """Mean across models and twice its standard error (0 for one model)."""
    n = values.size
    two_se = 2 * values.std(ddof=1) / np.sqrt(n) if n > 1 else 0.0
    return float(values.mean()), float(two_se)


def _paper_models(arg: int | None, n_models: int, parser: argparse.ArgumentParser) -> int:
    if arg is None:
        return n_models
    if not 1 <= arg <= n_models:
        parser.error(f"--paper-models must be in 1..{n_models}, got {arg}")
    return arg


def print_gap_check(
    gtv_tr: Figure2Result,
    gtv_exact: Figure2Result,
    gtv_grid: Figure2Result,
    paper: PaperFigure2,
    cfg: Figure2Config,
) -> None:
    """Gap mass per panel of gtv (transport, Monte Carlo, grid lookup) and of the paper's
    algorithm."""
    print()
    print(
        f"Sanity check, the same figure: gap mass (histogram mass farther than "
        f"{cfg.gap_distance:g} from every data point), mean over models +- 2 standard errors; "
        f"gtv on its {cfg.n_bins} bins x {cfg.n_models} models (the same models in its three "
        f"columns), the paper's algorithm on its {paper.bins.size - 1} bins x "
        f"{paper.densities.shape[2]} models. z = (paper - gtv grid) / combined standard error."
    )
    print()
    print("| eps | P | gtv, transport | gtv, Monte Carlo | gtv, grid | paper's algorithm | z |")
    print("|---|---|---|---|---|---|---|")
    for i, eps in enumerate(cfg.eps_values):
        for j, P in enumerate(cfg.P_values):
            stats = [
                _mean_2se(
                    gap_mass_of_histograms(er.histograms, er.edges[0], PAPER_DATA, cfg.gap_distance)
                )
                for er in (
                    gtv_tr.ensembles[i][j],
                    gtv_exact.ensembles[i][j],
                    gtv_grid.ensembles[i][j],
                )
            ]
            stats.append(
                _mean_2se(
                    gap_mass_of_histograms(
                        paper.densities[i, j], paper.bins, PAPER_DATA, cfg.gap_distance
                    )
                )
            )
            (m_grid, s2_grid), (m_paper, s2_paper) = stats[2], stats[3]
            comb = np.hypot(s2_grid, s2_paper) / 2
            z = f"{(m_paper - m_grid) / comb:+.1f}" if comb > 0 else "n/a"
            cells = " | ".join(f"{m:.4f} +- {s2:.4f}" for m, s2 in stats)
            print(f"| {eps:g} | {P} | {cells} | {z} |")


REFERENCE = "exact-denoiser reference rows (all of their stages)"


def time_stages(cfg: Figure2Config) -> tuple[float, dict[str, float]]:
    """One more ``compute_figure2(cfg)`` with its stages timed (wall seconds, summed over the
    panels): the functions it calls are wrapped with timers for the run and restored after."""
    import gtv.numerics.transport.grid as grid_mod
    import gtv.validation.figures.base as base_mod
    import gtv.validation.figures.figure2 as fig2_mod
    from gtv.numerics.linear import LinearSampler

    spent: dict[str, float] = {}
    open_stages: list[str] = []  # a stage inside another is counted in the outer one only

    def timed(label, fn):
        def wrapper(*a, **k):
            t = time.perf_counter()
            open_stages.append(label)
            try:
                return fn(*a, **k)
            finally:
                open_stages.pop()
                if not open_stages:
                    spent[label] = spent.get(label, 0.0) + time.perf_counter() - t

        return wrapper

    patches = [
        (base_mod, "train_linear_ensemble", "training (DSM draws, normal equations, Cholesky)"),
        (LinearSampler, "__init__", "sampler preparation (time contraction, Horner coefficients)"),
        (LinearSampler, "sample", "PF-ODE of the grid points (30 Euler steps)"),
        (grid_mod, "refinement_points", "refinement: scoring cells, new points"),
        (grid_mod, "merge_refinement", "refinement: inserting transported points"),
        (fig2_mod, "summarize_ensemble", "binning: histograms, gap masses, error estimates"),
        (fig2_mod, "_bayes_reference", REFERENCE),
    ]
    saved = [(obj, name, getattr(obj, name)) for obj, name, _ in patches]
    try:
        for obj, name, label in patches:
            setattr(obj, name, timed(label, getattr(obj, name)))
        t0 = time.perf_counter()
        compute_figure2(cfg, progress=False)
        total = time.perf_counter() - t0
    finally:
        for obj, name, fn in saved:
            setattr(obj, name, fn)
    return total, spent


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
    parser.add_argument(
        "--paper-models",
        type=int,
        default=None,
        help="run the paper's notebook algorithm with this many models and scale the time of its "
        "model loop by n_models / N (default: all n_models, 100 = the paper's); its reference "
        "loop is never scaled",
    )
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=None,
        help="limit BLAS/LAPACK to this many threads while the numpy and the paper's rows run "
        "(default: the library's own; 1 with --quick). On a busy machine two OpenBLAS threads "
        "can make small LAPACK calls many times slower",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="time gtv's default (transport) row this many times, spread over the benchmark: "
        "first, then just before the paper's algorithm, then after it (the rest at the end); "
        "the goal is judged on their median, the first run is printed as well (default 3; this "
        "VM's speed drifts by tens of percent from one minute to the next)",
    )
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    # the allocator settings of the gtv command, for every implementation timed below
    allocator = tune_allocator()
    if args.blas_threads is not None and args.blas_threads < 1:
        parser.error(f"--blas-threads must be >= 1, got {args.blas_threads}")
    blas_threads = 1 if args.quick and args.blas_threads is None else args.blas_threads
    if args.quick:
        cfg = Figure2Config(n_models=4, n_samples=2000, n_bayes_samples=2000, n_points=2048)
    else:
        cfg = Figure2Config()
    n_paper = _paper_models(args.paper_models, cfg.n_models, parser)
    print("# Figure-2 sweep benchmark")
    print_machine()
    print(f"command: {command_line()}")
    print(f"load average before: {load_average()}")
    print(f"allocator: glibc thresholds raised for all rows (as in the gtv command): {allocator}")
    n_configs = len(cfg.eps_values) * len(cfg.P_values)
    print(
        f"sweep: {n_configs} configurations x {cfg.n_models} models x {cfg.n_steps} Euler steps; "
        f"transport: {cfg.n_points} grid points per model; Monte Carlo: {cfg.n_samples} samples"
    )

    def variant(**kw) -> Figure2Config:
        base = {**cfg.to_dict(), "eps_values": cfg.eps_values, "P_values": cfg.P_values}
        return Figure2Config(**{**base, "x_range": cfg.x_range, **kw})

    # Compile (or load) once on a tiny version so that the timings below are run time only;
    # P = 64 and 256 reach both training solvers (the P x P dual system and the F x F one).
    tiny = {"n_models": 2, "n_samples": 10, "n_bayes_samples": 10, "n_points": 16}
    for kw in ({}, {"density": "mc"}, {"density": "mc", "lookup": "grid"}):
        compute_figure2(
            Figure2Config(**tiny, P_values=(64, 256), eps_values=(1e-2,), **kw), progress=False
        )
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}, "
        f"numba threads {numba.get_num_threads()} ({numba.threading_layer()}); "
        f"BLAS: {_blas_threads()}"
    )
    print(
        "BLAS threads for the numpy and paper rows: "
        + ("the library's own" if blas_threads is None else f"limited to {blas_threads}")
    )

    def time_default() -> tuple[float, Figure2Result]:
        t0 = time.perf_counter()
        res = compute_figure2(cfg, progress=False)
        return time.perf_counter() - t0, res

    t_first, res_tr = time_default()
    t_default = [t_first]
    rss_gtv = _peak_rss_mb()

    t0 = time.perf_counter()
    res_exact = compute_figure2(variant(density="mc"), progress=False)
    t_gtv = time.perf_counter() - t0

    t0 = time.perf_counter()
    res_grid = compute_figure2(variant(density="mc", lookup="grid"), progress=False)
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
    with _blas_limit(blas_threads):
        t_np = numpy_paper_sweep(np_cfg) * cfg.n_models / n_np
    scaled = (
        ""
        if n_np == cfg.n_models
        else f" (measured on {n_np} models, scaled x{cfg.n_models / n_np:g})"
    )

    if args.repeats >= 2:
        t_default.append(time_default()[0])
    with _blas_limit(blas_threads):
        paper = run_paper_figure2(
            n_models=n_paper,
            n_samples=cfg.n_samples,
            eps_values=cfg.eps_values,
            P_values=cfg.P_values,
            seed=cfg.seed,
            progress=None if args.quick else (lambda msg: print(msg, file=sys.stderr, flush=True)),
        )
    rss_paper = _peak_rss_mb()
    while len(t_default) < args.repeats:
        t_default.append(time_default()[0])
    t_tr = float(np.median(t_default))
    t_models = paper.model_seconds * cfg.n_models / n_paper
    t_ref = paper.reference_seconds
    t_paper = t_models + t_ref
    paper_scaled = (
        ""
        if n_paper == cfg.n_models
        else f"; model loop measured on {n_paper} models, scaled x{cfg.n_models / n_paper:g}"
    )

    print()
    print("| implementation | wall time (s) | speed-up vs numpy | peak RSS (MB) |")
    print("|---|---|---|---|")
    print(
        f"| gtv, transport (default; {cfg.n_points} grid points per model; median of "
        f"{len(t_default)} runs) | {t_tr:.2f} | {t_np / t_tr:.1f}x | {rss_gtv:.0f} |"
    )
    print(
        f"| gtv, Monte Carlo ({cfg.n_samples} samples, exact denoiser at every sample) "
        f"| {t_gtv:.2f} | {t_np / t_gtv:.1f}x | |"
    )
    print(
        f'| gtv, Monte Carlo, lookup="grid" (paper\'s evaluation) | {t_grid:.2f} '
        f"| {t_np / t_grid:.1f}x | |"
    )
    print(f"| numpy, paper's algorithm (searchsorted){scaled} | {t_np:.2f} | 1.0x | |")
    print(
        f"| paper's notebook algorithm, both loops (reference unscaled{paper_scaled}) "
        f"| {t_paper:.2f} | {t_np / t_paper:.2f}x | {rss_paper:.0f} |"
    )
    print()
    print(
        "| paper's notebook algorithm, part | wall time (s) | / gtv transport | / gtv Monte Carlo "
        "| / gtv grid |"
    )
    print("|---|---|---|---|---|")
    parts = (
        (f'model loop (the notebook\'s "Elapsed time"{paper_scaled})', t_models),
        (f"reference loop ({n_configs} x {10 * cfg.n_samples} samples, unscaled)", t_ref),
        ("both loops", t_paper),
    )
    for label, t in parts:
        print(f"| {label} | {t:.2f} | {t / t_tr:.1f}x | {t / t_gtv:.1f}x | {t / t_grid:.1f}x |")
    goal = "met" if t_paper / t_tr >= 100 else "not met"
    print()
    runs = ", ".join(f"{t:.2f}" for t in t_default)
    print(
        f"gtv, transport, every timed run in order ({runs} s; first: before the other rows, "
        "second: just before the paper's algorithm, third: after it): "
        + ", ".join(f"{t_paper / t:.1f}x" for t in t_default)
        + " the paper's algorithm."
    )
    print(
        f"Goal (issue 15): the Figure-2 computation >= 100x the paper's algorithm: "
        f"{t_paper / t_tr:.1f}x (both loops / median gtv default run): {goal}; "
        f"first run alone {t_paper / t_first:.1f}x."
    )
    print()
    print(
        "Peak RSS is the whole process's maximum resident set size (Python, numba and the "
        "libraries included): after the first gtv run, and after the paper's algorithm (which "
        "runs last; the larger of the two is the process's peak so far). gtv's times include its "
        "own exact-denoiser reference (one per eps, by transport or "
        f"{cfg.n_bayes_samples} samples); the paper's reference loop draws 10 x n_samples "
        "samples for every (eps, P) panel."
    )
    print_gap_check(res_tr, res_exact, res_grid, paper, cfg)
    total, spent = time_stages(cfg)
    print()
    print(f"Where the time of gtv, transport goes (one more run, stages timed: {total:.2f} s):")
    print("| stage | wall s | share |")
    print("|---|---|---|")
    ref = spent.pop(REFERENCE, 0.0)
    inner = 0.0
    for label, t in spent.items():
        inner += t
        print(f"| {label} | {t:.2f} | {t / total:.0%} |")
    print(f"| {REFERENCE} | {ref:.2f} | {ref / total:.0%} |")
    rest = total - inner - ref
    print(f"| the rest (Python, checks, arrays, streams) | {rest:.2f} | {rest / total:.0%} |")
    print()
    print(f"load average after: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
