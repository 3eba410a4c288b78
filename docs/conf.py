"""Sphinx configuration: the API reference from tarry's numpydoc docstrings.

Built by ``./dev docs`` (HTML in docs/_build/html) and checked by
``./dev test``, where any warning fails the build.
"""

from __future__ import annotations

import tarry

project = "tarry"
author = "tarry developers"
copyright = "2026, tarry developers"  # noqa: A001 - the name Sphinx reads
release = tarry.__version__
version = release

extensions = ["sphinx.ext.autodoc", "numpydoc", "myst_parser"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
# the signatures carry the types; the parameter lists say what the values mean
autodoc_typehints = "signature"
autodoc_member_order = "bysource"
# numpydoc lists each class's members itself; autodoc's :members: does it once
numpydoc_show_class_members = False
# "Examples" sections are doctests, run by pytest (--doctest-modules)
numpydoc_use_plots = False
myst_heading_anchors = 3
html_theme = "alabaster"
html_title = f"tarry {release}"
