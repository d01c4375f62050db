"""Lazy re-exports for the public ``__init__`` of a heavy subpackage (PEP 562).

``gtv`` (the command) builds every subcommand's parser at start-up, which imports each
subpackage's ``__init__``; a subpackage that re-exports its modules eagerly would load SciPy, the
theories and their compiled kernels for every command. With :func:`lazy_exports` the names stay
importable as before (``from gtv.validation.linear import compare_linear``) but each module is
loaded on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_exports(
    package: str, namespace: dict, exports: dict[str, str]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for the package ``package`` whose module globals are
    ``namespace``: ``exports`` maps each public name to the submodule (relative to the package,
    e.g. ``".compare"``) defining it; a name is imported on first access and then cached in
    ``namespace``."""

    def __getattr__(name: str) -> object:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
