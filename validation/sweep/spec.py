"""A sweep specification: a model class, fixed settings, axes to cross, what to record.

Written as TOML (docs/sweeps.md)::

    model = "linear"
    seed = 0
    record = ["gap_mass", "density", "var_dhat", "theory"]

    [fixed]
    n_models = 20
    n_samples = 2000

    [axes]
    eps = [0.01, 0.001]
    P = {start = 16, stop = 256, num = 5, scale = "log"}
    replicate = 4

An axis is a list of values, a range ``{start, stop, num, scale = "linear" | "log"}`` (both ends
included) or, for ``replicate``, a count ``n`` meaning ``0 .. n-1``. Every grid point is one task;
its random stream is derived from the spec's seed and the point's *settings* (every setting's
value, :meth:`SweepSpec.task_seed`), never from its position in the grid, so a sweep over a
subset of the values reproduces the full sweep's numbers for those points bit for bit.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from gtv.numerics.streams import check_seed, stream
from gtv.validation.sweep.models import MODEL_CLASSES, RECORDS, model_class

__all__ = ["SweepSpec", "coordinate_key", "load_spec"]

_TOP_KEYS = ("model", "seed", "record", "fixed", "axes")
_RANGE_KEYS = ("start", "stop", "num", "scale")


def coordinate_key(name: str, value: object) -> int:
    """A non-negative 63-bit integer naming the coordinate ``name = value``.

    Integers and floats that are equal give the same key (``P = 64`` and ``P = 64.0``); floats
    are written with ``repr`` (shortest round-trip form), so a value read from TOML and one
    computed by a range give the same key when they are the same double.
    """
    if isinstance(value, (tuple, list)):
        text = f"{name}=seq:" + ",".join(str(coordinate_key(name, v)) for v in value)
    elif isinstance(value, (bool, np.bool_)):
        text = f"{name}=bool:{bool(value)}"
    elif isinstance(value, (int, np.integer)) or (
        isinstance(value, (float, np.floating)) and float(value).is_integer()
    ):
        text = f"{name}=num:{int(value)}"
    elif isinstance(value, (float, np.floating)):
        text = f"{name}=num:{float(value)!r}"
    else:
        text = f"{name}=str:{value}"
    digest = hashlib.sha256(text.encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _axis_values(name: str, raw: object) -> tuple:
    """The values of axis ``name`` from its TOML form (module docstring)."""
    where = f"axes.{name}"
    if name == "replicate" and isinstance(raw, int) and not isinstance(raw, bool):
        if raw < 1:
            raise ValueError(f"{where} must be a count >= 1 or a list, got {raw!r}")
        return tuple(range(raw))
    if isinstance(raw, dict):
        unknown = sorted(set(raw) - set(_RANGE_KEYS))
        if unknown:
            raise ValueError(f"{where}: unknown range key(s) {unknown}; allowed {_RANGE_KEYS}")
        missing = [k for k in ("start", "stop", "num") if k not in raw]
        if missing:
            raise ValueError(f"{where}: a range needs start, stop and num (missing {missing})")
        start, stop, num = raw["start"], raw["stop"], raw["num"]
        scale = raw.get("scale", "linear")
        for key, v in (("start", start), ("stop", stop)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"{where}.{key} must be a finite number, got {v!r}")
        if isinstance(num, bool) or not isinstance(num, int) or num < 1:
            raise ValueError(f"{where}.num must be an integer >= 1, got {num!r}")
        if scale == "linear":
            values = np.linspace(start, stop, num)
        elif scale == "log":
            if start <= 0 or stop <= 0:
                raise ValueError(f"{where}: a log range needs start, stop > 0")
            values = np.geomspace(start, stop, num)
        else:
            raise ValueError(f"{where}.scale must be 'linear' or 'log', got {scale!r}")
        return tuple(float(v) for v in values)
    if isinstance(raw, (list, tuple)):
        if len(raw) == 0:
            raise ValueError(f"{where} is empty; give at least one value")
        for v in raw:
            if isinstance(v, bool) or not isinstance(v, (int, float, str)):
                raise ValueError(f"{where}: values must be numbers or strings, got {v!r}")
        if len(set(map(str, raw))) != len(raw):
            raise ValueError(f"{where} has repeated values: {list(raw)}")
        return tuple(raw)
    raise ValueError(f"{where} must be a list, a range table or (replicate) a count, got {raw!r}")


def _integral(name: str, values: tuple) -> tuple:
    """Values of an integer setting: a range's doubles rounded when they are integers to 1e-9."""
    out = []
    for v in values:
        if isinstance(v, float) and abs(v - round(v)) <= 1e-9 * max(1.0, abs(v)):
            v = int(round(v))
        out.append(v)
    return tuple(out)


@dataclass(frozen=True)
class SweepSpec:
    """A checked sweep specification (module docstring).

    Every grid point is validated at construction -- the settings a task will run with go
    through its model class's own checks -- so a bad value fails before anything runs, with a
    ``ValueError`` naming the key (and the grid point).
    """

    model: str
    seed: int = 0
    record: tuple[str, ...] = ("gap_mass", "var_dhat")
    fixed: dict = field(default_factory=dict)
    axes: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        mc = model_class(self.model)
        check_seed(self.seed)
        record = tuple(self.record)
        if not record:
            raise ValueError("record is empty; choose from " + str(tuple(RECORDS)))
        for r in record:
            if r not in mc.records:
                raise ValueError(
                    f"record: {r!r} is not recorded by model {self.model!r}; allowed {mc.records}"
                )
        object.__setattr__(self, "record", record)
        if not isinstance(self.fixed, dict) or not isinstance(self.axes, dict):
            raise ValueError("fixed and axes must be tables")
        if not self.axes:
            raise ValueError("axes is empty; a sweep needs at least one axis")
        allowed = set(mc.settings) | {"replicate"}
        for where, table in (("fixed", self.fixed), ("axes", self.axes)):
            unknown = sorted(set(table) - allowed)
            if unknown:
                raise ValueError(
                    f"{where}: unknown key(s) {unknown} for model {self.model!r}; "
                    f"allowed {sorted(allowed)}"
                )
        both = sorted(set(self.fixed) & set(self.axes))
        if both:
            raise ValueError(f"fixed and axes both set {both}; a setting is one or the other")
        if "replicate" in self.fixed:
            raise ValueError("fixed.replicate: replicate is an axis (a count or a list)")
        for name in mc.per_record_fixed:
            if name in self.axes:
                raise ValueError(
                    f"axes.{name}: {name} sets the shape of the recorded arrays and must be fixed"
                )
        int_settings = {f.name for f in fields(mc.point) if f.type in ("int", int)}
        axes = {
            name: _integral(name, _axis_values(name, raw)) if name in int_settings
            else _axis_values(name, raw)
            for name, raw in self.axes.items()
        }  # fmt: skip
        object.__setattr__(self, "axes", axes)
        object.__setattr__(self, "fixed", dict(self.fixed))
        for index in self.indices():
            try:
                mc.build(self.settings(index))
            except (ValueError, TypeError) as err:
                where = ", ".join(f"{n}={v!r}" for n, v in self.coordinates(index).items())
                raise ValueError(f"{err} (at grid point {where})") from None

    # -- the grid -----------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(v) for v in self.axes.values())

    @property
    def n_tasks(self) -> int:
        return int(np.prod(self.shape))

    def indices(self) -> list[tuple[int, ...]]:
        """Every grid point's index, row-major in the order the axes are written."""
        return list(itertools.product(*(range(n) for n in self.shape)))

    def coordinates(self, index: tuple[int, ...]) -> dict:
        return {name: vals[i] for (name, vals), i in zip(self.axes.items(), index, strict=True)}

    def settings(self, index: tuple[int, ...]) -> dict:
        """The model class's settings at grid point ``index`` (fixed + coordinates)."""
        coords = self.coordinates(index)
        coords.pop("replicate", None)
        return {**self.fixed, **coords}

    def task_seed(self, index: tuple[int, ...]) -> np.random.SeedSequence:
        """``stream(seed, "sweep", *keys)``: one key per setting of the grid point.

        The keys are :func:`coordinate_key` of every setting of the model class at this point
        -- fixed, swept or default alike, in name order -- and of ``replicate``, except the
        settings that only say what is measured (``ModelClass.measurement``: bins, query
        points, how densities are formed). So a task's models depend only on what is drawn: a
        sweep over a subset of the values, one that fixes a value another sweeps over, or one
        that measures the same models differently, has the same models bit for bit.
        """
        mc = model_class(self.model)
        point = mc.build(self.settings(index))
        values = {
            f.name: getattr(point, f.name) for f in fields(point) if f.name not in mc.measurement
        }
        if "replicate" in self.axes:
            values["replicate"] = self.coordinates(index)["replicate"]
        keys = [coordinate_key(n, v) for n, v in sorted(values.items())]
        return stream(self.seed, "sweep", *keys)

    # -- identity -----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "seed": int(self.seed),
            "record": list(self.record),
            "fixed": dict(sorted(self.fixed.items())),
            "axes": {n: list(v) for n, v in self.axes.items()},
        }

    @classmethod
    def from_dict(cls, d: dict) -> SweepSpec:
        if not isinstance(d, dict):
            raise ValueError("a sweep spec must be a table")
        unknown = sorted(set(d) - set(_TOP_KEYS))
        if unknown:
            raise ValueError(f"unknown key(s) {unknown}; allowed {list(_TOP_KEYS)}")
        if "model" not in d:
            raise ValueError(f"model is missing; one of {tuple(MODEL_CLASSES)}")
        return cls(
            model=d["model"], seed=d.get("seed", 0), record=tuple(d.get("record", ("gap_mass",))),
            fixed=d.get("fixed", {}), axes=d.get("axes", {}),
        )  # fmt: skip

    def spec_hash(self) -> str:
        """SHA-256 of the canonical JSON of :meth:`to_dict` (a store records it)."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


def load_spec(path: str | Path) -> SweepSpec:
    """Read a TOML sweep spec; every problem is a ``ValueError`` naming the file and the key."""
    import tomllib

    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"spec {str(path)!r} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"spec {str(path)!r} is not valid TOML: {err}") from None
    try:
        return SweepSpec.from_dict(raw)
    except (ValueError, TypeError) as err:
        raise ValueError(f"spec {str(path)!r}: {err}") from None
