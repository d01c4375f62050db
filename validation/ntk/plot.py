"""The figure of the NTK comparison: gap mass vs tau, errors vs width, densities."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gtv.numerics.schedules import get_schedule
from gtv.validation.figures.figure2 import FIGURE2_DATA, mixture_density
from gtv.validation.ntk.result import NTKComparison
from gtv.validation.results import figure_stem, save_figure

__all__ = ["plot_ntk_comparison"]


def plot_ntk_comparison(
    result: NTKComparison,
    path: str | Path,
    formats: tuple[str, ...] = ("png", "pdf"),
    density_taus: tuple[float, ...] | None = None,
) -> list[Path]:
    """Gap mass vs tau, relative errors vs width, and densities at up to three ``tau``.

    ``density_taus`` (default: the first, middle and last ``tau``) must be among
    :attr:`taus` (nearest checkpoint used).
    """
    from matplotlib.figure import Figure

    c = result.config
    taus = result.taus
    if density_taus is None:
        sel = sorted({0, len(taus) // 2, len(taus) - 1})
    else:
        sel = sorted({int(np.argmin(np.abs(np.log(taus / float(v))))) for v in density_taus})
    ncol = max(2, len(sel))
    fig = Figure(figsize=(4.0 * ncol, 7.4))
    gs = fig.add_gridspec(2, ncol)
    ax = fig.add_subplot(gs[0, : ncol // 2 + (ncol % 2)])
    names = [f"width {w}" for w in c.widths]
    if result.kernel_gap.size:
        names.append("infinite width")
    names.append(c.field_label)
    colors = {n: f"C{i}" for i, n in enumerate(names)}
    for j, n in enumerate(names):
        e = np.array([r[n] for r in result.gap_rows])
        off = np.exp(0.03 * (j - len(names) / 2))  # spread error bars along tau
        ax.errorbar(
            taus * off,
            e[:, 0],
            yerr=[e[:, 0] - e[:, 1], e[:, 2] - e[:, 0]],
            fmt="o-" if n.startswith("width") else "s--",
            ms=3,
            lw=1,
            capsize=2,
            color=colors[n],
            label=n,
        )
    ax.plot(
        taus, [r["white-noise FP"] for r in result.gap_rows], "k-.", lw=1, label="white-noise FP"
    )
    ax.plot(
        taus, [r["FP, Q = 0"] for r in result.gap_rows], ":", color="0.4", lw=1, label="FP, Q = 0"
    )
    b = result.meta["baseline_gap"]
    ax.axhline(b["p(x|eps)"], color="black", lw=0.7, label=r"$p(x|\epsilon)$")
    ax.axhline(b["bayes"], color="0.6", lw=0.7, label="PF-ODE, exact Bayes")
    ax.set_xscale("log")
    ax.set_xlabel(r"training time $\tau = \eta k$")
    ax.set_ylabel(f"gap mass (> {c.gap_distance:g} from data)")
    ax.set_title(f"{c.activation}, eps={c.eps:g}, P={c.P}, N={c.n_models}", fontsize=9)
    ax.legend(fontsize=6)

    ax = fig.add_subplot(gs[0, ncol // 2 + (ncol % 2) :])
    w = np.array(c.widths, dtype=float)
    for k, tau in enumerate(taus):
        rows = [r for r in result.error_rows if r["tau"] == tau and r["width"] != "inf"]
        ax.loglog(w, [r["model"] for r in rows], "o-", color=f"C{k}", ms=3, label=f"tau={tau:.3g}")
        ax.loglog(w, [r["var_vs_kernel"] for r in rows], "s:", color=f"C{k}", ms=3)
    if len(w) > 1:
        ref = np.array([r["model"] for r in result.error_rows if r["width"] == c.widths[0]])
        ax.loglog(w, ref.max() * np.sqrt(w[0] / w), color="0.5", lw=0.7, label="width^-1/2")
    ax.set_xticks(w)
    ax.set_xticks([], minor=True)
    ax.set_xticklabels([str(int(v)) for v in w])
    ax.set_xlabel("width")
    ax.set_ylabel("relative error vs infinite width")
    ax.set_title("per-model (o-) and Var (s:) error vs kernel regression", fontsize=9)
    ax.legend(fontsize=6)

    ctr = result.centres
    x_fine = np.linspace(c.hist_range[0], c.hist_range[1], 1001)
    sched = get_schedule(c.schedule)
    p_eps = mixture_density(FIGURE2_DATA, x_fine, c.eps, sched)
    for j, k in enumerate(sel):
        ax = fig.add_subplot(gs[1, j])
        h = result.histograms[-1, k]
        lo, hi = np.quantile(h, [0.25, 0.75], axis=0)
        ax.fill_between(ctr, lo, hi, color="tab:red", alpha=0.2, lw=0)
        ax.plot(x_fine, p_eps, color="black", lw=0.6, label=r"$p(x|\epsilon)$")
        ax.plot(ctr, h.mean(0), color="tab:red", lw=1.3, label=f"trained, width {c.widths[-1]}")
        if result.kernel_gap.size:
            ax.plot(
                ctr,
                result.kernel_histograms[k].mean(0),
                color="tab:orange",
                lw=1,
                ls="--",
                label="infinite width",
            )
        ax.plot(
            ctr,
            result.gf_histograms[k].mean(0),
            color="tab:blue",
            lw=1,
            ls="--",
            label=c.field_label,
        )
        ax.plot(ctr, result.fp_density[k], color="tab:green", lw=1, ls="-.", label="white-noise FP")
        top = 1.3 * max(
            np.max(hi), np.max(result.gf_histograms[k].mean(0)), np.max(result.fp_density[k])
        )
        ax.set_ylim(0, top)
        ax.set_xlim(c.hist_range)
        ax.set_xlabel("x")
        ax.set_title(f"tau = {taus[k]:.3g}", fontsize=9)
        if j == 0:
            ax.set_ylabel("density")
            ax.legend(fontsize=6)
    fig.tight_layout()
    return save_figure(fig, figure_stem(path), formats, dpi=130)
