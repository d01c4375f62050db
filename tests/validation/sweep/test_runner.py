"""Where a sweep runs does not change its numbers; interruptions and dead workers lose nothing.

The fault tests use real processes: a ``gtv sweep`` client killed with SIGKILL (its whole
process group, workers included) and rerun, and a worker of a real two-worker Dask
``LocalCluster`` killed by its PID in the middle of a sweep. Each compares the finished store
with an uninterrupted serial run bit for bit.
"""

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from gtv.validation.sweep import SweepSpec, run_sweep

from .conftest import arrays_of, small_spec

FIELDS = ("gap_mass", "density", "var_dhat", "mean_dhat", "status")


def assert_same(a_path, b_path, fields=FIELDS):
    a, b = arrays_of(a_path), arrays_of(b_path)
    for name in fields:
        assert np.array_equal(a[name], b[name]), name


def test_local_processes_equal_serial(tmp_path, reference_store):
    rep = run_sweep(small_spec(), tmp_path / "p.zarr", executor="processes", workers=2)
    assert rep.ran == 6 and not rep.failures
    assert_same(tmp_path / "p.zarr", reference_store)


def kernel_transport_spec() -> SweepSpec:
    """Two tiny kernel tasks with transported densities (the class's default)."""
    return SweepSpec.from_dict({
        "model": "kernel", "seed": 4, "record": ["gap_mass", "density", "var_dhat"],
        "fixed": {"n_models": 3, "n_samples": 100, "n_steps": 8, "n_bins": 12, "tau": 20.0,
                  "query_x": [0.5], "query_t": [0.1]},
        "axes": {"P": [8, 12]},
    })  # fmt: skip


KERNEL_FIELDS = ("gap_mass", "density", "transport_error", "var_dhat", "mean_dhat", "status")


@pytest.fixture(scope="module")
def kernel_reference(tmp_path_factory):
    path = tmp_path_factory.mktemp("kernel") / "serial.zarr"
    run_sweep(kernel_transport_spec(), path, executor="serial")
    return path


def test_kernel_transport_on_local_processes_equals_serial(tmp_path, kernel_reference):
    """The transported grid is deterministic: one-thread workers give the serial store."""
    rep = run_sweep(kernel_transport_spec(), tmp_path / "p.zarr", executor="processes", workers=2)
    assert rep.ran == 2 and not rep.failures
    assert_same(tmp_path / "p.zarr", kernel_reference, fields=KERNEL_FIELDS)
    assert np.all(arrays_of(kernel_reference)["transport_error"] > 0)


def _write_spec(path, spec):
    lines = [f'model = "{spec.model}"', f"seed = {spec.seed}", f"record = {list(spec.record)!r}"]
    lines += ["[fixed]"] + [f"{k} = {v!r}" for k, v in spec.fixed.items()]
    lines += ["[axes]"] + [f"{k} = {list(v)!r}" for k, v in spec.axes.items()]
    path.write_text("\n".join(lines).replace("'", '"') + "\n")


def _kill_after_first_task(cmd, store, timeout=240):
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    tasks = store / "gtv_tasks"
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if tasks.is_dir() and any(p.suffix == ".json" for p in tasks.iterdir()):
            break
        time.sleep(0.05)
    still_running = proc.poll() is None
    os.killpg(proc.pid, signal.SIGKILL)  # the client and any worker it started
    proc.wait(timeout=60)
    return still_running


def test_killed_client_rerun_runs_only_missing_tasks(tmp_path, reference_store):
    spec_path, store = tmp_path / "s.toml", tmp_path / "s.zarr"
    _write_spec(spec_path, small_spec())
    cmd = [sys.executable, "-m", "gtv.validation.cli", "sweep", str(spec_path), "--store",
           str(store), "--executor", "serial", "--no-progress"]  # fmt: skip
    assert _kill_after_first_task(cmd, store), "the sweep finished before it was killed"
    done_before = len(list((store / "gtv_tasks").glob("*.json")))
    assert 1 <= done_before < 6
    rep = run_sweep(small_spec(), store, executor="serial")
    assert rep.skipped == done_before and rep.ran == 6 - done_before
    assert_same(store, reference_store)


@pytest.mark.slow
def test_killed_dask_client_rerun_runs_only_missing_tasks(tmp_path, reference_store):
    spec_path, store = tmp_path / "s.toml", tmp_path / "s.zarr"
    _write_spec(spec_path, small_spec())
    cmd = [sys.executable, "-m", "gtv.validation.cli", "sweep", str(spec_path), "--store",
           str(store), "--cluster", "local:2", "--no-progress"]  # fmt: skip
    assert _kill_after_first_task(cmd, store), "the sweep finished before it was killed"
    done_before = len(list((store / "gtv_tasks").glob("*.json")))
    rep = run_sweep(small_spec(), store, executor="dask", cluster="local:2")
    assert rep.skipped == done_before and rep.ran == 6 - done_before
    assert_same(store, reference_store)


@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    yield cluster
    cluster.close()


@pytest.mark.slow
def test_dask_cluster_equals_serial(tmp_path, reference_store, dask_cluster):
    rep = run_sweep(small_spec(), tmp_path / "d.zarr", executor="dask",
                    scheduler=dask_cluster.scheduler_address)  # fmt: skip
    assert rep.ran == 6 and not rep.failures
    assert_same(tmp_path / "d.zarr", reference_store)


@pytest.mark.slow
def test_kernel_transport_on_a_dask_cluster_equals_serial(tmp_path, kernel_reference, dask_cluster):
    rep = run_sweep(kernel_transport_spec(), tmp_path / "d.zarr", executor="dask",
                    scheduler=dask_cluster.scheduler_address)  # fmt: skip
    assert rep.ran == 2 and not rep.failures
    assert_same(tmp_path / "d.zarr", kernel_reference, fields=KERNEL_FIELDS)


@pytest.mark.slow
def test_a_killed_dask_worker_loses_nothing(tmp_path, dask_cluster):
    """SIGKILL one of the two workers mid-sweep: the sweep finishes, equal to a serial run."""
    from distributed import Client

    spec = small_spec(eps=[0.01, 0.02], P=[8, 16, 32, 64], replicate=2)
    ref = tmp_path / "ref.zarr"
    run_sweep(spec, ref, executor="serial")
    store = tmp_path / "k.zarr"
    out = {}
    runner = threading.Thread(
        target=lambda: out.update(rep=run_sweep(
            spec, store, executor="dask", scheduler=dask_cluster.scheduler_address)),
    )  # fmt: skip
    runner.start()
    tasks = store / "gtv_tasks"
    while runner.is_alive() and not (tasks.is_dir() and any(tasks.glob("*.json"))):
        time.sleep(0.02)
    with Client(dask_cluster.scheduler_address) as client:
        pids = client.run(os.getpid)
    victim = sorted(pids.values())[0]
    os.kill(victim, signal.SIGKILL)
    killed_mid_sweep = runner.is_alive()
    runner.join(timeout=600)
    assert killed_mid_sweep, "the sweep finished before the worker was killed"
    rep = out["rep"]
    assert rep.ran == spec.n_tasks and not rep.failures
    assert_same(store, ref)


def test_unreachable_scheduler_is_one_error_within_the_timeout(tmp_path):
    t0 = time.monotonic()
    with pytest.raises(ValueError, match="not reachable within 1 s"):
        run_sweep(small_spec(P=[8]), tmp_path / "u.zarr", executor="dask",
                  scheduler="tcp://127.0.0.1:9", timeout=1.0)  # fmt: skip
    assert time.monotonic() - t0 < 30


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"executor": "threads"}, "executor must be one of"),
        ({"workers": 0}, r"workers must be an integer in \[1, "),
        ({"workers": 10**12}, r"workers must be an integer in \[1, "),
        ({"executor": "dask", "cluster": "local:100000"}, "cluster must be 'local:N'"),
        ({"executor": "dask"}, "exactly one of"),
        ({"executor": "dask", "cluster": "local:0"}, "cluster must be 'local:N'"),
        ({"executor": "dask", "scheduler": "127.0.0.1:8786"}, "scheduler must be an address"),
        ({"cluster": "local:2"}, "need executor='dask'"),
    ],
)
def test_bad_executor_options(tmp_path, kw, match):
    with pytest.raises(ValueError, match=match):
        run_sweep(small_spec(P=[8]), tmp_path / "e.zarr", **kw)
    assert not (tmp_path / "e.zarr").exists()  # refused before anything was written


@pytest.mark.slow
def test_a_killed_local_worker_loses_nothing(tmp_path):
    """SIGKILL one spawned worker process mid-sweep: the broken pool is restarted for the tasks
    left (a second pool is created), and the store equals the serial run's bit for bit."""
    import concurrent.futures
    import multiprocessing

    spec = SweepSpec.from_dict({
        "model": "linear", "seed": 5, "record": ["gap_mass", "var_dhat"],
        "fixed": {"n_models": 8, "n_samples": 40000, "n_space": 6, "n_time": 6},
        "axes": {"P": [8, 16, 32, 64, 128, 256]},
    })  # fmt: skip
    ref = tmp_path / "ref.zarr"
    run_sweep(spec, ref, executor="serial")
    pools = []
    real_init = concurrent.futures.ProcessPoolExecutor.__init__

    def counting_init(self, *args, **kwargs):
        pools.append(1)
        real_init(self, *args, **kwargs)

    store = tmp_path / "p.zarr"
    out = {}
    runner = threading.Thread(
        target=lambda: out.update(rep=run_sweep(spec, store, executor="processes", workers=2))
    )
    concurrent.futures.ProcessPoolExecutor.__init__ = counting_init
    try:
        runner.start()
        tasks = store / "gtv_tasks"
        deadline = time.monotonic() + 300
        while runner.is_alive() and time.monotonic() < deadline:
            if tasks.is_dir() and any(tasks.glob("*.json")):
                break
            time.sleep(0.01)
        workers = [p for p in multiprocessing.active_children() if p.is_alive()]
        assert runner.is_alive() and workers, "the sweep finished before a worker was killed"
        os.kill(workers[0].pid, signal.SIGKILL)
        runner.join(timeout=600)
    finally:
        concurrent.futures.ProcessPoolExecutor.__init__ = real_init
    assert len(pools) >= 2, "the pool was not restarted"
    rep = out["rep"]
    assert rep.ran == spec.n_tasks and not rep.failures
    assert_same(store, ref, fields=("gap_mass", "var_dhat", "mean_dhat", "status"))
