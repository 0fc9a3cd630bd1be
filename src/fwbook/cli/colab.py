"""The first code cell of every chapter, for Colab, and the tool that names its repository.

Under Colab (and only there) the cell clones the book's repository and installs the package,
so the chapter finds ``fwbook``, ``results/`` and ``_toc.yml``; anywhere else it does nothing.
The committed chapters leave the repository blank (no URL is ever typed in); the workflow
stamps the published notebooks with the repository it runs in::

    python -m fwbook.cli.colab _build/notebooks/*.ipynb        # URL and branch from fwbook.cli.book_config

Pass ``--repository URL --branch NAME`` to name another one.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Optional, Sequence

MARKER = "# Colab only:"
REPOSITORY_LINE = re.compile(r'^FWBOOK_REPOSITORY = ".*"', re.MULTILINE)
BRANCH_LINE = re.compile(r'^FWBOOK_BRANCH = ".*"', re.MULTILINE)


def _code(source) -> str:
    return "".join(source) if isinstance(source, list) else source


def stamp(path: Path | str, repository: str, branch: str) -> bool:
    """Write ``repository`` and ``branch`` into the Colab cell of the notebook at ``path``.

    Returns:
        whether the notebook had a Colab cell (a notebook without one is left unchanged).
    """
    path = Path(path)
    notebook = json.loads(path.read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        source = _code(cell.get("source", ""))
        if cell.get("cell_type") == "code" and MARKER in source:
            source = REPOSITORY_LINE.sub(f"FWBOOK_REPOSITORY = {json.dumps(repository)}", source)
            cell["source"] = BRANCH_LINE.sub(f"FWBOOK_BRANCH = {json.dumps(branch)}", source)
            path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n",
                            encoding="utf-8")
            return True
    return False


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fwbook.cli.colab",
                                     description="Name the repository in the Colab cell of "
                                                 "executed notebooks.")
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--repository", help="https URL (default: from the environment)")
    parser.add_argument("--branch", help="branch to clone (default: from the environment)")
    args = parser.parse_args(argv)
    repository, branch = args.repository, args.branch
    if repository is None:
        from fwbook.cli.book_config import ROOT_HINT, find_repository

        found = find_repository(ROOT_HINT)
        if found is None:
            print("fwbook.cli.colab: no repository found (not in GitHub Actions, no `git remote "
                  "origin`); pass --repository URL", file=sys.stderr)
            return 2
        repository, branch = found.url, branch or found.branch
    missing = [str(path) for path in args.notebooks if not path.is_file()]
    if missing:
        print(f"fwbook.cli.colab: no such notebook: {', '.join(missing)}", file=sys.stderr)
        return 2
    without = [str(path) for path in args.notebooks
               if not stamp(path, repository, branch or "main")]
    if without:
        print(f"fwbook.cli.colab: no Colab cell in {', '.join(without)}", file=sys.stderr)
        return 1
    print(f"fwbook.cli.colab: {len(args.notebooks)} notebooks open {repository} ({branch or 'main'}) "
          f"under Colab")
    return 0


if __name__ == "__main__":
    sys.exit(main())
