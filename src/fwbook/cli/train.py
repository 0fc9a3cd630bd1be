"""``fwbook train``: train one model on associative retrieval and write its run record.

Bad input is one line and exit status 2 before anything is created, changed or deleted; a
fault (disk full, out of memory, Ctrl-C) is one line saying what happened and what to do.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Optional

from fwbook.cli.arguments import (EXIT_DIVERGED, EXIT_FAULT, EXIT_INTERRUPTED, check_new_file,
                                  non_negative_float, non_negative_int, on_off, positive_float,
                                  positive_int, unit_float)

DESCRIPTION = ("Train one model on associative retrieval (Ba et al. 2016, Section 4.1) and "
               "write its run record (JSON). The defaults are the README's recipe, the same "
               "configuration as the paper profile's fast weights, R = 20, seed 0 in "
               "results/table1: Adam lr 1e-3, batch 128, clipping at 5, 40,000 updates.")
# option -> (field of ModelConfig, argument type, help); the defaults are ModelConfig's
MODEL_OPTIONS = {
    "--hidden": ("hidden", positive_int, "R, hidden units"),
    "--decay": ("decay", unit_float, "λ, fast-weight decay"),
    "--fast-lr": ("fast_lr", non_negative_float, "η, fast learning rate; 0 turns the memory off"),
    "--inner-steps": ("inner_steps", positive_int, "S, inner-loop steps"),
}
# option -> (field of TrainConfig, argument type, help); the defaults are TrainConfig's
TRAINING_OPTIONS = {
    "--pairs": ("num_pairs", positive_int, "K, key-value pairs per sequence, 1-26"),
    "--lr": ("lr", positive_float, "Adam step size"),
    "--batch": ("batch_size", positive_int, "mini-batch size"),
    "--steps": ("steps", positive_int, "parameter updates"),
    "--eval-every": ("eval_every", positive_int, "updates between validation passes"),
    "--clip": ("clip_norm", non_negative_float, "gradient-norm clipping threshold; 0 disables"),
    "--train-size": ("num_train", positive_int, "training sequences"),
    "--seed": ("seed", non_negative_int, "initialisation and data-order seed"),
    "--data-seed": ("data_seed", non_negative_int, "seed of the data set"),
}


def add_parser(subparsers, parser_class):
    from fwbook.core.models import MEMORY_FORMS, MODEL_NAMES, ModelConfig
    from fwbook.core.steps import TRAINING_STEPS
    from fwbook.core.train import LR_SCHEDULES, TrainConfig

    parser = subparsers.add_parser("train", description=DESCRIPTION, help="train one model on "
                                   "associative retrieval and write its run record")
    parser.add_argument("--model", choices=MODEL_NAMES, default=ModelConfig.model,
                        help="which model (default: %(default)s)")
    for options, defaults in ((MODEL_OPTIONS, ModelConfig()), (TRAINING_OPTIONS, TrainConfig())):
        for option, (field, kind, text) in options.items():
            parser.add_argument(option, dest=field, type=kind, default=getattr(defaults, field),
                                metavar=option[2:].upper().replace("-", "_"),
                                help=f"{text} (default: %(default)s)")
    parser.add_argument("--layer-norm", type=on_off, default=ModelConfig.layer_norm,
                        help="layer norm in the inner loop, on|off (default: on)")
    parser.add_argument("--memory", choices=MEMORY_FORMS, default=ModelConfig.memory,
                        help="efficient (Eq. 4) or explicit A(t) (default: %(default)s)")
    parser.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=TrainConfig.lr_schedule,
                        help="(default: %(default)s)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--step", choices=TRAINING_STEPS, default="auto",
                        help="training step: auto compiles on the CPU (not lstm) only when the "
                             "measured or cached compile time is repaid by the run's length, "
                             "and records why; eager never compiles; compiled always does. "
                             "Same maths, tested equal (default: %(default)s)")
    parser.add_argument("--threads", type=positive_int, default=1,
                        help="torch CPU threads (default: %(default)s; these models are too "
                             "small for more to pay, and with 2 threads the compiled step ran "
                             "many times slower on a machine shared with other work: the "
                             "Performance chapter)")
    parser.add_argument("--output", type=Path, default=Path("runs/fast_weights_R20.json"),
                        help="run record path (default: %(default)s)")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="checkpoint file (default: OUTPUT with .ckpt.pt); verified "
                             "(checksum) and resumed if present, deleted once the record is "
                             "written")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing record at OUTPUT (by default one is never "
                             "overwritten, unless it is this configuration being resumed)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)
    return parser


def config_from_arguments(args):
    """The ``TrainConfig`` the options describe (``ValueError`` for a bad combination)."""
    from fwbook.core.models import ModelConfig
    from fwbook.core.train import TrainConfig

    model = ModelConfig(model=args.model, layer_norm=args.layer_norm, memory=args.memory,
                        **{field: getattr(args, field) for field, _, _ in MODEL_OPTIONS.values()})
    training = {field: getattr(args, field) for field, _, _ in TRAINING_OPTIONS.values()}
    training.update(eval_every=min(args.eval_every, args.steps), clip_norm=args.clip_norm or None)
    return TrainConfig(model=model, lr_schedule=args.lr_schedule, **training)


def _available_memory() -> Optional[int]:
    """Bytes this process may still allocate: the least of free RAM, the cgroup's limit and
    the address-space limit (None when nothing is known)."""
    limits = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                limits.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    try:
        maximum = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if maximum != "max":
            current = int(Path("/sys/fs/cgroup/memory.current").read_text())
            limits.append(int(maximum) - current)
    except (OSError, ValueError):
        pass
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            pages = int(Path("/proc/self/statm").read_text().split()[0])
            limits.append(soft - pages * os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, ImportError):
        pass
    return min(limits) if limits else None


def check_memory(config) -> None:
    """Refuse a model whose parameters, gradients and Adam state alone exceed free memory."""
    import torch

    from fwbook.core.models import build_model

    with torch.device("meta"):  # shapes only: nothing is allocated
        parameters = sum(p.numel() for p in build_model(config.model).parameters())
    needed = 4 * 4 * parameters  # float32 weights, gradients, Adam's two moments
    available = _available_memory()
    if available is not None and needed > available:
        raise ValueError(f"--hidden {config.model.hidden}: the {config.model.model} model has "
                         f"{parameters:,} parameters, which need {needed / 2**30:,.1f} GiB for "
                         f"weights, gradients and Adam's state; {available / 2**30:,.1f} GiB of "
                         f"memory is available")


def check_output_record(output: Path, config, checkpoint: Path, overwrite: bool):
    """What is at ``--output`` already, and whether it may be replaced.

    Returns:
        None when the run may go ahead, or the finished record of this very configuration
        (nothing to do).
    Raises:
        ValueError: the file is not a run record, or holds another configuration, and
            ``overwrite`` is false.
    """
    from fwbook.core.records import config_hash, read_record
    from fwbook.experiments.sweep import config_differences

    if not output.exists() or overwrite:
        return None
    try:
        record = read_record(output)
    except (ValueError, OSError) as error:
        reason = "not JSON text" if isinstance(error, UnicodeDecodeError) else (
            "no 'config' field" if "no 'config' field" in str(error) else
            "not valid JSON: truncated or damaged" if isinstance(error, ValueError)
            else error.strerror or str(error))
        raise ValueError(f"--output {output} exists and is not a fwbook run record ({reason}); "
                         f"move it away, or pass --overwrite to replace it") from None
    wanted = config_hash(config.to_dict())
    found = record.get("config_hash") or config_hash(record["config"])
    if found != wanted:
        raise ValueError(f"--output {output} holds another run (differs in "
                         f"{config_differences(record['config'], config.to_dict())}); choose "
                         f"another --output, or pass --overwrite to replace it")
    if checkpoint.exists():
        return None  # the same configuration, being resumed
    return record


def _resumable_checkpoint(checkpoint: Path, config):
    """The checkpoint's state, verified against ``config`` (``ValueError`` when damaged or of
    another run: it is refused and kept)."""
    from fwbook.core.checkpoints import UnverifiedCheckpointWarning, load_checkpoint

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnverifiedCheckpointWarning)
        return load_checkpoint(checkpoint, config)


def run(args, parser) -> int:
    from fwbook.core.locks import RunLocked, held_lock
    from fwbook.core.train import TrainingFault, TrainingInterrupted, resolve_device, train

    # 1. bad input: one line, exit 2, before anything is created, changed or deleted
    try:
        config = config_from_arguments(args)
        resolve_device(args.device)
        output = args.output
        checkpoint = args.checkpoint or output.with_name(output.name + ".ckpt.pt")
        lock = output.with_name(output.name + ".lock")
        check_new_file(output, "--output", (lock.name,))
        check_new_file(checkpoint, "--checkpoint" if args.checkpoint else
                       "--output (its checkpoint)")
        if os.path.abspath(checkpoint) == os.path.abspath(output) or (
                checkpoint.exists() and output.exists() and checkpoint.samefile(output)):
            raise ValueError(f"--checkpoint {checkpoint} is the --output file; a checkpoint is "
                             f"deleted once the record is written: give another name")
        check_memory(config)
        done = check_output_record(output, config, checkpoint, args.overwrite)
        if done is None and checkpoint.exists():
            _resumable_checkpoint(checkpoint, config)
    except ValueError as error:
        parser.error(str(error))
    if done is not None:
        return _report(done, output, already=True)

    # 2. one process per output; checks repeated under the lock (another may have finished)
    try:
        with held_lock(lock, str(output)):
            try:
                done = check_output_record(output, config, checkpoint, args.overwrite)
                if done is not None:
                    return _report(done, output, already=True)
                if checkpoint.exists():
                    state = _resumable_checkpoint(checkpoint, config)
                    print(f"resuming from {checkpoint} at update {state['step']:,}",
                          file=sys.stderr)
            except ValueError as error:
                parser.error(str(error))
            import torch

            torch.set_num_threads(args.threads)  # the record stores it (device.torch_threads)
            record = train(config, output=output, device=args.device, checkpoint=checkpoint,
                           quiet=args.quiet, step=args.step)
    except RunLocked as error:
        parser.error(str(error))
    except TrainingInterrupted as interrupted:
        print(f"fwbook train: interrupted at update {interrupted.step:,}; run the same command "
              f"to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print(f"fwbook train: interrupted at update {_checkpoint_step(checkpoint):,}; run the "
              f"same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except TrainingFault as fault:
        print(f"fwbook train: {fault.args[0]}", file=sys.stderr)
        return EXIT_FAULT
    except (MemoryError, RuntimeError) as error:
        if isinstance(error, RuntimeError) and not any(
                text in str(error) for text in ("can't allocate memory", "out of memory")):
            raise
        print(f"fwbook train: out of memory ({type(error).__name__}); choose a smaller --hidden "
              f"or --batch; the checkpoint {checkpoint} (if any) is kept", file=sys.stderr)
        return EXIT_FAULT
    return _report(record, output)


def _checkpoint_step(checkpoint: Path) -> int:
    """The update a checkpoint holds (0 when there is none or it cannot be read)."""
    from fwbook.core.checkpoints import read_checkpoint

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return int(read_checkpoint(checkpoint)["step"]) if checkpoint.exists() else 0
    except Exception:  # noqa: BLE001 - only for the message
        return 0


def _report(record: dict, output: Path, already: bool = False) -> int:
    if record["status"] != "completed":
        print(f"fwbook train: {record['message']}; record "
              f"{'already in' if already else 'written to'} {output}", file=sys.stderr)
        return EXIT_DIVERGED
    if already:
        print(f"fwbook train: {output} already holds this run (test error "
              f"{record['test_error']:.2%}); nothing to do (--overwrite trains it again)")
        return 0
    print(f"test error {record['test_error']:.2%}  (validation {record['final_val_error']:.2%}, "
          f"{record['steps_done']} updates, {record['wall_s']:.0f} s on {record['device']['type']})"
          f"  record: {output}")
    return 0
