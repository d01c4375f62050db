"""The result of the NTK comparison: arrays, tables as text, persistence."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gtv.validation.ntk.config import NTKCompareConfig
from gtv.validation.results import load_result_of_kind, result_file, save_result
from gtv.validation.shells import format_shells

__all__ = ["NTKComparison"]


@dataclass
class NTKComparison:
    """Result of :func:`compare_ntk`.

    Attributes
    ----------
    config : NTKCompareConfig
    learning_rate : float
        ``eta`` used for every width, model and for the kernel and theory.
    steps : ndarray (K,)
        Gradient steps per checkpoint; ``taus = learning_rate * steps``.
    taus : ndarray (K,)
        Training times reached.
    denoiser : ndarray (W, K, N, Q)
        ``D^`` of every trained network at the query points (:meth:`query_points`).
    kernel_denoiser : ndarray (K, N, Q)
        The infinite-width networks on the same triples.
    theory : dict of ndarray (K, Q)
        ``mean``, ``var``, ``var_proxy``, ``var_misfit`` at the query points.
    histograms : ndarray (W, K, N, B)
        Per-model density histograms of the trained networks on :attr:`edges`.
    outside, gap : ndarray (W, K, N)
        Per-model mass outside the histogram range and gap mass.
    kernel_histograms, kernel_outside, kernel_gap
        The same for the infinite-width networks ((K, N, B), (K, N), (K, N); empty if not
        sampled).
    gf_histograms, gf_outside, gf_gap
        The same for the theory's Gaussian-field ensemble.
    fp_density, fp_mean_density : ndarray (K, B)
        White-noise Fokker-Planck density (``Q^+``) and the same solver with ``Q = 0``, re-binned.
    fp_gap, fp_mean_gap : ndarray (K,)
    exact_density, bayes_density : ndarray (B,)
        ``p(x|eps)`` and the exact-Bayes PF-ODE histogram.
    denoiser_rows, error_rows, gap_rows, density_rows : list of dict
        The tables (see :meth:`format_table`).
    meta : dict
        Stability limits, baselines' gap masses, theory diagnostics, FP diagnostics, timings;
        with ``config.density == "transport"`` also ``transport_error_tv`` and
        ``transport_points`` (per ensemble: the largest per-model error estimate in total
        variation over the ``tau``, and the mean number of grid points per model).
    shell_rows : list of dict
        Per ``tau``, the theory field's mass by distance from the training data against the
        infinite-width networks' (the widest trained networks' when those are not sampled):
        :func:`gtv.validation.shells.shell_rows` rows with ``tau`` and ``reference``
        added (empty in results saved before it existed).
    """

    config: NTKCompareConfig
    learning_rate: float
    steps: np.ndarray
    taus: np.ndarray
    denoiser: np.ndarray
    kernel_denoiser: np.ndarray
    theory: dict
    histograms: np.ndarray
    outside: np.ndarray
    gap: np.ndarray
    kernel_histograms: np.ndarray
    kernel_outside: np.ndarray
    kernel_gap: np.ndarray
    gf_histograms: np.ndarray
    gf_outside: np.ndarray
    gf_gap: np.ndarray
    fp_density: np.ndarray
    fp_mean_density: np.ndarray
    fp_gap: np.ndarray
    fp_mean_gap: np.ndarray
    exact_density: np.ndarray
    bayes_density: np.ndarray
    denoiser_rows: list
    error_rows: list
    gap_rows: list
    density_rows: list
    meta: dict = field(default_factory=dict)
    shell_rows: list = field(default_factory=list)

    @property
    def edges(self) -> np.ndarray:
        c = self.config
        return np.linspace(c.hist_range[0], c.hist_range[1], c.n_bins + 1)

    @property
    def centres(self) -> np.ndarray:
        e = self.edges
        return (e[1:] + e[:-1]) / 2

    def query_points(self) -> tuple[np.ndarray, np.ndarray]:
        return self.config.query_points()

    def errors(self, name: str, width: int | str) -> np.ndarray:
        """One relative error (e.g. ``"var_vs_kernel"``) vs tau for one width (K,)."""
        rows = [r for r in self.error_rows if r["width"] == width]
        if not rows:
            raise ValueError(f"width must be one of {self.config.widths} or 'inf', got {width!r}")
        if name not in rows[0]:
            raise ValueError(f"name must be one of the error columns, got {name!r}")
        return np.array([r[name] for r in rows], dtype=float)

    # -- tables ---------------------------------------------------------------------------------
    def format_table(self) -> str:
        """One block per ``tau`` (denoiser moments, errors vs width, density distances) and the
        gap-mass curve."""
        c = self.config
        wmax = c.widths[-1]
        m = self.meta
        lines = [
            f"== trained two-layer networks ({c.activation}, NTK parameterization) vs lazy "
            f"infinite-width theory: eps={c.eps:g}  P={c.P}  N={c.n_models} models x "
            f"{c.density_label()}  widths {'/'.join(map(str, c.widths))}  seed={c.seed} ==",
            f"gradient descent eta = {self.learning_rate:.5g} (stability limit "
            f"{m['stability_limit']:.5g}: min over widths {m['limit_by_width_min']}, "
            f"infinite width {m['kernel_limit_min']:.5g}, population {m['theory_limit']:.5g}); "
            "tau = eta * steps",
        ]
        nq = len(self.query_points()[0])
        for k, tau in enumerate(self.taus):
            lines.append("")
            lines.append(
                f"-- tau = {tau:.4g} ({int(self.steps[k])} steps; theory d_eff = "
                f"{m['effective_dimension'][k]:.2f}) --"
            )
            lines.append(
                f"D^(x,t) across models: trained width {wmax} and infinite-width kernel regression "
                f"on the same triples (95 % model-bootstrap CI) vs {c.theory} theory"
            )
            rows = [r for r in self.denoiser_rows if r["tau"] == tau]
            # the member fields' own variance (saved since 2026-12-06; older results have none)
            own = bool(rows) and "field_var" in rows[0]
            lines.append(
                f"{'x':>6} {'t':>5} | {'mean trained [CI]':>27} {'kernel':>8} {'theory':>8} | "
                f"{'Var trained [CI]':>31} {'kernel':>9} {'theory':>9} "
                f"{'(proxy':>9} {'misfit)':>9} {'tr/th':>6}"
                + (f" {'field':>9} {'tr/fd':>6}" if own else "")
            )
            for r in rows:
                lines.append(
                    f"{r['x']:>6.2f} {r['t']:>5.3f} | {r['mean']:>8.4f} "
                    f"[{r['mean_lo']:>8.4f},{r['mean_hi']:>8.4f}] {r['kernel_mean']:>8.4f} "
                    f"{r['theory_mean']:>8.4f} | {r['var']:>9.3e} "
                    f"[{r['var_lo']:.3e},{r['var_hi']:.3e}] {r['kernel_var']:>9.3e} "
                    f"{r['theory_var']:>9.3e} {r['theory_var_proxy']:>9.3e} "
                    f"{r['theory_var_misfit']:>9.3e} {r['var_ratio']:>6.2f}"
                    + (f" {r['field_var']:>9.3e} {r['field_ratio']:>6.2f}" if own else "")
                )
            if own:
                ratio = np.array([r["field_ratio"] for r in rows])
                lines.append(
                    f"'theory' is the {c.theory} theory's moments; 'field' is Var D^ over its "
                    f"field's own {c.n_models} members (those of its densities): trained / field "
                    f"median {np.median(ratio):.2f} [{ratio.min():.2f}, {ratio.max():.2f}]"
                )
            lines.append(
                f"relative errors over the {nq} query points (95 % model-bootstrap CI); "
                "'noise' = expected error vs theory from N models alone"
            )
            lines.append(
                f"{'width':>6} | {'model':>6} | {'mean vs kernel':>24} | {'Var vs kernel':>24} | "
                f"{'mean vs theory':>24} {'noise':>6} | {'Var vs theory':>24} {'noise':>6}"
                + (f" | {'Var vs field':>24} {'noise':>6}" if own else "")
            )
            for r in self.error_rows:
                if r["tau"] != tau:
                    continue

                def cell(name, r=r):
                    if name not in r:
                        return f"{'-':>24}"
                    return f"{r[name]:>7.4f} [{r[name + '_lo']:.4f},{r[name + '_hi']:.4f}]"

                model = f"{r['model']:>6.4f}" if r["model"] is not None else f"{'-':>6}"
                lines.append(
                    f"{r['width']!s:>6} | {model} | {cell('mean_vs_kernel')} | "
                    f"{cell('var_vs_kernel')} | {cell('mean_vs_theory')} {r['mean_noise']:>6.4f} | "
                    f"{cell('var_vs_theory')} {r['var_noise']:>6.4f}"
                    + (
                        f" | {cell('var_vs_field')} {r['field_noise']:>6.4f}"
                        if "var_vs_field" in r
                        else ""
                    )
                )
            drows = [r for r in self.density_rows if r["tau"] == tau]
            lines.append(
                f"TV(mean density of trained width {wmax}, X) [95 % model-bootstrap CI]: "
                + "; ".join(
                    f"{r['name']} {r['tv']:.4f} [{r['tv_lo']:.4f},{r['tv_hi']:.4f}]"
                    for r in drows
                    if r["name"] != "floor"
                )
                + "; half-vs-half floor "
                + "".join(f"{r['tv']:.4f}" for r in drows if r["name"] == "floor")
            )
            fp = m["fp_info"][k]
            lines.append(
                f"white-noise FP: Q<0 clipped at {100 * fp['clipped_fraction']:.2f} % of (cell, "
                f"step) evaluations ({100 * fp['clipped_share']:.3g} % of sum|Q|)"
            )
        lines.append("")
        lines.append(self.format_summary())
        lines.append("")
        lines.append(self.format_gap_table())
        if "transport_error_tv" in m:
            lines.append(
                "transported densities: largest per-model error estimate (TV) / mean points per "
                "model: "
                + "; ".join(
                    f"{name} {e:.2g} / {m['transport_points'][name]:.0f}"
                    for name, e in sorted(m["transport_error_tv"].items())
                )
            )
        return "\n".join(lines)

    def width_slopes(self) -> np.ndarray:
        """Log-log slope of the per-model finite-width error vs width, per tau (K,); NaN with a
        single width. Lazy-regime expectation: -1/2 (the tangent kernel at initialization is an
        average over n independent units; for erf with the antisymmetric initialization the change
        during training is O(1/n), numerics/two_layer_training tests)."""
        w = np.log(np.asarray(self.config.widths, dtype=float))
        if w.size < 2:
            return np.full(self.taus.size, np.nan)
        err = np.log(np.array([self.errors("model", wd) for wd in self.config.widths]))  # (W, K)
        return np.polyfit(w, err, 1)[0]

    def format_summary(self) -> str:
        """One line per tau: the finite-width error per width and its slope, and the relative
        errors of the largest width and of the infinite-width networks."""
        c = self.config
        wmax = c.widths[-1]
        slopes = self.width_slopes()
        head = (
            f"{'tau':>8} | "
            + " ".join(f"{'n=' + str(w):>7}" for w in c.widths)
            + f" {'slope':>6} | {'mean/ker':>8} {'Var/ker':>8} | "
            f"{'mean/th':>8} {'(inf)':>7} {'noise':>7} | {'Var/th':>7} {'(inf)':>7} {'noise':>7}"
        )
        own = any("var_vs_field" in r for r in self.error_rows)
        if own:
            head += f" | {'Var/fd':>7} {'(inf)':>7} {'noise':>7}"
        lines = [
            "summary: per-model finite-width error vs width (distance to the infinite-width "
            f"network on the same triples) and its log-log slope; relative errors of width {wmax} "
            f"vs kernel regression (ker) and vs the {c.theory} theory (th; '(inf)' = infinite "
            "width; 'noise' = expected from N models alone)"
            + (
                "; Var/fd: against the field's own variance over its members ('noise' from the "
                "N models and the members alone)"
                if own
                else ""
            ),
            head,
        ]
        for k, tau in enumerate(self.taus):
            r = {
                w: next(x for x in self.error_rows if x["tau"] == tau and x["width"] == w)
                for w in (*c.widths, "inf")
            }
            top, inf = r[wmax], r["inf"]
            lines.append(
                f"{tau:>8.4g} | "
                + " ".join(f"{r[w]['model']:>7.4f}" for w in c.widths)
                + f" {slopes[k]:>6.2f} | {top['mean_vs_kernel']:>8.4f} "
                f"{top['var_vs_kernel']:>8.4f} | {top['mean_vs_theory']:>8.4f} "
                f"{inf['mean_vs_theory']:>7.4f} {top['mean_noise']:>7.4f} | "
                f"{top['var_vs_theory']:>7.4f} {inf['var_vs_theory']:>7.4f} "
                f"{top['var_noise']:>7.4f}"
                + (
                    f" | {top['var_vs_field']:>7.4f} {inf['var_vs_field']:>7.4f} "
                    f"{top['field_noise']:>7.4f}"
                    if own
                    else ""
                )
            )
        return "\n".join(lines)

    def format_gap_table(self) -> str:
        """The gap-mass curve vs tau (model-level 95 % bootstrap CIs) and the baselines."""
        c = self.config
        names = [f"width {w}" for w in c.widths]
        if self.kernel_gap.size:
            names.append("infinite width")
        names += [c.field_label]
        head = f"{'tau':>8} | " + " | ".join(f"{n:>25}" for n in names)
        head += f" | {'white-noise FP':>14} | {'FP, Q = 0':>10}"
        lines = [
            f"gap mass (fraction farther than {c.gap_distance:g} from every training point; "
            "95 % model-level bootstrap CI)",
            head,
        ]
        for r in self.gap_rows:
            cells = [f"{r['tau']:>8.4g}"]
            for n in names:
                e = r[n]
                cells.append(f"{e[0]:>7.4f} [{e[1]:.4f}, {e[2]:.4f}]".rjust(25))
            cells.append(f"{r['white-noise FP']:>14.4f}")
            cells.append(f"{r['FP, Q = 0']:>10.4f}")
            lines.append(" | ".join(cells))
        b = self.meta["baseline_gap"]
        lines.append(
            f"baselines: p(x|eps) {b['p(x|eps)']:.4f}; exact-Bayes PF-ODE "
            f"({c.n_steps} {c.method} steps) {b['bayes']:.4f}"
        )
        choices = self.meta.get("exact_below_choice")
        if choices:
            picks = ", ".join(
                f"tau {tau:.4g}: {ch['t_c']:g}" for tau, ch in zip(self.taus, choices, strict=True)
            )
            lines.append(f"{c.field_label}: nodes exact below t_c (auto, plateau start): {picks}")
        elif c.exact_below:
            lines.append(f"{c.field_label}: every node below t = {c.exact_below:g} exact")
        if c.theory == "stratified-field" and not c.centre:
            lines.append(f"{c.field_label}: members as drawn (not centred on the cavity mean)")
        for tau in self.taus:
            rows = [r for r in self.shell_rows if r["tau"] == float(tau)]
            if rows:
                ref = rows[0]["reference"]
                lines.append(f"-- tau = {tau:.4g}: {c.field_label} against {ref} --")
                lines.append(format_shells(rows, c.field_label, ref))
        return "\n".join(lines)

    # -- persistence ----------------------------------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        """Every array of the result by the name it has in the saved file."""
        out = {
            "steps": self.steps,
            "taus": self.taus,
            "denoiser": self.denoiser,
            "kernel_denoiser": self.kernel_denoiser,
            "histograms": self.histograms,
            "outside": self.outside,
            "gap": self.gap,
            "kernel_histograms": self.kernel_histograms,
            "kernel_outside": self.kernel_outside,
            "kernel_gap": self.kernel_gap,
            "gf_histograms": self.gf_histograms,
            "gf_outside": self.gf_outside,
            "gf_gap": self.gf_gap,
            "fp_density": self.fp_density,
            "fp_mean_density": self.fp_mean_density,
            "fp_gap": self.fp_gap,
            "fp_mean_gap": self.fp_mean_gap,
            "exact_density": self.exact_density,
            "bayes_density": self.bayes_density,
        }
        out.update({f"theory_{k}": v for k, v in self.theory.items()})
        return out

    def save(self, path: str | Path) -> tuple[Path, Path]:
        """``path.npz`` (arrays + configuration, :mod:`gtv.numerics.io`) and ``path.json``
        (the same summary, readable)."""
        path = Path(path)
        stem = path.with_suffix("") if path.suffix == ".npz" else path
        summary = {
            "kind": "ntk_comparison",
            "config": self.config.to_dict(),
            "learning_rate": self.learning_rate,
            "denoiser_rows": self.denoiser_rows,
            "error_rows": self.error_rows,
            "gap_rows": self.gap_rows,
            "density_rows": self.density_rows,
            "meta": self.meta,
            "shell_rows": self.shell_rows,
        }
        npz = save_result(stem, self.arrays(), summary)
        js = Path(str(stem) + ".json")
        js.write_text(json.dumps(summary, indent=1, sort_keys=True))
        return npz, js

    @classmethod
    def load(cls, path: str | Path) -> NTKComparison:
        a, s = load_result_of_kind(path, "ntk_comparison", "an NTKComparison")
        with result_file(path, "NTKComparison"):
            theory = {k[len("theory_") :]: v for k, v in a.items() if k.startswith("theory_")}
            return cls(
                # results saved before transported densities existed are Monte Carlo
                NTKCompareConfig.from_dict({"density": "mc", **s["config"]}),
                s["learning_rate"],
                a["steps"],
                a["taus"],
                a["denoiser"],
                a["kernel_denoiser"],
                theory,
                a["histograms"],
                a["outside"],
                a["gap"],
                a["kernel_histograms"],
                a["kernel_outside"],
                a["kernel_gap"],
                a["gf_histograms"],
                a["gf_outside"],
                a["gf_gap"],
                a["fp_density"],
                a["fp_mean_density"],
                a["fp_gap"],
                a["fp_mean_gap"],
                a["exact_density"],
                a["bayes_density"],
                s["denoiser_rows"],
                s["error_rows"],
                s["gap_rows"],
                s["density_rows"],
                s.get("meta", {}),
                s.get("shell_rows", []),
            )

    # -- figure ---------------------------------------------------------------------------------
    def plot(
        self,
        path: str | Path,
        formats: tuple[str, ...] = ("png", "pdf"),
        density_taus: tuple[float, ...] | None = None,
    ) -> list[Path]:
        """Gap mass vs tau, relative errors vs width, and densities at up to three ``tau``
        (:func:`gtv.validation.ntk.plot.plot_ntk_comparison`)."""
        from gtv.validation.ntk.plot import plot_ntk_comparison

        return plot_ntk_comparison(self, path, formats, density_taus)
