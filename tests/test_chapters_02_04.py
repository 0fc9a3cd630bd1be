"""Chapters 02-04 run top to bottom under papermill with the smoke profile and show figures."""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import papermill
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ("02_fast_weights_equation", "03_training", "04_bag_of_tricks")


def _outputs(notebook) -> list[dict]:
    return [output for cell in notebook.cells if cell.cell_type == "code"
            for output in cell.get("outputs", [])]


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_runs_under_papermill_smoke(chapter, tmp_path):
    source = ROOT / "notebooks" / f"{chapter}.py"
    notebook = jupytext.read(source)
    tagged = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    assert notebook.cells[0].cell_type == "markdown"
    assert notebook.cells[0].source.lstrip().startswith("# ")
    unexecuted = tmp_path / f"{chapter}.ipynb"
    executed = tmp_path / f"{chapter}_out.ipynb"
    nbformat.write(notebook, unexecuted)
    papermill.execute_notebook(str(unexecuted), str(executed), parameters={"profile": "smoke"},
                               cwd=str(ROOT / "notebooks"), progress_bar=False,
                               kernel_name="python3")
    result = nbformat.read(executed, as_version=4)
    outputs = _outputs(result)
    assert not [o for o in outputs if o.get("output_type") == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert images, f"{chapter} shows no image/png figure"
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "profile='smoke'" in text, "the chapter prints the profile it ran with"
