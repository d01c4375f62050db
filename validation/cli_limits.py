"""Up-front limits of the ``gtv`` command line: sizes and output folders, before any work.

Every size option is turned into an estimate of the peak memory and of the elementary operations
it implies, and checked with :func:`gtv.numerics.checks.check_budget` (limits: half the physical
memory, :data:`gtv.numerics.checks.WORK_LIMIT` operations); every output option (``--out``,
``--json``, ``--cache``) is checked for writability with
:func:`gtv.numerics.checks.check_output_dir`. The estimates are deliberately coarse (a float64 is
8 bytes, a few arrays of the largest shape are alive at once); they only have to separate runs
that finish from runs that cannot (docs/reliability.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gtv.numerics.checks import check_budget, check_output_dir

__all__ = ["check_cli_budget", "check_cli_outputs"]

F8 = 8.0  # bytes per float64


def _size(args: argparse.Namespace, name: str, default: float = 1.0) -> float:
    """The option ``name`` as a float size (largest entry of a list; ``default`` if unset)."""
    v = getattr(args, name, None)
    if isinstance(v, (list, tuple)):
        v = max((x for x in v if isinstance(x, (int, float))), default=None)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return float(default)
    return float(v)


def _label(args: argparse.Namespace, names: list[str]) -> str:
    """``--models 1000 with --samples 10`` (unset options show their default as ``default``)."""
    parts = []
    for n in names:
        v = getattr(args, n, None)
        v = "default" if v is None else " ".join(map(str, v)) if isinstance(v, list) else v
        parts.append(f"--{n.replace('_', '-')} {v}")
    return " with ".join(parts)


def _check(args, names, what, n_bytes=0.0, n_ops=0.0) -> None:
    check_budget(_label(args, names), None, n_bytes=n_bytes, n_ops=n_ops, what=what)


def _check_boot_bins(args: argparse.Namespace, n_models: float) -> None:
    boot, bins = _size(args, "boot"), _size(args, "bins")
    _check(args, ["boot"], "the bootstrap", n_bytes=boot * n_models * F8, n_ops=boot * n_models)
    _check(args, ["bins"], "the histograms", n_bytes=3 * bins * n_models * F8)


def _figure(args: argparse.Namespace) -> None:
    if args.number == 1:
        g = _size(args, "grid")
        # 5 times, ~6 arrays of grid**2 each; the posterior over ~10^3 data points per cell
        _check(args, ["grid"], "the grid", n_bytes=30 * g * g * F8, n_ops=5e3 * g * g)
        return
    full = (100.0, 100_000.0)
    fast = (20.0, 10_000.0 if args.number == 2 else 5_000.0)
    n_def, s_def = fast if args.fast else full
    N, S = _size(args, "models", n_def), _size(args, "samples", s_def)
    D, F, panels = (1.0, 256.0, 15.0) if args.number == 2 else (2.0, 1024.0, 8.0)
    names = ["models", "samples"]
    if args.number == 3 and getattr(args, "density", "mc") == "transport":
        # scrambled-Sobol' start points: --points per model instead of --samples
        S = _size(args, "points", 4096.0 if args.fast else 65_536.0)
        names = ["models", "points"]
    # one panel's samples (N, S, D) plus start points and scratch; 30 Euler steps over F features
    _check(args, names, "one panel's samples", n_bytes=3 * N * S * D * F8)
    _check(args, names, "sampling", n_ops=panels * N * S * 30 * F * D)


def _validate(args: argparse.Namespace) -> None:
    N, S, steps = _size(args, "models"), _size(args, "samples"), _size(args, "steps")
    per_model = ["models", "samples"]
    if args.target in ("linear", "ntk"):
        # --samples (Monte Carlo) or --max-points (transport: every model's grid, its start
        # points, CDF and images); neither given: the defaults (linear: 20000 samples / 16384
        # points, ntk: 1000 / 4096)
        samples, points, max_points = (
            (20_000.0, 2048.0, 16_384.0) if args.target == "linear" else (1000.0, 512.0, 4096.0)
        )
        if getattr(args, "density", "transport") == "transport":
            S = max(_size(args, "max_points", max_points), _size(args, "points", points))
            per_model = ["models", "points", "max_points"]
        else:
            S = _size(args, "samples", samples)
    _check(args, per_model, "the samples", n_bytes=3 * N * S * F8)
    if args.target == "ntk":
        W, P = _size(args, "widths"), _size(args, "P")
        n_w = len(args.widths) + 1
        _check(args, ["models", "widths", "P"], "the network Jacobians", n_bytes=2 * N * W * P * F8)
        ops = n_w * len(args.taus) * N * S * steps * W
        _check(args, [*per_model, "steps", "widths"], "sampling", n_ops=ops)
        fp = _size(args, "fp_steps")
        _check(args, ["fp_steps"], "the Fokker-Planck solver", n_ops=fp * 1e5)
        nt, nh = args.theory_nodes
        _check(args, ["theory_nodes"], "the theory quadrature", n_bytes=64.0 * nt * nh * P * F8)
    else:
        F = _size(args, "n_space") * _size(args, "n_time")
        P = _size(args, "P")
        configs = len(args.eps) * len(args.P)
        _check(args, ["n_space", "n_time"], "the feature covariances", n_bytes=4 * F * F * F8)
        _check(args, ["models", "n_space", "n_time"], "the weights", n_bytes=3 * N * F * F8)
        _check(args, ["models", "P"], "training", n_ops=configs * N * P * F * F)
        _check(args, [*per_model, "steps"], "sampling", n_ops=configs * N * S * steps * F)
    _check_boot_bins(args, N)


def _serial(args: argparse.Namespace) -> None:
    h = _size(args, "h", 0.04)
    cells = (8.0 / h) ** 2  # a 2-D grid of spacing h over [-4, 4]^2 (1-D grids are smaller)
    steps = _size(args, "steps", 100.0)
    _check(args, ["h"], "the grid", n_bytes=8 * cells * F8)
    _check(args, ["h", "steps"], "the serial steps", n_ops=cells * steps * 100)
    if args.experiment == "learned":
        N, pairs = _size(args, "models"), _size(args, "pairs_per_step")
        F = _size(args, "n_space") ** 2
        kp = _size(args, "kernel_pairs")
        _check(args, ["models", "pairs_per_step"], "the training pairs", n_bytes=4 * N * pairs * F8)
        _check(args, ["kernel_pairs"], "the kernel matrices", n_bytes=4 * kp * kp * steps * F8)
        _check(args, ["n_space"], "the features", n_bytes=4 * F * F * F8)
        iters = _size(args, "stationary_iters") * _size(args, "family_T")
        _check(args, ["stationary_iters", "family_T"], "the iterations", n_ops=iters * cells * 100)
        _check_boot_bins(args, N)


def _memorization(args: argparse.Namespace) -> None:
    K = _size(args, "K")
    D = _size(args, "dims", _size(args, "dim", 2.0))
    steps = _size(args, "steps", 30.0)
    dim_name = "dims" if args.action == "collapse" else "dim"
    _check(args, ["K", dim_name], "the memories", n_bytes=4 * K * D * F8)
    if args.action == "collapse":
        _check(args, ["K", "dims"], "the pairwise distances", n_bytes=K * K * F8)
        return
    n_train, width = _size(args, "n_train"), _size(args, "width")
    # product features exist only for linear models, but an absurd size is refused for any
    # model (it is a mistake either way, and the error names it before anything runs)
    F = _size(args, "n_space", 8.0) ** min(D, 8.0) * _size(args, "n_time", 3.0)
    _check(args, ["n_space", "n_time"], "the linear features", n_bytes=4 * F * F * F8)
    _check(args, ["n_train", "width"], "training data", n_bytes=4 * n_train * width * F8)
    train_ops = n_train * width * D * _size(args, "train_steps")
    _check(args, ["n_train", "width", "train_steps"], "training", n_ops=train_ops)
    if args.action == "curve":
        N, S = _size(args, "n_models"), _size(args, "samples")
        _check(args, ["n_models", "samples"], "the samples", n_bytes=3 * N * S * D * F8)
        _check(args, ["n_mc"], "the Monte Carlo points", n_bytes=4 * _size(args, "n_mc") * D * F8)
        ops = len(args.K) * N * S * steps * K * D
        _check(args, ["n_models", "samples", "steps", "K"], "sampling", n_ops=ops)
    else:
        starts = _size(args, "starts")
        _check(args, ["starts"], "the attractor search", n_bytes=4 * starts * D * F8)
        _check(args, ["starts", "steps", "K"], "the search", n_ops=starts * steps * K * D * 100)


def _validity_map(args: argparse.Namespace) -> None:
    N = _size(args, "models")
    per_model = ["models", "samples"]
    if getattr(args, "density", "transport") == "transport":
        # every model's grid (--max-points; default 16384, or --points if larger)
        S = max(_size(args, "max_points", 16_384.0), _size(args, "points", 2048.0))
        per_model = ["models", "points", "max_points"]
    else:
        S = _size(args, "samples", 2000.0)
    F = _size(args, "n_space") * _size(args, "n_time")
    ratios = [r for r in args.f_over_p if isinstance(r, (int, float)) and r > 0]
    P = F / min(ratios, default=1.0)
    configs = len(args.eps) * len(args.f_over_p)
    _check(args, per_model, "the samples", n_bytes=3 * N * S * F8)
    _check(args, ["n_space", "n_time"], "the feature covariances", n_bytes=4 * F * F * F8)
    _check(args, ["models", "n_space", "n_time"], "the weights", n_bytes=3 * N * F * F8)
    _check(
        args, ["models", "n_space", "n_time", "f_over_p"], "training", n_ops=configs * N * P * F * F
    )
    _check(args, per_model, "sampling", n_ops=configs * N * S * 30 * F)


def check_cli_budget(args: argparse.Namespace) -> None:
    """``ValueError`` naming the option(s) when the sizes of a ``gtv`` command imply more memory
    or operations than the limits of :func:`gtv.numerics.checks.check_budget`."""
    check = {
        "figure": _figure,
        "validate": _validate,
        "serial": _serial,
        "memorization": _memorization,
        "validity-map": _validity_map,
    }.get(args.command)
    if check is not None:
        check(args)


def check_cli_outputs(args: argparse.Namespace) -> None:
    """Create and test-write every output folder of a command (``--out``, ``--cache`` and the
    folder of ``--json``) before it starts; ``ValueError`` naming the option otherwise."""
    if getattr(args, "out", None) is not None:
        check_output_dir(args.out, "--out")
    if getattr(args, "cache", None) is not None:
        check_output_dir(args.cache, "--cache")
    if isinstance(getattr(args, "json", None), Path):  # (elsewhere --json is a print switch)
        if args.json.exists() and args.json.is_dir():
            raise ValueError(f"--json {args.json}: is a directory, expected a file name")
        check_output_dir(args.json.parent, "--json")
