"""The labelled store of a sweep: one zarr group, one region per task, readable by xarray.

Layout (docs/sweeps.md): a zarr (format 3) group written by ``xarray``; one dimension per axis of
the spec, with the axis values as coordinates, then the per-task dimensions of each record
(``model``, ``x``, ``query_t``, ``query_x``). Arrays are chunked one task per chunk, so a task's
region is a set of whole chunks, each written atomically by zarr (temporary file + rename). The
attributes hold the spec (``gtv_spec``, JSON), its hash (``gtv_spec_hash``) and the versions of
gtv and its numerical dependencies (``gtv_versions``).

``status`` (one entry per task: 0 pending, 1 done, 2 failed) and ``seconds`` are ordinary
variables, written *after* a task's data, so ``status == 1`` means the data are complete. The
record of truth is ``gtv_tasks/<i>_<j>_..json`` (written atomically, last): per task the SHA-256
of its arrays (checked by :meth:`SweepStore.verify` and before a rerun trusts a finished task)
or, for a failed task, its error message; a rerun skips exactly the tasks with a "done" record
and first repairs the ``status`` variable from the records (:meth:`SweepStore.sync_status`).
Anyone can read the results with ``xarray.open_zarr(path)``; unfinished tasks are NaN there and
``status`` says which.

Stores written by a gtv whose model class had no ``density`` setting yet (Monte Carlo the only
way) record a spec without ``density`` and have no ``transport_error`` array although they record
densities or gap masses. :meth:`SweepStore.open` reads such a spec as ``density = "mc"`` -- what
was run -- so the store resumes under a spec that says
``density = "mc"`` and is refused, with that hint, under the same spec without it (which now
means transport): Monte Carlo and transported tasks are never mixed in one store.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import warnings
from pathlib import Path

import numpy as np

from gtv.numerics.io import atomic_write
from gtv.validation.sweep.models import MODEL_CLASSES, model_class
from gtv.validation.sweep.spec import SweepSpec

__all__ = ["PENDING", "DONE", "FAILED", "SweepStore"]

PENDING, DONE, FAILED = 0, 1, 2
_TASKS = "gtv_tasks"


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("gtv-diffusion", "numpy", "numba", "scipy", "xarray", "zarr"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "unknown"
    return out


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name], dtype=np.float64)
        h.update(f"{name}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _monte_carlo_before_transport(raw: dict, group) -> bool:
    """Whether the stored spec ``raw`` predates transported densities (module docstring): its
    model class has a ``density`` setting, it sets none, it records densities or gap masses, and
    the store has no ``transport_error`` array."""
    if not isinstance(raw, dict) or raw.get("model") not in MODEL_CLASSES:
        return False  # SweepSpec.from_dict names the problem
    fixed, axes = raw.get("fixed") or {}, raw.get("axes") or {}
    return (
        "density" in MODEL_CLASSES[raw["model"]].settings
        and "density" not in fixed
        and "density" not in axes
        and bool({"gap_mass", "density"} & set(raw.get("record") or ()))
        and "transport_error" not in set(group.array_keys())
    )


def _same_but_density(a: SweepSpec, b: SweepSpec) -> bool:
    """``a`` and ``b`` differ at most in ``fixed.density``."""
    da, db = a.to_dict(), b.to_dict()
    for d in (da, db):
        d["fixed"].pop("density", None)
    return da == db


def _write_json(path: Path, obj: dict) -> None:
    with atomic_write(path) as f:
        f.write(json.dumps(obj).encode())


class SweepStore:
    """A sweep's zarr store (module docstring); open it with :meth:`create` or :meth:`open`."""

    def __init__(self, path: Path, spec: SweepSpec) -> None:
        self.path = Path(path)
        self.spec = spec
        #: The store was written before its model class had the ``density`` setting (module
        #: docstring); ``spec`` then says ``density = "mc"``.
        self.monte_carlo_before_transport = False
        mc = model_class(spec.model)
        first = mc.build(spec.settings(spec.indices()[0]))
        self.variables = mc.variables(first, spec.record)
        self._coords = mc.coordinates(first)

    # -- creation ----------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, spec: SweepSpec, *, force: bool = False) -> SweepStore:
        """Open the store of ``spec`` at ``path``, creating it if absent.

        A store written by another spec is refused (``ValueError`` naming the store) unless
        ``force``, which deletes it and starts afresh.
        """
        path = Path(path)
        if path.exists():
            try:
                old = cls.open(path)
            except ValueError:
                if not force:
                    raise
                old = None
            if old is not None and old.spec.spec_hash() == spec.spec_hash():
                return old
            if not force:
                hint = ""
                if old.monte_carlo_before_transport and _same_but_density(old.spec, spec):
                    hint = (
                        " -- it holds Monte Carlo densities, written before density = "
                        "'transport' became the default; add density = \"mc\" under [fixed] "
                        "to resume it"
                    )
                raise ValueError(
                    f"store {str(path)!r} was written by another spec (hash "
                    f"{old.spec.spec_hash()[:12]}, this spec {spec.spec_hash()[:12]}){hint}; "
                    "use another store or --force to replace it"
                )
            shutil.rmtree(path)
        store = cls(path, spec)
        store._initialise()
        return store

    def _initialise(self) -> None:
        import xarray as xr

        spec = self.spec
        axes = list(spec.axes)
        data_vars = {}
        for name, (dims, sizes) in self.variables.items():
            data_vars[name] = (axes + list(dims), np.full(spec.shape + tuple(sizes), np.nan))
        data_vars["status"] = (axes, np.zeros(spec.shape, dtype=np.int8))
        data_vars["seconds"] = (axes, np.full(spec.shape, np.nan))
        coords = {name: list(vals) for name, vals in spec.axes.items()}
        for dims, _ in self.variables.values():
            for d in dims:
                coords[d] = self._coords[d]
        ds = xr.Dataset(data_vars, coords=coords)
        ds.attrs.update(
            gtv_spec=json.dumps(spec.to_dict()),
            gtv_spec_hash=spec.spec_hash(),
            gtv_versions=json.dumps(_versions()),
        )
        encoding = {
            name: {"chunks": (1,) * len(axes) + tuple(ds[name].shape[len(axes) :])}
            for name in ds.data_vars
        }
        tmp = self.path.with_name(f".{self.path.name}.tmp-{secrets.token_hex(4)}")
        with warnings.catch_warnings():  # "consolidated metadata is not in the v3 spec" (yet)
            warnings.simplefilter("ignore")
            ds.to_zarr(tmp, mode="w", encoding=encoding, consolidated=True, zarr_format=3)
        (tmp / _TASKS).mkdir()
        os.replace(tmp, self.path)  # the store appears complete or not at all

    @classmethod
    def open(cls, path: str | Path) -> SweepStore:
        """An existing store; ``ValueError`` naming it if it is not a gtv sweep store."""
        import zarr

        path = Path(path)
        try:
            group = zarr.open_group(str(path), mode="r")
            raw = json.loads(group.attrs["gtv_spec"])
            legacy = _monte_carlo_before_transport(raw, group)
            if legacy:
                raw = {**raw, "fixed": {**raw.get("fixed", {}), "density": "mc"}}
            store = cls(path, SweepSpec.from_dict(raw))
            missing = sorted(set(store.variables) - set(group.array_keys()))
        except (KeyError, FileNotFoundError, json.JSONDecodeError) as err:
            raise ValueError(f"store {str(path)!r} is not a gtv sweep store ({err})") from None
        except Exception as err:  # zarr raises many kinds for a damaged group
            if isinstance(err, ValueError):
                raise ValueError(f"store {str(path)!r}: {err}") from None
            raise ValueError(f"store {str(path)!r} cannot be read ({err})") from None
        if missing:
            raise ValueError(
                f"store {str(path)!r} lacks the array(s) {missing} that its spec records "
                "(written by another version of gtv?)"
            )
        store.monte_carlo_before_transport = legacy
        return store

    # -- tasks -------------------------------------------------------------------------------
    def _record_path(self, index: tuple[int, ...]) -> Path:
        return self.path / _TASKS / ("_".join(map(str, index)) + ".json")

    def record(self, index: tuple[int, ...]) -> dict | None:
        """The task record of ``index`` (``None`` if the task never finished or failed)."""
        p = self._record_path(index)
        try:
            return json.loads(p.read_text())
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None  # a damaged record counts as unfinished (its file is rewritten)

    def write_task(self, index: tuple[int, ...], arrays: dict, seconds: float) -> None:
        """Write one finished task's arrays into its region, then mark it done."""
        import zarr

        group = zarr.open_group(str(self.path), mode="r+")
        for name in self.variables:
            group[name][index] = np.asarray(arrays[name], dtype=np.float64)
        group["seconds"][index] = seconds
        group["status"][index] = DONE
        # the record last: a task counts as done (and is skipped by a rerun) only once all of
        # its data are on disk; :meth:`sync_status` repairs the status mirror after a crash
        _write_json(
            self._record_path(index),
            {"status": "done", "sha256": _digest({n: arrays[n] for n in self.variables}),
             "seconds": seconds},
        )  # fmt: skip

    def write_failure(self, index: tuple[int, ...], error: str) -> None:
        """Record that task ``index`` failed with ``error`` (the rest of the sweep goes on)."""
        import zarr

        _write_json(self._record_path(index), {"status": "failed", "error": error})
        zarr.open_group(str(self.path), mode="r+")["status"][index] = FAILED

    def status(self) -> np.ndarray:
        """Per-task status from the records (PENDING / DONE / FAILED), shape ``spec.shape``."""
        out = np.zeros(self.spec.shape, dtype=np.int8)
        for index in self.spec.indices():
            rec = self.record(index)
            if rec is not None:
                out[index] = DONE if rec.get("status") == "done" else FAILED
        return out

    def sync_status(self) -> np.ndarray:
        """Make the ``status`` variable equal the task records (after an interrupted run)."""
        import zarr

        status = self.status()
        var = zarr.open_group(str(self.path), mode="r+")["status"]
        if not np.array_equal(var[...], status):
            var[...] = status
        return status

    def failures(self) -> dict[tuple[int, ...], str]:
        out = {}
        for index in self.spec.indices():
            rec = self.record(index)
            if rec is not None and rec.get("status") == "failed":
                out[index] = str(rec.get("error"))
        return out

    def verify(self) -> list[tuple[int, ...]]:
        """Finished tasks whose stored arrays no longer match their checksum (corrupt)."""
        import zarr

        group = zarr.open_group(str(self.path), mode="r")
        bad = []
        for index in self.spec.indices():
            rec = self.record(index)
            if rec is None or rec.get("status") != "done":
                continue
            try:
                arrays = {n: group[n][index] for n in self.variables}
            except Exception:  # an unreadable chunk is corrupt too
                bad.append(index)
                continue
            if _digest(arrays) != rec.get("sha256"):
                bad.append(index)
        return bad

    def forget(self, index: tuple[int, ...]) -> None:
        """Mark task ``index`` pending again (its data will be recomputed)."""
        import zarr

        self._record_path(index).unlink(missing_ok=True)
        zarr.open_group(str(self.path), mode="r+")["status"][index] = PENDING

    def dataset(self):
        """The store as an ``xarray.Dataset`` (lazy, through ``xarray.open_zarr``)."""
        import xarray as xr

        return xr.open_zarr(str(self.path))
