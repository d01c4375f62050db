"""Sweeps at scale: a TOML spec, one task per grid point, a labelled zarr store (docs/sweeps.md).

``gtv sweep SPEC.toml --store STORE`` runs a spec; :func:`run_sweep` is the same from Python and
``xarray.open_zarr(STORE)`` reads the results.
"""

from gtv.validation.sweep.models import MODEL_CLASSES, RECORDS, ModelClass, model_class
from gtv.validation.sweep.runner import EXECUTORS, SweepReport, Task, run_sweep, run_task
from gtv.validation.sweep.spec import SweepSpec, coordinate_key, load_spec
from gtv.validation.sweep.store import DONE, FAILED, PENDING, SweepStore

__all__ = [
    "DONE",
    "EXECUTORS",
    "FAILED",
    "MODEL_CLASSES",
    "PENDING",
    "RECORDS",
    "ModelClass",
    "SweepReport",
    "SweepSpec",
    "SweepStore",
    "Task",
    "coordinate_key",
    "load_spec",
    "model_class",
    "run_sweep",
    "run_task",
]
