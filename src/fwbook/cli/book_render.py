"""Render the executed chapters into HTML with ``jupyter-book build -W``.

The build folder (``_build``) is jupyter-book's source folder: :func:`stage_sources` copies
the book's other sources (``_config.yml``, ``_toc.yml``, ``book/`` ...) next to the executed
notebooks in ``_build/notebooks``, and :func:`render` runs jupyter-book on it, with
``_config.yml`` merged with the repository found in the environment
(:mod:`fwbook.cli.book_config`). Jupyter Book itself never executes anything
(``execute_notebooks: off``); every Sphinx warning is an error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fwbook.cli import book_config
from fwbook.cli.book_request import GENERATED_PAGES, ROOT, BookBuildError, output_path

STAGED_MANIFEST = ".fwbook-staged.json"  # in the build folder: what the last staging copied
# the build folder is also jupyter-book's source folder: its outputs are not sources
BUILD_OUTPUT_PATTERNS = ["html", "html/**", "jupyter_execute", "jupyter_execute/**", "logs",
                         "logs/**", "notebooks/*.running.ipynb", "notebooks/*.failed.ipynb"]


def _staged_files(root: Path, output_dir: Path) -> list[Path]:
    """The files of the book's sources that jupyter-book reads, relative to ``root``: whatever
    ``_config.yml`` does not exclude, except the chapters (their executed notebooks are in the
    build folder already), the generated pages and the build folder itself; and the run
    records under ``results/``, which the chapters link to."""
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
    # the run records the chapters link to (``../results/...json`` from _build/notebooks):
    # excluded from Sphinx's sources, staged so that MyST finds them and ships a copy
    files += sorted(path.relative_to(root) for path in (root / "results").rglob("*.json"))
    return files


def _exclude_build_outputs(config_text: str) -> str:
    """A ``_config.yml`` text with :data:`BUILD_OUTPUT_PATTERNS` added to its
    ``exclude_patterns`` (its leading comment lines kept)."""
    import yaml

    config = yaml.safe_load(config_text) or {}
    patterns = list(config.get("exclude_patterns", []))
    config["exclude_patterns"] = patterns + [pattern for pattern in BUILD_OUTPUT_PATTERNS
                                             if pattern not in patterns]
    header = "".join(line + "\n" for line in config_text.splitlines() if line.startswith("#"))
    return header + yaml.safe_dump(config, sort_keys=False, allow_unicode=True)


def stage_sources(root: Path | str = ROOT, output_dir: Path | str = "_build") -> Path:
    """Copy the book's sources (``_config.yml``, ``_toc.yml``, ``book/`` ...) into the build
    folder, which becomes jupyter-book's source folder next to the executed notebooks.

    Only files whose bytes changed are rewritten (Sphinx then re-reads only those), files staged
    by an earlier build that no longer exist in the sources are removed, and the staged
    ``_config.yml`` also excludes the build's own outputs (``html/`` ...). Returns the folder.
    """
    root = Path(root).resolve()
    output_dir = output_path(root, output_dir)
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
            data = _exclude_build_outputs(data.decode("utf-8")).encode("utf-8")
        target = output_dir / relative
        if not target.is_file() or target.read_bytes() != data:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    for relative in previous - {path.as_posix() for path in staged}:
        (output_dir / relative).unlink(missing_ok=True)
    manifest.write_text(json.dumps(sorted(path.as_posix() for path in staged)),
                        encoding="utf-8")
    return output_dir


def render(root: Path | str = ROOT, output_dir: Path | str = "_build", quiet: bool = False
           ) -> Path:
    """Stage the sources into ``output_dir`` and run ``jupyter-book build -W`` on it.

    The executed chapters must already be in ``<output_dir>/notebooks``. ``output_dir`` is
    jupyter-book's ``_build`` folder, so its last component must be ``_build``; a relative path
    is taken from ``root``. Returns the HTML directory ``<output_dir>/html``.
    """
    root = Path(root).resolve()
    output_dir = output_path(root, output_dir)
    if output_dir.name != "_build":
        raise ValueError(f"output_dir must be a folder named _build (jupyter-book writes "
                         f"html/ into it), got {output_dir}")
    source = stage_sources(root, output_dir)
    # _config.yml plus the repository found in the environment (fwbook.cli.book_config)
    config = book_config.write_config(root, output_dir)
    config.write_text(_exclude_build_outputs(config.read_text(encoding="utf-8")),
                      encoding="utf-8")
    command = [sys.executable, "-c",
               "import sys; from jupyter_book.cli.main import main; sys.exit(main())",
               "build", str(source), "--builder", "html",
               "--path-output", str(output_dir.parent), "-W", "--config", str(config)]
    environment = dict(os.environ, PYTHONWARNINGS="ignore::DeprecationWarning")
    result = subprocess.run(command, cwd=source, capture_output=True, text=True,
                            env=environment)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + "\n" + result.stderr).strip().splitlines()[-60:])
        raise BookBuildError("jupyter-book build -W failed (Sphinx warnings are errors):\n"
                             + tail)
    if not quiet:
        print(f"[book] rendered {output_dir / 'html' / 'index.html'}", flush=True)
    return output_dir / "html"
