"""Benchmark: ``gtv.numerics.posterior.posterior_stats``, numba kernel vs numpy reference.

Cases (docs/engineering.md; the issue's goal is numba >= 10x the numpy reference):

(a) the Fig. 1 quantity ``frac`` for the M = 6 hexagon of
    ``gtv.validation.figures.figure1.FIGURE1_DATASETS`` on a 1000 x 1000 grid, at the 5 times
    0.05, 0.1, 0.2, 0.5, 0.75 (``linear-variance``);
(b) M = 10 000 random training points in D = 64, N = 10 000 random queries (``vp-linear``,
    t = 0.5, fixed seed).

Both backends run in this process on the same inputs. numba is compiled (or loaded from its cache)
before timing; every time is the best of several repeats. The two backends' outputs are compared
(max relative difference). Extra, informative rows: numba on one thread (the per-core speedup),
for (a) ``frac_proxy_variance`` (the kernel then writes only ``frac``), and for (b) a numpy
variant that computes squared distances with the BLAS expansion ``|x|^2 - 2 alpha x.mu +
alpha^2 |mu|^2`` and the posterior variance as ``E|mu|^2 - |mu_bar|^2``. That variant is fast
but cancels catastrophically when sigma^2 is small (the posterior is then concentrated); its
accuracy at a small t is measured and shown. It is not the reference.

Usage::

    python benchmarks/bench_posterior.py            # full run (a few minutes on 2 cores)
    python benchmarks/bench_posterior.py --quick    # tiny smoke run (seconds)
    python benchmarks/bench_posterior.py --case a   # only case (a)
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import time
from collections.abc import Callable

import numba
import numpy as np
from _machine import best_time as _best_time
from _machine import command_line, cpu_topology, load_average, print_all_times

from gtv.numerics.posterior import frac_proxy_variance, posterior_stats
from gtv.numerics.schedules import get_schedule
from gtv.validation.figures.figure1 import FIGURE1_DATASETS, FIGURE1_TIMES

TABLE_HEADER = "| case | numba s | numpy s | speedup | max rel diff | notes |"


# -- helpers ------------------------------------------------------------------------------------
#: Every individual timing, by label, for the spread printed under the table.
ALL_TIMES: dict[str, list[float]] = {}


def best_time(fn: Callable[[], object], repeats: int, label: str) -> tuple[float, object]:
    """Best of ``repeats`` calls, every timing recorded in :data:`ALL_TIMES`."""
    return _best_time(fn, repeats, label, ALL_TIMES)


def rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Max relative difference of ``a`` from the reference ``b``.

    Scalars per query (frac, traces): elementwise ``|a - b| / |b|``. Vectors per query (mean,
    score; 2-D arrays): ``|a_i - b_i| / |b_i|`` with Euclidean norms per row. Entries where the
    reference is exactly 0 are compared absolutely.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.ndim == 2:
        num = np.linalg.norm(a - b, axis=1)
        den = np.linalg.norm(b, axis=1)
    else:
        num = np.abs(a - b).ravel()
        den = np.abs(b).ravel()
    den = np.where(den > 0, den, 1.0)
    return float(np.max(num / den))


def stats_diff(a, b) -> float:
    """Max relative difference over the outputs of two ``PosteriorStats``."""
    return max(
        rel_diff(a.mean, b.mean),
        rel_diff(a.cov_trace, b.cov_trace),
        rel_diff(a.score, b.score),
        rel_diff(a.frac, b.frac),
    )


def machine_info() -> dict[str, str]:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        layer = numba.threading_layer()
    except ValueError:
        layer = "not initialized"
    return {
        "date": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu,
        "topology": cpu_topology(),
        "logical cores (os.cpu_count)": str(os.cpu_count()),
        "usable cores (sched_getaffinity)": str(len(os.sched_getaffinity(0)))
        if hasattr(os, "sched_getaffinity")
        else "n/a",
        "numba threads": str(numba.get_num_threads()),
        "numba threading layer": layer,
        "numba": numba.__version__,
        "numpy": np.__version__,
    }


# -- numpy variant with BLAS distances (informative only) ----------------------------------------
def blas_posterior(mu, x, t, schedule, block=512):
    """Posterior mean, variance trace and frac with GEMM distances (fast, not cancellation-safe)."""
    sched = get_schedule(schedule)
    alpha = float(sched.alpha(t))
    sigma2 = float(sched.sigma2(t))
    mu2 = np.einsum("md,md->m", mu, mu)
    n = x.shape[0]
    mean = np.empty_like(x)
    trace = np.empty(n)
    for q0 in range(0, n, block):
        xb = x[q0 : q0 + block]
        x2 = np.einsum("nd,nd->n", xb, xb)
        d2 = x2[:, None] - (2.0 * alpha) * (xb @ mu.T) + (alpha * alpha) * mu2[None, :]
        logits = d2 * (-0.5 / sigma2)
        logits -= logits.max(axis=1, keepdims=True)
        w = np.exp(logits)
        w /= w.sum(axis=1, keepdims=True)
        mb = w @ mu
        mean[q0 : q0 + block] = mb
        trace[q0 : q0 + block] = w @ mu2 - np.einsum("nd,nd->n", mb, mb)
    score = (alpha * mean - x) / sigma2
    ctrace = (alpha * alpha / sigma2**2) * trace
    total = ctrace + np.einsum("nd,nd->n", score, score)
    frac = np.divide(ctrace, total, out=np.zeros_like(total), where=total > 0)
    return mean, trace, score, frac


# -- cases --------------------------------------------------------------------------------------
def case_frac_grid(n_grid: int, repeats: int, rows: list, label: str) -> None:
    mu = FIGURE1_DATASETS["hexagon"]
    g = np.linspace(-2.0, 2.0, n_grid)
    gx, gy = np.meshgrid(g, g)
    q = np.stack([gx.ravel(), gy.ravel()], axis=1)
    times = FIGURE1_TIMES

    def run(backend):
        return np.stack(
            [posterior_stats(mu, q, tv, "linear-variance", backend=backend).frac for tv in times]
        )

    t_numba, f_numba = best_time(lambda: run("numba"), repeats, "(a) numba")
    t_numpy, f_numpy = best_time(lambda: run("numpy"), repeats, "(a) numpy")
    diff = rel_diff(f_numba, f_numpy)
    case = f"(a) {label}: frac, M=6 hexagon, {n_grid}x{n_grid} grid x {len(times)} times"
    note = f"best of {repeats}; linear-variance, t = {', '.join(map(str, times))}"
    rows.append((case, t_numba, t_numpy, diff, note))

    nthreads = numba.get_num_threads()
    if nthreads > 1:
        numba.set_num_threads(1)
        try:
            t1, f1 = best_time(lambda: run("numba"), repeats, "(a) numba 1 thread")
        finally:
            numba.set_num_threads(nthreads)
        rows.append(
            (
                f"(a) {label}, numba on 1 thread",
                t1,
                t_numpy,
                rel_diff(f1, f_numpy),
                "informative: per-core speedup",
            )
        )

    def run_frac():
        return np.stack([frac_proxy_variance(mu, q, tv, "linear-variance") for tv in times])

    t_frac, f_frac = best_time(run_frac, repeats, "(a) numba frac_proxy_variance")
    if not np.array_equal(f_frac, f_numba):
        raise AssertionError("frac_proxy_variance differs from posterior_stats(...).frac")
    rows.append(
        (
            f"(a) {label}, numba via frac_proxy_variance",
            t_frac,
            t_numpy,
            rel_diff(f_frac, f_numpy),
            "informative: the kernel writes only frac (no mean, score, traces); same values "
            "as posterior_stats(...).frac (asserted)",
        )
    )


def case_random_points(
    m: int,
    d: int,
    n: int,
    repeats: int,
    numpy_repeats: int,
    numpy_queries: int,
    seed: int,
    rows: list,
    label: str,
) -> None:
    rng = np.random.default_rng(seed)
    mu = rng.standard_normal((m, d))
    x = rng.standard_normal((n, d))
    tv = 0.5
    sched = "vp-linear"
    case = f"(b) {label}: M={m}, D={d}, N={n}, vp-linear t={tv}"

    t_numba, s_numba = best_time(
        lambda: posterior_stats(mu, x, tv, sched, backend="numba"), repeats, "(b) numba"
    )

    nq = n if numpy_queries <= 0 else min(n, numpy_queries)
    xs = x[:nq]
    t_sub, s_numpy = best_time(
        lambda: posterior_stats(mu, xs, tv, sched, backend="numpy"), numpy_repeats, "(b) numpy"
    )
    t_numpy = t_sub * (n / nq)
    sub = slice(0, nq)
    s_numba_sub = type(s_numba)(
        s_numba.mean[sub],
        s_numba.cov_trace[sub],
        None,
        s_numba.score[sub],
        s_numba.proxy_cov_trace[sub],
        None,
        s_numba.frac[sub],
    )
    diff = stats_diff(s_numba_sub, s_numpy)
    note = f"best of {repeats} (numba) / {numpy_repeats} (numpy)"
    if nq < n:
        note += (
            f"; numpy TIMED ON {nq} OF {n} QUERIES and scaled x{n / nq:g} "
            f"(measured {t_sub:.3f} s); diff on those {nq}"
        )
    else:
        note += "; all queries"
    rows.append((case, t_numba, t_numpy, diff, note))

    nthreads = numba.get_num_threads()
    if nthreads > 1:
        numba.set_num_threads(1)
        try:
            t1, s1 = best_time(
                lambda: posterior_stats(mu, x, tv, sched, backend="numba"),
                max(1, repeats - 1),
                "(b) numba 1 thread",
            )
        finally:
            numba.set_num_threads(nthreads)
        rows.append(
            (
                f"(b) {label}, numba on 1 thread",
                t1,
                t_numpy,
                stats_diff(s1, s_numba),
                "informative: per-core speedup; diff vs numba multi-thread",
            )
        )

    # numpy with BLAS distances: timed on all queries, compared with the reference.
    t_blas, (bm, bt, bs, bf) = best_time(
        lambda: blas_posterior(mu, x, tv, sched), repeats, "(b) numpy BLAS"
    )
    diff_blas = max(
        rel_diff(bm[sub], s_numpy.mean),
        rel_diff(bt[sub], s_numpy.cov_trace),
        rel_diff(bs[sub], s_numpy.score),
        rel_diff(bf[sub], s_numpy.frac),
    )
    # Its accuracy where the posterior is concentrated (smaller t): queries drawn from p(x|t)
    # near training points. The reference is cancellation-free; numba is shown alongside.
    sch = get_schedule(sched)
    k = min(200, n)
    acc = []
    for t_small in (0.2, 0.15):
        idx = rng.integers(0, m, size=k)
        noise = rng.standard_normal((k, d))
        xq = sch.alpha(t_small) * mu[idx] + np.sqrt(sch.sigma2(t_small)) * noise
        ref = posterior_stats(mu, xq, t_small, sched, backend="numpy")
        nbs = posterior_stats(mu, xq, t_small, sched, backend="numba")
        _, bt_s, _, bf_s = blas_posterior(mu, xq, t_small, sched)
        err_blas = max(rel_diff(bt_s, ref.cov_trace), rel_diff(bf_s, ref.frac))
        err_numba = max(rel_diff(nbs.cov_trace, ref.cov_trace), rel_diff(nbs.frac, ref.frac))
        acc.append(
            f"t={t_small} (sigma^2={float(sch.sigma2(t_small)):.2f}): "
            f"{err_blas:.1e} (numba {err_numba:.1e})"
        )
    rows.append(
        (
            f"(b) {label}, numpy with BLAS distances (informative, NOT the reference)",
            t_numba,
            t_blas,
            diff_blas,
            "speedup column = numba vs this variant. |x|^2-2a x.mu+a^2|mu|^2 and "
            "E|mu|^2-|mu_bar|^2 cancel when the posterior concentrates; max rel diff to the "
            f"reference on {k} queries from p(x|t) at " + "; ".join(acc),
        )
    )


def warm_up() -> None:
    """Compile (or load from cache) the numba kernel and touch the numpy path once."""
    rng = np.random.default_rng(0)
    mu = rng.standard_normal((7, 3))
    x = rng.standard_normal((5, 3))
    for backend in ("numba", "numpy"):
        posterior_stats(mu, x, 0.3, "vp-linear", backend=backend)
        posterior_stats(mu[:, :2], x[:, :2], 0.3, "linear-variance", backend=backend)


def format_table(rows: list) -> str:
    lines = [TABLE_HEADER, "|---|---:|---:|---:|---:|---|"]
    for case, tn, tp, diff, note in rows:
        lines.append(f"| {case} | {tn:.3f} | {tp:.3f} | {tp / tn:.1f}x | {diff:.1e} | {note} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat (smoke run)")
    parser.add_argument("--repeats", type=int, default=5, help="repeats for fast timings")
    parser.add_argument(
        "--numpy-repeats", type=int, default=2, help="repeats for the slow numpy timing of (b)"
    )
    parser.add_argument(
        "--numpy-queries",
        type=int,
        default=0,
        help="time the numpy reference of (b) on only this many queries and scale linearly "
        "(0 = all)",
    )
    parser.add_argument("--seed", type=int, default=20261124, help="seed for case (b)")
    parser.add_argument(
        "--case", choices=("all", "a", "b"), default="all", help="run only case (a) or (b)"
    )
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.numpy_repeats < 1:
        parser.error("--repeats and --numpy-repeats must be >= 1")

    if args.quick:
        grid, (m, d, n) = 50, (300, 8, 200)
        repeats = numpy_repeats = 1
        label = "QUICK"
    else:
        grid, (m, d, n) = 1000, (10_000, 64, 10_000)
        repeats, numpy_repeats = args.repeats, args.numpy_repeats
        label = "full"

    load_start = load_average()
    t0 = time.perf_counter()
    warm_up()
    warm = time.perf_counter() - t0
    rows: list = []
    if args.case in ("all", "a"):
        case_frac_grid(grid, repeats, rows, label)
    if args.case in ("all", "b"):
        reps = max(1, min(repeats, 3))
        case_random_points(m, d, n, reps, numpy_repeats, args.numpy_queries, args.seed, rows, label)

    print("## posterior_stats: numba vs numpy reference\n")
    for k, v in machine_info().items():
        print(f"- {k}: {v}")
    print(f"- load average (1/5/15 min) at start: {load_start}; at end: {load_average()}")
    print(f"- warm-up (numba compile or cache load): {warm:.2f} s")
    print(f"- command: {command_line()}")
    print()
    print(format_table(rows))
    print()
    print("speedup = numpy s / numba s; max rel diff = numba vs numpy reference unless noted.")
    print_all_times(ALL_TIMES)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
