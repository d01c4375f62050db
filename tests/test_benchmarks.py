"""Smoke tests of the benchmark scripts (no timing assertions: timings depend on the machine)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _run_quick(script: str, cwd: Path) -> str:
    """Run ``benchmarks/<script> --quick`` in ``cwd``; return its stdout (exit 0 asserted)."""
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc.stdout


def test_bench_posterior_quick_runs(tmp_path: Path):
    out = _run_quick("bench_posterior.py", tmp_path)
    assert "| case | numba s | numpy s | speedup | max rel diff |" in out


def test_bench_two_layer_quick_runs(tmp_path: Path):
    out = _run_quick("bench_two_layer.py", tmp_path)
    assert "| activation | gtv s/epoch | gtv 1 thread s/epoch | numpy s/epoch |" in out
    assert "| relu |" in out and "| erf |" in out


def test_bench_theory_quick_runs(tmp_path: Path):
    out = _run_quick("bench_theory.py", tmp_path)
    assert "| part | gtv s | numpy s | speed-up | goal | max rel diff |" in out
    # gtv and the numpy reference compute the same theory
    row = next(line for line in out.splitlines() if line.startswith("| full theory"))
    assert float(row.rstrip(" |").rsplit("|", 1)[1]) < 1e-10


def test_bench_serial_quick_runs(tmp_path: Path):
    out = _run_quick("bench_serial.py", tmp_path)
    assert "| case | gtv s | dense s | speed-up | goal |" in out
    # gtv's FFT chains and the dense (authors') algorithm give the same errors
    rows = [line for line in out.splitlines() if line.startswith(("| (a)", "| (b)"))]
    assert len(rows) == 2
    for row in rows:
        assert float(row.rstrip(" |").rsplit("|", 1)[1]) < 1e-10


def test_bench_finite_fp_quick_runs(tmp_path: Path):
    out = _run_quick("bench_finite_fp.py", tmp_path)
    assert "cavity solve" in out and "small-occupancy field" in out and "stratified field" in out
    assert "models | 1 |" in out and "models, exact below t = 0.2 | 1 |" in out
    assert "models, exact_below auto (its ladder included) | 1 |" in out
    assert "models, exact_below auto, ladder at 20 samples | 1 |" in out
    assert "160 members vs 40 models, exact below t = 0.2 | 1 |" in out
    assert "160 members vs 40 models, 20 samples per member, exact below t = 0.2 | 1 |" in out


def test_bench_memorization_quick_runs(tmp_path: Path):
    out = _run_quick("bench_memorization.py", tmp_path)
    assert "| case | gtv s | numpy s | speedup | max abs dy | iters | notes |" in out
    assert "| case | gtv s | numpy s | speedup | indices | max abs d diff | notes |" in out
    assert "| yes |" in out and "| NO |" not in out
    assert "one transition curve" in out and "| all 3 |" in out


def test_measure_ntk_closure_quick_runs(tmp_path: Path):
    out = _run_quick("measure_ntk_closure.py", tmp_path)
    assert (
        "| tau | trained / cavity | trained / node designs [range] | node designs / cavity |" in out
    )
    assert out.count("\n| 3 | ") + out.count("\n| 10 | ") + out.count("\n| 300 | ") == 3 + 3 * 6
    assert "| tau | t_c | heavy nodes (heavy triples per model) | trained / field | mean |" in out


def test_measure_cavity_mean_quick_runs(tmp_path: Path):
    out = _run_quick("measure_cavity_mean.py", tmp_path)
    assert "| eps | F/P | points | cavity vs trained | cavity vs node designs |" in out
    assert out.count("\n| 0.01 | ") == 2 + 3  # F/P = 1, 4; then the field at F/P = 1/4, 1, 4
    assert "| eps | F/P | t_c = 0 | 0.2 | 0.4 | every triple exact |" in out


def test_measure_splices_quick_runs(tmp_path: Path):
    out = _run_quick("measure_splices.py", tmp_path)
    assert "F = 8 x 8, eps = 0.01, P = 256" in out
    for name in ("field", "late field", "late trained", "trained shuffled", "field shuffled"):
        assert f" {name} | " in out
    assert out.count(" trained shuffled | ") == 3
    assert " field on the trained mean | gap " in out and " trained on the field mean | " in out
    assert "last-step basins: trained " in out
    assert out.count("\n| gaussian | ") + out.count("\n| stratified | ") == 2


def test_measure_exact_below_quick_runs(tmp_path: Path):
    out = _run_quick("measure_exact_below.py", tmp_path)
    assert "| t_c | exact share | gap | core | basin |" in out
    assert "\n| 0 | " in out and "\n| 2 | 100% | " in out
    assert "plateau starts at t_c = " in out


@pytest.mark.slow
def test_bench_figure2_quick_runs(tmp_path: Path):
    out = _run_quick("bench_figure2.py", tmp_path)
    assert "Goal (issue 15): the Figure-2 computation >= 100x the paper's algorithm" in out
    assert "| training (DSM draws, normal equations, Cholesky) |" in out
    assert "| the rest (Python, checks, arrays, streams) |" in out


@pytest.mark.slow
def test_bench_transport_quick_runs(tmp_path: Path):
    out = _run_quick("bench_transport.py", tmp_path)
    assert "refined (bin 0.02" in out and "5. grid convergence" in out


def test_bench_training_quick_runs(tmp_path: Path):
    out = _run_quick("bench_training.py", tmp_path)
    assert "| 16 |" in out and "(dual P x P)" in out and "(F x F)" in out


@pytest.mark.slow
def test_measure_figure2_cli_quick_runs(tmp_path: Path):
    out = _run_quick("measure_figure2_cli.py", tmp_path)
    assert "| import the CLI |" in out and "| PNG + PDF |" in out and "| 1 |" in out


def test_bench_isa_quick_runs(tmp_path: Path):
    out = _run_quick("bench_isa.py", tmp_path)
    assert "| kernel | host: numba | host: numpy | max rel diff |" in out
    # each kernel computes what its numpy version computes
    rows = [line for line in out.splitlines() if line.startswith("| ") and "kernel" not in line]
    assert len(rows) == 4
    for row in rows:
        assert float(row.rstrip(" |").rsplit("|", 1)[1]) < 1e-10


@pytest.mark.slow
def test_measure_ntk_transport_quick_runs(tmp_path: Path):
    out = _run_quick("measure_ntk_transport.py", tmp_path)
    assert "reference: plain grid of 2048 points" in out
    row = next(line for line in out.splitlines() if line.startswith("  128 (<=  1024)"))
    assert "TV median/max: trained" in row and "max estimate" in row
    assert out.count("mc, 1000 samples") == 1


def test_measure_member_variance_quick_runs(tmp_path: Path):
    out = _run_quick("measure_member_variance.py", tmp_path)
    assert "| F/P | statistic | value |" in out
    assert out.count("| 1 | R^2:") == 4 and "variance share of the top 1 % of models" in out
