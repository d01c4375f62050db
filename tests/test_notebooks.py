"""Execute every notebook in notebooks/ on small sizes (docs/architecture.md).

Each notebook reads ``GTV_NOTEBOOK_SMALL=1`` and shrinks its grids; the kernel inherits the
environment of this process, so the variable is set before the kernel starts. A notebook passes if
every cell runs without raising (its own ``assert`` statements included).
"""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
#: Notebooks whose small run takes over a minute on 2 cores: `-m slow` (their code paths have
#: their own default tests; the default run keeps the 10-minute budget, docs/development.md).
SLOW = {
    "02_path_integral_and_linear_theory.ipynb",
    "03_closed_forms.ipynb",
    "04_ntk.ipynb",
    "07_memorization.ipynb",
}
PARAMS = [
    pytest.param(p, id=p.name, marks=[pytest.mark.slow] if p.name in SLOW else [])
    for p in NOTEBOOKS
]


def test_notebooks_exist():
    assert NOTEBOOKS, f"no notebooks found in {NOTEBOOK_DIR}"


@pytest.mark.parametrize("path", PARAMS)
def test_notebook_executes(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GTV_NOTEBOOK_SMALL", "1")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    # Raises CellExecutionError (and so fails the test) as soon as a cell raises.
    client.execute()
    errors = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert not errors, f"{path.name}: cells produced errors: {errors}"
