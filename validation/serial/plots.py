"""Figures of the serial-reproduction experiments (written through
:func:`gtv.validation.results.save_figure`; matplotlib is imported only when drawing).

* ``fig2`` and ``s2``: image rows, the forward marginals ``q_0 .. q_T`` and the sampler's
  densities ``p_T .. p_0`` (colour scale ``[0, max p_data]``, as the authors plot them);
* ``fig3``, ``s5`` and ``fixed-total``: the schedules, the error and the complexity against the
  number of steps, and the complexity-performance trade-off; ``fig3`` also writes the
  stationarity panel of Fig. S1 (``..._S1``);
* ``s4``: error, complexity and stationarity per condition, and (``..._S3``) the image rows of
  the conditions that keep their trajectory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gtv.validation.results import figure_stem, save_figure
from gtv.validation.serial.experiments import ExperimentResult

__all__ = ["plot_experiment", "plot_learned"]


def _figure(figsize: tuple[float, float]):
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def _image(ax, p: np.ndarray, vmax: float) -> None:
    ax.imshow(p.T, origin="lower", vmin=0.0, vmax=vmax, cmap="viridis", interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def _rows_figure(result: ExperimentResult, title: str):
    """Forward and backward rows of every condition that kept its trajectory."""
    kept = [(r, a) for r, a in zip(result.rows, result.arrays, strict=True) if "q" in a]
    vmax = float(result.data.max())
    n_cols = max(a["q"].shape[0] for _, a in kept)
    fig = _figure((1.15 * n_cols + 1.5, 2.4 * len(kept) + 0.6))
    axes = fig.subplots(2 * len(kept), n_cols, squeeze=False)
    for k, (row, arr) in enumerate(kept):
        q, p = arr["q"], arr["p"]
        T = q.shape[0] - 1
        for j in range(n_cols):
            for i, (dens, name) in enumerate(((q, "q"), (p[::-1], "p"))):
                ax = axes[2 * k + i, j]
                if j > T:
                    ax.axis("off")
                    continue
                _image(ax, dens[j], vmax)
                step = j if name == "q" else T - j
                if 2 * k + i == 0 or (i == 1 and k == 0) or j == 0:
                    ax.set_title(f"{name}$_{{{step}}}$", fontsize=7)
        axes[2 * k, 0].set_ylabel(f"{row['label']}\nforward", fontsize=7)
        axes[2 * k + 1, 0].set_ylabel(f"{row['sampler']}\nbackward", fontsize=7)
    fig.suptitle(title, fontsize=9)
    return fig


def _sweep_groups(result: ExperimentResult) -> dict[str, list[int]]:
    """Condition indices grouped by series (everything before the ``T=`` label part)."""
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(result.rows):
        name = r["label"].split("T=")[0].strip() or r["family"]
        suffix = r["label"].split("T=")[1].split(" ", 1)
        series = f"{name} {suffix[1]}".strip() if len(suffix) > 1 else name
        groups.setdefault(series, []).append(i)
    return groups


def _sweep_figure(result: ExperimentResult, title: str):
    groups = _sweep_groups(result)
    fig = _figure((13.0, 3.4))
    ax_s, ax_e, ax_c, ax_t = fig.subplots(1, 4)
    for series, idx in groups.items():
        Ts = np.array([result.rows[i]["T"] for i in idx])
        err = np.array([result.rows[i]["error"] for i in idx])
        comp = np.array([result.rows[i]["complexity"] for i in idx])
        (line,) = ax_e.plot(Ts, err, "o-", label=series)
        color = line.get_color()
        ax_c.plot(Ts, comp, "o-", color=color, label=series)
        ax_t.plot(comp, err, "o-", color=color, label=series)
        for i in idx:
            s = result.arrays[i]["sigmas"]
            ax_s.plot(np.arange(1, s.size + 1), s, lw=0.8, color=color)
    terminal = [result.rows[i]["terminal"] for i in next(iter(groups.values()))]
    ax_e.plot(
        [result.rows[i]["T"] for i in next(iter(groups.values()))],
        terminal,
        "k:",
        lw=1,
        label="KL(p_F || q_T), first series",
    )
    ax_s.set(xlabel="step t", ylabel=r"$\sigma_t$", title="schedules", xscale="log")
    ax_e.set(xlabel="number of steps T", ylabel="KL(p_gen || p_data) [bits]", title="error")
    ax_c.set(xlabel="number of steps T", ylabel="max KL(q_t || q_t+1) [bits]", title="complexity")
    ax_t.set(xlabel="complexity [bits]", ylabel="error [bits]", title="trade-off")
    for ax in (ax_e, ax_c):
        ax.set_xscale("log")
    ax_e.set_yscale("log")
    ax_e.legend(fontsize=6)
    fig.suptitle(title, fontsize=9)
    return fig


def _stationarity_figure(result: ExperimentResult, title: str):
    fig = _figure((4.2, 3.2))
    ax = fig.subplots()
    for series, idx in _sweep_groups(result).items():
        Ts = [result.rows[i]["T"] for i in idx]
        ax.plot(Ts, [result.rows[i]["stationarity"] for i in idx], "o-", label=series)
    ax.set(
        xscale="log",
        xlabel="number of steps T",
        ylabel="deviation of integral from 1",
        title="stationarity (Fig. S1)",
    )
    ax.legend(fontsize=6)
    fig.suptitle(title, fontsize=9)
    return fig


def _bars_figure(result: ExperimentResult, title: str):
    fig = _figure((12.0, 3.4))
    axes = fig.subplots(1, 3)
    labels = [r["label"] for r in result.rows]
    x = np.arange(len(labels))
    for ax, key, name in zip(
        axes,
        ("error", "complexity", "stationarity"),
        ("error KL(p_gen || p_data) [bits]", "complexity [bits]", "stationarity"),
        strict=True,
    ):
        ax.bar(x, [r[key] for r in result.rows])
        ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=7)
        ax.set_title(name, fontsize=8)
    fig.suptitle(title, fontsize=9)
    return fig


def plot_experiment(
    result: ExperimentResult, stem: str | Path, formats: tuple[str, ...] = ("png", "pdf")
) -> list[Path]:
    """Draw ``result`` to ``<stem>.<fmt>`` (and ``<stem>_S1`` / ``<stem>_S3`` where the paper
    has a companion figure); returns the written paths."""
    stem = figure_stem(stem)
    cfg = result.config
    g = result.grid
    title = f"{cfg.name}: {cfg.grid} grid, {g.n} x {g.n}"
    paths: list[Path] = []
    if cfg.name in ("fig2", "s2"):
        paths += save_figure(_rows_figure(result, title), stem, formats)
    elif cfg.name == "s4":
        paths += save_figure(_bars_figure(result, title), stem, formats)
        if any("q" in a for a in result.arrays):
            fig = _rows_figure(result, title + " (Fig. S3: too-weak noise)")
            paths += save_figure(fig, Path(str(stem) + "_S3"), formats)
    else:
        paths += save_figure(_sweep_figure(result, title), stem, formats)
        if cfg.name == "fig3":
            fig = _stationarity_figure(result, title)
            paths += save_figure(fig, Path(str(stem) + "_S1"), formats)
    return paths


_COLORS = {"exact": "k", "exact-mean": "tab:gray", "linear": "tab:blue", "kernel": "tab:orange"}


def _learned_rows(result, part: str, denoiser: str) -> list[dict]:
    return [r for r in result.rows if r["part"] == part and r["denoiser"] == denoiser]


def _learned_summary_figure(result, title: str):
    cfg = result.config
    fig = _figure((13.0, 3.6))
    ax_e, ax_g, ax_f, ax_fg = fig.subplots(1, 4)
    for name in cfg.denoisers:
        c = _COLORS[name]
        rows = _learned_rows(result, "steps", name)
        if rows:
            Ts = [r["T"] for r in rows]
            for ax, key in ((ax_e, "error"), (ax_g, "gap")):
                ax.plot(Ts, [r[key] for r in rows], "o-", color=c, label=name)
                ax.fill_between(
                    Ts, [r[key + "_lo"] for r in rows], [r[key + "_hi"] for r in rows], color=c,
                    alpha=0.25, lw=0,
                )  # fmt: skip
            ax_g.plot(Ts, [r["stationary_gap"] for r in rows], "s--", color=c, ms=3, lw=0.8)
    ax_g.axhline(result.data_gap, color="tab:green", lw=1, label="data")
    if cfg.steps:
        for ax in (ax_e, ax_g):
            ax.set_xscale("log")
            ax.set_xticks(list(cfg.steps), [str(T) for T in cfg.steps])
            ax.set_xticks([], minor=True)
    ax_e.set(yscale="log", xlabel="number of steps T (fixed total noise)")
    ax_e.set(ylabel="KL(p_gen || p_data) [bits]", title="error vs steps")
    ax_g.set(xlabel="number of steps T", ylabel="mass off the roll")
    ax_g.set_title("gap filling (solid: p_gen, dashed: stationary)", fontsize=8)
    ax_e.legend(fontsize=6)
    ax_g.legend(fontsize=6)
    fams = [r["family"] for r in _learned_rows(result, "families", cfg.denoisers[0])]
    width = 0.8 / len(cfg.denoisers)
    for k, name in enumerate(cfg.denoisers):
        rows = _learned_rows(result, "families", name)
        if not rows:
            continue
        x = np.arange(len(rows)) + (k - (len(cfg.denoisers) - 1) / 2) * width
        for ax, key in ((ax_f, "error"), (ax_fg, "gap")):
            v = np.array([r[key] for r in rows])
            err = np.array(
                [[v_ - r[key + "_lo"], r[key + "_hi"] - v_] for v_, r in zip(v, rows, strict=True)]
            ).T
            ax.bar(x, v, width, yerr=err, color=_COLORS[name], label=name, capsize=2)
    for ax in (ax_f, ax_fg):
        ax.set_xticks(np.arange(len(fams)), fams, rotation=30, ha="right", fontsize=7)
    ax_f.set(yscale="log", ylabel="KL(p_gen || p_data) [bits]")
    ax_f.set_title(f"error vs noise family (T = {cfg.family_T})", fontsize=8)
    ax_fg.axhline(result.data_gap, color="tab:green", lw=1)
    ax_fg.set(ylabel="mass off the roll", title="gap mass vs family")
    fig.suptitle(title, fontsize=9)
    return fig


def _learned_images_figure(result, title: str):
    cfg = result.config
    conds = sorted({int(k.split("/")[0]) for k in result.images})
    row_labels = result.meta.get("conditions", [])
    names = list(cfg.denoisers)
    cols = ["data", *names, *(f"{d} stationary" for d in names if d in ("linear", "kernel"))]
    fig = _figure((1.3 * len(cols) + 1.0, 1.4 * len(conds) + 0.6))
    axes = fig.subplots(len(conds), len(cols), squeeze=False)
    vmax = float(result.data.max())
    for i, ci in enumerate(conds):
        for j, col in enumerate(cols):
            img = result.data if col == "data" else result.images.get(f"{ci}/{col}")
            ax = axes[i, j]
            if img is None:
                ax.axis("off")
                continue
            _image(ax, img, vmax)
            if i == 0:
                ax.set_title(col, fontsize=7)
        axes[i, 0].set_ylabel(row_labels[ci] if ci < len(row_labels) else str(ci), fontsize=7)
    fig.suptitle(title + " (model-mean densities)", fontsize=9)
    return fig


def plot_learned(result, stem: str | Path, formats: tuple[str, ...] = ("png", "pdf")) -> list[Path]:
    """Draw a :class:`~gtv.validation.serial.learned_experiment.LearnedResult`: the summary
    (``<stem>``) and the model-mean densities of every condition (``<stem>_images``)."""
    stem = figure_stem(stem)
    cfg = result.config
    title = f"exact vs learned denoisers ({cfg.grid} grid, variance: {cfg.variance})"
    paths = save_figure(_learned_summary_figure(result, title), stem, formats)
    paths += save_figure(
        _learned_images_figure(result, title), Path(str(stem) + "_images"), formats
    )
    return paths
