"""Saving and loading results with their configuration: see :mod:`gtv.numerics.io`.

Also the one place that writes figures (:func:`save_figure`), and the JSON round trip of the
frozen configuration dataclasses (:class:`JsonConfig`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from gtv.numerics.io import (
    FORMAT_VERSION,
    CacheEntryWarning,
    LegacyResultWarning,
    ResultFileError,
    load_cache_entry,
    load_result,
    load_result_of_kind,
    require_finite,
    result_file,
    save_result,
)

__all__ = [
    "FORMAT_VERSION",
    "CacheEntryWarning",
    "JsonConfig",
    "LegacyResultWarning",
    "ResultFileError",
    "figure_stem",
    "load_cache_entry",
    "load_result",
    "load_result_of_kind",
    "require_finite",
    "result_file",
    "save_figure",
    "save_result",
]


class JsonConfig:
    """Mixin for frozen configuration dataclasses: ``to_dict`` / ``from_dict`` through JSON.

    Tuples are stored as lists and lists read back as tuples (JSON has no tuples).
    """

    def to_dict(self) -> dict:
        return {
            f.name: (list(v) if isinstance(v, tuple) else v)
            for f in dataclasses.fields(self)
            for v in (getattr(self, f.name),)
        }

    @classmethod
    def from_dict(cls, d: dict):
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()})


def figure_stem(path: str | Path) -> Path:
    """``path`` without a ``.png``/``.pdf`` suffix; its folder is created."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (".png", ".pdf") else path
    stem.parent.mkdir(parents=True, exist_ok=True)
    return stem


def save_figure(fig, stem: str | Path, formats, dpi: int = 150) -> list[Path]:
    """Write ``fig`` to ``<stem>.<fmt>`` for every format in ``formats``; returns the paths."""
    out = []
    for fmt in formats:
        p = Path(str(stem) + f".{fmt}")
        fig.savefig(p, dpi=dpi)
        out.append(p)
    return out
