"""Named random streams: the one place where random generators are made from the user's seed.

Every random draw in gtv comes from a stream named here, never from arithmetic on the seed. A
stream is ``SeedSequence(seed, spawn_key=(STREAM_ID, k, c_1, ..., c_k))``: the user's seed is
the entropy, the stream's registered number and its ``k`` integer coordinates (a figure panel,
a rotation, a configuration index) form the spawn key. Two different seeds therefore share no
stream, and within one seed two different (name, coordinates) pairs never give the same key:
the coordinate count ``k`` makes the keys prefix-free, and per-model children (``spawn``) add one
more word after the coordinates (docs/engineering.md, "Random streams").

Per-model streams are the children ``stream(...).spawn(N)[n]``, so the first ``n`` models of a
larger ensemble are the same models.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from gtv.numerics.checks import check_budget, check_count

__all__ = [
    "STREAMS",
    "check_seed",
    "model_rngs",
    "recording_streams",
    "seed_from_config",
    "seed_to_config",
    "stream",
    "stream_rng",
]

#: The registry: stream name -> its number in the spawn key. Numbers are never reused.
STREAMS: dict[str, int] = {
    "training": 1,  # DSM triples (and initial weights) of each trained model
    "sampling": 2,  # PF-ODE start points x_T of each model
    "field": 3,  # Gaussian-field weight draws (theory ensembles)
    "field-sampling": 4,  # PF-ODE start points of a Gaussian-field ensemble
    "bayes-sampling": 5,  # start points of the exact-Bayes baseline sampler
    "bootstrap": 6,  # model-level bootstrap resamples
    "naive": 7,  # the naive estimator's per-step posterior draws and noise
    "lanczos": 8,  # start vectors of the Lanczos stability estimate
    "init": 9,  # initial network weights, when drawn apart from the training set
    "subsample": 10,  # random subsets (e.g. which models a diagnostic looks at)
    # Sub-seeds: a part of a larger run (a figure panel, a sweep point, a width) gets
    # ``stream(seed, "panel", i, j)`` as its own seed and derives the named streams above from it.
    "panel": 11,
    "configuration": 12,
    "moment-field": 13,  # moment-matched Gaussian-field weights (a trained ensemble's own moments)
    "moment-field-sampling": 14,  # PF-ODE start points of a moment-matched Gaussian field
    "memory-data": 15,  # training sets of K points drawn for memorization experiments
    "memory-starts": 16,  # start points of an attractor search
    "memory-renoise": 17,  # re-noising draws of the critical-time (basin size) search
    "population-mc": 18,  # Monte Carlo triples of a theory's population moments
    "sweep": 19,  # one task of a sweep, at hashed coordinates of its grid point
    "occupancy-moments": 20,  # Monte Carlo members of the small-occupancy moments
    "transport-qmc": 21,  # scrambles of the quasi-Monte Carlo start points of a model
    "reference-mc": 22,  # a model's large Monte Carlo reference, to measure other start sets by
    "bayes-qmc": 23,  # scramble of the quasi-Monte Carlo start points of the exact-Bayes baseline
    "splice": 24,  # the derangement pairing members across a switching time (spliced sampling)
}

_RECORD: list[list] = []


def check_seed(seed: object, argname: str = "seed") -> int | np.random.SeedSequence:
    """Return ``seed`` if it is a non-negative integer (Python or numpy) or a ``SeedSequence``.

    Bools, floats, strings and ``None`` are rejected by name: ``seed=True`` or ``seed=1.7``
    silently running as seed 1 would make two different requests share every stream.
    """
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(
            f"{argname} must be a non-negative integer or a numpy SeedSequence, "
            f"got {type(seed).__name__} {seed!r}"
        )
    if seed < 0:
        raise ValueError(f"{argname} must be a non-negative integer, got {seed!r}")
    return int(seed)


def seed_to_config(seed: int | np.random.SeedSequence) -> int | dict:
    """A seed in JSON form: the integer, or ``{"entropy", "spawn_key"}`` of a ``SeedSequence``."""
    seed = check_seed(seed)
    if isinstance(seed, np.random.SeedSequence):
        return {"entropy": seed.entropy, "spawn_key": list(seed.spawn_key)}
    return seed


def seed_from_config(value: int | dict) -> int | np.random.SeedSequence:
    """Inverse of :func:`seed_to_config`."""
    if isinstance(value, dict):
        return np.random.SeedSequence(value["entropy"], spawn_key=tuple(value["spawn_key"]))
    return int(value)


def stream(seed: object, name: str, *coords: int) -> np.random.SeedSequence:
    """The ``SeedSequence`` of stream ``name`` at integer coordinates ``coords``.

    ``seed`` may itself be a ``SeedSequence`` (a stream handed down by a caller); its entropy and
    spawn key are then extended with this stream's key, so the result is still unique.
    """
    seed = check_seed(seed)
    if name not in STREAMS:
        raise ValueError(f"name must be a registered stream {tuple(STREAMS)}, got {name!r}")
    cs = []
    for i, c in enumerate(coords):
        if isinstance(c, (bool, np.bool_)) or not isinstance(c, numbers.Integral) or c < 0:
            raise ValueError(f"coords[{i}] must be a non-negative integer, got {c!r}")
        cs.append(int(c))
    key = (STREAMS[name], len(cs), *cs)
    if isinstance(seed, np.random.SeedSequence):
        ss = np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, *key))
    else:
        ss = np.random.SeedSequence(seed, spawn_key=key)
    for rec in _RECORD:
        rec.append((name, ss))
    return ss


def stream_rng(seed: object, name: str, *coords: int) -> np.random.Generator:
    """One generator on stream ``name`` (see :func:`stream`)."""
    return np.random.default_rng(stream(seed, name, *coords))


def model_rngs(seed: object, name: str, n_models: int, *coords: int) -> list[np.random.Generator]:
    """One generator per model: the children ``stream(seed, name, *coords).spawn(n_models)``.

    ``n_models`` is checked first (:func:`gtv.numerics.checks.check_budget`): each generator
    takes ~1 KB and ~0.1 ms, so 10**9 models fail at once instead of hanging.
    """
    n = check_count(n_models, "n_models", 0)
    check_budget("n_models", n, n_bytes=1100.0 * n, what="one random generator per model")
    return [np.random.default_rng(s) for s in stream(seed, name, *coords).spawn(n)]


@contextmanager
def recording_streams() -> Iterator[list[tuple[str, np.random.SeedSequence]]]:
    """Record every stream made inside the block (for tests that streams never coincide)."""
    rec: list = []
    _RECORD.append(rec)
    try:
        yield rec
    finally:
        _RECORD.remove(rec)
