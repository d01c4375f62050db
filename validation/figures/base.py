"""What the paper's figures share: panel seeds, one trained-and-sampled linear panel, drawing.

Every figure has a ``compute_figureN`` function returning a result object (arrays + full
configuration, saveable and reloadable) and a ``plot`` method writing PNG and/or PDF files
(through :func:`gtv.validation.results.save_figure`, the one place that writes figures).

Streams (:mod:`gtv.numerics.streams`): a panel ``(i, j)`` of a figure is a part of a larger run,
so it gets ``stream(seed, "panel", i, j)`` (:func:`panel_seed`) as its own seed and derives the
named streams from it (its models train on ``"training"``, sample from ``"sampling"``); a row or
column baseline (the exact-Bayes sampler of row ``i``) gets ``stream(seed, "panel", i)`` and
samples from ``"bayes-sampling"`` (random start points) or scrambles its Sobol' start points
with ``"bayes-qmc"``. Two panels, two seeds, or a panel and a baseline never share
a stream.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from gtv.numerics.checks import check_choice
from gtv.numerics.features import ProductFeatures
from gtv.numerics.linear import LinearSampler, train_linear_ensemble
from gtv.numerics.schedules import NumericSchedule
from gtv.numerics.streams import stream
from gtv.numerics.transport import TransportedGrid, qmc_start_points, transport_1d
from gtv.validation.ensembles import DENSITIES
from gtv.validation.results import save_figure

__all__ = ["DENSITIES", "new_figure", "panel_seed", "sample_linear_panel", "write_figure"]


def panel_seed(seed: int | np.random.SeedSequence, *coords: int) -> np.random.SeedSequence:
    """The seed of a part of a figure: ``stream(seed, "panel", *coords)``."""
    return stream(seed, "panel", *coords)


def sample_linear_panel(
    data: np.ndarray,
    features: ProductFeatures,
    n_models: int,
    P: int,
    eps: float,
    schedule: NumericSchedule,
    *,
    ridge: float,
    n_samples: int,
    n_steps: int,
    method: str,
    lookup: str,
    seed: int | np.random.SeedSequence,
    density: str = "mc",
    resolution: float | None = None,
    tolerance: float = 1e-6,
    max_points: int | None = None,
) -> tuple[np.ndarray | TransportedGrid, dict[str, float]]:
    """Train ``n_models`` linear models on ``P`` DSM triples each and sample them with the PF-ODE.

    Model ``n`` trains on ``stream(seed, "training").spawn(N)[n]``. Returns the samples and the
    timings ``{"train": seconds, "sample": seconds}``; the samples depend on ``density``
    (docs/math/transport.md):

    * ``"mc"`` (default): model ``n`` samples ``n_samples`` random start points from
      ``stream(seed, "sampling").spawn(N)[n]``; an array (N, n_samples, D);
    * ``"transport"``, 1-D: every model carries the deterministic grid
      :func:`gtv.numerics.transport.transport_grid` of ``n_samples`` points (no stream); a
      :class:`gtv.numerics.transport.TransportedGrid` that
      :func:`gtv.validation.ensembles.summarize_ensemble` bins exactly; with ``resolution``
      (the bin width) refined adaptively where a chord would misplace more than ``tolerance``
      of mass, up to ``max_points`` per model (:func:`gtv.numerics.transport.transport_1d`);
    * ``"transport"``, D >= 2: scrambled-Sobol' start points
      (:func:`gtv.numerics.transport.qmc_start_points`, stream ``"transport-qmc"``), ``n_samples``
      rounded up to a power of 2; an array (N, S, D).
    """
    check_choice(density, "density", DENSITIES)
    t0 = time.perf_counter()
    ens = train_linear_ensemble(
        data, features, n_models, P, eps, schedule, ridge=ridge, seed=seed,
        keep_normal_equations=False,
    )  # fmt: skip
    t1 = time.perf_counter()

    sampler = LinearSampler(ens, n_steps=n_steps, method=method, lookup=lookup)

    def run(x_T: np.ndarray | None, models: np.ndarray | None = None) -> np.ndarray:
        n = n_samples if x_T is None else x_T.shape[1]
        return sampler.sample(n, seed=seed, x_T=x_T, models=models)

    sigma_T = float(np.sqrt(schedule.sigma2(schedule.T)))
    if density == "mc":
        samples = run(None)
    elif features.dim == 1:
        samples = transport_1d(
            run, n_models, sigma_T, n_samples, resolution=resolution, tolerance=tolerance,
            max_points=max_points,
        )  # fmt: skip
    else:
        n_qmc = 1 << max(int(n_samples) - 1, 1).bit_length()
        samples = run(qmc_start_points(n_models, n_qmc, features.dim, sigma_T, seed))
    return samples, {"train": t1 - t0, "sample": time.perf_counter() - t1}


def new_figure(figsize: tuple[float, float]):
    """A matplotlib ``Figure`` (no pyplot state; matplotlib is imported only when drawing)."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize)


def write_figure(
    fig,
    out_dir: str | Path,
    name: str,
    formats: tuple[str, ...],
    dpi: int = 150,
    parallel: bool = False,
) -> list[Path]:
    """Save ``fig`` as ``out_dir/name.<fmt>`` (folder created) for every format (``parallel``:
    see :func:`gtv.validation.results.save_figure`)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return save_figure(fig, out_dir / name, formats, dpi=dpi, parallel=parallel)
