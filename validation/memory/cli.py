"""``gtv memorization ...``: the memorization -> spurious -> generalization transition.

:func:`add_memorization_parser` adds the subcommands to the ``gtv`` parser (building it imports
no numerics, so ``gtv --help`` stays fast); :func:`run_memorization` runs one:

* ``curve`` -- fractions memorized / spurious / generalized against K for one or more model
  classes (:func:`gtv.validation.memory.run_transition`; resumable: after an interrupt the same
  command continues from ``DIR/memorization_<dataset>_<model>.partial.npz``), printed per
  criterion, saved as
  ``DIR/memorization_<dataset>_<model>.npz`` and one figure
  ``DIR/memorization_<dataset>.{png,pdf}``;
* ``attractors`` -- the attractors of one model trained on one training set at one time;
* ``collapse`` -- the collapse time t_C(K, D) of the exact empirical score: formula vs measured.

Every subcommand takes ``--json FILE`` (every printed table as JSON).
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from pathlib import Path

__all__ = ["CURVE_DEFAULTS", "add_memorization_parser", "run_memorization"]

#: Defaults of ``gtv memorization curve`` (= TransitionConfig's; a test checks that they agree).
CURVE_DEFAULTS = {
    "dataset": "circle",
    "Ks": (2, 4, 9, 20, 44, 96, 208, 452, 980, 2125, 4610, 10000),
    "n_models": 8,
    "n_samples": 1000,
    "eps": 0.01,
    "schedule": "vp-linear",
    "n_steps": 30,
    "method": "euler",
    "n_train": 4096,
    "n_space": 8,
    "n_time": 3,
    "ridge": 1e-3,
    "activation": "relu",
    "tau": math.inf,
    "width": 256,
    "learning_rate": 0.5,
    "train_steps": 2000,
    "ratio": 1 / 3,
    "flat_tol": 1.0,
    "n_mc": 100_000,
    "seed": 0,
}
MODELS = ("exact", "linear", "kernel", "two-layer")
DATASETS = ("circle", "mixture", "sphere")
SCHEDULES = ("vp-linear", "linear-variance", "song-vp", "ve", "edm")


def _common(p: argparse.ArgumentParser, formats: Callable) -> None:
    p.add_argument("--out", type=Path, default=Path("gtv-output"), help="output directory")
    p.add_argument(
        "--json", type=Path, default=None, metavar="FILE", help="write every printed table as JSON"
    )
    p.add_argument("--formats", type=formats, default="png,pdf", help="comma-separated: png, pdf")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _data_options(p, positive_int, positive_float) -> None:
    d = CURVE_DEFAULTS
    p.add_argument("--dataset", choices=DATASETS, default=d["dataset"], help="training data")
    p.add_argument(
        "--dim", type=positive_int("--dim", 2), default=None, help="dimension of 'sphere' (16)"
    )
    p.add_argument(
        "--eps", type=positive_float("--eps"), default=d["eps"],
        help="training cutoff and final sampling time (the exact score is sampled down to it)",
    )  # fmt: skip
    p.add_argument("--schedule", choices=SCHEDULES, default=d["schedule"], help="noise schedule")
    p.add_argument("--seed", type=positive_int("--seed", 0), default=d["seed"], help="seed")


def _model_options(p, positive_int, positive_float) -> None:
    d = CURVE_DEFAULTS
    p.add_argument(
        "--n-train", type=positive_int("--n-train", 1), default=d["n_train"],
        help="DSM triples per trained model (P)",
    )  # fmt: skip
    p.add_argument(
        "--n-space", type=positive_int("--n-space", 1), default=d["n_space"],
        help="linear features: Gaussian bumps per spatial axis on [-1.5, 1.5]",
    )  # fmt: skip
    p.add_argument(
        "--n-time", type=positive_int("--n-time", 1), default=d["n_time"],
        help="linear features: Gaussian bumps over time",
    )  # fmt: skip
    p.add_argument(
        "--ridge", type=float, default=d["ridge"], help="ridge of linear and kernel models"
    )
    p.add_argument(
        "--activation", choices=("relu", "erf"), default=d["activation"],
        help="activation of kernel and two-layer networks",
    )  # fmt: skip
    p.add_argument(
        "--tau", type=positive_float("--tau"), default=d["tau"],
        help="training time of kernel models (inf: converged)",
    )  # fmt: skip
    p.add_argument(
        "--width", type=positive_int("--width", 1), default=d["width"], help="two-layer width"
    )
    p.add_argument(
        "--lr", type=positive_float("--lr"), default=d["learning_rate"],
        help="two-layer learning rate",
    )  # fmt: skip
    p.add_argument(
        "--train-steps", type=positive_int("--train-steps", 1), default=d["train_steps"],
        help="two-layer gradient-descent steps",
    )  # fmt: skip
    p.add_argument(
        "--steps", type=positive_int("--steps", 1), default=d["n_steps"], help="PF-ODE steps"
    )
    p.add_argument("--method", choices=("euler", "heun"), default=d["method"], help="PF-ODE method")


def add_memorization_parser(
    sub, fmt, positive_int: Callable, positive_float: Callable, formats: Callable
) -> None:
    """Add ``gtv memorization`` and its subcommands to the subparsers ``sub`` of ``gtv``."""
    d = CURVE_DEFAULTS
    mem = sub.add_parser(
        "memorization",
        help="memorization -> spurious states -> generalization as the training set grows",
        description="Diffusion models as associative memories (Pham et al. 2025): fractions of "
        "memorized / spurious / generalized samples against the training-set size K for the "
        "exact empirical score and trained model classes, with gtv's theory next to them "
        "(docs/memorization.md).",
        formatter_class=fmt,
    )
    msub = mem.add_subparsers(dest="action", metavar="ACTION", parser_class=type(mem))
    msub.required = True
    text = (
        "fractions memorized / spurious / generalized against K (three criteria, model-level "
        "95 %% CIs; for linear models also the first-order theory's prediction); an interrupted "
        "run continues where it stopped when the same command is run again"
    )
    p = msub.add_parser("curve", help=text, description=text + ".", formatter_class=fmt)
    _common(p, formats)
    _data_options(p, positive_int, positive_float)
    p.add_argument(
        "--models", dest="model_classes", nargs="+", choices=MODELS, default=["exact"],
        help="model classes, one curve family each",
    )  # fmt: skip
    p.add_argument(
        "--K", type=positive_int("--K", 2), nargs="+", default=list(d["Ks"]),
        help="training-set sizes (strictly increasing)",
    )  # fmt: skip
    p.add_argument(
        "--n-models", type=positive_int("--n-models", 2), default=d["n_models"],
        help="independent (training set, model) pairs per K",
    )  # fmt: skip
    p.add_argument(
        "--samples", type=positive_int("--samples", 4), default=d["n_samples"],
        help="PF-ODE samples per model",
    )  # fmt: skip
    _model_options(p, positive_int, positive_float)
    p.add_argument(
        "--delta-m", type=positive_float("--delta-m"), default=None,
        help="memorized threshold (default: 1/3 of the median nearest-neighbour spacing of the "
        "training set)",
    )  # fmt: skip
    p.add_argument(
        "--delta-s", type=positive_float("--delta-s"), default=None,
        help="spurious threshold (same default)",
    )  # fmt: skip
    p.add_argument(
        "--ratio", type=positive_float("--ratio"), default=d["ratio"],
        help="nearest/second-nearest distance ratio of the ratio criterion",
    )  # fmt: skip
    p.add_argument(
        "--flat-tol", type=positive_float("--flat-tol"), default=d["flat_tol"],
        help="attractor criterion: log-density barrier to the nearest other attractor below "
        "which an attractor is flat (a continuum: generalized)",
    )  # fmt: skip
    p.add_argument(
        "--theory", action=argparse.BooleanOptionalAction, default=True,
        help="for linear models: also classify samples of the first-order theory's field",
    )  # fmt: skip
    p.add_argument(
        "--n-mc", type=positive_int("--n-mc", 16), default=d["n_mc"],
        help="Monte Carlo triples of the theory's population moments",
    )  # fmt: skip

    text = "attractors of one model trained on one training set, at one time"
    p = msub.add_parser("attractors", help=text, description=text + ".", formatter_class=fmt)
    _common(p, formats)
    _data_options(p, positive_int, positive_float)
    p.add_argument("--model", choices=MODELS, default="exact", help="model class")
    p.add_argument("--K", type=positive_int("--K", 1), default=32, help="training-set size")
    p.add_argument(
        "--t", type=positive_float("--t"), default=None, help="time of the energy (default: eps)"
    )
    p.add_argument(
        "--starts", type=positive_int("--starts", 1), default=2000, help="attractor-search starts"
    )
    _model_options(p, positive_int, positive_float)

    text = "collapse time t_C(K, D) of the exact empirical score: formula vs measured"
    p = msub.add_parser("collapse", help=text, description=text + ".", formatter_class=fmt)
    _common(p, formats)
    p.add_argument(
        "--dims", type=positive_int("--dims", 1), nargs="+", default=[8, 16, 32],
        help="dimensions D",
    )  # fmt: skip
    p.add_argument(
        "--K", type=positive_int("--K", 2), nargs="+", default=[100, 1000, 10000],
        help="numbers of Gaussian training points",
    )  # fmt: skip
    p.add_argument("--schedule", choices=SCHEDULES, default="vp-linear", help="noise schedule")
    p.add_argument("--seed", type=positive_int("--seed", 0), default=0, help="random seed")


def _write_json(path: Path | None, payload: object) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=1))
        print(path)


def _config(args: argparse.Namespace, model: str, **extra):
    from gtv.validation.memory.config import TransitionConfig

    return TransitionConfig(
        dataset=args.dataset, model=model, eps=args.eps, schedule=args.schedule,
        n_steps=args.steps, method=args.method, dim=args.dim, n_train=args.n_train,
        n_space=args.n_space, n_time=args.n_time, ridge=args.ridge, activation=args.activation,
        tau=args.tau, width=args.width, learning_rate=args.lr, train_steps=args.train_steps,
        seed=args.seed, **extra,
    )  # fmt: skip


def _run_curve(args: argparse.Namespace) -> int:
    from gtv.validation.memory.config import CRITERIA
    from gtv.validation.memory.plots import plot_transitions
    from gtv.validation.memory.transition import run_transition

    configs = [
        _config(
            args,
            model,
            Ks=tuple(args.K),
            n_models=args.n_models,
            n_samples=args.samples,
            delta_m=args.delta_m,
            delta_s=args.delta_s,
            ratio=args.ratio,
            flat_tol=args.flat_tol,
            theory=args.theory,
            n_mc=args.n_mc,
        )  # fmt: skip
        for model in args.model_classes
    ]
    results, payload = [], []
    for cfg in configs:
        stem = args.out / f"memorization_{cfg.dataset}_{cfg.model}"
        partial = stem.with_name(stem.name + ".partial.npz")
        res = run_transition(cfg, progress=not args.no_progress, checkpoint=partial)
        for crit in CRITERIA:
            print(res.format_table(crit))
            print("landmarks:", json.dumps(res.landmarks(crit)))
            if res.theory_fractions is not None:
                for source in ("theory", "mean"):
                    print(
                        f"trained - {source} (paired by training set):",
                        json.dumps(res.agreement(crit, source)),
                    )
            print()
        print(f"time: {res.seconds.sum():.1f} s")
        print(res.save(stem))
        results.append(res)
        payload.append(
            {
                "model": cfg.model,
                "config": cfg.to_dict(),
                "tables": {c: res.table(c) for c in CRITERIA},
                "landmarks": {c: res.landmarks(c) for c in CRITERIA},
            }
        )
        if res.theory_fractions is not None:
            payload[-1]["agreement"] = {
                src: {c: res.agreement(c, src) for c in CRITERIA} for src in ("theory", "mean")
            }
    for path in plot_transitions(results, args.out / f"memorization_{args.dataset}", args.formats):
        print(path)
    _write_json(args.json, payload)
    return 0


def _run_attractors(args: argparse.Namespace) -> int:
    from gtv.numerics.memory import attractor_starts, find_attractors
    from gtv.numerics.streams import stream
    from gtv.validation.memory.datasets import training_set
    from gtv.validation.memory.models import fit_and_sample

    cfg = _config(args, args.model, Ks=(max(args.K, 2),), n_samples=4)
    data = training_set(cfg.dataset, args.K, 0, dim=cfg.dim, seed=cfg.seed)
    t = cfg.eps if args.t is None else args.t
    den, _, _ = fit_and_sample(cfg, data, stream(cfg.seed, "configuration", args.K, 0))
    starts = attractor_starts(den, args.starts, seed=cfg.seed)
    att = find_attractors(den, t, starts, warn=False)
    order = [int(i) for i in sorted(range(att.n_attractors), key=lambda i: -att.basin_share[i])]
    rows = [
        {
            "point": [float(v) for v in att.points[i]],
            "stable": bool(att.stable[i]),
            "memory": int(att.memory_index[i]),
            "basin_share": float(att.basin_share[i]),
            "min_eigenvalue": float(att.eigenvalues[i].real.min()),
        }
        for i in order
    ]
    print(
        f"{args.model} on {cfg.dataset} (K = {args.K}) at t = {t:g}: {att.n_attractors} "
        f"attractors ({att.n_stable} stable, {int(att.is_memory.sum())} memories, "
        f"{int(att.is_spurious.sum())} spurious) from {att.n_starts} starts; "
        f"{att.n_not_converged} did not converge"
    )
    print(f"{'basin':>7} {'stable':>6} {'memory':>6} {'min eig':>8}  point")
    for r in rows[:40]:
        pt = ", ".join(f"{v:.4f}" for v in r["point"][:4])
        print(
            f"{r['basin_share']:7.3f} {str(r['stable']):>6} {r['memory']:6d} "
            f"{r['min_eigenvalue']:8.3f}  ({pt}{', ...' if len(r['point']) > 4 else ''})"
        )
    if len(rows) > 40:
        print(f"... {len(rows) - 40} more (all in --json)")
    _write_json(
        args.json,
        {"config": cfg.to_dict(), "K": args.K, "t": t, "n_not_converged": att.n_not_converged,
         "attractors": rows},
    )  # fmt: skip
    return 0


def _run_collapse(args: argparse.Namespace) -> int:
    from gtv.numerics.memory.collapse import collapse_time, measured_collapse_time

    rows = []
    print(f"{'D':>4} {'K':>7} {'t_C formula':>12} {'t_C measured':>13}")
    for D in args.dims:
        for K in args.K:
            tf = float(collapse_time(K, D, schedule=args.schedule))
            tm = measured_collapse_time(K, D, schedule=args.schedule, seed=args.seed).time
            rows.append({"D": D, "K": K, "formula": tf, "measured": tm})
            print(f"{D:4d} {K:7d} {tf:12.4f} {tm:13.4f}")
    _write_json(args.json, rows)
    return 0


def run_memorization(args: argparse.Namespace) -> int:
    """Run the ``gtv memorization`` subcommand described by ``args``; returns the exit status."""
    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a directory")
    runner = {"curve": _run_curve, "attractors": _run_attractors, "collapse": _run_collapse}
    return runner[args.action](args)
