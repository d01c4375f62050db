"""Benchmark: ``gtv.numerics.memory.nearest.nearest_two``, numba kernels vs the numpy reference.

Cases (issue 13; the goal is numba >= 10x the numpy reference on case (a)):

(a) N = 100 000 queries against K = 10 000 points in D = 2 (standard normal, fixed seed):
    * brute force, numba vs numpy: the SAME algorithm (every pair's squared distance, running
      top-2 / two ``argmin`` passes);
    * the exact cell list (``method="grid"``, what ``method="auto"`` picks for D <= 3) vs the numpy
      brute force: a DIFFERENT algorithm, same results;
    * informative: numba on one thread, and ``scipy.spatial.cKDTree.query(k=2, workers=-1)``
      (another exact algorithm; its tie-breaking is not gtv's, so only the distances are compared).
(b) N = 10 000 queries against K = 10 000 points in D = 64, brute force numba vs numpy (the numpy
    reference is timed on ``--numpy-queries`` queries and scaled linearly).
(c) "nearest other sample": N = 50 000 samples in D = 2 against themselves (``exclude_self``).
(d) the same for N = 20 000 samples collapsed onto two points (the memorization regime): the
    grid's cells are crowded and ``method="auto"`` falls back to brute force.

Both backends run in this process on the same inputs; numba is compiled (or loaded from its
cache) before timing; each time is the best of several repeats. "indices" says whether i1 and i2
are identical to the numpy reference, "max |d diff|" is the largest difference of d1 or d2.

Usage::

    python benchmarks/bench_memorization.py --only nearest           # full run (about two minutes)
    python benchmarks/bench_memorization.py --only nearest --quick   # tiny smoke run (seconds)
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numba
import numpy as np
from _machine import best_time as _best_time
from _machine import command_line, load_average, print_all_times, print_machine
from scipy.spatial import cKDTree

from gtv.numerics.memory.nearest import NearestTwo, nearest_two

TABLE_HEADER = "| case | gtv s | numpy s | speedup | indices | max abs d diff | notes |"
ALL_TIMES: dict[str, list[float]] = {}


def best_time(fn: Callable[[], object], repeats: int, label: str) -> tuple[float, object]:
    """Best of ``repeats`` calls, every timing recorded in :data:`ALL_TIMES`."""
    return _best_time(fn, repeats, label, ALL_TIMES)


def compare(a: NearestTwo, b: NearestTwo, sub: slice = slice(None)) -> tuple[str, float]:
    """('yes'/'NO', max |d diff|) of ``a[sub]`` against the reference ``b``."""
    same = np.array_equal(a.i1[sub], b.i1) and np.array_equal(a.i2[sub], b.i2)
    diff = max(np.max(np.abs(a.d1[sub] - b.d1)), np.max(np.abs(a.d2[sub] - b.d2)))
    return ("yes" if same else "NO"), float(diff)


def one_thread(fn: Callable[[], object], repeats: int, label: str) -> tuple[float, object]:
    nthreads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        return best_time(fn, repeats, label)
    finally:
        numba.set_num_threads(nthreads)


def case_low_dim(n: int, k: int, repeats: int, numpy_repeats: int, seed: int, rows: list) -> None:
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((n, 2))
    p = rng.standard_normal((k, 2))
    name = f"(a) N={n}, K={k}, D=2"
    t_np, ref = best_time(
        lambda: nearest_two(q, p, backend="numpy"), numpy_repeats, "(a) numpy brute"
    )
    t_b, out_b = best_time(lambda: nearest_two(q, p, method="brute"), repeats, "(a) numba brute")
    rows.append((f"{name}: numba brute", t_b, t_np, *compare(out_b, ref), "same algorithm"))
    t_b1, out_b1 = one_thread(
        lambda: nearest_two(q, p, method="brute"), repeats, "(a) numba brute 1 thread"
    )
    rows.append(
        (f"{name}: numba brute, 1 thread", t_b1, t_np, *compare(out_b1, ref), "informative")
    )
    t_g, out_g = best_time(lambda: nearest_two(q, p, method="grid"), repeats, "(a) numba grid")
    rows.append(
        (f"{name}: numba grid", t_g, t_np, *compare(out_g, ref), "DIFFERENT algorithm (cell list)")
    )
    t_g1, out_g1 = one_thread(
        lambda: nearest_two(q, p, method="grid"), repeats, "(a) numba grid 1 thread"
    )
    rows.append((f"{name}: numba grid, 1 thread", t_g1, t_np, *compare(out_g1, ref), "informative"))

    def kdtree():
        d, i = cKDTree(p).query(q, k=2, workers=-1)
        return NearestTwo(d[:, 0], d[:, 1], i[:, 0].astype(np.int64), i[:, 1].astype(np.int64))

    t_kd, out_kd = best_time(kdtree, repeats, "(a) scipy cKDTree")
    same, diff = compare(out_kd, ref)
    rows.append(
        (
            f"{name}: scipy cKDTree (build + query, workers=-1)",
            t_kd,
            t_np,
            same,
            diff,
            "informative: another exact algorithm; gtv column = scipy",
        )
    )


def case_high_dim(
    n: int, k: int, repeats: int, numpy_repeats: int, numpy_queries: int, seed: int, rows: list
) -> None:
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((n, 64))
    p = rng.standard_normal((k, 64))
    nq = n if numpy_queries <= 0 else min(n, numpy_queries)
    t_sub, ref = best_time(
        lambda: nearest_two(q[:nq], p, backend="numpy"), numpy_repeats, "(b) numpy brute"
    )
    t_np = t_sub * n / nq
    t_b, out = best_time(lambda: nearest_two(q, p, method="brute"), repeats, "(b) numba brute")
    note = "same algorithm"
    if nq < n:
        note += f"; numpy TIMED ON {nq} OF {n} QUERIES, scaled x{n / nq:g}; compared on those"
    rows.append(
        (f"(b) N={n}, K={k}, D=64: numba brute", t_b, t_np, *compare(out, ref, slice(0, nq)), note)
    )
    t_b1, out1 = one_thread(
        lambda: nearest_two(q, p, method="brute"), max(1, repeats - 1), "(b) numba 1 thread"
    )
    rows.append(
        (
            f"(b) N={n}, K={k}, D=64: numba brute, 1 thread",
            t_b1,
            t_np,
            *compare(out1, ref, slice(0, nq)),
            "informative",
        )
    )


def case_exclude_self(n: int, repeats: int, numpy_repeats: int, seed: int, rows: list) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2))
    t_np, ref = best_time(
        lambda: nearest_two(x, x, exclude_self=True, backend="numpy"),
        numpy_repeats,
        "(c) numpy brute",
    )
    for method in ("brute", "grid"):
        t, out = best_time(
            lambda m=method: nearest_two(x, x, exclude_self=True, method=m),
            repeats,
            f"(c) numba {method}",
        )
        note = "same algorithm" if method == "brute" else "DIFFERENT algorithm (cell list)"
        rows.append(
            (f"(c) N=K={n}, D=2, exclude_self: numba {method}", t, t_np, *compare(out, ref), note)
        )


def case_collapsed(n: int, repeats: int, numpy_repeats: int, seed: int, rows: list) -> None:
    """The memorization regime: all samples within 1e-6 of two points. Cells are crowded, so
    the grid scans ~N/2 candidates per query and ``method="auto"`` switches to brute force."""
    rng = np.random.default_rng(seed)
    x = np.array([[0.0, 0.0], [1.0, 1.0]])[rng.integers(0, 2, n)]
    x += 1e-6 * rng.standard_normal((n, 2))
    t_np, ref = best_time(
        lambda: nearest_two(x, x, exclude_self=True, backend="numpy"),
        numpy_repeats,
        "(d) numpy brute",
    )
    for method in ("brute", "grid", "auto"):
        t, out = best_time(
            lambda m=method: nearest_two(x, x, exclude_self=True, method=m),
            repeats,
            f"(d) numba {method}",
        )
        note = {"brute": "same algorithm", "grid": "cell list, crowded cells"}.get(
            method, "auto picks brute here"
        )
        name = f"(d) N=K={n}, D=2, collapsed onto 2 points, exclude_self: numba {method}"
        rows.append((name, t, t_np, *compare(out, ref), note))


def warm_up() -> None:
    """Compile (or load from cache) both kernels and touch the numpy path once."""
    rng = np.random.default_rng(0)
    for d in (2, 64):
        q = rng.standard_normal((7, d))
        for backend, method in (("numpy", "brute"), ("numba", "brute"), ("numba", "grid")):
            if method == "grid" and d > 3:
                continue
            nearest_two(q, q[:5], backend=backend, method=method)
            nearest_two(q, q, exclude_self=True, backend=backend, method=method)


def format_table(rows: list) -> str:
    lines = [TABLE_HEADER, "|---|---:|---:|---:|---|---:|---|"]
    for case, tg, tp, same, diff, note in rows:
        lines.append(
            f"| {case} | {tg:.3f} | {tp:.3f} | {tp / tg:.1f}x | {same} | {diff:.1e} | {note} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat (smoke run)")
    parser.add_argument("--repeats", type=int, default=5, help="repeats for the numba timings")
    parser.add_argument("--numpy-repeats", type=int, default=2, help="repeats for numpy timings")
    parser.add_argument(
        "--numpy-queries",
        type=int,
        default=2000,
        help="time the numpy reference of (b) on this many queries and scale linearly (0 = all)",
    )
    parser.add_argument("--seed", type=int, default=20261205, help="seed of the random points")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.numpy_repeats < 1:
        parser.error("--repeats and --numpy-repeats must be >= 1")

    if args.quick:
        (na, ka), (nb, kb), nc, nd = (2000, 500), (300, 400), 1000, 1000
        repeats = numpy_repeats = 1
    else:
        (na, ka), (nb, kb), nc, nd = (100_000, 10_000), (10_000, 10_000), 50_000, 20_000
        repeats, numpy_repeats = args.repeats, args.numpy_repeats

    load_start = load_average()
    t0 = time.perf_counter()
    warm_up()
    warm = time.perf_counter() - t0
    rows: list = []
    case_low_dim(na, ka, repeats, numpy_repeats, args.seed, rows)
    case_high_dim(
        nb, kb, max(1, min(repeats, 3)), numpy_repeats, args.numpy_queries, args.seed, rows
    )
    case_exclude_self(nc, repeats, numpy_repeats, args.seed, rows)
    case_collapsed(nd, max(1, min(repeats, 3)), numpy_repeats, args.seed, rows)

    print("## nearest_two: numba kernels vs numpy reference\n")
    print_machine()
    print(f"numba threads: {numba.get_num_threads()} ({numba.threading_layer()} layer)")
    print(f"load average (1/5/15 min) at start: {load_start}; at end: {load_average()}")
    print(f"warm-up (numba compile or cache load): {warm:.2f} s")
    print(f"command: {command_line()}")
    print()
    print(format_table(rows))
    print()
    print("speedup = numpy s / gtv s; indices and max abs d diff against the numpy reference.")
    print_all_times(ALL_TIMES)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
