"""What an executed chapter depends on: the key of the incremental book build.

A chapter is executed again only when its key changes. The key is a SHA-256 over

* ``chapter``: the chapter's source, ``notebooks/NN_name.py``;
* ``package``: every file of the package, ``src/fwbook/`` (code and any data it ships);
* ``records``: every file under ``results/`` (which records a chapter reads is not declared, so
  all of them count: adding a Table 1 record re-executes every chapter);
* ``requirements``: ``requirements.txt``;
* ``parameters``: the profile, seed and device the chapter runs with;

each part hashed separately (file names and contents), so a rebuild can say what changed. The
key is stored in the executed notebook's metadata (``metadata.fwbook.key``) by
:mod:`fwbook.cli.book`, which compares it with :func:`chapter_key` before executing anything.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterable, Optional

KEY_VERSION = 1  # bump when what goes into the key changes
PACKAGE = Path("src") / "fwbook"
RECORDS = Path("results")
REQUIREMENTS = Path("requirements.txt")
_SKIPPED_PARTS = {"__pycache__", ".ipynb_checkpoints"}
_SKIPPED_SUFFIXES = {".pyc", ".pyo"}


def _files(root: Path, relative: Path) -> list[Path]:
    """The files under ``root / relative`` (or that one file), sorted, caches left out."""
    top = root / relative
    if top.is_file():
        return [top]
    if not top.is_dir():
        return []
    return sorted(path for path in top.rglob("*") if path.is_file()
                  and not _SKIPPED_PARTS.intersection(path.relative_to(root).parts)
                  and path.suffix not in _SKIPPED_SUFFIXES)


def digest_files(root: Path, paths: Iterable[Path]) -> str:
    """SHA-256 over each file's path relative to ``root`` and its bytes."""
    hasher = hashlib.sha256()
    for path in paths:
        hasher.update(path.relative_to(root).as_posix().encode() + b"\0")
        hasher.update(hashlib.sha256(path.read_bytes()).digest())
    return hasher.hexdigest()


def shared_inputs(root: Path) -> dict[str, str]:
    """The parts of the key every chapter shares: package, records, requirements."""
    root = Path(root)
    return {"package": digest_files(root, _files(root, PACKAGE)),
            "records": digest_files(root, _files(root, RECORDS)),
            "requirements": digest_files(root, _files(root, REQUIREMENTS))}


def chapter_key(root: Path, name: str, parameters: dict,
                shared: Optional[dict[str, str]] = None) -> dict:
    """``{"digest": ..., "parts": {...}}`` for chapter ``name`` run with ``parameters``.

    Args:
        root: the repository root.
        name: e.g. ``"02_fast_weights_equation"``.
        parameters: ``{"profile": ..., "seed": ..., "device": ...}``.
        shared: :func:`shared_inputs` (computed here when not given).
    """
    root = Path(root)
    parts = {"chapter": digest_files(root, [root / "notebooks" / f"{name}.py"]),
             **(shared if shared is not None else shared_inputs(root)),
             "parameters": json.dumps(parameters, sort_keys=True),
             "version": str(KEY_VERSION)}
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
    return {"digest": digest, "parts": parts}


def changed_parts(stored: Optional[dict], current: dict) -> list[str]:
    """Names of the parts that differ between a stored key and the current one.

    ``["new"]`` when nothing is stored (never executed, or by an older build).
    """
    if not stored or "parts" not in stored:
        return ["new"]
    return [name for name, value in current["parts"].items()
            if stored["parts"].get(name) != value]
