"""Sweeps on Ray: every training run a Ray task, on this machine or on a cluster.

``run_sweep_ray({name: config}, directory)`` is :func:`fwbook.experiments.sweep.run_sweep` with Ray in
place of the process pool, and the same semantics:

* A finished run is never redone, and a record of another configuration is refused
  (:class:`fwbook.experiments.sweep.SweepConfigMismatch`) before anything is trained.
* A run held elsewhere is not started twice: the driver (this process) claims the run's lock
  file, the one the local backend's workers use, before it submits the task, and keeps it until
  the record is written. A run another live sweep holds is reported as failed.
* Records reach the results folder without a shared file system: the task *returns* the
  record and the driver writes it, atomically (:func:`fwbook.core.records.write_record`).
* Progress: the local backend's bar and one line per finished run; a failed run (an exception,
  a Ray worker that died, a node lost) is reported with its reason and the others go on;
  :class:`fwbook.experiments.sweep.SweepFailed` is raised at the end, as locally.

Where Ray runs: with no address, an embedded Ray on this machine (``ray.init`` on 127.0.0.1,
no dashboard, no usage statistics), torn down afterwards; with ``address="HOST:PORT"`` (or the
``RAY_ADDRESS`` environment variable) the sweep joins an existing cluster, whose head was
started with ``ray start --head --port PORT``. The driver must run on a node of that cluster
(the head, usually); every node needs this package at the same commit (each record says which
commit and host trained it).

Resources: each run asks Ray for one CPU (``cpus_per_run``) and trains with that many torch
threads; a run whose device is CUDA also asks for one GPU, so Ray places it on a GPU node and
sets ``CUDA_VISIBLE_DEVICES`` for it. Checkpoints: a task on the driver's node checkpoints into
the sweep's checkpoint folder, so an interrupted run resumes as it does locally; a task on
another node checkpoints into that node's temporary folder (no shared file system assumed),
and resumes from there when it is scheduled on that node again.

Nothing else in ``fwbook`` imports Ray: this module imports it inside its functions.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
from pathlib import Path
from typing import Callable, Optional

from fwbook.core.locks import RunLocked, acquire_lock, release_lock
from fwbook.core.records import write_record
from fwbook.experiments.sweep import (SweepConfigMismatch, SweepFailed, check_names, checkpoint_path,
                                      default_checkpoint_dir, describe_run, existing_record,
                                      finished_and_todo,
                                      record_path)
from fwbook.core.train import TrainConfig

ADDRESS_VARIABLE = "RAY_ADDRESS"
# Memory the embedded Ray reserves for its object store: records are a few kB each.
EMBEDDED_OBJECT_STORE_BYTES = 128 * 1024 ** 2
CONNECT_TIMEOUT_S = 5.0
# "0" keeps a Ray on one machine: every node and driver address stays 127.0.0.1. (Ray named it
# for the platforms where that is the default; on Linux it only changes which address is used.)
SINGLE_MACHINE_VARIABLE = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
AUTH_MODE_VARIABLE = "RAY_AUTH_MODE"


class RayUnreachable(RuntimeError):
    """No Ray cluster answers at the address given (one line, for the command line)."""


def parse_address(text: str) -> str:
    """Check a Ray cluster address ``HOST:PORT`` (or Ray's ``auto``); returns it unchanged.

    Raises:
        ValueError: anything else (``ray://`` client addresses need Ray Client, not installed).
    """
    text = text.strip()
    if text == "auto":
        return text
    host, colon, port = text.rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536 \
            or "/" in host:
        raise ValueError(f"expected a Ray cluster address HOST:PORT (the head's "
                         f"`ray start --head --port PORT`), got {text!r}")
    return text


def resolve_address(address: Optional[str]) -> Optional[str]:
    """``address``, else ``$RAY_ADDRESS``, else None (an embedded Ray on this machine)."""
    address = address or os.environ.get(ADDRESS_VARIABLE) or None
    return parse_address(address) if address else None


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Open (and close) a TCP connection to the cluster's head before Ray tries to.

    Ray itself would retry for a minute and log pages; this answers in ``timeout`` seconds.

    Raises:
        RayUnreachable: nothing accepts connections at ``address``.
    """
    if address == "auto":
        return
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise RayUnreachable(
            f"no Ray cluster at {address} ({reason}); start its head with `ray start --head "
            f"--port {port}` there, or leave out --address (and {ADDRESS_VARIABLE}) to run Ray "
            f"on this machine") from None


def connect(address: Optional[str], cpus: Optional[int] = None) -> dict:
    """Start an embedded Ray (``address`` None) or join the cluster at ``address``.

    Args:
        address: ``HOST:PORT``, ``auto`` or None (embedded, on 127.0.0.1).
        cpus: CPUs the embedded Ray may use (default: all); ignored for a cluster.
    Returns:
        ``{"address", "embedded", "nodes", "cpus", "gpus"}`` of the Ray now connected.
    Raises:
        RayUnreachable: no cluster at ``address``.
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage reports, unless asked
    if address is None:
        # One machine, so loopback only: without this Ray swaps 127.0.0.1 for the address of
        # the machine's network interface. Read when ray is first imported.
        os.environ.setdefault(SINGLE_MACHINE_VARIABLE, "0")
    else:
        check_reachable(address)
    import ray

    settings = dict(include_dashboard=False, logging_level=logging.ERROR,
                    configure_logging=True)
    try:
        if address is None:
            ray.init(address="local", num_cpus=cpus or os.cpu_count() or 1,
                     object_store_memory=EMBEDDED_OBJECT_STORE_BYTES,
                     _node_ip_address="127.0.0.1", **settings)
        else:
            ray.init(address=address, **settings)
    except Exception as error:  # noqa: BLE001 - Ray's many ways to fail to connect: one line
        ray.shutdown()
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        where = f"at {address}" if address else "on this machine"
        hint = ""
        if address is not None and not os.environ.get(AUTH_MODE_VARIABLE):
            hint = (f" (a cluster with token authentication also needs {AUTH_MODE_VARIABLE}"
                    f"=token here and its token in ~/.ray/auth_token or RAY_AUTH_TOKEN)")
        raise RayUnreachable(f"could not start or join Ray {where}: {first_line}{hint}") \
            from None
    resources = ray.cluster_resources()
    return {"address": address or "embedded", "embedded": address is None,
            "nodes": sum(1 for node in ray.nodes() if node.get("Alive")),
            "cpus": int(resources.get("CPU", 0)), "gpus": int(resources.get("GPU", 0))}


def train_task(name: str, config_dict: dict, checkpoint_file: str, driver_node: str,
               profile: Optional[str], device: str, step: str, threads: int) -> dict:
    """The body of one Ray task: train one run and return its record (the driver writes it).

    Args:
        name: the run name (stored in the record).
        config_dict: ``TrainConfig.to_dict()`` of the run.
        checkpoint_file: the checkpoint in the driver's checkpoint folder; used when this task
            runs on the driver's node, else the same file name in this node's temporary folder.
        driver_node: the Ray node id of the driver.
        profile, device, step: as for :func:`fwbook.core.train.train`.
        threads: torch threads (the CPUs Ray gave this task).
    Returns:
        the run record with ``name``.
    """
    import ray
    import torch

    from fwbook.core.train import train

    torch.set_num_threads(threads)
    config = TrainConfig.from_dict(config_dict)
    checkpoint = Path(checkpoint_file)
    if ray.get_runtime_context().get_node_id() != driver_node:
        checkpoint = Path(tempfile.gettempdir()) / "fwbook-checkpoints" / checkpoint.name
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    record = train(config, output=None, device=device, checkpoint=checkpoint, quiet=True,
                   profile=profile, step=step)
    return {"name": name, **record}


def describe_failure(error: BaseException) -> str:
    """One line for a run whose task failed: the run's own exception, or what Ray lost."""
    import ray.exceptions as ray_errors

    if isinstance(error, ray_errors.RayTaskError):
        cause = error.cause if isinstance(error.cause, BaseException) else None
        if cause is not None:
            return f"{type(cause).__name__}: {cause}"
        return str(error).strip().splitlines()[-1]
    if isinstance(error, ray_errors.WorkerCrashedError):
        return ("the Ray worker training it died (WorkerCrashedError: killed, out of memory or "
                "crashed); run the sweep again to train it, from its checkpoint if one was written")
    if isinstance(error, ray_errors.NodeDiedError):
        return ("the Ray node training it left the cluster (NodeDiedError); run the sweep again "
                "to train it")
    if isinstance(error, ray_errors.OutOfMemoryError):
        return "Ray stopped it for lack of memory (OutOfMemoryError); run it with fewer workers"
    if isinstance(error, ray_errors.TaskCancelledError):
        return "cancelled (TaskCancelledError)"
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"


def run_sweep_ray(configs: dict[str, TrainConfig], directory: str | os.PathLike,
                  address: Optional[str] = None, workers: Optional[int] = None,
                  profile: Optional[str] = None, quiet: bool = False, device: str = "cpu",
                  checkpoint_dir: str | os.PathLike | None = None,
                  on_record: Optional[Callable[[str, dict, Path], None]] = None,
                  step: str = "auto", cpus_per_run: int = 1) -> list[dict]:
    """Train every configuration that has no record yet as a Ray task; return all records.

    Args:
        configs: run name -> configuration; the record is ``directory/<name>.json``.
        directory: where the driver writes records (created).
        address: a Ray cluster ``HOST:PORT`` (or ``auto``); None: ``$RAY_ADDRESS`` if set, else
            an embedded Ray on this machine, stopped afterwards.
        workers: runs in flight at once; default: as many as the Ray has CPUs (GPUs for CUDA
            runs) divided by ``cpus_per_run``. The embedded Ray gets ``workers * cpus_per_run``
            CPUs (default: all of this machine's).
        profile, quiet, checkpoint_dir, on_record, step: as for :func:`fwbook.experiments.sweep.run_sweep`.
        device: "cpu" (default), "cuda" (one GPU per run) or "auto" (CUDA when the Ray has GPUs).
        cpus_per_run: CPUs Ray reserves for each run, and its torch threads.
    Returns:
        one record per configuration (each with ``name``), in ``configs`` order.
    Raises:
        SweepConfigMismatch: before anything is trained (and before Ray starts).
        RayUnreachable: no Ray cluster at the address; nothing trained.
        SweepFailed: after every other run finished, if some runs failed.
    """
    check_names(configs)
    if device not in ("cpu", "cuda", "auto"):
        raise ValueError(f"device must be cpu, cuda or auto for a Ray sweep, got {device!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else default_checkpoint_dir(directory)
    address = resolve_address(address)

    records, todo = finished_and_todo(directory, configs)  # every mismatch before Ray starts
    if not todo:
        if not quiet:
            print(f"all {len(configs)} runs already have records in {directory}; nothing to train")
        return [records[name] for name in configs]

    cluster = connect(address, None if workers is None else workers * cpus_per_run)
    import ray

    progress = None
    failures: dict[str, str] = {}
    locks: dict[str, Path] = {}
    pending: dict = {}  # ObjectRef -> run name
    try:
        if device == "auto":
            device = "cuda" if cluster["gpus"] else "cpu"
        per_run_gpus = 1 if device == "cuda" else 0
        if per_run_gpus and not cluster["gpus"]:
            raise RayUnreachable(f"the runs ask for CUDA but the Ray at {cluster['address']} "
                                 f"has no GPU")
        slots = cluster["gpus"] if per_run_gpus else cluster["cpus"] // cpus_per_run
        in_flight = max(1, workers or slots or 1)
        remote = ray.remote(train_task).options(num_cpus=cpus_per_run, num_gpus=per_run_gpus,
                                                max_retries=0)
        driver_node = ray.get_runtime_context().get_node_id()

        if not quiet:
            from tqdm.auto import tqdm

            progress = tqdm(total=len(configs), initial=len(records), unit="run",
                            dynamic_ncols=True, desc=f"sweep {directory.name} (ray)")
            where = ("embedded Ray on this machine" if cluster["embedded"]
                     else f"Ray cluster at {cluster['address']}")
            progress.write(f"{where}: {cluster['nodes']} node(s), {cluster['cpus']} CPU(s), "
                           f"{cluster['gpus']} GPU(s); {len(todo)} of {len(configs)} runs to "
                           f"train, up to {in_flight} at once, on {device}")

        def failed(name: str, message: str) -> None:
            failures[name] = message
            if progress is not None:
                progress.write(f"{name}: FAILED ({message})")

        def finished(name: str, record: dict, write: bool) -> None:
            path = record_path(directory, name)
            if write:
                write_record(path, record)
            records[name] = record
            if progress is not None:
                progress.write(describe_run(name, record))
                progress.update(1)
            if on_record is not None and write:
                on_record(name, record, path)

        def release(name: str) -> None:
            lock = locks.pop(name, None)
            if lock is not None:
                release_lock(lock)

        queue = list(todo)
        while queue or pending:
            while queue and len(pending) < in_flight:
                name = queue.pop(0)
                config = configs[name]
                checkpoint = checkpoint_path(checkpoint_dir, name, config)
                lock = Path(f"{checkpoint}.lock")
                try:
                    acquire_lock(lock)
                except RunLocked as error:
                    failed(name, f"RunLocked: {error}")
                    continue
                locks[name] = lock
                existing = existing_record(directory, name, config)
                if existing is not None:  # finished by another sweep since this one started
                    release(name)
                    finished(name, {"name": name, **existing}, write=False)
                    continue
                reference = remote.remote(name, config.to_dict(), str(checkpoint), driver_node,
                                          profile, device, step, cpus_per_run)
                pending[reference] = name
            done, _ = ray.wait(list(pending), num_returns=1)
            for reference in done:
                name = pending.pop(reference)
                try:
                    record = ray.get(reference)
                except ray.exceptions.RayError as error:
                    failed(name, describe_failure(error))
                else:
                    finished(name, record, write=True)
                finally:
                    release(name)
    finally:
        for reference in pending:  # interrupted: stop the tasks still running
            ray.cancel(reference, force=True)
        for name in list(locks):
            release_lock(Path(locks.pop(name)))
        if progress is not None:
            progress.close()
        ray.shutdown()  # stops an embedded Ray; from a cluster it only disconnects
    if failures:
        lines = "; ".join(f"{name}: {message}" for name, message in failures.items())
        raise SweepFailed(f"{len(failures)} of {len(configs)} runs failed ({lines}); the other "
                          f"records are written, run the sweep again to retry")
    return [records[name] for name in configs]


__all__ = ["RayUnreachable", "SweepConfigMismatch", "SweepFailed", "connect", "parse_address",
           "resolve_address", "run_sweep_ray", "train_task"]
