"""Benchmark of the memorization numerics (issue 13): three parts, each a printed table.

1. ``hopfield`` -- the attractor search of the exact empirical score (CCCP / modern-Hopfield
   fixed points, ``gtv.numerics.memory.hopfield_fixed_points``): 10**4 starts, K = 10**3
   memories, D = 2 and D = 64, numba against the plain-numpy reference in the same process
   (``_memory_hopfield.py``; goal >= 10x).
2. ``nearest`` -- nearest and second-nearest neighbours (``gtv.numerics.memory.nearest_two``),
   the work of both distance criteria: 10**5 samples against K = 10**4 points in D = 2, and
   D = 64, numba against the numpy reference (``_memory_nearest.py``; goal >= 10x).
3. ``curve`` -- one whole transition curve of Pham et al.'s circle toy: 12 values of K from 2
   to 10**4, the exact empirical score, the default configuration of ``gtv memorization curve``
   (8 pairs x 1000 samples per K, three criteria), timed end to end in this process
   (goal <= 60 s on 2 cores). There is no numpy twin of the whole run; its parts are 1 and 2.

Usage::

    python benchmarks/bench_memorization.py             # everything (several minutes)
    python benchmarks/bench_memorization.py --quick     # tiny smoke run (seconds)
    python benchmarks/bench_memorization.py --only nearest [--quick]
"""

from __future__ import annotations

import argparse
import time

import _memory_hopfield
import _memory_nearest
import numba
from _machine import command_line, print_machine

PARTS = ("hopfield", "nearest", "curve")


def run_curve(quick: bool) -> None:
    from gtv.validation.memory import TransitionConfig, run_transition

    cfg = (
        TransitionConfig(model="exact")
        if not quick
        else TransitionConfig(model="exact", Ks=(2, 20, 200), n_models=2, n_samples=100)
    )
    warm = TransitionConfig(model="exact", Ks=(2, 5), n_models=2, n_samples=20)
    t0 = time.perf_counter()
    run_transition(warm)
    t_warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = run_transition(cfg)
    total = time.perf_counter() - t0
    print("## one transition curve: circle toy, exact empirical score\n")
    print_machine()
    print(f"numba threads: {numba.get_num_threads()} ({numba.threading_layer()})")
    print(f"warm-up (compile or cache load): {t_warm:.2f} s")
    print(f"command: {command_line()}")
    print()
    print("| K | pairs x samples | seconds |")
    print("|---:|---|---:|")
    for K, s in zip(cfg.Ks, res.seconds, strict=True):
        print(f"| {K} | {cfg.n_models} x {cfg.n_samples} | {s:.2f} |")
    print(f"| all {len(cfg.Ks)} | | {total:.2f} |")
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat (smoke run)")
    parser.add_argument("--only", choices=PARTS, default=None, help="run one part only")
    args = parser.parse_args(argv)
    quick = ["--quick"] if args.quick else []
    parts = PARTS if args.only is None else (args.only,)
    if "hopfield" in parts:
        _memory_hopfield.main(quick)
        print()
    if "nearest" in parts:
        _memory_nearest.main(quick)
        print()
    if "curve" in parts:
        run_curve(args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
