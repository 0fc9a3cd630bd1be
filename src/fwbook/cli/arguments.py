"""What every subcommand of the command line shares: the parser class (a usage error is one
line), the exit statuses, argument types (each turns a string into a checked value or raises
``argparse.ArgumentTypeError`` saying what was expected) and the check of an output path."""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from pathlib import Path
from typing import Callable, TypeVar

Number = TypeVar("Number", int, float)

EXIT_FAULT = 1  # disk full, out of memory: one line saying what to do
EXIT_USAGE = 2  # bad input: one line, before anything is written
EXIT_DIVERGED = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C


class CommandParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line: ``fwbook train: error: ...``, exit status 2."""

    def error(self, message: str):  # noqa: D401 - argparse's signature
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _checked(text: str, convert: Callable[[str], Number], expected: str,
             valid: Callable[[Number], bool], requirement: str) -> Number:
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not valid(value):
        raise argparse.ArgumentTypeError(f"{requirement}, got {text}")
    return value


def positive_int(text: str) -> int:
    return _checked(text, int, "a positive integer", lambda v: v >= 1,
                    "must be a positive integer")


def non_negative_int(text: str) -> int:
    return _checked(text, int, "a non-negative integer", lambda v: v >= 0, "must be >= 0")


def positive_float(text: str) -> float:
    return _checked(text, float, "a number", lambda v: v > 0 and math.isfinite(v),
                    "must be a positive number")


def unit_float(text: str) -> float:
    return _checked(text, float, "a number", lambda v: 0.0 <= v <= 1.0, "must lie in [0, 1]")


def non_negative_float(text: str) -> float:
    return _checked(text, float, "a number", lambda v: v >= 0 and math.isfinite(v),
                    "must be a number >= 0")


def on_off(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("on", "true", "yes", "1"):
        return True
    if lowered in ("off", "false", "no", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected on or off, got {text!r}")


def _nearest_existing(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_new_file(path: Path, option: str, extra_names: tuple[str, ...] = ()) -> None:
    """Check, creating nothing, that the file ``path`` (and the names in ``extra_names``, kept
    beside it) can be written: not a folder, its folder a folder or creatable, each name within
    the file system's limit.

    Raises:
        ValueError: one line naming ``option`` and the path.
    """
    existing = _nearest_existing(path.parent)
    read_only, name_max = False, 255
    if existing.is_dir():
        try:
            read_only = os.statvfs(existing).f_flag & os.ST_RDONLY
            name_max = os.pathconf(existing, "PC_NAME_MAX")
        except (OSError, ValueError):
            pass
    # first, as a name too long cannot even be looked at: the folders to create, the file,
    # its temporary name (.NAME.xxxxxxxx) and what is kept beside it
    missing = Path(os.path.abspath(path)).relative_to(existing).parts[:-1]
    for name in [*missing, path.name, f".{path.name}.xxxxxxxx", *extra_names]:
        if len(os.fsencode(name)) > name_max:
            raise ValueError(f"{option} {path}: the name {name!r} would be "
                             f"{len(os.fsencode(name))} bytes; this file system allows "
                             f"{name_max}: choose a shorter name")
    if path.is_dir():
        raise ValueError(f"{option} {path} is a directory; give a file name such as run.json")
    if not existing.is_dir():
        raise ValueError(f"{option} {path} is not writable ({existing} is a file, not a folder)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {path} is not writable (no permission to write in {existing})")
    if read_only:
        raise ValueError(f"{option} {path} is not writable ({existing} is on a read-only file system)")
    if existing == Path(os.path.abspath(path.parent)):
        try:
            with tempfile.NamedTemporaryFile(dir=existing, prefix=".fwbook-probe-"):
                pass
        except OSError as error:
            raise ValueError(f"{option} {path} is not writable ({error.strerror or error})") from None
