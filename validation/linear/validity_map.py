"""Where each theory of linear ensembles holds: a map over eps x F/P (docs/math/finite_fp.md).

For every cell (``eps``, ``F/P``) of the grid, :func:`validity_map` trains one ensemble of
``N`` linear-feature models (data ``{-1, 0, 1}``, ``vp-linear``, ``F = n_space x n_time``
Gaussian features, ``P = F / (F/P)``), runs it through the PF-ODE, and scores each theory
against it:

* ``"paper"`` -- the white-noise Fokker-Planck density of the first-order theory (the paper's
  closed route; deterministic);
* ``"first_order"``, ``"second_order"``, ``"cavity"`` -- the Gaussian field with that theory's
  weight moments (first order in 1/P; mean to ``O(1/P)`` and covariance to ``O(1/P**2)``; the
  finite-P cavity moments of :mod:`gtv.numerics.linear.cavity`);
* ``"cavity_field"`` -- the non-Gaussian cavity field
  (:func:`gtv.numerics.linear.cavity.sample_cavity_weights`);
* ``"occupancy_field"`` -- the small-occupancy field, heavy triples exact
  (:func:`gtv.numerics.linear.occupancy.sample_occupancy_weights`);
* ``"stratified_field"`` -- the same with the light part per ``(t, x)`` cell
  (:mod:`gtv.numerics.linear.strata`; not in the default list);
* ``"consistent_field"`` -- the occupancy field with each member's heavy set closed under its
  own leverage (:func:`gtv.numerics.linear.occupancy.close_heavy_sets`; not in the default list);
* ``"consistent"`` -- the same field with its own moments: mean and covariance of ``W`` by Monte
  Carlo over ``n_moment_members`` of its members
  (:func:`gtv.numerics.linear.occupancy_moments.occupancy_moments`, stream
  ``"occupancy-moments"``), so its variance score is the field's and not the cavity moments'
  (not in the default list).

Scores per (cell, theory): ``TV / floor`` (total variation between the ensemble-mean densities on a
common grid, over the half-vs-half noise floor of the trained ensemble, averaged over ``n_splits``
random splits); the gap-mass z-score ``(gap_theory - gap_trained) / SE`` with model-level standard
errors of both (deterministic predictions have none); the gap masses with model-level 95 %
bootstrap CIs; and, for the theories with moments (the cavity fields with the cavity moments,
``"consistent"`` with its own), ``median |Var_pred/Var - 1|`` of ``D^`` over the query grid (points
with trained variance above ``var_floor``). A theory that cannot be evaluated at a cell (e.g. a
second-order covariance that is not positive semi-definite because P is far too small for the
expansion) is recorded with its reason and no scores; above ``SECOND_ORDER_FIELD_MAX_F`` features
the second-order field is not drawn (its weight covariance costs ``O(F**5)``) and only its variance
is scored. The ``"paper"`` density is continuous-time while every field is sampled with ``n_steps``
Euler steps (the paper's 30): its distance includes the sampler's own discretization error.

Per-model densities (``ValidityMapConfig.density``): by default **transported** -- the trained
models and the members of every field theory carry the deterministic quantile grid of
``N(0, sigma_T**2)`` through their PF-ODE maps and the Gaussian mass is binned exactly
(:func:`gtv.validation.linear.densities.linear_ensemble_densities`,
:func:`gtv.validation.theory_densities.gaussian_field_densities`, docs/math/transport.md): no
sampling noise, so the half-vs-half floor is the spread across models alone, and per-cell error
estimates in ``meta["transport_error_tv"]``; ``density="mc"`` bins ``n_samples`` PF-ODE samples
per model instead. The ``"paper"`` density is a Fokker-Planck solution either way.

No theory sees the trained ensemble: each is computed from the population quadrature alone.
Streams: models train on ``stream(seed, "panel", i, j)``-derived seeds (cell ``(i, j)``), each
theory's field uses the same cell seed (stream ``"field"``); with ``density="mc"`` the trained
models and the fields start from ``"sampling"`` and ``"field-sampling"`` (the transport grid
draws nothing).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gtv.numerics.checks import check_count, check_field_types
from gtv.numerics.features import ProductFeatures
from gtv.numerics.linear import (
    CavityLinear,
    FirstOrderLinear,
    OccupancyLinear,
    SecondOrderLinear,
    cavity_moments,
    linear_model_theory,
    occupancy_moments,
    occupancy_split,
    population_nodes,
    second_order_moments,
    train_linear_ensemble,
)
from gtv.numerics.linear.prediction import OCCUPANCY_FIELDS
from gtv.numerics.schedules import get_schedule
from gtv.numerics.streams import stream
from gtv.validation.ensembles import DensityOptions
from gtv.validation.exact_below import check_auto_grid, check_exact_below, choose_exact_below
from gtv.validation.figures.figure2 import FIGURE2_DATA
from gtv.validation.linear.comparison import FIELD_KINDS, variance_ratio_scores
from gtv.validation.linear.densities import linear_ensemble_densities
from gtv.validation.predictions import (
    fokker_planck_grid,
    fokker_planck_on_edges,
    markov_fokker_planck,
)
from gtv.validation.results import (
    JsonConfig,
    figure_stem,
    load_result_of_kind,
    result_file,
    save_figure,
    save_result,
)
from gtv.validation.stats import bootstrap_ci, interval_masses, resampling_rng, total_variation
from gtv.validation.theory_densities import gaussian_field_densities

__all__ = ["THEORY_NAMES", "ValidityMap", "ValidityMapConfig", "validity_map"]

THEORY_NAMES = (
    "paper", "first_order", "second_order", "cavity", "cavity_field", "occupancy_field",
    "stratified_field", "consistent_field", "consistent",
)  # fmt: skip
#: Above this many features the second-order field is not drawn: its weight covariance needs
#: ``F (F + 1) / 2`` evaluations of an ``O(F**3)`` quadratic form (docs/math/linear.md); its
#: variance at the query points is still scored.
SECOND_ORDER_FIELD_MAX_F = 100
_FIELD_THEORIES = THEORY_NAMES[1:]


@dataclass(frozen=True)
class ValidityMapConfig(DensityOptions, JsonConfig):
    """The grid and the sizes (defaults: the issue's map, F = 16 x 16, N = 200 models).

    ``density`` is ``"transport"`` (default: every per-model density -- trained models and the
    members of every theory's field -- is the model's PF-ODE map carried over a quantile grid of
    ``n_points`` start points, refined where a cell's chord may misplace more than
    ``transport_tolerance`` of mass across a bin, up to ``max_points`` per model, the Gaussian
    mass binned exactly; docs/math/transport.md) or ``"mc"`` (``n_samples`` Monte Carlo samples
    per model). ``n_samples`` is used with ``"mc"`` only; ``n_points``, ``transport_tolerance``
    and ``max_points`` with ``"transport"`` only.
    """

    eps_values: tuple[float, ...] = (1e-4, 1e-3, 1e-2)
    f_over_p: tuple[float, ...] = (1 / 64, 1 / 16, 1 / 4, 1.0, 4.0)
    n_space: int = 16
    n_time: int = 16
    n_models: int = 200
    n_samples: int = 2000
    theories: tuple[str, ...] = THEORY_NAMES[:-3]  # the stratified and consistent ones on request
    seed: int = 0
    ridge: float = 0.1
    schedule: str = "vp-linear"
    x_range: tuple[float, float] = (-1.5, 1.5)
    hist_range: tuple[float, float] = (-2.0, 2.0)
    n_bins: int = 160
    gap_distance: float = 0.25
    n_steps: int = 30
    method: str = "euler"
    n_splits: int = 20
    n_boot: int = 500
    query_x: tuple[float, ...] = (-1.5, -1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0, 1.5)
    query_t: tuple[float, ...] = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
    var_floor: float = 1e-4
    fp_steps: int = 400
    #: Per-model densities: "transport" (transported quantile grid) or "mc" (Monte Carlo).
    density: str = "transport"
    #: Start points per model of the transport grid (density="transport").
    n_points: int = 2048
    #: Largest mass a grid cell's chord may misplace before the cell is refined.
    transport_tolerance: float = 1e-6
    #: Most grid points per model after refinement (>= n_points).
    max_points: int = 16_384
    #: The occupancy-field theories keep every triple with t < exact_below exact in each member
    #: (gtv.numerics.linear.occupancy.occupancy_split; 0: none); "auto": chosen per cell where
    #: the field's own [q] stops moving (gtv.validation.exact_below.choose_exact_below).
    exact_below: float | str = 0.0
    #: Members of the consistent field whose mean and covariance of W are the "consistent"
    #: theory's moments (Monte Carlo; at least 40, two per error batch).
    n_moment_members: int = 10_000

    def __post_init__(self) -> None:
        check_field_types(self)
        self.check_density()
        check_exact_below(self.exact_below)
        sched = get_schedule(self.schedule)
        for name in ("n_space", "n_time", "n_samples", "n_bins", "n_steps", "n_boot", "fp_steps"):
            v = getattr(self, name)
            if isinstance(v, bool) or int(v) != v or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        if (
            isinstance(self.n_models, bool)
            or int(self.n_models) != self.n_models
            or (self.n_models < 4)
        ):
            raise ValueError(f"n_models must be an integer >= 4, got {self.n_models!r}")
        if (
            isinstance(self.n_splits, bool)
            or int(self.n_splits) != self.n_splits
            or (self.n_splits < 1)
        ):
            raise ValueError(f"n_splits must be an integer >= 1, got {self.n_splits!r}")
        if not self.eps_values or not all(0 < e < sched.T for e in self.eps_values):
            raise ValueError(
                f"eps_values must be a non-empty list of numbers in (0, T) = (0, {sched.T:g}), "
                f"got {self.eps_values!r}"
            )
        F = self.n_space * self.n_time
        if not self.f_over_p or not all(np.isfinite(r) and r > 0 for r in self.f_over_p):
            raise ValueError(
                f"f_over_p must be a non-empty list of ratios > 0, got {self.f_over_p}"
            )
        for r in self.f_over_p:
            if round(F / r) < 1:
                raise ValueError(f"f_over_p: F/P = {r:g} gives P < 1 with F = {F}")
        check_count(self.n_moment_members, "n_moment_members", 40)
        if not self.theories or any(t not in THEORY_NAMES for t in self.theories):
            raise ValueError(f"theories must be a non-empty subset of {THEORY_NAMES}")
        if not (self.hist_range[0] < self.hist_range[1]):
            raise ValueError(f"hist_range must be (lo, hi) with lo < hi, got {self.hist_range}")
        check_auto_grid(self.exact_below, self.hist_range, self.n_bins, FIGURE2_DATA)
        if not (np.isfinite(self.gap_distance) and self.gap_distance > 0):
            raise ValueError(f"gap_distance must be > 0, got {self.gap_distance!r}")
        if not (np.isfinite(self.var_floor) and self.var_floor >= 0):
            raise ValueError(f"var_floor must be >= 0, got {self.var_floor!r}")

    @property
    def n_features(self) -> int:
        return self.n_space * self.n_time

    def budget(self, ratio: float) -> int:
        """``P = round(F / ratio)``."""
        return int(round(self.n_features / ratio))

    def size_estimate(self) -> dict:
        """Work units, to refuse absurd runs before starting: trained-model Gram flops and
        PF-ODE feature evaluations over the whole map."""
        F = self.n_features
        cells = len(self.eps_values)
        gram = sum(self.n_models * self.budget(r) * F * F for r in self.f_over_p) * cells
        n_fields = sum(t in _FIELD_THEORIES for t in self.theories) + 1
        per_model = self.n_samples if self.density == "mc" else self.max_points
        sample = cells * len(self.f_over_p) * n_fields * self.n_models * per_model
        return {"gram_flops": float(gram), "pfode_trajectories": float(sample * self.n_steps)}


@dataclass
class ValidityMap:
    """Result of :func:`validity_map`: one row per (eps, F/P, theory).

    Attributes
    ----------
    config : ValidityMapConfig
    rows : list of dict
        ``eps, f_over_p, P, theory, tv, tv_over_floor, floor, gap, gap_lo, gap_hi, gap_trained,
        gap_trained_lo, gap_trained_hi, gap_z, var_median_abs, var_within_25, n_points, error``
        (``n_points``: the query points whose variance is scored).
    meta : dict
        ``timings`` per cell (``"eps/ratio"``); with ``density="transport"`` also
        ``transport_error_tv`` and ``transport_points`` per cell: the largest per-model error
        estimate and the mean grid points per model of the trained ensemble and of each field.
    densities : dict
        Only from ``validity_map(..., keep_densities=True)`` (not saved): per cell
        (``"eps/ratio"``) the per-model densities
        (:class:`~gtv.validation.ensembles.LearnedDensities`) of the trained ensemble
        (``"trained"``) and of every field theory evaluated there.
    """

    config: ValidityMapConfig
    rows: list
    meta: dict = field(default_factory=dict)
    densities: dict = field(default_factory=dict)

    def grid(self, key: str, theory: str) -> np.ndarray:
        """``key`` of one theory as an (n_eps, n_ratio) array (NaN where missing)."""
        c = self.config
        out = np.full((len(c.eps_values), len(c.f_over_p)), np.nan)
        for r in self.rows:
            if r["theory"] == theory and r.get(key) is not None:
                i = c.eps_values.index(r["eps"])
                j = c.f_over_p.index(r["f_over_p"])
                out[i, j] = r[key]
        return out

    def format_table(self) -> str:
        c = self.config
        lines = [
            f"== validity map: F = {c.n_space}x{c.n_time}, N = {c.n_models} trained models x "
            f"{c.density_label()} per cell, seed {c.seed}"
            + (f", occupancy fields exact below t = {c.exact_below}" if c.exact_below else "")
            + " ==",
            "TV/floor: TV(theory, trained) over the half-vs-half floor; gap z: (theory - trained)"
            " / SE; Var: median |pred/trained - 1| of Var D^ on the query grid",
            f"{'eps':>7} {'F/P':>7} {'P':>6} {'theory':>13} | {'TV/floor':>8} "
            f"{'gap theory [CI]':>26} {'gap trained [CI]':>26} {'gap z':>7} | {'Var':>6}",
        ]
        for r in self.rows:
            if r["error"]:
                var = "" if r["var_median_abs"] is None else f" | Var {r['var_median_abs']:.3f}"
                lines.append(
                    f"{r['eps']:>7g} {r['f_over_p']:>7.4g} {r['P']:>6} {r['theory']:>13} | "
                    f"not evaluated: {r['error']}{var}"
                )
                continue
            var = "" if r["var_median_abs"] is None else f"{r['var_median_abs']:.3f}"
            lines.append(
                f"{r['eps']:>7g} {r['f_over_p']:>7.4g} {r['P']:>6} {r['theory']:>13} | "
                f"{r['tv_over_floor']:>8.2f} {r['gap']:>8.4f} "
                f"[{r['gap_lo']:.4f}, {r['gap_hi']:.4f}] {r['gap_trained']:>8.4f} "
                f"[{r['gap_trained_lo']:.4f}, {r['gap_trained_hi']:.4f}]"
                f" {r['gap_z']:>7.2f} | {var:>6}"
            )
        chosen = [r for r in self.rows if "exact_below" in r]
        if c.exact_below == "auto" and chosen:
            picks = ", ".join(
                f"eps {r['eps']:g}, F/P {r['f_over_p']:.4g}, {r['theory']}: {r['exact_below']:g}"
                for r in chosen
            )
            lines.append(f"exact_below chosen per cell (plateau start): {picks}")
        errors = self.meta.get("transport_error_tv", {})
        if errors:
            worst = max(v for cell in errors.values() for v in cell.values())
            lines.append(
                f"transport error estimate (largest per-model TV over every cell and ensemble): "
                f"{worst:.2e}"
            )
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps({"config": self.config.to_dict(), "rows": self.rows}, indent=1)

    def save(self, path: str | Path) -> Path:
        """``path.npz`` with the configuration and rows (reload with :meth:`load`)."""
        summary = {
            "kind": "validity_map",
            "config": self.config.to_dict(),
            "rows": self.rows,
            "meta": self.meta,
        }
        return save_result(Path(path), {}, summary)

    @classmethod
    def load(cls, path: str | Path) -> ValidityMap:
        """Read a file written by :meth:`save`. A map saved before transported densities existed
        (its configuration has no ``density``) was made by Monte Carlo and loads as
        ``density="mc"``."""
        _, s = load_result_of_kind(path, "validity_map", "a ValidityMap")
        with result_file(path, "ValidityMap"):
            config = ValidityMapConfig.from_dict({"density": "mc", **s["config"]})
            return cls(config, s["rows"], s.get("meta", {}))

    def plot(self, path: str | Path, formats: tuple[str, ...] = ("png", "pdf")) -> list[Path]:
        """Heat maps of TV/floor (colour, log scale) annotated with the gap z-score and the median
        variance error, one panel per theory."""
        from matplotlib.colors import LogNorm
        from matplotlib.figure import Figure

        c = self.config
        names = list(c.theories)
        fig = Figure(figsize=(3.0 * len(names) + 1.0, 2.9))
        axes = fig.subplots(1, len(names), squeeze=False, gridspec_kw={"wspace": 0.4})[0]
        norm = LogNorm(vmin=0.5, vmax=20.0)
        im = None
        for ax, name in zip(axes, names, strict=True):
            val = self.grid("tv_over_floor", name)
            z = self.grid("gap_z", name)
            im = ax.imshow(np.clip(val, 0.5, 20.0), cmap="RdYlGn_r", norm=norm, aspect="auto")
            var = self.grid("var_median_abs", name)
            for i in range(val.shape[0]):
                for j in range(val.shape[1]):
                    lines = [] if np.isnan(val[i, j]) else [f"{val[i, j]:.1f}", f"z={z[i, j]:.1f}"]
                    if not np.isnan(var[i, j]):
                        lines.append(f"V {var[i, j]:.2f}")
                    txt = "\n".join(lines) or "n/a"
                    ax.text(j, i, txt, ha="center", va="center", fontsize=6)
            ax.set_xticks(range(len(c.f_over_p)))
            ax.set_xticklabels([_ratio_label(r) for r in c.f_over_p], fontsize=7)
            ax.set_yticks(range(len(c.eps_values)))
            ax.set_yticklabels([f"{e:g}" for e in c.eps_values], fontsize=7)
            ax.set_xlabel("F/P", fontsize=8)
            ax.set_title(name.replace("_", " "), fontsize=9)
        axes[0].set_ylabel("eps", fontsize=8)
        if im is not None:
            cb = fig.colorbar(im, ax=list(axes), shrink=0.85)
            cb.set_label("TV / noise floor", fontsize=8)
        fig.suptitle(
            f"F = {c.n_space}x{c.n_time}, N = {c.n_models} models/cell; colour and first line: "
            "TV/floor; z: gap-mass z-score; V: median |Var pred/trained - 1|",
            fontsize=8,
        )
        return save_figure(fig, figure_stem(path), formats, dpi=150)


def _ratio_label(r: float) -> str:
    return f"1/{1 / r:g}" if r < 1 else f"{r:g}"


# -- computation ----------------------------------------------------------------------------------
def _gap_stats(gap: np.ndarray, n_boot: int, seed) -> tuple[float, float, float, float]:
    est, lo, hi = bootstrap_ci(gap, n_resamples=n_boot, seed=seed)
    return est, lo, hi, float(gap.std(ddof=1) / np.sqrt(gap.size))


def _var_summary(
    theory, values: dict, c: ValidityMapConfig
) -> tuple[float | None, float | None, int]:
    ratios = []
    qx = np.asarray(c.query_x, dtype=float)
    for t, emp in values.items():
        pv = theory.denoiser_covariance((qx, t), paired=True)[:, 0, 0]
        keep = emp > c.var_floor
        ratios += list(pv[keep] / emp[keep])
    if not ratios:
        return None, None, 0
    scores = variance_ratio_scores(ratios)
    return scores["median"], scores["within_25"], len(ratios)


def _cell(c: ValidityMapConfig, eps: float, ratio: float, seed, population, cache: dict) -> tuple:
    sched = get_schedule(c.schedule)
    P = c.budget(ratio)
    edges = np.linspace(c.hist_range[0], c.hist_range[1], c.n_bins + 1)
    width = float(edges[1] - edges[0])
    timings = {}
    t0 = time.perf_counter()
    ens = train_linear_ensemble(
        FIGURE2_DATA, population.features, c.n_models, P, eps, sched, ridge=c.ridge, seed=seed,
        keep_normal_equations=False,
    )  # fmt: skip
    transport = c.density_settings()
    sampler = {"n_steps": c.n_steps, "method": c.method, "seed": seed}
    trained = linear_ensemble_densities(
        ens, edges, c.gap_distance, density=c.density, n_samples=c.n_samples,
        transport=transport, **sampler,
    )  # fmt: skip
    hist, outside, gap = trained.histograms, trained.outside, trained.gap
    errors, points = {}, {}
    kept = {"trained": trained}
    if trained.error is not None:
        errors["trained"] = float(trained.error.max())
        points["trained"] = float(trained.points.mean())
    qx = np.asarray(c.query_x, dtype=float)
    values = {
        t: ens.denoise(qx[:, None], t)[:, :, 0].var(axis=0, ddof=1)
        for t in c.query_t
        if eps <= t <= sched.T
    }
    timings["trained_s"] = time.perf_counter() - t0
    rng = resampling_rng(seed)
    trained = interval_masses(hist.mean(axis=0), width, outside.mean())
    n = c.n_models
    floors = []
    for _ in range(c.n_splits):
        perm = rng.permutation(n)
        a, b = perm[: n // 2], perm[n // 2 : 2 * (n // 2)]
        pa = interval_masses(hist[a].mean(0), width, outside[a].mean())
        pb = interval_masses(hist[b].mean(0), width, outside[b].mean())
        floors.append(float(total_variation(pa, pb)))
    floor = float(np.mean(floors))
    g_t, g_lo, g_hi, g_se = _gap_stats(gap, c.n_boot, seed)
    base = {
        "eps": eps, "f_over_p": ratio, "P": P, "floor": floor, "gap_trained": g_t,
        "gap_trained_lo": g_lo, "gap_trained_hi": g_hi,
    }  # fmt: skip
    rows = []
    # per field kind: exact_below="auto"'s choice; per (kind, t_c): the occupancy split and the
    # members' densities ("consistent_field" and "consistent" draw the same members)
    picks: dict = {}
    splits: dict = {}
    drawn: dict = {}
    first = FirstOrderLinear(population, P)
    for name in c.theories:
        t0 = time.perf_counter()
        row = dict(base, theory=name, error="", var_median_abs=None, var_within_25=None)
        try:
            if name == "paper":
                lo, hi, n_cells = fokker_planck_grid(edges, sched)
                res, _ = markov_fokker_planck(first, (lo, hi), n_cells, c.fp_steps)
                _, _, dens, g = fokker_planck_on_edges(res, edges, FIGURE2_DATA, c.gap_distance)
                mass_in = float(dens.sum() * width)
                q = interval_masses(dens, width, max(0.0, 1.0 - mass_in))
                row.update(gap=g, gap_lo=g, gap_hi=g, gap_z=(g - g_t) / g_se)
            else:
                if name == "first_order":
                    th = first
                elif name == "second_order":
                    if "second_order" not in cache:  # independent of P: once per eps
                        cache["second_order"] = second_order_moments(population)
                    th = SecondOrderLinear(population, cache["second_order"], P)
                    if population.n_features > SECOND_ORDER_FIELD_MAX_F:
                        med, within, npts = _var_summary(th, values, c)
                        row.update(var_median_abs=med, var_within_25=within, n_points=npts)
                        raise ValueError(
                            f"field not drawn: the second-order weight covariance costs O(F^5) "
                            f"(F = {population.n_features} > {SECOND_ORDER_FIELD_MAX_F}); "
                            "variance scored"
                        )
                else:
                    if "nodes" not in cache:
                        cache["nodes"] = population_nodes(population)
                    if ("moments", P) not in cache:  # one solve for the three cavity theories
                        cache[("moments", P)] = cavity_moments(population, P, nodes=cache["nodes"])
                    mom, nodes = cache[("moments", P)], cache["nodes"]
                    kind = FIELD_KINDS[name]
                    below = c.exact_below if kind in OCCUPANCY_FIELDS else 0.0
                    if below == "auto":  # per cell and field kind, from the field alone
                        if kind not in picks:  # "consistent" shares consistent_field's pick
                            picks[kind] = choose_exact_below(
                                population, mom, kind, n_members=c.n_models, edges=edges,
                                gap_distance=c.gap_distance, density=c.density,
                                n_samples=c.n_samples, transport=transport, nodes=nodes,
                                **sampler,
                            ).t_c  # fmt: skip
                        below = picks[kind]
                    if kind in OCCUPANCY_FIELDS:
                        row["exact_below"] = float(below)
                    key = (kind, float(below))
                    if kind == "consistent" and key not in splits:
                        splits[key] = occupancy_split(
                            population, mom, nodes=nodes, consistent=True, exact_below=below
                        )
                    if name == "consistent":  # the field with its own moments (Monte Carlo)
                        own = occupancy_moments(
                            population, mom, c.n_moment_members, seed, split=splits[key]
                        )
                        th = OccupancyLinear(population, mom, own, "occupancy", nodes)
                    else:
                        th = CavityLinear(
                            population, mom, kind, nodes, split=splits.get(key),
                            exact_below=below,
                        )  # fmt: skip
                fd = drawn.get(key) if name in FIELD_KINDS else None
                if fd is None:
                    fd = gaussian_field_densities(
                        th, c.n_models, edges, c.gap_distance, density=c.density,
                        n_samples=c.n_samples, transport=transport, **sampler,
                    )  # fmt: skip
                    if name in FIELD_KINDS:
                        drawn[key] = fd
                kept[name] = fd
                if fd.error is not None:
                    errors[name] = float(fd.error.max())
                    points[name] = float(fd.points.mean())
                fo, fg = fd.outside, fd.gap
                q = interval_masses(fd.histograms.mean(axis=0), width, fo.mean())
                e, lo_, hi_, se = _gap_stats(fg, c.n_boot, seed)
                row.update(gap=e, gap_lo=lo_, gap_hi=hi_, gap_z=(e - g_t) / np.hypot(g_se, se))
                med, within, npts = _var_summary(th, values, c)
                row.update(var_median_abs=med, var_within_25=within, n_points=npts)
            tv = float(total_variation(trained, q))
            row.update(tv=tv, tv_over_floor=tv / floor)
        except ValueError as exc:
            row.update(
                error=str(exc).splitlines()[0][:160], tv=None, tv_over_floor=None, gap=None,
                gap_lo=None, gap_hi=None, gap_z=None,
            )  # fmt: skip
        timings[f"{name}_s"] = time.perf_counter() - t0
        rows.append(row)
    transported = {"transport_error_tv": errors, "transport_points": points} if errors else {}
    return rows, timings, transported, kept


def validity_map(
    config: ValidityMapConfig | None = None, progress: bool = False, keep_densities: bool = False
) -> ValidityMap:
    """Train, sample and score every theory on every cell (module docstring).

    Parameters
    ----------
    config : ValidityMapConfig, optional
    progress : bool
        A progress bar over cells.
    keep_densities : bool
        Keep every ensemble's per-model densities in ``ValidityMap.densities``.
    """
    from tqdm import tqdm

    c = config or ValidityMapConfig()
    sched = get_schedule(c.schedule)
    rows, meta, densities = [], {"timings": {}}, {}
    cells = [(i, j) for i in range(len(c.eps_values)) for j in range(len(c.f_over_p))]
    bar = tqdm(total=len(cells), disable=not progress, desc="validity map", unit="cell")
    for i, eps in enumerate(c.eps_values):
        feats = ProductFeatures.uniform(
            "gaussian", 1, c.n_space, c.n_time, (eps, sched.T), c.x_range
        )
        population = linear_model_theory(FIGURE2_DATA, feats, eps, sched, ridge=c.ridge)
        cache: dict = {}
        for j, ratio in enumerate(c.f_over_p):
            cell_rows, timings, transported, kept = _cell(
                c, eps, ratio, stream(c.seed, "panel", i, j), population, cache
            )
            rows += cell_rows
            key = f"{eps:g}/{ratio:g}"
            meta["timings"][key] = timings
            for name, value in transported.items():
                meta.setdefault(name, {})[key] = value
            if keep_densities:
                densities[key] = kept
            bar.update(1)
    bar.close()
    return ValidityMap(c, rows, meta, densities)
