"""Benchmark: transport densities (gtv.numerics.transport) -- kernel speed, noise floor, accuracy.

Four tables, all in this process:

1. **kernel**: :func:`gtv.numerics.transport.pushforward_masses` (numba, parallel over models) vs
   the straightforward numpy version :func:`~gtv.numerics.transport.pushforward_masses_reference`
   (every cell against every bin edge), on transported grids of a Figure-2 ensemble;
2. **floor** (skipped with ``--kernel-only``): Figure-2 panels (eps = 0.01, P in {64, 256},
   F = 16 x 16, the panel seeds of ``compute_figure2``; ``n_models`` models, ``n_samples`` per
   model) and ``compare_linear``'s default configuration (eps = 0.01, F = 8 x 8, P in
   {64, 256, 4000}, seed 0; twice the models, a fifth of the samples: 200 x 20 000 by default),
   per-model densities from Monte Carlo (random start points, as now) and from transport (a
   grid of ``n_points``): the half-vs-half noise floor of ``gtv.validation.linear.compare``
   (TV between the ensemble-mean bin masses, outside mass as one more bin, of two random halves
   of the models; mean over 20 splits of ``resampling_rng(seed)``), the cost of each, the largest
   per-model transport error estimate (``TransportedGrid.error``), the TV between the two
   ensemble means, and the median per-model TV between transport and Monte Carlo next to the
   median TV expected from multinomial noise alone (Monte Carlo drawn from the transport masses);
3. **2-D** (skipped with ``--kernel-only``): a 2-D linear ensemble (20 models), per-model
   densities from 2^12 scrambled-Sobol' start points and from 2^12 random ones, each against a
   16x larger Monte Carlo reference of the same model: median per-model TV.
4. **accuracy** (skipped with ``--kernel-only``): 20 Figure-2 models (eps = 0.01, P = 64 and
   256), transport densities (plain grids of 2^14 and 2^16 points, and Figure 2's default: 2048
   points refined adaptively up to 16 384) against 10^6 Monte Carlo samples per model, next to
   that reference's own multinomial noise (TV of the ensemble means, per-model TV median and max).
5. **convergence** (with ``--convergence``, or without ``--kernel-only``): plain grids of 2^12 to
   2^14 points and Figure 2's refined default against a 2^19-point grid of the same models, at
   every Figure-2 eps (P = 64 and 1024).

Usage::

    python benchmarks/bench_transport.py                # everything (minutes on 2 cores)
    python benchmarks/bench_transport.py --quick        # a tiny smoke run
    python benchmarks/bench_transport.py --kernel-only  # table 1 only
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _machine import best_time, load_average, print_machine

from gtv.numerics.features import ProductFeatures
from gtv.numerics.linear import sample_linear_ensemble, train_linear_ensemble
from gtv.numerics.schedules import get_schedule
from gtv.numerics.streams import stream_rng
from gtv.numerics.transport import (
    pushforward_masses,
    pushforward_masses_reference,
    qmc_start_points,
    transport_1d,
)
from gtv.validation.ensembles import gap_mass, per_model_histograms
from gtv.validation.figures.base import panel_seed
from gtv.validation.figures.figure2 import FIGURE2_DATA, Figure2Config
from gtv.validation.stats import interval_masses, resampling_rng, total_variation

SCHED = get_schedule("vp-linear")
SIGMA_T = float(np.sqrt(SCHED.sigma2(SCHED.T)))


def _features(eps: float, dim: int = 1, n_space: int = 16, n_time: int = 16) -> ProductFeatures:
    return ProductFeatures.uniform("gaussian", dim, n_space, n_time, (eps, SCHED.T), (-1.5, 1.5))


def _ensemble(eps: float, P: int, n_models: int, seed):
    return train_linear_ensemble(
        FIGURE2_DATA, _features(eps), n_models, P, eps, SCHED, ridge=0.1, seed=seed,
        keep_normal_equations=False,
    )  # fmt: skip


#: Figure 2's default transport (Figure2Config): 2048 start points refined where a chord may
#: misplace more than 1e-6 of mass across a bin of 0.02, up to 16 384 points per model.
DEFAULT_REFINED = (2048, 0.02, 16384)


def _transport(ens, n_points: int, resolution: float | None = None, max_points=None):
    def run(x, models=None):
        return sample_linear_ensemble(ens, x.shape[1], x_T=x, models=models)

    return transport_1d(
        run, ens.n_models, SIGMA_T, n_points, resolution=resolution, max_points=max_points
    )


def kernel_table(n_models: int, n_points: int, repeats: int) -> None:
    cfg = Figure2Config()
    edges = np.linspace(*cfg.x_range, cfg.n_bins + 1)
    g = _transport(_ensemble(0.01, 64, n_models, panel_seed(0, 2, 0)), n_points)
    pushforward_masses(g.start, g.end[:1], SIGMA_T, edges)  # compile / load the cache
    rec: dict[str, list[float]] = {}
    t_nb, a = best_time(lambda: pushforward_masses(g.start, g.end, SIGMA_T, edges), repeats,
                        "numba", rec)  # fmt: skip
    t_np, b = best_time(
        lambda: pushforward_masses_reference(g.start, g.end, SIGMA_T, edges), 1, "numpy", rec
    )
    print(f"\n1. kernel: {n_models} models x {n_points} grid points -> {cfg.n_bins} bins")
    print("| case | numba s | numpy s | speed-up | max abs diff |")
    print("|---|---|---|---|---|")
    print(
        f"| bin masses | {t_nb:.4f} | {t_np:.3f} | {t_np / t_nb:.0f}x | {np.abs(a - b).max():.1e} |"
    )


def _floor(masses: np.ndarray, n_splits: int, seed) -> float:
    """compare_linear's half-vs-half floor on per-model interval masses (N, B + 1)."""
    rng = resampling_rng(seed)
    n = masses.shape[0]
    tv = []
    for _ in range(n_splits):
        perm = rng.permutation(n)
        a, b = perm[: n // 2], perm[n // 2 : 2 * (n // 2)]
        tv.append(float(total_variation(masses[a].mean(0), masses[b].mean(0))))
    return float(np.mean(tv))


def floor_table(
    name: str, spec: dict, n_models: int, n_samples: int, n_points: int, seed: int
) -> None:
    """Table 2 for one configuration ``spec`` (features, bins, eps, P values, seeds)."""
    eps = spec["eps"]
    edges = np.linspace(*spec["hist_range"], spec["n_bins"] + 1)
    width = float(edges[1] - edges[0])
    print(
        f"\n2. {name}: eps = {eps}, F = {spec['n_space']}x{spec['n_time']}, N = {n_models} models, "
        f"{spec['n_bins']} bins on {spec['hist_range']}; MC {n_samples} samples/model, transport "
        f"{n_points} grid points"
    )
    print(
        "| P | floor MC | floor transport | drop | TV(mean MC, mean tr.) | max tr. error | "
        "median TV(tr., MC) per model | expected from MC noise | gap MC | gap tr. | "
        "MC s | transport s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for j, P in enumerate(spec["P_values"]):
        train_seed, sample_seed = spec["seeds"](seed, j)
        ens = train_linear_ensemble(
            FIGURE2_DATA, _features(eps, 1, spec["n_space"], spec["n_time"]), n_models, P, eps,
            SCHED, ridge=0.1, seed=train_seed, keep_normal_equations=False,
        )  # fmt: skip
        t0 = time.perf_counter()
        xs = sample_linear_ensemble(ens, n_samples, seed=sample_seed)
        h_mc = per_model_histograms(xs, [edges])
        gap_mc = gap_mass(xs, FIGURE2_DATA, 0.25)
        t_mc = time.perf_counter() - t0
        del xs
        t0 = time.perf_counter()
        g = _transport(ens, n_points)
        h_tr = g.histograms(edges)
        gap_tr = g.gap_mass(FIGURE2_DATA, 0.25)
        t_tr = time.perf_counter() - t0
        err = g.error(edges)
        m_mc = interval_masses(h_mc, width, 1.0 - h_mc.sum(1) * width)
        m_tr = interval_masses(h_tr, width, 1.0 - h_tr.sum(1) * width)
        f_mc, f_tr = _floor(m_mc, 20, seed), _floor(m_tr, 20, seed)
        tv_means = float(total_variation(m_mc.mean(0), m_tr.mean(0)))
        per_model = np.median(total_variation(m_mc, m_tr))
        rng = stream_rng(seed, "subsample")
        p = np.clip(m_tr, 0, None)
        p /= p.sum(1, keepdims=True)
        noise = np.median(
            [total_variation(rng.multinomial(n_samples, q) / n_samples, q) for q in p]
        )
        print(
            f"| {P} | {f_mc:.4f} | {f_tr:.4f} | {f_mc / f_tr:.2f}x | {tv_means:.4f} | "
            f"{err.max():.1e} | {per_model:.4f} | {noise:.4f} | {gap_mc.mean():.4f} | "
            f"{gap_tr.mean():.4f} | {t_mc:.1f} | {t_tr:.1f} |"
        )


#: Figure 2's row eps = 0.01 (its panel seeds) and compare_linear's default configuration.
FIGURE2_SPEC = {
    "eps": 0.01, "n_space": 16, "n_time": 16, "hist_range": (-1.5, 1.5), "n_bins": 150,
    "P_values": (64, 256),
    "seeds": lambda seed, j: (panel_seed(seed, 2, (0, 2)[j]),) * 2,
}  # fmt: skip
COMPARE_SPEC = {
    "eps": 0.01, "n_space": 8, "n_time": 8, "hist_range": (-2.0, 2.0), "n_bins": 160,
    "P_values": (64, 256, 4000),
    "seeds": lambda seed, j: (seed, seed),
}  # fmt: skip


def qmc_table(n_models: int, n_points: int, seed: int) -> None:
    eps = 0.01
    data = np.array([[-1.0, -1.0], [1.0, -1.0], [0.0, 1.0]])
    feats = _features(eps, dim=2, n_space=8, n_time=8)
    ens = train_linear_ensemble(data, feats, n_models, 512, eps, SCHED, ridge=0.1, seed=seed)
    edges = [np.linspace(-1.5, 1.5, 31)] * 2
    ref = per_model_histograms(sample_linear_ensemble(ens, 16 * n_points, seed=seed), edges)
    width = (edges[0][1] - edges[0][0]) ** 2
    rows = {
        "random (MC)": sample_linear_ensemble(ens, n_points, seed=seed),
        "scrambled Sobol'": sample_linear_ensemble(
            ens, n_points, x_T=qmc_start_points(n_models, n_points, 2, SIGMA_T, seed)
        ),
    }
    print(
        f"\n3. 2-D: {n_models} linear models (F = 8x8 x 8, P = 512, eps = {eps}), 30 x 30 bins; "
        f"{n_points} start points per model vs {16 * n_points} Monte Carlo samples of the same "
        "model"
    )
    print("| start points | median TV to the large MC |")
    print("|---|---|")
    for name, xs in rows.items():
        h = per_model_histograms(xs, edges)
        tv = np.median(0.5 * np.abs(h - ref).reshape(n_models, -1).sum(1) * width)
        print(f"| {name} | {tv:.4f} |")


def accuracy_table(n_models: int, n_chunks: int, seed: int) -> None:
    """Table 4: transport against a large Monte Carlo (n_chunks x 10^5 samples per model)."""
    edges = np.linspace(-1.5, 1.5, 151)
    w = float(edges[1] - edges[0])
    n_mc = n_chunks * 100_000

    def masses(h):
        return interval_masses(h, w, 1.0 - h.sum(-1) * w)

    print(
        f"\n4. accuracy: {n_models} Figure-2 models (eps = 0.01) against {n_mc} Monte Carlo "
        "samples per model (150 bins + outside; TV)"
    )
    print(
        "| P | density | points/model (mean) | TV of the ensemble means | per-model TV median | "
        "per-model TV max | max error estimate | s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for P, j in ((64, 0), (256, 2)):
        ens = _ensemble(0.01, P, n_models, panel_seed(seed, 2, j))
        big = np.zeros((n_models, 150))
        for r in range(n_chunks):  # chunk r: its own part-of-run seed
            xs = sample_linear_ensemble(ens, 100_000, seed=panel_seed(seed, 100, r))
            big += per_model_histograms(xs, [edges]) / n_chunks
        m_big = masses(big)
        rng = stream_rng(seed, "subsample")
        p = np.clip(m_big, 0, None)
        p /= p.sum(1, keepdims=True)
        draws = np.array([rng.multinomial(n_mc, q) / n_mc for q in p])
        tv = total_variation(draws, p)
        print(
            f"| {P} | the reference's own noise (multinomial) | {n_mc} | "
            f"{total_variation(draws.mean(0), p.mean(0)):.5f} | {np.median(tv):.4f} | "
            f"{tv.max():.4f} | | |"
        )

        for n, res, cap in ((16384, None, None), (65536, None, None), DEFAULT_REFINED):
            t0 = time.perf_counter()
            g = _transport(ens, n, res, cap)
            m = masses(g.histograms(edges))
            dt = time.perf_counter() - t0
            tv = total_variation(m, m_big)
            label = f"transport, {n} points" + (
                "" if res is None else f" refined (bin {res}, <= {cap}; Figure 2's default)"
            )
            print(
                f"| {P} | {label} | {g.size.mean():.0f} | "
                f"{total_variation(m.mean(0), m_big.mean(0)):.5f} | {np.median(tv):.4f} | "
                f"{tv.max():.4f} | {g.error(edges).max():.1e} | {dt:.1f} |"
            )


def convergence_table(n_models: int, reference_points: int, seed: int, quick: bool) -> None:
    """Table 5: the plain grid at M points against a grid of ``reference_points`` (same models),
    every Figure-2 eps at the panels P = 64 and 1024 -- the measurement behind the default
    ``n_points`` of Figure 2 -- next to the multinomial noise of 10^5 Monte Carlo samples."""
    edges = np.linspace(-1.5, 1.5, 151)
    sizes = (1024, 2048) if quick else (4096, 8192, 16384)
    refined = (256, 0.02, 2048) if quick else DEFAULT_REFINED
    print(
        f"\n5. grid convergence: {n_models} Figure-2 models per panel, the plain grid against "
        f"{reference_points} grid points (150 bins + outside; TV)"
    )
    print(
        "| eps | P | points | per-model TV median | per-model TV max | max error estimate | "
        "TV of the ensemble means | 10^5 MC noise, per-model median |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for i, eps in enumerate((1e-4, 1e-3, 1e-2)):
        for j, P in ((0, 64), (4, 1024)):
            ens = _ensemble(eps, P, n_models, panel_seed(seed, i, j))
            ref = _transport(ens, reference_points).bin_masses(edges)
            ref_out = np.append(ref, 1.0 - ref.sum(1, keepdims=True), axis=1)
            rng = stream_rng(seed, "subsample", i, j)
            p = np.clip(ref_out, 0, None)
            p /= p.sum(1, keepdims=True)
            noise = total_variation(np.array([rng.multinomial(100_000, q) / 1e5 for q in p]), p)
            for n in (*sizes, refined):
                g = _transport(ens, *n) if isinstance(n, tuple) else _transport(ens, n)
                m = g.bin_masses(edges)
                m_out = np.append(m, 1.0 - m.sum(1, keepdims=True), axis=1)
                tv = total_variation(m_out, ref_out)
                label = (
                    f"{n[0]} refined (mean {g.size.mean():.0f}, max {g.size.max()})"
                    if (isinstance(n, tuple))
                    else str(n)
                )
                print(
                    f"| {eps:g} | {P} | {label} | {np.median(tv):.5f} | {tv.max():.4f} | "
                    f"{g.error(edges, m).max():.4f} | "
                    f"{total_variation(m_out.mean(0), ref_out.mean(0)):.5f} | "
                    f"{np.median(noise):.4f} |"
                )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke run)")
    parser.add_argument("--kernel-only", action="store_true", help="only the kernel table")
    parser.add_argument(
        "--convergence",
        action="store_true",
        help="with --kernel-only: also table 5 (grid convergence at every Figure-2 eps)",
    )
    parser.add_argument("--n-models", type=int, default=100)
    parser.add_argument("--n-samples", type=int, default=100_000, help="MC samples per model")
    parser.add_argument("--n-points", type=int, default=2**14, help="transport grid points")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.quick:
        args.n_models, args.n_samples, args.n_points = 6, 2000, 1024
    print_machine()
    print(f"load average: {load_average()}")
    kernel_table(min(args.n_models, 20), args.n_points, 1 if args.quick else 5)
    if not args.kernel_only:
        if args.quick:
            figure2 = dict(FIGURE2_SPEC, P_values=(64,))
            compare = dict(COMPARE_SPEC, P_values=(4000,))
        else:
            figure2, compare = FIGURE2_SPEC, COMPARE_SPEC
        floor_table("Figure 2 panels", figure2, args.n_models, args.n_samples, args.n_points,
                    args.seed)  # fmt: skip
        floor_table("compare_linear's configuration", compare, 2 * args.n_models,
                    args.n_samples // 5, args.n_points, args.seed)  # fmt: skip
        qmc_table(min(args.n_models, 20), 1024 if args.quick else 2**12, args.seed)
        accuracy_table(min(args.n_models, 20), 1 if args.quick else 10, args.seed)
    if args.convergence or not args.kernel_only:
        convergence_table(min(args.n_models, 20), 2**13 if args.quick else 2**19, args.seed,
                          args.quick)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
