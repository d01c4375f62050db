"""Sweeps at scale: a TOML spec, one task per grid point, a labelled zarr store (docs/sweeps.md).

``gtv sweep SPEC.toml --store STORE`` runs a spec; :func:`run_sweep` is the same from Python and
``xarray.open_zarr(STORE)`` reads the results.
"""

from gtv.validation._lazy import lazy_exports

_EXPORTS = {
    "DONE": ".store",
    "EXECUTORS": ".runner",
    "FAILED": ".store",
    "MODEL_CLASSES": ".models",
    "PENDING": ".store",
    "RECORDS": ".models",
    "ModelClass": ".models",
    "SweepReport": ".runner",
    "SweepSpec": ".spec",
    "SweepStore": ".store",
    "Task": ".runner",
    "coordinate_key": ".spec",
    "load_spec": ".spec",
    "model_class": ".models",
    "run_sweep": ".runner",
    "run_task": ".runner",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
