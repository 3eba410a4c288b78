"""Pictures of task graphs: the public names, and how the ``tarry._tools.visualize`` parts fit.

The parts have their own files: ``test_visualize_labels.py`` (task labels),
``test_visualize_collapse.py``, ``test_visualize_color.py``,
``test_visualize_dot.py``, ``test_visualize_rendering.py`` (Graphviz and
``visualize``'s files) and ``test_visualize_jupyter.py`` (the HTML repr);
the record of the last run is in ``test_last_run.py``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import tarry
from tarry import to_dot, visualize
from tarry._tools import visualize as viz


def test_public_names() -> None:
    assert tarry.visualize is visualize
    assert tarry.to_dot is to_dot
    assert {"visualize", "to_dot"} <= set(tarry.__all__)


def test_import_tarry_does_not_import_graphviz_or_ipython() -> None:
    code = "import sys, tarry; print(sorted({'graphviz', 'IPython'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, text=True)
    assert done.stdout.strip() == "[]"


def test_the_package_keeps_its_import_paths() -> None:
    # names from the days of one visualize.py module, now in their own modules
    from tarry._tools.visualize import (
        GraphvizNotFoundError,
        Picture,
        draw,
        html_repr,
        jupyter,
        render,
        rendering,
    )

    assert (Picture, html_repr) == (jupyter.Picture, jupyter.html_repr)
    assert (GraphvizNotFoundError, render) == (rendering.GraphvizNotFoundError, rendering.render)
    assert viz.visualize is draw.visualize is visualize
    assert viz.to_dot is to_dot
    assert {"FORMATS", "COLLAPSE_ABOVE", "render", "to_dot", "visualize"} <= set(viz.__all__)


def test_no_drawing_module_imports_the_graph_builder() -> None:
    # Labels come from tarry._build.labels; importing tarry._build.delayed
    # (even inside a function) would close the delayed -> visualize -> delayed
    # import cycle again.
    package = Path(viz.__file__).parent
    for path in sorted(package.glob("*.py")):
        imported: set[str] = set()
        for syntax in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(syntax, ast.ImportFrom) and syntax.module:
                imported.add(syntax.module)
            elif isinstance(syntax, ast.Import):
                imported.update(alias.name for alias in syntax.names)
        assert "tarry._build.delayed" not in imported, path.name
