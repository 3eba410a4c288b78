"""The tutorial's pictures in a real notebook, executed top to bottom by a Jupyter kernel."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

pytestmark = [
    pytest.mark.notebook,
    pytest.mark.graphviz,
    pytest.mark.skipif(
        shutil.which("dot") is None,
        reason="Graphviz's dot program is not installed (apt-get install -y graphviz)",
    ),
]

CELLS = [
    """\
from tarry import delayed

def inc(x):
    return x + 1

def add(x, y):
    return x + y

x = delayed(inc)(1)
y = delayed(inc)(2)
z = delayed(add)(x, y)""",
    "z",
    "z.visualize()",
    "z.visualize(format='svg')",
    """\
results = [delayed(inc)(v) for v in range(1, 9)]
total = sum(results)
print(total.compute())
total.visualize(color='status')""",
]


def outputs_of(cell: Any) -> list[dict[str, Any]]:
    return [o["data"] for o in cell["outputs"] if o["output_type"] == "execute_result"]


def test_tutorial_notebook_shows_the_graph_images(tmp_path: Path) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    # in a folder of its own: visualize() writes mydask.png, as dask does
    where = {"metadata": {"path": str(tmp_path)}}
    client = nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3", resources=where)
    client.execute()
    errors = [o for c in notebook.cells for o in c["outputs"] if o["output_type"] == "error"]
    assert errors == []
    (_, repr_cell, png_cell, svg_cell, status_cell) = notebook.cells

    (rich,) = outputs_of(repr_cell)
    assert "3 tasks" in rich["text/html"]
    assert "<svg" in rich["text/html"]
    assert rich["text/plain"].startswith("Delayed('add-")

    (png,) = outputs_of(png_cell)
    data = base64.b64decode(png["image/png"])
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = png_size(data)
    assert 100 < width < height < 1000  # the tutorial's z is taller than wide

    (svg,) = outputs_of(svg_cell)
    assert "<svg" in svg["image/svg+xml"]
    assert ">inc</text>" in svg["image/svg+xml"]
    assert ">add</text>" in svg["image/svg+xml"]

    assert status_cell["outputs"][0]["text"] == "44\n"
    (status,) = outputs_of(status_cell)
    coloured = base64.b64decode(status["image/png"])
    assert coloured.startswith(b"\x89PNG\r\n\x1a\n")
    assert coloured != data


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's header chunk."""
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
