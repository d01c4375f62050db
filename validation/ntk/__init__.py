"""Trained two-layer networks against the lazy infinite-width (NTK) theory (docs/math/kernel.md).

:func:`compare_ntk` trains N finite-width networks per width, the infinite-width networks on the
same triples and the first-order kernel theory (bound to each training time as a
:class:`gtv.numerics.kernel.KernelTheoryAt`, the theory contract), and compares denoiser moments,
relative errors vs width, densities and the gap-mass curve (:mod:`~gtv.validation.ntk.compare`). The
configuration (:mod:`~gtv.validation.ntk.config`), the statistics
(:mod:`~gtv.validation.ntk.tables`), the result with its tables and persistence
(:mod:`~gtv.validation.ntk.result`) and its figure (:mod:`~gtv.validation.ntk.plot`) live in their
own modules.
"""

from gtv.validation.ntk.compare import compare_ntk
from gtv.validation.ntk.config import DENSITIES, NTKCompareConfig
from gtv.validation.ntk.plot import plot_ntk_comparison
from gtv.validation.ntk.result import NTKComparison
from gtv.validation.ntk.tables import denoiser_rows, density_rows, error_rows

__all__ = [
    "DENSITIES",
    "NTKCompareConfig",
    "NTKComparison",
    "compare_ntk",
    "denoiser_rows",
    "density_rows",
    "error_rows",
    "plot_ntk_comparison",
]
