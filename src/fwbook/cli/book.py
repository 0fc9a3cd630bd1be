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

Steps of :func:`build`, one module each:

1. :func:`fwbook.cli.book_request.check_request` rejects bad input (profile, seed, device,
   chapters, output folder) before anything is written or any kernel starts
   (:class:`BookUsageError`).
2. :func:`execute_chapters` executes a chapter only if its key (:mod:`fwbook.cli.book_key`: its
   source, the package, ``results/``, ``requirements.txt``, profile, seed, device) differs from
   the key stored in its executed notebook, or with ``force``; the log says ``executed (N s)``
   or ``up to date``. One chapter is executed by :mod:`fwbook.cli.book_chapter`, through the
   kernel client of :mod:`fwbook.cli.book_execute`: a kernel that dies or stops answering
   fails the build within two minutes, naming the chapter and the cell.
3. The status page is written (:mod:`fwbook.cli.book_status`) and
   :func:`fwbook.cli.book_render.render` runs ``jupyter-book build -W`` (every Sphinx warning
   is an error). Jupyter Book itself never executes anything (``execute_notebooks: off``).

Use it from Python (``build(profile="smoke")``) or the command line
(``python -m fwbook book``, see :func:`add_book_arguments` and :func:`run_book`).
The published book is the ``paper`` profile, the default.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

from fwbook.cli.book_chapter import chapter_title, execute_chapter, stored_record
from fwbook.cli.book_render import render
from fwbook.cli.book_request import (DEFAULT_PROFILE, DEVICE_PATTERN, MAX_SEED, PROFILES, ROOT,
                                     BookBuildError, BookUsageError, BuildRequest,
                                     check_request)


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
                name, chapter_title(target, name), stored.get("parameters", {}),
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
            name, chapter_title(target, name), stored.get("parameters", {}), outcome,
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
