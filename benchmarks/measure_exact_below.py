"""How the consistent field's prediction moves as more early triples are kept exact (no trained
model).

A measurement, not a timing benchmark (docs/math/finite_fp.md, *[q] with the early triples exact*).
Configuration: data {-1, 0, 1}, ``vp-linear``, ridge 0.1, the twelve cells of the [q] target: F/P
in {1/4, 1, 4}, F = 8 x 8 and 16 x 16, eps in {1e-2, 1e-3}. For each ``t_c`` of a ladder the
consistent field with every triple below ``t_c`` exact (``CavityLinear(theory, moments,
"consistent", exact_below=t_c)``, 2000 members, seed 0) is sampled (5000 PF-ODE samples per member
at 8 x 8, 2000 at 16 x 16) and scored on its own: gap mass, core mass (within 0.05 of a training
point), the last sampler step's basin length (:func:`gtv.validation.linear.last_step_basins`), each
with its member-level standard error, and the mean share of a member's triples that are exact (100
members). ``t_c`` above ``T`` keeps every triple exact: each member is then the ridge regression on
its own triples, so the last row is a trained ensemble drawn from the field's streams -- the limit
the ladder converges to. Last, per cell, where the plateau starts: the smallest ``t_c`` whose gap
and core mass stay within one of their standard errors of every larger rung's (a choice of ``t_c``
that uses no trained model).

Run: ``python benchmarks/measure_exact_below.py`` (about ten minutes on 2 cores; ``--quick``: a
smoke run).
"""

from __future__ import annotations

import argparse

import numpy as np
from _machine import print_machine

from gtv.numerics.features import ProductFeatures
from gtv.numerics.linear import CavityLinear, cavity_moments, linear_model_theory, population_nodes
from gtv.numerics.linear.occupancy import member_heavy_sets, occupancy_split
from gtv.numerics.schedules import get_schedule
from gtv.numerics.streams import model_rngs
from gtv.validation.ensembles import sampled_densities
from gtv.validation.exact_below import LADDER, plateau_start
from gtv.validation.linear import last_step_basins
from gtv.validation.shells import shell_masses
from gtv.validation.stats import standard_error

DATA = np.array([[-1.0], [0.0], [1.0]])
RIDGE = 0.1


def exact_share(theory, moments, nodes, t_c: float, n_members: int) -> float:
    """Mean share of a member's P triples kept exact (heavy) at ``t_c`` (the members' own
    streams, :func:`gtv.numerics.linear.occupancy.member_heavy_sets`)."""
    split = occupancy_split(theory, moments, nodes=nodes, consistent=True, exact_below=t_c)
    heavy = member_heavy_sets(theory, moments, split, model_rngs(0, "field", n_members))
    return float(heavy.mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    args = ap.parse_args()
    print_machine()
    sched = get_schedule("vp-linear")
    edges = np.linspace(-2.0, 2.0, 161)
    n_members = 40 if args.quick else 2000
    cells = (
        [(4, 1e-2, 0.25)]
        if args.quick
        else [(n, eps, fp) for fp in (0.25, 1.0, 4.0) for n in (8, 16) for eps in (1e-2, 1e-3)]
    )
    ladder = (0.0, 0.2, 2.0) if args.quick else (*LADDER, 2.0)  # 2.0: above T, all exact
    for n, eps, fp in cells:
        P = int(round(n * n / fp))
        n_samples = 200 if args.quick else (5000 if n == 8 else 2000)
        feats = ProductFeatures.uniform("gaussian", 1, n, n, (eps, sched.T), (-1.5, 1.5))
        theory = linear_model_theory(DATA, feats, eps, sched, ridge=RIDGE)
        nodes = population_nodes(theory)
        moments = cavity_moments(theory, P, nodes=nodes)
        print(
            f"\nF = {n} x {n}, eps = {eps:g}, F/P = {fp:g}, P = {P}, {n_members} members, "
            f"{n_samples} samples"
        )
        print("| t_c | exact share | gap | core | basin |\n|---|---|---|---|---|")
        rows = []
        for t_c in ladder:
            field = CavityLinear(theory, moments, "consistent", nodes, exact_below=t_c)
            members = field.gaussian_field(n_members, seed=0)
            d = sampled_densities(members.sample(n_samples, seed=0), DATA, edges, 0.25)
            core = shell_masses(d.histograms, d.outside, edges, DATA[:, 0])[:, 0]
            basin = last_step_basins(members).sum(axis=1)
            share = exact_share(theory, moments, nodes, t_c, min(n_members, 100))
            cells = [f"{v.mean():.4f} +- {standard_error(v):.4f}" for v in (d.gap, core, basin)]
            print(f"| {t_c:g} | {share:.0%} | " + " | ".join(cells) + " |")
            rows.append((d.gap.mean(), standard_error(d.gap), core.mean(), standard_error(core)))
        print(f"plateau starts at t_c = {plateau_start(ladder, *zip(*rows, strict=True)):g}")


if __name__ == "__main__":
    main()
