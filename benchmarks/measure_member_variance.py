"""What makes one model's gap mass differ from another's -- and can a cheap statistic predict it?

A measurement, not a timing benchmark (docs/math/finite_fp.md, *Fewer samples per member*).
The [q] prediction of a member field is a Monte Carlo mean over members, so its precision is paid
per member. A control variate or a stratification of the members would cut that price if some
statistic of a member's draw, cheap and with a known law, predicted its gap mass. This script
asks that of N trained models (the law the field's members approach; at ``t_c`` above ``T`` the
members *are* trained models): data {-1, 0, 1}, ``vp-linear``, F = 8 x 8 Gaussian features,
ridge 0.1, eps = 1e-2, F/P = 1/4, 1, 4; per model the gap mass of its transported density
(:func:`gtv.validation.linear.densities.linear_ensemble_densities`, the comparison's default
grid) and, from its own triples (stream ``"training"``, seed 0):

* the counts of its triples per data point, and per data point below t = 0.05, 0.1, 0.2, 0.4
  (multinomial, known law);
* its number of population-heavy triples (leverage ``w phi^T M^-1 phi / P`` above the split's
  ``q_star``, cavity ``M``; binomial, known law) and its three largest leverages;
* its weights ``W`` (F numbers; their mean is what the moment theories predict).

Printed: the across-model standard deviation of the gap mass against the sampling error of one
model's 5000 PF-ODE samples, the share of the variance carried by the top 1 % of models, and
for each statistic the out-of-sample R^2 of a linear fit (fitted on the first half of the
models, scored on the second): the variance a control variate on it could remove.

Run: ``python benchmarks/measure_member_variance.py`` (about half a minute on 2 cores;
``--models N``; ``--quick``: a smoke run).
"""

from __future__ import annotations

import argparse

import numpy as np
from _machine import print_machine

from gtv.numerics.dsm import draw_dsm_triples, dsm_weights
from gtv.numerics.features import ProductFeatures
from gtv.numerics.linear import (
    cavity_moments,
    linear_model_theory,
    occupancy_split,
    population_nodes,
    train_linear_ensemble,
)
from gtv.numerics.schedules import get_schedule
from gtv.numerics.streams import model_rngs
from gtv.validation.linear import LinearCompareConfig
from gtv.validation.linear.densities import linear_ensemble_densities

DATA = np.array([[-1.0], [0.0], [1.0]])
EPS = 1e-2
RIDGE = 0.1
TIMES = (0.05, 0.1, 0.2, 0.4)


def out_of_sample_r2(columns: list[np.ndarray], y: np.ndarray) -> float:
    """R^2 on the second half of a least-squares fit (with intercept) on the first half."""
    n = y.size
    h = n // 2
    Z = np.column_stack([np.ones(n), *columns])
    b, *_ = np.linalg.lstsq(Z[:h], y[:h], rcond=None)
    res = y[h:] - Z[h:] @ b
    return float(1.0 - res.var() / y[h:].var())


def measure(n_side: int, fp: float, n_models: int) -> list[tuple[str, str]]:
    """The rows of one configuration: (statistic, value)."""
    sched = get_schedule("vp-linear")
    feats = ProductFeatures.uniform("gaussian", 1, n_side, n_side, (EPS, sched.T), (-1.5, 1.5))
    P = int(round(feats.n_features / fp))
    ens = train_linear_ensemble(
        DATA, feats, n_models, P, EPS, sched, ridge=RIDGE, seed=0, keep_normal_equations=False
    )
    cfg = LinearCompareConfig()
    edges = np.linspace(cfg.hist_range[0], cfg.hist_range[1], cfg.n_bins + 1)
    gap = linear_ensemble_densities(
        ens, edges, cfg.gap_distance, density="transport", transport=cfg.density_settings()
    ).gap
    # each model's triples, from its own training stream (train_linear_ensemble's draw order)
    t, x0, x = (np.empty((n_models, P)) for _ in range(3))
    for n, rng in enumerate(model_rngs(0, "training", n_models)):
        tn, x0n, xn = draw_dsm_triples(rng, DATA, P, EPS, sched)
        t[n], x0[n], x[n] = tn, x0n[:, 0], xn[:, 0]
    theory = linear_model_theory(DATA, feats, EPS, sched, ridge=RIDGE)
    nodes = population_nodes(theory)
    moments = cavity_moments(theory, P, nodes=nodes)
    q_star = occupancy_split(theory, moments, nodes=nodes).q_star
    w = dsm_weights(sched, t)
    phi = feats.evaluate(x.reshape(-1, 1), t.reshape(-1)).reshape(n_models, P, -1)
    # the triples are the models' own: model 0 refitted from them is the trained model 0
    gram = RIDGE * np.eye(feats.n_features) + (w[0, :, None] * phi[0]).T @ phi[0] / P
    refit = np.linalg.solve(gram, (w[0] * x0[0]) @ phi[0] / P)
    assert np.allclose(refit, ens.W[0, 0], rtol=1e-8, atol=1e-10), "triples do not match"
    lev = w * np.einsum("npf,fg,npg->np", phi, moments.M_inv, phi, optimize=True) / P
    top = np.sort(lev, axis=1)[:, ::-1][:, :3]

    labels = [(x0 == d).sum(1).astype(float) for d in DATA[:, 0]]
    by_time = [((x0 == d) & (t < s)).sum(1).astype(float) for d in DATA[:, 0] for s in TIMES]
    heavy = (lev > q_star).sum(1).astype(float)
    dev2 = (gap - gap.mean()) ** 2
    top1 = np.sort(dev2)[::-1][: max(1, n_models // 100)].sum() / dev2.sum()
    g = gap.mean()
    return [
        ("gap mass: mean, across-model sd", f"{g:.4f}, {gap.std(ddof=1):.4f}"),
        ("sd of one model's gap from 5000 PF-ODE samples", f"{np.sqrt(g * (1 - g) / 5000):.4f}"),
        ("variance share of the top 1 % of models", f"{top1:.2f}"),
        ("R^2: counts per data point", f"{out_of_sample_r2(labels, gap):.3f}"),
        (
            "R^2: counts per data point and time (t < 0.05 ... 0.4)",
            f"{out_of_sample_r2(by_time, gap):.3f}",
        ),
        (
            f"R^2: heavy triples (q > {q_star:g}; mean {heavy.mean():.1f}) and top-3 leverages",
            f"{out_of_sample_r2([heavy, *top.T], gap):.3f}",
        ),
        ("R^2: the weights W (linear)", f"{out_of_sample_r2(list(ens.W[:, 0].T), gap):.3f}"),
    ]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=4000, help="trained models (default 4000)")
    ap.add_argument("--quick", action="store_true", help="a smoke run (4 x 4 features)")
    args = ap.parse_args()
    n_side, n_models, fps = (4, 80, (1.0,)) if args.quick else (8, args.models, (0.25, 1.0, 4.0))
    print_machine()
    print(f"F = {n_side}x{n_side}, eps = {EPS:g}, {n_models} trained models, seed 0")
    print("| F/P | statistic | value |")
    print("|---|---|---|")
    for fp in fps:
        for name, value in measure(n_side, fp, n_models):
            print(f"| {fp:g} | {name} | {value} |")


if __name__ == "__main__":
    main()
