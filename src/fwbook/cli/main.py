"""Command line: ``fwbook COMMAND ...`` (also ``python -m fwbook COMMAND ...``).

Every subcommand is a module of ``fwbook.cli`` named once, in ``SUBCOMMANDS``. Its
``add_parser(subparsers, parser_class)`` registers the subcommand under that name with its
options and sets ``handler(args, parser)``, which returns the exit status. ``fwbook NAME ...``
builds only NAME's parser, so a command imports only what it needs: ``fwbook book`` never
imports torch.

Bad values print one clear line and exit with status 2, before anything is written.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from fwbook.cli import attention, bench, book, catch, sweep, train
from fwbook.cli.arguments import EXIT_INTERRUPTED, CommandParser

SUBCOMMANDS = {  # name -> module, in the order `fwbook --help` lists them
    "train": train,
    "bench": bench,
    "sweep": sweep,
    "book": book,
    "catch": catch,  # chapter 8
    "attention": attention,  # chapters 6 and 7
}


def build_parser(names: Sequence[str] = tuple(SUBCOMMANDS)) -> argparse.ArgumentParser:
    """The ``fwbook`` parser with the subcommands ``names`` (default: every one)."""
    parser = CommandParser(prog="fwbook", description="fwbook: fast weights (Ba et al. 2016), "
                           "reproduced. Train models, benchmark them, run sweeps, train the "
                           "chapters' runs, build the book.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                       parser_class=CommandParser)
    for name in names:
        SUBCOMMANDS[name].add_parser(subparsers, CommandParser)
        command = subparsers.choices[name]
        command.set_defaults(command_parser=command)  # for the handler's usage errors
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    named = argv[:1] if argv[:1] and argv[0] in SUBCOMMANDS else tuple(SUBCOMMANDS)
    args = build_parser(named).parse_args(argv)
    try:
        return args.handler(args, args.command_parser)
    except KeyboardInterrupt:  # train reports its own; this is any other command's Ctrl-C
        print(f"fwbook {args.command}: interrupted; run the same command to resume",
              file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
