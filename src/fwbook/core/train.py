"""THE training loop for associative retrieval: Adam, gradient clipping, validation, test, record.

``train(config)`` runs one configuration and returns its run record (the format of
:mod:`fwbook.core.records`), also written as JSON when ``output`` is given. Runs are
deterministic on the CPU: the same configuration and seed give identical curves. A run that
writes checkpoints can be killed and resumed and ends with the same record (bar wall time) as
one never interrupted.

Hooks: ``on_evaluation(evaluation)`` is called after every validation pass with an
:class:`Evaluation` (the curve point just measured, the seconds since training began, the
model); when it returns True the run stops there, as early stopping would, and the test set
is read. Benchmarks use it to time a run to a validation error
(``fwbook.perf.bench.time_to_accuracy``); ``return_model`` hands the trained model to a
chapter; ``stop_after`` stops as if killed (tests of resuming).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from fwbook.core import stepcost
from fwbook.core.checkpoints import DeferredInterrupt, load_checkpoint, save_checkpoint
from fwbook.core.data import PAPER_NUM_PAIRS, PAPER_SPLIT_SIZES, RetrievalSplit, make_splits
from fwbook.core.models import ModelConfig, build_model
from fwbook.core.records import (RECORD_SCHEMA, config_hash, provenance, thin_curve, utc_now,
                                 write_failure, write_record)
from fwbook.core.steps import TrainingStep, plain_training_step  # noqa: F401 - perf.bench, tests import plain here

LR_SCHEDULES = ("constant", "cosine")
MAX_SEED = 2**32 - 1  # seeds are offset (data: seed * 1000 + split) and must stay in 64 bits
# Cross-entropy over 37 classes starts near ln 37 = 3.6; a loss above this means the run blew up.
DIVERGED_LOSS = 1e3
# Fields added to TrainConfig after records were committed, with the default that reproduces
# the runs of those records; at that default a field is left out of ``to_dict()`` (and so of
# ``config_hash``), so existing records keep their hashes (tests/test_records.py).
LATER_TRAIN_FIELDS = {"patience": 0, "min_steps": 0}
# Fields removed from TrainConfig, with the one value every committed record stores.
# ``to_dict()`` still writes them, so old and new records of one configuration share their
# ``config_hash``; ``from_dict`` accepts them at that value only. (``fast_path: true`` meant
# ``step="compiled"``, which is a choice of ``train``, not part of the configuration.)
RETIRED_TRAIN_FIELDS = {"fast_path": False}
CURVES = ("step", "train_loss", "val_error", "val_loss", "grad_norm")


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
        :data:`LATER_TRAIN_FIELDS` still at their default, plus :data:`RETIRED_TRAIN_FIELDS`:
        the dict ``config_hash`` hashes."""
        payload = asdict(self)
        payload["model"] = self.model.to_dict()
        for name, default in LATER_TRAIN_FIELDS.items():
            if payload[name] == default:
                del payload[name]
        return {**payload, **RETIRED_TRAIN_FIELDS}

    @classmethod
    def from_dict(cls, payload: dict) -> "TrainConfig":
        """The configuration a record stores (``record["config"]``, a ``to_dict()``)."""
        payload = dict(payload)
        for name, value in RETIRED_TRAIN_FIELDS.items():
            stored = payload.pop(name, value)
            if stored != value:
                raise ValueError(f"{name}={stored!r} is no longer a training setting (only "
                                 f"{value!r} is read)")
        payload["model"] = ModelConfig(**payload["model"])
        return cls(**payload)


@dataclass(frozen=True)
class Evaluation:
    """One validation pass, as ``train``'s ``on_evaluation`` hook sees it."""

    step: int  # updates done
    train_loss: float  # mean training loss of the updates since the previous pass
    val_error: float  # classification error on the validation split
    val_loss: float  # mean cross-entropy on the validation split
    grad_norm: float  # mean gradient norm (before clipping) since the previous pass
    elapsed_s: float  # seconds since this process began updating (compiling and passes included)
    model: torch.nn.Module  # the model being trained; leave it unchanged


class TrainingDiverged(RuntimeError):
    """Raised inside the loop when the loss stops being finite; args: (message,)."""


class TrainingFault(RuntimeError):
    """The run stopped on a fault (disk full, ...); ``args[0]`` says what and what to do."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C: the run stopped at update ``step``; ``checkpoint`` (if any) holds that update."""

    def __init__(self, step: int, checkpoint: Optional[Path]):
        super().__init__(step, checkpoint)
        self.step, self.checkpoint = step, checkpoint


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


def _learning_rate(config: TrainConfig, step: int) -> float:
    if config.lr_schedule == "cosine":
        return config.lr * 0.5 * (1.0 + math.cos(math.pi * step / config.steps))
    return config.lr


class _RunState:
    """Where a run stands: parameters, Adam, data order, curves; what a checkpoint holds."""

    def __init__(self, config: TrainConfig, model: torch.nn.Module,
                 optimizer: torch.optim.Optimizer, train_size: int, device: torch.device):
        self.model, self.optimizer = model, optimizer
        self.order_generator = torch.Generator().manual_seed(config.seed + 1_000_003)
        self.permutation = torch.randperm(train_size, generator=self.order_generator)
        self.position = 0
        self.curves: dict[str, list] = {name: [] for name in CURVES}
        self.last_finite = {"step": 0, "loss": None}
        self.interval_losses: list[torch.Tensor] = []  # per-update losses since the last pass
        self.norm_sum = torch.zeros((), device=device)
        self.interval = 0  # updates since the last validation pass
        self.done = 0  # updates done
        # early stopping: the lowest validation error so far, its update and its parameters
        self.best: Optional[dict] = None

    def next_batch(self, batch_size: int) -> torch.Tensor:
        """(B,) indices of the next mini-batch; a new permutation once one is used up."""
        if self.position + batch_size > len(self.permutation):
            self.permutation = torch.randperm(len(self.permutation),
                                              generator=self.order_generator)
            self.position = 0
        self.position += batch_size
        return self.permutation[self.position - batch_size:self.position]

    def add_update(self, loss: torch.Tensor, grad_norm: torch.Tensor) -> None:
        self.done += 1
        self.interval += 1
        self.interval_losses.append(loss)
        self.norm_sum += grad_norm

    def to_payload(self) -> dict:
        losses = (torch.stack(self.interval_losses).cpu() if self.interval_losses
                  else torch.zeros(0))  # (interval,) losses since the last validation pass
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "step": self.done, "best": self.best,
                "order_generator": self.order_generator.get_state(),
                "permutation": self.permutation, "position": self.position,
                "curves": self.curves, "last_finite": self.last_finite,
                "interval_losses": losses, "norm_sum": self.norm_sum.detach().cpu(),
                "interval": self.interval}

    def restore(self, payload: dict, device: torch.device) -> None:
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.order_generator.set_state(payload["order_generator"])
        self.permutation, self.position = payload["permutation"], payload["position"]
        self.curves, self.last_finite = payload["curves"], payload["last_finite"]
        self.done, self.best = payload["step"], payload.get("best")
        if "interval_losses" in payload:  # a checkpoint taken between two validation passes
            self.interval_losses = [loss.to(device) for loss in payload["interval_losses"]]
            self.norm_sum = payload["norm_sum"].to(device)
            self.interval = payload["interval"]

    def close_interval(self, validation: RetrievalSplit, elapsed_s: float) -> Evaluation:
        """The validation pass after update ``done``: add a curve point, start a new interval.

        Raises:
            TrainingDiverged: an update of the interval had a loss not finite or too large.
        """
        losses = torch.stack(self.interval_losses).cpu()  # (interval,)
        self.last_finite, message = check_interval(losses, self.done, self.last_finite)
        if message is not None:
            raise TrainingDiverged(message)
        val_error, val_loss = classification_error(self.model, validation)
        point = Evaluation(self.done, float(losses.mean()), val_error, val_loss,
                           float(self.norm_sum) / self.interval, elapsed_s, self.model)
        for name in CURVES:
            self.curves[name].append(getattr(point, name))
        self.interval_losses.clear()
        self.norm_sum.zero_()
        self.interval = 0
        return point

    def patience_ran_out(self, config: TrainConfig, point: Evaluation) -> bool:
        """Early stopping: keep the lowest validation error's parameters; True to stop."""
        if not config.patience:
            return False
        if self.best is None or point.val_error < self.best["val_error"]:
            self.best = {"step": self.done, "val_error": point.val_error,
                         "val_loss": point.val_loss,
                         "state": {key: value.detach().clone().cpu()
                                   for key, value in self.model.state_dict().items()}}
        return (config.min_steps <= self.done < config.steps
                and self.done - self.best["step"] >= config.patience)


def train(config: TrainConfig, output: str | os.PathLike | None = None, device: str = "auto",
          checkpoint: str | os.PathLike | None = None, quiet: bool = False,
          profile: Optional[str] = None, stop_after: Optional[int] = None,
          return_model: bool = False, step: str = "auto",
          on_evaluation: Optional[Callable[[Evaluation], Optional[bool]]] = None):
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
            took.
        on_evaluation: called with an :class:`Evaluation` after every validation pass; a
            true return value stops the run there (the record then has ``stopped_by`` =
            "on_evaluation"). Not called again for the passes of a resumed checkpoint.
    Returns:
        the run record dict (``record["status"]`` is "completed" or "diverged"), or
        ``(record, model)`` when ``return_model`` is true.
    Raises:
        TrainingInterrupted: Ctrl-C (SIGINT); the checkpoint holds the update reached.
        TrainingFault: a checkpoint or the record could not be written (disk full, ...);
            the message says which file, what is kept and what to do.
    """
    torch_device = resolve_device(device)
    started = time.perf_counter()
    started_at = utc_now()
    data = make_splits(config.data_seed, config.num_pairs, config.num_train,
                       config.num_validation, config.num_test)
    train_split = data.train.to(torch_device)
    validation = data.validation.to(torch_device)
    model = build_model(config.model, seed=config.seed).to(torch_device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    run = _RunState(config, model, optimizer, len(train_split), torch_device)
    checkpoint_path = Path(checkpoint) if checkpoint else None
    resumed = None
    if checkpoint_path is not None and checkpoint_path.exists():
        resumed = load_checkpoint(checkpoint_path, config)
        run.restore(resumed, torch_device)
        started -= resumed.get("elapsed_s", 0.0)  # wall time counts the interrupted part too
    checkpoint_every = config.checkpoint_every or config.eval_every
    saved_step = run.done if resumed is not None else None

    choice = stepcost.choose_step(step, config, model, optimizer,
                                  train_split.inputs[:config.batch_size],
                                  train_split.targets[:config.batch_size], torch_device,
                                  resumed.get("training_step") if resumed else None)
    step_function = TrainingStep(choice["path"], choice["reason"], model, optimizer,
                                 config.clip_norm, choice["decision"])

    def save() -> None:
        nonlocal saved_step
        payload = {"format": "fwbook-checkpoint-1", "config": config.to_dict(),
                   "elapsed_s": time.perf_counter() - started, "training_step": choice,
                   **run.to_payload()}
        try:
            save_checkpoint(checkpoint_path, payload)
        except OSError as error:
            kept = (f"the checkpoint of update {saved_step:,} is kept" if saved_step
                    else "there is no earlier checkpoint")
            raise TrainingFault(f"{write_failure(checkpoint_path, error)} at update "
                                f"{run.done:,}; {kept}: free space and run the same command "
                                f"to resume") from None
        saved_step = run.done

    from tqdm.auto import tqdm

    progress = tqdm(total=config.steps, initial=run.done, unit="upd", dynamic_ncols=True,
                    desc=f"{config.model.model} R={config.model.hidden}", disable=quiet)
    status, message, stopped_by = "completed", "", None
    loop_started = time.perf_counter()
    try:
        with DeferredInterrupt() as interrupt:
            while run.done < config.steps:
                if interrupt.requested:
                    if checkpoint_path is not None and saved_step != run.done:
                        save()
                    raise TrainingInterrupted(run.done, checkpoint_path)
                index = run.next_batch(config.batch_size).to(torch_device)  # (B,)
                for group in optimizer.param_groups:
                    group["lr"] = _learning_rate(config, run.done)
                loss, grad_norm = step_function(train_split.inputs[index],
                                                train_split.targets[index])
                run.add_update(loss, grad_norm)
                progress.update(1)
                if run.done % config.eval_every and run.done != config.steps:
                    continue
                point = run.close_interval(validation, time.perf_counter() - loop_started)
                progress.set_postfix(loss=f"{point.train_loss:.3f}", val_err=f"{point.val_error:.2%}")
                asked_to_stop = on_evaluation is not None and bool(on_evaluation(point))
                if run.patience_ran_out(config, point):
                    stopped_by = "patience"
                elif asked_to_stop and run.done < config.steps:
                    stopped_by = "on_evaluation"
                if checkpoint_path is not None and run.done % checkpoint_every == 0 \
                        and run.done < config.steps and stopped_by is None:
                    save()
                if stop_after is not None and run.done >= stop_after:
                    return None
                if stopped_by is not None:
                    break
    except TrainingDiverged as diverged:
        status, message = "diverged", diverged.args[0]
    finally:
        progress.close()

    test_error, test_loss = None, None
    if status == "completed":
        if run.best is not None:  # early stopping keeps the parameters of the lowest val error
            model.load_state_dict(run.best["state"])
        # the only place the test set is read: once, after training has stopped
        test_error, test_loss = classification_error(model, data.test.to(torch_device))
    summary = step_function.summary()
    stepcost.remember_run(config, torch_device, summary)
    best = run.best
    record = {
        "schema": RECORD_SCHEMA, "status": status, "message": message,
        "model": config.model.model, "hidden": config.model.hidden, "seed": config.seed,
        "profile": profile, "test_error": test_error, "test_loss": test_loss,
        "final_val_error": run.curves["val_error"][-1] if run.curves["val_error"] else None,
        "steps_done": run.done,
        **({"early_stopping": {"best_step": best["step"], "best_val_error": best["val_error"],
                               "best_val_loss": best["val_loss"],
                               "stop_reason": "patience" if stopped_by == "patience" else "cap"}}
           if config.patience and best is not None else {}),
        **({"stopped_by": stopped_by} if stopped_by == "on_evaluation" else {}),
        "config": config.to_dict(), "config_hash": config_hash(config),
        **provenance(torch_device),
        "wall_s": round(time.perf_counter() - started, 2),
        "training_step": summary, "started_at": started_at,
        "curves": thin_curve(run.curves),
    }
    if output is not None:
        _write_output(output, record, checkpoint_path, saved_step)
    if checkpoint_path is not None:
        checkpoint_path.unlink(missing_ok=True)
    if return_model:
        return record, model.eval()
    return record


def _write_output(output, record: dict, checkpoint_path: Optional[Path],
                  saved_step: Optional[int]) -> None:
    """Write the finished run's record; on a write error say what is kept (TrainingFault)."""
    try:
        write_record(output, record)
    except OSError as error:
        if checkpoint_path is not None and checkpoint_path.exists():
            kept = (f"the checkpoint {checkpoint_path} (update {saved_step:,}) is kept: "
                    f"free space and run the same command to resume")
        else:
            kept = "no checkpoint was kept: free space and run the same command again"
        raise TrainingFault(f"{write_failure(Path(output), error)} after all "
                            f"{record['steps_done']:,} updates; {kept}") from None


def with_overrides(config: TrainConfig, **changes) -> TrainConfig:
    """A copy of ``config`` with top-level or ``model.*`` fields changed."""
    model_changes = {key[6:]: value for key, value in changes.items() if key.startswith("model.")}
    top = {key: value for key, value in changes.items() if not key.startswith("model.")}
    model = replace(config.model, **model_changes) if model_changes else config.model
    return replace(config, model=model, **top)
