"""Measurement: ``gtv figure 2`` end to end, and where its time goes.

1. ``gtv figure 2 --out DIR --no-progress`` run ``--runs`` times as a fresh process the way the
   ``gtv`` console script runs it (:func:`gtv.validation.cli.run`, with its fast exit; wall time
   from process start to the saved npz, PNG and PDF; user CPU time of the process and its
   children), after one untimed run that fills the numba cache;
2. one more fresh process running the same command in-process with its phases timed: importing
   the CLI, importing Figure 2's modules, the computation, the npz, the figure, the gap table.

The goal of issue 15 is 5 s for (1). Usage::

    python benchmarks/measure_figure2_cli.py            # 3 runs (~30 s)
    python benchmarks/measure_figure2_cli.py --quick    # --fast figure, 1 run (smoke)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

from _machine import command_line, load_average, print_machine

PHASES = r"""
import contextlib, io, sys, time
t0 = time.perf_counter()
from gtv.validation.cli import main
t1 = time.perf_counter()
import gtv.validation.figures.figure2 as fig2
t2 = time.perf_counter()
spent = {}
def timed(label, fn):
    def wrapper(*a, **k):
        t = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            spent[label] = time.perf_counter() - t
    return wrapper
fig2.compute_figure2 = timed("computation", fig2.compute_figure2)
R = fig2.Figure2Result
R.save = timed("npz", R.save)
R.plot = timed("PNG + PDF", R.plot)
R.gap_table = timed("gap table", R.gap_table)
with contextlib.redirect_stdout(io.StringIO()):
    main(["figure", "2", *sys.argv[2:], "--out", sys.argv[1], "--no-progress"])
t3 = time.perf_counter()
rows = [("import the CLI", t1 - t0), ("import Figure 2's modules", t2 - t1), *spent.items()]
rows.append(("the rest of the command", t3 - t2 - sum(spent.values())))
for label, t in rows:
    print(f"| {label} | {t:.2f} |")
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="--fast figure, one run (smoke)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs (default 3)")
    args = parser.parse_args(argv)
    extra = ["--fast"] if args.quick else []
    runs = 1 if args.quick else max(1, args.runs)
    # what the `gtv` console script runs (gtv.validation.cli:run, with its fast exit)
    script = "from gtv.validation.cli import run; run()"
    gtv = [sys.executable, "-c", script, "figure", "2", *extra, "--no-progress"]
    print("# gtv figure 2, end to end")
    print_machine()
    print(f"command: {command_line()}")
    print(f"load average before: {load_average()}")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([*gtv, "--out", tmp], check=True, capture_output=True)  # numba cache
        print("| run | wall s | user s (process and children) |")
        print("|---|---|---|")
        for r in range(runs):
            out = os.path.join(tmp, f"run{r}")
            before = os.times()
            t0 = time.perf_counter()
            subprocess.run([*gtv, "--out", out], check=True, capture_output=True)
            wall = time.perf_counter() - t0
            user = os.times().children_user - before.children_user
            print(f"| {r + 1} | {wall:.2f} | {user:.2f} |")
        print("\nphases of one more run (in-process, steps timed):")
        print("| phase | wall s |")
        print("|---|---|")
        phases = subprocess.run(
            [sys.executable, "-c", PHASES, os.path.join(tmp, "phases"), *extra],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        print(phases.stdout, end="")
    print(f"load average after: {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
