"""Benchmark: ``gtv.numerics.memory.hopfield.hopfield_fixed_points``, numba vs numpy reference.

Cases (issue 13; the goal is numba >= 10x the numpy reference on 2 cores):

(a) n = 10 000 starts, K = 1 000 memories in D = 2 (standard normal memories and starts, fixed
    seed), vp-linear at t = 0.2 (beta = alpha^2/(2 sigma^2) = 0.38: most starts flow to a few
    merged attractors, tens of iterations each);
(b) the same with D = 64 (beta = 0.38 is the memorization regime there: a few iterations).

Both backends run the same algorithm (CCCP update y <- m(alpha_t y), per-start stop at
|step| <= tol = 1e-10) in this process on the same inputs; numba is compiled (or loaded from its
cache) before timing. The numpy reference can be timed on ``--numpy-starts`` of the starts and
scaled linearly (it is vectorized over starts, so its cost is linear in their number). "max |dy|"
is the largest end-point difference between the backends on the starts both ran, "iters" the mean
number of iterations per start. An informative row per case runs numba on one thread.

Usage::

    python benchmarks/bench_memorization.py --only hopfield          # full run (a few minutes)
    python benchmarks/bench_memorization.py --only hopfield --quick  # tiny smoke run (seconds)
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numba
import numpy as np
from _machine import best_time as _best_time
from _machine import command_line, load_average, print_all_times, print_machine

from gtv.numerics.memory.hopfield import hopfield_fixed_points

TABLE_HEADER = "| case | gtv s | numpy s | speedup | max abs dy | iters | notes |"
ALL_TIMES: dict[str, list[float]] = {}


def best_time(fn: Callable[[], object], repeats: int, label: str) -> tuple[float, object]:
    """Best of ``repeats`` calls, every timing recorded in :data:`ALL_TIMES`."""
    return _best_time(fn, repeats, label, ALL_TIMES)


def run_case(name, n, k, d, t, repeats, numpy_starts, seed, rows) -> None:
    rng = np.random.default_rng(seed)
    mu = rng.standard_normal((k, d))
    starts = rng.standard_normal((n, d))
    t_nb, r_nb = best_time(lambda: hopfield_fixed_points(mu, starts, t), repeats, f"{name} numba")
    ns = n if numpy_starts <= 0 else min(n, numpy_starts)
    t_sub, r_np = best_time(
        lambda: hopfield_fixed_points(mu, starts[:ns], t, backend="numpy"), 1, f"{name} numpy"
    )
    t_np = t_sub * n / ns
    dy = float(np.abs(r_nb.points[:ns] - r_np.points).max())
    note = f"n={n}, K={k}, D={d}, vp-linear t={t} (beta={r_nb.beta:.3g}); best of {repeats}"
    note += f"; unconverged numba/numpy: {r_nb.n_unconverged}/{r_np.n_unconverged}"
    if ns < n:
        note += f"; numpy TIMED ON {ns} OF {n} STARTS and scaled x{n / ns:g} ({t_sub:.2f} s)"
    rows.append((f"{name} D={d}", t_nb, t_np, dy, float(r_nb.iterations.mean()), note))
    nthreads = numba.get_num_threads()
    if nthreads > 1:
        numba.set_num_threads(1)
        try:
            t1, r1 = best_time(
                lambda: hopfield_fixed_points(mu, starts, t), 1, f"{name} numba 1 thread"
            )
        finally:
            numba.set_num_threads(nthreads)
        same = np.array_equal(r1.points, r_nb.points)
        rows.append(
            (
                f"{name} D={d}, numba on 1 thread",
                t1,
                t_np,
                float(np.abs(r1.points[:ns] - r_np.points).max()),
                float(r1.iterations.mean()),
                f"informative: per-core speedup; end points identical to {nthreads} threads: "
                f"{same}",
            )
        )


def format_table(rows: list) -> str:
    lines = [TABLE_HEADER, "|---|---:|---:|---:|---:|---:|---|"]
    for case, tn, tp, dy, its, note in rows:
        lines.append(
            f"| {case} | {tn:.3f} | {tp:.3f} | {tp / tn:.1f}x | {dy:.1e} | {its:.1f} | {note} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat (smoke run)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the numba timing")
    parser.add_argument(
        "--numpy-starts",
        type=int,
        default=0,
        help="time the numpy reference on only this many starts and scale linearly (0 = all)",
    )
    parser.add_argument("--t", type=float, default=0.2, help="time (vp-linear)")
    parser.add_argument("--seed", type=int, default=20261205, help="seed of memories and starts")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    if args.quick:
        n, k, repeats, label = 200, 100, 1, "(QUICK)"
    else:
        n, k, repeats, label = 10_000, 1_000, args.repeats, ""
    load_start = load_average()
    t0 = time.perf_counter()
    warm = np.random.default_rng(0).standard_normal((5, 2))
    for backend in ("numba", "numpy"):
        hopfield_fixed_points(warm, warm, 0.3, backend=backend)
    warm_s = time.perf_counter() - t0
    rows: list = []
    run_case(f"(a){label}", n, k, 2, args.t, repeats, args.numpy_starts, args.seed, rows)
    run_case(f"(b){label}", n, k, 64, args.t, repeats, args.numpy_starts, args.seed, rows)

    print("## hopfield_fixed_points: numba vs numpy reference\n")
    print_machine()
    print(f"numba threads: {numba.get_num_threads()} ({numba.threading_layer()})")
    print(f"load average (1/5/15 min) at start: {load_start}; at end: {load_average()}")
    print(f"warm-up (numba compile or cache load): {warm_s:.2f} s")
    print(f"command: {command_line()}")
    print()
    print(format_table(rows))
    print()
    print("speedup = numpy s / gtv s; max abs dy = numba vs numpy end points.")
    print_all_times(ALL_TIMES)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
