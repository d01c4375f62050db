"""The package installs under one import name, ``gtv`` (docs/architecture.md).

The wheel is built from this checkout (no network: the build backend must already be installed)
and its top-level names are read from the archive, so the test fails if a folder is mapped to a
top-level name of its own, or a sub-package is missing from ``pyproject.toml``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("theory", "numerics", "validation")


def _source_packages() -> set[str]:
    """Every folder with an ``__init__.py`` below the three top-level folders, as ``gtv.…``."""
    out = set()
    for top in PACKAGES:
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT)
            out.add("gtv." + ".".join(rel.parts))
    return out


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    proc = subprocess.run(
        [*cmd, "-w", str(out), str(ROOT)], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (whl,) = out.glob("*.whl")
    return whl


def test_wheel_has_one_top_level_name(wheel: Path):
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert tops == {"gtv"}, f"top-level names in the wheel: {sorted(tops)}"
    dist = [n for n in names if n.endswith(".dist-info/top_level.txt")]
    if dist:  # setuptools writes it; it must name gtv alone
        with zipfile.ZipFile(wheel) as z:
            assert z.read(dist[0]).decode().split() == ["gtv"]


def test_wheel_has_every_subpackage(wheel: Path):
    with zipfile.ZipFile(wheel) as z:
        inits = {n for n in z.namelist() if n.endswith("/__init__.py")}
    in_wheel = {n[: -len("/__init__.py")].replace("/", ".") for n in inits}
    missing = _source_packages() - in_wheel
    assert not missing, f"sub-packages missing from pyproject's packages list: {sorted(missing)}"
    with zipfile.ZipFile(wheel) as z:
        generated = [n for n in z.namelist() if n.startswith("gtv/numerics/_generated/")]
    assert any(n.endswith("schedules.py") for n in generated)


def test_distribution_name_and_console_script():
    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^name = "gtv-diffusion"$', text, re.M)
    assert 'gtv = "gtv.validation.cli:run"' in text


_TRACKED = subprocess.run(
    ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=False
).stdout.split()


def _text_files() -> list[Path]:
    keep = (".py", ".ipynb", ".md", ".toml", ".txt", ".cfg", ".rst", ".yml", ".yaml")
    files = {ROOT / f for f in _TRACKED if f.endswith(keep)}
    files |= {p for p in ROOT.glob("docs/**/*") if p.suffix in keep and "_build" not in p.parts}
    return sorted(p for p in files if p.is_file())


def test_no_import_of_the_old_top_level_names():
    bad = re.compile(r"^\s*(?:from|import)\s+(?:theory|numerics|validation)\b", re.M)
    hits = []
    for p in _text_files():
        if p.suffix not in (".py", ".ipynb", ".md"):
            continue
        for m in bad.finditer(p.read_text(errors="replace")):
            hits.append(f"{p.relative_to(ROOT)}: {m.group(0).strip()}")
    # notebooks store code as JSON strings: check those lines too
    nb = re.compile(r'"\s*(?:from|import)\s+(?:theory|numerics|validation)\b')
    for p in ROOT.glob("notebooks/*.ipynb"):
        hits += [f"{p.name}: {m.group(0)}" for m in nb.finditer(p.read_text())]
    assert not hits, "imports of the old top-level packages:\n" + "\n".join(hits)


def test_nothing_points_outside_the_repository():
    bad = re.compile(r"\.\./shared|DESIGN\.md|\bDESIGN §")
    hits = [
        str(p.relative_to(ROOT))
        for p in _text_files()
        if p.name != "test_packaging.py" and bad.search(p.read_text(errors="replace"))
    ]
    assert not hits, f"files that cite a path outside the repository: {hits}"
