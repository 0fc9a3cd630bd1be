"""Sweeps: many training runs, in parallel worker processes, resumable, one record per run.

``run_sweep({name: config}, directory)`` trains every configuration whose record
``directory/<name>.json`` does not exist yet and returns all the records, in the order given.

* A finished run is never redone: its record is read back, provided its ``config_hash``
  matches the configuration asked for. A record for the same name with another configuration
  is an error (:class:`SweepConfigMismatch`), never silently reused or overwritten.
* An interrupted sweep picks up where it stopped: every run checkpoints at each validation pass
  (``train(..., checkpoint=...)``), so a half-done run resumes from its last checkpoint.
* Workers are separate processes (default: one per CPU core), each with one torch thread.
* Progress: a bar over runs (done / total) and one line per finished run with its test error
  and wall time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path
from typing import Callable, Optional

from fwbook.core.locks import RunLocked, acquire_lock, release_lock  # noqa: F401 - RunLocked re-exported
from fwbook.core.records import REPO_ROOT, config_hash, read_record, write_record
from fwbook.core.train import TrainConfig, train

RUN_NAME_CHARACTERS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


class SweepConfigMismatch(ValueError):
    """A record exists for a run name but was made with another configuration."""


class SweepFailed(RuntimeError):
    """Some runs raised (not diverged: raised). The others finished; their records are written."""


def record_path(directory: str | os.PathLike, name: str) -> Path:
    return Path(directory) / f"{name}.json"


def default_checkpoint_dir(directory: str | os.PathLike) -> Path:
    """Where a sweep's checkpoints live: ``checkpoints/<directory>`` (git-ignored) for a folder
    inside the repository, else a hidden ``.checkpoints`` folder inside ``directory``."""
    directory = Path(directory).resolve()
    try:
        return REPO_ROOT / "checkpoints" / directory.relative_to(REPO_ROOT)
    except ValueError:
        return directory / ".checkpoints"


def checkpoint_path(checkpoint_dir: str | os.PathLike, name: str, config: TrainConfig) -> Path:
    """One checkpoint per (name, configuration): a changed config never meets an old checkpoint."""
    return Path(checkpoint_dir) / f"{name}-{config_hash(config.to_dict())}.ckpt.pt"


def check_names(configs: dict[str, TrainConfig]) -> None:
    for name, config in configs.items():
        if not name or set(name) - RUN_NAME_CHARACTERS or name.startswith("."):
            raise ValueError(f"run name {name!r} must be letters, digits, '_', '-' or '.' "
                             f"(it becomes the record's file name)")
        if not isinstance(config, TrainConfig):
            raise TypeError(f"run {name!r}: expected a TrainConfig, got {type(config).__name__}")


def existing_record(directory: str | os.PathLike, name: str, config: TrainConfig
                    ) -> Optional[dict]:
    """The finished record of run ``name`` if there is one for exactly ``config``, else None.

    Raises:
        SweepConfigMismatch: a record for ``name`` exists but with another configuration.
    """
    path = record_path(directory, name)
    if not path.exists():
        return None
    record = read_record(path)
    wanted = config_hash(config.to_dict())
    found = record.get("config_hash") or config_hash(record["config"])
    if found != wanted:
        differences = config_differences(record["config"], config.to_dict())
        raise SweepConfigMismatch(
            f"{path} holds run {name!r} with another configuration (config_hash {found}, "
            f"wanted {wanted}; differs in {differences}). Move or delete that record, or give "
            f"this configuration another name; a record is never silently reused or overwritten.")
    return record


def config_differences(old: dict, new: dict, prefix: str = "") -> str:
    names = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            inner = config_differences(a, b, f"{prefix}{key}.")
            if inner:
                names.append(inner)
        elif a != b:
            names.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return ", ".join(names)


def _run_one(name: str, config_dict: dict, directory: str, checkpoint_file: str,
             profile: Optional[str], device: str, step: str = "auto") -> dict:
    """Train one run (in a worker process) and write its record; returns the record.

    A lock file beside the checkpoint keeps a second live sweep process off the same run.
    """
    import torch

    torch.set_num_threads(1)
    config = TrainConfig.from_dict(config_dict)
    lock = Path(f"{checkpoint_file}.lock")
    acquire_lock(lock, "this run")
    try:
        existing = existing_record(directory, name, config)
        if existing is not None:  # finished by another process since this sweep started
            return {"name": name, **existing}
        record = train(config, output=None, device=device, checkpoint=checkpoint_file,
                       quiet=True, profile=profile, step=step)
        record = {"name": name, **record}
        write_record(record_path(directory, name), record)
        return record
    finally:
        release_lock(lock)


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)


def describe_run(name: str, record: dict) -> str:
    minutes = record.get("wall_s", 0.0) / 60
    if record.get("status") != "completed":
        return f"{name}: {record.get('status')} ({record.get('message', '')}) after {minutes:.1f} min"
    return (f"{name}: test error {100 * record['test_error']:.2f}% "
            f"(val {100 * (record.get('final_val_error') or 0):.2f}%) in {minutes:.1f} min")


def finished_and_todo(directory: Path, configs: dict[str, TrainConfig]
                      ) -> tuple[dict[str, dict], list[str]]:
    """The runs of ``configs`` that already have a matching record in ``directory`` (name ->
    record) and the names still to train, in order.

    Raises:
        SweepConfigMismatch: a record of the same name holds another configuration.
    """
    records: dict[str, dict] = {}
    for name, config in configs.items():
        record = existing_record(directory, name, config)
        if record is not None:
            records[name] = {"name": name, **record}
    return records, [name for name in configs if name not in records]


def run_sweep(configs: dict[str, TrainConfig], directory: str | os.PathLike,
              workers: Optional[int] = None, profile: Optional[str] = None, quiet: bool = False,
              device: str = "cpu", checkpoint_dir: str | os.PathLike | None = None,
              on_record: Optional[Callable[[str, dict, Path], None]] = None,
              step: str = "auto") -> list[dict]:
    """Train every configuration that has no record yet; return all records in ``configs`` order.

    Args:
        configs: run name -> configuration; the record is ``directory/<name>.json``.
        directory: where records go (created).
        workers: worker processes; default ``os.cpu_count()``; 1 trains in this process.
            Each worker uses one torch thread.
        profile: stored in each new record's ``profile`` field.
        quiet: no progress bar and no per-run lines.
        device: torch device of every run ("cpu" by default: sweeps are parallel over cores).
        checkpoint_dir: where half-done runs keep their checkpoints; default
            :func:`default_checkpoint_dir`.
        on_record: called as ``on_record(name, record, path)`` in this process after each new
            record is written (the CLI commits it to git there).
        step: every run's training step ("auto", "eager" or "compiled"; see
            :func:`fwbook.core.train.train`).
    Returns:
        one record per configuration (each with ``name``; read back or newly trained).
    Raises:
        SweepConfigMismatch: before anything is trained, if a record for one of the names
            exists with another configuration.
        SweepFailed: after every other run finished, if some runs raised an exception.
    """
    check_names(configs)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else default_checkpoint_dir(directory)
    workers = max(1, int(workers or os.cpu_count() or 1))

    records, todo = finished_and_todo(directory, configs)  # every mismatch before any training

    progress = None
    if not quiet:
        from tqdm.auto import tqdm

        progress = tqdm(total=len(configs), initial=len(records), unit="run", dynamic_ncols=True,
                        desc=f"sweep {directory.name}")
        if records:
            progress.write(f"{len(records)} of {len(configs)} runs already have records in "
                           f"{directory}; {len(todo)} to train")

    def finished(name: str, record: dict) -> None:
        records[name] = record
        if progress is not None:
            progress.write(describe_run(name, record))
            progress.update(1)
        if on_record is not None:
            on_record(name, record, record_path(directory, name))

    failures: dict[str, str] = {}

    def job(name: str) -> tuple:
        config = configs[name]
        return (name, config.to_dict(), str(directory),
                str(checkpoint_path(checkpoint_dir, name, config)), profile, device, step)

    try:
        if workers == 1 or len(todo) <= 1:
            import torch

            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                for name in todo:
                    try:
                        finished(name, _run_one(*job(name)))
                    except (SweepConfigMismatch, KeyboardInterrupt):
                        raise
                    except Exception as error:  # noqa: BLE001 - reported, others go on
                        failures[name] = f"{type(error).__name__}: {error}"
            finally:
                torch.set_num_threads(threads)
        else:
            with ProcessPoolExecutor(max_workers=min(workers, len(todo)),
                                     mp_context=get_context("spawn"),
                                     initializer=_worker_init) as pool:
                pending = {pool.submit(_run_one, *job(name)): name for name in todo}
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        name = pending.pop(future)
                        try:
                            finished(name, future.result())
                        except Exception as error:  # noqa: BLE001
                            failures[name] = f"{type(error).__name__}: {error}"
                            if progress is not None:
                                progress.write(f"{name}: FAILED ({failures[name]})")
    finally:
        if progress is not None:
            progress.close()
    if failures:
        lines = "; ".join(f"{name}: {message}" for name, message in failures.items())
        raise SweepFailed(f"{len(failures)} of {len(configs)} runs failed ({lines}); the other "
                          f"records are written, run the sweep again to retry")
    return [records[name] for name in configs]


def sweep_status(configs: dict[str, TrainConfig], directory: str | os.PathLike) -> dict:
    """How far a sweep is: ``{"done": [...], "todo": [...], "wall_s": total of done runs}``."""
    done, todo, wall = [], [], 0.0
    for name, config in configs.items():
        record = existing_record(directory, name, config)
        if record is None:
            todo.append(name)
        else:
            done.append(name)
            wall += float(record.get("wall_s") or 0.0)
    return {"done": done, "todo": todo, "wall_s": wall}


def checkpoint_progress(checkpoint_dir: str | os.PathLike, name: str, config: TrainConfig
                        ) -> Optional[int]:
    """The update a half-done run's checkpoint has reached, or None when there is none."""
    path = checkpoint_path(checkpoint_dir, name, config)
    if not path.exists():
        return None
    import warnings

    from fwbook.core.checkpoints import read_checkpoint

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return int(read_checkpoint(path)["step"])
    except Exception:  # noqa: BLE001 - damaged: train() reports that itself
        return None


def git_commit_record(path: str | os.PathLike, message: str, retries: int = 30,
                      root: str | os.PathLike = REPO_ROOT) -> bool:
    """Commit one record file alone (``git add`` + ``git commit -- path``), retrying while
    another engineer's git holds the index lock. Returns whether a commit was made."""
    path = Path(path).resolve()
    for attempt in range(retries):
        add = subprocess.run(["git", "add", "--", str(path)], cwd=root,
                             capture_output=True, text=True)
        if add.returncode == 0:
            commit = subprocess.run(["git", "commit", "-q", "-m", message, "--", str(path)],
                                    cwd=root, capture_output=True, text=True)
            if commit.returncode == 0:
                return True
            text = commit.stderr + commit.stdout
            if "index.lock" not in text:
                print(f"git commit of {path} failed: {text.strip()}", file=sys.stderr)
                return False
        elif "index.lock" not in add.stderr:
            print(f"git add of {path} failed: {add.stderr.strip()}", file=sys.stderr)
            return False
        time.sleep(2 + attempt)
    print(f"git index stayed locked; {path} not committed", file=sys.stderr)
    return False
