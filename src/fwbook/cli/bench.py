"""``fwbook bench``: training throughput, the fast paths, FLOPs against the machine's limit."""

from __future__ import annotations

from pathlib import Path

from fwbook.cli.arguments import check_new_file, positive_int

DESCRIPTION = ("Measure training throughput (sequences/s; forward + backward + Adam). Every "
               "suite times the rows it compares in interleaved blocks and prints min / median "
               "/ max, flagging rows whose spread is too wide to trust; the torch thread count "
               "is measured and chosen unless --threads is given.")


def add_parser(subparsers, parser_class):
    from fwbook.perf.bench import SUITES

    parser = subparsers.add_parser("bench", description=DESCRIPTION, help="training "
                                   "throughput, the fast paths, FLOPs against the machine's limit")
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
    parser.set_defaults(handler=run)
    return parser


def run(args, parser) -> int:
    from fwbook.core.train import resolve_device
    from fwbook.perf.bench import DEFAULT_ALL, json_paths, run_suite
    from fwbook.perf.timing import choose_threads

    suites = DEFAULT_ALL if args.suite == "all" else (args.suite,)
    outputs = json_paths(args.json, suites) if args.json is not None else {}
    try:
        device = resolve_device(args.device)
        for path in outputs.values():
            check_new_file(path, "--json")
        for suite in suites if args.output_dir is not None else ():
            check_new_file(args.output_dir / f"{suite}.json", "--output-dir")
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
