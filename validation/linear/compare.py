"""Trained linear ensembles vs the theory (docs/math/linear.md, docs/math/predictions.md).

For one configuration (1-D data ``{-1, 0, 1}``, ``vp-linear``, ``F = n_space x n_time`` Gaussian
features, eps, P) :func:`compare_linear` trains N models, computes the first-order theory
(:func:`gtv.numerics.linear.linear_model_theory`, bound to P as a
:class:`gtv.numerics.linear.FirstOrderLinear`) -- or takes any other theory of the same
configuration through the contract :class:`gtv.numerics.contract.EnsembleTheory` -- and its
density predictions (:mod:`gtv.validation.predictions`), and reports

1. **denoiser moments** at query points ``(x, t)``: the across-model mean and variance of
   ``D^(x, t)`` (model-level bootstrap CIs: BCa for the mean, percentile for the variance) vs
   the predicted mean and variance (first order: ``D_bar = W_inf phi`` and
   ``Var D^ = phi^T Cov W(P) phi``), and their ratio;
2. **densities**: the ensemble-mean histogram vs each prediction (Gaussian-field ensemble,
   white-noise Fokker-Planck, ``p(x|eps)``, exact-Bayes PF-ODE): total variation
   ``TV = 1/2 sum |p - q|`` and Hellinger ``H = sqrt(1 - sum sqrt(p q))`` over the bin masses
   of a common grid (the mass outside the grid is one more bin), each with a model-level
   bootstrap CI (resample models, recompute the ensemble-mean histogram, the distance);
   the **noise floor** is the same distance between the mean histograms of two random halves
   of the trained ensemble (averaged over ``n_splits`` random splits). A half-vs-half
   difference has twice the variance of trained(N)-vs-Gaussian-field(N) and four times that of
   trained(N)-vs-deterministic, so for a distance dominated by noise expect about
   ``floor / sqrt 2`` and ``floor / 2`` respectively;
3. **gap mass** (fraction farther than ``gap_distance`` from every training point) of each;
4. with ``diagnostics=True`` (the default), the **moment error and closure error**
   (:mod:`gtv.validation.linear.diagnostics`): the moment-matched Gaussian field (the trained
   ensemble's own mean and covariance of ``W``, same sampler) against the theory's Gaussian field
   (moment error) and against the trained ensemble (closure error), and the across-model
   distribution of ``D^(x, t)`` at the query points (skewness, excess kurtosis, quantiles, top
   1 % variance share) next to the theory's.

Every per-model learned density (trained models, Gaussian-field members, moment-matched members,
the exact-Bayes PF-ODE) is by default **transported** (``density="transport"``): the model's
PF-ODE map carried over a deterministic quantile grid of ``n_points`` start points, refined where
a cell's chord may misplace more than ``transport_tolerance`` of mass across a bin, up to
``max_points`` per model, and the Gaussian mass binned exactly (docs/math/transport.md,
"Comparisons"): no sampling noise, and a per-model error estimate recorded in
``meta["transport_error_tv"]``. ``density="mc"`` bins ``n_samples`` Monte Carlo samples per model
instead (and ``n_bayes_samples`` for the exact-Bayes reference).

The trained model is the unit: no samples are pooled across models (statistics:
:mod:`gtv.validation.stats`).
"""

from __future__ import annotations

import time

import numpy as np

from gtv.numerics.contract import EnsembleTheory
from gtv.numerics.features import ProductFeatures
from gtv.numerics.linear import (
    CavityLinear,
    ExactTargetLinear,
    FirstOrderLinear,
    OccupancyLinear,
    SecondOrderLinear,
    cavity_moments,
    linear_model_theory,
    occupancy_moments,
    population_nodes,
    second_order_moments,
    train_linear_ensemble,
)
from gtv.numerics.linear.occupancy import occupancy_split
from gtv.numerics.linear.strata import STRATA
from gtv.numerics.schedules import get_schedule
from gtv.numerics.streams import stream_rng
from gtv.validation.exact_below import choose_exact_below
from gtv.validation.figures.figure2 import FIGURE2_DATA
from gtv.validation.linear.comparison import (
    FIELD_KINDS,
    THEORY_TITLES,
    LinearCompareConfig,
    LinearComparison,
)
from gtv.validation.linear.densities import linear_ensemble_densities
from gtv.validation.linear.diagnostics import (
    closure_rows,
    distribution_rows,
    moment_matched_densities,
)
from gtv.validation.predictions import compute_theory_predictions
from gtv.validation.shells import shell_rows
from gtv.validation.stats import (
    DISTANCES,
    bootstrap_ci,
    interval_masses,
    resampling_rng,
    variance_ci,
)

__all__ = ["compare_linear"]  # fmt: skip


def _check_theory(theory: object, c: LinearCompareConfig) -> EnsembleTheory:
    if not isinstance(theory, EnsembleTheory):
        raise TypeError("theory must implement gtv.numerics.contract.EnsembleTheory (or be None)")
    same = (
        theory.dim == 1
        and float(theory.P) == float(c.P)
        and float(theory.eps) == float(c.eps)
        and theory.schedule.name == c.schedule
        and np.array_equal(theory.data, FIGURE2_DATA)
    )
    if not same:
        raise ValueError(
            "theory: must be a theory of this configuration (data {-1, 0, 1}, the config's "
            "schedule, eps and P)"
        )
    return theory


def compare_linear(
    config: LinearCompareConfig | None = None,
    progress: bool = False,
    theory: EnsembleTheory | None = None,
) -> LinearComparison:
    """Train, sample, compute the theory and compare (module docstring).

    Parameters
    ----------
    config : LinearCompareConfig, optional
    progress : bool
        Progress bar while training.
    theory : EnsembleTheory, optional
        The theory compared with (any implementation of
        :class:`gtv.numerics.contract.EnsembleTheory` for this configuration, e.g. a
        :class:`~gtv.numerics.linear.prediction.SecondOrderLinear`). Default: the first-order
        theory :class:`~gtv.numerics.linear.prediction.FirstOrderLinear` of
        :func:`gtv.numerics.linear.theory.linear_model_theory` with the config's features.

    Notes
    -----
    Streams (:mod:`gtv.numerics.streams`): models train on ``stream(seed, "training")`` and,
    with ``density="mc"``, sample from ``stream(seed, "sampling")`` (per-model children; the
    transport grid draws nothing); the predictions use the streams documented in
    :mod:`gtv.validation.predictions`; bootstrap intervals
    ``stream(seed, "bootstrap")`` and the resampling tables (variance intervals, density
    bootstraps, half-vs-half splits) ``stream(seed, "bootstrap", 1)``; the diagnostics'
    moment-matched field ``stream(seed, "moment-field")`` (weights) and
    ``stream(seed, "moment-field-sampling")`` (start points), their intervals
    ``stream(seed, "bootstrap", 2)``; the mass-by-distance table's
    (:mod:`gtv.validation.shells`) ``stream(seed, "bootstrap", 3)``.
    """
    c = config or LinearCompareConfig()
    sched = get_schedule(c.schedule)
    if not (0 < c.eps < sched.T):
        raise ValueError(f"eps must lie in (0, T) = (0, {sched.T:g}), got {c.eps!r}")
    if theory is not None:
        theory = _check_theory(theory, c)
    timings = {}
    feats = ProductFeatures.uniform("gaussian", 1, c.n_space, c.n_time, (c.eps, sched.T), c.x_range)
    edges = np.linspace(c.hist_range[0], c.hist_range[1], c.n_bins + 1)
    width = float(edges[1] - edges[0])

    t0 = time.perf_counter()
    ens = train_linear_ensemble(
        FIGURE2_DATA,
        feats,
        c.n_models,
        c.P,
        c.eps,
        sched,
        ridge=c.ridge,
        seed=c.seed,
        keep_normal_equations=False,
        progress=progress,
        target=c.target,
    )
    timings["train_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    transport = c.density_settings()
    trained = linear_ensemble_densities(
        ens, edges, c.gap_distance, density=c.density, n_samples=c.n_samples,
        transport=transport, n_steps=c.n_steps, method=c.method, seed=c.seed,
    )  # fmt: skip
    hist, outside, gap = trained.histograms, trained.outside, trained.gap
    timings["sample_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    theory_meta: dict = {}
    if theory is None:
        population = linear_model_theory(FIGURE2_DATA, feats, c.eps, sched, ridge=c.ridge)
        theory = FirstOrderLinear(population, c.P)
        if c.target == "exact":
            theory = ExactTargetLinear(population, c.P)
        elif c.theory == "second_order":
            theory = SecondOrderLinear(population, second_order_moments(population), c.P)
        elif c.theory in ("occupancy", "stratified"):
            moments = cavity_moments(population, c.P)
            strata = STRATA if c.theory == "stratified" else None
            occupancy = occupancy_moments(population, moments, seed=c.seed, strata=strata)
            theory = OccupancyLinear(population, moments, occupancy, field=c.theory)
        elif c.theory in FIELD_KINDS:
            field_kind = FIELD_KINDS[c.theory]
            moments = cavity_moments(population, c.P)
            nodes = population_nodes(population)
            below = c.exact_below
            if below == "auto":
                choice = choose_exact_below(
                    population, moments, field_kind, n_members=c.ladder_members or c.n_models,
                    edges=edges,
                    gap_distance=c.gap_distance, density=c.density,
                    n_samples=c.ladder_samples or c.n_samples, transport=c.density_settings(),
                    n_steps=c.n_steps, method=c.method, seed=c.seed, nodes=nodes,
                    progress=progress,
                )  # fmt: skip
                below = choice.t_c
                theory_meta["exact_below_choice"] = choice.to_dict()
            if c.theory == "consistent":  # that field's own moments (Monte Carlo)
                split = occupancy_split(
                    population, moments, nodes=nodes, consistent=True, exact_below=below
                )
                occupancy = occupancy_moments(population, moments, seed=c.seed, split=split)
                theory = OccupancyLinear(population, moments, occupancy, "occupancy", nodes)
            else:
                theory = CavityLinear(population, moments, field_kind, nodes, exact_below=below)
        theory_meta.update(
            {
                "theory_eigenvalue_range": population.eigenvalue_range,
                "theory_n_hermite": population.n_hermite,
            }
        )
        if c.target == "exact":
            theory_meta["theory_kind"] = "first-order theory, misfit part only (exact target)"
        elif c.theory != "first_order":
            theory_meta["theory_kind"] = THEORY_TITLES[c.theory]
    else:
        theory_meta = {"theory_kind": str(theory.config().get("kind", type(theory).__name__))}
    timings["theory_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    preds = compute_theory_predictions(
        theory,
        c.n_theory_members or c.n_models,
        c.theory_samples or c.n_samples,
        edges,
        gap_distance=c.gap_distance,
        # the exact-Bayes baseline's samples do not follow theory_samples
        n_bayes_samples=c.n_bayes_samples
        or min((c.n_theory_members or c.n_models) * c.n_samples, 10**6),
        n_steps=c.n_steps,
        method=c.method,
        seed=c.seed,
        fp_refine=c.fp_refine,
        fp_steps=c.fp_steps,
        density=c.density,
        transport=transport,
    )
    timings["predictions_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    rng = resampling_rng(c.seed)
    # 1. denoiser moments at the query points
    # the same Gaussian-field members as the predictions (same stream), for its Var D^
    gf = theory.gaussian_field(c.n_models, c.seed)
    rows = []
    qx = np.asarray(c.query_x, dtype=float)
    for t in c.query_t:
        if not (c.eps <= t <= sched.T):
            continue
        vals = ens.denoise(qx[:, None], t)[:, :, 0]  # (N, n_x)
        gvals = gf.denoise(qx[:, None], t)[:, :, 0]
        pm = theory.mean_denoiser(qx, t)[:, 0]
        pv = theory.denoiser_covariance((qx, t), paired=True)[:, 0, 0]
        v, vlo, vhi = variance_ci(vals, c.n_boot, rng)
        for k, x in enumerate(qx):
            m, mlo, mhi = bootstrap_ci(vals[:, k], n_resamples=c.n_boot, seed=c.seed)
            rows.append(
                {
                    "x": float(x),
                    "t": float(t),
                    "mean": m,
                    "mean_lo": mlo,
                    "mean_hi": mhi,
                    "mean_pred": float(pm[k]),
                    "var": float(v[k]),
                    "var_lo": float(vlo[k]),
                    "var_hi": float(vhi[k]),
                    "var_pred": float(pv[k]),
                    "var_ratio": float(v[k] / pv[k]) if pv[k] > 0 else float("nan"),
                    "var_gf": float(gvals[:, k].var(ddof=1)),
                }
            )

    # 2. densities
    pm_trained = interval_masses(hist.mean(axis=0), width, outside.mean())
    n = c.n_models
    idx = rng.integers(0, n, (c.n_boot, n))
    boot_masses = np.empty((c.n_boot, c.n_bins + 1))
    for b0 in range(0, c.n_boot, 100):
        sl = idx[b0 : b0 + 100]
        boot_masses[b0 : b0 + 100] = interval_masses(
            hist[sl].mean(axis=1), width, outside[sl].mean(1)
        )
    density_rows = []
    for name, (dens, out) in preds.densities().items():
        q = interval_masses(dens, width, out)
        row = {"theory": name}
        for dn, fn in DISTANCES.items():
            bs = fn(boot_masses, q[None, :])
            lo, hi = np.quantile(bs, [0.025, 0.975])
            row.update({dn: float(fn(pm_trained, q)), f"{dn}_lo": float(lo), f"{dn}_hi": float(hi)})
        density_rows.append(row)
    floor = {"tv_splits": [], "hellinger_splits": []}
    for _ in range(c.n_splits):
        perm = rng.permutation(n)
        a, b = perm[: n // 2], perm[n // 2 : 2 * (n // 2)]
        pa = interval_masses(hist[a].mean(0), width, outside[a].mean())
        pb = interval_masses(hist[b].mean(0), width, outside[b].mean())
        for dn, fn in DISTANCES.items():
            floor[f"{dn}_splits"].append(float(fn(pa, pb)))
    for dn in DISTANCES:
        floor[dn] = float(np.mean(floor[f"{dn}_splits"]))

    # 3. gap mass
    gap_rows = []
    for name, vals in (("trained", gap), ("gaussian_field", preds.gf_gap)):
        est, lo, hi = bootstrap_ci(vals, n_resamples=c.n_boot, seed=c.seed)
        gap_rows.append({"name": name, "estimate": est, "lo": lo, "hi": hi})
    for name, key in (
        ("white_noise_fp", "markov"),
        ("mean_score_fp_Q0", "mean_fp"),
        ("p(x|eps)", "exact"),
        ("exact_bayes_pfode", "bayes"),
    ):
        g = float(preds.gap[key])
        gap_rows.append({"name": name, "estimate": g, "lo": g, "hi": g})
    shells = shell_rows(
        (hist, outside), (preds.gf_histograms, preds.gf_outside), edges, FIGURE2_DATA[:, 0],
        c.n_boot, stream_rng(c.seed, "bootstrap", 3),
    )  # fmt: skip
    timings["statistics_s"] = time.perf_counter() - t0
    meta = {
        "timings": timings,
        **theory_meta,
        "fp_info": preds.fp_info,
        "trained_outside_mean": float(outside.mean()),
    }
    if trained.error is not None:
        meta["density"] = "transport"
        meta["transport_error_tv"] = {
            "trained": float(trained.error.max()),
            **preds.config["transport_error_tv"],
        }
        meta["transport_points"] = {
            "trained_mean": float(trained.points.mean()),
            "trained_max": int(trained.points.max()),
            **preds.config["transport_points"],
        }
    result = LinearComparison(
        c, hist, outside, gap, preds, rows, density_rows, floor, gap_rows, meta,
        shell_rows=shells,
    )  # fmt: skip
    if trained.error is not None:
        result.transport_error = trained.error
    if c.diagnostics:
        t0 = time.perf_counter()
        mm, mmd = moment_matched_densities(
            ens,
            edges,
            c.gap_distance,
            density=c.density,
            n_samples=c.n_samples,
            transport=transport,
            n_members=c.n_moment_members,
            n_steps=c.n_steps,
            method=c.method,
            seed=c.seed,
        )
        mm_hist, mm_out, mm_gap = mmd.histograms, mmd.outside, mmd.gap
        if mmd.error is not None:
            meta["transport_error_tv"]["moment_matched"] = float(mmd.error.max())
        drng = stream_rng(c.seed, "bootstrap", 2)
        result.closure_rows = closure_rows(
            (hist, outside, gap),
            (preds.gf_histograms, preds.gf_outside, preds.gf_gap),
            (mm_hist, mm_out, mm_gap),
            width,
            c.n_boot,
            drng,
        )
        result.distribution_rows = distribution_rows(
            ens, theory, gf, mm, c.query_x, c.query_t, c.n_boot, drng
        )
        result.mm_histograms, result.mm_outside, result.mm_gap = mm_hist, mm_out, mm_gap
        timings["diagnostics_s"] = time.perf_counter() - t0
    return result
