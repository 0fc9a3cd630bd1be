"""Training on associative retrieval: Adam, gradient clipping, validation, test, run records.

``train(config)`` runs one configuration and returns its run record (a dict that is also
written as JSON when ``output`` is given). Runs are deterministic on the CPU: the same
configuration and seed give identical curves. A run that writes checkpoints can be killed and
resumed and ends with the same record (bar wall time) as one never interrupted.
"""

from __future__ import annotations

import errno
import math
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F

from fwbook.core.data import PAPER_NUM_PAIRS, PAPER_SPLIT_SIZES, RetrievalSplit, make_splits
from fwbook.core.models import ModelConfig, build_model
from fwbook.core.checkpoints import CheckpointDamaged, read_checkpoint, save_checkpoint
from fwbook.core.records import RECORD_SCHEMA, config_hash, provenance, thin_curve, write_record

LR_SCHEDULES = ("constant", "cosine")
MAX_SEED = 2**32 - 1  # seeds are offset (data: seed * 1000 + split) and must stay in 64 bits
# Cross-entropy over 37 classes starts near ln 37 = 3.6; a loss above this means the run blew up.
DIVERGED_LOSS = 1e3
# Fields added to TrainConfig after records were committed, with the default that reproduces
# the runs of those records; at that default a field is left out of ``to_dict()`` (and so of
# ``config_hash``), so existing records keep their hashes (tests/test_records_hash.py).
LATER_TRAIN_FIELDS = {"patience": 0, "min_steps": 0}


@dataclass(frozen=True)
class TrainConfig:
    """One training run. Defaults are the CLI's default recipe (see README for its figures)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    num_pairs: int = PAPER_NUM_PAIRS  # K key-value pairs per sequence
    num_train: int = PAPER_SPLIT_SIZES[0]
    num_validation: int = PAPER_SPLIT_SIZES[1]
    num_test: int = PAPER_SPLIT_SIZES[2]
    data_seed: int = 0  # the data set; the same for every run unless changed
    seed: int = 0  # initialisation and mini-batch order
    lr: float = 1e-3  # Adam step size; the paper used 1e-4 (see the deviations page)
    lr_schedule: str = "constant"  # "constant" or "cosine" (decay to 0 over `steps`)
    batch_size: int = 128  # paper: mini-batches of 128
    steps: int = 40_000  # parameter updates (the paper profile's budget)
    clip_norm: Optional[float] = 5.0  # clip the global gradient norm; None: no clipping
    eval_every: int = 1_000  # updates between validation passes (and curve points)
    checkpoint_every: int = 0  # updates between checkpoints; 0: only when a checkpoint path is set, at every eval
    # always use the compiled step (fwbook.core.steps), tested equal to the plain one; False leaves
    # the choice to train(step="auto"), which compiles long CPU runs (kept for old records)
    fast_path: bool = False
    # Early stopping on validation error: stop once `patience` updates have passed without a
    # new lowest validation error (never before `min_steps`), then restore the parameters of
    # that lowest point before the test set is read. 0: train for exactly `steps` updates and
    # keep the last parameters (every record before the fair protocol). `steps` is the cap.
    patience: int = 0
    min_steps: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.model, dict):
            object.__setattr__(self, "model", ModelConfig(**self.model))
        positive_ints = ("num_train", "num_validation", "num_test", "batch_size", "steps",
                         "eval_every")
        for name in positive_ints:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("seed", "data_seed", "checkpoint_every", "patience", "min_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        for name in ("seed", "data_seed"):  # torch generators take 64-bit seeds, offset below
            if getattr(self, name) > MAX_SEED:
                raise ValueError(f"{name} must be an integer from 0 to {MAX_SEED}, "
                                 f"got {getattr(self, name)}")
        if self.batch_size > self.num_train:
            raise ValueError(f"batch_size (--batch) {self.batch_size} is larger than num_train "
                             f"(--train-size) {self.num_train}: a mini-batch cannot hold more "
                             f"sequences than the training set")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}; "
                             f"got {self.lr_schedule!r}")
        if self.clip_norm is not None and not self.clip_norm > 0:
            raise ValueError(f"clip_norm must be > 0 or None (no clipping), got {self.clip_norm!r}")
        if not 1 <= self.num_pairs <= 26:
            raise ValueError(f"num_pairs (K) must be from 1 to 26, got {self.num_pairs!r}")
        if self.patience and self.patience % self.eval_every:
            raise ValueError(f"patience ({self.patience}) must be a multiple of eval_every "
                             f"({self.eval_every}): validation error is measured only there")

    def to_dict(self) -> dict:
        """All fields (the model's through ``ModelConfig.to_dict``), except those of
        :data:`LATER_TRAIN_FIELDS` still at their default: the dict ``config_hash`` hashes."""
        payload = asdict(self)
        payload["model"] = self.model.to_dict()
        for name, default in LATER_TRAIN_FIELDS.items():
            if payload[name] == default:
                del payload[name]
        return payload

    @classmethod
    def from_dict(cls, payload: dict) -> "TrainConfig":
        payload = dict(payload)
        payload["model"] = ModelConfig(**payload["model"])
        return cls(**payload)


class TrainingDiverged(RuntimeError):
    """Raised inside the loop when the loss stops being finite; args: (message,)."""


def check_interval(losses: torch.Tensor, step: int, last_finite: dict
                   ) -> tuple[dict, Optional[str]]:
    """Look at the per-update losses since the last evaluation for divergence.

    Args:
        losses: (interval,) CPU losses of updates ``step - interval + 1 .. step``.
        step: the update just done.
        last_finite: ``{"step", "loss"}`` of the last finite loss seen before this interval.
    Returns:
        the updated ``last_finite`` and, if an update's loss is not finite or above
        ``DIVERGED_LOSS``, the message naming that update and the last finite loss (else None).
    """
    interval = losses.shape[0]
    bad = ~torch.isfinite(losses) | (losses > DIVERGED_LOSS)
    if not bad.any():
        return {"step": step, "loss": float(losses[-1])}, None
    first_bad = int(bad.nonzero()[0])
    if first_bad > 0:
        last_finite = {"step": step - interval + first_bad, "loss": float(losses[first_bad - 1])}
    last = last_finite["loss"]
    last_text = f"{last:.4f} at update {last_finite['step']}" if last is not None \
        else "none (already the first update diverged)"
    message = (f"training diverged at update {step - interval + first_bad + 1}: loss "
               f"{float(losses[first_bad]):.4g} (limit {DIVERGED_LOSS:g}); "
               f"last finite loss {last_text}")
    return last_finite, message


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"``/None: CUDA when present, else CPU. Anything else is checked and used."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except RuntimeError:
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is available; use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {str(device)!r}")
    return device


@torch.no_grad()
def classification_error(model: torch.nn.Module, split: RetrievalSplit, batch_size: int = 5_000
                         ) -> tuple[float, float]:
    """(error rate, mean cross-entropy) of ``model`` on a whole split."""
    was_training = model.training
    model.eval()
    wrong, loss_sum = 0, 0.0
    for start in range(0, len(split), batch_size):
        inputs = split.inputs[start:start + batch_size]
        targets = split.targets[start:start + batch_size]
        logits = model(inputs)  # (B, V)
        wrong += int((logits.argmax(dim=1) != targets).sum())
        loss_sum += float(F.cross_entropy(logits, targets, reduction="sum"))
    model.train(was_training)
    return wrong / len(split), loss_sum / len(split)


def plain_training_step(model, optimizer, inputs, targets, clip_norm):
    """Forward, backward, clip, Adam. Returns (loss, gradient norm before clipping) tensors."""
    optimizer.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(inputs), targets)
    loss.backward()
    max_norm = clip_norm if clip_norm is not None else float("inf")
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    return loss.detach(), grad_norm.detach()


def _learning_rate(config: TrainConfig, step: int) -> float:
    if config.lr_schedule == "cosine":
        return config.lr * 0.5 * (1.0 + math.cos(math.pi * step / config.steps))
    return config.lr


def _checkpoint_payload(step, model, optimizer, order_generator, permutation, position,
                        curves, last_finite, config, elapsed_s, interval_losses, norm_sum,
                        interval, training_step, best=None) -> dict:
    losses = (torch.stack(interval_losses).cpu() if interval_losses
              else torch.zeros(0))  # (interval,) losses since the last validation pass
    return {"format": "fwbook-checkpoint-1", "config": config.to_dict(), "step": step,
            "elapsed_s": elapsed_s, "best": best,
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "order_generator": order_generator.get_state(), "permutation": permutation,
            "position": position, "curves": curves, "last_finite": last_finite,
            "interval_losses": losses, "norm_sum": norm_sum.detach().cpu(),
            "interval": interval, "training_step": training_step}


class TrainingFault(RuntimeError):
    """The run stopped on a fault (disk full, ...); ``args[0]`` says what and what to do."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C: the run stopped at update ``step``; ``checkpoint`` (if any) holds that update."""

    def __init__(self, step: int, checkpoint: Optional[Path]):
        super().__init__(step, checkpoint)
        self.step, self.checkpoint = step, checkpoint


def _write_failure(what: Path, error: OSError) -> str:
    reason = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is full",
              errno.EFBIG: "the file-size limit is reached"}.get(error.errno,
                                                                  "it could not be written")
    return f"could not write {what}: {reason} ({error.strerror or error})"


def load_checkpoint(path: str | os.PathLike, config: TrainConfig) -> dict:
    """Read and verify a checkpoint written by :func:`train` for the same configuration.

    Raises:
        ValueError: the file is damaged (checksum), not a fwbook checkpoint, or for another
            configuration. The file is never deleted.
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


class _DeferredInterrupt:
    """While active (main thread only), Ctrl-C sets ``requested`` instead of raising, so the
    loop stops between two updates; a second Ctrl-C raises at once."""

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


def _choose_step(step: str, config: TrainConfig, model, optimizer, train_split,
                 device: torch.device, resumed: Optional[dict]) -> tuple[str, str, dict]:
    """The training step of this run: (path, reason, numbers behind an auto decision)."""
    from fwbook.core.steps import EAGER_MODELS, _cpp_compiler, choose_training_step
    from fwbook.core import stepcost

    if step != "auto":
        path, reason = choose_training_step(step, config.model.model, config.steps, device)
        return path, reason, {}
    if resumed and resumed.get("path") in ("eager", "compiled"):
        return resumed["path"], f"auto, kept from the checkpoint: {resumed.get('reason', '')}", \
            dict(resumed.get("decision") or {})
    if config.model.model in EAGER_MODELS:
        return "eager", f"auto: {config.model.model} is not compiled (Dynamo does not trace nn.LSTM)", {}
    if device.type != "cpu":
        return "eager", "auto: the compiled step is used on CUDA only when asked for", {}
    if config.steps < stepcost.PROBE_MIN_UPDATES:
        return "eager", (f"auto: {config.steps} updates are too few to repay even a cached "
                         f"compile (probed from {stepcost.PROBE_MIN_UPDATES})"), {}
    if _cpp_compiler() is None:
        return "eager", "auto: no C++ compiler found for TorchInductor", {}
    inputs = train_split.inputs[:config.batch_size]
    targets = train_split.targets[:config.batch_size]
    eager_s = stepcost.time_eager_updates(model, optimizer, inputs, targets, config.clip_norm,
                                          plain_training_step)
    key = stepcost.cost_key(config, device, torch.get_num_threads())
    return stepcost.decide(config.steps, eager_s, stepcost.cached_costs(key))


def train(config: TrainConfig, output: str | os.PathLike | None = None, device: str = "auto",
          checkpoint: str | os.PathLike | None = None, quiet: bool = False,
          profile: Optional[str] = None, stop_after: Optional[int] = None,
          return_model: bool = False, step: str = "auto"):
    """Train one model on associative retrieval and return its run record.

    Args:
        config: the run's configuration.
        output: where to write the record (JSON); None: do not write.
        device: "auto" (CUDA when present), "cpu" or "cuda".
        checkpoint: checkpoint file; an existing one for the same config is verified and
            resumed.
        quiet: no progress bar (for papermill and sweeps).
        profile: the profile name stored in the record (smoke / quick / paper), if any.
        stop_after: stop (as if killed) after this many updates, leaving the checkpoint;
            returns None. Used by tests of resuming.
        return_model: also return the trained model (on ``device``, in eval mode).
        step: the training step: "auto" (compiled when the measured or cached compile time
            is repaid, see :mod:`fwbook.core.stepcost`), "eager" or "compiled". Both steps do the
            same maths (tested equal); the record says which ran, why, and how long compiling
            took. ``config.fast_path`` forces "compiled".
    Returns:
        the run record dict (``record["status"]`` is "completed" or "diverged"), or
        ``(record, model)`` when ``return_model`` is true.
    Raises:
        TrainingInterrupted: Ctrl-C (SIGINT); the checkpoint holds the update reached.
        TrainingFault: a checkpoint or the record could not be written (disk full, ...);
            the message says which file, what is kept and what to do.
    """
    from fwbook.core.steps import compiled_training_step

    torch_device = resolve_device(device)
    if config.fast_path:
        if step == "eager":
            raise ValueError("config.fast_path asks for the compiled step but step='eager' "
                             "was given; drop one of the two")
        step = "compiled"
    started = time.perf_counter()
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    data = make_splits(config.data_seed, config.num_pairs, config.num_train,
                       config.num_validation, config.num_test)
    train_split = data.train.to(torch_device)
    validation = data.validation.to(torch_device)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = build_model(config.model)
    model.to(torch_device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)

    order_generator = torch.Generator().manual_seed(config.seed + 1_000_003)
    permutation = torch.randperm(len(train_split), generator=order_generator)
    position = 0
    curves = {"step": [], "train_loss": [], "val_error": [], "val_loss": [], "grad_norm": []}
    last_finite = {"step": 0, "loss": None}
    interval_losses: list[torch.Tensor] = []  # per-update losses since the last evaluation
    norm_sum = torch.zeros((), device=torch_device)
    interval = 0
    done = 0
    # early stopping: the lowest validation error so far, its update and its parameters
    best: Optional[dict] = None
    stop_reason = "cap"  # why the loop ended: "cap" (config.steps) or "patience"
    checkpoint_path = Path(checkpoint) if checkpoint else None
    state = None
    if checkpoint_path is not None and checkpoint_path.exists():
        state = load_checkpoint(checkpoint_path, config)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        order_generator.set_state(state["order_generator"])
        permutation, position = state["permutation"], state["position"]
        curves, last_finite, done = state["curves"], state["last_finite"], state["step"]
        if "interval_losses" in state:  # a checkpoint taken between two validation passes
            interval_losses = [loss.to(torch_device) for loss in state["interval_losses"]]
            norm_sum = state["norm_sum"].to(torch_device)
            interval = state["interval"]
        best = state.get("best")
        started -= state.get("elapsed_s", 0.0)  # wall time counts the interrupted part too
    checkpoint_every = config.checkpoint_every or config.eval_every
    saved_step = done if state is not None else None

    step_path, step_reason, decision = _choose_step(
        step, config, model, optimizer, train_split, torch_device,
        state.get("training_step") if state is not None else None)
    if step_path == "compiled":
        step_function = compiled_training_step(model, optimizer, config.clip_norm)
    else:
        def step_function(inputs, targets):
            return plain_training_step(model, optimizer, inputs, targets, config.clip_norm)
    training_step = {"path": step_path, "reason": step_reason, "decision": decision}

    def save(at_step: int) -> None:
        nonlocal saved_step
        try:
            save_checkpoint(checkpoint_path, _checkpoint_payload(
                at_step, model, optimizer, order_generator, permutation, position, curves,
                last_finite, config, time.perf_counter() - started, interval_losses, norm_sum,
                interval, training_step, best))
        except OSError as error:
            kept = (f"the checkpoint of update {saved_step:,} is kept" if saved_step
                    else "there is no earlier checkpoint")
            raise TrainingFault(f"{_write_failure(checkpoint_path, error)} at update "
                                f"{at_step:,}; {kept}: free space and run the same command "
                                f"to resume") from None
        saved_step = at_step

    progress = None
    if not quiet:
        from tqdm.auto import tqdm
        progress = tqdm(total=config.steps, initial=done, unit="upd", dynamic_ncols=True,
                        desc=f"{config.model.model} R={config.model.hidden}")
    status, message = "completed", ""
    step_time, timed_updates, calls = 0.0, 0, 0
    try:
        with _DeferredInterrupt() as interrupt:
            while done < config.steps:
                if interrupt.requested:
                    if checkpoint_path is not None and saved_step != done:
                        save(done)
                    raise TrainingInterrupted(done, checkpoint_path)
                if position + config.batch_size > len(train_split):
                    permutation = torch.randperm(len(train_split), generator=order_generator)
                    position = 0
                index = permutation[position:position + config.batch_size].to(torch_device)
                position += config.batch_size
                for group in optimizer.param_groups:
                    group["lr"] = _learning_rate(config, done)
                tick = time.perf_counter()
                loss, grad_norm = step_function(train_split.inputs[index],
                                                train_split.targets[index])
                if calls > 0 or step_path == "eager":  # the compiling first call not counted
                    step_time += time.perf_counter() - tick
                    timed_updates += 1
                calls += 1
                done += 1
                interval += 1
                interval_losses.append(loss)
                norm_sum += grad_norm
                if done % config.eval_every == 0 or done == config.steps:
                    losses = torch.stack(interval_losses).cpu()  # (interval,)
                    last_finite, message = check_interval(losses, done, last_finite)
                    if message is not None:
                        raise TrainingDiverged(message)
                    mean_loss = float(losses.mean())
                    val_error, val_loss = classification_error(model, validation)
                    curves["step"].append(done)
                    curves["train_loss"].append(mean_loss)
                    curves["val_error"].append(val_error)
                    curves["val_loss"].append(val_loss)
                    curves["grad_norm"].append(float(norm_sum) / interval)
                    interval_losses.clear()
                    norm_sum.zero_()
                    interval = 0
                    if progress is not None:
                        progress.set_postfix(loss=f"{mean_loss:.3f}", val_err=f"{val_error:.2%}")
                    stopping = False
                    if config.patience:
                        if best is None or val_error < best["val_error"]:
                            best = {"step": done, "val_error": val_error, "val_loss": val_loss,
                                    "state": {key: value.detach().clone().cpu() for key, value
                                              in model.state_dict().items()}}
                        stopping = (done >= config.min_steps and done < config.steps
                                    and done - best["step"] >= config.patience)
                    if checkpoint_path is not None and (done % checkpoint_every == 0) \
                            and done < config.steps and not stopping:
                        save(done)
                    if stop_after is not None and done >= stop_after:
                        return None
                    if stopping:
                        stop_reason = "patience"
                        break
                if progress is not None:
                    progress.update(1)
    except TrainingDiverged as diverged:
        status, message = "diverged", diverged.args[0]
    finally:
        if progress is not None:
            progress.close()

    if best is not None and status == "completed":
        # early stopping keeps the parameters of the lowest validation error
        model.load_state_dict(best["state"])
    if status == "completed":
        # the only place the test set is read: once, after training has stopped
        test_error, test_loss = classification_error(model, data.test.to(torch_device))
    else:
        test_error, test_loss = None, None
    summary = _step_summary(step_path, step_reason, step_function)
    summary["step_s"] = round(step_time / timed_updates, 6) if timed_updates else None
    if decision:
        summary["decision"] = decision
    _remember_costs(config, torch_device, summary)
    config_dict = config.to_dict()
    record = {
        "schema": RECORD_SCHEMA,
        "status": status,
        "message": message,
        "model": config.model.model,
        "hidden": config.model.hidden,
        "seed": config.seed,
        "profile": profile,
        "test_error": test_error,
        "test_loss": test_loss,
        "final_val_error": curves["val_error"][-1] if curves["val_error"] else None,
        "steps_done": done,
        **({"early_stopping": {"best_step": best["step"], "best_val_error": best["val_error"],
                               "best_val_loss": best["val_loss"], "stop_reason": stop_reason}}
           if config.patience and best is not None else {}),
        "config": config_dict,
        "config_hash": config_hash(config_dict),
        **provenance(torch_device),
        "wall_s": round(time.perf_counter() - started, 2),
        "training_step": summary,
        "started_at": started_at,
        "curves": thin_curve(curves),
    }
    if output is not None:
        try:
            write_record(output, record)
        except OSError as error:
            if checkpoint_path is not None and checkpoint_path.exists():
                kept = (f"the checkpoint {checkpoint_path} (update {saved_step:,}) is kept: "
                        f"free space and run the same command to resume")
            else:
                kept = "no checkpoint was kept: free space and run the same command again"
            raise TrainingFault(f"{_write_failure(Path(output), error)} after all "
                                f"{done:,} updates; {kept}") from None
    if checkpoint_path is not None:
        checkpoint_path.unlink(missing_ok=True)
    if return_model:
        return record, model.eval()
    return record


def _remember_costs(config: TrainConfig, device: torch.device, summary: dict) -> None:
    """Store a compiled run's measured compile time and step time for later ``auto``
    decisions (CPU only; the eager step is timed afresh by every decision)."""
    from fwbook.core import stepcost

    if device.type != "cpu" or not summary.get("step_s") or summary["path"] != "compiled":
        return
    key = stepcost.cost_key(config, device, torch.get_num_threads())
    stepcost.remember(key, compile_s=summary.get("compile_s"), compiled_step_s=summary["step_s"])


def _step_summary(path: str, reason: str, step_function) -> dict:
    """What the record says about the training step: which ran, why, compile time."""
    summary = {"path": path, "reason": reason}
    if path == "compiled":
        summary["compile_s"] = (round(step_function.compile_s, 2)
                                if step_function.compile_s is not None else None)
        if step_function.compiled is False:  # compiling failed: the plain step ran
            summary["path"] = "eager"
            summary["reason"] = f"compile failed, fell back: {step_function.fallback_reason}"
    return summary


def with_overrides(config: TrainConfig, **changes) -> TrainConfig:
    """A copy of ``config`` with top-level or ``model.*`` fields changed."""
    model_changes = {key[6:]: value for key, value in changes.items() if key.startswith("model.")}
    top = {key: value for key, value in changes.items() if not key.startswith("model.")}
    model = replace(config.model, **model_changes) if model_changes else config.model
    return replace(config, model=model, **top)
