"""The memorization transition: fractions memorized / spurious / generalized against K.

:func:`run_transition` walks the K grid of a :class:`TransitionConfig`; for every K and every
pair index ``m`` it draws training set ``m`` (:func:`gtv.validation.memory.datasets.training_set`),
trains one model on it, samples it and classifies its samples by the three criteria
(:data:`CRITERIA`). Next to the fractions it records, per pair, what gtv's theory says about the
same training set (docs/memorization.md, "The link to generalization through variance"):

* ``proxy_frac`` -- the proxy-score variance share ``tr C / (tr C + |s|^2)`` averaged over the
  training distribution ``t ~ U[eps, T]``, ``x ~ p_t`` (a property of the data alone);
* for linear models: ``v_kernel`` -- the theory's white-noise intensity ``tr Q(x, t) / D``
  averaged the same way; ``theory_fractions`` -- the fractions of samples of the first-order
  Gaussian-field ensemble built for that training set, classified exactly like the trained
  model's samples: the theory's *prediction* (its moments come from their own Monte Carlo
  stream, never from the trained model); and ``mean_fractions`` -- the same for the theory's
  mean model alone (the population solution, ``P -> infinity``), which separates what the
  variance of the learned score does from what the model class does.

The pair (training set, model) is the statistical unit: CIs are model-level bootstrap intervals
over the ``n_models`` pairs (:func:`gtv.validation.stats.bootstrap_ci`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from gtv.numerics.io import load_result_of_kind, save_result
from gtv.numerics.linear import population_triples
from gtv.numerics.memory import (
    LABEL_NAMES,
    classify_by_attractors,
    classify_samples,
    classify_samples_ratio,
)
from gtv.numerics.posterior import posterior_stats
from gtv.numerics.streams import stream, stream_rng
from gtv.validation.checkpoint import TaskCheckpoint
from gtv.validation.memory.config import CRITERIA, TransitionConfig
from gtv.validation.memory.datasets import training_set
from gtv.validation.memory.models import fit_and_sample, linear_theory_field
from gtv.validation.stats import bootstrap_ci

__all__ = ["TransitionResult", "classify_all", "run_transition"]

_KIND = "memorization-transition"
_PARTIAL = "memorization-transition-partial"
#: Samples descended by the attractor criterion per model (the slowest criterion).
N_ATTRACTOR_SAMPLES = 200
#: Weighted population draws for the averages of ``proxy_frac`` and ``v_kernel``.
N_LINK = 2000


def classify_all(config: TransitionConfig, denoiser, samples: np.ndarray, data: np.ndarray, seed):
    """Fractions (3 criteria, 3 classes) of one model's samples; the attractor criterion
    descends a random subset of :data:`N_ATTRACTOR_SAMPLES` samples (stream ``"subsample"``)."""
    out = np.empty((len(CRITERIA), len(LABEL_NAMES)))
    pham = classify_samples(samples, data, delta_m=config.delta_m, delta_s=config.delta_s)
    out[0] = pham.fractions
    out[1] = classify_samples_ratio(samples, data, ratio=config.ratio).fractions
    n = min(N_ATTRACTOR_SAMPLES, samples.shape[0])
    pick = stream_rng(seed, "subsample").choice(samples.shape[0], n, replace=False)
    att = classify_by_attractors(
        denoiser, samples[np.sort(pick)], config.eps, flat_tol=config.flat_tol,
        memory_tol=pham.thresholds["delta_m"],
    )  # fmt: skip
    out[2] = att.fractions
    return out, int(att.n_unconverged)


def _link_points(config: TransitionConfig, data: np.ndarray, seed) -> tuple:
    """Weighted population draws ``(t, w, x)`` for the averages of ``proxy_frac`` and
    ``v_kernel`` (the same draws for both)."""
    t, w, _, x = population_triples(data, N_LINK, config.eps, config.schedule, seed)
    return t, w / np.sum(w), x


def _proxy_frac(config: TransitionConfig, data: np.ndarray, points: tuple) -> float:
    t, w, x = points
    return float(np.sum(w * posterior_stats(data, x, t, config.schedule).frac))


def _v_kernel(bound, data: np.ndarray, points: tuple) -> float:
    t, w, x = points
    Q = bound.markov_intensity(x, t)
    return float(np.sum(w * np.trace(Q, axis1=1, axis2=2)) / data.shape[1])


@dataclass
class TransitionResult:
    """Fractions against K for one model class (module docstring).

    Attributes
    ----------
    config : TransitionConfig
    fractions : ndarray (n_K, n_models, 3, 3)
        ``[k, m, criterion, class]``: criteria in :data:`CRITERIA` order, classes in
        :data:`gtv.numerics.memory.LABEL_NAMES` order.
    theory_fractions : ndarray (n_K, n_models, 3, 3) or None
        The same for the linear theory's Gaussian field (``config.runs_theory``).
    mean_fractions : ndarray (n_K, n_models, 3, 3) or None
        The same for the theory's mean model (population solution).
    proxy_frac : ndarray (n_K, n_models)
    v_kernel : ndarray (n_K, n_models) or None
    unconverged : ndarray (n_K, n_models, 3)
        Samples whose attractor descent did not converge (trained model, theory field, mean).
    seconds : ndarray (n_K,)
        Wall time per K.
    """

    config: TransitionConfig
    fractions: np.ndarray
    theory_fractions: np.ndarray | None
    mean_fractions: np.ndarray | None
    proxy_frac: np.ndarray
    v_kernel: np.ndarray | None
    unconverged: np.ndarray
    seconds: np.ndarray

    @property
    def Ks(self) -> np.ndarray:
        return np.asarray(self.config.Ks)

    def curve(self, criterion: str = "attractors", source: str = "model") -> np.ndarray:
        """Mean and 95 % model-level CI per K and class: array (n_K, 3 classes, 3) with
        ``[..., 0]`` the mean and ``[..., 1:]`` the interval."""
        ci = CRITERIA.index(criterion)
        frac = self._source(source)[:, :, ci, :]
        out = np.empty((frac.shape[0], frac.shape[2], 3))
        for k in range(frac.shape[0]):
            for c in range(frac.shape[2]):
                out[k, c] = bootstrap_ci(
                    frac[k, :, c], seed=stream(self.config.seed, "bootstrap", k, c)
                )
        return out

    def paired_difference(
        self, criterion: str = "attractors", source: str = "theory"
    ) -> np.ndarray:
        """Trained minus ``source`` (``"theory"`` or ``"mean"``) fractions, paired by training
        set: mean and 95 % bootstrap CI over the pairs, array (n_K, 3 classes, 3)."""
        ci = CRITERIA.index(criterion)
        diff = self.fractions[:, :, ci, :] - self._source(source)[:, :, ci, :]
        out = np.empty((diff.shape[0], diff.shape[2], 3))
        for k in range(diff.shape[0]):
            for c in range(diff.shape[2]):
                seed = stream(
                    self.config.seed, "bootstrap", k, c, 1 + ("theory", "mean").index(source)
                )
                out[k, c] = bootstrap_ci(diff[k, :, c], seed=seed)
        return out

    def agreement(self, criterion: str = "attractors", source: str = "theory") -> dict:
        """How often the paired 95 % CI of trained minus ``source`` contains 0, over the (K,
        class) cells, and the largest absolute mean difference."""
        d = self.paired_difference(criterion, source)
        inside = (d[..., 1] <= 0) & (d[..., 2] >= 0)
        return {
            "cells": int(inside.size),
            "ci_contains_zero": int(inside.sum()),
            "max_abs_difference": float(np.abs(d[..., 0]).max()),
        }

    def _source(self, source: str) -> np.ndarray:
        if source == "model":
            return self.fractions
        if source == "theory" and self.theory_fractions is not None:
            return self.theory_fractions
        if source == "mean" and self.mean_fractions is not None:
            return self.mean_fractions
        raise ValueError(
            "source must be 'model' or (for linear runs with theory) 'theory' or 'mean', "
            f"got {source!r}"
        )

    def landmarks(self, criterion: str = "attractors", source: str = "model") -> dict:
        """Where the transition sits: the first K with mean memorized fraction < 1/2, the K and
        height of the largest mean spurious fraction, the first K with generalized > 1/2
        (``None`` when the grid never gets there)."""
        mean = self._source(source)[:, :, CRITERIA.index(criterion), :].mean(axis=1)
        Ks = self.config.Ks

        def first(mask):
            idx = np.flatnonzero(mask)
            return int(Ks[idx[0]]) if idx.size else None

        ks = int(np.argmax(mean[:, 1]))
        return {
            "K_memorized_below_half": first(mean[:, 0] < 0.5),
            "K_spurious_peak": int(Ks[ks]),
            "spurious_peak": float(mean[ks, 1]),
            "K_generalized_above_half": first(mean[:, 2] > 0.5),
        }

    def table(self, criterion: str = "attractors") -> list[dict]:
        """One row per K: mean fractions with CIs (model and, if run, theory), proxy share."""
        rows = []
        cur = self.curve(criterion)
        th = self.curve(criterion, "theory") if self.theory_fractions is not None else None
        mn = self.curve(criterion, "mean") if self.mean_fractions is not None else None
        for k, K in enumerate(self.config.Ks):
            row = {"K": int(K)}
            for c, name in enumerate(LABEL_NAMES):
                row[name] = [float(v) for v in cur[k, c]]
                if th is not None:
                    row[f"theory_{name}"] = [float(v) for v in th[k, c]]
                if mn is not None:
                    row[f"mean_{name}"] = [float(v) for v in mn[k, c]]
            row["proxy_frac"] = float(self.proxy_frac[k].mean())
            if self.v_kernel is not None:
                row["v_kernel"] = float(self.v_kernel[k].mean())
            row["seconds"] = float(self.seconds[k])
            rows.append(row)
        return rows

    def format_table(self, criterion: str = "attractors") -> str:
        """The :meth:`table` as aligned text (mean [low, high])."""
        rows = self.table(criterion)
        cols = [c for c in rows[0] if c not in ("K", "seconds")]
        head = f"{'K':>7}  " + "  ".join(f"{c:>22}" for c in cols)
        lines = [
            f"criterion: {criterion}; model: {self.config.model}; dataset: {self.config.dataset}",
            head,
        ]
        for r in rows:
            cells = []
            for c in cols:
                v = r[c]
                cells.append(
                    f"{v[0]:.3f} [{v[1]:.3f}, {v[2]:.3f}]" if isinstance(v, list) else f"{v:.4g}"
                )
            lines.append(f"{r['K']:>7}  " + "  ".join(f"{s:>22}" for s in cells))
        return "\n".join(lines)

    def save(self, path: str | Path) -> Path:
        """Save arrays and configuration (``.npz``)."""
        arrays = {
            "fractions": self.fractions,
            "proxy_frac": self.proxy_frac,
            "unconverged": self.unconverged,
            "seconds": self.seconds,
        }
        if self.theory_fractions is not None:
            arrays["theory_fractions"] = self.theory_fractions
            arrays["mean_fractions"] = self.mean_fractions
        if self.v_kernel is not None:
            arrays["v_kernel"] = self.v_kernel
        return save_result(path, arrays, {"kind": _KIND, "config": self.config.to_dict()})

    @classmethod
    def load(cls, path: str | Path) -> TransitionResult:
        """Reload a saved result (``ValueError`` for another kind of file or wrong shapes)."""
        arrays, cfg = load_result_of_kind(path, _KIND, "a memorization-transition result")
        config = TransitionConfig.from_dict(cfg["config"])
        shape = (len(config.Ks), config.n_models, len(CRITERIA), len(LABEL_NAMES))
        if arrays["fractions"].shape != shape:
            raise ValueError(
                f"path {str(path)!r}: fractions have shape {arrays['fractions'].shape}, "
                f"expected {shape}"
            )
        return cls(
            config, arrays["fractions"], arrays.get("theory_fractions"),
            arrays.get("mean_fractions"), arrays["proxy_frac"],
            arrays.get("v_kernel"), arrays["unconverged"], arrays["seconds"],
        )  # fmt: skip


def _empty_arrays(config: TransitionConfig) -> dict[str, np.ndarray]:
    nK, N = len(config.Ks), config.n_models
    shape = (nK, N, len(CRITERIA), len(LABEL_NAMES))
    arrays = {
        "fractions": np.zeros(shape),
        "proxy_frac": np.zeros((nK, N)),
        "unconverged": np.zeros((nK, N, 3), dtype=np.int64),
        "seconds": np.zeros(nK),
        "done": np.zeros((nK, N), dtype=bool),
    }
    if config.runs_theory:
        arrays.update(
            theory_fractions=np.zeros(shape), mean_fractions=np.zeros(shape),
            v_kernel=np.zeros((nK, N)),
        )  # fmt: skip
    return arrays


def run_transition(
    config: TransitionConfig,
    *,
    progress: bool = False,
    checkpoint: str | Path | None = None,
) -> TransitionResult:
    """Run every (K, pair) of ``config`` (module docstring).

    Pair ``m`` at size ``K`` uses training set ``m`` (nested in K) and the sub-seed
    ``stream(config.seed, "configuration", K, m)``, so any sub-grid of K values or any prefix of
    the pairs reproduces the full run's numbers exactly.

    Parameters
    ----------
    config : TransitionConfig
    progress : bool, default False
        Show a progress bar over the pairs.
    checkpoint : path, optional
        Resume file: written atomically after every pair (kind
        ``"memorization-transition-partial"``) and read at the start, so an interrupted run
        (Ctrl-C, a killed process) continues where it stopped and gives the same numbers as an
        uninterrupted one. A checkpoint of another configuration raises ``ValueError``; a
        damaged one is reported in one warning line and ignored. Removed when the run completes.
    """
    if not isinstance(config, TransitionConfig):
        raise TypeError("config must be a TransitionConfig")
    arrays = _empty_arrays(config)
    done_flags = arrays.pop("done")
    ckpt = TaskCheckpoint(checkpoint, _PARTIAL, config.to_dict(), arrays, done_flags.shape)
    arrays, done = ckpt.arrays, ckpt.done
    nK, N = done.shape
    bar = tqdm(total=nK * N, desc=f"{config.model} K-grid", disable=not progress, leave=False)
    bar.update(int(done.sum()))
    for k, K in enumerate(config.Ks):
        for m in range(N):
            if done[k, m]:
                continue
            t0 = time.perf_counter()
            _run_pair(config, k, K, m, arrays)
            arrays["seconds"][k] += time.perf_counter() - t0
            ckpt.mark_done((k, m))
            bar.update()
    bar.close()
    result = TransitionResult(
        config, arrays["fractions"], arrays.get("theory_fractions"),
        arrays.get("mean_fractions"), arrays["proxy_frac"], arrays.get("v_kernel"),
        arrays["unconverged"], arrays["seconds"],
    )  # fmt: skip
    ckpt.finish()
    return result


def _run_pair(config: TransitionConfig, k: int, K: int, m: int, arrays: dict) -> None:
    """Train, sample and classify pair ``m`` at size ``K`` into row ``k`` of ``arrays``."""
    data = training_set(config.dataset, K, m, dim=config.dim, seed=config.seed)
    sub = stream(config.seed, "configuration", K, m)
    den, samples, _ = fit_and_sample(config, data, sub)
    arrays["fractions"][k, m], arrays["unconverged"][k, m, 0] = classify_all(
        config, den, samples, data, sub
    )
    points = _link_points(config, data, sub)
    arrays["proxy_frac"][k, m] = _proxy_frac(config, data, points)
    if config.runs_theory:
        bound = linear_theory_field(config, data, sub)
        tden, tsamples, _ = fit_and_sample(config, data, sub, kind="linear-theory", theory=bound)
        arrays["theory_fractions"][k, m], arrays["unconverged"][k, m, 1] = classify_all(
            config, tden, tsamples, data, sub
        )
        mden, msamples, _ = fit_and_sample(config, data, sub, kind="linear-mean", theory=bound)
        arrays["mean_fractions"][k, m], arrays["unconverged"][k, m, 2] = classify_all(
            config, mden, msamples, data, sub
        )
        arrays["v_kernel"][k, m] = _v_kernel(bound, data, points)
