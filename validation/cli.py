"""The ``gtv`` command line.

``gtv --help`` lists the commands; ``gtv COMMAND --help`` explains every option with its default.
Bad arguments print one line ``gtv: error: ...`` and exit with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]


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


def _build_parser() -> _Parser:
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
        "(DIR/figureN.npz, reloadable) and draw it (DIR/figureN.png, DIR/figureN.pdf).",
        formatter_class=fmt,
    )
    fig.add_argument("number", type=int, choices=[1], help="figure number: 1 = proxy-score variance")
    fig.add_argument("--out", type=Path, default=Path("gtv-output"), help="output directory")
    fig.add_argument(
        "--grid",
        type=_positive_int("--grid", 2),
        default=401,
        help="figure 1: grid points per axis on [-2, 2]^2",
    )
    fig.add_argument(
        "--formats", type=_formats, default="png,pdf", help="comma-separated: png, pdf"
    )
    fig.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def _cmd_env(args: argparse.Namespace) -> int:
    import matplotlib
    import numba
    import numpy
    import scipy
    import sympy

    from numerics.posterior import posterior_stats

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


def _cmd_figure(args: argparse.Namespace) -> int:
    from .figures import compute_figure1

    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise _CliError(f"--out {out} exists and is not a directory")
    if args.number == 1:
        result = compute_figure1(n_grid=args.grid, progress=not args.no_progress)
        data_path = result.save(out / "figure1.npz")
        paths = result.plot(out, formats=args.formats)
    else:  # pragma: no cover - argparse restricts the choices
        raise _CliError(f"unknown figure {args.number}")
    for p in [data_path, *paths]:
        print(p)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gtv`` console script; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    handlers = {"env": _cmd_env, "figure": _cmd_figure}
    try:
        return handlers[args.command](args)
    except (_CliError, ValueError, TypeError, OSError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        sys.stderr.write(f"gtv: error: {msg}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("gtv: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
