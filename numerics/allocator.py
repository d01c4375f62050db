"""Keep freed memory for reuse: glibc's allocator thresholds for runs of large temporary arrays.

glibc serves every allocation above its mmap threshold (128 KiB at start, raised only as large
blocks are freed) with fresh pages from the kernel and returns them on ``free``, so a run that
allocates and frees arrays of megabytes (per-panel grids, per-model buffers) pays a page fault at
the first touch of every 4 KiB page (about 2 µs each on the machines this project runs on). With
the thresholds raised, freed blocks of up to ``mmap_threshold`` stay in the heap and are reused.

:func:`tune_allocator` is called by the ``gtv`` command and by the benchmarks (for every
implementation they time, so ratios stay fair); importing gtv changes nothing. Elsewhere than
glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

__all__ = ["tune_allocator"]

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


@functools.cache
def tune_allocator(mmap_threshold: int = 32 << 20, trim_threshold: int = 256 << 20) -> bool:
    """Raise glibc's mmap and trim thresholds (bytes) for this process; True if applied.

    Blocks below ``mmap_threshold`` come from the heap and are reused after ``free``; up to
    ``trim_threshold`` of free memory at the heap's top is kept instead of returned to the
    kernel (the process's resident size can stay that much higher). Once per process.
    """
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    ok = mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold)) == 1
    return ok and mallopt(_M_TRIM_THRESHOLD, int(trim_threshold)) == 1
