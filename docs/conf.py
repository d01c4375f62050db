"""Sphinx configuration of the gtv documentation.

Build (from the repository root; warnings are errors):

    python -m sphinx -W --keep-going -b html docs docs/_build/html

The API reference is written from the installed package at every build (``_ext/gtv_apidoc.py``);
the notebooks are rendered with the outputs stored in them (never executed here).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "_ext"))

project = "gtv"
author = "the gtv authors"
copyright = "gtv authors"  # noqa: A001 (Sphinx's name)

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "gtv_apidoc",
]

exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "notebooks/.ipynb_checkpoints"]
templates_path: list[str] = []

# --- MyST: Markdown pages and notebooks --------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = "off"  # render the outputs stored in notebooks/*.ipynb; never execute
nb_merge_streams = True

# --- API reference from the numpy-style docstrings ---------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autodoc_default_options = {"exclude-members": "__init__, __new__"}
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_ivar = True
napoleon_use_rtype = False
python_use_unqualified_type_names = True
# Shapes in numpy-style types, e.g. "ndarray (T, M, dim)", become cross-references word by word;
# a word such as "dim" matches several attributes and Sphinx would warn that the reference is
# ambiguous. Those warnings say nothing about the docs, so they are not errors here.
suppress_warnings = ["ref.python"]

# --- HTML ---------------------------------------------------------------------------------------
html_theme = "furo"
html_title = "gtv"
html_static_path: list[str] = []
