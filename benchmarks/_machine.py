"""The machine description every benchmark prints above its table (date, platform, cores, CPU)."""

from __future__ import annotations

import datetime
import os
import platform


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


def print_machine() -> None:
    """Print the ``date:`` and ``machine:`` lines of a benchmark report."""
    print(f"date: {datetime.date.today().isoformat()}")
    print(f"machine: {platform.platform()}; {os.cpu_count()} cores; {cpu_model()}")
