"""How many transport points do the NTK comparison's densities need?

A measurement, not a timing benchmark (docs/math/kernel.md, "Learned densities"). One small
configuration of ``gtv validate ntk`` (erf, eps = 0.01, P = 256, width 256, 8 models,
tau in {3, 30, 300}, 80 bins on [-2, 2], 30 Euler steps) is run with ``density="transport"`` at
several start grids, and every per-model density -- the trained networks, the infinite-width
networks, the Gaussian-field members and the exact-Bayes PF-ODE -- is compared with the same
model's density from a plain grid of ``--reference`` points (no refinement: ``max_points`` equal
to it). The models are the same in every run (same seed and streams), so the differences are grid
errors alone. Reported per grid: the per-model total variation (the mass outside [-2, 2] as one
more bin) to the reference, median and max over all models and taus of each ensemble; the largest
error estimate the run itself reports (``meta["transport_error_tv"]``); the mean number of points
per model; and, for scale, the median per-model TV of ``--samples`` multinomial draws from the
reference masses (what ``--density mc --samples S`` adds as noise), and a Monte Carlo run of the
same models with ``--samples`` per model, whose TV to the reference is that noise realized.

Run: ``python benchmarks/measure_ntk_transport.py`` (a few minutes on 2 cores; ``--quick``: a
smoke run).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _machine import print_machine

from gtv.validation.ntk.compare import NTKCompareConfig, compare_ntk

CONFIG = dict(
    eps=1e-2, P=256, widths=(256,), n_models=8, taus=(3.0, 30.0, 300.0), n_boot=50,
    fp_steps=100, seed=0,
)  # fmt: skip
GRIDS = [(128, 1024), (256, 2048), (512, 4096), (1024, 8192), (512, 512), (2048, 2048)]


def _masses(r) -> dict[str, np.ndarray]:
    """Per-model bin masses, outside as one more bin: (models, B + 1) per ensemble."""
    w = float(np.diff(r.edges)[0])

    def m(h, o):
        return np.concatenate([h.reshape(-1, h.shape[-1]) * w, o.reshape(-1, 1)], axis=1)

    return {
        "trained": m(r.histograms, r.outside),
        "infinite width": m(r.kernel_histograms, r.kernel_outside),
        "Gaussian field": m(r.gf_histograms, r.gf_outside),
        "bayes": m(r.bayes_density[None], np.array([1.0 - r.bayes_density.sum() * w])),
    }


def _tv_cells(p: dict, pref: dict) -> list[str]:
    """Per ensemble, the median and largest per-model TV to the reference masses."""
    cells = []
    for k in pref:
        tv = 0.5 * np.abs(p[k] - pref[k]).sum(axis=1)
        cells.append(f"{k} {np.median(tv):.1e}/{tv.max():.1e}")
    return cells


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", type=int, default=32768, help="points of the plain reference")
    ap.add_argument("--samples", type=int, default=1000, help="Monte Carlo scale (per model)")
    ap.add_argument("--quick", action="store_true", help="smoke run (tiny reference)")
    a = ap.parse_args()
    print_machine()
    cfg, grids, ref_n = dict(CONFIG), GRIDS, a.reference
    if a.quick:
        cfg.update(n_models=4, taus=(3.0,), P=64)
        grids, ref_n = [(128, 1024)], 2048
    t = time.perf_counter()
    ref = compare_ntk(NTKCompareConfig(**cfg, n_points=ref_n, max_points=ref_n))
    print(f"reference: plain grid of {ref_n} points ({time.perf_counter() - t:.0f} s)")
    pref = _masses(ref)
    rng = np.random.default_rng(0)
    noise = {
        k: np.median([0.5 * np.abs(rng.multinomial(a.samples, p / p.sum()) / a.samples - p).sum()
                      for p in np.clip(v, 0, None)])
        for k, v in pref.items()
    }  # fmt: skip
    print("MC noise, per-model TV median with --samples", a.samples, ":",
          ", ".join(f"{k} {v:.4f}" for k, v in noise.items()))  # fmt: skip
    for n, mx in grids:
        t = time.perf_counter()
        r = compare_ntk(NTKCompareConfig(**cfg, n_points=n, max_points=mx))
        secs = time.perf_counter() - t
        cells = _tv_cells(_masses(r), pref)
        est = max(r.meta["transport_error_tv"].values())
        pts = r.meta["transport_points"]
        print(
            f"{n:>5} (<= {mx:>5}): TV median/max: " + ", ".join(cells)
            + f"; max estimate {est:.1e}; points/model "
            + ", ".join(f"{k} {v:.0f}" for k, v in pts.items())
            + f"; sampling {sum(v for k, v in r.meta['timings'].items() if 'sample' in k):.1f} s"
            + f" (run {secs:.0f} s)"
        )  # fmt: skip
    # Monte Carlo of the same models, for scale: its per-model TV to the reference is its noise
    t = time.perf_counter()
    r = compare_ntk(NTKCompareConfig(**cfg, density="mc", n_samples=a.samples))
    secs = time.perf_counter() - t
    cells = _tv_cells(_masses(r), pref)
    print(
        f"mc, {a.samples} samples (exact Bayes {r.meta['n_bayes_samples']}): TV median/max: "
        + ", ".join(cells)
        + f"; sampling {sum(v for k, v in r.meta['timings'].items() if 'sample' in k):.1f} s"
        + f" (run {secs:.0f} s)"
    )  # fmt: skip


if __name__ == "__main__":
    main()
