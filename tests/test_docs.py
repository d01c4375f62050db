"""The documentation in docs/ builds with warnings as errors and cites only things that exist.

* The Sphinx build (the command of docs/development.md) runs into a temporary folder with ``-W``:
  any broken docstring, cross-reference, notebook or Markdown page fails it.
* Every notebook in notebooks/ is in the docs toctree and is stored with its outputs (the build
  renders them without executing anything).
* Every ``gtv.…`` name, ``from gtv… import …`` line and repository path cited in the Markdown
  pages, the READMEs and the notebooks' prose exists, so they cannot silently go stale when
  modules or tests move.
* Every subpackage is described in docs/architecture.md, and every docs page cited by a docstring
  exists.
"""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
LAYERS = ("theory", "numerics", "validation")


def _pages() -> list[Path]:
    """The hand-written Markdown pages (not the generated API pages, not the notebooks link)."""
    skip = ("_build", "generated", "notebooks")
    return sorted(
        p for p in DOCS.rglob("*.md") if not any(s in p.relative_to(DOCS).parts for s in skip)
    )


def test_docs_build_without_warnings(tmp_path: Path):
    for mod in ("sphinx", "myst_nb", "furo"):
        pytest.importorskip(mod)
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"]
    cmd += ["-d", str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html")]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"sphinx failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    html = tmp_path / "html"
    for nb in NOTEBOOKS:
        assert (html / "notebooks" / f"{nb.stem}.html").is_file(), f"{nb.name} not rendered"
    for layer in LAYERS:
        assert (html / "api" / "generated" / f"gtv.{layer}.html").is_file()


def _toctree_entries(page: Path) -> list[str]:
    blocks = re.findall(r"```\{toctree\}\n(.*?)```", page.read_text(), re.S)
    return [
        line.strip()
        for block in blocks
        for line in block.splitlines()
        if line.strip() and not line.strip().startswith(":")
    ]


def test_every_notebook_is_in_the_docs_toctree():
    assert NOTEBOOKS, "no notebooks found"
    entries = set(_toctree_entries(DOCS / "notebooks.md"))
    missing = [nb.name for nb in NOTEBOOKS if f"notebooks/{nb.stem}" not in entries]
    assert not missing, f"notebooks missing from docs/notebooks.md's toctree: {missing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_stored_with_outputs(path: Path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    unexecuted = [i for i, c in enumerate(code) if c.get("execution_count") is None]
    assert not unexecuted, (
        f"{path.name}: code cells {unexecuted} have no stored execution; refresh the outputs "
        "with `jupyter execute --inplace --timeout=-1 notebooks/*.ipynb` (docs/development.md)"
    )
    outputs = [o for c in code for o in c.get("outputs", [])]
    assert outputs, f"{path.name} has no stored outputs"
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors, f"{path.name} stores error outputs"


def _resolve(dotted: str) -> bool:
    """Whether ``dotted`` is an importable module or an attribute path below one."""
    parts = dotted.split(".")
    for k in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ImportError:
            continue
        for name in parts[k:]:
            if not hasattr(obj, name):
                return False
            obj = getattr(obj, name)
        return True
    return False


def _cited_texts() -> list[tuple[str, str]]:
    """(label, text) of everything a reader follows: docs pages, READMEs, notebooks' prose."""
    out = [(str(p.relative_to(ROOT)), p.read_text()) for p in _pages()]
    for p in (ROOT / "README.md", ROOT / "benchmarks" / "README.md"):
        if p.is_file():
            out.append((str(p.relative_to(ROOT)), p.read_text()))
    for nb in NOTEBOOKS:
        cells = json.loads(nb.read_text())["cells"]
        prose = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        out.append((f"{nb.relative_to(ROOT)} (markdown)", prose))
    return out


def test_cited_gtv_names_exist():
    bad = []
    for label, text in _cited_texts():
        for name in sorted(set(re.findall(r"\bgtv(?:\.\w+)+", text))):
            if not _resolve(name):
                bad.append(f"{label}: {name}")
        for mod, names in re.findall(r"^\s*from (gtv[\w.]*) import \(?([^)\n]*)", text, re.M):
            for name in (n.strip() for n in names.split(",")):
                if name and not _resolve(f"{mod}.{name.split(' as ')[0]}"):
                    bad.append(f"{label}: from {mod} import {name}")
    assert not bad, "cited in the docs, READMEs or notebooks, but missing:\n" + "\n".join(bad)


_PATH = re.compile(
    r"(?<![\w/.-])((?:tests|notebooks|numerics|theory|validation|benchmarks|docs)/[\w./*-]*\w)"
)


def test_cited_repository_paths_exist():
    bad = []
    for label, text in _cited_texts():
        for rel in sorted(set(_PATH.findall(text))):
            if rel.startswith(("docs/_build", "docs/api/generated")):
                continue  # build outputs
            if not list(ROOT.glob(rel)) and not list(ROOT.glob(rel + ".*")):  # toctree: no suffix
                bad.append(f"{label}: {rel}")
    assert not bad, "paths cited in the docs, READMEs or notebooks, but missing:\n" + "\n".join(bad)


def test_architecture_describes_every_subpackage():
    text = (DOCS / "architecture.md").read_text()
    missing = []
    for layer in LAYERS:
        for init in sorted((ROOT / layer).rglob("__init__.py")):
            parts = init.parent.relative_to(ROOT).parts
            if any(p.startswith("_") for p in parts):
                continue
            name = "gtv." + ".".join(parts)
            if f"`{name}`" not in text:
                missing.append(name)
    assert not missing, f"subpackages not described in docs/architecture.md: {missing}"


def test_docs_pages_cited_by_the_code_exist():
    cited = set()
    for layer in (*LAYERS, "tests", "notebooks", "benchmarks"):
        for p in (ROOT / layer).rglob("*"):
            if p.suffix in (".py", ".ipynb", ".md") and "_build" not in p.parts:
                cited |= set(re.findall(r"docs/[\w/.-]*\w\.md", p.read_text(errors="replace")))
    cited |= set(re.findall(r"docs/[\w/.-]*\w\.md", (ROOT / "README.md").read_text()))
    missing = sorted(c for c in cited if not (ROOT / c).is_file())
    assert not missing, f"docs pages cited in the repository but missing: {missing}"
