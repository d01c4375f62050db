"""Write the API reference pages from the installed package, at every build.

The reference follows the package: on ``builder-inited`` this extension walks ``gtv.theory``,
``gtv.numerics`` and ``gtv.validation`` with :mod:`pkgutil`, writes one page per public module
into ``docs/api/generated/`` (ignored by git) and deletes the pages of modules that no longer
exist. Nothing here names a module of gtv, so moving or splitting modules needs no change.

Rules (each object is documented once, at the public name closest to where it is defined):

* a module is public if no component of its dotted name starts with ``_``
  (``gtv.numerics._generated`` is therefore left out);
* a module's page documents the functions, classes and upper-case constants *defined* in it
  (``obj.__module__`` is the module; constants: assigned at the module's top level), limited to
  ``__all__`` when the module has one;
* names in ``__all__`` that are defined in a *private* module (``pkg/_impl.py`` re-exported by
  ``pkg/__init__.py``) are documented on the re-exporting page;
* names in ``__all__`` that are defined in another public module are listed in a summary table
  that links to their own page.

Packages form the toctree (the sidebar); plain modules are reached from their package's table
and are marked ``:orphan:``, which keeps the navigation short and the build fast.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

from sphinx.util import logging

LOGGER = logging.getLogger(__name__)

PACKAGES = ("gtv.theory", "gtv.numerics", "gtv.validation")
OUT = Path(__file__).resolve().parents[1] / "api" / "generated"


def _is_public(modname: str) -> bool:
    return not any(part.startswith("_") for part in modname.split("."))


def public_modules(package: str) -> list[str]:
    """``package`` and every public module below it that imports, sorted.

    A module that fails to import is reported as a Sphinx warning (an error under ``-W``) and
    left out, so one broken module does not hide the rest of the reference.
    """
    try:
        pkg = importlib.import_module(package)
    except Exception as exc:  # noqa: BLE001 (any import error is reported, not raised)
        LOGGER.warning("gtv_apidoc: cannot import %s: %r", package, exc)
        return []
    names = [package]
    for info in pkgutil.walk_packages(pkg.__path__, package + ".", onerror=_report):
        if not _is_public(info.name):
            continue
        try:
            importlib.import_module(info.name)
        except Exception as exc:  # noqa: BLE001
            LOGGER.warning("gtv_apidoc: cannot import %s: %r", info.name, exc)
            continue
        names.append(info.name)
    return sorted(names)


def _report(name: str) -> None:
    LOGGER.warning("gtv_apidoc: cannot import %s", name)


def _children(modname: str, modules: list[str]) -> list[str]:
    depth = modname.count(".") + 1
    return [m for m in modules if m.startswith(modname + ".") and m.count(".") == depth]


def _top_level_assignments(module) -> dict[str, bool]:
    """Names assigned at the module's top level -> whether the source documents them.

    Documented means a ``#:`` comment right above the assignment or a string literal right
    after it (what autodoc reads); otherwise autodoc would show the docstring of the value's
    *type* (``dict``, ``ndarray``, sympy's ``Symbol``), so such names get no docstring.
    """
    try:
        source = Path(module.__file__).read_text()
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError):
        return {}
    lines = source.splitlines()
    out: dict[str, bool] = {}
    for k, node in enumerate(tree.body):
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        else:
            continue
        above = lines[node.lineno - 2].lstrip() if node.lineno >= 2 else ""
        after = tree.body[k + 1] if k + 1 < len(tree.body) else None
        documented = above.startswith("#:") or (
            isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        )
        for t in targets:
            if isinstance(t, ast.Name):
                out[t.id] = documented
    return out


def _kind(obj) -> str | None:
    if inspect.isclass(obj):
        return "class"
    if inspect.isfunction(obj) or hasattr(obj, "py_func"):  # numba dispatchers carry py_func
        return "function"
    if inspect.ismodule(obj) or callable(obj):
        return None
    return "data"


def classify(modname: str) -> tuple[list[tuple[str, str]], list[str]]:
    """``(documented here: [(kind, name)], re-exported from public modules: [full names])``."""
    module = importlib.import_module(modname)
    explicit = getattr(module, "__all__", None)
    names = list(explicit) if explicit is not None else sorted(vars(module))
    assigned = _top_level_assignments(module)
    here: list[tuple[str, str]] = []
    elsewhere: list[str] = []
    for name in names:
        if name.startswith("_") or not hasattr(module, name):
            continue
        obj = getattr(module, name)
        kind = _kind(obj)
        if kind is None:
            continue
        if kind == "data":
            if name in assigned and (explicit is not None or name.isupper()):
                here.append(("data" if assigned[name] else "bare-data", name))
            continue
        home = getattr(obj, "__module__", None) or ""
        if home == modname:
            here.append((kind, name))
        elif explicit is not None and home.startswith("gtv."):
            if _is_public(home):
                elsewhere.append(f"{home}.{getattr(obj, '__qualname__', name)}")
            else:
                here.append((kind, name))
    return here, elsewhere


def _heading(text: str, char: str) -> str:
    return f"{text}\n{char * len(text)}\n"


_LITERAL = "``"


def summary(obj) -> str:
    """First sentence of ``obj``'s docstring, made safe to place in a table cell.

    The cut never falls inside a ````literal````; characters that would start unfinished inline
    markup in the cut text (``*``, ``|``, a trailing ``_``, unpaired backquotes) are escaped.
    """
    doc = inspect.getdoc(obj) if not isinstance(obj, str) else obj
    if not doc:
        return ""
    para = " ".join(doc.strip().split("\n\n", 1)[0].split())
    parts = para.split(_LITERAL)
    out: list[str] = []
    for k, part in enumerate(parts):
        if k % 2 == 1:  # inside a literal
            if k == len(parts) - 1:  # unclosed: drop it
                break
            out.append(_LITERAL + part + _LITERAL)
            continue
        cut = re.search(r"\.(\s|$)", part)
        text = part[: cut.start() + 1] if cut else part
        out.append(_escape(text))
        if cut:
            break
    return "".join(out).strip()


def _escape(text: str) -> str:
    text = text.replace("\\", "\\\\").replace("*", "\\*").replace("|", "\\|")
    text = re.sub(r"(\w)_(?=\W|$)", r"\1\\_", text)
    if text.count("`") % 2:
        text = text.replace("`", "'")
    return text


def _table(rows: list[tuple[str, str]]) -> list[str]:
    lines = [".. list-table::", "   :widths: 35 65", ""]
    for ref, text in rows:
        lines += [f"   * - {ref}", f"     - {text}" if text else "     -"]
    return lines + [""]


def module_page(modname: str, modules: list[str]) -> str:
    module = importlib.import_module(modname)
    here, elsewhere = classify(modname)
    lines = [] if hasattr(module, "__path__") else [":orphan:", ""]
    lines += [_heading(f"``{modname}``", "="), f".. automodule:: {modname}", "   :no-members:", ""]
    children = _children(modname, modules)
    if children:
        lines += [_heading("Modules", "-")]
        rows = [(f":py:mod:`~{c}`", summary(importlib.import_module(c))) for c in children]
        lines += _table(rows)
        packages = [c for c in children if hasattr(importlib.import_module(c), "__path__")]
        if packages:
            lines += [".. toctree::", "   :hidden:", ""]
            lines += [f"   {c}" for c in packages]
            lines.append("")
    if elsewhere:
        lines += [_heading("Re-exported", "-")]
        rows = []
        for full in elsewhere:
            home, _, qual = full.rpartition(".")
            obj = getattr(importlib.import_module(home), qual, None)
            role = "class" if inspect.isclass(obj) else "func"
            rows.append((f":py:{role}:`{qual} <{full}>`", summary(obj) if obj else ""))
        lines += _table(rows)
    if here:
        lines += [_heading("Contents", "-")]
        rows = []
        for kind, name in here:
            obj = getattr(module, name)
            role = {"class": "class", "function": "func"}.get(kind, "data")
            text = summary(obj) if kind in ("class", "function") else ""
            rows.append((f":py:{role}:`~{modname}.{name}`", text))
        lines += _table(rows)
        for kind, name in here:
            if kind == "class":
                lines += [
                    f".. autoclass:: {modname}.{name}",
                    "   :members:",
                    "   :show-inheritance:",
                    "",
                ]
            elif kind == "function":
                lines += [f".. autofunction:: {modname}.{name}", ""]
            elif kind == "data":
                lines += [f".. autodata:: {modname}.{name}", "   :no-value:", ""]
            else:
                lines += [f".. py:data:: {name}", f"   :module: {modname}", ""]
    return "\n".join(lines)


def write_pages(out: Path = OUT) -> list[str]:
    """Write (only changed) pages, delete stale ones; return the top-level page names."""
    out.mkdir(parents=True, exist_ok=True)
    wanted: dict[str, str] = {}
    for package in PACKAGES:
        modules = public_modules(package)
        for modname in modules:
            wanted[f"{modname}.rst"] = module_page(modname, modules)
    for old in out.glob("*.rst"):
        if old.name not in wanted:
            old.unlink()
    for fname, text in wanted.items():
        path = out / fname
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    return list(PACKAGES)


def _on_builder_inited(app) -> None:
    write_pages()


def setup(app):
    app.connect("builder-inited", _on_builder_inited)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
