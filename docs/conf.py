"""Sphinx configuration of the documentation site (docs/): MyST for the Markdown pages as they are, autodoc and
napoleon for the API reference from the docstrings, and the local check that every public name is documented
(docs/_ext/public_api.py). Build: ``python -m sphinx -W --keep-going -n docs docs/_build/html`` in a test line's
venv (the docs extra, and torch and dask, whose faces autodoc imports; tests/test_docs_site.py runs it). Nothing
is fetched at build time: references to other libraries are not linked."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE / "_ext"), str(HERE.parent)]

import cupy_fused  # noqa: E402 - from this checkout, after the path is set

project = "cupy_fused"
author = "the cupy_fused authors"
release = version = cupy_fused.__version__
extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "public_api"]
root_doc = "index"
exclude_patterns = ["_build", "_ext"]
myst_heading_anchors = 3
suppress_warnings: list[str] = []

html_theme = "furo"
html_title = f"cupy_fused {release}"
html_static_path: list[str] = []

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_preserve_defaults = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# -n (nitpicky): every cross-reference must resolve, except to the libraries the package works with, whose
# inventories are not fetched (no network at build time).
nitpick_ignore_regex = [
    (r"py:.*", r"(numpy|np|npt|torch|dist|cupy|dask|da|jax|typing_extensions)(\..+)?"),  # dist: torch.distributed
    (r"py:class", r"(Tensor|ArrayLike|DTypeLike|Generator|ProcessGroup|Module)"),
]
