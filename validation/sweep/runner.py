"""Running a sweep: serial, local processes or a Dask cluster, resumable, nothing lost.

Each pending grid point becomes one :class:`Task` -- the model class, the point's settings, its
named random stream and what to record -- run by :func:`run_task` wherever the executor puts it.
Workers only compute; the client (this process) is the only writer of the store, so a worker
that dies loses at most its current task, which the executor (or the next run) repeats. Because
every task draws from its own stream (:meth:`gtv.validation.sweep.spec.SweepSpec.task_seed`) and
the kernels give the same numbers for any thread count, the store is bit-identical whichever
executor ran it, in whatever order, with whatever interruptions (tests/validation/sweep).

Executors (``executor=``):

* ``"serial"`` -- in this process, one task after the other (all threads for each task);
* ``"processes"`` (default) -- a pool of ``workers`` spawned processes (default: one per core),
  numba and BLAS pinned to one thread in each;
* ``"dask"`` -- a Dask distributed cluster: ``cluster="local:N"`` starts a ``LocalCluster`` of
  ``N`` one-thread worker processes, ``scheduler="tcp://HOST:PORT"`` joins a running one
  (docs/sweeps.md has a SLURM recipe with dask-jobqueue).
"""

from __future__ import annotations

import os
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from gtv.validation.sweep.models import model_class
from gtv.validation.sweep.spec import SweepSpec
from gtv.validation.sweep.store import SweepStore

__all__ = [
    "EXECUTORS",
    "SweepReport",
    "Task",
    "check_executor_options",
    "run_sweep",
    "run_task",
]

EXECUTORS = ("serial", "processes", "dask")
#: Local worker processes allowed per core (each holds an interpreter, numba and its task).
MAX_WORKERS_PER_CORE = 8


@dataclass(frozen=True)
class Task:
    """One grid point: everything a worker needs (picklable, no reference to the store)."""

    index: tuple[int, ...]
    model: str
    settings: dict
    seed: np.random.SeedSequence
    record: tuple[str, ...]


def run_task(task: Task, pin_threads: bool = False) -> tuple:
    """Run ``task``; ``(index, "done", arrays, seconds)`` or ``(index, "failed", message, s)``.

    ``pin_threads`` limits numba and BLAS to one thread (a worker among many on one machine).
    An exception inside the task is returned as its one-line message, never raised, so one bad
    grid point cannot stop the sweep.
    """
    t0 = time.perf_counter()
    try:
        mc = model_class(task.model)
        point = mc.build(task.settings)
        if pin_threads:
            import numba
            from threadpoolctl import threadpool_limits

            numba.set_num_threads(1)
            with threadpool_limits(1):
                arrays = mc.run(point, task.seed, task.record)
        else:
            arrays = mc.run(point, task.seed, task.record)
        for name, a in arrays.items():
            if not np.all(np.isfinite(a)):
                raise FloatingPointError(f"{name} has non-finite values")
        return task.index, "done", arrays, time.perf_counter() - t0
    except Exception as err:  # reported in the store; the rest of the sweep continues
        last = traceback.extract_tb(err.__traceback__)[-1:]
        where = f" ({Path(last[0].filename).name}:{last[0].lineno})" if last else ""
        msg = f"{type(err).__name__}: {err}{where}".replace("\n", " ")
        return task.index, "failed", msg, time.perf_counter() - t0


def _pin_environment() -> None:  # initializer of the local process pool
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"


@dataclass
class SweepReport:
    """What a run did: tasks run now, skipped (already done), failed (with their errors)."""

    store: Path
    n_tasks: int
    ran: int = 0
    skipped: int = 0
    recomputed_corrupt: int = 0
    failures: dict = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "store": str(self.store),
            "n_tasks": self.n_tasks,
            "ran": self.ran,
            "skipped": self.skipped,
            "recomputed_corrupt": self.recomputed_corrupt,
            "failed": len(self.failures),
            "failures": {"_".join(map(str, k)): v for k, v in self.failures.items()},
            "seconds": round(self.seconds, 3),
        }


def check_executor_options(executor: object, workers: object, cluster: object, scheduler: object):
    """``ValueError`` naming the option unless the executor options are valid together."""
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {EXECUTORS}, got {executor!r}")
    most = MAX_WORKERS_PER_CORE * (os.cpu_count() or 1)
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= most
    ):
        raise ValueError(f"workers must be an integer in [1, {most}] (8 per core), got {workers!r}")
    if executor != "dask" and (cluster is not None or scheduler is not None):
        raise ValueError("cluster/scheduler need executor='dask'")
    if executor == "dask":
        if (cluster is None) == (scheduler is None):
            raise ValueError("executor='dask' needs exactly one of cluster='local:N' or scheduler")
        if cluster is not None:
            n = str(cluster).removeprefix("local:")
            if not str(cluster).startswith("local:") or not n.isdigit() or not 1 <= int(n) <= most:
                raise ValueError(f"cluster must be 'local:N', 1 <= N <= {most}, got {cluster!r}")
        if scheduler is not None and not str(scheduler).startswith(
            ("tcp://", "tls://", "inproc://")
        ):
            raise ValueError(
                f"scheduler must be an address like tcp://HOST:PORT, got {scheduler!r}"
            )


def run_sweep(
    spec: SweepSpec,
    store: str | Path,
    *,
    executor: str = "processes",
    workers: int | None = None,
    cluster: str | None = None,
    scheduler: str | None = None,
    force: bool = False,
    progress: bool = False,
    timeout: float = 10.0,
) -> SweepReport:
    """Run every unfinished task of ``spec`` into ``store`` (module docstring).

    Parameters
    ----------
    spec : SweepSpec
    store : path
        The zarr store (created if absent). A store of another spec is refused unless ``force``.
    executor : {"serial", "processes", "dask"}, default "processes"
    workers : int, optional
        Local worker processes (default: one per core).
    cluster : str, optional
        ``"local:N"``: a Dask ``LocalCluster`` of ``N`` worker processes (``executor="dask"``).
    scheduler : str, optional
        Address of a running Dask scheduler (``executor="dask"``).
    force : bool, default False
        Replace a store written by another spec.
    progress : bool, default False
        A progress bar with done / running / failed counts and an ETA.
    timeout : float, default 10
        Seconds to wait for a Dask scheduler before giving up (one ``ValueError``).

    Returns
    -------
    SweepReport
        Failed tasks are recorded in the store and listed here; the others all finished.
    """
    if not isinstance(spec, SweepSpec):
        raise TypeError("spec must be a SweepSpec (gtv.validation.sweep.load_spec reads TOML)")
    check_executor_options(executor, workers, cluster, scheduler)
    t0 = time.perf_counter()
    st = SweepStore.create(store, spec, force=force)
    report = SweepReport(st.path, spec.n_tasks)
    corrupt = st.verify()
    for index in corrupt:
        st.forget(index)
    if corrupt:
        warnings.warn(
            f"store {str(st.path)!r}: {len(corrupt)} finished task(s) failed their checksum "
            "and are recomputed", stacklevel=2,
        )  # fmt: skip
    report.recomputed_corrupt = len(corrupt)
    status = st.sync_status()
    tasks = [
        Task(ix, spec.model, spec.settings(ix), spec.task_seed(ix), spec.record)
        for ix in spec.indices()
        if status[ix] != 1
    ]
    report.skipped = spec.n_tasks - len(tasks)
    bar = tqdm(total=spec.n_tasks, initial=report.skipped, desc="sweep", disable=not progress)

    slots = [1 if executor == "serial" else (workers or os.cpu_count() or 1)]

    def collect(result: tuple) -> None:
        index, state, payload, seconds = result
        if state == "done":
            st.write_task(index, payload, seconds)
            report.failures.pop(index, None)
        else:
            st.write_failure(index, payload)
            report.failures[index] = payload
        report.ran += 1
        left = len(tasks) - report.ran
        bar.update()
        bar.set_postfix(running=min(slots[0], left), queued=max(left - slots[0], 0),
                        failed=len(report.failures))  # fmt: skip

    if tasks:
        if executor == "serial":
            for task in tasks:
                collect(run_task(task))
        elif executor == "processes":
            _run_processes(tasks, workers or os.cpu_count() or 1, collect)
        else:
            _run_dask(tasks, cluster, scheduler, timeout, collect, slots)
    bar.close()
    report.seconds = time.perf_counter() - t0
    return report


def _run_processes(tasks: list[Task], workers: int, collect) -> None:
    """A spawned process pool; a pool broken by a dead worker is restarted for what is left."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    left = {t.index: t for t in tasks}
    for _attempt in range(4):
        if not left:
            return
        try:
            with ProcessPoolExecutor(
                min(workers, len(left)), mp_context=mp.get_context("spawn"),
                initializer=_pin_environment,
            ) as pool:  # fmt: skip
                futures = [pool.submit(run_task, t, True) for t in left.values()]
                for fut in as_completed(futures):
                    result = fut.result()
                    collect(result)
                    left.pop(result[0], None)
        except BrokenProcessPool:
            continue
    if left:
        raise RuntimeError(f"{len(left)} task(s) lost: the worker pool broke four times")


def _task_key(task: Task) -> str:
    """A unique Dask key that names the grid point (seen in the Dask dashboard)."""
    return f"gtv-sweep-{'_'.join(map(str, task.index))}-{os.urandom(4).hex()}"


def _run_dask(tasks: list[Task], cluster, scheduler, timeout: float, collect, slots) -> None:
    """Submit to a Dask cluster; the scheduler reruns the tasks of a worker that dies."""
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:  # pragma: no cover - distributed is a dependency
        raise ValueError("executor='dask' needs the 'distributed' package") from None
    local = None
    try:
        if cluster is not None:
            n = int(str(cluster).removeprefix("local:"))
            local = LocalCluster(
                n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                env={"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"},
            )  # fmt: skip
            client = Client(local)
        else:
            try:
                client = Client(scheduler, timeout=f"{timeout}s")
            except (OSError, TimeoutError) as err:
                raise ValueError(
                    f"scheduler {scheduler!r} is not reachable within {timeout:g} s ({err})"
                ) from None
        with client:
            slots[0] = max(1, len(client.scheduler_info().get("workers", {})))
            futures = [
                client.submit(run_task, t, True, pure=False, key=_task_key(t)) for t in tasks
            ]
            for fut in as_completed(futures):
                collect(fut.result())
    finally:
        if local is not None:
            local.close()
