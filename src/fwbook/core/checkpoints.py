"""Checkpoint files: verified before use, written atomically.

A checkpoint is one file: a header line ``fwbook-checkpoint-2 sha256=<hex> bytes=<n>`` and
then the ``torch.save`` bytes of the payload. The checksum lives in the same file as the
bytes it covers, so the two are replaced together by one rename (a checksum in a separate
file beside it could be a generation apart from the checkpoint after a kill -9 between two
renames). :func:`read_checkpoint` refuses a file whose bytes do not match their checksum --
damage inside a tensor that ``torch.load`` would accept silently -- and never deletes it.

Checkpoints written before checksums (a bare ``torch.save`` zip, ``fwbook-checkpoint-1``) are
still read, unverified, with a warning. :class:`DeferredInterrupt` makes Ctrl-C stop a training
loop between two updates, so that the checkpoint it then writes holds a whole update.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import signal
import threading
import warnings
from pathlib import Path

from fwbook.core.records import write_bytes_atomic

MAGIC = b"fwbook-checkpoint-2"
_HEADER = re.compile(rb"^fwbook-checkpoint-2 sha256=([0-9a-f]{64}) bytes=([0-9]+)\n")
_HEADER_MAX = 128


class CheckpointDamaged(ValueError):
    """The checkpoint's bytes are not the ones written (checksum mismatch, truncated, garbage)."""


class UnverifiedCheckpointWarning(UserWarning):
    """A checkpoint from before checksums was read without verification."""


def checkpoint_bytes(payload: dict) -> bytes:
    """The file contents for ``payload``: header with checksum, then ``torch.save`` bytes."""
    import torch

    buffer = io.BytesIO()
    torch.save(payload, buffer)
    body = buffer.getvalue()
    digest = hashlib.sha256(body).hexdigest()
    return MAGIC + f" sha256={digest} bytes={len(body)}\n".encode() + body


def save_checkpoint(path: str | os.PathLike, payload: dict) -> Path:
    """Write ``payload`` to ``path`` atomically (unique temporary name, removed on failure).

    Raises:
        OSError: the write failed (e.g. disk full); ``path`` keeps its previous contents.
    """
    return write_bytes_atomic(path, checkpoint_bytes(payload))


def read_checkpoint(path: str | os.PathLike) -> dict:
    """The payload of the checkpoint at ``path``, after checking its checksum.

    Raises:
        CheckpointDamaged: the file is truncated, damaged or not a fwbook checkpoint; the
            message names the file and says it was kept.
        OSError: the file cannot be read.
    """
    import torch

    path = Path(path)
    data = path.read_bytes()
    kept = f"it is kept for inspection: move it away to start the run afresh"
    match = _HEADER.match(data[:_HEADER_MAX])
    if match is not None:
        body = data[match.end():]
        expected_length = int(match.group(2))
        if len(body) != expected_length:
            raise CheckpointDamaged(f"checkpoint {path} is damaged (truncated: {len(body)} of "
                                    f"{expected_length} bytes); {kept}")
        if hashlib.sha256(body).hexdigest() != match.group(1).decode():
            raise CheckpointDamaged(f"checkpoint {path} is damaged (its bytes do not match its "
                                    f"sha256 checksum); {kept}")
        payload = torch.load(io.BytesIO(body), map_location="cpu", weights_only=False)
    elif data.startswith(b"PK"):  # a bare torch.save zip from before checksums
        try:
            payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)
        except Exception as error:  # noqa: BLE001 - torch raises many types for a damaged file
            raise CheckpointDamaged(f"checkpoint {path} is corrupt or unreadable "
                                    f"({type(error).__name__}); {kept}") from None
        warnings.warn(f"checkpoint {path} predates checksums; resuming from it unverified",
                      UnverifiedCheckpointWarning, stacklevel=2)
    else:
        raise CheckpointDamaged(f"checkpoint {path} is corrupt or unreadable (not a fwbook "
                                f"checkpoint); {kept}")
    if not isinstance(payload, dict) or not str(payload.get("format", "")).startswith(
            "fwbook-checkpoint"):
        raise CheckpointDamaged(f"{path} is not a fwbook checkpoint; {kept}")
    return payload


def load_checkpoint(path: str | os.PathLike, config) -> dict:
    """Read and verify a checkpoint written by ``fwbook.core.train.train`` for ``config``.

    Args:
        config: the run's ``TrainConfig``; the checkpoint's stored ``config`` must equal
            ``config.to_dict()``.
    Raises:
        ValueError (:class:`CheckpointDamaged` for damage): the file is damaged (checksum),
            not a fwbook checkpoint, unreadable, or for another configuration. The file is
            never deleted.
    """
    path = Path(path)
    try:
        payload = read_checkpoint(path)
    except OSError as error:
        raise ValueError(f"checkpoint {path} cannot be read ({error.strerror or error})") from None
    except CheckpointDamaged:
        raise
    except Exception as error:  # noqa: BLE001 - torch.load of verified bytes should not fail
        raise ValueError(f"checkpoint {path} is corrupt or unreadable "
                         f"({type(error).__name__}); it is kept for inspection: move it away "
                         f"to start the run afresh") from None
    if payload["config"] != config.to_dict():
        raise ValueError(f"checkpoint {path} belongs to a different configuration; "
                         f"move it away or choose another output path")
    return payload


class DeferredInterrupt:
    """While active (main thread only), Ctrl-C sets ``requested`` instead of raising, so a
    training loop stops between two updates, where a checkpoint can hold the run; a second
    Ctrl-C raises at once."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False
