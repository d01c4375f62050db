"""Smoke test of the benchmark script (no timing assertions: timings depend on the machine)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_posterior.py"


def test_bench_posterior_quick_runs(tmp_path: Path):
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "| case | numba s | numpy s | speedup | max rel diff |" in proc.stdout


def test_bench_two_layer_quick_runs(tmp_path: Path):
    bench = BENCH.with_name("bench_two_layer.py")
    proc = subprocess.run(
        [sys.executable, str(bench), "--quick"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "| activation | gtv s/epoch | gtv 1 thread s/epoch | numpy s/epoch |" in proc.stdout
    assert "| relu |" in proc.stdout and "| erf |" in proc.stdout


def test_bench_theory_quick_runs(tmp_path: Path):
    bench = BENCH.with_name("bench_theory.py")
    proc = subprocess.run(
        [sys.executable, str(bench), "--quick"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "| part | gtv s | numpy s | speed-up | goal | max rel diff |" in proc.stdout
    # gtv and the numpy reference compute the same theory
    row = next(line for line in proc.stdout.splitlines() if line.startswith("| full theory"))
    assert float(row.rstrip(" |").rsplit("|", 1)[1]) < 1e-10
