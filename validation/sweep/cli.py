"""``gtv sweep SPEC.toml`` (run a sweep) and ``gtv sweep status STORE`` (docs/sweeps.md)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["add_sweep_parser", "run_sweep_command"]


def add_sweep_parser(sub, fmt) -> None:
    """Add ``gtv sweep`` to the subparsers ``sub`` of ``gtv``."""
    p = sub.add_parser(
        "sweep",
        help="run a sweep spec (TOML) into a zarr store, or show a store's status",
        description="`gtv sweep SPEC.toml` runs every grid point of the spec as one task "
        "(serial, local processes or a Dask cluster) into a labelled zarr store that "
        "xarray.open_zarr reads; rerunning skips finished tasks. `gtv sweep status STORE` "
        "counts done / failed / pending tasks (docs/sweeps.md).",
        formatter_class=fmt,
    )
    p.add_argument("target", metavar="SPEC.toml | status", help="the spec to run, or 'status'")
    p.add_argument("store_arg", nargs="?", metavar="STORE", help="with 'status': the store")
    p.add_argument(
        "--store", type=Path, default=None,
        help="zarr store to write (default: the spec's name with .zarr, next to the spec)",
    )  # fmt: skip
    p.add_argument(
        "--executor", choices=("serial", "processes", "dask"), default="processes",
        help="where tasks run: this process, local worker processes (one per core, one thread "
        "each), or Dask (with --cluster or --scheduler)",
    )  # fmt: skip
    p.add_argument(
        "--workers", type=int, default=None,
        help="local worker processes (default: the number of cores)",
    )  # fmt: skip
    p.add_argument(
        "--cluster", default=None,
        help="'local:N' starts a Dask LocalCluster of N worker processes (implies --executor dask)",
    )  # fmt: skip
    p.add_argument(
        "--scheduler", default=None,
        help="address of a running Dask scheduler, tcp://HOST:PORT (implies --executor dask)",
    )  # fmt: skip
    p.add_argument(
        "--timeout", type=float, default=10.0,
        help="seconds to wait for --scheduler before giving up",
    )  # fmt: skip
    p.add_argument(
        "--force", action="store_true",
        help="replace a store that was written by another spec (its results are deleted)",
    )  # fmt: skip
    p.add_argument(
        "--verify", action="store_true",
        help="with 'status': also check every finished task's arrays against their checksum",
    )  # fmt: skip
    p.add_argument("--json", type=Path, default=None, help="also write the summary as JSON here")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _write_json(path: Path | None, payload: dict) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=1))
        print(path)


def _status(args: argparse.Namespace) -> int:
    from gtv.validation.sweep.models import model_class
    from gtv.validation.sweep.store import DONE, FAILED, PENDING, SweepStore

    if args.store_arg is None:
        raise ValueError("status needs the store: gtv sweep status STORE")
    store = SweepStore.open(args.store_arg)
    status = store.status()
    counts = {
        "done": int((status == DONE).sum()),
        "failed": int((status == FAILED).sum()),
        "pending": int((status == PENDING).sum()),
    }
    spec = store.spec
    # how densities are formed (fixed across a sweep; None for a class without the setting)
    density = getattr(model_class(spec.model).build(spec.settings(spec.indices()[0])),
                      "density", None)  # fmt: skip
    payload = {"store": str(store.path), "model": spec.model, "tasks": status.size,
               **counts, "axes": {n: list(v) for n, v in spec.axes.items()},
               "density": density}  # fmt: skip
    print(f"store {store.path}: model {spec.model}, {status.size} tasks over axes "
          + " x ".join(f"{n} ({len(v)})" for n, v in spec.axes.items())
          + ("" if density is None else f", density {density!r}"))  # fmt: skip
    print(f"  done {counts['done']}   failed {counts['failed']}   pending {counts['pending']}")
    failures = store.failures()
    for index, err in failures.items():
        print(f"  failed {_where(store.spec, index)}: {err}")
    payload["failures"] = {"_".join(map(str, k)): v for k, v in failures.items()}
    if args.verify:
        bad = store.verify()
        payload["corrupt"] = ["_".join(map(str, k)) for k in bad]
        print(f"  checksums: {len(bad)} corrupt finished task(s)"
              + "".join(f"\n  corrupt {_where(store.spec, k)}" for k in bad))  # fmt: skip
    _write_json(args.json, payload)
    return 0


def _where(spec, index) -> str:
    return ", ".join(f"{n}={v!r}" for n, v in spec.coordinates(index).items())


def run_sweep_command(args: argparse.Namespace) -> int:
    """Handler of ``gtv sweep``."""
    from gtv.numerics.checks import check_output_dir
    from gtv.validation.sweep.runner import check_executor_options, run_sweep
    from gtv.validation.sweep.spec import load_spec

    if args.target == "status":
        return _status(args)
    if args.store_arg is not None:
        raise ValueError(f"unexpected argument {args.store_arg!r}; the store is given by --store")
    executor = "dask" if (args.cluster or args.scheduler) else args.executor
    check_executor_options(executor, args.workers, args.cluster, args.scheduler)
    spec = load_spec(args.target)
    store = args.store or Path(args.target).with_suffix(".zarr")
    check_output_dir(Path(store).resolve().parent, "--store")
    report = run_sweep(
        spec, store, executor=executor, workers=args.workers, cluster=args.cluster,
        scheduler=args.scheduler, force=args.force, progress=not args.no_progress,
        timeout=args.timeout,
    )  # fmt: skip
    print(
        f"sweep {store}: {report.n_tasks} tasks, ran {report.ran}, skipped {report.skipped} "
        f"(already done), failed {len(report.failures)}, {report.seconds:.1f} s"
    )
    for index, err in report.failures.items():
        print(f"  failed {_where(spec, index)}: {err}")
    _write_json(args.json, report.to_dict())
    if report.failures:
        raise ValueError(f"{len(report.failures)} task(s) failed (listed above; rerun to retry)")
    return 0
