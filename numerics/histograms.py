"""Per-model reductions of samples: histograms on uniform grids and gap fractions.

The validation layer reduces each trained model's samples to per-model statistics. These numba
kernels run in parallel over models; their plain-numpy references are ``numpy.histogramdd`` and a
direct distance computation (see :mod:`gtv.validation.ensembles`), and tests assert that they agree
exactly. Bin assignment follows ``numpy.histogram`` for uniform bins: the index
``floor((x - lo) / width)`` is corrected against the edges ``lo + k (hi - lo)/n`` as numpy does,
the right-most edge belongs to the last bin, and values outside ``[lo, hi]`` fall in no bin.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["gap_fraction", "uniform_histogram_counts"]


@numba.njit(cache=True, error_model="numpy", inline="always")
def _bin_index(v, lo, hi, nbins, norm):
    # As numpy.histogram's uniform-bin path: compute, then correct against the edges.
    if v < lo or v > hi:
        return -1
    k = int((v - lo) * norm)
    if k == nbins:
        k -= 1
    # numpy's edges are linspace(lo, hi, nbins + 1); compare with them like numpy does.
    left = lo + k * (hi - lo) / nbins
    if v < left:
        k -= 1
    elif k + 1 < nbins and v >= lo + (k + 1) * (hi - lo) / nbins:
        k += 1
    return k


@numba.njit(parallel=True, cache=True, error_model="numpy")
def _uniform_counts(samples, los, his, nbins):
    n_models, n_samples, d = samples.shape
    total = 1
    for a in range(d):
        total *= nbins[a]
    counts = np.zeros((n_models, total), dtype=np.int64)
    norms = np.empty(d)
    for a in range(d):
        norms[a] = nbins[a] / (his[a] - los[a])
    for n in numba.prange(n_models):
        for i in range(n_samples):
            flat = 0
            inside = True
            for a in range(d):
                k = _bin_index(samples[n, i, a], los[a], his[a], nbins[a], norms[a])
                if k < 0:
                    inside = False
                    break
                flat = flat * nbins[a] + k
            if inside:
                counts[n, flat] += 1
    return counts


def uniform_histogram_counts(
    samples: np.ndarray, ranges: list[tuple[float, float]], nbins: list[int]
) -> np.ndarray:
    """Counts of each model's samples on a uniform grid.

    Parameters
    ----------
    samples : ndarray, shape (N, S, D)
    ranges : list of D pairs ``(lo, hi)``
    nbins : list of D ints

    Returns
    -------
    ndarray of int64, shape (N, nbins_1, ..., nbins_D)
        The same counts as ``numpy.histogramdd(samples[n], bins=[linspace(lo, hi, nb + 1)...])``.
    """
    samples = np.ascontiguousarray(samples, dtype=np.float64)
    if samples.ndim != 3 or len(ranges) != samples.shape[2] or len(nbins) != samples.shape[2]:
        raise ValueError("samples must be (N, S, D) with one range and one bin count per axis")
    los = np.array([float(r[0]) for r in ranges])
    his = np.array([float(r[1]) for r in ranges])
    nb = np.array([int(b) for b in nbins], dtype=np.int64)
    if np.any(nb < 1) or np.any(~(los < his)):
        raise ValueError("nbins must be >= 1 and each range must have lo < hi")
    counts = _uniform_counts(samples, los, his, nb)
    return counts.reshape(samples.shape[0], *[int(b) for b in nb])


@numba.njit(parallel=True, cache=True, error_model="numpy")
def _gap_fraction(samples, data, distance2):
    n_models, n_samples, d = samples.shape
    out = np.empty(n_models)
    for n in numba.prange(n_models):
        far = 0
        for i in range(n_samples):
            is_far = True
            for m in range(data.shape[0]):
                d2 = 0.0
                for a in range(d):
                    diff = samples[n, i, a] - data[m, a]
                    d2 += diff * diff
                if d2 <= distance2:
                    is_far = False
                    break
            if is_far:
                far += 1
        out[n] = far / n_samples
    return out


def gap_fraction(samples: np.ndarray, data: np.ndarray, distance: float) -> np.ndarray:
    """Per-model fraction of samples farther than ``distance`` from every point of ``data``."""
    return _gap_fraction(
        np.ascontiguousarray(samples, dtype=np.float64),
        np.ascontiguousarray(data, dtype=np.float64),
        float(distance) ** 2,
    )
