"""``gtv validate ntk``: its options (with their defaults) and its handler (``gtv --help``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from gtv.validation.cli_density import add_density_arguments, exact_below_arg

__all__ = ["NTK_DEFAULTS", "add_ntk_parser", "run_validate_ntk"]


#: Defaults of ``gtv validate ntk`` (= NTKCompareConfig's; tests/validation/ntk/test_compare.py).
NTK_DEFAULTS = {
    "eps": 1e-2,
    "P": 256,
    "activation": "erf",
    "widths": (256, 1024, 2048),
    "n_models": 32,
    "taus": (3.0, 10.0, 30.0, 100.0, 300.0),
    "lr_fraction": 0.5,
    "n_samples": 1000,
    "n_steps": 30,
    "query_x": (-1.2, -1.0, -0.5, 0.0, 0.5, 1.0),
    "query_t": (0.02, 0.1, 0.4),
    "n_bins": 80,
    "gap_distance": 0.25,
    "n_boot": 1000,
    "theory_n_t": 10,
    "theory_n_hermite": 10,
    "fp_steps": 300,
    "theory": "first-order",
    "exact_below": 0.0,
    "centre": True,
    "seed": 0,
    "density": "transport",
    "n_points": 512,
    "max_points": 4096,
}

#: ``--theory`` choices (= ``gtv.validation.ntk.config.THEORIES``; the same test checks it).
THEORIES = ("first-order", "finite-p", "occupancy-field", "stratified-field")


def add_ntk_parser(vsub, fmt, formats: Callable, positive_int: Callable) -> None:
    """``gtv validate ntk``: trained two-layer networks vs the lazy infinite-width theory.

    The defaults are those of :class:`gtv.validation.ntk.compare.NTKCompareConfig` (written out here
    so that building the parser imports no numerics; a test checks that they agree).
    """
    d = argparse.Namespace(**NTK_DEFAULTS)
    ntk = vsub.add_parser(
        "ntk",
        help="two-layer networks (NTK parameterization) on {-1, 0, 1} vs the lazy kernel theory",
        description="Train N finite-width two-layer networks per width by full-batch gradient "
        "descent on independent DSM draws (checkpoints at every tau = eta * steps), the "
        "infinite-width networks (kernel regression with the closed-form NTK) on the same "
        "triples, and the first-order (1/P) kernel theory; print, per tau, the denoiser mean "
        "and variance at query points with model-level bootstrap CIs, their relative errors vs "
        "width (against the infinite-width networks and against the theory), density distances, "
        "and the gap-mass curve vs tau (trained per width, infinite width, Gaussian-field "
        "ensemble, white-noise Fokker-Planck, p(x|eps), exact-Bayes PF-ODE) with, per tau, the "
        "field's and the infinite-width networks' mass by distance from the training data. Saves "
        "DIR/ntk_<activation>_eps<eps>_P<P>.{npz,json,png,pdf}. Finished chunks of models and "
        "sampling runs are saved to DIR/ntk_<activation>_eps<eps>_P<P>.partial.npz: an "
        "interrupted run started again with the same options continues where it stopped. Every "
        "per-model density (trained networks, infinite-width networks, field members, exact-Bayes "
        "PF-ODE) is by default transported (--density transport: no sampling noise, "
        "docs/math/transport.md); --density mc bins --samples Monte Carlo samples per model.",
        formatter_class=fmt,
    )
    ntk.add_argument("--eps", type=float, default=d.eps, help="training cutoff and sampling end")
    ntk.add_argument("--P", type=int, default=d.P, help="DSM triples per model")
    ntk.add_argument("--activation", default=d.activation, help="hidden activation: erf or relu")
    ntk.add_argument(
        "--widths",
        type=int,
        nargs="+",
        default=list(d.widths),
        help="network widths (even integers; the infinite width is always added)",
    )
    ntk.add_argument("--models", type=int, default=d.n_models, help="N models (>= 4)")
    ntk.add_argument(
        "--taus",
        type=float,
        nargs="+",
        default=list(d.taus),
        help="training times tau = eta * steps (> 0, increasing; rounded to whole steps)",
    )
    ntk.add_argument(
        "--lr-fraction",
        type=float,
        default=d.lr_fraction,
        help="learning rate eta as a fraction of the smallest stability limit 2P/lambda_max "
        "(over widths, models, the infinite-width and the population kernel)",
    )
    ntk.add_argument(
        "--learning-rate",
        type=float,
        default=None,
        help="explicit learning rate eta (overrides --lr-fraction; must be below the limit)",
    )
    add_density_arguments(
        ntk, positive_int, samples=d.n_samples, points=d.n_points, max_points=d.max_points,
        density_default=d.density,
    )  # fmt: skip
    ntk.add_argument(
        "--steps", type=int, default=d.n_steps, help="PF-ODE Euler steps (every sampler)"
    )
    ntk.add_argument(
        "--query-x",
        type=float,
        nargs="+",
        default=list(d.query_x),
        help="query points x of the denoiser tables",
    )
    ntk.add_argument(
        "--query-t",
        type=float,
        nargs="+",
        default=list(d.query_t),
        help="query times t of the denoiser tables (in [eps, T])",
    )
    ntk.add_argument("--bins", type=int, default=d.n_bins, help="histogram bins on [-2, 2]")
    ntk.add_argument(
        "--gap-distance",
        type=float,
        default=d.gap_distance,
        help="gap mass: fraction of samples farther than this from every training point",
    )
    ntk.add_argument("--boot", type=int, default=d.n_boot, help="bootstrap resamples (models)")
    ntk.add_argument(
        "--no-kernel-samples",
        action="store_true",
        help="do not sample the infinite-width networks (saves time)",
    )
    ntk.add_argument(
        "--theory-nodes",
        type=int,
        nargs=2,
        default=[d.theory_n_t, d.theory_n_hermite],
        metavar=("N_T", "N_HERMITE"),
        help="quadrature of the theory: Gauss-Legendre nodes in log t, Gauss-Hermite nodes",
    )
    ntk.add_argument(
        "--fp-steps", type=int, default=d.fp_steps, help="white-noise Fokker-Planck time steps"
    )
    ntk.add_argument(
        "--fp-half-width",
        type=float,
        default=None,
        help="Fokker-Planck domain [-h, h] (default: [-2, 2] extended to +-6 sigma_T; widen it "
        "if the solver reports mass at the boundary, e.g. for small P)",
    )
    ntk.add_argument(
        "--theory",
        choices=THEORIES,
        default=d.theory,
        help="kernel theory: first order in 1/P, the finite-P cavity equivalent, or the "
        "finite-P moments with the small-occupancy field (heavy triples exact) or its "
        "stratified form (light triples counted per (t, x) cell) as the field ensemble of [q]",
    )
    ntk.add_argument(
        "--exact-below",
        type=exact_below_arg,
        default=d.exact_below,
        metavar="T",
        help="with --theory occupancy-field or stratified-field: keep every node with t < T "
        "exact in each member (docs/math/finite_fp.md); 'auto': per tau, where the field's own "
        "gap and core mass stop moving on a ladder of T (no trained model); 0: none",
    )
    ntk.add_argument(
        "--centre",
        action=argparse.BooleanOptionalAction,
        default=d.centre,
        help="with --theory stratified-field: move the members onto the cavity mean",
    )
    ntk.add_argument("--seed", type=int, default=d.seed, help="random seed")
    ntk.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="directory for trained trajectories (reused, or resumed for later taus, by a "
        "later run with the same configuration)",
    )
    ntk.add_argument("--out", type=Path, default=Path("gtv-output"), help="output directory")
    ntk.add_argument("--formats", type=formats, default="png,pdf", help="comma-separated: png, pdf")
    ntk.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def run_validate_ntk(args: argparse.Namespace) -> int:
    """Handler of ``gtv validate ntk``."""
    from gtv.validation.cli_density import density_options

    density = density_options(args, NTK_DEFAULTS["n_points"], NTK_DEFAULTS["max_points"])
    from gtv.validation.ntk.compare import NTKCompareConfig, compare_ntk

    cfg = NTKCompareConfig(
        **density,
        eps=args.eps,
        P=args.P,
        activation=args.activation,
        widths=tuple(args.widths),
        n_models=args.models,
        taus=tuple(args.taus),
        lr_fraction=args.lr_fraction,
        learning_rate=args.learning_rate,
        n_samples=getattr(args, "samples", NTK_DEFAULTS["n_samples"]),
        n_steps=args.steps,
        query_x=tuple(args.query_x),
        query_t=tuple(args.query_t),
        n_bins=args.bins,
        gap_distance=args.gap_distance,
        n_boot=args.boot,
        sample_kernel=not args.no_kernel_samples,
        theory_n_t=args.theory_nodes[0],
        theory_n_hermite=args.theory_nodes[1],
        fp_steps=args.fp_steps,
        fp_half_width=args.fp_half_width,
        theory=args.theory,
        exact_below=args.exact_below,
        centre=args.centre,
        seed=args.seed,
    )
    stem = args.out / f"ntk_{cfg.activation}_eps{cfg.eps:g}_P{cfg.P}"
    partial = stem.with_name(stem.name + ".partial.npz")  # resume file (docs/reliability.md)
    result = compare_ntk(
        cfg, progress=not args.no_progress, cache_dir=args.cache, checkpoint=partial
    )
    print(result.format_table())
    paths = [*result.save(stem), *result.plot(stem, formats=args.formats)]
    t = result.meta["timings"]
    print("timings [s]: " + ", ".join(f"{k[:-2]} {v:.1f}" for k, v in t.items()))
    for p in paths:
        print(p)
    return 0
