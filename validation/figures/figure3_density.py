"""How accurate Figure 3's per-model densities are: scrambled-Sobol' vs random start points.

:func:`measure_start_sets` trains the models of Figure-3 panels exactly as
:func:`~gtv.validation.figures.figure3.compute_figure3` does (same panel seeds, same training
streams) and starts each model's sampler from several start sets -- ``"transport"``: the
figure's scrambled-Sobol' points (:func:`gtv.numerics.transport.qmc_start_points`, stream
``"transport-qmc"``), ``"mc"``: the figure's random points (stream ``"sampling"``) -- of given
sizes. Every result is compared, model by model, with a Monte Carlo reference of the *same*
model: ``n_reference`` random start points per model (default 16 times the largest start set)
from the stream ``"reference-mc"``, which no figure uses. :func:`format_start_set_table` prints
the errors pooled over panels. docs/math/transport.md ("2-D and more") quotes the table.

Measures (per model unless stated; the reference's own noise is in the first three):

* ``tv``: total variation between the ``n_bins x n_bins`` histograms of Figure 3 (the mass
  outside the box as one more bin);
* ``mean_tv``: the same between the ensemble means (the image the figure draws);
* ``equivalent_samples``: the number of *random* start points with the same mean squared bin
  error, ``sum p(1 - p) / sum (p - p_ref)^2`` summed over bins and models, with the
  reference's expected share ``sum p_ref (1 - p_ref) / (n_reference - 1)`` subtracted from the
  denominator (so it is free of the reference's noise on average; Monte Carlo gives ``n``);
* errors of the band densities of :func:`~gtv.validation.figures.bands.segment_vs_diagonal_mass`
  (side, diagonal, their difference) and of the gap mass;
* ``difference_ci`` against ``reference_difference_ci``: the row of Figure 3's segment table
  (model-level bootstrap of the difference, the same resamples for both).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gtv.numerics.checks import check_budget, check_choice, check_count
from gtv.numerics.features import ProductFeatures
from gtv.numerics.linear import sample_linear_ensemble, train_linear_ensemble
from gtv.numerics.schedules import get_schedule
from gtv.numerics.streams import model_rngs
from gtv.numerics.transport import qmc_start_points
from gtv.validation.ensembles import gap_mass, per_model_histograms
from gtv.validation.figures.bands import (
    SegmentDiagonalMass,
    segment_vs_diagonal_mass,
    square_data,
)
from gtv.validation.figures.base import DENSITIES, panel_seed
from gtv.validation.figures.figure3 import Figure3Config, rotation_label
from gtv.validation.stats import bootstrap_ci

__all__ = ["StartSetErrors", "format_start_set_table", "measure_start_sets", "pooled_errors"]


@dataclass(frozen=True)
class StartSetErrors:
    """Errors of one start set on one Figure-3 panel against the panel's Monte Carlo reference.

    Attributes
    ----------
    kind : str
        Feature kind of the panel.
    rotation : float
        Rotation of the panel's training points.
    density : {"mc", "transport"}
        Random start points or scrambled-Sobol' ones.
    n_points : int
        Start points per model.
    n_reference : int
        Random start points per model of the reference.
    seconds : float
        Wall time of the start points and the sampler (all models).
    tv : ndarray, shape (N,)
        Per-model total variation between the histograms (outside mass as one more bin).
    mean_tv : float
        Total variation between the ensemble-mean histograms.
    squared_error : ndarray, shape (N,)
        Per model ``sum (p - p_ref)^2`` over the bins minus the reference's expected share.
    bin_variance : ndarray, shape (N,)
        Per model ``sum p_ref (1 - p_ref)``: ``n`` times the squared error of ``n`` random points.
    segment_density, diagonal_density, difference, gap : ndarray, shape (N,)
        Per-model errors (estimate minus reference) of the side-band density, the diagonal-band
        density, their difference and the gap mass.
    difference_ci, reference_difference_ci : tuple of float
        ``(estimate, low, high)`` of the model-level 95 % bootstrap CI of the difference (the
        segment table's), from this start set and from the reference.
    """

    kind: str
    rotation: float
    density: str
    n_points: int
    n_reference: int
    seconds: float
    tv: np.ndarray
    mean_tv: float
    squared_error: np.ndarray
    bin_variance: np.ndarray
    segment_density: np.ndarray
    diagonal_density: np.ndarray
    difference: np.ndarray
    gap: np.ndarray
    difference_ci: tuple[float, float, float]
    reference_difference_ci: tuple[float, float, float]

    @property
    def equivalent_samples(self) -> float:
        """Random start points per model with the same mean squared bin error."""
        return _equivalent(self.bin_variance.sum(), self.squared_error.sum())

    @property
    def ci_shift(self) -> float:
        """Largest change of the segment-table row (estimate, low, high) against the reference."""
        a, b = self.difference_ci, self.reference_difference_ci
        return float(max(abs(x - y) for x, y in zip(a, b, strict=True)))


def _equivalent(variance: float, squared_error: float) -> float:
    return float(variance / squared_error) if squared_error > 0 else math.inf


def _summaries(
    x: np.ndarray, data: np.ndarray, edges: np.ndarray, cfg: Figure3Config
) -> tuple[np.ndarray, SegmentDiagonalMass, np.ndarray]:
    """Bin masses (N, B*B + 1; the last column is the mass outside the box), band masses and
    gap masses of samples (N, S, 2)."""
    cell = float(np.diff(edges)[0]) ** 2
    h = per_model_histograms(x, [edges, edges]).reshape(x.shape[0], -1) * cell
    masses = np.concatenate([h, np.clip(1.0 - h.sum(axis=1, keepdims=True), 0.0, None)], axis=1)
    reg = segment_vs_diagonal_mass(x, data, cfg.delta, cfg.point_radius)
    return masses, reg, gap_mass(x, data, cfg.point_radius)


def measure_start_sets(
    config: Figure3Config | None = None,
    starts: Sequence[tuple[str, int]] = (
        ("mc", 4096),
        ("transport", 4096),
        ("mc", 8192),
        ("transport", 8192),
    ),
    panels: Sequence[tuple[int, int]] | None = None,
    n_reference: int | None = None,
) -> list[StartSetErrors]:
    """Per-model errors of Figure-3 densities from several start sets against Monte Carlo.

    Parameters
    ----------
    config : Figure3Config, optional
        The panels' settings (default :meth:`Figure3Config.fast`: 20 models, 120 x 120 bins);
        its ``density``, ``n_samples`` and ``n_points`` are not used.
    starts : sequence of (density, n)
        Start sets: ``density`` in ``("mc", "transport")``; ``n`` points per model (a power of
        2 for ``"transport"``).
    panels : sequence of (i, j), optional
        Panels ``(kinds[i], rotations[j])`` to measure (default: all).
    n_reference : int, optional
        Random start points per model of the reference (default: 16 times the largest ``n``).

    Returns
    -------
    list of StartSetErrors
        Panel by panel, in the order of ``starts``.

    Raises
    ------
    ValueError
        Naming ``starts`` (empty, an unknown density, a bad size), ``panels`` (outside the
        configuration's grid) or ``n_reference`` (not an integer >= 2, or too large for the
        memory or work limits of :func:`gtv.numerics.checks.check_budget`).
    """
    cfg = config or Figure3Config.fast()
    if not isinstance(cfg, Figure3Config):
        raise TypeError(f"config must be a Figure3Config, got {type(cfg).__name__}")
    starts = [tuple(s) for s in starts]
    if not starts or any(len(s) != 2 for s in starts):
        raise ValueError(f"starts must be a non-empty sequence of (density, n), got {starts!r}")
    for density, n in starts:
        check_choice(density, "starts: density", DENSITIES)
        check_count(n, "starts: n", 2)
        if density == "transport" and n & (n - 1):
            raise ValueError(f"starts: n must be a power of 2 for 'transport', got {n}")
    nk, nr = len(cfg.kinds), len(cfg.rotations)
    panels = [(i, j) for i in range(nk) for j in range(nr)] if panels is None else list(panels)
    for p in panels:
        if len(p) != 2 or not (0 <= p[0] < nk and 0 <= p[1] < nr):
            raise ValueError(f"panels must be (i, j) with 0 <= i < {nk}, 0 <= j < {nr}, got {p!r}")
    largest = max(n for _, n in starts)
    n_ref = check_count(16 * largest if n_reference is None else n_reference, "n_reference", 2)
    N = cfg.n_models
    check_budget(
        "n_reference", n_ref, n_bytes=48.0 * n_ref + 48.0 * N * largest,
        n_ops=float(len(panels)) * N * (n_ref + sum(n for _, n in starts)) * cfg.n_steps
        * cfg.n_features, what="the reference and the start sets",
    )  # fmt: skip
    sched = get_schedule(cfg.schedule)
    sigma_T = float(np.sqrt(sched.sigma2(sched.T)))
    edges = np.linspace(cfg.x_range[0], cfg.x_range[1], cfg.n_bins + 1)
    out = []
    for i, j in panels:
        kind, rot = cfg.kinds[i], cfg.rotations[j]
        feats = ProductFeatures.uniform(
            kind, 2, cfg.n_space, cfg.n_time, (cfg.eps, sched.T), cfg.x_range
        )
        seed = panel_seed(cfg.seed, i, j)
        data = square_data(rot)
        ens = train_linear_ensemble(
            data, feats, N, cfg.P, cfg.eps, sched, ridge=cfg.ridge, seed=seed,
            keep_normal_equations=False,
        )  # fmt: skip
        sample = {"n_steps": cfg.n_steps, "method": cfg.method, "lookup": cfg.lookup}
        # The reference, one model at a time (memory: one model's points).
        ref_masses, ref_seg, ref_diag, ref_gap = [], [], [], []
        for n, rng in enumerate(model_rngs(seed, "reference-mc", N)):
            x_T = sigma_T * rng.standard_normal((1, n_ref, 2))
            x = sample_linear_ensemble(ens, n_ref, x_T=x_T, models=np.array([n]), **sample)
            m, reg, g = _summaries(x, data, edges, cfg)
            ref_masses.append(m[0])
            ref_seg.append(reg.segment_mass[0])
            ref_diag.append(reg.diagonal_mass[0])
            ref_gap.append(g[0])
            del x, x_T
        ref_masses = np.array(ref_masses)
        ref_reg = SegmentDiagonalMass(
            np.array(ref_seg), np.array(ref_diag), reg.segment_area, reg.diagonal_area,
            reg.delta, reg.radius,
        )  # fmt: skip
        ref_gap = np.array(ref_gap)
        bin_variance = (ref_masses * (1.0 - ref_masses)).sum(axis=1)
        boot = panel_seed(cfg.seed, i, j)
        ref_ci = bootstrap_ci(ref_reg.difference, seed=boot)
        for density, n in starts:
            t0 = time.perf_counter()
            if density == "transport":
                x_T = qmc_start_points(N, n, 2, sigma_T, seed)
                x = sample_linear_ensemble(ens, n, seed=seed, x_T=x_T, **sample)
            else:
                x = sample_linear_ensemble(ens, n, seed=seed, **sample)
            seconds = time.perf_counter() - t0
            masses, reg, g = _summaries(x, data, edges, cfg)
            del x
            diff = masses - ref_masses
            out.append(
                StartSetErrors(
                    kind=kind,
                    rotation=rot,
                    density=density,
                    n_points=n,
                    n_reference=n_ref,
                    seconds=seconds,
                    tv=0.5 * np.abs(diff).sum(axis=1),
                    mean_tv=float(0.5 * np.abs(diff.mean(axis=0)).sum()),
                    squared_error=(diff**2).sum(axis=1) - bin_variance / (n_ref - 1),
                    bin_variance=bin_variance,
                    segment_density=reg.segment_density - ref_reg.segment_density,
                    diagonal_density=reg.diagonal_density - ref_reg.diagonal_density,
                    difference=reg.difference - ref_reg.difference,
                    gap=g - ref_gap,
                    difference_ci=bootstrap_ci(reg.difference, seed=boot),
                    reference_difference_ci=ref_ci,
                )
            )
    return out


def pooled_errors(errors: Sequence[StartSetErrors]) -> list[dict]:
    """The errors pooled over panels, one row per start set ``(density, n_points)``.

    Each row has ``density``, ``n_points``, ``panels``, ``models``, ``seconds`` (summed),
    ``equivalent_samples`` (over all models and bins), ``tv`` and ``mean_tv``, ``segment``,
    ``diagonal``, ``difference`` and ``gap`` as ``(median, max)`` of the absolute per-model
    errors (``mean_tv``: of the panels), and ``ci_shift``: the largest change of a
    segment-table row against the reference.
    """
    rows: dict[tuple[str, int], list[StartSetErrors]] = {}
    for e in errors:
        rows.setdefault((e.density, e.n_points), []).append(e)
    out = []
    for (density, n), es in rows.items():

        def med_max(values: np.ndarray) -> tuple[float, float]:
            a = np.abs(np.concatenate(values))
            return float(np.median(a)), float(a.max())

        out.append(
            {
                "density": density,
                "n_points": n,
                "panels": len(es),
                "models": sum(e.tv.size for e in es),
                "seconds": sum(e.seconds for e in es),
                "equivalent_samples": _equivalent(
                    sum(e.bin_variance.sum() for e in es), sum(e.squared_error.sum() for e in es)
                ),
                "tv": med_max([e.tv for e in es]),
                "mean_tv": med_max([np.array([e.mean_tv]) for e in es]),
                "segment": med_max([e.segment_density for e in es]),
                "diagonal": med_max([e.diagonal_density for e in es]),
                "difference": med_max([e.difference for e in es]),
                "gap": med_max([e.gap for e in es]),
                "ci_shift": max(e.ci_shift for e in es),
            }
        )
    return out


def format_start_set_table(errors: Sequence[StartSetErrors], per_panel: bool = True) -> str:
    """The pooled errors (:func:`pooled_errors`) as a text table, and with ``per_panel`` each
    panel's segment-table row from every start set next to the reference's."""
    e0 = errors[0]
    lines = [
        f"per-model errors against {e0.n_reference} random start points per model of the same "
        "model; median / max of |error|",
        f"{'start set':>16s} {'points':>7s} {'equiv. MC':>9s} {'TV':>15s} {'TV mean':>15s} "
        f"{'side dens.':>15s} {'diag. dens.':>15s} {'side-diag':>15s} {'gap mass':>15s} "
        f"{'CI shift':>8s} {'seconds':>7s}",
    ]
    for r in pooled_errors(errors):
        name = "scrambled Sobol'" if r["density"] == "transport" else "random"
        cells = [f"{r[k][0]:.4f}/{r[k][1]:.4f}" for k in ("tv", "mean_tv", "segment", "diagonal",
                                                           "difference", "gap")]  # fmt: skip
        lines.append(
            f"{name:>16s} {r['n_points']:>7d} {r['equivalent_samples']:>9.0f} "
            + " ".join(f"{c:>15s}" for c in cells)
            + f" {r['ci_shift']:>8.4f} {r['seconds']:>7.1f}"
        )
    if per_panel:
        lines.append("segment table, side-diag density [95 % CI]:")
        seen = set()
        for e in errors:
            key = (e.kind, e.rotation)
            if key not in seen:
                seen.add(key)
                est, lo, hi = e.reference_difference_ci
                lines.append(
                    f"  {e.kind:>8s} rot={rotation_label(e.rotation):>4s}  reference "
                    f"{e.n_reference:>8d} random  {est:+.4f} [{lo:+.4f}, {hi:+.4f}]"
                )
            est, lo, hi = e.difference_ci
            name = "Sobol'" if e.density == "transport" else "random"
            lines.append(
                f"  {'':>8s} {'':>8s}  {'':>9s} {e.n_points:>8d} {name:<6s}  "
                f"{est:+.4f} [{lo:+.4f}, {hi:+.4f}]"
            )
    return "\n".join(lines)
