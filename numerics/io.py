"""Saving and loading results with their configuration (docs/engineering.md, docs/reliability.md).

Shared by every saveable result of gtv (numerics and validation alike; the validation layer
re-exports it as :mod:`gtv.validation.results`).

A result file is a ``.npz`` archive of plain numeric arrays plus two text entries: ``__config__``
holds the configuration as a JSON string and ``__gtv__`` a JSON header ``{"format", "kind",
"sha256"}``: the format version (:data:`FORMAT_VERSION`), the kind of result, and a SHA-256
checksum over the format, the kind, the configuration text and every array (name, dtype, shape
and bytes, in name order). Loading uses ``allow_pickle=False``, so a shared results file cannot
run code.

Writing is atomic: the archive goes to a temporary file in the same folder
(``.<name>.tmp-<pid>-<random>``), is flushed to disk (``fsync``) and then renamed onto the final
path, so a process killed mid-save leaves either no file or the previous complete one.

Reading verifies, in this order, that the file is a readable archive, that the configuration and
header decode, the format version, the checksum and (:func:`load_result_of_kind`) the kind; every
failure is one :class:`ResultFileError` (a ``ValueError``) naming the file and the problem.
Objects then check their own shapes, finiteness and ranges inside :func:`result_file`, which names
the file in the same way.

Files written before the header existed (format 1: no ``__gtv__`` entry) still load, with a
:class:`LegacyResultWarning`, when their configuration identifies the expected kind; a file that
has a checksum which does not match is always rejected. Caches never use a legacy or a failing
entry (:func:`load_cache_entry`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import secrets
import struct
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np

__all__ = [
    "FORMAT_VERSION",
    "atomic_write",
    "CacheEntryWarning",
    "LegacyResultWarning",
    "ResultFileError",
    "load_cache_entry",
    "load_result",
    "load_result_of_kind",
    "require_finite",
    "result_file",
    "save_result",
]

#: Version of the file layout written by :func:`save_result` (1 = before the ``__gtv__`` header).
FORMAT_VERSION = 2

_CONFIG_KEY = "__config__"
_HEADER_KEY = "__gtv__"
_RESERVED = (_CONFIG_KEY, _HEADER_KEY)
# Errors that mean "this is not a readable archive" (plus MemoryError / OverflowError from a
# damaged array header that claims an absurd size).
_CORRUPT = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    KeyError,
    struct.error,
    NotImplementedError,
    RuntimeError,
    MemoryError,
    OverflowError,
)
_NOT_CORRUPT = (FileNotFoundError, IsADirectoryError, PermissionError)

T = TypeVar("T")


class ResultFileError(ValueError):
    """A result file that cannot be used (corrupt, truncated, of another kind, inconsistent).

    The message is ``"path '<path>': <problem>"``; :attr:`path` and :attr:`problem` hold the parts.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f"path {str(path)!r}: {problem}")
        self.path = Path(path)
        self.problem = problem


class LegacyResultWarning(UserWarning):
    """A format-1 file (no format version, no checksum) was loaded without verification."""


class CacheEntryWarning(UserWarning):
    """A cache entry was unusable (corrupt, unverifiable or inconsistent) and is recomputed."""


# -- writing --------------------------------------------------------------------------------------
def _digest(kind: str, config_json: str, arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for part in (f"gtv-result/{FORMAT_VERSION}", kind, config_json):
        b = part.encode()
        h.update(len(b).to_bytes(8, "little") + b)
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        meta = json.dumps([name, a.dtype.str, list(a.shape)]).encode()
        h.update(len(meta).to_bytes(8, "little") + meta)
        h.update(a.reshape(-1).view(np.uint8).data)
    return h.hexdigest()


def _fsync_dir(folder: Path) -> None:
    # Make the rename itself durable (POSIX); not available everywhere, hence best effort.
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def save_result(
    path: str | Path, arrays: dict[str, np.ndarray], config: dict, kind: str | None = None
) -> Path:
    """Write ``arrays`` and the JSON-serializable ``config`` to ``path`` (``.npz`` is appended).

    The write is atomic (temporary file in the same folder, ``fsync``, rename): an existing file
    at ``path`` is replaced only by a complete one.

    Parameters
    ----------
    path : path
    arrays : dict of name -> array
        Plain (non-object) arrays; names ``__config__`` and ``__gtv__`` are reserved.
    config : dict
        JSON-serializable configuration.
    kind : str, optional
        The kind of result recorded in the header (what :func:`load_result_of_kind` checks);
        default ``config["kind"]``.

    Raises
    ------
    ValueError
        If no kind is given, an array name is reserved or an array has dtype ``object``.
    TypeError
        If ``config`` is not a JSON-serializable dict.
    """
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict, got {type(config).__name__}")
    if kind is None:
        kind = config.get("kind")
    if not isinstance(kind, str) or not kind:
        raise ValueError(
            "kind: every result file records its kind; pass kind=... or put a non-empty string "
            f"under config['kind'] (got {kind!r})"
        )
    out = {}
    for name, arr in arrays.items():
        if name in _RESERVED:
            raise ValueError(f"arrays may not contain the reserved key {name!r}")
        a = np.asarray(arr)
        if a.dtype == object:
            raise ValueError(f"arrays[{name!r}] has dtype object, which cannot be saved safely")
        out[name] = a
    config_json = json.dumps(config, sort_keys=True)
    header = {"format": FORMAT_VERSION, "kind": kind, "sha256": _digest(kind, config_json, out)}
    out[_CONFIG_KEY] = np.array(config_json)
    out[_HEADER_KEY] = np.array(json.dumps(header, sort_keys=True))
    with atomic_write(path) as f:
        with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
            for name, a in out.items():
                with zf.open(name + ".npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, a, allow_pickle=False)
    return path


@contextlib.contextmanager
def atomic_write(path: str | Path) -> Iterator:
    """A binary file that becomes ``path`` only when the block ends without an exception.

    The data go to ``.<name>.tmp-<pid>-<random>`` in the same folder (created if needed), are
    flushed to disk (``fsync``) and renamed onto ``path``; any exception (also
    ``KeyboardInterrupt``) removes the temporary file and leaves ``path`` as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        with open(tmp, "xb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


# -- reading --------------------------------------------------------------------------------------
def _read(path: Path) -> tuple[dict[str, np.ndarray], dict, dict | None]:
    """Arrays, configuration and header (None for a format-1 file); checks all but the kind."""
    with open(path, "rb") as fh:  # read whole, so no handle stays open on a corrupt file
        blob = io.BytesIO(fh.read())
    try:
        data = np.load(blob, allow_pickle=False)
    except _NOT_CORRUPT:
        raise
    except _CORRUPT as exc:
        # numpy treats an unrecognized file as a pickle (refused): say what it is instead
        why = "not an .npz archive" if "pickle" in str(exc) else str(exc)
        raise ResultFileError(path, f"corrupt or truncated file ({why})") from exc
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ResultFileError(path, "not an .npz result archive")
    try:
        with data:
            files = list(data.files)
            if _CONFIG_KEY not in files:
                raise ResultFileError(path, "not a gtv result file (no configuration)")
            raw = {k: data[k] for k in files}
    except ResultFileError:
        raise
    except _NOT_CORRUPT:
        raise
    except _CORRUPT as exc:
        if "allow_pickle" in str(exc):
            raise ResultFileError(path, "holds a pickled (object) array, never loaded") from exc
        raise ResultFileError(path, f"corrupt or truncated file ({exc})") from exc
    config_text = _text(raw.pop(_CONFIG_KEY), path, "configuration")
    try:
        config = json.loads(config_text)
    except ValueError as exc:
        raise ResultFileError(path, f"the configuration is not valid JSON ({exc})") from exc
    if not isinstance(config, dict):
        raise ResultFileError(path, "the configuration is not a JSON object")
    if _HEADER_KEY not in raw:
        return raw, config, None
    try:
        header = json.loads(_text(raw.pop(_HEADER_KEY), path, "header"))
    except ValueError as exc:
        raise ResultFileError(path, f"the header is not valid JSON ({exc})") from exc
    if not (
        isinstance(header, dict)
        and type(header.get("format")) is int
        and isinstance(header.get("kind"), str)
        and isinstance(header.get("sha256"), str)
    ):
        raise ResultFileError(path, "malformed header (needs format, kind and sha256)")
    if header["format"] != FORMAT_VERSION:
        raise ResultFileError(
            path,
            f"format version {header['format']} is not readable by this gtv "
            f"(it reads version {FORMAT_VERSION})",
        )
    if _digest(header["kind"], config_text, raw) != header["sha256"]:
        raise ResultFileError(
            path, "array data do not match the checksum (file altered or damaged)"
        )
    return raw, config, header


def _text(arr: np.ndarray, path: Path, what: str) -> str:
    if arr.ndim != 0 or arr.dtype.kind != "U":
        raise ResultFileError(path, f"the {what} entry is not a text string")
    return str(arr)


def _legacy(path: Path) -> None:
    warnings.warn(
        f"path {str(path)!r}: written before result files carried a format version and a "
        "checksum (format 1); loaded without verification (save it again to add them)",
        LegacyResultWarning,
        stacklevel=3,
    )


def load_result(path: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    """Read and verify a file written by :func:`save_result`; returns ``(arrays, config)``.

    A format-1 file (no header) loads with a :class:`LegacyResultWarning`.

    Raises
    ------
    ResultFileError
        A ``ValueError``: a corrupt or truncated archive, a configuration or header that does not
        decode, an unknown format version or a checksum mismatch.
    FileNotFoundError
        If there is no file at ``path``.
    """
    path = Path(path)
    arrays, config, header = _read(path)
    if header is None:
        _legacy(path)
    return arrays, config


def load_result_of_kind(
    path: str | Path,
    kind: str,
    description: str,
    legacy: Callable[[dict], bool] | None = None,
) -> tuple[dict, dict]:
    """:func:`load_result` for a file of kind ``kind`` (the header's, see :func:`save_result`).

    Parameters
    ----------
    kind : str
    description : str
        Names the expected object in the error, e.g. ``"an NTKTheory"``.
    legacy : callable, optional
        For a format-1 file (no header): ``legacy(config)`` says whether its configuration is one
        of this kind; default ``config.get("kind") == kind``. Such a file loads with a
        :class:`LegacyResultWarning`.

    Raises
    ------
    ResultFileError
        When the file holds another kind of result ("path ...: not {description} file (its
        kind is ...)"), and for every failure of :func:`load_result`.
    """
    path = Path(path)
    arrays, config, header = _read(path)
    if header is None:
        ok = legacy(config) if legacy is not None else config.get("kind") == kind
        if not ok:
            raise ResultFileError(
                path, f"not {description} file (a format-1 file of another kind or none)"
            )
        _legacy(path)
    elif header["kind"] != kind:
        raise ResultFileError(
            path, f"not {description} file (its kind is {header['kind']!r}, expected {kind!r})"
        )
    return arrays, config


@contextlib.contextmanager
def result_file(path: str | Path, description: str) -> Iterator[None]:
    """Context for building an object from a loaded file: a ``KeyError``, ``TypeError``,
    ``IndexError`` or ``ValueError`` raised inside (a missing entry, a wrong shape, a value out of
    range) becomes one :class:`ResultFileError` naming ``path``."""
    try:
        yield
    except ResultFileError:
        raise
    except KeyError as exc:
        raise ResultFileError(path, f"not a valid {description} file (missing {exc})") from exc
    except (TypeError, IndexError, ValueError) as exc:
        raise ResultFileError(path, f"not a valid {description} file: {exc}") from exc


def require_finite(arrays: dict[str, np.ndarray], *names: str) -> None:
    """``ValueError`` naming the first of ``arrays[names]`` with a NaN or infinite entry (numeric
    arrays only; use inside :func:`result_file`)."""
    for name in names:
        a = arrays.get(name)
        if a is None:
            continue
        a = np.asarray(a)
        if a.dtype.kind in "fc" and not np.all(np.isfinite(a)):
            raise ValueError(f"array {name!r} has non-finite entries")


def load_cache_entry(path: str | Path, load: Callable[[Path], T]) -> T | None:
    """``load(path)`` for a cache entry, or ``None`` if it must be recomputed.

    ``None`` without a word when the file does not exist; ``None`` with one
    :class:`CacheEntryWarning` naming the file when it fails verification (corrupt, truncated,
    checksum mismatch, another kind, inconsistent contents: any ``ValueError`` of ``load``) or is
    a format-1 file, which has no checksum and is therefore never trusted as a cache.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", LegacyResultWarning)
            return load(path)
    except (ValueError, LegacyResultWarning, OSError) as exc:
        text = str(exc) if str(path) in str(exc) else f"path {str(path)!r}: {exc}"
        # Attributed to the cache file itself (line 0, no source line): printed as one line
        # "<path>:0: CacheEntryWarning: unusable cache entry, recomputed: ...".
        warnings.warn_explicit(
            f"unusable cache entry, recomputed: {text}",
            CacheEntryWarning,
            filename=str(path),
            lineno=0,
            module="gtv.numerics.io",
        )
        return None
