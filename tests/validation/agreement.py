"""Transported against Monte Carlo densities of the same models: the statistics of the agreement
tests (linear/test_compare_transport.py, linear/test_validity_map_transport.py,
linear/test_target_noise_transport.py, ntk/test_transport.py).

A transported density is exact up to its grid error, so the Monte Carlo histogram of model ``n``
(``S`` samples) is a multinomial draw from the transported bin masses and its gap mass a binomial
one. :func:`agreement` tests that null hypothesis (asymptotic, bins with expected count < 5
pooled); :func:`check_agreement` asserts it at a stated false-alarm probability and runs two
negative controls (the same statistics for a deliberately wrong pairing must fail).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

#: Per-model gap z bound: P(|z| > 4.5) = 6.8e-6 per model.
Z_MAX = 4.5


def masses(hist: np.ndarray, outside: np.ndarray, width: float) -> np.ndarray:
    """Bin masses (N, B + 1) with the outside mass as the last bin."""
    return np.concatenate([hist * width, np.atleast_1d(outside)[:, None]], axis=1)


def pearson(expected: np.ndarray, observed: np.ndarray) -> tuple[float, int]:
    """Pearson's X^2 and its degrees of freedom; bins with expected count < 5 pooled into one
    (dropped if it holds nothing)."""
    small = expected < 5
    e = np.append(expected[~small], expected[small].sum())
    o = np.append(observed[~small], observed[small].sum())
    if e[-1] == 0:
        e, o = e[:-1], o[:-1]
    return float(((o - e) ** 2 / e).sum()), e.size - 1


def agreement(transported, sampled, width: float, n_samples: int, alpha: float) -> dict:
    """The statistics of one ensemble: ``transported`` and ``sampled`` are
    ``(histograms, outside, gap)`` of its transported and Monte Carlo (``n_samples`` per model)
    densities.

    * per-model gap mass: ``z = (g_mc - g_tr) / sqrt(g_tr (1 - g_tr) / S)``, ~N(0, 1);
    * per-model density: Pearson X^2 of the Monte Carlo counts against ``S`` times the
      transported masses, ~chi^2(dof); ``worst`` is the largest X^2 over its threshold at level
      ``alpha / N`` (Bonferroni over models);
    * ensemble-mean density: X^2 of the counts summed over models against ``S`` times the
      summed masses, over its threshold at level ``alpha``. A sum of multinomials with different
      probabilities has a covariance below that of one multinomial with their mean
      probabilities, so X^2 is stochastically at most chi^2(dof): the level is conservative.
    """
    (ht, ot, gt), (hm, om, gm) = transported, sampled
    pt, pm = masses(ht, ot, width), masses(hm, om, width)
    counts = np.rint(n_samples * pm)  # integers up to the rounding of densities
    n = gt.size
    z = (gm - gt) / np.sqrt(np.maximum(gt * (1 - gt), 1e-12) / n_samples)
    per_model = [pearson(n_samples * pt[k], counts[k]) for k in range(n)]
    worst = max(x / stats.chi2.ppf(1 - alpha / n, d) for x, d in per_model)
    x_mean, dof = pearson(n_samples * pt.sum(0), counts.sum(0))
    return {"z": z, "worst": worst, "mean": x_mean / stats.chi2.ppf(1 - alpha, dof)}


def check_agreement(
    name: str, transported, sampled, width: float, n_samples: int, alpha: float
) -> dict:
    """Assert :func:`agreement` (max |z| < :data:`Z_MAX`, per-model and ensemble-mean X^2 below
    their thresholds at level ``alpha`` each) and the negative controls: the same statistics fail
    for models paired with their neighbours (gap masses) and for densities shifted by one bin.
    Returns the statistics (printed)."""
    a = agreement(transported, sampled, width, n_samples, alpha)
    print(
        f"{name}: max |z| {np.abs(a['z']).max():.2f}, per-model X^2/threshold max "
        f"{a['worst']:.2f}, ensemble-mean X^2/threshold {a['mean']:.2f}"
    )
    assert np.abs(a["z"]).max() < Z_MAX, name
    assert a["worst"] < 1, name
    assert a["mean"] < 1, name
    ht, ot, gt = transported
    rolled = agreement((ht, ot, np.roll(gt, 1)), sampled, width, n_samples, alpha)
    assert np.abs(rolled["z"]).max() > Z_MAX, name
    shifted = agreement((np.roll(ht, 1, axis=1), ot, gt), sampled, width, n_samples, alpha)
    assert shifted["mean"] > 1 and shifted["worst"] > 1, name
    return a
