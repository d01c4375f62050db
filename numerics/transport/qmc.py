"""Low-discrepancy start points for densities in 2-D and more (docs/math/transport.md).

In more than one dimension the sampler's map has no interval structure to bin exactly; the
start set ``N(0, sigma_T**2 I)`` is instead represented by a scrambled Sobol' set mapped through
the inverse normal CDF (randomized quasi-Monte Carlo). Each model gets its own scramble, drawn
from the ``n``-th child of the named stream ``stream(seed, "transport-qmc")``, so per-model
densities stay unbiased and independent across models; the points carry equal weights and are
binned like samples.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtri

from gtv.numerics.checks import check_budget, check_count, check_positive
from gtv.numerics.streams import model_rngs

__all__ = ["qmc_start_points"]


def qmc_start_points(
    n_models: int,
    n_points: int,
    dim: int,
    sigma_T: float,
    seed: object = 0,
    stream: str = "transport-qmc",
) -> np.ndarray:
    """Scrambled-Sobol' start points of ``N(0, sigma_T**2 I)``: shape (n_models, n_points, dim).

    Parameters
    ----------
    n_models : int
    n_points : int
        A power of 2 (Sobol' sets are balanced only then).
    dim : int
        Dimension (>= 1).
    sigma_T : float
    seed : int or SeedSequence, default 0
        Model ``n`` scrambles with ``model_rngs(seed, stream, n_models)[n]``.
    stream : str, default "transport-qmc"
        The named stream of the scrambles (:data:`gtv.numerics.streams.STREAMS`; the exact-Bayes
        baseline of Figure 3 uses ``"bayes-qmc"``).

    Notes
    -----
    The Sobol' points ``u`` are multiples of ``2**-30``; they are moved to the centres of
    their cells, ``u + 2**-31`` (so never 0 or 1), before ``x = sigma_T Phi^{-1}(u)``.
    """
    from scipy.stats import qmc  # (imported when used: scipy.stats takes ~0.5 s to load)

    n_models = check_count(n_models, "n_models")
    n_points = check_count(n_points, "n_points", 2)
    dim = check_count(dim, "dim")
    sigma_T = check_positive(sigma_T, "sigma_T")
    if n_points & (n_points - 1):
        raise ValueError(f"n_points must be a power of 2, got {n_points}")
    check_budget("n_points", n_points, n_bytes=16.0 * n_models * n_points * dim, what="QMC points")
    bits = 30
    out = np.empty((n_models, n_points, dim))
    for n, rng in enumerate(model_rngs(seed, stream, n_models)):
        u = qmc.Sobol(dim, scramble=True, bits=bits, seed=rng).random_base2(
            int(math.log2(n_points))
        )
        out[n] = sigma_T * ndtri(u + 2.0 ** -(bits + 1))
    return out
