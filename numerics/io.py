"""Saving and loading results with their configuration (docs/engineering.md).

Shared by every saveable result of gtv (numerics and validation alike; the validation layer
re-exports it as :mod:`gtv.validation.results`).

A result file is a ``.npz`` archive of plain numeric arrays plus one entry ``__config__`` holding
the configuration as a JSON string (a unicode array, not an object array). Loading uses
``allow_pickle=False``, so a shared results file cannot run code.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = ["load_result", "load_result_of_kind", "save_result"]

_CONFIG_KEY = "__config__"


def save_result(path: str | Path, arrays: dict[str, np.ndarray], config: dict) -> Path:
    """Write ``arrays`` and the JSON-serializable ``config`` to ``path`` (``.npz`` is appended).

    Raises
    ------
    ValueError
        If an array name is reserved or an array has dtype ``object``.
    TypeError
        If ``config`` is not JSON-serializable.
    """
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    if _CONFIG_KEY in arrays:
        raise ValueError(f"arrays may not contain the reserved key {_CONFIG_KEY!r}")
    out = {}
    for name, arr in arrays.items():
        a = np.asarray(arr)
        if a.dtype == object:
            raise ValueError(f"arrays[{name!r}] has dtype object, which cannot be saved safely")
        out[name] = a
    out[_CONFIG_KEY] = np.array(json.dumps(config, sort_keys=True))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **out)
    return path


def load_result(path: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    """Read a file written by :func:`save_result`; returns ``(arrays, config)``."""
    with np.load(Path(path), allow_pickle=False) as data:
        if _CONFIG_KEY not in data.files:
            raise ValueError(f"path {str(path)!r} is not a gtv result file (no configuration)")
        config = json.loads(str(data[_CONFIG_KEY]))
        arrays = {k: data[k] for k in data.files if k != _CONFIG_KEY}
    return arrays, config


def load_result_of_kind(path: str | Path, kind: str, description: str) -> tuple[dict, dict]:
    """:func:`load_result` for a file whose configuration has ``"kind": kind``.

    Raises ``ValueError`` ("path ... is not {description} file", e.g. ``description = "an
    NTKTheory"``) when the file holds another kind of result.
    """
    arrays, config = load_result(path)
    if config.get("kind") != kind:
        raise ValueError(f"path {str(path)!r} is not {description} file")
    return arrays, config
