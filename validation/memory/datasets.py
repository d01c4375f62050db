"""Training sets of the memorization experiments: K points on a circle, a mixture, a sphere.

Three synthetic sets (docs/memorization.md):

* ``"circle"`` -- K points uniform on the unit circle (Pham et al.'s two-dimensional toy);
* ``"mixture"`` -- a two-dimensional mixture of four Gaussians (means ``(+-0.6, +-0.6)``,
  standard deviation 0.2 per coordinate, equal weights);
* ``"sphere"`` -- K points uniform on the unit sphere in ``D`` dimensions (default 16).

Training sets are *nested*: set ``m`` of size K is the first K points of one pool drawn from
``stream(seed, "memory-data", dataset, m)``, so growing K adds points to the same set and a
sub-grid of K values reproduces the full run. Every generator call draws all coordinates of a
point at once, which is what makes the first K points independent of the pool size.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

from gtv.numerics.checks import check_choice, check_count
from gtv.numerics.streams import stream_rng

__all__ = ["DATASETS", "MIXTURE_MEANS", "MIXTURE_STD", "dataset_dim", "training_set"]

#: Dataset names; the position is the dataset's coordinate in its random stream.
DATASETS = ("circle", "mixture", "sphere")
#: Means and per-coordinate standard deviation of the ``"mixture"`` set.
MIXTURE_MEANS = np.array([[0.6, 0.6], [-0.6, 0.6], [-0.6, -0.6], [0.6, -0.6]])
MIXTURE_STD = 0.2
#: Largest training set (a bound on memory and on the pool drawn per set).
MAX_K = 1_000_000


def dataset_dim(dataset: str, dim: int | None = None) -> int:
    """The dimension D of ``dataset``: 2 for the circle and the mixture, ``dim`` for the sphere."""
    dataset = check_choice(dataset, "dataset", DATASETS)
    if dataset != "sphere":
        if dim not in (None, 2):
            raise ValueError(f"dim: the {dataset!r} set is two-dimensional, got dim = {dim!r}")
        return 2
    return check_count(16 if dim is None else dim, "dim", minimum=2)


def training_set(
    dataset: str, K: int, index: int = 0, *, dim: int | None = None, seed: object = 0
) -> np.ndarray:
    """Training set ``index`` of size ``K`` (module docstring): shape (K, D), float64.

    Parameters
    ----------
    dataset : {"circle", "mixture", "sphere"}
    K : int
        Number of training points, ``1 <= K <= 10**6``.
    index : int, default 0
        Which independent set (the experiments give each model its own).
    dim : int, optional
        Dimension of the ``"sphere"`` set (default 16; at least 2).
    seed : int or SeedSequence, default 0
    """
    D = dataset_dim(dataset, dim)
    K = check_count(K, "K")
    if K > MAX_K:
        raise ValueError(f"K must be at most {MAX_K}, got {K}")
    index = check_count(index, "index", minimum=0)
    rng = stream_rng(seed, "memory-data", DATASETS.index(dataset), index)
    if dataset == "circle":
        angle = 2 * np.pi * rng.uniform(size=K)
        return np.column_stack([np.cos(angle), np.sin(angle)])
    if dataset == "sphere":
        z = rng.standard_normal((K, D))
        return z / np.linalg.norm(z, axis=1, keepdims=True)
    # Mixture: one normal draw per point decides the component (through its CDF) and the offset.
    z = rng.standard_normal((K, 3))
    comp = np.minimum((ndtr(z[:, 0]) * len(MIXTURE_MEANS)).astype(int), len(MIXTURE_MEANS) - 1)
    return MIXTURE_MEANS[comp] + MIXTURE_STD * z[:, 1:]
