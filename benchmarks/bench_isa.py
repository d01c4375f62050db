"""Benchmark: the same kernels compiled for the host's vector ISA and for narrower ones, one core.

Issue 15 reported gtv's kernels 2.5x slower on a 2-core Intel Xeon with AVX-512 than on an AMD
EPYC with AVX2, while the numpy versions were only 1.3x slower. This script separates the
instruction set from the machine: on one host it compiles each kernel three times, in three
child processes with a numba configuration of their own, and times them on one thread:

* ``host``: numba's default -- the host CPU's name and all its features;
* ``AVX2``: the host's CPU name with every ``avx512*`` feature switched off (what an AVX2 host of
  the same family would run);
* ``Skylake-AVX512 codegen``: ``NUMBA_CPU_NAME=skylake-avx512`` with the host's features (the
  instruction scheduling and vector-width preferences LLVM uses for an Intel Xeon of that
  generation); only on hosts with AVX-512.

The numpy row of each kernel (the straightforward algorithm, never compiled) runs in every child
too: it does not depend on the numba configuration, so it shows how much the machine itself
drifted between the children. Timings: best of ``--repeats`` ``time.process_time`` differences,
numba and BLAS on one thread.

Kernels (Figure 2's sizes: F = 16 x 16 Gaussian features, eps = 0.01, P = 256):

* ``PF-ODE``: 20 models' samplers carried over the transported grid of 16 384 points, 30 Euler
  steps; CPU ns per point-step; numpy: the Euler loop with the features evaluated by
  ``evaluate_reference`` (two models);
* ``training``: 100 models (normal equations and Cholesky); CPU ms; numpy: per model features,
  ``(phi w)^T phi / P + rho I`` and ``numpy.linalg.solve``;
* ``binning``: the transported Gaussian mass of those 20 models binned on 600 bins
  (:func:`gtv.numerics.transport.pushforward_masses`); CPU ns per cell; numpy: the reference;
* ``posterior (a)``: Figure 1's ``frac`` on a 300 x 300 grid at 5 times (M = 6 hexagon); CPU ms;
  numpy: ``posterior_stats(..., backend="numpy")``.

Usage::

    python benchmarks/bench_isa.py            # three children (~2 min with a cold numba cache)
    python benchmarks/bench_isa.py --quick    # small sizes, host configuration only (smoke)
    python benchmarks/bench_isa.py --json     # the table as JSON
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from _machine import command_line, cpu_topology, load_average, print_machine

#: (label, extra environment) of the children; ``None``: the host's own configuration.
CONFIGS = ("host", "AVX2", "Skylake-AVX512 codegen")


def _environment(config: str) -> dict[str, str] | None:
    """The numba environment of one child, or None when the host cannot run it."""
    import llvmlite.binding as ll

    features = ll.get_host_cpu_features()
    has_avx512 = bool(features.get("avx512f"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_CPU_")}
    if config == "host":
        return env
    if not has_avx512:
        return None  # an AVX2 host runs "AVX2" as "host"; Skylake codegen needs AVX-512
    if config == "AVX2":
        for name in list(features):
            if name.startswith("avx512"):
                features[name] = False
        env["NUMBA_CPU_NAME"] = ll.get_host_cpu_name()
        env["NUMBA_CPU_FEATURES"] = features.flatten()
        return env
    env["NUMBA_CPU_NAME"] = "skylake-avx512"
    env["NUMBA_CPU_FEATURES"] = features.flatten()
    return env


def _cpu_best(fn, repeats: int):
    """Best ``time.process_time`` of ``repeats`` calls (after one untimed call) and the last
    result."""
    out = fn()  # compile, warm up
    best = float("inf")
    for _ in range(repeats):
        c0 = time.process_time()
        out = fn()
        best = min(best, time.process_time() - c0)
    return best, out


def _row(kernel: str, numba_fn, numpy_fn, repeats: int, unit: float, n_ref: float = 1.0) -> dict:
    """One kernel: numba and numpy CPU times per ``unit`` (numpy's on ``n_ref`` of the numba
    run's work) and the largest difference of their results over the largest numpy value."""
    import numpy as np

    t_numba, a = _cpu_best(numba_fn, repeats)
    t_numpy, b = _cpu_best(numpy_fn, 1)
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    a = a[tuple(slice(0, n) for n in b.shape)]  # numpy ran on the first rows only
    diff = float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))
    return {"kernel": kernel, "numba": t_numba / unit, "numpy": t_numpy / (unit * n_ref),
            "diff": diff}  # fmt: skip


def _numpy_sampler(ens, x_T, eps: float, n_steps: int):
    """The PF-ODE's Euler loop in plain numpy (vp-linear, written out): per model and step the
    features of every point (``evaluate_reference``) times the model's weights."""
    import numpy as np

    ts = np.linspace(1.0, eps, n_steps + 1)
    beta = 0.1 + 19.9 * ts
    log_alpha = -(0.1 * ts + 19.9 * ts * ts / 2)
    sigma2 = -np.expm1(2 * log_alpha)
    a, b = beta / sigma2 - beta, beta * np.exp(log_alpha) / sigma2
    out = np.empty_like(x_T)
    for n in range(x_T.shape[0]):
        x = x_T[n].copy()
        for k in range(n_steps):
            phi = ens.features.evaluate_reference(x, np.full(x.shape[0], ts[k]))
            x = x + (ts[k + 1] - ts[k]) * (a[k] * x - b[k] * (phi @ ens.W[n].T))
        out[n] = x
    return out


def child(quick: bool, repeats: int) -> list[dict]:
    """Time the four kernels in this process; one row per kernel."""
    import numba
    import numpy as np
    from bench_training import numpy_training
    from threadpoolctl import threadpool_limits

    from gtv.numerics.features import ProductFeatures
    from gtv.numerics.linear import sample_linear_ensemble, train_linear_ensemble
    from gtv.numerics.posterior import posterior_stats
    from gtv.numerics.schedules import get_schedule
    from gtv.numerics.transport import (
        pushforward_masses,
        pushforward_masses_reference,
        transport_grid,
    )
    from gtv.validation.figures.figure1 import FIGURE1_DATASETS, FIGURE1_TIMES
    from gtv.validation.figures.figure2 import FIGURE2_DATA

    numba.set_num_threads(1)
    rows = []
    n_space, n_models, n_points, n_train = (8, 4, 2048, 20) if quick else (16, 20, 16_384, 100)
    n_steps, eps, P = 30, 1e-2, 256
    sched = get_schedule("vp-linear")
    sigma_T = float(np.sqrt(sched.sigma2(sched.T)))
    feats = ProductFeatures.uniform("gaussian", 1, n_space, n_space, (eps, sched.T), (-1.5, 1.5))
    with threadpool_limits(1):
        ens = train_linear_ensemble(
            FIGURE2_DATA, feats, n_models, P, eps, sched, seed=0, keep_normal_equations=False
        )
        grid = transport_grid(n_points, sigma_T)
        x = np.broadcast_to(grid[None, :, None], (n_models, n_points, 1)).copy()

        def sampler():
            return sample_linear_ensemble(ens, n_points, n_steps=n_steps, x_T=x)

        # the numpy loop runs on two models (its time per point-step does not depend on them)
        n_ref = 2
        per = n_models * n_steps * n_points * 1e-9
        rows.append(
            _row(
                "PF-ODE (ns per point-step)", sampler,
                lambda: _numpy_sampler(ens, x[:n_ref], eps, n_steps), repeats, per,
                n_ref / n_models,
            )
        )  # fmt: skip
        rows.append(
            _row(
                f"training, {n_train} models (ms)",
                lambda: train_linear_ensemble(
                    FIGURE2_DATA, feats, n_train, P, eps, sched, seed=1,
                    keep_normal_equations=False,
                ).W,
                lambda: numpy_training(feats, n_train, P, eps, sched, 0.1, 1), repeats, 1e-3,
            )
        )  # fmt: skip
        end = np.ascontiguousarray(sampler()[:, :, 0])
        edges = np.linspace(-1.5, 1.5, 601)
        rows.append(
            _row(
                "binning (ns per cell)",
                lambda: pushforward_masses(grid, end, sigma_T, edges),
                lambda: pushforward_masses_reference(grid, end, sigma_T, edges), repeats,
                n_models * (n_points + 1) * 1e-9,
            )
        )  # fmt: skip
        n_grid = 60 if quick else 300
        g = np.linspace(-2.0, 2.0, n_grid)
        gx, gy = np.meshgrid(g, g)
        q = np.stack([gx.ravel(), gy.ravel()], axis=1)
        mu = FIGURE1_DATASETS["hexagon"]

        def frac(backend):
            return [
                posterior_stats(mu, q, t, "linear-variance", backend=backend).frac
                for t in FIGURE1_TIMES
            ]

        rows.append(
            _row(
                f"posterior (a), {n_grid}x{n_grid} x 5 (ms)", lambda: frac("numba"),
                lambda: frac("numpy"), repeats, 1e-3,
            )
        )  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, host only (smoke)")
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed calls per numba kernel (default 5)"
    )
    parser.add_argument("--json", action="store_true", help="print the table as JSON")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    if args.child is not None:
        json.dump(child(args.quick, args.repeats), sys.stdout)
        return 0
    import numba

    results = {}
    skipped = []
    for config in CONFIGS[:1] if args.quick else CONFIGS:
        env = _environment(config)
        if env is None:
            skipped.append(config)
            continue
        cmd = [sys.executable, os.path.abspath(__file__), "--child", config]
        cmd += ["--repeats", str(args.repeats)] + (["--quick"] if args.quick else [])
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"the {config} child failed (exit {proc.returncode})")
        results[config] = json.loads(proc.stdout)
    if args.json:
        json.dump({"topology": cpu_topology(), "results": results, "skipped": skipped}, sys.stdout)
        print()
        return 0
    print("# the same kernels compiled for the host's ISA and for narrower ones, one thread")
    print_machine()
    print(f"command: {command_line()}")
    print(f"numba {numba.__version__}; load average after: {load_average()}")
    if skipped:
        print(f"not run (the host has no AVX-512): {', '.join(skipped)}")
    configs = list(results)
    print()
    head = " | ".join(f"{c}: numba | {c}: numpy" for c in configs)
    print(f"| kernel | {head} | max rel diff |")
    print("|---|" + "---:|---:|" * len(configs) + "---:|")
    for i, row in enumerate(results[configs[0]]):
        cells = []
        for c in configs:
            r = results[c][i]
            cells += [f"{r['numba']:.3g}", f"{r['numpy']:.3g}"]
        diff = max(results[c][i]["diff"] for c in configs)
        print(f"| {row['kernel']} | " + " | ".join(cells) + f" | {diff:.1e} |")
    if len(configs) > 1:
        print()
        print("numba time relative to the host configuration (numpy's in brackets: the drift):")
        for i, row in enumerate(results[configs[0]]):
            base = results[configs[0]][i]
            rel = [
                f"{c} {results[c][i]['numba'] / base['numba']:.2f}x "
                f"({results[c][i]['numpy'] / base['numpy']:.2f}x)"
                for c in configs[1:]
            ]
            print(f"  {row['kernel']}: " + ", ".join(rel))
    return 0


if __name__ == "__main__":
    sys.exit(main())
