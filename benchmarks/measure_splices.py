"""Which sampler times carry the consistent field's peak-core deficit at F/P = 1/4?

A measurement, not a timing benchmark (docs/math/finite_fp.md, *Where the density errors sit*).
Configuration: data {-1, 0, 1}, ``vp-linear``, ridge 0.1, F = 8 x 8 (P = 256) and 16 x 16
(P = 1024), eps in {1e-2, 1e-3}: the four F/P = 1/4 cells of the [q] table. Per cell, N trained
models (seed 0, as ``gtv validate linear``) and N members of the consistent field
(``CavityLinear(theory, cavity_moments(theory, P), "consistent").gaussian_field(N, 0)``), then
:func:`gtv.validation.linear.splice_rows` at ``t_switch`` 0.05, 0.1 and 0.2: the field, the two
splices of field and trained members, and each ensemble with its members shuffled across
``t_switch``. Printed: gap mass and per distance shell the mass minus the trained one (z).
Then the same for the means exchanged: the field's members moved to the trained members' mean
W, and the trained members moved to the field's (every member shifted by the difference of the
two ensembles' mean W) -- is the deficit the field's mean or its fluctuations? Last, for the
Gaussian field with the cavity moments and the consistent and stratified fields: the core shell's
difference and the members' mean basin length of the sampler's last step
(:func:`gtv.validation.linear.last_step_basins`, summed over the three points; SE over members).
The 30 Euler steps of the sampler evaluate the denoiser at t = T - k (T - eps) / 30; the last
three evaluations are at about 0.04, 0.08 and 0.11.

Run: ``python benchmarks/measure_splices.py`` (about two minutes on 2 cores; ``--quick``: a
smoke run).
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
from _machine import print_machine

from gtv.numerics.features import ProductFeatures
from gtv.numerics.linear import (
    CavityLinear,
    cavity_moments,
    linear_model_theory,
    sample_linear_ensemble,
    train_linear_ensemble,
)
from gtv.numerics.schedules import get_schedule
from gtv.numerics.streams import stream_rng
from gtv.validation.ensembles import sampled_densities
from gtv.validation.linear import format_splices, last_step_basins, splice_rows
from gtv.validation.shells import shell_masses, shell_rows
from gtv.validation.stats import standard_error

DATA = np.array([[-1.0], [0.0], [1.0]])
RIDGE = 0.1
T_SWITCH = (0.05, 0.1, 0.2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    args = ap.parse_args()
    print_machine()
    sched = get_schedule("vp-linear")
    n_models = 50 if args.quick else 2000
    cells = [(8, 1e-2)] if args.quick else [(8, 1e-2), (8, 1e-3), (16, 1e-2), (16, 1e-3)]
    edges = np.linspace(-2.0, 2.0, 161)
    for n, eps in cells:
        P = n * n * 4
        n_samples = 200 if args.quick else (5000 if n == 8 else 2000)
        feats = ProductFeatures.uniform("gaussian", 1, n, n, (eps, sched.T), (-1.5, 1.5))
        theory = linear_model_theory(DATA, feats, eps, sched, ridge=RIDGE)
        moments = cavity_moments(theory, P)  # one cavity solve for the three fields
        field = CavityLinear(theory, moments, "consistent").gaussian_field(n_models, 0)
        trained = train_linear_ensemble(
            DATA, feats, n_models, P, eps, sched, ridge=RIDGE, seed=0, keep_normal_equations=False
        )
        rows = splice_rows(trained, field, T_SWITCH, edges, n_samples=n_samples, seed=0)
        print(
            f"\nF = {n} x {n}, eps = {eps:g}, P = {P}, {n_models} models, {n_samples} samples each"
        )
        print(format_splices(rows))
        shift = trained.W.mean(axis=0) - field.W.mean(axis=0)
        moved = {
            "field on the trained mean": dataclasses.replace(field.ensemble, W=field.W + shift),
            "trained on the field mean": dataclasses.replace(trained, W=trained.W - shift),
        }
        ref = sampled_densities(
            sample_linear_ensemble(trained, n_samples, seed=0), DATA, edges, 0.25
        )
        print("means exchanged: shell mass minus trained (z)")
        for name, ens in moved.items():
            d = sampled_densities(sample_linear_ensemble(ens, n_samples, seed=0), DATA, edges, 0.25)
            sh = shell_rows(
                (ref.histograms, ref.outside), (d.histograms, d.outside), edges, DATA[:, 0], 1000,
                stream_rng(0, "bootstrap", 4),
            )  # fmt: skip
            cells = " | ".join(
                f"{s['diff']:+.4f} ({'-' if s['z'] is None else format(s['z'], '+.1f')})"
                for s in sh
            )
            print(f"{name:>26} | gap {d.gap.mean():.4f} | {cells}")
        basin_t = last_step_basins(trained).sum(axis=1)
        print(
            f"last-step basins: trained {basin_t.mean():.4f} +- {standard_error(basin_t):.4f}\n"
            "| field | core shell minus trained (z) | basin | basin / trained - 1 | "
            "core / trained - 1 |"
        )
        core_t = float(shell_masses(ref.histograms, ref.outside, edges, DATA[:, 0]).mean(0)[0])
        for kind in ("gaussian", "consistent", "stratified"):
            members = (
                field
                if kind == "consistent"
                else CavityLinear(theory, moments, kind).gaussian_field(n_models, 0)
            )
            d = sampled_densities(
                sample_linear_ensemble(members.ensemble, n_samples, seed=0), DATA, edges, 0.25
            )
            c0 = shell_rows(
                (ref.histograms, ref.outside), (d.histograms, d.outside), edges, DATA[:, 0], 1000,
                stream_rng(0, "bootstrap", 4),
            )[0]  # fmt: skip
            basin = last_step_basins(members).sum(axis=1)
            print(
                f"| {kind} | {c0['diff']:+.4f} ({c0['z']:+.1f}) | {basin.mean():.4f} +- "
                f"{standard_error(basin):.4f} | {basin.mean() / basin_t.mean() - 1:+.3f} | "
                f"{c0['diff'] / core_t:+.3f} |"
            )


if __name__ == "__main__":
    main()
