"""Training on associative retrieval: Adam, gradient clipping, validation, test, run records.

``train(config)`` runs one configuration and returns its run record (a dict that is also
written as JSON when ``output`` is given). Runs are deterministic on the CPU: the same
configuration and seed give identical curves. A run that writes checkpoints can be killed and
resumed and ends with the same record (bar wall time) as one never interrupted.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F

from .data import PAPER_NUM_PAIRS, PAPER_SPLIT_SIZES, RetrievalSplit, make_splits
from .models import ModelConfig, build_model
from .records import RECORD_SCHEMA, config_hash, provenance, thin_curve, write_record

LR_SCHEDULES = ("constant", "cosine")
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
    # always use the compiled step (fwbook.speed), tested equal to the plain one; False leaves
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
                        curves, last_finite, config, elapsed_s, best=None) -> dict:
    return {"format": "fwbook-checkpoint-1", "config": config.to_dict(), "step": step,
            "elapsed_s": elapsed_s, "best": best,
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "order_generator": order_generator.get_state(), "permutation": permutation,
            "position": position, "curves": curves, "last_finite": last_finite}


def _save_checkpoint(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    torch.save(payload, temporary)
    os.replace(temporary, path)


def load_checkpoint(path: str | os.PathLike, config: TrainConfig) -> dict:
    """Read a checkpoint written by :func:`train` for the same configuration.

    Raises:
        ValueError: the file is corrupt, not a fwbook checkpoint, or for another configuration.
    """
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # torch raises many types for a damaged file
        raise ValueError(f"checkpoint {path} is corrupt or unreadable ({type(error).__name__}); "
                         f"delete it to start the run afresh") from None
    if not isinstance(payload, dict) or payload.get("format") != "fwbook-checkpoint-1":
        raise ValueError(f"{path} is not a fwbook checkpoint; delete it to start the run afresh")
    if payload["config"] != config.to_dict():
        raise ValueError(f"checkpoint {path} belongs to a different configuration; "
                         f"delete it or choose another output path")
    return payload


def train(config: TrainConfig, output: str | os.PathLike | None = None, device: str = "auto",
          checkpoint: str | os.PathLike | None = None, quiet: bool = False,
          profile: Optional[str] = None, stop_after: Optional[int] = None,
          return_model: bool = False, step: str = "auto"):
    """Train one model on associative retrieval and return its run record.

    Args:
        config: the run's configuration.
        output: where to write the record (JSON); None: do not write.
        device: "auto" (CUDA when present), "cpu" or "cuda".
        checkpoint: checkpoint file; an existing one for the same config is resumed.
        quiet: no progress bar (for papermill and sweeps).
        profile: the profile name stored in the record (smoke / quick / paper), if any.
        stop_after: stop (as if killed) after this many updates, leaving the checkpoint;
            returns None. Used by tests of resuming.
        return_model: also return the trained model (on ``device``, in eval mode).
        step: the training step: "auto" (compiled for long CPU runs, see
            :func:`fwbook.speed.choose_training_step`), "eager" or "compiled". Both steps do
            the same maths (tested equal); the record says which ran and how long compiling
            took. ``config.fast_path`` forces "compiled".
    Returns:
        the run record dict (``record["status"]`` is "completed" or "diverged"), or
        ``(record, model)`` when ``return_model`` is true.
    """
    from .speed import choose_training_step, compiled_training_step

    torch_device = resolve_device(device)
    if config.fast_path:
        if step == "eager":
            raise ValueError("config.fast_path asks for the compiled step but step='eager' "
                             "was given; drop one of the two")
        step = "compiled"
    step_path, step_reason = choose_training_step(step, config.model.model, config.steps,
                                                  torch_device)
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
    if step_path == "compiled":
        step_function = compiled_training_step(model, optimizer, config.clip_norm)
    else:
        def step_function(inputs, targets):
            return plain_training_step(model, optimizer, inputs, targets, config.clip_norm)

    order_generator = torch.Generator().manual_seed(config.seed + 1_000_003)
    permutation = torch.randperm(len(train_split), generator=order_generator)
    position = 0
    curves = {"step": [], "train_loss": [], "val_error": [], "val_loss": [], "grad_norm": []}
    last_finite = {"step": 0, "loss": None}
    # early stopping: the lowest validation error so far, its update and its parameters
    best: Optional[dict] = None
    stop_reason = "cap"  # why the loop ended: "cap" (config.steps) or "patience"
    step = 0
    checkpoint_path = Path(checkpoint) if checkpoint else None
    if checkpoint_path is not None and checkpoint_path.exists():
        state = load_checkpoint(checkpoint_path, config)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        order_generator.set_state(state["order_generator"])
        permutation, position = state["permutation"], state["position"]
        curves, last_finite, step = state["curves"], state["last_finite"], state["step"]
        best = state.get("best")
        started -= state.get("elapsed_s", 0.0)  # wall time counts the interrupted part too
    checkpoint_every = config.checkpoint_every or config.eval_every

    progress = None
    if not quiet:
        from tqdm.auto import tqdm
        progress = tqdm(total=config.steps, initial=step, unit="upd", dynamic_ncols=True,
                        desc=f"{config.model.model} R={config.model.hidden}")
    status, message = "completed", ""
    interval_losses: list[torch.Tensor] = []  # per-update losses since the last evaluation
    norm_sum = torch.zeros((), device=torch_device)
    interval = 0
    try:
        while step < config.steps:
            if position + config.batch_size > len(train_split):
                permutation = torch.randperm(len(train_split), generator=order_generator)
                position = 0
            index = permutation[position:position + config.batch_size].to(torch_device)
            position += config.batch_size
            for group in optimizer.param_groups:
                group["lr"] = _learning_rate(config, step)
            loss, grad_norm = step_function(train_split.inputs[index], train_split.targets[index])
            step += 1
            interval += 1
            interval_losses.append(loss)
            norm_sum += grad_norm
            if step % config.eval_every == 0 or step == config.steps:
                losses = torch.stack(interval_losses).cpu()  # (interval,)
                last_finite, message = check_interval(losses, step, last_finite)
                if message is not None:
                    raise TrainingDiverged(message)
                mean_loss = float(losses.mean())
                val_error, val_loss = classification_error(model, validation)
                curves["step"].append(step)
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
                        best = {"step": step, "val_error": val_error, "val_loss": val_loss,
                                "state": {key: value.detach().clone().cpu() for key, value
                                          in model.state_dict().items()}}
                    stopping = (step >= config.min_steps and step < config.steps
                                and step - best["step"] >= config.patience)
                if checkpoint_path is not None and (step % checkpoint_every == 0) \
                        and step < config.steps and not stopping:
                    _save_checkpoint(checkpoint_path, _checkpoint_payload(
                        step, model, optimizer, order_generator, permutation, position,
                        curves, last_finite, config, time.perf_counter() - started, best))
                if stop_after is not None and step >= stop_after:
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
        "steps_done": step,
        **({"early_stopping": {"best_step": best["step"], "best_val_error": best["val_error"],
                               "best_val_loss": best["val_loss"], "stop_reason": stop_reason}}
           if config.patience and best is not None else {}),
        "config": config_dict,
        "config_hash": config_hash(config_dict),
        **provenance(torch_device),
        "wall_s": round(time.perf_counter() - started, 2),
        "training_step": _step_summary(step_path, step_reason, step_function),
        "started_at": started_at,
        "curves": thin_curve(curves),
    }
    if output is not None:
        write_record(output, record)
    if checkpoint_path is not None:
        checkpoint_path.unlink(missing_ok=True)
    if return_model:
        return record, model.eval()
    return record


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
