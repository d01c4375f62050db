"""What every benchmark shares: the machine description it prints above its table (date,
platform, cores, CPU), the machine's load, and best-of-N timing."""

from __future__ import annotations

import datetime
import os
import platform
import sys
import time
from collections.abc import Callable


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or what ``platform`` knows)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def cpu_topology() -> str:
    """Physical cores, hardware threads per core and the widest SIMD extension, from
    /proc/cpuinfo: two vCPUs that are hyperthreads of one core halve what a parallel kernel
    gains over one thread, while a single-threaded numpy reference does not notice."""
    try:
        with open("/proc/cpuinfo") as fh:
            text = fh.read()
    except OSError:
        return "topology unknown"
    cores, flags = set(), set()
    for block in text.strip().split("\n\n"):
        info = dict(
            (k.strip(), v.strip()) for k, _, v in (ln.partition(":") for ln in block.splitlines())
        )
        cores.add((info.get("physical id", "0"), info.get("core id", info.get("processor"))))
        flags |= set(info.get("flags", "").split())
    simd = next((f for f in ("avx512f", "avx2", "avx", "sse4_2") if f in flags), "none")
    n = os.cpu_count() or 1
    return f"{len(cores)} physical core(s), {n / max(1, len(cores)):g} thread(s) per core, {simd}"


def print_machine() -> None:
    """Print the ``date:`` and ``machine:`` lines of a benchmark report."""
    print(f"date: {datetime.date.today().isoformat()}")
    print(f"machine: {platform.platform()}; {os.cpu_count()} cores; {cpu_model()}")
    print(f"topology: {cpu_topology()}")


def load_average() -> str:
    """The 1/5/15-minute load averages (other processes on the machine distort timings)."""
    try:
        return " / ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def best_time(
    fn: Callable[[], object], repeats: int, label: str, record: dict[str, list[float]]
) -> tuple[float, object]:
    """Best wall time of ``repeats`` calls and the result of the last call; every timing is kept
    in ``record[label]`` (for the spread printed under a table)."""
    times = []
    out = None
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    record[label] = times
    return min(times), out


def command_line() -> str:
    """The command that runs this benchmark, as typed (interpreter name and arguments)."""
    return " ".join([os.path.basename(sys.executable), *sys.argv])


def print_all_times(record: dict[str, list[float]]) -> None:
    """Every timing of :func:`best_time`, in the order run (the spread under a table)."""
    print("\nall timings (s), in the order run:")
    for label, times in record.items():
        print(f"- {label}: " + ", ".join(f"{x:.3f}" for x in times))
