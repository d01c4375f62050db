"""Memorized / spurious / generalized: the published sample classifications by distances.

Each generated sample ``x`` of one model gets a label (:mod:`gtv.numerics.memory.labels`) from
its nearest neighbours (:func:`gtv.numerics.memory.nearest.nearest_two`, Euclidean distances in
data coordinates) among the training points ``xi_mu`` (the memories) and among the *other*
generated samples of the same model.

Absolute thresholds (Pham et al. 2025, "Memorization to generalization: emergence of diffusion
models from associative memory"), :func:`classify_samples`:

* ``d_train`` = distance to the nearest training point, ``d_synth`` = distance to the nearest
  other generated sample (the same samples with the self-match skipped, or a separate reference
  set of samples from the same model);
* memorized  <=>  ``d_train <= delta_m``;
* spurious   <=>  not memorized and ``d_synth <= delta_s`` (the model revisits a non-training
  point);
* generalized otherwise.

The authors measure distances in LPIPS units (their example uses ``delta_m = 0.03``,
``delta_s = 0.02``); numbers in LPIPS units do not transfer to Euclidean data coordinates. gtv's
default is scale-free (:func:`default_thresholds`): ``delta_m = delta_s = s / 3`` with ``s`` the
median nearest-neighbour distance within the training set, i.e. a sample counts as a copy when it
is closer to a training point than a third of the typical spacing of the training points, the
same factor 1/3 as the ratio test below.

Ratio test (Yoon et al. 2023; Gu et al. 2025; Bonnaire et al. 2025), :func:`ratio_memorized`:
memorized  <=>  ``d1 / d2 < ratio`` (default 1/3) with ``d1 <= d2`` the distances to the nearest
and second-nearest training point, evaluated as ``d1 < ratio * d2`` (no division; a sample
equidistant from two identical training points, ``d1 = d2 = 0``, is *not* memorized: remove
duplicate training points first).

Three-class ratio variant (gtv's extension, not published), :func:`classify_samples_ratio`:
memorized by the ratio test against the training points; spurious <=> not memorized and the same
ratio test holds against the *other* samples (the nearest other sample much closer than the
second nearest: a near-duplicate pair among the samples); generalized otherwise. Because the test
compares the first and second neighbour, a sample in a tight cluster of three or more
near-identical samples has ``d1 ~ d2`` among the samples and is *not* flagged spurious; the
variant detects isolated near-duplicate pairs, and its spurious fraction depends on how many
samples are drawn. Use :func:`classify_samples` to count larger clusters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gtv.numerics.checks import check_points, check_positive
from gtv.numerics.memory.labels import GENERALIZED, LABEL_NAMES, MEMORIZED, SPURIOUS
from gtv.numerics.memory.nearest import NearestTwo, nearest_two

__all__ = [
    "SampleClasses",
    "classify_samples",
    "classify_samples_ratio",
    "default_thresholds",
    "ratio_memorized",
]

#: Default ratio of the nearest-neighbour gap test (Yoon et al. 2023; Gu et al. 2025).
DEFAULT_RATIO = 1.0 / 3.0


@dataclass(frozen=True)
class SampleClasses:
    """Labels and neighbour distances of one model's generated samples.

    Attributes
    ----------
    labels : ndarray of int64, shape (N,)
        ``MEMORIZED`` (0), ``SPURIOUS`` (1) or ``GENERALIZED`` (2) per sample
        (:mod:`gtv.numerics.memory.labels`).
    d_train, d_train2 : ndarray, shape (N,)
        Distances to the nearest and second-nearest training point (``inf`` with K = 1).
    d_synth, d_synth2 : ndarray, shape (N,)
        Distances to the nearest and second-nearest other sample (``inf`` when there are not
        enough other samples).
    nearest_memory : ndarray of int64, shape (N,)
        Index of the nearest training point.
    nearest_sample : ndarray of int64, shape (N,)
        Index of the nearest other sample (into ``samples``, or into ``synth`` when given).
    criterion : str
        ``"pham"`` (absolute thresholds) or ``"ratio"`` (nearest-neighbour gap ratio).
    thresholds : dict
        ``{"delta_m": ..., "delta_s": ...}`` or ``{"ratio": ...}``.
    """

    labels: np.ndarray
    d_train: np.ndarray
    d_train2: np.ndarray
    d_synth: np.ndarray
    d_synth2: np.ndarray
    nearest_memory: np.ndarray
    nearest_sample: np.ndarray
    criterion: str
    thresholds: dict

    @property
    def n_samples(self) -> int:
        """Number of classified samples N."""
        return int(self.labels.shape[0])

    @property
    def counts(self) -> np.ndarray:
        """Number of memorized, spurious and generalized samples, shape (3,)."""
        return np.bincount(self.labels, minlength=len(LABEL_NAMES)).astype(np.int64)

    @property
    def fractions(self) -> np.ndarray:
        """Fractions of memorized, spurious and generalized samples, shape (3,); they sum to 1."""
        return self.counts / self.n_samples

    @property
    def memorized(self) -> np.ndarray:
        """Boolean mask of the memorized samples."""
        return self.labels == MEMORIZED

    @property
    def spurious(self) -> np.ndarray:
        """Boolean mask of the spurious samples."""
        return self.labels == SPURIOUS

    @property
    def generalized(self) -> np.ndarray:
        """Boolean mask of the generalized samples."""
        return self.labels == GENERALIZED


# -- argument checks ----------------------------------------------------------------------------
def _ratio(value: object) -> float:
    try:
        r = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"ratio must be a number in (0, 1), got {value!r}") from None
    if not (0.0 < r < 1.0):
        raise ValueError(f"ratio must lie in (0, 1), got {value!r}")
    return r


def _samples_and_train(samples: object, train: object) -> tuple[np.ndarray, np.ndarray]:
    x = check_points(samples, "samples")
    xi = check_points(train, "train")
    if xi.shape[1] != x.shape[1]:
        raise ValueError(
            f"train must have the same number of columns as samples (D = {x.shape[1]}), "
            f"got {xi.shape[1]}"
        )
    return x, xi


def _synth_neighbours(x: np.ndarray, synth: object, backend: str, min_others: int) -> NearestTwo:
    """Nearest other samples: ``synth`` (a separate reference set) or ``x`` without self-matches.

    A ``synth`` equal to ``samples`` (same rows in the same order) is the same set: self-matches
    are skipped, as for ``synth=None``.
    """
    if synth is not None:
        ref = check_points(synth, "synth")
        if ref.shape[1] != x.shape[1]:
            raise ValueError(
                f"synth must have the same number of columns as samples (D = {x.shape[1]}), "
                f"got {ref.shape[1]}"
            )
        if not (ref.shape == x.shape and np.array_equal(ref, x)):
            if ref.shape[0] < min_others:
                raise ValueError(f"synth must hold at least {min_others} samples")
            return nearest_two(x, ref, backend=backend)
    if x.shape[0] < min_others + 1:
        raise ValueError(
            f"samples must hold at least {min_others + 1} rows to find {min_others} other "
            "sample(s) (or pass a separate synth set)"
        )
    return nearest_two(x, x, exclude_self=True, backend=backend)


# -- public functions ---------------------------------------------------------------------------
def default_thresholds(train: object, *, backend: str = "numba") -> tuple[float, float]:
    """gtv's scale-free default thresholds ``(delta_m, delta_s)`` for :func:`classify_samples`.

    Both are one third of the median, over training points, of the distance to the nearest
    *other* training point. The published values (Pham et al. 2025) are in LPIPS units and do not
    transfer to data coordinates.

    Parameters
    ----------
    train : array_like, shape (K, D)
        Training points, K >= 2.
    backend : {"numba", "numpy"}
        Passed to :func:`gtv.numerics.memory.nearest.nearest_two`.

    Raises
    ------
    ValueError
        K < 2, or the median spacing is 0 (more than half the training points are duplicates;
        pass ``delta_m`` and ``delta_s`` explicitly).
    """
    xi = check_points(train, "train")
    if xi.shape[0] < 2:
        raise ValueError(
            "train must hold at least 2 points for the default thresholds "
            "(or pass delta_m and delta_s)"
        )
    spacing = float(np.median(nearest_two(xi, xi, exclude_self=True, backend=backend).d1))
    if not spacing > 0:
        raise ValueError(
            "train: the median nearest-neighbour spacing is 0 (duplicate points); "
            "pass delta_m and delta_s explicitly"
        )
    return spacing / 3.0, spacing / 3.0


def classify_samples(
    samples: object,
    train: object,
    *,
    delta_m: float | None = None,
    delta_s: float | None = None,
    synth: object = None,
    backend: str = "numba",
) -> SampleClasses:
    """Memorized / spurious / generalized by absolute distance thresholds (Pham et al. 2025).

    memorized <=> ``d_train <= delta_m``; spurious <=> not memorized and ``d_synth <= delta_s``;
    generalized otherwise (module docstring).

    Parameters
    ----------
    samples : array_like, shape (N, D)
        One model's generated samples, in data coordinates.
    train : array_like, shape (K, D)
        The training points (memories).
    delta_m, delta_s : float > 0, optional
        Thresholds in data units; ``None`` takes :func:`default_thresholds` of ``train`` (one
        third of the median nearest-neighbour spacing of the training points).
    synth : array_like, shape (M, D), optional
        A separate reference set of samples from the same model; ``None`` (or ``samples``
        itself): the nearest *other* sample of ``samples`` (needs N >= 2).
    backend : {"numba", "numpy"}
        Passed to :func:`gtv.numerics.memory.nearest.nearest_two`.

    Returns
    -------
    SampleClasses
        ``criterion="pham"``, ``thresholds={"delta_m": ..., "delta_s": ...}``.
    """
    x, xi = _samples_and_train(samples, train)
    if delta_m is not None:
        delta_m = check_positive(delta_m, "delta_m")
    if delta_s is not None:
        delta_s = check_positive(delta_s, "delta_s")
    if delta_m is None or delta_s is None:
        dm, ds = default_thresholds(xi, backend=backend)
        delta_m = dm if delta_m is None else delta_m
        delta_s = ds if delta_s is None else delta_s
    tr = nearest_two(x, xi, backend=backend)
    sy = _synth_neighbours(x, synth, backend, min_others=1)
    memorized = tr.d1 <= delta_m
    spurious = ~memorized & (sy.d1 <= delta_s)
    return _result(tr, sy, memorized, spurious, "pham", {"delta_m": delta_m, "delta_s": delta_s})


def ratio_memorized(
    samples: object, train: object, *, ratio: float = DEFAULT_RATIO, backend: str = "numba"
) -> np.ndarray:
    """Boolean mask of the samples memorized by the nearest-neighbour gap ratio test.

    memorized <=> ``d1 / d2 < ratio`` with ``d1 <= d2`` the distances to the nearest and
    second-nearest training point (Yoon et al. 2023; Gu et al. 2025; Bonnaire et al. 2025),
    evaluated as ``d1 < ratio * d2``.

    Parameters
    ----------
    samples : array_like, shape (N, D)
    train : array_like, shape (K, D)
        K >= 2.
    ratio : float in (0, 1)
        Default 1/3.
    backend : {"numba", "numpy"}
        Passed to :func:`gtv.numerics.memory.nearest.nearest_two`.
    """
    r = _ratio(ratio)
    x, xi = _samples_and_train(samples, train)
    if xi.shape[0] < 2:
        raise ValueError("train must hold at least 2 points for the ratio test")
    tr = nearest_two(x, xi, backend=backend)
    return tr.d1 < r * tr.d2


def classify_samples_ratio(
    samples: object,
    train: object,
    *,
    ratio: float = DEFAULT_RATIO,
    synth: object = None,
    backend: str = "numba",
) -> SampleClasses:
    """Memorized / spurious / generalized by the gap ratio test (gtv's three-class variant).

    memorized <=> ``d_train < ratio * d_train2``; spurious <=> not memorized and
    ``d_synth < ratio * d_synth2`` (a near-duplicate among the other samples); generalized
    otherwise. Only isolated near-duplicate pairs count as spurious (module docstring).

    Parameters
    ----------
    samples : array_like, shape (N, D)
        One model's generated samples.
    train : array_like, shape (K, D)
        Training points, K >= 2.
    ratio : float in (0, 1)
        Default 1/3, for both tests.
    synth : array_like, shape (M, D), optional
        Separate reference samples (M >= 2); ``None`` (or ``samples`` itself): the other samples
        of ``samples`` (needs N >= 3).
    backend : {"numba", "numpy"}
        Passed to :func:`gtv.numerics.memory.nearest.nearest_two`.

    Returns
    -------
    SampleClasses
        ``criterion="ratio"``, ``thresholds={"ratio": ...}``.
    """
    r = _ratio(ratio)
    x, xi = _samples_and_train(samples, train)
    if xi.shape[0] < 2:
        raise ValueError("train must hold at least 2 points for the ratio test")
    tr = nearest_two(x, xi, backend=backend)
    sy = _synth_neighbours(x, synth, backend, min_others=2)
    memorized = tr.d1 < r * tr.d2
    spurious = ~memorized & (sy.d1 < r * sy.d2)
    return _result(tr, sy, memorized, spurious, "ratio", {"ratio": r})


def _result(
    tr: NearestTwo,
    sy: NearestTwo,
    memorized: np.ndarray,
    spurious: np.ndarray,
    criterion: str,
    thresholds: dict,
) -> SampleClasses:
    labels = np.full(tr.d1.shape[0], GENERALIZED, dtype=np.int64)
    labels[spurious] = SPURIOUS
    labels[memorized] = MEMORIZED
    return SampleClasses(
        labels=labels,
        d_train=tr.d1,
        d_train2=tr.d2,
        d_synth=sy.d1,
        d_synth2=sy.d2,
        nearest_memory=tr.i1,
        nearest_sample=sy.i1,
        criterion=criterion,
        thresholds=thresholds,
    )
