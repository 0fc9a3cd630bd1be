"""Build the book: execute every chapter with papermill, then render with jupyter-book.

The chapters are the Jupytext ``py:percent`` files ``notebooks/NN_name.py`` listed in
``_toc.yml``. For each one this module

1. converts ``notebooks/NN_name.py`` to ``notebooks/NN_name.ipynb`` (a build output,
   git-ignored; ``_toc.yml`` names ``notebooks/NN_name`` and Sphinx picks the ``.ipynb``),
2. executes it in place with papermill, injecting ``profile``, ``seed`` and ``device`` after
   the cell tagged ``parameters``, with the repository root as working directory,

and then runs ``jupyter-book build <root> -W`` (every Sphinx warning is an error). Jupyter
Book itself never executes anything (``execute_notebooks: off`` in ``_config.yml``).

Use it from Python (``build(profile="smoke")``) or the command line
(``python -m fwbook book --profile smoke``, see :func:`add_book_arguments` and
:func:`run_book`).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

from fwbook import book_config

PROFILES = ("smoke", "quick", "paper")
ROOT = Path(__file__).resolve().parents[2]  # the repository root is the book root
CHAPTER_PATTERN = re.compile(r"^notebooks/(\d\d_[A-Za-z0-9_]+)$")


# Longest a single cell may run, per profile, before the chapter is executed again
# (EXECUTION_ATTEMPTS in all) and then reported as failed. Smoke cells take seconds and quick
# cells a few minutes on 2 CPU cores; paper-profile cells may train for a long time.
CELL_TIMEOUT_S = {"smoke": 300, "quick": 1800, "paper": None}
EXECUTION_ATTEMPTS = 2


class BookBuildError(RuntimeError):
    """A chapter failed to execute, or jupyter-book failed (warnings count as failures)."""


@dataclass
class BookBuild:
    """What :func:`build` did.

    Attributes:
        html_dir: the rendered book; open ``html_dir / "index.html"``.
        chapters: the chapter names executed, in order (e.g. ``"01_physiological_motivation"``).
        chapter_seconds: wall time of each chapter's execution.
        render_seconds: wall time of ``jupyter-book build``.
        profile, seed, device: the parameters every chapter ran with.
    """

    html_dir: Path
    chapters: list[str]
    chapter_seconds: dict[str, float] = field(default_factory=dict)
    render_seconds: float = 0.0
    profile: str = "quick"
    seed: int = 0
    device: str = "auto"


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
             and not (root / f"{entry}.md").is_file()]
    if missing or pages:
        raise BookBuildError(
            "_toc.yml lists files that do not exist: "
            + ", ".join(missing + [f"{page}.md" for page in pages])
            + ". Add the chapter source or remove its line from _toc.yml.")


def convert_chapter(source: Path, target: Path) -> Path:
    """Jupytext ``py:percent`` -> ``.ipynb`` (unexecuted), with a python3 kernelspec."""
    import jupytext
    import nbformat

    notebook = jupytext.read(source, fmt="py:percent")
    notebook.metadata.setdefault("kernelspec", {
        "display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"})
    if not any("parameters" in cell.metadata.get("tags", []) for cell in notebook.cells):
        raise BookBuildError(f"chapter {source.name} has no cell tagged 'parameters' "
                             f"(profile, seed, device); add `# %% tags=[\"parameters\"]`")
    nbformat.write(notebook, target)
    return target


def execute_chapter(name: str, profile: str = "quick", seed: int = 0, device: str = "auto",
                    root: Path | str = ROOT, timeout: Optional[int] = None) -> Path:
    """Convert and execute one chapter; returns the executed ``notebooks/<name>.ipynb``.

    Raises:
        BookBuildError: naming the chapter, when any cell raises.
    """
    import papermill

    root = Path(root)
    source = root / "notebooks" / f"{name}.py"
    target = source.with_suffix(".ipynb")
    convert_chapter(source, target)
    environment = os.environ
    saved = {key: environment.get(key) for key in ("PATH", "MPLBACKEND")}
    # the python3 kernelspec runs `python`: make it this interpreter (the project's venv)
    environment["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), saved["PATH"] or ""])
    # the kernel must draw figures inline even when the caller set MPLBACKEND=Agg (CI does):
    # with Agg a returned Figure is shown as "<Figure size ...>" text, not as an image
    environment["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    if timeout is None:
        timeout = CELL_TIMEOUT_S.get(profile)
    try:
        for attempt in range(1, EXECUTION_ATTEMPTS + 1):
            try:
                papermill.execute_notebook(
                    str(target), str(target), parameters={"profile": profile, "seed": seed,
                                                          "device": device},
                    kernel_name="python3", cwd=str(root), progress_bar=False,
                    log_output=False, execution_timeout=timeout)
                break
            except TimeoutError as error:
                # a cell over its limit; seen here only when the kernel and papermill lost a
                # message on a crowded machine and both waited forever: run the chapter again
                if attempt == EXECUTION_ATTEMPTS:
                    raise
                print(f"[book] {name}: {error}; executing the chapter again "
                      f"(attempt {attempt + 1} of {EXECUTION_ATTEMPTS})", file=sys.stderr)
                convert_chapter(source, target)
    except papermill.PapermillExecutionError as error:
        raise BookBuildError(
            f"chapter {name} failed under papermill (profile={profile!r}, seed={seed}, "
            f"device={device!r}) in cell {error.exec_count}: {error.ename}: {error.evalue}\n"
            f"The partly executed notebook is {target}.") from error
    except Exception as error:  # kernel died, timeout, bad notebook...
        raise BookBuildError(f"chapter {name} could not be executed: "
                             f"{type(error).__name__}: {error}") from error
    finally:
        for key, value in saved.items():
            if value is None:
                environment.pop(key, None)
            else:
                environment[key] = value
    _finish_notebook(target, {"profile": profile, "seed": seed, "device": device})
    return target


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


def _finish_notebook(path: Path, parameters: dict) -> None:
    """Record parameters and installed versions in the notebook's metadata (``fwbook``), and
    hide the defaults cell in the book: papermill's injected cell shows the values used."""
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    notebook.metadata["fwbook"] = {"parameters": parameters, "versions": _versions()}
    injected = any("injected-parameters" in cell.metadata.get("tags", [])
                   for cell in notebook.cells)
    for cell in notebook.cells if injected else []:
        tags = cell.metadata.setdefault("tags", [])
        if "parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
    nbformat.write(notebook, path)


def render(root: Path | str = ROOT, output_dir: Path | str = "_build", quiet: bool = False
           ) -> Path:
    """``jupyter-book build <root> -W``; returns the HTML directory ``<output_dir>/html``.

    ``output_dir`` is jupyter-book's ``_build`` folder, so its last component must be
    ``_build``; a relative path is taken from ``root``.
    """
    root = Path(root).resolve()
    output_dir = Path(output_dir)
    output_dir = (output_dir if output_dir.is_absolute() else root / output_dir).resolve()
    if output_dir.name != "_build":
        raise ValueError(f"output_dir must be a folder named _build (jupyter-book writes "
                         f"html/ into it), got {output_dir}")
    command = [sys.executable, "-c",
               "import sys; from jupyter_book.cli.main import main; sys.exit(main())",
               "build", str(root), "--builder", "html",
               "--path-output", str(output_dir.parent), "-W",
               # _config.yml plus the repository found in the environment (fwbook.book_config)
               "--config", str(book_config.write_config(root, output_dir))]
    environment = dict(os.environ, PYTHONWARNINGS="ignore::DeprecationWarning")
    result = subprocess.run(command, cwd=root, capture_output=True, text=True,
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


def build(profile: str = "quick", seed: int = 0, device: str = "auto",
          chapters: Optional[Sequence[str]] = None, output_dir: Path | str = "_build",
          quiet: bool = False, root: Path | str = ROOT,
          log: Optional[Callable[[str], None]] = None) -> BookBuild:
    """Execute the chapters and render the book.

    Args:
        profile: "smoke" (seconds per chapter), "quick" (minutes on 2 CPU cores) or "paper"
            (the paper's budgets; reads committed records where a chapter says so).
        seed: passed to every chapter.
        device: "auto", "cpu", "cuda", ... passed to every chapter.
        chapters: names or numbers ("01", "01_physiological_motivation") to execute; default
            every chapter in ``_toc.yml``. Chapters not executed keep the ``.ipynb`` of an
            earlier build; the render fails if one has none.
        output_dir: jupyter-book's ``_build`` folder (HTML goes to ``<output_dir>/html``).
        quiet: no progress lines.
        root: the book root (the repository root).
        log: where progress lines go (default ``print``).
    Returns:
        a :class:`BookBuild`.
    Raises:
        BookBuildError: naming the chapter that failed, or with jupyter-book's output.
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}; got {profile!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    root = Path(root).resolve()
    say = (lambda line: None) if quiet else (log or (lambda line: print(line, flush=True)))
    listed = toc_chapters(root)
    _check_sources(root, listed)
    selected = listed if chapters is None else [_resolve(name, listed) for name in chapters]
    unexecuted = [name for name in listed if name not in selected
                  and not (root / "notebooks" / f"{name}.ipynb").is_file()]
    if unexecuted:
        raise BookBuildError("these chapters have never been executed and were not selected: "
                             + ", ".join(unexecuted))
    record = BookBuild(html_dir=Path(), chapters=list(selected), profile=profile, seed=seed,
                       device=device)
    started = time.perf_counter()
    for index, name in enumerate(selected, 1):
        say(f"[book] {index}/{len(selected)} {name} (profile={profile}, seed={seed}, "
            f"device={device}) ...")
        chapter_start = time.perf_counter()
        execute_chapter(name, profile, seed, device, root)
        seconds = time.perf_counter() - chapter_start
        record.chapter_seconds[name] = seconds
        say(f"[book] {index}/{len(selected)} {name} done in {seconds:.1f} s")
    say("[book] rendering with jupyter-book (-W: warnings are errors) ...")
    render_start = time.perf_counter()
    record.html_dir = render(root, output_dir, quiet=True)
    record.render_seconds = time.perf_counter() - render_start
    say(f"[book] rendered in {record.render_seconds:.1f} s; total "
        f"{time.perf_counter() - started:.1f} s -> {record.html_dir / 'index.html'}")
    return record


def _resolve(name: str, listed: Sequence[str]) -> str:
    name = str(name).removesuffix(".py").removesuffix(".ipynb").split("/")[-1]
    matches = [chapter for chapter in listed if chapter == name or chapter.split("_")[0] == name]
    if len(matches) != 1:
        raise ValueError(f"chapter {name!r} is not one of the chapters in _toc.yml: "
                         f"{', '.join(listed)}")
    return matches[0]


def add_book_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``book`` sub-command's options to ``parser``."""
    parser.add_argument("--profile", choices=PROFILES, default="quick",
                        help="smoke: seconds per chapter; quick: minutes on 2 CPU cores; "
                             "paper: the paper's budgets (default: quick)")
    parser.add_argument("--seed", type=int, default=0, help="seed passed to every chapter")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, ... (default auto)")
    parser.add_argument("--chapters", nargs="+", default=None, metavar="NN",
                        help="execute only these chapters (e.g. 01 03); others keep their "
                             "last executed notebook")
    parser.add_argument("--output-dir", default="_build",
                        help="jupyter-book's _build folder; HTML goes to OUTPUT_DIR/html")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    return parser


def add_parser(subparsers, parser_class=argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Register ``book`` on the ``fwbook`` command line (the hook ``fwbook.cli`` looks for)."""
    parser = subparsers.add_parser(
        "book", help="execute the chapters with papermill and render the book (jupyter-book -W)",
        description="Execute every chapter in _toc.yml with papermill (profile, seed, device), "
                    "then render the HTML with jupyter-book build -W into OUTPUT_DIR/html.")
    add_book_arguments(parser)
    parser.set_defaults(handler=lambda args, _parser=None: run_book(args))
    return parser


def run_book(args: argparse.Namespace) -> int:
    """Run :func:`build` from parsed arguments; returns a process exit code."""
    try:
        build(profile=args.profile, seed=args.seed, device=args.device, chapters=args.chapters,
              output_dir=args.output_dir, quiet=args.quiet)
    except BookBuildError as error:
        print(f"[book] FAILED: {error}", file=sys.stderr)
        return 1
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m fwbook.book [--profile ...]``."""
    parser = add_book_arguments(argparse.ArgumentParser(
        prog="python -m fwbook.book", description="Execute the chapters and render the book."))
    return run_book(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
