"""The ``gtv`` command line.

``gtv --help`` lists the commands; ``gtv COMMAND --help`` explains every option with its default.
Bad arguments print one line ``gtv: error: ...`` and exit with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import atexit
import os
import platform
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from gtv.numerics.allocator import tune_allocator
from gtv.validation.cli_density import add_density_arguments, density_options, exact_below_arg
from gtv.validation.cli_limits import check_cli_budget, check_cli_outputs
from gtv.validation.linear.validity_map_cli import add_validity_map_parser, run_validity_map
from gtv.validation.memory.cli import add_memorization_parser, run_memorization
from gtv.validation.ntk.cli import NTK_DEFAULTS, add_ntk_parser, run_validate_ntk
from gtv.validation.serial.cli import add_serial_parser, run_serial
from gtv.validation.sweep.cli import add_sweep_parser, run_sweep_command

__all__ = ["NTK_DEFAULTS", "build_parser", "main"]

#: Defaults of ``gtv validate linear``'s --samples, --points and --max-points (those of
#: LinearCompareConfig; --samples also for --target both).
_LINEAR_SAMPLES, _LINEAR_POINTS, _LINEAR_MAX_POINTS = 20_000, 2048, 16_384


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are a single line (no usage block)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"gtv: error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(2)


class _CliError(Exception):
    pass


def _formats(value: str) -> tuple[str, ...]:
    fmts = tuple(f.strip().lower() for f in value.split(",") if f.strip())
    bad = [f for f in fmts if f not in ("png", "pdf")]
    if not fmts or bad:
        raise argparse.ArgumentTypeError(f"--formats takes png, pdf or png,pdf; got {value!r}")
    return fmts


def _positive_int(name: str, minimum: int = 1):
    def parse(value: str) -> int:
        try:
            v = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer >= {minimum}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"{name} must be an integer >= {minimum}, got {v}")
        return v

    return parse


def _positive_float(name: str):
    def parse(value: str) -> float:
        try:
            v = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a positive number") from None
        if not (v > 0 and v < float("inf")):
            raise argparse.ArgumentTypeError(f"{name} must be a positive number, got {value}")
        return v

    return parse


def build_parser() -> argparse.ArgumentParser:
    """The ``gtv`` argument parser (every option with its default in ``--help``)."""
    fmt = argparse.ArgumentDefaultsHelpFormatter
    parser = _Parser(
        prog="gtv",
        description=(
            "gtv: generalization through variance in diffusion models. "
            "Symbolic theory, fast numerics, and validation against trained ensembles."
        ),
        formatter_class=fmt,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    sub.add_parser(
        "env",
        help="print versions, numba threading layer, thread count and cache directory",
        description="Print the versions of gtv and its dependencies, numba's threading layer, "
        "the number of numba threads and where compiled kernels are cached.",
        formatter_class=fmt,
    )

    fig = sub.add_parser(
        "figure",
        help="make one of the paper's figures (PNG + PDF, with the data as .npz)",
        description="Compute a figure of the paper, save its data with the configuration "
        "(DIR/figureN.npz, reloadable) and draw it (DIR/figureN.png, DIR/figureN.pdf). "
        "Figures 2 and 3 save every finished panel to DIR/figureN.partial.npz: an interrupted "
        "run started again with the same options continues where it stopped.",
        formatter_class=fmt,
    )
    fig.add_argument(
        "number",
        type=int,
        choices=[1, 2, 3],
        help="1 = proxy-score variance (2-D data sets); 2 = learned 1-D distributions vs eps "
        "and P; 3 = learned 2-D distributions, Gaussian vs Fourier features",
    )
    fig.add_argument("--out", type=Path, default=Path("gtv-output"), help="output directory")
    fig.add_argument(
        "--grid",
        type=_positive_int("--grid", 2),
        default=401,
        help="figure 1 only: grid points per axis on [-2, 2]^2",
    )
    fig.add_argument(
        "--fast",
        action="store_true",
        help="figures 2 and 3: a small version (figure 2: 20 models, 1024 to 4096 grid points "
        "or, with --density mc, 10^4 samples; figure 3: 20 models, 4096 Sobol' points or, with "
        "--density mc, 5000 samples; see Figure3Config.fast) instead of the paper's 100 models",
    )
    fig.add_argument(
        "--models",
        type=_positive_int("--models", 2),
        default=None,
        help="figures 2 and 3: number of models per configuration (default: 100, or the "
        "--fast value)",
    )
    fig.add_argument(
        "--samples",
        type=_positive_int("--samples"),
        default=None,
        help="figures 2 and 3: random start points (PF-ODE samples) per model with --density "
        "mc (default: 10^5, or the --fast value)",
    )
    fig.add_argument(
        "--density",
        choices=["transport", "mc"],
        default="transport",
        help="figures 2 and 3: how each model's density is formed (docs/math/transport.md). "
        "transport: figure 2 carries each model's PF-ODE map over a deterministic quantile grid "
        "and bins the Gaussian mass exactly (no sampling noise); figure 3 starts each model's "
        "sampler from its own scrambled Sobol' set of --points points (randomized quasi-Monte "
        "Carlo: unbiased, as accurate as 1.9-3.7 times as many random points). mc: bin --samples "
        "random samples per model (the paper's)",
    )
    fig.add_argument(
        "--points",
        type=_positive_int("--points", 4),
        default=None,
        help="figures 2 and 3: start points per model with --density transport; figure 2: "
        "the start grid, refined where needed up to --max-points (default: 2048, or 1024 with "
        "--fast); figure 3: scrambled Sobol' points, a power of 2 (default: 65536, or 4096 "
        "with --fast)",
    )
    fig.add_argument(
        "--max-points",
        type=_positive_int("--max-points", 4),
        default=None,
        help="figure 2 only: most grid points per model after refinement with --density "
        "transport (default: 16384, or 4096 with --fast; at least --points)",
    )
    fig.add_argument(
        "--json",
        action="store_true",
        help='print the result as one JSON object instead of text: {"table": rows of the gap '
        '(figure 2) or segment (figure 3) table, "files": the files written}',
    )
    fig.add_argument("--seed", type=int, default=0, help="figures 2 and 3: random seed")
    fig.add_argument(
        "--paper-normalization",
        action="store_true",
        help="figure 3 only: normalize each image column separately, as the paper's plotting "
        "code does (shows conditional shapes, not the joint density)",
    )
    fig.add_argument(
        "--formats", type=_formats, default="png,pdf", help="comma-separated: png, pdf"
    )
    fig.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    val = sub.add_parser(
        "validate",
        help="compare trained ensembles with the theory (tables, figure, .npz + .json)",
        description="Validate the theory against trained ensembles.",
        formatter_class=fmt,
    )
    vsub = val.add_subparsers(dest="target", metavar="TARGET", parser_class=_Parser)
    vsub.required = True
    lin = vsub.add_parser(
        "linear",
        help="linear-feature ensembles on {-1, 0, 1}: denoiser moments and densities vs theory",
        description="Train N linear-feature models per configuration (eps x P), compute the "
        "first-order theory and its predictions (Gaussian-field ensemble, white-noise "
        "Fokker-Planck, p(x|eps), exact-Bayes PF-ODE) and print, per configuration, the "
        "denoiser mean/variance at query points and the density distances (TV, Hellinger) with "
        "model-level bootstrap CIs, the half-vs-half noise floor, the gap masses and the "
        "trained and theory-field mass by distance from the training data (shells d < 0.05, "
        "0.05-0.1, 0.1-0.25, 0.25-0.5, >= 0.5, with the difference's CI). Every "
        "per-model density (trained models, Gaussian-field members, exact-Bayes PF-ODE) is by "
        "default transported (--density transport: no sampling noise, docs/math/transport.md); "
        "--density mc bins --samples Monte Carlo samples per model instead. Saves "
        "DIR/linear_eps<eps>_P<P>.{npz,json,png,pdf} (+ _theory.npz).",
        formatter_class=fmt,
    )
    lin.add_argument(
        "--eps", type=_positive_float("--eps"), nargs="+", default=[1e-2], help="cutoff(s) eps"
    )
    lin.add_argument(
        "--P", type=_positive_int("--P"), nargs="+", default=[4000], help="DSM samples per model"
    )
    lin.add_argument("--n-space", type=_positive_int("--n-space"), default=8, help="F_x")
    lin.add_argument("--n-time", type=_positive_int("--n-time"), default=8, help="F_t")
    lin.add_argument("--models", type=_positive_int("--models", 4), default=200, help="N")
    add_density_arguments(
        lin, _positive_int, samples=_LINEAR_SAMPLES, points=_LINEAR_POINTS,
        max_points=_LINEAR_MAX_POINTS, density_default="transport; also for --target both",
    )  # fmt: skip
    lin.add_argument(
        "--steps",
        type=_positive_int("--steps"),
        default=30,
        help="PF-ODE Euler steps (trained, Gaussian-field and exact-Bayes samplers; the paper: 30)",
    )
    lin.add_argument(
        "--query-x",
        type=float,
        nargs="+",
        default=[-1.0, -0.5, 0.0, 0.5, 1.0],
        help="query points x of the denoiser table",
    )
    lin.add_argument(
        "--query-t",
        type=_positive_float("--query-t"),
        nargs="+",
        default=[0.02, 0.1, 0.5],
        help="query times t of the denoiser table (those outside [eps, T] are skipped)",
    )
    lin.add_argument("--bins", type=_positive_int("--bins", 2), default=160, help="on [-2, 2]")
    lin.add_argument("--boot", type=_positive_int("--boot", 10), default=1000, help="resamples")
    lin.add_argument("--seed", type=int, default=0, help="random seed")
    lin.add_argument("--out", type=Path, default=Path("gtv-output"), help="output directory")
    lin.add_argument(
        "--formats", type=_formats, default="png,pdf", help="comma-separated: png, pdf"
    )
    lin.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    lin.add_argument(
        "--target",
        dest="dsm_target",
        choices=["noisy", "exact", "both"],
        default="noisy",
        help="DSM regression target: noisy = x0 (the paper's DSM loss); exact = the posterior "
        "mean E[x0|x,t] at the same design points, compared with the misfit-only first-order "
        "theory (saves DIR/linear_eps<eps>_P<P>_exact.*); both = train both on the same design "
        "points, sample both from the same start points and print the paired comparison (gap "
        "mass difference, TV between the mean densities vs the noise floors, Var D^ vs theory; "
        "saves DIR/target_noise_eps<eps>_P<P>.{npz,json})",
    )
    lin.add_argument(
        "--json",
        type=Path,
        default=None,
        metavar="FILE",
        help="with --target both: also write the summaries of all configurations to FILE",
    )
    lin.add_argument(
        "--theory",
        choices=[
            "first_order",
            "second_order",
            "cavity",
            "cavity_field",
            "occupancy_field",
            "occupancy",
            "stratified_field",
            "stratified",
            "consistent_field",
            "consistent",
        ],
        default="first_order",
        help="the theory compared with: first order in 1/P; second order (mean to O(1/P), "
        "covariance to O(1/P^2)); cavity = the finite-P cavity moments with a Gaussian field; "
        "cavity_field = the same moments with the non-Gaussian cavity field; occupancy_field = "
        "the small-occupancy field, heavy triples exact and light ones by their cavity "
        "equivalent (docs/math/finite_fp.md), with the cavity moments; occupancy = that field "
        "with its own moments (Monte Carlo over 100000 of its members); stratified_field and "
        "stratified = the same two with the light part conditioned on the member's light "
        "triples per (t, x) cell (32 x 16 cells); consistent_field = the occupancy field with "
        "each member's heavy set closed under its own leverage (a light triple that dominates "
        "its direction in that member is kept exact too); consistent = that field with its own "
        "moments (Monte Carlo over 100000 members); only first_order with --target exact",
    )
    lin.add_argument(
        "--exact-below",
        type=exact_below_arg,
        default=0.0,
        metavar="T",
        help="with --theory occupancy_field, stratified_field, consistent_field or consistent: "
        "keep every "
        "triple with t < T exact in each member and take the light equivalent over t >= T only "
        "(docs/math/finite_fp.md, 'Which sampler steps carry the core deficit'); 0: none; "
        "'auto': T where the field's own gap and core mass stop moving on a ladder of T (no "
        "trained model; 'Choosing t_c from the field alone')",
    )
    lin.add_argument(
        "--ladder-samples",
        type=_positive_int("--ladder-samples", 1),
        default=None,
        metavar="S",
        help="with --exact-below auto and --density mc: PF-ODE samples per member on the "
        "ladder's rungs (default: --samples; the prediction itself always uses --samples)",
    )
    lin.add_argument(
        "--ladder-members",
        type=_positive_int("--ladder-members", 4),
        default=None,
        metavar="K",
        help="with --exact-below auto: field members on each rung of the ladder (default: "
        "--models); its one-standard-error tolerance is theirs, so give --theory-members to "
        "stop where the prediction's own precision says",
    )
    lin.add_argument(
        "--theory-members",
        type=_positive_int("--theory-members", 4),
        default=None,
        metavar="K",
        help="members of the theory's field behind its densities and gap mass (default: "
        "--models, the trained side's Monte Carlo noise; more make the prediction more "
        "precise); the Var D^ table keeps --models, the --exact-below auto ladder "
        "--ladder-members",
    )
    lin.add_argument(
        "--theory-samples",
        type=_positive_int("--theory-samples", 1),
        default=None,
        metavar="S",
        help="with --density mc: PF-ODE samples per member of the theory's field behind its "
        "densities and gap mass (default: --samples); its precision is set by its members, so "
        "--theory-members K with fewer samples each buys it for less",
    )
    lin.add_argument(
        "--diagnostics",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="moment error vs closure error: sample a moment-matched Gaussian field (the trained "
        "ensemble's own mean and covariance of W, as many members as --models) and print its "
        "distances and gap masses to the theory's field and to the trained ensemble, and the "
        "across-model distribution of D^ at the query points (skewness, excess kurtosis, "
        "quantiles, top 1 %% variance share); saved in the .json/.npz (not used with --target "
        "both)",
    )
    add_ntk_parser(vsub, fmt, _formats, _positive_int)
    add_serial_parser(sub, fmt, _positive_int, _positive_float, _formats)
    add_memorization_parser(sub, fmt, _positive_int, _positive_float, _formats)
    add_validity_map_parser(sub, fmt, _positive_int, _positive_float, _formats)
    add_sweep_parser(sub, fmt)
    return parser


def _cmd_env(args: argparse.Namespace) -> int:
    import matplotlib
    import numba
    import numpy
    import scipy
    import sympy

    from gtv.numerics.posterior import posterior_stats

    # numba reports its threading layer only after a parallel kernel has run.
    posterior_stats([[0.0]], [[0.0]], 0.5)
    try:
        layer = numba.threading_layer()
    except ValueError:
        layer = "unknown"
    try:
        from importlib.metadata import version

        gtv_version = version("gtv")
    except Exception:  # not installed as a distribution
        gtv_version = "unknown"
    cache_dir = numba.config.CACHE_DIR or "(default: __pycache__ next to each module)"
    rows = [
        ("gtv", gtv_version),
        ("python", platform.python_version()),
        ("platform", platform.platform()),
        ("numpy", numpy.__version__),
        ("scipy", scipy.__version__),
        ("sympy", sympy.__version__),
        ("numba", numba.__version__),
        ("matplotlib", matplotlib.__version__),
        ("numba threading layer", layer),
        ("numba threads", f"{numba.get_num_threads()} (of {numba.config.NUMBA_NUM_THREADS})"),
        ("cpu count", str(os.cpu_count())),
        ("numba cache dir", cache_dir),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    return 0


def _overrides(args: argparse.Namespace) -> dict:
    out = {"seed": args.seed}
    if args.models is not None:
        out["n_models"] = args.models
    if args.samples is not None:
        out["n_samples"] = args.samples
    return out


def _cmd_figure(args: argparse.Namespace) -> int:
    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise _CliError(f"--out {out} exists and is not a directory")
    progress = not args.no_progress
    if args.number == 1:
        from gtv.validation.figures.figure1 import compute_figure1

        result = compute_figure1(n_grid=args.grid, progress=progress)
        data_path = result.save(out / "figure1.npz")
        paths = result.plot(out, formats=args.formats)
    elif args.number == 2:
        from gtv.validation.figures.figure2 import Figure2Config, compute_figure2

        kw = _overrides(args)
        if args.density == "transport" and args.samples is not None:
            raise _CliError("--samples is used with --density mc (transport: --points)")
        if args.density == "mc" and (args.points, args.max_points) != (None, None):
            raise _CliError(
                "--points and --max-points are used with --density transport (mc: --samples)"
            )
        kw["density"] = args.density
        if args.points is not None:
            kw["n_points"] = args.points
        if args.max_points is not None:
            kw["max_points"] = args.max_points
        base = Figure2Config.fast(**kw) if args.fast else Figure2Config(**kw)
        if base.max_points < base.n_points:
            if args.max_points is not None:
                raise _CliError(
                    f"--max-points must be >= --points ({base.n_points}), got {args.max_points}"
                )
            kw["max_points"] = base.n_points
        cfg = Figure2Config.fast(**kw) if args.fast else Figure2Config(**kw)
        result = compute_figure2(cfg, progress=progress, checkpoint=out / "figure2.partial.npz")
        data_path = result.save(out / "figure2.npz")
        paths = result.plot(out, formats=args.formats, parallel=True)
        rows = result.gap_table()
        if not args.json:
            print("gap mass (model-level 95 % bootstrap CI):")
            for row in rows:
                print(
                    f"  eps={row['eps']:<7g} P={row['P']:<5d} F/P={row['F/P']:<6g} "
                    f"{row['gap']:.4f} [{row['lo']:.4f}, {row['hi']:.4f}]"
                )
    else:
        from gtv.validation.figures.figure3 import Figure3Config, compute_figure3

        kw = _overrides(args)
        if args.density == "transport" and args.samples is not None:
            raise _CliError("--samples is used with --density mc (transport: --points)")
        if args.density == "mc" and args.points is not None:
            raise _CliError("--points is used with --density transport (mc: --samples)")
        if args.max_points is not None:
            raise _CliError("--max-points is used with figure 2 only")
        if args.points is not None:
            if args.points & (args.points - 1):
                raise _CliError(
                    f"--points must be a power of 2 for figure 3 (scrambled Sobol' sets), "
                    f"got {args.points}"
                )
            kw["n_points"] = args.points
        kw["density"] = args.density
        cfg = Figure3Config.fast(**kw) if args.fast else Figure3Config(**kw)
        result = compute_figure3(cfg, progress=progress, checkpoint=out / "figure3.partial.npz")
        data_path = result.save(out / "figure3.npz")
        rows = result.segment_table()
        if not args.json:
            print(result.format_table())
        paths = result.plot(out, formats=args.formats, paper_normalization=args.paper_normalization)
    files = [str(p) for p in [data_path, *paths]]
    if args.json:
        import json

        print(json.dumps({"table": rows if args.number != 1 else [], "files": files}))
    else:
        for p in files:
            print(p)
    return 0


def _linear_config_options(args: argparse.Namespace) -> dict:
    """The options of ``gtv validate linear`` shared by its comparison configurations."""
    return {
        "n_space": args.n_space,
        "n_time": args.n_time,
        "n_models": args.models,
        "n_samples": getattr(args, "samples", _LINEAR_SAMPLES),
        "n_bins": args.bins,
        "n_steps": args.steps,
        "n_boot": args.boot,
        "seed": args.seed,
        "query_x": tuple(args.query_x),
        "query_t": tuple(args.query_t),
    }


def _linear_density_options(args: argparse.Namespace) -> dict:
    """``density``, ``n_points``, ``max_points`` of ``gtv validate linear`` (also with
    ``--target both``); ``ValueError`` for options of the other density."""
    return density_options(args, _LINEAR_POINTS, _LINEAR_MAX_POINTS)


def _cmd_validate(args: argparse.Namespace) -> int:
    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise _CliError(f"--out {out} exists and is not a directory")
    if args.target == "ntk":
        return run_validate_ntk(args)
    if args.dsm_target == "both":
        return _cmd_validate_targets(args)
    if args.json is not None:
        raise _CliError("--json is only used with --target both")
    density = _linear_density_options(args)
    from gtv.validation.linear.compare import compare_linear
    from gtv.validation.linear.comparison import LinearCompareConfig, LinearComparison
    from gtv.validation.linear.resume import ResumableConfigurations
    from gtv.validation.linear.validity import format_validity_table, validity_row

    configs = [
        LinearCompareConfig(
            eps=eps,
            P=P,
            **_linear_config_options(args),
            target=args.dsm_target,
            diagnostics=args.diagnostics,
            theory=args.theory,
            exact_below=args.exact_below,
            ladder_samples=args.ladder_samples,
            ladder_members=args.ladder_members,
            n_theory_members=args.theory_members,
            theory_samples=args.theory_samples,
            **density,
        )
        for eps in args.eps
        for P in args.P
    ]
    rows = []
    suffix = "_exact" if args.dsm_target == "exact" else ""
    stems = [out / f"linear_eps{cfg.eps:g}_P{cfg.P}{suffix}" for cfg in configs]
    runs = ResumableConfigurations(  # resumes an interrupted run (docs/reliability.md)
        out / f"linear{suffix}.partial", configs, stems, LinearComparison.load
    )
    for n, stem in enumerate(stems):
        result, saved = runs.result(n, lambda c: compare_linear(c, progress=not args.no_progress))
        print(result.format_table())
        paths = [*saved, *result.plot(stem, formats=args.formats)]
        t = result.meta["timings"]
        print("timings [s]: " + ", ".join(f"{k[:-2]} {v:.2f}" for k, v in t.items()))
        for p in paths:
            print(p)
        print()
        rows.append(validity_row(result))
    runs.finish()
    print(
        f"validity of the {args.theory.replace('_', '-')} theory (Var D^ ratios over query points "
        "with Var > 1e-4)"
    )
    print(format_validity_table(rows))
    return 0


def _cmd_validate_targets(args: argparse.Namespace) -> int:
    """``gtv validate linear --target both``: noisy vs exact target, paired."""
    import json

    from gtv.validation.linear.resume import ResumableConfigurations
    from gtv.validation.linear.target_noise import (
        TargetNoiseComparison,
        TargetNoiseConfig,
        compare_targets,
        format_target_noise_summary,
    )

    density = _linear_density_options(args)
    configs = [
        TargetNoiseConfig(eps=eps, P=P, **_linear_config_options(args), **density)
        for eps in args.eps
        for P in args.P
    ]
    stems = [args.out / f"target_noise_eps{cfg.eps:g}_P{cfg.P}" for cfg in configs]
    runs = ResumableConfigurations(  # resumes an interrupted run (docs/reliability.md)
        args.out / "target_noise.partial", configs, stems, TargetNoiseComparison.load
    )
    results = []
    for n in range(len(configs)):
        result, saved = runs.result(n, lambda c: compare_targets(c, progress=not args.no_progress))
        print(result.format_table())
        t = result.meta["timings"]
        print("timings [s]: " + ", ".join(f"{k[:-2]} {v:.2f}" for k, v in t.items()))
        for p in saved:
            print(p)
        print()
        results.append(result)
    runs.finish()
    print(format_target_noise_summary(results))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([r.summary() for r in results], indent=1))
        print(args.json)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gtv`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    tune_allocator()  # freed large arrays reused, not page-faulted in again (numerics/allocator)
    handlers = {
        "env": _cmd_env,
        "figure": _cmd_figure,
        "validate": _cmd_validate,
        "serial": run_serial,
        "memorization": run_memorization,
        "validity-map": run_validity_map,
        "sweep": run_sweep_command,
    }
    try:
        check_cli_budget(args)  # sizes and output folders before any work (docs/reliability.md)
        check_cli_outputs(args)
        return handlers[args.command](args)
    except SystemError as exc:  # Ctrl-C inside a numba kernel arrives wrapped in SystemError
        if isinstance(exc.__cause__ or exc.__context__, KeyboardInterrupt):
            sys.stderr.write("gtv: interrupted\n")
            return 130
        raise
    except (_CliError, ValueError, TypeError, OSError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        sys.stderr.write(f"gtv: error: {msg}\n")
        return 1
    except (MemoryError, OverflowError) as exc:  # a last resort: the budget checks come first
        msg = str(exc).splitlines()[0] if str(exc) else "no detail"
        sys.stderr.write(f"gtv: error: {type(exc).__name__}: {msg}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("gtv: interrupted\n")
        return 130


def run() -> None:
    """The ``gtv`` console script: :func:`main`, then a fast exit.

    Once a command has finished, the interpreter's own shutdown (freeing every module, numba's
    compiled code and the heap) takes 0.36-0.48 s on the 2-core test machine (measured after
    ``gtv figure 2``), a tenth of that command. So the exit handlers registered with
    :mod:`atexit` (Dask, multiprocessing, logging, weakref finalizers) run here and the process
    ends with ``os._exit`` and :func:`main`'s status. Files are written and closed by the commands
    themselves (atomically, docs/reliability.md). While another non-daemon thread is alive, or
    where CPython's ``atexit._run_exitfuncs`` is missing, the normal shutdown is kept. (``python
    -m gtv.validation.cli`` runs :func:`main` with the normal shutdown.)
    """
    status = main()
    _flush()
    run_exit = getattr(atexit, "_run_exitfuncs", None)
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if run_exit is None or others:
        sys.exit(status)
    run_exit()
    _flush()
    os._exit(status)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing left to write to
            pass


if __name__ == "__main__":  # python -m gtv.validation.cli: the normal shutdown (runpy-safe)
    sys.exit(main())
