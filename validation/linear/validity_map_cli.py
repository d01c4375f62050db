"""``gtv validity-map``: where each theory of linear ensembles holds (docs/math/finite_fp.md).

:func:`add_validity_map_parser` adds the subcommand (building it imports no numerics);
:func:`run_validity_map` runs :func:`gtv.validation.linear.validity_map.validity_map`, prints
the table, writes ``DIR/validity_map.{npz,png,pdf}`` and, with ``--json FILE``, the rows as JSON.
The density options (``--density``, default transport; ``--samples`` with mc; ``--points``,
``--max-points`` with transport) are those of ``gtv validate linear``
(:func:`gtv.validation.cli_density.density_options`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from gtv.validation.cli_density import add_density_arguments, exact_below_arg

__all__ = [
    "THEORY_CHOICES", "VALIDITY_MAP_DEFAULTS", "add_validity_map_parser", "run_validity_map",
]  # fmt: skip

#: The defaults of ``gtv validity-map`` (= ValidityMapConfig's; a test checks that they agree).
VALIDITY_MAP_DEFAULTS = {
    "eps": (1e-4, 1e-3, 1e-2),
    "f_over_p": ("1/64", "1/16", "1/4", "1", "4"),
    "n_space": 16,
    "n_time": 16,
    "models": 200,
    "density": "transport",
    "samples": 2000,
    "points": 2048,
    "max_points": 16_384,
    "theories": (
        "paper",
        "first_order",
        "second_order",
        "cavity",
        "cavity_field",
        "occupancy_field",
    ),
    "seed": 0,
    "moment_members": 10_000,
}

#: Every theory ``--theories`` accepts (= the map's THEORY_NAMES; a test checks that they agree).
THEORY_CHOICES = (
    *VALIDITY_MAP_DEFAULTS["theories"], "stratified_field", "consistent_field", "consistent",
)  # fmt: skip


def _ratio(value: str) -> float:
    try:
        if "/" in value:
            a, b = value.split("/")
            r = float(a) / float(b)
        else:
            r = float(value)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(
            f"F/P must be a number or a fraction a/b, got {value!r}"
        ) from None
    if not (r > 0 and r < float("inf")):
        raise argparse.ArgumentTypeError(f"F/P must be > 0, got {value!r}")
    return r


def add_validity_map_parser(sub, fmt, positive_int: Callable, positive_float: Callable, formats):
    """Add ``validity-map`` to the ``gtv`` subcommands."""
    d = VALIDITY_MAP_DEFAULTS
    p = sub.add_parser(
        "validity-map",
        help="map TV/floor and gap-mass z of every linear-ensemble theory over eps x F/P",
        description="Train one ensemble per (eps, F/P) cell and score each theory against it: "
        "'paper' (white-noise Fokker-Planck of the first-order theory), 'first_order', "
        "'second_order', 'cavity' (Gaussian fields with those moments), 'cavity_field' (the "
        "non-Gaussian cavity field), 'occupancy_field' (heavy triples exact) and, on request, "
        "'stratified_field' (its light part per (t, x) cell), 'consistent_field' (each "
        "member's heavy set closed under its own leverage) and 'consistent' (that field scored "
        "with its own moments, Monte Carlo over --moment-members of its members). Every "
        "per-model density (trained models and the members of every field theory) is by "
        "default transported (--density transport: no sampling noise, "
        "docs/math/transport.md); --density mc bins --samples Monte Carlo samples per model "
        "instead ('paper' is a Fokker-Planck density either way). Prints a table; writes "
        "DIR/validity_map.npz (reload with gtv.validation.linear.ValidityMap.load) and a "
        "heat map DIR/validity_map.{png,pdf}.",
        formatter_class=fmt,
    )
    p.add_argument(
        "--eps", type=positive_float("--eps"), nargs="+", default=list(d["eps"]),
        help="smallest training times",
    )  # fmt: skip
    p.add_argument(
        "--f-over-p", type=_ratio, nargs="+", default=[_ratio(r) for r in d["f_over_p"]],
        metavar="F/P", help="feature-to-sample ratios (numbers or fractions a/b); P = F/(F/P)",
    )  # fmt: skip
    p.add_argument("--n-space", type=positive_int("--n-space"), default=d["n_space"],
                   help="spatial Gaussian features")  # fmt: skip
    p.add_argument("--n-time", type=positive_int("--n-time"), default=d["n_time"],
                   help="time Gaussian features")  # fmt: skip
    p.add_argument("--models", type=positive_int("--models", 4), default=d["models"],
                   help="trained models per cell (and members per theory field)")  # fmt: skip
    add_density_arguments(
        p, positive_int, samples=d["samples"], points=d["points"], max_points=d["max_points"],
        density_default=d["density"],
    )  # fmt: skip
    p.add_argument("--theories", nargs="+", choices=THEORY_CHOICES, default=list(d["theories"]),
                   help="theories to score")  # fmt: skip
    p.add_argument("--exact-below", type=exact_below_arg, default=0.0, metavar="T",
                   help="occupancy_field, stratified_field, consistent_field, consistent: keep "
                   "every triple with t < T exact in each member (docs/math/finite_fp.md, '[q] "
                   "with the early triples exact'); 0: none; 'auto': per cell, where the field's "
                   "own gap and core mass stop moving ('Choosing t_c from the field "
                   "alone')")  # fmt: skip
    p.add_argument("--moment-members", type=positive_int("--moment-members", 40),
                   default=d["moment_members"], metavar="K",
                   help="consistent: members of the field whose mean and covariance of W are its "
                   "moments (Monte Carlo; the variance score's prediction)")  # fmt: skip
    p.add_argument("--seed", type=positive_int("--seed", 0), default=d["seed"], help="seed")
    p.add_argument("--out", type=Path, default=Path("gtv-output"), help="output directory")
    p.add_argument("--json", type=Path, default=None, metavar="FILE",
                   help="write the printed rows as JSON")  # fmt: skip
    p.add_argument("--formats", type=formats, default="png,pdf", help="comma-separated: png, pdf")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def run_validity_map(args: argparse.Namespace) -> int:
    """Run ``gtv validity-map`` (module docstring)."""
    from gtv.validation.cli_density import density_options
    from gtv.validation.linear.validity_map import ValidityMapConfig, validity_map

    d = VALIDITY_MAP_DEFAULTS
    density = density_options(args, d["points"], d["max_points"])
    config = ValidityMapConfig(
        eps_values=tuple(args.eps),
        f_over_p=tuple(args.f_over_p),
        n_space=args.n_space,
        n_time=args.n_time,
        n_models=args.models,
        n_samples=getattr(args, "samples", d["samples"]),
        theories=tuple(args.theories),
        seed=args.seed,
        exact_below=args.exact_below,
        n_moment_members=args.moment_members,
        **density,
    )
    result = validity_map(config, progress=not args.no_progress)
    print(result.format_table())
    args.out.mkdir(parents=True, exist_ok=True)
    print(result.save(args.out / "validity_map"))
    for path in result.plot(args.out / "validity_map", formats=args.formats):
        print(path)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(result.to_json())
        print(args.json)
    return 0
