"""Execute one chapter: its ``py:percent`` source in, its executed notebook out.

:func:`execute_chapter` reads ``notebooks/NN_name.py`` (Jupytext), runs it with papermill
(profile, seed and device injected after the cell tagged ``parameters``) through the kernel
client of :mod:`fwbook.cli.book_execute`, and writes ``<output_dir>/notebooks/NN_name.ipynb``
with what it was executed from and with in its metadata (``metadata.fwbook``: parameters,
versions, key, time; :func:`stored_record` reads it back). The kernel's own output goes to
``<output_dir>/logs/NN_name.log``. A failure is one line naming the chapter and the cell.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from fwbook.cli.book_request import DEFAULT_PROFILE, ROOT, BookBuildError, output_path

# Longest a single cell may run, per profile. A kernel that dies or stops answering is caught
# much sooner by the watchdog of fwbook.cli.book_execute; this limit is for runaway computations.
# Smoke cells take seconds and quick cells minutes on 2 CPU cores; paper-profile cells may train.
CELL_TIMEOUT_S = {"smoke": 300, "quick": 1800, "paper": None}



def read_chapter(source: Path):
    """Jupytext ``py:percent`` -> unexecuted notebook (NotebookNode), python3 kernelspec."""
    import jupytext

    notebook = jupytext.read(source, fmt="py:percent")
    notebook.metadata.setdefault("kernelspec", {
        "display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"})
    if not any("parameters" in cell.metadata.get("tags", []) for cell in notebook.cells):
        raise BookBuildError(f"chapter {source.name} has no cell tagged 'parameters' "
                             f"(profile, seed, device); add `# %% tags=[\"parameters\"]`")
    return notebook


def convert_chapter(source: Path, target: Path) -> Path:
    """:func:`read_chapter` written to ``target`` (``.ipynb``)."""
    import nbformat

    nbformat.write(read_chapter(source), target)
    return target


def _kernel_environment() -> dict:
    environment = dict(os.environ)
    # the python3 kernelspec runs `python`: make it this interpreter (the project's venv)
    environment["PATH"] = os.pathsep.join([str(Path(sys.executable).parent),
                                           environment.get("PATH", "")])
    # the kernel must draw figures inline even when the caller set MPLBACKEND=Agg (CI does):
    # with Agg a returned Figure is shown as "<Figure size ...>" text, not as an image
    environment["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    return environment


def _where(source: Path, code: str) -> str:
    """``notebooks/NN_name.py:LINE (first line of the cell)`` for a cell's code."""
    code = (code or "").strip()
    first = code.splitlines()[0][:70] if code else ""
    try:
        text = source.read_text(encoding="utf-8")
    except OSError:
        text = ""
    position = text.find(code) if code else -1
    place = (f"notebooks/{source.name}:{text.count(chr(10), 0, position) + 1}"
             if position >= 0 else "the injected parameters cell"
             if code.startswith("# Parameters") else f"notebooks/{source.name}")
    return f"{place} ({first})" if first else place


def execute_chapter(name: str, profile: str = DEFAULT_PROFILE, seed: int = 0,
                    device: str = "auto", root: Path | str = ROOT,
                    timeout: Optional[int] = None, output_dir: Path | str = "_build",
                    key: Optional[dict] = None, watchdog=None) -> Path:
    """Execute one chapter into ``<output_dir>/notebooks/<name>.ipynb`` (replaced on success).

    The notebook is executed into ``<name>.running.ipynb`` and renamed when every cell has run;
    after a failure it is kept as ``<name>.failed.ipynb`` and an earlier executed notebook is
    left alone. The kernel's own output goes to ``<output_dir>/logs/<name>.log``.

    Args:
        key: the chapter's :func:`fwbook.cli.book_key.chapter_key`, stored in the notebook.
        watchdog: a :class:`fwbook.cli.book_execute.Watchdog` (default limits when None).
    Raises:
        BookBuildError: one line naming the chapter and the cell, when a cell raises, the
            kernel dies or stops answering, or a cell runs past ``timeout`` seconds.
    """
    import logging

    import papermill

    from fwbook.cli import book_execute

    root = Path(root).resolve()
    source = root / "notebooks" / f"{name}.py"
    folder = output_path(root, output_dir) / "notebooks"
    logs = folder.parent / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.ipynb"
    running, failed = (folder / f"{name}.{suffix}.ipynb" for suffix in ("running", "failed"))
    started = datetime.now(timezone.utc)
    clock = time.perf_counter()
    notebook = read_chapter(source)
    parameters = {"profile": profile, "seed": seed, "device": device}
    if timeout is None:
        timeout = CELL_TIMEOUT_S.get(profile)
    log_path = logs / f"{name}.log"
    papermill_log = logging.getLogger("papermill")
    level = papermill_log.level
    papermill_log.setLevel(logging.CRITICAL)  # the one line below says what went wrong
    failure = None
    try:
        with open(log_path, "w", encoding="utf-8") as kernel_log:
            book_execute.execute_notebook(
                notebook, running, parameters, cwd=root, env=_kernel_environment(),
                timeout=timeout, watchdog=watchdog, kernel_output=kernel_log)
    except papermill.PapermillExecutionError as error:
        failure = (f"cell {error.cell_index} at {_where(source, error.source)} raised "
                   f"{error.ename}: {error.evalue}".replace("\n", " "))
    except book_execute.ChapterCellError as error:
        code = _cell_source(running, error.cell_index)
        failure = f"cell {error.cell_index} at {_where(source, code)}: {error.reason}"
    except Exception as error:  # noqa: BLE001 - the kernel could not start, a bad notebook...
        failure = f"{type(error).__name__}: {error}".replace("\n", " ")
    finally:
        papermill_log.setLevel(level)
    if failure is not None:
        if running.exists():
            os.replace(running, failed)
        raise BookBuildError(
            f"chapter {name} (profile={profile}, seed={seed}, device={device}): {failure}; "
            f"partly executed notebook: {failed}; kernel log: {log_path}")
    _finish_notebook(running, parameters, key=key, started=started,
                     seconds=time.perf_counter() - clock)
    os.replace(running, target)
    failed.unlink(missing_ok=True)
    return target


def _cell_source(path: Path, index: int) -> str:
    try:
        return "".join(json.loads(path.read_text(encoding="utf-8"))["cells"][index]["source"])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return ""


def _versions() -> dict:
    from importlib import metadata
    import platform

    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for package in ("fwbook", "torch", "numpy", "matplotlib", "seaborn", "pandas", "papermill",
                    "jupyter-book"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return versions


def _finish_notebook(path: Path, parameters: dict, key: Optional[dict] = None,
                     started: Optional[datetime] = None, seconds: Optional[float] = None
                     ) -> None:
    """Record parameters, versions, the key and the execution time in the notebook's metadata
    (``fwbook``), and hide the defaults cell in the book: papermill's injected cell shows the
    values used."""
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    recorded = notebook.metadata.get("fwbook", {})
    notebook.metadata["fwbook"] = {
        "parameters": parameters, "versions": _versions(), "key": key,
        "executed_at": (started or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
        "seconds": None if seconds is None else round(seconds, 2),
        "kernel": recorded.get("kernel")}
    injected = any("injected-parameters" in cell.metadata.get("tags", [])
                   for cell in notebook.cells)
    for cell in notebook.cells if injected else []:
        tags = cell.metadata.setdefault("tags", [])
        if "parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
    nbformat.write(notebook, path)


def stored_record(path: Path) -> Optional[dict]:
    """The ``fwbook`` metadata of an executed notebook (None if absent or unreadable)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle).get("metadata", {}).get("fwbook")
    except (OSError, ValueError, AttributeError):
        return None


def chapter_title(path: Path, name: str) -> str:
    """The first ``# `` heading of an executed notebook (``name`` if it has none)."""
    try:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError):
        return name
    for cell in cells:
        if cell.get("cell_type") == "markdown":
            for line in "".join(cell.get("source", "")).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return name
