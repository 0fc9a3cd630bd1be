"""``fwbook catch PROFILE``: train the Catch agents of chapter 8, one record per core and seed.

Registered by ``fwbook.cli.main.build_parser``. Examples::

    fwbook catch paper --out results/catch --workers 2   # the committed chapter-8 records
    fwbook catch smoke --out runs/catch --cores lstm --seeds 0
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from fwbook.cli.arguments import non_negative_int, positive_int


DESCRIPTION = ("Train every (core, seed) of a Catch profile with A2C (fwbook.rl.agents) and "
               "write one JSON record per run, named PROFILE_CORE_seedN.json. A run whose "
               "record is already in --out with the same configuration is not trained again.")


def add_parser(subparsers, parser_class) -> None:
    from fwbook.rl.agents import CORES, PROFILES, RESULTS_DIR

    parser = subparsers.add_parser("catch", description=DESCRIPTION, help="train the chapter-8 "
                                   "Catch agents (actor-critic, three recurrent cores)")
    parser.add_argument("profile", choices=PROFILES,
                        help="smoke: seconds; quick: minutes; paper: the committed records")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR,
                        help="folder for the records (default: results/catch)")
    parser.add_argument("--cores", nargs="+", choices=CORES, default=list(CORES),
                        help="(default: all three)")
    parser.add_argument("--seeds", nargs="+", type=non_negative_int, default=None,
                        help="(default: the profile's seeds; paper: 0-9, else 0 1 2)")
    parser.add_argument("--workers", type=positive_int, default=1,
                        help="worker processes, one torch thread each (default: 1)")
    parser.add_argument("--device", default="cpu", help="auto, cpu or cuda (default: cpu)")
    parser.add_argument("--quiet", action="store_true", help="no line per run")
    parser.set_defaults(handler=_run_catch)


def _run_catch(args, parser) -> int:
    from fwbook.core.train import resolve_device
    from fwbook.experiments.sweep import SweepConfigMismatch
    from fwbook.rl.agents import run_profile

    try:
        resolve_device(args.device)
        if args.out.exists() and not args.out.is_dir():
            raise ValueError(f"--out {args.out} is a file, not a folder of run records")
    except ValueError as error:
        parser.error(str(error))
    start = time.perf_counter()
    try:
        records = run_profile(args.profile, args.cores, args.seeds, args.device, args.out,
                              args.workers, quiet=args.quiet)
    except SweepConfigMismatch as error:
        parser.error(str(error))
    print(f"{len(records)} runs in {args.out}, finished in {time.perf_counter() - start:.1f} s",
          file=sys.stderr)
    return 0
