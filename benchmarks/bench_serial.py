"""Benchmark: gtv's serial-reproduction chains vs the authors' dense-matrix algorithm.

Cases (issue 12; docs/serial.md):

(a) the Fig-3 sweep on the authors' 26 x 26 grid: Gaussian noise ``linspace(0.01, 0.05, T)`` for
    T in {2, 3, 6, 12, 24, 48, 100}, exact denoisers, error / JSD / complexity / stationarity;
(b) T = 100 on the authors' 41 x 41 grid: the Fig-S4 condition (Gaussian, constant 0.01), the
    same metrics. The dense algorithm keeps K_t, P_t and S_t = P_t K_t for every step (as the
    MATLAB code does: ~6.8 GB at T = 100), so it is run at T = 5 and 10 and its time and memory
    are extrapolated linearly to T = 100 (stated in the table);
(c) the whole Fig 2 + Fig 3 reproduction as a user runs it: ``gtv serial fig2`` and
    ``gtv serial fig3`` (computation, result files, PNG + PDF figures), wall time of the two
    commands including interpreter start-up.

gtv runs :func:`gtv.validation.serial.experiments.run_experiment` / ``run_condition`` (FFT
kernels, ``O(M log M)`` per step, no M x M matrix); the dense baseline is ``_serial_dense.py``, a
plain numpy transcription of the authors' data flow. Each timed case runs in a fresh child
process, which imports and warms up first and then reports its wall time and its peak resident
memory (VmHWM, reset just before the case; shown as the increase over the warmed-up process and
as the process total). The two implementations' errors are compared (max abs difference, bits).

Usage::

    python benchmarks/bench_serial.py                 # full run (about 2 minutes on 2 cores)
    python benchmarks/bench_serial.py --quick         # smoke run (seconds)
    python benchmarks/bench_serial.py --json out.json # also write the table as JSON
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _machine import cpu_model, print_machine  # noqa: E402

TABLE_HEADER = (
    "| case | gtv s | dense s | speed-up | goal | gtv peak MB (process) | dense peak MB (process) "
    "| max abs diff (bits) |"
)
FIG3_STEPS = (2, 3, 6, 12, 24, 48, 100)


# -- the child process: one case, timed, with its peak memory ---------------------------------
def _status(key: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key):
                return float(line.split()[1]) / 1024.0  # MB
    return float("nan")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _case(name: str, arg: str):
    """``(function, warm-up function)`` of a case; ``arg`` is its size parameter."""
    import numpy as np

    if name in ("gtv-fig3", "dense-fig3"):
        steps = tuple(int(s) for s in arg.split(","))
        if name == "gtv-fig3":
            from gtv.validation.serial.config import experiment_config
            from gtv.validation.serial.experiments import run_experiment

            def run():
                res = run_experiment(experiment_config("fig3", "authors", steps=steps))
                return [r["error"] for r in res.rows]

            def warm():
                run_experiment(experiment_config("fig3", "authors", h=0.1, steps=(2,)))

            return run, warm
        from _serial_dense import run_dense

        def run():
            return [run_dense(0.04, "gaussian", np.linspace(0.01, 0.05, T))["error"] for T in steps]

        return run, lambda: run_dense(0.1, "gaussian", np.linspace(0.01, 0.05, 2))
    h, T = (float(v) for v in arg.split(","))
    T = int(T)
    if name == "gtv-const":
        from gtv.validation.serial.config import Condition
        from gtv.validation.serial.data import swiss_roll
        from gtv.validation.serial.experiments import make_grid, run_condition

        cond = Condition("s4", "gaussian", "constant", 0.01, 0.01, T)

        def run():
            grid = make_grid("authors", h)
            return [run_condition(cond, grid, swiss_roll(grid))[0]["error"]]

        def warm():
            g = make_grid("authors", 0.1)
            run_condition(Condition("w", "gaussian", "constant", 0.05, 0.05, 2), g, swiss_roll(g))

        return run, warm
    from _serial_dense import run_dense

    def run():
        return [run_dense(h, "gaussian", np.full(T, 0.01))["error"]]

    return run, lambda: run_dense(0.1, "gaussian", np.full(2, 0.05))


def child(name: str, arg: str, repeats: int) -> None:
    run, warm = _case(name, arg)
    warm()
    base = _status("VmRSS")
    reset = _reset_peak()
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - t0)
    peak = _status("VmHWM")
    print(
        json.dumps(
            {
                "seconds": min(times),
                "times": times,
                "errors": out,
                "peak_mb": peak,
                "increase_mb": peak - base if reset else float("nan"),
            }
        )
    )


def measure(name: str, arg: str, repeats: int = 1) -> dict:
    """Run one case in a fresh process; returns its report."""
    proc = subprocess.run(
        [sys.executable, __file__, "--child", name, arg, str(repeats)],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"case {name} {arg} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def time_cli(argvs: list[list[str]]) -> float:
    """Wall time of running the ``gtv`` commands one after another (start-up included)."""
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        for argv in argvs:
            cmd = [sys.executable, "-m", "gtv.validation.cli", *argv, "--out", tmp, "--no-progress"]
            subprocess.run(cmd, check=True, capture_output=True, timeout=600)
        return time.perf_counter() - t0


# -- the report ---------------------------------------------------------------------------------
def _mb(r: dict) -> str:
    return f"{r['increase_mb']:.0f} ({r['peak_mb']:.0f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--json", type=Path, default=None, help="also write the table as JSON")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return 0

    print_machine()
    print(f"load average: {' / '.join(f'{v:.2f}' for v in os.getloadavg())}")
    quick = args.quick
    steps = (2, 3) if quick else FIG3_STEPS
    big_h, big_T = (0.04, 10) if quick else (0.025, 100)
    dense_T = (2, 4) if quick else (5, 10)
    rows = []

    # (a) Fig-3 sweep
    s = ",".join(map(str, steps))
    g = measure("gtv-fig3", s, repeats=1 if quick else 3)
    d = measure("dense-fig3", s)
    diff = max(abs(a - b) for a, b in zip(g["errors"], d["errors"], strict=True))
    speed = d["seconds"] / g["seconds"]
    rows.append(
        {
            "case": f"(a) Fig-3 sweep, 26x26, T in {{{s}}}",
            "gtv_s": g["seconds"],
            "dense_s": d["seconds"],
            "speedup": speed,
            "goal": f">= 20x: {'met' if speed >= 20 else 'NOT met'}",
            "gtv_mb": _mb(g),
            "dense_mb": _mb(d),
            "diff": diff,
        }
    )

    # (b) T = 100 at 41 x 41 (dense extrapolated from two shorter runs)
    g = measure("gtv-const", f"{big_h},{big_T}", repeats=1 if quick else 3)
    g_check = measure("gtv-const", f"{big_h},{dense_T[1]}")
    ds = [measure("dense-const", f"{big_h},{T}") for T in dense_T]
    slope = (ds[1]["seconds"] - ds[0]["seconds"]) / (dense_T[1] - dense_T[0])
    dense_s = ds[1]["seconds"] + slope * (big_T - dense_T[1])
    mslope = (ds[1]["increase_mb"] - ds[0]["increase_mb"]) / (dense_T[1] - dense_T[0])
    dense_mb = ds[1]["increase_mb"] + mslope * (big_T - dense_T[1])
    speed = dense_s / g["seconds"]
    n = int(round(1 / big_h)) + 1
    mem_ok = g["increase_mb"] <= 200
    rows.append(
        {
            "case": f"(b) T={big_T} at {n}x{n} (S4: Gaussian 0.01); dense extrapolated from "
            f"T={dense_T[0]}, {dense_T[1]} ({ds[0]['seconds']:.1f} s, {ds[1]['seconds']:.1f} s)",
            "gtv_s": g["seconds"],
            "dense_s": dense_s,
            "speedup": speed,
            "goal": f">= 20x: {'met' if speed >= 20 else 'NOT met'}; <= 200 MB: "
            f"{'met' if mem_ok else 'NOT met'}",
            "gtv_mb": _mb(g),
            "dense_mb": f"~{dense_mb:.0f} (extrapolated)",
            "diff": abs(g_check["errors"][0] - ds[1]["errors"][0]),
        }
    )

    # (c) the whole Fig 2 + Fig 3 reproduction through the command line
    fig3 = ["serial", "fig3"] + (["--steps", "2", "3"] if quick else [])
    fig2 = ["serial", "fig2"] + (["--h", "0.1"] if quick else [])
    wall = time_cli([fig2, fig3])
    rows.append(
        {
            "case": "(c) `gtv serial fig2` + `gtv serial fig3` (files, PNG + PDF, start-up)",
            "gtv_s": wall,
            "dense_s": None,
            "speedup": None,
            "goal": f"<= 30 s: {'met' if wall <= 30 else 'NOT met'}",
            "gtv_mb": "",
            "dense_mb": "",
            "diff": None,
        }
    )

    print()
    print(TABLE_HEADER)
    print("|---|---:|---:|---:|---|---:|---:|---:|")
    for r in rows:
        dense = "" if r["dense_s"] is None else f"{r['dense_s']:.2f}"
        speed = "" if r["speedup"] is None else f"{r['speedup']:.0f}x"
        diff = "" if r["diff"] is None else f"{r['diff']:.1e}"
        print(
            f"| {r['case']} | {r['gtv_s']:.3f} | {dense} | {speed} | {r['goal']} | "
            f"{r['gtv_mb']} | {r['dense_mb']} | {diff} |"
        )
    print()
    print(
        "peak MB: increase of the child process's peak resident memory over its warmed-up "
        "state (imports done), with the process total in parentheses. gtv times: best of "
        f"{1 if quick else 3}; dense: one run. (b) diff compares gtv and dense at T={dense_T[1]}."
    )
    if args.json:
        args.json.write_text(
            json.dumps({"cpu": cpu_model(), "quick": quick, "rows": rows}, indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
