"""What a book build is asked to do, checked before anything is written or any kernel starts.

The chapters are the Jupytext ``py:percent`` files ``notebooks/NN_name.py`` listed in
``_toc.yml`` (:func:`toc_chapters`). :func:`check_request` turns a profile, seed, device,
chapter selection and output folder into a :class:`BuildRequest`, or raises
:class:`BookUsageError` with one line saying what is wrong. The build itself is
:func:`fwbook.cli.book.build`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

PROFILES = ("smoke", "quick", "paper")
DEFAULT_PROFILE = "paper"  # the published book: chapters read the committed records
ROOT = Path(__file__).resolve().parents[3]  # the repository root is the book root
CHAPTER_PATTERN = re.compile(r"^notebooks/(\d\d_[A-Za-z0-9_]+)$")
GENERATED_PAGES = ("book/status",)  # listed in _toc.yml, written by the build, never typed
DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
MAX_SEED = 2**32 - 1  # numpy's legacy seeding takes 32 bits


class BookBuildError(RuntimeError):
    """A chapter failed to execute, or jupyter-book failed (warnings count as failures)."""


class BookUsageError(ValueError):
    """Bad input to the build (one line); nothing has been written."""


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


def check_sources(root: Path, chapters: Sequence[str]) -> None:
    """:class:`BookBuildError` if ``_toc.yml`` lists a chapter or page that does not exist."""
    missing = [f"notebooks/{name}.py" for name in chapters
               if not (root / "notebooks" / f"{name}.py").is_file()]
    pages = [entry for entry in toc_entries(root) if not CHAPTER_PATTERN.match(entry)
             and entry not in GENERATED_PAGES and not (root / f"{entry}.md").is_file()]
    if missing or pages:
        raise BookBuildError(
            "_toc.yml lists files that do not exist: "
            + ", ".join(missing + [f"{page}.md" for page in pages])
            + ". Add the chapter source or remove its line from _toc.yml.")


def resolve_chapter(name: str, listed: Sequence[str]) -> str:
    """The chapter of ``listed`` that ``name`` means ("01", "01_name", "notebooks/01_name.py")."""
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
    """A checked request: what :func:`fwbook.cli.book.build` will do."""

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


def output_path(root: Path, output_dir: Path | str) -> Path:
    """The build folder as an absolute path (a relative one is taken from ``root``)."""
    path = Path(output_dir).expanduser()
    return (path if path.is_absolute() else root / path).resolve()


def check_output_dir(root: Path, output_dir: Path | str) -> Path:
    """The build folder, resolved; :class:`BookUsageError` if it may not be used.

    It must be named ``_build`` (jupyter-book writes ``html/`` into a folder of that name), must
    not lie inside the sources (only ``<root>/_build`` itself, which git ignores), must not be a
    file, and must be creatable. Nothing is created here.
    """
    root = Path(root).resolve()
    path = output_path(root, output_dir)
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
    check_sources(root, listed)
    if chapters is None:
        selected = list(listed)
    else:
        wanted = {resolve_chapter(name, listed) for name in chapters}
        if not wanted:
            raise BookUsageError("--chapters needs at least one chapter")
        selected = [name for name in listed if name in wanted]
    missing = [name for name in listed if name not in selected
               and not (path / "notebooks" / f"{name}.ipynb").is_file()]
    if missing:
        raise BookUsageError(f"chapters never executed into {path / 'notebooks'} and not "
                             f"selected: {', '.join(missing)}; build once without --chapters")
    return BuildRequest(root, profile, seed, device, tuple(selected), tuple(listed), path)
