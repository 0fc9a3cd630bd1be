"""``fwbook attention PROFILE``: train the runs chapters 06 and 07 look inside.

Writes, per run of :data:`fwbook.experiments.attention_runs.CHAPTER_RUNS`, a record and the
trained weights into ``--out``; a killed run resumes from its checkpoint. Example::

    fwbook attention paper --out results/attention
"""

from __future__ import annotations

from fwbook.cli.arguments import non_negative_int


def add_parser(subparsers, parser_class) -> None:
    """Register ``attention`` on the ``fwbook`` command line."""
    from fwbook.experiments.attention_runs import RESULTS_DIR, RUN_NAMES
    from fwbook.experiments.grids import PROFILES

    parser = subparsers.add_parser(
        "attention", help="train the runs of chapters 6 and 7 (records + weights)",
        description="Train the runs whose memory chapters 6 and 7 read, and write a record "
                    "and the trained weights of each into --out.")
    parser.add_argument("profile", choices=PROFILES, help="training budget of every run")
    parser.add_argument("--out", default=str(RESULTS_DIR),
                        help="directory for records and weights (default: results/attention)")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    parser.add_argument("--only", choices=RUN_NAMES, default=None,
                        help="train only this run")
    parser.set_defaults(handler=run)


def run(args, parser=None) -> int:
    import torch

    from fwbook.experiments.attention_runs import CHAPTER_RUNS, train_run

    torch.set_num_threads(1)
    for name, model, num_pairs in CHAPTER_RUNS:
        if args.only is not None and name != args.only:
            continue
        record, _ = train_run(name, model, num_pairs, args.profile, args.seed, args.device,
                              args.out, quiet=True)
        print(f"{name}: status {record['status']}, test error {record['test_error']}, "
              f"{record['wall_s']:.0f} s", flush=True)
    return 0
