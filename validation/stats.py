"""Model-level statistics: bootstrap confidence intervals, distances between densities, masses.

The trained model is the statistical unit (docs/engineering.md): uncertainty comes from
resampling *models*, never from pooling samples. This module is the one home of

* :func:`bootstrap_ci` -- the mean of per-model values with a BCa bootstrap interval
  (``scipy.stats.bootstrap``; works on SciPy >= 1.11, whose ``bootstrap`` takes
  ``random_state=`` where SciPy >= 1.15 takes ``rng=``: the same generator gives the same
  numbers either way);
* :func:`variance_ci` -- the across-model variance with a percentile bootstrap interval;
* :func:`interval_masses` -- bin masses of a density with the mass outside the grid as one
  more bin, and the distances :func:`total_variation` and :func:`hellinger` between such
  probability vectors;
* :func:`resampling_rng` -- the generator of a comparison's resampling tables;
* :func:`scipy_bootstrap` -- ``scipy.stats.bootstrap`` on a named stream, and
  :func:`affine_ensemble_moments_ci` built on it (the binned affine model's ``[q]`` moments).

Random streams (:mod:`gtv.numerics.streams`): :func:`bootstrap_ci` resamples from
``stream(seed, "bootstrap")``; a comparison's tables (variance intervals, density bootstraps,
half-vs-half splits, drawn in sequence from one generator) use ``stream(seed, "bootstrap", 1)``
(:func:`resampling_rng`).
"""

from __future__ import annotations

import inspect

import numpy as np
from scipy.special import ndtr, ndtri

from gtv.numerics.binned_affine import affine_ensemble_moments
from gtv.numerics.checks import check_budget, check_count
from gtv.numerics.streams import stream_rng

__all__ = [
    "DISTANCES",
    "affine_ensemble_moments_ci",
    "bca_mean_interval",
    "boot_mean",
    "bootstrap_ci",
    "hellinger",
    "interval_masses",
    "resampling_rng",
    "scipy_bootstrap",
    "standard_error",
    "total_variation",
    "variance_ci",
]


#: ``scipy.stats``, imported on first use (it takes ~0.5 s to load, and most commands never need
#: it); tests may set it to a stand-in.
scipy_stats = None


def _scipy_stats():
    global scipy_stats
    if scipy_stats is None:
        import scipy.stats

        scipy_stats = scipy.stats
    return scipy_stats


def _rng_keyword() -> str:
    """``"rng"`` (SciPy >= 1.15) or ``"random_state"`` (SciPy 1.11 - 1.14)."""
    params = inspect.signature(_scipy_stats().bootstrap).parameters
    return "rng" if "rng" in params else "random_state"


def scipy_bootstrap(data: tuple, statistic, seed: int | np.random.SeedSequence, **kwargs):
    """``scipy.stats.bootstrap(data, statistic, **kwargs)`` with resamples drawn from
    ``stream(seed, "bootstrap")``, on any supported SciPy (``rng=`` or ``random_state=``)."""
    return _scipy_stats().bootstrap(
        data, statistic, **kwargs, **{_rng_keyword(): stream_rng(seed, "bootstrap")}
    )


def bootstrap_ci(
    values: np.ndarray,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int | np.random.SeedSequence = 0,
) -> tuple[float, float, float]:
    """Mean of per-model values with a model-level bootstrap CI (BCa).

    Parameters
    ----------
    values : array_like
        One value per model (at least 2).
    confidence : float, default 0.95
    n_resamples : int, default 2000
    seed : int or SeedSequence, default 0
        Resamples come from ``stream(seed, "bootstrap")``.

    Raises
    ------
    ValueError
        Naming ``values`` when any value is NaN or infinite (a statistic of non-finite values is
        never returned), fewer than 2 values; naming ``confidence`` or ``n_resamples``.

    Returns
    -------
    (estimate, low, high)
        If BCa returns a non-finite interval (extreme skew) the percentile interval of the same
        stream is returned instead; if all values agree, ``(v, v, v)``.
    """
    try:
        v = np.asarray(values, dtype=float).ravel()
    except (TypeError, ValueError):
        raise ValueError("values must be an array of numbers (one per model)") from None
    if v.size < 2:
        raise ValueError(f"values must hold at least 2 models for a bootstrap CI, got {v.size}")
    bad = int(np.count_nonzero(~np.isfinite(v)))
    if bad:
        raise ValueError(f"values must be finite: {bad} of {v.size} are NaN or infinite")
    with np.errstate(over="ignore"):
        overflow = not (np.isfinite(v.mean()) and np.isfinite(np.ptp(v)))
    if overflow:
        raise ValueError("values are too large: their mean or spread overflows float64")
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float, np.floating)):
        raise ValueError(f"confidence must be a number in (0, 1), got {confidence!r}")
    if not (0 < confidence < 1):
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    n_resamples = check_count(n_resamples, "n_resamples", 2)
    check_budget(
        "n_resamples", n_resamples, n_bytes=3.0 * n_resamples * v.size * 8, what="resampling"
    )
    if np.ptp(v) == 0:
        # All models agree: the mean is exactly that value (np.mean can be off by an ulp).
        return float(v[0]), float(v[0]), float(v[0])
    est = float(v.mean())
    lo, hi = bca_mean_interval(v, confidence, n_resamples, stream_rng(seed, "bootstrap"))
    if not (np.isfinite(lo) and np.isfinite(hi)):  # BCa can fail on extreme skew
        lo, hi = np.quantile(
            stream_rng(seed, "bootstrap").choice(v, (n_resamples, v.size)).mean(axis=1),
            [(1 - confidence) / 2, (1 + confidence) / 2],
        )
    return est, float(lo), float(hi)


def bca_mean_interval(
    v: np.ndarray, confidence: float, n_resamples: int, rng: np.random.Generator
) -> tuple[float, float]:
    """BCa bootstrap interval of the mean of ``v`` (n,), resamples drawn from ``rng``.

    The algorithm of ``scipy.stats.bootstrap(..., method="BCa")`` (Efron & Tibshirani 1993,
    14.3 and 15.4) for the mean, written out so that a figure's gap table does not import
    ``scipy.stats`` (half a second): ``n_resamples`` resamples ``v[i]``, ``i`` drawn as one
    ``rng.integers(0, n, (n_resamples, n))``; bias ``z0 = Phi^-1`` of the share of resampled means
    below the mean (ties counted half); acceleration from the leave-one-out means; the interval
    the linear-interpolation quantiles of the resampled means at the corrected levels.
    ``tests/validation/test_stats.py`` checks it against SciPy on the same stream. NaN bounds
    where the correction is undefined (e.g. every resampled mean on one side).
    """
    n = v.size
    theta_b = v[rng.integers(0, n, (n_resamples, n))].mean(axis=-1)
    theta = v.mean()
    share = (np.count_nonzero(theta_b < theta) + np.count_nonzero(theta_b <= theta)) / (
        2 * n_resamples
    )
    z0 = ndtri(share)
    keep = ~np.eye(n, dtype=bool)
    jack = np.broadcast_to(v, (n, n))[keep].reshape(n, n - 1).mean(axis=-1)
    u = (n - 1.0) * (jack.mean() - jack)
    a = 1 / 6 * (np.sum(u**3) / float(n) ** 3) / (np.sum(u**2) / float(n) ** 2) ** (3 / 2)
    z_alpha = float(ndtri((1 - confidence) / 2))
    levels = []
    for z in (z_alpha, -z_alpha):
        num = z0 + z
        levels.append(ndtr(z0 + num / (1 - a * num)))
    if not np.all(np.isfinite(levels)):
        return np.nan, np.nan
    lo, hi = np.quantile(theta_b, levels)
    return float(lo), float(hi)


def standard_error(values: np.ndarray) -> float:
    """The standard error of the mean of ``values`` (1-D, at least 2; ``ddof = 1``), e.g. over the
    models of an ensemble, the statistical unit."""
    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or v.size < 2:
        raise ValueError(f"values must be 1-D with at least 2 entries, got shape {v.shape}")
    return float(v.std(ddof=1) / np.sqrt(v.size))


def boot_mean(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Means over ``n_boot`` model resamples of ``values`` (N, ...): (n_boot, ...) (percentile
    bootstraps of ensemble means; the model is the unit)."""
    n = values.shape[0]
    out = np.empty((n_boot, *values.shape[1:]))
    chunk = int(max(1, min(100, 4_000_000 // values.size)))  # <= ~32 MB of resampled values
    for b0 in range(0, n_boot, chunk):
        idx = rng.integers(0, n, (min(chunk, n_boot - b0), n))
        out[b0 : b0 + idx.shape[0]] = values[idx].mean(axis=1)
    return out


def resampling_rng(seed: int | np.random.SeedSequence) -> np.random.Generator:
    """The generator of a comparison's resampling tables: ``stream(seed, "bootstrap", 1)``.

    Variance intervals, density bootstraps and half-vs-half splits of one comparison are drawn
    from it in sequence (so one table's resamples do not repeat another's).
    """
    return stream_rng(seed, "bootstrap", 1)


def variance_ci(
    values: np.ndarray,
    n_boot: int,
    rng: np.random.Generator,
    confidence: float = 0.95,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Across-model variance (ddof 1) per column with a percentile model-level bootstrap CI.

    ``values`` is (N models, k columns); every column uses the same ``n_boot`` model resamples
    drawn from ``rng``. Returns ``(estimate, low, high)``, each (k,).
    """
    values = np.asarray(values, dtype=float)
    n = values.shape[0]
    est = values.var(axis=0, ddof=1)
    idx = rng.integers(0, n, (n_boot, n))
    boots = values[idx].var(axis=1, ddof=1)  # (n_boot, k)
    a = (1 - confidence) / 2
    lo, hi = np.quantile(boots, [a, 1 - a], axis=0)
    return est, lo, hi


def interval_masses(density: np.ndarray, width: float, outside: np.ndarray | float) -> np.ndarray:
    """Bin masses ``density * width`` with the mass outside the grid appended as one more bin.

    ``density`` is (..., B) bin densities on a uniform grid of bin width ``width``; ``outside``
    (broadcast to the leading axes) is clipped at 0. Returns (..., B + 1).
    """
    d = np.asarray(density, dtype=float)
    m = d * width
    out = np.broadcast_to(np.asarray(outside, dtype=float), m.shape[:-1])[..., None]
    return np.concatenate([m, np.clip(out, 0.0, None)], axis=-1)


def total_variation(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``1/2 sum |p - q|`` over the last axis (probability vectors)."""
    return 0.5 * np.abs(np.asarray(p) - np.asarray(q)).sum(axis=-1)


def hellinger(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``sqrt(1 - sum sqrt(p q))`` over the last axis (in [0, 1])."""
    bc = np.sqrt(np.clip(np.asarray(p), 0, None) * np.clip(np.asarray(q), 0, None)).sum(axis=-1)
    return np.sqrt(np.clip(1.0 - bc, 0.0, None))


#: Distances between probability vectors, by the names used in tables.
DISTANCES = {"tv": total_variation, "hellinger": hellinger}


def affine_ensemble_moments_ci(
    G: np.ndarray,
    H: np.ndarray,
    sigma_T2: float,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int | np.random.SeedSequence = 0,
) -> dict[str, tuple[float, float, float]]:
    """Model-level bootstrap CIs of ``[q]``'s mean and variance: ``{"mean": (est, lo, hi),
    "var": (est, lo, hi)}``.

    Models are resampled in pairs ``(G_n, H_n)`` (the model is the unit); percentile intervals
    (BCa's jackknife costs ``N**2`` here, and with thousands of models the statistic is close to
    normal). Resamples come from the stream ``stream(seed, "bootstrap")``.
    """
    G, H = np.asarray(G, dtype=float), np.asarray(H, dtype=float)
    out = {}
    for i, name in enumerate(("mean", "var")):

        def stat(g, h, axis=-1, _i=i):
            mu = np.mean(h, axis=axis)
            if _i == 0:
                return mu
            return sigma_T2 * np.mean(g * g, axis=axis) + np.mean(
                (h - np.expand_dims(mu, axis)) ** 2, axis=axis
            )

        res = scipy_bootstrap(
            (G, H),
            stat,
            seed,
            paired=True,
            vectorized=True,
            confidence_level=confidence,
            n_resamples=n_resamples,
            method="percentile",
        )
        est = affine_ensemble_moments(G, H, sigma_T2)[i]
        out[name] = (est, float(res.confidence_interval.low), float(res.confidence_interval.high))
    return out
