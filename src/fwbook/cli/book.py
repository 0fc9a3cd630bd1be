"""Build the book: execute the chapters that need it, then render with jupyter-book.

The chapters are the Jupytext ``py:percent`` files ``notebooks/NN_name.py`` listed in
``_toc.yml``. A build writes only into its output folder (``_build`` by default, git-ignored)::

    _build/notebooks/NN_name.ipynb   each chapter, executed by papermill (profile, seed and
                                     device injected after the cell tagged ``parameters``),
                                     with its key (what it was executed from) in its metadata
    _build/logs/NN_name.log          the chapter's kernel's own output (crashes land here)
    _build/_config.yml, _toc.yml,    copies of the book's other sources: ``_build`` is the
    _build/book/...                  source folder jupyter-book renders
    _build/book/status.md            the build status page, generated
    _build/html/                     the book: open ``_build/html/index.html``

Steps of :func:`build`:

1. :func:`check_request` rejects bad input (profile, seed, device, chapters, output folder)
   before anything is written or any kernel starts (:class:`BookUsageError`).
2. Each chapter is executed only if its key (:mod:`fwbook.cli.book_key`: its source, the package,
   ``results/``, ``requirements.txt``, profile, seed, device) differs from the key stored in
   its executed notebook, or with ``force``; the log says ``executed (N s)`` or ``up to date``.
   Execution goes through :mod:`fwbook.cli.book_execute`: a kernel that dies or stops answering
   fails the build within two minutes, naming the chapter and the cell.
3. The status page is written (:mod:`fwbook.cli.book_status`) and :func:`render` runs
   ``jupyter-book build -W`` (every Sphinx warning is an error). Jupyter Book itself never
   executes anything (``execute_notebooks: off`` in ``_config.yml``).

Use it from Python (``build(profile="smoke")``) or the command line
(``python -m fwbook book``, see :func:`add_book_arguments` and :func:`run_book`).
The published book is the ``paper`` profile, the default.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional, Sequence

from fwbook.cli import book_config

PROFILES = ("smoke", "quick", "paper")
DEFAULT_PROFILE = "paper"  # the published book: chapters read the committed records
ROOT = Path(__file__).resolve().parents[3]  # the repository root is the book root
CHAPTER_PATTERN = re.compile(r"^notebooks/(\d\d_[A-Za-z0-9_]+)$")
GENERATED_PAGES = ("book/status",)  # listed in _toc.yml, written by the build, never typed
DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
MAX_SEED = 2**32 - 1  # numpy's legacy seeding takes 32 bits
STAGED_MANIFEST = ".fwbook-staged.json"

# Longest a single cell may run, per profile. A kernel that dies or stops answering is caught
# much sooner by the watchdog of fwbook.cli.book_execute; this limit is for runaway computations.
# Smoke cells take seconds and quick cells minutes on 2 CPU cores; paper-profile cells may train.
CELL_TIMEOUT_S = {"smoke": 300, "quick": 1800, "paper": None}


class BookBuildError(RuntimeError):
    """A chapter failed to execute, or jupyter-book failed (warnings count as failures)."""


class BookUsageError(ValueError):
    """Bad input to the build (one line); nothing has been written."""


@dataclass
class BookBuild:
    """What :func:`build` did.

    Attributes:
        html_dir: the rendered book; open ``html_dir / "index.html"``.
        output_dir: the build folder (``_build``).
        chapters: the chapters considered, in order (e.g. ``"01_physiological_motivation"``).
        executed: the chapters this build executed.
        up_to_date: the chapters whose executed notebook was kept (key unchanged).
        chapter_seconds: wall time of each executed chapter.
        render_seconds: wall time of ``jupyter-book build``.
        status_page: the generated status page (in the build folder).
        profile, seed, device: the parameters every chapter ran with.
        missed_wakeups: messages the watchdog found unread in a socket (each cost <= 1 s).
    """

    html_dir: Path
    chapters: list[str]
    output_dir: Path = Path("_build")
    executed: list[str] = field(default_factory=list)
    up_to_date: list[str] = field(default_factory=list)
    chapter_seconds: dict[str, float] = field(default_factory=dict)
    render_seconds: float = 0.0
    status_page: Optional[Path] = None
    profile: str = DEFAULT_PROFILE
    seed: int = 0
    device: str = "auto"
    missed_wakeups: int = 0

    @property
    def notebooks_dir(self) -> Path:
        return self.output_dir / "notebooks"


# --------------------------------------------------------------------------------------------
# the table of contents


def toc_entries(root: Path | str = ROOT) -> list[str]:
    """Every ``file:`` entry of ``_toc.yml``, in order (including the ``root``)."""
    import yaml

    toc = yaml.safe_load((Path(root) / "_toc.yml").read_text(encoding="utf-8"))
    entries = [toc["root"]]

    def walk(items):
        for item in items or []:
            if "file" in item:
                entries.append(item["file"])
            walk(item.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return [str(Path(entry).with_suffix("")) if Path(entry).suffix in (".md", ".ipynb")
            else entry for entry in entries]


def toc_chapters(root: Path | str = ROOT) -> list[str]:
    """The notebook chapters listed in ``_toc.yml``, e.g. ``["01_physiological_motivation"]``."""
    names = []
    for entry in toc_entries(root):
        match = CHAPTER_PATTERN.match(entry)
        if match:
            names.append(match.group(1))
    return names


def _check_sources(root: Path, chapters: Sequence[str]) -> None:
    missing = [f"notebooks/{name}.py" for name in chapters
               if not (root / "notebooks" / f"{name}.py").is_file()]
    pages = [entry for entry in toc_entries(root) if not CHAPTER_PATTERN.match(entry)
             and entry not in GENERATED_PAGES and not (root / f"{entry}.md").is_file()]
    if missing or pages:
        raise BookBuildError(
            "_toc.yml lists files that do not exist: "
            + ", ".join(missing + [f"{page}.md" for page in pages])
            + ". Add the chapter source or remove its line from _toc.yml.")


def _resolve(name: str, listed: Sequence[str]) -> str:
    name = str(name).removesuffix(".py").removesuffix(".ipynb").split("/")[-1]
    matches = [chapter for chapter in listed if chapter == name or chapter.split("_")[0] == name]
    if len(matches) != 1:
        raise BookUsageError(f"chapter {name!r} is not one of the chapters in _toc.yml: "
                             f"{', '.join(listed)}")
    return matches[0]


# --------------------------------------------------------------------------------------------
# checking the request


@dataclass(frozen=True)
class BuildRequest:
    """A checked request: what :func:`build` will do."""

    root: Path
    profile: str
    seed: int
    device: str
    chapters: tuple[str, ...]  # selected, in _toc.yml order
    listed: tuple[str, ...]  # every chapter in _toc.yml
    output_dir: Path

    @property
    def parameters(self) -> dict:
        return {"profile": self.profile, "seed": self.seed, "device": self.device}


def _output_dir(root: Path, output_dir: Path | str) -> Path:
    path = Path(output_dir).expanduser()
    return (path if path.is_absolute() else root / path).resolve()


def check_output_dir(root: Path, output_dir: Path | str) -> Path:
    """The build folder, resolved; :class:`BookUsageError` if it may not be used.

    It must be named ``_build`` (jupyter-book writes ``html/`` into a folder of that name), must
    not lie inside the sources (only ``<root>/_build`` itself, which git ignores), must not be a
    file, and must be creatable. Nothing is created here.
    """
    root = Path(root).resolve()
    path = _output_dir(root, output_dir)
    if path.name != "_build":
        raise BookUsageError(f"--output-dir must be a folder named _build (jupyter-book writes "
                             f"html/ into it), got {output_dir}")
    if path != root / "_build" and (path == root or root in path.parents):
        raise BookUsageError(f"--output-dir {output_dir} lies inside the sources; use _build "
                             f"or a folder named _build outside {root}")
    if path.exists() and not path.is_dir():
        raise BookUsageError(f"--output-dir {output_dir} exists and is not a folder")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise BookUsageError(f"--output-dir {output_dir} cannot be written ({existing} is not "
                             f"a writable folder)")
    return path


def check_device(device: str) -> str:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N``; CUDA only when this machine has that GPU."""
    if not isinstance(device, str) or not DEVICE_PATTERN.match(device):
        raise BookUsageError(f"--device must be auto, cpu, cuda or cuda:N, got {device!r}")
    if device.startswith("cuda"):
        import torch

        index = int(device.split(":")[1]) if ":" in device else 0
        if not torch.cuda.is_available():
            raise BookUsageError(f"--device {device}: no CUDA GPU is available on this "
                                 f"machine; use --device auto or cpu")
        if index >= torch.cuda.device_count():
            raise BookUsageError(f"--device {device}: this machine has "
                                 f"{torch.cuda.device_count()} CUDA device(s)")
    return device


def check_request(profile: str = DEFAULT_PROFILE, seed: int = 0, device: str = "auto",
                  chapters: Optional[Sequence[str]] = None,
                  output_dir: Path | str = "_build", root: Path | str = ROOT) -> BuildRequest:
    """Check everything about a build before anything is written or any kernel starts.

    Raises:
        BookUsageError: one line saying what is wrong with the input.
        BookBuildError: ``_toc.yml`` lists a file that does not exist.
    """
    root = Path(root).resolve()
    if profile not in PROFILES:
        raise BookUsageError(f"--profile must be one of {', '.join(PROFILES)}, got {profile!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise BookUsageError(f"--seed must be an integer from 0 to {MAX_SEED}, got {seed!r}")
    device = check_device(device)
    path = check_output_dir(root, output_dir)
    listed = toc_chapters(root)
    _check_sources(root, listed)
    if chapters is None:
        selected = list(listed)
    else:
        wanted = {_resolve(name, listed) for name in chapters}
        if not wanted:
            raise BookUsageError("--chapters needs at least one chapter")
        selected = [name for name in listed if name in wanted]
    missing = [name for name in listed if name not in selected
               and not (path / "notebooks" / f"{name}.ipynb").is_file()]
    if missing:
        raise BookUsageError(f"chapters never executed into {path / 'notebooks'} and not "
                             f"selected: {', '.join(missing)}; build once without --chapters")
    return BuildRequest(root, profile, seed, device, tuple(selected), tuple(listed), path)


# --------------------------------------------------------------------------------------------
# executing one chapter


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
    folder = _output_dir(root, output_dir) / "notebooks"
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


def _chapter_title(path: Path, name: str) -> str:
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


# --------------------------------------------------------------------------------------------
# rendering


def _staged_files(root: Path, output_dir: Path) -> list[Path]:
    """The files of the book's sources that jupyter-book reads, relative to ``root``: whatever
    ``_config.yml`` does not exclude, except the chapters (their executed notebooks are in the
    build folder already), the generated pages and the build folder itself."""
    import yaml
    from sphinx.util.matching import Matcher

    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8")) or {}
    excluded = Matcher(list(config.get("exclude_patterns", [])) + ["_build", "_build/**"])
    files = []
    for folder, subfolders, names in os.walk(root):
        here = Path(folder)
        relative = here.relative_to(root)
        subfolders[:] = sorted(
            sub for sub in subfolders if (here / sub).resolve() != output_dir
            and not excluded((relative / sub).as_posix()))
        for filename in sorted(names):
            path = relative / filename
            if (excluded(path.as_posix()) or path.with_suffix("").as_posix() in GENERATED_PAGES
                    or (path.parts[0] == "notebooks" and path.suffix in (".py", ".ipynb"))):
                continue
            files.append(path)
    return files


def stage_sources(root: Path | str = ROOT, output_dir: Path | str = "_build") -> Path:
    """Copy the book's sources (``_config.yml``, ``_toc.yml``, ``book/`` ...) into the build
    folder, which becomes jupyter-book's source folder next to the executed notebooks.

    Only files whose bytes changed are rewritten (Sphinx then re-reads only those), files staged
    by an earlier build that no longer exist in the sources are removed, and the staged
    ``_config.yml`` also excludes the build's own outputs (``html/`` ...). Returns the folder.
    """
    import yaml

    root = Path(root).resolve()
    output_dir = _output_dir(root, output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    manifest = output_dir / STAGED_MANIFEST
    try:
        previous = set(json.loads(manifest.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        previous = set()
    staged = _staged_files(root, output_dir)
    for relative in staged:
        data = (root / relative).read_bytes()
        if relative == Path("_config.yml"):
            config = yaml.safe_load(data) or {}
            config["exclude_patterns"] = (list(config.get("exclude_patterns", []))
                                          + BUILD_OUTPUT_PATTERNS)
            data = yaml.safe_dump(config, sort_keys=False, allow_unicode=True).encode()
        target = output_dir / relative
        if not target.is_file() or target.read_bytes() != data:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    for relative in previous - {path.as_posix() for path in staged}:
        (output_dir / relative).unlink(missing_ok=True)
    manifest.write_text(json.dumps(sorted(path.as_posix() for path in staged)),
                        encoding="utf-8")
    return output_dir


# the build folder is also jupyter-book's source folder: its outputs are not sources
BUILD_OUTPUT_PATTERNS = ["html", "html/**", "jupyter_execute", "jupyter_execute/**", "logs",
                         "logs/**", "notebooks/*.running.ipynb", "notebooks/*.failed.ipynb"]


def _exclude_build_outputs(config_path: Path) -> Path:
    """Add :data:`BUILD_OUTPUT_PATTERNS` to the ``exclude_patterns`` of a config file."""
    import yaml

    text = config_path.read_text(encoding="utf-8")
    config = yaml.safe_load(text) or {}
    config["exclude_patterns"] = list(config.get("exclude_patterns", [])) + [
        pattern for pattern in BUILD_OUTPUT_PATTERNS
        if pattern not in config.get("exclude_patterns", [])]
    header = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
    config_path.write_text(header + yaml.safe_dump(config, sort_keys=False, allow_unicode=True),
                           encoding="utf-8")
    return config_path


def render(root: Path | str = ROOT, output_dir: Path | str = "_build", quiet: bool = False
           ) -> Path:
    """Stage the sources into ``output_dir`` and run ``jupyter-book build -W`` on it.

    The executed chapters must already be in ``<output_dir>/notebooks``. ``output_dir`` is
    jupyter-book's ``_build`` folder, so its last component must be ``_build``; a relative path
    is taken from ``root``. Returns the HTML directory ``<output_dir>/html``.
    """
    root = Path(root).resolve()
    output_dir = _output_dir(root, output_dir)
    if output_dir.name != "_build":
        raise ValueError(f"output_dir must be a folder named _build (jupyter-book writes "
                         f"html/ into it), got {output_dir}")
    source = stage_sources(root, output_dir)
    command = [sys.executable, "-c",
               "import sys; from jupyter_book.cli.main import main; sys.exit(main())",
               "build", str(source), "--builder", "html",
               "--path-output", str(output_dir.parent), "-W",
               # _config.yml plus the repository found in the environment (fwbook.cli.book_config)
               "--config", str(_exclude_build_outputs(book_config.write_config(root, output_dir)))]
    environment = dict(os.environ, PYTHONWARNINGS="ignore::DeprecationWarning")
    result = subprocess.run(command, cwd=source, capture_output=True, text=True,
                            env=environment)
    if result.returncode != 0:
        raise BookBuildError(
            "jupyter-book build -W failed (Sphinx warnings are errors):\n"
            + _tail(result.stdout + "\n" + result.stderr))
    if not quiet:
        print(f"[book] rendered {output_dir / 'html' / 'index.html'}", flush=True)
    return output_dir / "html"


def _tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


# --------------------------------------------------------------------------------------------
# the build


def execute_chapters(request: BuildRequest, force: bool = False,
                     say: Callable[[str], None] = print, watchdog=None):
    """Execute the request's chapters whose key changed (all of them with ``force``).

    Returns:
        (a :class:`BookBuild` without ``html_dir``, one
        :class:`fwbook.cli.book_status.ChapterStatus` per chapter in ``_toc.yml``).
    """
    from fwbook.cli import book_key
    from fwbook.cli import book_status

    root, output_dir = request.root, request.output_dir
    record = BookBuild(html_dir=Path(), chapters=list(request.chapters), output_dir=output_dir,
                       profile=request.profile, seed=request.seed, device=request.device)
    shared = book_key.shared_inputs(root)
    statuses = []
    for index, name in enumerate(request.listed, 1):
        target = output_dir / "notebooks" / f"{name}.ipynb"
        stored = stored_record(target) or {}
        if name not in request.chapters:
            statuses.append(book_status.ChapterStatus(
                name, _chapter_title(target, name), stored.get("parameters", {}),
                "not selected", stored.get("seconds"), stored.get("executed_at")))
            continue
        key = book_key.chapter_key(root, name, request.parameters, shared)
        changed = book_key.changed_parts(stored.get("key"), key)
        prefix = f"[book] {index}/{len(request.listed)} {name}"
        if not changed and not force:
            say(f"{prefix}: up to date")
            record.up_to_date.append(name)
            outcome = "up to date"
        else:
            reason = ("--force" if not changed else "new" if changed == ["new"]
                      else ", ".join(changed) + " changed")
            say(f"{prefix}: executing ({reason}; profile={request.profile}, "
                f"seed={request.seed}, device={request.device}) ...")
            execute_chapter(name, request.profile, request.seed, request.device, root,
                            output_dir=output_dir, key=key, watchdog=watchdog)
            stored = stored_record(target) or {}
            record.chapter_seconds[name] = seconds = stored["seconds"]
            record.executed.append(name)
            missed = (stored.get("kernel") or {}).get("missed_wakeups") or 0
            record.missed_wakeups += missed
            say(f"{prefix}: executed ({seconds:.1f} s" + (
                f"; {missed} missed wake-up(s) recovered" if missed else "") + ")")
            outcome = "executed"
        statuses.append(book_status.ChapterStatus(
            name, _chapter_title(target, name), stored.get("parameters", {}), outcome,
            stored.get("seconds"), stored.get("executed_at")))
    return record, statuses


def build(profile: str = DEFAULT_PROFILE, seed: int = 0, device: str = "auto",
          chapters: Optional[Sequence[str]] = None, output_dir: Path | str = "_build",
          quiet: bool = False, root: Path | str = ROOT,
          log: Optional[Callable[[str], None]] = None, force: bool = False,
          watchdog=None) -> BookBuild:
    """Execute the chapters that need it and render the book.

    Args:
        profile: "paper" (default: the published book; chapters read the committed records),
            "quick" (every figure regenerated, minutes on 2 CPU cores) or "smoke" (seconds per
            chapter; tests).
        seed: passed to every chapter.
        device: "auto", "cpu", "cuda" or "cuda:N", passed to every chapter.
        chapters: names or numbers ("01", "01_physiological_motivation") to consider; default
            every chapter in ``_toc.yml``. The others keep the notebook of an earlier build.
        output_dir: the build folder, named ``_build`` (HTML goes to ``<output_dir>/html``).
        quiet: no progress lines.
        root: the book root (the repository root).
        log: where progress lines go (default ``print``).
        force: execute the chapters even when they are up to date.
        watchdog: a :class:`fwbook.cli.book_execute.Watchdog` (default limits when None).
    Returns:
        a :class:`BookBuild`.
    Raises:
        BookUsageError: bad input; raised before anything is written.
        BookBuildError: naming the chapter and cell that failed, or with jupyter-book's output.
    """
    from fwbook.cli import book_status

    request = check_request(profile, seed, device, chapters, output_dir, root)
    root, output_dir = request.root, request.output_dir
    say = (lambda line: None) if quiet else (log or (lambda line: print(line, flush=True)))
    started = time.perf_counter()
    record, statuses = execute_chapters(request, force=force, say=say, watchdog=watchdog)
    record.status_page = book_status.write_status_page(output_dir, statuses, root)
    say("[book] rendering with jupyter-book (-W: warnings are errors) ...")
    render_start = time.perf_counter()
    record.html_dir = render(root, output_dir, quiet=True)
    record.render_seconds = time.perf_counter() - render_start
    say(f"[book] rendered in {record.render_seconds:.1f} s; total "
        f"{time.perf_counter() - started:.1f} s ({len(record.executed)} executed, "
        f"{len(record.up_to_date)} up to date) -> {record.html_dir / 'index.html'}")
    return record


# --------------------------------------------------------------------------------------------
# the command line


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to {MAX_SEED}, got {text}")
    return value


def _device(text: str) -> str:
    if not DEVICE_PATTERN.match(text):
        raise argparse.ArgumentTypeError(f"expected auto, cpu, cuda or cuda:N, got {text!r}")
    return text


def add_book_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``book`` sub-command's options to ``parser``."""
    parser.add_argument("--profile", choices=PROFILES, default=DEFAULT_PROFILE,
                        help="paper: the published book, chapters read the committed records "
                             "(default); quick: every figure regenerated, minutes on 2 CPU "
                             "cores; smoke: seconds per chapter, for tests")
    parser.add_argument("--seed", type=_seed, default=0, help="seed passed to every chapter")
    parser.add_argument("--device", type=_device, default="auto",
                        help="auto, cpu, cuda or cuda:N (default auto)")
    parser.add_argument("--chapters", nargs="+", default=None, metavar="NN",
                        help="consider only these chapters (e.g. 01 03); the others keep "
                             "their last executed notebook")
    parser.add_argument("--output-dir", default="_build",
                        help="the build folder, named _build (default: _build); HTML goes to "
                             "OUTPUT_DIR/html, executed chapters to OUTPUT_DIR/notebooks")
    parser.add_argument("--force", action="store_true",
                        help="execute every chapter even if it is up to date")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    return parser


def add_parser(subparsers, parser_class=argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Register ``book`` on the ``fwbook`` command line (the hook ``fwbook.cli.main`` looks for)."""
    parser = subparsers.add_parser(
        "book", help="execute the chapters that changed and render the book (jupyter-book -W)",
        description="Execute every chapter in _toc.yml whose inputs changed since the last "
                    "build (papermill; profile, seed, device), then render the HTML with "
                    "jupyter-book build -W into OUTPUT_DIR/html.")
    add_book_arguments(parser)
    parser.set_defaults(handler=lambda args, _parser=None: run_book(args, _parser))
    return parser


def run_book(args: argparse.Namespace, parser: Optional[argparse.ArgumentParser] = None) -> int:
    """Run :func:`build` from parsed arguments; returns a process exit code (2: bad input)."""
    try:
        build(profile=args.profile, seed=args.seed, device=args.device, chapters=args.chapters,
              output_dir=args.output_dir, quiet=args.quiet, force=args.force)
    except BookUsageError as error:
        prog = parser.prog if parser is not None else "fwbook book"
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    except BookBuildError as error:
        print(f"[book] FAILED: {error}", file=sys.stderr)
        return 1
    return 0


def main(argv: Optional[Sequence[str]] = None, prog: str = "python -m fwbook.cli.book") -> int:
    """``python -m fwbook.cli.book [--profile ...]`` (and ``python -m fwbook book``, which comes
    here without building the rest of the command line: the book needs no torch import)."""
    from fwbook.cli.arguments import CommandParser

    parser = add_book_arguments(CommandParser(
        prog=prog, description="Execute the chapters whose inputs changed and render the "
                               "book with jupyter-book build -W into OUTPUT_DIR/html."))
    args = parser.parse_args(argv)
    return run_book(args, parser)


if __name__ == "__main__":
    sys.exit(main())
