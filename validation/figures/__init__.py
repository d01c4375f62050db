"""The paper's figures, remade from saved data (Vastola 2025, Figs. 1-3).

Each figure has a ``compute_figureN`` function returning a result object (arrays + full
configuration, saveable and reloadable) and a ``plot`` method writing PNG and/or PDF files: Figure
1, the proxy-score variance fraction (:mod:`~gtv.validation.figures.figure1`); Figure 2, learned 1-D
distributions vs eps and P (:mod:`~gtv.validation.figures.figure2`); Figure 3, learned 2-D
distributions of Gaussian vs Fourier features (:mod:`~gtv.validation.figures.figure3`, its band
statistics :mod:`~gtv.validation.figures.bands`, its drawing
:mod:`~gtv.validation.figures.figure3_plot`, the accuracy of its start points
:mod:`~gtv.validation.figures.figure3_density`). What they share -- panel seeds (named streams), one
trained-and-sampled linear panel, writing figure files -- is in :mod:`~gtv.validation.figures.base`.
"""

from gtv.validation._lazy import lazy_exports

_EXPORTS = {
    "FIGURE1_DATASETS": ".figure1",
    "FIGURE1_TIMES": ".figure1",
    "FIGURE2_DATA": ".figure2",
    "FIGURE3_KINDS": ".figure3",
    "FIGURE3_ROTATIONS": ".figure3",
    "Figure1Result": ".figure1",
    "Figure2Config": ".figure2",
    "Figure2Result": ".figure2",
    "Figure3Config": ".figure3",
    "Figure3Result": ".figure3",
    "SegmentDiagonalMass": ".bands",
    "compute_figure1": ".figure1",
    "compute_figure2": ".figure2",
    "compute_figure3": ".figure3",
    "mixture_density": ".figure2",
    "new_figure": ".base",
    "panel_seed": ".base",
    "paper_normalized_density": ".bands",
    "plot_figure3": ".figure3_plot",
    "rotation_label": ".figure3",
    "sample_linear_panel": ".base",
    "segment_vs_diagonal_mass": ".bands",
    "square_data": ".bands",
    "write_figure": ".base",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
