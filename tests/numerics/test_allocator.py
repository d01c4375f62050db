"""The allocator tuning of the gtv command and the benchmarks."""

from __future__ import annotations

import platform

import numpy as np
import pytest

from gtv.numerics.allocator import tune_allocator


@pytest.mark.skipif(platform.system() != "Linux", reason="glibc's mallopt")
def test_tune_allocator_applies_on_glibc_and_allocation_still_works():
    assert tune_allocator() is True
    assert tune_allocator() is True  # once per process, cached
    a = np.ones(5_000_000)  # 40 MB: above the threshold, still served
    b = np.ones(1_000_000)  # 8 MB: from the heap now
    assert a.sum() == 5_000_000 and b.sum() == 1_000_000
