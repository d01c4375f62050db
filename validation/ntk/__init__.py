"""Trained two-layer networks against the lazy infinite-width (NTK) theory (docs/math/kernel.md).

:func:`compare_ntk` trains N finite-width networks per width, the infinite-width networks on the
same triples and the first-order kernel theory (bound to each training time as a
:class:`gtv.numerics.kernel.KernelTheoryAt`, the theory contract), and compares denoiser moments,
relative errors vs width, densities (transported by default, docs/math/transport.md) and the
gap-mass curve (:mod:`~gtv.validation.ntk.compare`). The
configuration (:mod:`~gtv.validation.ntk.config`), the statistics
(:mod:`~gtv.validation.ntk.tables`), the result with its tables and persistence
(:mod:`~gtv.validation.ntk.result`) and its figure (:mod:`~gtv.validation.ntk.plot`) live in their
own modules.
"""

from gtv.validation._lazy import lazy_exports

_EXPORTS = {
    "DENSITIES": ".config",
    "NTKCompareConfig": ".config",
    "NTKComparison": ".result",
    "compare_ntk": ".compare",
    "denoiser_rows": ".tables",
    "density_rows": ".tables",
    "error_rows": ".tables",
    "plot_ntk_comparison": ".plot",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
