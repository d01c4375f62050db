"""The density options shared by ``gtv`` commands: ``--density``, ``--samples``, ``--points``,
``--max-points`` (docs/math/transport.md).

:func:`density_options` turns them into the configuration fields ``density``, ``n_points`` and
``max_points`` (:class:`gtv.validation.ensembles.DensityOptions`), refusing with one
``ValueError`` line an option of the other density. The parsers declare the four options with
``default=argparse.SUPPRESS`` so that an option given is told from one left at its default;
:func:`add_density_arguments` declares them so for the commands whose densities are 1-D
transported grids (``validate linear``, ``validate ntk``, ``validity-map``).
:func:`exact_below_arg` parses the occupancy fields' ``--exact-below`` (a time or ``auto``) for
``validate linear`` and ``validity-map``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

__all__ = ["add_density_arguments", "density_options", "exact_below_arg"]


def exact_below_arg(value: str) -> float | str:
    """``--exact-below``: ``auto`` or a finite time >= 0 (argparse type)."""
    if value == "auto":
        return value
    try:
        v = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--exact-below must be 'auto' or a number >= 0, got {value!r}"
        ) from None
    if not (0 <= v < float("inf")):
        raise argparse.ArgumentTypeError(
            f"--exact-below must be 'auto' or a finite number >= 0, got {value}"
        )
    return v


def add_density_arguments(
    parser: argparse.ArgumentParser,
    positive_int: Callable[..., Callable[[str], int]],
    *,
    samples: int,
    points: int,
    max_points: int,
    density_default: str = "transport",
) -> None:
    """Declare ``--density``, ``--samples``, ``--points`` and ``--max-points`` on ``parser``
    (``default=argparse.SUPPRESS``; the defaults named in the help are ``samples``, ``points``,
    ``max_points`` and ``density_default``, the text after "default:" of ``--density``).
    ``positive_int(name, low=1)`` makes the argparse type of an integer option."""
    parser.add_argument(
        "--density",
        choices=["transport", "mc"],
        default=argparse.SUPPRESS,
        help="how every per-model density is formed: transport = each model's PF-ODE map carried "
        "over a deterministic quantile grid of --points start points, refined where needed up to "
        "--max-points, and the Gaussian mass binned exactly (no sampling noise; "
        "docs/math/transport.md); mc = bin --samples random samples per model (default: "
        f"{density_default})",
    )
    parser.add_argument(
        "--samples",
        type=positive_int("--samples"),
        default=argparse.SUPPRESS,
        help=f"PF-ODE samples per model, only with --density mc (default: {samples})",
    )
    parser.add_argument(
        "--points",
        type=positive_int("--points", 4),
        default=argparse.SUPPRESS,
        help="start-grid points per model with --density transport, refined where a cell's chord "
        f"may misplace mass across a bin, up to --max-points (default: {points})",
    )
    parser.add_argument(
        "--max-points",
        type=positive_int("--max-points", 4),
        default=argparse.SUPPRESS,
        help="most grid points per model after refinement with --density transport (at least "
        f"--points; default: {max_points}, or --points if that is larger)",
    )


def density_options(args: argparse.Namespace, points: int, max_points: int) -> dict:
    """``{"density": "mc"}`` or ``{"density": "transport", "n_points", "max_points"}``.

    Parameters
    ----------
    args : argparse.Namespace
        With the optional attributes ``density`` (default ``"transport"``), ``samples``,
        ``points`` and ``max_points`` (absent when not given).
    points, max_points : int
        The defaults of ``--points`` and ``--max-points`` (``--max-points`` defaults to the
        larger of ``max_points`` and ``--points``).

    Raises
    ------
    ValueError
        For ``--samples`` with transport, ``--points``/``--max-points`` with ``--density mc``,
        or ``--max-points`` below ``--points``.
    """
    density = getattr(args, "density", "transport")
    given_points, given_max = getattr(args, "points", None), getattr(args, "max_points", None)
    if density == "transport" and hasattr(args, "samples"):
        raise ValueError("--samples is used with --density mc (transport: --points)")
    if density == "mc" and (given_points, given_max) != (None, None):
        raise ValueError(
            "--points and --max-points are used with --density transport (mc: --samples)"
        )
    if density == "mc":
        return {"density": "mc"}
    n_points = points if given_points is None else given_points
    if given_max is not None and given_max < n_points:
        raise ValueError(f"--max-points must be >= --points ({n_points}), got {given_max}")
    return {
        "density": "transport",
        "n_points": n_points,
        "max_points": max(max_points, n_points) if given_max is None else given_max,
    }
