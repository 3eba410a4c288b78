"""examples/tutorial.ipynb, executed top to bottom with a real Jupyter kernel."""

from __future__ import annotations

import os
import re
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
    # the groupby again with a cache: the second run loads its result, runs none of it
    assert "first run, stores the results" in text
    assert re.search(r"^cache at .*: 1 load, 0 run, 52 skip$", text, re.M)
    assert re.search(r"^cache: 1 hit \(saved .*\), 0 misses stored, 52 skipped$", text, re.M)
    images = [o for o in outputs if "data" in o and ({"image/png", "image/svg+xml"} & set(o.data))]
    assert len(images) >= 4  # the task graphs and the timeline
    (coloured,) = [c for c in notebook.cells if 'color="cache"' in c.source]
    assert any("image/png" in o.get("data", {}) for o in coloured.outputs)
    assert os.path.exists(tmp_path / "data" / "nycflights" / "1999.csv")
