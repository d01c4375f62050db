"""Figures of the memorization transition: fractions against K, one panel per criterion."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from gtv.numerics.memory import LABEL_NAMES
from gtv.validation.memory.config import CRITERIA
from gtv.validation.memory.transition import TransitionResult

__all__ = ["plot_transition", "plot_transitions"]

_COLORS = {"memorized": "tab:red", "spurious": "tab:green", "generalized": "tab:blue"}
_TITLES = {
    "thresholds": "absolute thresholds (Pham et al.)",
    "ratio": "distance ratio < 1/3",
    "attractors": "model's own attractors",
}


def plot_transitions(
    results: Sequence[TransitionResult],
    stem: str | Path,
    formats: Sequence[str] = ("png", "pdf"),
    dpi: int = 130,
) -> list[Path]:
    """One row per result (model class), one column per criterion; fractions vs K with 95 %
    model-level CIs; dashed: the linear theory's prediction and dotted: its mean model, where
    they were run. Returns the files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = list(results)
    if not results:
        raise ValueError("results must hold at least one TransitionResult")
    fig, axes = plt.subplots(
        len(results), len(CRITERIA), figsize=(4.2 * len(CRITERIA), 2.9 * len(results)),
        squeeze=False, sharex=True, sharey=True,
    )  # fmt: skip
    for row, res in zip(axes, results, strict=True):
        Ks = res.Ks
        for ax, crit in zip(row, CRITERIA, strict=True):
            cur = res.curve(crit)
            th = res.curve(crit, "theory") if res.theory_fractions is not None else None
            mn = res.curve(crit, "mean") if res.mean_fractions is not None else None
            for c, name in enumerate(LABEL_NAMES):
                col = _COLORS[name]
                ax.plot(Ks, cur[:, c, 0], "o-", color=col, ms=3, lw=1.2, label=name)
                ax.fill_between(Ks, cur[:, c, 1], cur[:, c, 2], color=col, alpha=0.18, lw=0)
                if th is not None:
                    ax.plot(Ks, th[:, c, 0], "--", color=col, lw=1.0)
                if mn is not None:
                    ax.plot(Ks, mn[:, c, 0], ":", color=col, lw=1.0)
            ax.set_xscale("log")
            ax.set_ylim(-0.02, 1.02)
            ax.set_title(f"{res.config.model}: {_TITLES[crit]}", fontsize=9)
            ax.grid(alpha=0.3)
        row[0].set_ylabel(f"fraction ({res.config.dataset})")
    for ax in axes[-1]:
        ax.set_xlabel("training-set size K")
    axes[0, 0].legend(fontsize=8, loc="center left")
    if any(r.theory_fractions is not None for r in results):
        fig.text(
            0.99, 0.005, "dashed: first-order linear theory (Gaussian field at P); dotted: its "
            "mean model (P -> infinity)", ha="right", fontsize=8,
        )  # fmt: skip
    fig.tight_layout()
    paths = []
    for fmt in formats:
        path = Path(f"{stem}.{fmt}")
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi)
        paths.append(path)
    plt.close(fig)
    return paths


def plot_transition(
    result: TransitionResult, stem: str | Path, formats: Sequence[str] = ("png", "pdf")
) -> list[Path]:
    """:func:`plot_transitions` of one result."""
    return plot_transitions([result], stem, formats)
