"""Named random streams in the validation layer (gtv.numerics.streams; docs/engineering.md).

Every stream made during small runs of :func:`compare_linear`, :func:`compute_figure2` (with its
gap table), :func:`compute_figure3` (with its segment table) and :func:`compare_ntk` is recorded
(:func:`gtv.numerics.streams.recording_streams`) for the seeds 0 and 1:

* runs with different seeds share no stream (training, sampling, Gaussian field and its
  sampling, exact-Bayes baseline, figure panels, bootstrap): the generated states of all
  recorded streams, and of their first per-model children, are disjoint between the seeds;
* within one run, two different (name, coordinates) streams never coincide;
* no generator is made from a bare integer seed (``numpy.random.default_rng(int)``) during the
  runs, and the validation sources contain no seed arithmetic.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

from gtv.numerics.streams import STREAMS, recording_streams
from gtv.validation.figures import Figure2Config, Figure3Config, compute_figure2, compute_figure3
from gtv.validation.linear import LinearCompareConfig, compare_linear
from gtv.validation.ntk import NTKCompareConfig, compare_ntk

#: Per-model children checked for each recorded stream (at least the models of every run).
N_CHILDREN = 8


def _linear(seed):
    cfg = LinearCompareConfig(
        P=200, n_space=4, n_time=3, n_models=4, n_samples=100, n_bins=20, n_boot=20,
        n_splits=2, fp_steps=20, fp_refine=1, n_bayes_samples=200, query_x=(-0.5, 0.5),
        query_t=(0.1,), density="mc", seed=seed,
    )  # fmt: skip
    compare_linear(cfg)


def _figure2(seed):
    cfg = Figure2Config.fast(
        eps_values=(1e-2, 1e-1), P_values=(64, 128), n_space=4, n_time=3, n_models=3,
        n_samples=100, n_bins=20, n_bayes_samples=100, density="mc", seed=seed,
    )  # fmt: skip
    compute_figure2(cfg, progress=False).gap_table()


def _figure3(seed):
    for density in ("transport", "mc"):  # scrambled-Sobol' (default) and random start points
        cfg = Figure3Config(
            rotations=(0.0, np.pi / 4), kinds=("fourier",), n_space=3, n_time=3, P=100,
            n_models=3, n_samples=100, n_points=128, density=density, n_bins=10,
            n_bayes_samples=100, seed=seed,
        )  # fmt: skip
        compute_figure3(cfg, progress=False).segment_table()


def _ntk(seed):
    cfg = NTKCompareConfig(
        P=24, widths=(8,), n_models=4, taus=(1.0, 3.0), n_samples=40, n_bins=10, n_boot=10,
        theory_n_t=4, theory_n_hermite=4, fp_steps=10, fp_refine=1, fp_half_width=10.0,
        n_bayes_samples=100, query_x=(-1.0, 0.5), query_t=(0.3,), seed=seed, density="mc",
    )  # fmt: skip
    compare_ntk(cfg)


RUNS = {"compare_linear": _linear, "figure2": _figure2, "figure3": _figure3, "compare_ntk": _ntk}


def _state(entropy, key) -> tuple[int, ...]:
    ss = np.random.SeedSequence(entropy, spawn_key=key)
    return tuple(int(v) for v in ss.generate_state(4))


def _record(run, seed, monkeypatch):
    """The recorded streams of one run, and the arguments of ``default_rng`` calls made by gtv's
    code that were neither SeedSequences nor Generators (calls from other libraries are not
    gtv's: SciPy's ``scipy.stats`` makes generators from literal seeds when it is first
    imported, which may happen inside a run)."""
    bare = []
    real = np.random.default_rng

    def checked(*args, **kwargs):
        arg = args[0] if args else kwargs.get("seed")
        caller = sys._getframe(1).f_globals.get("__name__", "")
        if caller.startswith("gtv.") and not isinstance(
            arg, (np.random.SeedSequence, np.random.Generator)
        ):
            bare.append((caller, arg))
        return real(*args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(np.random, "default_rng", checked)
        with recording_streams() as rec:
            run(seed)
    return list(rec), bare


@pytest.fixture(scope="module")
def recorded():
    mp = pytest.MonkeyPatch()
    try:
        return {
            (name, seed): _record(run, seed, mp) for name, run in RUNS.items() for seed in (0, 1)
        }
    finally:
        mp.undo()


def _states(records):
    """generate_state(4) -> the set of (name, spawn key) it belongs to, for every recorded stream
    and its first per-model children."""
    out: dict[tuple, set] = {}
    for name, ss in records:
        key = tuple(ss.spawn_key)
        out.setdefault(_state(ss.entropy, key), set()).add((name, key))
        for n in range(N_CHILDREN):
            out.setdefault(_state(ss.entropy, (*key, n)), set()).add((name, (*key, n)))
    return out


@pytest.mark.parametrize("run", list(RUNS))
def test_runs_with_seeds_0_and_1_share_no_stream(recorded, run):
    rec0, rec1 = recorded[(run, 0)][0], recorded[(run, 1)][0]
    assert rec0 and rec1
    used = {name for name, _ in rec0}
    assert used <= set(STREAMS), used
    s0, s1 = _states(rec0), _states(rec1)
    shared = set(s0) & set(s1)
    assert not shared, [(s0[s], s1[s]) for s in list(shared)[:3]]
    assert {ss.entropy for _, ss in rec0} == {0} and {ss.entropy for _, ss in rec1} == {1}


@pytest.mark.parametrize("run", list(RUNS))
def test_within_a_run_different_streams_never_coincide(recorded, run):
    for seed in (0, 1):
        states = _states(recorded[(run, seed)][0])
        clashes = {s: keys for s, keys in states.items() if len(keys) > 1}
        assert not clashes, list(clashes.values())[:3]


@pytest.mark.parametrize("run", list(RUNS))
def test_no_generator_from_a_bare_seed(recorded, run):
    for seed in (0, 1):
        assert recorded[(run, seed)][1] == []


def test_stream_names_per_run(recorded):
    """Which streams each run draws from (a change here is a change of the seed layout)."""
    names = {run: {n for n, _ in recorded[(run, 0)][0]} for run in RUNS}
    assert {"training", "sampling", "field", "field-sampling", "bayes-sampling", "bootstrap"} <= (
        names["compare_linear"]
    )
    assert {"panel", "training", "sampling", "bayes-sampling", "bootstrap"} <= names["figure2"]
    assert {"panel", "training", "sampling", "transport-qmc", "bayes-sampling", "bootstrap"} <= (
        names["figure3"]
    )
    assert {"training", "sampling", "field", "field-sampling", "bayes-sampling", "bootstrap"} <= (
        names["compare_ntk"]
    )


#: Seed arithmetic and generators made outside gtv.numerics.streams.
_FORBIDDEN = [
    re.compile(r"seed\s*[+*]|[+*]\s*seed\b"),
    re.compile(r"\[\s*(c\.|cfg\.|config\.)?seed\s*,"),
    re.compile(r"default_rng\("),
    re.compile(r"SeedSequence\(\s*[\[\w]"),
]


def test_validation_sources_do_no_seed_arithmetic():
    root = Path(__file__).resolve().parents[2] / "validation"
    bad = []
    for path in sorted(root.rglob("*.py")):
        for i, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if any(p.search(code) for p in _FORBIDDEN):
                bad.append(f"{path.relative_to(root.parent)}:{i}: {line.strip()}")
    assert not bad, "\n".join(bad)


def test_a_bare_seed_in_gtv_code_is_caught(monkeypatch):
    """Negative control of the check above: a generator made from an integer by code of a gtv
    module is recorded; the same call from another module is not."""
    source = "def run(seed):\n    np.random.default_rng(seed)\n"
    ours, theirs = {"__name__": "gtv.fake", "np": np}, {"__name__": "scipy.fake", "np": np}
    exec(source, ours)
    exec(source, theirs)
    assert _record(ours["run"], 3, monkeypatch)[1] == [("gtv.fake", 3)]
    assert _record(theirs["run"], 3, monkeypatch)[1] == []
