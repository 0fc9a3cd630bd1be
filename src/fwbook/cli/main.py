"""Command line: ``python -m fwbook train | bench | sweep | book`` (also the ``fwbook`` script).

Bad values print one clear line and exit with status 2, before anything is written.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Optional

from fwbook.cli.arguments import (non_negative_float, non_negative_int, on_off, positive_float,
                        positive_int, unit_float)

EXIT_FAULT = 1  # disk full, out of memory: one line saying what to do
EXIT_USAGE = 2
EXIT_DIVERGED = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line: ``fwbook train: error: ...``."""

    def error(self, message: str):  # noqa: D401 - argparse's signature
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def check_writable(path: Path) -> None:
    """Fail early, before training, if ``path`` cannot be written (its folder is created)."""
    if path.exists() and path.is_dir():
        raise ValueError(f"output path {path} is a directory; give a file name such as run.json")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".fwbook-probe-"):
            pass
    except OSError as error:
        raise ValueError(f"output path {path} is not writable ({error.strerror or error})") from None


def _add_train(subparsers) -> None:
    from fwbook.core.models import MEMORY_FORMS, MODEL_NAMES
    from fwbook.core.train import LR_SCHEDULES, TrainConfig
    from fwbook.core.steps import TRAINING_STEPS

    defaults = TrainConfig()
    parser = subparsers.add_parser(
        "train", help="train one model on associative retrieval and write its run record",
        description="Train one model on associative retrieval (Ba et al. 2016, Section 4.1) and "
                    "write its run record (JSON). The defaults are the README's recipe, the same "
                    "configuration as the paper profile's fast weights, R = 20, seed 0 in "
                    "results/table1: Adam lr 1e-3, batch 128, clipping at 5, 40,000 updates.")
    parser.add_argument("--model", choices=MODEL_NAMES, default="fast_weights",
                        help="which model (default: %(default)s)")
    parser.add_argument("--hidden", type=positive_int, default=20, help="R, hidden units (default: 20)")
    parser.add_argument("--pairs", type=positive_int, default=defaults.num_pairs,
                        help="K, key-value pairs per sequence, 1-26 (default: %(default)s)")
    parser.add_argument("--decay", type=unit_float, default=0.95, help="λ, fast-weight decay (default: 0.95)")
    parser.add_argument("--fast-lr", type=non_negative_float, default=0.5,
                        help="η, fast learning rate; 0 turns the memory off (default: 0.5)")
    parser.add_argument("--inner-steps", type=positive_int, default=1, help="S (default: 1)")
    parser.add_argument("--layer-norm", type=on_off, default=True, help="on|off (default: on)")
    parser.add_argument("--memory", choices=MEMORY_FORMS, default="efficient",
                        help="efficient (Eq. 4) or explicit A(t) (default: %(default)s)")
    parser.add_argument("--lr", type=positive_float, default=defaults.lr, help="Adam step size (default: %(default)s)")
    parser.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=defaults.lr_schedule,
                        help="(default: %(default)s)")
    parser.add_argument("--batch", type=positive_int, default=defaults.batch_size,
                        help="mini-batch size (default: %(default)s)")
    parser.add_argument("--steps", type=positive_int, default=defaults.steps,
                        help="parameter updates (default: %(default)s)")
    parser.add_argument("--eval-every", type=positive_int, default=defaults.eval_every,
                        help="updates between validation passes (default: %(default)s)")
    parser.add_argument("--clip", type=non_negative_float, default=defaults.clip_norm,
                        help="gradient-norm clipping threshold; 0 disables (default: %(default)s)")
    parser.add_argument("--train-size", type=positive_int, default=defaults.num_train,
                        help="training sequences (default: %(default)s)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="initialisation and data-order seed")
    parser.add_argument("--data-seed", type=non_negative_int, default=0, help="seed of the data set")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--step", choices=TRAINING_STEPS, default="auto",
                        help="training step: auto compiles on the CPU (not lstm) only when the "
                             "measured or cached compile time is repaid by the run's length, "
                             "and records why; eager never compiles; compiled always does. "
                             "Same maths, tested equal (default: %(default)s)")
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
    parser.set_defaults(handler=_run_train)


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
    if existing.is_dir():
        try:
            name_max = os.pathconf(existing, "PC_NAME_MAX")
        except (OSError, ValueError):
            name_max = 255
        for name in Path(os.path.abspath(path)).relative_to(existing).parts:
            if len(os.fsencode(name)) > name_max:
                raise ValueError(f"{option} {path}: the name {name!r} is "
                                 f"{len(os.fsencode(name))} bytes; this file system allows "
                                 f"{name_max}")
    if path.is_dir():
        raise ValueError(f"{option} {path} is a directory; give a file name such as run.json")
    if not existing.is_dir():
        raise ValueError(f"{option} {path} is not writable ({existing} is a file, not a folder)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {path} is not writable (no permission to write in {existing})")
    try:
        read_only = os.statvfs(existing).f_flag & os.ST_RDONLY
        name_max = os.pathconf(existing, "PC_NAME_MAX")
    except (OSError, ValueError):
        read_only, name_max = False, 255
    if read_only:
        raise ValueError(f"{option} {path} is not writable ({existing} is on a read-only file system)")
    missing = Path(os.path.abspath(path)).relative_to(existing).parts[:-1]
    # the file itself, its temporary name (.NAME.xxxxxxxx) and what is kept beside it
    names = list(missing) + [path.name, f".{path.name}.xxxxxxxx", *extra_names]
    for name in names:
        if len(os.fsencode(name)) > name_max:
            raise ValueError(f"{option} {path}: the name {name!r} (kept beside it) would be "
                             f"{len(os.fsencode(name))} bytes; this file system allows "
                             f"{name_max}: choose a shorter name")
    if existing == Path(os.path.abspath(path.parent)):
        try:
            with tempfile.NamedTemporaryFile(dir=existing, prefix=".fwbook-probe-"):
                pass
        except OSError as error:
            raise ValueError(f"{option} {path} is not writable ({error.strerror or error})") from None


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
        from fwbook.experiments.sweep import config_differences

        raise ValueError(f"--output {output} holds another run (differs in "
                         f"{config_differences(record['config'], config.to_dict())}); choose "
                         f"another --output, or pass --overwrite to replace it")
    if checkpoint.exists():
        return None  # the same configuration, being resumed
    return record


def _run_train(args, parser) -> int:
    from fwbook.core.checkpoints import UnverifiedCheckpointWarning
    from fwbook.core.locks import RunLocked, held_lock
    from fwbook.core.models import ModelConfig
    from fwbook.core.train import (TrainConfig, TrainingFault, TrainingInterrupted, load_checkpoint,
                        resolve_device, train)

    # 1. bad input: one line, exit 2, before anything is created, changed or deleted
    try:
        model = ModelConfig(model=args.model, hidden=args.hidden, decay=args.decay,
                            fast_lr=args.fast_lr, inner_steps=args.inner_steps,
                            layer_norm=args.layer_norm, memory=args.memory)
        config = TrainConfig(model=model, num_pairs=args.pairs, num_train=args.train_size,
                             seed=args.seed, data_seed=args.data_seed, lr=args.lr,
                             lr_schedule=args.lr_schedule, batch_size=args.batch,
                             steps=args.steps, eval_every=min(args.eval_every, args.steps),
                             clip_norm=args.clip or None)
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
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UnverifiedCheckpointWarning)
                load_checkpoint(checkpoint, config)  # damaged or foreign: refused, kept
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
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", UnverifiedCheckpointWarning)
                        state = load_checkpoint(checkpoint, config)
                    print(f"resuming from {checkpoint} at update {state['step']:,}",
                          file=sys.stderr)
            except ValueError as error:
                parser.error(str(error))
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


def _add_bench(subparsers) -> None:
    from fwbook.perf.bench import SUITES

    parser = subparsers.add_parser(
        "bench", help="training throughput, the fast paths, FLOPs against the machine's limit",
        description="Measure training throughput (sequences/s; forward + backward + Adam). "
                    "Every suite times the rows it compares in interleaved blocks and prints "
                    "min / median / max, flagging rows whose spread is too wide to trust; the "
                    "torch thread count is measured and chosen unless --threads is given.")
    parser.add_argument("--hidden", type=positive_int, nargs="+", default=None,
                        help="R values (default: the suite's; throughput: 20 50 100)")
    parser.add_argument("--batch", type=positive_int, default=128, help="(default: 128)")
    parser.add_argument("--repeats", type=positive_int, default=None,
                        help="timed blocks per row (default: the suite's; throughput 15, else 5)")
    parser.add_argument("--steps", type=positive_int, default=None,
                        help="updates per timed block (default: the suite's)")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="torch CPU threads (default: measure 1 and 2, use the faster)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--json", type=Path, default=None,
                        help="also write the rows of the suite that ran as JSON here (with "
                             "--suite all: one file per suite, PATH's stem + .SUITE.json)")
    parser.add_argument("--suite", choices=SUITES + ("all",), default="throughput",
                        help="throughput (default): FW Eq. 4 / explicit / LSTM table; speedup: "
                             "the FW training paths against the plain eager reference; flops: "
                             "FLOPs per update and the fraction of the machine's matmul rate; "
                             "cost: explicit vs Eq. 4 against H and T; sweep: Table 1 models per "
                             "hour, one by one and batched; tta: FW R=20 time to 5%% and 2%% "
                             "validation error; backends: whole `fwbook sweep` commands, local "
                             "against Ray (minutes); all: every suite but backends")
    parser.add_argument("--output-dir", type=Path, default=None,
                        help="write each suite's result with provenance as SUITE.json here "
                             "(e.g. results/bench)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: seconds, for checks")
    parser.add_argument("--no-compile", action="store_true",
                        help="speedup suite without the compiled paths (compiling takes minutes)")
    parser.add_argument("--warm-compile", action="store_true",
                        help="speedup suite: let compiling reuse inductor's on-disk caches "
                             "(default: time it cold, as on a machine that never compiled it)")
    parser.set_defaults(handler=_run_bench)


def _run_bench(args, parser) -> int:
    from fwbook.perf.bench import DEFAULT_ALL, json_paths, run_suite
    from fwbook.perf.timing import choose_threads
    from fwbook.core.train import resolve_device

    suites = DEFAULT_ALL if args.suite == "all" else (args.suite,)
    outputs = json_paths(args.json, suites) if args.json is not None else {}
    try:
        device = resolve_device(args.device)
        for path in outputs.values():
            check_writable(path)
        if args.output_dir is not None:
            check_writable(args.output_dir / "probe.json")
    except ValueError as error:
        parser.error(str(error))
    choice = choose_threads(args.threads, device, args.quick)  # once, for every suite
    for suite in suites:
        run_suite(suite, args.device, args.output_dir, args.quick, args.threads, args.repeats,
                  compiled=not args.no_compile, hidden=args.hidden, batch_size=args.batch,
                  steps_per_repeat=args.steps, json_path=outputs.get(suite),
                  thread_choice=choice, cold_compile=not args.warm_compile)
        if suite in outputs:
            print(f"rows written to {outputs[suite]}")
        print()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fwbook", description="fwbook: fast weights (Ba et al. 2016), "
                     "reproduced. Train models, benchmark them, run sweeps, build the book.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    _add_train(subparsers)
    _add_bench(subparsers)
    from fwbook.cli import attention, book, sweep  # every subcommand is named here, none found by search

    sweep.add_parser(subparsers, _Parser)
    book.add_parser(subparsers, _Parser)
    from fwbook.cli import catch as catch_cli  # chapter 8
    catch_cli.add_parser(subparsers, _Parser)
    attention.add_parser(subparsers, _Parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["book"]:  # the book needs none of the training code (no torch import)
        from fwbook.cli.book import main as book_main

        return book_main(argv[1:], prog="fwbook book")
    parser = build_parser()
    args = parser.parse_args(argv)
    subparser = parser._subparsers._group_actions[0].choices[args.command]
    try:
        return args.handler(args, subparser)
    except KeyboardInterrupt:  # train reports its own; this is any other command's Ctrl-C
        print(f"fwbook {args.command}: interrupted; run the same command to resume",
              file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
