"""``fwbook sweep table1|ablations|fair|fair-cap``: run a grid of configurations, resumably.

Registered in ``fwbook.cli.main.SUBCOMMANDS``. Examples::

    python -m fwbook sweep table1 --profile paper --workers 2 --commit
    python -m fwbook sweep table1 --status
    python -m fwbook sweep table1 --no-train --readme README.md
"""

from __future__ import annotations

import os
from pathlib import Path

from fwbook.cli.arguments import non_negative_int, positive_int
from fwbook.core.records import REPO_ROOT

GRIDS = ("table1", "ablations", "fair", "fair-cap")
BACKENDS = ("local", "ray")
DEFAULT_DIRECTORIES = {"table1": "results/table1", "ablations": "results/ablations",
                       "fair": "results/fair", "fair-cap": "results/fair_cap"}
DESCRIPTION = ("Train every run of a grid that has no record yet, in parallel worker processes. "
               "A finished run is never redone; an interrupted sweep (and a half-done run, from "
               "its checkpoint) resumes where it stopped. One JSON record per run in DIRECTORY.")


def add_parser(subparsers, parser_class):
    from fwbook.experiments.grids import PROFILES

    parser = subparsers.add_parser("sweep", description=DESCRIPTION, help="run a grid of "
                                   "training runs (Table 1, ablations), resumably")
    parser.add_argument("grid", choices=GRIDS, help="table1: IRNN, LSTM, A-LSTM, fast weights "
                        "(and LN-IRNN) at R = 20, 50, 100; ablations: the chapter-04 grid; fair: Table 1 "
                        "under the fair-controls protocol (fwbook.experiments.fair; the next WORKERS runs of "
                        "its plan at a time); "
                        "fair-cap: fast weights at R = 20 under the protocol with twice its cap, "
                        "at the learning rate its cell chose")
    parser.add_argument("--profile", choices=PROFILES, default="paper",
                        help="budget of every run (default: %(default)s)")
    parser.add_argument("--seeds", type=non_negative_int, nargs="+", default=[0, 1, 2],
                        help="seeds of every cell (default: 0 1 2)")
    parser.add_argument("--workers", type=positive_int, default=None,
                        help="worker processes, one torch thread each (default: CPU count)")
    parser.add_argument("--directory", type=Path, default=None,
                        help="where records go (default: results/GRID)")
    parser.add_argument("--only", nargs="+", default=None, metavar="NAME",
                        help="train only these run names of the grid")
    parser.add_argument("--skip", nargs="+", default=None, metavar="NAME",
                        help="leave these run names out (e.g. runs another sweep process is "
                             "training right now: two processes must never train one run)")
    parser.add_argument("--limit", type=positive_int, default=None,
                        help="train at most this many of the missing runs (in grid order)")
    parser.add_argument("--status", action="store_true",
                        help="list which runs are done and which are missing; train nothing")
    parser.add_argument("--no-train", action="store_true",
                        help="train nothing (with --readme: only regenerate the table)")
    parser.add_argument("--commit", action="store_true",
                        help="git-commit each new record, alone, as soon as it is written")
    parser.add_argument("--readme", type=Path, default=None,
                        help="afterwards rewrite the block between <!-- table1:start --> and "
                             "<!-- table1:end --> of this markdown file (table1 only)")
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    from fwbook.core.steps import TRAINING_STEPS

    parser.add_argument("--step", choices=TRAINING_STEPS, default="auto",
                        help="training step of every run: auto compiles long CPU runs (not "
                             "lstm); the same maths either way (default: %(default)s)")
    parser.add_argument("--backend", choices=BACKENDS, default="local",
                        help="local: worker processes on this machine (default); ray: each run "
                             "a Ray task, on an embedded Ray here or on the cluster at --address")
    parser.add_argument("--address", default=None, metavar="HOST:PORT",
                        help="--backend ray: join the Ray cluster whose head listens there "
                             "(default: $RAY_ADDRESS, else an embedded Ray on this machine)")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu",
                        help="device of every run; with --backend ray a cuda run gets a GPU of "
                             "its own (default: %(default)s)")
    parser.set_defaults(handler=run)
    return parser


def grid_configs(grid: str, profile: str, seeds: tuple[int, ...]) -> dict:
    """The configurations of the table1, ablations or fair-cap grid, name -> ``TrainConfig``.

    Raises:
        ValueError: the grid cannot be built yet (fair-cap before its cell chose a rate).
    """
    if grid == "fair-cap":
        from fwbook.experiments.fair_cap import cap_check_configs

        return cap_check_configs(profile, tuple(seeds))
    if grid == "table1":
        from fwbook.experiments.grids import table1_configs

        return table1_configs(profile, tuple(seeds))
    from fwbook.experiments.ablations import ablation_configs

    return ablation_configs(profile, tuple(seeds))


def _check_readme(readme: Path, parser) -> None:
    """Refuse, before any work, a --readme that is missing or lacks the table1 markers."""
    from fwbook.chapters.ch05_results import README_END, README_START, replace_marked_block

    if not readme.is_file():
        parser.error(f"--readme {readme}: no such file")
    try:
        replace_marked_block(readme.read_text(), "")
    except UnicodeDecodeError:
        parser.error(f"--readme {readme} is not a text file")
    except ValueError:
        parser.error(f"--readme {readme} has no table block: expected one {README_START} "
                     f"followed by one {README_END}")


def run(args, parser) -> int:
    from fwbook.experiments.sweep import SweepConfigMismatch, SweepFailed, sweep_status

    sweep_function = _backend(args, parser)
    if args.readme is not None and args.grid != "table1":
        parser.error("--readme only applies to the table1 grid")
    if args.readme is not None:
        _check_readme(args.readme, parser)
    directory = args.directory or REPO_ROOT / DEFAULT_DIRECTORIES[args.grid]
    if directory.exists() and not directory.is_dir():
        parser.error(f"--directory {directory} is a file, not a folder of run records")
    if args.no_train and args.readme is not None and not directory.is_dir():
        parser.error(f"--directory {directory} does not exist: no records to build the table "
                     f"from, so {args.readme} is left as it is")
    if args.grid == "fair":
        return run_fair_grid(args, parser, directory)
    try:
        configs = grid_configs(args.grid, args.profile, tuple(args.seeds))
    except ValueError as error:
        parser.error(str(error))
    _refuse_unknown_names(args, configs, f"the {args.grid} grid", parser)
    if args.only:
        configs = {name: configs[name] for name in args.only}
    if args.skip:
        configs = {name: config for name, config in configs.items() if name not in args.skip}
    try:
        status = sweep_status(configs, directory)
    except SweepConfigMismatch as error:
        parser.error(str(error))
    except ValueError as error:  # a truncated or binary record
        parser.error(f"{error}; move it away to retrain that run")
    if args.no_train and args.readme is not None and not status["done"]:
        parser.error(f"--directory {directory} holds no {args.grid} records of the "
                     f"{args.profile} profile: rewriting {args.readme} would mark every cell "
                     f"'not run yet', so it is left as it is")
    if args.status:
        print(f"{args.grid} ({args.profile}): {len(status['done'])} of {len(configs)} runs done "
              f"in {directory}, {status['wall_s'] / 3600:.2f} h of training")
        for name, config in configs.items():
            print(_status_line(directory, name, config, name in status["done"]))
        return 0
    if not args.no_train:
        if args.limit is not None:
            keep = set(status["done"]) | set(status["todo"][:args.limit])
            configs = {name: config for name, config in configs.items() if name in keep}
        try:
            sweep_function(configs, directory, workers=args.workers, profile=args.profile,
                           quiet=args.quiet, on_record=_committer(args), step=args.step,
                           device=args.device)
        except SweepFailed as error:
            print(f"fwbook sweep: {error}")
            return 1
    if args.readme is not None:
        from fwbook.chapters.ch05_results import write_readme_block

        write_readme_block(args.readme, directory)
        print(f"rewrote the table1 block of {args.readme}")
    return 0


def _backend(args, parser):
    """The sweep function of ``--backend``: ``run_sweep``, or ``run_sweep_ray`` bound to the
    checked ``--address`` and turning an unreachable cluster into one usage line (exit 2).
    Ray is imported only here, and only for ``--backend ray``."""
    if args.backend == "local":
        if args.address is not None:
            parser.error("--address only applies to --backend ray")
        from fwbook.experiments.sweep import run_sweep

        return run_sweep
    from fwbook.experiments.sweep_ray import RayUnreachable, resolve_address, run_sweep_ray

    try:
        address = resolve_address(args.address)
    except ValueError as error:
        parser.error(f"--address: {error}")

    def sweep_on_ray(*positional, **keywords):
        try:
            return run_sweep_ray(*positional, address=address, **keywords)
        except RayUnreachable as error:
            parser.error(str(error))

    return sweep_on_ray


def _refuse_unknown_names(args, configs: dict, where: str, parser) -> None:
    """One usage line for the names of ``--only`` or ``--skip`` that ``configs`` lacks."""
    for option in ("only", "skip"):
        unknown = [name for name in getattr(args, option) or () if name not in configs]
        if unknown:
            parser.error(f"--{option}: not in {where}: {', '.join(unknown)}")


def _status_line(directory: Path, name: str, config, done: bool) -> str:
    """``  done  NAME``, or ``  todo  NAME`` with how far its checkpoint got, if it has one."""
    from fwbook.experiments.sweep import checkpoint_progress, default_checkpoint_dir

    if done:
        return f"  done  {name}"
    step = checkpoint_progress(default_checkpoint_dir(directory), name, config)
    return f"  todo  {name}" + (f"  (checkpoint at update {step:,} of {config.steps:,})"
                                if step else "")


def _committer(args):
    """The ``on_record`` callback of a sweep: with ``--commit``, git-commit each new record."""
    from fwbook.experiments.sweep import git_commit_record

    def commit(name, record, path):
        if args.commit:
            error = record.get("test_error")
            shown = f"{100 * error:.2f}%" if error is not None else record.get("status")
            git_commit_record(path, f"{Path(path).parent.name}: {name} ({args.profile}), "
                                    f"test error {shown}")

    return commit


def run_fair_grid(args, parser, directory: Path) -> int:
    """``sweep fair``: the protocol of :mod:`fwbook.experiments.fair`, ``--workers`` runs at a
    time in its order, its records in ``directory``."""
    from fwbook.experiments.fair import fair_plan, run_fair
    from fwbook.experiments.sweep import SweepConfigMismatch, existing_record

    seeds = tuple(args.seeds)
    try:
        plan, waiting = fair_plan(directory, args.profile, seeds=seeds)
    except SweepConfigMismatch as error:
        parser.error(str(error))
    _refuse_unknown_names(args, plan, "the fair plan (yet)", parser)
    if args.status:
        try:
            done = {name for name, config in plan.items()
                    if existing_record(directory, name, config) is not None}
        except SweepConfigMismatch as error:
            parser.error(str(error))
        print(f"fair ({args.profile}): {len(done)} of {len(plan)} planned runs done in {directory}")
        for name, config in plan.items():
            print(_status_line(directory, name, config, name in done))
        for cell in waiting:
            print(f"  later {cell}: its other seeds, once its learning rates have finished")
        return 0
    if args.no_train:
        return 0
    result = run_fair(directory, args.profile, seeds=seeds,
                      only=set(args.only) if args.only else None,
                      skip=set(args.skip) if args.skip else None, limit=args.limit,
                      quiet=args.quiet, step=args.step, on_record=_committer(args),
                      workers=args.workers or os.cpu_count() or 1)
    if result["failed"]:
        lines = "; ".join(f"{name}: {message}" for name, message in result["failed"].items())
        print(f"fwbook sweep: {len(result['failed'])} runs failed ({lines}); run the sweep "
              f"again to retry")
        return 1
    return 0
