"""Where the semiclassical formula holds: TV to the Fokker-Planck density of the naive estimator.

Data {-1, 0, 1}, ``vp-linear``, eps in {1e-2, 1e-3}, kappa from 1e-4 to 1e-1. For each kappa the
semiclassical density (:func:`gtv.numerics.naive.semiclassical_density`, with the full prefactor,
without the determinant, and without any factor: the noise-free push-forward) and the
Fokker-Planck density (:func:`gtv.numerics.naive.naive_density`) are computed on one grid and
their total-variation distance is printed, with the mass of the middle point's cell
``|x| < 0.5``. At eps = 1e-3 the Fokker-Planck time grid is refined near eps (``save_times``).

Run: ``python benchmarks/bench_semiclassical.py`` (about 10 minutes on 2 cores).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from gtv.numerics.naive import classical_paths, naive_density

KAPPAS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
SETTINGS = {1e-2: {"n_cells": 2400, "n_steps": 800}, 1e-3: {"n_cells": 4800, "n_steps": 800}}
BOUNDS = (-6.0, 6.0)


def tv(p: np.ndarray, q: np.ndarray, h: float) -> float:
    return 0.5 * float(np.sum(np.abs(p - q)) * h)


def main(eps_values: tuple[float, ...] = (1e-2, 1e-3)) -> None:
    data = np.array([[-1.0], [0.0], [1.0]])
    print("| eps | kappa | TV formula | TV no det | TV no factor | mid FP | mid formula |")
    print("|---|---|---|---|---|---|---|")
    for eps in eps_values:
        opts = SETTINGS[eps]
        paths = classical_paths(data, eps, bounds=BOUNDS, n_cells=opts["n_cells"], n_steps=2000)
        h = float(paths.grid.widths[0][0])
        mid = np.abs(paths.grid.centres[0]) < 0.5
        save = np.geomspace(1.02 * eps, 0.05, 400)
        for kappa in KAPPAS:
            t0 = time.time()
            fp = naive_density(
                data, eps, kappa, bounds=BOUNDS, n_cells=opts["n_cells"],
                n_steps=opts["n_steps"], save_times=save,
            )  # fmt: skip
            d = {p: paths.density(kappa, prefactor=p).density for p in ("full", "no-det", "none")}
            print(
                f"| {eps:g} | {kappa:g} | {tv(d['full'], fp.density, h):.4f} "
                f"| {tv(d['no-det'], fp.density, h):.4f} | {tv(d['none'], fp.density, h):.4f} "
                f"| {fp.density[mid].sum() * h:.4f} | {d['full'][mid].sum() * h:.4f} |",
                flush=True,
            )
            print(f"  ({time.time() - t0:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
