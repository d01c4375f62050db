"""``gtv serial ...``: the serial-reproduction experiments on the command line.

:func:`add_serial_parser` adds the subcommands to the ``gtv`` parser (building it imports no
numerics, so ``gtv --help`` stays fast); :func:`run_serial` runs one. Every subcommand prints its
table(s), writes ``DIR/serial_<experiment>_<grid>.{npz,png,pdf}`` and, with ``--json FILE``,
every printed table as JSON. While it runs, finished conditions are kept in
``DIR/serial_<experiment>_<grid>.partial.npz`` (``serial_learned_<grid>_<variance>`` for
``learned``): the same command started again after an interruption continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

__all__ = ["EXPERIMENT_HELP", "LEARNED_DEFAULTS", "add_serial_parser", "run_serial"]

#: The exact-denoiser experiments and what they reproduce.
EXPERIMENT_HELP = {
    "fig2": "Fig. 2A-E: Swiss roll from uniform with Gaussian (0.03->0.10), bimodal "
    "(0.02->0.07), fade->uniform and fade->3-mode (0.01->1.0) noise, T = 10, 41 x 41",
    "fig3": "Fig. 3 and S1: Gaussian 0.01->0.05 for T in 2..100 on 26 x 26 (error, complexity, "
    "stationarity vs number of steps)",
    "s2": "Fig. S2: Gaussian 0.03->0.10, T = 10, with vs without noise injection",
    "s4": "Fig. S3/S4: too-weak constant schedules (Gaussian 0.01 at T = 10 and 100, bimodal "
    "and fade->3-mode 1e-4 at T = 10)",
    "s5": "Fig. S5: Fig. 3 with bimodal noise 0.02->0.07",
    "fixed-total": "control: the Fig. 3 sweep next to the same ramp rescaled to a fixed total "
    "variance (the paper's T = 100 total), with and without noise injection",
}
#: The paper's grid spacing of each experiment (41 x 41 or 26 x 26 on the authors' grid).
PAPER_SPACING = {
    "fig2": 0.025,
    "s2": 0.025,
    "s4": 0.025,
    "fig3": 0.04,
    "s5": 0.04,
    "fixed-total": 0.04,
}
SWEEPS = ("fig3", "s5", "fixed-total")
PAPER_STEPS = [2, 3, 6, 12, 24, 48, 100]

#: Defaults of ``gtv serial learned`` (= LearnedConfig's; a test checks that they agree).
LEARNED_DEFAULTS = {
    "grid": "torus",
    "h": 0.04,
    "steps": (2, 3, 6, 12, 24),
    "sweep_family": "gaussian",
    "families": ("gaussian", "bimodal", "laplace", "box", "fade"),
    "family_T": 10,
    "denoisers": ("exact", "exact-mean", "linear", "kernel"),
    "n_models": 16,
    "pairs_per_step": 1000,
    "kernel_pairs": 500,
    "n_space": 15,
    "ridge": 1e-4,
    "kernel_ridge": 1e-6,
    "activation": "relu",
    "variance": "kernel",
    "stationary_iters": 300,
    "n_boot": 2000,
    "seed": 0,
}


def _common(p: argparse.ArgumentParser, formats: Callable, grids: tuple[str, ...], default: str):
    p.add_argument(
        "--grid",
        choices=grids,
        default=default,
        help="the authors' grid (both ends of [-0.5, 0.5], duplicated boundary) or the true torus",
    )
    p.add_argument("--out", type=Path, default=Path("gtv-output"), help="output directory")
    p.add_argument(
        "--json", type=Path, default=None, metavar="FILE", help="write every printed table as JSON"
    )
    p.add_argument("--formats", type=formats, default="png,pdf", help="comma-separated: png, pdf")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def add_serial_parser(
    sub, fmt, positive_int: Callable, positive_float: Callable, formats: Callable
) -> None:
    """Add ``gtv serial`` and its subcommands to the subparsers ``sub`` of the ``gtv`` parser.

    ``positive_int(name, minimum)``, ``positive_float(name)`` and ``formats`` are the argument
    types of the ``gtv`` parser (so that every command reports bad values the same way).
    """
    ser = sub.add_parser(
        "serial",
        help="diffusion as serial reproduction: the paper's grid experiments, exact and learned",
        description="Reproduce the grid simulations of Marjieh et al. (ICML 2023) with exact "
        "Bayesian denoisers (FFT chains), the fixed-total-noise control, and chains with "
        "learned denoisers. docs/serial.md describes every experiment.",
        formatter_class=fmt,
    )
    esub = ser.add_subparsers(dest="experiment", metavar="EXPERIMENT", parser_class=type(ser))
    esub.required = True
    for name, text in EXPERIMENT_HELP.items():
        p = esub.add_parser(name, help=text, description=text, formatter_class=fmt)
        _common(p, formats, ("authors", "torus", "both"), "authors")
        p.add_argument(
            "--h",
            type=positive_float("--h"),
            default=PAPER_SPACING[name],
            help="grid spacing (1/h an integer: 1/h + 1 points per axis on the authors' grid, "
            "1/h on the torus)",
        )
        if name in SWEEPS:
            p.add_argument(
                "--steps",
                type=positive_int("--steps", 1),
                nargs="+",
                default=PAPER_STEPS,
                help="numbers of steps T",
            )
        if name == "fixed-total":
            p.add_argument(
                "--total",
                type=positive_float("--total"),
                default=None,
                help="total variance sum sigma_t^2 of every chain (default: that of the paper's "
                "T = 100 schedule linspace(0.01, 0.05, 100), 0.1036)",
            )
    _add_learned(esub, fmt, positive_int, positive_float, formats)


def _add_learned(esub, fmt, positive_int, positive_float, formats) -> None:
    d = argparse.Namespace(**LEARNED_DEFAULTS)
    text = (
        "Exact vs learned denoisers: linear-feature and kernel (NTK) ensembles trained on DSM "
        "pairs of the grid chain, used as Gaussian posterior steps; error, gap mass and the "
        "stationary density of the last unit with model-level bootstrap CIs, (a) vs number of "
        "steps at fixed total noise, (b) vs noise family"
    )
    p = esub.add_parser("learned", help=text, description=text + ".", formatter_class=fmt)
    _common(p, formats, ("authors", "torus"), d.grid)
    p.add_argument("--h", type=positive_float("--h"), default=d.h, help="grid spacing")
    p.add_argument(
        "--steps",
        type=positive_int("--steps", 1),
        nargs="*",
        default=list(d.steps),
        help="numbers of steps of the fixed-total sweep (none: skip it)",
    )
    p.add_argument(
        "--sweep-family",
        default=d.sweep_family,
        choices=("gaussian", "bimodal", "trimodal", "fade", "laplace", "box"),
        help="noise family of the sweep (fade: the ramp 0.01->1 for every T)",
    )
    p.add_argument(
        "--total",
        type=positive_float("--total"),
        default=None,
        help="total variance of the sweep (default: the paper's T = 100 total, 0.1036)",
    )
    p.add_argument(
        "--families",
        nargs="*",
        default=list(d.families),
        choices=("gaussian", "bimodal", "trimodal", "fade", "laplace", "box"),
        help="noise families of the comparison (none: skip it)",
    )
    p.add_argument(
        "--family-T", type=positive_int("--family-T", 1), default=d.family_T, help="its steps"
    )
    p.add_argument(
        "--denoisers",
        nargs="+",
        default=list(d.denoisers),
        choices=("exact", "exact-mean", "linear", "kernel"),
        help="denoisers to compare",
    )
    p.add_argument(
        "--models", type=positive_int("--models", 2), default=d.n_models, help="models N"
    )
    p.add_argument(
        "--pairs-per-step",
        type=positive_int("--pairs-per-step", 1),
        default=d.pairs_per_step,
        help="DSM pairs per step and model",
    )
    p.add_argument(
        "--kernel-pairs",
        type=positive_int("--kernel-pairs", 1),
        default=d.kernel_pairs,
        help="pairs per step of a kernel model (the first of the same draws)",
    )
    p.add_argument(
        "--n-space",
        type=positive_int("--n-space", 1),
        default=d.n_space,
        help="Fourier features per axis of the linear models",
    )
    p.add_argument("--ridge", type=float, default=d.ridge, help="ridge of the linear models")
    p.add_argument(
        "--kernel-ridge",
        type=positive_float("--kernel-ridge"),
        default=d.kernel_ridge,
        help="ridge of the kernel ridge regression",
    )
    p.add_argument(
        "--activation", default=d.activation, choices=("relu", "erf"), help="NTK activation"
    )
    p.add_argument(
        "--variance",
        default=d.variance,
        choices=("kernel", "posterior"),
        help="variance of the Gaussian steps: the step kernel's (DDPM) or the per-point "
        "posterior variance (exact, or learned as a second moment)",
    )
    p.add_argument(
        "--stationary-iters",
        type=positive_int("--stationary-iters", 1),
        default=d.stationary_iters,
        help="power iterations of the last unit's stationary density",
    )
    p.add_argument(
        "--boot", type=positive_int("--boot", 10), default=d.n_boot, help="bootstrap resamples"
    )
    p.add_argument("--seed", type=positive_int("--seed", 0), default=d.seed, help="random seed")


def _write_json(path: Path | None, payload: dict) -> Path | None:
    if path is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1))
    return path


def _partial(stem: Path) -> Path:
    """The resume file of a run saved as ``stem`` (docs/reliability.md, "Resuming")."""
    return stem.with_name(stem.name + ".partial.npz")


def _run_exact(args: argparse.Namespace) -> tuple[list[dict], list[Path]]:
    from gtv.validation.serial.config import experiment_config
    from gtv.validation.serial.experiments import run_experiment
    from gtv.validation.serial.plots import plot_experiment

    kwargs = {}
    if args.experiment in SWEEPS:
        kwargs["steps"] = tuple(args.steps)
    if args.experiment == "fixed-total" and args.total is not None:
        kwargs["total"] = args.total
    grids = ("authors", "torus") if args.grid == "both" else (args.grid,)
    tables, paths = [], []
    for grid in grids:
        cfg = experiment_config(args.experiment, grid, args.h, **kwargs)
        stem = args.out / f"serial_{args.experiment}_{grid}"
        result = run_experiment(cfg, progress=not args.no_progress, checkpoint=_partial(stem))
        print(result.format_table())
        print(f"time: {result.meta['total_seconds']:.2f} s")
        print()
        paths.append(result.save(stem))
        paths += plot_experiment(result, stem, args.formats)
        tables.append({"grid": grid, "n": result.grid.n, "h": cfg.h, "rows": result.table()})
    return tables, paths


def _run_learned(args: argparse.Namespace) -> tuple[list[dict], list[Path]]:
    from gtv.validation.serial.learned_experiment import LearnedConfig, run_learned
    from gtv.validation.serial.plots import plot_learned

    cfg = LearnedConfig(
        grid=args.grid,
        h=args.h,
        steps=tuple(args.steps),
        sweep_family=args.sweep_family,
        total=args.total,
        families=tuple(args.families),
        family_T=args.family_T,
        denoisers=tuple(args.denoisers),
        n_models=args.models,
        pairs_per_step=args.pairs_per_step,
        kernel_pairs=args.kernel_pairs,
        n_space=args.n_space,
        ridge=args.ridge,
        kernel_ridge=args.kernel_ridge,
        activation=args.activation,
        variance=args.variance,
        stationary_iters=args.stationary_iters,
        n_boot=args.boot,
        seed=args.seed,
    )
    stem = args.out / f"serial_learned_{cfg.grid}_{cfg.variance}"
    result = run_learned(cfg, progress=not args.no_progress, checkpoint=_partial(stem))
    print(result.format_table())
    print(f"time: {result.meta['total_seconds']:.1f} s")
    paths = [result.save(stem), *plot_learned(result, stem, args.formats)]
    table = {"grid": cfg.grid, "data_gap": result.data_gap, "rows": result.table()}
    return [table], paths


def run_serial(args: argparse.Namespace) -> int:
    """Run the ``gtv serial`` subcommand described by ``args``; returns the exit status."""
    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a directory")
    runner = _run_learned if args.experiment == "learned" else _run_exact
    tables, paths = runner(args)
    j = _write_json(args.json, {"experiment": args.experiment, "tables": tables})
    for p in [*paths, *([j] if j else [])]:
        print(p)
    return 0
