"""Chapters 06-07 run top to bottom under papermill with the smoke profile and show figures."""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import papermill
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = {"06_what_memory_attends_to": 4, "07_linear_attention": 2}  # chapter -> min. figures


def _outputs(notebook) -> list[dict]:
    return [output for cell in notebook.cells if cell.cell_type == "code"
            for output in cell.get("outputs", [])]


@pytest.mark.parametrize("chapter", sorted(CHAPTERS))
def test_chapter_runs_under_papermill_smoke(chapter, tmp_path):
    notebook = jupytext.read(ROOT / "notebooks" / f"{chapter}.py")
    tagged = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    for name in ("profile", "seed", "device"):
        assert f"{name} = " in tagged[0].source
    assert notebook.cells[0].cell_type == "markdown"
    assert notebook.cells[0].source.lstrip().startswith("# ")
    unexecuted = tmp_path / f"{chapter}.ipynb"
    executed = tmp_path / f"{chapter}_out.ipynb"
    nbformat.write(notebook, unexecuted)
    papermill.execute_notebook(str(unexecuted), str(executed),
                               parameters={"profile": "smoke", "device": "cpu"},
                               cwd=str(ROOT / "notebooks"), progress_bar=False,
                               kernel_name="python3")
    outputs = _outputs(nbformat.read(executed, as_version=4))
    assert not [o for o in outputs if o.get("output_type") == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= CHAPTERS[chapter], f"{chapter} shows {len(images)} image/png figures"
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "profile='smoke'" in text, "the chapter prints the profile it ran with"
