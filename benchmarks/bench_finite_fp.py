"""Benchmark: the finite-P cavity theory of one configuration against the ensemble it predicts.

Configuration: data {-1, 0, 1}, ``vp-linear``, eps = 1e-2, F = 8 x 8 (and 16 x 16) Gaussian
features, ridge 0.1, F/P = 1.

* **solver**: :func:`gtv.numerics.linear.cavity.cavity_moments` (product structure) against the
  straightforward version with full feature vectors at every node
  (:func:`~gtv.numerics.linear.cavity.cavity_moments_reference`), same nodes, same iterations;
* **[q] prediction vs the ensemble**: the cavity solve plus a fixed number of small-occupancy
  members (K = 256) sampled by the PF-ODE, against training N = 2000 models and sampling them the
  same way (5000 samples per member, 30 Euler steps). The prediction's cost does not grow with N.
  Two prediction rows: the default cavity solve (the theory's quadrature, tol 1e-10) and the fast
  path :func:`~gtv.numerics.linear.cavity.prediction_moments` (coarser rule, stated deviation
  printed), the fast path with the stratified field (``field="stratified"``) and with the
  consistent field (``field="consistent"``), then the fast path
  by part. Best of 3, the runs interleaved; the fast path and the ensemble also in CPU seconds
  (on a shared machine wall times depend on the other processes' load, printed at start and
  end). These rows take the theory (:func:`~gtv.numerics.linear.linear_model_theory`) and its
  node set as given;
* **[q] from scratch** (second table): the consistent field's whole prediction of one
  configuration -- the theory, its node set with the node kernels' layout, the fast-path moments,
  256 members and their PF-ODE samples -- against the 2000-model ensemble, at F/P = 1/4, 1, 4,
  with the part that a sweep over P at one (F, eps) shares (theory and nodes) and the rest
  (per added P) apart, in wall and CPU seconds; each configuration four times: as is, with
  every triple below ``EXACT_BELOW`` kept exact in each member, and with ``exact_below`` chosen
  by :func:`gtv.validation.exact_below.choose_exact_below` (its ladder of field
  evaluations, 256 members each, counted in), the ladder's rungs with the prediction's samples
  and with a tenth of them (``--ladder-samples``); and with ``t_c = EXACT_BELOW`` and
  ``PRECISE`` members per trained model (the field at the precision of the target runs), with
  the prediction's samples per member and with ``1 / FEWER`` of them (``--theory-samples``).

Usage::

    python benchmarks/bench_finite_fp.py          # the full sizes
    python benchmarks/bench_finite_fp.py --quick  # a smoke run
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _machine import load_average, print_machine

from gtv.numerics.features import ProductFeatures
from gtv.numerics.linear import (
    CavityLinear,
    cavity_moments,
    cavity_moments_reference,
    linear_model_theory,
    population_nodes,
    sample_linear_ensemble,
    train_linear_ensemble,
)
from gtv.numerics.linear.cavity import prediction_moments
from gtv.numerics.linear.occupancy import occupancy_split, sample_occupancy_weights
from gtv.numerics.linear.strata import STRATA
from gtv.numerics.schedules import get_schedule
from gtv.validation.exact_below import LADDER, choose_exact_below
from gtv.validation.figures.figure2 import FIGURE2_DATA

#: The consistent field's ``exact_below`` in the second variant of the from-scratch table
#: (docs/math/finite_fp.md, "[q] with the early triples exact").
EXACT_BELOW = 0.2
#: Field members per trained model in the last variant: the precision of the target runs
#: (``--theory-members 8000`` against 2000 models; docs/math/finite_fp.md, "The prediction at the
#: precision the target assumes").
PRECISE = 4
#: ... and with a tenth of the samples per member (``--theory-samples``): the precision is set by
#: the members (docs/math/finite_fp.md, "Fewer samples per member").
FEWER = 10


def _best(fn, repeats: int) -> tuple[float, object]:
    best, out = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    args = ap.parse_args()
    sched = get_schedule("vp-linear")
    eps = 1e-2
    sizes = [(4, 4)] if args.quick else [(8, 8), (16, 16)]
    n_models, n_members, n_samples = (40, 16, 200) if args.quick else (2000, 256, 5000)
    print_machine()
    print(f"load average (1/5/15 min) at start: {load_average()}")
    print("| case | gtv s | reference s | ratio | max rel diff | notes |")
    print("|---|---:|---:|---:|---:|---|")
    for ns, nt in sizes:
        run_size(ns, nt, eps, sched, n_models, n_members, n_samples, quick=args.quick)
    print()
    print(
        "| [q] from scratch, consistent field | F/P | theory + nodes s | per P s | from scratch s "
        "| ensemble s | ratio from scratch | ratio per P |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for ns, nt in sizes:
        for fp in (1,) if args.quick else (0.25, 1, 4):
            from_scratch(ns, nt, fp, eps, sched, n_models, n_members, n_samples, args.quick)
    print(f"load average (1/5/15 min) at end: {load_average()}")


def _fast_prediction(theory, P, nodes, field, n_members, n_samples, exact_below=0.0):
    """The fast path's [q] prediction with ``field``: moments and PF-ODE samples of the members
    (``exact_below``: every triple below that time exact in each member)."""
    m, split_nodes = prediction_moments(theory, P, nodes=nodes)
    members = CavityLinear(theory, m, field, split_nodes, exact_below=exact_below).gaussian_field(
        n_members, seed=0
    )
    return m, members.sample(n_samples, seed=0)


def _ensemble(feats, n_models, P, eps, sched, n_samples):
    """Train ``n_models`` models on ``P`` triples each and sample them (the compared side)."""
    ens = train_linear_ensemble(
        FIGURE2_DATA, feats, n_models, P, eps, sched, seed=0, keep_normal_equations=False
    )
    return sample_linear_ensemble(ens, n_samples, seed=0)


def _timed(fn, *args) -> tuple[float, float, object]:
    """Wall and CPU seconds (all threads of the process) of ``fn(*args)``, and its result."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args)
    return time.perf_counter() - t0, time.process_time() - c0, out


def from_scratch(ns, nt, fp, eps, sched, n_models, n_members, n_samples, quick) -> None:
    """One row of the from-scratch table: best of 3 (1 when ``quick``), runs interleaved."""
    feats = ProductFeatures.uniform("gaussian", 1, ns, nt, (eps, sched.T), (-1.5, 1.5))
    P = int(round(feats.n_features / fp))
    coarse = {"n_t": 4, "n_hermite": 30} if quick else {}

    def setup():  # shared by every P at one (F, eps)
        theory = linear_model_theory(FIGURE2_DATA, feats, eps, sched, ridge=0.1, **coarse)
        nodes = population_nodes(theory)
        _ = nodes.active_layout  # the node kernels' layout, made on first use
        return theory, nodes

    def per_p(theory, nodes, exact_below=0.0, members=n_members, samples=n_samples):
        return _fast_prediction(theory, P, nodes, "consistent", members, samples, exact_below)

    def per_p_auto(theory, nodes, ladder_samples=n_samples):
        """The ladder of exact_below="auto" (``ladder_samples`` per member), then the
        prediction."""
        m, split_nodes = prediction_moments(theory, P, nodes=nodes)
        choice = choose_exact_below(
            theory, m, "consistent", n_members=n_members, edges=np.linspace(-2, 2, 161),
            n_samples=ladder_samples, nodes=split_nodes, ladder=(0.0, 0.2) if quick else LADDER,
        )  # fmt: skip
        field = CavityLinear(theory, m, "consistent", split_nodes, exact_below=choice.t_c)
        return field.gaussian_field(n_members, seed=0).sample(n_samples, seed=0)

    def ensemble():
        return _ensemble(feats, n_models, P, eps, sched, n_samples)

    keys = (
        "setup", "per_p", "per_p_exact", "per_p_auto", "per_p_auto_cheap", "per_p_precise",
        "per_p_precise_few", "ensemble",
    )  # fmt: skip
    best = {k: [np.inf, np.inf] for k in keys}
    for _ in range(1 if quick else 3):
        w, c, (theory, nodes) = _timed(setup)
        best["setup"] = [min(best["setup"][0], w), min(best["setup"][1], c)]
        for key, fn, args in (
            ("per_p", per_p, (theory, nodes)),
            ("per_p_exact", per_p, (theory, nodes, EXACT_BELOW)),
            ("per_p_auto", per_p_auto, (theory, nodes)),
            ("per_p_auto_cheap", per_p_auto, (theory, nodes, n_samples // 10)),
            ("per_p_precise", per_p, (theory, nodes, EXACT_BELOW, PRECISE * n_models)),
            (
                "per_p_precise_few",
                per_p,
                (theory, nodes, EXACT_BELOW, PRECISE * n_models, n_samples // FEWER),
            ),  # fmt: skip
            ("ensemble", ensemble, ()),
        ):
            w, c, _ = _timed(fn, *args)
            best[key] = [min(best[key][0], w), min(best[key][1], c)]
    s, e = best["setup"], best["ensemble"]
    for key, members, label in (
        ("per_p", n_members, ""),
        ("per_p_exact", n_members, f", exact below t = {EXACT_BELOW:g}"),
        ("per_p_auto", n_members, ", exact_below auto (its ladder included)"),
        ("per_p_auto_cheap", n_members, f", exact_below auto, ladder at {n_samples // 10} samples"),
        ("per_p_precise", PRECISE * n_models, f", exact below t = {EXACT_BELOW:g}"),
        (
            "per_p_precise_few",
            PRECISE * n_models,
            f", {n_samples // FEWER} samples per member, exact below t = {EXACT_BELOW:g}",
        ),  # fmt: skip
    ):
        p = best[key]
        tot = [s[0] + p[0], s[1] + p[1]]
        print(
            f"| F = {ns}x{nt}, P = {P}, {members} members vs {n_models} models{label} | {fp:g} "
            f"| {s[0]:.2f} ({s[1]:.2f} CPU) | {p[0]:.2f} ({p[1]:.2f} CPU) | "
            f"{tot[0]:.2f} ({tot[1]:.2f} CPU) | {e[0]:.2f} ({e[1]:.2f} CPU) | "
            f"{e[0] / tot[0]:.1f}x ({e[1] / tot[1]:.1f}x CPU) | {e[0] / p[0]:.1f}x "
            f"({e[1] / p[1]:.1f}x CPU) |"
        )


def run_size(ns, nt, eps, sched, n_models, n_members, n_samples, quick=False) -> None:
    """Print the rows of one feature size (``quick``: a coarse quadrature, one repeat)."""
    repeats = 1 if quick else 3
    feats = ProductFeatures.uniform("gaussian", 1, ns, nt, (eps, sched.T), (-1.5, 1.5))
    F = feats.n_features
    P = F  # F/P = 1
    coarse = {"n_t": 4, "n_hermite": 30} if quick else {}
    theory = linear_model_theory(FIGURE2_DATA, feats, eps, sched, ridge=0.1, **coarse)
    nodes = population_nodes(theory)
    fast_s, fast = _best(lambda: cavity_moments(theory, P, nodes=nodes), 3)
    if F <= 64:  # the full-vector reference needs n_nodes x F doubles and O(n_nodes F^2) a step
        ref_s, ref = _best(lambda: cavity_moments_reference(theory, P, nodes=nodes), 1)
        diff = np.abs(fast.cov_W - ref.cov_W).max() / np.abs(ref.cov_W).max()
        ref_cols = f"{ref_s:.3f} | {ref_s / fast_s:.1f}x | {diff:.1e}"
    else:
        ref_cols = "- | - | -"
    print(
        f"| cavity solve, F = {ns}x{nt}, P = {P} | {fast_s:.3f} | {ref_cols} | "
        f"{nodes.prob.size} nodes, iterations {fast.iterations}; reference = full feature "
        "vectors (F <= 64 only) |"
    )

    def predict():
        m = cavity_moments(theory, P, nodes=nodes)
        field = CavityLinear(theory, m, "occupancy", nodes).gaussian_field(n_members, seed=0)
        return m, field.sample(n_samples, seed=0)

    # the fast path: cavity moments on PREDICTION_RULE (n_t = 4, Hermite tails pruned at 1e-12,
    # tol 1e-8, delayed mixing for M, conjugate gradients for the covariance; it builds that node
    # set), the split on the theory's nodes, which the rows reuse (their build time, with the node
    # kernels' layout, is printed in the row by part); the occupancy, stratified (light part per
    # (t, x) cell) and consistent (heavy sets closed under each member's own leverage) fields
    def predict_fast():
        return _fast_prediction(theory, P, nodes, "occupancy", n_members, n_samples)

    def predict_stratified():
        return _fast_prediction(theory, P, nodes, "stratified", n_members, n_samples)

    def predict_consistent():
        return _fast_prediction(theory, P, nodes, "consistent", n_members, n_samples)

    def ensemble():
        return _ensemble(feats, n_models, P, eps, sched, n_samples)

    # the three runs interleaved, best of `repeats` each (the machine may be shared)
    best = dict.fromkeys(("default", "fast", "stratified", "consistent", "ensemble"), np.inf)
    cpu = dict.fromkeys(best, np.inf)  # CPU seconds of the process (all its threads)
    out = {}
    runs = (
        ("default", predict), ("fast", predict_fast), ("stratified", predict_stratified),
        ("consistent", predict_consistent), ("ensemble", ensemble),
    )  # fmt: skip
    for _ in range(repeats):
        for name, fn in runs:
            t0, c0 = time.perf_counter(), time.process_time()
            out[name] = fn()
            best[name] = min(best[name], time.perf_counter() - t0)
            cpu[name] = min(cpu[name], time.process_time() - c0)
    pred_s, fast_s_, ens_s = best["default"], best["fast"], best["ensemble"]
    print(
        f"| [q]: small-occupancy field ({n_members} members) vs trained ensemble "
        f"({n_models} models), "
        f"F = {ns}x{nt} | {pred_s:.2f} | {ens_s:.2f} | {ens_s / pred_s:.1f}x | - | "
        f"{n_samples} samples per member/model, 30 Euler steps; default cavity solve "
        "(theory's quadrature, tol 1e-10); the prediction's cost is fixed, the ensemble's grows "
        "with N |"
    )
    m_fast = out["fast"][0]
    devs = [
        np.abs(a - b).max() / np.abs(b).max()
        for a, b in ((m_fast.W_bar, fast.W_bar), (m_fast.cov_W, fast.cov_W), (m_fast.M, fast.M))
    ]
    print(
        f"| [q]: the same, fast path (prediction_moments), F = {ns}x{nt} | {fast_s_:.2f} | "
        f"{ens_s:.2f} | {ens_s / fast_s_:.1f}x | {max(devs):.1e} | iterations "
        f"{m_fast.iterations}; max rel deviation of W_bar / Cov W / M from the default solve "
        f"{devs[0]:.0e} / {devs[1]:.0e} / {devs[2]:.0e} |"
    )
    print(
        f"| [q]: the same, fast path, CPU time, F = {ns}x{nt} | {cpu['fast']:.2f} | "
        f"{cpu['ensemble']:.2f} | {cpu['ensemble'] / cpu['fast']:.1f}x | - | CPU seconds of the "
        "process (all threads; the fast path's node sums are serial, the ensemble's training and "
        "both samplers parallel): on a loaded machine the wall-time ratio depends on the load |"
    )
    strat_s = best["stratified"]
    print(
        f"| [q]: the same with the stratified field (32 x 16 cells), F = {ns}x{nt} | "
        f"{strat_s:.2f} | {ens_s:.2f} | {ens_s / strat_s:.1f}x | - | fast-path moments; the "
        "cell moments are built on the theory's nodes |"
    )
    cons_s = best["consistent"]
    print(
        f"| [q]: the same with the consistent field, F = {ns}x{nt} | {cons_s:.2f} | {ens_s:.2f} | "
        f"{ens_s / cons_s:.1f}x | - | fast-path moments; CPU {cpu['consistent']:.2f} s against "
        f"{cpu['ensemble']:.2f} s ({cpu['ensemble'] / cpu['consistent']:.1f}x) |"
    )
    parts = _parts(theory, P, n_members, n_samples, nodes)
    print(
        f"| [q] fast path by part, F = {ns}x{nt} | "
        + " + ".join(f"{k} {v:.3f}" for k, v in parts.items())
        + " | - | - | - | best of 3 each |"
    )


def _parts(theory, P, n_members, n_samples, nodes) -> dict:
    """Best-of-3 times of the fast path's parts (and of the theory's node set both rows reuse)."""
    # the node set with the node kernels' layout of its active nodes (built on first use)
    t_theory_nodes, _ = _best(lambda: population_nodes(theory).active_layout, 3)
    t_nodes, (m, split_nodes) = _best(lambda: prediction_moments(theory, P, nodes=nodes), 3)
    t_split, split = _best(lambda: occupancy_split(theory, m, nodes=split_nodes), 3)
    t_members, W = _best(lambda: sample_occupancy_weights(theory, m, n_members, 0, split=split), 3)
    bound = CavityLinear(theory, m, "occupancy", split_nodes)
    field = bound.gaussian_field(n_members, seed=0)
    t_sample, _ = _best(lambda: field.sample(n_samples, seed=0), 3)
    t_ssplit, ssplit = _best(
        lambda: occupancy_split(theory, m, nodes=split_nodes, strata=STRATA), 3
    )
    t_smembers, _ = _best(
        lambda: sample_occupancy_weights(theory, m, n_members, 0, split=ssplit), 3
    )
    return {
        "[theory's nodes, reused by both rows]": t_theory_nodes,
        "coarse nodes+solve": t_nodes,
        "split": t_split,
        "members": t_members,
        "PF-ODE": t_sample,
        "[stratified: split": t_ssplit,
        "members]": t_smembers,
    }


if __name__ == "__main__":
    main()
