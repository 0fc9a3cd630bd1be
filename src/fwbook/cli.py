"""Command line: ``python -m fwbook train | bench | sweep | book`` (also the ``fwbook`` script).

Bad values print one clear line and exit with status 2, before anything is written.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from .arguments import (non_negative_float, non_negative_int, on_off, positive_float,
                        positive_int, unit_float)

EXIT_USAGE = 2
EXIT_DIVERGED = 3


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
    from .models import MEMORY_FORMS, MODEL_NAMES
    from .train import LR_SCHEDULES, TrainConfig
    from .speed import AUTO_COMPILE_MIN_UPDATES, TRAINING_STEPS

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
                        help="training step: auto compiles runs of >= "
                             f"{AUTO_COMPILE_MIN_UPDATES:,} updates on the CPU (not lstm); "
                             "eager never compiles; compiled always does. Same maths, tested "
                             "equal (default: %(default)s)")
    parser.add_argument("--fast-path", action="store_true",
                        help="the same as --step compiled")
    parser.add_argument("--output", type=Path, default=Path("runs/fast_weights_R20.json"),
                        help="run record path (default: %(default)s)")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="checkpoint file (default: OUTPUT with .ckpt.pt); resumed if present")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=_run_train)


def _run_train(args, parser) -> int:
    from .models import ModelConfig
    from .train import TrainConfig, load_checkpoint, resolve_device, train

    try:
        model = ModelConfig(model=args.model, hidden=args.hidden, decay=args.decay,
                            fast_lr=args.fast_lr, inner_steps=args.inner_steps,
                            layer_norm=args.layer_norm, memory=args.memory)
        config = TrainConfig(model=model, num_pairs=args.pairs, num_train=args.train_size,
                             seed=args.seed, data_seed=args.data_seed, lr=args.lr,
                             lr_schedule=args.lr_schedule, batch_size=args.batch,
                             steps=args.steps, eval_every=min(args.eval_every, args.steps),
                             clip_norm=args.clip or None)
        step = "compiled" if args.fast_path else args.step
        if args.fast_path and args.step == "eager":
            raise ValueError("--fast-path and --step eager contradict each other")
        resolve_device(args.device)
        output = args.output
        check_writable(output)
        checkpoint = args.checkpoint or output.with_name(output.name + ".ckpt.pt")
        check_writable(checkpoint)
        if checkpoint.exists():
            load_checkpoint(checkpoint, config)  # a corrupt or foreign checkpoint fails here
            print(f"resuming from {checkpoint}", file=sys.stderr)
    except ValueError as error:
        parser.error(str(error))
    record = train(config, output=output, device=args.device, checkpoint=checkpoint,
                   quiet=args.quiet, step=step)
    if record["status"] != "completed":
        print(f"fwbook train: {record['message']}; record written to {output}", file=sys.stderr)
        return EXIT_DIVERGED
    print(f"test error {record['test_error']:.2%}  (validation {record['final_val_error']:.2%}, "
          f"{record['steps_done']} updates, {record['wall_s']:.0f} s on {record['device']['type']})"
          f"  record: {output}")
    return 0


def _add_bench(subparsers) -> None:
    from .bench import SUITES

    parser = subparsers.add_parser(
        "bench", help="training throughput, the fast paths, FLOPs against the machine's limit",
        description="Measure training throughput (sequences/s; forward + backward + Adam). "
                    "Every suite times the rows it compares in interleaved blocks and prints "
                    "min / median / max, flagging rows whose spread is too wide to trust; the "
                    "torch thread count is measured and chosen unless --threads is given.")
    parser.add_argument("--hidden", type=positive_int, nargs="+", default=None,
                        help="R values (default: the suite's; throughput: 20 50 100)")
    parser.add_argument("--batch", type=positive_int, default=128, help="(default: 128)")
    parser.add_argument("--repeats", type=positive_int, default=5,
                        help="timed blocks per row (default: 5)")
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
                             "validation error; all: every suite")
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
    from .bench import SUITES, choose_threads, json_paths, run_suite
    from .train import resolve_device

    suites = SUITES if args.suite == "all" else (args.suite,)
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
    for name in ("sweep", "book"):
        try:
            module = __import__(f"fwbook.{name}_cli", fromlist=["add_parser"])
        except ModuleNotFoundError as error:
            if error.name != f"fwbook.{name}_cli":
                raise
            continue
        module.add_parser(subparsers, _Parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    subparser = parser._subparsers._group_actions[0].choices[args.command]
    return args.handler(args, subparser)


if __name__ == "__main__":
    sys.exit(main())
