"""The build status page: what this copy of the book was built from, written by the build.

:func:`write_status_page` writes ``book/status.md`` into the build's source folder (the
``_build`` folder, never the repository): one row per chapter (its profile, seed and device,
whether this build executed it or found it up to date, how long its execution took and when)
and, for the build, the commit, the date, the Python and torch versions and the machine.
Everything on it is read from the executed notebooks' metadata and from the running system.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Optional, Sequence

PAGE = Path("book") / "status.md"  # the _toc.yml entry is book/status


@dataclass
class ChapterStatus:
    """One row of the status page.

    Attributes:
        name: e.g. ``"02_fast_weights_equation"``.
        title: the chapter's first heading.
        parameters: ``{"profile", "seed", "device"}`` it was executed with.
        outcome: ``"executed"``, ``"up to date"`` or ``"not selected"`` (``--chapters``).
        seconds: wall time of its execution (by this build or the earlier one).
        executed_at: when it was executed (ISO 8601, UTC).
    """

    name: str
    title: str
    parameters: dict
    outcome: str
    seconds: Optional[float]
    executed_at: Optional[str]


def _git(root: Path, *arguments: str) -> Optional[str]:
    try:
        result = subprocess.run(["git", "-C", str(root), *arguments], capture_output=True,
                                text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def commit_description(root: Path) -> str:
    """``abc1234`` or ``abc1234 with uncommitted changes`` (tracked files only)."""
    commit = _git(root, "rev-parse", "--short=10", "HEAD")
    if not commit:
        return "unknown (not a git checkout)"
    dirty = _git(root, "status", "--porcelain", "--untracked-files=no")
    return f"`{commit}`" + (" with uncommitted changes" if dirty else "")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _gpus() -> str:
    if not shutil.which("nvidia-smi"):
        return "no NVIDIA GPU (no nvidia-smi)"
    try:
        result = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return "nvidia-smi did not answer"
    names = [line.split(":", 1)[1].split("(")[0].strip() for line in result.stdout.splitlines()
             if line.startswith("GPU ")]
    return ", ".join(names) if names else "no NVIDIA GPU found by nvidia-smi"


def machine_description() -> str:
    """e.g. ``Linux x86_64, 2 CPU cores (AMD EPYC 9R14), no NVIDIA GPU (no nvidia-smi)``."""
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores "
            f"({_cpu_model()}), {_gpus()}")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|")


def render_status(chapters: Sequence[ChapterStatus], root: Path,
                  built_at: Optional[datetime] = None) -> str:
    """The page's Markdown (MyST)."""
    built_at = built_at or datetime.now(timezone.utc)
    rows = []
    for chapter in chapters:
        parameters = chapter.parameters or {}
        seconds = "—" if chapter.seconds is None else f"{chapter.seconds:.1f} s"
        when = (chapter.executed_at or "—").replace("T", " ")[:16]
        rows.append(
            f"| [{_cell(chapter.title)}](../notebooks/{chapter.name}.ipynb) "
            f"| {_cell(parameters.get('profile', '—'))} | {_cell(parameters.get('seed', '—'))} "
            f"| {_cell(parameters.get('device', '—'))} | {chapter.outcome} | {seconds} "
            f"| {when} |")
    executed = sum(chapter.outcome == "executed" for chapter in chapters)
    return "\n".join([
        "# Build status",
        "",
        "This page is written by `python -m fwbook book` each time the book is built; it is not "
        "a source file. A chapter is executed again only when something it depends on changed "
        "(its source, the package, the records in `results/`, `requirements.txt`, or the "
        "profile, seed and device); otherwise the build keeps its executed notebook from an "
        "earlier build and says *up to date*.",
        "",
        "| chapter | profile | seed | device | this build | execution time | executed (UTC) |",
        "|---|---|---:|---|---|---:|---|",
        *rows,
        "",
        f"This build executed {executed} of {len(chapters)} chapters.",
        "",
        "| build | |",
        "|---|---|",
        f"| commit | {commit_description(root)} |",
        f"| built (UTC) | {built_at.strftime('%Y-%m-%d %H:%M')} |",
        f"| Python | {platform.python_version()} |",
        f"| torch | {_version('torch')} |",
        f"| jupyter-book | {_version('jupyter-book')} |",
        f"| machine | {_cell(machine_description())} |",
        "",
    ])


def write_status_page(source_dir: Path, chapters: Sequence[ChapterStatus], root: Path) -> Path:
    """Write ``source_dir/book/status.md``; returns its path."""
    path = Path(source_dir) / PAGE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_status(chapters, root), encoding="utf-8")
    return path
