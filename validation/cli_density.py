"""The density options shared by ``gtv`` commands: ``--density``, ``--samples``, ``--points``,
``--max-points`` (docs/math/transport.md).

:func:`density_options` turns them into the configuration fields ``density``, ``n_points`` and
``max_points`` (:class:`gtv.validation.ensembles.DensityOptions`), refusing with one
``ValueError`` line an option of the other density. The parsers declare the four options with
``default=argparse.SUPPRESS`` so that an option given is told from one left at its default.
"""

from __future__ import annotations

import argparse

__all__ = ["density_options"]


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
