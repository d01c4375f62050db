"""Saving and loading results with their configuration: see :mod:`gtv.numerics.io`.

Also the one place that writes figures (:func:`save_figure`), and the JSON round trip of the
frozen configuration dataclasses (:class:`JsonConfig`).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
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


def save_figure(
    fig, stem: str | Path, formats, dpi: int = 150, parallel: bool = False
) -> list[Path]:
    """Write ``fig`` to ``<stem>.<fmt>`` for every format in ``formats``; returns the paths.

    Each file is written to a temporary name in the same folder and renamed into place, so a
    reader never sees a half-written figure. With ``parallel`` (the ``gtv`` command sets it),
    every format but the last is rendered in a forked child process at the same time as the
    last one here (POSIX only; matplotlib renders on one core); a format whose child fails is
    rendered again here, so the result is the same, and an error is raised here.
    """
    paths = [Path(str(stem) + f".{fmt}") for fmt in formats]
    jobs = list(zip(formats, paths, strict=True))
    children = []
    if parallel and len(jobs) > 1 and hasattr(os, "fork"):
        for fmt, p in jobs[:-1]:
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:  # the child: render one format, never return into the caller
                code = 1
                try:
                    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
                    _write_figure_file(fig, p, fmt, dpi)
                    code = 0
                finally:
                    os._exit(code)
            children.append((pid, fmt, p))
        jobs = jobs[-1:]
    try:
        for fmt, p in jobs:
            _write_figure_file(fig, p, fmt, dpi)
    finally:
        failed = [(fmt, p) for pid, fmt, p in children if os.waitpid(pid, 0)[1] != 0]
    for fmt, p in failed:
        _write_figure_file(fig, p, fmt, dpi)
    return paths


def _write_figure_file(fig, path: Path, fmt: str, dpi: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fig.savefig(tmp, dpi=dpi, format=fmt)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
