"""Training sets and initial parameters of two-layer network ensembles (docs/math/kernel.md).

Randomness (the reproducibility contract). Model ``m`` uses the generator
``model_rngs(seed, "training", N)[m]`` (the children ``stream(seed, "training").spawn(N)``,
:mod:`gtv.numerics.streams`) in this order:

1. its P DSM triples, :func:`gtv.numerics.dsm.draw_dsm_triples` (times, data indices, noise);
2. its initial parameters: ``init="antisymmetric"`` (default, n even): ``W_half`` =
   ``standard_normal((n/2, d_in))`` then ``A_half`` = ``standard_normal((n/2, D))``, and
   ``W = [W_half; W_half]``, ``A = [A_half; -A_half]`` (the "doubling trick": ``D^_0 = 0``
   exactly, same tangent-kernel distribution); ``init="standard"``: ``W`` =
   ``standard_normal((n, d_in))`` then ``A`` = ``standard_normal((n, D))``.

The triples are therefore those of the infinite-width ensemble
(:func:`gtv.numerics.kernel.ensemble.train_kernel_ensemble`) with the same seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gtv.numerics.checks import check_budget, check_count, check_eps, check_points
from gtv.numerics.dsm import draw_dsm_triples
from gtv.numerics.kernel.checks import check_activation
from gtv.numerics.kernel.inputs import check_embedding, ntk_inputs
from gtv.numerics.schedules import NumericSchedule, resolve_schedule
from gtv.numerics.streams import check_seed, model_rngs
from gtv.numerics.two_layer.checks import check_width
from gtv.numerics.two_layer.ensemble import TwoLayerNetworks

__all__ = ["TwoLayerInit", "init_two_layer_ensemble", "seed_from_config", "seed_to_config"]


def seed_to_config(seed: int | np.random.SeedSequence) -> int | dict:
    """A seed in JSON form: the integer, or ``{"entropy", "spawn_key"}`` of a ``SeedSequence``."""
    if isinstance(seed, np.random.SeedSequence):
        return {"entropy": seed.entropy, "spawn_key": list(seed.spawn_key)}
    return int(seed)


def seed_from_config(value: int | dict) -> int | np.random.SeedSequence:
    """Inverse of :func:`seed_to_config`."""
    if isinstance(value, dict):
        return np.random.SeedSequence(value["entropy"], spawn_key=tuple(value["spawn_key"]))
    return int(value)


@dataclass
class TwoLayerInit:
    """Training sets and initial parameters of ``N`` networks (see the module docstring).

    Attributes
    ----------
    W0 : ndarray, shape (N, n, d_in)
    A0 : ndarray, shape (N, n, D)
    t : ndarray, shape (N, P)
        DSM times.
    x0, x : ndarray, shape (N, P, D)
        Clean and noisy points.
    z : ndarray, shape (N, P, d_in)
        Network inputs ``ntk_inputs(x, t, eps, schedule, embedding, bias)``.
    weight : ndarray, shape (N, P)
        ``lambda~ = alpha_t**2 / sigma_t**2``.
    data : ndarray, shape (M, D)
    schedule : NumericSchedule
    eps : float
    activation, init, embedding : str
    bias : float
    seed : int or SeedSequence
        The seed the draws came from (also the default seed of the Lanczos start vectors of
        :func:`gtv.numerics.two_layer.stability.stability_limit`).
    limit : ndarray, shape (N,), or None
        ``eta_max`` per model, cached by the default call of
        :func:`~gtv.numerics.two_layer.stability.stability_limit` (None until computed).
    """

    W0: np.ndarray
    A0: np.ndarray
    t: np.ndarray
    x0: np.ndarray
    x: np.ndarray
    z: np.ndarray
    weight: np.ndarray
    data: np.ndarray
    schedule: NumericSchedule
    eps: float
    activation: str
    init: str
    embedding: str
    bias: float
    seed: int | np.random.SeedSequence
    limit: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_models(self) -> int:
        return self.W0.shape[0]

    @property
    def width(self) -> int:
        return self.W0.shape[1]

    @property
    def n_samples(self) -> int:
        """P, the DSM triples per model."""
        return self.t.shape[1]

    @property
    def dim(self) -> int:
        return self.A0.shape[2]

    def networks(self) -> TwoLayerNetworks:
        """The untrained networks."""
        return TwoLayerNetworks(
            self.W0, self.A0, self.activation, self.schedule, self.eps, self.embedding, self.bias
        )

    def config(self) -> dict:
        return {
            "n_models": self.n_models,
            "width": self.width,
            "n_samples": self.n_samples,
            "schedule": self.schedule.name,
            "T": self.schedule.T,
            "eps": self.eps,
            "activation": self.activation,
            "init": self.init,
            "embedding": self.embedding,
            "bias": self.bias,
            "seed": seed_to_config(self.seed),
        }


def init_two_layer_ensemble(
    data: object,
    width: int,
    n_models: int,
    n_samples: int,
    eps: float,
    schedule: object = "vp-linear",
    *,
    activation: str = "relu",
    init: str = "antisymmetric",
    embedding: str = "linear",
    bias: float = 1.0,
    seed: int | np.random.SeedSequence = 0,
) -> TwoLayerInit:
    """Draw every model's DSM triples and initial parameters (module docstring for the order).

    Parameters
    ----------
    data : array_like, shape (M, D)
        Training points.
    width : int
        n >= 1 hidden units (even for ``init="antisymmetric"``).
    n_models : int
        N >= 1.
    n_samples : int
        P >= 1 DSM triples per model.
    eps : float
        Smallest training time, ``0 < eps < T``.
    schedule : str or NumericSchedule, default "vp-linear"
    activation : {"relu", "erf"}
    init : {"antisymmetric", "standard"}
    embedding : {"linear", "log-sigma"}
        Time embedding of :func:`gtv.numerics.kernel.inputs.ntk_inputs`.
    bias : float
        The constant input coordinate.
    seed : int or SeedSequence
        See the module docstring for the streams drawn from it.

    Returns
    -------
    TwoLayerInit
    """
    sched = resolve_schedule(schedule)
    data = check_points(data, "data")
    check_activation(activation)
    width = check_width(width, init)
    check_embedding(embedding)
    n_models = check_count(n_models, "n_models (N)")
    n_samples = check_count(n_samples, "n_samples (P)")
    eps = check_eps(eps, sched.T)
    D = data.shape[1]
    d_in = D + 2
    seed = check_seed(seed)
    check_budget(
        "n_models (N), width, n_samples (P)", f"{n_models}, {width}, {n_samples}",
        n_bytes=8.0 * n_models * (2 * width * (d_in + D) + 4 * n_samples * (D + 1)),
        n_ops=float(n_models) * width * n_samples * d_in, what="the initial networks",
    )  # fmt: skip
    rngs = model_rngs(seed, "training", n_models)
    W0 = np.empty((n_models, width, d_in))
    A0 = np.empty((n_models, width, D))
    t = np.empty((n_models, n_samples))
    x0 = np.empty((n_models, n_samples, D))
    x = np.empty((n_models, n_samples, D))
    for m, rng in enumerate(rngs):
        t[m], x0[m], x[m] = draw_dsm_triples(rng, data, n_samples, eps, sched)
        if init == "antisymmetric":
            half = width // 2
            W0[m, :half] = rng.standard_normal((half, d_in))
            A0[m, :half] = rng.standard_normal((half, D))
            W0[m, half:] = W0[m, :half]
            A0[m, half:] = -A0[m, :half]
        else:
            W0[m] = rng.standard_normal((width, d_in))
            A0[m] = rng.standard_normal((width, D))
    z = np.stack([ntk_inputs(x[m], t[m], eps, sched, embedding, bias) for m in range(n_models)])
    return TwoLayerInit(
        W0, A0, t, x0, x, z, sched.dsm_weight(t), data, sched, eps, activation, init, embedding,
        float(bias), seed,
    )  # fmt: skip
