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

from gtv.validation.figures.bands import (
    SegmentDiagonalMass,
    paper_normalized_density,
    segment_vs_diagonal_mass,
    square_data,
)
from gtv.validation.figures.base import new_figure, panel_seed, sample_linear_panel, write_figure
from gtv.validation.figures.figure1 import (
    FIGURE1_DATASETS,
    FIGURE1_TIMES,
    Figure1Result,
    compute_figure1,
)
from gtv.validation.figures.figure2 import (
    FIGURE2_DATA,
    Figure2Config,
    Figure2Result,
    compute_figure2,
    mixture_density,
)
from gtv.validation.figures.figure3 import (
    FIGURE3_KINDS,
    FIGURE3_ROTATIONS,
    Figure3Config,
    Figure3Result,
    compute_figure3,
    rotation_label,
)
from gtv.validation.figures.figure3_plot import plot_figure3

__all__ = [
    "FIGURE1_DATASETS",
    "FIGURE1_TIMES",
    "FIGURE2_DATA",
    "FIGURE3_KINDS",
    "FIGURE3_ROTATIONS",
    "Figure1Result",
    "Figure2Config",
    "Figure2Result",
    "Figure3Config",
    "Figure3Result",
    "SegmentDiagonalMass",
    "compute_figure1",
    "compute_figure2",
    "compute_figure3",
    "mixture_density",
    "new_figure",
    "panel_seed",
    "paper_normalized_density",
    "plot_figure3",
    "rotation_label",
    "sample_linear_panel",
    "segment_vs_diagonal_mass",
    "square_data",
    "write_figure",
]
