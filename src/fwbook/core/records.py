"""THE run-record format: one JSON file per finished run, with everything needed to trust a number.

Every run that produces a published number writes one record (associative retrieval through
``fwbook.core.train.train``; the Catch agents of ``fwbook.rl`` likewise). A record is a JSON
object with at least these fields:

* ``schema``: :data:`RECORD_SCHEMA`;
* ``config``: the configuration, exactly ``config.to_dict()`` (what :func:`config_hash` hashes);
* ``config_hash``: ``config_hash(config)``; a record is reused only when this matches exactly;
* ``seed``; ``profile`` (smoke / quick / paper, or None);
* ``status``: "completed", or "diverged" with a ``message``;
* ``commit``, ``versions``, ``device``, ``host``: :func:`provenance` (which code ran, where);
* ``started_at`` (:func:`utc_now` when the run began) and ``wall_s`` (seconds it took);
* ``curves``: the learning curves, a dict of equally long lists;

plus the task's own results (retrieval: ``test_error``, ``test_loss``, ``final_val_error``,
``steps_done``, ``training_step``; Catch: its catch rates). The stable interface:

* ``config_hash(config) -> str``: ``config`` is a configuration object with ``to_dict()`` or
  the dict a record stores; 16 hex digits of the SHA-256 of its compact, key-sorted JSON.
* ``provenance(device, code_paths=None) -> dict``: ``commit`` (``-dirty`` when the tracked
  files, or only ``code_paths``, differ from it), ``versions``, ``device``, ``host``.
* ``write_record(path, record) -> Path``: written atomically (a temporary file renamed into
  place), so a killed run never leaves half a record; the path comes first.
* ``read_record(path) -> dict``: raises ValueError for a file that is not a run record.
* ``load_records(directory, **match) -> list[dict]``: every record below a folder.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import platform
import subprocess
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

RECORD_SCHEMA = 1
REPO_ROOT = Path(__file__).resolve().parents[3]


def git_commit(root: Path = REPO_ROOT, paths: list[str] | None = None) -> str:
    """The current commit, with ``-dirty`` appended when tracked files differ from it.

    Args:
        root: the repository.
        paths: only these files count for ``-dirty`` (the code a run used); None: all.
    """
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                *(paths or [])], cwd=root, capture_output=True, text=True,
                               timeout=10).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_versions() -> dict[str, str]:
    import numpy
    import torch

    from fwbook import __version__

    return {"python": platform.python_version(), "torch": torch.__version__,
            "numpy": numpy.__version__, "fwbook": __version__}


def device_description(device: Any) -> dict[str, Any]:
    """Type and human-readable name of a torch device, plus the host's CPU count."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
    return {"type": device.type, "name": name, "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads()}


def provenance(device: Any, code_paths: list[str] | None = None) -> dict[str, Any]:
    """Which code ran where: ``{"commit", "versions", "device", "host"}`` of a record.

    Args:
        device: the torch device (or its name) the run used.
        code_paths: files (relative to the repository) whose changes mark the commit
            ``-dirty``; None: every tracked file.
    """
    return {"commit": git_commit(REPO_ROOT, code_paths), "versions": package_versions(),
            "device": device_description(device), "host": platform.node()}


def utc_now() -> str:
    """The time stamp of a record (``started_at``): UTC, ISO 8601, to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def config_hash(config: Any) -> str:
    """A short stable hash of a configuration: 16 hex digits of SHA-256.

    Args:
        config: an object with ``to_dict()`` (``TrainConfig``, ...) or the dict a record
            stores as ``config``; key order does not matter.
    """
    payload = config.to_dict() if hasattr(config, "to_dict") else config
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a uniquely named temporary file in the same folder.

    The temporary file (``.<name>.<random>``) is flushed to disk and renamed over ``path``, so
    a reader sees the old file or the new one, never half of one; two writers never share a
    temporary name. On any failure (disk full, a signal) the temporary file is removed and the
    error re-raised; ``path`` is then untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)  # mkstemp makes 0600; records are for everyone to read
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_failure(path: str | os.PathLike, error: OSError) -> str:
    """Why writing ``path`` failed, in words: "could not write P: the disk is full (...)"."""
    reason = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is full",
              errno.EFBIG: "the file-size limit is reached"}.get(error.errno,
                                                                  "it could not be written")
    return f"could not write {path}: {reason} ({error.strerror or error})"


def write_json_atomic(path: str | os.PathLike, payload: dict | list) -> Path:
    """Write JSON to ``path`` atomically (see :func:`write_bytes_atomic`)."""
    text = json.dumps(payload, indent=1, sort_keys=False) + "\n"
    return write_bytes_atomic(path, text.encode())


def write_record(path: str | os.PathLike, record: dict) -> Path:
    """Write a run record as JSON at ``path``, atomically; returns the path."""
    return write_json_atomic(path, record)


def read_record(path: str | os.PathLike) -> dict:
    """The run record at ``path``.

    Raises:
        ValueError: the file is not JSON text, truncated, or has no ``config`` field.
    """
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"run record {path} is not valid JSON ({error}); it may be "
                         f"truncated") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a fwbook run record (binary, not JSON text)") from None
    if not isinstance(record, dict) or "config" not in record:
        raise ValueError(f"{path} is not a fwbook run record (no 'config' field)")
    return record


def load_records(directory: str | os.PathLike, **match: Any) -> list[dict]:
    """All records under ``directory`` (recursively) whose top-level fields equal ``match``.

    Each returned record gains a ``path`` field (relative to the repository when possible).
    """
    directory = Path(directory)
    records = []
    for path in sorted(directory.rglob("*.json")):
        try:
            record = read_record(path)
        except ValueError:
            continue
        if all(record.get(key) == value for key, value in match.items()):
            try:
                record["path"] = str(path.resolve().relative_to(REPO_ROOT))
            except ValueError:
                record["path"] = str(path)
            records.append(record)
    return records


def thin_curve(curves: dict[str, list], max_points: int = 200) -> dict[str, list]:
    """Keep at most ``max_points`` evenly spaced points of every curve (always the last)."""
    length = len(curves.get("step", []))
    if length <= max_points:
        return curves
    keep = sorted({round(i * (length - 1) / (max_points - 1)) for i in range(max_points)})
    return {name: [values[i] for i in keep] for name, values in curves.items()}
