"""One process at a time per output: a lock file holding the owner's process id.

``held_lock(path)`` claims ``path`` (created with ``O_EXCL``) for this process and removes it
on exit. A lock whose process is gone (killed with -9, a crashed machine) is taken over, so a
stale lock never blocks a rerun; a lock held by a live process raises :class:`RunLocked`.
Used by ``fwbook train`` (a lock beside the record) and by the sweep (one per run).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


class RunLocked(RuntimeError):
    """Another live process is training this run right now."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def acquire_lock(lock: Path, what: str = "this run") -> None:
    """Claim ``lock`` for this process; a lock left by a dead process is taken over.

    Raises:
        RunLocked: a live process other than this one holds it.
    """
    lock = Path(lock)
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(3):
        try:
            handle = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                owner = int(lock.read_text().strip() or 0)
            except (OSError, ValueError):
                owner = 0
            if owner == 0:
                # just created by another process that has not written its pid yet
                import time

                time.sleep(0.2)
                try:
                    owner = int(lock.read_text().strip() or 0)
                except (OSError, ValueError):
                    owner = 0
            if owner and owner != os.getpid() and _alive(owner):
                raise RunLocked(f"process {owner} is training {what} ({lock}); wait for it to "
                                f"finish, or stop it") from None
            lock.unlink(missing_ok=True)  # stale: its process is gone
            continue
        with os.fdopen(handle, "w") as stream:
            stream.write(str(os.getpid()))
        return
    raise RunLocked(f"could not claim {lock}")


def release_lock(lock: Path) -> None:
    """Remove ``lock`` if this process holds it."""
    lock = Path(lock)
    try:
        if int(lock.read_text().strip() or 0) == os.getpid():
            lock.unlink(missing_ok=True)
    except (OSError, ValueError):
        pass


@contextmanager
def held_lock(lock: Path, what: str = "this run") -> Iterator[Path]:
    """``with held_lock(path):`` -- :func:`acquire_lock`, then :func:`release_lock` on exit."""
    acquire_lock(lock, what)
    try:
        yield Path(lock)
    finally:
        release_lock(lock)
