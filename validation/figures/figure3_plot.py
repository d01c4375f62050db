"""Drawing Figure 3: the kinds x rotations grid of ensemble-mean 2-D densities."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gtv.validation.figures.bands import square_data
from gtv.validation.figures.base import new_figure, write_figure
from gtv.validation.figures.figure3 import Figure3Result, rotation_label

__all__ = ["plot_figure3"]


def plot_figure3(
    result: Figure3Result,
    out_dir: str | Path,
    formats: tuple[str, ...] = ("png", "pdf"),
    paper_normalization: bool = False,
    scale: str | None = None,
    annotate: bool = True,
) -> list[Path]:
    """Draw the kinds x rotations grid and save ``figure3.<fmt>``.

    Parameters
    ----------
    result : Figure3Result
    out_dir : path
    formats : tuple of {"png", "pdf"}
    paper_normalization : bool, default False
        False: the joint density ``[q](x, y)`` (ensemble-mean 2-D histogram). True: the
        paper's per-column normalization ``p(y | x bin)`` averaged over models (which
        exaggerates low-mass columns; see :mod:`gtv.validation.figures.figure3`). The file is
        then named ``figure3_paper.<fmt>``.
    scale : {"log", "linear"}, optional
        Colour scale, one for all panels. Default: "log" for the joint density (the points
        are far denser than the filled-in gaps), "linear" with paper normalization.
    annotate : bool, default True
        Print the side-minus-diagonal density difference with its 95 % CI in each panel.
    """
    import matplotlib
    from matplotlib.colors import LogNorm, Normalize

    cfg = result.config
    scale = scale or ("linear" if paper_normalization else "log")
    if scale not in ("log", "linear"):
        raise ValueError(f"scale must be 'log' or 'linear', got {scale!r}")
    nrow, ncol = len(cfg.kinds), len(cfg.rotations)
    images = [[result.image(i, j, paper_normalization) for j in range(ncol)] for i in range(nrow)]
    vmax = max(float(np.max(im)) for row in images for im in row)
    if vmax <= 0:
        vmax = 1.0
    if scale == "log":
        norm = LogNorm(vmin=vmax * 1e-4, vmax=vmax, clip=True)
    else:
        norm = Normalize(vmin=0.0, vmax=vmax)
    base = matplotlib.colormaps["magma"]
    cmap = base.with_extremes(bad=base(0.0), under=base(0.0))
    fig = new_figure((2.9 * ncol + 1.0, 2.9 * nrow))
    axes = fig.subplots(nrow, ncol, squeeze=False)
    lo, hi = cfg.x_range
    table = {(r["kind"], r["rotation"]): r for r in result.segment_table()} if annotate else {}
    im = None
    for i, kind in enumerate(cfg.kinds):
        for j, rot in enumerate(cfg.rotations):
            ax = axes[i, j]
            img = images[i][j]
            if scale == "log":
                img = np.ma.masked_less_equal(img, 0.0)
            im = ax.imshow(
                img,
                origin="lower",
                extent=(lo, hi, lo, hi),
                cmap=cmap,
                norm=norm,
                interpolation="nearest",
            )
            pts = square_data(rot)
            ax.scatter(
                pts[:, 0],
                pts[:, 1],
                s=14,
                c="red",
                edgecolors="white",
                linewidths=0.6,
                zorder=3,
            )
            ax.set_xlim(lo, hi)
            ax.set_ylim(lo, hi)
            ax.set_aspect("equal")
            ax.tick_params(labelsize=7)
            if i == 0:
                ax.set_title(f"rotation = {rotation_label(rot)}", fontsize=10)
            if j == 0:
                ax.set_ylabel(f"{kind} features", fontsize=10)
            if annotate:
                d = table[(kind, rot)]["difference"]
                ax.text(
                    0.02,
                    0.02,
                    f"side−diag {d[0]:+.3f}\n[{d[1]:+.3f}, {d[2]:+.3f}]",
                    transform=ax.transAxes,
                    fontsize=6,
                    color="white",
                    va="bottom",
                )
    label = (
        r"$\langle p(y\,|\,x\ \mathrm{bin})\rangle$ over models (paper normalization)"
        if paper_normalization
        else r"ensemble-mean density $[q](x, y)$"
    )
    fig.colorbar(im, ax=axes, shrink=0.85, label=label)
    fig.suptitle(
        f"{cfg.n_models} linear models per panel "
        f"(F = {cfg.n_space}x{cfg.n_space}x{cfg.n_time}, "
        f"P = {cfg.P}, eps = {cfg.eps:g}, {cfg.start_points_label()} each, "
        f"PF-ODE {cfg.method} {cfg.n_steps} steps)",
        fontsize=10,
    )
    stem = "figure3_paper" if paper_normalization else "figure3"
    return write_figure(fig, out_dir, stem, formats, dpi=150)
