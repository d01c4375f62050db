"""One model of a memorization run: train it on a training set, sample it, wrap its denoiser.

:func:`fit_and_sample` is the one place where the four model classes of
:data:`gtv.validation.memory.config.MODEL_CLASSES` (and the linear theory's Gaussian field) are
trained and sampled for the memorization experiments. Each returns the model's denoiser as a
:class:`gtv.numerics.memory.DenoiserMap` (for the attractor criterion) and its samples in data
coordinates: the PF-ODE end points ``x_eps`` mapped through the model's own denoiser,
``y = D^(x_eps, eps)`` -- the clean output a DDPM's last step returns, and what a memorized sample
copies.

Random streams: ``seed`` is the (training set, model) pair's own sub-seed
(``stream(run_seed, "configuration", K, m)``); training draws from its ``"training"`` stream,
the PF-ODE starts from ``"sampling"`` (``"field"`` / ``"field-sampling"`` for the theory's field,
``"population-mc"`` for its Monte Carlo moments), as every other sampler of gtv.
"""

from __future__ import annotations

import numpy as np

from gtv.numerics.exact import sample_exact_denoiser
from gtv.numerics.features import ProductFeatures
from gtv.numerics.kernel import train_kernel_ensemble
from gtv.numerics.linear import (
    FirstOrderLinear,
    LinearEnsemble,
    linear_model_theory_mc,
    sample_linear_ensemble,
    train_linear_ensemble,
)
from gtv.numerics.memory import DenoiserMap, ExactDenoiser, ModelDenoiser
from gtv.numerics.schedules import get_schedule
from gtv.numerics.two_layer import sample_two_layer_ensemble, train_two_layer_ensemble
from gtv.validation.memory.config import TransitionConfig

__all__ = ["fit_and_sample", "linear_features", "linear_theory_field"]

#: Spatial range of the linear features (the data sets live in [-1, 1]**D plus noise).
X_RANGE = (-1.5, 1.5)


def linear_features(config: TransitionConfig) -> ProductFeatures:
    """The linear models' product features: Gaussian bumps in space and time."""
    T = get_schedule(config.schedule).T
    return ProductFeatures.uniform(
        "gaussian", config.dim, config.n_space, config.n_time, (config.eps, T), X_RANGE
    )


def linear_theory_field(config: TransitionConfig, data: np.ndarray, seed: object):
    """The first-order linear theory for ``data`` at ``P = n_train`` (Monte Carlo moments)."""
    theory = linear_model_theory_mc(
        data, linear_features(config), config.eps, config.schedule, config.ridge, config.n_mc,
        seed=seed,
    )  # fmt: skip
    return FirstOrderLinear(theory, config.n_train)


def fit_and_sample(
    config: TransitionConfig,
    data: np.ndarray,
    seed: object,
    *,
    kind: str | None = None,
    theory: FirstOrderLinear | None = None,
) -> tuple[DenoiserMap, np.ndarray, object]:
    """Train (or build) one model on ``data`` and draw ``config.n_samples`` samples.

    Parameters
    ----------
    config : TransitionConfig
    data : ndarray (K, D)
        The training set.
    seed : int or SeedSequence
        The pair's sub-seed (module docstring).
    kind : str, optional
        ``config.model`` (default), ``"linear-theory"`` for the first-order theory's Gaussian
        field at ``P = n_train``, or ``"linear-mean"`` for the theory's mean model alone, the
        population solution ``W_inf`` (the ``P -> infinity`` limit: no variance).
    theory : FirstOrderLinear, optional
        For the two theory kinds: the bound theory (default: :func:`linear_theory_field`).

    Returns
    -------
    (denoiser, samples, model)
        The model's :class:`DenoiserMap`, its samples ``D^(x_eps, eps)`` (n_samples, D) and the
        underlying object (ensemble, trajectory, bound theory, or ``None`` for the exact score).
    """
    kind = config.model if kind is None else kind
    cfg, S = config, config.n_samples
    steps = {"n_steps": cfg.n_steps, "method": cfg.method}
    if kind == "exact":
        den = ExactDenoiser(data, cfg.schedule, cfg.eps)
        x = sample_exact_denoiser(data, S, cfg.eps, cfg.schedule, seed=seed, **steps)
        model = None
    elif kind == "linear":
        model = train_linear_ensemble(
            data, linear_features(cfg), 1, cfg.n_train, cfg.eps, cfg.schedule, cfg.ridge,
            seed=seed, keep_normal_equations=False,
        )  # fmt: skip
        x = sample_linear_ensemble(model, S, seed=seed, **steps)[0]
        den = ModelDenoiser(model, 0)
    elif kind == "linear-theory":
        model = linear_theory_field(cfg, data, seed) if theory is None else theory
        field = model.gaussian_field(1, seed=seed)
        x = field.sample(S, seed=seed, **steps)[0]
        den = ModelDenoiser(field, 0)
    elif kind == "linear-mean":
        model = linear_theory_field(cfg, data, seed) if theory is None else theory
        th = model.theory
        mean = LinearEnsemble(
            th.W_inf[None], th.features, data, th.schedule, cfg.eps, cfg.n_train, cfg.ridge, seed
        )
        x = sample_linear_ensemble(mean, S, seed=seed, **steps)[0]
        den = ModelDenoiser(mean, 0)
    elif kind == "kernel":
        model = train_kernel_ensemble(
            data, cfg.n_train, 1, cfg.eps, [cfg.tau], cfg.schedule, cfg.activation,
            ridge=cfg.ridge, seed=seed,
        )  # fmt: skip
        x = model.sample(S, seed=seed, **steps)[0]
        den = ModelDenoiser(model, 0, tau=cfg.tau)
    elif kind == "two-layer":
        tau = cfg.learning_rate * cfg.train_steps
        model = train_two_layer_ensemble(
            data, cfg.width, 1, cfg.n_train, cfg.eps, cfg.learning_rate, [tau], cfg.schedule,
            activation=cfg.activation, seed=seed,
        )  # fmt: skip
        x = sample_two_layer_ensemble(model.networks(-1), S, seed=seed, **steps)[0]
        den = ModelDenoiser(model, 0)
    else:  # pragma: no cover - the config checks the model class
        raise ValueError(f"kind must be a model class, got {kind!r}")
    return den, den.denoise(x, cfg.eps), model
