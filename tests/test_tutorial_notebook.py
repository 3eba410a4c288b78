"""examples/tutorial.ipynb, executed top to bottom with a real Jupyter kernel."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("pandas")

NOTEBOOK = Path(__file__).parent.parent / "examples" / "tutorial.ipynb"


@pytest.mark.notebook
def test_tutorial_notebook_runs_top_to_bottom(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TARRY_TUTORIAL_SLEEP", "0.05")
    monkeypatch.setenv("TARRY_TUTORIAL_ROWS", "1000")
    notebook: Any = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert "z = 5" in text
    assert "same result" in text
    assert "critical path" in text
    images = [o for o in outputs if "data" in o and ({"image/png", "image/svg+xml"} & set(o.data))]
    assert len(images) >= 4  # the task graphs and the timeline
    assert os.path.exists(tmp_path / "data" / "nycflights" / "1999.csv")
